//! The connection guard: read deadlines, a size limit, a connection bound and fairness
//! for connections that `tiny_http` owns and gives us no handle on.
//!
//! `tiny_http` reads each connection on a thread of its own with no timeout and no
//! limit, and never tells its user about a connection until a whole request head has
//! arrived. So the guard looks from the outside, the way `ss` would: every
//! [`TICK`] it lists the process's sockets connected to the listening port, asks the
//! kernel about each (`TCP_INFO`: bytes received and acknowledged; `FIONREAD`: bytes
//! not yet read), and shuts a socket down (`shutdown(2)`, never `close(2)`, so the
//! descriptor stays `tiny_http`'s to close) when one of these holds:
//!
//! * **timeout**: no response byte has been acknowledged for the read timeout since the
//!   connection appeared or since its last response. This closes slow-loris clients,
//!   stalled uploads, idle keep-alive connections and clients that stop reading.
//! * **oversize**: more than [`MAX_HEAD_BYTES`] received since the last response: a huge
//!   request line or header block (which `tiny_http` would buffer without limit), or a
//!   request body, which no tinyprom endpoint reads.
//! * **limit**: more than the connection bound is open; the longest-idle go first.
//! * **evicted**: a connection has been waiting for one of `tiny_http`'s connection
//!   threads for [`STARVED_AFTER`]. Its pool can queue a new connection behind busy
//!   ones and leave it there: `spawn` queues the task when it sees a waiting thread, and
//!   two connections arriving together can both see the same one. The guard first
//!   *kicks* the pool: it opens a throw-away connection to the listener that sends one
//!   empty line and closes. With no thread waiting, the pool starts a new thread for it,
//!   which finishes the throw-away at once and then takes the queued connection; with one
//!   waiting, that thread is woken. Nobody loses a request. Only if a connection still
//!   waits [`EVICT_AFTER`] is the longest-idle answered connection closed, which frees
//!   its thread for the waiting one.
//! * **body**: a worker asked for it ([`Guard::refuse_body`]), so that `tiny_http`'s
//!   drain of an unread request body ends at once instead of waiting for the client.
//!
//! A connection still open [`ZOMBIE_AFTER`] after it was shut down is wedged inside
//! `tiny_http` (its thread will never return); the watchdog restarts the serving
//! process when too many pile up.

use std::collections::HashMap;
use std::io;
use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::metrics::{Counter, Gauge, IndexedFamily, MetricError, Registry};

/// How often the guard looks at the connections.
pub const TICK: Duration = Duration::from_millis(50);
/// The most bytes a client may send without getting a response (request head plus any
/// body it pipelines).
pub const MAX_HEAD_BYTES: u64 = 256 * 1024;
/// How long a connection may wait for a `tiny_http` thread before an idle one is evicted.
pub const STARVED_AFTER: Duration = Duration::from_millis(50);
/// How long a connection may wait for a thread despite kicks before another is evicted.
pub const EVICT_AFTER: Duration = Duration::from_millis(1200);
/// The most kicks per tick.
const MAX_KICKS: usize = 64;
/// A shut-down connection still open after this long is wedged.
pub const ZOMBIE_AFTER: Duration = Duration::from_secs(2);
/// How long a refused body may keep flowing before the connection is closed entirely
/// (time enough for the response to be written).
const BODY_GRACE: Duration = Duration::from_millis(200);

/// Why the guard closed a connection: the `reason` label values.
pub const REASONS: [&str; 5] = ["timeout", "oversize", "limit", "evicted", "body"];

#[derive(Clone, Copy)]
enum Reason {
    Timeout = 0,
    Oversize = 1,
    Limit = 2,
    Evicted = 3,
    Body = 4,
}

/// The guard's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuardConfig {
    /// Deadline for a request (or the next one on a kept-alive connection).
    pub read_timeout: Duration,
    /// The most connections kept open.
    pub max_connections: usize,
}

struct Conn {
    fd: RawFd,
    seen: u64,
    first_seen: Instant,
    last_progress: Instant,
    acked: u64,
    received_at_progress: u64,
    pending_since: Option<Instant>,
    shut_at: Option<Instant>,
    close_at: Option<Instant>,
}

