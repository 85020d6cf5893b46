//! The request head, read strictly (RFC 9112): what the gate lets through to tiny_http.
//!
//! tiny_http 0.12 is lenient where leniency is dangerous (it accepts two
//! `Content-Length`s, any `Transfer-Encoding`, CR and LF inside header values), so
//! nothing reaches it that a stricter reader would frame differently. The gate reads a
//! head in two steps:
//!
//! * [`Scanner`] runs over bytes as they arrive and finds where the head ends. It
//!   refuses at once what can never become a valid head: a NUL, a bare CR or LF, a
//!   request line longer than [`MAX_LINE`] (414), a head longer than [`MAX_HEAD`] (431).
//!   It resumes where it stopped, so a head sent one byte at a time costs linear time.
//! * [`parse`] reads the complete head: HTTP/1.0 and 1.1 only (other versions, the
//!   HTTP/2 preface among them, get 505); one `Host` on 1.1; at most one
//!   `Content-Length`, digits only; `Transfer-Encoding` only as exactly `chunked` and
//!   never with `Content-Length`; no whitespace before a colon, no obs-fold, no control
//!   characters or non-ASCII bytes anywhere. It also rewrites the head for tiny_http:
//!   an origin-form target, HTTP/1.1 with no `Connection` header (so tiny_http
//!   keeps the private connection for the next request; the workers' responses carry
//!   a length and no chunking threshold, so tiny_http answers with a
//!   `Content-Length`), no hop-by-hop headers, for a built-in route only the headers
//!   its answer reads, and the gate's private headers (`crate::http::protocol`) in
//!   place of any copy the client sent.

use std::io::Write;
use std::net::SocketAddr;

use crate::http::protocol::encode;
use crate::http::routes::{BUILT_IN_READS, METHODS, Router};

/// The longest request line accepted; a longer one gets 414.
pub const MAX_LINE: usize = 8 * 1024;
/// The longest head accepted; a longer one gets 431.
pub const MAX_HEAD: usize = 16 * 1024;
/// The most header lines accepted; more get 431.
pub const MAX_HEADERS: usize = 100;
/// Why a request is refused: the status sent and a short reason for its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reject {
    /// The status code.
    pub status: u16,
    /// What was wrong, in a few words.
    pub why: &'static str,
}

const fn bad(why: &'static str) -> Reject {
    Reject { status: 400, why }
}

/// Where the scan of an arriving head stands.
#[derive(Debug, PartialEq, Eq)]
pub enum Scan {
    /// More bytes are needed.
    Partial,
    /// The head is complete: its length, blank line included.
    Complete(usize),
    /// It can never be a valid head.
    Refused(Reject),
}

/// The incremental end-of-head finder (see the module documentation).
#[derive(Debug, Default)]
pub struct Scanner {
    scanned: usize,
    line_ended: bool,
}

impl Scanner {
    /// Scans `buf` (the head so far, from its first byte) from where the last call
    /// stopped.
    pub fn advance(&mut self, buf: &[u8]) -> Scan {
        let mut i = self.scanned;
        while i < buf.len() {
            match buf[i] {
                0 => return Scan::Refused(bad("NUL in the request head")),
                b'\r' => match buf.get(i + 1) {
                    None => break, // look again when the next byte is here
                    Some(b'\n') => {}
                    Some(_) => return Scan::Refused(bad("bare CR in the request head")),
                },
                b'\n' => {
                    if i == 0 || buf[i - 1] != b'\r' {
                        return Scan::Refused(bad("bare LF in the request head"));
                    }
                    self.line_ended = true;
                    if i >= 3 && &buf[i - 3..=i] == b"\r\n\r\n" {
                        *self = Scanner::default();
                        return Scan::Complete(i + 1);
                    }
                }
                _ => {}
            }
            if !self.line_ended && i >= MAX_LINE {
                return Scan::Refused(Reject {
                    status: 414,
                    why: "request target too long",
                });
            }
            if i >= MAX_HEAD {
                return Scan::Refused(Reject {
                    status: 431,
                    why: "request header fields too large",
                });
            }
            i += 1;
        }
        self.scanned = i;
        Scan::Partial
    }
}

