//! Rank-side helpers shared by the scenarios.

use ndarray::Array2;
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
    let texts = world
        .all_gather_varcount(text.as_bytes())
        .expect("gathering error texts");
    for (rank, theirs) in texts.parts().enumerate() {
        assert_eq!(
            String::from_utf8_lossy(theirs),
            text,
            "{label}: rank {rank} got another error than rank {}",
            world.rank()
        );
    }
    // Still in step: a plain collective after the error gives the right answer.
    assert_eq!(
        world.all_reduce(1_u32, Op::Sum) as usize,
        world.size(),
        "{label}: ranks out of step"
    );
    error
}

/// One explicit heat-equation update of a point from its four neighbours.
pub fn heat(up: f64, down: f64, left: f64, right: f64, centre: f64) -> f64 {
    centre + 0.1 * (up + down + left + right - 4.0 * centre)
}

/// One heat step of the interior of `u0` on one thread (edges fixed): the serial reference.
pub fn serial_heat_step(u0: &Array2<f64>) -> Array2<f64> {
    let (n, m) = u0.dim();
    let mut next = u0.clone();
    for i in 1..n - 1 {
        for j in 1..m - 1 {
            next[[i, j]] = heat(
                u0[[i - 1, j]],
                u0[[i + 1, j]],
                u0[[i, j - 1]],
                u0[[i, j + 1]],
                u0[[i, j]],
            );
        }
    }
    next
}