impl Conn {
    fn new(fd: RawFd, now: Instant) -> Conn {
        Conn {
            fd,
            seen: 0,
            first_seen: now,
            last_progress: now,
            acked: 0,
            received_at_progress: 0,
            pending_since: None,
            shut_at: None,
            close_at: None,
        }
    }

    fn idle_since(&self) -> Instant {
        self.last_progress.max(self.first_seen)
    }
}

struct State {
    conns: HashMap<SocketAddr, Conn>,
    generation: u64,
    max_fd: RawFd,
}

struct Inner {
    port: u16,
    listener: RawFd,
    config: GuardConfig,
    state: Mutex<State>,
    stop: AtomicBool,
    closed: IndexedFamily<Counter>,
    open: Gauge,
    kicks: Counter,
    zombies: AtomicUsize,
}

/// The running guard; stops its thread when dropped.
pub struct Guard {
    inner: Arc<Inner>,
    thread: Option<JoinHandle<()>>,
}

impl Guard {
    /// Registers the guard's metrics and starts its thread for connections to `port`
    /// (the listening socket itself, `listener`, is left alone).
    pub fn start(
        port: u16,
        listener: RawFd,
        config: GuardConfig,
        registry: &Registry,
    ) -> Result<Guard, GuardError> {
        let closed: IndexedFamily<Counter> = IndexedFamily::new(
            &["reason"],
            vec![REASONS.iter().map(|r| r.to_string()).collect()],
            Counter::new,
        )?;
        registry.register(
            "tinyprom_http_connections_closed_total",
            "Connections the server closed to protect itself, by reason (timeout, oversize, limit, evicted, body).",
            closed.clone(),
        )?;
        let open = Gauge::new();
        registry.register(
            "tinyprom_http_connections",
            "Client connections open, as last counted by the connection guard.",
            open.clone(),
        )?;
        let kicks = Counter::new();
        registry.register(
            "tinyprom_http_pool_kicks_total",
            "Throw-away connections the guard opened to make tiny_http's pool serve a connection it had queued.",
            kicks.clone(),
        )?;
        let inner = Arc::new(Inner {
            port,
            listener,
            config,
            state: Mutex::new(State {
                conns: HashMap::new(),
                generation: 0,
                max_fd: 64,
            }),
            stop: AtomicBool::new(false),
            closed,
            open,
            kicks,
            zombies: AtomicUsize::new(0),
        });
        let worker = Arc::clone(&inner);
        let thread = std::thread::Builder::new()
            .name("tinyprom-guard".into())
            .spawn(move || {
                // Relaxed: a late stop only delays the exit by one tick.
                while !worker.stop.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    worker.scan(Instant::now());
                }
            })
            .map_err(GuardError::Thread)?;
        Ok(Guard {
            inner,
            thread: Some(thread),
        })
    }

    /// Connections shut down at least [`ZOMBIE_AFTER`] ago and still open.
    pub fn zombies(&self) -> usize {
        // Relaxed: a gauge-like reading; one tick of staleness is fine.
        self.inner.zombies.load(Ordering::Relaxed)
    }

    /// Closes the reading side of `peer`'s connection now and the whole connection
    /// shortly after, so that `tiny_http`'s drain of a body we will not read ends at
    /// once. The response written in between still goes out.
    pub fn refuse_body(&self, peer: SocketAddr) {
        self.with_conn(peer, |_, conn, now| {
            if peer_of(conn.fd, self.inner.port) == Some(peer) {
                // SAFETY: shutdown(2) on a socket of this process; it does not close
                // the descriptor, so tiny_http's ownership is untouched.
                unsafe { libc::shutdown(conn.fd, libc::SHUT_RD) };
            }
            conn.close_at = Some(now + BODY_GRACE);
        });
    }

    /// Closes `peer`'s connection in both directions now, without a response.
    pub fn abandon(&self, peer: SocketAddr) {
        self.with_conn(peer, |inner, conn, now| {
            inner.shut(peer, conn, Reason::Body, now)
        });
    }

    /// Runs `f` on `peer`'s connection record, found by a fresh look at the descriptors
    /// if the last tick did not see it yet; does nothing if it is already gone.
    fn with_conn(&self, peer: SocketAddr, f: impl FnOnce(&Inner, &mut Conn, Instant)) {
        let now = Instant::now();
        let mut state = self.inner.lock();
        let fd = match state.conns.get(&peer) {
            Some(c) => Some(c.fd),
            None => find_fd(&state, self.inner.port, peer),
        };
        let Some(fd) = fd else { return };
        let conn = state
            .conns
            .entry(peer)
            .or_insert_with(|| Conn::new(fd, now));
        f(&self.inner, conn, now);
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Why the guard could not start.
#[derive(Debug)]
pub enum GuardError {
    /// Registering its metrics failed.
    Metric(MetricError),
    /// Its thread could not be started.
    Thread(io::Error),
}

impl From<MetricError> for GuardError {
    fn from(e: MetricError) -> Self {
        GuardError::Metric(e)
    }
}

impl std::fmt::Display for GuardError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GuardError::Metric(e) => write!(f, "connection guard metrics: {e}"),
            GuardError::Thread(e) => write!(f, "starting the connection guard: {e}"),
        }
    }
}

