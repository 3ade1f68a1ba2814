//! What a farm run did, rank by rank: the figures that say whether the farm balanced.

use std::fmt::{self, Display};

use serde::{Deserialize, Serialize};

use crate::comm::Comm;
use crate::error::Result;

/// One rank's share of a farm run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RankWork {
    /// The rank.
    pub rank: usize,
    /// Tasks it ran.
    pub tasks: u64,
    /// Seconds inside task closures.
    pub busy_s: f64,
    /// Seconds it had no task to run (waiting for work, or for the last results on the
    /// manager).
    pub idle_s: f64,
    /// Seconds from the start of the run to its end on this rank.
    pub wall_s: f64,
    /// CPU seconds of the rank's MPI thread. On the manager that thread only hands out work
    /// (its tasks run on a thread of their own), so this is the cost of managing.
    pub mpi_thread_cpu_s: f64,
}

/// The statistics of one farm run, for every rank (see [`Farm::stats`](super::Farm::stats)).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FarmStats {
    /// The manager rank.
    pub manager: usize,
    /// Every rank's share, by rank.
    pub ranks: Vec<RankWork>,
}

const FIELDS: usize = 5;

impl FarmStats {
    /// Every rank's `work`, shared with every rank. Collective.
    pub(super) fn gather(comm: &Comm, manager: usize, work: RankWork) -> Result<FarmStats> {
        let mine = [
            work.tasks as f64,
            work.busy_s,
            work.idle_s,
            work.wall_s,
            work.mpi_thread_cpu_s,
        ];
        let all = comm.all_gather(&mine)?;
        let ranks = all
            .chunks(FIELDS)
            .enumerate()
            .map(|(rank, v)| RankWork {
                rank,
                tasks: v[0] as u64,
                busy_s: v[1],
                idle_s: v[2],
                wall_s: v[3],
                mpi_thread_cpu_s: v[4],
            })
            .collect();
        Ok(FarmStats { manager, ranks })
    }

    /// Tasks run, on all ranks.
    pub fn tasks(&self) -> u64 {
        self.ranks.iter().map(|r| r.tasks).sum()
    }

    /// The run's wall time: the longest rank's.
    pub fn wall_s(&self) -> f64 {
        self.ranks.iter().map(|r| r.wall_s).fold(0.0, f64::max)
    }

    /// Busy time over the time all ranks were available (`Σ busy / (ranks × wall)`): 1 when
    /// every rank ran tasks all the time; lost are the waits for work, the tail where some
    /// ranks finished early, and the manager's handing out.
    pub fn efficiency(&self) -> f64 {
        let available = self.ranks.len() as f64 * self.wall_s();
        if available > 0.0 {
            self.ranks.iter().map(|r| r.busy_s).sum::<f64>() / available
        } else {
            1.0
        }
    }

    /// The manager's MPI thread's CPU time over the run's wall time: what managing costs a
    /// core (it naps while it waits, so this stays at a few percent).
    pub fn manager_cpu_fraction(&self) -> f64 {
        let manager = &self.ranks[self.manager];
        if manager.wall_s > 0.0 {
            manager.mpi_thread_cpu_s / manager.wall_s
        } else {
            0.0
        }
    }
}

impl Display for FarmStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "farm: {} tasks on {} ranks in {:.3} s, efficiency {:.1}%, manager (rank {}) MPI \
             thread CPU {:.1}%",
            self.tasks(),
            self.ranks.len(),
            self.wall_s(),
            100.0 * self.efficiency(),
            self.manager,
            100.0 * self.manager_cpu_fraction()
        )?;
        writeln!(f, "  rank   tasks     busy s     idle s")?;
        for r in &self.ranks {
            writeln!(
                f,
                "  {:>4} {:>7} {:>10.4} {:>10.4}",
                r.rank, r.tasks, r.busy_s, r.idle_s
            )?;
        }
        Ok(())
    }
}
