//! [`Profiler`]: named regions, each compute or comm, and this rank's compute/comm totals.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use super::rank_times::{RankTimes, RegionKind, RegionTimes, RepetitionTimes};
use super::trace::{Event, EventKind, Tracer, TrafficTable, MAIN_TRACK};

#[derive(Clone)]
struct Region {
    name: &'static str,
    kind: RegionKind,
    calls: u64,
    /// Clock ticks (see [`Profiler::clock`]).
    time: u64,
    wait: u64,
    bytes: u64,
    request_wait: u64,
    in_flight: u64,
    /// The region's name in the trace recorder ([`NO_NAME`] until first traced).
    trace_name: u32,
}

/// A region not yet named in the trace recorder.
const NO_NAME: u32 = u32::MAX;

/// The totals of one region at the start of the open repetition, or summed over the measured
/// repetitions.
#[derive(Clone, Copy, Default)]
struct Totals {
    calls: u64,
    time: u64,
    wait: u64,
    bytes: u64,
    request_wait: u64,
    in_flight: u64,
}

impl Totals {
    fn of(r: &Region) -> Totals {
        Totals {
            calls: r.calls,
            time: r.time,
            wait: r.wait,
            bytes: r.bytes,
            request_wait: r.request_wait,
            in_flight: r.in_flight,
        }
    }
}

/// The bookkeeping of repeated measurements.
#[derive(Default)]
struct Repetitions {
    /// `(start tick, comm total, wait total)` when a repetition is open.
    open: Option<(u64, u64, u64)>,
    /// Every region's totals when the open repetition began (reused between repetitions).
    at_start: Vec<Totals>,
    /// Every region's totals summed over the measured repetitions.
    measured: Vec<Totals>,
    /// `(wall, comm, wait)` ticks of each measured repetition.
    samples: Vec<(u64, u64, u64)>,
    /// Seconds of each baseline run.
    baselines_s: Vec<f64>,
}

/// This rank's timing state; see the [module docs](crate::timing).
///
/// Every [`Comm`](crate::Comm) made from the [`Spmd`](crate::Spmd) context shares it, and
/// every collective helper records itself here as a comm region. It lives on the thread that
/// owns the context (it is neither `Send` nor `Sync`), so regions mark the program's main flow;
/// time spent in rayon kernels is counted in the main-thread region that waits for them.
pub struct Profiler {
    enabled: Cell<bool>,
    wait_separation: Cell<bool>,
    /// The one clock of every figure: the cheapest the CPU offers (the TSC where it is
    /// invariant, ~10 ns a read, against ~25 ns for `Instant::now`). Wall time, region times
    /// and baselines are all kept in its ticks.
    clock: quanta::Clock,
    start: Cell<u64>,
    /// Ticks spent measuring baselines, taken off the wall time.
    excluded: Cell<u64>,
    baseline: Cell<Option<Duration>>,
    comm_depth: Cell<u32>,
    comm_since: Cell<u64>,
    comm_total: Cell<u64>,
    wait_total: Cell<u64>,
    library_depth: Cell<u32>,
    regions: RefCell<Vec<Region>>,
    repetitions: RefCell<Repetitions>,
    /// What the library's higher layers (a farm, a pipeline) report about their last run.
    sections: RefCell<Vec<Section>>,
    /// The timeline recorder, when tracing is on.
    tracer: RefCell<Option<Tracer>>,
    /// Point-to-point traffic sent, for the communication matrix.
    traffic: RefCell<TrafficTable>,
}

/// A block of figures a library layer adds to the report: a JSON value under `key` in the
/// results, and a text printed under the table.
#[derive(Clone, Debug)]
pub(crate) struct Section {
    pub key: &'static str,
    pub value: serde_json::Value,
    pub text: String,
}

impl std::fmt::Debug for Profiler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profiler")
            .field("enabled", &self.enabled.get())
            .field("wait_separation", &self.wait_separation.get())
            .field("regions", &self.regions.borrow().len())
            .finish()
    }
}

impl Default for Profiler {
    fn default() -> Profiler {
        Profiler::new()
    }
}

