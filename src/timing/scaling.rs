//! Scaling arithmetic: a performance model fitted to measured runs, for predicting where
//! adding ranks stops paying off, with the uncertainty the measurements carry.
//!
//! The time of one repetition on `r` ranks with `t` threads each is modelled as
//!
//! ```text
//! T(r, t) = (serial_s + parallel_s / (r·t)) · I(r)  +  m · α · log2(r)  +  b · β   (r > 1)
//! T(1, t) =  serial_s + parallel_s / t
//! ```
//!
//! - `serial_s + parallel_s / p` is Amdahl's law for the compute, fitted to the compute time
//!   of the rank that computed *least* in each run (two parameters: at least two core counts
//!   are needed). That rank is the least disturbed: on a machine whose cores do not run at the
//!   same speed (a shared VM, a busy node), the mean would mix a slow core's time into the
//!   work and the fit would read it as serial work that does not divide.
//! - `I(r)` is the **imbalance**, slowest compute / fastest compute, measured on the
//!   multi-rank runs and taken as constant. The waiting it causes is proportional to compute,
//!   so it shrinks with the compute as ranks are added — it is *not* communication and is not
//!   extrapolated as such. (Booking it as communication is how a 2-rank run on a machine with
//!   one slow core used to predict that more ranks would be slower.)
//! - `m · α · log2(r) + b · β` is the **transfer**: `m` messages (comm calls) and `b` bytes per
//!   rank per repetition, as the runs' reports count them, each message paying a latency `α`
//!   per level of a collective tree and each byte `β`. The transfer is measured on the rank
//!   that computed longest (it arrives last at every collective, so it does not wait) and `α`,
//!   `β` are fitted to the multi-rank runs: both with two or more rank counts above one, `α`
//!   alone with one.
//!
//! Two adjustments carry a fit to runs it did not see:
//!
//! - [`ScalingModel::with_cores`]: the cores the ranks share in all. Beyond them (more
//!   `r·t` than cores: oversubscription) the ranks time-share the cores, and ranks that meet
//!   at every step go at the pace of the busiest core, which runs `⌈r·t / cores⌉` of them: each
//!   step's compute stretches by that factor. (An even share, `r·t / cores`, under-predicted
//!   3 ranks of `heat2d` on 2 cores by 30-35%.)
//! - [`ScalingModel::on_network`]: a different network (across hosts instead of shared
//!   memory): the difference between two probes' one-way latency and per-byte time (spmd's
//!   own ping-pong on each network) is added to `α` and `β`. What a message costs inside the
//!   library stays; what the wire adds changes.
//!
//! Every figure is the median over each run's repetitions. [`ScalingModel::band`] resamples
//! those repetitions (a bootstrap) and refits, which gives an interval around each prediction;
//! with noisy runs it is wide, and it should be read before the prediction itself.

use serde::{Deserialize, Serialize};

use super::rank_times::RegionKind;
use super::report::Report;
use super::stats::Spread;

/// One repetition of a run, as the model sees it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSample {
    /// Compute seconds of the rank that computed least.
    pub compute_s: f64,
    /// Compute seconds of the rank that computed longest.
    pub compute_max_s: f64,
    /// Comm seconds of that rank (moving data, not waiting).
    pub transfer_s: f64,
}

/// One measured run: its size, its repetitions, and how much it communicates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunFigures {
    /// Ranks in the run.
    pub ranks: usize,
    /// Threads per rank.
    pub threads: usize,
    /// Every measured repetition.
    pub samples: Vec<RunSample>,
    /// Comm calls per rank per repetition.
    pub messages: f64,
    /// Payload bytes per rank per repetition.
    pub bytes: f64,
}

impl RunFigures {
    /// The figures of the run a [`Report`] describes.
    pub fn from_report(report: &Report) -> RunFigures {
        let (calls, bytes) = report
            .regions
            .iter()
            .filter(|r| r.kind == RegionKind::Comm && r.name != "final_sync")
            .fold((0.0, 0.0), |(c, b), r| {
                (c + r.calls as f64, b + r.bytes as f64)
            });
        let reps = report.repetitions.max(1) as f64;
        RunFigures {
            ranks: report.ranks,
            threads: report.threads_per_rank,
            samples: report
                .samples
                .iter()
                .map(|s| RunSample {
                    compute_s: s.compute_min_s,
                    compute_max_s: s.compute_max_s,
                    transfer_s: s.transfer_s,
                })
                .collect(),
            messages: calls / reps,
            bytes: bytes / (report.ranks.max(1) as f64 * reps),
        }
    }

