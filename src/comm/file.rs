//! MPI-IO: one file opened by every rank of a communicator, each rank reading or writing its
//! own scattered part of it through a file view. rsmpi has no MPI-IO, so this is a thin safe
//! layer over mpi-sys.
//!
//! Every call returns MPI's error code as a readable [`Error`] on the rank where it happened;
//! MPI-IO's default error handler returns codes rather than aborting. The callers (the
//! array's `.npy` writer and reader) share each outcome with every rank before the next
//! collective step, so a failure is the same `Err` everywhere and never a hang.
//!
//! A rank's part of the file is described by [`AxisRuns`], one per axis of a C-order (or
//! Fortran-order) array: the indices it holds along that axis as at most a few regular groups
//! of equal runs. That is exact for block, cyclic and block-cyclic splits and keeps the MPI
//! datatype small whatever the array's size (no list of every element's offset).

use std::ffi::CString;
use std::os::raw::{c_char, c_int, c_void};
use std::path::Path;

use mpi::ffi;

use super::ffi::{comm_handle, empty_status, MPI_Datatype};
use crate::comm::Comm;
use crate::error::{Error, ErrorKind, Result};

/// The most bytes one collective read or write moves per rank: MPI counts are `int`, so a
/// larger part goes in several rounds (every rank takes part in every round).
pub(crate) const ROUND_BYTES: usize = 1 << 30;

/// How a file is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FileMode {
    /// Created if missing, write only.
    Create,
    /// Read only; the file must exist.
    Read,
}

/// A file open on every rank of a communicator; closed (collectively) by [`close`](Self::close).
pub(crate) struct ParallelFile {
    handle: ffi::MPI_File,
    path: String,
}

/// One regular group of runs along an axis: `count` runs of `len` consecutive indices, the
/// first starting at `start`, each `stride` after the previous.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RunGroup {
    /// The first run's first index.
    pub start: usize,
    /// Indices per run.
    pub len: usize,
    /// Number of runs.
    pub count: usize,
    /// Distance between the starts of two runs, in indices.
    pub stride: usize,
}

/// The indices a rank holds along one axis, in increasing order, as regular groups.
pub(crate) type AxisRuns = Vec<RunGroup>;

/// The text of MPI error `code`.
fn mpi_error_text(code: c_int) -> String {
    let mut text = vec![0 as c_char; ffi::MPI_MAX_ERROR_STRING as usize + 1];
    let mut len: c_int = 0;
    // SAFETY: `text` has room for MPI_MAX_ERROR_STRING characters and the terminator, as the
    // standard requires; `len` receives how many were written.
    let rc = unsafe { ffi::MPI_Error_string(code, text.as_mut_ptr(), &mut len) };
    if rc != 0 {
        return format!("MPI error {code}");
    }
    let bytes: Vec<u8> = text[..len.clamp(0, text.len() as c_int) as usize]
        .iter()
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).trim().to_owned()
}

/// `Ok` for `MPI_SUCCESS`, else an `Io` error saying which call failed on which file.
fn check(rc: c_int, call: &str, path: &str) -> Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::Io,
            format!("{call} on {path} failed: {}", mpi_error_text(rc)),
        ))
    }
}

