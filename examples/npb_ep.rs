//! NAS Parallel Benchmarks 3.4, kernel EP ("embarrassingly parallel"), written with `spmd`.
//!
//! ```text
//! mpirun -n 2 target/release/examples/npb_ep --class A --report ep.json
//! ```
//!
//! The kernel, as the NPB 3.4 specification defines it: 2^(M+1) uniform numbers from the NPB
//! linear congruential generator `x ← 5^13 · x mod 2^46` (seed 271828183), taken in batches of
//! 2^16 pairs; each pair in the unit disc becomes a pair of Gaussian deviates by the Marsaglia
//! polar method; the kernel sums their absolute values (`sx`, `sy`) and counts them by the
//! square annulus `max(|X|, |Y|)` they fall in. Classes S, W, A, B (M = 24, 25, 28, 30); any
//! number of ranks. Batch `k` starts at seed · a^(2^17 · k), so ranks take contiguous batch
//! ranges and rayon threads split each rank's batches without any rank generating another's
//! numbers. Sums and counts are combined with the library's `all_reduce`.
//!
//! The generator is implemented with exact 128-bit integer arithmetic, which yields the same
//! numbers as the specification's double-precision algorithm (that algorithm is exact too).
//! Verification compares with the official NPB 3.4 values (relative error ≤ 1e-8).

mod common;
#[path = "npb_common/mod.rs"]
mod npb_common;

use clap::Parser;
use npb_common::{mul_mod, pow_mod, uniform, Class, MULTIPLIER};
use rayon::prelude::*;
use spmd::{Op, Partition};

impl Class {
    /// log2 of the number of pairs, and the official (sx, sy, pairs) of NPB 3.4.
    fn spec(self) -> (u32, f64, f64, f64) {
        match self {
            Class::S => (24, 1.051299420395306e7, 1.051517131857535e7, 13_176_389.0),
            Class::W => (25, 2.102505525182392e7, 2.103162209578822e7, 26_354_769.0),
            Class::A => (28, 1.682235632304711e8, 1.682195123368299e8, 210_832_767.0),
            Class::B => (30, 6.728927543423024e8, 6.728951822504275e8, 843_345_606.0),
        }
    }
}

#[derive(Parser, Debug)]
#[command(about = "NPB 3.4 EP over MPI ranks and rayon threads")]
struct Cli {
    #[command(flatten)]
    npb: npb_common::Flags,
}

/// log2 of the pairs per batch.
const MK: u32 = 16;
/// Annuli counted.
const NQ: usize = 10;
const SEED: u64 = 271_828_183;

/// One batch's sums and annulus counts.
#[derive(Clone, Copy, Default)]
struct Tally {
    sx: f64,
    sy: f64,
    q: [f64; NQ],
}

impl Tally {
    fn add(mut self, other: Tally) -> Tally {
        self.sx += other.sx;
        self.sy += other.sy;
        for (a, b) in self.q.iter_mut().zip(other.q) {
            *a += b;
        }
        self
    }
}

/// Batch `k`: 2^MK pairs from the stream that starts 2^(MK+1)·k numbers into the sequence.
/// The uniforms are generated first into a buffer (a tight, latency-bound loop), then turned
/// into deviates (a throughput-bound loop the CPU can overlap), as the reference does.
/// `uniforms` is the thread's buffer of 2^(MK+1) numbers, overwritten.
fn batch(k: u64, uniforms: &mut [f64]) -> Tally {
    let stride = pow_mod(MULTIPLIER, 1 << (MK + 1));
    let mut x = mul_mod(SEED, pow_mod(stride, k));
    for u in uniforms.iter_mut() {
        x = mul_mod(MULTIPLIER, x);
        *u = uniform(x);
    }
    let mut tally = Tally::default();
    for pair in uniforms.chunks_exact(2) {
        let x1 = 2.0 * pair[0] - 1.0;
        let x2 = 2.0 * pair[1] - 1.0;
        let t1 = x1 * x1 + x2 * x2;
        if t1 <= 1.0 {
            let t2 = (-2.0 * t1.ln() / t1).sqrt();
            let (t3, t4) = (x1 * t2, x2 * t2);
            let (a3, a4) = (t3.abs(), t4.abs());
            // Plain compare and a signed conversion: one instruction each (no NaN can occur).
            let l = (if a3 > a4 { a3 } else { a4 }) as i32 as usize;
            tally.q[l.min(NQ - 1)] += 1.0;
            tally.sx += a3;
            tally.sy += a4;
        }
    }
    tally
}

