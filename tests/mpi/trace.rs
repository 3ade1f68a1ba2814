//! Timeline traces and the communication matrix: every rank's events in one file, nested,
//! messages paired sender to receiver, clocks aligned, overflow reported, bad settings refused.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;
use spmd::array::{Boundary, DistArray, Split};
use spmd::timing::TraceSummary;
use spmd::{Op, Spmd};

use crate::harness::{at_ranks, launch, trial, Module, Scenario, LAUNCH_TIMEOUT};
use crate::launcher::{self, mpirun, run};
use crate::support::{expect_same_error, init, report_ok};

static TRACED: Scenario = Scenario {
    name: "trace_everything",
    run: traced,
};
static OVERFLOW: Scenario = Scenario {
    name: "trace_overflow",
    run: overflow,
};
static BAD_SETTINGS: Scenario = Scenario {
    name: "trace_bad_settings",
    run: bad_settings,
};
static OFF: Scenario = Scenario {
    name: "trace_write_when_off",
    run: write_when_off,
};

pub const MODULE: Module = Module {
    scenarios: &[&TRACED, &OVERFLOW, &BAD_SETTINGS, &OFF],
    trials: || {
        let mut trials = at_ranks(&OFF, [2]);
        for ranks in 1..=4 {
            trials.push(trial(format!("trace_everything_np{ranks}"), move || {
                let path = scratch(&format!("everything-np{ranks}.json"));
                let env = [("SPMD_TRACE", path.to_str().expect("UTF-8 path"))];
                crate::harness::succeeds(&TRACED, ranks, &[], &env)
            }));
        }
        trials.push(trial("trace_overflow_is_reported_np2", || {
            check_overflow(2)
        }));
        for (name, value, events, expected) in [
            ("empty", "", None, "is empty"),
            ("directory", "/tmp", None, "is a directory"),
            (
                "missing_dir",
                "/no-such-spmd-dir/t.json",
                None,
                "does not exist",
            ),
            (
                "uncreatable",
                "/proc/spmd-trace.json",
                None,
                "cannot create",
            ),
            ("events_word", "", Some("lots"), "SPMD_TRACE_EVENTS"),
            ("events_zero", "", Some("0"), "found 0"),
        ] {
            trials.push(trial(format!("trace_bad_setting_{name}_np2"), move || {
                check_bad_setting(value, events, expected)
            }));
        }
        trials.push(trial("trace_heat2d_example_np2", heat2d_trace));
        trials.push(trial("trace_farm_threads_np3", farm_trace));
        trials.push(trial(
            "trace_opens_in_perfetto_trace_processor",
            perfetto_reads,
        ));
        trials
    },
};

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("trace");
    std::fs::create_dir_all(&dir).expect("scratch directory");
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    path
}

/// Ring messages per rank, on the world and on a duplicate (same tag: they must not pair
/// across communicators).
const RING: usize = 3;
/// Elements per ring message on the world; the duplicate's are one longer.
const RING_LEN: usize = 4;
const RING_TAG: u32 = 5;
/// Rows and columns of the haloed array (one ghost row: 5 f64 = 40 bytes a message).
const ROWS: usize = 12;
const COLS: usize = 5;

