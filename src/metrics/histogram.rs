//! [`Histogram`]: lock-free observations, scrapes that are never torn.
//!
//! # Why a hot/cold pair
//!
//! A histogram series is several numbers (per-bucket counts, `_sum`, `_count`) that an
//! observation updates one after another. A scrape that simply loads them while other
//! threads observe can see a bucket incremented but not yet `_count`, i.e. a `le="+Inf"`
//! bucket that differs from `_count` (client_golang issue 275), or a `_sum` from a
//! different set of observations than the counts. Prometheus then computes nonsense
//! quantiles and rates.
//!
//! We use the technique client_golang's `histogram.go` settled on. The series keeps two
//! complete copies ("halves") of its state, and one word, `count_and_hot`, whose top bit
//! says which half is hot and whose lower 63 bits count observations *started*:
//!
//! * **Observe** (lock-free, no allocation): `fetch_add(1)` on `count_and_hot` both
//!   claims a slot and learns the hot half; then bump the bucket and add to `_sum` in
//!   that half; finally bump that half's own `count`, which marks the observation
//!   *completed*.
//! * **Collect** (serialised by a per-series mutex that only collectors take): flip the
//!   hot bit with `fetch_add(1 << 63)`, which also returns `n`, the number of
//!   observations started before the flip. Every one of them went to the now-cold half,
//!   and no later one can. Wait until the cold half's completed `count` reaches `n`; the
//!   cold half is then a frozen, complete snapshot of exactly `n` observations, so its
//!   buckets, sum and count agree. Render it, then add it into the new hot half and zero
//!   it, so the hot half again holds every observation ever made.
//!
//! Memory orderings, each for one reason:
//! * observe's `fetch_add` on `count_and_hot` is `Acquire`: the observer must see the
//!   cold half's zeroing done by the collector that made this half hot again (that
//!   collector's flip was `Release` via `AcqRel`), or its increments could land on stale
//!   values that the zeroing then overwrites.
//! * bucket and sum updates are `Relaxed`: they are published by the completion below.
//! * the completion `fetch_add` on the half's `count` is `Release`: it publishes the
//!   bucket and sum updates of this observation to the collector.
//! * the collector's flip is `AcqRel`: `Release` to publish the previous collection's
//!   zeroing to observers (see the first point), `Acquire` for symmetry with them.
//! * the collector's wait loads `count` with `Acquire`: reading the value `n` synchronises
//!   with every completing `fetch_add` in that atomic's release sequence, so all their
//!   bucket and sum writes are visible to the reads that follow, which can be `Relaxed`.
//! * folding cold into hot and zeroing cold are `Relaxed` read-modify-writes and stores:
//!   the next collector reads them after taking the same mutex (which orders them), and
//!   observers reach them only through the next flip (first point).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::gauge::add_f64;
use super::{Metric, MetricError, TypedMetric};
use crate::exposition::values::{le_openmetrics, le_text};
use crate::exposition::{Encoder, Format, MetricKind, Value};

/// The bucket bounds shared by every series of a histogram family, with their `le`
/// strings rendered once for each format.
#[derive(Debug)]
pub struct Buckets {
    bounds: Box<[f64]>,
    le_text: Box<[Box<str>]>,
    le_openmetrics: Box<[Box<str>]>,
}

