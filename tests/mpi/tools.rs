//! The timing report of an example and the `spmd-scale` runner, end to end.

use std::path::{Path, PathBuf};
use std::process::Command;

use spmd::timing::Report;

use crate::harness::{trial, Module, LAUNCH_TIMEOUT};
use crate::launcher::{self, mpirun, run, Outcome};

const SAMPLES: &str = "4000000";

pub const MODULE: Module = Module {
    scenarios: &[],
    trials: || {
        let mut trials = vec![trial("example_pi_report_np2", pi_report)];
        // The runner exists only with the `scale` feature.
        if let Some(runner) = option_env!("CARGO_BIN_EXE_spmd-scale") {
            trials.push(trial("scaling_runner_np1_np2", move || {
                scaling_runner(Path::new(runner))
            }));
            trials.push(trial("scaling_runner_bad_input", move || {
                scaling_runner_bad_input(Path::new(runner))
            }));
        }
        trials
    },
};

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn read_report(path: &Path) -> Result<Report, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Report::from_json(&text).map_err(|e| e.to_string())
}

/// `pi --baseline --report --csv` at 2 ranks: every figure of the report is there and
/// consistent, on screen and in the files.
fn pi_report() -> Result<(), String> {
    let dir = scratch("pi-report");
    let (json, csv) = (dir.join("r.json"), dir.join("r.csv"));
    let args = [
        "--samples",
        SAMPLES,
        "--baseline",
        "--report",
        json.to_str().unwrap(),
        "--csv",
        csv.to_str().unwrap(),
    ];
    let out = run(
        mpirun(2, &[], &launcher::example("pi"), &args, &[]),
        LAUNCH_TIMEOUT,
    );
    if out.code != Some(0) {
        return Err(out.describe());
    }
    let r = read_report(&json)?;
    let baseline = r.baseline_s.ok_or("no baseline_s")?.median;
    let speedup = r.speedup.ok_or("no speedup")?.median;
    let cores = (r.ranks * r.threads_per_rank) as f64;
    let problems = [
        (r.program != "pi" || r.ranks != 2, "program or ranks"),
        (
            speedup != baseline / r.wall_s.median,
            "speedup = baseline / wall",
        ),
        (
            r.efficiency.map(|e| e.median) != Some(speedup / cores),
            "efficiency = speedup / cores",
        ),
        (r.karp_flatt.is_none(), "Karp-Flatt fraction"),
        (r.peak_rss_bytes.min <= 0.0, "peak memory"),
        (!(0.0..1.0).contains(&r.comm_fraction), "comm fraction"),
        (r.imbalance < 1.0, "imbalance below 1"),
        (
            !r.regions.iter().any(|g| g.name == "sample"),
            "the sample region",
        ),
        (
            !r.regions
                .iter()
                .any(|g| g.name == "all_reduce" && g.bytes == 32),
            "all_reduce bytes",
        ),
        (!table_complete(&out), "the printed table"),
    ];
    if let Some((_, what)) = problems.iter().find(|(bad, _)| *bad) {
        return Err(format!("{what} wrong in {r:#?}\n{}", out.describe()));
    }
    let csv_text = std::fs::read_to_string(&csv).map_err(|e| e.to_string())?;
    if !csv_text
        .starts_with("name,kind,calls,min,median,avg,max,ci_low,ci_high,bytes\nwall_s,spread,")
    {
        return Err(format!("bad CSV:\n{csv_text}"));
    }
    Ok(())
}

fn table_complete(out: &Outcome) -> bool {
    [
        "wall",
        "compute",
        "comm",
        "peak memory",
        "comm fraction",
        "imbalance",
        "speedup",
        "efficiency",
        "Karp-Flatt",
        "sample",
    ]
    .iter()
    .all(|needle| out.stdout.contains(needle))
}

fn runner_command(runner: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(runner);
    cmd.args(args);
    if launcher::flavor() == launcher::Flavor::OpenMpi {
        cmd.env("OMPI_ALLOW_RUN_AS_ROOT", "1")
            .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
            .env("OMPI_MCA_rmaps_base_oversubscribe", "1");
    }
    cmd
}

