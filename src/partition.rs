//! How `len` global items are split over `parts` ranks: pure index math, no MPI.
//!
//! A [`Partition`] answers, for every rank, how many items it owns, where its items start in a
//! buffer packed rank after rank (the displacements MPI's `*v` collectives need), which rank
//! owns a global index and the maps between global and local indices.
//!
//! Three [`Distribution`]s are supported:
//!
//! | distribution | who owns global index `g` (`p` ranks, `n` items) | use it for |
//! |---|---|---|
//! | [`Block`](Distribution::Block) | contiguous runs; the first `n % p` ranks own one more | stencils, anything with neighbours |
//! | [`Cyclic`](Distribution::Cyclic) | rank `g % p` | work whose cost grows with the index |
//! | [`BlockCyclic(b)`](Distribution::BlockCyclic) | rank `(g / b) % p` | a compromise: locality within `b`, balance across |
//!
//! Fewer items than ranks (`n < p`) and no items at all (`n = 0`) are valid: some or all
//! ranks then own nothing.
//!
//! ```
//! use spmd::partition::Partition;
//!
//! let p = Partition::block(10, 4).unwrap();
//! assert_eq!(p.counts(), vec![3, 3, 2, 2]);
//! assert_eq!(p.displacements(), vec![0, 3, 6, 8]);
//! assert_eq!(p.owner(7), 2);
//! assert_eq!(p.to_local(7), (2, 1));
//! assert_eq!(p.to_global(2, 1), 7);
//!
//! let c = Partition::block_cyclic(10, 3, 2).unwrap();
//! // blocks [0,1] [2,3] [4,5] [6,7] [8,9] go to ranks 0 1 2 0 1
//! assert_eq!(c.global_indices(0).collect::<Vec<_>>(), vec![0, 1, 6, 7]);
//! ```

use rayon::prelude::*;

use crate::error::{Error, ErrorKind, Result};

/// The rule that assigns global indices to ranks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Distribution {
    /// Balanced contiguous blocks: part sizes differ by at most one, larger parts first.
    Block,
    /// Round robin: index `g` goes to rank `g % parts`.
    Cyclic,
    /// Round robin over blocks of the given size: index `g` goes to rank `(g / b) % parts`.
    BlockCyclic(usize),
}

impl Distribution {
    /// A number that tells distributions apart, for agreement checks.
    pub(crate) fn code(self) -> i64 {
        match self {
            Distribution::Block => 0,
            Distribution::Cyclic => 1,
            Distribution::BlockCyclic(b) => 2 + i64::try_from(b).unwrap_or(i64::MAX - 2),
        }
    }
}

impl std::fmt::Display for Distribution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Distribution::Block => f.write_str("block"),
            Distribution::Cyclic => f.write_str("cyclic"),
            Distribution::BlockCyclic(b) => write!(f, "block-cyclic({b})"),
        }
    }
}

/// `len` global items split over `parts` ranks by a [`Distribution`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Partition {
    len: usize,
    parts: usize,
    distribution: Distribution,
}

impl Partition {
    /// Splits `len` items over `parts` ranks by `distribution`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidPartition`] when `parts` is zero or a block-cyclic block size is zero.
    pub fn new(distribution: Distribution, len: usize, parts: usize) -> Result<Partition> {
        if parts == 0 {
            return Err(Error::new(
                ErrorKind::InvalidPartition,
                format!("a partition needs at least one part, found 0 parts for {len} items"),
            ));
        }
        if distribution == Distribution::BlockCyclic(0) {
            return Err(Error::new(
                ErrorKind::InvalidPartition,
                "a block-cyclic partition needs a block size of at least 1, found 0",
            ));
        }
        Ok(Partition {
            len,
            parts,
            distribution,
        })
    }

    /// Balanced contiguous blocks; see [`Distribution::Block`].
    ///
    /// # Errors
    /// As [`Partition::new`].
    pub fn block(len: usize, parts: usize) -> Result<Partition> {
        Partition::new(Distribution::Block, len, parts)
    }

    /// Round robin; see [`Distribution::Cyclic`].
    ///
    /// # Errors
    /// As [`Partition::new`].
    pub fn cyclic(len: usize, parts: usize) -> Result<Partition> {
        Partition::new(Distribution::Cyclic, len, parts)
    }

    /// Round robin over blocks of `block_size`; see [`Distribution::BlockCyclic`].
    ///
    /// # Errors
    /// As [`Partition::new`].
    pub fn block_cyclic(len: usize, parts: usize, block_size: usize) -> Result<Partition> {
        Partition::new(Distribution::BlockCyclic(block_size), len, parts)
    }

