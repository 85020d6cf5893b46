//! [`Histogram`]: consistent scrapes, no atomic read-modify-write on the observing
//! thread that owns a series (one on any other), and no shared cache line between
//! threads that observe the same series at the same time.
//!
//! # Consistency
//!
//! A histogram series is several numbers (per-bucket counts, `_sum`, `_count`) that an
//! observation updates one after another. A scrape that simply loads them while other
//! threads observe can see a bucket incremented but not yet `_count`, i.e. a `le="+Inf"`
//! bucket that differs from `_count` (client_golang issue 275), or a `_sum` from a
//! different set of observations than the counts. Prometheus then computes nonsense
//! quantiles and rates.
//!
//! # One writer per shard: a sequence number for the owner, a lock word for the rest
//!
//! Each *shard* of a series is a control word, the `_sum` and one count per bucket
//! including `+Inf` (not cumulative: `_count` is their total, so the two cannot
//! disagree). An observation updates the sum and its bucket with plain loads and
//! stores, which is only sound while one thread writes the shard. Two ways make it so:
//!
//! * The series' first shard, the *base*, belongs to the first thread that observes
//!   the series, its *owner* (`owner.rs`). The owner writes it with no atomic
//!   read-modify-write at all: it makes the control word, a sequence number, odd,
//!   updates the cells, and makes it even again (a seqlock). On the machines measured
//!   one `lock`-prefixed instruction costs 5 to 12 ns, more than the rest of an
//!   observation, so the common case (one thread per series at a time, as in a
//!   server's worker that answers a request and observes it) avoids it entirely.
//! * Every other thread observes into *stripes*, allocated when a second thread first
//!   observes the series: more shards, each on its own 128-byte block so no two share
//!   a cache line (see `stripes.rs`), whose control word is a lock taken with one
//!   compare-exchange and released with a plain store. An observer uses the stripe its
//!   thread's probe picks, and one that finds its stripe taken tries the next stripes
//!   in turn (and starts from another one next time). If every stripe is taken at once
//!   (holders preempted mid-update), it records into the series' *overflow shard*
//!   instead (`overflow.rs`): client_golang's hot/cold halves, atomic
//!   read-modify-writes only.
//!
//! So an observer never waits for another thread, whatever the scheduler does: the
//! owner waits for nobody, and the try-locks are never waited on by observers; only a
//! scrape waits for a holder, as client_golang's collector waits for observers in
//! progress.
//!
//! A scrape (or [`Histogram::snapshot`]) of a series with classic buckets only and no
//! stripes (the common case) reads the base in place: it renders, then checks the
//! sequence number, and renders again if the owner wrote meanwhile. Otherwise it
//! assembles the series in a scratch shard of its thread (`scratch.rs`): it copies the
//! base by its sequence number (again if the owner wrote meanwhile; after a few lost races it asks the owner to pause, and the
//! owner observes into the stripes until the copy is done, so a scrape never waits for
//! the owner to stop observing). If the series has stripes, it then locks their
//! *collected* shard, moves each stripe into it in turn (locking the stripe, adding
//! its counts and sum, zeroing it) and the overflow shard the same way, and adds the
//! collected shard to the copy. What it reads is the union of complete observations
//! (no observation is ever half in a shard outside its lock or its write), so buckets
//! are cumulative and non-decreasing, `+Inf` equals `_count`, `_sum` comes from the
//! same observations, and no scrape goes backwards. Locks are taken in one order
//! (collected, then a stripe) and observers hold one at a time, so nothing deadlocks;
//! the collected shard's lock also serialises concurrent scrapes of the series.
//!
//! A thread's ownership passes to the next thread that starts after it exits (tokens
//! are leased, `owner.rs`). A series that may reset (see
//! [`NativeOptions::min_reset_duration`]) has no owner, because a reset zeroes every
//! shard and only the owner may write the base: all its observations take the stripes.
//!
//! Memory with the default five buckets (four bounds and `+Inf`): 128 bytes per series
//! in one allocation (`storage.rs`: the header, with the memo of the `_sum`'s text,
//! and the base shard on a cache line each, the creation time in the base shard's
//! line's last word), plus, once the series gets an exemplar, its exemplars, and, once a second thread observes it, one 128-byte block per stripe and
//! one for the collected shard (twice the CPUs, rounded up to a power of two, 2 to 16
//! stripes: 640 bytes on two CPUs).
//!
//! # Native buckets
//!
//! A histogram built with [`Buckets::with_native`] keeps native (exponential) buckets
//! of the same observations in every shard, after the classic ones and under the same
//! lock or write, so the consistency argument above covers them unchanged: a scrape reads the
//! classic and the native counts of one set of complete observations. `native.rs`
//! explains the bucket index, the fixed windows (1,352 more bytes per shard with the
//! defaults, never allocated on the observe path) and the bucket-limit strategy.
//!
//! # Memory orderings, each for one reason
//!
//! * taking a stripe's lock is an `Acquire` compare-exchange: the new holder sees every
//!   update of the previous holder. A `Relaxed` load before it is only a hint that
//!   avoids taking a busy line exclusively. Releasing is a `Release` store: it
//!   publishes this holder's updates to the next.
//! * the owner's write: the odd sequence number is stored `Relaxed` and followed by a
//!   `Release` fence, the cells are written `Relaxed`, the even number is stored
//!   `Release`. A copy loads the number `Acquire`, the cells `Relaxed`, then an
//!   `Acquire` fence and the number again: if any cell it read came from a later write,
//!   the fences make that write's odd number visible to the second load, so a torn copy
//!   is always detected. On x86 none of these is more than a plain `mov`.
//! * cells are read and written `Relaxed` under a lock or by the owner, which orders
//!   them; they are atomics so that a series is `Sync` without further `unsafe`.
//! * the owner word is read `Relaxed`: it changes only from no owner to an owner (by
//!   the owner itself) and in its pause count, and a stale read only sends the owner to
//!   the stripes once. The token lease orders an exited owner's writes before its
//!   successor's with the pool's mutex.
//! * the stripes pointer is installed with a `Release` compare-exchange and loaded with
//!   `Acquire`, so an observer that finds it sees initialised stripes.
//! * the reference count of `storage.rs` follows `Arc`: `Relaxed` increments, `Release`
//!   decrements, an `Acquire` fence before freeing.

