//! Deflate blocks (RFC 1951): LZ77 copies and literals written with the fixed Huffman
//! codes, or the bytes stored as they are when that is smaller.
//!
//! The input is cut into blocks of at most 65,535 bytes, the most one stored block
//! holds. Each block is first written with fixed codes; if that came out larger than
//! storing it (incompressible data costs 8 or 9 bits a byte with fixed codes), the
//! writer goes back to the block's start and stores it instead, so the output is never
//! more than 5 bytes per block larger than the input. Copies may reach back into earlier
//! blocks (the window is the uncompressed stream), but never past the end of their own
//! block, so a block can be replaced by its stored form on its own.
//!
//! Matching is lazy by one byte, as zlib's middle levels do: a short match is held back
//! while the next position is searched, and if that one finds a longer match, the held
//! byte is written as a literal instead. Like zlib's faster levels, the bytes inside a
//! long copy are not indexed for later searches (see [`MAX_INSERT`]).

use super::bits::BitWriter;
use super::huffman::{self, MIN_MATCH};
use super::lz77::{Match, Matcher};

/// The most bytes one stored block holds (its length field has 16 bits).
const MAX_STORED: usize = 65_535;
/// A match at least this long is taken at once, without looking one byte further.
const LAZY_LIMIT: usize = 32;
/// The positions inside a copy longer than this are not indexed (but its last few):
/// indexing every byte of long copies doubled the time of a 10,000-series scrape and
/// saved under 10% of its compressed size.
const MAX_INSERT: usize = 64;
/// How many of the last positions of a long copy are indexed all the same, so the
/// next line can still find the one that ended here.
const TAIL_INSERT: usize = 4;

/// Block types, as the two bits after BFINAL spell them.
const STORED: u32 = 0b00;
const FIXED: u32 = 0b01;

/// Writes `data` as a complete deflate stream (its last block marked final).
pub fn deflate(matcher: &mut Matcher, data: &[u8], w: &mut BitWriter<'_>) {
    if data.is_empty() {
        w.put(1 | FIXED << 1, 3);
        huffman::end_of_block(w);
        return;
    }
    let mut start = 0;
    while start < data.len() {
        let end = (start + MAX_STORED).min(data.len());
        let last = u32::from(end == data.len());
        let mark = w.mark();
        let before = w.bit_len();
        w.put(last | FIXED << 1, 3);
        encode_fixed(matcher, data, start, end, w);
        huffman::end_of_block(w);
        let fixed_bits = w.bit_len() - before;
        let padding = (8 - (before + 3) % 8) % 8;
        let stored_bits = 3 + padding + 32 + 8 * (end - start) as u64;
        if fixed_bits > stored_bits {
            w.rewind(mark);
            store(w, &data[start..end], last);
        }
        start = end;
    }
}

/// Writes `data[start..end]` as literals and copies (the block header is written by
/// the caller, the end-of-block symbol too).
fn encode_fixed(m: &mut Matcher, data: &[u8], start: usize, end: usize, w: &mut BitWriter<'_>) {
    let mut pos = start;
    // A match found at `pos - 1` and held back to see whether `pos` does better.
    let mut held: Option<Match> = None;
    while pos < end {
        let found = if pos + MIN_MATCH <= data.len() {
            let found = m.find(data, pos, end);
            m.insert(data, pos);
            found
        } else {
            None
        };
        if let Some(h) = held.take() {
            if found.is_none_or(|f| f.length <= h.length) {
                huffman::copy(w, h.length, h.distance);
                let next = pos - 1 + h.length;
                insert_range(m, data, pos + 1, next);
                pos = next;
                continue;
            }
            huffman::literal(w, data[pos - 1]);
        }
        match found {
            Some(f) if f.length >= LAZY_LIMIT => {
                huffman::copy(w, f.length, f.distance);
                insert_range(m, data, pos + 1, pos + f.length);
                pos += f.length;
            }
            Some(f) => {
                held = Some(f);
                pos += 1;
            }
            None => {
                huffman::literal(w, data[pos]);
                pos += 1;
            }
        }
    }
    // A match held at `end - 1` would reach past `end`, which `find` never allows.
    debug_assert!(held.is_none());
}

/// Indexes the positions `from..to` inside a copy that still have three bytes ahead of
/// them (only the last [`TAIL_INSERT`] of a copy longer than [`MAX_INSERT`]).
fn insert_range(m: &mut Matcher, data: &[u8], from: usize, to: usize) {
    let from = if to - from > MAX_INSERT {
        to - TAIL_INSERT
    } else {
        from
    };
    for pos in from..to.min(data.len().saturating_sub(MIN_MATCH - 1)) {
        m.insert(data, pos);
    }
}

/// Writes one stored block holding `bytes` (at most [`MAX_STORED`]).
fn store(w: &mut BitWriter<'_>, bytes: &[u8], last: u32) {
    w.put(last | STORED << 1, 3);
    w.align();
    let len = bytes.len() as u16;
    w.put_bytes(&len.to_le_bytes());
    w.put_bytes(&(!len).to_le_bytes());
    w.put_bytes(bytes);
}
