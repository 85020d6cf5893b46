//! The server: a tiny_http listener, a fixed pool of workers, graceful shutdown.
//!
//! Request path: tiny_http's accept thread hands each connection to a connection
//! thread, which parses requests and queues them; a fixed number of worker threads take
//! them with `recv_timeout`, route them (see [`super::routes`]), answer, and record the
//! RED metrics (see `red`). `/synthetic` is parked in a
//! `DelayQueue` and answered by its timer thread, so a slow
//! endpoint never holds a worker. `/metrics` renders into a buffer each worker keeps,
//! so a warm scrape allocates nothing for the body.
//!
//! Protection: the listening socket is tuned by [`super::listen`], every connection is
//! watched by the `Guard` (deadlines, size limit, connection bound, fairness), and a
//! [`Watchdog`] thread condemns the process when `tiny_http` is broken beyond repair:
//! [`Server::run`] then returns [`ServeError::Condemned`] and the binary exits, for the
//! supervisor to start a fresh process on the same socket. Requests carrying a body no
//! endpoint reads have their connection's reading side shut before the response, so
//! `tiny_http`'s drain of the body cannot hold a worker; a body too large for that
//! drain to even allocate its buffer gets the connection closed without an answer.
//!
//! Shutdown: [`Server::run`] returns after its stop flag is set (SIGTERM/SIGINT in the
//! binary): it closes the listening socket first (new connections are refused at once),
//! lets parked and running requests finish, answers anything newer on kept-alive
//! connections without delay, and gives up after the shutdown timeout.

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tiny_http::{Header, Request, Response, StatusCode};

use super::delay::{DelayQueue, Due};
use super::guard::{Guard, GuardConfig};
use super::listen;
use super::red::RedMetrics;
use super::routes::{Endpoint, Handler, Reply, Router, method_index};
use super::watchdog::{Readings, Watchdog};
use crate::config::Config;
use crate::exposition::{Format, negotiate};
use crate::metrics::{Counter, IndexedFamily, Info, MetricError, Registry};
use crate::process::ProcessCollector;

/// The most `/synthetic` requests waiting for their delay at once; more get a 503.
pub const MAX_PARKED: usize = 16_384;

/// Declared bodies larger than this are not answered: `tiny_http` would drain them
/// through one buffer of the declared size, and an allocation that large can fail and
/// abort the process. The connection is closed instead (see the module documentation).
pub const MAX_DRAINABLE_BODY: usize = 1 << 30;

/// Why the server could not start or stopped with an error.
#[derive(Debug)]
pub enum ServeError {
    /// Binding the listening socket failed (address in use, permission denied...).
    Bind(SocketAddr, io::Error),
    /// Setting up the server failed.
    Io(String, io::Error),
    /// Registering a metric failed (a custom route or registry clashed with ours).
    Metric(MetricError),
    /// tiny_http's accept loop ended: the server can no longer take connections.
    AcceptLoopEnded(io::Error),
    /// The watchdog found the server broken beyond repair (the cause in words).
    Condemned(String),
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
            ServeError::Condemned(cause) => {
                write!(f, "watchdog: {cause}; exiting so a supervisor can restart")
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

/// Configures a [`Server`] before it binds: extra routes, a caller's registry.
///
/// ```no_run
/// use std::sync::Arc;
/// use tinyprom::config::Config;
/// use tinyprom::http::{Reply, Server};
/// use tinyprom::metrics::{Counter, Registry};
///
/// let registry = Arc::new(Registry::new());
/// let hellos = Counter::new();
/// registry.register("hellos_total", "Greetings sent.", hellos.clone()).unwrap();
/// let server = Server::builder(Config::default())
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
    config: Config,
    router: Router,
    registry: Option<Arc<Registry>>,
    listener: Option<TcpListener>,
    restarts: u64,
}

impl ServerBuilder {
    /// Adds a route answered by `handler` on a worker thread (keep it quick).
    pub fn route(
        mut self,
        path: &str,
        handler: impl Fn(&Request) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let handler: Handler = Arc::new(handler);
        self.router.add(path, Endpoint::Custom(handler));
        self
    }

