//! The gate: tinyprom's own front end, which owns the public socket so that tiny_http
//! only ever sees vetted, well-framed HTTP/1.x requests.
//!
//! One thread (the one that calls [`crate::http::Server::run`]) runs an `epoll` loop
//! over non-blocking sockets: the listener, every client connection ([`conn`]) and
//! every lane to tiny_http ([`lane`]), with the responses on their way back
//! ([`response`]). An idle keep-alive client
//! costs one descriptor and a few hundred bytes, never a thread. The gate owns, on
//! sockets it owns:
//!
//! * **Framing**: heads are read strictly ([`head`]); what is refused gets its status
//!   (400, 411, 413, 414, 417, 431, 505) and the connection closes. Nothing refused
//!   reaches tiny_http.
//! * **Deadlines**: a head must arrive within the read timeout of its first byte; an
//!   idle keep-alive connection is closed after the read timeout; a client that stops
//!   reading its response is closed after the write timeout without progress.
//! * **Bounds**: at most `max_connections` clients. At the bound a new connection
//!   first displaces the connection that has had nothing in progress for longest (idle
//!   between requests, or still sending an incomplete head: slowloris goes first);
//!   when every connection has a request in progress the newcomer gets a 503 and is
//!   closed. Requests go to tiny_http down at most `max_busy_lanes` busy lanes ([`lane`]:
//!   a private connection, one tiny_http thread), the rest wait in the gate.
//!   Requests of the built-in routes share lanes, up to [`lane::DEPTH`] on one, a
//!   lane filled before another is woken, so the requests of one pass of the loop
//!   reach tiny_http in one write per lane and on as few lanes as fit them; an
//!   embedder's route and the scrape travel alone. Idle lanes are kept (at most
//!   [`POOL_IDLE`]), so the common request costs no connect and no new thread.
//! * **Shutdown**: when stop is asked, the listener is shut (new connections are
//!   refused by the kernel), what clients have already sent is read once more, idle
//!   connections and incomplete heads are closed, requests in progress are finished
//!   with `Connection: close`, and whatever remains when the shutdown timeout ends is
//!   closed.
//!
//! Routes may ask the gate to hold a request before it goes on (`/synthetic`'s random
//! delay): held requests wait in a timer heap of the loop, so the delay never occupies
//! a thread, a tiny_http connection, or a lane.
//!
//! Deadlines are checked by a sweep every [`TICK`], so they fall up to a tick late.

mod conn;
mod date;
pub(crate) mod head;
mod lane;
mod metrics;
mod poll;
mod refusal;
mod response;
mod upstream;

pub(crate) use metrics::GateMetrics;
pub(crate) use upstream::Upstream;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io::{self, Read};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use conn::{Advance, Conn, Context, Input, Phase};
use date::HttpDate;
use lane::Lane;
use metrics::Closed;
use refusal::Refusal;

use super::red::RedMetrics;
use super::routes::Router;

/// How often deadlines are swept (and a waiting request retried).
pub const TICK: Duration = Duration::from_millis(100);
/// The poll timeout while shutting down: the loop watches its deadline closely.
const SHUTDOWN_TICK: Duration = Duration::from_millis(5);
const LISTENER: u64 = u64::MAX;
/// The most idle private connections kept (each holds a tiny_http thread).
pub const POOL_IDLE: usize = 32;

/// The gate's limits and deadlines.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The head deadline and the idle keep-alive deadline.
    pub read_timeout: Duration,
    /// How long a client may take to accept more of its response.
    pub write_timeout: Duration,
    /// The most client connections open at once.
    pub max_connections: usize,
    /// The most requests inside tiny_http at once.
    pub max_busy_lanes: usize,
    /// How long requests in progress may take to finish once stop is asked.
    pub shutdown_timeout: Duration,
}

/// The most requests held for a delay at once; more are answered 503.
pub const MAX_HELD: usize = 16_384;

