//! One shard of a histogram series: a lock word, the `_sum` and one count per bucket,
//! kept in a slice of atomic cells so the same code runs on the series' base shard and
//! on its stripes. The parent module's documentation explains why a lock word and
//! every memory ordering.
//!
//! Layout, `bounds + 3` cells, then the native cells if the histogram keeps native
//! buckets (`native.rs`): `[lock, sum (f64 bits), bucket 0, ..., +Inf, native...]`,
//! buckets not cumulative (`_count` is their total).
//!
//! A shard is written in one of two ways, by the same recording code: under its lock
//! word ([`try_lock`], a [`Guard`]: stripes and the collected shard), or by the one
//! thread that owns it, the base shard's owner (`owner.rs`), for which the first cell
//! is a sequence number instead ([`write_owned`], a [`Writer`]): odd while a write is
//! in progress, so that a reader ([`read_owned`]) can tell a whole copy from a torn
//! one without the writer ever executing an atomic read-modify-write.

use std::sync::atomic::{AtomicU64, Ordering, fence};

use super::Buckets;
use super::native::{Native, NativeCells};
use super::owner::Pause;

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
    view: View<'a>,
}

impl<'a> std::ops::Deref for Guard<'a> {
    type Target = View<'a>;

    fn deref(&self) -> &View<'a> {
        &self.view
    }
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
        .map(|_| Guard {
            view: View { shard, buckets },
        })
}

/// Locks `shard`, which no other thread can reach (a thread's scratch shard): no
/// atomic read-modify-write needed.
pub(super) fn lock_private<'a>(shard: &'a [AtomicU64], buckets: &'a Buckets) -> Guard<'a> {
    debug_assert_eq!(shard[LOCK].load(Ordering::Relaxed), 0, "not held");
    shard[LOCK].store(1, Ordering::Relaxed);
    Guard {
        view: View { shard, buckets },
    }
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

/// Records `v` in classic bucket `bucket` (`+Inf` last) of `shard`, which the caller
/// may write (holds its lock or owns it). Plain loads and stores: the lock or the
/// single writer makes read-modify-write instructions unnecessary.
#[inline(always)]
fn record_classic(shard: &[AtomicU64], bucket: usize, v: f64) {
    assert!(FIRST_BUCKET + bucket < shard.len(), "bucket in range");
    // SAFETY: just checked.
    unsafe { record_classic_unchecked(shard, bucket, v) };
}

/// [`record_classic`], and `v` in the native buckets (`native`, the histogram's
/// configuration of them, which the caller found once: looking it up again after the
/// first store would read it again).
#[inline(always)]
fn record_native(shard: &[AtomicU64], buckets: &Buckets, native: &Native, bucket: usize, v: f64) {
    native.record_in(&shard[classic_end(buckets)..], v);
    record_classic(shard, bucket, v);
}

/// [`record_classic`] or [`record_native`], as the histogram keeps native buckets or
/// not (the slow paths, which have not branched on that yet).
#[inline]
fn record_either(shard: &[AtomicU64], buckets: &Buckets, bucket: usize, v: f64) {
    match buckets.native() {
        Some(native) => record_native(shard, buckets, native, bucket, v),
        None => record_classic(shard, bucket, v),
    }
}

/// The native cells of `shard`, if the histogram keeps native buckets.
#[inline]
fn native_cells<'a>(shard: &'a [AtomicU64], buckets: &'a Buckets) -> Option<NativeCells<'a>> {
    let native = buckets.native()?;
    Some(NativeCells::new(&shard[classic_end(buckets)..], native))
}

/// A shard read in place: by a lock holder, or by a reader of the owner's base that
/// checks the sequence number afterwards (then what it reads may be torn, and is
/// thrown away).
#[derive(Clone, Copy)]
pub(super) struct View<'a> {
    shard: &'a [AtomicU64],
    buckets: &'a Buckets,
}

impl<'a> View<'a> {
    /// The `_sum`.
    pub(super) fn sum(&self) -> f64 {
        f64::from_bits(self.shard[SUM].load(Ordering::Relaxed))
    }

