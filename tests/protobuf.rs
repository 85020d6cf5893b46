//! The protobuf exposition, decoded by `protoc` with a schema written from the
//! documented field numbers (`tests/support/metrics.proto`), not by our own code.
//!
//! * The fixed registry of the golden tests, plus native histograms, decodes to the
//!   text pinned in `tests/golden/registry.protobuf.txt` (`UPDATE_GOLDEN=1` rewrites
//!   it): every metric type, NaN and ±Inf, escaping, empty families left out.
//! * Native buckets decode to spans and deltas that add up to `_count`.
//! * The real binary serves protobuf to Prometheus' protobuf-first `Accept` header,
//!   with native buckets for `http_request_duration_seconds`.

mod common;

#[path = "support/fixed_registry.rs"]
mod fixed_registry;

use std::path::PathBuf;

use common::{Tinyprom, protoc_decode_families, request};
use fixed_registry::fixed_registry;
use tinyprom::exposition::Format;
use tinyprom::metrics::{Family, Histogram, NativeOptions, Registry};

/// Prometheus 2.42 with `--enable-feature=native-histograms`.
const NATIVE_ACCEPT: &str = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// The fields of one decoded `Histogram` message that the native checks need.
#[derive(Debug, Default)]
struct Decoded {
    sample_count: u64,
    schema: Option<i64>,
    zero_count: u64,
    /// Bucket counts rebuilt from spans and deltas, per sign: (index, count).
    positive: Vec<(i64, i64)>,
    negative: Vec<(i64, i64)>,
    /// Spans, per sign, as (offset, length).
    spans: [Vec<(i64, i64)>; 2],
    deltas: [Vec<i64>; 2],
}

/// Reads every `histogram { ... }` block of protoc's text output.
fn histograms(decoded: &str) -> Vec<Decoded> {
    let mut out = Vec::new();
    let mut current: Option<Decoded> = None;
    let mut span: Option<(usize, i64, i64)> = None;
    let mut in_bucket = false;
    for line in decoded.lines().map(str::trim) {
        if line == "histogram {" {
            current = Some(Decoded::default());
            continue;
        }
        let Some(h) = current.as_mut() else { continue };
        let field = |name: &str| line.strip_prefix(name).map(|v| v.parse::<i64>().unwrap());
        if line == "bucket {" {
            in_bucket = true;
        } else if in_bucket {
            in_bucket = line != "}";
        } else if line == "positive_span {" || line == "negative_span {" {
            span = Some((usize::from(line.starts_with('n')), 0, 0));
        } else if let Some((sign, offset, length)) = span.as_mut() {
            if line == "}" {
                h.spans[*sign].push((*offset, *length));
                span = None;
            } else if let Some(v) = field("offset: ") {
                *offset = v;
            } else if let Some(v) = field("length: ") {
                *length = v;
            }
        } else if line == "}" {
            let mut h = current.take().unwrap();
            for sign in 0..2 {
                let mut index = 0;
                let mut count = 0;
                let mut deltas = h.deltas[sign].iter();
                let mut rebuilt = Vec::new();
                for (i, &(offset, length)) in h.spans[sign].iter().enumerate() {
                    index = if i == 0 { offset } else { index + offset };
                    for _ in 0..length {
                        count += deltas.next().expect("a delta per bucket");
                        rebuilt.push((index, count));
                        index += 1;
                    }
                }
                assert!(deltas.next().is_none(), "more deltas than span buckets");
                if sign == 0 {
                    h.positive = rebuilt;
                } else {
                    h.negative = rebuilt;
                }
            }
            out.push(h);
        } else if let Some(v) = field("sample_count: ") {
            h.sample_count = v as u64;
        } else if let Some(v) = field("schema: ") {
            h.schema = Some(v);
        } else if let Some(v) = field("zero_count: ") {
            h.zero_count = v as u64;
        } else if let Some(v) = field("positive_delta: ") {
            h.deltas[0].push(v);
        } else if let Some(v) = field("negative_delta: ") {
            h.deltas[1].push(v);
        }
    }
    out
}

/// The fixed registry plus native histograms: one with observations of both signs,
/// the zero bucket and a gap wider than a span folds, and one never observed.
fn registry_with_native() -> Registry {
    let r = fixed_registry();
    let native: Family<Histogram> = Family::with_constructor(&["case"], || {
        Histogram::with_native(&[0.1, 1.0], NativeOptions::new()).unwrap()
    })
    .unwrap();
    let mixed = native.with_label_values(&["mixed"]).unwrap();
    for v in [0.0, 1.0, 1.0, 1.05, 2.0, 8.0, -0.5, -0.5, -3.0] {
        mixed.observe(v);
    }
    native.with_label_values(&["empty"]).unwrap();
    r.register("golden_native_seconds", "Native buckets.", native)
        .unwrap();
    r
}

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/registry.protobuf.txt")
}

