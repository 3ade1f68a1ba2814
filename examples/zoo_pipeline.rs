//! Distributing *functions* rather than data: the world is split into three role groups that
//! form a pipeline. **Cameras** film the enclosures and stream frames; the **analysis** group
//! tracks each animal, measures its motion and raises an urgent alert when one escapes the
//! fence; the **archive** group keeps long-term statistics. Frames travel with non-blocking
//! sends, at most `--in-flight` per camera at a time (back-pressure: a camera waits for its
//! frames to be taken instead of filling memory).
//!
//! ```text
//! mpirun -n 6 target/release/examples/zoo_pipeline --cameras-frames 2000 --report zoo.json
//! ```
//!
//! Roles: with P ≥ 3 ranks, the first third (at least one) are cameras, the next third (at
//! least one) analysis, the rest archive. With 2 ranks, rank 0 films and rank 1 analyses and
//! archives; with 1 rank, one process runs the whole pipeline in turn. Every camera's frames go
//! to one analysis rank (in order, as MPI keeps messages between a pair ordered, so motion is
//! measured between consecutive frames), and every analysed frame to one archive rank.
//!
//! Verified on rank 0: every frame is analysed exactly once and archived exactly once, and
//! the alerts and statistics equal those of a serial run over the same frames.

mod common;

use clap::Parser;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use spmd::comm::Source;
use spmd::{Comm, Spmd};

#[derive(Parser, Debug)]
#[command(about = "A camera -> analysis -> archive pipeline over three groups of MPI ranks")]
struct Args {
    /// Cameras (spread over the camera ranks).
    #[arg(long, default_value_t = 6)]
    cameras: usize,
    /// Frames each camera films.
    #[arg(long, default_value_t = 200)]
    cameras_frames: usize,
    /// Most frames a camera rank has in flight at once.
    #[arg(long, default_value_t = 4)]
    in_flight: usize,
    #[command(flatten)]
    measure: common::Measure,
}

/// What a rank ends the pipeline with: its frame summaries and its per-camera statistics.
type Outcome = (Vec<[f64; 6]>, Vec<[f64; 3]>);

const SIDE: usize = 32;
const FENCE: f64 = 28.0;
const TAG_FRAME: u32 = 10;
const TAG_SUMMARY: u32 = 11;
const END: u32 = u32::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Camera,
    Analysis,
    Archive,
}

/// The ranks of each role for `p` ranks.
fn roles(p: usize) -> [Vec<usize>; 3] {
    match p {
        1 => [vec![0], vec![0], vec![0]],
        2 => [vec![0], vec![1], vec![1]],
        _ => {
            let cameras = (p / 3).max(1);
            let analysis = (p / 3).max(1);
            [
                (0..cameras).collect(),
                (cameras..cameras + analysis).collect(),
                (cameras + analysis..p).collect(),
            ]
        }
    }
}

/// Frame `t` of camera `c`: noise with a bright 3 x 3 animal that wanders right and, for some
/// cameras, over the fence. Layout: `[camera, t, pixels...]`.
fn frame(c: usize, t: usize) -> Vec<u32> {
    let mut rng = Pcg64Mcg::seed_from_u64(((c as u64) << 32) ^ t as u64 ^ 0x200);
    let speed = 0.05 + 0.03 * (c % 4) as f64;
    let x =
        ((4.0 + speed * t as f64 + 2.0 * (t as f64 * 0.3 + c as f64).sin()) as usize).min(SIDE - 3);
    let y = 8 + (c * 5) % 16;
    let mut out = vec![c as u32, t as u32];
    out.extend((0..SIDE * SIDE).map(|k| {
        let (py, px) = (k / SIDE, k % SIDE);
        if (y..y + 3).contains(&py) && (x..x + 3).contains(&px) {
            200 + rng.random_range(0..40)
        } else {
            rng.random_range(0..60)
        }
    }));
    out
}

/// What analysis learns from a frame: the animal's centre (mean of bright pixels).
fn centre(pixels: &[u32]) -> (f64, f64) {
    let (mut sx, mut sy, mut n) = (0.0, 0.0, 0.0);
    for (k, &v) in pixels.iter().enumerate() {
        if v >= 128 {
            sx += (k % SIDE) as f64;
            sy += (k / SIDE) as f64;
            n += 1.0;
        }
    }
    if n > 0.0 {
        (sx / n, sy / n)
    } else {
        (f64::NAN, f64::NAN)
    }
}

/// Analysis state per camera: the previous centre. Returns `[camera, t, cx, cy, motion, escaped]`.
fn analyse(message: &[u32], previous: &mut [Option<(f64, f64)>]) -> [f64; 6] {
    let (c, t) = (message[0] as usize, message[1] as f64);
    let (cx, cy) = centre(&message[2..]);
    let motion = previous[c].map_or(0.0, |(px, py)| {
        ((cx - px).powi(2) + (cy - py).powi(2)).sqrt()
    });
    previous[c] = Some((cx, cy));
    [c as f64, t, cx, cy, motion, f64::from(u8::from(cx > FENCE))]
}