/// Nested regions, a ring of messages on two communicators, a collective and halo exchanges
/// (blocking and planned), then the report's matrix and the trace file are checked on rank 0
/// against what the program did.
fn traced() {
    let spmd = Spmd::init().expect("init");
    assert!(spmd.tracing());
    let world = spmd.world();
    let (rank, p) = (world.rank(), world.size());
    let (right, left) = ((rank + 1) % p, (rank + p - 1) % p);
    {
        let _outer = spmd.region("outer");
        let _inner = spmd.region("inner");
        std::hint::black_box((0..10_000).map(|i| i as f64).sum::<f64>());
    }
    let dup = world.duplicate();
    for _ in 0..RING {
        for (comm, len) in [(world, RING_LEN), (&dup, RING_LEN + 1)] {
            let out = comm
                .send_immediate(right, RING_TAG, vec![rank as f64; len])
                .unwrap();
            let (got, status) = comm.receive::<f64>(left, RING_TAG).unwrap();
            assert_eq!((got.len(), status.source), (len, left));
            out.wait().unwrap();
        }
    }
    assert_eq!(world.all_reduce(1_u64, Op::Sum), p as u64);
    let mut u = DistArray::from_fn(world, (ROWS, COLS), Split::block(0), |(i, j)| {
        (i * COLS + j) as f64
    })
    .unwrap()
    .with_ghosts(1, Boundary::Fixed)
    .unwrap();
    u.exchange_halos().unwrap();
    let mut plan = u.halo_plan().unwrap();
    plan.begin(&mut u).unwrap().finish().unwrap();

    let report = spmd.report("trace").unwrap();
    let summary = spmd.write_trace().unwrap();
    assert_eq!(summary.is_some(), spmd.is_root());
    if let (Some(report), Some(summary)) = (report, summary) {
        // The report wrote the trace too, and names it.
        assert_eq!(report.trace.as_ref().map(|t| &t.path), Some(&summary.path));
        check_matrix(&report.comm_matrix, p);
        check_file(&summary, p);
    }
    report_ok("trace_everything", &spmd);
}

/// The neighbours of `rank` along a fixed (non-periodic) split of `p` ranks.
fn fixed_neighbours(rank: usize, p: usize) -> Vec<usize> {
    let mut n = Vec::new();
    if rank > 0 {
        n.push(rank - 1);
    }
    if rank + 1 < p {
        n.push(rank + 1);
    }
    n
}

/// The matrix holds exactly the traffic the program sent.
fn check_matrix(m: &spmd::timing::CommMatrix, p: usize) {
    let mut expected: BTreeMap<(usize, usize, String), (u64, u64)> = BTreeMap::new();
    let ring_bytes = (RING * (RING_LEN + RING_LEN + 1) * 8) as u64;
    for rank in 0..p {
        let key = (rank, (rank + 1) % p, "send_immediate".to_string());
        expected.insert(key, (ring_bytes, 2 * RING as u64));
        for n in fixed_neighbours(rank, p) {
            for op in ["DistArray::exchange_halos", "DistArray::halo_exchange"] {
                expected.insert((rank, n, op.to_string()), ((COLS * 8) as u64, 1));
            }
        }
    }
    let found: BTreeMap<(usize, usize, String), (u64, u64)> = m
        .entries
        .iter()
        .map(|e| ((e.from, e.to, e.operation.clone()), (e.bytes, e.messages)))
        .collect();
    assert_eq!(found, expected);
    assert_eq!(m.ranks, p);
}

fn number(v: &Value, what: &str) -> f64 {
    v[what]
        .as_f64()
        .unwrap_or_else(|| panic!("no number {what} in {v}"))
}

