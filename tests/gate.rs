//! The gate against the real binary: every row of the table in the issue that
//! introduced it, tried as the clients named there (raw sockets, curl, h2load, ab)
//! would. Each test ends by checking that no input made the supervisor restart the
//! serving process.
//!
//! External clients are skipped with a loud message only where they are not
//! installed; `make deps` (scripts/deps.sh) installs them.

mod abuse_support;
mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use abuse_support::{
    THREAD_BOUND, assert_no_restarts, assert_up, metric, send_raw, usage, wait_for_child,
};
use common::Tinyprom;

/// Whether `tool` is installed; says so loudly when it is not.
fn have(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        eprintln!(
            "\n!!!!! SKIPPED: {tool} is not installed (make deps installs it); this part of the test did not run !!!!!\n"
        );
    }
    found
}

/// Sends `bytes` and reads until the server closes (or `limit`): everything received,
/// whether it closed, and when the first byte came.
fn exchange(addr: SocketAddr, bytes: &[u8], limit: Duration) -> (Vec<u8>, bool, Duration) {
    let start = Instant::now();
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let _ = s.write_all(bytes);
    let mut got = Vec::new();
    let mut first = None;
    let mut buf = [0u8; 65536];
    while start.elapsed() < limit {
        match s.read(&mut buf) {
            Ok(0) => return (got, true, first.unwrap_or(start.elapsed())),
            Ok(n) => {
                first.get_or_insert(start.elapsed());
                got.extend_from_slice(&buf[..n]);
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return (got, true, first.unwrap_or(start.elapsed())),
        }
    }
    (got, false, first.unwrap_or(limit))
}

/// The status codes of every response in `raw`, in order.
fn statuses(raw: &[u8]) -> Vec<u16> {
    let text = String::from_utf8_lossy(raw);
    text.match_indices("HTTP/1.1 ")
        .filter_map(|(i, _)| text.get(i + 9..i + 12)?.parse().ok())
        .collect()
}

fn synthetic_count(addr: SocketAddr) -> f64 {
    let body = common::request(addr, "GET", "/metrics", &[]).body;
    String::from_utf8_lossy(&body)
        .lines()
        .filter(|l| {
            l.starts_with("http_request_duration_seconds_count{")
                && l.contains("url=\"/synthetic\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

const REQ: &str = "GET /up HTTP/1.1\r\nHost: t\r\n\r\n";

#[test]
fn pipelined_synthetic_is_answered_in_order_and_never_wedges() {
    let mut server = Tinyprom::start(&["--web.shutdown-timeout=1s"]);
    let addr = server.addr;
    let pipelined = "GET /synthetic HTTP/1.1\r\nHost: t\r\n\r\n".repeat(2)
        + "GET /up HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    let clients: Vec<_> = (0..20)
        .map(|_| {
            let bytes = pipelined.clone();
            std::thread::spawn(move || exchange(addr, bytes.as_bytes(), Duration::from_secs(5)))
        })
        .collect();
    for client in clients {
        let (raw, closed, _) = client.join().unwrap();
        assert!(closed, "the connection asked to close");
        assert_eq!(statuses(&raw).len(), 3, "{}", String::from_utf8_lossy(&raw));
        assert!(raw.ends_with(b"I am running!"), "/up's answer comes last");
    }
    let started = Instant::now();
    let fresh = common::request(addr, "GET", "/synthetic", &[]);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "a fresh /synthetic"
    );
    assert!(fresh.status >= 200);
    // The scrape itself is the one request in flight.
    assert_eq!(metric(addr, "http_requests_in_flight"), Some(1.0));
    assert_no_restarts(addr, "after pipelined /synthetic");
    let (status, took) = server
        .signal_and_wait(libc::SIGTERM, Duration::from_secs(5))
        .expect("exits after SIGTERM");
    assert_eq!(status.code(), Some(0));
    assert!(took < Duration::from_millis(1500), "exit took {took:?}");
}

#[test]
fn http2_clients_get_an_answer_or_a_close_within_milliseconds() {
    let server = Tinyprom::start(&[]);
    let addr = server.addr;
    let (code, took) = send_raw(
        addr,
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        Duration::from_secs(3),
    );
    assert_eq!(code, Some(505));
    assert!(
        took < Duration::from_millis(500),
        "preface answered in {took:?}"
    );
    let (code, _) = send_raw(
        addr,
        b"GET /up HTTP/3.0\r\nHost: t\r\n\r\n",
        Duration::from_secs(3),
    );
    assert_eq!(code, Some(505));
    let pid = wait_for_child(server.child.id(), None, Duration::from_secs(2)).expect("child");
    let before = usage(pid).expect("usage");
    // A healthy keep-alive client, used across the HTTP/2 clients.
    let mut kept = TcpStream::connect(addr).unwrap();
    kept.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let one_exchange = |kept: &mut TcpStream| {
        kept.write_all(REQ.as_bytes()).unwrap();
        let mut buf = [0u8; 512];
        let n = kept.read(&mut buf).unwrap();
        assert!(
            buf[..n].starts_with(b"HTTP/1.1 200"),
            "keep-alive client served"
        );
    };
    one_exchange(&mut kept);
    if have("curl") {
        let url = format!("http://{addr}/up");
        let started = Instant::now();
        let out = Command::new("curl")
            .args(["-s", "--http2-prior-knowledge", "-m", "3", &url])
            .output()
            .unwrap();
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(1),
            "curl --http2-prior-knowledge took {took:?}"
        );
        assert!(!out.status.success() || !out.stdout.is_empty());
    }
    if have("h2load") {
        let started = Instant::now();
        let out = Command::new("timeout")
            .args([
                "20",
                "h2load",
                "-n",
                "200",
                "-c",
                "100",
                &format!("http://{addr}/up"),
            ])
            .output()
            .unwrap();
        let took = started.elapsed();
        eprintln!("h2load: {took:?}\n{}", String::from_utf8_lossy(&out.stdout));
        assert!(took < Duration::from_secs(5), "h2load took {took:?}");
    }
    one_exchange(&mut kept);
    std::thread::sleep(Duration::from_millis(300));
    let after = usage(pid).expect("usage");
    eprintln!("usage around the HTTP/2 clients: {before:?} -> {after:?}");
    // A pooled private connection or two may be new (three descriptors each); the 300
    // HTTP/2 connections left nothing behind.
    assert!(after.fds <= before.fds + 6, "fds {before:?} -> {after:?}");
    assert!(
        after.threads <= THREAD_BOUND,
        "threads {before:?} -> {after:?}, bound {THREAD_BOUND}"
    );
    assert_no_restarts(addr, "after HTTP/2 clients");
}

#[test]
fn http10_keep_alive_and_connection_close_are_honoured() {
    let server = Tinyprom::start(&[]);
    let addr = server.addr;
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    for _ in 0..3 {
        s.write_all(b"GET /up HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .unwrap();
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).unwrap();
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(text.contains("\r\nConnection: keep-alive\r\n"), "{text}");
    }
    for request in [
        "GET /up HTTP/1.0\r\n\r\n",
        "GET /up HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    ] {
        let (raw, closed, _) = exchange(addr, request.as_bytes(), Duration::from_secs(2));
        let text = String::from_utf8_lossy(&raw);
        assert!(closed, "{request:?} closes");
        assert!(text.contains("\r\nConnection: close\r\n"), "{text}");
    }
    if have("ab") {
        let started = Instant::now();
        let out = Command::new("timeout")
            .args([
                "60",
                "ab",
                "-k",
                "-n",
                "20000",
                "-c",
                "50",
                &format!("http://{addr}/up"),
            ])
            .output()
            .unwrap();
        let took = started.elapsed();
        let text = String::from_utf8_lossy(&out.stdout);
        eprintln!("ab -k: {took:?}");
        assert!(out.status.success(), "{text}");
        assert!(text.contains("Complete requests:      20000"), "{text}");
        assert!(text.contains("Failed requests:        0"), "{text}");
        assert!(text.contains("Keep-Alive requests:    20000"), "{text}");
        assert!(took < Duration::from_secs(30), "ab -k took {took:?}");
    }
    assert_no_restarts(addr, "after HTTP/1.0 keep-alive");
}

#[test]
fn smuggling_vectors_get_one_400_and_a_close() {
    let server = Tinyprom::start(&[]);
    let addr = server.addr;
    let smuggled = "GET /synthetic HTTP/1.1\r\nHost: t\r\n\r\n";
    let cases: Vec<(&str, String)> = vec![
        (
            "Content-Length 0 and 36",
            format!(
                "GET /up HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nContent-Length: {}\r\n\r\n{smuggled}",
                smuggled.len()
            ),
        ),
        (
            "equal duplicate Content-Length",
            "GET /up HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc"
                .into(),
        ),
        (
            "Content-Length with Transfer-Encoding",
            format!(
                "POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{smuggled}"
            ),
        ),
        (
            "Transfer-Encoding other than chunked",
            format!(
                "POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n{smuggled}"
            ),
        ),
        (
            "Transfer-Encoding gzip",
            "POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n".into(),
        ),
        (
            "whitespace before the colon",
            "GET /up HTTP/1.1\r\nHost: t\r\nContent-Length : 5\r\n\r\nabcde".into(),
        ),
        (
            "obs-fold",
            "GET /up HTTP/1.1\r\nHost: t\r\nX-A: b\r\n c\r\n\r\n".into(),
        ),
        (
            "NUL in a header",
            "GET /up HTTP/1.1\r\nHost: t\u{0}x\r\n\r\n".into(),
        ),
        (
            "bare CR",
            "GET /up HTTP/1.1\r\nHost: t\rX-B: c\r\n\r\n".into(),
        ),
        ("bare LF", "GET /up HTTP/1.1\nHost: t\n\n".into()),
        ("HTTP/1.1 without Host", "GET /up HTTP/1.1\r\n\r\n".into()),
        (
            "two Hosts",
            "GET /up HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n".into(),
        ),
    ];
    for (name, bytes) in &cases {
        let (raw, closed, first) = exchange(addr, bytes.as_bytes(), Duration::from_secs(3));
        assert_eq!(
            statuses(&raw),
            [400],
            "{name}: {}",
            String::from_utf8_lossy(&raw)
        );
        assert!(closed, "{name}: closed after the 400");
        assert!(
            first < Duration::from_millis(500),
            "{name}: answered after {first:?}"
        );
    }
    assert_eq!(
        synthetic_count(addr),
        0.0,
        "no smuggled request was executed"
    );
    assert_no_restarts(addr, "after the smuggling vectors");
}

#[test]
fn bodies_are_refused_with_exactly_one_response() {
    let server = Tinyprom::start(&[]);
    let addr = server.addr;
    for (name, bytes, want) in [
        (
            "chunked POST",
            &b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"[..],
            411,
        ),
        (
            "POST with a body",
            b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n0123456789",
            413,
        ),
        (
            "Expect: 100-continue",
            b"POST /up HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n",
            413,
        ),
        (
            "100 MB declared",
            b"POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 100000000\r\n\r\nabc",
            413,
        ),
        ("POST without a body", b"POST /up HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", 405),
    ] {
        let (raw, closed, _) = exchange(addr, bytes, Duration::from_secs(3));
        assert_eq!(statuses(&raw), [want], "{name}: {}", String::from_utf8_lossy(&raw));
        assert!(closed, "{name}: closed");
    }
    if have("curl") {
        let out = Command::new("curl")
            .args([
                "-s",
                "-m",
                "3",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code} %{num_connects}",
            ])
            .args(["-H", "Transfer-Encoding: chunked", "--data-binary", "abc"])
            .arg(format!("http://{addr}/up"))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "411 1");
    }
    assert_no_restarts(addr, "after the bodies");
}

#[test]
fn oversized_target_and_headers_get_414_and_431_as_responses() {
    let server = Tinyprom::start(&[]);
    let addr = server.addr;
    let long_url = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "u".repeat(1 << 20));
    let big_headers = format!(
        "GET /up HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "h".repeat(16 << 20)
    );
    for (name, bytes, want) in [
        ("1 MiB URL", long_url, 414),
        ("16 MiB header", big_headers, 431),
    ] {
        let (raw, closed, first) = exchange(addr, bytes.as_bytes(), Duration::from_secs(5));
        assert_eq!(statuses(&raw), [want], "{name}");
        assert!(closed, "{name}: closed");
        assert!(
            first < Duration::from_secs(1),
            "{name}: answered after {first:?}"
        );
    }
    assert_up(addr, Duration::from_secs(1), "after oversized heads");
    assert_no_restarts(addr, "after oversized heads");
}

