//! Arrays split along several axes on a process grid: tiles, halos on every side with
//! corners, a stencil step, scatter/gather, reductions, redistribution to and from row splits.

use ndarray::{Array, Array2, Dimension, IxDyn, RemoveAxis};
use spmd::array::{Boundary, DistArray, Split};
use spmd::{Comm, ErrorKind};

use crate::harness::{at_ranks, Module, Scenario};
use crate::support::{expect_same_error, heat, init, report_ok, serial_heat_step};

/// Every global element tells its indices apart, and none is 0 (the ghosts' initial value).
fn value(index: &[usize]) -> f64 {
    index.iter().fold(0.0, |acc, &i| acc * 100.0 + i as f64) + 0.5
}

/// Every way to write `p` as a product of `k` factors.
fn factorisations(p: usize, k: usize) -> Vec<Vec<usize>> {
    if k == 1 {
        return vec![vec![p]];
    }
    (1..=p)
        .filter(|d| p % d == 0)
        .flat_map(|d| {
            factorisations(p / d, k - 1)
                .into_iter()
                .map(move |mut rest| {
                    rest.insert(0, d);
                    rest
                })
        })
        .collect()
}

/// Every padded cell of `a` (ghosts included) holds the global element it stands for, wrapped
/// along periodic axes, or 0 beyond a fixed edge.
fn check_padded<D: Dimension + RemoveAxis>(a: &DistArray<f64, D>, periodic: &[bool], label: &str) {
    let w = a.ghosts();
    let shape = a.shape().to_vec();
    let starts: Vec<usize> = (0..shape.len())
        .map(|axis| a.global_range(axis).expect("block splits").start)
        .collect();
    let split_axes: Vec<usize> = a.split().axes().map(|s| s.axis).collect();
    for (index, &x) in a.local_with_ghosts().into_dyn().indexed_iter() {
        let mut global = Vec::with_capacity(shape.len());
        let mut outside = false;
        for axis in 0..shape.len() {
            let (offset, wraps) = match split_axes.iter().position(|&s| s == axis) {
                Some(k) => (w as isize, periodic[k]),
                None => (0, false),
            };
            let g = starts[axis] as isize + index[axis] as isize - offset;
            let n = shape[axis] as isize;
            if (0..n).contains(&g) {
                global.push(g as usize);
            } else if wraps {
                global.push(g.rem_euclid(n) as usize);
            } else {
                outside = true;
            }
        }
        let expected = if outside { 0.0 } else { value(&global) };
        assert_eq!(x, expected, "{label}: padded {:?}", index.slice());
    }
}

fn tiles_and_halos_2d(world: &Comm) {
    for dims in factorisations(world.size(), 2) {
        for periodic in [[false, false], [true, true], [true, false], [false, true]] {
            for (n, m) in [(9, 7), (6, 10)] {
                let g = Array2::from_shape_fn((n, m), |(i, j)| value(&[i, j]));
                for w in [0, 1, 2] {
                    let label =
                        format!("grid {dims:?} periodic {periodic:?} shape {n}x{m} ghosts {w}");
                    let boundaries = periodic.map(|p| {
                        if p {
                            Boundary::Periodic
                        } else {
                            Boundary::Fixed
                        }
                    });
                    let plain = DistArray::from_fn(world, (n, m), Split::grid(&dims), |(i, j)| {
                        value(&[i, j])
                    })
                    .expect(&label);
                    let coords = plain.grid_coords();
                    assert_eq!(coords[0] * dims[1] + coords[1], world.rank(), "row-major");
                    let mut a = match plain.clone().with_ghosts_per_axis(w, &boundaries) {
                        Ok(a) => a,
                        Err(e) => {
                            // Only a tile narrower than the ghosts may refuse.
                            assert_eq!(e.kind(), ErrorKind::Shape, "{label}: {e}");
                            assert!(n / dims[0] < w || m / dims[1] < w, "{label}: {e}");
                            continue;
                        }
                    };
                    let (rows, cols) = (a.global_range(0).unwrap(), a.global_range(1).unwrap());
                    assert_eq!(a.local(), g.slice(ndarray::s![rows, cols]), "{label}");
                    a.exchange_halos().expect(&label);
                    check_padded(&a, &periodic, &label);
                    if let Some(back) = a.gather(0).unwrap() {
                        assert_eq!(back, g, "{label}: gather");
                    }
                    assert_eq!(a.all_gather().unwrap(), g, "{label}: all_gather");
                    let expected_sum: f64 = g.sum();
                    let sum = a.sum().unwrap();
                    assert!(
                        (sum - expected_sum).abs() < 1e-9 * expected_sum,
                        "{label}: sum"
                    );
                    assert_eq!(a.max().unwrap(), value(&[n - 1, m - 1]), "{label}: max");
                    assert_eq!(a.dot(&a).unwrap(), g.iter().map(|x| x * x).sum::<f64>());
                    // To rows and back.
                    let by_rows = a.redistribute(Split::block(0)).unwrap();
                    assert_eq!(by_rows.all_gather().unwrap(), g, "{label}: to rows");
                    let back = by_rows.redistribute(Split::grid(&dims)).unwrap();
                    assert_eq!(back.local(), plain.local(), "{label}: back to the grid");
                }
            }
        }
    }
}

