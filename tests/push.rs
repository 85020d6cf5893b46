//! `tinyprom::push` against a real Pushgateway (Debian `prometheus-pushgateway`, which
//! `make deps` installs; `PUSHGATEWAY_BIN` names another binary): what `PUT`, `POST` and
//! `DELETE` leave in a group, grouping keys with values the URL cannot carry plainly,
//! both body formats, and the errors a push returns. Each test starts its own gateway
//! on a free loopback port, with persistence off, and kills it when it ends.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tinyprom::exposition::Format;
use tinyprom::metrics::{Counter, Family, Gauge, Histogram, Registry};
use tinyprom::push::{PushError, Pusher};

/// A running Pushgateway; killed when dropped.
struct Gateway {
    child: Child,
    addr: SocketAddr,
}

impl Gateway {
    /// Starts the gateway on a free loopback port and waits (at most 10 s) until it
    /// answers `/-/ready`. A port taken between probing and binding costs a retry.
    fn start() -> Gateway {
        let binary = std::env::var("PUSHGATEWAY_BIN").unwrap_or_else(|_| {
            ["prometheus-pushgateway", "pushgateway"]
                .into_iter()
                .find(|name| {
                    Command::new(name)
                        .arg("--version")
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status()
                        .is_ok()
                })
                .expect("no Pushgateway binary (prometheus-pushgateway); run `make deps`")
                .to_string()
        });
        for _ in 0..3 {
            let addr = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("probe a free port");
            let mut child = Command::new(&binary)
                .arg(format!("--web.listen-address={addr}"))
                // Debian's build persists to a fixed file by default, which would carry
                // groups from one gateway (and test) to the next.
                .arg("--persistence.file=")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start the Pushgateway");
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // the port was taken: try another
                }
                if get(addr, "/-/ready").is_some_and(|(status, _)| status == 200) {
                    return Gateway { child, addr };
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("the Pushgateway did not become ready in three tries");
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The gateway's groups from `/api/v1/metrics`: each group's labels with its
    /// metrics, each metric with its type and its series (labels and value, or a
    /// histogram's count, sum and buckets).
    fn groups(&self) -> Vec<(BTreeMap<String, String>, BTreeMap<String, Value>)> {
        let (status, body) = get(self.addr, "/api/v1/metrics").expect("GET /api/v1/metrics");
        assert_eq!(status, 200, "{body}");
        let json: Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(json["status"], "success", "{body}");
        json["data"]
            .as_array()
            .expect("data array")
            .iter()
            .map(|group| {
                let object = group.as_object().expect("group object");
                let labels = labels_of(&group["labels"]);
                let metrics = object
                    .iter()
                    .filter(|(name, _)| {
                        !matches!(
                            name.as_str(),
                            "labels"
                                | "last_push_successful"
                                | "push_time_seconds"
                                | "push_failure_time_seconds"
                        )
                    })
                    .map(|(name, metric)| (name.clone(), metric.clone()))
                    .collect();
                (labels, metrics)
            })
            .collect()
    }

    /// The metrics of the group with exactly these labels; `None` when there is none.
    fn group(&self, labels: &[(&str, &str)]) -> Option<BTreeMap<String, Value>> {
        let wanted: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.groups()
            .into_iter()
            .find(|(labels, _)| *labels == wanted)
            .map(|(_, metrics)| metrics)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn labels_of(value: &Value) -> BTreeMap<String, String> {
    value
        .as_object()
        .expect("labels object")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("label value").to_string()))
        .collect()
}

/// `GET path` as HTTP/1.0 (so the answer is never chunked); `None` when the gateway
/// does not answer (yet).
fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

/// Whether `done` holds within 5 s. The gateway answers a `DELETE` with 202 Accepted
/// and removes the group after the answer (a `PUT` or `POST` is applied before its
/// 200), so a test waits for a deletion to show.
fn eventually(done: impl Fn() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    done()
}

/// The value of the one series of a counter or gauge, as the gateway shows it.
fn value(metric: &Value) -> f64 {
    let series = metric["metrics"].as_array().expect("series");
    assert_eq!(series.len(), 1, "{metric}");
    series[0]["value"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no value in {metric}"))
}

fn registry_with(counters: &[(&str, u64)]) -> Registry {
    let registry = Registry::new();
    for &(name, n) in counters {
        let counter = Counter::new();
        counter.inc_by(n);
        registry.register(name, "A counter.", counter).unwrap();
    }
    registry
}

#[test]
fn put_replaces_the_group_post_replaces_same_named_metrics_delete_removes_it() {
    let gateway = Gateway::start();
    let pusher = Pusher::new(&gateway.url(), "batch")
        .unwrap()
        .grouping("instance", "host-1")
        .unwrap();
    let other = Pusher::new(&gateway.url(), "batch")
        .unwrap()
        .grouping("instance", "host-2")
        .unwrap();
    let group = [("job", "batch"), ("instance", "host-1")];
    let names = |metrics: &BTreeMap<String, Value>| metrics.keys().cloned().collect::<Vec<_>>();

    pusher
        .push(&registry_with(&[("a_total", 1), ("b_total", 2)]))
        .unwrap();
    other.push(&registry_with(&[("a_total", 9)])).unwrap();
    let metrics = gateway.group(&group).expect("the group after PUT");
    assert_eq!(names(&metrics), ["a_total", "b_total"]);
    assert_eq!(value(&metrics["a_total"]), 1.0);
    assert_eq!(metrics["a_total"]["type"], "COUNTER");

    // POST: b is replaced, c is added, a stays.
    pusher
        .push_add(&registry_with(&[("b_total", 20), ("c_total", 30)]))
        .unwrap();
    let metrics = gateway.group(&group).expect("the group after POST");
    assert_eq!(names(&metrics), ["a_total", "b_total", "c_total"]);
    assert_eq!(value(&metrics["a_total"]), 1.0);
    assert_eq!(value(&metrics["b_total"]), 20.0);
    assert_eq!(value(&metrics["c_total"]), 30.0);

    // PUT: the group becomes exactly the registry (a and b go).
    pusher.push(&registry_with(&[("c_total", 31)])).unwrap();
    let metrics = gateway
        .group(&group)
        .expect("the group after the second PUT");
    assert_eq!(names(&metrics), ["c_total"]);
    assert_eq!(value(&metrics["c_total"]), 31.0);

    // DELETE removes this group only.
    pusher.delete().unwrap();
    assert!(
        eventually(|| gateway.group(&group).is_none()),
        "{:?}",
        gateway.groups()
    );
    let kept = gateway
        .group(&[("job", "batch"), ("instance", "host-2")])
        .expect("the other group survives the delete");
    assert_eq!(value(&kept["a_total"]), 9.0);
}

#[test]
fn grouping_values_with_slashes_spaces_and_empty_ones_arrive_unchanged() {
    let gateway = Gateway::start();
    let pusher = Pusher::new(&format!("{}/", gateway.url()), "nightly report/v2")
        .unwrap()
        .grouping("path", "/var/lib/db")
        .unwrap()
        .grouping("shard", "")
        .unwrap()
        .grouping("dots", "..")
        .unwrap()
        .grouping("plain", "eu-1.a_b~c")
        .unwrap()
        .grouping("unicode", "zürich")
        .unwrap();
    pusher.push(&registry_with(&[("rows_total", 5)])).unwrap();
    let groups = gateway.groups();
    assert_eq!(groups.len(), 1, "{groups:?}");
    let expected: BTreeMap<String, String> = [
        ("job", "nightly report/v2"),
        ("path", "/var/lib/db"),
        ("shard", ""),
        ("dots", ".."),
        ("plain", "eu-1.a_b~c"),
        ("unicode", "zürich"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(groups[0].0, expected);
    // The gateway puts the grouping labels on every series it exposes.
    let series = &groups[0].1["rows_total"]["metrics"][0]["labels"];
    assert_eq!(series["path"], "/var/lib/db");
    assert_eq!(series["job"], "nightly report/v2");
    // And the same key finds the group to delete.
    pusher.delete().unwrap();
    assert!(
        eventually(|| gateway.groups().is_empty()),
        "{:?}",
        gateway.groups()
    );
}

#[test]
fn text_and_protobuf_bodies_carry_every_kind() {
    let gateway = Gateway::start();
    for (format, instance) in [(Format::Text, "text"), (Format::Protobuf, "protobuf")] {
        let registry = Registry::new();
        let requests: Family<Counter> = Family::new(&["code"]).unwrap();
        registry
            .register("requests_total", "Requests.", requests.clone())
            .unwrap();
        requests.with_label_values(&["200"]).unwrap().inc_by(7);
        requests.with_label_values(&["500"]).unwrap().inc();
        let queue = Gauge::new();
        queue.set(-2.5);
        registry
            .register("queue_depth", "Queue depth.", queue)
            .unwrap();
        let latency = Histogram::new(&[0.1, 1.0]).unwrap();
        registry
            .register("latency_seconds", "Latency.", latency.clone())
            .unwrap();
        for v in [0.05, 0.5, 0.5, 3.0] {
            latency.observe(v);
        }
        Pusher::new(&gateway.url(), "kinds")
            .unwrap()
            .grouping("instance", instance)
            .unwrap()
            .format(format)
            .unwrap()
            .push(&registry)
            .unwrap();

        let metrics = gateway
            .group(&[("job", "kinds"), ("instance", instance)])
            .unwrap_or_else(|| panic!("{instance}: no group"));
        let requests = &metrics["requests_total"];
        assert_eq!(requests["type"], "COUNTER", "{instance}");
        assert_eq!(requests["help"], "Requests.", "{instance}");
        let mut by_code: Vec<(String, String)> = requests["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["labels"]["code"].as_str().unwrap().to_string(),
                    s["value"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        by_code.sort();
        assert_eq!(
            by_code,
            [("200".into(), "7".into()), ("500".into(), "1".into())],
            "{instance}"
        );
        assert_eq!(metrics["queue_depth"]["type"], "GAUGE", "{instance}");
        assert_eq!(value(&metrics["queue_depth"]), -2.5, "{instance}");
        let histogram = &metrics["latency_seconds"];
        assert_eq!(histogram["type"], "HISTOGRAM", "{instance}");
        let series = &histogram["metrics"][0];
        assert_eq!(series["count"], "4", "{instance}: {histogram}");
        assert_eq!(series["sum"], "4.05", "{instance}: {histogram}");
        assert_eq!(series["buckets"]["0.1"], "1", "{instance}: {histogram}");
        assert_eq!(series["buckets"]["1"], "3", "{instance}: {histogram}");
    }
}

#[test]
fn failures_are_returned_with_the_gateway_s_reason() {
    let gateway = Gateway::start();
    let pusher = |instance: &str| {
        Pusher::new(&gateway.url(), "errors")
            .unwrap()
            .grouping("instance", instance)
            .unwrap()
    };
    pusher("a").push(&registry_with(&[("x_total", 1)])).unwrap();
    // The same name as a gauge in another group is inconsistent: the gateway refuses
    // it with 400 and says why in its body's first line.
    let registry = Registry::new();
    registry
        .register("x_total", "A gauge.", Gauge::new())
        .unwrap();
    match pusher("b").push(&registry) {
        Err(PushError::Status { code: 400, message }) => {
            assert!(message.contains("x_total"), "{message}");
            assert!(message.contains("inconsistent"), "{message}");
        }
        other => panic!("expected a 400, got {other:?}"),
    }

    // A path the gateway does not serve.
    let wrong_prefix = Pusher::new(&format!("{}/nowhere", gateway.url()), "errors").unwrap();
    match wrong_prefix.push(&registry) {
        Err(PushError::Status { code: 404, .. }) => {}
        other => panic!("expected a 404, got {other:?}"),
    }

    // Nothing listens on a port just freed.
    let closed = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap();
    let err = Pusher::new(&format!("http://{closed}"), "errors")
        .unwrap()
        .timeout(Duration::from_secs(2))
        .delete()
        .unwrap_err();
    assert!(matches!(err, PushError::Connect { .. }), "{err:?}");
    assert!(err.to_string().contains(&closed.to_string()), "{err}");

    // A listener that never answers: the push ends with the timeout, as an error.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let started = Instant::now();
    let err = Pusher::new(
        &format!("http://{}", silent.local_addr().unwrap()),
        "errors",
    )
    .unwrap()
    .timeout(Duration::from_millis(300))
    .push(&registry)
    .unwrap_err();
    assert!(matches!(err, PushError::Io(_)), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}
