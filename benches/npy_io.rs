//! Single-file `.npy` output against the file system's own speed, side by side in one run:
//! a 2 GiB `f64` array written with `DistArray::write_npy` (every rank at once, MPI-IO) and read
//! back with `read_npy` (a new array) and `read_npy_into` (an existing one), against one `dd`
//! stream of the same size to the same directory (`bs=16M`, from `/dev/zero` and to
//! `/dev/null`), against `numpy.load` of the same file (where python3 has NumPy) and against
//! the per-rank-file checkpoint (`save`/`load`). Rounds interleave the variants; each figure
//! is a median with its range.
//!
//! ```text
//! cargo bench --bench npy_io                        # 2 ranks, files under $TMPDIR or /tmp
//! SPMD_BENCH_RANKS=1 cargo bench --bench npy_io     # 1 rank
//! SPMD_BENCH_IO_DIR=/dev/shm cargo bench --bench npy_io
//! SPMD_BENCH_COLD=1 cargo bench --bench npy_io      # every read from the disk (root only)
//! SPMD_BENCH_ROUNDS=10 cargo bench --bench npy_io   # rounds (default 6)
//! ```
//!
//! Nothing is synced to disk inside a timed variant; the root runs `sync` before each one, so
//! every write starts with nothing dirty. On a machine with memory to spare all of them then
//! measure the path to the page cache, which is what a job writing a field sees, and every
//! read finds its file cached: a read is then a copy from memory, and into a new array the
//! first touch of its fresh memory. With `SPMD_BENCH_COLD=1` the root also drops the page
//! cache (`/proc/sys/vm/drop_caches`, which needs root) before each read, `dd`'s included,
//! so every read measures the file system itself. The order of the variants turns every round.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use ndarray::Ix1;
use spmd::array::{CheckpointFormat, DistArray, Split};
use spmd::{Comm, Spmd};

mod support;

/// 2 GiB of `f64`.
const ELEMENTS: usize = 1 << 28;
/// Rounds unless `SPMD_BENCH_ROUNDS` says otherwise.
const ROUNDS: usize = 6;
/// The variants before this one write; from it on they read.
const FIRST_READ: usize = 4;

