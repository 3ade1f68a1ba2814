//! [`Emitter`]: how a stage's closure hands items to the next stage.

use std::marker::PhantomData;
use std::time::Instant;

use serde::Serialize;

use super::stream::{now_ns, Envelope};
use crate::error::Result;

/// Where a stage's encoded items go: the next stage's ranks (over MPI) or, on one rank, the
/// next stage itself.
pub(crate) trait Downstream {
    /// Sends one framed item on, to the rank for `key` (or whichever may take it).
    /// `Ok(false)`: the pipeline is stopping and the item was dropped.
    fn push(&mut self, key: Option<u64>, frame: Vec<u8>) -> Result<bool>;
}

/// An emitter's state, kept by the stage's runner across items.
pub(crate) struct Outlet<'d> {
    pub down: &'d mut dyn Downstream,
    /// The envelope of the item being processed; a source makes a new one per item.
    pub envelope: Envelope,
    pub is_source: bool,
    pub stage_rank: usize,
    pub stage_ranks: usize,
    /// Seconds spent inside `push` (the next stage's work on one rank, or waiting for
    /// credit): not this stage's busy time.
    pub inside_s: f64,
    pub emitted: u64,
    /// An encoding or communication error: the stage's failure.
    pub error: Option<String>,
    pub stopping: bool,
}

impl<'d> Outlet<'d> {
    pub fn new(down: &'d mut dyn Downstream, stage_rank: usize, stage_ranks: usize) -> Self {
        Outlet {
            down,
            envelope: Envelope::default(),
            is_source: false,
            stage_rank,
            stage_ranks,
            inside_s: 0.0,
            emitted: 0,
            error: None,
            stopping: false,
        }
    }
}

/// Hands a stage's output items to the next stage (see the [module docs](super)).
pub struct Emitter<'e, 'd, U> {
    outlet: &'e mut Outlet<'d>,
    _item: PhantomData<fn(U)>,
}

impl<U> std::fmt::Debug for Emitter<'_, '_, U> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emitter")
            .field("stage_rank", &self.outlet.stage_rank)
            .field("emitted", &self.outlet.emitted)
            .field("stopping", &self.outlet.stopping)
            .finish()
    }
}

impl<'e, 'd, U: Serialize> Emitter<'e, 'd, U> {
    pub(crate) fn new(outlet: &'e mut Outlet<'d>) -> Self {
        Emitter {
            outlet,
            _item: PhantomData,
        }
    }

    /// The error that ended this emitter's item, if any.
    pub(crate) fn into_result(self) -> std::result::Result<(), String> {
        match self.outlet.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Sends `item` to the next stage, to whichever of its ranks has room (load balancing;
    /// items to different ranks may be processed in any order). Waits while every rank of
    /// the next stage is full (backpressure). Returns `false` if the pipeline is stopping
    /// (a stage failed): the item was dropped, and a source should stop producing.
    pub fn emit(&mut self, item: U) -> bool {
        self.send(None, item)
    }

    /// Sends `item` to the rank of the next stage that `key` names (`key` modulo its rank
    /// count): items with the same key go to the same rank and arrive in order (e.g. the
    /// frames of one camera to the rank that tracks it). Returns as [`emit`](Self::emit).
    pub fn emit_to(&mut self, key: u64, item: U) -> bool {
        self.send(Some(key), item)
    }

    /// Whether the pipeline is stopping (further items would be dropped).
    pub fn is_stopping(&self) -> bool {
        self.outlet.stopping
    }

    /// This rank's place among its stage's ranks, `0..stage_ranks()` (e.g. which cameras a
    /// source rank films).
    pub fn stage_rank(&self) -> usize {
        self.outlet.stage_rank
    }

    /// How many ranks run this stage.
    pub fn stage_ranks(&self) -> usize {
        self.outlet.stage_ranks
    }

    fn send(&mut self, key: Option<u64>, item: U) -> bool {
        let o = &mut *self.outlet;
        if o.stopping {
            return false;
        }
        if o.is_source {
            o.envelope = Envelope {
                origin: o.stage_rank as u64,
                seq: o.emitted,
                stamp_ns: now_ns(),
            };
        }
        let frame = match postcard::to_extend(&item, o.envelope.header()) {
            Ok(frame) => frame,
            Err(e) => {
                o.error = Some(format!(
                    "could not encode a {}: {e}",
                    std::any::type_name::<U>()
                ));
                o.stopping = true;
                return false;
            }
        };
        let started = Instant::now();
        let pushed = o.down.push(key, frame);
        o.inside_s += started.elapsed().as_secs_f64();
        match pushed {
            Ok(true) => {
                o.emitted += 1;
                true
            }
            Ok(false) => {
                o.stopping = true;
                false
            }
            Err(e) => {
                o.error = Some(e.to_string());
                o.stopping = true;
                false
            }
        }
    }
}
