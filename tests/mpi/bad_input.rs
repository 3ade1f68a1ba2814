//! Bad input gives the same error on every rank, and the ranks stay in step afterwards.

use spmd::{Comm, Distribution, ErrorKind, Op, Partition};

use crate::harness::{at_ranks, Module, Scenario};
use crate::support::{expect_same_error, init, report_ok};

/// More elements than one MPI call may carry. `vec![0u8; n]` maps zeroed pages lazily, so
/// this costs no real memory as long as nothing reads it (validation refuses it first).
const OVER_I32: usize = i32::MAX as usize + 1;

pub static BAD_INPUT: Scenario = Scenario {
    name: "bad_input",
    run,
};

pub const MODULE: Module = Module {
    scenarios: &[&BAD_INPUT],
    trials: || at_ranks(&BAD_INPUT, 1..=4),
};

pub fn run() {
    let spmd = init();
    let world = spmd.world();
    root_out_of_range(world);
    buffer_sizes(world);
    count_overflow(world);
    scatter_inputs(world);
    few_and_empty(world);
    partitions(world);
    if world.size() > 1 {
        disagreements(world);
        mismatched_types(world);
        mismatched_collectives(world);
    }
    report_ok("bad_input", &spmd);
}

fn root_out_of_range(world: &Comm) {
    let p = world.size();
    let bad = p + 2;
    let same = |label: &str, r| {
        let e = expect_same_error(world, label, r, ErrorKind::InvalidRoot);
        assert!(e.message().contains(&format!("root {bad}")), "{e}");
    };
    same("reduce", world.reduce(bad, 1.0, Op::Sum).map(|_| ()));
    same(
        "reduce_with",
        world.reduce_with(bad, 1_i32, |a, b| a + b).map(|_| ()),
    );
    same("broadcast", world.broadcast(bad, &mut 0_u64));
    same("broadcast slice", world.broadcast(bad, &mut [0_u8; 3][..]));
    same(
        "broadcast_vec",
        world.broadcast_vec(bad, &mut vec![1_i32; 3]),
    );
    same("gather", world.gather(bad, &[1_i32]).map(|_| ()));
    same(
        "gather_varcount",
        world.gather_varcount(bad, &[1_i32]).map(|_| ()),
    );
    same("scatter", world.scatter(bad, &[0_i32; 8]).map(|_| ()));
    same(
        "scatter_into",
        world.scatter_into(bad, &[0_i32; 8], &mut [0]),
    );
    same(
        "scatter_varcount",
        world.scatter_varcount(bad, &[1_i32], &[1]).map(|_| ()),
    );
    let part = Partition::block(5, p).unwrap();
    let mine = vec![0.0_f64; part.count(world.rank())];
    same(
        "gather_partitioned",
        world.gather_partitioned(bad, &mine, &part).map(|_| ()),
    );
}

fn buffer_sizes(world: &Comm) {
    let (me, p) = (world.rank(), world.size());
    let last = p - 1;
    // Only the last rank's receive buffer is wrong; everyone gets its error.
    let send = [1.0_f64; 4];
    let mut recv = vec![0.0; if me == last { 5 } else { 4 }];
    let e = expect_same_error(
        world,
        "all_reduce_into recv",
        world.all_reduce_into(&send, &mut recv, Op::Sum),
        ErrorKind::BufferSize,
    );
    assert_eq!(e.rank(), Some(last));
    assert!(e.message().contains("has 5 elements, expected 4"), "{e}");
    // The last rank's all-to-all counts do not add up to its data.
    let counts = vec![1; p];
    let data = vec![7_u8; if me == last { p + 1 } else { p }];
    let e = expect_same_error(
        world,
        "all_to_all_varcount counts",
        world.all_to_all_varcount(&data, &counts),
        ErrorKind::BufferSize,
    );
    assert_eq!(e.rank(), Some(last));
    // Rank 0 passes one count too few.
    let short = vec![0; if me == 0 { p - 1 } else { p }];
    expect_same_error(
        world,
        "all_to_all_varcount send_counts length",
        world.all_to_all_varcount::<u8>(&[], &short),
        ErrorKind::BufferSize,
    );
    // The root's gather buffer is one short.
    let mut at_root = vec![0_i32; if me == 0 { 2 * p - 1 } else { 0 }];
    let e = expect_same_error(
        world,
        "gather_into",
        world.gather_into(0, &[1, 2], &mut at_root),
        ErrorKind::BufferSize,
    );
    assert_eq!(e.rank(), Some(0));
    let mut everywhere = vec![0_i32; 2 * p + 1];
    expect_same_error(
        world,
        "all_gather_into",
        world.all_gather_into(&[1, 2], &mut everywhere),
        ErrorKind::BufferSize,
    );
}

