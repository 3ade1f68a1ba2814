//! Multi-process tests: this binary is both the harness and the program it launches.
//!
//! Run by `cargo test` (harness = false), it launches itself under `mpirun -n P` for P = 1..4
//! (1..7 for the reproducible sums) with `SPMD_TEST_SCENARIO` naming what the ranks should
//! run, and checks exit codes and output, each launch under a timeout. Launched that way, it runs one scenario as a rank.
//! Arguments that do not start with `-` filter the cases by substring, as libtest does.

mod arrays;
mod bad_input;
#[cfg(feature = "bench")]
mod bench_driver;
mod checkpoint;
mod collectives;
mod communicators;
mod exact;
mod grid;
mod launcher;
mod runtime;
mod support;
mod timing;
mod tools;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use launcher::{flavor, mpirun, run, Flavor, Outcome};

const SCENARIO_ENV: &str = "SPMD_TEST_SCENARIO";
/// Generous for 4 oversubscribed ranks on 2 busy cores; a deadlock still fails well inside it.
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(120);
/// A panic must end the whole job at least this fast.
const PANIC_DEADLINE: Duration = Duration::from_secs(30);

fn main() {
    if let Ok(scenario) = std::env::var(SCENARIO_ENV) {
        run_scenario(&scenario);
        return;
    }
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let cases: Vec<Case> = all_cases()
        .into_iter()
        .filter(|c| filters.is_empty() || filters.iter().any(|f| c.name.contains(f.as_str())))
        .collect();
    println!("\nrunning {} mpirun cases ({:?})", cases.len(), flavor());
    let start = Instant::now();
    let mut failed = Vec::new();
    for case in &cases {
        let t = Instant::now();
        match (case.check)() {
            Ok(()) => println!(
                "test {} ... ok ({:.1} s)",
                case.name,
                t.elapsed().as_secs_f64()
            ),
            Err(why) => {
                println!("test {} ... FAILED", case.name);
                failed.push((case.name.clone(), why));
            }
        }
    }
    for (name, why) in &failed {
        println!("\n---- {name} ----\n{why}");
    }
    println!(
        "\ntest result: {}. {} passed; {} failed; 0 ignored; 0 measured; 0 filtered out; finished in {:.2}s\n",
        if failed.is_empty() { "ok" } else { "FAILED" },
        cases.len() - failed.len(),
        failed.len(),
        start.elapsed().as_secs_f64()
    );
    if !failed.is_empty() {
        std::process::exit(1);
    }
}

/// Rank side: run one scenario, then report success on stdout.
fn run_scenario(scenario: &str) {
    match scenario {
        "collectives" => collectives::run(),
        "arrays" => arrays::run(),
        "grid" => grid::run(),
        "exact" => exact::run(),
        "communicators" => communicators::run(),
        "checkpoint" => checkpoint::run(),
        #[cfg(feature = "bench")]
        "bench_driver" => bench_driver::run(),
        "bad_input" => bad_input::run(),
        "threads" => runtime::threads(),
        "bad_threads_env" => runtime::bad_threads_env(),
        "panic_main" => runtime::panic_main(),
        "panic_rayon" => runtime::panic_rayon(),
        "watchdog_hang" => runtime::watchdog_hang(),
        "panic_in_reduction_op" => runtime::panic_in_reduction_op(),
        "min_ranks" => runtime::min_ranks(),
        "bad_watchdog_env" => runtime::bad_watchdog_env(),
        "timing_split" => timing::known_split(),
        "profiler_truth" => timing::profiler_truth(),
        other => panic!("unknown scenario {other:?}"),
    }
}

struct Case {
    name: String,
    check: Box<dyn Fn() -> Result<(), String>>,
}

fn case(name: String, check: impl Fn() -> Result<(), String> + 'static) -> Case {
    Case {
        name,
        check: Box::new(check),
    }
}

fn self_exe() -> PathBuf {
    std::env::current_exe().expect("current exe")
}

