//! NAS Parallel Benchmarks 3.4, kernel MG (multigrid), written with `spmd`.
//!
//! ```text
//! mpirun -n 2 target/release/examples/npb_mg --class A --report mg.json
//! ```
//!
//! The kernel, as the NPB specification defines it: V-cycles of a multigrid solver for the 3-D
//! Poisson equation on a periodic `n³` grid: residual (`resid`), smoother (`psinv`, the class's
//! `c` coefficients), restriction (`rprj3`) and trilinear prolongation (`interp`) over
//! `log2(n)` levels, the right-hand side `v` being ten +1 and ten −1 charges at the positions of
//! the largest and smallest of `n³` numbers from the NPB generator. Verification: the final
//! residual norm `rnm2` within 1e-8 of the official value. Classes S, W, A, B.
//!
//! **Layout**: every level whose planes (the slowest axis) number at least twice the ranks is
//! a 3-D [`DistArray`] split in blocks of planes with one periodic ghost plane on each side,
//! exchanged after every operator through a persistent [`HaloPlan`] (the two other axes are
//! periodic inside each rank). Blocks halve from level to level, so each coarse plane's fine
//! planes sit on the same rank. The few coarsest levels, with fewer planes than that, are
//! gathered once (`all_gather`) and computed redundantly on every rank, as small levels are in
//! many production multigrid codes. Ranks: a power of two, at most `n / 2`.
//!
//! **Order of work**: each operator computes its two edge planes first and the planes between
//! while their ghost exchange runs. On the way up a V-cycle the prolongation, residual and
//! smoother of a level run as one sweep over its planes (`Sweep`), each plane passing through
//! them while its neighbours are in cache, where the reference makes one pass over the level
//! per operator; on the finest level the sweep goes on with the residual NPB computes after
//! each V-cycle and the next V-cycle's first restriction. The arithmetic of every point is the
//! reference's, so the result is bit-identical to separate passes; a 256³ level is 134 MB per
//! array, so each pass saved is one fewer trip through memory.

// The kernels index neighbours `i1 − 1` and `i1 + 1` as the specification writes them; an
// iterator form would hide that correspondence.
#![allow(clippy::needless_range_loop)]

mod common;
#[path = "npb_common/mod.rs"]
mod npb_common;

use clap::Parser;
use ndarray::{s, Array3, ArrayView3, ArrayViewMut3, Axis, Ix3};
use npb_common::{mul_mod, pow_mod, uniform, Class, MULTIPLIER};
use spmd::array::{Boundary, DistArray, HaloPlan, Split};
use spmd::{Comm, Op};

/// Grid side, iterations, verification value.
fn spec(class: Class) -> (usize, usize, f64) {
    match class {
        Class::S => (32, 4, 0.5307707005734e-04),
        Class::W => (128, 4, 0.6467329375339e-05),
        Class::A => (256, 4, 0.2433365309069e-05),
        Class::B => (256, 20, 0.1800564401355e-05),
    }
}

#[derive(Parser, Debug)]
#[command(about = "NPB 3.4 MG over MPI ranks (a power of two)")]
struct Cli {
    #[command(flatten)]
    npb: npb_common::Flags,
}

const A_COEF: [f64; 4] = [-8.0 / 3.0, 0.0, 1.0 / 6.0, 1.0 / 12.0];
const SEED: u64 = 314_159_265;

/// One level's grid: distributed planes (with ghosts) and the persistent plan of their ghost
/// exchange, or the whole padded grid on every rank.
enum Grid {
    Dist(Box<DistArray<f64, Ix3>>, HaloPlan<f64>),
    Whole(Array3<f64>),
}

impl Grid {
    fn new(comm: Option<&Comm>, ng: usize) -> Grid {
        match comm {
            Some(c) => {
                let mut a = DistArray::from_elem(c, (ng, ng + 2, ng + 2), Split::block(0), 0.0)
                    .and_then(|a| a.with_ghosts(1, Boundary::Periodic))
                    .expect("a valid level");
                let plan = a.halo_plan().expect("a valid level");
                Grid::Dist(Box::new(a), plan)
            }
            None => Grid::Whole(Array3::zeros((ng + 2, ng + 2, ng + 2))),
        }
    }

