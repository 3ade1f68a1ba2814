//! Report arithmetic on known per-rank figures: exact values, not tolerances.

use super::*;
use crate::timing::{RegionTimes, RepetitionTimes};
use crate::ErrorKind;

fn region(name: &str, kind: RegionKind, calls: u64, time: f64, bytes: u64) -> RegionTimes {
    RegionTimes {
        name: name.into(),
        kind,
        calls,
        time_s: time,
        wait_s: time / 2.0,
        bytes,
        request_wait_s: 0.0,
        in_flight_s: 0.0,
    }
}

/// A whole-run rank (no repetitions).
fn rank(wall: f64, comm: f64, wait: f64, rss: u64, regions: Vec<RegionTimes>) -> RankTimes {
    RankTimes {
        wall_s: wall,
        comm_s: comm,
        wait_s: wait,
        peak_rss_bytes: rss,
        regions,
        repetitions: Vec::new(),
        baselines_s: Vec::new(),
        node: None,
        sent: Vec::new(),
    }
}

fn two_ranks() -> Vec<RankTimes> {
    vec![
        rank(
            10.0,
            4.0,
            3.0,
            100,
            vec![
                region("solve", RegionKind::Compute, 5, 6.0, 0),
                region("all_reduce", RegionKind::Comm, 5, 4.0, 80),
            ],
        ),
        rank(
            10.0,
            2.0,
            1.0,
            300,
            vec![region("all_reduce", RegionKind::Comm, 5, 2.0, 80)],
        ),
    ]
}

/// A rank with repetitions `(wall, comm)` (wait 0).
fn repeated(reps: &[(f64, f64)], baselines: &[f64]) -> RankTimes {
    RankTimes {
        repetitions: reps
            .iter()
            .map(|&(wall_s, comm_s)| RepetitionTimes {
                wall_s,
                comm_s,
                wait_s: 0.0,
            })
            .collect(),
        baselines_s: baselines.to_vec(),
        ..rank(100.0, 9.0, 0.0, 1, Vec::new())
    }
}

#[test]
fn a_whole_run_is_one_sample() {
    let r = Report::from_ranks("t", 2, true, &two_ranks(), Some(32.0));
    assert_eq!((r.ranks, r.repetitions), (2, 1));
    assert_eq!((r.wall_s.median, r.wall_s.samples), (10.0, 1));
    assert_eq!(
        r.compute_s,
        Stat {
            min: 6.0,
            avg: 7.0,
            max: 8.0
        }
    );
    assert_eq!(
        r.comm_s,
        Stat {
            min: 2.0,
            avg: 3.0,
            max: 4.0
        }
    );
    assert_eq!(
        (r.wait_s.unwrap().avg, r.transfer_s.unwrap().avg),
        (2.0, 1.0)
    );
    assert_eq!(r.comm_fraction, 0.3);
    assert_eq!((r.imbalance, r.slowest_rank), (8.0 / 7.0, 1));
    assert_eq!(r.peak_rss_bytes.avg, 200.0);
    assert_eq!(r.speedup.unwrap().median, 3.2);
    assert_eq!(r.efficiency.unwrap().median, 0.8);
    // p = 4: (1/3.2 - 1/4) / (1 - 1/4) = 0.0625 / 0.75
    assert!((r.karp_flatt.unwrap() - 0.0625 / 0.75).abs() < 1e-15);
    // The slowest rank (1) waits 1 of its 2 comm seconds: 1 second of transfer.
    assert_eq!(r.samples[0].transfer_s, 1.0);
    assert!(r.warns(WarningKind::SingleSample));
    assert!(!r.warns(WarningKind::Noisy));
}

