//! Hand-written, non-blocking metric types and the registry that renders them.
//!
//! Why not a metrics crate: the request path of an exporter should cost a few atomic
//! instructions, a scrape must never show a torn histogram, and the binary must stay
//! small. Every type here is a cheap-to-clone handle around atomics; observing never
//! locks, allocates or hashes. Rendering is delegated to [`crate::exposition`].
//!
//! * [`Counter`], [`Gauge`], [`Histogram`], [`Summary`]: single series you update.
//! * [`Info`]: constant labels describing the target (build information).
//! * [`Exemplar`]: a trace id (or any labels) kept beside the counts of a histogram
//!   bucket or a counter ([`Histogram::observe_with_exemplar`],
//!   [`Counter::inc_with_exemplar`]).
//! * [`CallbackGauge`], [`CallbackCounter`]: values computed by a closure at scrape time.
//! * [`Family`]: series keyed by label values known only at run time.
//! * [`IndexedFamily`]: series keyed by positions in label value lists known up front.
//! * [`Registry`]: named families, rendered in registration order; [`default_registry`]
//!   is a process-wide one.

mod callback;
mod counter;
mod error;
mod exemplar;
mod family;
mod gauge;
mod histogram;
mod indexed;
mod info;
mod name;
mod prefetch;
mod registry;
mod summary;
mod timer;

pub use callback::{CallbackCounter, CallbackGauge};
pub use counter::Counter;
pub use error::MetricError;
#[doc(hidden)]
pub use exemplar::ExemplarsHeld;
pub use exemplar::{Exemplar, MAX_EXEMPLAR_CHARS, check_exemplar_labels};
pub use family::{DEFAULT_MAX_SERIES, Family};
pub use gauge::Gauge;
pub use histogram::{
    Buckets, Histogram, HistogramSnapshot, HistogramTimer, NativeOptions, NativeSnapshot,
};
pub use indexed::IndexedFamily;
pub use info::Info;
pub use name::{validate_label_name, validate_label_names, validate_metric_name};
pub use registry::{Collector, Registry, default_registry};
pub use summary::{Quantiles, Summary, SummarySnapshot, SummaryTimer};
pub use timer::{Observe, Timer};

use crate::exposition::{Encoder, MetricKind};

/// Anything a [`Registry`] can render as one family. Implement it to expose a value
/// of your own type; the [`Encoder`] writes the bytes.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use tinyprom::exposition::{Encoder, MetricKind};
/// use tinyprom::metrics::{Metric, Registry};
///
/// /// Bytes in use, with a fixed label.
/// struct Pool(AtomicU64);
///
/// impl Metric for Pool {
///     fn kind(&self) -> MetricKind {
///         MetricKind::Gauge
///     }
///     fn encode(&self, name: &str, _labels: &str, enc: &mut Encoder<'_>) {
///         enc.sample_u64(name, "", "pool=\"main\"", self.0.load(Ordering::Relaxed));
///     }
/// }
///
/// let registry = Registry::new();
/// registry.register("pool_bytes", "Bytes in use.", Pool(AtomicU64::new(4096))).unwrap();
/// assert!(registry.render_text().ends_with("pool_bytes{pool=\"main\"} 4096\n"));
/// ```
pub trait Metric: Send + Sync + 'static {
    /// The family type written on the `# TYPE` line.
    fn kind(&self) -> MetricKind;
    /// Writes this metric's samples (not the HELP/TYPE lines) named `name`, with the
    /// pre-rendered, escaped label pairs `labels` (possibly empty).
    fn encode(&self, name: &str, labels: &str, enc: &mut Encoder<'_>);
    /// A hint that [`Metric::encode`] comes soon: a metric whose state lives behind a
    /// pointer may ask the CPU to fetch it meanwhile. Families call it on the next
    /// series while they encode the current one. The default does nothing.
    #[inline]
    fn prefetch(&self) {}
}

/// A metric type whose kind is known statically, so families of it know theirs.
///
/// ```
/// use tinyprom::exposition::MetricKind;
/// use tinyprom::metrics::{Summary, TypedMetric};
/// assert_eq!(Summary::KIND, MetricKind::Summary);
/// ```
pub trait TypedMetric: Metric {
    /// The kind of every metric of this type.
    const KIND: MetricKind;
}
