//! Writing deflate's bit stream: codes are packed starting at each byte's least
//! significant bit (RFC 1951 section 3.1.1).
//!
//! Bits gather in a 64-bit accumulator and leave it 32 at a time, so a symbol costs a
//! shift, an OR and, every few symbols, one 4-byte append to the caller's buffer.

/// Appends bits to a byte buffer it borrows for the duration of one compression.
pub struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    /// Pending bits, the oldest in the least significant position.
    pending: u64,
    /// How many bits of `pending` are valid: always below 32 between calls.
    count: u32,
}

/// Where a [`BitWriter`] stood, to go back there when a block turns out larger than
/// its stored form.
#[derive(Clone, Copy)]
pub struct Mark {
    len: usize,
    pending: u64,
    count: u32,
}

impl<'a> BitWriter<'a> {
    /// A writer appending to `out`.
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        BitWriter {
            out,
            pending: 0,
            count: 0,
        }
    }

    /// Appends the low `n` bits of `bits` (`n` at most 32, higher bits zero).
    #[inline]
    pub fn put(&mut self, bits: u32, n: u32) {
        self.pending |= u64::from(bits) << self.count;
        self.count += n;
        if self.count >= 32 {
            self.out
                .extend_from_slice(&(self.pending as u32).to_le_bytes());
            self.pending >>= 32;
            self.count -= 32;
        }
    }

    /// Pads with zero bits to the next byte boundary and writes out every pending byte.
    pub fn align(&mut self) {
        let bytes = self.count.div_ceil(8);
        self.out
            .extend_from_slice(&self.pending.to_le_bytes()[..bytes as usize]);
        self.pending = 0;
        self.count = 0;
    }

    /// Appends whole bytes; the writer must be aligned.
    pub fn put_bytes(&mut self, bytes: &[u8]) {
        debug_assert_eq!(self.count, 0, "put_bytes needs a byte boundary");
        self.out.extend_from_slice(bytes);
    }

    /// Bits written so far, pending ones included.
    pub fn bit_len(&self) -> u64 {
        self.out.len() as u64 * 8 + u64::from(self.count)
    }

    /// The current position, for [`BitWriter::rewind`].
    pub fn mark(&self) -> Mark {
        Mark {
            len: self.out.len(),
            pending: self.pending,
            count: self.count,
        }
    }

    /// Forgets everything written since `mark`.
    pub fn rewind(&mut self, mark: Mark) {
        self.out.truncate(mark.len);
        self.pending = mark.pending;
        self.count = mark.count;
    }
}

#[cfg(test)]
mod tests {
    use super::BitWriter;

    #[test]
    fn packs_least_significant_bit_first() {
        let mut out = Vec::new();
        let mut w = BitWriter::new(&mut out);
        w.put(0b1, 1);
        w.put(0b10, 2);
        w.put(0x1F, 5);
        w.put(0xABCD_EF01, 32);
        w.put(0b101, 3);
        assert_eq!(w.bit_len(), 43);
        w.align();
        assert_eq!(out, [0b1111_1101, 0x01, 0xEF, 0xCD, 0xAB, 0b101]);
    }

    #[test]
    fn rewind_forgets_what_followed_the_mark() {
        let mut out = Vec::new();
        let mut w = BitWriter::new(&mut out);
        w.put(0b11, 2);
        let mark = w.mark();
        for _ in 0..20 {
            w.put(0xFFFF, 16);
        }
        w.rewind(mark);
        w.put(0b1, 1);
        w.align();
        assert_eq!(out, [0b111]);
    }
}
