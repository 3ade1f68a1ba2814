//! # spmd — one program, many processes, every core
//!
//! `spmd` runs a single Rust program as many MPI processes (*ranks*, started by `mpirun`) with
//! a rayon thread pool inside each, and gives it the pieces scientific codes need without MPI
//! plumbing: a runtime context, partitions of index ranges over ranks, and typed collectives
//! that check their arguments on every rank instead of hanging.
//!
//! | module | what it holds |
//! |---|---|
//! | [`runtime`] | [`Spmd`]: MPI init with a thread level, rank/size/root, rayon pool sized to the rank's cores, panic → abort of the whole job, sequential baselines and the cross-rank report |
//! | [`comm`] | [`Comm`]: a cheap handle on a communicator (world, split, duplicate) with agreement checks and a default [`Par`]; typed point-to-point messages and the [`Request`](comm::Request)s of non-blocking operations; the [watchdog](comm::watchdog) |
//! | [`collective`] | typed reduce/all_reduce/broadcast/gather/scatter/all_to_all on [`Comm`], equal and uneven counts ([`Varcount`]), checked on every rank; immediate (non-blocking) forms and persistent [`AllReducePlan`](collective::AllReducePlan)s |
//! | [`array`](mod@array) | [`DistArray`](array::DistArray): N-d arrays split over ranks along one axis or a process grid, halos, scatter/gather, redistribution, reductions, checkpoints |
//! | [`sparse`] | [`DistCsrMatrix`](sparse::DistCsrMatrix): distributed CSR matrices assembled from triplets any rank contributes, diagonal and off-diagonal blocks with compressed ghost columns, a product that exchanges only ghost entries behind the interior rows |
//! | [`krylov`] | CG (plain and pipelined), BiCGStab and restarted GMRES on any [`Operator`](krylov::Operator), Jacobi and block-Jacobi ILU(0) preconditioners, a reproducible mode bit-identical at any rank count |
//! | [`farm`] | [`Farm`](farm::Farm): a task farm (manager/worker) with dynamic load balancing, prefetch, chunking, a manager that works too and never spins, failures collected or ending the run on every rank |
//! | [`pipeline`] | [`Pipeline`](pipeline::Pipeline): stages on groups of ranks streaming typed items, with credit-based backpressure, fan-out/fan-in, keyed routing and the limiting stage in the report |
//! | [`partition`] | [`Partition`]: `Block`, `Cyclic`, `BlockCyclic` index math, no MPI |
//! | [`par`] | [`Par`]: run a kernel on the rank's rayon threads or serially |
//! | [`exact`] | [`ExactSum`](exact::ExactSum): reproducible, correctly rounded sums and dot products, bit-identical for any ranks and threads |
//! | [`timing`] | [`Profiler`](timing::Profiler) regions (compute vs comm, collectives timed automatically), cross-rank [`Report`](timing::Report) with speedup and efficiency (table, JSON, CSV, one-page HTML), the communication matrix, timeline traces (`SPMD_TRACE=trace.json`, see [`runtime::trace`]) for Perfetto UI, scaling model |
//! | `bench` | `MpiBencher`: criterion benchmarks under `mpirun`, rank 0 leading (feature `bench`) |
//! | [`error`] | [`Error`], [`ErrorKind`], [`Result`]; the table of bad inputs and what every rank gets |
//! | [`guide`] | longer guides: [spmd for mpi4py users](guide::mpi4py) |
//!
//! ## Quick start
//! ```no_run
//! use rayon::prelude::*;
//! use spmd::array::{DistArray, Split};
//! use spmd::{Op, Partition, Spmd};
//!
//! fn main() -> spmd::Result<()> {
//!     let spmd = Spmd::init()?; // MPI + a rayon pool sized to this rank's cores
//!     let world = spmd.world();
//!
//!     // Index ranges: Σ 1/i² over 10^7 terms, split over ranks, rayon threads inside each rank.
//!     let terms = Partition::block(10_000_000, world.size())?;
//!     let local: f64 = terms
//!         .par_global_indices(world.rank())
//!         .map(|i| 1.0 / ((i + 1) as f64).powi(2))
//!         .sum();
//!     let pi = (6.0 * world.all_reduce(local, Op::Sum)).sqrt(); // one MPI_Allreduce
//!
//!     // Arrays: x[i] = i in blocks over the ranks; the array keeps its communicator.
//!     let x = DistArray::from_fn(world, 1_000_000, Split::block(0), |i| i as f64)?;
//!     let y = x.map(|v| 2.0 * v);
//!     let (sum, dot) = (x.sum()?, x.dot(&y)?); // local rayon reductions + one all_reduce each
//!
//!     if let Some(report) = spmd.report("quick start")? {
//!         // rank 0: compute vs comm per rank, regions, imbalance
//!         println!("pi ~ {pi:.6}, sum {sum}, dot {dot}\n{report}");
//!     }
//!     Ok(())
//! }
//! ```
//! Run it with `mpirun -n 4 target/release/my_program`, or without `mpirun` as one rank.
//!
//! ## Threads and MPI
//! MPI is initialised at the *funneled* level by default: rayon threads compute, the main
//! thread communicates. [`Comm`] is neither `Send` nor `Sync`, so a collective cannot be
//! called from inside a rayon closure by mistake.
#![deny(missing_docs)]

pub mod array;
#[cfg(feature = "bench")]
pub mod bench;
pub mod collective;
pub mod comm;
pub mod error;
pub mod exact;
pub mod farm;
pub mod krylov;
pub mod par;
pub mod partition;
pub mod pipeline;
pub mod runtime;
pub mod sparse;
pub mod timing;

pub use collective::{Number, Op, Varcount};
pub use comm::Comm;
pub use error::{Error, ErrorKind, Result};
pub use mpi;
pub use par::Par;
pub use partition::{Distribution, Partition};
pub use runtime::{Spmd, SpmdBuilder, Threading};

#[cfg(test)]
mod fuzz_tests;

/// Guides: longer reading than the module docs.
pub mod guide {
    #[doc = include_str!("../docs/mpi4py.md")]
    pub mod mpi4py {}
}

/// The README's examples, compiled as doc tests so the front page cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// Traits to glob-import: `use spmd::prelude::*;`.
pub mod prelude {
    pub use crate::collective::Number;
    pub use mpi::traits::Equivalence;
}
