//! Runtime scenarios: thread sizing and the panic policy.

use rayon::prelude::*;

use crate::support::{init, report_ok};

/// The rank's pool has `SPMD_EXPECT_THREADS` threads, and rayon really uses that many.
pub fn threads() {
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
pub fn panic_main() {
    let spmd = init();
    if spmd.rank() == spmd.size() - 1 {
        panic!("deliberate panic on rank {}", spmd.rank());
    }
    spmd.world().barrier();
    unreachable!("the barrier cannot complete without the panicking rank");
}

/// Rank 1 panics inside a rayon closure; the others wait in a collective.
pub fn panic_rayon() {
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
pub fn bad_threads_env() {
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
pub fn watchdog_hang() {
    let spmd = init();
    if spmd.rank() == 0 {
        let _work = spmd.region("long compute");
        std::thread::sleep(std::time::Duration::from_secs(100));
    }
    let _ = spmd.world().all_reduce(1_u64, spmd::Op::Sum);
    unreachable!("the all_reduce cannot complete before rank 0 wakes up");
}

/// A malformed `SPMD_WATCHDOG` is refused with a message naming the variable and value.
pub fn bad_watchdog_env() {
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
pub fn panic_in_reduction_op() {
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
pub fn min_ranks() {
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
