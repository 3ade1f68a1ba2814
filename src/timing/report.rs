//! [`Report`]: every rank's figures aggregated on the root: medians and spreads over the
//! measured repetitions, per-rank compute and comm, speedup, warnings. Its table and CSV forms
//! are in `table.rs`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::matrix::CommMatrix;
use super::rank_times::{NodeInfo, RankTimes, RegionKind, RegionTimes};
use super::stats::Spread;
use super::trace_file::TraceSummary;
use crate::error::{Error, Result};

/// Minimum, mean and maximum of one figure over the ranks.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stat {
    /// The smallest value over ranks.
    pub min: f64,
    /// The mean over ranks.
    pub avg: f64,
    /// The largest value over ranks.
    pub max: f64,
}

impl Stat {
    /// The statistic of `values`; all zero when there are none.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Stat {
        let (mut min, mut max, mut sum, mut n) = (f64::INFINITY, f64::NEG_INFINITY, 0.0, 0_usize);
        for v in values {
            min = min.min(v);
            max = max.max(v);
            sum += v;
            n += 1;
        }
        if n == 0 {
            return Stat {
                min: 0.0,
                avg: 0.0,
                max: 0.0,
            };
        }
        Stat {
            min,
            avg: sum / n as f64,
            max,
        }
    }
}

/// One region over all ranks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RegionReport {
    /// The region's name.
    pub name: String,
    /// `"compute"` or `"comm"`.
    pub kind: RegionKind,
    /// Calls on the rank that entered it most often.
    pub calls: u64,
    /// Least time in the region on any rank (a rank that never entered it counts 0).
    pub min_s: f64,
    /// Mean time over ranks.
    pub avg_s: f64,
    /// Most time on any rank.
    pub max_s: f64,
    /// Payload bytes sent plus received, summed over ranks.
    pub bytes: u64,
    /// Mean time spent waiting for other ranks (`None` for compute regions and without wait
    /// separation).
    pub wait_avg_s: Option<f64>,
    /// For regions of non-blocking operations (`None` otherwise): mean time in their posts,
    /// in their waits, and in flight between the two while the rank did other work. The
    /// in-flight time is the communication that *could* hide behind computation; the wait
    /// is what was not hidden.
    #[serde(default)]
    pub overlap: Option<Overlap>,
}

/// Posted, waited and in-flight time of a region's non-blocking operations (means over ranks).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Overlap {
    /// Seconds inside the posts.
    pub posted_avg_s: f64,
    /// Seconds inside the waits (communication that was not hidden).
    pub waited_avg_s: f64,
    /// Seconds between post and wait: the window in which the transfer ran behind the rank's
    /// other work (hidden communication, at most this much).
    pub in_flight_avg_s: f64,
}

/// One rank's share of the run: its median compute, comm and wait seconds over the
/// repetitions.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RankShare {
    /// Seconds not spent in communication.
    pub compute_s: f64,
    /// Seconds in communication, waiting included.
    pub comm_s: f64,
    /// Of `comm_s`, seconds waiting for slower ranks (wait separation only, else 0).
    pub wait_s: f64,
}

/// One measured repetition over all ranks.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// The slowest rank's wall time.
    pub wall_s: f64,
    /// Compute time (wall minus comm), mean over ranks.
    pub compute_mean_s: f64,
    /// Compute time of the rank that computed least.
    #[serde(default)]
    pub compute_min_s: f64,
    /// Compute time of the rank that computed longest.
    pub compute_max_s: f64,
    /// Comm time of the rank that computed longest, minus its waiting if measured: it arrives
    /// last at every collective, so its comm is moving data, not waiting for others.
    pub transfer_s: f64,
    /// The sequential baseline this repetition is compared with, if one was measured.
    pub baseline_s: Option<f64>,
}

/// What a [`Warning`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WarningKind {
    /// Only one measurement: nothing says how much it would vary.
    SingleSample,
    /// The speedup (or, without a baseline, the time) varied by more than 10% over the
    /// repetitions.
    Noisy,
    /// Efficiency above 100% or a negative Karp–Flatt fraction.
    Superlinear,
    /// More rayon threads than cores on a node.
    Oversubscribed,
    /// The slowest rank computed more than 1.2× the mean.
    Imbalance,
}

