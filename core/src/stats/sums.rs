//! Additive sufficient statistics: what an analytics store computes in SQL, per variant, and
//! what several shards' answers add up to. Means, sample variances and covariances are
//! derived from them here, so every store feeds the same arithmetic.

use super::{float, CovariateSummary, RatioCovariateMoments, RatioMoments, Summary};

/// One variant's sums of one metric over its units: `x` is each unit's outcome (0/1 for a
/// conversion, the sum of values otherwise) and `c` the same over the pre-exposure window
/// (CUPED's covariate; 0 without one).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MetricSums {
    pub units: u64,
    /// Units with at least one event after exposure.
    pub conversions: u64,
    pub x: f64,
    pub xx: f64,
    pub c: f64,
    pub cc: f64,
    pub xc: f64,
}

impl MetricSums {
    /// Adds another part of the same variant (another shard's units).
    pub fn add(&mut self, other: &Self) {
        self.units += other.units;
        self.conversions += other.conversions;
        self.x += other.x;
        self.xx += other.xx;
        self.c += other.c;
        self.cc += other.cc;
        self.xc += other.xc;
    }

    /// Units, mean and sample variance of the outcome.
    pub fn summary(&self) -> Summary {
        Summary {
            units: self.units,
            mean: mean(self.x, self.units),
            variance: variance(self.xx, self.x, self.units),
        }
    }

    /// The outcome with its covariate, for CUPED.
    pub fn covariate_summary(&self) -> CovariateSummary {
        let n = self.units;
        CovariateSummary {
            units: n,
            mean: mean(self.x, n),
            variance: variance(self.xx, self.x, n),
            covariate_mean: mean(self.c, n),
            covariate_variance: variance(self.cc, self.c, n),
            covariance: covariance(self.xc, self.c, self.x, n),
        }
    }
}

/// One variant's sums of a ratio metric over its units, in the order numerator, denominator,
/// pre-period numerator, pre-period denominator: `sums[i]` is Σ aᵢ and `products[i][j]` is
/// Σ aᵢ·aⱼ (symmetric; only `i <= j` need be filled).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RatioSums {
    pub units: u64,
    /// Units with a denominator above 0.
    pub with_denominator: u64,
    pub sums: [f64; 4],
    pub products: [[f64; 4]; 4],
}

impl RatioSums {
    /// Adds another part of the same variant.
    pub fn add(&mut self, other: &Self) {
        self.units += other.units;
        self.with_denominator += other.with_denominator;
        for i in 0..4 {
            self.sums[i] += other.sums[i];
            for j in 0..4 {
                self.products[i][j] += other.products[i][j];
            }
        }
    }

    fn product(&self, i: usize, j: usize) -> f64 {
        self.products[i.min(j)][i.max(j)]
    }

    fn covariance(&self, i: usize, j: usize) -> f64 {
        if i == j {
            variance(self.product(i, i), self.sums[i], self.units)
        } else {
            covariance(self.product(i, j), self.sums[i], self.sums[j], self.units)
        }
    }

    /// The numerator and denominator's means, variances and covariance.
    pub fn moments(&self) -> RatioMoments {
        RatioMoments {
            units: self.units,
            numerator_mean: mean(self.sums[0], self.units),
            denominator_mean: mean(self.sums[1], self.units),
            numerator_variance: self.covariance(0, 0),
            denominator_variance: self.covariance(1, 1),
            covariance: self.covariance(0, 1),
        }
    }

    /// All four means and their sample covariance matrix, for CUPED on a ratio.
    pub fn covariate_moments(&self) -> RatioCovariateMoments {
        let mut covariance = [[0.0; 4]; 4];
        for (i, row) in covariance.iter_mut().enumerate() {
            for (j, cell) in row.iter_mut().enumerate() {
                *cell = self.covariance(i, j);
            }
        }
        RatioCovariateMoments {
            units: self.units,
            means: self.sums.map(|s| mean(s, self.units)),
            covariance,
        }
    }
}

fn mean(sum: f64, units: u64) -> f64 {
    if units == 0 {
        0.0
    } else {
        sum / float(units)
    }
}

