//! Stripes: extra shards a series grows once two threads observe it at the same time.
//!
//! Two cores incrementing the same cache line take turns owning it, so a shared series
//! scales negatively: two threads observe more slowly in total than one. Giving every
//! thread its own copy would cost memory on every series, though most series are never
//! contended. So a series starts with one shard and allocates stripes only when an
//! observation finds that shard taken. From then on each thread observes into the
//! stripe its probe picks; a thread that finds its stripe taken moves to another one.
//! Each stripe starts on its own 128-byte boundary (two cache lines, as adjacent-line
//! prefetchers pair them), so stripes never share a line.
//!
//! Beside the stripes sits the *collected* shard: a scrape moves every stripe and the
//! overflow shard into it, under its lock, because the base shard belongs to its
//! owner (`owner.rs`) and no other thread may write it. Its lock also serialises
//! collections.

use std::cell::Cell;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

use super::Buckets;
use super::overflow::Overflow;
use super::shard::shard_len;

/// Cells per 128 bytes.
const CELLS_PER_BLOCK: usize = 128 / std::mem::size_of::<AtomicU64>();

/// The extra shards of one series.
#[derive(Debug)]
pub(super) struct Stripes {
    /// Backing cells, over-allocated by one block so the first stripe can start on a
    /// 128-byte boundary.
    cells: Box<[AtomicU64]>,
    /// Index in `cells` of the first stripe's first cell.
    start: usize,
    /// Cells from one stripe's start to the next (a whole number of 128-byte blocks).
    pitch: usize,
    /// Cells a stripe uses.
    len: usize,
    /// Number of stripes minus one (the count is a power of two).
    mask: usize,
    /// Where observations go when every stripe is taken.
    overflow: Overflow,
}

impl Stripes {
    /// Zeroed stripes for a series with `buckets`; `near` centres the overflow shard's
    /// native buckets.
    pub(super) fn new(buckets: &Buckets, near: f64) -> Stripes {
        let len = shard_len(buckets);
        let pitch = len.div_ceil(CELLS_PER_BLOCK) * CELLS_PER_BLOCK;
        let count = stripe_count();
        // One more for the collected shard, after the stripes.
        let cells: Box<[AtomicU64]> = (0..(count + 1) * pitch + CELLS_PER_BLOCK)
            .map(|_| AtomicU64::new(0))
            .collect();
        let misalignment = (cells.as_ptr() as usize % 128) / std::mem::size_of::<AtomicU64>();
        let start = (CELLS_PER_BLOCK - misalignment) % CELLS_PER_BLOCK;
        Stripes {
            cells,
            start,
            pitch,
            len,
            mask: count - 1,
            overflow: Overflow::new(buckets, near),
        }
    }

    /// The stripe `step` places after the one the calling thread observes into: an
    /// observer that finds its stripe taken tries the next ones in turn, so it finds a
    /// free stripe whenever fewer threads hold one than there are stripes.
    #[inline]
    pub(super) fn for_this_thread(&self, step: usize) -> &[AtomicU64] {
        self.stripe((probe() as usize).wrapping_add(step) & self.mask)
    }

    fn stripe(&self, i: usize) -> &[AtomicU64] {
        &self.cells[self.start + i * self.pitch..][..self.len]
    }

    /// The shard that collections move the stripes and the overflow shard into.
    pub(super) fn collected(&self) -> &[AtomicU64] {
        self.stripe(self.mask + 1)
    }

    /// The shard of last resort, which never makes an observer wait.
    pub(super) fn overflow(&self) -> &Overflow {
        &self.overflow
    }

    /// The number of stripes.
    pub(super) fn len(&self) -> usize {
        self.mask + 1
    }

    /// Every stripe, for collection.
    pub(super) fn iter(&self) -> impl Iterator<Item = &[AtomicU64]> {
        (0..=self.mask).map(|i| self.stripe(i))
    }

    #[cfg(test)]
    /// Bytes this set of stripes takes on the heap.
    pub(super) fn heap_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.cells)
    }
}

/// Stripes per contended series: twice the usable CPUs rounded up to a power of two,
/// between 2 and 16, so the threads that can run at once rarely need to move.
fn stripe_count() -> usize {
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    // Relaxed: a cache of a value any thread can compute; racing threads store the same.
    match COUNT.load(Ordering::Relaxed) {
        0 => {
            let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
            let count = (2 * cpus).next_power_of_two().clamp(2, 16);
            COUNT.store(count, Ordering::Relaxed);
            count
        }
        n => n,
    }
}

thread_local! {
    /// This thread's stripe choice; 0 until first used.
    static PROBE: Cell<u32> = const { Cell::new(0) };
}

/// The calling thread's probe, assigned on first use so that threads started one after
/// another get different stripes.
#[inline]
fn probe() -> u32 {
    PROBE.with(|p| match p.get() {
        0 => {
            static NEXT: AtomicU32 = AtomicU32::new(1);
            // Relaxed: only distinctness matters, and fetch_add gives it.
            let fresh = NEXT.fetch_add(1, Ordering::Relaxed).max(1);
            p.set(fresh);
            fresh
        }
        n => n,
    })
}

/// Moves the calling thread to another stripe after it found its own taken.
#[cold]
pub(super) fn move_probe() {
    PROBE.with(|p| {
        // xorshift32: a cheap, never-zero sequence, so colliding threads part quickly.
        let mut x = p.get().max(1);
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p.set(x);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripes_are_aligned_and_disjoint() {
        let buckets = Buckets::new(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        let s = Stripes::new(&buckets, 1.0);
        let mut ranges: Vec<(usize, usize)> = s
            .iter()
            .map(|stripe| {
                let start = stripe.as_ptr() as usize;
                assert_eq!(start % 128, 0, "stripe not on a 128-byte boundary");
                assert_eq!(stripe.len(), shard_len(&buckets));
                (start, start + std::mem::size_of_val(stripe))
            })
            .collect();
        assert!(ranges.len().is_power_of_two() && ranges.len() >= 2);
        ranges.sort();
        assert!(ranges.windows(2).all(|w| w[0].1 <= w[1].0));
    }

    #[test]
    fn threads_get_different_probes_and_moving_changes_it() {
        let a = probe();
        let b = std::thread::spawn(probe).join().unwrap();
        assert_ne!(a, b);
        assert_eq!(probe(), a, "stable within a thread");
        move_probe();
        assert_ne!(probe(), a);
        assert_ne!(probe(), 0);
    }
}
