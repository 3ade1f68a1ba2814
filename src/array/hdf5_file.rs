//! HDF5 output and input (feature `hdf5`): arrays as datasets of one file written by every rank
//! at once through parallel HDF5's MPI-IO driver, with attributes h5py, ParaView and xarray
//! read, and an XDMF sidecar so ParaView opens 2-D and 3-D fields directly.
//!
//! The Rust binding is `hdf5-metno`, the maintained continuation of the `hdf5` crate: it is the
//! one Rust HDF5 binding with releases this year, it supports HDF5 1.10 to 1.14 and exposes the
//! MPI-IO file driver (`mpio` feature) on the very `mpi-sys` spmd uses.
//!
//! Each rank writes the hyperslab it owns when every split axis is split in blocks (a row
//! split, a process grid); other splits (cyclic, block-cyclic) are first redistributed to row
//! blocks, so each rank writes one contiguous slab.

use std::path::{Path, PathBuf};

use hdf5::types::VarLenUnicode;
use hdf5::{H5Type, Hyperslab, SliceOrIndex};
use ndarray::{Dimension, RemoveAxis};

use super::npy_file::{partial_name, path_key};
use super::split::Layout;
use super::{DistArray, Element, Split};
use crate::collective::{fingerprint, ElementType, Field, Preflight};
use crate::comm::Comm;
use crate::error::{Error, ErrorKind, Result};
use crate::partition::Distribution;

/// One HDF5 file being written by every rank of a communicator: [`create`](Self::create) it,
/// [`write`](Self::write) arrays into it as datasets, [`finish`](Self::finish) it. The file
/// appears at its name only when finished (the ranks write `.NAME.spmd-partial` beside it).
///
/// ```no_run
/// use spmd::array::{DistArray, Hdf5Writer, Split};
/// # fn main() -> spmd::Result<()> {
/// let spmd = spmd::Spmd::init()?;
/// let world = spmd.world();
/// let t = DistArray::from_fn(world, (512, 256), Split::block(0), |(i, j)| (i + j) as f64)?;
/// let p = t.map(|x| x * 2.0);
/// let mut out = Hdf5Writer::create(world, "fields.h5")?;
/// out.write("temperature", &t, &[("units", "K")])?;
/// out.write("pressure", &p, &[])?;
/// out.finish()?; // fields.h5 and fields.xmf (ParaView opens the .xmf)
/// # Ok(()) }
/// ```
pub struct Hdf5Writer {
    comm: Comm,
    file: Option<hdf5::File>,
    path: PathBuf,
    temporary: PathBuf,
    /// Name, shape and XDMF number type of every dataset written, for the sidecar.
    fields: Vec<(String, Vec<usize>, &'static str, usize)>,
}

/// `hdf5`'s error as an `Io` error naming what was being done.
fn h5(what: impl std::fmt::Display) -> impl FnOnce(hdf5::Error) -> Error {
    move |e| Error::new(ErrorKind::Io, format!("{what}: {e}"))
}

/// Opens (or creates) `path` with the MPI-IO driver on `comm` (collective).
fn open(comm: &Comm, path: &Path, create: bool) -> Result<hdf5::File> {
    let handle = crate::comm::ffi::comm_handle(comm);
    let mut builder = hdf5::File::with_options();
    builder.with_fapl(|p| p.mpio(handle, None));
    let opened = if create {
        builder.create(path)
    } else {
        builder.open(path)
    };
    opened.map_err(h5(format!("cannot open {}", path.display())))
}

impl Hdf5Writer {
    /// Creates the file at `path` on every rank of `comm` (collective; an existing file is
    /// replaced when the writer finishes).
    ///
    /// # Errors
    /// `Io` on every rank if the file cannot be created; `Disagreement` if ranks pass
    /// different paths.
    pub fn create(comm: &Comm, path: impl AsRef<Path>) -> Result<Hdf5Writer> {
        let path = path.as_ref();
        let _timer = comm.timed("Hdf5Writer::create", 0);
        let temporary = partial_name(path);
        comm.preflight(Preflight {
            op: "Hdf5Writer::create",
            element: None,
            local_error: temporary.as_ref().err().cloned(),
            agree: &[Field::keyed("the path", path_key(path), &path.display())],
        })?;
        let temporary = temporary?;
        let file = comm
            .share_result(open(comm, &temporary, true))
            .map_err(|e| e.prefixed("Hdf5Writer::create"))?;
        Ok(Hdf5Writer {
            comm: comm.clone(),
            file: Some(file),
            path: path.to_owned(),
            temporary,
            fields: Vec::new(),
        })
    }

