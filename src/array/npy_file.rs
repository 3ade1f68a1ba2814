//! One `.npy` file per array, written and read by every rank at once with MPI-IO: the root
//! writes the header, every rank moves its own elements through a file view, whatever the
//! split. The file is the one `numpy.save` writes for the global array, byte for byte.
//!
//! A write goes to a hidden temporary name beside the target (`.NAME.spmd-partial`) and is
//! renamed over the target only once every rank's part is in, so a failed or killed job never
//! leaves a file at the target's name that looks complete and is not.

use std::path::{Path, PathBuf};

use ndarray::{ArrayView, Dimension, IxDyn, RemoveAxis};
use ndarray_npy::{ReadableElement, WritableElement};

use super::checkpoint::{dtype, is_plain_number};
use super::split::Layout;
use super::{npy, DistArray, Element, Split};
use crate::collective::{fingerprint, ElementType, Field, Preflight};
use crate::comm::file::{rounds_for, AxisRuns, FileMode, FileView, ParallelFile, RunGroup};
use crate::comm::Comm;
use crate::error::{Error, ErrorKind, Result};
use crate::partition::Distribution;

/// The order in which a `.npy` file holds the elements (NumPy's `fortran_order`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NpyOrder {
    /// Row-major: the last axis varies fastest (NumPy's default).
    #[default]
    C,
    /// Column-major: the first axis varies fastest.
    Fortran,
}

impl std::fmt::Display for NpyOrder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NpyOrder::C => "C order",
            NpyOrder::Fortran => "Fortran order",
        })
    }
}

/// The longest run one MPI datatype block may hold (its length is an `int`).
const RUN_MAX: usize = 1 << 30;

/// What an observed write calls with each part of this rank's bytes: `(offset in the data,
/// bytes)`.
pub(crate) type WriteObserver<'a> = dyn FnMut(u64, &[u8]) + 'a;

/// The `.npy` bytes of `values`: their memory as it is.
///
/// # Safety
/// `T` must be one of the plain number types [`supported`] accepts (no padding, no pointers).
pub(crate) unsafe fn plain_bytes<T>(values: &[T]) -> &[u8] {
    // SAFETY: the caller guarantees `T` is a plain number type, so every byte of `values` is
    // initialised; the view borrows `values` and covers exactly its bytes.
    unsafe {
        std::slice::from_raw_parts(values.as_ptr().cast::<u8>(), std::mem::size_of_val(values))
    }
}

/// The largest part an observed write shows its observer (and writes) at a time: small
/// enough to stay in a core's cache between the two.
pub(crate) const OBSERVED_PART: usize = 2 << 20;

