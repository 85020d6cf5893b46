//! The HTTP side: a blocking `tiny_http` server with a fixed worker pool, its routes,
//! and the RED instrumentation every request goes through.
//!
//! Blocking on purpose: a few threads, no async runtime, a small binary. The one slow
//! endpoint (`/synthetic`) is answered from a timer thread so it cannot starve the
//! others; see [`server`] for the request path and the shutdown sequence.

mod delay;
mod guard;
mod landing;
pub mod listen;
mod red;
pub mod routes;
pub mod server;
pub mod watchdog;

pub use routes::{METHODS, Reply, Router, UNMATCHED_ROUTE};
pub use server::{RunningServer, ServeError, Server, ServerBuilder};
/// The `tiny_http` crate, re-exported for custom route handlers' request type.
pub use tiny_http;
