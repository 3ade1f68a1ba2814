//! The trace file: every rank's timeline as one JSON file in the Chrome Trace Event format,
//! which Perfetto UI (<https://ui.perfetto.dev>) and `chrome://tracing` open.
//!
//! One process per rank (`pid` = rank, named `rank N`), one track per thread (`tid` 0,
//! `main`, is the thread that owns the profiler; others, such as the farm manager's task
//! thread, follow, named by `thread_name` metadata), a complete event (`"ph": "X"`) per region with its kind as
//! `cat` (`compute`, `comm`, `wait`) and its payload bytes in `args`, and a flow arrow
//! (`"ph": "s"` on the sender, `"ph": "f"` on the receiver) per point-to-point message.
//! Times are microseconds on rank 0's clock: each rank's clock is mapped onto it with the
//! offsets measured at the start and at the end of the run (see [`ClockModel`]).
//! `otherData` holds the spmd version, the events kept and dropped per rank, the buffer size,
//! the messages paired and unpaired, the alignment's uncertainty, and each rank's clock model
//! (`clocks`: offsets to rank 0 at the start and the end, how far apart they were measured,
//! the drift applied, how far an aligned time can be off).
//!
//! Messages pair up as MPI orders them: on one communicator, the k-th message from rank a to
//! rank b with tag t is the one b's k-th receive from a with tag t takes.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Write};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::trace::{Event, EventKind, Tracer, NO_PEER};

/// The largest clock drift between two ranks the alignment believes (one part in a
/// thousand); a larger one is noise in the offsets and is clamped.
const MAX_DRIFT: f64 = 1e-3;

/// How one rank's clock maps onto rank 0's: offsets measured at two moments, linear between
/// (and beyond) them.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct ClockModel {
    /// At the start: (this rank's time in ns since its trace origin, ns to add to it to get
    /// rank 0's).
    pub start: (i64, i64),
    /// The same at the end.
    pub end: (i64, i64),
    /// The larger of the two measurements' uncertainty, ns (half the best round trip).
    pub error_ns: u64,
}

impl ClockModel {
    /// Rank 0's own clock.
    #[cfg(test)]
    pub(crate) const IDENTITY: ClockModel = ClockModel {
        start: (0, 0),
        end: (0, 0),
        error_ns: 0,
    };

    /// This rank's time `t` (ns since its origin) on rank 0's clock. Never decreasing in
    /// `t`, so nested regions stay nested.
    pub(crate) fn on_root(self, t: i64) -> i64 {
        let (ta, oa) = self.start;
        t.saturating_add(oa)
            .saturating_add(((t - ta) as f64 * self.drift()).round() as i64)
    }

    /// The drift applied between the two measurements: their slope, clamped to
    /// [`MAX_DRIFT`]; none from a single measurement.
    fn drift(self) -> f64 {
        let ((ta, oa), (tb, ob)) = (self.start, self.end);
        if tb <= ta {
            return 0.0;
        }
        ((ob - oa) as f64 / (tb - ta) as f64).clamp(-MAX_DRIFT, MAX_DRIFT)
    }

    /// How far off rank 0's clock [`on_root`](Self::on_root) can be between the two
    /// measurements, ns: their uncertainty, plus what the clamp moved the end point by (the
    /// line then misses the end measurement).
    pub(crate) fn error_bound_ns(self) -> u64 {
        let ((ta, oa), (tb, ob)) = (self.start, self.end);
        let fitted_end = oa as f64 + (tb - ta).max(0) as f64 * self.drift();
        let missed = if tb > ta {
            (ob as f64 - fitted_end).abs().ceil() as u64
        } else {
            0
        };
        self.error_ns + missed
    }

