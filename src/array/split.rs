//! [`Split`]: how a [`DistArray`](super::DistArray)'s axes are divided over the ranks, and its
//! resolved form, the layout, which answers every index question without communication.
//!
//! A split names up to [`MAX_SPLIT_AXES`] axes. Each split axis has a
//! [`Distribution`] and a number of ranks along it; the ranks form a process grid, rank `r`
//! at the row-major coordinates of `r` in that grid (MPI's Cartesian order), and owns the
//! product of its index sets along the split axes and everything along the other axes. A
//! one-axis split ([`Split::block`], [`Split::cyclic`], [`Split::block_cyclic`]) puts all
//! ranks along its axis; [`Split::grid`] splits several axes in blocks.

use std::fmt;
use std::ops::Range;

use ndarray::Dimension;

use crate::collective::fingerprint;
use crate::error::{Error, ErrorKind, Result};
use crate::partition::{Distribution, Partition};

/// The most axes one array can be split along (a 3-D process grid).
pub const MAX_SPLIT_AXES: usize = 3;

/// One split axis: which axis, how its indices are dealt out, and over how many ranks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SplitAxis {
    /// The array axis whose indices are distributed.
    pub axis: usize,
    /// How they are distributed.
    pub distribution: Distribution,
    /// How many ranks lie along this axis of the process grid (`None`: decided when the array
    /// is made, from the number of ranks and the shape).
    pub ranks: Option<usize>,
}

/// Which axes of an array are split over the ranks, and how.
///
/// A split names up to [`MAX_SPLIT_AXES`] axes. Each split axis has a [`Distribution`] and a
/// number of ranks along it; the ranks form a process grid, rank `r` at the row-major
/// coordinates of `r` in that grid (MPI's Cartesian order), and own the product of their index
/// sets along the split axes and everything along the other axes. A one-axis split
/// ([`Split::block`], [`Split::cyclic`], [`Split::block_cyclic`]) puts all ranks along its
/// axis; [`Split::grid`] splits several axes in blocks.
///
/// ```
/// use spmd::array::Split;
/// let rows = Split::block(0);            // all ranks along axis 0
/// let columns = Split::cyclic(1);        // round robin along axis 1
/// let tiles = Split::grid(&[2, 3]);      // 6 ranks: 2 along axis 0 times 3 along axis 1
/// let auto = Split::grid_auto(2);        // blocks along axes 0 and 1, grid chosen for the shape
/// assert_eq!(tiles.axes().count(), 2);
/// assert_eq!(rows.to_string(), "block along axis 0");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Split {
    axes: [Option<SplitAxis>; MAX_SPLIT_AXES],
}

impl fmt::Debug for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Split({self})")
    }
}

impl Split {
    fn one(axis: usize, distribution: Distribution) -> Split {
        Split {
            axes: [
                Some(SplitAxis {
                    axis,
                    distribution,
                    ranks: None,
                }),
                None,
                None,
            ],
        }
    }

    /// Contiguous balanced blocks along `axis`, over all ranks.
    pub fn block(axis: usize) -> Split {
        Split::one(axis, Distribution::Block)
    }

    /// Round robin along `axis`, over all ranks.
    pub fn cyclic(axis: usize) -> Split {
        Split::one(axis, Distribution::Cyclic)
    }

    /// Round robin of blocks of `block_size` along `axis`, over all ranks.
    pub fn block_cyclic(axis: usize, block_size: usize) -> Split {
        Split::one(axis, Distribution::BlockCyclic(block_size))
    }

    /// A split along the given axes, in process-grid order: any distribution per axis, rank
    /// counts given or (`ranks: None`) chosen when the array is made. Axes given twice or
    /// beyond the array are refused when the array is made.
    ///
    /// ```
    /// use spmd::array::{Split, SplitAxis};
    /// use spmd::Distribution;
    /// // Cyclic rows over 2 ranks times column blocks over 3.
    /// let split = Split::from_axes(&[
    ///     SplitAxis { axis: 0, distribution: Distribution::Cyclic, ranks: Some(2) },
    ///     SplitAxis { axis: 1, distribution: Distribution::Block, ranks: Some(3) },
    /// ]);
    /// assert_eq!(split.to_string(), "cyclic along axis 0, block along axis 1 on a 2 x 3 grid");
    /// ```
    ///
    /// # Panics
    /// If `axes` is empty or has more than [`MAX_SPLIT_AXES`] entries.
    #[track_caller]
    pub fn from_axes(axes: &[SplitAxis]) -> Split {
        assert!(
            (1..=MAX_SPLIT_AXES).contains(&axes.len()),
            "a split needs 1 to {MAX_SPLIT_AXES} axes, found {}",
            axes.len()
        );
        let mut slots = [None; MAX_SPLIT_AXES];
        for (slot, &axis) in slots.iter_mut().zip(axes) {
            *slot = Some(axis);
        }
        Split { axes: slots }
    }

