//! Single-file `.npy` scenarios: every split written by P ranks at once must be the file
//! `numpy.save` writes for the global array (checked here with ndarray-npy's reader and, when
//! NumPy is installed, byte for byte against `numpy.save`), read back at another rank count and
//! split, and every bad file or path refused with the same error on every rank.

use std::path::{Path, PathBuf};

use ndarray::{ArrayD, Dimension, IxDyn};
use ndarray_npy::ReadNpyExt;
use spmd::array::{Boundary, DistArray, Element, NpyOrder, Split, SplitAxis};
use spmd::{Comm, Distribution, ErrorKind};

use crate::harness::{expect_success, launch, python_check, trial, Module, Scenario};
use crate::support::{expect_same_error, init, report_ok};

static NPY: Scenario = Scenario {
    name: "npy_file",
    run,
};

pub const MODULE: Module = Module {
    scenarios: &[&NPY],
    trials,
};

/// One array written and read back: name, shape, written split, element type, order,
/// ghost width when written, split when read back.
struct Case {
    name: &'static str,
    shape: &'static [usize],
    split: &'static str,
    dtype: &'static str,
    fortran: bool,
    ghosts: usize,
    read_split: &'static str,
}

const fn case(
    name: &'static str,
    shape: &'static [usize],
    split: &'static str,
    dtype: &'static str,
    fortran: bool,
    read_split: &'static str,
) -> Case {
    Case {
        name,
        shape,
        split,
        dtype,
        fortran,
        ghosts: 0,
        read_split,
    }
}

/// Every split kind along every axis of 1-, 2- and 3-D arrays, process grids, both orders,
/// three element types, pieces that are empty on some ranks and an empty array.
const CASES: &[Case] = &[
    case("v_block", &[1001], "b0", "f8", false, "c0"),
    case("v_cyclic", &[1001], "c0", "f8", false, "b0"),
    case("v_bc7", &[1001], "k0.7", "i4", true, "k0.3"),
    Case {
        ghosts: 1,
        ..case("m_b0_ghosts", &[37, 23], "b0", "f8", false, "c1")
    },
    case("m_b1", &[37, 23], "b1", "f8", true, "b0"),
    case("m_c0", &[37, 23], "c0", "u1", false, "g2"),
    case("m_c1", &[37, 23], "c1", "f8", false, "k0.4"),
    case("m_k0", &[37, 23], "k0.4", "f8", true, "c1"),
    case("m_k1", &[37, 23], "k1.5", "i4", false, "b1"),
    Case {
        ghosts: 2,
        ..case("m_grid", &[37, 23], "g2", "f8", false, "c0")
    },
    case("c_b2", &[9, 7, 5], "b2", "f8", false, "c1"),
    case("c_c2", &[9, 7, 5], "c2", "f8", true, "b0"),
    case("c_k1", &[9, 7, 5], "k1.2", "f8", false, "g3"),
    case("c_c0", &[9, 7, 5], "c0", "i4", true, "k2.2"),
    case("c_grid", &[9, 7, 5], "g3", "f8", false, "x"),
    case("c_mixed", &[9, 7, 5], "x", "f8", true, "b1"),
    case("m_empty_pieces", &[2, 30], "b0", "f8", false, "c0"),
    case("m_empty", &[0, 5], "b0", "f8", false, "b1"),
    case("m_one_row_fortran", &[1, 9], "b1", "f8", true, "b0"),
];

/// `b0` block, `c1` cyclic, `k1.5` block-cyclic(5) along axis 1; `g2` a block grid over the
/// first two axes; `x` cyclic along axis 0 times block-cyclic(2) along axis 2.
fn split_of(spec: &str) -> Split {
    let axis = |s: &str| s[1..].split('.').next().unwrap().parse::<usize>().unwrap();
    match &spec[..1] {
        "b" => Split::block(axis(spec)),
        "c" => Split::cyclic(axis(spec)),
        "k" => {
            let block = spec.split('.').nth(1).unwrap().parse().unwrap();
            Split::block_cyclic(axis(spec), block)
        }
        "g" => Split::grid_auto(axis(spec)),
        "x" => Split::from_axes(&[
            SplitAxis {
                axis: 0,
                distribution: Distribution::Cyclic,
                ranks: None,
            },
            SplitAxis {
                axis: 2,
                distribution: Distribution::BlockCyclic(2),
                ranks: None,
            },
        ]),
        other => panic!("unknown split {other}"),
    }
}

