//! SVG charts for `docs/benchmarks.md`, drawn with plotters: lines with
//! markers on logarithmic axes.

use std::path::Path;

use plotters::prelude::*;

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// A line with round markers (measurements).
    Line,
    /// Crosses only, no connecting line (fitted or scattered data).
    Crosses,
    /// A dashed line without markers (a fitted law).
    Dashed,
    /// Large hollow triangles (measurements from elsewhere, not re-run).
    Triangles,
}

/// One line of a chart.
pub struct Series {
    /// Legend entry.
    pub name: String,
    /// `(x, y)` points, drawn in the given order; non-positive values are dropped.
    pub points: Vec<(f64, f64)>,
    /// How it is drawn.
    pub style: Style,
    /// Index into the palette; by default the series' position.
    pub color: Option<usize>,
}

impl Series {
    /// A line with markers.
    pub fn line(name: impl Into<String>, points: Vec<(f64, f64)>) -> Series {
        Series { name: name.into(), points, style: Style::Line, color: None }
    }

    /// A series drawn in `style`.
    pub fn styled(name: impl Into<String>, points: Vec<(f64, f64)>, style: Style) -> Series {
        Series { name: name.into(), points, style, color: None }
    }

    /// The same series in the palette's colour `index` (e.g. a fit in its
    /// data's colour).
    pub fn in_color(self, index: usize) -> Series {
        Series { color: Some(index), ..self }
    }
}

/// A chart's title and axis labels.
pub struct Chart<'a> {
    /// Caption.
    pub title: &'a str,
    /// Label of the x axis.
    pub x_label: &'a str,
    /// Label of the y axis.
    pub y_label: &'a str,
}

const PALETTE: [RGBColor; 7] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(127, 127, 127),
];

/// Draws `series` on log-log axes into the SVG file `path`.
pub fn loglog(path: &Path, chart: &Chart<'_>, series: &[Series]) -> anyhow::Result<()> {
    let clean: Vec<Vec<(f64, f64)>> = series
        .iter()
        .map(|s| s.points.iter().copied().filter(|(x, y)| *x > 0.0 && *y > 0.0 && y.is_finite()).collect())
        .collect();
    let all: Vec<(f64, f64)> = clean.iter().flatten().copied().collect();
    anyhow::ensure!(!all.is_empty(), "no data for {}", path.display());
    let fold = |f: fn(&(f64, f64)) -> f64| {
        all.iter().map(f).fold((f64::INFINITY, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)))
    };
    let (x0, x1) = fold(|p| p.0);
    let (y0, y1) = fold(|p| p.1);
    let err = |e: &dyn std::fmt::Debug| anyhow::anyhow!("drawing {}: {e:?}", path.display());

    let root = SVGBackend::new(path, (860, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut ctx = ChartBuilder::on(&root)
        .caption(chart.title, ("sans-serif", 20))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d((x0 / 1.3..x1 * 1.3).log_scale(), (y0 / 2.0..y1 * 2.0).log_scale())
        .map_err(|e| err(&e))?;
    ctx.configure_mesh()
        .x_desc(chart.x_label)
        .y_desc(chart.y_label)
        .x_label_formatter(&|v| short(*v))
        .y_label_formatter(&|v| short(*v))
        .draw()
        .map_err(|e| err(&e))?;
    for (i, (s, pts)) in series.iter().zip(&clean).enumerate() {
        if pts.is_empty() {
            continue;
        }
        let color = PALETTE[s.color.unwrap_or(i) % PALETTE.len()];
        let label = s.name.clone();
        match s.style {
            Style::Crosses => {
                ctx.draw_series(pts.iter().map(|&p| Cross::new(p, 5, color.stroke_width(2))))
                    .map_err(|e| err(&e))?
                    .label(label)
                    .legend(move |(x, y)| Cross::new((x + 10, y), 5, color.stroke_width(2)));
            }
            Style::Triangles => {
                ctx.draw_series(pts.iter().map(|&p| TriangleMarker::new(p, 8, color.stroke_width(2))))
                    .map_err(|e| err(&e))?
                    .label(label)
                    .legend(move |(x, y)| TriangleMarker::new((x + 10, y), 6, color.stroke_width(2)));
            }
            Style::Dashed => {
                ctx.draw_series(DashedLineSeries::new(pts.clone(), 6, 4, color.stroke_width(1)))
                    .map_err(|e| err(&e))?
                    .label(label)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(1)));
            }
            Style::Line => {
                ctx.draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
                    .map_err(|e| err(&e))?
                    .label(label)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
                ctx.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled()))).map_err(|e| err(&e))?;
            }
        }
    }
    ctx.configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

/// Tick labels: `1e-3`, `0.5`, `20`, `1e4`.
fn short(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if !(1e-2..1e4).contains(&v.abs()) {
        format!("{v:.0e}")
    } else {
        format!("{}", (v * 1e3).round() / 1e3)
    }
}
