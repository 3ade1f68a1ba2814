//! Non-blocking collectives (`immediate_*`) and persistent reduction plans.
//!
//! An immediate collective starts the operation and returns a [`Request`] at once; its
//! [`wait`](Request::wait) gives the result. The request owns the buffers MPI works on
//! (inputs are copied in at the post), so the caller's data is free again as soon as the call
//! returns, and nothing can be read before it arrives.
//!
//! # Where the agreement check runs
//! On a checked handle the agreement check (operation, element type, lengths, root,
//! reduction) runs **at the post**, as the same small `MPI_Allreduce` the blocking forms
//! use, before any data moves: bad input is the same `Err` on every rank, from the call that
//! posted it, exactly as for the blocking form. The post therefore meets the other ranks (a
//! small-message latency, and the wait for the last rank to arrive); the data transfer, the
//! part that grows with the message, runs behind the caller's work. Where even that meeting
//! is too much (a hot loop whose arguments are known to agree), post on an
//! [unchecked](crate::Comm::unchecked) handle, or make an [`AllReducePlan`], which checks
//! once when it is made: their posts do not synchronise at all.
//!
//! Checking at the wait instead was rejected: mismatched collectives must never be posted
//! (MPI's behaviour is then undefined: truncation aborts, hangs, wrong data), and deferring
//! the post to the wait would leave nothing to overlap.
//!
//! # Progress
//! Open MPI and MPICH move non-blocking collectives forward only inside MPI calls (neither
//! runs a progress thread by default); call [`Request::test`] between chunks of work to keep
//! a long operation moving. The performance docs measure what that buys on each MPI.

use std::mem::size_of_val;
use std::os::raw::c_int;

use mpi::datatype::Equivalence;

use super::check::{ElementType, Field, Preflight};
use super::raw_op::RawOp;
use super::Varcount;
use super::{buffer_size_error, check_root, counts_and_displacements, mpi_count, Number, Op};
use crate::comm::ffi;
use crate::comm::request::{op_names, OpNames, Request};
use crate::comm::Comm;
use crate::error::{Error, ErrorKind, Result};