impl Profiler {
    /// A profiler whose clock starts now, enabled, without wait separation.
    pub fn new() -> Profiler {
        Profiler::with_clock(quanta::Clock::new())
    }

    /// A profiler reading `clock` (a mock clock in tests).
    pub(crate) fn with_clock(clock: quanta::Clock) -> Profiler {
        let now = clock.raw();
        Profiler {
            enabled: Cell::new(true),
            wait_separation: Cell::new(false),
            clock,
            start: Cell::new(now),
            excluded: Cell::new(0),
            baseline: Cell::new(None),
            comm_depth: Cell::new(0),
            comm_since: Cell::new(0),
            comm_total: Cell::new(0),
            wait_total: Cell::new(0),
            library_depth: Cell::new(0),
            regions: RefCell::new(Vec::new()),
            repetitions: RefCell::new(Repetitions::default()),
            sections: RefCell::new(Vec::new()),
            tracer: RefCell::new(None),
            traffic: RefCell::new(TrafficTable::default()),
        }
    }

    /// Whether regions are recorded (on by default).
    pub fn enabled(&self) -> bool {
        self.enabled.get()
    }

    /// Switches recording on or off. Off, a region costs one branch and records nothing, and
    /// communication time is no longer separated from compute.
    pub fn set_enabled(&self, on: bool) {
        self.enabled.set(on);
    }

    /// Whether collectives first wait in a barrier so that waiting and transfer are timed apart.
    pub fn wait_separation(&self) -> bool {
        self.wait_separation.get()
    }

    /// Switches wait separation (off by default). When on, every collective helper first calls
    /// `MPI_Barrier` on its communicator and counts that time as *wait* (time lost to slower
    /// ranks), then times the operation itself as *transfer*. The barrier adds one latency per
    /// collective. Every rank of every communicator must use the same setting, or the barriers
    /// do not match and the job hangs.
    pub fn set_wait_separation(&self, on: bool) {
        self.wait_separation.set(on);
    }

    /// Keeps `value` (JSON, under `key` in the report's results) and `text` (printed under
    /// the report's table) for the next report, replacing an earlier section of that key.
    pub(crate) fn attach_section(
        &self,
        key: &'static str,
        value: impl serde::Serialize,
        text: String,
    ) {
        let value = serde_json::to_value(value).expect("a section serialises to JSON");
        let mut sections = self.sections.borrow_mut();
        sections.retain(|s| s.key != key);
        sections.push(Section { key, value, text });
    }

    /// The sections attached so far.
    pub(crate) fn sections(&self) -> Vec<Section> {
        self.sections.borrow().clone()
    }

    /// Forgets every region and total and restarts the clock, e.g. after set-up that the
    /// report should not count. Call it on every rank at the same point of the program.
    ///
    /// # Panics
    /// If a region is open.
    #[track_caller]
    pub fn reset(&self) {
        assert_eq!(
            self.comm_depth.get() + self.library_depth.get(),
            0,
            "Profiler::reset called inside an open region"
        );
        self.start.set(self.clock.raw());
        self.excluded.set(0);
        self.baseline.set(None);
        self.comm_total.set(0);
        self.wait_total.set(0);
        self.regions.borrow_mut().clear();
        *self.repetitions.borrow_mut() = Repetitions::default();
        self.traffic.borrow_mut().clear();
    }

    /// Starts recording a timeline of at most `capacity` events in memory, times counted
    /// from now (replacing an earlier recording); further events are counted, not kept.
    /// The [`Spmd`](crate::Spmd) context does this for its profiler when tracing is asked for
    /// and writes the trace file (see [`crate::runtime::trace`]); on a profiler of your own
    /// the timeline stays in memory (e.g. to measure what tracing costs).
    pub fn start_tracing(&self, capacity: usize) {
        *self.tracer.borrow_mut() = Some(Tracer::new(self.clock.raw(), capacity));
    }

    /// Whether a timeline is being recorded.
    pub fn tracing(&self) -> bool {
        self.tracer.borrow().is_some()
    }