#[test]
fn repetitions_give_medians_spreads_and_paired_speedups() {
    // Rank 0 computes 4, 5, 6 and communicates 1; rank 1 computes 2, 3, 4 and waits 3.
    let ranks = vec![
        repeated(&[(5.0, 1.0), (6.0, 1.0), (7.0, 1.0)], &[20.0, 30.0, 21.0]),
        repeated(&[(5.0, 3.0), (6.0, 3.0), (7.0, 3.0)], &[]),
    ];
    let r = Report::from_ranks("t", 1, false, &ranks, None);
    assert_eq!(r.repetitions, 3);
    assert_eq!(
        (r.wall_s.median, r.wall_s.min, r.wall_s.max),
        (6.0, 5.0, 7.0)
    );
    // Per rank medians: compute 5 and 3, comm 1 and 3.
    assert_eq!(
        r.compute_s,
        Stat {
            min: 3.0,
            avg: 4.0,
            max: 5.0
        }
    );
    assert_eq!((r.comm_s.min, r.comm_s.max), (1.0, 3.0));
    // Paired speedups 20/5, 30/6, 21/7 = 4, 5, 3.
    let s = r.speedup.unwrap();
    assert_eq!((s.median, s.min, s.max, s.samples), (4.0, 3.0, 5.0, 3));
    assert_eq!(r.efficiency.unwrap().median, 2.0);
    assert_eq!(r.baseline_s.unwrap().median, 21.0);
    // Imbalance per repetition: 4/3, 5/4, 6/5; median 5/4. Transfer: the slowest rank's
    // comm (rank 0, 1 second).
    assert_eq!((r.imbalance, r.slowest_rank), (1.25, 0));
    assert_eq!(r.samples[1].transfer_s, 1.0);
    assert_eq!(
        (
            r.samples[2].compute_min_s,
            r.samples[2].compute_mean_s,
            r.samples[2].compute_max_s
        ),
        (4.0, 5.0, 6.0)
    );
    // comm fraction: mean comm 2 over walls 5, 6, 7: median 2/6.
    assert_eq!(r.comm_fraction, 2.0 / 6.0);
    // Speedup ranged 3..5 around 4: 50% > 10%, noisy; 200% efficiency: superlinear.
    assert!(r.warns(WarningKind::Noisy));
    assert!(r.warns(WarningKind::Superlinear));
    assert!(!r.warns(WarningKind::SingleSample));
    assert!(r.warns(WarningKind::Imbalance));
    let imbalance = r
        .warnings
        .iter()
        .find(|w| w.kind == WarningKind::Imbalance)
        .unwrap();
    assert!(
        imbalance.message.contains("rank 0 computed longest"),
        "{imbalance:?}"
    );
    let noisy = r
        .warnings
        .iter()
        .find(|w| w.kind == WarningKind::Noisy)
        .unwrap();
    assert!(
        noisy.message.contains(
            "speedup ranged from 3.00 to 5.00 over 3 repetitions (50% of the median 4.00)"
        ),
        "{noisy:?}"
    );
}

#[test]
fn a_quiet_balanced_run_raises_no_warning() {
    let ranks = vec![
        repeated(&[(5.0, 0.1), (5.1, 0.1), (5.0, 0.1)], &[9.9, 10.0, 10.0]),
        repeated(&[(5.0, 0.1), (5.1, 0.1), (5.0, 0.1)], &[]),
    ];
    let r = Report::from_ranks("t", 1, false, &ranks, None);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    // A single baseline (not repeated) serves every repetition.
    let once = Report::from_ranks("t", 1, false, &ranks[1..], Some(10.0));
    assert_eq!(once.speedup.unwrap().median, 2.0);
}

#[test]
fn oversubscribed_nodes_are_named_once() {
    let mut ranks = two_ranks();
    for r in &mut ranks {
        r.node = Some(NodeInfo {
            name: "n1".into(),
            cores: 2,
            ranks: 2,
            threads: 4,
        });
    }
    let r = Report::from_ranks("t", 2, false, &ranks, None);
    let over: Vec<&Warning> = r
        .warnings
        .iter()
        .filter(|w| w.kind == WarningKind::Oversubscribed)
        .collect();
    assert_eq!(over.len(), 1);
    assert!(
        over[0]
            .message
            .contains("2 ranks run 4 threads on the 2 cores of n1"),
        "{over:?}"
    );
}

#[test]
fn regions_merge_over_ranks_slowest_first() {
    let r = Report::from_ranks("t", 1, false, &two_ranks(), None);
    assert_eq!(r.regions.len(), 2);
    let solve = &r.regions[0];
    assert_eq!(
        (solve.name.as_str(), solve.kind),
        ("solve", RegionKind::Compute)
    );
    // Rank 1 never entered `solve`: it counts as 0.
    assert_eq!((solve.min_s, solve.avg_s, solve.max_s), (0.0, 3.0, 6.0));
    let reduce = &r.regions[1];
    assert_eq!((reduce.calls, reduce.bytes), (5, 160));
    assert_eq!((reduce.min_s, reduce.avg_s, reduce.max_s), (2.0, 3.0, 4.0));
    assert_eq!(reduce.wait_avg_s, None);
    assert_eq!(
        (r.wait_s, r.speedup, r.efficiency, r.karp_flatt),
        (None, None, None, None)
    );
}