/// Archive statistics per camera: frames, total motion, frames beyond the fence.
fn archive(stats: &mut [[f64; 3]], summary: &[f64]) {
    let s = &mut stats[summary[0] as usize];
    s[0] += 1.0;
    s[1] += summary[4];
    s[2] += summary[5];
}

/// Everything a serial run computes: summaries in order and the statistics.
fn serial(args: &Args) -> (Vec<[f64; 6]>, Vec<[f64; 3]>) {
    let mut previous = vec![None; args.cameras];
    let mut stats = vec![[0.0; 3]; args.cameras];
    let mut summaries = Vec::new();
    for c in 0..args.cameras {
        for t in 0..args.cameras_frames {
            let s = analyse(&frame(c, t), &mut previous);
            archive(&mut stats, &s);
            summaries.push(s);
        }
    }
    (summaries, stats)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if args.cameras == 0 || args.in_flight == 0 {
        return Err("--cameras and --in-flight must be positive".into());
    }
    let spmd = Spmd::init()?;
    let world = spmd.world();
    let (p, me) = (world.size(), world.rank());
    let [camera_ranks, analysis_ranks, archive_ranks] = roles(p);
    let my_roles: Vec<Role> = [
        (Role::Camera, &camera_ranks),
        (Role::Analysis, &analysis_ranks),
        (Role::Archive, &archive_ranks),
    ]
    .into_iter()
    .filter(|(_, ranks)| ranks.contains(&me))
    .map(|(role, _)| role)
    .collect();
    // The archive ranks as a communicator of their own (a split of the world): they combine
    // their statistics among themselves, without involving the other groups.
    let is_archive = my_roles.contains(&Role::Archive);
    let archive_group = world
        .split(Some(u32::from(is_archive)), me as i32)
        .expect("every rank has a colour");
    let analysis_of = |c: usize| analysis_ranks[c % analysis_ranks.len()];
    let archive_of = |c: usize| archive_ranks[c % archive_ranks.len()];

    // One run of the pipeline: what each repetition measures. Returns this rank's frame
    // summaries and statistics.
    let pipeline = || -> spmd::Result<Outcome> {
        let mut summaries: Vec<[f64; 6]> = Vec::new();
        let mut stats = vec![[0.0; 3]; args.cameras];
        if p == 1 {
            return Ok(serial(&args));
        }
        if my_roles.contains(&Role::Camera) {
            film(&spmd, &args, &camera_ranks, &analysis_ranks, analysis_of)?;
        }
        if my_roles.contains(&Role::Analysis) {
            let cameras_feeding = camera_ranks.len();
            summaries = analyse_stream(
                &spmd,
                &args,
                cameras_feeding,
                &archive_ranks,
                archive_of,
                is_archive,
                &mut stats,
            )?;
        }
        if is_archive && !my_roles.contains(&Role::Analysis) {
            archive_stream(&spmd, analysis_ranks.len(), &mut stats)?;
        }
        if is_archive {
            let mine: Vec<f64> = stats.iter().flatten().copied().collect();
            let combined = archive_group.all_reduce_slice(&mine, spmd::Op::Sum)?;
            // The group's first rank speaks for it below; the others contribute nothing.
            for (slot, v) in stats.iter_mut().flatten().zip(combined) {
                *slot = if archive_group.rank() == 0 { v } else { 0.0 };
            }
        }
        Ok((summaries, stats))
    };
    let repeat = args.measure.repeat(&spmd);
    let ((summaries, stats), sequential) = if args.measure.baseline {
        let measured = repeat.baseline(|| serial(&args)).run(pipeline)?;
        (measured.result, measured.baseline)
    } else {
        (repeat.run(pipeline)?.result, None)
    };

    // Rank 0 collects what happened: every summary analysed, every rank's statistics.
    let flat: Vec<f64> = summaries.iter().flatten().copied().collect();
    let gathered = world.gather_varcount(0, &flat)?;
    let stat_flat: Vec<f64> = stats.iter().flatten().copied().collect();
    let mut totals = vec![0.0; stat_flat.len()];
    world.all_reduce_into(&stat_flat, &mut totals, spmd::Op::Sum)?;
    let report = spmd.report("zoo_pipeline")?;
    if let (Some(all), Some(report)) = (gathered.map(|g| g.into_vec()), report) {
        let (expected, expected_stats) = sequential.unwrap_or_else(|| serial(&args));
        let mut got: Vec<[f64; 6]> = all
            .chunks(6)
            .map(|c| c.try_into().expect("6 values"))
            .collect();
        got.sort_by(|a, b| {
            (a[0], a[1])
                .partial_cmp(&(b[0], b[1]))
                .expect("no NaN keys")
        });
        let same = |a: &[f64], b: &[f64]| {
            a.iter()
                .zip(b)
                .all(|(x, y)| x == y || (x.is_nan() && y.is_nan()))
        };
        let frames_ok =
            got.len() == expected.len() && got.iter().zip(&expected).all(|(a, b)| same(a, b));
        let stats_ok = same(
            &totals,
            &expected_stats.iter().flatten().copied().collect::<Vec<_>>(),
        );
        let archived: f64 = totals.chunks(3).map(|s| s[0]).sum();
        let escapes: f64 = totals.chunks(3).map(|s| s[2]).sum();
        println!(
            "zoo_pipeline on {p} ranks (cameras {camera_ranks:?}, analysis {analysis_ranks:?}, archive {archive_ranks:?}): \
             {} frames analysed, {archived} archived, {escapes} escape alerts",
            got.len()
        );
        println!("{report}");
        let verified = frames_ok && stats_ok && archived as usize == expected.len();
        let mut report = report;
        report.record("verified", verified);
        report.record("frames", got.len());
        report.record("escape_alerts", escapes);
        args.measure.write(&report)?;
        if !verified {
            return Err(format!("pipeline result differs from the serial run: frames {frames_ok}, statistics {stats_ok}").into());
        }
        println!("verified: every frame analysed and archived exactly once; alerts and statistics equal the serial run");
    }
    Ok(())
}

