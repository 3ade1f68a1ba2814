//! Runtime scenarios: thread sizing and the panic policy.

use rayon::prelude::*;

use crate::collectives::COLLECTIVES;
use crate::harness::{
    expect_aborted_in_time, expect_panic_abort, expect_success, launch, num_cpus, self_exe,
    succeeds, trial, Module, Scenario, LAUNCH_TIMEOUT, SCENARIO_ENV,
};
use crate::launcher::{flavor, run, Flavor, Outcome};
use crate::support::{init, report_ok};

static THREADS: Scenario = Scenario {
    name: "threads",
    run: threads,
};
static BAD_THREADS_ENV: Scenario = Scenario {
    name: "bad_threads_env",
    run: bad_threads_env,
};
static PANIC_MAIN: Scenario = Scenario {
    name: "panic_main",
    run: panic_main,
};
static PANIC_RAYON: Scenario = Scenario {
    name: "panic_rayon",
    run: panic_rayon,
};
static WATCHDOG_HANG: Scenario = Scenario {
    name: "watchdog_hang",
    run: watchdog_hang,
};
static BAD_WATCHDOG_ENV: Scenario = Scenario {
    name: "bad_watchdog_env",
    run: bad_watchdog_env,
};
static PANIC_IN_REDUCTION_OP: Scenario = Scenario {
    name: "panic_in_reduction_op",
    run: panic_in_reduction_op,
};
static MIN_RANKS: Scenario = Scenario {
    name: "min_ranks",
    run: min_ranks,
};
static REINIT: Scenario = Scenario {
    name: "reinit",
    run: reinit,
};

pub const MODULE: Module = Module {
    scenarios: &[
        &THREADS,
        &BAD_THREADS_ENV,
        &PANIC_MAIN,
        &PANIC_RAYON,
        &WATCHDOG_HANG,
        &BAD_WATCHDOG_ENV,
        &PANIC_IN_REDUCTION_OP,
        &MIN_RANKS,
        &REINIT,
    ],
    trials,
};

