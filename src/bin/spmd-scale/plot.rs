//! The SVG plot: measured speedup against ideal, and the model's prediction.

use std::path::Path;

use plotters::prelude::*;
use spmd::timing::scaling::ScalingModel;

use crate::Row;

/// Speedup (strong) or scaled speedup (weak) against cores on log–log axes, with the ideal
/// line and, for strong scaling, the model's curve.
pub fn speedup(
    path: &Path,
    strong: bool,
    rows: &[Row],
    model: Option<&(ScalingModel, f64)>,
) -> Result<(), String> {
    let draw = || -> Result<(), Box<dyn std::error::Error>> {
        let max_cores = rows.iter().map(|r| r.cores).max().unwrap_or(1).max(2) as f64 * 4.0;
        let max_speedup = rows.iter().map(|r| r.speedup).fold(max_cores, f64::max);
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
                (0.1_f64..max_speedup * 1.2).log_scale(),
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
        if let Some((model, reference)) = model {
            let threads = rows[0].threads;
            let curve: Vec<(f64, f64)> = (0..=64)
                .map(|i| {
                    let ranks = (max_cores / threads as f64).powf(i as f64 / 64.0).max(1.0);
                    let cores = ranks * threads as f64;
                    (
                        cores,
                        model.speedup(*reference, ranks.round() as usize, threads),
                    )
                })
                .collect();
            chart
                .draw_series(LineSeries::new(curve, RED.stroke_width(1)))?
                .label("model (predicted)")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RED));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| format!("cannot draw {}: {e}", path.display()))
}
