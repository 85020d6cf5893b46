//! tinyprom's app on axum 0.8 and metrics-exporter-prometheus 0.18, written as a user
//! of those crates would write it, for `make bench-http` to compare with.
//!
//! Routes: `/up` (`I am running!`), `/synthetic` (sleeps 1–50 ms, then answers a status
//! drawn from 200, 200, 200, 200, 200, 400, 401, 500) and `/metrics` (the text format).
//! Every request is observed in `http_request_duration_seconds{method,url,code}` with
//! buckets 0.01, 0.1, 0.5 and 2. Flag: `--web.listen-address=HOST:PORT` (default
//! `127.0.0.1:8000`); prints `listening on http://ADDR` on stderr once bound, as tinyprom
//! does, so the benchmark finds the port.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

const SYNTHETIC_CODES: [u16; 8] = [200, 200, 200, 200, 200, 400, 401, 500];
const BUCKETS: [f64; 4] = [0.01, 0.1, 0.5, 2.0];

async fn up() -> &'static str {
    "I am running!"
}

async fn synthetic() -> StatusCode {
    tokio::time::sleep(Duration::from_millis(fastrand::u64(1..=50))).await;
    let code = SYNTHETIC_CODES[fastrand::usize(..SYNTHETIC_CODES.len())];
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

async fn scrape(State(handle): State<PrometheusHandle>) -> String {
    handle.render()
}

async fn red(request: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = request.method().to_string();
    let url = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(request).await;
    let code = response.status().as_u16().to_string();
    metrics::histogram!("http_request_duration_seconds",
        "method" => method, "url" => url, "code" => code)
    .record(start.elapsed().as_secs_f64());
    response
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut addr = SocketAddr::from(([127, 0, 0, 1], 8000));
    for arg in std::env::args().skip(1) {
        match arg.strip_prefix("--web.listen-address=").map(str::parse) {
            Some(Ok(a)) => addr = a,
            _ => {
                eprintln!("peer-axum: unknown or bad flag {arg}");
                return ExitCode::from(2);
            }
        }
    }
    let handle = match PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("http_request_duration_seconds".to_string()),
            &BUCKETS,
        )
        .and_then(|b| b.install_recorder())
    {
        Ok(handle) => handle,
        Err(e) => {
            eprintln!("peer-axum: cannot install the recorder: {e}");
            return ExitCode::from(1);
        }
    };
    let app = Router::new()
        .route("/up", get(up))
        .route("/synthetic", get(synthetic))
        .route("/metrics", get(scrape))
        .route_layer(middleware::from_fn(red))
        .with_state(handle);
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("peer-axum: cannot listen on {addr}: {e}");
            return ExitCode::from(1);
        }
    };
    match listener.local_addr() {
        Ok(bound) => eprintln!("peer-axum listening on http://{bound}"),
        Err(e) => eprintln!("peer-axum: {e}"),
    }
    if let Err(e) = axum::serve(listener, app).await {
        eprintln!("peer-axum: {e}");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
