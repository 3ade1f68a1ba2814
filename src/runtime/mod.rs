//! The [`Spmd`] context: MPI initialisation, the world communicator, the rank's rayon pool and
//! the panic policy.
//!
//! One `Spmd` lives for the whole program: create it first thing in `main`, keep it until
//! the end; dropping it finalises MPI.
//!
//! ```no_run
//! use spmd::Spmd;
//!
//! fn main() -> spmd::Result<()> {
//!     let spmd = Spmd::init()?; // funneled thread level, rayon pool sized to this rank's cores
//!     let world = spmd.world();
//!     let mine = (world.rank() + 1) as u64;
//!     let total = world.all_reduce(mine, spmd::Op::Sum);
//!     if spmd.is_root() {
//!         println!("{} ranks x {} threads, total {total}", spmd.size(), spmd.threads());
//!     }
//!     Ok(())
//! }
//! ```
//!
//! # Threads per rank
//! The global rayon pool gets, in order of precedence: the count given to
//! [`SpmdBuilder::threads`]; the environment variable `SPMD_NUM_THREADS`; otherwise the CPUs in
//! this process's affinity mask divided by the number of ranks on the same node that have the
//! *same* mask. So under `mpirun` with core binding each rank gets the cores it is bound to,
//! and with `--bind-to none` the node's cores are shared out so ranks × threads never exceeds
//! them.
//!
//! # Panics end the job
//! With more than one rank, a panic anywhere (the main thread, a rayon closure, any thread)
//! prints the panic message and the rank, then calls `MPI_Abort`, so the other ranks stop
//! within seconds instead of hanging in a collective or in `MPI_Finalize`. The job's exit code
//! is then non-zero (101). This also applies to panics that user code later catches with
//! `catch_unwind`. A single-rank run unwinds as any Rust program does.
//!
//! A panic inside a user reduction operation (`all_reduce_with` and friends), which MPI calls
//! from inside the collective, ends the job the same way.
//!
//! # Watchdog
//! `SPMD_WATCHDOG=<seconds>` turns on a per-rank [`watchdog`]: a rank that stays inside one
//! `spmd` communication longer than the limit prints which one, then the job is aborted with
//! exit code [`watchdog::WATCHDOG_EXIT_CODE`]. Off by default.
//!
//! [`watchdog`]: crate::comm::watchdog
//! [`watchdog::WATCHDOG_EXIT_CODE`]: crate::comm::watchdog::WATCHDOG_EXIT_CODE
//!
//! # Timeline traces
//! `SPMD_TRACE=trace.json` records every region, collective, wait and message of every rank
//! and writes one trace file for Perfetto UI or `chrome://tracing` when the context drops;
//! see [`trace`].
//!
//! Without `mpirun` the program runs as a single rank (MPI's singleton start).

mod measure;
pub mod repeat;
pub mod trace;

use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Once;
use std::time::Duration;

use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
pub use mpi::Threading;

use crate::comm::{watchdog, Comm};
use crate::error::{Error, ErrorKind, Result};
use crate::timing::{NodeInfo, Profiler, RegionGuard};

/// The environment variable that sets the number of rayon threads per rank.
pub const THREADS_ENV: &str = "SPMD_NUM_THREADS";

/// The exit code of a job that a panic ended.
pub const PANIC_EXIT_CODE: i32 = 101;

/// The running SPMD program: MPI, the world communicator and this rank's thread pool.
pub struct Spmd {
    world: Comm,
    threading: Threading,
    threads: usize,
    node: NodeInfo,
    /// The timeline being recorded, when tracing is on.
    trace: Option<trace::Session>,
    // Declared last so it drops last: dropping the universe finalises MPI.
    _universe: Universe,
}

impl Drop for Spmd {
    fn drop(&mut self) {
        self.write_trace_at_exit();
    }
}

impl std::fmt::Debug for Spmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spmd")
            .field("rank", &self.rank())
            .field("size", &self.size())
            .field("threading", &self.threading)
            .field("threads", &self.threads)
            .finish()
    }
}

