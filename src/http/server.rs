//! The server's lifecycle: bind, serve, shut down.
//!
//! Binding registers the metrics, takes the public socket for the gate (see
//! [`super::gate`]), binds the private socket and starts tiny_http on it. Serving runs
//! the worker threads (see `request`) and the gate loop on the calling thread.
//!
//! # Shutdown ordering
//!
//! The one argument for why shutdown finishes in-flight work and ends in bounded time;
//! every `SeqCst` on the shutdown flags (`stopping`, `finished`, `busy`) refers here.
//! Those flags are read together by different threads, so they use one total order.
//!
//! 1. The gate sees the stop request: it shuts the public listener (new connections
//!    are refused), closes idle connections and incomplete heads, and lets requests in
//!    progress (held `/synthetic` ones included, due within 50 ms) finish with
//!    `Connection: close`. It returns when no client connection is left, or when the
//!    shutdown timeout has passed, closing what remains.
//! 2. No request can now reach tiny_http. `stopping` is set (from now on tiny_http's
//!    accept loop ending is expected, not an error); the server waits, until the same
//!    deadline, for `busy` (workers in a request) to reach zero. A worker raises
//!    `busy` before it handles a request, so one it took is waited for.
//! 3. `finished` is set: workers exit within one 10 ms `recv_timeout`. A response
//!    written after the gate left goes into a private socket whose reader is gone,
//!    which fails at once instead of blocking.
//! 4. The private listener is shut, which ends tiny_http's accept thread.
//!
//! So `run` returns within the shutdown timeout plus about 20 ms and one handler's
//! run time, whatever the clients do.

use std::fmt;
use std::io;
use std::mem::ManuallyDrop;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tiny_http::Request;

use super::batch;
use super::gate::{self, Gate, GateMetrics, Upstream};
use super::listen;
use super::options::Options;
use super::own_metrics::OwnMetrics;
use super::red::RedMetrics;
use super::request::{Shared, work};
use super::routes::{Endpoint, Handler, Reply, Router};
use crate::exposition::Scraper;
use crate::metrics::{MetricError, Registry};

/// The fewest busy lanes at once, whatever the workers: a scrape travels
/// down a lane of its own, so with 2 it never holds the only one.
pub(crate) const MIN_BUSY_LANES: usize = 2;

/// The most lanes busy at once for `workers` worker threads: one per worker, at least
/// [`MIN_BUSY_LANES`]. Each holds one of tiny_http's connection threads
/// (`/synthetic`'s delay is spent in the gate, so every request inside is quick); more
/// requests wait in the gate, in order. A lane beyond one per worker only waits for a
/// worker, holding a thread and its stack; fewer would leave workers idle. A request
/// that waits in the gate costs a few hundred bytes and no thread. The measurements
/// behind the choice are in docs/performance.md ("Relays: one per worker").
pub(crate) const fn max_busy_lanes(workers: usize) -> usize {
    if workers > MIN_BUSY_LANES {
        workers
    } else {
        MIN_BUSY_LANES
    }
}

/// Why the server could not start or stopped with an error.
///
/// ```
/// use std::net::TcpListener;
/// use tinyprom::http::{Options, ServeError, Server};
///
/// // A port another socket listens on: binding fails with the address and the cause.
/// let taken = TcpListener::bind("127.0.0.1:0").unwrap();
/// let listen_address = taken.local_addr().unwrap();
/// match Server::bind(Options { listen_address, ..Options::default() }) {
///     Err(ServeError::Bind(addr, _)) => assert_eq!(addr, listen_address),
///     Err(other) => panic!("expected a bind error, got {other}"),
///     Ok(_) => panic!("bound a port that is in use"),
/// }
/// ```
#[derive(Debug)]
pub enum ServeError {
    /// Binding the listening socket failed (address in use, permission denied...).
    Bind(SocketAddr, io::Error),
    /// Setting up the server failed.
    Io(String, io::Error),
    /// Registering a metric failed (a custom route or registry clashed with ours).
    Metric(MetricError),
    /// tiny_http's accept loop ended: the server can no longer answer requests.
    AcceptLoopEnded(io::Error),
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServeError::Bind(addr, e) => {
                let hint = match e.kind() {
                    io::ErrorKind::AddrInUse => {
                        ": pick another --web.listen-address or stop the other process"
                    }
                    io::ErrorKind::PermissionDenied => {
                        ": ports below 1024 need privileges; use a higher port"
                    }
                    io::ErrorKind::AddrNotAvailable => ": that address is not on this machine",
                    _ => "",
                };
                write!(f, "cannot listen on {addr}: {e}{hint}")
            }
            ServeError::Io(what, e) => write!(f, "{what}: {e}"),
            ServeError::Metric(e) => write!(f, "metric registration failed: {e}"),
            ServeError::AcceptLoopEnded(e) => {
                write!(
                    f,
                    "the HTTP accept loop ended ({e}); exiting so a supervisor can restart"
                )
            }
        }
    }
}

