//! Durations as people write them: `500ms`, `30s`, `2m`, `1h`. The parser
//! is the model crate's, shared with the CLI's flags and the HTTP API.

pub use model::parse_duration;