/// Options for [`Spmd`]; start with [`Spmd::builder`].
#[derive(Clone, Debug)]
pub struct SpmdBuilder {
    threading: Threading,
    threads: Option<usize>,
    wait_separation: bool,
    min_ranks: usize,
    trace: Option<PathBuf>,
    trace_events: Option<usize>,
}

impl Spmd {
    /// Initialises MPI at the funneled thread level with default options.
    ///
    /// # Errors
    /// As [`SpmdBuilder::init`].
    pub fn init() -> Result<Spmd> {
        Spmd::builder().init()
    }

    /// Options: thread level and threads per rank.
    pub fn builder() -> SpmdBuilder {
        SpmdBuilder {
            threading: Threading::Funneled,
            threads: None,
            wait_separation: false,
            min_ranks: 1,
            trace: None,
            trace_events: None,
        }
    }

    /// The world communicator, with the typed collectives.
    pub fn world(&self) -> &Comm {
        &self.world
    }

    /// This process's rank in the world.
    pub fn rank(&self) -> usize {
        self.world.rank()
    }

    /// The number of ranks in the world.
    pub fn size(&self) -> usize {
        self.world.size()
    }

    /// The conventional root rank, 0.
    pub fn root(&self) -> usize {
        0
    }

    /// Whether this process is the root rank.
    pub fn is_root(&self) -> bool {
        self.rank() == self.root()
    }

    /// The thread level MPI provides (at least the one requested).
    pub fn threading(&self) -> Threading {
        self.threading
    }

    /// The number of rayon threads this rank runs.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// This rank's profiler: regions, compute/comm totals; see [`crate::timing`].
    pub fn profiler(&self) -> &Profiler {
        self.world.profiler()
    }

    /// Opens a compute region named `name` until the guard drops (see [`Profiler::region`]).
    pub fn region(&self, name: &'static str) -> RegionGuard<'_> {
        self.profiler().compute(name)
    }

    /// Wraps an rsmpi communicator (e.g. one made with rsmpi's topology calls) as a [`Comm`]
    /// whose helpers record into this context's profiler.
    pub fn comm_from_raw(&self, raw: SimpleCommunicator) -> Comm {
        Comm::with_profiler(raw, self.world.shared_profiler())
    }

    /// The name of the node this rank runs on.
    pub fn processor_name(&self) -> String {
        self.node.name.clone()
    }

    /// This rank's node: its name, online cores, and the ranks and threads of the job there.
    pub fn node(&self) -> &NodeInfo {
        &self.node
    }
}

impl SpmdBuilder {
    /// The MPI thread level to request (default [`Threading::Funneled`]: threads may exist, only
    /// the main thread calls MPI, which is how rayon kernels and `spmd` collectives combine).
    pub fn threading(mut self, threading: Threading) -> SpmdBuilder {
        self.threading = threading;
        self
    }

    /// The number of rayon threads for this rank, overriding `SPMD_NUM_THREADS` and the
    /// affinity-derived default.
    pub fn threads(mut self, threads: usize) -> SpmdBuilder {
        self.threads = Some(threads);
        self
    }

    /// Whether collectives separate waiting for other ranks from transfer (default off); see
    /// [`Profiler::set_wait_separation`].
    pub fn wait_separation(mut self, on: bool) -> SpmdBuilder {
        self.wait_separation = on;
        self
    }

    /// The fewest ranks the program can run on (default 1). With fewer — typically a program
    /// for several ranks started without `mpirun` — [`init`](Self::init) returns a
    /// [`ErrorKind::RankCount`] error on every rank, saying how to start it, instead of the
    /// program failing later in a less obvious way.
    pub fn min_ranks(mut self, ranks: usize) -> SpmdBuilder {
        self.min_ranks = ranks;
        self
    }

    /// Records a timeline trace of the run and writes it to `path` (Chrome Trace Event JSON,
    /// for Perfetto UI or `chrome://tracing`) when the context drops, overriding
    /// `SPMD_TRACE`; see [`trace`].
    pub fn trace(mut self, path: impl Into<PathBuf>) -> SpmdBuilder {
        self.trace = Some(path.into());
        self
    }

