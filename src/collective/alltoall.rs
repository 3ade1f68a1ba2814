//! All-to-all with uneven counts: every rank sends a part of its data to every rank.

use std::mem::size_of_val;

use mpi::collective::CommunicatorCollectives;
use mpi::datatype::{Equivalence, Partition as MpiPartition, PartitionMut};

use super::check::{ElementType, Preflight};
use super::{buffer_size_error, counts_and_displacements, Varcount};
use crate::comm::Comm;
use crate::error::Result;

impl Comm {
    /// Sends the next `send_counts[r]` elements of `send` to rank `r`, for every `r`, and
    /// returns what every rank sent this one, in rank order, with the count from each rank.
    /// Only this rank's counts are given: what it receives is exchanged for you.
    /// The distributed transpose behind sample sort, redistribution and FFTs.
    ///
    /// Communication: the agreement check (operation, element type, every rank's argument
    /// errors), one `MPI_Alltoall` of the counts, a second check that carries errors found in
    /// the received counts (both checks only with agreement checks on), one `MPI_Alltoallv`.
    ///
    /// # Errors
    /// `BufferSize` if `send_counts` does not have one entry per rank or does not add up to
    /// `send.len()`; `CountOverflow` if what a rank sends or receives exceeds MPI's `i32`.
    pub fn all_to_all_varcount<T>(&self, send: &[T], send_counts: &[usize]) -> Result<Varcount<T>>
    where
        T: Equivalence + Copy + Default,
    {
        let mut receive = Vec::new();
        let counts =
            self.all_to_all_varcount_named("all_to_all_varcount", send, send_counts, &mut receive)?;
        Ok(Varcount::new(receive, counts))
    }

    /// [`all_to_all_varcount`](Self::all_to_all_varcount) into `receive`, resized to what
    /// arrives (in rank order); returns the count from each rank. Its capacity is reused, so
    /// a loop that exchanges every step allocates (and page-faults) once: at hundreds of
    /// megabytes the first touch of a fresh buffer can cost more than the exchange (see the
    /// performance docs).
    ///
    /// # Errors
    /// As [`all_to_all_varcount`](Self::all_to_all_varcount).
    pub fn all_to_all_varcount_into<T>(
        &self,
        send: &[T],
        send_counts: &[usize],
        receive: &mut Vec<T>,
    ) -> Result<Vec<usize>>
    where
        T: Equivalence + Copy + Default,
    {
        self.all_to_all_varcount_named("all_to_all_varcount_into", send, send_counts, receive)
    }

    fn all_to_all_varcount_named<T>(
        &self,
        name: &'static str,
        send: &[T],
        send_counts: &[usize],
        receive: &mut Vec<T>,
    ) -> Result<Vec<usize>>
    where
        T: Equivalence + Copy + Default,
    {
        const OP: &str = "all_to_all_varcount";
        let mut timer = self.timed(name, size_of_val(send));
        let p = self.size();
        let local_error = if send_counts.len() != p {
            Some(buffer_size_error(OP, "send_counts", p, send_counts.len()))
        } else if send_counts.iter().sum::<usize>() != send.len() {
            Some(buffer_size_error(
                OP,
                "the send buffer",
                send_counts.iter().sum(),
                send.len(),
            ))
        } else {
            counts_and_displacements(send_counts, OP).err()
        };
        self.preflight(Preflight {
            op: OP,
            element: Some(ElementType::of::<T>()),
            local_error,
            agree: &[],
        })?;
        let receive_counts = self.exchange_all_to_all_counts::<T>(OP, send_counts)?;
        let (send_mpi, send_displs) = counts_and_displacements(send_counts, OP)?;
        let (receive_mpi, receive_displs) = counts_and_displacements(&receive_counts, OP)?;
        let total: usize = receive_counts.iter().sum();
        receive.clear();
        // A real allocation even when empty (see `mpi_buffer`).
        receive.reserve(total.max(1));
        receive.resize(total, T::default());
        let spare = [T::default()];
        let send = if send.is_empty() { &spare[..0] } else { send };
        {
            let outgoing = MpiPartition::new(send, &send_mpi[..], &send_displs[..]);
            let mut incoming =
                PartitionMut::new(&mut receive[..], &receive_mpi[..], &receive_displs[..]);
            self.raw()
                .all_to_all_varcount_into(&outgoing, &mut incoming);
        }
        timer.add_bytes(size_of_val(&receive[..]));
        Ok(receive_counts)
    }

    /// What every rank sends this one, from every rank's `send_counts` (one `MPI_Alltoall`),
    /// then a check that carries any error found in the received counts to every rank.
    pub(crate) fn exchange_all_to_all_counts<T>(
        &self,
        op: &'static str,
        send_counts: &[usize],
    ) -> Result<Vec<usize>> {
        let outgoing: Vec<u64> = send_counts.iter().map(|&c| c as u64).collect();
        let mut incoming = vec![0_u64; self.size()];
        self.raw().all_to_all_into(&outgoing[..], &mut incoming[..]);
        let receive_counts: Vec<usize> = incoming.iter().map(|&c| c as usize).collect();
        self.preflight(Preflight {
            op,
            element: Some(ElementType::of::<T>()),
            local_error: counts_and_displacements(&receive_counts, op).err(),
            agree: &[],
        })?;
        Ok(receive_counts)
    }
}
