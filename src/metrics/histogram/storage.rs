//! [`Storage`]: a series' whole state in one heap allocation.
//!
//! A family can hold ten thousand series, most of them idle, so the bytes of one series
//! matter. `Arc<Core>` plus a boxed slice of cells would be two allocations and 104
//! bytes for the usual five buckets; this reference-counted block with the cells
//! trailing its header is one allocation of 128 bytes, two cache lines: on the first,
//! a count, the shared bucket bounds, the pointer to stripes (null until a second
//! thread observes the series), the owner word of the base shard and, in the line's
//! other half, the memo of the last `_sum`'s text a scrape wrote (formatting a float
//! is the largest cost of rendering an idle series, whose sum does not change between
//! scrapes); on the second,
//! the base shard's cells. (Packed into 88 bytes, threads observing one series
//! through its stripes slowed its owner down by reading the header on the line the
//! owner writes: see `CELLS_OFFSET`.)
//!
//! After the cells, one word that neither the observe path nor the header's readers
//! touch, the tail: the series' creation time (its start timestamp), until its first
//! exemplar replaces it with a pointer to the exemplars (`exemplar.rs`), which hold the
//! creation time from then on. One word, so that four bounds still fit in 128 bytes
//! (the cells end 8 bytes short of the second line's end); a bounds count whose cells
//! fill their last line whole takes a line more for it.
//!
//! This is the one place in the histogram that uses `unsafe`: each block is commented
//! with why it is sound.

use std::alloc::{self, Layout};
use std::ptr::{self, NonNull};
use std::sync::Arc;
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::Buckets;
use super::shard::shard_len;
use super::stripes::Stripes;
use crate::exposition::values::MEMO_CELLS;
use crate::metrics::exemplar::ExemplarStore;

/// The start of the block; the cells follow it.
#[repr(C)]
struct Header {
    refs: AtomicUsize,
    buckets: Arc<Buckets>,
    /// Null, or a `Box<Stripes>` leaked into this pointer and owned by the block.
    stripes: AtomicPtr<Stripes>,
    /// Who may write the base shard (see `owner.rs`).
    owner: AtomicU64,
    /// The text of the last `_sum` a scrape wrote (see `F64TextMemo`), in the
    /// header line's otherwise unused half: written by a scrape only when the sum
    /// changed, so it seldom takes the line from the observers reading it.
    sum_memo: [AtomicU64; MEMO_CELLS],
}

/// The end of the block, after the cells, which only exemplar writers and scrapes
/// read: the creation time in milliseconds since the Unix epoch, shifted left by one
/// with the low bit set (no address: `Box` pointers are aligned), or a
/// `Box<Extras>` leaked into the pointer and owned by the block.
type Tail = AtomicPtr<Extras>;

/// What a series holds once it has had an exemplar.
struct Extras {
    created: SystemTime,
    exemplars: ExemplarStore,
}

/// The tail of a series created at `time` without exemplars.
fn tagged(time: SystemTime) -> *mut Extras {
    let millis = time
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    // Shifted left by one, the low bit marks a time; 2^62 ms is 146 million years.
    let millis = usize::try_from(millis).unwrap_or(usize::MAX >> 1) & (usize::MAX >> 1);
    ptr::without_provenance_mut(millis << 1 | 1)
}

/// The time a tagged tail holds, or `None` for a pointer (or null).
fn untagged(tail: *mut Extras) -> Option<SystemTime> {
    let word = tail.addr();
    (word & 1 == 1).then(|| UNIX_EPOCH + Duration::from_millis((word >> 1) as u64))
}

/// A counted reference to one series' block (cloning shares it, like `Arc`).
pub(super) struct Storage {
    ptr: NonNull<Header>,
}

// SAFETY: the block holds only atomics and an `Arc<Buckets>` (itself Send + Sync), and
// every mutation after construction goes through atomics, so handles may move between
// and be shared across threads.
unsafe impl Send for Storage {}
// SAFETY: as above.
unsafe impl Sync for Storage {}

/// Byte offset of the first cell: one cache line. The header is read on every
/// observation by every thread (the owner word, the stripes pointer, the bounds) and
/// written almost never, while the base shard's cells are written by their owner on
/// every observation; on one line, each write of the owner would take the line from
/// the other threads' caches and each of their reads take it back.
const CELLS_OFFSET: usize = 64;