/// A caveat the report raises about its own figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Warning {
    /// What it is about.
    pub kind: WarningKind,
    /// What was seen and what to do, in a sentence.
    pub message: String,
}

/// Spread of the speedup (or time) above which the report calls the machine noisy.
pub const NOISY_RANGE: f64 = 0.10;
/// Imbalance above which the report names the slowest rank.
pub const IMBALANCE_WARNING: f64 = 1.2;

/// The timing report of a run.
///
/// Made by [`Spmd::report`](crate::Spmd::report) on the root, or from known per-rank figures
/// with [`Report::from_ranks`]. `Display` prints the human table; [`Report::to_csv`] the CSV.
///
/// # The JSON report
/// [`Report::to_json`] writes one object whose keys are the fields of [`Report`]:
///
/// | key | meaning |
/// |---|---|
/// | `program`, `ranks`, `threads_per_rank`, `repetitions` | what ran, and how many measured repetitions the figures summarise (1: one measurement of the whole run) |
/// | `wall_s` | a [`Spread`] (`samples`, `median`, `min`, `max`, `ci_low`, `ci_high`, `confidence`) of the time of one repetition, the slowest rank's |
/// | `compute_s`, `comm_s` | a [`Stat`] (`min`, `avg`, `max` over ranks) of each rank's median over repetitions |
/// | `wait_separation`, `wait_s`, `transfer_s` | with wait separation: comm split into waiting for slower ranks and moving data (`Stat`s), else `null` |
/// | `comm_fraction` | median over repetitions of mean comm / slowest wall |
/// | `imbalance`, `slowest_rank` | median over repetitions of max compute / mean compute, and the rank with the largest median compute |
/// | `peak_rss_bytes` | a `Stat` of each rank's peak resident memory |
/// | `baseline_s`, `speedup`, `efficiency` | `Spread`s of the sequential baseline, baseline / wall (paired per repetition) and speedup / cores; `null` without a baseline |
/// | `karp_flatt` | the Karp–Flatt serial fraction of the median speedup (`null` on one core) |
/// | `samples` | per repetition: `wall_s`, `compute_mean_s`, `compute_min_s`, `compute_max_s`, `transfer_s`, `baseline_s` — what the scaling model resamples |
/// | `warnings` | `{kind, message}` of every warning the report raised (see [`WarningKind`]) |
/// | `regions` | per region: `name`, `kind`, `calls`, `min_s`, `avg_s`, `max_s` over ranks, `bytes` summed, `wait_avg_s`, `overlap` (non-blocking operations: `posted_avg_s`, `waited_avg_s`, `in_flight_avg_s`, else `null`); with repetitions, totals over the measured repetitions |
/// | `per_rank` | every rank's `compute_s`, `comm_s`, `wait_s` (medians over repetitions) |
/// | `trace` | with tracing on, what the trace file holds (see [`TraceSummary`]), else `null` |
/// | `comm_matrix` | point-to-point traffic: `ranks` and `entries` of `{operation, from, to, bytes, messages}` (see [`CommMatrix`]) |
/// | `results` | what the program recorded with [`Report::record`], and the last run of a [farm](crate::farm) (`farm`) or [pipeline](crate::pipeline) (`pipeline`) |
/// | `sections` | the farm's or pipeline's figures as the table prints them |
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The program's name.
    pub program: String,
    /// The number of ranks.
    pub ranks: usize,
    /// Rayon threads per rank.
    pub threads_per_rank: usize,
    /// How many measurements the figures summarise: the repetitions of
    /// [`Spmd::repeat`](crate::Spmd::repeat), or 1 (the whole run since the start).
    pub repetitions: usize,
    /// Seconds of one repetition (the slowest rank's; baseline runs excluded).
    pub wall_s: Spread,
    /// Seconds not spent in communication, per rank (each rank's median over repetitions).
    pub compute_s: Stat,
    /// Seconds in communication (transfer and waiting), per rank (median over repetitions).
    pub comm_s: Stat,
    /// Whether collectives were preceded by a barrier to separate waiting from transfer.
    pub wait_separation: bool,
    /// Of `comm_s`, seconds waiting for slower ranks (`None` without wait separation).
    pub wait_s: Option<Stat>,
    /// Of `comm_s`, seconds moving data (`None` without wait separation).
    pub transfer_s: Option<Stat>,
    /// Mean comm time divided by the slowest rank's wall time (median over repetitions).
    pub comm_fraction: f64,
    /// Slowest rank's compute time divided by the mean (1 is perfect balance; median over
    /// repetitions).
    pub imbalance: f64,
    /// The rank with the largest (median) compute time.
    pub slowest_rank: usize,
    /// Peak resident memory per rank, bytes.
    pub peak_rss_bytes: Stat,
    /// The sequential baseline's seconds, if one was measured.
    pub baseline_s: Option<Spread>,
    /// Baseline / wall, paired repetition by repetition.
    pub speedup: Option<Spread>,
    /// `speedup / (ranks × threads_per_rank)`.
    pub efficiency: Option<Spread>,
    /// The Karp–Flatt experimentally determined serial fraction of the median speedup,
    /// `(1/speedup − 1/p) / (1 − 1/p)` with `p = ranks × threads_per_rank` (`None` if `p = 1`).
    pub karp_flatt: Option<f64>,
    /// Every repetition's figures over the ranks.
    pub samples: Vec<Sample>,
    /// Caveats about these figures, for the reader (also printed with the table).
    pub warnings: Vec<Warning>,
    /// Every region entered on any rank, slowest (by mean time) first.
    pub regions: Vec<RegionReport>,
    /// Point-to-point bytes and messages between ranks, per operation, over the whole run.
    #[serde(default)]
    pub comm_matrix: CommMatrix,
    /// Every rank's compute, comm and wait (medians over repetitions), index = rank.
    #[serde(default)]
    pub per_rank: Vec<RankShare>,
    /// The timeline trace written with this report when tracing is on (see
    /// [`crate::runtime::trace`]), else `None`.
    #[serde(default)]
    pub trace: Option<TraceSummary>,
    /// What the program recorded about its own run with [`record`](Report::record): its
    /// answer, whether it verified it, problem sizes (empty unless it recorded something).
    #[serde(default)]
    pub results: BTreeMap<String, serde_json::Value>,
    /// What the library's task farm or pipeline said about its last run (per-rank tasks,
    /// busy and idle time; per-stage throughput, latency and the limiting stage), printed
    /// under the table; the same figures are in `results` under `farm` and `pipeline`.
    #[serde(default)]
    pub sections: Vec<String>,
}

