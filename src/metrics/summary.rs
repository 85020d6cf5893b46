//! [`Summary`]: `_count` and `_sum` of observations, and optionally quantiles over a
//! sliding time window, computed by the exporter.
//!
//! Prefer a [`crate::metrics::Histogram`] when you can: histogram buckets aggregate
//! across replicas and time ranges, precomputed quantiles do not. A summary is for
//! when you need a quantile of one process's recent values, or only an average
//! (`_sum / _count`, the same as the Python client's summary).
//!
//! # `_count` and `_sum`
//!
//! They are two numbers that every observation updates one after the other, so a scrape
//! that loads them while other threads observe could pair a count with a sum from a
//! different set of observations (a wrong average, a sum that goes backwards relative
//! to the count). We use client_golang's hot/cold protocol (the histogram's overflow
//! shard, `histogram/overflow.rs`, uses it too): one word counts observations *started* and
//! says which of two halves is hot; an observation adds to the hot half's sum and then
//! bumps its count; a collector flips the hot bit, waits until the cold half has
//! *completed* as many observations as were started before the flip, reads that frozen
//! pair, and folds it into the new hot half. Observing is lock-free; collectors
//! serialise on a mutex observers never touch.
//!
//! # Quantiles: a log-linear sketch per age bucket
//!
//! Exact quantiles need every value; the Go client's streaming estimator needs a mutex
//! per observation. Instead, each observation increments one atomic counter in a
//! fixed, log-linear grid of bins: every power of two `[2^e, 2^(e+1))` is split into
//! 64 equal-width bins, and a bin is reported as the value `2ab/(a+b)` of its bounds
//! `[a, b)`. Every value in the bin is within `(b-a)/(a+b) <= 1/129` of that, so:
//!
//! **Error bound.** A reported quantile `q` is within a relative error of
//! [`Quantiles::RELATIVE_ERROR`] (1/129, under 0.78 %) of the exact nearest-rank
//! quantile (the `⌈q·n⌉`-th smallest value, at least the first) of the `n` values
//! observed in the window, for values in `[2^-32, 2^64)` (about `2.3e-10` to `1.8e19`).
//! Smaller values (and zero) are reported as 0, larger ones (and `+Inf`) as `+Inf`.
//!
//! The bin of a value comes straight from the bits of the `f64` (exponent and top six
//! mantissa bits), with no logarithm. Bins are allocated lazily, one page per power of
//! two the values actually reach, so latencies from 1 ms to 10 s use 14 pages. The
//! first observation that reaches a new power of two allocates its page (through a
//! `OnceLock`, so concurrent first observers wait for that one allocation); this
//! happens once per page in the life of the summary.
//!
//! **Sliding window.** The window (`max_age`, default 10 minutes) is cut into
//! `age_buckets` (default 5) periods, each with its own row of counters. The current
//! period is `now / (max_age / age_buckets)` on a coarse monotonic clock (cheaper to read
//! than the precise one); an observation goes to the row of its period. A scrape merges
//! the rows of the last `age_buckets` periods, so it covers between
//! `(age_buckets - 1) / age_buckets` of `max_age` and all of it. A row is reused for a
//! new period after it has aged out: the first observation of that period zeroes it
//! under a mutex and then publishes the period number (`Release`); observations that
//! see the new period number (`Acquire`) then count on top of the zeroed row. So the
//! mutex is taken once per period, not per observation. A thread preempted for a whole
//! window between reading the clock and counting may have its (by then expired)
//! observation dropped or counted in a later period; `_count` and `_sum` never miss it.
//!
//! **Scrapes.** A scrape reads the rows twice, once to count and once to find the
//! ranks, without allocating. Observations landing in between can shift a rank by at
//! most their number; if the rows shrank in between (a period aged out), the remaining
//! quantiles report the largest value seen.
//!
//! **Domain.** OpenMetrics requires a summary's sum and quantiles to be non-negative
//! and not NaN (a strict ingestor rejects the whole scrape otherwise), so a summary
//! measures non-negative quantities (durations, sizes): negative and NaN observations
//! are ignored. Use a gauge or a histogram for signed values.
//!
//! **Cost.** Without quantiles: two read-modify-writes plus a compare-exchange loop
//! for the sum, like a histogram with no buckets, and about 64 bytes. With quantiles,
//! additionally a clock read, two loads and one `fetch_add`, and memory of about 2 KiB
//! plus `512 * age_buckets` bytes per power of two reached (with 5 age buckets, about
//! 38 KiB for latencies spanning 1 ms to 10 s).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use super::gauge::add_f64;
use super::{Metric, MetricError, TypedMetric};
use crate::exposition::{BoundLabels, Encoder, MetricKind};