/// The element at C-order position `flat`, per element type (exact in every type).
fn f8(flat: usize) -> f64 {
    flat as f64 * 0.5 + 1.0
}
fn i4(flat: usize) -> i32 {
    flat as i32 * 3 - 7
}
fn u1(flat: usize) -> u8 {
    (flat % 251) as u8
}

/// The C-order position of `index` in `shape`.
fn flat(shape: &[usize], index: &IxDyn) -> usize {
    shape
        .iter()
        .zip(index.slice())
        .fold(0, |acc, (&n, &i)| acc * n + i)
}

fn serial<T>(shape: &[usize], value: fn(usize) -> T) -> ArrayD<T> {
    ArrayD::from_shape_fn(IxDyn(shape), |index| value(flat(shape, &index)))
}

fn write_case<T: Element + ndarray_npy::WritableElement + ndarray_npy::ReadableElement>(
    world: &Comm,
    dir: &Path,
    c: &Case,
    value: fn(usize) -> T,
) {
    let shape = c.shape;
    let a = DistArray::from_fn(world, IxDyn(shape), split_of(c.split), |index: IxDyn| {
        value(flat(shape, &index))
    })
    .unwrap();
    let a = if c.ghosts > 0 {
        let boundaries = vec![Boundary::Fixed; a.split().axes().count()];
        let mut a = a.with_ghosts_per_axis(c.ghosts, &boundaries).unwrap();
        a.exchange_halos().unwrap();
        a
    } else {
        a
    };
    let order = if c.fortran {
        NpyOrder::Fortran
    } else {
        NpyOrder::C
    };
    a.write_npy_in(dir.join(format!("{}.npy", c.name)), order)
        .unwrap_or_else(|e| panic!("{}: {e}", c.name));
}

fn read_case<T>(world: &Comm, dir: &Path, c: &Case, value: fn(usize) -> T)
where
    T: Element
        + ndarray_npy::WritableElement
        + ndarray_npy::ReadableElement
        + PartialEq
        + std::fmt::Debug,
{
    let b = DistArray::<T, IxDyn>::read_npy(
        world,
        dir.join(format!("{}.npy", c.name)),
        split_of(c.read_split),
    )
    .unwrap_or_else(|e| panic!("{}: {e}", c.name));
    let all = b.all_gather().unwrap();
    assert_eq!(
        all,
        serial(c.shape, value),
        "{}: read back with {}",
        c.name,
        c.read_split
    );
    // Into an existing array with the written split and ghosts, whose memory is reused.
    let mut into =
        DistArray::<T, IxDyn>::from_elem(world, IxDyn(c.shape), split_of(c.split), T::default())
            .unwrap();
    if c.ghosts > 0 {
        let boundaries = vec![Boundary::Fixed; into.split().axes().count()];
        into = into.with_ghosts_per_axis(c.ghosts, &boundaries).unwrap();
    }
    into.read_npy_into(dir.join(format!("{}.npy", c.name)))
        .unwrap_or_else(|e| panic!("{}: {e}", c.name));
    assert_eq!(
        into.all_gather().unwrap(),
        serial(c.shape, value),
        "{}: read into",
        c.name
    );
}

fn dir_of() -> PathBuf {
    PathBuf::from(std::env::var("NPY_DIR").expect("NPY_DIR"))
}

/// `NPY_MODE`: write (every case), read (every case, with its read split), bad (every bad
/// input, which must fail alike on every rank).
fn run() {
    let spmd = init();
    let world = spmd.world();
    let dir = dir_of();
    match std::env::var("NPY_MODE").expect("NPY_MODE").as_str() {
        "write" => {
            for c in CASES {
                match c.dtype {
                    "f8" => write_case(world, &dir, c, f8),
                    "i4" => write_case(world, &dir, c, i4),
                    _ => write_case(world, &dir, c, u1),
                }
            }
        }
        "read" => {
            for c in CASES {
                match c.dtype {
                    "f8" => read_case(world, &dir, c, f8),
                    "i4" => read_case(world, &dir, c, i4),
                    _ => read_case(world, &dir, c, u1),
                }
            }
        }
        "bad" => bad_inputs(world, &dir),
        other => panic!("unknown NPY_MODE {other}"),
    }
    report_ok("npy_file", &spmd);
}

