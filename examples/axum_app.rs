//! Serving tinyprom's metrics from an axum application.
//!
//! The app has one route of its own (`GET /hello`), times every request in its own RED
//! histogram (`http_request_duration_seconds{method,route,code}`, classic and native
//! buckets), and answers `/metrics` with [`Scraper`]: the same negotiation (text 0.0.4,
//! OpenMetrics, protobuf, escaping), `name[]` filter, gzip, `Vary` and `HEAD` handling
//! as tinyprom's own server.
//!
//! Run with `cargo run --example axum_app -- 127.0.0.1:3000` (the listen address is the
//! first argument; port 0 picks a free one). The first line it prints is
//! `listening on http://ADDRESS`; it serves until it is killed.

use std::error::Error;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{ACCEPT, ACCEPT_ENCODING, CONTENT_LENGTH};
use axum::http::{HeaderMap, Method, Uri};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{any, get};
use tinyprom::exposition::{ScrapeBuffers, ScrapeRequest, Scraper};
use tinyprom::metrics::{Buckets, Family, Histogram, NativeOptions, Registry};

/// What the handlers share.
struct App {
    scraper: Scraper,
    /// `http_request_duration_seconds` by method, route and status code.
    duration: Family<Histogram>,
}

/// The routes a request can match; anything else is `unmatched` (a label value must
/// never be a raw path).
const ROUTES: [&str; 2] = ["/hello", "/metrics"];

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let address = std::env::args()
        .nth(1)
        .ok_or("usage: axum_app LISTEN_ADDRESS (for example 127.0.0.1:3000)")?;

    let registry = Arc::new(Registry::new());
    let buckets = Buckets::with_native(
        &[0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0],
        NativeOptions::new(),
    )?;
    let duration = Family::with_constructor(&["method", "route", "code"], move || {
        Histogram::with_buckets(Arc::clone(&buckets))
    })?;
    registry.register_with_unit(
        "http_request_duration_seconds",
        "Time from receiving a request to answering it.",
        "seconds",
        duration.clone(),
    )?;
    let app = Arc::new(App {
        scraper: Scraper::new(registry),
        duration,
    });

    let router = Router::new()
        .route("/hello", get(|| async { "hello from axum\n" }))
        .route("/metrics", any(metrics))
        .layer(middleware::from_fn_with_state(Arc::clone(&app), red))
        .with_state(app);
    let listener = tokio::net::TcpListener::bind(&address).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, router).await?;
    Ok(())
}

/// `/metrics`: the request's method, headers and query string in, tinyprom's answer
/// out. Rendering takes microseconds for a registry this size, so it runs inline.
async fn metrics(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let request = ScrapeRequest {
        method: method.as_str(),
        accept: header(ACCEPT),
        accept_encoding: header(ACCEPT_ENCODING),
        query: uri.query(),
    };
    let mut buffers = ScrapeBuffers::default();
    let scrape = app.scraper.scrape(&request, &mut buffers);
    let mut response = Response::builder().status(scrape.status);
    for (name, value) in scrape.headers() {
        response = response.header(name, value);
    }
    // Set explicitly so that a HEAD announces the length a GET gets.
    response
        .header(CONTENT_LENGTH, scrape.content_length)
        .body(Body::from(scrape.body.to_vec()))
        .expect("status and headers come from tinyprom and are valid")
}

/// The RED middleware: every request is timed and counted by method, route and code.
async fn red(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = match *request.method() {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        _ => "OTHER",
    };
    let path = request.uri().path();
    let route = ROUTES
        .into_iter()
        .find(|r| *r == path)
        .unwrap_or("unmatched");
    let response = next.run(request).await;
    let code = response.status();
    if let Ok(series) = app
        .duration
        .with_label_values(&[method, route, code.as_str()])
    {
        series.observe_duration(start.elapsed());
    }
    response
}