/// 3-D grids: every factorisation, ghosts of width 1, periodic along the middle axis.
fn tiles_and_halos_3d(world: &Comm) {
    let shape = [6, 5, 4];
    let g = Array::from_shape_fn(IxDyn(&shape), |i| value(i.slice()));
    let periodic = [false, true, false];
    let boundaries = [Boundary::Fixed, Boundary::Periodic, Boundary::Fixed];
    for dims in factorisations(world.size(), 3) {
        let label = format!("3-D grid {dims:?}");
        let a = DistArray::from_fn(world, (6, 5, 4), Split::grid(&dims), |(i, j, k)| {
            value(&[i, j, k])
        })
        .unwrap();
        let mut h = match a.clone().with_ghosts_per_axis(1, &boundaries) {
            Ok(h) => h,
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Shape, "{label}: {e}");
                continue;
            }
        };
        h.exchange_halos().expect(&label);
        check_padded(&h, &periodic, &label);
        let all = a.all_gather().unwrap().into_dyn();
        assert_eq!(all, g, "{label}: all_gather");
        let cyclic = a.redistribute(Split::cyclic(2)).unwrap();
        assert_eq!(
            cyclic.all_gather().unwrap().into_dyn(),
            g,
            "{label}: to cyclic"
        );
    }
    // The automatic grid for a cube of 8 ranks would be 2 x 2 x 2; here it is whatever the
    // rank count allows, and every rank agrees on it.
    let auto = DistArray::<f64, _>::zeros(world, (8, 8, 8), Split::grid_auto(3)).unwrap();
    let dims: Vec<usize> = auto.split().axes().map(|s| s.ranks.unwrap()).collect();
    assert_eq!(dims.iter().product::<usize>(), world.size());
}

/// A 5-point heat step on the automatic grid equals the serial step bit for bit.
fn heat_step(world: &Comm) {
    let (n, m) = (12, 11);
    let u0 = Array2::from_shape_fn((n, m), |(i, j)| ((i * 5 + j * 7) % 13) as f64 / 3.0);
    let serial = serial_heat_step(&u0);
    let mut u = DistArray::from_fn(world, (n, m), Split::grid_auto(2), |(i, j)| u0[[i, j]])
        .unwrap()
        .with_ghosts(1, Boundary::Fixed)
        .unwrap();
    u.exchange_halos().unwrap();
    let old = u.local_with_ghosts().to_owned();
    let (rows, cols) = (u.global_range(0).unwrap(), u.global_range(1).unwrap());
    let mut next = u.local_mut();
    for (r, i) in rows.enumerate() {
        for (c, j) in cols.clone().enumerate() {
            if i == 0 || j == 0 || i == n - 1 || j == m - 1 {
                continue;
            }
            let (pi, pj) = (r + 1, c + 1);
            next[[r, c]] = heat(
                old[[pi - 1, pj]],
                old[[pi + 1, pj]],
                old[[pi, pj - 1]],
                old[[pi, pj + 1]],
                old[[pi, pj]],
            );
        }
    }
    if let Some(all) = u.gather(0).unwrap() {
        assert!(
            all.iter()
                .zip(serial.iter())
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "grid heat step differs from serial"
        );
    }
}

fn bad_input(world: &Comm) {
    let p = world.size();
    let e = DistArray::<f64, _>::zeros(world, (8, 8), Split::grid(&[p + 1, 1])).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidPartition, "{e}");
    assert!(e.message().contains("process grid needs"), "{e}");
    if p > 1 {
        let dims = if world.rank() == 0 { [1, p] } else { [p, 1] };
        let a = DistArray::<f64, _>::zeros(world, (8, 8), Split::grid(&dims)).unwrap();
        let e = expect_same_error(
            world,
            "ranks disagree on the grid",
            a.sum(),
            ErrorKind::Disagreement,
        );
        assert!(e.message().contains("the split"), "{e}");
    }
    let a = DistArray::<f64, _>::zeros(world, (p, 4), Split::grid(&[p, 1])).unwrap();
    let e = a.with_ghosts(2, Boundary::Fixed).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Shape, "{e}");
    let a = DistArray::<f64, _>::zeros(world, (2 * p, 4), Split::grid(&[p, 1])).unwrap();
    let e = a
        .clone()
        .with_ghosts_per_axis(1, &[Boundary::Fixed])
        .unwrap_err();
    assert!(
        e.message()
            .contains("1 boundaries given for a split along 2 axes"),
        "{e}"
    );
    expect_same_error(
        world,
        "grid gather to a bad root",
        a.gather(p),
        ErrorKind::InvalidRoot,
    );
}

pub static GRID: Scenario = Scenario { name: "grid", run };

pub const MODULE: Module = Module {
    scenarios: &[&GRID],
    trials: || at_ranks(&GRID, 1..=4),
};

pub fn run() {
    let spmd = init();
    let world = spmd.world();
    tiles_and_halos_2d(world);
    tiles_and_halos_3d(world);
    heat_step(world);
    bad_input(world);
    report_ok("grid", &spmd);
}
