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

/// Where a connection is in its exchange, in the shape of hyper's connection state:
/// the phase says what the connection waits for, and its deadline and whether it may
/// be evicted follow from it ([`Conn::deadline`], [`Conn::evictable`]). Alongside it:
/// the output still to write (which puts a write deadline over any phase), whether the
/// connection is kept after the current exchange, and whether the client has
/// half-closed.
pub enum Phase {
    /// Between requests, nothing of the next one read: the idle deadline; evictable.
    Idle,
    /// Part of a head has arrived: the head deadline; evictable (slowloris goes first).
    Head,
    /// A vetted head waits for its body (the head, its route, the body's length): the
    /// head deadline.
    Body(head::Head, usize, u64),
    /// A vetted request waits in the gate, held or queued for a lane: no deadline.
    Waiting(Ready),
    /// The request is inside tiny_http, on the lane in this slot: no deadline (the
    /// worker bounds it).
    InFlight(usize, Ready),
    /// The last answer is queued; the writing side shuts once it is written.
    Closing,
    /// Shut for writing, draining what the client still sends ([`LINGER`]); evictable.
    Lingering,
}

/// What [`Conn::advance`] needs from the gate.
pub struct Context<'a> {
    /// The routes (body limits, and the route of a refused request).
    pub router: &'a Router,
    /// The `Date` text of the gate's own answers.
    pub date: &'a [u8],
    /// The time of this pass.
    pub now: Instant,
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
    /// A request is ready for a lane ([`Phase::Waiting`]).
    Ready,
    /// The gate refused a request (its answer is queued; the connection closes).
    Refused,
}

/// A client connection.
pub struct Conn {
    stream: TcpStream,
    /// The client's address.
    pub peer: SocketAddr,
    /// See [`Phase`].
    pub phase: Phase,
    /// When the phase began (the eviction order, and the base of its deadline).
    pub since: Instant,
    /// Whether the connection stays open after the current exchange (cleared by a
    /// `Connection: close`, a refusal or shutdown).
    pub keep: bool,
    /// The client has half-closed: nothing more is read, what was read is answered.
    pub eof: bool,
    input: Vec<u8>,
    scanner: Scanner,
    out: Vec<u8>,
    out_pos: usize,
    /// Since when queued output has made no progress.
    stalled_since: Option<Instant>,
    /// The rewritten head and body of the request in [`Phase::Waiting`], for
    /// tiny_http; kept from request to request, so a request allocates nothing.
    pub request: Vec<u8>,
    /// The gate's own answer queued, observed once it is written.
    pub refusal: Option<Refusal>,
    /// The interest registered with the poller.
    pub interest: u32,
}

impl Conn {
    /// A new connection, with the head deadline running.
    pub fn new(stream: TcpStream, peer: SocketAddr, now: Instant) -> Conn {
        Conn {
            stream,
            peer,
            phase: Phase::Head,
            since: now,
            keep: true,
            eof: false,
            input: Vec::new(),
            scanner: Scanner::default(),
            out: Vec::new(),
            out_pos: 0,
            stalled_since: None,
            request: Vec::new(),
            refusal: None,
            interest: poll::READ,
        }
    }

    /// The socket's descriptor.
    pub fn fd(&self) -> i32 {
        self.stream.as_raw_fd()
    }

    fn enter(&mut self, phase: Phase, now: Instant) {
        self.phase = phase;
        self.since = now;
    }

    /// Whether nothing is in progress: between requests or in an incomplete head (or
    /// lingering), nothing to write. Such a connection may be evicted.
    pub fn evictable(&self) -> bool {
        matches!(self.phase, Phase::Idle | Phase::Head | Phase::Lingering)
            && self.pending_out() == 0
    }

    /// When the connection is closed if nothing happens, and the reason recorded then:
    /// output that makes no progress has the write deadline, whatever the phase;
    /// otherwise the phase's own.
    pub fn deadline(
        &self,
        read_timeout: Duration,
        write_timeout: Duration,
    ) -> Option<(Instant, Closed)> {
        if let Some(stalled) = self.stalled_since
            && !matches!(self.phase, Phase::Lingering)
        {
            return Some((stalled + write_timeout, Closed::WriteTimeout));
        }
        match self.phase {
            Phase::Idle => Some((self.since + read_timeout, Closed::Idle)),
            Phase::Head | Phase::Body(..) => Some((self.since + read_timeout, Closed::ReadTimeout)),
            Phase::Lingering => Some((self.since + LINGER, Closed::Done)),
            Phase::Waiting(_) | Phase::InFlight(..) | Phase::Closing => None,
        }
    }

    /// The request waiting in the gate, if any.
    pub fn waiting(&mut self) -> Option<&mut Ready> {
        match &mut self.phase {
            Phase::Waiting(ready) => Some(ready),
            _ => None,
        }
    }

    /// The slot of the lane carrying this connection's request, if any.
    pub fn lane(&self) -> Option<usize> {
        match self.phase {
            Phase::InFlight(slot, _) => Some(slot),
            _ => None,
        }
    }

