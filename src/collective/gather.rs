//! Gathers to one root or to all ranks, with equal or uneven counts.

use mpi::collective::{CommunicatorCollectives, Root};
use mpi::datatype::{Equivalence, PartitionMut};
use mpi::topology::Communicator;

use super::check::{as_field, Preflight};
use super::{buffer_size_error, check_root, counts_and_displacements, mpi_count};
use crate::comm::Comm;
use crate::error::{Error, ErrorKind, Result};
use crate::partition::{Distribution, Partition};
use std::mem::{size_of, size_of_val};

impl Comm {
    /// Collects `send` from every rank (all the same length) at `root`, in rank order:
    /// `Some(all)` on the root, `None` elsewhere.
    ///
    /// Communication: agreement check + one `MPI_Gather`.
    ///
    /// # Errors
    /// `InvalidRoot`; `Disagreement` if ranks pass different roots or lengths (use
    /// [`gather_varcount`](Self::gather_varcount) for uneven lengths); `CountOverflow`.
    pub fn gather<T>(&self, root: usize, send: &[T]) -> Result<Option<Vec<T>>>
    where
        T: Equivalence + Copy + Default,
    {
        let mut recv = vec![T::default(); self.gather_len(send.len(), self.rank() == root)];
        let _timer = self.timed("gather", size_of_val(send) + size_of_val(&recv[..]));
        self.gather_into(root, send, &mut recv)?;
        Ok((self.rank() == root).then_some(recv))
    }

    /// [`gather`](Self::gather) into the caller's buffer, which on the root must hold
    /// `size() * send.len()` elements; other ranks' `recv` is not touched (pass `&mut []`).
    ///
    /// # Errors
    /// As [`gather`](Self::gather), plus `BufferSize` for a root buffer of the wrong length.
    pub fn gather_into<T: Equivalence>(
        &self,
        root: usize,
        send: &[T],
        recv: &mut [T],
    ) -> Result<()> {
        const OP: &str = "gather";
        let _timer = self.timed(
            "gather_into",
            size_of_val(send) + self.root_bytes(root, size_of_val(recv)),
        );
        let local_error = check_root(root, self.size(), OP)
            .or_else(|| mpi_count(send.len(), OP, "the send buffer").err())
            .or_else(|| {
                let expected = send.len() * self.size();
                (self.rank() == root && recv.len() != expected).then(|| {
                    buffer_size_error(OP, "the root's receive buffer", expected, recv.len())
                })
            });
        self.preflight(Preflight {
            op: OP,
            local_error,
            agree: &[
                ("the root", as_field(root)),
                ("the length", as_field(send.len())),
            ],
        })?;
        let root_process = self.raw().process_at_rank(root as i32);
        if self.rank() == root {
            root_process.gather_into_root(send, recv);
        } else {
            root_process.gather_into(send);
        }
        Ok(())
    }

    /// Collects `send` from every rank (all the same length) on every rank, in rank order.
    ///
    /// Communication: agreement check + one `MPI_Allgather`.
    ///
    /// # Errors
    /// `Disagreement` if ranks pass different lengths; `CountOverflow`.
    pub fn all_gather<T>(&self, send: &[T]) -> Result<Vec<T>>
    where
        T: Equivalence + Copy + Default,
    {
        let mut recv = vec![T::default(); self.gather_len(send.len(), true)];
        let _timer = self.timed("all_gather", size_of_val(send) + size_of_val(&recv[..]));
        self.all_gather_into(send, &mut recv)?;
        Ok(recv)
    }

    /// [`all_gather`](Self::all_gather) into the caller's buffer of `size() * send.len()`.
    ///
    /// # Errors
    /// As [`all_gather`](Self::all_gather), plus `BufferSize` for a buffer of the wrong length.
    pub fn all_gather_into<T: Equivalence>(&self, send: &[T], recv: &mut [T]) -> Result<()> {
        const OP: &str = "all_gather";
        let _timer = self.timed("all_gather_into", size_of_val(send) + size_of_val(recv));
        let expected = send.len() * self.size();
        let local_error = mpi_count(send.len(), OP, "the send buffer")
            .err()
            .or_else(|| {
                (recv.len() != expected)
                    .then(|| buffer_size_error(OP, "the receive buffer", expected, recv.len()))
            });
        self.preflight(Preflight {
            op: OP,
            local_error,
            agree: &[("the length", as_field(send.len()))],
        })?;
        self.raw().all_gather_into(send, recv);
        Ok(())
    }

