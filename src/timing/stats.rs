//! [`Spread`]: the median of repeated measurements, their range, and a distribution-free
//! confidence interval for the median.
//!
//! Timings on a shared machine are not normally distributed (a slow run is much slower, a fast
//! one only a little faster), so the report gives order statistics, which assume nothing about
//! the distribution: the median, the minimum and maximum, and the interval between two order
//! statistics `x(j) ≤ median ≤ x(k)` that covers the true median with probability
//! `P(j ≤ B < k)` for `B ~ Binomial(n, ½)` — the classic sign-test interval. The two ranks are
//! the narrowest symmetric pair whose coverage is at least 95%; with fewer than 6 samples no
//! pair reaches 95%, and the interval is the whole range with its (lower) coverage stated.

use serde::{Deserialize, Serialize};

/// The coverage the confidence interval aims for.
pub const CONFIDENCE: f64 = 0.95;

/// Repeated measurements of one figure, summarised.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// How many measurements.
    pub samples: usize,
    /// Their median (the mean of the two middle values for an even count).
    pub median: f64,
    /// The smallest.
    pub min: f64,
    /// The largest.
    pub max: f64,
    /// Lower end of the confidence interval for the median.
    pub ci_low: f64,
    /// Upper end of the confidence interval for the median.
    pub ci_high: f64,
    /// The interval's coverage: at least [`CONFIDENCE`] from 6 samples on, less below.
    pub confidence: f64,
}

impl Spread {
    /// The spread of `values` (NaNs sort last); all zero for no values.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Spread {
        let mut v: Vec<f64> = values.into_iter().collect();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n == 0 {
            return Spread {
                samples: 0,
                median: 0.0,
                min: 0.0,
                max: 0.0,
                ci_low: 0.0,
                ci_high: 0.0,
                confidence: 0.0,
            };
        }
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        let (j, k, confidence) = median_interval(n);
        Spread {
            samples: n,
            median,
            min: v[0],
            max: v[n - 1],
            ci_low: v[j],
            ci_high: v[k],
            confidence,
        }
    }

    /// `(max − min) / median`: how far apart the extremes are, relative to the median (0 for
    /// one sample or a zero median).
    pub fn relative_range(&self) -> f64 {
        if self.median > 0.0 {
            (self.max - self.min) / self.median
        } else {
            0.0
        }
    }

    /// The spread of `f` applied to every summary value (for a monotone increasing `f`, such
    /// as a division by a positive constant).
    pub fn map(&self, f: impl Fn(f64) -> f64) -> Spread {
        Spread {
            median: f(self.median),
            min: f(self.min),
            max: f(self.max),
            ci_low: f(self.ci_low),
            ci_high: f(self.ci_high),
            ..*self
        }
    }
}

/// The 0-based positions `(j, k)` in `n` sorted values of the narrowest symmetric interval
/// around the median with coverage ≥ [`CONFIDENCE`], and its coverage; `(0, n − 1)` with its
/// coverage when none reaches it.
pub(crate) fn median_interval(n: usize) -> (usize, usize, f64) {
    if n == 1 {
        return (0, 0, 0.0);
    }
    // P(B ≤ i) for B ~ Binomial(n, 1/2), cumulated exactly in f64 (n is a repetition count).
    let mut cdf = Vec::with_capacity(n + 1);
    let (mut term, mut total) = (0.5_f64.powi(n as i32), 0.0);
    for i in 0..=n {
        total += term;
        cdf.push(total);
        term = term * (n - i) as f64 / (i + 1) as f64;
    }
    // The interval [x(j), x(n-1-j)] (0-based) covers the median unless at most j values lie
    // below it or at most j above: coverage 1 − 2·P(B ≤ j).
    let coverage = |j: usize| 1.0 - 2.0 * cdf[j];
    let mut best = (0, n - 1, coverage(0));
    for j in 0..n / 2 {
        let c = coverage(j);
        if c >= CONFIDENCE {
            best = (j, n - 1 - j, c);
        } else {
            break;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_ranges_are_exact() {
        let s = Spread::of([3.0, 1.0, 2.0]);
        assert_eq!((s.samples, s.median, s.min, s.max), (3, 2.0, 1.0, 3.0));
        let even = Spread::of([4.0, 1.0, 3.0, 2.0]);
        assert_eq!(even.median, 2.5);
        assert_eq!(even.relative_range(), 3.0 / 2.5);
        let none = Spread::of([]);
        assert_eq!((none.samples, none.median), (0, 0.0));
        let one = Spread::of([7.5]);
        assert_eq!(
            (one.median, one.ci_low, one.ci_high, one.relative_range()),
            (7.5, 7.5, 7.5, 0.0)
        );
    }

    #[test]
    fn intervals_are_the_sign_test_ranks() {
        // n = 5: no pair reaches 95%; the range covers 1 − 2/32 = 93.75%.
        assert_eq!(median_interval(5), (0, 4, 1.0 - 2.0 / 32.0));
        // n = 6: [x(1), x(6)] (1-based) covers 1 − 2/64 = 96.9%.
        assert_eq!(median_interval(6), (0, 5, 1.0 - 2.0 / 64.0));
        // n = 9: P(B ≤ 1) = 10/512, so [x(2), x(8)] covers 1 − 20/512 = 96.1%; P(B ≤ 2) =
        // 46/512 would give 82%.
        assert_eq!(median_interval(9), (1, 7, 1.0 - 20.0 / 512.0));
        // n = 20: the textbook pair is x(6)..x(15) (1-based), coverage 95.9%.
        let (j, k, c) = median_interval(20);
        assert_eq!((j, k), (5, 14));
        assert!((c - 0.958_610_5).abs() < 1e-6, "{c}");
        let s = Spread::of((1..=9).map(f64::from));
        assert_eq!((s.ci_low, s.ci_high), (2.0, 8.0));
        assert!(s.confidence >= CONFIDENCE);
    }

    #[test]
    fn mapping_keeps_the_shape() {
        let s = Spread::of([2.0, 4.0, 6.0]).map(|x| x / 2.0);
        assert_eq!((s.min, s.median, s.max, s.samples), (1.0, 2.0, 3.0, 3));
    }
}
