//! Changing how an array is split: another axis (a distributed transpose) or another
//! distribution, in one all-to-all.

use std::mem::size_of;

use mpi::collective::CommunicatorCollectives;
use mpi::datatype::{Partition as MpiPartition, PartitionMut};
use ndarray::{Array, ArrayView, Axis, Dimension, RemoveAxis, Slice};

use super::{partition_for, DistArray, Element, Split};
use crate::collective::{counts_and_displacements, Preflight};
use crate::comm::Comm;
use crate::error::Result;
use crate::partition::{Distribution, Partition};

impl<T: Element, D: Dimension + RemoveAxis> DistArray<T, D> {
    /// The same global array split by `split` instead (another axis, another distribution, or
    /// both). The result has no ghosts. Collective.
    ///
    /// Communication: agreement check + one `MPI_Alltoallv`; every rank sends each other rank
    /// the part of its piece that the other owns under the new split. Memory: this rank's
    /// piece twice more (packed send and receive buffers) besides the result.
    ///
    /// # Errors
    /// `InvalidPartition` if `comm` is not the array's communicator or for a block-cyclic block
    /// size of 0; `Shape` if `split.axis` does not exist; `Disagreement` if ranks pass
    /// different splits or hold differently shaped arrays; `CountOverflow` if a rank's piece
    /// exceeds MPI's `i32` counts.
    pub fn redistribute(&self, comm: &Comm, split: Split) -> Result<DistArray<T, D>> {
        const OP: &str = "redistribute";
        let mut timer = comm.timed("DistArray::redistribute", 0);
        let target = partition_for(comm, &self.shape, split);
        let plan = target
            .as_ref()
            .ok()
            .map(|&to| Plan::new(self, split, to, comm.rank()));
        let local_error = self
            .comm_error(comm, OP)
            .or_else(|| target.as_ref().err().cloned())
            .or_else(|| {
                let plan = plan.as_ref()?;
                counts_and_displacements(&plan.send_counts, OP)
                    .and_then(|_| counts_and_displacements(&plan.receive_counts, OP))
                    .err()
            });
        let [shape, old_split, ghosts] = self.agreement_fields();
        comm.preflight(Preflight {
            op: OP,
            local_error,
            agree: &[shape, old_split, ghosts, ("the new split", split.code())],
        })?;
        let plan = plan.expect("checked above");
        let (send_counts, send_displs) = counts_and_displacements(&plan.send_counts, OP)?;
        let (receive_counts, receive_displs) = counts_and_displacements(&plan.receive_counts, OP)?;

        let mut send = Vec::with_capacity(plan.send_counts.iter().sum());
        for dest in 0..comm.size() {
            send.extend(plan.outgoing(self, dest).iter().copied());
        }
        let mut receive = vec![T::default(); plan.receive_counts.iter().sum()];
        timer.add_bytes((send.len() + receive.len()) * size_of::<T>());
        {
            let outgoing = MpiPartition::new(&send[..], &send_counts[..], &send_displs[..]);
            let mut incoming =
                PartitionMut::new(&mut receive[..], &receive_counts[..], &receive_displs[..]);
            comm.raw()
                .all_to_all_varcount_into(&outgoing, &mut incoming);
        }
        drop(send);
        let mut result = DistArray::from_elem(comm, self.shape.clone(), split, T::default())?;
        let mut offset = 0;
        for source in 0..comm.size() {
            let shape = plan.incoming_shape(self, source);
            let len = shape.size();
            let block = ArrayView::from_shape(shape, &receive[offset..offset + len])
                .expect("counts match the block shapes");
            plan.place(self, &mut result, source, &block);
            offset += len;
        }
        result.par = self.par;
        Ok(result)
    }
}

/// Who sends what to whom when `from`'s split changes to `split` over partition `to`.
struct Plan {
    split: Split,
    to: Partition,
    rank: usize,
    send_counts: Vec<usize>,
    receive_counts: Vec<usize>,
}

