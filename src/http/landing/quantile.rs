//! Quantiles estimated from cumulative bucket counts, the way PromQL's
//! `histogram_quantile` estimates them, so the landing page and a dashboard agree.
//!
//! The rank `q * count` falls in the first bucket whose cumulative count reaches it;
//! within that bucket observations are assumed spread evenly between its lower and
//! upper bound (the first bucket's lower bound is 0). A rank in the `+Inf` bucket has
//! no upper bound to interpolate towards: the estimate is the highest finite bound.

/// The `q`-quantile (0 ≤ q ≤ 1) of a histogram with finite upper `bounds` and
/// `cumulative` counts (one per bound, then `+Inf`), or `None` when it is empty.
pub fn estimate(q: f64, bounds: &[f64], cumulative: &[u64]) -> Option<f64> {
    let count = *cumulative.last()?;
    if count == 0 || cumulative.len() != bounds.len() + 1 {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * count as f64;
    let bucket = cumulative.iter().position(|&c| c as f64 >= rank)?;
    if bucket == bounds.len() {
        return bounds.last().copied();
    }
    let (lower, below) = match bucket {
        0 => (0.0, 0),
        b => (bounds[b - 1], cumulative[b - 1]),
    };
    let upper = bounds[bucket];
    let inside = cumulative[bucket] - below;
    Some(lower + (upper - lower) * (rank - below as f64) / inside as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: [f64; 4] = [0.01, 0.1, 0.5, 2.0];

    #[test]
    fn interpolates_within_the_bucket_like_histogram_quantile() {
        // The rules' unit test histogram: 100 requests, 16 <= 0.01, 94 <= 0.1, 100 <= 0.5.
        let cumulative = [16, 94, 100, 100, 100];
        let p99 = estimate(0.99, &BOUNDS, &cumulative).unwrap();
        assert!((p99 - (0.1 + 0.4 * 5.0 / 6.0)).abs() < 1e-12, "{p99}");
        let p50 = estimate(0.5, &BOUNDS, &cumulative).unwrap();
        assert!((p50 - (0.01 + 0.09 * 34.0 / 78.0)).abs() < 1e-12, "{p50}");
        // In the first bucket the lower bound is 0.
        let low = estimate(0.08, &BOUNDS, &cumulative).unwrap();
        assert!((low - 0.005).abs() < 1e-12, "{low}");
    }

    #[test]
    fn the_inf_bucket_gives_the_highest_finite_bound_and_empty_gives_none() {
        assert_eq!(estimate(0.99, &BOUNDS, &[0, 0, 0, 1, 10]), Some(2.0));
        assert_eq!(estimate(0.5, &BOUNDS, &[0, 0, 0, 0, 0]), None);
        assert_eq!(estimate(0.5, &BOUNDS, &[1, 1]), None, "mismatched lengths");
    }
}
