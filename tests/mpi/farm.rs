//! The task farm: every task's result exactly once and in order, serde tasks, chunking,
//! any manager, empty input, more ranks than tasks, failures collected or aborting on every
//! rank, bad set-ups as errors, and a slow worker that gets fewer tasks.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use spmd::farm::Farm;
use spmd::{Comm, ErrorKind};

use crate::harness::{at_ranks, Module, Scenario};
use crate::support::{expect_same_error, init, report_ok};

pub static FARM: Scenario = Scenario {
    name: "farm",
    run: farm,
};
pub static FARM_SLOW_WORKER: Scenario = Scenario {
    name: "farm_slow_worker",
    run: farm_slow_worker,
};

pub const MODULE: Module = Module {
    scenarios: &[&FARM, &FARM_SLOW_WORKER],
    trials,
};

fn trials() -> Vec<libtest_mimic::Trial> {
    let mut trials = at_ranks(&FARM, 1..=4);
    trials.extend(at_ranks(&FARM_SLOW_WORKER, [3]));
    trials
}

/// A task that is not a plain MPI type: a tile with metadata.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Tile {
    id: u32,
    label: String,
    pixels: Vec<f32>,
}

fn tile(id: u32) -> Tile {
    Tile {
        id,
        label: format!("tile-{id}"),
        pixels: (0..id % 50).map(|k| (k * id) as f32 * 0.5).collect(),
    }
}

/// What the farm must compute for a tile, independently of it.
fn tile_summary(t: &Tile) -> (u32, String, f64) {
    (
        t.id,
        t.label.to_uppercase(),
        t.pixels.iter().map(|&p| f64::from(p)).sum(),
    )
}

/// The manager's tasks, nothing elsewhere.
fn tasks_for<T>(farm: &Farm, make: impl FnOnce() -> Vec<T>) -> Vec<T> {
    if farm.is_manager() {
        make()
    } else {
        Vec::new()
    }
}

fn farm() {
    let spmd = init();
    let world = spmd.world();
    let (rank, size) = (world.rank(), world.size());

    // Ordered results of plain values, on the manager only.
    let farm = Farm::new(world).unwrap();
    let n = 1000_u64;
    let squares = farm
        .map(tasks_for(&farm, || (0..n).collect()), |x: u64| x * x + 1)
        .unwrap();
    match squares {
        Some(s) => assert_eq!(s, (0..n).map(|x| x * x + 1).collect::<Vec<_>>()),
        None => assert_ne!(rank, 0, "the manager gets the results"),
    }
    let stats = farm.stats().unwrap();
    assert_eq!(stats.tasks(), n, "every task ran exactly once");
    assert_eq!(stats.ranks.len(), size);

    // Serde tasks, chunked, with a deeper prefetch and the last rank as manager.
    let farm = Farm::new(world)
        .unwrap()
        .manager(size - 1)
        .chunk(7)
        .prefetch(3);
    let tiles = tasks_for(&farm, || (0..333).map(tile).collect());
    let summaries = farm.map(tiles, |t: Tile| tile_summary(&t)).unwrap();
    if rank == size - 1 {
        let expected: Vec<_> = (0..333).map(|id| tile_summary(&tile(id))).collect();
        assert_eq!(summaries.unwrap(), expected);
    } else {
        assert!(summaries.is_none());
    }
    assert_eq!(farm.stats().unwrap().manager, size - 1);

    // Unordered delivery: every index exactly once.
    let farm = Farm::new(world).unwrap();
    let mut seen = BTreeSet::new();
    let mut total = 0_u64;
    farm.for_each(
        tasks_for(&farm, || (0..500_u64).collect()),
        |x: u64| 3 * x,
        |index, result| {
            assert!(seen.insert(index), "task {index} delivered twice");
            assert_eq!(result, 3 * index as u64);
            total += result;
        },
    )
    .unwrap();
    if rank == 0 {
        assert_eq!(seen.len(), 500);
        assert_eq!(total, 3 * 499 * 500 / 2);
    } else {
        assert!(seen.is_empty());
    }

    // Empty input, and more ranks than tasks.
    let empty = farm.map(Vec::<u64>::new(), |x| x).unwrap();
    assert_eq!(empty.is_some(), rank == 0);
    assert!(empty.unwrap_or_default().is_empty());
    let two = farm
        .map(tasks_for(&farm, || vec![5_u64, 6]), |x| x * 10)
        .unwrap();
    if rank == 0 {
        assert_eq!(two.unwrap(), vec![50, 60]);
    }
    assert_eq!(farm.stats().unwrap().tasks(), 2);

    // Collected failures: errors and panics, each with its index, the rest computed.
    let outcomes = farm
        .try_map(tasks_for(&farm, || (0..100_u64).collect()), |x| {
            if x == 17 {
                panic!("task seventeen panics");
            }
            if x % 10 == 3 {
                return Err(format!("{x} ends in 3"));
            }
            Ok(x + 1)
        })
        .unwrap();
    if let Some(outcomes) = outcomes {
        assert_eq!(outcomes.len(), 100);
        for (x, outcome) in outcomes.iter().enumerate() {
            match outcome {
                Ok(v) => assert_eq!(*v, x as u64 + 1),
                Err(e) => {
                    assert_eq!(e.index, x);
                    assert!(e.rank < size);
                    if x == 17 {
                        assert!(e.message.contains("task seventeen panics"), "{e}");
                    } else {
                        assert_eq!(x % 10, 3, "task {x} failed: {e}");
                        assert_eq!(e.message, format!("{x} ends in 3"));
                    }
                }
            }
        }
        let failed = outcomes.iter().filter(|o| o.is_err()).count();
        assert_eq!(failed, 11, "tasks 3, 13, ..., 93 and 17");
    }

    // Abort: a panicking task is the same error on every rank, and the farm still works.
    let result = farm.map(tasks_for(&farm, || (0..200_u64).collect()), |x| {
        if x == 42 {
            panic!("no answer here");
        }
        x
    });
    let error = expect_same_error(world, "farm task panic", result, ErrorKind::TaskFailed);
    assert!(
        error
            .to_string()
            .contains("task 42 failed: panicked: no answer here"),
        "{error}"
    );
    let again = farm
        .map(tasks_for(&farm, || (0..10_u64).collect()), |x| x + 1)
        .unwrap();
    if rank == 0 {
        assert_eq!(again.unwrap(), (1..=10).collect::<Vec<u64>>());
    }

    bad_setups(world);
    report_ok("farm", &spmd);
}

