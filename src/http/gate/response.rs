//! Responses on their way back from a lane: each read once, and forwarded to its client
//! as pieces of the bytes tiny_http wrote, without a copy (the gate's own answers are
//! [`super::refusal`]'s).
//!
//! A response comes back from a [`super::lane::Lane`] as tiny_http wrote it: HTTP/1.1
//! (HTTP/1.0 for the lane's probe) with a `Content-Length`. [`frame`] reads its head once: where it ends, how long the
//! body is, and which `Connection` and `Keep-Alive` lines it has. The client gets the
//! same bytes with three changes, made by choosing pieces rather than by rewriting: the
//! status line says HTTP/1.1, those lines are left out, and the `Connection` line the
//! client's connection calls for is put in before the blank line ([`Framed::pieces`]).

/// The largest response relayed (a scrape of a very large registry fits); a larger
/// one is answered 502.
pub const MAX_RESPONSE: usize = 64 << 20;

/// The most lines left out of a response (`Connection`/`Keep-Alive`: tiny_http writes
/// at most one; a 204's or 304's `Content-Length`); more, from an embedder's headers,
/// make the response invalid: 502.
const MAX_SKIPPED: usize = 4;

/// The most pieces a forwarded response has: the status line's version, the spans
/// around the skipped lines, the `Connection` line, the blank line and the body.
pub const MAX_PIECES: usize = MAX_SKIPPED + 5;

/// Where a complete response's parts lie (see [`frame`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framed {
    /// Head and body.
    pub len: usize,
    /// The head, up to and including its last header line's CRLF (the blank line
    /// follows).
    head: usize,
    /// The lines left out: `Connection` and `Keep-Alive`, and a 204's or 304's
    /// `Content-Length`, CRLF included.
    skipped: [(usize, usize); MAX_SKIPPED],
    skips: usize,
}

/// Reads a response's head: `None` until the head is complete, an error when it is
/// not a response the gate can forward (no HTTP/1.x status line, an interim 1xx
/// status, no `Content-Length`, too many `Connection` lines). No body follows when
/// `head_method` (the request was HEAD) or the status is 204 or 304, whatever the
/// `Content-Length` says (RFC 9112 section 6.3); a 204's or 304's `Content-Length`
/// line, which tiny_http always writes, is left out of what the client gets.
pub fn frame(bytes: &[u8], head_method: bool) -> Option<Result<Framed, ()>> {
    let mut framed = Framed {
        len: 0,
        head: 0,
        skipped: [(0, 0); MAX_SKIPPED],
        skips: 0,
    };
    let mut length = None;
    let mut no_content = false;
    let mut start = 0;
    loop {
        let end = start + bytes[start..].iter().position(|&b| b == b'\n')? + 1;
        let line = &bytes[start..end];
        let Some(line) = line.strip_suffix(b"\r\n") else {
            return Some(Err(()));
        };
        if start == 0 {
            let status_ok = line.len() >= 12
                && line.starts_with(b"HTTP/1.")
                && line[7].is_ascii_digit()
                && line[8] == b' '
                && line[9..12].iter().all(u8::is_ascii_digit);
            if !status_ok || line[9] == b'1' {
                return Some(Err(()));
            }
            let status = &line[9..12];
            no_content = status == b"204" || status == b"304";
        } else if line.is_empty() {
            framed.head = start;
            break;
        } else {
            let colon = line.iter().position(|&b| b == b':').unwrap_or(line.len());
            let (name, value) = (&line[..colon], line.get(colon + 1..).unwrap_or(&[]));
            let content_length = name.eq_ignore_ascii_case(b"content-length");
            if content_length {
                let value = std::str::from_utf8(value).map_err(|_| ());
                length = value.ok().and_then(|v| v.trim().parse::<usize>().ok());
            }
            if (content_length && no_content)
                || name.eq_ignore_ascii_case(b"connection")
                || name.eq_ignore_ascii_case(b"keep-alive")
            {
                if framed.skips == MAX_SKIPPED {
                    return Some(Err(()));
                }
                framed.skipped[framed.skips] = (start, end);
                framed.skips += 1;
            }
        }
        start = end;
    }
    let Some(length) = length else {
        return Some(Err(()));
    };
    let head_end = framed.head + 2;
    framed.len = if head_method || no_content {
        head_end
    } else {
        head_end + length
    };
    Some(Ok(framed))
}

