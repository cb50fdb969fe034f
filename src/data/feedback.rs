//! What kind of feedback a data set's values are, read off the values
//! themselves, so that defaults can follow the data: ratings (few distinct
//! values in a bounded range), binary, counts (non-negative integers with a
//! heavy tail) or weights (positive reals).

use serde::Serialize;

/// The kinds of feedback [`detect`] tells apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FeedbackKind {
    /// One value (or 0/1): whether the interaction happened.
    Binary,
    /// Few distinct values on a grid in a bounded range (stars, 1–10).
    Ratings,
    /// Non-negative integers: plays, purchases, clicks.
    Counts,
    /// Positive reals: durations, amounts.
    Weights,
}

impl FeedbackKind {
    pub fn name(self) -> &'static str {
        match self {
            FeedbackKind::Binary => "binary",
            FeedbackKind::Ratings => "ratings",
            FeedbackKind::Counts => "counts",
            FeedbackKind::Weights => "weights",
        }
    }
}

/// The distribution of a data set's values.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ValueStats {
    pub n: usize,
    pub min: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
    /// Distinct values, counted up to 1,000 (1,000 means "at least").
    pub distinct: usize,
    /// Share of the values that are whole numbers.
    pub integer_share: f64,
}

impl ValueStats {
    pub fn of(values: &[f32]) -> ValueStats {
        if values.is_empty() {
            return ValueStats::default();
        }
        let mut v: Vec<f32> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return ValueStats::default();
        }
        v.sort_unstable_by(f32::total_cmp);
        let q = |p: f64| f64::from(v[((v.len() - 1) as f64 * p).round() as usize]);
        let mut distinct = 1;
        for w in v.windows(2) {
            if w[0] != w[1] {
                distinct += 1;
                if distinct >= 1000 {
                    break;
                }
            }
        }
        ValueStats {
            n: v.len(),
            min: q(0.0),
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            max: q(1.0),
            mean: v.iter().map(|&x| f64::from(x)).sum::<f64>() / v.len() as f64,
            distinct,
            integer_share: v.iter().filter(|x| x.fract() == 0.0).count() as f64 / v.len() as f64,
        }
    }
}

/// The kind of feedback, why, and the figures it was read from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Feedback {
    pub kind: FeedbackKind,
    pub reason: String,
    pub stats: ValueStats,
}

/// Reads the kind of feedback off `values` (see [`FeedbackKind`]):
/// - binary: at most two distinct values, both in {0, 1} (or one value);
/// - ratings: at most 21 distinct values, on a half-step grid, in a range
///   no wider than 20 with a top of at most 100 (1–5 stars, 1–10, 0–100 in
///   steps);
/// - counts: whole non-negative numbers otherwise;
/// - weights: anything else.
pub fn detect(values: &[f32]) -> Feedback {
    let s = ValueStats::of(values);
    let on_half_grid = values.iter().all(|v| (v * 2.0).fract() == 0.0);
    let (kind, reason) = if s.n == 0 {
        (FeedbackKind::Binary, "no values".to_string())
    } else if s.distinct == 1 {
        (FeedbackKind::Binary, format!("every value is {}", s.min))
    } else if s.distinct == 2 && s.min == 0.0 && s.max == 1.0 {
        (FeedbackKind::Binary, "values are 0 and 1".to_string())
    } else if s.distinct <= 21 && on_half_grid && s.max - s.min <= 20.0 && s.max <= 100.0 {
        (
            FeedbackKind::Ratings,
            format!(
                "{} distinct values from {} to {}: a rating scale",
                s.distinct, s.min, s.max
            ),
        )
    } else if s.integer_share == 1.0 && s.min >= 0.0 {
        (
            FeedbackKind::Counts,
            format!(
                "whole numbers from {} to {} (median {}, 99th percentile {}): counts",
                s.min, s.max, s.p50, s.p99
            ),
        )
    } else {
        (
            FeedbackKind::Weights,
            format!(
                "real values from {} to {} (median {}): weights",
                s.min, s.max, s.p50
            ),
        )
    };
    Feedback {
        kind,
        reason,
        stats: s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_is_told_from_a_sample() {
        let kind = |v: &[f32]| detect(v).kind;
        assert_eq!(kind(&[1.0; 50]), FeedbackKind::Binary);
        assert_eq!(kind(&[0.0, 1.0, 1.0, 0.0]), FeedbackKind::Binary);
        let stars: Vec<f32> = (0..500).map(|i| (1 + i % 5) as f32).collect();
        assert_eq!(kind(&stars), FeedbackKind::Ratings);
        let halves: Vec<f32> = (0..500).map(|i| 0.5 + (i % 10) as f32 * 0.5).collect();
        assert_eq!(kind(&halves), FeedbackKind::Ratings);
        // Heavy-tailed play counts: many distinct whole numbers.
        let plays: Vec<f32> = (1..2000).map(|i| (1e5 / i as f64).floor() as f32).collect();
        assert_eq!(kind(&plays), FeedbackKind::Counts);
        // Few distinct counts beyond a rating scale's range are still counts.
        assert_eq!(kind(&[1.0, 2.0, 3.0, 250.0]), FeedbackKind::Counts);
        let secs: Vec<f32> = (1..300).map(|i| i as f32 * 0.37).collect();
        assert_eq!(kind(&secs), FeedbackKind::Weights);
        // Negative reals (centred scores) are not counts.
        assert_eq!(kind(&[-3.5, 0.25, 2.0, 7.75, 40.1]), FeedbackKind::Weights);
    }

    #[test]
    fn the_statistics_are_those_of_a_sorted_copy() {
        let s = ValueStats::of(&[5.0, 1.0, 3.0, 2.0, 4.0]);
        assert_eq!(
            (s.min, s.p50, s.max, s.distinct, s.n),
            (1.0, 3.0, 5.0, 5, 5)
        );
        assert_eq!(s.mean, 3.0);
        assert_eq!(s.integer_share, 1.0);
        assert_eq!(detect(&[1.0, 2.0]).stats.distinct, 2);
        // Nothing finite: no statistics, and no panic.
        assert_eq!(ValueStats::of(&[f32::INFINITY, f32::NAN]).n, 0);
    }
}
