//! The manager rank: hands out chunks on demand, runs tasks of its own on a second thread,
//! collects the outcomes, and naps when there is nothing to do.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{
    frame, run_task, unframe, OnFailure, Outcome, RankWork, TaskError, TAG_RESULTS, TAG_STOP,
    TAG_TASKS,
};
use crate::comm::idle::thread_cpu_time;
use crate::comm::wire::{decode, encode};
use crate::comm::{wait_all, Comm, Request, Source, TagFilter};
use crate::error::Result;
use crate::timing::EventKind;

/// What the manager's task thread hands back per task: its index, outcome, time taken, and
/// start and end in profiler clock ticks.
type LocalOutcome<R> = (usize, Outcome<R>, Duration, (u64, u64));

/// The manager's shortest and longest sleep between two looks at its queues.
const MIN_NAP: Duration = Duration::from_micros(50);
const MAX_NAP: Duration = Duration::from_millis(5);

pub(super) struct Manager<'c> {
    pub comm: &'c Comm,
    pub prefetch: usize,
    pub chunk: usize,
    pub on_failure: OnFailure,
}

/// The tasks not yet handed out, numbered in order.
struct Queue<I: Iterator> {
    tasks: std::iter::Enumerate<I>,
    exhausted: bool,
}

impl<I: Iterator> Queue<I> {
    /// Up to `n` next tasks, with the index of the first.
    fn take(&mut self, n: usize) -> Option<(usize, Vec<I::Item>)> {
        let mut first = None;
        let mut tasks = Vec::with_capacity(n);
        while tasks.len() < n && !self.exhausted {
            match self.tasks.next() {
                Some((index, task)) => {
                    first.get_or_insert(index);
                    tasks.push(task);
                }
                None => self.exhausted = true,
            }
        }
        first.map(|first| (first, tasks))
    }
}

/// What the manager knows about each worker.
#[derive(Clone, Copy, Default)]
struct WorkerState {
    /// Chunks sent whose outcomes have not come back.
    in_flight: usize,
    /// Whether it was told to stop (it still returns the chunks in flight).
    stopped: bool,
}