fn main() {
    if !support::under_mpirun() {
        support::relaunch_under_mpirun();
    }
    let spmd = Spmd::init().expect("MPI init");
    let world = spmd.world();
    let rounds: usize = std::env::var("SPMD_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(ROUNDS);
    let cold = std::env::var_os("SPMD_BENCH_COLD").is_some_and(|v| v != "0");
    let base = std::env::var_os("SPMD_BENCH_IO_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let mut id = u64::from(std::process::id());
    world.broadcast(0, &mut id).unwrap();
    let dir = base.join(format!("spmd-bench-npy-{id}"));
    if spmd.is_root() {
        std::fs::create_dir_all(&dir).unwrap();
    }
    world.barrier();
    let x = DistArray::from_fn(world, ELEMENTS, Split::block(0), |i| i as f64 * 0.5).unwrap();
    // Touched once here, so reading into it measures the I/O, not the first touch.
    let mut into = DistArray::from_elem(world, ELEMENTS, Split::block(0), 1.0).unwrap();
    let field = dir.join("field.npy");
    let checkpoint = dir.join("checkpoint");
    let single = dir.join("single");
    let dd_file = dir.join("dd.bin");
    let names = [
        "dd write (one stream)",
        "write_npy (MPI-IO)",
        "save (file per rank)",
        "save_with SingleFile (checkpoint: one .npy + chunk CRCs)",
        "dd read (one stream)",
        "read_npy (MPI-IO)",
        "load (file per rank)",
        "load (single-file checkpoint)",
        "read_npy_into (existing array)",
        "bare pread of each rank's span into the same array",
        NUMPY_LOAD,
        "bare pread of each rank's span into a new Vec",
    ];
    // NumPy is the peer a reader of these files would use; without it that row is skipped.
    let python = if spmd.is_root() {
        python_with_numpy()
    } else {
        None
    };
    let mut have_numpy = python.is_some();
    world.broadcast(0, &mut have_numpy).unwrap();
    let mut seconds: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    let mut measure = |k: usize| match k {
        0 => on_root(world, || {
            dd(&["if=/dev/zero", &of(&dd_file), "bs=16M", "count=128"])
        }),
        1 => timed(world, || x.write_npy(&field).unwrap()),
        2 => timed(world, || x.save(&checkpoint).unwrap()),
        3 => timed(world, || {
            x.save_with(&single, CheckpointFormat::SingleFile).unwrap()
        }),
        4 => on_root(world, || {
            dd(&[
                &format!("if={}", dd_file.display()),
                "of=/dev/null",
                "bs=16M",
            ])
        }),
        5 => timed(world, || {
            black_box(DistArray::<f64, Ix1>::read_npy(world, &field, Split::block(0)).unwrap());
        }),
        6 => timed(world, || {
            black_box(DistArray::<f64, Ix1>::load(world, &checkpoint, Split::block(0)).unwrap());
        }),
        7 => timed(world, || {
            black_box(DistArray::<f64, Ix1>::load(world, &single, Split::block(0)).unwrap());
        }),
        8 => timed(world, || into.read_npy_into(&field).unwrap()),
        9 => timed(world, || bare_read(&field, &mut into)),
        10 => reported_by_root(world, || numpy_load_seconds(python.unwrap(), &field)),
        _ => timed(world, || {
            black_box(bare_read_new(&field, world));
        }),
    };
    for round in 0..rounds {
        // Each write goes to a file that does not exist yet, as dd's and a job's would.
        if spmd.is_root() {
            let _ = std::fs::remove_file(&dd_file);
            let _ = std::fs::remove_file(&field);
        }
        // The order turns every round, so writeback of earlier writes and cache warmth fall
        // on every variant alike.
        let (mut writes, mut reads) = (
            (0..FIRST_READ).collect::<Vec<_>>(),
            (FIRST_READ..names.len()).collect::<Vec<_>>(),
        );
        let (w, r) = (writes.len(), reads.len());
        writes.rotate_left(round % w);
        reads.rotate_left(round % r);
        reads.retain(|&k| have_numpy || names[k] != NUMPY_LOAD);
        for k in writes.into_iter().chain(reads) {
            // Nothing dirty when a variant starts: a write is never throttled by the
            // writeback of the one before.
            if spmd.is_root() {
                // SAFETY: sync(2) takes no arguments and cannot fail.
                unsafe { libc::sync() };
                if cold && k >= FIRST_READ {
                    drop_page_cache();
                }
            }
            seconds[k].push(measure(k));
        }
    }
    world.barrier();
    if spmd.is_root() {
        let _ = std::fs::remove_dir_all(&dir);
        println!(
            "\n2 GiB f64 array, {} ranks, {rounds} interleaved rounds in {}, reads {}: median [min .. max]\n",
            world.size(),
            base.display(),
            if cold { "from the disk (page cache dropped)" } else { "from the page cache" }
        );
        println!("| operation | s | GB/s | vs dd (median of per-round ratios) |");
        println!("|---|---:|---:|---:|");
        for (k, name) in names.iter().enumerate() {
            if seconds[k].is_empty() {
                println!("| {name} | skipped: python3 with numpy not found | | |");
                continue;
            }
            let dd_index = if k < FIRST_READ { 0 } else { FIRST_READ };
            let mut ratios: Vec<f64> = (0..rounds)
                .map(|r| seconds[dd_index][r] / seconds[k][r])
                .collect();
            let mut s = seconds[k].clone();
            let (lo, hi) = (min(&s), max(&s));
            let med = support::median(&mut s);
            let gbs = |t: f64| (ELEMENTS * 8) as f64 / t / 1e9;
            println!(
                "| {name} | {med:.3} [{lo:.3} .. {hi:.3}] | {:.2} [{:.2} .. {:.2}] | {:.2} |",
                gbs(med),
                gbs(hi),
                gbs(lo),
                support::median(&mut ratios)
            );
        }
    }
}

/// What `read_npy_into` does at best: each rank `pread`s its block of the file's data (after
/// NumPy's 128-byte header) straight into its piece, with no MPI-IO in between.
fn bare_read(path: &Path, into: &mut DistArray<f64, Ix1>) {
    let first = into.comm().rank() * (ELEMENTS / into.comm().size()); // sizes divide evenly
    let mut piece = into.local_mut();
    pread_block(
        path,
        first,
        piece.as_slice_mut().expect("a contiguous piece"),
    );
}

/// What `read_npy` does at best: the same `pread` into a new zeroed `Vec` (untouched memory
/// until the read writes it, as the new array's is).
fn bare_read_new(path: &Path, world: &Comm) -> Vec<f64> {
    let len = ELEMENTS / world.size();
    let mut values = vec![0.0; len];
    pread_block(path, world.rank() * len, &mut values);
    values
}

fn pread_block(path: &Path, first: usize, values: &mut [f64]) {
    use std::os::unix::fs::FileExt;
    // SAFETY: the f64s' memory viewed as bytes, for as long as `values` is borrowed; every
    // byte pattern is an f64.
    let bytes = unsafe {
        std::slice::from_raw_parts_mut(values.as_mut_ptr().cast::<u8>(), values.len() * 8)
    };
    let file = std::fs::File::open(path).unwrap();
    file.read_exact_at(bytes, 128 + first as u64 * 8).unwrap();
}

const NUMPY_LOAD: &str = "numpy.load (a new array, one process)";

/// A Python that imports NumPy: `python3`, else the system's.
fn python_with_numpy() -> Option<&'static str> {
    ["python3", "/usr/bin/python3"].into_iter().find(|python| {
        Command::new(python)
            .args(["-c", "import numpy"])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// Seconds `numpy.load` takes to read `path` into a new array, timed inside Python (so the
/// interpreter's start is not counted).
fn numpy_load_seconds(python: &str, path: &Path) -> f64 {
    let script = "import sys, time, numpy\n\
                  t = time.perf_counter(); a = numpy.load(sys.argv[1]); t = time.perf_counter() - t\n\
                  assert a.size == int(sys.argv[2]); print(t)";
    let out = Command::new(python)
        .args(["-c", script])
        .arg(path)
        .arg(ELEMENTS.to_string())
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "numpy.load failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("seconds from python3")
}

/// A time measured on the root alone (by `f`), the others waiting, shared with every rank.
fn reported_by_root(world: &Comm, f: impl FnOnce() -> f64) -> f64 {
    world.barrier();
    let mut t = if world.rank() == 0 { f() } else { 0.0 };
    world.broadcast(0, &mut t).unwrap();
    t
}

/// Empties the page cache, so the next read comes from the disk (Linux; root).
fn drop_page_cache() {
    std::fs::write("/proc/sys/vm/drop_caches", "1").unwrap_or_else(|e| {
        panic!("SPMD_BENCH_COLD: cannot drop the page cache ({e}); it needs root on Linux")
    });
}

fn of(path: &Path) -> String {
    format!("of={}", path.display())
}

fn min(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(0.0, f64::max)
}

/// Runs `dd` with `args`, quietly.
fn dd(args: &[&str]) {
    let status = Command::new("dd")
        .args(args)
        .arg("status=none")
        .status()
        .expect("dd");
    assert!(status.success(), "dd {args:?} failed");
}

/// Seconds `f` takes on the root alone, the others waiting.
fn on_root(world: &Comm, f: impl FnOnce()) -> f64 {
    reported_by_root(world, || {
        let start = Instant::now();
        f();
        start.elapsed().as_secs_f64()
    })
}

/// Seconds a collective `f` takes, the slowest rank's.
fn timed(world: &Comm, f: impl FnOnce()) -> f64 {
    world.barrier();
    let start = Instant::now();
    f();
    let mine = start.elapsed().as_secs_f64();
    world.all_reduce(mine, spmd::Op::Max)
}
