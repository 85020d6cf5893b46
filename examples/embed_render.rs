//! Embedding tinyprom's metrics in a program that ships the exposition itself (to a
//! file for node_exporter's textfile collector, a push gateway, a log line...).
//!
//! Registers one metric of every kind in a registry of its own, updates them, and
//! prints one scrape in the Prometheus text format 0.0.4 and one in OpenMetrics 1.0.
//!
//! Run with `cargo run --example embed_render`.

use std::error::Error;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tinyprom::exposition::Format;
use tinyprom::metrics::{
    CallbackGauge, Counter, Family, Gauge, Histogram, Info, Quantiles, Registry, Summary,
};

fn main() -> Result<(), Box<dyn Error>> {
    let registry = Registry::new();

    // A counter family with a label, and a plain gauge.
    let jobs: Family<Counter> = Family::new(&["queue"])?;
    registry.register("example_jobs_total", "Jobs processed.", jobs.clone())?;
    let temperature = Gauge::new();
    registry.register_with_unit(
        "example_temperature_celsius",
        "Current temperature.",
        "celsius",
        temperature.clone(),
    )?;

    // A histogram timed with a guard, and a summary with quantiles over 10 minutes.
    let latency = Histogram::new(&[0.005, 0.05, 0.5])?;
    registry.register_with_unit(
        "example_job_duration_seconds",
        "Time spent per job.",
        "seconds",
        latency.clone(),
    )?;
    let sizes = Summary::with_quantiles(Quantiles::new(&[0.5, 0.9, 0.99])?);
    registry.register_with_unit(
        "example_payload_bytes",
        "Payload sizes.",
        "bytes",
        sizes.clone(),
    )?;

    // Build information, and a value read only when a scrape asks for it.
    registry.register(
        "example_build",
        "Build information.",
        Info::new(&[("version", env!("CARGO_PKG_VERSION")), ("profile", "demo")])?,
    )?;
    let backlog = Arc::new(AtomicU64::new(0));
    let seen = Arc::clone(&backlog);
    registry.register(
        "example_backlog",
        "Items waiting, read at scrape time.",
        CallbackGauge::new(move || seen.load(Ordering::Relaxed) as f64),
    )?;

    for i in 0..20u32 {
        let queue = if i % 3 == 0 { "mail" } else { "print" };
        jobs.with_label_values(&[queue])?.inc();
        let _timer = latency.start_timer();
        std::thread::sleep(Duration::from_micros(200));
        sizes.observe(f64::from(100 + i * 50));
    }
    temperature.set(21.5);
    backlog.store(7, Ordering::Relaxed);

    println!("--- text/plain; version=0.0.4 ---");
    print!("{}", registry.render(Format::Text));
    println!("--- application/openmetrics-text; version=1.0.0 ---");
    print!("{}", registry.render(Format::OpenMetrics));
    Ok(())
}