    /// The model as the trace's trailer states it, so a reader can judge the alignment:
    /// the offset to rank 0 measured at the start and at the end (us), the time between
    /// the two measurements (s), the drift used (parts per million, after the clamp) and
    /// how far the aligned times can be off (us: the measurements' uncertainty, widened when
    /// the drift was clamped).
    fn describe(self) -> serde_json::Value {
        let ((ta, oa), (tb, ob)) = (self.start, self.end);
        serde_json::json!({
            "offset_at_start_us": oa as f64 / 1e3,
            "offset_at_end_us": ob as f64 / 1e3,
            "measured_apart_s": (tb - ta).max(0) as f64 / 1e9,
            "drift_ppm": self.drift() * 1e6,
            "error_us": self.error_bound_ns() as f64 / 1e3,
        })
    }
}

/// What a rank sends the writer ahead of its events.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct RankHeader {
    pub rank: usize,
    pub names: Vec<String>,
    /// Thread names, by track.
    pub tracks: Vec<String>,
    pub dropped: u64,
    pub capacity: usize,
    pub clock: ClockModel,
}

impl RankHeader {
    /// The header of `tracer`'s events on rank `rank`.
    pub(crate) fn of(rank: usize, tracer: &Tracer, clock: ClockModel) -> RankHeader {
        RankHeader {
            rank,
            names: tracer.names().iter().map(|n| (*n).to_owned()).collect(),
            tracks: tracer.tracks().iter().map(|t| (*t).to_owned()).collect(),
            dropped: tracer.dropped(),
            capacity: tracer.capacity(),
            clock,
        }
    }
}

/// Words per event on the wire.
const WORDS: usize = 6;

/// An event in nanoseconds since its rank's trace origin.
pub(crate) type TimedEvent = Event<i64>;

/// `tracer`'s events as words for the wire, times converted by `nanos` (ticks to ns since
/// the origin).
pub(crate) fn encode(tracer: &Tracer, nanos: impl Fn(u64) -> i64) -> Vec<u64> {
    let mut words = Vec::with_capacity(tracer.kept() * WORDS);
    for e in tracer.events() {
        words.extend_from_slice(&[
            nanos(e.start) as u64,
            nanos(e.end) as u64,
            e.bytes,
            u64::from(e.name) | e.kind.code() << 32 | u64::from(e.track) << 40,
            u64::from(e.peer) | u64::from(e.tag) << 32,
            e.channel,
        ]);
    }
    words
}

/// The events of [`encode`]'s words; `names` and `tracks` are how many names and thread
/// tracks the header carries.
pub(crate) fn decode(
    words: &[u64],
    names: usize,
    tracks: usize,
) -> Result<Vec<TimedEvent>, String> {
    if words.len() % WORDS != 0 {
        return Err(format!(
            "{} words is not a whole number of {WORDS}-word events",
            words.len()
        ));
    }
    words
        .chunks_exact(WORDS)
        .map(|w| {
            let name = (w[3] & 0xffff_ffff) as u32;
            let code = (w[3] >> 32) & 0xff;
            let kind =
                EventKind::from_code(code).ok_or_else(|| format!("unknown event kind {code}"))?;
            let track = (w[3] >> 40) as u16;
            if name as usize >= names {
                return Err(format!("event name {name} of {names} names"));
            }
            if usize::from(track) >= tracks {
                return Err(format!("event track {track} of {tracks} tracks"));
            }
            Ok(TimedEvent {
                start: w[0] as i64,
                end: w[1] as i64,
                bytes: w[2],
                name,
                kind,
                peer: (w[4] & 0xffff_ffff) as u32,
                tag: (w[4] >> 32) as u32,
                channel: w[5],
                track,
            })
        })
        .collect()
}

/// What writing a trace found; returned on rank 0 by
/// [`Spmd::write_trace`](crate::Spmd::write_trace).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TraceSummary {
    /// The file written.
    pub path: PathBuf,
    /// Events kept, per rank.
    pub events: Vec<usize>,
    /// Events not kept because the rank's buffer was full, per rank (zero unless the run
    /// outgrew `SPMD_TRACE_EVENTS`).
    pub dropped: Vec<u64>,
    /// Messages drawn as arrows: a send paired with its receive.
    pub messages: u64,
    /// Sends and receives without a partner: a message still in flight when the trace was
    /// written, or one whose partner a full buffer dropped.
    pub unmatched: u64,
    /// The largest uncertainty of the clock alignment over the ranks, seconds: times of two
    /// ranks compare to within about this much.
    pub clock_error_s: f64,
}

