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
//! The [`Report`] gives, over ranks, wall/compute/comm time (min/avg/max), the comm fraction,
//! the compute imbalance, peak memory, the baseline with speedup, efficiency and the Karp–Flatt
//! serial fraction, and per-region calls, times and bytes; as a table (`Display`), JSON
//! ([`Report::to_json`]: one key per field of [`Report`]) or CSV ([`Report::to_csv`]).
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
//! # Scaling
//! [`scaling`] fits a model (serial fraction, parallel part, per-level comm cost) to measured
//! runs and predicts speedup at rank counts not measured; the `spmd-scale` binary runs a
//! program over rank and thread counts and prints, writes and plots the result.

mod profiler;
mod report;
pub mod scaling;
mod stats;
mod table;

pub use profiler::{
    peak_rss_bytes, NodeInfo, Profiler, RankTimes, RegionGuard, RegionKind, RegionTimes,
    RepetitionTimes,
};
pub use report::{
    karp_flatt, RegionReport, Report, Sample, Stat, Warning, WarningKind, IMBALANCE_WARNING,
    NOISY_RANGE,
};
pub use stats::{Spread, CONFIDENCE};
pub use table::format_seconds;