/// How a request frames its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// No body (or `Content-Length: 0`).
    None,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A vetted request head (its rewrite for tiny_http is in the buffer [`parse`] wrote).
#[derive(Debug)]
pub struct Head {
    /// The route the target resolved to.
    pub route: usize,
    /// Whether the method is HEAD (its response has no body).
    pub head_method: bool,
    /// The method as an index into the RED metrics' method values.
    pub method: usize,
    /// HTTP/1.0 (true) or 1.1.
    pub http10: bool,
    /// Whether the client wants the connection kept after this request.
    pub keep_alive: bool,
    /// The body's framing.
    pub body: Body,
    /// Whether the client waits for `100 Continue` before sending its body.
    pub expects_continue: bool,
}

/// Ends the rewrite [`parse`] wrote into `forward`: the client's address when the
/// route's handler may ask for it (`peer`: an embedder's route, see
/// `Router::is_embedders`), the receipt time (see `protocol`), the `Content-Length`
/// of a body of `length` bytes when there is one, and the blank line.
pub fn finish(forward: &mut Vec<u8>, peer: Option<SocketAddr>, length: u64, received: u64) {
    if let Some(peer) = peer {
        encode::peer(forward, peer);
    }
    encode::received(forward, received);
    if length > 0 {
        // Writing into a Vec cannot fail.
        let _ = write!(forward, "Content-Length: {length}\r\n");
    }
    forward.extend_from_slice(b"\r\n");
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Headers that concern this hop only, or that the gate itself answers for.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "transfer-encoding",
    "upgrade",
    "expect",
    "content-length",
];

