//! DistArray scenarios: every operation against the same computation on a serial ndarray.

use ndarray::{
    s, Array, Array2, ArrayView, Axis, Dimension, IntoDimension, Ix2, RemoveAxis, ShapeBuilder,
};
use spmd::array::{Boundary, DistArray, Split};
use spmd::{Comm, ErrorKind, Par};

use crate::harness::{at_ranks, Module, Scenario};
use crate::support::{expect_same_error, heat, init, report_ok, serial_heat_step};

/// A value that tells every global index apart.
fn value(index: &[usize]) -> f64 {
    index.iter().fold(0.0, |acc, &i| acc * 100.0 + i as f64) + 0.25
}

fn splits(ndim: usize) -> Vec<Split> {
    (0..ndim)
        .flat_map(|axis| {
            [
                Split::block(axis),
                Split::cyclic(axis),
                Split::block_cyclic(axis, 2),
            ]
        })
        .collect()
}

/// scatter → local pieces → gather / all_gather, and from_fn, against `global`.
fn round_trip<D: Dimension + RemoveAxis>(
    world: &Comm,
    global: ArrayView<'_, f64, D>,
    split: Split,
) {
    let label = format!(
        "{:?} split {split:?} strides {:?}",
        global.shape(),
        global.strides()
    );
    let source = (world.rank() == 0).then(|| global.view());
    let array = DistArray::scatter(world, 0, source, split).expect("scatter");
    assert_eq!(array.shape(), global.shape(), "{label}");
    // Every owned element is the global element at its global index.
    for (local, &x) in array.local().indexed_iter() {
        let g = array.local_to_global(local.into_dimension()).unwrap();
        assert_eq!(x, global[g.clone()], "{label}: local {:?}", g.slice());
        assert_eq!(array.owner_of(g.clone()).unwrap(), world.rank(), "{label}");
        assert_eq!(array.get(g).unwrap(), Some(x), "{label}");
    }
    let owned: usize = world.all_reduce(array.local().len(), spmd::Op::Sum);
    assert_eq!(owned, global.len(), "{label}: every element owned once");
    let gathered = array.gather(0).expect("gather");
    assert_eq!(gathered.is_some(), world.rank() == 0);
    if let Some(g) = gathered {
        assert_eq!(g, global, "{label}: gather");
    }
    assert_eq!(
        array.all_gather().expect("all_gather"),
        global,
        "{label}: all_gather"
    );
    // from_fn builds the same pieces without communication.
    let built = DistArray::from_fn(world, global.raw_dim(), split, |i| {
        global[i.into_dimension()]
    })
    .unwrap();
    assert_eq!(built.local(), array.local(), "{label}: from_fn");
}

fn scatter_gather(world: &Comm) {
    let p = world.size();
    for n in [0, 1, p.saturating_sub(1), 13] {
        let g = Array::from_shape_fn(n, |i| value(&[i]));
        for split in splits(1) {
            round_trip(world, g.view(), split);
        }
    }
    // 2-D: standard, Fortran order, a strided (non-contiguous) view, a transposed view, and
    // views with negative strides (rows reversed; both axes reversed and stepped).
    let c = Array2::from_shape_fn((7, 5), |(i, j)| value(&[i, j]));
    let f = Array2::from_shape_fn((7, 5).f(), |(i, j)| value(&[i, j]));
    let big = Array2::from_shape_fn((14, 10), |(i, j)| value(&[i, j]));
    let strided = big.slice(s![..;2, ..;2]);
    let t = Array2::from_shape_fn((5, 7), |(i, j)| value(&[j, i]));
    for split in splits(2) {
        round_trip(world, c.view(), split);
        round_trip(world, f.view(), split);
        round_trip(world, strided, split);
        round_trip(world, t.t(), split);
        round_trip(world, c.slice(s![..;-1, ..]), split);
        round_trip(world, big.slice(s![..;-2, ..;-3]), split);
    }
    // Fewer rows than ranks along the split axis.
    let thin = Array2::from_shape_fn((2, 3), |(i, j)| value(&[i, j]));
    round_trip(world, thin.view(), Split::block(0));
    let g3 = Array::from_shape_fn((5, 4, 3), |(i, j, k)| value(&[i, j, k]));
    for split in splits(3) {
        round_trip(world, g3.view(), split);
    }
    let dynamic = g3.clone().into_dyn();
    round_trip(world, dynamic.view(), Split::cyclic(2));
}

