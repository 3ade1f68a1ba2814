//! The timeline recorder behind `SPMD_TRACE`: with tracing on, every region this rank closes,
//! every wait of a non-blocking operation and every point-to-point message it sends or
//! receives becomes an [`Event`] in a bounded buffer. The runtime gathers the buffers and
//! writes one trace file (see [`crate::runtime::trace`]).
//!
//! Recording an event is a clock read the region takes anyway plus a store into a buffer
//! allocated, and its pages touched, when tracing starts (in blocks of [`BLOCK`] events; the
//! first write to a fresh page costs a page fault, which would otherwise fall on every 85th
//! event), with no lock: the profiler lives on one thread. Other threads of the rank (the
//! farm manager's task thread) hand their spans to it, each on its own track. A full buffer
//! stops recording and counts what it dropped, so a long run keeps its first events and the
//! trace file says how many are missing.

use serde::{Deserialize, Serialize};

/// Events a rank keeps by default before it stops recording (48 bytes each: 48 MiB,
/// allocated and touched when tracing starts).
pub const DEFAULT_TRACE_EVENTS: usize = 1 << 20;

/// Events per block of the buffer.
pub(crate) const BLOCK: usize = 1 << 16;

/// The smallest page the buffer's memory comes in.
const PAGE_BYTES: usize = 4096;

/// The track of the thread that owns the profiler.
pub(crate) const MAIN_TRACK: u16 = 0;

/// What an event of the timeline is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// A compute region.
    Compute,
    /// A comm region: a collective, a point-to-point call, the post of a non-blocking one.
    Comm,
    /// Waiting: for a non-blocking operation to complete, or (with wait separation) for the
    /// other ranks to reach a collective.
    Wait,
    /// A message leaving this rank (an instant).
    Send,
    /// A message taken by this rank (an instant).
    Receive,
}

impl EventKind {
    /// The name of the kind, as the trace file's `cat` field gives it.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Compute => "compute",
            EventKind::Comm => "comm",
            EventKind::Wait => "wait",
            EventKind::Send => "send",
            EventKind::Receive => "receive",
        }
    }

    /// Whether the event is a message (an instant with a peer) rather than a span.
    pub fn is_message(self) -> bool {
        matches!(self, EventKind::Send | EventKind::Receive)
    }

    pub(crate) fn code(self) -> u64 {
        self as u64
    }

    pub(crate) fn from_code(code: u64) -> Option<EventKind> {
        [
            EventKind::Compute,
            EventKind::Comm,
            EventKind::Wait,
            EventKind::Send,
            EventKind::Receive,
        ]
        .get(usize::try_from(code).ok()?)
        .copied()
    }
}

/// One event, its times in ticks of the profiler's clock (`Time = u64`, as recorded) or in
/// nanoseconds since the rank's trace origin (`i64`, as the trace file's writer reads them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Event<Time = u64> {
    pub start: Time,
    /// Equal to `start` for a message.
    pub end: Time,
    pub bytes: u64,
    /// Index into the recorder's names.
    pub name: u32,
    pub kind: EventKind,
    /// Messages: the other rank, as a rank of the world. Spans: [`NO_PEER`].
    pub peer: u32,
    /// Messages: the MPI tag.
    pub tag: u32,
    /// Messages: which communicator carried it (a number every member of the communicator
    /// computes alike; see `Comm`), so that sends and receives pair up.
    pub channel: u64,
    /// The thread it happened on: an index into the recorder's tracks ([`MAIN_TRACK`] for
    /// the profiler's own thread).
    pub track: u16,
}

impl Event<u64> {
    /// What fills the buffer's pages before events do.
    const BLANK: Event = Event::span(0, EventKind::Compute, 0, 0, 0, MAIN_TRACK);

    /// A span (no peer, tag or channel) named by index `name`, from tick `start` to `end`.
    #[inline]
    pub const fn span(
        name: u32,
        kind: EventKind,
        start: u64,
        end: u64,
        bytes: u64,
        track: u16,
    ) -> Event {
        Event {
            start,
            end,
            bytes,
            name,
            kind,
            peer: NO_PEER,
            tag: 0,
            channel: 0,
            track,
        }
    }
}

/// The peer of an event that has none.
pub(crate) const NO_PEER: u32 = u32::MAX;

