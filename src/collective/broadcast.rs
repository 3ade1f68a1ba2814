//! Broadcasts from one root: a value or a slice of known length, a vector whose length only
//! the root knows.

use mpi::collective::Root;
use mpi::datatype::Equivalence;
use mpi::topology::Communicator;

use super::carry;
use super::check::{ElementType, Field, Preflight};
use super::{check_root, mpi_count};
use crate::comm::Comm;
use crate::error::{Error, Result};
use std::mem::size_of_val;

/// A buffer a collective writes into: one value of an MPI type, or a slice of them (as in
/// rsmpi). A `Vec` is passed as a slice: `&mut v[..]`.
pub trait BufferMut {
    /// The element type MPI moves.
    type Element: Equivalence;
    /// The buffer as elements.
    fn as_elements_mut(&mut self) -> &mut [Self::Element];
}

impl<T: Equivalence> BufferMut for T {
    type Element = T;
    fn as_elements_mut(&mut self) -> &mut [T] {
        std::slice::from_mut(self)
    }
}

impl<T: Equivalence> BufferMut for [T] {
    type Element = T;
    fn as_elements_mut(&mut self) -> &mut [T] {
        self
    }
}

impl Comm {
    /// Copies the root's `buffer` into every rank's `buffer`: one value or a slice of the same
    /// length on every rank.
    ///
    /// ```no_run
    /// # fn f(world: &spmd::Comm) -> spmd::Result<()> {
    /// let mut step = if world.rank() == 0 { 0.125 } else { 0.0 };
    /// world.broadcast(0, &mut step)?; // a value
    /// let mut weights = vec![0.0_f64; 64];
    /// world.broadcast(0, &mut weights[..])?; // a slice
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Communication: agreement check + one `MPI_Bcast`; up to 64 bytes of primitive numbers
    /// travel inside the check's reduction instead (one collective in all).
    ///
    /// # Errors
    /// `InvalidRoot`; `Disagreement` on the root, the length or the element type;
    /// `CountOverflow`.
    pub fn broadcast<B: BufferMut + ?Sized>(&self, root: usize, buffer: &mut B) -> Result<()> {
        const OP: &str = "broadcast";
        let buffer = buffer.as_elements_mut();
        let _timer = self.timed(OP, size_of_val(buffer));
        let local_error = check_root(root, self.size(), OP)
            .or_else(|| mpi_count(buffer.len(), OP, "the buffer").err());
        // Up to 64 bytes of plain numbers ride in the check itself (see `carry`).
        let slot = carry::slots::<B::Element>(buffer.len(), 1);
        let mut payload = carry::NO_CARRY;
        if slot.is_some() && self.rank() == root {
            carry::pack(buffer, &mut payload, 0);
        }
        let carried = self.preflight_carrying(
            Preflight {
                op: OP,
                element: Some(ElementType::of::<B::Element>()),
                local_error,
                agree: &[
                    Field::number("the root", &root),
                    Field::number("the length", &buffer.len()),
                ],
            },
            payload,
        )?;
        match (carried, slot) {
            (Some(words), Some(_)) => {
                if self.rank() != root {
                    carry::unpack(&words, 0, buffer);
                }
            }
            _ => self
                .raw()
                .process_at_rank(root as i32)
                .broadcast_into(super::never_in_place_mut(buffer)),
        }
        Ok(())
    }

    /// Makes every rank's `data` a copy of the root's, whatever its length; only the root
    /// needs to know the length (other ranks may pass an empty vector, whose capacity is
    /// reused).
    ///
    /// Communication: agreement check on the root and element type + a broadcast of the
    /// length (which also carries the root's errors) + one `MPI_Bcast` of the data.
    ///
    /// # Errors
    /// `InvalidRoot`; `Disagreement` on the root or element type; `CountOverflow` if the
    /// root's vector has more than `i32::MAX` elements.
    pub fn broadcast_vec<T>(&self, root: usize, data: &mut Vec<T>) -> Result<()>
    where
        T: Equivalence + Copy + Default,
    {
        const OP: &str = "broadcast_vec";
        let mut timer = self.timed(OP, 0);
        self.agree_on_root(OP, Some(ElementType::of::<T>()), root)?;
        let root_error = (self.rank() == root)
            .then(|| mpi_count(data.len(), OP, "the root's vector").err())
            .flatten();
        let [len] = self.announce_from_root(root, [data.len()], root_error)?;
        data.resize(len, T::default());
        timer.add_bytes(size_of_val(&data[..]));
        // Every rank knows the length now; Open MPI refuses a zero-count broadcast of an
        // empty vector's dangling pointer (MPI_ERR_ARG), so an empty one moves nothing.
        if len > 0 {
            self.raw()
                .process_at_rank(root as i32)
                .broadcast_into(&mut data[..]);
        }
        Ok(())
    }

    /// Validates `root` and, with agreement checks on, that all ranks pass the same one.
    pub(crate) fn agree_on_root(
        &self,
        op: &'static str,
        element: Option<ElementType>,
        root: usize,
    ) -> Result<()> {
        self.preflight(Preflight {
            op,
            element,
            local_error: check_root(root, self.size(), op),
            agree: &[Field::number("the root", &root)],
        })
    }

    /// Broadcasts `values` (read on the root only) together with the root's argument error,
    /// so that a root-side error becomes the same error on every rank even with agreement
    /// checks off. `root` must be valid and agreed.
    pub(crate) fn announce_from_root<const N: usize>(
        &self,
        root: usize,
        values: [usize; N],
        root_error: Option<Error>,
    ) -> Result<[usize; N]> {
        // [the root's encoded error, values...] in one message.
        let mut header = vec![0_i64; N + 1];
        if self.rank() == root {
            header[0] = self.encode_error(root_error.as_ref());
            for (slot, value) in header[1..].iter_mut().zip(values) {
                *slot = super::as_field(value);
            }
        }
        self.raw()
            .process_at_rank(root as i32)
            .broadcast_into(&mut header[..]);
        if header[0] >= 0 {
            return Err(self.error_from_encoded(header[0], root_error.as_ref()));
        }
        let mut announced = [0_usize; N];
        for (slot, &value) in announced.iter_mut().zip(&header[1..]) {
            *slot = value as usize;
        }
        Ok(announced)
    }
}