impl std::error::Error for ServeError {}

impl From<MetricError> for ServeError {
    fn from(e: MetricError) -> Self {
        ServeError::Metric(e)
    }
}

/// Binds `addr` for a server (tuned as the server wants it). Only needed to bind
/// before forking; [`ServerBuilder::bind`] binds by itself otherwise.
pub fn bind(addr: SocketAddr, read_timeout: Duration) -> Result<TcpListener, ServeError> {
    let listener = TcpListener::bind(addr).map_err(|e| ServeError::Bind(addr, e))?;
    listen::tune(&listener, read_timeout)
        .map_err(|e| ServeError::Io("tuning the listening socket".into(), e))?;
    Ok(listener)
}

/// Configures a [`Server`] before it binds: extra routes, a caller's registry.
///
/// ```
/// use std::sync::Arc;
/// use tinyprom::http::{Options, Reply, Server};
/// use tinyprom::metrics::{Counter, Registry};
///
/// let registry = Arc::new(Registry::new());
/// let hellos = Counter::new();
/// registry.register("hellos_total", "Greetings sent.", hellos.clone()).unwrap();
/// let options = Options {
///     listen_address: "127.0.0.1:0".parse().unwrap(),
///     ..Options::default()
/// };
/// let server = Server::builder(options)
///     .registry(registry)
///     .route("/hello", move |_req| {
///         hellos.inc();
///         Reply::text(200, "hello\n")
///     })
///     .bind()
///     .unwrap();
/// let running = server.spawn().unwrap();
/// // ... later:
/// running.stop().unwrap();
/// ```
pub struct ServerBuilder {
    options: Options,
    router: Router,
    registry: Option<Arc<Registry>>,
    listener: Option<TcpListener>,
    restarts: u64,
}

impl ServerBuilder {
    /// Adds a route answered by `handler` on a worker thread (keep it quick). Its
    /// requests may not carry a body (the gate answers 413).
    pub fn route(
        self,
        path: &str,
        handler: impl Fn(&mut Request) -> Reply + Send + Sync + 'static,
    ) -> Self {
        self.route_with_body(path, 0, handler)
    }

    /// Adds a route whose requests may carry a body of up to `body_limit` bytes
    /// (with `Content-Length`; larger bodies get 413, chunked ones 411). The gate
    /// collects the body before the request goes on; the handler reads it.
    ///
    /// ```no_run
    /// use std::io::Read;
    /// use tinyprom::http::{Options, Reply, Server};
    ///
    /// let server = Server::builder(Options::default())
    ///     .route_with_body("/echo", 4096, |request| {
    ///         let mut body = String::new();
    ///         match request.as_reader().read_to_string(&mut body) {
    ///             Ok(_) => Reply::text(200, body),
    ///             Err(_) => Reply::text(400, "not UTF-8\n"),
    ///         }
    ///     })
    ///     .bind()
    ///     .unwrap();
    /// ```
    pub fn route_with_body(
        mut self,
        path: &str,
        body_limit: u64,
        handler: impl Fn(&mut Request) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let handler: Handler = Arc::new(handler);
        self.router.add(path, Endpoint::Custom(handler), body_limit);
        self
    }

    /// Renders (and adds tinyprom's own metrics to) this registry instead of a new one.
    pub fn registry(mut self, registry: Arc<Registry>) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Serves on this already bound socket (from [`bind`]) instead of binding
    /// `listen_address` (the supervisor binds once, before it forks).
    pub fn listener(mut self, listener: TcpListener) -> Self {
        self.listener = Some(listener);
        self
    }

    /// The restarts of the serving process so far, exported as `tinyprom_restarts_total`.
    pub fn restarts(mut self, restarts: u64) -> Self {
        self.restarts = restarts;
        self
    }

