//! [`Report`]: every rank's figures aggregated on the root, as a table, JSON or CSV.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::profiler::{RankTimes, RegionKind};
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
}

/// The timing report of a run; its JSON form ([`to_json`](Report::to_json)) has one key per
/// field, named as the field.
///
/// Made by [`Spmd::report`](crate::Spmd::report) on the root, or from known per-rank figures
/// with [`Report::from_ranks`]. `Display` prints the human table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The program's name.
    pub program: String,
    /// The number of ranks.
    pub ranks: usize,
    /// Rayon threads per rank.
    pub threads_per_rank: usize,
    /// Wall-clock seconds per rank (baseline measurements excluded).
    pub wall_s: Stat,
    /// Seconds not spent in communication, per rank.
    pub compute_s: Stat,
    /// Seconds in communication (transfer and waiting), per rank.
    pub comm_s: Stat,
    /// Whether collectives were preceded by a barrier to separate waiting from transfer.
    pub wait_separation: bool,
    /// Of `comm_s`, seconds waiting for slower ranks (`None` without wait separation).
    pub wait_s: Option<Stat>,
    /// Of `comm_s`, seconds moving data (`None` without wait separation).
    pub transfer_s: Option<Stat>,
    /// Mean comm time divided by the wall time (the slowest rank's).
    pub comm_fraction: f64,
    /// Slowest rank's compute time divided by the mean compute time (1 is perfect balance).
    pub imbalance: f64,
    /// Peak resident memory per rank, bytes.
    pub peak_rss_bytes: Stat,
    /// The sequential baseline's seconds, if one was measured.
    pub baseline_s: Option<f64>,
    /// `baseline_s / wall_s.max`.
    pub speedup: Option<f64>,
    /// `speedup / (ranks × threads_per_rank)`.
    pub efficiency: Option<f64>,
    /// The Karp–Flatt experimentally determined serial fraction
    /// `(1/speedup − 1/p) / (1 − 1/p)` with `p = ranks × threads_per_rank` (`None` if `p = 1`).
    pub karp_flatt: Option<f64>,
    /// Every region entered on any rank, slowest (by mean time) first.
    pub regions: Vec<RegionReport>,
    /// What the program recorded about its own run with [`record`](Report::record): its
    /// answer, whether it verified it, problem sizes (empty unless it recorded something).
    #[serde(default)]
    pub results: BTreeMap<String, serde_json::Value>,
}

impl Report {
    /// Aggregates per-rank figures (index = rank).
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
        let wall_s = Stat::of(ranks.iter().map(|r| r.wall_s));
        let compute_s = Stat::of(ranks.iter().map(RankTimes::compute_s));
        let comm_s = Stat::of(ranks.iter().map(|r| r.comm_s));
        let (wait_s, transfer_s) = if wait_separation {
            (
                Some(Stat::of(ranks.iter().map(|r| r.wait_s))),
                Some(Stat::of(
                    ranks.iter().map(|r| (r.comm_s - r.wait_s).max(0.0)),
                )),
            )
        } else {
            (None, None)
        };
        let comm_fraction = ratio(comm_s.avg, wall_s.max);
        let imbalance = if compute_s.avg > 0.0 {
            compute_s.max / compute_s.avg
        } else {
            1.0
        };
        let cores = ranks.len() * threads_per_rank.max(1);
        let speedup = baseline_s.map(|b| ratio(b, wall_s.max));
        let efficiency = speedup.map(|s| s / cores as f64);
        let karp_flatt = speedup.and_then(|s| karp_flatt(s, cores));
        Report {
            program: program.to_owned(),
            ranks: ranks.len(),
            threads_per_rank,
            wall_s,
            compute_s,
            comm_s,
            wait_separation,
            wait_s,
            transfer_s,
            comm_fraction,
            imbalance,
            peak_rss_bytes: Stat::of(ranks.iter().map(|r| r.peak_rss_bytes as f64)),
            baseline_s,
            speedup,
            efficiency,
            karp_flatt,
            regions: merge_regions(ranks, wait_separation),
            results: BTreeMap::new(),
        }
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