    /// Renders (and adds tinyprom's own metrics to) this registry instead of a new one.
    pub fn registry(mut self, registry: Arc<Registry>) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Serves on this already bound socket instead of binding `listen_address` (the
    /// supervisor binds once and hands the socket to each serving process).
    pub fn listener(mut self, listener: TcpListener) -> Self {
        self.listener = Some(listener);
        self
    }

    /// The restarts of the serving process so far, exported as `tinyprom_restarts_total`.
    pub fn restarts(mut self, restarts: u64) -> Self {
        self.restarts = restarts;
        self
    }

    /// Registers the metrics, binds the listening socket and starts tiny_http's accept
    /// thread. Requests are answered once [`Server::run`] or [`Server::spawn`] starts
    /// the workers (until then they wait in the listen backlog).
    pub fn bind(self) -> Result<Server, ServeError> {
        let config = self.config;
        let registry = self.registry.unwrap_or_default();
        let red = Arc::new(RedMetrics::register(&registry, self.router.label_values())?);
        let scrapes: IndexedFamily<Counter> = IndexedFamily::new(
            &["format"],
            vec![
                [Format::Text, Format::OpenMetrics, Format::Protobuf]
                    .map(|f| f.name().to_string())
                    .into(),
            ],
            Counter::new,
        )?;
        registry.register(
            "tinyprom_scrapes_total",
            "Scrapes of the metrics endpoint, by the exposition format served.",
            scrapes.clone(),
        )?;
        // An info family: `tinyprom_build_info{version=...} 1`, a gauge in text 0.0.4,
        // the info family `tinyprom_build` in OpenMetrics.
        registry.register(
            "tinyprom_build_info",
            "A metric with a constant 1 value labeled by the version of tinyprom.",
            Info::new(&[("version", crate::VERSION)])?,
        )?;
        if config.process_metrics {
            registry.register_collector(ProcessCollector::new())?;
        }
        let restarts = Counter::new();
        restarts.inc_by(self.restarts);
        registry.register(
            "tinyprom_restarts_total",
            "Restarts of the serving process by tinyprom's supervisor (counters of the other metrics start again from zero at each).",
            restarts,
        )?;
        let listener = match self.listener {
            Some(listener) => listener,
            None => bind(config.listen_address, config.read_timeout)?,
        };
        let local_addr = listener
            .local_addr()
            .map_err(|e| ServeError::Io("reading the bound address".into(), e))?;
        let control = listener
            .try_clone()
            .map_err(|e| ServeError::Io("duplicating the listening socket".into(), e))?;
        let http = tiny_http::Server::from_listener(listener, None).map_err(|e| {
            ServeError::Io("starting tiny_http".into(), io::Error::other(e.to_string()))
        })?;
        let delay = DelayQueue::start(MAX_PARKED)
            .map_err(|e| ServeError::Io("starting the delay thread".into(), e))?;
        let guard = Guard::start(
            local_addr.port(),
            control.as_raw_fd(),
            GuardConfig {
                read_timeout: config.read_timeout,
                max_connections: config
                    .max_connections
                    .min(listen::fd_limit().map_or(usize::MAX, listen::connections_within)),
            },
            &registry,
        )
        .map_err(|e| ServeError::Io("starting the connection guard".into(), io::Error::other(e)))?;
        Ok(Server {
            http: Arc::new(http),
            control,
            local_addr,
            shared: Arc::new(Shared {
                router: self.router,
                registry,
                red,
                scrapes,
                delay,
                parked: Arc::new(AtomicUsize::new(0)),
                stopping: AtomicBool::new(false),
                finished: AtomicBool::new(false),
                busy_since: (0..config.max_workers).map(|_| AtomicU64::new(0)).collect(),
                epoch: Instant::now(),
                guard,
            }),
            workers: config.max_workers,
            shutdown_timeout: config.shutdown_timeout,
        })
    }
}

/// A bound server; call [`Server::run`] (blocking) or [`Server::spawn`].
pub struct Server {
    http: Arc<tiny_http::Server>,
    /// A second handle on the listening socket, used to shut it down on stop.
    control: TcpListener,
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    workers: usize,
    shutdown_timeout: Duration,
}

struct Shared {
    router: Router,
    registry: Arc<Registry>,
    red: Arc<RedMetrics>,
    scrapes: IndexedFamily<Counter>,
    delay: DelayQueue<Parked>,
    /// Requests parked in the delay queue or being answered by its thread.
    parked: Arc<AtomicUsize>,
    /// Set when shutdown begins: no new delays, listener closed.
    stopping: AtomicBool,
    /// Set when in-flight work is done (or the grace period is over): workers exit.
    finished: AtomicBool,
    /// Per worker: when its current request was received, in microseconds since
    /// `epoch` plus one; 0 while idle. Read by the watchdog and by shutdown, which
    /// waits for every worker to be idle.
    busy_since: Vec<AtomicU64>,
    epoch: Instant,
    guard: Guard,
}

impl Shared {
    /// Whether any worker is handling a request.
    fn busy(&self) -> bool {
        // Acquire: pairs with the worker's Release store of 0, so a request seen
        // finished here has finished its response too.
        self.busy_since
            .iter()
            .any(|t| t.load(Ordering::Acquire) != 0)
    }

