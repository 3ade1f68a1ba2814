//! A pipeline of functions: stages run on groups of ranks and stream typed items to each
//! other, with backpressure, end-of-stream and per-stage statistics.
//!
//! This is the seed's second architecture, *distribution of functionality*: cameras on some
//! ranks, detection on others, analysis on the rest. Every rank builds the same pipeline
//! (SPMD: the same calls, the same closures) and [`run`](Pipeline::run)s it; each rank runs
//! the stage its place in the communicator gives it (the first stage's ranks first), and the
//! items travel between the groups.
//!
//! ```no_run
//! # fn f(world: &spmd::Comm) -> spmd::Result<()> {
//! use spmd::pipeline::Pipeline;
//! let mut total = 0_u64;
//! let stats = Pipeline::source(world, "numbers", 1, |out| {
//!         for n in 0..1000_u64 {
//!             if !out.emit(n) {
//!                 break; // the pipeline is stopping (a later stage failed)
//!             }
//!         }
//!     })
//!     .stage("square", world.size().saturating_sub(2).max(1), |n: u64| n * n)
//!     .sink("sum", 1, |sq: u64| total += sq)
//!     .run()?; // 3 or more ranks; on 1 rank every stage runs in turn
//! println!("{stats}");
//! # Ok(())
//! # }
//! ```
//!
//! # Streams, backpressure and routing
//! - Items are any serde type, encoded with postcard, sent with non-blocking sends.
//! - **Backpressure by credits**: a rank may have at most [`window`](Pipeline::window)
//!   items unconsumed at each rank of the next stage; the receiver returns credits as it
//!   consumes (in batches of half a window). A producer that runs out of credits waits (and
//!   so stops reading its own input), so a slow stage slows its producers instead of filling
//!   memory. Per item one message; per half window one credit message back.
//! - **Fan-out and fan-in** between groups of any sizes: [`Emitter::emit`] sends an item to
//!   whichever rank of the next stage has credit, round robin (load balancing, no order
//!   between ranks); [`Emitter::emit_to`] sends every item with the same key to the same
//!   rank, in order (e.g. all frames of one camera to one tracker). Between one pair of ranks
//!   items keep their order.
//! - **End of stream**: when a rank's input ends (its producer returned, or every rank
//!   before it ended), it tells every rank of the next stage, which ends when all its
//!   producers have.
//! - **Idle ranks nap** ([`Comm::wait_for_message`]) instead of spinning.
//! - **On one rank** every stage runs in turn on each item (a fused pipeline: the baseline a
//!   distributed pipeline should beat). Otherwise the stages' rank counts must add up to the
//!   communicator's size.
//!
//! # Failures
//! A stage whose closure panics (or returns `Err` in [`try_stage`](Pipeline::try_stage))
//! stops the pipeline: the failing rank stops processing, tells its producers to stop (their
//! [`Emitter::emit`] returns `false`), drains what is in flight, and every rank's `run`
//! returns the same `TaskFailed` error naming the stage, the rank and the item (its source
//! rank and number).

mod emitter;
mod run;
mod stats;
mod stream;

use std::fmt::Display;
use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::comm::Comm;
use crate::error::Result;

pub use emitter::Emitter;
pub use stats::{PipelineStats, StageStats};

/// Items a rank may have unconsumed at each rank of the next stage, by default.
const DEFAULT_WINDOW: usize = 8;

/// A pipeline under construction whose last stage emits `T`; see the [module docs](self).
pub struct Pipeline<'a, T> {
    comm: Comm,
    stages: Vec<Stage<'a>>,
    window: usize,
    _item: PhantomData<fn(T) -> T>,
}

/// The marker of a pipeline that ends in a sink: the only kind that can [`run`](Pipeline::run).
#[derive(Debug)]
pub enum Sunk {}

impl<T> std::fmt::Debug for Pipeline<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("stages", &self.stages)
            .field("window", &self.window)
            .finish()
    }
}

/// One stage: its name, its rank count, and its work with the item types erased (items
/// travel as bytes between stages).
pub(crate) struct Stage<'a> {
    name: String,
    ranks: usize,
    body: Body<'a>,
}

impl std::fmt::Debug for Stage<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({} ranks)", self.name, self.ranks)
    }
}

