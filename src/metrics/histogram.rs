//! [`Histogram`]: lock-free observations, scrapes that are never torn, and no shared
//! cache line between threads that observe the same series at the same time.
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
//! We use the technique client_golang's `histogram.go` settled on, one atomic step
//! shorter. A *shard* keeps two complete copies ("halves") of the state, each a `_sum`
//! and one count per bucket including `+Inf` (not cumulative; `_count` is their total),
//! and one control word whose top bit says which half is hot and whose lower 63 bits
//! count the observations the halves hold (see `shard.rs`):
//!
//! * **Observe** (lock-free, no allocation, three atomic read-modify-writes):
//!   `fetch_add(1)` on the control word both claims a slot and learns the hot half;
//!   add to `_sum` in that half (compare-exchange loop); finally increment the bucket,
//!   which marks the observation *completed*. Go keeps a separate completed-count
//!   word; here the buckets themselves are the completion count, saving one step.
//! * **Collect** (serialised by a collect lock that observers never take): flip the hot
//!   bit with `fetch_add(1 << 63)`, which also returns `n`, the observations held. Every
//!   one of them went to the now-cold half, and no later one can. Wait until the cold
//!   half's buckets add up to `n`: buckets only grow while frozen and their final
//!   values add up to `n`, so the loaded values do exactly when every one is final.
//!   The cold half is then a frozen, complete snapshot of exactly `n` observations:
//!   buckets, sum and count agree. Render it, then add it into the hot half and zero
//!   it, so the hot half again holds every observation ever made.
//!
//! # Why stripes, and why only sometimes
//!
//! Two threads observing one series both write its control word and hot half, so each
//! observation waits for the cache line to come back from the other core: two threads
//! together are slower than one alone. Per-thread shards fix that but cost memory on
//! every series, and most series are never contended. So a series starts with one
//! shard (the *base*) and, the first time an observation's compare-exchange on the
//! sum loses a race, allocates *stripes*: more shards on separate cache lines, one
//! picked per thread (see `stripes.rs`). Collection then freezes the base, freezes each
//! stripe in turn and moves its frozen half into the base's frozen half, then renders
//! the base's frozen half: the union of complete per-shard snapshots, so every scrape
//! is still consistent (cumulative buckets non-decreasing, `+Inf` equal to `_count`,
//! `_sum` from the same observations) and never goes backwards. The base thus holds
//! the running total and a stripe only what arrived since the last collection.
//!
//! Memory with the default five buckets (four bounds and `+Inf`): 128 bytes per series
//! in one allocation (`storage.rs`), plus, once contended, one 128-byte block per
//! stripe (twice the CPUs, rounded up to a power of two, 2 to 16 stripes).
//!
//! # Memory orderings, each for one reason
//!
//! * observe's `fetch_add` on the control word is `Acquire`: the observer must see the
//!   zeroing of its half done by the collector that made the half hot again (that
//!   collector's flip was `Release`), or its increments could land on stale values
//!   that the zeroing then overwrites.
//! * the sum's compare-exchange is `Relaxed`: it is published by the completion below.
//! * the completing bucket `fetch_add` is `Release`: it publishes this observation's
//!   sum update to the collector.
//! * the collector's flip is `AcqRel`: `Release` to publish the previous collection's
//!   zeroing to observers (first point), `Acquire` to keep the reads of the frozen
//!   half after the flip.
//! * the collector's wait loads buckets with `Acquire`: reading a bucket's final value
//!   synchronises with every completing `fetch_add` in that atomic's release sequence,
//!   so all their sum writes are visible to the reads that follow, which are `Relaxed`.
//! * draining a frozen half (into the hot half or into the base's frozen half), zeroing
//!   it, and moving counts between control words are `Relaxed`: the next collector reads
//!   them after taking the same lock (which orders them), and observers reach them only
//!   through the next flip (first point; read-modify-writes on the control word continue
//!   the flip's release sequence).
//! * the stripes pointer is installed with a `Release` compare-exchange and loaded with
//!   `Acquire`, so an observer that finds it sees initialised stripes.
//! * the reference count of `storage.rs` follows `Arc`: `Relaxed` increments, `Release`
//!   decrements, an `Acquire` fence before freeing.

mod shard;
mod storage;
mod stripes;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Metric, MetricError, TypedMetric};
use crate::exposition::values::{le_openmetrics, le_text};
use crate::exposition::{Encoder, Format, MetricKind, Value};
use shard::{FIRST_BUCKET, SUM};
use storage::Storage;

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
            // A short linear scan beats binary search for the usual handful of buckets;
            // NaN compares false everywhere and falls through to `+Inf`.
            self.bounds
                .iter()
                .position(|&b| v <= b)
                .unwrap_or(self.bounds.len())
        } else if v.is_nan() {
            self.bounds.len()
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
    storage: Storage,
}

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

/// Locks that serialise collectors, shared by all series (a series hashes to one by
/// its address). A scrape collects series one at a time and never holds two, so
/// sharing cannot deadlock, and it keeps eight bytes of mutex out of every series.
static COLLECT_LOCKS: [Mutex<()>; 16] = [const { Mutex::new(()) }; 16];

impl Histogram {
    /// A histogram with the given upper bounds (see [`Buckets::new`]).
    pub fn new(bounds: &[f64]) -> Result<Histogram, MetricError> {
        Ok(Histogram::with_buckets(Buckets::new(bounds)?))
    }

    /// A histogram sharing already validated bounds (what families use).
    pub fn with_buckets(buckets: Arc<Buckets>) -> Histogram {
        Histogram {
            storage: Storage::new(buckets),
        }
    }

    /// The bucket bounds.
    pub fn buckets(&self) -> &Arc<Buckets> {
        self.storage.buckets_arc()
    }

