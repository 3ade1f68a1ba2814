//! Overhead of the `spmd` collective helpers against the raw rsmpi calls they wrap, measured
//! side by side in one run.
//!
//! ```text
//! cargo bench --bench collectives            # relaunches itself under `mpirun -n 2`
//! SPMD_BENCH_RANKS=4 cargo bench --bench collectives
//! ```
//!
//! Every rank must run exactly the same iterations or the collectives deadlock, so this does
//! not use criterion's adaptive sampling (the `spmd::bench` leader/follower driver will bring
//! that). Instead rank 0 calibrates an iteration count per case and broadcasts it; then rounds
//! alternate raw call, helper and helper without agreement checks, each round timed behind a
//! barrier as the maximum over ranks; the figure per variant is the median over rounds. The
//! interleaving makes drift on a noisy machine hit all variants alike.

use mpi::collective::{CommunicatorCollectives, Root, SystemOperation};
use mpi::datatype::{Partition as MpiPartition, PartitionMut};
use mpi::topology::Communicator;
use spmd::{Comm, Op, Partition, Spmd};
use support::{calibrate, median, time_block, Variant};

mod support;

const SIZES_BYTES: [usize; 4] = [8, 1024, 64 * 1024, 1024 * 1024];
const ROUNDS: usize = 21;

fn main() {
    if !support::under_mpirun() {
        support::relaunch_under_mpirun();
        return;
    }
    let spmd = Spmd::init().expect("MPI init");
    let rows = run_all(&spmd);
    if spmd.is_root() {
        print_table(spmd.size(), &rows);
    }
}

/// Seconds per call of raw, helper, helper without checks.
struct Row {
    op: &'static str,
    bytes: usize,
    raw: f64,
    helper: f64,
    unchecked: f64,
}

fn run_all(spmd: &Spmd) -> Vec<Row> {
    let mut rows = Vec::new();
    let p = spmd.size();
    let me = spmd.rank();
    // Persistent plans: checked once at creation, then the bare MPI_Allreduce per call.
    for bytes in [8, 1024] {
        let n = bytes / 8;
        let send = vec![me as f64 + 0.5; n];
        let mut recv = vec![0.0; n];
        let mut recv2 = vec![0.0; n];
        let plan = spmd.world().all_reduce_plan::<f64>(n, Op::Sum).unwrap();
        rows.push(measure(
            spmd,
            "all_reduce plan (Sum)",
            bytes,
            Box::new(|c: &Comm| {
                c.raw()
                    .all_reduce_into(&send[..], &mut recv[..], SystemOperation::sum())
            }),
            Box::new(|_: &Comm| plan.all_reduce_into(&send, &mut recv2)),
        ));
    }
    // `SPMD_BENCH_COLLECTIVES=plan`: the plan rows only.
    if std::env::var("SPMD_BENCH_COLLECTIVES").as_deref() == Ok("plan") {
        rows.extend(all_reduce_rows(spmd, &[8, 1024]));
        return rows;
    }
    // Scalar all_reduce: no agreement check exists to switch off.
    {
        let x = me as f64;
        rows.push(measure(
            spmd,
            "all_reduce (scalar)",
            8,
            Box::new(move |c: &Comm| {
                let mut y = 0.0;
                c.raw().all_reduce_into(&x, &mut y, SystemOperation::sum());
                std::hint::black_box(y);
            }),
            Box::new(move |c: &Comm| {
                std::hint::black_box(c.all_reduce(x, Op::Sum));
            }),
        ));
    }
    for bytes in SIZES_BYTES {
        // Max of floats: spmd's NaN-propagating user operation against MPI's MPI_MAX.
        let n = bytes / 8;
        let send = vec![me as f64 + 0.5; n];
        let mut recv = vec![0.0; n];
        let mut recv2 = vec![0.0; n];
        rows.push(measure(
            spmd,
            "all_reduce_into Max (NaN-aware)",
            bytes,
            Box::new(|c: &Comm| {
                c.raw()
                    .all_reduce_into(&send[..], &mut recv[..], SystemOperation::max())
            }),
            Box::new(|c: &Comm| c.all_reduce_into(&send, &mut recv2, Op::Max).unwrap()),
        ));
    }
    rows.extend(all_reduce_rows(spmd, &SIZES_BYTES));
    for bytes in SIZES_BYTES {
        let n = bytes / 8;
        let send = vec![me as f64 + 0.5; n];
        let mut buf = vec![1.0; n];
        let mut buf2 = vec![1.0; n];
        rows.push(measure(
            spmd,
            "broadcast (slice)",
            bytes,
            Box::new(|c: &Comm| c.raw().process_at_rank(0).broadcast_into(&mut buf[..])),
            Box::new(|c: &Comm| c.broadcast(0, &mut buf2[..]).unwrap()),
        ));
        let mut all = vec![0.0; n * p];
        let mut all2 = vec![0.0; n * p];
        rows.push(measure(
            spmd,
            "all_gather_into",
            bytes,
            Box::new(|c: &Comm| c.raw().all_gather_into(&send[..], &mut all[..])),
            Box::new(|c: &Comm| c.all_gather_into(&send, &mut all2).unwrap()),
        ));
        let mut at_root = vec![0.0; if me == 0 { n * p } else { 0 }];
        let mut at_root2 = at_root.clone();
        rows.push(measure(
            spmd,
            "gather_into",
            bytes,
            Box::new(|c: &Comm| {
                let root = c.raw().process_at_rank(0);
                if me == 0 {
                    root.gather_into_root(&send[..], &mut at_root[..]);
                } else {
                    root.gather_into(&send[..]);
                }
            }),
            Box::new(|c: &Comm| c.gather_into(0, &send, &mut at_root2).unwrap()),
        ));
        let source = vec![2.0; if me == 0 { n * p } else { 0 }];
        let mut part = vec![0.0; n];
        let mut part2 = vec![0.0; n];
        rows.push(measure(
            spmd,
            "scatter_into",
            bytes,
            Box::new(|c: &Comm| {
                let root = c.raw().process_at_rank(0);
                if me == 0 {
                    root.scatter_into_root(&source[..], &mut part[..]);
                } else {
                    root.scatter_into(&mut part[..]);
                }
            }),
            Box::new(|c: &Comm| c.scatter_into(0, &source, &mut part2).unwrap()),
        ));
        // Uneven: the helpers exchange counts and allocate; raw gets precomputed counts.
        let partition = Partition::block(n * p + p / 2, p).unwrap();
        let uneven = vec![1.0; partition.count(me)];
        let counts: Vec<i32> = partition.counts().iter().map(|&c| c as i32).collect();
        let displs: Vec<i32> = partition
            .displacements()
            .iter()
            .map(|&d| d as i32)
            .collect();
        let mut everything = vec![0.0; partition.len()];
        let mut everything2 = Vec::new();
        rows.push(measure(
            spmd,
            "all_gather_varcount_into",
            bytes,
            Box::new(|c: &Comm| {
                let mut parts = PartitionMut::new(&mut everything[..], &counts[..], &displs[..]);
                c.raw().all_gather_varcount_into(&uneven[..], &mut parts);
            }),
            Box::new(|c: &Comm| {
                std::hint::black_box(
                    c.all_gather_varcount_into(&uneven, &mut everything2)
                        .unwrap(),
                );
            }),
        ));
        let whole = vec![3.0; if me == 0 { partition.len() } else { 0 }];
        let mut mine = vec![0.0; partition.count(me)];
        rows.push(measure(
            spmd,
            "scatter_partitioned",
            bytes,
            Box::new(|c: &Comm| {
                let root = c.raw().process_at_rank(0);
                if me == 0 {
                    let parts = MpiPartition::new(&whole[..], &counts[..], &displs[..]);
                    root.scatter_varcount_into_root(&parts, &mut mine[..]);
                } else {
                    root.scatter_varcount_into(&mut mine[..]);
                }
            }),
            Box::new(|c: &Comm| {
                std::hint::black_box(c.scatter_partitioned(0, &whole, &partition).unwrap());
            }),
        ));
    }
    rows
}