#[test]
fn absolute_form_targets_are_routed_by_path() {
    let server = Tinyprom::start(&[]);
    let addr = server.addr;
    let (raw, _, _) = exchange(
        addr,
        format!("GET http://{addr}/up HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
        Duration::from_secs(2),
    );
    assert!(raw.starts_with(b"HTTP/1.1 200") && raw.ends_with(b"I am running!"));
    if have("curl") {
        let out = Command::new("curl")
            .args([
                "-s",
                "-m",
                "3",
                "-x",
                &format!("http://{addr}"),
                "http://example.invalid/up",
            ])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "I am running!");
    }
    assert_no_restarts(addr, "after absolute-form targets");
}

#[test]
fn synthetic_401_carries_a_basic_challenge() {
    let server = Tinyprom::start(&[]);
    let addr = server.addr;
    let found = (0..400).find_map(|_| {
        let r = common::request(addr, "GET", "/synthetic", &[]);
        (r.status == 401).then_some(r)
    });
    let r = found.expect("a 401 among 400 draws (1 in 8 each)");
    assert_eq!(
        r.header("WWW-Authenticate"),
        Some("Basic realm=\"synthetic\"")
    );
    assert_no_restarts(addr, "after /synthetic");
}

#[test]
fn sighup_is_logged_once_and_ignored() {
    let mut server = Tinyprom::start(&[]);
    let addr = server.addr;
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(server.child.id() as i32, libc::SIGHUP) };
    std::thread::sleep(Duration::from_millis(300));
    assert!(server.child.try_wait().unwrap().is_none(), "still running");
    assert_up(addr, Duration::from_secs(1), "after SIGHUP");
    let log = server.stderr_text();
    assert_eq!(
        log.matches("SIGHUP received and ignored").count(),
        1,
        "{log}"
    );
    assert_no_restarts(addr, "after SIGHUP");
    let (status, _) = server
        .signal_and_wait(libc::SIGTERM, Duration::from_secs(5))
        .expect("exits");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn shutdown_is_bounded_whatever_the_clients_do() {
    let mut server = Tinyprom::start(&["--web.shutdown-timeout=1s"]);
    let addr = server.addr;
    // Idle keep-alive clients, slow heads, and clients that pipeline without reading.
    let mut idle = Vec::new();
    for _ in 0..20 {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(REQ.as_bytes()).unwrap();
        let mut buf = [0u8; 512];
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let _ = s.read(&mut buf).unwrap();
        idle.push(s);
    }
    let mut slow = Vec::new();
    for _ in 0..20 {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /up HTTP/1.1\r\nHost").unwrap();
        slow.push(s);
    }
    let mut greedy = Vec::new();
    for _ in 0..5 {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_write_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let _ = s.write_all(
            "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n"
                .repeat(2000)
                .as_bytes(),
        );
        greedy.push(s);
    }
    // A request in progress when the signal comes: its answer closes the connection.
    let mut in_flight = TcpStream::connect(addr).unwrap();
    in_flight
        .write_all(b"GET /synthetic HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_no_restarts(addr, "before the shutdown");
    in_flight
        .write_all(b"GET /synthetic HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let (status, took) = server
        .signal_and_wait(libc::SIGTERM, Duration::from_secs(5))
        .expect("exits after SIGTERM");
    assert_eq!(status.code(), Some(0));
    assert!(took < Duration::from_millis(1500), "exit took {took:?}");
    let mut rest = Vec::new();
    in_flight
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let _ = in_flight.read_to_end(&mut rest);
    let text = String::from_utf8_lossy(&rest);
    assert!(text.matches("HTTP/1.1 ").count() >= 1, "{text}");
    assert!(
        text.contains("\r\nConnection: close\r\n"),
        "the last answer says close: {text}"
    );
    let mut buf = [0u8; 16];
    idle[0]
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    assert!(
        matches!(idle[0].read(&mut buf), Ok(0) | Err(_)),
        "idle connection closed"
    );
}

#[test]
fn at_the_connection_bound_the_longest_idle_connection_makes_room() {
    let server = Tinyprom::start(&["--web.max-connections=16"]);
    let addr = server.addr;
    let mut idle = Vec::new();
    for _ in 0..16 {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        s.write_all(REQ.as_bytes()).unwrap();
        let mut buf = [0u8; 512];
        let _ = s.read(&mut buf).unwrap();
        idle.push(s);
    }
    // The scrapes below are new connections too: each displaces an idle one.
    assert_up(addr, Duration::from_secs(1), "at the bound");
    let mut buf = [0u8; 16];
    assert!(
        matches!(idle[0].read(&mut buf), Ok(0) | Err(_)),
        "the oldest idle one went first"
    );
    let evicted = metric(
        addr,
        "tinyprom_connections_closed_total{reason=\"evicted\"}",
    );
    assert!(evicted.is_some_and(|n| n >= 1.0), "{evicted:?}");
    assert_no_restarts(addr, "at the connection bound");
}

/// An embedder's route with a body limit reads its body, and learns the client's
/// address from the gate whatever the client claims.
#[test]
fn embedded_routes_read_bodies_and_see_the_real_peer() {
    use tinyprom::http::{DEFAULT_MAX_WORKERS, Reply, peer_addr};
    let (addr, running) = embedded(DEFAULT_MAX_WORKERS, "/echo", 16, |request| {
        let mut body = String::new();
        let _ = request.as_reader().read_to_string(&mut body);
        let peer = peer_addr(request)
            .map(|a| a.ip().to_string())
            .unwrap_or_default();
        Reply::text(200, format!("{peer} {body}"))
    });
    let (raw, _, _) = exchange(
        addr,
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTinyprom-Peer: 6.6.6.6:6\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
        Duration::from_secs(3),
    );
    assert!(
        raw.ends_with(b"127.0.0.1 hello"),
        "{}",
        String::from_utf8_lossy(&raw)
    );
    let (raw, _, _) = exchange(
        addr,
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 17\r\n\r\n01234567890123456",
        Duration::from_secs(3),
    );
    assert_eq!(statuses(&raw), [413]);
    running.stop().unwrap();
}

/// At the bound with every connection busy, a newcomer gets a 503 and a close at
/// once, and no busy connection is displaced. A connection is busy while a request of
/// it is held, waiting or in tiny_http; pipelined `/synthetic` requests keep one busy
/// without a gap (the next head is taken as the previous response is queued), for
/// the sum of their 1-50 ms delays: about two seconds for 80 of them. Newcomers send
/// their request at once, as curl does: `TCP_DEFER_ACCEPT` keeps a silent one in the
/// kernel, never accepted.
#[test]
fn at_the_bound_with_every_connection_busy_a_newcomer_gets_503_and_a_close() {
    const PIPELINED: usize = 80;
    const NEWCOMERS: usize = 3;
    let mut server = Tinyprom::start(&["--web.max-connections=16"]);
    let addr = server.addr;
    let mut busy = common::busy_connections(addr, 16, PIPELINED);
    for _ in 0..NEWCOMERS {
        let started = Instant::now();
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        s.write_all(REQ.as_bytes()).unwrap();
        let mut raw = Vec::new();
        // A clean close (FIN, not a reset that could destroy the answer) ends it.
        let ended = s.read_to_end(&mut raw);
        let took = started.elapsed();
        let text = String::from_utf8_lossy(&raw);
        assert!(
            ended.is_ok(),
            "the newcomer is closed cleanly: {ended:?} {text}"
        );
        assert_eq!(statuses(&raw), [503], "{text}");
        assert!(
            text.ends_with("\r\n\r\n503 too many connections with requests in progress\n"),
            "{text}"
        );
        assert!(took < Duration::from_secs(1), "turned away in {took:?}");
    }
    // Every busy connection still gets all its answers: none was displaced.
    for s in &mut busy {
        let started = Instant::now();
        let mut raw = Vec::new();
        let mut buf = [0u8; 65536];
        while statuses(&raw).len() < PIPELINED - 1 && started.elapsed() < Duration::from_secs(10) {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => raw.extend_from_slice(&buf[..n]),
            }
        }
        // The first byte was read above: the first status line no longer counts.
        assert_eq!(
            statuses(&raw).len(),
            PIPELINED - 1,
            "{}",
            String::from_utf8_lossy(&raw)
        );
    }
    drop(busy);
    assert_eq!(
        metric(addr, "tinyprom_connections_rejected_total"),
        Some(NEWCOMERS as f64)
    );
    assert_no_restarts(addr, "after turning newcomers away");
    let (status, _) = server
        .signal_and_wait(libc::SIGTERM, Duration::from_secs(5))
        .expect("exits after SIGTERM");
    assert_eq!(status.code(), Some(0));
}

/// Reads one response from a keep-alive connection: status, whether it was for
/// HEAD (no body read), body.
fn read_one(s: &mut TcpStream, pending: &mut Vec<u8>, head: bool) -> (u16, Vec<u8>) {
    let mut buf = [0u8; 65536];
    loop {
        if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let text = String::from_utf8_lossy(&pending[..end]).to_string();
            let status: u16 = text[9..12].parse().unwrap();
            let length: usize = text
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or_else(|| {
                    // RFC 9110: a 204 or 304 has no content, and a 204 no Content-Length.
                    assert!(
                        matches!(status, 204 | 304),
                        "{status} without a Content-Length"
                    );
                    0
                });
            let length = if head { 0 } else { length };
            if pending.len() >= end + 4 + length {
                let body = pending[end + 4..end + 4 + length].to_vec();
                pending.drain(..end + 4 + length);
                return (status, body);
            }
        }
        let n = s.read(&mut buf).expect("a response within the timeout");
        assert!(n > 0, "the server closed a keep-alive connection");
        pending.extend_from_slice(&buf[..n]);
    }
}