/// Launches `scenario` on `ranks` ranks.
fn launch(scenario: &str, ranks: usize, extra: &[&str], env: &[(&str, &str)]) -> Outcome {
    let mut all_env = vec![(SCENARIO_ENV, scenario)];
    all_env.extend_from_slice(env);
    run(
        mpirun(ranks, extra, &self_exe(), &[], &all_env),
        LAUNCH_TIMEOUT,
    )
}

/// Exit 0 and exactly one success line per rank.
fn expect_success(scenario: &str, ranks: usize, out: &Outcome) -> Result<(), String> {
    let done = out
        .stdout
        .lines()
        .filter(|l| l.starts_with(&format!("spmd-test ok: {scenario} ")))
        .count();
    if out.code == Some(0) && done == ranks {
        Ok(())
    } else {
        Err(format!(
            "expected exit 0 and {ranks} success lines, found {done}: {}",
            out.describe()
        ))
    }
}

/// Non-zero exit, quickly, with the panic message and (with > 1 rank) the abort notice.
fn expect_panic_abort(ranks: usize, out: &Outcome) -> Result<(), String> {
    let text = expect_aborted_in_time(out)?;
    let problems = [
        (
            !text.contains("deliberate panic on rank"),
            "the panic message is missing",
        ),
        (
            ranks > 1 && !text.contains("panicked (thread"),
            "the abort notice naming the rank is missing",
        ),
    ];
    match problems.iter().find(|(bad, _)| *bad) {
        None => Ok(()),
        Some((_, what)) => Err(format!("{what}: {}", out.describe())),
    }
}

/// The watchdog ended the job: non-zero, well before rank 0's 100 s sleep, with a report
/// from every waiting rank (1..ranks) naming all_reduce, and none from rank 0.
fn expect_watchdog_abort(ranks: usize, out: &Outcome) -> Result<(), String> {
    let text = expect_aborted_in_time(out)?;
    let reported = |r: usize| {
        text.lines().any(|l| {
            l.contains(&format!(
                "spmd watchdog: rank {r} of {ranks} has been in all_reduce"
            ))
        })
    };
    if reported(0) {
        return Err(format!(
            "rank 0 was computing, not stuck: {}",
            out.describe()
        ));
    }
    match (1..ranks).find(|&r| !reported(r)) {
        Some(r) => Err(format!(
            "no watchdog report from rank {r}: {}",
            out.describe()
        )),
        None => Ok(()),
    }
}

/// The job ended by itself, non-zero, within [`PANIC_DEADLINE`]; returns its output.
fn expect_aborted_in_time(out: &Outcome) -> Result<String, String> {
    let problems = [
        (out.timed_out, "the job hung"),
        (out.code == Some(0), "the job exited 0"),
        (out.elapsed > PANIC_DEADLINE, "the job took too long to end"),
    ];
    match problems.iter().find(|(bad, _)| *bad) {
        None => Ok(format!("{}{}", out.stdout, out.stderr)),
        Some((_, what)) => Err(format!("{what}: {}", out.describe())),
    }
}