    /// How many events each rank's trace buffer keeps (default
    /// [`DEFAULT_TRACE_EVENTS`](crate::timing::DEFAULT_TRACE_EVENTS)), overriding
    /// `SPMD_TRACE_EVENTS`. Events past it are counted, not kept.
    pub fn trace_events(mut self, events: usize) -> SpmdBuilder {
        self.trace_events = Some(events);
        self
    }

    /// Initialises MPI, sizes the global rayon pool and installs the panic policy.
    ///
    /// # Errors
    /// - [`ErrorKind::Init`]: MPI was already initialised in this process.
    /// - [`ErrorKind::ThreadLevel`]: MPI provides a lower thread level than requested.
    /// - [`ErrorKind::RankCount`]: fewer ranks than [`min_ranks`](Self::min_ranks).
    /// - [`ErrorKind::Config`]: zero threads requested, `SPMD_NUM_THREADS` is not a positive
    ///   integer, `SPMD_WATCHDOG` is not a positive number of seconds, or the trace settings
    ///   are unusable (see [`trace`]).
    /// - [`ErrorKind::ThreadPool`]: the global rayon pool was already built with another size.
    pub fn init(self) -> Result<Spmd> {
        let requested_threads = match self.threads {
            Some(0) => {
                return Err(Error::new(
                    ErrorKind::Config,
                    "the number of threads per rank must be at least 1, found 0",
                ))
            }
            Some(n) => Some(n),
            None => threads_from_env()?,
        };
        // Read before MPI starts: a singleton start sets the launcher's variables itself.
        let launched = started_by_launcher();
        let (universe, provided) =
            mpi::initialize_with_threading(self.threading).ok_or_else(init_refused)?;
        let world = Comm::world(Rc::new(Profiler::new()));
        let rank = world.rank();
        check_thread_level(self.threading, provided).map_err(|e| e.on_rank(rank))?;
        check_rank_count(self.min_ranks, world.size(), launched).map_err(|e| e.on_rank(rank))?;
        install_panic_policy(rank, world.size());
        if let Some(limit) = watchdog::limit_from_env().map_err(|e| e.on_rank(rank))? {
            watchdog::start(limit, rank, world.size());
        }
        let threads = match requested_threads {
            Some(n) => n,
            None => threads_from_affinity(&world),
        };
        build_rayon_pool(threads, rank).map_err(|e| e.on_rank(rank))?;
        let node = node_info(&world, threads);
        let trace = match trace::Settings::resolve(self.trace, self.trace_events) {
            Ok(Some(settings)) => {
                Some(trace::Session::start(&world, settings).map_err(|e| e.on_rank(rank))?)
            }
            Ok(None) => None,
            Err(e) => return Err(e.on_rank(rank)),
        };
        // The clock starts now: start-up is not the program's work.
        world.profiler().reset();
        world.profiler().set_wait_separation(self.wait_separation);
        Ok(Spmd {
            world,
            threading: provided,
            threads,
            node,
            trace,
            _universe: universe,
        })
    }
}

/// Why MPI could not be initialised: it runs already, or it ran and was finalised (when the
/// first `Spmd` was dropped), and MPI can be initialised only once per process.
fn init_refused() -> Error {
    let message = if mpi::environment::is_finalized() {
        "MPI cannot be initialised again: it was finalised when the first Spmd context was \
         dropped, and MPI allows one initialisation per process; keep one Spmd for the whole \
         program"
    } else {
        "MPI is already initialised in this process: create one Spmd context and pass it (or \
         its communicators) around"
    };
    Error::new(ErrorKind::Init, message)
}

/// `ThreadLevel` error when MPI provides less than was asked for (ordered Single < Funneled <
/// Serialized < Multiple).
fn check_thread_level(requested: Threading, provided: Threading) -> Result<()> {
    if provided >= requested {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::ThreadLevel,
        format!(
            "requested MPI thread level {requested:?}, but the MPI library provides only \
             {provided:?}; ask for less with SpmdBuilder::threading, or use an MPI built with \
             thread support"
        ),
    ))
}