    fn cores(&self) -> usize {
        self.ranks.max(1) * self.threads.max(1)
    }

    fn median(&self, f: impl Fn(&RunSample) -> f64) -> f64 {
        Spread::of(self.samples.iter().map(f)).median
    }
}

/// The fitted model; see the [module docs](self).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScalingModel {
    /// Compute seconds that do not shrink with more cores.
    pub serial_s: f64,
    /// Compute seconds that divide over `ranks × threads` cores.
    pub parallel_s: f64,
    /// Slowest compute / fastest compute on more than one rank (1 when no multi-rank run).
    pub imbalance: f64,
    /// Seconds per message per level of a collective tree (`α`).
    pub latency_s: f64,
    /// Seconds per payload byte (`β`).
    pub seconds_per_byte: f64,
    /// Messages per rank per repetition (from the largest run).
    pub messages: f64,
    /// Payload bytes per rank per repetition (from the largest run).
    pub bytes: f64,
    /// The cores the ranks share in all, if limited (see [`with_cores`](Self::with_cores)).
    #[serde(default)]
    pub cores: Option<usize>,
    /// What another network adds to `α` and `β` (see [`on_network`](Self::on_network));
    /// zero for the network the model was fitted on.
    #[serde(default)]
    pub network_delta: (f64, f64),
}

impl ScalingModel {
    /// Least-squares fit to `runs` (non-negative parameters).
    ///
    /// # Errors
    /// A sentence saying why not, when the runs cannot determine the model: fewer than two
    /// core counts (the compute part has two parameters), or a run without samples.
    pub fn fit(runs: &[RunFigures]) -> Result<ScalingModel, String> {
        if let Some(r) = runs.iter().find(|r| r.samples.is_empty()) {
            return Err(format!(
                "the run on {} ranks x {} threads has no samples",
                r.ranks, r.threads
            ));
        }
        let mut cores: Vec<usize> = runs.iter().map(RunFigures::cores).collect();
        cores.sort_unstable();
        cores.dedup();
        if cores.len() < 2 {
            return Err(format!(
                "{} core count{} measured, the model has two compute parameters (serial and \
                 parallel): measure at least two core counts before extrapolating",
                cores.len(),
                if cores.len() == 1 { " is" } else { "s are" }
            ));
        }
        let (serial_s, parallel_s) = fit_amdahl(runs);
        let multi: Vec<&RunFigures> = runs.iter().filter(|r| r.ranks > 1).collect();
        let imbalance = if multi.is_empty() {
            1.0
        } else {
            Spread::of(multi.iter().map(|r| {
                let fastest = r.median(|s| s.compute_s);
                if fastest > 0.0 {
                    (r.median(|s| s.compute_max_s) / fastest).max(1.0)
                } else {
                    1.0
                }
            }))
            .median
        };
        let largest = runs
            .iter()
            .max_by_key(|r| (r.ranks, r.threads))
            .expect("at least two runs");
        let (latency_s, seconds_per_byte) = fit_transfer(&multi);
        Ok(ScalingModel {
            serial_s,
            parallel_s,
            imbalance,
            latency_s,
            seconds_per_byte,
            messages: largest.messages,
            bytes: largest.bytes,
            cores: None,
            network_delta: (0.0, 0.0),
        })
    }

    /// This model on a machine (or set of nodes) of `cores` cores in all: a run of more
    /// ranks × threads time-shares them, and goes at the pace of the busiest core, so each
    /// rank's compute stretches by `⌈ranks·threads / cores⌉`.
    pub fn with_cores(self, cores: usize) -> ScalingModel {
        ScalingModel {
            cores: Some(cores.max(1)),
            ..self
        }
    }

    /// This model on another network: each one-way message costs `extra_latency_s` more
    /// and each byte `extra_seconds_per_byte` more (either may be negative) than on the
    /// network the model was fitted on, as a probe of both networks measured them.
    pub fn on_network(self, extra_latency_s: f64, extra_seconds_per_byte: f64) -> ScalingModel {
        ScalingModel {
            network_delta: (extra_latency_s, extra_seconds_per_byte),
            ..self
        }
    }

    /// `(α, β)` on the network predicted for: the fitted ones plus the network's difference,
    /// never below zero.
    pub fn network(&self) -> (f64, f64) {
        (
            (self.latency_s + self.network_delta.0).max(0.0),
            (self.seconds_per_byte + self.network_delta.1).max(0.0),
        )
    }

