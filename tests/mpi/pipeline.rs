//! The pipeline: every item exactly once through every stage layout at 1-4 ranks (fused on
//! one rank, fan-out and fan-in, two sources), order between a pair of ranks and by key,
//! empty input, failures stopping every rank with the same error, backpressure, and
//! pipelines that do not fit as errors.

use std::time::Duration;

use spmd::pipeline::{Pipeline, PipelineStats};
use spmd::{Comm, ErrorKind};

use crate::harness::{at_ranks, Module, Scenario};
use crate::support::{expect_same_error, init, report_ok};

pub static PIPELINE: Scenario = Scenario {
    name: "pipeline",
    run: pipeline,
};

pub const MODULE: Module = Module {
    scenarios: &[&PIPELINE],
    trials,
};

fn trials() -> Vec<libtest_mimic::Trial> {
    at_ranks(&PIPELINE, 1..=4)
}

/// Rank counts of (source, middle, sink) for `size` ranks; `None` for the middle: a
/// two-stage pipeline.
fn layouts(size: usize) -> Vec<(usize, Option<usize>, usize)> {
    match size {
        1 => vec![(1, Some(1), 1), (1, None, 1)],
        2 => vec![(1, None, 1)],
        3 => vec![(1, Some(1), 1), (2, None, 1), (1, None, 2)],
        _ => vec![(1, Some(2), 1), (2, Some(1), 1), (1, Some(1), 2)],
    }
}

/// Every rank's sink items, on every rank.
fn all_sunk(world: &Comm, mine: &[u64]) -> Vec<u64> {
    let mut all = world.all_gather_varcount(mine).unwrap().into_vec();
    all.sort_unstable();
    all
}

/// `n` items from every source rank through `layout`: the middle stage (if any) maps
/// `x -> 3x + 1`; the sink keeps what it gets in arrival order.
fn numbers(
    world: &Comm,
    layout: (usize, Option<usize>, usize),
    n: u64,
) -> spmd::Result<(Vec<u64>, PipelineStats)> {
    let (sources, middle, sinks) = layout;
    let mut got = Vec::new();
    let source = Pipeline::source(world, "numbers", sources, move |out| {
        // Source rank k emits k*n .. (k+1)*n.
        let k = out.stage_rank() as u64;
        for x in k * n..(k + 1) * n {
            if !out.emit(x) {
                break;
            }
        }
    });
    let stats = match middle {
        Some(ranks) => source
            .stage("map", ranks, |x: u64| 3 * x + 1)
            .sink("collect", sinks, |x: u64| got.push(x))
            .run()?,
        None => source.sink("collect", sinks, |x: u64| got.push(x)).run()?,
    };
    Ok((got, stats))
}

fn pipeline() {
    let spmd = init();
    let world = spmd.world();
    let size = world.size();
    let n = 500_u64;
    for layout in layouts(size) {
        let (got, stats) = numbers(world, layout, n).unwrap();
        let sources = layout.0 as u64;
        let mut expected: Vec<u64> = (0..sources * n)
            .map(|x| if layout.1.is_some() { 3 * x + 1 } else { x })
            .collect();
        expected.sort_unstable();
        assert_eq!(all_sunk(world, &got), expected, "layout {layout:?}");
        // One source and no fan-out anywhere: the sink sees the source's order.
        let single_path = layout.0 == 1 && layout.1.is_none_or(|m| m == 1) && layout.2 == 1;
        if single_path && !got.is_empty() {
            assert!(
                got.windows(2).all(|w| w[0] < w[1]),
                "out of order: {layout:?}"
            );
        }
        let items: Vec<(u64, u64)> = stats
            .stages
            .iter()
            .map(|s| (s.items_in, s.items_out))
            .collect();
        let total = sources * n;
        match layout.1 {
            Some(_) => assert_eq!(items, vec![(0, total), (total, total), (total, 0)]),
            None => assert_eq!(items, vec![(0, total), (total, 0)]),
        }
        assert!(stats.stages.last().unwrap().latency_mean_s > 0.0);
    }

    let (_, stats) = numbers(world, layouts(size)[0], 40).unwrap();
    reported(&spmd, &stats);

    // Empty input.
    let (got, stats) = numbers(world, layouts(size)[0], 0).unwrap();
    assert!(all_sunk(world, &got).is_empty());
    assert!(stats
        .stages
        .iter()
        .all(|s| s.items_in == 0 && s.items_out == 0));

    keyed_order(world);
    failures(world);
    backpressure(world);
    misfits(world);
    report_ok("pipeline", &spmd);
}