    fn view(&self) -> ArrayView3<'_, f64> {
        match self {
            Grid::Dist(a, _) => a.local_with_ghosts(),
            Grid::Whole(a) => a.view(),
        }
    }

    fn view_mut(&mut self) -> ArrayViewMut3<'_, f64> {
        match self {
            Grid::Dist(a, _) => a.local_with_ghosts_mut(),
            Grid::Whole(a) => a.view_mut(),
        }
    }

    /// The global padded index of local plane 0.
    fn offset(&self) -> usize {
        match self {
            Grid::Dist(a, _) => a.global_range(0).map_or(0, |r| r.start),
            Grid::Whole(_) => 0,
        }
    }

    fn zero(&mut self) {
        // A slice fill is a memset; `ArrayBase::fill` walks the elements.
        let all = self.view_mut().into_slice();
        all.expect("grids are standard layout").fill(0.0);
    }

    /// NPB `comm3` on values already in place: every ghost from its periodic image.
    fn comm3(&mut self) -> spmd::Result<()> {
        self.produce(|_, _| {})
    }

    /// Computes every owned plane with `plane(i3, out)` (`i3` the padded local plane index,
    /// `out` that plane's elements), then its periodic ghosts along the two fast axes; the
    /// ghost planes come from the neighbours (NPB `comm3`). A distributed grid computes its
    /// two edge planes first and the planes between while the exchange runs (polling it
    /// every few planes, which is when MPI moves large messages).
    fn produce(&mut self, mut plane: impl FnMut(usize, &mut [f64])) -> spmd::Result<()> {
        let (n3, n2, n1) = self.view().dim();
        let layer = n2 * n1;
        let mut one = |i3: usize, out: &mut [f64]| {
            plane(i3, out);
            wrap_plane(out, n1);
        };
        match self {
            Grid::Whole(a) => {
                let all = a.as_slice_mut().expect("grids are standard layout");
                for (i3, out) in all.chunks_exact_mut(layer).enumerate().take(n3 - 1).skip(1) {
                    one(i3, out);
                }
                let (first, rest) = all.split_at_mut(layer);
                let (middle, last) = rest.split_at_mut((n3 - 2) * layer);
                first.copy_from_slice(&middle[(n3 - 3) * layer..]);
                last.copy_from_slice(&middle[..layer]);
                Ok(())
            }
            Grid::Dist(a, plan) => {
                for i3 in [1, n3 - 2] {
                    one(i3, &mut whole(a)[i3 * layer..(i3 + 1) * layer]);
                }
                let mut exchange = plan.begin(a)?;
                // The inner planes are padded planes 2 ..= n3 - 3.
                for i3 in 2..n3 - 2 {
                    let inner = exchange.inner_mut().into_slice();
                    let inner = inner.expect("grids are standard layout");
                    one(i3, &mut inner[(i3 - 2) * layer..(i3 - 1) * layer]);
                    if i3 % 8 == 0 {
                        exchange.test();
                    }
                }
                exchange.finish()
            }
        }
    }
}

/// The periodic ghosts of one padded plane (rows of `n1`): each row's two ends, then the
/// first and last rows (whole, corners included), as NPB's `comm3` orders them.
fn wrap_plane(plane: &mut [f64], n1: usize) {
    let n2 = plane.len() / n1;
    for row in plane.chunks_exact_mut(n1).skip(1).take(n2 - 2) {
        row[0] = row[n1 - 2];
        row[n1 - 1] = row[1];
    }
    let (first, rest) = plane.split_at_mut(n1);
    let (middle, last) = rest.split_at_mut((n2 - 2) * n1);
    first.copy_from_slice(&middle[(n2 - 3) * n1..]);
    last.copy_from_slice(&middle[..n1]);
}

/// Row `(i3, i2)` of a padded standard-layout grid as a slice (so the inner loops index
/// slices, which the compiler can check once and vectorise, instead of 3-D indices).
fn row<'a>(a: &'a ArrayView3<'_, f64>, i3: usize, i2: usize) -> &'a [f64] {
    let (_, n2, n1) = a.dim();
    let start = (i3 * n2 + i2) * n1;
    &a.as_slice().expect("grids are standard layout")[start..start + n1]
}

/// The sums of the four face neighbours (`s1`) and four edge neighbours (`s2`) of row
/// `(i3, i2)` in the plane across the row, for every `i1`.
fn neighbour_sums(u: &ArrayView3<'_, f64>, i3: usize, i2: usize, s1: &mut [f64], s2: &mut [f64]) {
    let (a, b, c, d) = (
        row(u, i3, i2 - 1),
        row(u, i3, i2 + 1),
        row(u, i3 - 1, i2),
        row(u, i3 + 1, i2),
    );
    for (i1, out) in s1.iter_mut().enumerate() {
        *out = a[i1] + b[i1] + c[i1] + d[i1];
    }
    let (a, b, c, d) = (
        row(u, i3 - 1, i2 - 1),
        row(u, i3 - 1, i2 + 1),
        row(u, i3 + 1, i2 - 1),
        row(u, i3 + 1, i2 + 1),
    );
    for (i1, out) in s2.iter_mut().enumerate() {
        *out = a[i1] + b[i1] + c[i1] + d[i1];
    }
}

/// Two rows of scratch (neighbour sums) for the plane kernels.
struct Scratch(Vec<f64>, Vec<f64>);