/// The gate's state; [`Gate::run`] drives it.
pub struct Gate {
    listener: TcpListener,
    upstream: Arc<Upstream>,
    router: Arc<Router>,
    metrics: GateMetrics,
    red: Arc<RedMetrics>,
    /// The `Date` of the gate's own answers, renewed once per pass.
    date: HttpDate,
    settings: Settings,
    poller: poll::Poller,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    open: usize,
    waiting: VecDeque<usize>,
    held: BinaryHeap<Reverse<(Instant, usize)>>,
    /// The lanes to tiny_http, by slot (their poll token).
    lanes: Vec<Option<Lane>>,
    free_slots: Vec<usize>,
    /// The slots of idle lanes.
    pool: Vec<usize>,
    stopping: Option<Instant>,
    accept_paused: Option<Instant>,
    scratch: Vec<u8>,
    /// The lanes written to in this pass's dispatch (kept to reuse its allocation).
    written: Vec<usize>,
    /// The clients a lane delivered responses to, to move on after it (likewise).
    delivered: Vec<usize>,
}

fn client_token(i: usize) -> u64 {
    (i as u64) << 1
}

fn lane_token(slot: usize) -> u64 {
    ((slot as u64) << 1) | 1
}

impl Gate {
    /// A gate over `listener` that passes requests to tiny_http at `upstream`.
    pub fn new(
        listener: TcpListener,
        upstream: Arc<Upstream>,
        router: Arc<Router>,
        metrics: GateMetrics,
        red: Arc<RedMetrics>,
        settings: Settings,
    ) -> io::Result<Gate> {
        listener.set_nonblocking(true)?;
        let poller = poll::Poller::new(256)?;
        poller.add(listener.as_raw_fd(), LISTENER, poll::READ)?;
        Ok(Gate {
            listener,
            upstream,
            router,
            metrics,
            red,
            date: HttpDate::new(),
            settings,
            poller,
            conns: Vec::new(),
            free: Vec::new(),
            open: 0,
            waiting: VecDeque::new(),
            held: BinaryHeap::new(),
            lanes: Vec::new(),
            free_slots: Vec::new(),
            pool: Vec::new(),
            stopping: None,
            accept_paused: None,
            scratch: vec![0; 64 * 1024],
            written: Vec::new(),
            delivered: Vec::new(),
        })
    }

    /// Serves until `stop()` is true, then shuts down (see the module documentation).
    pub fn run(mut self, stop: &dyn Fn() -> bool) -> io::Result<()> {
        let mut events = Vec::with_capacity(256);
        let mut last_sweep = Instant::now();
        loop {
            let mut timeout = if self.stopping.is_some() {
                SHUTDOWN_TICK
            } else {
                TICK
            };
            if let Some(Reverse((due, _))) = self.held.peek() {
                timeout = timeout.min(due.saturating_duration_since(Instant::now()));
            }
            self.poller.wait(timeout, &mut events)?;
            self.date.refresh();
            for event in &events {
                if event.token == LISTENER {
                    self.accept();
                } else if event.token & 1 == 1 {
                    self.on_upstream((event.token >> 1) as usize);
                } else {
                    self.on_client((event.token >> 1) as usize, event.ready);
                }
            }
            let now = Instant::now();
            self.release_held(now);
            if now.duration_since(last_sweep) >= TICK {
                last_sweep = now;
                self.sweep(now);
            }
            // Once per pass: the requests that became ready in it go down lanes
            // together (see `dispatch`), and those still waiting are retried.
            self.dispatch();
            if self.stopping.is_none() && stop() {
                self.begin_shutdown(now);
            }
            if self
                .stopping
                .is_some_and(|deadline| self.open == 0 || now >= deadline)
            {
                self.close_all();
                return Ok(());
            }
        }
    }

    fn conn(&mut self, i: usize) -> Option<&mut Conn> {
        self.conns.get_mut(i).and_then(Option::as_mut)
    }