mod native;
mod overflow;
mod owner;
mod scratch;
mod shard;
mod storage;
mod stripes;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::exemplar::ExemplarStore;
use super::{Exemplar, ExemplarsHeld, Metric, MetricError, TypedMetric, check_exemplar_labels};
use crate::exposition::values::F64TextMemo;
use crate::exposition::{BoundLabels, Encoder, Format, HistogramView, MetricKind, NativeBuckets};
use native::Native;
pub use native::NativeOptions;
use shard::View;
use storage::Storage;
use stripes::Stripes;

/// The bucket configuration shared by every series of a histogram family: the classic
/// bounds (with their label values, formatted once) and, if kept, how native buckets
/// are kept.
///
/// ```
/// use tinyprom::metrics::{Buckets, Histogram};
/// let buckets = Buckets::new(&[0.1, 0.5, 1.0]).unwrap();
/// // Two series validated once, sharing one configuration.
/// let reads = Histogram::with_buckets(buckets.clone());
/// let writes = Histogram::with_buckets(buckets);
/// reads.observe(0.3);
/// writes.observe(2.0);
/// assert_eq!(reads.buckets().bounds(), [0.1, 0.5, 1.0]);
/// assert!(reads.buckets().native_options().is_none());
/// assert!(Buckets::new(&[1.0, 0.5]).is_err()); // bounds must increase
/// ```
#[derive(Debug)]
pub struct Buckets {
    bounds: Box<[f64]>,
    /// The first [`SHORT`] bounds, padded with `+Inf`: the bounds of a short list
    /// (the usual handful), scanned where they lie instead of behind a pointer.
    short: [f64; SHORT],
    /// The bounds and `+Inf`, as the exposition formats spell them.
    labels: BoundLabels,
    native: Option<Native>,
    /// Cells of one shard (`shard.rs`), computed once: observing reads it.
    shard_len: usize,
}

/// Bounds lists up to this long are scanned from `Buckets::short`.
const SHORT: usize = 8;

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
        let with_inf: Vec<f64> = bounds.iter().copied().chain([f64::INFINITY]).collect();
        let mut short = [f64::INFINITY; SHORT];
        for (slot, &b) in short.iter_mut().zip(bounds) {
            *slot = b;
        }
        Ok(Arc::new(Buckets {
            bounds: bounds.into(),
            short,
            labels: BoundLabels::new(&with_inf),
            native: None,
            shard_len: shard::classic_len(bounds.len()),
        }))
    }

    /// Like [`Buckets::new`], and every series also keeps native buckets of the same
    /// observations (exposed in the protobuf format, for Prometheus' native
    /// histograms).
    ///
    /// ```
    /// use tinyprom::metrics::{Buckets, NativeOptions};
    /// let b = Buckets::with_native(&[0.1, 1.0], NativeOptions::new()).unwrap();
    /// assert_eq!(b.native_options(), Some(&NativeOptions::new()));
    /// assert!(Buckets::with_native(&[1.0], NativeOptions::new().max_buckets(1)).is_err());
    /// ```
    pub fn with_native(bounds: &[f64], native: NativeOptions) -> Result<Arc<Buckets>, MetricError> {
        let classic = Buckets::new(bounds)?;
        let classic = Arc::try_unwrap(classic).expect("just created, not shared");
        let native = Native::new(native)?;
        Ok(Arc::new(Buckets {
            shard_len: classic.shard_len + native.cells(),
            native: Some(native),
            ..classic
        }))
    }

    /// How native buckets are kept, if they are.
    pub fn native_options(&self) -> Option<&NativeOptions> {
        self.native.as_ref().map(Native::options)
    }

    #[inline]
    fn native(&self) -> Option<&Native> {
        self.native.as_ref()
    }

    /// The finite upper bounds, in increasing order (`+Inf` is implied).
    pub fn bounds(&self) -> &[f64] {
        &self.bounds
    }

    /// Index of the first bucket whose bound is `>= v`; `bounds().len()` for values
    /// only the `+Inf` bucket holds (larger than every bound, or NaN).
    ///
    /// The first [`SHORT`] bounds are scanned where they lie (a short linear scan
    /// beats binary search for the usual handful of buckets). A short list is padded
    /// with `+Inf`, which stops the scan at `bounds().len()` for every value but NaN;
    /// the bounds of a long list are its own first ones, and a value above them all
    /// is looked for among the rest. NaN compares false everywhere and belongs to
    /// `+Inf`.
    #[inline]
    fn index(&self, v: f64) -> usize {
        match self.short_index(v) {
            Some(j) => j,
            None => self.index_beyond_short(v),
        }
    }

    /// [`Buckets::index`] when the first [`SHORT`] bounds decide it: not for NaN, nor
    /// for a value above them all in a longer list.
    #[inline(always)]
    fn short_index(&self, v: f64) -> Option<usize> {
        self.short.iter().position(|&b| v <= b)
    }

    /// [`Buckets::index`] of NaN, or of a value above the first [`SHORT`] bounds.
    #[inline(never)]
    fn index_beyond_short(&self, v: f64) -> usize {
        if v.is_nan() {
            self.bounds.len()
        } else {
            self.bounds.partition_point(|&b| b < v)
        }
    }
}

/// A histogram series: counts observations into buckets; observing never waits for
/// another thread.
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
///
/// ```
/// use tinyprom::metrics::Histogram;
/// let h = Histogram::new(&[1.0, 5.0]).unwrap();
/// for v in [0.5, 2.0, 7.0] {
///     h.observe(v);
/// }
/// let snapshot = h.snapshot();
/// assert_eq!(snapshot.cumulative, [1, 2, 3]); // <= 1, <= 5, +Inf
/// assert_eq!((snapshot.count, snapshot.sum), (3, 9.5));
/// assert!(snapshot.native.is_none());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// Cumulative counts per bucket, the last one being `+Inf` (equal to `count`).
    pub cumulative: Vec<u64>,
    /// Sum of all observed values.
    pub sum: f64,
    /// Number of observations.
    pub count: u64,
    /// The native buckets of the same observations, if kept.
    pub native: Option<NativeSnapshot>,
}