/// `RankCount` error when the world has fewer than `min` ranks.
fn check_rank_count(min: usize, size: usize, launched: bool) -> Result<()> {
    if size >= min {
        return Ok(());
    }
    let how = if launched {
        format!("start it with `mpirun -n {min}` or more")
    } else {
        format!(
            "it was started without mpirun, so it runs as one rank: start it as \
             `mpirun -n {min} <program>`"
        )
    };
    Err(Error::new(
        ErrorKind::RankCount,
        format!("this program needs at least {min} ranks, but runs on {size}; {how}"),
    ))
}

/// Whether a launcher (mpirun/mpiexec of Open MPI or MPICH, PMIx, Slurm) started this process.
fn started_by_launcher() -> bool {
    [
        "OMPI_COMM_WORLD_SIZE",
        "PMI_SIZE",
        "PMI_RANK",
        "PMIX_RANK",
        "SLURM_PROCID",
    ]
    .iter()
    .any(|v| std::env::var_os(v).is_some())
}

fn threads_from_env() -> Result<Option<usize>> {
    match std::env::var(THREADS_ENV) {
        Err(_) => Ok(None),
        Ok(text) => match text.trim().parse::<usize>() {
            Ok(n) if n > 0 => Ok(Some(n)),
            _ => Err(Error::new(
                ErrorKind::Config,
                format!("{THREADS_ENV} must be a positive integer, found {text:?}"),
            )),
        },
    }
}

/// The CPUs this process may run on (its affinity mask), as a sorted list. Outside Linux,
/// where there is no affinity mask to read, every CPU the OS reports.
#[cfg(target_os = "linux")]
pub fn affinity_cpus() -> Vec<usize> {
    // SAFETY: `cpu_set_t` is plain data for which all-zero bytes are a valid (empty) set, and
    // `sched_getaffinity` writes at most `size_of::<cpu_set_t>()` bytes into it.
    let mask = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return fallback_cpus();
        }
        set
    };
    let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `cpu` is below CPU_SETSIZE, the capacity of the set.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &mask) })
        .collect();
    if cpus.is_empty() {
        fallback_cpus()
    } else {
        cpus
    }
}

/// The CPUs this process may run on: outside Linux, every CPU the OS reports.
#[cfg(not(target_os = "linux"))]
pub fn affinity_cpus() -> Vec<usize> {
    fallback_cpus()
}

fn fallback_cpus() -> Vec<usize> {
    (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect()
}

/// Threads for this rank: its CPUs divided by the ranks on this node bound to the same CPUs.
fn threads_from_affinity(world: &Comm) -> usize {
    let cpus = affinity_cpus();
    // A mask fingerprint: ranks bound to the same CPUs compare equal.
    let fingerprint = cpus.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &c| {
        (h ^ c as u64).wrapping_mul(0x100_0000_01b3)
    });
    let node = world.split_shared();
    let all = node.all_gather(&[fingerprint]).unwrap_or_default();
    let sharers = all.iter().filter(|&&f| f == fingerprint).count().max(1);
    (cpus.len() / sharers).max(1)
}

/// This rank's node: its name, its online CPUs, and how many ranks and threads of the job run
/// there (one small all-reduce on the node's communicator). Collective.
fn node_info(world: &Comm, threads: usize) -> NodeInfo {
    let node = world.split_shared();
    let totals = node.all_reduce(threads as u64, crate::Op::Sum);
    NodeInfo {
        name: mpi::environment::processor_name().unwrap_or_else(|_| String::from("unknown")),
        cores: online_cpus(),
        ranks: node.size(),
        threads: usize::try_from(totals).unwrap_or(usize::MAX),
    }
}

