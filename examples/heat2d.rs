//! 2-D heat equation, steady state by Jacobi iteration, on a [`DistArray`] split by rows with
//! one ghost row on each side.
//!
//! ```text
//! mpirun -n 2 target/release/examples/heat2d --n 512 --m 512 --baseline --report heat.json --image heat.png
//! ```
//!
//! The plate's top edge is held at 100, the other edges at 0. Every iteration starts the halo
//! exchange (a persistent [`HaloPlan`](spmd::array::HaloPlan)), updates the rows that need no
//! ghosts while the ghost rows travel (rayon threads over rows, polling MPI between chunks),
//! finishes the exchange and updates the two edge rows. Every `--check-every K` iterations it
//! finds the largest change over all ranks and stops when that falls below `--tol` (or after
//! `--max-iters`); with K > 1 that reduction is non-blocking and travels behind the next
//! sweep (whose result is discarded if the check says the field had converged).
//! `--halos blocking` uses the blocking exchange instead, for comparison. The root then solves the same problem serially and
//! checks the distributed result is **bit-identical**: both compute `(up + down + left + right)
//! * 0.25` with the same operands in the same order, so there is no rounding difference to
//! tolerate. `--baseline` times that serial solve as the baseline for speedup.
//!
//! `--output field.npy` writes the final field as one NumPy file, each rank writing its own
//! rows into it at once; `--output field.h5` (feature `hdf5`) writes dataset `temperature` of
//! an HDF5 file and `field.xmf` beside it, which ParaView opens.

mod common;

use std::path::{Path, PathBuf};

use clap::Parser;
use indicatif::ProgressBar;
use ndarray::{s, Array2, ArrayView2, ArrayViewMut2, Axis, Ix2, Zip};
use rayon::prelude::*;
use spmd::array::{Boundary, DistArray, Split};
use spmd::Op;

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
    /// Test convergence (one reduction over the ranks) every K iterations.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    check_every: u64,
    /// How ghost rows are exchanged: `split` overlaps them with the interior rows,
    /// `blocking` exchanges before the sweep.
    #[arg(long, value_enum, default_value_t = Halos::Split)]
    halos: Halos,
    #[command(flatten)]
    measure: common::Measure,
    /// Write the final temperature field as a colour-mapped PNG.
    #[arg(long)]
    image: Option<PathBuf>,
    /// Write the final temperature field as one `.npy` file (`numpy.load` reads it), or an
    /// HDF5 file for a `.h5` path (feature `hdf5`), every rank writing its rows at once
    /// (MPI-IO), nothing gathered.
    #[arg(long)]
    output: Option<PathBuf>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Halos {
    Split,
    Blocking,
}

const HOT: f64 = 100.0;

/// Interior rows are updated in chunks of this many, with an MPI progress poll between.
const CHUNK_ROWS: usize = 256;

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
    out.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .map(|(r, mut row)| {
            let i = first_row + r;
            let (up, here, down) = (padded.row(r), padded.row(r + 1), padded.row(r + 2));
            let contiguous = "rows of a standard-layout piece are contiguous";
            let here = here.to_slice().expect(contiguous);
            let out = row.as_slice_mut().expect(contiguous);
            if i == 0 || i == n - 1 {
                out.copy_from_slice(here);
                return 0.0;
            }
            row_update(
                up.to_slice().expect(contiguous),
                here,
                down.to_slice().expect(contiguous),
                out,
            )
        })
        .reduce(|| 0.0, f64::max)
}

/// The five-point update of one row: `out[j]` from `here[j ± 1]`, `up[j]` and `down[j]`, the
/// end points copied; returns the largest change. The largest change is kept in four lanes
/// (points `j mod 4`), merged at the end: one running maximum is a chain of dependent
/// `max` instructions that bounds the whole loop (about 4 cycles a point, slower than the
/// memory); four independent ones let it run at the memory's pace, and vectorise. A maximum
/// is exact in any order, so the result is the same bits as one running maximum.
fn row_update(up: &[f64], here: &[f64], down: &[f64], out: &mut [f64]) -> f64 {
    let m = here.len();
    out[0] = here[0];
    out[m - 1] = here[m - 1];
    let k = m - 2;
    let (left, centre, right) = (&here[..k], &here[1..k + 1], &here[2..k + 2]);
    let (up, down, out) = (&up[1..k + 1], &down[1..k + 1], &mut out[1..k + 1]);
    let point = |j: usize, change: &mut f64, out: &mut f64| {
        let value = (up[j] + down[j] + left[j] + right[j]) * 0.25;
        let d = (value - centre[j]).abs();
        if d > *change {
            *change = d;
        }
        *out = value;
    };
    let mut lanes = [0.0_f64; 4];
    let whole = k - k % 4;
    for (q, quad) in out[..whole].chunks_exact_mut(4).enumerate() {
        for (lane, (change, slot)) in lanes.iter_mut().zip(quad).enumerate() {
            point(4 * q + lane, change, slot);
        }
    }
    for (j, slot) in out.iter_mut().enumerate().skip(whole) {
        point(j, &mut lanes[0], slot);
    }
    lanes
        .into_iter()
        .fold(0.0, |a, b| if b > a { b } else { a })
}

