//! Typed point-to-point messages on a [`Comm`]: `send`, `receive`, `send_receive`, `probe`,
//! and their immediate (non-blocking) forms.
//!
//! Ranks are `usize`, tags `u32` in `0..=MAX_TAG` (the tags above are the library's own),
//! element types anything with an MPI [`Equivalence`](mpi::traits::Equivalence). Every call is
//! a comm region in the profiler and is watched by the [watchdog](super::watchdog).
//! Point-to-point calls have no collective agreement check: bad arguments (a rank outside the
//! communicator, a tag out of range, a buffer shorter than the message) are an `Err` on the
//! rank that made them.
//!
//! # Messages above MPI's `int` count
//! A message of `n` elements travels as `n / C + 1` MPI messages of at most `C = i32::MAX`
//! elements (the last one shorter, possibly empty), so any length works, blocking or not.
//!
//! ```no_run
//! # fn f(world: &spmd::Comm) -> spmd::Result<()> {
//! if world.rank() == 0 {
//!     world.send(1, 7, &[1.0_f64, 2.0, 3.0])?;
//! } else if world.rank() == 1 {
//!     let (values, status) = world.receive::<f64>(0, 7)?;
//!     assert_eq!((values.len(), status.source), (3, 0));
//! }
//! # Ok(())
//! # }
//! ```

use std::mem::{size_of, size_of_val};
use std::os::raw::c_int;
use std::sync::OnceLock;

use mpi::datatype::Equivalence;
use mpi::point_to_point::{Destination, Source as _};
use mpi::topology::Communicator;

use super::ffi;
use super::request::{op_names, OpNames, Request};
use super::Comm;
use crate::error::{Error, ErrorKind, Result};
use crate::timing::EventKind;

/// The largest tag a program may use; tags above it (up to MPI's guaranteed 32767) are the
/// library's own (array transfers, halo exchanges).
pub const MAX_TAG: u32 = 32_000;

/// The tags the library's own messages use (array transfers from the start, then two per
/// split axis for halo exchanges from [`HALO_TAGS`]): above every program tag, within MPI's
/// guaranteed 32 767.
pub(crate) const LIBRARY_TAGS: std::ops::Range<i32> = 32_600..32_767;
/// The first tag of halo exchanges (upward and downward along each split axis).
pub(crate) const HALO_TAGS: i32 = 32_700;
const _: () = assert!((MAX_TAG as i32) < LIBRARY_TAGS.start && HALO_TAGS + 8 <= LIBRARY_TAGS.end);

/// Where a receive or probe takes its message from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Any rank (`MPI_ANY_SOURCE`): the [`Status`] says which.
    Any,
    /// This rank only.
    Rank(usize),
}

impl From<usize> for Source {
    fn from(rank: usize) -> Source {
        Source::Rank(rank)
    }
}

/// Which tags a receive or probe accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagFilter {
    /// Any tag (`MPI_ANY_TAG`): the [`Status`] says which.
    Any,
    /// This tag only.
    Tag(u32),
}

impl From<u32> for TagFilter {
    fn from(tag: u32) -> TagFilter {
        TagFilter::Tag(tag)
    }
}

/// What arrived: the sender, the tag and the number of elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    /// The sending rank.
    pub source: usize,
    /// The message's tag.
    pub tag: u32,
    /// Elements in the message.
    pub count: usize,
}

/// Elements per MPI message: `i32::MAX`, or less under `SPMD_MAX_MESSAGE_ELEMENTS` (read
/// once; for testing the chunked path without gigabytes of data).
pub(crate) fn chunk_elements() -> usize {
    static CHUNK: OnceLock<usize> = OnceLock::new();
    *CHUNK.get_or_init(|| {
        std::env::var("SPMD_MAX_MESSAGE_ELEMENTS")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|&c| c > 0)
            .map_or(i32::MAX as usize, |c| c.min(i32::MAX as usize))
    })
}

/// The chunks a message of `len` elements travels in: `len / C` full ones and a last,
/// shorter (possibly empty) one.
fn chunks(len: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
    let c = chunk_elements();
    (0..=len / c).map(move |k| k * c..((k + 1) * c).min(len))
}

impl Comm {
    fn check_rank(&self, op: &str, what: &str, rank: usize) -> Result<c_int> {
        if rank < self.size() {
            return Ok(rank as c_int);
        }
        Err(Error::new(
            ErrorKind::InvalidRoot,
            format!(
                "{op}: {what} rank {rank} is outside the communicator of {} ranks",
                self.size()
            ),
        )
        .on_rank(self.rank()))
    }

