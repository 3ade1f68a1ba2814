//! Checkpoint and restart; the format is documented in the `array` module docs.
//!
//! Loading never trusts a file further than it has checked it: the root reads `CURRENT` and
//! the manifest (at most 64 MiB), checks every field against every other and every piece
//! file's `.npy` header and size against the manifest, all before any rank allocates for the
//! data; each rank then verifies the CRC-32 of every piece it reads. Whatever is wrong is the
//! same `Err` on every rank.

mod direct;
mod manifest;
mod single;

pub(crate) use direct::is_plain_number;
pub(crate) use manifest::bare as bare_descr;

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use ndarray::{ArrayD, Dimension, IxDyn, RemoveAxis};
use ndarray_npy::{ReadNpyExt, ReadableElement, WritableElement, WriteNpyExt};

use super::blocks::{extract, place, shared_block};
use super::split::Layout;
use super::{DistArray, Element, Split};
use crate::collective::{ElementType, Field, Preflight};
use crate::comm::Comm;
use crate::error::{Error, Result};
use crate::partition::Distribution;
use manifest::{
    corrupt, read_bounded, Manifest, SavedAxis, FORMAT, PER_RANK_VERSION, SINGLE_FILE_VERSION,
};

/// Set on the root to end the job between writing a checkpoint and committing it: how the
/// test suite simulates a crash in the middle of a save. Not part of the API.
#[doc(hidden)]
pub const FAULT_BEFORE_COMMIT_ENV: &str = "SPMD_FAULT_BEFORE_COMMIT";

fn io(what: &str, path: &Path, e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::io(format!("checkpoint: cannot {what} {}", path.display()), e)
}

/// The error for a piece file whose CRC-32 is not the one the manifest recorded.
fn altered(path: &Path, found: u32, expected: u32) -> Error {
    corrupt(format!(
        "{} has CRC-32 {found:#010x}, the manifest recorded {expected:#010x}: \
         the file was altered or damaged after the save",
        path.display()
    ))
}

/// `T`'s NumPy type string as a `.npy` header spells it (`<f8`; ndarray-npy's descriptor
/// prints as the Python literal `'<f8'`).
pub(crate) fn dtype<T: WritableElement>() -> String {
    manifest::bare(&T::type_descriptor().to_string()).to_owned()
}

/// The most bytes a [`CrcWriter`] or [`CrcReader`] moves per call: the checksum then reads
/// bytes the copy just brought into the cache, instead of a second pass over memory (a whole
/// piece in one call made `load` 1.3x a bare read; chunked, ~1.1x).
const CRC_CHUNK: usize = 256 << 10;

/// Writes through to `inner` and keeps the CRC-32 of every byte written.
struct CrcWriter<W> {
    inner: W,
    crc: crc32fast::Hasher,
}

impl<W: Write> Write for CrcWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(&buf[..buf.len().min(CRC_CHUNK)])?;
        self.crc.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Reads through from `inner` and keeps the CRC-32 of every byte read.
struct CrcReader<R> {
    inner: R,
    crc: crc32fast::Hasher,
}

impl<R: Read> Read for CrcReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let len = buf.len().min(CRC_CHUNK);
        let n = self.inner.read(&mut buf[..len])?;
        self.crc.update(&buf[..n]);
        Ok(n)
    }
}

/// How a checkpoint holds its data ([`DistArray::save_with`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CheckpointFormat {
    /// One `.npy` per saving rank (its piece), each with a CRC-32: the fastest to write.
    #[default]
    PerRank,
    /// One `.npy` holding the global array (`numpy.load` opens it), written by every rank at
    /// once, with a CRC-32 per 64 MiB of data.
    SingleFile,
}

impl std::fmt::Display for CheckpointFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CheckpointFormat::PerRank => "one file per rank",
            CheckpointFormat::SingleFile => "a single file",
        })
    }
}

