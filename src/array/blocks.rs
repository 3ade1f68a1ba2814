//! Blocks of arrays selected by per-axis index sets: cut out of one piece, put into another.
//! Scatter, gather, redistribution and checkpoint loading all move such blocks.

use ndarray::{ArrayView, ArrayViewMut, Axis, CowArray, Dimension, RemoveAxis, Slice};

use super::split::{Indices, Layout};

/// Positions along some axes (those not named are taken whole).
pub(crate) type Selection = Vec<(usize, Indices)>;

/// What `rank` holds of an array of `shape` under `layout`, as global positions.
pub(crate) fn held_by(layout: &Layout, rank: usize, shape: &[usize]) -> Selection {
    layout
        .parts()
        .map(|p| (p.axis, layout.indices(rank, p.axis, shape[p.axis])))
        .collect()
}

/// The block of `view` at `selection`: a view when every named axis is a range, a copy
/// otherwise.
pub(crate) fn extract<'a, T: Clone, D: Dimension + RemoveAxis>(
    view: ArrayView<'a, T, D>,
    selection: &[(usize, Indices)],
) -> CowArray<'a, T, D> {
    let mut view = view;
    for (axis, indices) in selection {
        if let Indices::Range(r) = indices {
            view = view.slice_axis_move(Axis(*axis), Slice::from(r.clone()));
        }
    }
    let mut block: CowArray<'a, T, D> = view.into();
    for (axis, indices) in selection {
        if let Indices::List(list) = indices {
            block = block.select(Axis(*axis), list).into();
        }
    }
    block
}

/// Writes `block` into `target` at `selection` (the inverse of [`extract`]).
pub(crate) fn place<T: Clone, D: Dimension + RemoveAxis>(
    target: ArrayViewMut<'_, T, D>,
    selection: &[(usize, Indices)],
    block: ArrayView<'_, T, D>,
) {
    let mut target = target;
    let mut lists = Vec::new();
    for (axis, indices) in selection {
        match indices {
            Indices::Range(r) => {
                target = target.slice_axis_move(Axis(*axis), Slice::from(r.clone()));
            }
            Indices::List(list) => lists.push((*axis, list.as_slice())),
        }
    }
    place_lists(target, &lists, block);
}

fn place_lists<T: Clone, D: Dimension + RemoveAxis>(
    mut target: ArrayViewMut<'_, T, D>,
    lists: &[(usize, &[usize])],
    block: ArrayView<'_, T, D>,
) {
    match lists.split_first() {
        None => target.assign(&block),
        Some((&(axis, positions), rest)) => {
            for (k, &position) in positions.iter().enumerate() {
                let layer = target
                    .view_mut()
                    .slice_axis_move(Axis(axis), Slice::from(position..position + 1));
                let source = block
                    .view()
                    .slice_axis_move(Axis(axis), Slice::from(k..k + 1));
                place_lists(layer, rest, source);
            }
        }
    }
}

/// The positions in a piece of the global indices `wanted` along an axis the piece holds as
/// `held` (both in ascending order; every wanted index is held).
pub(crate) fn positions_in(held: &Indices, wanted: &Indices) -> Indices {
    if wanted.len() == 0 {
        return Indices::Range(0..0);
    }
    match (held, wanted) {
        (Indices::Range(h), Indices::Range(w)) => {
            Indices::Range(w.start - h.start..w.end - h.start)
        }
        (Indices::Range(h), Indices::List(w)) => {
            Indices::from_list(w.iter().map(|g| g - h.start).collect())
        }
        (Indices::List(h), _) => {
            let mut out = Vec::with_capacity(wanted.len());
            let mut at = 0;
            for g in wanted.to_vec() {
                while h[at] < g {
                    at += 1;
                }
                out.push(at);
            }
            Indices::from_list(out)
        }
    }
}

/// The global indices both `a` and `b` hold (ascending).
pub(crate) fn intersect(a: &Indices, b: &Indices) -> Indices {
    match (a, b) {
        (Indices::Range(x), Indices::Range(y)) => {
            let (start, end) = (x.start.max(y.start), x.end.min(y.end));
            Indices::Range(start..end.max(start))
        }
        (Indices::Range(r), Indices::List(l)) | (Indices::List(l), Indices::Range(r)) => {
            Indices::from_list(l.iter().copied().filter(|g| r.contains(g)).collect())
        }
        (Indices::List(x), Indices::List(y)) => {
            let (mut i, mut j, mut out) = (0, 0, Vec::new());
            while i < x.len() && j < y.len() {
                match x[i].cmp(&y[j]) {
                    std::cmp::Ordering::Less => i += 1,
                    std::cmp::Ordering::Greater => j += 1,
                    std::cmp::Ordering::Equal => {
                        out.push(x[i]);
                        i += 1;
                        j += 1;
                    }
                }
            }
            Indices::from_list(out)
        }
    }
}

