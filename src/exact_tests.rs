//! Unit tests of [`ExactSum`] against independent oracles: `i128` integer sums rounded by
//! Rust's `as f64` / `as f32` casts (which round to nearest, ties to even), and hand-checked
//! cases around ties, subnormals, overflow and special values.

use proptest::prelude::*;

use super::*;

/// `Σ m_i · 2^(k_i)` for integer mantissas, computed exactly in `i128` with every term scaled
/// by 2^`scale`, then rounded once by the cast.
fn oracle_f64(terms: &[(i64, i32)], scale: i32) -> f64 {
    let total: i128 = terms
        .iter()
        .map(|&(m, k)| i128::from(m) << (k + scale))
        .sum();
    total as f64 * 2f64.powi(-scale)
}

fn oracle_f32(terms: &[(i64, i32)], scale: i32) -> f32 {
    let total: i128 = terms
        .iter()
        .map(|&(m, k)| i128::from(m) << (k + scale))
        .sum();
    total as f32 * 2f32.powi(-scale)
}

fn exact_of(values: &[f64]) -> ExactSum {
    let mut sum = ExactSum::new();
    sum.add_all(values);
    sum
}

proptest! {
    /// Sums of up to 300 terms with 53-bit mantissas spread over 50 binades: the exact sum
    /// has up to ~112 significant bits, so rounding is exercised on almost every case.
    #[test]
    fn f64_sums_are_correctly_rounded(
        terms in proptest::collection::vec((-(1_i64 << 53) + 1..(1_i64 << 53), -82_i32..-32), 0..300)
    ) {
        let values: Vec<f64> = terms.iter().map(|&(m, k)| m as f64 * 2f64.powi(k)).collect();
        let got = exact_of(&values).to_f64();
        let want = oracle_f64(&terms, 82);
        prop_assert_eq!(got.to_bits(), want.to_bits(), "got {} want {}", got, want);
    }

    #[test]
    fn f32_sums_are_correctly_rounded(
        terms in proptest::collection::vec((-(1_i64 << 24) + 1..(1_i64 << 24), -60_i32..-20), 0..300)
    ) {
        let values: Vec<f32> = terms.iter().map(|&(m, k)| m as f32 * 2f32.powi(k)).collect();
        let mut sum = ExactSum::new();
        values.iter().for_each(|&x| x.add_to(&mut sum));
        let got = sum.to_f32();
        let want = oracle_f32(&terms, 60);
        prop_assert_eq!(got.to_bits(), want.to_bits(), "got {} want {}", got, want);
    }

    /// Any split into pieces, merged in any grouping, gives the same bits.
    #[test]
    fn order_and_grouping_do_not_matter(
        values in proptest::collection::vec(any::<f64>().prop_filter("finite", |x| x.is_finite()), 1..200),
        cut in 0_usize..200,
        seed in any::<u64>(),
    ) {
        let whole = exact_of(&values).to_f64();
        let cut = cut.min(values.len());
        let mut left = exact_of(&values[..cut]);
        left.merge(exact_of(&values[cut..]));
        prop_assert_eq!(left.to_f64().to_bits(), whole.to_bits());
        let mut shuffled = values.clone();
        let mut state = seed | 1;
        for i in (1..shuffled.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            shuffled.swap(i, (state % (i as u64 + 1)) as usize);
        }
        prop_assert_eq!(exact_of(&shuffled).to_f64().to_bits(), whole.to_bits());
    }

    /// Exact products: f32 dot products against the integer oracle.
    #[test]
    fn f64_dot_products_are_exact(
        pairs in proptest::collection::vec(((-(1_i64 << 26)..(1_i64 << 26), -30_i32..0), (-(1_i64 << 26)..(1_i64 << 26), -30_i32..0)), 0..100)
    ) {
        let mut sum = ExactSum::new();
        let mut terms = Vec::new();
        for &((ma, ka), (mb, kb)) in &pairs {
            sum.add_product(ma as f64 * 2f64.powi(ka), mb as f64 * 2f64.powi(kb));
            terms.push((ma * mb, ka + kb));
        }
        prop_assert_eq!(sum.to_f64().to_bits(), oracle_f64(&terms, 60).to_bits());
    }
}

#[test]
fn cancellation_keeps_small_terms() {
    assert_eq!(exact_of(&[1e300, 1.0, -1e300]).to_f64(), 1.0);
    assert_eq!(exact_of(&[1.0, 1e100, 1.0, -1e100]).to_f64(), 2.0);
    // Intermediate sums beyond f64::MAX are fine when the final sum is not.
    assert_eq!(
        exact_of(&[f64::MAX, f64::MAX, -f64::MAX]).to_f64(),
        f64::MAX
    );
    // Ten times the f64 nearest 0.1 is 1 + 5.6e-17, which rounds to 1; adding in order
    // gives 0.9999999999999999.
    assert_eq!(exact_of(&[0.1; 10]).to_f64(), 1.0);
    assert_ne!([0.1_f64; 10].iter().sum::<f64>(), 1.0);
}

#[test]
fn ties_round_to_even_and_sticky_bits_count() {
    let half_ulp = 2f64.powi(-53);
    assert_eq!(exact_of(&[1.0, half_ulp]).to_f64(), 1.0);
    let odd = 1.0 + 2f64.powi(-52);
    assert_eq!(exact_of(&[odd, half_ulp]).to_f64(), 1.0 + 2f64.powi(-51));
    assert_eq!(
        exact_of(&[1.0, half_ulp, 2f64.powi(-400)]).to_f64(),
        1.0 + 2f64.powi(-52)
    );
    // Just below 1.0 the spacing halves: 1 − 2⁻⁵⁴ is a tie (to even: 1.0); a hair less is not.
    assert_eq!(exact_of(&[1.0, -half_ulp / 2.0]).to_f64(), 1.0);
    assert_eq!(
        exact_of(&[1.0, -half_ulp / 2.0, -2f64.powi(-200)]).to_f64(),
        1.0 - 2f64.powi(-53)
    );
}

