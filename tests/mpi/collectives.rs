//! Every collective helper against a serial computation of the same result, with uneven
//! sizes, empty parts and fewer items than ranks.

use spmd::mpi::traits::Equivalence;
use spmd::{Comm, Distribution, Op, Partition};

use crate::harness::{
    at_ranks, expect_success, trial, Module, Scenario, LAUNCH_TIMEOUT, SCENARIO_ENV,
};
use crate::launcher::run as run_command;
use crate::support::{init, report_ok};

pub static COLLECTIVES: Scenario = Scenario {
    name: "collectives",
    run,
};

pub const MODULE: Module = Module {
    scenarios: &[&COLLECTIVES],
    trials: || {
        let mut trials = at_ranks(&COLLECTIVES, 1..=4);
        // Started without mpirun: MPI's singleton start, one rank.
        trials.push(trial("collectives_without_mpirun", || {
            let mut cmd = std::process::Command::new(crate::harness::self_exe());
            cmd.env(SCENARIO_ENV, COLLECTIVES.name);
            expect_success(&COLLECTIVES, 1, &run_command(cmd, LAUNCH_TIMEOUT))
        }));
        trials
    },
};

/// The value rank `rank` holds at position `i` (distinct across ranks and positions).
fn value(rank: usize, i: usize) -> i64 {
    (rank as i64 + 1) * 1000 - 7 * i as i64
}

fn data(rank: usize, len: usize) -> Vec<i64> {
    (0..len).map(|i| value(rank, i)).collect()
}

/// A type of the user's own with a closure reduction (argmin with its location).
#[derive(Equivalence, Clone, Copy, Debug, Default, PartialEq)]
struct MinLoc {
    value: f64,
    rank: u64,
}

/// A 2x2 integer matrix `[[a, b], [c, d]]`.
#[derive(Equivalence, Clone, Copy, Debug, PartialEq)]
struct Mat2 {
    a: i64,
    b: i64,
    c: i64,
    d: i64,
}

pub fn run() {
    let spmd = init();
    let world = spmd.world();
    reductions(world);
    nan_reductions(world);
    closure_reductions(world);
    broadcasts(world);
    equal_count_gathers_and_scatters(world);
    small_payloads(world, world);
    small_payloads(world, &world.unchecked());
    varcount(world);
    all_to_all(world);
    partitioned(world);
    split_groups(world);
    unchecked_mode(world);
    report_ok("collectives", &spmd);
}

/// Broadcasts, gathers and scatters around the 64 bytes that travel inside the agreement
/// check (see `collective::carry`): every type and length gives exactly the values a direct
/// computation gives, checked or not, carried or not.
fn small_payloads(world: &Comm, comm: &Comm) {
    let (me, p) = (world.rank(), world.size());
    fn value<T: From<u8>>(rank: usize, k: usize) -> T {
        T::from((rank * 37 + k * 11 + 1) as u8)
    }
    macro_rules! check_type {
        ($t:ty) => {
            for len in [0, 1, 3, 7, 8, 9, 16, 17, 64, 65] {
                for root in 0..p {
                    // Broadcast: the root's values everywhere.
                    let mut buffer: Vec<$t> = (0..len)
                        .map(|k| {
                            if me == root {
                                value(root, k)
                            } else {
                                value(99, k)
                            }
                        })
                        .collect();
                    comm.broadcast(root, &mut buffer[..]).unwrap();
                    let expected: Vec<$t> = (0..len).map(|k| value(root, k)).collect();
                    assert_eq!(
                        buffer,
                        expected,
                        "broadcast of {len} {} from {root}",
                        stringify!($t)
                    );
                    // Gather and all-gather: every rank's part in rank order.
                    let mine: Vec<$t> = (0..len).map(|k| value(me, k)).collect();
                    let all: Vec<$t> = (0..p)
                        .flat_map(|r| (0..len).map(move |k| value(r, k)))
                        .collect();
                    let mut recv: Vec<$t> =
                        vec![value(99, 0); if me == root { len * p } else { 0 }];
                    comm.gather_into(root, &mine, &mut recv).unwrap();
                    if me == root {
                        assert_eq!(recv, all, "gather of {len} {} at {root}", stringify!($t));
                    }
                    let mut everyone: Vec<$t> = vec![value(99, 0); len * p];
                    comm.all_gather_into(&mine, &mut everyone).unwrap();
                    assert_eq!(everyone, all, "all_gather of {len} {}", stringify!($t));
                    // Scatter: part r of the root's values to rank r.
                    let send: Vec<$t> = if me == root { all.clone() } else { Vec::new() };
                    let mut part: Vec<$t> = vec![value(99, 0); len];
                    comm.scatter_into(root, &send, &mut part).unwrap();
                    assert_eq!(
                        part,
                        mine,
                        "scatter of {len} {} from {root}",
                        stringify!($t)
                    );
                }
            }
        };
    }
    check_type!(u8);
    check_type!(i16);
    check_type!(f32);
    check_type!(f64);
    check_type!(u64);
}

