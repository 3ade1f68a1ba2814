//! Single-file `.npy` output against the file system's own speed, side by side in one run:
//! a 2 GiB `f64` array written with `DistArray::write_npy` (every rank at once, MPI-IO) and read
//! back with `read_npy` (a new array) and `read_npy_into` (an existing one), against one `dd` stream of the same size to the same directory
//! (`bs=16M`, from `/dev/zero` and to `/dev/null`), and against the per-rank-file checkpoint
//! (`save`/`load`). Rounds interleave the variants; each figure is a median with its range.
//!
//! ```text
//! cargo bench --bench npy_io                        # 2 ranks, files under $TMPDIR or /tmp
//! SPMD_BENCH_RANKS=1 cargo bench --bench npy_io     # 1 rank
//! SPMD_BENCH_IO_DIR=/dev/shm cargo bench --bench npy_io
//! ```
//!
//! Nothing is synced to disk by any variant: on a machine with memory to spare all of them
//! measure the path to the page cache, which is what a job writing a field sees.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use ndarray::Ix1;
use spmd::array::{DistArray, Split};
use spmd::{Comm, Spmd};

mod support;

/// 2 GiB of `f64`.
const ELEMENTS: usize = 1 << 28;
const ROUNDS: usize = 5;

fn main() {
    if !support::under_mpirun() {
        support::relaunch_under_mpirun();
    }
    let spmd = Spmd::init().expect("MPI init");
    let world = spmd.world();
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
    let dd_file = dir.join("dd.bin");
    let names = [
        "dd write (one stream)",
        "write_npy (MPI-IO)",
        "save (file per rank)",
        "dd read (one stream)",
        "read_npy (MPI-IO)",
        "load (file per rank)",
        "read_npy_into (existing array)",
    ];
    let mut seconds: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    for _ in 0..ROUNDS {
        // Each write goes to a file that does not exist yet, as dd's and a job's would.
        if spmd.is_root() {
            let _ = std::fs::remove_file(&dd_file);
            let _ = std::fs::remove_file(&field);
        }
        seconds[0].push(on_root(world, || {
            dd(&["if=/dev/zero", &of(&dd_file), "bs=16M", "count=128"])
        }));
        seconds[1].push(timed(world, || x.write_npy(&field).unwrap()));
        seconds[2].push(timed(world, || x.save(&checkpoint).unwrap()));
        seconds[3].push(on_root(world, || {
            dd(&[
                &format!("if={}", dd_file.display()),
                "of=/dev/null",
                "bs=16M",
            ])
        }));
        seconds[4].push(timed(world, || {
            black_box(DistArray::<f64, Ix1>::read_npy(world, &field, Split::block(0)).unwrap());
        }));
        seconds[5].push(timed(world, || {
            black_box(DistArray::<f64, Ix1>::load(world, &checkpoint, Split::block(0)).unwrap());
        }));
        seconds[6].push(timed(world, || into.read_npy_into(&field).unwrap()));
    }
    world.barrier();
    if spmd.is_root() {
        let _ = std::fs::remove_dir_all(&dir);
        println!(
            "\n2 GiB f64 array, {} ranks, {ROUNDS} interleaved rounds in {}: median [min .. max]\n",
            world.size(),
            base.display()
        );
        println!("| operation | s | GB/s | vs dd (median of per-round ratios) |");
        println!("|---|---:|---:|---:|");
        for (k, name) in names.iter().enumerate() {
            let dd_index = if k < 3 { 0 } else { 3 };
            let mut ratios: Vec<f64> = (0..ROUNDS)
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

/// Seconds `f` takes on the root alone, the others waiting at the barrier.
fn on_root(world: &Comm, f: impl FnOnce()) -> f64 {
    world.barrier();
    let start = Instant::now();
    if world.rank() == 0 {
        f();
    }
    let mut t = start.elapsed().as_secs_f64();
    world.broadcast(0, &mut t).unwrap();
    t
}

/// Seconds a collective `f` takes, the slowest rank's.
fn timed(world: &Comm, f: impl FnOnce()) -> f64 {
    world.barrier();
    let start = Instant::now();
    f();
    let mine = start.elapsed().as_secs_f64();
    world.all_reduce(mine, spmd::Op::Max)
}