/// The block that `from` (rank `source` of layout `old`) and `to` (rank `dest` of layout
/// `new`) share of an array of `shape`: its positions in the source piece and in the
/// destination piece, and its shape. Axes split in neither layout are whole in both.
pub(crate) fn shared_block<D: Dimension>(
    shape: &D,
    old: (&Layout, usize),
    new: (&Layout, usize),
) -> (Selection, Selection, D) {
    let (mut in_source, mut in_dest) = (Vec::new(), Vec::new());
    let mut block = shape.clone();
    for axis in 0..shape.ndim() {
        if old.0.part(axis).is_none() && new.0.part(axis).is_none() {
            continue;
        }
        let held_old = old.0.indices(old.1, axis, shape[axis]);
        let held_new = new.0.indices(new.1, axis, shape[axis]);
        let common = intersect(&held_old, &held_new);
        block[axis] = common.len();
        in_source.push((axis, positions_in(&held_old, &common)));
        in_dest.push((axis, positions_in(&held_new, &common)));
    }
    (in_source, in_dest, block)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, Ix2};

    #[test]
    fn intersections_and_positions() {
        let r = |a, b| Indices::Range(a..b);
        let l = |v: &[usize]| Indices::List(v.to_vec());
        assert_eq!(intersect(&r(0, 5), &r(3, 9)), r(3, 5));
        assert_eq!(intersect(&r(5, 6), &r(0, 3)).len(), 0);
        assert_eq!(intersect(&r(2, 7), &l(&[1, 3, 4, 8])), r(3, 5));
        assert_eq!(intersect(&l(&[0, 3, 6, 9]), &l(&[3, 4, 9])), l(&[3, 9]));
        assert_eq!(positions_in(&r(10, 20), &r(12, 15)), r(2, 5));
        assert_eq!(positions_in(&l(&[1, 4, 7, 10]), &l(&[4, 10])), l(&[1, 3]));
        assert_eq!(positions_in(&l(&[1, 4, 7, 10]), &r(4, 5)), r(1, 2));
        // Nothing wanted, whatever the held range: nothing (no underflow).
        assert_eq!(positions_in(&r(10, 20), &l(&[])), r(0, 0));
        assert_eq!(positions_in(&r(10, 20), &r(0, 0)).len(), 0);
    }

    #[test]
    fn extract_then_place_round_trips() {
        let a = Array2::from_shape_fn((5, 6), |(i, j)| 10 * i + j);
        let selection = vec![(0, Indices::List(vec![0, 2, 3])), (1, Indices::Range(1..4))];
        let block = extract(a.view(), &selection);
        assert_eq!(block.dim(), (3, 3));
        assert_eq!(block[[1, 2]], 23);
        let mut b = Array2::zeros((5, 6));
        place(b.view_mut(), &selection, block.view());
        for ((i, j), &v) in b.indexed_iter() {
            let inside = [0, 2, 3].contains(&i) && (1..4).contains(&j);
            assert_eq!(v, if inside { a[[i, j]] } else { 0 });
        }
    }

    #[test]
    fn shared_blocks_between_layouts() {
        use super::super::split::Split;
        let shape = Ix2(6, 4);
        let rows = Layout::new(Split::block(0), &[6, 4], 2).unwrap();
        let cols = Layout::new(Split::cyclic(1), &[6, 4], 2).unwrap();
        // Rank 1 of the row split holds rows 3..6; rank 0 of the column split columns 0, 2.
        let (src, dst, block) = shared_block(&shape, (&rows, 1), (&cols, 0));
        assert_eq!(block, Ix2(3, 2));
        assert_eq!(
            src,
            vec![(0, Indices::Range(0..3)), (1, Indices::List(vec![0, 2]))]
        );
        assert_eq!(
            dst,
            vec![(0, Indices::Range(3..6)), (1, Indices::Range(0..2))]
        );
    }
}