/// The file: a process per rank, every rank's nested regions, messages paired with the
/// receives that took them and no earlier than their sends (within the clock error).
fn check_file(summary: &TraceSummary, p: usize) {
    let text = std::fs::read_to_string(&summary.path).expect("the trace file");
    let json: Value = serde_json::from_str(&text).expect("the trace is JSON");
    let events = json["traceEvents"].as_array().expect("traceEvents");
    assert_eq!(json["displayTimeUnit"], "ns");
    let other = &json["otherData"];
    assert_eq!(other["spmd_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(other["ranks"], p);
    assert_eq!(summary.events.len(), p);
    let clocks = other["clocks"].as_array().expect("otherData.clocks");
    assert_eq!(clocks.len(), p);
    assert_eq!(
        clocks[0]["offset_at_start_us"], 0.0,
        "rank 0 is the reference"
    );
    let worst_error = clocks
        .iter()
        .map(|c| number(c, "error_us"))
        .fold(0.0, f64::max);
    assert!(
        (worst_error - summary.clock_error_s * 1e6).abs() < 1e-9,
        "{worst_error} us against {} s",
        summary.clock_error_s
    );
    assert!(summary.events.iter().all(|&n| n > 0), "{summary:?}");
    assert!(!summary.overflowed(), "{summary:?}");
    // Every event has the fields the viewers need.
    for e in events {
        let ph = e["ph"].as_str().expect("ph");
        assert!(["M", "X", "s", "f"].contains(&ph), "{e}");
        assert!(
            e["pid"].as_u64().is_some_and(|pid| (pid as usize) < p),
            "{e}"
        );
        assert!(e["name"].is_string() && e["tid"].is_u64(), "{e}");
        if ph != "M" {
            assert!(number(e, "ts") >= 0.0, "{e}");
        }
        if ph == "X" {
            assert!(number(e, "dur") >= 0.0, "{e}");
            assert!(
                ["compute", "comm", "wait"].contains(&e["cat"].as_str().unwrap()),
                "{e}"
            );
        }
    }
    for rank in 0..p {
        let named = events.iter().any(|e| {
            e["ph"] == "M"
                && e["name"] == "process_name"
                && e["pid"] == rank
                && e["args"]["name"] == format!("rank {rank}")
        });
        assert!(named, "no process for rank {rank}");
        let spans: Vec<(f64, f64, &str)> = events
            .iter()
            .filter(|e| e["ph"] == "X" && e["pid"] == rank)
            .map(|e| {
                let ts = number(e, "ts");
                (ts, ts + number(e, "dur"), e["name"].as_str().unwrap())
            })
            .collect();
        let find = |name: &str| {
            spans
                .iter()
                .find(|s| s.2 == name)
                .unwrap_or_else(|| panic!("rank {rank} has no {name:?} region"))
        };
        let (outer, inner) = (find("outer"), find("inner"));
        assert!(
            outer.0 <= inner.0 && inner.1 <= outer.1,
            "{outer:?} {inner:?}"
        );
        for name in [
            "all_reduce",
            "send_immediate",
            "receive",
            "DistArray::exchange_halos",
        ] {
            find(name);
        }
        // Spans nest or follow each other on a track: never half-overlap.
        let mut sorted = spans.clone();
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
        let mut open: Vec<(f64, f64, &str)> = Vec::new();
        const NS: f64 = 1e-3;
        for s in sorted {
            while open.last().is_some_and(|top| top.1 <= s.0 + NS) {
                open.pop();
            }
            if let Some(top) = open.last() {
                assert!(
                    s.1 <= top.1 + NS,
                    "rank {rank}: {s:?} half-overlaps {top:?}"
                );
            }
            open.push(s);
        }
    }
    // Messages: every send paired, sender to receiver, no receive before its send.
    let starts: Vec<&Value> = events.iter().filter(|e| e["ph"] == "s").collect();
    let finishes: BTreeMap<u64, &Value> = events
        .iter()
        .filter(|e| e["ph"] == "f")
        .map(|e| (e["id"].as_u64().expect("flow id"), e))
        .collect();
    let halo_links = 2 * p.saturating_sub(1);
    let expected = 2 * RING * p + 2 * halo_links;
    assert_eq!(
        (
            starts.len(),
            finishes.len(),
            summary.messages,
            summary.unmatched
        ),
        (expected, expected, expected as u64, 0)
    );
    let slack_us = 2.0 * summary.clock_error_s * 1e6 + 1.0;
    let mut ring = BTreeMap::new();
    for s in starts {
        let f = finishes[&s["id"].as_u64().unwrap()];
        let (from, to) = (s["pid"].as_u64().unwrap(), f["pid"].as_u64().unwrap());
        assert_eq!(s["args"]["to"].as_u64(), Some(to), "{s}");
        assert_eq!(f["bp"], "e");
        assert!(
            number(f, "ts") + slack_us >= number(s, "ts"),
            "a receive before its send: {s} {f} (clock error {} s; clocks {})",
            summary.clock_error_s,
            other["clocks"]
        );
        if s["args"]["tag"] == RING_TAG {
            assert_eq!(to, (from + 1) % p as u64, "{s}");
            *ring
                .entry(s["args"]["bytes"].as_u64().unwrap())
                .or_insert(0) += 1;
        }
    }
    let per_comm = (RING * p) as u64;
    let ring_expected = BTreeMap::from([
        ((RING_LEN * 8) as u64, per_comm),
        (((RING_LEN + 1) * 8) as u64, per_comm),
    ]);
    assert_eq!(ring, ring_expected);
    assert!(
        summary.clock_error_s < 0.05,
        "clock alignment uncertain by {} s",
        summary.clock_error_s
    );
    println!(
        "trace: {} events, clock error {:.2} us, clocks {}",
        summary.events.iter().sum::<usize>(),
        summary.clock_error_s * 1e6,
        other["clocks"]
    );
}

/// A buffer of 10 events and 50 regions: the file is written at the end anyway, with the
/// first events, and says what was dropped.
fn overflow() {
    let spmd = Spmd::init().expect("init");
    for _ in 0..50 {
        drop(spmd.region("tiny"));
    }
    report_ok("trace_overflow", &spmd);
    // The trace is written as the context drops, with rank 0's summary on stderr.
}

fn check_overflow(ranks: usize) -> Result<(), String> {
    let path = scratch("overflow.json");
    let env = [
        ("SPMD_TRACE", path.to_str().expect("UTF-8 path")),
        ("SPMD_TRACE_EVENTS", "10"),
    ];
    let out = launch(&OVERFLOW, ranks, &[], &env);
    crate::harness::expect_success(&OVERFLOW, ranks, &out)?;
    if !out.stderr.contains("DROPPED") || !out.stderr.contains("SPMD_TRACE_EVENTS") {
        return Err(format!("no overflow warning: {}", out.describe()));
    }
    let text = std::fs::read_to_string(&path).map_err(|e| format!("no trace file: {e}"))?;
    let json: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let other = &json["otherData"];
    let per_rank = |key: &str| -> Vec<u64> {
        other[key]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default()
    };
    let (kept, dropped) = (per_rank("events"), per_rank("dropped_events"));
    // Each rank kept its first 10 and dropped the other 40 regions.
    if kept != vec![10; ranks] || dropped != vec![40; ranks] || other["buffer_events"] != 10 {
        return Err(format!("kept {kept:?}, dropped {dropped:?}: {other}"));
    }
    Ok(())
}

/// Without tracing, `write_trace` is the same `Config` error on every rank, and the report
/// names no trace.
fn write_when_off() {
    let spmd = init();
    assert!(!spmd.tracing());
    let result = spmd.write_trace();
    let e = expect_same_error(spmd.world(), "write_trace", result, spmd::ErrorKind::Config);
    assert!(e.message().contains("SPMD_TRACE"), "{e}");
    if let Some(report) = spmd.report("off").unwrap() {
        assert!(report.trace.is_none());
    }
    report_ok("trace_write_when_off", &spmd);
}

/// Init must refuse the settings with a `Config` error whose message is the same on every
/// rank (printed for the harness to compare).
fn bad_settings() {
    let e = Spmd::init().expect_err("bad trace settings must be refused");
    assert_eq!(e.kind(), spmd::ErrorKind::Config, "{e}");
    println!("trace-error: {}", e.message());
    println!("spmd-test ok: trace_bad_settings rank ?");
}

fn check_bad_setting(path: &str, events: Option<&str>, expected: &str) -> Result<(), String> {
    let valid = scratch("bad-settings.json");
    let path = if path.is_empty() && events.is_some() {
        valid.to_str().expect("UTF-8 path")
    } else {
        path
    };
    let mut env = vec![("SPMD_TRACE", path)];
    if let Some(events) = events {
        env.push(("SPMD_TRACE_EVENTS", events));
    }
    let out = launch(&BAD_SETTINGS, 2, &[], &env);
    let errors: Vec<&str> = out
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("trace-error: "))
        .collect();
    let same = errors.len() == 2 && errors[0] == errors[1];
    if out.code != Some(0) || !same || !errors[0].contains(expected) {
        return Err(format!(
            "expected the same error naming {expected:?} on both ranks: {}",
            out.describe()
        ));
    }
    Ok(())
}

/// Runs example `name` on `ranks` ranks with `args` and `--trace` to a scratch file; once it
/// exited 0 with `expect` in its output, its output and the trace's events.
fn traced_example(
    name: &str,
    ranks: usize,
    args: &[&str],
    expect: &str,
) -> Result<(String, Vec<Value>), String> {
    let path = scratch(&format!("{name}.json"));
    let mut args = args.to_vec();
    args.extend(["--trace", path.to_str().expect("UTF-8 path")]);
    let out = run(
        mpirun(ranks, &[], &launcher::example(name), &args, &[]),
        LAUNCH_TIMEOUT,
    );
    if out.code != Some(0) || !out.stdout.contains(expect) {
        return Err(format!("{name} --trace failed: {}", out.describe()));
    }
    let text = std::fs::read_to_string(&path).map_err(|e| format!("no trace file: {e}"))?;
    let mut json: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    match json["traceEvents"].take() {
        Value::Array(events) => Ok((out.stdout, events)),
        _ => Err("no traceEvents array".into()),
    }
}

/// `heat2d --trace`: both ranks' interior sweeps, the split-phase halo posts and waits, and
/// the ghost rows as arrows between the ranks.
fn heat2d_trace() -> Result<(), String> {
    let args = [
        "--n",
        "64",
        "--m",
        "64",
        "--max-iters",
        "20",
        "--halos",
        "split",
    ];
    // The report printed by rank 0 names the trace file.
    let (_, events) = traced_example("heat2d", 2, &args, "events over 2 ranks")?;
    for rank in 0..2 {
        let count = |name: &str, cat: &str| {
            events
                .iter()
                .filter(|e| e["pid"] == rank && e["name"] == name && e["cat"] == cat)
                .count()
        };
        let (interior, posts, waits) = (
            count("jacobi interior", "compute"),
            count("DistArray::halo_exchange", "comm"),
            count("DistArray::halo_exchange", "wait"),
        );
        if interior != 20 || posts != 20 || waits != 20 {
            return Err(format!(
                "rank {rank}: {interior} interior sweeps, {posts} halo posts, {waits} waits \
                 (expected 20 each)"
            ));
        }
    }
    let arrows = events.iter().filter(|e| e["ph"] == "s").count();
    // One ghost row each way per sweep.
    if arrows != 40 {
        return Err(format!("{arrows} message arrows, expected 40"));
    }
    Ok(())
}

/// `cat_farm --trace` at 3 ranks: the manager's own tasks run on a second thread of rank 0,
/// which gets a track of its own with one span per task it ran (as many as the example
/// says rank 0 did), one after the other; no other rank has a second track.
fn farm_trace() -> Result<(), String> {
    let (stdout, events) = traced_example("cat_farm", 3, &["--images", "4"], "verified: all")?;
    let per_rank: Vec<u64> = stdout
        .split("(rank 0 = manager): [")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .map(|list| list.split(", ").filter_map(|n| n.parse().ok()).collect())
        .ok_or_else(|| format!("no tiles per rank in: {stdout}"))?;
    let mut manager_tasks: Vec<(f64, f64)> = events
        .iter()
        .filter(|e| e["ph"] == "X" && e["tid"] != 0)
        .map(|e| {
            let on_manager = e["pid"] == 0 && e["tid"] == 1 && e["name"] == "farm task";
            let (ts, dur) = (number(e, "ts"), number(e, "dur"));
            on_manager
                .then_some((ts, ts + dur))
                .ok_or_else(|| format!("a span on another thread than rank 0's second: {e}"))
        })
        .collect::<Result<_, String>>()?;
    if manager_tasks.len() as u64 != per_rank[0] {
        return Err(format!(
            "{} task spans on rank 0's task thread, but it ran {} tiles",
            manager_tasks.len(),
            per_rank[0]
        ));
    }
    manager_tasks.sort_by(|a, b| a.0.total_cmp(&b.0));
    if let Some(w) = manager_tasks.windows(2).find(|w| w[1].0 < w[0].1) {
        return Err(format!("the task thread's spans overlap: {w:?}"));
    }
    let thread_names: Vec<(u64, u64, &str)> = events
        .iter()
        .filter(|e| e["ph"] == "M" && e["name"] == "thread_name")
        .filter_map(|e| {
            Some((
                e["pid"].as_u64()?,
                e["tid"].as_u64()?,
                e["args"]["name"].as_str()?,
            ))
        })
        .collect();
    let mut expected = vec![(0, 0, "main")];
    if per_rank[0] > 0 {
        expected.push((0, 1, "farm: manager's tasks"));
    }
    expected.extend([(1, 0, "main"), (2, 0, "main")]);
    if thread_names != expected {
        return Err(format!(
            "thread names {thread_names:?}, expected {expected:?}"
        ));
    }
    Ok(())
}

/// Loads a trace into Perfetto's trace processor (PyPI `perfetto`) and prints `OK slices=N
/// flows=M processes=[...]`, or `SKIP: why` when the package or the trace processor binary it
/// downloads cannot be had.
const PERFETTO_CHECK: &str = r#"
import importlib, subprocess, sys
path, target = sys.argv[1], sys.argv[2]
try:
    from perfetto.trace_processor import TraceProcessor
except ImportError:
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--target", target,
                        "perfetto"], capture_output=True, text=True)
    if r.returncode != 0:
        print("SKIP: cannot install perfetto from PyPI:", r.stderr.strip()[-300:])
        sys.exit(0)
    # The directory did not exist when Python started: look again.
    sys.path.insert(0, target)
    importlib.invalidate_caches()
    from perfetto.trace_processor import TraceProcessor
