//! What the network costs spmd's own calls: ping-pong latency and bandwidth of `send` /
//! `receive_into` between rank 0 and the last rank, and `all_reduce_into` on every rank, at
//! message sizes from 8 B to 4 MiB. Medians of interleaved rounds. Prints a table and one
//! `network:` line with the fitted latency (`α`, seconds per message) and inverse bandwidth
//! (`β`, seconds per byte) of a one-way message, which `spmd-scale --probe` also measures.
//!
//! ```text
//! cargo bench --bench network                  # 2 ranks on this host
//! SPMD_BENCH_RANKS=3 cargo bench --bench network
//! ```
//! Across hosts, start the built benchmark with the launcher instead (see
//! `benches/multihost.sh`).

mod support;

use spmd::{Comm, Op, Spmd};
use support::{calibrate, median, time_block, Variant};

/// Message sizes in bytes.
const SIZES: [usize; 7] = [8, 64, 1 << 10, 16 << 10, 128 << 10, 1 << 20, 4 << 20];
/// Interleaved rounds per case.
const ROUNDS: usize = 9;
const TAG: u32 = 77;

fn main() {
    if !support::under_mpirun() {
        support::relaunch_under_mpirun();
        return;
    }
    let spmd = Spmd::init().expect("MPI init");
    let world = spmd.world();
    let (me, last) = (spmd.rank(), spmd.size() - 1);
    if spmd.size() < 2 {
        eprintln!("network: needs at least 2 ranks");
        std::process::exit(2);
    }
    let mut rows = Vec::new();
    for bytes in SIZES {
        let ping = vec![1_u8; bytes];
        let mut pong = vec![0_u8; bytes];
        let send = vec![me as f64; bytes.div_ceil(8)];
        let mut sum = vec![0.0; bytes.div_ceil(8)];
        // One round trip between rank 0 and the last rank; the others only keep step.
        let mut round_trip: Variant<'_> = Box::new(|c: &Comm| {
            if me == 0 {
                c.send(last, TAG, &ping).expect("send");
                c.receive_into(last, TAG, &mut pong).expect("receive");
            } else if me == last {
                c.receive_into(0, TAG, &mut pong).expect("receive");
                c.send(0, TAG, &pong).expect("send");
            }
        });
        let mut reduce: Variant<'_> = Box::new(|c: &Comm| {
            c.all_reduce_into(&send, &mut sum, Op::Sum)
                .expect("all_reduce");
        });
        let iterations = [
            calibrate(world, &mut round_trip),
            calibrate(world, &mut reduce),
        ];
        let (mut trips, mut reductions) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            trips.push(time_block(world, iterations[0], &mut round_trip));
            reductions.push(time_block(world, iterations[1], &mut reduce));
        }
        rows.push((bytes, median(&mut trips) / 2.0, median(&mut reductions)));
    }
    if spmd.is_root() {
        print(spmd.size(), &rows);
    }
}

/// The table, and `α`, `β` of `one_way = α + β · bytes` from the smallest message (latency)
/// and the largest (bandwidth).
fn print(ranks: usize, rows: &[(usize, f64, f64)]) {
    println!(
        "\nnetwork, {ranks} ranks: ping-pong rank 0 <-> rank {}, all_reduce_into (f64 Sum) on all; \
         medians of {ROUNDS} interleaved rounds\n",
        ranks - 1
    );
    println!("| bytes | one-way µs | bandwidth GB/s | all_reduce µs |");
    println!("|---:|---:|---:|---:|");
    for &(bytes, one_way, reduce) in rows {
        println!(
            "| {bytes} | {:.2} | {:.3} | {:.2} |",
            one_way * 1e6,
            bytes as f64 / one_way / 1e9,
            reduce * 1e6
        );
    }
    let (small, large) = (rows[0], rows[rows.len() - 1]);
    let beta = (large.1 - small.1) / (large.0 - small.0) as f64;
    println!(
        "\nnetwork: ranks={ranks} latency_us={:.3} seconds_per_byte={:.4e} all_reduce_8b_us={:.3}",
        small.1 * 1e6,
        beta,
        small.2 * 1e6
    );
}
