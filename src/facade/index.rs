//! The lookup a macro call makes: from a `metrics::Key` to the handle of its series,
//! without a lock, a hash computation or an atomic read-modify-write.
//!
//! Every `counter!`/`gauge!`/`histogram!` call asks the recorder for its handle, so
//! this lookup is on the observe path. A key carries its hash, computed once (at
//! compile time for literal keys), so a lookup is a probe of an open-addressing table
//! and one comparison of the key found (`Key`'s equality compares the hashes
//! first and ignores the order of labels).
//!
//! Slots are written once and never changed or removed ([`OnceLock`]), so a reader
//! needs no lock: a slot it sees filled stays filled with the same entry. Inserts are
//! serialised by the caller (the recorder's mutex). A table is never resized in place:
//! when it is half full, a table twice its size is chained after it and takes the new
//! entries, so readers of the old table are never disturbed. A lookup probes the
//! tables in order; at half load each probe ends after a few slots. The number of
//! entries is bounded by [`MAX_ENTRIES`]; past it nothing is added and the recorder
//! answers from its families (correct, only slower).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use ::metrics::Key;

/// Slots of the first table (a power of two).
const FIRST_SLOTS: usize = 256;

/// Entries the index holds at most (a few megabytes).
pub const MAX_ENTRIES: usize = 1 << 16;

struct Slot<T> {
    key: Key,
    value: T,
}

struct Table<T> {
    slots: Box<[OnceLock<Slot<T>>]>,
    /// Filled slots; changed only by inserts, which the caller serialises, so
    /// `Relaxed` suffices (readers never look at it).
    filled: AtomicUsize,
    next: OnceLock<Box<Table<T>>>,
}

impl<T> Table<T> {
    fn new(slots: usize) -> Table<T> {
        Table {
            slots: (0..slots).map(|_| OnceLock::new()).collect(),
            filled: AtomicUsize::new(0),
            next: OnceLock::new(),
        }
    }
}

/// Keys to values, append-only, read without locks.
pub struct Index<T> {
    first: Table<T>,
}

impl<T> Default for Index<T> {
    fn default() -> Self {
        Index {
            first: Table::new(FIRST_SLOTS),
        }
    }
}

impl<T> Index<T> {
    /// The value stored for `key`, if any.
    #[inline]
    pub fn get(&self, key: &Key) -> Option<&T> {
        let hash = key.get_hash();
        let mut table = &self.first;
        loop {
            let mask = table.slots.len() - 1;
            let mut i = hash as usize & mask;
            // Bounded: a table is at most half full, so an empty slot comes.
            while let Some(slot) = table.slots[i].get() {
                if same(&slot.key, key, hash) {
                    return Some(&slot.value);
                }
                i = (i + 1) & mask;
            }
            table = table.next.get()?;
        }
    }

    /// Stores `value` for `key` unless the index is full. The caller serialises
    /// inserts and has checked that `key` is absent.
    pub fn insert(&self, key: &Key, value: T) {
        let mut table = &self.first;
        let mut entries = 0;
        while let Some(next) = table.next.get() {
            entries += table.filled.load(Ordering::Relaxed);
            table = next;
        }
        let filled = table.filled.load(Ordering::Relaxed);
        if entries + filled >= MAX_ENTRIES {
            return;
        }
        if 2 * (filled + 1) > table.slots.len() {
            let bigger = Table::new(2 * table.slots.len());
            table = table.next.get_or_init(|| Box::new(bigger));
        }
        let hash = key.get_hash();
        let mask = table.slots.len() - 1;
        let mut i = hash as usize & mask;
        let mut slot = Some(Slot {
            key: key.clone(),
            value,
        });
        // Bounded like `get`: at most half the slots are filled.
        while let Some(s) = slot.take() {
            if let Err(back) = table.slots[i].set(s) {
                slot = Some(back);
                i = (i + 1) & mask;
            }
        }
        table.filled.fetch_add(1, Ordering::Relaxed);
    }
}

/// Whether `stored` (whose hash is `hash`) is the same key as `key`. `Key`'s own
/// equality sorts both label lists (two sorts per comparison with three labels or
/// more); a macro call site passes its labels in the same order every time, so the
/// labels are compared in order first, and only keys that differ in order fall back
/// to the sorting comparison.
#[inline]
fn same(stored: &Key, key: &Key, hash: u64) -> bool {
    stored.get_hash() == hash && (in_order(stored, key) || stored == key)
}

/// Name and labels equal, labels in the same order. A key a macro builds from
/// literals keeps its labels in a static array, and the stored clone of it points at
/// the same array: then one comparison of addresses settles all of them.
#[inline]
fn in_order(stored: &Key, key: &Key) -> bool {
    let (mine, theirs) = (stored.labels().as_slice(), key.labels().as_slice());
    same_str(stored.name(), key.name())
        && mine.len() == theirs.len()
        && (std::ptr::eq(mine.as_ptr(), theirs.as_ptr())
            || mine
                .iter()
                .zip(theirs)
                .all(|(a, b)| same_str(a.key(), b.key()) && same_str(a.value(), b.value())))
}

/// String equality that skips the bytes when both are the same string: the stored
/// key is a clone of the first key seen, and a clone of a `&'static str` (a literal,
/// or a value from a static table) or of a shared string points at the same bytes as
/// every later key of the call site.
#[inline]
fn same_str(a: &str, b: &str) -> bool {
    (std::ptr::eq(a.as_ptr(), b.as_ptr()) && a.len() == b.len()) || a == b
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::metrics::Label;

    fn key(i: usize) -> Key {
        Key::from_parts("k", vec![Label::new("i", i.to_string())])
    }

    #[test]
    fn finds_what_was_inserted_across_chained_tables() {
        let index = Index::default();
        let n = 10 * FIRST_SLOTS;
        for i in 0..n {
            assert!(index.get(&key(i)).is_none());
            index.insert(&key(i), i);
        }
        for i in 0..n {
            assert_eq!(index.get(&key(i)), Some(&i), "{i}");
        }
        assert!(index.get(&key(n)).is_none());
        // The same name and labels in another order are the same key.
        let two = Key::from_parts("k", vec![Label::new("a", "1"), Label::new("b", "2")]);
        let swapped = Key::from_parts("k", vec![Label::new("b", "2"), Label::new("a", "1")]);
        index.insert(&two, n);
        assert_eq!(index.get(&swapped), Some(&n));
    }

    #[test]
    fn equal_strings_at_other_addresses_are_the_same_key() {
        let index = Index::default();
        let stored = Key::from_parts("k", vec![Label::new("a", String::from("1"))]);
        index.insert(&stored, 7);
        let copy = Key::from_parts(String::from("k"), vec![Label::new("a", "1")]);
        assert_eq!(index.get(&copy), Some(&7));
        let other = Key::from_parts("k", vec![Label::new("a", "2")]);
        assert_eq!(index.get(&other), None);
    }

    #[test]
    fn readers_on_other_threads_see_complete_entries() {
        let index = Index::default();
        std::thread::scope(|s| {
            let reader = s.spawn(|| {
                let mut seen = 0;
                // Bounded: stops once every entry was seen or after a second.
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
                while seen < 2_000 && std::time::Instant::now() < deadline {
                    if let Some(v) = index.get(&key(seen)) {
                        assert_eq!(*v, seen);
                        seen += 1;
                    }
                }
                seen
            });
            for i in 0..2_000 {
                index.insert(&key(i), i);
            }
            assert_eq!(reader.join().unwrap(), 2_000);
        });
    }
}
