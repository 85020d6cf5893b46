//! The `metrics_facade` example (feature `metrics-facade`) as a user runs it: on a
//! loopback port given as its argument, `/work` called over real HTTP, `/metrics`
//! scraped and parsed by Python's prometheus_client in OpenMetrics and text, then the
//! program stopped by closing its standard input.
#![cfg(feature = "metrics-facade")]

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{build_example_with, python_parse, request, samples, wait_for_exit};

#[test]
fn work_recorded_through_the_macros_is_scraped_from_metrics() {
    let mut child = Command::new(build_example_with("metrics_facade", &["metrics-facade"]))
        .arg("127.0.0.1:0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the example");
    let stdin = child.stdin.take();
    let mut first = String::new();
    let read = BufReader::new(child.stdout.take().expect("piped stdout")).read_line(&mut first);
    let addr: Option<SocketAddr> = first
        .trim()
        .strip_prefix("serving on http://")
        .and_then(|a| a.parse().ok());
    let Some(addr) = addr.filter(|_| read.is_ok()) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("no start-up line: {first:?}");
    };

    const WORK: usize = 25;
    for _ in 0..WORK {
        let r = request(addr, "GET", "/work", &[]);
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let om = request(
        addr,
        "GET",
        "/metrics",
        &[("Accept", "application/openmetrics-text;version=1.0.0")],
    );
    let text = request(addr, "GET", "/metrics", &[]);

    // Stop the example (end of its input) and check it exits cleanly.
    drop(stdin);
    let status = wait_for_exit(&mut child, Duration::from_secs(10));
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    assert!(status.is_some_and(|s| s.success()), "exit: {status:?}");

    let families = python_parse(&om.body, "openmetrics");
    let work = families
        .iter()
        .find(|f| f.name == "work")
        .expect("work family");
    assert_eq!(work.kind, "counter");
    let duration = families
        .iter()
        .find(|f| f.name == "work_duration_seconds")
        .expect("work_duration_seconds family");
    assert_eq!(
        (duration.kind.as_str(), duration.unit.as_str()),
        ("histogram", "seconds")
    );
    assert!(
        om.text()
            .contains("# HELP work_duration_seconds Time one work item took.\n")
    );
    for families in [families, python_parse(&text.body, "text")] {
        let all = samples(&families);
        let value = |name: &str, label: Option<(&str, &str)>| {
            all.iter()
                .find(|s| {
                    s.name == name
                        && label.is_none_or(|(k, v)| s.labels.get(k).map(String::as_str) == Some(v))
                })
                .map(|s| s.value)
                .unwrap_or_else(|| panic!("no sample {name} {label:?}"))
        };
        assert_eq!(value("work_total", Some(("kind", "demo"))), WORK as f64);
        assert_eq!(value("work_duration_seconds_count", None), WORK as f64);
        assert_eq!(
            value("work_duration_seconds_bucket", Some(("le", "+Inf"))),
            WORK as f64
        );
        let sum = value("work_duration_seconds_sum", None);
        assert!(sum > 0.0 && sum < WORK as f64, "sum of durations {sum}");
        // The server's own RED histogram counts the same requests.
        assert!(
            all.iter()
                .any(|s| s.name == "http_request_duration_seconds_count"
                    && s.labels.get("url").map(String::as_str) == Some("/work")
                    && s.value == WORK as f64)
        );
    }
}
