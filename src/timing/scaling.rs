//! Scaling arithmetic: a fitted performance model over measured runs, for predicting where
//! adding ranks stops paying off.
//!
//! The model is deliberately simple: the wall time on `r` ranks with `t` threads each is
//!
//! ```text
//! T(r, t) = serial_s + parallel_s / (r·t) + comm_per_level_s · log2(r)
//! ```
//!
//! `serial_s + parallel_s / p` is Amdahl's law for the compute part; `log2(r)` is the number of
//! stages of a tree or recursive-doubling collective, each costing a latency plus bytes over
//! bandwidth (`α + β·m`), so `comm_per_level_s` is this program's `Σ (α + β·m)` over its
//! collectives. Waiting caused by imbalance is part of the measured comm time and so of that
//! term. The fit uses each run's mean compute and comm time per rank.

use serde::{Deserialize, Serialize};

/// One measured run, as the model sees it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunFigures {
    /// Ranks in the run.
    pub ranks: usize,
    /// Threads per rank.
    pub threads: usize,
    /// Mean compute seconds per rank.
    pub compute_s: f64,
    /// Mean comm seconds per rank.
    pub comm_s: f64,
}

/// The fitted model; see the [module docs](self).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScalingModel {
    /// Compute seconds that do not shrink with more cores.
    pub serial_s: f64,
    /// Compute seconds that divide over `ranks × threads` cores.
    pub parallel_s: f64,
    /// Comm seconds per doubling of the rank count.
    pub comm_per_level_s: f64,
}

impl ScalingModel {
    /// Least-squares fit to `runs` (non-negative parameters). With a single core count the
    /// compute is assumed fully parallel (`serial_s = 0`); without a multi-rank run the comm
    /// term is 0. `None` when `runs` is empty.
    pub fn fit(runs: &[RunFigures]) -> Option<ScalingModel> {
        if runs.is_empty() {
            return None;
        }
        // Comm: a line through the origin in log2(ranks).
        let (mut num, mut den) = (0.0, 0.0);
        for r in runs {
            let levels = (r.ranks.max(1) as f64).log2();
            num += r.comm_s * levels;
            den += levels * levels;
        }
        let comm_per_level_s = if den > 0.0 { (num / den).max(0.0) } else { 0.0 };

        // Compute: y = s + w·x with x = 1/cores.
        let points: Vec<(f64, f64)> = runs
            .iter()
            .map(|r| {
                (
                    1.0 / (r.ranks.max(1) * r.threads.max(1)) as f64,
                    r.compute_s,
                )
            })
            .collect();
        let n = points.len() as f64;
        let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
        let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
        let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
        let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
        let through_origin = || {
            let sx2: f64 = points.iter().map(|p| p.0 * p.0).sum();
            let sxy0: f64 = points.iter().map(|p| p.0 * p.1).sum();
            (0.0, (sxy0 / sx2).max(0.0))
        };
        let (serial_s, parallel_s) = if sxx <= f64::EPSILON * mean_x * mean_x {
            through_origin()
        } else {
            let w = sxy / sxx;
            let s = mean_y - w * mean_x;
            if s < 0.0 {
                through_origin()
            } else if w < 0.0 {
                (mean_y.max(0.0), 0.0)
            } else {
                (s, w)
            }
        };
        Some(ScalingModel {
            serial_s,
            parallel_s,
            comm_per_level_s,
        })
    }

    /// Predicted wall seconds on `ranks` ranks with `threads` threads each.
    pub fn time(&self, ranks: usize, threads: usize) -> f64 {
        let cores = (ranks.max(1) * threads.max(1)) as f64;
        self.serial_s
            + self.parallel_s / cores
            + self.comm_per_level_s * (ranks.max(1) as f64).log2()
    }

    /// Predicted speedup over `reference_s` (a measured baseline, or [`time`](Self::time)`(1, 1)`).
    pub fn speedup(&self, reference_s: f64, ranks: usize, threads: usize) -> f64 {
        reference_s / self.time(ranks, threads)
    }

    /// The rank count (a power of two up to `limit`) with the shortest predicted time.
    pub fn best_ranks(&self, threads: usize, limit: usize) -> usize {
        let mut best = 1;
        let mut ranks = 1;
        while ranks <= limit {
            if self.time(ranks, threads) < self.time(best, threads) {
                best = ranks;
            }
            ranks *= 2;
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(ranks: usize, threads: usize, m: &ScalingModel) -> RunFigures {
        let cores = (ranks * threads) as f64;
        RunFigures {
            ranks,
            threads,
            compute_s: m.serial_s + m.parallel_s / cores,
            comm_s: m.comm_per_level_s * (ranks as f64).log2(),
        }
    }

    #[test]
    fn fit_recovers_the_parameters_of_exact_data() {
        let truth = ScalingModel {
            serial_s: 0.5,
            parallel_s: 8.0,
            comm_per_level_s: 0.25,
        };
        let runs: Vec<_> = [1, 2, 3, 4].iter().map(|&r| run(r, 1, &truth)).collect();
        let fitted = ScalingModel::fit(&runs).unwrap();
        assert!((fitted.serial_s - 0.5).abs() < 1e-12, "{fitted:?}");
        assert!((fitted.parallel_s - 8.0).abs() < 1e-12, "{fitted:?}");
        assert!((fitted.comm_per_level_s - 0.25).abs() < 1e-12, "{fitted:?}");
        // T(8) = 0.5 + 1 + 0.75 = 2.25; speedup over T(1) = 8.5 is 8.5 / 2.25.
        assert!((fitted.speedup(fitted.time(1, 1), 8, 1) - 8.5 / 2.25).abs() < 1e-12);
        // d/dr of 8/r + 0.25 log2 r vanishes at r = 8 ln 2 / 0.25 ≈ 22: best power of two is 16 or 32.
        assert!(matches!(fitted.best_ranks(1, 512), 16 | 32));
    }

    #[test]
    fn degenerate_inputs_give_conservative_fits() {
        assert_eq!(ScalingModel::fit(&[]), None);
        let one = ScalingModel::fit(&[RunFigures {
            ranks: 1,
            threads: 2,
            compute_s: 3.0,
            comm_s: 0.1,
        }])
        .unwrap();
        // One core count: assumed fully parallel; no multi-rank run: no comm term.
        assert_eq!(
            one,
            ScalingModel {
                serial_s: 0.0,
                parallel_s: 6.0,
                comm_per_level_s: 0.0
            }
        );
        // Compute that grows with cores (noise) is treated as all serial.
        let growing = [
            RunFigures {
                ranks: 1,
                threads: 1,
                compute_s: 1.0,
                comm_s: 0.0,
            },
            RunFigures {
                ranks: 2,
                threads: 1,
                compute_s: 1.2,
                comm_s: 0.1,
            },
        ];
        let m = ScalingModel::fit(&growing).unwrap();
        assert_eq!((m.serial_s, m.parallel_s), (1.1, 0.0));
        assert!((m.comm_per_level_s - 0.1).abs() < 1e-15);
    }
}
