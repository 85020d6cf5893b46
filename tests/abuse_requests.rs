//! No single request, nor a few hundred bad ones, takes tinyprom down: the malformed
//! input corpus, the requests that break a plain tiny_http server (huge and
//! overflowing Content-Length, stalled uploads, HTTP/2.0 request lines, huge headers),
//! and random paths and methods that must not grow the series count.

mod abuse_support;
mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use abuse_support::{
    assert_no_restarts, assert_up, quick_get, send_raw, series_names, usage, wait_for_child,
};
use common::Tinyprom;

const READ_TIMEOUT: &str = "--web.read-timeout=2s";

fn serving_rss_kb(server: &Tinyprom) -> u64 {
    let pid = wait_for_child(server.child.id(), None, Duration::from_secs(2)).expect("child");
    usage(pid).map_or(0, |u| u.rss_kb)
}

fn assert_no_panic(server: &Tinyprom) {
    let log = server.stderr_text();
    assert!(!log.contains("panicked"), "a panic was logged:\n{log}");
    assert_no_restarts(server.addr, "after the abuse");
}

#[test]
fn malformed_input_corpus_gets_4xx_or_close_and_up_answers_after_each() {
    let server = Tinyprom::start(&[READ_TIMEOUT]);
    let addr = server.addr;
    let long_path = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "p".repeat(100_000));
    let big_header = format!(
        "GET /up HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "h".repeat(1_000_000)
    );
    let many_headers = format!(
        "GET /up HTTP/1.1\r\nHost: t\r\n{}\r\n",
        (0..10_000)
            .map(|i| format!("X-{i}: v\r\n"))
            .collect::<String>()
    );
    let pipelined = "GET /up HTTP/1.1\r\nHost: t\r\n\r\n".repeat(50);
    let mut big_body =
        b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 100000000\r\n\r\n".to_vec();
    big_body.resize(big_body.len() + 100_000_000, b'b');
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "garbage",
            b"\x16\x03\x01\x02\x00\x01\x00garbage\xff\xfe\r\n\r\n".to_vec(),
        ),
        ("bare CRLFs", b"\r\n\r\n\r\n\r\n".to_vec()),
        (
            "HTTP/2 preface",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(),
        ),
        (
            "NUL in path",
            b"GET /u\x00p HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(),
        ),
        (
            "invalid UTF-8 in path",
            b"GET /\xff\xfe\xfd HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(),
        ),
        ("100 kB path", long_path.into_bytes()),
        ("1 MB header", big_header.into_bytes()),
        ("10,000 headers", many_headers.into_bytes()),
        ("HTTP/9.9", b"GET /up HTTP/9.9\r\nHost: t\r\n\r\n".to_vec()),
        (
            "negative Content-Length",
            b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: -5\r\n\r\n".to_vec(),
        ),
        (
            "duplicate Content-Length",
            b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc"
                .to_vec(),
        ),
        (
            "conflicting Content-Length",
            b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 3000\r\n\r\nabc"
                .to_vec(),
        ),
        (
            "broken chunked",
            b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nnot hex\r\n"
                .to_vec(),
        ),
        (
            "Expect: 100-continue",
            b"POST /up HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n"
                .to_vec(),
        ),
        ("100 MB body to /up", big_body),
        ("50 pipelined requests", pipelined.into_bytes()),
        (
            "unparsable Accept",
            b"GET /metrics HTTP/1.1\r\nHost: t\r\nAccept: ;;q=x,,\xff/\xfe;version=\r\n\r\n"
                .to_vec(),
        ),
        (
            "huge Content-Length",
            b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 100000000000000\r\n\r\n".to_vec(),
        ),
        (
            "overflowing Content-Length",
            b"GET /up HTTP/1.1\r\nHost: t\r\nContent-Length: 18446744073709551615\r\n\r\n".to_vec(),
        ),
    ];
    for (name, bytes) in &cases {
        let (code, took) = send_raw(addr, bytes, Duration::from_secs(5));
        assert!(
            code.is_none_or(|c| c < 500 || c == 505),
            "{name}: answered {code:?} (a 5xx other than 505 for a version we do not serve)"
        );
        assert!(
            took < Duration::from_secs(5),
            "{name}: neither answered nor closed in {took:?}"
        );
        assert_up(addr, Duration::from_secs(1), name);
        let rss = serving_rss_kb(&server);
        assert!(rss < 64 * 1024, "{name}: RSS {rss} kB");
        eprintln!("{name}: {code:?} in {took:?}, RSS {rss} kB");
    }
    assert_no_panic(&server);
}

