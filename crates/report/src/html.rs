//! Escaping and the page's frame: everything that reaches the page as
//! text or an attribute goes through [`escape`].

use std::fmt::Write;

/// `text` safe inside an element or a quoted attribute.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Inline styles only: the file must open with no network.
const STYLE: &str = "
body{font:14px/1.4 system-ui,sans-serif;margin:24px auto;max-width:1200px;color:#222;padding:0 16px}
h1{font-size:24px;margin:0 0 4px} h2{font-size:18px;border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:32px}
h3{font-size:15px;margin:12px 0 4px}
table{border-collapse:collapse;margin:8px 0} th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4} td.n{text-align:right;font-variant-numeric:tabular-nums}
code{font:12px ui-monospace,monospace;white-space:pre-wrap;word-break:break-all}
.muted{color:#777} .ok{color:#1a7f37;font-weight:600} .bad{color:#c62828;font-weight:600}
.grid{display:flex;flex-wrap:wrap;gap:16px} figure{margin:0;width:576px;box-sizing:border-box;border:1px solid #e4e4e4;padding:8px;background:#fcfcfc}
figcaption{font-weight:600;margin-bottom:4px} .legend span{margin-right:12px;font-size:12px}
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px}
svg text{font:11px system-ui,sans-serif;fill:#555}
";

pub(crate) fn head(page: &mut String, title: &str) {
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>{}</title><style>{STYLE}</style></head><body>\n",
        escape(title)
    );
}

pub(crate) fn foot(page: &mut String) {
    page.push_str("<p class=\"muted\">Made by <code>prodhome report</code>: one file, no external assets.</p>\n</body></html>\n");
}

/// Opens `<section id=ID><h2>TITLE</h2>`; close it with [`end`].
pub(crate) fn section(page: &mut String, id: &str, title: &str) {
    let _ = writeln!(page, "<section id=\"{id}\"><h2>{}</h2>", escape(title));
}

pub(crate) fn end(page: &mut String) {
    page.push_str("</section>\n");
}

/// A paragraph in grey: what is not there, and why.
pub(crate) fn muted(page: &mut String, text: &str) {
    let _ = writeln!(page, "<p class=\"muted\">{}</p>", escape(text));
}

/// A cell of a [`table`]: text (escaped), a number (right-aligned) or
/// markup made here (not escaped again).
pub(crate) enum Cell {
    Text(String),
    Code(String),
    Num(String),
    Raw(String),
}

/// A table with a header row; every text cell is escaped.
pub(crate) fn table(page: &mut String, header: &[&str], rows: &[Vec<Cell>]) {
    page.push_str("<table><tr>");
    for h in header {
        let _ = write!(page, "<th>{}</th>", escape(h));
    }
    page.push_str("</tr>\n");
    for row in rows {
        page.push_str("<tr>");
        for cell in row {
            let _ = match cell {
                Cell::Text(t) => write!(page, "<td>{}</td>", escape(t)),
                Cell::Code(t) => write!(page, "<td><code>{}</code></td>", escape(t)),
                Cell::Num(t) => write!(page, "<td class=\"n\">{}</td>", escape(t)),
                Cell::Raw(t) => write!(page, "<td>{t}</td>"),
            };
        }
        page.push_str("</tr>\n");
    }
    page.push_str("</table>\n");
}

/// A number as a person reads it: whole numbers plain, others with up to
/// three decimals, large ones with a k/M suffix.
pub(crate) fn number(v: f64) -> String {
    let a = v.abs();
    if a >= 10_000_000.0 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 100_000.0 {
        format!("{:.0}k", v / 1e3)
    } else if v.fract() == 0.0 || a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_characters_are_escaped() {
        assert_eq!(
            escape(r#"<script>alert('x') & "y"</script>"#),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(number(3.0), "3");
        assert_eq!(number(0.12345), "0.123");
        assert_eq!(number(12.345), "12.35");
        assert_eq!(number(2_500_000.0), "2500k");
        assert_eq!(number(25_000_000.0), "25.0M");
    }
}