    fn check_tag(&self, op: &str, tag: u32) -> Result<c_int> {
        if tag <= MAX_TAG {
            return Ok(tag as c_int);
        }
        Err(Error::new(
            ErrorKind::InvalidTag,
            format!("{op}: tag {tag} is above the largest program tag {MAX_TAG}"),
        )
        .on_rank(self.rank()))
    }

    fn source_arg(&self, op: &str, from: Source) -> Result<c_int> {
        match from {
            Source::Any => Ok(ffi::any_source()),
            Source::Rank(r) => self.check_rank(op, "the source", r),
        }
    }

    fn tag_arg(&self, op: &str, tag: TagFilter) -> Result<c_int> {
        match tag {
            TagFilter::Any => Ok(ffi::any_tag()),
            TagFilter::Tag(t) => self.check_tag(op, t),
        }
    }

    /// Sends `data` to rank `to` with `tag`; returns when the buffer may be reused (the
    /// message may still be on its way, or, for large messages, MPI may wait for the
    /// receiver to post its receive).
    ///
    /// # Errors
    /// `InvalidRoot` if `to >= size()`; `InvalidTag` if `tag > MAX_TAG`.
    pub fn send<T: Equivalence>(&self, to: usize, tag: u32, data: &[T]) -> Result<()> {
        const OP: &str = "send";
        let (to, tag) = (
            self.check_rank(OP, "the destination", to)?,
            self.check_tag(OP, tag)?,
        );
        let _timer = self.timed(OP, std::mem::size_of_val(data));
        self.note_message(
            OP,
            EventKind::Send,
            to as usize,
            tag as u32,
            size_of_val(data),
        );
        let process = self.raw().process_at_rank(to);
        for chunk in chunks(data.len()) {
            process.send_with_tag(&data[chunk], tag);
        }
        Ok(())
    }

    /// Receives a message from `from` with a matching tag into `buffer`, which must be at
    /// least as long as the message. Returns its [`Status`] (`count` elements were written at
    /// the start of `buffer`).
    ///
    /// ```no_run
    /// # fn f(world: &spmd::Comm) -> spmd::Result<()> {
    /// use spmd::comm::{Source, TagFilter};
    /// let mut buffer = [0_u64; 16];
    /// let status = world.receive_into(Source::Any, TagFilter::Any, &mut buffer)?;
    /// let got = &buffer[..status.count]; // from rank status.source, tag status.tag
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// `InvalidRoot`/`InvalidTag` for a bad source or tag; `BufferSize` if the message is
    /// longer than `buffer`: it then stays queued (receive it with
    /// [`receive`](Self::receive)).
    pub fn receive_into<T: Equivalence>(
        &self,
        from: impl Into<Source>,
        tag: impl Into<TagFilter>,
        buffer: &mut [T],
    ) -> Result<Status> {
        const OP: &str = "receive_into";
        let (from, tag) = (
            self.source_arg(OP, from.into())?,
            self.tag_arg(OP, tag.into())?,
        );
        let mut timer = self.timed(OP, 0);
        let status = self.receive_chunks(OP, from, tag, buffer)?;
        timer.add_bytes(status.count * size_of::<T>());
        self.note_received::<T>(OP, &status);
        Ok(status)
    }

    /// Receives a message from `from` with a matching tag into a new vector of its length.
    ///
    /// # Errors
    /// `InvalidRoot`/`InvalidTag` for a bad source or tag.
    pub fn receive<T: Equivalence>(
        &self,
        from: impl Into<Source>,
        tag: impl Into<TagFilter>,
    ) -> Result<(Vec<T>, Status)> {
        const OP: &str = "receive";
        let (from, tag) = (
            self.source_arg(OP, from.into())?,
            self.tag_arg(OP, tag.into())?,
        );
        let mut timer = self.timed(OP, 0);
        let c = chunk_elements();
        let mut data: Vec<T> = Vec::new();
        let (mut source, mut got_tag) = (from, tag);
        loop {
            let status = ffi::probe(self, source, got_tag, true).expect("a blocking probe");
            let (s, t, count) = ffi::status_parts::<T>(&status);
            (source, got_tag) = (s as c_int, t);
            let start = data.len();
            data.reserve_exact(count);
            // SAFETY: `reserve_exact` made room for `count` more elements; they are written by
            // the receive below before `set_len` exposes them (an `Equivalence` type is plain
            // data, valid for any bytes MPI writes).
            unsafe {
                let room = std::slice::from_raw_parts_mut(data.as_mut_ptr().add(start), count);
                self.raw()
                    .process_at_rank(source)
                    .receive_into_with_tag(room, got_tag);
                data.set_len(start + count);
            }
            if count < c {
                break;
            }
        }
        timer.add_bytes(data.len() * size_of::<T>());
        let status = Status {
            source: source as usize,
            tag: got_tag as u32,
            count: data.len(),
        };
        self.note_received::<T>(OP, &status);
        Ok((data, status))
    }

