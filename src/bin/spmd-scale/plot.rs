//! The SVG plot: measured speedup against ideal, and the model's prediction.

use std::path::Path;

use plotters::prelude::*;

use crate::{Fitted, Row};

/// Speedup (strong) or scaled speedup (weak) against cores on log–log axes: the ideal line,
/// the measured medians with their range over repetitions, and, for strong scaling, the
/// model's curve inside its bootstrap band.
pub fn speedup(
    path: &Path,
    strong: bool,
    rows: &[Row],
    model: Option<&Fitted>,
    predict_to: usize,
) -> Result<(), String> {
    let draw = || -> Result<(), Box<dyn std::error::Error>> {
        let measured_cores = rows.iter().map(|r| r.cores).max().unwrap_or(1).max(2);
        let max_cores = if model.is_some() {
            (predict_to * rows[0].threads).max(measured_cores) as f64
        } else {
            measured_cores as f64 * 2.0
        };
        let max_speedup = rows.iter().map(|r| r.speedup_max).fold(max_cores, f64::max);
        let min_speedup = rows
            .iter()
            .map(|r| r.speedup_min)
            .fold(1.0, f64::min)
            .max(1e-3);
        let root = SVGBackend::new(path, (800, 560)).into_drawing_area();
        root.fill(&WHITE)?;
        let title = if strong {
            "strong scaling: speedup vs cores"
        } else {
            "weak scaling: scaled speedup vs cores"
        };
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 24))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d(
                (1.0_f64..max_cores).log_scale(),
                (min_speedup * 0.8..max_speedup * 1.2).log_scale(),
            )?;
        chart
            .configure_mesh()
            .x_desc("cores (ranks x threads)")
            .y_desc("speedup")
            .draw()?;
        chart
            .draw_series(LineSeries::new(
                [(1.0, 1.0), (max_cores, max_cores)],
                BLACK.mix(0.4),
            ))?
            .label("ideal")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.mix(0.4)));
        let mut measured: Vec<(f64, f64)> =
            rows.iter().map(|r| (r.cores as f64, r.speedup)).collect();
        measured.sort_by(|a, b| a.0.total_cmp(&b.0));
        chart
            .draw_series(LineSeries::new(measured.clone(), BLUE.stroke_width(2)))?
            .label("measured")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE.stroke_width(2)));
        chart.draw_series(measured.iter().map(|&p| Circle::new(p, 4, BLUE.filled())))?;
        // The range over repetitions as a vertical bar at each point.
        chart.draw_series(rows.iter().map(|r| {
            let x = r.cores as f64;
            PathElement::new(
                [(x, r.speedup_min), (x, r.speedup_max)],
                BLUE.stroke_width(1),
            )
        }))?;
        if let Some(fitted) = model {
            let threads = rows[0].threads;
            let curve: Vec<(f64, f64, f64, f64)> = (0..=48)
                .map(|i| {
                    let ranks = (max_cores / threads as f64)
                        .powf(i as f64 / 48.0)
                        .max(1.0)
                        .round() as usize;
                    let (s, low, high) = fitted.speedup(ranks, threads);
                    ((ranks * threads) as f64, s, low, high)
                })
                .collect();
            let floor = min_speedup * 0.8;
            let mut band: Vec<(f64, f64)> = curve.iter().map(|c| (c.0, c.3.max(floor))).collect();
            band.extend(curve.iter().rev().map(|c| (c.0, c.2.max(floor))));
            chart
                .draw_series(std::iter::once(Polygon::new(band, RED.mix(0.15))))?
                .label("model: 95% band (bootstrap over repetitions)")
                .legend(|(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 20, y + 5)], RED.mix(0.15).filled())
                });
            chart
                .draw_series(LineSeries::new(
                    curve.iter().map(|c| (c.0, c.1)),
                    RED.stroke_width(1),
                ))?
                .label("model (predicted)")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RED));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| format!("cannot draw {}: {e}", path.display()))
}
