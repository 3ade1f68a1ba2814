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
//! **Layout**: rows of `A` and every vector are split over the ranks in contiguous blocks (a
//! [`Partition::block`]); each CG iteration gathers the search direction `p` on every rank
//! (`all_gather_partitioned`, `na` doubles) for the local matrix-vector product and adds the
//! two dot products with `all_reduce`. The reference MPI code uses a 2-D process layout that
//! exchanges only parts of `p` and needs a power-of-two rank count; at the rank counts this
//! library is tested on (1–4, one node) the whole-vector gather costs microseconds against a
//! multiply of milliseconds, works for any rank count, and is simpler to check. Rayon threads
//! split each rank's rows.
//!
//! Every rank generates the same random stream (the generator is sequential) but keeps only the
//! contributions to its own rows, summed in generation order, so its rows are bit-identical to
//! the serial matrix. Verification: `zeta` within 1e-10 of the official value.

mod common;
#[path = "npb_common/mod.rs"]
mod npb_common;

use std::time::Instant;

use clap::Parser;
use npb_common::{mul_mod, uniform, Class, MULTIPLIER};
use rayon::prelude::*;
use spmd::{Comm, Op, Partition, Spmd};

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

/// This rank's rows `rows` of the class's matrix in compressed-row form.
struct Rows {
    start: Vec<usize>,
    /// Column indices as `u32` (4 bytes, as the reference): the multiply is memory-bound.
    cols: Vec<u32>,
    values: Vec<f64>,
}

/// `makea`: every rank draws the whole random stream, keeps the contributions to its rows.
fn make_matrix(spec: &Spec, rows: std::ops::Range<usize>) -> Rows {
    let n = spec.na;
    let mut rng = Random { x: 314_159_265 };
    rng.next(); // the specification discards the first number
    let nn1 = (2usize..)
        .map(|k| 1usize << (k - 1))
        .find(|&p| p >= n && p >= 2)
        .unwrap_or(2);
    let ratio = RCOND.powf(1.0 / n as f64);
    let mut size = 1.0;
    // (row, col, value) in generation order; a stable sort keeps that order per entry.
    let mut triples: Vec<(u32, u32, f64)> = Vec::new();
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
        for (a, &row) in positions.iter().enumerate() {
            let row = row - 1;
            if !rows.contains(&row) {
                continue;
            }
            let scale = size * values[a];
            for (b, &col) in positions.iter().enumerate() {
                let col = col - 1;
                let mut v = values[b] * scale;
                if col == row && row == i {
                    v = v + RCOND - spec.shift;
                }
                triples.push((row as u32, col as u32, v));
            }
        }
        size *= ratio;
    }
    triples.sort_by_key(|&(r, c, _)| (r, c));
    let mut matrix = Rows {
        start: vec![0],
        cols: Vec::new(),
        values: Vec::new(),
    };
    let mut current = rows.start;
    for (r, c, v) in triples {
        while current < r as usize {
            matrix.start.push(matrix.cols.len());
            current += 1;
        }
        if matrix.cols.len() > *matrix.start.last().unwrap() && *matrix.cols.last().unwrap() == c {
            *matrix.values.last_mut().unwrap() += v;
        } else {
            matrix.cols.push(c);
            matrix.values.push(0.0 + v);
        }
    }
    while current < rows.end {
        matrix.start.push(matrix.cols.len());
        current += 1;
    }
    matrix
}

/// Whether to split loops over rayon threads. With a one-thread pool a parallel loop only
/// adds a hand-off to the pool's thread (which shares the rank's core) per call: run inline.
fn parallel() -> bool {
    rayon::current_num_threads() > 1
}

/// `out = A · v` for this rank's rows (`v` whole), rows in parallel.
fn multiply(a: &Rows, v: &[f64], out: &mut [f64]) {
    let row = |(j, o): (usize, &mut f64)| {
        let range = a.start[j]..a.start[j + 1];
        *o = a.cols[range.clone()]
            .iter()
            .zip(&a.values[range])
            .map(|(&c, &x)| x * v[c as usize])
            .sum();
    };
    if parallel() {
        out.par_iter_mut().enumerate().for_each(row);
    } else {
        out.iter_mut().enumerate().for_each(row);
    }
}

fn dot(comm: Option<&Comm>, a: &[f64], b: &[f64]) -> f64 {
    let local: f64 = if parallel() {
        a.par_iter().zip(b).map(|(x, y)| x * y).sum()
    } else {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    };
    comm.map_or(local, |c| c.all_reduce(local, Op::Sum))
}