/// A copy of a series' native buckets.
///
/// ```
/// use tinyprom::metrics::{Histogram, NativeOptions};
/// let h = Histogram::with_native(&[1.0], NativeOptions::new()).unwrap();
/// for v in [1.5, 1.5, -3.0, 0.0] {
///     h.observe(v);
/// }
/// let native = h.snapshot().native.unwrap();
/// assert_eq!(native.schema, 3);
/// assert_eq!(native.zero_count, 1);
/// assert_eq!(native.positive.len(), 1); // both 1.5s in one bucket
/// assert_eq!(native.positive[0].1, 2);
/// assert_eq!(native.negative.len(), 1);
/// assert_eq!(native.total(), 4);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct NativeSnapshot {
    /// The resolution (lower than configured once the bucket limit was hit).
    pub schema: i32,
    /// The zero bucket's threshold.
    pub zero_threshold: f64,
    /// Observations in the zero bucket.
    pub zero_count: u64,
    /// `(index, count)` of the non-empty buckets of positive values, by index.
    pub positive: Vec<(i32, u64)>,
    /// The same for negative values.
    pub negative: Vec<(i32, u64)>,
}

impl NativeSnapshot {
    /// Observations in native buckets, the zero bucket included: `_count` less NaN
    /// observations.
    pub fn total(&self) -> u64 {
        self.zero_count
            + self
                .positive
                .iter()
                .chain(&self.negative)
                .map(|(_, n)| n)
                .sum::<u64>()
    }
}

impl Histogram {
    /// A histogram with the given upper bounds (see [`Buckets::new`]).
    pub fn new(bounds: &[f64]) -> Result<Histogram, MetricError> {
        Ok(Histogram::with_buckets(Buckets::new(bounds)?))
    }

    /// A histogram with classic and native buckets (see [`Buckets::with_native`]).
    pub fn with_native(bounds: &[f64], native: NativeOptions) -> Result<Histogram, MetricError> {
        Ok(Histogram::with_buckets(Buckets::with_native(
            bounds, native,
        )?))
    }

    /// A histogram sharing already validated bounds (what families use).
    pub fn with_buckets(buckets: Arc<Buckets>) -> Histogram {
        // A series that may reset has no owner: a reset zeroes every shard, and only
        // the owner may write the base. Its observations all go to the stripes, and
        // its reset clock runs in the collected shard.
        let resets = buckets.native().is_some_and(Native::resets);
        let storage = Storage::new(buckets, if resets { owner::NEVER } else { owner::NONE });
        if resets {
            let stripes = storage.install_stripes(1.0);
            if let Some(native) = shard::lock(stripes.collected(), storage.buckets()).native() {
                native.start_reset_clock();
            }
        }
        Histogram { storage }
    }

    /// The bucket bounds.
    pub fn buckets(&self) -> &Arc<Buckets> {
        self.storage.buckets_arc()
    }

    /// Records one value: plain loads and stores on the thread that owns the series
    /// (the first to observe it), one atomic instruction on any other; no allocation
    /// (but once per series, when a second thread first observes it). Never waits for
    /// another thread: other threads use the stripes, a taken stripe sends the
    /// observer to the next, and every stripe taken to the overflow shard.
    ///
    /// NaN counts towards `_count` and the `+Inf` bucket only, and makes `_sum` NaN, as
    /// in the Go client.
    #[inline]
    pub fn observe(&self, v: f64) {
        let storage = &self.storage;
        let (buckets, cells) = storage.buckets_and_cells();
        // Every call below is the last thing done on its path, so no value has to
        // survive a call (see `Native::record_fast`): a value past the short bounds
        // (or NaN), a thread that does not own the series (or has no token yet: it
        // owns nothing), and what the native fast path leaves all go out of line.
        let Some(bucket) = buckets.short_index(v) else {
            return self.observe_beyond_short(v);
        };
        if !owner::owns(storage.owner(), owner::current()) {
            return self.observe_shared(bucket, v);
        }
        // One branch on the configuration, then a path compiled for it: the classic
        // path carries no native code; the native one has its recording inlined, with
        // the configuration found once.
        //
        // SAFETY (both): `short_index` returns at most `bounds().len()`: a position in
        // the first `SHORT` bounds, where a list shorter than that is padded with
        // `+Inf`, which every value it returns for (not NaN) is at most; `native` is
        // this histogram's own configuration.
        match buckets.native() {
            None => unsafe { shard::write_owned(cells, buckets).record_classic(bucket, v) },
            Some(native) => unsafe {
                shard::write_owned(cells, buckets).record_native(native, bucket, v)
            },
        }
    }

    /// [`Histogram::observe`] of a value the short scan does not place: NaN, or one
    /// above the first [`SHORT`] bounds of a long list.
    #[cold]
    #[inline(never)]
    fn observe_beyond_short(&self, v: f64) {
        let storage = &self.storage;
        let (buckets, cells) = storage.buckets_and_cells();
        let bucket = buckets.index(v);
        if owner::owns(storage.owner(), owner::token()) {
            shard::write_owned(cells, buckets).record_either(bucket, v);
        } else {
            self.observe_shared(bucket, v);
        }
    }

    /// Not the owner (or no token yet): take the token, and the base if this thread
    /// owns it or nobody does, else observe into a stripe (allocating the stripes the
    /// first time).
    #[inline(never)]
    fn observe_shared(&self, bucket: usize, v: f64) {
        let storage = &self.storage;
        let buckets = storage.buckets();
        let me = owner::token();
        if owner::owns(storage.owner(), me) || owner::claim(storage.owner(), me) {
            shard::write_owned(storage.cells(), buckets).record_either(bucket, v);
            return;
        }
        let stripes = match storage.stripes() {
            Some(stripes) => stripes,
            None => storage.install_stripes(v),
        };
        observe_striped(stripes, buckets, bucket, v);
    }

