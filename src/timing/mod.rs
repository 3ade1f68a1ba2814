//! Timing: where each rank's time went (computing or communicating), aggregated over ranks
//! into a report that answers *did distributing pay off?*
//!
//! Every [`Spmd`](crate::Spmd) context carries a [`Profiler`]. Its clock starts when `init`
//! returns. Every collective helper on a [`Comm`](crate::Comm) made from the context records
//! itself as a *comm* region with its time and payload bytes, so a program that communicates
//! only through `spmd` gets its communication time without writing any timing code. Time
//! outside comm regions is *compute*. Named regions of your own mark phases:
//!
//! ```no_run
//! use spmd::{Op, Spmd};
//!
//! fn main() -> spmd::Result<()> {
//!     let spmd = Spmd::init()?;
//!     let n = 10_000_000_u64;
//!     let work = |lo: u64, hi: u64| (lo..hi).map(|i| (i as f64).sqrt()).sum::<f64>();
//!     // The same problem on one core, for speedup and efficiency.
//!     spmd.baseline(|| work(0, n))?;
//!     let (lo, hi) = (n * spmd.rank() as u64 / spmd.size() as u64,
//!                     n * (spmd.rank() as u64 + 1) / spmd.size() as u64);
//!     let local = {
//!         let _r = spmd.region("local sums");
//!         work(lo, hi)
//!     };
//!     let total = spmd.world().all_reduce(local, Op::Sum); // timed as comm automatically
//!     if let Some(report) = spmd.report("sqrt-sum")? {
//!         println!("{total}\n{report}");
//!         report.write_json("report.json")?;
//!     }
//!     Ok(())
//! }
//! ```
//!
//! The [`Report`] gives the time of the run with the slowest rank's figures, per-rank
//! compute/comm time (min/avg/max over ranks), the comm fraction, the compute imbalance and the
//! slowest rank, peak memory, the baseline with speedup, efficiency and the Karp–Flatt serial
//! fraction, per-region calls, times and bytes, and warnings about its own figures; as a table
//! (`Display`), JSON ([`Report::to_json`]: one key per field of [`Report`]) or CSV
//! ([`Report::to_csv`]).
//!
//! # One measurement is not a measurement
//! On a shared machine the same program takes 1.2 s in one run and 1.5 s in the next. Measure
//! the timed part several times with [`Spmd::repeat`](crate::Spmd::repeat): the sequential
//! baseline and the parallel step alternate, and the report's time, speedup and efficiency
//! become [`Spread`]s — median, range, and a distribution-free confidence interval of the
//! median — with warnings when the spread is above 10% (a noisy machine), when efficiency is
//! above 100% (superlinear: cache effects or a noisy baseline), when a node runs more threads
//! than it has cores, and when one rank computes more than 1.2× the mean (naming it). A
//! report of a single run says that it is one.
//!
//! # Waiting versus transfer
//! A rank that reaches a collective early waits inside it for the others; by default that
//! waiting is comm time. With [wait separation](Profiler::set_wait_separation) every helper
//! first passes a barrier and books that time as *wait*, so the report splits comm into
//! waiting (imbalance) and transfer (the network), as mpiP and IPM do.
//!
//! # Cost
//! A region costs two clock reads and a short name lookup (measured in the README's
//! performance section); a disabled profiler costs one branch. `Profiler::set_enabled(false)`
//! turns accounting off.
//!
//! # Timeline traces
//! `SPMD_TRACE=trace.json` (or [`SpmdBuilder::trace`](crate::runtime::SpmdBuilder::trace))
//! records every region, collective, wait and point-to-point message of every rank, and
//! writes them as one Chrome Trace Event file that Perfetto UI and `chrome://tracing` open:
//! one process per rank, flow arrows from each message's send to its receive, the ranks'
//! clocks aligned on rank 0's. See [`crate::runtime::trace`].
//!
//! # Communication matrix
//! Every point-to-point message a rank sends (typed sends, halo and ghost exchanges, the
//! farm's and pipeline's messages) counts in [`RankTimes::sent`]; the report sums them into
//! [`Report::comm_matrix`]: bytes and messages per (source, destination) and per operation.
//! Collectives are not in it (MPI chooses their messages); their bytes are in the regions.
//!
//! # Scaling
//! [`scaling`] fits a model (serial and parallel compute, imbalance, per-message latency and
//! per-byte cost) to measured runs and predicts speedup at rank counts not measured, with a
//! bootstrap interval; the `spmd-scale` binary (feature `scale`) runs a program over rank and
//! thread counts and prints, writes and plots the result.

mod html;
mod matrix;
mod profiler;
mod rank_times;
mod report;
pub mod scaling;
mod stats;
mod table;
mod trace;
pub(crate) mod trace_file;

pub use matrix::{CommMatrix, MatrixEntry};
pub use profiler::{peak_rss_bytes, Profiler, RegionGuard};
pub use rank_times::{NodeInfo, RankTimes, RegionKind, RegionTimes, RepetitionTimes};
pub use report::{
    karp_flatt, Overlap, RankShare, RegionReport, Report, Sample, Stat, Warning, WarningKind,
    IMBALANCE_WARNING, NOISY_RANGE,
};
pub use stats::{Spread, CONFIDENCE};
pub use table::format_seconds;
pub use trace::{EventKind, Traffic, DEFAULT_TRACE_EVENTS};
pub use trace_file::TraceSummary;
