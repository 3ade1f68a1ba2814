//! The matrix–vector product: ghost exchange behind the interior rows, then the boundary
//! rows, each row summed in global column order in four interleaved lanes ([`Lanes`]): the
//! same bits at any rank and thread count.

use rayon::prelude::*;

use super::local::{with_view, ColumnIndex, CsrView};
use super::{DistCsrMatrix, DistVector, ProductBuffers};
use crate::error::{Error, ErrorKind, Result};
use crate::par::Par;
use crate::partition::Partition;

/// Rows per rayon task in the interior sweep.
const ROWS_PER_TASK: usize = 2048;

impl DistCsrMatrix {
    /// `y = A x`: exchanges the ghost entries of `x` behind the product of the interior
    /// rows, then computes the rows that need them. Collective (every rank calls it with its
    /// pieces; only neighbours in the ghost plan exchange messages).
    ///
    /// Communication: one persistent neighbour exchange of
    /// [`stats().bytes_per_product`](super::MatrixStats) bytes per rank; no check (the plan
    /// was agreed at assembly). Rows run on the comm's rayon threads unless its
    /// [`Par`] is `Seq`. Each row is summed in one fixed order (see the
    /// [module docs](super#the-product)), so `y` is bit-identical at any rank and thread
    /// count.
    ///
    /// # Errors
    /// `InvalidPartition` if `x` or `y` is on another communicator; `Shape` if `x` is not a
    /// domain vector or `y` not a range vector of this matrix (length and block split). The
    /// checks are local and the same on every rank for the same vectors.
    pub fn apply(&self, x: &DistVector, y: &mut DistVector) -> Result<()> {
        const OP: &str = "DistCsrMatrix::apply";
        self.check_vector(OP, "x", x, &self.columns)?;
        self.check_vector(OP, "y", y, &self.rows)?;
        let x = x.local();
        let x = x
            .as_slice()
            .expect("a 1-D piece without ghosts is contiguous");
        let mut y = y.local_mut();
        let y = y
            .as_slice_mut()
            .expect("a 1-D piece without ghosts is contiguous");
        self.apply_slices(x, y);
        Ok(())
    }

    /// The product on this rank's pieces (lengths checked by the caller).
    pub(crate) fn apply_slices(&self, x: &[f64], y: &mut [f64]) {
        let mut plan = self.ghosts.borrow_mut();
        plan.start(x);
        let par = self.comm.par().effective();
        with_view!(self.diagonal, |diagonal| {
            for run in &self.interior_runs {
                block_rows(diagonal, run.start, x, &mut y[run.clone()], par);
            }
        });
        plan.test();
        let ghosts = plan.finish();
        if self.boundary_rows.is_empty() {
            return;
        }
        let mut buffers = self.buffers.borrow_mut();
        let ProductBuffers {
            extended,
            boundary_values,
        } = &mut *buffers;
        let (left, used) = (self.left_ghosts, self.boundary_columns.len());
        extended[..left].copy_from_slice(&ghosts[..left]);
        let gathered = &mut extended[left..left + used];
        if used == x.len() {
            // Every own column (distinct, ascending, so exactly 0..x.len()).
            gathered.copy_from_slice(x);
        } else {
            for (slot, &c) in gathered.iter_mut().zip(&self.boundary_columns) {
                *slot = x[c];
            }
        }
        extended[left + used..].copy_from_slice(&ghosts[left..]);
        // The boundary copy's rows are summed like interior rows, over the extended vector
        // (its columns are below extended.len(), the width it was built with).
        let sum_into = |values: &mut [f64]| {
            with_view!(self.boundary, |boundary| {
                block_rows(boundary, 0, extended, values, par)
            })
        };
        if self.boundary_rows.len() == y.len() {
            // Every row a boundary row (a random matrix, a small piece): straight into `y`.
            sum_into(y);
        } else {
            sum_into(boundary_values);
            for (&i, &value) in self.boundary_rows.iter().zip(boundary_values.iter()) {
                y[i] = value;
            }
        }
    }

    fn check_vector(&self, op: &str, name: &str, v: &DistVector, layout: &Partition) -> Result<()> {
        if !v.comm().same_as(&self.comm) {
            return Err(Error::new(
                ErrorKind::InvalidPartition,
                format!("{op}: `{name}` lives on another communicator than the matrix"),
            ));
        }
        if v.partition(0) != Some(layout) {
            return Err(Error::new(
                ErrorKind::Shape,
                format!(
                    "{op}: `{name}` must have {} entries split in blocks over {} ranks; found \
                     {} entries split {}",
                    layout.len(),
                    layout.parts(),
                    v.len(),
                    v.split()
                ),
            ));
        }
        Ok(())
    }
}

/// `y[k]` = row `first + k` of `block` times `x`, for a run of rows whose columns all index
/// `x`: the diagonal block's interior rows over `x`, or the boundary copy over the extended
/// vector.
fn block_rows<I: ColumnIndex>(
    block: CsrView<'_, I>,
    first: usize,
    x: &[f64],
    y: &mut [f64],
    par: Par,
) {
    let task = |(t, rows): (usize, &mut [f64])| {
        let start = first + t * ROWS_PER_TASK;
        // SAFETY: rows of the block (a run of its rows), whose columns are below x.len():
        // validated at assembly against the width of the vector passed with it (see
        // `apply_slices`).
        unsafe { block.rows_into(start, x, rows) };
    };
    match par {
        Par::Rayon if y.len() > ROWS_PER_TASK => {
            y.par_chunks_mut(ROWS_PER_TASK).enumerate().for_each(task)
        }
        _ => y.chunks_mut(ROWS_PER_TASK).enumerate().for_each(task),
    }
}