    /// The predicted compute seconds per repetition on `ranks × threads` (the slowest rank's).
    pub fn compute(&self, ranks: usize, threads: usize) -> f64 {
        let cores = (ranks.max(1) * threads.max(1)) as f64;
        let fastest = self.serial_s + self.parallel_s / cores;
        // More threads than cores: the busiest core runs ⌈threads / cores⌉ of them.
        let shared = self
            .cores
            .map_or(1.0, |c| (cores / c as f64).ceil().max(1.0));
        if ranks > 1 {
            fastest * self.imbalance * shared
        } else {
            fastest * shared
        }
    }

    /// The predicted transfer seconds per repetition on `ranks` ranks.
    pub fn transfer(&self, ranks: usize) -> f64 {
        if ranks <= 1 {
            return 0.0;
        }
        let (latency_s, seconds_per_byte) = self.network();
        self.messages * latency_s * (ranks as f64).log2() + self.bytes * seconds_per_byte
    }

    /// Predicted seconds per repetition on `ranks` ranks with `threads` threads each.
    pub fn time(&self, ranks: usize, threads: usize) -> f64 {
        self.compute(ranks, threads) + self.transfer(ranks)
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

    /// An interval for the predicted time on `ranks × threads`: refits on `bootstraps`
    /// resamplings of every run's repetitions (with replacement, a fixed seed so the result is
    /// reproducible) and returns the 2.5th and 97.5th percentiles of the predictions.
    /// `(time, time)` when the runs have one repetition each (nothing to resample).
    pub fn band(
        &self,
        runs: &[RunFigures],
        ranks: usize,
        threads: usize,
        bootstraps: usize,
    ) -> (f64, f64) {
        let point = self.time(ranks, threads);
        if runs.iter().all(|r| r.samples.len() <= 1) || bootstraps == 0 {
            return (point, point);
        }
        let mut rng = SplitMix(0x5eed_5eed_5eed_5eed);
        let mut predictions: Vec<f64> = (0..bootstraps)
            .filter_map(|_| {
                let resampled: Vec<RunFigures> = runs
                    .iter()
                    .map(|r| RunFigures {
                        samples: (0..r.samples.len())
                            .map(|_| r.samples[rng.below(r.samples.len())])
                            .collect(),
                        ..r.clone()
                    })
                    .collect();
                ScalingModel::fit(&resampled).ok().map(|m| {
                    // The same machine and network as this model's predictions.
                    let m = ScalingModel {
                        cores: self.cores,
                        network_delta: self.network_delta,
                        ..m
                    };
                    m.time(ranks, threads)
                })
            })
            .collect();
        predictions.sort_by(f64::total_cmp);
        let at = |q: f64| predictions[((q * (predictions.len() - 1) as f64).round()) as usize];
        (at(0.025), at(0.975))
    }
}

/// `compute = serial + parallel / cores` by least squares on the runs' median compute,
/// parameters kept non-negative.
fn fit_amdahl(runs: &[RunFigures]) -> (f64, f64) {
    let points: Vec<(f64, f64)> = runs
        .iter()
        .map(|r| (1.0 / r.cores() as f64, r.median(|s| s.compute_s)))
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
    let w = sxy / sxx;
    let s = mean_y - w * mean_x;
    if s < 0.0 {
        through_origin()
    } else if w < 0.0 {
        (mean_y.max(0.0), 0.0)
    } else {
        (s, w)
    }
}

/// `(α, β)` from the multi-rank runs: `transfer = messages · α · log2(r) + bytes · β` by least
/// squares over two or more rank counts, `α` alone from one, `(0, 0)` from none.
fn fit_transfer(multi: &[&RunFigures]) -> (f64, f64) {
    let rows: Vec<(f64, f64, f64)> = multi
        .iter()
        .map(|r| {
            (
                r.messages * (r.ranks as f64).log2(),
                r.bytes,
                r.median(|s| s.transfer_s),
            )
        })
        .collect();
    let mut rank_counts: Vec<usize> = multi.iter().map(|r| r.ranks).collect();
    rank_counts.sort_unstable();
    rank_counts.dedup();
    let latency_only = || {
        let (sxy, sxx) = rows
            .iter()
            .fold((0.0, 0.0), |(a, b), &(x, _, y)| (a + x * y, b + x * x));
        (if sxx > 0.0 { (sxy / sxx).max(0.0) } else { 0.0 }, 0.0)
    };
    if rank_counts.len() < 2 {
        return latency_only();
    }
    // Normal equations of the two-parameter fit through the origin.
    let (mut a11, mut a12, mut a22, mut b1, mut b2) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for &(x1, x2, y) in &rows {
        a11 += x1 * x1;
        a12 += x1 * x2;
        a22 += x2 * x2;
        b1 += x1 * y;
        b2 += x2 * y;
    }
    let det = a11 * a22 - a12 * a12;
    if det.abs() <= 1e-12 * (a11 * a22).abs().max(f64::MIN_POSITIVE) {
        // The byte counts grow like the messages: the two cannot be told apart.
        return latency_only();
    }
    let alpha = (b1 * a22 - b2 * a12) / det;
    let beta = (a11 * b2 - a12 * b1) / det;
    match (alpha >= 0.0, beta >= 0.0) {
        (true, true) => (alpha, beta),
        (true, false) => latency_only(),
        (false, _) => {
            let bytes_only = if a22 > 0.0 { (b2 / a22).max(0.0) } else { 0.0 };
            (0.0, bytes_only)
        }
    }
}

/// A small deterministic generator for the bootstrap (SplitMix64).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run whose repetitions follow a known model exactly, with ±`noise` relative jitter
    /// alternating over `k` repetitions.
    #[allow(clippy::too_many_arguments)]
    fn synthetic(
        ranks: usize,
        serial: f64,
        parallel: f64,
        imbalance: f64,
        messages: f64,
        alpha: f64,
        bytes: f64,
        beta: f64,
        noise: f64,
        k: usize,
    ) -> RunFigures {
        let fastest = serial + parallel / ranks as f64;
        let transfer = if ranks > 1 {
            messages * alpha * (ranks as f64).log2() + bytes * beta
        } else {
            0.0
        };
        let factor = if ranks > 1 { imbalance } else { 1.0 };
        RunFigures {
            ranks,
            threads: 1,
            samples: (0..k)
                .map(|i| {
                    let jitter = 1.0 + noise * if i % 2 == 0 { 1.0 } else { -1.0 };
                    RunSample {
                        compute_s: fastest * jitter,
                        compute_max_s: fastest * factor * jitter,
                        transfer_s: transfer * jitter,
                    }
                })
                .collect(),
            messages,
            bytes,
        }
    }

