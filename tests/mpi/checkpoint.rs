//! Checkpoint/restart scenarios: save with P ranks, load with Q, survive a crash mid-save,
//! refuse corrupt or mismatched checkpoints on every rank.

use ndarray::{Array3, Ix3};
use spmd::array::{DistArray, Split};
use spmd::ErrorKind;

use crate::support::{expect_same_error, init, report_ok};

const SHAPE: (usize, usize, usize) = (7, 5, 3);

fn value(i: usize, j: usize, k: usize, offset: f64) -> f64 {
    (i * 100 + j * 10 + k) as f64 + 0.125 + offset
}

/// `CKPT_MODE`: save, load, save_then_load, crash (a save that dies before committing),
/// corrupt (loading must fail on every rank). `CKPT_OFFSET` shifts the saved values.
pub fn run() {
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
        a.save(&dir).expect("save");
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