/// Reads a complete head (as found by [`Scanner`]), resolves its route, and writes
/// its rewrite for tiny_http into `forward` (cleared first; see [`finish`]): every
/// header but the hop-by-hop ones for an embedder's route, only those in
/// [`BUILT_IN_READS`] for a built-in one.
pub fn parse(head: &[u8], router: &Router, forward: &mut Vec<u8>) -> Result<Head, Reject> {
    let text = head.strip_suffix(b"\r\n\r\n").unwrap_or(head);
    let mut lines = text
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let line = lines.next().unwrap_or(b"");
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("malformed request line"));
    };
    let http10 = match version {
        b"HTTP/1.1" => false,
        b"HTTP/1.0" => true,
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            return Err(Reject {
                status: 505,
                why: "only HTTP/1.0 and HTTP/1.1 are served",
            });
        }
        _ => return Err(bad("malformed request line")),
    };
    if method.is_empty() || !method.iter().copied().all(is_tchar) {
        return Err(bad("malformed method"));
    }
    if target.is_empty() || !target.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err(bad("malformed request target"));
    }
    // Checked as ASCII above.
    let method = std::str::from_utf8(method).map_err(|_| bad("malformed method"))?;
    let target = std::str::from_utf8(target).map_err(|_| bad("malformed request target"))?;
    let target = origin_form(target)?;
    let route = router.find(target);
    let every_header = router.is_embedders(route);

    forward.clear();
    forward.extend_from_slice(method.as_bytes());
    forward.push(b' ');
    forward.extend_from_slice(target.as_bytes());
    forward.extend_from_slice(b" HTTP/1.1\r\n");
    let (mut hosts, mut lengths, mut encodings) = (0, 0, 0);
    let mut length = 0u64;
    let (mut close, mut keep) = (false, false);
    let mut expects_continue = false;
    for (count, line) in lines.enumerate() {
        if count >= MAX_HEADERS {
            return Err(Reject {
                status: 431,
                why: "too many header fields",
            });
        }
        if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            return Err(bad("obs-fold (a header line starting with whitespace)"));
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err(bad("header line without a colon"));
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if name.is_empty() || !name.iter().copied().all(is_tchar) {
            return Err(bad(
                "malformed header name (or whitespace before the colon)",
            ));
        }
        // RFC 9110 section 5.5: only SP and HTAB surround a field value; any other
        // control character (a form feed among them) is refused, never trimmed.
        let value = trim_ows(value);
        if !value
            .iter()
            .all(|&b| b == b'\t' || (0x20..=0x7e).contains(&b))
        {
            return Err(bad("control character or non-ASCII byte in a header value"));
        }
        let name = std::str::from_utf8(name).map_err(|_| bad("malformed header name"))?;
        let value = std::str::from_utf8(value).map_err(|_| bad("malformed header value"))?;
        let is = |known: &str| name.eq_ignore_ascii_case(known);
        if is("host") {
            hosts += 1;
            if !valid_host(value.as_bytes()) {
                return Err(bad("invalid Host (RFC 3986 uri-host [\":\" port])"));
            }
        } else if is("content-length") {
            lengths += 1;
            if value.is_empty() || value.len() > 18 || !value.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("malformed Content-Length"));
            }
            length = value.parse().map_err(|_| bad("malformed Content-Length"))?;
        } else if is("transfer-encoding") {
            encodings += 1;
            if !value.eq_ignore_ascii_case("chunked") {
                return Err(bad("Transfer-Encoding other than chunked"));
            }
        } else if is("connection") {
            for token in value.split(',').map(str::trim) {
                close |= token.eq_ignore_ascii_case("close");
                keep |= token.eq_ignore_ascii_case("keep-alive");
            }
        } else if is("expect") {
            if !value.eq_ignore_ascii_case("100-continue") {
                return Err(Reject {
                    status: 417,
                    why: "only Expect: 100-continue is understood",
                });
            }
            expects_continue = true;
        }
        if encode::reserved(name)
            || HOP_BY_HOP.iter().any(|h| is(h))
            || !(every_header || BUILT_IN_READS.iter().any(|h| is(h)))
        {
            continue;
        }
        forward.extend_from_slice(name.as_bytes());
        forward.extend_from_slice(b": ");
        forward.extend_from_slice(value.as_bytes());
        forward.extend_from_slice(b"\r\n");
    }
    if hosts > 1 || (!http10 && hosts == 0) {
        return Err(bad("HTTP/1.1 needs exactly one Host header"));
    }
    if lengths > 1 {
        return Err(bad("more than one Content-Length"));
    }
    if encodings > 1 || (encodings == 1 && (lengths > 0 || http10)) {
        return Err(bad("conflicting body framing"));
    }
    let body = match (encodings, length) {
        (1, _) => Body::Chunked,
        (_, 0) => Body::None,
        (_, n) => Body::Length(n),
    };
    Ok(Head {
        route,
        head_method: method == "HEAD",
        method: method_index(method.as_bytes()),
        http10,
        keep_alive: if http10 { keep && !close } else { !close },
        body,
        expects_continue,
    })
}

/// `value` without the SP and HTAB around it (RFC 9110's optional whitespace).
fn trim_ows(value: &[u8]) -> &[u8] {
    let ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !ows(b)).unwrap_or(value.len());
    let end = value.iter().rposition(|b| !ows(b)).map_or(start, |i| i + 1);
    &value[start..end]
}

/// Whether a `Host` value is RFC 3986's `uri-host [":" port]` (RFC 9112 section 3.2):
/// an IP literal in brackets or a reg-name (unreserved, percent-encoded and sub-delims
/// characters; an IPv4 address is one too), then optionally a colon and digits.
fn valid_host(value: &[u8]) -> bool {
    let (host, port) = if value.first() == Some(&b'[') {
        let Some(close) = value.iter().position(|&b| b == b']') else {
            return false;
        };
        if !valid_ip_literal(&value[1..close]) {
            return false;
        }
        (&[][..], &value[close + 1..])
    } else {
        let colon = value.iter().position(|&b| b == b':').unwrap_or(value.len());
        (&value[..colon], &value[colon..])
    };
    let port_ok = match port.split_first() {
        None => true,
        Some((b':', digits)) => digits.iter().all(u8::is_ascii_digit),
        Some(_) => false,
    };
    port_ok && valid_reg_name(host)
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~".contains(&b)
}

