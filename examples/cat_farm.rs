//! Manager/worker task farm on [`spmd::farm`]: rank 0 cuts a batch of images into tiles and
//! the farm hands them out on demand; every rank (the manager too, on a second thread) finds
//! "cats" in its tiles by normalised cross-correlation with a template (rayon threads over the
//! tile's rows) and the matches come back in tile order. A worker holds two tiles at once and
//! gets the next when it returns one, so a slow worker simply gets fewer tiles: dynamic load
//! balancing.
//!
//! ```text
//! mpirun -n 3 target/release/examples/cat_farm --images 32 --size 512 --slow-worker 1 --report farm.json
//! ```
//!
//! By default the images are synthetic: noise with cats planted at known positions; the
//! program checks every cat is found and nothing else is (exit 1 otherwise). `--images-dir
//! DIR --template cat.png` searches real PNG/JPEG files instead and lists what it finds.

mod common;

use std::path::PathBuf;

use clap::Parser;
use ndarray::{s, Array2, ArrayView2};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use spmd::farm::Farm;

#[derive(Parser, Debug)]
#[command(about = "Find cats in images: a manager/worker task farm over MPI ranks")]
struct Args {
    /// Number of synthetic images.
    #[arg(long, default_value_t = 8)]
    images: usize,
    /// Side of a synthetic image in pixels.
    #[arg(long, default_value_t = 256)]
    size: usize,
    /// Side of a tile (the unit of work) in pixels, before the overlap.
    #[arg(long, default_value_t = 64)]
    tile: usize,
    /// Correlation a match must reach.
    #[arg(long, default_value_t = 0.8)]
    threshold: f32,
    /// Make this rank sleep `--slow-ms` per tile, to show the load balancing.
    #[arg(long)]
    slow_worker: Option<usize>,
    /// How long the slow worker sleeps per tile, in milliseconds.
    #[arg(long, default_value_t = 20)]
    slow_ms: u64,
    /// Skewed tile costs: one tile in eight is searched eight times over (same matches), as
    /// when some images are larger or harder than others.
    #[arg(long)]
    skew: bool,
    /// Search the PNG/JPEG files in this directory instead of synthetic images.
    #[arg(long, requires = "template")]
    images_dir: Option<PathBuf>,
    /// The template to search for in `--images-dir` (a PNG/JPEG, converted to grey).
    #[arg(long)]
    template: Option<PathBuf>,
    #[command(flatten)]
    measure: common::Measure,
}

/// Matches per image: the top-left corners of the cats found.
type Matches = Vec<Vec<(usize, usize)>>;

/// A tile as the farm sends it: where it lies and its pixels.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Tile {
    task: Task,
    pixels: Vec<f32>,
}

/// A 16 x 16 cat face: head, ears, dark eyes and nose on a light face.
fn cat_template() -> Array2<f32> {
    Array2::from_shape_fn((16, 16), |(y, x)| {
        let (fy, fx) = (y as f32 - 9.0, x as f32 - 7.5);
        let head = fx * fx + fy * fy <= 36.0;
        let ear = y < 5
            && ((x as i32 - 3).abs() <= (y as i32) / 2 || (x as i32 - 12).abs() <= (y as i32) / 2);
        let eye = (y == 8 || y == 9) && (x == 5 || x == 10);
        let nose = y == 11 && (x == 7 || x == 8);
        match (head || ear, eye || nose) {
            (true, true) => 0.1,
            (true, false) => 0.9,
            _ => 0.3,
        }
    })
}

/// Image `k`: noise with up to 5 cats, and the cats' top-left corners.
fn synthetic(k: usize, size: usize, cat: &Array2<f32>) -> (Array2<f32>, Vec<(usize, usize)>) {
    let mut rng = Pcg64Mcg::seed_from_u64(0xca7 + k as u64);
    let mut image = Array2::from_shape_fn((size, size), |_| rng.random_range(0.0..0.6_f32));
    let (ch, cw) = cat.dim();
    let mut cats: Vec<(usize, usize)> = Vec::new();
    for _ in 0..50 {
        if cats.len() == 5 || size < ch {
            break;
        }
        let (y, x) = (
            rng.random_range(0..=size - ch),
            rng.random_range(0..=size - cw),
        );
        if cats
            .iter()
            .all(|&(cy, cx)| cy.abs_diff(y) > ch + 2 || cx.abs_diff(x) > cw + 2)
        {
            let mut patch = image.slice_mut(s![y..y + ch, x..x + cw]);
            patch.zip_mut_with(cat, |p, &c| *p = 0.8 * c + 0.2 * *p);
            cats.push((y, x));
        }
    }
    cats.sort_unstable();
    (image, cats)
}