    fn pending_out(&self) -> usize {
        self.out.len() - self.out_pos
    }

    fn input_cap(&self) -> usize {
        match &self.phase {
            Phase::Body(_, _, n) => (*n as usize).max(IN_CAP),
            _ => IN_CAP,
        }
    }

    /// The interest it needs now.
    pub fn wants(&self) -> u32 {
        let lingering = matches!(self.phase, Phase::Lingering);
        let read = lingering
            || (self.keep
                && !self.eof
                && !matches!(self.phase, Phase::Closing)
                && self.input.len() < self.input_cap()
                && self.pending_out() <= OUT_HIGH);
        let write = self.pending_out() > 0;
        (if read { poll::READ } else { 0 }) | (if write { poll::WRITE } else { 0 })
    }

    /// Reads what the socket has, up to the input bound (all of it while lingering,
    /// discarded).
    pub fn read(&mut self, scratch: &mut [u8]) -> Input {
        let lingering = matches!(self.phase, Phase::Lingering);
        loop {
            let room = if lingering {
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
                Ok(_) if lingering => {}
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
    pub fn forward(&mut self, bytes: &[u8], framed: &Framed, open: bool, now: Instant) {
        let Phase::InFlight(_, ready) = &self.phase else {
            return;
        };
        let keep_alive = ready.keep_alive && open && self.keep;
        let connection = connection_line(keep_alive, ready.http10);
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
        self.keep = keep_alive;
        self.after_answer(now);
    }

    /// The exchange is over: the next request may be read, or the connection closes.
    fn after_answer(&mut self, now: Instant) {
        if self.keep {
            self.enter(Phase::Idle, now);
            if self.input.is_empty() && self.input.capacity() > 4096 {
                self.input = Vec::new();
            }
        } else {
            self.enter(Phase::Closing, now);
        }
    }

    /// Writes what the socket takes. `Ok(true)` when the output is empty; output left
    /// over starts (or, after progress, restarts) the write deadline.
    pub fn flush(&mut self, now: Instant) -> io::Result<bool> {
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
            self.stalled_since = None;
            return Ok(true);
        }
        if self.out_pos > before || self.stalled_since.is_none() {
            self.stalled_since = Some(now);
        }
        Ok(false)
    }

    /// Whether nothing queued remains to be written.
    pub fn written(&self) -> bool {
        self.pending_out() == 0
    }

    /// Whether everything owed is written and no request is in the gate or in
    /// tiny_http: between requests, reading one, or closing.
    pub fn settled(&self) -> bool {
        self.pending_out() == 0
            && matches!(
                self.phase,
                Phase::Idle | Phase::Head | Phase::Body(..) | Phase::Closing
            )
    }

    /// Starts the linger (see the module documentation).
    pub fn start_linger(&mut self, now: Instant) {
        let _ = self.stream.shutdown(std::net::Shutdown::Write);
        self.input = Vec::new();
        self.enter(Phase::Lingering, now);
    }

    /// The waiting request goes down the lane in `slot`: [`Conn::request`] is free for
    /// the next one (its allocation kept unless a body made it large). Returns whether
    /// it is a HEAD request.
    pub fn send_down(&mut self, slot: usize, now: Instant) -> Option<bool> {
        let Phase::Waiting(_) = self.phase else {
            return None;
        };
        let Phase::Waiting(ready) = std::mem::replace(&mut self.phase, Phase::Closing) else {
            return None;
        };
        let head_method = ready.head_method;
        self.enter(Phase::InFlight(slot, ready), now);
        Some(head_method)
    }

    /// The request has gone down its lane: its bytes are no longer needed.
    pub fn sent(&mut self) {
        self.request.clear();
        if self.request.capacity() > 4096 {
            self.request = Vec::new();
        }
    }

    /// The request in progress (waiting or inside tiny_http) as a refusal with
    /// `status`, if there is one.
    pub fn refusal_of_current(&self, status: u16) -> Option<Refusal> {
        match &self.phase {
            Phase::Waiting(ready) | Phase::InFlight(_, ready) => Some(ready.refusal(status)),
            _ => None,
        }
    }

    /// Queues the gate's own answer to a request (see [`refusal`]) and closes after it.
    pub fn answer(&mut self, refusal: Refusal, why: &str, date: &[u8], now: Instant) {
        refusal::write(
            &mut self.out,
            refusal.status,
            why,
            refusal.head_method(),
            date,
        );
        self.refusal = Some(refusal);
        self.keep = false;
        self.enter(Phase::Closing, now);
    }

    /// Refuses the request whose bytes start `request` (see [`Conn::answer`]).
    fn refuse(&mut self, reject: Reject, request: &[u8], cx: &Context) -> Advance {
        let refusal = Refusal::of(request, reject.status, cx.router, cx.now);
        self.refuse_as(refusal, reject.why, cx)
    }

    fn refuse_as(&mut self, refusal: Refusal, why: &str, cx: &Context) -> Advance {
        self.input = Vec::new();
        self.request = Vec::new();
        self.answer(refusal, why, cx.date, cx.now);
        Advance::Refused
    }

    /// Reads the next request from the input if the connection is free for one (see
    /// the module documentation).
    pub fn advance(&mut self, cx: &Context) -> Advance {
        let now = cx.now;
        let reading = matches!(self.phase, Phase::Idle | Phase::Head | Phase::Body(..));
        if !reading || !self.keep || self.pending_out() > OUT_HIGH {
            return Advance::Idle;
        }
        if let Phase::Body(_, _, length) = self.phase {
            if (self.input.len() as u64) < length {
                return Advance::Idle;
            }
            let Phase::Body(head, route, length) = std::mem::replace(&mut self.phase, Phase::Head)
            else {
                return Advance::Idle;
            };
            return self.make_ready(head, route, length as usize, cx);
        }
        while self.input.starts_with(b"\r\n") {
            // RFC 9112 section 2.2: empty lines before a request line are ignored.
            self.input.drain(..2);
        }
        if self.input.is_empty() {
            return Advance::Idle;
        }
        if matches!(self.phase, Phase::Idle) {
            self.enter(Phase::Head, now);
        }
        let length = match self.scanner.advance(&self.input) {
            Scan::Partial => return Advance::Idle,
            Scan::Refused(reject) => {
                let input = std::mem::take(&mut self.input);
                return self.refuse(reject, &input, cx);
            }
            Scan::Complete(length) => length,
        };
        let parsed = head::parse(&self.input[..length], cx.router, &mut self.request);
        let head = match parsed {
            Ok(head) => head,
            Err(reject) => {
                let input = std::mem::take(&mut self.input);
                return self.refuse(reject, &input[..length], cx);
            }
        };
        self.input.drain(..length);
        let route = head.route;
        let refusal = |status| Refusal {
            method: head.method,
            route,
            status,
            received: now,
        };
        match head.body {
            Body::None => self.make_ready(head, route, 0, cx),
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
                // The head deadline still runs from the head's first byte.
                self.phase = Phase::Body(head, route, n);
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
        cx: &Context,
    ) -> Advance {
        let received = cx.now;
        let (keep_alive, http10, head_method) = (head.keep_alive, head.http10, head.head_method);
        let method = head.method;
        let peer = cx.router.is_embedders(route).then_some(self.peer);
        head::finish(&mut self.request, peer, length as u64, monotonic_micros());
        self.request.extend_from_slice(&self.input[..length]);
        self.input.drain(..length);
        self.phase = Phase::Waiting(Ready {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::gate::response::frame;
    use std::io::Write;
    use std::net::TcpListener;

    fn pair(now: Instant) -> (Conn, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (stream, peer) = listener.accept().unwrap();
        stream.set_nonblocking(true).unwrap();
        (Conn::new(stream, peer, now), client)
    }

    #[test]
    fn deadline_and_evictability_follow_the_phase() {
        let (r, w) = (Duration::from_secs(1), Duration::from_secs(2));
        let now = Instant::now();
        let (mut conn, mut client) = pair(now);
        assert!(conn.evictable());
        assert_eq!(conn.deadline(r, w), Some((now + r, Closed::ReadTimeout)));

        client
            .write_all(b"GET /up HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let mut scratch = vec![0; 1024];
        let start = Instant::now();
        while conn.input.is_empty() && start.elapsed() < Duration::from_secs(5) {
            conn.read(&mut scratch);
        }
        let router = Router::new("/metrics");
        let cx = Context {
            router: &router,
            date: b"Sun, 06 Nov 1994 08:49:37 GMT",
            now,
        };
        assert!(matches!(conn.advance(&cx), Advance::Ready));
        assert!(matches!(conn.phase, Phase::Waiting(_)));
        assert!(!conn.evictable() && conn.deadline(r, w).is_none());

        assert_eq!(conn.send_down(3, now), Some(false));
        assert_eq!(conn.lane(), Some(3));
        assert!(!conn.evictable() && conn.deadline(r, w).is_none());

        let response = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok";
        let framed = frame(response, false).unwrap().unwrap();
        let later = now + Duration::from_millis(10);
        conn.forward(response, &framed, true, later);
        assert!(matches!(conn.phase, Phase::Idle) && conn.keep);
        assert!(conn.evictable() && conn.settled());
        assert_eq!(conn.deadline(r, w), Some((later + r, Closed::Idle)));

        let refusal = Refusal {
            method: 0,
            route: 0,
            status: 400,
            received: later,
        };
        conn.answer(refusal, "no", cx.date, later);
        assert!(matches!(conn.phase, Phase::Closing) && !conn.keep);
        // The answer waits in the output until written; then the linger.
        assert!(!conn.evictable());
        assert!(conn.flush(later).unwrap());
        assert!(conn.settled());
        conn.start_linger(later);
        assert!(conn.evictable());
        assert_eq!(conn.deadline(r, w), Some((later + LINGER, Closed::Done)));
    }
}
