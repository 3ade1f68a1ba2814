//! `spmd-scale`: runs an `spmd` program under `mpirun` over rank and thread counts, collects
//! each run's JSON timing report, and prints a scaling table, writes it as CSV, plots measured
//! against ideal speedup as SVG, and predicts speedup at larger rank counts from a fitted model.
//!
//! ```text
//! spmd-scale --ranks 1,2 --threads 1 -- target/release/examples/pi --samples 200000000
//! spmd-scale --mode weak --size-flag --samples --size 50000000 --ranks 1,2 -- target/release/examples/pi
//! ```
//!
//! The program must accept `--report PATH`, `--repeat K` (and `--baseline` for strong
//! scaling), as every `spmd` example does. Every run measures K repetitions (default 5), with
//! the baseline interleaved in the first; the table shows medians with their range, and the
//! model is fitted to the repetitions and predicts with a bootstrap interval.

mod plot;
mod probe;
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
    /// Measured repetitions per run (`--repeat K` to the program).
    #[arg(long, default_value_t = 5)]
    repeat: usize,
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
    /// The cores the ranks share in all (e.g. nodes × cores per node): predictions for more
    /// ranks × threads than that time-share them. Default: a core for every rank × thread.
    #[arg(long)]
    cores: Option<usize>,
    /// Rank counts run after the fit and not used by it: their measured time is compared with
    /// the model's prediction (strong scaling).
    #[arg(long, value_delimiter = ',')]
    held_out: Vec<usize>,
    /// The launcher of the held-out runs, e.g. one that spreads the ranks over hosts
    /// (default: `--mpirun`).
    #[arg(long)]
    held_out_mpirun: Option<String>,
    /// Extra launcher arguments of the held-out runs (default: `--mpirun-args`).
    #[arg(long, allow_hyphen_values = true)]
    held_out_mpirun_args: Option<String>,
    /// Before predicting the held-out runs, measure the network under both launchers (a
    /// ping-pong between two ranks) and add the difference to the model's latency and time
    /// per byte.
    #[arg(long)]
    probe: bool,
    /// The program and its arguments.
    #[arg(required = true, last = true)]
    program: Vec<String>,
}

/// One row of the scaling table and CSV: medians over the run's repetitions.
#[derive(Debug, Serialize)]
struct Row {
    ranks: usize,
    threads: usize,
    cores: usize,
    size: Option<u64>,
    repetitions: usize,
    wall_s: f64,
    wall_min_s: f64,
    wall_max_s: f64,
    compute_s: f64,
    transfer_s: f64,
    comm_fraction: f64,
    imbalance: f64,
    speedup: f64,
    speedup_min: f64,
    speedup_max: f64,
    efficiency: f64,
    warnings: usize,
}

fn main() -> ExitCode {
    if let Ok(path) = std::env::var(probe::PROBE_ENV) {
        return match probe::rank(&path) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("spmd-scale probe: {message}");
                ExitCode::FAILURE
            }
        };
    }
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
            program_args.extend(["--repeat".into(), args.repeat.to_string()]);
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

    let model = match args.mode {
        Mode::Strong => match fit(&reports, args.cores) {
            Ok(fitted) => {
                print_model(args, &fitted);
                Some(fitted)
            }
            Err(why) => {
                println!("\nMODEL: not fitted: {why}");
                None
            }
        },
        Mode::Weak => {
            println!("\nMODEL: fitted for strong scaling only");
            None
        }
    };
    if let (Some(fitted), false) = (&model, args.held_out.is_empty()) {
        held_out(args, &launcher, fitted)?;
    }
    let svg = args.out.join("speedup.svg");
    let predict_to = args.predict.iter().copied().max().unwrap_or(8);
    plot::speedup(
        &svg,
        args.mode == Mode::Strong,
        &rows,
        model.as_ref(),
        predict_to,
    )?;
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
    let reference = first
        .baseline_s
        .map_or(first.wall_s.median * first_cores, |b| b.median);
    reports
        .iter()
        .map(|(size, r)| {
            let cores = r.ranks * r.threads_per_rank;
            // Strong: speedup against the reference; weak: scaled speedup, cores × (first
            // run's time / this run's time).
            let speedup_of = |wall: f64| match mode {
                Mode::Strong => reference / wall,
                Mode::Weak => first.wall_s.median / wall * cores as f64 / first_cores,
            };
            let speedup = match (mode, r.speedup) {
                (Mode::Strong, Some(s)) => s,
                _ => r.wall_s.map(speedup_of),
            };
            let transfer = spmd::timing::Spread::of(r.samples.iter().map(|s| s.transfer_s)).median;
            Row {
                ranks: r.ranks,
                threads: r.threads_per_rank,
                cores,
                size: *size,
                repetitions: r.repetitions,
                wall_s: r.wall_s.median,
                wall_min_s: r.wall_s.min,
                wall_max_s: r.wall_s.max,
                compute_s: r.compute_s.avg,
                transfer_s: transfer,
                comm_fraction: r.comm_fraction,
                imbalance: r.imbalance,
                speedup: speedup.median,
                // A speedup's smallest value comes with the longest time.
                speedup_min: speedup.min.min(speedup.max),
                speedup_max: speedup.max.max(speedup.min),
                efficiency: match mode {
                    Mode::Strong => speedup.median / cores as f64,
                    Mode::Weak => first.wall_s.median / r.wall_s.median,
                },
                warnings: r.warnings.len(),
            }
        })
        .collect()
}

