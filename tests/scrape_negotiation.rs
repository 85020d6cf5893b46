//! Negotiation and names over real HTTP: the `name[]` filter in all three formats
//! against the real binary (text and OpenMetrics read by Python's `prometheus_client`,
//! protobuf by `protoc`), `Vary: Accept, Accept-Encoding` on `HEAD` and gzip answers
//! (curl), and UTF-8 names under each escaping scheme from a server embedding the
//! library (the binary registers only legacy names).

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use common::{
    Tinyprom, curl, gunzip_cli, protoc_decode_families, protoc_family_names, python_parse, request,
    samples,
};
use tinyprom::http::{Options, Server};
use tinyprom::metrics::{Buckets, Counter, Family, Gauge, Histogram, Info, Registry, Summary};

const OPENMETRICS: &str = "application/openmetrics-text;version=1.0.0";
const PROTOBUF: &str =
    "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited";

fn names(families: &[common::Family]) -> BTreeSet<String> {
    families.iter().map(|f| f.name.clone()).collect()
}

#[test]
fn name_filter_in_all_three_formats() {
    let server = Tinyprom::start(&[]);
    server.get("/up");
    // Two registered families, one of the process collector's (which writes several
    // families itself), and one that does not exist.
    let query = "/metrics?name[]=http_request_duration_seconds&name%5B%5D=tinyprom_scrapes_total&name[]=process_open_fds&name[]=no_such_family";
    // Python's parsers name a counter family without `_total`.
    let want: BTreeSet<String> = [
        "http_request_duration_seconds",
        "tinyprom_scrapes",
        "process_open_fds",
    ]
    .map(String::from)
    .into();

    let text = request(server.addr, "GET", query, &[]);
    assert_eq!(text.status, 200);
    assert_eq!(names(&python_parse(&text.body, "text")), want);

    let om = request(server.addr, "GET", query, &[("Accept", OPENMETRICS)]);
    assert_eq!(names(&python_parse(&om.body, "openmetrics")), want);

    let proto = request(server.addr, "GET", query, &[("Accept", PROTOBUF)]);
    let decoded = protoc_decode_families(&proto.body);
    assert_eq!(
        protoc_family_names(&decoded),
        [
            "http_request_duration_seconds",
            "tinyprom_scrapes_total",
            "process_open_fds"
        ]
    );

    // Unknown names: an empty scrape, still a 200, in every format.
    for (accept, empty) in [
        ("text/plain", &b""[..]),
        (OPENMETRICS, b"# EOF\n"),
        (PROTOBUF, b""),
    ] {
        let r = request(
            server.addr,
            "GET",
            "/metrics?name[]=nope",
            &[("Accept", accept)],
        );
        assert_eq!((r.status, r.body.as_slice()), (200, empty), "{accept}");
    }
    // No filter: everything, as before.
    let all = request(server.addr, "GET", "/metrics", &[]);
    let all = names(&python_parse(&all.body, "text"));
    assert!(
        all.is_superset(&want) && all.len() > want.len() + 5,
        "{all:?}"
    );
}

#[test]
fn vary_on_every_metrics_answer() {
    let server = Tinyprom::start(&[]);
    let url = format!("http://{}/metrics", server.addr);
    for accept in ["text/plain", OPENMETRICS, PROTOBUF] {
        for gzip in [false, true] {
            for head in [false, true] {
                let mut args = vec!["--include", "-H"];
                let accept_header = format!("Accept: {accept}");
                args.push(&accept_header);
                if gzip {
                    args.extend(["-H", "Accept-Encoding: gzip"]);
                }
                if head {
                    args.push("--head");
                }
                args.push(&url);
                let raw = curl(&args);
                let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
                let head_text = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
                let case = format!("{accept} gzip={gzip} head={head}:\n{head_text}");
                assert!(head_text.starts_with("http/1.1 200"), "{case}");
                assert!(
                    head_text.contains("\r\nvary: accept, accept-encoding\r\n"),
                    "{case}"
                );
                assert_eq!(
                    head_text.contains("\r\ncontent-encoding: gzip\r\n"),
                    gzip,
                    "{case}"
                );
                assert!(head_text.contains("; escaping=underscores\r\n"), "{case}");
                let body = &raw[split + 4..];
                if head {
                    assert!(body.is_empty(), "{case}");
                } else if gzip {
                    assert!(!gunzip_cli(body).is_empty(), "{case}");
                }
            }
        }
    }
    // A refused method is a /metrics answer too.
    let raw = curl(&["--include", "-X", "POST", &url]);
    let text = String::from_utf8_lossy(&raw).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 405"), "{text}");
    assert!(
        text.contains("\r\nvary: accept, accept-encoding\r\n"),
        "{text}"
    );
    assert!(text.contains("\r\nallow: get, head\r\n"), "{text}");
}

