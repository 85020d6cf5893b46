//! Deflate's fixed Huffman codes (RFC 1951 section 3.2.6) and the length and distance
//! alphabets (section 3.2.5), as tables of ready-to-write bit patterns.
//!
//! Huffman codes are defined most significant bit first but the stream is packed least
//! significant bit first, so every code is stored bit-reversed; a length's extra bits
//! are appended to its code in the same table entry, so a whole copy (length code,
//! length extra bits, distance code, distance extra bits: at most 31 bits) is one write.

use super::bits::BitWriter;

/// The longest match deflate can express.
pub const MAX_MATCH: usize = 258;
/// The shortest match deflate can express.
pub const MIN_MATCH: usize = 3;

/// A bit pattern to write and its length in bits.
#[derive(Clone, Copy)]
struct Code {
    bits: u32,
    len: u32,
}

/// The fixed literal/length code of each symbol 0..=287, bit-reversed.
static LITERALS: [Code; 288] = literal_codes();

/// For each match length 3..=258 (indexed by length), its length symbol's fixed code
/// followed by the symbol's extra bits.
static LENGTHS: [Code; MAX_MATCH + 1] = length_codes();

/// `n` low bits of `code`, reversed.
const fn reverse(code: u32, n: u32) -> u32 {
    code.reverse_bits() >> (32 - n)
}

const fn literal_codes() -> [Code; 288] {
    let mut codes = [Code { bits: 0, len: 0 }; 288];
    let mut symbol = 0;
    while symbol < 288 {
        let (first_code, first_symbol, len) = match symbol {
            0..=143 => (0x30, 0, 8),
            144..=255 => (0x190, 144, 9),
            256..=279 => (0x00, 256, 7),
            _ => (0xC0, 280, 8),
        };
        let code = first_code + (symbol - first_symbol) as u32;
        codes[symbol] = Code {
            bits: reverse(code, len),
            len,
        };
        symbol += 1;
    }
    codes
}

/// The length symbol (257..=285), its number of extra bits and their value.
const fn length_symbol(length: usize) -> (usize, u32, u32) {
    let x = (length - MIN_MATCH) as u32;
    if x < 8 {
        (257 + x as usize, 0, 0)
    } else if length == MAX_MATCH {
        (285, 0, 0)
    } else {
        // Symbols come in fours per power of two from 8 on: 265..=268 cover 11..=18
        // with one extra bit, 269..=272 cover 19..=34 with two, and so on.
        let log = 31 - x.leading_zeros();
        let extra = log - 2;
        let symbol = 257 + 4 * (log - 1) + ((x >> extra) & 3);
        (symbol as usize, extra, x & ((1 << extra) - 1))
    }
}

const fn length_codes() -> [Code; MAX_MATCH + 1] {
    let mut codes = [Code { bits: 0, len: 0 }; MAX_MATCH + 1];
    let literals = literal_codes();
    let mut length = MIN_MATCH;
    while length <= MAX_MATCH {
        let (symbol, extra_len, extra) = length_symbol(length);
        let code = literals[symbol];
        codes[length] = Code {
            bits: code.bits | (extra << code.len),
            len: code.len + extra_len,
        };
        length += 1;
    }
    codes
}

/// The distance code (1..=32768) with its extra bits: five code bits (the fixed
/// distance code is the symbol itself in five bits), then up to 13 extra bits.
#[inline]
fn distance_code(distance: usize) -> Code {
    let x = (distance - 1) as u32;
    if x < 4 {
        return Code {
            bits: reverse(x, 5),
            len: 5,
        };
    }
    // Symbols come in pairs per power of two from 4 on: 4 and 5 cover 5..=8 with one
    // extra bit, 6 and 7 cover 9..=16 with two, and so on up to 28 and 29.
    let log = 31 - x.leading_zeros();
    let extra_len = log - 1;
    let symbol = 2 * log + ((x >> extra_len) & 1);
    let extra = x & ((1 << extra_len) - 1);
    Code {
        bits: reverse(symbol, 5) | (extra << 5),
        len: 5 + extra_len,
    }
}

