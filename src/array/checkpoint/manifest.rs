//! The checkpoint manifest, and the inspection that checks a checkpoint against it before a
//! byte of its data is allocated: element type, dimensions, split, piece files' headers and
//! sizes, checksums.

use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::super::npy;
use super::super::split::Layout;
use super::super::{Split, SplitAxis, MAX_SPLIT_AXES};
use crate::error::{Error, ErrorKind, Result};
use crate::partition::Distribution;

pub(crate) const FORMAT: &str = "spmd-distarray";
/// The newest manifest version this library reads (3: piece files with per-piece checksums;
/// 4: one data file with per-chunk checksums).
pub(crate) const VERSION: u32 = 4;
/// The version of a checkpoint of one file per rank.
pub(crate) const PER_RANK_VERSION: u32 = 3;
/// The version of a single-file checkpoint.
pub(crate) const SINGLE_FILE_VERSION: u32 = 4;
/// The largest manifest read (one for a million pieces is a few tens of MiB; a larger file is
/// not a manifest, and reading it must not allocate what it claims).
pub(crate) const MAX_MANIFEST: u64 = 64 << 20;

/// One split axis as saved.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct SavedAxis {
    pub axis: usize,
    pub distribution: String,
    pub block_size: Option<usize>,
    pub ranks: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub format: String,
    pub version: u32,
    pub dtype: String,
    pub shape: Vec<usize>,
    /// Versions 2 and 3: every split axis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<Vec<SavedAxis>>,
    /// Version 1: the one split axis, its distribution and block size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_axis: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribution: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_size: Option<usize>,
    pub ranks: usize,
    pub pieces: Vec<String>,
    /// Version 3: the CRC-32 (zlib's, as `zlib.crc32` computes it) of every piece file;
    /// version 4: of every `chunk_bytes` of the data file's data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crc32: Option<Vec<u32>>,
    /// Version 4: the one `.npy` file holding the global array (`pieces` is empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Version 4: the bytes of data each checksum covers (the last chunk may be shorter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk_bytes: Option<u64>,
}

impl Manifest {
    /// The layout the checkpoint was saved with.
    pub(crate) fn layout(&self) -> Result<Layout> {
        let axes: Vec<SplitAxis> = match (&self.split, self.split_axis, &self.distribution) {
            (Some(saved), _, _) => saved
                .iter()
                .map(|a| {
                    Ok(SplitAxis {
                        axis: a.axis,
                        distribution: distribution_from(&a.distribution, a.block_size)?,
                        ranks: Some(a.ranks),
                    })
                })
                .collect::<Result<_>>()?,
            (None, Some(axis), Some(name)) => vec![SplitAxis {
                axis,
                distribution: distribution_from(name, self.block_size)?,
                ranks: Some(self.ranks),
            }],
            _ => return Err(corrupt("the manifest names no split".into())),
        };
        if axes.is_empty() || axes.len() > MAX_SPLIT_AXES {
            return Err(corrupt(format!("a split along {} axes", axes.len())));
        }
        Layout::new(Split::from_axes(&axes), &self.shape, self.ranks)
            .map_err(|e| corrupt(e.message().to_owned()))
    }

    /// The manifest of `bytes`, checked to be one this library can load as `dtype` elements
    /// in `ndim` dimensions (`None`: any), every field consistent with every other. Allocates
    /// nothing beyond what parsing `bytes` needs.
    ///
    /// # Errors
    /// `Io` saying what is wrong.
    pub(crate) fn parse(bytes: &[u8], dtype: &str, ndim: Option<usize>) -> Result<Manifest> {
        let manifest: Manifest = serde_json::from_slice(bytes)
            .map_err(|e| Error::io("checkpoint: the manifest does not parse", e))?;
        if manifest.format != FORMAT || !(1..=VERSION).contains(&manifest.version) {
            return Err(corrupt(format!(
                "format {:?} version {}",
                manifest.format, manifest.version
            )));
        }
        if bare(&manifest.dtype) != dtype {
            return Err(Error::new(
                ErrorKind::Io,
                format!(
                    "checkpoint holds elements {}, but is loaded as {dtype}",
                    manifest.dtype
                ),
            ));
        }
        if ndim.is_some_and(|n| n != manifest.shape.len()) {
            return Err(Error::new(
                ErrorKind::Io,
                format!(
                    "checkpoint holds a {}-dimensional array, loaded as {}-dimensional",
                    manifest.shape.len(),
                    ndim.unwrap_or(0)
                ),
            ));
        }
        if manifest
            .shape
            .iter()
            .try_fold(1_usize, |acc, &d| acc.checked_mul(d))
            .is_none()
        {
            return Err(corrupt(format!(
                "shape {:?} has more elements than this machine can address",
                manifest.shape
            )));
        }
        manifest.layout()?;
        if manifest.version == SINGLE_FILE_VERSION {
            return match (&manifest.file, manifest.chunk_bytes, &manifest.crc32) {
                (Some(file), Some(super::single::CHUNK_BYTES), Some(_))
                    if file == super::single::DATA_FILE && manifest.pieces.is_empty() =>
                {
                    Ok(manifest)
                }
                _ => Err(corrupt(format!(
                    "version {SINGLE_FILE_VERSION} needs the data file {:?}, no piece files, a \
                     chunk size of {} and checksums",
                    super::single::DATA_FILE,
                    super::single::CHUNK_BYTES
                ))),
            };
        }
        if manifest.pieces.len() != manifest.ranks {
            return Err(corrupt(format!(
                "{} piece files for {} ranks",
                manifest.pieces.len(),
                manifest.ranks
            )));
        }
        if let Some(name) = manifest
            .pieces
            .iter()
            .find(|p| p.is_empty() || p.contains(['/', '\\']) || p.starts_with('.'))
        {
            return Err(corrupt(format!("piece file name {name:?}")));
        }
        match &manifest.crc32 {
            Some(sums) if sums.len() != manifest.pieces.len() => Err(corrupt(format!(
                "{} checksums for {} pieces",
                sums.len(),
                manifest.pieces.len()
            ))),
            None if manifest.version >= PER_RANK_VERSION => {
                Err(corrupt("version 3 without checksums".into()))
            }
            _ => Ok(manifest),
        }
    }