/// The block's layout for `cells` cells: the header alone on the first line, and the
/// offset of the tail.
fn layout(cells: usize) -> (Layout, usize) {
    const _: () = assert!(std::mem::size_of::<Header>() <= CELLS_OFFSET);
    let header = Layout::from_size_align(CELLS_OFFSET, CELLS_OFFSET).expect("a cache line");
    let cells = Layout::array::<AtomicU64>(cells).expect("cell count fits in memory");
    let (layout, offset) = header
        .extend(cells)
        .expect("header plus cells fits in memory");
    assert_eq!(offset, CELLS_OFFSET, "cells start on the second line");
    let (layout, tail) = layout
        .extend(Layout::new::<Tail>())
        .expect("the tail fits in memory");
    (layout.pad_to_align(), tail)
}

impl Storage {
    /// A block with every cell zero, whose owner word is `owner` (`owner::NONE` or
    /// `owner::NEVER`).
    pub(super) fn new(buckets: Arc<Buckets>, owner: u64) -> Storage {
        let (layout, tail) = layout(shard_len(&buckets));
        // SAFETY: the layout is non-zero-sized (the header alone is a cache line).
        let raw = unsafe { alloc::alloc_zeroed(layout) };
        let Some(ptr) = NonNull::new(raw.cast::<Header>()) else {
            alloc::handle_alloc_error(layout)
        };
        // SAFETY: `ptr` is freshly allocated, aligned for `Header` and large enough;
        // writing does not drop the (zeroed, meaningless) old contents. The cells stay
        // zeroed, which is a valid `AtomicU64` 0.
        unsafe {
            ptr.as_ptr().write(Header {
                refs: AtomicUsize::new(1),
                buckets,
                stripes: AtomicPtr::new(ptr::null_mut()),
                owner: AtomicU64::new(owner),
                sum_memo: Default::default(),
            });
            // SAFETY: `tail` is the tail's offset in this very layout, so aligned and
            // inside the allocation; nothing was there to drop.
            raw.add(tail)
                .cast::<Tail>()
                .write(AtomicPtr::new(tagged(SystemTime::now())));
        }
        Storage { ptr }
    }

    fn tail(&self) -> &Tail {
        let offset = layout(shard_len(self.buckets())).1;
        // SAFETY: `new` wrote a `Tail` at this offset of the block, which lives while
        // any `Storage` pointing to it does.
        unsafe { &*self.ptr.as_ptr().cast::<u8>().add(offset).cast::<Tail>() }
    }

    /// The extras, if the series has had an exemplar.
    fn extras(&self) -> Option<&Extras> {
        // Acquire: see the extras fully initialised by the thread that installed them.
        let p = self.tail().load(Ordering::Acquire);
        if untagged(p).is_some() {
            return None;
        }
        // SAFETY: untagged and non-null only after `install_exemplars` published a
        // valid `Box`, which is freed only with the block.
        unsafe { p.as_ref() }
    }

    /// When the series was created (to the millisecond).
    pub(super) fn created(&self) -> SystemTime {
        match self.extras() {
            Some(extras) => extras.created,
            None => untagged(self.tail().load(Ordering::Acquire)).unwrap_or(UNIX_EPOCH),
        }
    }

    /// The exemplars, if the series has had one.
    pub(super) fn exemplars(&self) -> Option<&ExemplarStore> {
        self.extras().map(|e| &e.exemplars)
    }

    /// The exemplars, allocated (with `make`) unless another thread already did.
    #[cold]
    pub(super) fn install_exemplars(&self, make: impl FnOnce() -> ExemplarStore) -> &ExemplarStore {
        // Relaxed: a tagged time never changes, and a pointer is checked by `extras`.
        let time = self.tail().load(Ordering::Relaxed);
        if let Some(extras) = self.extras() {
            return &extras.exemplars;
        }
        let fresh = Box::into_raw(Box::new(Extras {
            created: untagged(time).unwrap_or(UNIX_EPOCH),
            exemplars: make(),
        }));
        // Release on success, Acquire on failure: as for the stripes, the extras'
        // initialisation is published with the pointer. The tail only ever changes
        // from the time to a pointer, so a failure found another thread's pointer.
        match self
            .tail()
            .compare_exchange(time, fresh, Ordering::Release, Ordering::Acquire)
        {
            // SAFETY: just published; freed only with the block.
            Ok(_) => unsafe { &(*fresh).exemplars },
            Err(winner) => {
                // SAFETY: `fresh` came from `Box::into_raw` above and was never shared;
                // `winner` is another thread's published `Box`, freed only with the
                // block.
                unsafe {
                    drop(Box::from_raw(fresh));
                    &(*winner).exemplars
                }
            }
        }
    }