/// Replaces the seconds of every `created_timestamp` (the series' creation time,
/// which differs from run to run) with `<start>` and drops its nanoseconds, after
/// checking that the time lies in `[from, to]` (Unix seconds).
fn pin_start_timestamps(decoded: &str, from: u64, to: u64) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in decoded.lines() {
        let trimmed = line.trim();
        if trimmed == "created_timestamp {" {
            inside = true;
        } else if inside && trimmed == "}" {
            inside = false;
        } else if inside {
            if let Some(secs) = trimmed.strip_prefix("seconds: ") {
                let secs: u64 = secs.parse().unwrap();
                assert!(
                    (from..=to).contains(&secs),
                    "start {secs} not in [{from}, {to}]"
                );
                out += &line.replace(trimmed, "seconds: <start>");
                out.push('\n');
            }
            continue;
        }
        out += line;
        out.push('\n');
    }
    out
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn golden_registry_decodes_with_protoc() {
    let from = unix_now();
    let body = registry_with_native().render_bytes(Format::Protobuf);
    let decoded = protoc_decode_families(&body).join("---\n");
    let starts = decoded.matches("created_timestamp {").count();
    let decoded = pin_start_timestamps(&decoded, from, unix_now());
    // Every counter, histogram and summary series has one, but the callback counter
    // (its value comes from elsewhere, with no known start); gauges and infos none.
    assert_eq!(
        starts,
        decoded.matches("counter {").count() - 1
            + decoded.matches("histogram {").count()
            + decoded.matches("summary {").count(),
        "{decoded}"
    );
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(golden_path(), &decoded).unwrap();
    }
    let golden = std::fs::read_to_string(golden_path())
        .expect("golden file; create it with UPDATE_GOLDEN=1 cargo test --test protobuf");
    assert_eq!(
        decoded, golden,
        "(if intended: UPDATE_GOLDEN=1 cargo test --test protobuf)"
    );
    // A few facts, independently of the golden file.
    assert!(
        !decoded.contains("golden_empty_total"),
        "empty families are left out"
    );
    assert!(
        decoded.contains(
            "name: \"golden_requests_total\"\nhelp: \"Requests served.\"\ntype: COUNTER\n"
        )
    );
    for special in ["value: nan", "value: inf", "value: -inf"] {
        assert!(decoded.contains(special), "{special}");
    }
    assert!(decoded.contains(r#"value: "quote \" backslash \\ newline \n unicode"#));
    assert!(decoded.contains("type: SUMMARY") && decoded.contains("quantile: 0.99"));
    assert!(
        decoded
            .contains("name: \"golden_build_info\"\nhelp: \"Build information.\"\ntype: GAUGE\n")
    );
}

#[test]
fn native_buckets_decode_to_the_count() {
    let body = registry_with_native().render_bytes(Format::Protobuf);
    let decoded = protoc_decode_families(&body);
    let native = decoded
        .iter()
        .find(|f| f.contains("golden_native_seconds"))
        .unwrap();
    let hs = histograms(native);
    assert_eq!(hs.len(), 2);
    let (mixed, empty) = if hs[0].sample_count > 0 {
        (&hs[0], &hs[1])
    } else {
        (&hs[1], &hs[0])
    };
    assert_eq!(mixed.schema, Some(3));
    assert_eq!(mixed.sample_count, 9);
    assert_eq!(mixed.zero_count, 1);
    // 1.0 is bucket 0 (upper bound 1), 1.05 bucket 1, 2.0 bucket 8, 8.0 bucket 24.
    let occupied = |b: &[(i64, i64)]| -> Vec<(i64, i64)> {
        b.iter().copied().filter(|&(_, n)| n != 0).collect()
    };
    assert_eq!(occupied(&mixed.positive), [(0, 2), (1, 1), (8, 1), (24, 1)]);
    // -0.5 is bucket -8 (upper bound 2^-1), -3 bucket 13 (2^(13/8) = 3.08).
    assert_eq!(occupied(&mixed.negative), [(-8, 2), (13, 1)]);
    let total: i64 = occupied(&mixed.positive)
        .iter()
        .chain(&occupied(&mixed.negative))
        .map(|b| b.1)
        .sum();
    assert_eq!(total as u64 + mixed.zero_count, mixed.sample_count);
    // Never observed: no buckets, but the no-op span marks it native.
    assert_eq!(empty.sample_count, 0);
    assert_eq!(empty.spans[0], [(0, 0)]);
    assert!(empty.positive.is_empty() && empty.negative.is_empty());
}

#[test]
fn the_server_serves_protobuf_to_prometheus_native_accept() {
    let server = Tinyprom::start(&[]);
    for _ in 0..5 {
        assert_eq!(server.get("/up").status, 200);
    }
    // A request is observed just after its response is written, so the last /up may
    // be counted a moment after its client saw the answer: scrape again (bounded)
    // until all five are in.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let (decoded, duration, hs) = loop {
        let r = request(server.addr, "GET", "/metrics", &[("Accept", NATIVE_ACCEPT)]);
        assert_eq!(r.status, 200);
        assert_eq!(
            r.header("Content-Type"),
            Some(format!("{}; escaping=underscores", Format::Protobuf.content_type()).as_str())
        );
        let decoded = protoc_decode_families(&r.body);
        let duration = decoded
            .iter()
            .find(|f| f.contains("name: \"http_request_duration_seconds\""))
            .expect("the RED histogram")
            .clone();
        let hs = histograms(&duration);
        let up = hs.iter().map(|h| h.sample_count).sum::<u64>();
        if up >= 5 || std::time::Instant::now() > deadline {
            assert!(up >= 5, "{duration}");
            break (decoded, duration, hs);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let duration = &duration;
    for h in &hs {
        assert_eq!(h.schema, Some(3));
        let total: i64 = h.positive.iter().map(|b| b.1).sum();
        assert_eq!(total as u64 + h.zero_count, h.sample_count, "{duration}");
    }
    assert!(decoded.iter().any(|f| f.contains("value: \"protobuf\"")));
}
