//! Checking `[service.NAME] log_level`: the regex that tells a service's
//! output lines' level. It must compile and have a group named `level`, so
//! that `up` never meets a pattern it cannot use; the daemon compiles it
//! again from the checked text.

use toml::Spanned;

use super::Checker;
use crate::Problem;

const HELP: &str = "e.g. log_level = '^\\S+ \\[(?P<level>[A-Z]+)\\]' for `12:00:01 [WARN] disk low`";

impl Checker<'_> {
    /// `Some(None)` when absent (JSON lines are read as they are),
    /// `Some(Some(regex))` when good, `None` after reporting a problem.
    pub(super) fn log_level(
        &mut self,
        path: &str,
        value: Option<&Spanned<String>>,
    ) -> Option<Option<String>> {
        let Some(value) = value else { return Some(None) };
        let path = format!("{path}.log_level");
        let problem = match regex_lite::Regex::new(value.get_ref()) {
            Ok(re) if re.capture_names().flatten().any(|n| n == "level") => {
                return Some(Some(value.get_ref().clone()));
            }
            Ok(_) => format!(
                "{path}: the regex `{}` has no group named `level`; it must capture the level word",
                value.get_ref()
            ),
            Err(e) => format!("{path}: not a valid regex: {}", one_line(&e.to_string())),
        };
        self.problems.push(Problem::new(value.span(), problem).help(HELP));
        None
    }
}

/// The regex error's text on one line (it draws a caret under the pattern
/// on lines of its own).
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
