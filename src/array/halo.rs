//! Ghost layers and their exchange between neighbouring ranks, for stencil codes.

use std::mem::size_of;

use mpi::point_to_point::{send_receive_into_with_tags, Destination, Source};
use mpi::topology::Communicator;
use ndarray::{Array, Axis, Dimension, RemoveAxis, Slice};

use super::transfer::TAG;
use super::{piece_shape, DistArray, Element};
use crate::collective::Preflight;
use crate::comm::Comm;
use crate::error::{Error, ErrorKind, Result};
use crate::partition::Distribution;

/// What lies beyond the first and last piece along the split axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Boundary {
    /// Nothing: the ghosts beyond the global edges keep whatever the program put there (e.g.
    /// fixed boundary values); only ghosts between ranks are exchanged.
    Fixed,
    /// The array wraps around: the first piece's lower ghosts are the last piece's top
    /// layers and vice versa (with one rank, the piece wraps onto itself).
    Periodic,
}

impl<T: Element, D: Dimension + RemoveAxis> DistArray<T, D> {
    /// The array with `width` ghost layers on each side of every piece along the split axis
    /// (initialised to `T::default()`; existing ghosts are dropped), and `boundary` beyond the
    /// global edges for [`exchange_halos`](Self::exchange_halos). No communication.
    ///
    /// # Errors
    /// `CountOverflow` if `width` layers exceed MPI's `i32` count per message; `Shape`, the
    /// same on every rank, if the split is not `Block` (ghosts are neighbours'
    /// layers, which only a block split has) or if `width` exceeds any rank's piece (that
    /// rank could not fill its neighbour's ghosts).
    pub fn with_ghosts(self, width: usize, boundary: Boundary) -> Result<DistArray<T, D>> {
        self.check_ghost_width("with_ghosts", width)?;
        let axis = Axis(self.split.axis);
        let count = self.partition.count(self.rank);
        let mut padded = Array::from_elem(
            piece_shape(&self.shape, self.split.axis, count + 2 * width),
            T::default(),
        );
        padded
            .slice_axis_mut(axis, Slice::from(width..width + count))
            .assign(&self.local());
        Ok(DistArray {
            data: padded,
            ghosts: width,
            boundary,
            halo_agreed: false,
            ..self
        })
    }

    /// What [`exchange_halos`](Self::exchange_halos) does beyond the global edges.
    pub fn boundary(&self) -> Boundary {
        self.boundary
    }

    /// The ghost width along the split axis (0 unless set with [`with_ghosts`](Self::with_ghosts)).
    pub fn ghosts(&self) -> usize {
        self.ghosts
    }