    /// With a timeline being recorded: the events kept and the events dropped (buffer full).
    pub fn trace_counts(&self) -> Option<(usize, u64)> {
        self.with_tracer(|t| (t.kept(), t.dropped()))
    }

    /// Runs `f` on the timeline recorder, if tracing is on.
    pub(crate) fn with_tracer<R>(&self, f: impl FnOnce(&Tracer) -> R) -> Option<R> {
        self.tracer.borrow().as_ref().map(f)
    }

    /// Nanoseconds from tick `origin` to tick `tick` (negative when `tick` is earlier).
    pub(crate) fn nanos_between(&self, origin: u64, tick: u64) -> i64 {
        if tick >= origin {
            i64::try_from(self.clock.delta_as_nanos(origin, tick)).unwrap_or(i64::MAX)
        } else {
            -i64::try_from(self.clock.delta_as_nanos(tick, origin)).unwrap_or(i64::MAX)
        }
    }

    /// Records a point-to-point message of `bytes` payload bytes that `operation` sent to,
    /// or received from, world rank `peer` with `tag` on the communicator numbered `channel`:
    /// sends count in the communication matrix, and both are instants of the timeline.
    #[inline]
    pub(crate) fn record_message(
        &self,
        operation: &'static str,
        kind: EventKind,
        peer: u32,
        tag: u32,
        channel: u64,
        bytes: usize,
    ) {
        if !self.enabled.get() {
            return;
        }
        if kind == EventKind::Send {
            self.traffic.borrow_mut().add(operation, peer, bytes as u64);
        }
        if let Some(tracer) = self.tracer.borrow_mut().as_mut() {
            let now = self.clock.raw();
            let name = tracer.intern(operation);
            tracer.push(Event {
                start: now,
                end: now,
                bytes: bytes as u64,
                name,
                kind,
                peer,
                tag,
                channel,
                track: MAIN_TRACK,
            });
        }
    }

    /// A handle on the profiler's clock for another thread of this rank: its
    /// [`raw`](quanta::Clock::raw) readings are what [`Profiler::record_thread_span`] takes.
    pub(crate) fn clock_handle(&self) -> quanta::Clock {
        self.clock.clone()
    }

    /// Records, in the timeline only, a span `name` that the thread called `thread` spent
    /// from tick `start` to tick `end` (readings of [`Profiler::clock_handle`]); the thread
    /// gets its own track. Its time is not in the regions: those are this thread's.
    pub(crate) fn record_thread_span(
        &self,
        thread: &'static str,
        name: &'static str,
        kind: EventKind,
        start: u64,
        end: u64,
    ) {
        if !self.enabled.get() {
            return;
        }
        if let Some(tracer) = self.tracer.borrow_mut().as_mut() {
            let track = tracer.track(thread);
            let name = tracer.intern(name);
            tracer.push(Event::span(name, kind, start, end, 0, track));
        }
    }

    /// Starts one measured repetition of the program's timed part. Costs a clock read and a
    /// copy of every region's totals (no allocation after the first repetition).
    ///
    /// # Panics
    /// If a repetition is already open.
    #[track_caller]
    pub(crate) fn begin_repetition(&self) {
        let mut reps = self.repetitions.borrow_mut();
        assert!(reps.open.is_none(), "a repetition is already open");
        let regions = self.regions.borrow();
        reps.at_start.clear();
        reps.at_start.extend(regions.iter().map(Totals::of));
        reps.open = Some((
            self.clock.raw(),
            self.comm_total.get(),
            self.wait_total.get(),
        ));
    }

