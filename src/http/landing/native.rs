//! Latency quantiles from native buckets: a route's series added up, and the
//! `q`-quantile read off the merged buckets.
//!
//! The request histogram keeps native buckets about 9% wide (schema 3) beside its four
//! classic ones, so a quantile read from them is within a bucket's width of the truth
//! where the classic buckets can only say "between 10 and 100 ms". Bucket `i` of
//! schema `s` holds values in `(γ^(i-1), γ^i]` with `γ = 2^(2^-s)`; within a bucket the
//! estimate is interpolated exponentially (its bounds differ by the constant factor
//! `γ`), in the zero bucket linearly from 0 to its threshold.
//!
//! Series of one route may hold different schemas (a series that hit its bucket limit
//! lowered its own) and zero thresholds: adding them up takes the coarser schema
//! (bucket `i` becomes `⌈i / 2^d⌉`, as the histogram itself merges its shards) and
//! the wider zero bucket, so no observation is lost or counted twice. The buckets are
//! kept sorted; their number is bounded by the distinct indices an `f64` can have at
//! the schema, a few thousand at most.

use crate::metrics::NativeSnapshot;

/// The native buckets of several series added up: empty until a series with native
/// buckets is added.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NativeTotals {
    /// `None` until the first series is added.
    schema: Option<i32>,
    zero_threshold: f64,
    zero_count: u64,
    /// `(index, count)` of non-empty buckets of positive values, by index.
    positive: Vec<(i32, u64)>,
    /// The same for negative values (by absolute value).
    negative: Vec<(i32, u64)>,
}

impl NativeTotals {
    /// Adds one series' native buckets.
    pub fn add(&mut self, series: &NativeSnapshot) {
        self.add_parts(
            series.schema,
            series.zero_threshold,
            series.zero_count,
            &series.positive,
            &series.negative,
        );
    }

    /// Adds totals of other series.
    pub fn add_totals(&mut self, other: &NativeTotals) {
        if let Some(schema) = other.schema {
            self.add_parts(
                schema,
                other.zero_threshold,
                other.zero_count,
                &other.positive,
                &other.negative,
            );
        }
    }

    fn add_parts(
        &mut self,
        schema: i32,
        zero_threshold: f64,
        zero_count: u64,
        positive: &[(i32, u64)],
        negative: &[(i32, u64)],
    ) {
        let theirs_schema = schema;
        let schema = self.schema.map_or(schema, |s| s.min(schema));
        if let Some(own) = self.schema {
            reduce(&mut self.positive, own - schema);
            reduce(&mut self.negative, own - schema);
        }
        self.schema = Some(schema);
        for (own, theirs) in [
            (&mut self.positive, positive),
            (&mut self.negative, negative),
        ] {
            let mut theirs = theirs.to_vec();
            reduce(&mut theirs, theirs_schema - schema);
            merge(own, &theirs);
        }
        // Wrapping, as the counters themselves do.
        self.zero_count = self.zero_count.wrapping_add(zero_count);
        if zero_threshold > self.zero_threshold {
            self.zero_threshold = zero_threshold;
        }
        // Buckets now wholly inside the zero bucket move into it.
        let threshold = self.zero_threshold;
        for buckets in [&mut self.positive, &mut self.negative] {
            let inside = buckets
                .iter()
                .take_while(|&&(i, _)| upper(schema, i) <= threshold)
                .count();
            for (_, n) in buckets.drain(..inside) {
                self.zero_count = self.zero_count.wrapping_add(n);
            }
        }
    }

    /// Observations counted.
    pub fn count(&self) -> u64 {
        self.positive
            .iter()
            .chain(&self.negative)
            .fold(self.zero_count, |sum, (_, n)| sum.wrapping_add(*n))
    }

