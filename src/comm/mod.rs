//! [`Comm`]: a cheap handle on a communicator (the world or a part of it) that the typed
//! collectives, arrays and plans run on.
//!
//! `Comm` wraps an rsmpi communicator and adds what the library needs: ranks and sizes as
//! `usize` (the type partitions and slices use), the switch for agreement checks (see
//! [`crate::collective`]), the default [`Par`] for arrays made on it, and the profiler that
//! times every communication.
//!
//! # A handle, not the communicator
//! Cloning a `Comm` is a reference-count increment: the clones are the *same* communicator
//! (same message space, same identity). That is how arrays hold the communicator they were
//! made on without a lifetime, and how [`unchecked`](Comm::unchecked) and
//! [`with_par`](Comm::with_par) give a differently configured view of it for free. A new
//! communicator (a new message space) comes only from [`duplicate`](Comm::duplicate),
//! [`split`](Comm::split) and [`split_shared`](Comm::split_shared); it is freed when its last
//! handle drops.
//!
//! `Comm` is neither `Send` nor `Sync`: MPI is initialised at the *funneled* thread level by
//! default, where only the thread that initialised MPI may call it, so the compiler refuses to
//! move a `Comm` (or an array holding one) into a rayon closure.
//!
//! Every `Comm` made from the [`Spmd`](crate::Spmd) context (the world, its splits and
//! duplicates) shares the context's [`Profiler`], which times every helper as communication.
//!
//! # Point-to-point and non-blocking operations
//! [`send`](Comm::send), [`receive`](Comm::receive), [`receive_into`](Comm::receive_into),
//! [`send_receive`](Comm::send_receive) and [`probe`](Comm::probe) move typed messages between
//! two ranks (ranks as `usize`, tags up to [`MAX_TAG`], any [`Source`] or [`TagFilter`]);
//! [`send_immediate`](Comm::send_immediate) and [`receive_immediate`](Comm::receive_immediate)
//! start them and return a [`Request`], as the `immediate_*` collectives do. A request owns
//! the buffers MPI works on and gives them back at [`Request::wait`]; dropping one unfinished
//! panics (see [`request`]). Overlap, step by step:
//!
//! ```no_run
//! # fn f(world: &spmd::Comm, local_norm: f64) -> spmd::Result<()> {
//! let norm = world.immediate_all_reduce(local_norm, spmd::Op::Sum); // starts, returns
//! let mut work_left = 8;
//! let mut norm = norm;
//! while work_left > 0 {
//!     work_left -= 1; // ... a chunk of work that does not need the norm ...
//!     norm.test(); // lets MPI progress the reduction between chunks
//! }
//! let total = norm.wait()?; // usually complete by now
//! # Ok(())
//! # }
//! ```
//!
//! MPI moves non-blocking messages only inside MPI calls: neither Open MPI nor MPICH runs a
//! progress thread by default. Calling `test` between chunks of the work is the strategy this
//! library takes (the split-phase halo exchange does it for its users through
//! [`HaloExchange::test`](crate::array::HaloExchange::test)); the performance docs measure
//! what it buys on each MPI.

pub(crate) mod clock;
pub(crate) mod ffi;
pub(crate) mod file;
pub mod idle;
pub(crate) mod neighbour;
mod p2p;
pub mod request;
pub mod watchdog;
pub(crate) mod wire;

pub use p2p::{Source, Status, TagFilter, MAX_TAG};
pub(crate) use p2p::{HALO_TAGS, LIBRARY_TAGS};
pub use request::{wait_all, Request};

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::HashMap;
use std::marker::PhantomData;
use std::rc::Rc;

use mpi::topology::{Color, Communicator, Group, SimpleCommunicator};

use crate::par::Par;
use crate::timing::{EventKind, Profiler, RegionGuard};
use watchdog::Watch;

/// A handle on a communicator with typed collective helpers; see the [module docs](self).
#[derive(Clone)]
pub struct Comm {
    shared: Rc<Shared>,
    agreement_checks: bool,
    par: Par,
    /// Makes `Comm` neither `Send` nor `Sync` (MPI calls stay on the initialising thread).
    _funneled: PhantomData<*const ()>,
}

/// What every handle on one communicator shares.
struct Shared {
    raw: SimpleCommunicator,
    rank: usize,
    size: usize,
    profiler: Rc<Profiler>,
    /// Agreement checks entered on this communicator, by any handle: every rank counts the
    /// same, so the number is one of the values the check compares.
    checked_calls: Cell<u64>,
    /// The world rank of every rank of the communicator (made at the first message).
    world_ranks: OnceCell<Vec<u32>>,
    /// The communicator's number in a trace, the same on all its members, so that the
    /// trace pairs its sends and receives apart from other communicators' (0 when the
    /// communicator was made while no trace was recorded).
    channel: u64,
}