    /// Writes `array` as dataset `name` (collective), with attributes `split`, `ranks`,
    /// `spmd_version` and each of `metadata` as a string attribute.
    ///
    /// # Errors
    /// On every rank: `Io` if HDF5 refuses (a name already used, a full disk);
    /// `Disagreement` if ranks pass different names, metadata or arrays; `InvalidPartition`
    /// for an array of another communicator.
    pub fn write<T, D>(
        &mut self,
        name: &str,
        array: &DistArray<T, D>,
        metadata: &[(&str, &str)],
    ) -> Result<()>
    where
        T: Element + H5Type,
        D: Dimension + RemoveAxis,
    {
        const OP: &str = "Hdf5Writer::write";
        let comm = &self.comm;
        let _timer = comm.timed(OP, array.local().len() * std::mem::size_of::<T>());
        let described: String = metadata.iter().map(|(k, v)| format!("{k}={v};")).collect();
        let local_error = (!comm.same_as(&array.comm)).then(|| {
            Error::new(
                ErrorKind::InvalidPartition,
                format!("{OP}: the array lives on another communicator than the file"),
            )
        });
        array.layout_preflight(
            OP,
            local_error,
            &[
                Field::keyed("the dataset name", fingerprint(name.bytes()), &name),
                Field::keyed("the metadata", fingerprint(described.bytes()), &described),
            ],
        )?;
        let file = self
            .file
            .as_ref()
            .expect("an unfinished writer holds its file");
        let shape = array.shape().to_vec();
        let dataset = file
            .new_dataset::<T>()
            .shape(shape.clone())
            .create(name)
            .map_err(h5(format!("cannot create dataset {name:?}")));
        let dataset = comm.share_result(dataset).map_err(|e| e.prefixed(OP))?;
        let split_text = array.split().to_string();
        let ranks = comm.size() as u64;
        let mut attributes = vec![
            ("split", split_text.as_str()),
            ("spmd_version", env!("CARGO_PKG_VERSION")),
        ];
        attributes.extend_from_slice(metadata);
        let attributed = (|| {
            dataset
                .new_attr::<u64>()
                .create("ranks")
                .and_then(|a| a.write_scalar(&ranks))
                .map_err(h5("attribute ranks"))?;
            for (key, value) in attributes {
                let text: VarLenUnicode = value
                    .parse()
                    .map_err(|e| Error::new(ErrorKind::Io, format!("attribute {key}: {e}")))?;
                dataset
                    .new_attr::<VarLenUnicode>()
                    .create(key)
                    .and_then(|a| a.write_scalar(&text))
                    .map_err(h5(format!("attribute {key}")))?;
            }
            Ok(())
        })();
        comm.share_result(attributed).map_err(|e| e.prefixed(OP))?;
        // Each rank writes one hyperslab: its own piece when every split axis is in blocks,
        // else its block of rows after a redistribution.
        let blocks;
        let source = if all_blocks(&array.layout) {
            array
        } else {
            blocks = array.redistribute(Split::block(0))?;
            &blocks
        };
        let written = (|| {
            let piece = source.local();
            if piece.is_empty() {
                return Ok(());
            }
            let piece = piece.as_standard_layout();
            let slab = hyperslab(&source.layout, comm.rank(), &shape);
            dataset
                .write_slice(piece.view(), slab)
                .map_err(h5(format!("cannot write dataset {name:?}")))
        })();
        comm.share_result(written).map_err(|e| e.prefixed(OP))?;
        let (number, precision) = xdmf_number::<T>();
        self.fields
            .push((name.to_owned(), shape, number, precision));
        Ok(())
    }

    /// Closes the file (collective), moves it to its name and, when a dataset is 2-D or 3-D,
    /// writes `NAME.xmf` beside it for ParaView.
    ///
    /// # Errors
    /// `Io` on every rank if closing, renaming or the sidecar fails.
    pub fn finish(mut self) -> Result<()> {
        const OP: &str = "Hdf5Writer::finish";
        let comm = self.comm.clone();
        let _timer = comm.timed(OP, 0);
        let file = self
            .file
            .take()
            .expect("an unfinished writer holds its file");
        comm.share_result(file.close().map_err(h5("cannot close the file")))
            .map_err(|e| e.prefixed(OP))?;
        let committed = match comm.rank() {
            0 => self.commit(),
            _ => Ok(()),
        };
        comm.share_result(committed).map_err(|e| e.prefixed(OP))
    }