/// An embedded server on a free loopback port (no process metrics) with `workers`
/// workers and one route of the embedder's at `path`, taking bodies up to
/// `body_limit` bytes.
fn embedded(
    workers: usize,
    path: &str,
    body_limit: u64,
    handler: impl Fn(&mut tiny_http::Request) -> tinyprom::http::Reply + Send + Sync + 'static,
) -> (SocketAddr, tinyprom::http::RunningServer) {
    use tinyprom::http::{Options, Server};
    let options = Options {
        listen_address: "127.0.0.1:0".parse().unwrap(),
        process_metrics: false,
        max_workers: workers,
        ..Options::default()
    };
    let server = Server::builder(options)
        .route_with_body(path, body_limit, handler)
        .bind()
        .unwrap();
    let addr = server.local_addr();
    (addr, server.spawn().unwrap())
}

/// [`embedded`] with a route `/slow` that sleeps `slow`, then answers its own URL.
fn with_slow_route(workers: usize, slow: Duration) -> (SocketAddr, tinyprom::http::RunningServer) {
    embedded(workers, "/slow", 0, move |request| {
        std::thread::sleep(slow);
        tinyprom::http::Reply::text(200, request.url().to_string())
    })
}

/// Requests of many clients share the gate's lanes to tiny_http (see
/// `src/http/gate/lane.rs`): every client still gets its own answers, in its order,
/// and a slow embedder's route, which travels on a lane of its own, delays no one
/// else. Each client sends a random mix of routes whose answers differ, so an answer
/// delivered to the wrong client, or shifted by one, fails the check.
#[test]
fn clients_sharing_lanes_each_get_their_own_answers() {
    const CLIENTS: usize = 24;
    const REQUESTS: usize = 150;
    const SLOW: Duration = Duration::from_millis(800);
    let (addr, running) = with_slow_route(tinyprom::http::DEFAULT_MAX_WORKERS, SLOW);
    let slow = std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut pending = Vec::new();
        for id in 0..3 {
            write!(s, "GET /slow?id={id} HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
            let (status, body) = read_one(&mut s, &mut pending, false);
            assert_eq!((status, body), (200, format!("/slow?id={id}").into_bytes()));
        }
    });
    std::thread::sleep(Duration::from_millis(50)); // the slow request is in
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut pending = Vec::new();
                let mut rng = fastrand::Rng::with_seed(c as u64);
                let mut slowest = Duration::ZERO;
                for _ in 0..REQUESTS {
                    let kind = rng.usize(0..6);
                    let (line, head) = match kind {
                        0 => ("GET /up", false),
                        1 => ("HEAD /up", true),
                        2 => ("GET /no-such-page", false),
                        3 => ("POST /up", false),
                        4 => ("GET /synthetic", false),
                        _ => ("GET /metrics", false),
                    };
                    let started = Instant::now();
                    write!(s, "{line} HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
                    let (status, body) = read_one(&mut s, &mut pending, head);
                    let body = String::from_utf8_lossy(&body).to_string();
                    let fits = match kind {
                        0 => status == 200 && body == "I am running!",
                        1 => status == 200 && body.is_empty(),
                        2 => status == 404 && body.starts_with("404"),
                        3 => status == 405 && body.starts_with("405"),
                        4 => body == status.to_string(),
                        _ => status == 200 && body.contains("# TYPE "),
                    };
                    assert!(fits, "client {c}: {line} got {status} {body:?}");
                    if kind != 4 {
                        slowest = slowest.max(started.elapsed());
                    }
                }
                slowest
            })
        })
        .collect();
    let slowest = clients
        .into_iter()
        .map(|c| c.join().unwrap())
        .max()
        .unwrap();
    slow.join().unwrap();
    assert!(
        slowest < SLOW / 2,
        "a request without delay waited {slowest:?}, as if behind the slow route"
    );
    running.stop().unwrap();
}