impl<T, D> DistArray<T, D>
where
    T: Element + WritableElement + ReadableElement,
    D: Dimension + RemoveAxis,
{
    /// Writes the global array to one `.npy` file at `path`, in C order, every rank writing
    /// its own piece at once (MPI-IO, collective). `numpy.load(path)` gives the global array;
    /// the bytes are those `numpy.save` writes for it. Any split and rank count; ghosts are
    /// not written.
    ///
    /// ```no_run
    /// use spmd::array::{DistArray, Split};
    /// # fn main() -> spmd::Result<()> {
    /// let spmd = spmd::Spmd::init()?;
    /// let u = DistArray::from_fn(spmd.world(), (1000, 800), Split::cyclic(1), |(i, j)| (i * j) as f64)?;
    /// u.write_npy("field.npy")?; // numpy.load("field.npy").shape == (1000, 800)
    /// let back = DistArray::<f64, ndarray::Ix2>::read_npy(spmd.world(), "field.npy", Split::block(0))?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// On every rank: `Io` if the file cannot be created or written (a missing directory, no
    /// permission, a full disk; the message names the file and MPI's reason), in which case
    /// nothing is left at `path`; `Disagreement` if ranks pass different paths or hold
    /// different arrays; `Config` for an element type other than the fixed-size numbers
    /// (`f32`, `f64`, `i8`..`i64`, `u8`..`u64`).
    pub fn write_npy(&self, path: impl AsRef<Path>) -> Result<()> {
        self.write_npy_in(path, NpyOrder::C)
    }

    /// [`write_npy`](Self::write_npy) in the given element order (`Fortran`: NumPy's
    /// `fortran_order`, what Fortran and MATLAB codes read directly).
    ///
    /// # Errors
    /// As [`write_npy`](Self::write_npy).
    pub fn write_npy_in(&self, path: impl AsRef<Path>, order: NpyOrder) -> Result<()> {
        self.write_npy_observed(path.as_ref(), order, None)
    }

    /// [`write_npy_in`](Self::write_npy_in), showing `observe` every byte of this rank's
    /// piece just before it is written, as `(offset in the data, bytes)` in file order and in
    /// parts of at most [`OBSERVED_PART`] (so a checksum reads them while they are in cache).
    /// An observer needs every rank's elements to be one run of the file (row blocks).
    pub(crate) fn write_npy_observed(
        &self,
        path: &Path,
        order: NpyOrder,
        mut observe: Option<&mut WriteObserver<'_>>,
    ) -> Result<()> {
        const OP: &str = "DistArray::write_npy";
        let comm = &self.comm;
        let item = std::mem::size_of::<T>();
        let _timer = comm.timed(OP, self.local().len() * item);
        let shown = path.display();
        // As NumPy: an array that is C- and Fortran-contiguous at once (at most one axis
        // longer than 1, or empty) is written in C order; the bytes are the same.
        let long_axes = self.shape.slice().iter().filter(|&&n| n > 1).count();
        let fortran = order == NpyOrder::Fortran && long_axes > 1 && self.shape.size() > 0;
        let temporary = partial_name(path);
        let local_error = supported::<T>(OP)
            .err()
            .or(temporary.as_ref().err().cloned());
        self.layout_preflight(
            OP,
            local_error,
            &[
                Field::keyed("the path", path_key(path), &shown),
                Field::keyed("the order", i64::from(order == NpyOrder::Fortran), &order),
            ],
        )?;
        let temporary = temporary?;
        let header = npy::header_bytes(&dtype::<T>(), fortran, self.shape.slice());
        let total = (header.len() as u64).saturating_add(self.shape.size() as u64 * item as u64);
        let piece = if fortran {
            self.local().reversed_axes()
        } else {
            self.local()
        };
        let piece = piece.as_standard_layout();
        let outcome = (|| {
            let file = ParallelFile::open(comm, &temporary, FileMode::Create);
            let file = comm.share_result(file)?;
            comm.share_result(file.set_size(total))?;
            let header_written = match comm.rank() {
                0 => file.write_at(0, &header),
                _ => Ok(()),
            };
            let bytes = piece.len() * item;
            let written = match self.contiguous_span(fortran) {
                // Every rank's elements are one run of the file: plain writes at offsets,
                // no collective buffering (whose extra copy cost a fifth of the bandwidth).
                Some((at, len)) => {
                    comm.share_result(header_written)?;
                    debug_assert_eq!(len, bytes);
                    let start = header.len() as u64 + at;
                    match observe.as_mut() {
                        // SAFETY: `piece` is a standard-layout array of `bytes` bytes that
                        // lives until the call returns.
                        None => unsafe {
                            file.write_span(start, piece.as_ptr().cast::<u8>(), bytes)
                        },
                        Some(observe) => {
                            let values = piece.as_slice().expect("a standard-layout piece");
                            // SAFETY: the `supported` check refused any type but plain numbers.
                            let all = unsafe { plain_bytes(values) };
                            all.chunks(OBSERVED_PART)
                                .zip((0..).step_by(OBSERVED_PART))
                                .try_for_each(|(part, from)| {
                                    observe(at + from as u64, part);
                                    file.write_at(start + from as u64, part)
                                })
                        }
                    }
                }
                None => {
                    assert!(
                        observe.is_none(),
                        "{OP}: an observed write needs row blocks"
                    );
                    let view = self.file_view(fortran);
                    let view = comm.share_result(header_written.and(view))?;
                    comm.share_result(file.set_view(header.len() as u64, &view))?;
                    let rounds = rounds_for(self.largest_piece_bytes());
                    // SAFETY: as above.
                    unsafe { file.write_all(piece.as_ptr().cast::<u8>(), bytes, rounds) }
                }
            };
            comm.share_result(written)?;
            comm.share_result(file.close())?;
            let renamed = match comm.rank() {
                0 => std::fs::rename(&temporary, path).map_err(|e| {
                    Error::io(
                        format!("{OP}: cannot rename the written file to {shown}"),
                        e,
                    )
                }),
                _ => Ok(()),
            };
            comm.share_result(renamed)
        })();
        if outcome.is_err() && comm.rank() == 0 {
            let _ = std::fs::remove_file(&temporary);
        }
        outcome.map_err(|e| e.prefixed(OP))
    }

    /// Reads the `.npy` file at `path` (written by [`write_npy`](Self::write_npy), NumPy or
    /// any other tool, C or Fortran order) as an array split by `split` over `comm`, every
    /// rank reading its own piece at once (MPI-IO, collective). The root checks the header
    /// against `T` and `D` and the file's size against the header before any rank allocates.
    ///
    /// # Errors
    /// On every rank: `Io` if the file is missing or unreadable, not a `.npy`, of another
    /// element type or number of dimensions, or shorter or longer than its header says;
    /// `Shape` if `split` does not fit the file's shape; `Disagreement` if ranks pass
    /// different paths or splits; `Config` as [`write_npy`](Self::write_npy).
    pub fn read_npy(comm: &Comm, path: impl AsRef<Path>, split: Split) -> Result<DistArray<T, D>> {
        const OP: &str = "DistArray::read_npy";
        let path = path.as_ref();
        let _timer = comm.timed(OP, 0);
        let shown = path.display();
        comm.preflight(Preflight {
            op: OP,
            element: Some(ElementType::of::<T>()),
            local_error: supported::<T>(OP).err(),
            agree: &[
                Field::keyed("the path", path_key(path), &shown),
                Field::keyed("the split", split.key(), &split),
            ],
        })?;
        let header = shared_header::<T, D>(comm, path, OP)?;
        let target = Layout::new(split, &header.shape, comm.size());
        comm.preflight(Preflight {
            op: OP,
            element: None,
            local_error: target.err().map(|e| e.prefixed(OP)),
            agree: &[],
        })?;
        let shape =
            D::from_dimension(&IxDyn(&header.shape)).expect("dimensions checked by the root");
        let mut array = DistArray::from_elem(comm, shape, split, T::default())?;
        array.fill_from_npy(path, &header, OP)?;
        Ok(array)
    }

    /// Reads the `.npy` file at `path` into this array, keeping its split, ghosts and memory
    /// (collective): what a time loop or a restart reading many files into the same field
    /// does, with no allocation and no first touch of fresh memory.
    ///
    /// # Errors
    /// As [`read_npy`](Self::read_npy); `Shape` on every rank if the file's shape is not the
    /// array's.
    pub fn read_npy_into(&mut self, path: impl AsRef<Path>) -> Result<()> {
        const OP: &str = "DistArray::read_npy_into";
        let path = path.as_ref();
        let comm = self.comm.clone();
        let _timer = comm.timed(OP, 0);
        self.layout_preflight(
            OP,
            supported::<T>(OP).err(),
            &[Field::keyed("the path", path_key(path), &path.display())],
        )?;
        let header = shared_header::<T, D>(&comm, path, OP)?;
        if header.shape != self.shape.slice() {
            return Err(Error::new(
                ErrorKind::Shape,
                format!(
                    "{OP}: {} holds shape {:?}, the array has {:?}",
                    path.display(),
                    header.shape,
                    self.shape.slice()
                ),
            ));
        }
        self.fill_from_npy(path, &header, OP)
    }

    /// Every rank reads its elements of the `.npy` at `path`, whose header (shared by every
    /// rank) matches this array's element type and shape.
    fn fill_from_npy(&mut self, path: &Path, header: &npy::NpyHeader, op: &str) -> Result<()> {
        let comm = self.comm.clone();
        let item = std::mem::size_of::<T>();
        let fortran = header.fortran_order;
        let piece_len = self.local().len();
        // Straight into the piece when it is the file's order and has no ghosts around it;
        // else into a staging buffer, placed afterwards.
        let direct = !fortran && self.ghosts == 0;
        let mut staging: Vec<T> = if direct {
            Vec::new()
        } else {
            vec![T::default(); piece_len]
        };
        let outcome = (|| {
            let file = comm.share_result(ParallelFile::open(&comm, path, FileMode::Read))?;
            let target = if direct {
                self.data.as_mut_ptr()
            } else {
                staging.as_mut_ptr()
            };
            let bytes = piece_len * item;
            // SAFETY (both reads): `target` is the start of `piece_len` elements of a plain
            // number type (every bit pattern a value), owned by `staging` or by the array's
            // standard-layout piece without ghosts, alive until the call returns.
            let read = match self.contiguous_span(fortran) {
                Some((at, _)) => unsafe {
                    file.read_span(header.data_offset + at, target.cast::<u8>(), bytes)
                },
                None => {
                    let view = comm.share_result(self.file_view(fortran))?;
                    comm.share_result(file.set_view(header.data_offset, &view))?;
                    let rounds = rounds_for(self.largest_piece_bytes());
                    unsafe { file.read_all(target.cast::<u8>(), bytes, rounds) }
                }
            };
            comm.share_result(read)?;
            comm.share_result(file.close())
        })();
        outcome.map_err(|e| e.prefixed(op))?;
        if !direct && piece_len > 0 {
            let mut file_shape: Vec<usize> = self.local().shape().to_vec();
            if fortran {
                file_shape.reverse();
            }
            let staged = ArrayView::from_shape(IxDyn(&file_shape), &staging)
                .expect("the staging buffer holds the piece");
            let staged = if fortran {
                staged.reversed_axes()
            } else {
                staged
            };
            let staged = staged
                .into_dimensionality::<D>()
                .expect("the piece's own number of dimensions");
            self.local_mut().assign(&staged);
        }
        Ok(())
    }

    /// The file view selecting this rank's elements (in the file's order).
    fn file_view(&self, fortran: bool) -> Result<FileView> {
        if self.local().is_empty() {
            return Ok(FileView::bytes());
        }
        let runs = self.runs_of(self.comm.rank());
        FileView::select(std::mem::size_of::<T>(), self.shape.slice(), &runs, fortran)
    }

    /// `rank`'s indices along every axis, as runs.
    fn runs_of(&self, rank: usize) -> Vec<AxisRuns> {
        let extents = self.shape.slice();
        (0..extents.len())
            .map(|axis| axis_runs(&self.layout, rank, axis, extents[axis]))
            .collect()
    }

    /// This rank's (first byte, bytes) in the file's data when **every** rank's elements are
    /// one run of bytes there (a block split of the outermost axes): each rank can then read
    /// or write its span alone. `None` when some rank's elements are scattered (the file view
    /// and collective calls are needed then). Every rank gets the same answer.
    pub(super) fn contiguous_span(&self, fortran: bool) -> Option<(u64, usize)> {
        let item = std::mem::size_of::<T>();
        let extents = self.shape.slice();
        let mut mine = None;
        for rank in 0..self.comm.size() {
            let runs = self.runs_of(rank);
            let span = if runs.iter().any(Vec::is_empty) {
                Some((0, 0))
            } else {
                one_span(item, extents, &runs, fortran)
            };
            if rank == self.comm.rank() {
                mine = span;
            }
            span?;
        }
        mine
    }

    /// The bytes of the largest rank's piece: every rank joins as many collective rounds as
    /// that rank needs.
    fn largest_piece_bytes(&self) -> usize {
        (0..self.comm.size())
            .map(|r| self.layout.piece_shape(&self.shape, r).size())
            .max()
            .unwrap_or(0)
            * std::mem::size_of::<T>()
    }
}