/// Positions (in `tile`) where the template matches with correlation ≥ `threshold` and no
/// better match lies within half a template: normalised cross-correlation, rows in parallel.
// Never inlined, so that the farm's tasks and the one-core baseline run the same machine
// code (inlined copies of a kernel can differ in speed by a quarter; see the farm benchmark).
#[inline(never)]
fn find(
    tile: ArrayView2<'_, f32>,
    template: &Array2<f32>,
    threshold: f32,
) -> Vec<(usize, usize, f32)> {
    let (th, tw) = template.dim();
    let (h, w) = tile.dim();
    if h < th || w < tw {
        return Vec::new();
    }
    let n = (th * tw) as f32;
    let t_mean = template.sum() / n;
    let t_dev: Array2<f32> = template.mapv(|v| v - t_mean);
    let t_norm = t_dev.iter().map(|v| v * v).sum::<f32>().sqrt();
    let row = |y: usize| -> Vec<f32> {
        (0..=w - tw)
            .map(|x| {
                let window = tile.slice(s![y..y + th, x..x + tw]);
                let mean = window.sum() / n;
                let (mut dot, mut norm) = (0.0_f32, 0.0_f32);
                for (&a, &b) in window.iter().zip(t_dev.iter()) {
                    dot += (a - mean) * b;
                    norm += (a - mean) * (a - mean);
                }
                if norm > 0.0 {
                    dot / (norm.sqrt() * t_norm)
                } else {
                    0.0
                }
            })
            .collect()
    };
    // Rows on the rank's rayon threads; with one thread, here (handing a tile to a one-thread
    // pool only adds a thread wake-up).
    let scores: Vec<Vec<f32>> = if rayon::current_num_threads() > 1 {
        (0..=h - th).into_par_iter().map(row).collect()
    } else {
        (0..=h - th).map(row).collect()
    };
    let radius = th / 2;
    let mut found = Vec::new();
    for (y, row) in scores.iter().enumerate() {
        for (x, &score) in row.iter().enumerate() {
            if score < threshold {
                continue;
            }
            let best = (y.saturating_sub(radius)..(y + radius + 1).min(scores.len())).all(|yy| {
                (x.saturating_sub(radius)..(x + radius + 1).min(row.len())).all(|xx| {
                    scores[yy][xx] < score || (scores[yy][xx] == score && (yy, xx) >= (y, x))
                })
            });
            if best {
                found.push((y, x, score));
            }
        }
    }
    found
}

/// [`find`] on a tile, repeated eight times for one tile in eight under `--skew` (a cost
/// that varies by tile, the same for the farm and the baseline).
fn search(
    task: &Task,
    tile: ArrayView2<'_, f32>,
    template: &Array2<f32>,
    threshold: f32,
    skew: bool,
) -> Vec<(usize, usize, f32)> {
    let heavy = skew && (task.image * 31 + task.y / 7 + task.x / 5) % 8 == 0;
    for _ in 1..if heavy { 8 } else { 1 } {
        std::hint::black_box(find(tile, template, threshold));
    }
    find(tile, template, threshold)
}

/// A unit of work: a tile of image `image` at `(y, x)`, overlapping its right and bottom
/// neighbours by the template size so that no cat falls between tiles.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct Task {
    image: usize,
    y: usize,
    x: usize,
    h: usize,
    w: usize,
}