    fn accept(&mut self) {
        loop {
            let (stream, peer) = match self.listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.raw_os_error() == Some(libc::ECONNABORTED) => continue,
                Err(_) => {
                    // Out of descriptors (or memory): stop accepting for a tick rather
                    // than spin on a listener that stays readable.
                    let _ = self.poller.modify(self.listener.as_raw_fd(), LISTENER, 0);
                    self.accept_paused = Some(Instant::now());
                    return;
                }
            };
            let now = Instant::now();
            if self.open >= self.settings.max_connections && !self.evict_one() {
                self.turn_away(stream);
                continue;
            }
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            let conn = Conn::new(stream, peer, now);
            let i = match self.free.pop() {
                Some(i) => i,
                None => {
                    self.conns.push(None);
                    self.conns.len() - 1
                }
            };
            if self
                .poller
                .add(conn.fd(), client_token(i), poll::READ)
                .is_err()
            {
                self.free.push(i);
                continue;
            }
            self.conns[i] = Some(conn);
            self.open += 1;
            self.metrics.accepted();
        }
    }

    /// Answers a newcomer at the bound with a 503 and closes it. What it has sent is
    /// read and discarded first (`TCP_DEFER_ACCEPT` hands over only connections that
    /// sent something, usually their whole head): closing a socket with unread input
    /// sends a reset instead of a FIN, and a reset may destroy the 503 before the
    /// client reads it. One read, so a newcomer costs the loop a bounded moment.
    fn turn_away(&mut self, stream: TcpStream) {
        let received = Instant::now();
        if stream.set_nonblocking(true).is_ok() {
            let n = (&stream).read(&mut self.scratch).unwrap_or(0);
            let refusal = Refusal::of(&self.scratch[..n], 503, &self.router, received);
            let mut busy = Vec::with_capacity(256);
            refusal::write(
                &mut busy,
                503,
                "too many connections with requests in progress",
                refusal.head_method(),
                self.date.text(),
            );
            let _ = poll::send(stream.as_raw_fd(), &busy);
            let _ = stream.shutdown(Shutdown::Write);
            self.observe(refusal);
        }
        self.metrics.rejected();
    }

    /// Records a request the gate answered itself, as tiny_http's workers record
    /// theirs: in `http_request_duration_seconds` (so the availability SLI sees it) and
    /// by status in `tinyprom_requests_refused_total`.
    fn observe(&self, refusal: Refusal) {
        self.red.start();
        self.red.finish(
            refusal.method,
            refusal.route,
            refusal.status,
            refusal.received.elapsed(),
            // No exemplar: a refused request never reached the code that reads its trace.
            None,
        );
        self.metrics.refused(refusal.status);
    }

    /// Closes the connection that has had nothing in progress for longest.
    fn evict_one(&mut self) -> bool {
        let oldest = self
            .conns
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.as_ref().map(|c| (i, c)))
            .filter(|(_, c)| c.evictable())
            .min_by_key(|(_, c)| c.since)
            .map(|(i, _)| i);
        match oldest {
            Some(i) => {
                self.close(i, Closed::Evicted);
                true
            }
            None => false,
        }
    }

    fn close(&mut self, i: usize, why: Closed) {
        let Some(mut conn) = self.conns.get_mut(i).and_then(Option::take) else {
            return;
        };
        if let Some(refusal) = conn.refusal.take() {
            // Answered, though the client did not take the whole answer.
            self.observe(refusal);
        }
        if let Some(slot) = conn.lane() {
            // The lane still reads the response (tiny_http is working on it), and
            // drops it.
            if let Some(lane) = self.lanes.get_mut(slot).and_then(Option::as_mut) {
                lane.forget(i);
            }
        }
        // Dropping the socket closes it, which also removes them from the poller.
        drop(conn);
        self.free.push(i);
        self.open -= 1;
        self.metrics.closed(why);
    }

    fn on_client(&mut self, i: usize, ready: u32) {
        let now = Instant::now();
        let mut scratch = std::mem::take(&mut self.scratch);
        let Some(conn) = self.conn(i) else {
            self.scratch = scratch;
            return;
        };
        let (mut ended, mut failed) = (false, false);
        if ready & poll::READ != 0 {
            match conn.read(&mut scratch) {
                Input::Open => {}
                Input::Ended => ended = true,
                Input::Failed => failed = true,
            }
        }
        if !failed && ready & poll::WRITE != 0 {
            failed = conn.flush(now).is_err();
        }
        self.scratch = scratch;
        if failed {
            return self.close(i, Closed::Client);
        }
        if ended {
            let Some(conn) = self.conn(i) else { return };
            if matches!(conn.phase, Phase::Lingering) {
                return self.close(i, Closed::Done);
            }
            // A half-closed client still gets the answers to every request it sent
            // before the FIN (`drive` closes once none is left).
            conn.eof = true;
        }
        self.drive(i);
    }

    /// Moves a connection on: the next request, writes, the close, the interest.
    fn drive(&mut self, i: usize) {
        let now = Instant::now();
        let Some(conn) = self.conns.get_mut(i).and_then(Option::as_mut) else {
            return;
        };
        let cx = Context {
            router: &self.router,
            date: self.date.text(),
            now,
        };
        let advanced = conn.advance(&cx);
        if conn.flush(now).is_err() {
            return self.close(i, Closed::Client);
        }
        if conn.written()
            && let Some(refusal) = conn.refusal.take()
        {
            self.observe(refusal);
        }
        let Some(conn) = self.conns.get_mut(i).and_then(Option::as_mut) else {
            return;
        };
        if conn.settled() {
            if matches!(conn.phase, Phase::Closing) || !conn.keep {
                conn.start_linger(now);
            } else if conn.eof && matches!(advanced, Advance::Idle) {
                // Half-closed, and no complete request is left in what it sent: done.
                return self.close(i, Closed::Client);
            }
        }
        let (fd, wants, interest) = (conn.fd(), conn.wants(), conn.interest);
        if wants != interest {
            conn.interest = wants;
            if self.poller.modify(fd, client_token(i), wants).is_err() {
                return self.close(i, Closed::Client);
            }
        }
        if let Advance::Ready = advanced {
            self.schedule(i, now);
        }
    }

    /// Queues a ready request for a lane, after its route's hold (the `/synthetic`
    /// delay) if it has one. Held requests wait here, in a timer heap of the loop,
    /// so nothing ever sleeps or blocks for them.
    fn schedule(&mut self, i: usize, now: Instant) {
        let router = Arc::clone(&self.router);
        let held = self.held.len();
        let Some(conn) = self.conns.get_mut(i).and_then(Option::as_mut) else {
            return;
        };
        let Some(ready) = conn.waiting() else {
            return;
        };
        match router.hold(ready.route) {
            None => self.waiting.push_back(i),
            Some(_) if held >= MAX_HELD => {
                let refusal = ready.refusal(503);
                let why = "too many requests waiting";
                conn.answer(refusal, why, self.date.text(), now);
                self.drive(i);
            }
            Some(delay) => {
                ready.not_before = Some(now + delay);
                self.held.push(Reverse((now + delay, i)));
            }
        }
    }

    /// Moves held requests that are due to the queue for lanes.
    fn release_held(&mut self, now: Instant) {
        while let Some(&Reverse((due, i))) = self.held.peek() {
            if due > now {
                break;
            }
            self.held.pop();
            // The slot may hold another connection by now: only its own due time counts.
            let Some(ready) = self.conn(i).and_then(Conn::waiting) else {
                continue;
            };
            if ready.not_before.is_some_and(|t| t <= now) {
                ready.not_before = None;
                self.waiting.push_back(i);
            }
        }
    }

    /// Sends waiting requests down lanes (see [`lane`]), in arrival order.
    ///
    /// A request that may share a lane goes to the busy shared lane that owes the most
    /// responses and still has room (up to [`lane::DEPTH`]), so the requests of a pass
    /// wake as few of tiny_http's threads as they can; when none has room, to an idle
    /// lane or a new one while fewer than `max_busy_lanes` lanes are busy. One that
    /// must travel alone needs an idle or new lane. Every lane written to is sent once,
    /// after the loop, so the requests of one pass go to tiny_http in one write per
    /// lane.
    ///
    /// A new private connection is opened only when no other new one is still
    /// unanswered. tiny_http 0.12 hands each connection to a thread of its `TaskPool`,
    /// which can lose a wake-up: two connections accepted while one thread is waking
    /// both see that thread as idle, and the second waits until some thread's
    /// connection ends. Lanes live long, so that wait could be forever; opening them
    /// one at a time means a connection is only ever accepted after the previous one's
    /// thread is visibly busy.
    fn dispatch(&mut self) {
        let now = Instant::now();
        let router = Arc::clone(&self.router);
        let mut written = std::mem::take(&mut self.written);
        while let Some(&i) = self.waiting.front() {
            let Some(ready) = self.conn(i).and_then(Conn::waiting) else {
                self.waiting.pop_front();
                continue;
            };
            if ready.not_before.is_some() {
                self.waiting.pop_front();
                continue;
            }
            let shared = router.shares_lane(ready.route);
            let slot = match self.pick_lane(shared) {
                Ok(Some(slot)) => slot,
                // Nothing free, or tiny_http's backlog is full: retry when a lane
                // frees up or at the next tick.
                Ok(None) => break,
                Err(()) => {
                    self.waiting.pop_front();
                    if let Some(conn) = self.conns.get_mut(i).and_then(Option::as_mut)
                        && let Some(refusal) = conn.refusal_of_current(502)
                    {
                        let why = "the server could not take the request";
                        conn.answer(refusal, why, self.date.text(), now);
                    }
                    self.drive(i);
                    continue;
                }
            };
            self.waiting.pop_front();
            let Some(conn) = self.conns.get_mut(i).and_then(Option::as_mut) else {
                continue;
            };
            let Some(head_method) = conn.send_down(slot, now) else {
                continue;
            };
            let Some(lane) = self.lanes[slot].as_mut() else {
                continue;
            };
            lane.push(&conn.request, head_method, i, shared);
            conn.sent();
            if !written.contains(&slot) {
                written.push(slot);
            }
        }
        for &slot in &written {
            // Written at once: a lane that was already writable would not say so
            // again (edge-triggered). Only written: see `Lane::send` for why no read.
            let state = self.lanes[slot].as_mut().map(Lane::send);
            if state == Some(lane::State::Broken) {
                self.break_lane(slot);
            }
        }
        written.clear();
        self.written = written;
    }

    /// The lane for the next request (see [`Gate::dispatch`]): `Ok(None)` when it must
    /// wait, `Err` when no private connection can be made.
    fn pick_lane(&mut self, shared: bool) -> Result<Option<usize>, ()> {
        if shared && let Some(slot) = self.fullest_shared_lane() {
            return Ok(Some(slot));
        }
        let lanes = self.lanes.iter().flatten();
        let (busy, connecting) = lanes.fold((0, false), |(busy, connecting), lane| {
            (
                busy + usize::from(lane.depth() > 0),
                connecting || lane.fresh,
            )
        });
        if busy < self.settings.max_busy_lanes {
            if let Some(slot) = self.pool.pop() {
                return Ok(Some(slot));
            }
            if !connecting {
                return self.open_lane();
            }
        }
        Ok(None)
    }

    /// Of the busy lanes that take one more shared request, the one that owes the most
    /// responses: each lane written in a pass wakes one tiny_http thread, so a pass's
    /// requests go down as few lanes as there is room for.
    fn fullest_shared_lane(&self) -> Option<usize> {
        self.lanes
            .iter()
            .enumerate()
            .filter_map(|(slot, lane)| lane.as_ref().map(|l| (slot, l)))
            .filter(|(_, lane)| lane.depth() > 0 && lane.takes_shared())
            .max_by_key(|(_, lane)| lane.depth())
            .map(|(slot, _)| slot)
    }

    /// Opens a new lane: its slot, `Ok(None)` if tiny_http's backlog is full.
    fn open_lane(&mut self) -> Result<Option<usize>, ()> {
        let fd = match self.upstream.connect() {
            Ok(fd) => fd,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(_) => return Err(()),
        };
        let slot = self.free_slots.pop().unwrap_or_else(|| {
            self.lanes.push(None);
            self.lanes.len() - 1
        });
        let interest = poll::READ | poll::WRITE | poll::EDGE;
        if self
            .poller
            .add(fd.as_raw_fd(), lane_token(slot), interest)
            .is_err()
        {
            self.free_slots.push(slot);
            return Err(());
        }
        self.lanes[slot] = Some(Lane::opened(fd));
        Ok(Some(slot))
    }

    /// A lane's socket is ready: forwards the responses that are complete to their
    /// clients, and retires the lane if tiny_http closed it. The clients move on (their
    /// next requests) only after the lane is done with, and their requests wait for
    /// the pass's one dispatch: nothing re-enters a lane from inside its reading.
    fn on_upstream(&mut self, slot: usize) {
        let Gate {
            lanes,
            conns,
            scratch,
            stopping,
            delivered,
            ..
        } = self;
        let Some(lane) = lanes.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let open = stopping.is_none();
        let now = Instant::now();
        let before = lane.depth();
        let state = lane.pump(scratch, &mut |client, bytes, framed| {
            let Some(i) = client else { return };
            if let Some(conn) = conns.get_mut(i).and_then(Option::as_mut) {
                conn.forward(bytes, framed, open, now);
                delivered.push(i);
            }
        });
        let depth = lane.depth();
        if state == lane::State::Broken {
            self.break_lane(slot);
        } else if before > 0 && depth == 0 {
            if self.pool.len() < POOL_IDLE && self.stopping.is_none() {
                // Stays registered (edge-triggered): only a hang-up is reported while
                // it rests.
                self.pool.push(slot);
            } else {
                self.retire_lane(slot);
            }
        }
        let mut delivered = std::mem::take(&mut self.delivered);
        for &i in &delivered {
            self.drive(i);
        }
        delivered.clear();
        self.delivered = delivered;
    }

    /// Closes a lane and frees its slot.
    fn retire_lane(&mut self, slot: usize) -> Option<Lane> {
        let lane = self.lanes.get_mut(slot).and_then(Option::take)?;
        self.pool.retain(|&s| s != slot);
        self.free_slots.push(slot);
        Some(lane)
    }

    /// A lane broke (tiny_http closed it, or sent what no request asked for): its
    /// clients still waiting get a 502.
    fn break_lane(&mut self, slot: usize) {
        let Some(lane) = self.retire_lane(slot) else {
            return;
        };
        let clients: Vec<usize> = lane.clients().collect();
        // Dropping the socket closes it, which also removes it from the poller.
        drop(lane);
        for i in clients {
            self.fail(i);
        }
    }

    /// A request's lane broke before its response came: the client gets a 502.
    fn fail(&mut self, i: usize) {
        let Some(conn) = self.conns.get_mut(i).and_then(Option::as_mut) else {
            return;
        };
        if conn.lane().is_none() {
            return;
        }
        let Some(refusal) = conn.refusal_of_current(502) else {
            return;
        };
        let why = "the server gave no valid response";
        conn.answer(refusal, why, self.date.text(), Instant::now());
        self.drive(i);
    }

    fn sweep(&mut self, now: Instant) {
        if self
            .accept_paused
            .is_some_and(|t| now.duration_since(t) >= TICK)
        {
            self.accept_paused = None;
            let _ = self
                .poller
                .modify(self.listener.as_raw_fd(), LISTENER, poll::READ);
        }
        let (read_timeout, write_timeout) =
            (self.settings.read_timeout, self.settings.write_timeout);
        for i in 0..self.conns.len() {
            let expired = self.conns[i]
                .as_ref()
                .and_then(|c| c.deadline(read_timeout, write_timeout))
                .filter(|(deadline, _)| now >= *deadline)
                .map(|(_, why)| why);
            if let Some(why) = expired {
                self.close(i, why);
            }
        }
    }

    fn begin_shutdown(&mut self, now: Instant) {
        self.stopping = Some(now + self.settings.shutdown_timeout);
        let _ = self.poller.remove(self.listener.as_raw_fd());
        // SAFETY: shutdown(2) on the listening socket this gate holds: new connections
        // are refused from now on (also for a supervisor sharing the socket).
        unsafe { libc::shutdown(self.listener.as_raw_fd(), libc::SHUT_RDWR) };
        for i in 0..self.conns.len() {
            if self.conns[i].is_none() {
                continue;
            }
            // A request already in the socket counts as in progress: read it first.
            self.on_client(i, poll::READ);
            let Some(conn) = self.conn(i) else { continue };
            if conn.evictable() {
                self.close(i, Closed::Shutdown);
            } else {
                conn.keep = false;
            }
        }
    }

    fn close_all(&mut self) {
        for i in 0..self.conns.len() {
            if self.conns[i].is_some() {
                self.close(i, Closed::Shutdown);
            }
        }
    }
}
