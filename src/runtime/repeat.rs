//! Repeated, interleaved measurements: [`Spmd::repeat`].
//!
//! One run of a program and one run of its sequential baseline are not a measurement on a
//! shared machine: the same work takes 1.2 s in one run and 1.5 s in the next. `repeat` runs
//! the timed part of a program K times after a warm-up, with the sequential baseline (if any)
//! before each repetition on the root — baseline, parallel, baseline, parallel, … — so slow
//! drift of the machine hits both alike, and the [report](Spmd::report) gives medians, ranges
//! and confidence intervals of the time and of the speedup, paired repetition by repetition.
//! What must be reset between repetitions without being timed (a solution set back to zero)
//! goes in [`Repeat::run_prepared`]'s preparation.
//!
//! ```no_run
//! use spmd::{Op, Spmd};
//!
//! fn main() -> spmd::Result<()> {
//!     let spmd = Spmd::init()?;
//!     let world = spmd.world();
//!     let n = 50_000_000_u64;
//!     let work = |lo: u64, hi: u64| (lo..hi).map(|i| (i as f64).sqrt()).sum::<f64>();
//!     let (lo, hi) = (n * world.rank() as u64 / world.size() as u64,
//!                     n * (world.rank() as u64 + 1) / world.size() as u64);
//!     let measured = spmd
//!         .repeat(7)                    // 7 measured repetitions after 1 warm-up
//!         .baseline(|| work(0, n))      // the sequential solution, on one core of the root
//!         .run(|| -> spmd::Result<f64> { Ok(world.all_reduce(work(lo, hi), Op::Sum)) })?;
//!     if let Some(report) = spmd.report("sqrt-sum")? {
//!         // speedup: median [min .. max], with a 95% interval, and warnings if noisy
//!         println!("{} {report}", measured.result);
//!     }
//!     Ok(())
//! }
//! ```

use crate::comm::Comm;
use crate::error::Error;

use super::Spmd;

/// A repeated measurement being set up; made by [`Spmd::repeat`], run by [`run`](Self::run).
#[must_use = "a repetition does nothing until `run` is called"]
pub struct Repeat<'s, B = NoBaseline> {
    spmd: &'s Spmd,
    times: usize,
    warmup: usize,
    baseline: B,
}

/// The outcome of [`Repeat::run`].
#[derive(Debug)]
pub struct Measured<R, T> {
    /// What the last repetition of the timed part returned.
    pub result: R,
    /// What the last baseline run returned: `Some` on the root when a baseline was given.
    pub baseline: Option<T>,
    /// How many repetitions were measured.
    pub repetitions: usize,
}

/// No sequential baseline.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoBaseline;

/// A sequential baseline run on a one-thread pool on the root (see [`Spmd::baseline`]).
pub struct OnOneCore<F>(F);

/// A sequential baseline written with the library's types, run on a one-rank communicator on
/// the root (see [`Spmd::baseline_with_comm`]); the communicator is made at the first run.
pub struct OnOwnComm<F> {
    work: F,
    alone: Option<Comm>,
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::NoBaseline {}
    impl<F> Sealed for super::OnOneCore<F> {}
    impl<F> Sealed for super::OnOwnComm<F> {}
}

/// What [`Repeat::run`] runs before each repetition: [`NoBaseline`], [`OnOneCore`] or
/// [`OnOwnComm`] (sealed).
pub trait Baseline: sealed::Sealed {
    /// What one run returns (on the root).
    type Output;
    /// Runs it once (collective); its time is a sample when `measured`, else a warm-up.
    /// `Some` on the root.
    ///
    /// # Errors
    /// As [`Spmd::baseline`].
    fn run_once(&mut self, spmd: &Spmd, measured: bool) -> crate::Result<Option<Self::Output>>;
    /// Whether there is a baseline at all.
    fn present(&self) -> bool {
        true
    }
}

impl Baseline for NoBaseline {
    type Output = ();
    fn run_once(&mut self, _: &Spmd, _: bool) -> crate::Result<Option<()>> {
        Ok(None)
    }
    fn present(&self) -> bool {
        false
    }
}

impl<F: FnMut() -> T + Send, T: Send> Baseline for OnOneCore<F> {
    type Output = T;
    fn run_once(&mut self, spmd: &Spmd, measured: bool) -> crate::Result<Option<T>> {
        spmd.baseline_run(&mut self.0, measured)
    }
}

impl<F: FnMut(&Comm) -> T, T> Baseline for OnOwnComm<F> {
    type Output = T;
    fn run_once(&mut self, spmd: &Spmd, measured: bool) -> crate::Result<Option<T>> {
        let alone = self.alone.get_or_insert_with(|| spmd.root_alone());
        spmd.baseline_run_with_comm(&mut self.work, alone, measured)
    }
}