impl<T, D> DistArray<T, D>
where
    T: Element + WritableElement + ReadableElement,
    D: Dimension + RemoveAxis,
{
    /// Saves the array under directory `dir` as one file per rank
    /// ([`CheckpointFormat::PerRank`]; format and crash safety: the *Checkpoints* section of
    /// [`crate::array`]). Collective; every rank writes its own piece and its CRC-32, which the
    /// root records in the manifest.
    ///
    /// # Errors
    /// `Io`, on every rank, if a file cannot be written; `Disagreement` if ranks hold
    /// different arrays.
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        self.save_with(dir, CheckpointFormat::PerRank)
    }

    /// Saves the array under directory `dir` in `format`: [`CheckpointFormat::SingleFile`]
    /// writes the global array as one `.npy` that NumPy and other tools open, with the
    /// manifest beside it. [`load`](Self::load) reads either, at any rank count and split.
    ///
    /// # Errors
    /// As [`save`](Self::save); `Config` for `SingleFile` with elements that are not
    /// fixed-size numbers.
    pub fn save_with(&self, dir: impl AsRef<Path>, format: CheckpointFormat) -> Result<()> {
        const OP: &str = "DistArray::save";
        let dir = dir.as_ref();
        let comm = &self.comm;
        let _timer = comm.timed(OP, 0);
        let format_key = i64::from(format == CheckpointFormat::SingleFile);
        self.layout_preflight(OP, None, &[Field::keyed("the format", format_key, &format)])?;
        // The root picks the next version and creates its directory.
        let root_step = (comm.rank() == 0).then(|| next_version(dir));
        let (version, root_error) = match root_step {
            Some(Ok(v)) => (v, None),
            Some(Err(e)) => (0, Some(e)),
            None => (0, None),
        };
        let [version] = comm.announce_from_root(0, [version], root_error)?;
        let version_dir = dir.join(format!("v-{version:06}"));
        let manifest = match format {
            CheckpointFormat::PerRank => {
                let piece = version_dir.join(format!("piece-{:05}.npy", comm.rank()));
                let written = self.write_piece(&piece);
                let crc = written.as_ref().map_or(0, |&c| c);
                comm.share_outcome(written.err())
                    .map_err(|e| e.prefixed(OP))?;
                let checksums = comm.gather(0, &[crc])?;
                checksums.map(|sums| {
                    let ranks = sums.len();
                    Manifest {
                        pieces: (0..ranks).map(|r| format!("piece-{r:05}.npy")).collect(),
                        crc32: Some(sums),
                        ..self.manifest(PER_RANK_VERSION)
                    }
                })
            }
            CheckpointFormat::SingleFile => {
                let sums = self
                    .write_single(&version_dir)
                    .map_err(|e| e.prefixed(OP))?;
                sums.map(|sums| Manifest {
                    file: Some(single::DATA_FILE.into()),
                    chunk_bytes: Some(single::CHUNK_BYTES),
                    crc32: Some(sums),
                    ..self.manifest(SINGLE_FILE_VERSION)
                })
            }
        };
        let commit = manifest.map(|m| commit(dir, &version_dir, version, &m));
        let root_error = commit.and_then(Result::err);
        comm.announce_from_root(0, [0], root_error)?;
        Ok(())
    }

    /// The manifest's fields every format shares (no pieces, file or checksums yet).
    fn manifest(&self, version: u32) -> Manifest {
        let split = self
            .layout
            .parts()
            .map(|p| {
                let (distribution, block_size) = match p.partition.distribution() {
                    Distribution::Block => ("block", None),
                    Distribution::Cyclic => ("cyclic", None),
                    Distribution::BlockCyclic(b) => ("block-cyclic", Some(b)),
                };
                SavedAxis {
                    axis: p.axis,
                    distribution: distribution.into(),
                    block_size,
                    ranks: p.partition.parts(),
                }
            })
            .collect();
        Manifest {
            format: FORMAT.into(),
            version,
            dtype: dtype::<T>(),
            shape: self.shape.slice().to_vec(),
            split: Some(split),
            split_axis: None,
            distribution: None,
            block_size: None,
            ranks: self.comm.size(),
            pieces: Vec::new(),
            crc32: None,
            file: None,
            chunk_bytes: None,
        }
    }

    /// Writes this rank's piece to `path`; returns the file's CRC-32.
    fn write_piece(&self, path: &Path) -> Result<u32> {
        let file = std::fs::File::create(path).map_err(|e| io("create", path, e))?;
        // The buffer sits above the checksum: a large piece bypasses it (no extra copy) and
        // reaches the CrcWriter, which writes and checks it in chunks.
        let mut out = BufWriter::with_capacity(
            1 << 20,
            CrcWriter {
                inner: file,
                crc: crc32fast::Hasher::new(),
            },
        );
        self.local()
            .write_npy(&mut out)
            .map_err(|e| io("write", path, e))?;
        let written = out
            .into_inner()
            .map_err(|e| io("write", path, e.into_error()))?;
        Ok(written.crc.finalize())
    }

    /// Loads the checkpoint under `dir`, saved by any number of ranks with any split, as an
    /// array split by `split` over `comm`. Collective. The root reads `CURRENT` and the
    /// manifest, checks the whole checkpoint against them (element type, dimensions, split,
    /// every piece file's header and size) and shares the manifest; each rank then reads the
    /// saved pieces that hold part of its new piece, checking their CRC-32.
    ///
    /// # Errors
    /// `Io`, on every rank, if there is no checkpoint, it is corrupt (a manifest that does not
    /// parse or contradicts itself, a missing, truncated or altered piece — the message names
    /// the file) or holds another element type or number of dimensions; `Shape` if `split`
    /// does not fit the saved shape.
    pub fn load(comm: &Comm, dir: impl AsRef<Path>, split: Split) -> Result<DistArray<T, D>> {
        const OP: &str = "DistArray::load";
        let dir = dir.as_ref();
        let _timer = comm.timed(OP, 0);
        comm.preflight(Preflight {
            op: OP,
            element: Some(ElementType::of::<T>()),
            local_error: None,
            agree: &[Field::keyed("the split", split.key(), &split)],
        })?;
        // The root reads and checks everything, then shares the manifest: no rank reads CURRENT
        // or the manifest alone, so a read that fails on one rank fails on all, and nothing is
        // allocated for data a file only claims to have.
        let mut text = Vec::new();
        let mut root_error = None;
        if comm.rank() == 0 {
            match inspect::<T, D>(dir) {
                Ok((version, manifest)) => {
                    text = version.into_bytes();
                    text.push(b'\n');
                    text.extend(manifest);
                }
                Err(e) => root_error = Some(e),
            }
        }
        comm.announce_from_root(0, [text.len()], root_error)?;
        comm.broadcast_vec(0, &mut text)?;
        let newline = text.iter().position(|&b| b == b'\n').unwrap_or(0);
        let version_dir = dir.join(String::from_utf8_lossy(&text[..newline]).as_ref());
        let manifest = Manifest::parse(&text[newline + 1..], &dtype::<T>(), D::NDIM)?;
        let saved = manifest.layout()?;
        let shape = D::from_dimension(&IxDyn(&manifest.shape))
            .ok_or_else(|| corrupt("number of dimensions".into()))?;
        let target = Layout::new(split, shape.slice(), comm.size());
        comm.preflight(Preflight {
            op: OP,
            element: None,
            local_error: target.as_ref().err().cloned(),
            agree: &[],
        })?;
        if manifest.version == SINGLE_FILE_VERSION {
            return DistArray::load_single(comm, &manifest, &version_dir, shape, split)
                .map_err(|e| e.prefixed(OP));
        }
        let mut array = DistArray::from_elem(comm, shape, split, T::default())?;
        let local_error = array
            .fill_from(&manifest, &saved, &version_dir)
            .err()
            .map(|e| e.on_rank(comm.rank()));
        comm.preflight(Preflight {
            op: OP,
            element: None,
            local_error,
            agree: &[],
        })?;
        Ok(array)
    }

    /// Copies into this rank's piece every element it holds from the saved pieces, checking
    /// each piece file's CRC-32.
    fn fill_from(&mut self, manifest: &Manifest, saved: &Layout, version_dir: &Path) -> Result<()> {
        let rank = self.comm.rank();
        for (source, file) in manifest.pieces.iter().enumerate() {
            let (in_saved, in_mine, block) =
                shared_block(&self.shape, (saved, source), (&self.layout, rank));
            if block.size() == 0 {
                continue;
            }
            let path = version_dir.join(file);
            let expected = manifest.crc32.as_ref().map(|sums| sums[source]);
            if direct::is_plain_number::<T>() {
                let dims = saved.piece_shape(&self.shape, source);
                let piece = direct::SavedPiece {
                    path: &path,
                    dims: dims.slice(),
                    descr: &dtype::<T>(),
                    crc32: expected,
                };
                if direct::read_block(&piece, (&in_saved, &in_mine), self.local_mut())? {
                    continue;
                }
            }
            let opened = std::fs::File::open(&path).map_err(|e| io("read", &path, e))?;
            let mut input = BufReader::with_capacity(
                1 << 20,
                CrcReader {
                    inner: opened,
                    crc: crc32fast::Hasher::new(),
                },
            );
            let piece = ArrayD::<T>::read_npy(&mut input).map_err(|e| io("read", &path, e))?;
            // Anything after the data is part of the file, and of its checksum.
            std::io::copy(&mut input, &mut std::io::sink()).map_err(|e| io("read", &path, e))?;
            if let Some(expected) = expected {
                let found = input.into_inner().crc.finalize();
                if found != expected {
                    return Err(altered(&path, found, expected));
                }
            }
            let piece = piece
                .into_dimensionality::<D>()
                .map_err(|e| corrupt(e.to_string()))?;
            let block = extract(piece.view(), &in_saved);
            place(self.local_mut(), &in_mine, block.view());
        }
        Ok(())
    }
}