    /// What the watchdog needs to know.
    fn readings(&self) -> Readings {
        let now = self.epoch.elapsed();
        Readings {
            zombies: self.guard.zombies(),
            busy_for: self
                .busy_since
                .iter()
                // Relaxed: a diagnostic reading; a stale value errs by one request.
                .map(|t| match t.load(Ordering::Relaxed) {
                    0 => None,
                    t => Some(now.saturating_sub(Duration::from_micros(t - 1))),
                })
                .collect(),
        }
    }
}

/// Binds `addr` and tunes the socket (see [`super::listen`]).
pub fn bind(addr: SocketAddr, read_timeout: Duration) -> Result<TcpListener, ServeError> {
    let listener = TcpListener::bind(addr).map_err(|e| ServeError::Bind(addr, e))?;
    listen::tune(&listener, read_timeout)
        .map_err(|e| ServeError::Io("tuning the listening socket".into(), e))?;
    Ok(listener)
}

impl Server {
    /// A builder for a server with the three built-in routes.
    pub fn builder(config: Config) -> ServerBuilder {
        ServerBuilder {
            router: Router::new(&config.telemetry_path),
            config,
            registry: None,
            listener: None,
            restarts: 0,
        }
    }

    /// Binds a server with the built-in routes and a new registry.
    pub fn bind(config: Config) -> Result<Server, ServeError> {
        Server::builder(config).bind()
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
        &self.shared.registry
    }

