//! Compressing a scrape for the scrapers that ask (`Accept-Encoding: gzip`, as
//! Prometheus and VictoriaMetrics send): the one place the request path turns a
//! rendered body, whatever its format, into the bytes it sends.

use std::sync::Mutex;

use crate::exposition::content_coding::{self, ContentCoding};
use crate::exposition::gzip::Gzip;

/// The gzip compressors the workers share: a compressed scrape takes one (or makes
/// one when none is free) and puts it back, so there are as many as scrapes were ever
/// compressed at the same time (one, with one scraper; never more than the workers),
/// not one per worker whether or not it ever compresses. Each holds
/// 128 KiB of match tables; the lock is held to take or return one, never while
/// compressing.
#[derive(Default)]
pub struct GzipPool(Mutex<Vec<Gzip>>);

impl GzipPool {
    /// Compresses `input` into `out` (cleared first) with a compressor of the pool.
    fn compress(&self, input: &[u8], out: &mut Vec<u8>) {
        // A panic elsewhere cannot leave the list half-changed: take the guard anyway.
        let taken = self.0.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut gzip = taken.unwrap_or_default();
        out.clear();
        gzip.compress(input, out);
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(gzip);
    }
}

/// The body to send for a `rendered` scrape, whatever its format, and the
/// `Content-Encoding` to send with it: gzip (compressed into the worker's `compressed`
/// buffer) when the request's `Accept-Encoding` asks for it
/// ([`content_coding::choose`]), the rendered bytes as they are otherwise.
pub fn encode_body<'a>(
    accept_encoding: Option<&str>,
    rendered: &'a [u8],
    gzip: &GzipPool,
    compressed: &'a mut Vec<u8>,
) -> (&'a [u8], Option<&'static str>) {
    match content_coding::choose(accept_encoding) {
        ContentCoding::Identity => (rendered, None),
        coding @ ContentCoding::Gzip => {
            gzip.compress(rendered, compressed);
            (compressed, coding.header_value())
        }
    }
}
