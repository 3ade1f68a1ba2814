//! Changing how an array is split: other axes (a distributed transpose), another
//! distribution or another process grid, in one all-to-all.

use std::mem::size_of;

use mpi::collective::CommunicatorCollectives;
use mpi::datatype::{Partition as MpiPartition, PartitionMut};
use ndarray::{ArrayView, Dimension, RemoveAxis};

use super::blocks::{extract, place, shared_block, Selection};
use super::split::Layout;
use super::{DistArray, Element, Split};
use crate::collective::{counts_and_displacements, Field};
use crate::error::Result;

impl<T: Element, D: Dimension + RemoveAxis> DistArray<T, D> {
    /// The same global array split by `split` instead (other axes, another distribution or
    /// another grid), on the same communicator. The result has no ghosts. Collective.
    ///
    /// Communication: agreement check + one `MPI_Alltoallv`; every rank sends each other rank
    /// the block of its piece that the other holds under the new split. Memory: this rank's
    /// piece twice more (packed send and receive buffers) besides the result.
    ///
    /// # Errors
    /// `InvalidPartition` for a block-cyclic block size of 0 or a process grid of another
    /// size; `Shape` if a split axis does not exist; `Disagreement` if ranks pass different
    /// splits or hold differently shaped arrays; `CountOverflow` if a rank's piece exceeds
    /// MPI's `i32` counts.
    pub fn redistribute(&self, split: Split) -> Result<DistArray<T, D>> {
        const OP: &str = "DistArray::redistribute";
        let comm = &self.comm;
        let (p, rank) = (comm.size(), comm.rank());
        let mut timer = comm.timed(OP, 0);
        let target = Layout::new(split, self.shape.slice(), p);
        // For every other rank, the block this rank sends it and the block it receives from
        // it: positions in the old piece, positions in the new piece, shape.
        let plan = target.as_ref().ok().map(|to| {
            let send: Vec<_> = (0..p)
                .map(|dest| shared_block(&self.shape, (&self.layout, rank), (to, dest)))
                .collect();
            let receive: Vec<_> = (0..p)
                .map(|source| shared_block(&self.shape, (&self.layout, source), (to, rank)))
                .collect();
            (send, receive)
        });
        let sizes = |blocks: &[(Selection, Selection, D)]| -> Vec<usize> {
            blocks.iter().map(|b| b.2.size()).collect()
        };
        let local_error = match (&target, &plan) {
            (Err(e), _) => Some(e.clone()),
            (Ok(_), Some((send, receive))) => counts_and_displacements(&sizes(send), OP)
                .and_then(|_| counts_and_displacements(&sizes(receive), OP))
                .err(),
            (Ok(_), None) => None,
        };
        self.layout_preflight(
            OP,
            local_error,
            &[Field::keyed("the new split", split.key(), &split)],
        )?;
        let (outgoing_blocks, incoming_blocks) = plan.expect("checked above");
        let (send_counts, receive_counts) = (sizes(&outgoing_blocks), sizes(&incoming_blocks));
        let (send_mpi, send_displs) = counts_and_displacements(&send_counts, OP)?;
        let (receive_mpi, receive_displs) = counts_and_displacements(&receive_counts, OP)?;

        // Real allocations even when empty (see `collective::mpi_buffer`).
        let mut send = Vec::with_capacity(send_counts.iter().sum::<usize>().max(1));
        let local = self.local();
        for (in_mine, _, _) in &outgoing_blocks {
            send.extend(extract(local.view(), in_mine).iter().copied());
        }
        let mut receive = crate::collective::mpi_buffer(receive_counts.iter().sum());
        timer.add_bytes((send.len() + receive.len()) * size_of::<T>());
        {
            let outgoing = MpiPartition::new(&send[..], &send_mpi[..], &send_displs[..]);
            let mut incoming =
                PartitionMut::new(&mut receive[..], &receive_mpi[..], &receive_displs[..]);
            comm.raw()
                .all_to_all_varcount_into(&outgoing, &mut incoming);
        }
        drop(send);
        let mut result = DistArray::from_elem(comm, self.shape.clone(), split, T::default())?;
        let mut offset = 0;
        for (_, in_new, shape) in incoming_blocks {
            let len = shape.size();
            let block = ArrayView::from_shape(shape, &receive[offset..offset + len])
                .expect("counts match the block shapes");
            place(result.local_mut(), &in_new, block);
            offset += len;
        }
        result.par = self.par;
        Ok(result)
    }
}
