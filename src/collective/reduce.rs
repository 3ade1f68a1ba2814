//! Reductions: `all_reduce`, `reduce` and their slice and closure forms.

use mpi::collective::{CommunicatorCollectives, Root, UserOperation};
use mpi::datatype::Equivalence;
use mpi::topology::Communicator;

use super::check::{ElementType, Field, Preflight};
use super::{buffer_size_error, check_root, mpi_count, Number, Op};
use crate::comm::Comm;
use crate::error::Result;
use std::mem::{size_of, size_of_val};

impl Comm {
    /// Combines one value from every rank with `op`; every rank gets the result.
    ///
    /// Communication: one `MPI_Allreduce`; nothing can disagree, so no agreement check runs.
    ///
    /// ```no_run
    /// # let spmd = spmd::Spmd::init().unwrap();
    /// let world = spmd.world();
    /// let largest = world.all_reduce(world.rank(), spmd::Op::Max);
    /// assert_eq!(largest, world.size() - 1);
    /// ```
    pub fn all_reduce<T: Number>(&self, value: T, op: Op) -> T {
        let _timer = self.timed("all_reduce", 2 * size_of::<T>());
        let mut result = value;
        if op.propagates_nan::<T>() {
            let combine = |a: T, b: T| op.apply(a, b);
            let nan_aware = elementwise_op(&combine, true);
            self.raw().all_reduce_into(&value, &mut result, &nan_aware);
        } else {
            self.raw().all_reduce_into(&value, &mut result, op.system());
        }
        result
    }

    /// Element-wise [`all_reduce`](Self::all_reduce) of `send` into `recv`.
    ///
    /// Communication: agreement check + one `MPI_Allreduce` of `send.len()` elements.
    ///
    /// # Errors
    /// `BufferSize` if `recv.len() != send.len()`; `Disagreement` if ranks pass different
    /// lengths, operations or element types; `CountOverflow` above `i32::MAX` elements.
    pub fn all_reduce_into<T: Number>(&self, send: &[T], recv: &mut [T], op: Op) -> Result<()> {
        self.all_reduce_named("all_reduce_into", send, recv, op)
    }

    /// Element-wise [`all_reduce`](Self::all_reduce) of a slice, returning a new vector.
    ///
    /// # Errors
    /// As [`all_reduce_into`](Self::all_reduce_into).
    pub fn all_reduce_slice<T: Number>(&self, send: &[T], op: Op) -> Result<Vec<T>> {
        let mut recv = send.to_vec();
        self.all_reduce_named("all_reduce_slice", send, &mut recv, op)?;
        Ok(recv)
    }

    fn all_reduce_named<T: Number>(
        &self,
        name: &'static str,
        send: &[T],
        recv: &mut [T],
        op: Op,
    ) -> Result<()> {
        let _timer = self.timed(name, 2 * size_of_val(send));
        let local_error = if recv.len() != send.len() {
            Some(buffer_size_error(
                name,
                "the receive buffer",
                send.len(),
                recv.len(),
            ))
        } else {
            mpi_count(send.len(), name, "the buffer").err()
        };
        self.preflight(Preflight {
            op: name,
            element: Some(ElementType::of::<T>()),
            local_error,
            agree: &[
                Field::number("the length", &send.len()),
                Field::keyed("the reduction", op.code(), &op),
            ],
        })?;
        if op.propagates_nan::<T>() {
            let combine = |a: T, b: T| op.apply(a, b);
            let nan_aware = elementwise_op(&combine, true);
            self.raw().all_reduce_into(send, recv, &nan_aware);
        } else {
            self.raw().all_reduce_into(send, recv, op.system());
        }
        Ok(())
    }

    /// Combines one value from every rank with `op`; only `root` gets the result (`Some`),
    /// the other ranks get `None`.
    ///
    /// Communication: agreement check + one `MPI_Reduce`.
    ///
    /// # Errors
    /// `InvalidRoot` if `root >= size()`; `Disagreement` if ranks pass different roots,
    /// operations or element types.
    pub fn reduce<T: Number>(&self, root: usize, value: T, op: Op) -> Result<Option<T>> {
        Ok(self
            .reduce_named("reduce", root, std::slice::from_ref(&value), op)?
            .map(|v| v[0]))
    }

    /// Element-wise [`reduce`](Self::reduce) of a slice to `root`.
    ///
    /// # Errors
    /// As [`reduce`](Self::reduce), plus `Disagreement` on lengths and `CountOverflow`.
    pub fn reduce_slice<T: Number>(
        &self,
        root: usize,
        send: &[T],
        op: Op,
    ) -> Result<Option<Vec<T>>> {
        self.reduce_named("reduce_slice", root, send, op)
    }

