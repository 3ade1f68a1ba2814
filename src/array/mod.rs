//! Partitioned arrays: [`DistArray`], an N-dimensional ndarray whose pieces live on the ranks.
//!
//! A `DistArray<T, D>` has a *global* shape and is split along one axis by a [`Split`]
//! (`Block`, `Cyclic` or `BlockCyclic` along that axis, see [`crate::partition`]); every rank
//! owns the slab of the global array whose indices along the split axis the partition gives
//! it, stored as an ordinary `ndarray::Array<T, D>` (standard layout). [`local`](DistArray::local)
//! and [`local_mut`](DistArray::local_mut) are plain ndarray views of that piece, so any
//! ndarray code works on it.
//!
//! # 1-D: a global sum and a dot product
//! ```no_run
//! use spmd::array::{DistArray, Split};
//!
//! fn main() -> spmd::Result<()> {
//!     let spmd = spmd::Spmd::init()?;
//!     let world = spmd.world();
//!     // x[i] = i and y[i] = 2 for i in 0..1_000_000, split in blocks over the ranks.
//!     let x = DistArray::from_fn(world, 1_000_000, Split::block(0), |i| i as f64)?;
//!     let y = DistArray::from_elem(world, 1_000_000, Split::block(0), 2.0)?;
//!     let sum = x.sum(world)?;      // local rayon sum, then one all_reduce
//!     let dot = x.dot(&y, world)?;  // the same for x·y
//!     assert_eq!(dot, 2.0 * sum);
//!     Ok(())
//! }
//! ```
//!
//! # 2-D: scatter, a stencil step with halos, gather
//! ```no_run
//! use ndarray::{s, Array2};
//! use spmd::array::{Boundary, DistArray, Split};
//!
//! fn main() -> spmd::Result<()> {
//!     let spmd = spmd::Spmd::init()?;
//!     let world = spmd.world();
//!     let (n, m) = (512, 256);
//!     // Only the root needs the global array; the others pass None.
//!     let global = spmd.is_root().then(|| Array2::from_shape_fn((n, m), |(i, j)| (i * j) as f64));
//!     let mut u = DistArray::scatter(world, 0, global.as_ref().map(|a| a.view()), Split::block(0))?
//!         .with_ghosts(1, Boundary::Fixed)?;      // one ghost row above and below each piece
//!     u.exchange_halos(world)?;                   // neighbours' edge rows into the ghosts
//!     let padded = u.local_with_ghosts();
//!     let rows = u.local().nrows();
//!     // Average of the four neighbours for interior columns; rows come from the ghosts at
//!     // the piece's edges.
//!     let next = (&padded.slice(s![0..rows, 1..m - 1]) + &padded.slice(s![2..rows + 2, 1..m - 1])
//!         + &padded.slice(s![1..rows + 1, 0..m - 2]) + &padded.slice(s![1..rows + 1, 2..m]))
//!         / 4.0;
//!     u.local_mut().slice_mut(s![.., 1..m - 1]).assign(&next);
//!     if let Some(result) = u.gather(world, 0)? {
//!         println!("{:?}", result.shape());
//!     }
//!     Ok(())
//! }
//! ```
//!
//! # What communicates
//! | method | communication | cost |
//! |---|---|---|
//! | [`zeros`](DistArray::zeros), [`from_elem`](DistArray::from_elem), [`from_fn`](DistArray::from_fn), [`from_local`](DistArray::from_local), [`local`](DistArray::local), index maps | none | local, `from_fn` in parallel |
//! | [`map`](DistArray::map), [`map_inplace`](DistArray::map_inplace), [`zip_with`](DistArray::zip_with), [`fold`](DistArray::fold) | none | local, rayon-parallel |
//! | [`sum`](DistArray::sum), [`dot`](DistArray::dot), [`norm2`](DistArray::norm2) | collective: one `all_reduce` of one value | local rayon reduction first |
//! | [`min`](DistArray::min), [`max`](DistArray::max) | collective: one `all_gather` of one value per rank | local rayon reduction first |
//! | [`scatter`](DistArray::scatter) | collective: root announces the shape, then point-to-point, one piece at a time | the root holds its array plus one packed piece |
//! | [`gather`](DistArray::gather) | collective: point-to-point to the root | the root holds the result plus one piece |
//! | [`all_gather`](DistArray::all_gather) | collective: one broadcast per rank's piece | every rank holds the result plus one piece |
//! | [`exchange_halos`](DistArray::exchange_halos) | point-to-point with the two neighbours (two `MPI_Sendrecv`); agreement check on the first call only | `ghosts` layers each way |
//! | [`save`](DistArray::save), [`load`](DistArray::load) | collective: each rank writes its piece, reads the saved pieces it needs; agreement checks | files, not messages |
//! | [`redistribute`](DistArray::redistribute) | collective: one `MPI_Alltoallv` + agreement check | the piece twice (send and receive buffers) |
//!
//! Every communicating method is a collective over the communicator the array was made for:
//! all ranks call it, and bad input (shapes, roots, ghost widths, another communicator) gives
//! the same [`Error`] on every rank. Each records itself in the
//! [profiler](crate::timing) as a comm region. Messages larger than `2^30` elements are sent in
//! chunks, so pieces above MPI's `i32` counts work.
//!
//! # Both axes split: the 2-D process grid
//! For 2-D stencils at many ranks, [`ProcessGrid`] (an MPI Cartesian topology) and
//! [`GridArray`] split both axes, so each rank's halo shrinks as ranks are added; see
//! [`ProcessGrid::for_shape`].
//!
//! # Checkpoints
//! [`DistArray::save`] writes the array from its P ranks; [`DistArray::load`] reads it back
//! with any Q ranks and any split, bit for bit.
//!
//! Format (readable by other tools):
//! ```text
//! DIR/CURRENT                 the name of the complete checkpoint, e.g. "v-000002"
//! DIR/v-000002/manifest.json  {"format": "spmd-distarray", "version": 1, "dtype": "<f8",
//!                              "shape": [...], "split_axis": 0, "distribution": "block",
//!                              "block_size": null, "ranks": 4, "pieces": ["piece-00000.npy", …]}
//! DIR/v-000002/piece-RRRRR.npy  rank R's piece (NumPy .npy, C order)
//! ```
//! Piece `R` holds the global indices along `split_axis` that the manifest's distribution gives
//! rank `R` of `ranks` (see [`crate::partition`]), all of every other axis. In NumPy:
//! `np.concatenate([np.load(p) for p in pieces], axis=split_axis)` rebuilds a block-split array.
//!
//! Crash safety: a save writes a new version directory, then replaces `CURRENT` by writing a
//! temporary file and renaming it over the old one (atomic on POSIX file systems), and only then removes the
//! previous version. A job killed at any point leaves `CURRENT` naming a complete checkpoint.
//!
//! # Serial or parallel
//! Each array carries a [`Par`] switch (default [`Par::Rayon`]); [`with_par(Par::Seq)`](DistArray::with_par)
//! makes its local kernels run on the calling thread only, e.g. to measure a sequential baseline.

