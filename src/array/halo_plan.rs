//! Split-phase halo exchange: [`HaloPlan`] (persistent requests and staging buffers, checked
//! once) and [`HaloExchange`] (an exchange in flight, which lends out only the owned part of
//! the array until it is finished).
//!
//! ```no_run
//! # use spmd::array::{Boundary, DistArray, Split};
//! # fn f(world: &spmd::Comm) -> spmd::Result<()> {
//! let mut u = DistArray::<f64, _>::zeros(world, (1024, 1024), Split::block(0))?
//!     .with_ghosts(1, Boundary::Fixed)?;
//! let mut plan = u.halo_plan()?; // the agreement check, once
//! for _sweep in 0..100 {
//!     let exchange = plan.begin(&mut u)?; // ghost layers start travelling
//!     let owned = exchange.owned(); // the interior can be computed from this...
//!     // ... but the ghosts cannot be read: `u` is borrowed until `finish`.
//!     exchange.finish()?;
//!     let with_ghosts = u.local_with_ghosts(); // now the edges
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Messages go through staging buffers that the plan owns (a copy of the edge layers out and
//! of the ghost layers in, small beside a sweep over the piece), which is what lets the
//! exchange outlive any borrow of the array's data safely. With a process grid the first
//! split axis is exchanged behind the caller's work and the others in `finish`, in turn, so
//! that corners come from the diagonal neighbours as in the blocking exchange.

use std::ops::Range;
use std::os::raw::c_int;

use ndarray::{ArrayView, ArrayViewMut, Axis, Dimension, RemoveAxis, Slice};

use super::halo::Boundary;
use super::{DistArray, Element};
use crate::comm::ffi::{self, MPI_Request, MPI_Status};
use crate::comm::request::{op_names, OpNames};
use crate::comm::Comm;
use crate::error::{Error, ErrorKind, Result};
use crate::timing::EventKind;

/// Library tags of halo messages: upward and downward along each split axis.
const HALO_TAG: c_int = crate::comm::HALO_TAGS;

const NAMES: OpNames = op_names!("DistArray::halo_exchange");

/// One direction along one axis: the layers sent and received and their staging buffers.
struct Shift<T> {
    send_layers: Range<usize>,
    to: Option<usize>,
    receive_layers: Range<usize>,
    from: Option<usize>,
    outgoing: Vec<T>,
    incoming: Vec<T>,
}

/// The exchange along one split axis.
struct AxisPlan<T> {
    axis: usize,
    /// One rank along a periodic axis: the piece wraps onto itself with local copies.
    wraps_locally: bool,
    /// Layers along axis 0 are contiguous runs of the piece: messages go straight from and
    /// into the array (no staging), with requests posted at every start.
    direct: bool,
    shifts: [Shift<T>; 2],
    /// Elements per layer across the axis.
    layer: usize,
    /// Tag of the upward messages; downward ones use the next.
    tag: c_int,
    /// Persistent requests over the staging buffers, or the direct requests of the exchange
    /// in flight (none when the axis wraps locally).
    requests: Vec<MPI_Request>,
    statuses: Vec<MPI_Status>,
}

/// Persistent halo exchange of one array's layout, with the split-phase exchanges it starts
/// ([`HaloExchange`]).
///
/// Made by [`DistArray::halo_plan`]; usable with that array and any array of the same
/// communicator, shape, split, ghost width and boundaries (e.g. the other buffer of a
/// Jacobi pair).
pub struct HaloPlan<T: Element> {
    comm: Comm,
    /// The padded piece shape the plan was made for.
    padded_shape: Vec<usize>,
    axes: Vec<AxisPlan<T>>,
    /// Whether an exchange is in flight (then the buffers may be in MPI's hands).
    in_flight: bool,
}

impl<T: Element> std::fmt::Debug for HaloPlan<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HaloPlan")
            .field("padded_shape", &self.padded_shape)
            .field("in_flight", &self.in_flight)
            .finish()
    }
}

