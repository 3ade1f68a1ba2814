//! Preconditioned conjugate gradients.

use super::vectors::{local, local_mut, scale_and_dots, step, update, Reductions};
use super::{
    check_problem, residual, zeros_like, Operator, Options, Preconditioner, SolveStats, Stop,
};
use crate::error::Result;
use crate::sparse::DistVector;

/// Solves `A x = b` by preconditioned conjugate gradients, from the guess in `x`, for a
/// symmetric positive definite `A` (and `M`). Collective.
///
/// Per iteration: one product, one preconditioner application, two all-reduces (`pᵀA p`;
/// then `rᵀz` and `rᵀr` together), five vector sweeps. The residual tracked is CG's
/// recurrence for `b − A x` (unpreconditioned), in exact arithmetic the true one.
///
/// # Errors
/// On every rank: `Shape` if `A` is not square or `b`, `x` do not match it; `Config` for
/// negative or non-finite tolerances; what `A` or `M` report. Not converging is not an
/// error (see [`SolveStats::stop`]); `pᵀA p ≤ 0` stops with [`Stop::Breakdown`].
pub fn cg(
    a: &(impl Operator + ?Sized),
    m: &(impl Preconditioner + ?Sized),
    b: &DistVector,
    x: &mut DistVector,
    options: &Options,
) -> Result<SolveStats> {
    const NAME: &str = "cg";
    check_problem("krylov::cg", a, b, x, options)?;
    let mut sums = Reductions::new(a.comm(), options.reproducible);
    let par = sums.par();
    let mut r = residual(a, b, x, par)?;
    let mut z = zeros_like(b);
    m.apply(&r, &mut z)?;
    let first = sums.dots(&[
        (local(&r), local(&z)),
        (local(&r), local(&r)),
        (local(b), local(b)),
    ])?;
    let mut rho = first[0];
    let (mut stats, tolerance) = SolveStats::begin(NAME, options, first[1].sqrt(), first[2].sqrt());
    if stats.converged() {
        return Ok(stats);
    }
    let mut p = z.clone();
    let mut q = b.clone();
    while stats.iterations < options.max_iterations {
        a.apply(&p, &mut q)?;
        let pq = sums.dot(local(&p), local(&q))?;
        if !(pq > 0.0 && pq.is_finite()) {
            stats.stop = Stop::Breakdown;
            return Ok(stats);
        }
        let alpha = rho / pq;
        step(
            par,
            local_mut(x),
            local_mut(&mut r),
            local(&p),
            local(&q),
            alpha,
        );
        let next = match m.pointwise() {
            // z = D r and both dot products in one sweep.
            Some(d) if !sums.reproducible() && d.len() == local(&r).len() => {
                let (rz, rr) = scale_and_dots(par, local_mut(&mut z), local(&r), d);
                sums.sum(&[rz, rr])?
            }
            _ => {
                m.apply(&r, &mut z)?;
                sums.dots(&[(local(&r), local(&z)), (local(&r), local(&r))])?
            }
        };
        if stats.record(
            stats.iterations + 1,
            next[1].sqrt(),
            &tolerance,
            options.history,
        ) {
            return Ok(stats);
        }
        let beta = next[0] / rho;
        rho = next[0];
        let p_local = local_mut(&mut p);
        update(par, p_local, local(&z), |p, z| *p = z + beta * *p);
    }
    Ok(stats)
}
