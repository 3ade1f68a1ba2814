//! Assembly of a [`DistCsrMatrix`] from triplets: validation, routing to the row owners,
//! duplicate summing, the split into diagonal and off-diagonal blocks, the ghost plan.

use std::cell::RefCell;

use rayon::prelude::*;

use super::ghosts::GhostPlan;
use super::local::LocalCsr;
use super::{DistCsrMatrix, ProductBuffers};
use crate::collective::{Field, Preflight};
use crate::comm::Comm;
use crate::error::{Error, ErrorKind, Result};
use crate::partition::Partition;

const OP: &str = "DistCsrMatrix::from_triplets";

/// Entries routed to this rank, bucketed by local row.
struct Rows {
    row_starts: Vec<usize>,
    columns: Vec<usize>,
    values: Vec<f64>,
}

impl DistCsrMatrix {
    /// Assembles a `shape.0 × shape.1` matrix from the `(row, column, value)` triplets every
    /// rank passes (any rank may contribute any entry; duplicates are summed). Collective.
    ///
    /// Communication: one agreement check (the shape and every rank's input errors), three
    /// all-to-alls routing the triplets to their rows' owners, one all-to-all of the ghost
    /// column lists. Duplicates are summed in ascending order of value, so the matrix does
    /// not depend on which rank contributed what. Entries that sum to zero are kept (as
    /// stored zeros).
    ///
    /// # Errors
    /// On every rank: `OutOfBounds` if some rank's triplet lies outside the shape (the
    /// message names the first such triplet and its rank); `Disagreement` if ranks pass
    /// different shapes; `CountOverflow` if a rank receives more than `i32::MAX` triplets.
    pub fn from_triplets(
        comm: &Comm,
        shape: (usize, usize),
        triplets: &[(usize, usize, f64)],
    ) -> Result<DistCsrMatrix> {
        let (n_rows, n_columns) = shape;
        let local_error = triplets
            .iter()
            .position(|&(i, j, _)| i >= n_rows || j >= n_columns)
            .map(|k| {
                let (i, j, _) = triplets[k];
                Error::new(
                    ErrorKind::OutOfBounds,
                    format!(
                        "{OP}: triplet {k} at ({i}, {j}) lies outside the {n_rows} x {n_columns} \
                         matrix"
                    ),
                )
                .on_rank(comm.rank())
            });
        comm.preflight(Preflight {
            op: OP,
            element: None,
            local_error,
            agree: &[
                Field::number("the row count", &n_rows),
                Field::number("the column count", &n_columns),
            ],
        })?;
        let rows = Partition::block(n_rows, comm.size())?;
        let columns = Partition::block(n_columns, comm.size())?;
        let mine = route(comm, &rows, triplets)?;
        let mine = sum_duplicates(mine);
        let column_range = columns.range(comm.rank());
        // Split each row at this rank's columns; the off-diagonal entries keep their global
        // column until the ghost columns are numbered.
        let local_rows = mine.row_starts.len() - 1;
        let mut diagonal = (vec![0usize], Vec::new(), Vec::new());
        let mut off = (vec![0usize], Vec::new(), Vec::new());
        for i in 0..local_rows {
            for k in mine.row_starts[i]..mine.row_starts[i + 1] {
                let (j, v) = (mine.columns[k], mine.values[k]);
                if column_range.contains(&j) {
                    diagonal.1.push(j - column_range.start);
                    diagonal.2.push(v);
                } else {
                    off.1.push(j);
                    off.2.push(v);
                }
            }
            diagonal.0.push(diagonal.1.len());
            off.0.push(off.1.len());
        }
        let mut ghost_columns = off.1.clone();
        ghost_columns.par_sort_unstable();
        ghost_columns.dedup();
        // Rows are in column order, so the compressed indices stay ascending within a row.
        for j in off.1.iter_mut() {
            *j = ghost_columns
                .binary_search(j)
                .expect("every off-diagonal column is a ghost column");
        }
        let boundary_rows: Vec<usize> = (0..local_rows)
            .filter(|&i| off.0[i + 1] > off.0[i])
            .collect();
        // The boundary rows again, in product order: columns index the extended vector
        // [ghosts left of my columns | my columns these rows use | ghosts right of them],
        // which is global column order, so each row is one run and sums as a serial product
        // would. Only the own columns they use are gathered into it before each product
        // (a PDE's boundary rows use a sliver of them; a random matrix's, all).
        let left_ghosts = ghost_columns.partition_point(|&g| g < column_range.start);
        let mut boundary_columns: Vec<usize> = boundary_rows
            .iter()
            .flat_map(|&i| diagonal.1[diagonal.0[i]..diagonal.0[i + 1]].iter().copied())
            .collect();
        boundary_columns.par_sort_unstable();
        boundary_columns.dedup();
        let used = boundary_columns.len();
        let mut extended = (vec![0usize], Vec::new(), Vec::new());
        for &i in &boundary_rows {
            let (ghosts, mine) = (off.0[i]..off.0[i + 1], diagonal.0[i]..diagonal.0[i + 1]);
            let split = ghosts.start + off.1[ghosts.clone()].partition_point(|&g| g < left_ghosts);
            let own = |c: usize| {
                let at = boundary_columns.binary_search(&c);
                left_ghosts + at.expect("a boundary row's own column is gathered")
            };
            let entries = (ghosts.start..split)
                .map(|k| (off.1[k], off.2[k]))
                .chain(mine.map(|k| (own(diagonal.1[k]), diagonal.2[k])))
                .chain((split..ghosts.end).map(|k| (used + off.1[k], off.2[k])));
            for (column, value) in entries {
                extended.1.push(column);
                extended.2.push(value);
            }
            extended.0.push(extended.1.len());
        }
        let interior_runs = interior_runs(local_rows, &boundary_rows);
        let plan = GhostPlan::new(comm, &columns, &ghost_columns)?;
        Ok(DistCsrMatrix {
            comm: comm.clone(),
            diagonal: LocalCsr::new(diagonal.0, diagonal.1, diagonal.2, column_range.len()),
            off_diagonal: LocalCsr::new(off.0, off.1, off.2, ghost_columns.len()),
            boundary: LocalCsr::new(
                extended.0,
                extended.1,
                extended.2,
                ghost_columns.len() + used,
            ),
            left_ghosts,
            buffers: RefCell::new(ProductBuffers {
                extended: vec![0.0; ghost_columns.len() + used],
                boundary_values: vec![0.0; boundary_rows.len()],
            }),
            rows,
            columns,
            ghost_columns,
            boundary_rows,
            boundary_columns,
            interior_runs,
            ghosts: RefCell::new(plan),
        })
    }
}

