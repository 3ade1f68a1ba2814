//! Typed collective operations on a [`Comm`](crate::Comm): reductions, broadcasts, gathers and
//! scatters, with equal or uneven counts, that check their arguments on every rank before
//! moving data.
//!
//! | operation | equal counts | uneven counts |
//! |---|---|---|
//! | combine values with [`Op`] or a closure | [`all_reduce`](crate::Comm::all_reduce), [`reduce`](crate::Comm::reduce), [`all_reduce_into`](crate::Comm::all_reduce_into), [`all_reduce_with`](crate::Comm::all_reduce_with), … | — |
//! | root → all, same data | [`broadcast`](crate::Comm::broadcast) (a value or a slice), [`broadcast_vec`](crate::Comm::broadcast_vec) (length known at the root only) | — |
//! | all → root | [`gather`](crate::Comm::gather), [`gather_into`](crate::Comm::gather_into) | [`gather_varcount`](crate::Comm::gather_varcount), [`gather_partitioned`](crate::Comm::gather_partitioned) |
//! | all → all | [`all_gather`](crate::Comm::all_gather), [`all_gather_into`](crate::Comm::all_gather_into) | [`all_gather_varcount`](crate::Comm::all_gather_varcount), [`all_gather_partitioned`](crate::Comm::all_gather_partitioned) |
//! | all → all, a part for each | — | [`all_to_all_varcount`](crate::Comm::all_to_all_varcount) |
//! | root → all, a part each | [`scatter`](crate::Comm::scatter), [`scatter_into`](crate::Comm::scatter_into) | [`scatter_varcount`](crate::Comm::scatter_varcount), [`scatter_partitioned`](crate::Comm::scatter_partitioned) |
//!
//! Names follow rsmpi: `_into` writes into the caller's buffer; `_varcount` is for uneven
//! counts, exchanged for you (one small collective) and returned with the data as a
//! [`Varcount`]; `_partitioned` takes the counts from a [`Partition`](crate::partition::Partition)
//! every rank already knows; `_with` takes a closure.
//!
//! # Errors are the same on every rank
//! Collectives deadlock or corrupt memory when ranks pass inconsistent arguments. Each helper
//! therefore validates first: its own arguments (root in range, receive buffer of the right
//! size, lengths divisible by the number of ranks, counts that fit MPI's `i32`), and, with
//! [agreement checks](crate::Comm::unchecked) on (the default), that all ranks agree on
//! the values that must match: root, lengths, reduction, the element type, and which
//! operation they are in at all. That check is one `MPI_Allreduce` of 17 `i64`s; when it
//! finds a problem on any rank, every rank returns an [`Error`] with the same kind and
//! message, naming the rank at fault (for a disagreement: every rank's value, e.g.
//! `"ranks disagree on the length: ranks 0-1 have 8; rank 2 has 9"`).
//!
//! | bad input | error kind |
//! |---|---|
//! | root ≥ number of ranks | [`InvalidRoot`](crate::ErrorKind::InvalidRoot) |
//! | ranks pass different roots, lengths, reductions or element types, or call different collectives | [`Disagreement`](crate::ErrorKind::Disagreement) |
//! | receive buffer of the wrong length, send/receive lengths differ | [`BufferSize`](crate::ErrorKind::BufferSize) |
//! | root's data not divisible by the number of ranks (equal-count scatter) | [`NotDivisible`](crate::ErrorKind::NotDivisible) |
//! | a count or displacement above `i32::MAX` | [`CountOverflow`](crate::ErrorKind::CountOverflow) |
//! | a partition for another number of ranks or another length | [`InvalidPartition`](crate::ErrorKind::InvalidPartition) |
//!
//! The full list of bad inputs, with what each gives, is in [`crate::error`].
//!
//! A send buffer cannot be its own receive buffer: Rust refuses the aliasing at compile time.
//!
//! ```compile_fail
//! # fn f(world: &spmd::Comm) -> spmd::Result<()> {
//! let mut buffer = vec![1.0_f64; 4];
//! // error[E0502]: cannot borrow `buffer` as mutable because it is also borrowed as immutable
//! world.all_reduce_into(&buffer, &mut buffer, spmd::Op::Sum)?;
//! # Ok(())
//! # }
//! ```
//!
//! With two buffers it compiles:
//!
//! ```no_run
//! # fn f(world: &spmd::Comm) -> spmd::Result<()> {
//! let send = vec![1.0_f64; 4];
//! let mut receive = vec![0.0_f64; 4];
//! world.all_reduce_into(&send, &mut receive, spmd::Op::Sum)?;
//! # Ok(())
//! # }
//! ```
//!
//! Operations whose arguments cannot disagree (a scalar [`all_reduce`](crate::Comm::all_reduce))
//! skip the check and cost exactly the MPI call; they are also the calls a mismatch with
//! another collective cannot be caught in. The `*_varcount` forms exchange counts anyway and
//! check the counts in that exchange, with or without agreement checks.
//!
//! # Floating point
//! `Sum` and `Prod` of floats depend on the order MPI combines ranks in, which may change with
//! the number of ranks: results agree to rounding, not bit for bit (for bit-identical sums see
//! [`crate::exact`]). `Min` and `Max` of floats propagate NaN: if any rank's value (or any
//! element, for slices) is NaN, the result is NaN, whichever rank holds it — unlike MPI's own
//! `MPI_MIN`/`MPI_MAX`, whose answer with NaN depends on the MPI library and the order ranks
//! are combined in (Open MPI at 4 ranks: max of {1, 2, NaN, 4} = 2). They run as a
//! commutative user operation, which costs the same as MPI's at small sizes and more at large
//! ones (measured in the performance docs).