    /// Records `v` as [`Histogram::observe`] does, and `labels` (a trace id,
    /// typically) as the exemplar of the classic bucket `v` falls in (replacing the
    /// one before) and, with native buckets, in the series' small set of native
    /// exemplars (see [`NativeOptions::max_exemplars`]). Costs a clock read and a
    /// try-lock more than `observe`; the plain [`Histogram::observe`] costs nothing
    /// more for the exemplars a series holds.
    ///
    /// The observation is always recorded. The exemplar is not when the labels are
    /// refused ([`MetricError::ExemplarTooLong`] past [`MAX_EXEMPLAR_CHARS`](super::MAX_EXEMPLAR_CHARS)
    /// characters, or an invalid label name: the error says which), when `v` is NaN
    /// (it lies in no bucket's range), or when a scrape is reading the exemplars at
    /// that moment (observing never waits).
    ///
    /// ```
    /// use tinyprom::exposition::Format;
    /// use tinyprom::metrics::{Histogram, Registry};
    /// let registry = Registry::new();
    /// let latency = Histogram::new(&[0.1, 1.0]).unwrap();
    /// registry.register("job_duration_seconds", "Job latency.", latency.clone()).unwrap();
    /// latency.observe_with_exemplar(0.25, &[("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736")]).unwrap();
    /// let om = registry.render(Format::OpenMetrics);
    /// assert!(om.contains("job_duration_seconds_bucket{le=\"1.0\"} 1 # {trace_id=\"4bf92f3577b34da6a3ce929d0e0e4736\"} 0.25 "));
    /// assert!(latency.observe_with_exemplar(0.5, &[("id", &"x".repeat(200))]).is_err());
    /// assert_eq!(latency.snapshot().count, 2, "the observation counts anyway");
    /// ```
    pub fn observe_with_exemplar(
        &self,
        v: f64,
        labels: &[(&str, &str)],
    ) -> Result<(), MetricError> {
        let checked = check_exemplar_labels(labels);
        self.observe(v);
        if checked.is_ok() {
            self.store_exemplar(v, labels);
        }
        checked
    }

    /// [`Histogram::observe_with_exemplar`] for labels the caller has checked
    /// ([`check_exemplar_labels`]), such as a trace's ids under fixed names: the
    /// server's path for a traced request.
    pub(crate) fn observe_with_checked_exemplar(&self, v: f64, labels: &[(&str, &str)]) {
        debug_assert!(check_exemplar_labels(labels).is_ok());
        self.observe(v);
        self.store_exemplar(v, labels);
    }

    /// Stores the exemplar of an observation of `v` just made (not for NaN, which lies
    /// in no bucket's range).
    fn store_exemplar(&self, v: f64, labels: &[(&str, &str)]) {
        if v.is_nan() {
            return;
        }
        let buckets = self.storage.buckets();
        let store = match self.storage.exemplars() {
            Some(store) => store,
            None => self.storage.install_exemplars(|| {
                let native = buckets.native_options().map_or(0, NativeOptions::exemplars);
                ExemplarStore::new(buckets.bounds().len() + 1, native)
            }),
        };
        store.offer(buckets.index(v), labels, v);
    }

    /// The exemplar of each classic bucket (`+Inf` last), and the native exemplars;
    /// `None` before the series' first exemplar.
    ///
    /// ```
    /// let h = tinyprom::metrics::Histogram::new(&[1.0]).unwrap();
    /// assert!(h.exemplars().is_none());
    /// h.observe_with_exemplar(3.0, &[("trace_id", "a")]).unwrap();
    /// let (classic, native) = h.exemplars().unwrap();
    /// assert!(classic[0].is_none());
    /// assert_eq!(classic[1].as_ref().unwrap().value(), 3.0);
    /// assert!(native.is_empty(), "no native buckets");
    /// ```
    pub fn exemplars(&self) -> Option<(Vec<Option<Exemplar>>, Vec<Exemplar>)> {
        let held = self.storage.exemplars()?.read();
        Some((held.classic().to_vec(), held.native().to_vec()))
    }

    /// When the series was created (its start timestamp in the protobuf format, and
    /// its `_created` sample in OpenMetrics when asked for).
    pub fn created(&self) -> SystemTime {
        self.storage.created()
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
    /// [`Timer::observe`](super::Timer::observe)d).
    pub fn start_timer(&self) -> HistogramTimer {
        super::Timer::start(self.clone())
    }

    /// Takes a consistent snapshot (the same procedure a scrape uses).
    pub fn snapshot(&self) -> HistogramSnapshot {
        self.collect(|base| {
            let mut acc = 0u64;
            let cumulative = base
                .buckets()
                .map(|n| {
                    acc = acc.wrapping_add(n);
                    acc
                })
                .collect();
            let native = base.native().map(|cells| {
                let view = cells.view();
                NativeSnapshot {
                    schema: view.schema,
                    zero_threshold: view.zero_threshold,
                    zero_count: view.zero_count,
                    positive: view.positive.occupied().collect(),
                    negative: view.negative.occupied().collect(),
                }
            });
            HistogramSnapshot {
                cumulative,
                sum: base.sum(),
                count: acc,
                native,
            }
        })
    }

    /// Reads the owner's base in place if that is all the series holds (`read` may
    /// then run more than once: only its last result counts). Otherwise copies the
    /// owner's base into a scratch shard; if the series has stripes,
    /// locks the collected shard, moves every stripe and the overflow shard into it,
    /// resets the series if its native buckets ask for it (see
    /// [`NativeOptions::min_reset_duration`]) and adds it to the copy; then hands the
    /// copy to `read`. See the module documentation.
    fn collect<R>(&self, mut read: impl FnMut(&View<'_>) -> R) -> R {
        let storage = &self.storage;
        let buckets = storage.buckets();
        // The common case, a series only its owner observes and without native
        // buckets: read the base where it is, with no copy.
        if storage.stripes().is_none()
            && buckets.native().is_none()
            && let Some(result) = shard::read_in_place(storage.cells(), buckets, &mut read)
        {
            return result;
        }
        scratch::with(buckets, storage.cells().len(), |out| {
            shard::read_owned(storage.cells(), storage.owner(), out);
            if let Some(stripes) = storage.stripes() {
                let collected = shard::lock(stripes.collected(), buckets);
                for stripe in stripes.iter() {
                    shard::lock(stripe, buckets).drain_into(&collected);
                }
                stripes.overflow().drain_into(&collected);
                if collected.native().is_some_and(|native| native.reset_due()) {
                    // Still holding the collected shard: every stripe back to a new
                    // shard's state (what was observed into it since its drain goes
                    // too, as it would have gone into the collected shard), the
                    // overflow shard emptied, then the collected shard itself. The
                    // base of a series that resets is never written (it has no owner).
                    for stripe in stripes.iter() {
                        shard::lock(stripe, buckets).reset();
                    }
                    stripes.overflow().drain_into(&collected);
                    collected.reset();
                }
                collected.add_into(out);
            }
            read(out)
        })
    }

    /// When the series was created or last reset (see `NativeCells::last_reset`).
    #[cfg(test)]
    fn last_reset(&self) -> Option<u64> {
        let stripes = self.storage.stripes()?;
        shard::lock(stripes.collected(), self.storage.buckets())
            .native()
            .map(|n| n.last_reset())
    }
}

/// Records into the calling thread's stripe, moving to the next one while they are
/// taken, and into the overflow shard if every one is: it never waits. Out of line, so
/// that the uncontended path of `observe` stays small.
#[inline(never)]
fn observe_striped(stripes: &Stripes, buckets: &Buckets, bucket: usize, v: f64) {
    for step in 0..stripes.len() {
        if let Some(guard) = shard::try_lock(stripes.for_this_thread(step), buckets) {
            guard.record_either(bucket, v);
            if step != 0 {
                // Its own stripe was taken: start elsewhere next time, so that
                // colliding threads part.
                stripes::move_probe();
            }
            return;
        }
    }
    stripes.overflow().record(buckets, bucket, v);
}

/// A shard (a copy, or the base read in place), as the encoder reads it.
impl HistogramView for View<'_> {
    fn bounds(&self) -> &BoundLabels {
        &self.bucket_config().labels
    }

    fn counts(&self) -> impl Iterator<Item = u64> {
        self.buckets()
    }

    fn sum(&self) -> f64 {
        View::sum(self)
    }

    fn native(&self) -> Option<NativeBuckets<'_>> {
        View::native(self).map(|cells| cells.view())
    }
}