    /// Root: the rename and the sidecar.
    fn commit(&self) -> Result<()> {
        std::fs::rename(&self.temporary, &self.path).map_err(|e| {
            Error::io(
                format!("cannot rename the written file to {}", self.path.display()),
                e,
            )
        })?;
        let grids: Vec<String> = self
            .fields
            .iter()
            .filter(|(_, shape, _, _)| (2..=3).contains(&shape.len()))
            .map(|(name, shape, number, precision)| {
                let file_name = self.path.file_name().unwrap_or_default().to_string_lossy();
                xdmf_grid(&xml(&file_name), &xml(name), shape, number, *precision)
            })
            .collect();
        if grids.is_empty() {
            return Ok(());
        }
        let text = format!(
            "<?xml version=\"1.0\" ?>\n<Xdmf Version=\"3.0\">\n <Domain>\n{} </Domain>\n</Xdmf>\n",
            grids.concat()
        );
        let sidecar = self.path.with_extension("xmf");
        std::fs::write(&sidecar, text)
            .map_err(|e| Error::io(format!("cannot write {}", sidecar.display()), e))
    }
}

impl Drop for Hdf5Writer {
    fn drop(&mut self) {
        // Not finished (an error or an early return, on every rank alike): close the file
        // (collective, as every rank drops it) and remove what was written.
        if let Some(file) = self.file.take() {
            let _ = file.close();
            if self.comm.rank() == 0 {
                let _ = std::fs::remove_file(&self.temporary);
            }
        }
    }
}

impl<T, D> DistArray<T, D>
where
    T: Element + H5Type,
    D: Dimension + RemoveAxis,
{
    /// Writes the array as dataset `name` of a new HDF5 file at `path` (collective); several
    /// arrays in one file: [`Hdf5Writer`].
    ///
    /// # Errors
    /// As [`Hdf5Writer::create`] and [`Hdf5Writer::write`].
    pub fn write_hdf5(&self, path: impl AsRef<Path>, name: &str) -> Result<()> {
        let mut out = Hdf5Writer::create(&self.comm, path)?;
        out.write(name, self, &[])?;
        out.finish()
    }

    /// Reads dataset `name` of the HDF5 file at `path` (any writer: spmd, h5py, …) as an array
    /// split by `split` over `comm` (collective; every rank reads a hyperslab).
    ///
    /// # Errors
    /// On every rank: `Io` if the file or dataset is missing or holds another element type or
    /// number of dimensions; `Shape` if `split` does not fit; `Disagreement` if ranks pass
    /// different paths, names or splits.
    pub fn read_hdf5(
        comm: &Comm,
        path: impl AsRef<Path>,
        name: &str,
        split: Split,
    ) -> Result<DistArray<T, D>> {
        const OP: &str = "DistArray::read_hdf5";
        let path = path.as_ref();
        let _timer = comm.timed(OP, 0);
        comm.preflight(Preflight {
            op: OP,
            element: Some(ElementType::of::<T>()),
            local_error: None,
            agree: &[
                Field::keyed("the path", path_key(path), &path.display()),
                Field::keyed("the dataset name", fingerprint(name.bytes()), &name),
                Field::keyed("the split", split.key(), &split),
            ],
        })?;
        let file = comm
            .share_result(open(comm, path, false))
            .map_err(|e| e.prefixed(OP))?;
        let dataset = (|| {
            let dataset = file
                .dataset(name)
                .map_err(h5(format!("{}: no dataset {name:?}", path.display())))?;
            let found = dataset
                .dtype()
                .and_then(|t| t.to_descriptor())
                .map_err(h5(format!("{}: dataset {name:?}", path.display())))?;
            let wanted = T::type_descriptor();
            if found != wanted {
                return Err(Error::new(
                    ErrorKind::Io,
                    format!(
                        "{}: dataset {name:?} holds {found}, not {wanted} ({})",
                        path.display(),
                        std::any::type_name::<T>()
                    ),
                ));
            }
            let shape = dataset.shape();
            match D::NDIM {
                Some(n) if n != shape.len() => Err(Error::new(
                    ErrorKind::Io,
                    format!(
                        "{}: dataset {name:?} is {}-dimensional (shape {shape:?}), not {n}-dimensional",
                        path.display(),
                        shape.len()
                    ),
                )),
                _ => Ok((dataset, shape)),
            }
        })();
        let (dataset, shape) = comm.share_result(dataset).map_err(|e| e.prefixed(OP))?;
        let dims =
            D::from_dimension(&ndarray::IxDyn(&shape)).expect("checked number of dimensions");
        let target = Layout::new(split, &shape, comm.size());
        comm.preflight(Preflight {
            op: OP,
            element: None,
            local_error: target.as_ref().err().cloned().map(|e| e.prefixed(OP)),
            agree: &[],
        })?;
        let direct = target.as_ref().is_ok_and(all_blocks);
        let landing = if direct { split } else { Split::block(0) };
        let mut array = DistArray::from_elem(comm, dims, landing, T::default())?;
        let read = (|| {
            if array.local().is_empty() {
                return Ok(());
            }
            let slab = hyperslab(&array.layout, comm.rank(), &shape);
            let piece = dataset
                .read_slice::<T, _, D>(slab)
                .map_err(h5(format!("cannot read dataset {name:?}")))?;
            array.local_mut().assign(&piece);
            Ok(())
        })();
        comm.share_result(read).map_err(|e| e.prefixed(OP))?;
        drop(dataset);
        comm.share_result(file.close().map_err(h5("cannot close the file")))
            .map_err(|e| e.prefixed(OP))?;
        if direct {
            Ok(array)
        } else {
            array.redistribute(split)
        }
    }
}

/// Whether every split axis is split in blocks (each rank's piece is one hyperslab).
fn all_blocks(layout: &Layout) -> bool {
    layout
        .parts()
        .all(|p| p.partition.distribution() == Distribution::Block)
}

/// `rank`'s piece of an all-blocks layout as a hyperslab.
fn hyperslab(layout: &Layout, rank: usize, shape: &[usize]) -> Hyperslab {
    let axes = (0..shape.len())
        .map(|axis| {
            let range = match layout.coord_along(rank, axis) {
                Some((coord, partition)) => partition.range(coord),
                None => 0..shape[axis],
            };
            SliceOrIndex::SliceCount {
                start: range.start,
                step: 1,
                count: range.len(),
                block: 1,
            }
        })
        .collect::<Vec<_>>();
    Hyperslab::from(axes)
}

/// `text` with XML's special characters escaped, for attribute values and element text.
fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// XDMF's number type and precision for `T`.
fn xdmf_number<T: 'static>() -> (&'static str, usize) {
    let size = std::mem::size_of::<T>();
    let name = std::any::type_name::<T>();
    let number = match name {
        "f32" | "f64" => "Float",
        "i8" => "Char",
        "u8" => "UChar",
        n if n.starts_with('u') => "UInt",
        _ => "Int",
    };
    (number, size)
}