mod checkpoint;
mod grid;
mod halo;
mod ops;
mod redistribute;
mod transfer;

use mpi::datatype::Equivalence;
use ndarray::{Array, ArrayView, ArrayViewMut, Axis, Dimension, IntoDimension, RemoveAxis, Slice};
use rayon::prelude::*;

use crate::collective::Preflight;
use crate::comm::Comm;
use crate::error::{Error, ErrorKind, Result};
use crate::partition::{Distribution, Partition};

pub use checkpoint::FAULT_BEFORE_COMMIT_ENV;
pub use grid::{GridArray, ProcessGrid};
pub use halo::Boundary;

/// What a [`DistArray`] can hold: plain data that MPI can send and rayon can share.
pub trait Element: Equivalence + Copy + Default + Send + Sync + 'static {}

impl<T: Equivalence + Copy + Default + Send + Sync + 'static> Element for T {}

/// Whether local kernels use the rank's rayon pool or run serially.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Par {
    /// On the calling thread only.
    Seq,
    /// Split over the rank's rayon threads.
    #[default]
    Rayon,
}

/// Which axis a [`DistArray`] is split along, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Split {
    /// The axis whose indices are distributed over the ranks.
    pub axis: usize,
    /// How they are distributed.
    pub distribution: Distribution,
}

impl Split {
    /// Contiguous balanced blocks along `axis`.
    pub fn block(axis: usize) -> Split {
        Split {
            axis,
            distribution: Distribution::Block,
        }
    }

    /// Round robin along `axis`.
    pub fn cyclic(axis: usize) -> Split {
        Split {
            axis,
            distribution: Distribution::Cyclic,
        }
    }

    /// Round robin of blocks of `block_size` along `axis`.
    pub fn block_cyclic(axis: usize, block_size: usize) -> Split {
        Split {
            axis,
            distribution: Distribution::BlockCyclic(block_size),
        }
    }