/// `y[i] = f(y[i], x[i])` for every `i`.
fn update(y: &mut [f64], x: &[f64], f: impl Fn(f64, f64) -> f64 + Sync + Send) {
    if parallel() {
        y.par_iter_mut().zip(x).for_each(|(y, &x)| *y = f(*y, x));
    } else {
        y.iter_mut().zip(x).for_each(|(y, &x)| *y = f(*y, x));
    }
}

/// The whole vector from every rank's block (or the block itself on one rank / serially).
fn whole(
    comm: Option<&Comm>,
    part: &Partition,
    local: &[f64],
    out: &mut Vec<f64>,
) -> spmd::Result<()> {
    match comm {
        Some(c) if c.size() > 1 => c.all_gather_partitioned_into(local, part, out)?,
        _ => {
            out.clear();
            out.extend_from_slice(local);
        }
    }
    Ok(())
}

/// One inverse-power step: 25 CG iterations on `A z = x`, returning `||x − A z||`.
fn conj_grad(
    comm: Option<&Comm>,
    part: &Partition,
    a: &Rows,
    x: &[f64],
    z: &mut [f64],
) -> spmd::Result<f64> {
    let n = x.len();
    let mut q = vec![0.0; n];
    let mut r = x.to_vec();
    let mut p = r.clone();
    z.fill(0.0);
    let mut p_all = Vec::new();
    let mut rho = dot(comm, &r, &r);
    for _ in 0..CG_ITERATIONS {
        whole(comm, part, &p, &mut p_all)?;
        multiply(a, &p_all, &mut q);
        let alpha = rho / dot(comm, &p, &q);
        let rho0 = rho;
        update(z, &p, |z, p| z + alpha * p);
        update(&mut r, &q, |r, q| r - alpha * q);
        rho = dot(comm, &r, &r);
        let beta = rho / rho0;
        update(&mut p, &r, |p, r| r + beta * p);
    }
    whole(comm, part, z, &mut p_all)?;
    multiply(a, &p_all, &mut r);
    let local: f64 = x.iter().zip(&r).map(|(x, az)| (x - az) * (x - az)).sum();
    Ok(comm.map_or(local, |c| c.all_reduce(local, Op::Sum)).sqrt())
}

/// The benchmark on `rows` (all rows when `comm` is `None`): returns the final zeta.
fn benchmark(
    spmd: Option<&Spmd>,
    spec: &Spec,
    part: &Partition,
    a: &Rows,
    print: bool,
) -> spmd::Result<f64> {
    let comm = spmd.map(|s| s.world());
    let rows = a.start.len() - 1;
    let mut x = vec![1.0; rows];
    let mut z = vec![0.0; rows];
    let mut zeta = 0.0;
    // One untimed step first, as the specification does, then x back to ones.
    for (step, timed) in [(0, false)]
        .into_iter()
        .chain((1..=spec.niter).map(|s| (s, true)))
    {
        let rnorm = conj_grad(comm, part, a, &x, &mut z)?;
        let xz = dot(comm, &x, &z);
        let zz = dot(comm, &z, &z);
        let norm = 1.0 / zz.sqrt();
        if timed {
            zeta = spec.shift + 1.0 / xz;
            if print {
                println!("    {step:5}       {rnorm:20.14e}{zeta:20.13e}");
            }
            update(&mut x, &z, |_, z| norm * z);
        } else {
            x.fill(1.0);
        }
    }
    Ok(zeta)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Cli::parse().npb;
    let spec = args.class.spec();
    let spmd = Spmd::init()?;
    let world = spmd.world();

    let part = Partition::block(spec.na, world.size())?;
    let first = part.displacements()[world.rank()];
    let rows = first..first + part.count(world.rank());
    let init = Instant::now();
    let a = {
        let _m = spmd.region("makea");
        make_matrix(&spec, rows)
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
        benchmark(Some(&spmd), &spec, &part, &a, spmd.is_root())
    };
    let repeat = args.measure.repeat(&spmd);
    let zeta = if args.measure.baseline {
        // The same benchmark on one core of the root, on the whole matrix built beforehand
        // (as the parallel runs' pieces are).
        let whole = spmd
            .is_root()
            .then(|| (Partition::block(spec.na, 1), make_matrix(&spec, 0..spec.na)));
        let serial = || {
            let (all, a) = whole.as_ref().expect("the baseline runs on the root");
            let all = all.as_ref().expect("one part");
            benchmark(None, &spec, all, a, false).expect("serial CG cannot fail")
        };
        repeat.baseline(serial).run(run)?.result
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