impl<T: Element, D: Dimension + RemoveAxis> DistArray<T, D> {
    /// A persistent plan for this array's halo exchange: the agreement check (shape, split,
    /// ghost width, boundaries) runs here, once, and the plan's requests are made once;
    /// every [`begin`](HaloPlan::begin) after that costs the exchange alone. Collective.
    ///
    /// # Errors
    /// As [`exchange_halos`](Self::exchange_halos).
    pub fn halo_plan(&mut self) -> Result<HaloPlan<T>> {
        self.agree_on_halos("DistArray::halo_plan")?;
        let comm = self.comm.clone();
        let rank = comm.rank();
        let w = self.ghosts;
        let mut axes = Vec::new();
        let split: Vec<(usize, Boundary)> = self
            .layout
            .parts()
            .map(|p| p.axis)
            .zip(self.boundaries)
            .collect();
        for (index, (axis, boundary)) in split.into_iter().enumerate() {
            if w == 0 {
                break;
            }
            let periodic = boundary == Boundary::Periodic;
            let lower = self.layout.neighbour(rank, axis, false, periodic);
            let upper = self.layout.neighbour(rank, axis, true, periodic);
            let count = self.data.len_of(Axis(axis)) - 2 * w;
            let layer = self.data.len() / self.data.len_of(Axis(axis)).max(1);
            let direct = axis == 0;
            let staging = if direct { 0 } else { w * layer };
            let shift = |send_layers, to, receive_layers, from| Shift {
                send_layers,
                to,
                receive_layers,
                from,
                outgoing: vec![T::default(); staging],
                incoming: vec![T::default(); staging],
            };
            let mut plan = AxisPlan {
                axis,
                wraps_locally: lower == Some(rank) && upper == Some(rank),
                direct,
                layer,
                tag: HALO_TAG + 2 * index as c_int,
                // Upward: my top owned layers to the upper neighbour's lower ghosts; downward
                // the reverse.
                shifts: [
                    shift(count..w + count, upper, 0..w, lower),
                    shift(w..2 * w, lower, w + count..2 * w + count, upper),
                ],
                requests: Vec::new(),
                statuses: Vec::new(),
            };
            if !plan.wraps_locally && !plan.direct {
                plan.make_requests(&comm);
            }
            axes.push(plan);
        }
        Ok(HaloPlan {
            comm,
            padded_shape: self.data.shape().to_vec(),
            axes,
            in_flight: false,
        })
    }

    /// Starts this array's halo exchange and returns at once with the exchange in flight:
    /// compute what needs no ghosts from [`HaloExchange::owned`], then
    /// [`finish`](HaloExchange::finish) it and compute the edges. A one-off
    /// [`HaloPlan`]; in a loop, make the plan once with [`halo_plan`](Self::halo_plan).
    /// Collective. Results are bit-identical to [`exchange_halos`](Self::exchange_halos).
    ///
    /// # Errors
    /// As [`exchange_halos`](Self::exchange_halos).
    pub fn exchange_halos_begin(&mut self) -> Result<HaloExchange<'_, T, D>> {
        let plan = self.halo_plan()?;
        HaloExchange::start(self, PlanSlot::Owned(Box::new(plan)))
    }
}

impl<T: Element> AxisPlan<T> {
    fn make_requests(&mut self, comm: &Comm) {
        for (direction, shift) in self.shifts.iter_mut().enumerate() {
            let tag = self.tag + direction as c_int;
            if let Some(from) = shift.from {
                // SAFETY: the staging buffers live in the plan, which frees the requests
                // before them (and leaks them if an exchange is still in flight).
                self.requests.push(unsafe {
                    ffi::recv_init(
                        comm,
                        shift.incoming.as_mut_ptr(),
                        shift.incoming.len() as c_int,
                        from as c_int,
                        tag,
                    )
                });
            }
            if let Some(to) = shift.to {
                // SAFETY: as above.
                self.requests.push(unsafe {
                    ffi::send_init(
                        comm,
                        shift.outgoing.as_ptr(),
                        shift.outgoing.len() as c_int,
                        to as c_int,
                        tag,
                    )
                });
            }
        }
        self.statuses = self.requests.iter().map(|_| ffi::empty_status()).collect();
    }

