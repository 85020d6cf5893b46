//! The fixed registry the golden tests render: every metric type, labeled and not,
//! special values, escaping. Shared by the text, OpenMetrics and protobuf tests.

use tinyprom::metrics::{
    Buckets, CallbackCounter, CallbackGauge, Counter, Family, Gauge, Histogram, Info, Quantiles,
    Registry, Summary,
};

/// A label value and HELP text with everything that needs (or must not get) escaping.
pub const TRICKY: &str = "quote \" backslash \\ newline \n unicode ü ✓ 日本";

/// A fixed registry: every metric type, labeled and not, special values, escaping.
pub fn fixed_registry() -> Registry {
    let r = Registry::new();
    let plain = Counter::new();
    plain.inc_by(3);
    r.register("golden_requests_total", "Requests served.", plain)
        .unwrap();
    let labeled: Family<Counter> = Family::new(&["path", "code"]).unwrap();
    labeled.with_label_values(&["/a", "200"]).unwrap().inc();
    labeled
        .with_label_values(&[TRICKY, "500"])
        .unwrap()
        .inc_by(2);
    r.register("golden_errors_total", TRICKY, labeled).unwrap();
    r.register_with_unit(
        "golden_cpu_seconds_total",
        "CPU time, a float counter with a unit.",
        "seconds",
        CallbackCounter::new(|| 1.25),
    )
    .unwrap();
    let empty: Family<Counter> = Family::new(&["queue"]).unwrap();
    r.register("golden_empty_total", "A family with no series yet.", empty)
        .unwrap();

    let temps: Family<Gauge> = Family::new(&["sensor"]).unwrap();
    for (sensor, v) in [
        ("a", 21.5),
        ("b", -0.0),
        ("c", f64::NAN),
        ("d", f64::INFINITY),
        ("e", f64::NEG_INFINITY),
        ("f", 1e-7),
        ("g", 123456789012345680.0),
    ] {
        temps.with_label_values(&[sensor]).unwrap().set(v);
    }
    r.register_with_unit(
        "golden_temperature_celsius",
        "Gauges with special values.",
        "celsius",
        temps,
    )
    .unwrap();
    let no_gauges: Family<Gauge> = Family::new(&["sensor"]).unwrap();
    r.register(
        "golden_humidity_ratio",
        "A gauge family with no series.",
        no_gauges,
    )
    .unwrap();
    r.register(
        "golden_queue_length",
        "A gauge read at scrape time.",
        CallbackGauge::new(|| 7.0),
    )
    .unwrap();

    let buckets = Buckets::new(&[0.005, 0.1, 1.0, 10.0, 1e6]).unwrap();
    let latency = Family::with_constructor(&["method"], move || {
        Histogram::with_buckets(buckets.clone())
    })
    .unwrap();
    let get = latency.with_label_values(&["GET"]).unwrap();
    for v in [0.001, 0.05, 0.05, 0.5, 3.0, 2e6] {
        get.observe(v);
    }
    latency.with_label_values(&["POST"]).unwrap();
    r.register_with_unit("golden_latency_seconds", "A histogram.", "seconds", latency)
        .unwrap();
    r.register(
        "golden_unused_seconds",
        "A histogram family with no series.",
        Family::with_constructor(&["x"], || Histogram::new(&[1.0]).unwrap()).unwrap(),
    )
    .unwrap();

    let sizes = Summary::with_quantiles(Quantiles::new(&[0.0, 0.5, 0.9, 0.99, 1.0]).unwrap());
    for kib in 1..=100u32 {
        sizes.observe(f64::from(kib) * 1024.0);
    }
    r.register_with_unit(
        "golden_payload_bytes",
        "A summary with quantiles.",
        "bytes",
        sizes,
    )
    .unwrap();
    let quiet = Summary::with_quantiles(Quantiles::new(&[0.5]).unwrap());
    r.register(
        "golden_idle_seconds",
        "A summary with an empty window.",
        quiet,
    )
    .unwrap();
    let plain_summary = Summary::new();
    plain_summary.observe(0.25);
    plain_summary.observe(0.5);
    r.register(
        "golden_wait_seconds",
        "A summary without quantiles.",
        plain_summary,
    )
    .unwrap();

    r.register(
        "golden_build",
        "Build information.",
        Info::new(&[("version", "1.2.3"), ("note", TRICKY)]).unwrap(),
    )
    .unwrap();
    r
}
