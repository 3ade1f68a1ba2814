//! DistArray performance, side by side in one run:
//! - global `sum` and `dot` over 1e8 `f64` against a STREAM-like triad on the same pieces
//!   (memory bandwidth, GB/s);
//! - `exchange_halos` against a hand-written raw rsmpi `MPI_Sendrecv` of the same rows;
//! - the reproducible `sum_exact`/`dot_exact` against the fast `sum`/`dot` (their cost);
//! - peak resident memory of a scatter and gather of a 2 GiB array (in a fresh process, since
//!   the OS reports a high-water mark);
//! - `DistArray::save`/`load` of a 1 GiB array (CRC-32 per piece, manifest, atomic commit)
//!   against each rank writing and reading its piece as a bare `.npy` file;
//! - split-phase halos: the share of the blocking exchange hidden behind interior work, with
//!   and without MPI polls, and the split form's own cost.
//!
//! ```text
//! cargo bench --bench arrays     # relaunches itself under `mpirun -n 2`, once per part
//! SPMD_BENCH_ARRAYS_PART=exact cargo bench --bench arrays    # one part only
//! ```

use std::hint::black_box;
use std::time::Instant;

use mpi::point_to_point::send_receive_into;
use mpi::topology::Communicator;
use mpi::traits::CommunicatorCollectives;
use ndarray::{Array1, Array2, Axis};
use rayon::prelude::*;
use spmd::array::{Boundary, DistArray, Split};
use spmd::{Comm, Spmd};
use support::{calibrate, median, time_block, Variant};

#[path = "arrays/checkpoint.rs"]
mod checkpoint;
#[path = "arrays/overlap.rs"]
mod overlap;
mod support;

const PART_ENV: &str = "SPMD_BENCH_ARRAYS_PART";

fn main() {
    if !support::under_mpirun() {
        // Two jobs: the memory figures need a process that has done nothing else.
        let parts = match std::env::var(PART_ENV) {
            Ok(one) => vec![one],
            Err(_) => ["speed", "exact", "memory", "checkpoint", "overlap"]
                .map(String::from)
                .to_vec(),
        };
        for part in &parts {
            let status = support::mpirun_self(&[(PART_ENV, part.as_str())]);
            if !status.success() {
                std::process::exit(status.code().unwrap_or(1));
            }
        }
        return;
    }
    let spmd = Spmd::init().expect("MPI init");
    match std::env::var(PART_ENV).as_deref() {
        Ok("memory") => memory(&spmd),
        Ok("exact") => exact_cost(&spmd),
        Ok("checkpoint") => checkpoint::cost(&spmd),
        Ok("overlap") => overlap::measure(&spmd),
        _ => {
            bandwidth(&spmd);
            halos(&spmd, 4096, 4096);
            halos(&spmd, 4096, 512);
        }
    }
}

/// Seconds of one call of `f` on every rank at once, the slowest rank's.
fn timed_once(world: &Comm, f: &mut dyn FnMut()) -> f64 {
    world.raw().barrier();
    let start = Instant::now();
    f();
    world.all_reduce(start.elapsed().as_secs_f64(), spmd::Op::Max)
}

fn bandwidth(spmd: &Spmd) {
    let world = spmd.world();
    let n = 100_000_000;
    let x = DistArray::from_fn(world, n, Split::block(0), |i| (i % 1000) as f64).unwrap();
    let y = DistArray::from_fn(world, n, Split::block(0), |i| (i % 7) as f64).unwrap();
    let mut a = vec![0.0_f64; x.local().len()];
    let (b, c) = (x.local(), y.local());
    let (b, c) = (b.as_slice().unwrap(), c.as_slice().unwrap());
    let rounds = 15;
    // STREAM triad a = b + s·c on this rank's pieces, with the same rayon chunking.
    let mut triad = || {
        a.par_chunks_mut(1 << 15)
            .zip(b.par_chunks(1 << 15))
            .zip(c.par_chunks(1 << 15))
            .for_each(|((a, b), c)| {
                for ((a, &b), &c) in a.iter_mut().zip(b).zip(c) {
                    *a = b + 3.0 * c;
                }
            });
        black_box(&a);
    };
    let mut sum = || {
        black_box(x.sum().unwrap());
    };
    let mut dot = || {
        black_box(x.dot(&y).unwrap());
    };
    // Interleaved rounds; ratios per round (bandwidth drifts a lot on a shared machine).
    let mut samples = [Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new()];
    for _ in 0..rounds {
        let t = timed_once(world, &mut triad);
        let s = timed_once(world, &mut sum);
        let d = timed_once(world, &mut dot);
        // GB/s ratios: sum moves 8n in s, triad 24n in t.
        samples[0].push(t);
        samples[1].push(s);
        samples[2].push(d);
        samples[3].push((8.0 / s) / (24.0 / t));
        samples[4].push((16.0 / d) / (24.0 / t));
    }
    let [triad, sum, dot, sum_ratio, dot_ratio] = samples.map(|mut v| median(&mut v));
    if spmd.is_root() {
        let gbs = |bytes: f64, s: f64| bytes / s / 1e9;
        let (t, s, d) = (
            gbs(24.0 * n as f64, triad),
            gbs(8.0 * n as f64, sum),
            gbs(16.0 * n as f64, dot),
        );
        println!(
            "\nmemory bandwidth, {} ranks x {} threads, {n} f64 (global), median of {rounds} interleaved rounds (slowest rank; ratio = median of per-round ratios)\n",
            spmd.size(),
            spmd.threads()
        );
        println!("| kernel | bytes moved | GB/s | vs triad |");
        println!("|---|---:|---:|---:|");
        println!("| STREAM triad (local pieces, no MPI) | 24 n | {t:.2} | 1 |");
        println!("| `DistArray::sum` (+ all_reduce) | 8 n | {s:.2} | {sum_ratio:.3} |");
        println!("| `DistArray::dot` (+ all_reduce) | 16 n | {d:.2} | {dot_ratio:.3} |");
    }
}