fn reductions(world: &Comm) {
    let (me, p) = (world.rank(), world.size());
    for op in [Op::Sum, Op::Prod, Op::Min, Op::Max] {
        let expect = (1..p).fold(value(0, 3), |acc, r| op.apply(acc, value(r, 3)));
        assert_eq!(
            world.all_reduce(value(me, 3), op),
            expect,
            "all_reduce {op:?}"
        );
        let f = world.all_reduce(me as f64 + 0.5, op);
        let f_expect = (1..p).fold(0.5, |acc, r| op.apply(acc, r as f64 + 0.5));
        assert_eq!(f, f_expect, "f64 all_reduce {op:?}");
        for len in [0, 1, 7, 1000] {
            let mine = data(me, len);
            let expect: Vec<i64> = (0..len)
                .map(|i| (1..p).fold(value(0, i), |acc, r| op.apply(acc, value(r, i))))
                .collect();
            let mut recv = vec![0; len];
            world.all_reduce_into(&mine, &mut recv, op).unwrap();
            assert_eq!(recv, expect, "all_reduce_into {op:?} len {len}");
            assert_eq!(world.all_reduce_slice(&mine, op).unwrap(), expect);
            for root in 0..p {
                let got = world.reduce_slice(root, &mine, op).unwrap();
                assert_eq!(
                    got,
                    (me == root).then(|| expect.clone()),
                    "reduce_slice root {root}"
                );
                let scalar = world
                    .reduce(root, mine.first().copied().unwrap_or(1), op)
                    .unwrap();
                let scalar_expect = expect
                    .first()
                    .copied()
                    .unwrap_or_else(|| (1..p).fold(1, |acc, _| op.apply(acc, 1)));
                assert_eq!(scalar, (me == root).then_some(scalar_expect));
            }
        }
    }
    // Unsigned and narrow types go through the same path.
    let total: u8 = world.all_reduce(1, Op::Sum);
    assert_eq!(total as usize, p);
}

/// Min and Max of floats propagate NaN wherever it sits: on any rank, at any position of a
/// slice, through all_reduce, all_reduce_into and reduce. (MPI's own MPI_MAX gave 2.0 for
/// {1, 2, NaN, 4} on 4 ranks of Open MPI.)
fn nan_reductions(world: &Comm) {
    let (me, p) = (world.rank(), world.size());
    for nan_rank in 0..p {
        let value = if me == nan_rank {
            f64::NAN
        } else {
            me as f64 + 1.0
        };
        for op in [Op::Min, Op::Max] {
            let label = format!("{op:?} with NaN on rank {nan_rank}");
            assert!(world.all_reduce(value, op).is_nan(), "{label}");
            assert!(world.all_reduce(value as f32, op).is_nan(), "{label} (f32)");
            let got = world.reduce(nan_rank, value, op).unwrap();
            assert_eq!(
                got.map(f64::is_nan),
                (me == nan_rank).then_some(true),
                "{label}"
            );
            // Element k of the slice is NaN on rank nan_rank only; element k + 1 nowhere.
            let k = nan_rank % 3;
            let send: Vec<f64> = (0..4)
                .map(|i| {
                    if i == k && me == nan_rank {
                        f64::NAN
                    } else {
                        (me * 10 + i) as f64
                    }
                })
                .collect();
            let mut recv = vec![0.0; 4];
            world.all_reduce_into(&send, &mut recv, op).unwrap();
            for (i, &r) in recv.iter().enumerate() {
                if i == k {
                    assert!(r.is_nan(), "{label}: element {i} {recv:?}");
                } else {
                    let expected = (0..p).map(|q| (q * 10 + i) as f64).fold(
                        if op == Op::Min {
                            f64::INFINITY
                        } else {
                            f64::NEG_INFINITY
                        },
                        |a, b| op.apply(a, b),
                    );
                    assert_eq!(r, expected, "{label}: element {i}");
                }
            }
        }
    }
    // Without NaN, and for integers, nothing changes.
    assert_eq!(world.all_reduce(me as f64, Op::Max), (p - 1) as f64);
    assert_eq!(world.all_reduce(-(me as i32), Op::Min), -(p as i32 - 1));
    // Infinities are values, not NaN.
    assert_eq!(
        world.all_reduce(if me == 0 { f64::INFINITY } else { 1.0 }, Op::Max),
        f64::INFINITY
    );
}

