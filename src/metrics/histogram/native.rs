//! Native (sparse, exponential) buckets: their configuration, the bucket of a value,
//! and the cells a shard keeps them in.
//!
//! Bucket `i` of schema `s` counts values in `(γ^(i-1), γ^i]` with `γ = 2^(2^-s)`
//! (negative values the same by absolute value, in their own buckets); values with
//! `|v| <= zero_threshold` count in the zero bucket, NaN in `_count` and `_sum` only.
//!
//! # The bucket of a value, from its bits
//!
//! `v = m · 2^e` with `m` in `[1, 2)`, read straight from the float's exponent and
//! mantissa bits (subnormals normalised first). For schema `s > 0` the index is
//! `e · 2^s + k`, where `k` counts the boundaries `2^(j/2^s)`, `j < 2^s`, that lie below
//! `m`, found without a logarithm, a division or a search: the top `s + 1` mantissa
//! bits pick one of `2^(s+1)` equal slices of `[1, 2)`, a table gives the boundaries
//! below the slice's start, and one comparison with the next boundary finishes (the
//! slices are narrower than the closest two boundaries, `2^(2^-s) − 1 > ln 2 / 2^s`,
//! so a slice holds at most one). The float's bits shifted right leave the biased
//! exponent and the slice side by side, `t = (e + 1023) · 2^(s+1) + slice`, so the
//! table entry of a slice holds the next boundary and everything to add to `t / 2`
//! (the slice's half, the exponent's bias, the boundaries below): one table load, no
//! separate exponent arithmetic. For `s <= 0`, schema 0's index `e + (m > 1)` is
//! divided by `2^-s`, rounding up. Lowering the schema by `d` maps index `i` to
//! `⌈i / 2^d⌉`, so a shard stores indices at the configured schema less its own
//! *reduction*. ±Inf count in the bucket of ±`f64::MAX`.
//!
//! # Memory: a fixed window per sign
//!
//! Every shard holds, after its classic buckets, a small header and two windows of
//! `max_buckets` counters (positive and negative values), each covering the
//! consecutive indices from the window's offset. Observing a value inside the window
//! is an index computation and a plain increment under the shard lock, like a classic
//! bucket; nothing is ever allocated for native buckets (they are part of the shard's
//! one allocation). A value outside the window is the slow path, still under the same
//! lock and without allocation:
//!
//! 1. an empty window moves to the value, and a window whose occupied buckets and the
//!    new one fit moves (its counts shift) so that they do;
//! 2. otherwise the span of buckets exceeds `max_buckets`, the limit client_golang calls
//!    `NativeHistogramMaxBucketNumber`. Its strategy is to reset the histogram (after
//!    `NativeHistogramMinResetDuration`), else widen the zero bucket up to
//!    `NativeHistogramMaxZeroThreshold`, else halve the resolution. Here the shard
//!    widens the zero bucket (the lowest buckets move into it) if that stays within
//!    `max_zero_threshold`, else lowers its schema by one, merging neighbouring buckets
//!    pairwise, and tries again; and if a minimum reset duration is configured, it
//!    also marks itself as wanting a reset (see *Reset* below).
//!
//! No step loses or duplicates an observation, so the native counts plus the zero
//! count always equal the classic `+Inf` count (less NaN observations). A scrape
//! merges every shard into the collected shard, and that into its copy of the base,
//! with the same steps: the coarser schema and the
//! wider zero bucket win.
//!
//! The window caps the distance between the lowest and highest bucket rather than the
//! number of non-empty buckets; for one series' latencies those are nearly the same.
//!
//! # Reset
//!
//! client_golang resets inside `Observe`, where the limit is hit. Here an observer
//! holds one shard's lock and cannot reset the others, so the reset happens in the
//! collection (a scrape or a snapshot), which holds the collected shard for the whole
//! of it and each stripe in turn. (A series that may reset has no owner, so its base
//! is never written and everything it holds is in the stripes.) A shard that outgrew its window while
//! [`NativeOptions::min_reset_duration`] is non-zero sets its `RESET_WANTED` cell
//! (and meanwhile widens or lowers its resolution as above, losing nothing); draining
//! a shard carries the mark into the collected shard. After draining, a collection
//! that finds the collected shard marked and the minimum duration elapsed since the series was created or
//! last reset (`LAST_RESET`, one clock read, only for a marked series) returns every
//! stripe to a new shard's state, empties the overflow shard, zeroes the collected
//! shard and reads that empty histogram. Every scrape stays untorn (what it reads is still a
//! union of complete observations: here, none), the configured schema and zero
//! threshold come back, and the observations since the previous scrape are lost, as
//! with client_golang's reset (which keeps the one observation that triggered it;
//! this one does not). Like client_golang's, a reset zeroes `_count`, `_sum` and the
//! classic buckets too: Prometheus reads a counter reset, and `rate()` over the
//! classic buckets loses that interval. The default is client_golang's: no reset.
//!
//! # Occupancy
//!
//! Each window's header also keeps the lowest and highest occupied cell, updated only
//! when a cell goes from empty to non-empty (a branch the hot path rarely takes) and
//! recomputed by the slow path's moves. A scrape reads just that range, so a series
//! with a few occupied buckets costs a few cells to render and to drain, not two
//! windows of `max_buckets`.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::exposition::{BucketRun, NativeBuckets};
use crate::metrics::MetricError;

/// Mantissa bits of an `f64`.
const MANTISSA: u64 = (1 << 52) - 1;

/// Entries of the slice table: enough for schema 8 (`2^9` slices); a power of two, so
/// masking an index proves it in bounds.
const TABLE: usize = 512;

/// One slice of `[1, 2)` (see the module documentation).
#[derive(Debug, Clone, Copy)]
struct Slice {
    /// Mantissa bits of the lowest boundary at or above the slice's start
    /// (`u64::MAX`, above every mantissa, for the top slice).
    next: u64,
    /// Added to `t / 2` gives the index of the slice's start: the boundaries below the
    /// start, less the slice's half and the exponent's bias.
    delta: i32,
}

