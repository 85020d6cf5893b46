//! The binary as an operator meets it: help, version, configuration mistakes, signals.

mod common;

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Tinyprom, request};

fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tinyprom"));
    cmd.args(args).stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_and_version() {
    let (code, out, err) = run(&["--help"], &[]);
    assert_eq!(code, 0);
    assert!(out.contains("--web.listen-address") && out.contains("TINYPROM_WEB_MAX_WORKERS"));
    assert!(err.is_empty());
    let (code, out, _) = run(&["-h"], &[]);
    assert_eq!(code, 0);
    assert!(out.starts_with("tinyprom"));
    let (code, out, _) = run(&["--version"], &[]);
    assert_eq!(code, 0);
    assert_eq!(
        out.trim(),
        format!("tinyprom {}", env!("CARGO_PKG_VERSION"))
    );
}

/// Arguments, environment, and a phrase the error must contain.
type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);

#[test]
fn usage_errors_exit_2_with_one_clear_line() {
    let cases: &[Case] = &[
        (&["--frobnicate"], &[], "unknown flag --frobnicate"),
        (
            &["--web.listen-address=not-an-address"],
            &[],
            "--web.listen-address",
        ),
        (&["--web.max-workers=0"], &[], "--web.max-workers"),
        (
            &[],
            &[("TINYPROM_WEB_LISTEN_ADDRESS", "127.0.0.1:notaport")],
            "TINYPROM_WEB_LISTEN_ADDRESS",
        ),
    ];
    for (args, env, needle) in cases {
        let (code, out, err) = run(args, env);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(out.is_empty());
        assert_eq!(err.lines().count(), 1, "one line: {err:?}");
        assert!(
            err.starts_with("tinyprom: ") && err.contains(needle),
            "{err}"
        );
        assert!(!err.contains("panicked") && !err.contains("RUST_BACKTRACE"));
    }
}

#[test]
fn runtime_errors_exit_1_with_one_clear_line() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, _, err) = run(&[&format!("--web.listen-address={addr}")], &[]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(err.lines().count(), 1, "{err:?}");
    assert!(err.contains(&addr) && err.contains("in use"), "{err}");

    // An address that is not on this machine (TEST-NET-1, RFC 5737).
    let (code, _, err) = run(&["--web.listen-address=192.0.2.1:8000"], &[]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(err.lines().count(), 1, "{err:?}");
    assert!(err.contains("192.0.2.1:8000"), "{err}");
}

#[test]
fn start_up_line_names_address_and_workers() {
    let server = Tinyprom::start(&["--web.max-workers=3"]);
    let text = server.stderr_text();
    assert!(
        text.contains(&format!("listening on http://{}", server.addr)),
        "{text}"
    );
    assert!(text.contains("3 workers"), "{text}");
}

#[test]
fn sigterm_and_sigint_exit_zero_promptly() {
    for signal in [libc::SIGTERM, libc::SIGINT] {
        let mut server = Tinyprom::start(&[]);
        assert_eq!(server.get("/up").status, 200);
        let (status, took) = server
            .signal_and_wait(signal, Duration::from_secs(5))
            .expect("exits within 5 s");
        assert_eq!(status.code(), Some(0), "signal {signal}");
        assert!(took < Duration::from_secs(1), "took {took:?}");
        // The port is closed: new connections are refused.
        assert!(std::net::TcpStream::connect(server.addr).is_err());
    }
}

#[test]
fn sigterm_lets_in_flight_synthetic_requests_finish() {
    let mut server = Tinyprom::start(&[]);
    let addr = server.addr;
    let clients: Vec<_> = (0..16)
        .map(|_| std::thread::spawn(move || request(addr, "GET", "/synthetic", &[]).status))
        .collect();
    // Let the requests reach the server and park (they take 1-50 ms).
    std::thread::sleep(Duration::from_millis(5));
    let (status, took) = server
        .signal_and_wait(libc::SIGTERM, Duration::from_secs(5))
        .expect("exits");
    assert_eq!(status.code(), Some(0));
    assert!(took < Duration::from_secs(1), "took {took:?}");
    for c in clients {
        let code = c.join().unwrap();
        assert!([200, 400, 401, 500, 503].contains(&code), "{code}");
    }
}

#[test]
fn health_check_reports_the_server_state() {
    let server = Tinyprom::start(&[]);
    let addr = format!("--web.listen-address={}", server.addr);
    let (code, _, err) = run(&["--health-check", &addr], &[]);
    assert_eq!(code, 0, "{err}");
    // Through the environment, with the all-interfaces address (reached via loopback).
    let any = format!("0.0.0.0:{}", server.addr.port());
    let (code, _, err) = run(
        &["--health-check"],
        &[("TINYPROM_WEB_LISTEN_ADDRESS", &any)],
    );
    assert_eq!(code, 0, "{err}");
    drop(server);
    let free = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (code, _, err) = run(
        &["--health-check", &format!("--web.listen-address={free}")],
        &[],
    );
    assert_eq!(code, 1);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("health check failed"), "{err}");
}
