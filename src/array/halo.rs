//! Ghost layers and their exchange between neighbouring ranks, for stencil codes.

use std::mem::{size_of, size_of_val};

use mpi::point_to_point::{send_receive_into_with_tags, Destination, Source};
use mpi::topology::Communicator;
use ndarray::{Array, Axis, Dimension, RemoveAxis, Slice};

use super::transfer::TAG;
use super::{DistArray, Element, MAX_SPLIT_AXES};
use crate::collective::{fingerprint, Field};
use crate::comm::Comm;
use crate::error::{Error, ErrorKind, Result};
use crate::partition::Distribution;
use crate::timing::EventKind;

/// What lies beyond the first and last piece along a split axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Boundary {
    /// Nothing: the ghosts beyond the global edges keep whatever the program put there (e.g.
    /// fixed boundary values); only ghosts between ranks are exchanged.
    Fixed,
    /// The array wraps around: the first piece's lower ghosts are the last piece's top
    /// layers and vice versa (with one rank along the axis, the piece wraps onto itself).
    Periodic,
}

impl std::fmt::Display for Boundary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Boundary::Fixed => "fixed",
            Boundary::Periodic => "periodic",
        })
    }
}

/// The boundaries of the split axes, shown as `[fixed, periodic]`.
struct BoundaryList<'a>(&'a [Boundary]);

impl std::fmt::Display for BoundaryList<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self.0.iter().map(Boundary::to_string).collect();
        write!(f, "[{}]", names.join(", "))
    }
}

impl<T: Element, D: Dimension + RemoveAxis> DistArray<T, D> {
    /// The array with `width` ghost layers on each side of every split axis (initialised to
    /// `T::default()`; existing ghosts are dropped), and `boundary` beyond the global edges of
    /// every split axis for [`exchange_halos`](Self::exchange_halos). No communication.
    ///
    /// # Errors
    /// As [`with_ghosts_per_axis`](Self::with_ghosts_per_axis).
    pub fn with_ghosts(self, width: usize, boundary: Boundary) -> Result<DistArray<T, D>> {
        let boundaries = vec![boundary; self.layout.split_axes()];
        self.with_ghosts_per_axis(width, &boundaries)
    }

    /// [`with_ghosts`](Self::with_ghosts) with one boundary per split axis, in the split's
    /// order (e.g. `[Fixed, Periodic]` for a channel periodic along axis 1 of a 2-D grid).
    ///
    /// # Errors
    /// `Shape` if `boundaries` does not have one entry per split axis; `CountOverflow` if
    /// `width` layers exceed MPI's `i32` count per message; `Shape`, the same on every rank,
    /// if a split axis is not split in blocks (ghosts are neighbours' layers, which only a
    /// block split has) or if `width` exceeds any rank's piece along a split axis (that rank
    /// could not fill its neighbour's ghosts).
    pub fn with_ghosts_per_axis(
        mut self,
        width: usize,
        boundaries: &[Boundary],
    ) -> Result<DistArray<T, D>> {
        const OP: &str = "DistArray::with_ghosts";
        if boundaries.len() != self.layout.split_axes() {
            return Err(Error::new(
                ErrorKind::Shape,
                format!(
                    "{OP}: {} boundaries given for a split along {} axes ({})",
                    boundaries.len(),
                    self.layout.split_axes(),
                    self.layout.split()
                ),
            ));
        }
        self.check_ghost_width(OP, width)?;
        let rank = self.comm.rank();
        let mut padded_shape = self.layout.piece_shape(&self.shape, rank);
        for p in self.layout.parts() {
            padded_shape[p.axis] += 2 * width;
        }
        let only_rows = self.layout.parts().all(|p| p.axis == 0);
        let total: usize = padded_shape.slice().iter().product();
        let layer = total / padded_shape[0].max(1);
        let padded = if only_rows && self.ghosts == 0 && self.data.is_standard_layout() {
            // Split by rows only, no ghosts yet: grow the piece's own allocation (which usually
            // moves no pages) and shift the rows up, instead of writing a new padded piece.
            let owned_len = self.data.len();
            let (mut flat, offset) = std::mem::take(&mut self.data).into_raw_vec_and_offset();
            flat.drain(..offset.unwrap_or(0));
            flat.truncate(owned_len);
            flat.resize(total, T::default());
            flat.copy_within(0..owned_len, width * layer);
            flat[..width * layer].fill(T::default());
            Array::from_shape_vec(padded_shape, flat).expect("the padded shape holds every row")
        } else {
            self.padded_by_assignment(padded_shape, width)
        };
        let mut kept = [Boundary::Fixed; MAX_SPLIT_AXES];
        kept[..boundaries.len()].copy_from_slice(boundaries);
        Ok(DistArray {
            data: padded,
            ghosts: width,
            boundaries: kept,
            halo_agreed: false,
            ..self
        })
    }

