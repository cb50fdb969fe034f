//! The SVG charts of the report page, drawn by plotters.

use plotters::prelude::*;

use crate::error::{Error, Result};

fn chart_err(e: impl std::fmt::Display) -> Error {
    Error::Other(format!("drawing a chart: {e}"))
}

const COLORS: [RGBColor; 5] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
];

const CHART_SIZE: (u32, u32) = (560, 300);

/// Range of values with a little headroom; a flat series gets a unit range.
pub(super) fn padded(vals: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = vals
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |a, v| {
            (a.0.min(v), a.1.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.08).max(hi.abs().max(1e-3) * 0.01);
    (lo - pad, hi + pad)
}

/// The common end of every chart: the legend box in the upper right, then
/// the SVG is finished.
fn legend_and_present<'a, 'b: 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, SVGBackend<'b>, CT>,
    root: &DrawingArea<SVGBackend<'b>, plotters::coord::Shift>,
) -> Result<()> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()
        .map_err(chart_err)?;
    root.present().map_err(chart_err)
}

/// A line chart of named series of (x, y) points; `mark_x` draws a dashed
/// vertical line (the epoch whose factors were kept).
pub(super) fn line_chart(
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[(String, Vec<(f64, f64)>)],
    mark_x: Option<f64>,
) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, CHART_SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(chart_err)?;
        let (x0, x1) = padded(series.iter().flat_map(|s| s.1.iter().map(|p| p.0)));
        let (y0, y1) = padded(series.iter().flat_map(|s| s.1.iter().map(|p| p.1)));
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(chart_err)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .light_line_style(WHITE)
            .draw()
            .map_err(chart_err)?;
        for (n, (label, pts)) in series.iter().enumerate() {
            let c = COLORS[n % COLORS.len()];
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(2)))
                .map_err(chart_err)?
                .label(label.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))
                });
            if pts.len() <= 60 {
                chart
                    .draw_series(pts.iter().map(|&p| Circle::new(p, 3, c.filled())))
                    .map_err(chart_err)?;
            }
        }
        if let Some(x) = mark_x {
            let grey = RGBColor(120, 120, 120);
            let steps = 12;
            let dashes = (0..steps).step_by(2).map(|s| {
                let a = y0 + (y1 - y0) * s as f64 / steps as f64;
                let b = y0 + (y1 - y0) * (s + 1) as f64 / steps as f64;
                PathElement::new(vec![(x, a), (x, b)], grey.stroke_width(1))
            });
            chart
                .draw_series(dashes)
                .map_err(chart_err)?
                .label("kept epoch")
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], grey));
        }
        legend_and_present(&mut chart, &root)?;
    }
    Ok(svg)
}

/// Grouped bars: one group per decile, one bar per series.
pub(super) fn decile_chart(title: &str, series: &[(&str, &[f64])]) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, CHART_SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(chart_err)?;
        let ymax = series
            .iter()
            .flat_map(|s| s.1.iter().copied())
            .fold(0f64, f64::max)
            * 100.0
            * 1.1;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.5f64..9.5f64, 0f64..ymax.max(1.0))
            .map_err(chart_err)?;
        chart
            .configure_mesh()
            .x_labels(10)
            .x_label_formatter(&|x| {
                let r = x.round();
                if (x - r).abs() < 1e-6 && (0.0..=9.0).contains(&r) {
                    format!("{}%", (r as i32 + 1) * 10)
                } else {
                    String::new()
                }
            })
            .x_desc("items by training popularity, most popular decile first")
            .y_desc("% of all")
            .light_line_style(WHITE)
            .draw()
            .map_err(chart_err)?;
        let w = 0.8 / series.len().max(1) as f64;
        for (n, (label, vals)) in series.iter().enumerate() {
            let c = COLORS[n % COLORS.len()];
            chart
                .draw_series(vals.iter().enumerate().map(|(d, &v)| {
                    let x = d as f64 - 0.4 + n as f64 * w;
                    Rectangle::new([(x, 0.0), (x + w * 0.95, v * 100.0)], c.filled())
                }))
                .map_err(chart_err)?
                .label(*label)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
        }
        legend_and_present(&mut chart, &root)?;
    }
    Ok(svg)
}
