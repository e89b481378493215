//! Several logs as one, in time order.

/// The lines of several logs as one, in time order: (which log, line).
/// A line without a time of its own (a DETAIL line, a program that stamps
/// nothing) keeps its place after the line before it in its own log. One
/// log need not be in order itself: a server's backends stamp their lines
/// before the logging collector writes them, so a file can step back by a
/// millisecond; each log is put in time order first (lines of the same
/// time keep their order), then the logs are merged.
pub(super) fn merge_by_time(logs: &[Vec<Vec<u8>>]) -> Vec<(usize, &[u8])> {
    let keyed: Vec<Vec<(String, &[u8])>> = logs
        .iter()
        .map(|lines| {
            let mut key = String::new();
            let mut keyed: Vec<(String, &[u8])> = lines
                .iter()
                .map(|line| {
                    if let Some(k) = time_key(line) {
                        key = k;
                    }
                    (key.clone(), line.as_slice())
                })
                .collect();
            // Stable: a continuation line shares its line's key and stays
            // right after it.
            keyed.sort_by(|a, b| a.0.cmp(&b.0));
            keyed
        })
        .collect();
    let mut next = vec![0; keyed.len()];
    let mut merged = Vec::new();
    loop {
        let pick = (0..keyed.len())
            .filter(|&i| next[i] < keyed[i].len())
            .min_by(|&a, &b| keyed[a][next[a]].0.cmp(&keyed[b][next[b]].0));
        let Some(i) = pick else {
            return merged;
        };
        merged.push((i, keyed[i][next[i]].1));
        next[i] += 1;
    }
}

/// A sortable time from a line starting `YYYY-MM-DD HH:MM:SS[.fff]` (or
/// with `T` between date and time): the servers' log_line_prefix and
/// RFC 3339 alike. Zones are not compared: one machine's logs share one.
fn time_key(line: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(line.get(..19)?).ok()?;
    let shape = text.bytes().enumerate().all(|(i, b)| match i {
        4 | 7 => b == b'-',
        10 => b == b' ' || b == b'T',
        13 | 16 => b == b':',
        _ => b.is_ascii_digit(),
    });
    if !shape {
        return None;
    }
    let rest = &line[19..];
    let frac: String = match rest.first() {
        Some(b'.') => rest[1..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .take(9)
            .map(|&b| b as char)
            .collect(),
        _ => String::new(),
    };
    Some(format!("{} {}{frac:0<9}", &text[..10], &text[11..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<Vec<u8>> {
        text.lines().map(|l| format!("{l}\n").into_bytes()).collect()
    }

    #[test]
    fn logs_interleave_by_time_and_keep_continuations_with_their_line() {
        let a = lines(
            "2026-01-01 10:00:01.500 UTC [1] LOG: a1\n\tDETAIL a1\n2026-01-01 10:00:03.000 UTC [1] LOG: a2",
        );
        let b = lines("2026-01-01T10:00:02Z b1\n2026-01-01 10:00:01.4 UTC b0-late-clock");
        let merged: Vec<String> = merge_by_time(&[a, b])
            .into_iter()
            .map(|(i, l)| {
                format!(
                    "{i}:{}",
                    String::from_utf8_lossy(l).split_whitespace().last().unwrap_or("")
                )
            })
            .collect();
        // b0 was written after b1 but stamped before it (and before a1).
        assert_eq!(merged, ["1:b0-late-clock", "0:a1", "0:a1", "1:b1", "0:a2"]);
    }

    #[test]
    fn a_log_that_steps_back_is_put_in_order_with_its_continuations() {
        let a = lines(
            "2026-01-01 10:00:00.522 UTC [7] LOG: late\n\tDETAIL late\n2026-01-01 10:00:00.521 UTC [8] LOG: early\n\tDETAIL early\n2026-01-01 10:00:00.522 UTC [9] LOG: same",
        );
        let merged: Vec<String> = merge_by_time(&[a])
            .into_iter()
            .map(|(_, l)| {
                String::from_utf8_lossy(l)
                    .split_whitespace()
                    .last()
                    .unwrap_or("")
                    .to_string()
            })
            .collect();
        assert_eq!(merged, ["early", "early", "late", "late", "same"]);
    }

    #[test]
    fn only_lines_that_start_with_a_time_have_one() {
        assert!(time_key(b"2026-01-01 10:00:01 x").is_some());
        assert!(time_key(b"prodhome: dispatcher: started").is_none());
        assert!(time_key(b"2026").is_none());
        assert!(time_key(b"2026-01-01 10:00:01.1 x") > time_key(b"2026-01-01T10:00:01.02Z x"));
    }
}
