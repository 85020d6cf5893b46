//! RED instrumentation: the request histogram and in-flight gauge of the server.
//!
//! The histogram `http_request_duration_seconds{method,url,code}` is an
//! [`IndexedFamily`]: method, route and status code are already small integers when a
//! response is written, so finding the series is arithmetic on three indices, with no
//! hashing, locking or allocation after the series' first use. It keeps native buckets
//! beside the classic ones (schema 3: buckets about 9% wide), which Prometheus reads
//! over the protobuf format for accurate quantiles; text and OpenMetrics scrapers see
//! the classic buckets as before.
//!
//! A request inside a sampled W3C trace (`traceparent`, see `traceparent.rs`) is
//! observed with its trace id and span id as the exemplar of its bucket, so a latency
//! panel links to the trace; any other request is a plain observation, which costs
//! nothing more for the exemplars other requests left.
//!
//! [`RedMetrics::route_totals`] reads the same series back per route for the landing
//! page: it visits only the series that exist, takes each the way a scrape does (an
//! observer never waits for it), and adds them up, so the page shows exactly what a
//! scrape at that moment would sum to.

use std::time::Duration;

use crate::metrics::{
    Buckets, Gauge, Histogram, IndexedFamily, MetricError, NativeOptions, Registry,
};

use super::landing::NativeTotals;
use super::routes::METHODS;
use super::traceparent::TraceIds;

/// The bucket bounds of `http_request_duration_seconds`, in seconds.
pub const DURATION_BUCKETS: [f64; 4] = [0.01, 0.1, 0.5, 2.0];

/// The lowest and highest status codes a series exists for.
const FIRST_CODE: u16 = 100;
const LAST_CODE: u16 = 599;

/// The server's own RED metrics.
pub struct RedMetrics {
    duration: IndexedFamily<Histogram>,
    in_flight: Gauge,
    /// The `url` label values, in index order.
    routes: Vec<String>,
}

/// One route's requests since the serving process started, every method and code.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteTotals<'a> {
    /// The route's `url` label value.
    pub route: &'a str,
    /// Cumulative counts per bucket of [`DURATION_BUCKETS`], then `+Inf` (= all requests).
    pub cumulative: [u64; DURATION_BUCKETS.len() + 1],
    /// Requests answered with a 5xx code.
    pub errors: u64,
    /// The native buckets of the same requests (for the landing page's quantiles).
    pub native: NativeTotals,
}

impl RouteTotals<'_> {
    /// All requests of the route.
    pub fn count(&self) -> u64 {
        self.cumulative[DURATION_BUCKETS.len()]
    }
}

impl RedMetrics {
    /// Creates the metrics for routes whose `url` label values are `routes` and
    /// registers them in `registry`.
    pub fn register(registry: &Registry, routes: Vec<String>) -> Result<RedMetrics, MetricError> {
        let buckets = Buckets::with_native(&DURATION_BUCKETS, NativeOptions::new())?;
        let routes_copy = routes.clone();
        let codes = (FIRST_CODE..=LAST_CODE).map(|c| c.to_string()).collect();
        let methods = METHODS.iter().map(|m| m.to_string()).collect();
        let duration =
            IndexedFamily::new(&["method", "url", "code"], vec![methods, routes, codes], {
                move || Histogram::with_buckets(buckets.clone())
            })?;
        let red = RedMetrics {
            duration,
            in_flight: Gauge::new(),
            routes: routes_copy,
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

    /// Every route's totals since start, in `url` label order (see the module docs).
    pub fn route_totals(&self) -> Vec<RouteTotals<'_>> {
        let mut totals: Vec<RouteTotals<'_>> = self
            .routes
            .iter()
            .map(|route| RouteTotals {
                route,
                cumulative: [0; DURATION_BUCKETS.len() + 1],
                errors: 0,
                native: NativeTotals::default(),
            })
            .collect();
        self.duration.visit(|index, histogram| {
            let (route, code) = (index[1], FIRST_CODE as usize + index[2]);
            let Some(total) = totals.get_mut(route) else {
                return;
            };
            let snapshot = histogram.snapshot();
            // Wrapping, as the counters themselves do.
            for (sum, n) in total.cumulative.iter_mut().zip(&snapshot.cumulative) {
                *sum = sum.wrapping_add(*n);
            }
            if (500..600).contains(&code) {
                total.errors = total.errors.wrapping_add(snapshot.count);
            }
            if let Some(native) = &snapshot.native {
                total.native.add(native);
            }
        });
        totals
    }

    /// Marks a request as received.
    #[inline]
    pub fn start(&self) {
        self.in_flight.inc();
    }

    /// Records a finished request: `method` indexes [`METHODS`], `route` the router's
    /// label values, `code` is the status sent; `trace`, the ids of the sampled trace
    /// the request came in, become the exemplar of its observation.
    #[inline]
    pub fn finish(
        &self,
        method: usize,
        route: usize,
        code: u16,
        elapsed: Duration,
        trace: Option<&TraceIds>,
    ) {
        let code = code.clamp(FIRST_CODE, LAST_CODE);
        if let Some(h) = self
            .duration
            .get(&[method, route, usize::from(code - FIRST_CODE)])
        {
            match trace {
                None => h.observe(elapsed.as_secs_f64()),
                Some(ids) => {
                    let labels = [("trace_id", ids.trace_id()), ("span_id", ids.span_id())];
                    // Valid names and 63 characters (ids of fixed lengths): checked.
                    h.observe_with_checked_exemplar(elapsed.as_secs_f64(), &labels);
                }
            }
        }
        self.in_flight.dec();
    }
}
