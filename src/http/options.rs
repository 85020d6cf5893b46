//! What a server is built from: the HTTP-side settings, independent of how they were
//! given (the binary's `--web.*` flags are parsed into the `http` field of its
//! configuration, in `src/bin/tinyprom/config.rs`).

use std::net::SocketAddr;
use std::time::Duration;

/// The default connection bound: far more than the scrapers and probes an exporter
/// serves; an idle connection costs the gate a few hundred bytes and no thread.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;

/// The default worker count: handlers never block (the `/synthetic` delay is held in
/// the gate's timer heap, before a worker sees the request), so a few workers keep
/// two cores busy.
pub const DEFAULT_MAX_WORKERS: usize = 4;

/// A server's settings.
///
/// ```
/// use tinyprom::http::Options;
/// let options = Options {
///     listen_address: "127.0.0.1:0".parse().unwrap(),
///     ..Options::default()
/// };
/// assert_eq!(options.telemetry_path, "/metrics");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// The address to listen on.
    pub listen_address: SocketAddr,
    /// The path of the metrics endpoint.
    pub telemetry_path: String,
    /// Worker threads answering requests.
    pub max_workers: usize,
    /// Whether to export `process_*` metrics.
    pub process_metrics: bool,
    /// How long requests in progress may take to finish once stop is asked; the
    /// server returns within this plus half a second, whatever clients do.
    pub shutdown_timeout: Duration,
    /// How long a client may take to send a request head, and may sit idle between
    /// requests, before its connection is closed.
    pub read_timeout: Duration,
    /// The most client connections open at once (see the gate's connection policy).
    pub max_connections: usize,
    /// Whether OpenMetrics scrapes carry `_created` samples (see
    /// [`Registry::set_openmetrics_created`](crate::metrics::Registry::set_openmetrics_created)).
    pub openmetrics_created: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            listen_address: SocketAddr::from(([0, 0, 0, 0], 8000)),
            telemetry_path: "/metrics".into(),
            max_workers: DEFAULT_MAX_WORKERS,
            process_metrics: true,
            shutdown_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(10),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            openmetrics_created: false,
        }
    }
}
