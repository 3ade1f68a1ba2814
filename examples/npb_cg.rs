//! NAS Parallel Benchmarks 3.4, kernel CG (conjugate gradient), written with `spmd`.
//!
//! ```text
//! mpirun -n 2 target/release/examples/npb_cg --class A --report cg.json
//! ```
//!
//! The kernel, as the NPB specification defines it: a random sparse symmetric matrix built by
//! `makea` (a weighted sum of outer products of sparse random vectors, each with its row's own
//! index set to 0.5, plus `rcond − shift` on the diagonal), then `niter` steps of the inverse
//! power method, each solving `A z = x` with 25 unpreconditioned CG iterations and estimating
//! the smallest eigenvalue `zeta = shift + 1/(x·z)`. Classes S, W, A, B; any number of ranks.
//!
//! **Layout**: the matrix is a [`DistCsrMatrix`]: rows in contiguous blocks, each rank's
//! diagonal block and its off-diagonal block with compressed ghost columns. Each CG iteration's
//! product moves only the entries of `p` a rank's rows use from other ranks (the ghost plan,
//! made once at assembly), and the two dot products are `all_reduce`s. Any rank count works
//! (the reference's 2-D layout needs a power of two). Rayon threads split each rank's rows.
//!
//! `makea` runs as the specification says, on every rank (the generator is sequential), but
//! each rank contributes only the outer products of its own block of generation steps, as
//! `(row, column, value)` triplets that the assembly routes to the rows' owners and sums. The
//! matrix is therefore the same bit for bit at every rank count (duplicates are summed in an
//! order that does not depend on who contributed them). Verification: `zeta` within 1e-10 of
//! the official value.

mod common;
#[path = "npb_common/mod.rs"]
mod npb_common;

use std::time::Instant;

use clap::Parser;
use npb_common::{mul_mod, uniform, Class, MULTIPLIER};
use rayon::prelude::*;
use spmd::sparse::{DistCsrMatrix, DistVector};
use spmd::{Comm, Op, Partition};

/// One class's parameters.
struct Spec {
    na: usize,
    nonzer: usize,
    niter: usize,
    shift: f64,
    zeta: f64,
}

impl Class {
    fn spec(self) -> Spec {
        let (na, nonzer, niter, shift, zeta) = match self {
            Class::S => (1400, 7, 15, 10.0, 8.5971775078648),
            Class::W => (7000, 8, 15, 12.0, 10.362595087124),
            Class::A => (14000, 11, 15, 20.0, 17.130235054029),
            Class::B => (75000, 13, 75, 60.0, 22.712745482631),
        };
        Spec {
            na,
            nonzer,
            niter,
            shift,
            zeta,
        }
    }
}

#[derive(Parser, Debug)]
#[command(about = "NPB 3.4 CG over MPI ranks and rayon threads")]
struct Cli {
    #[command(flatten)]
    npb: npb_common::Flags,
}

const RCOND: f64 = 0.1;
const CG_ITERATIONS: usize = 25;

/// The NPB generator `x ← 5^13 · x mod 2^46`, returning `x / 2^46`.
struct Random {
    x: u64,
}

impl Random {
    fn next(&mut self) -> f64 {
        self.x = mul_mod(MULTIPLIER, self.x);
        uniform(self.x)
    }
}

