//! The baseline `make bench-http` compares tinyprom with: a tiny_http server with the
//! same worker pool as tinyprom (a fixed number of threads taking requests with
//! `recv_timeout`) that answers `/up` and nothing else, with no metrics at all. The
//! difference in throughput between the two is the cost of tinyprom's instrumentation
//! and routing.
//!
//! ```text
//! cargo run --release --example plain_tiny_http -- --web.listen-address=127.0.0.1:0
//! ```
//!
//! Flags: `--web.listen-address=HOST:PORT` (default `127.0.0.1:8000`) and
//! `--web.max-workers=N` (default 4, tinyprom's default). Prints
//! `listening on http://ADDR` on stderr once bound, like tinyprom.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tiny_http::{Header, Response, Server};

fn main() -> ExitCode {
    let mut addr: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 8000));
    let mut workers = 4usize;
    for arg in std::env::args().skip(1) {
        let parsed = if let Some(v) = arg.strip_prefix("--web.listen-address=") {
            v.parse().map(|a| addr = a).map_err(|e| e.to_string())
        } else if let Some(v) = arg.strip_prefix("--web.max-workers=") {
            match v.parse::<usize>() {
                Ok(n) if (1..=256).contains(&n) => {
                    workers = n;
                    Ok(())
                }
                _ => Err("expected 1 to 256".to_string()),
            }
        } else {
            Err("unknown flag".to_string())
        };
        if let Err(e) = parsed {
            eprintln!("plain_tiny_http: {arg}: {e}");
            return ExitCode::from(2);
        }
    }
    let server = match Server::http(addr) {
        Ok(server) => Arc::new(server),
        Err(e) => {
            eprintln!("plain_tiny_http: cannot listen on {addr}: {e}");
            return ExitCode::from(1);
        }
    };
    let bound = server
        .server_addr()
        .to_ip()
        .map_or_else(|| addr.to_string(), |a| a.to_string());
    eprintln!("plain_tiny_http listening on http://{bound} with {workers} workers");
    let content_type = match Header::from_bytes("Content-Type", "text/plain; charset=utf-8") {
        Ok(h) => h,
        Err(()) => return ExitCode::from(1),
    };
    let handles: Vec<_> = (0..workers)
        .map(|_| {
            let server = Arc::clone(&server);
            let content_type = content_type.clone();
            std::thread::spawn(move || {
                loop {
                    match server.recv_timeout(Duration::from_millis(10)) {
                        Ok(Some(request)) => {
                            let response = if request.url() == "/up" {
                                Response::from_string("I am running!")
                                    .with_header(content_type.clone())
                            } else {
                                Response::from_string("404 page not found\n")
                                    .with_status_code(404)
                                    .with_header(content_type.clone())
                            };
                            let _ = request.respond(response);
                        }
                        Ok(None) => {}
                        Err(_) => return,
                    }
                }
            })
        })
        .collect();
    for handle in handles {
        let _ = handle.join();
    }
    ExitCode::SUCCESS
}