    /// The figures as CSV: one row per total (`kind` = `total`: wall, compute, comm, and wait
    /// and transfer with wait separation) and one per region, columns
    /// `name,kind,calls,min_s,avg_s,max_s,bytes`.
    pub fn to_csv(&self) -> String {
        let mut out = csv::Writer::from_writer(Vec::new());
        let row = |out: &mut csv::Writer<Vec<u8>>,
                   name: &str,
                   kind: &str,
                   calls: u64,
                   s: Stat,
                   bytes: u64| {
            out.serialize(CsvRow {
                name,
                kind,
                calls,
                min_s: s.min,
                avg_s: s.avg,
                max_s: s.max,
                bytes,
            })
            .expect("writing CSV to memory cannot fail");
        };
        let comm_bytes = self.regions.iter().filter(|r| r.kind == RegionKind::Comm);
        let comm_bytes: u64 = comm_bytes.map(|r| r.bytes).sum();
        row(&mut out, "wall", "total", 1, self.wall_s, 0);
        row(&mut out, "compute", "total", 1, self.compute_s, 0);
        row(&mut out, "comm", "total", 1, self.comm_s, comm_bytes);
        if let (Some(wait), Some(transfer)) = (self.wait_s, self.transfer_s) {
            row(&mut out, "wait", "total", 1, wait, 0);
            row(&mut out, "transfer", "total", 1, transfer, 0);
        }
        for r in &self.regions {
            let s = Stat {
                min: r.min_s,
                avg: r.avg_s,
                max: r.max_s,
            };
            row(&mut out, &r.name, r.kind.as_str(), r.calls, s, r.bytes);
        }
        let bytes = out.into_inner().expect("writing CSV to memory cannot fail");
        String::from_utf8(bytes).expect("CSV of UTF-8 names is UTF-8")
    }

    /// Writes [`to_csv`](Self::to_csv) to `path`.
    ///
    /// # Errors
    /// `Io` if the file cannot be written.
    pub fn write_csv(&self, path: impl AsRef<Path>) -> Result<()> {
        write_file(path.as_ref(), &self.to_csv())
    }
}

#[derive(Serialize)]
struct CsvRow<'a> {
    name: &'a str,
    kind: &'a str,
    calls: u64,
    min_s: f64,
    avg_s: f64,
    max_s: f64,
    bytes: u64,
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
            }
        })
        .collect();
    merged.sort_by(|a, b| b.avg_s.total_cmp(&a.avg_s));
    merged
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "spmd timing report: {} ({} ranks x {} threads)",
            self.program, self.ranks, self.threads_per_rank
        )?;
        writeln!(
            f,
            "{:<16}{:>12}{:>12}{:>12}",
            "per rank", "min", "avg", "max"
        )?;
        let line = |f: &mut fmt::Formatter<'_>, name: &str, s: Stat| {
            writeln!(
                f,
                "{:<16}{:>12}{:>12}{:>12}",
                name,
                format_seconds(s.min),
                format_seconds(s.avg),
                format_seconds(s.max)
            )
        };
        line(f, "wall", self.wall_s)?;
        line(f, "compute", self.compute_s)?;
        line(f, "comm", self.comm_s)?;
        if let (Some(wait), Some(transfer)) = (self.wait_s, self.transfer_s) {
            line(f, "  wait", wait)?;
            line(f, "  transfer", transfer)?;
        }
        let rss = self.peak_rss_bytes;
        writeln!(
            f,
            "{:<16}{:>12}{:>12}{:>12}",
            "peak memory",
            mebibytes(rss.min),
            mebibytes(rss.avg),
            mebibytes(rss.max)
        )?;
        writeln!(
            f,
            "comm fraction {:.1}%   imbalance {:.3}",
            100.0 * self.comm_fraction,
            self.imbalance
        )?;
        match (self.baseline_s, self.speedup, self.efficiency) {
            (Some(b), Some(s), Some(e)) => {
                write!(
                    f,
                    "baseline (1 core) {}   speedup {s:.2}   efficiency {:.1}%",
                    format_seconds(b),
                    100.0 * e
                )?;
                match self.karp_flatt {
                    Some(k) => writeln!(f, "   Karp-Flatt serial fraction {k:.4}")?,
                    None => writeln!(f)?,
                }
            }
            _ => writeln!(f, "no sequential baseline measured: speedup unknown")?,
        }
        if !self.regions.is_empty() {
            writeln!(
                f,
                "{:<30}{:>8}{:>9}{:>11}{:>11}{:>11}{:>12}",
                "region", "kind", "calls", "min", "avg", "max", "bytes"
            )?;
            for r in &self.regions {
                writeln!(
                    f,
                    "{:<30}{:>8}{:>9}{:>11}{:>11}{:>11}{:>12}",
                    r.name,
                    r.kind.as_str(),
                    r.calls,
                    format_seconds(r.min_s),
                    format_seconds(r.avg_s),
                    format_seconds(r.max_s),
                    r.bytes
                )?;
            }
        }
        Ok(())
    }
}