/// One rank's bounded event buffer.
#[derive(Debug)]
pub(crate) struct Tracer {
    /// The tick the trace's times count from on this rank.
    origin: u64,
    capacity: usize,
    /// Blocks of at most [`BLOCK`] events holding `capacity` in all, reserved up front;
    /// those before the one at `len / BLOCK` are full, those after it empty.
    blocks: Vec<Vec<Event>>,
    len: usize,
    dropped: u64,
    names: Vec<&'static str>,
    /// Thread names, by track ([`MAIN_TRACK`] is `main`).
    tracks: Vec<&'static str>,
}

impl Tracer {
    /// A recorder keeping at most `capacity` events, times counted from tick `origin`.
    /// The whole buffer is reserved and its pages touched here, so that recording costs no
    /// page faults (about 12 ms for the default 48 MiB on a 2-core VM).
    pub fn new(origin: u64, capacity: usize) -> Tracer {
        let per_page = (PAGE_BYTES / std::mem::size_of::<Event>()).max(1);
        let blocks = (0..capacity.div_ceil(BLOCK))
            .map(|b| {
                let mut block = Vec::with_capacity(BLOCK.min(capacity - b * BLOCK));
                for slot in block.spare_capacity_mut().iter_mut().step_by(per_page) {
                    slot.write(Event::BLANK);
                }
                block
            })
            .collect();
        Tracer {
            origin,
            capacity,
            blocks,
            len: 0,
            dropped: 0,
            names: Vec::new(),
            tracks: vec!["main"],
        }
    }

    /// The track of the thread named `thread` (added if new; at most 2^16 tracks, the last
    /// one shared by any beyond).
    pub fn track(&mut self, thread: &'static str) -> u16 {
        let found = self.tracks.iter().position(|t| *t == thread);
        let index = found.unwrap_or_else(|| {
            if self.tracks.len() <= usize::from(u16::MAX) {
                self.tracks.push(thread);
            }
            self.tracks.len() - 1
        });
        index as u16
    }

    /// Thread names, by track.
    pub fn tracks(&self) -> &[&'static str] {
        &self.tracks
    }

    /// The index of `name` among the recorded names (added if new). Names are usually the
    /// same literal, so a pointer comparison settles most lookups.
    #[inline]
    pub fn intern(&mut self, name: &'static str) -> u32 {
        let found = self
            .names
            .iter()
            .position(|n| std::ptr::eq(*n, name) || *n == name);
        let index = found.unwrap_or_else(|| {
            self.names.push(name);
            self.names.len() - 1
        });
        index as u32
    }

    /// Keeps `event`, or counts it as dropped when the buffer is full.
    #[inline]
    pub fn push(&mut self, event: Event) {
        if self.len >= self.capacity {
            self.dropped += 1;
            return;
        }
        // Within its reserved capacity: never reallocates.
        self.blocks[self.len / BLOCK].push(event);
        self.len += 1;
    }

    /// The tick times count from.
    pub fn origin(&self) -> u64 {
        self.origin
    }

    /// The events kept, in the order they ended.
    pub fn events(&self) -> impl Iterator<Item = &Event> + '_ {
        self.blocks.iter().flatten()
    }

    /// How many events were kept.
    pub fn kept(&self) -> usize {
        self.len
    }

    /// The names events refer to by index.
    pub fn names(&self) -> &[&'static str] {
        &self.names
    }

    /// Events not kept because the buffer was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The most events the buffer keeps.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

/// Point-to-point bytes and messages this rank sent, per operation and destination: what the
/// report's communication matrix is made of.
#[derive(Debug, Default)]
pub(crate) struct TrafficTable {
    rows: Vec<TrafficRow>,
}

#[derive(Clone, Copy, Debug)]
struct TrafficRow {
    operation: &'static str,
    to: u32,
    bytes: u64,
    messages: u64,
}

impl TrafficTable {
    /// Adds one message of `bytes` sent by `operation` to world rank `to`.
    #[inline]
    pub fn add(&mut self, operation: &'static str, to: u32, bytes: u64) {
        let row = self.rows.iter_mut().find(|r| {
            r.to == to && (std::ptr::eq(r.operation, operation) || r.operation == operation)
        });
        match row {
            Some(row) => {
                row.bytes += bytes;
                row.messages += 1;
            }
            None => self.rows.push(TrafficRow {
                operation,
                to,
                bytes,
                messages: 1,
            }),
        }
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.rows.clear();
    }

