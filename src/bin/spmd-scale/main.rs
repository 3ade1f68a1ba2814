//! `spmd-scale`: runs an `spmd` program under `mpirun` over rank and thread counts, collects
//! each run's JSON timing report, and prints a scaling table, writes it as CSV, plots measured
//! against ideal speedup as SVG, and predicts speedup at larger rank counts from a fitted model.
//!
//! ```text
//! spmd-scale --ranks 1,2 --threads 1 -- target/release/examples/pi --samples 200000000
//! spmd-scale --mode weak --size-flag --samples --size 50000000 --ranks 1,2 -- target/release/examples/pi
//! ```
//!
//! The program must accept `--report PATH` (and `--baseline` for strong scaling), as every
//! `spmd` example does.

mod plot;
mod run;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use serde::Serialize;
use spmd::timing::scaling::{RunFigures, ScalingModel};
use spmd::timing::Report;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// The same problem on every run: time should fall as cores rise.
    Strong,
    /// The problem grows with the cores (`--size` per core): time should stay flat.
    Weak,
}

/// Scaling runs of an spmd program under mpirun.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Rank counts to run, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    ranks: Vec<usize>,
    /// Rayon threads per rank to run, comma-separated (set through SPMD_NUM_THREADS).
    #[arg(long, value_delimiter = ',', default_value = "1")]
    threads: Vec<usize>,
    /// Strong scaling (fixed problem) or weak scaling (problem grows with the cores).
    #[arg(long, value_enum, default_value_t = Mode::Strong)]
    mode: Mode,
    /// Weak scaling: the program's flag that sets the problem size, e.g. `--samples`.
    #[arg(long, allow_hyphen_values = true)]
    size_flag: Option<String>,
    /// Weak scaling: the problem size per core; each run gets size × ranks × threads.
    #[arg(long)]
    size: Option<u64>,
    /// Do not ask the first run for a sequential baseline (`--baseline`); speedup is then
    /// relative to the first run.
    #[arg(long)]
    no_baseline: bool,
    /// Rank counts to predict from the fitted model (strong scaling).
    #[arg(long, value_delimiter = ',', default_value = "8,64,512")]
    predict: Vec<usize>,
    /// Directory for the reports, `scaling.csv` and `speedup.svg`.
    #[arg(long, default_value = "spmd-scale-out")]
    out: PathBuf,
    /// The MPI launcher.
    #[arg(long, default_value = "mpirun")]
    mpirun: String,
    /// Extra launcher arguments, space-separated (e.g. "--hostfile hosts --oversubscribe").
    #[arg(long, allow_hyphen_values = true, default_value = "")]
    mpirun_args: String,
    /// Seconds before a run is killed.
    #[arg(long, default_value_t = 3600)]
    timeout: u64,
    /// The program and its arguments.
    #[arg(required = true, last = true)]
    program: Vec<String>,
}

/// One row of the scaling table and CSV.
#[derive(Debug, Serialize)]
struct Row {
    ranks: usize,
    threads: usize,
    cores: usize,
    size: Option<u64>,
    wall_s: f64,
    compute_s: f64,
    comm_s: f64,
    comm_fraction: f64,
    imbalance: f64,
    speedup: f64,
    efficiency: f64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match scale(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("spmd-scale: {message}");
            ExitCode::FAILURE
        }
    }
}

fn scale(args: &Args) -> Result<(), String> {
    validate(args)?;
    std::fs::create_dir_all(&args.out)
        .map_err(|e| format!("cannot create {}: {e}", args.out.display()))?;
    let launcher = run::Launcher::detect(&args.mpirun, &args.mpirun_args, args.timeout)?;
    let mut reports = Vec::new();
    for &threads in &args.threads {
        for &ranks in &args.ranks {
            let cores = (ranks * threads) as u64;
            let size = args.size.map(|s| s * cores);
            let wants_baseline =
                reports.is_empty() && args.mode == Mode::Strong && !args.no_baseline;
            let path = args.out.join(format!("run_r{ranks}_t{threads}.json"));
            let mut program_args: Vec<String> = args.program[1..].to_vec();
            if let (Some(flag), Some(size)) = (&args.size_flag, size) {
                program_args.extend([flag.clone(), size.to_string()]);
            }
            if wants_baseline {
                program_args.push("--baseline".into());
            }
            program_args.extend(["--report".into(), path.display().to_string()]);
            eprintln!("spmd-scale: {ranks} ranks x {threads} threads ...");
            launcher.run(ranks, threads, &args.program[0], &program_args)?;
            let text = std::fs::read_to_string(&path).map_err(|e| {
                format!(
                    "the program wrote no report at {} ({e}); does it accept --report?",
                    path.display()
                )
            })?;
            let report = Report::from_json(&text).map_err(|e| e.to_string())?;
            reports.push((size, report));
        }
    }
    let rows = rows(args.mode, &reports);
    print_table(args, &rows, &reports[0].1);
    write_csv(&args.out.join("scaling.csv"), &rows)?;

    let model = (args.mode == Mode::Strong).then(|| fit(&reports)).flatten();
    if let Some((model, reference)) = model {
        print_model(args, &model, reference);
    } else {
        println!("\nmodel: fitted for strong scaling only");
    }
    let svg = args.out.join("speedup.svg");
    plot::speedup(&svg, args.mode == Mode::Strong, &rows, model.as_ref())?;
    println!(
        "\nwrote {}, {} and the runs' reports in {}",
        args.out.join("scaling.csv").display(),
        svg.display(),
        args.out.display()
    );
    Ok(())
}

