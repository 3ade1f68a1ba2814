//! Monte Carlo estimate of π: ranks split the samples, rayon threads split each rank's share,
//! one `all_reduce` adds up the hits.
//!
//! ```text
//! mpirun -n 2 target/release/examples/pi --samples 200000000
//! ```
//!
//! Samples come in fixed chunks, each with its own seed, so the hit count — and the
//! estimate — is the same for any number of ranks and threads. The program checks its answer
//! against the statistical error of the method and exits non-zero if it is off.

use std::time::Instant;

use clap::Parser;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use rayon::prelude::*;
use spmd::{Op, Partition, Spmd};

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
    let spmd = Spmd::init()?;
    let world = spmd.world();
    let start = Instant::now();

    let chunks = args.samples.div_ceil(CHUNK) as usize;
    let mine = Partition::block(chunks, world.size())?;
    let local_hits: u64 = mine
        .global_indices(world.rank())
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|chunk| hits_in_chunk(args.seed, chunk as u64, args.samples))
        .sum();
    let hits = world.all_reduce(local_hits, Op::Sum);
    let seconds = world.all_reduce(start.elapsed().as_secs_f64(), Op::Max);

    let n = args.samples as f64;
    let estimate = 4.0 * hits as f64 / n;
    // Standard error of 4 * (fraction of hits), the fraction being Bernoulli(pi/4).
    let p = std::f64::consts::FRAC_PI_4;
    let standard_error = 4.0 * (p * (1.0 - p) / n).sqrt();
    let error = estimate - std::f64::consts::PI;
    if spmd.is_root() {
        println!(
            "pi ~ {estimate:.8} from {} samples on {} ranks x {} threads in {seconds:.3} s",
            args.samples,
            spmd.size(),
            spmd.threads()
        );
        println!(
            "error {error:+.3e} = {:+.2} standard errors",
            error / standard_error
        );
        println!("hits {hits} of {}", args.samples);
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
