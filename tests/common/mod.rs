//! Helpers shared by the integration tests: start the real binary on a loopback port,
//! speak HTTP/1.1 over a real socket, parse scrapes with independent parsers.
#![allow(dead_code)] // each test binary uses a different subset

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running `tinyprom` binary; killed when dropped.
pub struct Tinyprom {
    pub child: Child,
    pub addr: SocketAddr,
    pub stderr: Arc<Mutex<Vec<String>>>,
    /// Set by the stderr reader once the pipe is at its end.
    stderr_closed: Arc<AtomicBool>,
}

impl Tinyprom {
    /// Starts the binary on 127.0.0.1:0 with extra arguments and waits for its
    /// start-up line (at most 10 s).
    pub fn start(args: &[&str]) -> Tinyprom {
        Self::start_with_env(args, &[])
    }

    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Tinyprom {
        let mut cmd = Self::command(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Self::spawn(cmd)
    }

    /// The command that runs the binary on 127.0.0.1:0 with extra arguments, for a
    /// test to adjust (environment, resource limits) before [`Tinyprom::spawn`].
    pub fn command(args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tinyprom"));
        cmd.arg("--web.listen-address=127.0.0.1:0")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        cmd
    }

    /// Spawns `cmd` (from [`Tinyprom::command`]) and waits for its start-up line (at
    /// most 10 s).
    pub fn spawn(mut cmd: Command) -> Tinyprom {
        let mut child = cmd.spawn().expect("start tinyprom");
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = Arc::clone(&lines);
        let stderr_closed = Arc::new(AtomicBool::new(false));
        let closed = Arc::clone(&stderr_closed);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let addr = line
                    .split("listening on http://")
                    .nth(1)
                    .map(|rest| rest.split_whitespace().next().unwrap_or("").to_string());
                // Store the line before announcing the address, so a test that reads
                // stderr right after start() sees the start-up line.
                sink.lock().unwrap().push(line);
                if let Some(addr) = addr {
                    let _ = tx.send(addr);
                }
            }
            // Release: the lines pushed above are visible to whoever sees the flag.
            closed.store(true, Ordering::Release);
        });
        let addr = match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(a) => a.parse().expect("address in the start-up line"),
            Err(_) => {
                let _ = child.kill();
                panic!("no start-up line; stderr: {:?}", lines.lock().unwrap());
            }
        };
        Tinyprom {
            child,
            addr,
            stderr: lines,
            stderr_closed,
        }
    }

    pub fn get(&self, path: &str) -> Response {
        request(self.addr, "GET", path, &[])
    }

    /// Sends a signal and waits (bounded) for the exit status.
    pub fn signal_and_wait(
        &mut self,
        signal: i32,
        limit: Duration,
    ) -> Option<(ExitStatus, Duration)> {
        let start = Instant::now();
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, signal) };
        let exited = wait_for_exit(&mut self.child, limit).map(|s| (s, start.elapsed()));
        // The last lines (such as "shut down cleanly") may still be in the pipe when
        // the exit is seen: give the reader up to 2 s to reach the pipe's end, so a
        // test that reads stderr next sees all of it even on a loaded machine.
        let deadline = Instant::now() + Duration::from_secs(2);
        // Acquire: pairs with the reader's Release store.
        while exited.is_some()
            && !self.stderr_closed.load(Ordering::Acquire)
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        exited
    }

    pub fn stderr_text(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }
}

impl Drop for Tinyprom {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn wait_for_exit(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    None
}

/// An HTTP response as received.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("UTF-8 body")
    }
}

/// One request on a fresh connection (`Connection: close`), 10 s timeouts.
pub fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).expect("send request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read response");
    parse_response(&raw, method == "HEAD")
}

