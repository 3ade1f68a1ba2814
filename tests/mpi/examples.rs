//! Every example under `mpirun` with a small problem. Each example checks its own answer and
//! records it in its JSON report (`--report`): these trials read the report, not the screen.

use std::path::PathBuf;

use ndarray_npy::ReadNpyExt;
use serde_json::{json, Value};
use spmd::timing::Report;

use crate::harness::{trial, Module, LAUNCH_TIMEOUT};
use crate::launcher::{self, mpirun, run, Outcome};

pub const MODULE: Module = Module {
    scenarios: &[],
    trials: || {
        vec![
            trial("example_heat2d_np1_to_np4", heat2d),
            trial("example_sgd_np1_to_np4", sgd),
            trial("example_sample_sort_np1_to_np4", sample_sort),
            trial("example_cat_farm_np1_to_np4", cat_farm),
            trial("example_cat_farm_real_images_np2", cat_farm_files),
            trial("example_zoo_pipeline_np1_to_np4", zoo_pipeline),
            trial("example_npb_ep_class_s_np1_to_np4", || npb("npb_ep")),
            trial("example_npb_cg_class_s_np1_to_np4", || npb("npb_cg")),
            trial("example_npb_mg_class_s_np1_2_4", npb_mg),
            trial("example_pi_np1_to_np4", pi),
            trial("example_poisson_np1_to_np4", poisson),
        ]
    },
};

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("examples")
        .join(name);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

/// Runs example `name` on `ranks` ranks with `args` and `--report`; the run must exit 0 and
/// its report must say `verified: true`. Returns the report and the run's output.
fn verified(name: &str, ranks: usize, args: &[&str]) -> Result<(Report, Outcome), String> {
    let json = scratch(name).join(format!(
        "np{ranks}-{}.json",
        args.join("_").replace('/', "")
    ));
    let _ = std::fs::remove_file(&json);
    let mut all_args = args.to_vec();
    all_args.extend(["--report", json.to_str().expect("UTF-8 path")]);
    let out = run(
        mpirun(ranks, &[], &launcher::example(name), &all_args, &[]),
        LAUNCH_TIMEOUT,
    );
    let context = || format!("{name} {args:?} at {ranks} ranks");
    if out.code != Some(0) {
        return Err(format!("{} failed: {}", context(), out.describe()));
    }
    let text = std::fs::read_to_string(&json)
        .map_err(|e| format!("{}: no report {}: {e}", context(), json.display()))?;
    let report = Report::from_json(&text).map_err(|e| format!("{}: {e}", context()))?;
    if report.result("verified") != Some(&json!(true)) || report.ranks != ranks {
        return Err(format!(
            "{}: the report does not say verified on {ranks} ranks: {:?}\n{}",
            context(),
            report.results,
            out.describe()
        ));
    }
    Ok((report, out))
}

/// A recorded result, or an error naming it.
fn result<'a>(report: &'a Report, key: &str) -> Result<&'a Value, String> {
    report.result(key).ok_or_else(|| {
        format!(
            "{}: no result {key:?}: {:?}",
            report.program, report.results
        )
    })
}

