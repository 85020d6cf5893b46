//! The rows of the hardening issue against the real binary, each with the exact bytes
//! of its reproducer: form feed taken for whitespace (1), an invalid Host accepted (2),
//! HEAD refusals with bodies (3), no `Date` on the gate's answers (4), answers lost
//! after a half-close (6), refusals invisible to the SLI (7). Each test ends by
//! checking that no input made the supervisor restart the serving process.

mod abuse_support;
mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::FromRawFd;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use abuse_support::{assert_no_restarts, metric};
use common::Tinyprom;

/// Sends `bytes`, half-closes (as `printf ... | nc -N` does) and reads until the
/// server closes (at most `limit`).
fn half_closed_exchange(addr: SocketAddr, bytes: &[u8], limit: Duration) -> Vec<u8> {
    let start = Instant::now();
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    s.write_all(bytes).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    read_until_closed(&mut s, start, limit)
}

/// Sends `bytes` without half-closing and reads until the server closes.
fn exchange(addr: SocketAddr, bytes: &[u8], limit: Duration) -> Vec<u8> {
    let start = Instant::now();
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let _ = s.write_all(bytes);
    read_until_closed(&mut s, start, limit)
}

fn read_until_closed(s: &mut TcpStream, start: Instant, limit: Duration) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    while start.elapsed() < limit {
        match s.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return got,
        }
    }
    panic!(
        "not closed within {limit:?}: {}",
        String::from_utf8_lossy(&got)
    );
}

/// The status codes of every response in `raw`, in order.
fn statuses(raw: &[u8]) -> Vec<u16> {
    let text = String::from_utf8_lossy(raw);
    text.match_indices("HTTP/1.1 ")
        .filter_map(|(i, _)| text.get(i + 9..i + 12)?.parse().ok())
        .collect()
}

fn header<'a>(raw: &'a str, name: &str) -> Option<&'a str> {
    raw.split("\r\n\r\n").next()?.split("\r\n").find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[test]
fn row1_only_space_and_tab_surround_a_field_value() {
    let server = Tinyprom::start(&[]);
    let limit = Duration::from_secs(5);
    // The reproducer: read as `Content-Length: 0` it was 200 then 404.
    let smuggle =
        b"GET /up HTTP/1.1\r\nHost: t\r\nContent-Length: \x0c0\r\n\r\nGET /nope HTTP/1.1\r\nHost: t\r\n\r\n";
    assert_eq!(statuses(&exchange(server.addr, smuggle, limit)), [400]);
    for head in [
        &b"GET /up HTTP/1.1\r\nHost: t\r\nContent-Length: \x0c5\r\n\r\nhello"[..],
        b"GET /up HTTP/1.1\r\nHost: \x0ca\x0c\r\n\r\n",
        b"GET /up HTTP/1.1\r\nHost: t\r\nConnection: \x0cclose\r\n\r\n",
        b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: \x0cchunked\r\n\r\n0\r\n\r\n",
        b"GET /up HTTP/1.1\r\nHost: t\r\nX-Any: a\x0bb\r\n\r\n",
    ] {
        let raw = exchange(server.addr, head, limit);
        assert_eq!(
            statuses(&raw),
            [400],
            "{:?}: {}",
            String::from_utf8_lossy(head),
            String::from_utf8_lossy(&raw)
        );
    }
    // SP and HTAB are still optional whitespace.
    let ok = b"GET /up HTTP/1.1\r\nHost: \t t \t\r\nConnection: close\r\n\r\n";
    assert_eq!(statuses(&exchange(server.addr, ok, limit)), [200]);
    assert_no_restarts(server.addr, "after form feeds");
}

