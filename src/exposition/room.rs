//! [`Room`]: writing a run of bytes into a buffer's spare capacity, checked once.
//!
//! A histogram series is seven text lines of some twenty pieces (names, labels, `le`
//! values, digits). Appending them one by one with `extend_from_slice` and `push`
//! checks the capacity and updates the length each time, and every copy of a name or
//! label set is a `memcpy` call; together that was about half of a text render. A
//! writer that knows an upper bound of what it is about to write instead reserves it
//! once, writes every piece through a raw pointer, and sets the length once at the end.
//!
//! Two kinds of writes go beyond their own bytes, which is what makes them cheap: a
//! [`Padded`] value is copied whole (32 bytes, its length counted), and a copy of bytes
//! already in the buffer ([`Room::repeat`]) moves 32-byte chunks. Both may leave up to
//! [`PAD`] bytes of garbage after the end of what they count; the next write starts at
//! that end and overwrites it, and what remains after the last one lies beyond the
//! length, in spare capacity. `Room::new` reserves the caller's budget plus `PAD`.
//!
//! Bytes written once and needed again on every line of a series (a bucket line's
//! `name_bucket{labels,le="`) are read back once into a [`Held`] value, up to
//! [`HELD`] bytes in three chunks, which the compiler keeps in vector registers: each
//! further line then costs only three chunk stores, with no loads and no loop, where
//! [`Room::repeat`] loads every chunk again.
//!
//! Names and label sets, read from outside the buffer, are copied exactly
//! ([`Room::slice`]: overlapping fixed-size chunks, never past the source's end).
//!
//! The writes are `unsafe fn`s: the caller promises that the bytes it counts stay
//! within the budget it asked for (an upper bound computed from the lengths of what it
//! writes). Debug builds check every write against it.

use std::ptr;

/// Bytes a write may touch beyond what it counts, reserved after the budget.
pub(super) const PAD: usize = 32;

/// The bytes [`Room::repeat`] moves at once (at most `PAD`).
pub(super) const CHUNK: usize = 32;

/// The most bytes a [`Held`] value carries: three chunks.
pub(super) const HELD: usize = 3 * CHUNK;

/// From [`CHUNK`] to [`HELD`] bytes read back from the buffer by [`Room::hold`], to be
/// appended again by [`Room::held`]: three chunks, at the start, at the end and in the
/// middle (where two or all three of them overlap when the bytes are shorter than
/// `HELD`). So every chunk is bytes already written, and writing them back lays down
/// exactly the held bytes, with no length-dependent branch.
#[derive(Clone, Copy)]
pub(super) struct Held {
    chunks: [[u8; CHUNK]; 3],
    /// Where the middle chunk starts: `CHUNK`, or the last chunk's start if sooner.
    middle: usize,
    len: usize,
}

/// The most decimal digits of a `u64` (`18446744073709551615`).
pub(super) const MAX_U64_DIGITS: usize = 20;

/// At most [`Padded::CAPACITY`] bytes in a fixed array, so that a writer copies the
/// whole array (two 16-byte moves, no length-dependent code) and counts only `len`.
/// Used for short values written often: `le` label values, formatted floats.
#[derive(Clone, Copy)]
pub(crate) struct Padded {
    bytes: [u8; Padded::CAPACITY],
    len: u8,
}

impl Padded {
    /// The most bytes a `Padded` holds.
    pub(crate) const CAPACITY: usize = 32;

    /// An empty value.
    pub(crate) const fn new() -> Padded {
        Padded {
            bytes: [0; Padded::CAPACITY],
            len: 0,
        }
    }

    /// `bytes`, or `None` when longer than [`Padded::CAPACITY`].
    pub(crate) fn from_slice(bytes: &[u8]) -> Option<Padded> {
        let mut p = Padded::new();
        p.bytes.get_mut(..bytes.len())?.copy_from_slice(bytes);
        p.len = bytes.len() as u8;
        Some(p)
    }