/// Seconds in the unit that suits them (`1.234 s`, `5.678 ms`, `9.012 us`).
pub fn format_seconds(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.3} s")
    } else if s >= 1e-3 {
        format!("{:.3} ms", s * 1e3)
    } else {
        format!("{:.3} us", s * 1e6)
    }
}

fn mebibytes(bytes: f64) -> String {
    format!("{:.1} MiB", bytes / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timing::RegionTimes;
    use crate::ErrorKind;

    fn rank(wall: f64, comm: f64, wait: f64, rss: u64, regions: Vec<RegionTimes>) -> RankTimes {
        RankTimes {
            wall_s: wall,
            comm_s: comm,
            wait_s: wait,
            peak_rss_bytes: rss,
            regions,
        }
    }

    fn region(name: &str, kind: RegionKind, calls: u64, time: f64, bytes: u64) -> RegionTimes {
        RegionTimes {
            name: name.into(),
            kind,
            calls,
            time_s: time,
            wait_s: time / 2.0,
            bytes,
        }
    }

    fn two_ranks() -> Vec<RankTimes> {
        vec![
            rank(
                10.0,
                4.0,
                3.0,
                100,
                vec![
                    region("solve", RegionKind::Compute, 5, 6.0, 0),
                    region("all_reduce", RegionKind::Comm, 5, 4.0, 80),
                ],
            ),
            rank(
                10.0,
                2.0,
                1.0,
                300,
                vec![region("all_reduce", RegionKind::Comm, 5, 2.0, 80)],
            ),
        ]
    }

    #[test]
    fn totals_fractions_and_speedup_are_exact() {
        let r = Report::from_ranks("t", 2, true, &two_ranks(), Some(32.0));
        assert_eq!(r.ranks, 2);
        assert_eq!(
            r.wall_s,
            Stat {
                min: 10.0,
                avg: 10.0,
                max: 10.0
            }
        );
        assert_eq!(
            r.compute_s,
            Stat {
                min: 6.0,
                avg: 7.0,
                max: 8.0
            }
        );
        assert_eq!(
            r.comm_s,
            Stat {
                min: 2.0,
                avg: 3.0,
                max: 4.0
            }
        );
        assert_eq!(
            r.wait_s,
            Some(Stat {
                min: 1.0,
                avg: 2.0,
                max: 3.0
            })
        );
        assert_eq!(
            r.transfer_s,
            Some(Stat {
                min: 1.0,
                avg: 1.0,
                max: 1.0
            })
        );
        assert_eq!(r.comm_fraction, 0.3);
        assert_eq!(r.imbalance, 8.0 / 7.0);
        assert_eq!(
            r.peak_rss_bytes,
            Stat {
                min: 100.0,
                avg: 200.0,
                max: 300.0
            }
        );
        assert_eq!(r.speedup, Some(3.2));
        assert_eq!(r.efficiency, Some(0.8));
        // p = 4: (1/3.2 - 1/4) / (1 - 1/4) = 0.0625 / 0.75
        assert!((r.karp_flatt.unwrap() - 0.0625 / 0.75).abs() < 1e-15);
    }

    #[test]
    fn regions_merge_over_ranks_slowest_first() {
        let r = Report::from_ranks("t", 1, false, &two_ranks(), None);
        assert_eq!(r.regions.len(), 2);
        let solve = &r.regions[0];
        assert_eq!(
            (solve.name.as_str(), solve.kind),
            ("solve", RegionKind::Compute)
        );
        // Rank 1 never entered `solve`: it counts as 0.
        assert_eq!((solve.min_s, solve.avg_s, solve.max_s), (0.0, 3.0, 6.0));
        let reduce = &r.regions[1];
        assert_eq!((reduce.calls, reduce.bytes), (5, 160));
        assert_eq!((reduce.min_s, reduce.avg_s, reduce.max_s), (2.0, 3.0, 4.0));
        assert_eq!(reduce.wait_avg_s, None);
        assert_eq!(
            (r.wait_s, r.speedup, r.efficiency, r.karp_flatt),
            (None, None, None, None)
        );
    }

    #[test]
    fn karp_flatt_of_known_speedups() {
        assert_eq!(karp_flatt(4.0, 4), Some(0.0)); // perfect scaling: no serial part
        assert_eq!(karp_flatt(1.0, 4), Some(1.0)); // no speedup: all serial
        assert_eq!(karp_flatt(2.0, 1), None);
        // Amdahl with serial fraction 0.1 on 8 cores gives speedup 1/(0.1 + 0.9/8).
        let s = 1.0 / (0.1 + 0.9 / 8.0);
        assert!((karp_flatt(s, 8).unwrap() - 0.1).abs() < 1e-12);
    }

    #[test]
    fn json_has_every_design_key_and_round_trips() {
        let r = Report::from_ranks("pi", 2, false, &two_ranks(), Some(32.0));
        let value: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        for key in [
            "program",
            "ranks",
            "threads_per_rank",
            "wall_s",
            "compute_s",
            "comm_s",
            "comm_fraction",
            "imbalance",
            "baseline_s",
            "speedup",
            "efficiency",
            "regions",
        ] {
            assert!(value.get(key).is_some(), "missing {key}");
        }
        assert_eq!(value["compute_s"]["max"], 8.0);
        assert_eq!(value["regions"][1]["kind"], "comm");
        for key in ["name", "kind", "calls", "min_s", "avg_s", "max_s", "bytes"] {
            assert!(value["regions"][0].get(key).is_some(), "region lacks {key}");
        }
        assert_eq!(Report::from_json(&r.to_json()).unwrap(), r);
        let none = Report::from_ranks("pi", 2, false, &two_ranks(), None);
        let value: serde_json::Value = serde_json::from_str(&none.to_json()).unwrap();
        assert!(value["speedup"].is_null() && value["baseline_s"].is_null());
        assert_eq!(Report::from_json("{").unwrap_err().kind(), ErrorKind::Io);
    }

    #[test]
    fn csv_has_totals_then_regions() {
        let r = Report::from_ranks("t", 1, true, &two_ranks(), None);
        let csv = r.to_csv();
        let lines: Vec<_> = csv.lines().collect();
        assert_eq!(lines[0], "name,kind,calls,min_s,avg_s,max_s,bytes");
        assert_eq!(lines[1], "wall,total,1,10.0,10.0,10.0,0");
        assert_eq!(lines[3], "comm,total,1,2.0,3.0,4.0,160");
        assert_eq!(lines[4], "wait,total,1,1.0,2.0,3.0,0");
        assert_eq!(lines[6], "solve,compute,5,0.0,3.0,6.0,0");
        assert_eq!(lines.len(), 8);
    }

    #[test]
    fn table_names_every_figure() {
        let text = Report::from_ranks("pi", 2, true, &two_ranks(), Some(32.0)).to_string();
        for needle in [
            "pi (2 ranks x 2 threads)",
            "wall",
            "compute",
            "comm",
            "wait",
            "transfer",
            "peak memory",
            "comm fraction 30.0%",
            "imbalance 1.143",
            "speedup 3.20",
            "efficiency 80.0%",
            "Karp-Flatt",
            "all_reduce",
        ] {
            assert!(text.contains(needle), "table lacks {needle:?}:\n{text}");
        }
    }
}
