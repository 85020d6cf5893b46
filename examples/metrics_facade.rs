//! Code instrumented with the `metrics` crate's macros, exported by tinyprom: the
//! `metrics-facade` feature's recorder keeps the metrics in a tinyprom registry, and
//! tinyprom's own server serves them on `/metrics` (with `/up` and its RED metrics).
//!
//! Each `GET /work` does a little work and records it through the macros:
//! `work_total{kind="demo"}` counts it, `work_duration_seconds` observes how long it
//! took. The program serves until its standard input ends (Ctrl-D), then stops the
//! server gracefully.
//!
//! Run with `cargo run --features metrics-facade --example metrics_facade -- 127.0.0.1:9100`
//! (the listen address is the first argument; port 0 picks a free one, printed).

use std::error::Error;
use std::hint::black_box;
use std::io::Read;
use std::sync::Arc;
use std::time::Instant;

use tinyprom::facade::FacadeRecorder;
use tinyprom::http::{Options, Reply, Server};
use tinyprom::metrics::{NativeOptions, Registry};

fn main() -> Result<(), Box<dyn Error>> {
    let listen = std::env::args()
        .nth(1)
        .ok_or("usage: metrics_facade LISTEN_ADDRESS (e.g. 127.0.0.1:9100)")?;
    let listen_address = listen
        .parse()
        .map_err(|e| format!("listen address {listen:?}: {e}"))?;

    let registry = Arc::new(Registry::new());
    FacadeRecorder::builder(Arc::clone(&registry))
        .buckets(&[0.000_01, 0.000_1, 0.001, 0.01])
        .native_for("work_duration_seconds", NativeOptions::new())
        .build()?
        .install()
        .map_err(|_| "a metrics recorder was installed already")?;
    metrics::describe_counter!("work_total", "Work items done, by kind.");
    metrics::describe_histogram!(
        "work_duration_seconds",
        metrics::Unit::Seconds,
        "Time one work item took."
    );

    let options = Options {
        listen_address,
        ..Options::default()
    };
    let server = Server::builder(options)
        .registry(registry)
        .route("/work", |_request| {
            let start = Instant::now();
            let result = work();
            let elapsed = start.elapsed();
            metrics::counter!("work_total", "kind" => "demo").increment(1);
            metrics::histogram!("work_duration_seconds").record(elapsed);
            Reply::text(200, format!("worked: {result}\n"))
        })
        .bind()?;
    let addr = server.local_addr();
    let running = server.spawn()?;
    println!("serving on http://{addr}");

    // Serve until standard input ends, then stop whatever reading it did.
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    running.stop()?;
    Ok(())
}

/// A few microseconds of arithmetic (a worker must not sleep).
fn work() -> u64 {
    (0..10_000u64).fold(0, |acc, i| black_box(acc.wrapping_mul(31).wrapping_add(i)))
}
