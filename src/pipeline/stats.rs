//! What a pipeline run did, stage by stage, and which stage limited it.

use std::fmt::{self, Display};

use serde::{Deserialize, Serialize};

use crate::comm::Comm;
use crate::error::Result;

/// One rank's work in one stage (on one rank, every stage's).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct StageWork {
    pub stage: usize,
    pub items_in: u64,
    pub items_out: u64,
    pub busy_s: f64,
    pub idle_s: f64,
    pub blocked_s: f64,
    pub wall_s: f64,
    pub latency_sum_s: f64,
    pub latency_max_s: f64,
}

const FIELDS: usize = 9;

impl StageWork {
    fn to_row(self) -> [f64; FIELDS] {
        [
            self.stage as f64,
            self.items_in as f64,
            self.items_out as f64,
            self.busy_s,
            self.idle_s,
            self.blocked_s,
            self.wall_s,
            self.latency_sum_s,
            self.latency_max_s,
        ]
    }

    fn from_row(v: &[f64]) -> StageWork {
        StageWork {
            stage: v[0] as usize,
            items_in: v[1] as u64,
            items_out: v[2] as u64,
            busy_s: v[3],
            idle_s: v[4],
            blocked_s: v[5],
            wall_s: v[6],
            latency_sum_s: v[7],
            latency_max_s: v[8],
        }
    }
}

/// One stage's figures, summed (times: over its ranks) or at their maximum.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageStats {
    /// The stage's name.
    pub name: String,
    /// The ranks that ran it.
    pub ranks: Vec<usize>,
    /// Items it took in (a source: none).
    pub items_in: u64,
    /// Items it emitted (a sink: none).
    pub items_out: u64,
    /// Seconds its closures worked, summed over its ranks (not counting the time spent
    /// handing items on).
    pub busy_s: f64,
    /// Seconds its ranks waited for input, summed.
    pub idle_s: f64,
    /// Seconds its ranks waited for the next stage to take items (backpressure), summed.
    pub blocked_s: f64,
    /// Mean seconds from an item's source to this stage (sinks only; 0 elsewhere).
    pub latency_mean_s: f64,
    /// Longest such latency (sinks only).
    pub latency_max_s: f64,
}

impl StageStats {
    /// Items per second through the stage over `wall_s`: what it took in (a source: what
    /// it emitted).
    pub fn throughput(&self, wall_s: f64) -> f64 {
        let items = if self.items_in > 0 {
            self.items_in
        } else {
            self.items_out
        };
        if wall_s > 0.0 {
            items as f64 / wall_s
        } else {
            0.0
        }
    }

    /// The fraction of its ranks' time the stage worked: near 1 for the stage that limits
    /// the pipeline's throughput.
    pub fn utilisation(&self, wall_s: f64) -> f64 {
        let available = wall_s * self.ranks.len() as f64;
        if available > 0.0 {
            self.busy_s / available
        } else {
            0.0
        }
    }
}

/// The statistics of one pipeline run (every rank has them).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PipelineStats {
    /// Every stage, in pipeline order.
    pub stages: Vec<StageStats>,
    /// The run's wall time: the longest rank's.
    pub wall_s: f64,
}

impl PipelineStats {
    /// Every rank's `work`, shared with every rank. Collective.
    pub(super) fn gather(
        comm: &Comm,
        names: &[String],
        placement: &[Vec<usize>],
        work: &[StageWork],
    ) -> Result<PipelineStats> {
        let rows: Vec<f64> = work.iter().flat_map(|w| w.to_row()).collect();
        let all = comm.all_gather_varcount(&rows)?;
        let mut stages: Vec<StageStats> = names
            .iter()
            .zip(placement)
            .map(|(name, ranks)| StageStats {
                name: name.clone(),
                ranks: ranks.clone(),
                items_in: 0,
                items_out: 0,
                busy_s: 0.0,
                idle_s: 0.0,
                blocked_s: 0.0,
                latency_mean_s: 0.0,
                latency_max_s: 0.0,
            })
            .collect();
        let mut wall_s: f64 = 0.0;
        for w in all.as_slice().chunks(FIELDS).map(StageWork::from_row) {
            let s = &mut stages[w.stage];
            s.items_in += w.items_in;
            s.items_out += w.items_out;
            s.busy_s += w.busy_s;
            s.idle_s += w.idle_s;
            s.blocked_s += w.blocked_s;
            s.latency_mean_s += w.latency_sum_s;
            s.latency_max_s = s.latency_max_s.max(w.latency_max_s);
            wall_s = wall_s.max(w.wall_s);
        }
        for s in &mut stages {
            s.latency_mean_s = if s.latency_mean_s > 0.0 && s.items_in > 0 {
                s.latency_mean_s / s.items_in as f64
            } else {
                0.0
            };
        }
        Ok(PipelineStats { stages, wall_s })
    }

    /// The stage that limits the throughput: the one whose ranks were busiest.
    pub fn limiting_stage(&self) -> &StageStats {
        self.stages
            .iter()
            .max_by(|a, b| {
                a.utilisation(self.wall_s)
                    .total_cmp(&b.utilisation(self.wall_s))
            })
            .expect("a pipeline has stages")
    }

    /// Items per second that left the source stage.
    pub fn source_rate(&self) -> f64 {
        if self.wall_s > 0.0 {
            self.stages[0].items_out as f64 / self.wall_s
        } else {
            0.0
        }
    }
}

impl Display for PipelineStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let limit = self.limiting_stage();
        writeln!(
            f,
            "pipeline: {} stages in {:.3} s, {:.1} items/s from the source; limited by '{}' \
             ({:.0}% busy)",
            self.stages.len(),
            self.wall_s,
            self.source_rate(),
            limit.name,
            100.0 * limit.utilisation(self.wall_s)
        )?;
        writeln!(
            f,
            "  {:<16} {:>6} {:>9} {:>9} {:>10} {:>7} {:>7} {:>9} {:>12}",
            "stage", "ranks", "in", "out", "items/s", "busy", "idle", "blocked", "latency"
        )?;
        for s in &self.stages {
            let share = |t: f64| {
                let available = self.wall_s * s.ranks.len() as f64;
                if available > 0.0 {
                    100.0 * t / available
                } else {
                    0.0
                }
            };
            let latency = if s.latency_mean_s > 0.0 {
                format!("{:.2} ms", 1e3 * s.latency_mean_s)
            } else {
                "-".to_owned()
            };
            writeln!(
                f,
                "  {:<16} {:>6} {:>9} {:>9} {:>10.1} {:>6.0}% {:>6.0}% {:>8.0}% {:>12}",
                s.name,
                s.ranks.len(),
                s.items_in,
                s.items_out,
                s.throughput(self.wall_s),
                share(s.busy_s),
                share(s.idle_s),
                share(s.blocked_s),
                latency
            )?;
        }
        Ok(())
    }
}