    /// A number every rank must agree on, for agreement checks.
    pub(crate) fn code(self) -> i64 {
        let distribution = match self.distribution {
            Distribution::Block => 0,
            Distribution::Cyclic => 1,
            Distribution::BlockCyclic(b) => 2 + (b as i64).min(i64::MAX / 256),
        };
        distribution * 64 + self.axis.min(63) as i64
    }
}

/// An N-dimensional array split over the ranks along one axis; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct DistArray<T, D: Dimension> {
    /// This rank's piece, with `ghosts` extra layers on each side of the split axis.
    data: Array<T, D>,
    shape: D,
    split: Split,
    partition: Partition,
    rank: usize,
    ghosts: usize,
    /// What lies beyond the global edges, for halo exchanges.
    boundary: Boundary,
    /// Whether a halo exchange has verified that all ranks agree on the layout (which cannot
    /// change afterwards), so later exchanges skip the check.
    halo_agreed: bool,
    par: Par,
}

impl<T: Element, D: Dimension + RemoveAxis> DistArray<T, D> {
    /// Every element `elem`. No communication.
    ///
    /// # Errors
    /// `Shape` if `split.axis` is not an axis of `shape`; `InvalidPartition` for a block-cyclic
    /// block size of 0.
    pub fn from_elem<Sh: IntoDimension<Dim = D>>(
        comm: &Comm,
        shape: Sh,
        split: Split,
        elem: T,
    ) -> Result<DistArray<T, D>> {
        let shape = shape.into_dimension();
        let partition = partition_for(comm, &shape, split)?;
        let piece = piece_shape(&shape, split.axis, partition.count(comm.rank()));
        Ok(DistArray::assemble(
            comm,
            shape,
            split,
            partition,
            Array::from_elem(piece, elem),
        ))
    }

    /// An array without ghosts from its parts (`data` must be this rank's piece).
    fn assemble(
        comm: &Comm,
        shape: D,
        split: Split,
        partition: Partition,
        data: Array<T, D>,
    ) -> DistArray<T, D> {
        DistArray {
            data,
            shape,
            split,
            partition,
            rank: comm.rank(),
            ghosts: 0,
            boundary: Boundary::Fixed,
            halo_agreed: false,
            par: Par::default(),
        }
    }

    /// Every element zero. No communication.
    ///
    /// # Errors
    /// As [`from_elem`](Self::from_elem).
    pub fn zeros<Sh: IntoDimension<Dim = D>>(
        comm: &Comm,
        shape: Sh,
        split: Split,
    ) -> Result<DistArray<T, D>>
    where
        T: num_traits::Zero,
    {
        DistArray::from_elem(comm, shape, split, T::zero())
    }

    /// Element at global index `i` is `f(i)`; each rank computes only its own piece, in
    /// parallel with rayon. No communication.
    ///
    /// # Errors
    /// As [`from_elem`](Self::from_elem).
    pub fn from_fn<Sh, F>(comm: &Comm, shape: Sh, split: Split, f: F) -> Result<DistArray<T, D>>
    where
        Sh: IntoDimension<Dim = D>,
        F: Fn(D::Pattern) -> T + Sync + Send,
    {
        let mut array = DistArray::from_elem(comm, shape, split, T::default())?;
        let (axis, rank, partition) = (split.axis, array.rank, array.partition);
        let piece = array.data.raw_dim();
        // Element `k` of the (contiguous, standard-layout) piece: unravel `k` into the local
        // index, map the split axis to global.
        let fill = |(k, x): (usize, &mut T)| {
            let mut index = piece.clone();
            let mut rest = k;
            for a in (0..index.ndim()).rev() {
                let extent = piece[a];
                index[a] = rest % extent;
                rest /= extent;
            }
            index[axis] = partition.to_global(rank, index[axis]);
            *x = f(index.into_pattern());
        };
        let data = array
            .data
            .as_slice_mut()
            .expect("a new array is contiguous");
        match array.par {
            Par::Rayon => data.par_iter_mut().enumerate().for_each(fill),
            Par::Seq => data.iter_mut().enumerate().for_each(fill),
        }
        Ok(array)
    }