    /// The whole array, to be filled by a formatter that then calls
    /// [`Padded::set_len`].
    pub(crate) fn array_mut(&mut self) -> &mut [u8; Padded::CAPACITY] {
        &mut self.bytes
    }

    /// Sets how many leading bytes of the array are the value.
    pub(crate) fn set_len(&mut self, len: usize) {
        assert!(len <= Padded::CAPACITY, "a Padded holds at most 32 bytes");
        self.len = len as u8;
    }

    /// The value.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl std::fmt::Debug for Padded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

/// The two-digit strings "00" to "99", back to back.
const DIGIT_PAIRS: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// `n < 100` as two digits.
#[inline(always)]
pub(super) fn digit_pair(n: u64) -> [u8; 2] {
    let i = n as usize * 2;
    [DIGIT_PAIRS[i], DIGIT_PAIRS[i + 1]]
}

/// The number of decimal digits of `v` (1 for 0).
#[inline]
pub(super) fn digit_count(v: u64) -> usize {
    /// `10^i`, and `u64::MAX` past the largest power that fits.
    const POW10: [u64; 21] = {
        let mut table = [u64::MAX; 21];
        let mut p = 1u64;
        let mut i = 0;
        while i < 20 {
            table[i] = p;
            p = p.wrapping_mul(10);
            i += 1;
        }
        table
    };
    // Bits to digits: 1233 / 4096 is just above log10(2), so `guess` is the digit
    // count or one less; one comparison with the power of ten settles it. `v | 1`
    // has the digits of `v` (powers of ten are even) and makes 0 a one-digit number.
    let v = v | 1;
    let bits = 64 - v.leading_zeros() as usize;
    let guess = (bits * 1233) >> 12;
    guess + usize::from(v >= POW10[guess])
}

/// Writes the lowest `count` decimal digits of `v` (zeros where `v` has fewer) into
/// `digits`, ending at its end, two at a time; returns what is left of `v`.
#[inline]
pub(super) fn put_digits(digits: &mut [u8], mut v: u64) -> u64 {
    let mut rest = digits;
    while let [head @ .., a, b] = rest {
        let pair = (v % 100) as usize * 2;
        v /= 100;
        *a = DIGIT_PAIRS[pair];
        *b = DIGIT_PAIRS[pair + 1];
        rest = head;
    }
    if let [a] = rest {
        *a = b'0' + (v % 10) as u8;
        v /= 10;
    }
    v
}

/// Writes into `out`'s spare capacity: see the module documentation.
pub(super) struct Room<'a> {
    out: &'a mut Vec<u8>,
    /// The buffer's start, valid for its capacity while `out` is borrowed.
    base: *mut u8,
    /// Bytes of the buffer written, the old length included.
    len: usize,
    /// Debug builds: the most `len` may reach.
    #[cfg(debug_assertions)]
    limit: usize,
}