impl std::error::Error for GuardError {}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The map stays consistent between statements, so a poisoned lock is usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn shut(&self, peer: SocketAddr, conn: &mut Conn, reason: Reason, now: Instant) {
        if conn.shut_at.is_some() {
            return;
        }
        // Descriptor numbers are reused: only shut the socket if it is still this peer's.
        if peer_of(conn.fd, self.port) == Some(peer) {
            // SAFETY: shutdown(2) on a socket of this process; see `refuse_body`.
            unsafe { libc::shutdown(conn.fd, libc::SHUT_RDWR) };
        }
        conn.shut_at = Some(now);
        if let Some(c) = self.closed.get(&[reason as usize]) {
            c.inc();
        }
    }

    /// Opens `n` throw-away connections to the listener (see the module docs): each
    /// sends an empty line, which `tiny_http` reads as no request, and closes.
    fn kick(&self, n: usize) {
        let Some(addr) = local_addr(self.listener) else {
            return;
        };
        let target = crate::health::reachable(addr);
        for _ in 0..n {
            self.kicks.inc();
            if let Ok(mut stream) =
                std::net::TcpStream::connect_timeout(&target, Duration::from_millis(50))
            {
                // The byte gets the connection past TCP_DEFER_ACCEPT; closing right after
                // ends tiny_http's read of it.
                let _ = std::io::Write::write_all(&mut stream, b"\r\n");
            }
        }
    }

    fn scan(&self, now: Instant) {
        let mut state = self.lock();
        state.generation += 1;
        let generation = state.generation;
        let mut max_fd = 0;
        for fd in list_fds(state.max_fd) {
            max_fd = max_fd.max(fd);
            if fd == self.listener {
                continue;
            }
            let Some(peer) = peer_of(fd, self.port) else {
                continue;
            };
            let conn = state
                .conns
                .entry(peer)
                .or_insert_with(|| Conn::new(fd, now));
            if conn.seen != generation {
                conn.fd = fd;
                conn.seen = generation;
            }
        }
        state.max_fd = max_fd;
        state.conns.retain(|_, c| c.seen == generation);

        let config = self.config;
        let mut live = 0usize;
        let mut zombies = 0usize;
        let mut starved = 0usize;
        let mut starving_long = false;
        let mut kicks = 0usize;
        for (peer, conn) in state.conns.iter_mut() {
            if let Some(at) = conn.shut_at {
                if now.duration_since(at) >= ZOMBIE_AFTER {
                    zombies += 1;
                }
                continue;
            }
            let (acked, received) = tcp_bytes(conn.fd).unwrap_or((conn.acked, 0));
            if acked > conn.acked {
                conn.acked = acked;
                conn.last_progress = now;
                conn.received_at_progress = received;
            }
            conn.pending_since = if unread(conn.fd) > 0 {
                conn.pending_since.or(Some(now))
            } else {
                None
            };
            if conn.close_at.is_some_and(|at| now >= at) {
                self.shut(*peer, conn, Reason::Body, now);
            } else if now.duration_since(conn.idle_since()) > config.read_timeout {
                self.shut(*peer, conn, Reason::Timeout, now);
            } else if received.saturating_sub(conn.received_at_progress) > MAX_HEAD_BYTES {
                self.shut(*peer, conn, Reason::Oversize, now);
            } else {
                live += 1;
                if let Some(since) = conn.pending_since.filter(|_| conn.acked == 0) {
                    let waited = now.duration_since(since);
                    if waited >= EVICT_AFTER {
                        starved += 1;
                        starving_long = true;
                    } else if waited >= STARVED_AFTER {
                        kicks += 1;
                    }
                }
            }
        }
        if kicks > 0 {
            self.kick(kicks.min(MAX_KICKS));
        }
        // Over the bound, or connections waiting for a thread despite kicks: close the
        // longest-idle answered connections, whose clients are between requests (or,
        // after a long wait, the longest-served even if busy); over the bound and short
        // of those, the oldest unanswered ones: a connection that has waited longest for
        // its first answer is the slow, stuck or wedged one, a fresh one is about to be
        // served.
        let excess = live.saturating_sub(config.max_connections);
        let wanted = excess + starved;
        if wanted > 0 {
            let mut answered: Vec<(Instant, SocketAddr)> = state
                .conns
                .iter()
                .filter(|(_, c)| c.shut_at.is_none() && c.acked > 0)
                .filter(|(_, c)| c.pending_since.is_none() || starving_long)
                .map(|(p, c)| (c.idle_since(), *p))
                .collect();
            answered.sort();
            let mut victims: Vec<SocketAddr> = answered.into_iter().map(|(_, p)| p).collect();
            if victims.len() < excess {
                let mut unanswered: Vec<(Instant, SocketAddr)> = state
                    .conns
                    .iter()
                    .filter(|(_, c)| c.shut_at.is_none() && c.acked == 0)
                    .map(|(p, c)| (c.first_seen, *p))
                    .collect();
                unanswered.sort();
                victims.extend(unanswered.into_iter().map(|(_, p)| p));
            }
            let reason = if excess > 0 {
                Reason::Limit
            } else {
                Reason::Evicted
            };
            for peer in victims.into_iter().take(wanted) {
                if let Some(conn) = state.conns.get_mut(&peer) {
                    self.shut(peer, conn, reason, now);
                }
            }
        }
        self.open.set(state.conns.len() as f64);
        // Relaxed: read by the watchdog as an independent reading.
        self.zombies.store(zombies, Ordering::Relaxed);
    }
}