    /// The histogram's bucket bounds.
    pub(super) fn bucket_config(&self) -> &'a Buckets {
        self.buckets
    }

    fn classic(&self) -> &'a [AtomicU64] {
        &self.shard[FIRST_BUCKET..classic_end(self.buckets)]
    }

    /// The native cells, if the histogram keeps native buckets.
    #[inline]
    pub(super) fn native(&self) -> Option<NativeCells<'a>> {
        native_cells(self.shard, self.buckets)
    }

    /// The non-cumulative bucket counts, `+Inf` last.
    pub(super) fn buckets(&self) -> impl ExactSizeIterator<Item = u64> + 'a {
        self.classic().iter().map(|c| c.load(Ordering::Relaxed))
    }
}

/// Reads the owned `shard` in place with `read`, as one whole write of the owner:
/// `read` runs again if the owner wrote meanwhile, up to a few times (its result is
/// then `None`: copy the shard instead, see [`read_owned`]). Only for a histogram
/// without native buckets: its reading copes with any bits in any cell (a torn read
/// is thrown away, but must not panic), which the native buckets' ranges and indices
/// could not.
#[inline]
pub(super) fn read_in_place<R>(
    shard: &[AtomicU64],
    buckets: &Buckets,
    mut read: impl FnMut(&View<'_>) -> R,
) -> Option<R> {
    debug_assert!(buckets.native().is_none());
    let seq = &shard[LOCK];
    for _ in 0..3 {
        // Acquire, Acquire fence, Relaxed: as in `read_owned`.
        let before = seq.load(Ordering::Acquire);
        if before.is_multiple_of(2) {
            let result = read(&View { shard, buckets });
            fence(Ordering::Acquire);
            if seq.load(Ordering::Relaxed) == before {
                return Some(result);
            }
        }
        std::hint::spin_loop();
    }
    None
}

/// The owner's write of its base shard; publishes when dropped.
pub(super) struct Writer<'a> {
    shard: &'a [AtomicU64],
    buckets: &'a Buckets,
    /// The sequence number to store when done (even).
    done: u64,
}

/// Starts a write of `shard` by its owner, the only thread that ever writes it.
#[inline(always)]
pub(super) fn write_owned<'a>(shard: &'a [AtomicU64], buckets: &'a Buckets) -> Writer<'a> {
    // The writer's unchecked accesses rely on this. On the observe path the slice was
    // made from this very length, so the compiler drops the comparison.
    assert_eq!(shard.len(), shard_len(buckets), "a whole shard");
    // SAFETY: a whole shard has `classic_len(bounds) >= 3` cells, LOCK among them.
    let seq = unsafe { shard.get_unchecked(LOCK) };
    // Relaxed: only this thread writes the sequence number.
    let start = seq.load(Ordering::Relaxed);
    seq.store(start.wrapping_add(1), Ordering::Relaxed);
    // Release fence: a reader that sees any cell written below also sees the odd
    // number stored above (it reads the number again after an Acquire fence).
    fence(Ordering::Release);
    Writer {
        shard,
        buckets,
        done: start.wrapping_add(2),
    }
}

/// [`record_classic`] without its bounds check, for the owner's hot path: `_sum` and the
/// bucket's count are written with no comparison of `bucket` against the shard's length.
///
/// # Safety
///
/// `shard` has more than `FIRST_BUCKET + bucket` cells: it is a whole shard of a
/// histogram with at least `bucket` finite bounds.
#[inline(always)]
unsafe fn record_classic_unchecked(shard: &[AtomicU64], bucket: usize, v: f64) {
    debug_assert!(FIRST_BUCKET + bucket < shard.len());
    // SAFETY: SUM < FIRST_BUCKET + bucket < shard.len(), by the caller's promise.
    let sum = unsafe { shard.get_unchecked(SUM) };
    sum.store(
        (f64::from_bits(sum.load(Ordering::Relaxed)) + v).to_bits(),
        Ordering::Relaxed,
    );
    // SAFETY: as above.
    let count = unsafe { shard.get_unchecked(FIRST_BUCKET + bucket) };
    count.store(
        count.load(Ordering::Relaxed).wrapping_add(1),
        Ordering::Relaxed,
    );
}