impl<'a> Room<'a> {
    /// Reserves `budget` bytes after `out`'s contents (plus [`PAD`]) for writing.
    #[inline]
    pub(super) fn new(out: &'a mut Vec<u8>, budget: usize) -> Room<'a> {
        out.reserve(budget + PAD);
        let len = out.len();
        Room {
            base: out.as_mut_ptr(),
            out,
            len,
            #[cfg(debug_assertions)]
            limit: len + budget,
        }
    }

    /// Bytes in the buffer so far, counting from its start (not from the room's).
    #[inline]
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Debug builds: panics if `n` more bytes would exceed the budget.
    #[inline(always)]
    fn check(&self, n: usize) {
        #[cfg(debug_assertions)]
        assert!(self.len + n <= self.limit, "Room budget exceeded");
        #[cfg(not(debug_assertions))]
        let _ = n;
    }

    /// Appends `bytes`.
    ///
    /// # Safety
    ///
    /// The bytes counted since [`Room::new`], these included, must fit its budget.
    #[inline(always)]
    pub(super) unsafe fn bytes(&mut self, bytes: &[u8]) {
        self.check(bytes.len());
        // SAFETY: the caller keeps `len + bytes.len()` within the budget, which `new`
        // reserved; `bytes` is not in the buffer (it is borrowed while `out` is
        // borrowed mutably by this room), so the two do not overlap.
        unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), self.base.add(self.len), bytes.len()) };
        self.len += bytes.len();
    }

    /// Appends `bytes` like [`Room::bytes`], without a `memcpy` call, for slices whose
    /// length is not known at compile time (names, label sets): 32-byte chunks, the
    /// last one ending at the slice's end (so overlapping the one before), or for a
    /// short slice its first and last 16, 8, 4 or 2 bytes.
    ///
    /// # Safety
    ///
    /// As [`Room::bytes`].
    #[inline(always)]
    pub(super) unsafe fn slice(&mut self, bytes: &[u8]) {
        /// Copies `N` bytes from `src + at` to `dst + at`.
        ///
        /// # Safety
        ///
        /// Both ranges valid, for reading and writing.
        #[inline(always)]
        unsafe fn chunk<const N: usize>(src: *const u8, dst: *mut u8, at: usize) {
            // SAFETY: the caller's promise; unaligned reads and writes of a byte
            // array need no alignment.
            unsafe {
                let v = src.add(at).cast::<[u8; N]>().read_unaligned();
                dst.add(at).cast::<[u8; N]>().write_unaligned(v);
            }
        }
        let n = bytes.len();
        self.check(n);
        let (src, dst) = (bytes.as_ptr(), self.base.wrapping_add(self.len));
        // SAFETY: every chunk lies within `0..n` of both `bytes` and the `n` bytes
        // after `len`, which the caller keeps within the budget: a chunk of `N` is
        // copied at `at` only when `at + N <= n`. The two do not overlap (`bytes` is
        // outside the buffer, as in `bytes`).
        unsafe {
            if n >= 32 {
                let mut at = 0;
                while at + 32 < n {
                    chunk::<32>(src, dst, at);
                    at += 32;
                }
                chunk::<32>(src, dst, n - 32);
            } else if n >= 16 {
                chunk::<16>(src, dst, 0);
                chunk::<16>(src, dst, n - 16);
            } else if n >= 8 {
                chunk::<8>(src, dst, 0);
                chunk::<8>(src, dst, n - 8);
            } else if n >= 4 {
                chunk::<4>(src, dst, 0);
                chunk::<4>(src, dst, n - 4);
            } else if n >= 2 {
                chunk::<2>(src, dst, 0);
                chunk::<2>(src, dst, n - 2);
            } else if n == 1 {
                chunk::<1>(src, dst, 0);
            }
        }
        self.len += n;
    }

    /// Appends one byte.
    ///
    /// # Safety
    ///
    /// As [`Room::bytes`].
    #[inline(always)]
    pub(super) unsafe fn byte(&mut self, b: u8) {
        self.check(1);
        // SAFETY: the caller keeps `len + 1` within the reserved budget.
        unsafe { self.base.add(self.len).write(b) };
        self.len += 1;
    }

    /// Appends `p`'s value, writing all of its array (up to 32 bytes past the value,
    /// which [`PAD`] covers).
    ///
    /// # Safety
    ///
    /// As [`Room::bytes`], for `p.as_bytes()`.
    #[inline(always)]
    pub(super) unsafe fn padded(&mut self, p: &Padded) {
        self.check(usize::from(p.len));
        // SAFETY: `len` is within the budget, and `PAD` (32) bytes are reserved after
        // it, so the whole array fits; `p` is outside the buffer (as in `bytes`).
        unsafe {
            ptr::copy_nonoverlapping(p.bytes.as_ptr(), self.base.add(self.len), Padded::CAPACITY)
        };
        self.len += usize::from(p.len);
    }

    /// Appends a copy of the `n` bytes at `start` (counted from the buffer's start),
    /// [`CHUNK`] at a time: up to `CHUNK - 1` bytes are read after them and written
    /// after the copy.
    ///
    /// # Safety
    ///
    /// `start + n <= self.len()`, and the bytes counted, these included, must fit the
    /// budget.
    #[inline(always)]
    pub(super) unsafe fn repeat(&mut self, start: usize, n: usize) {
        self.check(n);
        debug_assert!(start + n <= self.len);
        let mut done = 0;
        while done < n {
            // SAFETY: the chunk read, `start + done .. + CHUNK`, ends before
            // `start + n + CHUNK - 1 <= len + PAD`, inside the reservation (budget
            // plus PAD after where the room started, and `len` stays within the
            // budget); the chunk written, `len + done .. + CHUNK`, ends before
            // `len + n + CHUNK - 1`, also inside it. `ptr::copy` allows the two
            // chunks to overlap (they do when the source is less than CHUNK bytes
            // back). Every byte below `len + n` is then a copy of a byte below
            // `start + n <= len`, all of them written before.
            unsafe {
                ptr::copy(
                    self.base.add(start + done),
                    self.base.add(self.len + done),
                    CHUNK,
                )
            };
            done += CHUNK;
        }
        self.len += n;
    }

    /// Reads back the `n` bytes at `start` (counted from the buffer's start), for
    /// `CHUNK <= n <= HELD`.
    ///
    /// # Safety
    ///
    /// `start + n <= self.len()`.
    #[inline(always)]
    pub(super) unsafe fn hold(&self, start: usize, n: usize) -> Held {
        debug_assert!((CHUNK..=HELD).contains(&n) && start + n <= self.len);
        let middle = CHUNK.min(n - CHUNK);
        let read = |at: usize| {
            // SAFETY: `at + CHUNK <= n` for each of the three chunks (`n >= CHUNK`,
            // `middle <= n - CHUNK`), so each lies in `start..start + n`, written
            // bytes (the caller's promise).
            unsafe {
                self.base
                    .add(start + at)
                    .cast::<[u8; CHUNK]>()
                    .read_unaligned()
            }
        };
        Held {
            chunks: [read(0), read(middle), read(n - CHUNK)],
            middle,
            len: n,
        }
    }

    /// Appends the bytes `h` holds: its three chunks, back where they were read from
    /// relative to the start, so exactly `h`'s bytes.
    ///
    /// # Safety
    ///
    /// As [`Room::bytes`], for `h`'s length.
    #[inline(always)]
    pub(super) unsafe fn held(&mut self, h: &Held) {
        self.check(h.len);
        // SAFETY: each chunk lies in `len..len + h.len` (as in `hold`), within the
        // budget by the caller's promise.
        unsafe {
            let dst = self.base.add(self.len);
            dst.cast::<[u8; CHUNK]>().write_unaligned(h.chunks[0]);
            dst.add(h.middle)
                .cast::<[u8; CHUNK]>()
                .write_unaligned(h.chunks[1]);
            dst.add(h.len - CHUNK)
                .cast::<[u8; CHUNK]>()
                .write_unaligned(h.chunks[2]);
        }
        self.len += h.len;
    }

    /// Appends `v` in decimal and a newline.
    ///
    /// # Safety
    ///
    /// As [`Room::bytes`], for [`MAX_U64_DIGITS`] + 1 bytes.
    #[inline(always)]
    pub(super) unsafe fn u64_line(&mut self, v: u64) {
        if v < 10 {
            // Most bucket counts of a quiet series: one digit, written with the
            // newline as one two-byte store.
            self.check(2);
            // SAFETY: the caller keeps `len + 2` within the reserved budget.
            unsafe {
                self.base
                    .add(self.len)
                    .cast::<[u8; 2]>()
                    .write_unaligned([b'0' + v as u8, b'\n'])
            };
            self.len += 2;
            return;
        }
        // SAFETY: the caller's promise covers the digits and the newline.
        unsafe {
            self.u64(v);
            self.byte(b'\n');
        }
    }

    /// Appends `v` in decimal.
    ///
    /// # Safety
    ///
    /// As [`Room::bytes`], for [`MAX_U64_DIGITS`] bytes (or `digit_count(v)`).
    #[inline(always)]
    pub(super) unsafe fn u64(&mut self, v: u64) {
        if v < 10 {
            // Most bucket counts of a quiet series: one digit.
            // SAFETY: as in `byte`.
            return unsafe { self.byte(b'0' + v as u8) };
        }
        let n = digit_count(v);
        self.check(n);
        let mut v = v;
        // SAFETY: the caller keeps `len + n` within the reserved budget. The digits
        // are written backwards from `len + n`: `v` has exactly `n` digits, the loop
        // writes two per step while at least three remain, the tail one or two, so
        // the last write lands at `len`.
        unsafe {
            let mut at = self.base.add(self.len + n);
            while v >= 100 {
                let pair = (v % 100) as usize * 2;
                v /= 100;
                at = at.sub(2);
                ptr::copy_nonoverlapping(DIGIT_PAIRS.as_ptr().add(pair), at, 2);
            }
            if v >= 10 {
                ptr::copy_nonoverlapping(DIGIT_PAIRS.as_ptr().add(v as usize * 2), at.sub(2), 2);
            } else {
                at.sub(1).write(b'0' + v as u8);
            }
        }
        self.len += n;
    }
}