/// One XDMF uniform grid holding dataset `name` of `file` as a node-centred scalar on a
/// unit-spaced rectilinear mesh of `shape` (2-D or 3-D).
fn xdmf_grid(file: &str, name: &str, shape: &[usize], number: &str, precision: usize) -> String {
    let dims = shape
        .iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(" ");
    let d = shape.len();
    let (topology, geometry) = if d == 2 {
        ("2DCoRectMesh", "ORIGIN_DXDY")
    } else {
        ("3DCoRectMesh", "ORIGIN_DXDYDZ")
    };
    let zeros = vec!["0"; d].join(" ");
    let ones = vec!["1"; d].join(" ");
    format!(
        "  <Grid Name=\"{name}\" GridType=\"Uniform\">\n   <Topology TopologyType=\"{topology}\" Dimensions=\"{dims}\"/>\n   <Geometry GeometryType=\"{geometry}\">\n    <DataItem Dimensions=\"{d}\" NumberType=\"Float\" Precision=\"8\" Format=\"XML\">{zeros}</DataItem>\n    <DataItem Dimensions=\"{d}\" NumberType=\"Float\" Precision=\"8\" Format=\"XML\">{ones}</DataItem>\n   </Geometry>\n   <Attribute Name=\"{name}\" AttributeType=\"Scalar\" Center=\"Node\">\n    <DataItem Dimensions=\"{dims}\" NumberType=\"{number}\" Precision=\"{precision}\" Format=\"HDF\">{file}:/{name}</DataItem>\n   </Attribute>\n  </Grid>\n"
    )
}