fn closure_reductions(world: &Comm) {
    let (me, p) = (world.rank(), world.size());
    // Argmin: the smallest value sits on the middle rank.
    let mine = MinLoc {
        value: (me as f64 - (p / 2) as f64).abs() + 0.25,
        rank: me as u64,
    };
    let argmin = |a: MinLoc, b: MinLoc| if b.value < a.value { b } else { a };
    let best = world.all_reduce_with(mine, argmin);
    assert_eq!(
        best,
        MinLoc {
            value: 0.25,
            rank: (p / 2) as u64
        }
    );
    // 2x2 integer matrix product: associative, not commutative, so rank order matters.
    let matrix = |r: usize| Mat2 {
        a: 1,
        b: r as i64 + 1,
        c: 0,
        d: 1 + (r as i64 % 2),
    };
    let mul = |x: Mat2, y: Mat2| Mat2 {
        a: x.a * y.a + x.b * y.c,
        b: x.a * y.b + x.b * y.d,
        c: x.c * y.a + x.d * y.c,
        d: x.c * y.b + x.d * y.d,
    };
    let expect = (1..p).fold(matrix(0), |acc, r| mul(acc, matrix(r)));
    assert_eq!(
        world.all_reduce_with(matrix(me), mul),
        expect,
        "ordered product"
    );
    let root = p - 1;
    let at_root = world.reduce_with(root, matrix(me), mul).unwrap();
    assert_eq!(at_root, (me == root).then_some(expect));
    let pairs: Vec<MinLoc> = (0..5)
        .map(|i| MinLoc {
            value: (i + me) as f64,
            rank: me as u64,
        })
        .collect();
    let reduced = world.all_reduce_slice_with(&pairs, argmin).unwrap();
    for (i, got) in reduced.iter().enumerate() {
        assert_eq!(
            *got,
            MinLoc {
                value: i as f64,
                rank: 0
            }
        );
    }
}

fn broadcasts(world: &Comm) {
    let (me, p) = (world.rank(), world.size());
    for root in 0..p {
        let mut x = if me == root { 42.5 + root as f64 } else { -1.0 };
        world.broadcast(root, &mut x).unwrap();
        assert_eq!(x, 42.5 + root as f64);
        let mut buf = if me == root {
            data(root, 9)
        } else {
            vec![0; 9]
        };
        world.broadcast(root, &mut buf[..]).unwrap();
        assert_eq!(buf, data(root, 9));
        // Only the root knows the length; 0 is a length too.
        for len in [0, 1, 5 + root, 10_000] {
            let mut v = if me == root {
                data(root, len)
            } else {
                vec![3; me % 3]
            };
            world.broadcast_vec(root, &mut v).unwrap();
            assert_eq!(v, data(root, len), "broadcast_vec root {root} len {len}");
        }
    }
}

fn equal_count_gathers_and_scatters(world: &Comm) {
    let (me, p) = (world.rank(), world.size());
    for len in [0, 1, 6] {
        let mine = data(me, len);
        let expect: Vec<i64> = (0..p).flat_map(|r| data(r, len)).collect();
        assert_eq!(world.all_gather(&mine).unwrap(), expect);
        let mut recv = vec![0; len * p];
        world.all_gather_into(&mine, &mut recv).unwrap();
        assert_eq!(recv, expect);
        for root in 0..p {
            assert_eq!(
                world.gather(root, &mine).unwrap(),
                (me == root).then(|| expect.clone())
            );
            let mut at_root = if me == root {
                vec![0; len * p]
            } else {
                Vec::new()
            };
            world.gather_into(root, &mine, &mut at_root).unwrap();
            if me == root {
                assert_eq!(at_root, expect);
            }
            // Scatter undoes gather.
            let send = if me == root {
                expect.clone()
            } else {
                Vec::new()
            };
            assert_eq!(
                world.scatter(root, &send).unwrap(),
                mine,
                "scatter root {root}"
            );
            let mut part = vec![0; len];
            world.scatter_into(root, &send, &mut part).unwrap();
            assert_eq!(part, mine);
        }
    }
}

