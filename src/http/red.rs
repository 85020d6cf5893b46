//! RED instrumentation: the request histogram and in-flight gauge of the server.
//!
//! The histogram `http_request_duration_seconds{method,url,code}` is an
//! [`IndexedFamily`]: method, route and status code are already small integers when a
//! response is written, so finding the series is arithmetic on three indices, with no
//! hashing, locking or allocation after the series' first use. It keeps native buckets
//! beside the classic ones (schema 3: buckets about 9% wide), which Prometheus reads
//! over the protobuf format for accurate quantiles; text and OpenMetrics scrapers see
//! the classic buckets as before.

use std::time::Duration;

use crate::metrics::{
    Buckets, Gauge, Histogram, IndexedFamily, MetricError, NativeOptions, Registry,
};

use super::routes::METHODS;

/// The bucket bounds of `http_request_duration_seconds`, in seconds.
pub const DURATION_BUCKETS: [f64; 4] = [0.01, 0.1, 0.5, 2.0];

/// The lowest and highest status codes a series exists for.
const FIRST_CODE: u16 = 100;
const LAST_CODE: u16 = 599;

/// The server's own RED metrics.
pub struct RedMetrics {
    duration: IndexedFamily<Histogram>,
    in_flight: Gauge,
}

impl RedMetrics {
    /// Creates the metrics for routes whose `url` label values are `routes` and
    /// registers them in `registry`.
    pub fn register(registry: &Registry, routes: Vec<String>) -> Result<RedMetrics, MetricError> {
        let buckets = Buckets::with_native(&DURATION_BUCKETS, NativeOptions::new())?;
        let codes = (FIRST_CODE..=LAST_CODE).map(|c| c.to_string()).collect();
        let methods = METHODS.iter().map(|m| m.to_string()).collect();
        let duration =
            IndexedFamily::new(&["method", "url", "code"], vec![methods, routes, codes], {
                move || Histogram::with_buckets(buckets.clone())
            })?;
        let red = RedMetrics {
            duration,
            in_flight: Gauge::new(),
        };
        registry.register_with_unit(
            "http_request_duration_seconds",
            "Duration of HTTP requests from receipt to the response written, by method, matched route and status code.",
            "seconds",
            red.duration.clone(),
        )?;
        registry.register(
            "http_requests_in_flight",
            "HTTP requests received and not yet answered.",
            red.in_flight.clone(),
        )?;
        Ok(red)
    }

    /// Marks a request as received.
    #[inline]
    pub fn start(&self) {
        self.in_flight.inc();
    }

    /// Records a finished request: `method` indexes [`METHODS`], `route` the router's
    /// label values, `code` is the status sent.
    #[inline]
    pub fn finish(&self, method: usize, route: usize, code: u16, elapsed: Duration) {
        let code = code.clamp(FIRST_CODE, LAST_CODE);
        if let Some(h) = self
            .duration
            .get(&[method, route, usize::from(code - FIRST_CODE)])
        {
            h.observe(elapsed.as_secs_f64());
        }
        self.in_flight.dec();
    }
}