impl TraceSummary {
    /// Whether some rank's buffer filled up and dropped events.
    pub fn overflowed(&self) -> bool {
        self.dropped.iter().any(|&d| d > 0)
    }
}

impl fmt::Display for TraceSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "trace {}: {} events over {} ranks, {} messages, clocks aligned to {:.1} us",
            self.path.display(),
            self.events.iter().sum::<usize>(),
            self.events.len(),
            self.messages,
            self.clock_error_s * 1e6
        )?;
        if self.overflowed() {
            let dropped: u64 = self.dropped.iter().sum();
            write!(
                f,
                "; {dropped} events DROPPED (buffers full: raise SPMD_TRACE_EVENTS)"
            )?;
        }
        Ok(())
    }
}

/// A message end on rank 0's clock: (time, payload bytes).
type End = (i64, u64);
/// (channel, from, to, tag): the ends that pair up, in order.
type Route = (u64, u32, u32, u32);

/// Writes the trace file: [`add_rank`](Self::add_rank) for every rank in turn, then
/// [`finish`](Self::finish) for the arrows and the trailer. Holds only the message ends
/// between ranks, so the file streams out rank by rank.
pub(crate) struct ChromeTraceWriter<W: Write> {
    out: W,
    first: bool,
    sends: BTreeMap<Route, Vec<End>>,
    receives: BTreeMap<Route, Vec<End>>,
    events: Vec<usize>,
    dropped: Vec<u64>,
    capacity: usize,
    /// Each rank's clock model, by rank: the trailer states them and their largest error.
    clocks: Vec<ClockModel>,
}

/// Nanoseconds as the format's microseconds, exactly (three decimals).
fn micros(ns: i64) -> String {
    let ns = ns.max(0);
    format!("{}.{:03}", ns / 1000, ns % 1000)
}

impl<W: Write> ChromeTraceWriter<W> {
    /// Starts the file.
    pub(crate) fn new(mut out: W) -> io::Result<ChromeTraceWriter<W>> {
        out.write_all(b"{\"traceEvents\":[\n")?;
        Ok(ChromeTraceWriter {
            out,
            first: true,
            sends: BTreeMap::new(),
            receives: BTreeMap::new(),
            events: Vec::new(),
            dropped: Vec::new(),
            capacity: 0,
            clocks: Vec::new(),
        })
    }

    fn line(&mut self, event: &str) -> io::Result<()> {
        if !self.first {
            self.out.write_all(b",\n")?;
        }
        self.first = false;
        self.out.write_all(event.as_bytes())
    }

    /// Writes one rank's events (ranks in order, from 0).
    pub(crate) fn add_rank(
        &mut self,
        header: &RankHeader,
        mut events: Vec<TimedEvent>,
    ) -> io::Result<()> {
        let pid = header.rank;
        self.line(&format!(
            "{{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":{pid},\"tid\":0,\
             \"args\":{{\"name\":\"rank {pid}\"}}}}"
        ))?;
        self.line(&format!(
            "{{\"name\":\"process_sort_index\",\"ph\":\"M\",\"pid\":{pid},\"tid\":0,\
             \"args\":{{\"sort_index\":{pid}}}}}"
        ))?;
        for (tid, thread) in header.tracks.iter().enumerate() {
            let thread = serde_json::to_string(thread).expect("a string serialises");
            self.line(&format!(
                "{{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":{pid},\"tid\":{tid},\
                 \"args\":{{\"name\":{thread}}}}}"
            ))?;
        }
        let names: Vec<String> = header
            .names
            .iter()
            .map(|n| serde_json::to_string(n).expect("a string serialises"))
            .collect();
        // Enclosing spans first: by start, the longer of two with the same start first.
        events.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
        let clock = header.clock;
        for e in &events {
            let (start, end) = (clock.on_root(e.start), clock.on_root(e.end));
            if e.kind.is_message() {
                let (from, to) = match e.kind {
                    EventKind::Send => (pid as u32, e.peer),
                    _ => (e.peer, pid as u32),
                };
                if e.peer == NO_PEER {
                    continue;
                }
                let ends = match e.kind {
                    EventKind::Send => &mut self.sends,
                    _ => &mut self.receives,
                };
                ends.entry((e.channel, from, to, e.tag))
                    .or_default()
                    .push((start.max(0), e.bytes));
                continue;
            }
            let name = &names[e.name as usize];
            self.line(&format!(
                "{{\"name\":{name},\"cat\":\"{}\",\"ph\":\"X\",\"pid\":{pid},\"tid\":{},\
                 \"ts\":{},\"dur\":{},\"args\":{{\"bytes\":{}}}}}",
                e.kind.as_str(),
                e.track,
                micros(start),
                micros(end.max(0) - start.max(0)),
                e.bytes
            ))?;
        }
        self.events.push(events.len());
        self.dropped.push(header.dropped);
        self.capacity = self.capacity.max(header.capacity);
        self.clocks.push(header.clock);
        Ok(())
    }

