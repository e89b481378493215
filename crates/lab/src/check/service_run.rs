//! Checking where a `[service.NAME]` runs: `image = "REF"` (an image the
//! engine already has), `container = true` (its program packed into an
//! image), or natively. Only the keys' own sense is checked here; whether
//! the lab's backend can run containers is decided before `up` starts
//! anything, against the backend it runs with (`--backend` may differ
//! from the file's).

use super::Checker;
use crate::Problem;
use crate::plan::ServiceRun;
use crate::raw::RawService;

impl Checker<'_> {
    /// The service's [`ServiceRun`], or `None` after a located problem.
    pub(super) fn service_run(&mut self, path: &str, raw: &RawService) -> Option<ServiceRun> {
        let container = raw.container.as_ref().map(|c| (*c.get_ref(), c.span()));
        match (&raw.image, container) {
            (None, None | Some((false, _))) => Some(ServiceRun::Native),
            (None, Some((true, span))) => Some(ServiceRun::Packed {
                at: self.location(span),
            }),
            (Some(image), Some((false, span))) => {
                let message = format!(
                    "{path}.container: false says the service runs natively, but `image = {:?}` runs it in a container",
                    image.get_ref()
                );
                self.problems.push(Problem::new(span, message).help(
                    "remove `container = false` to run the image, or `image` to run the command natively",
                ));
                None
            }
            (Some(image), _) => {
                let reference = image.get_ref().trim();
                if reference.is_empty() || reference.contains(char::is_whitespace) {
                    let message = format!(
                        "{path}.image: expected an image reference such as \"myapp:1.2\", found {:?}",
                        image.get_ref()
                    );
                    self.problems.push(Problem::new(image.span(), message));
                    return None;
                }
                Some(ServiceRun::Image {
                    reference: reference.to_owned(),
                    at: self.location(image.span()),
                })
            }
        }
    }
}