impl Scratch {
    fn new(n1: usize) -> Scratch {
        Scratch(vec![0.0; n1], vec![0.0; n1])
    }
}

/// Plane `i3` of `r = v − A u` into `out` (`v = None` means `v` is `out` itself).
fn resid(
    u: &ArrayView3<'_, f64>,
    v: Option<&ArrayView3<'_, f64>>,
    i3: usize,
    out: &mut [f64],
    Scratch(u1, u2): &mut Scratch,
) {
    let (_, n2, n1) = u.dim();
    let a = A_COEF;
    for i2 in 1..n2 - 1 {
        neighbour_sums(u, i3, i2, u1, u2);
        let uc = row(u, i3, i2);
        let out = &mut out[i2 * n1..(i2 + 1) * n1];
        let apply = |vv: f64, i1: usize| {
            vv - a[0] * uc[i1]
                - a[2] * (u2[i1] + u1[i1 - 1] + u1[i1 + 1])
                - a[3] * (u2[i1 - 1] + u2[i1 + 1])
        };
        match v {
            Some(v) => {
                let vr = row(v, i3, i2);
                for i1 in 1..n1 - 1 {
                    out[i1] = apply(vr[i1], i1);
                }
            }
            // In place: each point reads its own old value before overwriting it.
            None => {
                for i1 in 1..n1 - 1 {
                    out[i1] = apply(out[i1], i1);
                }
            }
        }
    }
}

/// Plane `i3` of `u = u + C r` (the smoother), `out` being `u`'s plane.
fn psinv(
    r: &ArrayView3<'_, f64>,
    c: [f64; 4],
    i3: usize,
    out: &mut [f64],
    Scratch(r1, r2): &mut Scratch,
) {
    let (_, n2, n1) = r.dim();
    for i2 in 1..n2 - 1 {
        neighbour_sums(r, i3, i2, r1, r2);
        let rc = row(r, i3, i2);
        let out = &mut out[i2 * n1..(i2 + 1) * n1];
        for i1 in 1..n1 - 1 {
            out[i1] = out[i1]
                + c[0] * rc[i1]
                + c[1] * (rc[i1 - 1] + rc[i1 + 1] + r1[i1])
                + c[2] * (r2[i1] + r1[i1 - 1] + r1[i1 + 1]);
        }
    }
}

/// A coarse plane of the restriction `s = P r` into `out` (rows of `m1j`), from planes
/// `i3 ..= i3 + 2` of `r`. Coarse local plane `j` (padded) reads fine local planes
/// `2j − 1 ..= 2j + 1`, which the aligned blocks (or whole grids) provide.
fn rprj3(
    r: &ArrayView3<'_, f64>,
    i3: usize,
    out: &mut [f64],
    m1j: usize,
    Scratch(x1, y1): &mut Scratch,
) {
    let (_, _, m1k) = r.dim();
    let m2j = out.len() / m1j;
    let (x1, y1) = (&mut x1[..m1k], &mut y1[..m1k]);
    for j2 in 1..m2j - 1 {
        let i2 = 2 * j2 - 1;
        // r_ab: the fine row (i3 + a, i2 + b).
        let [r00, r01, r02, r10, r11, r12, r20, r21, r22] = [
            (0, 0),
            (0, 1),
            (0, 2),
            (1, 0),
            (1, 1),
            (1, 2),
            (2, 0),
            (2, 1),
            (2, 2),
        ]
        .map(|(a, b)| &row(r, i3 + a, i2 + b)[..m1k]);
        // Every fine point's sums, contiguous (so they vectorise): the odd points are the
        // coarse points' x1/y1, the even ones their x2/y2, added in the same order.
        for i1 in 0..m1k {
            x1[i1] = r10[i1] + r12[i1] + r01[i1] + r21[i1];
            y1[i1] = r00[i1] + r20[i1] + r02[i1] + r22[i1];
        }
        let out = &mut out[j2 * m1j..(j2 + 1) * m1j];
        for j1 in 1..m1j - 1 {
            let i1 = 2 * j1 - 1;
            out[j1] = 0.5 * r11[i1 + 1]
                + 0.25 * (r11[i1] + r11[i1 + 2] + x1[i1 + 1])
                + 0.125 * (x1[i1] + x1[i1 + 2] + y1[i1 + 1])
                + 0.0625 * (y1[i1] + y1[i1 + 2]);
        }
    }
}

/// Prolongation `u = u + Q z` on every local fine plane (ghosts too, as the specification
/// does). `z_off` and `u_off` are the global padded indices of each array's local plane 0.
fn interp(z: &ArrayView3<'_, f64>, z_off: usize, mut u: ArrayViewMut3<'_, f64>, u_off: usize) {
    let (_, n2, n1) = u.dim();
    let all = u.as_slice_mut().expect("grids are standard layout");
    for (l, fine) in all.chunks_exact_mut(n2 * n1).enumerate() {
        interp_plane(z, z_off, l + u_off, fine, n1);
    }
}