/// How a histogram keeps native buckets; pass it to
/// [`Buckets::with_native`](super::Buckets::with_native) or
/// [`Histogram::with_native`](super::Histogram::with_native).
///
/// ```
/// use tinyprom::metrics::{Histogram, NativeOptions};
/// let h = Histogram::with_native(&[0.1, 1.0], NativeOptions::new().schema(4).max_buckets(40)).unwrap();
/// h.observe(0.25);
/// assert_eq!(h.snapshot().count, 1);
/// assert!(NativeOptions::new().schema(9).validate().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NativeOptions {
    schema: i32,
    zero_threshold: f64,
    max_zero_threshold: f64,
    max_buckets: usize,
    min_reset_duration: Duration,
    max_exemplars: usize,
}

impl Default for NativeOptions {
    fn default() -> Self {
        NativeOptions::new()
    }
}

impl NativeOptions {
    /// The defaults: schema 3 (growth factor 2^(1/8), buckets about 9% wide), zero
    /// threshold 2^-128 (client_golang's default), no widening of the zero bucket, and
    /// windows of 80 buckets per sign (a factor of 1024 between the lowest and highest
    /// value at schema 3).
    pub const fn new() -> NativeOptions {
        NativeOptions {
            schema: 3,
            zero_threshold: 2.938_735_877_055_719e-39,
            max_zero_threshold: 0.0,
            max_buckets: 80,
            min_reset_duration: Duration::ZERO,
            max_exemplars: 10,
        }
    }

    /// How many exemplars a series keeps for its native buckets (client_golang's
    /// `NativeHistogramMaxExemplars`, also 10 by default; 0 keeps none, 1 to 64).
    /// See [`Histogram::observe_with_exemplar`](super::Histogram::observe_with_exemplar).
    pub const fn max_exemplars(mut self, exemplars: usize) -> NativeOptions {
        self.max_exemplars = exemplars;
        self
    }

    /// The configured [`NativeOptions::max_exemplars`].
    pub const fn exemplars(&self) -> usize {
        self.max_exemplars
    }

    /// The initial resolution, −4 to 8.
    pub const fn schema(mut self, schema: i32) -> NativeOptions {
        self.schema = schema;
        self
    }

    /// Values with `|v|` at most this count in the zero bucket.
    pub const fn zero_threshold(mut self, threshold: f64) -> NativeOptions {
        self.zero_threshold = threshold;
        self
    }

    /// How far the zero bucket may widen to keep within `max_buckets` before the
    /// resolution is lowered; at or below `zero_threshold`: never.
    pub const fn max_zero_threshold(mut self, threshold: f64) -> NativeOptions {
        self.max_zero_threshold = threshold;
        self
    }

    /// Buckets per sign between the lowest and the highest (4 to 4096); also the
    /// number of counters each shard keeps per sign.
    pub const fn max_buckets(mut self, buckets: usize) -> NativeOptions {
        self.max_buckets = buckets;
        self
    }

    /// When a series' buckets outgrow `max_buckets` and at least this long has passed
    /// since it was created or last reset, the next scrape (or snapshot) resets the
    /// series, classic buckets, `_sum` and `_count` included, restoring the configured
    /// resolution and zero threshold; Prometheus sees a counter reset. Zero (the
    /// default, as client_golang's `NativeHistogramMinResetDuration`): never reset, only
    /// widen the zero bucket and lower the resolution. See the module documentation of
    /// `native.rs` for how a reset happens.
    ///
    /// Cost: a series that may reset has no owning thread (a reset zeroes every shard,
    /// and only the owner may write the base), so every observation takes a stripe's
    /// lock (one compare-exchange) and the stripes are allocated with the series.
    pub const fn min_reset_duration(mut self, duration: Duration) -> NativeOptions {
        self.min_reset_duration = duration;
        self
    }

    /// Checks the ranges.
    pub fn validate(&self) -> Result<(), MetricError> {
        let bad = |why: String| Err(MetricError::InvalidBuckets(why));
        if !(-4..=8).contains(&self.schema) {
            return bad(format!("native schema {} is not in -4..=8", self.schema));
        }
        for t in [self.zero_threshold, self.max_zero_threshold] {
            if !(t.is_finite() && t >= 0.0) {
                return bad(format!("zero threshold {t} is not a finite value >= 0"));
            }
        }
        if self.max_exemplars > 64 {
            return bad(format!(
                "native max_exemplars {} is more than 64",
                self.max_exemplars
            ));
        }
        if !(4..=4096).contains(&self.max_buckets) {
            return bad(format!(
                "native max_buckets {} is not in 4..=4096",
                self.max_buckets
            ));
        }
        Ok(())
    }
}

/// A validated configuration with its boundary tables.
#[derive(Debug)]
pub(super) struct Native {
    options: NativeOptions,
    /// One entry per slice, inline so the fast path finds it without a pointer; the
    /// `2^(schema + 1)` slices repeated to fill the table, so that the low bits of `t`
    /// find their slice whatever exponent bits lie above it (no mask to load).
    slices: [Slice; TABLE],
    /// Shift that leaves the top `schema + 1` mantissa bits (schema 0's for a
    /// negative schema).
    slice_shift: u32,
    /// The schema the tables are for: the configured one, 0 for a negative one...
    table_schema: u32,
    /// ...whose indices are then reduced by this much (`-schema`, else 0).
    table_reduction: u32,
    /// Bits of the smallest value the fast path takes: just above the configured zero
    /// threshold, and at least the smallest normal value. (Bits of positive floats
    /// order as the floats do.)
    fast_from: u64,
    /// How many bit patterns from `fast_from` on the fast path takes: up to `+Inf`,
    /// which it leaves out.
    fast_span: u64,
}

/// Mantissa bits of the bucket boundaries `2^(j/2^schema)` in `[1, 2)`, `j` in
/// `0..2^schema`, increasing.
fn boundary_mantissas(schema: u32) -> Vec<u64> {
    let n = 1usize << schema;
    (0..n)
        .map(|j| 2f64.powf(j as f64 / n as f64).to_bits() & MANTISSA)
        .collect()
}

