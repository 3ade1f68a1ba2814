//! The context's measuring entry points: the sequential baseline and the cross-rank report.

use std::time::Duration;

use mpi::collective::{CommunicatorCollectives, Root};
use mpi::topology::Communicator;

use super::Spmd;
use crate::comm::Comm;
use crate::error::{Error, ErrorKind, Result};
use crate::timing::{RankTimes, Report};

/// What a baseline measurement records besides excluding its span from the wall time.
#[derive(Clone, Copy)]
enum Record {
    /// Adds to the one-off baseline total ([`Spmd::baseline`]).
    Total,
    /// A run paired with one repetition.
    Sample,
    /// Nothing: a warm-up.
    Nothing,
}

impl Record {
    fn sample(measured: bool) -> Record {
        if measured {
            Record::Sample
        } else {
            Record::Nothing
        }
    }
}

/// `work` on a fresh one-thread rayon pool (so rayon code inside runs serially); `None` if the
/// pool cannot be built.
fn on_one_core<R: Send>(work: impl FnOnce() -> R + Send) -> Option<R> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .thread_name(|_| String::from("spmd-baseline"))
        .build()
        .map_err(|e| eprintln!("spmd: cannot build the baseline's thread pool: {e}"))
        .ok()?;
    Some(pool.install(work))
}

/// How often waiting ranks look whether the baseline has finished. Sleeping between looks
/// keeps them off the CPU, so the baseline runs on an uncontended core even when ranks
/// share cores.
const POLL: Duration = Duration::from_millis(1);

impl Spmd {
    /// Measures the sequential solution: runs `work` once on the root, on a one-thread rayon
    /// pool (so rayon code inside runs serially) while the other ranks wait off the CPU, and
    /// records its time as the baseline for speedup and efficiency in the
    /// [report](Self::report). The span of the measurement is excluded from the wall time.
    /// Several calls add up. Collective: every rank calls it; `work` runs only on the root,
    /// which gets `Some(result)`.
    ///
    /// `work` must be `Send` (it runs on the pool's thread), so it cannot hold a
    /// [`Comm`]: a baseline never communicates.
    ///
    /// # Errors
    /// `ThreadPool`, on every rank, if the root cannot start the one-thread pool.
    ///
    /// # Panics
    /// If `work` panics (which, with several ranks, ends the job).
    pub fn baseline<R, F>(&self, work: F) -> Result<Option<R>>
    where
        R: Send,
        F: FnOnce() -> R + Send,
    {
        self.measure_on_root(Record::Total, || on_one_core(work))
    }

    /// [`baseline`](Self::baseline) for a sequential solution written with the library's
    /// distributed types: `work` runs on the root's main thread with a communicator of its own
    /// holding only the root (so a `DistArray` on it is the whole array, and its collectives
    /// cost nothing), while the other ranks wait off the CPU. The communicator's default
    /// [`Par`](crate::Par) is [`Par::Seq`](crate::Par::Seq), so arrays made on it run their
    /// kernels serially: one core. Rayon code of your own inside runs on the rank's pool; keep
    /// it serial too. Collective.
    ///
    /// # Errors
    /// None today; `Result` for symmetry with [`baseline`](Self::baseline).
    pub fn baseline_with_comm<R, F>(&self, work: F) -> Result<Option<R>>
    where
        F: FnOnce(&Comm) -> R,
    {
        let alone = self.root_alone();
        self.measure_on_root(Record::Total, || Some(work(&alone)))
    }

    /// A communicator of the root alone (every other rank gets one of its own), whose arrays
    /// run serially: what [`baseline_with_comm`](Self::baseline_with_comm) hands its work.
    /// Collective.
    pub(crate) fn root_alone(&self) -> Comm {
        self.world()
            .split(Some(u32::from(!self.is_root())), 0)
            .expect("every rank passes a colour")
            .with_par(crate::Par::Seq)
    }

    /// One baseline run of a repeated measurement (see [`Repeat`](super::repeat::Repeat)):
    /// `work` on a one-thread pool on the root; its time is a sample (`measured`) or a
    /// warm-up, excluded from the wall time either way.
    pub(crate) fn baseline_run<R: Send>(
        &self,
        work: &mut (impl FnMut() -> R + Send),
        measured: bool,
    ) -> Result<Option<R>> {
        self.measure_on_root(Record::sample(measured), || on_one_core(work))
    }