/// Fine plane `g` (global padded index) of `u = u + Q z`, `fine` being that plane's elements
/// (rows of `n1`).
fn interp_plane(z: &ArrayView3<'_, f64>, z_off: usize, g: usize, fine: &mut [f64], n1: usize) {
    let (_, mm2, mm1) = z.dim();
    let (mut z1, mut z2, mut z3) = (vec![0.0; mm1], vec![0.0; mm1], vec![0.0; mm1]);
    // Each coarse point writes a pair of fine points in each of two fine rows.
    let pairs = mm1 - 1;
    let (i3, odd) = (g / 2 - z_off, g % 2 == 1);
    for i2 in 0..mm2 - 1 {
        let (a, b) = (row(z, i3, i2), row(z, i3, i2 + 1));
        for i1 in 0..mm1 {
            z1[i1] = b[i1] + a[i1];
        }
        if odd {
            let (c, d) = (row(z, i3 + 1, i2), row(z, i3 + 1, i2 + 1));
            for i1 in 0..mm1 {
                z2[i1] = c[i1] + a[i1];
                z3[i1] = d[i1] + c[i1] + z1[i1];
            }
        }
        let (even_row, odd_row) = fine[2 * i2 * n1..(2 * i2 + 2) * n1].split_at_mut(n1);
        let even_row = even_row[..2 * pairs].chunks_exact_mut(2);
        let odd_row = odd_row[..2 * pairs].chunks_exact_mut(2);
        for (i1, (e, o)) in even_row.zip(odd_row).enumerate() {
            if !odd {
                e[0] += a[i1];
                e[1] += 0.5 * (a[i1 + 1] + a[i1]);
                o[0] += 0.5 * z1[i1];
                o[1] += 0.25 * (z1[i1] + z1[i1 + 1]);
            } else {
                e[0] += 0.5 * z2[i1];
                e[1] += 0.25 * (z2[i1] + z2[i1 + 1]);
                o[0] += 0.25 * z3[i1];
                o[1] += 0.125 * (z3[i1] + z3[i1 + 1]);
            }
        }
    }
}

/// The way up through one distributed level as one sweep over its planes: prolongation
/// (`interp`), residual (`resid`) and smoother (`psinv`), on the finest level followed by the
/// next residual (`r = v − A u` with the smoothed `u`, which NPB computes after each V-cycle),
/// each plane passing through them in turn while its neighbours are still in cache, instead of
/// one pass over the level per operator. Every point's arithmetic is that of the separate
/// passes, so the results are bit-identical; what changes is the order of the planes.
///
/// The order, `l` being a padded local plane index and `n3` the planes with ghosts:
/// - the prolongation of plane `l + 1` comes before the residual of plane `l`, which reads
///   planes `l − 1 ..= l + 1` of `u`;
/// - the smoother of plane `l − 1` comes after that residual (the last to read the prolonged
///   plane `l − 1`), and reads residual planes `l − 2 ..= l`;
/// - the final residual of plane `l − 2` comes after that smoother (the last to read residual
///   plane `l − 2`), and reads smoothed planes `l − 3 ..= l − 1`;
/// - if asked (every V-cycle but the last), the restriction of the final residual to the next
///   level's plane `j` follows the final residual of plane `2j + 1`: the next V-cycle starts
///   with it, so it too is computed while its planes are in cache.
///
/// The residual's edge planes come first and their ghost exchange runs during the inner
/// planes. Planes that need ghosts of a later stage wait for the end: the smoother's two edge
/// planes (they read the residual's ghosts), `u`'s ghost exchange, the final residual's two
/// planes at each end and its ghost exchange, then the restriction's planes that read those
/// and the coarse level's ghost exchange.
struct Sweep<'a> {
    /// The coarser level's solution and the global padded index of its local plane 0.
    z: ArrayView3<'a, f64>,
    z_off: usize,
    /// The right-hand side on the finest level (`r = v − A u`, and the sweep ends with the
    /// final residual); `None` on the levels below, meaning `r −= A u`.
    v: Option<ArrayView3<'a, f64>>,
    c: [f64; 4],
}

/// Every element of a grid's padded piece, in order.
fn whole(a: &mut DistArray<f64, Ix3>) -> &mut [f64] {
    let all = a.local_with_ghosts_mut().into_slice();
    all.expect("grids are standard layout")
}