fn is_sub_delim(b: u8) -> bool {
    b"!$&'()*+,;=".contains(&b)
}

/// RFC 3986's `reg-name`: `*( unreserved / pct-encoded / sub-delims )`.
fn valid_reg_name(name: &[u8]) -> bool {
    let mut i = 0;
    while i < name.len() {
        match name[i] {
            b'%' => {
                let hex = |j: usize| name.get(j).is_some_and(u8::is_ascii_hexdigit);
                if !(hex(i + 1) && hex(i + 2)) {
                    return false;
                }
                i += 3;
            }
            b if is_unreserved(b) || is_sub_delim(b) => i += 1,
            _ => return false,
        }
    }
    true
}

/// The inside of RFC 3986's `IP-literal`: an IPv6 address or `IPvFuture`
/// (`"v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )`).
fn valid_ip_literal(inside: &[u8]) -> bool {
    if let Some(rest) = inside.strip_prefix(b"v").or(inside.strip_prefix(b"V")) {
        let dot = rest.iter().position(|&b| b == b'.').unwrap_or(0);
        let (version, tail) = (&rest[..dot], rest.get(dot + 1..).unwrap_or(&[]));
        return !version.is_empty()
            && version.iter().all(u8::is_ascii_hexdigit)
            && !tail.is_empty()
            && tail
                .iter()
                .all(|&b| is_unreserved(b) || is_sub_delim(b) || b == b':');
    }
    std::str::from_utf8(inside).is_ok_and(|s| s.parse::<std::net::Ipv6Addr>().is_ok())
}

