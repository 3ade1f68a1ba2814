//! The solvers' vector work: local slices of [`DistVector`]s, element-wise updates on the
//! rayon pool, and global dot products (fast, or exact for the reproducible mode).

use rayon::prelude::*;

use crate::collective::AllReducePlan;
use crate::comm::Comm;
use crate::error::Result;
use crate::exact::{local_dot_exact, ExactSum};
use crate::par::Par;
use crate::sparse::DistVector;
use crate::Op;

/// Elements per rayon task in vector loops.
const CHUNK: usize = 8192;

/// This rank's entries of `v`.
pub(crate) fn local(v: &DistVector) -> &[f64] {
    v.local()
        .to_slice()
        .expect("a 1-D piece without ghosts is contiguous")
}

/// This rank's entries of `v`, writable.
pub(crate) fn local_mut(v: &mut DistVector) -> &mut [f64] {
    v.local_mut()
        .into_slice()
        .expect("a 1-D piece without ghosts is contiguous")
}

/// `f(y[i], x[i])` for every `i`.
pub(crate) fn update(par: Par, y: &mut [f64], x: &[f64], f: impl Fn(&mut f64, f64) + Sync + Send) {
    let task = |(y, x): (&mut [f64], &[f64])| y.iter_mut().zip(x).for_each(|(y, &x)| f(y, x));
    match par {
        Par::Rayon => y
            .par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK))
            .for_each(task),
        Par::Seq => task((y, x)),
    }
}

/// `f(y[i], a[i], b[i])` for every `i`.
pub(crate) fn update2(
    par: Par,
    y: &mut [f64],
    a: &[f64],
    b: &[f64],
    f: impl Fn(&mut f64, f64, f64) + Sync + Send,
) {
    let task = |((y, a), b): ((&mut [f64], &[f64]), &[f64])| {
        for ((y, &a), &b) in y.iter_mut().zip(a).zip(b) {
            f(y, a, b);
        }
    };
    match par {
        Par::Rayon => y
            .par_chunks_mut(CHUNK)
            .zip(a.par_chunks(CHUNK))
            .zip(b.par_chunks(CHUNK))
            .for_each(task),
        Par::Seq => task(((y, a), b)),
    }
}

/// `Σ a·b` of two equal slices, four running sums for instruction-level parallelism.
fn chunk_dot(a: &[f64], b: &[f64]) -> f64 {
    let mut lanes = [0.0; 4];
    let (a4, b4) = (a.chunks_exact(4), b.chunks_exact(4));
    let tail: f64 = a4
        .remainder()
        .iter()
        .zip(b4.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a4.zip(b4) {
        for k in 0..4 {
            lanes[k] += x[k] * y[k];
        }
    }
    (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]) + tail
}

/// This rank's `Σ a·b`.
pub(crate) fn local_dot(par: Par, a: &[f64], b: &[f64]) -> f64 {
    match par {
        Par::Rayon => a
            .par_chunks(CHUNK)
            .zip(b.par_chunks(CHUNK))
            .map(|(a, b)| chunk_dot(a, b))
            .sum(),
        Par::Seq => a
            .chunks(CHUNK)
            .zip(b.chunks(CHUNK))
            .map(|(a, b)| chunk_dot(a, b))
            .sum(),
    }
}

/// `z = d·r` entry by entry, returning this rank's `(Σ r·z, Σ r·r)`: a pointwise
/// preconditioner and CG's two dot products in one sweep.
pub(crate) fn scale_and_dots(par: Par, z: &mut [f64], r: &[f64], d: &[f64]) -> (f64, f64) {
    let task = |((z, r), d): ((&mut [f64], &[f64]), &[f64])| {
        let (mut rz, mut rr) = (0.0, 0.0);
        for ((z, &r), &d) in z.iter_mut().zip(r).zip(d) {
            *z = d * r;
            rz += r * *z;
            rr += r * r;
        }
        (rz, rr)
    };
    let add = |a: (f64, f64), b: (f64, f64)| (a.0 + b.0, a.1 + b.1);
    match par {
        Par::Rayon => z
            .par_chunks_mut(CHUNK)
            .zip(r.par_chunks(CHUNK))
            .zip(d.par_chunks(CHUNK))
            .map(task)
            .reduce(|| (0.0, 0.0), add),
        Par::Seq => z
            .chunks_mut(CHUNK)
            .zip(r.chunks(CHUNK))
            .zip(d.chunks(CHUNK))
            .map(task)
            .fold((0.0, 0.0), add),
    }
}