#[test]
fn row2_an_invalid_host_gets_400() {
    let server = Tinyprom::start(&[]);
    let limit = Duration::from_secs(5);
    for host in ["a b", "[zz", "a/b@c", "a:80x", "[::1]x", "a%g0"] {
        let head = format!("GET /up HTTP/1.1\r\nHost: {host}\r\n\r\n");
        let raw = exchange(server.addr, head.as_bytes(), limit);
        assert_eq!(statuses(&raw), [400], "Host: {host}");
    }
    for host in ["t", "127.0.0.1:8000", "[::1]:80", "a.example%41"] {
        let head = format!("GET /up HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        let raw = exchange(server.addr, head.as_bytes(), limit);
        assert_eq!(statuses(&raw), [200], "Host: {host}");
    }
    assert_no_restarts(server.addr, "after invalid hosts");
}

#[test]
fn row3_row4_the_gates_answers_carry_a_date_and_no_body_for_head() {
    let server = Tinyprom::start(&[]);
    let limit = Duration::from_secs(5);
    let long_target = format!("HEAD /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(9000));
    let long_header = format!(
        "HEAD /up HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "b".repeat(17_000)
    );
    let cases: [(&[u8], u16); 7] = [
        (b"HEAD /up HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
        (
            b"HEAD /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n",
            411,
        ),
        (
            b"HEAD /up HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\n",
            413,
        ),
        (long_target.as_bytes(), 414),
        (
            b"HEAD /up HTTP/1.1\r\nHost: t\r\nExpect: magic\r\n\r\n",
            417,
        ),
        (long_header.as_bytes(), 431),
        (b"HEAD /up HTTP/3.0\r\nHost: t\r\n\r\n", 505),
    ];
    for (head, status) in cases {
        let raw = exchange(server.addr, head, limit);
        let text = String::from_utf8_lossy(&raw);
        assert_eq!(statuses(&raw), [status], "{text}");
        // RFC 9110 section 9.3.2: nothing after the head of a response to HEAD.
        assert!(
            text.ends_with("\r\n\r\n"),
            "a body after a HEAD answer: {text}"
        );
        assert_date_is_now(&text);
        // The same request as GET gets the body.
        let get = [b"GET".as_slice(), &head[4..]].concat();
        let raw = exchange(server.addr, &get, limit);
        let text = String::from_utf8_lossy(&raw);
        assert_eq!(statuses(&raw), [status], "{text}");
        assert!(
            text.ends_with('\n') && !text.ends_with("\r\n\r\n"),
            "{text}"
        );
        assert_date_is_now(&text);
    }
    assert_no_restarts(server.addr, "after refusals");
}

/// The answer's `Date` is an IMF-fixdate within a few seconds of now (GNU `date`
/// reads it).
fn assert_date_is_now(text: &str) {
    let date = header(text, "date").unwrap_or_else(|| panic!("no Date: {text}"));
    assert!(
        date.len() == 29 && date.ends_with(" GMT") && &date[3..5] == ", ",
        "{date}"
    );
    let out = Command::new("date")
        .args(["-u", "-d", date, "+%s"])
        .output()
        .expect("date(1)");
    let then: u64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("date(1) cannot read {date:?}"));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(now.abs_diff(then) <= 3, "Date {date} is not now");
}

#[test]
fn row6_every_request_sent_before_a_half_close_is_answered_in_order() {
    let server = Tinyprom::start(&[]);
    let limit = Duration::from_secs(10);
    let synthetic = "GET /synthetic HTTP/1.1\r\nHost: t\r\n\r\n";
    let metrics = "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n";
    let up = "GET /up HTTP/1.1\r\nHost: t\r\n\r\n";
    for n in 2..=5 {
        let raw = half_closed_exchange(server.addr, synthetic.repeat(n).as_bytes(), limit);
        assert_eq!(statuses(&raw).len(), n, "{n} x /synthetic");
        let raw = half_closed_exchange(server.addr, metrics.repeat(n).as_bytes(), limit);
        assert_eq!(statuses(&raw), vec![200; n], "{n} x /metrics");
        let raw = half_closed_exchange(server.addr, up.repeat(n).as_bytes(), limit);
        assert_eq!(statuses(&raw), vec![200; n], "{n} x /up");
    }
    // In order: the answers follow the requests' routes.
    let mixed = format!(
        "{up}GET /nope HTTP/1.1\r\nHost: t\r\n\r\n{up}HEAD /up HTTP/1.1\r\nHost: t\r\n\r\n"
    );
    let raw = half_closed_exchange(server.addr, mixed.as_bytes(), limit);
    assert_eq!(statuses(&raw), [200, 404, 200, 200]);
    // An incomplete request after the complete ones is not answered; the rest are.
    let partial = format!("{up}{up}GET /up HTTP/1.1\r\nHo");
    let raw = half_closed_exchange(server.addr, partial.as_bytes(), limit);
    assert_eq!(statuses(&raw), [200, 200]);
    assert_no_restarts(server.addr, "after half-closes");
}

/// A client socket with a small receive buffer, so a response it does not read backs
/// up into the server quickly.
fn small_window_connect(addr: SocketAddr) -> TcpStream {
    // SAFETY: plain socket calls on a descriptor created here; the option value is a
    // live c_int for the duration of setsockopt.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0);
        let size: libc::c_int = 4096;
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        let stream = TcpStream::from_raw_fd(fd);
        let SocketAddr::V4(v4) = addr else {
            panic!("IPv4 expected")
        };
        let sin = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: v4.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(*v4.ip()).to_be(),
            },
            sin_zero: [0; 8],
        };
        let rc = libc::connect(
            fd,
            (&sin as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        assert_eq!(rc, 0, "connect");
        stream
    }
}

#[test]
fn row6_a_half_closed_client_that_never_reads_is_closed_by_the_write_timeout() {
    // The write timeout is the read timeout up to 2 s.
    let server = Tinyprom::start(&["--web.read-timeout=1s"]);
    let closed = "tinyprom_connections_closed_total{reason=\"write_timeout\"}";
    assert_eq!(metric(server.addr, closed), None, "no such close yet");
    // More series make each scrape larger, so the answers to the requests below
    // outgrow what the kernel's socket buffers can take.
    for method in [
        "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "BREW",
    ] {
        for path in ["/up", "/nope", "/", "/synthetic"] {
            let head = format!("{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
            exchange(server.addr, head.as_bytes(), Duration::from_secs(5));
        }
    }
    let mut s = small_window_connect(server.addr);
    let scrape = "GET /metrics HTTP/1.1\r\nHost:\r\n\r\n".repeat(450);
    s.write_all(scrape.as_bytes()).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let start = Instant::now();
    while metric(server.addr, closed) != Some(1.0) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "a half-closed client that never reads was not closed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(s);
    assert_no_restarts(server.addr, "after a half-closed non-reader");
}

#[test]
fn row7_refusals_are_in_the_request_histogram_and_the_refused_counter() {
    const NEWCOMERS: usize = 20;
    let server = Tinyprom::start(&["--web.max-connections=16"]);
    let addr = server.addr;
    let count = |url: &str, code: u16| {
        let series = format!(
            "http_request_duration_seconds_count{{method=\"GET\",url=\"{url}\",code=\"{code}\"}}"
        );
        metric(addr, &series).unwrap_or(0.0)
    };
    let refused = |code: u16| {
        metric(
            addr,
            &format!("tinyprom_requests_refused_total{{code=\"{code}\"}}"),
        )
        .unwrap_or(0.0)
    };
    // A refusal whose target parsed is recorded under its route, others as unmatched.
    let limit = Duration::from_secs(5);
    let bad_host = exchange(addr, b"GET /up HTTP/1.1\r\nHost: a b\r\n\r\n", limit);
    assert_eq!(statuses(&bad_host), [400]);
    let long = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(9000));
    assert_eq!(statuses(&exchange(addr, long.as_bytes(), limit)), [414]);
    assert_eq!(count("/up", 400), 1.0);
    assert_eq!(count("unmatched", 414), 1.0);
    assert_eq!((refused(400), refused(414)), (1.0, 1.0));

    // The reproducer: 16 busy connections, 20 newcomers.
    let busy = common::busy_connections(addr, 16, 80);
    for _ in 0..NEWCOMERS {
        let raw = exchange(addr, b"GET /up HTTP/1.1\r\nHost: t\r\n\r\n", limit);
        let text = String::from_utf8_lossy(&raw);
        assert_eq!(statuses(&raw), [503], "{text}");
        assert_date_is_now(&text);
    }
    drop(busy);
    // The busy connections close as the gate sees their resets.
    let start = Instant::now();
    while metric(addr, "tinyprom_connections_open") != Some(1.0) {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "busy connections still open"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        metric(addr, "tinyprom_connections_rejected_total"),
        Some(NEWCOMERS as f64)
    );
    assert_eq!(count("/up", 503), NEWCOMERS as f64);
    assert_eq!(refused(503), NEWCOMERS as f64);
    assert_no_restarts(addr, "after turning newcomers away");
}
