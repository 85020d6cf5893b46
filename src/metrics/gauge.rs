//! [`Gauge`]: a floating-point value that goes up and down.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Metric, TypedMetric};
use crate::exposition::{Encoder, MetricKind};

/// A value that can go up and down (in-flight requests, temperatures), stored as the
/// bits of an `f64` in one atomic word.
///
/// ```
/// use tinyprom::metrics::Gauge;
/// let in_flight = Gauge::new();
/// in_flight.inc();
/// in_flight.add(2.5);
/// in_flight.dec();
/// assert_eq!(in_flight.get(), 2.5);
/// in_flight.set(-1.0);
/// assert_eq!(in_flight.get(), -1.0);
/// ```
#[derive(Clone, Debug)]
pub struct Gauge {
    // Relaxed everywhere: the gauge publishes no other memory, and the compare-exchange
    // loop in `add` makes concurrent additions exact.
    bits: Arc<AtomicU64>,
}

impl Default for Gauge {
    fn default() -> Self {
        Gauge {
            bits: Arc::new(AtomicU64::new(0f64.to_bits())),
        }
    }
}

impl Gauge {
    /// A gauge at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the value.
    pub fn set(&self, v: f64) {
        self.bits.store(v.to_bits(), Ordering::Relaxed);
    }

    /// Adds `delta` (negative to subtract).
    #[inline]
    pub fn add(&self, delta: f64) {
        add_f64(&self.bits, delta);
    }

    /// Subtracts `delta`.
    pub fn sub(&self, delta: f64) {
        self.add(-delta);
    }

    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.add(1.0);
    }

    /// Subtracts one.
    #[inline]
    pub fn dec(&self) {
        self.add(-1.0);
    }

    /// The current value.
    pub fn get(&self) -> f64 {
        f64::from_bits(self.bits.load(Ordering::Relaxed))
    }
}

/// Atomically adds `delta` to the `f64` whose bits `cell` holds (compare-exchange loop;
/// Relaxed because callers order their publication through other atomics).
#[inline]
pub(crate) fn add_f64(cell: &AtomicU64, delta: f64) {
    let mut current = cell.load(Ordering::Relaxed);
    loop {
        let next = (f64::from_bits(current) + delta).to_bits();
        match cell.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return,
            Err(actual) => current = actual,
        }
    }
}

impl Metric for Gauge {
    fn kind(&self) -> MetricKind {
        MetricKind::Gauge
    }

    fn encode(&self, name: &str, labels: &str, enc: &mut Encoder<'_>) {
        enc.sample_f64(name, "", labels, self.get());
    }
}

impl TypedMetric for Gauge {
    const KIND: MetricKind = MetricKind::Gauge;
}