impl Comm {
    /// Starts an [`all_reduce`](Self::all_reduce) of one value; `wait` gives the result.
    /// Nothing can disagree, so no check runs and the post does not synchronise.
    ///
    /// ```no_run
    /// # fn f(world: &spmd::Comm, local_residual: f64) -> spmd::Result<()> {
    /// let residual = world.immediate_all_reduce(local_residual, spmd::Op::Max);
    /// // ... the next sweep's interior, while the reduction travels ...
    /// let global = residual.wait()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn immediate_all_reduce<T: Number>(&self, value: T, op: Op) -> Request<T> {
        const NAMES: OpNames = op_names!("immediate_all_reduce");
        let send = Box::new(value);
        let mut receive = Box::new(value);
        let raw_op = RawOp::new::<T>(op);
        let raw = {
            let _timer = self.timed(NAMES.op, 2 * size_of_val(&value));
            // SAFETY: both boxes move into the request's finish closure (their heap cells do
            // not move); a request dropped unfinished leaks them.
            vec![unsafe { ffi::iallreduce(self, &*send, &mut *receive, 1, raw_op.handle()) }]
        };
        Request::new(
            self,
            NAMES,
            raw,
            Box::new(move |_| {
                drop(send);
                Ok(*receive)
            }),
        )
    }

    /// Starts an element-wise [`all_reduce_into`](Self::all_reduce_into) of `send` (copied
    /// at the post); `wait` gives the reduced vector.
    ///
    /// # Errors
    /// At the post, on every rank: `Disagreement` if ranks pass different lengths,
    /// reductions or element types (checked handles); `CountOverflow` above `i32::MAX`
    /// elements.
    pub fn immediate_all_reduce_slice<T: Number>(
        &self,
        send: &[T],
        op: Op,
    ) -> Result<Request<Vec<T>>> {
        const NAMES: OpNames = op_names!("immediate_all_reduce_slice");
        // The request's own copies: local work, made before the comm region opens.
        let (owned, mut receive) = (send.to_vec(), send.to_vec());
        let _timer = self.timed(NAMES.op, 2 * size_of_val(send));
        let count = mpi_count(send.len(), NAMES.op, "the buffer");
        self.preflight(Preflight {
            op: NAMES.op,
            element: Some(ElementType::of::<T>()),
            local_error: count.as_ref().err().cloned(),
            agree: &[
                Field::number("the length", &send.len()),
                Field::keyed("the reduction", op.code(), &op),
            ],
        })?;
        let send = owned;
        let raw_op = RawOp::new::<T>(op);
        // SAFETY: both vectors move into the finish closure; see `immediate_all_reduce`.
        let raw = vec![unsafe {
            ffi::iallreduce(
                self,
                send.as_ptr(),
                receive.as_mut_ptr(),
                count?,
                raw_op.handle(),
            )
        }];
        drop(_timer);
        Ok(Request::new(
            self,
            NAMES,
            raw,
            Box::new(move |_| {
                drop(send);
                Ok(receive)
            }),
        ))
    }

    /// Starts a [`broadcast`](Self::broadcast) of `data` from `root`; every rank passes a
    /// vector of the same length (the root's contents are sent, the others' overwritten) and
    /// `wait` gives it back holding the root's data.
    ///
    /// # Errors
    /// At the post, on every rank: `InvalidRoot`; `Disagreement` on the root, length or
    /// element type; `CountOverflow`.
    pub fn immediate_broadcast<T: Equivalence + Copy + 'static>(
        &self,
        root: usize,
        mut data: Vec<T>,
    ) -> Result<Request<Vec<T>>> {
        const NAMES: OpNames = op_names!("immediate_broadcast");
        let _timer = self.timed(NAMES.op, size_of_val(&data[..]));
        let count = mpi_count(data.len(), NAMES.op, "the buffer");
        let local_error =
            check_root(root, self.size(), NAMES.op).or_else(|| count.as_ref().err().cloned());
        self.preflight(Preflight {
            op: NAMES.op,
            element: Some(ElementType::of::<T>()),
            local_error,
            agree: &[
                Field::number("the root", &root),
                Field::number("the length", &data.len()),
            ],
        })?;
        // SAFETY: `data` moves into the finish closure; see `immediate_all_reduce`.
        let raw = vec![unsafe { ffi::ibcast(self, data.as_mut_ptr(), count?, root as c_int) }];
        drop(_timer);
        Ok(Request::new(self, NAMES, raw, Box::new(move |_| Ok(data))))
    }

    /// Starts an [`all_gather`](Self::all_gather): every rank's `send` (equal lengths),
    /// concatenated in rank order, on every rank.
    ///
    /// # Errors
    /// At the post, on every rank: `Disagreement` on the length or element type;
    /// `CountOverflow` if the total exceeds `i32::MAX`.
    pub fn immediate_all_gather<T: Equivalence + Copy + Default + 'static>(
        &self,
        send: &[T],
    ) -> Result<Request<Vec<T>>> {
        const NAMES: OpNames = op_names!("immediate_all_gather");
        let total = send.len().saturating_mul(self.size());
        let owned = send.to_vec(); // local work, before the comm region
        let _timer = self.timed(NAMES.op, size_of_val(send) * (self.size() + 1));
        let count = mpi_count(total, NAMES.op, "the gathered total")
            .and_then(|_| mpi_count(send.len(), NAMES.op, "the buffer"));
        self.preflight(Preflight {
            op: NAMES.op,
            element: Some(ElementType::of::<T>()),
            local_error: count.as_ref().err().cloned(),
            agree: &[Field::number("the length", &send.len())],
        })?;
        let send = owned;
        let mut receive = vec![T::default(); total];
        // SAFETY: both vectors move into the finish closure; see `immediate_all_reduce`.
        let raw = vec![unsafe {
            ffi::iallgatherv(self, send.as_ptr(), count?, receive.as_mut_ptr(), None)
        }];
        drop(_timer);
        Ok(Request::new(
            self,
            NAMES,
            raw,
            Box::new(move |_| {
                drop(send);
                Ok(receive)
            }),
        ))
    }

    /// Starts an [`all_gather_varcount`](Self::all_gather_varcount): every rank's `send`, of
    /// any length, on every rank, with the counts.
    ///
    /// The counts are exchanged at the post (with the agreement check: one small
    /// `MPI_Allgather`, so the post meets the other ranks); the data travels behind the
    /// caller's work.
    ///
    /// # Errors
    /// At the post, on every rank: as [`all_gather_varcount`](Self::all_gather_varcount).
    pub fn immediate_all_gather_varcount<T: Equivalence + Copy + Default + 'static>(
        &self,
        send: &[T],
    ) -> Result<Request<Varcount<T>>> {
        const NAMES: OpNames = op_names!("immediate_all_gather_varcount");
        let timer = self.timed(NAMES.op, size_of_val(send));
        let counts = self.exchange_counts::<T>(NAMES.op, None, send.len())?;
        let (mpi_counts, displacements) = counts_and_displacements(&counts, NAMES.op)?;
        let send = send.to_vec();
        let mut receive = vec![T::default(); counts.iter().sum()];
        // SAFETY: the data and count vectors move into the finish closure; see
        // `immediate_all_reduce`.
        let raw = vec![unsafe {
            ffi::iallgatherv(
                self,
                send.as_ptr(),
                send.len() as c_int,
                receive.as_mut_ptr(),
                Some((mpi_counts.as_ptr(), displacements.as_ptr())),
            )
        }];
        drop(timer);
        Ok(Request::new(
            self,
            NAMES,
            raw,
            Box::new(move |_| {
                drop((send, mpi_counts, displacements));
                Ok(Varcount::new(receive, counts))
            }),
        ))
    }

    /// Starts an all-to-all with equal parts: `send` holds `size()` parts of equal length,
    /// part `r` going to rank `r`; `wait` gives the parts every rank sent this one, in rank
    /// order.
    ///
    /// # Errors
    /// At the post, on every rank: `NotDivisible` if `send.len()` is not a multiple of
    /// `size()`; `Disagreement` on the length or element type; `CountOverflow`.
    pub fn immediate_all_to_all<T: Equivalence + Copy + Default + 'static>(
        &self,
        send: &[T],
    ) -> Result<Request<Vec<T>>> {
        const NAMES: OpNames = op_names!("immediate_all_to_all");
        let p = self.size();
        let _timer = self.timed(NAMES.op, 2 * size_of_val(send));
        let local_error = if send.len() % p != 0 {
            Some(Error::new(
                ErrorKind::NotDivisible,
                format!(
                    "{}: the send buffer's {} elements do not split into {p} equal parts",
                    NAMES.op,
                    send.len()
                ),
            ))
        } else {
            mpi_count(send.len(), NAMES.op, "the buffer").err()
        };
        self.preflight(Preflight {
            op: NAMES.op,
            element: Some(ElementType::of::<T>()),
            local_error,
            agree: &[Field::number("the length", &send.len())],
        })?;
        let part = send.len() / p;
        let counts = vec![part; p];
        self.post_all_to_all(NAMES, send, &counts, counts.clone())
            .map(|r| r.map_result(Varcount::into_vec))
    }

    /// Starts an [`all_to_all_varcount`](Self::all_to_all_varcount). The counts are exchanged
    /// at the post (one small `MPI_Alltoall`, with the checks); the data travels behind the
    /// caller's work.
    ///
    /// # Errors
    /// At the post, on every rank: as [`all_to_all_varcount`](Self::all_to_all_varcount).
    pub fn immediate_all_to_all_varcount<T: Equivalence + Copy + Default + 'static>(
        &self,
        send: &[T],
        send_counts: &[usize],
    ) -> Result<Request<Varcount<T>>> {
        const NAMES: OpNames = op_names!("immediate_all_to_all_varcount");
        let p = self.size();
        let timer = self.timed(NAMES.op, size_of_val(send));
        let local_error = if send_counts.len() != p {
            Some(buffer_size_error(
                NAMES.op,
                "send_counts",
                p,
                send_counts.len(),
            ))
        } else if send_counts.iter().sum::<usize>() != send.len() {
            Some(buffer_size_error(
                NAMES.op,
                "the send buffer",
                send_counts.iter().sum(),
                send.len(),
            ))
        } else {
            counts_and_displacements(send_counts, NAMES.op).err()
        };
        self.preflight(Preflight {
            op: NAMES.op,
            element: Some(ElementType::of::<T>()),
            local_error,
            agree: &[],
        })?;
        let receive_counts = self.exchange_all_to_all_counts::<T>(NAMES.op, send_counts)?;
        let request = self.post_all_to_all(NAMES, send, send_counts, receive_counts);
        drop(timer);
        request
    }

    /// Posts the `MPI_Ialltoallv` of an immediate all-to-all, inside the caller's comm region
    /// (so that the request counts one call).
    fn post_all_to_all<T: Equivalence + Copy + Default + 'static>(
        &self,
        names: OpNames,
        send: &[T],
        send_counts: &[usize],
        receive_counts: Vec<usize>,
    ) -> Result<Request<Varcount<T>>> {
        let (send_mpi, send_displs) = counts_and_displacements(send_counts, names.op)?;
        let (receive_mpi, receive_displs) = counts_and_displacements(&receive_counts, names.op)?;
        let send = send.to_vec();
        let mut receive = vec![T::default(); receive_counts.iter().sum()];
        // SAFETY: the data and the four count vectors move into the finish closure; see
        // `immediate_all_reduce`.
        let raw = vec![unsafe {
            ffi::ialltoallv(
                self,
                send.as_ptr(),
                send_mpi.as_ptr(),
                send_displs.as_ptr(),
                receive.as_mut_ptr(),
                receive_mpi.as_ptr(),
                receive_displs.as_ptr(),
            )
        }];
        Ok(Request::new(
            self,
            names,
            raw,
            Box::new(move |_| {
                drop((send, send_mpi, send_displs, receive_mpi, receive_displs));
                Ok(Varcount::new(receive, receive_counts))
            }),
        ))
    }

    /// Makes a persistent all-reduce of `len` elements of `T` with `op`: the agreement check
    /// (length, reduction, element type) runs once, here, on every rank; the plan's
    /// [`all_reduce_into`](AllReducePlan::all_reduce_into) then costs the bare
    /// `MPI_Allreduce` (plus the profiler's clock reads), for hot loops of small reductions.
    ///
    /// ```no_run
    /// # fn f(world: &spmd::Comm) -> spmd::Result<()> {
    /// let plan = world.all_reduce_plan::<f64>(3, spmd::Op::Sum)?;
    /// let (mut send, mut sums) = ([0.0; 3], [0.0; 3]);
    /// for step in 0..1000 {
    ///     send = [step as f64, 1.0, 2.0];
    ///     plan.all_reduce_into(&send, &mut sums);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// `Disagreement` if ranks pass different lengths, reductions or element types;
    /// `CountOverflow` above `i32::MAX` elements.
    pub fn all_reduce_plan<T: Number>(&self, len: usize, op: Op) -> Result<AllReducePlan<T>> {
        const OP: &str = "all_reduce_plan";
        let _timer = self.timed(OP, 0);
        let count = mpi_count(len, OP, "the length");
        self.preflight(Preflight {
            op: OP,
            element: Some(ElementType::of::<T>()),
            local_error: count.as_ref().err().cloned(),
            agree: &[
                Field::number("the length", &len),
                Field::keyed("the reduction", op.code(), &op),
            ],
        })?;
        Ok(AllReducePlan {
            comm: self.clone(),
            len,
            count: count?,
            op: RawOp::new::<T>(op),
            _element: std::marker::PhantomData,
        })
    }
}

