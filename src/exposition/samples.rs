//! What a histogram hands the encoder: the shapes of its data, without any bytes.
//!
//! The encoder needs the classic buckets, the sum and, for histograms that keep them,
//! the native (exponential) buckets, all read from one consistent snapshot that the
//! histogram holds locked while the encoder reads it. [`HistogramView`] is that
//! borrowed snapshot; [`NativeBuckets`] and [`BucketRun`] describe the native part.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use super::BoundLabels;
use crate::metrics::ExemplarsHeld;

/// A consistent, borrowed view of one histogram series.
pub trait HistogramView {
    /// The upper bounds, `+Inf` last.
    fn bounds(&self) -> &BoundLabels;
    /// The count of each classic bucket, not cumulative, `+Inf` last; their total is
    /// the series' `_count`.
    fn counts(&self) -> impl Iterator<Item = u64>;
    /// The sum of the observations counted.
    fn sum(&self) -> f64;
    /// The native buckets of the same observations, for a histogram that keeps them.
    fn native(&self) -> Option<NativeBuckets<'_>>;
    /// The series' exemplars, if it has had any: one per classic bucket (`+Inf`
    /// last), each with a value in its bucket, and the native set.
    fn exemplars(&self) -> Option<&ExemplarsHeld> {
        None
    }
    /// When the series was created: its start timestamp.
    fn created(&self) -> Option<SystemTime> {
        None
    }
}

/// The native part of a histogram: exponential buckets with growth factor
/// `2^(2^-schema)`; positive bucket `i` counts values in `(γ^(i-1), γ^i]`, negative
/// bucket `i` their negations, and values with `|v| <= zero_threshold` count in the
/// zero bucket.
#[derive(Debug, Clone, Copy)]
pub struct NativeBuckets<'a> {
    /// Resolution, −4 to 8.
    pub schema: i32,
    /// The zero bucket's upper bound on absolute values.
    pub zero_threshold: f64,
    /// Observations in the zero bucket.
    pub zero_count: u64,
    /// Buckets of positive values.
    pub positive: BucketRun<'a>,
    /// Buckets of negative values.
    pub negative: BucketRun<'a>,
}

/// Consecutive native buckets: `counts[k]` is bucket `first_index + k` (zero where
/// nothing was observed).
#[derive(Debug, Clone, Copy)]
pub struct BucketRun<'a> {
    /// Index of the bucket `counts[0]` holds.
    pub first_index: i32,
    /// Counts; the owner holds them still while the view lives.
    pub counts: &'a [AtomicU64],
}

impl BucketRun<'_> {
    /// A run of no buckets.
    pub const EMPTY: BucketRun<'static> = BucketRun {
        first_index: 0,
        counts: &[],
    };

    /// `(index, count)` of every non-empty bucket, in increasing index.
    pub fn occupied(&self) -> impl Iterator<Item = (i32, u64)> + '_ {
        let trimmed = self.trimmed();
        (trimmed.first_index..)
            .zip(trimmed.counts)
            // Relaxed: the owner holds the counts still (locked) while the view lives.
            .map(|(i, c)| (i, c.load(Ordering::Relaxed)))
            .filter(|&(_, n)| n != 0)
    }

    /// The run from its first to its last non-empty bucket (empty if none), so that
    /// readers that pass over it several times skip the empty ends once.
    pub fn trimmed(&self) -> BucketRun<'_> {
        // Relaxed: as in `occupied`.
        let full = |c: &AtomicU64| c.load(Ordering::Relaxed) != 0;
        let Some(first) = self.counts.iter().position(full) else {
            return BucketRun::EMPTY;
        };
        let last = self.counts.iter().rposition(full).unwrap_or(first);
        BucketRun {
            first_index: self.first_index + first as i32,
            counts: &self.counts[first..=last],
        }
    }
}
