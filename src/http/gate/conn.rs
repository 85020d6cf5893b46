//! One client connection as the gate sees it: bytes in, at most one request at a time
//! on its way through tiny_http, responses out in order, and one deadline.
//!
//! Requests of a pipelining client are taken one after the other: the next head is
//! read only once the previous response is queued, so responses leave in request
//! order without any reordering. Reading stops while the input holds a full head (or
//! the body being collected) or while more than [`OUT_HIGH`] bytes wait to be written,
//! so a client that sends without reading costs bounded memory.
//!
//! A connection that must close after its response (`Connection: close`, HTTP/1.0
//! without keep-alive, a refusal, shutdown) lingers: its writing side is shut after
//! the last byte, and what the client still sends is read and discarded until it
//! closes or [`LINGER`] passes, so the kernel does not reset the connection and
//! destroy the response in flight.

use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use super::head::{self, Body, MAX_HEAD, Reject, Scan, Scanner};
use super::metrics::Closed;
use super::poll;
use super::relay::own_response;

/// Queued response bytes above which no further request is read.
pub const OUT_HIGH: usize = 256 * 1024;
/// How long a closing connection is drained before it is closed anyway.
pub const LINGER: Duration = Duration::from_secs(2);
/// The input kept while waiting for a head (a little more than the head limit, so
/// the scanner sees the overflow and answers 431).
const IN_CAP: usize = MAX_HEAD + 1024;
/// "No deadline": while tiny_http works on a request, the worker bounds it.
const FAR: Duration = Duration::from_secs(86_400);

/// A vetted request waiting for a relay slot.
pub struct Ready {
    /// The head (and body) for tiny_http.
    pub request: Vec<u8>,
    /// Whether the client connection stays open after the response.
    pub keep_alive: bool,
    /// Whether the client spoke HTTP/1.0.
    pub http10: bool,
    /// Whether the method is HEAD.
    pub head_method: bool,
    /// The target, as routed.
    pub target: String,
    /// While held for its route's delay: when it may go on.
    pub not_before: Option<Instant>,
}

/// A request inside tiny_http and what its response must say.
pub struct InFlight {
    /// The slot of the lane carrying it (see [`super::lane`]).
    pub slot: usize,
    /// See [`Ready`].
    pub keep_alive: bool,
    /// See [`Ready`].
    pub http10: bool,
}

/// What reading from the client gave.
pub enum Input {
    /// Bytes (or nothing yet).
    Open,
    /// The client closed its sending side (or the connection failed).
    Ended,
}

/// What [`Conn::advance`] produced.
pub enum Advance {
    /// Nothing new.
    Idle,
    /// A request is ready for a relay ([`Conn::ready`]).
    Ready,
    /// The gate refused a request with this status (queued; the connection closes).
    Refused(u16),
}

/// A client connection.
pub struct Conn {
    stream: TcpStream,
    /// The client's address.
    pub peer: SocketAddr,
    input: Vec<u8>,
    scanner: Scanner,
    body_wait: Option<(head::Head, u64)>,
    out: Vec<u8>,
    out_pos: usize,
    /// A request waiting for a relay slot.
    pub ready: Option<Ready>,
    /// The request in tiny_http.
    pub in_flight: Option<InFlight>,
    /// Close once the queued output is written.
    pub close_after: bool,
    /// Shut for writing; draining until the client closes.
    pub lingering: bool,
    /// When the current deadline falls, and what it is for.
    pub deadline: Instant,
    /// The reason recorded if the deadline passes.
    pub deadline_kind: Closed,
    /// When it last became idle or started a head (the eviction order).
    pub since: Instant,
    /// The interest registered with the poller.
    pub interest: u32,
}

impl Conn {
    /// A new connection, with the head deadline running.
    pub fn new(stream: TcpStream, peer: SocketAddr, now: Instant, read_timeout: Duration) -> Conn {
        Conn {
            stream,
            peer,
            input: Vec::new(),
            scanner: Scanner::default(),
            body_wait: None,
            out: Vec::new(),
            out_pos: 0,
            ready: None,
            in_flight: None,
            close_after: false,
            lingering: false,
            deadline: now + read_timeout,
            deadline_kind: Closed::ReadTimeout,
            since: now,
            interest: poll::READ,
        }
    }