/// The reproducible sums against the fast ones on the same arrays, interleaved.
fn exact_cost(spmd: &Spmd) {
    let world = spmd.world();
    let n = 20_000_000;
    // Values over 200 binades, both signs: the exact accumulator touches many limbs.
    let wide = |i: usize| {
        let h = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let sign = if h >> 63 == 0 { 1.0 } else { -1.0 };
        sign * (1.0 + (h >> 12) as f64 / (1u64 << 52) as f64) * 2f64.powi((h % 200) as i32 - 100)
    };
    let x = DistArray::from_fn(world, n, Split::block(0), wide).unwrap();
    let y = DistArray::from_fn(world, n, Split::block(0), |i| wide(i + 7)).unwrap();
    let rounds = 15;
    let kernels: [(&str, &mut dyn FnMut()); 4] = [
        ("sum", &mut || {
            black_box(x.sum().unwrap());
        }),
        ("sum_exact", &mut || {
            black_box(x.sum_exact().unwrap());
        }),
        ("dot", &mut || {
            black_box(x.dot(&y).unwrap());
        }),
        ("dot_exact", &mut || {
            black_box(x.dot_exact(&y).unwrap());
        }),
    ];
    let [mut sum, mut sum_exact, mut dot, mut dot_exact] = kernels.map(|(_, f)| (f, Vec::new()));
    let (mut sum_ratio, mut dot_ratio) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let s = timed_once(world, &mut *sum.0);
        let se = timed_once(world, &mut *sum_exact.0);
        let d = timed_once(world, &mut *dot.0);
        let de = timed_once(world, &mut *dot_exact.0);
        sum.1.push(s);
        sum_exact.1.push(se);
        dot.1.push(d);
        dot_exact.1.push(de);
        sum_ratio.push(se / s);
        dot_ratio.push(de / d);
    }
    if spmd.is_root() {
        let ns = |v: &mut Vec<f64>| median(v) / (n as f64 / spmd.size() as f64) * 1e9;
        println!(
            "\nreproducible sums, {} ranks x {} threads, {n} f64 over 200 binades, median of {rounds} interleaved rounds (slowest rank)\n",
            spmd.size(),
            spmd.threads()
        );
        println!("| kernel | ns per element per rank | exact / fast |");
        println!("|---|---:|---:|");
        println!("| `DistArray::sum` | {:.3} | 1 |", ns(&mut sum.1));
        println!(
            "| `DistArray::sum_exact` | {:.3} | {:.2} |",
            ns(&mut sum_exact.1),
            median(&mut sum_ratio)
        );
        println!("| `DistArray::dot` | {:.3} | 1 |", ns(&mut dot.1));
        println!(
            "| `DistArray::dot_exact` | {:.3} | {:.2} |",
            ns(&mut dot_exact.1),
            median(&mut dot_ratio)
        );
    }
}