/// Every worker can be busy at once: as many slow requests as workers, each on its own
/// connection, finish in about one handler's time, not two (with requests inside
/// tiny_http capped below the worker count, the rest waited for a second round).
#[test]
fn as_many_slow_requests_as_workers_run_at_once() {
    use std::sync::{Arc, Barrier};
    const WORKERS: usize = 12;
    const SLOW: Duration = Duration::from_millis(400);
    let (addr, running) = with_slow_route(WORKERS, SLOW);
    let start = Arc::new(Barrier::new(WORKERS + 1));
    let clients: Vec<_> = (0..WORKERS)
        .map(|id| {
            let start = Arc::clone(&start);
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut pending = Vec::new();
                start.wait();
                write!(s, "GET /slow?id={id} HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
                let (status, body) = read_one(&mut s, &mut pending, false);
                assert_eq!((status, body), (200, format!("/slow?id={id}").into_bytes()));
            })
        })
        .collect();
    start.wait();
    let began = Instant::now();
    for c in clients {
        c.join().unwrap();
    }
    let took = began.elapsed();
    running.stop().unwrap();
    assert!(
        took < SLOW * 3 / 2,
        "{WORKERS} slow requests on {WORKERS} workers took {took:?}, more than one handler's {SLOW:?} and a half"
    );
}

