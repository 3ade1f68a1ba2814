//! Timeline traces: where each rank's time went, event by event, and who waited for whom.
//!
//! Set `SPMD_TRACE=trace.json` (or call [`SpmdBuilder::trace`](super::SpmdBuilder::trace)),
//! run, and open the file in <https://ui.perfetto.dev> or `chrome://tracing`:
//!
//! ```text
//! SPMD_TRACE=heat.json mpirun -n 2 target/release/examples/heat2d --halos split
//! ```
//!
//! Every rank records every region it closes (yours and the library's: collectives, halo
//! exchanges, point-to-point calls, the posts and waits of non-blocking operations, the
//! barrier waits of [wait separation](crate::timing::Profiler::set_wait_separation)) and
//! every point-to-point message it sends or receives, with its start, duration, payload
//! bytes and peer, in a buffer of `SPMD_TRACE_EVENTS` events (default
//! [`DEFAULT_TRACE_EVENTS`]; 48 bytes each, reserved and touched when tracing starts, so
//! that recording one costs a store and never a page fault).
//! A full buffer keeps the first events and counts the rest; the trace file and rank 0's
//! summary line say how many were dropped.
//!
//! # The file
//! One Chrome Trace Event JSON file, written by rank 0: one process per rank, a track for the
//! thread that owns the [`Spmd`] context (regions are that thread's; rayon work shows inside
//! the region that waits for it) and one for each other thread that runs the rank's work (the
//! [farm](crate::farm) manager's task thread: a slice per task), one slice per region with its kind (`compute`, `comm`,
//! `wait`) and bytes, and an arrow from each message's send to its receive. The ranks' clocks
//! are lined up on rank 0's with offsets measured at the start and at the end of the run
//! (ping-pongs with rank 0, the fastest of 32 round trips; linear drift between the two), and
//! the file states the uncertainty of that alignment (`otherData.clock_error_us`) and each
//! rank's model (`otherData.clocks`: its offsets at the start and the end, how far apart
//! they were measured, the drift applied and the uncertainty), so a surprising arrow can be
//! checked against the alignment that drew it.
//!
//! # When it is written
//! When the [`Spmd`] context drops at the end of `main` (collectively, as MPI finalises), or
//! earlier with [`Spmd::write_trace`], which returns a [`TraceSummary`] on rank 0. Rank 0
//! prints a one-line summary on stderr when the context drops.
//!
//! # Cost
//! A traced region costs one more buffer write than an untraced one; with tracing off,
//! nothing is recorded and a region costs what it did. The performance docs give the
//! measured figures.
//!
//! # Bad settings
//! An empty `SPMD_TRACE`, a directory, a file in a directory that does not exist or that
//! rank 0 cannot create, and an `SPMD_TRACE_EVENTS` that is not a whole number from 1 to
//! [`MAX_TRACE_EVENTS`] are [`ErrorKind::Config`] errors from
//! [`SpmdBuilder::init`](super::SpmdBuilder::init), on every rank.

use std::cell::Cell;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use super::Spmd;
use crate::collective::Op;
use crate::comm::clock::{offset_to_root, Offset};
use crate::comm::Comm;
use crate::error::{Error, ErrorKind, Result};
use crate::timing::trace_file::{decode, encode, ChromeTraceWriter, ClockModel, RankHeader};
use crate::timing::{Profiler, TraceSummary, DEFAULT_TRACE_EVENTS};

/// The environment variable naming the trace file to write.
pub const TRACE_ENV: &str = "SPMD_TRACE";
/// The environment variable setting how many events each rank's buffer keeps.
pub const TRACE_EVENTS_ENV: &str = "SPMD_TRACE_EVENTS";
/// The most events a rank's buffer may be asked to keep (48 GiB of buffer if all are used).
pub const MAX_TRACE_EVENTS: usize = 1 << 30;

/// Tags of the trace's messages on its private communicator (the clock pings use 0-2).
const HEADER_TAG: u32 = 3;
const EVENTS_TAG: u32 = 4;