try:
    tp = TraceProcessor(trace=path)
except Exception as e:
    print("SKIP: perfetto is installed, but its trace processor cannot start:", repr(e)[:400])
    sys.exit(0)
one = lambda q: next(iter(tp.query(q))).n
slices = one("select count(*) as n from slice")
flows = one("select count(*) as n from flow")
names = sorted(r.name for r in tp.query("select name from process where name like 'rank %'"))
print(f"OK slices={slices} flows={flows} processes={names}")
"#;

/// The trace of a 2-rank run opens in a real trace reader, which finds every span, every
/// message arrow and both ranks.
fn perfetto_reads() -> Result<(), String> {
    let path = scratch("perfetto.json");
    let env = [("SPMD_TRACE", path.to_str().expect("UTF-8 path"))];
    crate::harness::succeeds(&TRACED, 2, &[], &env)?;
    let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
    let json: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let events = json["traceEvents"].as_array().ok_or("no traceEvents")?;
    let count = |ph: &str| events.iter().filter(|e| e["ph"] == ph).count();
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pyperfetto");
    let mut python = std::process::Command::new("python3");
    python.args(["-c", PERFETTO_CHECK]).arg(&path).arg(&target);
    // Installing the package and starting the trace processor may reach for the network.
    let out = run(python, std::time::Duration::from_secs(240));
    if out.timed_out {
        eprintln!("trace_opens_in_perfetto_trace_processor: skipped: no answer in 240 s");
        return Ok(());
    }
    // The package may print progress first; its verdict is the last line.
    let said = out.stdout.lines().last().unwrap_or("").trim().to_owned();
    if let Some(why) = said.strip_prefix("SKIP: ") {
        eprintln!("trace_opens_in_perfetto_trace_processor: skipped: {why}");
        return Ok(());
    }
    let expected = format!(
        "OK slices={} flows={} processes=['rank 0', 'rank 1']",
        count("X"),
        count("s")
    );
    if said != expected {
        return Err(format!(
            "Perfetto read {said:?}, expected {expected:?}\n{}",
            out.stderr
        ));
    }
    Ok(())
}
