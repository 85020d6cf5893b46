//! The examples run as programs, terminate on their own, and print scrapes that
//! independent parsers accept.
//!
//! Each example is built with `cargo build --example` (`common::build_example`), then
//! runs as a child process with a time limit.

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{build_example, promtool_check, python_parse, samples, wait_for_exit};

/// Runs an example to completion (at most 30 s) and returns its standard output.
fn run_example(name: &str) -> String {
    let mut child = Command::new(build_example(name))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the example");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).map(|_| text)
    });
    let Some(status) = wait_for_exit(&mut child, Duration::from_secs(30)) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("example {name} did not terminate within 30 s");
    };
    assert!(status.success(), "example {name} exited with {status}");
    reader.join().expect("reader thread").expect("UTF-8 output")
}

/// The text between the line starting with `marker` and the next `---` line (or the end).
fn section<'a>(output: &'a str, marker: &str) -> &'a str {
    let start = output
        .find(marker)
        .unwrap_or_else(|| panic!("{marker:?} not in output:\n{output}"));
    let body = &output[start..];
    let body = &body[body.find('\n').map_or(body.len(), |i| i + 1)..];
    &body[..body.find("\n---").map_or(body.len(), |i| i + 1)]
}

#[test]
fn embed_render_prints_both_formats_and_they_parse() {
    let output = run_example("embed_render");
    let text = section(&output, "--- text/plain");
    let om = section(&output, "--- application/openmetrics-text");

    let (ok, lint) = promtool_check(text.as_bytes());
    assert!(ok && lint.trim().is_empty(), "promtool: {lint}\n{text}");
    let text_families = python_parse(text.as_bytes(), "text");
    let om_families = python_parse(om.as_bytes(), "openmetrics");

    let kind = |families: &[common::Family], name: &str| {
        families
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.kind.clone())
            .unwrap_or_else(|| panic!("{name} missing"))
    };
    assert_eq!(kind(&om_families, "example_build"), "info");
    assert_eq!(kind(&text_families, "example_build_info"), "gauge");
    assert_eq!(kind(&om_families, "example_payload_bytes"), "summary");
    assert_eq!(kind(&om_families, "example_jobs"), "counter");
    // The same series, with the same values, whichever format was asked for.
    let mut from_text: Vec<String> = samples(&text_families)
        .iter()
        .map(|s| format!("{} {:?} {}", s.name, s.labels, s.value))
        .collect();
    let mut from_om: Vec<String> = samples(&om_families)
        .iter()
        .map(|s| format!("{} {:?} {}", s.name, s.labels, s.value))
        .collect();
    from_text.sort();
    from_om.sort();
    assert_eq!(from_text, from_om);
    let jobs: f64 = samples(&om_families)
        .iter()
        .filter(|s| s.name == "example_jobs_total")
        .map(|s| s.value)
        .sum();
    assert_eq!(jobs, 20.0);
}

#[test]
fn embed_server_serves_its_route_and_both_formats_then_stops() {
    let output = run_example("embed_server");
    assert!(output.contains("GET /hello: hello from an embedded tinyprom to 127.0.0.1:"));
    let om = section(&output, "--- GET /metrics as Prometheus");
    let text = section(&output, "--- GET /metrics as curl");
    assert!(output.contains(
        "as Prometheus: HTTP/1.1 200 OK, Content-Type: application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores"
    ));
    assert!(output.contains(
        "as curl: HTTP/1.1 200 OK, Content-Type: text/plain; version=0.0.4; charset=utf-8; escaping=underscores"
    ));
    let om_samples = samples(&python_parse(om.as_bytes(), "openmetrics"));
    let text_samples = samples(&python_parse(text.as_bytes(), "text"));
    let value = |samples: &[common::Sample], name: &str, label: Option<(&str, &str)>| {
        samples
            .iter()
            .find(|s| s.name == name && label.is_none_or(|(k, v)| s.labels[k] == v))
            .map(|s| s.value)
            .unwrap_or_else(|| panic!("{name} {label:?} missing"))
    };
    // The embedding program's own counter and route are served next to tinyprom's.
    assert_eq!(value(&om_samples, "example_greetings_total", None), 1.0);
    assert_eq!(value(&text_samples, "example_greetings_total", None), 1.0);
    let hello = Some(("url", "/hello"));
    assert_eq!(
        value(&text_samples, "http_request_duration_seconds_count", hello),
        1.0
    );
    let (ok, lint) = promtool_check(text.as_bytes());
    assert!(ok && lint.trim().is_empty(), "promtool: {lint}");
}
