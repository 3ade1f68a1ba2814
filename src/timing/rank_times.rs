//! The figures a rank's [`Profiler`](super::Profiler) hands the report: per region, per
//! repetition, and where the rank runs.

use serde::{Deserialize, Serialize};

use super::trace::Traffic;

/// What a region's time is spent on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegionKind {
    /// Local work (the default for time outside any region).
    Compute,
    /// Moving data between ranks, including waiting for other ranks to arrive.
    Comm,
}

impl RegionKind {
    /// `"compute"` or `"comm"`, as in the report.
    pub fn as_str(self) -> &'static str {
        match self {
            RegionKind::Compute => "compute",
            RegionKind::Comm => "comm",
        }
    }
}

/// One region's totals on one rank.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RegionTimes {
    /// The region's name.
    pub name: String,
    /// Compute or comm.
    pub kind: RegionKind,
    /// How many times the region was entered.
    pub calls: u64,
    /// Seconds spent inside the region (inclusive of nested regions).
    pub time_s: f64,
    /// Of `time_s`, seconds spent waiting for other ranks (measured only with wait separation).
    pub wait_s: f64,
    /// Payload bytes this rank sent plus received inside the region.
    pub bytes: u64,
    /// Of `time_s`, seconds spent in [`Request::wait`](crate::comm::Request::wait) (and
    /// plans' `finish`) of non-blocking operations; the rest of their time is the post.
    #[serde(default)]
    pub request_wait_s: f64,
    /// Seconds non-blocking operations of this region were in flight while the rank did
    /// something else (from the end of the post to the start of the wait): communication that
    /// could overlap computation. Not part of `time_s`.
    #[serde(default)]
    pub in_flight_s: f64,
}

/// One measured repetition of a program's timed part on one rank (see
/// [`Spmd::repeat`](crate::Spmd::repeat)).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RepetitionTimes {
    /// Seconds from this rank's start of the repetition to its end.
    pub wall_s: f64,
    /// Of `wall_s`, seconds inside outermost comm regions.
    pub comm_s: f64,
    /// Of `comm_s`, seconds waiting for other ranks (wait separation only, else 0).
    pub wait_s: f64,
}

/// Where a rank runs: its node and how many cores the ranks there ask for, for the report's
/// oversubscription warning.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// The node's name (MPI's processor name).
    pub name: String,
    /// The CPUs the node has online.
    pub cores: usize,
    /// How many ranks of the job run on the node.
    pub ranks: usize,
    /// Rayon threads of all those ranks together.
    pub threads: usize,
}

/// One rank's figures at the moment they were taken: what [`crate::timing::Report`] aggregates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RankTimes {
    /// Seconds since the profiler started, minus time spent measuring baselines.
    pub wall_s: f64,
    /// Seconds inside outermost comm regions.
    pub comm_s: f64,
    /// Of `comm_s`, seconds spent waiting for other ranks (wait separation only, else 0).
    pub wait_s: f64,
    /// The process's peak resident memory in bytes, as the OS reports it (0 if unknown).
    pub peak_rss_bytes: u64,
    /// Every region this rank entered, in order of first entry; with repetitions, their
    /// totals over the measured repetitions only.
    pub regions: Vec<RegionTimes>,
    /// The measured repetitions, in order (empty when the program measured none).
    #[serde(default)]
    pub repetitions: Vec<RepetitionTimes>,
    /// Seconds of each sequential baseline run on this rank (the root), in order.
    #[serde(default)]
    pub baselines_s: Vec<f64>,
    /// Where the rank runs (filled in by [`Spmd::report`](crate::Spmd::report)).
    #[serde(default)]
    pub node: Option<NodeInfo>,
    /// Point-to-point traffic this rank sent, per operation and destination, over the whole
    /// run since the start (or the last [`Profiler::reset`](super::Profiler::reset)), repetitions or not.
    #[serde(default)]
    pub sent: Vec<Traffic>,
}

impl RankTimes {
    /// Seconds not spent communicating: `wall_s - comm_s`.
    pub fn compute_s(&self) -> f64 {
        (self.wall_s - self.comm_s).max(0.0)
    }
}