thread_local! {
    /// How many communicators of each group (by its world ranks' fingerprint) this process
    /// made while tracing: the members of a communicator make it collectively, in the same
    /// order, so (group, count) numbers it alike on all of them.
    static CHANNELS: RefCell<HashMap<u64, u64>> = RefCell::new(HashMap::new());
}

/// The world rank of each rank of `raw` (`u32::MAX` for none, which MPI never gives).
fn world_ranks_of(raw: &SimpleCommunicator) -> Vec<u32> {
    let ranks: Vec<i32> = (0..raw.size()).collect();
    let world = SimpleCommunicator::world().group();
    raw.group()
        .translate_ranks(&ranks, &world)
        .into_iter()
        .map(|r| r.and_then(|r| u32::try_from(r).ok()).unwrap_or(u32::MAX))
        .collect()
}

/// A number for a new communicator over `world_ranks` that its other members compute alike.
fn channel_of(world_ranks: &[u32]) -> u64 {
    let group = world_ranks.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &r| {
        (h ^ u64::from(r)).wrapping_mul(0x100_0000_01b3)
    });
    let made = CHANNELS.with(|c| {
        let mut counts = c.borrow_mut();
        let n = counts.entry(group).or_insert(0);
        *n += 1;
        *n
    });
    // Never 0, the number of communicators made while not tracing.
    (group ^ made.wrapping_mul(0x9e37_79b9_7f4a_7c15)).max(1)
}