/// What the first line of a request says about it, as far as it got: the method as an
/// index into the RED metrics' method values, and the target once the line is complete
/// and valid (for the route of a request the gate refuses).
pub fn request_line(input: &[u8]) -> (usize, Option<&str>) {
    let line_end = input.windows(2).position(|w| w == b"\r\n");
    let line = &input[..line_end.unwrap_or(input.len())];
    let index = method_index(line.split(|&b| b == b' ').next().unwrap_or(b""));
    let target = line_end.and_then(|_| {
        let mut parts = line.split(|&b| b == b' ');
        let (_, Some(target), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        if target.is_empty() || !target.iter().all(|b| (0x21..=0x7e).contains(b)) {
            return None;
        }
        origin_form(std::str::from_utf8(target).ok()?).ok()
    });
    (index, target)
}

/// The index of a method token in the RED metrics' method values, as tiny_http would
/// name it (case-sensitive; anything else is `OTHER`, the last).
fn method_index(method: &[u8]) -> usize {
    let known = &METHODS[..METHODS.len() - 1];
    known
        .iter()
        .position(|m| m.as_bytes() == method)
        .unwrap_or(known.len())
}

/// The origin form of a target: itself, or the path and query of an absolute form.
fn origin_form(target: &str) -> Result<&str, Reject> {
    if target.starts_with('/') || target == "*" {
        return Ok(target);
    }
    let scheme = |s: &str| {
        target
            .as_bytes()
            .get(..s.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(s.as_bytes()))
    };
    let rest = if scheme("http://") {
        &target[7..]
    } else if scheme("https://") {
        &target[8..]
    } else {
        return Err(bad("request target is neither a path nor an absolute URL"));
    };
    match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'/' => Ok(&rest[i..]),
        // `http://host` or `http://host?q`: the path is `/`, which matches no route.
        _ => Ok("/"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> SocketAddr {
        "192.0.2.1:4242".parse().unwrap()
    }

    /// The built-in routes and an embedder's `/x`.
    fn router() -> Router {
        use crate::http::Reply;
        use crate::http::routes::Endpoint;
        let mut router = Router::new("/metrics");
        router.add(
            "/x",
            Endpoint::Custom(std::sync::Arc::new(|_| Reply::text(200, ""))),
            5,
        );
        router
    }

    fn scan_all(bytes: &[u8]) -> Scan {
        Scanner::default().advance(bytes)
    }

    fn status(head: &str) -> u16 {
        match parse(head.as_bytes(), &router(), &mut Vec::new()) {
            Ok(_) => 200,
            Err(r) => r.status,
        }
    }

    #[test]
    fn finds_the_end_byte_by_byte_and_refuses_bad_bytes_at_once() {
        let head = b"GET /up HTTP/1.1\r\nHost: a\r\n\r\nGET";
        let mut s = Scanner::default();
        for n in 1..head.len() {
            match s.advance(&head[..n]) {
                Scan::Partial => assert!(n < 29),
                Scan::Complete(len) => {
                    assert_eq!(len, 29);
                    break;
                }
                Scan::Refused(r) => panic!("{r:?}"),
            }
        }
        for (bytes, want) in [
            (&b"GET / HTTP/1.1\n"[..], 400),
            (b"GET /\0", 400),
            (b"GET / HTTP/1.1\rX", 400),
        ] {
            assert!(matches!(scan_all(bytes), Scan::Refused(r) if r.status == want));
        }
        assert_eq!(scan_all(b"GET / HTTP/1.1\r"), Scan::Partial);
        let long_line = vec![b'a'; MAX_LINE + 2];
        assert!(matches!(scan_all(&long_line), Scan::Refused(r) if r.status == 414));
        let mut long_head = b"GET / HTTP/1.1\r\n".to_vec();
        long_head.extend(std::iter::repeat_n(b'a', MAX_HEAD));
        assert!(matches!(scan_all(&long_head), Scan::Refused(r) if r.status == 431));
    }

    #[test]
    fn framing_is_strict() {
        let ok = "GET /up HTTP/1.1\r\nHost: a\r\n\r\n";
        assert_eq!(status(ok), 200);
        for (head, want) in [
            ("GET /up HTTP/1.1\r\n\r\n", 400),
            ("GET /up HTTP/1.0\r\n\r\n", 200),
            ("PRI * HTTP/2.0\r\n\r\n", 505),
            ("GET /up HTTP/3.0\r\nHost: a\r\n\r\n", 505),
            (
                "GET /up HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 36\r\n\r\n",
                400,
            ),
            (
                "GET /up HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n",
                400,
            ),
            (
                "GET /up HTTP/1.1\r\nHost: a\r\nContent-Length: 3,3\r\n\r\n",
                400,
            ),
            (
                "GET /up HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
                400,
            ),
            (
                "GET /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                400,
            ),
            (
                "GET /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
                200,
            ),
            ("GET /up HTTP/1.1\r\nHost : a\r\n\r\n", 400),
            ("GET /up HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n", 400),
            ("GET /up HTTP/1.1\r\nHost: a\x01\r\n\r\n", 400),
            ("GET /up HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
            ("GET  /up HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            ("GET /u p HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            ("GET /up HTTP/1.1\r\nHost: a\r\nExpect: magic\r\n\r\n", 417),
            // Only SP and HTAB surround a value: a form feed is refused, not trimmed.
            (
                "GET /up HTTP/1.1\r\nHost: a\r\nContent-Length: \x0c0\r\n\r\n",
                400,
            ),
            ("GET /up HTTP/1.1\r\nHost: \x0ca\x0c\r\n\r\n", 400),
            (
                "GET /up HTTP/1.1\r\nHost: a\r\nConnection: \x0cclose\r\n\r\n",
                400,
            ),
            ("GET /up HTTP/1.1\r\nHost: a\r\nX: \x0b\r\n\r\n", 400),
            ("GET /up HTTP/1.1\r\nHost: \t a \t\r\n\r\n", 200),
            // Host is RFC 3986 uri-host [":" port].
            ("GET /up HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
            ("GET /up HTTP/1.1\r\nHost: [zz\r\n\r\n", 400),
            ("GET /up HTTP/1.1\r\nHost: a/b@c\r\n\r\n", 400),
            ("GET /up HTTP/1.1\r\nHost: a:8x\r\n\r\n", 400),
            ("GET /up HTTP/1.1\r\nHost: [::1]x\r\n\r\n", 400),
            ("GET /up HTTP/1.1\r\nHost: %zz\r\n\r\n", 400),
            ("GET /up HTTP/1.0\r\nHost: a@b\r\n\r\n", 400),
            ("GET /up HTTP/1.1\r\nHost: example.com:8080\r\n\r\n", 200),
            ("GET /up HTTP/1.1\r\nHost: 127.0.0.1:\r\n\r\n", 200),
            ("GET /up HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", 200),
            ("GET /up HTTP/1.1\r\nHost: [v1.a:b]\r\n\r\n", 200),
            (
                "GET /up HTTP/1.1\r\nHost: a%20b!$&'()*+,;=-._~\r\n\r\n",
                200,
            ),
            ("GET /up HTTP/1.1\r\nHost:\r\n\r\n", 200),
        ] {
            assert_eq!(status(head), want, "{head:?}");
        }
    }

    #[test]
    fn a_built_in_route_gets_only_the_headers_its_answer_reads() {
        let request = |target: &str| {
            format!(
                "GET {target} HTTP/1.1\r\nHost: a\r\nUser-Agent: u\r\nACCEPT: text/plain\r\n\
                 Accept-Encoding: gzip\r\ntraceparent: t\r\nX-Other: o\r\n\r\n"
            )
        };
        let mut forward = Vec::new();
        for target in ["/up", "/metrics", "/", "/synthetic", "/no-such-page"] {
            parse(request(target).as_bytes(), &router(), &mut forward).unwrap();
            let text = String::from_utf8(forward.clone()).unwrap();
            assert_eq!(
                text,
                format!(
                    "GET {target} HTTP/1.1\r\nACCEPT: text/plain\r\n\
                     Accept-Encoding: gzip\r\ntraceparent: t\r\n"
                )
            );
        }
        parse(request("/x").as_bytes(), &router(), &mut forward).unwrap();
        let text = String::from_utf8(forward.clone()).unwrap();
        for kept in [
            "Host: a\r\n",
            "User-Agent: u\r\n",
            "X-Other: o\r\n",
            "traceparent: t\r\n",
        ] {
            assert!(text.contains(kept), "{kept:?} missing from {text:?}");
        }
    }

    #[test]
    fn rewrites_for_tiny_http() {
        let mut forward = Vec::new();
        let h = parse(
            b"GET http://example:80/up?x=1 HTTP/1.0\r\nConnection: keep-alive\r\nTinyprom-Peer: 6.6.6.6:6\r\nTinyprom-Probe: 1\r\nAccept: */*\r\n\r\n",
            &router(),
            &mut forward,
        )
        .unwrap();
        assert_eq!(h.route, router().find("/up"));
        assert!(h.http10 && h.keep_alive);
        finish(&mut forward, Some(peer()), 0, 7);
        assert_eq!(
            String::from_utf8(forward.clone()).unwrap(),
            "GET /up?x=1 HTTP/1.1\r\nAccept: */*\r\ntinyprom-peer: 192.0.2.1:4242\r\ntinyprom-received: 7\r\n\r\n"
        );
        let h = parse(
            b"HEAD /up HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
            &router(),
            &mut forward,
        )
        .unwrap();
        assert!(!h.keep_alive && !h.http10);
        let h = parse(
            b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n",
            &router(),
            &mut forward,
        )
        .unwrap();
        assert_eq!(h.body, Body::Length(5));
        finish(&mut forward, None, 5, 1);
        assert!(forward.ends_with(b"Content-Length: 5\r\n\r\n"));
        assert_eq!(origin_form("http://h").unwrap(), "/");
        assert_eq!(origin_form("HTTPS://h/a").unwrap(), "/a");
        assert!(origin_form("h:80").is_err());
    }
}