impl Buckets {
    /// Validates and prepares upper bounds. A trailing `+Inf` is accepted and dropped
    /// (it is always implied); the rest must be finite and strictly increasing.
    ///
    /// ```
    /// use tinyprom::metrics::Buckets;
    /// assert!(Buckets::new(&[0.01, 0.1, 0.5, 2.0]).is_ok());
    /// assert!(Buckets::new(&[0.5, 0.1]).is_err());
    /// ```
    pub fn new(bounds: &[f64]) -> Result<Arc<Buckets>, MetricError> {
        let bounds = match bounds.split_last() {
            Some((last, rest)) if *last == f64::INFINITY => rest,
            _ => bounds,
        };
        if let Some(bad) = bounds.iter().find(|b| !b.is_finite()) {
            return Err(MetricError::InvalidBuckets(format!(
                "bound {bad} is not finite (only a final +Inf is allowed)"
            )));
        }
        if bounds.windows(2).any(|w| w[0] >= w[1]) {
            return Err(MetricError::InvalidBuckets(
                "bounds must be strictly increasing".into(),
            ));
        }
        let text = |v: f64| le_text(v).into_boxed_str();
        let om = |v: f64| le_openmetrics(v).into_boxed_str();
        Ok(Arc::new(Buckets {
            bounds: bounds.into(),
            le_text: bounds
                .iter()
                .copied()
                .chain([f64::INFINITY])
                .map(text)
                .collect(),
            le_openmetrics: bounds
                .iter()
                .copied()
                .chain([f64::INFINITY])
                .map(om)
                .collect(),
        }))
    }

    /// The finite upper bounds, in increasing order (`+Inf` is implied).
    pub fn bounds(&self) -> &[f64] {
        &self.bounds
    }

    /// Index of the first bucket whose bound is `>= v`; `bounds().len()` for values
    /// only the `+Inf` bucket holds (larger than every bound, or NaN).
    #[inline]
    fn index(&self, v: f64) -> usize {
        if self.bounds.len() <= 8 {
            // A short linear scan beats binary search for the usual handful of buckets.
            self.bounds
                .iter()
                .position(|&b| v <= b)
                .unwrap_or(self.bounds.len())
        } else {
            self.bounds.partition_point(|&b| b < v)
        }
    }

    fn le(&self, format: Format, i: usize) -> &str {
        match format {
            Format::Text => &self.le_text[i],
            Format::OpenMetrics => &self.le_openmetrics[i],
        }
    }
}

/// A histogram series: counts observations into buckets, lock-free.
///
/// Clone the handle to share it. See the module documentation for how a scrape stays
/// consistent while other threads observe.
///
/// ```
/// use tinyprom::metrics::{Histogram, Registry};
/// let registry = Registry::new();
/// let latency = Histogram::new(&[0.01, 0.1, 0.5, 2.0]).unwrap();
/// registry.register("job_duration_seconds", "Job latency.", latency.clone()).unwrap();
/// latency.observe(0.01);
/// latency.observe(3.0);
/// let snap = latency.snapshot();
/// assert_eq!(snap.cumulative, vec![1, 1, 1, 1, 2]);
/// assert_eq!(snap.count, 2);
/// assert!(registry.render_text().contains("job_duration_seconds_bucket{le=\"0.01\"} 1\n"));
/// ```
#[derive(Clone, Debug)]
pub struct Histogram {
    core: Arc<Core>,
}

#[derive(Debug)]
struct Core {
    buckets: Arc<Buckets>,
    /// Top bit: index of the hot half. Lower 63 bits: observations started.
    count_and_hot: AtomicU64,
    /// Both halves, each laid out as `[count, sum bits, bucket 0, ..., bucket n-1]`,
    /// where bucket i counts observations in (bound i-1, bound i] (not cumulative) and
    /// observations above every bound are counted only in `count`.
    cells: Box<[AtomicU64]>,
    /// Serialises collectors; observers never touch it.
    collect: Mutex<()>,
}

const HOT_BIT: u64 = 1 << 63;
const COUNT: usize = 0;
const SUM: usize = 1;
const FIRST_BUCKET: usize = 2;

/// A consistent copy of a histogram series.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// Cumulative counts per bucket, the last one being `+Inf` (equal to `count`).
    pub cumulative: Vec<u64>,
    /// Sum of all observed values.
    pub sum: f64,
    /// Number of observations.
    pub count: u64,
}

impl Histogram {
    /// A histogram with the given upper bounds (see [`Buckets::new`]).
    pub fn new(bounds: &[f64]) -> Result<Histogram, MetricError> {
        Ok(Histogram::with_buckets(Buckets::new(bounds)?))
    }