/// Items routed by key keep their order per key even through a fanned-out stage.
fn keyed_order(world: &Comm) {
    let size = world.size();
    let (sources, middle, sinks) = if size >= 4 {
        (1, 2, 1)
    } else {
        (1, 1, size.saturating_sub(2).max(1))
    };
    if size > 1 && sources + middle + sinks != size {
        return;
    }
    let mut seen: Vec<(u64, u64)> = Vec::new();
    Pipeline::source(world, "keyed", sources, |out| {
        for x in 0..300_u64 {
            out.emit_to(x % 5, (x % 5, x));
        }
    })
    .stage_with("pass", middle, |(key, x): (u64, u64), out| {
        out.emit_to(key, (key, x));
    })
    .sink("check", sinks, |item: (u64, u64)| seen.push(item))
    .run()
    .unwrap();
    for key in 0..5 {
        let xs: Vec<u64> = seen.iter().filter(|i| i.0 == key).map(|i| i.1).collect();
        assert!(
            xs.windows(2).all(|w| w[0] < w[1]),
            "key {key} out of order: {xs:?}"
        );
    }
    let mine: Vec<u64> = seen.iter().map(|i| i.1).collect();
    assert_eq!(all_sunk(world, &mine), (0..300).collect::<Vec<u64>>());
}

/// A panicking stage and a failing `try_stage`: the same error on every rank, naming the
/// stage and the item; the source is told to stop; the next pipeline works.
fn failures(world: &Comm) {
    let size = world.size();
    let (sources, middle, sinks) = match size {
        1 => (1, 1, 1),
        2 => (1, 0, 1),
        _ => (1, size - 2, 1),
    };
    let source = || {
        Pipeline::source(world, "numbers", sources, |out| {
            for x in 0..10_000_u64 {
                if !out.emit(x) {
                    return;
                }
            }
        })
    };
    let result = if middle > 0 {
        source()
            .stage("fragile", middle, |x: u64| {
                assert!(x != 57, "fifty-seven");
                x
            })
            .sink("drop", sinks, |_: u64| ())
            .run()
    } else {
        source()
            .sink("fragile", sinks, |x: u64| assert!(x != 57, "fifty-seven"))
            .run()
    };
    let e = expect_same_error(world, "panicking stage", result, ErrorKind::TaskFailed);
    let text = e.to_string();
    assert!(
        text.contains("stage 'fragile' failed on rank") && text.contains("at item 57 of source 0"),
        "{text}"
    );
    assert!(text.contains("panicked: fifty-seven"), "{text}");

    let result = source()
        .try_stage("checked", if middle > 0 { middle } else { 1 }, |x: u64| {
            if x == 9 {
                Err(format!("{x} is not allowed"))
            } else {
                Ok(x)
            }
        })
        .sink("drop", if middle > 0 { sinks } else { 0 }, |_: u64| ())
        .run();
    if middle > 0 || size == 1 {
        let e = expect_same_error(world, "failing try_stage", result, ErrorKind::TaskFailed);
        assert!(
            e.to_string()
                .contains("at item 9 of source 0: 9 is not allowed"),
            "{e}"
        );
    } else {
        // Two ranks cannot hold three stages (the sink has no ranks here).
        expect_same_error(world, "no ranks", result, ErrorKind::Config);
    }
    let (got, _) = numbers(world, layouts(size)[0], 20).unwrap();
    assert_eq!(all_sunk(world, &got).len(), 20 * layouts(size)[0].0);
}

/// A slow sink with a small window: the source spends most of its time blocked.
fn backpressure(world: &Comm) {
    if world.size() != 2 {
        return;
    }
    let stats = Pipeline::source(world, "fast", 1, |out| {
        for x in 0..100_u64 {
            out.emit(x);
        }
    })
    .window(2)
    .sink("slow", 1, |_: u64| {
        std::thread::sleep(Duration::from_millis(2))
    })
    .run()
    .unwrap();
    let source = &stats.stages[0];
    assert!(
        source.blocked_s > 0.5 * stats.wall_s,
        "the source was blocked {:.3} s of {:.3} s",
        source.blocked_s,
        stats.wall_s
    );
    assert_eq!(stats.limiting_stage().name, "slow", "{stats}");
}

/// The timing report carries the last pipeline's figures per stage.
fn reported(spmd: &spmd::Spmd, last: &PipelineStats) {
    if let Some(report) = spmd.report("pipeline").unwrap() {
        let stages = report.result("pipeline").expect("the pipeline's figures")["stages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["items_in"].as_u64().unwrap())
            .collect::<Vec<_>>();
        let expected: Vec<u64> = last.stages.iter().map(|s| s.items_in).collect();
        assert_eq!(stages, expected);
        assert!(report.to_string().contains("limited by"), "{report}");
    }
}

/// Stages that do not add up to the communicator, and ranks that disagree.
fn misfits(world: &Comm) {
    let size = world.size();
    if size == 1 {
        return;
    }
    let result = Pipeline::source(world, "a", size, |out| {
        out.emit(1_u64);
    })
    .sink("b", 1, |_: u64| ())
    .run();
    let e = expect_same_error(world, "too many ranks", result, ErrorKind::RankCount);
    assert!(
        e.to_string()
            .contains(&format!("ask for {} ranks", size + 1)),
        "{e}"
    );
    let name = if world.rank() == 0 { "first" } else { "other" };
    let result = Pipeline::source(world, name, 1, |out| {
        out.emit(1_u64);
    })
    .sink("b", size - 1, |_: u64| ())
    .run();
    expect_same_error(
        world,
        "different pipelines",
        result,
        ErrorKind::Disagreement,
    );
}