    /// Packs the outgoing layers of `data` and starts the requests (or, wrapping locally,
    /// copies the layers straight into the ghosts; or, along axis 0, posts requests on the
    /// layers in place).
    fn start<D: Dimension>(&mut self, comm: &Comm, data: &mut ndarray::Array<T, D>) {
        if self.wraps_locally {
            for shift in &self.shifts {
                let layers = data
                    .slice_axis(Axis(self.axis), Slice::from(shift.send_layers.clone()))
                    .to_owned();
                data.slice_axis_mut(Axis(self.axis), Slice::from(shift.receive_layers.clone()))
                    .assign(&layers);
            }
            return;
        }
        self.note(comm, EventKind::Send);
        if self.direct {
            let base = data.as_mut_ptr();
            self.requests.clear();
            for (direction, shift) in self.shifts.iter().enumerate() {
                let tag = self.tag + direction as c_int;
                let layers = |r: &Range<usize>| (r.start * self.layer, r.len() * self.layer);
                if let Some(from) = shift.from {
                    let (at, count) = layers(&shift.receive_layers);
                    // SAFETY: ghost layers inside the piece, which the exchange holds (and
                    // leaks if it is leaked) until the request completes; nothing else reads
                    // or writes them meanwhile (the exchange lends out only the owned part).
                    self.requests.push(unsafe {
                        ffi::irecv(comm, base.add(at), count as c_int, from as c_int, tag)
                    });
                }
                if let Some(to) = shift.to {
                    let (at, count) = layers(&shift.send_layers);
                    // SAFETY: owned layers inside the piece, alive as above; only read
                    // (by MPI and through the exchange's shared view) until completion.
                    self.requests.push(unsafe {
                        ffi::isend(
                            comm,
                            base.add(at).cast_const(),
                            count as c_int,
                            to as c_int,
                            tag,
                        )
                    });
                }
            }
            self.statuses = self.requests.iter().map(|_| ffi::empty_status()).collect();
            return;
        }
        for shift in &mut self.shifts {
            if shift.to.is_some() {
                let layers =
                    data.slice_axis(Axis(self.axis), Slice::from(shift.send_layers.clone()));
                match layers.as_slice() {
                    Some(run) => shift.outgoing.copy_from_slice(run),
                    None => shift
                        .outgoing
                        .iter_mut()
                        .zip(layers.iter())
                        .for_each(|(slot, v)| *slot = *v),
                }
            }
        }
        ffi::start_all(&mut self.requests);
    }

    fn test(&mut self) -> bool {
        ffi::test_all(&mut self.requests, &mut self.statuses).0
    }

    /// Records this axis's messages in the profiler: the sends as they start, the receives
    /// as they complete.
    fn note(&self, comm: &Comm, kind: EventKind) {
        let bytes = |r: &Range<usize>| r.len() * self.layer * std::mem::size_of::<T>();
        for (direction, shift) in self.shifts.iter().enumerate() {
            let tag = (self.tag + direction as c_int) as u32;
            let peer = match kind {
                EventKind::Send => shift.to.map(|p| (p, bytes(&shift.send_layers))),
                _ => shift.from.map(|p| (p, bytes(&shift.receive_layers))),
            };
            if let Some((peer, bytes)) = peer {
                comm.note_message(NAMES.op, kind, peer, tag, bytes);
            }
        }
    }

    /// Waits for the requests and unpacks the received layers into the ghosts.
    fn complete<D: Dimension>(&mut self, comm: &Comm, data: &mut ndarray::Array<T, D>) {
        if self.wraps_locally {
            return;
        }
        ffi::wait_all(&mut self.requests, &mut self.statuses);
        self.note(comm, EventKind::Receive);
        if self.direct {
            return;
        }
        for shift in &self.shifts {
            if shift.from.is_some() {
                let mut ghosts =
                    data.slice_axis_mut(Axis(self.axis), Slice::from(shift.receive_layers.clone()));
                match ghosts.as_slice_mut() {
                    Some(run) => run.copy_from_slice(&shift.incoming),
                    None => ghosts
                        .iter_mut()
                        .zip(&shift.incoming)
                        .for_each(|(slot, v)| *slot = *v),
                }
            }
        }
    }
}

