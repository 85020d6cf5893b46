//! The gate's own metrics: what happens to connections, and what it refuses.

use crate::metrics::{Counter, Gauge, IndexedFamily, MetricError, Registry};

/// Why a connection was closed (the `reason` label of `tinyprom_connections_closed_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// The client closed it (or reset it).
    Client,
    /// After a response the connection could not outlive (`Connection: close`, HTTP/1.0
    /// without keep-alive, a refusal).
    Done,
    /// Idle between requests for the read timeout.
    Idle,
    /// A head not complete within the read timeout.
    ReadTimeout,
    /// A client that stopped reading its response.
    WriteTimeout,
    /// Closed to make room for a new connection at the connection bound.
    Evicted,
    /// Closed by shutdown.
    Shutdown,
}

const CLOSED: [(Closed, &str); 7] = [
    (Closed::Client, "client"),
    (Closed::Done, "done"),
    (Closed::Idle, "idle_timeout"),
    (Closed::ReadTimeout, "read_timeout"),
    (Closed::WriteTimeout, "write_timeout"),
    (Closed::Evicted, "evicted"),
    (Closed::Shutdown, "shutdown"),
];

/// The statuses the gate answers by itself (the `code` label of
/// `tinyprom_requests_refused_total`).
const REFUSED: [u16; 10] = [400, 408, 411, 413, 414, 417, 431, 502, 503, 505];

/// The gate's metrics, registered once.
#[derive(Clone)]
pub struct GateMetrics {
    open: Gauge,
    accepted: Counter,
    closed: IndexedFamily<Counter>,
    rejected: Counter,
    refused: IndexedFamily<Counter>,
}

impl GateMetrics {
    /// Creates and registers the metrics.
    pub fn register(registry: &Registry) -> Result<GateMetrics, MetricError> {
        let labels = |values: Vec<String>| vec![values];
        let metrics = GateMetrics {
            open: Gauge::new(),
            accepted: Counter::new(),
            closed: IndexedFamily::new(
                &["reason"],
                labels(CLOSED.iter().map(|(_, n)| n.to_string()).collect()),
                Counter::new,
            )?,
            rejected: Counter::new(),
            refused: IndexedFamily::new(
                &["code"],
                labels(REFUSED.iter().map(u16::to_string).collect()),
                Counter::new,
            )?,
        };
        registry.register(
            "tinyprom_connections_open",
            "Client connections open now.",
            metrics.open.clone(),
        )?;
        registry.register(
            "tinyprom_connections_accepted_total",
            "Client connections accepted.",
            metrics.accepted.clone(),
        )?;
        registry.register(
            "tinyprom_connections_closed_total",
            "Client connections closed, by reason.",
            metrics.closed.clone(),
        )?;
        registry.register(
            "tinyprom_connections_rejected_total",
            "New connections turned away with a 503 because every connection at the bound had a request in progress.",
            metrics.rejected.clone(),
        )?;
        registry.register(
            "tinyprom_requests_refused_total",
            "Requests the gate answered itself without passing them on, by status code.",
            metrics.refused.clone(),
        )?;
        Ok(metrics)
    }

    /// A connection was accepted.
    pub fn accepted(&self) {
        self.accepted.inc();
        self.open.inc();
    }

    /// An accepted connection was closed.
    pub fn closed(&self, why: Closed) {
        if let Some(c) = CLOSED
            .iter()
            .position(|(c, _)| *c == why)
            .and_then(|i| self.closed.get(&[i]))
        {
            c.inc();
        }
        self.open.dec();
    }

    /// A new connection was turned away at the bound.
    pub fn rejected(&self) {
        self.rejected.inc();
    }

    /// The gate answered a request itself with `status`.
    pub fn refused(&self, status: u16) {
        if let Some(c) = REFUSED
            .iter()
            .position(|c| *c == status)
            .and_then(|i| self.refused.get(&[i]))
        {
            c.inc();
        }
    }
}