/// Mantissa bits that pick the bin within a power of two.
const SUB_BITS: u32 = 6;
/// Bins per power of two.
const SUB_BINS: usize = 1 << SUB_BITS;
/// The smallest power of two with bins of its own; anything below counts as zero.
const MIN_EXP: i32 = -32;
/// The power of two where bins end; anything at or above counts as `+Inf`.
const MAX_EXP: i32 = 64;
/// Pages (powers of two) in the grid.
const PAGES: usize = (MAX_EXP - MIN_EXP) as usize;
/// `2^MIN_EXP`, built from its bits.
const MIN_VALUE: f64 = f64::from_bits(((1023 + MIN_EXP) as u64) << 52);
/// `2^MAX_EXP`.
const MAX_VALUE: f64 = f64::from_bits(((1023 + MAX_EXP) as u64) << 52);
/// The epoch of an age bucket that has never been used.
const NO_EPOCH: u64 = u64::MAX;
/// Top bit of `count_and_hot`: which half is hot.
const HOT_BIT: u64 = 1 << 63;

/// Which quantiles a summary reports and over which sliding window. Shared by every
/// series of a summary family, with the `quantile` label values rendered once.
///
/// ```
/// use std::time::Duration;
/// use tinyprom::metrics::{Family, Quantiles, Registry, Summary};
/// // p50 and p99 over the last minute, sliding in 6 steps of 10 s.
/// let quantiles = Quantiles::with_window(&[0.5, 0.99], Duration::from_secs(60), 6).unwrap();
/// let latency = Family::with_constructor(&["route"], move || {
///     Summary::with_quantiles(quantiles.clone())
/// })
/// .unwrap();
/// let registry = Registry::new();
/// registry.register("route_latency_seconds", "Latency.", latency.clone()).unwrap();
/// latency.with_label_values(&["/a"]).unwrap().observe(0.2);
/// assert!(registry.render_text().contains("route_latency_seconds_count{route=\"/a\"} 1\n"));
/// ```
#[derive(Debug)]
pub struct Quantiles {
    /// The quantiles, with their label values as the exposition formats spell them.
    quantiles: BoundLabels,
    max_age: Duration,
    age_buckets: usize,
    bucket_nanos: u64,
}

impl Quantiles {
    /// The largest relative error of a reported quantile (see the module documentation):
    /// `1/129`.
    pub const RELATIVE_ERROR: f64 = 1.0 / (2 * SUB_BINS + 1) as f64;
    /// The default window: quantiles describe the last 10 minutes (as in the Go client).
    pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(600);
    /// The default number of periods the window is cut into.
    pub const DEFAULT_AGE_BUCKETS: usize = 5;
    /// The most periods a window can be cut into.
    pub const MAX_AGE_BUCKETS: usize = 64;

    /// These quantiles (each in `[0, 1]`, strictly increasing) over the default window.
    ///
    /// ```
    /// use tinyprom::metrics::Quantiles;
    /// assert!(Quantiles::new(&[0.5, 0.9, 0.99]).is_ok());
    /// assert!(Quantiles::new(&[0.9, 0.5]).is_err());
    /// assert!(Quantiles::new(&[1.5]).is_err());
    /// ```
    pub fn new(quantiles: &[f64]) -> Result<Arc<Quantiles>, MetricError> {
        Quantiles::with_window(
            quantiles,
            Quantiles::DEFAULT_MAX_AGE,
            Quantiles::DEFAULT_AGE_BUCKETS,
        )
    }

    /// These quantiles over the last `max_age`, cut into `age_buckets` periods
    /// (`1..=64`) of at least one second each.
    pub fn with_window(
        quantiles: &[f64],
        max_age: Duration,
        age_buckets: usize,
    ) -> Result<Arc<Quantiles>, MetricError> {
        let invalid = |why: String| Err(MetricError::InvalidQuantiles(why));
        if quantiles.is_empty() {
            return invalid("no quantiles given (use Summary::new for none)".into());
        }
        if let Some(q) = quantiles.iter().find(|q| !(0.0..=1.0).contains(*q)) {
            return invalid(format!("quantile {q} is not in [0, 1]"));
        }
        if quantiles.windows(2).any(|w| w[0] >= w[1]) {
            return invalid("quantiles must be strictly increasing".into());
        }
        if !(1..=Quantiles::MAX_AGE_BUCKETS).contains(&age_buckets) {
            return invalid(format!(
                "age_buckets is {age_buckets}, it must be in 1..={}",
                Quantiles::MAX_AGE_BUCKETS
            ));
        }
        let bucket = max_age / age_buckets as u32;
        if bucket < Duration::from_secs(1) {
            return invalid(format!(
                "max_age {max_age:?} over {age_buckets} age buckets gives periods of {bucket:?}; they must be at least 1s"
            ));
        }
        Ok(Arc::new(Quantiles {
            quantiles: BoundLabels::new(quantiles),
            max_age,
            age_buckets,
            bucket_nanos: u64::try_from(bucket.as_nanos()).unwrap_or(u64::MAX),
        }))
    }