impl Writer<'_> {
    /// Records `v` in classic bucket `bucket` of a histogram without native buckets.
    ///
    /// # Safety
    ///
    /// `bucket <= bounds().len()` (the `+Inf` bucket at most), as
    /// [`Buckets::short_index`](super::Buckets) and [`Buckets::index`](super::Buckets)
    /// return: the write is not bounds-checked.
    #[inline(always)]
    pub(super) unsafe fn record_classic(&self, bucket: usize, v: f64) {
        // SAFETY: the shard is whole (`write_owned` checks it) and so has
        // `classic_len(bounds) = FIRST_BUCKET + bounds + 1` cells at least, and
        // `bucket <= bounds` by the caller's promise.
        unsafe { record_classic_unchecked(self.shard, bucket, v) };
    }

    /// Records `v` in classic bucket `bucket` and in the native buckets, configured by
    /// `native` (the histogram's), and ends the write. What the native fast path
    /// leaves is done by a call that also ends the write, so that call is the last
    /// thing this does (see [`Native::record_fast`]), with few enough arguments to
    /// pass in registers.
    ///
    /// # Safety
    ///
    /// As for [`Writer::record_classic`]; `native` is the configuration of this
    /// writer's histogram (`buckets.native()`).
    #[inline(always)]
    pub(super) unsafe fn record_native(self, native: &Native, bucket: usize, v: f64) {
        debug_assert!(
            self.buckets
                .native()
                .is_some_and(|n| std::ptr::eq(n, native))
        );
        // SAFETY: as in `record_classic`.
        unsafe { record_classic_unchecked(self.shard, bucket, v) };
        let start = classic_end(self.buckets);
        // SAFETY: a whole shard of a histogram with native buckets holds the classic
        // cells and then exactly `native.cells()` native ones (`Buckets::with_native`
        // sizes the shard so), so `start..` is in range and holds what `record_fast`
        // requires.
        let cells = unsafe { self.shard.get_unchecked(start..) };
        // SAFETY: see the line above.
        if let Err(counted) = unsafe { native.record_fast(cells, v) } {
            let shard = self.shard;
            // `finish_native` ends the write instead of the drop.
            std::mem::forget(self);
            finish_native(shard, start, native, v, counted);
        }
    }
    /// [`Guard::record_either`] for the owner.
    pub(super) fn record_either(&self, bucket: usize, v: f64) {
        record_either(self.shard, self.buckets, bucket, v);
    }
}

/// The rest of [`Writer::record_native`], out of line: the native cells of `shard`
/// start at `start`. Ends the owner's write: the sequence number, odd while the
/// write is in progress, goes to the next even number (what the writer's drop stores).
#[cold]
#[inline(never)]
fn finish_native(shard: &[AtomicU64], start: usize, native: &Native, v: f64, counted: bool) {
    native.record_slow(&shard[start..], v, counted);
    let seq = &shard[LOCK];
    // Relaxed load: only this thread writes the sequence number. Release: as in the
    // writer's drop.
    seq.store(
        seq.load(Ordering::Relaxed).wrapping_add(1),
        Ordering::Release,
    );
}

impl Drop for Writer<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        // Release: a reader that reads this number (Acquire) sees every cell written.
        // SAFETY: the shard is whole (`write_owned` checked it), LOCK is in range.
        unsafe { self.shard.get_unchecked(LOCK) }.store(self.done, Ordering::Release);
    }
}

