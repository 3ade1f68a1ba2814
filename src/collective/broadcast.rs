//! Broadcasts from one root: a value, a slice of known length, a vector whose length only
//! the root knows.

use mpi::collective::Root;
use mpi::datatype::Equivalence;
use mpi::topology::Communicator;

use super::check::{as_field, Preflight};
use super::{check_root, mpi_count};
use crate::comm::Comm;
use crate::error::{Error, Result};
use std::mem::{size_of, size_of_val};

impl Comm {
    /// Copies the root's `value` to every rank.
    ///
    /// Communication: agreement check on the root + one `MPI_Bcast`.
    ///
    /// # Errors
    /// `InvalidRoot`; `Disagreement` if ranks pass different roots.
    pub fn broadcast<T: Equivalence>(&self, root: usize, value: &mut T) -> Result<()> {
        let _timer = self.timed("broadcast", size_of::<T>());
        self.agree_on_root("broadcast", root)?;
        self.raw()
            .process_at_rank(root as i32)
            .broadcast_into(value);
        Ok(())
    }

    /// Copies the root's `buffer` into every rank's `buffer` of the same length.
    ///
    /// Communication: agreement check + one `MPI_Bcast`.
    ///
    /// # Errors
    /// `InvalidRoot`; `Disagreement` on the root or the length; `CountOverflow`.
    pub fn broadcast_into<T: Equivalence>(&self, root: usize, buffer: &mut [T]) -> Result<()> {
        const OP: &str = "broadcast_into";
        let _timer = self.timed(OP, size_of_val(buffer));
        let local_error = check_root(root, self.size(), OP)
            .or_else(|| mpi_count(buffer.len(), OP, "the buffer").err());
        self.preflight(Preflight {
            op: OP,
            local_error,
            agree: &[
                ("the root", as_field(root)),
                ("the length", as_field(buffer.len())),
            ],
        })?;
        self.raw()
            .process_at_rank(root as i32)
            .broadcast_into(buffer);
        Ok(())
    }

    /// Makes every rank's `data` a copy of the root's, whatever its length; only the root
    /// needs to know the length (other ranks may pass an empty vector).
    ///
    /// Communication: agreement check on the root + a broadcast of the length (which also
    /// carries the root's errors) + one `MPI_Bcast` of the data.
    ///
    /// # Errors
    /// `InvalidRoot`; `Disagreement` on the root; `CountOverflow` if the root's vector has
    /// more than `i32::MAX` elements.
    pub fn broadcast_vec<T>(&self, root: usize, data: &mut Vec<T>) -> Result<()>
    where
        T: Equivalence + Copy + Default,
    {
        const OP: &str = "broadcast_vec";
        let mut timer = self.timed(OP, 0);
        self.agree_on_root(OP, root)?;
        let root_error = (self.rank() == root)
            .then(|| mpi_count(data.len(), OP, "the root's vector").err())
            .flatten();
        let [len] = self.announce_from_root(root, [data.len()], root_error)?;
        data.resize(len, T::default());
        timer.add_bytes(size_of_val(&data[..]));
        self.raw()
            .process_at_rank(root as i32)
            .broadcast_into(&mut data[..]);
        Ok(())
    }

    /// Validates `root` and, with agreement checks on, that all ranks pass the same one.
    pub(crate) fn agree_on_root(&self, op: &'static str, root: usize) -> Result<()> {
        self.preflight(Preflight {
            op,
            local_error: check_root(root, self.size(), op),
            agree: &[("the root", as_field(root))],
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
                *slot = as_field(value);
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
