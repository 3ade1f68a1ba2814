//! Partitioned arrays: [`DistArray`], an N-dimensional ndarray whose pieces live on the ranks.
//!
//! A `DistArray<T, D>` has a *global* shape, a [`Split`] that says which axes are divided over
//! the ranks and how, and the communicator it was made on, which it keeps: its collective
//! methods take no communicator. Every rank owns the piece of the global array the split gives
//! it, stored as an ordinary `ndarray::Array<T, D>` (standard layout);
//! [`local`](DistArray::local) and [`local_mut`](DistArray::local_mut) are plain ndarray views
//! of that piece, so any ndarray code works on it.
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
//!     let sum = x.sum()?;     // local rayon sum, then one all_reduce
//!     let dot = x.dot(&y)?;   // the same for x·y
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
//!     u.exchange_halos()?;                        // neighbours' edge rows into the ghosts
//!     let padded = u.local_with_ghosts();
//!     let rows = u.local().nrows();
//!     // Average of the four neighbours for interior columns; rows come from the ghosts at
//!     // the piece's edges.
//!     let next = (&padded.slice(s![0..rows, 1..m - 1]) + &padded.slice(s![2..rows + 2, 1..m - 1])
//!         + &padded.slice(s![1..rows + 1, 0..m - 2]) + &padded.slice(s![1..rows + 1, 2..m]))
//!         / 4.0;
//!     u.local_mut().slice_mut(s![.., 1..m - 1]).assign(&next);
//!     if let Some(result) = u.redistribute(Split::cyclic(1))?.gather(0)? {
//!         println!("{:?}", result.shape());
//!     }
//!     Ok(())
//! }
//! ```
//!
//! # Tiles: several axes split over a process grid
//! A row split gives each rank a full-width slab: its halo is two rows of `m` elements
//! whatever the rank count. [`Split::grid`] (or [`Split::grid_auto`], which picks the grid for
//! the shape) splits several axes in blocks, so each rank owns a tile whose halo shrinks as
//! ranks are added. Halos then travel along every split axis, corners included (from the
//! diagonal neighbours, so 9-point stencils work).
//! ```no_run
//! use spmd::array::{Boundary, DistArray, Split};
//!
//! fn main() -> spmd::Result<()> {
//!     let spmd = spmd::Spmd::init()?;
//!     let world = spmd.world();
//!     let mut u = DistArray::from_fn(world, (2048, 2048), Split::grid_auto(2), |(i, j)| (i * j) as f64)?
//!         .with_ghosts_per_axis(1, &[Boundary::Fixed, Boundary::Periodic])?;
//!     u.exchange_halos()?; // four sides and the corners
//!     println!("grid {} tile {:?}", u.split(), u.local_with_ghosts().dim());
//!     Ok(())
//! }
//! ```
//!
//! # What communicates
//! | method | communication | cost |
//! |---|---|---|
//! | [`zeros`](DistArray::zeros), [`from_elem`](DistArray::from_elem), [`from_fn`](DistArray::from_fn), [`from_local`](DistArray::from_local), [`local`](DistArray::local), index maps | none | local, `from_fn` in parallel |
//! | [`map`](DistArray::map), [`map_inplace`](DistArray::map_inplace), [`zip_with`](DistArray::zip_with), [`fold`](DistArray::fold) | none | local, rayon-parallel |
//! | [`sum`](DistArray::sum), [`dot`](DistArray::dot), [`norm2`](DistArray::norm2) | collective: agreement check + one `all_reduce` of one value | local rayon reduction first (booked as compute) |
//! | [`min`](DistArray::min), [`max`](DistArray::max) | collective: agreement check + one `all_gather` of two values per rank | local rayon reduction first (compute) |
//! | [`sum_exact`](DistArray::sum_exact), [`dot_exact`](DistArray::dot_exact) | collective: agreement check + one `all_reduce` of 70 `i64`s | local exact accumulation first (compute) |
//! | [`scatter`](DistArray::scatter) | collective: root announces the shape, then point-to-point, one piece at a time | the root holds its array plus one packed piece |
//! | [`gather`](DistArray::gather) | collective: point-to-point to the root | the root holds the result plus one piece |
//! | [`all_gather`](DistArray::all_gather) | collective: one broadcast per rank's piece | every rank holds the result plus one piece |
//! | [`exchange_halos`](DistArray::exchange_halos) | point-to-point with the two neighbours along each split axis (two `MPI_Sendrecv` per axis); agreement check on the first call only | `ghosts` layers each way |
//! | [`save`](DistArray::save), [`load`](DistArray::load) | collective: each rank writes its piece, reads the saved pieces it needs; agreement checks | files, not messages |
//! | [`write_npy`](DistArray::write_npy), [`read_npy`](DistArray::read_npy) | collective: MPI-IO on one file, each rank moving its own elements; a few small reductions to share every step's outcome | one file, no messages between ranks beyond MPI-IO's own |
//! | [`redistribute`](DistArray::redistribute) | collective: agreement check + one `MPI_Alltoallv` | the piece twice (send and receive buffers) |
//!
//! Every communicating method is a collective over the array's communicator: all ranks call
//! it, and bad input (shapes, roots, ghost widths, arrays of another communicator) gives the
//! same [`Error`] on every rank. Each records itself in the [profiler](crate::timing) as one
//! comm region holding only its communication (packing messages included); local arithmetic
//! such as the sum before a reduction is compute. Messages larger than `2^30` elements are sent
//! in chunks, so pieces above MPI's `i32` counts work.
//!
//! # Arrays and threads
//! An array holds its [`Comm`], which is neither `Send` nor `Sync`, so an array cannot be moved
//! into or shared with a rayon closure (only the main thread may communicate). Its views can:
//! take `let x = a.local();` before a parallel loop and use `x` inside.
//!
//! # Checkpoints
//! [`DistArray::save`] writes the array from its P ranks; [`DistArray::load`] reads it back
//! with any Q ranks and any split, bit for bit.
//!
//! Format (readable by other tools):
//! ```text
//! DIR/CURRENT                 the name of the complete checkpoint, e.g. "v-000002"
//! DIR/v-000002/manifest.json  {"format": "spmd-distarray", "version": 2, "dtype": "<f8",
//!                              "shape": [...], "split": [{"axis": 0, "distribution": "block",
//!                              "block_size": null, "ranks": 4}], "ranks": 4,
//!                              "pieces": ["piece-00000.npy", …]}
//! DIR/v-000002/piece-RRRRR.npy  rank R's piece (NumPy .npy, C order)
//! ```
//! Piece `R` holds the global indices the manifest's split gives rank `R` of `ranks` (see
//! [`crate::partition`]; ranks are laid out row-major over the split axes' rank counts), all
//! of every other axis. In NumPy, `np.concatenate([np.load(p) for p in pieces], axis=0)`
//! rebuilds an array split in blocks along axis 0. Version 1 checkpoints (one split axis,
//! written by spmd 0.1) load too.
//!
//! [`save_with(dir, CheckpointFormat::SingleFile)`](DistArray::save_with) writes the global
//! array as **one** `.npy` instead (`DIR/v-000002/array.npy`, the file `numpy.save` writes,
//! written by every rank at once with MPI-IO; see *One file for other tools* below) and a
//! version 4 manifest holding what that file cannot: the split and rank count it was saved
//! with, and a CRC-32 of every 64 MiB chunk of the data (`"file"`, `"chunk_bytes"`, `"crc32"`;
//! no `"pieces"`). Chunks, not ranks, because a restart at another rank count reads other
//! pieces than were written. `load` reads both formats, at any rank count and split, bit for
//! bit, checking every chunk.
//!
//! Crash safety: a save writes a new version directory, then replaces `CURRENT` by writing a
//! temporary file and renaming it over the old one (atomic on POSIX file systems), and only
//! then removes the previous version. A job killed at any point leaves `CURRENT` naming a
//! complete checkpoint.
//!
//! # One file for other tools: `.npy` with MPI-IO
//! A checkpoint restarts spmd, but NumPy, ParaView or xarray would see P fragments.
//! [`DistArray::write_npy`] writes the global array as **one** `.npy` file, the very bytes
//! `numpy.save` writes for it, with every rank writing its own elements at once (MPI-IO: the
//! root writes the header, each rank's elements reach the file through an MPI file view, so
//! cyclic, block-cyclic and grid splits need no gather). [`DistArray::read_npy`] reads any
//! `.npy` (NumPy's own, C or Fortran order) at any rank count and split.
//! ```no_run
//! use spmd::array::{DistArray, NpyOrder, Split};
//! # fn main() -> spmd::Result<()> {
//! let spmd = spmd::Spmd::init()?;
//! let world = spmd.world();
//! let u = DistArray::from_fn(world, (4096, 4096), Split::grid_auto(2), |(i, j)| (i + j) as f64)?;
//! u.write_npy("u.npy")?;                               // python: numpy.load("u.npy")
//! u.write_npy_in("u_f.npy", NpyOrder::Fortran)?;       // column-major, as Fortran reads it
//! let v = DistArray::<f64, ndarray::Ix2>::read_npy(world, "u.npy", Split::cyclic(1))?;
//! # Ok(()) }
//! ```
//! The file appears at its name only when complete: the ranks write `.NAME.spmd-partial` beside
//! it and the root renames it at the end. Every step's outcome (open, size, header, view, the
//! writes, close, rename) is shared by all ranks, so a missing directory, a full disk or a
//! damaged file is the same `Err` everywhere. Elements are the fixed-size numbers (`f32`,
//! `f64`, `i8`-`i64`, `u8`-`u64`); parts above MPI's `int` counts go in rounds of 1 GiB.
//!
//! # Serial or parallel
//! Each array carries a [`Par`] switch, by default its communicator's
//! ([`Comm::with_par`]); [`with_par(Par::Seq)`](DistArray::with_par) makes its local kernels
//! run on the calling thread only, e.g. to measure a sequential baseline.

