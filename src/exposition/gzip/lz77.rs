//! Finding earlier copies of the bytes ahead (LZ77, RFC 1951 section 4): a hash of the
//! next three bytes leads to the latest earlier position with that hash, and a chain
//! links each position to the previous one with the same hash, within deflate's
//! 32 KiB window.
//!
//! Bounded on purpose: both tables have a fixed size (64 KiB each, 16-bit entries) and
//! a search follows at most [`MAX_CHAIN`] links. Entries hold positions modulo 2^16 and
//! are never cleared, not even between inputs: an entry that is stale (from an earlier
//! input, or overwritten) only names a wrong candidate, and every candidate is checked
//! byte for byte against the input before it is used, so staleness costs a comparison,
//! never correctness. Not clearing 128 KiB per scrape is what keeps a small scrape fast.

use super::huffman::{MAX_MATCH, MIN_MATCH};

/// Deflate's window: the farthest a copy may reach back.
pub const WINDOW: usize = 32 * 1024;
const HASH_BITS: u32 = 15;
/// Chain links followed per search at most: the ratio/speed trade (zlib's level 6
/// follows up to 128). On scrapes, 8 gave within 1% of the size 32 gave, in half the
/// time.
const MAX_CHAIN: usize = 8;
/// The farthest a 3-byte match is taken from: beyond it the copy's code (7 or 8 bits
/// of length, 5 + 11 to 13 of distance) is as long as three literals (24 to 27 bits).
/// zlib draws the same line; here it saved 1.3% of a scrape.
const SHORT_MATCH_REACH: usize = 4096;
/// A match this long ends the search: a longer one would save a few bits at most.
const NICE_MATCH: usize = 64;

/// A copy the encoder can emit: `length` bytes from `distance` bytes back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Match {
    /// Bytes to copy, [`MIN_MATCH`]..=[`MAX_MATCH`].
    pub length: usize,
    /// How far back the copy starts, 1..=[`WINDOW`].
    pub distance: usize,
}

/// The hash heads and chains, reused across inputs.
pub struct Matcher {
    /// Per hash of three bytes: the latest position inserted with it (mod 2^16).
    head: Box<[u16]>,
    /// Per position mod [`WINDOW`]: the previous position with the same hash (mod 2^16).
    chain: Box<[u16]>,
}

impl Matcher {
    /// Empty tables (zeroed: what they hold is verified before use anyway).
    pub fn new() -> Self {
        Matcher {
            head: vec![0u16; 1 << HASH_BITS].into_boxed_slice(),
            chain: vec![0u16; WINDOW].into_boxed_slice(),
        }
    }

    #[inline]
    fn hash(data: &[u8], pos: usize) -> usize {
        let key = u32::from(data[pos])
            | (u32::from(data[pos + 1]) << 8)
            | (u32::from(data[pos + 2]) << 16);
        (key.wrapping_mul(0x9E37_79B1) >> (32 - HASH_BITS)) as usize
    }

    /// Records `pos` as the latest position of its three bytes (`pos + 3 <= data.len()`).
    #[inline]
    pub fn insert(&mut self, data: &[u8], pos: usize) {
        let h = Self::hash(data, pos);
        self.chain[pos % WINDOW] = self.head[h];
        self.head[h] = pos as u16;
    }