/// A handler's status that forbids a body (204, 304) gets its answer without one, and
/// the connection goes on; a 1xx, which is no final answer, becomes a 500. Before,
/// tiny_http announced the body's length and left the body out, so the gate waited
/// for bytes that never came and the client got nothing.
#[test]
fn bodiless_statuses_from_a_handler_are_answered_and_the_connection_goes_on() {
    use tinyprom::http::{DEFAULT_MAX_WORKERS, Reply};
    let (addr, running) = embedded(DEFAULT_MAX_WORKERS, "/status", 0, |request| {
        let code = request.url().rsplit('=').next().unwrap().parse().unwrap();
        Reply::text(code, "a body the status forbids")
    });
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut pending = Vec::new();
    for (asked, expected) in [(204, 204), (304, 304), (100, 500), (199, 500), (200, 200)] {
        write!(s, "GET /status?code={asked} HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        let (status, body) = read_one(&mut s, &mut pending, false);
        assert_eq!(status, expected, "asked for {asked}");
        if expected == 204 || expected == 304 {
            assert!(body.is_empty(), "{asked} came with a body: {body:?}");
        }
    }
    write!(s, "GET /up HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    assert_eq!(
        read_one(&mut s, &mut pending, false),
        (200, b"I am running!".to_vec())
    );
    if have("curl") {
        // A client nobody here wrote: both on one connection, answered at once.
        let url = |code: u16| format!("http://{addr}/status?code={code}");
        let out = Command::new("curl")
            .args([
                "-sS",
                "--max-time",
                "5",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code} ",
            ])
            .args([url(204), url(304)])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "curl: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), "204 304 ");
    }
    running.stop().unwrap();
}

/// A handler that sets its own `Content-Length` cannot desynchronise the response: the
/// length sent is always the body's. tiny_http takes such a header as the body's
/// length, so a larger one left the gate waiting for bytes that never came, and a
/// smaller one cut the body and left the rest to be read as the next response.
#[test]
fn a_handlers_own_content_length_is_ignored() {
    use tinyprom::http::{DEFAULT_MAX_WORKERS, Reply};
    let (addr, running) = embedded(DEFAULT_MAX_WORKERS, "/length", 0, |request| {
        let claimed = request.url().rsplit('=').next().unwrap().to_string();
        Reply::text(200, "hello")
            .header("Content-Length", &claimed)
            .unwrap()
    });
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut pending = Vec::new();
    for claimed in ["100", "2", "0", "5"] {
        write!(s, "GET /length?n={claimed} HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        let answer = read_one(&mut s, &mut pending, false);
        assert_eq!(answer, (200, b"hello".to_vec()), "claimed {claimed}");
    }
    write!(s, "GET /up HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    assert_eq!(
        read_one(&mut s, &mut pending, false),
        (200, b"I am running!".to_vec())
    );
    running.stop().unwrap();
}
