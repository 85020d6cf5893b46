//! [`CallbackGauge`] and [`CallbackCounter`]: values computed when a scrape asks.
//!
//! Some values already live elsewhere (a queue's length, bytes a cache holds, CPU time
//! the kernel counts): copying them into a gauge on every change is wasted work and can
//! go stale. A callback metric instead holds a closure that the registry calls while it
//! renders, so the scrape shows the value as of that moment and nothing runs between
//! scrapes.
//!
//! The closure runs on the scraping thread with the registry's read lock held: keep it
//! quick and do not register metrics from inside it. A panicking closure does not fail
//! the scrape: its sample is left out (the panic is still reported by the panic hook).
//! A counter callback returning NaN or a negative value is left out as well, because
//! OpenMetrics forbids such totals and a strict ingestor would reject the whole scrape.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use super::Metric;
use crate::exposition::{Encoder, MetricKind};

type Callback = Arc<dyn Fn() -> f64 + Send + Sync>;

/// Calls `f`, turning a panic into `None`.
fn evaluate(f: &Callback) -> Option<f64> {
    catch_unwind(AssertUnwindSafe(|| f())).ok()
}

/// A gauge whose value is returned by a closure at scrape time.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use tinyprom::metrics::{CallbackGauge, Registry};
/// let queue = Arc::new(Mutex::new(vec![1, 2, 3]));
/// let registry = Registry::new();
/// let q = Arc::clone(&queue);
/// registry
///     .register(
///         "queue_length",
///         "Items waiting.",
///         CallbackGauge::new(move || q.lock().map_or(f64::NAN, |v| v.len() as f64)),
///     )
///     .unwrap();
/// assert!(registry.render_text().ends_with("queue_length 3\n"));
/// queue.lock().unwrap().pop();
/// assert!(registry.render_text().ends_with("queue_length 2\n"));
/// ```
#[derive(Clone)]
pub struct CallbackGauge {
    f: Callback,
}

impl CallbackGauge {
    /// A gauge reporting whatever `f` returns (NaN and infinities included).
    pub fn new(f: impl Fn() -> f64 + Send + Sync + 'static) -> Self {
        CallbackGauge { f: Arc::new(f) }
    }
}

impl fmt::Debug for CallbackGauge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CallbackGauge")
    }
}

impl Metric for CallbackGauge {
    fn kind(&self) -> MetricKind {
        MetricKind::Gauge
    }

    fn encode(&self, name: &str, labels: &str, enc: &mut Encoder<'_>) {
        if let Some(v) = evaluate(&self.f) {
            enc.sample_f64(name, "", labels, v);
        }
    }
}

/// A counter whose total is returned by a closure at scrape time. The closure must
/// return a total that never decreases (except when the thing it counts restarts).
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use tinyprom::exposition::Format;
/// use tinyprom::metrics::{CallbackCounter, Registry};
/// let bytes = Arc::new(AtomicU64::new(0));
/// let registry = Registry::new();
/// let b = Arc::clone(&bytes);
/// registry
///     .register_with_unit(
///         "sent_bytes_total",
///         "Bytes sent.",
///         "bytes",
///         CallbackCounter::new(move || b.load(Ordering::Relaxed) as f64),
///     )
///     .unwrap();
/// bytes.fetch_add(1500, Ordering::Relaxed);
/// assert_eq!(
///     registry.render(Format::OpenMetrics),
///     "# TYPE sent_bytes counter\n# UNIT sent_bytes bytes\n# HELP sent_bytes Bytes sent.\nsent_bytes_total 1500\n# EOF\n",
/// );
/// ```
#[derive(Clone)]
pub struct CallbackCounter {
    f: Callback,
}

impl CallbackCounter {
    /// A counter reporting whatever `f` returns; NaN or negative results are left
    /// out of the scrape.
    pub fn new(f: impl Fn() -> f64 + Send + Sync + 'static) -> Self {
        CallbackCounter { f: Arc::new(f) }
    }
}

impl fmt::Debug for CallbackCounter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CallbackCounter")
    }
}

impl Metric for CallbackCounter {
    fn kind(&self) -> MetricKind {
        MetricKind::Counter
    }

    fn encode(&self, name: &str, labels: &str, enc: &mut Encoder<'_>) {
        match evaluate(&self.f) {
            Some(v) if v >= 0.0 => enc.counter_f64(name, labels, v),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::Format;
    use crate::metrics::Registry;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn evaluated_at_every_scrape() {
        let calls = Arc::new(AtomicU64::new(0));
        let c = Arc::clone(&calls);
        let r = Registry::new();
        r.register(
            "calls_total",
            "Calls.",
            CallbackCounter::new(move || (c.fetch_add(1, Ordering::Relaxed) + 1) as f64),
        )
        .unwrap();
        assert!(r.render_text().ends_with("calls_total 1\n"));
        assert!(r.render(Format::OpenMetrics).contains("calls_total 2\n"));
        assert_eq!(calls.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn gauges_keep_special_values() {
        for (v, text) in [
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (-2.5, "-2.5"),
        ] {
            let r = Registry::new();
            r.register("g", "G.", CallbackGauge::new(move || v))
                .unwrap();
            assert!(r.render_text().ends_with(&format!("\ng {text}\n")), "{v}");
        }
    }

    #[test]
    fn invalid_totals_and_panics_leave_the_sample_out() {
        let r = Registry::new();
        r.register("neg_total", "N.", CallbackCounter::new(|| -1.0))
            .unwrap();
        r.register("nan_total", "N.", CallbackCounter::new(|| f64::NAN))
            .unwrap();
        r.register(
            "boom",
            "B.",
            CallbackGauge::new(|| panic!("callback failed")),
        )
        .unwrap();
        r.register("ok", "O.", CallbackGauge::new(|| 1.0)).unwrap();
        assert_eq!(
            r.render(Format::OpenMetrics),
            "# TYPE neg counter\n# HELP neg N.\n# TYPE nan counter\n# HELP nan N.\n\
             # TYPE boom gauge\n# HELP boom B.\n# TYPE ok gauge\n# HELP ok O.\nok 1\n# EOF\n"
        );
    }
}