    /// The longest earlier copy of the bytes at `pos`, not reaching past `end`
    /// (`pos + 3 <= data.len()`, `end <= data.len()`). Call before inserting `pos`.
    #[inline]
    pub fn find(&self, data: &[u8], pos: usize, end: usize) -> Option<Match> {
        let limit = (end - pos).min(MAX_MATCH);
        if limit < MIN_MATCH {
            return None;
        }
        let reach = pos.min(WINDOW);
        let mut candidate = self.head[Self::hash(data, pos)];
        let mut best = Match {
            length: MIN_MATCH - 1,
            distance: 0,
        };
        let mut previous_distance = 0;
        for _ in 0..MAX_CHAIN {
            let distance = usize::from((pos as u16).wrapping_sub(candidate));
            // Chains lead strictly backwards; anything else is a stale entry.
            if distance <= previous_distance || distance > reach {
                break;
            }
            previous_distance = distance;
            let from = pos - distance;
            // Cheap rejection first: a longer match must agree at best.length.
            if data[from + best.length] == data[pos + best.length] {
                let length = common_prefix(data, from, pos, limit);
                if length > best.length {
                    best = Match { length, distance };
                    if length >= NICE_MATCH.min(limit) {
                        break;
                    }
                }
            }
            candidate = self.chain[usize::from(candidate) % WINDOW];
        }
        let worth_it = best.length > MIN_MATCH
            || (best.length == MIN_MATCH && best.distance <= SHORT_MATCH_REACH);
        worth_it.then_some(best)
    }
}

/// How many bytes from `a` and from `b` agree, up to `limit` (`a < b`,
/// `b + limit <= data.len()`), eight at a time.
#[inline]
fn common_prefix(data: &[u8], a: usize, b: usize, limit: usize) -> usize {
    let mut n = 0;
    while n + 8 <= limit {
        let diff = load(data, a + n) ^ load(data, b + n);
        if diff != 0 {
            return n + (diff.trailing_zeros() / 8) as usize;
        }
        n += 8;
    }
    while n < limit && data[a + n] == data[b + n] {
        n += 1;
    }
    n
}

/// Eight bytes from `at` as one little-endian word.
#[inline]
fn load(data: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&data[at..at + 8]);
    u64::from_le_bytes(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_farthest_allowed_copy() {
        let block = super::super::tests::noise(WINDOW, 7);
        let data = [block.as_slice(), block.as_slice()].concat();
        let mut m = Matcher::new();
        for pos in 0..WINDOW {
            m.insert(&data, pos);
        }
        assert_eq!(
            m.find(&data, WINDOW, data.len()),
            Some(Match {
                length: MAX_MATCH,
                distance: WINDOW
            })
        );
    }

    #[test]
    fn never_reaches_past_end_or_before_the_input() {
        let data = b"abcabcabcabc";
        let mut m = Matcher::new();
        for pos in 0..3 {
            assert_eq!(m.find(data, pos, data.len()), None);
            m.insert(data, pos);
        }
        assert_eq!(
            m.find(data, 3, 8),
            Some(Match {
                length: 5,
                distance: 3
            })
        );
    }

    #[test]
    fn stale_entries_from_another_input_are_verified_away() {
        let mut m = Matcher::new();
        // "xyz" at position 1 of the first input: in reach of position 3 of the
        // second, where the bytes 2 back are "bcx", not "xyz".
        let first = b"axyzq";
        for pos in 0..first.len() - 2 {
            m.insert(first, pos);
        }
        let second = b"abcxyz";
        assert_eq!(m.find(second, 3, second.len()), None);
    }

    #[test]
    fn three_byte_matches_only_from_nearby() {
        for (gap, expected) in [(100, Some(100 + 3)), (SHORT_MATCH_REACH + 1, None)] {
            let filler = super::super::tests::noise(gap, 2);
            let data = [b"abc".as_slice(), &filler, b"abc-"].concat();
            let mut m = Matcher::new();
            let pos = data.len() - 4;
            for p in 0..pos {
                m.insert(&data, p);
            }
            let found = m.find(&data, pos, data.len());
            assert_eq!(found.map(|f| f.distance), expected, "gap {gap}");
        }
    }

    #[test]
    fn common_prefix_counts_exactly() {
        let mut data = vec![7u8; 300];
        data[150 + 37] = 1;
        assert_eq!(common_prefix(&data, 0, 150, 100), 37);
        assert_eq!(common_prefix(&data, 0, 1, 20), 20);
        assert_eq!(common_prefix(&data, 0, 290, 10), 10);
    }
}
