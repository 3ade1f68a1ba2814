//! Distributing *functions* rather than data, on [`spmd::pipeline`]: **cameras** film the
//! enclosures at a fixed rate (640 x 480 grey frames), **detection** finds what moves in each
//! frame (blur, difference with the camera's previous frame, threshold, erosion, centroid) and
//! raises an alert when an animal is beyond the fence, **archive** keeps per-camera
//! statistics. Every frame of one camera goes to the same detection rank, in order (keyed
//! routing), since motion is measured between consecutive frames.
//!
//! ```text
//! mpirun -n 3 target/release/examples/zoo_pipeline --fps 100 --report zoo.json
//! ```
//!
//! Stages: one camera rank; from 4 ranks on, P - 2 detection ranks and one archive rank;
//! with 2 or 3 ranks, P - 1 ranks that detect and archive (archiving is cheap; a rank of its
//! own would leave a core idle); with 1 rank every stage runs in turn on each frame. The program reports the frame rate it sustained against the rate asked
//! (`--fps` per camera; `--fps 0`: as fast as the pipeline goes) and the stage that limits
//! it. Verified on rank 0: every frame detected and archived exactly once, with the
//! detections and statistics of a serial run.

mod common;

use std::fmt;
use std::time::{Duration, Instant};

use clap::Parser;
use rand::{Rng, RngCore, SeedableRng};
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use spmd::pipeline::{Pipeline, PipelineStats};

#[derive(Parser, Debug)]
#[command(about = "Cameras -> motion detection -> archive: a pipeline over groups of MPI ranks")]
struct Args {
    /// Cameras (spread over the camera ranks).
    #[arg(long, default_value_t = 4)]
    cameras: usize,
    /// Frames each camera films.
    #[arg(long, default_value_t = 200)]
    frames: usize,
    /// Frames per second each camera films (0: as fast as the pipeline takes them).
    #[arg(long, default_value_t = 100.0)]
    fps: f64,
    /// Frame width in pixels.
    #[arg(long, default_value_t = 640)]
    width: usize,
    /// Frame height in pixels.
    #[arg(long, default_value_t = 480)]
    height: usize,
    /// Frames a stage may have waiting at each rank of the next one.
    #[arg(long, default_value_t = 4)]
    window: usize,
    #[command(flatten)]
    measure: common::Measure,
}

/// Pixels that travel as one byte string (postcard copies them at memory speed; a plain
/// `Vec<u8>` would be encoded byte by byte).
#[derive(Clone, PartialEq)]
struct Pixels(Vec<u8>);

impl Serialize for Pixels {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Pixels {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Pixels, D::Error> {
        struct Bytes;
        impl serde::de::Visitor<'_> for Bytes {
            type Value = Pixels;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("frame pixels as bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Pixels, E> {
                Ok(Pixels(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Pixels, E> {
                Ok(Pixels(v))
            }
        }
        deserializer.deserialize_byte_buf(Bytes)
    }
}

/// One camera frame.
#[derive(Clone, Serialize, Deserialize)]
struct Frame {
    camera: u32,
    t: u32,
    width: u32,
    pixels: Pixels,
}

/// What detection learns from a frame.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
struct Detection {
    camera: u32,
    t: u32,
    /// Pixels that moved since the camera's previous frame (after erosion).
    moving: u32,
    /// Centre of the motion, or NaN with none.
    cx: f32,
    cy: f32,
    /// The motion is beyond the fence.
    escaped: bool,
}

/// Archive statistics per camera: frames, moving pixels, frames with an escape.
type Stats = Vec<[u64; 3]>;

/// Side of the animal in pixels, and the fence's place (a fraction of the width).
const ANIMAL: usize = 24;
const FENCE: f32 = 0.8;

/// Frame `t` of camera `c`: noise with a bright animal that wanders right and, for some
/// cameras, over the fence.
fn film(c: usize, t: usize, width: usize, height: usize) -> Frame {
    let mut rng = Pcg64Mcg::seed_from_u64(((c as u64) << 32) ^ t as u64 ^ 0x200);
    let mut pixels = vec![0_u8; width * height];
    rng.fill_bytes(&mut pixels);
    for p in &mut pixels {
        *p >>= 2; // background noise in 0..64
    }
    let speed = 2.0 + (c % 4) as f64;
    let span = (width - ANIMAL) as f64;
    let x = ((20.0 + speed * t as f64 + 15.0 * (t as f64 * 0.3 + c as f64).sin()) % span) as usize;
    let y = (40 + c * 53) % (height - ANIMAL);
    for row in y..y + ANIMAL {
        for p in &mut pixels[row * width + x..row * width + x + ANIMAL] {
            *p = 200 + rng.random_range(0..40);
        }
    }
    Frame {
        camera: c as u32,
        t: t as u32,
        width: width as u32,
        pixels: Pixels(pixels),
    }
}

/// A 5 x 5 box blur (two passes of 5 taps), in whole grey levels.
fn blur(pixels: &[u8], width: usize) -> Vec<u8> {
    let height = pixels.len() / width;
    let mut rows = vec![0_u16; pixels.len()];
    for (out, row) in rows.chunks_mut(width).zip(pixels.chunks(width)) {
        for (x, value) in out.iter_mut().enumerate() {
            let (lo, hi) = (x.saturating_sub(2), (x + 3).min(width));
            *value = row[lo..hi].iter().map(|&v| u16::from(v)).sum::<u16>() * 5 / (hi - lo) as u16;
        }
    }
    let mut out = vec![0_u8; pixels.len()];
    for y in 0..height {
        let (lo, hi) = (y.saturating_sub(2), (y + 3).min(height));
        for x in 0..width {
            let sum: u32 = (lo..hi).map(|r| u32::from(rows[r * width + x])).sum();
            out[y * width + x] = (sum / (5 * (hi - lo) as u32)) as u8;
        }
    }
    out
}

/// Per-camera detection state: the previous blurred frame.
struct Detector {
    previous: Vec<Option<Vec<u8>>>,
}

impl Detector {
    fn new(cameras: usize) -> Detector {
        Detector {
            previous: vec![None; cameras],
        }
    }

