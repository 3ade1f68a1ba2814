//! Restarted GMRES, right-preconditioned, with classical Gram–Schmidt applied twice.

use super::vectors::{local, local_mut, update, Reductions};
use super::{
    check_problem, residual, zeros_like, Operator, Options, Preconditioner, SolveStats, Stop,
};
use crate::error::Result;
use crate::sparse::DistVector;

/// Solves `A x = b` by GMRES(m) with right preconditioning (`A M⁻¹ y = b`, `x = M⁻¹ y`),
/// restarting every [`Options::restart`] steps, from the guess in `x`. Collective.
///
/// Each step orthogonalises the new vector against the basis by classical Gram–Schmidt,
/// twice (one all-reduce of `j + 1` values per pass, where modified Gram–Schmidt would need
/// `j + 1` all-reduces), then normalises it (a third all-reduce). The residual norm is
/// GMRES's estimate `|g_{j+1}|` (exact in exact arithmetic); each restart recomputes the
/// true residual.
///
/// # Errors
/// As [`cg`](super::cg).
pub fn gmres(
    a: &(impl Operator + ?Sized),
    m: &(impl Preconditioner + ?Sized),
    b: &DistVector,
    x: &mut DistVector,
    options: &Options,
) -> Result<SolveStats> {
    const NAME: &str = "gmres";
    check_problem("krylov::gmres", a, b, x, options)?;
    let mut sums = Reductions::new(a.comm(), options.reproducible);
    let par = sums.par();
    let restart = options.restart;
    let zeros = || zeros_like(b);
    let (mut w, mut z) = (zeros(), zeros());
    let mut basis: Vec<DistVector> = Vec::with_capacity(restart + 1);
    let mut r = residual(a, b, x, par)?;
    let first = sums.dots(&[(local(&r), local(&r)), (local(b), local(b))])?;
    let (mut stats, target) = SolveStats::begin(NAME, options, first[0].sqrt(), first[1].sqrt());
    let mut beta = stats.initial_residual_norm;
    loop {
        // `r` is the true residual here: at the start and after every restart.
        stats.residual_norm = beta;
        if let Some(stop) = target.reached(beta) {
            stats.stop = stop;
            return Ok(stats);
        }
        if stats.iterations >= options.max_iterations {
            stats.stop = Stop::MaxIterations;
            return Ok(stats);
        }
        local_mut(&mut r).iter_mut().for_each(|v| *v /= beta);
        basis.clear();
        basis.push(r);
        // Columns of the Hessenberg matrix, already rotated to upper triangular form.
        let mut columns: Vec<Vec<f64>> = Vec::with_capacity(restart);
        let mut cosines: Vec<f64> = Vec::with_capacity(restart);
        let mut sines: Vec<f64> = Vec::with_capacity(restart);
        let mut g = vec![beta];
        let mut stop = None;
        for j in 0..restart {
            if stats.iterations >= options.max_iterations {
                break;
            }
            m.apply(&basis[j], &mut z)?;
            a.apply(&z, &mut w)?;
            let mut column = vec![0.0; j + 2];
            for _pass in 0..2 {
                let pairs: Vec<(&[f64], &[f64])> =
                    basis.iter().map(|v| (local(v), local(&w))).collect();
                let c = sums.dots(&pairs)?;
                for (i, v) in basis.iter().enumerate() {
                    column[i] += c[i];
                    let ci = c[i];
                    update(par, local_mut(&mut w), local(v), |w, v| *w -= ci * v);
                }
            }
            let norm = sums.norm(local(&w))?;
            column[j + 1] = norm;
            for i in 0..j {
                let (h0, h1) = (column[i], column[i + 1]);
                column[i] = cosines[i] * h0 + sines[i] * h1;
                column[i + 1] = -sines[i] * h0 + cosines[i] * h1;
            }
            let denominator = column[j].hypot(column[j + 1]);
            if denominator == 0.0 || !denominator.is_finite() {
                stop = Some(Stop::Breakdown);
                break;
            }
            let (c, s) = (column[j] / denominator, column[j + 1] / denominator);
            column[j] = denominator;
            column[j + 1] = 0.0;
            cosines.push(c);
            sines.push(s);
            g.push(-s * g[j]);
            g[j] *= c;
            columns.push(column);
            let reached = stats.record(
                stats.iterations + 1,
                g[j + 1].abs(),
                &target,
                options.history,
            );
            stop = reached.then_some(stats.stop);
            if stop.is_some() || norm == 0.0 {
                break;
            }
            let mut next = zeros();
            local_mut(&mut next).copy_from_slice(local(&w));
            local_mut(&mut next).iter_mut().for_each(|v| *v /= norm);
            basis.push(next);
        }
        // x += M⁻¹ (V y) with H y = g (upper triangular after the rotations).
        let k = columns.len();
        let mut y = vec![0.0; k];
        for i in (0..k).rev() {
            let tail: f64 = (i + 1..k).map(|l| columns[l][i] * y[l]).sum();
            y[i] = (g[i] - tail) / columns[i][i];
        }
        local_mut(&mut w).fill(0.0);
        for (v, &yi) in basis.iter().zip(&y) {
            update(par, local_mut(&mut w), local(v), |u, v| *u += yi * v);
        }
        if k > 0 {
            m.apply(&w, &mut z)?;
            update(par, local_mut(x), local(&z), |x, z| *x += z);
        }
        if let Some(stop) = stop {
            stats.stop = stop;
            return Ok(stats);
        }
        r = residual(a, b, x, par)?;
        beta = sums.norm(local(&r))?;
    }
}