    fn header(&self) -> &Header {
        // SAFETY: the block lives while any `Storage` pointing to it does (`refs`), and
        // the header was initialised in `new`.
        unsafe { self.ptr.as_ref() }
    }

    /// The shared bucket bounds.
    #[inline]
    pub(super) fn buckets(&self) -> &Buckets {
        &self.header().buckets
    }

    /// The shared bucket bounds, as the `Arc` the series was made with.
    pub(super) fn buckets_arc(&self) -> &Arc<Buckets> {
        &self.header().buckets
    }

    /// The base shard's owner word.
    #[inline]
    pub(super) fn owner(&self) -> &AtomicU64 {
        &self.header().owner
    }

    /// The base shard's cells.
    #[inline]
    pub(super) fn cells(&self) -> &[AtomicU64] {
        self.buckets_and_cells().1
    }

    /// The shared bucket bounds and the base shard's cells, from one read of the
    /// header. The observe path wants both; asked for one after the other, the header
    /// is read again (it holds atomics, so the compiler may not assume it unchanged
    /// across the owner check in between), a dependent load more per observation.
    #[inline]
    pub(super) fn buckets_and_cells(&self) -> (&Buckets, &[AtomicU64]) {
        let buckets = self.buckets();
        let len = shard_len(buckets);
        // SAFETY: `new` allocated exactly `len` cells at `CELLS_OFFSET` from the header
        // (checked by `layout`), all initialised (zeroed), and they live as long as
        // `self` borrows the block.
        unsafe {
            let first = self
                .ptr
                .as_ptr()
                .cast::<u8>()
                .add(CELLS_OFFSET)
                .cast::<AtomicU64>();
            (buckets, std::slice::from_raw_parts(first, len))
        }
    }

    /// The memo of the `_sum`'s text (see `F64TextMemo`).
    #[inline]
    pub(super) fn sum_memo(&self) -> &[AtomicU64; MEMO_CELLS] {
        &self.header().sum_memo
    }

    /// The stripes, if the series has been contended.
    #[inline]
    pub(super) fn stripes(&self) -> Option<&Stripes> {
        // Acquire: see the stripes fully initialised by the thread that installed them.
        let p = self.header().stripes.load(Ordering::Acquire);
        // SAFETY: non-null only after `install_stripes` published a valid `Box`, which
        // is freed only with the block.
        unsafe { p.as_ref() }
    }

    /// Allocates the stripes unless another thread already did, and returns them;
    /// `near` is a value being observed (the overflow's native buckets centre on it).
    #[cold]
    pub(super) fn install_stripes(&self, near: f64) -> &Stripes {
        if let Some(stripes) = self.stripes() {
            return stripes;
        }
        let fresh = Box::into_raw(Box::new(Stripes::new(self.buckets(), near)));
        // Release on success: publishes the initialised stripes to the Acquire loads
        // in `stripes`. Relaxed on failure, with an Acquire fence below before use.
        let won = self.header().stripes.compare_exchange(
            ptr::null_mut(),
            fresh,
            Ordering::Release,
            Ordering::Relaxed,
        );
        match won {
            // SAFETY: we just published `fresh`; it is freed only with the block.
            Ok(_) => unsafe { &*fresh },
            Err(winner) => {
                // SAFETY: `fresh` came from `Box::into_raw` above and was never shared.
                drop(unsafe { Box::from_raw(fresh) });
                // Acquire fence: pairs with the winner's Release compare-exchange, whose
                // value the failed (Relaxed) compare-exchange read, so its initialisation
                // of the stripes is visible before we use them.
                std::sync::atomic::fence(Ordering::Acquire);
                // SAFETY: non-null (the exchange failed because it was set), published
                // as above, and freed only with the block.
                unsafe { &*winner }
            }
        }
    }

    /// Hints the CPU to fetch the block's first two cache lines (see `prefetch`): the
    /// header and the base shard a scrape reads first, and most of the memo.
    #[inline]
    pub(super) fn prefetch(&self) {
        let p = self.ptr.as_ptr().cast::<u8>();
        crate::metrics::prefetch::read(p);
        crate::metrics::prefetch::read(p.wrapping_add(64));
    }

