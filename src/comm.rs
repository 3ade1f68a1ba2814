//! [`Comm`]: a communicator (the world or a part of it) that the typed collectives run on.
//!
//! `Comm` wraps an rsmpi communicator and adds what the helpers need: ranks and sizes as
//! `usize` (the type partitions and slices use) and the switch for agreement checks (see
//! [`crate::collective`]). It is neither `Send` nor `Sync`: MPI is initialised at the
//! *funneled* thread level by default, where only the thread that initialised MPI may call it,
//! so the compiler refuses to move a `Comm` into a rayon closure.
//!
//! Every `Comm` made from the [`Spmd`](crate::Spmd) context (the world, its splits and
//! duplicates) shares the context's [`Profiler`], which times every helper as communication.

use std::marker::PhantomData;
use std::rc::Rc;

use mpi::topology::{Color, Communicator, SimpleCommunicator};

use crate::runtime::watchdog::Watch;
use crate::timing::{Profiler, RegionGuard};

/// A communicator with typed collective helpers; see the [module docs](self).
pub struct Comm {
    raw: SimpleCommunicator,
    rank: usize,
    size: usize,
    agreement_checks: bool,
    profiler: Rc<Profiler>,
    /// Makes `Comm` neither `Send` nor `Sync` (MPI calls stay on the initialising thread).
    _funneled: PhantomData<*const ()>,
}

impl std::fmt::Debug for Comm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Comm")
            .field("rank", &self.rank)
            .field("size", &self.size)
            .field("agreement_checks", &self.agreement_checks)
            .finish()
    }
}

impl Comm {
    /// Wraps an rsmpi communicator. Agreement checks start switched on. The `Comm` gets a
    /// profiler of its own; use [`Spmd::comm_from_raw`](crate::Spmd::comm_from_raw) to have
    /// its communication counted in the program's report.
    pub fn from_raw(raw: SimpleCommunicator) -> Comm {
        Comm::with_profiler(raw, Rc::new(Profiler::new()))
    }

    pub(crate) fn with_profiler(raw: SimpleCommunicator, profiler: Rc<Profiler>) -> Comm {
        let rank = usize::try_from(raw.rank()).expect("MPI ranks are non-negative");
        let size = usize::try_from(raw.size()).expect("MPI sizes are positive");
        Comm {
            raw,
            rank,
            size,
            agreement_checks: true,
            profiler,
            _funneled: PhantomData,
        }
    }

    /// The world communicator of an initialised MPI. Prefer [`crate::Spmd::world`].
    pub(crate) fn world(profiler: Rc<Profiler>) -> Comm {
        Comm::with_profiler(SimpleCommunicator::world(), profiler)
    }

    /// The profiler this communicator's helpers record into.
    pub fn profiler(&self) -> &Profiler {
        &self.profiler
    }

    pub(crate) fn shared_profiler(&self) -> Rc<Profiler> {
        Rc::clone(&self.profiler)
    }

    /// Opens the comm region of a library helper moving `bytes` payload bytes on this rank,
    /// and tells the watchdog (when on) that this rank is inside communication `name`.
    pub(crate) fn timed(&self, name: &'static str, bytes: usize) -> CommGuard<'_> {
        let watch = Watch::enter(name, self.size);
        let region = self.profiler.library_comm(name, bytes, || {
            mpi::collective::CommunicatorCollectives::barrier(&self.raw);
        });
        CommGuard {
            region,
            _watch: watch,
        }
    }

    /// This process's rank in the communicator, `0..size()`.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The number of ranks in the communicator.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Whether this process is `root`.
    pub fn is_rank(&self, root: usize) -> bool {
        self.rank == root
    }

    /// The rsmpi communicator, for anything the helpers do not cover.
    pub fn raw(&self) -> &SimpleCommunicator {
        &self.raw
    }

    /// Whether collectives check that all ranks passed agreeing arguments before moving data.
    pub fn agreement_checks(&self) -> bool {
        self.agreement_checks
    }

    /// Switches agreement checks on or off (on by default).
    ///
    /// A check costs one small `MPI_Allreduce` (16 `i64`s) per collective that has something
    /// to agree on. Switch checks off in hot loops whose arguments are known to agree; with
    /// checks off, an argument error that only some ranks can see (e.g. the root's buffer
    /// length) is still reported on those ranks, but the others may then wait forever.
    /// Every rank must use the same setting.
    pub fn set_agreement_checks(&mut self, on: bool) {
        self.agreement_checks = on;
    }

    /// Blocks until every rank of the communicator has called `barrier`.
    pub fn barrier(&self) {
        let _timer = self.timed("barrier", 0);
        mpi::collective::CommunicatorCollectives::barrier(&self.raw);
    }

    /// Splits the communicator into groups of ranks that pass the same `color`, ordered by
    /// `key` (ties by current rank). A rank that passes `None` takes part in no group and
    /// gets `None`. Collective: every rank must call it.
    ///
    /// # Panics
    /// If `color > i32::MAX` (MPI colours are non-negative `int`s).
    #[track_caller]
    pub fn split(&self, color: Option<u32>, key: i32) -> Option<Comm> {
        let color = match color {
            Some(c) => Color::with_value(
                i32::try_from(c)
                    .unwrap_or_else(|_| panic!("split colour {c} is above MPI's limit i32::MAX")),
            ),
            None => Color::undefined(),
        };
        self.raw
            .split_by_color_with_key(color, key)
            .map(|raw| self.inherit(raw))
    }

    /// The ranks that share memory with this one (the same node), as a communicator.
    /// Collective.
    pub fn split_shared(&self) -> Comm {
        let key = i32::try_from(self.rank).unwrap_or(i32::MAX);
        self.inherit(self.raw.split_shared(key))
    }

    /// A copy of this communicator with its own message space. Collective.
    pub fn duplicate(&self) -> Comm {
        self.inherit(self.raw.duplicate())
    }

    fn inherit(&self, raw: SimpleCommunicator) -> Comm {
        let mut comm = Comm::with_profiler(raw, self.shared_profiler());
        comm.agreement_checks = self.agreement_checks;
        comm
    }

    /// Ends every process of the job with `code` (`MPI_Abort`).
    pub fn abort(&self, code: i32) -> ! {
        self.raw.abort(code)
    }
}

/// An open library communication: its profiler region and its watchdog mark.
pub(crate) struct CommGuard<'a> {
    region: RegionGuard<'a>,
    _watch: Watch,
}

impl CommGuard<'_> {
    /// Adds payload bytes learnt during the call (e.g. received counts).
    pub(crate) fn add_bytes(&mut self, bytes: usize) {
        self.region.add_bytes(bytes);
    }
}