/// The descriptors open in this process: from `/proc/self/fd` where it exists, else by
/// probing numbers up to a little past the highest seen before.
fn list_fds(max_seen: RawFd) -> Vec<RawFd> {
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        return dir
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
    }
    let ceiling = max_seen.saturating_add(1024).min(1 << 20);
    // SAFETY: fcntl(F_GETFD) only reports whether the descriptor is open.
    (0..=ceiling)
        .filter(|&fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } != -1)
        .collect()
}

/// The descriptor of `peer`'s connection, by a fresh look at every descriptor.
fn find_fd(state: &State, port: u16, peer: SocketAddr) -> Option<RawFd> {
    list_fds(state.max_fd)
        .into_iter()
        .find(|&fd| peer_of(fd, port) == Some(peer))
}

/// The address a socket is bound to.
fn local_addr(fd: RawFd) -> Option<SocketAddr> {
    sockaddr(fd, libc::getsockname)
}

/// The peer of `fd` if it is a TCP socket connected to local port `port`.
fn peer_of(fd: RawFd, port: u16) -> Option<SocketAddr> {
    let local = sockaddr(fd, libc::getsockname)?;
    if local.port() != port {
        return None;
    }
    sockaddr(fd, libc::getpeername)
}

type AddrFn =
    unsafe extern "C" fn(libc::c_int, *mut libc::sockaddr, *mut libc::socklen_t) -> libc::c_int;