/// Sample covariance (divisor `n - 1`) from Σab, Σa and Σb; 0 below two units.
fn covariance(ab: f64, a: f64, b: f64, units: u64) -> f64 {
    if units < 2 {
        return 0.0;
    }
    let n = float(units);
    (ab - a * b / n) / (n - 1.0)
}

/// Sample variance from Σa² and Σa; never below 0, where rounding could take it.
fn variance(aa: f64, a: f64, units: u64) -> f64 {
    covariance(aa, a, a, units).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sums_of(xs: &[f64], cs: &[f64]) -> MetricSums {
        let mut s = MetricSums::default();
        for (x, c) in xs.iter().zip(cs) {
            s.add(&MetricSums {
                units: 1,
                conversions: u64::from(*x > 0.0),
                x: *x,
                xx: x * x,
                c: *c,
                cc: c * c,
                xc: x * c,
            });
        }
        s
    }

    #[test]
    fn sums_give_the_sample_mean_variance_and_covariance() {
        let s = sums_of(&[1.0, 2.0, 4.0, 9.0], &[0.0, 1.0, 1.0, 2.0]);
        let c = s.covariate_summary();
        assert_eq!(c.units, 4);
        assert_eq!(c.mean, 4.0);
        // Σ(x - 4)² = 9 + 4 + 0 + 25 = 38, over n - 1 = 3.
        assert!((c.variance - 38.0 / 3.0).abs() < 1e-12);
        assert!((c.covariate_mean - 1.0).abs() < 1e-12);
        assert!((c.covariate_variance - 2.0 / 3.0).abs() < 1e-12);
        // Σ(x - 4)(c - 1) = 3 + 0 + 0 + 5 = 8.
        assert!((c.covariance - 8.0 / 3.0).abs() < 1e-12);
        assert_eq!(s.conversions, 4);
    }

    #[test]
    fn parts_added_equal_the_whole() {
        let whole = sums_of(&[1.0, 2.0, 4.0, 9.0, 0.0], &[3.0, 1.0, 1.0, 2.0, 5.0]);
        let mut parts = sums_of(&[1.0, 4.0], &[3.0, 1.0]);
        parts.add(&sums_of(&[2.0, 9.0, 0.0], &[1.0, 2.0, 5.0]));
        assert_eq!(parts, whole);
        assert_eq!(parts.conversions, 4);
    }

    #[test]
    fn below_two_units_there_is_no_spread() {
        let one = sums_of(&[5.0], &[1.0]).summary();
        assert_eq!((one.units, one.mean, one.variance), (1, 5.0, 0.0));
        assert_eq!(MetricSums::default().summary().mean, 0.0);
    }

    #[test]
    fn ratio_sums_give_the_covariance_matrix() {
        let rows = [
            [1.0, 2.0, 0.0, 1.0],
            [3.0, 3.0, 1.0, 1.0],
            [2.0, 4.0, 2.0, 2.0],
        ];
        let mut s = RatioSums::default();
        for r in rows {
            s.units += 1;
            s.with_denominator += u64::from(r[1] > 0.0);
            for i in 0..4 {
                s.sums[i] += r[i];
                for j in i..4 {
                    s.products[i][j] += r[i] * r[j];
                }
            }
        }
        let m = s.moments();
        assert_eq!((m.numerator_mean, m.denominator_mean), (2.0, 3.0));
        assert!((m.numerator_variance - 1.0).abs() < 1e-12);
        assert!((m.denominator_variance - 1.0).abs() < 1e-12);
        // Σ(n - 2)(d - 3) = 1 + 0 + 0 = 1, over 2.
        assert!((m.covariance - 0.5).abs() < 1e-12);
        let full = s.covariate_moments();
        assert_eq!(full.covariance[3][0], full.covariance[0][3]);
        assert!((full.covariance[2][2] - 1.0).abs() < 1e-12);
        assert_eq!(full.means, [2.0, 3.0, 1.0, 4.0 / 3.0]);
    }
}
