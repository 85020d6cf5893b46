//! The overflow shard: where an observation goes when every stripe is taken, so that
//! no observer ever waits for another.
//!
//! Stripes are taken with a try-lock; with twice as many stripes as CPUs they are
//! practically never all held at once, but "practically" is not a guarantee: holders can
//! be preempted while holding. Rather than wait for one, an observer that finds every
//! stripe taken records into this shard with atomic read-modify-writes only, using
//! client_golang's hot/cold technique so a scrape still reads a complete set of
//! observations:
//!
//! * the observer claims a slot with `fetch_add(1)` on `started_and_hot`, whose top
//!   bit names the hot half; it bumps its bucket and adds to the sum in that half, then
//!   bumps the half's `completed` count;
//! * the collector (holding the series' collected shard's lock, which serialises collectors) flips the
//!   top bit. The cold half then holds exactly the observations started since the
//!   previous flip (`started - drained`), and no later ones; once its `completed` count
//!   reaches that number it is a complete set, which the collector moves into the collected
//!   shard and zeroes.
//!
//! Memory orderings:
//! * the observer's claim is `Acquire`: it must see the zeroing the previous collector
//!   did before this half became hot again (that collector released the collected shard's lock; the
//!   next collector's flip is `Release` via `AcqRel` after taking it).
//! * bucket and sum updates are `Relaxed`: the completion publishes them.
//! * the completion is `Release`; the collector loads `completed` with `Acquire`, which
//!   synchronises with every completion in that atomic's release sequence.
//! * the zeroing and `drained` are `Relaxed`: ordered by the collected shard's lock for the next
//!   collector and by the flip for observers (first point).
//!
//! Native buckets: each half also holds a zero bucket and a fixed window per sign at
//! the configured schema, centred when the stripes are created on the value being
//! observed then. A value outside its window counts in the window's edge bucket: the
//! one approximation of native buckets, on a path taken only when every stripe is held
//! at the same instant (the halves cannot move a window without a lock).

use std::sync::atomic::{AtomicU64, Ordering};

use super::Buckets;
use super::shard::Guard;
use crate::metrics::gauge::add_f64;

const HOT_BIT: u64 = 1 << 63;
const COMPLETED: usize = 0;
const SUM: usize = 1;
const FIRST_BUCKET: usize = 2;

/// Two halves of `[completed, sum, bucket 0, ..., +Inf, native zero, positive window,
/// negative window]` and the claim word.
#[derive(Debug)]
pub(super) struct Overflow {
    started_and_hot: AtomicU64,
    /// Observations started before the last flip; only the collector touches it.
    drained: AtomicU64,
    halves: Box<[AtomicU64]>,
    stride: usize,
    /// Index of the native zero bucket's cell in a half.
    native_zero: usize,
    /// Native windows: cells per sign and the bucket index of each window's first cell.
    native_width: usize,
    native_offsets: [i32; 2],
}

impl Overflow {
    /// An empty overflow shard for a histogram with `buckets`, its native windows
    /// centred on `near`.
    pub(super) fn new(buckets: &Buckets, near: f64) -> Overflow {
        let native_zero = FIRST_BUCKET + buckets.bounds().len() + 1;
        let (native_width, native_offsets) = match buckets.native() {
            Some(native) => {
                let width = native.width();
                let a = near.abs();
                let centre = if a > 0.0 && a.is_finite() {
                    native.index(a)
                } else {
                    0
                };
                let offset = centre - width as i32 / 2;
                (width, [offset, offset])
            }
            None => (0, [0, 0]),
        };
        let stride = native_zero + usize::from(buckets.native().is_some()) + 2 * native_width;
        Overflow {
            started_and_hot: AtomicU64::new(0),
            drained: AtomicU64::new(0),
            halves: (0..2 * stride).map(|_| AtomicU64::new(0)).collect(),
            stride,
            native_zero,
            native_width,
            native_offsets,
        }
    }

