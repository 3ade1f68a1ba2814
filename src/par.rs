//! [`Par`]: whether a kernel runs on the rank's rayon threads or serially.

/// Whether local kernels use the rank's rayon pool or run on the calling thread only.
///
/// Every [`Comm`](crate::Comm) carries a default (see [`Comm::with_par`](crate::Comm::with_par)),
/// which arrays made on it inherit; an array can override it with
/// [`DistArray::with_par`](crate::array::DistArray::with_par). The communicator that
/// [`Spmd::baseline_with_comm`](crate::Spmd::baseline_with_comm) hands out defaults to
/// [`Par::Seq`], so a sequential baseline written with the library's types runs on one core.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Par {
    /// On the calling thread only.
    Seq,
    /// Split over the rank's rayon threads.
    #[default]
    Rayon,
}

impl Par {
    /// What a kernel should actually do: `Seq` for [`Par::Rayon`] when the current rayon
    /// pool has a single thread (a parallel loop there only hands the work to the pool's
    /// thread, which shares the caller's core and spins between loops: measurably slower
    /// than running inline), else `self`.
    pub fn effective(self) -> Par {
        match self {
            Par::Rayon if rayon::current_num_threads() <= 1 => Par::Seq,
            other => other,
        }
    }
}
