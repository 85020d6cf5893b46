//! Floods: thousands of idle connections under a 1024 file descriptor limit, a
//! slow-loris crowd, and bursts and crowds of keep-alive clients that must all be
//! served fairly. Resource use is checked against the bounds in the README.

mod abuse_support;
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use abuse_support::{
    THREAD_BOUND, Usage, assert_no_restarts, assert_up, quick_get, usage, wait_for_child,
};
use common::Tinyprom;

/// Starts tinyprom with its soft open-files limit set to `soft` (the hard limit is
/// left alone, as a container runtime would).
fn start_with_soft_nofile(args: &[&str], soft: u64) -> Tinyprom {
    let mut cmd = Tinyprom::command(args);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let mut limit = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
                limit.rlim_cur = soft.min(limit.rlim_max);
                libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
            }
            Ok(())
        });
    }
    Tinyprom::spawn(cmd)
}

/// The flood tests each load both cores; run one at a time so their latency
/// assertions measure tinyprom, not each other.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn own_soft_nofile() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct we pass.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    limit.rlim_cur
}

fn serving_usage(server: &Tinyprom) -> Usage {
    let pid = wait_for_child(server.child.id(), None, Duration::from_secs(2)).expect("child");
    usage(pid).expect("/proc readable")
}

#[test]
fn three_thousand_idle_connections_under_a_1024_fd_limit() {
    let _serial = serial();
    let server = start_with_soft_nofile(&[], 1024);
    let addr = server.addr;
    assert_up(addr, Duration::from_secs(1), "at start");
    // This test process needs a descriptor per idle connection too.
    let wanted = 3000.min(own_soft_nofile().saturating_sub(200) as usize);
    assert!(wanted >= 2000, "the test needs about 3,200 open files");
    let idle: Vec<TcpStream> = (0..wanted)
        .filter_map(|_| TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok())
        .collect();
    assert_eq!(
        idle.len(),
        wanted,
        "every connection is accepted by the kernel"
    );
    let held = Instant::now();
    let mut worst = Duration::ZERO;
    let mut peak = serving_usage(&server);
    // Held for 10 s; /up from a fresh connection every half second meanwhile.
    while held.elapsed() < Duration::from_secs(10) {
        let t0 = Instant::now();
        assert_eq!(
            quick_get(addr, "/up", Duration::from_secs(2)),
            Ok(200),
            "/up while {wanted} idle connections are held ({:?} in)",
            held.elapsed()
        );
        worst = worst.max(t0.elapsed());
        let u = serving_usage(&server);
        peak.threads = peak.threads.max(u.threads);
        peak.fds = peak.fds.max(u.fds);
        peak.rss_kb = peak.rss_kb.max(u.rss_kb);
        std::thread::sleep(Duration::from_millis(500));
    }
    drop(idle);
    assert_up(
        addr,
        Duration::from_secs(1),
        "after the idle connections close",
    );
    eprintln!("idle flood of {wanted}: worst /up {worst:?}, peak {peak:?}");
    assert!(peak.fds < 1024, "{peak:?}");
    assert_no_restarts(addr, "after the idle flood");
}

/// Sends a partial request, then one byte a second; returns when the server closes
/// the connection (or after `limit`), with the time that took.
fn slow_loris(addr: SocketAddr, stop: &AtomicBool, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut s = TcpStream::connect(addr).ok()?;
    s.write_all(b"GET /up HTTP/1.1\r\nHost: t\r\n").ok()?;
    s.set_read_timeout(Some(Duration::from_millis(1000))).ok()?;
    // Relaxed: a stop flag polled once a second.
    while start.elapsed() < limit && !stop.load(Ordering::Relaxed) {
        match s.read(&mut [0u8; 64]) {
            Ok(0) | Err(_) if start.elapsed() < Duration::from_millis(900) => return None,
            Ok(0) => return Some(start.elapsed()),
            Ok(_) => return Some(start.elapsed()),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return Some(start.elapsed()),
        }
        if s.write_all(b"X").is_err() {
            return Some(start.elapsed());
        }
    }
    None
}

