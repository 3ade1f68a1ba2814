//! Rank-side helpers shared by the scenarios.

use spmd::{Comm, Error, ErrorKind, Op, Spmd};

/// Initialises MPI for a scenario.
pub fn init() -> Spmd {
    Spmd::init().expect("Spmd::init failed")
}

/// Prints the line the harness counts: one per rank that reached the end.
pub fn report_ok(scenario: &str, spmd: &Spmd) {
    println!("spmd-test ok: {scenario} rank {}", spmd.rank());
}

/// Asserts that `result` is an error of `kind` and that every rank got the very same error
/// (kind, culprit rank and message), then that the ranks are still in step.
#[track_caller]
pub fn expect_same_error<T: std::fmt::Debug>(
    world: &Comm,
    label: &str,
    result: spmd::Result<T>,
    kind: ErrorKind,
) -> Error {
    let error = match result {
        Err(e) => e,
        Ok(v) => panic!(
            "{label}: expected a {kind:?} error on rank {}, got Ok({v:?})",
            world.rank()
        ),
    };
    assert_eq!(
        error.kind(),
        kind,
        "{label}: wrong kind on rank {}: {error}",
        world.rank()
    );
    let text = format!("{:?}|{error}", error.kind());
    let (all, counts) = world
        .all_gather_varcount(text.as_bytes())
        .expect("gathering error texts");
    let mut start = 0;
    for (rank, count) in counts.into_iter().enumerate() {
        let theirs = String::from_utf8_lossy(&all[start..start + count]);
        assert_eq!(
            theirs,
            text,
            "{label}: rank {rank} got another error than rank {}",
            world.rank()
        );
        start += count;
    }
    // Still in step: a plain collective after the error gives the right answer.
    assert_eq!(
        world.all_reduce(1_u32, Op::Sum) as usize,
        world.size(),
        "{label}: ranks out of step"
    );
    error
}