/// The `Connection` line a client's connection calls for: `close` when it ends after
/// this response, `keep-alive` for HTTP/1.0 when it stays, none for HTTP/1.1 when it
/// stays.
pub fn connection_line(keep_alive: bool, http10: bool) -> &'static [u8] {
    match (keep_alive, http10) {
        (false, _) => b"Connection: close\r\n",
        (true, true) => b"Connection: keep-alive\r\n",
        (true, false) => b"",
    }
}

impl Framed {
    /// The response `bytes` (as framed) for the client, as pieces in order, with
    /// `connection` (see [`connection_line`]) as its `Connection` line; the count of
    /// pieces in `out`.
    pub fn pieces<'a>(
        &self,
        bytes: &'a [u8],
        connection: &'a [u8],
        out: &mut [&'a [u8]; MAX_PIECES],
    ) -> usize {
        let mut n = 0;
        let mut put = |piece: &'a [u8]| {
            if !piece.is_empty() {
                out[n] = piece;
                n += 1;
            }
        };
        put(b"HTTP/1.1");
        // After "HTTP/1.x": the space, the status and reason, then the header lines.
        let mut from = 8;
        for &(start, end) in &self.skipped[..self.skips] {
            put(&bytes[from..start]);
            from = end;
        }
        put(&bytes[from..self.head]);
        put(connection);
        put(&bytes[self.head..self.len]);
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarded(bytes: &[u8], head_method: bool, keep_alive: bool, http10: bool) -> String {
        let framed = frame(bytes, head_method).unwrap().unwrap();
        let mut pieces = [&b""[..]; MAX_PIECES];
        let n = framed.pieces(bytes, connection_line(keep_alive, http10), &mut pieces);
        String::from_utf8(pieces[..n].concat()).unwrap()
    }

    #[test]
    fn no_content_follows_a_204_or_304_and_an_interim_status_is_refused() {
        for status in ["204 No Content", "304 Not Modified"] {
            let from_tiny =
                format!("HTTP/1.1 {status}\r\nServer: x\r\nContent-Length: 5\r\n\r\nNEXT");
            let bytes = from_tiny.as_bytes();
            let framed = frame(bytes, false).unwrap().unwrap();
            assert_eq!(
                &bytes[framed.len..],
                b"NEXT",
                "{status}: the body ends with the head"
            );
            assert_eq!(
                forwarded(bytes, false, true, false),
                format!("HTTP/1.1 {status}\r\nServer: x\r\n\r\n"),
                "{status}: no Content-Length is forwarded"
            );
        }
        for interim in [
            &b"HTTP/1.1 100 Continue\r\n\r\n"[..],
            b"HTTP/1.1 103 Early Hints\r\nContent-Length: 0\r\n\r\n",
        ] {
            assert_eq!(frame(interim, false), Some(Err(())), "{interim:?}");
        }
    }

    #[test]
    fn forwards_with_the_status_line_and_connection_the_client_needs() {
        let from_tiny = b"HTTP/1.0 200 OK\r\nServer: x\r\nContent-Length: 2\r\n\r\nok";
        assert_eq!(
            forwarded(from_tiny, false, true, true),
            "HTTP/1.1 200 OK\r\nServer: x\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok"
        );
        assert!(
            forwarded(from_tiny, false, false, false).ends_with("\r\nConnection: close\r\n\r\nok")
        );
        assert!(!forwarded(from_tiny, false, true, false).contains("Connection"));
        let with_connection =
            b"HTTP/1.0 404 Not Found\r\nConnection: keep-alive\r\nA: b\r\nkeep-alive: x\r\nContent-Length: 0\r\n\r\nNEXT";
        assert_eq!(
            forwarded(with_connection, false, false, false),
            "HTTP/1.1 404 Not Found\r\nA: b\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        // HEAD: no body, whatever the Content-Length says.
        assert_eq!(
            frame(from_tiny, true),
            Some(Ok(Framed {
                len: from_tiny.len() - 2,
                ..frame(from_tiny, true).unwrap().unwrap()
            }))
        );
        assert_eq!(
            frame(from_tiny, false).unwrap().unwrap().len,
            from_tiny.len()
        );
        assert_eq!(frame(b"HTTP/1.0 200 OK\r\n", false), None);
        for invalid in [
            &b"HTTP/1.0 200 OK\r\n\r\n"[..],
            b"garbage\r\n\r\n",
            b"HTTP/1.0 200 OK\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.0 2x0 OK\r\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.0 200 OK\r\nContent-Length: z\r\n\r\n",
        ] {
            assert_eq!(frame(invalid, false), Some(Err(())), "{invalid:?}");
        }
    }
}