/// A server (the library's, as an embedder runs it) whose registry has UTF-8 names.
fn utf8_server() -> tinyprom::http::RunningServer {
    let registry = Arc::new(Registry::new());
    let requests: Family<Counter> = Family::new(&["service.name"]).unwrap();
    registry
        .register("my.requests_total", "Requests.", requests.clone())
        .unwrap();
    requests.with_label_values(&["api"]).unwrap().inc_by(7);
    let buckets = Buckets::new(&[0.5]).unwrap();
    let duration = Family::with_constructor(&["http.route"], move || {
        Histogram::with_buckets(Arc::clone(&buckets))
    })
    .unwrap();
    registry
        .register("http.server.duration", "Durations.", duration.clone())
        .unwrap();
    duration.with_label_values(&["/a"]).unwrap().observe(0.25);
    registry
        .register("legacy_gauge", "Legacy.", Gauge::new())
        .unwrap();
    let sizes = Summary::new();
    sizes.observe(3.0);
    registry.register("payload.size", "Sizes.", sizes).unwrap();
    let build = Info::new(&[("build.version", "1.2")]).unwrap();
    registry.register("app.build", "Build.", build).unwrap();
    let options = Options {
        listen_address: "127.0.0.1:0".parse().unwrap(),
        process_metrics: false,
        ..Options::default()
    };
    Server::builder(options)
        .registry(registry)
        .bind()
        .unwrap()
        .spawn()
        .unwrap()
}

