//! Scatters from one root, with equal or uneven counts.

use mpi::collective::Root;
use mpi::datatype::{Equivalence, Partition as MpiPartition};
use mpi::topology::Communicator;

use super::carry;
use super::check::{as_field, ElementType, Field, Preflight};
use super::gather::PartitionValues;
use super::{buffer_size_error, check_root, counts_and_displacements, mpi_count};
use crate::comm::Comm;
use crate::error::{Error, ErrorKind, Result};
use crate::partition::Partition;
use std::mem::size_of_val;

impl Comm {
    /// Splits the root's `send` into `size()` equal parts and gives part `r` to rank `r`.
    /// Only the root's `send` is read (other ranks pass `&[]`); every rank learns the part
    /// length from the root.
    ///
    /// Communication: agreement check on the root + a broadcast of the part length (which
    /// also carries the root's argument errors) + one `MPI_Scatter`.
    ///
    /// # Errors
    /// `InvalidRoot`; `Disagreement` on the root; `NotDivisible` if the root's data does not
    /// split into `size()` equal parts (use [`scatter_varcount`](Self::scatter_varcount));
    /// `CountOverflow`.
    pub fn scatter<T>(&self, root: usize, send: &[T]) -> Result<Vec<T>>
    where
        T: Equivalence + Copy + Default,
    {
        const OP: &str = "scatter";
        let mut timer = self.timed(OP, self.root_bytes(root, size_of_val(send)));
        self.agree_on_root(OP, Some(ElementType::of::<T>()), root)?;
        let root_error = (self.rank() == root)
            .then(|| self.check_divisible(OP, send.len()))
            .flatten();
        let part = send.len() / self.size();
        let [part] = self.announce_from_root(root, [part], root_error)?;
        let mut recv = vec![T::default(); part];
        self.scatter_raw(root, send, &mut recv);
        timer.add_bytes(size_of_val(&recv[..]));
        Ok(recv)
    }

    /// [`scatter`](Self::scatter) into the caller's buffer; every rank's `recv` has the part
    /// length, and the root's `send` must hold `size() * recv.len()` elements.
    ///
    /// Communication: agreement check + one `MPI_Scatter`; when all the parts together are at
    /// most 64 bytes of primitive numbers they travel inside the check's reduction instead
    /// (one collective in all).
    ///
    /// # Errors
    /// `InvalidRoot`; `Disagreement` on the root or the part length; `NotDivisible` or
    /// `BufferSize` for a root buffer that does not match; `CountOverflow`.
    pub fn scatter_into<T: Equivalence>(
        &self,
        root: usize,
        send: &[T],
        recv: &mut [T],
    ) -> Result<()> {
        const OP: &str = "scatter_into";
        let bytes = size_of_val(recv) + self.root_bytes(root, size_of_val(send));
        let _timer = self.timed(OP, bytes);
        let local_error = check_root(root, self.size(), OP)
            .or_else(|| mpi_count(recv.len(), OP, "the receive buffer").err())
            .or_else(|| {
                (self.rank() == root)
                    .then(|| {
                        self.check_divisible(OP, send.len()).or_else(|| {
                            let expected = recv.len() * self.size();
                            (send.len() != expected).then(|| {
                                buffer_size_error(
                                    OP,
                                    "the root's send buffer",
                                    expected,
                                    send.len(),
                                )
                            })
                        })
                    })
                    .flatten()
            });
        // Up to 64 bytes in all of primitive numbers ride in the check (see `carry`).
        let slot = carry::slots::<T>(recv.len(), self.size());
        let mut payload = carry::NO_CARRY;
        if let (Some(words), true) = (slot, self.rank() == root && local_error.is_none()) {
            for (r, part) in send.chunks(recv.len().max(1)).enumerate() {
                carry::pack(part, &mut payload, r * words);
            }
        }
        let carried = self.preflight_carrying(
            Preflight {
                op: OP,
                element: Some(ElementType::of::<T>()),
                local_error,
                agree: &[
                    Field::number("the root", &root),
                    Field::number("the part length", &recv.len()),
                ],
            },
            payload,
        )?;
        if let (Some(carried), Some(words)) = (carried, slot) {
            carry::unpack(&carried, self.rank() * words, recv);
            return Ok(());
        }
        self.scatter_raw(root, send, recv);
        Ok(())
    }