fn tasks(images: &[Array2<f32>], tile: usize, template: (usize, usize)) -> Vec<Task> {
    let mut all = Vec::new();
    for (image, pixels) in images.iter().enumerate() {
        let (ih, iw) = pixels.dim();
        for y in (0..ih).step_by(tile) {
            for x in (0..iw).step_by(tile) {
                let (h, w) = (
                    (tile + template.0 - 1).min(ih - y),
                    (tile + template.1 - 1).min(iw - x),
                );
                all.push(Task { image, y, x, h, w });
            }
        }
    }
    all
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if args.tile == 0 {
        return Err("--tile must be positive".into());
    }
    let spmd = args.measure.builder().init()?;
    let world = spmd.world();
    let template = match &args.template {
        Some(path) => grey(path)?,
        None => cat_template(),
    };

    // Only the root reads the images (the workers get tiles), so it alone solves the whole
    // problem serially for the baseline, checking it finds the same matches.
    let images = if spmd.is_root() {
        Some(load(&args, &template)?)
    } else {
        None
    };
    let loaded = images.as_ref().map(|(i, _)| i);
    let farm = Farm::new(world)?;
    let (threshold, nap, skew) = (args.threshold, args.slow_ms, args.skew);
    let slow = args.slow_worker == Some(world.rank());
    // One run of the farm: what each repetition measures. The manager (root) gets the
    // matches of every tile, in tile order.
    let run = || -> spmd::Result<Option<Matches>> {
        let tiles: Vec<Task> =
            loaded.map_or_else(Vec::new, |images| tasks(images, args.tile, template.dim()));
        let sends = tiles.iter().map(|&task| Tile {
            task,
            pixels: loaded.expect("only the manager has tiles")[task.image]
                .slice(s![task.y..task.y + task.h, task.x..task.x + task.w])
                .iter()
                .copied()
                .collect(),
        });
        let hits = farm.map(sends, |tile: Tile| {
            if slow {
                std::thread::sleep(std::time::Duration::from_millis(nap));
            }
            let view = ArrayView2::from_shape((tile.task.h, tile.task.w), &tile.pixels)
                .expect("a tile holds h x w pixels");
            search(&tile.task, view, &template, threshold, skew)
                .into_iter()
                .map(|(y, x, _)| (tile.task.y + y, tile.task.x + x))
                .collect::<Vec<_>>()
        })?;
        Ok(hits.map(|hits| merge(loaded.expect("the manager").len(), &tiles, hits)))
    };
    let tile = args.tile;
    let sequential = || {
        let images = loaded.expect("the baseline runs on the root");
        search_all(images, &template, tile, threshold, skew)
    };
    let repeat = args.measure.repeat(&spmd);
    let (outcome, sequential) = if args.measure.baseline {
        let measured = repeat.baseline(sequential).run(run)?;
        (measured.result, measured.baseline)
    } else {
        (repeat.run(run)?.result, None)
    };
    let stats = farm.stats().expect("the farm ran");

    if let Some(found) = outcome {
        let per_rank: Vec<u64> = stats.ranks.iter().map(|r| r.tasks).collect();
        let (images, truth) = images.expect("the root loaded the images");
        if sequential.as_ref().is_some_and(|s| s != &found) {
            return Err("the sequential search found other matches than the farm".into());
        }
        let mut report = spmd.report("cat_farm")?.expect("rank 0 is the root");
        println!(
            "cat_farm: {} images, {} tiles on {} ranks x {} threads; tiles per rank (rank 0 = manager): {per_rank:?}",
            images.len(),
            stats.tasks(),
            spmd.size(),
            spmd.threads()
        );
        // The report includes the farm's figures (tasks, busy and idle time per rank).
        println!("{report}");
        report.record("tiles_per_rank", &per_rank);
        report.record("matches", &found);
        report.record(
            "verified",
            truth.as_ref().is_none_or(|truth| &found == truth),
        );
        args.measure.write(&report)?;
        match truth {
            Some(truth) => {
                let planted: usize = truth.iter().map(Vec::len).sum();
                let detected: usize = found.iter().map(Vec::len).sum();
                if found != truth {
                    return Err(format!(
                        "found {detected} cats, planted {planted}: {found:?} vs {truth:?}"
                    )
                    .into());
                }
                println!("verified: all {planted} planted cats found at their positions, no false positives");
            }
            None => {
                for (k, cats) in found.iter().enumerate() {
                    println!("image {k}: {} matches at {cats:?}", cats.len());
                }
            }
        }
        return Ok(());
    }
    spmd.report("cat_farm")?;
    Ok(())
}

/// Every tile searched on this thread (rayon inside `find` runs on the caller's pool), the
/// matches merged as the farm merges them: the sequential solution.
fn search_all(
    images: &[Array2<f32>],
    template: &Array2<f32>,
    tile: usize,
    threshold: f32,
    skew: bool,
) -> Vec<Vec<(usize, usize)>> {
    let mut found: Vec<Vec<(usize, usize)>> = vec![Vec::new(); images.len()];
    for task in tasks(images, tile, template.dim()) {
        let pixels = images[task.image].slice(s![task.y..task.y + task.h, task.x..task.x + task.w]);
        for (y, x, _) in search(&task, pixels, template, threshold, skew) {
            found[task.image].push((task.y + y, task.x + x));
        }
    }
    for cats in &mut found {
        cats.sort_unstable();
        cats.dedup();
    }
    found
}

/// The images to search and, for synthetic ones, where the cats are.
#[allow(clippy::type_complexity)]
fn load(
    args: &Args,
    template: &Array2<f32>,
) -> Result<(Vec<Array2<f32>>, Option<Vec<Vec<(usize, usize)>>>), Box<dyn std::error::Error>> {
    match &args.images_dir {
        None => {
            let (images, truth) = (0..args.images)
                .map(|k| synthetic(k, args.size, template))
                .unzip();
            Ok((images, Some(truth)))
        }
        Some(dir) => {
            let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.extension().is_some_and(|e| {
                        ["png", "jpg", "jpeg"]
                            .contains(&e.to_string_lossy().to_lowercase().as_str())
                    })
                })
                .collect();
            paths.sort();
            let images = paths
                .iter()
                .map(|p| grey(p))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((images, None))
        }
    }
}

fn grey(path: &PathBuf) -> Result<Array2<f32>, Box<dyn std::error::Error>> {
    let image = image::open(path)?.to_luma32f();
    let (w, h) = image.dimensions();
    Ok(Array2::from_shape_vec(
        (h as usize, w as usize),
        image.into_raw(),
    )?)
}

/// The farm's matches (per tile, in tile order, in image coordinates) as sorted matches per
/// image, duplicates from overlapping tiles merged.
fn merge(
    images: usize,
    tiles: &[Task],
    hits: Vec<Vec<(usize, usize)>>,
) -> Vec<Vec<(usize, usize)>> {
    let mut found: Vec<Vec<(usize, usize)>> = vec![Vec::new(); images];
    for (task, hits) in tiles.iter().zip(hits) {
        found[task.image].extend(hits);
    }
    for cats in &mut found {
        cats.sort_unstable();
        cats.dedup();
    }
    found
}