/// A stage's work: a source produces into its emitter; a stage (or sink) takes one encoded
/// item at a time. `Err` is a failure message.
pub(crate) enum Body<'a> {
    Source(Box<SourceFn<'a>>),
    Stage(Box<StageFn<'a>>),
}

/// A source's work: produce every item.
pub(crate) type SourceFn<'a> =
    dyn FnMut(&mut emitter::Outlet<'_>) -> std::result::Result<(), String> + 'a;

/// A stage's work on one encoded item.
pub(crate) type StageFn<'a> =
    dyn FnMut(&[u8], &mut emitter::Outlet<'_>) -> std::result::Result<(), String> + 'a;

impl<'a> Pipeline<'a, ()> {
    /// Starts a pipeline on `comm` with a source stage of `ranks` ranks: each of them calls
    /// `produce` once, which emits items until it returns (see [`Emitter::stage_rank`] to
    /// split the sources' work). Collective: duplicates `comm`, so the pipeline's messages
    /// never meet the program's.
    pub fn source<T, F>(comm: &Comm, name: &str, ranks: usize, mut produce: F) -> Pipeline<'a, T>
    where
        T: Serialize,
        F: FnMut(&mut Emitter<'_, '_, T>) + 'a,
    {
        let body = Body::Source(Box::new(move |outlet: &mut emitter::Outlet<'_>| {
            let mut out = Emitter::new(outlet);
            crate::error::catch_task_panic(|| produce(&mut out))
                .map_err(|p| crate::farm::panic_text(p.as_ref()))?;
            out.into_result()
        }));
        Pipeline {
            comm: comm.duplicate(),
            stages: vec![Stage {
                name: name.to_owned(),
                ranks,
                body,
            }],
            window: DEFAULT_WINDOW,
            _item: PhantomData,
        }
    }
}

impl<'a, T: DeserializeOwned + 'a> Pipeline<'a, T> {
    /// Items a rank may have unconsumed at each rank of the next stage (at least 1; 8 by
    /// default): more hides more latency and jitter, at more memory per link.
    pub fn window(mut self, items: usize) -> Self {
        self.window = items.max(1);
        self
    }

    /// Adds a stage on `ranks` ranks that maps every item with `f`.
    pub fn stage<U, F>(self, name: &str, ranks: usize, mut f: F) -> Pipeline<'a, U>
    where
        U: Serialize,
        F: FnMut(T) -> U + 'a,
    {
        self.stage_with(name, ranks, move |item, out| {
            out.emit(f(item));
        })
    }

    /// Adds a stage whose `f` may fail: an `Err` stops the pipeline with the stage, item and
    /// error named on every rank.
    pub fn try_stage<U, E, F>(self, name: &str, ranks: usize, mut f: F) -> Pipeline<'a, U>
    where
        U: Serialize,
        E: Display,
        F: FnMut(T) -> std::result::Result<U, E> + 'a,
    {
        self.push_stage(name, ranks, move |item, out| {
            let mapped = f(item).map_err(|e| e.to_string())?;
            out.emit(mapped);
            Ok(())
        })
    }

    /// Adds a stage that emits any number of items per input item (none: a filter; several:
    /// a splitter), and may route them by key with [`Emitter::emit_to`].
    pub fn stage_with<U, F>(self, name: &str, ranks: usize, mut f: F) -> Pipeline<'a, U>
    where
        U: Serialize,
        F: FnMut(T, &mut Emitter<'_, '_, U>) + 'a,
    {
        self.push_stage(name, ranks, move |item, out| {
            f(item, out);
            Ok(())
        })
    }

    /// Ends the pipeline with a stage on `ranks` ranks that consumes every item.
    pub fn sink<F>(self, name: &str, ranks: usize, mut f: F) -> Pipeline<'a, Sunk>
    where
        F: FnMut(T) + 'a,
    {
        self.push_stage(name, ranks, move |item, _: &mut Emitter<'_, '_, ()>| {
            f(item);
            Ok(())
        })
        .retype()
    }

    /// The same stages with another item type (for the marker of a finished pipeline).
    fn retype<V>(self) -> Pipeline<'a, V> {
        Pipeline {
            comm: self.comm,
            stages: self.stages,
            window: self.window,
            _item: PhantomData,
        }
    }

    fn push_stage<U, F>(mut self, name: &str, ranks: usize, mut f: F) -> Pipeline<'a, U>
    where
        U: Serialize,
        F: FnMut(T, &mut Emitter<'_, '_, U>) -> std::result::Result<(), String> + 'a,
    {
        let body = Body::Stage(Box::new(
            move |bytes: &[u8], outlet: &mut emitter::Outlet<'_>| {
                let item: T = crate::comm::wire::decode(bytes).map_err(|e| e.to_string())?;
                let mut out = Emitter::new(outlet);
                crate::error::catch_task_panic(|| f(item, &mut out))
                    .map_err(|p| crate::farm::panic_text(p.as_ref()))??;
                out.into_result()
            },
        ));
        self.stages.push(Stage {
            name: name.to_owned(),
            ranks,
            body,
        });
        self.retype()
    }
}

impl Pipeline<'_, Sunk> {
    /// Runs the pipeline: this rank runs its stage until its input ends, then every rank
    /// shares the statistics. Collective.
    ///
    /// # Errors
    /// `Disagreement` if ranks built different pipelines (stage names, rank counts, window);
    /// `RankCount` if the stages' rank counts do not add up to the communicator's size (on
    /// more than one rank); `TaskFailed` if a stage failed on an item (the same error on
    /// every rank).
    pub fn run(self) -> Result<PipelineStats> {
        run::run(self.comm, self.stages, self.window)
    }
}