    #[cfg(test)]
    /// Heap bytes of this series: the block plus its stripes, if any.
    pub(super) fn heap_bytes(&self) -> usize {
        layout(shard_len(self.buckets())).0.size()
            + self.extras().map_or(0, |_| std::mem::size_of::<Extras>())
            + self
                .stripes()
                .map_or(0, |s| std::mem::size_of::<Stripes>() + s.heap_bytes())
    }
}

impl Clone for Storage {
    fn clone(&self) -> Self {
        // Relaxed: the new reference comes from an existing one, which keeps the block
        // alive meanwhile; nothing else is published (the same reasoning as `Arc`).
        let old = self.header().refs.fetch_add(1, Ordering::Relaxed);
        if old > isize::MAX as usize {
            // Billions of leaked clones: stop before the count can wrap to zero.
            std::process::abort();
        }
        Storage { ptr: self.ptr }
    }
}

impl Drop for Storage {
    fn drop(&mut self) {
        // Release: every use of the block through this handle happens before the
        // decrement that may let another thread free it.
        if self.header().refs.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        // Acquire: pairs with the Release decrements of all other handles, so their
        // uses happen before the free below.
        std::sync::atomic::fence(Ordering::Acquire);
        let (layout, tail) = layout(shard_len(self.buckets()));
        // SAFETY: we held the last reference, so nothing else can reach the block. The
        // stripes and exemplar pointers, when non-null, came from `Box::into_raw` and
        // are owned by the block; the tail and the header are dropped once, then the
        // memory is freed with the layout it was allocated with.
        unsafe {
            let header = self.ptr.as_ptr();
            let stripes = (*header).stripes.load(Ordering::Relaxed);
            if !stripes.is_null() {
                drop(Box::from_raw(stripes));
            }
            let tail = (*header.cast::<u8>().add(tail).cast::<Tail>()).load(Ordering::Relaxed);
            if untagged(tail).is_none() && !tail.is_null() {
                drop(Box::from_raw(tail));
            }
            ptr::drop_in_place(header);
            alloc::dealloc(header.cast::<u8>(), layout);
        }
    }
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("bounds", &self.buckets().bounds())
            .field("striped", &self.stripes().is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_block_of_two_lines_for_four_bounds() {
        let s = Storage::new(Buckets::new(&[0.01, 0.1, 0.5, 2.0]).unwrap(), 0);
        assert_eq!(s.heap_bytes(), 128);
        assert!(s.cells().iter().all(|c| c.load(Ordering::Relaxed) == 0));
        assert!(s.stripes().is_none());
    }

    /// The creation time survives the first exemplar, which replaces the tail word
    /// it was kept in.
    #[test]
    fn the_creation_time_moves_with_the_first_exemplar() {
        let before = SystemTime::now() - Duration::from_millis(1);
        let s = Storage::new(Buckets::new(&[1.0]).unwrap(), 0);
        let created = s.created();
        assert!(
            created >= before && created <= SystemTime::now(),
            "{created:?}"
        );
        assert!(s.exemplars().is_none());
        let store = s.install_exemplars(|| ExemplarStore::new(2, 0)) as *const _;
        assert_eq!(s.install_exemplars(|| unreachable!()) as *const _, store);
        assert_eq!(s.created(), created);
        assert!(s.exemplars().is_some());
        let t = UNIX_EPOCH + Duration::from_millis(1_765_000_000_123);
        assert_eq!(untagged(tagged(t)), Some(t));
        assert_eq!(
            untagged(tagged(UNIX_EPOCH - Duration::from_secs(1))),
            Some(UNIX_EPOCH)
        );
    }

    #[test]
    fn clones_share_and_last_drop_frees_stripes() {
        let buckets = Buckets::new(&[1.0]).unwrap();
        let a = Storage::new(Arc::clone(&buckets), 0);
        let b = a.clone();
        a.cells()[1].store(7, Ordering::Relaxed);
        assert_eq!(b.cells()[1].load(Ordering::Relaxed), 7);
        b.install_stripes(1.0);
        b.install_stripes(1.0);
        assert!(a.stripes().is_some());
        assert!(a.heap_bytes() > 128);
        assert_eq!(Arc::strong_count(&buckets), 2);
        drop(a);
        assert_eq!(Arc::strong_count(&buckets), 2);
        drop(b);
        assert_eq!(
            Arc::strong_count(&buckets),
            1,
            "the block dropped its bounds"
        );
    }
}
