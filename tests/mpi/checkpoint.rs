//! Checkpoint/restart scenarios: save with P ranks, load with Q, survive a crash mid-save,
//! refuse corrupt or mismatched checkpoints on every rank.

use ndarray::{Array3, Ix3};
use ndarray_npy::ReadNpyExt;
use spmd::array::{CheckpointFormat, DistArray, Split};
use spmd::ErrorKind;

use std::path::{Path, PathBuf};

use crate::harness::{expect_success, launch, trial, Module, Scenario};
use crate::launcher::Outcome;
use crate::support::{expect_same_error, init, report_ok};

static CHECKPOINT: Scenario = Scenario {
    name: "checkpoint",
    run,
};

pub const MODULE: Module = Module {
    scenarios: &[&CHECKPOINT],
    trials,
};

fn dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("checkpoints")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn step(ranks: usize, dir: &Path, mode: &str, offset: &str, extra_env: &[(&str, &str)]) -> Outcome {
    let dir = dir.to_str().unwrap();
    let mut env = vec![
        ("CKPT_DIR", dir),
        ("CKPT_MODE", mode),
        ("CKPT_OFFSET", offset),
    ];
    env.extend_from_slice(extra_env);
    launch(&CHECKPOINT, ranks, &[], &env)
}

fn ok(ranks: usize, dir: &Path, mode: &str, offset: &str) -> Result<(), String> {
    expect_success(&CHECKPOINT, ranks, &step(ranks, dir, mode, offset, &[]))
}

/// The files of the current version of the checkpoint in `dir`.
fn current(dir: &Path) -> Result<PathBuf, String> {
    let name = std::fs::read_to_string(dir.join("CURRENT")).map_err(|e| e.to_string())?;
    Ok(dir.join(name.trim()))
}

