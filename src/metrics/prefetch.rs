//! Cache hints for scrapes.
//!
//! A scrape of a large family reads each series' state and label text once, from
//! allocations spread over the heap (series are created in request order, visited in
//! index order), so every series starts with cache misses the hardware cannot predict:
//! the addresses come from pointers. Asking for a series' bytes a few series before
//! it is written hides much of that wait. A hint never faults and changes no
//! value, so a wrong address costs nothing but the hint.

/// Asks the CPU to bring the cache line holding `p` closer, for reading soon. `p` need
/// not be valid: a prefetch never faults.
#[inline(always)]
pub(crate) fn read<T: ?Sized>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `prefetcht0` only hints the cache; it does not access memory
    // architecturally and never faults, whatever the address. SSE, which the intrinsic
    // needs, is part of every x86-64 CPU.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// [`read`] for the cache lines of the `len` bytes at `p`'s start and end (all of
/// them for up to 65 bytes, such as a typical label set).
#[inline(always)]
pub(crate) fn read_span(p: *const u8, len: usize) {
    read(p);
    read(p.wrapping_add(len.saturating_sub(1)));
}
