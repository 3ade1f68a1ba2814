//! Distributed sparse matrices: [`DistCsrMatrix`], assembled from triplets that any rank may
//! contribute, with a matrix–vector product that exchanges only the ghost entries each rank
//! needs, behind the product of its own block.
//!
//! # Layout
//! Rows are split in blocks over the communicator's ranks ([`Partition::block`]), and so are
//! the columns: rank `r` owns the rows `rows().range(r)` of the matrix and of every range
//! vector, and the entries `columns().range(r)` of every domain vector. Vectors are
//! [`DistVector`]s (`DistArray<f64, Ix1>` split [`Split::block(0)`](crate::array::Split)),
//! so everything an array does (I/O, checkpoints, redistribution, reductions) works on them.
//!
//! Each rank stores its rows as two CSR blocks, as PETSc's `MATMPIAIJ` does:
//! - the **diagonal block**, the entries in the columns this rank owns, with column indices
//!   relative to its first column;
//! - the **off-diagonal block**, the other entries, with their columns *compressed*: numbered
//!   in the order of the **ghost columns** (the distinct columns this rank needs from others,
//!   sorted), whose values arrive before each product.
//!
//! Column indices are `u32` where they fit (any block of fewer than 2^32 columns), which is a
//! third less memory traffic than `usize` in the product.
//!
//! # Assembly
//! [`DistCsrMatrix::from_triplets`] takes `(row, column, value)` triplets from every rank,
//! validates them once (indices in range, the same shape on every rank: one agreement check),
//! routes each to the owner of its row (one all-to-all) and sums duplicates, as PETSc's
//! `ADD_VALUES` does. Duplicates are summed in the order of their values, so the assembled
//! matrix is the same bit for bit whichever ranks contributed which triplets. The ghost plan
//! is made there too (one more all-to-all of the ghost column lists).
//!
//! # The product
//! [`DistCsrMatrix::apply`] computes `y = A x`:
//! 1. packs the entries of `x` that other ranks need and starts their messages (persistent
//!    requests, one `MPI_Startall`);
//! 2. computes the rows that need no ghost entry (the *interior*: most rows of a PDE
//!    matrix) while the messages travel;
//! 3. waits for the ghost entries and computes the remaining rows (the *boundary* rows).
//!
//! The boundary rows are kept a second time, whole, in product order: their columns index
//! an extended vector `[ghosts left of my columns | my entries they use | ghosts right of
//! them]`, which is global column order, so each is summed in one pass like an interior row;
//! before each product the entries of `x` they use are gathered into it (a sliver of `x`
//! for a PDE on a block split, all of it for a random matrix). Before,
//! each was three runs over two vectors; on NPB CG at 2 ranks, where every row is a boundary
//! row, the single pass made the product about 14% faster. The price is memory: the
//! boundary rows' entries are stored twice (a few percent of the matrix for a PDE on a
//! block split; all of it when every row reaches other ranks' columns).
//!
//! Bytes moved per product: 8 × [`ghost_count`](DistCsrMatrix::ghost_count) received per
//! rank (reported by [`stats`](DistCsrMatrix::stats)), and as many sent in all.
//!
//! Each row is summed on one rayon thread in one fixed order: its entries in global column
//! order, entry `k` into lane `k mod 4` (each lane from zero, in order), the row's value
//! `(l0 + l1) + (l2 + l3)`. Four independent chains of additions keep long rows from being
//! bound by the latency of one running sum, and the order does not depend on the split, so
//! **the product is bit-identical at any rank and thread count** (and to a serial CSR product
//! summed the same way); that, with exact dot products, is what makes the
//! [Krylov solvers](crate::krylov)' reproducible mode possible.
//!
//! ```no_run
//! use spmd::sparse::DistCsrMatrix;
//! # fn f(world: &spmd::Comm) -> spmd::Result<()> {
//! // The 1-D Laplacian (2 on the diagonal, -1 beside it), each rank adding its own rows.
//! let n = 1000;
//! let mut triplets = Vec::new();
//! for i in spmd::Partition::block(n, world.size())?.range(world.rank()) {
//!     triplets.push((i, i, 2.0));
//!     if i > 0 { triplets.push((i, i - 1, -1.0)); }
//!     if i + 1 < n { triplets.push((i, i + 1, -1.0)); }
//! }
//! let a = DistCsrMatrix::from_triplets(world, (n, n), &triplets)?;
//! let x = a.domain_vector(1.0)?;
//! let mut y = a.range_vector(0.0)?;
//! a.apply(&x, &mut y)?; // 0 inside, 1 at both ends
//! # Ok(())
//! # }
//! ```

