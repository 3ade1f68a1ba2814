//! Local rayon kernels (`map`, `map_inplace`, `zip_with`, `fold`) and global reductions
//! (`sum`, `dot`, `norm2`, `min`, `max`, and the reproducible `sum_exact`, `dot_exact`).

use std::mem::size_of;

use ndarray::{ArrayView, Dimension, RemoveAxis, Zip};
use num_traits::Float;
use rayon::prelude::*;

use super::{DistArray, Element, Par};
use crate::collective::{Number, Op};
use crate::comm::Comm;
use crate::error::{Error, ErrorKind, Result};
use crate::exact::{local_dot_exact, local_sum_exact, ExactFloat, ExactSum};

/// Elements per rayon task in reductions: large enough to amortise scheduling, small enough
/// to balance.
const TASK: usize = 1 << 15;
/// Independent accumulators in the local sums: breaks the add-latency chain, lets the
/// compiler vectorise.
const LANES: usize = 8;

impl<T: Element, D: Dimension + RemoveAxis> DistArray<T, D> {
    /// A new array of `f` applied to every element (ghosts included), with the same split.
    /// No communication.
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
            split: self.split,
            partition: self.partition,
            rank: self.rank,
            ghosts: self.ghosts,
            boundary: self.boundary,
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
    /// must have the same shape and split. No communication.
    ///
    /// # Errors
    /// `Shape` if the arrays' shapes or splits differ.
    pub fn zip_with<U, V, F>(&self, other: &DistArray<U, D>, f: F) -> Result<DistArray<V, D>>
    where
        U: Element,
        V: Element,
        F: Fn(T, U) -> V + Sync + Send,
    {
        self.check_same_layout("zip_with", other)?;
        let zip = Zip::from(self.local()).and(other.local());
        let data = match self.par {
            Par::Rayon => zip.par_map_collect(|&a, &b| f(a, b)),
            Par::Seq => zip.map_collect(|&a, &b| f(a, b)),
        };
        Ok(DistArray {
            data,
            shape: self.shape.clone(),
            split: self.split,
            partition: self.partition,
            rank: self.rank,
            ghosts: 0,
            boundary: self.boundary,
            halo_agreed: false,
            par: self.par,
        })
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

    fn check_same_layout<U: Element>(&self, op: &str, other: &DistArray<U, D>) -> Result<()> {
        if self.shape == other.shape
            && self.split == other.split
            && self.partition == other.partition
        {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::Shape,
            format!(
                "{op}: the arrays differ: shape {:?} split {:?} against shape {:?} split {:?}",
                self.shape.slice(),
                self.split,
                other.shape.slice(),
                other.split
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
    /// `Shape` if the arrays' shapes or splits differ.
    pub fn local_dot(&self, other: &DistArray<T, D>) -> Result<T> {
        self.check_same_layout("local_dot", other)?;
        Ok(local_dot(&self.local(), &other.local(), self.par))
    }

    /// The sum of all elements over all ranks. Collective.
    ///
    /// Communication: agreement check + one `all_reduce` of one value; the local sum runs on
    /// the rayon pool. Float sums depend on how the data is split (ranks, threads): they agree
    /// to rounding, not bit for bit.
    ///
    /// # Errors
    /// `InvalidPartition` if `comm` is not the array's communicator; `Disagreement` if ranks
    /// hold differently shaped arrays.
    pub fn sum(&self, comm: &Comm) -> Result<T> {
        let _timer = comm.timed("DistArray::sum", 2 * size_of::<T>());
        self.layout_preflight(comm, "sum", None)?;
        let local = local_sum(&self.local(), self.par);
        Ok(comm.all_reduce(local, Op::Sum))
    }

    /// The dot product `Σ self·other` over all ranks. Collective.
    ///
    /// Communication: as [`sum`](Self::sum).
    ///
    /// # Errors
    /// As [`sum`](Self::sum), plus `Shape` if the arrays' shapes or splits differ.
    pub fn dot(&self, other: &DistArray<T, D>, comm: &Comm) -> Result<T> {
        let _timer = comm.timed("DistArray::dot", 2 * size_of::<T>());
        let layout = self.check_same_layout("dot", other).err();
        self.layout_preflight(comm, "dot", layout)?;
        let local = local_dot(&self.local(), &other.local(), self.par);
        Ok(comm.all_reduce(local, Op::Sum))
    }

    /// The smallest element over all ranks. Collective.
    ///
    /// Communication: agreement check + one `all_gather` of one value and one flag per rank
    /// (ranks with empty pieces have no value to offer).
    ///
    /// NaN: if any element is NaN the result is NaN, whichever rank and position holds it
    /// (unlike `f64::min`, which ignores NaN). So are [`sum`](Self::sum) and
    /// [`sum_exact`](Self::sum_exact), by IEEE arithmetic.
    ///
    /// # Errors
    /// As [`sum`](Self::sum), plus `Shape` if the global array is empty.
    pub fn min(&self, comm: &Comm) -> Result<T> {
        self.extreme(comm, "min", |a, b| {
            nan_first(a, b).unwrap_or(if b < a { b } else { a })
        })
    }

    /// The largest element over all ranks. Collective; as [`min`](Self::min).
    ///
    /// # Errors
    /// As [`min`](Self::min).
    pub fn max(&self, comm: &Comm) -> Result<T> {
        self.extreme(comm, "max", |a, b| {
            nan_first(a, b).unwrap_or(if b > a { b } else { a })
        })
    }

    fn extreme(&self, comm: &Comm, op: &'static str, pick: fn(T, T) -> T) -> Result<T> {
        let _timer = comm.timed(
            if op == "min" {
                "DistArray::min"
            } else {
                "DistArray::max"
            },
            0,
        );
        let empty = self.is_empty().then(|| {
            Error::new(
                ErrorKind::Shape,
                format!("{op}: the array {:?} has no elements", self.shape.slice()),
            )
        });
        self.layout_preflight(comm, op, empty)?;
        let local = self.local();
        let mine = match self.par {
            Par::Rayon => local.as_slice_memory_order().map_or_else(
                || local.iter().copied().reduce(pick),
                |s| s.par_iter().copied().reduce_with(pick),
            ),
            Par::Seq => local.iter().copied().reduce(pick),
        };
        let values = comm.all_gather(&[mine.unwrap_or_else(T::zero)])?;
        let present = comm.all_gather(&[u8::from(mine.is_some())])?;
        Ok(values
            .into_iter()
            .zip(present)
            .filter(|&(_, p)| p == 1)
            .map(|(v, _)| v)
            .reduce(pick)
            .expect("a non-empty array has an element on some rank"))
    }
}

impl<T: Element + Number + Float, D: Dimension + RemoveAxis> DistArray<T, D> {
    /// The Euclidean norm `sqrt(Σ x²)` over all ranks. Collective; as [`sum`](Self::sum).
    ///
    /// # Errors
    /// As [`sum`](Self::sum).
    pub fn norm2(&self, comm: &Comm) -> Result<T> {
        let _timer = comm.timed("DistArray::norm2", 2 * size_of::<T>());
        self.layout_preflight(comm, "norm2", None)?;
        let local = self.local();
        let squares = local_dot(&local, &local, self.par);
        Ok(comm.all_reduce(squares, Op::Sum).sqrt())
    }
}

impl<T: Element + ExactFloat, D: Dimension + RemoveAxis> DistArray<T, D> {
    /// The correctly rounded sum of all elements over all ranks: **bit-identical for any
    /// number of ranks, threads and any distribution** (see [`crate::exact`]). Collective.
    ///
    /// Communication: agreement check + one `all_reduce` of 70 `i64`s. The local part is
    /// compute-bound, 5–8× the time of [`sum`](Self::sum) here (README, performance section).
    ///
    /// # Errors
    /// As [`sum`](Self::sum).
    pub fn sum_exact(&self, comm: &Comm) -> Result<T> {
        let _timer = comm.timed("DistArray::sum_exact", 0);
        self.layout_preflight(comm, "sum_exact", None)?;
        let local = self.local();
        let mut mine = ExactSum::new();
        match (local.as_slice_memory_order(), self.par) {
            (Some(s), Par::Rayon) => mine = local_sum_exact(s),
            (Some(s), Par::Seq) => T::add_slice_to(s, &mut mine),
            (None, _) => local.iter().for_each(|&x| x.add_to(&mut mine)),
        }
        Ok(T::from_exact(&comm.all_reduce_exact(&mine)))
    }

    /// The correctly rounded dot product `Σ self·other` over all ranks, bit-identical for any
    /// number of ranks and threads (exact products; see [`crate::exact`] on underflow).
    /// Collective.
    ///
    /// # Errors
    /// As [`dot`](Self::dot).
    pub fn dot_exact(&self, other: &DistArray<T, D>, comm: &Comm) -> Result<T> {
        let _timer = comm.timed("DistArray::dot_exact", 0);
        let layout = self.check_same_layout("dot_exact", other).err();
        self.layout_preflight(comm, "dot_exact", layout)?;
        let (a, b) = (self.local(), other.local());
        let contiguous = a.strides() == b.strides();
        let mine = match (
            a.as_slice_memory_order(),
            b.as_slice_memory_order(),
            self.par,
        ) {
            (Some(x), Some(y), Par::Rayon) if contiguous => local_dot_exact(x, y),
            _ => {
                let mut sum = ExactSum::new();
                Zip::from(&a)
                    .and(&b)
                    .for_each(|&x, &y| x.add_product_to(y, &mut sum));
                sum
            }
        };
        Ok(T::from_exact(&comm.all_reduce_exact(&mine)))
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

/// `Σ x` of a view: lane-split over contiguous memory, in rayon tasks for [`Par::Rayon`].
pub(crate) fn local_sum<T: Number, D: Dimension>(view: &ArrayView<'_, T, D>, par: Par) -> T {
    match view.as_slice_memory_order() {
        Some(s) => match par {
            Par::Rayon => s
                .par_chunks(TASK)
                .map(sum_lanes)
                .reduce(T::zero, |a, b| a + b),
            Par::Seq => s.chunks(TASK).map(sum_lanes).fold(T::zero(), |a, b| a + b),
        },
        None => view.iter().fold(T::zero(), |a, &b| a + b),
    }
}

/// `Σ a·b` of two views of the same shape.
pub(crate) fn local_dot<T: Number, D: Dimension>(
    a: &ArrayView<'_, T, D>,
    b: &ArrayView<'_, T, D>,
    par: Par,
) -> T {
    let same_order = a.strides() == b.strides();
    match (
        a.as_slice_memory_order(),
        b.as_slice_memory_order(),
        same_order,
    ) {
        (Some(x), Some(y), true) => match par {
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
        },
        _ => Zip::from(a)
            .and(b)
            .fold(T::zero(), |acc, &x, &y| acc + x * y),
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
    use ndarray::{Array1, Array2};

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
}