impl ParallelFile {
    /// Opens `path` on every rank of `comm` (collective; every rank passes the same path).
    pub(crate) fn open(comm: &Comm, path: &Path, mode: FileMode) -> Result<ParallelFile> {
        let shown = path.display().to_string();
        let name = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| {
            Error::new(
                ErrorKind::Io,
                format!("{shown}: a file name cannot hold a NUL byte"),
            )
        })?;
        let amode = match mode {
            FileMode::Create => ffi::MPI_MODE_CREATE | ffi::MPI_MODE_WRONLY,
            FileMode::Read => ffi::MPI_MODE_RDONLY,
        } as c_int;
        // SAFETY: a predefined handle mpi-sys exports as an immutable static.
        let mut handle = unsafe { ffi::RSMPI_FILE_NULL };
        // SAFETY: `name` is a NUL-terminated string that outlives the call; the communicator
        // handle is valid while `comm` lives; MPI writes the new handle into `handle`.
        let rc = unsafe {
            ffi::MPI_File_open(
                comm_handle(comm),
                name.as_ptr(),
                amode,
                ffi::RSMPI_INFO_NULL,
                &mut handle,
            )
        };
        check(rc, "MPI_File_open", &shown)?;
        Ok(ParallelFile {
            handle,
            path: shown,
        })
    }

    /// Sets the file's size to `bytes` (collective): a stale longer file is cut, a short one
    /// extended.
    pub(crate) fn set_size(&self, bytes: u64) -> Result<()> {
        let size = offset(bytes, &self.path)?;
        // SAFETY: an open file handle; collective with the same size on every rank.
        let rc = unsafe { ffi::MPI_File_set_size(self.handle, size) };
        check(rc, "MPI_File_set_size", &self.path)
    }

    /// Writes `bytes` at byte `at` from this rank alone (not collective), e.g. a header.
    pub(crate) fn write_at(&self, at: u64, bytes: &[u8]) -> Result<()> {
        // SAFETY: `bytes` is valid for reading `bytes.len()` bytes for the whole call.
        unsafe { self.write_span(at, bytes.as_ptr(), bytes.len()) }
    }

    /// Writes `len` bytes from `data` at byte `at` of the file, from this rank alone (not
    /// collective; the default view: bytes from offset 0), in calls of at most
    /// [`ROUND_BYTES`].
    ///
    /// # Safety
    /// `data` must be valid for reading `len` bytes for the whole call.
    pub(crate) unsafe fn write_span(&self, at: u64, data: *const u8, len: usize) -> Result<()> {
        for round in 0..rounds_for(len) {
            let (from, count) = round_span(round, len);
            let mut status = empty_status();
            // SAFETY: the caller guarantees `data` holds `len` bytes; `from + count <= len`
            // and `count <= ROUND_BYTES` fits an int.
            let rc = unsafe {
                ffi::MPI_File_write_at(
                    self.handle,
                    offset(at + from as u64, &self.path)?,
                    data.add(from).cast::<c_void>(),
                    count as c_int,
                    ffi::RSMPI_UINT8_T,
                    &mut status,
                )
            };
            check(rc, "MPI_File_write_at", &self.path)?;
        }
        Ok(())
    }

    /// Reads `len` bytes at byte `at` of the file into `data`, from this rank alone; a file
    /// that ends first is an error.
    ///
    /// # Safety
    /// `data` must be valid for writing `len` bytes for the whole call.
    pub(crate) unsafe fn read_span(&self, at: u64, data: *mut u8, len: usize) -> Result<()> {
        for round in 0..rounds_for(len) {
            let (from, count) = round_span(round, len);
            let mut status = empty_status();
            // SAFETY: as `write_span`, for writing.
            let rc = unsafe {
                ffi::MPI_File_read_at(
                    self.handle,
                    offset(at + from as u64, &self.path)?,
                    data.add(from).cast::<c_void>(),
                    count as c_int,
                    ffi::RSMPI_UINT8_T,
                    &mut status,
                )
            };
            check(rc, "MPI_File_read_at", &self.path)?;
            short_read(&status, count, &self.path)?;
        }
        Ok(())
    }

    /// Makes this rank see, from byte `start`, only the bytes `view` selects (collective).
    pub(crate) fn set_view(&self, start: u64, view: &FileView) -> Result<()> {
        let native = b"native\0";
        // SAFETY: an open file handle; `view.datatype` is a committed datatype (or MPI_BYTE)
        // alive for the call; "native" is NUL-terminated.
        let rc = unsafe {
            ffi::MPI_File_set_view(
                self.handle,
                offset(start, &self.path)?,
                ffi::RSMPI_UINT8_T,
                view.datatype,
                native.as_ptr().cast::<c_char>(),
                ffi::RSMPI_INFO_NULL,
            )
        };
        check(rc, "MPI_File_set_view", &self.path)
    }

    /// Writes `len` bytes from `data` through the view, collectively, in `rounds` calls
    /// (every rank passes the same `rounds`, enough for the largest part). A failing round is
    /// remembered and the remaining rounds are still joined with nothing to write, so no rank
    /// is left waiting in a collective call.
    ///
    /// # Safety
    /// `data` must be valid for reading `len` bytes for the whole call.
    pub(crate) unsafe fn write_all(
        &self,
        data: *const u8,
        len: usize,
        rounds: usize,
    ) -> Result<()> {
        let mut outcome = Ok(());
        for round in 0..rounds {
            let (from, count) = round_span(round, len);
            let count = if outcome.is_ok() { count } else { 0 };
            let mut status = empty_status();
            // SAFETY: the caller guarantees `data` holds `len` bytes; `from + count <= len`.
            let rc = unsafe {
                ffi::MPI_File_write_all(
                    self.handle,
                    data.add(from).cast::<c_void>(),
                    count as c_int,
                    ffi::RSMPI_UINT8_T,
                    &mut status,
                )
            };
            if outcome.is_ok() {
                outcome = check(rc, "MPI_File_write_all", &self.path);
            }
        }
        outcome
    }

    /// Reads `len` bytes into `data` through the view, collectively; rounds as
    /// [`write_all`](Self::write_all).
    ///
    /// # Safety
    /// `data` must be valid for writing `len` bytes for the whole call.
    pub(crate) unsafe fn read_all(&self, data: *mut u8, len: usize, rounds: usize) -> Result<()> {
        let mut outcome = Ok(());
        for round in 0..rounds {
            let (from, count) = round_span(round, len);
            let count = if outcome.is_ok() { count } else { 0 };
            let mut status = empty_status();
            // SAFETY: the caller guarantees `data` has room for `len` bytes; `from + count <= len`.
            let rc = unsafe {
                ffi::MPI_File_read_all(
                    self.handle,
                    data.add(from).cast::<c_void>(),
                    count as c_int,
                    ffi::RSMPI_UINT8_T,
                    &mut status,
                )
            };
            if outcome.is_ok() {
                outcome = check(rc, "MPI_File_read_all", &self.path)
                    .and_then(|()| short_read(&status, count, &self.path));
            }
        }
        outcome
    }

    /// Closes the file (collective).
    pub(crate) fn close(mut self) -> Result<()> {
        // SAFETY: an open handle, closed once (`self` is consumed; Drop sees FILE_NULL).
        let rc = unsafe { ffi::MPI_File_close(&mut self.handle) };
        check(rc, "MPI_File_close", &self.path)
    }
}

