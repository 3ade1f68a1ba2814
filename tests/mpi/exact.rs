//! Reproducible sums: `sum_exact`/`dot_exact` give the same bits at every rank count, thread
//! count and distribution, equal to a serial exact sum and (on integer-representable data) to
//! an independent `i128` oracle; NaN and infinities give the documented result wherever they
//! sit.

use ndarray::Array1;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;
use spmd::array::{DistArray, Split};
use spmd::exact::{local_sum_exact, ExactSum};
use spmd::Comm;
use spmd::Par;

use crate::harness::{succeeds, trial, Module, Scenario};
use crate::support::{init, report_ok};

/// Values over 400 binades with both signs and huge cancelling pairs: a fast sum of these
/// changes with the order, the exact one must not.
fn wild(n: usize) -> Vec<f64> {
    let mut rng = Pcg64::seed_from_u64(0x5eed);
    (0..n)
        .map(|i| {
            if i % 1000 == 17 {
                return 1e290 * if i % 2000 == 17 { 1.0 } else { -1.0 };
            }
            let mantissa: f64 = rng.random_range(1.0..2.0);
            let exponent: i32 = rng.random_range(-200..200);
            let sign = if rng.random_bool(0.5) { 1.0 } else { -1.0 };
            sign * mantissa * 2f64.powi(exponent)
        })
        .collect()
}

/// Integer mantissas times powers of two in [2⁻⁸², 2⁻³²]: the exact sum fits an `i128`.
fn oracle_data(n: usize) -> (Vec<f64>, f64) {
    let mut rng = Pcg64::seed_from_u64(0x0ac1e);
    let mut total: i128 = 0;
    let values = (0..n)
        .map(|_| {
            let m: i64 = rng.random_range(-(1_i64 << 53) + 1..1_i64 << 53);
            let k: i32 = rng.random_range(-82..-32);
            total += i128::from(m) << (k + 82);
            m as f64 * 2f64.powi(k)
        })
        .collect();
    // Rust's i128 → f64 cast rounds to nearest, ties to even; the scaling is exact.
    (values, total as f64 * 2f64.powi(-82))
}

fn splits() -> [Split; 3] {
    [Split::block(0), Split::cyclic(0), Split::block_cyclic(0, 7)]
}

fn dist(world: &Comm, values: &[f64], split: Split) -> DistArray<f64, ndarray::Ix1> {
    DistArray::from_fn(world, values.len(), split, |i| values[i]).expect("from_fn")
}

pub static EXACT: Scenario = Scenario { name: "exact", run };

pub const MODULE: Module = Module {
    scenarios: &[&EXACT],
    // Exact sums must not change with the rank count (1..7, odd ones included) or the pool.
    trials: || {
        (1..=7)
            .map(|ranks| {
                let threads = if ranks % 2 == 0 { "1" } else { "3" };
                trial(
                    format!("exact_sums_np{ranks}_threads{threads}"),
                    move || succeeds(&EXACT, ranks, &[], &[("SPMD_NUM_THREADS", threads)]),
                )
            })
            .collect()
    },
};