fn trials() -> Vec<libtest_mimic::Trial> {
    let mut trials = Vec::new();
    for ranks in [2, 3] {
        trials.push(trial(
            format!("watchdog_reports_stuck_ranks_np{ranks}"),
            move || {
                let env = [("SPMD_WATCHDOG", "2")];
                expect_watchdog_abort(ranks, &launch(&WATCHDOG_HANG, ranks, &[], &env))
            },
        ));
    }
    trials.push(trial("watchdog_quiet_when_nothing_hangs_np3", || {
        succeeds(&COLLECTIVES, 3, &[], &[("SPMD_WATCHDOG", "20")])
    }));
    trials.push(trial("watchdog_env_malformed_np2", || {
        succeeds(&BAD_WATCHDOG_ENV, 2, &[], &[("SPMD_WATCHDOG", "soon")])
    }));
    for ranks in [1, 2] {
        trials.push(trial(
            format!("reinit_after_finalize_np{ranks}"),
            move || succeeds(&REINIT, ranks, &[], &[]),
        ));
    }
    trials.push(trial("min_ranks_refused_without_mpirun", || {
        let mut cmd = std::process::Command::new(self_exe());
        cmd.env(SCENARIO_ENV, MIN_RANKS.name)
            .env("SPMD_TEST_LAUNCHED", "0");
        expect_success(&MIN_RANKS, 1, &run(cmd, LAUNCH_TIMEOUT))
    }));
    trials.push(trial("min_ranks_refused_np1", || {
        succeeds(&MIN_RANKS, 1, &[], &[("SPMD_TEST_LAUNCHED", "1")])
    }));
    trials.push(trial("min_ranks_met_np2", || {
        let out = launch(&MIN_RANKS, 2, &[], &[("SPMD_TEST_LAUNCHED", "1")]);
        if out.stdout.contains("refused") {
            return Err(format!("2 ranks were refused: {}", out.describe()));
        }
        expect_success(&MIN_RANKS, 2, &out)
    }));
    for ranks in 1..=3 {
        trials.push(trial(format!("threads_unbound_np{ranks}"), move || {
            let extra: &[&str] = match flavor() {
                Flavor::OpenMpi => &["--bind-to", "none"],
                Flavor::Mpich => &[],
            };
            let expect = (num_cpus() / ranks).max(1).to_string();
            succeeds(&THREADS, ranks, extra, &[("SPMD_EXPECT_THREADS", &expect)])
        }));
    }
    trials.push(trial("threads_from_env_np2", || {
        let env = [("SPMD_NUM_THREADS", "3"), ("SPMD_EXPECT_THREADS", "3")];
        succeeds(&THREADS, 2, &[], &env)
    }));
    trials.push(trial("threads_env_malformed_np2", || {
        succeeds(&BAD_THREADS_ENV, 2, &[], &[("SPMD_NUM_THREADS", "lots")])
    }));
    if flavor() == Flavor::OpenMpi {
        trials.push(trial("threads_bound_to_core_np2", || {
            let env = [("SPMD_EXPECT_THREADS", "1")];
            succeeds(&THREADS, 2, &["--bind-to", "core"], &env)
        }));
    }
    for ranks in 1..=3 {
        trials.push(trial(
            format!("panic_on_main_thread_np{ranks}"),
            move || expect_panic_abort(ranks, &launch(&PANIC_MAIN, ranks, &[], &[])),
        ));
    }
    for ranks in [2, 4] {
        trials.push(trial(
            format!("panic_in_rayon_closure_np{ranks}"),
            move || expect_panic_abort(ranks, &launch(&PANIC_RAYON, ranks, &[], &[])),
        ));
    }
    for ranks in [2, 3] {
        trials.push(trial(
            format!("panic_in_reduction_op_np{ranks}"),
            move || expect_panic_abort(ranks, &launch(&PANIC_IN_REDUCTION_OP, ranks, &[], &[])),
        ));
    }
    trials
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

/// The rank's pool has `SPMD_EXPECT_THREADS` threads, and rayon really uses that many.
fn threads() {
    let spmd = init();
    let expected: usize = std::env::var("SPMD_EXPECT_THREADS")
        .expect("the harness sets SPMD_EXPECT_THREADS")
        .parse()
        .expect("a number");
    assert_eq!(spmd.threads(), expected, "rank {}: threads", spmd.rank());
    assert_eq!(
        rayon::current_num_threads(),
        expected,
        "rank {}: rayon pool",
        spmd.rank()
    );
    let names: std::collections::BTreeSet<String> = (0..1000)
        .into_par_iter()
        .map(|_| std::thread::current().name().unwrap_or("?").to_string())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| n.starts_with(&format!("spmd-rank{}-worker", spmd.rank()))),
        "rayon work ran outside the rank's pool: {names:?}"
    );
    assert!(spmd.threading() >= spmd::Threading::Funneled);
    // MPI starts once per process: a second context is a clear error, not a crash.
    let again = spmd::Spmd::init().expect_err("a second Spmd::init must fail");
    assert_eq!(again.kind(), spmd::ErrorKind::Init, "{again}");
    assert!(again.message().contains("already initialised"), "{again}");
    report_ok("threads", &spmd);
}

/// The last rank panics while the others wait in a barrier that can never complete.
fn panic_main() {
    let spmd = init();
    if spmd.rank() == spmd.size() - 1 {
        panic!("deliberate panic on rank {}", spmd.rank());
    }
    spmd.world().barrier();
    unreachable!("the barrier cannot complete without the panicking rank");
}

/// Rank 1 panics inside a rayon closure; the others wait in a collective.
fn panic_rayon() {
    let spmd = init();
    if spmd.rank() == 1 {
        let _: u64 = (0..1_000_u64)
            .into_par_iter()
            .map(|i| {
                if i == 777 {
                    panic!("deliberate panic on rank 1 in a rayon closure");
                }
                i
            })
            .sum();
    }
    spmd.world().barrier();
    unreachable!("the barrier cannot complete without the panicking rank");
}

