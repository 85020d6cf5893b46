//! Exemplars and start timestamps end to end, read by parsers that are not ours:
//!
//! * the real binary, asked with sampled W3C `traceparent` headers, shows each trace
//!   and span id on the bucket its request fell in; Python's strict OpenMetrics parser
//!   (`prometheus_client`) reads them with their values and timestamps, and `protoc`
//!   decodes them from protobuf (`Bucket.exemplar`, `Histogram.exemplars`) with the
//!   series' start timestamps; text 0.0.4 carries none;
//! * unsampled, malformed and missing headers leave no exemplar and the same answer;
//! * `--web.openmetrics-created` adds `_created` samples the parser accepts;
//! * an embedder's own route gets exemplars the same way, and a library counter's
//!   exemplar reaches both formats.

mod common;

#[path = "support/fixed_registry.rs"]
#[allow(dead_code)]
mod fixed_registry;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use common::{Tinyprom, pipe, protoc_decode_families, request};
use tinyprom::http::{Options, Reply, Server};
use tinyprom::metrics::{Counter, Registry};

const OPENMETRICS: &str = "application/openmetrics-text;version=1.0.0";
const PROTOBUF: &str =
    "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited";

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN: &str = "00f067aa0ba902b7";

/// Prints every sample with an exemplar, as JSON lines: name, labels, value, and the
/// exemplar's labels, value and timestamp; then `created` lines for `_created` samples.
const PARSE_EXEMPLARS: &str = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        if s.exemplar is not None:
            print(json.dumps({"name": s.name, "labels": s.labels, "value": s.value,
                              "exemplar": s.exemplar.labels, "exemplar_value": s.exemplar.value,
                              "timestamp": float(s.exemplar.timestamp)}))
        if s.name.endswith("_created"):
            print(json.dumps({"created": s.name, "labels": s.labels, "value": s.value}))
"#;