/// Per rank: `(wall, comm, wait)` of every sample.
type Series = Vec<(f64, f64, f64)>;

impl Report {
    /// Aggregates per-rank figures (index = rank). `baseline_s` is the sequential baseline
    /// measured once (the total of [`Spmd::baseline`](crate::Spmd::baseline) calls), used
    /// when the ranks recorded no baseline per repetition.
    ///
    /// # Panics
    /// If `ranks` is empty.
    #[track_caller]
    pub fn from_ranks(
        program: &str,
        threads_per_rank: usize,
        wait_separation: bool,
        ranks: &[RankTimes],
        baseline_s: Option<f64>,
    ) -> Report {
        assert!(!ranks.is_empty(), "a report needs at least one rank");
        let series = rank_series(ranks);
        let k = series[0].len();
        let paired = &ranks[0].baselines_s;
        // Baselines measured repetition by repetition pair with them; a baseline measured
        // once serves every sample.
        let baseline_of = |i: usize| match paired.len() {
            n if n == k => Some(paired[i]),
            _ => baseline_s,
        };
        let samples: Vec<Sample> = (0..k)
            .map(|i| sample(&series, i, wait_separation, baseline_of(i)))
            .collect();

        let per_rank = |f: &dyn Fn(&(f64, f64, f64)) -> f64| -> Vec<f64> {
            series
                .iter()
                .map(|s| Spread::of(s.iter().map(f)).median)
                .collect()
        };
        let compute = per_rank(&|&(w, c, _)| (w - c).max(0.0));
        let comm = per_rank(&|&(_, c, _)| c);
        let waited = per_rank(&|&(_, _, w)| w);
        let shares: Vec<RankShare> = (0..ranks.len())
            .map(|r| RankShare {
                compute_s: compute[r],
                comm_s: comm[r],
                wait_s: waited[r],
            })
            .collect();
        let (wait_s, transfer_s) = if wait_separation {
            (
                Some(Stat::of(per_rank(&|&(_, _, w)| w))),
                Some(Stat::of(per_rank(&|&(_, c, w)| (c - w).max(0.0)))),
            )
        } else {
            (None, None)
        };
        let slowest_rank = compute
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or(0, |(r, _)| r);
        let median_of = |f: &dyn Fn(usize) -> f64| Spread::of((0..k).map(f)).median;
        let comm_fraction = median_of(&|i| {
            let mean: f64 = series.iter().map(|s| s[i].1).sum::<f64>() / series.len() as f64;
            ratio(mean, samples[i].wall_s)
        });
        let imbalance = median_of(&|i| {
            let s = &samples[i];
            if s.compute_mean_s > 0.0 {
                s.compute_max_s / s.compute_mean_s
            } else {
                1.0
            }
        });

        let cores = ranks.len() * threads_per_rank.max(1);
        let baselines: Vec<f64> = samples.iter().filter_map(|s| s.baseline_s).collect();
        let measured_baseline = baselines.len() == k && k > 0;
        let speedup = measured_baseline.then(|| {
            Spread::of(
                samples
                    .iter()
                    .map(|s| ratio(s.baseline_s.unwrap_or(0.0), s.wall_s)),
            )
        });
        let efficiency = speedup.map(|s| s.map(|x| x / cores as f64));
        let karp_flatt = speedup.and_then(|s| karp_flatt(s.median, cores));
        let mut report = Report {
            program: program.to_owned(),
            ranks: ranks.len(),
            threads_per_rank,
            repetitions: k,
            wall_s: Spread::of(samples.iter().map(|s| s.wall_s)),
            compute_s: Stat::of(compute),
            comm_s: Stat::of(comm),
            wait_separation,
            wait_s,
            transfer_s,
            comm_fraction,
            imbalance,
            slowest_rank,
            peak_rss_bytes: Stat::of(ranks.iter().map(|r| r.peak_rss_bytes as f64)),
            baseline_s: measured_baseline.then(|| Spread::of(baselines)),
            speedup,
            efficiency,
            karp_flatt,
            samples,
            warnings: Vec::new(),
            regions: merge_regions(ranks, wait_separation),
            comm_matrix: CommMatrix::from_ranks(ranks),
            per_rank: shares,
            trace: None,
            results: BTreeMap::new(),
            sections: Vec::new(),
        };
        let nodes: Vec<&NodeInfo> = ranks.iter().filter_map(|r| r.node.as_ref()).collect();
        report.warnings = warnings(&report, &nodes);
        report
    }