    /// Records the message `status` describes as received by `operation`.
    fn note_received<T>(&self, operation: &'static str, status: &Status) {
        let bytes = status.count * size_of::<T>();
        self.note_message(
            operation,
            EventKind::Receive,
            status.source,
            status.tag,
            bytes,
        );
    }

    /// Receives the chunks of one message from `from` into `buffer` (see the module docs).
    fn receive_chunks<T: Equivalence>(
        &self,
        op: &str,
        from: c_int,
        tag: c_int,
        buffer: &mut [T],
    ) -> Result<Status> {
        let c = chunk_elements();
        let (mut source, mut got_tag, mut received) = (from, tag, 0_usize);
        loop {
            let status = ffi::probe(self, source, got_tag, true).expect("a blocking probe");
            let (s, t, count) = ffi::status_parts::<T>(&status);
            (source, got_tag) = (s as c_int, t);
            if received + count > buffer.len() {
                return Err(Error::new(
                    ErrorKind::BufferSize,
                    format!(
                        "{op}: the message from rank {s} (tag {t}) has {} elements or more, \
                         but the buffer holds {}; the message stays queued",
                        received + count,
                        buffer.len()
                    ),
                )
                .on_rank(self.rank()));
            }
            self.raw()
                .process_at_rank(source)
                .receive_into_with_tag(&mut buffer[received..received + count], got_tag);
            received += count;
            if count < c {
                break;
            }
        }
        Ok(Status {
            source: source as usize,
            tag: got_tag as u32,
            count: received,
        })
    }

    /// Sends `send` to `to` and receives a message from `from` into `receive`, at the same
    /// time (no deadlock when two ranks exchange with each other). Returns the received
    /// message's [`Status`].
    ///
    /// # Errors
    /// As [`send`](Self::send) and [`receive_into`](Self::receive_into); a message longer
    /// than `receive` is received and discarded (so that the sender completes) and reported as
    /// `BufferSize`.
    #[allow(clippy::too_many_arguments)]
    pub fn send_receive<T: Equivalence>(
        &self,
        send: &[T],
        to: usize,
        send_tag: u32,
        receive: &mut [T],
        from: impl Into<Source>,
        receive_tag: impl Into<TagFilter>,
    ) -> Result<Status> {
        const OP: &str = "send_receive";
        let (to, send_tag) = (
            self.check_rank(OP, "the destination", to)?,
            self.check_tag(OP, send_tag)?,
        );
        let (from, receive_tag) = (
            self.source_arg(OP, from.into())?,
            self.tag_arg(OP, receive_tag.into())?,
        );
        let mut timer = self.timed(OP, std::mem::size_of_val(send));
        self.note_message(
            OP,
            EventKind::Send,
            to as usize,
            send_tag as u32,
            size_of_val(send),
        );
        let mut sends: Vec<ffi::MPI_Request> = chunks(send.len())
            .map(|chunk| {
                // SAFETY: `send` outlives the requests: they are waited for below, on every
                // path out of this function.
                unsafe {
                    ffi::isend(
                        self,
                        send[chunk.clone()].as_ptr(),
                        chunk.len() as c_int,
                        to,
                        send_tag,
                    )
                }
            })
            .collect();
        let received = self.receive_chunks(OP, from, receive_tag, receive);
        if received.is_err() {
            // Drain the message so that its sender, maybe blocked in the same call, completes.
            let _ = self.receive::<T>(Source::Any, TagFilter::Any);
        }
        let mut statuses: Vec<ffi::MPI_Status> =
            sends.iter().map(|_| ffi::empty_status()).collect();
        ffi::wait_all(&mut sends, &mut statuses);
        let status = received?;
        timer.add_bytes(status.count * size_of::<T>());
        self.note_received::<T>(OP, &status);
        Ok(status)
    }