    /// The rows as the report's [`Traffic`] records.
    pub fn to_records(&self) -> Vec<Traffic> {
        self.rows
            .iter()
            .map(|r| Traffic {
                operation: r.operation.to_owned(),
                to: r.to as usize,
                bytes: r.bytes,
                messages: r.messages,
            })
            .collect()
    }
}

/// Point-to-point traffic one rank sent to one other rank through one operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Traffic {
    /// The operation that sent it (`send`, `exchange_halos`, a ghost exchange, ...).
    pub operation: String,
    /// The destination, as a rank of the world.
    pub to: usize,
    /// Payload bytes sent.
    pub bytes: u64,
    /// Messages sent.
    pub messages: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(name: u32, start: u64, end: u64) -> Event {
        Event::span(name, EventKind::Compute, start, end, 0, MAIN_TRACK)
    }

    #[test]
    fn a_full_buffer_keeps_the_first_events_and_counts_the_rest() {
        let mut t = Tracer::new(100, 3);
        let a = t.intern("a");
        for k in 0..5 {
            t.push(span(a, k, k + 1));
        }
        assert_eq!(t.kept(), 3);
        assert_eq!(t.events().nth(2).map(|e| e.start), Some(2));
        assert_eq!((t.dropped(), t.capacity(), t.origin()), (2, 3, 100));
    }

    #[test]
    fn events_span_blocks_in_order() {
        let mut t = Tracer::new(0, 2 * BLOCK + 10);
        for k in 0..(2 * BLOCK + 20) as u64 {
            t.push(span(0, k, k));
        }
        assert_eq!((t.kept(), t.dropped()), (2 * BLOCK + 10, 10));
        assert_eq!(t.blocks.len(), 3);
        assert!(t.events().map(|e| e.start).eq(0..(2 * BLOCK + 10) as u64));
    }

    #[test]
    fn the_buffer_is_reserved_up_front_and_never_moves() {
        let mut t = Tracer::new(0, BLOCK + 5);
        let reserved: Vec<(*const Event, usize)> = t
            .blocks
            .iter()
            .map(|b| (b.as_ptr(), b.capacity()))
            .collect();
        assert_eq!(reserved.iter().map(|r| r.1).collect::<Vec<_>>(), [BLOCK, 5]);
        for k in 0..(BLOCK + 5) as u64 {
            t.push(span(0, k, k));
        }
        let filled: Vec<(*const Event, usize)> = t
            .blocks
            .iter()
            .map(|b| (b.as_ptr(), b.capacity()))
            .collect();
        assert_eq!(reserved, filled);
        assert_eq!(t.kept(), BLOCK + 5);
    }

    #[test]
    fn each_thread_name_gets_one_track() {
        let mut t = Tracer::new(0, 1);
        assert_eq!(t.track("farm tasks"), 1);
        assert_eq!(t.track("main"), MAIN_TRACK);
        assert_eq!(t.track("farm tasks"), 1);
        assert_eq!(t.tracks(), ["main", "farm tasks"]);
    }

    #[test]
    fn names_are_interned_by_content() {
        let mut t = Tracer::new(0, 1);
        let a = t.intern("step");
        let b = t.intern(String::from("step").leak());
        let c = t.intern("other");
        assert_eq!((a, b, c), (0, 0, 1));
        assert_eq!(t.names(), ["step", "other"]);
    }

    #[test]
    fn traffic_adds_up_per_operation_and_destination() {
        let mut table = TrafficTable::default();
        table.add("send", 1, 8);
        table.add("send", 1, 16);
        table.add("send", 2, 4);
        table.add("halo", 1, 100);
        let rows = table.to_records();
        let summary: Vec<(&str, usize, u64, u64)> = rows
            .iter()
            .map(|r| (r.operation.as_str(), r.to, r.bytes, r.messages))
            .collect();
        assert_eq!(
            summary,
            [("send", 1, 24, 2), ("send", 2, 4, 1), ("halo", 1, 100, 1)]
        );
        table.clear();
        assert!(table.to_records().is_empty());
    }

    #[test]
    fn kinds_round_trip_through_their_codes() {
        for kind in [
            EventKind::Compute,
            EventKind::Comm,
            EventKind::Wait,
            EventKind::Send,
            EventKind::Receive,
        ] {
            assert_eq!(EventKind::from_code(kind.code()), Some(kind));
        }
        assert_eq!(EventKind::from_code(5), None);
    }
}
