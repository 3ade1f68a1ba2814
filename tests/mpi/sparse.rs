//! Distributed sparse matrices: assembly (entries from non-owners, duplicates, empty rows,
//! ranks without rows, rectangular shapes) and the product, against an independent serial
//! product computed here from the same triplets; the ghost plan's figures; bad input.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;
use spmd::array::{DistArray, Split};
use spmd::sparse::{DistCsrMatrix, DistVector};
use spmd::{Comm, ErrorKind, Op, Partition};

use crate::harness::{at_ranks, Module, Scenario};
use crate::support::{expect_same_error, init, report_ok};

pub static SPARSE_PRODUCT: Scenario = Scenario {
    name: "sparse_product",
    run: run_product,
};
pub static SPARSE_BAD_INPUT: Scenario = Scenario {
    name: "sparse_bad_input",
    run: run_bad_input,
};

pub const MODULE: Module = Module {
    scenarios: &[&SPARSE_PRODUCT, &SPARSE_BAD_INPUT],
    trials: || {
        let mut trials = at_ranks(&SPARSE_PRODUCT, 1..=4);
        trials.extend(at_ranks(&SPARSE_BAD_INPUT, [1, 2, 3]));
        trials
    },
};

/// `count` triplets of a `rows × columns` matrix from `seed`: every fifth row left empty,
/// values from `value` (integers or not), with about one in six entries repeated.
pub fn random_triplets(
    seed: u64,
    (rows, columns): (usize, usize),
    count: usize,
    integer: bool,
) -> Vec<(usize, usize, f64)> {
    let mut rng = Pcg64::seed_from_u64(seed);
    let mut out = Vec::with_capacity(count + count / 6);
    while out.len() < count {
        let i = rng.random_range(0..rows);
        if i % 5 == 3 {
            continue;
        }
        let j = rng.random_range(0..columns);
        let v = if integer {
            f64::from(rng.random_range(-5..=5_i32))
        } else {
            rng.random_range(-1.0..1.0)
        };
        out.push((i, j, v));
        if integer && rng.random_range(0..6) == 0 {
            out.push((i, j, f64::from(rng.random_range(-3..=3_i32))));
        }
    }
    out
}

/// This rank's share of `all`: triplet `k` goes to rank `(7k + 3) mod size`, mostly not the
/// owner of its row.
pub fn share(world: &Comm, all: &[(usize, usize, f64)]) -> Vec<(usize, usize, f64)> {
    all.iter()
        .enumerate()
        .filter(|(k, _)| (7 * k + 3) % world.size() == world.rank())
        .map(|(_, &t)| t)
        .collect()
}

/// The serial product as the library defines its order: each row's entries in column order
/// (duplicates summed first, in ascending order of value), entry `k` into lane `k mod 4`,
/// the row's value `(l0 + l1) + (l2 + l3)`.
fn serial_product(triplets: &[(usize, usize, f64)], rows: usize, x: &[f64]) -> Vec<f64> {
    let mut entries: BTreeMap<(usize, usize), Vec<f64>> = BTreeMap::new();
    for &(i, j, v) in triplets {
        entries.entry((i, j)).or_default().push(v);
    }
    let mut lanes = vec![([0.0_f64; 4], 0_usize); rows];
    for (&(i, j), values) in &entries {
        let mut values = values.clone();
        values.sort_by(f64::total_cmp);
        let a = values[1..].iter().fold(values[0], |s, v| s + v);
        let (sums, next) = &mut lanes[i];
        sums[*next % 4] += a * x[j];
        *next += 1;
    }
    lanes
        .iter()
        .map(|(l, _)| (l[0] + l[1]) + (l[2] + l[3]))
        .collect()
}

fn vector(world: &Comm, values: &[f64]) -> DistVector {
    DistArray::from_fn(world, values.len(), Split::block(0), |i| values[i]).expect("from_fn")
}

fn gathered(v: &DistVector) -> Vec<f64> {
    v.comm()
        .all_gather_varcount(v.local().as_slice().expect("contiguous"))
        .expect("gather")
        .into_vec()
}

fn run_product() {
    let spmd = init();
    let world = spmd.world();
    let label = format!("rank {} of {}", world.rank(), world.size());
    // Rectangular, integer-valued, with duplicates and empty rows; then square with
    // non-integer values (no duplicates), where the sums must still be bit-identical.
    // Last, a banded matrix with a few long-range entries: interior rows between boundary
    // rows that use only some of their rank's columns (the product gathers just those).
    let banded = |n: usize| -> Vec<(usize, usize, f64)> {
        let mut t = Vec::new();
        for i in 0..n {
            t.push((i, i, 2.5 + i as f64 / 7.0));
            if i > 0 {
                t.push((i, i - 1, -1.1));
            }
            if i + 1 < n {
                t.push((i, i + 1, -0.9));
            }
            if i % 17 == 0 {
                t.push((i, (i * 7 + 3) % n, 0.3));
            }
        }
        t
    };
    let random = |shape: (usize, usize), count, integer| {
        random_triplets(shape.0 as u64 * 31 + shape.1 as u64, shape, count, integer)
    };
    for (shape, all, integer) in [
        ((97, 61), random((97, 61), 700, true), true),
        ((61, 97), random((61, 97), 500, true), true),
        ((150, 150), random((150, 150), 1200, false), false),
        ((301, 301), banded(301), false),
    ] {
        let all = if integer {
            all
        } else {
            let mut seen = std::collections::HashSet::new();
            all.into_iter()
                .filter(|t| seen.insert((t.0, t.1)))
                .collect()
        };
        let a = DistCsrMatrix::from_triplets(world, shape, &share(world, &all)).expect("assemble");
        assert_eq!(a.shape(), shape);
        check_layout(world, &a, &all);
        let mut rng = Pcg64::seed_from_u64(99);
        let mut y = a.range_vector(f64::NAN).expect("range vector");
        // The plan is reused: several products with different x.
        for round in 0..3 {
            let xs: Vec<f64> = (0..shape.1)
                .map(|_| {
                    if integer {
                        f64::from(rng.random_range(-9..=9_i32))
                    } else {
                        rng.random_range(-2.0..2.0)
                    }
                })
                .collect();
            let x = vector(world, &xs);
            a.apply(&x, &mut y).expect("apply");
            let expected = serial_product(&all, shape.0, &xs);
            let got = gathered(&y);
            for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
                assert_eq!(
                    g.to_bits(),
                    e.to_bits(),
                    "{label} {shape:?} round {round} row {i}: {g} != {e}"
                );
            }
        }
        // Vectors of the wrong layout: the same error on every rank.
        let cyclic = DistArray::<f64, _>::zeros(world, shape.1, Split::cyclic(0)).expect("cyclic");
        if world.size() > 1 {
            expect_same_error(
                world,
                "cyclic x",
                a.apply(&cyclic, &mut y),
                ErrorKind::Shape,
            );
        }
        let short = DistArray::<f64, _>::zeros(world, shape.1 + 1, Split::block(0)).expect("short");
        expect_same_error(world, "long x", a.apply(&short, &mut y), ErrorKind::Shape);
    }
    fewer_rows_than_ranks(world);
    report_ok("sparse_product", &spmd);
}