/// The header of the `.npy` at `path`, checked by the root against `T`, `D` and the file's
/// size and shared with every rank (the same `Err` everywhere if anything is wrong).
fn shared_header<T: WritableElement, D: Dimension>(
    comm: &Comm,
    path: &Path,
    op: &str,
) -> Result<npy::NpyHeader> {
    let mut header = npy::NpyHeader {
        descr: String::new(),
        fortran_order: false,
        shape: Vec::new(),
        data_offset: 0,
    };
    let mut root_error = None;
    if comm.rank() == 0 {
        match inspect::<T, D>(path, std::mem::size_of::<T>()) {
            Ok(h) => header = h,
            Err(e) => root_error = Some(e.prefixed(op)),
        }
    }
    let lead = [
        usize::from(header.fortran_order),
        header.data_offset as usize,
        header.shape.len(),
    ];
    let [fortran, data_offset, ndim] = comm.announce_from_root(0, lead, root_error)?;
    header.shape.resize(ndim, 0);
    comm.broadcast_vec(0, &mut header.shape)?;
    header.fortran_order = fortran == 1;
    header.data_offset = data_offset as u64;
    header.descr = dtype::<T>();
    Ok(header)
}

/// `Config` unless `T`'s memory is its `.npy` data (little-endian fixed-size numbers).
fn supported<T: 'static>(op: &str) -> Result<()> {
    if is_plain_number::<T>() {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::Config,
            format!(
                "{op}: {} cannot be moved as raw .npy bytes; single-file .npy supports \
                 f32, f64, i8-i64 and u8-u64",
                std::any::type_name::<T>()
            ),
        ))
    }
}

