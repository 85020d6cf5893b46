//! A batch job that pushes its metrics to a Prometheus Pushgateway when it ends.
//!
//! Processes five batches, counting rows in a counter and timing each batch in a
//! histogram, then pushes both (`PUT`, replacing the group) under job
//! `tinyprom_example`, with any grouping labels given after the URL.
//!
//! Run with `cargo run --example pushgateway -- http://127.0.0.1:9091 [name=value ...]
//! [--protobuf]` against a running gateway (`prometheus-pushgateway`), which Prometheus
//! then scrapes with `honor_labels: true`. Only `http://` URLs: the push has no TLS.

use std::error::Error;
use std::time::Duration;

use tinyprom::exposition::Format;
use tinyprom::metrics::{Counter, Histogram, Registry};
use tinyprom::push::Pusher;

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let Some(url) = args.next() else {
        return Err("usage: pushgateway URL [name=value ...] [--protobuf]".into());
    };
    let mut pusher = Pusher::new(&url, "tinyprom_example")?.timeout(Duration::from_secs(5));
    for arg in args {
        if arg == "--protobuf" {
            pusher = pusher.format(Format::Protobuf)?;
        } else if let Some((name, value)) = arg.split_once('=') {
            pusher = pusher.grouping(name, value)?;
        } else {
            return Err(
                format!("expected a grouping label name=value or --protobuf, got {arg:?}").into(),
            );
        }
    }

    let registry = Registry::new();
    let rows = Counter::new();
    registry.register(
        "tinyprom_example_rows_total",
        "Rows processed.",
        rows.clone(),
    )?;
    let duration = Histogram::new(&[0.01, 0.025, 0.05, 0.1])?;
    registry.register_with_unit(
        "tinyprom_example_batch_duration_seconds",
        "Time spent on one batch.",
        "seconds",
        duration.clone(),
    )?;

    // The job's work: fixed numbers, so whoever reads the gateway knows what to expect
    // (500 rows, 5 batches taking 0.15 s in all).
    for batch in 1..=5u32 {
        rows.inc_by(100);
        duration.observe(f64::from(batch) * 0.01);
    }

    pusher.push(&registry)?;
    println!("pushed to {}", pusher.url());
    Ok(())
}
