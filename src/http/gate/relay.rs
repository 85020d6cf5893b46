//! One request on its way through tiny_http, and its response on the way back.
//!
//! The gate writes the rewritten head on a private connection (HTTP/1.0 with
//! `Connection: keep-alive`, so tiny_http always answers with a `Content-Length`,
//! never chunked, and keeps the connection), reads the response until its length is
//! complete, and rewrites its head for the client: the status line as HTTP/1.1 and
//! the `Connection` header the client's connection calls for. The private connection
//! then goes back to the gate's pool for the next request of any client.
//!
//! A private connection carries one request at a time, so tiny_http never holds two
//! requests on one connection and its in-order writer can never wait for an earlier
//! response (the pipelined `/synthetic` wedge cannot happen); and the gate always
//! reads what tiny_http writes, so no worker or timer thread blocks on a write.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use super::poll;

/// The largest response relayed (a scrape of a very large registry fits); a larger
/// one is answered 502.
pub const MAX_RESPONSE: usize = 64 << 20;

/// Where a relay stands after some I/O.
#[derive(Debug, PartialEq, Eq)]
pub enum Progress {
    /// Waiting for the socket.
    Pending,
    /// The response is complete and the connection can carry another request.
    Done,
    /// The response is complete but tiny_http closed the connection.
    DoneClosed,
    /// The relay failed: answer 502.
    Failed,
}

/// A request relayed to tiny_http.
pub struct Relay {
    fd: OwnedFd,
    request: Vec<u8>,
    sent: usize,
    response: Vec<u8>,
    /// The response to a HEAD request has no body, whatever its `Content-Length`.
    head_method: bool,
    /// The response's full length, once its head is in.
    expected: Option<usize>,
}

/// The length of a complete response head plus the body its `Content-Length`
/// announces (none for HEAD); `None` until the head is complete.
fn framed_length(response: &[u8], head_method: bool) -> Option<Result<usize, ()>> {
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

impl Relay {
    /// A relay of `request` (head and body) over the connection `fd`.
    pub fn new(fd: OwnedFd, request: Vec<u8>, head_method: bool) -> Relay {
        Relay {
            fd,
            request,
            sent: 0,
            response: Vec::new(),
            head_method,
            expected: None,
        }
    }

    /// The descriptor to poll.
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Whether request bytes are still to be written.
    pub fn wants_write(&self) -> bool {
        self.sent < self.request.len()
    }

    /// Writes what it can of the request: `Failed` if the connection broke, else
    /// `Pending`.
    ///
    /// This is all the gate does when it starts a relay. It does not try a read
    /// as well: the response cannot be there yet, so the read would only return
    /// `EAGAIN`, one wasted system call per request (measured with `strace -c -f`
    /// under `wrk`: it was half of all reads of the private sockets). The
    /// connection is registered edge-triggered before this write, and every
    /// arrival of response bytes raises an edge, so the read happens when
    /// [`Relay::pump`] is called for that event.
    pub fn send(&mut self) -> Progress {
        while self.wants_write() {
            match poll::send(self.fd(), &self.request[self.sent..]) {
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Progress::Failed,
            }
        }
        if !self.wants_write() && self.request.capacity() > 0 {
            self.request = Vec::new();
        }
        Progress::Pending
    }

    /// Writes what it can of the request, then reads what it can of the response.
    pub fn pump(&mut self, scratch: &mut [u8]) -> Progress {
        if self.send() == Progress::Failed {
            return Progress::Failed;
        }
        loop {
            // SAFETY: the pointer and length describe the live buffer `scratch`.
            let n = unsafe { libc::read(self.fd(), scratch.as_mut_ptr().cast(), scratch.len()) };
            if n > 0 {
                self.response.extend_from_slice(&scratch[..n as usize]);
                if self.response.len() > MAX_RESPONSE {
                    return Progress::Failed;
                }
                if self.expected.is_none() {
                    match framed_length(&self.response, self.head_method) {
                        None => {}
                        Some(Ok(n)) => self.expected = Some(n),
                        Some(Err(())) => return Progress::Failed,
                    }
                }
                match self.expected {
                    Some(n) if self.response.len() == n => return Progress::Done,
                    Some(n) if self.response.len() > n => return Progress::Failed,
                    _ => continue,
                }
            }
            if n == 0 {
                let complete = self.expected == Some(self.response.len());
                return if complete {
                    Progress::DoneClosed
                } else {
                    Progress::Failed
                };
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::WouldBlock => return Progress::Pending,
                io::ErrorKind::Interrupted => {}
                _ => return Progress::Failed,
            }
        }
    }

    /// The response for the client (`None` if tiny_http sent no valid head), and the
    /// connection for the next request.
    pub fn finish(self, keep_alive: bool, http10: bool) -> (Option<(u16, Vec<u8>)>, OwnedFd) {
        (rewrite(&self.response, keep_alive, http10), self.fd)
    }
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

/// A response written by the gate itself (refusals, 502), always closing.
pub fn own_response(status: u16, why: &str) -> Vec<u8> {
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
    let body = format!("{status} {why}\n");
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
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
        let own = String::from_utf8(own_response(431, "too big")).unwrap();
        assert!(own.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(own.ends_with("Connection: close\r\n\r\n431 too big\n"));
    }
}
