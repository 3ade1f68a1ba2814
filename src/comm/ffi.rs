//! The few raw MPI calls rsmpi cannot make for us: non-blocking and persistent operations on
//! buffers the library owns (rsmpi ties every request to a borrow scope), probes that leave the
//! message queued, and matched probes (a receive that knows the message's length before taking
//! it, so that a message longer than the buffer is an error, never an MPI truncation).
//!
//! Everything here is crate-private and thin: callers keep the buffers alive (the request
//! types own them) and pass counts that already fit MPI's `int`.

use std::mem::MaybeUninit;
use std::os::raw::{c_int, c_void};

use mpi::datatype::Equivalence;
use mpi::ffi;
use mpi::raw::AsRaw;

use crate::comm::Comm;

pub(crate) use ffi::{MPI_Comm, MPI_Datatype, MPI_Op, MPI_Request, MPI_Status};

/// `MPI_ANY_SOURCE`.
pub(crate) fn any_source() -> c_int {
    // SAFETY: a constant that mpi-sys exports as an immutable extern static.
    unsafe { ffi::RSMPI_ANY_SOURCE }
}

/// `MPI_ANY_TAG`.
pub(crate) fn any_tag() -> c_int {
    // SAFETY: as `any_source`.
    unsafe { ffi::RSMPI_ANY_TAG }
}

/// `MPI_REQUEST_NULL`: what MPI leaves in a completed non-persistent request.
pub(crate) fn null_request() -> MPI_Request {
    // SAFETY: as `any_source`.
    unsafe { ffi::RSMPI_REQUEST_NULL }
}

/// The raw handle of `comm`'s communicator.
pub(crate) fn comm_handle(comm: &Comm) -> MPI_Comm {
    comm.raw().as_raw()
}

/// The MPI datatype of `T` (predefined, or the committed datatype of a derived
/// `Equivalence`, which lives for the whole program).
pub(crate) fn datatype<T: Equivalence>() -> MPI_Datatype {
    T::equivalent_datatype().as_raw()
}

/// An empty status for MPI to fill.
pub(crate) fn empty_status() -> MPI_Status {
    // SAFETY: `MPI_Status` is a plain C struct of integers: all-zero bytes are a valid value.
    unsafe { MaybeUninit::zeroed().assume_init() }
}

/// Source, tag and element count of a completed receive or probe of `T`s.
pub(crate) fn status_parts<T: Equivalence>(status: &MPI_Status) -> (usize, i32, usize) {
    let mut count: c_int = 0;
    // SAFETY: `status` was filled by MPI for a message of `T`s; `MPI_Get_count` only reads it.
    unsafe { ffi::MPI_Get_count(status, datatype::<T>(), &mut count) };
    (
        usize::try_from(status.MPI_SOURCE).unwrap_or(usize::MAX),
        status.MPI_TAG,
        usize::try_from(count).unwrap_or(0),
    )
}

/// The shape of `MPI_Isend` and `MPI_Send_init`.
type PostSend = unsafe extern "C" fn(
    *const c_void,
    c_int,
    MPI_Datatype,
    c_int,
    c_int,
    MPI_Comm,
    *mut MPI_Request,
) -> c_int;

/// The shape of `MPI_Irecv` and `MPI_Recv_init`.
type PostReceive = unsafe extern "C" fn(
    *mut c_void,
    c_int,
    MPI_Datatype,
    c_int,
    c_int,
    MPI_Comm,
    *mut MPI_Request,
) -> c_int;

/// Calls `post` for `count` `T`s at `data` to or from `peer`, returning the request.
///
/// # Safety
/// As the public wrappers below.
unsafe fn post_send<T: Equivalence>(
    post: PostSend,
    comm: &Comm,
    data: *const T,
    count: c_int,
    peer: c_int,
    tag: c_int,
) -> MPI_Request {
    let mut request = null_request();
    post(
        data.cast::<c_void>(),
        count,
        datatype::<T>(),
        peer,
        tag,
        comm_handle(comm),
        &mut request,
    );
    request
}