impl<T: Element> HaloPlan<T> {
    /// Starts the exchange of `array`'s halos (which must match the plan) and returns with
    /// it in flight; see [`HaloExchange`]. Costs packing the edge layers and one
    /// `MPI_Startall`: no check, no allocation. Collective.
    ///
    /// # Errors
    /// `InvalidState` if `array` is on another communicator or its padded piece has another
    /// shape than the plan's, or if an exchange of this plan is still in flight (one whose
    /// [`HaloExchange`] was leaked).
    pub fn begin<'a, D: Dimension + RemoveAxis>(
        &'a mut self,
        array: &'a mut DistArray<T, D>,
    ) -> Result<HaloExchange<'a, T, D>> {
        if !array.comm.same_as(&self.comm) || array.data.shape() != self.padded_shape.as_slice() {
            return Err(Error::new(
                ErrorKind::InvalidState,
                format!(
                    "HaloPlan::begin: the plan was made for a padded piece of shape {:?} on \
                     another array's communicator or shape (this array's piece: {:?})",
                    self.padded_shape,
                    array.data.shape()
                ),
            )
            .on_rank(self.comm.rank()));
        }
        HaloExchange::start(array, PlanSlot::Borrowed(self))
    }
}

impl<T: Element> Drop for HaloPlan<T> {
    fn drop(&mut self) {
        if self.in_flight {
            // A leaked exchange: MPI may still use the buffers and requests. Leak them too.
            for axis in std::mem::take(&mut self.axes) {
                std::mem::forget(axis);
            }
            return;
        }
        for axis in self.axes.iter_mut().filter(|a| !a.direct) {
            ffi::free_all(&mut axis.requests);
        }
    }
}

enum PlanSlot<'a, T: Element> {
    Owned(Box<HaloPlan<T>>),
    Borrowed(&'a mut HaloPlan<T>),
}

impl<T: Element> PlanSlot<'_, T> {
    fn plan(&mut self) -> &mut HaloPlan<T> {
        match self {
            PlanSlot::Owned(plan) => plan,
            PlanSlot::Borrowed(plan) => plan,
        }
    }
}

/// A halo exchange in flight: holds the array, so its ghosts cannot be read (nor anything
/// written) until [`finish`](Self::finish); lends out the owned part for the computation that
/// needs no ghosts.
///
/// While the exchange is in flight it owns the array's piece (MPI reads and writes it in
/// place along axis 0). Dropping an exchange without `finish` panics (the neighbours'
/// messages would be left half-received): finish every exchange, also on error paths. An
/// exchange leaked with `std::mem::forget` leaks the piece with it (MPI may still write into
/// it); the array is then left empty.
#[must_use = "an exchange must be finished with finish() (dropping it unfinished panics)"]
pub struct HaloExchange<'a, T: Element, D: Dimension> {
    array: &'a mut DistArray<T, D>,
    /// The array's piece while MPI works on it.
    data: Option<ndarray::Array<T, D>>,
    plan: PlanSlot<'a, T>,
    posted_at: u64,
}

impl<T: Element, D: Dimension> std::fmt::Debug for HaloExchange<'_, T, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HaloExchange")
            .field("finished", &self.data.is_none())
            .finish()
    }
}

impl<'a, T: Element, D: Dimension + RemoveAxis> HaloExchange<'a, T, D> {
    fn start(array: &'a mut DistArray<T, D>, mut slot: PlanSlot<'a, T>) -> Result<Self> {
        let plan = slot.plan();
        if plan.in_flight {
            return Err(Error::new(
                ErrorKind::InvalidState,
                "HaloPlan::begin: an exchange of this plan is still in flight (its \
                 HaloExchange was leaked); make a new plan",
            )
            .on_rank(plan.comm.rank()));
        }
        let comm = plan.comm.clone();
        let mut data = std::mem::take(&mut array.data);
        {
            let _timer = comm.timed(NAMES.op, array.halo_bytes_of(&data));
            if let Some(first) = plan.axes.first_mut() {
                first.start(&comm, &mut data);
            }
            plan.in_flight = true;
        }
        Ok(HaloExchange {
            posted_at: comm.profiler().now(),
            array,
            data: Some(data),
            plan: slot,
        })
    }

