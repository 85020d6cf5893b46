//! tinyprom's gzip through decoders that share no code with it: gzip(1) (GNU gzip's
//! own inflate) and Python's zlib module. The unit tests and property tests decode with
//! the flate2 crate; here the same edge cases go through two more implementations,
//! each checking the CRC-32 and the size in the trailer.

mod common;

use common::{gunzip_cli, gunzip_python};
use tinyprom::exposition::gzip::Gzip;

/// Deterministic pseudo-random bytes, incompressible in practice.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..len).map(|_| rng.u8(..)).collect()
}

/// The inputs: sizes and shapes that take every path of the encoder.
fn cases() -> Vec<(&'static str, Vec<u8>)> {
    let window = noise(32 * 1024, 11);
    let lines: Vec<u8> = (0..3_000)
        .flat_map(|i| {
            format!("http_request_duration_seconds_bucket{{method=\"GET\",url=\"/u{i}\",le=\"0.1\"}} {i}\n")
                .into_bytes()
        })
        .collect();
    vec![
        ("empty", Vec::new()),
        ("one byte", b"x".to_vec()),
        ("two bytes", b"xy".to_vec()),
        ("all byte values", (0..=255u8).collect()),
        ("1 MiB of one byte", vec![b'a'; 1 << 20]),
        ("random, 200 KB", noise(200_000, 3)),
        ("random, exactly one stored block", noise(65_535, 4)),
        ("random, one byte over a block", noise(65_536, 5)),
        (
            "repeat at the window's distance",
            [window.as_slice(), &window].concat(),
        ),
        (
            "repeat one byte out of reach",
            [window.as_slice(), b"!", &window].concat(),
        ),
        (
            "runs of 258 and 259",
            [vec![b'z'; 258], b"|".to_vec(), vec![b'z'; 259]].concat(),
        ),
        ("exposition-like lines, > 64 KiB", lines),
    ]
}

/// Compresses every case with one reused compressor and checks that `decode` gives it
/// back.
fn decodes_every_case(decoder: &str, decode: fn(&[u8]) -> Vec<u8>) {
    let mut gzip = Gzip::new();
    let mut out = Vec::new();
    for (name, input) in cases() {
        out.clear();
        gzip.compress(&input, &mut out);
        assert!(decode(&out) == input, "{decoder}: {name}");
    }
}

#[test]
fn gzip_cli_decodes_every_case() {
    decodes_every_case("gzip -dc", gunzip_cli);
}

#[test]
fn python_zlib_decodes_every_case() {
    decodes_every_case("python zlib", gunzip_python);
}
