//! What a split-phase halo exchange hides, and what MPI's progress does to it.
//!
//! Per configuration (rows of `cols` `f64`, one ghost row each side, split by rows over the
//! ranks), interleaved rounds of:
//! - `halo`: the blocking `exchange_halos` alone;
//! - `work`: the interior work alone (a stencil-like pass over the owned rows, sized to
//!   `factor` times the blocking halo time);
//! - `sequential`: blocking exchange, then the work;
//! - `overlapped`: `begin`, the work in chunks with `HaloExchange::test` between them,
//!   `finish`;
//! - `overlapped, no polls`: the same without `test` (progress only at `finish`);
//! - `split, no work`: `begin` then `finish` at once (the split form's own overhead).
//!
//! Hidden fraction = (sequential − overlapped) / halo, per round, median over rounds.

use std::hint::black_box;
use std::time::Instant;

use ndarray::s;
use spmd::array::{Boundary, DistArray, HaloPlan, Split};
use spmd::{Comm, Spmd};

use super::median;

const ROUNDS: usize = 15;
const CHUNKS: usize = 8;

/// Seconds of `calls` calls of `f`, the slowest rank's, per call.
fn per_call(world: &Comm, calls: usize, f: &mut dyn FnMut()) -> f64 {
    mpi::traits::CommunicatorCollectives::barrier(world.raw());
    let start = Instant::now();
    for _ in 0..calls {
        f();
    }
    world.all_reduce(start.elapsed().as_secs_f64() / calls as f64, spmd::Op::Max)
}

/// `passes` passes over the rows of `src` into `out`: memory-bound work standing in for a
/// stencil's interior.
fn work(src: ndarray::ArrayView2<'_, f64>, out: &mut [f64], passes: usize) {
    for _ in 0..passes {
        for (o, row) in out.chunks_mut(src.ncols()).zip(src.rows()) {
            for (a, b) in o.iter_mut().zip(row) {
                *a = 0.5 * *a + 0.25 * *b;
            }
        }
        black_box(&mut *out);
    }
}

pub fn measure(spmd: &Spmd) {
    let world = spmd.world();
    if spmd.is_root() {
        println!(
            "\nsplit-phase halos, {} ranks, median of {ROUNDS} interleaved rounds (slowest rank)\n",
            spmd.size()
        );
        println!("| row of | work / halo | halo µs | sequential µs | overlapped µs | hidden | no polls: hidden | split, no work / blocking |");
        println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    }
    // 32 KiB rows (eager-sized chunks) and 512 KiB rows (rendezvous: progress matters).
    for (cols, rows) in [(4096, 2048), (65536, 256)] {
        for factor in [2.0, 4.0] {
            one(spmd, world, rows * world.size(), cols, factor);
        }
    }
}

fn one(spmd: &Spmd, world: &Comm, n: usize, cols: usize, factor: f64) {
    let mut u = DistArray::from_fn(world, (n, cols), Split::block(0), |(i, j)| (i + j) as f64)
        .unwrap()
        .with_ghosts(1, Boundary::Fixed)
        .unwrap();
    let mut plan: HaloPlan<f64> = u.halo_plan().unwrap();
    let owned_rows = u.local().nrows();
    let mut out = vec![0.0_f64; owned_rows * cols];
    let calls = 50;
    // The work's size: `factor` times the blocking exchange, in whole rows of the owned part
    // (rank 0 decides, every rank runs the same).
    let halo = per_call(world, calls, &mut || u.exchange_halos().unwrap());
    // Rows of work sized on the work itself (a few rows stay in cache, a whole pass does not),
    // refined twice.
    let mut rows = 1_u64;
    for _ in 0..3 {
        let r = (rows as usize).min(owned_rows);
        let took = per_call(world, calls, &mut || {
            work(u.local().slice(s![..r, ..]), &mut out[..r * cols], 1)
        });
        rows = ((factor * halo / (took / r as f64)).ceil() as u64).max(1);
        world.broadcast(0, &mut rows).unwrap();
    }
    let rows = (rows as usize).min(owned_rows);
    let chunk = rows.div_ceil(CHUNKS);
    let out = &mut out[..rows * cols];
    let mut samples: [Vec<f64>; 7] = Default::default();
    for _ in 0..ROUNDS {
        let h = per_call(world, calls, &mut || u.exchange_halos().unwrap());
        let w = per_call(world, calls, &mut || {
            work(u.local().slice(s![..rows, ..]), out, 1)
        });
        let seq = per_call(world, calls, &mut || {
            u.exchange_halos().unwrap();
            work(u.local().slice(s![..rows, ..]), out, 1);
        });
        let mut overlapped = |poll: bool| {
            per_call(world, calls, &mut || {
                let mut exchange = plan.begin(&mut u).unwrap();
                for (k, o) in out.chunks_mut(chunk * cols).enumerate() {
                    let start = k * chunk;
                    let end = (start + chunk).min(rows);
                    work(exchange.owned().slice(s![start..end, ..]), o, 1);
                    if poll {
                        exchange.test();
                    }
                }
                exchange.finish().unwrap();
            })
        };
        let ov = overlapped(true);
        let ov_quiet = overlapped(false);
        let empty = per_call(world, calls, &mut || {
            plan.begin(&mut u).unwrap().finish().unwrap();
        });
        samples[0].push(h);
        samples[1].push(seq);
        samples[2].push(ov);
        samples[3].push((seq - ov) / h);
        samples[4].push((seq - ov_quiet) / h);
        samples[5].push(empty / h);
        samples[6].push(w / h);
    }
    let [h, seq, ov, hidden, hidden_quiet, empty, ratio] = samples.map(|mut v| median(&mut v));
    if spmd.is_root() {
        println!(
            "| {} KiB | {ratio:.1} | {:.1} | {:.1} | {:.1} | {:.0}% | {:.0}% | {:.3} |",
            cols * 8 / 1024,
            h * 1e6,
            seq * 1e6,
            ov * 1e6,
            100.0 * hidden,
            100.0 * hidden_quiet,
            empty
        );
    }
}
