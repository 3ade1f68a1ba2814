//! Distributed sample sort of `u64` keys: local rayon sort, splitters chosen from a regular
//! sample of every rank, one uneven all-to-all, a merge of the received sorted runs.
//!
//! ```text
//! mpirun -n 2 target/release/examples/sample_sort --keys 100000000 --distribution skewed --baseline --report sort.json
//! ```
//!
//! Keys are generated from their global index, so the input is the same at any rank count.
//! The program checks that the output is globally sorted (each rank sorted, and each rank's
//! last key ≤ the next rank's first) and a permutation of the input (same count, same sum and
//! same sum of hashes over all keys), and for inputs up to `--verify-limit` keys also gathers
//! everything on the root and compares it with a serial sort.

mod common;

use clap::{Parser, ValueEnum};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use rayon::prelude::*;
use spmd::{Op, Partition};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Keys {
    /// Uniform over all of `u64`.
    Uniform,
    /// Most keys small: the cube of a uniform fraction, scaled.
    Skewed,
    /// Only 16 distinct values.
    Duplicates,
}

#[derive(Parser, Debug)]
#[command(about = "Distributed sample sort of u64 keys over MPI ranks")]
struct Args {
    /// Number of keys over all ranks.
    #[arg(long, default_value_t = 1_000_000)]
    keys: usize,
    /// How the keys are distributed.
    #[arg(long, value_enum, default_value_t = Keys::Uniform)]
    distribution: Keys,
    /// Samples per rank for choosing splitters (times the number of ranks).
    #[arg(long, default_value_t = 64)]
    oversample: usize,
    /// Compare with a serial sort of all keys on the root up to this many keys.
    #[arg(long, default_value_t = 20_000_000)]
    verify_limit: usize,
    #[command(flatten)]
    measure: common::Measure,
}

