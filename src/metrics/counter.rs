//! [`Counter`]: a monotonically increasing integer total.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use super::exemplar::ExemplarStore;
use super::{Exemplar, Metric, MetricError, TypedMetric, check_exemplar_labels};
use crate::exposition::{Encoder, Format, MetricKind};

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
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    // Relaxed everywhere: a counter is a single independent value; no other memory is
    // published through it, and fetch_add never loses an increment.
    value: AtomicU64,
    /// When the counter was created: its start timestamp.
    created: SystemTime,
    /// Its exemplar, allocated with the first one (boxed: a counter that never gets
    /// one holds a pointer, not the store).
    exemplar: OnceLock<Box<ExemplarStore>>,
}

impl Default for Inner {
    fn default() -> Self {
        Inner {
            value: AtomicU64::new(0),
            created: SystemTime::now(),
            exemplar: OnceLock::new(),
        }
    }
}

impl Counter {
    /// A counter at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.inner.value.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n`.
    #[inline]
    pub fn inc_by(&self, n: u64) {
        self.inner.value.fetch_add(n, Ordering::Relaxed);
    }

    /// Adds one and keeps `labels` as the counter's exemplar (replacing the one
    /// before); see [`Counter::inc_by_with_exemplar`].
    pub fn inc_with_exemplar(&self, labels: &[(&str, &str)]) -> Result<(), MetricError> {
        self.inc_by_with_exemplar(1, labels)
    }

    /// Adds `n` and keeps `labels` (a trace id, typically) as the counter's exemplar,
    /// with value `n` and the time now. The increment always happens; the exemplar is
    /// refused with an error when its labels are (over
    /// [`MAX_EXEMPLAR_CHARS`](super::MAX_EXEMPLAR_CHARS) characters, or an invalid
    /// name), and dropped when a scrape is reading it at that moment.
    ///
    /// ```
    /// use tinyprom::exposition::Format;
    /// use tinyprom::metrics::{Counter, Registry};
    /// let registry = Registry::new();
    /// let orders = Counter::new();
    /// registry.register("orders_total", "Orders.", orders.clone()).unwrap();
    /// orders.inc_by_with_exemplar(2, &[("trace_id", "abc")]).unwrap();
    /// assert!(registry.render(Format::OpenMetrics).contains("orders_total 2 # {trace_id=\"abc\"} 2 "));
    /// assert!(registry.render(Format::Text).contains("orders_total 2\n"));
    /// ```
    pub fn inc_by_with_exemplar(&self, n: u64, labels: &[(&str, &str)]) -> Result<(), MetricError> {
        let checked = check_exemplar_labels(labels);
        self.inc_by(n);
        if checked.is_ok() {
            self.inner
                .exemplar
                .get_or_init(|| Box::new(ExemplarStore::new(1, 0)))
                .offer(0, labels, n as f64);
        }
        checked
    }

    /// The current total.
    pub fn get(&self) -> u64 {
        self.inner.value.load(Ordering::Relaxed)
    }

    /// The latest exemplar, if any.
    pub fn exemplar(&self) -> Option<Exemplar> {
        self.inner.exemplar.get()?.read().classic()[0].clone()
    }

    /// When the counter was created (its start timestamp).
    pub fn created(&self) -> SystemTime {
        self.inner.created
    }
}

impl Metric for Counter {
    fn kind(&self) -> MetricKind {
        MetricKind::Counter
    }

    fn encode(&self, name: &str, labels: &str, enc: &mut Encoder<'_>) {
        // Locked before the value is read: the exemplar's increment is in it. Text
        // 0.0.4 has no exemplars: not locked for it.
        let held = match enc.format() {
            Format::Text => None,
            _ => self.inner.exemplar.get().map(|store| store.read()),
        };
        let exemplar = held.as_ref().and_then(|h| h.classic()[0].as_ref());
        enc.counter_with(name, labels, self.get(), exemplar, Some(self.inner.created));
    }
}

impl TypedMetric for Counter {
    const KIND: MetricKind = MetricKind::Counter;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value, the creation time and a pointer's worth for the exemplar: a counter
    /// that never gets one does not carry an exemplar store.
    #[test]
    fn a_counter_without_exemplars_stays_small() {
        assert!(
            std::mem::size_of::<Inner>() <= 40,
            "{}",
            std::mem::size_of::<Inner>()
        );
        let c = Counter::new();
        assert!(c.exemplar().is_none());
        assert!(
            c.inc_with_exemplar(&[("trace_id", &"x".repeat(200))])
                .is_err()
        );
        assert_eq!(
            (c.get(), c.exemplar()),
            (1, None),
            "counted, exemplar refused"
        );
        c.inc_by_with_exemplar(2, &[("trace_id", "a")]).unwrap();
        c.inc_by_with_exemplar(5, &[("trace_id", "b")]).unwrap();
        let e = c.exemplar().unwrap();
        assert_eq!((c.get(), e.labels(), e.value()), (8, "trace_id=\"b\"", 5.0));
        assert!(e.time() >= c.created());
    }
}
