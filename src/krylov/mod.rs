//! Krylov solvers for `A x = b` on distributed vectors: [`cg`] and [`pipelined_cg`]
//! (symmetric positive definite `A`), [`bicgstab`] and restarted [`gmres`] (any non-singular `A`), with [`Jacobi`] and
//! [`BlockJacobi`] (ILU(0) of each rank's diagonal block) preconditioners.
//!
//! The operator is anything that implements [`Operator`] (a [`DistCsrMatrix`] does, and so
//! can a matrix-free stencil); vectors are [`DistVector`]s in the operator's layout. Each
//! solver returns a [`SolveStats`]: iterations, the final residual norm, why it stopped and,
//! if asked, the residual norm of every iteration.
//!
//! ```no_run
//! use spmd::krylov::{self, Jacobi, Options};
//! use spmd::sparse::DistCsrMatrix;
//! # fn f(a: &DistCsrMatrix) -> spmd::Result<()> {
//! let b = a.range_vector(1.0)?;
//! let mut x = a.domain_vector(0.0)?;
//! let jacobi = Jacobi::new(a)?;
//! let options = Options::new().relative_tolerance(1e-10);
//! let stats = krylov::cg(a, &jacobi, &b, &mut x, &options)?.converged_or_err()?;
//! println!("{} iterations, residual {:e}", stats.iterations, stats.residual_norm);
//! # Ok(())
//! # }
//! ```
//!
//! # Stopping
//! A solver stops when the residual norm `‖b − A x‖₂` (for GMRES and BiCGStab with right
//! preconditioning, and CG's recurrence residual, all unpreconditioned) is at most
//! `max(relative_tolerance · ‖b‖₂, absolute_tolerance)`, after `max_iterations`, or when it
//! breaks down (a zero denominator: an operator that is not what the solver needs). Only a
//! bad argument is an `Err`; not converging is a [`Stop`] reason
//! ([`SolveStats::converged_or_err`] turns it into an error).
//!
//! # Communication per iteration
//! | solver | products | preconditioner | reductions (`MPI_Allreduce`) |
//! | --- | --- | --- | --- |
//! | CG | 1 | 1 | 2 (one scalar, then two fused) |
//! | pipelined CG | 1 | 1 | 1 of 3 values, non-blocking, behind the product and `M` |
//! | BiCGStab | 2 | 2 | 4 (of 1 or 2 values) |
//! | GMRES(m), step j | 1 | 1 | 3: two of `j + 1` values (classical Gram–Schmidt, twice), one norm |
//!
//! Products exchange only ghost entries (see [`crate::sparse`]); local vector work runs on
//! the comm's rayon threads.
//!
//! # Reproducible mode
//! With [`Options::reproducible`], every dot product and norm is computed exactly and
//! rounded once ([`crate::exact`]). Since the matrix product sums each row in global column
//! order whatever the split, and [`Jacobi`] works entry by entry, the iterates, residual
//! history and iteration count are then **bit-identical at any rank count and any thread
//! count**. [`BlockJacobi`] depends on the split by design (its blocks are the ranks'), and
//! so its results do too. The exact dot products cost about 5–8× a plain one locally; on a
//! memory-bound problem that is a modest share of an iteration (see the performance docs).

mod bicgstab;
mod cg;
mod gmres;
mod pipelined;
mod precond;
mod vectors;

use crate::collective::{Field, Preflight};
use crate::comm::Comm;
use crate::error::{Error, ErrorKind, Result};
use crate::par::Par;
use crate::sparse::{DistCsrMatrix, DistVector};

pub use bicgstab::bicgstab;
pub use cg::cg;
pub use gmres::gmres;
pub use pipelined::pipelined_cg;
pub use precond::{BlockJacobi, Identity, Jacobi, Preconditioner};

/// A linear operator `y = A x` on distributed vectors.
pub trait Operator {
    /// The communicator the operator's vectors live on.
    fn comm(&self) -> &Comm;
    /// The global `(rows, columns)`.
    fn shape(&self) -> (usize, usize);
    /// `y = A x`. Collective. To keep a solver's [reproducible mode](self#reproducible-mode)
    /// bit-identical across rank counts, `y` must not depend on how the vectors are split.
    ///
    /// # Errors
    /// Whatever the operator finds wrong with `x` and `y` (the same on every rank).
    fn apply(&self, x: &DistVector, y: &mut DistVector) -> Result<()>;
}

impl Operator for DistCsrMatrix {
    fn comm(&self) -> &Comm {
        DistCsrMatrix::comm(self)
    }

    fn shape(&self) -> (usize, usize) {
        DistCsrMatrix::shape(self)
    }

    fn apply(&self, x: &DistVector, y: &mut DistVector) -> Result<()> {
        DistCsrMatrix::apply(self, x, y)
    }
}