#[test]
fn karp_flatt_of_known_speedups() {
    assert_eq!(karp_flatt(4.0, 4), Some(0.0)); // perfect scaling: no serial part
    assert_eq!(karp_flatt(1.0, 4), Some(1.0)); // no speedup: all serial
    assert_eq!(karp_flatt(2.0, 1), None);
    // Amdahl with serial fraction 0.1 on 8 cores gives speedup 1/(0.1 + 0.9/8).
    let s = 1.0 / (0.1 + 0.9 / 8.0);
    assert!((karp_flatt(s, 8).unwrap() - 0.1).abs() < 1e-12);
}

#[test]
fn json_has_every_key_and_round_trips() {
    let mut r = Report::from_ranks("pi", 2, false, &two_ranks(), Some(32.0));
    r.record("verified", true);
    let value: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    for key in [
        "program",
        "ranks",
        "threads_per_rank",
        "repetitions",
        "wall_s",
        "compute_s",
        "comm_s",
        "comm_fraction",
        "imbalance",
        "slowest_rank",
        "baseline_s",
        "speedup",
        "efficiency",
        "karp_flatt",
        "samples",
        "warnings",
        "regions",
        "results",
    ] {
        assert!(value.get(key).is_some(), "missing {key}");
    }
    assert_eq!(value["compute_s"]["max"], 8.0);
    assert_eq!(value["speedup"]["median"], 3.2);
    assert_eq!(value["wall_s"]["samples"], 1);
    assert_eq!(value["warnings"][0]["kind"], "single_sample");
    assert_eq!(value["regions"][1]["kind"], "comm");
    assert_eq!(value["results"]["verified"], true);
    for key in ["name", "kind", "calls", "min_s", "avg_s", "max_s", "bytes"] {
        assert!(value["regions"][0].get(key).is_some(), "region lacks {key}");
    }
    assert_eq!(Report::from_json(&r.to_json()).unwrap(), r);
    let none = Report::from_ranks("pi", 2, false, &two_ranks(), None);
    let value: serde_json::Value = serde_json::from_str(&none.to_json()).unwrap();
    assert!(value["speedup"].is_null() && value["baseline_s"].is_null());
    assert_eq!(Report::from_json("{").unwrap_err().kind(), ErrorKind::Io);
}

#[test]
fn csv_has_spreads_then_totals_then_regions() {
    let r = Report::from_ranks("t", 1, true, &two_ranks(), Some(20.0));
    let csv = r.to_csv();
    let lines: Vec<_> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "name,kind,calls,min,median,avg,max,ci_low,ci_high,bytes"
    );
    assert_eq!(lines[1], "wall_s,spread,1,10.0,10.0,,10.0,10.0,10.0,");
    assert_eq!(lines[3], "speedup,spread,1,2.0,2.0,,2.0,2.0,2.0,");
    assert_eq!(lines[5], "compute_s,total,,6.0,,7.0,8.0,,,");
    assert_eq!(lines[6], "comm_s,total,,2.0,,3.0,4.0,,,160");
    assert_eq!(lines[7], "wait_s,total,,1.0,,2.0,3.0,,,");
    assert_eq!(lines[9], "solve,compute,5,0.0,,3.0,6.0,,,0");
    assert_eq!(lines.len(), 11);
}

#[test]
fn table_names_every_figure() {
    let text = Report::from_ranks("pi", 2, true, &two_ranks(), Some(32.0)).to_string();
    for needle in [
        "pi (2 ranks x 2 threads, one measurement)",
        "wall (slowest)",
        "compute",
        "comm",
        "wait",
        "transfer",
        "peak memory",
        "comm fraction 30.0%",
        "imbalance 1.143 (slowest rank 1)",
        "speedup",
        "3.20",
        "80.0%",
        "Karp-Flatt",
        "warning: one measurement",
        "all_reduce",
    ] {
        assert!(text.contains(needle), "table lacks {needle:?}:\n{text}");
    }
}