    /// [`baseline_run`](Self::baseline_run) of a baseline written with the library's types,
    /// on `alone` (from [`root_alone`](Self::root_alone)).
    pub(crate) fn baseline_run_with_comm<R>(
        &self,
        work: &mut impl FnMut(&Comm) -> R,
        alone: &Comm,
        measured: bool,
    ) -> Result<Option<R>> {
        self.measure_on_root(Record::sample(measured), || Some(work(alone)))
    }

    /// Runs `work` on the root (the others wait off the CPU), records its time as `record`
    /// says and excludes the span from the wall time. `work` returning `None` is an error on
    /// every rank.
    fn measure_on_root<R>(
        &self,
        record: Record,
        work: impl FnOnce() -> Option<R>,
    ) -> Result<Option<R>> {
        let world = self.world().raw();
        let profiler = self.profiler();
        world.barrier();
        let span = profiler.now();
        let mut outcome = None;
        // Seconds on the root, or a negative number when the work could not run.
        let mut seconds = -1.0_f64;
        if self.is_root() {
            let start = profiler.now();
            outcome = work();
            if outcome.is_some() {
                seconds = profiler.seconds_between(start, profiler.now());
            }
        }
        let mut pending = world.immediate_barrier();
        loop {
            match pending.test() {
                Ok(_) => break,
                Err(still) => {
                    pending = still;
                    std::thread::sleep(POLL);
                }
            }
        }
        world
            .process_at_rank(self.root() as i32)
            .broadcast_into(&mut seconds);
        if seconds < 0.0 {
            return Err(Error::new(
                ErrorKind::ThreadPool,
                "could not start the one-thread pool for the baseline",
            )
            .on_rank(self.root()));
        }
        profiler.exclude(profiler.now().saturating_sub(span));
        match record {
            Record::Total => profiler.add_baseline(Duration::from_secs_f64(seconds)),
            Record::Sample if self.is_root() => profiler.record_baseline_run(seconds),
            Record::Sample | Record::Nothing => {}
        }
        Ok(outcome)
    }

    /// Gathers every rank's timing to the root and returns the [`Report`] there (`None` on
    /// the other ranks). Collective.
    ///
    /// Ranks first meet in a barrier, booked as the comm region `final_sync`: time a rank
    /// spends waiting there for slower ranks is communication lost to imbalance, so every rank
    /// reports the same wall time. The report may be taken several times; each covers the
    /// time since the start (or the last [`Profiler::reset`](crate::timing::Profiler::reset)).
    /// When the program measured repetitions ([`repeat`](Self::repeat)), the figures are
    /// medians and spreads over those repetitions, and the regions their totals over them;
    /// otherwise the whole run is one measurement (and the report warns that it is). With
    /// tracing on, the trace file is written too (every event so far) and the report's
    /// [`trace`](Report::trace) says what it holds.
    ///
    /// # Errors
    /// `RemoteError` if a rank's figures cannot be read back (a library bug).
    pub fn report(&self, program: &str) -> Result<Option<Report>> {
        let world = self.world();
        {
            let _sync = world.timed("final_sync", 0);
            world.raw().barrier();
        }
        let mut mine = self.profiler().rank_times();
        mine.node = Some(self.node().clone());
        let bytes = serde_json::to_vec(&mine).expect("rank times always serialise");
        let gathered = world.gather_varcount(self.root(), &bytes)?;
        // With tracing on, the timeline so far goes to the trace file, which the report names.
        let trace = self.write_trace_if_tracing()?;
        let Some(gathered) = gathered else {
            return Ok(None);
        };
        let mut ranks = Vec::with_capacity(gathered.counts().len());
        for (rank, piece) in gathered.parts().enumerate() {
            let times: RankTimes = serde_json::from_slice(piece).map_err(|e| {
                Error::new(
                    ErrorKind::RemoteError,
                    format!("unreadable timing figures from rank {rank}: {e}"),
                )
            })?;
            ranks.push(times);
        }
        let baseline = self.profiler().baseline().map(|d| d.as_secs_f64());
        let mut report = Report::from_ranks(
            program,
            self.threads(),
            self.profiler().wait_separation(),
            &ranks,
            baseline,
        );
        report.trace = trace;
        // The farm's or pipeline's own figures (every rank holds them; the root's serve).
        for section in self.profiler().sections() {
            report.results.insert(section.key.to_owned(), section.value);
            report.sections.push(section.text);
        }
        Ok(Some(report))
    }
}
