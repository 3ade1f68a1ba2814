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
use ndarray::{Array, ArrayView, Dimension, IxDyn, RemoveAxis};

use super::blocks::{extract, held_by, place, Selection};
use super::split::{Indices, Layout};
use super::{DistArray, Element, Split};
use crate::collective::{check_root, ElementType, Field, Preflight};
use crate::comm::Comm;
use crate::error::{Error, ErrorKind, Result};

/// The most elements in one message.
pub(crate) const CHUNK: usize = 1 << 30;
/// The tag of array messages: in the library's range above
/// [`MAX_TAG`](crate::comm::MAX_TAG), so no program message can match one.
pub(crate) const TAG: i32 = crate::comm::LIBRARY_TAGS.start;

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
    /// root passes no array, or a split axis does not exist; `InvalidPartition` for a
    /// block-cyclic block size of 0 or a process grid of another size.
    pub fn scatter(
        comm: &Comm,
        root: usize,
        source: Option<ArrayView<'_, T, D>>,
        split: Split,
    ) -> Result<DistArray<T, D>> {
        const OP: &str = "DistArray::scatter";
        let is_root = comm.rank() == root;
        let mut timer = comm.timed(OP, 0);
        comm.preflight(Preflight {
            op: OP,
            element: Some(ElementType::of::<T>()),
            local_error: check_root(root, comm.size(), OP),
            agree: &[
                Field::number("the root", &root),
                Field::keyed("the split", split.key(), &split),
            ],
        })?;
        // The root announces the number of axes with its error, then the shape.
        let root_error = match (&source, is_root) {
            (_, false) => None,
            (None, true) => Some(Error::new(
                ErrorKind::Shape,
                format!("{OP}: the root passed no array (None)"),
            )),
            (Some(view), true) => Layout::new(split, view.shape(), comm.size())
                .err()
                .map(|e| Error::new(e.kind(), format!("{OP}: {}", e.message()))),
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
                format!("{OP}: the root's array has {ndim} axes, this rank's type another number"),
            )
            .on_rank(comm.rank())
        })?;
        let mut array = DistArray::from_elem(comm, shape, split, T::default())?;
        let bytes = size_of::<T>();
        if let (true, Some(source)) = (is_root, source) {
            let mut packed = Vec::new();
            for rank in 0..comm.size() {
                let selection = held_by(&array.layout, rank, array.shape.slice());
                let piece = extract(source.view(), &selection);
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
    /// `InvalidRoot`; `Disagreement` if ranks pass different roots or hold differently shaped
    /// arrays.
    pub fn gather(&self, root: usize) -> Result<Option<Array<T, D>>> {
        const OP: &str = "DistArray::gather";
        let comm = &self.comm;
        let mut timer = comm.timed(OP, self.local().len() * size_of::<T>());
        self.layout_preflight(
            OP,
            check_root(root, comm.size(), OP),
            &[Field::number("the root", &root)],
        )?;
        let mut packed = Vec::new();
        if comm.rank() != root {
            send_chunked(comm, root, contiguous_or_packed(&self.local(), &mut packed));
            return Ok(None);
        }
        let mut global = Array::from_elem(self.shape.clone(), T::default());
        timer.add_bytes(global.len() * size_of::<T>());
        for rank in 0..comm.size() {
            let selection = held_by(&self.layout, rank, self.shape.slice());
            if rank == root {
                place(global.view_mut(), &selection, self.local());
            } else {
                self.receive_piece(rank, &selection, &mut global, &mut packed);
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
    /// `Disagreement` if ranks hold differently shaped arrays.
    pub fn all_gather(&self) -> Result<Array<T, D>> {
        const OP: &str = "DistArray::all_gather";
        let comm = &self.comm;
        let _timer = comm.timed(OP, (self.local().len() + self.len()) * size_of::<T>());
        self.layout_preflight(OP, None, &[])?;
        let mut global = Array::from_elem(self.shape.clone(), T::default());
        let mut buffer: Vec<T> = Vec::new();
        for rank in 0..comm.size() {
            let selection = held_by(&self.layout, rank, self.shape.slice());
            if rank == comm.rank() {
                let local = self.local();
                let mut mine = contiguous_or_packed(&local, &mut buffer).to_vec();
                broadcast_chunked(comm, rank, &mut mine);
                place(global.view_mut(), &selection, local);
            } else {
                let shape = self.layout.piece_shape(&self.shape, rank);
                buffer.clear();
                buffer.resize(shape.size(), T::default());
                broadcast_chunked(comm, rank, &mut buffer);
                let piece =
                    ArrayView::from_shape(shape, &buffer).expect("buffer sized to the piece");
                place(global.view_mut(), &selection, piece);
            }
        }
        Ok(global)
    }

    /// Receives `rank`'s piece into its place in `global`: straight into the result when the
    /// piece is a contiguous run of it (a block of axis 0 only), else through `buffer`.
    fn receive_piece(
        &self,
        rank: usize,
        selection: &Selection,
        global: &mut Array<T, D>,
        buffer: &mut Vec<T>,
    ) {
        if let [(0, Indices::Range(rows))] = selection.as_slice() {
            let layer = global.len() / global.len_of(ndarray::Axis(0)).max(1);
            let data = global
                .as_slice_mut()
                .expect("a new array is standard layout");
            receive_chunked(
                &self.comm,
                rank,
                &mut data[rows.start * layer..rows.end * layer],
            );
            return;
        }
        let shape = self.layout.piece_shape(&self.shape, rank);
        buffer.clear();
        buffer.resize(shape.size(), T::default());
        receive_chunked(&self.comm, rank, buffer);
        let piece = ArrayView::from_shape(shape, buffer).expect("buffer sized to the piece");
        place(global.view_mut(), selection, piece);
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
pub(crate) fn dimension_from<D: Dimension>(dims: &[u64]) -> Option<D> {
    let dims: Vec<usize> = dims.iter().map(|&d| d as usize).collect();
    D::from_dimension(&IxDyn(&dims))
}
