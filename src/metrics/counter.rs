//! [`Counter`]: a monotonically increasing integer total.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Metric, TypedMetric};
use crate::exposition::{Encoder, MetricKind};

/// A monotonically increasing count, shared by cloning the handle.
///
/// ```
/// use tinyprom::metrics::{Counter, Registry};
/// let registry = Registry::new();
/// let jobs = Counter::new();
/// registry.register("jobs_total", "Jobs run.", jobs.clone()).unwrap();
/// jobs.inc();
/// jobs.inc_by(2);
/// assert_eq!(jobs.get(), 3);
/// assert!(registry.render_text().contains("jobs_total 3\n"));
/// ```
#[derive(Clone, Debug, Default)]
pub struct Counter {
    // Relaxed everywhere: a counter is a single independent value; no other memory is
    // published through it, and fetch_add never loses an increment.
    value: Arc<AtomicU64>,
}

impl Counter {
    /// A counter at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.value.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n`.
    #[inline]
    pub fn inc_by(&self, n: u64) {
        self.value.fetch_add(n, Ordering::Relaxed);
    }

    /// The current total.
    pub fn get(&self) -> u64 {
        self.value.load(Ordering::Relaxed)
    }
}

impl Metric for Counter {
    fn kind(&self) -> MetricKind {
        MetricKind::Counter
    }

    fn encode(&self, name: &str, labels: &str, enc: &mut Encoder<'_>) {
        enc.counter(name, labels, self.get());
    }
}

impl TypedMetric for Counter {
    const KIND: MetricKind = MetricKind::Counter;
}