#[test]
fn utf8_names_under_every_escaping_scheme() {
    let server = utf8_server();
    let addr = server.local_addr();
    let filter =
        "/metrics?name[]=my.requests_total&name[]=http.server.duration&name[]=legacy_gauge";
    let scrape = |accept: &str| {
        let r = request(addr, "GET", filter, &[("Accept", accept)]);
        assert_eq!(r.status, 200);
        (r.header("Content-Type").unwrap().to_string(), r.text())
    };

    // allow-utf-8: quoted in both text formats, and both parse.
    let (content_type, text) = scrape("text/plain;version=1.0.0;escaping=allow-utf-8");
    assert!(
        content_type.ends_with("; escaping=allow-utf-8"),
        "{content_type}"
    );
    assert!(
        text.contains("{\"my.requests_total\",\"service.name\"=\"api\"} 7\n"),
        "{text}"
    );
    assert!(
        text.contains("{\"http.server.duration_bucket\",\"http.route\"=\"/a\",le=\"0.5\"} 1\n"),
        "{text}"
    );
    assert!(text.contains("\nlegacy_gauge 0\n"), "{text}");
    let families = python_parse(text.as_bytes(), "text");
    assert!(names(&families).contains("my.requests"), "{families:?}");
    let (content_type, om) =
        scrape("application/openmetrics-text;version=1.0.0;escaping=allow-utf-8");
    assert!(content_type.starts_with("application/openmetrics-text; version=1.0.0"));
    assert!(om.contains("# TYPE \"my.requests\" counter\n"), "{om}");
    let families = python_parse(om.as_bytes(), "openmetrics");
    let route = families
        .iter()
        .find(|f| f.name == "http.server.duration")
        .and_then(|f| f.samples.first())
        .map(|s| s.labels["http.route"].clone());
    assert_eq!(route.as_deref(), Some("/a"));

    // The three escaping schemes, and the default (none named): legacy names only,
    // read by both parsers; legacy names unchanged.
    for (scheme, counter, label, histogram) in [
        (
            "underscores",
            "my_requests_total",
            "service_name",
            "http_server_duration",
        ),
        (
            "dots",
            "my_dot_requests__total",
            "service_dot_name",
            "http_dot_server_dot_duration",
        ),
        (
            "values",
            "U__my_2e_requests__total",
            "U__service_2e_name",
            "U__http_2e_server_2e_duration",
        ),
        (
            "",
            "my_requests_total",
            "service_name",
            "http_server_duration",
        ),
    ] {
        let param = if scheme.is_empty() {
            String::new()
        } else {
            format!(";escaping={scheme}")
        };
        let (content_type, text) = scrape(&format!("text/plain;version=0.0.4{param}"));
        let named = if scheme.is_empty() {
            "underscores"
        } else {
            scheme
        };
        assert!(
            content_type.ends_with(&format!("; escaping={named}")),
            "{content_type}"
        );
        assert!(
            text.contains(&format!("\n{counter}{{{label}=\"api\"}} 7\n")),
            "{scheme}: {text}"
        );
        assert!(
            text.contains(&format!("\n{histogram}_count{{")),
            "{scheme}: {text}"
        );
        assert!(text.contains("\nlegacy_gauge 0\n"), "{scheme}: {text}");
        assert!(
            !text.contains("{\"") && !text.contains(",\""),
            "{scheme}: {text}"
        );
        python_parse(text.as_bytes(), "text");
        let (_, om) = scrape(&format!("{OPENMETRICS}{param}"));
        python_parse(om.as_bytes(), "openmetrics");

        // Protobuf carries the same escaped names.
        let r = request(
            addr,
            "GET",
            filter,
            &[("Accept", &format!("{PROTOBUF}{param}"))],
        );
        let decoded = protoc_decode_families(&r.body);
        assert_eq!(
            protoc_family_names(&decoded),
            [counter, histogram, "legacy_gauge"]
        );
        assert!(
            decoded[0].contains(&format!("name: \"{label}\"")),
            "{}",
            decoded[0]
        );
    }

    // Protobuf under allow-utf-8: the names as registered.
    let r = request(
        addr,
        "GET",
        filter,
        &[("Accept", &format!("{PROTOBUF};escaping=allow-utf-8"))],
    );
    let decoded = protoc_decode_families(&r.body);
    assert_eq!(
        protoc_family_names(&decoded),
        ["my.requests_total", "http.server.duration", "legacy_gauge"]
    );
    assert!(
        decoded[0].contains("name: \"service.name\""),
        "{}",
        decoded[0]
    );

    // Everything (summary and info included, and tinyprom's own families), in every
    // scheme and both text formats, parses; protobuf decodes.
    for (scheme, summary, info_label) in [
        ("allow-utf-8", "payload.size", "build.version"),
        ("underscores", "payload_size", "build_version"),
        ("dots", "payload_dot_size", "build_dot_version"),
        ("values", "U__payload_2e_size", "U__build_2e_version"),
    ] {
        for (accept, parser) in [
            ("text/plain;version=0.0.4", "text"),
            (OPENMETRICS, "openmetrics"),
        ] {
            let accept = format!("{accept};escaping={scheme}");
            let r = request(addr, "GET", "/metrics", &[("Accept", &accept)]);
            let families = python_parse(&r.body, parser);
            let found = families.iter().find(|f| f.name == summary);
            assert_eq!(
                found.map(|f| f.kind.as_str()),
                Some("summary"),
                "{accept}: {families:?}"
            );
            assert!(names(&families).contains("http_request_duration_seconds"));
            let info = samples(&families)
                .into_iter()
                .find(|s| s.labels.get(info_label).is_some_and(|v| v == "1.2"));
            assert!(info.is_some(), "{accept}: no info sample in {families:?}");
        }
        let accept = format!("{PROTOBUF};escaping={scheme}");
        let r = request(addr, "GET", "/metrics", &[("Accept", &accept)]);
        let decoded = protoc_decode_families(&r.body);
        assert!(
            decoded.len() > 5
                && decoded
                    .iter()
                    .any(|f| f.contains(&format!("name: \"{info_label}\"")))
        );
    }
    server.stop().unwrap();
}