fn all_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for ranks in 1..=4 {
        for scenario in [
            "collectives",
            "bad_input",
            "arrays",
            "grid",
            "communicators",
        ] {
            cases.push(case(format!("{scenario}_np{ranks}"), move || {
                expect_success(scenario, ranks, &launch(scenario, ranks, &[], &[]))
            }));
        }
    }
    for ranks in [2, 3] {
        cases.push(case(
            format!("watchdog_reports_stuck_ranks_np{ranks}"),
            move || {
                let env = [("SPMD_WATCHDOG", "2")];
                expect_watchdog_abort(ranks, &launch("watchdog_hang", ranks, &[], &env))
            },
        ));
    }
    cases.push(case("watchdog_quiet_when_nothing_hangs_np3".into(), || {
        let env = [("SPMD_WATCHDOG", "20")];
        expect_success("collectives", 3, &launch("collectives", 3, &[], &env))
    }));
    cases.push(case("watchdog_env_malformed_np2".into(), || {
        let env = [("SPMD_WATCHDOG", "soon")];
        expect_success(
            "bad_watchdog_env",
            2,
            &launch("bad_watchdog_env", 2, &[], &env),
        )
    }));
    // Exact sums must not change with the rank count (1..7, odd ones included) or the pool.
    for ranks in 1..=7 {
        let threads = if ranks % 2 == 0 { "1" } else { "3" };
        cases.push(case(
            format!("exact_sums_np{ranks}_threads{threads}"),
            move || {
                let env = [("SPMD_NUM_THREADS", threads)];
                expect_success("exact", ranks, &launch("exact", ranks, &[], &env))
            },
        ));
    }
    cases.push(case("collectives_without_mpirun".into(), || {
        let mut cmd = std::process::Command::new(self_exe());
        cmd.env(SCENARIO_ENV, "collectives");
        expect_success("collectives", 1, &run(cmd, LAUNCH_TIMEOUT))
    }));
    cases.push(case("min_ranks_refused_without_mpirun".into(), || {
        let mut cmd = std::process::Command::new(self_exe());
        cmd.env(SCENARIO_ENV, "min_ranks")
            .env("SPMD_TEST_LAUNCHED", "0");
        expect_success("min_ranks", 1, &run(cmd, LAUNCH_TIMEOUT))
    }));
    cases.push(case("min_ranks_refused_np1".into(), || {
        let env = [("SPMD_TEST_LAUNCHED", "1")];
        expect_success("min_ranks", 1, &launch("min_ranks", 1, &[], &env))
    }));
    cases.push(case("min_ranks_met_np2".into(), || {
        let out = launch("min_ranks", 2, &[], &[("SPMD_TEST_LAUNCHED", "1")]);
        if out.stdout.contains("refused") {
            return Err(format!("2 ranks were refused: {}", out.describe()));
        }
        expect_success("min_ranks", 2, &out)
    }));
    for ranks in 1..=3 {
        cases.push(case(format!("threads_unbound_np{ranks}"), move || {
            let extra: &[&str] = match flavor() {
                Flavor::OpenMpi => &["--bind-to", "none"],
                Flavor::Mpich => &[],
            };
            let expect = (num_cpus() / ranks).max(1).to_string();
            let env = [("SPMD_EXPECT_THREADS", expect.as_str())];
            expect_success("threads", ranks, &launch("threads", ranks, extra, &env))
        }));
    }
    cases.push(case("threads_from_env_np2".into(), || {
        let env = [("SPMD_NUM_THREADS", "3"), ("SPMD_EXPECT_THREADS", "3")];
        expect_success("threads", 2, &launch("threads", 2, &[], &env))
    }));
    cases.push(case("threads_env_malformed_np2".into(), || {
        let env = [("SPMD_NUM_THREADS", "lots")];
        expect_success(
            "bad_threads_env",
            2,
            &launch("bad_threads_env", 2, &[], &env),
        )
    }));
    if flavor() == Flavor::OpenMpi {
        cases.push(case("threads_bound_to_core_np2".into(), || {
            let env = [("SPMD_EXPECT_THREADS", "1")];
            let extra = ["--bind-to", "core"];
            expect_success("threads", 2, &launch("threads", 2, &extra, &env))
        }));
    }
    for ranks in 1..=3 {
        cases.push(case(format!("panic_on_main_thread_np{ranks}"), move || {
            expect_panic_abort(ranks, &launch("panic_main", ranks, &[], &[]))
        }));
    }
    for ranks in [2, 4] {
        cases.push(case(
            format!("panic_in_rayon_closure_np{ranks}"),
            move || expect_panic_abort(ranks, &launch("panic_rayon", ranks, &[], &[])),
        ));
    }
    for ranks in [2, 3] {
        cases.push(case(
            format!("panic_in_reduction_op_np{ranks}"),
            move || {
                let out = launch("panic_in_reduction_op", ranks, &[], &[]);
                expect_panic_abort(ranks, &out)
            },
        ));
    }
    for ranks in 1..=4 {
        for wait in ["0", "1"] {
            let name = format!("timing_known_split_np{ranks}_wait{wait}");
            cases.push(case(name, move || {
                // MPICH busy-polls inside collectives: with more ranks than cores the
                // spinning ranks delay the sleeping one's wake-ups by tens of milliseconds.
                let slack = if flavor() == Flavor::Mpich && ranks > num_cpus() {
                    "0.080"
                } else {
                    "0.030"
                };
                let env = [("SPMD_TEST_WAIT", wait), ("SPMD_TEST_SLACK", slack)];
                let out = launch("timing_split", ranks, &[], &env);
                expect_success("timing_split", ranks, &out)
            }));
        }
    }
    for wait in ["0", "1"] {
        let name = format!("profiler_books_local_reductions_as_compute_np2_wait{wait}");
        cases.push(case(name, move || {
            let env = [("SPMD_TEST_WAIT", wait)];
            expect_success("profiler_truth", 2, &launch("profiler_truth", 2, &[], &env))
        }));
    }
    #[cfg(feature = "bench")]
    for ranks in [2, 3] {
        cases.push(case(format!("bench_driver_np{ranks}"), move || {
            expect_success(
                "bench_driver",
                ranks,
                &launch("bench_driver", ranks, &[], &[]),
            )
        }));
    }
    cases.extend(checkpoints::cases());
    cases.extend(examples::cases());
    cases.extend(tools::cases());
    cases
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

