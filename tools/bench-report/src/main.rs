//! `spmd-bench-report` (a maintainer tool, not part of the published crate): turns the
//! criterion results of `benches/scaling.rs` into speedup and efficiency tables (CSV, JSON),
//! SVG plots of speedup against threads and ranks, and the generated scaling section of
//! `docs/performance.md` (between `<!-- scaling:begin -->` and `<!-- scaling:end -->`). Run by
//! `scripts/bench` after the benchmarks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use plotters::prelude::*;
use serde::{Deserialize, Serialize};
use spmd::timing::format_seconds;

/// Scaling tables and plots from criterion's results.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Criterion's output directory.
    #[arg(long, default_value = "target/criterion")]
    criterion: PathBuf,
    /// Where to write results.csv, results.json and the SVG plots.
    #[arg(long, default_value = "target/bench-results")]
    out: PathBuf,
    /// The document whose generated section to replace (skipped if it has no markers).
    #[arg(long, default_value = "docs/performance.md")]
    document: PathBuf,
    /// The command that produced the results, for the document.
    #[arg(long, default_value = "scripts/bench")]
    command: String,
}

#[derive(Deserialize)]
struct BenchmarkFile {
    group_id: String,
    function_id: Option<String>,
}

#[derive(Deserialize)]
struct Estimate {
    point_estimate: f64,
}

#[derive(Deserialize)]
struct Estimates {
    mean: Estimate,
}

/// One measured point.
#[derive(Clone, Debug, Serialize)]
struct Row {
    /// `threads`, `strong`, `weak` or `collectives`.
    kind: String,
    kernel: String,
    /// For overhead rows: `raw`, `helper` or `unchecked`.
    variant: String,
    /// Threads (thread scaling) or ranks.
    n: usize,
    oversubscribed: bool,
    mean_s: f64,
    speedup: f64,
    efficiency: f64,
}

impl Row {
    /// The thread or rank count as the tables show it.
    fn count_label(&self) -> String {
        if self.oversubscribed {
            format!("{} (oversubscribed)", self.n)
        } else {
            self.n.to_string()
        }
    }
}

fn main() -> ExitCode {
    match report(&Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("spmd-bench-report: {e}");
            ExitCode::FAILURE
        }
    }
}

fn report(args: &Args) -> Result<(), String> {
    let rows = read(&args.criterion)?;
    if rows.is_empty() {
        return Err(format!(
            "no scaling results under {}; run `cargo bench --bench scaling` first",
            args.criterion.display()
        ));
    }
    std::fs::create_dir_all(&args.out).map_err(|e| e.to_string())?;
    let mut csv =
        csv::Writer::from_path(args.out.join("results.csv")).map_err(|e| e.to_string())?;
    for row in &rows {
        csv.serialize(row).map_err(|e| e.to_string())?;
    }
    csv.flush().map_err(|e| e.to_string())?;
    let json = serde_json::to_string_pretty(&rows).map_err(|e| e.to_string())?;
    std::fs::write(args.out.join("results.json"), json).map_err(|e| e.to_string())?;
    plot(
        &args.out.join("speedup_threads.svg"),
        "thread scaling (1 rank)",
        "threads",
        &rows,
        "threads",
    )?;
    plot(
        &args.out.join("speedup_ranks.svg"),
        "rank scaling, strong (1 thread per rank)",
        "ranks",
        &rows,
        "strong",
    )?;
    let section = markdown(&rows, &args.command);
    println!("{section}");
    update_document(&args.document, &section)?;
    eprintln!(
        "spmd-bench-report: wrote {}/results.csv, results.json, speedup_threads.svg, speedup_ranks.svg",
        args.out.display()
    );
    Ok(())
}

/// Per (kind, kernel): (n, oversubscribed, mean seconds) points.
type Series = BTreeMap<(String, String, String), Vec<(usize, bool, f64)>>;

