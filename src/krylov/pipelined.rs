//! Pipelined conjugate gradients (Ghysels and Vanroose): one non-blocking reduction per
//! iteration, travelling behind the preconditioner and the product.

use rayon::prelude::*;

use super::vectors::{local, local_mut, Reductions};
use super::{
    check_problem, residual, zeros_like, Operator, Options, Preconditioner, SolveStats, Stop,
};
use crate::error::Result;
use crate::par::Par;
use crate::sparse::DistVector;
use crate::Op;

/// Elements per rayon task in the fused sweeps.
const CHUNK: usize = 8192;

/// Solves `A x = b` for a symmetric positive definite `A` (and `M`) by pipelined CG, as
/// PETSc's `KSPPIPECG`: the iteration's three dot products (`rᵀu`, `wᵀu`, `rᵀr`) travel in
/// **one non-blocking all-reduce** while the rank applies the preconditioner and the
/// product, instead of two blocking ones around them. Collective.
///
/// It pays where a reduction costs about as much as the local work of an iteration (many
/// ranks, small pieces); it moves more vector data than [`cg`](super::cg) (four more
/// recurrences), so where memory bandwidth is the limit and reductions are cheap (a few ranks
/// on one node) plain CG is faster: see the performance docs. In reproducible mode the exact
/// reduction is blocking (no overlap). Arithmetic differs from CG's in rounding only, but the
/// extra recurrences lose accuracy sooner: asked for a tolerance near `1e-11·‖b‖` or below,
/// it may stop with [`Stop::Breakdown`] where CG would go on (the residual it reports is its
/// recurrence's).
///
/// # Errors
/// As [`cg`](super::cg).
pub fn pipelined_cg(
    a: &(impl Operator + ?Sized),
    m: &(impl Preconditioner + ?Sized),
    b: &DistVector,
    x: &mut DistVector,
    options: &Options,
) -> Result<SolveStats> {
    const NAME: &str = "pipelined_cg";
    check_problem("krylov::pipelined_cg", a, b, x, options)?;
    let comm = a.comm().unchecked();
    let mut sums = Reductions::new(a.comm(), options.reproducible);
    let par = sums.par();
    let zeros = || zeros_like(b);
    let r0 = residual(a, b, x, par)?;
    let mut r = r0;
    let (mut u, mut w) = (zeros(), zeros());
    m.apply(&r, &mut u)?;
    a.apply(&u, &mut w)?;
    let [mut mw, mut n, mut z, mut q, mut s, mut p] =
        [zeros(), zeros(), zeros(), zeros(), zeros(), zeros()];
    let rhs_norm = sums.norm(local(b))?;
    // The initial residual norm comes with the first iteration's reduction.
    let (mut stats, tolerance) = SolveStats::begin(NAME, options, f64::INFINITY, rhs_norm);
    stats.history.clear();
    let (mut gamma_old, mut alpha_old) = (0.0, 0.0);
    for i in 0.. {
        // γ = rᵀu, δ = wᵀu, ‖r‖²: posted here, waited for after M w and A M w.
        let pairs = [
            (local(&r), local(&u)),
            (local(&w), local(&u)),
            (local(&r), local(&r)),
        ];
        let reduced = if options.reproducible {
            let all = sums.dots(&pairs)?;
            m.apply(&w, &mut mw)?;
            a.apply(&mw, &mut n)?;
            all
        } else {
            let mine = three_dots(par, local(&r), local(&u), local(&w));
            let pending = comm.immediate_all_reduce_slice(&mine, Op::Sum)?;
            m.apply(&w, &mut mw)?;
            a.apply(&mw, &mut n)?;
            pending.wait()?
        };
        let (gamma, delta, norm) = (reduced[0], reduced[1], reduced[2].sqrt());
        if i == 0 {
            stats.initial_residual_norm = norm;
        }
        if stats.record(i, norm, &tolerance, options.history) || i == options.max_iterations {
            return Ok(stats);
        }
        let (alpha, beta) = if i == 0 {
            (gamma / delta, 0.0)
        } else {
            let beta = gamma / gamma_old;
            (gamma / (delta - beta * gamma / alpha_old), beta)
        };
        if !(alpha > 0.0 && alpha.is_finite()) {
            stats.stop = Stop::Breakdown;
            return Ok(stats);
        }
        let mut recurrences = Recurrences {
            z: local_mut(&mut z),
            q: local_mut(&mut q),
            s: local_mut(&mut s),
            p: local_mut(&mut p),
            x: local_mut(x),
            r: local_mut(&mut r),
            u: local_mut(&mut u),
            w: local_mut(&mut w),
        };
        recurrences.step(par, local(&n), local(&mw), alpha, beta);
        (gamma_old, alpha_old) = (gamma, alpha);
    }
    unreachable!("the loop returns")
}