/// Root: the manifest, then the atomic switch of `CURRENT`, then removal of older versions.
fn commit(dir: &Path, version_dir: &Path, version: usize, manifest: &Manifest) -> Result<()> {
    let path = version_dir.join("manifest.json");
    let text = serde_json::to_string_pretty(manifest).expect("a manifest serialises");
    std::fs::write(&path, text).map_err(|e| io("write", &path, e))?;
    if std::env::var_os(FAULT_BEFORE_COMMIT_ENV).is_some() {
        eprintln!("spmd: {FAULT_BEFORE_COMMIT_ENV} is set: ending the job before the checkpoint is committed");
        std::process::abort();
    }
    let current = dir.join("CURRENT");
    let temporary = dir.join("CURRENT.tmp");
    let name = format!("v-{version:06}");
    let mut file = std::fs::File::create(&temporary).map_err(|e| io("create", &temporary, e))?;
    file.write_all(name.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| io("write", &temporary, e))?;
    std::fs::rename(&temporary, &current).map_err(|e| io("replace", &current, e))?;
    // Older complete versions and abandoned partial ones are no longer needed.
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let entry_name = entry.file_name().to_string_lossy().into_owned();
            if entry_name.starts_with("v-") && entry_name != name {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    Ok(())
}

/// Root: the current version's name and its manifest's bytes, after checking the manifest is
/// one `T` and `D` can load and every piece file matches it.
fn inspect<T: WritableElement, D: Dimension>(dir: &Path) -> Result<(String, Vec<u8>)> {
    let version = current_version(dir)?;
    let version_dir = dir.join(&version);
    let bytes = read_bounded(&version_dir.join("manifest.json"))?;
    let manifest = Manifest::parse(&bytes, &dtype::<T>(), D::NDIM)?;
    if manifest.version == SINGLE_FILE_VERSION {
        single::check_data_file(&manifest, &version_dir, std::mem::size_of::<T>())?;
    } else {
        manifest.check_pieces(&version_dir, std::mem::size_of::<T>())?;
    }
    Ok((version, bytes))
}

/// The version directory's name that `CURRENT` holds.
fn current_version(dir: &Path) -> Result<String> {
    let current = dir.join("CURRENT");
    let mut name = String::new();
    std::fs::File::open(&current)
        .and_then(|f| f.take(256).read_to_string(&mut name))
        .map_err(|e| io("read", &current, e))?;
    let name = name.trim();
    if !name.starts_with("v-") || name.contains(['/', '\\', '\n']) || name.contains("..") {
        return Err(corrupt(format!("CURRENT names {name:?}")));
    }
    Ok(name.to_owned())
}

/// Root: the next version number, with its directory created (and `dir` if need be).
fn next_version(dir: &Path) -> Result<usize> {
    std::fs::create_dir_all(dir).map_err(|e| io("create", dir, e))?;
    let last = current_version(dir)
        .ok()
        .and_then(|name| name.strip_prefix("v-")?.parse::<usize>().ok())
        .unwrap_or(0);
    let version = last + 1;
    let version_dir = dir.join(format!("v-{version:06}"));
    let _ = std::fs::remove_dir_all(&version_dir); // a partial save of the same number
    std::fs::create_dir_all(&version_dir).map_err(|e| io("create", &version_dir, e))?;
    Ok(version)
}

/// The manifest reader, for the crate's property tests.
#[cfg(test)]
pub(crate) mod fuzzing {
    /// Parses `bytes` as the manifest of an `f64` array of 3 dimensions.
    pub(crate) fn parse_manifest(bytes: &[u8]) -> crate::Result<()> {
        super::manifest::Manifest::parse(bytes, "<f8", Some(3)).map(|_| ())
    }
}
