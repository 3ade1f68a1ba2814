//! 2-D arrays on a 2-D process grid (an MPI Cartesian topology): both axes split, halos on
//! all four sides.
//!
//! A row split gives each rank a full-width slab: its halo is two rows of `m` elements
//! whatever the rank count. On a `pr × pc` grid each rank owns an `n/pr × m/pc` tile whose
//! halo is `2(n/pr + m/pc)` elements, so the communication per rank shrinks as ranks are
//! added: what large stencils need to keep scaling.
//!
//! ```no_run
//! use spmd::array::{GridArray, ProcessGrid};
//!
//! fn main() -> spmd::Result<()> {
//!     let spmd = spmd::Spmd::init()?;
//!     let world = spmd.world();
//!     let shape = (2048, 2048);
//!     // The grid whose tiles have the least halo for this shape, periodic in neither axis.
//!     let grid = ProcessGrid::for_shape(world, shape, [false, false])?;
//!     let mut u = GridArray::from_fn(world, &grid, shape, 1, |(i, j)| (i * j) as f64)?;
//!     u.exchange_halos(world)?; // four sides and the corners
//!     let tile = u.local_with_ghosts(); // (rows + 2) x (cols + 2)
//!     println!("{:?} {:?}", grid.dims(), tile.dim());
//!     Ok(())
//! }
//! ```

use std::mem::size_of;

use mpi::topology::{CartesianCommunicator, Communicator};
use ndarray::{s, Array2, ArrayView2, ArrayViewMut2};
use rayon::prelude::*;

use super::halo::exchange;
use super::transfer::{contiguous_or_packed, receive_chunked, send_chunked};
use super::{Element, Par};
use crate::collective::{as_field, check_root, Number, Op, Preflight};
use crate::comm::Comm;
use crate::error::{Error, ErrorKind, Result};
use crate::partition::Partition;

/// A `rows × cols` arrangement of the ranks of a communicator as an MPI Cartesian topology,
/// rank `r` at coordinates `(r / cols, r % cols)` (MPI's row-major order).
pub struct ProcessGrid {
    dims: [usize; 2],
    coords: [usize; 2],
    periodic: [bool; 2],
    /// `[up, down, left, right]`: the neighbouring ranks, `None` at a non-periodic edge.
    neighbours: [Option<usize>; 4],
    cartesian: CartesianCommunicator,
}

impl std::fmt::Debug for ProcessGrid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessGrid")
            .field("dims", &self.dims)
            .field("coords", &self.coords)
            .field("periodic", &self.periodic)
            .field("neighbours", &self.neighbours)
            .finish()
    }
}

impl ProcessGrid {
    /// The ranks of `comm` as a `dims[0] × dims[1]` grid (`MPI_Cart_create`, ranks not
    /// reordered), wrapping around along the axes that are `periodic`. Collective.
    ///
    /// # Errors
    /// `InvalidPartition`, on every rank, if `dims[0] × dims[1]` is not the number of ranks;
    /// `Disagreement` if ranks pass different `dims` or `periodic`.
    pub fn new(comm: &Comm, dims: [usize; 2], periodic: [bool; 2]) -> Result<ProcessGrid> {
        const OP: &str = "ProcessGrid::new";
        let wrong = (dims[0].checked_mul(dims[1]) != Some(comm.size())).then(|| {
            Error::new(
                ErrorKind::InvalidPartition,
                format!(
                    "{OP}: a {} x {} grid needs {} ranks, but the communicator has {}",
                    dims[0],
                    dims[1],
                    dims[0].saturating_mul(dims[1]),
                    comm.size()
                ),
            )
        });
        comm.preflight(Preflight {
            op: OP,
            local_error: wrong,
            agree: &[
                ("the grid's rows", as_field(dims[0])),
                ("the grid's columns", as_field(dims[1])),
                (
                    "the periodicity",
                    i64::from(periodic[0]) * 2 + i64::from(periodic[1]),
                ),
            ],
        })?;
        let cartesian = comm
            .raw()
            .create_cartesian_communicator(&[dims[0] as i32, dims[1] as i32], &periodic, false)
            .expect("every rank belongs to a grid of exactly the communicator's size");
        let layout = cartesian.get_layout();
        let coords = [layout.coords[0] as usize, layout.coords[1] as usize];
        let rank_of = |r: Option<i32>| r.map(|r| r as usize);
        let (up, down) = cartesian.shift(0, 1);
        let (left, right) = cartesian.shift(1, 1);
        Ok(ProcessGrid {
            dims,
            coords,
            periodic,
            neighbours: [rank_of(up), rank_of(down), rank_of(left), rank_of(right)],
            cartesian,
        })
    }