    /// Ends the open repetition: records its wall, comm and wait time, and adds what every
    /// region did during it to the measured totals.
    ///
    /// # Panics
    /// If no repetition is open, or a comm region is still open.
    #[track_caller]
    pub(crate) fn end_repetition(&self) {
        let end = self.clock.raw();
        let mut reps = self.repetitions.borrow_mut();
        let (start, comm, wait) = reps.open.take().expect("no repetition is open");
        assert_eq!(
            self.comm_depth.get(),
            0,
            "a repetition ended inside a comm region"
        );
        reps.samples.push((
            end.saturating_sub(start),
            self.comm_total.get() - comm,
            self.wait_total.get() - wait,
        ));
        let regions = self.regions.borrow();
        let Repetitions {
            at_start, measured, ..
        } = &mut *reps;
        measured.resize(regions.len(), Totals::default());
        for (i, (r, sum)) in regions.iter().zip(measured.iter_mut()).enumerate() {
            let before = at_start.get(i).copied().unwrap_or_default();
            sum.calls += r.calls - before.calls;
            sum.time += r.time - before.time;
            sum.wait += r.wait - before.wait;
            sum.bytes += r.bytes - before.bytes;
            sum.request_wait += r.request_wait - before.request_wait;
            sum.in_flight += r.in_flight - before.in_flight;
        }
    }

    /// Records one run of the sequential baseline that took `seconds`.
    pub(crate) fn record_baseline_run(&self, seconds: f64) {
        self.repetitions.borrow_mut().baselines_s.push(seconds);
    }

