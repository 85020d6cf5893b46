//! gzip (RFC 1952) around a small deflate compressor (RFC 1951), for scrapers that send
//! `Accept-Encoding: gzip` (Prometheus and VictoriaMetrics do).
//!
//! **Why hand-written.** A scrape is small, text, and very repetitive (metric names and
//! label sets recur on every line), which LZ77 with deflate's *fixed* Huffman codes
//! already shrinks to a fifth (tinyprom's own scrape) or less (large ones). About 600
//! lines with their documentation keep tinyprom at three runtime dependencies and make
//! the memory bound ours to state: 128 KiB of match tables per [`Gzip`] (the server
//! keeps one per scrape compressed at the same moment, usually one), plus the caller's
//! output buffer.
//!
//! **What it trades.** Against zlib-style level 6 (dynamic Huffman codes, chains of up
//! to 128 links, lazy matching over a wider range) this writes fixed codes only,
//! follows at most 8 chain links with one byte of lazy matching and does not index the
//! inside of long copies. Measured against flate2's level 6: its output is 15–16%
//! smaller for tinyprom's own scrape and 38% smaller for 10,000 histogram series, and
//! it takes two to five times the CPU. `make bench` prints both side by side; the
//! README's Performance section has the figures.
//!
//! **What it guarantees.** Any input compresses (empty, incompressible, larger than
//! 4 GiB: the size field is then modulo 2^32, as RFC 1952 says), the output is at most
//! 5 bytes per 64 KiB block plus 18 bytes larger than the input (incompressible blocks
//! are stored), and a warm [`Gzip`] allocates nothing beyond growing the caller's
//! buffer the first time a scrape is that large.

mod bits;
mod crc32;
mod deflate;
mod huffman;
mod lz77;

use bits::BitWriter;
use crc32::crc32;
use lz77::Matcher;

/// The gzip header: magic, method 8 (deflate), no flags, no modification time, no
/// extra flags, operating system 255 ("unknown": the stream does not depend on one).
const HEADER: [u8; 10] = [0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 0xFF];

/// A reusable gzip compressor: it owns the match tables, the caller owns the output.
///
/// ```
/// use tinyprom::exposition::gzip::Gzip;
///
/// let mut gzip = Gzip::new();
/// let mut out = Vec::new();
/// gzip.compress(b"up 1\nup 1\nup 1\n", &mut out);
/// assert_eq!(&out[..2], &[0x1F, 0x8B]); // gzip's magic
/// assert!(out.len() < 40);
/// ```
pub struct Gzip {
    matcher: Matcher,
}

impl Gzip {
    /// A compressor with its 128 KiB of match tables.
    pub fn new() -> Self {
        Gzip {
            matcher: Matcher::new(),
        }
    }

    /// Appends the gzip member holding `input` to `out` (which it never clears, so a
    /// caller reusing one buffer clears it first).
    pub fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(&HEADER);
        let mut w = BitWriter::new(out);
        deflate::deflate(&mut self.matcher, input, &mut w);
        w.align();
        out.extend_from_slice(&crc32(input).to_le_bytes());
        out.extend_from_slice(&(input.len() as u32).to_le_bytes());
    }
}

impl Default for Gzip {
    fn default() -> Self {
        Gzip::new()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::Gzip;
    use super::lz77::WINDOW;

    /// Decompresses with flate2 (miniz_oxide), an independent implementation, which
    /// also checks the CRC and the size in the trailer.
    fn gunzip(compressed: &[u8]) -> Vec<u8> {
        let mut decoder = flate2::read::GzDecoder::new(compressed);
        let mut out = Vec::new();
        decoder
            .read_to_end(&mut out)
            .expect("flate2 decodes our gzip");
        out
    }

    fn compress(input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        Gzip::new().compress(input, &mut out);
        out
    }

    fn round_trip(input: &[u8]) -> usize {
        let compressed = compress(input);
        assert_eq!(gunzip(&compressed), input, "{} bytes", input.len());
        compressed.len()
    }

    /// Deterministic pseudo-random bytes, incompressible in practice.
    pub(super) fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut rng = fastrand::Rng::with_seed(seed);
        (0..len).map(|_| rng.u8(..)).collect()
    }