    /// A histogram sharing already validated bounds (what families use).
    pub fn with_buckets(buckets: Arc<Buckets>) -> Histogram {
        let stride = FIRST_BUCKET + buckets.bounds.len();
        let cells = (0..2 * stride).map(|_| AtomicU64::new(0)).collect();
        Histogram {
            core: Arc::new(Core {
                buckets,
                count_and_hot: AtomicU64::new(0),
                cells,
                collect: Mutex::new(()),
            }),
        }
    }

    /// The bucket bounds.
    pub fn buckets(&self) -> &Arc<Buckets> {
        &self.core.buckets
    }

    /// Records one value. Lock-free: four atomic read-modify-writes (one of them a
    /// compare-exchange loop for the float sum), no allocation.
    ///
    /// NaN counts towards `_count` and the `+Inf` bucket only, and makes `_sum` NaN, as
    /// in the Go client.
    #[inline]
    pub fn observe(&self, v: f64) {
        let core = &*self.core;
        let bucket = core.buckets.index(v);
        // Acquire: see the module docs (first ordering point).
        let started = core.count_and_hot.fetch_add(1, Ordering::Acquire);
        let stride = FIRST_BUCKET + core.buckets.bounds.len();
        let half = &core.cells[(started >> 63) as usize * stride..][..stride];
        if bucket < core.buckets.bounds.len() {
            half[FIRST_BUCKET + bucket].fetch_add(1, Ordering::Relaxed);
        }
        add_f64(&half[SUM], v);
        // Release: publishes the two updates above to the collector.
        half[COUNT].fetch_add(1, Ordering::Release);
    }

    /// Records a duration in seconds.
    pub fn observe_duration(&self, d: Duration) {
        self.observe(d.as_secs_f64());
    }

    /// Runs `f` and records how long it took, in seconds.
    ///
    /// ```
    /// let h = tinyprom::metrics::Histogram::new(&[1.0]).unwrap();
    /// let answer = h.time(|| 6 * 7);
    /// assert_eq!(answer, 42);
    /// assert_eq!(h.snapshot().count, 1);
    /// ```
    pub fn time<T>(&self, f: impl FnOnce() -> T) -> T {
        let _timer = self.start_timer();
        f()
    }

    /// Starts a timer that records the time until it is dropped (or
    /// [`HistogramTimer::observe`]d).
    pub fn start_timer(&self) -> HistogramTimer {
        HistogramTimer {
            histogram: self.clone(),
            start: Instant::now(),
            done: false,
        }
    }

    /// Takes a consistent snapshot (the same procedure a scrape uses).
    pub fn snapshot(&self) -> HistogramSnapshot {
        self.collect(|cold, bounds| {
            let mut cumulative = Vec::with_capacity(bounds + 1);
            let mut acc = 0;
            for i in 0..bounds {
                acc += cold[FIRST_BUCKET + i].load(Ordering::Relaxed);
                cumulative.push(acc);
            }
            let count = cold[COUNT].load(Ordering::Relaxed);
            cumulative.push(count);
            HistogramSnapshot {
                cumulative,
                sum: f64::from_bits(cold[SUM].load(Ordering::Relaxed)),
                count,
            }
        })
    }

