//! Data-parallel training, as on deep-learning clusters: every rank holds a shard of a
//! synthetic linear-regression data set, computes the gradient of its share of each
//! mini-batch with rayon, and one `all_reduce` sums the shares, so every rank applies the same
//! update to an identical copy of the model.
//!
//! ```text
//! mpirun -n 2 target/release/examples/sgd --samples 2000000 --features 64 --baseline --report sgd.json
//! ```
//!
//! Each sample is generated from its own index, so the data set (and every mini-batch) is the
//! same whatever the number of ranks. The root trains the same model serially on the whole
//! data set and checks the distributed weights agree to 1e-9 (relative): the only difference
//! is the order in which the ranks' partial gradients are added. It also checks the loss fell
//! to the noise level.

mod common;

use clap::Parser;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use rayon::prelude::*;
use spmd::{Op, Partition, Spmd};

#[derive(Parser, Debug)]
#[command(about = "Data-parallel mini-batch SGD for linear regression over MPI ranks")]
struct Args {
    /// Samples in the data set.
    #[arg(long, default_value_t = 200_000)]
    samples: usize,
    /// Features per sample.
    #[arg(long, default_value_t = 16)]
    features: usize,
    /// Samples per mini-batch (over all ranks).
    #[arg(long, default_value_t = 4096)]
    batch: usize,
    /// Passes over the data set.
    #[arg(long, default_value_t = 5)]
    epochs: usize,
    /// Learning rate.
    #[arg(long, default_value_t = 0.1)]
    rate: f64,
    #[command(flatten)]
    measure: common::Measure,
}

/// Standard deviation of the label noise.
const NOISE: f64 = 0.01;

/// The weights the data set is generated from.
fn true_weights(features: usize) -> Vec<f64> {
    (0..features).map(|k| ((k + 1) as f64).sin()).collect()
}

