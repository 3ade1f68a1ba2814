//! The fast path of `load`: when the part of a saved piece that a rank needs is one contiguous
//! run of bytes in the file and of the rank's own piece (a block split along the first axis,
//! saved and loaded with the same or another rank count), the bytes are read straight into the
//! array's memory. The rest of the file is still read through a small buffer, since the CRC-32
//! covers the whole file. Only plain number types take this path: any bytes are a valid value
//! of those, so a damaged file is caught by the checksum after the read, never by UB.

use std::any::TypeId;
use std::io::Read;
use std::ops::Range;
use std::path::Path;

use ndarray::{ArrayViewMut, Axis, Dimension, Slice};

use super::super::blocks::Selection;
use super::super::npy::{read_header, NpyHeader};
use super::super::split::Indices;
use super::{corrupt, io, CrcReader};
use crate::error::Result;

/// Whether `T`'s in-memory bytes are its `.npy` bytes and every bit pattern is a value.
pub(crate) fn is_plain_number<T: 'static>() -> bool {
    if cfg!(target_endian = "big") {
        return false;
    }
    [
        TypeId::of::<f32>(),
        TypeId::of::<f64>(),
        TypeId::of::<i8>(),
        TypeId::of::<i16>(),
        TypeId::of::<i32>(),
        TypeId::of::<i64>(),
        TypeId::of::<u8>(),
        TypeId::of::<u16>(),
        TypeId::of::<u32>(),
        TypeId::of::<u64>(),
    ]
    .contains(&TypeId::of::<T>())
}

/// Per axis, the range a selection picks from a piece of shape `dims` (axes the selection
/// does not name are whole), or `None` if some axis picks a list.
fn ranges(selection: &Selection, dims: &[usize]) -> Option<Vec<Range<usize>>> {
    let mut ranges: Vec<Range<usize>> = dims.iter().map(|&n| 0..n).collect();
    for (axis, indices) in selection {
        match indices {
            Indices::Range(r) => *ranges.get_mut(*axis)? = r.clone(),
            Indices::List(_) => return None,
        }
    }
    Some(ranges)
}

/// The element range that `ranges` covers in a C-order piece of shape `dims`, if it is one
/// contiguous run: every axis after the last partial one is whole, every axis before it has
/// one index.
fn contiguous_run(ranges: &[Range<usize>], dims: &[usize]) -> Option<Range<usize>> {
    let last_partial = (0..dims.len())
        .rev()
        .find(|&k| ranges[k] != (0..dims[k]))
        .unwrap_or(0);
    if ranges[..last_partial].iter().any(|r| r.len() != 1) {
        return None;
    }
    let mut stride = 1;
    let mut start = 0;
    for k in (0..dims.len()).rev() {
        start += ranges[k].start * stride;
        stride *= dims[k];
    }
    let len: usize = ranges.iter().map(Range::len).product();
    Some(start..start + len)
}

/// A saved piece: its file, its shape, its element type and the CRC-32 the manifest recorded.
pub(super) struct SavedPiece<'a> {
    pub path: &'a Path,
    pub dims: &'a [usize],
    pub descr: &'a str,
    pub crc32: Option<u32>,
}