    /// Writes the message arrows and the trailer, and says what the file holds.
    pub(crate) fn finish(mut self, path: PathBuf) -> io::Result<TraceSummary> {
        let (mut messages, mut unmatched) = (0_u64, 0_u64);
        let sends = std::mem::take(&mut self.sends);
        let mut receives = std::mem::take(&mut self.receives);
        for (route, sent) in sends {
            let taken = receives.remove(&route).unwrap_or_default();
            unmatched += sent.len().abs_diff(taken.len()) as u64;
            let (_, from, to, tag) = route;
            for (&(sent_at, bytes), &(taken_at, _)) in sent.iter().zip(&taken) {
                messages += 1;
                let id = messages;
                self.line(&format!(
                    "{{\"name\":\"message\",\"cat\":\"message\",\"ph\":\"s\",\"id\":{id},\
                     \"pid\":{from},\"tid\":0,\"ts\":{},\"args\":{{\"bytes\":{bytes},\
                     \"tag\":{tag},\"to\":{to}}}}}",
                    micros(sent_at)
                ))?;
                self.line(&format!(
                    "{{\"name\":\"message\",\"cat\":\"message\",\"ph\":\"f\",\"bp\":\"e\",\
                     \"id\":{id},\"pid\":{to},\"tid\":0,\"ts\":{}}}",
                    micros(taken_at)
                ))?;
            }
        }
        unmatched += receives.values().map(|r| r.len() as u64).sum::<u64>();
        let summary = TraceSummary {
            path,
            events: self.events,
            dropped: self.dropped,
            messages,
            unmatched,
            clock_error_s: self
                .clocks
                .iter()
                .map(|c| c.error_bound_ns())
                .max()
                .unwrap_or(0) as f64
                * 1e-9,
        };
        let other = serde_json::json!({
            "spmd_version": env!("CARGO_PKG_VERSION"),
            "ranks": summary.events.len(),
            "events": summary.events,
            "dropped_events": summary.dropped,
            "buffer_events": self.capacity,
            "messages": summary.messages,
            "unmatched_messages": summary.unmatched,
            "clock_error_us": summary.clock_error_s * 1e6,
            "clocks": self.clocks.iter().map(|c| c.describe()).collect::<Vec<_>>(),
        });
        write!(
            self.out,
            "\n],\n\"displayTimeUnit\":\"ns\",\n\"otherData\":{other}\n}}\n"
        )?;
        self.out.flush()?;
        Ok(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn span(name: u32, kind: EventKind, start: i64, end: i64) -> TimedEvent {
        TimedEvent {
            start,
            end,
            bytes: 0,
            name,
            kind,
            peer: NO_PEER,
            tag: 0,
            channel: 0,
            track: 0,
        }
    }

    fn message(kind: EventKind, at: i64, peer: u32, tag: u32, bytes: u64) -> TimedEvent {
        TimedEvent {
            start: at,
            end: at,
            bytes,
            name: 0,
            kind,
            peer,
            tag,
            channel: 9,
            track: 0,
        }
    }

    fn header(rank: usize, names: &[&str], clock: ClockModel, dropped: u64) -> RankHeader {
        RankHeader {
            rank,
            names: names.iter().map(|n| n.to_string()).collect(),
            tracks: vec!["main".into(), "farm tasks".into()],
            dropped,
            capacity: 100,
            clock,
        }
    }

    #[test]
    fn clock_models_describe_themselves() {
        let drifting = ClockModel {
            start: (1_000, 2_000),
            end: (2_001_000, 2_100),
            error_ns: 700,
        };
        assert_eq!(
            drifting.describe(),
            serde_json::json!({
                "offset_at_start_us": 2.0,
                "offset_at_end_us": 2.1,
                "measured_apart_s": 0.002,
                "drift_ppm": 50.0,
                "error_us": 0.7,
            })
        );
        // The drift stated is the one applied: clamped, and none from one measurement.
        let wild = ClockModel {
            end: (1_001_000, 1_000_000),
            ..drifting
        };
        assert_eq!(wild.describe()["drift_ppm"], 1000.0);
        // Clamped, the line ends at an offset of 3 000 ns where 1 000 000 was measured; the
        // bound says so.
        assert_eq!(wild.error_bound_ns(), 700 + 997_000);
        assert_eq!(drifting.error_bound_ns(), 700);
        assert_eq!(ClockModel::IDENTITY.describe()["drift_ppm"], 0.0);
    }

    #[test]
    fn clock_models_shift_and_drift_without_reordering() {
        let shift = ClockModel {
            start: (1_000, 500),
            end: (1_000, 500),
            error_ns: 3,
        };
        assert_eq!(shift.on_root(2_000), 2_500);
        // 100 ns of drift over 1 ms: halfway, half of it.
        let drift = ClockModel {
            start: (0, 0),
            end: (1_000_000, 100),
            error_ns: 0,
        };
        assert_eq!(drift.on_root(500_000), 500_050);
        // An absurd drift (noise) is clamped to one part in a thousand.
        let noisy = ClockModel {
            start: (0, 0),
            end: (1_000, 900),
            error_ns: 0,
        };
        assert_eq!(noisy.on_root(1_000), 1_001);
        let mapped: Vec<i64> = (0..5_000).map(|t| noisy.on_root(t)).collect();
        assert!(mapped.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(ClockModel::IDENTITY.on_root(77), 77);
    }

    #[test]
    fn words_round_trip_and_bad_words_are_refused() {
        let mut tracer = Tracer::new(0, 8);
        let a = tracer.intern("a");
        tracer.track("one");
        let track = tracer.track("two");
        tracer.push(Event {
            start: 10,
            end: 30,
            bytes: 5,
            name: a,
            kind: EventKind::Wait,
            peer: 3,
            tag: 7,
            channel: 11,
            track,
        });
        let words = encode(&tracer, |t| t as i64 * 2 - 25);
        let events = decode(&words, 1, 3).unwrap();
        assert_eq!(
            events,
            [TimedEvent {
                start: -5,
                end: 35,
                bytes: 5,
                name: 0,
                kind: EventKind::Wait,
                peer: 3,
                tag: 7,
                channel: 11,
                track: 2,
            }]
        );
        assert!(decode(&words[..5], 1, 3)
            .unwrap_err()
            .contains("whole number"));
        assert!(decode(&words, 0, 3).unwrap_err().contains("of 0 names"));
        assert!(decode(&words, 1, 2).unwrap_err().contains("track 2 of 2"));
        let mut bad = words.clone();
        bad[3] = 9 << 32;
        assert!(decode(&bad, 1, 3).unwrap_err().contains("kind 9"));
    }

    #[test]
    fn two_ranks_make_one_file_with_nested_spans_and_paired_messages() {
        let mut file = Vec::new();
        let mut writer = ChromeTraceWriter::new(&mut file).unwrap();
        writer
            .add_rank(
                &header(0, &["send", "step \"one\""], ClockModel::IDENTITY, 0),
                vec![
                    message(EventKind::Send, 2_500, 1, 7, 64),
                    span(0, EventKind::Comm, 2_000, 3_000),
                    span(1, EventKind::Compute, 1_000, 4_000),
                    message(EventKind::Send, 3_500, 1, 7, 64), // never received
                    TimedEvent {
                        track: 1,
                        ..span(1, EventKind::Compute, 1_500, 2_000)
                    },
                ],
            )
            .unwrap();
        // Rank 1's clock runs 1 ms behind rank 0's.
        let behind = ClockModel {
            start: (0, 1_000_000),
            end: (10_000, 1_000_000),
            error_ns: 1_500,
        };
        writer
            .add_rank(
                &header(1, &["receive"], behind, 4),
                vec![
                    span(0, EventKind::Wait, -997_500, -996_000),
                    message(EventKind::Receive, -996_200, 0, 7, 64),
                ],
            )
            .unwrap();
        let summary = writer.finish(PathBuf::from("t.json")).unwrap();
        assert_eq!(summary.events, [5, 2]);
        assert_eq!(summary.dropped, [0, 4]);
        assert_eq!((summary.messages, summary.unmatched), (1, 1));
        assert_eq!(summary.clock_error_s, 1.5e-6);
        assert!(summary.overflowed());
        assert!(
            summary.to_string().contains("4 events DROPPED"),
            "{summary}"
        );

        let json: Value = serde_json::from_slice(&file).unwrap();
        let events = json["traceEvents"].as_array().unwrap();
        let of = |ph: &str| {
            events
                .iter()
                .filter(|e| e["ph"] == ph)
                .collect::<Vec<&Value>>()
        };
        let names: Vec<&str> = of("M")
            .iter()
            .filter(|e| e["name"] == "process_name")
            .map(|e| e["args"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["rank 0", "rank 1"]);
        let threads: Vec<(i64, i64, &str)> = of("M")
            .iter()
            .filter(|e| e["name"] == "thread_name")
            .map(|e| {
                let (pid, tid) = (e["pid"].as_i64().unwrap(), e["tid"].as_i64().unwrap());
                (pid, tid, e["args"]["name"].as_str().unwrap())
            })
            .collect();
        assert_eq!(
            threads,
            [
                (0, 0, "main"),
                (0, 1, "farm tasks"),
                (1, 0, "main"),
                (1, 1, "farm tasks")
            ]
        );
        let spans: Vec<(i64, i64, &str, &str, f64, f64)> = of("X")
            .iter()
            .map(|e| {
                (
                    e["pid"].as_i64().unwrap(),
                    e["tid"].as_i64().unwrap(),
                    e["name"].as_str().unwrap(),
                    e["cat"].as_str().unwrap(),
                    e["ts"].as_f64().unwrap(),
                    e["dur"].as_f64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            spans,
            [
                (0, 0, "step \"one\"", "compute", 1.0, 3.0),
                (0, 1, "step \"one\"", "compute", 1.5, 0.5),
                (0, 0, "send", "comm", 2.0, 1.0),
                (1, 0, "receive", "wait", 2.5, 1.5),
            ]
        );
        let (start, finish) = (of("s"), of("f"));
        assert_eq!((start.len(), finish.len()), (1, 1));
        assert_eq!(start[0]["id"], finish[0]["id"]);
        assert_eq!(
            (start[0]["pid"].as_i64(), finish[0]["pid"].as_i64()),
            (Some(0), Some(1))
        );
        assert_eq!(start[0]["ts"].as_f64(), Some(2.5));
        assert_eq!(finish[0]["ts"].as_f64(), Some(3.8));
        assert_eq!(finish[0]["bp"], "e");
        assert_eq!(start[0]["args"]["bytes"], 64);
        let other = &json["otherData"];
        assert_eq!(other["dropped_events"], serde_json::json!([0, 4]));
        assert_eq!(other["unmatched_messages"], 1);
        assert_eq!(other["clocks"][1]["offset_at_start_us"], 1000.0);
        assert_eq!(other["clocks"][1]["error_us"], 1.5);
        assert_eq!(other["clocks"].as_array().map(Vec::len), Some(2));
        assert_eq!(json["displayTimeUnit"], "ns");
    }
}
