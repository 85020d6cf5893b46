//! Responses on their way back: tiny_http's answers rewritten for the client (the
//! gate's own answers are [`super::refusal`]'s).
//!
//! A response comes back from a [`super::lane::Lane`] as tiny_http wrote it: HTTP/1.0
//! with a `Content-Length`. The gate rewrites its head for the client: the status line
//! as HTTP/1.1 and the `Connection` header the client's connection calls for.

/// The largest response relayed (a scrape of a very large registry fits); a larger
/// one is answered 502.
pub const MAX_RESPONSE: usize = 64 << 20;

/// The length of a complete response head plus the body its `Content-Length`
/// announces (none for HEAD); `None` until the head is complete.
pub fn framed_length(response: &[u8], head_method: bool) -> Option<Result<usize, ()>> {
    let end = response.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&response[..end]).ok();
    let length = head.and_then(|h| {
        h.split("\r\n").find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
    });
    Some(match length {
        Some(_) if head_method => Ok(end),
        Some(n) => Ok(end + n),
        None => Err(()),
    })
}

/// Rewrites tiny_http's HTTP/1.0 response for the client (see the module docs):
/// returns the status and the bytes to send.
pub fn rewrite(response: &[u8], keep_alive: bool, http10: bool) -> Option<(u16, Vec<u8>)> {
    let end = response.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&response[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let rest = status_line.strip_prefix("HTTP/1.")?.get(2..)?;
    let status: u16 = rest.get(..3)?.parse().ok()?;
    let mut out = Vec::with_capacity(response.len() + 32);
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(rest.as_bytes());
    out.extend_from_slice(b"\r\n");
    for line in lines {
        let name = line.split(':').next().unwrap_or("");
        if name.eq_ignore_ascii_case("connection") || name.eq_ignore_ascii_case("keep-alive") {
            continue;
        }
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if http10 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&response[end + 4..]);
    Some((status, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_the_status_line_and_connection() {
        let from_tiny = b"HTTP/1.0 200 OK\r\nServer: x\r\nContent-Length: 2\r\n\r\nok";
        let (status, out) = rewrite(from_tiny, true, true).unwrap();
        assert_eq!(status, 200);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 200 OK\r\nServer: x\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok"
        );
        let (_, out) = rewrite(from_tiny, false, false).unwrap();
        assert!(
            String::from_utf8(out)
                .unwrap()
                .contains("\r\nConnection: close\r\n\r\nok")
        );
        let (_, out) = rewrite(from_tiny, true, false).unwrap();
        assert!(!String::from_utf8(out).unwrap().contains("Connection"));
        assert!(rewrite(b"HTTP/1.0 200 OK\r\n", true, false).is_none());
        assert!(rewrite(b"garbage\r\n\r\n", true, false).is_none());
        assert_eq!(framed_length(from_tiny, false), Some(Ok(from_tiny.len())));
        assert_eq!(
            framed_length(from_tiny, true),
            Some(Ok(from_tiny.len() - 2))
        );
        assert_eq!(framed_length(b"HTTP/1.0 200 OK\r\n", false), None);
        assert_eq!(
            framed_length(b"HTTP/1.0 200 OK\r\n\r\n", false),
            Some(Err(()))
        );
    }
}