/// Camera ranks: film their cameras' frames, send each to its analysis rank with at most
/// `in_flight` non-blocking sends outstanding, then tell every analysis rank they are done.
fn film(
    spmd: &Spmd,
    args: &Args,
    camera_ranks: &[usize],
    analysis_ranks: &[usize],
    analysis_of: impl Fn(usize) -> usize,
) -> spmd::Result<()> {
    let world = spmd.world();
    let me = camera_ranks
        .iter()
        .position(|&r| r == world.rank())
        .expect("a camera rank");
    let mine: Vec<usize> = (0..args.cameras)
        .filter(|c| c % camera_ranks.len() == me)
        .collect();
    let jobs: Vec<(usize, usize)> = (0..args.cameras_frames)
        .flat_map(|t| mine.iter().map(move |&c| (c, t)))
        .collect();
    for batch in jobs.chunks(args.in_flight) {
        let frames: Vec<Vec<u32>> = {
            let _film = spmd.region("film");
            batch.iter().map(|&(c, t)| frame(c, t)).collect()
        };
        // At most `in_flight` sends in flight; all complete before the next batch.
        let sends = batch
            .iter()
            .zip(frames)
            .map(|(&(c, _), f)| world.send_immediate(analysis_of(c), TAG_FRAME, f))
            .collect::<spmd::Result<Vec<_>>>()?;
        spmd::comm::wait_all(sends)?;
    }
    for &a in analysis_ranks {
        world.send(a, TAG_FRAME, &[END, 0])?;
    }
    Ok(())
}

/// Analysis ranks: take frames from any camera until every camera rank has said it is done,
/// alert on escapes, forward each frame's summary to its archive rank (or archive it here
/// when this rank also archives), then tell the archive ranks they are done.
fn analyse_stream(
    spmd: &Spmd,
    args: &Args,
    camera_ranks: usize,
    archive_ranks: &[usize],
    archive_of: impl Fn(usize) -> usize,
    also_archive: bool,
    stats: &mut [[f64; 3]],
) -> spmd::Result<Vec<[f64; 6]>> {
    let world = spmd.world();
    let mut previous = vec![None; args.cameras];
    let mut done = 0;
    let mut summaries = Vec::new();
    while done < camera_ranks {
        let (message, _) = world.receive::<u32>(Source::Any, TAG_FRAME)?;
        if message[0] == END {
            done += 1;
            continue;
        }
        let summary = {
            let _analyse = spmd.region("analyse");
            analyse(&message, &mut previous)
        };
        if summary[5] == 1.0 && (previous.len() < 4 || summary[1] as usize % 50 == 0) {
            // Urgent: said at once, not at the end (thinned out to keep the output readable).
            eprintln!(
                "ALERT rank {}: camera {} frame {}: animal beyond the fence",
                world.rank(),
                summary[0],
                summary[1]
            );
        }
        if also_archive {
            archive(stats, &summary);
        } else {
            world.send(archive_of(summary[0] as usize), TAG_SUMMARY, &summary)?;
        }
        summaries.push(summary);
    }
    if !also_archive {
        for &a in archive_ranks {
            world.send(a, TAG_SUMMARY, &[f64::NAN; 6])?;
        }
    }
    Ok(summaries)
}

/// Archive ranks: fold summaries into statistics until every analysis rank is done.
fn archive_stream(spmd: &Spmd, analysis_ranks: usize, stats: &mut [[f64; 3]]) -> spmd::Result<()> {
    let world: &Comm = spmd.world();
    let mut done = 0;
    while done < analysis_ranks {
        let (summary, _) = world.receive::<f64>(Source::Any, TAG_SUMMARY)?;
        if summary[0].is_nan() {
            done += 1;
            continue;
        }
        let _archive = spmd.region("archive");
        archive(stats, &summary);
    }
    Ok(())
}
