//! Hand-written SVG: a line chart and a timeline. Every label is escaped;
//! hovering a line, a span or a mark shows its text (`<title>`). No
//! `xmlns`: inline SVG in HTML needs none, and the page names no URL.

use std::fmt::Write;

use crate::charts::Line;
use crate::html::{escape, number};
use crate::time;

const PALETTE: &[&str] = &[
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// The most lines one chart draws; the rest are named as left out.
pub(crate) const MAX_LINES: usize = 8;

const W: f64 = 560.0;
const H: f64 = 190.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 10.0;
const TOP: f64 = 8.0;
const BOTTOM: f64 = 22.0;

/// Maps time onto the x axis of a plot `width` wide starting at `left`.
#[derive(Clone, Copy)]
pub(crate) struct Axis {
    pub(crate) since: i64,
    pub(crate) until: i64,
    pub(crate) left: f64,
    pub(crate) width: f64,
}

impl Axis {
    pub(crate) fn x(&self, ts: i64) -> f64 {
        let span = (self.until - self.since).max(1) as f64;
        let at = (ts.clamp(self.since, self.until) - self.since) as f64;
        self.left + at / span * self.width
    }

    /// Start, middle and end times under the plot at `y`.
    fn labels(&self, svg: &mut String, y: f64) {
        let mid = self.since + (self.until - self.since) / 2;
        for (ts, anchor) in [(self.since, "start"), (mid, "middle"), (self.until, "end")] {
            let _ = write!(
                svg,
                "<text x=\"{:.1}\" y=\"{y:.1}\" text-anchor=\"{anchor}\">{}</text>",
                self.x(ts),
                time::clock(ts)
            );
        }
    }
}

/// A line chart of `lines` over the window, with its legend below.
pub(crate) fn line_chart(lines: &[Line], since: i64, until: i64, unit: &str) -> String {
    let shown = &lines[..lines.len().min(MAX_LINES)];
    let max = shown
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .fold(0.0_f64, f64::max);
    let min = shown
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .fold(0.0_f64, f64::min);
    let top = if max > min { max * 1.05 } else { min + 1.0 };
    let axis = Axis {
        since,
        until,
        left: LEFT,
        width: W - LEFT - RIGHT,
    };
    let plot_h = H - TOP - BOTTOM;
    let y = |v: f64| TOP + plot_h - (v - min) / (top - min) * plot_h;
    let mut svg = format!(
        "<svg viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" role=\"img\" aria-label=\"{}\">",
        escape(unit)
    );
    for v in [min, (min + top) / 2.0, top] {
        let _ = write!(
            svg,
            "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#e5e5e5\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            W - RIGHT,
            LEFT - 4.0,
            y(v) + 4.0,
            number(v),
            y = y(v)
        );
    }
    axis.labels(&mut svg, H - 6.0);
    for (i, line) in shown.iter().enumerate() {
        let mut path = String::new();
        for &(ts, v) in &line.points {
            let _ = write!(path, "{:.1},{:.1} ", axis.x(ts), y(v));
        }
        let _ = write!(
            svg,
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" points=\"{}\"><title>{}</title></polyline>",
            PALETTE[i % PALETTE.len()],
            path.trim_end(),
            escape(&line.label)
        );
    }
    svg.push_str("</svg>");
    svg.push_str(&legend(lines));
    svg
}

fn legend(lines: &[Line]) -> String {
    let mut html = String::from("<div class=\"legend\">");
    for (i, line) in lines.iter().take(MAX_LINES).enumerate() {
        let last = line.points.last().map_or(0.0, |p| p.1);
        let _ = write!(
            html,
            "<span><i style=\"background:{}\"></i>{} (last {})</span>",
            PALETTE[i % PALETTE.len()],
            escape(&line.label),
            number(last)
        );
    }
    if lines.len() > MAX_LINES {
        let _ = write!(html, "<span>and {} more</span>", lines.len() - MAX_LINES);
    }
    html.push_str("</div>");
    html
}

/// One row of the timeline: spans (from, to, text) and marks (at, text).
#[derive(Debug, Default)]
pub(crate) struct Lane {
    pub(crate) name: String,
    pub(crate) color: &'static str,
    pub(crate) spans: Vec<(i64, i64, String)>,
    pub(crate) marks: Vec<(i64, String)>,
}

const LANE_H: f64 = 24.0;
const LANE_LEFT: f64 = 120.0;
const TL_W: f64 = 1100.0;

/// Lanes one under the other over the window, with times below.
pub(crate) fn timeline(lanes: &[Lane], since: i64, until: i64) -> String {
    let h = LANE_H * lanes.len() as f64 + 24.0;
    let axis = Axis {
        since,
        until,
        left: LANE_LEFT,
        width: TL_W - LANE_LEFT - RIGHT,
    };
    let mut svg = format!(
        "<svg viewBox=\"0 0 {TL_W} {h}\" width=\"{TL_W}\" height=\"{h}\" role=\"img\" aria-label=\"timeline\">"
    );
    for (i, lane) in lanes.iter().enumerate() {
        let top = i as f64 * LANE_H;
        let _ = write!(
            svg,
            "<rect x=\"{LANE_LEFT}\" y=\"{top}\" width=\"{:.1}\" height=\"{}\" fill=\"{}\"/>\
             <text x=\"0\" y=\"{:.1}\">{}</text>",
            axis.width,
            LANE_H - 2.0,
            if i % 2 == 0 { "#f6f6f6" } else { "#fbfbfb" },
            top + 15.0,
            escape(&lane.name)
        );
        for (from, to, text) in &lane.spans {
            let (x0, x1) = (axis.x(*from), axis.x(*to));
            let _ = write!(
                svg,
                "<rect class=\"span\" x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{}\" fill=\"{}\" fill-opacity=\"0.45\"><title>{}</title></rect>",
                top + 3.0,
                (x1 - x0).max(2.0),
                LANE_H - 8.0,
                lane.color,
                escape(text)
            );
        }
        for (at, text) in &lane.marks {
            let _ = write!(
                svg,
                "<circle class=\"mark\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"{}\"><title>{}</title></circle>",
                axis.x(*at),
                top + LANE_H / 2.0 - 1.0,
                lane.color,
                escape(text)
            );
        }
    }
    axis.labels(&mut svg, h - 6.0);
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_draws_one_polyline_per_line_within_its_box() {
        let lines = vec![
            Line {
                label: "a".into(),
                points: vec![(0, 1.0), (50, 3.0), (100, 2.0)],
            },
            Line {
                label: "<b>".into(),
                points: vec![(0, 0.0)],
            },
        ];
        let svg = line_chart(&lines, 0, 100, "ms");
        assert_eq!(svg.matches("<polyline").count(), 2, "{svg}");
        assert!(svg.contains("&lt;b&gt;") && !svg.contains("<b>"), "{svg}");
        // The first point is at the left edge, the last at the right.
        assert!(svg.contains(&format!("points=\"{LEFT:.1},")), "{svg}");
        assert!(svg.contains(&format!("{:.1},", W - RIGHT)), "{svg}");
    }

    #[test]
    fn a_timeline_has_a_row_per_lane_and_a_rect_per_span() {
        let lanes = vec![
            Lane {
                name: "faults".into(),
                color: "#d62728",
                spans: vec![(10, 20, "pause".into())],
                marks: vec![],
            },
            Lane {
                name: "units".into(),
                color: "#1f77b4",
                spans: vec![],
                marks: vec![(5, "started".into()), (15, "ready".into())],
            },
        ];
        let svg = timeline(&lanes, 0, 100);
        assert_eq!(svg.matches("class=\"span\"").count(), 1);
        assert_eq!(svg.matches("class=\"mark\"").count(), 2);
    }
}