    /// Serves until `stop` becomes true, then shuts down gracefully (see the module
    /// documentation). Returns an error if the accept loop dies.
    pub fn run(self, stop: &AtomicBool) -> Result<(), ServeError> {
        let (fatal_tx, fatal_rx) = mpsc::channel::<ServeError>();
        let mut handles: Vec<JoinHandle<()>> = Vec::with_capacity(self.workers);
        for i in 0..self.workers {
            let http = Arc::clone(&self.http);
            let shared = Arc::clone(&self.shared);
            let fatal = fatal_tx.clone();
            let handle = std::thread::Builder::new()
                .name(format!("tinyprom-worker-{i}"))
                .spawn(move || {
                    if let Some(e) = work(i, &http, &shared) {
                        let _ = fatal.send(ServeError::AcceptLoopEnded(e));
                    }
                })
                .map_err(|e| ServeError::Io("starting a worker thread".into(), e));
            match handle {
                Ok(h) => handles.push(h),
                Err(e) => {
                    self.finish(handles);
                    return Err(e);
                }
            }
        }
        let watchdog = {
            let shared = Arc::clone(&self.shared);
            let fatal = fatal_tx.clone();
            let addr = self.local_addr;
            std::thread::Builder::new()
                .name("tinyprom-watchdog".into())
                .spawn(move || watch(addr, &shared, &fatal))
                .map_err(|e| ServeError::Io("starting the watchdog thread".into(), e))
        };
        // Not joined at shutdown: it notices `stopping` within 50 ms (or one probe).
        match watchdog {
            Ok(_detached) => {}
            Err(e) => {
                self.finish(handles);
                return Err(e);
            }
        }
        drop(fatal_tx);
        let mut result = Ok(());
        // Relaxed: the flag is polled; seeing it one iteration late is harmless.
        while !stop.load(Ordering::Relaxed) {
            match fatal_rx.recv_timeout(Duration::from_millis(20)) {
                Ok(e) => {
                    result = Err(e);
                    break;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        if result.is_err() {
            // Broken beyond repair: leave the listening socket open (a supervisor's next
            // process serves on it) and stuck threads alone; the process is about to exit.
            self.shared.finished.store(true, Ordering::SeqCst);
            return result;
        }
        self.finish(handles);
        result
    }

    /// Closes the listener, drains in-flight work within the shutdown timeout, stops
    /// the workers and the delay thread.
    fn finish(self, handles: Vec<JoinHandle<()>>) {
        // SeqCst: shutdown state (stopping, finished, parked, busy_since) is read together; one order.
        self.shared.stopping.store(true, Ordering::SeqCst);
        // SAFETY: shutdown(2) on a descriptor we own; it makes tiny_http's blocked
        // accept() fail, ending its accept loop, and refuses new connections.
        unsafe {
            libc::shutdown(self.control.as_raw_fd(), libc::SHUT_RDWR);
        }
        let deadline = Instant::now() + self.shutdown_timeout;
        while Instant::now() < deadline
            // SeqCst: shutdown state (stopping, finished, parked, busy_since) is read together; one order.
            && (self.shared.parked.load(Ordering::SeqCst) > 0
                || self.shared.busy())
        {
            std::thread::sleep(Duration::from_millis(2));
        }
        // SeqCst: shutdown state (stopping, finished, parked, busy_since) is read together; one order.
        self.shared.finished.store(true, Ordering::SeqCst);
        for h in handles {
            let _ = h.join();
        }
        self.shared.delay.close();
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
        // Relaxed: a polled flag or diagnostic reading; staleness only delays by one poll.
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_else(|_| {
            Err(ServeError::Io(
                "server thread".into(),
                io::Error::other("panicked"),
            ))
        })
    }
}

/// The watchdog thread: checks the server until shutdown and reports a condemnation.
fn watch(addr: SocketAddr, shared: &Shared, fatal: &mpsc::Sender<ServeError>) {
    let mut dog = Watchdog::new(addr);
    // SeqCst: shutdown state (stopping, finished, parked, busy_since) is read together; one order.
    while !shared.stopping.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(50));
        if !dog.due(Instant::now()) {
            continue;
        }
        if let Some(cause) = dog.check(&shared.readings()) {
            // SeqCst: shutdown state (stopping, finished, parked, busy_since) is read together; one order.
            if !shared.stopping.load(Ordering::SeqCst) {
                let _ = fatal.send(ServeError::Condemned(cause));
            }
            return;
        }
    }
}

/// A worker: takes requests until shutdown is finished. Returns the accept loop's
/// error if it died while the server was meant to be running.
fn work(index: usize, http: &tiny_http::Server, shared: &Shared) -> Option<io::Error> {
    let mut buf = Vec::with_capacity(16 * 1024);
    // SeqCst: shutdown state (stopping, finished, parked, busy_since) is read together; one order.
    while !shared.finished.load(Ordering::SeqCst) {
        match http.recv_timeout(Duration::from_millis(10)) {
            Ok(Some(request)) => {
                let received = Instant::now();
                let since = received.saturating_duration_since(shared.epoch).as_micros() as u64 + 1;
                // SeqCst: read together with `stopping` and `finished` by shutdown, so a
                // request taken before shutdown looked is seen busy.
                shared.busy_since[index].store(since, Ordering::SeqCst);
                // A panic here (a tiny_http assertion, a bug of ours) costs one
                // request, not the worker.
                let _ = catch_unwind(AssertUnwindSafe(|| {
                    handle(request, received, shared, &mut buf)
                }));
                // Release: publishes the finished response to `busy`'s Acquire load.
                shared.busy_since[index].store(0, Ordering::Release);
            }
            Ok(None) => {}
            // SeqCst: shutdown state (stopping, finished, parked, busy_since) is read together; one order.
            Err(e) if shared.stopping.load(Ordering::SeqCst) => {
                // The accept loop ending is how shutdown closes the listener.
                let _ = e;
            }
            Err(e) => return Some(e),
        }
    }
    None
}

/// A `/synthetic` request waiting for its delay.
struct Parked {
    request: Request,
    code: u16,
    method: usize,
    route: usize,
    received: Instant,
    red: Arc<RedMetrics>,
    parked: Arc<AtomicUsize>,
}

impl Due for Parked {
    fn run(self) {
        let code = respond_text(self.request, self.code, &self.code.to_string(), &[]);
        self.red
            .finish(self.method, self.route, code, self.received.elapsed());
        // SeqCst: shutdown state (stopping, finished, parked, busy_since) is read together; one order.
        self.parked.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The status codes `/synthetic` draws from, uniformly.
pub const SYNTHETIC_CODES: [u16; 8] = [200, 200, 200, 200, 200, 400, 401, 500];

/// What to do about a request's body, which no endpoint reads.
#[derive(Debug, PartialEq, Eq)]
enum Body {
    /// None, or already buffered whole by tiny_http (up to 1 KiB without
    /// `Expect: 100-continue`): nothing to drain.
    Harmless,
    /// tiny_http would drain it after the response: shut the reading side first.
    Refuse,
    /// Too large to drain at all: close the connection unanswered.
    Abandon,
}

fn body_disposition(request: &Request) -> Body {
    let chunked = header(request, "Transfer-Encoding").is_some();
    let expects = header(request, "Expect").is_some();
    match request.body_length() {
        _ if chunked => Body::Refuse,
        Some(n) if n > MAX_DRAINABLE_BODY => Body::Abandon,
        Some(n) if n > 1024 || (n > 0 && expects) => Body::Refuse,
        _ => Body::Harmless,
    }
}

fn handle(request: Request, received: Instant, shared: &Shared, buf: &mut Vec<u8>) {
    let disposition = body_disposition(&request);
    if disposition != Body::Harmless {
        let Some(&peer) = request.remote_addr() else {
            return;
        };
        if disposition == Body::Abandon {
            shared.guard.abandon(peer);
            // Dropping the request would run tiny_http's drain, whose buffer of the
            // declared size cannot be allocated. Leaked instead: the connection is
            // shut, its thread is wedged and counted as a zombie by the guard, and the
            // watchdog replaces the process before such leaks add up.
            std::mem::forget(request);
            return;
        }
        shared.guard.refuse_body(peer);
    }
    shared.red.start();
    let method = method_index(request.method());
    let route = shared.router.find(request.url());
    let get_or_head = method <= 1;
    let code = match shared.router.endpoint(route) {
        None => respond_text(request, 404, "404 page not found\n", &[]),
        Some(_) if !get_or_head => respond_text(
            request,
            405,
            "405 method not allowed\n",
            &[("Allow", "GET, HEAD")],
        ),
        Some(Endpoint::Up) => respond_text(request, 200, "I am running!", &[]),
        Some(Endpoint::Metrics) => {
            let accept = header(&request, "Accept");
            let format = negotiate(accept);
            if let Some(c) = shared.scrapes.get(&[format as usize]) {
                c.inc();
            }
            buf.clear();
            shared.registry.encode(buf, format);
            respond_bytes(request, 200, format.content_type(), buf, &[])
        }
        Some(Endpoint::Synthetic) => {
            // SeqCst: shutdown state (stopping, finished, parked, busy_since) is read together; one order.
            if shared.stopping.load(Ordering::SeqCst) {
                respond_text(request, 503, "503 shutting down\n", &[])
            } else {
                let delay = Duration::from_millis(fastrand::u64(1..=50));
                let code = SYNTHETIC_CODES[fastrand::usize(..SYNTHETIC_CODES.len())];
                let job = Parked {
                    request,
                    code,
                    method,
                    route,
                    received,
                    red: Arc::clone(&shared.red),
                    parked: Arc::clone(&shared.parked),
                };
                // SeqCst: shutdown state (stopping, finished, parked, busy_since) is read together; one order.
                shared.parked.fetch_add(1, Ordering::SeqCst);
                match shared.delay.schedule(received + delay, job) {
                    Ok(()) => return, // answered and recorded by the delay thread
                    Err(job) => {
                        // SeqCst: shutdown state (stopping, finished, parked, busy_since) is read together; one order.
                        shared.parked.fetch_sub(1, Ordering::SeqCst);
                        respond_text(job.request, 503, "503 too many requests waiting\n", &[])
                    }
                }
            }
        }
        Some(Endpoint::Custom(handler)) => {
            let reply = catch_unwind(AssertUnwindSafe(|| handler(&request)))
                .unwrap_or_else(|_| Reply::text(500, "500 handler panicked\n"));
            let status = if (100..=599).contains(&reply.status) {
                reply.status
            } else {
                500
            };
            respond_bytes(request, status, &reply.content_type, &reply.body, &[])
        }
    };
    shared.red.finish(method, route, code, received.elapsed());
}

fn header<'r>(request: &'r Request, name: &'static str) -> Option<&'r str> {
    request
        .headers()
        .iter()
        .find(|h| h.field.equiv(name))
        .map(|h| h.value.as_str())
}

fn respond_text(request: Request, code: u16, body: &str, extra: &[(&str, &str)]) -> u16 {
    respond_bytes(
        request,
        code,
        "text/plain; charset=utf-8",
        body.as_bytes(),
        extra,
    )
}

/// Writes a response and returns its status code. A client that went away is not an
/// error worth more than that: the response was attempted and is recorded as such.
fn respond_bytes(
    request: Request,
    code: u16,
    content_type: &str,
    body: &[u8],
    extra: &[(&str, &str)],
) -> u16 {
    let mut headers = Vec::with_capacity(1 + extra.len());
    for (name, value) in [("Content-Type", content_type)].iter().chain(extra) {
        if let Ok(h) = Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            headers.push(h);
        }
    }
    let response = Response::new(StatusCode(code), headers, body, Some(body.len()), None);
    let _ = request.respond(response);
    code
}
