//! Parallel HDF5 scenarios (feature `hdf5`): arrays of every split kind written by P ranks as
//! datasets of one file, checked with h5py (when installed) against the serial arrays and
//! attributes, read back at another rank count and split; bad files and names refused on every
//! rank.

use std::path::{Path, PathBuf};

use ndarray::{ArrayD, Dimension, IxDyn};
use spmd::array::{DistArray, Hdf5Writer, Split};
use spmd::{Comm, ErrorKind};

use crate::harness::{expect_success, launch, python_check, trial, Module, Scenario};
use crate::support::{expect_same_error, init, report_ok};

static HDF5: Scenario = Scenario {
    name: "hdf5_file",
    run,
};

pub const MODULE: Module = Module {
    scenarios: &[&HDF5],
    trials,
};

/// Dataset name, shape, written split, read-back split.
type Case = (&'static str, &'static [usize], fn() -> Split, fn() -> Split);

const CASES: &[Case] = &[
    ("rows", &[37, 23], || Split::block(0), || Split::cyclic(1)),
    (
        "columns_cyclic",
        &[37, 23],
        || Split::cyclic(1),
        || Split::grid_auto(2),
    ),
    (
        "tiles",
        &[37, 23],
        || Split::grid_auto(2),
        || Split::block_cyclic(0, 4),
    ),
    (
        "cube_bc",
        &[9, 7, 5],
        || Split::block_cyclic(2, 2),
        || Split::block(1),
    ),
    ("vector", &[1001], || Split::cyclic(0), || Split::block(0)),
    ("few_rows", &[2, 30], || Split::block(0), || Split::block(0)),
];

fn value(flat: usize) -> f64 {
    flat as f64 * 0.25 - 3.0
}

fn flat(shape: &[usize], index: &IxDyn) -> usize {
    shape
        .iter()
        .zip(index.slice())
        .fold(0, |acc, (&n, &i)| acc * n + i)
}

fn serial(shape: &[usize]) -> ArrayD<f64> {
    ArrayD::from_shape_fn(IxDyn(shape), |index| value(flat(shape, &index)))
}

fn file() -> PathBuf {
    PathBuf::from(std::env::var("H5_DIR").expect("H5_DIR")).join("fields.h5")
}

fn write_all(world: &Comm) {
    let mut out = Hdf5Writer::create(world, file()).unwrap();
    for (name, shape, split, _) in CASES {
        let a = DistArray::from_fn(world, IxDyn(shape), split(), |i: IxDyn| {
            value(flat(shape, &i))
        })
        .unwrap();
        out.write(name, &a, &[("units", "K"), ("case", name)])
            .unwrap();
    }
    let counts =
        DistArray::from_fn(world, (6, 4), Split::cyclic(0), |(i, j)| (i * 4 + j) as i32).unwrap();
    out.write("counts", &counts, &[]).unwrap();
    out.finish().unwrap();
}

fn read_all(world: &Comm) {
    for (name, shape, _, read_split) in CASES {
        let b = DistArray::<f64, IxDyn>::read_hdf5(world, file(), name, read_split())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(b.split(), b.split());
        assert_eq!(b.all_gather().unwrap(), serial(shape), "{name}");
    }
    let counts =
        DistArray::<i32, ndarray::Ix2>::read_hdf5(world, file(), "counts", Split::block(1))
            .unwrap();
    let expected = ndarray::Array2::from_shape_fn((6, 4), |(i, j)| (i * 4 + j) as i32);
    assert_eq!(counts.all_gather().unwrap(), expected);
}

