//! The gate's own answers: every request the gate answers itself instead of passing it
//! to tiny_http (400, 411, 413, 414, 417, 431 and 505 for what it refuses, 502 when
//! tiny_http gives no valid answer, 503 at a bound) is written by [`write()`] alone, so
//! nothing can differ among them: HTTP/1.1, a `Date`, `Connection: close`, and no body
//! when the request was a HEAD (RFC 9110 section 9.3.2).
//!
//! Each such answer is also a request the server served: [`Refusal`] carries what its
//! observation in `http_request_duration_seconds` needs, so the availability SLI sees
//! overload and bad input as well as what tiny_http answers.

use std::time::Instant;

use super::head::request_line;
use crate::http::routes::Router;

/// A request the gate answered itself, to be observed once its answer is written.
#[derive(Debug, Clone, Copy)]
pub struct Refusal {
    /// The method as an index into the RED metrics' method values.
    pub method: usize,
    /// The matched route's index, or the router's unmatched index.
    pub route: usize,
    /// The status sent.
    pub status: u16,
    /// When the gate had what it answered.
    pub received: Instant,
}

impl Refusal {
    /// A refusal with `status` of the request whose bytes start `input` (as far as
    /// they got: the method from the first token, the route once the request line is
    /// complete and valid).
    pub fn of(input: &[u8], status: u16, router: &Router, received: Instant) -> Refusal {
        let (method, target) = request_line(input);
        Refusal {
            method,
            route: target.map_or(router.unmatched(), |t| router.find(t)),
            status,
            received,
        }
    }

    /// Whether the refused request was a HEAD (its answer has no body).
    pub fn head_method(&self) -> bool {
        self.method == 1
    }
}

/// Appends the gate's answer with `status` to `out`: `why` is its body, left out for
/// a HEAD request (the `Content-Length` still says what a GET would have received);
/// `date` is the current [`super::date::HttpDate`] text.
pub fn write(out: &mut Vec<u8>, status: u16, why: &str, head_method: bool, date: &[u8]) {
    let reason = match status {
        400 => "Bad Request",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        417 => "Expectation Failed",
        431 => "Request Header Fields Too Large",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Error",
    };
    let mut status_text = [0u8; 3];
    for (i, digit) in status_text.iter_mut().enumerate() {
        *digit = b'0' + (status / 10u16.pow(2 - i as u32) % 10) as u8;
    }
    // The body is "<status> <why>\n".
    let body_len = 3 + 1 + why.len() + 1;
    let mut length = [0u8; 20];
    let length = decimal(body_len, &mut length);
    for part in [
        &b"HTTP/1.1 "[..],
        &status_text,
        b" ",
        reason.as_bytes(),
        b"\r\nDate: ",
        date,
        b"\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ",
        length,
        b"\r\nConnection: close\r\n\r\n",
    ] {
        out.extend_from_slice(part);
    }
    if !head_method {
        for part in [&status_text[..], b" ", why.as_bytes(), b"\n"] {
            out.extend_from_slice(part);
        }
    }
}

/// `n` in decimal, in the tail of `buf`.
fn decimal(mut n: usize, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATE: &[u8] = b"Sun, 06 Nov 1994 08:49:37 GMT";

    #[test]
    fn one_shape_for_every_answer_and_no_body_for_head() {
        let mut out = Vec::new();
        write(&mut out, 431, "too big", false, DATE);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 431 Request Header Fields Too Large\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 12\r\nConnection: close\r\n\r\n431 too big\n"
        );
        let mut head = Vec::new();
        write(&mut head, 431, "too big", true, DATE);
        assert!(head.ends_with(b"Content-Length: 12\r\nConnection: close\r\n\r\n"));
    }

    #[test]
    fn classifies_what_it_refuses() {
        let router = Router::new("/metrics");
        let now = Instant::now();
        let r = Refusal::of(b"HEAD /up HTTP/1.1\r\nHost: a b\r\n\r\n", 400, &router, now);
        assert!(r.head_method());
        assert_eq!(r.route, router.find("/up"));
        let r = Refusal::of(b"BREW /up?x HTTP/1.1\r\n", 400, &router, now);
        assert_eq!((r.method, r.route), (9, 0));
        // An incomplete or malformed line: the method as far as known, no route.
        let r = Refusal::of(b"GET /upppppp", 414, &router, now);
        assert_eq!((r.method, r.route), (0, router.unmatched()));
        let r = Refusal::of(b"get /up HTTP/1.1\r\n", 400, &router, now);
        assert_eq!(r.method, 9);
        let r = Refusal::of(b"GET /u p HTTP/1.1\r\n", 400, &router, now);
        assert_eq!(r.route, router.unmatched());
        let r = Refusal::of(b"", 503, &router, now);
        assert_eq!((r.method, r.route), (9, router.unmatched()));
    }
}
