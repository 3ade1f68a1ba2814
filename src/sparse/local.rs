//! One rank's block of a matrix in CSR form, with `u32` indices where they fit.

use std::mem::size_of;

/// An index type: `u32` for blocks of fewer than 2^32 entries and columns, else `usize`.
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

/// A block's row starts and column indices: both `u32` where they fit (fewer than 2^32
/// entries and columns), else both `usize`.
pub(crate) enum Indices {
    Narrow {
        row_starts: Vec<u32>,
        columns: Vec<u32>,
    },
    Wide {
        row_starts: Vec<usize>,
        columns: Vec<usize>,
    },
}

/// A local CSR block: row `i`'s entries are `row_starts[i]..row_starts[i+1]` of the columns
/// and `values`, columns ascending and distinct within a row.
pub(crate) struct LocalCsr {
    pub(crate) indices: Indices,
    pub(crate) values: Vec<f64>,
    rows: usize,
}

/// A borrowed block with a concrete index type, for the kernels.
#[derive(Clone, Copy)]
pub(crate) struct CsrView<'a, I> {
    pub(crate) row_starts: &'a [I],
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
        debug_assert!(row_starts.windows(2).all(|w| w[0] <= w[1]));
        debug_assert!(columns.iter().all(|&c| c < width.max(1)));
        let rows = row_starts.len() - 1;
        let narrow = u32::try_from(width).is_ok() && u32::try_from(columns.len()).is_ok();
        let indices = if narrow {
            Indices::Narrow {
                row_starts: row_starts.into_iter().map(|k| k as u32).collect(),
                columns: columns.into_iter().map(|c| c as u32).collect(),
            }
        } else {
            Indices::Wide {
                row_starts,
                columns,
            }
        };
        LocalCsr {
            indices,
            values,
            rows,
        }
    }

    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    pub(crate) fn entries(&self) -> usize {
        self.values.len()
    }

    /// Bytes of an index.
    pub(crate) fn index_bytes(&self) -> usize {
        match &self.indices {
            Indices::Narrow { .. } => 4,
            Indices::Wide { .. } => 8,
        }
    }

    /// Entry `k`'s column, and row `i`'s first entry.
    fn column(&self, k: usize) -> usize {
        match &self.indices {
            Indices::Narrow { columns, .. } => columns[k] as usize,
            Indices::Wide { columns, .. } => columns[k],
        }
    }

    fn row_start(&self, i: usize) -> usize {
        match &self.indices {
            Indices::Narrow { row_starts, .. } => row_starts[i] as usize,
            Indices::Wide { row_starts, .. } => row_starts[i],
        }
    }

    /// Row `row`'s `(column, value)` pairs.
    pub(crate) fn row(&self, row: usize) -> impl Iterator<Item = (usize, f64)> + '_ {
        (self.row_start(row)..self.row_start(row + 1)).map(|k| (self.column(k), self.values[k]))
    }

    /// The value at (`row`, `column`), if stored.
    pub(crate) fn get(&self, row: usize, column: usize) -> Option<f64> {
        let range = self.row_start(row)..self.row_start(row + 1);
        let position = match &self.indices {
            Indices::Narrow { columns, .. } => {
                columns[range.clone()].binary_search(&(column as u32)).ok()
            }
            Indices::Wide { columns, .. } => columns[range.clone()].binary_search(&column).ok(),
        };
        position.map(|p| self.values[range.start + p])
    }

    pub(crate) fn to_parts(&self) -> (Vec<usize>, Vec<usize>, Vec<f64>) {
        let row_starts = (0..=self.rows).map(|i| self.row_start(i)).collect();
        let columns = (0..self.entries()).map(|k| self.column(k)).collect();
        (row_starts, columns, self.values.clone())
    }
}