    /// The padded piece of `padded_shape`, ghosts `T::default()`, by filling and assigning
    /// (any split).
    fn padded_by_assignment(&self, padded_shape: D, width: usize) -> Array<T, D> {
        let rank = self.comm.rank();
        let mut padded = Array::from_elem(padded_shape, T::default());
        {
            let mut inner = padded.view_mut();
            for p in self.layout.parts() {
                let count = self.layout.count(rank, p.axis, self.shape[p.axis]);
                inner.slice_axis_inplace(Axis(p.axis), Slice::from(width..width + count));
            }
            inner.assign(&self.local());
        }
        padded
    }

    /// What [`exchange_halos`](Self::exchange_halos) does beyond the global edges along
    /// `axis` (`None` if `axis` is not split).
    pub fn boundary(&self, axis: usize) -> Option<Boundary> {
        let position = self.layout.parts().position(|p| p.axis == axis)?;
        Some(self.boundaries[position])
    }

    /// The ghost width along the split axes (0 unless set with [`with_ghosts`](Self::with_ghosts)).
    pub fn ghosts(&self) -> usize {
        self.ghosts
    }

    /// This rank's piece with its ghost layers: `ghosts()` layers before and after the owned
    /// ones along every split axis.
    pub fn local_with_ghosts(&self) -> ndarray::ArrayView<'_, T, D> {
        self.data.view()
    }

    /// Mutable [`local_with_ghosts`](Self::local_with_ghosts), e.g. to set fixed boundary
    /// values in the ghosts of the pieces at the global edges.
    pub fn local_with_ghosts_mut(&mut self) -> ndarray::ArrayViewMut<'_, T, D> {
        self.data.view_mut()
    }

    /// Fills the ghost layers from the neighbouring ranks' edge layers, along every split
    /// axis in turn: the lower ghosts get the previous rank's last `ghosts()` owned layers,
    /// the upper ghosts the next rank's first ones. Each axis's exchange covers the ghosts of
    /// the axes before it, so corners come from the diagonal neighbours. With a
    /// [periodic](Boundary::Periodic) boundary the first and last ranks along the axis are
    /// neighbours; with a [fixed](Boundary::Fixed) one the ghosts beyond the global edges are
    /// left alone. Collective.
    ///
    /// Communication: two `MPI_Sendrecv` of `ghosts()` layers per split axis (one each way);
    /// with one rank along a periodic axis, two local copies. Layers are sent in place along
    /// axis 0, packed along other axes. The first call also runs the agreement check (shape,
    /// split, ghost width, boundaries); none of these can change afterwards, so later calls
    /// skip it and cost the exchanges only.
    ///
    /// # Errors
    /// `Disagreement` if ranks hold differently shaped arrays, ghost widths or boundaries.
    pub fn exchange_halos(&mut self) -> Result<()> {
        const OP: &str = "DistArray::exchange_halos";
        let w = self.ghosts;
        let comm = self.comm.clone();
        let _timer = comm.timed(OP, self.halo_bytes());
        if !self.halo_agreed {
            self.agree_on_halos(OP)?;
            self.halo_agreed = comm.agreement_checks();
        }
        if w == 0 {
            return Ok(());
        }
        let rank = comm.rank();
        let axes: Vec<(usize, bool)> = self
            .layout
            .parts()
            .zip(self.boundaries)
            .map(|(p, b)| (p.axis, b == Boundary::Periodic))
            .collect();
        for (axis, periodic) in axes {
            let lower = self.layout.neighbour(rank, axis, false, periodic);
            let upper = self.layout.neighbour(rank, axis, true, periodic);
            let count = self.data.len_of(Axis(axis)) - 2 * w;
            // Upward: my top owned layers go to the upper neighbour's lower ghosts.
            self.shift(&comm, axis, count..w + count, upper, 0..w, lower);
            // Downward: my bottom owned layers go to the lower neighbour's upper ghosts.
            self.shift(
                &comm,
                axis,
                w..2 * w,
                lower,
                w + count..2 * w + count,
                upper,
            );
        }
        Ok(())
    }

    /// The agreement check of a halo exchange: shape, split, ghost width and boundaries.
    pub(crate) fn agree_on_halos(&self, op: &'static str) -> Result<()> {
        let boundaries = &self.boundaries[..self.layout.split_axes()];
        let key = fingerprint(boundaries.iter().map(|&b| b as u8));
        let shown = BoundaryList(boundaries);
        self.layout_preflight(op, None, &[Field::keyed("the boundaries", key, &shown)])
    }

    /// Payload bytes of one exchange on this rank (sent plus received).
    pub(crate) fn halo_bytes(&self) -> usize {
        self.halo_bytes_of(&self.data)
    }

    /// [`halo_bytes`](Self::halo_bytes) of this array's padded piece `data`.
    pub(crate) fn halo_bytes_of(&self, data: &Array<T, D>) -> usize {
        let w = self.ghosts;
        self.layout
            .parts()
            .map(|p| {
                let layer = data.len() / data.len_of(Axis(p.axis)).max(1);
                4 * w * layer * size_of::<T>()
            })
            .sum()
    }

    /// Sends layers `send` along `axis` to `to` while receiving layers `receive` from `from`
    /// (either may be absent at a fixed boundary). Layer ranges index the padded piece.
    fn shift(
        &mut self,
        comm: &Comm,
        axis: usize,
        send: std::ops::Range<usize>,
        to: Option<usize>,
        receive: std::ops::Range<usize>,
        from: Option<usize>,
    ) {
        let me = Some(comm.rank());
        let to_self = to == me && from == me;
        if axis == 0 {
            // Layers along axis 0 are contiguous runs of the piece: no packing.
            let layer = self.data.len() / self.data.len_of(Axis(0)).max(1);
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
                // One rank along a periodic axis: the piece wraps onto itself.
                receive_buf.copy_from_slice(send_buf);
            } else {
                exchange(comm, send_buf, to, receive_buf, from);
            }
            return;
        }
        let outgoing = self.data.slice_axis(Axis(axis), Slice::from(send));
        if to_self {
            let layers = outgoing.to_owned();
            self.data
                .slice_axis_mut(Axis(axis), Slice::from(receive))
                .assign(&layers);
            return;
        }
        let outgoing: Vec<T> = outgoing.iter().copied().collect();
        let mut target = self.data.slice_axis_mut(Axis(axis), Slice::from(receive));
        let mut incoming = vec![T::default(); target.len()];
        exchange(comm, &outgoing, to, &mut incoming, from);
        if from.is_some() {
            target
                .iter_mut()
                .zip(incoming)
                .for_each(|(slot, value)| *slot = value);
        }
    }

    fn check_ghost_width(&self, op: &str, width: usize) -> Result<()> {
        if width == 0 {
            return Ok(());
        }
        for p in self.layout.parts() {
            let partition = &p.partition;
            if partition.distribution() != Distribution::Block {
                return Err(Error::new(
                    ErrorKind::Shape,
                    format!(
                        "{op}: ghost layers need a block split (neighbours' layers), but axis \
                         {} is split {}",
                        p.axis,
                        partition.distribution()
                    ),
                ));
            }
            // The widest message: `width` layers of the padded piece across this axis.
            let mut layer: usize = 1;
            for (a, &n) in self.shape.slice().iter().enumerate() {
                if a != p.axis {
                    let widest = self.layout.part(a).map_or(n, |q| q.max_count() + 2 * width);
                    layer = layer.saturating_mul(widest);
                }
            }
            if width.saturating_mul(layer) > i32::MAX as usize {
                return Err(Error::new(
                    ErrorKind::CountOverflow,
                    format!(
                        "{op}: {width} ghost layers of {layer} elements across axis {} exceed \
                         MPI's i32 count per message",
                        p.axis
                    ),
                ));
            }
            let counts = partition.counts();
            if let Some((k, &count)) = counts.iter().enumerate().find(|&(_, &c)| c < width) {
                return Err(Error::new(
                    ErrorKind::Shape,
                    format!(
                        "{op}: ghost width {width} is wider than the {count} layers along axis \
                         {} of the pieces at grid position {k} of {} (global length {})",
                        p.axis,
                        counts.len(),
                        partition.len()
                    ),
                ));
            }
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
    const OP: &str = "DistArray::exchange_halos";
    if let Some(to) = to {
        comm.note_message(OP, EventKind::Send, to, TAG as u32, size_of_val(send));
    }
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
    if let Some(from) = from {
        comm.note_message(
            OP,
            EventKind::Receive,
            from,
            TAG as u32,
            size_of_val(receive),
        );
    }
}