/// The agreement key of a path.
pub(super) fn path_key(path: &Path) -> i64 {
    fingerprint(path.as_os_str().as_encoded_bytes().iter().copied())
}

/// `.NAME.spmd-partial` beside `path`.
pub(super) fn partial_name(path: &Path) -> Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| Error::new(ErrorKind::Io, format!("{} names no file", path.display())))?;
    let mut partial = std::ffi::OsString::from(".");
    partial.push(name);
    partial.push(".spmd-partial");
    Ok(path.with_file_name(partial))
}

/// Root: the header of the `.npy` at `path`, checked against `T`, `D` and the file's size.
fn inspect<T: WritableElement, D: Dimension>(path: &Path, item: usize) -> Result<npy::NpyHeader> {
    let shown = path.display();
    let fail = |what: String| Error::new(ErrorKind::Io, format!("{shown}: {what}"));
    let mut file =
        std::fs::File::open(path).map_err(|e| Error::io(format!("cannot open {shown}"), e))?;
    let size = file
        .metadata()
        .map_err(|e| Error::io(format!("cannot read {shown}"), e))?
        .len();
    let header = npy::read_header(&mut file).map_err(fail)?;
    let expected = dtype::<T>();
    if super::checkpoint::bare_descr(&header.descr) != expected {
        return Err(fail(format!(
            "holds elements of type '{}', not '{expected}' ({})",
            header.descr,
            std::any::type_name::<T>()
        )));
    }
    if let Some(ndim) = D::NDIM {
        if header.shape.len() != ndim {
            return Err(fail(format!(
                "holds a {}-dimensional array of shape {:?}, not {ndim}-dimensional",
                header.shape.len(),
                header.shape
            )));
        }
    }
    let needed = header
        .file_size(item)
        .ok_or_else(|| fail(format!("a shape of {:?} is too large", header.shape)))?;
    if size != needed {
        let state = if size < needed {
            "truncated"
        } else {
            "longer than its header says"
        };
        return Err(fail(format!(
            "{state}: {size} bytes, the header's shape {:?} of '{expected}' needs {needed}",
            header.shape
        )));
    }
    Ok(header)
}