/// An all-reduce whose arguments were checked once; see [`Comm::all_reduce_plan`].
pub struct AllReducePlan<T: Number> {
    comm: Comm,
    len: usize,
    count: c_int,
    op: RawOp,
    _element: std::marker::PhantomData<T>,
}

impl<T: Number> std::fmt::Debug for AllReducePlan<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AllReducePlan")
            .field("len", &self.len)
            .finish()
    }
}

impl<T: Number> AllReducePlan<T> {
    /// The number of elements the plan reduces.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the plan reduces nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Reduces `send` into `receive` on every rank: one `MPI_Allreduce`, no check.
    ///
    /// # Panics
    /// If `send` or `receive` is not [`len`](Self::len) long: the plan was agreed for that
    /// length, and another one on this rank alone would leave the others waiting. Under
    /// [`Spmd`](crate::Spmd) the panic ends the whole job with its message.
    #[track_caller]
    pub fn all_reduce_into(&self, send: &[T], receive: &mut [T]) {
        assert!(
            send.len() == self.len && receive.len() == self.len,
            "AllReducePlan::all_reduce_into: the plan reduces {} elements, but send has {} \
             and receive {}",
            self.len,
            send.len(),
            receive.len()
        );
        let _timer = self.comm.timed("all_reduce_plan", 2 * size_of_val(send));
        // SAFETY: both slices hold `count` elements for the duration of the blocking call,
        // and Rust's borrows keep them distinct.
        unsafe {
            ffi::allreduce(
                &self.comm,
                send.as_ptr(),
                receive.as_mut_ptr(),
                self.count,
                self.op.handle(),
            )
        };
    }
}