/// How a solver runs and when it stops; `Options::new()` is relative tolerance `1e-8`, no
/// absolute tolerance, 10 000 iterations, GMRES restart 30, fast (not reproducible) dot
/// products, no history.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    relative_tolerance: f64,
    absolute_tolerance: f64,
    max_iterations: usize,
    restart: usize,
    reproducible: bool,
    history: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options::new()
    }
}

impl Options {
    /// The defaults (see the type's docs).
    pub fn new() -> Options {
        Options {
            relative_tolerance: 1e-8,
            absolute_tolerance: 0.0,
            max_iterations: 10_000,
            restart: 30,
            reproducible: false,
            history: false,
        }
    }

    /// Stop when `‖r‖ ≤ tolerance · ‖b‖`.
    pub fn relative_tolerance(mut self, tolerance: f64) -> Options {
        self.relative_tolerance = tolerance;
        self
    }

    /// Stop when `‖r‖ ≤ tolerance` (whichever of the two tolerances is larger applies).
    pub fn absolute_tolerance(mut self, tolerance: f64) -> Options {
        self.absolute_tolerance = tolerance;
        self
    }

    /// Stop after this many iterations at most.
    pub fn max_iterations(mut self, iterations: usize) -> Options {
        self.max_iterations = iterations;
        self
    }

    /// GMRES's restart length `m` (its Krylov basis holds `m + 1` vectors).
    pub fn restart(mut self, m: usize) -> Options {
        self.restart = m;
        self
    }

    /// Exact dot products: results bit-identical at any rank and thread count (see the
    /// [module docs](self#reproducible-mode)).
    pub fn reproducible(mut self, on: bool) -> Options {
        self.reproducible = on;
        self
    }

    /// Record the residual norm of every iteration in [`SolveStats::history`].
    pub fn history(mut self, on: bool) -> Options {
        self.history = on;
        self
    }

    /// The checks every solver runs on its options (local; the same on every rank that
    /// passes the same options).
    fn check(&self, op: &str) -> Result<()> {
        let bad = |what: String| Err(Error::new(ErrorKind::Config, format!("{op}: {what}")));
        if !(self.relative_tolerance >= 0.0 && self.relative_tolerance.is_finite()) {
            return bad(format!(
                "the relative tolerance must be finite and non-negative, found {}",
                self.relative_tolerance
            ));
        }
        if !(self.absolute_tolerance >= 0.0 && self.absolute_tolerance.is_finite()) {
            return bad(format!(
                "the absolute tolerance must be finite and non-negative, found {}",
                self.absolute_tolerance
            ));
        }
        if self.restart == 0 {
            return bad("the GMRES restart length must be at least 1".into());
        }
        Ok(())
    }
}

/// Why a solver stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stop {
    /// The residual norm fell to the relative tolerance times `‖b‖`.
    RelativeTolerance,
    /// The residual norm fell to the absolute tolerance.
    AbsoluteTolerance,
    /// `max_iterations` ran out first.
    MaxIterations,
    /// A denominator became zero (or, in CG, `pᵀA p ≤ 0`: the operator is not positive
    /// definite); the iterate is the last good one.
    Breakdown,
}

/// What a solve did: iterations, residuals, why it stopped.
#[derive(Clone, Debug, PartialEq)]
#[must_use = "a solve may stop without converging: check `converged()`"]
pub struct SolveStats {
    /// The solver's name (`"cg"`, `"bicgstab"`, `"gmres"`).
    pub solver: &'static str,
    /// Iterations done (operator applications for CG and GMRES; BiCGStab does two per
    /// iteration).
    pub iterations: usize,
    /// `‖b − A x₀‖₂` at the start.
    pub initial_residual_norm: f64,
    /// The residual norm at the end (as the solver tracks it; see the module docs).
    pub residual_norm: f64,
    /// `‖b‖₂`, which the relative tolerance multiplies.
    pub rhs_norm: f64,
    /// Why the solver stopped.
    pub stop: Stop,
    /// The residual norm after each iteration, starting with the initial one (empty unless
    /// [`Options::history`] was asked).
    pub history: Vec<f64>,
}

impl SolveStats {
    /// Whether the solve reached a tolerance.
    pub fn converged(&self) -> bool {
        matches!(self.stop, Stop::RelativeTolerance | Stop::AbsoluteTolerance)
    }

    /// `Ok(self)` if the solve converged, else an error saying why not (`Singular` after a
    /// breakdown, `InvalidState` when the iterations ran out).
    ///
    /// # Errors
    /// As above.
    pub fn converged_or_err(self) -> Result<SolveStats> {
        if self.converged() {
            return Ok(self);
        }
        let kind = match self.stop {
            Stop::Breakdown => ErrorKind::Singular,
            _ => ErrorKind::InvalidState,
        };
        Err(Error::new(
            kind,
            format!(
                "{}: stopped ({:?}) after {} iterations with residual norm {:e} (‖b‖ = {:e})",
                self.solver, self.stop, self.iterations, self.residual_norm, self.rhs_norm
            ),
        ))
    }
}