    /// The grid for a `shape` array whose tiles have the smallest halo: of all `rows × cols =
    /// size` factorisations, the one minimising `shape.0 / rows + shape.1 / cols`. Collective.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn for_shape(
        comm: &Comm,
        shape: (usize, usize),
        periodic: [bool; 2],
    ) -> Result<ProcessGrid> {
        ProcessGrid::new(comm, best_dims(comm.size(), shape), periodic)
    }

    /// `[rows, cols]` of the grid.
    pub fn dims(&self) -> [usize; 2] {
        self.dims
    }

    /// This rank's `[row, col]` in the grid.
    pub fn coords(&self) -> [usize; 2] {
        self.coords
    }

    /// Whether the grid wraps around along each axis.
    pub fn periodic(&self) -> [bool; 2] {
        self.periodic
    }

    /// The rank above, below, left and right of this one (`None` at a non-periodic edge).
    pub fn neighbours(&self) -> [Option<usize>; 4] {
        self.neighbours
    }

    /// The MPI Cartesian communicator, for anything the grid does not cover.
    pub fn cartesian(&self) -> &CartesianCommunicator {
        &self.cartesian
    }
}

/// The factorisation `rows × cols = p` with the least halo for `shape`.
fn best_dims(p: usize, shape: (usize, usize)) -> [usize; 2] {
    let halo = |rows: usize| shape.0.div_ceil(rows) + shape.1.div_ceil(p / rows);
    (1..=p)
        .filter(|rows| p % rows == 0)
        .min_by_key(|&rows| (halo(rows), rows.abs_diff(p / rows)))
        .map_or([1, p.max(1)], |rows| [rows, p / rows])
}

/// A 2-D array split in blocks along both axes over a [`ProcessGrid`], with ghost layers on
/// all four sides of every tile.
#[derive(Clone, Debug)]
pub struct GridArray<T> {
    data: Array2<T>,
    shape: (usize, usize),
    rows: Partition,
    cols: Partition,
    coords: [usize; 2],
    neighbours: [Option<usize>; 4],
    rank: usize,
    size: usize,
    ghosts: usize,
    halo_agreed: bool,
    par: Par,
}

impl<T: Element> GridArray<T> {
    /// Element `(i, j)` is `f((i, j))`; each rank fills its own tile in parallel, ghosts get
    /// `T::default()`. No communication.
    ///
    /// # Errors
    /// `InvalidPartition` if `grid` is not a grid of `comm`'s ranks; `Shape`, the same on
    /// every rank, if `ghosts` exceeds some tile's rows or columns.
    pub fn from_fn<F>(
        comm: &Comm,
        grid: &ProcessGrid,
        shape: (usize, usize),
        ghosts: usize,
        f: F,
    ) -> Result<GridArray<T>>
    where
        F: Fn((usize, usize)) -> T + Sync + Send,
    {
        if grid.dims[0] * grid.dims[1] != comm.size()
            || comm.size() != grid.cartesian.size() as usize
        {
            return Err(Error::new(
                ErrorKind::InvalidPartition,
                format!(
                    "the {:?} grid is not a grid of this communicator's {} ranks",
                    grid.dims,
                    comm.size()
                ),
            ));
        }
        let rows = Partition::block(shape.0, grid.dims[0])?;
        let cols = Partition::block(shape.1, grid.dims[1])?;
        for (axis, part) in [(0, &rows), (1, &cols)] {
            let counts = part.counts();
            if let Some((k, &count)) = counts.iter().enumerate().find(|&(_, &c)| c < ghosts) {
                return Err(Error::new(
                    ErrorKind::Shape,
                    format!(
                        "ghost width {ghosts} is wider than grid {} {k}'s {count} {} (shape {:?} on a {:?} grid)",
                        ["row", "column"][axis],
                        ["rows", "columns"][axis],
                        shape,
                        grid.dims
                    ),
                ));
            }
        }
        let [r, c] = grid.coords;
        let (nr, nc) = (rows.count(r), cols.count(c));
        // The largest halo message: `ghosts` full padded rows, or `ghosts` columns of a tile.
        let widest = ghosts.saturating_mul(rows.max_count().max(cols.max_count() + 2 * ghosts));
        if widest > i32::MAX as usize {
            return Err(Error::new(
                ErrorKind::CountOverflow,
                format!("a halo message of {widest} elements exceeds MPI's i32 count"),
            ));
        }
        let (row0, col0) = (rows.displacements()[r], cols.displacements()[c]);
        let mut data = Array2::from_elem((nr + 2 * ghosts, nc + 2 * ghosts), T::default());
        data.slice_mut(s![ghosts..ghosts + nr, ghosts..ghosts + nc])
            .axis_iter_mut(ndarray::Axis(0))
            .into_par_iter()
            .enumerate()
            .for_each(|(i, mut row)| {
                for (j, x) in row.iter_mut().enumerate() {
                    *x = f((row0 + i, col0 + j));
                }
            });
        Ok(GridArray {
            data,
            shape,
            rows,
            cols,
            coords: grid.coords,
            neighbours: grid.neighbours,
            rank: comm.rank(),
            size: comm.size(),
            ghosts,
            halo_agreed: false,
            par: Par::default(),
        })
    }

