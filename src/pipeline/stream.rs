//! The stream between two stages' rank groups: framed items, credits back, end of stream.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::emitter::Downstream;
use crate::comm::{wait_all, Comm, Request, Source, TagFilter};
use crate::error::{Error, ErrorKind, Result};

/// An item, upstream to downstream.
pub(super) const TAG_ITEM: u32 = 1;
/// The end of one rank's stream, upstream to downstream.
pub(super) const TAG_EOS: u32 = 2;
/// Credits, downstream to upstream: `[items consumed, flags]`.
pub(super) const TAG_CREDIT: u32 = 3;
/// Credit flag: stop producing, the pipeline is failing.
pub(super) const CANCEL: u64 = 1;
/// Credit flag: the last credit message (the sender saw this rank's end of stream).
pub(super) const FINAL: u64 = 2;

/// Where an item comes from and when it was made: named in failures, timed at the sinks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Envelope {
    /// The source rank (its place in the source stage) that emitted the item.
    pub origin: u64,
    /// The item's number at that source.
    pub seq: u64,
    /// When the source emitted it, nanoseconds of the system clock.
    pub stamp_ns: u64,
}

impl Envelope {
    /// The header bytes, to which the encoded item is appended.
    pub fn header(&self) -> Vec<u8> {
        crate::comm::wire::header(&[self.origin, self.seq, self.stamp_ns])
    }

    /// The envelope and the encoded item of a framed message.
    pub fn parse(frame: &[u8]) -> Result<(Envelope, &[u8])> {
        let ([origin, seq, stamp_ns], body) = crate::comm::wire::split_header(frame, "pipeline")?;
        Ok((
            Envelope {
                origin,
                seq,
                stamp_ns,
            },
            body,
        ))
    }
}

/// The system clock in nanoseconds (comparable between ranks on one host, and between hosts
/// as far as their clocks agree).
pub(crate) fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// A rank's outgoing stream to the next stage's ranks.
pub(super) struct Outgoing<'c> {
    comm: &'c Comm,
    /// The next stage's first rank; its ranks are `first..first + credits.len()`.
    first: usize,
    credits: Vec<usize>,
    next: usize,
    pub cancelled: bool,
    finals: usize,
    sends: Vec<Request<Vec<u8>>>,
    /// Seconds spent waiting for credit (backpressure).
    pub blocked_s: f64,
}

impl<'c> Outgoing<'c> {
    pub fn new(comm: &'c Comm, downstream: std::ops::Range<usize>, window: usize) -> Self {
        Outgoing {
            comm,
            first: downstream.start,
            credits: vec![window; downstream.len()],
            next: 0,
            cancelled: false,
            finals: 0,
            sends: Vec::new(),
            blocked_s: 0.0,
        }
    }

    /// Takes the credit message that rank `from` sent.
    pub fn take_credit(&mut self, from: usize) -> Result<()> {
        let (message, _) = self.comm.receive::<u64>(from, TAG_CREDIT)?;
        let index = from
            .checked_sub(self.first)
            .filter(|&i| i < self.credits.len());
        let (Some(index), &[count, flags]) = (index, &message[..]) else {
            return Err(Error::new(
                ErrorKind::RemoteError,
                format!("pipeline: a credit message from rank {from}, which is not downstream"),
            )
            .on_rank(self.comm.rank()));
        };
        self.credits[index] += count as usize;
        self.cancelled |= flags & CANCEL != 0;
        self.finals += usize::from(flags & FINAL != 0);
        Ok(())
    }

    /// Tells every rank of the next stage that this stream ended, and waits until each has
    /// answered with its final credit (so that no message is left unreceived).
    pub fn finish(mut self) -> Result<()> {
        for d in 0..self.credits.len() {
            let eos = self
                .comm
                .send_immediate(self.first + d, TAG_EOS, Vec::<u8>::new())?;
            self.sends.push(eos);
        }
        while self.finals < self.credits.len() {
            let status = self
                .comm
                .wait_for_message::<u64>(Source::Any, TagFilter::Tag(TAG_CREDIT))?;
            self.take_credit(status.source)?;
        }
        wait_all(std::mem::take(&mut self.sends))?;
        Ok(())
    }
}

impl Downstream for Outgoing<'_> {
    fn push(&mut self, key: Option<u64>, frame: Vec<u8>) -> Result<bool> {
        let n = self.credits.len();
        if n == 0 {
            return Err(Error::new(
                ErrorKind::InvalidState,
                "pipeline: the last stage (a sink) cannot emit items",
            ));
        }
        // Credits that arrived meanwhile (and a cancel, promptly).
        while let Some(status) = self
            .comm
            .try_probe_quiet::<u64>(Source::Any, TagFilter::Tag(TAG_CREDIT))?
        {
            self.take_credit(status.source)?;
        }
        let target = loop {
            if self.cancelled {
                return Ok(false);
            }
            let open = match key {
                Some(key) => Some((key % n as u64) as usize).filter(|&d| self.credits[d] > 0),
                None => (0..n)
                    .map(|k| (self.next + k) % n)
                    .find(|&d| self.credits[d] > 0),
            };
            if let Some(d) = open {
                break d;
            }
            // Every rank that may take the item is full: wait for credit.
            let waited = Instant::now();
            let status = self
                .comm
                .wait_for_message::<u64>(Source::Any, TagFilter::Tag(TAG_CREDIT))?;
            self.take_credit(status.source)?;
            self.blocked_s += waited.elapsed().as_secs_f64();
        };
        self.credits[target] -= 1;
        self.next = target + 1;
        self.sends.retain_mut(|s| !s.test());
        let send = self
            .comm
            .send_immediate(self.first + target, TAG_ITEM, frame)?;
        self.sends.push(send);
        Ok(true)
    }
}
