//! The sparse matrix–vector product against the machine's memory bandwidth, side by side in
//! one run: `DistCsrMatrix::apply` on the 2-D Poisson matrix (5-point, 2048² unknowns) and
//! the 3-D one (7-point, 160³), against a STREAM triad (`a = b + s·c`, counted as STREAM
//! counts it: 24 bytes per element) on every rank at once, over arrays of 2^27 elements in
//! all (1 GiB each: STREAM's rule is four times the last-level cache, and this machine's
//! reports 260 MiB; smaller arrays would measure the cache). Rounds interleave the variants; each figure is a median over the rounds
//! with its range, and the ratio is taken round by round.
//!
//! ```text
//! cargo bench --bench spmv                       # 2 ranks
//! SPMD_BENCH_RANKS=1 cargo bench --bench spmv    # 1 rank
//! ```
//!
//! The product's bandwidth counts what it must stream once: both blocks' arrays (values,
//! `u32` columns, row starts), `x` with its ghost entries, and `y`
//! ([`MatrixStats::streamed_bytes`](spmd::sparse::MatrixStats), summed over the ranks),
//! over the slowest rank's time.

use std::hint::black_box;
use std::time::Instant;

use spmd::sparse::DistCsrMatrix;
use spmd::{Comm, Op, Partition, Spmd};

mod support;

const ROUNDS: usize = 7;
/// Calls per variant per round.
const CALLS: usize = 20;
/// Triad elements over all ranks.
const TRIAD: usize = 1 << 27;

/// The `(2d+1)`-point Laplacian on an `n^d` grid, this rank's rows.
fn laplacian(world: &Comm, dim: u32, n: usize) -> DistCsrMatrix {
    let size = n.pow(dim);
    let rows = Partition::block(size, world.size())
        .expect("partition")
        .range(world.rank());
    let mut triplets = Vec::with_capacity(rows.len() * (2 * dim as usize + 1));
    for row in rows {
        triplets.push((row, row, 2.0 * f64::from(dim)));
        let mut stride = 1;
        for _ in 0..dim {
            let k = (row / stride) % n;
            if k > 0 {
                triplets.push((row, row - stride, -1.0));
            }
            if k + 1 < n {
                triplets.push((row, row + stride, -1.0));
            }
            stride *= n;
        }
    }
    DistCsrMatrix::from_triplets(world, (size, size), &triplets).expect("assemble")
}

/// Seconds of the slowest rank for `CALLS` calls of `f`, started together.
fn timed(world: &Comm, mut f: impl FnMut()) -> f64 {
    world.barrier();
    let start = Instant::now();
    for _ in 0..CALLS {
        f();
    }
    world.all_reduce(start.elapsed().as_secs_f64(), Op::Max) / CALLS as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn summary(v: &[f64]) -> String {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(0.0, f64::max);
    format!("{:.3} (range {lo:.3}-{hi:.3})", median(v.to_vec()))
}

fn main() {
    if !support::under_mpirun() {
        support::relaunch_under_mpirun();
    }
    let spmd = Spmd::init().expect("MPI init");
    let world = spmd.world();
    for (label, dim, n) in [
        ("2-D 5-point 2048^2", 2, 2048),
        ("3-D 7-point 160^3", 3, 160),
    ] {
        let a = laplacian(world, dim, n);
        let x = a.domain_vector(1.0).expect("x");
        let mut y = a.range_vector(0.0).expect("y");
        let local = Partition::block(TRIAD, world.size())
            .expect("partition")
            .count(world.rank());
        let (mut ta, tb, tc) = (vec![0.0; local], vec![1.0; local], vec![2.0; local]);
        let streamed = world.all_reduce(a.stats().streamed_bytes, Op::Sum) as f64;
        let triad_bytes = world.all_reduce(24 * local, Op::Sum) as f64;
        let (mut spmv, mut triad, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..=ROUNDS {
            let mut product = || a.apply(&x, &mut y).expect("apply");
            let mut stream = || {
                for ((a, &b), &c) in ta.iter_mut().zip(&tb).zip(&tc) {
                    *a = b + 3.0 * c;
                }
                black_box(&mut ta);
            };
            // The order turns every round.
            let (p, t) = if round % 2 == 0 {
                let p = timed(world, &mut product);
                (p, timed(world, &mut stream))
            } else {
                let t = timed(world, &mut stream);
                (timed(world, &mut product), t)
            };
            if round == 0 {
                continue; // warm-up
            }
            let (p, t) = (streamed / p / 1e9, triad_bytes / t / 1e9);
            spmv.push(p);
            triad.push(t);
            ratio.push(p / t);
        }
        if spmd.is_root() {
            println!(
                "spmv {label} at {} ranks: product {} GB/s, triad {} GB/s, product / triad {}",
                world.size(),
                summary(&spmv),
                summary(&triad),
                summary(&ratio)
            );
        }
    }
}
