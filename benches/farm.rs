//! What the task farm and the pipeline cost, side by side in one run:
//! - `Farm::map` of fixed-work tasks (pure arithmetic, no memory traffic) against the same
//!   tasks in a loop on rank 0, for tasks of about 0.1, 1 and 4 ms (0.1 ms also in chunks of
//!   16): speedup, the farm's efficiency and its manager's CPU use;
//! - a two-stage pipeline passing `u64` items as fast as it can: the cost of one item hop.
//!
//! ```text
//! cargo bench --bench farm      # relaunches itself under `mpirun -n 2`
//! ```

use std::hint::black_box;
use std::time::Instant;

use spmd::farm::Farm;
use spmd::pipeline::Pipeline;
use spmd::{Comm, Spmd};
use support::median;

mod support;

const ROUNDS: usize = 7;

/// About `units` x 50 µs of arithmetic. Never inlined: the serial loop and the farm's
/// closure must run the same machine code (inlined, the two copies differed by 25%).
#[inline(never)]
fn work(seed: u64, units: u64) -> u64 {
    let mut a = seed;
    for i in 0..units * 250_000 {
        a = a.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i);
    }
    a
}

fn main() {
    if !support::under_mpirun() {
        support::relaunch_under_mpirun();
    }
    let spmd = Spmd::init().expect("MPI init");
    let world = spmd.world();
    if spmd.is_root() {
        println!("farm: {ROUNDS} rounds, serial loop and farm alternating; medians [min .. max]");
        println!("| task | tasks | chunk | speedup | farm efficiency | manager MPI thread CPU |");
        println!("|---|---:|---:|---:|---:|---:|");
    }
    for (units, tasks, chunk) in [(2, 4000, 1), (2, 4000, 16), (20, 800, 1), (80, 200, 1)] {
        farm_case(world, units, tasks, chunk);
    }
    pipeline_hop(world);
}

fn farm_case(world: &Comm, units: u64, tasks: u64, chunk: usize) {
    let farm = Farm::new(world).expect("farm").chunk(chunk);
    let (mut speedups, mut efficiencies, mut cpu) = (Vec::new(), Vec::new(), Vec::new());
    let mut per_task = Vec::new();
    for _ in 0..ROUNDS {
        world.barrier();
        let serial = if world.rank() == 0 {
            let start = Instant::now();
            for t in 0..tasks {
                black_box(work(t, units));
            }
            start.elapsed().as_secs_f64()
        } else {
            0.0
        };
        world.barrier();
        let list: Vec<u64> = if farm.is_manager() {
            (0..tasks).collect()
        } else {
            Vec::new()
        };
        let start = Instant::now();
        black_box(farm.map(list, |t| work(t, units)).expect("farm map"));
        let parallel = start.elapsed().as_secs_f64();
        let stats = farm.stats().expect("a farm ran");
        speedups.push(serial / parallel);
        efficiencies.push(stats.efficiency());
        cpu.push(stats.manager_cpu_fraction());
        per_task.push(serial / tasks as f64);
    }
    if world.rank() == 0 {
        let range = |v: &mut Vec<f64>, scale: f64, digits: usize| {
            let (lo, hi) = (
                v.iter().copied().fold(f64::INFINITY, f64::min),
                v.iter().copied().fold(0.0, f64::max),
            );
            format!(
                "{:.*} [{:.*} .. {:.*}]",
                digits,
                scale * median(v),
                digits,
                scale * lo,
                digits,
                scale * hi
            )
        };
        println!(
            "| {:.2} ms | {tasks} | {chunk} | {} | {}% | {}% |",
            1e3 * median(&mut per_task),
            range(&mut speedups, 1.0, 2),
            range(&mut efficiencies, 100.0, 1),
            range(&mut cpu, 100.0, 1)
        );
    }
}

/// Items through a source -> sink pipeline (one rank each; extra ranks sit in the sink
/// stage), as fast as they go: seconds per item.
fn pipeline_hop(world: &Comm) {
    if world.size() < 2 {
        return;
    }
    let items = 200_000_u64;
    let mut per_item = Vec::new();
    for _ in 0..ROUNDS {
        let mut sum = 0_u64;
        let start = Instant::now();
        Pipeline::source(world, "source", 1, |out| {
            for x in 0..items {
                out.emit(x);
            }
        })
        .window(64)
        .sink("sink", world.size() - 1, |x: u64| sum = sum.wrapping_add(x))
        .run()
        .expect("pipeline");
        per_item.push(start.elapsed().as_secs_f64() / items as f64);
        black_box(sum);
    }
    if world.rank() == 0 {
        println!(
            "pipeline: {items} u64 items, window 64: {:.2} us per item (median of {ROUNDS})",
            1e6 * median(&mut per_item)
        );
    }
}