impl Native {
    pub(super) fn new(options: NativeOptions) -> Result<Native, MetricError> {
        options.validate()?;
        // A negative schema uses schema 0's tables (its index is `e + (m > 0)`) and
        // reduces the result, so the fast path has no branch on the schema.
        let table_schema = options.schema.max(0) as u32;
        let boundaries = boundary_mantissas(table_schema);
        let slice_bits = table_schema + 1;
        let slice_shift = 52 - slice_bits;
        let mut slices = [Slice {
            next: u64::MAX,
            delta: 0,
        }; TABLE];
        for (j, entry) in slices.iter_mut().enumerate() {
            let slice = j & ((1 << slice_bits) - 1);
            let start = (slice as u64) << slice_shift;
            let below = boundaries.partition_point(|&b| b < start);
            *entry = Slice {
                next: boundaries.get(below).copied().unwrap_or(u64::MAX),
                delta: below as i32 - (slice as i32 >> 1) - (1023 << table_schema),
            };
        }
        let largest_subnormal = f64::MIN_POSITIVE.to_bits() - 1;
        Ok(Native {
            options,
            slices,
            slice_shift,
            table_schema,
            table_reduction: (-options.schema).max(0) as u32,
            fast_from: options.zero_threshold.to_bits().max(largest_subnormal) + 1,
            fast_span: f64::INFINITY.to_bits()
                - (options.zero_threshold.to_bits().max(largest_subnormal) + 1),
        })
    }

    /// The index at the tables' schema of `v`, if the fast path takes it: a positive
    /// normal value above the configured zero threshold, below `+Inf`: one range
    /// check on its bits (negative values, with the sign bit set, and NaN compare
    /// above +Inf's bits; smaller ones wrap around to above the span).
    #[inline(always)]
    fn fast_index(&self, v: f64) -> Option<i32> {
        let bits = v.to_bits();
        if bits.wrapping_sub(self.fast_from) >= self.fast_span {
            return None;
        }
        Some(self.index_at((bits >> self.slice_shift) as i64, bits & MANTISSA))
    }

    /// The options this was built from.
    pub(super) fn options(&self) -> &NativeOptions {
        &self.options
    }

    /// True when series reset after outgrowing their buckets (a minimum reset
    /// duration is set).
    pub(super) fn resets(&self) -> bool {
        !self.options.min_reset_duration.is_zero()
    }

    /// Counters per sign in a window.
    pub(super) fn width(&self) -> usize {
        self.options.max_buckets
    }

    /// The configured zero threshold.
    pub(super) fn zero_threshold(&self) -> f64 {
        self.options.zero_threshold
    }

    /// Cells a shard needs for native buckets.
    pub(super) fn cells(&self) -> usize {
        WINDOWS + 2 * self.options.max_buckets
    }

    /// The index at the configured schema of a value with `a = |v| > 0` (not NaN).
    #[inline(always)]
    pub(super) fn index(&self, a: f64) -> i32 {
        let a = if a == f64::INFINITY { f64::MAX } else { a };
        let bits = a.to_bits();
        let (e, m) = match (bits >> 52) as i32 {
            0 => {
                // Subnormal: the highest set bit becomes the implicit one.
                let mant = bits & MANTISSA;
                let p = 63 - mant.leading_zeros() as i32;
                (p - 1074, (mant << (52 - p)) & MANTISSA)
            }
            biased => (biased - 1023, bits & MANTISSA),
        };
        self.index_of(e, m)
    }

    /// The index at the configured schema of `m · 2^e`, `m` given by its 52 mantissa
    /// bits (see the module documentation).
    #[inline(always)]
    fn index_of(&self, e: i32, m: u64) -> i32 {
        reduce(self.table_index(e, m), self.table_reduction)
    }

    /// The index of `m · 2^e` at the tables' schema (the configured one, or 0).
    #[inline(always)]
    fn table_index(&self, e: i32, m: u64) -> i32 {
        let t = ((i64::from(e) + 1023) << (self.table_schema + 1)) + (m >> self.slice_shift) as i64;
        self.index_at(t, m)
    }

    /// The index at the tables' schema of the value whose exponent and slice are `t`
    /// and mantissa bits `m` (see the module documentation).
    #[inline(always)]
    fn index_at(&self, t: i64, m: u64) -> i32 {
        let slice = &self.slices[t as u64 as usize % TABLE];
        ((t >> 1) + i64::from(slice.delta) + i64::from(m > slice.next)) as i32
    }
}

impl Native {
    /// Records one observation `v` in a shard's native cells `cells` (the caller may
    /// write them): [`Native::record_fast`], then [`Native::record_slow`] if needed.
    #[inline(always)]
    pub(super) fn record_in(&self, cells: &[AtomicU64], v: f64) {
        assert_eq!(cells.len(), self.cells(), "a shard's native cells");
        // SAFETY: just checked.
        if let Err(counted) = unsafe { self.record_fast(cells, v) } {
            self.record_slow(cells, v, counted);
        }
    }

