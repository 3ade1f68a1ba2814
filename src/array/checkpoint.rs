//! Checkpoint and restart; the format is documented in the `array` module docs.

use std::io::Write;
use std::path::{Path, PathBuf};

use ndarray::{ArrayD, Dimension, IxDyn, RemoveAxis};
use ndarray_npy::{ReadableElement, WritableElement};
use serde::{Deserialize, Serialize};

use super::blocks::{extract, place, shared_block};
use super::split::Layout;
use super::{DistArray, Element, Split, SplitAxis};
use crate::collective::{ElementType, Field, Preflight};
use crate::comm::Comm;
use crate::error::{Error, ErrorKind, Result};
use crate::partition::Distribution;

const FORMAT: &str = "spmd-distarray";
/// The manifest version this library writes.
const VERSION: u32 = 2;
/// Set on the root to end the job between writing a checkpoint and committing it: how the
/// test suite simulates a crash in the middle of a save. Not part of the API.
#[doc(hidden)]
pub const FAULT_BEFORE_COMMIT_ENV: &str = "SPMD_FAULT_BEFORE_COMMIT";

/// One split axis as saved.
#[derive(Debug, Serialize, Deserialize)]
struct SavedAxis {
    axis: usize,
    distribution: String,
    block_size: Option<usize>,
    ranks: usize,
}

#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    format: String,
    version: u32,
    dtype: String,
    shape: Vec<usize>,
    /// Version 2: every split axis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    split: Option<Vec<SavedAxis>>,
    /// Version 1: the one split axis, its distribution and block size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    split_axis: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    distribution: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    block_size: Option<usize>,
    ranks: usize,
    pieces: Vec<String>,
}

impl Manifest {
    /// The layout the checkpoint was saved with.
    fn layout(&self) -> Result<Layout> {
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
        if axes.is_empty() || axes.len() > super::MAX_SPLIT_AXES {
            return Err(corrupt(format!("a split along {} axes", axes.len())));
        }
        Layout::new(Split::from_axes(&axes), &self.shape, self.ranks)
            .map_err(|e| corrupt(e.message().to_owned()))
    }
}

fn distribution_from(name: &str, block_size: Option<usize>) -> Result<Distribution> {
    match (name, block_size) {
        ("block", _) => Ok(Distribution::Block),
        ("cyclic", _) => Ok(Distribution::Cyclic),
        ("block-cyclic", Some(b)) => Ok(Distribution::BlockCyclic(b)),
        (other, _) => Err(corrupt(format!("unknown distribution {other:?}"))),
    }
}

fn corrupt(what: String) -> Error {
    Error::new(
        ErrorKind::Io,
        format!("checkpoint is corrupt or not a spmd checkpoint: {what}"),
    )
}

fn io(what: &str, path: &Path, e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::io(format!("checkpoint: cannot {what} {}", path.display()), e)
}

fn dtype<T: WritableElement>() -> String {
    T::type_descriptor().to_string()
}

