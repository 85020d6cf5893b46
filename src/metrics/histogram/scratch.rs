//! The shard a collection assembles a series in: a copy of the owner's base plus the
//! collected shard, read by the encoder or a snapshot.
//!
//! A collection may not write the base (it belongs to its owner, `owner.rs`) and must
//! not add the collected shard into it, so it needs a shard of its own for the
//! duration of one series. Allocating one per series would allocate on every scrape;
//! instead each thread keeps one, grown to the largest shard it has assembled and
//! always returned to a new shard's state (all zero) after use, so that a copy only
//! writes what the series holds and a warm scrape allocates nothing.

use std::cell::RefCell;
use std::sync::atomic::AtomicU64;

use super::Buckets;
use super::shard::{self, Guard};

thread_local! {
    /// This thread's scratch cells, all zero between uses.
    static CELLS: RefCell<Vec<AtomicU64>> = const { RefCell::new(Vec::new()) };
}

/// Calls `f` with an empty shard of `len` cells for `buckets`, locked, and returns
/// it to the empty state afterwards (also when `f` unwinds).
pub(super) fn with<R>(buckets: &Buckets, len: usize, f: impl FnOnce(&Guard<'_>) -> R) -> R {
    CELLS.with(|cells| match cells.try_borrow_mut() {
        Ok(mut cells) => {
            if cells.len() < len {
                cells.resize_with(len, || AtomicU64::new(0));
            }
            run(&cells[..len], buckets, f)
        }
        // A collection inside a collection (an embedder's callback reading a
        // histogram while one is encoded): a fresh shard, once.
        Err(_) => {
            let fresh: Vec<AtomicU64> = (0..len).map(|_| AtomicU64::new(0)).collect();
            run(&fresh, buckets, f)
        }
    })
}

fn run<R>(cells: &[AtomicU64], buckets: &Buckets, f: impl FnOnce(&Guard<'_>) -> R) -> R {
    /// Empties the shard when dropped, after `f`, or while unwinding from it.
    struct Emptied<'a>(Guard<'a>);
    impl Drop for Emptied<'_> {
        fn drop(&mut self) {
            self.0.clear();
        }
    }
    let guard = Emptied(shard::lock_private(cells, buckets));
    f(&guard.0)
}
