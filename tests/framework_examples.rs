//! The axum and hyper examples serve `/metrics` through `Scraper`: each runs as a
//! program on a free loopback port, answers its own route, and its scrapes are read by
//! independent clients: OpenMetrics gzipped (gzip(1), then Python's `prometheus_client`),
//! protobuf with native buckets (`protoc`), text filtered by `name[]`, and `HEAD`
//! (curl) with the headers a `GET` gets.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{
    build_example, curl, gunzip_cli, protoc_decode_families, protoc_family_names, python_parse,
    request, samples,
};

const OPENMETRICS: &str = "application/openmetrics-text;version=1.0.0";
const PROTOBUF: &str =
    "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited";

/// A running example; killed when dropped.
struct Example {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts example `name` on 127.0.0.1:0 and reads the address from its first line (at
/// most 30 s, the build included).
fn start(name: &str) -> Example {
    let child = Command::new(build_example(name))
        .arg("127.0.0.1:0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the example");
    let mut example = Example {
        child,
        addr: "127.0.0.1:0".parse().unwrap(),
    };
    let stdout = example.child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("{name} printed no address within 30 s"));
    example.addr = line
        .trim()
        .strip_prefix("listening on http://")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("{name}: unexpected first line {line:?}"));
    example
}

fn check(name: &str, hello: &str) {
    let app = start(name);
    for _ in 0..3 {
        let r = request(app.addr, "GET", "/hello", &[]);
        assert_eq!((r.status, r.text().as_str()), (200, hello));
    }

    // OpenMetrics, gzipped, as Prometheus asks for it.
    let r = request(
        app.addr,
        "GET",
        "/metrics",
        &[("Accept", OPENMETRICS), ("Accept-Encoding", "gzip")],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Encoding"), Some("gzip"));
    assert_eq!(r.header("Vary"), Some("Accept, Accept-Encoding"));
    assert_eq!(
        r.header("Content-Type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores")
    );
    let families = python_parse(&gunzip_cli(&r.body), "openmetrics");
    let hellos = samples(&families)
        .into_iter()
        .find(|s| {
            s.name == "http_request_duration_seconds_count"
                && s.labels.get("route").map(String::as_str) == Some("/hello")
                && s.labels.get("code").map(String::as_str) == Some("200")
        })
        .unwrap_or_else(|| panic!("{name}: no /hello series in {families:?}"));
    assert_eq!(hellos.value, 3.0);

    // Protobuf, with native buckets.
    let r = request(app.addr, "GET", "/metrics", &[("Accept", PROTOBUF)]);
    assert_eq!(r.status, 200);
    let decoded = protoc_decode_families(&r.body);
    assert_eq!(
        protoc_family_names(&decoded),
        ["http_request_duration_seconds"]
    );
    assert!(
        decoded[0].contains("sample_count: 3") && decoded[0].contains("schema: 3"),
        "{name}: {}",
        decoded[0]
    );

    // Text, filtered: the family asked for, then nothing for an unknown name.
    let url = format!(
        "http://{}/metrics?name[]=http_request_duration_seconds",
        app.addr
    );
    let text = curl(&["--globoff", &url]);
    let families = python_parse(&text, "text");
    assert_eq!(families.len(), 1);
    assert_eq!(families[0].name, "http_request_duration_seconds");
    let url = format!("http://{}/metrics?name[]=nothing_here", app.addr);
    assert_eq!(curl(&["--globoff", &url]), b"");

    // HEAD: headers, Content-Length as a GET (of the same scrape), no body.
    let url = format!("http://{}/metrics", app.addr);
    let head = String::from_utf8(curl(&["--head", "-H", "Accept-Encoding: gzip", &url])).unwrap();
    let head = head.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(
        head.contains("\r\nvary: accept, accept-encoding\r\n"),
        "{head}"
    );
    assert!(head.contains("\r\ncontent-encoding: gzip\r\n"), "{head}");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name}: no Content-Length in {head}"));
    assert!(length > 20, "{head}");

    // Anything but GET and HEAD: 405, and counted by the app's own RED histogram.
    let r = request(app.addr, "POST", "/metrics", &[]);
    assert_eq!((r.status, r.header("Allow")), (405, Some("GET, HEAD")));
    let r = request(app.addr, "GET", "/metrics", &[]);
    assert!(
        r.text().contains("http_request_duration_seconds_count{method=\"POST\",route=\"/metrics\",code=\"405\"} 1\n"),
        "{}",
        r.text()
    );
}

#[test]
fn axum_app_serves_every_format() {
    check("axum_app", "hello from axum\n");
}

#[test]
fn hyper_app_serves_every_format() {
    check("hyper_app", "hello from hyper\n");
}
