//! The real binary over real loopback HTTP: bodies, codes, routing, and the histogram
//! counting exactly what the clients received.

mod common;

use std::collections::BTreeMap;

use common::{Tinyprom, promtool_check, python_parse, request, samples, scrape_until};

#[test]
fn up_answers_i_am_running() {
    let server = Tinyprom::start(&[]);
    let r = server.get("/up");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "I am running!");
    let r = server.get("/up?probe=1");
    assert_eq!(r.status, 200, "query strings are ignored for routing");
}

#[test]
fn head_works_wherever_get_does() {
    let server = Tinyprom::start(&[]);
    for path in ["/up", "/metrics", "/synthetic"] {
        let r = request(server.addr, "HEAD", path, &[]);
        assert!(r.body.is_empty(), "{path}: HEAD has no body");
        if path == "/synthetic" {
            assert!([200, 400, 401, 500].contains(&r.status));
        } else {
            assert_eq!(r.status, 200, "{path}");
        }
    }
}

#[test]
fn unknown_paths_are_404_and_other_methods_405() {
    let server = Tinyprom::start(&[]);
    assert_eq!(server.get("/nope").status, 404);
    assert_eq!(server.get("/").status, 200, "the landing page");
    assert_eq!(server.get("/up/extra").status, 404);
    for (method, path) in [
        ("POST", "/up"),
        ("DELETE", "/metrics"),
        ("PUT", "/synthetic"),
        ("BREW", "/up"),
    ] {
        let r = request(server.addr, method, path, &[("Content-Length", "0")]);
        assert_eq!(r.status, 405, "{method} {path}");
        assert_eq!(r.header("Allow"), Some("GET, HEAD"), "{method} {path}");
    }
    assert_eq!(
        request(server.addr, "POST", "/nope", &[("Content-Length", "0")]).status,
        404
    );
}

