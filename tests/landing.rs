//! The landing page at `/` through the real binary: HTML for browsers, the text index
//! for everyone else, counted under its own `url` like every route.

mod common;

use common::{Tinyprom, request, scrape_until};

const BROWSER: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

#[test]
fn browsers_get_the_page_others_the_index_and_both_are_counted_under_slash() {
    let server = Tinyprom::start(&["--no-process-metrics"]);
    let index = server.get("/");
    assert_eq!(index.status, 200);
    assert!(
        index
            .header("Content-Type")
            .unwrap()
            .starts_with("text/plain")
    );
    assert!(
        index
            .text()
            .starts_with(&format!("tinyprom {}\n", env!("CARGO_PKG_VERSION")))
    );

    for _ in 0..3 {
        assert_eq!(server.get("/up").status, 200);
    }
    let page = request(
        server.addr,
        "GET",
        "/?from=bookmark",
        &[("Accept", BROWSER)],
    );
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("Content-Type"),
        Some("text/html; charset=utf-8")
    );
    // The answer depends on `Accept`, and says so to caches.
    assert_eq!(page.header("Vary"), Some("Accept"));
    assert_eq!(index.header("Vary"), Some("Accept"));
    let html = page.text();
    assert!(html.starts_with("<!DOCTYPE html>") && html.ends_with("</html>"));
    // The totals before the page itself: three /up, one / (the index).
    assert!(
        html.contains("data-route=\"/up\" data-count=\"3\""),
        "{html}"
    );
    assert!(html.contains("data-route=\"/\" data-count=\"1\""), "{html}");
    assert!(html.contains("<svg id=\"latency-chart\""));

    let all = scrape_until(server.addr, "/metrics", |all| {
        all.iter()
            .filter(|s| s.name == "http_request_duration_seconds_count" && s.labels["url"] == "/")
            .map(|s| s.value)
            .sum::<f64>()
            == 2.0
    });
    let slash: Vec<_> = all
        .iter()
        .filter(|s| s.name == "http_request_duration_seconds_count" && s.labels["url"] == "/")
        .collect();
    assert_eq!(slash.len(), 1, "{slash:?}");
    assert_eq!(
        (slash[0].labels["code"].as_str(), slash[0].value),
        ("200", 2.0)
    );
}

#[test]
fn metrics_at_the_root_replace_the_page() {
    let server = Tinyprom::start(&["--web.telemetry-path=/"]);
    let r = request(server.addr, "GET", "/", &[("Accept", BROWSER)]);
    assert_eq!(r.status, 200);
    assert!(
        r.text()
            .contains("# TYPE http_request_duration_seconds histogram")
    );
}