    /// Records a figure of the program's own under `key` (replacing an earlier one), for the
    /// JSON report: e.g. `report.record("verified", true)`, `report.record("iterations", 412)`.
    ///
    /// # Panics
    /// If `value` cannot be represented as JSON (a map with non-string keys).
    #[track_caller]
    pub fn record(&mut self, key: &str, value: impl Serialize) {
        let value = serde_json::to_value(value).expect("a result must serialise to JSON");
        self.results.insert(key.to_owned(), value);
    }

    /// The figure recorded under `key`, if any.
    pub fn result(&self, key: &str) -> Option<&serde_json::Value> {
        self.results.get(key)
    }

    /// Whether the report raised a warning of `kind`.
    pub fn warns(&self, kind: WarningKind) -> bool {
        self.warnings.iter().any(|w| w.kind == kind)
    }

    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serialises")
    }

    /// Parses a report written by [`to_json`](Self::to_json).
    ///
    /// # Errors
    /// `Io` (with the parse error as its source) if `text` is not such a report.
    pub fn from_json(text: &str) -> Result<Report> {
        serde_json::from_str(text).map_err(|e| Error::io("not a spmd timing report", e))
    }

    /// Writes [`to_json`](Self::to_json) to `path`.
    ///
    /// # Errors
    /// `Io` if the file cannot be written.
    pub fn write_json(&self, path: impl AsRef<Path>) -> Result<()> {
        write_file(path.as_ref(), &self.to_json())
    }

    /// Writes [`to_csv`](Self::to_csv) to `path`.
    ///
    /// # Errors
    /// `Io` if the file cannot be written.
    pub fn write_csv(&self, path: impl AsRef<Path>) -> Result<()> {
        write_file(path.as_ref(), &self.to_csv())
    }
}