    #[test]
    fn known_imbalance_and_latency_are_recovered() {
        // 2 s serial + 60 s parallel, imbalance 1.3, 40 messages of 50 µs per level and
        // 1 MB at 1 ns per byte, measured at 1..8 ranks with ±3% jitter over 7 repetitions.
        let runs: Vec<RunFigures> = [1, 2, 4, 8]
            .into_iter()
            .map(|r| synthetic(r, 2.0, 60.0, 1.3, 40.0, 50e-6, 1e6, 1e-9, 0.03, 7))
            .collect();
        let m = ScalingModel::fit(&runs).unwrap();
        let within = |found: f64, truth: f64| (found - truth).abs() <= 0.10 * truth;
        assert!(within(m.imbalance, 1.3), "imbalance {}", m.imbalance);
        assert!(within(m.latency_s, 50e-6), "latency {}", m.latency_s);
        assert!(
            within(m.seconds_per_byte, 1e-9),
            "per byte {}",
            m.seconds_per_byte
        );
        assert!(
            within(m.serial_s, 2.0) && within(m.parallel_s, 60.0),
            "{m:?}"
        );
        // 64 ranks: (2 + 60/64)·1.3 + 40·50µs·6 + 1 MB·1 ns.
        let truth = (2.0 + 60.0 / 64.0) * 1.3 + 40.0 * 50e-6 * 6.0 + 1e6 * 1e-9;
        assert!(within(m.time(64, 1), truth), "{} vs {truth}", m.time(64, 1));
        let (low, high) = m.band(&runs, 64, 1, 200);
        assert!(
            low <= m.time(64, 1) && m.time(64, 1) <= high,
            "{low} {high}"
        );
        assert!(high > low, "the jitter must give the band some width");
    }

    #[test]
    fn waiting_is_not_extrapolated_as_communication() {
        // What pi measured at 1 and 2 ranks: no real communication, one core 30% slower. The
        // model must predict near-linear speedup, not a slowdown, and no serial part.
        let runs = [
            synthetic(1, 0.0, 2.0, 1.0, 1.0, 0.0, 32.0, 0.0, 0.02, 5),
            synthetic(2, 0.0, 2.0, 1.3, 1.0, 20e-6, 32.0, 0.0, 0.02, 5),
        ];
        assert_eq!(ScalingModel::fit(&runs).unwrap().serial_s, 0.0);
        let m = ScalingModel::fit(&runs).unwrap();
        let reference = 2.0;
        let at = |r| m.speedup(reference, r, 1);
        assert!(at(8) > 5.0 && at(64) > 30.0, "{} {}", at(8), at(64));
        assert!(m.best_ranks(1, 512) >= 256, "{}", m.best_ranks(1, 512));
    }