mod alltoall;
mod broadcast;
mod carry;
mod check;
mod gather;
mod immediate;
mod raw_op;
mod reduce;
mod scatter;
mod varcount;

/// `len` default values in a buffer that is a real allocation even when empty: an empty
/// `Vec` of bytes points at address 1, Open MPI's `MPI_IN_PLACE` (see
/// `comm::ffi::buffer_address`, the same guard for the library's own MPI calls).
/// `slice`, or, when it is empty and its elements are bytes-aligned, an empty slice at a
/// real address: an empty slice of an align-1 type points at address 1, Open MPI's
/// `MPI_IN_PLACE`, which turns a broadcast, gather or scatter into an in-place one (and fails
/// with MPI_ERR_ARG). For the calls that go through rsmpi.
pub(crate) fn never_in_place<T>(slice: &[T]) -> &[T] {
    static SPARE: u8 = 0;
    if slice.is_empty() && std::mem::align_of::<T>() == 1 {
        // SAFETY: an empty slice needs only a non-null, aligned pointer (align 1 here); no
        // byte of SPARE is read through it.
        return unsafe { std::slice::from_raw_parts(std::ptr::addr_of!(SPARE).cast::<T>(), 0) };
    }
    slice
}

/// [`never_in_place`] for a buffer MPI writes.
pub(crate) fn never_in_place_mut<T>(slice: &mut [T]) -> &mut [T] {
    static mut SPARE: u8 = 0;
    if slice.is_empty() && std::mem::align_of::<T>() == 1 {
        // SAFETY: an empty slice needs only a non-null, aligned pointer (align 1 here); no
        // byte of SPARE is read or written through it, so empty slices made from it on
        // several threads at once alias nothing.
        return unsafe {
            std::slice::from_raw_parts_mut(std::ptr::addr_of_mut!(SPARE).cast::<T>(), 0)
        };
    }
    slice
}

pub(crate) fn mpi_buffer<T: Clone + Default>(len: usize) -> Vec<T> {
    let mut buffer = Vec::with_capacity(len.max(1));
    buffer.resize(len, T::default());
    buffer
}

