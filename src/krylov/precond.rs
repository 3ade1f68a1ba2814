//! Preconditioners: `z = M⁻¹ r` for an `M` that is cheap to invert and close to `A`.

use super::vectors::{local, local_mut, update2};
use crate::comm::Comm;
use crate::error::{Error, ErrorKind, Result};
use crate::par::Par;
use crate::sparse::{DistCsrMatrix, DistVector};

/// `z = M⁻¹ r` for a preconditioner `M`; local to each rank for the ones here.
pub trait Preconditioner {
    /// Writes `M⁻¹ r` into `z` (both in the operator's layout).
    ///
    /// # Errors
    /// `Shape` if `r` or `z` does not have the layout the preconditioner was made for.
    fn apply(&self, r: &DistVector, z: &mut DistVector) -> Result<()>;

    /// For a preconditioner that scales entry by entry (`z[i] = d[i]·r[i]`, as [`Jacobi`]):
    /// this rank's factors `d`, so that a solver can fuse the scaling into its own sweeps.
    /// `None` (the default) for anything else.
    fn pointwise(&self) -> Option<&[f64]> {
        None
    }
}

/// No preconditioning: `z = r`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Identity;

impl Preconditioner for Identity {
    fn apply(&self, r: &DistVector, z: &mut DistVector) -> Result<()> {
        check_pair("Identity::apply", r, z, local(r).len())?;
        local_mut(z).copy_from_slice(local(r));
        Ok(())
    }
}

/// Jacobi (diagonal) preconditioning: `z[i] = r[i] / A[i][i]`. Entry by entry, so a solve
/// with it is reproducible across rank counts.
#[derive(Clone, Debug)]
pub struct Jacobi {
    inverse_diagonal: Vec<f64>,
    par: Par,
}

impl Jacobi {
    /// Jacobi for the square matrix `a`. Collective (the check for zeros on the diagonal is
    /// shared, so a zero on one rank is an error on all).
    ///
    /// # Errors
    /// `Shape` if `a` is not square; `Singular` on every rank if some diagonal entry is
    /// zero or not stored (the message names its row).
    pub fn new(a: &DistCsrMatrix) -> Result<Jacobi> {
        let diagonal = a.diagonal()?;
        Jacobi::from_diagonal(&diagonal)
    }

    /// Jacobi from the operator's diagonal (for a matrix-free operator). Collective.
    ///
    /// # Errors
    /// `Singular` on every rank if some entry is zero.
    pub fn from_diagonal(diagonal: &DistVector) -> Result<Jacobi> {
        let comm = diagonal.comm();
        let d = local(diagonal);
        let first = diagonal.global_range(0).map_or(0, |r| r.start);
        let zero = d.iter().position(|&v| v == 0.0).map(|i| {
            Error::new(
                ErrorKind::Singular,
                format!(
                    "Jacobi: row {} has a zero (or no) diagonal entry",
                    first + i
                ),
            )
            .on_rank(comm.rank())
        });
        comm.share_outcome(zero)?;
        Ok(Jacobi {
            inverse_diagonal: d.iter().map(|v| 1.0 / v).collect(),
            par: comm.par().effective(),
        })
    }
}

impl Preconditioner for Jacobi {
    fn apply(&self, r: &DistVector, z: &mut DistVector) -> Result<()> {
        check_pair("Jacobi::apply", r, z, self.inverse_diagonal.len())?;
        update2(
            self.par,
            local_mut(z),
            local(r),
            &self.inverse_diagonal,
            |z, r, d| *z = r * d,
        );
        Ok(())
    }

    fn pointwise(&self) -> Option<&[f64]> {
        Some(&self.inverse_diagonal)
    }
}

/// Block Jacobi: each rank solves with an incomplete LU factorisation without fill
/// (ILU(0)) of its diagonal block, ignoring the coupling to other ranks (PETSc's
/// `PCBJACOBI` with `PCILU`). Stronger than [`Jacobi`] per iteration, no communication;
/// its blocks are the ranks', so results change with the rank count. The triangular solves
/// run serially on each rank.
#[derive(Clone, Debug)]
pub struct BlockJacobi {
    row_starts: Vec<usize>,
    columns: Vec<usize>,
    /// L (unit diagonal, not stored) below the diagonal, U on and above it.
    factors: Vec<f64>,
    /// Position of each row's diagonal entry in `columns`/`factors`.
    diagonal_at: Vec<usize>,
}