/// Each bad file or path: the same error on every rank, and nothing left that looks valid.
fn bad_inputs(world: &Comm, dir: &Path) {
    type F2 = DistArray<f64, ndarray::Ix2>;
    let read = |name: &str| F2::read_npy(world, dir.join(name), Split::block(0));
    let refused = |name: &str, expected: &str| {
        let e = expect_same_error(world, name, read(name), ErrorKind::Io);
        assert!(
            e.message().contains(expected),
            "{name}: {e}\nexpected {expected:?}"
        );
        assert!(e.message().contains("DistArray::read_npy"), "{e}");
    };
    refused("missing.npy", "cannot open");
    refused("garbage.npy", "not a .npy");
    refused("truncated.npy", "truncated");
    refused("longer.npy", "longer than its header says");
    let e = expect_same_error(
        world,
        "another element type",
        DistArray::<i32, ndarray::Ix2>::read_npy(world, dir.join("good.npy"), Split::block(0)),
        ErrorKind::Io,
    );
    assert!(
        e.message()
            .contains("holds elements of type '<f8', not '<i4'"),
        "{e}"
    );
    let e = expect_same_error(
        world,
        "another number of dimensions",
        DistArray::<f64, ndarray::Ix3>::read_npy(world, dir.join("good.npy"), Split::block(0)),
        ErrorKind::Io,
    );
    assert!(e.message().contains("2-dimensional"), "{e}");
    let mut smaller = F2::from_elem(world, (5, 4), Split::block(0), 0.0).unwrap();
    let e = expect_same_error(
        world,
        "into another shape",
        smaller.read_npy_into(dir.join("good.npy")),
        ErrorKind::Shape,
    );
    assert!(
        e.message()
            .contains("holds shape [6, 4], the array has [5, 4]"),
        "{e}"
    );
    expect_same_error(
        world,
        "a split beyond the file's axes",
        F2::read_npy(world, dir.join("good.npy"), Split::block(2)),
        ErrorKind::Shape,
    );
    let a = F2::from_fn(world, (6, 4), Split::block(0), |(i, j)| (i * 4 + j) as f64).unwrap();
    for target in [
        dir.join("no-such-dir").join("x.npy"),
        PathBuf::from("/proc/spmd-no-permission.npy"),
    ] {
        let e = expect_same_error(
            world,
            "unwritable path",
            a.write_npy(&target),
            ErrorKind::Io,
        );
        assert!(e.message().contains("DistArray::write_npy"), "{e}");
        assert!(!target.exists(), "{} was left behind", target.display());
    }
    if world.size() > 1 {
        let mine = dir.join(format!("rank-{}.npy", world.rank()));
        let e = expect_same_error(
            world,
            "paths that differ",
            a.write_npy(&mine),
            ErrorKind::Disagreement,
        );
        assert!(e.message().contains("the path"), "{e}");
        assert!(!mine.exists());
    }
    let flags = DistArray::from_elem(world, 10, Split::block(0), true).unwrap();
    let e = expect_same_error(
        world,
        "bool elements",
        flags.write_npy(dir.join("flags.npy")),
        ErrorKind::Config,
    );
    assert!(e.message().contains("f32, f64"), "{e}");
    // Nothing is ever left under a temporary name.
    let partial = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().ends_with(".spmd-partial"));
    assert!(partial.is_none(), "{partial:?} was left behind");
}

fn trial_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("npy")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn step(ranks: usize, dir: &Path, mode: &str) -> Result<(), String> {
    let dir = dir.to_str().unwrap();
    let out = launch(&NPY, ranks, &[], &[("NPY_DIR", dir), ("NPY_MODE", mode)]);
    expect_success(&NPY, ranks, &out)
}