/// Reads the block `in_saved` of `piece` straight into the block `in_mine` of `target`,
/// checking the whole file's CRC-32. Returns `Ok(false)`, having read nothing, when either
/// block is not one contiguous run (the caller then takes the general path).
pub(super) fn read_block<T: 'static, D: Dimension>(
    piece: &SavedPiece<'_>,
    (in_saved, in_mine): (&Selection, &Selection),
    target: ArrayViewMut<'_, T, D>,
) -> Result<bool> {
    debug_assert!(is_plain_number::<T>());
    let path = piece.path;
    let mut target = target;
    let Some(mine) = ranges(in_mine, target.shape()) else {
        return Ok(false);
    };
    for (axis, r) in mine.iter().enumerate() {
        target.slice_axis_inplace(Axis(axis), Slice::from(r.clone()));
    }
    let Some(destination) = target.as_slice_mut() else {
        return Ok(false);
    };
    let Some(run) = ranges(in_saved, piece.dims)
        .and_then(|saved| contiguous_run(&saved, piece.dims))
        .filter(|run| run.len() == destination.len())
    else {
        return Ok(false);
    };
    let opened = std::fs::File::open(path).map_err(|e| io("read", path, e))?;
    let mut input = CrcReader {
        inner: opened,
        crc: crc32fast::Hasher::new(),
    };
    let header =
        read_header(&mut input).map_err(|e| corrupt(format!("{}: {e}", path.display())))?;
    if !is_plain(&header, piece) {
        return Err(corrupt(format!(
            "{} no longer matches the manifest (its header changed during the load)",
            path.display()
        )));
    }
    let item = std::mem::size_of::<T>();
    // SAFETY: `destination` is an initialised `&mut [T]`, and T is a plain number type
    // (`is_plain_number`): its bytes may be viewed and overwritten as `u8`s with any values,
    // all of which are valid `T`s. The byte view borrows `destination` for its lifetime.
    let bytes = unsafe {
        std::slice::from_raw_parts_mut(
            destination.as_mut_ptr().cast::<u8>(),
            std::mem::size_of_val(destination),
        )
    };
    let mut scratch = vec![0_u8; 1 << 20];
    skip(&mut input, (run.start * item) as u64, &mut scratch).map_err(|e| io("read", path, e))?;
    input.read_exact(bytes).map_err(|e| io("read", path, e))?;
    // The rest of the file, trailing bytes included, is part of the checksum.
    skip(&mut input, u64::MAX, &mut scratch).map_err(|e| io("read", path, e))?;
    if let Some(expected) = piece.crc32 {
        let found = input.crc.finalize();
        if found != expected {
            return Err(super::altered(path, found, expected));
        }
    }
    Ok(true)
}

/// Whether `header` describes the C-order data of `piece`'s type and shape (as the root's
/// inspection found it).
fn is_plain(header: &NpyHeader, piece: &SavedPiece<'_>) -> bool {
    !header.fortran_order && header.descr == piece.descr && header.shape == piece.dims
}

/// Reads and discards up to `count` bytes (to the end of the input if it is shorter when
/// `count` is `u64::MAX`; otherwise a short input is an error).
fn skip(input: &mut impl Read, count: u64, scratch: &mut [u8]) -> std::io::Result<()> {
    let mut left = count;
    while left > 0 {
        let want = scratch
            .len()
            .min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = input.read(&mut scratch[..want])?;
        if n == 0 {
            if count == u64::MAX {
                return Ok(());
            }
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        left -= n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguous_runs_in_c_order() {
        let dims = [4, 3, 2];
        // Rows 1..3 whole: elements 6..18.
        assert_eq!(contiguous_run(&[1..3, 0..3, 0..2], &dims), Some(6..18));
        // One row, columns 1..3 whole: row 2 starts at 12, column 1 at +2.
        assert_eq!(contiguous_run(&[2..3, 1..3, 0..2], &dims), Some(14..18));
        // Two rows, part of the columns: two runs, not one.
        assert_eq!(contiguous_run(&[1..3, 1..3, 0..2], &dims), None);
        // Whole piece.
        assert_eq!(contiguous_run(&[0..4, 0..3, 0..2], &dims), Some(0..24));
        // Partial last axis in a single row and column.
        assert_eq!(contiguous_run(&[3..4, 2..3, 1..2], &dims), Some(23..24));
    }

    #[test]
    fn only_plain_numbers_take_the_direct_path() {
        assert!(is_plain_number::<f64>() && is_plain_number::<u8>());
        assert!(!is_plain_number::<bool>() && !is_plain_number::<(f64, f64)>());
    }
}
