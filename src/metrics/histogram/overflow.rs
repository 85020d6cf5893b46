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
//! * the collector (holding the series' base lock, which serialises collectors) flips the
//!   top bit. The cold half then holds exactly the observations started since the
//!   previous flip (`started - drained`), and no later ones; once its `completed` count
//!   reaches that number it is a complete set, which the collector moves into the base
//!   shard and zeroes.
//!
//! Memory orderings:
//! * the observer's claim is `Acquire`: it must see the zeroing the previous collector
//!   did before this half became hot again (that collector released the base lock; the
//!   next collector's flip is `Release` via `AcqRel` after taking it).
//! * bucket and sum updates are `Relaxed`: the completion publishes them.
//! * the completion is `Release`; the collector loads `completed` with `Acquire`, which
//!   synchronises with every completion in that atomic's release sequence.
//! * the zeroing and `drained` are `Relaxed`: ordered by the base lock for the next
//!   collector and by the flip for observers (first point).

use std::sync::atomic::{AtomicU64, Ordering};

use super::shard::Guard;
use crate::metrics::gauge::add_f64;

const HOT_BIT: u64 = 1 << 63;
const COMPLETED: usize = 0;
const SUM: usize = 1;
const FIRST_BUCKET: usize = 2;

/// Two halves of `[completed, sum, bucket 0, ..., +Inf]` and the claim word.
#[derive(Debug)]
pub(super) struct Overflow {
    started_and_hot: AtomicU64,
    /// Observations started before the last flip; only the collector touches it.
    drained: AtomicU64,
    halves: Box<[AtomicU64]>,
    stride: usize,
}

impl Overflow {
    /// An empty overflow shard for `bounds` finite bucket bounds.
    pub(super) fn new(bounds: usize) -> Overflow {
        let stride = FIRST_BUCKET + bounds + 1;
        Overflow {
            started_and_hot: AtomicU64::new(0),
            drained: AtomicU64::new(0),
            halves: (0..2 * stride).map(|_| AtomicU64::new(0)).collect(),
            stride,
        }
    }

    fn half(&self, index: u64) -> &[AtomicU64] {
        &self.halves[index as usize * self.stride..][..self.stride]
    }

    /// Records `v` in `bucket` (`+Inf` last) without waiting for anyone.
    pub(super) fn record(&self, bucket: usize, v: f64) {
        // Acquire: see the module docs (first ordering point).
        let started = self.started_and_hot.fetch_add(1, Ordering::Acquire);
        let half = self.half(started >> 63);
        half[FIRST_BUCKET + bucket].fetch_add(1, Ordering::Relaxed);
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
        // Relaxed: only collectors touch `drained`, and they hold the base lock.
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
            let buckets: Vec<u64> = cold[FIRST_BUCKET..]
                .iter()
                .map(|c| c.swap(0, Ordering::Relaxed))
                .collect();
            let sum = f64::from_bits(cold[SUM].swap(0f64.to_bits(), Ordering::Relaxed));
            cold[COMPLETED].store(0, Ordering::Relaxed);
            base.absorb(&buckets, sum);
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
        let o = Overflow::new(2);
        let base: Vec<AtomicU64> = (0..shard_len(2)).map(|_| AtomicU64::new(0)).collect();
        for round in 1..=3u64 {
            o.record(0, 0.5);
            o.record(2, 4.0);
            let g = lock(&base);
            o.drain_into(&g);
            assert_eq!(g.buckets().collect::<Vec<_>>(), [round, 0, round]);
            assert_eq!(g.sum(), 4.5 * round as f64);
        }
        // Nothing new: draining again changes nothing.
        let g = lock(&base);
        o.drain_into(&g);
        assert_eq!(g.buckets().collect::<Vec<_>>(), [3, 0, 3]);
    }
}