    /// The `q`-quantile (0 ≤ q ≤ 1) of the observations, or `None` when there are none.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let schema = self.schema?;
        let count = self.count();
        if count == 0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * count as f64;
        let mut below = 0u64;
        // Most negative first: the negative buckets by descending index.
        for &(i, n) in self.negative.iter().rev() {
            if (below + n) as f64 >= rank {
                let (low, high) = (upper(schema, i), upper(schema, i - 1));
                let f = (rank - below as f64) / n as f64;
                return Some(-(low + (high - low) * f));
            }
            below += n;
        }
        if self.zero_count > 0 && (below + self.zero_count) as f64 >= rank {
            let f = (rank - below as f64) / self.zero_count as f64;
            let low = if self.negative.is_empty() {
                0.0
            } else {
                -self.zero_threshold
            };
            return Some(low + (self.zero_threshold - low) * f);
        }
        below += self.zero_count;
        for &(i, n) in &self.positive {
            if (below + n) as f64 >= rank {
                let f = (rank - below as f64) / n as f64;
                let (low, high) = (upper(schema, i - 1), upper(schema, i));
                // The bucket of the largest floats has no finite upper bound.
                if !high.is_finite() {
                    return Some(low);
                }
                return Some(low * (high / low).powf(f));
            }
            below += n;
        }
        // Only rounding leaves the rank above every bucket: the highest one's bound.
        self.positive.last().map(|&(i, _)| upper(schema, i))
    }
}

/// The upper bound `γ^i` of bucket `i` at `schema`.
fn upper(schema: i32, index: i32) -> f64 {
    (f64::from(index) * (-f64::from(schema)).exp2()).exp2()
}

/// Lowers the schema of sorted buckets by `delta`, adding up those that merge.
fn reduce(buckets: &mut Vec<(i32, u64)>, delta: i32) {
    if delta <= 0 {
        return;
    }
    let mut out: Vec<(i32, u64)> = Vec::with_capacity(buckets.len());
    for &(i, n) in buckets.iter() {
        // ⌈i / 2^delta⌉ with an arithmetic (flooring) shift; order is kept.
        let j = ((i - 1) >> delta.min(31)) + 1;
        match out.last_mut() {
            Some((last, sum)) if *last == j => *sum = sum.wrapping_add(n),
            _ => out.push((j, n)),
        }
    }
    *buckets = out;
}