/// The indices `rank` holds along `axis` (of `extent`) as regular groups of runs.
fn axis_runs(layout: &Layout, rank: usize, axis: usize, extent: usize) -> AxisRuns {
    match layout.coord_along(rank, axis) {
        None => one_run(0, extent),
        Some((coord, partition)) => match partition.distribution() {
            Distribution::Block => {
                let range = partition.range(coord);
                one_run(range.start, range.len())
            }
            Distribution::Cyclic => round_robin(coord, 1, partition.parts(), extent),
            Distribution::BlockCyclic(b) => round_robin(coord, b, partition.parts(), extent),
        },
    }
}

/// The (first byte, bytes) of the elements `runs` select in an array of `extents` stored in
/// C (or Fortran) order, when they are one run of bytes.
fn one_span(
    item: usize,
    extents: &[usize],
    runs: &[AxisRuns],
    fortran: bool,
) -> Option<(u64, usize)> {
    let mut inner_to_outer: Vec<usize> = (0..extents.len()).collect();
    if !fortran {
        inner_to_outer.reverse();
    }
    let (mut step, mut first, mut len) = (item as u64, 0_u64, None);
    for &axis in &inner_to_outer {
        let range = interval(&runs[axis])?;
        match len {
            // Inner axes taken whole, this one a range: the run's length is settled.
            None if range.len() != extents[axis] => len = Some(range.len() as u64 * step),
            None => {}
            // Outside the run, one index per axis.
            Some(_) if range.len() != 1 => return None,
            Some(_) => {}
        }
        first += range.start as u64 * step;
        step *= extents[axis] as u64;
    }
    Some((first, usize::try_from(len.unwrap_or(step)).ok()?))
}

/// The groups as one interval of indices, if they are one.
fn interval(runs: &AxisRuns) -> Option<std::ops::Range<usize>> {
    let mut whole: Option<std::ops::Range<usize>> = None;
    for g in runs {
        if g.count > 1 && g.stride != g.len {
            return None;
        }
        let part = g.start..g.start + g.len * g.count;
        whole = match whole {
            None => Some(part),
            Some(w) if w.end == part.start => Some(w.start..part.end),
            Some(_) => return None,
        };
    }
    whole
}