/// Ghost contents equal the neighbours' boundary rows (wrapped when periodic).
fn halos(world: &Comm) {
    let (n, m) = (11, 6);
    let g = Array2::from_shape_fn((n, m), |(i, j)| value(&[i, j]));
    for axis in 0..2 {
        for w in 1..=2 {
            let len = g.len_of(Axis(axis));
            if len / world.size() < w {
                continue;
            }
            for boundary in [Boundary::Fixed, Boundary::Periodic] {
                let label = format!("axis {axis} ghosts {w} {boundary:?}");
                let mut a =
                    DistArray::from_fn(world, (n, m), Split::block(axis), |(i, j)| g[[i, j]])
                        .unwrap()
                        .with_ghosts(w, boundary)
                        .unwrap();
                a.local_with_ghosts_mut().fill(-1.0);
                let padded_rows = a.local_with_ghosts().len_of(Axis(axis));
                a.local_mut().assign(
                    &DistArray::from_fn(world, (n, m), Split::block(axis), |(i, j)| g[[i, j]])
                        .unwrap()
                        .local(),
                );
                a.exchange_halos().expect(&label);
                // A second exchange (no agreement check now) gives the same ghosts.
                let first_time = a.local_with_ghosts().to_owned();
                a.exchange_halos().expect(&label);
                assert_eq!(
                    a.local_with_ghosts(),
                    first_time,
                    "{label}: second exchange"
                );
                let count = padded_rows - 2 * w;
                let first = a.global_range(axis).unwrap().start;
                let padded = a.local_with_ghosts();
                for k in 0..w {
                    // Lower ghost k holds global row first - w + k; upper ghost k holds first + count + k.
                    for (ghost, global_row) in [
                        (k, first as isize - w as isize + k as isize),
                        (w + count + k, (first + count + k) as isize),
                    ] {
                        let inside = (0..len as isize).contains(&global_row);
                        let expected = if inside {
                            Some(g.index_axis(Axis(axis), global_row as usize))
                        } else if boundary == Boundary::Periodic {
                            Some(g.index_axis(
                                Axis(axis),
                                global_row.rem_euclid(len as isize) as usize,
                            ))
                        } else {
                            None
                        };
                        let found = padded.index_axis(Axis(axis), ghost);
                        match expected {
                            Some(e) => assert_eq!(found, e, "{label}: ghost layer {ghost}"),
                            None => assert!(
                                found.iter().all(|&x| x == -1.0),
                                "{label}: fixed boundary ghost {ghost} was written"
                            ),
                        }
                    }
                }
            }
        }
    }
}

/// One explicit heat step, serial and distributed, must agree bit for bit.
fn heat_step(world: &Comm) {
    let (n, m) = (13, 9);
    let u0 = Array2::from_shape_fn((n, m), |(i, j)| ((i * 7 + j * 3) % 11) as f64 / 3.0);
    let serial = serial_heat_step(&u0);
    let mut u = DistArray::from_fn(world, (n, m), Split::block(0), |(i, j)| u0[[i, j]])
        .unwrap()
        .with_ghosts(1, Boundary::Fixed)
        .unwrap();
    u.exchange_halos().unwrap();
    let old = u.local_with_ghosts().to_owned();
    let first = u.global_range(0).unwrap().start;
    let rows = u.local().nrows();
    let mut next = u.local_mut();
    for r in 0..rows {
        let i = first + r;
        if i == 0 || i == n - 1 {
            continue;
        }
        for j in 1..m - 1 {
            let c = r + 1;
            next[[r, j]] = heat(
                old[[c - 1, j]],
                old[[c + 1, j]],
                old[[c, j - 1]],
                old[[c, j + 1]],
                old[[c, j]],
            );
        }
    }
    let all = u.all_gather().unwrap();
    assert!(
        all.iter()
            .zip(serial.iter())
            .all(|(a, b)| a.to_bits() == b.to_bits()),
        "heat step differs from serial"
    );
}

fn redistribution(world: &Comm) {
    let g2 = Array2::from_shape_fn((9, 7), |(i, j)| value(&[i, j]));
    let g3 = Array::from_shape_fn((5, 6, 4), |(i, j, k)| value(&[i, j, k]));
    for from in splits(2) {
        let a = DistArray::from_fn(world, (9, 7), from, |(i, j)| g2[[i, j]]).unwrap();
        for to in splits(2) {
            let b = a.redistribute(to).expect("redistribute");
            let axes =
                |s: Split| -> Vec<_> { s.axes().map(|a| (a.axis, a.distribution)).collect() };
            assert_eq!(axes(b.split()), axes(to));
            assert_eq!(b.all_gather().unwrap(), g2, "{from:?} -> {to:?}");
            let back = b.redistribute(from).unwrap();
            assert_eq!(back.local(), a.local(), "{from:?} -> {to:?} -> back");
        }
    }
    for from in [Split::block(0), Split::cyclic(1)] {
        let a = DistArray::from_fn(world, (5, 6, 4), from, |(i, j, k)| g3[[i, j, k]]).unwrap();
        for to in splits(3) {
            let b = a.redistribute(to).unwrap();
            assert_eq!(b.all_gather().unwrap(), g3, "3-D {from:?} -> {to:?}");
            assert_eq!(b.redistribute(from).unwrap().local(), a.local());
        }
    }
}