    /// The quantiles, in increasing order.
    pub fn quantiles(&self) -> &[f64] {
        self.quantiles.values()
    }

    /// The length of the sliding window.
    pub fn max_age(&self) -> Duration {
        self.max_age
    }

    /// The number of periods the window is cut into.
    pub fn age_buckets(&self) -> usize {
        self.age_buckets
    }
}

/// A summary series: `_count`, `_sum` and, if configured, quantiles over a sliding
/// window. Clone the handle to share it.
///
/// ```
/// use tinyprom::exposition::Format;
/// use tinyprom::metrics::{Quantiles, Registry, Summary};
/// let registry = Registry::new();
/// let sizes = Summary::with_quantiles(Quantiles::new(&[0.5, 0.99]).unwrap());
/// registry
///     .register_with_unit("upload_size_bytes", "Upload sizes.", "bytes", sizes.clone())
///     .unwrap();
/// for kib in 1..=100 {
///     sizes.observe(kib as f64 * 1024.0);
/// }
/// let snap = sizes.snapshot();
/// assert_eq!(snap.count, 100);
/// assert_eq!(snap.sum, 5050.0 * 1024.0);
/// // The median of 1..=100 KiB is 50 KiB, reported within 1/129.
/// let median = snap.quantiles[0].1;
/// assert!((median - 50.0 * 1024.0).abs() <= 50.0 * 1024.0 / 129.0);
/// let om = registry.render(Format::OpenMetrics);
/// assert!(om.contains("# TYPE upload_size_bytes summary\n# UNIT upload_size_bytes bytes\n# HELP upload_size_bytes Upload sizes.\n"));
/// assert!(om.contains("upload_size_bytes_count 100\n"));
/// ```
#[derive(Clone)]
pub struct Summary {
    core: Arc<Core>,
}

struct Core {
    /// Top bit: index of the hot half. Lower 63 bits: observations started.
    count_and_hot: AtomicU64,
    halves: [Half; 2],
    /// Serialises collectors; observers never touch it.
    collect: Mutex<()>,
    window: Option<Window>,
    /// When the summary was created: its start timestamp.
    created: SystemTime,
}

#[derive(Default)]
struct Half {
    /// Observations completed in this half.
    count: AtomicU64,
    /// Bits of the `f64` sum of this half's observations.
    sum: AtomicU64,
}

/// The quantile sketch: one row of counters per age bucket, in lazily allocated pages.
struct Window {
    config: Arc<Quantiles>,
    /// Per age bucket: the period it counts and its two out-of-grid bins.
    slots: Box<[Slot]>,
    /// One page per power of two, allocated on first use: `age_buckets` rows of
    /// `SUB_BINS` counters, row `i` belonging to slot `i`.
    pages: Box<[OnceLock<Box<[AtomicU64]>>]>,
    /// Serialises the zeroing of a slot for a new period.
    reset: Mutex<()>,
}

struct Slot {
    /// The period whose observations this slot counts; [`NO_EPOCH`] before first use.
    epoch: AtomicU64,
    /// Observations below `2^MIN_EXP`, reported as 0.
    zero: AtomicU64,
    /// Observations at or above `2^MAX_EXP`, reported as `+Inf`.
    overflow: AtomicU64,
}

/// Where a value is counted.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Bin {
    Zero,
    Grid { page: usize, sub: usize },
    Overflow,
}

/// A consistent copy of a summary series.
///
/// ```
/// use tinyprom::metrics::{Quantiles, Summary};
/// let s = Summary::with_quantiles(Quantiles::new(&[0.5]).unwrap());
/// s.observe(3.0);
/// s.observe(5.0);
/// let snap = s.snapshot();
/// assert_eq!((snap.count, snap.sum), (2, 8.0));
/// let (q, median) = snap.quantiles[0];
/// assert_eq!(q, 0.5);
/// assert!((median - 3.0).abs() <= 3.0 * Quantiles::RELATIVE_ERROR);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SummarySnapshot {
    /// Number of observations (ever).
    pub count: u64,
    /// Sum of the observations (ever).
    pub sum: f64,
    /// `(quantile, value)` over the window, in the configured order; NaN when the
    /// window holds no observation. Empty without quantiles.
    pub quantiles: Vec<(f64, f64)>,
}

impl Default for Summary {
    fn default() -> Self {
        Summary::build(None)
    }
}

impl fmt::Debug for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let snap = self.snapshot();
        f.debug_struct("Summary")
            .field("count", &snap.count)
            .field("sum", &snap.sum)
            .field("quantiles", &snap.quantiles)
            .finish()
    }
}

impl Summary {
    /// A summary with `_count` and `_sum` only.
    pub fn new() -> Summary {
        Summary::default()
    }