fn bad_inputs(world: &Comm) {
    type F2 = DistArray<f64, ndarray::Ix2>;
    let dir = file().parent().unwrap().to_owned();
    let e = expect_same_error(
        world,
        "missing file",
        F2::read_hdf5(world, dir.join("none.h5"), "rows", Split::block(0)),
        ErrorKind::Io,
    );
    assert!(e.message().contains("cannot open"), "{e}");
    let e = expect_same_error(
        world,
        "missing dataset",
        F2::read_hdf5(world, file(), "nothing", Split::block(0)),
        ErrorKind::Io,
    );
    assert!(e.message().contains("no dataset \"nothing\""), "{e}");
    let e = expect_same_error(
        world,
        "another element type",
        DistArray::<i32, ndarray::Ix2>::read_hdf5(world, file(), "rows", Split::block(0)),
        ErrorKind::Io,
    );
    assert!(
        e.message().contains("not int32") || e.message().contains("not i32"),
        "{e}"
    );
    let e = expect_same_error(
        world,
        "another number of dimensions",
        DistArray::<f64, ndarray::Ix3>::read_hdf5(world, file(), "rows", Split::block(0)),
        ErrorKind::Io,
    );
    assert!(e.message().contains("2-dimensional"), "{e}");
    let a = F2::from_fn(world, (6, 4), Split::block(0), |(i, j)| (i * 4 + j) as f64).unwrap();
    let target = dir.join("no-such-dir").join("x.h5");
    let e = expect_same_error(
        world,
        "unwritable path",
        a.write_hdf5(&target, "a"),
        ErrorKind::Io,
    );
    assert!(e.message().contains("Hdf5Writer::create"), "{e}");
    let twice = dir.join("twice.h5");
    let mut out = Hdf5Writer::create(world, &twice).unwrap();
    out.write("a", &a, &[]).unwrap();
    let e = expect_same_error(
        world,
        "a name used twice",
        out.write("a", &a, &[]),
        ErrorKind::Io,
    );
    assert!(e.message().contains("cannot create dataset \"a\""), "{e}");
    drop(out);
    assert!(
        !twice.exists(),
        "an unfinished writer left {}",
        twice.display()
    );
    if world.size() > 1 {
        let name = format!("rank{}", world.rank());
        let mut out = Hdf5Writer::create(world, dir.join("names.h5")).unwrap();
        expect_same_error(
            world,
            "names that differ",
            out.write(&name, &a, &[]),
            ErrorKind::Disagreement,
        );
    }
}

/// `H5_MODE`: write, read, bad.
fn run() {
    let spmd = init();
    let world = spmd.world();
    match std::env::var("H5_MODE").expect("H5_MODE").as_str() {
        "write" => write_all(world),
        "read" => read_all(world),
        "bad" => bad_inputs(world),
        other => panic!("unknown H5_MODE {other}"),
    }
    report_ok("hdf5_file", &spmd);
}

fn trial_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("hdf5")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn step(ranks: usize, dir: &Path, mode: &str) -> Result<(), String> {
    let out = launch(
        &HDF5,
        ranks,
        &[],
        &[("H5_DIR", dir.to_str().unwrap()), ("H5_MODE", mode)],
    );
    expect_success(&HDF5, ranks, &out)
}

const H5PY_CHECK: &str = r#"
import sys, xml.etree.ElementTree as ET, numpy as np, h5py
d = sys.argv[1]
with h5py.File(f"{d}/fields.h5", "r") as f:
    for line in sys.argv[2:]:
        name, shape = line.split(":")
        shape = tuple(int(s) for s in shape.split("x"))
        expected = (np.arange(int(np.prod(shape)), dtype=np.float64) * 0.25 - 3.0).reshape(shape)
        ds = f[name]
        assert ds.dtype == np.float64 and ds.shape == shape, (name, ds.dtype, ds.shape)
        assert np.array_equal(ds[...], expected), f"{name}: data differs"
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in ds.attrs.items()}
        assert attrs["units"] == "K" and attrs["case"] == name and "spmd_version" in attrs and "split" in attrs, attrs
    assert np.array_equal(f["counts"][...], np.arange(24, dtype=np.int32).reshape(6, 4))
grids = ET.parse(f"{d}/fields.xmf").getroot().findall("./Domain/Grid")
assert len(grids) == 6, len(grids)  # every 2-D and 3-D dataset
print("h5py ok")
"#;

/// The file against h5py, or a note that h5py is absent.
fn h5py_check(dir: &Path) -> Result<(), String> {
    let cases = CASES.iter().map(|(name, shape, _, _)| {
        let dims: Vec<String> = shape.iter().map(|n| n.to_string()).collect();
        format!("{name}:{}", dims.join("x"))
    });
    let args = std::iter::once(dir.to_str().unwrap().to_owned()).chain(cases);
    python_check("h5py", "python3-h5py", H5PY_CHECK, args)
}

fn trials() -> Vec<libtest_mimic::Trial> {
    let mut trials: Vec<_> = [(1, 3), (2, 4), (3, 2), (4, 1)]
        .into_iter()
        .map(|(p, q)| {
            trial(format!("hdf5_write_np{p}_read_np{q}"), move || {
                let dir = trial_dir(&format!("np{p}"));
                step(p, &dir, "write")?;
                h5py_check(&dir)?;
                step(q, &dir, "read")
            })
        })
        .collect();
    trials.push(trial("hdf5_bad_input_np3", || {
        let dir = trial_dir("bad");
        step(2, &dir, "write")?;
        step(3, &dir, "bad")
    }));
    trials
}