mod blocks;
mod checkpoint;
mod halo;
mod halo_plan;
#[cfg(feature = "hdf5")]
mod hdf5_file;
mod npy;
mod npy_file;
mod ops;
mod redistribute;
mod split;
mod transfer;

use ndarray::{Array, ArrayView, ArrayViewMut, Axis, Dimension, IntoDimension, RemoveAxis, Slice};
use rayon::prelude::*;

use crate::collective::{ElementType, Field, Preflight, ShapeText};
use crate::comm::Comm;
use crate::error::{Error, ErrorKind, Result};
use crate::par::Par;
use crate::partition::Partition;
use split::Layout;

pub use checkpoint::CheckpointFormat;
pub use halo::Boundary;
#[cfg(feature = "hdf5")]
pub use hdf5_file::Hdf5Writer;
pub use npy_file::NpyOrder;

pub use halo_plan::{HaloExchange, HaloPlan};
pub use split::{Split, SplitAxis, MAX_SPLIT_AXES};

#[doc(hidden)]
pub use checkpoint::FAULT_BEFORE_COMMIT_ENV;

/// The file readers, for the crate's property tests over arbitrary bytes.
#[cfg(test)]
pub(crate) mod fuzzing {
    pub(crate) use super::checkpoint::fuzzing::parse_manifest;