    /// Blocks along axes `0..dims.len()` on a `dims[0] × dims[1] × …` process grid, whose
    /// product must be the number of ranks. Each rank then owns a tile, whose halo shrinks
    /// along every split axis as ranks are added: what large stencils need to keep scaling.
    ///
    /// # Panics
    /// If `dims` is empty or has more than [`MAX_SPLIT_AXES`] entries.
    #[track_caller]
    pub fn grid(dims: &[usize]) -> Split {
        Split::blocks(dims.iter().map(|&d| Some(d)).collect())
    }

    /// Blocks along axes `0..axes` on the process grid, among all that have as many ranks as
    /// the communicator, whose tiles have the smallest halo for the array's shape (ties: the
    /// most even grid). Every rank computes the same grid from the shape and rank count.
    ///
    /// # Panics
    /// If `axes` is 0 or above [`MAX_SPLIT_AXES`].
    #[track_caller]
    pub fn grid_auto(axes: usize) -> Split {
        Split::blocks(vec![None; axes])
    }

    #[track_caller]
    fn blocks(ranks: Vec<Option<usize>>) -> Split {
        assert!(
            (1..=MAX_SPLIT_AXES).contains(&ranks.len()),
            "a grid split needs 1 to {MAX_SPLIT_AXES} axes, found {}",
            ranks.len()
        );
        let mut axes = [None; MAX_SPLIT_AXES];
        for (axis, ranks) in ranks.into_iter().enumerate() {
            axes[axis] = Some(SplitAxis {
                axis,
                distribution: Distribution::Block,
                ranks,
            });
        }
        Split { axes }
    }

    /// The split axes, in process-grid order.
    pub fn axes(&self) -> impl Iterator<Item = SplitAxis> + '_ {
        self.axes.iter().flatten().copied()
    }

    /// The split along `axis`, if that axis is split.
    pub fn along(&self, axis: usize) -> Option<SplitAxis> {
        self.axes().find(|s| s.axis == axis)
    }

    /// A number that differs between splits, for agreement checks.
    pub(crate) fn key(&self) -> i64 {
        fingerprint(self.axes().flat_map(|s| {
            [
                s.axis as i64,
                s.distribution.code(),
                s.ranks.map_or(-1, |r| r as i64),
            ]
            .into_iter()
            .flat_map(i64::to_le_bytes)
        }))
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let axes: Vec<SplitAxis> = self.axes().collect();
        let same = axes
            .windows(2)
            .all(|w| w[0].distribution == w[1].distribution);
        match axes.as_slice() {
            [] => return f.write_str("no axis"),
            [one] => write!(f, "{} along axis {}", one.distribution, one.axis)?,
            many if same => {
                let names: Vec<String> = many.iter().map(|s| s.axis.to_string()).collect();
                write!(
                    f,
                    "{} along axes {}",
                    many[0].distribution,
                    names.join(", ")
                )?
            }
            many => {
                let parts: Vec<String> = many
                    .iter()
                    .map(|s| format!("{} along axis {}", s.distribution, s.axis))
                    .collect();
                f.write_str(&parts.join(", "))?
            }
        }
        if let [SplitAxis {
            ranks: Some(ranks), ..
        }] = axes.as_slice()
        {
            write!(f, " over {ranks} ranks")?;
        } else if axes.len() > 1 {
            let dims: Vec<String> = axes
                .iter()
                .map(|s| s.ranks.map_or("?".into(), |r| r.to_string()))
                .collect();
            write!(f, " on a {} grid", dims.join(" x "))?;
        }
        Ok(())
    }
}

/// The indices of one axis a rank holds, in local order: a contiguous range or a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Indices {
    Range(Range<usize>),
    List(Vec<usize>),
}

impl Indices {
    /// `list` as a range when it is one.
    pub(crate) fn from_list(list: Vec<usize>) -> Indices {
        match (list.first(), list.last()) {
            (Some(&first), Some(&last)) if last - first + 1 == list.len() => {
                Indices::Range(first..last + 1)
            }
            (None, _) => Indices::Range(0..0),
            _ => Indices::List(list),
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Indices::Range(r) => r.len(),
            Indices::List(l) => l.len(),
        }
    }

