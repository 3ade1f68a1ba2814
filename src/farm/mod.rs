//! A task farm: one manager rank hands out tasks on demand, every rank (the manager too)
//! runs them, results come back to the manager in task order or as they arrive.
//!
//! This is the seed's first architecture, *distribution of parallel processes*, in the
//! spirit of mpi4py's `MPIPoolExecutor.map` but SPMD: every rank calls the same method
//! (nothing is spawned, so it runs under `mpirun` and `srun` alike), the manager passes the
//! tasks and gets the results, the other ranks pass nothing and get `None`.
//!
//! ```no_run
//! # fn f(world: &spmd::Comm) -> spmd::Result<()> {
//! use spmd::farm::Farm;
//! let farm = Farm::new(world)?; // collective: every rank
//! // Only the manager's tasks are read; the other ranks pass an empty list.
//! let tasks: Vec<u64> = if farm.is_manager() { (0..1000).collect() } else { Vec::new() };
//! if let Some(squares) = farm.map(tasks, |n| n * n)? {
//!     assert_eq!(squares[7], 49); // on the manager, in task order
//! }
//! println!("{}", farm.stats().expect("a farm ran"));
//! # Ok(())
//! # }
//! ```
//!
//! # How it works, and what it costs
//! - **Dynamic load balancing.** The manager keeps [`prefetch`](Farm::prefetch) messages of
//!   [`chunk`](Farm::chunk) tasks in flight to every worker; a worker that returns a chunk's
//!   results gets the next chunk. A slow worker returns less often and so gets fewer tasks;
//!   the prefetched chunk means no worker waits a round trip between two chunks.
//! - **The manager works too.** Its tasks run on a second thread of the manager rank while
//!   the rank's MPI thread hands out work, so it answers a worker within [`MAX_NAP`] even in
//!   the middle of a long task. (Tasks must therefore be `Send`, the closure `Sync`.)
//! - **Nobody spins.** Idle ranks and the manager's MPI thread wait with
//!   [`Comm::wait_for_message`], which naps between probes instead of spinning in MPI: the
//!   manager's MPI thread uses a few percent of a core at most, measured as
//!   [`FarmStats::manager_cpu_fraction`], and leaves the rest to its task thread.
//! - **Wire cost.** Tasks and results are any serde type, encoded with postcard (compact
//!   bytes, integers as varints): per chunk one message each way, plus encoding at roughly
//!   memory speed. A chunk should carry at least tens of microseconds of work; use
//!   [`chunk`](Farm::chunk) to batch small tasks. Per call, three small collectives (the
//!   set-up, the outcome and the statistics) and a communicator duplicated once per `Farm`.
//!
//! # Failures
//! A task that returns `Err` ([`try_map`](Farm::try_map)) or panics is caught on the rank
//! that ran it and reported to the manager with its index. [`map`](Farm::map) and
//! [`for_each`](Farm::for_each) stop handing out tasks at the first failure, let the tasks
//! in flight finish, and return the same `TaskFailed` error on every rank (abort);
//! [`try_map`](Farm::try_map) runs every task and returns each one's outcome (collect).
//! A panicking task still prints Rust's panic message on its rank's stderr.
//!
//! [`MAX_NAP`]: crate::comm::idle::MAX_NAP

mod manager;
mod stats;
mod worker;

use std::cell::RefCell;
use std::fmt::Display;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::comm::Comm;
use crate::error::{Error, ErrorKind, Result};

pub use stats::{FarmStats, RankWork};

/// Tags on the farm's own communicator.
const TAG_TASKS: u32 = 1;
const TAG_STOP: u32 = 2;
const TAG_RESULTS: u32 = 3;

/// A task farm over a communicator; see the [module docs](self).
#[derive(Debug)]
pub struct Farm {
    /// A duplicate of the caller's communicator: the farm's messages never meet theirs.
    comm: Comm,
    manager: usize,
    prefetch: usize,
    chunk: usize,
    last: RefCell<Option<FarmStats>>,
}

/// A task that failed: its index in the task list, the rank that ran it, and what happened
/// (the task's error, or the panic's message).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskError {
    /// The task's position in the manager's task list.
    pub index: usize,
    /// The rank that ran it.
    pub rank: usize,
    /// The error's `Display`, or the panic message.
    pub message: String,
}

impl Display for TaskError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "task {} failed on rank {}: {}",
            self.index, self.rank, self.message
        )
    }
}

impl std::error::Error for TaskError {}

impl From<TaskError> for Error {
    fn from(e: TaskError) -> Error {
        let rank = e.rank;
        Error::new(
            ErrorKind::TaskFailed,
            format!("farm: task {} failed: {}", e.index, e.message),
        )
        .on_rank(rank)
    }
}

/// What happens at the first failed task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OnFailure {
    /// Hand out no more tasks; every rank returns the first failure as an `Err`.
    Abort,
    /// Run every task; each outcome goes to the caller.
    Collect,
}