// Never inlined: the ranks and the one-core baseline generate keys with the same machine code.
#[inline(never)]
fn key(i: usize, distribution: Keys) -> u64 {
    let mut rng = Pcg64Mcg::seed_from_u64((i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0xa5a5);
    match distribution {
        Keys::Uniform => rng.random(),
        Keys::Skewed => {
            let f: f64 = rng.random();
            (f * f * f * u64::MAX as f64) as u64
        }
        Keys::Duplicates => rng.random_range(0..16),
    }
}

/// A 64-bit mix of a key, for the permutation checksum.
fn hash(k: u64) -> u64 {
    let mut x = k ^ (k >> 33);
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^ (x >> 33)
}

/// Count, wrapping sum and wrapping sum of hashes of `keys`.
fn checksum(keys: &[u64]) -> [u64; 3] {
    keys.par_iter().map(|&k| [1, k, hash(k)]).reduce(
        || [0; 3],
        |a, b| {
            [
                a[0] + b[0],
                a[1].wrapping_add(b[1]),
                a[2].wrapping_add(b[2]),
            ]
        },
    )
}

/// Merges the consecutive sorted runs of `source` (lengths `runs`) pairwise, pairs in
/// parallel, until one run is left, using `spare` as the second buffer (its allocation is
/// reused: no fresh pages to fault in). Returns the merged keys; the other buffer goes back
/// to `spare`.
fn merge_runs(mut source: Vec<u64>, runs: &[usize], spare: &mut Vec<u64>) -> Vec<u64> {
    let n = source.len();
    let mut bounds = vec![0];
    for &len in runs {
        bounds.push(bounds[bounds.len() - 1] + len);
    }
    let mut target = std::mem::take(spare);
    target.clear();
    target.resize(n, 0);
    while bounds.len() > 2 {
        // Runs 2k and 2k + 1 become run k.
        let merged: Vec<usize> = bounds
            .iter()
            .step_by(2)
            .copied()
            .chain((bounds.len() % 2 == 0).then_some(n))
            .collect();
        let mut outputs = Vec::new();
        let mut rest = &mut target[..];
        for (k, w) in merged.windows(2).enumerate() {
            let (out, tail) = rest.split_at_mut(w[1] - w[0]);
            let middle = bounds.get(2 * k + 1).copied().unwrap_or(n).min(w[1]);
            outputs.push((w[0], middle, out));
            rest = tail;
        }
        outputs.into_par_iter().for_each(|(start, middle, out)| {
            let end = start + out.len();
            merge_into(&source[start..middle], &source[middle..end], out);
        });
        std::mem::swap(&mut source, &mut target);
        bounds = merged;
    }
    *spare = target;
    source
}

/// Merges the sorted `a` and `b` into `out` (exactly as long as both), without branches in
/// the inner loop.
fn merge_into(a: &[u64], b: &[u64], out: &mut [u64]) {
    let (mut i, mut j, mut k) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        let (x, y) = (a[i], b[j]);
        let take_a = x <= y;
        out[k] = if take_a { x } else { y };
        i += usize::from(take_a);
        j += usize::from(!take_a);
        k += 1;
    }
    out[k..k + a.len() - i].copy_from_slice(&a[i..]);
    k += a.len() - i;
    out[k..].copy_from_slice(&b[j..]);
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let spmd = args.measure.builder().init()?;
    let world = spmd.world();
    let (p, me) = (world.size(), world.rank());
    let all_keys = |n: usize| {
        (0..n)
            .into_par_iter()
            .map(|i| key(i, args.distribution))
            .collect::<Vec<_>>()
    };
    // Buffers kept between repetitions: at 10^8 keys, faulting in fresh pages for every
    // exchange and merge costs as much as the exchange itself (see the performance docs).
    let received = std::cell::RefCell::new(Vec::<u64>::new());
    let spare = std::cell::RefCell::new(Vec::<u64>::new());

    // Generating this rank's keys and sorting them across ranks: what each repetition
    // measures (as the baseline generates and sorts). Returns this rank's sorted part.
    let sort = || -> spmd::Result<Vec<u64>> {
        let block = Partition::block(args.keys, p)?;
        let mut keys = std::mem::take(&mut *spare.borrow_mut());
        keys.clear();
        keys.par_extend(
            block
                .par_global_indices(me)
                .map(|i| key(i, args.distribution)),
        );
        {
            let _sort = spmd.region("local sort");
            // rayon's parallel sort on a one-thread pool is about a third slower than the
            // plain sort (measured on 5 * 10^7 keys): use it only with threads to split over.
            if rayon::current_num_threads() > 1 {
                keys.par_sort_unstable();
            } else {
                keys.sort_unstable();
            }
        }
        // Regular sample of every rank's sorted keys; the splitters are every p-th of the
        // pooled sample.
        let samples: Vec<u64> = if keys.is_empty() {
            Vec::new()
        } else {
            let s = (args.oversample * p).max(1);
            (0..s).map(|k| keys[k * keys.len() / s]).collect()
        };
        let mut pooled = world.all_gather_varcount(&samples)?.into_vec();
        pooled.sort_unstable();
        let splitters: Vec<u64> = (1..p)
            .filter_map(|r| pooled.get(r * pooled.len() / p).copied())
            .collect();
        // Bucket r gets keys in [splitter r-1, splitter r): a partition point per splitter.
        let mut bounds = vec![0];
        bounds.extend(splitters.iter().map(|&s| keys.partition_point(|&k| k < s)));
        bounds.resize(p, keys.len());
        bounds.push(keys.len());
        let send_counts: Vec<usize> = bounds.windows(2).map(|w| w[1] - w[0]).collect();
        let mut incoming = received.borrow_mut();
        let runs = world.all_to_all_varcount_into(&keys, &send_counts, &mut incoming)?;
        // What arrived is one sorted run per sender: merge them (O(n log p)), no second sort,
        // into the keys' own buffer.
        let _merge = spmd.region("merge");
        let mut scratch = keys;
        let arrived = std::mem::take(&mut *incoming);
        let sorted = merge_runs(arrived, &runs, &mut scratch);
        *incoming = scratch;
        Ok(sorted)
    };
    let sequential = || {
        let mut keys = all_keys(args.keys);
        keys.sort_unstable();
        keys
    };
    let repeat = args.measure.repeat(&spmd);
    let (mine, serial) = if args.measure.baseline {
        let measured = repeat.baseline(sequential).run(sort)?;
        (measured.result, measured.baseline)
    } else {
        (repeat.run(sort)?.result, None)
    };

    // Verification: every rank sorted, boundaries in order, same multiset of keys (the
    // checksum of the keys this rank started with, generated again outside the timing).
    let before = {
        let block = Partition::block(args.keys, p)?;
        let keys: Vec<u64> = block
            .par_global_indices(me)
            .map(|i| key(i, args.distribution))
            .collect();
        checksum(&keys)
    };
    let locally_sorted = mine.par_windows(2).all(|w| w[0] <= w[1]);
    let ends = [
        mine.first().copied().unwrap_or(u64::MAX),
        mine.last().copied().unwrap_or(0),
        mine.len() as u64,
    ];
    let all_ends = world.all_gather(&ends)?;
    let nonempty: Vec<&[u64]> = all_ends.chunks(3).filter(|e| e[2] > 0).collect();
    let boundaries_ok = nonempty.windows(2).all(|w| w[0][1] <= w[1][0]);
    let after = checksum(&mine);
    let sum3 = |c: [u64; 3]| {
        let mut total = [0_u64; 3];
        for (slot, &v) in total.iter_mut().zip(&c) {
            *slot = world.all_reduce_with(v, |a: u64, b: u64| a.wrapping_add(b));
        }
        total
    };
    let (total_before, total_after) = (sum3(before), sum3(after));
    let all_sorted = world.all_reduce(u8::from(locally_sorted), Op::Min) == 1 && boundaries_ok;
    let serial_check = if args.keys <= args.verify_limit {
        world.gather_varcount(0, &mine)?.map(|gathered| {
            let reference = serial.clone().unwrap_or_else(|| {
                let mut all = all_keys(args.keys);
                all.sort_unstable();
                all
            });
            gathered.as_slice() == reference.as_slice()
        })
    } else {
        None
    };
    let counts = world.all_gather(&[mine.len()])?;
    let report = spmd.report("sample_sort")?;
    if let Some(mut report) = report {
        let largest = counts.iter().copied().max().unwrap_or(0);
        let ideal = args.keys.div_ceil(p).max(1);
        println!(
            "sample sort of {} {:?} keys on {} ranks x {} threads: keys per rank {:?} (largest {:.2}x the even share)",
            args.keys,
            args.distribution,
            p,
            spmd.threads(),
            counts,
            largest as f64 / ideal as f64
        );
        println!("{report}");
        let permutation = total_before == total_after && total_after[0] == args.keys as u64;
        report.record(
            "verified",
            all_sorted && permutation && serial_check != Some(false),
        );
        report.record("equal_to_serial_sort", serial_check);
        report.record("keys_per_rank", &counts);
        args.measure.write(&report)?;
        if !(all_sorted && permutation && serial_check != Some(false)) {
            return Err(format!(
                "wrong: sorted {all_sorted}, permutation {permutation}, equal to a serial sort {serial_check:?}"
            )
            .into());
        }
        println!(
            "verified: globally sorted, a permutation of the input (count, sum, hash sum){}",
            if serial_check == Some(true) {
                ", equal to a serial sort"
            } else {
                ""
            }
        );
    }
    Ok(())
}