/// Harness side: every written file read with ndarray-npy (an independent reader) equals the
/// serial array; one header is the exact text NumPy writes.
fn check_files(dir: &Path) -> Result<(), String> {
    for c in CASES {
        let path = dir.join(format!("{}.npy", c.name));
        let file = std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let ok = match c.dtype {
            "f8" => ArrayD::<f64>::read_npy(file).map(|a| a == serial(c.shape, f8)),
            "i4" => ArrayD::<i32>::read_npy(file).map(|a| a == serial(c.shape, i4)),
            _ => ArrayD::<u8>::read_npy(file).map(|a| a == serial(c.shape, u1)),
        }
        .map_err(|e| format!("{}: {e}", c.name))?;
        if !ok {
            return Err(format!(
                "{}: the file does not hold the serial array",
                c.name
            ));
        }
    }
    // What numpy.save (1.24) writes for a (37, 23) float64 array, 128 bytes to the data.
    let bytes = std::fs::read(dir.join("m_c1.npy")).map_err(|e| e.to_string())?;
    let text = "{'descr': '<f8', 'fortran_order': False, 'shape': (37, 23), }";
    let mut expected = b"\x93NUMPY\x01\x00\x76\x00".to_vec();
    expected.extend_from_slice(text.as_bytes());
    expected.resize(127, b' ');
    expected.push(b'\n');
    if bytes[..128] != expected[..] {
        return Err(format!(
            "header differs from NumPy's: {:?}",
            String::from_utf8_lossy(&bytes[..128])
        ));
    }
    numpy_check(dir)
}

const NUMPY_CHECK: &str = r#"
import io, sys, numpy as np
d = sys.argv[1]
values = {"f8": lambda f: f * 0.5 + 1.0, "i4": lambda f: (f * 3 - 7).astype("<i4"), "u1": lambda f: (f % 251).astype("u1")}
for line in sys.argv[2:]:
    name, shape, dtype, order = line.split(":")
    shape = tuple(int(s) for s in shape.split("x")) if shape else ()
    a = values[dtype](np.arange(int(np.prod(shape)), dtype=np.int64)).reshape(shape)
    if order == "F":
        a = np.asfortranarray(a)
    buf = io.BytesIO(); np.save(buf, a)
    got = open(f"{d}/{name}.npy", "rb").read()
    assert got == buf.getvalue(), f"{name}: bytes differ from numpy.save"
    assert np.array_equal(np.load(f"{d}/{name}.npy"), a), f"{name}: numpy.load differs"
print("numpy ok", len(sys.argv) - 2)
"#;

/// The files against `numpy.save` and `numpy.load` (skipped with a note without NumPy).
fn numpy_check(dir: &Path) -> Result<(), String> {
    let cases = CASES.iter().map(|c| {
        let shape: Vec<String> = c.shape.iter().map(|n| n.to_string()).collect();
        let order = if c.fortran { "F" } else { "C" };
        format!("{}:{}:{}:{order}", c.name, shape.join("x"), c.dtype)
    });
    let args = std::iter::once(dir.to_str().unwrap().to_owned()).chain(cases);
    python_check("numpy", "python3-numpy", NUMPY_CHECK, args)
}

/// Stale files at the target and temporary names must not survive a write (a longer old
/// file would otherwise keep its tail).
fn plant_stale_files(dir: &Path) {
    for name in ["v_block.npy", ".v_block.npy.spmd-partial"] {
        std::fs::write(dir.join(name), vec![0xAB_u8; 100_000]).unwrap();
    }
}

fn trials() -> Vec<libtest_mimic::Trial> {
    let mut trials: Vec<_> = [(1, 3), (2, 4), (3, 1), (4, 2)]
        .into_iter()
        .map(|(p, q)| {
            trial(format!("npy_file_write_np{p}_read_np{q}"), move || {
                let dir = trial_dir(&format!("np{p}"));
                plant_stale_files(&dir);
                step(p, &dir, "write")?;
                check_files(&dir)?;
                step(q, &dir, "read")
            })
        })
        .collect();
    for ranks in [1, 3] {
        trials.push(trial(format!("npy_file_bad_input_np{ranks}"), move || {
            let dir = trial_dir(&format!("bad{ranks}"));
            let good = serial(&[6, 4], f8);
            ndarray_npy::write_npy(dir.join("good.npy"), &good).map_err(|e| e.to_string())?;
            let bytes = std::fs::read(dir.join("good.npy")).unwrap();
            std::fs::write(dir.join("garbage.npy"), b"x,y\n1,2\n").unwrap();
            std::fs::write(dir.join("truncated.npy"), &bytes[..bytes.len() - 8]).unwrap();
            let mut longer = bytes.clone();
            longer.extend_from_slice(&[0; 8]);
            std::fs::write(dir.join("longer.npy"), longer).unwrap();
            step(ranks, &dir, "bad")
        }));
    }
    trials
}
