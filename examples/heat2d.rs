//! 2-D heat equation, steady state by Jacobi iteration, on a [`DistArray`] split by rows with
//! one ghost row on each side.
//!
//! ```text
//! mpirun -n 2 target/release/examples/heat2d --n 512 --m 512 --baseline --report heat.json --image heat.png
//! ```
//!
//! The plate's top edge is held at 100, the other edges at 0. Every iteration exchanges halos,
//! updates each interior point to the mean of its four neighbours (rayon threads over rows),
//! and finds the largest change over all ranks with one `all_reduce`; it stops when that falls
//! below `--tol` (or after `--max-iters`). The root then solves the same problem serially and
//! checks the distributed result is **bit-identical**: both compute `(up + down + left + right)
//! * 0.25` with the same operands in the same order, so there is no rounding difference to
//! tolerate. `--baseline` times that serial solve as the baseline for speedup.

mod common;

use std::path::PathBuf;

use clap::Parser;
use indicatif::ProgressBar;
use ndarray::{s, Array2, ArrayView2, ArrayViewMut2, Axis, Ix2, Zip};
use rayon::prelude::*;
use spmd::array::{Boundary, DistArray, Split};
use spmd::{Op, Spmd};

#[derive(Parser, Debug)]
#[command(about = "Steady-state 2-D heat equation by Jacobi iteration on a DistArray")]
struct Args {
    /// Rows of the grid (including the boundary rows).
    #[arg(long, default_value_t = 128)]
    n: usize,
    /// Columns of the grid (including the boundary columns).
    #[arg(long, default_value_t = 128)]
    m: usize,
    /// Stop when no point changes by more than this in one iteration.
    #[arg(long, default_value_t = 1e-3)]
    tol: f64,
    /// Stop after this many iterations at the latest.
    #[arg(long, default_value_t = 20_000)]
    max_iters: usize,
    #[command(flatten)]
    measure: common::Measure,
    /// Write the final temperature field as a colour-mapped PNG.
    #[arg(long)]
    image: Option<PathBuf>,
}

const HOT: f64 = 100.0;

/// The initial field: hot top edge, everything else 0.
fn initial(i: usize, _j: usize) -> f64 {
    if i == 0 {
        HOT
    } else {
        0.0
    }
}

/// One Jacobi sweep of the interior columns of `rows` (a padded block, one ghost row above
/// and below) into `out`; rows whose global index is a boundary row are copied. Returns the
/// largest change.
fn sweep(
    padded: ArrayView2<'_, f64>,
    mut out: ArrayViewMut2<'_, f64>,
    first_row: usize,
    n: usize,
) -> f64 {
    let m = padded.ncols();
    out.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .map(|(r, mut row)| {
            let i = first_row + r;
            let (up, here, down) = (padded.row(r), padded.row(r + 1), padded.row(r + 2));
            if i == 0 || i == n - 1 {
                row.assign(&here);
                return 0.0;
            }
            row[0] = here[0];
            row[m - 1] = here[m - 1];
            let mut change = 0.0_f64;
            for j in 1..m - 1 {
                let next = (up[j] + down[j] + here[j - 1] + here[j + 1]) * 0.25;
                change = change.max((next - here[j]).abs());
                row[j] = next;
            }
            change
        })
        .reduce(|| 0.0, f64::max)
}