/// A malformed `SPMD_NUM_THREADS` is refused with a message naming the variable and value.
fn bad_threads_env() {
    let e = spmd::Spmd::init().expect_err("SPMD_NUM_THREADS=lots must be refused");
    assert_eq!(e.kind(), spmd::ErrorKind::Config, "{e}");
    assert!(
        e.message().contains("SPMD_NUM_THREADS") && e.message().contains("lots"),
        "{e}"
    );
    let zero = spmd::Spmd::builder()
        .threads(0)
        .init()
        .expect_err("0 threads must be refused");
    assert_eq!(zero.kind(), spmd::ErrorKind::Config, "{zero}");
    println!("spmd-test ok: bad_threads_env rank ?");
}

/// Rank 0 computes far longer than the watchdog's limit while the others wait in an
/// all_reduce: the watchdog must name the waiting ranks and their operation, then abort.
fn watchdog_hang() {
    let spmd = init();
    if spmd.rank() == 0 {
        let _work = spmd.region("long compute");
        std::thread::sleep(std::time::Duration::from_secs(100));
    }
    let _ = spmd.world().all_reduce(1_u64, spmd::Op::Sum);
    unreachable!("the all_reduce cannot complete before rank 0 wakes up");
}

/// A malformed `SPMD_WATCHDOG` is refused with a message naming the variable and value.
fn bad_watchdog_env() {
    let e = spmd::Spmd::init().expect_err("SPMD_WATCHDOG=soon must be refused");
    assert_eq!(e.kind(), spmd::ErrorKind::Config, "{e}");
    assert!(
        e.message().contains("SPMD_WATCHDOG") && e.message().contains("soon"),
        "{e}"
    );
    println!("spmd-test ok: bad_watchdog_env rank ?");
}

/// A user reduction operation panics (called by MPI inside the collective, on whichever rank
/// combines): the whole job must end, not hang. Launched with 2 or more ranks (with one,
/// MPI never calls the operation).
fn panic_in_reduction_op() {
    let spmd = init();
    let rank = spmd.rank();
    let sentinel = u64::MAX;
    let mine = if rank == spmd.size() - 1 { sentinel } else { 1 };
    let _ = spmd.world().all_reduce_with(mine, |a, b| {
        if a == sentinel || b == sentinel {
            panic!("deliberate panic on rank {rank} in a user reduction op");
        }
        a + b
    });
    unreachable!("the combining rank panicked, so the job must have been aborted");
}

/// A program that needs 2 ranks: refused with a RankCount error saying how to start it when
/// it has fewer, running normally otherwise.
fn min_ranks() {
    match spmd::Spmd::builder().min_ranks(2).init() {
        Ok(spmd) => {
            assert!(spmd.size() >= 2);
            report_ok("min_ranks", &spmd);
        }
        Err(e) => {
            assert_eq!(e.kind(), spmd::ErrorKind::RankCount, "{e}");
            assert!(e.message().contains("mpirun -n 2"), "{e}");
            let launched = std::env::var("SPMD_TEST_LAUNCHED").is_ok_and(|v| v == "1");
            assert_eq!(e.message().contains("without mpirun"), !launched, "{e}");
            println!("spmd-test ok: min_ranks refused: {e}");
        }
    }
}

/// A second context after the first was dropped (MPI finalised) is refused with a message
/// saying MPI cannot start twice, not that it is "already initialised".
fn reinit() {
    let first = init();
    let rank = first.rank();
    drop(first);
    let again = spmd::Spmd::init().expect_err("MPI cannot be initialised after finalize");
    assert_eq!(again.kind(), spmd::ErrorKind::Init, "{again}");
    assert!(
        again.message().contains("cannot be initialised again")
            && again.message().contains("finalised"),
        "{again}"
    );
    println!("spmd-test ok: reinit rank {rank}");
}