    /// The global shape.
    pub fn shape(&self) -> (usize, usize) {
        self.shape
    }

    /// The ghost width on every side.
    pub fn ghosts(&self) -> usize {
        self.ghosts
    }

    /// The global rows and columns of this rank's tile.
    pub fn tile(&self) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
        let [r, c] = self.coords;
        let (row0, col0) = (self.rows.displacements()[r], self.cols.displacements()[c]);
        (
            row0..row0 + self.rows.count(r),
            col0..col0 + self.cols.count(c),
        )
    }

    /// This rank's tile without ghosts.
    pub fn local(&self) -> ArrayView2<'_, T> {
        let (w, (rows, cols)) = (self.ghosts, self.tile());
        self.data.slice(s![w..w + rows.len(), w..w + cols.len()])
    }

    /// This rank's tile without ghosts, mutably.
    pub fn local_mut(&mut self) -> ArrayViewMut2<'_, T> {
        let (w, (rows, cols)) = (self.ghosts, self.tile());
        self.data
            .slice_mut(s![w..w + rows.len(), w..w + cols.len()])
    }

    /// The tile with `ghosts()` layers on each side.
    pub fn local_with_ghosts(&self) -> ArrayView2<'_, T> {
        self.data.view()
    }

    /// The tile with its ghosts, mutably (e.g. to set fixed boundary values).
    pub fn local_with_ghosts_mut(&mut self) -> ArrayViewMut2<'_, T> {
        self.data.view_mut()
    }

    /// Fills the ghosts from the four neighbouring tiles, corners included (from the diagonal
    /// neighbours, so 9-point stencils work): first columns left and right, then full rows
    /// (with their fresh ghost columns) up and down. At a non-periodic edge the ghosts are left
    /// alone. Collective.
    ///
    /// Communication: four `MPI_Sendrecv` (columns packed, rows in place); the agreement check
    /// runs on the first call only.
    ///
    /// # Errors
    /// `InvalidPartition` if `comm` is not the grid's communicator; `Disagreement` if ranks
    /// hold differently shaped arrays or ghost widths.
    pub fn exchange_halos(&mut self, comm: &Comm) -> Result<()> {
        const OP: &str = "GridArray::exchange_halos";
        let w = self.ghosts;
        let (nr, nc) = (self.data.nrows() - 2 * w, self.data.ncols() - 2 * w);
        let bytes = 2 * w * (nr + nc + 2 * w) * 2 * size_of::<T>();
        let _timer = comm.timed(OP, bytes);
        let local_error = self.comm_error(comm, OP);
        if !self.halo_agreed {
            comm.preflight(Preflight {
                op: OP,
                local_error,
                agree: &[
                    (
                        "the global shape",
                        super::shape_fingerprint(&[self.shape.0, self.shape.1]),
                    ),
                    ("the ghost width", as_field(w)),
                ],
            })?;
            self.halo_agreed = comm.agreement_checks();
        } else if let Some(e) = local_error {
            return Err(e);
        }
        if w == 0 {
            return Ok(());
        }
        let [up, down, left, right] = self.neighbours;
        // Columns of the owned rows, packed: send my left columns left, receive my right ghosts.
        let band = w..w + nr;
        self.exchange_columns(
            comm,
            band.clone(),
            w..2 * w,
            left,
            w + nc..2 * w + nc,
            right,
        );
        self.exchange_columns(comm, band, nc..nc + w, right, 0..w, left);
        // Whole padded rows are contiguous: in place. Padded rows: [0, w) top ghosts,
        // [w, w + nr) owned, [w + nr, 2w + nr) bottom ghosts.
        let width = nc + 2 * w;
        let data = self.data.as_slice_mut().expect("tiles are standard layout");
        let rows = |r: std::ops::Range<usize>| r.start * width..r.end * width;
        // Up: my top owned rows to the rank above, my bottom ghosts from the rank below.
        let (owned_and_top, bottom_ghosts) = data.split_at_mut((w + nr) * width);
        exchange(
            comm,
            &owned_and_top[rows(w..2 * w)],
            up,
            bottom_ghosts,
            down,
        );
        // Down: my bottom owned rows to the rank below, my top ghosts from the rank above.
        let (top_ghosts, below) = data.split_at_mut(w * width);
        exchange(comm, &below[rows(nr - w..nr)], down, top_ghosts, up);
        Ok(())
    }

    fn exchange_columns(
        &mut self,
        comm: &Comm,
        band: std::ops::Range<usize>,
        send: std::ops::Range<usize>,
        to: Option<usize>,
        receive: std::ops::Range<usize>,
        from: Option<usize>,
    ) {
        let mut packed = Vec::new();
        let outgoing = self.data.slice(s![band.clone(), send]);
        let outgoing = contiguous_or_packed(&outgoing, &mut packed).to_vec();
        let mut incoming = vec![T::default(); outgoing.len()];
        exchange(comm, &outgoing, to, &mut incoming, from);
        if from.is_some() {
            self.data
                .slice_mut(s![band, receive])
                .iter_mut()
                .zip(incoming)
                .for_each(|(slot, v)| *slot = v);
        }
    }

    /// The whole array on `root` (`Some` there). Collective: each tile travels point-to-point.
    ///
    /// # Errors
    /// `InvalidRoot`; `InvalidPartition` if `comm` is not the grid's communicator;
    /// `Disagreement` if ranks hold differently shaped arrays.
    pub fn gather(&self, comm: &Comm, root: usize) -> Result<Option<Array2<T>>> {
        const OP: &str = "GridArray::gather";
        let _timer = comm.timed(OP, self.local().len() * size_of::<T>());
        comm.preflight(Preflight {
            op: OP,
            local_error: check_root(root, comm.size(), OP).or_else(|| self.comm_error(comm, OP)),
            agree: &[
                ("the root", as_field(root)),
                (
                    "the global shape",
                    super::shape_fingerprint(&[self.shape.0, self.shape.1]),
                ),
            ],
        })?;
        let mut packed = Vec::new();
        if comm.rank() != root {
            send_chunked(comm, root, contiguous_or_packed(&self.local(), &mut packed));
            return Ok(None);
        }
        let mut global = Array2::from_elem(self.shape, T::default());
        let pc = self.cols.parts();
        for rank in 0..comm.size() {
            let (r, c) = (rank / pc, rank % pc);
            let (row0, col0) = (self.rows.displacements()[r], self.cols.displacements()[c]);
            let (nr, nc) = (self.rows.count(r), self.cols.count(c));
            let mut target = global.slice_mut(s![row0..row0 + nr, col0..col0 + nc]);
            if rank == root {
                target.assign(&self.local());
            } else {
                packed.clear();
                packed.resize(nr * nc, T::default());
                receive_chunked(comm, rank, &mut packed);
                target
                    .assign(&ArrayView2::from_shape((nr, nc), &packed).expect("sized to the tile"));
            }
        }
        Ok(Some(global))
    }

    fn comm_error(&self, comm: &Comm, op: &str) -> Option<Error> {
        (comm.size() != self.size || comm.rank() != self.rank).then(|| {
            Error::new(
                ErrorKind::InvalidPartition,
                format!(
                    "{op}: the array lives on a grid of {} ranks (this is rank {}), but the \
                     communicator has {} ranks (this is rank {})",
                    self.size,
                    self.rank,
                    comm.size(),
                    comm.rank()
                ),
            )
        })
    }
}

