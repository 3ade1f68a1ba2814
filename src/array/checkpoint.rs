//! Checkpoint and restart; the format is documented in the `array` module docs.

use std::io::Write;
use std::path::{Path, PathBuf};

use ndarray::{ArrayD, Axis, Dimension, IxDyn, RemoveAxis};
use ndarray_npy::{ReadableElement, WritableElement};
use serde::{Deserialize, Serialize};

use super::{partition_for, DistArray, Element, Split};
use crate::collective::Preflight;
use crate::comm::Comm;
use crate::error::{Error, ErrorKind, Result};
use crate::partition::{Distribution, Partition};

const FORMAT: &str = "spmd-distarray";
/// Set on the root to end the job between writing a checkpoint and committing it: how the
/// test suite simulates a crash in the middle of a save.
pub const FAULT_BEFORE_COMMIT_ENV: &str = "SPMD_FAULT_BEFORE_COMMIT";

#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    format: String,
    version: u32,
    dtype: String,
    shape: Vec<usize>,
    split_axis: usize,
    distribution: String,
    block_size: Option<usize>,
    ranks: usize,
    pieces: Vec<String>,
}

impl Manifest {
    fn partition(&self) -> Result<Partition> {
        let distribution = match (self.distribution.as_str(), self.block_size) {
            ("block", _) => Distribution::Block,
            ("cyclic", _) => Distribution::Cyclic,
            ("block-cyclic", Some(b)) => Distribution::BlockCyclic(b),
            (other, _) => return Err(corrupt(format!("unknown distribution {other:?}"))),
        };
        let len = *self
            .shape
            .get(self.split_axis)
            .ok_or_else(|| corrupt("split axis beyond the shape".into()))?;
        Partition::new(distribution, len, self.ranks)
    }
}

fn corrupt(what: String) -> Error {
    Error::new(
        ErrorKind::Config,
        format!("checkpoint is corrupt or not a spmd checkpoint: {what}"),
    )
}

