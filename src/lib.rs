//! tinyprom: a tiny Prometheus exporter and the metrics library it is built on.
//!
//! * [`metrics`]: lock-free counters, gauges, histograms, labeled families, a registry.
//! * [`exposition`]: the text format 0.0.4 and OpenMetrics renderers, content negotiation.
//! * [`http`]: a blocking, fixed-pool HTTP server on `tiny_http` serving `/up`,
//!   `/synthetic` and `/metrics`, instrumented with the RED method.
//! * [`process`]: process metrics read from `/proc`.
//! * [`config`]: command-line and environment configuration of the binary.
//! * [`supervisor`]: the parent process that restarts a broken serving process.

#![warn(missing_docs)]

pub mod config;
pub mod exposition;
pub mod health;
pub mod http;
pub mod metrics;
pub mod process;
pub mod signals;
pub mod supervisor;

/// The crate version, as reported by `--version` and `tinyprom_build_info`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
