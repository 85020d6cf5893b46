//! Rendering metrics in the Prometheus text format 0.0.4, OpenMetrics 1.0 and the
//! protobuf format.
//!
//! The metric types in [`crate::metrics`] hold values; this module owns every byte of
//! the wire format, so the format rules live in one place (`values.rs` for floats and
//! escaping, [`Encoder`] for structure, `protobuf.rs` for the protobuf
//! wire format, [`negotiate()`] for choosing a format from an `Accept` header,
//! [`Escaping`] for names outside the legacy character set, [`NameFilter`] for
//! `name[]`). A rendered scrape is compressed by [`gzip`] when the scraper's
//! `Accept-Encoding` asks for it ([`content_coding`]). [`Scraper`] puts all of it
//! together into one HTTP answer, for the built-in `/metrics` and any other framework.

mod bounds;
pub mod content_coding;
mod encoder;
pub(crate) mod escaping;
mod exemplars;
mod filter;
pub mod gzip;
pub mod negotiate;
mod protobuf;
mod room;
mod samples;
mod scrape;
pub(crate) mod values;

#[doc(hidden)]
pub use bounds::BoundLabels;
pub use encoder::{Encoder, Format, MetricKind, SummaryEncoder, Value};
pub use escaping::Escaping;
pub use filter::NameFilter;
pub use negotiate::{Negotiated, negotiate, negotiate_escaping};
#[doc(hidden)]
pub use samples::{BucketRun, HistogramView, NativeBuckets};
pub use scrape::{Scrape, ScrapeBuffers, ScrapeRequest, Scraper};
pub use values::render_label_pairs;
