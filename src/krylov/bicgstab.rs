//! BiCGStab (van der Vorst), right-preconditioned.

use super::vectors::{local, local_mut, update, update2, Reductions};
use super::{
    check_problem, residual, zeros_like, Operator, Options, Preconditioner, SolveStats, Stop,
};
use crate::error::Result;
use crate::sparse::DistVector;

/// Solves `A x = b` by BiCGStab with right preconditioning (`A M⁻¹ y = b`, `x = M⁻¹ y`),
/// from the guess in `x`, for any non-singular `A`. Collective.
///
/// Per iteration: two products, two preconditioner applications, four all-reduces (of one
/// or two values). The residual tracked is the recurrence for `b − A x`; an iteration is
/// counted per full step (two products). A half step that already meets the tolerance ends
/// the solve there.
///
/// # Errors
/// As [`cg`](super::cg). A zero denominator (`r̂ᵀr`, `r̂ᵀv` or `tᵀt`) stops with
/// [`Stop::Breakdown`].
pub fn bicgstab(
    a: &(impl Operator + ?Sized),
    m: &(impl Preconditioner + ?Sized),
    b: &DistVector,
    x: &mut DistVector,
    options: &Options,
) -> Result<SolveStats> {
    const NAME: &str = "bicgstab";
    check_problem("krylov::bicgstab", a, b, x, options)?;
    let mut sums = Reductions::new(a.comm(), options.reproducible);
    let par = sums.par();
    let mut r = residual(a, b, x, par)?;
    let shadow = r.clone();
    let first = sums.dots(&[
        (local(&r), local(&r)),
        (local(b), local(b)),
        (local(&shadow), local(&r)),
    ])?;
    let (mut stats, tolerance) = SolveStats::begin(NAME, options, first[0].sqrt(), first[1].sqrt());
    if stats.converged() {
        return Ok(stats);
    }
    let zeros = || zeros_like(b);
    let (mut p, mut v, mut s, mut t) = (zeros(), zeros(), zeros(), zeros());
    let (mut p_hat, mut s_hat) = (zeros(), zeros());
    let (mut rho_old, mut alpha, mut omega) = (1.0, 1.0, 1.0);
    let mut rho = first[2];
    while stats.iterations < options.max_iterations {
        if rho == 0.0 || !rho.is_finite() {
            stats.stop = Stop::Breakdown;
            return Ok(stats);
        }
        let beta = (rho / rho_old) * (alpha / omega);
        update2(par, local_mut(&mut p), local(&r), local(&v), |p, r, v| {
            *p = r + beta * (*p - omega * v)
        });
        m.apply(&p, &mut p_hat)?;
        a.apply(&p_hat, &mut v)?;
        let shadow_v = sums.dot(local(&shadow), local(&v))?;
        if shadow_v == 0.0 || !shadow_v.is_finite() {
            stats.stop = Stop::Breakdown;
            return Ok(stats);
        }
        alpha = rho / shadow_v;
        update2(par, local_mut(&mut s), local(&r), local(&v), |s, r, v| {
            *s = r - alpha * v
        });
        let s_norm = sums.norm(local(&s))?;
        if tolerance.reached(s_norm).is_some() {
            update(par, local_mut(x), local(&p_hat), |x, p| *x += alpha * p);
            stats.record(stats.iterations + 1, s_norm, &tolerance, options.history);
            return Ok(stats);
        }
        m.apply(&s, &mut s_hat)?;
        a.apply(&s_hat, &mut t)?;
        let ts = sums.dots(&[(local(&t), local(&s)), (local(&t), local(&t))])?;
        if ts[1] == 0.0 || !ts[1].is_finite() {
            stats.stop = Stop::Breakdown;
            return Ok(stats);
        }
        omega = ts[0] / ts[1];
        update2(
            par,
            local_mut(x),
            local(&p_hat),
            local(&s_hat),
            |x, p, s| *x += alpha * p + omega * s,
        );
        update2(par, local_mut(&mut r), local(&s), local(&t), |r, s, t| {
            *r = s - omega * t
        });
        let next = sums.dots(&[(local(&r), local(&r)), (local(&shadow), local(&r))])?;
        if stats.record(
            stats.iterations + 1,
            next[0].sqrt(),
            &tolerance,
            options.history,
        ) {
            return Ok(stats);
        }
        if omega == 0.0 {
            stats.stop = Stop::Breakdown;
            return Ok(stats);
        }
        (rho_old, rho) = (rho, next[1]);
    }
    Ok(stats)
}