impl Sweep<'_> {
    /// The fewest planes (ghosts included) a level needs for the sweep.
    const MIN_PLANES: usize = 8;

    fn run(
        &self,
        u: &mut DistArray<f64, Ix3>,
        u_plan: &mut HaloPlan<f64>,
        r: &mut DistArray<f64, Ix3>,
        r_plan: &mut HaloPlan<f64>,
        mut restrict: Option<(&mut DistArray<f64, Ix3>, &mut HaloPlan<f64>)>,
    ) -> spmd::Result<()> {
        let (n3, n2, n1) = u.local_with_ghosts().dim();
        let then_residual = self.v.is_some();
        assert!(n3 >= Self::MIN_PLANES && (then_residual || restrict.is_none()));
        let layer = n2 * n1;
        let u_off = u.global_range(0).map_or(0, |g| g.start);
        let mut scratch = Scratch::new(n1);
        let interp_plane_of = |u: &mut DistArray<f64, Ix3>, l: usize| {
            let out = &mut whole(u)[l * layer..][..layer];
            interp_plane(&self.z, self.z_off, l + u_off, out, n1);
        };
        // Residual plane `l` into `planes`, a slice of `r` whose first plane is padded plane
        // `first`.
        let resid_plane = |u: &DistArray<f64, Ix3>,
                           l: usize,
                           planes: &mut [f64],
                           first: usize,
                           s: &mut Scratch| {
            let out = &mut planes[(l - first) * layer..][..layer];
            resid(&u.local_with_ghosts(), self.v.as_ref(), l, out, s);
            wrap_plane(out, n1);
        };
        let resid_into = |exchange: &mut spmd::array::HaloExchange<'_, f64, Ix3>,
                          u: &DistArray<f64, Ix3>,
                          l: usize,
                          s: &mut Scratch| {
            // Inner padded planes start at 2.
            let inner = exchange.inner_mut().into_slice();
            resid_plane(u, l, inner.expect("grids are standard layout"), 2, s);
        };
        // Smoother plane `l`, `r` read through a view whose plane 0 is padded plane `first`.
        let psinv_plane = |r: &ArrayView3<'_, f64>,
                           first: usize,
                           u: &mut DistArray<f64, Ix3>,
                           l: usize,
                           s: &mut Scratch| {
            let out = &mut whole(u)[l * layer..][..layer];
            psinv(r, self.c, l - first, out, s);
            wrap_plane(out, n1);
        };
        for l in [0, 1, 2, n3 - 3, n3 - 2, n3 - 1] {
            interp_plane_of(u, l);
        }
        for l in [1, n3 - 2] {
            resid_plane(u, l, whole(r), 0, &mut scratch);
        }
        // Coarse plane `j` of the restriction, `r` read through a view whose plane 0 is padded
        // plane `first`.
        let restrict_plane = |r: &ArrayView3<'_, f64>,
                              first: usize,
                              coarse: &mut DistArray<f64, Ix3>,
                              j: usize,
                              s: &mut Scratch| {
            let (_, m2j, m1j) = coarse.local_with_ghosts().dim();
            let out = &mut whole(coarse)[j * m2j * m1j..][..m2j * m1j];
            rprj3(r, 2 * j - 1 - first, out, m1j, s);
            wrap_plane(out, m1j);
        };
        let mut exchange = r_plan.begin(r)?;
        for l in 2..=n3 - 3 {
            if l < n3 - 4 {
                interp_plane_of(u, l + 1);
            }
            resid_into(&mut exchange, u, l, &mut scratch);
            if l >= 3 {
                // Owned padded planes start at 1.
                psinv_plane(&exchange.owned(), 1, u, l - 1, &mut scratch);
            }
            if then_residual && l >= 5 {
                resid_into(&mut exchange, u, l - 2, &mut scratch);
            }
            if let Some((coarse, _)) = restrict.as_mut() {
                // Final residual planes 3 ..= l − 2 are done: coarse plane j reads 2j − 1 ..= 2j + 1.
                if l >= 7 && l % 2 == 1 {
                    let owned = exchange.owned();
                    restrict_plane(&owned, 1, coarse, (l - 3) / 2, &mut scratch);
                }
            }
            if l % 8 == 0 {
                exchange.test();
            }
        }
        psinv_plane(&exchange.owned(), 1, u, n3 - 3, &mut scratch);
        if then_residual {
            resid_into(&mut exchange, u, n3 - 4, &mut scratch);
        }
        exchange.finish()?;
        for l in [1, n3 - 2] {
            psinv_plane(&r.local_with_ghosts(), 0, u, l, &mut scratch);
        }
        u_plan.begin(u)?.finish()?;
        if !then_residual {
            return Ok(());
        }
        // The final residual's planes 3 ..= n3 − 4 are done.
        for l in [1, 2, n3 - 3, n3 - 2] {
            resid_plane(u, l, whole(r), 0, &mut scratch);
        }
        r_plan.begin(r)?.finish()?;
        let Some((coarse, coarse_plan)) = restrict else {
            return Ok(());
        };
        // Coarse planes 2 ..= m − 2 are done, `m` being the coarse level's own planes.
        let m = coarse.local_with_ghosts().dim().0 - 2;
        assert_eq!(2 * m, n3 - 2, "the coarse block is half the fine one");
        for j in [1, m - 1, m] {
            restrict_plane(&r.local_with_ghosts(), 0, coarse, j, &mut scratch);
        }
        coarse_plan.begin(coarse)?.finish()
    }
}

