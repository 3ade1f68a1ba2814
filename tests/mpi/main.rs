//! Multi-process tests: this binary is both the harness and the program it launches.
//!
//! Run by `cargo test` (`harness = false`, libtest-mimic), it launches itself under
//! `mpirun -n P` for P = 1..4 (1..7 for the reproducible sums) with `SPMD_TEST_SCENARIO`
//! naming what the ranks should run, and checks exit codes, output and JSON reports, each
//! launch under a timeout. Launched that way, it runs one scenario as a rank.
//!
//! The usual libtest flags work: `cargo test --test mpi -- --list`, a name filter
//! (`-- arrays_np3`), `--exact`, `--skip`. Trials run one at a time (each is an MPI job).
//! How to add a scenario: see [`harness`].

mod arrays;
mod bad_input;
#[cfg(feature = "bench")]
mod bench_driver;
mod checkpoint;
mod collectives;
mod communicators;
mod exact;
mod examples;
mod farm;
mod grid;
mod harness;
#[cfg(feature = "hdf5")]
mod hdf5_file;
mod krylov;
mod launcher;
mod nonblocking;
mod npy_file;
mod pipeline;
mod runtime;
mod sparse;
mod support;
mod timing;
mod tools;
mod trace;

use std::process::ExitCode;

use harness::{Module, SCENARIO_ENV};

/// Every test module. A new module needs its `mod` line and an entry here; a new scenario or
/// trial in an existing module is added in that module alone.
const MODULES: &[&Module] = &[
    &collectives::MODULE,
    &bad_input::MODULE,
    &arrays::MODULE,
    &grid::MODULE,
    &communicators::MODULE,
    &nonblocking::MODULE,
    &farm::MODULE,
    &pipeline::MODULE,
    &exact::MODULE,
    &sparse::MODULE,
    &krylov::MODULE,
    &runtime::MODULE,
    &timing::MODULE,
    &trace::MODULE,
    #[cfg(feature = "bench")]
    &bench_driver::MODULE,
    &checkpoint::MODULE,
    &npy_file::MODULE,
    #[cfg(feature = "hdf5")]
    &hdf5_file::MODULE,
    &examples::MODULE,
    &tools::MODULE,
];

fn main() -> ExitCode {
    if let Ok(name) = std::env::var(SCENARIO_ENV) {
        harness::run_scenario(MODULES, &name);
        return ExitCode::SUCCESS;
    }
    let mut args = libtest_mimic::Arguments::from_args();
    // Each trial is an MPI job using every core: one at a time.
    args.test_threads = Some(1);
    eprintln!("mpirun: {:?}", launcher::flavor());
    let trials = MODULES.iter().flat_map(|m| (m.trials)()).collect();
    libtest_mimic::run(&args, trials).exit_code()
}