    /// The cell of `v`'s native bucket in a half, if it goes in one.
    fn native_cell(&self, buckets: &Buckets, v: f64) -> Option<usize> {
        let native = buckets.native()?;
        let a = v.abs();
        if a <= native.zero_threshold() {
            return Some(self.native_zero);
        }
        if a.is_nan() {
            return None;
        }
        let sign = usize::from(v < 0.0);
        let k = i64::from(native.index(a)) - i64::from(self.native_offsets[sign]);
        let k = k.clamp(0, self.native_width as i64 - 1) as usize;
        Some(self.native_zero + 1 + sign * self.native_width + k)
    }

    fn half(&self, index: u64) -> &[AtomicU64] {
        &self.halves[index as usize * self.stride..][..self.stride]
    }

    /// Records `v` in classic `bucket` (`+Inf` last) and its native bucket without
    /// waiting for anyone.
    pub(super) fn record(&self, buckets: &Buckets, bucket: usize, v: f64) {
        let native = self.native_cell(buckets, v);
        // Acquire: see the module docs (first ordering point).
        let started = self.started_and_hot.fetch_add(1, Ordering::Acquire);
        let half = self.half(started >> 63);
        half[FIRST_BUCKET + bucket].fetch_add(1, Ordering::Relaxed);
        if let Some(cell) = native {
            half[cell].fetch_add(1, Ordering::Relaxed);
        }
        add_f64(&half[SUM], v);
        // Release: publishes the two updates above to the collector.
        half[COMPLETED].fetch_add(1, Ordering::Release);
    }

    /// Moves every observation started so far into `base` (whose lock the caller holds)
    /// and zeroes the cold half. Waits only for observers already inside `record`.
    pub(super) fn drain_into(&self, base: &Guard<'_>) {
        let after_flip = self
            .started_and_hot
            .fetch_add(HOT_BIT, Ordering::AcqRel)
            .wrapping_add(HOT_BIT);
        let started = after_flip & !HOT_BIT;
        // Relaxed: only collectors touch `drained`, and they hold the collected shard's lock.
        let expected = started.wrapping_sub(self.drained.load(Ordering::Relaxed));
        let cold = self.half((after_flip >> 63) ^ 1);
        let mut spins = 0u32;
        while cold[COMPLETED].load(Ordering::Acquire) != expected {
            // An observer between its claim and its completion: a few instructions
            // away unless it was preempted, in which case give it the CPU.
            spins = spins.saturating_add(1);
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        if expected != 0 {
            for (bucket, cell) in cold[FIRST_BUCKET..self.native_zero].iter().enumerate() {
                base.absorb(bucket, cell.swap(0, Ordering::Relaxed));
            }
            base.absorb_sum(f64::from_bits(
                cold[SUM].swap(0f64.to_bits(), Ordering::Relaxed),
            ));
            if let Some(native) = base.native() {
                let zero = cold[self.native_zero].swap(0, Ordering::Relaxed);
                native.absorb(None, 0, zero);
                let windows = &cold[self.native_zero + 1..];
                for (i, cell) in windows.iter().enumerate() {
                    let n = cell.swap(0, Ordering::Relaxed);
                    if n != 0 {
                        let sign = i / self.native_width;
                        let index = self.native_offsets[sign] + (i % self.native_width) as i32;
                        native.absorb(Some(sign), index, n);
                    }
                }
            }
            cold[COMPLETED].store(0, Ordering::Relaxed);
        }
        self.drained.store(started, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::super::shard::{lock, shard_len};
    use super::*;

    #[test]
    fn drains_exactly_what_was_recorded_across_flips() {
        let b = Buckets::new(&[1.0, 2.0]).unwrap();
        let o = Overflow::new(&b, 1.0);
        let base: Vec<AtomicU64> = (0..shard_len(&b)).map(|_| AtomicU64::new(0)).collect();
        for round in 1..=3u64 {
            o.record(&b, 0, 0.5);
            o.record(&b, 2, 4.0);
            let g = lock(&base, &b);
            o.drain_into(&g);
            assert_eq!(g.buckets().collect::<Vec<_>>(), [round, 0, round]);
            assert_eq!(g.sum(), 4.5 * round as f64);
        }
        // Nothing new: draining again changes nothing.
        let g = lock(&base, &b);
        o.drain_into(&g);
        assert_eq!(g.buckets().collect::<Vec<_>>(), [3, 0, 3]);
    }
}
