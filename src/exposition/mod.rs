//! Rendering metrics in the Prometheus text format 0.0.4, OpenMetrics 1.0 and the
//! protobuf format.
//!
//! The metric types in [`crate::metrics`] hold values; this module owns every byte of
//! the wire format, so the format rules live in one place (`values.rs` for floats and
//! escaping, [`Encoder`] for structure, `protobuf.rs` for the protobuf
//! wire format, [`negotiate()`] for choosing a format from an `Accept` header). A
//! rendered scrape is compressed by [`gzip`] when the scraper's `Accept-Encoding` asks
//! for it ([`content_coding`]).

mod bounds;
pub mod content_coding;
mod encoder;
mod exemplars;
pub mod gzip;
pub mod negotiate;
mod protobuf;
mod room;
mod samples;
pub(crate) mod values;

#[doc(hidden)]
pub use bounds::BoundLabels;
pub use encoder::{Encoder, Format, MetricKind, SummaryEncoder, Value};
pub use negotiate::negotiate;
#[doc(hidden)]
pub use samples::{BucketRun, HistogramView, NativeBuckets};
pub use values::render_label_pairs;