impl<T, D> DistArray<T, D>
where
    T: Element + WritableElement + ReadableElement,
    D: Dimension + RemoveAxis,
{
    /// Saves the array under directory `dir` (format and crash safety: the *Checkpoints*
    /// section of [`crate::array`]). Collective; every rank writes its own piece.
    ///
    /// # Errors
    /// `Io`, on every rank, if a file cannot be written; `Disagreement` if ranks hold
    /// different arrays.
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        const OP: &str = "DistArray::save";
        let dir = dir.as_ref();
        let comm = &self.comm;
        let _timer = comm.timed(OP, 0);
        self.layout_preflight(OP, None, &[])?;
        // The root picks the next version and creates its directory.
        let root_step = (comm.rank() == 0).then(|| next_version(dir));
        let (version, root_error) = match root_step {
            Some(Ok(v)) => (v, None),
            Some(Err(e)) => (0, Some(e)),
            None => (0, None),
        };
        let [version] = comm.announce_from_root(0, [version], root_error)?;
        let version_dir = dir.join(format!("v-{version:06}"));
        let piece = version_dir.join(format!("piece-{:05}.npy", comm.rank()));
        let written = ndarray_npy::write_npy(&piece, &self.local().as_standard_layout().to_owned())
            .map_err(|e| io("write", &piece, e).on_rank(comm.rank()))
            .err();
        comm.preflight(Preflight {
            op: OP,
            element: None,
            local_error: written,
            agree: &[],
        })?;
        let commit =
            (comm.rank() == 0).then(|| self.commit(dir, &version_dir, version, comm.size()));
        let root_error = commit.and_then(Result::err);
        comm.announce_from_root(0, [0], root_error)?;
        Ok(())
    }

    /// Root: manifest, then the atomic switch of `CURRENT`, then removal of older versions.
    fn commit(&self, dir: &Path, version_dir: &Path, version: usize, ranks: usize) -> Result<()> {
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
        let manifest = Manifest {
            format: FORMAT.into(),
            version: VERSION,
            dtype: dtype::<T>(),
            shape: self.shape.slice().to_vec(),
            split: Some(split),
            split_axis: None,
            distribution: None,
            block_size: None,
            ranks,
            pieces: (0..ranks).map(|r| format!("piece-{r:05}.npy")).collect(),
        };
        let path = version_dir.join("manifest.json");
        let text = serde_json::to_string_pretty(&manifest).expect("a manifest serialises");
        std::fs::write(&path, text).map_err(|e| io("write", &path, e))?;
        if std::env::var_os(FAULT_BEFORE_COMMIT_ENV).is_some() {
            eprintln!("spmd: {FAULT_BEFORE_COMMIT_ENV} is set: ending the job before the checkpoint is committed");
            std::process::abort();
        }
        let current = dir.join("CURRENT");
        let temporary = dir.join("CURRENT.tmp");
        let name = format!("v-{version:06}");
        let mut file =
            std::fs::File::create(&temporary).map_err(|e| io("create", &temporary, e))?;
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

    /// Loads the checkpoint under `dir`, saved by any number of ranks with any split, as an
    /// array split by `split` over `comm`. Collective. The root reads `CURRENT` and the
    /// manifest and shares them; each rank then reads the saved pieces that hold part of its
    /// new piece.
    ///
    /// # Errors
    /// `Io`, on every rank, if there is no checkpoint or it is corrupt (a truncated or
    /// missing piece, a manifest that does not parse) or holds another element type or number
    /// of dimensions; `Shape` if `split` does not fit the saved shape.
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
        // The root reads CURRENT and the manifest, checks them, then shares both: no rank
        // reads them alone, so a read that fails on one rank fails on all.
        let mut text = Vec::new();
        let mut root_error = None;
        if comm.rank() == 0 {
            match read_checkpoint::<T, D>(dir) {
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
        let manifest: Manifest =
            serde_json::from_slice(&text[newline + 1..]).map_err(|e| corrupt(e.to_string()))?;
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

    /// Copies into this rank's piece every element it holds from the saved pieces.
    fn fill_from(&mut self, manifest: &Manifest, saved: &Layout, version_dir: &Path) -> Result<()> {
        let rank = self.comm.rank();
        for (source, file) in manifest.pieces.iter().enumerate() {
            let (in_saved, in_mine, block) =
                shared_block(&self.shape, (saved, source), (&self.layout, rank));
            if block.size() == 0 {
                continue;
            }
            let path = version_dir.join(file);
            let piece: ArrayD<T> =
                ndarray_npy::read_npy(&path).map_err(|e| io("read", &path, e))?;
            let expected = saved.piece_shape(&IxDyn(&manifest.shape), source);
            if piece.shape() != expected.slice() {
                return Err(corrupt(format!(
                    "{} has shape {:?}, the manifest says {:?}",
                    path.display(),
                    piece.shape(),
                    expected.slice()
                )));
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

/// The version directory's name that `CURRENT` holds.
fn current_version(dir: &Path) -> Result<String> {
    let current = dir.join("CURRENT");
    let name = std::fs::read_to_string(&current).map_err(|e| io("read", &current, e))?;
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

/// Root: the current version's name and its manifest's bytes, after checking the manifest is
/// ours, for `T` and `D`.
fn read_checkpoint<T: WritableElement, D: Dimension>(dir: &Path) -> Result<(String, Vec<u8>)> {
    let version = current_version(dir)?;
    let path: PathBuf = dir.join(&version).join("manifest.json");
    let bytes = std::fs::read(&path).map_err(|e| io("read", &path, e))?;
    let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| {
        Error::io(
            format!("checkpoint: {} is not a manifest", path.display()),
            e,
        )
    })?;
    if manifest.format != FORMAT || !(1..=VERSION).contains(&manifest.version) {
        return Err(corrupt(format!(
            "format {:?} version {}",
            manifest.format, manifest.version
        )));
    }
    if manifest.dtype != dtype::<T>() {
        return Err(Error::new(
            ErrorKind::Io,
            format!(
                "checkpoint holds elements {}, but is loaded as {}",
                manifest.dtype,
                dtype::<T>()
            ),
        ));
    }
    if D::NDIM.is_some_and(|n| n != manifest.shape.len()) {
        return Err(Error::new(
            ErrorKind::Io,
            format!(
                "checkpoint holds a {}-dimensional array, loaded as {}-dimensional",
                manifest.shape.len(),
                D::NDIM.unwrap_or(0)
            ),
        ));
    }
    manifest.layout()?;
    if manifest.pieces.len() != manifest.ranks {
        return Err(corrupt("piece count differs from rank count".into()));
    }
    Ok((version, bytes))
}
