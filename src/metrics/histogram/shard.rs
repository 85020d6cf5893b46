//! One shard of a histogram series: a lock word, the `_sum` and one count per bucket,
//! kept in a slice of atomic cells so the same code runs on the series' base shard and
//! on its stripes. The parent module's documentation explains why a lock word and
//! every memory ordering.
//!
//! Layout, `bounds + 3` cells, then the native cells if the histogram keeps native
//! buckets (`native.rs`): `[lock, sum (f64 bits), bucket 0, ..., +Inf, native...]`,
//! buckets not cumulative (`_count` is their total).

use std::sync::atomic::{AtomicU64, Ordering};

use super::Buckets;
use super::native::NativeCells;

const LOCK: usize = 0;
const SUM: usize = 1;
const FIRST_BUCKET: usize = 2;

/// Cells of a shard for `buckets`.
#[inline]
pub(super) fn shard_len(buckets: &Buckets) -> usize {
    buckets.shard_len
}

/// Cells of a shard without native buckets, for `bounds` finite bounds.
pub(super) const fn classic_len(bounds: usize) -> usize {
    FIRST_BUCKET + bounds + 1
}

/// Index of the first cell after the classic buckets.
#[inline]
fn classic_end(buckets: &Buckets) -> usize {
    classic_len(buckets.bounds().len())
}

/// Exclusive access to a shard; unlocks when dropped.
pub(super) struct Guard<'a> {
    shard: &'a [AtomicU64],
    buckets: &'a Buckets,
}

/// Locks `shard` (of a histogram with `buckets`) if nobody holds it.
#[inline]
pub(super) fn try_lock<'a>(shard: &'a [AtomicU64], buckets: &'a Buckets) -> Option<Guard<'a>> {
    let lock = &shard[LOCK];
    // Relaxed: only a hint that saves taking the line exclusively when it is busy; the
    // compare-exchange below decides.
    if lock.load(Ordering::Relaxed) != 0 {
        return None;
    }
    // Acquire: this holder must see every update the previous holder made, published
    // by its Release unlock.
    lock.compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
        .ok()
        .map(|_| Guard { shard, buckets })
}