impl Manager<'_> {
    /// Runs the farm from the manager's side; `deliver` gets every task's outcome.
    pub(super) fn run<T, R, F, I>(
        &self,
        tasks: I,
        f: &F,
        mut deliver: impl FnMut(usize, std::result::Result<R, TaskError>),
    ) -> Result<RankWork>
    where
        I: IntoIterator<Item = T>,
        T: Serialize + Send,
        R: DeserializeOwned + Send,
        F: Fn(T) -> std::result::Result<R, String> + Sync,
    {
        let comm = self.comm;
        let me = comm.rank();
        let cpu_at_start = thread_cpu_time();
        let mut work = RankWork {
            rank: me,
            ..RankWork::default()
        };
        let mut queue = Queue {
            tasks: tasks.into_iter().enumerate(),
            exhausted: false,
        };
        let mut outcome_of = |index: usize, outcome: Outcome<R>, rank: usize| {
            let outcome = match outcome {
                Outcome::Done(result) => Ok(result),
                Outcome::Failed(message) => Err(TaskError {
                    index,
                    rank,
                    message,
                }),
            };
            let failed = outcome.is_err();
            deliver(index, outcome);
            failed
        };

        if comm.size() == 1 {
            // Nobody to hand work to: run the tasks here, in order.
            for (index, task) in queue.tasks.by_ref() {
                let started = Instant::now();
                let outcome = run_task(f, task);
                work.busy_s += started.elapsed().as_secs_f64();
                work.tasks += 1;
                let failed = outcome_of(index, outcome, me);
                if failed && self.on_failure == OnFailure::Abort {
                    break;
                }
            }
            // The tasks ran on this thread: managing cost what they did not.
            let cpu = (thread_cpu_time() - cpu_at_start).as_secs_f64();
            work.mpi_thread_cpu_s = (cpu - work.busy_s).max(0.0);
            return Ok(work);
        }
        let mut workers = vec![WorkerState::default(); comm.size()];
        workers[me].stopped = true;
        let mut sends: Vec<Request<Vec<u8>>> = Vec::new();
        let mut stopping = false;

        std::thread::scope(|scope| -> Result<()> {
            // The manager's own tasks run here, so that this thread stays free to answer.
            let (to_local, local_tasks) = mpsc::channel::<(usize, T)>();
            let (local_done, from_local) = mpsc::channel::<LocalOutcome<R>>();
            // The task thread reads the profiler's clock, so that its tasks can be drawn on
            // a track of their own in a trace.
            let clock = comm.profiler().clock_handle();
            scope.spawn(move || {
                for (index, task) in local_tasks {
                    let (started, ticks_at_start) = (Instant::now(), clock.raw());
                    let outcome = run_task(f, task);
                    let ticks = (ticks_at_start, clock.raw());
                    if local_done
                        .send((index, outcome, started.elapsed(), ticks))
                        .is_err()
                    {
                        return;
                    }
                }
            });
            let mut local_in_flight = 0;
            // How long the manager's own tasks take (smoothed), to size its naps.
            let mut task_time: Option<f64> = None;
            let mut idle_since: Option<Instant> = None;
            let mut idle_region = None;

            for worker in 0..workers.len() {
                self.refill(worker, &mut workers, &mut queue, &mut sends, stopping)?;
            }
            loop {
                let mut progressed = false;
                // Outcomes from the workers, each answered with the next chunk.
                while let Some(status) =
                    comm.try_probe_quiet::<u8>(Source::Any, TagFilter::Tag(TAG_RESULTS))?
                {
                    progressed = true;
                    let worker = status.source;
                    let (bytes, _) = comm.receive::<u8>(worker, TAG_RESULTS)?;
                    let (first, count, body) = unframe(&bytes)?;
                    let outcomes: Vec<Outcome<R>> = decode(body).unwrap_or_else(|e| {
                        (0..count).map(|_| Outcome::Failed(e.to_string())).collect()
                    });
                    for (k, outcome) in outcomes.into_iter().enumerate() {
                        let failed = outcome_of(first + k, outcome, worker);
                        stopping |= failed && self.on_failure == OnFailure::Abort;
                    }
                    workers[worker].in_flight -= 1;
                    self.refill(worker, &mut workers, &mut queue, &mut sends, stopping)?;
                }
                // Outcomes of the manager's own tasks.
                while let Ok((index, outcome, busy, (start, end))) = from_local.try_recv() {
                    progressed = true;
                    comm.profiler().record_thread_span(
                        "farm: manager's tasks",
                        "farm task",
                        EventKind::Compute,
                        start,
                        end,
                    );
                    local_in_flight -= 1;
                    work.tasks += 1;
                    work.busy_s += busy.as_secs_f64();
                    let busy = busy.as_secs_f64();
                    task_time = Some(task_time.map_or(busy, |t| 0.8 * t + 0.2 * busy));
                    let failed = outcome_of(index, outcome, me);
                    stopping |= failed && self.on_failure == OnFailure::Abort;
                }
                if stopping {
                    for worker in 0..workers.len() {
                        self.refill(worker, &mut workers, &mut queue, &mut sends, stopping)?;
                    }
                }
                // Keep the task thread as far ahead as a worker: `prefetch` chunks of tasks
                // (the naps below last up to half a chunk).
                while !stopping && local_in_flight < self.prefetch * self.chunk {
                    let Some((index, mut tasks)) = queue.take(1) else {
                        break;
                    };
                    let task = tasks.pop().expect("take(1) gives one task");
                    to_local
                        .send((index, task))
                        .expect("the task thread runs until the manager is done");
                    local_in_flight += 1;
                    progressed = true;
                }
                sends.retain_mut(|s| !s.test());
                let busy_workers = workers.iter().any(|w| w.in_flight > 0 || !w.stopped);
                if local_in_flight == 0 && !busy_workers {
                    break;
                }
                // Idle (no task of its own): a comm region, so the report shows the wait.
                if local_in_flight == 0 {
                    if idle_since.is_none() {
                        idle_since = Some(Instant::now());
                        idle_region = Some(comm.profiler().comm("farm: wait for results", 0));
                    }
                } else if let Some(since) = idle_since.take() {
                    work.idle_s += since.elapsed().as_secs_f64();
                    idle_region = None;
                }
                if !progressed {
                    std::thread::sleep(self.nap(task_time));
                }
            }
            if let Some(since) = idle_since {
                work.idle_s += since.elapsed().as_secs_f64();
            }
            drop(idle_region);
            drop(to_local);
            Ok(())
        })?;
        wait_all(sends)?;
        work.mpi_thread_cpu_s = (thread_cpu_time() - cpu_at_start).as_secs_f64();
        Ok(work)
    }

    /// How long to sleep when nothing happened. A sleep costs tens of microseconds of CPU on
    /// some virtual machines whatever its length, so the manager sleeps as long as it safely
    /// can: half a chunk's time (a worker that returns a chunk still holds `prefetch - 1`
    /// more, so it does not starve meanwhile), between [`MIN_NAP`] and [`MAX_NAP`]; short
    /// naps with a prefetch of 1, where every late answer idles a worker.
    fn nap(&self, task_time: Option<f64>) -> Duration {
        match task_time {
            Some(t) if self.prefetch > 1 => {
                Duration::from_secs_f64(t * self.chunk as f64 / 2.0).clamp(MIN_NAP, MAX_NAP)
            }
            _ => MIN_NAP,
        }
    }

    /// Tops `worker` up to `prefetch` chunks in flight, or tells it to stop when there is
    /// nothing left to hand out (it still returns what it holds).
    fn refill<I, T>(
        &self,
        worker: usize,
        workers: &mut [WorkerState],
        queue: &mut Queue<I>,
        sends: &mut Vec<Request<Vec<u8>>>,
        stopping: bool,
    ) -> Result<()>
    where
        I: Iterator<Item = T>,
        T: Serialize,
    {
        let state = &mut workers[worker];
        if state.stopped {
            return Ok(());
        }
        while !stopping && state.in_flight < self.prefetch {
            let Some((first, tasks)) = queue.take(self.chunk) else {
                break;
            };
            let message = frame(first, tasks.len(), &encode(&tasks)?);
            sends.push(self.comm.send_immediate(worker, TAG_TASKS, message)?);
            state.in_flight += 1;
        }
        if stopping || (queue.exhausted && state.in_flight < self.prefetch) {
            sends.push(self.comm.send_immediate(worker, TAG_STOP, Vec::new())?);
            state.stopped = true;
        }
        Ok(())
    }
}
