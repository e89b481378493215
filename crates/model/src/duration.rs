//! Durations as people write them, one parser for lab files, flags and the
//! HTTP API.

use std::time::Duration;

/// Parses `500ms`, `30s`, `1.5s`, `2m`, `1h`, `1d`, `10us`, `5ns`; a bare
/// number is seconds. The error says what was wrong and what is expected.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    parse_duration_in(text, Duration::from_secs(1))
}

/// Like [`parse_duration`], with a bare number counted in `bare` units (the
/// HTTP API takes nanoseconds).
pub fn parse_duration_in(text: &str, bare: Duration) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration; write e.g. 30s, 500ms, 2m"))?;
    let seconds_per_unit = match unit {
        "" => bare.as_secs_f64(),
        "ns" => 1e-9,
        "us" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        _ => {
            return Err(format!(
                "unknown unit `{unit}` in `{text}`; use ns, us, ms, s, m, h or d"
            ));
        }
    };
    let seconds = value * seconds_per_unit;
    if !(0.0..=1e10).contains(&seconds) {
        return Err(format!("`{text}` is out of range"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86400)));
        assert_eq!(
            parse_duration_in("1500", Duration::from_nanos(1)),
            Ok(Duration::from_nanos(1500))
        );
        assert!(parse_duration("3 parsecs").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("1e99h").is_err());
    }
}
