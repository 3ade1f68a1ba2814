//! Local rayon kernels (`map`, `map_inplace`, `zip_with`, `fold`) and global reductions
//! (`sum`, `dot`, `norm2`, `min`, `max`, and the reproducible `sum_exact`, `dot_exact`).
//!
//! Every reduction first reduces this rank's piece (compute, on the rayon pool) and only then
//! opens its comm region for the agreement check and the one collective, so the profiler books
//! the local work as compute.

use std::mem::size_of;

use mpi::collective::CommunicatorCollectives;
use ndarray::{ArrayView, ArrayView1, Axis, Dimension, RemoveAxis, Zip};
use num_traits::Float;
use rayon::prelude::*;

use super::{DistArray, Element};
use crate::collective::{Number, Op};
use crate::error::{Error, ErrorKind, Result};
use crate::exact::{local_dot_exact, local_sum_exact, ExactFloat, ExactSum};
use crate::par::Par;

/// Elements per rayon task in reductions: large enough to amortise scheduling, small enough
/// to balance.
const TASK: usize = 1 << 15;
/// Independent accumulators in the local sums: breaks the add-latency chain, lets the
/// compiler vectorise.
const LANES: usize = 8;

impl<T: Element, D: Dimension + RemoveAxis> DistArray<T, D> {
    /// A new array of `f` applied to every element (ghosts included), with the same split and
    /// communicator. No communication.
    pub fn map<U, F>(&self, f: F) -> DistArray<U, D>
    where
        U: Element,
        F: Fn(T) -> U + Sync + Send,
    {
        let zip = Zip::from(&self.data);
        let data = match self.par {
            Par::Rayon => zip.par_map_collect(|&x| f(x)),
            Par::Seq => zip.map_collect(|&x| f(x)),
        };
        DistArray {
            data,
            shape: self.shape.clone(),
            layout: self.layout,
            comm: self.comm.clone(),
            ghosts: self.ghosts,
            boundaries: self.boundaries,
            halo_agreed: self.halo_agreed,
            par: self.par,
        }
    }

    /// Applies `f` to every owned element (not the ghosts). No communication.
    pub fn map_inplace<F>(&mut self, f: F)
    where
        F: Fn(&mut T) + Sync + Send,
    {
        let par = self.par;
        let zip = Zip::from(self.local_mut());
        match par {
            Par::Rayon => zip.par_for_each(f),
            Par::Seq => zip.for_each(f),
        }
    }

    /// A new array (without ghosts) of `f(a, b)` for the elements of `self` and `other`, which
    /// must have the same shape and split and be made on the same communicator. No
    /// communication.
    ///
    /// # Errors
    /// `Shape` if the arrays' shapes or splits differ; `InvalidPartition` if they were made
    /// on different communicators.
    pub fn zip_with<U, V, F>(&self, other: &DistArray<U, D>, f: F) -> Result<DistArray<V, D>>
    where
        U: Element,
        V: Element,
        F: Fn(T, U) -> V + Sync + Send,
    {
        const OP: &str = "DistArray::zip_with";
        if let Some(e) = self.pairing_error(OP, other) {
            return Err(e.on_rank(self.comm.rank()));
        }
        let zip = Zip::from(self.local()).and(other.local());
        let data = match self.par {
            Par::Rayon => zip.par_map_collect(|&a, &b| f(a, b)),
            Par::Seq => zip.map_collect(|&a, &b| f(a, b)),
        };
        Ok(
            DistArray::assemble(&self.comm, self.shape.clone(), self.layout, data)
                .with_par(self.par),
        )
    }

    /// Folds this rank's owned elements: each rayon task folds its share from `identity()`
    /// with `fold`, and `combine` joins the tasks' results (so `combine` must be associative
    /// and agree with `fold`). No communication: combine the ranks' results with a collective.
    pub fn fold<A, I, F, C>(&self, identity: I, fold: F, combine: C) -> A
    where
        A: Send,
        I: Fn() -> A + Sync + Send + Clone,
        F: Fn(A, &T) -> A + Sync + Send,
        C: Fn(A, A) -> A + Sync + Send,
    {
        let zip = Zip::from(self.local());
        match self.par {
            Par::Rayon => zip.par_fold(identity, fold, combine),
            Par::Seq => zip.fold(identity(), fold),
        }
    }