fn edit(path: &Path, change: impl FnOnce(&mut Vec<u8>)) -> Result<(), String> {
    let mut bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    change(&mut bytes);
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// Replaces the first occurrence of `from` in the manifest with `to`.
fn edit_manifest(dir: &Path, from: &str, to: &str) -> Result<(), String> {
    let path = current(dir)?.join("manifest.json");
    let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
    if !text.contains(from) {
        return Err(format!("the manifest has no {from:?}:\n{text}"));
    }
    std::fs::write(&path, text.replacen(from, to, 1)).map_err(|e| e.to_string())
}

/// A checkpoint saved at 2 ranks, damaged one way, must be refused on every one of 3 ranks
/// with an Io error saying what is wrong — never a crash, a hang or a silent load. Before 0.2
/// an absurd shape crashed every rank (allocation failure) and a flipped data byte loaded
/// silently.
fn damaged_checkpoints() -> Vec<libtest_mimic::Trial> {
    type Damage = fn(&Path) -> Result<(), String>;
    let cases: [(&str, Damage, &str); 8] = [
        (
            "absurd_shape",
            |d| {
                edit_manifest(
                    d,
                    "\"shape\": [\n    7,",
                    "\"shape\": [\n    1099511627776,",
                )
            },
            "the manifest's split gives rank 0",
        ),
        (
            "shape_beyond_addressing",
            |d| {
                edit_manifest(
                    d,
                    "\"shape\": [\n    7,\n    5,",
                    "\"shape\": [\n    18446744073709551615,\n    5,",
                )
            },
            "more elements than this machine can address",
        ),
        (
            "flipped_data_byte",
            |d| {
                edit(&current(d)?.join("piece-00001.npy"), |b| {
                    let last = b.len() - 3;
                    b[last] ^= 0x10;
                })
            },
            "piece-00001.npy has CRC-32",
        ),
        (
            "piece_of_another_type",
            |d| {
                edit(&current(d)?.join("piece-00000.npy"), |b| {
                    let at = b.windows(3).position(|w| w == b"<f8").expect("descr");
                    b[at..at + 3].copy_from_slice(b"<i8");
                })
            },
            "piece-00000.npy holds <i8 elements",
        ),
        (
            "truncated_piece",
            |d| {
                edit(&current(d)?.join("piece-00001.npy"), |b| {
                    b.truncate(b.len() - 8)
                })
            },
            "(truncated or padded)",
        ),
        (
            "missing_piece",
            |d| {
                std::fs::remove_file(current(d)?.join("piece-00000.npy")).map_err(|e| e.to_string())
            },
            "cannot open",
        ),
        (
            "manifest_not_json",
            |d| {
                edit(&current(d)?.join("manifest.json"), |b| {
                    b.truncate(b.len() / 2)
                })
            },
            "the manifest does not parse",
        ),
        (
            "checksum_count",
            |d| edit_manifest(d, "\"crc32\": [", "\"crc32\": [\n    1,"),
            "3 checksums for 2 pieces",
        ),
    ];
    cases
        .into_iter()
        .map(|(name, damage, expected)| {
            trial(format!("checkpoint_{name}_refused_np3"), move || {
                let d = dir(&format!("damaged-{name}"));
                ok(2, &d, "save", "0")?;
                damage(&d)?;
                let env = [("CKPT_EXPECT", expected)];
                expect_success(&CHECKPOINT, 3, &step(3, &d, "refused", "0", &env))
            })
        })
        .collect()
}

const SINGLE: [(&str, &str); 1] = [("CKPT_FORMAT", "single")];

fn ok_single(ranks: usize, dir: &Path, mode: &str) -> Result<(), String> {
    expect_success(&CHECKPOINT, ranks, &step(ranks, dir, mode, "0", &SINGLE))
}

/// Single-file checkpoints: saved at P ranks, the data file is the global array NumPy reads
/// (checked here with ndarray-npy), loaded bit-identical at Q ranks; damaged, refused on every
/// rank; a crash before the commit keeps the previous checkpoint.
fn single_file_trials() -> Vec<libtest_mimic::Trial> {
    let mut trials = Vec::new();
    for (p, q) in [(1, 3), (3, 2), (4, 1), (2, 4)] {
        trials.push(trial(
            format!("checkpoint_single_file_save_np{p}_load_np{q}"),
            move || {
                let d = dir(&format!("single-p{p}q{q}"));
                ok_single(p, &d, "save")?;
                let data = current(&d)?.join("array.npy");
                let file =
                    std::fs::File::open(&data).map_err(|e| format!("{}: {e}", data.display()))?;
                let saved = ndarray::Array3::<f64>::read_npy(file).map_err(|e| e.to_string())?;
                if saved != Array3::from_shape_fn(SHAPE, |(i, j, k)| value(i, j, k, 0.0)) {
                    return Err("array.npy does not hold the global array".into());
                }
                let pieces = std::fs::read_dir(current(&d)?)
                    .map_err(|e| e.to_string())?
                    .count();
                if pieces != 2 {
                    return Err(format!(
                        "{pieces} files in the version directory, not array.npy and the manifest"
                    ));
                }
                ok(q, &d, "load", "0")
            },
        ));
    }
    type Damage = fn(&Path) -> Result<(), String>;
    let cases: [(&str, Damage, &str); 4] = [
        (
            "flipped_data_byte",
            |d| {
                edit(&current(d)?.join("array.npy"), |b| {
                    let last = b.len() - 3;
                    b[last] ^= 0x10;
                })
            },
            "of the data have CRC-32",
        ),
        (
            "truncated",
            |d| edit(&current(d)?.join("array.npy"), |b| b.truncate(b.len() - 8)),
            "(truncated or padded)",
        ),
        (
            "absurd_shape",
            |d| {
                edit_manifest(
                    d,
                    "\"shape\": [\n    7,",
                    "\"shape\": [\n    1099511627776,",
                )
            },
            "has shape [7, 5, 3], the manifest says [1099511627776, 5, 3]",
        ),
        (
            "checksum_count",
            |d| edit_manifest(d, "\"crc32\": [", "\"crc32\": [\n    1,"),
            "2 checksums for the 1 chunks",
        ),
    ];
    for (name, damage, expected) in cases {
        trials.push(trial(
            format!("checkpoint_single_file_{name}_refused_np3"),
            move || {
                let d = dir(&format!("single-damaged-{name}"));
                ok_single(2, &d, "save")?;
                damage(&d)?;
                let env = [("CKPT_EXPECT", expected)];
                expect_success(&CHECKPOINT, 3, &step(3, &d, "refused", "0", &env))
            },
        ));
    }
    trials.push(trial(
        "checkpoint_single_file_crash_mid_save_keeps_previous_np2",
        || {
            let d = dir("single-crash");
            ok_single(2, &d, "save")?;
            let env = [
                ("CKPT_FORMAT", "single"),
                (spmd::array::FAULT_BEFORE_COMMIT_ENV, "1"),
            ];
            let out = step(2, &d, "crash", "1000", &env);
            if out.code == Some(0) || out.timed_out {
                return Err(format!(
                    "the crashing save should end the job non-zero: {}",
                    out.describe()
                ));
            }
            ok(3, &d, "load", "0")
        },
    ));
    trials
}

fn trials() -> Vec<libtest_mimic::Trial> {
    let mut trials = single_file_trials();
    for ranks in 1..=4 {
        trials.push(trial(
            format!("checkpoint_save_load_np{ranks}"),
            move || ok(ranks, &dir(&format!("same{ranks}")), "save_then_load", "0"),
        ));
    }
    for (p, q) in [(2, 3), (3, 2), (4, 1), (1, 4)] {
        trials.push(trial(
            format!("checkpoint_save_np{p}_load_np{q}"),
            move || {
                let d = dir(&format!("p{p}q{q}"));
                ok(p, &d, "save", "0")?;
                ok(q, &d, "load", "0")
            },
        ));
    }
    trials.push(trial(
        "checkpoint_crash_mid_save_keeps_previous_np2",
        || {
            let d = dir("crash");
            ok(2, &d, "save", "0")?;
            let fault = [(spmd::array::FAULT_BEFORE_COMMIT_ENV, "1")];
            let out = step(2, &d, "crash", "1000", &fault);
            if out.code == Some(0) || out.timed_out {
                return Err(format!(
                    "the crashing save should end the job non-zero: {}",
                    out.describe()
                ));
            }
            // The previous checkpoint (offset 0) is still the one that loads.
            ok(3, &d, "load", "0")
        },
    ));
    trials.extend(damaged_checkpoints());
    trials.push(trial(
        "checkpoint_corrupt_or_mismatched_refused_np3",
        || {
            let d = dir("corrupt");
            ok(2, &d, "save", "0")?;
            ok(3, &d, "wrong_type", "0")?;
            // Truncate one piece.
            let current = std::fs::read_to_string(d.join("CURRENT")).map_err(|e| e.to_string())?;
            let piece = d.join(current.trim()).join("piece-00001.npy");
            let bytes = std::fs::read(&piece).map_err(|e| e.to_string())?;
            std::fs::write(&piece, &bytes[..bytes.len() - 8]).map_err(|e| e.to_string())?;
            ok(3, &d, "corrupt", "0")
        },
    ));
    trials
}

const SHAPE: (usize, usize, usize) = (7, 5, 3);

fn value(i: usize, j: usize, k: usize, offset: f64) -> f64 {
    (i * 100 + j * 10 + k) as f64 + 0.125 + offset
}

/// `CKPT_MODE`: save, load, save_then_load, crash (a save that dies before committing),
/// corrupt (loading must fail on every rank). `CKPT_OFFSET` shifts the saved values.
fn run() {
    let spmd = init();
    let world = spmd.world();
    let dir = std::path::PathBuf::from(std::env::var("CKPT_DIR").expect("CKPT_DIR"));
    let mode = std::env::var("CKPT_MODE").expect("CKPT_MODE");
    let offset: f64 = std::env::var("CKPT_OFFSET").map_or(0.0, |o| o.parse().unwrap());
    let serial = Array3::from_shape_fn(SHAPE, |(i, j, k)| value(i, j, k, offset));
    let save = || {
        let a = DistArray::from_fn(world, SHAPE, Split::block_cyclic(0, 2), |(i, j, k)| {
            value(i, j, k, offset)
        })
        .unwrap();
        match std::env::var("CKPT_FORMAT").as_deref() {
            Ok("single") => a.save_with(&dir, CheckpointFormat::SingleFile),
            _ => a.save(&dir),
        }
        .expect("save");
    };
    let load_and_check = || {
        for split in [Split::block(0), Split::cyclic(1), Split::block_cyclic(2, 2)] {
            let b = DistArray::<f64, Ix3>::load(world, &dir, split).expect("load");
            let all = b.all_gather().unwrap();
            assert!(
                all.iter()
                    .zip(serial.iter())
                    .all(|(x, y)| x.to_bits() == y.to_bits()),
                "loaded array differs (split {split:?})"
            );
        }
    };
    match mode.as_str() {
        "save" => save(),
        "load" => load_and_check(),
        "save_then_load" => {
            save();
            load_and_check();
        }
        "crash" => {
            // Only the root dies (before committing); the job ends with it.
            save();
            panic!("the save should have ended the job");
        }
        "corrupt" => {
            let e = expect_same_error(
                world,
                "corrupt checkpoint",
                DistArray::<f64, Ix3>::load(world, &dir, Split::block(0)),
                ErrorKind::Io,
            );
            assert!(e.message().contains("checkpoint"), "{e}");
            let e = expect_same_error(
                world,
                "wrong element type",
                DistArray::<i32, Ix3>::load(world, dir.join("missing"), Split::block(0)),
                ErrorKind::Io,
            );
            assert!(e.message().contains("CURRENT"), "{e}");
        }
        "refused" => {
            // Loading must give an Io error on every rank whose message holds CKPT_EXPECT.
            let expected = std::env::var("CKPT_EXPECT").expect("CKPT_EXPECT");
            let e = expect_same_error(
                world,
                "damaged checkpoint",
                DistArray::<f64, Ix3>::load(world, &dir, Split::block(0)),
                ErrorKind::Io,
            );
            assert!(
                e.message().contains(&expected),
                "{e}\nexpected {expected:?}"
            );
        }
        "wrong_type" => {
            let e = expect_same_error(
                world,
                "wrong element type",
                DistArray::<i32, Ix3>::load(world, &dir, Split::block(0)),
                ErrorKind::Io,
            );
            assert!(e.message().contains("<f8"), "{e}");
        }
        other => panic!("unknown CKPT_MODE {other}"),
    }
    report_ok("checkpoint", &spmd);
}