mod assemble;
mod ghosts;
mod local;
mod product;

use std::cell::RefCell;
use std::ops::Range;

use ndarray::Ix1;

use crate::array::{DistArray, Split};
use crate::comm::Comm;
use crate::error::{Error, ErrorKind, Result};
use crate::partition::Partition;
use ghosts::GhostPlan;
use local::LocalCsr;

/// Scratch of the product, reused from call to call.
struct ProductBuffers {
    /// `[left ghosts | x at the boundary columns | right ghosts]`, what the boundary rows'
    /// columns index.
    extended: Vec<f64>,
    /// The boundary rows' values, before they go to their places in `y`.
    boundary_values: Vec<f64>,
}

/// A distributed vector: a 1-D [`DistArray`] of `f64` split in blocks, the layout of a
/// [`DistCsrMatrix`]'s rows and columns.
pub type DistVector = DistArray<f64, Ix1>;

/// A distributed sparse matrix in compressed-row form; see the [module docs](self).
pub struct DistCsrMatrix {
    comm: Comm,
    rows: Partition,
    columns: Partition,
    /// Entries in this rank's columns, indexed relative to its first column.
    diagonal: LocalCsr,
    /// Entries in other ranks' columns, indexed into `ghost_columns`.
    off_diagonal: LocalCsr,
    /// The global column of each ghost entry, ascending.
    ghost_columns: Vec<usize>,
    /// Local rows with at least one off-diagonal entry (computed after the exchange),
    /// ascending.
    boundary_rows: Vec<usize>,
    /// Those rows again, whole, in the order of `boundary_rows`, with columns indexed into
    /// the extended vector `[left ghosts | the own entries they use | right ghosts]` (global
    /// column order): what the product reads for them.
    boundary: LocalCsr,
    /// The own columns (relative to the first) the boundary rows use, ascending: gathered
    /// into the extended vector before each product.
    boundary_columns: Vec<usize>,
    /// How many ghost columns lie left of this rank's columns.
    left_ghosts: usize,
    /// The product's scratch: the extended vector and the boundary rows' values.
    buffers: RefCell<ProductBuffers>,
    /// The runs of rows between them (computed behind the exchange).
    interior_runs: Vec<Range<usize>>,
    /// The ghost exchange, with its buffers (mutable through `&self` in the product).
    ghosts: RefCell<GhostPlan>,
}

impl std::fmt::Debug for DistCsrMatrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DistCsrMatrix")
            .field("shape", &self.shape())
            .field("local_rows", &self.local_rows())
            .field("local_entries", &self.local_entries())
            .field("ghost_count", &self.ghost_count())
            .finish()
    }
}

/// What one rank holds of a [`DistCsrMatrix`] and what its product moves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatrixStats {
    /// Rows this rank owns.
    pub local_rows: usize,
    /// Stored entries in this rank's rows (after duplicates were summed).
    pub local_entries: usize,
    /// Of those, entries in the diagonal block.
    pub diagonal_entries: usize,
    /// Distinct columns this rank receives before each product.
    pub ghost_count: usize,
    /// Ranks this rank receives ghost entries from.
    pub receives_from: usize,
    /// Entries this rank sends to others per product (to `sends_to` ranks).
    pub sent_entries: usize,
    /// Ranks this rank sends entries to.
    pub sends_to: usize,
    /// Bytes received plus sent per product.
    pub bytes_per_product: usize,
    /// Bytes a product reads and writes in this rank's memory: both blocks' arrays, the
    /// owned and ghost entries of `x`, the entries of `y` (each once): the figure to divide
    /// by a product's time for its memory bandwidth.
    pub streamed_bytes: usize,
}

impl DistCsrMatrix {
    /// The communicator the matrix lives on.
    pub fn comm(&self) -> &Comm {
        &self.comm
    }