fn print_table(args: &Args, rows: &[Row], first: &Report) {
    let reference = match (args.mode, first.baseline_s) {
        (Mode::Weak, _) => {
            "weak scaling: efficiency = first run's time / this run's time".to_string()
        }
        (Mode::Strong, Some(b)) => format!(
            "speedup against the sequential baseline ({:.4} s on 1 core, median of {})",
            b.median, b.samples
        ),
        (Mode::Strong, None) => {
            "speedup against the first run × its cores (no baseline)".to_string()
        }
    };
    println!("{} — {reference}", args.program.join(" "));
    println!(
        "medians of {} repetitions per run; [min .. max] over them",
        args.repeat
    );
    println!(
        "{:>6} {:>8} {:>6} {:>12} {:>11} {:>21} {:>11} {:>11} {:>7} {:>10} {:>8} {:>15} {:>10}",
        "ranks",
        "threads",
        "cores",
        "size",
        "wall s",
        "[min .. max]",
        "compute s",
        "transfer s",
        "comm %",
        "imbalance",
        "speedup",
        "[min .. max]",
        "efficiency"
    );
    for r in rows {
        println!(
            "{:>6} {:>8} {:>6} {:>12} {:>11.4} {:>21} {:>11.4} {:>11.6} {:>7.2} {:>10.3} {:>8.2} {:>15} {:>9.1}%",
            r.ranks,
            r.threads,
            r.cores,
            r.size.map_or("-".into(), |s| s.to_string()),
            r.wall_s,
            format!("[{:.4} .. {:.4}]", r.wall_min_s, r.wall_max_s),
            r.compute_s,
            r.transfer_s,
            100.0 * r.comm_fraction,
            r.imbalance,
            r.speedup,
            format!("[{:.2} .. {:.2}]", r.speedup_min, r.speedup_max),
            100.0 * r.efficiency
        );
    }
    let warned: Vec<String> = rows
        .iter()
        .filter(|r| r.warnings > 0)
        .map(|r| format!("{}x{}", r.ranks, r.threads))
        .collect();
    if !warned.is_empty() {
        println!(
            "the reports of runs {} carry warnings (noise, imbalance, oversubscription): see \
             their JSON in the output directory",
            warned.join(", ")
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

/// The fitted model with what its predictions need: the runs (for the bootstrap band) and the
/// reference time its speedups are relative to.
pub struct Fitted {
    pub model: ScalingModel,
    pub runs: Vec<RunFigures>,
    pub reference: f64,
}

/// Bootstrap resamplings behind each prediction's interval.
const BOOTSTRAPS: usize = 400;

impl Fitted {
    /// The predicted speedup on `ranks × threads` and its interval (low, high).
    pub fn speedup(&self, ranks: usize, threads: usize) -> (f64, f64, f64) {
        let (fast, slow) = self.model.band(&self.runs, ranks, threads, BOOTSTRAPS);
        (
            self.model.speedup(self.reference, ranks, threads),
            self.reference / slow,
            self.reference / fast,
        )
    }
}

fn fit(reports: &[(Option<u64>, Report)], cores: Option<usize>) -> Result<Fitted, String> {
    let runs: Vec<RunFigures> = reports
        .iter()
        .map(|(_, r)| RunFigures::from_report(r))
        .collect();
    let mut model = ScalingModel::fit(&runs)?;
    if let Some(cores) = cores {
        model = model.with_cores(cores);
    }
    let reference = reports[0]
        .1
        .baseline_s
        .map_or_else(|| model.time(1, 1), |b| b.median);
    Ok(Fitted {
        model,
        runs,
        reference,
    })
}

fn print_model(args: &Args, fitted: &Fitted) {
    let (model, threads) = (&fitted.model, args.threads[0]);
    println!(
        "\nMODEL (a fit, not a measurement): T(r, t) = ({:.4e} s + {:.4e} s / (r·t)) · {:.3} \
         + {:.1} messages · {:.3e} s · log2(r) + {:.0} bytes · {:.3e} s",
        model.serial_s,
        model.parallel_s,
        model.imbalance,
        model.messages,
        model.latency_s,
        model.bytes,
        model.seconds_per_byte
    );
    println!(
        "  compute: serial {:.4e} s + parallel {:.4e} s over the cores; imbalance {:.3} (waiting \
         for the slowest rank, which scales with compute); transfer: {:.3e} s per message per \
         tree level, {:.3e} s per byte (measured on the slowest rank, which does not wait)",
        model.serial_s, model.parallel_s, model.imbalance, model.latency_s, model.seconds_per_byte
    );
    println!(
        "{:>8} {:>8} {:>14} {:>18} {:>22} {:>12}",
        "ranks", "threads", "predicted s", "predicted speedup", "95% band", "efficiency"
    );
    for &ranks in &args.predict {
        let (s, low, high) = fitted.speedup(ranks, threads);
        println!(
            "{:>8} {:>8} {:>14.4e} {:>18.2} {:>22} {:>11.1}%",
            ranks,
            threads,
            model.time(ranks, threads),
            s,
            format!("[{low:.2} .. {high:.2}]"),
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
             costs more in transfer than it saves in compute"
        );
    }
}

/// One held-out run: the model's prediction against the measured time.
#[derive(Debug, Serialize)]
struct HeldOut {
    ranks: usize,
    threads: usize,
    launcher: String,
    predicted_s: f64,
    band_s: (f64, f64),
    measured_s: f64,
    measured_min_s: f64,
    measured_max_s: f64,
    /// (predicted − measured) / measured.
    error: f64,
}

/// Runs the held-out rank counts (under their own launcher, the network probed first when
/// asked), and prints and writes (`held_out.json`) predicted against measured time.
fn held_out(args: &Args, fit_launcher: &run::Launcher, fitted: &Fitted) -> Result<(), String> {
    if args.mode != Mode::Strong {
        return Err("--held-out checks strong-scaling predictions".into());
    }
    let mpirun = args.held_out_mpirun.as_deref().unwrap_or(&args.mpirun);
    let extra = args
        .held_out_mpirun_args
        .as_deref()
        .unwrap_or(&args.mpirun_args);
    let launcher = run::Launcher::detect(mpirun, extra, args.timeout)?;
    let mut model = fitted.model;
    if args.probe {
        let here = probe::measure(fit_launcher, 2, &args.out.join("probe_fit.json"))?;
        let there = probe::measure(&launcher, 2, &args.out.join("probe_held_out.json"))?;
        model = model.on_network(
            there.latency_s - here.latency_s,
            there.seconds_per_byte - here.seconds_per_byte,
        );
        println!(
            "
PROBE (spmd send/receive ping-pong, 2 ranks): fitted runs' network {:.2} µs +              {:.3} ns/byte one way; held-out runs' network {:.2} µs + {:.3} ns/byte; model's              α {:.3e} -> {:.3e} s, β {:.3e} -> {:.3e} s/byte",
            here.latency_s * 1e6,
            here.seconds_per_byte * 1e9,
            there.latency_s * 1e6,
            there.seconds_per_byte * 1e9,
            fitted.model.latency_s,
            model.network().0,
            fitted.model.seconds_per_byte,
            model.network().1
        );
    }
    let mut rows = Vec::new();
    for &threads in &args.threads {
        for &ranks in &args.held_out {
            let path = args.out.join(format!("held_out_r{ranks}_t{threads}.json"));
            let mut program_args: Vec<String> = args.program[1..].to_vec();
            program_args.extend(["--repeat".into(), args.repeat.to_string()]);
            program_args.extend(["--report".into(), path.display().to_string()]);
            eprintln!("spmd-scale: held out: {ranks} ranks x {threads} threads ({mpirun}) ...");
            launcher.run(ranks, threads, &args.program[0], &program_args)?;
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("no report at {}: {e}", path.display()))?;
            let report = Report::from_json(&text).map_err(|e| e.to_string())?;
            let predicted = model.time(ranks, threads);
            let measured = report.wall_s.median;
            rows.push(HeldOut {
                ranks,
                threads,
                launcher: format!("{mpirun} {extra}").trim().to_owned(),
                predicted_s: predicted,
                band_s: model.band(&fitted.runs, ranks, threads, BOOTSTRAPS),
                measured_s: measured,
                measured_min_s: report.wall_s.min,
                measured_max_s: report.wall_s.max,
                error: (predicted - measured) / measured,
            });
        }
    }
    println!(
        "
HELD OUT (not in the fit{}{}):",
        args.cores
            .map_or(String::new(), |c| format!("; {c} cores in all")),
        if args.probe { "; network probed" } else { "" }
    );
    println!(
        "{:>6} {:>8} {:>13} {:>24} {:>12} {:>21} {:>8}",
        "ranks", "threads", "predicted s", "95% band", "measured s", "[min .. max]", "error"
    );
    for r in &rows {
        println!(
            "{:>6} {:>8} {:>13.4} {:>24} {:>12.4} {:>21} {:>7.1}%",
            r.ranks,
            r.threads,
            r.predicted_s,
            format!("[{:.4} .. {:.4}]", r.band_s.0, r.band_s.1),
            r.measured_s,
            format!("[{:.4} .. {:.4}]", r.measured_min_s, r.measured_max_s),
            100.0 * r.error
        );
    }
    let path = args.out.join("held_out.json");
    let text = serde_json::to_string_pretty(&rows).map_err(|e| e.to_string())?;
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
}