/// Adds sorted `theirs` into sorted `own`.
fn merge(own: &mut Vec<(i32, u64)>, theirs: &[(i32, u64)]) {
    if theirs.is_empty() {
        return;
    }
    let mut out = Vec::with_capacity(own.len() + theirs.len());
    let (mut a, mut b) = (own.iter().peekable(), theirs.iter().peekable());
    loop {
        let next = match (a.peek(), b.peek()) {
            (Some(&&(i, n)), Some(&&(j, m))) if i == j => {
                a.next();
                b.next();
                (i, n.wrapping_add(m))
            }
            (Some(&&x), Some(&&y)) if x.0 < y.0 => {
                a.next();
                x
            }
            (_, Some(&&y)) => {
                b.next();
                y
            }
            (Some(&&x), None) => {
                a.next();
                x
            }
            (None, None) => break,
        };
        out.push(next);
    }
    *own = out;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Histogram, NativeOptions};

    fn native(h: &Histogram) -> NativeSnapshot {
        h.snapshot().native.expect("native buckets")
    }

    #[test]
    fn quantiles_are_within_a_bucket_width_of_the_truth() {
        let h = Histogram::with_native(&[0.01, 0.1], NativeOptions::new()).unwrap();
        // 1 ms to 50 ms in steps of 0.01 ms: /synthetic's delays, evenly.
        let values: Vec<f64> = (100..=5_000).map(|i| f64::from(i) * 1e-5).collect();
        for v in &values {
            h.observe(*v);
        }
        let mut totals = NativeTotals::default();
        totals.add(&native(&h));
        assert_eq!(totals.count(), values.len() as u64);
        for q in [0.5, 0.9, 0.99] {
            let truth = values[((q * values.len() as f64).ceil() as usize) - 1];
            let estimate = totals.quantile(q).unwrap();
            assert!(
                (estimate / truth - 1.0).abs() < 0.09,
                "q {q}: {estimate} vs {truth}"
            );
        }
        assert_eq!(NativeTotals::default().quantile(0.5), None);
    }

    #[test]
    fn series_of_different_schemas_and_zero_buckets_add_up() {
        let fine = Histogram::with_native(&[1.0], NativeOptions::new().schema(3)).unwrap();
        let coarse =
            Histogram::with_native(&[1.0], NativeOptions::new().schema(1).zero_threshold(0.001))
                .unwrap();
        for v in [0.0005, 0.002, 0.02, 0.2, 2.0] {
            fine.observe(v);
            coarse.observe(v);
        }
        let mut totals = NativeTotals::default();
        totals.add(&native(&fine));
        totals.add(&native(&coarse));
        assert_eq!(totals.count(), 10);
        assert_eq!(totals.schema, Some(1));
        // 0.0005 of both series is in the wider zero bucket now.
        assert_eq!(totals.zero_count, 2);
        // Each value's two observations share a schema-1 bucket.
        assert_eq!(totals.positive.iter().map(|(_, n)| n).sum::<u64>(), 8);
        assert!(totals.positive.iter().all(|&(_, n)| n == 2), "{totals:?}");
        // The same as a single schema-1 histogram with both sets of values.
        let both =
            Histogram::with_native(&[1.0], NativeOptions::new().schema(1).zero_threshold(0.001))
                .unwrap();
        for v in [0.0005, 0.002, 0.02, 0.2, 2.0] {
            both.observe(v);
            both.observe(v);
        }
        let mut single = NativeTotals::default();
        single.add(&native(&both));
        assert_eq!(single, totals);
        // Totals of totals: the fine series added to the coarse one's totals.
        let mut parts = NativeTotals::default();
        parts.add(&native(&coarse));
        let mut fine_only = NativeTotals::default();
        fine_only.add(&native(&fine));
        parts.add_totals(&fine_only);
        parts.add_totals(&NativeTotals::default());
        assert_eq!(parts, totals);
    }

    #[test]
    fn the_zero_bucket_and_negative_values_are_ordered_below_the_positive_ones() {
        let h = Histogram::with_native(&[1.0], NativeOptions::new().zero_threshold(0.5)).unwrap();
        for v in [-4.0, 0.0, 0.25, 8.0] {
            h.observe(v);
        }
        let mut totals = NativeTotals::default();
        totals.add(&native(&h));
        let low = totals.quantile(0.1).unwrap();
        assert!((-4.5..-3.5).contains(&low), "{low}");
        let mid = totals.quantile(0.5).unwrap();
        assert!((-0.5..=0.5).contains(&mid), "{mid}");
        let high = totals.quantile(1.0).unwrap();
        assert!((7.3..=8.0).contains(&high), "{high}");
    }

    #[test]
    fn the_largest_values_give_a_finite_estimate() {
        let h = Histogram::with_native(&[1.0], NativeOptions::new()).unwrap();
        h.observe(f64::MAX);
        h.observe(f64::INFINITY);
        let mut totals = NativeTotals::default();
        totals.add(&native(&h));
        let top = totals.quantile(1.0).unwrap();
        assert!(top.is_finite() && top > 1e307, "{top}");
    }

    #[test]
    fn reducing_a_schema_rounds_indices_up() {
        let mut b = vec![
            (-3, 1),
            (-2, 1),
            (-1, 1),
            (0, 1),
            (1, 1),
            (2, 1),
            (3, 1),
            (4, 1),
        ];
        reduce(&mut b, 1);
        assert_eq!(b, vec![(-1, 2), (0, 2), (1, 2), (2, 2)]);
        let mut own = vec![(1, 1), (5, 1)];
        merge(&mut own, &[(0, 2), (5, 2), (9, 1)]);
        assert_eq!(own, vec![(0, 2), (1, 1), (5, 3), (9, 1)]);
    }
}