/// Copies the owned `shard` (whose owner word is `owner`) into `into`, which holds a
/// new shard's state, as one whole write of the owner: the copy is retried until the
/// sequence number shows no write in progress and none in between. After a few lost
/// races the owner is asked to pause (observe into the stripes), so the copy waits
/// for at most one write in progress, never for the owner to stop observing.
pub(super) fn read_owned(shard: &[AtomicU64], owner: &AtomicU64, into: &Guard<'_>) {
    let seq = &shard[LOCK];
    let mut pause = None;
    let mut spins = 0u32;
    for attempt in 0u32.. {
        if attempt == 4 {
            pause = Some(Pause::new(owner));
        }
        // Acquire: pairs with the owner's Release store of an even number, so the
        // cells read below hold at least that write.
        let before = seq.load(Ordering::Acquire);
        if before.is_multiple_of(2) {
            let whole = into.copy_from(shard);
            // Acquire fence: if a cell read above was written by a later write, the
            // odd number that write stored first is seen below.
            fence(Ordering::Acquire);
            if whole && seq.load(Ordering::Relaxed) == before {
                drop(pause);
                return;
            }
            into.clear();
        }
        spins = spins.saturating_add(1);
        if spins < 64 {
            std::hint::spin_loop();
        } else {
            // The owner was preempted mid-write: let it run.
            std::thread::yield_now();
        }
    }
}

// Relaxed for every cell access through a guard: the lock's Acquire and Release order
// them, and no one touches a shard's cells without holding its lock.
impl Guard<'_> {
    /// Records `v` in classic bucket `bucket` (`+Inf` last) and, if the histogram
    /// keeps native buckets, in the native buckets.
    pub(super) fn record_either(&self, bucket: usize, v: f64) {
        record_either(self.shard, self.buckets, bucket, v);
    }

    /// Copies `from` (a shard of the same histogram, possibly changing) into this
    /// shard, which must hold a new shard's state; false when the copy is certainly
    /// torn (see [`NativeCells::copy_from`]).
    fn copy_from(&self, from: &[AtomicU64]) -> bool {
        for (to, cell) in self.shard[SUM..classic_end(self.buckets)]
            .iter()
            .zip(&from[SUM..])
        {
            to.store(cell.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        match (self.native(), native_cells(from, self.buckets)) {
            (Some(to), Some(from)) => to.copy_from(&from),
            _ => true,
        }
    }

    /// Returns this shard to a new shard's state, assuming it holds only what
    /// [`Guard::copy_from`] and merges wrote (its native cells outside the occupied
    /// ranges are already zero).
    pub(super) fn clear(&self) {
        for cell in &self.shard[SUM..classic_end(self.buckets)] {
            cell.store(0, Ordering::Relaxed);
        }
        if let Some(native) = self.native() {
            native.clear();
        }
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
    /// collected shard (the one whose clock counts) also restarts its reset clock.
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
        self.merge_into(into, true);
    }

    /// Adds everything this shard holds into `into`, leaving this shard as it is.
    pub(super) fn add_into(&self, into: &Guard<'_>) {
        self.merge_into(into, false);
    }

    fn merge_into(&self, into: &Guard<'_>, drain: bool) {
        if let (Some(from), Some(to)) = (self.native(), into.native()) {
            from.merge_into(&to, drain);
        }
        for (from, to) in self.classic().iter().zip(into.classic()) {
            let n = from.load(Ordering::Relaxed);
            if n != 0 {
                to.store(
                    to.load(Ordering::Relaxed).wrapping_add(n),
                    Ordering::Relaxed,
                );
                if drain {
                    from.store(0, Ordering::Relaxed);
                }
            }
        }
        let sum = self.shard[SUM].load(Ordering::Relaxed);
        if sum != 0 {
            into.shard[SUM].store(
                (into.sum() + f64::from_bits(sum)).to_bits(),
                Ordering::Relaxed,
            );
            if drain {
                self.shard[SUM].store(0, Ordering::Relaxed);
            }
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
        guard.record_either(0, 0.5);
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
        ga.record_either(0, 0.25);
        ga.record_either(2, f64::NAN);
        gb.record_either(1, 1.0);
        ga.drain_into(&gb);
        assert_eq!(ga.sum(), 0.0);
        assert_eq!(ga.buckets().sum::<u64>(), 0);
        assert!(gb.sum().is_nan());
        assert_eq!(gb.buckets().collect::<Vec<_>>(), [1, 1, 1]);
    }
}
