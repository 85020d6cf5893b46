//! The libraries under test, each behind the same small interface, and the workload
//! they all run: a histogram `http_request_duration_seconds` with labels method, url
//! and code and buckets 0.01, 0.1, 0.5, 2.

pub mod metrics_rs;
pub mod prom_client;
pub mod tikv;
pub mod tinyprom_family;
pub mod tinyprom_indexed;

use std::sync::OnceLock;

/// The histogram's name, help text and bucket bounds, the same for every library.
pub const NAME: &str = "http_request_duration_seconds";
pub const HELP: &str = "Duration of HTTP requests.";
pub const BOUNDS: [f64; 4] = [0.01, 0.1, 0.5, 2.0];

/// HTTP methods as a middleware knows them.
pub const METHODS: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "OTHER",
];
/// Route templates the render workload spreads series over.
pub const ROUTE_COUNT: usize = 20;
/// Status codes 100 to 599.
pub const FIRST_CODE: u16 = 100;
pub const CODE_COUNT: usize = 500;

/// Label values as `&'static str`, made once: routes `/route/N` and codes `"100"`...
pub fn routes() -> &'static [&'static str] {
    static ROUTES: OnceLock<Vec<&'static str>> = OnceLock::new();
    ROUTES.get_or_init(|| {
        (0..ROUTE_COUNT)
            .map(|i| &*Box::leak(format!("/route/{i}").into_boxed_str()))
            .collect()
    })
}

pub fn codes() -> &'static [&'static str] {
    static CODES: OnceLock<Vec<&'static str>> = OnceLock::new();
    CODES.get_or_init(|| {
        (0..CODE_COUNT as u16)
            .map(|i| &*Box::leak((FIRST_CODE + i).to_string().into_boxed_str()))
            .collect()
    })
}

/// One request as a middleware sees it when the response is written: the method,
/// matched route and status code, both as positions in the lists above (what a router
/// and an enum give for free) and as strings (what string-keyed APIs take).
#[derive(Clone, Copy, Debug)]
pub struct Call {
    pub method_index: usize,
    pub route_index: usize,
    pub code: u16,
    pub method: &'static str,
    pub route: &'static str,
    pub code_str: &'static str,
}

impl Call {
    pub fn new(method_index: usize, route_index: usize, code: u16) -> Call {
        Call {
            method_index,
            route_index,
            code,
            method: METHODS[method_index],
            route: routes()[route_index],
            code_str: codes()[usize::from(code - FIRST_CODE)],
        }
    }

    /// The `i`-th distinct label set of the render workload.
    pub fn nth(i: usize) -> Call {
        let method = i % METHODS.len();
        let route = (i / METHODS.len()) % ROUTE_COUNT;
        let code = i / (METHODS.len() * ROUTE_COUNT);
        Call::new(method, route, FIRST_CODE + code as u16)
    }
}

/// The label sets the observe benchmarks cycle through: what a busy service answers.
pub fn traffic() -> [Call; 8] {
    [
        Call::new(0, 0, 200),
        Call::new(0, 1, 200),
        Call::new(2, 2, 201),
        Call::new(0, 0, 304),
        Call::new(0, 3, 404),
        Call::new(1, 0, 200),
        Call::new(0, 4, 500),
        Call::new(4, 2, 204),
    ]
}

/// Observed values: one in every bucket, `+Inf` included, none exactly representable
/// as short decimals so every library formats real floats.
pub const VALUES: [f64; 8] = [0.0042, 0.051, 0.33, 1.7, 3.1, 0.0087, 0.093, 0.47];

/// A library that also renders the Prometheus protobuf format.
pub trait ProtobufSubject: Subject {
    /// Renders one scrape in delimited protobuf; returns its length in bytes.
    fn render_protobuf(&mut self) -> usize;
}

/// A library under test, set up with the workload's histogram family.
pub trait Subject {
    /// The name printed in tables.
    const NAME: &'static str;
    /// A handle on one series, resolved once and observed many times.
    type Series: Clone + Send + Sync + 'static;

    /// A new registry with the family registered and no series yet.
    fn new() -> Self;
    /// Observes `v` for `call` through the library's labeled lookup.
    fn observe_labeled(&self, call: &Call, v: f64);
    /// Resolves the series of `call`, creating it.
    fn series(&self, call: &Call) -> Self::Series;
    /// Observes `v` on a resolved series.
    fn observe(series: &Self::Series, v: f64);
    /// Renders one scrape in the Prometheus text format; returns its length in bytes.
    fn render(&mut self) -> usize;
    /// The rendered text of the last `render`, for checking.
    fn last_render(&self) -> String;
}