/// The solver's state: `u` and `r` per level (index 1 = coarsest), `v` on the finest.
struct Multigrid {
    /// A handle on the communicator (cheap to clone): no lifetime to carry around.
    comm: Comm,
    levels: usize,
    u: Vec<Grid>,
    r: Vec<Grid>,
    v: Grid,
    c: [f64; 4],
    n: usize,
}

impl Multigrid {
    fn new(comm: &Comm, n: usize, c: [f64; 4]) -> Multigrid {
        let levels = n.trailing_zeros() as usize;
        let grid = |k: usize| {
            let ng = n >> (levels - k);
            Grid::new((ng >= 2 * comm.size()).then_some(comm), ng)
        };
        Multigrid {
            comm: comm.clone(),
            levels,
            u: (0..=levels).map(|k| grid(k.max(1))).collect(),
            r: (0..=levels).map(|k| grid(k.max(1))).collect(),
            v: grid(levels),
            c,
            n,
        }
    }

    /// NPB `zran3`: v = 0 except +1 at the 10 largest and −1 at the 10 smallest of n³ numbers.
    fn charges(&mut self) -> spmd::Result<()> {
        let n = self.n as u64;
        let offset = self.v.offset() as u64;
        let mut v = self.v.view_mut();
        v.fill(0.0);
        let planes = v.dim().0;
        // (value, global index) of this rank's candidates.
        let mut high: Vec<(f64, u64)> = Vec::new();
        let mut low: Vec<(f64, u64)> = Vec::new();
        for l in 1..planes - 1 {
            let i3 = offset + l as u64 - 1; // global interior plane
            for i2 in 0..n {
                let first = i3 * n * n + i2 * n;
                let mut x = mul_mod(SEED, pow_mod(MULTIPLIER, first));
                for i1 in 0..n {
                    x = mul_mod(MULTIPLIER, x);
                    let value = uniform(x);
                    let index = first + i1;
                    keep(&mut high, (value, index), |a, b| a > b);
                    keep(&mut low, (value, index), |a, b| a < b);
                }
            }
        }
        let flatten = |c: &[(f64, u64)]| {
            c.iter()
                .flat_map(|&(v, i)| [v, i as f64])
                .collect::<Vec<f64>>()
        };
        let all_high = self.comm.all_gather_varcount(&flatten(&high))?.into_vec();
        let all_low = self.comm.all_gather_varcount(&flatten(&low))?.into_vec();
        let best = |all: &[f64], better: fn(f64, f64) -> bool| {
            let mut c: Vec<(f64, u64)> = Vec::new();
            for pair in all.chunks(2) {
                keep(&mut c, (pair[0], pair[1] as u64), better);
            }
            c
        };
        for (charge, chosen) in [
            (-1.0, best(&all_low, |a, b| a < b)),
            (1.0, best(&all_high, |a, b| a > b)),
        ] {
            for (_, index) in chosen {
                let (i3, i2, i1) = (index / (n * n), (index / n) % n, index % n);
                if (offset..offset + planes as u64 - 2).contains(&i3) {
                    v[[(i3 - offset + 1) as usize, i2 as usize + 1, i1 as usize + 1]] = charge;
                }
            }
        }
        self.v.comm3()
    }

    /// `r = v − A u` on the finest level.
    fn residual(&mut self) -> spmd::Result<()> {
        let top = self.levels;
        let (u, v) = (self.u[top].view(), self.v.view());
        let mut scratch = Scratch::new(u.dim().2);
        self.r[top].produce(|i3, out| resid(&u, Some(&v), i3, out, &mut scratch))
    }

    /// `u[k] += C r[k]`.
    fn smooth(&mut self, k: usize) -> spmd::Result<()> {
        let (r, c) = (self.r[k].view(), self.c);
        let mut scratch = Scratch::new(r.dim().2);
        self.u[k].produce(|i3, out| psinv(&r, c, i3, out, &mut scratch))
    }