    /// Blocks until a message from `from` with a matching tag can be received, and returns
    /// its [`Status`] without receiving it (e.g. to size the buffer); `count` is in elements
    /// of `T`.
    ///
    /// # Errors
    /// `InvalidRoot`/`InvalidTag` for a bad source or tag.
    pub fn probe<T: Equivalence>(
        &self,
        from: impl Into<Source>,
        tag: impl Into<TagFilter>,
    ) -> Result<Status> {
        self.probe_with::<T>("probe", from.into(), tag.into(), true)
            .map(|s| s.expect("a blocking probe returns a status"))
    }

    /// [`probe`](Self::probe) without blocking: `None` if no matching message has arrived.
    /// `count` is in elements of `T`.
    ///
    /// # Errors
    /// As [`probe`](Self::probe).
    pub fn try_probe<T: Equivalence>(
        &self,
        from: impl Into<Source>,
        tag: impl Into<TagFilter>,
    ) -> Result<Option<Status>> {
        self.probe_with::<T>("try_probe", from.into(), tag.into(), false)
    }

    fn probe_with<T: Equivalence>(
        &self,
        op: &'static str,
        from: Source,
        tag: TagFilter,
        blocking: bool,
    ) -> Result<Option<Status>> {
        let (from_arg, tag_arg) = (self.source_arg(op, from)?, self.tag_arg(op, tag)?);
        let _timer = self.timed(op, 0);
        Ok(self.probe_raw::<T>(from_arg, tag_arg, blocking))
    }

    /// A non-blocking probe outside any profiler region (for waits that poll many times
    /// inside one region of their own).
    pub(crate) fn try_probe_quiet<T: Equivalence>(
        &self,
        from: Source,
        tag: TagFilter,
    ) -> Result<Option<Status>> {
        const OP: &str = "wait_for_message";
        let (from, tag) = (self.source_arg(OP, from)?, self.tag_arg(OP, tag)?);
        Ok(self.probe_raw::<T>(from, tag, false))
    }

    fn probe_raw<T: Equivalence>(&self, from: c_int, tag: c_int, blocking: bool) -> Option<Status> {
        ffi::probe(self, from, tag, blocking).map(|status| {
            let (source, tag, count) = ffi::status_parts::<T>(&status);
            Status {
                source,
                tag: tag as u32,
                count,
            }
        })
    }

    /// Starts sending `data` to `to` and returns at once; [`Request::wait`] gives the vector
    /// back for reuse. The request owns the data while it travels.
    ///
    /// ```no_run
    /// # fn f(world: &spmd::Comm) -> spmd::Result<()> {
    /// let right = (world.rank() + 1) % world.size();
    /// let left = (world.rank() + world.size() - 1) % world.size();
    /// let outgoing = world.send_immediate(right, 0, vec![world.rank() as f64; 1024])?;
    /// let incoming = world.receive_immediate(left, 0, vec![0.0_f64; 1024])?;
    /// // ... compute while the messages travel ...
    /// let (from_left, _status) = incoming.wait()?;
    /// let buffer = outgoing.wait()?; // reusable
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// `InvalidRoot` if `to >= size()`; `InvalidTag` if `tag > MAX_TAG`.
    pub fn send_immediate<T: Equivalence + 'static>(
        &self,
        to: usize,
        tag: u32,
        data: Vec<T>,
    ) -> Result<Request<Vec<T>>> {
        const NAMES: OpNames = op_names!("send_immediate");
        let (to, tag) = (
            self.check_rank(NAMES.op, "the destination", to)?,
            self.check_tag(NAMES.op, tag)?,
        );
        let raw: Vec<ffi::MPI_Request> = {
            let _timer = self.timed(NAMES.op, std::mem::size_of_val(&data[..]));
            let bytes = size_of_val(&data[..]);
            self.note_message(NAMES.op, EventKind::Send, to as usize, tag as u32, bytes);
            chunks(data.len())
                .map(|chunk| {
                    // SAFETY: the request's finish closure owns `data` (its heap buffer does
                    // not move), and a request dropped unfinished leaks it.
                    unsafe {
                        ffi::isend(
                            self,
                            data[chunk.clone()].as_ptr(),
                            chunk.len() as c_int,
                            to,
                            tag,
                        )
                    }
                })
                .collect()
        };
        Ok(Request::new(self, NAMES, raw, Box::new(move |_| Ok(data))))
    }

    /// Starts receiving a message from `from` with a matching tag into `buffer` (at least as
    /// long as the message) and returns at once. [`Request::wait`] gives the buffer back,
    /// truncated to the message's length, with its [`Status`].
    ///
    /// The message is taken when it has arrived and the request is tested or waited for
    /// (a matched probe, then the receive), so its length is known before any byte is
    /// written: a message longer than `buffer` is received into a scratch buffer, discarded,
    /// and reported, never truncated by MPI.
    ///
    /// # Errors
    /// `InvalidRoot`/`InvalidTag` for a bad source or tag. A message longer than `buffer` is
    /// a `BufferSize` error from `wait`.
    pub fn receive_immediate<T: Equivalence + 'static>(
        &self,
        from: impl Into<Source>,
        tag: impl Into<TagFilter>,
        buffer: Vec<T>,
    ) -> Result<Request<(Vec<T>, Status)>> {
        const NAMES: OpNames = op_names!("receive_immediate");
        let (from, tag) = (
            self.source_arg(NAMES.op, from.into())?,
            self.tag_arg(NAMES.op, tag.into())?,
        );
        let _timer = self.timed(NAMES.op, 0);
        let mut pending = MatchedReceive {
            comm: self.clone(),
            source: from,
            tag,
            buffer,
            received: 0,
            done: false,
            error: None,
        };
        // A message that is already here is taken at once.
        pending.progress(false);
        Ok(Request::pending(self, NAMES, Box::new(pending)))
    }
}

