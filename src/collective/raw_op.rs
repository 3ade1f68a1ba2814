//! A reduction as a raw `MPI_Op` for the non-blocking and persistent forms, which call MPI
//! through [`crate::comm::ffi`] rather than rsmpi.

use std::mem::MaybeUninit;
use std::os::raw::{c_int, c_void};

use mpi::ffi::{MPI_Datatype, MPI_Op};
use mpi::raw::AsRaw;

use super::{Number, Op};

/// A predefined or NaN-propagating reduction as a raw `MPI_Op`, freed on drop (MPI lets a
/// freed operation finish the reductions already posted with it).
pub(crate) struct RawOp {
    op: MPI_Op,
    owned: bool,
}

impl RawOp {
    pub(crate) fn new<T: Number>(op: Op) -> RawOp {
        if !op.propagates_nan::<T>() {
            return RawOp {
                op: op.system().as_raw(),
                owned: false,
            };
        }
        let function: mpi::ffi::MPI_User_function = Some(match op {
            Op::Min => nan_aware::<T, 0>,
            _ => nan_aware::<T, 1>,
        });
        // SAFETY: MPI handles are plain C values; `MPI_Op_create` writes one.
        let mut handle: MPI_Op = unsafe { MaybeUninit::zeroed().assume_init() };
        // SAFETY: `function` is a commutative element-wise reduction of `T`s, valid for the
        // whole program.
        unsafe { mpi::ffi::MPI_Op_create(function, 1, &mut handle) };
        RawOp {
            op: handle,
            owned: true,
        }
    }

    pub(crate) fn handle(&self) -> MPI_Op {
        self.op
    }
}

impl Drop for RawOp {
    fn drop(&mut self) {
        if self.owned {
            // SAFETY: an operation made by `MPI_Op_create`; pending reductions keep using it.
            unsafe { mpi::ffi::MPI_Op_free(&mut self.op) };
        }
    }
}

/// The NaN-propagating `Min` (`MAX == 0`) or `Max` of `T`s, as an MPI user function:
/// `inout[i] = in[i] op inout[i]`.
unsafe extern "C" fn nan_aware<T: Number, const MAX: u8>(
    input: *mut c_void,
    inout: *mut c_void,
    len: *mut c_int,
    _datatype: *mut MPI_Datatype,
) {
    let op = if MAX == 0 { Op::Min } else { Op::Max };
    let n = usize::try_from(*len).unwrap_or(0);
    // SAFETY: MPI passes two distinct buffers of `len` elements of the datatype the reduction
    // was posted with, which is `T`'s.
    let (input, inout) = unsafe {
        (
            std::slice::from_raw_parts(input as *const T, n),
            std::slice::from_raw_parts_mut(inout as *mut T, n),
        )
    };
    for (a, b) in input.iter().zip(inout.iter_mut()) {
        *b = op.apply(*a, *b);
    }
}