    /// Freezes the cold half, hands it to `read`, then folds it back into the hot half.
    /// See the module documentation for the algorithm and its orderings.
    fn collect<R>(&self, read: impl FnOnce(&[AtomicU64], usize) -> R) -> R {
        let core = &*self.core;
        // A poisoned mutex only means another collector panicked while holding it; the
        // protocol state it guards lives in atomics and is still consistent.
        let _guard = core
            .collect
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let bounds = core.buckets.bounds.len();
        let stride = FIRST_BUCKET + bounds;
        let after_flip = core
            .count_and_hot
            .fetch_add(HOT_BIT, Ordering::AcqRel)
            .wrapping_add(HOT_BIT);
        let started = after_flip & !HOT_BIT;
        let hot_index = (after_flip >> 63) as usize;
        let hot = &core.cells[hot_index * stride..][..stride];
        let cold = &core.cells[(hot_index ^ 1) * stride..][..stride];
        let mut spins = 0u32;
        while cold[COUNT].load(Ordering::Acquire) != started {
            // An observer between its two fetch_adds: a few instructions away, unless it
            // was preempted, in which case give it the CPU.
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        let result = read(cold, bounds);
        for i in 0..bounds {
            let c = cold[FIRST_BUCKET + i].swap(0, Ordering::Relaxed);
            hot[FIRST_BUCKET + i].fetch_add(c, Ordering::Relaxed);
        }
        let sum = f64::from_bits(cold[SUM].swap(0f64.to_bits(), Ordering::Relaxed));
        add_f64(&hot[SUM], sum);
        let count = cold[COUNT].swap(0, Ordering::Relaxed);
        hot[COUNT].fetch_add(count, Ordering::Relaxed);
        result
    }
}

impl Metric for Histogram {
    fn kind(&self) -> MetricKind {
        MetricKind::Histogram
    }

    fn encode(&self, name: &str, labels: &str, enc: &mut Encoder<'_>) {
        let buckets = &*self.core.buckets;
        self.collect(|cold, bounds| {
            let format = enc.format();
            let mut acc = 0;
            for i in 0..bounds {
                acc += cold[FIRST_BUCKET + i].load(Ordering::Relaxed);
                let le = buckets.le(format, i);
                enc.sample_with_extra_label(name, "_bucket", labels, "le", le, Value::Int(acc));
            }
            let count = cold[COUNT].load(Ordering::Relaxed);
            let le = buckets.le(format, bounds);
            enc.sample_with_extra_label(name, "_bucket", labels, "le", le, Value::Int(count));
            let sum = f64::from_bits(cold[SUM].load(Ordering::Relaxed));
            enc.sample_f64(name, "_sum", labels, sum);
            enc.sample_u64(name, "_count", labels, count);
        });
    }
}

impl TypedMetric for Histogram {
    const KIND: MetricKind = MetricKind::Histogram;
}

/// Records the time from its creation to its drop into a [`Histogram`].
///
/// ```
/// let h = tinyprom::metrics::Histogram::new(&[1.0]).unwrap();
/// {
///     let _t = h.start_timer();
/// }
/// assert_eq!(h.snapshot().count, 1);
/// ```
#[derive(Debug)]
pub struct HistogramTimer {
    histogram: Histogram,
    start: Instant,
    done: bool,
}

impl HistogramTimer {
    /// Records now and returns the elapsed seconds (instead of waiting for the drop).
    pub fn observe(mut self) -> f64 {
        self.record()
    }

