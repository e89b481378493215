//! One line of PostgreSQL 15's `jsonlog`: a JSON object per log message,
//! fields left out when empty. Only the fields the classifier and the text
//! rendering use are kept.

use serde::Deserialize;

/// One log message.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Record {
    /// `2026-12-01 10:00:00.123 UTC` (log_timezone).
    #[serde(default)]
    pub timestamp: String,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub dbname: Option<String>,
    #[serde(default)]
    pub pid: Option<i64>,
    /// `LOG`, `ERROR`, `FATAL`, …
    #[serde(default)]
    pub error_severity: String,
    /// The SQLSTATE (`00000` for plain LOG lines).
    #[serde(default)]
    pub state_code: Option<String>,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub detail: Option<String>,
    #[serde(default)]
    pub hint: Option<String>,
    #[serde(default)]
    pub context: Option<String>,
    #[serde(default)]
    pub statement: Option<String>,
    /// `client backend`, `checkpointer`, `logical replication worker`, …
    #[serde(default)]
    pub backend_type: Option<String>,
}

/// A line that is not one jsonlog object.
#[derive(Debug, thiserror::Error)]
#[error("not a jsonlog line: {0}")]
pub struct ParseError(#[from] serde_json::Error);

impl Record {
    /// Parses one line (without its newline).
    pub fn parse(line: &str) -> Result<Record, ParseError> {
        Ok(serde_json::from_str(line)?)
    }

    /// The SQLSTATE, `00000` when the line has none.
    pub fn sqlstate(&self) -> &str {
        self.state_code.as_deref().unwrap_or("00000")
    }

    /// True for ERROR, FATAL and PANIC.
    pub fn is_error(&self) -> bool {
        matches!(self.error_severity.as_str(), "ERROR" | "FATAL" | "PANIC")
    }

    /// The message as the stderr format prints it: `TIME [PID] user@db
    /// SEVERITY:  message`, then DETAIL, HINT, CONTEXT and STATEMENT lines.
    pub fn to_text(&self) -> String {
        let mut out = format!("{} [{}] ", self.timestamp, self.pid.unwrap_or(0));
        if let (Some(user), Some(db)) = (&self.user, &self.dbname) {
            out.push_str(&format!("{user}@{db} "));
        }
        out.push_str(&format!("{}:  {}\n", self.error_severity, self.message));
        let extra = [
            ("DETAIL", &self.detail),
            ("HINT", &self.hint),
            ("CONTEXT", &self.context),
            ("STATEMENT", &self.statement),
        ];
        for (label, text) in extra {
            if let Some(text) = text {
                out.push_str(&format!(
                    "{} [{}] {label}:  {text}\n",
                    self.timestamp,
                    self.pid.unwrap_or(0)
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"timestamp":"2026-12-01 10:00:00.123 UTC","user":"postgres","dbname":"postgres","pid":4242,"remote_host":"127.0.0.1","session_id":"x","line_num":3,"ps":"INSERT","error_severity":"ERROR","state_code":"23505","message":"duplicate key value violates unique constraint \"t_pkey\"","detail":"Key (id)=(1) already exists.","statement":"insert into t values (1)","backend_type":"client backend","query_id":0}"#;

    #[test]
    fn a_jsonlog_line_gives_its_severity_sqlstate_and_text() {
        let r = Record::parse(LINE).unwrap();
        assert_eq!(r.error_severity, "ERROR");
        assert_eq!(r.sqlstate(), "23505");
        assert!(r.is_error());
        let text = r.to_text();
        assert!(
            text.starts_with("2026-12-01 10:00:00.123 UTC [4242] postgres@postgres ERROR:  duplicate key")
        );
        assert!(text.contains("[4242] DETAIL:  Key (id)=(1) already exists.\n"));
        assert!(text.contains("STATEMENT:  insert into t values (1)\n"));
    }

    #[test]
    fn a_broken_line_is_an_error_not_a_panic() {
        assert!(Record::parse("{\"timestamp\":").is_err());
        assert!(Record::parse("plain text").is_err());
        assert_eq!(Record::parse("{}").unwrap().sqlstate(), "00000");
    }
}
