//! The profiler's bookkeeping on a mock clock: exact tick counts, not tolerances.

use super::*;
use crate::timing::trace::{Traffic, NO_PEER};
use std::sync::Arc;

/// A profiler on a mock clock that only moves when the test says so.
fn mocked() -> (Profiler, Arc<quanta::Mock>) {
    let (clock, mock) = quanta::Clock::mock();
    (Profiler::with_clock(clock), mock)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn nested_comm_regions_count_once_and_compute_is_the_rest() {
    let (p, clock) = mocked();
    {
        let _outer = p.comm("exchange", 100);
        clock.increment(ms(5));
        let _inner = p.comm("send", 50);
        clock.increment(ms(20));
    }
    clock.increment(ms(10));
    let t = p.rank_times();
    let exchange = &t.regions[0];
    let send = &t.regions[1];
    assert_eq!(
        (exchange.name.as_str(), exchange.calls, exchange.bytes),
        ("exchange", 1, 100)
    );
    assert_eq!(
        (send.name.as_str(), send.calls, send.bytes),
        ("send", 1, 50)
    );
    assert_eq!((exchange.time_s, send.time_s), (0.025, 0.020));
    // Comm counted once, not twice; the rest of the wall time is compute.
    assert_eq!(t.comm_s, 0.025);
    assert_eq!(t.wall_s, 0.035);
    assert_eq!(t.compute_s(), 0.035 - 0.025);
}

#[test]
fn non_blocking_posts_and_waits_are_one_call_with_the_time_in_flight() {
    let (p, clock) = mocked();
    for _ in 0..2 {
        let posted_at = {
            let _post = p.library_comm("immediate_all_reduce", 16, || {});
            clock.increment(ms(2));
            drop(_post);
            p.now()
        };
        {
            let _work = p.compute("interior");
            clock.increment(ms(5));
        }
        let _wait = p.library_wait("immediate_all_reduce", posted_at);
        clock.increment(ms(1));
    }
    let t = p.rank_times();
    let r = t
        .regions
        .iter()
        .find(|r| r.name == "immediate_all_reduce")
        .unwrap();
    // Two requests: two calls, post + wait as comm, the compute between as in flight.
    assert_eq!((r.calls, r.bytes), (2, 32));
    assert_eq!(
        (r.time_s, r.request_wait_s, r.in_flight_s),
        (0.006, 0.002, 0.010)
    );
    assert_eq!((t.comm_s, t.wall_s), (0.006, 0.016));
}

#[test]
fn library_helpers_inside_helpers_are_recorded_once() {
    let (p, _clock) = mocked();
    {
        let _outer = p.library_comm("all_reduce_slice", 8, || {});
        let _inner = p.library_comm("all_reduce_into", 8, || {});
    }
    let t = p.rank_times();
    assert_eq!(t.regions.len(), 1);
    assert_eq!(t.regions[0].name, "all_reduce_slice");
    // A user region around a helper is kept alongside it.
    {
        let _user = p.comm("my_exchange", 0);
        let _helper = p.library_comm("broadcast", 4, || {});
    }
    let names: Vec<_> = p.rank_times().regions.into_iter().map(|r| r.name).collect();
    assert_eq!(names, ["all_reduce_slice", "my_exchange", "broadcast"]);
}

#[test]
fn wait_separation_times_the_barrier_as_wait() {
    let (p, clock) = mocked();
    p.set_wait_separation(true);
    {
        let _c = p.library_comm("gather", 0, || clock.increment(ms(15)));
        clock.increment(ms(5));
    }
    let t = p.rank_times();
    assert_eq!(t.wait_s, 0.015);
    assert_eq!(t.comm_s, 0.020);
    assert_eq!(t.regions[0].wait_s, t.wait_s);
}

#[test]
fn baselines_are_taken_off_the_wall_time() {
    let (p, clock) = mocked();
    clock.increment(ms(10));
    let before = p.now();
    clock.increment(ms(30));
    p.exclude(p.now() - before);
    p.add_baseline(ms(25));
    clock.increment(ms(5));
    assert_eq!(p.elapsed(), ms(15));
    assert_eq!(p.baseline(), Some(ms(25)));
    assert_eq!(p.seconds_between(before, p.now()), 0.035);
}

#[test]
fn disabled_profiler_records_nothing_and_reset_forgets() {
    let (p, clock) = mocked();
    p.set_enabled(false);
    drop(p.comm("x", 1));
    assert!(p.rank_times().regions.is_empty());
    p.set_enabled(true);
    p.set_wait_separation(true);
    {
        let _c = p.comm("y", 1);
        clock.increment(ms(7));
    }
    assert_eq!(p.rank_times().regions.len(), 1);
    p.reset();
    clock.increment(ms(3));
    let t = p.rank_times();
    assert!(t.regions.is_empty() && t.comm_s == 0.0, "{t:?}");
    assert_eq!(t.wall_s, 0.003);
    assert!(p.enabled() && p.wait_separation());
}

#[test]
fn same_name_different_kind_are_two_regions() {
    let (p, _clock) = mocked();
    drop(p.compute("step"));
    drop(p.comm("step", 0));
    drop(p.compute(String::from("step").leak()));
    let t = p.rank_times();
    assert_eq!(t.regions.len(), 2);
    assert_eq!(t.regions[0].calls, 2);
}

#[test]
fn repetitions_record_their_own_time_and_regions() {
    let (p, clock) = mocked();
    {
        let _setup = p.compute("setup");
        clock.increment(ms(50));
    }
    for k in 1..=3 {
        p.begin_repetition();
        {
            let _step = p.compute("step");
            clock.increment(ms(10 * k));
        }
        {
            let _c = p.comm("exchange", 8);
            clock.increment(ms(k));
        }
        p.end_repetition();
        clock.increment(ms(100)); // between repetitions: not measured
    }
    p.record_baseline_run(0.5);
    let t = p.rank_times();
    let walls: Vec<f64> = t.repetitions.iter().map(|r| r.wall_s).collect();
    let comms: Vec<f64> = t.repetitions.iter().map(|r| r.comm_s).collect();
    assert_eq!(walls, [0.011, 0.022, 0.033]);
    assert_eq!(comms, [0.001, 0.002, 0.003]);
    assert_eq!(t.baselines_s, [0.5]);
    // Regions: only what happened inside repetitions (setup is gone), with their calls.
    let names: Vec<(&str, u64, u64)> = t
        .regions
        .iter()
        .map(|r| (r.name.as_str(), r.calls, r.bytes))
        .collect();
    assert_eq!(names, [("step", 3, 0), ("exchange", 3, 24)]);
    assert_eq!(t.regions[0].time_s, 0.060);
    // The whole-run wall time still counts everything.
    assert_eq!(t.wall_s, 0.416);
}

#[test]
fn tracing_records_spans_waits_and_messages_as_they_end() {
    let (p, clock) = mocked();
    drop(p.compute("before tracing"));
    p.start_tracing(3);
    {
        let _step = p.compute("step");
        clock.increment(ms(1));
        {
            let _exchange = p.comm("exchange", 8);
            clock.increment(ms(2));
            p.record_message("exchange", EventKind::Send, 1, 7, 42, 8);
        }
        clock.increment(ms(3));
    }
    let posted_at = p.now();
    clock.increment(ms(1));
    drop(p.library_wait("immediate_all_reduce", posted_at));
    let (events, names, origin, dropped) = p
        .with_tracer(|t| {
            (
                t.events().copied().collect::<Vec<_>>(),
                t.names().to_vec(),
                t.origin(),
                t.dropped(),
            )
        })
        .expect("tracing is on");
    let ms_of = |tick: u64| p.nanos_between(origin, tick) / 1_000_000;
    let seen: Vec<(&str, EventKind, i64, i64, u64)> = events
        .iter()
        .map(|e| {
            let name = names[e.name as usize];
            (name, e.kind, ms_of(e.start), ms_of(e.end), e.bytes)
        })
        .collect();
    // Kept in the order they ended; the buffer holds three, the wait is dropped.
    assert_eq!(
        seen,
        [
            ("exchange", EventKind::Send, 3, 3, 8),
            ("exchange", EventKind::Comm, 1, 3, 8),
            ("step", EventKind::Compute, 0, 6, 0),
        ]
    );
    assert_eq!(
        (events[0].peer, events[0].tag, events[0].channel),
        (1, 7, 42)
    );
    assert_eq!(events[1].peer, NO_PEER);
    assert_eq!(dropped, 1);
    // Sends also count in the traffic table, and a reset forgets them.
    let sent = p.rank_times().sent;
    assert_eq!(
        sent,
        [Traffic {
            operation: "exchange".into(),
            to: 1,
            bytes: 8,
            messages: 1
        }]
    );
    p.reset();
    assert!(p.rank_times().sent.is_empty());
    assert!(p.tracing(), "a reset keeps the timeline");
}

#[test]
fn other_threads_spans_land_on_their_own_tracks() {
    let (p, clock) = mocked();
    p.record_thread_span("farm tasks", "farm task", EventKind::Compute, 0, 1);
    p.start_tracing(8);
    let handle = p.clock_handle();
    let start = handle.raw();
    clock.increment(ms(4));
    let end = handle.raw();
    p.record_thread_span("farm tasks", "farm task", EventKind::Compute, start, end);
    drop(p.compute("step"));
    let (seen, tracks) = p
        .with_tracer(|t| {
            let seen: Vec<(&str, u16, i64)> = t
                .events()
                .map(|e| {
                    let ms = p.nanos_between(e.start, e.end) / 1_000_000;
                    (t.names()[e.name as usize], e.track, ms)
                })
                .collect();
            (seen, t.tracks().to_vec())
        })
        .expect("tracing is on");
    assert_eq!(seen, [("farm task", 1, 4), ("step", MAIN_TRACK, 0)]);
    assert_eq!(tracks, ["main", "farm tasks"]);
    // Not a region of this thread.
    assert_eq!(p.rank_times().regions.len(), 1);
}

#[test]
fn peak_rss_is_reported() {
    assert!(peak_rss_bytes() > 1 << 20);
}
