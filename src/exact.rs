//! Reproducible floating-point sums: [`ExactSum`], an exact accumulator, and the collective
//! sums built on it ([`Comm::sum_exact`], [`Comm::dot_exact`],
//! [`DistArray::sum_exact`](crate::array::DistArray::sum_exact),
//! [`DistArray::dot_exact`](crate::array::DistArray::dot_exact)).
//!
//! # Fast sums vary, exact sums do not
//! The default sums ([`Comm::all_reduce`] with [`Op::Sum`](crate::Op::Sum),
//! [`DistArray::sum`](crate::array::DistArray::sum), `dot`, `norm2`) add in whatever order the
//! split into ranks, rayon tasks and SIMD lanes gives, so their last bits change with the
//! number of ranks and threads. That is the right default (it runs at memory speed), but it
//! makes results hard to compare between runs of different sizes.
//!
//! The exact sums here return the **correctly rounded value of the exact mathematical sum**
//! (round to nearest, ties to even). The exact sum does not depend on the order of the terms,
//! so the result is bit-identical for any number of ranks, any number of threads and any
//! distribution — and as accurate as a float can be: `[1e300, 1.0, -1e300]` sums to `1.0`.
//!
//! # How
//! Every finite `f64` is an integer multiple of 2⁻¹⁰⁷⁴, so [`ExactSum`] keeps the running sum
//! as a 2,144-bit fixed-point integer in 67 limbs of 32 bits held in `i64`s: adding a value
//! adds its 53-bit mantissa, shifted to its exponent, into two limbs (the low 32 bits and the
//! rest), and the spare bits of each `i64` absorb 2¹⁰ additions before carries must be
//! propagated. Rayon tasks and ranks combine their accumulators limb by limb, which is
//! integer addition and so associative; across ranks that is one `MPI_Allreduce` of 70
//! `i64`s. Only the final result is rounded, once.
//!
//! Cost: about a dozen integer operations and two read-modify-writes per element instead of
//! one float add, so it runs compute-bound, 5–8× slower than the memory-bound fast sum on the
//! test machine (README, performance section: `SPMD_BENCH_ARRAYS_PART=exact cargo bench
//! --bench arrays`). Use it where reproducibility matters more than that: verification runs,
//! convergence tests compared across machine sizes, checksums.
//!
//! # Special values
//! NaN anywhere gives NaN; `+∞` and `−∞` together give NaN; otherwise an infinity among the
//! terms gives that infinity. A finite exact sum too large for the format rounds to `±∞`. An
//! exact sum of zero is `+0.0`.
//!
//! # Dot products
//! For `f64`, each product `a·b` is split into its rounded value and its rounding error
//! (`a.mul_add(b, -a·b)`, exact unless the product underflows), and both are added, so
//! [`ExactSum::add_product`] accumulates the exact product. For `f32`, the product of two
//! `f32`s is exact in `f64`. Either way the dot product is correctly rounded except where
//! products fall below the smallest normal `f64` (about 2.2e-308).
//!
//! ```no_run
//! # fn main() -> spmd::Result<()> {
//! let spmd = spmd::Spmd::init()?;
//! let world = spmd.world();
//! let mine: Vec<f64> = (0..1000).map(|i| 1.0 / (1.0 + (i + 1000 * world.rank()) as f64)).collect();
//! // The same bits at 1, 2, ... ranks and with any number of threads.
//! let total = world.sum_exact(&mine);
//! # let _ = total;
//! # Ok(())
//! # }
//! ```

use std::mem::size_of;

use rayon::prelude::*;

use crate::collective::{ElementType, Preflight};
use crate::comm::Comm;
use crate::error::{Error, ErrorKind, Result};