/// Ranks 1 and 2 on the π example: table, CSV, plot and model, consistent with the reports.
fn scaling_runner(runner: &Path) -> Result<(), String> {
    let dir = scratch("scale");
    let pi = launcher::example("pi");
    let args = [
        "--ranks",
        "1,2",
        "--repeat",
        "3",
        "--predict",
        "8,64",
        "--out",
        dir.to_str().unwrap(),
        "--",
        pi.to_str().unwrap(),
        "--samples",
        SAMPLES,
    ];
    let out = run(runner_command(runner, &args), LAUNCH_TIMEOUT);
    if out.code != Some(0) {
        return Err(out.describe());
    }
    for needle in [
        "speedup against the sequential baseline",
        "medians of 3 repetitions per run",
        "efficiency",
        "MODEL (a fit",
        "imbalance",
        "95% band",
        "predicted",
    ] {
        if !out.stdout.contains(needle) {
            return Err(format!(
                "runner output lacks {needle:?}: {}",
                out.describe()
            ));
        }
    }
    let first = read_report(&dir.join("run_r1_t1.json"))?;
    let second = read_report(&dir.join("run_r2_t1.json"))?;
    let baseline = first
        .baseline_s
        .ok_or("the first run measured no baseline")?
        .median;
    if second.baseline_s.is_some() || second.ranks != 2 {
        return Err("the second run should be 2 ranks without a baseline".into());
    }
    if (first.repetitions, second.repetitions) != (3, 3) {
        return Err(format!(
            "--repeat 3 was not honoured: {} and {} repetitions",
            first.repetitions, second.repetitions
        ));
    }
    let csv = std::fs::read_to_string(dir.join("scaling.csv")).map_err(|e| e.to_string())?;
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let headers = reader.headers().map_err(|e| e.to_string())?.clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or(format!("no {name} column"))
    };
    let (ranks_col, speedup_col) = (column("ranks")?, column("speedup")?);
    let rows: Vec<csv::StringRecord> = reader
        .records()
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    if rows.len() != 2 {
        return Err(format!("expected 2 CSV rows:\n{csv}"));
    }
    for (row, report) in rows.iter().zip([&first, &second]) {
        let speedup: f64 = row[speedup_col]
            .parse()
            .map_err(|_| format!("bad speedup in {csv}"))?;
        // With a baseline: the median of the paired speedups; without: the baseline's median
        // over this run's median time (an odd number of repetitions, so a sample each).
        let expected = report
            .speedup
            .map_or(baseline / report.wall_s.median, |s| s.median);
        if row[ranks_col] != report.ranks.to_string()
            || (speedup - expected).abs() > 1e-9 * expected
        {
            return Err(format!(
                "CSV row {row:?} does not match its report (speedup {expected})"
            ));
        }
    }
    let svg = std::fs::read_to_string(dir.join("speedup.svg")).map_err(|e| e.to_string())?;
    if !(svg.starts_with("<svg")
        && svg.contains("measured")
        && svg.contains("ideal")
        && svg.contains("model"))
    {
        return Err("speedup.svg lacks the measured, ideal or model series".into());
    }
    Ok(())
}

/// Bad flags and a program that writes no report are clear errors, not hangs.
fn scaling_runner_bad_input(runner: &Path) -> Result<(), String> {
    let dir = scratch("scale-bad");
    let out_dir = dir.to_str().unwrap();
    let cases: [(&[&str], &str); 3] = [
        (
            &["--mode", "weak", "--out", out_dir, "--", "true"],
            "weak scaling needs --size-flag",
        ),
        (
            &["--ranks", "0", "--out", out_dir, "--", "true"],
            "at least 1",
        ),
        (
            &["--ranks", "1", "--out", out_dir, "--", "true"],
            "wrote no report",
        ),
    ];
    for (args, expected) in cases {
        let out = run(runner_command(runner, args), LAUNCH_TIMEOUT);
        if out.code == Some(0) || !out.stderr.contains(expected) {
            return Err(format!(
                "{args:?}: expected a failure saying {expected:?}: {}",
                out.describe()
            ));
        }
    }
    Ok(())
}
