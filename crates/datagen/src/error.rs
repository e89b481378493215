//! The crate's one error type: what went wrong, to which table, column or
//! constraint, and what to do next.

use std::fmt;

/// An opaque error; [`Error::refusals`] lists what the plan refused.
#[derive(Debug)]
pub struct Error(Box<Inner>);

#[derive(Debug)]
enum Inner {
    /// The schema asks for something the generator cannot satisfy.
    Refused(Vec<String>),
    /// A query against the node failed.
    Sql {
        what: String,
        source: tokio_postgres::Error,
    },
    /// Anything else, already worded for the user.
    Other(String),
}

impl Error {
    pub(crate) fn refused(reasons: Vec<String>) -> Error {
        Error(Box::new(Inner::Refused(reasons)))
    }

    pub(crate) fn sql(what: impl Into<String>, source: tokio_postgres::Error) -> Error {
        Error(Box::new(Inner::Sql {
            what: what.into(),
            source,
        }))
    }

    pub(crate) fn other(message: impl Into<String>) -> Error {
        Error(Box::new(Inner::Other(message.into())))
    }

    /// Every reason the plan was refused (empty for other errors).
    pub fn refusals(&self) -> &[String] {
        match &*self.0 {
            Inner::Refused(r) => r,
            _ => &[],
        }
    }

    /// The server's error, when a query failed.
    pub fn as_db_error(&self) -> Option<&tokio_postgres::error::DbError> {
        match &*self.0 {
            Inner::Sql { source, .. } => source.as_db_error(),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.0 {
            Inner::Refused(reasons) => {
                writeln!(f, "cannot generate data for this schema; nothing was written:")?;
                for r in reasons {
                    writeln!(f, "  {r}")?;
                }
                write!(
                    f,
                    "give those columns a generator in [data.TABLE] columns, or leave the table out with --table"
                )
            }
            Inner::Sql { what, source } => match source.as_db_error() {
                Some(db) => {
                    write!(f, "{what}: {}", db.message())?;
                    if let Some(d) = db.detail() {
                        write!(f, " ({d})")?;
                    }
                    if let Some(c) = db.constraint() {
                        write!(f, " [constraint {c}]")?;
                    }
                    Ok(())
                }
                None => write!(f, "{what}: {source}"),
            },
            Inner::Other(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &*self.0 {
            Inner::Sql { source, .. } => Some(source),
            _ => None,
        }
    }
}