/// The CPUs the machine has online, whatever this process's affinity.
fn online_cpus() -> usize {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: sysconf has no memory-safety preconditions; it returns -1 on error.
        let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
        if online > 0 {
            return online as usize;
        }
    }
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn build_rayon_pool(threads: usize, rank: usize) -> Result<()> {
    let built = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(move |i| format!("spmd-rank{rank}-worker{i}"))
        .build_global();
    match built {
        Ok(()) => Ok(()),
        Err(_) if rayon::current_num_threads() == threads => Ok(()),
        Err(e) => Err(Error::new(
            ErrorKind::ThreadPool,
            format!(
                "wanted {threads} rayon threads, but the global rayon pool already runs {} ({e}); \
                 create the Spmd context before any rayon call",
                rayon::current_num_threads()
            ),
        )),
    }
}

/// How long a panicking rank waits after writing its notice before aborting the job. The
/// launcher forwards each rank's output through a pipe, and `MPI_Abort` tears the job down at
/// once: under MPICH's Hydra the last bytes lost that race in about one run in five (4 of 20
/// with 4 ranks on 2 cores) before this grace existed.
const ABORT_GRACE: Duration = Duration::from_millis(500);

static PANIC_HOOK: Once = Once::new();
static PANIC_RANK: AtomicUsize = AtomicUsize::new(0);
static PANIC_SIZE: AtomicUsize = AtomicUsize::new(1);
static ABORTING: AtomicBool = AtomicBool::new(false);

fn install_panic_policy(rank: usize, size: usize) {
    PANIC_RANK.store(rank, Ordering::Relaxed);
    PANIC_SIZE.store(size, Ordering::Relaxed);
    PANIC_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if crate::error::catching_task_panics() {
                let rank = PANIC_RANK.load(Ordering::Relaxed);
                let at = info
                    .location()
                    .map(|l| format!(" at {}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                eprintln!("spmd: rank {rank}: a task panicked{at}; reported as its failure");
                return;
            }
            previous(info);
            let size = PANIC_SIZE.load(Ordering::Relaxed);
            let mpi_running =
                mpi::environment::is_initialized() && !mpi::environment::is_finalized();
            // One abort per process, even if several threads panic at once.
            if size > 1 && mpi_running && !ABORTING.swap(true, Ordering::SeqCst) {
                let rank = PANIC_RANK.load(Ordering::Relaxed);
                let thread = std::thread::current();
                let notice = format!(
                    "spmd: rank {rank} of {size} panicked (thread '{}'); aborting all ranks\n",
                    thread.name().unwrap_or("unnamed")
                );
                crate::comm::abort_after_notice(&notice, ABORT_GRACE, PANIC_EXIT_CODE);
            }
        }));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lower_thread_level_is_refused_with_both_levels_named() {
        let levels = [
            Threading::Single,
            Threading::Funneled,
            Threading::Serialized,
            Threading::Multiple,
        ];
        for (i, &requested) in levels.iter().enumerate() {
            for (j, &provided) in levels.iter().enumerate() {
                let result = check_thread_level(requested, provided);
                assert_eq!(result.is_ok(), j >= i, "{requested:?} vs {provided:?}");
                if let Err(e) = result {
                    assert_eq!(e.kind(), ErrorKind::ThreadLevel);
                    assert!(e.message().contains(&format!("{requested:?}")), "{e}");
                    assert!(e.message().contains(&format!("only {provided:?}")), "{e}");
                }
            }
        }
    }

    #[test]
    fn too_few_ranks_says_how_to_start_the_program() {
        assert!(check_rank_count(2, 2, true).is_ok());
        assert!(check_rank_count(1, 1, false).is_ok());
        let alone = check_rank_count(4, 1, false).unwrap_err();
        assert_eq!(alone.kind(), ErrorKind::RankCount);
        assert!(alone.message().contains("without mpirun"), "{alone}");
        assert!(alone.message().contains("mpirun -n 4"), "{alone}");
        let few = check_rank_count(4, 3, true).unwrap_err();
        assert!(few.message().contains("runs on 3"), "{few}");
        assert!(!few.message().contains("without mpirun"), "{few}");
    }
}
