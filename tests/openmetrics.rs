//! OpenMetrics 1.0 and text 0.0.4, byte for byte and through independent parsers.
//!
//! * Golden files (`tests/golden/`) pin a fixed registry with every metric type and
//!   every escaping case in both formats. To change them deliberately, run
//!   `UPDATE_GOLDEN=1 cargo test --test openmetrics` and review the diff.
//! * The same renderings must be accepted by Python's strict OpenMetrics parser, its
//!   text parser, `promtool check metrics` (text) and Prometheus' own OpenMetrics
//!   parser (through `promtool tsdb create-blocks-from openmetrics`), and decode to the
//!   same series.
//! * The real binary negotiates on `Accept`: Prometheus' header gets OpenMetrics,
//!   anything else (missing, empty, garbage, unknown versions) text 0.0.4, never a 406;
//!   `tinyprom_scrapes_total{format}` counts what was served.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::{Tinyprom, pipe, promtool_check, python_parse, request, samples};
use tinyprom::exposition::Format;
use tinyprom::metrics::{Gauge, Registry};

/// The `Accept` header Prometheus 2.x/3.x sends by default.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
/// The `Accept` header of Prometheus 2.42 with `--enable-feature=native-histograms`.
const PROMETHEUS_NATIVE_ACCEPT: &str = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
const OM_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores";
const TEXT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8; escaping=underscores";
const PROTOBUF_TYPE: &str = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited; escaping=underscores";

#[path = "support/fixed_registry.rs"]
mod fixed_registry;
use fixed_registry::{TRICKY, fixed_registry};

fn golden_path(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(file)
}

/// Compares `actual` with a golden file byte for byte (or rewrites it when
/// `UPDATE_GOLDEN` is set).
fn assert_golden(file: &str, actual: &str) {
    let path = golden_path(file);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; create it with UPDATE_GOLDEN=1 cargo test --test openmetrics",
            path.display()
        )
    });
    if expected != actual {
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!(
            "{file} differs from the rendering at line {}:\n  golden: {:?}\n  actual: {:?}\n\
             (if the change is intended: UPDATE_GOLDEN=1 cargo test --test openmetrics)",
            line + 1,
            expected.lines().nth(line),
            actual.lines().nth(line)
        );
    }
}

#[test]
fn golden_text_and_openmetrics() {
    let r = fixed_registry();
    assert_golden("registry.prom", &r.render(Format::Text));
    assert_golden("registry.openmetrics", &r.render(Format::OpenMetrics));
}

/// Sorted `name labels value` lines, comparable across formats: `le` and `quantile`
/// are compared as numbers (`1` in text is `1.0` in OpenMetrics), values bit for bit.
fn series(families: &[common::Family]) -> Vec<String> {
    let mut out: Vec<String> = samples(families)
        .into_iter()
        .map(|mut s| {
            for key in ["le", "quantile"] {
                if let Some(v) = s.labels.get_mut(key) {
                    *v = format!("{:?}", v.parse::<f64>().unwrap());
                }
            }
            format!("{} {:?} {:?}", s.name, s.labels, s.value.to_bits())
        })
        .collect();
    out.sort();
    out
}

#[test]
fn both_renderings_parse_strictly_and_agree() {
    let r = fixed_registry();
    let text = r.render(Format::Text);
    let om = r.render(Format::OpenMetrics);
    let (ok, lint) = promtool_check(text.as_bytes());
    assert!(ok && lint.trim().is_empty(), "promtool: {lint}");
    let text_families = python_parse(text.as_bytes(), "text");
    let om_families = python_parse(om.as_bytes(), "openmetrics");

    let kinds: BTreeMap<&str, (&str, &str)> = om_families
        .iter()
        .map(|f| (f.name.as_str(), (f.kind.as_str(), f.unit.as_str())))
        .collect();
    assert_eq!(kinds["golden_requests"], ("counter", ""));
    assert_eq!(kinds["golden_cpu_seconds"], ("counter", "seconds"));
    assert_eq!(kinds["golden_empty"], ("counter", ""));
    assert_eq!(kinds["golden_humidity_ratio"], ("gauge", ""));
    assert_eq!(kinds["golden_unused_seconds"], ("histogram", ""));
    assert_eq!(kinds["golden_temperature_celsius"], ("gauge", "celsius"));
    assert_eq!(kinds["golden_latency_seconds"], ("histogram", "seconds"));
    assert_eq!(kinds["golden_payload_bytes"], ("summary", "bytes"));
    assert_eq!(kinds["golden_build"], ("info", ""));
    let text_kind = |n: &str| {
        text_families
            .iter()
            .find(|f| f.name == n)
            .unwrap()
            .kind
            .clone()
    };
    assert_eq!(text_kind("golden_build_info"), "gauge");

    // Escaped label values come back unchanged (HELP texts: see the next test).
    let tricky = samples(&om_families)
        .into_iter()
        .find(|s| s.name == "golden_errors_total" && s.labels["code"] == "500")
        .unwrap();
    assert_eq!(tricky.labels["path"], TRICKY);
    let info = samples(&text_families)
        .into_iter()
        .find(|s| s.name == "golden_build_info")
        .unwrap();
    assert_eq!(info.labels["note"], TRICKY);

    // Same series and values whichever format was parsed.
    assert_eq!(series(&text_families), series(&om_families));

    // Prometheus' own OpenMetrics parser stores every sample.
    assert_eq!(
        prometheus_parse_openmetrics(&om),
        samples(&om_families).len() as u64
    );
}