fn halos(spmd: &Spmd, rows: usize, cols: usize) {
    let world = spmd.world();
    let (p, rank) = (world.size(), world.rank());
    let ghosted = |comm: &Comm| {
        DistArray::from_fn(comm, (rows, cols), Split::block(0), |(i, j)| (i + j) as f64)
            .unwrap()
            .with_ghosts(1, Boundary::Periodic)
            .unwrap()
    };
    let mut u = ghosted(world);
    // The same array on a handle with agreement checks off (they run on the first exchange).
    let mut u_unchecked = ghosted(&world.unchecked());
    // The same rows by hand: a padded local block, two MPI_Sendrecv with the neighbours.
    let count = u.local().nrows();
    let mut raw = Array2::<f64>::zeros((count + 2, cols));
    let (up, down) = ((rank + 1) % p, (rank + p - 1) % p);
    let mut raw_exchange: Variant<'_> = Box::new(|c: &Comm| {
        let data = raw.as_slice_mut().unwrap();
        let (low, rest) = data.split_at_mut(cols);
        let (middle, high) = rest.split_at_mut(count * cols);
        let comm = c.raw();
        send_receive_into(
            &middle[(count - 1) * cols..],
            &comm.process_at_rank(up as i32),
            low,
            &comm.process_at_rank(down as i32),
        );
        send_receive_into(
            &middle[..cols],
            &comm.process_at_rank(down as i32),
            high,
            &comm.process_at_rank(up as i32),
        );
    });
    let mut library: Variant<'_> = Box::new(|_: &Comm| u.exchange_halos().unwrap());
    let mut library_unchecked: Variant<'_> =
        Box::new(|_: &Comm| u_unchecked.exchange_halos().unwrap());
    let iterations = calibrate(world, &mut raw_exchange);
    let (mut raw_t, mut checked, mut unchecked) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..31 {
        raw_t.push(time_block(world, iterations, &mut raw_exchange));
        checked.push(time_block(world, iterations, &mut library));
        unchecked.push(time_block(world, iterations, &mut library_unchecked));
    }
    let (r, c, q) = (
        median(&mut raw_t),
        median(&mut checked),
        median(&mut unchecked),
    );
    if spmd.is_root() {
        println!(
            "\nhalo exchange, {p} ranks, {rows} x {cols} f64 split by rows, 1 ghost row each side (periodic), rows of {} KiB, median of 31 interleaved rounds\n",
            cols * 8 / 1024
        );
        println!("| variant | µs per exchange | vs raw |");
        println!("|---|---:|---:|");
        println!("| raw rsmpi `MPI_Sendrecv` x 2 | {:.2} | 1 |", r * 1e6);
        println!(
            "| `exchange_halos` (agreement check on) | {:.2} | {:.3} |",
            c * 1e6,
            c / r
        );
        println!(
            "| `exchange_halos` (check off) | {:.2} | {:.3} |",
            q * 1e6,
            q / r
        );
    }
}

fn memory(spmd: &Spmd) {
    let world = spmd.world();
    let n: usize = 1 << 28; // 2 GiB of f64
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    let rss = || spmd::timing::peak_rss_bytes();
    let start = rss();
    let global = spmd
        .is_root()
        .then(|| Array1::from_shape_fn(n, |i| i as f64));
    let after_source = rss();
    let array =
        DistArray::scatter(world, 0, global.as_ref().map(|g| g.view()), Split::block(0)).unwrap();
    let after_scatter = rss();
    drop(global);
    let gathered = array.gather(0).unwrap();
    let after_gather = rss();
    if let Some(g) = &gathered {
        assert_eq!(g[n - 1], (n - 1) as f64);
        assert_eq!(g.len_of(Axis(0)), n);
    }
    let piece = array.local().len() as f64 * 8.0 / (1u64 << 30) as f64;
    let figures = [start, after_source, after_scatter, after_gather];
    drop((array, gathered));
    beyond_i32(spmd);
    let all = world.gather(0, &figures).unwrap();
    if let Some(all) = all {
        println!("\npeak resident memory (GiB, high-water mark), scatter then gather of a 2 GiB f64 array, {} ranks; a piece is {piece:.2} GiB\n", world.size());
        println!("| rank | at start | source built | after scatter | after gather | bound: global + one piece (root), one piece (others) |");
        println!("|---:|---:|---:|---:|---:|---:|");
        for (r, f) in all.chunks(4).enumerate() {
            let bound = if r == 0 { 2.0 + piece } else { piece };
            println!(
                "| {r} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} + start |",
                gib(f[0]),
                gib(f[1]),
                gib(f[2]),
                gib(f[3]),
                bound
            );
        }
    }
}

/// A global array of more than `i32::MAX` elements (2^31 + 6 bytes) through scatter and
/// gather: pieces travel in chunks, nothing overflows, every byte comes back.
fn beyond_i32(spmd: &Spmd) {
    let world = spmd.world();
    let n: usize = (1 << 31) + 6;
    let byte = |i: usize| (i % 251) as u8;
    let global = spmd.is_root().then(|| Array1::from_shape_fn(n, byte));
    let array =
        DistArray::scatter(world, 0, global.as_ref().map(|g| g.view()), Split::block(0)).unwrap();
    drop(global);
    let first = array.global_range(0).map_or(0, |r| r.start);
    assert!(array
        .local()
        .iter()
        .enumerate()
        .all(|(k, &b)| b == byte(first + k)));
    if let Some(back) = array.gather(0).unwrap() {
        assert_eq!(back.len(), n);
        assert!(back.iter().enumerate().all(|(i, &b)| b == byte(i)));
        println!("\n{n} u8 (more than i32::MAX) scattered over {} ranks and gathered back: every byte equal", world.size());
    }
}