impl Farm {
    /// A farm over the ranks of `comm`, managed by rank 0, with prefetch 2 and chunks of one
    /// task. Collective: it duplicates `comm`, so the farm's messages cannot be confused with
    /// the program's own.
    ///
    /// # Errors
    /// None today; the `Result` leaves room for checks of the communicator.
    pub fn new(comm: &Comm) -> Result<Farm> {
        Ok(Farm {
            comm: comm.duplicate(),
            manager: 0,
            prefetch: 2,
            chunk: 1,
            last: RefCell::new(None),
        })
    }

    /// Makes `rank` the manager (every rank must pass the same; checked at each run).
    pub fn manager(mut self, rank: usize) -> Farm {
        self.manager = rank;
        self
    }

    /// Messages of tasks each worker holds at once (at least 1): 2 (the default) hides the
    /// round trip to the manager; more helps only when chunks are shorter than the manager's
    /// answer time. The manager's value is used.
    pub fn prefetch(mut self, messages: usize) -> Farm {
        self.prefetch = messages.max(1);
        self
    }

    /// Tasks per message (at least 1): batch tasks of a few microseconds so that messages
    /// carry enough work. The manager's value is used.
    pub fn chunk(mut self, tasks: usize) -> Farm {
        self.chunk = tasks.max(1);
        self
    }

    /// Whether this rank is the farm's manager (the one whose tasks are read).
    pub fn is_manager(&self) -> bool {
        self.comm.rank() == self.manager
    }

    /// The statistics of the last run (every rank has them): tasks, busy and idle time per
    /// rank, the manager's CPU use.
    pub fn stats(&self) -> Option<FarmStats> {
        self.last.borrow().clone()
    }

    /// Runs `f` on every task and returns the results in task order on the manager (`None`
    /// on the other ranks, whose `tasks` are not read).
    ///
    /// # Errors
    /// `TaskFailed` on every rank if a task panicked (the first failure, with its index);
    /// `InvalidRoot` if the manager is not a rank of the communicator, `Disagreement` if
    /// ranks name different managers; `RemoteError` if a message does not decode (ranks
    /// built with different task types).
    pub fn map<T, R, F, I>(&self, tasks: I, f: F) -> Result<Option<Vec<R>>>
    where
        I: IntoIterator<Item = T>,
        T: Serialize + DeserializeOwned + Send,
        R: Serialize + DeserializeOwned + Send,
        F: Fn(T) -> R + Sync,
    {
        let mut results: Vec<Option<R>> = Vec::new();
        self.for_each(tasks, f, |index, result| place(&mut results, index, result))?;
        Ok(self.is_manager().then(|| {
            results
                .into_iter()
                .map(|r| r.expect("every task has a result"))
                .collect()
        }))
    }

    /// Runs `f` on every task, even after failures, and returns each task's outcome in task
    /// order on the manager (`None` elsewhere): a task's `Err` or panic becomes its
    /// [`TaskError`].
    ///
    /// # Errors
    /// As [`map`](Farm::map), but never `TaskFailed`.
    #[allow(clippy::type_complexity)]
    pub fn try_map<T, R, E, F, I>(
        &self,
        tasks: I,
        f: F,
    ) -> Result<Option<Vec<std::result::Result<R, TaskError>>>>
    where
        I: IntoIterator<Item = T>,
        T: Serialize + DeserializeOwned + Send,
        R: Serialize + DeserializeOwned + Send,
        E: Display,
        F: Fn(T) -> std::result::Result<R, E> + Sync,
    {
        let mut outcomes: Vec<Option<std::result::Result<R, TaskError>>> = Vec::new();
        self.run(
            tasks,
            |task| f(task).map_err(|e| e.to_string()),
            OnFailure::Collect,
            |index, outcome| place(&mut outcomes, index, outcome),
        )?;
        Ok(self.is_manager().then(|| {
            outcomes
                .into_iter()
                .map(|o| o.expect("every task has an outcome"))
                .collect()
        }))
    }

    /// Runs `f` on every task and calls `on_result(index, result)` on the manager as each
    /// result arrives (in no particular order), so results can be consumed (written, merged)
    /// while the farm still runs.
    ///
    /// # Errors
    /// As [`map`](Farm::map).
    pub fn for_each<T, R, F, I, S>(&self, tasks: I, f: F, mut on_result: S) -> Result<()>
    where
        I: IntoIterator<Item = T>,
        T: Serialize + DeserializeOwned + Send,
        R: Serialize + DeserializeOwned + Send,
        F: Fn(T) -> R + Sync,
        S: FnMut(usize, R),
    {
        self.run(
            tasks,
            |task| Ok::<R, String>(f(task)),
            OnFailure::Abort,
            |index, outcome| {
                if let Ok(result) = outcome {
                    on_result(index, result);
                }
            },
        )
    }