    /// Prepares the process (see `bootstrap`), registers the metrics, binds the public
    /// and the private socket and starts tiny_http. Requests are answered once
    /// [`Server::run`] or [`Server::spawn`] starts (until then they wait in the
    /// listen backlog).
    pub fn bind(self) -> Result<Server, ServeError> {
        super::bootstrap::prepare();
        let options = self.options;
        let registry = self.registry.unwrap_or_default();
        if options.openmetrics_created {
            registry.set_openmetrics_created(true);
        }
        let red = Arc::new(RedMetrics::register(&registry, self.router.label_values())?);
        let own = OwnMetrics::register(&registry, self.restarts, options.process_metrics)?;
        let gate_metrics = GateMetrics::register(&registry)?;
        let listener = match self.listener {
            Some(listener) => listener,
            None => bind(options.listen_address, options.read_timeout)?,
        };
        let local_addr = listener
            .local_addr()
            .map_err(|e| ServeError::Io("reading the bound address".into(), e))?;
        let (private, upstream) =
            Upstream::bind().map_err(|e| ServeError::Io("binding the private socket".into(), e))?;
        let control = OwnedFd::from(
            private
                .try_clone()
                .map_err(|e| ServeError::Io("duplicating the private socket".into(), e))?,
        );
        // tiny_http's threads run SCHED_BATCH: see `batch` for why.
        let http = batch::start_behind_the_gate(|| {
            tiny_http::Server::from_listener(private, None).map_err(|e| e.to_string())
        })
        .map_err(|e| ServeError::Io("starting tiny_http".into(), io::Error::other(e)))?;
        let upstream = Arc::new(upstream);
        let backend = Backend {
            http: ManuallyDrop::new(Arc::new(http)),
            control,
            droppable: upstream.has_path(),
        };
        let router = Arc::new(self.router);
        let lanes = max_busy_lanes(options.max_workers);
        let max_connections = options
            .max_connections
            .min(listen::fd_limit().map_or(usize::MAX, |n| listen::connections_within(n, lanes)));
        let gate = Gate::new(
            listener,
            upstream,
            Arc::clone(&router),
            gate_metrics,
            Arc::clone(&red),
            gate::Settings {
                read_timeout: options.read_timeout,
                write_timeout: listen::write_timeout(options.read_timeout),
                max_connections,
                max_busy_lanes: lanes,
                shutdown_timeout: options.shutdown_timeout,
            },
        )
        .map_err(|e| ServeError::Io("starting the gate".into(), e))?;
        Ok(Server {
            gate,
            backend,
            local_addr,
            shared: Arc::new(Shared {
                router,
                scraper: {
                    // Counted before rendering: a scrape shows itself.
                    let own = own.clone();
                    Scraper::new(registry).on_scrape(move |format| own.scraped(format))
                },
                red,
                own,
                busy: AtomicUsize::new(0),
                stopping: AtomicBool::new(false),
                finished: AtomicBool::new(false),
                turn: Mutex::new(()),
            }),
            workers: options.max_workers,
            shutdown_timeout: options.shutdown_timeout,
        })
    }
}

/// tiny_http on the private socket, and a second handle on that socket to end its
/// accept loop.
struct Backend {
    http: ManuallyDrop<Arc<tiny_http::Server>>,
    control: OwnedFd,
    /// tiny_http's `Server` unwraps its socket's path when dropped, so it is dropped
    /// only when the socket has one; an abstract socket's server (a small struct, once
    /// per server) is left to the process's end.
    droppable: bool,
}

impl Drop for Backend {
    fn drop(&mut self) {
        // SAFETY: shutdown(2) on a descriptor we own: tiny_http's blocked accept()
        // fails and its accept thread ends.
        unsafe { libc::shutdown(self.control.as_raw_fd(), libc::SHUT_RDWR) };
        if self.droppable {
            // SAFETY: dropped once, here, and never used again.
            unsafe { ManuallyDrop::drop(&mut self.http) };
        }
    }
}

/// A bound server; call [`Server::run`] (blocking) or [`Server::spawn`].
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::AtomicBool;
/// use tinyprom::http::{Options, Server};
///
/// let options = Options {
///     listen_address: "127.0.0.1:0".parse().unwrap(),
///     ..Options::default()
/// };
/// let server = Server::bind(options).unwrap();
/// assert_ne!(server.local_addr().port(), 0); // bound: the port is known before serving
/// assert!(server.workers() >= 1);
/// // run() serves on this thread until the flag is set (spawn() does it on another).
/// let stop = Arc::new(AtomicBool::new(true));
/// server.run(&stop).unwrap();
/// ```
pub struct Server {
    gate: Gate,
    backend: Backend,
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    workers: usize,
    shutdown_timeout: Duration,
}