    /// A summary that also reports quantiles over a sliding window.
    pub fn with_quantiles(quantiles: Arc<Quantiles>) -> Summary {
        let rows = quantiles.age_buckets;
        let window = Window {
            slots: (0..rows)
                .map(|_| Slot {
                    epoch: AtomicU64::new(NO_EPOCH),
                    zero: AtomicU64::new(0),
                    overflow: AtomicU64::new(0),
                })
                .collect(),
            pages: (0..PAGES).map(|_| OnceLock::new()).collect(),
            reset: Mutex::new(()),
            config: quantiles,
        };
        Summary::build(Some(window))
    }

    fn build(window: Option<Window>) -> Summary {
        Summary {
            core: Arc::new(Core {
                count_and_hot: AtomicU64::new(0),
                halves: Default::default(),
                collect: Mutex::new(()),
                window,
                created: SystemTime::now(),
            }),
        }
    }

    /// When the summary was created (its start timestamp in the protobuf format, and
    /// its `_created` sample in OpenMetrics when asked for).
    pub fn created(&self) -> SystemTime {
        self.core.created
    }

    /// The quantile configuration, if any.
    pub fn quantiles(&self) -> Option<&Arc<Quantiles>> {
        self.core.window.as_ref().map(|w| &w.config)
    }

    /// Records one value. Negative and NaN values are ignored (see the module
    /// documentation); `+Inf` is counted and makes the sum `+Inf`.
    #[inline]
    pub fn observe(&self, v: f64) {
        self.observe_at(v, now_nanos);
    }

    fn observe_at(&self, v: f64, now: impl FnOnce() -> u64) {
        if v.is_nan() || v < 0.0 {
            return;
        }
        let core = &*self.core;
        // Acquire: this observer must see the zeroing of the half it is about to use,
        // done by the collector that made it hot again (see the module docs).
        let started = core.count_and_hot.fetch_add(1, Ordering::Acquire);
        let half = &core.halves[(started >> 63) as usize];
        add_f64(&half.sum, v);
        // Release: publishes the sum update above to the collector that waits for it.
        half.count.fetch_add(1, Ordering::Release);
        if let Some(window) = &core.window {
            window.record(v, now());
        }
    }

    /// Records a duration in seconds.
    pub fn observe_duration(&self, d: Duration) {
        self.observe(d.as_secs_f64());
    }

    /// Runs `f` and records how long it took, in seconds.
    ///
    /// ```
    /// let s = tinyprom::metrics::Summary::new();
    /// let answer = s.time(|| 6 * 7);
    /// assert_eq!(answer, 42);
    /// assert_eq!(s.snapshot().count, 1);
    /// ```
    pub fn time<T>(&self, f: impl FnOnce() -> T) -> T {
        let _timer = self.start_timer();
        f()
    }

    /// Starts a timer that records the time until it is dropped (or
    /// [`Timer::observe`](super::Timer::observe)d).
    pub fn start_timer(&self) -> SummaryTimer {
        super::Timer::start(self.clone())
    }

    /// Takes a consistent snapshot: the same count and sum a scrape would render, and
    /// the quantiles over the window as of now.
    pub fn snapshot(&self) -> SummarySnapshot {
        self.snapshot_at(now_nanos())
    }

    fn snapshot_at(&self, now: u64) -> SummarySnapshot {
        let mut quantiles = Vec::new();
        if let Some(window) = &self.core.window {
            window.estimate(now, |i, v| {
                quantiles.push((window.config.quantiles()[i], v))
            });
        }
        let (count, sum) = self.collect();
        SummarySnapshot {
            count,
            sum,
            quantiles,
        }
    }

    /// The hot/cold collection of `_count` and `_sum` (see the module documentation
    /// and the histogram's for the orderings).
    fn collect(&self) -> (u64, f64) {
        let core = &*self.core;
        // A poisoned mutex only means another collector panicked while holding it; the
        // protocol state lives in atomics and is still consistent.
        let _guard = core
            .collect
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // AcqRel: Release publishes the previous collection's zeroing to the observers
        // that will use this half next; Acquire pairs with their fetch_add.
        let after_flip = core
            .count_and_hot
            .fetch_add(HOT_BIT, Ordering::AcqRel)
            .wrapping_add(HOT_BIT);
        let started = after_flip & !HOT_BIT;
        let hot_index = (after_flip >> 63) as usize;
        let hot = &core.halves[hot_index];
        let cold = &core.halves[hot_index ^ 1];
        let mut spins = 0u32;
        // Acquire: reading `started` synchronises with every completing fetch_add, so
        // their sum updates are visible to the Relaxed swap below.
        while cold.count.load(Ordering::Acquire) != started {
            // An observer between its two updates: a few instructions away, unless it
            // was preempted, in which case give it the CPU.
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        // Relaxed: the cold half is frozen (no observer can reach it until the next
        // flip, which orders these writes before its users), and the mutex orders them
        // for the next collector.
        let count = cold.count.swap(0, Ordering::Relaxed);
        let sum = f64::from_bits(cold.sum.swap(0f64.to_bits(), Ordering::Relaxed));
        hot.count.fetch_add(count, Ordering::Relaxed);
        add_f64(&hot.sum, sum);
        (count, sum)
    }
}

impl Window {
    /// Counts `v` (non-negative, not NaN) in the row of the period `now` falls in.
    #[inline]
    fn record(&self, v: f64, now: u64) {
        let epoch = now / self.config.bucket_nanos;
        let index = (epoch % self.slots.len() as u64) as usize;
        let slot = &self.slots[index];
        // Acquire: pairs with the Release store that ends a reset, so the increment
        // below lands after that reset's zeroing.
        if slot.epoch.load(Ordering::Acquire) != epoch && !self.reset(index, epoch) {
            return;
        }
        // Relaxed: counts are independent; scrapes tolerate seeing them late.
        match bin(v) {
            Bin::Zero => slot.zero.fetch_add(1, Ordering::Relaxed),
            Bin::Overflow => slot.overflow.fetch_add(1, Ordering::Relaxed),
            Bin::Grid { page, sub } => {
                let rows = self.slots.len();
                let page = self.pages[page]
                    .get_or_init(|| (0..rows * SUB_BINS).map(|_| AtomicU64::new(0)).collect());
                page[index * SUB_BINS + sub].fetch_add(1, Ordering::Relaxed)
            }
        };
    }

