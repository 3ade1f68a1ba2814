//! Single-file checkpoints (manifest version 4): the global array as one `.npy` that NumPy
//! opens, written by every rank at once, and a manifest holding what that file cannot: the
//! split and rank count it was saved with, the format version, and a CRC-32 of every 64 MiB
//! chunk of the data.
//!
//! Checksums are per chunk of the file, not per saving rank: a restart at another rank count
//! reads other pieces than were written, and chunks of the file are what any reader can check.
//! Saving and loading both move the data as row blocks (each rank one run of the file, written
//! or read at its offset) so that each rank checksums the bytes it holds: a save as it writes
//! them (each part summed just before it is written, while it is in cache), a load in one
//! parallel pass after reading. The root joins the pieces of a chunk that straddles two ranks
//! (`crc32fast`'s `combine`).

use std::path::Path;

use ndarray::{Dimension, RemoveAxis};
use ndarray_npy::{ReadableElement, WritableElement};
use rayon::prelude::*;

use super::super::npy_file::plain_bytes;
use super::super::{DistArray, Element, NpyOrder, Split};
use super::manifest::{corrupt, Manifest};
use crate::comm::Comm;
use crate::error::Result;

/// The data file's name inside a version directory.
pub(crate) const DATA_FILE: &str = "array.npy";
/// Bytes per checksummed chunk of the data (the last may be shorter).
pub(crate) const CHUNK_BYTES: u64 = 64 << 20;

impl<T, D> DistArray<T, D>
where
    T: Element + WritableElement + ReadableElement,
    D: Dimension + RemoveAxis,
{
    /// The array as row blocks: itself when each rank's elements are already one run of the
    /// file, else redistributed.
    fn as_row_blocks(&self) -> Result<std::borrow::Cow<'_, DistArray<T, D>>> {
        if self.ghosts == 0 && self.contiguous_span(false).is_some() {
            Ok(std::borrow::Cow::Borrowed(self))
        } else {
            self.redistribute(Split::block(0))
                .map(std::borrow::Cow::Owned)
        }
    }

    /// Writes the data file into `version_dir`; returns, on the root, the CRC-32 of every chunk.
    /// Each part is checksummed just before it is written, while it is in cache.
    pub(super) fn write_single(&self, version_dir: &Path) -> Result<Option<Vec<u32>>> {
        let rows = self.as_row_blocks()?;
        let mut sums = StreamingSums::default();
        rows.write_npy_observed(
            &version_dir.join(DATA_FILE),
            NpyOrder::C,
            Some(&mut |at, bytes| sums.add(at, bytes)),
        )?;
        rows.join_on_root(&sums.records())
    }

    /// Every rank's chunk-piece records joined into the chunks' CRC-32s on the root.
    fn join_on_root(&self, records: &[u64]) -> Result<Option<Vec<u32>>> {
        let gathered = self.comm.gather_varcount(0, records)?;
        let total = (self.shape.size() * std::mem::size_of::<T>()) as u64;
        Ok(gathered.map(|all| join(all.as_slice(), total)))
    }

    /// This rank's pieces of the chunk checksums, joined on the root (`None` elsewhere).
    fn chunk_checksums(&self) -> Result<Option<Vec<u32>>> {
        let (at, len) = self
            .contiguous_span(false)
            .expect("row blocks are runs of the file");
        let piece = self.local();
        let values = piece
            .as_slice()
            .expect("a row block without ghosts is contiguous");
        // SAFETY: `values` holds plain numbers (write_npy refused any other type).
        let bytes = unsafe { plain_bytes(values) };
        debug_assert_eq!(bytes.len(), len);
        self.join_on_root(&segments(bytes, at))
    }

    /// Loads a version-4 checkpoint whose manifest the root checked against its data file, as
    /// an array split by `split`, verifying every chunk's CRC-32.
    pub(super) fn load_single(
        comm: &Comm,
        manifest: &Manifest,
        version_dir: &Path,
        shape: D,
        split: Split,
    ) -> Result<DistArray<T, D>> {
        let path = version_dir.join(DATA_FILE);
        let mut rows = DistArray::from_elem(comm, shape, Split::block(0), T::default())?;
        rows.read_npy_into(&path)?;
        let found = rows.chunk_checksums()?;
        let root_error = found.and_then(|found| {
            let expected = manifest.crc32.as_deref().unwrap_or_default();
            let chunk = manifest.chunk_bytes.unwrap_or(CHUNK_BYTES);
            found.iter().zip(expected).enumerate().find(|(_, (f, e))| f != e).map(|(k, (f, e))| {
                corrupt(format!(
                    "{}: bytes {} to {} of the data have CRC-32 {f:#010x}, the manifest recorded {e:#010x}: the file was altered or damaged after the save",
                    path.display(),
                    k as u64 * chunk,
                    (k as u64 + 1) * chunk
                ))
            })
        });
        comm.announce_from_root(0, [0], root_error)?;
        if rows.layout.split()
            == super::super::split::Layout::new(split, rows.shape.slice(), comm.size())?.split()
        {
            Ok(rows)
        } else {
            rows.redistribute(split)
        }
    }
}