fn count_overflow(world: &Comm) {
    let (me, p) = (world.rank(), world.size());
    let last = p - 1;
    // One rank alone passes too many elements: an overflow, not a disagreement.
    let huge = vec![0_u8; if me == last { OVER_I32 } else { 3 }];
    let e = expect_same_error(
        world,
        "gather",
        world.gather(0, &huge).map(|_| ()),
        ErrorKind::CountOverflow,
    );
    assert_eq!(e.rank(), Some(last));
    assert!(e.message().contains(&OVER_I32.to_string()), "{e}");
    expect_same_error(
        world,
        "all_gather_varcount",
        world.all_gather_varcount(&huge).map(|_| ()),
        ErrorKind::CountOverflow,
    );
    drop(huge);
    let mut at_root = if me == 0 {
        vec![0_u8; OVER_I32]
    } else {
        Vec::new()
    };
    expect_same_error(
        world,
        "broadcast_vec",
        world.broadcast_vec(0, &mut at_root),
        ErrorKind::CountOverflow,
    );
    drop(at_root);
    if p > 1 {
        // Each part fits, the total over ranks does not.
        let half = vec![0_u8; OVER_I32 / 2 + 1];
        let e = expect_same_error(
            world,
            "gather_varcount total",
            world.gather_varcount(0, &half).map(|_| ()),
            ErrorKind::CountOverflow,
        );
        assert!(e.message().contains("total"), "{e}");
    }
}

fn scatter_inputs(world: &Comm) {
    let (me, p) = (world.rank(), world.size());
    let root = p / 2;
    let odd: Vec<i32> = if me == root {
        vec![7; 3 * p + 1]
    } else {
        Vec::new()
    };
    if p > 1 {
        let e = expect_same_error(
            world,
            "scatter",
            world.scatter(root, &odd).map(|_| ()),
            ErrorKind::NotDivisible,
        );
        assert_eq!(e.rank(), Some(root));
        let mut part = [0_i32; 3];
        expect_same_error(
            world,
            "scatter_into",
            world.scatter_into(root, &odd, &mut part),
            ErrorKind::NotDivisible,
        );
    }
    let mut part = [0_i32; 2];
    let short: Vec<i32> = if me == root {
        vec![7; 3 * p]
    } else {
        Vec::new()
    };
    expect_same_error(
        world,
        "scatter_into size",
        world.scatter_into(root, &short, &mut part),
        ErrorKind::BufferSize,
    );
    // Root's counts: one entry short, then not adding up to the data.
    let (send, counts) = if me == root {
        (vec![1_i32; p + 1], vec![1; p - 1])
    } else {
        (Vec::new(), Vec::new())
    };
    expect_same_error(
        world,
        "scatter_varcount counts",
        world.scatter_varcount(root, &send, &counts).map(|_| ()),
        ErrorKind::BufferSize,
    );
    let counts = if me == root { vec![1; p] } else { Vec::new() };
    let e = expect_same_error(
        world,
        "scatter_varcount sum",
        world.scatter_varcount(root, &send, &counts).map(|_| ()),
        ErrorKind::BufferSize,
    );
    assert_eq!(e.rank(), Some(root));
}

fn partitions(world: &Comm) {
    let (me, p) = (world.rank(), world.size());
    let wrong_parts = Partition::block(10, p + 1).unwrap();
    let mine = vec![0_i64; wrong_parts.count(me)];
    expect_same_error(
        world,
        "partition parts",
        world
            .all_gather_partitioned(&mine, &wrong_parts)
            .map(|_| ()),
        ErrorKind::InvalidPartition,
    );
    let part = Partition::cyclic(10, p).unwrap();
    let off_by_one = vec![0_i64; part.count(me) + usize::from(me == 0)];
    expect_same_error(
        world,
        "partition part length",
        world.gather_partitioned(0, &off_by_one, &part).map(|_| ()),
        ErrorKind::BufferSize,
    );
    let send = if me == 0 { vec![0_i64; 9] } else { Vec::new() };
    expect_same_error(
        world,
        "scatter_partitioned root data",
        world.scatter_partitioned(0, &send, &part).map(|_| ()),
        ErrorKind::BufferSize,
    );
}