/// As [`post_send`], for receives.
///
/// # Safety
/// As the public wrappers below.
unsafe fn post_receive<T: Equivalence>(
    post: PostReceive,
    comm: &Comm,
    data: *mut T,
    count: c_int,
    peer: c_int,
    tag: c_int,
) -> MPI_Request {
    let mut request = null_request();
    post(
        data.cast::<c_void>(),
        count,
        datatype::<T>(),
        peer,
        tag,
        comm_handle(comm),
        &mut request,
    );
    request
}

/// `MPI_Isend` of `count` `T`s at `data`.
///
/// # Safety
/// `data` must point to `count` valid `T`s that stay alive and unmodified until the request
/// completes.
pub(crate) unsafe fn isend<T: Equivalence>(
    comm: &Comm,
    data: *const T,
    count: c_int,
    to: c_int,
    tag: c_int,
) -> MPI_Request {
    post_send(ffi::MPI_Isend, comm, data, count, to, tag)
}

/// `MPI_Irecv` of up to `count` `T`s into `data` (for messages whose length the caller
/// knows, such as halo layers).
///
/// # Safety
/// `data` must point to room for `count` `T`s that stays alive, and is neither read nor
/// written by anyone else, until the request completes.
pub(crate) unsafe fn irecv<T: Equivalence>(
    comm: &Comm,
    data: *mut T,
    count: c_int,
    from: c_int,
    tag: c_int,
) -> MPI_Request {
    post_receive(ffi::MPI_Irecv, comm, data, count, from, tag)
}

/// `MPI_Send_init`: a persistent send, started with [`start_all`].
///
/// # Safety
/// As [`isend`], for every start of the request until it is freed.
pub(crate) unsafe fn send_init<T: Equivalence>(
    comm: &Comm,
    data: *const T,
    count: c_int,
    to: c_int,
    tag: c_int,
) -> MPI_Request {
    post_send(ffi::MPI_Send_init, comm, data, count, to, tag)
}

/// `MPI_Recv_init`: a persistent receive, started with [`start_all`].
///
/// # Safety
/// As [`irecv`], for every start of the request until it is freed.
pub(crate) unsafe fn recv_init<T: Equivalence>(
    comm: &Comm,
    data: *mut T,
    count: c_int,
    from: c_int,
    tag: c_int,
) -> MPI_Request {
    post_receive(ffi::MPI_Recv_init, comm, data, count, from, tag)
}

/// `MPI_Startall` on inactive persistent requests.
pub(crate) fn start_all(requests: &mut [MPI_Request]) {
    if requests.is_empty() {
        return;
    }
    // SAFETY: the requests are persistent requests made by `send_init`/`recv_init`, whose
    // buffers their owner keeps alive while they exist.
    unsafe { ffi::MPI_Startall(requests.len() as c_int, requests.as_mut_ptr()) };
}

/// `MPI_Request_free` on persistent requests that are not active.
pub(crate) fn free_all(requests: &mut [MPI_Request]) {
    for request in requests.iter_mut().filter(|r| **r != null_request()) {
        // SAFETY: an inactive persistent request: freeing it cancels nothing in flight.
        unsafe { ffi::MPI_Request_free(request) };
    }
}

/// `MPI_Waitall`, filling `statuses` (one per request). Returns MPI's error code (0 on
/// success; non-zero only under [`ErrorsReturn`]).
pub(crate) fn wait_all(requests: &mut [MPI_Request], statuses: &mut [MPI_Status]) -> c_int {
    debug_assert_eq!(requests.len(), statuses.len());
    if requests.is_empty() {
        return 0;
    }
    // SAFETY: the arrays have `requests.len()` entries; completed requests are set to null
    // (persistent ones to inactive) by MPI.
    unsafe {
        ffi::MPI_Waitall(
            requests.len() as c_int,
            requests.as_mut_ptr(),
            statuses.as_mut_ptr(),
        )
    }
}