/// The heat example at 1..4 ranks (bit-identical to a serial solve, which it checks itself);
/// the iteration count must not depend on the rank count.
fn heat2d() -> Result<(), String> {
    let dir = scratch("heat2d");
    let mut iterations = Vec::new();
    let mut files = Vec::new();
    for ranks in 1..=4 {
        let png = dir.join(format!("r{ranks}.png"));
        let npy = dir.join(format!("r{ranks}.npy"));
        let args = [
            "--n",
            "37",
            "--m",
            "23",
            "--tol",
            "1e-2",
            "--baseline",
            "--image",
            png.to_str().unwrap(),
            "--output",
            npy.to_str().unwrap(),
        ];
        let (report, _) = verified("heat2d", ranks, &args)?;
        // The field every rank wrote into one file: the same bytes at every rank count (the
        // solve is bit-identical), hot top edge, the mean the root printed.
        let bytes = std::fs::read(&npy).map_err(|e| format!("{}: {e}", npy.display()))?;
        let field = ndarray::Array2::<f64>::read_npy(&bytes[..]).map_err(|e| e.to_string())?;
        let mean = field.slice(ndarray::s![1..36, 1..22]).mean().unwrap();
        if field.dim() != (37, 23)
            || field.row(0).iter().any(|&t| t != 100.0)
            || result(&report, "mean_interior")?.as_f64() != Some(mean)
        {
            return Err(format!(
                "heat2d at {ranks} ranks: the .npy field is not the solution"
            ));
        }
        files.push(bytes);
        if report.speedup.is_none() {
            return Err(format!(
                "heat2d at {ranks} ranks: no speedup with --baseline"
            ));
        }
        let image = std::fs::read(&png).map_err(|e| e.to_string())?;
        if !image.starts_with(b"\x89PNG") {
            return Err("heat2d wrote no PNG".into());
        }
        iterations.push(result(&report, "iterations")?.clone());
    }
    // Residual every 5 sweeps (non-blocking, behind the next sweep) and blocking halos:
    // still bit-identical to the serial solve with the same check interval.
    for (ranks, halos) in [(3, "split"), (2, "blocking")] {
        let args = [
            "--n",
            "37",
            "--m",
            "23",
            "--tol",
            "1e-2",
            "--check-every",
            "5",
            "--halos",
            halos,
        ];
        verified("heat2d", ranks, &args)?;
    }
    if files.iter().any(|f| f != &files[0]) {
        return Err("heat2d's .npy output differs between rank counts".into());
    }
    #[cfg(feature = "hdf5")]
    {
        // The same field as dataset `temperature` of an HDF5 file, with its XDMF sidecar.
        let h5 = dir.join("r3.h5");
        let args = [
            "--n",
            "37",
            "--m",
            "23",
            "--tol",
            "1e-2",
            "--output",
            h5.to_str().unwrap(),
        ];
        verified("heat2d", 3, &args)?;
        let read = || -> hdf5::Result<ndarray::Array2<f64>> {
            hdf5::File::open(&h5)?
                .dataset("temperature")?
                .read_2d::<f64>()
        };
        let field = read().map_err(|e| format!("{}: {e}", h5.display()))?;
        let npy = ndarray::Array2::<f64>::read_npy(&files[0][..]).map_err(|e| e.to_string())?;
        if field != npy || !dir.join("r3.xmf").exists() {
            return Err("heat2d's .h5 output is not the field its .npy holds (or no .xmf)".into());
        }
    }
    if iterations.iter().all(|i| i == &iterations[0]) {
        Ok(())
    } else {
        Err(format!(
            "iteration counts differ across rank counts: {iterations:?}"
        ))
    }
}

/// The training example at 1..4 ranks: it checks its weights against serial training.
fn sgd() -> Result<(), String> {
    for ranks in 1..=4 {
        // The serial algorithm: weights equal to serial training within 1e-9.
        verified(
            "sgd",
            ranks,
            &[
                "--samples",
                "20000",
                "--batch",
                "512",
                "--baseline",
                "--sync",
                "blocking",
            ],
        )?;
        // The algorithms that synchronise less (average is the default): the whole-data loss
        // within 2% of serial training's (the program checks and records it).
        for sync in ["overlap", "average"] {
            let (report, _) = verified(
                "sgd",
                ranks,
                &["--samples", "20000", "--batch", "512", "--sync", sync],
            )?;
            let gap = result(&report, "loss_difference_to_serial")?.as_f64();
            if !gap.is_some_and(|gap| gap <= 0.02) {
                return Err(format!(
                    "sgd --sync {sync} at {ranks} ranks: loss {gap:?} apart"
                ));
            }
        }
    }
    Ok(())
}