/// Bits per limb: limbs are stored in `i64`, leaving 31 bits of headroom for carries.
const LIMB_BITS: usize = 32;
const LIMB_MASK: i64 = (1 << LIMB_BITS) - 1;
/// 2,098 bits cover every finite `f64` (bit 0 is 2⁻¹⁰⁷⁴, the top mantissa bit of the largest
/// value is bit 2,097); 67 limbs leave room for the sum of 2⁴⁰ largest values. The top limb
/// holds the signed remainder.
const LIMBS: usize = 67;
/// Additions before the carries must be propagated: each adds under 2⁵² to a limb, so 2¹⁰
/// of them (plus a carried limb below 2³²) stay under 2⁶². Smaller under test so the
/// propagation runs often in the unit tests.
#[cfg(not(test))]
const ADDS_BEFORE_CARRY: u32 = 1 << 10;
#[cfg(test)]
const ADDS_BEFORE_CARRY: u32 = 1 << 4;
/// Additions per accumulator between carry checks in the slice loops: a counter below
/// `ADDS_BEFORE_CARRY` before a block stays below 1.5 times that after it (under 2⁶³ in all).
const LANE_BLOCK: usize = ADDS_BEFORE_CARRY as usize / 2;
/// The slots of the wire form after the limbs: counts of NaN, +∞ and −∞ terms.
const WIRE_LEN: usize = LIMBS + 3;
/// Elements per rayon task.
const TASK: usize = 1 << 14;

/// An exact accumulator of `f64` (and `f32`) values; see the [module docs](self).
///
/// ```
/// use spmd::exact::ExactSum;
/// let mut sum = ExactSum::new();
/// for x in [1e300, 1.0, -1e300, 0.5] {
///     sum.add(x);
/// }
/// assert_eq!(sum.to_f64(), 1.5); // a plain f64 sum gives 0.5
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExactSum {
    limbs: [i64; LIMBS],
    adds_since_carry: u32,
    nan: u64,
    pos_inf: u64,
    neg_inf: u64,
}

impl Default for ExactSum {
    fn default() -> ExactSum {
        ExactSum::new()
    }
}

impl ExactSum {
    /// An empty sum (zero).
    pub fn new() -> ExactSum {
        ExactSum {
            limbs: [0; LIMBS],
            adds_since_carry: 0,
            nan: 0,
            pos_inf: 0,
            neg_inf: 0,
        }
    }

    /// Adds `x` exactly.
    #[inline]
    pub fn add(&mut self, x: f64) {
        self.accumulate(x);
        self.count_adds(1);
    }

    /// Adds every value of `values`, faster than one [`add`](Self::add) at a time.
    pub fn add_all(&mut self, values: &[f64]) {
        self.add_pairs(values, values, 1, |sum, x, _| sum.accumulate(x));
    }

