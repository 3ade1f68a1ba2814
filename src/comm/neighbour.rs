//! A persistent exchange with a fixed set of neighbours: the same messages, of the same
//! lengths, between the same ranks, started again and again (a sparse matrix's ghost
//! entries, an irregular mesh's shared nodes).
//!
//! The exchange owns one outgoing and one incoming buffer. Each neighbour's part of either is
//! a contiguous run, in the order the neighbours were given, and one persistent request
//! (`MPI_Send_init` / `MPI_Recv_init`) is made per part at construction; every
//! [`start`](NeighbourExchange::start) after that is one `MPI_Startall`, with no allocation
//! and no check. The caller packs the outgoing buffer before `start` and reads the incoming
//! one after [`finish`](NeighbourExchange::finish), and may compute in between.

use std::os::raw::c_int;

use mpi::datatype::Equivalence;

use super::ffi::{self, MPI_Request, MPI_Status};
use super::request::OpNames;
use super::Comm;
use crate::timing::EventKind;

/// A persistent neighbour exchange; see the [module docs](self).
pub(crate) struct NeighbourExchange<T> {
    comm: Comm,
    names: OpNames,
    outgoing: Vec<T>,
    incoming: Vec<T>,
    requests: Vec<MPI_Request>,
    statuses: Vec<MPI_Status>,
    /// Whether the requests are active (the buffers are MPI's until `finish`).
    in_flight: bool,
    posted_at: u64,
    /// The tag and the (rank, elements) of every part, for the profiler's message records.
    tag: u32,
    sends: Vec<(usize, usize)>,
    receives: Vec<(usize, usize)>,
}

impl<T: Equivalence + Copy + Default> NeighbourExchange<T> {
    /// An exchange sending `sends[k].1` elements to rank `sends[k].0` and receiving
    /// `receives[k].1` from rank `receives[k].0`, all with `tag` (a library tag: the ranks
    /// must start their exchanges on a communicator in the same order). No communication.
    ///
    /// # Panics
    /// If a part has more than `i32::MAX` elements or a rank is outside the communicator
    /// (the caller computes both from a partition).
    pub(crate) fn new(
        comm: &Comm,
        names: OpNames,
        tag: c_int,
        sends: &[(usize, usize)],
        receives: &[(usize, usize)],
    ) -> NeighbourExchange<T> {
        let total = |parts: &[(usize, usize)]| parts.iter().map(|p| p.1).sum::<usize>();
        let mut exchange = NeighbourExchange {
            comm: comm.clone(),
            names,
            outgoing: vec![T::default(); total(sends)],
            incoming: vec![T::default(); total(receives)],
            requests: Vec::with_capacity(sends.len() + receives.len()),
            statuses: Vec::new(),
            in_flight: false,
            posted_at: 0,
            tag: tag as u32,
            sends: sends.to_vec(),
            receives: receives.to_vec(),
        };
        let count = |n: usize| c_int::try_from(n).expect("a neighbour part above i32::MAX");
        let peer = |rank: usize| {
            assert!(rank < comm.size(), "a neighbour outside the communicator");
            rank as c_int
        };
        let mut at = 0;
        for &(rank, n) in receives {
            // SAFETY: a run inside `incoming`, a heap buffer the exchange owns and never
            // reallocates; the requests are freed before it (or leaked with it, in flight).
            let request = unsafe {
                let run = exchange.incoming.as_mut_ptr().add(at);
                ffi::recv_init(comm, run, count(n), peer(rank), tag)
            };
            exchange.requests.push(request);
            at += n;
        }
        at = 0;
        for &(rank, n) in sends {
            // SAFETY: as above, inside `outgoing`, which only the caller writes, and only
            // between exchanges (`outgoing_mut` refuses while in flight).
            let request = unsafe {
                let run = exchange.outgoing.as_ptr().add(at);
                ffi::send_init(comm, run, count(n), peer(rank), tag)
            };
            exchange.requests.push(request);
            at += n;
        }
        exchange.statuses = exchange
            .requests
            .iter()
            .map(|_| ffi::empty_status())
            .collect();
        exchange
    }
}

impl<T> NeighbourExchange<T> {
    /// Elements sent and received per exchange.
    pub(crate) fn sizes(&self) -> (usize, usize) {
        (self.outgoing.len(), self.incoming.len())
    }

    /// The outgoing buffer, to pack before [`start`](Self::start).
    ///
    /// # Panics
    /// While an exchange is in flight.
    pub(crate) fn outgoing_mut(&mut self) -> &mut [T] {
        assert!(!self.in_flight, "the outgoing buffer is MPI's until finish");
        &mut self.outgoing
    }

    /// The incoming buffer, as the last finished exchange left it.
    ///
    /// # Panics
    /// While an exchange is in flight.
    pub(crate) fn incoming(&self) -> &[T] {
        assert!(!self.in_flight, "the incoming buffer is MPI's until finish");
        &self.incoming
    }

    /// Starts every message (one `MPI_Startall`) and returns at once.
    ///
    /// # Panics
    /// If an exchange is already in flight.
    pub(crate) fn start(&mut self) {
        assert!(!self.in_flight, "an exchange is already in flight");
        let bytes = std::mem::size_of::<T>() * (self.outgoing.len() + self.incoming.len());
        {
            let _timer = self.comm.timed(self.names.op, bytes);
            self.note(EventKind::Send);
            ffi::start_all(&mut self.requests);
        }
        self.in_flight = true;
        self.posted_at = self.comm.profiler().now();
    }

    /// Lets MPI progress the messages; whether all of them have completed (the exchange
    /// still needs [`finish`](Self::finish)).
    pub(crate) fn test(&mut self) -> bool {
        self.in_flight && ffi::test_all(&mut self.requests, &mut self.statuses).0
    }

    /// Waits for every message of the exchange in flight (a no-op when none is).
    pub(crate) fn finish(&mut self) {
        if !self.in_flight {
            return;
        }
        {
            let _timer = self.comm.timed_wait(self.names, self.posted_at);
            ffi::wait_all(&mut self.requests, &mut self.statuses);
            self.note(EventKind::Receive);
        }
        self.in_flight = false;
    }

    /// Records every part's message in the profiler (sends as they start, receives as they
    /// complete).
    fn note(&self, kind: EventKind) {
        let parts = match kind {
            EventKind::Send => &self.sends,
            _ => &self.receives,
        };
        let item = std::mem::size_of::<T>();
        for &(rank, n) in parts {
            self.comm
                .note_message(self.names.op, kind, rank, self.tag, n * item);
        }
    }
}

impl<T> Drop for NeighbourExchange<T> {
    fn drop(&mut self) {
        if self.in_flight {
            // MPI may still read and write the buffers: leak them with the requests.
            std::mem::forget(std::mem::take(&mut self.outgoing));
            std::mem::forget(std::mem::take(&mut self.incoming));
            return;
        }
        ffi::free_all(&mut self.requests);
    }
}