    /// Opens a region; it closes when the returned guard drops. Regions nest; a region's time
    /// includes the regions inside it, and comm time is counted once however deep comm regions
    /// nest.
    ///
    /// ```
    /// use spmd::timing::{Profiler, RegionKind};
    /// let profiler = Profiler::new();
    /// for _ in 0..3 {
    ///     let _step = profiler.region("step", RegionKind::Compute);
    ///     // ... work ...
    /// }
    /// assert_eq!(profiler.rank_times().regions[0].calls, 3);
    /// ```
    #[inline]
    pub fn region(&self, name: &'static str, kind: RegionKind) -> RegionGuard<'_> {
        if !self.enabled.get() {
            return RegionGuard::inert();
        }
        self.open(name, kind, 0, false, None)
    }

    /// A compute region: `region(name, RegionKind::Compute)`.
    #[inline]
    pub fn compute(&self, name: &'static str) -> RegionGuard<'_> {
        self.region(name, RegionKind::Compute)
    }

    /// A comm region for communication the library does not do itself (e.g. raw rsmpi calls),
    /// moving `bytes` bytes on this rank.
    #[inline]
    pub fn comm(&self, name: &'static str, bytes: usize) -> RegionGuard<'_> {
        let mut guard = self.region(name, RegionKind::Comm);
        guard.add_bytes(bytes);
        guard
    }

    /// Runs `f` inside a region and returns its result.
    pub fn time<R>(&self, name: &'static str, kind: RegionKind, f: impl FnOnce() -> R) -> R {
        let _guard = self.region(name, kind);
        f()
    }

    /// The comm region every library helper opens. Inside another library helper (one helper
    /// built on another) it records nothing, so each call appears once under its public name.
    /// With wait separation on, `barrier` runs first and its time counts as wait.
    #[inline]
    pub(crate) fn library_comm(
        &self,
        name: &'static str,
        bytes: usize,
        barrier: impl FnOnce(),
    ) -> RegionGuard<'_> {
        if !self.enabled.get() || self.library_depth.get() > 0 {
            return RegionGuard::inert();
        }
        let guard = self.open(name, RegionKind::Comm, bytes, true, None);
        if self.wait_separation.get() {
            let before = self.clock.raw();
            barrier();
            let after = self.clock.raw();
            let waited = after.saturating_sub(before);
            self.wait_total.set(self.wait_total.get() + waited);
            if let Some(open) = &guard.open {
                self.regions.borrow_mut()[open.index].wait += waited;
            }
            if let Some(tracer) = self.tracer.borrow_mut().as_mut() {
                let name = tracer.intern(name);
                tracer.push(Event::span(
                    name,
                    EventKind::Wait,
                    before,
                    after,
                    0,
                    MAIN_TRACK,
                ));
            }
        }
        guard
    }

    /// The comm region of the wait of a non-blocking operation posted (by a library helper
    /// whose region is `name`) at tick `posted_at`: its time adds to `name`'s time and
    /// request-wait time without counting another call, and the ticks since the post count
    /// as in flight.
    #[inline]
    pub(crate) fn library_wait(&self, name: &'static str, posted_at: u64) -> RegionGuard<'_> {
        if !self.enabled.get() || self.library_depth.get() > 0 {
            return RegionGuard::inert();
        }
        self.open(name, RegionKind::Comm, 0, true, Some(posted_at))
    }

    #[inline]
    fn open(
        &self,
        name: &'static str,
        kind: RegionKind,
        bytes: usize,
        library: bool,
        posted_at: Option<u64>,
    ) -> RegionGuard<'_> {
        let index = self.index_of(name, kind);
        if library {
            self.library_depth.set(self.library_depth.get() + 1);
        }
        let start = self.clock.raw();
        if kind == RegionKind::Comm {
            if self.comm_depth.get() == 0 {
                self.comm_since.set(start);
            }
            self.comm_depth.set(self.comm_depth.get() + 1);
        }
        RegionGuard {
            open: Some(OpenRegion {
                profiler: self,
                index,
                start,
                kind,
                library,
                posted_at,
            }),
            bytes: bytes as u64,
        }
    }

    #[inline]
    fn index_of(&self, name: &'static str, kind: RegionKind) -> usize {
        let mut regions = self.regions.borrow_mut();
        // Names are usually the same literal, so the pointer test settles most lookups.
        let found = regions
            .iter()
            .position(|r| r.kind == kind && (std::ptr::eq(r.name, name) || r.name == name));
        found.unwrap_or_else(|| {
            regions.push(Region {
                name,
                kind,
                calls: 0,
                time: 0,
                wait: 0,
                bytes: 0,
                request_wait: 0,
                in_flight: 0,
                trace_name: NO_NAME,
            });
            regions.len() - 1
        })
    }

    #[inline]
    fn close(&self, open: &OpenRegion<'_>, bytes: u64) {
        let end = self.clock.raw();
        {
            let mut regions = self.regions.borrow_mut();
            let region = &mut regions[open.index];
            let spent = end.saturating_sub(open.start);
            region.time += spent;
            region.bytes += bytes;
            match open.posted_at {
                None => region.calls += 1,
                Some(posted_at) => {
                    region.request_wait += spent;
                    region.in_flight += open.start.saturating_sub(posted_at);
                }
            }
            if let Some(tracer) = self.tracer.borrow_mut().as_mut() {
                if region.trace_name == NO_NAME {
                    region.trace_name = tracer.intern(region.name);
                }
                let kind = match (open.posted_at, open.kind) {
                    (Some(_), _) => EventKind::Wait,
                    (None, RegionKind::Compute) => EventKind::Compute,
                    (None, RegionKind::Comm) => EventKind::Comm,
                };
                let name = region.trace_name;
                tracer.push(Event::span(name, kind, open.start, end, bytes, MAIN_TRACK));
            }
        }
        if open.kind == RegionKind::Comm {
            let depth = self.comm_depth.get() - 1;
            self.comm_depth.set(depth);
            if depth == 0 {
                let spent = end.saturating_sub(self.comm_since.get());
                self.comm_total.set(self.comm_total.get() + spent);
            }
        }
        if open.library {
            self.library_depth.set(self.library_depth.get() - 1);
        }
    }

    /// The profiler's clock now, in ticks (see [`seconds_between`](Self::seconds_between)).
    pub(crate) fn now(&self) -> u64 {
        self.clock.raw()
    }

    /// Seconds from tick `start` to tick `end` of [`now`](Self::now).
    pub(crate) fn seconds_between(&self, start: u64, end: u64) -> f64 {
        self.clock.delta(start, end).as_secs_f64()
    }

    /// Removes `span` ticks from the wall clock (the time a baseline measurement took).
    pub(crate) fn exclude(&self, span: u64) {
        self.excluded.set(self.excluded.get() + span);
    }

    /// Adds `baseline` to the one-off baseline total ([`Spmd::baseline`](crate::Spmd::baseline)).
    pub(crate) fn add_baseline(&self, baseline: Duration) {
        self.baseline.set(Some(
            self.baseline.get().unwrap_or(Duration::ZERO) + baseline,
        ));
    }

    /// The sequential baseline recorded by [`Spmd::baseline`](crate::Spmd::baseline), if any.
    pub fn baseline(&self) -> Option<Duration> {
        self.baseline.get()
    }

    /// Wall-clock time since the profiler started, minus baseline measurements.
    pub fn elapsed(&self) -> Duration {
        let ticks = self.clock.raw().saturating_sub(self.start.get());
        self.clock
            .delta(0, ticks.saturating_sub(self.excluded.get()))
    }

    /// This rank's figures now. Regions still open are not included.
    pub fn rank_times(&self) -> RankTimes {
        let mut comm = self.comm_total.get();
        if self.comm_depth.get() > 0 {
            comm += self.clock.raw().saturating_sub(self.comm_since.get());
        }
        let seconds = |ticks: u64| self.clock.delta(0, ticks).as_secs_f64();
        let reps = self.repetitions.borrow();
        let measured = !reps.samples.is_empty();
        let regions = self
            .regions
            .borrow()
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let t = if measured {
                    reps.measured.get(i).copied().unwrap_or_default()
                } else {
                    Totals::of(r)
                };
                RegionTimes {
                    name: r.name.to_owned(),
                    kind: r.kind,
                    calls: t.calls,
                    time_s: seconds(t.time),
                    wait_s: seconds(t.wait),
                    bytes: t.bytes,
                    request_wait_s: seconds(t.request_wait),
                    in_flight_s: seconds(t.in_flight),
                }
            })
            .filter(|r| !measured || r.calls > 0)
            .collect();
        RankTimes {
            wall_s: self.elapsed().as_secs_f64(),
            comm_s: seconds(comm),
            wait_s: seconds(self.wait_total.get()),
            peak_rss_bytes: peak_rss_bytes(),
            regions,
            repetitions: reps
                .samples
                .iter()
                .map(|&(wall, comm, wait)| RepetitionTimes {
                    wall_s: seconds(wall),
                    comm_s: seconds(comm),
                    wait_s: seconds(wait),
                })
                .collect(),
            baselines_s: reps.baselines_s.clone(),
            node: None,
            sent: self.traffic.borrow().to_records(),
        }
    }
}