/// A receive that takes its message (chunk by chunk) through matched probes.
struct MatchedReceive<T> {
    comm: Comm,
    /// The source and tag asked for; after the first chunk, the first chunk's own.
    source: c_int,
    tag: c_int,
    buffer: Vec<T>,
    received: usize,
    done: bool,
    error: Option<Error>,
}

impl<T: Equivalence> MatchedReceive<T> {
    /// Takes every chunk that has arrived (waiting for them if `blocking`).
    fn progress(&mut self, blocking: bool) {
        let c = chunk_elements();
        while !self.done {
            let Some((message, status)) =
                ffi::matched_probe(&self.comm, self.source, self.tag, blocking)
            else {
                return;
            };
            let (source, tag, count) = ffi::status_parts::<T>(&status);
            (self.source, self.tag) = (source as c_int, tag);
            if self.received + count > self.buffer.len() {
                let mut scratch: Vec<T> = Vec::with_capacity(count);
                // SAFETY: `scratch` has room for the message's `count` elements.
                unsafe { ffi::mrecv(message, scratch.as_mut_ptr(), count as c_int) };
                self.error.get_or_insert_with(|| {
                    Error::new(
                        ErrorKind::BufferSize,
                        format!(
                            "receive_immediate: the message from rank {source} (tag {tag}) has \
                             {} elements or more, but the buffer holds {}; it was discarded",
                            self.received + count,
                            self.buffer.len()
                        ),
                    )
                    .on_rank(self.comm.rank())
                });
            } else {
                // SAFETY: the buffer has room for `count` more elements at `received`.
                unsafe {
                    ffi::mrecv(
                        message,
                        self.buffer.as_mut_ptr().add(self.received),
                        count as c_int,
                    )
                };
                self.received += count;
            }
            self.done = count < c;
            if self.done && self.error.is_none() {
                let status = Status {
                    source: self.source as usize,
                    tag: self.tag as u32,
                    count: self.received,
                };
                self.comm.note_received::<T>("receive_immediate", &status);
            }
        }
    }
}

impl<T: Equivalence> crate::comm::request::Pending<(Vec<T>, Status)> for MatchedReceive<T> {
    fn test(&mut self) -> bool {
        self.progress(false);
        self.done
    }

    fn wait(&mut self) {
        self.progress(true);
    }

    fn finish(self: Box<Self>) -> Result<(Vec<T>, Status)> {
        let MatchedReceive {
            source,
            tag,
            mut buffer,
            received,
            error,
            ..
        } = *self;
        if let Some(error) = error {
            return Err(error);
        }
        buffer.truncate(received);
        Ok((
            buffer,
            Status {
                source: source as usize,
                tag: tag as u32,
                count: received,
            },
        ))
    }
}
