//! A global allocator that counts what the current thread allocates, so the benchmark
//! can report bytes allocated per scrape and bytes per series for every library alike.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Wraps the system allocator; counts per thread, so the counts of one measurement are
/// not disturbed by other threads and counting costs no shared write.
pub struct Counting;

thread_local! {
    static ALLOCATED: Cell<u64> = const { Cell::new(0) };
    static FREED: Cell<u64> = const { Cell::new(0) };
}

fn add(counter: &'static std::thread::LocalKey<Cell<u64>>, bytes: usize) {
    // During thread teardown the counter may be gone; those bytes are not ours to count.
    let _ = counter.try_with(|c| c.set(c.get() + bytes as u64));
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(&ALLOCATED, layout.size());
        // SAFETY: forwarded as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        add(&ALLOCATED, layout.size());
        // SAFETY: forwarded as is.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add(&FREED, layout.size());
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add(&ALLOCATED, new_size);
        add(&FREED, layout.size());
        // SAFETY: forwarded as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Bytes allocated and freed by this thread so far.
#[derive(Clone, Copy)]
pub struct Mark {
    allocated: u64,
    freed: u64,
}

/// The current thread's counts.
pub fn mark() -> Mark {
    Mark {
        allocated: ALLOCATED.with(Cell::get),
        freed: FREED.with(Cell::get),
    }
}

impl Mark {
    /// Bytes allocated since `self` (whether or not freed again).
    pub fn allocated_since(self) -> u64 {
        mark().allocated - self.allocated
    }

    /// Bytes allocated and still held since `self`.
    pub fn retained_since(self) -> i64 {
        let now = mark();
        (now.allocated - self.allocated) as i64 - (now.freed - self.freed) as i64
    }
}