/// The stored rows, the ghost columns and the plan's figures against what the triplets say.
fn check_layout(world: &Comm, a: &DistCsrMatrix, all: &[(usize, usize, f64)]) {
    let rows = a.row_range();
    let columns = a.column_range();
    let mut expected: BTreeMap<(usize, usize), f64> = BTreeMap::new();
    for &(i, j, v) in all.iter().filter(|t| rows.contains(&t.0)) {
        *expected.entry((i, j)).or_default() += v;
    }
    let mut ghosts: Vec<usize> = expected
        .keys()
        .map(|&(_, j)| j)
        .filter(|j| !columns.contains(j))
        .collect();
    ghosts.sort_unstable();
    ghosts.dedup();
    assert_eq!(a.ghost_columns(), ghosts.as_slice(), "ghost columns");
    assert_eq!(a.local_entries(), expected.len(), "entries");
    for (local, i) in rows.clone().enumerate() {
        let want: Vec<(usize, f64)> = expected
            .range((i, 0)..(i + 1, 0))
            .map(|(&(_, j), &v)| (j, v))
            .collect();
        assert_eq!(a.row_entries(local), want, "row {i}");
    }
    let stats = a.stats();
    assert_eq!(stats.ghost_count, ghosts.len());
    assert_eq!(
        stats.bytes_per_product,
        8 * (stats.ghost_count + stats.sent_entries)
    );
    // Every ghost received is an entry some rank sends.
    let received = world.all_reduce(stats.ghost_count, Op::Sum);
    let sent = world.all_reduce(stats.sent_entries, Op::Sum);
    assert_eq!(received, sent, "entries sent and received");
    let owners: std::collections::HashSet<usize> = {
        let p = Partition::block(a.shape().1, world.size()).expect("partition");
        ghosts.iter().map(|&g| p.owner(g)).collect()
    };
    assert_eq!(stats.receives_from, owners.len(), "neighbours");
}

/// Two rows on up to four ranks: ranks without rows or columns take part all the same.
fn fewer_rows_than_ranks(world: &Comm) {
    let all = vec![
        (0, 2, 1.0),
        (1, 0, 2.0),
        (1, 1, 3.0),
        (0, 0, 4.0),
        (1, 2, -1.0),
    ];
    let a = DistCsrMatrix::from_triplets(world, (2, 3), &share(world, &all)).expect("assemble");
    let x = vector(world, &[1.0, 10.0, 100.0]);
    let mut y = a.range_vector(0.0).expect("range");
    a.apply(&x, &mut y).expect("apply");
    assert_eq!(gathered(&y), vec![104.0, -68.0]);
    // An empty matrix (no triplets at all) multiplies to zero.
    let empty = DistCsrMatrix::from_triplets(world, (5, 3), &[]).expect("empty");
    let mut y = empty.range_vector(7.0).expect("range");
    empty.apply(&x, &mut y).expect("apply");
    assert_eq!(gathered(&y), vec![0.0; 5]);
}

fn run_bad_input() {
    let spmd = init();
    let world = spmd.world();
    let last = world.size() - 1;
    // A column out of range on the last rank only.
    let mut mine = vec![(world.rank(), 0, 1.0)];
    if world.rank() == last {
        mine.push((0, 10, 1.0));
    }
    let e = expect_same_error(
        world,
        "column out of range",
        DistCsrMatrix::from_triplets(world, (world.size(), 10), &mine),
        ErrorKind::OutOfBounds,
    );
    assert!(e.to_string().contains("(0, 10)"), "{e}");
    // A row out of range.
    expect_same_error(
        world,
        "row out of range",
        DistCsrMatrix::from_triplets(world, (3, 3), &[(3, 0, 1.0)]),
        ErrorKind::OutOfBounds,
    );
    // Shapes that differ between ranks.
    if world.size() > 1 {
        let rows = if world.rank() == last { 5 } else { 4 };
        expect_same_error(
            world,
            "shapes disagree",
            DistCsrMatrix::from_triplets(world, (rows, 4), &[]),
            ErrorKind::Disagreement,
        );
    }
    report_ok("sparse_bad_input", &spmd);
}