/// Arguments that differ across ranks (needs two ranks or more).
fn disagreements(world: &Comm) {
    let (me, p) = (world.rank(), world.size());
    let disagree = ErrorKind::Disagreement;
    let e = expect_same_error(
        world,
        "reduce root",
        world.reduce(me % 2, 1_i64, Op::Sum).map(|_| ()),
        disagree,
    );
    assert!(
        e.message()
            .contains("ranks disagree on the root: ranks 0, 2 have 0")
            || p == 2,
        "{e}"
    );
    assert!(e.message().contains("rank 1 has 1") || p > 2, "{e}");
    expect_same_error(
        world,
        "gather_varcount root",
        world.gather_varcount(me % 2, &[1_u8]).map(|_| ()),
        disagree,
    );
    expect_same_error(
        world,
        "broadcast root",
        world.broadcast(me % 2, &mut 1_u8),
        disagree,
    );
    let op = if me == p - 1 { Op::Max } else { Op::Sum };
    let e = expect_same_error(
        world,
        "all_reduce op",
        world.all_reduce_slice(&[1.0_f32], op).map(|_| ()),
        disagree,
    );
    let last = p - 1;
    let expected = format!(
        "all_reduce_slice: ranks disagree on the reduction: {} Sum; rank {last} has Max",
        if p == 2 {
            "rank 0 has".to_string()
        } else {
            format!("ranks 0-{} have", p - 2)
        }
    );
    assert!(
        e.message().starts_with(&expected),
        "{e}\nexpected: {expected}"
    );
    let mine = vec![1_u16; me + 1];
    let e = expect_same_error(
        world,
        "all_reduce len",
        world.all_reduce_slice(&mine, Op::Sum).map(|_| ()),
        disagree,
    );
    // Every rank's value, by rank.
    let lengths: Vec<String> = (0..p).map(|r| format!("rank {r} has {}", r + 1)).collect();
    assert!(
        e.message().contains(&format!(
            "ranks disagree on the length: {}",
            lengths.join("; ")
        )),
        "{e}"
    );
    expect_same_error(
        world,
        "all_gather len",
        world.all_gather(&mine).map(|_| ()),
        disagree,
    );
    expect_same_error(
        world,
        "gather len",
        world.gather(0, &mine).map(|_| ()),
        disagree,
    );
    let mut buf = vec![0_u16; me + 1];
    expect_same_error(
        world,
        "broadcast slice len",
        world.broadcast(0, &mut buf[..]),
        disagree,
    );
    let distribution = if me == 0 {
        Distribution::Block
    } else {
        Distribution::Cyclic
    };
    let part = Partition::new(distribution, p, p).unwrap();
    expect_same_error(
        world,
        "partition distribution",
        world.all_gather_partitioned(&[me], &part).map(|_| ()),
        disagree,
    );
}

/// "rank 0 has A; rank 1 has B" or "rank 0 has A; ranks 1-3 have B": rank 0 against the rest.
fn zero_against_rest(p: usize, zero: &str, rest: &str) -> String {
    let others = if p == 2 {
        format!("rank 1 has {rest}")
    } else {
        format!("ranks 1-{} have {rest}", p - 1)
    };
    format!("rank 0 has {zero}; {others}")
}

/// Ranks that pass different element types of the same length: before 0.2 Open MPI aborted
/// with MPI_ERR_TRUNCATE after printing a wrong value, and MPICH returned a different wrong
/// answer on every rank. Now: the same Disagreement everywhere, naming every rank's type.
fn mismatched_types(world: &Comm) {
    let (me, p) = (world.rank(), world.size());
    let disagree = ErrorKind::Disagreement;
    let e = if me == 0 {
        let mut out = [0.0_f64; 4];
        expect_same_error(
            world,
            "all_reduce_into f64 against f32",
            world.all_reduce_into(&[1.0_f64; 4], &mut out, Op::Sum),
            disagree,
        )
    } else {
        let mut out = [0.0_f32; 4];
        expect_same_error(
            world,
            "all_reduce_into f64 against f32",
            world.all_reduce_into(&[1.0_f32; 4], &mut out, Op::Sum),
            disagree,
        )
    };
    let expected = format!(
        "all_reduce_into: ranks disagree on the element type: {}",
        zero_against_rest(p, "f64 (8 bytes)", "f32 (4 bytes)")
    );
    assert!(
        e.message().starts_with(&expected),
        "{e}\nexpected {expected}"
    );
    // u8 against u64, a gather of equal lengths.
    let label = "gather u8 against u64";
    let e = if me == p - 1 {
        expect_same_error(
            world,
            label,
            world.gather(0, &[7_u64; 3]).map(|_| ()),
            disagree,
        )
    } else {
        expect_same_error(
            world,
            label,
            world.gather(0, &[7_u8; 3]).map(|_| ()),
            disagree,
        )
    };
    assert!(e.message().contains("the element type"), "{e}");
    assert!(
        e.message()
            .contains(&format!("rank {} has u64 (8 bytes)", p - 1)),
        "{e}"
    );
    // Uneven counts: the element type is checked before the counts are exchanged.
    let label = "all_gather_varcount i32 against u32";
    let e = if me == 0 {
        expect_same_error(
            world,
            label,
            world.all_gather_varcount(&[1_i32]).map(|_| ()),
            disagree,
        )
    } else {
        expect_same_error(
            world,
            label,
            world.all_gather_varcount(&[1_u32]).map(|_| ()),
            disagree,
        )
    };
    assert!(e.message().contains("i32 (4 bytes)"), "{e}");
}