    pub(crate) fn to_vec(&self) -> Vec<usize> {
        match self {
            Indices::Range(r) => r.clone().collect(),
            Indices::List(l) => l.clone(),
        }
    }
}

/// A resolved split axis: its partition over the ranks along it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AxisPart {
    pub axis: usize,
    pub partition: Partition,
}

/// A [`Split`] resolved for one shape and rank count: every index question answered locally.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    parts: [Option<AxisPart>; MAX_SPLIT_AXES],
}

impl Layout {
    /// Resolves `split` for an array of `shape` over `ranks` ranks.
    ///
    /// # Errors
    /// `Shape` if a split axis does not exist or appears twice; `InvalidPartition` for a
    /// block-cyclic block size of 0, a split without axes, or a process grid whose size is not
    /// `ranks`.
    pub(crate) fn new(split: Split, shape: &[usize], ranks: usize) -> Result<Layout> {
        let axes: Vec<SplitAxis> = split.axes().collect();
        if axes.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidPartition,
                "a split needs at least one axis",
            ));
        }
        for (i, s) in axes.iter().enumerate() {
            if s.axis >= shape.len() {
                return Err(Error::new(
                    ErrorKind::Shape,
                    format!(
                        "split axis {} does not exist in a {}-dimensional array of shape {:?}",
                        s.axis,
                        shape.len(),
                        shape
                    ),
                ));
            }
            if axes[..i].iter().any(|t| t.axis == s.axis) {
                return Err(Error::new(
                    ErrorKind::Shape,
                    format!("axis {} is split twice in {split}", s.axis),
                ));
            }
        }
        let dims = grid_dims(&axes, shape, ranks)?;
        let mut parts = [None; MAX_SPLIT_AXES];
        for ((slot, s), d) in parts.iter_mut().zip(&axes).zip(dims) {
            *slot = Some(AxisPart {
                axis: s.axis,
                partition: Partition::new(s.distribution, shape[s.axis], d)?,
            });
        }
        Ok(Layout { parts })
    }

    /// The resolved split (grid dimensions filled in).
    pub(crate) fn split(&self) -> Split {
        let mut axes = [None; MAX_SPLIT_AXES];
        for (slot, p) in axes.iter_mut().zip(self.parts()) {
            *slot = Some(SplitAxis {
                axis: p.axis,
                distribution: p.partition.distribution(),
                ranks: Some(p.partition.parts()),
            });
        }
        Split { axes }
    }

    /// The split axes in grid order.
    pub(crate) fn parts(&self) -> impl Iterator<Item = &AxisPart> + Clone {
        self.parts.iter().flatten()
    }

    /// The partition along `axis`, if it is split.
    pub(crate) fn part(&self, axis: usize) -> Option<&Partition> {
        self.parts().find(|p| p.axis == axis).map(|p| &p.partition)
    }

    /// The number of split axes.
    pub(crate) fn split_axes(&self) -> usize {
        self.parts().count()
    }

    /// `rank`'s coordinates in the process grid, one per split axis (row-major order), in
    /// the first [`split_axes`](Self::split_axes) slots.
    pub(crate) fn coords(&self, rank: usize) -> [usize; MAX_SPLIT_AXES] {
        let mut coords = [0; MAX_SPLIT_AXES];
        let mut rest = rank;
        // Split axes fill the first slots of `parts`.
        for (c, p) in coords.iter_mut().zip(&self.parts).rev() {
            if let Some(p) = p {
                let d = p.partition.parts();
                *c = rest % d;
                rest /= d;
            }
        }
        coords
    }

    /// The rank at `coords` in the process grid.
    pub(crate) fn rank_at(&self, coords: &[usize]) -> usize {
        self.parts()
            .zip(coords)
            .fold(0, |rank, (p, &c)| rank * p.partition.parts() + c)
    }

    /// `rank`'s coordinate along `axis` and the partition there, if `axis` is split.
    pub(crate) fn coord_along(&self, rank: usize, axis: usize) -> Option<(usize, &Partition)> {
        let position = self.parts().position(|p| p.axis == axis)?;
        let coord = self.coords(rank)[position];
        self.part(axis).map(|p| (coord, p))
    }

    /// How many indices along `axis` (of global extent `extent`) `rank` holds.
    pub(crate) fn count(&self, rank: usize, axis: usize, extent: usize) -> usize {
        match self.coord_along(rank, axis) {
            Some((c, p)) => p.count(c),
            None => extent,
        }
    }

    /// The global indices along `axis` `rank` holds, in local order.
    pub(crate) fn indices(&self, rank: usize, axis: usize, extent: usize) -> Indices {
        match self.coord_along(rank, axis) {
            None => Indices::Range(0..extent),
            Some((c, p)) if p.distribution() == Distribution::Block => Indices::Range(p.range(c)),
            Some((c, p)) => Indices::List(p.global_indices(c).collect()),
        }
    }

    /// The shape of `rank`'s piece of an array of `shape`.
    pub(crate) fn piece_shape<D: Dimension>(&self, shape: &D, rank: usize) -> D {
        let mut piece = shape.clone();
        for p in self.parts() {
            piece[p.axis] = self.count(rank, p.axis, shape[p.axis]);
        }
        piece
    }

    /// The rank owning global index `index` and the index in its piece.
    pub(crate) fn to_local<D: Dimension>(self, index: &D) -> (usize, D) {
        let mut local = index.clone();
        let mut coords = [0; MAX_SPLIT_AXES];
        for (slot, p) in coords.iter_mut().zip(self.parts()) {
            let (c, l) = p.partition.to_local(index[p.axis]);
            *slot = c;
            local[p.axis] = l;
        }
        (self.rank_at(&coords), local)
    }

    /// The global index of index `local` of `rank`'s piece.
    pub(crate) fn to_global<D: Dimension>(self, rank: usize, local: &D) -> D {
        let mut global = local.clone();
        for (p, c) in self.parts().zip(self.coords(rank)) {
            global[p.axis] = p.partition.to_global(c, local[p.axis]);
        }
        global
    }

    /// The neighbour of `rank` one step `up` (or down) along split axis `axis`: `None` at the
    /// edge of a non-periodic axis.
    pub(crate) fn neighbour(
        &self,
        rank: usize,
        axis: usize,
        up: bool,
        periodic: bool,
    ) -> Option<usize> {
        let position = self.parts().position(|p| p.axis == axis)?;
        let mut coords = self.coords(rank);
        let d = self.parts().nth(position)?.partition.parts();
        let c = coords[position];
        coords[position] = match (up, c) {
            (true, c) if c + 1 < d => c + 1,
            (true, _) if periodic => 0,
            (false, 0) if periodic => d - 1,
            (false, c) if c > 0 => c - 1,
            _ => return None,
        };
        Some(self.rank_at(&coords))
    }
}