    /// Adds the exact products `a[i]·b[i]`.
    ///
    /// # Panics
    /// If the slices differ in length.
    pub fn add_products(&mut self, a: &[f64], b: &[f64]) {
        assert_eq!(
            a.len(),
            b.len(),
            "add_products: slices of different lengths"
        );
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has FMA (checked just above), the only feature the function
            // is compiled for.
            unsafe { self.add_products_fma(a, b) };
            return;
        }
        self.add_pairs(a, b, 2, |sum, x, y| sum.accumulate_product(x, y));
    }

    /// [`add_products`](Self::add_products) with `mul_add` as one instruction instead of a
    /// call into the runtime's FMA (the default x86-64 target cannot assume FMA).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "fma")]
    fn add_products_fma(&mut self, a: &[f64], b: &[f64]) {
        self.add_pairs(a, b, 2, |sum, x, y| sum.accumulate_product(x, y));
    }

    /// Runs `add(lane, a[i], b[i])` over the pairs, spread over four accumulators in turn so
    /// that consecutive values with similar exponents do not wait on each other's limbs;
    /// `adds` is how many values `add` accumulates per pair.
    #[inline(always)]
    fn add_pairs<T: Copy, U: Copy>(
        &mut self,
        a: &[T],
        b: &[U],
        adds: u32,
        add: impl Fn(&mut ExactSum, T, U),
    ) {
        let mut lanes = [ExactSum::new(), ExactSum::new(), ExactSum::new()];
        // Pairs per block: LANE_BLOCK additions on each of the four accumulators.
        let block = 4 * LANE_BLOCK / adds as usize;
        for (a, b) in a.chunks(block).zip(b.chunks(block)) {
            let mut a4 = a.chunks_exact(4);
            let mut b4 = b.chunks_exact(4);
            for (x, y) in (&mut a4).zip(&mut b4) {
                add(self, x[0], y[0]);
                add(&mut lanes[0], x[1], y[1]);
                add(&mut lanes[1], x[2], y[2]);
                add(&mut lanes[2], x[3], y[3]);
            }
            for (&x, &y) in a4.remainder().iter().zip(b4.remainder()) {
                add(self, x, y);
            }
            let per_lane = (a.len().div_ceil(4) as u32) * adds;
            self.count_adds(per_lane);
            lanes.iter_mut().for_each(|lane| lane.count_adds(per_lane));
        }
        lanes.into_iter().for_each(|lane| self.merge(lane));
    }

    /// Adds `x` without counting it towards the next carry propagation.
    #[inline(always)]
    fn accumulate(&mut self, x: f64) {
        let bits = x.to_bits();
        let biased = ((bits >> 52) & 0x7ff) as usize;
        if biased == 0x7ff {
            self.add_special(x);
            return;
        }
        let fraction = bits & ((1 << 52) - 1);
        // value = mantissa · 2^(lsb − 1074): subnormals have lsb 0 and no implicit bit.
        let (mantissa, lsb) = if biased == 0 {
            (fraction, 0)
        } else {
            (fraction | (1 << 52), biased - 1)
        };
        // The mantissa shifted into place spans up to 85 bits: its low 32 bits go to limb
        // `at`, the rest (under 2⁵²) to limb `at + 1`.
        let shift = (lsb % LIMB_BITS) as u32;
        let low = ((mantissa << shift) & LIMB_MASK as u64) as i64;
        let high = (mantissa >> (32 - shift)) as i64;
        // 0 for a positive value, −1 for a negative one: (c ^ s) − s negates without a branch.
        let sign = -((bits >> 63) as i64);
        // lsb ≤ 2045, so `at` ≤ 63 and the mask only tells the compiler so (no bounds checks).
        let at = (lsb / LIMB_BITS) & 63;
        let limbs = &mut self.limbs[at..at + 2];
        limbs[0] += (low ^ sign) - sign;
        limbs[1] += (high ^ sign) - sign;
    }

    /// Records `n` uncounted additions, propagating carries when the limbs' headroom is
    /// used up.
    #[inline]
    fn count_adds(&mut self, n: u32) {
        self.adds_since_carry += n;
        if self.adds_since_carry >= ADDS_BEFORE_CARRY {
            self.carry();
        }
    }

    /// Adds the exact product `a·b` (see the module docs on underflow).
    #[inline]
    pub fn add_product(&mut self, a: f64, b: f64) {
        self.accumulate_product(a, b);
        self.count_adds(2);
    }

    #[inline(always)]
    fn accumulate_product(&mut self, a: f64, b: f64) {
        let product = a * b;
        self.accumulate(product);
        if product.is_finite() {
            // The rounding error of the product, exact by the FMA.
            self.accumulate(a.mul_add(b, -product));
        }
    }

    /// Adds another accumulator: afterwards `self` holds the exact sum of both.
    pub fn merge(&mut self, mut other: ExactSum) {
        self.carry();
        other.carry();
        for (mine, theirs) in self.limbs.iter_mut().zip(other.limbs) {
            *mine += theirs;
        }
        // Each limb is now below 2³³, as after two additions.
        self.adds_since_carry = 2;
        self.nan += other.nan;
        self.pos_inf += other.pos_inf;
        self.neg_inf += other.neg_inf;
    }

    /// The exact sum rounded to the nearest `f64` (ties to even).
    pub fn to_f64(&self) -> f64 {
        f64::from_bits(self.round(&F64))
    }

    /// The exact sum rounded to the nearest `f32` (ties to even), directly from the exact
    /// value (no double rounding through `f64`).
    pub fn to_f32(&self) -> f32 {
        // `round` returns at most 32 significant bits for the f32 format.
        f32::from_bits(self.round(&F32) as u32)
    }

    fn add_special(&mut self, x: f64) {
        if x.is_nan() {
            self.nan += 1;
        } else if x > 0.0 {
            self.pos_inf += 1;
        } else {
            self.neg_inf += 1;
        }
    }

    /// Propagates carries: every limb but the top one ends in `0..2³²`; the top one holds
    /// the signed rest, so the sign of the sum is the sign of the top limb.
    fn carry(&mut self) {
        let mut carry = 0_i64;
        for limb in &mut self.limbs[..LIMBS - 1] {
            let v = *limb + carry;
            carry = v >> LIMB_BITS; // arithmetic shift: floor division
            *limb = v & LIMB_MASK;
        }
        self.limbs[LIMBS - 1] += carry;
        self.adds_since_carry = 0;
    }

    /// The bit pattern of the correctly rounded sum in `format`.
    fn round(&self, format: &Format) -> u64 {
        let stored = format.precision - 1;
        let infinity = format.max_biased << stored;
        let sign_bit = 1_u64 << format.sign_shift;
        if self.nan > 0 || (self.pos_inf > 0 && self.neg_inf > 0) {
            return infinity | (1 << (stored - 1)); // a quiet NaN
        }
        if self.pos_inf > 0 {
            return infinity;
        }
        if self.neg_inf > 0 {
            return infinity | sign_bit;
        }
        let mut magnitude = self.clone();
        magnitude.carry();
        let negative = magnitude.limbs[LIMBS - 1] < 0;
        if negative {
            for limb in &mut magnitude.limbs {
                *limb = -*limb;
            }
            magnitude.carry();
        }
        let sign = if negative { sign_bit } else { 0 };
        if magnitude.limbs[LIMBS - 1] > LIMB_MASK {
            return infinity | sign; // beyond 2^1038
        }
        let Some(top) = magnitude.limbs.iter().rposition(|&l| l != 0) else {
            return 0;
        };
        let high = top * LIMB_BITS + (63 - magnitude.limbs[top].leading_zeros() as usize);
        // The lowest bit the result keeps: `precision` bits below the leading one, but never
        // below the format's smallest subnormal.
        let mut lsb = (high + 1)
            .saturating_sub(format.precision)
            .max(format.subnormal_lsb);
        let mut mantissa = magnitude.bits(lsb, high + 1);
        let round_bit = lsb > 0 && magnitude.bit(lsb - 1);
        let sticky = lsb > 1 && magnitude.any_below(lsb - 1);
        if round_bit && (sticky || mantissa & 1 == 1) {
            mantissa += 1;
            if mantissa == 1 << format.precision {
                mantissa >>= 1;
                lsb += 1;
            }
        }
        // Subnormals have lsb == subnormal_lsb and a mantissa without its implicit bit, so
        // one formula covers both; a mantissa that rounded up into the implicit bit moves
        // the biased exponent from 0 to 1 by itself.
        let bits = (((lsb - format.subnormal_lsb) as u64) << stored) + mantissa;
        if bits >> stored >= format.max_biased {
            return infinity | sign;
        }
        bits | sign
    }

    fn bit(&self, i: usize) -> bool {
        (self.limbs[i / LIMB_BITS] >> (i % LIMB_BITS)) & 1 == 1
    }

    /// Bits `lo..hi` (at most 64) as an integer.
    fn bits(&self, lo: usize, hi: usize) -> u64 {
        (lo..hi)
            .rev()
            .fold(0, |acc, i| (acc << 1) | u64::from(self.bit(i)))
    }

    /// Whether any bit below `i` is set.
    fn any_below(&self, i: usize) -> bool {
        let whole = i / LIMB_BITS;
        let partial = self.limbs[whole] & ((1 << (i % LIMB_BITS)) - 1);
        partial != 0 || self.limbs[..whole].iter().any(|&l| l != 0)
    }

    fn to_wire(&self) -> [i64; WIRE_LEN] {
        let mut carried = self.clone();
        carried.carry();
        let mut wire = [0; WIRE_LEN];
        wire[..LIMBS].copy_from_slice(&carried.limbs);
        wire[LIMBS] = counted(self.nan);
        wire[LIMBS + 1] = counted(self.pos_inf);
        wire[LIMBS + 2] = counted(self.neg_inf);
        wire
    }

    fn from_wire(wire: &[i64; WIRE_LEN]) -> ExactSum {
        let mut sum = ExactSum::new();
        sum.limbs.copy_from_slice(&wire[..LIMBS]);
        sum.nan = wire[LIMBS].unsigned_abs();
        sum.pos_inf = wire[LIMBS + 1].unsigned_abs();
        sum.neg_inf = wire[LIMBS + 2].unsigned_abs();
        // The limbs of many ranks were added: bring them back into range at once.
        sum.carry();
        sum
    }
}