/// A collected shard with the rest of its series the encoder writes: the exemplars
/// (held locked) and the creation time.
struct Series<'a, 'v> {
    base: &'a View<'v>,
    exemplars: Option<&'a ExemplarsHeld>,
    storage: &'a Storage,
}

impl HistogramView for Series<'_, '_> {
    fn bounds(&self) -> &BoundLabels {
        self.base.bounds()
    }

    fn counts(&self) -> impl Iterator<Item = u64> {
        self.base.counts()
    }

    fn sum(&self) -> f64 {
        HistogramView::sum(self.base)
    }

    fn native(&self) -> Option<NativeBuckets<'_>> {
        HistogramView::native(self.base)
    }

    fn exemplars(&self) -> Option<&ExemplarsHeld> {
        self.exemplars
    }

    fn created(&self) -> Option<SystemTime> {
        Some(self.storage.created())
    }
}

impl Metric for Histogram {
    fn kind(&self) -> MetricKind {
        MetricKind::Histogram
    }

    fn encode(&self, name: &str, labels: &str, enc: &mut Encoder<'_>) {
        // A read in place may run more than once: each run starts where the first did.
        let start = enc.len();
        let memo = F64TextMemo::new(self.storage.sum_memo());
        // Locked before the counts are read: every exemplar shown was counted (see
        // `exemplar.rs`). Text 0.0.4 has no exemplars: not locked for it.
        let exemplars = match enc.format() {
            Format::Text => None,
            _ => self.storage.exemplars().map(ExemplarStore::read),
        };
        self.collect(|base| {
            enc.truncate(start);
            let series = Series {
                base,
                exemplars: exemplars.as_deref(),
                storage: &self.storage,
            };
            enc.histogram_memo(name, labels, &series, Some(&memo))
        });
    }

    #[inline]
    fn prefetch(&self) {
        self.storage.prefetch();
    }
}

impl TypedMetric for Histogram {
    const KIND: MetricKind = MetricKind::Histogram;
}

/// Times a scope into a [`Histogram`]; see [`Timer`](super::Timer).
///
/// ```
/// use tinyprom::metrics::{Histogram, HistogramTimer};
/// let latency = Histogram::new(&[0.1, 1.0]).unwrap();
/// {
///     let _timer: HistogramTimer = latency.start_timer();
///     // ... the work being timed ...
/// } // recorded here
/// assert_eq!(latency.snapshot().count, 1);
/// ```
pub type HistogramTimer = super::Timer<Histogram>;

