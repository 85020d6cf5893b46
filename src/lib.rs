//! tinyprom: a tiny Prometheus exporter and the metrics library it is built on.
//!
//! * [`metrics`]: non-blocking counters, gauges, histograms, summaries, info and callback
//!   metrics, labeled families, a registry.
//! * [`exposition`]: the text format 0.0.4, OpenMetrics 1.0 and protobuf renderers,
//!   content negotiation, and [`exposition::Scraper`], which answers a scrape from any
//!   web framework exactly as the built-in `/metrics` does.
//! * [`http`]: a gate that owns the public socket and vets every request, in front of
//!   a fixed-pool `tiny_http` server serving `/up`, `/synthetic` and `/metrics`,
//!   instrumented with the RED method.
//! * [`process`]: process metrics read from `/proc`.
//! * [`push`]: pushing a registry to a Prometheus Pushgateway (batch jobs), over plain
//!   `http://` with std's `TcpStream`.
//! * `facade` (cargo feature `metrics-facade`): a recorder for the `metrics` crate's
//!   macros, backed by a registry.
//!
//! The `tinyprom` binary's own code (flag parsing, the supervisor, signal handling, the
//! health check) lives in the binary, not here.
//!
//! # Embedding
//!
//! Register your own metrics in a [`metrics::Registry`] and render it yourself:
//!
//! ```
//! use tinyprom::exposition::Format;
//! use tinyprom::metrics::{Counter, Family, Histogram, Registry};
//!
//! let registry = Registry::new();
//! let jobs: Family<Counter> = Family::new(&["queue"]).unwrap();
//! registry.register("jobs_total", "Jobs run.", jobs.clone()).unwrap();
//! let latency = Histogram::new(&[0.1, 1.0]).unwrap();
//! registry
//!     .register_with_unit("job_duration_seconds", "Job latency.", "seconds", latency.clone())
//!     .unwrap();
//!
//! jobs.with_label_values(&["mail"]).unwrap().inc();
//! latency.time(|| { /* the job */ });
//!
//! let text = registry.render(Format::Text); // Prometheus text 0.0.4
//! assert!(text.contains("jobs_total{queue=\"mail\"} 1\n"));
//! let om = registry.render(Format::OpenMetrics); // OpenMetrics 1.0
//! assert!(om.contains("# TYPE jobs counter\n") && om.ends_with("# EOF\n"));
//! ```
//!
//! or serve it, with routes of your own, from tinyprom's server on a background thread
//! (see [`http::ServerBuilder`]; `/metrics` then negotiates the format with the
//! scraper):
//!
//! ```
//! use std::sync::Arc;
//! use tinyprom::http::{Options, Reply, Server};
//! use tinyprom::metrics::{Counter, Registry};
//!
//! let registry = Arc::new(Registry::new());
//! let hellos = Counter::new();
//! registry.register("hellos_total", "Greetings sent.", hellos.clone()).unwrap();
//! let options = Options {
//!     listen_address: "127.0.0.1:0".parse().unwrap(),
//!     ..Options::default()
//! };
//! let server = Server::builder(options)
//!     .registry(Arc::clone(&registry))
//!     .route("/hello", move |_request| {
//!         hellos.inc();
//!         Reply::text(200, "hello\n")
//!     })
//!     .bind()
//!     .unwrap();
//! println!("serving on http://{}", server.local_addr());
//! let running = server.spawn().unwrap();
//! running.stop().unwrap();
//! ```
//!
//! or answer scrapes from the framework your program already runs (axum, hyper, ...)
//! with [`exposition::Scraper`].
//!
//! The `examples/` directory has all three as complete programs.

#![warn(missing_docs)]

pub mod exposition;
#[cfg(feature = "metrics-facade")]
pub mod facade;
pub mod http;
pub mod metrics;
pub mod process;
pub mod push;

/// The crate version, as reported by `--version` and `tinyprom_build_info`.
///
/// ```
/// assert_eq!(tinyprom::VERSION, env!("CARGO_PKG_VERSION"));
/// ```
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
