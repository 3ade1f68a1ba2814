//! One rank's block of a matrix in CSR form, with `u32` column indices where they fit.

/// A column index type: `u32` for blocks of fewer than 2^32 columns, else `usize`.
pub(crate) trait ColumnIndex: Copy + Send + Sync {
    fn at(self) -> usize;
}

impl ColumnIndex for u32 {
    #[inline(always)]
    fn at(self) -> usize {
        self as usize
    }
}

impl ColumnIndex for usize {
    #[inline(always)]
    fn at(self) -> usize {
        self
    }
}

/// The column indices of a block, narrow where they fit.
pub(crate) enum Columns {
    Narrow(Vec<u32>),
    Wide(Vec<usize>),
}

/// A local CSR block: row `i`'s entries are `row_starts[i]..row_starts[i+1]`
/// of `columns` and `values`, columns ascending and distinct within a row.
pub(crate) struct LocalCsr {
    pub(crate) row_starts: Vec<usize>,
    pub(crate) columns: Columns,
    pub(crate) values: Vec<f64>,
}

/// A borrowed block with a concrete index type, for the kernels.
#[derive(Clone, Copy)]
pub(crate) struct CsrView<'a, I> {
    pub(crate) row_starts: &'a [usize],
    pub(crate) columns: &'a [I],
    pub(crate) values: &'a [f64],
}

impl LocalCsr {
    /// A block from its arrays (validated by the caller: columns below `width`, ascending
    /// within each row; `row_starts` non-decreasing, ending at the entry count).
    pub(crate) fn new(
        row_starts: Vec<usize>,
        columns: Vec<usize>,
        values: Vec<f64>,
        width: usize,
    ) -> LocalCsr {
        debug_assert_eq!(row_starts.last().copied(), Some(columns.len()));
        debug_assert!(columns.iter().all(|&c| c < width.max(1)));
        let columns = if u32::try_from(width).is_ok() {
            Columns::Narrow(columns.into_iter().map(|c| c as u32).collect())
        } else {
            Columns::Wide(columns)
        };
        LocalCsr {
            row_starts,
            columns,
            values,
        }
    }

    pub(crate) fn rows(&self) -> usize {
        self.row_starts.len() - 1
    }

    pub(crate) fn entries(&self) -> usize {
        self.values.len()
    }

    fn column(&self, k: usize) -> usize {
        match &self.columns {
            Columns::Narrow(c) => c[k] as usize,
            Columns::Wide(c) => c[k],
        }
    }

    /// Row `row`'s `(column, value)` pairs.
    pub(crate) fn row(&self, row: usize) -> impl Iterator<Item = (usize, f64)> + '_ {
        (self.row_starts[row]..self.row_starts[row + 1]).map(|k| (self.column(k), self.values[k]))
    }

    /// The value at (`row`, `column`), if stored.
    pub(crate) fn get(&self, row: usize, column: usize) -> Option<f64> {
        let range = self.row_starts[row]..self.row_starts[row + 1];
        let position = match &self.columns {
            Columns::Narrow(c) => c[range.clone()].binary_search(&(column as u32)).ok(),
            Columns::Wide(c) => c[range.clone()].binary_search(&column).ok(),
        };
        position.map(|p| self.values[range.start + p])
    }

    pub(crate) fn to_parts(&self) -> (Vec<usize>, Vec<usize>, Vec<f64>) {
        let columns = (0..self.entries()).map(|k| self.column(k)).collect();
        (self.row_starts.clone(), columns, self.values.clone())
    }
}

/// Calls `f` with the block viewed at its concrete index type.
macro_rules! with_view {
    ($csr:expr, |$view:ident| $body:expr) => {
        match &$csr.columns {
            $crate::sparse::local::Columns::Narrow(columns) => {
                let $view = $crate::sparse::local::CsrView {
                    row_starts: &$csr.row_starts,
                    columns: columns.as_slice(),
                    values: &$csr.values,
                };
                $body
            }
            $crate::sparse::local::Columns::Wide(columns) => {
                let $view = $crate::sparse::local::CsrView {
                    row_starts: &$csr.row_starts,
                    columns: columns.as_slice(),
                    values: &$csr.values,
                };
                $body
            }
        }
    };
}
pub(crate) use with_view;

impl<I: ColumnIndex> CsrView<'_, I> {
    /// Row `row`'s entries as `(columns, values)`.
    #[inline(always)]
    pub(crate) fn row(&self, row: usize) -> (&[I], &[f64]) {
        let range = self.row_starts[row]..self.row_starts[row + 1];
        (&self.columns[range.clone()], &self.values[range])
    }
}

/// `sum + Σ values[k] · x[columns[k]]`, left to right.
///
/// # Safety
/// Every column must be below `x.len()` (validated at assembly; `x`'s length is checked by
/// the product before any kernel runs).
#[inline(always)]
pub(crate) unsafe fn row_dot<I: ColumnIndex>(
    mut sum: f64,
    columns: &[I],
    values: &[f64],
    x: &[f64],
) -> f64 {
    for (c, v) in columns.iter().zip(values) {
        // SAFETY: the caller guarantees `c < x.len()`.
        sum += v * unsafe { *x.get_unchecked(c.at()) };
    }
    sum
}