/// This rank's `(rᵀu, wᵀu, rᵀr)` in one sweep.
fn three_dots(par: Par, r: &[f64], u: &[f64], w: &[f64]) -> [f64; 3] {
    let task = |((r, u), w): ((&[f64], &[f64]), &[f64])| {
        let mut sums = [0.0; 3];
        for ((&r, &u), &w) in r.iter().zip(u).zip(w) {
            sums[0] += r * u;
            sums[1] += w * u;
            sums[2] += r * r;
        }
        sums
    };
    let add = |a: [f64; 3], b: [f64; 3]| [a[0] + b[0], a[1] + b[1], a[2] + b[2]];
    match par {
        Par::Rayon => r
            .par_chunks(CHUNK)
            .zip(u.par_chunks(CHUNK))
            .zip(w.par_chunks(CHUNK))
            .map(task)
            .reduce(|| [0.0; 3], add),
        Par::Seq => task(((r, u), w)),
    }
}

/// The eight vectors pipelined CG updates every iteration, this rank's entries.
struct Recurrences<'a> {
    z: &'a mut [f64],
    q: &'a mut [f64],
    s: &'a mut [f64],
    p: &'a mut [f64],
    x: &'a mut [f64],
    r: &'a mut [f64],
    u: &'a mut [f64],
    w: &'a mut [f64],
}

impl Recurrences<'_> {
    /// `z = n + βz, q = m + βq, s = w + βs, p = u + βp`, then `x += αp, r −= αs, u −= αq,
    /// w −= αz`, in one sweep (over `CHUNK`-long pieces on the rayon pool).
    fn step(&mut self, par: Par, n: &[f64], m: &[f64], alpha: f64, beta: f64) {
        let pieces = self.pieces();
        let task = |(at, v): (usize, Recurrences<'_>)| {
            let (n, m) = (&n[at..at + v.x.len()], &m[at..at + v.x.len()]);
            for k in 0..v.x.len() {
                v.z[k] = n[k] + beta * v.z[k];
                v.q[k] = m[k] + beta * v.q[k];
                v.s[k] = v.w[k] + beta * v.s[k];
                v.p[k] = v.u[k] + beta * v.p[k];
                v.x[k] += alpha * v.p[k];
                v.r[k] -= alpha * v.s[k];
                v.u[k] -= alpha * v.q[k];
                v.w[k] -= alpha * v.z[k];
            }
        };
        match par {
            Par::Rayon => pieces.into_par_iter().for_each(task),
            Par::Seq => pieces.into_iter().for_each(task),
        }
    }

    /// The vectors cut into `CHUNK`-long pieces, each with its offset.
    fn pieces(&mut self) -> Vec<(usize, Recurrences<'_>)> {
        let mut z = self.z.chunks_mut(CHUNK);
        let mut q = self.q.chunks_mut(CHUNK);
        let mut s = self.s.chunks_mut(CHUNK);
        let mut p = self.p.chunks_mut(CHUNK);
        let mut x = self.x.chunks_mut(CHUNK);
        let mut r = self.r.chunks_mut(CHUNK);
        let mut u = self.u.chunks_mut(CHUNK);
        let mut w = self.w.chunks_mut(CHUNK);
        let mut out = Vec::new();
        let mut at = 0;
        while let (Some(z), Some(q), Some(s), Some(p), Some(x), Some(r), Some(u), Some(w)) = (
            z.next(),
            q.next(),
            s.next(),
            p.next(),
            x.next(),
            r.next(),
            u.next(),
            w.next(),
        ) {
            let len = x.len();
            out.push((
                at,
                Recurrences {
                    z,
                    q,
                    s,
                    p,
                    x,
                    r,
                    u,
                    w,
                },
            ));
            at += len;
        }
        out
    }
}
