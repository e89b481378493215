//! The page's files, compiled into the binary: the dashboard works with no
//! network and nothing to install beside prodhome.

pub(crate) const INDEX_HTML: &str = include_str!("../assets/index.html");

const FILES: &[(&str, &str, &str)] = &[
    (
        "dash.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/dash.js"),
    ),
    (
        "dash.css",
        "text/css; charset=utf-8",
        include_str!("../assets/dash.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_str!("../assets/favicon.svg"),
    ),
];

/// An asset's content type and body by file name.
pub(crate) fn get(name: &str) -> Option<(&'static str, &'static str)> {
    FILES
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, t, body)| (*t, *body))
}