    /// Prepares slot `index` for period `epoch`: zeroes it unless another observer
    /// already did. Returns false when the slot has moved past `epoch` (the caller was
    /// preempted for a whole window; its observation has expired).
    #[cold]
    fn reset(&self, index: usize, epoch: u64) -> bool {
        let _guard = self.reset.lock().unwrap_or_else(|p| p.into_inner());
        let slot = &self.slots[index];
        // Relaxed: under the mutex, the last store to it was made by a previous holder.
        let current = slot.epoch.load(Ordering::Relaxed);
        if current == epoch {
            return true;
        }
        if current != NO_EPOCH && current > epoch {
            return false;
        }
        // Relaxed: published by the Release store of the new epoch below.
        slot.zero.store(0, Ordering::Relaxed);
        slot.overflow.store(0, Ordering::Relaxed);
        for page in self.pages.iter().filter_map(OnceLock::get) {
            for counter in &page[index * SUB_BINS..][..SUB_BINS] {
                counter.store(0, Ordering::Relaxed);
            }
        }
        // Release: observers that load this epoch (Acquire) count on the zeroed row.
        slot.epoch.store(epoch, Ordering::Release);
        true
    }

    /// Bit mask of the slots whose period is within the window at `now`.
    fn live_slots(&self, now: u64) -> u64 {
        let epoch = now / self.config.bucket_nanos;
        let rows = self.slots.len() as u64;
        let mut live = 0;
        for (i, slot) in self.slots.iter().enumerate() {
            // Acquire: see the zeroing that preceded this epoch's publication.
            let e = slot.epoch.load(Ordering::Acquire);
            if e != NO_EPOCH && e <= epoch && epoch - e < rows {
                live |= 1 << i;
            }
        }
        live
    }

    /// Visits the merged counts of the live slots in increasing order of value:
    /// `(count, representative value)` per non-empty bin.
    fn for_each_bin(&self, live: u64, mut visit: impl FnMut(u64, f64)) {
        let rows = self
            .slots
            .iter()
            .enumerate()
            .filter(|(i, _)| live & (1 << i) != 0);
        // Relaxed loads throughout: see `estimate` for why a slightly stale or mixed
        // view is acceptable.
        let zero: u64 = rows
            .clone()
            .map(|(_, s)| s.zero.load(Ordering::Relaxed))
            .sum();
        if zero > 0 {
            visit(zero, 0.0);
        }
        for (p, page) in self.pages.iter().enumerate() {
            let Some(page) = page.get() else { continue };
            for sub in 0..SUB_BINS {
                let n: u64 = rows
                    .clone()
                    .map(|(i, _)| page[i * SUB_BINS + sub].load(Ordering::Relaxed))
                    .sum();
                if n > 0 {
                    visit(n, representative(p, sub));
                }
            }
        }
        let overflow: u64 = rows.map(|(_, s)| s.overflow.load(Ordering::Relaxed)).sum();
        if overflow > 0 {
            visit(overflow, f64::INFINITY);
        }
    }