impl super::timer::Observe for Histogram {
    fn observe(&self, v: f64) {
        Histogram::observe(self, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::Format;
    use std::time::Instant;

    #[test]
    fn the_bucket_index_is_the_first_bound_at_or_above_the_value() {
        let long: Vec<f64> = (0..20).map(|i| f64::from(i) * 0.5 - 3.0).collect();
        for bounds in [
            &[][..],
            &[1.0],
            &[0.01, 0.1, 0.5, 2.0],
            &long[..8],
            &long[..9],
            &long,
        ] {
            let buckets = Buckets::new(bounds).unwrap();
            let mut values = vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY, f64::MAX, -0.0];
            for &b in bounds {
                values.extend([b, b - 1e-9, b + 1e-9]);
            }
            for v in values {
                let want = bounds.iter().position(|&b| v <= b).unwrap_or(bounds.len());
                assert_eq!(buckets.index(v), want, "bounds {bounds:?}, value {v}");
            }
        }
    }

    fn http_buckets() -> Histogram {
        Histogram::new(&[0.01, 0.1, 0.5, 2.0]).unwrap()
    }

    /// With the base owned by another thread and every stripe and the collected shard
    /// held (as by preempted observers and a scrape), an observation must still
    /// complete at once, through the overflow shard, and be counted exactly once.
    #[test]
    fn observers_never_wait_even_when_every_shard_is_taken() {
        let h = Histogram::new(&[1.0]).unwrap();
        h.observe(0.75); // this thread owns the base from now on
        let stripes = h.storage.install_stripes(1.0);
        let buckets = h.storage.buckets();
        let held: Vec<_> = stripes.iter().map(|s| shard::lock(s, buckets)).collect();
        let base = shard::lock(stripes.collected(), buckets);
        let (tx, rx) = std::sync::mpsc::channel();
        let observer = h.clone();
        std::thread::spawn(move || {
            observer.observe(0.5);
            observer.observe(2.0);
            let _ = tx.send(());
        });
        assert!(
            rx.recv_timeout(Duration::from_secs(5)).is_ok(),
            "an observer waited for a held shard"
        );
        drop(base);
        drop(held);
        let s = h.snapshot();
        assert_eq!(s.cumulative, vec![2, 3]);
        assert_eq!(s.sum, 3.25);
        h.observe(0.25);
        assert_eq!(h.snapshot().count, 4, "the overflow is not counted twice");
    }

    #[test]
    fn openmetrics_leaves_out_a_nan_or_negative_sum() {
        let render = |h: &Histogram, format: Format| {
            let mut buf = Vec::new();
            h.encode("h", "", &mut Encoder::new(&mut buf, format));
            String::from_utf8(buf).unwrap()
        };
        let h = Histogram::new(&[1.0]).unwrap();
        h.observe(-2.0);
        assert!(render(&h, Format::Text).contains("h_sum -2\n"));
        let om = render(&h, Format::OpenMetrics);
        assert!(!om.contains("h_sum") && !om.contains("h_count"), "{om}");
        assert!(om.contains("h_bucket{le=\"+Inf\"} 1\n"), "{om}");
        h.observe(f64::NAN);
        assert!(!render(&h, Format::OpenMetrics).contains("h_sum"));
        let ok = Histogram::new(&[1.0]).unwrap();
        ok.observe(0.5);
        assert!(render(&ok, Format::OpenMetrics).contains("h_sum 0.5\n"));
    }

    /// Threads observe with exemplars (values on and around every bound, NaN and
    /// infinities) while this thread scrapes: in every OpenMetrics scrape each
    /// exemplar's value lies in its bucket, that bucket counted it, and the native
    /// set stays within its bound.
    #[test]
    fn every_scraped_exemplar_lies_in_its_bucket() {
        let bounds = [0.01, 0.1, 0.5, 2.0];
        let h = Histogram::with_native(&bounds, NativeOptions::new().max_exemplars(4)).unwrap();
        let mut values = vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.0, -1.0, 1e9];
        for b in bounds {
            values.extend([
                b,
                f64::from_bits(b.to_bits() + 1),
                f64::from_bits(b.to_bits() - 1),
            ]);
        }
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            for t in 0..3 {
                let (h, values, stop) = (h.clone(), &values, &stop);
                s.spawn(move || {
                    let mut i = t;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) && i < 5_000_000 {
                        let v = values[i % values.len()];
                        h.observe_with_exemplar(v, &[("i", &i.to_string())])
                            .unwrap();
                        i += 3;
                    }
                });
            }
            let mut seen = 0;
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut scrapes = 0;
            // Threads may start late on a busy machine: scrape until exemplars came.
            while scrapes < 2_000 || (seen < 1_000 && Instant::now() < deadline) {
                scrapes += 1;
                let mut buf = Vec::new();
                h.encode("h", "", &mut Encoder::new(&mut buf, Format::OpenMetrics));
                let text = String::from_utf8(buf).unwrap();
                let mut below = f64::NEG_INFINITY;
                for line in text.lines().filter(|l| l.starts_with("h_bucket")) {
                    let le = line.split('"').nth(1).unwrap();
                    let bound: f64 = if le == "+Inf" {
                        f64::INFINITY
                    } else {
                        le.parse().unwrap()
                    };
                    if let Some((sample, exemplar)) = line.split_once(" # ") {
                        let count: u64 = sample.rsplit(' ').next().unwrap().parse().unwrap();
                        let value: f64 = exemplar.split(' ').nth(1).unwrap().parse().unwrap();
                        // The first bucket holds -Inf too.
                        let above = value > below || value == f64::NEG_INFINITY;
                        assert!(above && value <= bound, "{line}");
                        assert!(count > 0, "{line}");
                        seen += 1;
                    }
                    below = bound;
                }
                let (_, native) = h.exemplars().unwrap_or_default();
                assert!(native.len() <= 4);
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            assert!(seen > 0, "no exemplar was scraped");
        });
        // A thread may have had no time to run: one more pass fills every bucket.
        for &v in &values {
            h.observe_with_exemplar(v, &[("i", "last")]).unwrap();
        }
        let (classic, native) = h.exemplars().unwrap();
        assert_eq!(
            classic.iter().flatten().count(),
            bounds.len() + 1,
            "{classic:?}"
        );
        assert_eq!(native.len(), 4);
        assert!(native.iter().all(|e| !e.value().is_nan()));
    }

    #[test]
    fn protobuf_carries_bucket_and_native_exemplars_and_the_start() {
        let h = Histogram::with_native(&[1.0], NativeOptions::new()).unwrap();
        h.observe(0.5);
        let plain = {
            let mut buf = Vec::new();
            let mut enc = Encoder::new(&mut buf, Format::Protobuf);
            enc.family("h", "H.", MetricKind::Histogram, None);
            h.encode("h", "", &mut enc);
            enc.finish();
            buf
        };
        h.observe_with_exemplar(3.0, &[("trace_id", "abc")])
            .unwrap();
        let mut buf = Vec::new();
        let mut enc = Encoder::new(&mut buf, Format::Protobuf);
        enc.family("h", "H.", MetricKind::Histogram, None);
        h.encode("h", "", &mut enc);
        enc.finish();
        // The +Inf bucket is written for its exemplar, and the exemplar again in the
        // native set: the label pair twice.
        let pair = b"\x0a\x08trace_id\x12\x03abc";
        assert_eq!(buf.windows(pair.len()).filter(|w| w == pair).count(), 2);
        assert!(!plain.windows(pair.len()).any(|w| w == pair));
        let mut text = Vec::new();
        h.encode("h", "", &mut Encoder::new(&mut text, Format::Text));
        assert!(
            !String::from_utf8(text).unwrap().contains('#'),
            "text 0.0.4 has none"
        );
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
        striped.storage.install_stripes(1.0);
        assert!(striped.storage.stripes().is_some());
        assert_never_torn(striped);
        // A series striped mid-way keeps what it held before the stripes.
        let h = http_buckets();
        h.observe(0.05);
        assert_eq!(h.snapshot().count, 1);
        h.storage.install_stripes(1.0);
        h.observe(0.3);
        let after = h.snapshot();
        assert_eq!(after.cumulative, vec![0, 1, 2, 2, 2]);
        assert!((after.sum - 0.35).abs() < 1e-12);
    }

    fn native_http_buckets() -> Histogram {
        Histogram::with_native(&[0.01, 0.1, 0.5, 2.0], NativeOptions::new()).unwrap()
    }

    /// Native buckets live in the same shards: every snapshot's native total equals its
    /// count, with the base alone and with stripes.
    #[test]
    fn concurrent_snapshots_of_native_series_are_never_torn() {
        assert_never_torn(native_http_buckets());
        let striped = native_http_buckets();
        striped.storage.install_stripes(0.05);
        assert_never_torn(striped);
    }

    /// Resets (a series outgrowing its buckets) leave every snapshot consistent, with
    /// the base alone and with stripes.
    #[test]
    fn concurrent_snapshots_of_resetting_native_series_are_never_torn() {
        let resetting = || {
            let options = NativeOptions::new()
                .max_buckets(8)
                .min_reset_duration(Duration::from_micros(200));
            Histogram::with_native(&[0.01, 0.1, 0.5, 2.0], options).unwrap()
        };
        assert_never_torn_with(resetting(), true);
        let striped = resetting();
        striped.storage.install_stripes(0.05);
        assert_never_torn_with(striped, true);
    }

    /// The owner's observe path (fast path, first counts in a cell, values outside
    /// the window, the schema lowered as the range grows, the zero bucket, negative
    /// values, NaN) puts every value in the bucket the logarithm gives at the
    /// schema the series ends at, and the classic buckets where the bounds put them.
    #[test]
    fn the_owners_native_buckets_hold_each_value_where_the_logarithm_puts_it() {
        let bounds = [0.01, 0.1, 0.5, 2.0];
        let h = Histogram::with_native(&bounds, NativeOptions::new().max_buckets(40)).unwrap();
        let mut rng = fastrand::Rng::with_seed(7);
        let mut values: Vec<f64> = (0..3_000)
            // Widening in steps: 2^-3..2^3 first, out to 2^-12..2^12, so the window
            // moves and the schema drops while values keep coming.
            .map(|i| (rng.f64() * 2.0 - 1.0) * (3.0 + f64::from(i / 300)))
            .map(f64::exp2)
            .collect();
        // (Not +Inf: its bucket, that of f64::MAX, cannot share a 40-bucket window
        // with these even at schema -4, and then goes to the window's top bucket.)
        values.extend([0.0, -0.5, f64::NAN, 0.01, 2.0]);
        for &v in &values {
            h.observe(v);
        }
        let s = h.snapshot();
        let native = s.native.clone().unwrap();
        assert!(
            native.schema < 3,
            "the range forced a lower schema: {}",
            native.schema
        );
        let mut expected = std::collections::BTreeMap::new();
        let scale = 2f64.powi(native.schema);
        for &v in values.iter().filter(|v| **v > 0.0 && v.is_finite()) {
            let exact = v.log2() * scale;
            if (exact - exact.round()).abs() < 1e-9 {
                // On a boundary: the logarithm's rounding decides, not the index.
                *expected.entry(exact.round() as i32).or_insert(0u64) += 1;
                continue;
            }
            *expected.entry(exact.ceil() as i32).or_insert(0u64) += 1;
        }
        let got: std::collections::BTreeMap<i32, u64> = native.positive.iter().copied().collect();
        assert_eq!(
            got, expected,
            "schema {} zero threshold {}",
            native.schema, native.zero_threshold
        );
        assert_eq!(native.negative, vec![((-scale).ceil() as i32, 1)], "-0.5");
        assert_eq!(native.zero_count, 1);
        assert_eq!(s.count, values.len() as u64);
        let mut classic = vec![0u64; bounds.len() + 1];
        for &v in &values {
            classic[bounds.iter().position(|&b| v <= b).unwrap_or(bounds.len())] += 1;
        }
        let cumulative: Vec<u64> = classic
            .iter()
            .scan(0, |acc, n| {
                *acc += n;
                Some(*acc)
            })
            .collect();
        assert_eq!(s.cumulative, cumulative);
    }

    /// The overflow shard's native buckets reach the base too.
    #[test]
    fn native_observations_through_the_overflow_shard_are_counted() {
        let h = native_http_buckets();
        let stripes = h.storage.install_stripes(0.05);
        // The base is owned by a thread that stays alive meanwhile (a thread that
        // exits passes its ownership on): observers use the stripes.
        let (owned, release) = (std::sync::mpsc::channel(), std::sync::mpsc::channel::<()>());
        let h2 = h.clone();
        let owner = std::thread::spawn(move || {
            h2.observe(f64::NAN);
            owned.0.send(()).unwrap();
            let _ = release.1.recv();
        });
        owned.1.recv().unwrap();
        let buckets = h.storage.buckets();
        let held: Vec<_> = stripes.iter().map(|s| shard::lock(s, buckets)).collect();
        let base = shard::lock(stripes.collected(), buckets);
        let observer = h.clone();
        std::thread::spawn(move || {
            for v in [0.04, 0.05, 0.06, 0.0, -1.0, 1e9] {
                observer.observe(v);
            }
        })
        .join()
        .unwrap();
        drop(base);
        drop(held);
        release.0.send(()).unwrap();
        owner.join().unwrap();
        let s = h.snapshot();
        let native = s.native.unwrap();
        assert_eq!(
            (s.count, native.total()),
            (7, 6),
            "NaN is in no native bucket"
        );
        assert_eq!(native.zero_count, 1);
        assert_eq!(native.negative.iter().map(|b| b.1).sum::<u64>(), 1);
        let at = |v: f64| {
            native
                .positive
                .iter()
                .any(|&(i, _)| i == (8.0 * f64::log2(v)).ceil() as i32)
        };
        assert!(at(0.04) && at(0.05) && at(0.06), "{native:?}");
    }

    /// With a minimum reset duration, a series that outgrew its buckets keeps every
    /// observation at a lower resolution until that duration has passed; the next
    /// snapshot (a scrape) then resets it, classic buckets and all, and it observes at
    /// the configured resolution again. With stripes, they are reset too.
    #[test]
    fn a_series_that_outgrew_its_buckets_resets_after_the_minimum_duration() {
        let min = Duration::from_millis(300);
        for striped in [false, true] {
            let options = NativeOptions::new().max_buckets(8).min_reset_duration(min);
            let h = Histogram::with_native(&[1.0], options).unwrap();
            let created = Instant::now();
            if striped {
                h.storage.install_stripes(1.0);
            }
            // 1.0 and 4.0 are 16 schema-3 buckets apart: more than 8.
            h.observe(1.0);
            h.observe(4.0);
            let lowered = h.snapshot();
            let native = lowered.native.as_ref().unwrap();
            assert_eq!(lowered.count, 2, "striped: {striped}");
            assert!(native.schema < 3, "{native:?}");
            assert_eq!(native.total(), 2);
            if created.elapsed() < min {
                // Too early: a second snapshot still holds both observations.
                assert_eq!(h.snapshot(), lowered, "striped: {striped}");
            }
            std::thread::sleep(min.saturating_sub(created.elapsed()) + Duration::from_millis(20));
            let reset = h.snapshot();
            assert_eq!((reset.count, reset.sum), (0, 0.0), "striped: {striped}");
            assert_eq!(reset.cumulative, vec![0, 0]);
            let native = reset.native.unwrap();
            assert_eq!((native.schema, native.total()), (3, 0));
            // Back at the configured resolution, and the clock restarted: outgrowing
            // again right away lowers the resolution but does not reset.
            h.observe(1.5);
            let after = h.snapshot();
            assert_eq!(after.count, 1);
            assert_eq!(after.native.as_ref().unwrap().schema, 3);
            h.observe(6.0);
            let again = h.snapshot();
            assert_eq!(again.count, 2);
            assert!(again.native.unwrap().schema < 3);
        }
        // Without a minimum duration (the default) a series never resets.
        let h = Histogram::with_native(&[1.0], NativeOptions::new().max_buckets(8)).unwrap();
        h.observe(1.0);
        h.observe(4.0);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(h.snapshot().count, 2);
    }

    /// An owner observing as fast as it can must not starve a scrape: after a few
    /// lost races the scrape pauses it (the owner observes into the stripes
    /// meanwhile), and every copy is whole.
    #[test]
    fn a_busy_owner_cannot_starve_a_scrape() {
        for h in [http_buckets(), native_http_buckets()] {
            let stop = std::sync::atomic::AtomicBool::new(false);
            std::thread::scope(|s| {
                let owner = h.clone();
                let stop = &stop;
                let busy = s.spawn(move || {
                    let mut n = 0u64;
                    // Bounded: the scrapes below take well under a second; the cap
                    // ends the loop on a machine that never runs the two at once.
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 2_000_000_000 {
                        owner.observe(0.05);
                        n += 1;
                    }
                    n
                });
                let started = Instant::now();
                while h.snapshot().count == 0 && started.elapsed() < Duration::from_secs(10) {
                    std::thread::yield_now();
                }
                let mut previous = 0;
                for _ in 0..2_000 {
                    let snap = h.snapshot();
                    assert_eq!(snap.cumulative[1], snap.count, "{snap:?}");
                    if let Some(native) = &snap.native {
                        assert_eq!(native.total(), snap.count, "{snap:?}");
                    }
                    assert!((snap.sum - 0.05 * snap.count as f64).abs() < 1e-6 * snap.count as f64);
                    assert!(snap.count >= previous);
                    previous = snap.count;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(20),
                    "scrapes starved"
                );
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
                let observed = busy.join().unwrap();
                assert_eq!(h.snapshot().count, observed);
            });
        }
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
        assert_never_torn_with(h, false);
    }

    /// `resets`: the series resets now and then, so counts may drop between snapshots
    /// (and must, at least once); every snapshot must still be consistent.
    fn assert_never_torn_with(h: Histogram, resets: bool) {
        let threads = 4;
        // With resets, observers run until a snapshot has seen one (bounded below), so
        // a slow or busy machine cannot end the test before the first reset.
        let per_thread = if resets { 100_000_000 } else { 200_000u64 };
        let values = [0.005, 0.05, 0.3, 1.0, 5.0];
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            for t in 0..threads {
                let h = h.clone();
                let stop = &stop;
                s.spawn(move || {
                    for i in 0..per_thread {
                        if resets && stop.load(std::sync::atomic::Ordering::Relaxed) {
                            break;
                        }
                        // Every value is an exact multiple of 1/1024 so sums are exact.
                        let v = values[(i as usize + t) % values.len()];
                        h.observe((v * 1024.0f64).round() / 1024.0);
                    }
                });
            }
            let mut previous = 0;
            let mut dropped = 0;
            let mut last_clock = h.last_reset();
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            let mut snapshots = 0;
            while snapshots < 5_000
                || (resets && dropped == 0 && std::time::Instant::now() < deadline)
            {
                snapshots += 1;
                let snap = h.snapshot();
                assert_eq!(*snap.cumulative.last().unwrap(), snap.count);
                if let Some(native) = &snap.native {
                    assert_eq!(native.total(), snap.count, "{snap:?}");
                }
                assert!(snap.cumulative.windows(2).all(|w| w[0] <= w[1]), "{snap:?}");
                // A reset restarts the collected shard's reset clock; the count alone does not
                // show every reset (observations after it can outnumber those before).
                let clock = h.last_reset();
                if snap.count < previous || clock != last_clock {
                    dropped += 1;
                }
                last_clock = clock;
                assert!(resets || snap.count >= previous);
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
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            assert!(!resets || dropped > 0, "no reset seen");
        });
        if resets {
            return;
        }
        let snap = h.snapshot();
        assert_eq!(snap.count, threads as u64 * per_thread);
        let expected_sum: f64 = (0..threads)
            .flat_map(|t| (0..per_thread).map(move |i| values[(i as usize + t) % values.len()]))
            .map(|v| (v * 1024.0f64).round() / 1024.0)
            .sum();
        assert_eq!(snap.sum, expected_sum);
    }
}