    fn reduce_named<T: Number>(
        &self,
        name: &'static str,
        root: usize,
        send: &[T],
        op: Op,
    ) -> Result<Option<Vec<T>>> {
        let _timer = self.timed(name, self.root_doubles(root, size_of_val(send)));
        let local_error = check_root(root, self.size(), name)
            .or_else(|| mpi_count(send.len(), name, "the buffer").err());
        self.preflight(Preflight {
            op: name,
            element: Some(ElementType::of::<T>()),
            local_error,
            agree: &[
                Field::number("the root", &root),
                Field::number("the length", &send.len()),
                Field::keyed("the reduction", op.code(), &op),
            ],
        })?;
        let root_process = self.raw().process_at_rank(root as i32);
        let combine = |a: T, b: T| op.apply(a, b);
        let nan_aware = op
            .propagates_nan::<T>()
            .then(|| elementwise_op(&combine, true));
        if self.rank() == root {
            let mut recv = send.to_vec();
            match &nan_aware {
                Some(user) => root_process.reduce_into_root(send, &mut recv[..], user),
                None => root_process.reduce_into_root(send, &mut recv[..], op.system()),
            }
            Ok(Some(recv))
        } else {
            match &nan_aware {
                Some(user) => root_process.reduce_into(send, user),
                None => root_process.reduce_into(send, op.system()),
            }
            Ok(None)
        }
    }

    /// Combines one value of any MPI type from every rank with the closure `combine`, which
    /// must be associative; ranks are combined in rank order
    /// (`combine(combine(x0, x1), x2) …`), so it need not be commutative.
    ///
    /// Communication: one `MPI_Allreduce` with a user operation. A panic inside `combine`
    /// aborts the whole job.
    pub fn all_reduce_with<T, F>(&self, value: T, combine: F) -> T
    where
        T: Equivalence + Copy,
        F: Fn(T, T) -> T + Sync,
    {
        let _timer = self.timed("all_reduce_with", 2 * size_of::<T>());
        let op = elementwise_op(&combine, false);
        let mut result = value;
        self.raw().all_reduce_into(&value, &mut result, &op);
        result
    }

    /// Element-wise [`all_reduce_with`](Self::all_reduce_with) of a slice.
    ///
    /// # Errors
    /// `Disagreement` if ranks pass different lengths or element types; `CountOverflow`
    /// above `i32::MAX`.
    pub fn all_reduce_slice_with<T, F>(&self, send: &[T], combine: F) -> Result<Vec<T>>
    where
        T: Equivalence + Copy,
        F: Fn(T, T) -> T + Sync,
    {
        const OP: &str = "all_reduce_slice_with";
        let _timer = self.timed(OP, 2 * size_of_val(send));
        self.preflight(Preflight {
            op: OP,
            element: Some(ElementType::of::<T>()),
            local_error: mpi_count(send.len(), OP, "the buffer").err(),
            agree: &[Field::number("the length", &send.len())],
        })?;
        let op = elementwise_op(&combine, false);
        let mut recv = send.to_vec();
        self.raw().all_reduce_into(send, &mut recv[..], &op);
        Ok(recv)
    }

    /// [`all_reduce_with`](Self::all_reduce_with) whose result only `root` gets.
    ///
    /// # Errors
    /// `InvalidRoot` if `root >= size()`; `Disagreement` if ranks pass different roots or
    /// element types.
    pub fn reduce_with<T, F>(&self, root: usize, value: T, combine: F) -> Result<Option<T>>
    where
        T: Equivalence + Copy,
        F: Fn(T, T) -> T + Sync,
    {
        const OP: &str = "reduce_with";
        let _timer = self.timed(OP, self.root_doubles(root, size_of::<T>()));
        self.preflight(Preflight {
            op: OP,
            element: Some(ElementType::of::<T>()),
            local_error: check_root(root, self.size(), OP),
            agree: &[Field::number("the root", &root)],
        })?;
        let op = elementwise_op(&combine, false);
        let root_process = self.raw().process_at_rank(root as i32);
        if self.rank() == root {
            let mut result = value;
            root_process.reduce_into_root(&value, &mut result, &op);
            Ok(Some(result))
        } else {
            root_process.reduce_into(&value, &op);
            Ok(None)
        }
    }
}

/// An MPI user operation applying `combine` element by element: `inout[i] = combine(in[i],
/// inout[i])`. `commutative` lets MPI combine ranks in any order (faster algorithms); without
/// it ranks are combined in rank order.
fn elementwise_op<'a, T, F>(combine: &'a F, commutative: bool) -> UserOperation<'a>
where
    T: Equivalence + Copy,
    F: Fn(T, T) -> T + Sync,
{
    let apply = move |input: mpi::datatype::DynBuffer<'_>,
                      inout: mpi::datatype::DynBufferMut<'_>| {
        let input = input
            .downcast::<T>()
            .expect("MPI passed the reduction a buffer of another type");
        let inout = inout
            .downcast::<T>()
            .expect("MPI passed the reduction a buffer of another type");
        for (left, right) in input.iter().zip(inout.iter_mut()) {
            *right = combine(*left, *right);
        }
    };
    if commutative {
        UserOperation::commutative(apply)
    } else {
        UserOperation::associative(apply)
    }
}