/// `x += α p` and `r −= α q` in one sweep.
pub(crate) fn step(par: Par, x: &mut [f64], r: &mut [f64], p: &[f64], q: &[f64], alpha: f64) {
    let task = |x: &mut [f64], r: &mut [f64], p: &[f64], q: &[f64]| {
        for (((x, r), &p), &q) in x.iter_mut().zip(r.iter_mut()).zip(p).zip(q) {
            *x += alpha * p;
            *r -= alpha * q;
        }
    };
    match par {
        Par::Rayon => x
            .par_chunks_mut(CHUNK)
            .zip(r.par_chunks_mut(CHUNK))
            .zip(p.par_chunks(CHUNK))
            .zip(q.par_chunks(CHUNK))
            .for_each(|(((x, r), p), q)| task(x, r, p, q)),
        Par::Seq => task(x, r, p, q),
    }
}

/// Global dot products for a solver: one `MPI_Allreduce` per batch, of plain sums (through
/// persistent plans, checked once) or of exact accumulators.
pub(crate) struct Reductions {
    comm: Comm,
    par: Par,
    reproducible: bool,
    /// Plans by batch length (made on first use; every rank asks for the same lengths in
    /// the same order).
    plans: Vec<Option<AllReducePlan<f64>>>,
}

impl Reductions {
    pub(crate) fn new(comm: &Comm, reproducible: bool) -> Reductions {
        Reductions {
            comm: comm.clone(),
            par: comm.par().effective(),
            reproducible,
            plans: Vec::new(),
        }
    }

    pub(crate) fn par(&self) -> Par {
        self.par
    }

    pub(crate) fn reproducible(&self) -> bool {
        self.reproducible
    }

    /// Sums this rank's values over all ranks (fast mode only: the values are rounded
    /// sums already). Collective.
    ///
    /// # Errors
    /// As [`dots`](Self::dots).
    pub(crate) fn sum(&mut self, mine: &[f64]) -> Result<Vec<f64>> {
        debug_assert!(!self.reproducible);
        let n = mine.len();
        if self.plans.len() <= n {
            self.plans.resize_with(n + 1, || None);
        }
        if self.plans[n].is_none() {
            self.plans[n] = Some(self.comm.all_reduce_plan::<f64>(n, Op::Sum)?);
        }
        let mut all = vec![0.0; n];
        self.plans[n]
            .as_ref()
            .expect("made above")
            .all_reduce_into(mine, &mut all);
        Ok(all)
    }

    /// `[Σ a·b for (a, b) in pairs]` over all ranks, in one reduction. Collective.
    ///
    /// # Errors
    /// Only if ranks ask for batches of different lengths (a broken solver).
    pub(crate) fn dots(&mut self, pairs: &[(&[f64], &[f64])]) -> Result<Vec<f64>> {
        if self.reproducible {
            let sums: Vec<ExactSum> = pairs.iter().map(|(a, b)| local_dot_exact(a, b)).collect();
            let all = self.comm.all_reduce_exact_slice(&sums);
            return Ok(all.iter().map(ExactSum::to_f64).collect());
        }
        let mine: Vec<f64> = pairs
            .iter()
            .map(|(a, b)| local_dot(self.par, a, b))
            .collect();
        self.sum(&mine)
    }

    /// `Σ a·b` over all ranks. Collective.
    ///
    /// # Errors
    /// As [`dots`](Self::dots).
    pub(crate) fn dot(&mut self, a: &[f64], b: &[f64]) -> Result<f64> {
        Ok(self.dots(&[(a, b)])?[0])
    }

    /// `‖a‖₂` over all ranks. Collective.
    ///
    /// # Errors
    /// As [`dots`](Self::dots).
    pub(crate) fn norm(&mut self, a: &[f64]) -> Result<f64> {
        Ok(self.dot(a, a)?.sqrt())
    }
}