/// `MPI_Testall`: whether every request has completed (then `statuses` are filled), and
/// MPI's error code.
pub(crate) fn test_all(requests: &mut [MPI_Request], statuses: &mut [MPI_Status]) -> (bool, c_int) {
    debug_assert_eq!(requests.len(), statuses.len());
    if requests.is_empty() {
        return (true, 0);
    }
    let mut flag: c_int = 0;
    // SAFETY: as `wait_all`.
    let code = unsafe {
        ffi::MPI_Testall(
            requests.len() as c_int,
            requests.as_mut_ptr(),
            &mut flag,
            statuses.as_mut_ptr(),
        )
    };
    (flag != 0, code)
}

/// `MPI_Probe` (blocking) or `MPI_Iprobe`: the status of the next matching message, which
/// stays queued.
pub(crate) fn probe(comm: &Comm, from: c_int, tag: c_int, blocking: bool) -> Option<MPI_Status> {
    let mut status = empty_status();
    if blocking {
        // SAFETY: MPI fills `status`; nothing else is touched.
        unsafe { ffi::MPI_Probe(from, tag, comm_handle(comm), &mut status) };
        return Some(status);
    }
    let mut flag: c_int = 0;
    // SAFETY: as above.
    unsafe { ffi::MPI_Iprobe(from, tag, comm_handle(comm), &mut flag, &mut status) };
    (flag != 0).then_some(status)
}

/// `MPI_Mprobe` (blocking) or `MPI_Improbe`: the next matching message, taken off the queue
/// for this caller alone (to be received with [`mrecv`]), with its status.
pub(crate) fn matched_probe(
    comm: &Comm,
    from: c_int,
    tag: c_int,
    blocking: bool,
) -> Option<(ffi::MPI_Message, MPI_Status)> {
    let mut status = empty_status();
    // SAFETY: MPI handles are plain C values; MPI writes the message handle.
    let mut message: ffi::MPI_Message = unsafe { MaybeUninit::zeroed().assume_init() };
    if blocking {
        // SAFETY: MPI fills `message` and `status`.
        unsafe { ffi::MPI_Mprobe(from, tag, comm_handle(comm), &mut message, &mut status) };
        return Some((message, status));
    }
    let mut flag: c_int = 0;
    // SAFETY: as above.
    unsafe {
        ffi::MPI_Improbe(
            from,
            tag,
            comm_handle(comm),
            &mut flag,
            &mut message,
            &mut status,
        )
    };
    (flag != 0).then_some((message, status))
}

/// `MPI_Mrecv` of a message from [`matched_probe`] into `count` `T`s at `data` (at least the
/// message's length).
///
/// # Safety
/// `data` must be valid for writing `count` `T`s.
pub(crate) unsafe fn mrecv<T: Equivalence>(
    mut message: ffi::MPI_Message,
    data: *mut T,
    count: c_int,
) {
    let mut status = empty_status();
    ffi::MPI_Mrecv(
        data.cast::<c_void>(),
        count,
        datatype::<T>(),
        &mut message,
        &mut status,
    );
}

/// A buffer address MPI may be given: an empty Rust slice points at `align_of::<T>()` (for
/// bytes, address 1, which is Open MPI's `MPI_IN_PLACE`, so an empty byte buffer would turn a
/// collective into an in-place one and fail with MPI_ERR_ARG); such a pointer becomes the
/// address of a static that MPI never reads or writes (the count is 0).
pub(crate) fn buffer_address<T>(pointer: *const T) -> *mut c_void {
    static SPARE: u64 = 0;
    if pointer as usize == std::mem::align_of::<T>() {
        std::ptr::addr_of!(SPARE).cast_mut().cast::<c_void>()
    } else {
        pointer.cast_mut().cast::<c_void>()
    }
}