    /// Wraps this rank's piece, which must have the piece shape `split` gives this rank of
    /// `shape`. No communication.
    ///
    /// # Errors
    /// As [`from_elem`](Self::from_elem), plus `Shape` if `piece` has another shape.
    pub fn from_local<Sh: IntoDimension<Dim = D>>(
        comm: &Comm,
        shape: Sh,
        split: Split,
        piece: Array<T, D>,
    ) -> Result<DistArray<T, D>> {
        let shape = shape.into_dimension();
        let partition = partition_for(comm, &shape, split)?;
        let expected = piece_shape(&shape, split.axis, partition.count(comm.rank()));
        if piece.raw_dim() != expected {
            return Err(Error::new(
                ErrorKind::Shape,
                format!(
                    "from_local: rank {}'s piece of a {:?} array split along axis {} must have \
                     shape {:?}, found {:?}",
                    comm.rank(),
                    shape.slice(),
                    split.axis,
                    expected.slice(),
                    piece.shape()
                ),
            )
            .on_rank(comm.rank() as i32));
        }
        let data = piece.as_standard_layout().into_owned();
        Ok(DistArray::assemble(comm, shape, split, partition, data))
    }

    /// The global shape.
    pub fn shape(&self) -> &[usize] {
        self.shape.slice()
    }

    /// The global shape as an ndarray dimension.
    pub fn raw_dim(&self) -> D {
        self.shape.clone()
    }

    /// Elements in the global array.
    pub fn len(&self) -> usize {
        self.shape.size()
    }

    /// Whether the global array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The split axis and distribution.
    pub fn split(&self) -> Split {
        self.split
    }

    /// How the split axis is partitioned over the ranks.
    pub fn partition(&self) -> &Partition {
        &self.partition
    }

    /// The serial/parallel switch of local kernels.
    pub fn par(&self) -> Par {
        self.par
    }

    /// The array with local kernels running as `par` says.
    pub fn with_par(mut self, par: Par) -> DistArray<T, D> {
        self.par = par;
        self
    }

    /// Sets the serial/parallel switch of local kernels.
    pub fn set_par(&mut self, par: Par) {
        self.par = par;
    }

    /// This rank's piece (without ghosts), as a view.
    pub fn local(&self) -> ArrayView<'_, T, D> {
        self.data
            .slice_axis(Axis(self.split.axis), self.owned_slice())
    }

    /// This rank's piece (without ghosts), as a mutable view.
    pub fn local_mut(&mut self) -> ArrayViewMut<'_, T, D> {
        let owned = self.owned_slice();
        self.data.slice_axis_mut(Axis(self.split.axis), owned)
    }

    fn owned_slice(&self) -> Slice {
        let count = self.partition.count(self.rank);
        Slice::from(self.ghosts..self.ghosts + count)
    }

    /// The rank owning global index `index`.
    ///
    /// # Errors
    /// `OutOfBounds` if `index` is outside the global shape.
    pub fn owner_of<I: IntoDimension<Dim = D>>(&self, index: I) -> Result<usize> {
        let index = self.check_global(index.into_dimension())?;
        Ok(self.partition.owner(index[self.split.axis]))
    }

    /// The index in [`local`](Self::local) of global index `index`, or `None` if another rank
    /// owns it.
    ///
    /// # Errors
    /// `OutOfBounds` if `index` is outside the global shape.
    pub fn global_to_local<I: IntoDimension<Dim = D>>(&self, index: I) -> Result<Option<D>> {
        let mut index = self.check_global(index.into_dimension())?;
        let axis = self.split.axis;
        let (owner, local) = self.partition.to_local(index[axis]);
        if owner != self.rank {
            return Ok(None);
        }
        index[axis] = local;
        Ok(Some(index))
    }

    /// The global index of index `index` in [`local`](Self::local).
    ///
    /// # Errors
    /// `OutOfBounds` if `index` is outside this rank's piece.
    pub fn local_to_global<I: IntoDimension<Dim = D>>(&self, index: I) -> Result<D> {
        let mut index = index.into_dimension();
        let piece = self.local().raw_dim();
        if index
            .slice()
            .iter()
            .zip(piece.slice())
            .any(|(&i, &n)| i >= n)
        {
            return Err(Error::new(
                ErrorKind::OutOfBounds,
                format!(
                    "local index {:?} is outside rank {}'s piece of shape {:?}",
                    index.slice(),
                    self.rank,
                    piece.slice()
                ),
            ));
        }
        let axis = self.split.axis;
        index[axis] = self.partition.to_global(self.rank, index[axis]);
        Ok(index)
    }

    /// The element at global index `index` if this rank owns it.
    ///
    /// # Errors
    /// `OutOfBounds` if `index` is outside the global shape.
    pub fn get<I: IntoDimension<Dim = D>>(&self, index: I) -> Result<Option<T>> {
        Ok(self
            .global_to_local(index)?
            .map(|local| self.local()[local]))
    }

    fn check_global(&self, index: D) -> Result<D> {
        let inside = index
            .slice()
            .iter()
            .zip(self.shape.slice())
            .all(|(&i, &n)| i < n);
        if inside {
            Ok(index)
        } else {
            Err(Error::new(
                ErrorKind::OutOfBounds,
                format!(
                    "index {:?} is outside the global shape {:?}",
                    index.slice(),
                    self.shape.slice()
                ),
            ))
        }
    }

    /// The agreement check of a collective that needs nothing beyond the array's layout:
    /// `local_error` (this rank's own finding), else a wrong `comm`, else ranks whose shape,
    /// split or ghost width differ — the same `Err` on every rank.
    pub(crate) fn layout_preflight(
        &self,
        comm: &Comm,
        op: &'static str,
        local_error: Option<Error>,
    ) -> Result<()> {
        let [shape, split, ghosts] = self.agreement_fields();
        comm.preflight(Preflight {
            op,
            local_error: local_error.or_else(|| self.comm_error(comm, op)),
            agree: &[shape, split, ghosts],
        })
    }

    /// `None`, or the error of using this array on `comm`: it must be the communicator (or one
    /// of the same size) the array was made for.
    pub(crate) fn comm_error(&self, comm: &Comm, op: &str) -> Option<Error> {
        (comm.size() != self.partition.parts() || comm.rank() != self.rank).then(|| {
            Error::new(
                ErrorKind::InvalidPartition,
                format!(
                    "{op}: the array is split over {} ranks (this is rank {}), but the \
                     communicator has {} ranks (this is rank {})",
                    self.partition.parts(),
                    self.rank,
                    comm.size(),
                    comm.rank()
                ),
            )
        })
    }

    /// The values every rank must agree on for a collective on this array.
    pub(crate) fn agreement_fields(&self) -> [(&'static str, i64); 3] {
        [
            ("the global shape", shape_fingerprint(self.shape.slice())),
            ("the split", self.split.code()),
            ("the ghost width", self.ghosts as i64),
        ]
    }
}