/// Ranks in different collectives that happen to agree on root, length and type: before 0.2
/// this hung (until the watchdog, if on, ended the job). Now the operation is one of the values
/// every check compares.
fn mismatched_collectives(world: &Comm) {
    let (me, p) = (world.rank(), world.size());
    let disagree = ErrorKind::Disagreement;
    let label = "gather on rank 0, broadcast elsewhere";
    let e = if me == 0 {
        expect_same_error(
            world,
            label,
            world.gather(0, &[5_u32]).map(|_| ()),
            disagree,
        )
    } else {
        let mut one = [0_u32];
        expect_same_error(world, label, world.broadcast(0, &mut one[..]), disagree)
    };
    let expected = format!(
        "collectives: ranks disagree on the operation: {}",
        zero_against_rest(p, "gather", "broadcast")
    );
    assert!(e.message().contains(&expected), "{e}\nexpected {expected}");
    // An all_reduce_into on the last rank against an all_gather_into elsewhere, same slices.
    let label = "all_reduce_into against all_gather_into";
    let e = if me == p - 1 {
        let mut out = vec![0_i64; p];
        expect_same_error(
            world,
            label,
            world.all_reduce_into(&vec![1_i64; p], &mut out, Op::Sum),
            disagree,
        )
    } else {
        let mut out = vec![0_i64; p];
        expect_same_error(
            world,
            label,
            world.all_gather_into(&[1_i64], &mut out),
            disagree,
        )
    };
    assert!(e.message().contains("the operation"), "{e}");
    // A DistArray collective against a plain one.
    let a =
        spmd::array::DistArray::<f64, ndarray::Ix1>::zeros(world, 10, spmd::array::Split::block(0))
            .unwrap();
    let label = "DistArray::sum against all_reduce_slice";
    let e = if me == 0 {
        expect_same_error(world, label, a.sum().map(|_| ()), disagree)
    } else {
        expect_same_error(
            world,
            label,
            world.all_reduce_slice(&[0.0_f64], Op::Sum).map(|_| ()),
            disagree,
        )
    };
    assert!(e.message().contains("rank 0 has DistArray::sum"), "{e}");
}

/// Fewer elements than ranks, and none at all: equal-count scatter refuses what cannot be split
/// evenly; everything else works, with empty parts where there is nothing.
fn few_and_empty(world: &Comm) {
    let (me, p) = (world.rank(), world.size());
    let few: Vec<u32> = if me == 0 {
        (0..p as u32 - 1).collect()
    } else {
        Vec::new()
    };
    if p > 1 {
        expect_same_error(
            world,
            "scatter of fewer elements than ranks",
            world.scatter(0, &few).map(|_| ()),
            ErrorKind::NotDivisible,
        );
    }
    // The uneven forms hand the last rank nothing.
    let part = Partition::block(p - 1, p).unwrap();
    let mine = world.scatter_partitioned(0, &few, &part).unwrap();
    let expected: Vec<u32> = part.global_indices(me).map(|i| i as u32).collect();
    assert_eq!(mine, expected);
    assert_eq!(
        world.all_gather_partitioned(&mine, &part).unwrap(),
        (0..p as u32 - 1).collect::<Vec<_>>()
    );
    // Zero elements everywhere: every collective is a no-op that returns empty results.
    let none: Vec<f64> = Vec::new();
    assert!(world.scatter(0, &none).unwrap().is_empty());
    assert!(world.all_gather(&none).unwrap().is_empty());
    assert!(world.all_reduce_slice(&none, Op::Sum).unwrap().is_empty());
    let gathered = world.gather(0, &none).unwrap();
    assert_eq!(gathered.map(|g| g.len()), (me == 0).then_some(0));
    let mut empty = Vec::<i64>::new();
    world.broadcast_vec(0, &mut empty).unwrap();
    assert!(empty.is_empty());
    assert_eq!(world.sum_exact(&none), 0.0);
    // Zero elements on some ranks only (the odd ones).
    let some: Vec<u8> = if me % 2 == 0 {
        vec![me as u8; 2]
    } else {
        Vec::new()
    };
    let (all, counts) = world.all_gather_varcount(&some).unwrap().into_parts();
    let expected: Vec<u8> = (0..p)
        .filter(|r| r % 2 == 0)
        .flat_map(|r| [r as u8; 2])
        .collect();
    assert_eq!(all, expected);
    assert_eq!(
        counts,
        (0..p)
            .map(|r| if r % 2 == 0 { 2 } else { 0 })
            .collect::<Vec<_>>()
    );
}