    /// The number of global items.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no items at all.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The number of parts (ranks).
    pub fn parts(&self) -> usize {
        self.parts
    }

    /// The distribution rule.
    pub fn distribution(&self) -> Distribution {
        self.distribution
    }

    /// The block size of the round robin; `Cyclic` is block size 1. `None` for `Block`.
    fn round_robin_block(&self) -> Option<usize> {
        match self.distribution {
            Distribution::Block => None,
            Distribution::Cyclic => Some(1),
            Distribution::BlockCyclic(b) => Some(b),
        }
    }

    /// `(q, extra)` of a balanced block split: every part has `q` items, the first `extra` one more.
    fn block_shape(&self) -> (usize, usize) {
        (self.len / self.parts, self.len % self.parts)
    }

    /// The number of items `rank` owns.
    ///
    /// # Panics
    /// If `rank >= self.parts()`.
    #[track_caller]
    pub fn count(&self, rank: usize) -> usize {
        self.check_rank(rank);
        match self.round_robin_block() {
            None => {
                let (q, extra) = self.block_shape();
                q + usize::from(rank < extra)
            }
            Some(b) => {
                let blocks = self.len.div_ceil(b);
                let owned_blocks = blocks / self.parts + usize::from(rank < blocks % self.parts);
                let partial = self.len % b;
                let owns_partial_last = partial != 0 && (blocks - 1) % self.parts == rank;
                owned_blocks * b - if owns_partial_last { b - partial } else { 0 }
            }
        }
    }

    /// The number of items of every rank, in rank order.
    pub fn counts(&self) -> Vec<usize> {
        (0..self.parts).map(|rank| self.count(rank)).collect()
    }

    /// Where each rank's items start in a buffer holding all parts one after another in rank
    /// order (the exclusive prefix sum of [`counts`](Self::counts)). For `Block` this is also
    /// the first global index each rank owns.
    pub fn displacements(&self) -> Vec<usize> {
        let mut start = 0;
        self.counts()
            .into_iter()
            .map(|count| {
                let here = start;
                start += count;
                here
            })
            .collect()
    }

    /// The largest number of items any rank owns.
    pub fn max_count(&self) -> usize {
        match self.round_robin_block() {
            None => self.block_shape().0 + usize::from(self.block_shape().1 > 0),
            Some(_) => self.count(0),
        }
    }

    /// The rank that owns global index `global`.
    ///
    /// # Panics
    /// If `global >= self.len()`.
    #[track_caller]
    pub fn owner(&self, global: usize) -> usize {
        self.to_local(global).0
    }

    /// `(owner, local index)` of global index `global`.
    ///
    /// # Panics
    /// If `global >= self.len()`.
    #[track_caller]
    pub fn to_local(&self, global: usize) -> (usize, usize) {
        assert!(
            global < self.len,
            "global index {global} is out of range for a partition of {} items",
            self.len
        );
        match self.round_robin_block() {
            None => {
                let (q, extra) = self.block_shape();
                let big = extra * (q + 1);
                if global < big {
                    (global / (q + 1), global % (q + 1))
                } else {
                    // q > 0 here: global >= big means some items lie beyond the larger parts.
                    let rest = global - big;
                    (extra + rest / q, rest % q)
                }
            }
            Some(b) => {
                let block = global / b;
                let owner = block % self.parts;
                (owner, (block / self.parts) * b + global % b)
            }
        }
    }

    /// The global index of item `local` of `rank`.
    ///
    /// # Panics
    /// If `rank >= self.parts()` or `local >= self.count(rank)`.
    #[track_caller]
    pub fn to_global(&self, rank: usize, local: usize) -> usize {
        let count = self.count(rank);
        assert!(
            local < count,
            "local index {local} is out of range: rank {rank} owns {count} items"
        );
        match self.round_robin_block() {
            None => {
                let (q, extra) = self.block_shape();
                rank * q + rank.min(extra) + local
            }
            Some(b) => ((local / b) * self.parts + rank) * b + local % b,
        }
    }

    /// The global indices `rank` owns, in local order.
    ///
    /// # Panics
    /// If `rank >= self.parts()`.
    #[track_caller]
    pub fn global_indices(&self, rank: usize) -> impl ExactSizeIterator<Item = usize> {
        let (count, partition) = (self.count(rank), *self);
        (0..count).map(move |local| partition.to_global(rank, local))
    }

