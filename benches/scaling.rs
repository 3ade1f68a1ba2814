//! Criterion scaling benchmarks under `mpirun`, through [`spmd::bench::MpiBencher`]:
//! - **thread scaling** (one rank, `--bind-to none`): `DistArray` sum, dot, map and a 2-D
//!   stencil sweep at 1, 2, … rayon threads, up to the cores;
//! - **rank scaling** (`mpirun -n 1, 2, …` up to the cores, one thread per rank): the same
//!   kernels with their communication, strong (fixed global size) and weak (size per rank
//!   fixed), and the collectives and halo exchange;
//! - **overhead** (2 ranks and more): each helper against the raw rsmpi call, agreement checks
//!   on and off.
//!
//! ```text
//! cargo bench --bench scaling                # all of it (relaunches itself under mpirun)
//! scripts/bench                              # all benchmarks, then the README tables and plots
//! ```
//!
//! Results land in `target/criterion/{threads,strong,weak,collectives}/<kernel>/<n>/`;
//! `spmd-bench-report` turns them into speedup and efficiency.

use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;
use ndarray::{s, Ix1, Ix2};
use rayon::prelude::*;
use spmd::array::{Boundary, DistArray, Split};
use spmd::bench::MpiBencher;
use spmd::{Op, Partition, Spmd};

const MODE_ENV: &str = "SPMD_BENCH_MODE";
/// Elements of the 1-D kernels (strong scaling: global; weak: per rank).
const N: usize = 1 << 24;
/// Side of the 2-D stencil grid (strong: global).
const SIDE: usize = 2048;

const CORES_ENV: &str = "SPMD_BENCH_CORES";

/// The machine's cores: counted by the launcher (a rank bound to one core sees only that one).
fn cores() -> usize {
    std::env::var(CORES_ENV)
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

fn main() {
    match std::env::var(MODE_ENV).as_deref() {
        Ok("threads") => threads(),
        Ok("ranks") => ranks(),
        _ => launch_all(),
    }
}

/// `cargo bench` starts one process: start every measurement under mpirun.
fn launch_all() {
    let exe = std::env::current_exe().expect("current exe");
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut runs: Vec<(usize, &str)> = vec![(1, "threads")];
    runs.extend((1..=cores()).map(|p| (p, "ranks")));
    for (p, mode) in runs {
        let mut cmd = std::process::Command::new("mpirun");
        cmd.args(["-n", &p.to_string()]);
        if mode == "threads" {
            cmd.args(["--bind-to", "none"]);
        }
        let status = cmd
            .arg(&exe)
            .args(&args)
            .env(MODE_ENV, mode)
            .env(CORES_ENV, cores().to_string())
            .env(
                "SPMD_NUM_THREADS",
                if mode == "threads" { cores() } else { 1 }.to_string(),
            )
            .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
            .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
            .env("OMPI_MCA_rmaps_base_oversubscribe", "1")
            .status()
            .expect("failed to start mpirun (run scripts/setup)");
        if !status.success() {
            std::process::exit(status.code().unwrap_or(1));
        }
    }
}

fn criterion() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args()
}

/// One Jacobi sweep of the interior of a padded block into `out`, rows in parallel.
fn sweep(padded: ndarray::ArrayView2<'_, f64>, mut out: ndarray::ArrayViewMut2<'_, f64>) {
    let m = padded.ncols();
    out.axis_iter_mut(ndarray::Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(r, mut row)| {
            let (up, here, down) = (padded.row(r), padded.row(r + 1), padded.row(r + 2));
            for j in 1..m - 1 {
                row[j] = (up[j] + down[j] + here[j - 1] + here[j + 1]) * 0.25;
            }
        });
}

/// Lends an array to a benchmark's own rayon pool. `DistArray` is neither `Send` nor `Sync`
/// because it holds its communicator, which only the main thread may use.
struct OnPool<'a, A>(&'a A);

// SAFETY: the kernels run through `OnPool` (local_sum, local_dot, map) make no MPI call. `map`
// clones and later drops the communicator's `Rc` handle on a pool thread, but `install` blocks
// the main thread until the closure returns, so no two threads touch that count at once.
unsafe impl<A> Sync for OnPool<'_, A> {}

impl<A> OnPool<'_, A> {
    /// The array (a method, so closures capture the wrapper rather than its field).
    fn get(&self) -> &A {
        self.0
    }
}