    #[test]
    fn oversubscription_and_another_network_change_the_prediction() {
        let runs: Vec<RunFigures> = [1, 2]
            .into_iter()
            .map(|r| synthetic(r, 1.0, 8.0, 1.0, 100.0, 2e-6, 1e6, 1e-10, 0.0, 3))
            .collect();
        let m = ScalingModel::fit(&runs).unwrap();
        // 4 ranks on 2 cores: each rank's (1 + 8/4) s of compute stretches by 4/2; 3 ranks
        // by 2 too (one core runs two of them), 5 by 3.
        let shared = m.with_cores(2);
        assert!(
            (shared.compute(4, 1) - 6.0).abs() < 1e-9,
            "{}",
            shared.compute(4, 1)
        );
        let three = (1.0 + 8.0 / 3.0) * 2.0;
        assert!((shared.compute(3, 1) - three).abs() < 1e-9);
        assert!((shared.compute(5, 1) - (1.0 + 8.0 / 5.0) * 3.0).abs() < 1e-9);
        assert!((shared.compute(2, 1) - m.compute(2, 1)).abs() < 1e-12);
        // A network 8 µs slower per message and 4e-10 s slower per byte.
        let far = m.on_network(8e-6, 4e-10);
        let (alpha, beta) = far.network();
        assert!((alpha - (m.latency_s + 8e-6)).abs() < 1e-15, "{alpha}");
        assert!(
            (beta - (m.seconds_per_byte + 4e-10)).abs() < 1e-20,
            "{beta}"
        );
        let transfer = 100.0 * alpha * 2.0 + 1e6 * beta;
        assert!(
            (far.transfer(4) - transfer).abs() < 1e-12,
            "{}",
            far.transfer(4)
        );
        // Never below zero.
        assert_eq!(m.on_network(-1.0, -1.0).network(), (0.0, 0.0));
        // The band refits on the same machine and network.
        let runs3: Vec<RunFigures> = [1, 2]
            .into_iter()
            .map(|r| synthetic(r, 1.0, 8.0, 1.0, 100.0, 2e-6, 1e6, 1e-10, 0.01, 5))
            .collect();
        let both = ScalingModel::fit(&runs3)
            .unwrap()
            .with_cores(2)
            .on_network(8e-6, 4e-10);
        let (low, high) = both.band(&runs3, 4, 1, 100);
        assert!(low <= both.time(4, 1) * 1.001 && both.time(4, 1) <= high * 1.001);
        assert!(low > 5.0, "{low}: the band must time-share the cores too");
    }

    #[test]
    fn too_few_points_are_refused() {
        let one = [synthetic(2, 0.0, 1.0, 1.0, 1.0, 1e-6, 8.0, 0.0, 0.0, 3)];
        let e = ScalingModel::fit(&one).unwrap_err();
        assert!(e.contains("at least two core counts"), "{e}");
        let empty = RunFigures {
            samples: Vec::new(),
            ..one[0].clone()
        };
        assert!(ScalingModel::fit(&[empty]).is_err());
    }

    #[test]
    fn one_multi_rank_point_fits_latency_alone() {
        let runs = [
            synthetic(1, 1.0, 4.0, 1.0, 10.0, 0.0, 100.0, 0.0, 0.0, 3),
            synthetic(2, 1.0, 4.0, 1.0, 10.0, 5e-6, 100.0, 0.0, 0.0, 3),
        ];
        let m = ScalingModel::fit(&runs).unwrap();
        assert!((m.latency_s - 5e-6).abs() < 1e-12, "{m:?}");
        assert_eq!(m.seconds_per_byte, 0.0);
        assert!((m.serial_s - 1.0).abs() < 1e-9 && (m.parallel_s - 4.0).abs() < 1e-9);
        // No repetitions to resample: the band is the point.
        let single = [
            synthetic(1, 1.0, 4.0, 1.0, 10.0, 0.0, 100.0, 0.0, 0.0, 1),
            synthetic(2, 1.0, 4.0, 1.0, 10.0, 5e-6, 100.0, 0.0, 0.0, 1),
        ];
        let m = ScalingModel::fit(&single).unwrap();
        let (low, high) = m.band(&single, 8, 1, 100);
        assert_eq!((low, high), (m.time(8, 1), m.time(8, 1)));
    }
}