/// `all_reduce_into` (Sum) at each size: raw against the helper with and without checks.
fn all_reduce_rows(spmd: &Spmd, sizes: &[usize]) -> Vec<Row> {
    let me = spmd.rank();
    let mut rows = Vec::new();
    for &bytes in sizes {
        let n = bytes / 8;
        let send = vec![me as f64 + 0.5; n];
        let mut recv = vec![0.0; n];
        let mut recv2 = vec![0.0; n];
        rows.push(measure(
            spmd,
            "all_reduce_into",
            bytes,
            Box::new(|c: &Comm| {
                c.raw()
                    .all_reduce_into(&send[..], &mut recv[..], SystemOperation::sum())
            }),
            Box::new(|c: &Comm| c.all_reduce_into(&send, &mut recv2, Op::Sum).unwrap()),
        ));
    }
    rows
}

/// Times `raw` and `helper` (with and without agreement checks) in interleaved rounds.
fn measure<'a>(
    spmd: &Spmd,
    op: &'static str,
    bytes: usize,
    mut raw: Variant<'a>,
    mut helper: Variant<'a>,
) -> Row {
    let iterations = calibrate(spmd.world(), &mut raw);
    let mut samples = [Vec::new(), Vec::new(), Vec::new()];
    let unchecked = spmd.world().unchecked();
    for _ in 0..ROUNDS {
        samples[0].push(time_block(spmd.world(), iterations, &mut raw));
        samples[1].push(time_block(spmd.world(), iterations, &mut helper));
        samples[2].push(time_block(&unchecked, iterations, &mut helper));
    }
    let [raw, helper, unchecked] = samples.map(|mut s| median(&mut s));
    Row {
        op,
        bytes,
        raw,
        helper,
        unchecked,
    }
}

fn human_bytes(bytes: usize) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 => format!("{} KiB", b >> 10),
        b => format!("{b} B"),
    }
}

fn print_table(ranks: usize, rows: &[Row]) {
    println!("\nspmd helpers vs raw rsmpi, {ranks} ranks, median of {ROUNDS} interleaved rounds (max over ranks)\n");
    println!("| operation | size | raw µs | helper µs | helper/raw | +µs | unchecked µs | unchecked/raw | +µs |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let us = |s: f64| s * 1e6;
        println!(
            "| {} | {} | {:.2} | {:.2} | {:.3} | {:+.2} | {:.2} | {:.3} | {:+.2} |",
            r.op,
            human_bytes(r.bytes),
            us(r.raw),
            us(r.helper),
            r.helper / r.raw,
            us(r.helper - r.raw),
            us(r.unchecked),
            r.unchecked / r.raw,
            us(r.unchecked - r.raw),
        );
    }
}