/// `makea`: every rank draws the whole random stream and contributes the outer products of
/// the generation steps `mine`, as triplets (assembled, routed and summed by the caller).
fn make_triplets(spec: &Spec, mine: std::ops::Range<usize>) -> Vec<(usize, usize, f64)> {
    let n = spec.na;
    let mut rng = Random { x: 314_159_265 };
    rng.next(); // the specification discards the first number
    let nn1 = (2usize..)
        .map(|k| 1usize << (k - 1))
        .find(|&p| p >= n && p >= 2)
        .unwrap_or(2);
    let ratio = RCOND.powf(1.0 / n as f64);
    let mut size = 1.0;
    let mut triplets = Vec::new();
    let mut positions: Vec<usize> = Vec::with_capacity(spec.nonzer + 1);
    let mut values: Vec<f64> = Vec::with_capacity(spec.nonzer + 1);
    for i in 0..n {
        positions.clear();
        values.clear();
        // A sparse random vector of `nonzer` distinct positions in 1..=n.
        while positions.len() < spec.nonzer {
            let value = rng.next();
            let position = (nn1 as f64 * rng.next()) as usize + 1;
            if position > n || positions.contains(&position) {
                continue;
            }
            positions.push(position);
            values.push(value);
        }
        // Its own index i + 1 set to 0.5.
        match positions.iter().position(|&p| p == i + 1) {
            Some(k) => values[k] = 0.5,
            None => {
                positions.push(i + 1);
                values.push(0.5);
            }
        }
        if mine.contains(&i) {
            for (a, &row) in positions.iter().enumerate() {
                let scale = size * values[a];
                for (b, &col) in positions.iter().enumerate() {
                    let mut v = values[b] * scale;
                    if col == row && row == i + 1 {
                        v = v + RCOND - spec.shift;
                    }
                    triplets.push((row - 1, col - 1, v));
                }
            }
        }
        size *= ratio;
    }
    triplets
}

/// Whether to split loops over rayon threads. With a one-thread pool a parallel loop only
/// adds a hand-off to the pool's thread (which shares the rank's core) per call: run inline.
fn parallel() -> bool {
    rayon::current_num_threads() > 1
}

fn dot(comm: &Comm, a: &[f64], b: &[f64]) -> f64 {
    let local: f64 = if parallel() {
        a.par_iter().zip(b).map(|(x, y)| x * y).sum()
    } else {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    };
    comm.all_reduce(local, Op::Sum)
}

/// `y[i] = f(y[i], x[i])` for every `i`.
fn update(y: &mut [f64], x: &[f64], f: impl Fn(f64, f64) -> f64 + Sync + Send) {
    if parallel() {
        y.par_iter_mut().zip(x).for_each(|(y, &x)| *y = f(*y, x));
    } else {
        y.iter_mut().zip(x).for_each(|(y, &x)| *y = f(*y, x));
    }
}

fn slice(v: &DistVector) -> &[f64] {
    v.local().to_slice().expect("contiguous")
}

fn slice_mut(v: &mut DistVector) -> &mut [f64] {
    v.local_mut().into_slice().expect("contiguous")
}

/// The vectors of the inverse power method, allocated once.
struct Work {
    x: DistVector,
    z: DistVector,
    p: DistVector,
    q: DistVector,
    r: DistVector,
}

/// One inverse-power step: 25 CG iterations on `A z = x`, returning `||x − A z||`.
fn conj_grad(a: &DistCsrMatrix, w: &mut Work) -> spmd::Result<f64> {
    let comm = a.comm();
    let Work { x, z, p, q, r } = w;
    slice_mut(z).fill(0.0);
    slice_mut(r).copy_from_slice(slice(x));
    slice_mut(p).copy_from_slice(slice(x));
    let mut rho = dot(comm, slice(r), slice(r));
    for _ in 0..CG_ITERATIONS {
        a.apply(p, q)?;
        let alpha = rho / dot(comm, slice(p), slice(q));
        let rho0 = rho;
        update(slice_mut(z), slice(p), |z, p| z + alpha * p);
        update(slice_mut(r), slice(q), |r, q| r - alpha * q);
        rho = dot(comm, slice(r), slice(r));
        let beta = rho / rho0;
        update(slice_mut(p), slice(r), |p, r| r + beta * p);
    }
    a.apply(z, r)?;
    let local: f64 = slice(x)
        .iter()
        .zip(slice(r))
        .map(|(x, az)| (x - az) * (x - az))
        .sum();
    Ok(comm.all_reduce(local, Op::Sum).sqrt())
}