    /// The global `(rows, columns)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.rows.len(), self.columns.len())
    }

    /// How rows (and range vectors) are split over the ranks.
    pub fn rows(&self) -> &Partition {
        &self.rows
    }

    /// How columns (and domain vectors) are split over the ranks.
    pub fn columns(&self) -> &Partition {
        &self.columns
    }

    /// The global rows this rank owns.
    pub fn row_range(&self) -> Range<usize> {
        self.rows.range(self.comm.rank())
    }

    /// The global columns this rank owns (its diagonal block's columns).
    pub fn column_range(&self) -> Range<usize> {
        self.columns.range(self.comm.rank())
    }

    /// Rows this rank owns.
    pub fn local_rows(&self) -> usize {
        self.diagonal.rows()
    }

    /// Entries stored on this rank.
    pub fn local_entries(&self) -> usize {
        self.diagonal.entries() + self.off_diagonal.entries()
    }

    /// Distinct columns of other ranks this rank's rows use: the entries it receives before
    /// each product.
    pub fn ghost_count(&self) -> usize {
        self.ghost_columns.len()
    }

    /// The global columns of the ghost entries, ascending.
    pub fn ghost_columns(&self) -> &[usize] {
        &self.ghost_columns
    }

    /// This rank's figures: entries, ghosts, neighbours and bytes per product.
    pub fn stats(&self) -> MatrixStats {
        let plan = self.ghosts.borrow();
        let (sent, received) = plan.sizes();
        MatrixStats {
            local_rows: self.local_rows(),
            local_entries: self.local_entries(),
            diagonal_entries: self.diagonal.entries(),
            ghost_count: received,
            receives_from: plan.receives_from(),
            sent_entries: sent,
            sends_to: plan.sends_to(),
            bytes_per_product: 8 * (sent + received),
            streamed_bytes: self.streamed_bytes(received),
        }
    }

    /// What a product reads and writes once: the diagonal block's interior rows, the
    /// boundary rows' copy in product order, `x`, its ghosts and the extended vector they
    /// are gathered into, `y`.
    fn streamed_bytes(&self, ghosts: usize) -> usize {
        let (d, b) = (&self.diagonal, &self.boundary);
        // The boundary copy holds every off-diagonal entry and the boundary rows' diagonal
        // ones; the rest of the diagonal block is the interior rows'.
        let interior_entries = d.entries() - (b.entries() - self.off_diagonal.entries());
        let gathered = self.boundary_columns.len();
        let extended = if self.boundary_rows.is_empty() {
            0
        } else {
            ghosts + gathered
        };
        (8 + d.index_bytes()) * interior_entries
            + d.index_bytes() * (d.rows() + 1)
            + (8 + b.index_bytes()) * b.entries()
            + b.index_bytes() * (b.rows() + 1)
            + 8 * (self.column_range().len() + ghosts + self.local_rows())
            + 16 * extended
            + 8 * gathered
            + 16 * self.boundary_rows.len()
    }

    /// The entries of local row `row` (`0..local_rows()`) as `(global column, value)`, in
    /// column order.
    ///
    /// # Panics
    /// If `row >= local_rows()`.
    pub fn row_entries(&self, row: usize) -> Vec<(usize, f64)> {
        assert!(row < self.local_rows(), "row {row} is not a local row");
        let first = self.column_range().start;
        let mut entries: Vec<(usize, f64)> = self
            .diagonal
            .row(row)
            .map(|(c, v)| (first + c, v))
            .chain(
                self.off_diagonal
                    .row(row)
                    .map(|(g, v)| (self.ghost_columns[g], v)),
            )
            .collect();
        entries.sort_by_key(|e| e.0);
        entries
    }

    /// A vector in the matrix's domain (the layout of `x` in `A x`), every entry `value`.
    ///
    /// # Errors
    /// None in practice (the layout is valid by construction).
    pub fn domain_vector(&self, value: f64) -> Result<DistVector> {
        DistArray::from_elem(&self.comm, self.columns.len(), Split::block(0), value)
    }

    /// A vector in the matrix's range (the layout of `y` in `y = A x`), every entry `value`.
    ///
    /// # Errors
    /// None in practice.
    pub fn range_vector(&self, value: f64) -> Result<DistVector> {
        DistArray::from_elem(&self.comm, self.rows.len(), Split::block(0), value)
    }

    /// The matrix's diagonal as a range vector (zero where no entry is stored).
    ///
    /// # Errors
    /// `Shape` if the matrix is not square.
    pub fn diagonal(&self) -> Result<DistVector> {
        let (n, m) = self.shape();
        if n != m {
            return Err(Error::new(
                ErrorKind::Shape,
                format!("DistCsrMatrix::diagonal: the matrix is {n} x {m}, not square"),
            ));
        }
        let mut d = self.range_vector(0.0)?;
        // Square, with rows and columns split alike: the diagonal lies in the diagonal block.
        for (i, slot) in d.local_mut().iter_mut().enumerate() {
            *slot = self.diagonal.get(i, i).unwrap_or(0.0);
        }
        Ok(d)
    }

    /// The diagonal block: this rank's rows restricted to its own columns, as local CSR
    /// arrays `(row starts, columns relative to the first owned column, values)`.
    pub fn diagonal_block(&self) -> (Vec<usize>, Vec<usize>, Vec<f64>) {
        self.diagonal.to_parts()
    }
}
