//! Criterion benchmarks of SPMD code under `mpirun`: rank 0 runs criterion and leads, the
//! other ranks follow (feature `bench`, on by default).
//!
//! Criterion chooses iteration counts adaptively in one process; under `mpirun` every rank
//! would choose differently and the collectives inside the benchmarked code would deadlock.
//! Here only rank 0 runs criterion. Before every sample it broadcasts which kernel to run and
//! how many iterations; every rank runs exactly that after a barrier, times it, and the time
//! criterion records is the **maximum over ranks** (one reduction per sample): an SPMD step
//! takes as long as its slowest rank. When rank 0 is done it broadcasts the end, and the
//! followers return.
//!
//! ```no_run
//! use criterion::Criterion;
//! use spmd::bench::MpiBencher;
//! use spmd::{Op, Spmd};
//!
//! fn main() -> spmd::Result<()> {
//!     let spmd = Spmd::init()?;
//!     let world = spmd.world();
//!     let data = vec![1.0_f64; 1 << 20];
//!     let mut bencher = MpiBencher::new(world);
//!     bencher.add("reductions", "local sum + all_reduce", move |iters| {
//!         for _ in 0..iters {
//!             let local: f64 = data.iter().sum();
//!             std::hint::black_box(world.all_reduce(local, Op::Sum));
//!         }
//!     });
//!     let mut criterion = Criterion::default().configure_from_args();
//!     bencher.run(&mut criterion)?; // every rank calls it; rank 0 prints criterion's report
//!     Ok(())
//! }
//! ```
//! Run it with `mpirun -n 2 target/release/deps/my_bench-… --bench`. A panic on any rank
//! ends the whole job with its message (see [`crate::runtime`]); ranks that registered
//! different kernels get a `Disagreement` error before anything runs.

use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{Criterion, Throughput};
use mpi::collective::{CommunicatorCollectives, Root, SystemOperation};
use mpi::topology::Communicator;

use crate::collective::{fingerprint, Field, Preflight};
use crate::comm::Comm;
use crate::error::Result;
use crate::timing::Spread;

/// The command that ends the followers' loop.
const STOP: u64 = u64::MAX;

/// One registered kernel.
struct Kernel<'c> {
    group: String,
    id: String,
    bytes: Option<u64>,
    run: Box<dyn FnMut(u64) + 'c>,
    iterations: u64,
    seconds: f64,
    /// Seconds per iteration of every sample (the slowest rank's; rank 0 only).
    per_iteration: Vec<f64>,
}

/// What one kernel cost, as [`MpiBencher::run`] returns it.
#[derive(Clone, Debug, PartialEq)]
pub struct Measured {
    /// The criterion group.
    pub group: String,
    /// The benchmark's name in the group.
    pub id: String,
    /// Iterations this rank ran (the same on every rank).
    pub iterations: u64,
    /// Sum over samples of the slowest rank's time (meaningful on rank 0; 0 elsewhere).
    pub seconds: f64,
    /// The time per iteration over criterion's samples (warm-up included), summarised as the
    /// timing report summarises repetitions: median, range and the interval of the median.
    /// `Some` on rank 0.
    pub per_iteration_s: Option<Spread>,
}

/// Registers SPMD kernels and runs them as criterion benchmarks on every rank; see the
/// [module docs](self).
pub struct MpiBencher<'c> {
    comm: &'c Comm,
    kernels: Vec<Kernel<'c>>,
}