    /// One V-cycle, then the finest level's residual `r = v − A u` (NPB's `mg3P`, then
    /// `resid`). `restricted`: the first restriction (finest level to the next) was already
    /// computed by the previous call. `restrict_after`: compute the next cycle's first
    /// restriction too, where the finest sweep can; the result says whether it did.
    fn v_cycle(&mut self, restricted: bool, restrict_after: bool) -> spmd::Result<bool> {
        let top = self.levels;
        let first = if restricted { top - 1 } else { top };
        for k in (2..=first).rev() {
            let whole = self.whole_if_needed(k)?;
            let (coarse, fine) = self.r.split_at_mut(k);
            let source = whole.as_ref().map_or_else(|| fine[0].view(), |w| w.view());
            let mut scratch = Scratch::new(source.dim().2);
            let m1j = coarse[k - 1].view().dim().2;
            coarse[k - 1].produce(|j3, out| rprj3(&source, 2 * j3 - 1, out, m1j, &mut scratch))?;
        }
        self.u[1].zero();
        self.smooth(1)?;
        for k in 2..top {
            self.u[k].zero();
            self.ascend(k, false)?;
        }
        self.ascend(top, restrict_after)
    }

    /// Level `k` on the way up: `u[k] += Q u[k − 1]`, then `r[k] = v − A u[k]` (the finest
    /// level) or `r[k] −= A u[k]`, then `u[k] += C r[k]`; on the finest level the residual
    /// again and, if `restrict` asks and it can, the restriction of that residual to the next
    /// level (the result says whether it did). On distributed levels with enough planes they
    /// run as one sweep ([`Sweep`]); elsewhere one after the other.
    fn ascend(&mut self, k: usize, restrict: bool) -> spmd::Result<bool> {
        let top = self.levels;
        let fusable = matches!((&self.u[k], &self.r[k]), (Grid::Dist(..), Grid::Dist(..)))
            && self.u[k].view().dim().0 >= Sweep::MIN_PLANES;
        if fusable {
            let (coarse_u, fine_u) = self.u.split_at_mut(k);
            let (coarse_r, fine_r) = self.r.split_at_mut(k);
            let (Grid::Dist(u, u_plan), Grid::Dist(r, r_plan)) = (&mut fine_u[0], &mut fine_r[0])
            else {
                unreachable!("checked above")
            };
            let restrict_into = match &mut coarse_r[k - 1] {
                Grid::Dist(s, s_plan) if restrict && k == top => Some((&mut **s, s_plan)),
                _ => None,
            };
            let restricted = restrict_into.is_some();
            let sweep = Sweep {
                z: coarse_u[k - 1].view(),
                z_off: coarse_u[k - 1].offset(),
                v: (k == top).then(|| self.v.view()),
                c: self.c,
            };
            sweep.run(u, u_plan, r, r_plan, restrict_into)?;
            return Ok(restricted);
        }
        self.prolong(k);
        if k == top {
            self.residual()?;
            self.smooth(k)?;
            self.residual()?;
        } else {
            let u = self.u[k].view();
            let mut scratch = Scratch::new(u.dim().2);
            self.r[k].produce(|i3, out| resid(&u, None, i3, out, &mut scratch))?;
            self.smooth(k)?;
        }
        Ok(false)
    }

    /// `u[k] += Q u[k − 1]`.
    fn prolong(&mut self, k: usize) {
        let (coarse, fine) = self.u.split_at_mut(k);
        let (z, z_off) = (coarse[k - 1].view(), coarse[k - 1].offset());
        let u_off = fine[0].offset();
        interp(&z, z_off, fine[0].view_mut(), u_off);
    }

    /// When level `k` is distributed but `k − 1` is whole, level `k`'s residual as a whole
    /// padded grid on every rank (one `all_gather`), else `None`.
    fn whole_if_needed(&self, k: usize) -> spmd::Result<Option<Array3<f64>>> {
        match (&self.r[k], &self.r[k - 1]) {
            (Grid::Dist(fine, _), Grid::Whole(_)) => {
                let planes = fine.all_gather()?;
                let (n3, n2, n1) = planes.dim();
                let mut whole = Array3::zeros((n3 + 2, n2, n1));
                whole.slice_mut(s![1..n3 + 1, .., ..]).assign(&planes);
                let (first, last) = (
                    whole.index_axis(Axis(0), 1).to_owned(),
                    whole.index_axis(Axis(0), n3).to_owned(),
                );
                whole.index_axis_mut(Axis(0), 0).assign(&last);
                whole.index_axis_mut(Axis(0), n3 + 1).assign(&first);
                Ok(Some(whole))
            }
            _ => Ok(None),
        }
    }

    /// NPB `norm2u3` of the finest residual: `sqrt(Σ r² / n³)`.
    fn norm(&self) -> f64 {
        let r = self.r[self.levels].view();
        let (n3, n2, n1) = r.dim();
        let local: f64 = r
            .slice(s![1..n3 - 1, 1..n2 - 1, 1..n1 - 1])
            .iter()
            .map(|x| x * x)
            .sum();
        (self.comm.all_reduce(local, Op::Sum) / (self.n as f64).powi(3)).sqrt()
    }
}

