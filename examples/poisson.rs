//! Poisson's equation `−Δu = f` on the unit square (5-point stencil) or cube (7-point),
//! zero on the boundary, assembled as a [`DistCsrMatrix`] and solved by a Krylov solver
//! (CG with Jacobi by default).
//!
//! ```text
//! mpirun -n 2 target/release/examples/poisson --dim 2 --n 512 --baseline --report poisson.json
//! mpirun -n 2 target/release/examples/poisson --dim 2 --n 2048 --iterations 200   # timing
//! ```
//!
//! `--n` is the number of interior points along each axis (`h = 1/(n+1)`); the unknowns are
//! the `n^d` interior values, split over the ranks in blocks of rows. Each rank assembles
//! its own rows (the stencil scaled by `1/h²`), so the ghost plan moves one plane (2-D: one
//! grid row) of the vector to each neighbouring rank per product.
//!
//! **Verification**, the same at every rank count: the solution is `u = Π x_k(1 − x_k)`
//! (`f = 2 Σ_k Π_{l≠k} x_l(1 − x_l)`). Central differences are exact on quadratics, so this
//! `u` solves the *discrete* problem exactly too, and a solve that stopped at
//! `‖r‖ ≤ tol·‖b‖` is within `‖r‖/λ_min ≤ tol·‖b‖/λ_min` of it in the 2-norm (hence in the
//! max norm), with `λ_min = (4d/h²) sin²(πh/2)` the discrete Laplacian's smallest
//! eigenvalue. The example checks the max-norm error against twice that bound. With
//! `--iterations K` (a fixed count, for timing) the check is that the error fell: `‖x − u‖₂ < ‖u‖₂`
//! (CG decreases it at every step).

mod common;

use std::f64::consts::PI;