impl BlockJacobi {
    /// ILU(0) of `a`'s diagonal block on every rank. Collective (a zero pivot on one rank
    /// is an error on all).
    ///
    /// # Errors
    /// `Shape` if `a` is not square; `Singular` on every rank if a pivot is zero or a
    /// diagonal entry is not stored (the message names the row).
    pub fn new(a: &DistCsrMatrix) -> Result<BlockJacobi> {
        let comm = a.comm();
        a.diagonal()?; // the square check, the same on every rank
        let (row_starts, columns, mut factors) = a.diagonal_block();
        let first = a.row_range().start;
        let outcome = factorise(&row_starts, &columns, &mut factors).map_err(|row| {
            Error::new(
                ErrorKind::Singular,
                format!(
                    "BlockJacobi: ILU(0) met a zero pivot at row {} (a zero or missing \
                     diagonal entry, or one cancelled by the elimination)",
                    first + row
                ),
            )
            .on_rank(comm.rank())
        });
        let diagonal_at = comm.share_result(outcome)?;
        Ok(BlockJacobi {
            row_starts,
            columns,
            factors,
            diagonal_at,
        })
    }
}

/// ILU(0) in place (row by row, IKJ order); the diagonal positions, or the first row with a
/// zero pivot.
fn factorise(
    row_starts: &[usize],
    columns: &[usize],
    a: &mut [f64],
) -> std::result::Result<Vec<usize>, usize> {
    let n = row_starts.len() - 1;
    let mut diagonal_at = vec![0; n];
    // Where each column sits in the current row (usize::MAX: not stored).
    let mut position = vec![usize::MAX; n];
    for i in 0..n {
        let row = row_starts[i]..row_starts[i + 1];
        for k in row.clone() {
            position[columns[k]] = k;
        }
        for k in row.clone() {
            let c = columns[k];
            if c >= i {
                break;
            }
            // l_ic = a_ic / u_cc, then a_ij -= l_ic u_cj for the stored j > c of row i.
            let pivot = a[diagonal_at[c]];
            a[k] /= pivot;
            let l = a[k];
            for m in diagonal_at[c] + 1..row_starts[c + 1] {
                let at = position[columns[m]];
                if at != usize::MAX {
                    a[at] -= l * a[m];
                }
            }
        }
        for k in row.clone() {
            position[columns[k]] = usize::MAX;
        }
        match columns[row.clone()].binary_search(&i) {
            Ok(p) if a[row.start + p] != 0.0 && a[row.start + p].is_finite() => {
                diagonal_at[i] = row.start + p;
            }
            _ => return Err(i),
        }
    }
    Ok(diagonal_at)
}

impl Preconditioner for BlockJacobi {
    fn apply(&self, r: &DistVector, z: &mut DistVector) -> Result<()> {
        let n = self.diagonal_at.len();
        check_pair("BlockJacobi::apply", r, z, n)?;
        let z = local_mut(z);
        z.copy_from_slice(local(r));
        // L y = r (unit diagonal), then U z = y.
        for i in 0..n {
            let mut sum = z[i];
            for k in self.row_starts[i]..self.diagonal_at[i] {
                sum -= self.factors[k] * z[self.columns[k]];
            }
            z[i] = sum;
        }
        for i in (0..n).rev() {
            let d = self.diagonal_at[i];
            let mut sum = z[i];
            for k in d + 1..self.row_starts[i + 1] {
                sum -= self.factors[k] * z[self.columns[k]];
            }
            z[i] = sum / self.factors[d];
        }
        Ok(())
    }
}

/// `r` and `z` hold `n` entries on this rank and share a communicator.
fn check_pair(op: &str, r: &DistVector, z: &DistVector, n: usize) -> Result<()> {
    let comm: &Comm = r.comm();
    if !z.comm().same_as(comm) || local(r).len() != n || local(z).len() != n || r.len() != z.len() {
        return Err(Error::new(
            ErrorKind::Shape,
            format!(
                "{op}: the preconditioner was made for {n} local entries; `r` has {} of {} and \
                 `z` {} of {}",
                local(r).len(),
                r.len(),
                local(z).len(),
                z.len()
            ),
        ));
    }
    Ok(())
}