fn reductions(world: &Comm) {
    let p = world.size();
    for n in [0, 1, p.saturating_sub(1), 1000, 100_003] {
        for par in [Par::Rayon, Par::Seq] {
            let x = DistArray::from_fn(world, n, Split::block(0), |i| (i as f64 * 0.37).sin())
                .unwrap()
                .with_par(par);
            let y = DistArray::from_fn(world, n, Split::cyclic(0), |i| i as f64 / 7.0).unwrap();
            let y = y.redistribute(Split::block(0)).unwrap();
            let xs: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin()).collect();
            let ys: Vec<f64> = (0..n).map(|i| i as f64 / 7.0).collect();
            let close = |a: f64, b: f64, what: &str| {
                assert!(
                    (a - b).abs() <= 1e-12 * (1.0 + b.abs()),
                    "n {n} {par:?} {what}: {a} vs {b}"
                );
            };
            close(x.sum().unwrap(), xs.iter().sum(), "sum");
            close(
                x.dot(&y).unwrap(),
                xs.iter().zip(&ys).map(|(a, b)| a * b).sum(),
                "dot",
            );
            close(
                x.norm2().unwrap(),
                xs.iter().map(|a| a * a).sum::<f64>().sqrt(),
                "norm2",
            );
            if n > 0 {
                assert_eq!(
                    x.min().unwrap(),
                    xs.iter().copied().fold(f64::INFINITY, f64::min)
                );
                assert_eq!(
                    x.max().unwrap(),
                    xs.iter().copied().fold(f64::NEG_INFINITY, f64::max)
                );
            } else {
                expect_same_error(world, "min of empty", x.min(), ErrorKind::Shape);
            }
            // Integers: exact.
            let k = DistArray::from_fn(world, n, Split::block_cyclic(0, 3), |i| i as i64 - 50)
                .unwrap()
                .with_par(par);
            assert_eq!(k.sum().unwrap(), (0..n as i64).map(|i| i - 50).sum::<i64>());
            // map / map_inplace / zip_with / fold against serial.
            let doubled = x.map(|v| 2.0 * v);
            let mut shifted = x.clone();
            shifted.map_inplace(|v| *v += 1.0);
            let z = doubled.zip_with(&shifted, |a, b| a - b).unwrap();
            for (local, &v) in z.local().indexed_iter() {
                let i = z.local_to_global(local).unwrap()[0];
                assert_eq!(v, 2.0 * xs[i] - (xs[i] + 1.0));
            }
            let count = x.fold(|| 0_usize, |c, &v| c + usize::from(v > 0.0), |a, b| a + b);
            let total: usize = world.all_reduce(count, spmd::Op::Sum);
            assert_eq!(total, xs.iter().filter(|&&v| v > 0.0).count());
        }
    }
}