    pub(crate) fn read_npy_header(bytes: &[u8]) -> Result<super::npy::NpyHeader, String> {
        super::npy::read_header(&mut &bytes[..])
    }
}

/// What a [`DistArray`] can hold: plain data that MPI can send and rayon can share.
pub trait Element: mpi::datatype::Equivalence + Copy + Default + Send + Sync + 'static {}

impl<T: mpi::datatype::Equivalence + Copy + Default + Send + Sync + 'static> Element for T {}

/// An N-dimensional array split over the ranks of a communicator; see the
/// [module docs](self).
#[derive(Clone, Debug)]
pub struct DistArray<T, D: Dimension> {
    /// This rank's piece, with `ghosts` extra layers on each side of every split axis.
    data: Array<T, D>,
    shape: D,
    layout: Layout,
    comm: Comm,
    ghosts: usize,
    /// What lies beyond the global edges along each split axis (in split order).
    boundaries: [Boundary; MAX_SPLIT_AXES],
    /// Whether a halo exchange has verified that all ranks agree on the layout (which cannot
    /// change afterwards), so later exchanges skip the check.
    halo_agreed: bool,
    par: Par,
}

impl<T: Element, D: Dimension + RemoveAxis> DistArray<T, D> {
    /// Every element `elem`, on `comm`'s ranks. No communication.
    ///
    /// # Errors
    /// `Shape` if a split axis is not an axis of `shape`; `InvalidPartition` for a
    /// block-cyclic block size of 0 or a process grid that does not have `comm.size()` ranks.
    pub fn from_elem<Sh: IntoDimension<Dim = D>>(
        comm: &Comm,
        shape: Sh,
        split: Split,
        elem: T,
    ) -> Result<DistArray<T, D>> {
        let shape = shape.into_dimension();
        let layout = Layout::new(split, shape.slice(), comm.size())?;
        let piece = layout.piece_shape(&shape, comm.rank());
        Ok(DistArray::assemble(
            comm,
            shape,
            layout,
            Array::from_elem(piece, elem),
        ))
    }

