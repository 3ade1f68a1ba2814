//! How a [`Report`] reads: the table `Display` prints and the CSV form.

use std::fmt;

use serde::Serialize;

use super::rank_times::RegionKind;
use super::report::{RegionReport, Report, Stat};
use super::stats::Spread;

impl Report {
    /// The figures as CSV, columns `name,kind,calls,min,median,avg,max,ci_low,ci_high,bytes`
    /// (empty where a column does not apply): one row per spread over repetitions (`kind` =
    /// `spread`: `wall_s`, and `baseline_s`, `speedup`, `efficiency` with a baseline), one per
    /// per-rank total (`kind` = `total`: `compute_s`, `comm_s`, and `wait_s`, `transfer_s`
    /// with wait separation; min/avg/max over ranks), and one per region (`kind` = `compute` or
    /// `comm`).
    pub fn to_csv(&self) -> String {
        let mut out = csv::Writer::from_writer(Vec::new());
        let mut put = |row: CsvRow<'_>| {
            out.serialize(row)
                .expect("writing CSV to memory cannot fail");
        };
        let spread_row = |name, s: Spread| CsvRow {
            name,
            kind: "spread",
            calls: Some(s.samples as u64),
            min: Some(s.min),
            median: Some(s.median),
            avg: None,
            max: Some(s.max),
            ci_low: Some(s.ci_low),
            ci_high: Some(s.ci_high),
            bytes: None,
        };
        let stat_row = |name, kind, calls: Option<u64>, s: Stat, bytes: Option<u64>| CsvRow {
            name,
            kind,
            calls,
            min: Some(s.min),
            median: None,
            avg: Some(s.avg),
            max: Some(s.max),
            ci_low: None,
            ci_high: None,
            bytes,
        };
        put(spread_row("wall_s", self.wall_s));
        for (name, spread) in [
            ("baseline_s", self.baseline_s),
            ("speedup", self.speedup),
            ("efficiency", self.efficiency),
        ] {
            if let Some(s) = spread {
                put(spread_row(name, s));
            }
        }
        let comm_bytes: u64 = self
            .regions
            .iter()
            .filter(|r| r.kind == RegionKind::Comm)
            .map(|r| r.bytes)
            .sum();
        put(stat_row("compute_s", "total", None, self.compute_s, None));
        put(stat_row(
            "comm_s",
            "total",
            None,
            self.comm_s,
            Some(comm_bytes),
        ));
        if let (Some(wait), Some(transfer)) = (self.wait_s, self.transfer_s) {
            put(stat_row("wait_s", "total", None, wait, None));
            put(stat_row("transfer_s", "total", None, transfer, None));
        }
        for r in &self.regions {
            let s = Stat {
                min: r.min_s,
                avg: r.avg_s,
                max: r.max_s,
            };
            put(stat_row(
                &r.name,
                r.kind.as_str(),
                Some(r.calls),
                s,
                Some(r.bytes),
            ));
        }
        let bytes = out.into_inner().expect("writing CSV to memory cannot fail");
        String::from_utf8(bytes).expect("CSV of UTF-8 names is UTF-8")
    }
}