    /// This rank's piece with its ghost layers: `ghosts()` layers before and after the owned
    /// ones along the split axis.
    pub fn local_with_ghosts(&self) -> ndarray::ArrayView<'_, T, D> {
        self.data.view()
    }

    /// Mutable [`local_with_ghosts`](Self::local_with_ghosts), e.g. to set fixed boundary
    /// values in the ghosts of the first and last piece.
    pub fn local_with_ghosts_mut(&mut self) -> ndarray::ArrayViewMut<'_, T, D> {
        self.data.view_mut()
    }

    /// Fills the ghost layers from the neighbouring ranks' edge layers: the lower ghosts get the
    /// previous rank's last `ghosts()` owned layers, the upper ghosts the next rank's first
    /// ones. With a [periodic](Boundary::Periodic) boundary the first and last ranks are
    /// neighbours; with a [fixed](Boundary::Fixed) one the ghosts beyond the global edges are
    /// left alone. Collective.
    ///
    /// Communication: two `MPI_Sendrecv` of `ghosts()` layers (one each way); at one rank with
    /// a periodic boundary, two local copies. Layers are sent in place when the split axis is
    /// 0, packed otherwise. The first call also runs the agreement check (shape, split, ghost
    /// width, boundary); none of these can change afterwards, so later calls skip it and cost
    /// the two exchanges only.
    ///
    /// # Errors
    /// `InvalidPartition` if `comm` is not the array's communicator; `Disagreement` if ranks
    /// hold differently shaped arrays, ghost widths or boundaries.
    pub fn exchange_halos(&mut self, comm: &Comm) -> Result<()> {
        const OP: &str = "exchange_halos";
        let w = self.ghosts;
        let layer = self.local().len() / self.partition.count(self.rank).max(1);
        let _timer = comm.timed("DistArray::exchange_halos", 4 * w * layer * size_of::<T>());
        if !self.halo_agreed {
            let [shape, split, ghosts] = self.agreement_fields();
            comm.preflight(Preflight {
                op: OP,
                local_error: self.comm_error(comm, OP),
                agree: &[shape, split, ghosts, ("the boundary", self.boundary as i64)],
            })?;
            self.halo_agreed = comm.agreement_checks();
        } else if let Some(e) = self.comm_error(comm, OP) {
            // Every rank of `comm` sees the same size, so every rank returns this error.
            return Err(e.on_rank(comm.rank() as i32));
        }
        let boundary = self.boundary;
        if w == 0 {
            return Ok(());
        }
        let (p, rank) = (comm.size(), comm.rank());
        let periodic = boundary == Boundary::Periodic;
        let lower = (rank > 0 || periodic).then(|| (rank + p - 1) % p);
        let upper = (rank + 1 < p || periodic).then(|| (rank + 1) % p);
        let count = self.partition.count(rank);
        // Upward: my top owned layers go to the upper neighbour's lower ghosts.
        self.shift(comm, w + count - w..w + count, upper, 0..w, lower);
        // Downward: my bottom owned layers go to the lower neighbour's upper ghosts.
        self.shift(comm, w..2 * w, lower, w + count..2 * w + count, upper);
        Ok(())
    }

    /// Sends layers `send` to `to` while receiving layers `receive` from `from` (either may be
    /// absent at a fixed boundary). Layer ranges index the padded piece along the split axis.
    fn shift(
        &mut self,
        comm: &Comm,
        send: std::ops::Range<usize>,
        to: Option<usize>,
        receive: std::ops::Range<usize>,
        from: Option<usize>,
    ) {
        let axis = Axis(self.split.axis);
        let to_self = to == Some(comm.rank()) && from == Some(comm.rank());
        if to_self && self.split.axis != 0 {
            // One rank, periodic: the piece wraps onto itself.
            let layers = self.data.slice_axis(axis, Slice::from(send)).to_owned();
            self.data
                .slice_axis_mut(axis, Slice::from(receive))
                .assign(&layers);
            return;
        }
        if self.split.axis == 0 {
            // Layers along axis 0 are contiguous runs of the piece: no packing.
            let layer = self.data.len() / self.data.len_of(axis).max(1);
            let data = self
                .data
                .as_slice_mut()
                .expect("pieces are standard layout");
            let (send, receive) = (
                send.start * layer..send.end * layer,
                receive.start * layer..receive.end * layer,
            );
            let (send_buf, receive_buf) = if send.start < receive.start {
                let (low, high) = data.split_at_mut(receive.start);
                (&low[send], &mut high[..receive.len()])
            } else {
                let (low, high) = data.split_at_mut(send.start);
                (&high[..send.len()], &mut low[receive])
            };
            if to_self {
                // One rank, periodic: the piece wraps onto itself, no MPI, no allocation.
                receive_buf.copy_from_slice(send_buf);
            } else {
                exchange(comm, send_buf, to, receive_buf, from);
            }
        } else {
            let outgoing: Vec<T> = self
                .data
                .slice_axis(axis, Slice::from(send))
                .iter()
                .copied()
                .collect();
            let mut target = self.data.slice_axis_mut(axis, Slice::from(receive));
            let mut incoming = vec![T::default(); target.len()];
            exchange(comm, &outgoing, to, &mut incoming, from);
            if from.is_some() {
                target
                    .iter_mut()
                    .zip(incoming)
                    .for_each(|(slot, value)| *slot = value);
            }
        }
    }

    fn check_ghost_width(&self, op: &str, width: usize) -> Result<()> {
        if width == 0 {
            return Ok(());
        }
        if self.split.distribution != Distribution::Block {
            return Err(Error::new(
                ErrorKind::Shape,
                format!(
                    "{op}: ghost layers need a Block split (neighbours' layers), but the array is \
                     split {:?}",
                    self.split.distribution
                ),
            ));
        }
        let layer = piece_shape(&self.shape, self.split.axis, 1).size();
        if width.saturating_mul(layer) > i32::MAX as usize {
            return Err(Error::new(
                ErrorKind::CountOverflow,
                format!(
                    "{op}: {width} ghost layers of {layer} elements exceed MPI's i32 count per message"
                ),
            ));
        }
        let counts = self.partition.counts();
        if let Some((rank, &count)) = counts.iter().enumerate().find(|&(_, &c)| c < width) {
            return Err(Error::new(
                ErrorKind::Shape,
                format!(
                    "{op}: ghost width {width} is wider than rank {rank}'s piece of {count} \
                     layers along axis {} (global length {} over {} ranks)",
                    self.split.axis,
                    self.partition.len(),
                    counts.len()
                ),
            )
            .on_rank(rank as i32));
        }
        Ok(())
    }
}

/// One `MPI_Sendrecv`, or a lone send or receive at a fixed boundary.
pub(crate) fn exchange<T: Element>(
    comm: &Comm,
    send: &[T],
    to: Option<usize>,
    receive: &mut [T],
    from: Option<usize>,
) {
    let raw = comm.raw();
    match (to, from) {
        (Some(to), Some(from)) => {
            send_receive_into_with_tags(
                send,
                &raw.process_at_rank(to as i32),
                TAG,
                receive,
                &raw.process_at_rank(from as i32),
                TAG,
            );
        }
        (Some(to), None) => raw.process_at_rank(to as i32).send_with_tag(send, TAG),
        (None, Some(from)) => {
            raw.process_at_rank(from as i32)
                .receive_into_with_tag(receive, TAG);
        }
        (None, None) => {}
    }
}