    /// Why `self` and `other` cannot be combined element by element, if they cannot.
    pub(crate) fn pairing_error<U: Element>(
        &self,
        op: &str,
        other: &DistArray<U, D>,
    ) -> Option<Error> {
        if let Some(e) = self.same_comm_error(op, other) {
            return Some(e);
        }
        if self.shape == other.shape && self.layout == other.layout {
            return None;
        }
        Some(Error::new(
            ErrorKind::Shape,
            format!(
                "{op}: the arrays differ: shape {:?} split {} against shape {:?} split {}",
                self.shape.slice(),
                self.layout.split(),
                other.shape.slice(),
                other.layout.split()
            ),
        ))
    }
}

impl<T: Element + Number, D: Dimension + RemoveAxis> DistArray<T, D> {
    /// The sum of this rank's elements only. No communication (so it may run inside a rayon
    /// pool of your choosing).
    pub fn local_sum(&self) -> T {
        local_sum(&self.local(), self.par)
    }

    /// `Σ self·other` over this rank's elements only. No communication.
    ///
    /// # Errors
    /// `Shape` if the arrays' shapes or splits differ; `InvalidPartition` if they were made
    /// on different communicators.
    pub fn local_dot(&self, other: &DistArray<T, D>) -> Result<T> {
        match self.pairing_error("DistArray::local_dot", other) {
            Some(e) => Err(e.on_rank(self.comm.rank())),
            None => Ok(local_dot(&self.local(), &other.local(), self.par)),
        }
    }

    /// The sum of all elements over all ranks. Collective.
    ///
    /// Communication: agreement check + one `all_reduce` of one value; the local sum runs on
    /// the rayon pool first. Float sums depend on how the data is split (ranks, threads): they
    /// agree to rounding, not bit for bit (see [`sum_exact`](Self::sum_exact)).
    ///
    /// # Errors
    /// `Disagreement` if ranks hold differently shaped arrays.
    pub fn sum(&self) -> Result<T> {
        const OP: &str = "DistArray::sum";
        let local = local_sum(&self.local(), self.par);
        let _timer = self.comm.timed(OP, 2 * size_of::<T>());
        self.layout_preflight(OP, None, &[])?;
        Ok(self.comm.all_reduce(local, Op::Sum))
    }

    /// The dot product `Σ self·other` over all ranks. Collective.
    ///
    /// Communication: as [`sum`](Self::sum).
    ///
    /// # Errors
    /// As [`sum`](Self::sum), plus `Shape` if the arrays' shapes or splits differ and
    /// `InvalidPartition` if they were made on different communicators.
    pub fn dot(&self, other: &DistArray<T, D>) -> Result<T> {
        const OP: &str = "DistArray::dot";
        let pairing = self.pairing_error(OP, other);
        let local = match pairing {
            None => local_dot(&self.local(), &other.local(), self.par),
            Some(_) => T::zero(),
        };
        let _timer = self.comm.timed(OP, 2 * size_of::<T>());
        self.layout_preflight(OP, pairing, &[])?;
        Ok(self.comm.all_reduce(local, Op::Sum))
    }

    /// The smallest element over all ranks. Collective.
    ///
    /// Communication: agreement check + one `all_gather` of two values per rank (the rank's
    /// minimum and whether it has one: ranks with empty pieces have no value to offer).
    ///
    /// NaN: if any element is NaN the result is NaN, whichever rank and position holds it
    /// (unlike `f64::min`, which ignores NaN). So are [`sum`](Self::sum) and
    /// [`sum_exact`](Self::sum_exact), by IEEE arithmetic.
    ///
    /// # Errors
    /// As [`sum`](Self::sum), plus `Shape` if the global array is empty.
    pub fn min(&self) -> Result<T> {
        self.extreme("DistArray::min", |a, b| {
            nan_first(a, b).unwrap_or(if b < a { b } else { a })
        })
    }