/// The same iteration on the whole grid, on one thread.
fn serial_solve(n: usize, m: usize, tol: f64, max_iters: usize) -> (Array2<f64>, usize) {
    let mut u = Array2::from_shape_fn((n, m), |(i, j)| initial(i, j));
    let mut next = u.clone();
    for iteration in 1..=max_iters {
        let mut change = 0.0_f64;
        for i in 1..n - 1 {
            for j in 1..m - 1 {
                let value = (u[[i - 1, j]] + u[[i + 1, j]] + u[[i, j - 1]] + u[[i, j + 1]]) * 0.25;
                change = change.max((value - u[[i, j]]).abs());
                next[[i, j]] = value;
            }
        }
        std::mem::swap(&mut u, &mut next);
        if change < tol {
            return (u, iteration);
        }
    }
    (u, max_iters)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if args.n < 3 || args.m < 3 {
        return Err("the grid needs at least 3 x 3 points (boundary plus interior)".into());
    }
    let spmd = Spmd::init()?;
    let world = spmd.world();
    let (n, m) = (args.n, args.m);

    // The solve from the initial field: what each repetition measures.
    let solve = || -> spmd::Result<(DistArray<f64, Ix2>, usize)> {
        let mut u = DistArray::from_fn(world, (n, m), Split::block(0), |(i, j)| initial(i, j))?
            .with_ghosts(1, Boundary::Fixed)?;
        let mut next = u.clone();
        let first_row = u.global_range(0).map_or(0, |rows| rows.start);
        let progress = if spmd.is_root() {
            ProgressBar::new(args.max_iters as u64)
        } else {
            ProgressBar::hidden()
        };
        let mut iterations = args.max_iters;
        for iteration in 1..=args.max_iters {
            u.exchange_halos()?;
            let change = {
                let _sweep = spmd.region("jacobi sweep");
                sweep(u.local_with_ghosts(), next.local_mut(), first_row, n)
            };
            std::mem::swap(&mut u, &mut next);
            let change = world.all_reduce(change, Op::Max);
            if iteration % 64 == 0 {
                progress.set_position(iteration as u64);
                progress.set_message(format!("max change {change:.2e}"));
            }
            if change < args.tol {
                iterations = iteration;
                break;
            }
        }
        progress.finish_and_clear();
        Ok((u, iterations))
    };
    let serial = || serial_solve(n, m, args.tol, args.max_iters);
    let repeat = args.measure.repeat(&spmd);
    let ((u, iterations), reference) = if args.measure.baseline {
        let measured = repeat.baseline(serial).run(solve)?;
        (measured.result, measured.baseline)
    } else {
        (repeat.run(solve)?.result, None)
    };
    let field = u.gather(0)?;
    let report = spmd.report("heat2d")?;

    if let (Some(field), Some(mut report)) = (field, report) {
        let (serial, serial_iterations) = match reference {
            Some(r) => r,
            None => serial_solve(n, m, args.tol, args.max_iters),
        };
        let identical = serial_iterations == iterations
            && Zip::from(&field)
                .and(&serial)
                .all(|a, b| a.to_bits() == b.to_bits());
        let mean_interior = field.slice(s![1..n - 1, 1..m - 1]).mean().unwrap_or(0.0);
        println!(
            "heat2d {n} x {m} on {} ranks x {} threads: {iterations} iterations, mean interior temperature {mean_interior:.6}",
            spmd.size(),
            spmd.threads()
        );
        println!("{report}");
        report.record("iterations", iterations);
        report.record("mean_interior", mean_interior);
        report.record("verified", identical);
        args.measure.write(&report)?;
        if let Some(path) = &args.image {
            write_image(&field, path)?;
        }
        if !identical {
            return Err(format!(
                "distributed result differs from the serial solve ({iterations} vs {serial_iterations} iterations)"
            )
            .into());
        }
        println!("verified: bit-identical to the serial solve ({serial_iterations} iterations)");
    }
    Ok(())
}

/// The field as a PNG, one pixel per point, coloured 0 → HOT on the inferno map.
fn write_image(field: &Array2<f64>, path: &PathBuf) -> Result<(), Box<dyn std::error::Error>> {
    let (n, m) = field.dim();
    let mut image = image::RgbImage::new(m as u32, n as u32);
    for ((i, j), &t) in field.indexed_iter() {
        let colour = colorous::INFERNO.eval_continuous((t / HOT).clamp(0.0, 1.0));
        image.put_pixel(
            j as u32,
            i as u32,
            image::Rgb([colour.r, colour.g, colour.b]),
        );
    }
    image.save(path)?;
    Ok(())
}
