//! [`Request`]: the handle of a non-blocking operation, returned by the `*_immediate` calls.
//!
//! A request *owns* every buffer MPI reads or writes while the operation is in flight (the
//! data to send, the room to receive into), and hands them back, or the result made of them,
//! at [`wait`](Request::wait). That is what makes the non-blocking layer safe without borrow
//! scopes: nothing the caller can reach is touched by MPI behind its back, and even a request
//! leaked with `std::mem::forget` only leaks its buffers (MPI may still write into them; no
//! one else can).
//!
//! # A request must be completed
//! Complete every request with [`wait`](Request::wait) (or [`test`](Request::test) until it
//! returns `true`, then `wait`, which is then free). Dropping a request that has not completed
//! is a bug in the program: it **panics** with a message naming the operation (which, under
//! [`Spmd`](crate::Spmd), ends the whole job with that message). Waiting on drop was the
//! alternative; it was rejected because a receive whose sender took an error path would then
//! hang silently in a destructor. The buffers of a dropped request are leaked, never freed
//! under MPI. While the thread is already panicking, a dropped request leaks quietly.
//!
//! # Profiling
//! The post and the wait are both timed as communication in the operation's region, which
//! counts one call per request; the time between them (when the rank computed while the
//! message travelled) is the region's *in flight* time. The report shows both (see
//! [`RegionTimes`](crate::timing::RegionTimes)).

use std::fmt;

use crate::comm::ffi::{self, MPI_Request, MPI_Status};
use crate::comm::Comm;
use crate::error::Result;

/// Turns the completed operation's statuses into the caller's result; owns the buffers.
pub(crate) type Finish<R> = Box<dyn FnOnce(&[MPI_Status]) -> Result<R>>;

/// An operation in flight, as a request drives it.
pub(crate) trait Pending<R> {
    /// Progresses without blocking; whether the operation has completed.
    fn test(&mut self) -> bool;
    /// Blocks until the operation has completed.
    fn wait(&mut self);
    /// The result, once completed.
    fn finish(self: Box<Self>) -> Result<R>;
}

/// The usual pending operation: posted MPI requests and a closure that owns their buffers.
struct Posted<R> {
    raw: Vec<MPI_Request>,
    statuses: Vec<MPI_Status>,
    finish: Finish<R>,
}

impl<R> Pending<R> for Posted<R> {
    fn test(&mut self) -> bool {
        ffi::test_all(&mut self.raw, &mut self.statuses).0
    }

    fn wait(&mut self) {
        ffi::wait_all(&mut self.raw, &mut self.statuses);
    }

    fn finish(self: Box<Self>) -> Result<R> {
        (self.finish)(&self.statuses)
    }
}

/// A pending operation whose result is passed through a function.
struct Mapped<R, S> {
    inner: Box<dyn Pending<R>>,
    map: Box<dyn FnOnce(R) -> S>,
}

impl<R, S> Pending<S> for Mapped<R, S> {
    fn test(&mut self) -> bool {
        self.inner.test()
    }

    fn wait(&mut self) {
        self.inner.wait();
    }

    fn finish(self: Box<Self>) -> Result<S> {
        let Mapped { inner, map } = *self;
        inner.finish().map(map)
    }
}

/// The names an operation is known by: in the profiler and messages, and while waiting (for
/// the watchdog's report).
#[derive(Clone, Copy)]
pub(crate) struct OpNames {
    pub op: &'static str,
    pub wait: &'static str,
}

/// `OpNames` for an operation: `op_names!("receive_immediate")`.
macro_rules! op_names {
    ($op:literal) => {
        $crate::comm::request::OpNames {
            op: $op,
            wait: concat!("wait on ", $op),
        }
    };
}
pub(crate) use op_names;