    /// The largest element over all ranks. Collective; as [`min`](Self::min).
    ///
    /// # Errors
    /// As [`min`](Self::min).
    pub fn max(&self) -> Result<T> {
        self.extreme("DistArray::max", |a, b| {
            nan_first(a, b).unwrap_or(if b > a { b } else { a })
        })
    }

    fn extreme(&self, op: &'static str, pick: fn(T, T) -> T) -> Result<T> {
        let empty = self.is_empty().then(|| {
            Error::new(
                ErrorKind::Shape,
                format!("{op}: the array {:?} has no elements", self.shape.slice()),
            )
        });
        let local = self.local();
        let mine = match self.par {
            Par::Rayon => match local.as_slice_memory_order() {
                Some(s) => s.par_iter().copied().reduce_with(pick),
                None => Zip::from(&local).par_fold(
                    || None,
                    |acc: Option<T>, &x| Some(acc.map_or(x, |a| pick(a, x))),
                    |a, b| match (a, b) {
                        (Some(a), Some(b)) => Some(pick(a, b)),
                        (a, b) => a.or(b),
                    },
                ),
            },
            Par::Seq => local.iter().copied().reduce(pick),
        };
        let _timer = self
            .comm
            .timed(op, 2 * size_of::<T>() * (1 + self.comm.size()));
        self.layout_preflight(op, empty, &[])?;
        // [value, 1 if this rank has one]; the check has been done, so the raw call.
        let offer = [
            mine.unwrap_or_else(T::zero),
            T::from(u8::from(mine.is_some())).unwrap_or_else(T::zero),
        ];
        let mut all = vec![T::zero(); 2 * self.comm.size()];
        self.comm.raw().all_gather_into(&offer[..], &mut all[..]);
        Ok(all
            .chunks(2)
            .filter(|pair| pair[1] == T::one())
            .map(|pair| pair[0])
            .reduce(pick)
            .expect("a non-empty array has an element on some rank"))
    }
}

impl<T: Element + Number + Float, D: Dimension + RemoveAxis> DistArray<T, D> {
    /// The Euclidean norm `sqrt(Σ x²)` over all ranks. Collective; as [`sum`](Self::sum).
    ///
    /// # Errors
    /// As [`sum`](Self::sum).
    pub fn norm2(&self) -> Result<T> {
        const OP: &str = "DistArray::norm2";
        let local = self.local();
        let squares = local_dot(&local, &local, self.par);
        let _timer = self.comm.timed(OP, 2 * size_of::<T>());
        self.layout_preflight(OP, None, &[])?;
        Ok(self.comm.all_reduce(squares, Op::Sum).sqrt())
    }
}

impl<T: Element + ExactFloat, D: Dimension + RemoveAxis> DistArray<T, D> {
    /// The correctly rounded sum of all elements over all ranks: **bit-identical for any
    /// number of ranks, threads and any split** (see [`crate::exact`]). Collective.
    ///
    /// Communication: agreement check + one `all_reduce` of 70 `i64`s. The local part is
    /// compute-bound, 5–8× the time of [`sum`](Self::sum) (see the performance docs).
    ///
    /// # Errors
    /// As [`sum`](Self::sum).
    pub fn sum_exact(&self) -> Result<T> {
        const OP: &str = "DistArray::sum_exact";
        let mine = exact_sum_of(&self.local(), self.par);
        let _timer = self.comm.timed(OP, 0);
        self.layout_preflight(OP, None, &[])?;
        Ok(T::from_exact(&self.comm.all_reduce_exact(&mine)))
    }

    /// The correctly rounded dot product `Σ self·other` over all ranks, bit-identical for any
    /// number of ranks and threads (exact products; see [`crate::exact`] on underflow).
    /// Collective.
    ///
    /// # Errors
    /// As [`dot`](Self::dot).
    pub fn dot_exact(&self, other: &DistArray<T, D>) -> Result<T> {
        const OP: &str = "DistArray::dot_exact";
        let pairing = self.pairing_error(OP, other);
        let mine = match pairing {
            None => exact_dot_of(&self.local(), &other.local(), self.par),
            Some(_) => ExactSum::new(),
        };
        let _timer = self.comm.timed(OP, 0);
        self.layout_preflight(OP, pairing, &[])?;
        Ok(T::from_exact(&self.comm.all_reduce_exact(&mine)))
    }
}

