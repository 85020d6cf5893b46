//! Helpers for the reliability tests: the serving child process of a supervised
//! tinyprom, its resources, quick probes and raw connections.
#![allow(dead_code)] // each test binary uses a different subset

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// The pid of the (single) serving child of the supervisor `parent`.
pub fn child_pid(parent: u32) -> Option<u32> {
    let path = format!("/proc/{parent}/task/{parent}/children");
    std::fs::read_to_string(path)
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Waits (at most `limit`) for a serving child other than `not`.
pub fn wait_for_child(parent: u32, not: Option<u32>, limit: Duration) -> Option<u32> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(pid) = child_pid(parent).filter(|p| Some(*p) != not) {
            return Some(pid);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    None
}

/// The most threads a serving process with the default workers may have whatever
/// its clients do: the gate, tiny_http's accept thread, the workers, one tiny_http pool
/// thread per private connection (one per worker, at least 2: the lanes that may be busy at
/// once) and the 4 idle ones that pool
/// keeps. The pool starts, grows and retires threads on its own schedule (an idle one
/// lingers 5 s; on a slow machine even the minimum ones retire), so a before/after
/// difference measures that schedule, while a thread per client would break this bound.
pub const THREAD_BOUND: u64 = 2
    + tinyprom::http::DEFAULT_MAX_WORKERS as u64
    + if tinyprom::http::DEFAULT_MAX_WORKERS > 2 {
        tinyprom::http::DEFAULT_MAX_WORKERS as u64
    } else {
        2
    }
    + 4;

/// Threads, open descriptors and resident kB of a process.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    pub threads: u64,
    pub fds: u64,
    pub rss_kb: u64,
}

pub fn usage(pid: u32) -> Option<Usage> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    Some(Usage {
        threads: field("Threads:")?,
        rss_kb: field("VmRSS:")?,
        fds: std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64,
    })
}

/// GET `path` on a fresh connection within `limit`: the status, or why not.
pub fn quick_get(addr: SocketAddr, path: &str, limit: Duration) -> Result<u16, String> {
    let mut s = TcpStream::connect_timeout(&addr, limit).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(limit)).map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(limit))
        .map_err(|e| e.to_string())?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).map_err(|e| format!("read: {e}"))?;
    std::str::from_utf8(&head[9..12])
        .ok()
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad status line {head:?}"))
}

/// Asserts `/up` answers 200 within `limit`, naming the situation on failure.
pub fn assert_up(addr: SocketAddr, limit: Duration, when: &str) {
    let start = Instant::now();
    match quick_get(addr, "/up", limit) {
        Ok(200) => {}
        other => panic!("{when}: /up gave {other:?} after {:?}", start.elapsed()),
    }
}

/// Sends `bytes` on a fresh connection and reads until the server answers or closes
/// (at most `limit`); returns the status code if any and how long it took.
pub fn send_raw(addr: SocketAddr, bytes: &[u8], limit: Duration) -> (Option<u16>, Duration) {
    let start = Instant::now();
    let Ok(mut s) = TcpStream::connect_timeout(&addr, limit) else {
        return (None, start.elapsed());
    };
    let _ = s.set_write_timeout(Some(limit));
    let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
    // The server may close before everything is sent: that is an answer too.
    let _ = s.write_all(bytes);
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while start.elapsed() < limit {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                if got.len() >= 12 {
                    break;
                }
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => break,
        }
    }
    let code = (got.len() >= 12)
        .then(|| std::str::from_utf8(&got[9..12]).ok()?.parse().ok())
        .flatten();
    (code, start.elapsed())
}

/// The number of samples in a text exposition.
/// The series (name and labels, without the value) of a text scrape `body`.
pub fn series_names(body: &[u8]) -> std::collections::BTreeSet<String> {
    String::from_utf8_lossy(body)
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            l.rsplit_once(' ')
                .map_or(l, |(series, _)| series)
                .to_string()
        })
        .collect()
}

pub fn series_count(body: &[u8]) -> usize {
    String::from_utf8_lossy(body)
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .count()
}

/// The value of the sample whose line starts with `series` (name and labels exactly as
/// rendered) in a fresh text scrape, if present.
pub fn metric(addr: SocketAddr, series: &str) -> Option<f64> {
    let body = crate::common::request(addr, "GET", "/metrics", &[]).body;
    String::from_utf8_lossy(&body).lines().find_map(|l| {
        let rest = l.strip_prefix(series)?.strip_prefix(' ')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Asserts that no client input made the supervisor restart the serving process.
pub fn assert_no_restarts(addr: SocketAddr, when: &str) {
    assert_eq!(
        metric(addr, "tinyprom_restarts_total"),
        Some(0.0),
        "{when}: the serving process was restarted"
    );
}