/// The sort example at 1..4 ranks, every key distribution, and fewer keys than ranks.
fn sample_sort() -> Result<(), String> {
    for ranks in 1..=4 {
        for (keys, distribution) in [
            ("20000", "uniform"),
            ("20000", "skewed"),
            ("20000", "duplicates"),
            ("2", "uniform"),
        ] {
            let args = ["--keys", keys, "--distribution", distribution, "--baseline"];
            let (report, _) = verified("sample_sort", ranks, &args)?;
            if result(&report, "equal_to_serial_sort")? != &json!(true) {
                return Err(format!(
                    "sample_sort {keys} {distribution} at {ranks} ranks: not compared with a \
                     serial sort"
                ));
            }
        }
    }
    Ok(())
}

/// The task farm at 1..4 ranks with a slow worker: every cat found, and the slow worker
/// gets fewer tiles than the others (dynamic load balancing).
fn cat_farm() -> Result<(), String> {
    for ranks in 1..=4 {
        let slow: &[&str] = if ranks >= 3 {
            &["--slow-worker", "1", "--slow-ms", "250"]
        } else {
            &[]
        };
        let args = [&["--images", "4", "--size", "128", "--baseline"][..], slow].concat();
        let (report, _) = verified("cat_farm", ranks, &args)?;
        let counts: Vec<usize> = serde_json::from_value(result(&report, "tiles_per_rank")?.clone())
            .map_err(|e| e.to_string())?;
        if counts.len() != ranks || counts.iter().sum::<usize>() != 16 {
            return Err(format!("cat_farm tile counts {counts:?} at {ranks} ranks"));
        }
        if ranks >= 3 && counts[1] >= *counts[2..].iter().max().unwrap() {
            return Err(format!(
                "the slow worker was not given fewer tiles: {counts:?}"
            ));
        }
    }
    Ok(())
}

/// `--images-dir` on real PNG files: a random template planted at a known place is found
/// there and nowhere else.
fn cat_farm_files() -> Result<(), String> {
    let dir = scratch("cat-farm-files");
    let pixel = |seed: u32| ((seed.wrapping_mul(2_654_435_761) >> 24) & 0xff) as u8;
    let template = image::GrayImage::from_fn(12, 12, |x, y| image::Luma([pixel(y * 12 + x + 7)]));
    let mut picture =
        image::GrayImage::from_fn(80, 60, |x, y| image::Luma([pixel(10_000 + y * 80 + x) / 2]));
    image::imageops::replace(&mut picture, &template, 20, 10);
    template
        .save(dir.join("template.png"))
        .map_err(|e| e.to_string())?;
    std::fs::create_dir_all(dir.join("images")).map_err(|e| e.to_string())?;
    picture
        .save(dir.join("images").join("a.png"))
        .map_err(|e| e.to_string())?;
    let (images, template) = (dir.join("images"), dir.join("template.png"));
    let args = [
        "--images-dir",
        images.to_str().unwrap(),
        "--template",
        template.to_str().unwrap(),
        "--tile",
        "32",
    ];
    let (report, _) = verified("cat_farm", 2, &args)?;
    let matches = result(&report, "matches")?;
    if matches != &json!([[[10, 20]]]) {
        return Err(format!(
            "cat_farm on files found {matches}, expected one at (10, 20)"
        ));
    }
    Ok(())
}

/// The pipeline at 1..4 ranks (fused on one rank, detection and archive together at 2 and 3,
/// three stages at 4): every frame detected and archived once, results equal to a serial
/// run, the limiting stage named.
fn zoo_pipeline() -> Result<(), String> {
    for ranks in 1..=4 {
        let args = [
            "--cameras",
            "5",
            "--frames",
            "12",
            "--fps",
            "0",
            "--width",
            "160",
            "--height",
            "120",
            "--window",
            "3",
        ];
        let (report, _) = verified("zoo_pipeline", ranks, &args)?;
        if result(&report, "frames")? != &json!(60) {
            return Err(format!(
                "zoo_pipeline at {ranks} ranks: {:?}",
                report.results
            ));
        }
        let limit = result(&report, "limiting_stage")?;
        if !limit.as_str().is_some_and(|s| s.contains("detect")) {
            return Err(format!(
                "zoo_pipeline at {ranks} ranks: limited by {limit}, not detection"
            ));
        }
    }
    Ok(())
}