pub fn run() {
    let spmd = init();
    let world = spmd.world();
    let n = 40_001;

    let wild = wild(n);
    let mut serial = ExactSum::new();
    serial.add_all(&wild);
    let expected = serial.to_f64();
    let (oracle_values, oracle) = oracle_data(n);
    let label = format!("rank {} of {}", world.rank(), world.size());

    for split in splits() {
        for par in [Par::Rayon, Par::Seq] {
            let a = dist(world, &wild, split).with_par(par);
            let got = a.sum_exact().expect("sum_exact");
            assert_eq!(
                got.to_bits(),
                expected.to_bits(),
                "{label} {split:?} {par:?}"
            );
            let b = dist(world, &oracle_values, split).with_par(par);
            let got = b.sum_exact().expect("sum_exact");
            assert_eq!(got.to_bits(), oracle.to_bits(), "{label} {split:?} oracle");
            // dot(x, 1) is the sum; dot(x, 2^-3·1) is the sum scaled exactly.
            let ones = a.map(|_| 0.125);
            let dot = a.dot_exact(&ones).expect("dot_exact");
            assert_eq!(dot.to_bits(), (expected * 0.125).to_bits(), "{label} dot");
        }
    }

    // Thread counts inside the rank: the local part in pools of 1..4 threads.
    let piece = dist(world, &wild, Split::block(0));
    let local = piece.local().to_vec();
    for threads in 1..=4 {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("pool");
        let mine = pool.install(|| local_sum_exact(&local));
        let got = world.all_reduce_exact(&mine).to_f64();
        assert_eq!(
            got.to_bits(),
            expected.to_bits(),
            "{label} {threads} threads"
        );
    }
    assert_eq!(
        world.sum_exact(&local).to_bits(),
        expected.to_bits(),
        "{label} Comm::sum_exact"
    );

    // f32: each rank's share of the values as f32, against the serial exact f32 sum.
    let narrow: Vec<f32> = wild.iter().map(|&x| (x * 1e-150) as f32).collect();
    let mut serial32 = ExactSum::new();
    narrow.iter().for_each(|&x| serial32.add(f64::from(x)));
    let part = spmd::Partition::cyclic(n, world.size()).expect("partition");
    let mine32: Vec<f32> = part
        .global_indices(world.rank())
        .map(|i| narrow[i])
        .collect();
    assert_eq!(
        world.sum_exact(&mine32).to_bits(),
        serial32.to_f32().to_bits(),
        "{label} f32"
    );

    specials(world, n);
    unequal_dot_lengths(world);
    report_ok("exact", &spmd);
}

/// NaN anywhere → NaN; +∞ and −∞ on different ranks → NaN; one infinity → that infinity;
/// for the fast sum, min and max as well as the exact sum.
fn specials(world: &Comm, n: usize) {
    let base: Vec<f64> = (0..n).map(|i| (i % 13) as f64 - 6.0).collect();
    for at in [0, n / 2, n - 1] {
        let mut with_nan = base.clone();
        with_nan[at] = f64::NAN;
        for split in splits() {
            let a = dist(world, &with_nan, split);
            let where_ = format!("NaN at {at} {split:?} on {} ranks", world.size());
            assert!(a.sum_exact().unwrap().is_nan(), "sum_exact, {where_}");
            assert!(a.sum().unwrap().is_nan(), "sum, {where_}");
            assert!(a.min().unwrap().is_nan(), "min, {where_}");
            assert!(a.max().unwrap().is_nan(), "max, {where_}");
        }
    }
    let mut infinities = base.clone();
    infinities[1] = f64::INFINITY;
    assert_eq!(
        dist(world, &infinities, Split::block(0))
            .sum_exact()
            .unwrap(),
        f64::INFINITY
    );
    infinities[n - 2] = f64::NEG_INFINITY;
    let a = dist(world, &infinities, Split::block(0));
    assert!(a.sum_exact().unwrap().is_nan());
    assert_eq!(a.max().unwrap(), f64::INFINITY);
    assert_eq!(a.min().unwrap(), f64::NEG_INFINITY);
    // Without NaN, min and max are exact and placement-independent.
    let plain = dist(world, &base, Split::cyclic(0));
    assert_eq!(plain.min().unwrap(), -6.0);
    assert_eq!(plain.max().unwrap(), 6.0);
    assert_eq!(plain.sum_exact().unwrap(), Array1::from(base).sum());
}

/// Slices of different lengths on one rank: the same error on every rank.
fn unequal_dot_lengths(world: &Comm) {
    let a = vec![1.0_f64; 4];
    let b = if world.rank() == world.size() - 1 {
        vec![1.0; 3]
    } else {
        vec![1.0; 4]
    };
    crate::support::expect_same_error(
        world,
        "dot_exact lengths",
        world.dot_exact(&a, &b),
        spmd::ErrorKind::BufferSize,
    );
    let ok = world.dot_exact(&a, &a).expect("equal lengths");
    assert_eq!(ok, 4.0 * world.size() as f64);
}
