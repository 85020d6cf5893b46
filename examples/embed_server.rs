//! Embedding tinyprom's server: serve your own metrics and routes on a background
//! thread of your program, next to tinyprom's `/up` and `/metrics`.
//!
//! The example listens on a free loopback port, calls its own `/hello` route, scrapes
//! its own `/metrics` once as Prometheus does (asking for OpenMetrics) and once as a
//! plain client (text 0.0.4), prints both scrapes and stops the server gracefully. It
//! terminates on its own.
//!
//! Run with `cargo run --example embed_server`.

use std::error::Error;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use tinyprom::http::{Options, Reply, Server, peer_addr};
use tinyprom::metrics::{Counter, Registry};

/// The `Accept` header Prometheus sends when it scrapes.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

fn main() -> Result<(), Box<dyn Error>> {
    // Our own registry with our own metric; the server adds its metrics to it.
    let registry = Arc::new(Registry::new());
    let greetings = Counter::new();
    registry.register(
        "example_greetings_total",
        "Greetings sent by /hello.",
        greetings.clone(),
    )?;

    let options = Options {
        listen_address: "127.0.0.1:0".parse()?,
        process_metrics: false,
        ..Options::default()
    };
    let server = Server::builder(options)
        .registry(Arc::clone(&registry))
        .route("/hello", move |request| {
            greetings.inc();
            // The client's address as the gate saw it (a client cannot forge it).
            let from = peer_addr(request).map_or("an unknown address".into(), |a| a.to_string());
            Reply::text(200, format!("hello from an embedded tinyprom to {from}\n"))
        })
        .bind()?;
    let addr = server.local_addr();
    let running = server.spawn()?;
    println!("serving on http://{addr}");

    // Run the requests, then stop the server whatever their outcome.
    let result = talk_to(addr);
    running.stop()?;
    result
}

fn talk_to(addr: SocketAddr) -> Result<(), Box<dyn Error>> {
    let (_, _, hello) = get(addr, "/hello", None)?;
    print!("GET /hello: {hello}");
    for (who, accept) in [("Prometheus", Some(PROMETHEUS_ACCEPT)), ("curl", None)] {
        let (status, content_type, body) = get(addr, "/metrics", accept)?;
        println!("--- GET /metrics as {who}: {status}, Content-Type: {content_type} ---");
        print!("{body}");
    }
    Ok(())
}

/// One HTTP/1.1 GET on a fresh connection: (status line, Content-Type, body).
fn get(
    addr: SocketAddr,
    path: &str,
    accept: Option<&str>,
) -> Result<(String, String, String), Box<dyn Error>> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let accept = accept.map_or(String::new(), |a| format!("Accept: {a}\r\n"));
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{accept}Connection: close\r\n\r\n"
    )?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw)?;
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .ok_or("the response has no end of headers")?;
    let mut lines = head.lines();
    let status = lines.next().unwrap_or_default().to_string();
    let content_type = lines
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        .map(|(_, value)| value.trim().to_string())
        .unwrap_or_default();
    Ok((status, content_type, body.to_string()))
}
