//! One family of the facade: the tinyprom [`Family`] behind a metric name, the
//! [`Collector`] that renders it with its current HELP and unit, and the handles the
//! `metrics` macros get for its series.
//!
//! A family is registered as a collector rather than a plain metric because the
//! `metrics` crate lets `describe_*` come after the first use of a name: the HELP text
//! and unit are read at scrape time, not fixed at registration.

use std::sync::{Arc, RwLock};

use ::metrics::{CounterFn, GaugeFn, HistogramFn};

use crate::exposition::{Encoder, MetricKind};
use crate::metrics::{Collector, Counter, Family, Gauge, Histogram, Metric};

/// A family's HELP text and unit, as the last `describe_*` call for its name gave them.
#[derive(Default)]
pub struct Description {
    pub help: String,
    pub unit: Option<&'static str>,
}

/// Shared between the recorder (which updates it) and the collector (which reads it).
pub type SharedDescription = Arc<RwLock<Description>>;

/// The family of one metric name, of one of the three kinds the facade has.
#[derive(Clone)]
pub enum Kinded {
    Counter(Family<Counter>),
    Gauge(Family<Gauge>),
    Histogram(Family<Histogram>),
}

impl Kinded {
    pub fn kind(&self) -> MetricKind {
        match self {
            Kinded::Counter(_) => MetricKind::Counter,
            Kinded::Gauge(_) => MetricKind::Gauge,
            Kinded::Histogram(_) => MetricKind::Histogram,
        }
    }
}

/// Renders one family: its header from the shared description, then its series.
pub struct FamilyCollector {
    pub name: String,
    pub description: SharedDescription,
    pub family: Kinded,
}

impl Collector for FamilyCollector {
    fn families(&self) -> Vec<(String, MetricKind)> {
        vec![(self.name.clone(), self.family.kind())]
    }

    fn encode(&self, enc: &mut Encoder<'_>) {
        {
            // A poisoned lock still holds a whole description (it is replaced, never
            // edited in place).
            let d = self.description.read().unwrap_or_else(|p| p.into_inner());
            enc.family(&self.name, &d.help, self.family.kind(), d.unit);
        }
        match &self.family {
            Kinded::Counter(f) => f.encode(&self.name, "", enc),
            Kinded::Gauge(f) => f.encode(&self.name, "", enc),
            Kinded::Histogram(f) => f.encode(&self.name, "", enc),
        }
    }
}

/// What a `counter!` handle increments.
pub struct CounterHandle(pub Counter);

impl CounterFn for CounterHandle {
    #[inline]
    fn increment(&self, value: u64) {
        self.0.inc_by(value);
    }

    /// Raises the counter to `value`; a lower value is ignored, since a counter never
    /// goes down. (Two threads raising one counter at once may overshoot the higher
    /// value by the lower one's step: `absolute` is meant for one thread mirroring a
    /// total kept elsewhere.)
    fn absolute(&self, value: u64) {
        let current = self.0.get();
        if value > current {
            self.0.inc_by(value - current);
        }
    }
}

/// What a `gauge!` handle changes.
pub struct GaugeHandle(pub Gauge);

impl GaugeFn for GaugeHandle {
    #[inline]
    fn increment(&self, value: f64) {
        self.0.add(value);
    }

    #[inline]
    fn decrement(&self, value: f64) {
        self.0.sub(value);
    }

    #[inline]
    fn set(&self, value: f64) {
        self.0.set(value);
    }
}

/// What a `histogram!` handle records into.
pub struct HistogramHandle(pub Histogram);

impl HistogramFn for HistogramHandle {
    #[inline]
    fn record(&self, value: f64) {
        self.0.observe(value);
    }
}