    /// The global indices `rank` owns, in local order, as an indexed rayon iterator: each of
    /// the rank's threads takes a share of them without collecting them first.
    ///
    /// ```
    /// use rayon::prelude::*;
    /// let part = spmd::Partition::cyclic(10, 3).unwrap();
    /// let squares: u64 = part.par_global_indices(1).map(|g| (g * g) as u64).sum();
    /// assert_eq!(squares, 1 + 16 + 49);
    /// ```
    ///
    /// # Panics
    /// If `rank >= self.parts()`.
    #[track_caller]
    pub fn par_global_indices(&self, rank: usize) -> impl IndexedParallelIterator<Item = usize> {
        let (count, partition) = (self.count(rank), *self);
        (0..count)
            .into_par_iter()
            .map(move |local| partition.to_global(rank, local))
    }

    /// The contiguous global range `rank` owns in a [`Block`](Distribution::Block)
    /// partition.
    ///
    /// ```
    /// let part = spmd::Partition::block(10, 4).unwrap();
    /// assert_eq!(part.range(1), 3..6);
    /// assert_eq!(part.range(3), 8..10);
    /// ```
    ///
    /// # Panics
    /// If the partition is not `Block` (the other distributions own scattered indices: use
    /// [`global_indices`](Self::global_indices)), or `rank >= self.parts()`.
    #[track_caller]
    pub fn range(&self, rank: usize) -> std::ops::Range<usize> {
        assert!(
            self.distribution == Distribution::Block,
            "Partition::range needs a Block partition, this one is {}; use global_indices",
            self.distribution
        );
        let count = self.count(rank);
        let (q, extra) = self.block_shape();
        let start = rank * q + rank.min(extra);
        start..start + count
    }

    #[track_caller]
    fn check_rank(&self, rank: usize) {
        assert!(
            rank < self.parts,
            "rank {rank} is out of range for a partition over {} parts",
            self.parts
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_is_balanced_larger_first() {
        let p = Partition::block(10, 4).unwrap();
        assert_eq!(p.counts(), vec![3, 3, 2, 2]);
        assert_eq!(p.displacements(), vec![0, 3, 6, 8]);
        assert_eq!(p.max_count(), 3);
        let owners: Vec<_> = (0..10).map(|g| p.owner(g)).collect();
        assert_eq!(owners, vec![0, 0, 0, 1, 1, 1, 2, 2, 3, 3]);
    }

    #[test]
    fn fewer_items_than_parts_and_none_at_all() {
        let p = Partition::block(2, 4).unwrap();
        assert_eq!(p.counts(), vec![1, 1, 0, 0]);
        assert_eq!(p.owner(1), 1);
        let empty = Partition::cyclic(0, 3).unwrap();
        assert_eq!(empty.counts(), vec![0, 0, 0]);
        assert_eq!(empty.displacements(), vec![0, 0, 0]);
        assert!(empty.is_empty());
        let bc = Partition::block_cyclic(0, 2, 5).unwrap();
        assert_eq!(bc.counts(), vec![0, 0]);
        assert_eq!(bc.max_count(), 0);
    }

    #[test]
    fn cyclic_and_block_cyclic_owners() {
        let c = Partition::cyclic(7, 3).unwrap();
        assert_eq!(c.counts(), vec![3, 2, 2]);
        assert_eq!(c.to_local(5), (2, 1));
        assert_eq!(c.to_global(2, 1), 5);
        let bc = Partition::block_cyclic(11, 2, 3).unwrap();
        // blocks [0..3) [3..6) [6..9) [9..11) -> ranks 0 1 0 1
        assert_eq!(bc.counts(), vec![6, 5]);
        assert_eq!(
            bc.global_indices(1).collect::<Vec<_>>(),
            vec![3, 4, 5, 9, 10]
        );
        assert_eq!(bc.to_local(10), (1, 4));
    }

    #[test]
    fn invalid_parameters_are_errors() {
        let e = Partition::block(5, 0).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidPartition);
        assert!(e.message().contains("0 parts"), "{e}");
        let e = Partition::block_cyclic(5, 2, 0).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidPartition);
    }

    #[test]
    #[should_panic(expected = "global index 5 is out of range")]
    fn owner_out_of_range_panics() {
        Partition::block(5, 2).unwrap().owner(5);
    }

    #[test]
    #[should_panic(expected = "rank 2 is out of range")]
    fn count_of_missing_rank_panics() {
        Partition::cyclic(5, 2).unwrap().count(2);
    }
}