fn threads() {
    let spmd = Spmd::init().expect("MPI init");
    let world = spmd.world();
    let x =
        DistArray::<f64, Ix1>::from_fn(world, N, Split::block(0), |i| (i % 1000) as f64).unwrap();
    let y = DistArray::<f64, Ix1>::from_fn(world, N, Split::block(0), |i| (i % 7) as f64).unwrap();
    let grid = DistArray::<f64, Ix2>::from_fn(world, (SIDE, SIDE), Split::block(0), |(i, j)| {
        (i ^ j) as f64
    })
    .unwrap()
    .with_ghosts(1, Boundary::Fixed)
    .unwrap();
    let mut next = grid.clone();
    let pools: Vec<(usize, rayon::ThreadPool)> = (1..=cores())
        .map(|t| {
            (
                t,
                rayon::ThreadPoolBuilder::new()
                    .num_threads(t)
                    .build()
                    .unwrap(),
            )
        })
        .collect();
    let next_cell = std::cell::RefCell::new(&mut next);
    let mut bencher = MpiBencher::new(world);
    let bytes = (N * 8) as u64;
    for (t, pool) in &pools {
        let (x, pool) = (OnPool(&x), pool);
        bencher.add_bytes("threads/sum", format!("{t}"), bytes, move |iters| {
            pool.install(|| {
                (0..iters).for_each(|_| {
                    black_box(x.get().local_sum());
                })
            });
        });
    }
    for (t, pool) in &pools {
        let (x, y, pool) = (OnPool(&x), OnPool(&y), pool);
        bencher.add_bytes("threads/dot", format!("{t}"), 2 * bytes, move |iters| {
            pool.install(|| {
                (0..iters).for_each(|_| {
                    black_box(x.get().local_dot(y.get()).unwrap());
                })
            });
        });
    }
    for (t, pool) in &pools {
        let (x, pool) = (OnPool(&x), pool);
        bencher.add_bytes("threads/map", format!("{t}"), 2 * bytes, move |iters| {
            pool.install(|| {
                (0..iters).for_each(|_| {
                    black_box(x.get().map(|v| 2.0 * v + 1.0));
                })
            });
        });
    }
    for (t, pool) in &pools {
        let (grid, pool, next_cell) = (&grid, pool, &next_cell);
        let padded = grid.local_with_ghosts();
        bencher.add_bytes(
            "threads/stencil",
            format!("{t}"),
            (SIDE * SIDE * 16) as u64,
            move |iters| {
                let mut next = next_cell.borrow_mut();
                let rows = grid.local().nrows();
                let out = next.local_with_ghosts_mut();
                let mut out = out.slice_move(s![1..rows + 1, ..]);
                let padded = padded.view();
                pool.install(|| (0..iters).for_each(|_| sweep(padded.view(), out.view_mut())));
            },
        );
    }
    bencher.run(&mut criterion()).expect("benchmarks");
}

/// Per message size: elements, label, send buffer, `p`-part buffer, one-part buffer.
type Buffers<'a> = (
    usize,
    &'a str,
    Vec<f64>,
    std::cell::RefCell<Vec<f64>>,
    std::cell::RefCell<Vec<f64>>,
);

/// Each helper against the raw rsmpi call it wraps, with agreement checks on and off.
fn overhead(world: &spmd::Comm, p: usize) {
    use mpi::collective::{CommunicatorCollectives, Root, SystemOperation};
    use mpi::topology::Communicator;
    let unchecked = &world.unchecked();
    let me = world.rank();
    // Buffers per size: send, receive, root-side whole.
    let sizes = [(1_usize, "8 B"), (8192, "64 KiB")];
    let buffers: Vec<Buffers<'_>> = sizes
        .iter()
        .map(|&(n, label)| {
            (
                n,
                label,
                vec![me as f64; n],
                std::cell::RefCell::new(vec![0.0; n * p]),
                std::cell::RefCell::new(vec![0.0; n]),
            )
        })
        .collect();
    let mut bencher = MpiBencher::new(world);
    for (n, label, send, many, one) in &buffers {
        let n = *n;
        let group = |op: &str| format!("overhead/{op} {label}");
        for (variant, comm) in [("raw", world), ("helper", world), ("unchecked", unchecked)] {
            let id = format!("{p} {variant}");
            let raw = variant == "raw";
            bencher.add(group("all_reduce_into"), id.clone(), move |iters| {
                let mut out = one.borrow_mut();
                for _ in 0..iters {
                    if raw {
                        comm.raw()
                            .all_reduce_into(&send[..], &mut out[..], SystemOperation::sum());
                    } else {
                        comm.all_reduce_into(send, &mut out, Op::Sum).unwrap();
                    }
                }
            });
            bencher.add(group("broadcast_into"), id.clone(), move |iters| {
                let mut out = one.borrow_mut();
                for _ in 0..iters {
                    if raw {
                        comm.raw().process_at_rank(0).broadcast_into(&mut out[..]);
                    } else {
                        comm.broadcast(0, &mut out[..]).unwrap();
                    }
                }
            });
            bencher.add(group("all_gather_into"), id.clone(), move |iters| {
                let mut out = many.borrow_mut();
                for _ in 0..iters {
                    if raw {
                        comm.raw().all_gather_into(&send[..], &mut out[..]);
                    } else {
                        comm.all_gather_into(send, &mut out).unwrap();
                    }
                }
            });
            bencher.add(group("scatter_into"), id.clone(), move |iters| {
                let (all, mut out) = (many.borrow(), one.borrow_mut());
                let source = if me == 0 { &all[..n * p] } else { &all[..0] };
                for _ in 0..iters {
                    if raw {
                        let root = comm.raw().process_at_rank(0);
                        if me == 0 {
                            root.scatter_into_root(source, &mut out[..]);
                        } else {
                            root.scatter_into(&mut out[..]);
                        }
                    } else {
                        comm.scatter_into(0, source, &mut out).unwrap();
                    }
                }
            });
        }
    }
    let mut criterion = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .configure_from_args();
    bencher.run(&mut criterion).expect("overhead benchmarks");
}