/// The exact sum of a view: over contiguous memory in rayon tasks, else lane by lane.
fn exact_sum_of<T: ExactFloat, D: Dimension>(view: &ArrayView<'_, T, D>, par: Par) -> ExactSum {
    match (view.as_slice_memory_order(), par) {
        (Some(s), Par::Rayon) => local_sum_exact(s),
        (Some(s), Par::Seq) => {
            let mut sum = ExactSum::new();
            T::add_slice_to(s, &mut sum);
            sum
        }
        (None, _) => {
            let mut sum = ExactSum::new();
            view.iter().for_each(|&x| x.add_to(&mut sum));
            sum
        }
    }
}

/// The exact dot product of two views of the same shape.
fn exact_dot_of<T: ExactFloat, D: Dimension>(
    a: &ArrayView<'_, T, D>,
    b: &ArrayView<'_, T, D>,
    par: Par,
) -> ExactSum {
    let same_order = a.strides() == b.strides();
    match (a.as_slice_memory_order(), b.as_slice_memory_order(), par) {
        (Some(x), Some(y), Par::Rayon) if same_order => local_dot_exact(x, y),
        _ => {
            let mut sum = ExactSum::new();
            Zip::from(a)
                .and(b)
                .for_each(|&x, &y| x.add_product_to(y, &mut sum));
            sum
        }
    }
}

/// The NaN among `a` and `b`, if any (`x != x` only for NaN), so that min and max propagate
/// NaN whatever the order of comparison.
#[inline]
fn nan_first<T: PartialEq + Copy>(a: T, b: T) -> Option<T> {
    #[allow(clippy::eq_op)]
    if a != a {
        Some(a)
    } else if b != b {
        Some(b)
    } else {
        None
    }
}

/// `Σ x` of a view: lane-split over contiguous memory (or over each contiguous row of a
/// strided view, e.g. a tile inside its ghosts), in rayon tasks for [`Par::Rayon`].
pub(crate) fn local_sum<T: Number, D: Dimension>(view: &ArrayView<'_, T, D>, par: Par) -> T {
    if let Some(s) = view.as_slice_memory_order() {
        return match par {
            Par::Rayon => s
                .par_chunks(TASK)
                .map(sum_lanes)
                .reduce(T::zero, |a, b| a + b),
            Par::Seq => s.chunks(TASK).map(sum_lanes).fold(T::zero(), |a, b| a + b),
        };
    }
    if view.ndim() < 2 {
        return view.iter().fold(T::zero(), |a, &b| a + b);
    }
    let row_sum = |row: ArrayView1<'_, T>| match row.as_slice() {
        Some(s) => sum_lanes(s),
        None => row.iter().fold(T::zero(), |a, &b| a + b),
    };
    let rows = view.lanes(Axis(view.ndim() - 1));
    match par {
        Par::Rayon => {
            Zip::from(rows).par_fold(T::zero, |acc, row| acc + row_sum(row), |a, b| a + b)
        }
        Par::Seq => Zip::from(rows).fold(T::zero(), |acc, row| acc + row_sum(row)),
    }
}