    /// Checks every piece file in `version_dir` against the manifest: its `.npy` header names
    /// the saved element type and the piece's shape in C order, and its size is exactly the
    /// header plus that many elements of `item` bytes. Reads only the headers.
    ///
    /// # Errors
    /// `Io` naming the first file that does not match.
    pub(crate) fn check_pieces(&self, version_dir: &Path, item: usize) -> Result<()> {
        let layout = self.layout()?;
        let shape = ndarray::IxDyn(&self.shape);
        for (rank, name) in self.pieces.iter().enumerate() {
            let expected = layout.piece_shape(&shape, rank);
            self.check_npy(
                &version_dir.join(name),
                ndarray::Dimension::slice(&expected),
                &format!("the manifest's split gives rank {rank}"),
                item,
            )?;
        }
        Ok(())
    }

    /// Checks the `.npy` at `path` against the manifest: its header names the saved element
    /// type in C order and shape `expected` (`source` says where that shape comes from), and
    /// its size is exactly the header plus that many elements of `item` bytes. Returns the
    /// data's size in bytes. Reads only the header.
    pub(crate) fn check_npy(
        &self,
        path: &Path,
        expected: &[usize],
        source: &str,
        item: usize,
    ) -> Result<u64> {
        let mut file = std::fs::File::open(path)
            .map_err(|e| Error::io(format!("checkpoint: cannot open {}", path.display()), e))?;
        let size = file
            .metadata()
            .map_err(|e| Error::io(format!("checkpoint: cannot stat {}", path.display()), e))?
            .len();
        let header = npy::read_header(&mut (&mut file).take(size))
            .map_err(|why| corrupt(format!("{}: {why}", path.display())))?;
        if header.descr != bare(&self.dtype) || header.fortran_order {
            let order = if header.fortran_order {
                " Fortran-order"
            } else {
                ""
            };
            return Err(corrupt(format!(
                "{} holds {}{order} elements, the manifest says {} in C order",
                path.display(),
                header.descr,
                self.dtype
            )));
        }
        if header.shape != expected {
            return Err(corrupt(format!(
                "{} has shape {:?}, {source} {expected:?}",
                path.display(),
                header.shape
            )));
        }
        if header.file_size(item) != Some(size) {
            return Err(corrupt(format!(
                "{} is {size} bytes, its header says {} (truncated or padded)",
                path.display(),
                header
                    .file_size(item)
                    .map_or("more than 2^64".into(), |s| s.to_string())
            )));
        }
        Ok(size - header.data_offset)
    }
}

/// A NumPy type string without the Python quotes spmd 0.1 stored it with (`'<f8'` → `<f8`).
pub(crate) fn bare(dtype: &str) -> &str {
    dtype.trim_matches('\'')
}

/// Reads at most [`MAX_MANIFEST`] bytes of `path`.
pub(crate) fn read_bounded(path: &Path) -> Result<Vec<u8>> {
    let file = std::fs::File::open(path)
        .map_err(|e| Error::io(format!("checkpoint: cannot read {}", path.display()), e))?;
    let mut bytes = Vec::new();
    file.take(MAX_MANIFEST + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(format!("checkpoint: cannot read {}", path.display()), e))?;
    if bytes.len() as u64 > MAX_MANIFEST {
        return Err(corrupt(format!(
            "{} is larger than {MAX_MANIFEST} bytes: not a manifest",
            path.display()
        )));
    }
    Ok(bytes)
}

pub(crate) fn distribution_from(name: &str, block_size: Option<usize>) -> Result<Distribution> {
    match (name, block_size) {
        ("block", _) => Ok(Distribution::Block),
        ("cyclic", _) => Ok(Distribution::Cyclic),
        ("block-cyclic", Some(b)) => Ok(Distribution::BlockCyclic(b)),
        (other, _) => Err(corrupt(format!("unknown distribution {other:?}"))),
    }
}

pub(crate) fn corrupt(what: String) -> Error {
    Error::new(
        ErrorKind::Io,
        format!("checkpoint is corrupt or not a spmd checkpoint: {what}"),
    )
}