fn ranks() {
    let spmd = Spmd::init().expect("MPI init");
    let world = spmd.world();
    let p = world.size();
    let label = if p > cores() {
        format!("{p} (oversubscribed)")
    } else {
        format!("{p}")
    };
    // Strong: fixed global size. Weak: N per rank.
    let strong_x =
        DistArray::<f64, Ix1>::from_fn(world, N, Split::block(0), |i| (i % 1000) as f64).unwrap();
    let strong_y =
        DistArray::<f64, Ix1>::from_fn(world, N, Split::block(0), |i| (i % 7) as f64).unwrap();
    let weak_x =
        DistArray::<f64, Ix1>::from_fn(world, N * p, Split::block(0), |i| (i % 1000) as f64)
            .unwrap();
    let weak_y =
        DistArray::<f64, Ix1>::from_fn(world, N * p, Split::block(0), |i| (i % 7) as f64).unwrap();
    let mut grid =
        DistArray::<f64, Ix2>::from_fn(world, (SIDE, SIDE), Split::block(0), |(i, j)| {
            (i ^ j) as f64
        })
        .unwrap()
        .with_ghosts(1, Boundary::Fixed)
        .unwrap();
    let mut next = grid.clone();
    let halo_cell = std::cell::RefCell::new(grid.clone());
    let cells = std::cell::RefCell::new((&mut grid, &mut next));
    let mut bencher = MpiBencher::new(world);
    for (kind, x, y) in [("strong", &strong_x, &strong_y), ("weak", &weak_x, &weak_y)] {
        bencher.add(format!("{kind}/sum"), label.clone(), move |iters| {
            (0..iters).for_each(|_| {
                black_box(x.sum().unwrap());
            });
        });
        bencher.add(format!("{kind}/dot"), label.clone(), move |iters| {
            (0..iters).for_each(|_| {
                black_box(x.dot(y).unwrap());
            });
        });
        bencher.add(format!("{kind}/map"), label.clone(), move |iters| {
            (0..iters).for_each(|_| {
                black_box(x.map(|v| 2.0 * v + 1.0));
            });
        });
    }
    bencher.add("strong/stencil", label.clone(), |iters| {
        let mut cells = cells.borrow_mut();
        let (grid, next) = &mut *cells;
        let rows = grid.local().nrows();
        for _ in 0..iters {
            grid.exchange_halos().unwrap();
            let out = next.local_with_ghosts_mut().slice_move(s![1..rows + 1, ..]);
            sweep(grid.local_with_ghosts(), out);
        }
    });
    bencher.add(
        "collectives/exchange_halos 2048x2048",
        label.clone(),
        move |iters| {
            let mut g = halo_cell.borrow_mut();
            (0..iters).for_each(|_| g.exchange_halos().unwrap());
        },
    );
    let small = vec![1.0_f64; 128];
    let mut small_out = vec![0.0; 128];
    bencher.add(
        "collectives/all_reduce 1 KiB",
        label.clone(),
        move |iters| {
            (0..iters).for_each(|_| {
                world
                    .all_reduce_into(&small, &mut small_out, Op::Sum)
                    .unwrap()
            });
        },
    );
    let part = vec![2.0_f64; 8192];
    bencher.add(
        "collectives/all_gather 64 KiB",
        label.clone(),
        move |iters| {
            (0..iters).for_each(|_| {
                black_box(world.all_gather(&part).unwrap());
            });
        },
    );
    let mut buffer = vec![3.0_f64; 8192];
    bencher.add(
        "collectives/broadcast 64 KiB",
        label.clone(),
        move |iters| {
            (0..iters).for_each(|_| world.broadcast(0, &mut buffer[..]).unwrap());
        },
    );
    let partition = Partition::block(1 << 17, p).unwrap();
    let whole = vec![4.0_f64; if world.rank() == 0 { 1 << 17 } else { 0 }];
    bencher.add(
        "collectives/scatter_partitioned 1 MiB",
        label.clone(),
        move |iters| {
            (0..iters).for_each(|_| {
                black_box(world.scatter_partitioned(0, &whole, &partition).unwrap());
            });
        },
    );
    bencher.run(&mut criterion()).expect("benchmarks");
    if p > 1 {
        overhead(world, p);
    }
}