/// Every scaling result, with speedup and efficiency against the same kernel's n = 1.
fn read(dir: &Path) -> Result<Vec<Row>, String> {
    let mut points: Series = BTreeMap::new();
    for group in std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .flatten()
    {
        for bench in std::fs::read_dir(group.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let new = bench.path().join("new");
            let (Ok(meta), Ok(est)) = (
                std::fs::read_to_string(new.join("benchmark.json")),
                std::fs::read_to_string(new.join("estimates.json")),
            ) else {
                continue;
            };
            let meta: BenchmarkFile = serde_json::from_str(&meta).map_err(|e| e.to_string())?;
            let est: Estimates = serde_json::from_str(&est).map_err(|e| e.to_string())?;
            let Some((kind, kernel)) = meta.group_id.split_once('/') else {
                continue;
            };
            if !["threads", "strong", "weak", "collectives", "overhead"].contains(&kind) {
                continue;
            }
            let id = meta.function_id.unwrap_or_default();
            let Some(n) = id.split_whitespace().next().and_then(|n| n.parse().ok()) else {
                continue;
            };
            let variant = if kind == "overhead" {
                id.split_whitespace().skip(1).collect::<Vec<_>>().join(" ")
            } else {
                String::new()
            };
            points
                .entry((kind.to_owned(), kernel.to_owned(), variant))
                .or_default()
                .push((
                    n,
                    id.contains("oversubscribed"),
                    est.mean.point_estimate * 1e-9,
                ));
        }
    }
    let mut rows = Vec::new();
    for ((kind, kernel, variant), mut series) in points {
        series.sort_by_key(|p| p.0);
        let base = series.iter().find(|p| p.0 == 1).map(|p| p.2);
        for (n, over, t) in series {
            let (speedup, efficiency) = match base {
                Some(b) if kind == "weak" => (n as f64 * b / t, b / t),
                Some(b) => (b / t, b / t / n as f64),
                None => (f64::NAN, f64::NAN),
            };
            rows.push(Row {
                kind: kind.clone(),
                kernel: kernel.clone(),
                variant: variant.clone(),
                n,
                oversubscribed: over,
                mean_s: t,
                speedup,
                efficiency,
            });
        }
    }
    Ok(rows)
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mpi = std::process::Command::new("mpirun")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "unknown MPI".into());
    format!("{cores} cores ({cpu}), {mpi}")
}

fn markdown(rows: &[Row], command: &str) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "Generated by `spmd-bench-report` from criterion's estimates (mean time per iteration, the slowest rank's) of `{command}` on {}. Speedup and efficiency are against the same kernel at 1 thread / 1 rank of the same run; weak scaling efficiency is t(1)/t(n) with n times the work.\n",
        machine()
    ));
    for (kind, title, unit) in [
        (
            "threads",
            "Thread scaling (1 rank, `--bind-to none`)",
            "threads",
        ),
        (
            "strong",
            "Rank scaling, strong (global size fixed, 1 thread per rank)",
            "ranks",
        ),
        (
            "weak",
            "Rank scaling, weak (2^24 elements per rank)",
            "ranks",
        ),
        ("collectives", "Collectives and halo exchange", "ranks"),
    ] {
        let mine: Vec<&Row> = rows.iter().filter(|r| r.kind == kind).collect();
        if mine.is_empty() {
            continue;
        }
        if kind == "collectives" {
            // One rank communicates nothing: a speedup against it would mean nothing.
            out.push_str(&format!(
                "\n**{title}** (time per call)\n\n| operation | {unit} | time |\n|---|---:|---:|\n"
            ));
            for r in mine {
                out.push_str(&format!(
                    "| {} | {} | {} |\n",
                    r.kernel,
                    r.count_label(),
                    format_seconds(r.mean_s)
                ));
            }
            continue;
        }
        out.push_str(&format!("\n**{title}**\n\n| kernel | {unit} | time | speedup | efficiency |\n|---|---:|---:|---:|---:|\n"));
        for r in mine {
            out.push_str(&format!(
                "| {} | {} | {} | {:.2} | {:.0}% |\n",
                r.kernel,
                r.count_label(),
                format_seconds(r.mean_s),
                r.speedup,
                100.0 * r.efficiency
            ));
        }
    }
    out.push_str(&overhead_table(rows));
    out.push_str("\nPlots: `target/bench-results/speedup_threads.svg`, `speedup_ranks.svg`; criterion's HTML: `target/criterion/report/index.html`.\n");
    out
}

