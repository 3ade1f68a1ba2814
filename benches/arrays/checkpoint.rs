//! `save` and `load` of a 1 GiB array against the bare file I/O they contain: each rank writes
//! (reads) its piece as one `.npy` file through a 1 MiB buffer, without manifest or commit,
//! once without and once with a CRC-32 computed as `save`/`load` compute it (in 256 KiB
//! chunks as the bytes pass). Interleaved rounds, in `/dev/shm` unless
//! `SPMD_BENCH_CHECKPOINT_DIR` names another directory: in memory the checksum's share is
//! largest (a disk makes the I/O slower and the share smaller), and no disk writeback
//! throttles one variant and not another.

use std::cell::Cell;
use std::hint::black_box;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use mpi::traits::CommunicatorCollectives;
use ndarray::{Array1, Ix1};
use ndarray_npy::{ReadNpyExt, WriteNpyExt};
use spmd::array::{DistArray, Split};
use spmd::Spmd;

use super::{median, timed_once};

/// The chunk the library's checksumming reader and writer move per call.
const CHUNK: usize = 256 << 10;

/// A writer or reader keeping the CRC-32 of what passes, chunk by chunk.
struct Crc<I> {
    inner: I,
    crc: crc32fast::Hasher,
}

impl<W: Write> Write for Crc<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(&buf[..buf.len().min(CHUNK)])?;
        self.crc.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<R: Read> Read for Crc<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let len = buf.len().min(CHUNK);
        let n = self.inner.read(&mut buf[..len])?;
        self.crc.update(&buf[..n]);
        Ok(n)
    }
}

fn checkpoint_dir(id: u64) -> PathBuf {
    let base = std::env::var_os("SPMD_BENCH_CHECKPOINT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let shm = Path::new("/dev/shm");
            if shm.is_dir() {
                shm.to_path_buf()
            } else {
                std::env::temp_dir()
            }
        });
    base.join(format!("spmd-bench-checkpoint-{id}"))
}

/// One timed operation.
type Operation<'a> = Box<dyn FnMut() + 'a>;

/// Runs the comparison and prints its table on the root.
pub fn cost(spmd: &Spmd) {
    let world = spmd.world();
    let n: usize = 1 << 27; // 1 GiB of f64
    let x = DistArray::from_fn(world, n, Split::block(0), |i| (i as f64).sqrt()).unwrap();
    // One directory for the job, named after the root's process id.
    let mut id = u64::from(std::process::id());
    world.broadcast(0, &mut id).unwrap();
    let dir = checkpoint_dir(id);
    if spmd.is_root() {
        std::fs::create_dir_all(&dir).unwrap();
    }
    world.raw().barrier();
    // Like `save`, a bare write goes to a new file, then the root removes the previous files
    // (save's root removes the previous version).
    let round = Cell::new(0_usize);
    let file = |rank: usize, round: usize| dir.join(format!("bare-{rank}-{round}.npy"));
    let write = |with_crc: bool| {
        round.set(round.get() + 1);
        let created = std::fs::File::create(file(world.rank(), round.get())).unwrap();
        let crc = crc32fast::Hasher::new();
        if with_crc {
            let mut out = BufWriter::with_capacity(
                1 << 20,
                Crc {
                    inner: created,
                    crc,
                },
            );
            x.local().write_npy(&mut out).unwrap();
            black_box(out.into_inner().ok().unwrap().crc.finalize());
        } else {
            let mut out = BufWriter::with_capacity(1 << 20, created);
            x.local().write_npy(&mut out).unwrap();
            out.flush().unwrap();
        }
        world.raw().barrier();
        if world.rank() == 0 {
            for rank in 0..world.size() {
                let _ = std::fs::remove_file(file(rank, round.get() - 1));
            }
        }
    };
    let read = |with_crc: bool| {
        let opened = std::fs::File::open(file(world.rank(), round.get())).unwrap();
        if with_crc {
            let crc = crc32fast::Hasher::new();
            let mut input = BufReader::with_capacity(1 << 20, Crc { inner: opened, crc });
            black_box(Array1::<f64>::read_npy(&mut input).unwrap());
            black_box(input.into_inner().crc.finalize());
        } else {
            let input = BufReader::with_capacity(1 << 20, opened);
            black_box(Array1::<f64>::read_npy(input).unwrap());
        }
    };
    let checkpoint = dir.join("checkpoint");
    let mut variants: [(&str, Operation<'_>); 6] = [
        ("bare write_npy of each piece", Box::new(|| write(false))),
        ("the same + CRC-32", Box::new(|| write(true))),
        (
            "`DistArray::save` (CRC-32, manifest, commit)",
            Box::new(|| x.save(&checkpoint).unwrap()),
        ),
        ("bare read_npy of each piece", Box::new(|| read(false))),
        ("the same + CRC-32 check", Box::new(|| read(true))),
        (
            "`DistArray::load` (root inspection, CRC-32 check)",
            Box::new(|| {
                let y = DistArray::<f64, Ix1>::load(world, &checkpoint, Split::block(0));
                black_box(y.unwrap());
            }),
        ),
    ];
    let rounds = 21;
    let mut seconds = [(); 6].map(|()| Vec::new());
    let mut ratios = [(); 6].map(|()| Vec::new());
    for _ in 0..rounds {
        let times: Vec<f64> = variants
            .iter_mut()
            .map(|(_, f)| timed_once(world, f.as_mut()))
            .collect();
        for (k, &t) in times.iter().enumerate() {
            seconds[k].push(t);
            // Each variant against the bare I/O of its direction (the first of its three).
            ratios[k].push(t / times[k / 3 * 3]);
        }
    }
    world.raw().barrier();
    if spmd.is_root() {
        let _ = std::fs::remove_dir_all(&dir);
        println!(
            "\ncheckpoint of a 1 GiB f64 array, {} ranks, median of {rounds} interleaved rounds (slowest rank; ratio = median of per-round ratios), files in {}\n",
            world.size(),
            dir.parent().unwrap_or(&dir).display()
        );
        println!("| operation | s | GB/s (whole array) | vs bare .npy I/O |");
        println!("|---|---:|---:|---:|");
        for (k, (name, _)) in variants.iter().enumerate() {
            let s = median(&mut seconds[k]);
            let r = median(&mut ratios[k]);
            let gbs = (n * 8) as f64 / s / 1e9;
            println!("| {name} | {s:.3} | {gbs:.2} | {r:.3} |");
        }
    }
}