    /// An array without ghosts from its parts (`data` must be this rank's piece).
    fn assemble(comm: &Comm, shape: D, layout: Layout, data: Array<T, D>) -> DistArray<T, D> {
        DistArray {
            data,
            shape,
            layout,
            comm: comm.clone(),
            ghosts: 0,
            boundaries: [Boundary::Fixed; MAX_SPLIT_AXES],
            halo_agreed: false,
            par: comm.par(),
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

    /// Element at global index `i` is `f(i)`; each rank computes only its own piece, on its
    /// rayon threads unless `comm`'s [`Par`] is [`Par::Seq`]. No communication.
    ///
    /// # Errors
    /// As [`from_elem`](Self::from_elem).
    pub fn from_fn<Sh, F>(comm: &Comm, shape: Sh, split: Split, f: F) -> Result<DistArray<T, D>>
    where
        Sh: IntoDimension<Dim = D>,
        F: Fn(D::Pattern) -> T + Sync + Send,
    {
        let shape = shape.into_dimension();
        let layout = Layout::new(split, shape.slice(), comm.size())?;
        let rank = comm.rank();
        let piece = layout.piece_shape(&shape, rank);
        let last = piece.ndim() - 1;
        let (total, row_len) = (piece.size(), piece[last]);
        if total == 0 {
            let empty = Array::from_elem(piece, T::default());
            return Ok(DistArray::assemble(comm, shape, layout, empty));
        }
        // Local → global index along each axis, computed once: the fill then only looks up
        // (every axis maps independently of the others).
        let tables: Vec<Vec<usize>> = (0..piece.ndim())
            .map(|a| {
                (0..piece[a])
                    .map(|l| {
                        let mut local = D::zeros(piece.ndim());
                        local[a] = l;
                        layout.to_global(rank, &local)[a]
                    })
                    .collect()
            })
            .collect();
        // Row by row along the last axis (the leading index is unravelled once per row),
        // straight into the new piece's memory: no zero-fill pass before the real one.
        let fill_row = |(k, row): (usize, &mut [std::mem::MaybeUninit<T>])| {
            let mut global = piece.clone();
            let mut rest = k;
            for a in (0..last).rev() {
                global[a] = tables[a][rest % piece[a]];
                rest /= piece[a];
            }
            for (x, &g) in row.iter_mut().zip(&tables[last]) {
                global[last] = g;
                x.write(f(global.clone().into_pattern()));
            }
        };
        let mut values: Vec<T> = Vec::with_capacity(total);
        let slots = &mut values.spare_capacity_mut()[..total];
        match comm.par() {
            Par::Rayon => slots.par_chunks_mut(row_len).enumerate().for_each(fill_row),
            Par::Seq => slots.chunks_mut(row_len).enumerate().for_each(fill_row),
        }
        // SAFETY: the rows of `row_len` slots cover all `total` slots, and `fill_row` wrote
        // every slot of its row (a panic in `f` unwinds before this line, leaving the vector
        // empty; `T: Copy` has nothing to drop).
        unsafe { values.set_len(total) };
        let data = Array::from_shape_vec(piece, values).expect("the piece holds `total` values");
        Ok(DistArray::assemble(comm, shape, layout, data))
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
        let layout = Layout::new(split, shape.slice(), comm.size())?;
        let expected = layout.piece_shape(&shape, comm.rank());
        if piece.raw_dim() != expected {
            return Err(Error::new(
                ErrorKind::Shape,
                format!(
                    "DistArray::from_local: rank {}'s piece of a {:?} array split {} must have \
                     shape {:?}, found {:?}",
                    comm.rank(),
                    shape.slice(),
                    layout.split(),
                    expected.slice(),
                    piece.shape()
                ),
            )
            .on_rank(comm.rank()));
        }
        let data = piece.as_standard_layout().into_owned();
        Ok(DistArray::assemble(comm, shape, layout, data))
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

    /// The communicator the array was made on (a cheap handle; clone it to keep it).
    pub fn comm(&self) -> &Comm {
        &self.comm
    }

    /// How the array is split, with the process grid's rank counts filled in.
    pub fn split(&self) -> Split {
        self.layout.split()
    }

    /// How `axis` is partitioned over the ranks along it, if it is split.
    pub fn partition(&self, axis: usize) -> Option<&Partition> {
        self.layout.part(axis)
    }

    /// This rank's coordinates in the process grid, one per split axis.
    pub fn grid_coords(&self) -> Vec<usize> {
        self.layout.coords(self.comm.rank())[..self.layout.split_axes()].to_vec()
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
        let mut view = self.data.view();
        for (axis, owned) in self.owned_slices() {
            view.slice_axis_inplace(Axis(axis), owned);
        }
        view
    }

    /// This rank's piece (without ghosts), as a mutable view.
    pub fn local_mut(&mut self) -> ArrayViewMut<'_, T, D> {
        let slices: Vec<(usize, Slice)> = self.owned_slices().collect();
        let mut view = self.data.view_mut();
        for (axis, owned) in slices {
            view.slice_axis_inplace(Axis(axis), owned);
        }
        view
    }

    /// The owned layers of the padded piece along each split axis.
    fn owned_slices(&self) -> impl Iterator<Item = (usize, Slice)> + '_ {
        let w = self.ghosts;
        self.layout.parts().map(move |p| {
            let count = self.data.len_of(Axis(p.axis)) - 2 * w;
            (p.axis, Slice::from(w..w + count))
        })
    }

    /// The global indices along `axis` that this rank's piece covers, when they are a
    /// contiguous range: always for an axis that is not split or split in blocks; `None`
    /// for a cyclic or block-cyclic split axis.
    ///
    /// # Panics
    /// If `axis` is not an axis of the array.
    #[track_caller]
    pub fn global_range(&self, axis: usize) -> Option<std::ops::Range<usize>> {
        assert!(
            axis < self.shape.ndim(),
            "axis {axis} of a {}-dimensional array",
            self.shape.ndim()
        );
        match self
            .layout
            .indices(self.comm.rank(), axis, self.shape[axis])
        {
            split::Indices::Range(r) => Some(r),
            split::Indices::List(_) => None,
        }
    }

    /// The rank owning global index `index`.
    ///
    /// # Errors
    /// `OutOfBounds` if `index` is outside the global shape.
    pub fn owner_of<I: IntoDimension<Dim = D>>(&self, index: I) -> Result<usize> {
        let index = self.check_global(index.into_dimension())?;
        Ok(self.layout.to_local(&index).0)
    }

    /// The index in [`local`](Self::local) of global index `index`, or `None` if another rank
    /// owns it.
    ///
    /// # Errors
    /// `OutOfBounds` if `index` is outside the global shape.
    pub fn global_to_local<I: IntoDimension<Dim = D>>(&self, index: I) -> Result<Option<D>> {
        let index = self.check_global(index.into_dimension())?;
        let (owner, local) = self.layout.to_local(&index);
        Ok((owner == self.comm.rank()).then_some(local))
    }

    /// The global index of index `index` in [`local`](Self::local).
    ///
    /// # Errors
    /// `OutOfBounds` if `index` is outside this rank's piece.
    pub fn local_to_global<I: IntoDimension<Dim = D>>(&self, index: I) -> Result<D> {
        let index = index.into_dimension();
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
                    self.comm.rank(),
                    piece.slice()
                ),
            ));
        }
        Ok(self.layout.to_global(self.comm.rank(), &index))
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

    /// The agreement check of a collective on this array: `local_error` (this rank's own
    /// finding), else ranks whose shape, split or ghost width differ, plus `extra` fields —
    /// the same `Err` on every rank.
    pub(crate) fn layout_preflight(
        &self,
        op: &'static str,
        local_error: Option<Error>,
        extra: &[Field<'_>],
    ) -> Result<()> {
        let split = self.layout.split();
        let shape = ShapeText(self.shape.slice());
        let mut agree = vec![
            Field::keyed(
                "the global shape",
                crate::collective::shape_key(self.shape.slice()),
                &shape,
            ),
            Field::keyed("the split", split.key(), &split),
            Field::number("the ghost width", &self.ghosts),
        ];
        agree.extend(extra.iter().map(|f| Field::keyed(f.name, f.key, f.shown)));
        self.comm.preflight(Preflight {
            op,
            element: Some(ElementType::of::<T>()),
            local_error,
            agree: &agree,
        })
    }

    /// `None`, or the error of combining this array with one made on another communicator.
    pub(crate) fn same_comm_error<U>(&self, op: &str, other: &DistArray<U, D>) -> Option<Error> {
        (!self.comm.same_as(&other.comm)).then(|| {
            Error::new(
                ErrorKind::InvalidPartition,
                format!(
                    "{op}: the arrays were made on different communicators ({} ranks and {} \
                     ranks); make both on the same one, or redistribute one first",
                    self.comm.size(),
                    other.comm.size()
                ),
            )
        })
    }
}