#[derive(Serialize)]
struct CsvRow<'a> {
    name: &'a str,
    kind: &'a str,
    calls: Option<u64>,
    min: Option<f64>,
    median: Option<f64>,
    avg: Option<f64>,
    max: Option<f64>,
    ci_low: Option<f64>,
    ci_high: Option<f64>,
    bytes: Option<u64>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let repetitions = match self.repetitions {
            1 => "one measurement".to_owned(),
            k => format!("median of {k} repetitions"),
        };
        writeln!(
            f,
            "spmd timing report: {} ({} ranks x {} threads, {repetitions})",
            self.program, self.ranks, self.threads_per_rank
        )?;
        writeln!(
            f,
            "{:<18}{:>11}{:>11}{:>11}   CI of the median",
            "over repetitions", "median", "min", "max"
        )?;
        let spread =
            |f: &mut fmt::Formatter<'_>, name: &str, s: Spread, show: &dyn Fn(f64) -> String| {
                writeln!(
                    f,
                    "{:<18}{:>11}{:>11}{:>11}   {}",
                    name,
                    show(s.median),
                    show(s.min),
                    show(s.max),
                    if s.samples > 1 {
                        format!(
                            "{} .. {} ({:.0}%)",
                            show(s.ci_low),
                            show(s.ci_high),
                            100.0 * s.confidence
                        )
                    } else {
                        "-".into()
                    }
                )
            };
        spread(f, "wall (slowest)", self.wall_s, &|x| format_seconds(x))?;
        if let (Some(b), Some(s), Some(e)) = (self.baseline_s, self.speedup, self.efficiency) {
            spread(f, "baseline (1 core)", b, &|x| format_seconds(x))?;
            spread(f, "speedup", s, &|x| format!("{x:.2}"))?;
            spread(f, "efficiency", e, &|x| format!("{:.1}%", 100.0 * x))?;
        }
        writeln!(
            f,
            "{:<18}{:>11}{:>11}{:>11}",
            "per rank", "min", "avg", "max"
        )?;
        let line = |f: &mut fmt::Formatter<'_>, name: &str, s: Stat| {
            writeln!(
                f,
                "{:<18}{:>11}{:>11}{:>11}",
                name,
                format_seconds(s.min),
                format_seconds(s.avg),
                format_seconds(s.max)
            )
        };
        line(f, "compute", self.compute_s)?;
        line(f, "comm", self.comm_s)?;
        if let (Some(wait), Some(transfer)) = (self.wait_s, self.transfer_s) {
            line(f, "  wait", wait)?;
            line(f, "  transfer", transfer)?;
        }
        let rss = self.peak_rss_bytes;
        writeln!(
            f,
            "{:<18}{:>11}{:>11}{:>11}",
            "peak memory",
            mebibytes(rss.min),
            mebibytes(rss.avg),
            mebibytes(rss.max)
        )?;
        write!(
            f,
            "comm fraction {:.1}%   imbalance {:.3} (slowest rank {})",
            100.0 * self.comm_fraction,
            self.imbalance,
            self.slowest_rank
        )?;
        match (self.speedup, self.karp_flatt) {
            (Some(_), Some(k)) => writeln!(f, "   Karp-Flatt serial fraction {k:.4}")?,
            (Some(_), None) => writeln!(f)?,
            (None, _) => writeln!(f, "\nno sequential baseline measured: speedup unknown")?,
        }
        for w in &self.warnings {
            writeln!(f, "warning: {}", w.message)?;
        }
        if !self.regions.is_empty() {
            let [a, b, c, d, e, g, h] = REGION_COLUMNS;
            writeln!(f, "{a:<30}{b:>8}{c:>9}{d:>11}{e:>11}{g:>11}{h:>12}")?;
            for r in &self.regions {
                let [a, b, c, d, e, g, h] = region_cells(r);
                writeln!(f, "{a:<30}{b:>8}{c:>9}{d:>11}{e:>11}{g:>11}{h:>12}")?;
                if let Some(o) = r.overlap {
                    writeln!(
                        f,
                        "  non-blocking: posted {}, waited {}, in flight behind other work {}",
                        format_seconds(o.posted_avg_s),
                        format_seconds(o.waited_avg_s),
                        format_seconds(o.in_flight_avg_s)
                    )?;
                }
            }
        }
        let matrix = &self.comm_matrix;
        if !matrix.entries.is_empty() {
            let messages: u64 = matrix.entries.iter().map(|e| e.messages).sum();
            let mut pairs: Vec<(usize, usize)> =
                matrix.entries.iter().map(|e| (e.from, e.to)).collect();
            pairs.dedup();
            writeln!(
                f,
                "point-to-point: {} in {messages} messages between {} pairs of ranks",
                mebibytes(matrix.total_bytes() as f64),
                pairs.len()
            )?;
            for (operation, bytes, messages) in matrix.operations() {
                writeln!(
                    f,
                    "  {operation:<40}{bytes:>14} bytes{messages:>10} messages"
                )?;
            }
        }
        if let Some(trace) = &self.trace {
            writeln!(f, "{trace}")?;
        }
        for section in &self.sections {
            f.write_str(section)?;
        }
        Ok(())
    }
}

/// The columns of the regions table (the text report's and the HTML page's).
pub(super) const REGION_COLUMNS: [&str; 7] =
    ["region", "kind", "calls", "min", "avg", "max", "bytes"];

/// One region's row of the regions table, in [`REGION_COLUMNS`] order.
pub(super) fn region_cells(r: &RegionReport) -> [String; 7] {
    [
        r.name.clone(),
        r.kind.as_str().to_owned(),
        r.calls.to_string(),
        format_seconds(r.min_s),
        format_seconds(r.avg_s),
        format_seconds(r.max_s),
        r.bytes.to_string(),
    ]
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
