//! Rendering metrics in the Prometheus text format 0.0.4 and OpenMetrics 1.0.
//!
//! The metric types in [`crate::metrics`] hold values; this module owns every byte of
//! the wire format, so the format rules live in one place (see the [`values`] functions
//! for floats and escaping, [`Encoder`] for line structure, [`negotiate()`] for choosing a
//! format from an `Accept` header). A rendered scrape is compressed by [`gzip`] when
//! the scraper's `Accept-Encoding` asks for it ([`content_coding`]).

pub mod content_coding;
mod encoder;
pub mod gzip;
pub mod negotiate;
pub mod values;

pub use encoder::{Encoder, Format, MetricKind, Value};
pub use negotiate::negotiate;