/// A non-blocking operation in flight; see the [module docs](self).
#[must_use = "a request must be completed with wait() (dropping it unfinished panics)"]
pub struct Request<R> {
    comm: Comm,
    names: OpNames,
    /// Profiler tick at which the post returned.
    posted_at: u64,
    completed: bool,
    pending: Option<Box<dyn Pending<R>>>,
}

impl<R> fmt::Debug for Request<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("operation", &self.names.op)
            .field("completed", &self.completed)
            .finish()
    }
}

impl<R: 'static> Request<R> {
    /// A request over `raw` (already posted) whose result `finish` makes from the statuses.
    pub(crate) fn new(
        comm: &Comm,
        names: OpNames,
        raw: Vec<MPI_Request>,
        finish: Finish<R>,
    ) -> Request<R> {
        let statuses = raw.iter().map(|_| ffi::empty_status()).collect();
        Request::pending(
            comm,
            names,
            Box::new(Posted {
                raw,
                statuses,
                finish,
            }),
        )
    }

    /// A request driving `pending`.
    pub(crate) fn pending(comm: &Comm, names: OpNames, pending: Box<dyn Pending<R>>) -> Request<R> {
        Request {
            comm: comm.clone(),
            names,
            posted_at: comm.profiler().now(),
            completed: false,
            pending: Some(pending),
        }
    }

    /// This request with its result passed through `f` at `wait`.
    pub(crate) fn map_result<S: 'static>(mut self, f: impl FnOnce(R) -> S + 'static) -> Request<S> {
        let inner = self.pending.take().expect("a request is finished once");
        // `self` now drops as finished: the pending operation moves to the new handle.
        Request {
            comm: self.comm.clone(),
            names: self.names,
            posted_at: self.posted_at,
            completed: self.completed,
            pending: Some(Box::new(Mapped {
                inner,
                map: Box::new(f),
            })),
        }
    }
}

impl<R> Request<R> {
    /// The operation this request belongs to (e.g. `"send_immediate"`).
    pub fn operation(&self) -> &'static str {
        self.names.op
    }

    /// Whether the operation has completed, without blocking. Calling it between chunks of
    /// computation also lets MPI progress the transfer (see the progress notes in the
    /// performance docs). Once it returns `true`, [`wait`](Self::wait) returns at once.
    pub fn test(&mut self) -> bool {
        if !self.completed {
            if let Some(pending) = self.pending.as_mut() {
                self.completed = pending.test();
            }
        }
        self.completed
    }

    /// Blocks until the operation completes and returns its result (the buffers it owned,
    /// or the collective's value).
    ///
    /// # Errors
    /// `BufferSize` if a received message was longer than the buffer given for it (the
    /// message is discarded); a collective's agreement error is returned at the post, not
    /// here.
    pub fn wait(mut self) -> Result<R> {
        let mut pending = self.pending.take().expect("a request is finished once");
        {
            let _guard = self.comm.timed_wait(self.names, self.posted_at);
            if !self.completed {
                pending.wait();
            }
        }
        self.completed = true;
        pending.finish()
    }
}

impl<R> Drop for Request<R> {
    fn drop(&mut self) {
        let Some(pending) = self.pending.take() else {
            return;
        };
        if self.completed {
            return;
        }
        // MPI may still read or write the buffers the operation owns: never free them.
        std::mem::forget(pending);
        if !std::thread::panicking() {
            panic!(
                "spmd: a request of {} on rank {} was dropped before it completed; complete \
                 every request with wait() (its buffers are leaked)",
                self.names.op,
                self.comm.rank()
            );
        }
    }
}

/// Waits for every request in `requests` (in order) and collects the results: a helper for
/// the common "post many, wait for all" pattern.
///
/// # Errors
/// The first request's error; the remaining requests are still waited for.
pub fn wait_all<R>(requests: impl IntoIterator<Item = Request<R>>) -> Result<Vec<R>> {
    let mut results = Vec::new();
    let mut first_error = None;
    for request in requests {
        match request.wait() {
            Ok(r) => results.push(r),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(results),
    }
}