/// Keeps the ten best of `candidates` (by `better`), best last.
fn keep(candidates: &mut Vec<(f64, u64)>, item: (f64, u64), better: fn(f64, f64) -> bool) {
    if candidates.len() == 10 && !better(item.0, candidates[0].0) {
        return;
    }
    let at = candidates.partition_point(|c| better(item.0, c.0));
    candidates.insert(at, item);
    if candidates.len() > 10 {
        candidates.remove(0);
    }
}

/// The benchmark: setup, one untimed iteration, reset, then `nit` timed V-cycles.
/// The levels, the charges and NPB's untimed warm-up iteration.
fn setup(comm: &Comm, n: usize, c: [f64; 4]) -> spmd::Result<Multigrid> {
    let mut mg = Multigrid::new(comm, n, c);
    mg.charges()?;
    mg.residual()?;
    mg.v_cycle(false, false)?;
    Ok(mg)
}

/// NPB's reset before its timer starts: the solution back to zero (the coarse levels are
/// zeroed inside each V-cycle, so only the finest needs it).
fn reset(mg: &mut Multigrid) {
    mg.u[mg.levels].zero();
}

/// NPB's timed section from a zero solution ([`reset`]): the residual, `nit` V-cycles, the
/// norm.
fn benchmark(mg: &mut Multigrid, nit: usize) -> spmd::Result<f64> {
    mg.residual()?;
    let mut restricted = false;
    for it in 1..=nit {
        restricted = mg.v_cycle(restricted, it < nit)?;
    }
    Ok(mg.norm())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Cli::parse().npb;
    let (n, nit, reference) = spec(args.class);
    let c = match args.class {
        Class::B => [-3.0 / 17.0, 1.0 / 33.0, -1.0 / 61.0, 0.0],
        _ => [-3.0 / 8.0, 1.0 / 32.0, -1.0 / 64.0, 0.0],
    };
    let spmd = args.measure.builder().init()?;
    let world = spmd.world();
    let p = world.size();
    if !p.is_power_of_two() || p > n / 2 {
        // Every rank returns, so MPI is finalised everywhere and the launcher forwards the
        // message before the job ends; the root's error makes the job's exit status non-zero.
        if spmd.is_root() {
            return Err(format!(
                "npb_mg: class {:?} needs a power-of-two number of ranks up to {}, found {p}",
                args.class,
                n / 2
            )
            .into());
        }
        return Ok(());
    }
    let mut mg = setup(world, n, c)?;
    // Timed as the reference times it: the reset happens before the clock starts.
    let run = |mg: &mut Multigrid| -> spmd::Result<f64> {
        let _mg = spmd.region("MG");
        benchmark(mg, nit)
    };
    let repeat = args.measure.repeat(&spmd);
    let rnm2 = if args.measure.baseline {
        // The same kernel on the root alone (it is serial inside each rank), set up at its
        // first run: the warm-up, which is therefore always run with a baseline (without
        // it, the one measured baseline run would include the set-up).
        let mut alone_mg: Option<Multigrid> = None;
        let serial = |alone: &Comm| -> spmd::Result<f64> {
            let mg = match &mut alone_mg {
                Some(mg) => mg,
                slot => slot.insert(setup(alone, n, c)?),
            };
            // The baseline's clock cannot stop for it: its time includes the reset (one
            // memset of the finest level, about 1% of a run).
            reset(mg);
            benchmark(mg, nit)
        };
        let measured = repeat
            .warmup(1)
            .baseline_with_comm(serial)
            .run_prepared(&mut mg, reset, run)?;
        measured.baseline.transpose()?;
        measured.result
    } else {
        repeat.run_prepared(&mut mg, reset, run)?.result
    };
    let error = ((rnm2 - reference) / reference).abs();
    let verified = error <= 1e-8;
    let report = spmd.report("npb_mg")?;
    if let Some(report) = report {
        // The benchmark's time: the slowest rank's, median over the repetitions.
        let seconds = report.wall_s.median;
        let mops = 58.0 * nit as f64 * (n as f64).powi(3) * 1e-6 / seconds;
        println!("\n NAS Parallel Benchmarks 3.4 (spmd, Rust) - MG Benchmark\n");
        println!(
            " Size: {n}x{n}x{n} (class {:?})\n Iterations: {nit}",
            args.class
        );
        println!(" L2 Norm is {rnm2:20.13e}   reference {reference:20.13e}   relative error {error:.2e}\n");
        let results = npb_common::Results {
            class: format!("{:?}", args.class),
            size: format!("{n}x{n}x{n}"),
            iterations: nit,
            seconds,
            mops,
            processes: p,
            threads: spmd.threads(),
            operation: "floating point",
            verified,
        };
        npb_common::finish(&results, &report, &args.measure)?;
    }
    npb_common::verdict("MG", verified)
}