    /// The common case of recording `v` in `cells`: a value the fast path takes, in
    /// a bucket of its window that already counts something, takes the fewest
    /// instructions (the shard's widened zero bucket checked, its reduction and
    /// offset applied, one increment). Everything else (the zero bucket, negative,
    /// subnormal and infinite values, NaN, a first count in a cell, a value outside
    /// the window) is left to [`Native::record_slow`], out of line: `Err(counted)`,
    /// `counted` when the fast path did count `v` (in a cell that was empty, which
    /// the occupied range must learn of). Returning rather than calling lets the
    /// caller make that call its last act, so no value of the observe path has to
    /// survive a call (which costs the whole path the saving and restoring of
    /// registers).
    ///
    /// The header and window accesses are not bounds-checked (measured: half a
    /// nanosecond of an observation's eight, at 2026-12-03's figures). The one
    /// comparison left, `k < max_buckets`, both decides whether `v` is in its window
    /// and is what keeps the window access in range.
    ///
    /// # Safety
    ///
    /// `cells.len() == self.cells()`: they are a shard's native cells, the header then
    /// both windows.
    #[inline(always)]
    pub(super) unsafe fn record_fast(&self, cells: &[AtomicU64], v: f64) -> Result<(), bool> {
        debug_assert_eq!(cells.len(), self.cells());
        // SAFETY: `cells` holds `WINDOWS + 2 * max_buckets` cells (the caller's
        // promise), so its first `WINDOWS` form the header.
        let header = unsafe { &*cells.as_ptr().cast::<[AtomicU64; WINDOWS]>() };
        let Some(place) = self.locate(header, v) else {
            return Err(false);
        };
        if place.k < self.options.max_buckets {
            // SAFETY: `WINDOWS + k < WINDOWS + max_buckets <= cells.len()`: cell `k`
            // of the positive window.
            let cell = unsafe { cells.get_unchecked(WINDOWS + place.k) };
            let old = cell.load(Ordering::Relaxed);
            cell.store(old.wrapping_add(1), Ordering::Relaxed);
            return if old == 0 { Err(true) } else { Ok(()) };
        }
        Err(false)
    }

    /// Where `v` goes in a shard whose native header is `header`, if the fast path
    /// takes it: its index at the shard's schema and its cell in the positive window
    /// (`k`, huge when outside it). `None` for what [`record_rare`] records.
    #[inline(always)]
    fn locate(&self, header: &[AtomicU64; WINDOWS], v: f64) -> Option<Place> {
        // A widened zero bucket (0 bits until widened) is above the configured one.
        let index = self
            .fast_index(v)
            .filter(|_| v.to_bits() > header[WIDENED].load(Ordering::Relaxed))?;
        let shard_reduction = header[REDUCTION].load(Ordering::Relaxed) as u32;
        let reduction = shard_reduction + self.table_reduction;
        // A shard at its configured resolution (nearly all) skips the rounding.
        let index = if reduction == 0 {
            index
        } else {
            reduce(index, reduction)
        };
        let offset = header[OFFSET[POSITIVE]].load(Ordering::Relaxed) as i64;
        // A negative `k` wraps to a huge index, outside the window like a large one.
        let k = (i64::from(index) - offset) as usize;
        Some(Place {
            index,
            shard_reduction,
            k,
        })
    }

    /// What [`Native::record_fast`] left to do for `v` (`counted` as it returned):
    /// the same steps again ([`Native::locate`]), this time taking the way out the
    /// fast path did not.
    #[cold]
    #[inline(never)]
    pub(super) fn record_slow(&self, cells: &[AtomicU64], v: f64, counted: bool) {
        let Some(header) = cells.first_chunk::<WINDOWS>() else {
            return;
        };
        match self.locate(header, v) {
            None => record_rare(cells, self, v),
            Some(place) if counted => note_occupied(cells, self, POSITIVE, place.k),
            Some(place) => insert(cells, self, POSITIVE, place.index, place.shard_reduction),
        }
    }
}

/// Where [`Native::locate`] puts a value.
struct Place {
    /// Its bucket index at the shard's schema.
    index: i32,
    /// How many schemas below the configured one the shard is.
    shard_reduction: u32,
    /// Its cell in the positive window (huge when outside it).
    k: usize,
}

/// One observation the fast path leaves out: in the zero bucket, negative,
/// subnormal, ±Inf or NaN.
#[cold]
#[inline(never)]
fn record_rare(cells: &[AtomicU64], config: &Native, v: f64) {
    let cells = NativeCells::new(cells, config);
    if v.abs() <= cells.threshold() {
        cells.add(ZERO_COUNT, 1);
    } else {
        cells.record_unusual(v);
    }
}

/// Cell `k` of the window of `sign` just became non-empty.
#[cold]
#[inline(never)]
fn note_occupied(cells: &[AtomicU64], config: &Native, sign: usize, k: usize) {
    NativeCells::new(cells, config).note_occupied(sign, k);
}

/// One observation in bucket `index` (of schema configured − `reduction`), outside
/// its window.
#[cold]
#[inline(never)]
fn insert(cells: &[AtomicU64], config: &Native, sign: usize, index: i32, reduction: u32) {
    NativeCells::new(cells, config).insert(sign, index, reduction, 1);
}

/// Index `i` after lowering the schema by `d`: `⌈i / 2^d⌉` (no branch: `d = 0` adds
/// 0 and shifts by 0).
#[inline(always)]
pub(super) fn reduce(i: i32, d: u32) -> i32 {
    ((i64::from(i) + (1i64 << d) - 1) >> d) as i32
}

/// The upper bound of bucket `i` at `schema`.
fn upper_bound(i: i32, schema: i32) -> f64 {
    (f64::from(i) * 2f64.powi(-schema)).exp2()
}

// Layout of a shard's native cells.
/// How many schemas below the configured one the shard is.
const REDUCTION: usize = 0;
/// Bits of the widened zero threshold; 0.0 (all bits zero) until widened.
const WIDENED: usize = 1;
const ZERO_COUNT: usize = 2;
/// Offsets (as `i64` bits) of the positive and negative windows.
const OFFSET: [usize; 2] = [3, 4];
/// The sign index of positive values (negative ones are 1).
const POSITIVE: usize = 0;
/// The occupied cells of the positive and negative windows: the lowest in the low 32
/// bits, one past the highest in the high 32; 0 (nothing in the high half) when empty.
/// A scrape reads only that range (most histograms never see a negative value).
const OCCUPIED: [usize; 2] = [5, 6];
/// 1 once this shard outgrew `max_buckets` while a reset is configured: the next
/// collection resets the series if its minimum reset duration has passed.
const RESET_WANTED: usize = 7;
/// The collected shard only: when the series was created or last reset, in nanoseconds of
/// [`clock`].
const LAST_RESET: usize = 8;
const WINDOWS: usize = 9;

/// Nanoseconds since the first call in this process: a monotonic clock that fits a
/// cell.
fn clock() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let nanos = EPOCH.get_or_init(Instant::now).elapsed().as_nanos();
    u64::try_from(nanos).unwrap_or(u64::MAX)
}