/// `len` indices from `start`, cut into runs of at most [`RUN_MAX`].
fn one_run(start: usize, len: usize) -> AxisRuns {
    let (full, rest) = (len / RUN_MAX, len % RUN_MAX);
    let mut runs = Vec::new();
    if full > 0 {
        runs.push(RunGroup {
            start,
            len: RUN_MAX,
            count: full,
            stride: RUN_MAX,
        });
    }
    if rest > 0 {
        runs.push(RunGroup {
            start: start + full * RUN_MAX,
            len: rest,
            count: 1,
            stride: rest,
        });
    }
    runs
}

/// The blocks of `b` indices dealt round-robin to `parts` ranks that `coord` holds out of
/// `extent`: the full blocks, then the partial last one if it is this rank's.
fn round_robin(coord: usize, b: usize, parts: usize, extent: usize) -> AxisRuns {
    let first_end = (coord + 1) * b;
    let full = if extent >= first_end {
        (extent - first_end) / (parts * b) + 1
    } else {
        0
    };
    let mut runs = Vec::new();
    if full > 0 {
        runs.push(RunGroup {
            start: coord * b,
            len: b,
            count: full,
            stride: parts * b,
        });
    }
    let next = (full * parts + coord) * b;
    if next < extent {
        runs.push(RunGroup {
            start: next,
            len: extent - next,
            count: 1,
            stride: extent - next,
        });
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition::Partition;

    /// Every index the groups name, in order.
    fn expand(runs: &AxisRuns) -> Vec<usize> {
        runs.iter()
            .flat_map(|g| {
                (0..g.count).flat_map(move |k| (0..g.len).map(move |i| g.start + k * g.stride + i))
            })
            .collect()
    }

    #[test]
    fn runs_name_exactly_the_partitions_indices() {
        for extent in 0..40 {
            for parts in 1..6 {
                for b in 1..7 {
                    let p = Partition::block_cyclic(extent, parts, b).unwrap();
                    for coord in 0..parts {
                        let expected: Vec<usize> = p.global_indices(coord).collect();
                        assert_eq!(
                            expand(&round_robin(coord, b, parts, extent)),
                            expected,
                            "n={extent} P={parts} b={b} r={coord}"
                        );
                    }
                }
            }
        }
        let long = one_run(5, 2 * RUN_MAX + 3);
        assert_eq!(long.len(), 2);
        assert_eq!(
            (long[0].count, long[1].start, long[1].len),
            (2, 5 + 2 * RUN_MAX, 3)
        );
    }

    #[test]
    fn spans_are_found_only_for_one_run_of_bytes() {
        let whole = |n: usize| one_run(0, n);
        let part = |a: usize, b: usize| one_run(a, b - a);
        // Rows 1..3 of a 4 x 5 C-order array: one run after the first row.
        assert_eq!(
            one_span(8, &[4, 5], &[part(1, 3), whole(5)], false),
            Some((40, 80))
        );
        // Columns 1..3: scattered in C order, one run in Fortran order.
        assert_eq!(one_span(8, &[4, 5], &[whole(4), part(1, 3)], false), None);
        assert_eq!(
            one_span(8, &[4, 5], &[whole(4), part(1, 3)], true),
            Some((32, 64))
        );
        // One index of the outer axis, a range of the middle one, all of the inner one.
        assert_eq!(
            one_span(4, &[2, 3, 4], &[part(1, 2), part(1, 3), whole(4)], false),
            Some((64, 32))
        );
        assert_eq!(
            one_span(4, &[2, 3, 4], &[whole(2), part(1, 3), whole(4)], false),
            None
        );
        // Cyclic rows are never one run.
        assert_eq!(
            one_span(8, &[9, 2], &[round_robin(0, 1, 2, 9), whole(2)], false),
            None
        );
        assert_eq!(
            one_span(8, &[4, 5], &[whole(4), whole(5)], false),
            Some((0, 160))
        );
    }

    #[test]
    fn partial_names_stay_beside_the_target() {
        assert_eq!(
            partial_name(Path::new("out/field.npy")).unwrap(),
            Path::new("out/.field.npy.spmd-partial")
        );
        assert!(partial_name(Path::new("/")).is_err());
    }
}