/// The partition of `shape` along `split.axis` over `comm`'s ranks.
fn partition_for<D: Dimension>(comm: &Comm, shape: &D, split: Split) -> Result<Partition> {
    if split.axis >= shape.ndim() {
        return Err(Error::new(
            ErrorKind::Shape,
            format!(
                "split axis {} does not exist in a {}-dimensional array of shape {:?}",
                split.axis,
                shape.ndim(),
                shape.slice()
            ),
        ));
    }
    Partition::new(split.distribution, shape[split.axis], comm.size())
}

/// `shape` with `count` along `axis`.
pub(crate) fn piece_shape<D: Dimension>(shape: &D, axis: usize, count: usize) -> D {
    let mut piece = shape.clone();
    piece[axis] = count;
    piece
}

/// A hash of a shape (including its number of axes), for agreement checks.
pub(crate) fn shape_fingerprint(dims: &[usize]) -> i64 {
    let hash = dims
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64 ^ dims.len() as u64, |h, &d| {
            (h ^ d as u64).wrapping_mul(0x100_0000_01b3)
        });
    (hash >> 1) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_tell_shapes_apart() {
        let shapes: [&[usize]; 5] = [&[4, 6], &[6, 4], &[4, 6, 1], &[24], &[]];
        for (i, a) in shapes.iter().enumerate() {
            assert!(shape_fingerprint(a) >= 0);
            for b in &shapes[i + 1..] {
                assert_ne!(shape_fingerprint(a), shape_fingerprint(b), "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn split_codes_differ() {
        let splits = [
            Split::block(0),
            Split::block(1),
            Split::cyclic(0),
            Split::block_cyclic(0, 1),
            Split::block_cyclic(0, 2),
            Split::block_cyclic(1, 2),
        ];
        for (i, a) in splits.iter().enumerate() {
            for b in &splits[i + 1..] {
                assert_ne!(a.code(), b.code(), "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn piece_shape_replaces_the_split_axis() {
        assert_eq!(
            piece_shape(&ndarray::Ix3(4, 5, 6), 1, 2),
            ndarray::Ix3(4, 2, 6)
        );
    }
}