pub fn parse_response(raw: &[u8], head: bool) -> Response {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let head_text = std::str::from_utf8(&raw[..split]).expect("ASCII headers");
    let mut lines = head_text.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if !head {
        if let Some(len) = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("Content-Length"))
            .and_then(|(_, v)| v.parse::<usize>().ok())
        {
            assert_eq!(body.len(), len, "body length matches Content-Length");
        }
    } else {
        body.clear();
    }
    Response {
        status,
        headers,
        body,
    }
}

/// A parsed sample.
#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub labels: std::collections::BTreeMap<String, String>,
    pub value: f64,
}

/// A parsed family.
#[derive(Debug, Clone)]
pub struct Family {
    pub name: String,
    pub kind: String,
    pub unit: String,
    pub samples: Vec<Sample>,
}

/// Parses an exposition with Python's prometheus_client (`format`: "text" or
/// "openmetrics"); panics with the parser's message if it is rejected.
pub fn python_parse(body: &[u8], format: &str) -> Vec<Family> {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/support/parse_exposition.py"
    );
    let mut child = Command::new("python3")
        .arg(script)
        .arg(format)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (run `make deps`)");
    child.stdin.take().unwrap().write_all(body).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client rejected the {format} exposition (is it installed? `make deps`): {}\n--- input ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(body)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    json["families"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| Family {
            name: f["name"].as_str().unwrap().to_string(),
            kind: f["type"].as_str().unwrap().to_string(),
            unit: f["unit"].as_str().unwrap_or("").to_string(),
            samples: f["samples"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| Sample {
                    name: s["name"].as_str().unwrap().to_string(),
                    labels: s["labels"]
                        .as_object()
                        .unwrap()
                        .iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                        .collect(),
                    value: match &s["value"] {
                        serde_json::Value::String(v) if v == "NaN" => f64::NAN,
                        serde_json::Value::String(v) if v == "+Inf" => f64::INFINITY,
                        serde_json::Value::String(v) if v == "-Inf" => f64::NEG_INFINITY,
                        v => v.as_f64().unwrap(),
                    },
                })
                .collect(),
        })
        .collect()
}

/// All samples of all families, flattened.
pub fn samples(families: &[Family]) -> Vec<Sample> {
    families.iter().flat_map(|f| f.samples.clone()).collect()
}

/// Runs `promtool check metrics` on a scrape; returns its combined output (empty when
/// clean) and whether it succeeded.
pub fn promtool_check(body: &[u8]) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; run `make deps`)");
    child.stdin.take().unwrap().write_all(body).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Scrapes `path` (text format) until `done` accepts the parsed samples, for at most two