    /// Collects `send` of any length from every rank at `root`, parts one after another in
    /// rank order: `Some((all, counts))` on the root, where `counts[r]` is rank `r`'s length;
    /// `None` elsewhere.
    ///
    /// Communication: one `MPI_Allgather` of 3 integers per rank (counts, roots and argument
    /// errors: this is also the agreement check, so it runs even with checks off) + one
    /// `MPI_Gatherv`.
    ///
    /// # Errors
    /// `InvalidRoot`; `Disagreement` on the root; `CountOverflow` if a count or the total
    /// exceeds `i32::MAX`.
    #[allow(clippy::type_complexity)]
    pub fn gather_varcount<T>(
        &self,
        root: usize,
        send: &[T],
    ) -> Result<Option<(Vec<T>, Vec<usize>)>>
    where
        T: Equivalence + Copy + Default,
    {
        const OP: &str = "gather_varcount";
        let mut timer = self.timed(OP, size_of_val(send));
        let counts = self.exchange_counts(OP, Some(root), send.len())?;
        let gathered = self.gather_counted(root, send, &counts, OP)?;
        if let Some(all) = &gathered {
            timer.add_bytes(size_of_val(&all[..]));
        }
        Ok(gathered.map(|all| (all, counts)))
    }

    /// Collects each rank's part of `partition` at `root`, parts one after another in rank
    /// order (for a `Block` partition that is global order; map other layouts with
    /// [`Partition::to_global`]). `send` must hold `partition.count(rank)` elements.
    ///
    /// Communication: agreement check + one `MPI_Gatherv`; counts come from the partition.
    ///
    /// # Errors
    /// `InvalidRoot`; `InvalidPartition` if the partition is for another number of ranks;
    /// `BufferSize` if `send` is not this rank's part; `Disagreement` if ranks pass different
    /// roots or partitions; `CountOverflow`.
    pub fn gather_varcount_with<T>(
        &self,
        root: usize,
        send: &[T],
        partition: &Partition,
    ) -> Result<Option<Vec<T>>>
    where
        T: Equivalence + Copy + Default,
    {
        const OP: &str = "gather_varcount_with";
        let whole = partition.len().saturating_mul(size_of::<T>());
        let _timer = self.timed(OP, size_of_val(send) + self.root_bytes(root, whole));
        let local_error = check_root(root, self.size(), OP)
            .or_else(|| self.check_partition(OP, partition, send.len()));
        self.preflight(Preflight {
            op: OP,
            local_error,
            agree: &partition_fields(Some(root), partition),
        })?;
        self.gather_counted(root, send, &partition.counts(), OP)
    }

    /// Collects `send` of any length from every rank on every rank, in rank order; returns
    /// the data and each rank's count.
    ///
    /// Communication: one `MPI_Allgather` of 3 integers per rank (counts and the agreement
    /// check) + one `MPI_Allgatherv`.
    ///
    /// # Errors
    /// `CountOverflow` if a count or the total exceeds `i32::MAX`.
    pub fn all_gather_varcount<T>(&self, send: &[T]) -> Result<(Vec<T>, Vec<usize>)>
    where
        T: Equivalence + Copy + Default,
    {
        let mut timer = self.timed("all_gather_varcount", size_of_val(send));
        let mut all = Vec::new();
        let counts = self.all_gather_varcount_into(send, &mut all)?;
        timer.add_bytes(size_of_val(&all[..]));
        Ok((all, counts))
    }

    /// [`all_gather_varcount`](Self::all_gather_varcount) into `recv`, which is resized to
    /// the total; its capacity is reused, so a loop that gathers every step allocates once.
    /// Returns each rank's count.
    ///
    /// # Errors
    /// As [`all_gather_varcount`](Self::all_gather_varcount).
    pub fn all_gather_varcount_into<T>(&self, send: &[T], recv: &mut Vec<T>) -> Result<Vec<usize>>
    where
        T: Equivalence + Copy + Default,
    {
        const OP: &str = "all_gather_varcount";
        let mut timer = self.timed("all_gather_varcount_into", size_of_val(send));
        let counts = self.exchange_counts(OP, None, send.len())?;
        self.all_gather_counted(send, &counts, recv, OP)?;
        timer.add_bytes(size_of_val(&recv[..]));
        Ok(counts)
    }

    /// Collects each rank's part of `partition` on every rank, in rank order.
    ///
    /// Communication: agreement check + one `MPI_Allgatherv`.
    ///
    /// # Errors
    /// As [`gather_varcount_with`](Self::gather_varcount_with), without the root.
    pub fn all_gather_varcount_with<T>(&self, send: &[T], partition: &Partition) -> Result<Vec<T>>
    where
        T: Equivalence + Copy + Default,
    {
        const OP: &str = "all_gather_varcount_with";
        let whole = partition.len().saturating_mul(size_of::<T>());
        let _timer = self.timed(OP, size_of_val(send) + whole);
        self.preflight(Preflight {
            op: OP,
            local_error: self.check_partition(OP, partition, send.len()),
            agree: &partition_fields(None, partition),
        })?;
        let mut all = Vec::new();
        self.all_gather_counted(send, &partition.counts(), &mut all, OP)?;
        Ok(all)
    }