impl std::fmt::Debug for Comm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Comm")
            .field("rank", &self.rank())
            .field("size", &self.size())
            .field("agreement_checks", &self.agreement_checks)
            .field("par", &self.par)
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
        let world_ranks = OnceCell::new();
        let mut channel = 0;
        if profiler.tracing() {
            let ranks = world_ranks_of(&raw);
            channel = channel_of(&ranks);
            let _ = world_ranks.set(ranks);
        }
        Comm {
            shared: Rc::new(Shared {
                raw,
                rank,
                size,
                profiler,
                checked_calls: Cell::new(0),
                world_ranks,
                channel,
            }),
            agreement_checks: true,
            par: Par::default(),
            _funneled: PhantomData,
        }
    }

    /// The world communicator of an initialised MPI. Prefer [`crate::Spmd::world`].
    pub(crate) fn world(profiler: Rc<Profiler>) -> Comm {
        Comm::with_profiler(SimpleCommunicator::world(), profiler)
    }

    /// The profiler this communicator's helpers record into.
    pub fn profiler(&self) -> &Profiler {
        &self.shared.profiler
    }

    pub(crate) fn shared_profiler(&self) -> Rc<Profiler> {
        Rc::clone(&self.shared.profiler)
    }

    /// Opens the comm region of a library helper moving `bytes` payload bytes on this rank,
    /// and tells the watchdog (when on) that this rank is inside communication `name`.
    /// Local work of the helper (reductions of its own data) must happen outside the guard.
    pub(crate) fn timed(&self, name: &'static str, bytes: usize) -> CommGuard<'_> {
        let watch = Watch::enter(name, self.size());
        let region = self.profiler().library_comm(name, bytes, || {
            mpi::collective::CommunicatorCollectives::barrier(&self.shared.raw);
        });
        CommGuard {
            region,
            _watch: watch,
        }
    }

    /// Opens the comm region of the wait of a non-blocking operation posted at profiler tick
    /// `posted_at`, and marks this rank as waiting on it for the watchdog.
    pub(crate) fn timed_wait(&self, names: request::OpNames, posted_at: u64) -> CommGuard<'_> {
        let watch = Watch::enter(names.wait, self.size());
        let region = self.profiler().library_wait(names.op, posted_at);
        CommGuard {
            region,
            _watch: watch,
        }
    }

    /// The world rank of this communicator's rank `rank`.
    pub(crate) fn world_rank_of(&self, rank: usize) -> u32 {
        let ranks = self
            .shared
            .world_ranks
            .get_or_init(|| world_ranks_of(&self.shared.raw));
        ranks.get(rank).copied().unwrap_or(u32::MAX)
    }

    /// Records a point-to-point message of `operation` (`Send` to or `Receive` from `peer`,
    /// a rank of this communicator) in the profiler: the communication matrix counts sends,
    /// the trace shows both ends and pairs them.
    #[inline]
    pub(crate) fn note_message(
        &self,
        operation: &'static str,
        kind: EventKind,
        peer: usize,
        tag: u32,
        bytes: usize,
    ) {
        let profiler = self.profiler();
        if profiler.enabled() {
            let peer = self.world_rank_of(peer);
            profiler.record_message(operation, kind, peer, tag, self.shared.channel, bytes);
        }
    }

    /// Counts one more agreement check on this communicator and returns its number (from 1).
    pub(crate) fn next_checked_call(&self) -> u64 {
        let calls = &self.shared.checked_calls;
        calls.set(calls.get() + 1);
        calls.get()
    }

    /// This process's rank in the communicator, `0..size()`.
    pub fn rank(&self) -> usize {
        self.shared.rank
    }

    /// The number of ranks in the communicator.
    pub fn size(&self) -> usize {
        self.shared.size
    }

    /// Whether this process is rank `rank`.
    pub fn is_rank(&self, rank: usize) -> bool {
        self.rank() == rank
    }

    /// The rsmpi communicator, for anything the helpers do not cover. Calls made on it are
    /// neither timed nor watched.
    pub fn raw(&self) -> &SimpleCommunicator {
        &self.shared.raw
    }

    /// Whether `self` and `other` are handles on the same communicator (not merely one of the
    /// same size or group: a duplicate is another communicator). Local, no communication.
    pub fn same_as(&self, other: &Comm) -> bool {
        Rc::ptr_eq(&self.shared, &other.shared)
    }

    /// Whether collectives on this handle check that all ranks passed agreeing arguments
    /// before moving data (on by default).
    pub fn agreement_checks(&self) -> bool {
        self.agreement_checks
    }

    /// This communicator with agreement checks off: a cheap handle on the same communicator,
    /// for hot loops whose arguments are known to agree.
    ///
    /// ```no_run
    /// # fn f(world: &spmd::Comm) -> spmd::Result<()> {
    /// let fast = world.unchecked();
    /// let (send, mut receive) = ([1.0_f64; 128], [0.0_f64; 128]);
    /// for _ in 0..1000 {
    ///     fast.all_reduce_into(&send, &mut receive, spmd::Op::Sum)?;
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// A check costs one small `MPI_Allreduce` per collective that has something to agree on.
    /// Without it, an argument error that only some ranks can see (e.g. the root's buffer
    /// length) is still reported on those ranks, but the others may then wait forever (the
    /// [`watchdog`] names them). Every rank must use the same setting for a call.
    /// Arrays made on an unchecked handle skip their checks too.
    pub fn unchecked(&self) -> Comm {
        self.with_agreement_checks(false)
    }

    /// This communicator with agreement checks on or off (a cheap handle on the same
    /// communicator); see [`unchecked`](Self::unchecked).
    pub fn with_agreement_checks(&self, on: bool) -> Comm {
        Comm {
            agreement_checks: on,
            ..self.clone()
        }
    }

    /// Switches agreement checks on or off for this handle (other handles keep theirs).
    pub fn set_agreement_checks(&mut self, on: bool) {
        self.agreement_checks = on;
    }

    /// The default [`Par`] of arrays made on this handle ([`Par::Rayon`] unless set).
    pub fn par(&self) -> Par {
        self.par
    }

    /// This communicator with arrays made on it running their local kernels as `par` says
    /// (a cheap handle on the same communicator).
    pub fn with_par(&self, par: Par) -> Comm {
        Comm {
            par,
            ..self.clone()
        }
    }

    /// Blocks until every rank of the communicator has called `barrier`.
    pub fn barrier(&self) {
        let _timer = self.timed("barrier", 0);
        mpi::collective::CommunicatorCollectives::barrier(self.raw());
    }

    /// Splits the communicator into groups of ranks that pass the same `color`, ordered by
    /// `key` (ties by current rank). A rank that passes `None` takes part in no group and
    /// gets `None`. The new communicators keep this handle's checks and `Par`. Collective:
    /// every rank must call it.
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
        let _timer = self.timed("split", 0);
        self.raw()
            .split_by_color_with_key(color, key)
            .map(|raw| self.inherit(raw))
    }

    /// The ranks that share memory with this one (the same node), as a communicator.
    /// Collective.
    pub fn split_shared(&self) -> Comm {
        let key = i32::try_from(self.rank()).unwrap_or(i32::MAX);
        let _timer = self.timed("split_shared", 0);
        self.inherit(self.raw().split_shared(key))
    }

    /// A new communicator with the same ranks and its own message space. Collective.
    pub fn duplicate(&self) -> Comm {
        let _timer = self.timed("duplicate", 0);
        self.inherit(self.raw().duplicate())
    }

    fn inherit(&self, raw: SimpleCommunicator) -> Comm {
        Comm {
            agreement_checks: self.agreement_checks,
            par: self.par,
            ..Comm::with_profiler(raw, self.shared_profiler())
        }
    }

    /// Ends every process of the job with `code` (`MPI_Abort`).
    pub fn abort(&self, code: i32) -> ! {
        self.raw().abort(code)
    }
}

/// Writes `notice` to stderr in one unbuffered write, waits `grace` so the launcher can
/// forward it (the launcher relays each rank's output through a pipe, and `MPI_Abort` ends the
/// job at once, which can lose the last bytes), then ends every process of the job with
/// `code`.
pub(crate) fn abort_after_notice(notice: &str, grace: std::time::Duration, code: i32) -> ! {
    let mut stderr = std::io::stderr().lock();
    let _ = std::io::Write::write_all(&mut stderr, notice.as_bytes());
    let _ = std::io::Write::flush(&mut stderr);
    drop(stderr);
    std::thread::sleep(grace);
    SimpleCommunicator::world().abort(code)
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