/// A count as a wire `i64` (a count beyond `i64::MAX` cannot occur in memory).
fn counted(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A binary float format: `precision` significant bits including the implicit one, the
/// fixed-point bit of its smallest subnormal, the biased exponent of its infinities.
struct Format {
    precision: usize,
    subnormal_lsb: usize,
    max_biased: u64,
    sign_shift: u32,
}

const F64: Format = Format {
    precision: 53,
    subnormal_lsb: 0,
    max_biased: 0x7ff,
    sign_shift: 63,
};

/// The smallest f32 subnormal is 2⁻¹⁴⁹ = bit 1074 − 149.
const F32: Format = Format {
    precision: 24,
    subnormal_lsb: 925,
    max_biased: 0xff,
    sign_shift: 31,
};

mod sealed {
    pub trait Sealed {}
    impl Sealed for f64 {}
    impl Sealed for f32 {}
}

/// The float types with exact sums: `f64` and `f32`. Sealed.
pub trait ExactFloat: sealed::Sealed + Copy + Send + Sync + 'static {
    /// Adds `self` to `sum`.
    fn add_to(self, sum: &mut ExactSum);
    /// Adds the exact product `self·other` to `sum`.
    fn add_product_to(self, other: Self, sum: &mut ExactSum);
    /// `sum` rounded to this type.
    fn from_exact(sum: &ExactSum) -> Self;
    /// Adds every value of `values` to `sum`.
    fn add_slice_to(values: &[Self], sum: &mut ExactSum);
    /// Adds the exact products `a[i]·b[i]` to `sum` (slices of equal length).
    fn add_products_to(a: &[Self], b: &[Self], sum: &mut ExactSum);
}