impl Drop for ParallelFile {
    fn drop(&mut self) {
        // SAFETY: reading a predefined handle.
        let null = unsafe { ffi::RSMPI_FILE_NULL };
        if self.handle != null {
            // Only reached when a caller returned early; every rank does the same then (the
            // callers share outcomes before each collective step), so the collective close
            // matches.
            // SAFETY: an open handle, closed once.
            unsafe { ffi::MPI_File_close(&mut self.handle) };
        }
    }
}

/// An error if the read that filled `status` brought fewer than `count` bytes.
fn short_read(status: &ffi::MPI_Status, count: usize, path: &str) -> Result<()> {
    let mut got: c_int = 0;
    // SAFETY: `status` was filled by a completed read; MPI_Get_count only reads it.
    unsafe { ffi::MPI_Get_count(status, ffi::RSMPI_UINT8_T, &mut got) };
    if got as usize == count {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::Io,
            format!("{path}: {got} bytes read where {count} were expected: the file is shorter than its header says"),
        ))
    }
}

/// Round `round`'s first byte and byte count in a part of `len` bytes.
fn round_span(round: usize, len: usize) -> (usize, usize) {
    let from = (round * ROUND_BYTES).min(len);
    (from, (len - from).min(ROUND_BYTES))
}

/// Rounds needed for a part of `len` bytes (0 for none).
pub(crate) fn rounds_for(len: usize) -> usize {
    len.div_ceil(ROUND_BYTES)
}

/// `bytes` as an `MPI_Offset`.
fn offset(bytes: u64, path: &str) -> Result<ffi::MPI_Offset> {
    ffi::MPI_Offset::try_from(bytes).map_err(|_| {
        Error::new(
            ErrorKind::CountOverflow,
            format!("{path}: offset {bytes} does not fit MPI_Offset"),
        )
    })
}

/// The MPI datatype selecting one rank's bytes of a file holding an array; freed on drop.
pub(crate) struct FileView {
    datatype: MPI_Datatype,
    owned: bool,
}

impl FileView {
    /// Every byte (for a rank with nothing to move).
    pub(crate) fn bytes() -> FileView {
        FileView {
            // SAFETY: a predefined handle mpi-sys exports as an immutable static.
            datatype: unsafe { ffi::RSMPI_UINT8_T },
            owned: false,
        }
    }