/// Calls `f` with the block viewed at its concrete index type.
macro_rules! with_view {
    ($csr:expr, |$view:ident| $body:expr) => {
        match &$csr.indices {
            $crate::sparse::local::Indices::Narrow {
                row_starts,
                columns,
            } => {
                let $view = $crate::sparse::local::CsrView {
                    row_starts: row_starts.as_slice(),
                    columns: columns.as_slice(),
                    values: &$csr.values,
                };
                $body
            }
            $crate::sparse::local::Indices::Wide {
                row_starts,
                columns,
            } => {
                let $view = $crate::sparse::local::CsrView {
                    row_starts: row_starts.as_slice(),
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
    /// `y[k] = Σ row (first + k) · x` for every `k`, each row summed in [`Lanes`].
    ///
    /// # Safety
    /// Rows `first..first + y.len()` must be rows of the block, and every column below
    /// `x.len()` (both validated at assembly; `x`'s length is checked by the product).
    #[inline]
    pub(crate) unsafe fn rows_into(&self, first: usize, x: &[f64], y: &mut [f64]) {
        debug_assert!(first + y.len() < self.row_starts.len());
        // SAFETY: as this function's contract (the rows exist).
        let entries = unsafe {
            self.row_starts.get_unchecked(first + y.len()).at()
                - self.row_starts.get_unchecked(first).at()
        };
        // Short rows (a stencil's) need the prefetch hints; long ones are streams that the
        // hardware prefetchers follow, where the hints only cost (NPB CG's rows of ~130).
        // SAFETY: as this function's contract.
        unsafe {
            if entries <= SHORT_ROWS * y.len() {
                self.rows_into_with::<true>(first, x, y)
            } else {
                self.rows_into_with::<false>(first, x, y)
            }
        }
    }

    /// [`rows_into`](Self::rows_into), with or without prefetch hints.
    ///
    /// # Safety
    /// As `rows_into`.
    #[inline(always)]
    unsafe fn rows_into_with<const PREFETCH: bool>(&self, first: usize, x: &[f64], y: &mut [f64]) {
        // SAFETY: the caller guarantees the rows exist; row starts are non-decreasing and end
        // at the entry count, so every entry index is inside `columns` and `values`.
        unsafe {
            let mut start = self.row_starts.get_unchecked(first).at();
            for (k, yk) in y.iter_mut().enumerate() {
                let end = self.row_starts.get_unchecked(first + k + 1).at();
                if PREFETCH {
                    prefetch(
                        self.values
                            .as_ptr()
                            .wrapping_add(start + PREFETCH_BYTES / 8),
                    );
                    prefetch(
                        self.columns
                            .as_ptr()
                            .wrapping_add(start + PREFETCH_BYTES / size_of::<I>()),
                    );
                }
                *yk = row_sum(
                    self.columns.get_unchecked(start..end),
                    self.values.get_unchecked(start..end),
                    x,
                );
                start = end;
            }
        }
    }
}

/// Rows of at most this many entries on average are "short": the kernel prefetches for them.
const SHORT_ROWS: usize = 16;

/// How far ahead of the row being summed the kernel asks for the matrix's arrays. Rows of a
/// few entries each are too short for the hardware prefetchers to run far enough ahead on
/// their own: asking 2 KiB ahead takes the 2-D Poisson product from about 0.83 to about 1.0
/// times the STREAM triad bandwidth (see the performance docs).
const PREFETCH_BYTES: usize = 2048;

/// A hint that the cache line at `at` will be read soon (nothing on other architectures).
#[inline(always)]
fn prefetch<T>(at: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it never faults and reads nothing into the program,
    // whatever the address (`at` may lie past the array's end; it was made with
    // `wrapping_add`, and is never dereferenced). SSE is part of the x86_64 baseline.
    unsafe {
        std::arch::x86_64::_mm_prefetch(at.cast::<i8>(), std::arch::x86_64::_MM_HINT_T0)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}

/// A whole row's sum in [`Lanes`].
///
/// # Safety
/// Every column must be below `x.len()`.
#[inline(always)]
unsafe fn row_sum<I: ColumnIndex>(columns: &[I], values: &[f64], x: &[f64]) -> f64 {
    let mut sum = Lanes::new();
    // SAFETY: as the caller guarantees.
    unsafe { sum.add(columns, values, x) };
    sum.total()
}

/// A row's sum in four interleaved lanes: entry `k` of the row (in global column order) goes
/// to lane `k mod 4`, each lane adds its entries in order from zero, and the row's value is
/// `(l0 + l1) + (l2 + l3)`. Four independent chains of additions instead of one, so long rows
/// are not bound by the latency of one running sum; and one fixed order whatever the split, so
/// the product stays bit-identical at any rank and thread count.
#[derive(Clone, Copy)]
pub(crate) struct Lanes {
    sums: [f64; 4],
    /// The row position of the next entry.
    next: usize,
}

impl Lanes {
    pub(crate) fn new() -> Lanes {
        Lanes {
            sums: [0.0; 4],
            next: 0,
        }
    }

    /// Adds the next segment of the row: `values[k] · x[columns[k]]`, continuing the row's
    /// positions.
    ///
    /// # Safety
    /// Every column must be below `x.len()` (validated at assembly; `x`'s length is checked
    /// by the product before any kernel runs).
    #[inline(always)]
    pub(crate) unsafe fn add<I: ColumnIndex>(&mut self, columns: &[I], values: &[f64], x: &[f64]) {
        let n = columns.len().min(values.len());
        // SAFETY: `k < n` indexes both slices; the caller guarantees every column < x.len().
        let term = |k: usize| unsafe {
            *values.get_unchecked(k) * *x.get_unchecked(columns.get_unchecked(k).at())
        };
        // Lane `(next + k) % 4` for entry k: rotate the lanes so that entry k of every group
        // of four goes to a fixed local (what the compiler keeps in registers).
        let turn = self.next % 4;
        let lane = |j: usize| (turn + j) % 4;
        let (mut a, mut b, mut c, mut d) = (
            self.sums[lane(0)],
            self.sums[lane(1)],
            self.sums[lane(2)],
            self.sums[lane(3)],
        );
        let mut k = 0;
        while k + 4 <= n {
            a += term(k);
            b += term(k + 1);
            c += term(k + 2);
            d += term(k + 3);
            k += 4;
        }
        match n - k {
            1 => a += term(k),
            2 => {
                a += term(k);
                b += term(k + 1);
            }
            3 => {
                a += term(k);
                b += term(k + 1);
                c += term(k + 2);
            }
            _ => {}
        }
        (
            self.sums[lane(0)],
            self.sums[lane(1)],
            self.sums[lane(2)],
            self.sums[lane(3)],
        ) = (a, b, c, d);
        self.next += n;
    }

    /// The row's value.
    pub(crate) fn total(self) -> f64 {
        (self.sums[0] + self.sums[1]) + (self.sums[2] + self.sums[3])
    }
}