/// A shard's native cells, borrowed under its lock (every access `Relaxed`: the
/// shard's lock orders them, see the parent module).
pub(super) struct NativeCells<'a> {
    /// All of them: the header, then the windows.
    #[cfg(test)]
    cells: &'a [AtomicU64],
    /// The header cells, as an array so that reading them needs no bounds checks.
    header: &'a [AtomicU64; WINDOWS],
    /// The positive window, then the negative one.
    windows: &'a [AtomicU64],
    config: &'a Native,
}

impl<'a> NativeCells<'a> {
    #[inline]
    pub(super) fn new(cells: &'a [AtomicU64], config: &'a Native) -> Self {
        let (header, windows) = cells.split_at(WINDOWS);
        NativeCells {
            #[cfg(test)]
            cells,
            header: header.try_into().expect("a shard holds the native header"),
            windows,
            config,
        }
    }

    #[inline]
    fn get(&self, i: usize) -> u64 {
        self.header[i].load(Ordering::Relaxed)
    }

    #[inline]
    fn set(&self, i: usize, v: u64) {
        self.header[i].store(v, Ordering::Relaxed);
    }

    #[inline]
    fn add(&self, i: usize, n: u64) {
        self.set(i, self.get(i).wrapping_add(n));
    }

    /// Adds `n` to cell `k` of the window of `sign`.
    fn add_in_window(&self, sign: usize, k: usize, n: u64) {
        let cell = &self.window(sign)[k];
        let old = cell.load(Ordering::Relaxed);
        cell.store(old.wrapping_add(n), Ordering::Relaxed);
        if old == 0 && n != 0 {
            self.note_occupied(sign, k);
        }
    }

    /// The occupied cells `lo..hi` of one sign's window (empty: `0..0`).
    #[inline]
    fn occupied_cells(&self, sign: usize) -> std::ops::Range<usize> {
        let packed = self.get(OCCUPIED[sign]);
        let hi = (packed >> 32) as usize;
        if hi == 0 {
            0..0
        } else {
            (packed as u32 as usize)..hi
        }
    }

    fn set_occupied_cells(&self, sign: usize, cells: std::ops::Range<usize>) {
        let packed = if cells.is_empty() {
            0
        } else {
            (cells.end as u64) << 32 | cells.start as u64
        };
        self.set(OCCUPIED[sign], packed);
    }

    /// Cell `k` of one sign's window just became non-empty.
    #[inline(never)]
    fn note_occupied(&self, sign: usize, k: usize) {
        let cells = self.occupied_cells(sign);
        let cells = if cells.is_empty() {
            k..k + 1
        } else {
            cells.start.min(k)..cells.end.max(k + 1)
        };
        self.set_occupied_cells(sign, cells);
    }

    /// Recomputes one sign's occupied range after counts moved within its window.
    fn rescan_occupied(&self, sign: usize) {
        let window = self.window(sign);
        let full = |c: &AtomicU64| c.load(Ordering::Relaxed) != 0;
        let cells = match window.iter().position(full) {
            None => 0..0,
            Some(first) => first..window.iter().rposition(full).unwrap_or(first) + 1,
        };
        self.set_occupied_cells(sign, cells);
    }

    #[inline]
    fn width(&self) -> usize {
        self.config.options.max_buckets
    }

    #[inline]
    fn reduction(&self) -> u32 {
        self.get(REDUCTION) as u32
    }

    fn schema(&self) -> i32 {
        self.config.options.schema - self.reduction() as i32
    }

    fn threshold(&self) -> f64 {
        self.config
            .options
            .zero_threshold
            .max(f64::from_bits(self.get(WIDENED)))
    }

    #[inline]
    fn offset(&self, sign: usize) -> i32 {
        self.get(OFFSET[sign]) as i64 as i32
    }

    fn set_offset(&self, sign: usize, offset: i32) {
        self.set(OFFSET[sign], i64::from(offset) as u64);
    }