/// NPB MG class S at 1, 2 and 4 ranks verifies; 3 ranks (not a power of two) is refused
/// with a message, not a wrong answer or a hang.
fn npb_mg() -> Result<(), String> {
    for ranks in [1, 2, 4] {
        // The baseline (a one-rank communicator on the root) at 2 ranks.
        let args: &[&str] = if ranks == 2 {
            &["--class", "S", "--baseline"]
        } else {
            &["--class", "S"]
        };
        let (report, _) = verified("npb_mg", ranks, args)?;
        if ranks == 2 && report.speedup.is_none() {
            return Err("npb_mg at 2 ranks: no speedup with --baseline".into());
        }
    }
    let out = run(
        mpirun(3, &[], &launcher::example("npb_mg"), &[], &[]),
        LAUNCH_TIMEOUT,
    );
    if out.code == Some(0) || !out.stderr.contains("needs a power-of-two number of ranks") {
        return Err(format!(
            "npb_mg at 3 ranks should refuse: {}",
            out.describe()
        ));
    }
    Ok(())
}

/// An NPB kernel, class S, at 1..4 ranks must verify against the official values.
fn npb(name: &str) -> Result<(), String> {
    for ranks in 1..=4 {
        let (report, _) = verified(name, ranks, &["--class", "S"])?;
        if result(&report, "class")? != &json!("S") {
            return Err(format!("{name}: {:?}", report.results));
        }
    }
    Ok(())
}

/// The π example at 1..4 ranks: it checks its own answer; the hit count must not depend on
/// the number of ranks (every sample has a fixed seed).
fn pi() -> Result<(), String> {
    let mut hits = Vec::new();
    for ranks in 1..=4 {
        let (report, _) = verified("pi", ranks, &["--samples", "2000000"])?;
        hits.push(result(&report, "hits")?.clone());
    }
    if hits.iter().all(|h| h == &hits[0]) {
        Ok(())
    } else {
        Err(format!("hit counts differ across rank counts: {hits:?}"))
    }
}

/// The Poisson example, 2-D and 3-D, with each solver and preconditioner somewhere in
/// 1..4 ranks: it checks its error against the exact solution itself. In reproducible mode
/// the iteration count and error must not depend on the rank count.
fn poisson() -> Result<(), String> {
    let mut reproducible = Vec::new();
    for ranks in 1..=4 {
        let (report, _) = verified("poisson", ranks, &["--n", "30", "--reproducible"])?;
        reproducible.push((
            result(&report, "iterations")?.clone(),
            result(&report, "max_error")?.clone(),
        ));
        let extra: &[&str] = match ranks {
            1 => &["--dim", "3", "--n", "9", "--baseline"],
            2 => &[
                "--solver",
                "gmres",
                "--preconditioner",
                "block-jacobi",
                "--baseline",
            ],
            3 => &["--dim", "3", "--n", "10", "--solver", "bicgstab"],
            _ => &["--iterations", "5", "--solver", "pipelined-cg"],
        };
        let (report, _) = verified("poisson", ranks, extra)?;
        if extra.contains(&"--baseline") && report.speedup.is_none() {
            return Err(format!(
                "poisson at {ranks} ranks: no speedup with --baseline"
            ));
        }
    }
    if reproducible.iter().any(|r| *r != reproducible[0]) {
        return Err(format!(
            "poisson --reproducible: iterations and errors differ between rank counts: \
             {reproducible:?}"
        ));
    }
    Ok(())
}
