//! Serving tinyprom's metrics from a plain hyper 1.x server.
//!
//! One route of its own (`GET /hello`), every request timed in its own RED histogram
//! (`http_request_duration_seconds{method,route,code}`, classic and native buckets),
//! and `/metrics` answered by [`Scraper`]: the same negotiation, `name[]` filter, gzip,
//! `Vary` and `HEAD` handling as tinyprom's own server.
//!
//! Run with `cargo run --example hyper_app -- 127.0.0.1:3000` (the listen address is the
//! first argument; port 0 picks a free one). The first line it prints is
//! `listening on http://ADDRESS`; it serves until it is killed.

use std::convert::Infallible;
use std::error::Error;
use std::sync::Arc;
use std::time::Instant;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{ACCEPT, ACCEPT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tinyprom::exposition::{ScrapeBuffers, ScrapeRequest, Scraper};
use tinyprom::metrics::{Buckets, Family, Histogram, NativeOptions, Registry};

/// What every connection's service shares.
struct App {
    scraper: Scraper,
    /// `http_request_duration_seconds` by method, route and status code.
    duration: Family<Histogram>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let address = std::env::args()
        .nth(1)
        .ok_or("usage: hyper_app LISTEN_ADDRESS (for example 127.0.0.1:3000)")?;

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

    let listener = tokio::net::TcpListener::bind(&address).await?;
    println!("listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let app = Arc::clone(&app);
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let app = Arc::clone(&app);
                async move { Ok::<_, Infallible>(timed(&app, request)) }
            });
            // A client that goes away mid-request is not worth more than that.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Routes a request and records its duration by method, route and code.
fn timed(app: &App, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let start = Instant::now();
    let (route, response) = match request.uri().path() {
        "/hello" if request.method() == Method::GET || request.method() == Method::HEAD => {
            ("/hello", text(StatusCode::OK, "hello from hyper\n"))
        }
        "/hello" => (
            "/hello",
            text(StatusCode::METHOD_NOT_ALLOWED, "405 method not allowed\n"),
        ),
        "/metrics" => ("/metrics", metrics(app, &request)),
        _ => (
            "unmatched",
            text(StatusCode::NOT_FOUND, "404 page not found\n"),
        ),
    };
    let method = match *request.method() {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        _ => "OTHER",
    };
    let code = response.status();
    if let Ok(series) = app
        .duration
        .with_label_values(&[method, route, code.as_str()])
    {
        series.observe_duration(start.elapsed());
    }
    response
}

/// `/metrics`: the request's method, headers and query string in, tinyprom's answer
/// out.
fn metrics(app: &App, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    let header = |name| request.headers().get(name).and_then(|v| v.to_str().ok());
    let scrape_request = ScrapeRequest {
        method: request.method().as_str(),
        accept: header(ACCEPT),
        accept_encoding: header(ACCEPT_ENCODING),
        query: request.uri().query(),
    };
    let mut buffers = ScrapeBuffers::default();
    let scrape = app.scraper.scrape(&scrape_request, &mut buffers);
    let mut response = Response::builder().status(scrape.status);
    for (name, value) in scrape.headers() {
        response = response.header(name, value);
    }
    // Set explicitly so that a HEAD announces the length a GET gets.
    response
        .header(CONTENT_LENGTH, scrape.content_length)
        .body(Full::new(Bytes::copy_from_slice(scrape.body)))
        .expect("status and headers come from tinyprom and are valid")
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