fn sockaddr(fd: RawFd, get: AddrFn) -> Option<SocketAddr> {
    let mut storage = MaybeUninit::<libc::sockaddr_storage>::zeroed();
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into the storage we own.
    let rc = unsafe { get(fd, storage.as_mut_ptr().cast(), &mut len) };
    if rc != 0 {
        return None;
    }
    // SAFETY: zero-initialised and possibly partly overwritten by the kernel: valid.
    let storage = unsafe { storage.assume_init() };
    match storage.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says this is a sockaddr_in, which fits in the storage.
            let a: libc::sockaddr_in =
                unsafe { std::ptr::read((&storage as *const libc::sockaddr_storage).cast()) };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::new(IpAddr::V4(ip), u16::from_be(a.sin_port)))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let a: libc::sockaddr_in6 =
                unsafe { std::ptr::read((&storage as *const libc::sockaddr_storage).cast()) };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(SocketAddr::new(IpAddr::V6(ip), u16::from_be(a.sin6_port)))
        }
        _ => None,
    }
}

/// The start of Linux's `struct tcp_info` up to `tcpi_bytes_received` (kernel ABI,
/// append-only, so a prefix is valid on every kernel that has these fields).
#[repr(C)]
#[derive(Default)]
struct TcpInfoPrefix {
    bytes_8: [u8; 8],
    words_24: [u32; 24],
    pacing_rate: u64,
    max_pacing_rate: u64,
    bytes_acked: u64,
    bytes_received: u64,
}

/// Bytes of ours the peer acknowledged and bytes received from it.
fn tcp_bytes(fd: RawFd) -> Option<(u64, u64)> {
    let mut info = TcpInfoPrefix::default();
    let mut len = std::mem::size_of::<TcpInfoPrefix>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `info`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut TcpInfoPrefix).cast(),
            &mut len,
        )
    };
    if rc != 0 || (len as usize) < std::mem::size_of::<TcpInfoPrefix>() {
        return None;
    }
    Some((info.bytes_acked, info.bytes_received))
}

/// Bytes received and not yet read by `tiny_http`.
fn unread(fd: RawFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int.
    let rc = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) };
    if rc != 0 { 0 } else { n.max(0) as usize }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;

    #[test]
    fn sees_connections_bytes_and_unread_data() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, peer) = listener.accept().unwrap();
        assert_eq!(peer_of(server.as_raw_fd(), port), Some(peer));
        assert_eq!(peer_of(listener.as_raw_fd(), port), None, "not connected");
        assert_eq!(peer_of(client.as_raw_fd(), port), None, "other local port");
        assert!(list_fds(0).contains(&server.as_raw_fd()));
        client.write_all(b"hello").unwrap();
        let deadline = Instant::now() + Duration::from_secs(2);
        while unread(server.as_raw_fd()) < 5 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(unread(server.as_raw_fd()), 5);
        let mut buf = [0u8; 5];
        server.read_exact(&mut buf).unwrap();
        server.write_all(b"world!").unwrap();
        client.read_exact(&mut [0u8; 6]).unwrap();
        let deadline = Instant::now() + Duration::from_secs(2);
        while tcp_bytes(server.as_raw_fd()).unwrap().0 < 6 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(tcp_bytes(server.as_raw_fd()), Some((6, 5)));
    }

    #[test]
    fn silent_connections_are_shut_after_the_read_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let registry = Registry::new();
        let guard = Guard::start(
            addr.port(),
            listener.as_raw_fd(),
            GuardConfig {
                read_timeout: Duration::from_millis(300),
                max_connections: 100,
            },
            &registry,
        )
        .unwrap();
        let mut client = TcpStream::connect(addr).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let (_server, _) = listener.accept().unwrap();
        let start = Instant::now();
        let n = client.read(&mut [0u8; 1]).unwrap();
        assert_eq!(n, 0, "EOF once the guard shuts the socket");
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(300), "{took:?}");
        assert!(took < Duration::from_secs(3), "{took:?}");
        assert!(
            registry
                .render_text()
                .contains("tinyprom_http_connections_closed_total{reason=\"timeout\"} 1")
        );
        drop(guard);
    }
}
