//! 2-D process grid scenarios: tiles, four-sided halos with corners, a stencil step, gather.

use ndarray::Array2;
use spmd::array::{GridArray, ProcessGrid};
use spmd::{Comm, ErrorKind};

use crate::support::{expect_same_error, heat, init, report_ok, serial_heat_step};

/// Every global element tells its indices apart, and none is 0 (the ghosts' initial value).
fn value(i: usize, j: usize) -> f64 {
    i as f64 * 100.0 + j as f64 + 0.5
}

fn factorisations(p: usize) -> Vec<[usize; 2]> {
    (1..=p).filter(|r| p % r == 0).map(|r| [r, p / r]).collect()
}

fn tiles_and_halos(world: &Comm) {
    for dims in factorisations(world.size()) {
        for periodic in [[false, false], [true, true], [true, false], [false, true]] {
            let grid = ProcessGrid::new(world, dims, periodic).expect("grid");
            assert_eq!(grid.dims(), dims);
            let [r, c] = grid.coords();
            assert_eq!(r * dims[1] + c, world.rank(), "row-major coordinates");
            for (n, m) in [(9, 7), (6, 10)] {
                let g = Array2::from_shape_fn((n, m), |(i, j)| value(i, j));
                for w in [0, 1, 2] {
                    let label =
                        format!("dims {dims:?} periodic {periodic:?} shape {n}x{m} ghosts {w}");
                    let built = GridArray::from_fn(world, &grid, (n, m), w, |(i, j)| value(i, j));
                    let mut a = match built {
                        Ok(a) => a,
                        Err(e) => {
                            // Only a tile narrower than the ghosts may refuse.
                            assert_eq!(e.kind(), ErrorKind::Shape, "{label}: {e}");
                            assert!(n / dims[0] < w || m / dims[1] < w, "{label}: {e}");
                            continue;
                        }
                    };
                    let (rows, cols) = a.tile();
                    assert_eq!(
                        a.local(),
                        g.slice(ndarray::s![rows.clone(), cols.clone()]),
                        "{label}"
                    );
                    a.exchange_halos(world).expect(&label);
                    let padded = a.local_with_ghosts();
                    for ((pi, pj), &x) in padded.indexed_iter() {
                        let gi = rows.start as isize + pi as isize - w as isize;
                        let gj = cols.start as isize + pj as isize - w as isize;
                        let wrap = |k: isize, len: usize, periodic: bool| {
                            if (0..len as isize).contains(&k) {
                                Some(k as usize)
                            } else if periodic {
                                Some(k.rem_euclid(len as isize) as usize)
                            } else {
                                None
                            }
                        };
                        let expected = match (wrap(gi, n, periodic[0]), wrap(gj, m, periodic[1])) {
                            (Some(i), Some(j)) => g[[i, j]],
                            _ => 0.0,
                        };
                        assert_eq!(
                            x, expected,
                            "{label}: padded ({pi}, {pj}) = global ({gi}, {gj})"
                        );
                    }
                    let gathered = a.gather(world, 0).unwrap();
                    if let Some(back) = gathered {
                        assert_eq!(back, g, "{label}: gather");
                    }
                    let expected_sum: f64 = g.sum();
                    let sum = a.sum(world).unwrap();
                    assert!(
                        (sum - expected_sum).abs() < 1e-9 * expected_sum,
                        "{label}: sum"
                    );
                }
            }
        }
    }
}

/// A 5-point heat step on the grid equals the serial step bit for bit.
fn heat_step(world: &Comm) {
    let (n, m) = (12, 11);
    let u0 = Array2::from_shape_fn((n, m), |(i, j)| ((i * 5 + j * 7) % 13) as f64 / 3.0);
    let serial = serial_heat_step(&u0);
    let grid = ProcessGrid::for_shape(world, (n, m), [false, false]).unwrap();
    let mut u = GridArray::from_fn(world, &grid, (n, m), 1, |(i, j)| u0[[i, j]]).unwrap();
    u.exchange_halos(world).unwrap();
    let old = u.local_with_ghosts().to_owned();
    let (rows, cols) = u.tile();
    let mut next = u.local_mut();
    for (r, i) in rows.clone().enumerate() {
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
    if let Some(all) = u.gather(world, 0).unwrap() {
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
    expect_same_error(
        world,
        "grid of the wrong size",
        ProcessGrid::new(world, [p + 1, 1], [false, false]),
        ErrorKind::InvalidPartition,
    );
    if p > 1 {
        let dims = if world.rank() == 0 { [1, p] } else { [p, 1] };
        expect_same_error(
            world,
            "ranks disagree on the grid",
            ProcessGrid::new(world, dims, [false, false]),
            ErrorKind::Disagreement,
        );
    }
    let grid = ProcessGrid::new(world, [p, 1], [false, false]).unwrap();
    let e = GridArray::<f64>::from_fn(world, &grid, (p, 4), 2, |_| 1.0).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Shape, "{e}");
    let a = GridArray::<f64>::from_fn(world, &grid, (2 * p, 4), 1, |_| 1.0).unwrap();
    expect_same_error(
        world,
        "grid gather to a bad root",
        a.gather(world, p),
        ErrorKind::InvalidRoot,
    );
}

pub fn run() {
    let spmd = init();
    let world = spmd.world();
    tiles_and_halos(world);
    heat_step(world);
    bad_input(world);
    report_ok("grid", &spmd);
}