use clap::{Parser, ValueEnum};
use spmd::krylov::{self, BlockJacobi, Identity, Jacobi, Options, Preconditioner, SolveStats};
use spmd::sparse::{DistCsrMatrix, DistVector};
use spmd::{Comm, Op, Partition, Spmd};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Solver {
    Cg,
    PipelinedCg,
    Bicgstab,
    Gmres,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Precond {
    None,
    Jacobi,
    BlockJacobi,
}

#[derive(Parser, Debug)]
#[command(about = "Poisson's equation by CG on a distributed sparse matrix")]
struct Args {
    /// 2 (5-point stencil on the square) or 3 (7-point on the cube).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(2..=3))]
    dim: u8,
    /// Interior points along each axis.
    #[arg(long, default_value_t = 128)]
    n: usize,
    #[arg(long, value_enum, default_value_t = Solver::Cg)]
    solver: Solver,
    #[arg(long, value_enum, default_value_t = Precond::Jacobi)]
    preconditioner: Precond,
    /// Relative tolerance on the residual norm.
    #[arg(long, default_value_t = 1e-8)]
    tolerance: f64,
    /// Run exactly this many iterations (tolerance 0), for timing per iteration.
    #[arg(long)]
    iterations: Option<usize>,
    /// Exact dot products: the same iterates at any rank count.
    #[arg(long)]
    reproducible: bool,
    #[command(flatten)]
    measure: common::Measure,
}

/// The grid's geometry: `n` interior points along each of `dim` axes.
#[derive(Clone, Copy)]
struct Grid {
    dim: usize,
    n: usize,
}

impl Grid {
    fn unknowns(self) -> usize {
        self.n.pow(self.dim as u32)
    }

    fn h(self) -> f64 {
        1.0 / (self.n + 1) as f64
    }

    /// The coordinates `x_k(1 − x_k)` of unknown `row` along each axis.
    fn bumps(self, row: usize) -> [f64; 3] {
        let mut rest = row;
        let mut out = [1.0; 3];
        for bump in out.iter_mut().take(self.dim) {
            let x = ((rest % self.n) + 1) as f64 * self.h();
            *bump = x * (1.0 - x);
            rest /= self.n;
        }
        out
    }

    /// The exact solution `Π x_k(1 − x_k)` at unknown `row`.
    fn solution(self, row: usize) -> f64 {
        self.bumps(row).iter().product()
    }

    /// The right-hand side `−Δu = 2 Σ_k Π_{l≠k} x_l(1 − x_l)` at unknown `row`.
    fn rhs(self, row: usize) -> f64 {
        let b = self.bumps(row);
        let product_without = |k: usize| {
            (0..self.dim)
                .filter(|&l| l != k)
                .map(|l| b[l])
                .product::<f64>()
        };
        2.0 * (0..self.dim).map(product_without).sum::<f64>()
    }

    /// The discrete Laplacian's smallest eigenvalue.
    fn smallest_eigenvalue(self) -> f64 {
        let h = self.h();
        4.0 * self.dim as f64 / (h * h) * (PI * h / 2.0).sin().powi(2)
    }

    /// This rank's rows of `−Δ_h` (the `2d+1`-point stencil over `h²`).
    fn matrix(self, comm: &Comm) -> spmd::Result<DistCsrMatrix> {
        let size = self.unknowns();
        let scale = 1.0 / (self.h() * self.h());
        let rows = Partition::block(size, comm.size())?.range(comm.rank());
        let mut triplets = Vec::with_capacity(rows.len() * (2 * self.dim + 1));
        for row in rows {
            triplets.push((row, row, 2.0 * self.dim as f64 * scale));
            let mut stride = 1;
            for _axis in 0..self.dim {
                let k = (row / stride) % self.n;
                if k > 0 {
                    triplets.push((row, row - stride, -scale));
                }
                if k + 1 < self.n {
                    triplets.push((row, row + stride, -scale));
                }
                stride *= self.n;
            }
        }
        DistCsrMatrix::from_triplets(comm, (size, size), &triplets)
    }
}

/// What one solve left: the solution, its figures, and the set-up/solve split.
struct Outcome {
    x: DistVector,
    stats: SolveStats,
    /// This rank's time in the solver alone.
    solve_seconds: f64,
}

fn solve(args: &Args, grid: Grid, comm: &Comm, spmd: Option<&Spmd>) -> spmd::Result<Outcome> {
    let region = |name| spmd.map(|s| s.region(name));
    let set_up = region("assembly");
    let a = grid.matrix(comm)?;
    let b = spmd::array::DistArray::from_fn(
        comm,
        grid.unknowns(),
        spmd::array::Split::block(0),
        |i| grid.rhs(i),
    )?;
    let mut x = a.domain_vector(0.0)?;
    let m: Box<dyn Preconditioner> = match args.preconditioner {
        Precond::None => Box::new(Identity),
        Precond::Jacobi => Box::new(Jacobi::new(&a)?),
        Precond::BlockJacobi => Box::new(BlockJacobi::new(&a)?),
    };
    drop(set_up);
    let mut options = Options::new()
        .relative_tolerance(args.tolerance)
        .reproducible(args.reproducible);
    if let Some(k) = args.iterations {
        options = options.relative_tolerance(0.0).max_iterations(k);
    }
    let _solve = region("krylov solve");
    let started = std::time::Instant::now();
    let stats = match args.solver {
        Solver::Cg => krylov::cg(&a, m.as_ref(), &b, &mut x, &options)?,
        Solver::PipelinedCg => krylov::pipelined_cg(&a, m.as_ref(), &b, &mut x, &options)?,
        Solver::Bicgstab => krylov::bicgstab(&a, m.as_ref(), &b, &mut x, &options)?,
        Solver::Gmres => krylov::gmres(&a, m.as_ref(), &b, &mut x, &options)?,
    };
    Ok(Outcome {
        x,
        stats,
        solve_seconds: started.elapsed().as_secs_f64(),
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if args.n < 2 {
        return Err("--n must be at least 2".into());
    }
    let grid = Grid {
        dim: usize::from(args.dim),
        n: args.n,
    };
    let spmd = args.measure.builder().init()?;
    let world = spmd.world();
    let run = || solve(&args, grid, world, Some(&spmd));
    let repeat = args.measure.repeat(&spmd);
    let outcome = if args.measure.baseline {
        let serial = |alone: &Comm| solve(&args, grid, alone, None).map(|o| o.stats.iterations);
        repeat.baseline_with_comm(serial).run(run)?.result
    } else {
        repeat.run(run)?.result
    };
    // The error against the exact solution (also the discrete problem's).
    let first = outcome.x.global_range(0).map_or(0, |r| r.start);
    let (mut error, mut error2, mut exact2) = (0.0_f64, 0.0_f64, 0.0_f64);
    for (k, &u) in outcome.x.local().iter().enumerate() {
        let exact = grid.solution(first + k);
        error = error.max((u - exact).abs());
        error2 += (u - exact).powi(2);
        exact2 += exact * exact;
    }
    let error = world.all_reduce(error, Op::Max);
    let sums = world.all_reduce_slice(&[error2, exact2], Op::Sum)?;
    // ‖x − u‖₂ / ‖x₀ − u‖₂ (x₀ = 0), which CG decreases at every step.
    let error_reduction = (sums[0] / sums[1]).sqrt();
    let stats = &outcome.stats;
    let bound = 2.0 * args.tolerance * stats.rhs_norm / grid.smallest_eigenvalue();
    let verified = match args.iterations {
        Some(_) => error_reduction < 1.0,
        None => stats.converged() && error <= bound,
    };
    // The last repetition's solve, slowest rank, per iteration.
    let per_iteration =
        world.all_reduce(outcome.solve_seconds, Op::Max) / stats.iterations.max(1) as f64;
    let report = spmd.report("poisson")?;
    if let Some(mut report) = report {
        println!(
            "poisson {}-D, {} unknowns on {} ranks x {} threads: {:?} + {:?}, {} iterations, \
             residual {:.3e} of ‖b‖ {:.3e}",
            grid.dim,
            grid.unknowns(),
            spmd.size(),
            spmd.threads(),
            args.solver,
            args.preconditioner,
            stats.iterations,
            stats.residual_norm,
            stats.rhs_norm
        );
        println!("max error {error:.3e} (bound {bound:.3e}); {per_iteration:.3e} s per iteration");
        println!("{report}");
        report.record("unknowns", grid.unknowns());
        report.record("iterations", stats.iterations);
        report.record("residual_norm", stats.residual_norm);
        report.record("max_error", error);
        report.record("error_reduction", error_reduction);
        report.record("per_iteration_s", per_iteration);
        report.record("verified", verified);
        args.measure.write(&report)?;
    }
    if !verified {
        return Err(format!(
            "verification failed: {:?} after {} iterations, error {error:.3e} against the \
             bound {bound:.3e}",
            stats.stop, stats.iterations
        )
        .into());
    }
    if spmd.is_root() {
        println!("verified");
    }
    Ok(())
}