/// The same iteration on the whole grid, on one thread, testing convergence every
/// `check_every` iterations.
fn serial_solve(
    n: usize,
    m: usize,
    tol: f64,
    max_iters: usize,
    check_every: usize,
) -> (Array2<f64>, usize) {
    let mut u = Array2::from_shape_fn((n, m), |(i, j)| initial(i, j));
    let mut next = u.clone();
    for iteration in 1..=max_iters {
        let mut change = 0.0_f64;
        let rows = u.as_slice().expect("standard layout");
        let targets = next.as_slice_mut().expect("standard layout");
        for i in 1..n - 1 {
            let row = |k: usize| &rows[k * m..(k + 1) * m];
            let target = &mut targets[i * m..(i + 1) * m];
            change = change.max(row_update(row(i - 1), row(i), row(i + 1), target));
        }
        std::mem::swap(&mut u, &mut next);
        if iteration % check_every == 0 && change < tol {
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
    let spmd = args.measure.builder().init()?;
    let world = spmd.world();
    let (n, m) = (args.n, args.m);

    // The solve from the initial field: what each repetition measures.
    let solve = || -> spmd::Result<(DistArray<f64, Ix2>, usize)> {
        let setup = spmd.region("set-up");
        let mut u = DistArray::from_fn(world, (n, m), Split::block(0), |(i, j)| initial(i, j))?
            .with_ghosts(1, Boundary::Fixed)?;
        let mut next = u.clone();
        drop(setup);
        let first_row = u.global_range(0).map_or(0, |rows| rows.start);
        let progress = if spmd.is_root() {
            ProgressBar::new(args.max_iters as u64)
        } else {
            ProgressBar::hidden()
        };
        let mut plan = u.halo_plan()?; // checked once; serves both arrays of the pair
        let rows = u.local().nrows();
        let check_every = args.check_every as usize;
        // The reduction posted after iteration `i`, waited for after the next sweep.
        let mut pending: Option<(usize, spmd::comm::Request<f64>)> = None;
        let mut iterations = args.max_iters;
        for iteration in 1..=args.max_iters {
            let change = if args.halos == Halos::Split {
                let mut exchange = plan.begin(&mut u)?;
                let mut change = 0.0_f64;
                let _interior = spmd.region("jacobi interior");
                // Owned rows 1..rows-1 need no ghosts: their sources are owned rows.
                let mut start = 1;
                while start + 1 < rows {
                    let end = (start + CHUNK_ROWS).min(rows - 1);
                    let part = sweep(
                        exchange.owned().slice(s![start - 1..end + 1, ..]),
                        next.local_mut().slice_mut(s![start..end, ..]),
                        first_row + start,
                        n,
                    );
                    change = change.max(part);
                    exchange.test(); // lets MPI move the ghost rows along
                    start = end;
                }
                drop(_interior);
                exchange.finish()?;
                let _edges = spmd.region("jacobi edges");
                let padded = u.local_with_ghosts();
                let mut out = next.local_mut();
                for edge in [0, rows - 1] {
                    let part = sweep(
                        padded.slice(s![edge..edge + 3, ..]),
                        out.slice_mut(s![edge..edge + 1, ..]),
                        first_row + edge,
                        n,
                    );
                    change = change.max(part);
                }
                change
            } else {
                u.exchange_halos()?;
                let _sweep = spmd.region("jacobi sweep");
                sweep(u.local_with_ghosts(), next.local_mut(), first_row, n)
            };
            if let Some((checked, request)) = pending.take() {
                // The check of the previous iteration travelled behind this sweep.
                if request.wait()? < args.tol {
                    iterations = checked; // `u` still holds that iteration's field
                    break;
                }
            }
            std::mem::swap(&mut u, &mut next);
            if iteration % 64 == 0 {
                progress.set_position(iteration as u64);
            }
            if iteration % check_every == 0 {
                if check_every == 1 || iteration == args.max_iters {
                    if world.all_reduce(change, Op::Max) < args.tol {
                        iterations = iteration;
                        break;
                    }
                } else {
                    pending = Some((iteration, world.immediate_all_reduce(change, Op::Max)));
                }
            }
        }
        progress.finish_and_clear();
        Ok((u, iterations))
    };
    let check_every = args.check_every as usize;
    let serial = || serial_solve(n, m, args.tol, args.max_iters, check_every);
    let repeat = args.measure.repeat(&spmd);
    let ((u, iterations), reference) = if args.measure.baseline {
        let measured = repeat.baseline(serial).run(solve)?;
        (measured.result, measured.baseline)
    } else {
        (repeat.run(solve)?.result, None)
    };
    if let Some(path) = &args.output {
        write_field(&u, path)?;
    }
    // Gathered for the root's check against the serial solve (and the PNG), not for output.
    let field = u.gather(0)?;
    let report = spmd.report("heat2d")?;

    if let (Some(field), Some(mut report)) = (field, report) {
        let (serial, serial_iterations) = match reference {
            Some(r) => r,
            None => serial_solve(n, m, args.tol, args.max_iters, check_every),
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

/// The field written by every rank at once: `.h5` as dataset `temperature` of an HDF5 file
/// (feature `hdf5`, with an XDMF sidecar for ParaView), anything else as `.npy`.
fn write_field(u: &DistArray<f64, Ix2>, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    if path.extension().is_some_and(|e| e == "h5") {
        #[cfg(feature = "hdf5")]
        {
            let mut out = spmd::array::Hdf5Writer::create(u.comm(), path)?;
            out.write(
                "temperature",
                u,
                &[("units", "degrees"), ("program", "heat2d")],
            )?;
            out.finish()?;
            return Ok(());
        }
        #[cfg(not(feature = "hdf5"))]
        return Err("--output *.h5 needs spmd built with the `hdf5` feature".into());
    }
    u.write_npy(path)?;
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