/// The benchmark on `a`'s communicator: returns the final zeta.
fn benchmark(spec: &Spec, a: &DistCsrMatrix, print: bool) -> spmd::Result<f64> {
    let comm = a.comm();
    let mut w = Work {
        x: a.domain_vector(1.0)?,
        z: a.domain_vector(0.0)?,
        p: a.domain_vector(0.0)?,
        q: a.domain_vector(0.0)?,
        r: a.domain_vector(0.0)?,
    };
    let mut zeta = 0.0;
    // One untimed step first, as the specification does, then x back to ones.
    for (step, timed) in [(0, false)]
        .into_iter()
        .chain((1..=spec.niter).map(|s| (s, true)))
    {
        let rnorm = conj_grad(a, &mut w)?;
        let xz = dot(comm, slice(&w.x), slice(&w.z));
        let zz = dot(comm, slice(&w.z), slice(&w.z));
        let norm = 1.0 / zz.sqrt();
        if timed {
            zeta = spec.shift + 1.0 / xz;
            if print {
                println!("    {step:5}       {rnorm:20.14e}{zeta:20.13e}");
            }
            let Work { x, z, .. } = &mut w;
            update(slice_mut(x), slice(z), |_, z| norm * z);
        } else {
            slice_mut(&mut w.x).fill(1.0);
        }
    }
    Ok(zeta)
}

/// The class's matrix on `comm`: each rank's share of the generation steps as triplets.
fn assemble(spec: &Spec, comm: &Comm) -> spmd::Result<DistCsrMatrix> {
    let mine = Partition::block(spec.na, comm.size())?.range(comm.rank());
    let triplets = make_triplets(spec, mine);
    DistCsrMatrix::from_triplets(comm, (spec.na, spec.na), &triplets)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Cli::parse().npb;
    let spec = args.class.spec();
    let spmd = args.measure.builder().init()?;
    let world = spmd.world();

    let init = Instant::now();
    let a = {
        let _m = spmd.region("makea");
        assemble(&spec, world)?
    };
    let init = world.all_reduce(init.elapsed().as_secs_f64(), Op::Max);
    if spmd.is_root() {
        println!("\n NAS Parallel Benchmarks 3.4 (spmd, Rust) - CG Benchmark\n");
        println!(
            " Size: {:11}\n Iterations: {:5}\n Initialization time = {init:15.3} seconds",
            spec.na, spec.niter
        );
        println!("\n   iteration           ||r||                 zeta");
    }
    let run = || -> spmd::Result<f64> {
        let _b = spmd.region("inverse power method");
        benchmark(&spec, &a, spmd.is_root())
    };
    let repeat = args.measure.repeat(&spmd);
    let zeta = if args.measure.baseline {
        // The same benchmark on the root alone (a one-rank communicator), on the whole
        // matrix assembled at its first run (the warm-up, with --repeat 2 or more).
        let mut whole: Option<DistCsrMatrix> = None;
        let serial = |alone: &Comm| {
            if whole.is_none() {
                whole = Some(assemble(&spec, alone).expect("assembling on one rank"));
            }
            let a = whole.as_ref().expect("assembled above");
            benchmark(&spec, a, false).expect("serial CG cannot fail")
        };
        repeat.baseline_with_comm(serial).run(run)?.result
    } else {
        repeat.run(run)?.result
    };
    let report = spmd.report("npb_cg")?;
    let error = ((zeta - spec.zeta) / spec.zeta).abs();
    let verified = error <= 1e-10;
    if let Some(report) = report {
        // The benchmark's time: the slowest rank's, median over the repetitions.
        let seconds = report.wall_s.median;
        let nz = (spec.nonzer * (spec.nonzer + 1)) as f64;
        let mops = 2.0 * spec.niter as f64 * spec.na as f64 * (3.0 + nz + 25.0 * (5.0 + nz) + 3.0)
            / seconds
            / 1e6;
        println!(" Benchmark completed");
        println!(
            " Zeta is    {zeta:20.13e}   reference {:20.13e}   relative error {error:.2e}",
            spec.zeta
        );
        let results = npb_common::Results {
            class: format!("{:?}", args.class),
            size: spec.na.to_string(),
            iterations: spec.niter,
            seconds,
            mops,
            processes: spmd.size(),
            threads: spmd.threads(),
            operation: "floating point",
            verified,
        };
        npb_common::finish(&results, &report, &args.measure)?;
    }
    npb_common::verdict("CG", verified)
}