    #[test]
    fn empty_and_tiny_inputs() {
        let empty = compress(b"");
        // Header, one empty fixed block (03 00), CRC 0 and size 0.
        assert_eq!(&empty[10..], &[3, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        round_trip(b"");
        round_trip(b"x");
        round_trip(b"xy");
        round_trip(b"xyz");
        round_trip(&[0, 255, 0]);
    }

    #[test]
    fn repetitive_input_shrinks() {
        let zeros = vec![0u8; 1 << 20];
        let size = round_trip(&zeros);
        // A 258-byte copy one byte back costs 8 + 5 bits: 6.6 KB for 1 MiB.
        assert!(size < 7_000, "{size} bytes for 1 MiB of zeros");
        let lines: Vec<u8> = (0..2_000)
            .flat_map(|i| {
                format!("http_requests_total{{code=\"200\",n=\"{i}\"}} {i}\n").into_bytes()
            })
            .collect();
        let size = round_trip(&lines);
        assert!(size * 4 < lines.len(), "{size} of {}", lines.len());
    }

    #[test]
    fn incompressible_input_is_stored() {
        for len in [1_000, 65_535, 65_536, 200_000] {
            let input = noise(len, len as u64);
            let size = round_trip(&input);
            let blocks = len.div_ceil(65_535);
            assert!(size <= len + 5 * blocks + 18, "{size} for {len}");
        }
    }

    #[test]
    fn mixed_blocks_of_both_kinds() {
        let mut input = noise(70_000, 3);
        input.extend(std::iter::repeat_n(b'a', 70_000));
        input.extend(noise(70_000, 4));
        input.extend_from_slice(&input.clone()[..50_000]);
        round_trip(&input);
    }

    #[test]
    fn copies_at_the_window_and_length_limits() {
        // A block repeated at exactly the window's distance: copies of 32768 back.
        let block = noise(WINDOW, 5);
        let input = [block.as_slice(), block.as_slice()].concat();
        let size = round_trip(&input);
        // The first copy costs 8.4 bits a byte as fixed-code literals, the second
        // almost nothing; storing both would cost 2 * WINDOW.
        assert!(
            size < WINDOW + WINDOW / 8,
            "{size}: the repeat was not found"
        );
        // One byte further is out of reach: nothing to copy from.
        let gap = [block.as_slice(), b"!", block.as_slice()].concat();
        round_trip(&gap);
        // Runs around the 258-byte maximum and the 3-byte minimum.
        for run in [2, 3, 4, 257, 258, 259, 516, 517] {
            let mut input = b"head".to_vec();
            input.extend(std::iter::repeat_n(b'z', run));
            input.extend_from_slice(b"tail");
            round_trip(&input);
        }
    }

    #[test]
    fn reused_compressor_gives_what_a_fresh_one_gives_back() {
        let mut gzip = Gzip::new();
        let mut out = Vec::new();
        let inputs = [
            noise(100_000, 9),
            b"abcabcabc".repeat(5_000),
            b"abcabcabc".repeat(5_000),
            Vec::new(),
            noise(10, 1),
        ];
        for input in &inputs {
            out.clear();
            gzip.compress(input, &mut out);
            assert_eq!(&gunzip(&out), input);
        }
    }

    #[test]
    fn warm_compression_reuses_the_buffer() {
        let input = b"tinyprom_scrapes_total{format=\"text\"} 1\n".repeat(500);
        let mut gzip = Gzip::new();
        let mut out = Vec::new();
        gzip.compress(&input, &mut out);
        let capacity = out.capacity();
        let pointer = out.as_ptr();
        for _ in 0..10 {
            out.clear();
            gzip.compress(&input, &mut out);
        }
        assert_eq!((out.capacity(), out.as_ptr()), (capacity, pointer));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

        #[test]
        fn arbitrary_bytes_round_trip(input in proptest::collection::vec(proptest::num::u8::ANY, 0..5_000)) {
            proptest::prop_assert_eq!(gunzip(&compress(&input)), input);
        }

        /// Few distinct bytes and repeated pieces: many matches of every length and
        /// distance, the paths random bytes rarely take.
        #[test]
        fn repetitive_bytes_round_trip(
            pieces in proptest::collection::vec(
                (proptest::collection::vec(0u8..4, 1..40), 1usize..300),
                0..60,
            )
        ) {
            let input: Vec<u8> = pieces.iter().flat_map(|(piece, times)| piece.repeat(*times)).collect();
            proptest::prop_assert_eq!(gunzip(&compress(&input)), input);
        }
    }
}