pub use broadcast::BufferMut;
pub(crate) use check::{
    as_field, fingerprint, shape_key, ElementType, Field, Preflight, ShapeText,
};
pub use immediate::AllReducePlan;
pub use varcount::Varcount;

use mpi::collective::SystemOperation;
use mpi::datatype::Equivalence;

use crate::error::{Error, ErrorKind, Result};

impl crate::comm::Comm {
    /// `bytes` on the root, 0 elsewhere: what only the root sends or receives.
    pub(crate) fn root_bytes(&self, root: usize, bytes: usize) -> usize {
        if self.rank() == root {
            bytes
        } else {
            0
        }
    }

    /// `bytes` sent by every rank plus the same again received on the root.
    pub(crate) fn root_doubles(&self, root: usize, bytes: usize) -> usize {
        bytes + self.root_bytes(root, bytes)
    }
}

/// A number that MPI's predefined reductions work on: the primitive integers and floats.
///
/// Sealed: MPI defines `MPI_SUM`, `MPI_MIN`, … only for its built-in types. For your own
/// types (anything that implements [`Equivalence`]) use the closure reductions such as
/// [`Comm::all_reduce_with`](crate::Comm::all_reduce_with).
pub trait Number:
    Equivalence
    + num_traits::Num
    + num_traits::NumCast
    + Copy
    + PartialOrd
    + Send
    + Sync
    + std::fmt::Debug
    + 'static
    + sealed::Sealed
{
    /// Whether the type is a float, whose `Min` and `Max` must propagate NaN.
    #[doc(hidden)]
    const FLOAT: bool;
}

mod sealed {
    pub trait Sealed {}
}

macro_rules! numbers {
    ($float:expr => $($t:ty),*) => {$(
        impl sealed::Sealed for $t {}
        impl Number for $t {
            const FLOAT: bool = $float;
        }
    )*};
}
numbers!(false => i8, i16, i32, i64, isize, u8, u16, u32, u64, usize);
numbers!(true => f32, f64);

/// A predefined reduction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// Sum.
    Sum,
    /// Product.
    Prod,
    /// Minimum.
    Min,
    /// Maximum.
    Max,
}

impl Op {
    pub(crate) fn system(self) -> SystemOperation {
        match self {
            Op::Sum => SystemOperation::sum(),
            Op::Prod => SystemOperation::product(),
            Op::Min => SystemOperation::min(),
            Op::Max => SystemOperation::max(),
        }
    }

    /// A number for the agreement check.
    pub(crate) fn code(self) -> i64 {
        self as i64
    }

    /// The reduction's name, as in messages.
    pub fn name(self) -> &'static str {
        match self {
            Op::Sum => "Sum",
            Op::Prod => "Prod",
            Op::Min => "Min",
            Op::Max => "Max",
        }
    }

    /// Applies the reduction to two values (the serial reference of the MPI operation).
    /// `Min` and `Max` of floats give NaN if either value is NaN, as the collectives do.
    pub fn apply<T: Number>(self, a: T, b: T) -> T {
        #[allow(clippy::eq_op)]
        let nan = |x: T| x != x;
        match self {
            Op::Sum => a + b,
            Op::Prod => a * b,
            Op::Min | Op::Max if nan(a) => a,
            Op::Min | Op::Max if nan(b) => b,
            Op::Min => {
                if b < a {
                    b
                } else {
                    a
                }
            }
            Op::Max => {
                if b > a {
                    b
                } else {
                    a
                }
            }
        }
    }

    /// Whether this reduction on `T` needs the NaN-propagating operation instead of MPI's
    /// (whose `MPI_MIN`/`MPI_MAX` with NaN depend on the MPI library and the rank order).
    pub(crate) fn propagates_nan<T: Number>(self) -> bool {
        T::FLOAT && matches!(self, Op::Min | Op::Max)
    }
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// `n` as an MPI count.
///
/// # Errors
/// [`ErrorKind::CountOverflow`] when `n > i32::MAX`.
pub(crate) fn mpi_count(n: usize, op: &str, what: &str) -> Result<i32> {
    i32::try_from(n).map_err(|_| {
        Error::new(
            ErrorKind::CountOverflow,
            format!(
                "{op}: {what} is {n} elements, more than MPI's limit of {} (i32::MAX) per \
                 call; split the data into smaller pieces",
                i32::MAX
            ),
        )
    })
}