fn io(what: &str, path: &Path, e: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Config,
        format!("checkpoint: cannot {what} {}: {e}", path.display()),
    )
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
    /// `Config`, on every rank, if a file cannot be written; `InvalidPartition` if `comm` is
    /// not the array's communicator; `Disagreement` if ranks hold different arrays.
    pub fn save(&self, comm: &Comm, dir: impl AsRef<Path>) -> Result<()> {
        const OP: &str = "save";
        let dir = dir.as_ref();
        let _timer = comm.timed("DistArray::save", 0);
        self.layout_preflight(comm, OP, None)?;
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
            .map_err(|e| io("write", &piece, e).on_rank(comm.rank() as i32))
            .err();
        comm.preflight(Preflight {
            op: OP,
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
        let (distribution, block_size) = match self.split.distribution {
            Distribution::Block => ("block", None),
            Distribution::Cyclic => ("cyclic", None),
            Distribution::BlockCyclic(b) => ("block-cyclic", Some(b)),
        };
        let manifest = Manifest {
            format: FORMAT.into(),
            version: 1,
            dtype: dtype::<T>(),
            shape: self.shape.slice().to_vec(),
            split_axis: self.split.axis,
            distribution: distribution.into(),
            block_size,
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
    /// array split by `split` over `comm`. Collective. Each rank reads the saved pieces that
    /// hold part of its new piece.
    ///
    /// # Errors
    /// `Config`, on every rank, if there is no checkpoint, it is corrupt (a truncated or
    /// missing piece, a manifest that does not parse) or holds another element type or number
    /// of dimensions; `Shape` if `split` does not fit the saved shape.
    pub fn load(comm: &Comm, dir: impl AsRef<Path>, split: Split) -> Result<DistArray<T, D>> {
        const OP: &str = "load";
        let dir = dir.as_ref();
        let _timer = comm.timed("DistArray::load", 0);
        // The root reads and checks the manifest, then shares it.
        let mut text = Vec::new();
        let mut root_error = None;
        if comm.rank() == 0 {
            match read_manifest::<T, D>(dir) {
                Ok(bytes) => text = bytes,
                Err(e) => root_error = Some(e),
            }
        }
        let [_] = comm.announce_from_root(0, [text.len()], root_error)?;
        comm.broadcast_vec(0, &mut text)?;
        let manifest: Manifest =
            serde_json::from_slice(&text).map_err(|e| corrupt(e.to_string()))?;
        let version_dir = current_dir(dir)?;
        let shape = D::from_dimension(&IxDyn(&manifest.shape))
            .ok_or_else(|| corrupt("dimension".into()))?;
        let layout = partition_for(comm, &shape, split).err();
        comm.preflight(Preflight {
            op: OP,
            local_error: layout,
            agree: &[("the split", split.code())],
        })?;
        let mut array = DistArray::from_elem(comm, shape, split, T::default())?;
        let local_error = array
            .fill_from(&manifest, &version_dir)
            .err()
            .map(|e| e.on_rank(comm.rank() as i32));
        comm.preflight(Preflight {
            op: OP,
            local_error,
            agree: &[],
        })?;
        Ok(array)
    }

    /// Copies into this rank's piece every element it owns from the saved pieces.
    fn fill_from(&mut self, manifest: &Manifest, version_dir: &Path) -> Result<()> {
        let saved = manifest.partition()?;
        let (old_axis, new_axis) = (manifest.split_axis, self.split.axis);
        let mine: Vec<usize> = self.partition.global_indices(self.rank).collect();
        for (source, file) in manifest.pieces.iter().enumerate() {
            let rows: Vec<usize> = saved.global_indices(source).collect();
            let wanted: Vec<(usize, usize)> = if old_axis == new_axis {
                // (row in the saved piece, row in my piece) for the rows both hold.
                rows.iter()
                    .enumerate()
                    .filter_map(|(k, &g)| {
                        let (owner, local) = self.partition.to_local(g);
                        (owner == self.rank).then_some((k, local))
                    })
                    .collect()
            } else {
                // Every saved row is in my piece (its axis is whole here), if I own anything.
                if mine.is_empty() {
                    Vec::new()
                } else {
                    rows.iter().enumerate().map(|(k, &g)| (k, g)).collect()
                }
            };
            if wanted.is_empty() {
                continue;
            }
            let path = version_dir.join(file);
            let piece: ArrayD<T> =
                ndarray_npy::read_npy(&path).map_err(|e| io("read", &path, e))?;
            let mut expected = manifest.shape.clone();
            expected[old_axis] = rows.len();
            if piece.shape() != expected.as_slice() {
                return Err(corrupt(format!(
                    "{} has shape {:?}, the manifest says {:?}",
                    path.display(),
                    piece.shape(),
                    expected
                )));
            }
            let piece = if old_axis == new_axis {
                piece
            } else {
                piece.select(Axis(new_axis), &mine)
            };
            let mut local = self.local_mut().into_dyn();
            for (k, target) in wanted {
                local
                    .index_axis_mut(Axis(old_axis), target)
                    .assign(&piece.index_axis(Axis(old_axis), k));
            }
        }
        Ok(())
    }
}

/// The version directory `CURRENT` names.
fn current_dir(dir: &Path) -> Result<PathBuf> {
    let current = dir.join("CURRENT");
    let name = std::fs::read_to_string(&current).map_err(|e| io("read", &current, e))?;
    let name = name.trim();
    if !name.starts_with("v-") || name.contains('/') {
        return Err(corrupt(format!("CURRENT names {name:?}")));
    }
    Ok(dir.join(name))
}

/// Root: the next version number, with its directory created (and `dir` if need be).
fn next_version(dir: &Path) -> Result<usize> {
    std::fs::create_dir_all(dir).map_err(|e| io("create", dir, e))?;
    let last = current_dir(dir)
        .ok()
        .and_then(|d| {
            d.file_name()?
                .to_str()?
                .strip_prefix("v-")?
                .parse::<usize>()
                .ok()
        })
        .unwrap_or(0);
    let version = last + 1;
    let version_dir = dir.join(format!("v-{version:06}"));
    let _ = std::fs::remove_dir_all(&version_dir); // a partial save of the same number
    std::fs::create_dir_all(&version_dir).map_err(|e| io("create", &version_dir, e))?;
    Ok(version)
}

/// Root: the manifest's bytes, after checking it is ours, for `T` and `D`.
fn read_manifest<T: WritableElement, D: Dimension>(dir: &Path) -> Result<Vec<u8>> {
    let path = current_dir(dir)?.join("manifest.json");
    let bytes = std::fs::read(&path).map_err(|e| io("read", &path, e))?;
    let manifest: Manifest =
        serde_json::from_slice(&bytes).map_err(|e| corrupt(format!("{}: {e}", path.display())))?;
    if manifest.format != FORMAT || manifest.version != 1 {
        return Err(corrupt(format!(
            "format {:?} version {}",
            manifest.format, manifest.version
        )));
    }
    if manifest.dtype != dtype::<T>() {
        return Err(Error::new(
            ErrorKind::Config,
            format!(
                "checkpoint holds elements {}, but is loaded as {}",
                manifest.dtype,
                dtype::<T>()
            ),
        ));
    }
    if D::NDIM.is_some_and(|n| n != manifest.shape.len()) {
        return Err(Error::new(
            ErrorKind::Config,
            format!(
                "checkpoint holds a {}-dimensional array, loaded as {}-dimensional",
                manifest.shape.len(),
                D::NDIM.unwrap_or(0)
            ),
        ));
    }
    manifest.partition()?;
    if manifest.pieces.len() != manifest.ranks {
        return Err(corrupt("piece count differs from rank count".into()));
    }
    Ok(bytes)
}