/// An open region; dropping it closes the region. See [`Profiler::region`].
#[must_use = "a region closes when its guard drops; bind it with `let _region = ...`"]
pub struct RegionGuard<'p> {
    /// `None` when the profiler is off or the region is not recorded: then nothing, not even
    /// the clock, is touched.
    open: Option<OpenRegion<'p>>,
    bytes: u64,
}

struct OpenRegion<'p> {
    profiler: &'p Profiler,
    index: usize,
    start: u64,
    kind: RegionKind,
    library: bool,
    /// For the wait of a non-blocking operation: the tick its post returned.
    posted_at: Option<u64>,
}

impl RegionGuard<'_> {
    fn inert() -> RegionGuard<'static> {
        RegionGuard {
            open: None,
            bytes: 0,
        }
    }

    /// Adds `bytes` to the payload this region moved (for sizes known only once inside).
    pub fn add_bytes(&mut self, bytes: usize) {
        self.bytes += bytes as u64;
    }
}

impl Drop for RegionGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        if let Some(open) = &self.open {
            open.profiler.close(open, self.bytes);
        }
    }
}

/// The process's peak resident set size in bytes (`getrusage`), 0 if the OS will not say.
pub fn peak_rss_bytes() -> u64 {
    // SAFETY: `rusage` is plain data for which all-zero bytes are valid, and `getrusage` only
    // writes into the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut usage) != 0 {
            return 0;
        }
        usage
    };
    // Linux reports kibibytes; macOS reports bytes.
    let scale = if cfg!(target_os = "macos") { 1 } else { 1024 };
    u64::try_from(usage.ru_maxrss).unwrap_or(0) * scale
}

#[cfg(test)]
#[path = "profiler_tests.rs"]
mod tests;