impl Spmd {
    /// A measurement of the program's timed part repeated `times` times (at least 1), after
    /// one warm-up run; add a sequential baseline with [`Repeat::baseline`] and start it with
    /// [`Repeat::run`]. See the [module docs](crate::runtime::repeat). Collective: every rank
    /// makes the same calls.
    pub fn repeat(&self, times: usize) -> Repeat<'_> {
        Repeat {
            spmd: self,
            times: times.max(1),
            warmup: 1,
            baseline: NoBaseline,
        }
    }
}

impl<'s> Repeat<'s, NoBaseline> {
    /// Runs `sequential` — the same problem solved on one core — on the root before every
    /// repetition (and warm-up), on a one-thread rayon pool while the other ranks wait off
    /// the CPU, as [`Spmd::baseline`] does once. Its times pair with the repetitions' for the
    /// speedup.
    pub fn baseline<F, T>(self, sequential: F) -> Repeat<'s, OnOneCore<F>>
    where
        F: FnMut() -> T + Send,
        T: Send,
    {
        Repeat {
            spmd: self.spmd,
            times: self.times,
            warmup: self.warmup,
            baseline: OnOneCore(sequential),
        }
    }

    /// [`baseline`](Self::baseline) for a sequential solution written with the library's
    /// types: it gets a communicator holding only the root, whose arrays run serially (see
    /// [`Spmd::baseline_with_comm`]).
    pub fn baseline_with_comm<F, T>(self, sequential: F) -> Repeat<'s, OnOwnComm<F>>
    where
        F: FnMut(&Comm) -> T,
    {
        Repeat {
            spmd: self.spmd,
            times: self.times,
            warmup: self.warmup,
            baseline: OnOwnComm {
                work: sequential,
                alone: None,
            },
        }
    }
}

impl<B: Baseline> Repeat<'_, B> {
    /// How many unmeasured runs of the baseline and the timed part come first (default 1:
    /// memory first touched, caches and MPI connections warm).
    pub fn warmup(mut self, runs: usize) -> Self {
        self.warmup = runs;
        self
    }

    /// Runs the warm-ups, then the measured repetitions: the baseline (if any) on the root,
    /// then `step` on every rank, each repetition started together (a barrier) and timed on
    /// every rank. Returns what the last repetition and the last baseline returned.
    ///
    /// `step` is the parallel solution from the start: it must redo the work each time
    /// (rebuild what it modifies), or the repetitions measure something else; to reset
    /// state outside the timed part, use [`run_prepared`](Self::run_prepared).
    ///
    /// Cost: one barrier per repetition besides `step`; the bookkeeping (a clock read and
    /// a copy of the profiler's region totals at each end) stays under a microsecond.
    ///
    /// # Errors
    /// The first error `step` returns, or a baseline error (as [`Spmd::baseline`]).
    pub fn run<R, E>(
        self,
        mut step: impl FnMut() -> Result<R, E>,
    ) -> Result<Measured<R, B::Output>, E>
    where
        E: From<Error>,
    {
        self.run_prepared(&mut (), |_| {}, |_| step())
    }

    /// [`run`](Self::run) with untimed preparation: `prepare` runs on every rank before
    /// each run of `step` (the warm-ups' too), outside the timed repetition, and both get
    /// `state`. For what a benchmark resets before it starts its clock (a solution set back
    /// to zero, input re-scattered), so that the repetitions time the work alone.
    ///
    /// ```no_run
    /// # fn f(spmd: &spmd::Spmd) -> spmd::Result<()> {
    /// let mut field = vec![0.0_f64; 1 << 20];
    /// let measured = spmd.repeat(5).run_prepared(
    ///     &mut field,
    ///     |field| field.fill(0.0), // untimed
    ///     |field| -> spmd::Result<f64> {
    ///         field.iter_mut().enumerate().for_each(|(i, x)| *x += i as f64);
    ///         Ok(field.iter().sum())
    ///     },
    /// )?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`run`](Self::run).
    pub fn run_prepared<S, R, E>(
        mut self,
        state: &mut S,
        mut prepare: impl FnMut(&mut S),
        mut step: impl FnMut(&mut S) -> Result<R, E>,
    ) -> Result<Measured<R, B::Output>, E>
    where
        S: ?Sized,
        E: From<Error>,
    {
        let spmd = self.spmd;
        for _ in 0..self.warmup {
            if self.baseline.present() {
                self.baseline.run_once(spmd, false)?;
            }
            prepare(state);
            step(state)?;
        }
        let mut last = None;
        let mut baseline = None;
        for _ in 0..self.times {
            if self.baseline.present() {
                baseline = self.baseline.run_once(spmd, true)?;
            }
            // Before the barrier: the preparation is neither timed nor waited for.
            prepare(state);
            mpi::collective::CommunicatorCollectives::barrier(spmd.world().raw());
            spmd.profiler().begin_repetition();
            let outcome = step(state);
            spmd.profiler().end_repetition();
            last = Some(outcome?);
        }
        Ok(Measured {
            result: last.expect("at least one repetition"),
            baseline,
            repetitions: self.times,
        })
    }
}