/// Every rank's `(wall, comm, wait)` per sample: its measured repetitions when every rank has
/// the same number of them, else the whole run as one sample.
fn rank_series(ranks: &[RankTimes]) -> Vec<Series> {
    let k = ranks[0].repetitions.len();
    if k > 0 && ranks.iter().all(|r| r.repetitions.len() == k) {
        ranks
            .iter()
            .map(|r| {
                r.repetitions
                    .iter()
                    .map(|s| (s.wall_s, s.comm_s, s.wait_s))
                    .collect()
            })
            .collect()
    } else {
        ranks
            .iter()
            .map(|r| vec![(r.wall_s, r.comm_s, r.wait_s)])
            .collect()
    }
}

/// Sample `i` over all ranks.
fn sample(series: &[Series], i: usize, wait_separation: bool, baseline_s: Option<f64>) -> Sample {
    let computes: Vec<f64> = series.iter().map(|s| (s[i].0 - s[i].1).max(0.0)).collect();
    let (slowest, &compute_max_s) = computes
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .expect("at least one rank");
    let (_, comm, wait) = series[slowest][i];
    Sample {
        wall_s: series.iter().map(|s| s[i].0).fold(0.0, f64::max),
        compute_mean_s: computes.iter().sum::<f64>() / computes.len() as f64,
        compute_min_s: computes.iter().copied().fold(f64::INFINITY, f64::min),
        compute_max_s,
        transfer_s: if wait_separation {
            (comm - wait).max(0.0)
        } else {
            comm
        },
        baseline_s,
    }
}

/// The caveats about `r`'s figures.
fn warnings(r: &Report, nodes: &[&NodeInfo]) -> Vec<Warning> {
    let mut out = Vec::new();
    let mut warn = |kind, message: String| out.push(Warning { kind, message });
    if r.repetitions <= 1 {
        warn(
            WarningKind::SingleSample,
            "one measurement: nothing shows how much it varies; repeat the timed part \
             (Spmd::repeat, or --repeat K in the examples) and read the medians"
                .into(),
        );
    } else {
        let (what, spread) = match r.speedup {
            Some(s) => ("speedup", s),
            None => ("time", r.wall_s),
        };
        if spread.relative_range() > NOISY_RANGE {
            warn(
                WarningKind::Noisy,
                format!(
                    "noisy machine: the {what} ranged from {} to {} over {} repetitions ({:.0}% \
                     of the median {}); repeat more or quiet the machine",
                    show(what, spread.min),
                    show(what, spread.max),
                    r.repetitions,
                    100.0 * spread.relative_range(),
                    show(what, spread.median)
                ),
            );
        }
    }
    let efficiency = r.efficiency.map(|e| e.median);
    if efficiency.is_some_and(|e| e > 1.0) || r.karp_flatt.is_some_and(|k| k < 0.0) {
        warn(
            WarningKind::Superlinear,
            format!(
                "superlinear: efficiency {:.0}%{}: cache effects (each rank's share fits a \
                 faster level of memory) or a noisy baseline",
                100.0 * efficiency.unwrap_or(0.0),
                r.karp_flatt
                    .map_or(String::new(), |k| format!(", Karp-Flatt {k:.3}"))
            ),
        );
    }
    let mut seen: Vec<&str> = Vec::new();
    for node in nodes {
        if node.threads > node.cores && !seen.contains(&node.name.as_str()) {
            seen.push(&node.name);
            warn(
                WarningKind::Oversubscribed,
                format!(
                    "oversubscribed: {} ranks run {} threads on the {} cores of {}: they take \
                     turns on the cores, so the times include waiting for one",
                    node.ranks, node.threads, node.cores, node.name
                ),
            );
        }
    }
    if r.imbalance > IMBALANCE_WARNING {
        warn(
            WarningKind::Imbalance,
            format!(
                "imbalance {:.2}: rank {} computed longest ({} per repetition against a mean \
                 of {}); the others wait for it in their collectives",
                r.imbalance,
                r.slowest_rank,
                super::format_seconds(r.compute_s.max),
                super::format_seconds(r.compute_s.avg)
            ),
        );
    }
    out
}