#[test]
fn slow_loris_crowd_is_cut_off_and_resources_return_to_idle() {
    let _serial = serial();
    let server = Tinyprom::start(&["--web.read-timeout=3s"]);
    let addr = server.addr;
    assert_up(addr, Duration::from_secs(1), "at start");
    std::thread::sleep(Duration::from_millis(300));
    let idle = serving_usage(&server);
    let stop = Arc::new(AtomicBool::new(false));
    let loris: Vec<_> = (0..400)
        .map(|_| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || slow_loris(addr, &stop, Duration::from_secs(8)))
        })
        .collect();
    let start = Instant::now();
    let mut peak = idle;
    while start.elapsed() < Duration::from_secs(5) {
        assert_up(addr, Duration::from_secs(1), "during the slow-loris crowd");
        assert_eq!(
            quick_get(addr, "/metrics", Duration::from_secs(1)),
            Ok(200),
            "/metrics during the slow-loris crowd"
        );
        let u = serving_usage(&server);
        peak.threads = peak.threads.max(u.threads);
        peak.fds = peak.fds.max(u.fds);
        peak.rss_kb = peak.rss_kb.max(u.rss_kb);
        std::thread::sleep(Duration::from_millis(250));
    }
    stop.store(true, Ordering::Relaxed);
    let closed: Vec<Option<Duration>> = loris.into_iter().map(|h| h.join().unwrap()).collect();
    let cut = closed.iter().flatten().count();
    let latest = closed.iter().flatten().max().copied().unwrap_or_default();
    assert!(
        cut >= 390,
        "{cut} of 400 slow connections were closed by the server"
    );
    assert!(
        latest < Duration::from_millis(4500),
        "latest cut-off {latest:?}"
    );
    // tiny_http's idle connection threads linger for 5 s before they exit.
    let deadline = Instant::now() + Duration::from_secs(12);
    let mut after = serving_usage(&server);
    while Instant::now() < deadline && after.threads > THREAD_BOUND {
        std::thread::sleep(Duration::from_millis(250));
        after = serving_usage(&server);
    }
    eprintln!(
        "slow loris x400: idle {idle:?}, peak {peak:?}, after {after:?}, cut {cut} by {latest:?}"
    );
    assert!(
        after.threads <= THREAD_BOUND && peak.threads <= THREAD_BOUND + 4,
        "threads stay bounded (at most {THREAD_BOUND}, a few more while closed private \
         connections' threads linger): peak {peak:?}, after {after:?}"
    );
    assert!(
        after.fds <= idle.fds + 4,
        "fds back to idle: {after:?} vs {idle:?}"
    );
    assert!(
        after.rss_kb <= idle.rss_kb + 16 * 1024,
        "RSS back near idle: {after:?}"
    );
    assert_no_restarts(addr, "after the slow-loris crowd");
}

/// One keep-alive exchange on `s`: sends GET /up, reads the whole response.
fn exchange(s: &mut BufReader<TcpStream>) -> std::io::Result<()> {
    s.get_mut()
        .write_all(b"GET /up HTTP/1.1\r\nHost: t\r\n\r\n")?;
    let mut length = 0usize;
    let mut line = String::new();
    loop {
        line.clear();
        if s.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; length];
    s.read_exact(&mut body)
}

fn keep_alive(addr: SocketAddr, timeout: Duration) -> std::io::Result<BufReader<TcpStream>> {
    let s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    Ok(BufReader::new(s))
}

#[test]
fn bursts_of_keep_alive_connections_are_all_answered_within_3s() {
    let _serial = serial();
    let server = Tinyprom::start(&[]);
    let addr = server.addr;
    let mut kept = Vec::new();
    let mut slowest = Duration::ZERO;
    for burst in 0..5 {
        let barrier = Arc::new(Barrier::new(64));
        let clients: Vec<_> = (0..64)
            .map(|_| {
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    barrier.wait();
                    let t0 = Instant::now();
                    let mut conn = keep_alive(addr, Duration::from_secs(3))?;
                    exchange(&mut conn)?;
                    Ok::<_, std::io::Error>((t0.elapsed(), conn))
                })
            })
            .collect();
        for c in clients {
            let (took, conn) = c
                .join()
                .unwrap()
                .unwrap_or_else(|e| panic!("burst {burst}: a client got no answer in 3 s: {e}"));
            slowest = slowest.max(took);
            // Kept open and idle, as a pooling client would: the next bursts must be
            // served regardless.
            kept.push(conn);
        }
    }
    eprintln!("5 bursts of 64: slowest answer {slowest:?}");
    assert_no_restarts(addr, "after the bursts");
}

#[test]
fn sixty_four_keep_alive_clients_hammering_are_all_served() {
    let _serial = serial();
    let server = Tinyprom::start(&[]);
    let addr = server.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..64)
        .map(|_| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let (mut answered, mut reconnects, mut slowest) = (0u64, 0u64, Duration::ZERO);
                let mut conn = None;
                let start = Instant::now();
                // Relaxed: a stop flag; bounded by 10 s in any case.
                while !stop.load(Ordering::Relaxed) && start.elapsed() < Duration::from_secs(10) {
                    if conn.is_none() {
                        conn = keep_alive(addr, Duration::from_secs(3)).ok();
                    }
                    let Some(c) = conn.as_mut() else { continue };
                    let t0 = Instant::now();
                    match exchange(c) {
                        Ok(()) => {
                            answered += 1;
                            slowest = slowest.max(t0.elapsed());
                        }
                        // A kept-alive connection the server closed: reconnect and
                        // retry, as HTTP clients do.
                        Err(_) => {
                            reconnects += 1;
                            conn = None;
                        }
                    }
                }
                (answered, reconnects, slowest)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(5));
    stop.store(true, Ordering::Relaxed);
    let results: Vec<(u64, u64, Duration)> =
        clients.into_iter().map(|c| c.join().unwrap()).collect();
    let total: u64 = results.iter().map(|r| r.0).sum();
    let reconnects: u64 = results.iter().map(|r| r.1).sum();
    let slowest = results.iter().map(|r| r.2).max().unwrap_or_default();
    let least = results.iter().map(|r| r.0).min().unwrap_or(0);
    eprintln!(
        "64 keep-alive clients for 5 s: {total} answers, fewest {least}, slowest {slowest:?}, {reconnects} reconnects"
    );
    assert!(least > 0, "every client was served: {results:?}");
    assert!(
        slowest < Duration::from_secs(3),
        "slowest answer {slowest:?}"
    );
    assert_up(addr, Duration::from_secs(1), "after the crowd");
    assert_no_restarts(addr, "after the crowd");
}
