//! Checking the top-level `backend`: one of the names [`Backend`] knows.

use toml::Spanned;

use super::Checker;
use crate::plan::Backend;
use crate::raw::closest;
use crate::{Location, Problem};

impl Checker<'_> {
    /// The backend the lab names (native when absent) and where it is written.
    pub(super) fn backend(&mut self, raw: Option<&Spanned<String>>) -> (Backend, Option<Location>) {
        let Some(raw) = raw else {
            return (Backend::Native, None);
        };
        let at = Some(self.location(raw.span()));
        let name = raw.get_ref();
        if let Some(backend) = Backend::from_name(name) {
            return (backend, at);
        }
        let expected = Backend::NAMES
            .iter()
            .map(|n| format!("\"{n}\""))
            .collect::<Vec<_>>()
            .join(" or ");
        let problem = Problem::new(
            raw.span(),
            format!("backend: expected {expected}, found {name:?}"),
        );
        let help = match closest(name, Backend::NAMES) {
            Some(near) => format!("did you mean \"{near}\"?"),
            None => "leave backend out to run every node as a process on this host".into(),
        };
        self.problems.push(problem.help(help));
        (Backend::Native, at)
    }
}