/// The maximal runs of rows between the boundary rows (ascending).
fn interior_runs(rows: usize, boundary_rows: &[usize]) -> Vec<std::ops::Range<usize>> {
    let mut runs = Vec::new();
    let mut start = 0;
    for b in boundary_rows.iter().copied().chain(std::iter::once(rows)) {
        if b > start {
            runs.push(start..b);
        }
        start = b + 1;
    }
    runs
}

/// Sends every triplet to the owner of its row; returns this rank's, bucketed by local row.
fn route(comm: &Comm, rows: &Partition, triplets: &[(usize, usize, f64)]) -> Result<Rows> {
    let size = comm.size();
    let owners: Vec<usize> = triplets.iter().map(|t| rows.owner(t.0)).collect();
    let mut counts = vec![0usize; size];
    owners.iter().for_each(|&r| counts[r] += 1);
    let mut at: Vec<usize> = counts
        .iter()
        .scan(0, |sum, &c| {
            *sum += c;
            Some(*sum - c)
        })
        .collect();
    let n = triplets.len();
    let (mut row_out, mut column_out, mut value_out) =
        (vec![0u64; n], vec![0u64; n], vec![0f64; n]);
    for (t, &r) in triplets.iter().zip(&owners) {
        let k = at[r];
        at[r] += 1;
        (row_out[k], column_out[k], value_out[k]) = (t.0 as u64, t.1 as u64, t.2);
    }
    drop(owners);
    let row_in = comm.all_to_all_varcount(&row_out, &counts)?.into_vec();
    drop(row_out);
    let column_in = comm.all_to_all_varcount(&column_out, &counts)?.into_vec();
    drop(column_out);
    let value_in = comm.all_to_all_varcount(&value_out, &counts)?.into_vec();
    drop(value_out);
    // Counting sort by local row.
    let first = rows.range(comm.rank()).start;
    let local_rows = rows.count(comm.rank());
    let mut row_starts = vec![0usize; local_rows + 1];
    row_in
        .iter()
        .for_each(|&i| row_starts[i as usize - first + 1] += 1);
    for i in 0..local_rows {
        row_starts[i + 1] += row_starts[i];
    }
    let mut next = row_starts.clone();
    let m = row_in.len();
    let (mut columns, mut values) = (vec![0usize; m], vec![0f64; m]);
    for k in 0..m {
        let i = row_in[k] as usize - first;
        let slot = next[i];
        next[i] += 1;
        columns[slot] = column_in[k] as usize;
        values[slot] = value_in[k];
    }
    Ok(Rows {
        row_starts,
        columns,
        values,
    })
}

/// Sorts each row by column and sums entries of the same column (in ascending order of
/// value, so that the sum does not depend on the order the entries arrived in).
fn sum_duplicates(rows: Rows) -> Rows {
    let Rows {
        row_starts,
        columns,
        values,
    } = rows;
    let local_rows = row_starts.len() - 1;
    // Rows are sorted and merged independently (in parallel), then compacted.
    let merged: Vec<(Vec<usize>, Vec<f64>)> = (0..local_rows)
        .into_par_iter()
        .with_min_len(1024)
        .map(|i| {
            let range = row_starts[i]..row_starts[i + 1];
            let mut entries: Vec<(usize, f64)> = columns[range.clone()]
                .iter()
                .copied()
                .zip(values[range].iter().copied())
                .collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
            let mut out_columns = Vec::with_capacity(entries.len());
            let mut out_values: Vec<f64> = Vec::with_capacity(entries.len());
            for (j, v) in entries {
                if out_columns.last() == Some(&j) {
                    *out_values.last_mut().expect("a value per column") += v;
                } else {
                    out_columns.push(j);
                    out_values.push(v);
                }
            }
            (out_columns, out_values)
        })
        .collect();
    let mut out = Rows {
        row_starts: Vec::with_capacity(local_rows + 1),
        columns: Vec::with_capacity(columns.len()),
        values: Vec::with_capacity(values.len()),
    };
    out.row_starts.push(0);
    for (c, v) in merged {
        out.columns.extend_from_slice(&c);
        out.values.extend_from_slice(&v);
        out.row_starts.push(out.columns.len());
    }
    out
}