/// Locks `shard`, waiting for its holder. Holders keep it for a few instructions, or
/// for one series' rendering; a holder that was preempted gets the CPU back.
pub(super) fn lock<'a>(shard: &'a [AtomicU64], buckets: &'a Buckets) -> Guard<'a> {
    let mut spins = 0u32;
    loop {
        if let Some(guard) = try_lock(shard, buckets) {
            return guard;
        }
        spins = spins.saturating_add(1);
        if spins < 64 {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}

// Relaxed for every cell access through a guard: the lock's Acquire and Release order
// them, and no one touches a shard's cells without holding its lock.
impl Guard<'_> {
    /// Records `v` in classic bucket `bucket` (`+Inf` last) and, if `NATIVE` (the
    /// histogram keeps native buckets), in the native buckets. Plain loads and stores:
    /// the lock makes read-modify-write instructions unnecessary.
    #[inline(always)]
    pub(super) fn record<const NATIVE: bool>(&self, bucket: usize, v: f64) {
        if NATIVE && let Some(native) = self.native() {
            native.record(v);
        }
        let sum = &self.shard[SUM];
        sum.store(
            (f64::from_bits(sum.load(Ordering::Relaxed)) + v).to_bits(),
            Ordering::Relaxed,
        );
        let count = &self.shard[FIRST_BUCKET + bucket];
        count.store(
            count.load(Ordering::Relaxed).wrapping_add(1),
            Ordering::Relaxed,
        );
    }

    /// The `_sum`.
    pub(super) fn sum(&self) -> f64 {
        f64::from_bits(self.shard[SUM].load(Ordering::Relaxed))
    }

    /// The histogram's bucket bounds.
    pub(super) fn bucket_config(&self) -> &Buckets {
        self.buckets
    }

    fn classic(&self) -> &[AtomicU64] {
        &self.shard[FIRST_BUCKET..classic_end(self.buckets)]
    }

    /// The native cells, if the histogram keeps native buckets.
    #[inline]
    pub(super) fn native(&self) -> Option<NativeCells<'_>> {
        let native = self.buckets.native()?;
        Some(NativeCells::new(
            &self.shard[classic_end(self.buckets)..],
            native,
        ))
    }

    /// The non-cumulative bucket counts, `+Inf` last.
    pub(super) fn buckets(&self) -> impl ExactSizeIterator<Item = u64> + '_ {
        self.classic().iter().map(|c| c.load(Ordering::Relaxed))
    }

    /// Adds `n` to classic bucket `bucket` and `sum` to the sum, counted elsewhere
    /// (the overflow shard).
    pub(super) fn absorb(&self, bucket: usize, n: u64) {
        let cell = &self.classic()[bucket];
        cell.store(
            cell.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }

    /// Adds `sum` to the sum, counted elsewhere (the overflow shard).
    pub(super) fn absorb_sum(&self, sum: f64) {
        self.shard[SUM].store((self.sum() + sum).to_bits(), Ordering::Relaxed);
    }

    /// Zeroes every count and the sum, and returns the native buckets (if kept) to
    /// their configured resolution and zero threshold: the state of a new shard. The
    /// base shard also restarts its reset clock.
    pub(super) fn reset(&self) {
        for cell in &self.shard[SUM..] {
            cell.store(0, Ordering::Relaxed);
        }
        if let Some(native) = self.native() {
            native.start_reset_clock();
        }
    }

    /// Moves everything this shard holds into `into` and zeroes this shard.
    pub(super) fn drain_into(&self, into: &Guard<'_>) {
        if let (Some(from), Some(to)) = (self.native(), into.native()) {
            from.drain_into(&to);
        }
        for (from, to) in self.classic().iter().zip(into.classic()) {
            let n = from.load(Ordering::Relaxed);
            if n != 0 {
                to.store(
                    to.load(Ordering::Relaxed).wrapping_add(n),
                    Ordering::Relaxed,
                );
                from.store(0, Ordering::Relaxed);
            }
        }
        let sum = self.shard[SUM].load(Ordering::Relaxed);
        if sum != 0 {
            into.shard[SUM].store(
                (into.sum() + f64::from_bits(sum)).to_bits(),
                Ordering::Relaxed,
            );
            self.shard[SUM].store(0, Ordering::Relaxed);
        }
    }
}

impl Drop for Guard<'_> {
    #[inline]
    fn drop(&mut self) {
        // Release: publishes this holder's updates to the next holder's Acquire.
        self.shard[LOCK].store(0, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(buckets: &Buckets) -> Vec<AtomicU64> {
        (0..shard_len(buckets)).map(|_| AtomicU64::new(0)).collect()
    }

    #[test]
    fn lock_is_exclusive_until_dropped() {
        let b = Buckets::new(&[1.0]).unwrap();
        let s = shard(&b);
        let guard = try_lock(&s, &b).unwrap();
        assert!(try_lock(&s, &b).is_none());
        guard.record::<false>(0, 0.5);
        drop(guard);
        let again = lock(&s, &b);
        assert_eq!(again.sum(), 0.5);
        assert_eq!(again.buckets().collect::<Vec<_>>(), [1, 0]);
    }

    #[test]
    fn drain_moves_everything_and_zeroes() {
        let config = Buckets::new(&[1.0, 2.0]).unwrap();
        let (a, b) = (shard(&config), shard(&config));
        let (ga, gb) = (lock(&a, &config), lock(&b, &config));
        ga.record::<false>(0, 0.25);
        ga.record::<false>(2, f64::NAN);
        gb.record::<false>(1, 1.0);
        ga.drain_into(&gb);
        assert_eq!(ga.sum(), 0.0);
        assert_eq!(ga.buckets().sum::<u64>(), 0);
        assert!(gb.sum().is_nan());
        assert_eq!(gb.buckets().collect::<Vec<_>>(), [1, 1, 1]);
    }
}