    /// The socket's descriptor.
    pub fn fd(&self) -> i32 {
        self.stream.as_raw_fd()
    }

    /// Whether nothing is in progress: no request in tiny_http or waiting for it, no
    /// body being collected, nothing to write. Such a connection may be evicted.
    pub fn evictable(&self) -> bool {
        self.ready.is_none()
            && self.in_flight.is_none()
            && self.body_wait.is_none()
            && self.pending_out() == 0
    }

    /// Whether it holds no bytes of a request yet (idle between requests).
    pub fn between_requests(&self) -> bool {
        self.evictable() && self.input.is_empty()
    }

    fn pending_out(&self) -> usize {
        self.out.len() - self.out_pos
    }

    fn input_cap(&self) -> usize {
        match &self.body_wait {
            Some((_, n)) => (*n as usize).max(IN_CAP),
            None => IN_CAP,
        }
    }

    /// The interest it needs now.
    pub fn wants(&self) -> u32 {
        let read = self.lingering
            || (!self.close_after
                && self.input.len() < self.input_cap()
                && self.pending_out() <= OUT_HIGH);
        let write = self.pending_out() > 0;
        (if read { poll::READ } else { 0 }) | (if write { poll::WRITE } else { 0 })
    }

    /// Reads what the socket has, up to the input bound (all of it while lingering,
    /// discarded).
    pub fn read(&mut self, scratch: &mut [u8]) -> Input {
        loop {
            let room = if self.lingering {
                scratch.len()
            } else {
                self.input_cap()
                    .saturating_sub(self.input.len())
                    .min(scratch.len())
            };
            if room == 0 {
                return Input::Open;
            }
            match self.stream.read(&mut scratch[..room]) {
                Ok(0) => return Input::Ended,
                Ok(n) if self.lingering => {
                    let _ = n;
                }
                Ok(n) => {
                    self.input.extend_from_slice(&scratch[..n]);
                    if n < room {
                        // Drained for now; level-triggered polling reports the rest.
                        return Input::Open;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Input::Open,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Input::Ended,
            }
        }
    }

    /// Queues bytes for the client.
    pub fn queue(&mut self, bytes: &[u8]) {
        if self.out.is_empty() {
            self.out.reserve_exact(bytes.len());
        }
        self.out.extend_from_slice(bytes);
    }

    /// Queues a response the gate built for this client: taken as it is when nothing
    /// else is queued (the common case), which saves an allocation and a copy of
    /// every relayed response.
    pub fn queue_owned(&mut self, bytes: Vec<u8>) {
        if self.out.is_empty() {
            self.out = bytes;
            self.out_pos = 0;
        } else {
            self.out.extend_from_slice(&bytes);
        }
    }

    /// Writes what the socket takes. `Ok(true)` when the output is empty, and moves the
    /// write deadline when bytes went out.
    pub fn flush(&mut self, now: Instant, write_timeout: Duration) -> io::Result<bool> {
        let before = self.out_pos;
        while self.out_pos < self.out.len() {
            match poll::send(self.fd(), &self.out[self.out_pos..]) {
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.out_pos == self.out.len() {
            self.out = Vec::new();
            self.out_pos = 0;
            return Ok(true);
        }
        if self.out_pos > before || self.deadline_kind != Closed::WriteTimeout {
            self.deadline = now + write_timeout;
            self.deadline_kind = Closed::WriteTimeout;
        }
        Ok(false)
    }

    /// Whether every response owed has been written and nothing else is coming.
    pub fn drained(&self) -> bool {
        self.pending_out() == 0 && self.ready.is_none() && self.in_flight.is_none()
    }

    /// Starts the linger (see the module documentation).
    pub fn start_linger(&mut self, now: Instant) {
        let _ = self.stream.shutdown(std::net::Shutdown::Write);
        self.lingering = true;
        self.input = Vec::new();
        self.deadline = now + LINGER;
        self.deadline_kind = Closed::Done;
    }

    /// Marks the connection idle between requests, with the idle deadline.
    pub fn idle(&mut self, now: Instant, read_timeout: Duration) {
        if self.deadline_kind != Closed::Idle {
            self.deadline = now + read_timeout;
            self.deadline_kind = Closed::Idle;
            self.since = now;
        }
        if self.input.capacity() > 4096 && self.input.is_empty() {
            self.input = Vec::new();
        }
    }

    /// Everything owed is written and part of the next head is in: its read deadline
    /// runs from now (not a write deadline left over from the response).
    pub fn awaiting_head(&mut self, now: Instant, read_timeout: Duration) {
        if self.deadline_kind != Closed::ReadTimeout {
            self.deadline = now + read_timeout;
            self.deadline_kind = Closed::ReadTimeout;
            self.since = now;
        }
    }

    /// A request is in tiny_http: no client deadline while the worker has it.
    pub fn relaying(&mut self, now: Instant) {
        self.deadline = now + FAR;
        self.deadline_kind = Closed::Done;
    }

    fn refuse(&mut self, reject: Reject) -> Advance {
        self.input = Vec::new();
        self.body_wait = None;
        self.queue(&own_response(reject.status, reject.why));
        self.close_after = true;
        Advance::Refused(reject.status)
    }

    /// Reads the next request from the input if the connection is free for one (see
    /// the module documentation). `body_limit` gives a target's body limit.
    pub fn advance(
        &mut self,
        body_limit: &dyn Fn(&str) -> u64,
        now: Instant,
        read_timeout: Duration,
    ) -> Advance {
        if self.ready.is_some()
            || self.in_flight.is_some()
            || self.close_after
            || self.lingering
            || self.pending_out() > OUT_HIGH
        {
            return Advance::Idle;
        }
        if let Some((head, length)) = self.body_wait.take() {
            if (self.input.len() as u64) < length {
                self.body_wait = Some((head, length));
                return Advance::Idle;
            }
            let body: Vec<u8> = self.input.drain(..length as usize).collect();
            return self.make_ready(head, length, &body);
        }
        while self.input.starts_with(b"\r\n") {
            // RFC 9112 section 2.2: empty lines before a request line are ignored.
            self.input.drain(..2);
        }
        if self.input.is_empty() {
            return Advance::Idle;
        }
        if self.deadline_kind == Closed::Idle {
            self.deadline = now + read_timeout;
            self.deadline_kind = Closed::ReadTimeout;
            self.since = now;
        }
        let length = match self.scanner.advance(&self.input) {
            Scan::Partial => return Advance::Idle,
            Scan::Refused(reject) => return self.refuse(reject),
            Scan::Complete(length) => length,
        };
        let parsed = head::parse(&self.input[..length], self.peer);
        self.input.drain(..length);
        let head = match parsed {
            Ok(head) => head,
            Err(reject) => return self.refuse(reject),
        };
        match head.body {
            Body::None => self.make_ready(head, 0, &[]),
            Body::Chunked => self.refuse(Reject {
                status: 411,
                why: "chunked request bodies are not accepted: send a Content-Length",
            }),
            Body::Length(n) if n > body_limit(&head.target) => self.refuse(Reject {
                status: 413,
                why: "request body too large for this route",
            }),
            Body::Length(n) => {
                if head.expects_continue && !head.http10 {
                    self.queue(b"HTTP/1.1 100 Continue\r\n\r\n");
                }
                self.body_wait = Some((head, n));
                self.advance(body_limit, now, read_timeout)
            }
        }
    }

    fn make_ready(&mut self, head: head::Head, length: u64, body: &[u8]) -> Advance {
        let (keep_alive, http10, head_method) = (head.keep_alive, head.http10, head.head_method);
        let target = head.target.clone();
        let mut request = head.forward(length, head::monotonic_micros());
        request.extend_from_slice(body);
        self.ready = Some(Ready {
            request,
            keep_alive,
            http10,
            head_method,
            target,
            not_before: None,
        });
        Advance::Ready
    }
}
