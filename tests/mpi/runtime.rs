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
