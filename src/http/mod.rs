//! The HTTP side: the gate that owns the public socket, tiny_http behind it with a
//! fixed worker pool, the routes, and the RED instrumentation every request goes
//! through.
//!
//! Blocking on purpose where it is simple: tiny_http's workers answer requests with
//! `recv()`, no async runtime. The one place that must never block is the front door,
//! so the gate (see `gate`) is a single poll loop over non-blocking sockets: it reads
//! and vets every request, passes it to tiny_http over a private socket, and writes
//! the responses back in order. See `server` for the lifecycle and the shutdown
//! ordering, `request` for the request path.

mod batch;
mod bootstrap;
mod gate;
mod landing;
mod listen;
mod options;
mod own_metrics;
mod protocol;
mod red;
mod request;
mod routes;
mod server;
mod traceparent;

pub use options::{DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_WORKERS, Options};
pub use request::SYNTHETIC_CODES;
pub use routes::{InvalidHeader, METHODS, Reply, UNMATCHED_ROUTE, peer_addr};
pub use server::{RunningServer, ServeError, Server, ServerBuilder, bind};
/// The `tiny_http` crate, re-exported for custom route handlers' request type.
pub use tiny_http;
pub use traceparent::TraceIds;