    /// Records one value. Lock-free: three atomic read-modify-writes (one of them a
    /// compare-exchange loop for the float sum), no allocation; on a contended series,
    /// on a stripe no other running thread writes.
    ///
    /// NaN counts towards `_count` and the `+Inf` bucket only, and makes `_sum` NaN, as
    /// in the Go client.
    #[inline]
    pub fn observe(&self, v: f64) {
        let storage = &self.storage;
        let bounds = storage.buckets().bounds.len();
        let bucket = storage.buckets().index(v);
        let stride = shard::stride(bounds);
        match storage.stripes() {
            None => {
                if shard::observe(storage.cells(), stride, bucket, v) {
                    storage.install_stripes();
                }
            }
            Some(stripes) => {
                if shard::observe(stripes.for_this_thread(), stride, bucket, v) {
                    stripes::move_probe();
                }
            }
        }
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
        self.collect(|half| {
            let mut cumulative = Vec::with_capacity(half.len() - FIRST_BUCKET);
            let mut acc = 0u64;
            for bucket in &half[FIRST_BUCKET..] {
                acc = acc.wrapping_add(bucket.load(Ordering::Relaxed));
                cumulative.push(acc);
            }
            HistogramSnapshot {
                cumulative,
                sum: f64::from_bits(half[SUM].load(Ordering::Relaxed)),
                count: acc,
            }
        })
    }

    /// Freezes every shard, gathers them into the base shard's frozen half, hands that
    /// half (`[sum, bucket 0 ..= +Inf]`, not cumulative) to `read`, then folds it back
    /// into the hot half. See the module documentation for the algorithm.
    fn collect<R>(&self, read: impl FnOnce(&[AtomicU64]) -> R) -> R {
        let storage = &self.storage;
        let lock = &COLLECT_LOCKS[(storage.cells().as_ptr() as usize >> 7) % COLLECT_LOCKS.len()];
        // A poisoned lock only means another collector panicked while holding it; the
        // protocol state it guards lives in atomics and is still consistent.
        let _guard = lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let stride = shard::stride(storage.buckets().bounds.len());
        let base = storage.cells();
        let frozen = shard::freeze(base, stride);
        if let Some(stripes) = storage.stripes() {
            for stripe in stripes.iter() {
                let part = shard::freeze(stripe, stride);
                if part.held > 0 {
                    shard::drain_into(part.cold, frozen.cold);
                    shard::transfer_count(stripe, base, part.held);
                }
            }
        }
        let result = read(frozen.cold);
        shard::drain_into(frozen.cold, frozen.hot);
        result
    }
}

impl Metric for Histogram {
    fn kind(&self) -> MetricKind {
        MetricKind::Histogram
    }

    fn encode(&self, name: &str, labels: &str, enc: &mut Encoder<'_>) {
        let buckets = self.storage.buckets();
        self.collect(|half| {
            let format = enc.format();
            let mut acc = 0u64;
            for (i, bucket) in half[FIRST_BUCKET..].iter().enumerate() {
                acc = acc.wrapping_add(bucket.load(Ordering::Relaxed));
                let le = buckets.le(format, i);
                enc.sample_with_extra_label(name, "_bucket", labels, "le", le, Value::Int(acc));
            }
            let sum = f64::from_bits(half[SUM].load(Ordering::Relaxed));
            enc.sample_f64(name, "_sum", labels, sum);
            enc.sample_u64(name, "_count", labels, acc);
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
        h.observe(f64::NAN);
        let s = h.snapshot();
        assert_eq!(s.cumulative[1], 0);
        assert_eq!(s.cumulative[2], 1);
        assert_eq!(s.cumulative[19], 1, "NaN is in no finite bucket");
        assert_eq!(s.cumulative[20], 3);
    }

    /// Several threads observe while this thread snapshots thousands of times; every
    /// snapshot must be internally consistent and the final counts exact.
    #[test]
    fn concurrent_snapshots_are_never_torn() {
        assert_never_torn(http_buckets());
    }

    /// The same with the stripes in place from the start, so every observation goes
    /// through a stripe and every snapshot gathers stripes into the base.
    #[test]
    fn concurrent_snapshots_of_a_striped_series_are_never_torn() {
        let striped = http_buckets();
        striped.storage.install_stripes();
        assert!(striped.storage.stripes().is_some());
        assert_never_torn(striped);
        // A series striped mid-way keeps what it held before the stripes.
        let h = http_buckets();
        h.observe(0.05);
        assert_eq!(h.snapshot().count, 1);
        h.storage.install_stripes();
        h.observe(0.3);
        let after = h.snapshot();
        assert_eq!(after.cumulative, vec![0, 1, 2, 2, 2]);
        assert!((after.sum - 0.35).abs() < 1e-12);
    }

    #[test]
    fn contention_installs_stripes() {
        let h = http_buckets();
        assert!(h.storage.stripes().is_none());
        // Two threads hammer one series until the sum's compare-exchange loses a race;
        // bounded by five seconds on a machine too busy to run both at once.
        let deadline = Instant::now() + Duration::from_secs(5);
        std::thread::scope(|s| {
            for _ in 0..2 {
                let h = h.clone();
                s.spawn(move || {
                    while h.storage.stripes().is_none() && Instant::now() < deadline {
                        for _ in 0..1_000 {
                            h.observe(0.05);
                        }
                    }
                });
            }
        });
        assert!(h.storage.stripes().is_some(), "no contention seen");
        let snap = h.snapshot();
        assert_eq!(snap.cumulative[4], snap.count);
        assert_eq!(snap.cumulative[1], snap.count);
    }

    fn assert_never_torn(h: Histogram) {
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
