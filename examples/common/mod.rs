//! The measuring flags every example takes, and the one place that applies them.
// Each example uses a part of this module.
#![allow(dead_code)]

use std::path::PathBuf;

use spmd::runtime::repeat::Repeat;
use spmd::runtime::SpmdBuilder;
use spmd::timing::Report;
use spmd::Spmd;

/// `--baseline`, `--repeat K`, `--report PATH`, `--report-html PATH`, `--trace PATH`
/// (flattened into each example's own command).
#[derive(clap::Args, Debug, Clone)]
pub struct Measure {
    /// Also solve the problem on one core of rank 0 before every repetition (interleaved with
    /// the parallel runs), for speedup and efficiency.
    #[arg(long)]
    pub baseline: bool,
    /// Measure the timed part this many times after one warm-up; the report gives medians
    /// and spreads over the repetitions.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub repeat: u64,
    /// Write the timing report as JSON to this file (rank 0).
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Write the timing report as one HTML page to this file (rank 0): per-rank bars, the
    /// communication matrix, and the timeline when the run is traced.
    #[arg(long, value_name = "PATH")]
    pub report_html: Option<PathBuf>,
    /// Record a timeline of every rank and write it to this file at the end (Chrome Trace
    /// Event JSON, for Perfetto UI or chrome://tracing); SPMD_TRACE does the same.
    #[arg(long, value_name = "PATH")]
    pub trace: Option<PathBuf>,
}

impl Measure {
    /// The repetitions as a count.
    pub fn times(&self) -> usize {
        self.repeat as usize
    }

    /// The context these flags ask for: traced when `--trace` is given.
    pub fn builder(&self) -> SpmdBuilder {
        match &self.trace {
            Some(path) => Spmd::builder().trace(path),
            None => Spmd::builder(),
        }
    }

    /// The repeated measurement these flags ask for: `--repeat K` repetitions after one
    /// warm-up; `--repeat 1` (the default) is one plain run, without a warm-up.
    pub fn repeat<'s>(&self, spmd: &'s Spmd) -> Repeat<'s> {
        spmd.repeat(self.times())
            .warmup(usize::from(self.times() > 1))
    }

    /// Writes the report as JSON if asked to.
    pub fn write(&self, report: &Report) -> Result<(), Box<dyn std::error::Error>> {
        if let Some(path) = &self.report {
            report.write_json(path)?;
        }
        if let Some(path) = &self.report_html {
            report.write_html(path)?;
        }
        Ok(())
    }
}