fn bad_input(world: &Comm) {
    let rank = world.rank();
    // Ranks disagree on the shape: the same Disagreement everywhere, not a hang.
    let rows = if rank == 0 { 8 } else { 9 };
    let a = DistArray::<f64, Ix2>::zeros(world, (rows, 3), Split::block(0)).unwrap();
    if world.size() > 1 {
        expect_same_error(
            world,
            "gather of different shapes",
            a.gather(0),
            ErrorKind::Disagreement,
        );
        expect_same_error(
            world,
            "all_gather of different shapes",
            a.all_gather(),
            ErrorKind::Disagreement,
        );
        expect_same_error(
            world,
            "sum of different shapes",
            a.sum(),
            ErrorKind::Disagreement,
        );
        let mut h = a.clone().with_ghosts(1, Boundary::Periodic).unwrap();
        expect_same_error(
            world,
            "halos of different shapes",
            h.exchange_halos(),
            ErrorKind::Disagreement,
        );
    }
    let b = DistArray::<f64, Ix2>::zeros(world, (8, 3), Split::block(0)).unwrap();
    expect_same_error(
        world,
        "gather to a bad root",
        b.gather(world.size()),
        ErrorKind::InvalidRoot,
    );
    expect_same_error(
        world,
        "redistribute to a missing axis",
        b.redistribute(Split::block(2)),
        ErrorKind::Shape,
    );
    let g = Array2::<f64>::zeros((4, 4));
    expect_same_error(
        world,
        "scatter from a bad root",
        DistArray::scatter(world, world.size(), Some(g.view()), Split::block(0)),
        ErrorKind::InvalidRoot,
    );
    // The root passes no array, or one without the split axis.
    let none: Option<ArrayView<'_, f64, Ix2>> = None;
    expect_same_error(
        world,
        "scatter of nothing",
        DistArray::scatter(world, 0, none, Split::block(0)),
        ErrorKind::Shape,
    );
    let g = Array2::<f64>::zeros((4, 4));
    let source = (rank == 0).then(|| g.view());
    expect_same_error(
        world,
        "scatter along a missing axis",
        DistArray::scatter(world, 0, source, Split::block(5)),
        ErrorKind::Shape,
    );
    // Ghosts wider than a piece: decided from the partition, so the same on every rank.
    let narrow = DistArray::<f64, Ix2>::zeros(world, (world.size(), 3), Split::block(0)).unwrap();
    let e = narrow.with_ghosts(2, Boundary::Fixed).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Shape, "{e}");
    assert!(
        e.message().contains("ghost width 2 is wider than the"),
        "{e}"
    );
    let cyclic = DistArray::<f64, Ix2>::zeros(world, (8, 3), Split::cyclic(0)).unwrap();
    assert_eq!(
        cyclic.with_ghosts(1, Boundary::Fixed).unwrap_err().kind(),
        ErrorKind::Shape
    );
    // Ranks that disagree on the boundary: the first exchange reports it on every rank.
    if world.size() > 1 {
        let boundary = if rank == 0 {
            Boundary::Fixed
        } else {
            Boundary::Periodic
        };
        let mut mixed = b.clone().with_ghosts(1, boundary).unwrap();
        expect_same_error(
            world,
            "halos with different boundaries",
            mixed.exchange_halos(),
            ErrorKind::Disagreement,
        );
    }
    // Layouts that differ cannot be zipped.
    let c = DistArray::<f64, Ix2>::zeros(world, (8, 3), Split::cyclic(0)).unwrap();
    assert_eq!(
        b.zip_with(&c, |x, y| x + y).unwrap_err().kind(),
        ErrorKind::Shape
    );
    expect_same_error(
        world,
        "dot of different layouts",
        b.dot(&c),
        ErrorKind::Shape,
    );
    // An index outside the array.
    assert_eq!(
        b.owner_of((8, 0)).unwrap_err().kind(),
        ErrorKind::OutOfBounds
    );
    // Arrays made on two communicators of the same ranks and size cannot be combined: the
    // identity of the communicator counts, not its size.
    let other = world.duplicate();
    let d = DistArray::<f64, Ix2>::zeros(&other, (8, 3), Split::block(0)).unwrap();
    let e = expect_same_error(
        world,
        "dot of arrays on two communicators",
        b.dot(&d),
        ErrorKind::InvalidPartition,
    );
    assert!(e.message().contains("different communicators"), "{e}");
    assert_eq!(
        b.zip_with(&d, |x, y| x + y).unwrap_err().kind(),
        ErrorKind::InvalidPartition
    );
    // The same communicator through another handle (checks off) is the same communicator.
    let unchecked =
        DistArray::<f64, Ix2>::zeros(&world.unchecked(), (8, 3), Split::block(0)).unwrap();
    assert_eq!(b.dot(&unchecked).unwrap(), 0.0);
    // Ranks disagree on the shape: the message names every rank's shape.
    if world.size() > 1 {
        let rows = if rank == 0 { 8 } else { 9 };
        let a = DistArray::<f64, Ix2>::zeros(world, (rows, 3), Split::block(0)).unwrap();
        let e = expect_same_error(
            world,
            "shapes in the message",
            a.sum(),
            ErrorKind::Disagreement,
        );
        let others = if world.size() == 2 {
            "rank 1 has [9, 3]".to_string()
        } else {
            format!("ranks 1-{} have [9, 3]", world.size() - 1)
        };
        assert!(
            e.message().contains(&format!(
                "DistArray::sum: ranks disagree on the global shape: rank 0 has [8, 3]; {others}"
            )),
            "{e}"
        );
    }
}

pub static ARRAYS: Scenario = Scenario {
    name: "arrays",
    run,
};

pub const MODULE: Module = Module {
    scenarios: &[&ARRAYS],
    trials: || at_ranks(&ARRAYS, 1..=4),
};

pub fn run() {
    let spmd = init();
    let world = spmd.world();
    scatter_gather(world);
    halos(world);
    heat_step(world);
    redistribution(world);
    reductions(world);
    bad_input(world);
    report_ok("arrays", &spmd);
}