/// Where the trace goes and how many events a rank keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Settings {
    pub path: PathBuf,
    pub capacity: usize,
}

impl Settings {
    /// The builder's choices, else the environment's; `None` when tracing is off.
    pub(crate) fn resolve(
        path: Option<PathBuf>,
        capacity: Option<usize>,
    ) -> Result<Option<Settings>> {
        let path = path.or_else(|| std::env::var_os(TRACE_ENV).map(PathBuf::from));
        let capacity = match capacity {
            Some(events) => events,
            None => events_from_env()?,
        };
        check_capacity(capacity)?;
        let Some(path) = path else {
            return Ok(None);
        };
        check_path(&path)?;
        Ok(Some(Settings { path, capacity }))
    }
}

fn events_from_env() -> Result<usize> {
    match std::env::var(TRACE_EVENTS_ENV) {
        Err(_) => Ok(DEFAULT_TRACE_EVENTS),
        Ok(text) => text.trim().parse::<usize>().map_err(|_| {
            Error::new(
                ErrorKind::Config,
                format!(
                    "{TRACE_EVENTS_ENV} must be a whole number of events from 1 to \
                     {MAX_TRACE_EVENTS}, found {text:?}"
                ),
            )
        }),
    }
}

fn check_capacity(events: usize) -> Result<()> {
    if (1..=MAX_TRACE_EVENTS).contains(&events) {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::Config,
        format!(
            "the trace buffer must keep from 1 to {MAX_TRACE_EVENTS} events per rank \
             ({TRACE_EVENTS_ENV} or SpmdBuilder::trace_events), found {events}"
        ),
    ))
}

fn check_path(path: &Path) -> Result<()> {
    let refuse = |why: String| Err(Error::new(ErrorKind::Config, why));
    if path.as_os_str().is_empty() {
        return refuse(format!(
            "{TRACE_ENV} (or SpmdBuilder::trace) is empty: give the path of the trace file to \
             write, e.g. {TRACE_ENV}=trace.json"
        ));
    }
    if path.is_dir() {
        return refuse(format!(
            "the trace file {} is a directory: give a file path, e.g. {}",
            path.display(),
            path.join("trace.json").display()
        ));
    }
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !parent.is_dir() {
        return refuse(format!(
            "the trace file {} is in a directory that does not exist ({})",
            path.display(),
            parent.display()
        ));
    }
    Ok(())
}

/// Runs `f` with the profiler off, so that the trace's own messages are not in it.
fn quietly<R>(profiler: &Profiler, f: impl FnOnce() -> R) -> R {
    let was = profiler.enabled();
    profiler.set_enabled(false);
    let result = f();
    profiler.set_enabled(was);
    result
}

/// This rank's clock offset to rank 0 now, in the trace's time base.
fn align(comm: &Comm) -> Result<Offset> {
    let profiler = comm.profiler();
    let origin = profiler
        .with_tracer(|t| t.origin())
        .expect("tracing is on while a trace session lives");
    offset_to_root(comm, || profiler.nanos_between(origin, profiler.now()))
}

/// A trace being recorded: its settings, a private communicator for the alignment and the
/// gathering, and the clock offset measured at the start.
pub(crate) struct Session {
    settings: Settings,
    comm: Comm,
    start: Offset,
    /// The recorder's (events kept, events dropped) when the file was last written.
    written_at: Cell<Option<(usize, u64)>>,
}

