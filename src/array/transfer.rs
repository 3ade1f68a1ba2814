//! Moving whole arrays: `scatter` from a root, `gather` to a root, `all_gather`.
//!
//! Pieces travel point-to-point (or by broadcast for `all_gather`), one at a time, so no rank
//! ever holds more than the global array plus one piece; pieces that are contiguous in the
//! source are sent in place, others are packed into one reusable buffer. Messages are cut into
//! chunks of at most [`CHUNK`] elements, so pieces beyond MPI's `i32` counts work.

use std::mem::size_of;

use mpi::collective::Root;
use mpi::datatype::Equivalence;
use mpi::point_to_point::{Destination, Source};
use mpi::topology::Communicator;
use ndarray::{
    Array, ArrayView, ArrayViewMut, Axis, CowArray, Dimension, IxDyn, RemoveAxis, Slice,
};

use super::{piece_shape, DistArray, Element, Split};
use crate::collective::{as_field, check_root, Preflight};
use crate::comm::Comm;
use crate::error::{Error, ErrorKind, Result};
use crate::partition::{Distribution, Partition};

/// The most elements in one message.
pub(crate) const CHUNK: usize = 1 << 30;
/// The tag of array messages (distinct from rsmpi's default tag 0 that user code tends to use).
pub(crate) const TAG: i32 = 0x5350;

impl<T: Element, D: Dimension + RemoveAxis> DistArray<T, D> {
    /// Splits the root's `source` over the ranks of `comm` by `split`. Only the root's
    /// `source` is read (pass `None` elsewhere); it may have any memory layout (a transposed,
    /// sliced or Fortran-order view is read in logical order). Collective.
    ///
    /// Communication: the agreement check on the root and split, a broadcast of the shape
    /// (which carries the root's errors), then one point-to-point message (or chunks of `2^30`
    /// elements) per rank. The root holds `source` plus at most one packed piece.
    ///
    /// # Errors
    /// `InvalidRoot`; `Disagreement` if ranks pass different roots or splits; `Shape` if the
    /// root passes no array, or the split axis does not exist; `InvalidPartition` for a
    /// block-cyclic block size of 0.
    pub fn scatter(
        comm: &Comm,
        root: usize,
        source: Option<ArrayView<'_, T, D>>,
        split: Split,
    ) -> Result<DistArray<T, D>> {
        const OP: &str = "scatter";
        let is_root = comm.rank() == root;
        let mut timer = comm.timed("DistArray::scatter", 0);
        comm.preflight(Preflight {
            op: OP,
            local_error: check_root(root, comm.size(), OP),
            agree: &[("the root", as_field(root)), ("the split", split.code())],
        })?;
        // The root announces the number of axes with its error, then the shape.
        let root_error = if !is_root {
            None
        } else {
            match &source {
                None => Some(Error::new(
                    ErrorKind::Shape,
                    "scatter: the root passed no array (None)",
                )),
                Some(view) => (split.axis >= view.ndim()).then(|| {
                    Error::new(
                        ErrorKind::Shape,
                        format!(
                            "scatter: split axis {} does not exist in the root's {}-dimensional \
                             array of shape {:?}",
                            split.axis,
                            view.ndim(),
                            view.shape()
                        ),
                    )
                }),
            }
        };
        let ndim = source.as_ref().map_or(0, |v| v.ndim());
        let [ndim] = comm.announce_from_root(root, [ndim], root_error)?;
        let mut dims: Vec<u64> = match (&source, is_root) {
            (Some(view), true) => view.shape().iter().map(|&d| d as u64).collect(),
            _ => vec![0; ndim],
        };
        comm.raw()
            .process_at_rank(root as i32)
            .broadcast_into(&mut dims[..]);
        let shape = dimension_from::<D>(&dims).ok_or_else(|| {
            Error::new(
                ErrorKind::Shape,
                format!(
                    "scatter: the root's array has {ndim} axes, this rank's type another number"
                ),
            )
            .on_rank(comm.rank() as i32)
        })?;
        let mut array = DistArray::from_elem(comm, shape, split, T::default())?;
        let bytes = size_of::<T>();
        if let (true, Some(source)) = (is_root, source) {
            let mut packed = Vec::new();
            for rank in 0..comm.size() {
                let piece = piece_view(&source, split.axis, &array.partition, rank);
                timer.add_bytes(piece.len() * bytes);
                if rank == root {
                    array.local_mut().assign(&piece);
                } else {
                    send_chunked(comm, rank, contiguous_or_packed(&piece.view(), &mut packed));
                }
            }
        } else {
            let local = array
                .data
                .as_slice_mut()
                .expect("a new array is contiguous");
            timer.add_bytes(std::mem::size_of_val(local));
            receive_chunked(comm, root, local);
        }
        Ok(array)
    }