fn varcount(world: &Comm) {
    let (me, p) = (world.rank(), world.size());
    // Nothing anywhere, in bytes (an empty `Vec<u8>` points at address 1, which Open MPI
    // refused in MPI_Allgatherv before the library skipped empty exchanges).
    let nothing: Vec<u8> = Vec::new();
    assert!(world.all_gather_varcount(&nothing).unwrap().is_empty());
    for root in 0..p {
        let got = world.gather_varcount(root, &nothing).unwrap();
        assert_eq!(
            got.map(|g| g.into_parts()),
            (me == root).then(|| (vec![], vec![0; p]))
        );
        let zeros = if me == root { vec![0; p] } else { Vec::new() };
        assert!(world
            .scatter_varcount(root, &nothing, &zeros)
            .unwrap()
            .is_empty());
    }
    // Rank r holds r elements (rank 0 none), then every rank holds none.
    for len_of in [
        |r: usize| r,
        |_: usize| 0,
        |r: usize| (r * 7919) % 5,
        |r: usize| 150 * r + 3,
    ] {
        let mine = data(me, len_of(me));
        let counts: Vec<usize> = (0..p).map(len_of).collect();
        let expect: Vec<i64> = (0..p).flat_map(|r| data(r, len_of(r))).collect();
        let gathered = world.all_gather_varcount(&mine).unwrap();
        assert_eq!(
            (gathered.as_slice(), gathered.counts()),
            (&expect[..], &counts[..])
        );
        for (r, part) in gathered.parts().enumerate() {
            assert_eq!(part, &data(r, len_of(r))[..], "part of rank {r}");
        }
        // A reused buffer with stale, longer contents ends up exactly the gathered data.
        let mut reused = vec![-1; expect.len() + 5];
        let into_counts = world.all_gather_varcount_into(&mine, &mut reused).unwrap();
        assert_eq!((&reused, &into_counts), (&expect, &counts));
        for root in 0..p {
            let got = world.gather_varcount(root, &mine).unwrap();
            assert_eq!(
                got.map(|v| v.into_parts()),
                (me == root).then(|| (expect.clone(), counts.clone()))
            );
            let (send, send_counts) = if me == root {
                (expect.clone(), counts.clone())
            } else {
                (Vec::new(), Vec::new())
            };
            let part = world.scatter_varcount(root, &send, &send_counts).unwrap();
            assert_eq!(part, mine, "scatter_varcount root {root}");
        }
    }
}

/// Gathers and scatters by partition; results mapped back to global order must be 0..n.
/// Rank r sends (r + d) % 3 elements to rank d, valued by sender, receiver and position.
fn all_to_all(world: &Comm) {
    let (p, me) = (world.size(), world.rank());
    // Nothing anywhere, in bytes (see `varcount`).
    let nothing: Vec<u8> = Vec::new();
    let got = world.all_to_all_varcount(&nothing, &vec![0; p]).unwrap();
    assert!(got.is_empty());
    let count = |from: usize, to: usize| (from + to) % 3;
    let code = |from: usize, to: usize, k: usize| (from * 100 + to * 10 + k) as i64;
    let send_counts: Vec<usize> = (0..p).map(|d| count(me, d)).collect();
    let send: Vec<i64> = (0..p)
        .flat_map(|d| (0..count(me, d)).map(move |k| code(me, d, k)))
        .collect();
    let (received, counts) = world
        .all_to_all_varcount(&send, &send_counts)
        .unwrap()
        .into_parts();
    let expected_counts: Vec<usize> = (0..p).map(|s| count(s, me)).collect();
    let expected: Vec<i64> = (0..p)
        .flat_map(|s| (0..count(s, me)).map(move |k| code(s, me, k)))
        .collect();
    assert_eq!(counts, expected_counts);
    assert_eq!(received, expected);
    // Into a reused buffer with stale, longer contents: exactly what arrived, and the
    // buffer's allocation kept.
    let mut reused = vec![-7_i64; expected.len() + 9];
    let before = reused.as_ptr();
    let into_counts = world
        .all_to_all_varcount_into(&send, &send_counts, &mut reused)
        .unwrap();
    assert_eq!((&reused, &into_counts), (&expected, &expected_counts));
    assert_eq!(reused.as_ptr(), before, "the buffer was reallocated");
    // Nothing at all to send is fine too.
    let (none, zeros) = world
        .all_to_all_varcount::<i64>(&[], &vec![0; p])
        .unwrap()
        .into_parts();
    assert!(none.is_empty() && zeros.iter().all(|&c| c == 0));
}

