//! One shard of a histogram series: a hot/cold pair of halves and the word that says
//! which half is hot. The protocol and every memory ordering are explained in the
//! parent module's documentation; this file implements it over a plain slice of atomic
//! cells so the same code runs on the series' base shard and on its stripes.
//!
//! Layout of a shard, `1 + 2 * stride` cells where `stride = buckets + 2`:
//! `[control, half 0: sum, bucket 0 ..= +Inf, half 1: sum, bucket 0 ..= +Inf]`.

use std::sync::atomic::{AtomicU64, Ordering};

/// Top bit of the control word: the index of the hot half.
const HOT_BIT: u64 = 1 << 63;
/// Cell of the control word: hot bit plus the number of observations held.
const CONTROL: usize = 0;
/// Offset of a half's `_sum` (as `f64` bits); its buckets follow.
pub(super) const SUM: usize = 0;
/// Offset of a half's first bucket.
pub(super) const FIRST_BUCKET: usize = 1;

/// Cells per half for `bounds` finite bucket bounds: the sum, one cell per finite
/// bucket and one for `+Inf` (values above every bound, and NaN).
#[inline]
pub(super) const fn stride(bounds: usize) -> usize {
    bounds + 2
}

/// Cells of a whole shard.
pub(super) const fn shard_len(bounds: usize) -> usize {
    1 + 2 * stride(bounds)
}

/// Records `v` in bucket `bucket` (non-cumulative index, `+Inf` last) of the hot half.
/// Returns true when another thread updated the sum at the same time, which is how a
/// series notices contention without any extra shared write.
#[inline]
pub(super) fn observe(shard: &[AtomicU64], stride: usize, bucket: usize, v: f64) -> bool {
    // Acquire: the half we are about to write was zeroed by the collector whose flip
    // (Release) made it hot again; our increments must land after that zeroing.
    let word = shard[CONTROL].fetch_add(1, Ordering::Acquire);
    let half = &shard[1 + (word >> 63) as usize * stride..][..stride];
    let contended = add_f64(&half[SUM], v);
    // Release: completes the observation, publishing the sum update above to the
    // collector that waits for this bucket to reach its final value.
    half[FIRST_BUCKET + bucket].fetch_add(1, Ordering::Release);
    contended
}

/// Adds `delta` to the `f64` stored as bits in `cell`; true when the first attempt
/// lost a race (the cell was contended).
///
/// Relaxed: the sum is published by the bucket increment that follows it.
#[inline]
fn add_f64(cell: &AtomicU64, delta: f64) -> bool {
    let mut current = cell.load(Ordering::Relaxed);
    let mut contended = false;
    loop {
        let next = (f64::from_bits(current) + delta).to_bits();
        match cell.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return contended,
            Err(actual) => {
                contended = true;
                current = actual;
            }
        }
    }
}

/// A frozen cold half: every observation it will ever receive has completed, and no
/// observer can start on it until the next flip.
pub(super) struct Frozen<'a> {
    /// Number of observations in `cold` (the sum of its buckets).
    pub(super) held: u64,
    /// The half observers write now.
    pub(super) hot: &'a [AtomicU64],
    /// The frozen half: `[sum, bucket 0 ..= +Inf]`, not cumulative.
    pub(super) cold: &'a [AtomicU64],
}