impl Drop for Room<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        // SAFETY: `len` is within the capacity `new` reserved, and every byte below it
        // was written: the old contents, then each write's counted bytes in order
        // (a write's extra bytes lie at or after the next write's start, and what
        // `repeat` copies comes from bytes already written).
        unsafe { self.out.set_len(self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digit_counts() {
        for v in [
            0,
            1,
            9,
            10,
            99,
            100,
            999_999,
            1_000_000,
            u64::MAX / 10,
            u64::MAX,
        ] {
            assert_eq!(digit_count(v), v.to_string().len(), "{v}");
        }
        for p in 1..20 {
            let t = 10u64.pow(p);
            assert_eq!(digit_count(t - 1), p as usize);
            assert_eq!(digit_count(t), p as usize + 1);
        }
    }

    #[test]
    fn writes_land_in_order() {
        let mut buf = b"head ".to_vec();
        {
            let mut room = Room::new(&mut buf, 200);
            let start = room.len();
            let le = Padded::from_slice(b"0.5\"} ").unwrap();
            // SAFETY: 200 bytes are far more than these.
            unsafe {
                room.slice(b"name{a=\"1\",le=\"");
                let prefix = room.len() - start;
                room.padded(&le);
                room.u64(12345);
                room.byte(b'\n');
                room.repeat(start, prefix);
                room.padded(&le);
                room.u64(7);
                room.byte(b'\n');
                room.repeat(start, 4);
                room.bytes(b" ");
                room.u64(u64::MAX);
            }
        }
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "head name{a=\"1\",le=\"0.5\"} 12345\nname{a=\"1\",le=\"0.5\"} 7\nname 18446744073709551615"
        );
    }

    #[test]
    fn slices_of_every_length() {
        let source: Vec<u8> = (0..200u8).collect();
        for n in 0..=source.len() {
            let mut buf = b"x".to_vec();
            {
                let mut room = Room::new(&mut buf, n);
                // SAFETY: the budget is n.
                unsafe { room.slice(&source[..n]) };
            }
            assert_eq!(&buf[1..], &source[..n]);
        }
    }

    #[test]
    fn repeat_close_behind() {
        let mut buf = Vec::new();
        {
            let mut room = Room::new(&mut buf, 64);
            // SAFETY: 64 bytes cover these.
            unsafe {
                room.bytes(b"abc");
                room.repeat(0, 3);
                room.repeat(1, 5);
            }
        }
        assert_eq!(buf, b"abcabcbcabc");
    }
}