/// A speedup as `1.63`, a time in its unit.
fn show(what: &str, value: f64) -> String {
    if what == "speedup" {
        format!("{value:.2}")
    } else {
        super::format_seconds(value)
    }
}

fn write_file(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text)
        .map_err(|e| Error::io(format!("cannot write the report to {}", path.display()), e))
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

/// Karp–Flatt serial fraction for `speedup` on `cores` cores; `None` for one core.
pub fn karp_flatt(speedup: f64, cores: usize) -> Option<f64> {
    if cores < 2 || speedup <= 0.0 {
        return None;
    }
    let p = cores as f64;
    Some((1.0 / speedup - 1.0 / p) / (1.0 - 1.0 / p))
}

fn merge_regions(ranks: &[RankTimes], wait_separation: bool) -> Vec<RegionReport> {
    // Keyed by (name, kind) in order of first appearance over ranks 0, 1, …
    let mut keys: Vec<(&str, RegionKind)> = Vec::new();
    for rank in ranks {
        for r in &rank.regions {
            if !keys.contains(&(r.name.as_str(), r.kind)) {
                keys.push((r.name.as_str(), r.kind));
            }
        }
    }
    let mut merged: Vec<RegionReport> = keys
        .into_iter()
        .map(|(name, kind)| {
            let per_rank: Vec<_> = ranks
                .iter()
                .map(|rank| {
                    rank.regions
                        .iter()
                        .find(|r| r.name == name && r.kind == kind)
                })
                .collect();
            let time = Stat::of(per_rank.iter().map(|r| r.map_or(0.0, |r| r.time_s)));
            let wait = Stat::of(per_rank.iter().map(|r| r.map_or(0.0, |r| r.wait_s)));
            let mean = |f: fn(&RegionTimes) -> f64| {
                per_rank.iter().map(|r| r.map_or(0.0, f)).sum::<f64>() / per_rank.len() as f64
            };
            let waited = mean(|r| r.request_wait_s);
            let in_flight = mean(|r| r.in_flight_s);
            let overlap = (waited > 0.0 || in_flight > 0.0).then(|| Overlap {
                posted_avg_s: (time.avg - waited).max(0.0),
                waited_avg_s: waited,
                in_flight_avg_s: in_flight,
            });
            RegionReport {
                name: name.to_owned(),
                kind,
                calls: per_rank
                    .iter()
                    .map(|r| r.map_or(0, |r| r.calls))
                    .max()
                    .unwrap_or(0),
                min_s: time.min,
                avg_s: time.avg,
                max_s: time.max,
                bytes: per_rank.iter().map(|r| r.map_or(0, |r| r.bytes)).sum(),
                wait_avg_s: (wait_separation && kind == RegionKind::Comm).then_some(wait.avg),
                overlap,
            }
        })
        .collect();
    merged.sort_by(|a, b| b.avg_s.total_cmp(&a.avg_s));
    merged
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