impl<T: Element + Number> GridArray<T> {
    /// The sum of all elements (ghosts excluded) over all ranks. Collective: one
    /// `all_reduce` after a local rayon sum.
    ///
    /// # Errors
    /// `InvalidPartition` if `comm` is not the grid's communicator.
    pub fn sum(&self, comm: &Comm) -> Result<T> {
        const OP: &str = "GridArray::sum";
        let _timer = comm.timed(OP, 2 * size_of::<T>());
        comm.preflight(Preflight {
            op: OP,
            local_error: self.comm_error(comm, OP),
            agree: &[(
                "the global shape",
                super::shape_fingerprint(&[self.shape.0, self.shape.1]),
            )],
        })?;
        let local = self.local();
        let mine = match self.par {
            Par::Rayon => local
                .axis_iter(ndarray::Axis(0))
                .into_par_iter()
                .map(|row| super::ops::local_sum(&row, Par::Seq))
                .reduce(T::zero, |a, b| a + b),
            Par::Seq => super::ops::local_sum(&local, Par::Seq),
        };
        Ok(comm.all_reduce(mine, Op::Sum))
    }
}

#[cfg(test)]
mod tests {
    use super::best_dims;

    #[test]
    fn best_dims_follow_the_shape() {
        assert_eq!(best_dims(1, (10, 10)), [1, 1]);
        assert_eq!(best_dims(4, (1000, 1000)), [2, 2]);
        // Tall arrays are cut across their rows, wide ones across their columns.
        assert_eq!(best_dims(4, (10_000, 10)), [4, 1]);
        assert_eq!(best_dims(4, (10, 10_000)), [1, 4]);
        assert_eq!(best_dims(6, (600, 600)), [2, 3]);
        assert_eq!(best_dims(7, (100, 100)), [1, 7]);
    }
}