impl<'c> MpiBencher<'c> {
    /// A bencher whose kernels run on the ranks of `comm`.
    pub fn new(comm: &'c Comm) -> MpiBencher<'c> {
        MpiBencher {
            comm,
            kernels: Vec::new(),
        }
    }

    /// Registers `run`, which must perform `iters` iterations of the kernel, as benchmark `id`
    /// of criterion group `group`. Every rank must register the same kernels in the same order.
    pub fn add(
        &mut self,
        group: impl Into<String>,
        id: impl Into<String>,
        run: impl FnMut(u64) + 'c,
    ) -> &mut Self {
        self.kernels.push(Kernel {
            group: group.into(),
            id: id.into(),
            bytes: None,
            run: Box::new(run),
            iterations: 0,
            seconds: 0.0,
            per_iteration: Vec::new(),
        });
        self
    }

    /// [`add`](Self::add) with the bytes one iteration processes, so criterion reports
    /// throughput.
    pub fn add_bytes(
        &mut self,
        group: impl Into<String>,
        id: impl Into<String>,
        bytes: u64,
        run: impl FnMut(u64) + 'c,
    ) -> &mut Self {
        self.add(group, id, run);
        if let Some(last) = self.kernels.last_mut() {
            last.bytes = Some(bytes);
        }
        self
    }

    /// Runs every kernel: criterion on rank 0 (with `criterion`'s configuration), the
    /// others following. Collective. Returns, per kernel, the iterations this rank ran and
    /// (on rank 0) the summed maximum-over-ranks time.
    ///
    /// # Errors
    /// `Disagreement` if ranks registered different kernels (names or number).
    pub fn run(mut self, criterion: &mut Criterion<WallTime>) -> Result<Vec<Measured>> {
        let names: Vec<String> = self
            .kernels
            .iter()
            .map(|k| format!("{}/{}", k.group, k.id))
            .collect();
        let shown = names.join(", ");
        self.comm.preflight(Preflight {
            op: "MpiBencher::run",
            element: None,
            local_error: None,
            agree: &[
                Field::number("the number of kernels", &self.kernels.len()),
                Field::keyed(
                    "the kernels' names",
                    fingerprint(names.iter().flat_map(|n| n.bytes().chain([0]))),
                    &shown,
                ),
            ],
        })?;
        if self.comm.rank() == 0 {
            self.lead(criterion);
        } else {
            self.follow();
        }
        Ok(self
            .kernels
            .into_iter()
            .map(|k| Measured {
                per_iteration_s: (!k.per_iteration.is_empty())
                    .then(|| Spread::of(k.per_iteration.iter().copied())),
                group: k.group,
                id: k.id,
                iterations: k.iterations,
                seconds: k.seconds,
            })
            .collect())
    }

    fn lead(&mut self, criterion: &mut Criterion<WallTime>) {
        let comm = self.comm;
        let mut start = 0;
        while start < self.kernels.len() {
            // Consecutive kernels of the same group form one criterion group.
            let name = self.kernels[start].group.clone();
            let end = (start..self.kernels.len())
                .find(|&i| self.kernels[i].group != name)
                .unwrap_or(self.kernels.len());
            let mut group = criterion.benchmark_group(name);
            for (index, kernel) in self.kernels[start..end].iter_mut().enumerate() {
                if let Some(bytes) = kernel.bytes {
                    group.throughput(Throughput::Bytes(bytes));
                }
                let id = kernel.id.clone();
                group.bench_function(id, |b| {
                    b.iter_custom(|iters| {
                        command(comm, &mut [(start + index) as u64, iters]);
                        sample(comm, kernel, iters)
                    })
                });
            }
            group.finish();
            start = end;
        }
        command(comm, &mut [STOP, 0]);
    }

    fn follow(&mut self) {
        loop {
            let mut next = [0_u64; 2];
            command(self.comm, &mut next);
            let [index, iters] = next;
            if index == STOP {
                return;
            }
            let count = self.kernels.len();
            let kernel = self.kernels.get_mut(index as usize).unwrap_or_else(|| {
                panic!("MpiBencher: rank 0 asked for kernel {index}, but this rank has {count}")
            });
            sample(self.comm, kernel, iters);
        }
    }
}

/// Rank 0's broadcast of `[kernel, iterations]`.
fn command(comm: &Comm, message: &mut [u64; 2]) {
    comm.raw()
        .process_at_rank(0)
        .broadcast_into(&mut message[..]);
}

/// Every rank runs `iters` iterations after a barrier; returns the slowest rank's time.
fn sample(comm: &Comm, kernel: &mut Kernel<'_>, iters: u64) -> Duration {
    comm.raw().barrier();
    let start = Instant::now();
    (kernel.run)(iters);
    let mine = start.elapsed().as_secs_f64();
    let mut slowest = 0.0_f64;
    comm.raw()
        .all_reduce_into(&mine, &mut slowest, SystemOperation::max());
    kernel.iterations += iters;
    if comm.rank() == 0 {
        kernel.seconds += slowest;
        kernel.per_iteration.push(slowest / iters.max(1) as f64);
    }
    Duration::from_secs_f64(slowest)
}
