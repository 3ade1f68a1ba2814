//! What the profiler costs: a collective with accounting on against off, and the price of
//! one region, measured side by side in one run.
//!
//! ```text
//! cargo bench --bench timing            # relaunches itself under `mpirun -n 2`
//! ```
//!
//! Rounds alternate accounting on and off (interleaved, so drift on a noisy machine hits both
//! alike); times are medians over rounds of the slowest rank's time per call, and the ratio is
//! the median of each round's on/off ratio.

use std::hint::black_box;
use std::time::Instant;

use mpi::collective::{CommunicatorCollectives, SystemOperation};
use spmd::timing::{Profiler, RegionKind};
use spmd::{Comm, Op, Spmd};
use support::{calibrate, median, time_block, Variant};

mod support;

const ROUNDS: usize = 101;
const REGION_LOOP: usize = 2_000_000;

fn main() {
    if !support::under_mpirun() {
        support::relaunch_under_mpirun();
        return;
    }
    let spmd = Spmd::init().expect("MPI init");
    collective_overhead(&spmd);
    region_cost(&spmd);
    repetition_cost(&spmd);
}

/// What one repetition of [`Spmd::repeat`] adds to its step: the barrier that starts it
/// together on every rank (the protocol) and the bookkeeping (clock reads, the profiler's
/// region totals copied at both ends). Rounds alternate N bare barriers and N repetitions of
/// an empty step (with a few regions open in the profiler, as a real program has), each timed
/// as the slowest rank; the bookkeeping is the difference per repetition.
fn repetition_cost(spmd: &Spmd) {
    const N: usize = 20_000;
    let world = spmd.world();
    // Regions a real program would have entered, so the copies are not of an empty list.
    for name in ["setup", "solve", "exchange", "norm"] {
        drop(spmd.region(name));
    }
    let (mut bare, mut repeated) = (Vec::new(), Vec::new());
    for _ in 0..21 {
        world.raw().barrier();
        let start = Instant::now();
        for _ in 0..N {
            world.raw().barrier();
        }
        bare.push(world.all_reduce(start.elapsed().as_secs_f64(), Op::Max) / N as f64);
        world.raw().barrier();
        let start = Instant::now();
        spmd.repeat(N)
            .warmup(0)
            .run(|| -> spmd::Result<()> { Ok(()) })
            .unwrap();
        repeated.push(world.all_reduce(start.elapsed().as_secs_f64(), Op::Max) / N as f64);
    }
    let mut extra: Vec<f64> = repeated.iter().zip(&bare).map(|(r, b)| r - b).collect();
    let (bare, repeated, extra) = (median(&mut bare), median(&mut repeated), median(&mut extra));
    if spmd.is_root() {
        println!(
            "\nrepetition cost, {} ranks, median of 21 interleaved rounds of {N} (max over ranks)\n",
            spmd.size()
        );
        println!("| case | µs per repetition |");
        println!("|---|---:|");
        println!("| bare barrier (the protocol) | {:.3} |", bare * 1e6);
        println!("| repetition of an empty step | {:.3} |", repeated * 1e6);
        println!(
            "| bookkeeping (difference, median of per-round differences) | {:.3} |",
            extra * 1e6
        );
    }
}

/// 1 KiB `all_reduce_into` with accounting on and off, and the raw rsmpi call.
fn collective_overhead(spmd: &Spmd) {
    let send = vec![spmd.rank() as f64; 128];
    let mut recv = vec![0.0; 128];
    let mut recv_raw = vec![0.0; 128];
    let mut helper: Variant<'_> =
        Box::new(|c: &Comm| c.all_reduce_into(&send, &mut recv, Op::Sum).unwrap());
    let mut raw: Variant<'_> = Box::new(|c: &Comm| {
        c.raw()
            .all_reduce_into(&send[..], &mut recv_raw[..], SystemOperation::sum())
    });
    let world = spmd.world();
    let iterations = calibrate(world, &mut helper);
    let (mut on, mut off, mut bare) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        spmd.profiler().set_enabled(true);
        on.push(time_block(world, iterations, &mut helper));
        spmd.profiler().set_enabled(false);
        off.push(time_block(world, iterations, &mut helper));
        bare.push(time_block(world, iterations, &mut raw));
    }
    spmd.profiler().set_enabled(true);
    // Paired: each round's on/off ratio, then the median, so drift between rounds cancels.
    let mut ratios: Vec<f64> = on.iter().zip(&off).map(|(a, b)| a / b).collect();
    let ratio = median(&mut ratios);
    let (on, off, bare) = (median(&mut on), median(&mut off), median(&mut bare));
    if spmd.is_root() {
        println!(
            "\nprofiler overhead, {} ranks, 1 KiB all_reduce_into, median of {ROUNDS} interleaved rounds of {iterations} calls (max over ranks)\n",
            spmd.size()
        );
        println!("| variant | µs per call (median) | ratio to accounting off |");
        println!("|---|---:|---:|");
        println!(
            "| accounting on | {:.3} | {ratio:.4} (median of per-round ratios) |",
            on * 1e6
        );
        println!("| accounting off | {:.3} | 1 |", off * 1e6);
        println!("| raw rsmpi | {:.3} | {:.4} |", bare * 1e6, bare / off);
    }
}

/// Nanoseconds per region enter + exit, on every rank at once (each figure the median over
/// rounds on rank 0, minus the cost of the empty loop). The traced profiler keeps every event
/// of its rounds (15 x the loop: 1.4 GB), the full one drops them all.
fn region_cost(spmd: &Spmd) {
    let profiler = Profiler::new();
    let traced = Profiler::new();
    traced.start_tracing(15 * REGION_LOOP);
    let full = Profiler::new();
    full.start_tracing(1);
    let cases: [(&str, &dyn Fn(usize)); 6] = [
        ("empty loop (subtracted)", &|i| {
            black_box(i);
        }),
        ("compute region", &|i| {
            let _r = profiler.region("step", RegionKind::Compute);
            black_box(i);
        }),
        ("comm region inside a compute region", &|i| {
            let _outer = profiler.compute("outer");
            let _r = profiler.comm("exchange", 8);
            black_box(i);
        }),
        ("region, profiler disabled", &|i| {
            profiler.set_enabled(false);
            let _r = profiler.compute("off");
            black_box(i);
            profiler.set_enabled(true);
        }),
        ("compute region, traced", &|i| {
            let _r = traced.region("step", RegionKind::Compute);
            black_box(i);
        }),
        ("compute region, traced, trace buffer full", &|i| {
            let _r = full.region("step", RegionKind::Compute);
            black_box(i);
        }),
    ];
    let mut samples = vec![Vec::new(); cases.len()];
    for _ in 0..15 {
        for (slot, (_, body)) in samples.iter_mut().zip(&cases) {
            let start = Instant::now();
            for i in 0..REGION_LOOP {
                body(i);
            }
            slot.push(start.elapsed().as_secs_f64() / REGION_LOOP as f64);
        }
    }
    spmd.world().raw().barrier();
    let medians: Vec<f64> = samples.iter_mut().map(|s| median(s)).collect();
    if spmd.is_root() {
        println!("\nregion cost, median of 15 rounds of {REGION_LOOP} enter+exit pairs\n");
        println!("| case | ns per enter+exit |");
        println!("|---|---:|");
        for ((name, _), &m) in cases.iter().zip(&medians).skip(1) {
            println!("| {name} | {:.1} |", (m - medians[0]) * 1e9);
        }
        println!(
            "\ntraced events kept, dropped: {:?}; full buffer: {:?}",
            traced.trace_counts(),
            full.trace_counts()
        );
    }
}