/// OpenMetrics scrapes, parsed, until one has `want` exemplars (at most 5 s): a
/// request is observed just after its answer is written, so the first scrape after
/// it may come too early.
fn scrape_exemplars(addr: std::net::SocketAddr, want: usize) -> (String, Vec<serde_json::Value>) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let om = request(addr, "GET", "/metrics", &[("Accept", OPENMETRICS)]);
        let lines = parsed(&om.body);
        let n = lines.iter().filter(|l| l.get("exemplar").is_some()).count();
        if n >= want || std::time::Instant::now() > deadline {
            return (om.text(), lines);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn parsed(body: &[u8]) -> Vec<serde_json::Value> {
    pipe("python3", &["-c", PARSE_EXEMPLARS], body)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Every MetricFamily of a delimited protobuf body, decoded by `protoc`, one after the
/// other.
fn protoc_decode(body: &[u8]) -> String {
    protoc_decode_families(body)
        .into_iter()
        .map(|family| family + "---\n")
        .collect()
}

/// protoc's text without its indentation.
fn flat(decoded: &str) -> String {
    decoded
        .lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("\n")
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn traceparent(trace: &str, span: &str, flags: &str) -> String {
    format!("00-{trace}-{span}-{flags}")
}

#[test]
fn sampled_traces_become_exemplars_in_openmetrics_and_protobuf() {
    let before = unix_now();
    let server = Tinyprom::start(&["--web.openmetrics-created"]);
    let up = |headers: &[(&str, &str)]| request(server.addr, "GET", "/up", headers);
    let plain = up(&[]);
    // Unsampled and malformed: the same answer, and no exemplar.
    let other = "a".repeat(32);
    for header in [
        traceparent(&other, SPAN, "00"),
        traceparent(&other.to_uppercase(), SPAN, "01"),
        traceparent(&other, &"0".repeat(16), "01"),
        format!("01-{other}-{SPAN}-01"),
        "nonsense".into(),
    ] {
        let answer = up(&[("traceparent", &header)]);
        assert_eq!(
            (answer.status, answer.body.clone()),
            (plain.status, plain.body.clone()),
            "{header}"
        );
    }
    let sampled = traceparent(TRACE, SPAN, "01");
    assert_eq!(up(&[("traceparent", &sampled)]).status, 200);
    let (text, lines) = scrape_exemplars(server.addr, 1);
    let after = unix_now();
    assert!(!text.contains(&other), "no unsampled or malformed id");
    let exemplars: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l.get("exemplar").is_some())
        .collect();
    assert_eq!(exemplars.len(), 1, "one traced request: {text}");
    let e = exemplars[0];
    assert_eq!(e["name"], "http_request_duration_seconds_bucket");
    assert_eq!(e["labels"]["url"], "/up");
    assert_eq!(e["exemplar"]["trace_id"], TRACE);
    assert_eq!(e["exemplar"]["span_id"], SPAN);
    // The exemplar's value lies in its bucket: at most its `le`, above the one before.
    let value = e["exemplar_value"].as_f64().unwrap();
    let le: f64 = e["labels"]["le"].as_str().unwrap().parse().unwrap();
    let bounds = [0.0, 0.01, 0.1, 0.5, 2.0];
    let below = bounds
        .iter()
        .rev()
        .find(|b| **b < le)
        .copied()
        .unwrap_or(0.0);
    assert!(value > below && value <= le, "{value} in ({below}, {le}]");
    let ts = e["timestamp"].as_f64().unwrap();
    assert!(ts >= before - 1.0 && ts <= after + 1.0, "{ts}");
    // `_created` of every counter and histogram series, within the run.
    let created: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l.get("created").is_some())
        .collect();
    assert!(
        created
            .iter()
            .any(|c| c["created"] == "http_request_duration_seconds_created")
    );
    assert!(
        created
            .iter()
            .any(|c| c["created"] == "tinyprom_scrapes_created")
    );
    for c in &created {
        let v = c["value"].as_f64().unwrap();
        assert!(v >= before - 1.0 && v <= after + 1.0, "{c}");
    }

    // Protobuf: the bucket's exemplar, the native set, start timestamps.
    let pb = request(server.addr, "GET", "/metrics", &[("Accept", PROTOBUF)]);
    let decoded = protoc_decode(&pb.body);
    let duration = decoded
        .split("---\n")
        .find(|f| f.contains("name: \"http_request_duration_seconds\""))
        .unwrap();
    // Indentation aside: protoc indents by depth.
    let duration = flat(duration);
    let pair = format!(
        "label {{\nname: \"trace_id\"\nvalue: \"{TRACE}\"\n}}\nlabel {{\nname: \"span_id\"\nvalue: \"{SPAN}\"\n}}"
    );
    // protoc prints bounds as Rust does (`2`, `0.01`, `inf`).
    let bucket = format!("upper_bound: {le}\nexemplar {{\n{pair}\nvalue: ");
    assert!(duration.contains(&bucket), "{duration}");
    let native = format!("exemplars {{\n{pair}\nvalue: ");
    assert!(duration.contains(&native), "{duration}");
    assert_eq!(
        duration.matches("created_timestamp {").count(),
        duration.matches("histogram {").count()
    );
    let counter = decoded
        .split("---\n")
        .find(|f| f.contains("name: \"tinyprom_scrapes_total\""))
        .unwrap();
    assert!(counter.contains("created_timestamp {"), "{counter}");
    // Text 0.0.4 has no exemplars.
    let text = request(server.addr, "GET", "/metrics", &[]).text();
    assert!(!text.contains(TRACE) && !text.contains("_created"));
}

/// Without the flag there are no `_created` samples; the exemplar stays.
#[test]
fn created_samples_are_off_by_default() {
    let server = Tinyprom::start(&[]);
    let sampled = traceparent(TRACE, SPAN, "03");
    request(server.addr, "GET", "/up", &[("traceparent", &sampled)]);
    let (_, lines) = scrape_exemplars(server.addr, 1);
    assert!(lines.iter().all(|l| l.get("created").is_none()));
    assert_eq!(
        lines.iter().filter(|l| l.get("exemplar").is_some()).count(),
        1
    );
}

/// An embedder's route is observed with the exemplar too, and its own counter's
/// exemplar reaches OpenMetrics and protobuf.
#[test]
fn an_embedders_route_and_counter_get_exemplars() {
    let registry = Arc::new(Registry::new());
    let orders = Counter::new();
    registry
        .register("orders_total", "Orders.", orders.clone())
        .unwrap();
    let handle = orders.clone();
    let options = Options {
        listen_address: "127.0.0.1:0".parse().unwrap(),
        ..Options::default()
    };
    let server = Server::builder(options)
        .registry(Arc::clone(&registry))
        .route("/order", move |request| {
            let ids = request
                .headers()
                .iter()
                .find(|h| h.field.equiv("traceparent"))
                .and_then(|h| tinyprom::http::TraceIds::parse(h.value.as_str()));
            match ids {
                Some(ids) => handle
                    .inc_with_exemplar(&[("trace_id", ids.trace_id())])
                    .unwrap(),
                None => handle.inc(),
            }
            Reply::text(200, "ordered\n")
        })
        .bind()
        .unwrap();
    let addr = server.local_addr();
    let running = server.spawn().unwrap();
    let sampled = traceparent(TRACE, SPAN, "01");
    let answer = request(addr, "GET", "/order", &[("traceparent", &sampled)]);
    assert_eq!(answer.status, 200);
    // The counter's exemplar and the route's.
    let (text, lines) = scrape_exemplars(addr, 2);
    let route = lines
        .iter()
        .find(|l| l["labels"]["url"] == "/order" && l.get("exemplar").is_some())
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(route["exemplar"]["trace_id"], TRACE);
    let counter = lines.iter().find(|l| l["name"] == "orders_total").unwrap();
    assert_eq!(
        (
            counter["exemplar"]["trace_id"].as_str(),
            counter["exemplar_value"].as_f64()
        ),
        (Some(TRACE), Some(1.0))
    );
    let pb = request(addr, "GET", "/metrics", &[("Accept", PROTOBUF)]);
    let decoded = protoc_decode(&pb.body);
    let family = decoded
        .split("---\n")
        .find(|f| f.contains("name: \"orders_total\""))
        .unwrap();
    let family = flat(family);
    let exemplar =
        format!("exemplar {{\nlabel {{\nname: \"trace_id\"\nvalue: \"{TRACE}\"\n}}\nvalue: 1\n");
    assert!(family.contains(&exemplar), "{family}");
    running.stop().unwrap();
}

/// Every metric type of the golden registry, with `_created` samples and exemplars on
/// a histogram, a counter family and the `+Inf` bucket, passes the strict OpenMetrics
/// parser: `_created` comes after `_count` (histograms, summaries) or `_total`
/// (counters), under the family's name.
#[test]
fn the_golden_registry_with_created_samples_and_exemplars_parses() {
    let r = fixed_registry::fixed_registry();
    let traced: tinyprom::metrics::Family<Counter> =
        tinyprom::metrics::Family::new(&["queue"]).unwrap();
    r.register("traced_jobs_total", "Jobs.", traced.clone())
        .unwrap();
    traced
        .with_label_values(&["mail"])
        .unwrap()
        .inc_by_with_exemplar(3, &[("trace_id", TRACE)])
        .unwrap();
    let h = tinyprom::metrics::Histogram::new(&[0.5, 1.0]).unwrap();
    r.register("traced_latency_seconds", "Latency.", h.clone())
        .unwrap();
    h.observe_with_exemplar(0.75, &[("trace_id", TRACE), ("span_id", SPAN)])
        .unwrap();
    h.observe_with_exemplar(7.0, &[("trace_id", "inf")])
        .unwrap();
    r.set_openmetrics_created(true);
    let om = r.render(tinyprom::exposition::Format::OpenMetrics);
    let lines = parsed(om.as_bytes());
    let created: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.get("created").and_then(|c| c.as_str()))
        .collect();
    for name in [
        "golden_requests_created",
        "golden_latency_seconds_created",
        "golden_payload_bytes_created",
        "traced_jobs_created",
        "traced_latency_seconds_created",
    ] {
        assert!(created.contains(&name), "{name} in {created:?}\n{om}");
    }
    let exemplars: Vec<(String, f64)> = lines
        .iter()
        .filter(|l| l.get("exemplar").is_some())
        .map(|l| {
            let le = l["labels"]["le"].as_str().unwrap_or("").to_string();
            (
                format!("{}{le}", l["name"].as_str().unwrap()),
                l["exemplar_value"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        exemplars,
        [
            ("traced_jobs_total".to_string(), 3.0),
            ("traced_latency_seconds_bucket1.0".to_string(), 0.75),
            ("traced_latency_seconds_bucket+Inf".to_string(), 7.0),
        ],
        "{om}"
    );
    // Text 0.0.4 has none of either, and still parses.
    let text = r.render(tinyprom::exposition::Format::Text);
    assert!(!text.contains("_created") && !text.contains(" # {"));
}