    /// This rank's owned elements (no ghosts), to compute on while the ghosts travel.
    pub fn owned(&self) -> ArrayView<'_, T, D> {
        let data = self
            .data
            .as_ref()
            .expect("an exchange in flight holds the piece");
        let w = self.array.ghosts;
        let mut view = data.view();
        for p in self.array.layout.parts() {
            let count = data.len_of(Axis(p.axis)) - 2 * w;
            view.slice_axis_inplace(Axis(p.axis), Slice::from(w..w + count));
        }
        view
    }

    /// This rank's owned elements that no neighbour receives, writable while the ghosts
    /// travel: the owned part less the `ghosts` layers at each end of every split axis.
    /// Writing them changes no ghost on any rank, so the exchange's result is the blocking
    /// exchange's followed by these writes. Empty along an axis where a rank owns fewer than
    /// twice the ghost width.
    ///
    /// This is what lets an operator overlap its own exchange: compute the edge layers,
    /// [`begin`](HaloPlan::begin), compute the inner layers here, `finish`.
    pub fn inner_mut(&mut self) -> ArrayViewMut<'_, T, D> {
        let w = self.array.ghosts;
        let parts: Vec<usize> = self.array.layout.parts().map(|p| p.axis).collect();
        let data = self
            .data
            .as_mut()
            .expect("an exchange in flight holds the piece");
        let mut view = data.view_mut();
        for axis in parts {
            // Owned layers are [w, w + count); the sent ones [w, 2w) and [count, count + w)
            // are left out (along axis 0 MPI reads them in place).
            let count = view.len_of(Axis(axis)) - 2 * w;
            view.slice_axis_inplace(Axis(axis), Slice::from(2 * w..count.max(2 * w)));
        }
        view
    }

    /// Lets MPI move the messages along (`MPI_Testall`) and says whether the first axis's
    /// messages have all arrived. Call it between chunks of the interior computation: MPI
    /// progresses large messages only inside MPI calls.
    pub fn test(&mut self) -> bool {
        match self.plan.plan().axes.first_mut() {
            Some(axis) if !axis.wraps_locally => axis.test(),
            _ => true,
        }
    }

    /// Completes the exchange: waits for the messages, unpacks them into the ghosts (and
    /// exchanges any further split axes in turn). The array is free again afterwards.
    ///
    /// # Errors
    /// None today; the `Result` leaves room for checks at completion.
    pub fn finish(mut self) -> Result<()> {
        let plan = self.plan.plan();
        let comm = plan.comm.clone();
        let mut data = self.data.take().expect("an exchange is finished once");
        {
            let _timer = comm.timed_wait(NAMES, self.posted_at);
            for (i, axis) in plan.axes.iter_mut().enumerate() {
                if i > 0 {
                    axis.start(&comm, &mut data);
                }
                axis.complete(&comm, &mut data);
            }
            plan.in_flight = false;
        }
        self.array.data = data;
        Ok(())
    }
}

impl<T: Element, D: Dimension> Drop for HaloExchange<'_, T, D> {
    fn drop(&mut self) {
        let Some(data) = self.data.take() else {
            return;
        };
        // MPI may still read or write the piece and the plan's buffers: leak them (the plan
        // stays marked in flight, so it leaks its own at its drop; an owned plan leaks here).
        std::mem::forget(data);
        if let PlanSlot::Owned(plan) = std::mem::replace(
            &mut self.plan,
            PlanSlot::Owned(Box::new(HaloPlan {
                comm: self.array.comm.clone(),
                padded_shape: Vec::new(),
                axes: Vec::new(),
                in_flight: false,
            })),
        ) {
            std::mem::forget(plan);
        }
        if !std::thread::panicking() {
            panic!(
                "spmd: a halo exchange on rank {} was dropped before finish(); finish every \
                 exchange (its buffers are leaked)",
                self.array.comm.rank()
            );
        }
    }
}