/// MPI counts and displacements (packed in rank order) for per-rank `counts`.
///
/// # Errors
/// [`ErrorKind::CountOverflow`] when a count or the total exceeds `i32::MAX`.
pub(crate) fn counts_and_displacements(counts: &[usize], op: &str) -> Result<(Vec<i32>, Vec<i32>)> {
    let mut mpi_counts = Vec::with_capacity(counts.len());
    for (rank, &count) in counts.iter().enumerate() {
        mpi_counts.push(mpi_count(count, op, &format!("the count of rank {rank}"))?);
    }
    // Every displacement is at most the total, so checking the total covers them all.
    mpi_count(counts.iter().sum(), op, "the total over all ranks")?;
    let displacements = mpi_counts
        .iter()
        .scan(0, |start, &count| {
            let here = *start;
            *start += count;
            Some(here)
        })
        .collect();
    Ok((mpi_counts, displacements))
}

/// The error for a root outside the communicator, if `root` is one.
pub(crate) fn check_root(root: usize, size: usize, op: &str) -> Option<Error> {
    (root >= size).then(|| {
        Error::new(
            ErrorKind::InvalidRoot,
            format!("{op}: root {root} is out of range for a communicator of {size} ranks (valid: 0..{size})"),
        )
    })
}

/// The error for a buffer of `found` elements where `expected` are needed.
pub(crate) fn buffer_size_error(op: &str, what: &str, expected: usize, found: usize) -> Error {
    Error::new(
        ErrorKind::BufferSize,
        format!("{op}: {what} has {found} elements, expected {expected}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_displacements_pack_in_rank_order() {
        let (c, d) = counts_and_displacements(&[3, 0, 2, 5], "t").unwrap();
        assert_eq!(c, vec![3, 0, 2, 5]);
        assert_eq!(d, vec![0, 3, 3, 5]);
    }

    #[test]
    fn counts_over_i32_are_refused() {
        let big = i32::MAX as usize;
        let e = counts_and_displacements(&[big + 1], "gatherv").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::CountOverflow);
        assert!(e.message().contains("2147483648"), "{e}");
        // Each count fits, the total does not.
        let e = counts_and_displacements(&[big, 1], "gatherv").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::CountOverflow);
        assert!(counts_and_displacements(&[big - 1, 1], "gatherv").is_ok());
    }

    #[test]
    fn op_apply_matches_arithmetic() {
        assert_eq!(Op::Sum.apply(2, 3), 5);
        assert_eq!(Op::Prod.apply(2.0, 3.5), 7.0);
        assert_eq!(Op::Min.apply(-1_i64, 4), -1);
        assert_eq!(Op::Max.apply(7_u8, 4), 7);
        for op in [Op::Min, Op::Max] {
            assert!(op.apply(f64::NAN, 1.0).is_nan() && op.apply(1.0, f64::NAN).is_nan());
            assert!(op.apply(f32::NAN, f32::INFINITY).is_nan());
            assert!(op.propagates_nan::<f64>() && !op.propagates_nan::<i32>());
        }
        assert!(!Op::Sum.propagates_nan::<f64>());
    }

    #[test]
    fn root_out_of_range_is_described() {
        let e = check_root(4, 4, "reduce").unwrap();
        assert_eq!(e.kind(), ErrorKind::InvalidRoot);
        assert!(e.message().contains("root 4"), "{e}");
        assert!(check_root(3, 4, "reduce").is_none());
    }
}