/// The kernel over `batches` on the current rayon pool, one buffer per task (a fresh 1 MiB
/// buffer per batch cost a zeroing pass and its page faults: ~3% of the time).
fn kernel(batches: std::ops::Range<u64>) -> Tally {
    batches
        .into_par_iter()
        .map_init(|| vec![0.0_f64; 2 << MK], |uniforms, k| batch(k, uniforms))
        .reduce(Tally::default, Tally::add)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Cli::parse().npb;
    let (m, sx_ref, sy_ref, gc_ref) = args.class.spec();
    let spmd = args.measure.builder().init()?;
    let world = spmd.world();
    let batches = 1u64 << (m - MK);

    let mine = Partition::block(batches as usize, world.size())?;
    let first = mine.displacements()[world.rank()] as u64;
    let run = || -> spmd::Result<(Vec<f64>, Vec<f64>)> {
        let local = {
            let _k = spmd.region("EP batches");
            kernel(first..first + mine.count(world.rank()) as u64)
        };
        let sums = world.all_reduce_slice(&[local.sx, local.sy], Op::Sum)?;
        let counts = world.all_reduce_slice(&local.q, Op::Sum)?;
        Ok((sums, counts))
    };
    let repeat = args.measure.repeat(&spmd);
    let (sums, counts) = if args.measure.baseline {
        repeat.baseline(|| kernel(0..batches)).run(run)?.result
    } else {
        repeat.run(run)?.result
    };
    let (sx, sy) = (sums[0], sums[1]);
    let gc: f64 = counts.iter().sum();

    let report = spmd.report("npb_ep")?;
    let sx_err = ((sx - sx_ref) / sx_ref).abs();
    let sy_err = ((sy - sy_ref) / sy_ref).abs();
    let gc_err = ((gc - gc_ref) / gc_ref).abs();
    let verified = sx_err <= 1e-8 && sy_err <= 1e-8 && gc_err <= 1e-8;
    if let Some(report) = report {
        // The benchmark's time: the slowest rank's, median over the repetitions.
        let seconds = report.wall_s.median;
        let numbers = 2f64.powi(m as i32 + 1);
        let mops = numbers / seconds / 1e6;
        println!("\n NAS Parallel Benchmarks 3.4 (spmd, Rust) - EP Benchmark\n");
        println!(" Number of random numbers generated: {numbers:>15.0}");
        println!(" No. Gaussian Pairs = {gc:>15.0}");
        println!(" Sums = {sx:>25.15e} {sy:>25.15e}");
        println!(" Counts:");
        for (l, q) in counts.iter().enumerate() {
            println!("{l:>3} {q:>15.0}");
        }
        println!(" sx  = {sx:.15e}  reference {sx_ref:.15e}  relative error {sx_err:.2e}");
        println!(" sy  = {sy:.15e}  reference {sy_ref:.15e}  relative error {sy_err:.2e}");
        println!(" gc  = {gc:.0}  reference {gc_ref:.0}  relative error {gc_err:.2e}");
        let results = npb_common::Results {
            class: format!("{:?}", args.class),
            size: format!("{numbers:.0}"),
            iterations: 0,
            seconds,
            mops,
            processes: spmd.size(),
            threads: spmd.threads(),
            operation: "Random numbers generated",
            verified,
        };
        npb_common::finish(&results, &report, &args.measure)?;
    }
    npb_common::verdict("EP", verified)
}
