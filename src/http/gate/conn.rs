//! One client connection as the gate sees it: bytes in, at most one request at a time
//! on its way through tiny_http, responses out in order, and one deadline.
//!
//! Requests of a pipelining client are taken one after the other: the next head is
//! read only once the previous response is queued, so responses leave in request
//! order without any reordering. Reading stops while the input holds a full head (or
//! the body being collected) or while more than [`OUT_HIGH`] bytes wait to be written,
//! so a client that sends without reading costs bounded memory.
//!
//! A client's half-close (its FIN) ends reading, not answering: every complete request
//! read before it is answered in order, then the connection closes; a client that
//! half-closes and never reads its answers is closed by the write deadline.
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
use super::refusal::{self, Refusal};
use super::response::{Framed, MAX_PIECES, connection_line};
use crate::http::protocol::monotonic_micros;
use crate::http::routes::Router;

/// Queued response bytes above which no further request is read.
pub const OUT_HIGH: usize = 256 * 1024;
/// How long a closing connection is drained before it is closed anyway.
pub const LINGER: Duration = Duration::from_secs(2);
/// The input kept while waiting for a head (a little more than the head limit, so
/// the scanner sees the overflow and answers 431).
const IN_CAP: usize = MAX_HEAD + 1024;
/// "No deadline": while tiny_http works on a request, the worker bounds it.
const FAR: Duration = Duration::from_secs(86_400);

/// A vetted request waiting for a lane; its bytes for tiny_http are the connection's
/// [`Conn::request`].
pub struct Ready {
    /// Whether the client connection stays open after the response.
    pub keep_alive: bool,
    /// Whether the client spoke HTTP/1.0.
    pub http10: bool,
    /// Whether the method is HEAD.
    pub head_method: bool,
    /// The method's index (see [`Refusal::method`]).
    pub method: usize,
    /// The route's index in the router, resolved once.
    pub route: usize,
    /// When the gate had its head.
    pub received: Instant,
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
    /// See [`Ready`].
    pub method: usize,
    /// See [`Ready`].
    pub route: usize,
    /// See [`Ready`].
    pub received: Instant,
}

impl Ready {
    /// The gate's own answer with `status` to this request (see [`Refusal`]).
    pub fn refusal(&self, status: u16) -> Refusal {
        Refusal {
            method: self.method,
            route: self.route,
            status,
            received: self.received,
        }
    }
}

/// What [`Conn::advance`] needs from the gate.
pub struct Context<'a> {
    /// The routes (body limits, and the route of a refused request).
    pub router: &'a Router,
    /// The `Date` text of the gate's own answers.
    pub date: &'a [u8],
    /// The time of this pass.
    pub now: Instant,
    /// The head and idle deadline.
    pub read_timeout: Duration,
}

/// What reading from the client gave.
pub enum Input {
    /// Bytes (or nothing yet).
    Open,
    /// The client closed its sending side.
    Ended,
    /// The connection failed (a reset): nothing more can be written either.
    Failed,
}

/// What [`Conn::advance`] produced.
pub enum Advance {
    /// Nothing new.
    Idle,
    /// A request is ready for a lane ([`Conn::ready`]).
    Ready,
    /// The gate refused a request (its answer is queued; the connection closes).
    Refused,
}