    /// The bytes of the elements at the product of `runs` (one per axis) in an array of
    /// `extents` with `item`-byte elements stored with the last axis fastest, or the first
    /// when `fortran`. Every axis must select at least one index.
    pub(crate) fn select(
        item: usize,
        extents: &[usize],
        runs: &[AxisRuns],
        fortran: bool,
    ) -> Result<FileView> {
        let order: Vec<usize> = if fortran {
            (0..extents.len()).collect()
        } else {
            (0..extents.len()).rev().collect()
        };
        let too_big = |what: &str| {
            Error::new(
                ErrorKind::CountOverflow,
                format!("a file view with {what} above MPI's int range"),
            )
        };
        let int = |n: usize, what: &str| c_int::try_from(n).map_err(|_| too_big(what));
        let aint = |n: usize| ffi::MPI_Aint::try_from(n).map_err(|_| too_big("a byte offset"));
        let mut owned = Vec::new();
        let mut current = null_type();
        // SAFETY (for every call below): the input handles are valid datatypes made here or
        // predefined; MPI writes each new handle into the out-pointer; each made datatype is
        // recorded in `owned` and freed below once the committed result no longer needs it.
        unsafe {
            check_type(ffi::MPI_Type_contiguous(
                int(item, "an element size")?,
                ffi::RSMPI_UINT8_T,
                &mut current,
            ))?;
            owned.push(current);
            let mut step = item; // bytes between consecutive indices along the axis
            for &axis in &order {
                let mut resized = null_type();
                check_type(ffi::MPI_Type_create_resized(
                    current,
                    0,
                    aint(step)?,
                    &mut resized,
                ))?;
                owned.push(resized);
                let mut groups = Vec::new();
                let mut displacements = Vec::new();
                for group in runs[axis].iter().filter(|g| g.count > 0 && g.len > 0) {
                    let mut vector = null_type();
                    check_type(ffi::MPI_Type_create_hvector(
                        int(group.count, "a run count")?,
                        int(group.len, "a run length")?,
                        aint(
                            group
                                .stride
                                .checked_mul(step)
                                .ok_or_else(|| too_big("a stride"))?,
                        )?,
                        resized,
                        &mut vector,
                    ))?;
                    owned.push(vector);
                    groups.push(vector);
                    displacements.push(aint(
                        group
                            .start
                            .checked_mul(step)
                            .ok_or_else(|| too_big("an offset"))?,
                    )?);
                }
                let lengths = vec![1 as c_int; groups.len()];
                let mut combined = null_type();
                check_type(ffi::MPI_Type_create_struct(
                    int(groups.len(), "a group count")?,
                    lengths.as_ptr(),
                    displacements.as_ptr(),
                    groups.as_ptr(),
                    &mut combined,
                ))?;
                owned.push(combined);
                current = combined;
                step = step
                    .checked_mul(extents[axis])
                    .ok_or_else(|| too_big("an array size"))?;
            }
            // The whole array's extent, so the view's tiling starts after the array.
            let mut whole = null_type();
            check_type(ffi::MPI_Type_create_resized(
                current,
                0,
                aint(step)?,
                &mut whole,
            ))?;
            check_type(ffi::MPI_Type_commit(&mut whole))?;
            for mut made in owned {
                ffi::MPI_Type_free(&mut made);
            }
            Ok(FileView {
                datatype: whole,
                owned: true,
            })
        }
    }
}

impl Drop for FileView {
    fn drop(&mut self) {
        if self.owned {
            // SAFETY: a datatype made and committed by `select`, freed once.
            unsafe { ffi::MPI_Type_free(&mut self.datatype) };
        }
    }
}

/// `MPI_DATATYPE_NULL` (a pointer under Open MPI, an integer under MPICH): the initial value
/// of a handle MPI fills in.
fn null_type() -> MPI_Datatype {
    // SAFETY: a predefined handle mpi-sys exports as an immutable static.
    unsafe { ffi::RSMPI_DATATYPE_NULL }
}

/// `Ok` for a datatype constructor's success.
fn check_type(rc: c_int) -> Result<()> {
    check(rc, "building the MPI file view", "a datatype")
}