impl SolveStats {
    /// The bookkeeping of a solve whose initial residual norm is `initial`: the stats (with
    /// `stop` set if `initial` already meets the tolerance) and the stopping test.
    fn begin(
        solver: &'static str,
        options: &Options,
        initial: f64,
        rhs_norm: f64,
    ) -> (SolveStats, Tolerance) {
        let tolerance = Tolerance::new(options, rhs_norm);
        let stats = SolveStats {
            solver,
            iterations: 0,
            initial_residual_norm: initial,
            residual_norm: initial,
            rhs_norm,
            stop: tolerance.reached(initial).unwrap_or(Stop::MaxIterations),
            history: if options.history {
                vec![initial]
            } else {
                Vec::new()
            },
        };
        (stats, tolerance)
    }

    /// Records the residual norm after `iterations` iterations; whether it meets the
    /// tolerance (then `stop` says which).
    fn record(
        &mut self,
        iterations: usize,
        residual: f64,
        tolerance: &Tolerance,
        history: bool,
    ) -> bool {
        self.iterations = iterations;
        self.residual_norm = residual;
        if history {
            self.history.push(residual);
        }
        match tolerance.reached(residual) {
            Some(stop) => {
                self.stop = stop;
                true
            }
            None => false,
        }
    }
}

/// `b − A x`, a new vector.
fn residual(
    a: &(impl Operator + ?Sized),
    b: &DistVector,
    x: &DistVector,
    par: Par,
) -> Result<DistVector> {
    let mut r = b.clone();
    a.apply(x, &mut r)?;
    vectors::update(
        par,
        vectors::local_mut(&mut r),
        vectors::local(b),
        |r, b| *r = b - *r,
    );
    Ok(r)
}

/// A vector of zeros in `b`'s layout.
fn zeros_like(b: &DistVector) -> DistVector {
    let mut v = b.clone();
    vectors::local_mut(&mut v).fill(0.0);
    v
}

/// The stopping test shared by the solvers.
struct Tolerance {
    relative_target: f64,
    absolute_target: f64,
}

impl Tolerance {
    fn new(options: &Options, rhs_norm: f64) -> Tolerance {
        Tolerance {
            relative_target: options.relative_tolerance * rhs_norm,
            absolute_target: options.absolute_tolerance,
        }
    }

    /// Why to stop at residual norm `r`, if it is small enough (the larger target applies).
    fn reached(&self, r: f64) -> Option<Stop> {
        if self.absolute_target >= self.relative_target {
            (r <= self.absolute_target).then_some(Stop::AbsoluteTolerance)
        } else {
            (r <= self.relative_target).then_some(Stop::RelativeTolerance)
        }
    }
}

/// Checks shared by the solvers: a square operator, `b` and `x` in its layout, sane options,
/// and the same options on every rank (a rank that stopped on another tolerance would leave
/// the others waiting in a reduction). One agreement check: the same `Err` on every rank.
fn check_problem(
    op: &'static str,
    a: &(impl Operator + ?Sized),
    b: &DistVector,
    x: &DistVector,
    options: &Options,
) -> Result<()> {
    let comm = a.comm();
    let local_error = options
        .check(op)
        .and_then(|()| check_shapes(op, a, b, x))
        .err()
        .map(|e| e.on_rank(comm.rank()));
    let key = |v: f64| v.to_bits() as i64;
    let (relative, absolute) = (options.relative_tolerance, options.absolute_tolerance);
    let flags = usize::from(options.reproducible) + 2 * usize::from(options.history);
    comm.preflight(Preflight {
        op,
        element: None,
        local_error,
        agree: &[
            Field::keyed("the relative tolerance", key(relative), &relative),
            Field::keyed("the absolute tolerance", key(absolute), &absolute),
            Field::number("the iteration limit", &options.max_iterations),
            Field::number("the restart length", &options.restart),
            Field::number("the reproducible and history flags", &flags),
        ],
    })
}

fn check_shapes(
    op: &str,
    a: &(impl Operator + ?Sized),
    b: &DistVector,
    x: &DistVector,
) -> Result<()> {
    let comm = a.comm();
    let (n, m) = a.shape();
    let fail = |kind, what: String| Err(Error::new(kind, format!("{op}: {what}")));
    if n != m {
        return fail(
            ErrorKind::Shape,
            format!("the operator is {n} x {m}; a Krylov solver needs a square one"),
        );
    }
    for (name, v) in [("b", b), ("x", x)] {
        if !v.comm().same_as(comm) {
            return fail(
                ErrorKind::InvalidPartition,
                format!("`{name}` lives on another communicator than the operator"),
            );
        }
        if v.len() != n {
            return fail(
                ErrorKind::Shape,
                format!(
                    "`{name}` has {} entries; the operator is {n} x {n}",
                    v.len()
                ),
            );
        }
    }
    Ok(())
}