    /// The whole array on the root (`Some` there, `None` elsewhere). Collective.
    ///
    /// Communication: agreement check, then one point-to-point message (or chunks) per rank to
    /// the root, which holds the result plus at most one piece.
    ///
    /// # Errors
    /// `InvalidRoot`; `InvalidPartition` if `comm` is not the array's communicator;
    /// `Disagreement` if ranks pass different roots or hold differently shaped arrays.
    pub fn gather(&self, comm: &Comm, root: usize) -> Result<Option<Array<T, D>>> {
        const OP: &str = "gather";
        let mut timer = comm.timed("DistArray::gather", self.local().len() * size_of::<T>());
        let [shape, split, ghosts] = self.agreement_fields();
        comm.preflight(Preflight {
            op: OP,
            local_error: check_root(root, comm.size(), OP).or_else(|| self.comm_error(comm, OP)),
            agree: &[("the root", as_field(root)), shape, split, ghosts],
        })?;
        let mut packed = Vec::new();
        if comm.rank() != root {
            send_chunked(comm, root, contiguous_or_packed(&self.local(), &mut packed));
            return Ok(None);
        }
        let mut global = Array::from_elem(self.shape.clone(), T::default());
        timer.add_bytes(global.len() * size_of::<T>());
        for rank in 0..comm.size() {
            if rank == root {
                place_piece(
                    &mut global.view_mut(),
                    self.split.axis,
                    &self.partition,
                    rank,
                    &self.local(),
                );
            } else {
                self.receive_piece(comm, rank, &mut global, &mut packed);
            }
        }
        Ok(Some(global))
    }

    /// The whole array on every rank. Collective.
    ///
    /// Communication: agreement check, then one broadcast (or chunks) per rank's piece; every
    /// rank holds the result plus at most one piece.
    ///
    /// # Errors
    /// `InvalidPartition` if `comm` is not the array's communicator; `Disagreement` if ranks
    /// hold differently shaped arrays.
    pub fn all_gather(&self, comm: &Comm) -> Result<Array<T, D>> {
        const OP: &str = "all_gather";
        let _timer = comm.timed(
            "DistArray::all_gather",
            (self.local().len() + self.len()) * size_of::<T>(),
        );
        self.layout_preflight(comm, OP, None)?;
        let mut global = Array::from_elem(self.shape.clone(), T::default());
        let mut buffer: Vec<T> = Vec::new();
        for rank in 0..comm.size() {
            if rank == comm.rank() {
                let local = self.local();
                let mut mine = contiguous_or_packed(&local, &mut buffer).to_vec();
                broadcast_chunked(comm, rank, &mut mine);
                place_piece(
                    &mut global.view_mut(),
                    self.split.axis,
                    &self.partition,
                    rank,
                    &local,
                );
            } else {
                let shape = piece_shape(&self.shape, self.split.axis, self.partition.count(rank));
                buffer.clear();
                buffer.resize(shape.size(), T::default());
                broadcast_chunked(comm, rank, &mut buffer);
                let piece =
                    ArrayView::from_shape(shape, &buffer).expect("buffer sized to the piece");
                place_piece(
                    &mut global.view_mut(),
                    self.split.axis,
                    &self.partition,
                    rank,
                    &piece,
                );
            }
        }
        Ok(global)
    }

