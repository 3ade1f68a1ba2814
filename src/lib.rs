//! # spmd — one program, many processes, every core
//!
//! `spmd` runs a single Rust program as many MPI processes (*ranks*, started by `mpirun`) with
//! a rayon thread pool inside each, and gives it the pieces scientific codes need without MPI
//! plumbing: a runtime context, partitions of index ranges over ranks, and typed collectives
//! that check their arguments on every rank instead of hanging.
//!
//! | module | what it holds |
//! |---|---|
//! | [`runtime`] | [`Spmd`]: MPI init with a thread level, rank/size/root, rayon pool sized to the rank's cores, panic → abort of the whole job |
//! | [`comm`] | [`Comm`]: a communicator (world or a split) |
//! | [`collective`] | typed reduce/all_reduce/broadcast/gather/scatter, equal and uneven counts, on [`Comm`] |
//! | [`partition`] | [`Partition`]: `Block`, `Cyclic`, `BlockCyclic` index math, no MPI |
//! | [`timing`] | [`Profiler`](timing::Profiler) regions (compute vs comm, collectives timed automatically), cross-rank [`Report`](timing::Report) with speedup and efficiency, scaling model |
//! | `bench` | `MpiBencher`: criterion benchmarks under `mpirun`, rank 0 leading (feature `bench`) |
//! | [`exact`] | [`ExactSum`](exact::ExactSum): reproducible, correctly rounded sums and dot products, bit-identical for any ranks and threads |
//! | [`error`] | [`Error`], [`ErrorKind`], [`Result`] |
//!
//! ## Quick start
//! ```no_run
//! use rayon::prelude::*;
//! use spmd::{Op, Partition, Spmd};
//!
//! fn main() -> spmd::Result<()> {
//!     let spmd = Spmd::init()?;
//!     let world = spmd.world();
//!     // Sum of squares of 0..n, split over ranks, rayon threads inside each rank.
//!     let n = 1_000_000;
//!     let part = Partition::block(n, world.size())?;
//!     let local: f64 = part
//!         .par_global_indices(world.rank()) // rayon threads inside this rank
//!         .map(|i| (i as f64) * (i as f64))
//!         .sum();
//!     let total = world.all_reduce(local, Op::Sum);
//!     if spmd.is_root() {
//!         println!("{} ranks x {} threads: {total}", spmd.size(), spmd.threads());
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
pub mod par;
pub mod partition;
pub mod runtime;
pub mod timing;

pub use collective::{Number, Op, Varcount};
pub use comm::Comm;
pub use error::{Error, ErrorKind, Result};
pub use mpi;
pub use par::Par;
pub use partition::{Distribution, Partition};
pub use runtime::{Spmd, SpmdBuilder, Threading};

/// Traits to glob-import: `use spmd::prelude::*;`.
pub mod prelude {
    pub use crate::collective::Number;
    pub use mpi::traits::Equivalence;
}