    #[inline]
    fn window(&self, sign: usize) -> &'a [AtomicU64] {
        let width = self.width();
        &self.windows[sign * width..][..width]
    }

    /// Records one observation `v` (the caller may write the shard): see
    /// [`Native::record_in`].
    #[cfg(test)]
    fn record(&self, v: f64) {
        self.config.record_in(self.cells, v);
    }

    /// Counts one observation in bucket `index` (at this shard's schema) of `sign`.
    #[inline(always)]
    fn record_at(&self, sign: usize, index: i32) {
        let width = self.width();
        // A negative `k` wraps to a huge index, outside the window like a large one.
        let k = (i64::from(index) - i64::from(self.offset(sign))) as usize;
        if k < width
            && let Some(cell) = self.windows.get(sign * width + k)
        {
            let old = cell.load(Ordering::Relaxed);
            cell.store(old.wrapping_add(1), Ordering::Relaxed);
            if old == 0 {
                self.note_occupied(sign, k);
            }
            return;
        }
        self.insert(sign, index, self.reduction(), 1);
    }

    /// An observation outside the zero bucket that the fast path leaves out: NaN (in
    /// no native bucket), a negative value, ±Inf or a subnormal.
    #[cold]
    fn record_unusual(&self, v: f64) {
        if v.is_nan() {
            return;
        }
        let sign = usize::from(v < 0.0);
        self.record_at(sign, reduce(self.config.index(v.abs()), self.reduction()));
    }

    /// Adds `n` to bucket `index` (of schema configured − `from_reduction`): the slow
    /// path of the module documentation.
    #[cold]
    fn insert(&self, sign: usize, index: i32, from_reduction: u32, n: u64) {
        if from_reduction > self.reduction() {
            self.lower_schema_to(from_reduction);
        }
        let width = self.width() as i64;
        loop {
            let index = reduce(index, self.reduction() - from_reduction);
            if upper_bound(index, self.schema()) <= self.threshold() {
                self.add(ZERO_COUNT, n);
                return;
            }
            let offset = i64::from(self.offset(sign));
            let k = i64::from(index) - offset;
            if (0..width).contains(&k) {
                self.add_in_window(sign, k as usize, n);
                return;
            }
            let (lo, hi) = match self.occupied(sign) {
                None => (index, index),
                Some((lo, hi)) => (lo.min(index), hi.max(index)),
            };
            let span = i64::from(hi) - i64::from(lo) + 1;
            if span <= width {
                // Centre the occupied buckets in the window.
                let new_offset = i64::from(lo) - (width - span) / 2;
                self.shift(sign, new_offset);
                continue;
            }
            if !self.config.options.min_reset_duration.is_zero() {
                self.set(RESET_WANTED, 1);
            }
            let limit = hi - self.width() as i32;
            let widened = upper_bound(limit, self.schema());
            if widened <= self.config.options.max_zero_threshold {
                self.widen_zero(widened);
            } else if self.schema() > -4 {
                self.lower_schema_to(self.reduction() + 1);
            } else {
                // Schema −4 spans every f64 within 140 buckets; only a window that
                // narrow and values that far apart end here: count at the window's edge.
                let edge = if k < 0 { 0 } else { width - 1 };
                self.add_in_window(sign, edge as usize, n);
                return;
            }
        }
    }

    /// The lowest and highest occupied index of one sign's window.
    fn occupied(&self, sign: usize) -> Option<(i32, i32)> {
        let cells = self.occupied_cells(sign);
        if cells.is_empty() {
            return None;
        }
        let offset = self.offset(sign);
        Some((offset + cells.start as i32, offset + cells.end as i32 - 1))
    }

    /// Moves one sign's window to start at `new_offset`; its occupied buckets fit.
    fn shift(&self, sign: usize, new_offset: i64) {
        let window = self.window(sign);
        let by = i64::from(self.offset(sign)) - new_offset;
        let moved = |k: usize| {
            let n = window[k].swap(0, Ordering::Relaxed);
            if n != 0 {
                window[(k as i64 + by) as usize].store(n, Ordering::Relaxed);
            }
        };
        if by > 0 {
            (0..window.len()).rev().for_each(moved);
        } else {
            (0..window.len()).for_each(moved);
        }
        self.set_offset(sign, new_offset as i32);
        self.rescan_occupied(sign);
    }

    /// Moves every bucket whose values lie at or below `threshold` into the zero bucket.
    fn widen_zero(&self, threshold: f64) {
        self.set(WIDENED, threshold.to_bits());
        let schema = self.schema();
        for sign in 0..2 {
            let offset = self.offset(sign);
            for (k, cell) in self.window(sign).iter().enumerate() {
                if upper_bound(offset + k as i32, schema) > threshold {
                    break;
                }
                self.add(ZERO_COUNT, cell.swap(0, Ordering::Relaxed));
            }
            self.rescan_occupied(sign);
        }
    }

    /// Lowers this shard's schema until its reduction is `reduction`, merging buckets
    /// pairwise in place.
    fn lower_schema_to(&self, reduction: u32) {
        while self.reduction() < reduction {
            for sign in 0..2 {
                let window = self.window(sign);
                let offset = self.offset(sign);
                let new_offset = reduce(offset, 1);
                // Targets never lie right of their source, so one ascending pass works.
                for k in 0..window.len() {
                    let n = window[k].swap(0, Ordering::Relaxed);
                    if n != 0 {
                        let t = (reduce(offset + k as i32, 1) - new_offset) as usize;
                        window[t].store(
                            window[t].load(Ordering::Relaxed).wrapping_add(n),
                            Ordering::Relaxed,
                        );
                    }
                }
                self.set_offset(sign, new_offset);
                self.rescan_occupied(sign);
            }
            self.set(REDUCTION, u64::from(self.reduction() + 1));
        }
    }

    /// Adds everything this shard holds into `into`; `drain` also empties this shard
    /// (a stripe moving into the collected shard), otherwise it is left as it is (the
    /// collected shard adding into a scrape's copy).
    pub(super) fn merge_into(&self, into: &NativeCells<'_>, drain: bool) {
        if self.get(RESET_WANTED) != 0 {
            into.set(RESET_WANTED, 1);
            if drain {
                self.set(RESET_WANTED, 0);
            }
        }
        let widened = f64::from_bits(self.get(WIDENED));
        if widened > f64::from_bits(into.get(WIDENED)) {
            into.widen_zero(widened);
        }
        into.add(ZERO_COUNT, self.get(ZERO_COUNT));
        if drain {
            self.set(ZERO_COUNT, 0);
        }
        let reduction = self.reduction();
        for sign in 0..2 {
            let offset = self.offset(sign);
            let cells = self.occupied_cells(sign);
            let window = self.window(sign);
            for k in cells {
                let n = window[k].load(Ordering::Relaxed);
                if n != 0 {
                    if drain {
                        window[k].store(0, Ordering::Relaxed);
                    }
                    into.insert(sign, offset + k as i32, reduction, n);
                }
            }
            if drain {
                self.set_occupied_cells(sign, 0..0);
            }
        }
    }

    /// Copies `from` into these cells, which must be empty (a new shard's state):
    /// the header and the occupied cells of each window. `from` may be changing (the
    /// owner's base, read by its sequence number): then the copy may be torn, which
    /// the caller detects, but never out of bounds; false when `from`'s occupied
    /// ranges are not even possible (certainly torn).
    pub(super) fn copy_from(&self, from: &NativeCells<'_>) -> bool {
        for (to, cell) in self.header.iter().zip(from.header) {
            to.store(cell.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        let width = self.width();
        for sign in 0..2 {
            let cells = from.occupied_cells(sign);
            if cells.start > cells.end || cells.end > width {
                self.set_occupied_cells(sign, 0..0);
                return false;
            }
            let (to, window) = (self.window(sign), from.window(sign));
            for k in cells {
                to[k].store(window[k].load(Ordering::Relaxed), Ordering::Relaxed);
            }
        }
        true
    }

    /// Zeroes the header and the occupied cells: a new shard's state again (for a
    /// scrape's copy, whose other cells are already zero).
    pub(super) fn clear(&self) {
        for sign in 0..2 {
            let window = self.window(sign);
            for k in self.occupied_cells(sign) {
                window[k].store(0, Ordering::Relaxed);
            }
        }
        for cell in self.header {
            cell.store(0, Ordering::Relaxed);
        }
        debug_assert!(
            self.windows.iter().all(|c| c.load(Ordering::Relaxed) == 0),
            "a count outside the occupied range"
        );
    }

    /// Adds `n` observations counted elsewhere (the overflow shard) into bucket
    /// `index` at the configured schema, or the zero bucket.
    pub(super) fn absorb(&self, sign: Option<usize>, index: i32, n: u64) {
        match sign {
            None => self.add(ZERO_COUNT, n),
            Some(sign) => self.insert(sign, index, 0, n),
        }
    }

    /// Marks this (collected) shard as created or reset now, if resets are configured.
    pub(super) fn start_reset_clock(&self) {
        if !self.config.options.min_reset_duration.is_zero() {
            self.set(LAST_RESET, clock());
        }
    }

    /// When this (collected) shard was created or last reset, in nanoseconds of [`clock`]
    /// (0 without a minimum reset duration): tests detect a reset by its change.
    #[cfg(test)]
    pub(super) fn last_reset(&self) -> u64 {
        self.get(LAST_RESET)
    }

    /// True when this (collected) shard, after a collection drained every other shard into
    /// it, outgrew its buckets and the minimum reset duration has passed since the
    /// series was created or last reset.
    pub(super) fn reset_due(&self) -> bool {
        if self.get(RESET_WANTED) == 0 {
            return false;
        }
        let min = self.config.options.min_reset_duration;
        let since = clock().saturating_sub(self.get(LAST_RESET));
        u128::from(since) >= min.as_nanos()
    }

    /// What a scrape reads.
    pub(super) fn view(&self) -> NativeBuckets<'a> {
        let run = |sign| {
            let cells = self.occupied_cells(sign);
            BucketRun {
                first_index: self.offset(sign) + cells.start as i32,
                counts: &self.window(sign)[cells],
            }
        };
        NativeBuckets {
            schema: self.schema(),
            zero_threshold: self.threshold(),
            zero_count: self.get(ZERO_COUNT),
            positive: run(0),
            negative: run(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells(config: &Native) -> Vec<AtomicU64> {
        (0..config.cells()).map(|_| AtomicU64::new(0)).collect()
    }

    /// The index by logarithm, for values not within rounding of a boundary.
    fn by_log(v: f64, schema: i32) -> i32 {
        (v.log2() * 2f64.powi(schema)).ceil() as i32
    }

    #[test]
    fn index_from_bits_matches_the_logarithm() {
        for schema in -4..=8 {
            let n = Native::new(NativeOptions::new().schema(schema)).unwrap();
            for e in -1074..=1023 {
                // Powers of two are the upper bound of their bucket, exactly.
                let expected = if schema >= 0 {
                    e << schema
                } else {
                    reduce(e, (-schema) as u32)
                };
                let v = if e >= -1022 {
                    f64::from_bits(((e + 1023) as u64) << 52)
                } else {
                    f64::from_bits(1 << (e + 1074))
                };
                assert_eq!(n.index(v), expected, "2^{e} schema {schema}");
            }
            let mut rng = fastrand::Rng::with_seed((schema + 11) as u64);
            for _ in 0..20_000 {
                let v = (rng.f64() * 80.0 - 40.0).exp2();
                let expected = by_log(v, schema);
                let got = n.index(v);
                // Within rounding of a boundary the two may differ by one.
                assert!(
                    (got - expected).abs() <= 1,
                    "{v} schema {schema}: {got} vs {expected}"
                );
                if (v.log2() * 2f64.powi(schema)).fract().abs() > 1e-6 {
                    assert_eq!(got, expected, "{v} schema {schema}");
                }
            }
            assert_eq!(n.index(f64::INFINITY), n.index(f64::MAX));
            assert!(n.index(f64::from_bits(1)) < n.index(f64::MIN_POSITIVE));
        }
    }

    /// The fast path takes exactly the positive values above the zero threshold (and
    /// normal) below `+Inf`, and gives what the general index gives for them.
    #[test]
    fn the_fast_path_takes_positive_values_above_the_threshold_and_below_infinity() {
        let subnormal = f64::from_bits(f64::MIN_POSITIVE.to_bits() - 1);
        for threshold in [0.0, 1e-300, 1e-9, 0.5, f64::MAX] {
            let n = Native::new(NativeOptions::new().zero_threshold(threshold)).unwrap();
            let floor = threshold.max(subnormal);
            let above = f64::from_bits(floor.to_bits() + 1);
            for v in [
                0.0,
                -0.0,
                1e-310,
                subnormal,
                f64::MIN_POSITIVE,
                threshold,
                above,
                0.5,
                1.0,
                3.0,
                f64::MAX,
                f64::INFINITY,
                f64::NEG_INFINITY,
                f64::NAN,
                -1.0,
                -f64::MAX,
            ] {
                let fast = v > floor && v < f64::INFINITY;
                match n.fast_index(v) {
                    Some(i) => {
                        assert!(fast, "{v:e} taken with threshold {threshold:e}");
                        assert_eq!(i, n.index(v), "{v:e}");
                    }
                    None => assert!(!fast, "{v:e} left out with threshold {threshold:e}"),
                }
            }
        }
    }

    /// The slice table gives what a search over the boundaries gives, at every
    /// boundary and on either side of it, for every schema.
    #[test]
    fn slice_table_matches_a_search_at_every_boundary() {
        for schema in 1..=8 {
            let n = Native::new(NativeOptions::new().schema(schema)).unwrap();
            let bounds = boundary_mantissas(schema as u32);
            let probes = bounds
                .iter()
                .flat_map(|&b| [b.saturating_sub(1), b, b + 1])
                .chain([MANTISSA]);
            for m in probes {
                let expected = bounds.partition_point(|&b| b < m) as i32;
                assert_eq!(
                    n.index_of(0, m),
                    expected,
                    "schema {schema} mantissa {m:#x}"
                );
                assert_eq!(n.index_of(-3, m), (-3 << schema) + expected);
            }
        }
    }

    /// The tracked occupied range is what a scan of the window finds, through moves,
    /// widening, lowering the schema and draining.
    #[test]
    fn occupied_range_follows_every_move() {
        let config = Native::new(
            NativeOptions::new()
                .max_buckets(8)
                .max_zero_threshold(0.001),
        )
        .unwrap();
        let (a, b) = (cells(&config), cells(&config));
        let (base, stripe) = (NativeCells::new(&a, &config), NativeCells::new(&b, &config));
        let check = |c: &NativeCells<'_>| {
            for sign in 0..2 {
                let window = c.window(sign);
                let scanned: Vec<usize> = (0..window.len())
                    .filter(|&k| window[k].load(Ordering::Relaxed) != 0)
                    .collect();
                let tracked = c.occupied_cells(sign);
                match (scanned.first(), scanned.last()) {
                    (Some(&lo), Some(&hi)) => assert_eq!(tracked, lo..hi + 1, "sign {sign}"),
                    _ => assert!(tracked.is_empty(), "sign {sign}: {tracked:?}"),
                }
            }
        };
        let mut rng = fastrand::Rng::with_seed(11);
        for round in 0..2_000 {
            let v = (rng.f64() * 30.0 - 15.0).exp2() * if rng.bool() { 1.0 } else { -1.0 };
            let target = if round % 3 == 0 { &base } else { &stripe };
            target.record(v);
            check(target);
            if round % 97 == 0 {
                stripe.merge_into(&base, true);
                check(&stripe);
                check(&base);
                assert_eq!(contents(&stripe).0, 0);
            }
        }
        stripe.merge_into(&base, true);
        assert_eq!(contents(&base).0, 2_000);
    }

    /// Occupied buckets as `(index, count)`.
    type Occupied = Vec<(i32, u64)>;

    /// Total observations and the occupied buckets of a shard's native cells.
    fn contents(c: &NativeCells<'_>) -> (u64, Occupied, Occupied) {
        let v = c.view();
        let pos: Vec<_> = v.positive.occupied().collect();
        let neg: Vec<_> = v.negative.occupied().collect();
        let total = v.zero_count + pos.iter().chain(&neg).map(|b| b.1).sum::<u64>();
        (total, pos, neg)
    }

    #[test]
    fn a_wide_range_lowers_the_schema_and_keeps_every_observation() {
        let config = Native::new(NativeOptions::new().max_buckets(8)).unwrap();
        let raw = cells(&config);
        let c = NativeCells::new(&raw, &config);
        // 1 and 1.5 fit in 8 buckets at schema 3; 4 does not (index 16).
        for v in [1.0, 1.5, 1.0] {
            c.record(v);
        }
        assert_eq!(c.view().schema, 3);
        c.record(4.0);
        let (total, pos, _) = contents(&c);
        assert_eq!(total, 4);
        assert!(c.view().schema < 3);
        let schema = c.view().schema;
        let at = |v: f64| reduce(config.index(v), (3 - schema) as u32);
        assert!(pos.contains(&(at(1.0), 2)), "{pos:?} at schema {schema}");
        assert!(pos.iter().any(|&(i, _)| i == at(4.0)));
        // Values ever further apart: down to the lowest schema, still all counted.
        for e in -60..60 {
            c.record(2f64.powi(e));
        }
        let (total, pos, _) = contents(&c);
        assert_eq!(total, 124);
        assert!(c.view().schema <= -3, "{} {pos:?}", c.view().schema);
        assert!(pos.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn the_zero_bucket_widens_before_the_schema_drops() {
        let config =
            Native::new(NativeOptions::new().max_buckets(8).max_zero_threshold(0.01)).unwrap();
        let raw = cells(&config);
        let c = NativeCells::new(&raw, &config);
        // 0.001 is bucket -79, 0.01 bucket -53: 27 buckets. Moving the lowest ones into
        // the zero bucket (up to 2^(-61/8) = 0.0051) makes them fit in 8.
        c.record(0.001);
        c.record(0.01);
        let v = c.view();
        assert_eq!(v.schema, 3, "widened instead");
        assert!(
            v.zero_threshold > 0.001 && v.zero_threshold <= 0.01,
            "{}",
            v.zero_threshold
        );
        assert_eq!(v.zero_count, 1);
        c.record(0.002);
        c.record(-0.002);
        assert_eq!(c.view().zero_count, 3);
        // Beyond what widening may do: the schema drops.
        c.record(100.0);
        assert_eq!(contents(&c).0, 5);
        assert!(c.view().schema < 3);
        c.record(f64::NAN);
        assert_eq!(contents(&c).0, 5, "NaN is in no bucket");
    }

    #[test]
    fn merging_shards_takes_the_coarser_schema() {
        let config = Native::new(NativeOptions::new().max_buckets(8)).unwrap();
        let (a, b) = (cells(&config), cells(&config));
        let (base, stripe) = (NativeCells::new(&a, &config), NativeCells::new(&b, &config));
        base.record(1.0);
        base.record(-1.0);
        for v in [0.5, 1.0, 8.0, 64.0, f64::INFINITY] {
            stripe.record(v);
        }
        let coarse = stripe.view().schema;
        assert!(coarse < 3);
        stripe.merge_into(&base, true);
        assert_eq!(contents(&stripe).0, 0, "the stripe is empty after");
        let (total, pos, neg) = contents(&base);
        assert_eq!(total, 7);
        assert!(base.view().schema <= coarse);
        assert_eq!(neg.iter().map(|b| b.1).sum::<u64>(), 1);
        assert_eq!(pos.iter().map(|b| b.1).sum::<u64>(), 6);
        // Absorbing counts at the configured schema (from the overflow shard).
        base.absorb(Some(0), 0, 3);
        base.absorb(None, 0, 2);
        assert_eq!(contents(&base).0, 12);
    }
}