mod examples {
    use super::*;

    /// The heat example at 1..4 ranks: it checks its own result against a serial solve (bit for
    /// bit); the iteration count must not depend on the rank count.
    fn heat2d() -> Result<(), String> {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("heat2d");
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let mut iterations = Vec::new();
        for ranks in 1..=4 {
            let (json, png) = (
                dir.join(format!("r{ranks}.json")),
                dir.join(format!("r{ranks}.png")),
            );
            let args = [
                "--n",
                "37",
                "--m",
                "23",
                "--tol",
                "1e-2",
                "--baseline",
                "--report",
                json.to_str().unwrap(),
                "--image",
                png.to_str().unwrap(),
            ];
            let out = run(
                mpirun(ranks, &[], &launcher::example("heat2d"), &args, &[]),
                LAUNCH_TIMEOUT,
            );
            if out.code != Some(0) || !out.stdout.contains("verified: bit-identical") {
                return Err(format!("heat2d at {ranks} ranks: {}", out.describe()));
            }
            let report = spmd::timing::Report::from_json(
                &std::fs::read_to_string(&json).map_err(|e| e.to_string())?,
            )
            .map_err(|e| e.to_string())?;
            if report.ranks != ranks || report.speedup.is_none() {
                return Err(format!("heat2d report at {ranks} ranks: {report:?}"));
            }
            let image = std::fs::read(&png).map_err(|e| e.to_string())?;
            if !image.starts_with(b"\x89PNG") {
                return Err("heat2d wrote no PNG".into());
            }
            let line = out
                .stdout
                .lines()
                .find(|l| l.contains(" iterations, "))
                .unwrap_or("")
                .to_string();
            iterations.push(
                line.split(" iterations")
                    .next()
                    .and_then(|l| l.rsplit(' ').next())
                    .unwrap_or("")
                    .to_string(),
            );
        }
        if iterations
            .iter()
            .all(|i| i == &iterations[0] && !i.is_empty())
        {
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
            let args = ["--samples", "20000", "--batch", "512", "--baseline"];
            let out = run(
                mpirun(ranks, &[], &launcher::example("sgd"), &args, &[]),
                LAUNCH_TIMEOUT,
            );
            if out.code != Some(0) || !out.stdout.contains("verified: weights match") {
                return Err(format!("sgd at {ranks} ranks: {}", out.describe()));
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
                let out = run(
                    mpirun(ranks, &[], &launcher::example("sample_sort"), &args, &[]),
                    LAUNCH_TIMEOUT,
                );
                if out.code != Some(0) || !out.stdout.contains("equal to a serial sort") {
                    return Err(format!(
                        "sample_sort {keys} {distribution} at {ranks} ranks: {}",
                        out.describe()
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
            let out = run(
                mpirun(ranks, &[], &launcher::example("cat_farm"), &args, &[]),
                LAUNCH_TIMEOUT,
            );
            if out.code != Some(0) || !out.stdout.contains("verified: all") {
                return Err(format!("cat_farm at {ranks} ranks: {}", out.describe()));
            }
            let counts: Vec<usize> = out
                .stdout
                .lines()
                .find_map(|l| l.split("(rank 0 = manager): [").nth(1))
                .map(|l| {
                    l.trim_end_matches(']')
                        .split(", ")
                        .filter_map(|n| n.parse().ok())
                        .collect()
                })
                .unwrap_or_default();
            if counts.len() != ranks || counts.iter().sum::<usize>() != 16 {
                return Err(format!(
                    "cat_farm tile counts {counts:?}: {}",
                    out.describe()
                ));
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
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cat-farm-files");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let pixel = |seed: u32| ((seed.wrapping_mul(2_654_435_761) >> 24) & 0xff) as u8;
        let template =
            image::GrayImage::from_fn(12, 12, |x, y| image::Luma([pixel(y * 12 + x + 7)]));
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
        let out = run(
            mpirun(2, &[], &launcher::example("cat_farm"), &args, &[]),
            LAUNCH_TIMEOUT,
        );
        if out.code != Some(0) || !out.stdout.contains("image 0: 1 matches at [(10, 20)]") {
            return Err(format!("cat_farm on files: {}", out.describe()));
        }
        Ok(())
    }

    /// The pipeline at 1..4 ranks (roles folded together below 3 ranks, two archive ranks at
    /// 4): every frame analysed and archived once, results equal to a serial run.
    fn zoo_pipeline() -> Result<(), String> {
        for ranks in 1..=4 {
            let args = [
                "--cameras",
                "5",
                "--cameras-frames",
                "60",
                "--in-flight",
                "3",
            ];
            let out = run(
                mpirun(ranks, &[], &launcher::example("zoo_pipeline"), &args, &[]),
                LAUNCH_TIMEOUT,
            );
            if out.code != Some(0)
                || !out
                    .stdout
                    .contains("verified: every frame analysed and archived exactly once")
            {
                return Err(format!("zoo_pipeline at {ranks} ranks: {}", out.describe()));
            }
        }
        Ok(())
    }

    /// NPB MG class S at 1, 2 and 4 ranks verifies; 3 ranks (not a power of two) is refused
    /// with a message, not a wrong answer or a hang.
    fn npb_mg() -> Result<(), String> {
        for ranks in [1, 2, 4] {
            let out = run(
                mpirun(
                    ranks,
                    &[],
                    &launcher::example("npb_mg"),
                    // The baseline (a one-rank communicator on the root) at 2 ranks.
                    if ranks == 2 {
                        &["--class", "S", "--baseline"][..]
                    } else {
                        &["--class", "S"][..]
                    },
                    &[],
                ),
                LAUNCH_TIMEOUT,
            );
            if out.code != Some(0)
                || !out
                    .stdout
                    .contains("Verification    =               SUCCESSFUL")
                || (ranks == 2 && !out.stdout.contains("speedup"))
            {
                return Err(format!("npb_mg at {ranks} ranks: {}", out.describe()));
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
            let out = run(
                mpirun(ranks, &[], &launcher::example(name), &["--class", "S"], &[]),
                LAUNCH_TIMEOUT,
            );
            if out.code != Some(0)
                || !out
                    .stdout
                    .contains("Verification    =               SUCCESSFUL")
            {
                return Err(format!("{name} at {ranks} ranks: {}", out.describe()));
            }
        }
        Ok(())
    }

    /// The π example at 1..4 ranks: it checks its own answer; the hit count must not depend
    /// on the number of ranks (every sample has a fixed seed).
    pub fn cases() -> Vec<Case> {
        vec![
            case("example_heat2d_np1_to_np4".into(), heat2d),
            case("example_sgd_np1_to_np4".into(), sgd),
            case("example_sample_sort_np1_to_np4".into(), sample_sort),
            case("example_cat_farm_np1_to_np4".into(), cat_farm),
            case("example_cat_farm_real_images_np2".into(), cat_farm_files),
            case("example_zoo_pipeline_np1_to_np4".into(), zoo_pipeline),
            case("example_npb_ep_class_s_np1_to_np4".into(), || npb("npb_ep")),
            case("example_npb_cg_class_s_np1_to_np4".into(), || npb("npb_cg")),
            case("example_npb_mg_class_s_np1_2_4".into(), npb_mg),
            case("example_pi_np1_to_np4".into(), || {
                let mut hits = Vec::new();
                for ranks in 1..=4 {
                    let program = launcher::example("pi");
                    let cmd = mpirun(ranks, &[], &program, &["--samples", "2000000"], &[]);
                    let out = run(cmd, LAUNCH_TIMEOUT);
                    if out.code != Some(0) {
                        return Err(format!("pi at {ranks} ranks failed: {}", out.describe()));
                    }
                    let line = out
                        .stdout
                        .lines()
                        .find(|l| l.starts_with("hits "))
                        .ok_or_else(|| format!("no `hits` line: {}", out.describe()))?
                        .to_string();
                    hits.push(line);
                }
                if hits.iter().all(|h| h == &hits[0]) {
                    Ok(())
                } else {
                    Err(format!("hit counts differ across rank counts: {hits:?}"))
                }
            }),
        ]
    }
}

mod checkpoints {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join("checkpoints")
            .join(name);
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn step(
        ranks: usize,
        dir: &Path,
        mode: &str,
        offset: &str,
        extra_env: &[(&str, &str)],
    ) -> Outcome {
        let dir = dir.to_str().unwrap();
        let mut env = vec![
            ("CKPT_DIR", dir),
            ("CKPT_MODE", mode),
            ("CKPT_OFFSET", offset),
        ];
        env.extend_from_slice(extra_env);
        launch("checkpoint", ranks, &[], &env)
    }

    fn ok(ranks: usize, dir: &Path, mode: &str, offset: &str) -> Result<(), String> {
        expect_success("checkpoint", ranks, &step(ranks, dir, mode, offset, &[]))
    }

    pub fn cases() -> Vec<Case> {
        let mut cases = Vec::new();
        for ranks in 1..=4 {
            cases.push(case(format!("checkpoint_save_load_np{ranks}"), move || {
                ok(ranks, &dir(&format!("same{ranks}")), "save_then_load", "0")
            }));
        }
        for (p, q) in [(2, 3), (3, 2), (4, 1), (1, 4)] {
            cases.push(case(
                format!("checkpoint_save_np{p}_load_np{q}"),
                move || {
                    let d = dir(&format!("p{p}q{q}"));
                    ok(p, &d, "save", "0")?;
                    ok(q, &d, "load", "0")
                },
            ));
        }
        cases.push(case(
            "checkpoint_crash_mid_save_keeps_previous_np2".into(),
            || {
                let d = dir("crash");
                ok(2, &d, "save", "0")?;
                let out = step(
                    2,
                    &d,
                    "crash",
                    "1000",
                    &[(spmd::array::FAULT_BEFORE_COMMIT_ENV, "1")],
                );
                if out.code == Some(0) || out.timed_out {
                    return Err(format!(
                        "the crashing save should end the job non-zero: {}",
                        out.describe()
                    ));
                }
                // The previous checkpoint (offset 0) is still the one that loads.
                ok(3, &d, "load", "0")
            },
        ));
        cases.push(case(
            "checkpoint_corrupt_or_mismatched_refused_np3".into(),
            || {
                let d = dir("corrupt");
                ok(2, &d, "save", "0")?;
                ok(3, &d, "wrong_type", "0")?;
                // Truncate one piece.
                let current =
                    std::fs::read_to_string(d.join("CURRENT")).map_err(|e| e.to_string())?;
                let piece = d.join(current.trim()).join("piece-00001.npy");
                let bytes = std::fs::read(&piece).map_err(|e| e.to_string())?;
                std::fs::write(&piece, &bytes[..bytes.len() - 8]).map_err(|e| e.to_string())?;
                ok(3, &d, "corrupt", "0")
            },
        ));
        cases
    }
}