/// The CRC-32 of every chunk piece in `bytes`, which start at byte `at` of the data: flat
/// `[chunk, first byte, length, crc]` records, computed in parallel.
fn segments(bytes: &[u8], at: u64) -> Vec<u64> {
    let mut bounds = Vec::new();
    let mut pos = 0_u64;
    let len = bytes.len() as u64;
    while pos < len {
        let chunk = (at + pos) / CHUNK_BYTES;
        let end = ((chunk + 1) * CHUNK_BYTES - at).min(len);
        bounds.push((chunk, pos, end - pos));
        pos = end;
    }
    bounds
        .par_iter()
        .flat_map_iter(|&(chunk, from, n)| {
            let crc = crc32fast::hash(&bytes[from as usize..(from + n) as usize]);
            [chunk, at + from, n, u64::from(crc)]
        })
        .collect()
}

/// The records [`segments`] makes, built from bytes as they stream past in file order (each
/// call's bytes following the last call's).
#[derive(Default)]
struct StreamingSums {
    records: Vec<u64>,
    /// The chunk piece being summed: chunk, first byte, length so far, running CRC.
    open: Option<(u64, u64, u64, crc32fast::Hasher)>,
}

impl StreamingSums {
    /// Adds `bytes`, which start at byte `at` of the data.
    fn add(&mut self, mut at: u64, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let chunk = at / CHUNK_BYTES;
            let n = ((chunk + 1) * CHUNK_BYTES - at).min(bytes.len() as u64);
            let (head, rest) = bytes.split_at(n as usize);
            match &mut self.open {
                Some((c, first, len, hasher)) if *c == chunk && *first + *len == at => {
                    hasher.update(head);
                    *len += n;
                }
                _ => {
                    self.close();
                    let mut hasher = crc32fast::Hasher::new();
                    hasher.update(head);
                    self.open = Some((chunk, at, n, hasher));
                }
            }
            at += n;
            bytes = rest;
        }
    }

    fn close(&mut self) {
        if let Some((chunk, first, len, hasher)) = self.open.take() {
            self.records
                .extend([chunk, first, len, u64::from(hasher.finalize())]);
        }
    }

    /// The records, flat `[chunk, first byte, length, crc]` as [`segments`] makes them.
    fn records(mut self) -> Vec<u64> {
        self.close();
        self.records
    }
}

/// Root: every chunk's CRC-32 from the ranks' records (chunk pieces combined in file order).
fn join(records: &[u64], total: u64) -> Vec<u32> {
    let chunks = total.div_ceil(CHUNK_BYTES) as usize;
    let mut pieces: Vec<Vec<(u64, u64, u32)>> = vec![Vec::new(); chunks];
    for r in records.chunks_exact(4) {
        pieces[r[0] as usize].push((r[1], r[2], r[3] as u32));
    }
    pieces
        .into_iter()
        .map(|mut parts| {
            parts.sort_unstable();
            let mut whole = crc32fast::Hasher::new();
            for (_, n, crc) in parts {
                whole.combine(&crc32fast::Hasher::new_with_initial_len(crc, n));
            }
            whole.finalize()
        })
        .collect()
}

/// Root: the data file against a version-4 manifest (header, shape, size, checksum count).
pub(crate) fn check_data_file(manifest: &Manifest, version_dir: &Path, item: usize) -> Result<()> {
    let path = version_dir.join(DATA_FILE);
    let data = manifest.check_npy(&path, &manifest.shape, "the manifest says", item)?;
    let chunks = data.div_ceil(manifest.chunk_bytes.unwrap_or(CHUNK_BYTES));
    let sums = manifest.crc32.as_ref().map_or(0, Vec::len) as u64;
    if sums != chunks {
        return Err(corrupt(format!(
            "{sums} checksums for the {chunks} chunks of {}",
            path.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_pieces_from_several_ranks_join_to_the_whole_chunks_crc() {
        // 2.5 chunks of data split unevenly over three "ranks".
        let total = (CHUNK_BYTES * 5 / 2) as usize;
        let data: Vec<u8> = (0..total).map(|i| (i * 7 % 251) as u8).collect();
        let cuts = [0, 1000, total - 12345, total];
        let records: Vec<u64> = cuts
            .windows(2)
            .flat_map(|w| segments(&data[w[0]..w[1]], w[0] as u64))
            .collect();
        let expected: Vec<u32> = data
            .chunks(CHUNK_BYTES as usize)
            .map(crc32fast::hash)
            .collect();
        assert_eq!(join(&records, total as u64), expected);
        assert!(join(&[], 0).is_empty());
    }

    #[test]
    fn sums_of_streamed_parts_equal_those_of_whole_pieces() {
        let total = (CHUNK_BYTES * 5 / 2) as usize;
        let data: Vec<u8> = (0..total).map(|i| (i * 13 % 253) as u8).collect();
        // Two "ranks", the first streaming its piece in parts that straddle a chunk boundary.
        let cut = total - 12345;
        let mut first = StreamingSums::default();
        let mut at = 0;
        for part in [1000, (3 << 20) + 7, CHUNK_BYTES as usize, 1] {
            first.add(at as u64, &data[at..at + part]);
            at += part;
        }
        first.add(at as u64, &data[at..cut]);
        let mut records = first.records();
        assert_eq!(records, segments(&data[..cut], 0));
        let mut second = StreamingSums::default();
        second.add(cut as u64, &data[cut..]);
        records.extend(second.records());
        let expected: Vec<u32> = data
            .chunks(CHUNK_BYTES as usize)
            .map(crc32fast::hash)
            .collect();
        assert_eq!(join(&records, total as u64), expected);
        assert!(StreamingSums::default().records().is_empty());
    }
}