    /// The receive length of an equal-count gather, or 0 when this rank receives nothing or
    /// the count is invalid (validation then reports it before anything is received).
    fn gather_len(&self, send_len: usize, receives: bool) -> usize {
        if receives && mpi_count(send_len, "", "").is_ok() {
            send_len * self.size()
        } else {
            0
        }
    }

    /// `MPI_Gatherv` with counts every rank already agrees on.
    fn gather_counted<T>(
        &self,
        root: usize,
        send: &[T],
        counts: &[usize],
        op: &str,
    ) -> Result<Option<Vec<T>>>
    where
        T: Equivalence + Copy + Default,
    {
        let (mpi_counts, displacements) = counts_and_displacements(counts, op)?;
        let root_process = self.raw().process_at_rank(root as i32);
        if self.rank() != root {
            root_process.gather_varcount_into(send);
            return Ok(None);
        }
        let mut recv = vec![T::default(); counts.iter().sum()];
        let mut parts = PartitionMut::new(&mut recv[..], mpi_counts, displacements);
        root_process.gather_varcount_into_root(send, &mut parts);
        Ok(Some(recv))
    }

    /// `MPI_Allgatherv` with counts every rank already agrees on, into `recv` resized to the
    /// total (its capacity is reused, so repeated calls do not allocate).
    fn all_gather_counted<T>(
        &self,
        send: &[T],
        counts: &[usize],
        recv: &mut Vec<T>,
        op: &str,
    ) -> Result<()>
    where
        T: Equivalence + Copy + Default,
    {
        let (mpi_counts, displacements) = counts_and_displacements(counts, op)?;
        recv.resize(counts.iter().sum(), T::default());
        let mut parts = PartitionMut::new(&mut recv[..], mpi_counts, displacements);
        self.raw().all_gather_varcount_into(send, &mut parts);
        Ok(())
    }

    /// Every rank's `count` on every rank, checking roots and counts on the way.
    ///
    /// One `MPI_Allgather` of `[count, root, error]` per rank; any problem becomes the same
    /// error everywhere (the totals are checked by every rank from the same counts).
    pub(crate) fn exchange_counts(
        &self,
        op: &'static str,
        root: Option<usize>,
        count: usize,
    ) -> Result<Vec<usize>> {
        let local_error = root
            .and_then(|r| check_root(r, self.size(), op))
            .or_else(|| mpi_count(count, op, "this rank's buffer").err());
        let mine = [
            as_field(count),
            root.map_or(-1, as_field),
            self.encode_error(local_error.as_ref()),
        ];
        let mut all = vec![0_i64; 3 * self.size()];
        self.raw().all_gather_into(&mine[..], &mut all[..]);
        let worst = all.chunks(3).map(|row| row[2]).max().unwrap_or(-1);
        if worst >= 0 {
            return Err(self.error_from_encoded(worst, local_error.as_ref()));
        }
        if root.is_some() {
            let (min, max) = all.chunks(3).fold((i64::MAX, i64::MIN), |(lo, hi), row| {
                (lo.min(row[1]), hi.max(row[1]))
            });
            if min != max {
                return Err(Error::new(
                    ErrorKind::Disagreement,
                    format!("{op}: ranks disagree on the root: values range from {min} to {max}, but every rank must pass the same"),
                ));
            }
        }
        let counts: Vec<usize> = all.chunks(3).map(|row| row[0] as usize).collect();
        counts_and_displacements(&counts, op)?;
        Ok(counts)
    }

    /// The error, if any, of a `partition` used on this communicator with a part of `len`.
    pub(crate) fn check_partition(
        &self,
        op: &str,
        partition: &Partition,
        len: usize,
    ) -> Option<Error> {
        if partition.parts() != self.size() {
            return Some(Error::new(
                ErrorKind::InvalidPartition,
                format!(
                    "{op}: the partition is over {} parts, but the communicator has {} ranks",
                    partition.parts(),
                    self.size()
                ),
            ));
        }
        let expected = partition.count(self.rank());
        if len != expected {
            return Some(buffer_size_error(op, "this rank's part", expected, len));
        }
        counts_and_displacements(&partition.counts(), op).err()
    }
}

/// The values of a partition (and root) that every rank must agree on.
pub(crate) fn partition_fields(
    root: Option<usize>,
    partition: &Partition,
) -> [(&'static str, i64); 3] {
    let distribution = match partition.distribution() {
        Distribution::Block => 0,
        Distribution::Cyclic => 1,
        Distribution::BlockCyclic(b) => 1 + as_field(b),
    };
    [
        ("the root", root.map_or(-1, as_field)),
        ("the partition's length", as_field(partition.len())),
        ("the partition's distribution", distribution),
    ]
}