    /// Gives rank `r` the next `counts[r]` elements of the root's `send`. Only the root's
    /// `send` and `counts` are read (other ranks pass `&[]`, `&[]`).
    ///
    /// Communication: agreement check on the root + one `MPI_Scatter` of the counts (which
    /// also carries the root's argument errors) + one `MPI_Scatterv`.
    ///
    /// # Errors
    /// `InvalidRoot`; `Disagreement` on the root; `BufferSize` if the root's `counts` do not
    /// have one entry per rank or do not add up to `send.len()`; `CountOverflow`.
    pub fn scatter_varcount<T>(&self, root: usize, send: &[T], counts: &[usize]) -> Result<Vec<T>>
    where
        T: Equivalence + Copy + Default,
    {
        const OP: &str = "scatter_varcount";
        let mut timer = self.timed(OP, self.root_bytes(root, size_of_val(send)));
        self.agree_on_root(OP, Some(ElementType::of::<T>()), root)?;
        let is_root = self.rank() == root;
        let root_error = if !is_root {
            None
        } else if counts.len() != self.size() {
            Some(buffer_size_error(
                OP,
                "the root's counts",
                self.size(),
                counts.len(),
            ))
        } else if counts.iter().sum::<usize>() != send.len() {
            Some(buffer_size_error(
                OP,
                "the root's send buffer",
                counts.iter().sum(),
                send.len(),
            ))
        } else {
            counts_and_displacements(counts, OP).err()
        };
        // Each rank receives [its count, the root's error, the total count].
        let encoded = self.encode_error(root_error.as_ref());
        let total = as_field(send.len());
        let header: Vec<i64> = if is_root {
            (0..self.size())
                .flat_map(|r| [counts.get(r).map_or(0, |&c| as_field(c)), encoded, total])
                .collect()
        } else {
            Vec::new()
        };
        let mut mine = [0_i64; 3];
        self.scatter_raw(root, &header, &mut mine);
        if mine[1] >= 0 {
            return Err(self.error_from_encoded(mine[1], root_error.as_ref()));
        }
        let mut recv = vec![T::default(); mine[0] as usize];
        if mine[2] == 0 {
            // Nothing to move: Open MPI refuses an `MPI_Scatterv` from an empty `Vec<u8>` (its
            // pointer is 1) with MPI_ERR_ARG.
            return Ok(recv);
        }
        let root_process = self.raw().process_at_rank(root as i32);
        if is_root {
            let (mpi_counts, displacements) = counts_and_displacements(counts, OP)?;
            let parts = MpiPartition::new(send, mpi_counts, displacements);
            root_process.scatter_varcount_into_root(&parts, &mut recv[..]);
        } else {
            root_process.scatter_varcount_into(&mut recv[..]);
        }
        timer.add_bytes(size_of_val(&recv[..]));
        Ok(recv)
    }

    /// Gives every rank its part of `partition` from the root's `send`, which holds the parts
    /// one after another in rank order (for a `Block` partition: the global array).
    ///
    /// Communication: agreement check + one `MPI_Scatterv`; counts come from the partition.
    ///
    /// # Errors
    /// `InvalidRoot`; `InvalidPartition` if the partition is for another number of ranks;
    /// `BufferSize` if the root's `send` does not hold `partition.len()` elements;
    /// `Disagreement` on the root or the partition; `CountOverflow`.
    pub fn scatter_partitioned<T>(
        &self,
        root: usize,
        send: &[T],
        partition: &Partition,
    ) -> Result<Vec<T>>
    where
        T: Equivalence + Copy + Default,
    {
        const OP: &str = "scatter_partitioned";
        let mut timer = self.timed(OP, self.root_bytes(root, size_of_val(send)));
        let part_len = if partition.parts() == self.size() {
            partition.count(self.rank())
        } else {
            0
        };
        let local_error = check_root(root, self.size(), OP)
            .or_else(|| self.check_partition(OP, partition, part_len))
            .or_else(|| {
                (self.rank() == root && send.len() != partition.len()).then(|| {
                    buffer_size_error(OP, "the root's send buffer", partition.len(), send.len())
                })
            });
        let values = PartitionValues::new(Some(root), partition);
        self.preflight(Preflight {
            op: OP,
            element: Some(ElementType::of::<T>()),
            local_error,
            agree: &values.fields(),
        })?;
        let (mpi_counts, displacements) = counts_and_displacements(&partition.counts(), OP)?;
        let mut recv = vec![T::default(); part_len];
        if partition.is_empty() {
            // Nothing to move (see `scatter_varcount`).
            return Ok(recv);
        }
        let root_process = self.raw().process_at_rank(root as i32);
        if self.rank() == root {
            let parts = MpiPartition::new(send, mpi_counts, displacements);
            root_process.scatter_varcount_into_root(&parts, &mut recv[..]);
        } else {
            root_process.scatter_varcount_into(&mut recv[..]);
        }
        timer.add_bytes(size_of_val(&recv[..]));
        Ok(recv)
    }

    fn check_divisible(&self, op: &str, len: usize) -> Option<Error> {
        if len % self.size() != 0 {
            return Some(Error::new(
                ErrorKind::NotDivisible,
                format!(
                    "{op}: the root's {len} elements do not split into {} equal parts \
                     ({len} % {} = {}); use the varcount form for uneven parts",
                    self.size(),
                    self.size(),
                    len % self.size()
                ),
            ));
        }
        mpi_count(len / self.size(), op, "each rank's part").err()
    }

    /// `MPI_Scatter` with arguments already validated.
    fn scatter_raw<T: Equivalence>(&self, root: usize, send: &[T], recv: &mut [T]) {
        let root_process = self.raw().process_at_rank(root as i32);
        let (send, recv) = (super::never_in_place(send), super::never_in_place_mut(recv));
        if self.rank() == root {
            root_process.scatter_into_root(send, recv);
        } else {
            root_process.scatter_into(recv);
        }
    }
}