fn partitioned(world: &Comm) {
    let (me, p) = (world.rank(), world.size());
    let global = |g: usize| g as f64 * 0.5 - 3.0;
    for n in [0, 1, p.saturating_sub(1), 10, 37, 1001] {
        for distribution in [
            Distribution::Block,
            Distribution::Cyclic,
            Distribution::BlockCyclic(3),
        ] {
            let part = Partition::new(distribution, n, p).unwrap();
            let mine: Vec<f64> = part.global_indices(me).map(global).collect();
            // Rank-packed order: the parts one after another.
            let packed: Vec<f64> = (0..p)
                .flat_map(|r| part.global_indices(r))
                .map(global)
                .collect();
            let all = world.all_gather_partitioned(&mine, &part).unwrap();
            assert_eq!(all, packed, "{distribution:?} n {n}");
            let mut reused = vec![7.0; 3];
            world
                .all_gather_partitioned_into(&mine, &part, &mut reused)
                .unwrap();
            assert_eq!(reused, packed);
            // The indexed parallel iterator gives the same indices in the same order.
            use rayon::prelude::*;
            let parallel: Vec<usize> = part.par_global_indices(me).collect();
            assert_eq!(parallel, part.global_indices(me).collect::<Vec<_>>());
            if distribution == Distribution::Block {
                assert_eq!(part.range(me).collect::<Vec<_>>(), parallel);
            }
            let mut in_global_order = vec![f64::NAN; n];
            let mut k = 0;
            for r in 0..p {
                for g in part.global_indices(r) {
                    in_global_order[g] = all[k];
                    k += 1;
                }
            }
            assert_eq!(in_global_order, (0..n).map(global).collect::<Vec<_>>());
            let root = n % p;
            let at_root = world.gather_partitioned(root, &mine, &part).unwrap();
            assert_eq!(at_root, (me == root).then(|| packed.clone()));
            let send = if me == root {
                packed.clone()
            } else {
                Vec::new()
            };
            assert_eq!(world.scatter_partitioned(root, &send, &part).unwrap(), mine);
        }
    }
}

fn split_groups(world: &Comm) {
    let (me, p) = (world.rank(), world.size());
    let group = world
        .split(Some((me % 2) as u32), me as i32)
        .expect("every rank has a colour");
    let members: Vec<usize> = (0..p).filter(|r| r % 2 == me % 2).collect();
    assert_eq!(group.size(), members.len());
    assert_eq!(group.rank(), me / 2);
    let sum = group.all_reduce(me as u64, Op::Sum);
    assert_eq!(sum, members.iter().map(|&r| r as u64).sum::<u64>());
    // A rank without a colour gets no communicator.
    let only_zero = world.split((me == 0).then_some(7), 0);
    assert_eq!(only_zero.map(|c| c.size()), (me == 0).then_some(1));
}

/// With agreement checks off, valid calls give the same answers, on a handle of the world
/// and on a communicator wrapped from rsmpi.
fn unchecked_mode(world: &Comm) {
    let unchecked = world.unchecked();
    assert!(!unchecked.agreement_checks() && world.agreement_checks());
    assert!(unchecked.same_as(world) && !world.duplicate().same_as(world));
    unchecked_answers(&unchecked);
    let mut wrapped = Comm::from_raw(spmd::mpi::topology::SimpleCommunicator::world());
    wrapped.set_agreement_checks(false);
    unchecked_answers(&wrapped);
}

fn unchecked_answers(world: &Comm) {
    let (me, p) = (world.rank(), world.size());
    let mine = data(me, 4);
    let expect: Vec<i64> = (0..4).map(|i| (0..p).map(|r| value(r, i)).sum()).collect();
    assert_eq!(world.all_reduce_slice(&mine, Op::Sum).unwrap(), expect);
    let all: Vec<i64> = (0..p).flat_map(|r| data(r, 4)).collect();
    assert_eq!(world.all_gather(&mine).unwrap(), all);
    let root = p - 1;
    let send = if me == root { all.clone() } else { Vec::new() };
    assert_eq!(world.scatter(root, &send).unwrap(), mine);
    let mut v = if me == root { data(9, 3) } else { Vec::new() };
    world.broadcast_vec(root, &mut v).unwrap();
    assert_eq!(v, data(9, 3));
}