impl ExactFloat for f64 {
    #[inline]
    fn add_to(self, sum: &mut ExactSum) {
        sum.add(self);
    }
    #[inline]
    fn add_product_to(self, other: f64, sum: &mut ExactSum) {
        sum.add_product(self, other);
    }
    fn from_exact(sum: &ExactSum) -> f64 {
        sum.to_f64()
    }
    fn add_slice_to(values: &[f64], sum: &mut ExactSum) {
        sum.add_all(values);
    }
    fn add_products_to(a: &[f64], b: &[f64], sum: &mut ExactSum) {
        sum.add_products(a, b);
    }
}

impl ExactFloat for f32 {
    #[inline]
    fn add_to(self, sum: &mut ExactSum) {
        sum.add(f64::from(self));
    }
    #[inline]
    fn add_product_to(self, other: f32, sum: &mut ExactSum) {
        // 24 × 24 significant bits fit f64's 53: the product is exact.
        sum.add(f64::from(self) * f64::from(other));
    }
    fn from_exact(sum: &ExactSum) -> f32 {
        sum.to_f32()
    }
    fn add_slice_to(values: &[f32], sum: &mut ExactSum) {
        sum.add_pairs(values, values, 1, |s, x, _| s.accumulate(f64::from(x)));
    }
    fn add_products_to(a: &[f32], b: &[f32], sum: &mut ExactSum) {
        // Exact in f64, as in `add_product_to`.
        sum.add_pairs(a, b, 1, |s, x, y| s.accumulate(f64::from(x) * f64::from(y)));
    }
}

/// The exact sum of `values`, in rayon tasks.
pub fn local_sum_exact<T: ExactFloat>(values: &[T]) -> ExactSum {
    values
        .par_chunks(TASK)
        .map(|chunk| {
            let mut sum = ExactSum::new();
            T::add_slice_to(chunk, &mut sum);
            sum
        })
        .reduce(ExactSum::new, merged)
}