/// Flips the hot bit and waits until the now-cold half holds every observation that
/// started before the flip. Callers must hold the series' collect lock.
pub(super) fn freeze(shard: &[AtomicU64], stride: usize) -> Frozen<'_> {
    // AcqRel: Release publishes the zeroing of the half that becomes hot to the
    // observers that Acquire it (see `observe`); Acquire keeps the reads of the cold
    // half below after the flip that froze it.
    let after = shard[CONTROL]
        .fetch_add(HOT_BIT, Ordering::AcqRel)
        .wrapping_add(HOT_BIT);
    let held = after & !HOT_BIT;
    let hot_index = (after >> 63) as usize;
    let hot = &shard[1 + hot_index * stride..][..stride];
    let cold = &shard[1 + (hot_index ^ 1) * stride..][..stride];
    let mut spins = 0u32;
    // Every bucket only grows while frozen and the final values add up to `held`, so
    // the loaded values add up to `held` exactly when each one is final.
    while completed(cold) != held {
        // An observer between its first and last atomic step: a few instructions
        // away, unless it was preempted, in which case give it the CPU.
        spins = spins.saturating_add(1);
        if spins < 64 {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
    Frozen { held, hot, cold }
}

/// The number of completed observations in a half.
fn completed(half: &[AtomicU64]) -> u64 {
    half[FIRST_BUCKET..]
        .iter()
        // Acquire: reading a bucket's final value synchronises with every completing
        // increment before it, so their sum updates are visible to the reads after.
        .map(|b| b.load(Ordering::Acquire))
        .fold(0u64, u64::wrapping_add)
}

/// Adds the frozen half `from` into `to` and zeroes `from`. `to` may be written by
/// observers at the same time (it is a hot half) or not (a frozen one): the adds are
/// atomic read-modify-writes either way.
///
/// Relaxed throughout: `from` is frozen and only collectors, serialised by the collect
/// lock, touch it; `to` is published to the next collector by that same lock and to
/// observers by the next flip's Release.
pub(super) fn drain_into(from: &[AtomicU64], to: &[AtomicU64]) {
    let sum = f64::from_bits(from[SUM].load(Ordering::Relaxed));
    if sum.to_bits() != 0 {
        add_f64(&to[SUM], sum);
        from[SUM].store(0, Ordering::Relaxed);
    }
    for (src, dst) in from[FIRST_BUCKET..].iter().zip(&to[FIRST_BUCKET..]) {
        let n = src.load(Ordering::Relaxed);
        if n != 0 {
            dst.fetch_add(n, Ordering::Relaxed);
            src.store(0, Ordering::Relaxed);
        }
    }
}

/// Moves `n` observations' worth of accounting from shard `from` to shard `to` after
/// their cells were drained from one to the other, so each control word again counts
/// exactly the observations its halves hold.
///
/// Relaxed: the counts only matter to the next collector, which is ordered after this
/// one by the collect lock; the hot bit is untouched, and observers' Acquire still
/// synchronises with the last flip because read-modify-writes continue its release
/// sequence.
pub(super) fn transfer_count(from: &[AtomicU64], to: &[AtomicU64], n: u64) {
    from[CONTROL].fetch_sub(n, Ordering::Relaxed);
    to[CONTROL].fetch_add(n, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(bounds: usize) -> Vec<AtomicU64> {
        (0..shard_len(bounds)).map(|_| AtomicU64::new(0)).collect()
    }

    #[test]
    fn freeze_sees_every_observation_and_drain_moves_them() {
        let s = shard(2);
        let stride = stride(2);
        for (bucket, v) in [(0, 0.5), (2, 9.0), (2, f64::NAN)] {
            assert!(!observe(&s, stride, bucket, v));
        }
        let frozen = freeze(&s, stride);
        assert_eq!(frozen.held, 3);
        assert!(f64::from_bits(frozen.cold[SUM].load(Ordering::Relaxed)).is_nan());
        let counts: Vec<u64> = frozen.cold[FIRST_BUCKET..]
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        assert_eq!(counts, [1, 0, 2]);
        drain_into(frozen.cold, frozen.hot);
        assert!(frozen.cold.iter().all(|c| c.load(Ordering::Relaxed) == 0));
        // The next freeze finds everything again, in the other half.
        observe(&s, stride, 1, 1.0);
        let again = freeze(&s, stride);
        assert_eq!(again.held, 4);
        assert_eq!(completed(again.cold), 4);
    }

    #[test]
    fn transfer_keeps_counts_in_step_with_cells() {
        let (a, b) = (shard(1), shard(1));
        let stride = stride(1);
        observe(&a, stride, 0, 0.25);
        observe(&b, stride, 1, 4.0);
        let fa = freeze(&a, stride);
        let fb = freeze(&b, stride);
        drain_into(fa.cold, fb.cold);
        transfer_count(&a, &b, fa.held);
        drain_into(fb.cold, fb.hot);
        let fa = freeze(&a, stride);
        assert_eq!(fa.held, 0);
        let fb = freeze(&b, stride);
        assert_eq!(fb.held, 2);
        assert_eq!(f64::from_bits(fb.cold[SUM].load(Ordering::Relaxed)), 4.25);
    }
}
