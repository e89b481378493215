//! Custom queries from the lab file (`[[sample.query]]`), like
//! postgres_exporter's: each row becomes a point of the query's name,
//! tagged with the `tags` columns and the node, with the `fields` columns
//! as values.
//!
//! Rows come back as text (the simple query protocol runs whatever the lab
//! author wrote, with no types to declare), and every field is stored as a
//! float: a column that reads `3` in one cycle and `3.5` in the next must
//! not change type in InfluxDB. Booleans read as 1 and 0; NULL leaves the
//! field out of that point.

use model::Point;
use tokio_postgres::SimpleQueryMessage;

use super::Ctx;
use crate::failure::Failure;
use crate::options::CustomQuery;
use crate::session::Session;

pub(crate) async fn collect(
    session: &Session,
    query: &CustomQuery,
    ctx: Ctx<'_>,
) -> Result<Vec<Point>, Failure> {
    let messages = session.simple_query(&query.sql).await?;
    let mut points = Vec::new();
    for message in messages {
        let SimpleQueryMessage::Row(row) = message else {
            continue;
        };
        let columns: Vec<&str> = row.columns().iter().map(|c| c.name()).collect();
        let index = |name: &str| -> Result<usize, Failure> {
            columns.iter().position(|c| *c == name).ok_or_else(|| {
                Failure::new(format!(
                    "no column `{name}` in the result of query {}; its columns are {}",
                    query.name,
                    columns.join(", ")
                ))
            })
        };
        let mut point = ctx.point(&query.name);
        for tag in &query.tags {
            let value = row.get(index(tag)?).unwrap_or("");
            point = point.tag(tag.clone(), value);
        }
        for field in &query.fields {
            let Some(text) = row.get(index(field)?) else {
                continue;
            };
            let value = parse_number(text).ok_or_else(|| {
                Failure::new(format!(
                    "query {}: column `{field}` holds `{text}`, which is not a number; \
                     declare it under `tags` or cast it in the SQL",
                    query.name
                ))
            })?;
            point = point.float(field.clone(), value);
        }
        if !point.fields.is_empty() {
            points.push(point);
        }
    }
    Ok(points)
}

/// A number as Postgres prints it, or a boolean (`t`/`f`) as 1/0.
fn parse_number(text: &str) -> Option<f64> {
    match text {
        "t" | "true" => Some(1.0),
        "f" | "false" => Some(0.0),
        _ => text.trim().parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_booleans_read_as_floats() {
        assert_eq!(parse_number("3"), Some(3.0));
        assert_eq!(parse_number("3.5"), Some(3.5));
        assert_eq!(parse_number("-1e3"), Some(-1000.0));
        assert_eq!(parse_number("t"), Some(1.0));
        assert_eq!(parse_number("f"), Some(0.0));
        assert_eq!(parse_number("NaN").map(f64::is_nan), Some(true));
        assert_eq!(parse_number("abc"), None);
    }
}
