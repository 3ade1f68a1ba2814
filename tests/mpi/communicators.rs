//! The collectives and DistArray on every kind of communicator: the world, a duplicate, the
//! world with ranks reversed, a split subset (the even world ranks) and single-rank splits.
//! Every result is checked against what the communicator's own rank numbering implies, so a
//! helper that used world ranks by mistake fails on the reversed and the subset communicators.

use ndarray::{Array2, Axis};
use spmd::array::{Boundary, DistArray, Split};
use spmd::{Comm, ErrorKind, Op};

use crate::harness::{at_ranks, Module, Scenario};
use crate::support::{expect_same_error, init, report_ok};

pub static COMMUNICATORS: Scenario = Scenario {
    name: "communicators",
    run,
};

pub const MODULE: Module = Module {
    scenarios: &[&COMMUNICATORS],
    trials: || at_ranks(&COMMUNICATORS, 1..=4),
};

pub fn run() {
    let spmd = init();
    let world = spmd.world();
    let (w, p) = (world.rank(), world.size());

    check(world, "world", |r| r);
    check(&world.duplicate(), "duplicate", |r| r);
    // key = p − 1 − rank: comm rank r is world rank p − 1 − r.
    let reversed = world
        .split(Some(0), (p - 1 - w) as i32)
        .expect("every rank is in the reversed communicator");
    assert_eq!(reversed.rank(), p - 1 - w);
    check(&reversed, "reversed", |r| p - 1 - r);
    let evens = world.split((w % 2 == 0).then_some(0), 0);
    assert_eq!(evens.is_some(), w % 2 == 0);
    if let Some(evens) = &evens {
        assert_eq!(evens.size(), p.div_ceil(2));
        check(evens, "even subset", |r| 2 * r);
    }
    let alone = world.split(Some(w as u32), 0).expect("one colour per rank");
    assert_eq!((alone.rank(), alone.size()), (0, 1));
    check(&alone, "single rank", |_| w);

    // Arrays made on two communicators cannot be combined, even with the same ranks.
    if p > 1 {
        let on_world = DistArray::from_fn(world, p, Split::block(0), |i| i as f64).unwrap();
        let on_reversed = DistArray::from_fn(&reversed, p, Split::block(0), |i| i as f64).unwrap();
        expect_same_error(
            world,
            "world array with a reversed-communicator array",
            on_world.dot(&on_reversed),
            ErrorKind::InvalidPartition,
        );
    }
    report_ok("communicators", &spmd);
}

/// Runs collectives and DistArray operations on `comm`; `world_of(r)` is the world rank of
/// comm rank `r`.
fn check(comm: &Comm, label: &str, world_of: impl Fn(usize) -> usize) {
    let (r, q) = (comm.rank(), comm.size());
    let me = world_of(r);
    let label = format!("{label}: comm rank {r} of {q}");

    // Collectives: which world rank sits at each comm rank.
    let order = comm.all_gather(&[me as u64]).unwrap();
    let expected: Vec<u64> = (0..q).map(|k| world_of(k) as u64).collect();
    assert_eq!(order, expected, "{label}: all_gather");
    assert_eq!(
        comm.all_reduce(me as u64, Op::Sum),
        expected.iter().sum::<u64>(),
        "{label}: all_reduce"
    );
    let root = q - 1;
    let mut token = if r == root { 1000 + me as u64 } else { 0 };
    comm.broadcast(root, &mut token).unwrap();
    assert_eq!(token, 1000 + world_of(root) as u64, "{label}: broadcast");
    // Uneven parts: comm rank k sends k + 1 copies of its world rank.
    let mine = vec![me as u32; r + 1];
    let gathered = comm.gather_varcount(root, &mine).unwrap();
    let expected_all: Vec<u32> = (0..q)
        .flat_map(|k| std::iter::repeat_n(world_of(k) as u32, k + 1))
        .collect();
    if r == root {
        let (all, counts) = gathered.expect("root gets the data").into_parts();
        assert_eq!(all, expected_all, "{label}: gather_varcount");
        assert_eq!(counts, (1..=q).collect::<Vec<_>>());
    } else {
        assert!(gathered.is_none());
    }
    let source: Vec<u32> = if r == 0 {
        (0..3 * q as u32).collect()
    } else {
        Vec::new()
    };
    let part = comm.scatter(0, &source).unwrap();
    assert_eq!(
        part,
        vec![3 * r as u32, 3 * r as u32 + 1, 3 * r as u32 + 2],
        "{label}: scatter"
    );
    // all_to_all: comm rank k receives from each rank j the value 100·j + k.
    let send: Vec<u64> = (0..q).map(|k| (100 * r + k) as u64).collect();
    let (got, counts) = comm
        .all_to_all_varcount(&send, &vec![1; q])
        .unwrap()
        .into_parts();
    assert_eq!(
        got,
        (0..q).map(|j| (100 * j + r) as u64).collect::<Vec<_>>(),
        "{label}: all_to_all"
    );
    assert_eq!(counts, vec![1; q]);
    assert_eq!(
        comm.sum_exact(&[0.1 * me as f64]),
        exact_reference(&expected),
        "{label}: sum_exact"
    );

    // DistArray: scatter from the last rank, halos, reductions, redistribution, gather.
    let (rows, cols) = (2 * q + 3, 5);
    let global = Array2::from_shape_fn((rows, cols), |(i, j)| (i * cols + j) as f64);
    let source = (r == root).then(|| global.view());
    let array = DistArray::scatter(comm, root, source, Split::block(0)).unwrap();
    assert_eq!(array.sum().unwrap(), global.sum(), "{label}: sum");
    assert_eq!(
        array.sum_exact().unwrap(),
        global.sum(),
        "{label}: sum_exact"
    );
    assert_eq!(array.max().unwrap(), (rows * cols - 1) as f64);
    let mut ghosted = array.clone().with_ghosts(1, Boundary::Periodic).unwrap();
    ghosted.exchange_halos().unwrap();
    let with_ghosts = ghosted.local_with_ghosts();
    let first_row = array.local_to_global([0, 0]).unwrap()[0];
    let last_row = first_row + array.local().len_of(Axis(0)) - 1;
    assert_eq!(
        with_ghosts.index_axis(Axis(0), 0),
        global.index_axis(Axis(0), (first_row + rows - 1) % rows),
        "{label}: upper ghost row"
    );
    assert_eq!(
        with_ghosts.index_axis(Axis(0), with_ghosts.len_of(Axis(0)) - 1),
        global.index_axis(Axis(0), (last_row + 1) % rows),
        "{label}: lower ghost row"
    );
    let by_columns = array.redistribute(Split::cyclic(1)).unwrap();
    assert_eq!(
        by_columns.all_gather().unwrap(),
        global,
        "{label}: redistribute"
    );
    let back = by_columns.gather(root).unwrap();
    assert_eq!(back.is_some(), r == root);
    if let Some(back) = back {
        assert_eq!(back, global, "{label}: gather");
    }
}

/// The exact sum of `0.1 · world rank` over the communicator's members, by the serial
/// accumulator (order-free by construction).
fn exact_reference(members: &[u64]) -> f64 {
    let mut sum = spmd::exact::ExactSum::new();
    members.iter().for_each(|&m| sum.add(0.1 * m as f64));
    sum.to_f64()
}