/// `MPI_Iallreduce` of `count` `T`s.
///
/// # Safety
/// `send` and `receive` must be valid for `count` `T`s, distinct, and alive (and `receive`
/// untouched) until the request completes.
pub(crate) unsafe fn iallreduce<T: Equivalence>(
    comm: &Comm,
    send: *const T,
    receive: *mut T,
    count: c_int,
    op: MPI_Op,
) -> MPI_Request {
    let mut request = null_request();
    ffi::MPI_Iallreduce(
        buffer_address(send),
        buffer_address(receive),
        count,
        datatype::<T>(),
        op,
        comm_handle(comm),
        &mut request,
    );
    request
}

/// `MPI_Allreduce` of `count` `T`s (blocking; for plans, which skip rsmpi's per-call setup).
///
/// # Safety
/// As [`iallreduce`], for the duration of the call.
pub(crate) unsafe fn allreduce<T: Equivalence>(
    comm: &Comm,
    send: *const T,
    receive: *mut T,
    count: c_int,
    op: MPI_Op,
) {
    ffi::MPI_Allreduce(
        buffer_address(send),
        buffer_address(receive),
        count,
        datatype::<T>(),
        op,
        comm_handle(comm),
    );
}

/// `MPI_Ibcast` of `count` `T`s from `root`.
///
/// # Safety
/// `buffer` must be valid for `count` `T`s and alive (untouched) until the request completes.
pub(crate) unsafe fn ibcast<T: Equivalence>(
    comm: &Comm,
    buffer: *mut T,
    count: c_int,
    root: c_int,
) -> MPI_Request {
    let mut request = null_request();
    ffi::MPI_Ibcast(
        buffer_address(buffer),
        count,
        datatype::<T>(),
        root,
        comm_handle(comm),
        &mut request,
    );
    request
}

/// `MPI_Iallgatherv` (or, with `displacements == None`, `MPI_Iallgather` of `count` each).
///
/// # Safety
/// `send` must hold `count` `T`s and `receive` room for every rank's part at its
/// displacement; both alive (and `receive` untouched) until the request completes; the count
/// arrays must live as long (MPI may read them until completion).
pub(crate) unsafe fn iallgatherv<T: Equivalence>(
    comm: &Comm,
    send: *const T,
    count: c_int,
    receive: *mut T,
    counts_displacements: Option<(*const c_int, *const c_int)>,
) -> MPI_Request {
    let mut request = null_request();
    match counts_displacements {
        None => ffi::MPI_Iallgather(
            buffer_address(send),
            count,
            datatype::<T>(),
            buffer_address(receive),
            count,
            datatype::<T>(),
            comm_handle(comm),
            &mut request,
        ),
        Some((counts, displacements)) => ffi::MPI_Iallgatherv(
            buffer_address(send),
            count,
            datatype::<T>(),
            buffer_address(receive),
            counts,
            displacements,
            datatype::<T>(),
            comm_handle(comm),
            &mut request,
        ),
    };
    request
}

/// `MPI_Ialltoallv` with the given counts and displacements (in elements).
///
/// # Safety
/// As [`iallgatherv`]: buffers and the four count arrays alive until completion.
pub(crate) unsafe fn ialltoallv<T: Equivalence>(
    comm: &Comm,
    send: *const T,
    send_counts: *const c_int,
    send_displacements: *const c_int,
    receive: *mut T,
    receive_counts: *const c_int,
    receive_displacements: *const c_int,
) -> MPI_Request {
    let mut request = null_request();
    ffi::MPI_Ialltoallv(
        buffer_address(send),
        send_counts,
        send_displacements,
        datatype::<T>(),
        buffer_address(receive),
        receive_counts,
        receive_displacements,
        datatype::<T>(),
        comm_handle(comm),
        &mut request,
    );
    request
}