/// Helper against raw rsmpi: one line per operation and rank count.
fn overhead_table(rows: &[Row]) -> String {
    let mut lines: BTreeMap<(String, usize), BTreeMap<String, f64>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.kind == "overhead") {
        lines
            .entry((r.kernel.clone(), r.n))
            .or_default()
            .insert(r.variant.clone(), r.mean_s);
    }
    if lines.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "\n**Overhead of the helpers against raw rsmpi** (time per call)\n\n| operation | ranks | raw | helper | helper/raw | checks off | checks off/raw |\n|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for ((op, n), v) in lines {
        let (Some(&raw), Some(&helper), Some(&unchecked)) =
            (v.get("raw"), v.get("helper"), v.get("unchecked"))
        else {
            continue;
        };
        out.push_str(&format!(
            "| {op} | {n} | {} | {} | {:.2} | {} | {:.2} |\n",
            format_seconds(raw),
            format_seconds(helper),
            helper / raw,
            format_seconds(unchecked),
            unchecked / raw
        ));
    }
    out
}

fn update_document(path: &Path, section: &str) -> Result<(), String> {
    const BEGIN: &str = "<!-- scaling:begin -->";
    const END: &str = "<!-- scaling:end -->";
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    let (Some(a), Some(b)) = (text.find(BEGIN), text.find(END)) else {
        eprintln!(
            "spmd-bench-report: {} has no {BEGIN} … {END} markers; left alone",
            path.display()
        );
        return Ok(());
    };
    let updated = format!("{}{BEGIN}\n{section}{}", &text[..a], &text[b..]);
    std::fs::write(path, updated).map_err(|e| e.to_string())
}

fn plot(path: &Path, title: &str, unit: &str, rows: &[Row], kind: &str) -> Result<(), String> {
    let mine: Vec<&Row> = rows
        .iter()
        .filter(|r| r.kind == kind && r.speedup.is_finite())
        .collect();
    if mine.is_empty() {
        return Ok(());
    }
    let draw = || -> Result<(), Box<dyn std::error::Error>> {
        let max_n = mine.iter().map(|r| r.n).max().unwrap_or(1).max(2) as f64;
        let max_s = mine.iter().map(|r| r.speedup).fold(max_n, f64::max) * 1.1;
        let root = SVGBackend::new(path, (720, 480)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(14)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(1.0..max_n, 0.0..max_s)?;
        chart
            .configure_mesh()
            .x_desc(unit)
            .y_desc("speedup")
            .draw()?;
        chart
            .draw_series(LineSeries::new(
                [(1.0, 1.0), (max_n, max_n)],
                BLACK.mix(0.4),
            ))?
            .label("ideal")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.mix(0.4)));
        let kernels: Vec<&str> = {
            let mut k: Vec<&str> = mine.iter().map(|r| r.kernel.as_str()).collect();
            k.dedup();
            k
        };
        for (i, kernel) in kernels.iter().enumerate() {
            let colour = Palette99::pick(i).to_rgba();
            let points: Vec<(f64, f64)> = mine
                .iter()
                .filter(|r| r.kernel == *kernel)
                .map(|r| (r.n as f64, r.speedup))
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))?
                .label(*kernel)
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2))
                });
            chart.draw_series(
                points
                    .into_iter()
                    .map(|p| Circle::new(p, 3, colour.filled())),
            )?;
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
