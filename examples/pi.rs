//! Monte Carlo estimate of π: ranks split the samples, rayon threads split each rank's share,
//! one `all_reduce` adds up the hits.
//!
//! ```text
//! mpirun -n 2 target/release/examples/pi --samples 200000000 --baseline --report pi.json
//! ```
//!
//! Samples come in fixed chunks, each with its own seed, so the hit count — and the
//! estimate — is the same for any number of ranks and threads. The program checks its answer
//! against the statistical error of the method and exits non-zero if it is off.
//!
//! Rank 0 prints the timing report. `--baseline` also solves the whole problem on one core
//! (and checks that it finds the same hits), so the report has speedup and efficiency;
//! `--repeat K` measures K times with the baseline interleaved, for medians and spreads;
//! `--report PATH` writes the report as JSON, `--csv PATH` as CSV.

mod common;

use std::path::PathBuf;

use clap::Parser;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use rayon::prelude::*;
use spmd::{Op, Partition};

/// Samples per chunk: the unit of work handed to ranks and threads.
const CHUNK: u64 = 1 << 16;

#[derive(Parser, Debug)]
#[command(about = "Monte Carlo estimate of pi over MPI ranks and rayon threads")]
struct Args {
    /// Number of random points.
    #[arg(long, default_value_t = 100_000_000)]
    samples: u64,
    /// Seed of the random streams.
    #[arg(long, default_value_t = 2026)]
    seed: u64,
    #[command(flatten)]
    measure: common::Measure,
    /// Write the timing report as CSV to this file (rank 0).
    #[arg(long)]
    csv: Option<PathBuf>,
    /// Separate time waiting for other ranks from transfer time in collectives.
    #[arg(long)]
    wait_separation: bool,
}

/// Points of chunk `chunk` that fall inside the unit quarter circle.
fn hits_in_chunk(seed: u64, chunk: u64, samples: u64) -> u64 {
    let first = chunk * CHUNK;
    let count = CHUNK.min(samples - first);
    let mut rng = Pcg64Mcg::seed_from_u64(seed ^ chunk.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    (0..count)
        .filter(|_| {
            let (x, y): (f64, f64) = (rng.random(), rng.random());
            x * x + y * y < 1.0
        })
        .count() as u64
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let spmd = args
        .measure
        .builder()
        .wait_separation(args.wait_separation)
        .init()?;
    let world = spmd.world();
    let chunks = args.samples.div_ceil(CHUNK);
    let (seed, samples) = (args.seed, args.samples);
    let mine = Partition::block(chunks as usize, world.size())?;
    let sample = || -> spmd::Result<u64> {
        let local_hits: u64 = {
            let _sampling = spmd.region("sample");
            mine.par_global_indices(world.rank())
                .map(|chunk| hits_in_chunk(seed, chunk as u64, samples))
                .sum()
        };
        Ok(world.all_reduce(local_hits, Op::Sum))
    };
    // The same problem, solved on one core: the reference for speedup.
    let sequential = || {
        (0..chunks)
            .map(|chunk| hits_in_chunk(seed, chunk, samples))
            .sum::<u64>()
    };
    let repeat = args.measure.repeat(&spmd);
    let (hits, sequential_hits) = if args.measure.baseline {
        let measured = repeat.baseline(sequential).run(sample)?;
        (measured.result, measured.baseline)
    } else {
        (repeat.run(sample)?.result, None)
    };

    let n = args.samples as f64;
    let estimate = 4.0 * hits as f64 / n;
    // Standard error of 4 * (fraction of hits), the fraction being Bernoulli(pi/4).
    let p = std::f64::consts::FRAC_PI_4;
    let standard_error = 4.0 * (p * (1.0 - p) / n).sqrt();
    let error = estimate - std::f64::consts::PI;
    let verified = args.samples > 0
        && error.abs() <= 5.0 * standard_error
        && sequential_hits.is_none_or(|s| s == hits);
    let report = spmd.report("pi")?;
    if let Some(mut report) = report {
        report.record("hits", hits);
        report.record("samples", args.samples);
        report.record("estimate", estimate);
        report.record("verified", verified);
        println!(
            "pi ~ {estimate:.8} from {} samples on {} ranks x {} threads",
            args.samples,
            spmd.size(),
            spmd.threads()
        );
        println!(
            "error {error:+.3e} = {:+.2} standard errors",
            error / standard_error
        );
        println!("hits {hits} of {}", args.samples);
        println!("{report}");
        args.measure.write(&report)?;
        if let Some(path) = &args.csv {
            report.write_csv(path)?;
        }
    }
    if let Some(sequential) = sequential_hits {
        if sequential != hits {
            return Err(format!("sequential run found {sequential} hits, parallel {hits}").into());
        }
    }
    if args.samples == 0 || error.abs() > 5.0 * standard_error {
        return Err(format!(
            "estimate {estimate} is {:.1} standard errors from pi: wrong",
            error.abs() / standard_error
        )
        .into());
    }
    Ok(())
}