    /// One run: agree on the set-up, manage or work, agree on the outcome, share the
    /// statistics.
    fn run<T, R, F, I>(
        &self,
        tasks: I,
        f: F,
        on_failure: OnFailure,
        mut deliver: impl FnMut(usize, std::result::Result<R, TaskError>),
    ) -> Result<()>
    where
        I: IntoIterator<Item = T>,
        T: Serialize + DeserializeOwned + Send,
        R: Serialize + DeserializeOwned + Send,
        F: Fn(T) -> std::result::Result<R, String> + Sync,
    {
        let comm = &self.comm;
        // The manager's settings for everyone; the broadcast also checks that every rank
        // names the same manager (a `Disagreement` instead of a hang).
        let mut settings = [self.prefetch as u64, self.chunk as u64];
        comm.broadcast(self.manager, &mut settings[..])?;
        let (prefetch, chunk) = (settings[0] as usize, settings[1] as usize);
        let started = std::time::Instant::now();
        let local: Result<(Option<TaskError>, RankWork)> = if self.is_manager() {
            let mut first_failure: Option<TaskError> = None;
            let manager = manager::Manager {
                comm,
                prefetch,
                chunk,
                on_failure,
            };
            manager
                .run(tasks, &f, |index, outcome| {
                    if let Err(e) = &outcome {
                        first_failure.get_or_insert_with(|| e.clone());
                    }
                    deliver(index, outcome);
                })
                .map(|work| {
                    let abort = on_failure == OnFailure::Abort;
                    (first_failure.filter(|_| abort), work)
                })
        } else {
            worker::work(comm, self.manager, &f).map(|work| (None, work))
        };
        let (outcome, mut work) = match local {
            Ok((failure, work)) => (Ok(failure), work),
            Err(e) => (Err(e), RankWork::default()),
        };
        work.wall_s = started.elapsed().as_secs_f64();
        // Every rank learns the first failure (abort) or a local error of any rank.
        let mut verdict = match &outcome {
            Ok(Some(failure)) => crate::comm::wire::encode(&Some(failure.clone()))?,
            Ok(None) => crate::comm::wire::encode(&None::<TaskError>)?,
            Err(_) => Vec::new(),
        };
        // A rank that failed outside its tasks (an MPI error) makes every rank fail.
        let mut any_failed = [0_u64];
        comm.all_reduce_into(
            &[u64::from(outcome.is_err())],
            &mut any_failed,
            crate::Op::Max,
        )?;
        if any_failed[0] != 0 {
            outcome?;
            return Err(Error::new(
                ErrorKind::RemoteError,
                "farm: another rank failed outside its tasks (see its error)",
            )
            .on_rank(comm.rank()));
        }
        comm.broadcast_vec(self.manager, &mut verdict)?;
        let failure: Option<TaskError> = crate::comm::wire::decode(&verdict)?;
        let stats = FarmStats::gather(comm, self.manager, work)?;
        comm.profiler()
            .attach_section("farm", &stats, stats.to_string());
        *self.last.borrow_mut() = Some(stats);
        match failure {
            Some(failure) => Err(Error::from(failure)),
            None => Ok(()),
        }
    }
}

/// Puts `value` at `index`, growing the list as results arrive out of order.
fn place<R>(list: &mut Vec<Option<R>>, index: usize, value: R) {
    if list.len() <= index {
        list.resize_with(index + 1, || None);
    }
    list[index] = Some(value);
}

/// A task's outcome as it travels back to the manager.
#[derive(Serialize, Deserialize)]
enum Outcome<R> {
    Done(R),
    Failed(String),
}

/// Runs one task, turning a panic into a failure with the panic's message.
fn run_task<T, R>(
    f: &(impl Fn(T) -> std::result::Result<R, String> + Sync),
    task: T,
) -> Outcome<R> {
    match crate::error::catch_task_panic(|| f(task)) {
        Ok(Ok(result)) => Outcome::Done(result),
        Ok(Err(message)) => Outcome::Failed(message),
        Err(panic) => Outcome::Failed(panic_text(panic.as_ref())),
    }
}

/// A caught panic's message, for a failure report.
pub(crate) fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        format!("panicked: {s}")
    } else if let Some(s) = panic.downcast_ref::<String>() {
        format!("panicked: {s}")
    } else {
        "panicked".to_owned()
    }
}

/// A chunk's message: the index of its first task and its task count (so that a body that
/// does not decode can still be answered task by task), then the postcard body.
fn frame(first: usize, count: usize, body: &[u8]) -> Vec<u8> {
    let mut bytes = crate::comm::wire::header(&[first as u64, count as u64]);
    bytes.extend_from_slice(body);
    bytes
}

/// The first index, count and body of a chunk's message.
fn unframe(bytes: &[u8]) -> Result<(usize, usize, &[u8])> {
    let ([first, count], body) = crate::comm::wire::split_header(bytes, "farm")?;
    Ok((first as usize, count as usize, body))
}

/// The message carrying `outcomes` of tasks `first..`: encoded, or, if a result cannot be
/// encoded, the encoding error as every task's failure.
fn results_message<R: Serialize>(first: usize, outcomes: &[Outcome<R>]) -> Vec<u8> {
    let body = crate::comm::wire::encode(outcomes).unwrap_or_else(|e| {
        let failed: Vec<Outcome<()>> = outcomes
            .iter()
            .map(|_| Outcome::Failed(e.to_string()))
            .collect();
        crate::comm::wire::encode(&failed).expect("strings encode")
    });
    frame(first, outcomes.len(), &body)
}