/// `Σ a·b` of two views of the same shape.
pub(crate) fn local_dot<T: Number, D: Dimension>(
    a: &ArrayView<'_, T, D>,
    b: &ArrayView<'_, T, D>,
    par: Par,
) -> T {
    let same_order = a.strides() == b.strides();
    if let (Some(x), Some(y), true) = (
        a.as_slice_memory_order(),
        b.as_slice_memory_order(),
        same_order,
    ) {
        return match par {
            Par::Rayon => x
                .par_chunks(TASK)
                .zip(y.par_chunks(TASK))
                .map(|(x, y)| dot_lanes(x, y))
                .reduce(T::zero, |p, q| p + q),
            Par::Seq => x
                .chunks(TASK)
                .zip(y.chunks(TASK))
                .map(|(x, y)| dot_lanes(x, y))
                .fold(T::zero(), |p, q| p + q),
        };
    }
    if a.ndim() < 2 {
        return Zip::from(a)
            .and(b)
            .fold(T::zero(), |acc, &x, &y| acc + x * y);
    }
    let row_dot = |x: ArrayView1<'_, T>, y: ArrayView1<'_, T>| match (x.as_slice(), y.as_slice()) {
        (Some(x), Some(y)) => dot_lanes(x, y),
        _ => Zip::from(&x)
            .and(&y)
            .fold(T::zero(), |acc, &p, &q| acc + p * q),
    };
    let last = Axis(a.ndim() - 1);
    let rows = Zip::from(a.lanes(last)).and(b.lanes(last));
    match par {
        Par::Rayon => rows.par_fold(T::zero, |acc, x, y| acc + row_dot(x, y), |p, q| p + q),
        Par::Seq => rows.fold(T::zero(), |acc, x, y| acc + row_dot(x, y)),
    }
}

fn sum_lanes<T: Number>(s: &[T]) -> T {
    let mut lanes = [T::zero(); LANES];
    let mut chunks = s.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane = *lane + x;
        }
    }
    let tail = chunks.remainder().iter().fold(T::zero(), |a, &b| a + b);
    lanes.iter().fold(tail, |a, &b| a + b)
}

fn dot_lanes<T: Number>(x: &[T], y: &[T]) -> T {
    let mut lanes = [T::zero(); LANES];
    let mut xs = x.chunks_exact(LANES);
    let mut ys = y.chunks_exact(LANES);
    for (cx, cy) in (&mut xs).zip(&mut ys) {
        for ((lane, &a), &b) in lanes.iter_mut().zip(cx).zip(cy) {
            *lane = *lane + a * b;
        }
    }
    let tail = xs
        .remainder()
        .iter()
        .zip(ys.remainder())
        .fold(T::zero(), |acc, (&a, &b)| acc + a * b);
    lanes.iter().fold(tail, |a, &b| a + b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{s, Array1, Array2};

    #[test]
    fn lane_sums_equal_plain_sums_on_integers() {
        for n in [0, 1, 7, 8, 9, 100, TASK + 3] {
            let v: Vec<i64> = (0..n as i64).map(|i| i * 3 - 7).collect();
            let a = Array1::from(v.clone());
            let expected: i64 = v.iter().sum();
            assert_eq!(local_sum(&a.view(), Par::Rayon), expected);
            assert_eq!(local_sum(&a.view(), Par::Seq), expected);
            let dot: i64 = v.iter().map(|x| x * x).sum();
            assert_eq!(local_dot(&a.view(), &a.view(), Par::Rayon), dot);
        }
    }

    #[test]
    fn strided_views_take_the_general_path() {
        let a = Array2::from_shape_fn((5, 4), |(i, j)| (i * 4 + j) as i32);
        let t = a.t();
        assert_eq!(local_sum(&t, Par::Rayon), (0..20).sum::<i32>());
        let col = a.column(1);
        assert_eq!(
            local_dot(&col, &col, Par::Seq),
            [1, 5, 9, 13, 17].iter().map(|x| x * x).sum::<i32>()
        );
        // Same data in different memory orders: elementwise pairing must follow logical order.
        let f = a.t().as_standard_layout().into_owned();
        assert_eq!(
            local_dot(&a.t(), &f.view(), Par::Rayon),
            (0..20).map(|x| x * x).sum::<i32>()
        );
    }

    #[test]
    fn tiles_inside_ghosts_sum_row_by_row() {
        let padded = Array2::from_shape_fn((7, 9), |(i, j)| (i * 9 + j) as i64);
        let tile = padded.slice(s![1..6, 1..8]);
        let expected: i64 = tile.iter().sum();
        let dot: i64 = tile.iter().map(|x| x * x).sum();
        for par in [Par::Rayon, Par::Seq] {
            assert_eq!(local_sum(&tile, par), expected);
            assert_eq!(local_dot(&tile, &tile, par), dot);
        }
    }
}