#[test]
fn subnormals_zero_and_sign() {
    let tiny = f64::from_bits(1);
    assert_eq!(exact_of(&[tiny, tiny, tiny]).to_f64(), f64::from_bits(3));
    assert_eq!(exact_of(&[-tiny, -tiny]).to_f64(), -f64::from_bits(2));
    let min_normal = f64::MIN_POSITIVE;
    assert_eq!(
        exact_of(&[min_normal, -tiny]).to_f64(),
        f64::from_bits(min_normal.to_bits() - 1)
    );
    let zero = exact_of(&[3.5, -3.5, -0.0]).to_f64();
    assert_eq!(zero.to_bits(), 0, "an exact zero is +0.0");
    assert_eq!(ExactSum::new().to_f64().to_bits(), 0);
    assert_eq!(exact_of(&[-2.5, 1.0]).to_f64(), -1.5);
    // f32: below its smallest subnormal, ties to even at zero and one.
    let f32_tiny = f64::from(f32::from_bits(1));
    assert_eq!(exact_of(&[f32_tiny * 0.5]).to_f32().to_bits(), 0);
    assert_eq!(exact_of(&[f32_tiny * 0.75]).to_f32().to_bits(), 1);
    assert_eq!(exact_of(&[f32_tiny * 1.5]).to_f32().to_bits(), 2);
    assert_eq!(exact_of(&[-f32_tiny * 3.0]).to_f32(), -f32::from_bits(3));
}

#[test]
fn overflow_and_special_values() {
    assert_eq!(exact_of(&[f64::MAX, f64::MAX]).to_f64(), f64::INFINITY);
    assert_eq!(
        exact_of(&[-f64::MAX, -f64::MAX]).to_f64(),
        f64::NEG_INFINITY
    );
    // Half an ulp above MAX rounds to infinity (the tie goes to the even "next" exponent).
    let half_ulp_of_max = 2f64.powi(970);
    assert_eq!(
        exact_of(&[f64::MAX, half_ulp_of_max]).to_f64(),
        f64::INFINITY
    );
    assert_eq!(
        exact_of(&[f64::MAX, half_ulp_of_max / 2.0]).to_f64(),
        f64::MAX
    );
    assert_eq!(exact_of(&[1e30]).to_f32(), 1e30_f32);
    assert_eq!(exact_of(&[1e39]).to_f32(), f32::INFINITY);
    assert!(exact_of(&[1.0, f64::NAN]).to_f64().is_nan());
    assert!(exact_of(&[f64::INFINITY, f64::NEG_INFINITY])
        .to_f64()
        .is_nan());
    assert_eq!(exact_of(&[f64::INFINITY, -1e308]).to_f64(), f64::INFINITY);
    assert_eq!(
        exact_of(&[1.0, f64::NEG_INFINITY]).to_f64(),
        f64::NEG_INFINITY
    );
    assert!(exact_of(&[f64::NAN]).to_f32().is_nan());
    let mut product = ExactSum::new();
    product.add_product(1e200, 1e200);
    assert_eq!(product.to_f64(), f64::INFINITY);
}

#[test]
fn many_additions_propagate_carries() {
    // Far more additions of the largest mantissa than the (test-sized) carry interval, at
    // the top of the range and at the bottom.
    let big = f64::from_bits(0x7fe0_0000_0000_0000 | ((1 << 52) - 1)) / 4.0;
    let mut sum = ExactSum::new();
    for _ in 0..1000 {
        sum.add(big);
        sum.add(-big);
        sum.add(f64::from_bits((1 << 52) - 1));
    }
    assert_eq!(sum.to_f64(), f64::from_bits((1 << 52) - 1) * 1000.0);
    let mut grouped = ExactSum::new();
    for _ in 0..10 {
        let mut part = ExactSum::new();
        part.add_all(&[0.25; 100]);
        grouped.merge(part);
    }
    assert_eq!(grouped.to_f64(), 250.0);
}

#[test]
fn wire_form_round_trips_and_adds() {
    let a = exact_of(&[1e-300, -7.25, 1e300, f64::NAN]);
    let wire = a.to_wire();
    let back = ExactSum::from_wire(&wire);
    assert_eq!(back.to_f64().to_bits(), a.to_f64().to_bits());
    let b = exact_of(&[-1e300, 2.0]);
    let mut summed = [0_i64; WIRE_LEN];
    for (s, (x, y)) in summed.iter_mut().zip(
        exact_of(&[1e-300, -7.25, 1e300])
            .to_wire()
            .iter()
            .zip(b.to_wire()),
    ) {
        *s = x + y;
    }
    assert_eq!(ExactSum::from_wire(&summed).to_f64(), 1e-300 - 5.25);
}

#[test]
fn parallel_local_sums_match_serial() {
    let values: Vec<f64> = (0..100_000)
        .map(|i| {
            ((i * 7919) % 1000) as f64
                * 10f64.powi((i % 40) - 20)
                * if i % 3 == 0 { -1.0 } else { 1.0 }
        })
        .collect();
    let serial = exact_of(&values).to_f64();
    for threads in [1, 2, 3] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let parallel = pool.install(|| local_sum_exact(&values)).to_f64();
        assert_eq!(parallel.to_bits(), serial.to_bits(), "{threads} threads");
    }
    let ones = vec![1.5_f32; 1000];
    assert_eq!(f32::from_exact(&local_dot_exact(&ones, &ones)), 2250.0);
}