/// The exact `Σ a·b` of two slices of equal length, in rayon tasks.
///
/// # Panics
/// If the lengths differ.
pub fn local_dot_exact<T: ExactFloat>(a: &[T], b: &[T]) -> ExactSum {
    assert_eq!(
        a.len(),
        b.len(),
        "local_dot_exact: slices of different lengths"
    );
    a.par_chunks(TASK)
        .zip(b.par_chunks(TASK))
        .map(|(x, y)| {
            let mut sum = ExactSum::new();
            T::add_products_to(x, y, &mut sum);
            sum
        })
        .reduce(ExactSum::new, merged)
}

fn merged(mut a: ExactSum, b: ExactSum) -> ExactSum {
    a.merge(b);
    a
}

impl Comm {
    /// Combines every rank's accumulator: every rank gets the exact sum of all of them.
    /// Collective; one `MPI_Allreduce` of 70 `i64`s, no agreement check (nothing can
    /// disagree).
    pub fn all_reduce_exact(&self, local: &ExactSum) -> ExactSum {
        self.all_reduce_exact_slice(std::slice::from_ref(local))
            .pop()
            .expect("one accumulator in, one out")
    }

    /// [`all_reduce_exact`](Self::all_reduce_exact) of several accumulators in one
    /// `MPI_Allreduce` (every rank must pass as many: the callers are solvers with a fixed
    /// number of dot products per step). Encoding and decoding the accumulators is local work,
    /// outside the comm region.
    pub(crate) fn all_reduce_exact_slice(&self, locals: &[ExactSum]) -> Vec<ExactSum> {
        let mine: Vec<i64> = locals.iter().flat_map(|s| s.to_wire()).collect();
        let mut all = vec![0_i64; mine.len()];
        {
            let _timer = self.timed("all_reduce_exact", 2 * mine.len() * size_of::<i64>());
            mpi::collective::CommunicatorCollectives::all_reduce_into(
                self.raw(),
                &mine[..],
                &mut all[..],
                mpi::collective::SystemOperation::sum(),
            );
        }
        all.chunks_exact(WIRE_LEN)
            .map(|w| ExactSum::from_wire(w.try_into().expect("a wire's length")))
            .collect()
    }

    /// The correctly rounded sum of every rank's `values`, bit-identical for any number of
    /// ranks and threads (see the [`exact`](crate::exact) module). Collective; the local part
    /// runs on the rayon pool.
    pub fn sum_exact<T: ExactFloat>(&self, values: &[T]) -> T {
        // The local accumulation is compute; only the reduction is communication.
        let local = local_sum_exact(values);
        let _timer = self.timed("sum_exact", 2 * WIRE_LEN * size_of::<i64>());
        T::from_exact(&self.all_reduce_exact(&local))
    }

    /// The correctly rounded `Σ a·b` over every rank's slices, bit-identical for any number
    /// of ranks and threads. Collective.
    ///
    /// # Errors
    /// `BufferSize` on every rank if `a` and `b` differ in length on some rank.
    pub fn dot_exact<T: ExactFloat>(&self, a: &[T], b: &[T]) -> Result<T> {
        const OP: &str = "dot_exact";
        let local_error = (a.len() != b.len()).then(|| {
            Error::new(
                ErrorKind::BufferSize,
                format!(
                    "{OP}: the slices must have equal lengths, found {} and {}",
                    a.len(),
                    b.len()
                ),
            )
        });
        // The local accumulation is compute (skipped when this rank's input is bad); the
        // check and the reduction are communication.
        let local = match local_error {
            None => local_dot_exact(a, b),
            Some(_) => ExactSum::new(),
        };
        let _timer = self.timed(OP, 2 * WIRE_LEN * size_of::<i64>());
        self.preflight(Preflight {
            op: OP,
            element: Some(ElementType::of::<T>()),
            local_error,
            agree: &[],
        })?;
        Ok(T::from_exact(&self.all_reduce_exact(&local)))
    }
}

#[cfg(test)]
#[path = "exact_tests.rs"]
mod tests;
