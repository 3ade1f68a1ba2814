//! What the MPI benchmarks share: starting under `mpirun`, lock-step timing, medians.
// Each benchmark binary compiles this module and uses a part of it.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use mpi::collective::{Root, SystemOperation};
use mpi::topology::Communicator;
use mpi::traits::CommunicatorCollectives;
use spmd::Comm;

/// How long one timed round of a case should last.
pub const ROUND_TARGET: Duration = Duration::from_millis(4);

/// One benchmark variant: a closure doing one call.
pub type Variant<'a> = Box<dyn FnMut(&Comm) + 'a>;

/// Whether this process was started by `mpirun` (Open MPI or MPICH).
pub fn under_mpirun() -> bool {
    std::env::var_os("OMPI_COMM_WORLD_SIZE").is_some() || std::env::var_os("PMI_SIZE").is_some()
}

/// `cargo bench` starts one process: start the real run under `mpirun -n $SPMD_BENCH_RANKS`
/// (default 2) and exit with its status.
pub fn relaunch_under_mpirun() {
    let status = mpirun_self(&[]);
    std::process::exit(status.code().unwrap_or(1));
}

/// Runs this benchmark binary under `mpirun -n $SPMD_BENCH_RANKS` (default 2) with `env`
/// added, and waits for it.
pub fn mpirun_self(env: &[(&str, &str)]) -> std::process::ExitStatus {
    let ranks = std::env::var("SPMD_BENCH_RANKS").unwrap_or_else(|_| "2".into());
    std::process::Command::new("mpirun")
        .args(["-n", &ranks])
        .arg(std::env::current_exe().expect("current exe"))
        .args(std::env::args().skip(1))
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("OMPI_MCA_rmaps_base_oversubscribe", "1")
        .envs(env.iter().copied())
        .status()
        .expect("failed to start mpirun (run scripts/setup)")
}

/// Iterations per round so a round of `call` lasts about [`ROUND_TARGET`] (rank 0 decides,
/// so every rank runs the same count).
pub fn calibrate(world: &Comm, call: &mut Variant<'_>) -> usize {
    let mut iterations = 1;
    loop {
        let seconds = time_block(world, iterations, call) * iterations as f64;
        if seconds >= ROUND_TARGET.as_secs_f64() / 4.0 || iterations >= 1 << 20 {
            let target = ROUND_TARGET.as_secs_f64() / seconds * iterations as f64;
            let mut agreed = target.clamp(1.0, (1 << 22) as f64) as u64;
            world.raw().process_at_rank(0).broadcast_into(&mut agreed);
            return agreed as usize;
        }
        iterations *= 4;
    }
}

/// Seconds per call over `iterations` calls, the slowest rank's figure. The barrier and the
/// reduction use raw rsmpi, so they stay out of the profiler.
pub fn time_block(world: &Comm, iterations: usize, call: &mut Variant<'_>) -> f64 {
    world.raw().barrier();
    let start = Instant::now();
    for _ in 0..iterations {
        call(world);
    }
    let mine = start.elapsed().as_secs_f64() / iterations as f64;
    let mut slowest = 0.0;
    world
        .raw()
        .all_reduce_into(&mine, &mut slowest, SystemOperation::max());
    slowest
}

/// The median of `samples` (reordered).
pub fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}