/// The grid dimensions of `axes` for `ranks` ranks: given ones checked, missing ones chosen.
fn grid_dims(axes: &[SplitAxis], shape: &[usize], ranks: usize) -> Result<Vec<usize>> {
    let given: Vec<Option<usize>> = axes.iter().map(|s| s.ranks).collect();
    let dims = if axes.len() == 1 {
        vec![given[0].unwrap_or(ranks)]
    } else if given.iter().all(Option::is_some) {
        given.iter().map(|d| d.unwrap_or(1)).collect()
    } else {
        let extents: Vec<usize> = axes.iter().map(|s| shape[s.axis]).collect();
        best_grid(ranks, &extents)
    };
    let product = dims.iter().try_fold(1_usize, |acc, &d| acc.checked_mul(d));
    if product != Some(ranks) || dims.contains(&0) {
        let shown: Vec<String> = dims.iter().map(usize::to_string).collect();
        return Err(Error::new(
            ErrorKind::InvalidPartition,
            format!(
                "a {} process grid needs {} ranks, but the communicator has {ranks}",
                shown.join(" x "),
                product.map_or("more than usize::MAX".into(), |p| p.to_string())
            ),
        ));
    }
    Ok(dims)
}

/// Of all grids `d0 × d1 × … = ranks`, the one whose tiles of an array with these `extents`
/// have the smallest surface (the halo a stencil exchanges); ties go to the most even grid.
pub(crate) fn best_grid(ranks: usize, extents: &[usize]) -> Vec<usize> {
    fn factorisations(n: usize, k: usize) -> Vec<Vec<usize>> {
        if k == 1 {
            return vec![vec![n]];
        }
        (1..=n)
            .filter(|d| n % d == 0)
            .flat_map(|d| {
                factorisations(n / d, k - 1)
                    .into_iter()
                    .map(move |mut rest| {
                        rest.insert(0, d);
                        rest
                    })
            })
            .collect()
    }
    let surface = |dims: &[usize]| -> usize {
        let tile: Vec<usize> = extents
            .iter()
            .zip(dims)
            .map(|(&n, &d)| n.div_ceil(d))
            .collect();
        // Sum over axes of the tile's cross-section perpendicular to that axis.
        (0..tile.len())
            .map(|skip| {
                tile.iter()
                    .enumerate()
                    .filter(|&(i, _)| i != skip)
                    .map(|(_, &t)| t)
                    .product::<usize>()
            })
            .sum()
    };
    let spread = |dims: &[usize]| dims.iter().max().unwrap_or(&1) - dims.iter().min().unwrap_or(&1);
    factorisations(ranks.max(1), extents.len())
        .into_iter()
        .min_by_key(|dims| (surface(dims), spread(dims)))
        .unwrap_or_else(|| vec![1; extents.len()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Ix3;

    #[test]
    fn grids_follow_the_shape() {
        assert_eq!(best_grid(1, &[10, 10]), [1, 1]);
        assert_eq!(best_grid(4, &[1000, 1000]), [2, 2]);
        // Tall arrays are cut across their rows, wide ones across their columns.
        assert_eq!(best_grid(4, &[10_000, 10]), [4, 1]);
        assert_eq!(best_grid(4, &[10, 10_000]), [1, 4]);
        assert_eq!(best_grid(6, &[600, 600]), [2, 3]);
        assert_eq!(best_grid(7, &[100, 100]), [1, 7]);
        assert_eq!(best_grid(8, &[64, 64, 64]), [2, 2, 2]);
    }

    #[test]
    fn coordinates_are_row_major_and_round_trip() {
        let layout = Layout::new(Split::grid(&[2, 3]), &[10, 9], 6).unwrap();
        assert_eq!(layout.coords(4)[..2], [1, 1]);
        for rank in 0..6 {
            assert_eq!(layout.rank_at(&layout.coords(rank)), rank);
        }
        // Rank 4 at (1, 1): rows 5..10, columns 3..6.
        assert_eq!(
            layout.piece_shape(&ndarray::Ix2(10, 9), 4),
            ndarray::Ix2(5, 3)
        );
        assert_eq!(layout.indices(4, 1, 9), Indices::Range(3..6));
        assert_eq!(layout.indices(4, 0, 10), Indices::Range(5..10));
        let (owner, local) = layout.to_local(&ndarray::Ix2(7, 4));
        assert_eq!((owner, local), (4, ndarray::Ix2(2, 1)));
        assert_eq!(layout.to_global(4, &local), ndarray::Ix2(7, 4));
    }

    #[test]
    fn neighbours_wrap_only_when_periodic() {
        let layout = Layout::new(Split::grid(&[2, 3]), &[10, 9], 6).unwrap();
        // Rank 2 at (0, 2): right edge.
        assert_eq!(layout.neighbour(2, 1, true, false), None);
        assert_eq!(layout.neighbour(2, 1, true, true), Some(0));
        assert_eq!(layout.neighbour(2, 1, false, false), Some(1));
        assert_eq!(layout.neighbour(2, 0, true, false), Some(5));
        assert_eq!(layout.neighbour(2, 0, false, true), Some(5));
        assert_eq!(layout.neighbour(2, 0, false, false), None);
    }

    #[test]
    fn one_axis_splits_put_every_rank_along_it() {
        let layout = Layout::new(Split::cyclic(1), &[4, 7, 2], 3).unwrap();
        assert_eq!(layout.piece_shape(&Ix3(4, 7, 2), 1), Ix3(4, 2, 2));
        assert_eq!(layout.indices(1, 1, 7), Indices::List(vec![1, 4]));
        assert_eq!(layout.indices(1, 0, 4), Indices::Range(0..4));
        assert_eq!(
            layout.split().to_string(),
            "cyclic along axis 1 over 3 ranks"
        );
    }

    #[test]
    fn bad_splits_are_refused() {
        let kind = |split: Split, shape: &[usize], ranks| {
            Layout::new(split, shape, ranks).unwrap_err().kind()
        };
        assert_eq!(kind(Split::block(2), &[4, 4], 2), ErrorKind::Shape);
        assert_eq!(
            kind(Split::grid(&[2, 2]), &[4, 4], 3),
            ErrorKind::InvalidPartition
        );
        assert_eq!(
            kind(Split::block_cyclic(0, 0), &[4], 2),
            ErrorKind::InvalidPartition
        );
        let e = Layout::new(Split::grid(&[2, 2]), &[4, 4], 3).unwrap_err();
        assert!(
            e.message().contains("a 2 x 2 process grid needs 4 ranks"),
            "{e}"
        );
        assert_eq!(
            Layout::new(Split::grid_auto(2), &[100, 50], 6)
                .unwrap()
                .split()
                .to_string(),
            "block along axes 0, 1 on a 3 x 2 grid"
        );
    }
}