    /// Motion in `frame` against the camera's previous frame: pixels whose blurred grey level
    /// changed by more than 40, kept only where their 3 x 3 neighbourhood all changed.
    fn detect(&mut self, frame: &Frame) -> Detection {
        let width = frame.width as usize;
        let blurred = blur(&frame.pixels.0, width);
        let height = blurred.len() / width;
        let (mut moving, mut sx, mut sy) = (0_u32, 0.0_f64, 0.0_f64);
        if let Some(previous) = &self.previous[frame.camera as usize] {
            let changed: Vec<bool> = blurred
                .iter()
                .zip(previous)
                .map(|(&a, &b)| a.abs_diff(b) > 40)
                .collect();
            for y in 1..height - 1 {
                for x in 1..width - 1 {
                    let all = (y - 1..=y + 1).all(|r| {
                        changed[r * width + x - 1..=r * width + x + 1]
                            .iter()
                            .all(|&c| c)
                    });
                    if all {
                        moving += 1;
                        sx += x as f64;
                        sy += y as f64;
                    }
                }
            }
        }
        self.previous[frame.camera as usize] = Some(blurred);
        let (cx, cy) = if moving > 0 {
            (
                (sx / f64::from(moving)) as f32,
                (sy / f64::from(moving)) as f32,
            )
        } else {
            (f32::NAN, f32::NAN)
        };
        Detection {
            camera: frame.camera,
            t: frame.t,
            moving,
            cx,
            cy,
            escaped: cx > FENCE * width as f32,
        }
    }
}

/// Folds a detection into the statistics; says so on stderr the first time a camera's
/// animal is beyond the fence.
fn archive(stats: &mut Stats, d: &Detection) {
    let s = &mut stats[d.camera as usize];
    if d.escaped && s[2] == 0 {
        eprintln!(
            "ALERT: camera {} frame {}: animal beyond the fence",
            d.camera, d.t
        );
    }
    s[0] += 1;
    s[1] += u64::from(d.moving);
    s[2] += u64::from(d.escaped);
}

/// The serial solution: every camera's frames in order, detected and archived.
fn serial(args: &Args) -> (Vec<Detection>, Stats) {
    let mut detector = Detector::new(args.cameras);
    let mut stats = vec![[0; 3]; args.cameras];
    let mut detections = Vec::new();
    for t in 0..args.frames {
        for c in 0..args.cameras {
            let d = detector.detect(&film(c, t, args.width, args.height));
            archive(&mut stats, &d);
            detections.push(d);
        }
    }
    (detections, stats)
}

/// The stages' rank counts for `p` ranks: cameras, detection, archive (0: archived by the
/// detection rank, which is then the sink).
fn layout(p: usize) -> (usize, usize, usize) {
    match p {
        1 => (1, 1, 1),
        2 | 3 => (1, p - 1, 0),
        _ => (1, p - 2, 1),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if args.cameras == 0 || args.frames == 0 || args.fps < 0.0 {
        return Err("--cameras and --frames must be positive, --fps not negative".into());
    }
    if args.width <= ANIMAL + 2 || args.height <= ANIMAL + 2 {
        return Err(format!("frames must be larger than the {ANIMAL}-pixel animal").into());
    }
    let spmd = args.measure.builder().init()?;
    let world = spmd.world();
    let (cameras, detectors, archivers) = layout(world.size());

    // One run of the pipeline: what each repetition measures. Returns this rank's
    // detections, statistics and the pipeline's statistics.
    let run = || -> spmd::Result<(Vec<Detection>, Stats, PipelineStats)> {
        let mut detector = Detector::new(args.cameras);
        let mut detections = Vec::new();
        let mut stats: Stats = vec![[0; 3]; args.cameras];
        let source = Pipeline::source(world, "cameras", cameras, |out| {
            // This rank's cameras, each frame `t` due at t / fps.
            let mine: Vec<usize> = (0..args.cameras)
                .filter(|c| c % out.stage_ranks() == out.stage_rank())
                .collect();
            let start = Instant::now();
            for t in 0..args.frames {
                if args.fps > 0.0 {
                    let due = Duration::from_secs_f64(t as f64 / args.fps);
                    if let Some(early) = due.checked_sub(start.elapsed()) {
                        std::thread::sleep(early);
                    }
                }
                for &c in &mine {
                    if !out.emit_to(c as u64, film(c, t, args.width, args.height)) {
                        return;
                    }
                }
            }
        })
        .window(args.window);
        let pipeline_stats = if archivers == 0 {
            source
                .sink("detect+archive", detectors, |frame: Frame| {
                    let d = detector.detect(&frame);
                    archive(&mut stats, &d);
                    detections.push(d);
                })
                .run()?
        } else {
            source
                .stage_with("detect", detectors, |frame: Frame, out| {
                    let d = detector.detect(&frame);
                    out.emit_to(u64::from(d.camera), d);
                })
                .sink("archive", archivers, |d: Detection| {
                    archive(&mut stats, &d);
                    detections.push(d);
                })
                .run()?
        };
        Ok((detections, stats, pipeline_stats))
    };
    let repeat = args.measure.repeat(&spmd);
    let ((detections, stats, pipeline), sequential) = if args.measure.baseline {
        let measured = repeat.baseline(|| serial(&args)).run(run)?;
        (measured.result, measured.baseline)
    } else {
        (repeat.run(run)?.result, None)
    };

    // Rank 0 checks every detection and the statistics against a serial run.
    let rows: Vec<f64> = detections
        .iter()
        .flat_map(|d| {
            [
                f64::from(d.camera),
                f64::from(d.t),
                f64::from(d.moving),
                f64::from(d.cx),
                f64::from(d.cy),
                f64::from(u8::from(d.escaped)),
            ]
        })
        .collect();
    let gathered = world.gather_varcount(0, &rows)?;
    let mine: Vec<u64> = stats.iter().flatten().copied().collect();
    let totals = world.all_reduce_slice(&mine, spmd::Op::Sum)?;
    let report = spmd.report("zoo_pipeline")?;
    let (Some(all), Some(mut report)) = (gathered, report) else {
        return Ok(());
    };
    let (expected, expected_stats) = sequential.unwrap_or_else(|| serial(&args));
    let mut got: Vec<Detection> = all
        .as_slice()
        .chunks(6)
        .map(|r| Detection {
            camera: r[0] as u32,
            t: r[1] as u32,
            moving: r[2] as u32,
            cx: r[3] as f32,
            cy: r[4] as f32,
            escaped: r[5] != 0.0,
        })
        .collect();
    got.sort_by_key(|d| (d.t, d.camera));
    let same = |a: &Detection, b: &Detection| {
        (a.camera, a.t, a.moving, a.escaped) == (b.camera, b.t, b.moving, b.escaped)
            && (a.cx == b.cx || (a.cx.is_nan() && b.cx.is_nan()))
            && (a.cy == b.cy || (a.cy.is_nan() && b.cy.is_nan()))
    };
    let frames_ok =
        got.len() == expected.len() && got.iter().zip(&expected).all(|(a, b)| same(a, b));
    let expected_totals: Vec<u64> = expected_stats.iter().flatten().copied().collect();
    let stats_ok = totals == expected_totals;
    let asked = args.fps * args.cameras as f64;
    let sustained = pipeline.source_rate();
    let limit = pipeline.limiting_stage();
    let escapes: u64 = totals.chunks(3).map(|s| s[2]).sum();
    println!(
        "zoo_pipeline on {} ranks (cameras {cameras}, detection {detectors}, archive {archivers}): \
         {} frames of {}x{}, {escapes} frames with an escape",
        world.size(),
        got.len(),
        args.width,
        args.height
    );
    if asked > 0.0 {
        println!(
            "frames per second: sustained {sustained:.1} of {asked:.1} asked ({:.0}%); limited by '{}'",
            100.0 * sustained / asked,
            limit.name
        );
    } else {
        println!(
            "frames per second: {sustained:.1} (as fast as it goes); limited by '{}'",
            limit.name
        );
    }
    // The report includes the pipeline's figures per stage.
    println!("{report}");
    let verified = frames_ok && stats_ok;
    report.record("verified", verified);
    report.record("frames", got.len());
    report.record("escape_frames", escapes);
    report.record("fps_asked", asked);
    report.record("fps_sustained", sustained);
    report.record("limiting_stage", &limit.name);
    args.measure.write(&report)?;
    if !verified {
        return Err(format!(
            "the pipeline's results differ from the serial run: detections {frames_ok}, statistics {stats_ok}"
        )
        .into());
    }
    println!("verified: every frame detected and archived exactly once, as in the serial run");
    Ok(())
}