    fn record(&mut self) -> f64 {
        self.done = true;
        let secs = self.start.elapsed().as_secs_f64();
        self.histogram.observe(secs);
        secs
    }
}

impl Drop for HistogramTimer {
    fn drop(&mut self) {
        if !self.done {
            self.record();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http_buckets() -> Histogram {
        Histogram::new(&[0.01, 0.1, 0.5, 2.0]).unwrap()
    }

    #[test]
    fn bucket_edges_are_inclusive() {
        let h = http_buckets();
        for v in [0.01, 0.1, 0.5, 2.0] {
            h.observe(v);
        }
        assert_eq!(h.snapshot().cumulative, vec![1, 2, 3, 4, 4]);
        h.observe(f64::from_bits(0.01f64.to_bits() + 1)); // just above 0.01
        h.observe(2.000001);
        assert_eq!(h.snapshot().cumulative, vec![1, 3, 4, 5, 6]);
    }

    #[test]
    fn special_values() {
        let h = http_buckets();
        h.observe(-5.0);
        h.observe(f64::NEG_INFINITY);
        h.observe(f64::INFINITY);
        let s = h.snapshot();
        assert_eq!(s.cumulative, vec![2, 2, 2, 2, 3]);
        assert!(s.sum.is_nan(), "-Inf + +Inf is NaN");
        h.observe(f64::NAN);
        let s = h.snapshot();
        assert_eq!(s.cumulative, vec![2, 2, 2, 2, 4]);
        assert_eq!(s.count, 4);
    }

    #[test]
    fn snapshots_accumulate_across_collections() {
        let h = http_buckets();
        for i in 0..10 {
            h.observe(0.05);
            let s = h.snapshot();
            assert_eq!(s.count, i + 1);
            assert_eq!(s.cumulative, vec![0, i + 1, i + 1, i + 1, i + 1]);
            assert!((s.sum - 0.05 * (i + 1) as f64).abs() < 1e-12);
        }
    }

    #[test]
    fn bucket_validation() {
        assert!(Buckets::new(&[1.0, 1.0]).is_err());
        assert!(Buckets::new(&[f64::NAN]).is_err());
        assert!(Buckets::new(&[1.0, f64::INFINITY, 2.0]).is_err());
        assert_eq!(
            Buckets::new(&[1.0, f64::INFINITY]).unwrap().bounds(),
            &[1.0]
        );
        let many: Vec<f64> = (1..=20).map(f64::from).collect();
        let h = Histogram::new(&many).unwrap();
        h.observe(3.0);
        h.observe(20.5);
        let s = h.snapshot();
        assert_eq!(s.cumulative[1], 0);
        assert_eq!(s.cumulative[2], 1);
        assert_eq!(s.cumulative[20], 2);
    }

    /// Several threads observe while this thread snapshots thousands of times; every
    /// snapshot must be internally consistent and the final counts exact.
    #[test]
    fn concurrent_snapshots_are_never_torn() {
        let h = http_buckets();
        let threads = 4;
        let per_thread = 200_000u64;
        let values = [0.005, 0.05, 0.3, 1.0, 5.0];
        std::thread::scope(|s| {
            for t in 0..threads {
                let h = h.clone();
                s.spawn(move || {
                    for i in 0..per_thread {
                        // Every value is an exact multiple of 1/1024 so sums are exact.
                        let v = values[(i as usize + t) % values.len()];
                        h.observe((v * 1024.0f64).round() / 1024.0);
                    }
                });
            }
            let mut previous = 0;
            for _ in 0..5_000 {
                let snap = h.snapshot();
                assert_eq!(*snap.cumulative.last().unwrap(), snap.count);
                assert!(snap.cumulative.windows(2).all(|w| w[0] <= w[1]), "{snap:?}");
                assert!(snap.count >= previous);
                previous = snap.count;
                // The sum must belong to the same observations: it lies between the
                // smallest and largest possible sums of `count` values, bucket by bucket.
                let mut lo = 0.0;
                let mut hi = 0.0;
                let mut below = 0;
                let rounded: Vec<f64> = values
                    .iter()
                    .map(|v| (v * 1024.0f64).round() / 1024.0)
                    .collect();
                for (i, &c) in snap.cumulative.iter().enumerate() {
                    let n = (c - below) as f64;
                    below = c;
                    let in_bucket: Vec<f64> = rounded
                        .iter()
                        .copied()
                        .filter(|&v| h.buckets().index(v) == i)
                        .collect();
                    if n > 0.0 {
                        lo += n * in_bucket.iter().copied().fold(f64::INFINITY, f64::min);
                        hi += n * in_bucket.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    }
                }
                assert!(
                    snap.sum >= lo - 1e-9 && snap.sum <= hi + 1e-9,
                    "{snap:?} not in [{lo}, {hi}]"
                );
            }
        });
        let snap = h.snapshot();
        assert_eq!(snap.count, threads as u64 * per_thread);
        let expected_sum: f64 = (0..threads)
            .flat_map(|t| (0..per_thread).map(move |i| values[(i as usize + t) % values.len()]))
            .map(|v| (v * 1024.0f64).round() / 1024.0)
            .sum();
        assert_eq!(snap.sum, expected_sum);
    }
}