#[test]
fn requests_that_kill_plain_tiny_http_leave_the_service_up() {
    let server = Tinyprom::start(&[READ_TIMEOUT]);
    let addr = server.addr;
    // Aborts a plain tiny_http (allocation failure in the body drain).
    send_raw(
        addr,
        b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 100000000000000\r\n\r\n",
        Duration::from_secs(3),
    );
    assert_up(addr, Duration::from_secs(1), "after a huge Content-Length");
    // Panics its worker (capacity overflow).
    for _ in 0..8 {
        send_raw(
            addr,
            b"GET /up HTTP/1.1\r\nHost: t\r\nContent-Length: 18446744073709551615\r\n\r\n",
            Duration::from_secs(3),
        );
    }
    assert_up(
        addr,
        Duration::from_secs(1),
        "after overflowing Content-Lengths",
    );
    // Stalled uploads: a 100 MB body announced and never sent, eight times.
    let stalled: Vec<TcpStream> = (0..8)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 100000000\r\n\r\n")
                .unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    assert_up(addr, Duration::from_secs(1), "with 8 stalled uploads");
    assert_eq!(quick_get(addr, "/metrics", Duration::from_secs(1)), Ok(200));
    drop(stalled);
    // HTTP/2.0 request lines used to deadlock tiny_http's connection thread: 600 of them.
    let wedged = open_wedged(addr, 600);
    assert_eq!(wedged.len(), 600);
    assert_up(
        addr,
        Duration::from_secs(1),
        "with 600 HTTP/2.0 connections",
    );
    drop(wedged);
    assert_up(
        addr,
        Duration::from_secs(1),
        "after 600 HTTP/2.0 connections",
    );
    // A 200 MB header line.
    {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.write_all(b"GET /up HTTP/1.1\r\nX-Huge: ");
        let chunk = vec![b'a'; 1 << 20];
        for _ in 0..200 {
            if s.write_all(&chunk).is_err() {
                break;
            }
        }
    }
    assert_up(addr, Duration::from_secs(1), "after a 200 MB header line");
    let rss = serving_rss_kb(&server);
    assert!(rss < 64 * 1024, "RSS {rss} kB");
    // 500 fresh connections in a row, all served.
    let served = (0..500)
        .filter(|_| quick_get(addr, "/up", Duration::from_secs(2)) == Ok(200))
        .count();
    assert_eq!(served, 500);
    assert_no_panic(&server);
}

#[test]
fn random_paths_and_methods_leave_the_series_count_unchanged() {
    let server = Tinyprom::start(&["--no-process-metrics"]);
    let addr = server.addr;
    let methods = [
        "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "BREW", "X-Y",
    ];
    let random_round = |n: usize| {
        for _ in 0..n {
            let method = methods[fastrand::usize(..methods.len())];
            let path: String = (0..fastrand::usize(1..40))
                .map(|_| fastrand::alphanumeric())
                .collect();
            // `/zz` first: a random path could otherwise be a route (`/up` is one
            // draw in about 150,000), whose series is new and rightly so.
            let req = format!(
                "{method} /zz{path}?q={} HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                fastrand::u32(..)
            );
            send_raw(addr, req.as_bytes(), Duration::from_secs(2));
        }
    };
    random_round(300);
    // The first scrape's own series appears only after it is answered.
    common::request(addr, "GET", "/metrics", &[]);
    let before = series_names(&common::request(addr, "GET", "/metrics", &[]).body);
    random_round(1000);
    let after = series_names(&common::request(addr, "GET", "/metrics", &[]).body);
    assert_eq!(
        after.difference(&before).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "series that 1000 more random requests added"
    );
    assert_eq!(
        before.len(),
        after.len(),
        "series count after 1000 more random requests"
    );
    assert_no_restarts(addr, "after random paths and methods");
}

/// Opens `n` connections with an `HTTP/2.0` request line (which deadlocked a thread of
/// a tiny_http serving the public socket; the gate answers 505).
fn open_wedged(addr: std::net::SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .filter_map(|_| {
            let mut s = TcpStream::connect(addr).ok()?;
            s.write_all(b"GET /up HTTP/2.0\r\nHost: t\r\n\r\n").ok()?;
            Some(s)
        })
        .collect()
}

/// 600 `HTTP/2.0` connections, more than the connection bound, then 500 fresh
/// clients: every fresh one is served.
#[test]
fn fresh_clients_are_served_while_wedged_connections_fill_the_bound() {
    let server = Tinyprom::start(&[READ_TIMEOUT]);
    let addr = server.addr;
    let wedged = open_wedged(addr, 600);
    assert_eq!(wedged.len(), 600);
    drop(wedged);
    let served = (0..500)
        .filter(|_| quick_get(addr, "/up", Duration::from_secs(2)) == Ok(200))
        .count();
    assert_eq!(served, 500);
    assert_no_panic(&server);
}