#[test]
fn synthetic_draws_from_the_seed_mix_and_the_histogram_counts_every_response() {
    let server = Tinyprom::start(&["--no-process-metrics"]);
    let addr = server.addr;
    let per_thread = 40;
    let received: Vec<(u16, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(move || {
                    (0..per_thread)
                        .map(|_| {
                            let r = request(addr, "GET", "/synthetic", &[]);
                            (r.status, r.text())
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let mut by_code: BTreeMap<String, u64> = BTreeMap::new();
    for (status, body) in &received {
        assert!([200, 400, 401, 500].contains(status), "{status}");
        assert_eq!(body, &status.to_string(), "the body is the code");
        *by_code.entry(status.to_string()).or_default() += 1;
    }
    // 320 draws from 5/8 200s: all four codes appear with overwhelming probability
    // (the chance that any one is missing is below 1e-17).
    assert_eq!(by_code.len(), 4, "{by_code:?}");

    let synthetic_counts = |all: &[common::Sample]| -> BTreeMap<String, u64> {
        all.iter()
            .filter(|s| {
                s.name == "http_request_duration_seconds_count" && s.labels["url"] == "/synthetic"
            })
            .map(|s| {
                assert_eq!(s.labels["method"], "GET");
                (s.labels["code"].clone(), s.value as u64)
            })
            .collect()
    };
    let all = scrape_until(addr, "/metrics", |all| synthetic_counts(all) == by_code);
    let counted = synthetic_counts(&all);
    assert_eq!(
        counted, by_code,
        "histogram counts per code equal the responses received"
    );

    // Latency lands where its sleep allows: at least 1 ms and well under 0.5 s each.
    for s in &all {
        if s.name == "http_request_duration_seconds_sum" && s.labels["url"] == "/synthetic" {
            let n = counted[&s.labels["code"]] as f64;
            assert!(s.value >= 0.001 * n && s.value < 0.5 * n, "{s:?}");
        }
    }
}

#[test]
fn url_label_never_carries_a_raw_path_and_series_stay_bounded() {
    let server = Tinyprom::start(&["--no-process-metrics"]);
    for i in 0..200 {
        let path = format!("/random/{i}/{}", "x".repeat(i % 7));
        assert_eq!(server.get(&path).status, 404);
        let method = ["GET", "POST", "FROB", "MKCOL", "PATCH"][i % 5];
        let _ = request(
            server.addr,
            method,
            &format!("/p{i}"),
            &[("Content-Length", "0")],
        );
    }
    let body = server.get("/metrics").body;
    let families = python_parse(&body, "text");
    let allowed_urls = ["/up", "/synthetic", "/metrics", "unmatched"];
    let allowed_methods = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "OTHER",
    ];
    let mut series = std::collections::BTreeSet::new();
    for s in samples(&families) {
        if s.name.starts_with("http_request_duration_seconds") {
            assert!(allowed_urls.contains(&s.labels["url"].as_str()), "{s:?}");
            assert!(
                allowed_methods.contains(&s.labels["method"].as_str()),
                "{s:?}"
            );
            series.insert((
                s.labels["method"].clone(),
                s.labels["url"].clone(),
                s.labels["code"].clone(),
            ));
        }
    }
    // GET/POST/OTHER/PATCH 404s plus the GET /metrics scrape: a handful, not hundreds.
    assert!(series.len() <= 6, "{series:?}");
    assert!(series.contains(&("OTHER".into(), "unmatched".into(), "404".into())));
}

#[test]
fn metrics_endpoint_is_text_004_and_lints_clean() {
    let server = Tinyprom::start(&[]);
    server.get("/up");
    server.get("/synthetic");
    server.get("/nope");
    let r = server.get("/metrics");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("Content-Type"),
        Some("text/plain; version=0.0.4; charset=utf-8; escaping=underscores")
    );
    assert_eq!(r.header("Vary"), Some("Accept, Accept-Encoding"));
    assert!(r.body.ends_with(b"\n"));
    let (ok, output) = promtool_check(&r.body);
    assert!(
        ok && output.trim().is_empty(),
        "promtool check metrics: {output}"
    );
    let families = python_parse(&r.body, "text");
    let names: Vec<&str> = families.iter().map(|f| f.name.as_str()).collect();
    for expected in [
        "http_request_duration_seconds",
        "http_requests_in_flight",
        "tinyprom_build_info",
        "process_cpu_seconds",
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
        "process_threads",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    let kind = |n: &str| families.iter().find(|f| f.name == n).unwrap().kind.clone();
    assert_eq!(kind("http_request_duration_seconds"), "histogram");
    assert_eq!(kind("process_cpu_seconds"), "counter");
    assert_eq!(kind("http_requests_in_flight"), "gauge");
    // The scrape itself is in flight while it renders (other requests may be too: the
    // previous response is counted out only after it is written).
    let in_flight = samples(&families)
        .into_iter()
        .find(|s| s.name == "http_requests_in_flight")
        .unwrap();
    assert!((1.0..=3.0).contains(&in_flight.value), "{in_flight:?}");
    let build = samples(&families)
        .into_iter()
        .find(|s| s.name == "tinyprom_build_info")
        .unwrap();
    assert_eq!(build.labels["version"], env!("CARGO_PKG_VERSION"));
    // Buckets are the configured ones, in order, ending with +Inf == _count.
    let les: Vec<String> = samples(&families)
        .into_iter()
        .filter(|s| s.name == "http_request_duration_seconds_bucket" && s.labels["url"] == "/up")
        .map(|s| s.labels["le"].clone())
        .collect();
    assert_eq!(les, ["0.01", "0.1", "0.5", "2", "+Inf"]);
}

#[test]
fn no_process_metrics_flag_and_env_turn_them_off() {
    for server in [
        Tinyprom::start(&["--no-process-metrics"]),
        Tinyprom::start_with_env(&[], &[("TINYPROM_NO_PROCESS_METRICS", "true")]),
    ] {
        let families = python_parse(&server.get("/metrics").body, "text");
        assert!(families.iter().all(|f| !f.name.starts_with("process_")));
        assert!(
            families
                .iter()
                .any(|f| f.name == "http_request_duration_seconds")
        );
    }
}

#[test]
fn telemetry_path_is_configurable() {
    let server = Tinyprom::start(&["--web.telemetry-path=/prom"]);
    assert_eq!(server.get("/metrics").status, 404);
    let r = server.get("/prom");
    assert_eq!(r.status, 200);
    let urls = |all: &[common::Sample]| -> Vec<String> {
        all.iter()
            .filter(|s| s.name == "http_request_duration_seconds_count")
            .map(|s| s.labels["url"].clone())
            .collect()
    };
    // The 404 for /metrics is recorded under "unmatched", earlier scrapes under "/prom".
    let all = scrape_until(server.addr, "/prom", |all| urls(all).len() == 2);
    assert_eq!(urls(&all), ["/prom", "unmatched"]);
}