/// seconds, and returns the last samples. A response reaches the client a moment before
/// the server records it (it is observed once fully written), so a test that scrapes
/// right after its own requests may need a second look.
pub fn scrape_until(addr: SocketAddr, path: &str, done: impl Fn(&[Sample]) -> bool) -> Vec<Sample> {
    let start = Instant::now();
    loop {
        let all = samples(&python_parse(&request(addr, "GET", path, &[]).body, "text"));
        if done(&all) || start.elapsed() > Duration::from_secs(2) {
            return all;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Feeds `input` to a command's stdin and returns its stdout; panics with its stderr
/// when it fails.
fn filter(mut command: Command, what: &str, input: &[u8]) -> Vec<u8> {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what} (run `make deps`): {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    // Written from a thread: the child's output can fill its pipe before it reads all.
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().expect("write to the decoder");
    assert!(
        out.status.success(),
        "{what} rejected the input: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Decompresses one gzip member with Python's zlib (strict: CRC, size, nothing after).
pub fn gunzip_python(compressed: &[u8]) -> Vec<u8> {
    let mut command = Command::new("python3");
    command.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/support/gunzip.py"
    ));
    filter(command, "python3 gunzip.py", compressed)
}

/// Decompresses with the gzip(1) program (`gzip -dc`, which checks CRC and size).
pub fn gunzip_cli(compressed: &[u8]) -> Vec<u8> {
    let mut command = Command::new("gzip");
    command.arg("-dc");
    filter(command, "gzip -dc", compressed)
}

/// Decodes a delimited protobuf scrape with `protoc --decode`, one text rendering per
/// `MetricFamily` message.
pub fn protoc_decode_families(mut body: &[u8]) -> Vec<String> {
    let support = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support");
    let mut decoded = Vec::new();
    while !body.is_empty() {
        // The message's length: a varint of at most 10 bytes.
        let (mut len, mut shift, mut used) = (0usize, 0, 0);
        for &b in body.iter().take(10) {
            used += 1;
            len |= usize::from(b & 0x7f) << shift;
            shift += 7;
            if b < 0x80 {
                break;
            }
        }
        assert!(used + len <= body.len(), "a message runs past the body");
        let (message, rest) = body[used..].split_at(len);
        body = rest;
        let mut child = Command::new("protoc")
            .arg(format!("--proto_path={support}"))
            .arg("--decode=io.prometheus.client.MetricFamily")
            .arg("metrics.proto")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("protoc (Debian package protobuf-compiler; run `make deps`)");
        child.stdin.take().unwrap().write_all(message).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "protoc rejected a family: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        decoded.push(String::from_utf8(out.stdout).unwrap());
    }
    decoded
}

/// The family name of each `protoc` rendering of [`protoc_decode_families`].
pub fn protoc_family_names(decoded: &[String]) -> Vec<String> {
    decoded
        .iter()
        .filter_map(|f| f.lines().find_map(|l| l.strip_prefix("name: \"")))
        .map(|n| n.trim_end_matches('"').to_string())
        .collect()
}

/// Builds example `name` (`cargo build --example`, a no-op when `cargo test
/// --all-targets` already built it) and returns its executable, from cargo's own
/// report, so any target directory or profile layout works without guessing paths.
pub fn build_example(name: &str) -> std::path::PathBuf {
    build_example_with(name, &[])
}

/// [`build_example`] with these cargo `features` (an example that needs one).
pub fn build_example_with(name: &str, features: &[&str]) -> std::path::PathBuf {
    let features = features.join(",");
    let out = Command::new(env!("CARGO"))
        .args([
            "build",
            "--quiet",
            "--example",
            name,
            "--message-format=json",
        ])
        .args(if features.is_empty() {
            vec![]
        } else {
            vec!["--features", features.as_str()]
        })
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stderr(Stdio::inherit())
        .output()
        .expect("run cargo");
    assert!(out.status.success(), "cargo build --example {name} failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == name)
        .find_map(|m| m["executable"].as_str().map(std::path::PathBuf::from))
        .unwrap_or_else(|| panic!("cargo reported no executable for example {name}"))
}

/// Runs `curl` with these arguments (at most 10 s) and returns its standard output.
pub fn curl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl (run `make deps`)");
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Runs `program` with `input` on its stdin and returns its stdout; panics, with its
/// stderr and the input, when it fails.
pub fn pipe(program: &str, args: &[&str], input: &[u8]) -> String {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program}: {e} (run `make deps`)"));
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{program} failed: {}\n--- input ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(input)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Opens `n` connections to `addr`, each sending `pipelined` `GET /synthetic` requests
/// at once, and returns them once each has its first answer: they are then busy for
/// a while (each `/synthetic` waits 1-50 ms), as the connection bound's tests need.
pub fn busy_connections(addr: SocketAddr, n: usize, pipelined: usize) -> Vec<TcpStream> {
    let burst = "GET /synthetic HTTP/1.1\r\nHost: t\r\n\r\n".repeat(pipelined);
    let mut busy = Vec::new();
    for _ in 0..n {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(burst.as_bytes()).unwrap();
        busy.push(s);
    }
    // A first answer shows the gate has the connection and is on its next request.
    for s in &mut busy {
        let mut buf = [0u8; 1];
        assert_eq!(s.read(&mut buf).unwrap(), 1, "a first answer");
    }
    busy
}