fn validate(args: &Args) -> Result<(), String> {
    if args.ranks.contains(&0) || args.threads.contains(&0) {
        return Err("rank and thread counts must be at least 1".into());
    }
    match (args.mode, &args.size_flag, args.size) {
        (Mode::Weak, Some(_), Some(s)) if s > 0 => Ok(()),
        (Mode::Weak, _, _) => {
            Err("weak scaling needs --size-flag FLAG and --size N (N > 0)".into())
        }
        (Mode::Strong, None, None) => Ok(()),
        (Mode::Strong, _, _) => Err("--size-flag and --size are for --mode weak".into()),
    }
}

fn rows(mode: Mode, reports: &[(Option<u64>, Report)]) -> Vec<Row> {
    let (_, first) = &reports[0];
    let first_cores = (first.ranks * first.threads_per_rank) as f64;
    // Strong: time of the sequential solution, or the first run's (scaled by its cores).
    let reference = first.baseline_s.unwrap_or(first.wall_s.max * first_cores);
    reports
        .iter()
        .map(|(size, r)| {
            let cores = r.ranks * r.threads_per_rank;
            let (speedup, efficiency) = match mode {
                Mode::Strong => {
                    let s = reference / r.wall_s.max;
                    (s, s / cores as f64)
                }
                Mode::Weak => {
                    // Scaled speedup: cores × (time of the first run / time of this run).
                    let e = first.wall_s.max / r.wall_s.max;
                    (e * cores as f64 / first_cores, e)
                }
            };
            Row {
                ranks: r.ranks,
                threads: r.threads_per_rank,
                cores,
                size: *size,
                wall_s: r.wall_s.max,
                compute_s: r.compute_s.avg,
                comm_s: r.comm_s.avg,
                comm_fraction: r.comm_fraction,
                imbalance: r.imbalance,
                speedup,
                efficiency,
            }
        })
        .collect()
}

fn print_table(args: &Args, rows: &[Row], first: &Report) {
    let reference = match (args.mode, first.baseline_s) {
        (Mode::Weak, _) => {
            "weak scaling: efficiency = first run's time / this run's time".to_string()
        }
        (Mode::Strong, Some(b)) => {
            format!("speedup against the sequential baseline ({b:.4} s on 1 core)")
        }
        (Mode::Strong, None) => {
            "speedup against the first run × its cores (no baseline)".to_string()
        }
    };
    println!("{} — {reference}", args.program.join(" "));
    println!(
        "{:>6} {:>8} {:>6} {:>12} {:>11} {:>11} {:>11} {:>7} {:>10} {:>8} {:>10}",
        "ranks",
        "threads",
        "cores",
        "size",
        "wall s",
        "compute s",
        "comm s",
        "comm %",
        "imbalance",
        "speedup",
        "efficiency"
    );
    for r in rows {
        println!(
            "{:>6} {:>8} {:>6} {:>12} {:>11.4} {:>11.4} {:>11.4} {:>7.2} {:>10.3} {:>8.2} {:>9.1}%",
            r.ranks,
            r.threads,
            r.cores,
            r.size.map_or("-".into(), |s| s.to_string()),
            r.wall_s,
            r.compute_s,
            r.comm_s,
            100.0 * r.comm_fraction,
            r.imbalance,
            r.speedup,
            100.0 * r.efficiency
        );
    }
}

fn write_csv(path: &std::path::Path, rows: &[Row]) -> Result<(), String> {
    let mut out = csv::Writer::from_path(path).map_err(|e| format!("{}: {e}", path.display()))?;
    for row in rows {
        out.serialize(row).map_err(|e| e.to_string())?;
    }
    out.flush().map_err(|e| e.to_string())
}

/// The model fitted to the runs, and the reference time its speedups are relative to.
fn fit(reports: &[(Option<u64>, Report)]) -> Option<(ScalingModel, f64)> {
    let runs: Vec<RunFigures> = reports
        .iter()
        .map(|(_, r)| RunFigures {
            ranks: r.ranks,
            threads: r.threads_per_rank,
            compute_s: r.compute_s.avg,
            comm_s: r.comm_s.avg,
        })
        .collect();
    let model = ScalingModel::fit(&runs)?;
    let reference = reports[0].1.baseline_s.unwrap_or_else(|| model.time(1, 1));
    Some((model, reference))
}

fn print_model(args: &Args, model: &ScalingModel, reference: f64) {
    let threads = args.threads[0];
    println!(
        "\nMODEL (a fit, not a measurement): T(r, t) = {:.4e} s + {:.4e} s / (r·t) + {:.4e} s · log2(r)",
        model.serial_s, model.parallel_s, model.comm_per_level_s
    );
    println!(
        "  serial part {:.4e} s, parallel part {:.4e} s, comm per doubling of ranks {:.4e} s \
         (latency + bytes/bandwidth of this program's collectives, including waiting)",
        model.serial_s, model.parallel_s, model.comm_per_level_s
    );
    println!(
        "{:>8} {:>8} {:>14} {:>18} {:>12}",
        "ranks", "threads", "predicted s", "predicted speedup", "efficiency"
    );
    for &ranks in &args.predict {
        let s = model.speedup(reference, ranks, threads);
        println!(
            "{:>8} {:>8} {:>14.4e} {:>18.2} {:>11.1}%",
            ranks,
            threads,
            model.time(ranks, threads),
            s,
            100.0 * s / (ranks * threads) as f64
        );
    }
    const LIMIT: usize = 1 << 20;
    let best = model.best_ranks(threads, LIMIT);
    if best == LIMIT {
        println!("  predicted time still falls at {LIMIT} ranks: no communication limit in sight");
    } else {
        println!(
            "  predicted fastest at {best} ranks x {threads} threads; beyond that, adding ranks \
             costs more in communication than it saves in compute"
        );
    }
}