impl Plan {
    fn new<T: Element, D: Dimension + RemoveAxis>(
        from: &DistArray<T, D>,
        split: Split,
        to: Partition,
        rank: usize,
    ) -> Plan {
        let mut plan = Plan {
            split,
            to,
            rank,
            send_counts: Vec::new(),
            receive_counts: Vec::new(),
        };
        let parts = to.parts();
        plan.send_counts = (0..parts)
            .map(|d| plan.outgoing_shape(from, d).size())
            .collect();
        plan.receive_counts = (0..parts)
            .map(|s| plan.incoming_shape(from, s).size())
            .collect();
        plan
    }

    /// Along the old axis when the axis stays: the global indices both `source` (old) and
    /// `dest` (new) own, ascending.
    fn shared_indices<T: Element, D: Dimension + RemoveAxis>(
        &self,
        from: &DistArray<T, D>,
        source: usize,
        dest: usize,
    ) -> Vec<usize> {
        from.partition
            .global_indices(source)
            .filter(|&g| self.to.owner(g) == dest)
            .collect()
    }

    /// The shape of the block `source` sends `dest`: `source`'s old rows by `dest`'s new ones.
    fn block_shape<T: Element, D: Dimension + RemoveAxis>(
        &self,
        from: &DistArray<T, D>,
        source: usize,
        dest: usize,
    ) -> D {
        let (old, new) = (from.split.axis, self.split.axis);
        let mut shape = from.shape.clone();
        if old == new {
            shape[old] = self.shared_indices(from, source, dest).len();
        } else {
            shape[old] = from.partition.count(source);
            shape[new] = self.to.count(dest);
        }
        shape
    }

    fn outgoing_shape<T: Element, D: Dimension + RemoveAxis>(
        &self,
        from: &DistArray<T, D>,
        dest: usize,
    ) -> D {
        self.block_shape(from, self.rank, dest)
    }

    fn incoming_shape<T: Element, D: Dimension + RemoveAxis>(
        &self,
        from: &DistArray<T, D>,
        source: usize,
    ) -> D {
        self.block_shape(from, source, self.rank)
    }

    /// The block of this rank's piece that `dest` owns under the new split, in logical order.
    fn outgoing<T: Element, D: Dimension + RemoveAxis>(
        &self,
        from: &DistArray<T, D>,
        dest: usize,
    ) -> Array<T, D> {
        let (old, new) = (from.split.axis, self.split.axis);
        let local = from.local();
        if old == new {
            let positions: Vec<usize> = self
                .shared_indices(from, self.rank, dest)
                .into_iter()
                .map(|g| from.partition.to_local(g).1)
                .collect();
            local.select(Axis(old), &positions)
        } else if self.to.distribution() == Distribution::Block {
            let start = self.to.displacements()[dest];
            let count = self.to.count(dest);
            local
                .slice_axis(Axis(new), Slice::from(start..start + count))
                .as_standard_layout()
                .into_owned()
        } else {
            let indices: Vec<usize> = self.to.global_indices(dest).collect();
            local.select(Axis(new), &indices)
        }
    }

    /// Writes the block received from `source` into its place in the new piece.
    fn place<T: Element, D: Dimension + RemoveAxis>(
        &self,
        from: &DistArray<T, D>,
        result: &mut DistArray<T, D>,
        source: usize,
        block: &ArrayView<'_, T, D>,
    ) {
        let old = from.split.axis;
        let mut piece = result.local_mut();
        // Positions along the old axis in the new piece, in the block's order.
        let positions: Vec<usize> = if old == self.split.axis {
            self.shared_indices(from, source, self.rank)
                .into_iter()
                .map(|g| self.to.to_local(g).1)
                .collect()
        } else {
            // The old axis is whole in the new piece: local = global.
            from.partition.global_indices(source).collect()
        };
        let contiguous = positions.windows(2).all(|w| w[1] == w[0] + 1);
        match (contiguous, positions.first()) {
            (_, None) => {}
            (true, Some(&start)) => piece
                .slice_axis_mut(Axis(old), Slice::from(start..start + positions.len()))
                .assign(block),
            (false, Some(_)) => {
                for (k, &position) in positions.iter().enumerate() {
                    piece
                        .index_axis_mut(Axis(old), position)
                        .assign(&block.index_axis(Axis(old), k));
                }
            }
        }
    }
}