/// Sample `i`: features uniform in [-1, 1) and its label, from a seed of its own.
fn sample(i: usize, truth: &[f64]) -> (Vec<f64>, f64) {
    let mut rng = Pcg64Mcg::seed_from_u64(0x5eed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let x: Vec<f64> = (0..truth.len())
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    let noise = NOISE * (rng.random::<f64>() - 0.5) * 12f64.sqrt();
    let y = x.iter().zip(truth).map(|(a, b)| a * b).sum::<f64>() + noise;
    (x, y)
}

/// Sum over `samples` of the squared-error gradient at `w`, plus the summed squared error in
/// the last slot.
fn gradient(samples: &[(Vec<f64>, f64)], w: &[f64]) -> Vec<f64> {
    let d = w.len();
    samples
        .par_iter()
        .fold(
            || vec![0.0; d + 1],
            |mut acc, (x, y)| {
                let error = x.iter().zip(w).map(|(a, b)| a * b).sum::<f64>() - y;
                for (g, a) in acc.iter_mut().zip(x) {
                    *g += error * a;
                }
                acc[d] += error * error;
                acc
            },
        )
        .reduce(
            || vec![0.0; d + 1],
            |a, b| a.iter().zip(&b).map(|(p, q)| p + q).collect(),
        )
}

/// The batches of one epoch: consecutive index ranges of `batch` samples.
fn batches(samples: usize, batch: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
    (0..samples.div_ceil(batch)).map(move |b| b * batch..((b + 1) * batch).min(samples))
}

/// Applies one averaged gradient step; returns the batch's mean squared error.
fn update(w: &mut [f64], summed: &[f64], count: usize, rate: f64) -> f64 {
    let d = w.len();
    for (wk, g) in w.iter_mut().zip(&summed[..d]) {
        *wk -= rate * g / count as f64;
    }
    summed[d] / count as f64
}

/// Serial training on the whole data set, batch by batch: the reference.
fn train_serial(data: &[(Vec<f64>, f64)], args: &Args) -> (Vec<f64>, Vec<f64>) {
    let mut w = vec![0.0; args.features];
    let mut losses = Vec::new();
    for _ in 0..args.epochs {
        for range in batches(data.len(), args.batch) {
            let g = gradient(&data[range.clone()], &w);
            losses.push(update(&mut w, &g, range.len(), args.rate));
        }
    }
    (w, losses)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if args.samples == 0 || args.batch == 0 || args.features == 0 {
        return Err("--samples, --batch and --features must be positive".into());
    }
    let spmd = Spmd::init()?;
    let world = spmd.world();
    let truth = true_weights(args.features);

    // Generating this rank's shard and training on it: what each repetition measures.
    let train = || -> spmd::Result<(Vec<f64>, Vec<f64>)> {
        // This rank's shard: a contiguous block of sample indices.
        let shard = Partition::block(args.samples, world.size())?;
        let first = shard.displacements()[world.rank()];
        let data: Vec<(Vec<f64>, f64)> = {
            let _generate = spmd.region("generate shard");
            shard
                .par_global_indices(world.rank())
                .map(|i| sample(i, &truth))
                .collect()
        };
        let end = first + data.len();
        let mut w = vec![0.0; args.features];
        let mut losses = Vec::new();
        let mut summed = vec![0.0; args.features + 1];
        let steps = args.epochs * args.samples.div_ceil(args.batch);
        let progress = if spmd.is_root() {
            indicatif::ProgressBar::new(steps as u64)
        } else {
            indicatif::ProgressBar::hidden()
        };
        for _ in 0..args.epochs {
            for range in batches(args.samples, args.batch) {
                // The part of the global batch in this rank's shard (maybe empty).
                let (lo, hi) = (range.start.clamp(first, end), range.end.clamp(first, end));
                let local = {
                    let _g = spmd.region("gradient");
                    gradient(&data[lo - first..hi - first], &w)
                };
                world.all_reduce_into(&local, &mut summed, Op::Sum)?;
                losses.push(update(&mut w, &summed, range.len(), args.rate));
                progress.inc(1);
            }
        }
        progress.finish_and_clear();
        Ok((w, losses))
    };
    let sequential = || {
        let data: Vec<_> = (0..args.samples).map(|i| sample(i, &truth)).collect();
        train_serial(&data, &args)
    };
    let repeat = args.measure.repeat(&spmd);
    let ((w, losses), serial) = if args.measure.baseline {
        let measured = repeat.baseline(sequential).run(train)?;
        (measured.result, measured.baseline)
    } else {
        (repeat.run(train)?.result, None)
    };

    let report = spmd.report("sgd")?;
    if let Some(report) = report {
        let (reference, serial_losses) = match serial {
            Some(s) => s,
            None => {
                let data: Vec<_> = (0..args.samples).map(|i| sample(i, &truth)).collect();
                train_serial(&data, &args)
            }
        };
        let worst = w
            .iter()
            .zip(&reference)
            .map(|(a, b)| (a - b).abs() / b.abs().max(1e-3))
            .fold(0.0, f64::max);
        let error_to_truth = w
            .iter()
            .zip(&truth)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        let (start, last) = (losses[0], *losses.last().unwrap_or(&0.0));
        println!(
            "sgd: {} samples x {} features, {} epochs of batches of {} on {} ranks x {} threads",
            args.samples,
            args.features,
            args.epochs,
            args.batch,
            spmd.size(),
            spmd.threads()
        );
        println!(
            "loss {start:.4e} -> {last:.4e} (noise level {:.4e}); max |w - w_true| {error_to_truth:.3e}; \
             max relative difference to serial training {worst:.3e}",
            NOISE * NOISE
        );
        println!("{report}");
        let serial_last = *serial_losses.last().unwrap_or(&0.0);
        let loss_matches = (last - serial_last).abs() <= 1e-9 * serial_last.max(1e-12) + 1e-15;
        let converged = last <= start / 100.0 && last <= 10.0 * NOISE * NOISE;
        let mut report = report;
        report.record("verified", worst <= 1e-9 && loss_matches && converged);
        report.record("final_loss", last);
        report.record("max_relative_difference_to_serial", worst);
        args.measure.write(&report)?;
        if worst > 1e-9 {
            return Err(format!(
                "weights differ from serial training by {worst:.3e} (relative) > 1e-9"
            )
            .into());
        }
        if !loss_matches {
            return Err(format!("final loss {last} differs from serial {serial_last}").into());
        }
        if !converged {
            return Err(format!("loss did not fall to the noise level: {start} -> {last}").into());
        }
        println!(
            "verified: weights match serial training within 1e-9, loss fell to the noise level"
        );
    }
    Ok(())
}