impl Server {
    /// A builder for a server with the three built-in routes.
    pub fn builder(options: Options) -> ServerBuilder {
        ServerBuilder {
            router: Router::new(&options.telemetry_path),
            options,
            registry: None,
            listener: None,
            restarts: 0,
        }
    }

    /// Binds a server with the built-in routes and a new registry.
    pub fn bind(options: Options) -> Result<Server, ServeError> {
        Server::builder(options).bind()
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The number of worker threads `run` starts.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// The registry `/metrics` renders.
    pub fn registry(&self) -> &Arc<Registry> {
        self.shared.scraper.registry()
    }

    /// Serves until `stop` becomes true, then shuts down gracefully (see the module
    /// documentation). Returns an error if tiny_http's accept loop dies.
    pub fn run(self, stop: &AtomicBool) -> Result<(), ServeError> {
        let Server {
            gate,
            backend,
            shared,
            workers,
            shutdown_timeout,
            ..
        } = self;
        let fatal: Arc<Mutex<Option<ServeError>>> = Arc::default();
        let mut handles: Vec<JoinHandle<()>> = Vec::with_capacity(workers);
        for i in 0..workers {
            let http = Arc::clone(&backend.http);
            let shared = Arc::clone(&shared);
            let report = Arc::clone(&fatal);
            let spawned = std::thread::Builder::new()
                .name(format!("tinyprom-worker-{i}"))
                .spawn(move || {
                    super::batch::behind_the_gate();
                    if let Some(e) = work(&http, &shared) {
                        let mut slot = report.lock().unwrap_or_else(|p| p.into_inner());
                        slot.get_or_insert(ServeError::AcceptLoopEnded(e));
                    }
                });
            match spawned {
                Ok(h) => handles.push(h),
                Err(e) => {
                    let mut slot = fatal.lock().unwrap_or_else(|p| p.into_inner());
                    slot.get_or_insert(ServeError::Io("starting a worker thread".into(), e));
                    break;
                }
            }
        }
        let broken = || fatal.lock().map_or(true, |slot| slot.is_some());
        // Relaxed: the flag is polled every tick; seeing it one tick late is harmless.
        let served = gate.run(&|| stop.load(Ordering::Relaxed) || broken());
        let deadline = Instant::now() + shutdown_timeout;
        shared.stopping.store(true, Ordering::SeqCst);
        while Instant::now() < deadline && shared.busy.load(Ordering::SeqCst) > 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
        shared.finished.store(true, Ordering::SeqCst);
        for h in handles {
            let _ = h.join();
        }
        drop(backend);
        if let Some(e) = fatal.lock().unwrap_or_else(|p| p.into_inner()).take() {
            return Err(e);
        }
        served.map_err(|e| ServeError::Io("the gate's poll loop".into(), e))
    }

    /// Runs the server on a background thread; the returned handle stops it.
    pub fn spawn(self) -> io::Result<RunningServer> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let addr = self.local_addr;
        let thread = std::thread::Builder::new()
            .name("tinyprom-server".into())
            .spawn(move || self.run(&flag))?;
        Ok(RunningServer { stop, thread, addr })
    }
}

/// A server running on a background thread.
///
/// ```
/// use std::io::{Read, Write};
/// use std::net::TcpStream;
/// use tinyprom::http::{Options, Server};
///
/// let options = Options {
///     listen_address: "127.0.0.1:0".parse().unwrap(),
///     ..Options::default()
/// };
/// let running = Server::bind(options).unwrap().spawn().unwrap();
///
/// let mut conn = TcpStream::connect(running.local_addr()).unwrap();
/// conn.write_all(b"GET /up HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
/// let mut answer = String::new();
/// conn.read_to_string(&mut answer).unwrap();
/// assert!(answer.starts_with("HTTP/1.1 200"));
///
/// running.stop().unwrap(); // graceful: requests in flight finish first
/// ```
pub struct RunningServer {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Result<(), ServeError>>,
    addr: SocketAddr,
}

impl RunningServer {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Shuts the server down gracefully and waits for it.
    pub fn stop(self) -> Result<(), ServeError> {
        // Relaxed: a polled flag; staleness only delays by one tick.
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_else(|_| {
            Err(ServeError::Io(
                "server thread".into(),
                io::Error::other("panicked"),
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_worker_can_hold_a_busy_lane() {
        for workers in [1, 2, 4, 12] {
            assert!(max_busy_lanes(workers) >= workers);
            assert!(max_busy_lanes(workers) >= MIN_BUSY_LANES);
        }
    }
}