#[test]
fn help_texts_round_trip_through_both_parsers() {
    let r = Registry::new();
    r.register("h", TRICKY, Gauge::new()).unwrap();
    for (format, name) in [(Format::Text, "text"), (Format::OpenMetrics, "openmetrics")] {
        let body = r.render(format);
        let script = concat!(
            "import sys\n",
            "from prometheus_client.parser import text_string_to_metric_families as t\n",
            "from prometheus_client.openmetrics.parser import text_string_to_metric_families as o\n",
            "f = o if sys.argv[1] == 'openmetrics' else t\n",
            "sys.stdout.write(list(f(sys.stdin.read()))[0].documentation)\n"
        );
        let out = pipe("python3", &["-c", script, name], body.as_bytes());
        assert_eq!(out, TRICKY, "{name}: {body}");
    }
}

/// Parses an OpenMetrics exposition with Prometheus' own parser (the one scrapes use),
/// through `promtool tsdb create-blocks-from openmetrics`, and returns the number of
/// samples Prometheus stored. That command needs a timestamp on every sample, so one
/// is appended to each sample line first; nothing else is changed.
fn prometheus_parse_openmetrics(body: &str) -> u64 {
    let stamped: String = body
        .lines()
        .map(|line| {
            if line.starts_with('#') {
                format!("{line}\n")
            } else {
                format!("{line} 1700000000\n")
            }
        })
        .collect();
    let dir = std::env::temp_dir().join(format!(
        "tinyprom-om-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("input.om");
    std::fs::write(&input, stamped).unwrap();
    let out = std::process::Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&input)
        .arg(dir.join("blocks"))
        .output()
        .expect("promtool (Debian package prometheus; run `make deps`)");
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "Prometheus' OpenMetrics parser rejected the exposition: {}{stdout}\n--- input ---\n{body}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The block table: ULID, min time, max time, duration, samples, chunks, series, size.
    stdout
        .lines()
        .filter_map(|line| line.split_whitespace().nth(4)?.parse::<u64>().ok())
        .sum()
}

fn scrape(server: &Tinyprom, accept: Option<&str>) -> common::Response {
    let headers: Vec<(&str, &str)> = accept.map(|a| ("Accept", a)).into_iter().collect();
    request(server.addr, "GET", "/metrics", &headers)
}

#[test]
fn prometheus_gets_openmetrics_that_parses_strictly() {
    let server = Tinyprom::start(&[]);
    server.get("/up");
    server.get("/synthetic");
    let r = scrape(&server, Some(PROMETHEUS_ACCEPT));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some(OM_TYPE));
    let body = r.text();
    assert!(body.ends_with("# EOF\n"));
    let families = python_parse(&r.body, "openmetrics");
    let kind = |n: &str| {
        families
            .iter()
            .find(|f| f.name == n)
            .map(|f| (f.kind.as_str(), f.unit.as_str()))
            .unwrap_or_else(|| panic!("{n} missing from\n{body}"))
    };
    assert_eq!(kind("tinyprom_build"), ("info", ""));
    assert_eq!(kind("tinyprom_scrapes"), ("counter", ""));
    assert_eq!(
        kind("http_request_duration_seconds"),
        ("histogram", "seconds")
    );
    assert_eq!(kind("process_cpu_seconds"), ("counter", "seconds"));
    let build = samples(&families)
        .into_iter()
        .find(|s| s.name == "tinyprom_build_info")
        .unwrap();
    assert_eq!(build.labels["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(build.value, 1.0);
    // Canonical OpenMetrics `le` values.
    assert!(body.contains("le=\"2.0\"}"), "{body}");
    assert_eq!(
        prometheus_parse_openmetrics(&body),
        samples(&families).len() as u64
    );
}

#[test]
fn text_clients_get_text_004_that_lints_clean() {
    let server = Tinyprom::start(&[]);
    server.get("/up");
    for accept in [Some("text/plain;version=0.0.4"), None] {
        let r = scrape(&server, accept);
        assert_eq!(r.status, 200);
        assert_eq!(r.header("Content-Type"), Some(TEXT_TYPE), "{accept:?}");
        assert!(!r.text().contains("# EOF"));
        let (ok, lint) = promtool_check(&r.body);
        assert!(ok && lint.trim().is_empty(), "promtool: {lint}");
        let families = python_parse(&r.body, "text");
        let build = families
            .iter()
            .find(|f| f.name == "tinyprom_build_info")
            .expect("tinyprom_build_info");
        assert_eq!(build.kind, "gauge");
        assert_eq!(
            build.samples[0].labels["version"],
            env!("CARGO_PKG_VERSION")
        );
    }
}

/// Every `Accept` header gets a 200 in the expected format, and the scrape counter
/// counts exactly the formats served.
#[test]
fn accept_edge_cases_never_fail_and_are_counted() {
    let server = Tinyprom::start(&["--no-process-metrics"]);
    let cases: &[(Option<&str>, Format)] = &[
        (None, Format::Text),
        (Some(""), Format::Text),
        (Some("garbage"), Format::Text),
        (Some(";;;,,,=q"), Format::Text),
        (Some("application/json"), Format::Text),
        (
            Some("application/openmetrics-text;version=2.0.0"),
            Format::Text,
        ),
        (
            Some("application/openmetrics-text; version=0.0.1"),
            Format::OpenMetrics,
        ),
        (Some("application/openmetrics-text;q=abc"), Format::Text),
        (Some("application/openmetrics-text;q=0"), Format::Text),
        (Some("application/openmetrics-text"), Format::OpenMetrics),
        (
            Some("application/openmetrics-text; version=1.0.0; charset=utf-8"),
            Format::OpenMetrics,
        ),
        (Some(PROMETHEUS_ACCEPT), Format::OpenMetrics),
        (
            Some("text/plain;version=0.0.4;q=0.9,application/openmetrics-text;version=1.0.0;q=0.8"),
            Format::Text,
        ),
        (
            Some("text/plain;version=0.0.4;q=0.3,application/openmetrics-text;version=1.0.0;q=0.8"),
            Format::OpenMetrics,
        ),
        (
            Some("application/openmetrics-text;version=2.0.0;q=1,text/plain;q=0.1"),
            Format::Text,
        ),
        (Some("*/*"), Format::Text),
        (
            Some("APPLICATION/OPENMETRICS-TEXT;VERSION=1.0.0"),
            Format::OpenMetrics,
        ),
        (Some(PROMETHEUS_NATIVE_ACCEPT), Format::Protobuf),
    ];
    let mut served = BTreeMap::from([("openmetrics", 0u64), ("protobuf", 0), ("text", 0)]);
    for (accept, want) in cases {
        let r = scrape(&server, *accept);
        assert_eq!(r.status, 200, "{accept:?}");
        let (content_type, parser, label) = match want {
            Format::OpenMetrics => (OM_TYPE, Some("openmetrics"), "openmetrics"),
            Format::Text => (TEXT_TYPE, Some("text"), "text"),
            // Decoded by `protoc` in tests/protobuf.rs.
            Format::Protobuf => (PROTOBUF_TYPE, None, "protobuf"),
        };
        assert_eq!(r.header("Content-Type"), Some(content_type), "{accept:?}");
        if let Some(parser) = parser {
            python_parse(&r.body, parser);
        }
        *served.get_mut(label).unwrap() += 1;
    }
    // One more scrape in each format: the counter includes the scrape being served.
    let om = python_parse(
        &scrape(&server, Some(PROMETHEUS_ACCEPT)).body,
        "openmetrics",
    );
    *served.get_mut("openmetrics").unwrap() += 1;
    let counted: BTreeMap<String, u64> = samples(&om)
        .into_iter()
        .filter(|s| s.name == "tinyprom_scrapes_total")
        .map(|s| (s.labels["format"].clone(), s.value as u64))
        .collect();
    let expected: BTreeMap<String, u64> = served.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    assert_eq!(counted, expected);
    let text = python_parse(&scrape(&server, None).body, "text");
    let text_count = samples(&text)
        .into_iter()
        .find(|s| s.name == "tinyprom_scrapes_total" && s.labels["format"] == "text")
        .unwrap();
    assert_eq!(text_count.value as u64, served["text"] + 1);
}