    /// Calls `emit(i, value)` for each configured quantile `i`, in order, over the
    /// window at `now`: NaN for all when the window is empty. Two passes (count, then
    /// find ranks), no allocation.
    fn estimate(&self, now: u64, mut emit: impl FnMut(usize, f64)) {
        let live = self.live_slots(now);
        let mut total = 0u64;
        self.for_each_bin(live, |n, _| total += n);
        let quantiles = self.config.quantiles();
        if total == 0 {
            (0..quantiles.len()).for_each(|i| emit(i, f64::NAN));
            return;
        }
        let mut next = 0;
        let mut seen = 0u64;
        let mut last = f64::NAN;
        self.for_each_bin(live, |n, value| {
            seen += n;
            last = value;
            while next < quantiles.len() && nearest_rank(quantiles[next], total) <= seen {
                emit(next, value);
                next += 1;
            }
        });
        // Only when counts shrank between the passes (a period aged out meanwhile).
        (next..quantiles.len()).for_each(|i| emit(i, last));
    }
}

/// The 1-based rank of quantile `q` among `n` values: `⌈q·n⌉`, at least 1.
fn nearest_rank(q: f64, n: u64) -> u64 {
    ((q * n as f64).ceil() as u64).clamp(1, n)
}

/// The bin of a non-negative, non-NaN value: straight from its bits, no logarithm.
#[inline]
fn bin(v: f64) -> Bin {
    if v < MIN_VALUE {
        Bin::Zero
    } else if v >= MAX_VALUE {
        Bin::Overflow
    } else {
        let bits = v.to_bits();
        // Normal, positive, in range: the biased exponent is in 991..1087.
        let page = ((bits >> 52) as i32 - 1023 - MIN_EXP) as usize;
        let sub = (bits >> (52 - SUB_BITS)) as usize & (SUB_BINS - 1);
        Bin::Grid { page, sub }
    }
}

/// The value a bin is reported as: `2ab/(a+b)` for its bounds `[a, b)`, which is
/// within `(b-a)/(a+b) <= 1/129` of every value in the bin.
fn representative(page: usize, sub: usize) -> f64 {
    let scale = f64::from_bits(((1023 + MIN_EXP + page as i32) as u64) << 52);
    let a = scale * (1.0 + sub as f64 / SUB_BINS as f64);
    let b = scale * (1.0 + (sub + 1) as f64 / SUB_BINS as f64);
    2.0 * a * b / (a + b)
}

/// Nanoseconds on a monotonic clock. On Linux the coarse clock: cheaper to read than
/// the precise one, with a resolution of a few milliseconds, far below the one-second
/// minimum period.
fn now_nanos() -> u64 {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        for clock in [libc::CLOCK_MONOTONIC_COARSE, libc::CLOCK_MONOTONIC] {
            // SAFETY: clock_gettime writes one timespec we own. Both clocks count from
            // the same origin (boot), so falling back keeps periods consistent.
            if unsafe { libc::clock_gettime(clock, &mut ts) } == 0 {
                return ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64;
            }
        }
    }
    static START: OnceLock<Instant> = OnceLock::new();
    u64::try_from(START.get_or_init(Instant::now).elapsed().as_nanos()).unwrap_or(u64::MAX)
}

impl Metric for Summary {
    fn kind(&self) -> MetricKind {
        MetricKind::Summary
    }

    fn encode(&self, name: &str, labels: &str, enc: &mut Encoder<'_>) {
        let mut series = enc.summary(name, labels);
        if let Some(window) = &self.core.window {
            window.estimate(now_nanos(), |i, v| {
                series.quantile(&window.config.quantiles, i, v);
            });
        }
        let (count, sum) = self.collect();
        series.finish_with(sum, count, Some(self.core.created));
    }
}

impl TypedMetric for Summary {
    const KIND: MetricKind = MetricKind::Summary;
}

/// Times a scope into a [`Summary`]; see [`Timer`](super::Timer).
///
/// ```
/// use tinyprom::metrics::{Summary, SummaryTimer};
/// let latency = Summary::new();
/// let timer: SummaryTimer = latency.start_timer();
/// // ... the work being timed ...
/// let seconds = timer.observe(); // recorded now instead of at the drop
/// assert_eq!(latency.snapshot().count, 1);
/// assert_eq!(latency.snapshot().sum, seconds);
/// ```
pub type SummaryTimer = super::Timer<Summary>;