impl Session {
    /// Starts recording on every rank of `world`. Collective.
    ///
    /// # Errors
    /// `Config` on every rank if rank 0 cannot create the trace file.
    pub(crate) fn start(world: &Comm, settings: Settings) -> Result<Session> {
        // Find out now, not after the run, whether rank 0 can write the file; every rank
        // gets rank 0's reason, so the error is the same everywhere.
        let mut why: Vec<u8> = match world.rank() {
            0 => File::create(&settings.path)
                .err()
                .map_or_else(Vec::new, |e| e.to_string().into_bytes()),
            _ => Vec::new(),
        };
        world.broadcast_vec(0, &mut why)?;
        if !why.is_empty() {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "rank 0 cannot create the trace file {}: {}",
                    settings.path.display(),
                    String::from_utf8_lossy(&why)
                ),
            ));
        }
        let comm = world.duplicate();
        let profiler = world.profiler();
        profiler.start_tracing(settings.capacity);
        let start = quietly(profiler, || align(&comm))?;
        Ok(Session {
            settings,
            comm,
            start,
            written_at: Cell::new(None),
        })
    }

    /// The recorder's (events kept, events dropped) now.
    fn recorded(&self) -> (usize, u64) {
        self.comm
            .profiler()
            .with_tracer(|t| (t.kept(), t.dropped()))
            .unwrap_or_default()
    }

    /// Whether the file holds every event recorded so far on every rank (it was written,
    /// and no rank recorded anything since). Collective: one small all-reduce, so that all
    /// ranks agree on whether to write.
    pub(crate) fn up_to_date(&self) -> bool {
        let mine = self.written_at.get() == Some(self.recorded());
        let stale = quietly(self.comm.profiler(), || {
            self.comm.all_reduce(u8::from(!mine), Op::Max)
        });
        stale == 0
    }

    /// Sends every rank's events to rank 0, which writes the file. Collective.
    pub(crate) fn write(&self) -> Result<Option<TraceSummary>> {
        let result = quietly(self.comm.profiler(), || self.write_quietly());
        self.written_at.set(Some(self.recorded()));
        result
    }

    fn write_quietly(&self) -> Result<Option<TraceSummary>> {
        let comm = &self.comm;
        let end = align(comm)?;
        let clock = ClockModel {
            start: (self.start.at_ns, self.start.offset_ns),
            end: (end.at_ns, end.offset_ns),
            error_ns: self.start.error_ns.max(end.error_ns),
        };
        let profiler = comm.profiler();
        let (header, words) = profiler
            .with_tracer(|t| {
                let origin = t.origin();
                let words = encode(t, |tick| profiler.nanos_between(origin, tick));
                (RankHeader::of(comm.rank(), t, clock), words)
            })
            .expect("tracing is on while a trace session lives");
        let path = &self.settings.path;
        if comm.rank() != 0 {
            let header = serde_json::to_vec(&header).expect("a trace header serialises");
            comm.send(0, HEADER_TAG, &header)?;
            comm.send(0, EVENTS_TAG, &words)?;
            if comm.all_reduce(0_u8, Op::Max) != 0 {
                return Err(Error::new(
                    ErrorKind::Io,
                    format!(
                        "rank 0 could not write the trace file {} (its error says why)",
                        path.display()
                    ),
                ));
            }
            return Ok(None);
        }
        let written = self.write_file(header, words);
        if comm.all_reduce(u8::from(written.is_err()), Op::Max) != 0 {
            return Err(written.err().unwrap_or_else(|| {
                Error::new(ErrorKind::Io, "a rank could not send its trace events")
            }));
        }
        written.map(Some)
    }

    /// Rank 0: takes every rank's header and events, in rank order, and writes the file;
    /// keeps receiving after a failure, so no rank is left waiting.
    fn write_file(&self, header: RankHeader, words: Vec<u64>) -> Result<TraceSummary> {
        let comm = &self.comm;
        let path = &self.settings.path;
        let failed =
            |e: std::io::Error| Error::io(format!("writing the trace file {}", path.display()), e);
        let mut writer = File::create(path)
            .map(BufWriter::new)
            .and_then(ChromeTraceWriter::new)
            .map_err(failed);
        let mut own = Some((header, words));
        for rank in 0..comm.size() {
            let (header, words) = if let Some((header, words)) = own.take() {
                (Ok(header), words)
            } else {
                let (bytes, _) = comm.receive::<u8>(rank, HEADER_TAG)?;
                let (words, _) = comm.receive::<u64>(rank, EVENTS_TAG)?;
                let header = serde_json::from_slice::<RankHeader>(&bytes).map_err(|e| {
                    Error::new(
                        ErrorKind::RemoteError,
                        format!("unreadable trace header from rank {rank}: {e}"),
                    )
                });
                (header, words)
            };
            let Ok(w) = writer.as_mut() else {
                continue;
            };
            let added = header.and_then(|header| {
                let events =
                    decode(&words, header.names.len(), header.tracks.len()).map_err(|e| {
                        Error::new(
                            ErrorKind::RemoteError,
                            format!("unreadable trace events from rank {rank}: {e}"),
                        )
                    })?;
                w.add_rank(&header, events).map_err(failed)
            });
            if let Err(e) = added {
                writer = Err(e);
            }
        }
        writer?.finish(path.clone()).map_err(failed)
    }
}