    /// Receives `rank`'s piece into its place in `global`: straight into the result when the
    /// piece is a contiguous run of it (Block split along axis 0), else through `buffer`.
    fn receive_piece(
        &self,
        comm: &Comm,
        rank: usize,
        global: &mut Array<T, D>,
        buffer: &mut Vec<T>,
    ) {
        let axis = self.split.axis;
        let count = self.partition.count(rank);
        if axis == 0 && self.split.distribution == Distribution::Block {
            let start = self.partition.displacements()[rank];
            let mut rows = global.slice_axis_mut(Axis(0), Slice::from(start..start + count));
            let target = rows
                .as_slice_mut()
                .expect("rows of a standard-layout array are contiguous");
            receive_chunked(comm, rank, target);
            return;
        }
        let shape = piece_shape(&self.shape, axis, count);
        buffer.clear();
        buffer.resize(shape.size(), T::default());
        receive_chunked(comm, rank, buffer);
        let piece = ArrayView::from_shape(shape, buffer).expect("buffer sized to the piece");
        place_piece(&mut global.view_mut(), axis, &self.partition, rank, &piece);
    }
}

/// `rank`'s piece of `global`: a view for a block, a copy for the (strided) other layouts.
fn piece_view<'a, T, D: Dimension + RemoveAxis>(
    global: &ArrayView<'a, T, D>,
    axis: usize,
    partition: &Partition,
    rank: usize,
) -> CowArray<'a, T, D>
where
    T: Clone,
{
    match partition.distribution() {
        Distribution::Block => {
            let start = partition.displacements()[rank];
            let count = partition.count(rank);
            global
                .clone()
                .slice_axis_move(Axis(axis), Slice::from(start..start + count))
                .into()
        }
        _ => {
            let indices: Vec<usize> = partition.global_indices(rank).collect();
            global.select(Axis(axis), &indices).into()
        }
    }
}

/// Writes `piece` (rank `rank`'s piece) into its place in `global`.
fn place_piece<T: Clone, D: Dimension + RemoveAxis>(
    global: &mut ArrayViewMut<'_, T, D>,
    axis: usize,
    partition: &Partition,
    rank: usize,
    piece: &ArrayView<'_, T, D>,
) {
    match partition.distribution() {
        Distribution::Block => {
            let start = partition.displacements()[rank];
            global
                .slice_axis_mut(
                    Axis(axis),
                    Slice::from(start..start + piece.len_of(Axis(axis))),
                )
                .assign(piece);
        }
        _ => {
            for (local, global_index) in partition.global_indices(rank).enumerate() {
                global
                    .index_axis_mut(Axis(axis), global_index)
                    .assign(&piece.index_axis(Axis(axis), local));
            }
        }
    }
}

/// `view`'s elements in logical order: the view's own memory when it is contiguous in
/// standard layout, else copied into `buffer`.
pub(crate) fn contiguous_or_packed<'a, T: Copy, D: Dimension>(
    view: &'a ArrayView<'_, T, D>,
    buffer: &'a mut Vec<T>,
) -> &'a [T] {
    if let Some(slice) = view.as_slice() {
        return slice;
    }
    buffer.clear();
    buffer.extend(view.iter().copied());
    buffer
}

pub(crate) fn send_chunked<T: Equivalence>(comm: &Comm, to: usize, data: &[T]) {
    let process = comm.raw().process_at_rank(to as i32);
    for chunk in data.chunks(CHUNK) {
        process.send_with_tag(chunk, TAG);
    }
}

pub(crate) fn receive_chunked<T: Equivalence>(comm: &Comm, from: usize, data: &mut [T]) {
    let process = comm.raw().process_at_rank(from as i32);
    for chunk in data.chunks_mut(CHUNK) {
        process.receive_into_with_tag(chunk, TAG);
    }
}

pub(crate) fn broadcast_chunked<T: Equivalence>(comm: &Comm, root: usize, data: &mut [T]) {
    let process = comm.raw().process_at_rank(root as i32);
    for chunk in data.chunks_mut(CHUNK) {
        process.broadcast_into(chunk);
    }
}

/// A dimension of type `D` with extents `dims`, if `D` can have that many axes.
fn dimension_from<D: Dimension>(dims: &[u64]) -> Option<D> {
    let dims: Vec<usize> = dims.iter().map(|&d| d as usize).collect();
    D::from_dimension(&IxDyn(&dims))
}