impl super::timer::Observe for Summary {
    fn observe(&self, v: f64) {
        Summary::observe(self, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::Format;

    const SECOND: u64 = 1_000_000_000;

    /// The nearest-rank quantile of `values`, computed exactly by sorting.
    fn exact(values: &[f64], q: f64) -> f64 {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        sorted[nearest_rank(q, sorted.len() as u64) as usize - 1]
    }

    const QS: [f64; 13] = [
        0.0, 0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 0.9999, 1.0,
    ];

    /// Observes `values` at time `now` and checks every estimate against the exact
    /// quantile, within the documented bound.
    fn check_against_exact(values: &[f64]) {
        let s = Summary::with_quantiles(Quantiles::new(&QS).unwrap());
        for &v in values {
            s.observe_at(v, || 42 * SECOND);
        }
        let snap = s.snapshot_at(43 * SECOND);
        assert_eq!(snap.count, values.len() as u64);
        for &(q, estimate) in &snap.quantiles {
            let want = exact(values, q);
            let err = (estimate - want).abs();
            // A hair of slack for the rounding of `representative` itself.
            let bound = Quantiles::RELATIVE_ERROR * want * (1.0 + 1e-12);
            assert!(
                err <= bound || (want < MIN_VALUE && estimate == 0.0),
                "q={q}: estimate {estimate}, exact {want}, error {err} > {bound}"
            );
        }
    }

    #[test]
    fn quantiles_are_within_the_bound_of_exact_ones() {
        // Uniform milliseconds, 1 ms to 10 s.
        let uniform: Vec<f64> = (1..=10_000).map(|i| i as f64 / 1000.0).collect();
        check_against_exact(&uniform);
        // Log-normal-ish latencies from a seeded generator: many powers of two.
        let mut rng = fastrand::Rng::with_seed(7);
        let skewed: Vec<f64> = (0..50_000)
            .map(|_| (rng.f64() * 12.0 - 9.0).exp2() * (1.0 + rng.f64()))
            .collect();
        check_against_exact(&skewed);
        // Heavy duplicates, exact zeros, tiny and huge values, exact powers of two.
        let mut odd: Vec<f64> = vec![0.0; 100];
        odd.extend(std::iter::repeat_n(0.25, 1000));
        odd.extend([1e-12, 3e-11, 1.0, 2.0, 4.0, 1e12, 1.7e19]);
        odd.extend((0..500).map(|i| 1000.0 + i as f64));
        check_against_exact(&odd);
        // A single value.
        check_against_exact(&[0.123]);
    }

    #[test]
    fn out_of_grid_values() {
        let s = Summary::with_quantiles(Quantiles::new(&[0.0, 1.0]).unwrap());
        s.observe_at(1e-20, || SECOND);
        s.observe_at(f64::INFINITY, || SECOND);
        let snap = s.snapshot_at(SECOND);
        assert_eq!(snap.quantiles, vec![(0.0, 0.0), (1.0, f64::INFINITY)]);
        assert_eq!(snap.sum, f64::INFINITY);
        assert_eq!(bin(MAX_VALUE), Bin::Overflow);
        assert_eq!(bin(MIN_VALUE), Bin::Grid { page: 0, sub: 0 });
        assert_eq!(bin(MIN_VALUE / 2.0), Bin::Zero);
        assert_eq!(bin(1.0), Bin::Grid { page: 32, sub: 0 });
        assert_eq!(bin(1.99), Bin::Grid { page: 32, sub: 63 });
        assert_eq!(
            bin(f64::from_bits(MAX_VALUE.to_bits() - 1)),
            Bin::Grid {
                page: PAGES - 1,
                sub: SUB_BINS - 1
            }
        );
    }

    #[test]
    fn negative_and_nan_observations_are_ignored() {
        let s = Summary::with_quantiles(Quantiles::new(&[0.5]).unwrap());
        s.observe(-1.0);
        s.observe(f64::NAN);
        s.observe(f64::NEG_INFINITY);
        let snap = s.snapshot();
        assert_eq!((snap.count, snap.sum), (0, 0.0));
        assert!(snap.quantiles[0].1.is_nan(), "empty window reports NaN");
        s.observe(-0.0);
        s.observe(2.0);
        let snap = s.snapshot();
        assert_eq!((snap.count, snap.sum), (2, 2.0));
    }

    #[test]
    fn the_window_slides() {
        // 10 s window in 5 periods of 2 s.
        let config = Quantiles::with_window(&[0.5, 1.0], Duration::from_secs(10), 5).unwrap();
        let s = Summary::with_quantiles(config);
        let at = |secs: f64| (secs * SECOND as f64) as u64;
        let median_and_max = |now: f64| {
            let snap = s.snapshot_at(at(now));
            (snap.quantiles[0].1, snap.quantiles[1].1)
        };
        s.observe_at(100.0, || at(0.5)); // period 0
        s.observe_at(1.0, || at(3.0)); // period 1
        s.observe_at(1.0, || at(3.5));
        assert_eq!(median_and_max(4.0).0, representative(32, 0));
        assert!(
            median_and_max(9.9).1 > 99.0,
            "period 0 is still in the window"
        );
        // At 10 s, period 5 reuses period 0's row: the 100 is gone.
        assert!(median_and_max(10.0).1 < 1.01);
        // Period 5's first observation zeroes the reused row before counting.
        s.observe_at(5.0, || at(10.5));
        let (median, max) = median_and_max(10.5);
        assert!((median - 1.0).abs() < 0.01 && (max - 5.0).abs() < 0.04);
        // At 13 s period 1 has aged out too; at 21 s everything has.
        assert!((median_and_max(13.0).0 - 5.0).abs() < 0.04);
        assert!(median_and_max(21.0).0.is_nan());
        // _count and _sum are never windowed.
        let snap = s.snapshot_at(at(21.0));
        assert_eq!((snap.count, snap.sum), (4, 107.0));
    }

    #[test]
    fn a_stale_observation_does_not_pollute_a_newer_period() {
        let config = Quantiles::with_window(&[1.0], Duration::from_secs(4), 2).unwrap();
        let s = Summary::with_quantiles(config);
        s.observe_at(1.0, || 4 * SECOND); // period 2, slot 0
        // An observer that read the clock in period 0 (same slot) comes back late.
        s.observe_at(1000.0, || 0);
        let snap = s.snapshot_at(4 * SECOND);
        assert!(snap.quantiles[0].1 < 1.01, "{snap:?}");
        assert_eq!(snap.count, 2, "still counted in _count");
    }

    #[test]
    fn configuration_is_validated() {
        assert!(Quantiles::new(&[]).is_err());
        assert!(Quantiles::new(&[f64::NAN]).is_err());
        assert!(Quantiles::new(&[-0.1]).is_err());
        assert!(Quantiles::new(&[0.5, 0.5]).is_err());
        assert!(Quantiles::with_window(&[0.5], Duration::from_secs(4), 5).is_err());
        assert!(Quantiles::with_window(&[0.5], Duration::from_secs(600), 0).is_err());
        assert!(Quantiles::with_window(&[0.5], Duration::from_secs(6000), 65).is_err());
        let q = Quantiles::with_window(&[0.0, 0.5, 1.0], Duration::from_secs(60), 6).unwrap();
        assert_eq!(q.quantiles(), &[0.0, 0.5, 1.0]);
        assert_eq!((q.max_age(), q.age_buckets()), (Duration::from_secs(60), 6));
        assert_eq!(q.quantiles.openmetrics(2), "1.0");
        assert_eq!(q.quantiles.text(2), "1");
    }

    #[test]
    fn renders_quantiles_sum_count() {
        let s = Summary::with_quantiles(Quantiles::new(&[0.5, 0.9]).unwrap());
        let render = |format| {
            let mut buf = Vec::new();
            s.encode("rt_seconds", "a=\"b\"", &mut Encoder::new(&mut buf, format));
            String::from_utf8(buf).unwrap()
        };
        assert_eq!(
            render(Format::OpenMetrics),
            "rt_seconds{a=\"b\",quantile=\"0.5\"} NaN\nrt_seconds{a=\"b\",quantile=\"0.9\"} NaN\n\
             rt_seconds_sum{a=\"b\"} 0\nrt_seconds_count{a=\"b\"} 0\n"
        );
        s.observe(0.75);
        let text = render(Format::Text);
        let v = representative(31, 32);
        assert_eq!(
            text,
            format!(
                "rt_seconds{{a=\"b\",quantile=\"0.5\"}} {v}\nrt_seconds{{a=\"b\",quantile=\"0.9\"}} {v}\n\
                 rt_seconds_sum{{a=\"b\"}} 0.75\nrt_seconds_count{{a=\"b\"}} 1\n"
            )
        );
        let plain = Summary::new();
        plain.observe(2.0);
        let mut buf = Vec::new();
        plain.encode("x", "", &mut Encoder::new(&mut buf, Format::Text));
        assert_eq!(buf, b"x_sum 2\nx_count 1\n");
    }

    #[test]
    fn timers_record_elapsed_seconds() {
        let s = Summary::new();
        assert_eq!(s.time(|| 7), 7);
        let secs = s.start_timer().observe();
        {
            let _t = s.start_timer();
        }
        let snap = s.snapshot();
        assert_eq!(snap.count, 3);
        assert!(secs >= 0.0 && snap.sum >= secs);
    }

    /// Threads observe while this thread snapshots: every snapshot's sum belongs to its
    /// count (all values are 1, so they must be equal), and nothing is lost.
    #[test]
    fn concurrent_snapshots_pair_count_and_sum() {
        let s = Summary::with_quantiles(Quantiles::new(&[0.5]).unwrap());
        let threads = 4;
        let per_thread = 100_000u64;
        std::thread::scope(|scope| {
            for _ in 0..threads {
                let s = s.clone();
                scope.spawn(move || {
                    for _ in 0..per_thread {
                        s.observe(1.0);
                    }
                });
            }
            let mut previous = 0;
            for _ in 0..2_000 {
                let snap = s.snapshot();
                assert_eq!(snap.sum, snap.count as f64, "{snap:?}");
                assert!(snap.count >= previous);
                previous = snap.count;
                let median = snap.quantiles[0].1;
                assert!(
                    median.is_nan()
                        || (median - 1.0).abs() <= Quantiles::RELATIVE_ERROR * (1.0 + 1e-12),
                    "{median}"
                );
            }
        });
        let snap = s.snapshot();
        assert_eq!(snap.count, threads * per_thread);
        assert_eq!(snap.sum, (threads * per_thread) as f64);
    }
}
