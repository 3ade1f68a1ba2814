//! Gathers to one root or to all ranks, with equal or uneven counts.

use mpi::collective::{CommunicatorCollectives, Root};
use mpi::datatype::{Equivalence, PartitionMut};
use mpi::topology::Communicator;

use super::carry;
use super::check::{as_field, describe_values, ElementType, Field, Preflight};
use super::{buffer_size_error, check_root, counts_and_displacements, mpi_count, Varcount};
use crate::comm::Comm;
use crate::error::{Error, ErrorKind, Result};
use crate::partition::Partition;
use std::mem::{size_of, size_of_val};

impl Comm {
    /// Collects `send` from every rank (all the same length) at `root`, in rank order:
    /// `Some(all)` on the root, `None` elsewhere.
    ///
    /// Communication: agreement check + one `MPI_Gather`; when all the parts together are at
    /// most 64 bytes of primitive numbers they travel inside the check's reduction instead
    /// (one collective in all).
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
        // Up to 64 bytes in all of primitive numbers ride in the check (see `carry`).
        let (slot, payload) = carry::own_slot(send, self.rank(), self.size());
        let carried = self.preflight_carrying(
            Preflight {
                op: OP,
                element: Some(ElementType::of::<T>()),
                local_error,
                agree: &[
                    Field::number("the root", &root),
                    Field::number("the length", &send.len()),
                ],
            },
            payload,
        )?;
        if let (Some(carried), Some(words)) = (carried, slot) {
            if self.rank() == root {
                carry::unpack_slots(&carried, words, recv, send.len());
            }
            return Ok(());
        }
        let root_process = self.raw().process_at_rank(root as i32);
        let send = super::never_in_place(send);
        if self.rank() == root {
            root_process.gather_into_root(send, super::never_in_place_mut(recv));
        } else {
            root_process.gather_into(send);
        }
        Ok(())
    }

    /// Collects `send` from every rank (all the same length) on every rank, in rank order.
    ///
    /// Communication: agreement check + one `MPI_Allgather`; when all the parts together are
    /// at most 64 bytes of primitive numbers they travel inside the check's reduction instead
    /// (one collective in all).
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
        // Up to 64 bytes in all of primitive numbers ride in the check (see `carry`).
        let (slot, payload) = carry::own_slot(send, self.rank(), self.size());
        let carried = self.preflight_carrying(
            Preflight {
                op: OP,
                element: Some(ElementType::of::<T>()),
                local_error,
                agree: &[Field::number("the length", &send.len())],
            },
            payload,
        )?;
        if let (Some(carried), Some(words)) = (carried, slot) {
            carry::unpack_slots(&carried, words, recv, send.len());
            return Ok(());
        }
        self.raw()
            .all_gather_into(super::never_in_place(send), super::never_in_place_mut(recv));
        Ok(())
    }

    /// Collects `send` of any length from every rank at `root`, parts one after another in
    /// rank order: `Some` on the root, with each rank's count; `None` elsewhere.
    ///
    /// Communication: agreement check (root, element type) + one `MPI_Allgather` of 3
    /// integers per rank (counts, roots and argument errors: this exchange also runs with
    /// checks off) + one `MPI_Gatherv`.
    ///
    /// # Errors
    /// `InvalidRoot`; `Disagreement` on the root or element type; `CountOverflow` if a count
    /// or the total exceeds `i32::MAX`.
    pub fn gather_varcount<T>(&self, root: usize, send: &[T]) -> Result<Option<Varcount<T>>>
    where
        T: Equivalence + Copy + Default,
    {
        const OP: &str = "gather_varcount";
        let mut timer = self.timed(OP, size_of_val(send));
        let counts = self.exchange_counts::<T>(OP, Some(root), send.len())?;
        let gathered = self.gather_counted(root, send, &counts, OP)?;
        if let Some(all) = &gathered {
            timer.add_bytes(size_of_val(&all[..]));
        }
        Ok(gathered.map(|all| Varcount::new(all, counts)))
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
    pub fn gather_partitioned<T>(
        &self,
        root: usize,
        send: &[T],
        partition: &Partition,
    ) -> Result<Option<Vec<T>>>
    where
        T: Equivalence + Copy + Default,
    {
        const OP: &str = "gather_partitioned";
        let whole = partition.len().saturating_mul(size_of::<T>());
        let _timer = self.timed(OP, size_of_val(send) + self.root_bytes(root, whole));
        let local_error = check_root(root, self.size(), OP)
            .or_else(|| self.check_partition(OP, partition, send.len()));
        let values = PartitionValues::new(Some(root), partition);
        self.preflight(Preflight {
            op: OP,
            element: Some(ElementType::of::<T>()),
            local_error,
            agree: &values.fields(),
        })?;
        self.gather_counted(root, send, &partition.counts(), OP)
    }

    /// Collects `send` of any length from every rank on every rank, in rank order, with each
    /// rank's count.
    ///
    /// Communication: agreement check (element type) + one `MPI_Allgather` of 3 integers per
    /// rank (counts and argument errors) + one `MPI_Allgatherv`.
    ///
    /// # Errors
    /// `Disagreement` on the element type; `CountOverflow` if a count or the total exceeds
    /// `i32::MAX`.
    pub fn all_gather_varcount<T>(&self, send: &[T]) -> Result<Varcount<T>>
    where
        T: Equivalence + Copy + Default,
    {
        let mut all = Vec::new();
        let counts = self.all_gather_varcount_named("all_gather_varcount", send, &mut all)?;
        Ok(Varcount::new(all, counts))
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
        self.all_gather_varcount_named("all_gather_varcount_into", send, recv)
    }

    fn all_gather_varcount_named<T>(
        &self,
        name: &'static str,
        send: &[T],
        recv: &mut Vec<T>,
    ) -> Result<Vec<usize>>
    where
        T: Equivalence + Copy + Default,
    {
        let mut timer = self.timed(name, size_of_val(send));
        let counts = self.exchange_counts::<T>(name, None, send.len())?;
        self.all_gather_counted(send, &counts, recv, name)?;
        timer.add_bytes(size_of_val(&recv[..]));
        Ok(counts)
    }

    /// Collects each rank's part of `partition` on every rank, in rank order.
    ///
    /// Communication: agreement check + one `MPI_Allgatherv`.
    ///
    /// # Errors
    /// As [`gather_partitioned`](Self::gather_partitioned), without the root.
    pub fn all_gather_partitioned<T>(&self, send: &[T], partition: &Partition) -> Result<Vec<T>>
    where
        T: Equivalence + Copy + Default,
    {
        let mut all = Vec::new();
        self.all_gather_partitioned_into(send, partition, &mut all)?;
        Ok(all)
    }

    /// [`all_gather_partitioned`](Self::all_gather_partitioned) into `recv`, resized to
    /// `partition.len()`; its capacity is reused, so a loop that gathers every step allocates
    /// once.
    ///
    /// # Errors
    /// As [`all_gather_partitioned`](Self::all_gather_partitioned).
    pub fn all_gather_partitioned_into<T>(
        &self,
        send: &[T],
        partition: &Partition,
        recv: &mut Vec<T>,
    ) -> Result<()>
    where
        T: Equivalence + Copy + Default,
    {
        const OP: &str = "all_gather_partitioned";
        let whole = partition.len().saturating_mul(size_of::<T>());
        let _timer = self.timed(OP, size_of_val(send) + whole);
        let values = PartitionValues::new(None, partition);
        self.preflight(Preflight {
            op: OP,
            element: Some(ElementType::of::<T>()),
            local_error: self.check_partition(OP, partition, send.len()),
            agree: &values.fields(),
        })?;
        self.all_gather_counted(send, &partition.counts(), recv, OP)
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
        if counts.iter().all(|&c| c == 0) {
            // Nothing to move (every rank knows it from the same counts): Open MPI refuses an
            // `MPI_Gatherv` from an empty `Vec<u8>` (its pointer is 1) with MPI_ERR_ARG.
            return Ok((self.rank() == root).then(Vec::new));
        }
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
        if recv.is_empty() {
            // Nothing to move (every rank knows it from the same counts): Open MPI refuses an
            // `MPI_Allgatherv` on an empty `Vec<u8>` (its pointer is 1) with MPI_ERR_ARG.
            return Ok(());
        }
        let mut parts = PartitionMut::new(&mut recv[..], mpi_counts, displacements);
        self.raw().all_gather_varcount_into(send, &mut parts);
        Ok(())
    }

    /// Every rank's `count` on every rank, checking roots and counts on the way.
    ///
    /// With agreement checks on, first the check (operation, element type, root); then one
    /// `MPI_Allgather` of `[count, root, error]` per rank, which carries argument errors even
    /// with checks off: any problem becomes the same error everywhere (the totals are checked
    /// by every rank from the same counts).
    pub(crate) fn exchange_counts<T>(
        &self,
        op: &'static str,
        root: Option<usize>,
        count: usize,
    ) -> Result<Vec<usize>> {
        let local_error = root
            .and_then(|r| check_root(r, self.size(), op))
            .or_else(|| mpi_count(count, op, "this rank's buffer").err());
        let root_field;
        let agree: &[Field<'_>] = match &root {
            Some(r) => {
                root_field = [Field::number("the root", r)];
                &root_field
            }
            None => &[],
        };
        self.preflight(Preflight {
            op,
            element: Some(ElementType::of::<T>()),
            local_error: local_error.clone(),
            agree,
        })?;
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
        if root.is_some() && all.chunks(3).any(|row| row[1] != all[1]) {
            let roots: Vec<String> = all.chunks(3).map(|row| row[1].to_string()).collect();
            return Err(Error::new(
                ErrorKind::Disagreement,
                format!(
                    "{op}: ranks disagree on the root: {}; every rank must pass the same",
                    describe_values(&roots)
                ),
            ));
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

/// The values of a partition (and root) that every rank must agree on, owned so that the
/// check's fields can borrow them.
pub(crate) struct PartitionValues {
    root: Option<usize>,
    len: usize,
    distribution: crate::partition::Distribution,
    parts: usize,
}

impl PartitionValues {
    pub(crate) fn new(root: Option<usize>, partition: &Partition) -> PartitionValues {
        PartitionValues {
            root,
            len: partition.len(),
            distribution: partition.distribution(),
            parts: partition.parts(),
        }
    }

    pub(crate) fn fields(&self) -> [Field<'_>; 4] {
        let root: &dyn std::fmt::Display = match &self.root {
            Some(r) => r,
            None => &"none",
        };
        [
            Field::keyed("the root", self.root.map_or(-1, as_field), root),
            Field::number("the partition's length", &self.len),
            Field::keyed(
                "the partition's distribution",
                self.distribution.code(),
                &self.distribution,
            ),
            Field::number("the partition's number of parts", &self.parts),
        ]
    }
}