/// A client connection.
pub struct Conn {
    stream: TcpStream,
    /// The client's address.
    pub peer: SocketAddr,
    input: Vec<u8>,
    scanner: Scanner,
    /// A head whose body is still arriving, its route and the body's length.
    body_wait: Option<(head::Head, usize, u64)>,
    out: Vec<u8>,
    out_pos: usize,
    /// The rewritten head and body of the request in [`Conn::ready`], for tiny_http;
    /// kept from request to request, so a request allocates nothing.
    pub request: Vec<u8>,
    /// A request waiting for a lane.
    pub ready: Option<Ready>,
    /// The request in tiny_http.
    pub in_flight: Option<InFlight>,
    /// Close once the queued output is written.
    pub close_after: bool,
    /// Shut for writing; draining until the client closes.
    pub lingering: bool,
    /// The client has half-closed: nothing more is read, what was read is answered.
    pub eof: bool,
    /// The gate's own answer queued, observed once it is written.
    pub refusal: Option<Refusal>,
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
            request: Vec::new(),
            ready: None,
            in_flight: None,
            close_after: false,
            lingering: false,
            eof: false,
            refusal: None,
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
            Some((_, _, n)) => (*n as usize).max(IN_CAP),
            None => IN_CAP,
        }
    }

    /// The interest it needs now.
    pub fn wants(&self) -> u32 {
        let read = self.lingering
            || (!self.close_after
                && !self.eof
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
                Err(_) => return Input::Failed,
            }
        }
    }

    /// Queues bytes for the client.
    pub fn queue(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if self.out.is_empty() {
            self.out.reserve_exact(bytes.len());
        }
        self.out.extend_from_slice(bytes);
    }

    /// Hands the response to its request to this client: `bytes` as `framed` reads
    /// them, with the `Connection` line the connection now calls for. When nothing is
    /// queued before it (the common case) the pieces go to the socket in one system
    /// call, and only what it does not take is copied into the output.
    pub fn forward(&mut self, bytes: &[u8], framed: &Framed, open: bool) {
        let Some(flight) = self.in_flight.take() else {
            return;
        };
        let keep_alive = flight.keep_alive && open && !self.close_after;
        self.close_after |= !keep_alive;
        let connection = connection_line(keep_alive, flight.http10);
        let mut pieces = [&b""[..]; MAX_PIECES];
        let count = framed.pieces(bytes, connection, &mut pieces);
        let mut sent = 0;
        if self.pending_out() == 0 {
            sent = poll::send_pieces(self.fd(), &pieces[..count]).unwrap_or(0);
        }
        for piece in &pieces[..count] {
            let skip = sent.min(piece.len());
            sent -= skip;
            self.queue(&piece[skip..]);
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

    /// Whether nothing queued remains to be written.
    pub fn written(&self) -> bool {
        self.pending_out() == 0
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

    /// The request went down a lane: [`Conn::request`] is free for the next one
    /// (its allocation kept unless a body made it large), and no client deadline
    /// runs while tiny_http has it.
    pub fn sent(&mut self, now: Instant) {
        self.request.clear();
        if self.request.capacity() > 4096 {
            self.request = Vec::new();
        }
        self.deadline = now + FAR;
        self.deadline_kind = Closed::Done;
    }

    /// Queues the gate's own answer to a request (see [`refusal`]) and closes after it.
    pub fn answer(&mut self, refusal: Refusal, why: &str, date: &[u8]) {
        refusal::write(
            &mut self.out,
            refusal.status,
            why,
            refusal.head_method(),
            date,
        );
        self.refusal = Some(refusal);
        self.close_after = true;
    }

    /// Refuses the request whose bytes start `request` (see [`Conn::answer`]).
    fn refuse(&mut self, reject: Reject, request: &[u8], cx: &Context) -> Advance {
        let refusal = Refusal::of(request, reject.status, cx.router, cx.now);
        self.refuse_as(refusal, reject.why, cx)
    }

    fn refuse_as(&mut self, refusal: Refusal, why: &str, cx: &Context) -> Advance {
        self.input = Vec::new();
        self.request = Vec::new();
        self.body_wait = None;
        self.answer(refusal, why, cx.date);
        Advance::Refused
    }

    /// Reads the next request from the input if the connection is free for one (see
    /// the module documentation).
    pub fn advance(&mut self, cx: &Context) -> Advance {
        let (now, read_timeout) = (cx.now, cx.read_timeout);
        if self.ready.is_some()
            || self.in_flight.is_some()
            || self.close_after
            || self.lingering
            || self.pending_out() > OUT_HIGH
        {
            return Advance::Idle;
        }
        if let Some((head, route, length)) = self.body_wait.take() {
            if (self.input.len() as u64) < length {
                self.body_wait = Some((head, route, length));
                return Advance::Idle;
            }
            return self.make_ready(head, route, length as usize, now);
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
            Scan::Refused(reject) => {
                let input = std::mem::take(&mut self.input);
                return self.refuse(reject, &input, cx);
            }
            Scan::Complete(length) => length,
        };
        let parsed = head::parse(&self.input[..length], self.peer, &mut self.request);
        let head = match parsed {
            Ok(head) => head,
            Err(reject) => {
                let input = std::mem::take(&mut self.input);
                return self.refuse(reject, &input[..length], cx);
            }
        };
        self.input.drain(..length);
        let target = std::str::from_utf8(&self.request[head.target.clone()]).unwrap_or("");
        let route = cx.router.find(target);
        let refusal = |status| Refusal {
            method: head.method,
            route,
            status,
            received: now,
        };
        match head.body {
            Body::None => self.make_ready(head, route, 0, now),
            Body::Chunked => self.refuse_as(
                refusal(411),
                "chunked request bodies are not accepted: send a Content-Length",
                cx,
            ),
            Body::Length(n) if n > cx.router.body_limit(route) => {
                self.refuse_as(refusal(413), "request body too large for this route", cx)
            }
            Body::Length(n) => {
                if head.expects_continue && !head.http10 {
                    self.queue(b"HTTP/1.1 100 Continue\r\n\r\n");
                }
                self.body_wait = Some((head, route, n));
                self.advance(cx)
            }
        }
    }

    /// Completes [`Conn::request`] with the receipt time and the body, the first
    /// `length` bytes of the input.
    fn make_ready(
        &mut self,
        head: head::Head,
        route: usize,
        length: usize,
        received: Instant,
    ) -> Advance {
        let (keep_alive, http10, head_method) = (head.keep_alive, head.http10, head.head_method);
        let method = head.method;
        head::finish(&mut self.request, length as u64, monotonic_micros());
        self.request.extend_from_slice(&self.input[..length]);
        self.input.drain(..length);
        self.ready = Some(Ready {
            keep_alive,
            http10,
            head_method,
            method,
            route,
            received,
            not_before: None,
        });
        Advance::Ready
    }
}
