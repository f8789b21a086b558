//! Line charts as standalone SVG, written directly (no plotting crate):
//! axes with ticks, optional log scales, one polyline per series, a legend.

use std::fmt::Write;

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend label.
    pub label: String,
    /// Colour index (series sharing it share a colour: seeds of one optimizer).
    pub colour: usize,
    /// Whether this series is the first of its colour (gets the legend entry).
    pub legend: bool,
    /// `(x, y)` points; non-finite points (and non-positive ones on a log
    /// axis) are skipped.
    pub points: Vec<(f64, f64)>,
}

/// Axis scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// Linear.
    Linear,
    /// Base-10 logarithmic.
    Log,
}

const PALETTE: [&str; 8] = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

fn tr(v: f64, s: Scale) -> Option<f64> {
    match s {
        Scale::Linear if v.is_finite() => Some(v),
        Scale::Log if v.is_finite() && v > 0.0 => Some(v.log10()),
        _ => None,
    }
}

fn label(v: f64, s: Scale) -> String {
    let v = if s == Scale::Log { 10f64.powf(v) } else { v };
    if v != 0.0 && (v.abs() >= 1e4 || v.abs() < 1e-2) {
        format!("{v:.1e}")
    } else {
        format!("{}", (v * 1000.0).round() / 1000.0)
    }
}

/// Ticks over `[lo, hi]` (in transformed units): integer decades on a log
/// axis, 1-2-5 steps on a linear one.
fn ticks(lo: f64, hi: f64, s: Scale) -> Vec<f64> {
    if s == Scale::Log && hi - lo < 1.0 {
        // Less than a decade: linear ticks of the values themselves.
        let (a, b) = (10f64.powf(lo), 10f64.powf(hi));
        return ticks(a, b, Scale::Linear).into_iter().filter(|&t| t > 0.0).map(f64::log10).collect();
    }
    let span = (hi - lo).max(1e-12);
    let step = match s {
        Scale::Log => (span / 6.0).ceil().max(1.0),
        Scale::Linear => {
            let raw = span / 6.0;
            let mag = 10f64.powf(raw.log10().floor());
            [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * mag).find(|&c| c >= raw).unwrap_or(10.0 * mag)
        }
    };
    let mut t = (lo / step).ceil() * step;
    let mut out = Vec::new();
    while t <= hi + 1e-9 * span && out.len() < 20 {
        out.push(t);
        t += step;
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The chart as an SVG document.
pub fn line_chart(title: &str, x_label: &str, y_label: &str, xs: Scale, ys: Scale, series: &[Series]) -> String {
    let (w, h, left, right, top, bottom) = (720.0, 440.0, 70.0, 200.0, 30.0, 50.0);
    let pts: Vec<Vec<(f64, f64)>> =
        series.iter().map(|s| s.points.iter().filter_map(|&(x, y)| Some((tr(x, xs)?, tr(y, ys)?))).collect()).collect();
    let all = pts.iter().flatten();
    let (mut x0, mut x1, mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
    for &(x, y) in all {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if !x0.is_finite() {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    if x1 - x0 < 1e-12 {
        x1 = x0 + 1.0;
    }
    if y1 - y0 < 1e-12 {
        y0 -= 0.5;
        y1 += 0.5;
    }
    let pw = w - left - right;
    let ph = h - top - bottom;
    let px = |x: f64| left + (x - x0) / (x1 - x0) * pw;
    let py = |y: f64| top + (1.0 - (y - y0) / (y1 - y0)) * ph;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="18" text-anchor="middle" font-size="13">{}</text>"#,
        left + pw / 2.0,
        escape(title)
    );
    let _ = writeln!(s, r#"<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="black"/>"#);
    for t in ticks(x0, x1, xs) {
        let x = px(t);
        let _ = writeln!(s, r##"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{}" stroke="#ddd"/>"##, top + ph);
        let _ = writeln!(s, r#"<text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"#, top + ph + 15.0, label(t, xs));
    }
    for t in ticks(y0, y1, ys) {
        let y = py(t);
        let _ = writeln!(s, r##"<line x1="{left}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#ddd"/>"##, left + pw);
        let _ = writeln!(s, r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#, left - 4.0, y + 4.0, label(t, ys));
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        left + pw / 2.0,
        h - 12.0,
        escape(x_label)
    );
    let _ = writeln!(
        s,
        r#"<text x="14" y="{}" text-anchor="middle" transform="rotate(-90 14 {})">{}</text>"#,
        top + ph / 2.0,
        top + ph / 2.0,
        escape(y_label)
    );
    let mut legend_row = 0.0;
    for (ser, p) in series.iter().zip(&pts) {
        let colour = PALETTE[ser.colour % PALETTE.len()];
        if p.len() > 1 {
            let line: Vec<String> = p.iter().map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y))).collect();
            let _ = writeln!(
                s,
                r#"<polyline fill="none" stroke="{colour}" stroke-width="1.4" stroke-opacity="0.85" points="{}"/>"#,
                line.join(" ")
            );
        } else if let Some(&(x, y)) = p.first() {
            let _ = writeln!(s, r#"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="{colour}"/>"#, px(x), py(y));
        }
        if ser.legend {
            let ly = top + 10.0 + legend_row * 16.0;
            let lx = left + pw + 10.0;
            let _ = writeln!(
                s,
                r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{colour}" stroke-width="2"/><text x="{}" y="{}">{}</text>"#,
                lx + 18.0,
                lx + 22.0,
                ly + 4.0,
                escape(&ser.label)
            );
            legend_row += 1.0;
        }
    }
    s.push_str("</svg>\n");
    s
}