/// A manager outside the communicator, and ranks naming different managers: errors on
/// every rank, not a hang.
fn bad_setups(world: &Comm) {
    let size = world.size();
    let outside = Farm::new(world).unwrap().manager(size);
    expect_same_error(
        world,
        "manager outside",
        outside.map(Vec::<u64>::new(), |x| x),
        ErrorKind::InvalidRoot,
    );
    if size > 1 {
        let mixed = Farm::new(world)
            .unwrap()
            .manager(usize::from(world.rank() > 0));
        expect_same_error(
            world,
            "different managers",
            mixed.map(Vec::<u64>::new(), |x| x),
            ErrorKind::Disagreement,
        );
    }
}

/// Rank 1 takes five times as long per task: it must get far fewer tasks than the others.
fn farm_slow_worker() {
    let spmd = init();
    let world = spmd.world();
    let farm = Farm::new(world).unwrap();
    let pause = if world.rank() == 1 { 10 } else { 2 };
    let results = farm
        .map(tasks_for(&farm, || (0..240_u64).collect()), |x| {
            std::thread::sleep(Duration::from_millis(pause));
            x
        })
        .unwrap();
    if let Some(results) = results {
        assert_eq!(results, (0..240).collect::<Vec<u64>>());
    }
    let stats = farm.stats().unwrap();
    let tasks: Vec<u64> = stats.ranks.iter().map(|r| r.tasks).collect();
    assert_eq!(tasks.iter().sum::<u64>(), 240);
    for fast in [0, 2] {
        assert!(
            2 * tasks[1] < tasks[fast],
            "the slow rank 1 ran {} tasks, rank {fast} {}: {tasks:?}",
            tasks[1],
            tasks[fast]
        );
    }
    // The timing report carries the farm's figures, per rank.
    if let Some(report) = spmd.report("farm_slow_worker").unwrap() {
        let farm = report
            .result("farm")
            .expect("the report has the farm's figures");
        let reported: Vec<u64> = farm["ranks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["tasks"].as_u64().unwrap())
            .collect();
        assert_eq!(reported, tasks);
        assert!(
            report.to_string().contains("farm: 240 tasks on 3 ranks"),
            "{report}"
        );
    }
    report_ok("farm_slow_worker", &spmd);
}