/// Writes one literal byte.
#[inline]
pub fn literal(w: &mut BitWriter<'_>, byte: u8) {
    let code = LITERALS[byte as usize];
    w.put(code.bits, code.len);
}

/// Writes a copy of `length` bytes (3..=258) from `distance` bytes back (1..=32768).
#[inline]
pub fn copy(w: &mut BitWriter<'_>, length: usize, distance: usize) {
    let len = LENGTHS[length];
    let dist = distance_code(distance);
    w.put(len.bits | (dist.bits << len.len), len.len + dist.len);
}

/// Writes the end-of-block symbol (256).
pub fn end_of_block(w: &mut BitWriter<'_>) {
    let code = LITERALS[256];
    w.put(code.bits, code.len);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1951's table of length symbols: (symbol, extra bits, first length).
    const LENGTH_TABLE: [(usize, u32, usize); 29] = [
        (257, 0, 3),
        (258, 0, 4),
        (259, 0, 5),
        (260, 0, 6),
        (261, 0, 7),
        (262, 0, 8),
        (263, 0, 9),
        (264, 0, 10),
        (265, 1, 11),
        (266, 1, 13),
        (267, 1, 15),
        (268, 1, 17),
        (269, 2, 19),
        (270, 2, 23),
        (271, 2, 27),
        (272, 2, 31),
        (273, 3, 35),
        (274, 3, 43),
        (275, 3, 51),
        (276, 3, 59),
        (277, 4, 67),
        (278, 4, 83),
        (279, 4, 99),
        (280, 4, 115),
        (281, 5, 131),
        (282, 5, 163),
        (283, 5, 195),
        (284, 5, 227),
        (285, 0, 258),
    ];

    #[test]
    fn length_symbols_match_the_rfc_table() {
        for (i, &(symbol, extra, first)) in LENGTH_TABLE.iter().enumerate() {
            let last = if symbol == 285 {
                258
            } else if symbol == 284 {
                257
            } else {
                LENGTH_TABLE[i + 1].2 - 1
            };
            for length in first..=last {
                assert_eq!(
                    length_symbol(length),
                    (symbol, extra, (length - first) as u32),
                    "length {length}"
                );
            }
        }
    }

    #[test]
    fn distance_codes_match_the_rfc_table() {
        // First distance of each of the 30 symbols and its extra bits.
        let mut first = 1usize;
        for symbol in 0..30u32 {
            let extra = if symbol < 4 { 0 } else { symbol / 2 - 1 };
            for offset in [0, (1usize << extra) - 1] {
                let code = distance_code(first + offset);
                assert_eq!(code.len, 5 + extra, "distance {}", first + offset);
                assert_eq!(reverse(code.bits & 31, 5), symbol);
                assert_eq!((code.bits >> 5) as usize, offset);
            }
            first += 1 << extra;
        }
        assert_eq!(first, 32769);
    }

    #[test]
    fn fixed_literal_codes_are_the_rfc_ones() {
        // Spot checks against section 3.2.6, written most significant bit first.
        let msb_first = |symbol: usize| {
            let c = LITERALS[symbol];
            (reverse(c.bits, c.len), c.len)
        };
        assert_eq!(msb_first(0), (0b0011_0000, 8));
        assert_eq!(msb_first(143), (0b1011_1111, 8));
        assert_eq!(msb_first(144), (0b1_1001_0000, 9));
        assert_eq!(msb_first(255), (0b1_1111_1111, 9));
        assert_eq!(msb_first(256), (0, 7));
        assert_eq!(msb_first(279), (0b001_0111, 7));
        assert_eq!(msb_first(280), (0b1100_0000, 8));
        assert_eq!(msb_first(287), (0b1100_0111, 8));
    }
}