impl Spmd {
    /// Writes the timeline recorded so far to the trace file (see [`crate::runtime::trace`])
    /// and returns what it holds on rank 0 (`None` on the other ranks). Collective.
    /// [`report`](Self::report) does this too, and the context does it when it drops unless
    /// the file already holds every event.
    ///
    /// # Errors
    /// - `Config` on every rank if tracing is off (no `SPMD_TRACE`, no
    ///   [`SpmdBuilder::trace`](super::SpmdBuilder::trace)).
    /// - `Io` on every rank if rank 0 cannot write the file (rank 0's error has the I/O
    ///   error as its source; the others say to look there).
    pub fn write_trace(&self) -> Result<Option<TraceSummary>> {
        let Some(session) = &self.trace else {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "write_trace: tracing is off; set {TRACE_ENV}=trace.json or call \
                     SpmdBuilder::trace"
                ),
            ));
        };
        session.write()
    }

    /// Whether this run records a timeline trace.
    pub fn tracing(&self) -> bool {
        self.trace.is_some()
    }

    /// With tracing on, writes the trace (collectively) and returns its summary on rank 0;
    /// with tracing off, `None`.
    pub(crate) fn write_trace_if_tracing(&self) -> Result<Option<TraceSummary>> {
        match &self.trace {
            Some(session) => session.write(),
            None => Ok(None),
        }
    }

    /// Writes the trace at the end of the program unless the file already holds every
    /// event; rank 0 prints what it wrote (or why it could not) on stderr.
    pub(crate) fn write_trace_at_exit(&self) {
        let Some(session) = &self.trace else {
            return;
        };
        if std::thread::panicking() || session.up_to_date() {
            return;
        }
        match session.write() {
            Ok(Some(summary)) => eprintln!("spmd: {summary}"),
            Ok(None) => {}
            Err(e) if self.is_root() => eprintln!("spmd: the trace was not written: {e}"),
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_paths_and_sizes_are_refused_with_the_reason() {
        let dir = std::env::temp_dir();
        let message = |r: Result<Option<Settings>>| r.unwrap_err().message().to_owned();
        let empty = message(Settings::resolve(Some(PathBuf::new()), Some(10)));
        assert!(empty.contains("is empty"), "{empty}");
        let directory = message(Settings::resolve(Some(dir.clone()), Some(10)));
        assert!(directory.contains("is a directory"), "{directory}");
        let missing = message(Settings::resolve(
            Some(dir.join("no-such-dir-spmd").join("t.json")),
            Some(10),
        ));
        assert!(missing.contains("does not exist"), "{missing}");
        for events in [0, MAX_TRACE_EVENTS + 1] {
            let size = message(Settings::resolve(Some(dir.join("t.json")), Some(events)));
            assert!(size.contains(&format!("found {events}")), "{size}");
        }
        let ok = Settings::resolve(Some(PathBuf::from("t.json")), Some(10)).unwrap();
        assert_eq!(
            ok,
            Some(Settings {
                path: PathBuf::from("t.json"),
                capacity: 10
            })
        );
    }
}
