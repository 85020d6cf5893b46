//! Crash-only recovery and shutdown with the supervised process model: a serving
//! process that dies is replaced on the same socket within 100 ms, no connection is
//! refused meanwhile, each restart is counted and logged with its cause, and SIGTERM
//! under load still ends in a clean exit 0.

mod abuse_support;
mod common;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use abuse_support::{assert_up, child_pid, quick_get, wait_for_child};
use common::Tinyprom;

/// One test at a time: the wrk load of one would distort the timings of another.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// One client request: when it started and ended, and its outcome.
type Outcome = (Instant, Instant, Result<u16, String>);

#[test]
fn a_dead_serving_process_is_replaced_fast_and_no_connection_is_refused() {
    let _serial = serial();
    // A shell without job control starts background commands with SIGQUIT (and
    // SIGINT) ignored, and an ignored signal stays ignored in every process started
    // from there: run that way, the serving process would not die of the SIGQUIT
    // below. The default again, for this process and the server it starts.
    // SAFETY: signal(2) with a constant disposition, no handler.
    unsafe { libc::signal(libc::SIGQUIT, libc::SIG_DFL) };
    let server = Tinyprom::start(&[]);
    let parent = server.child.id();
    let addr = server.addr;
    let mut pid = wait_for_child(parent, None, Duration::from_secs(5)).expect("serving child");
    assert_up(addr, Duration::from_secs(1), "at start");
    let mut gaps = Vec::new();
    for signal in [libc::SIGKILL, libc::SIGABRT, libc::SIGQUIT] {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let client = std::thread::spawn(move || {
            let mut outcomes: Vec<Outcome> = Vec::new();
            let start = Instant::now();
            // Bounded: the flag or 10 s, whichever comes first.
            while !flag.load(Ordering::Relaxed) && start.elapsed() < Duration::from_secs(10) {
                let t0 = Instant::now();
                let r = quick_get(addr, "/up", Duration::from_secs(2));
                outcomes.push((t0, Instant::now(), r));
            }
            outcomes
        });
        std::thread::sleep(Duration::from_millis(100));
        let killed_at = Instant::now();
        // SAFETY: kill(2) on the serving child of the server this test started.
        unsafe { libc::kill(pid as i32, signal) };
        let next = wait_for_child(parent, Some(pid), Duration::from_secs(2)).unwrap_or_else(|| {
            panic!(
                "signal {signal}: no new serving process: {}",
                server.stderr_text()
            )
        });
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, Ordering::Relaxed);
        let outcomes = client.join().unwrap();
        for (_, _, r) in &outcomes {
            if let Err(e) = r {
                assert!(!e.starts_with("connect"), "signal {signal}: refused: {e}");
            }
        }
        let answered = outcomes
            .iter()
            .filter(|(t0, _, r)| *t0 >= killed_at && r == &Ok(200))
            .map(|(_, end, _)| end.duration_since(killed_at))
            .min()
            .expect("answers after the kill");
        gaps.push(answered);
        assert!(
            answered < Duration::from_millis(100),
            "signal {signal}: first answer {answered:?} after the kill"
        );
        pid = next;
    }
    eprintln!("restart gaps (kill to first answer): {gaps:?}");
    let metrics = quick_metrics(addr);
    assert!(
        metrics.contains("tinyprom_restarts_total 3"),
        "restart counter: {}",
        metrics
            .lines()
            .filter(|l| l.contains("restarts"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let log = server.stderr_text();
    for cause in [
        "killed by SIGKILL",
        "killed by SIGABRT",
        "killed by SIGQUIT",
    ] {
        assert!(log.contains(cause), "log names {cause}: {log}");
    }
    assert_eq!(log.matches("listening on").count(), 1, "one start-up line");
}

fn quick_metrics(addr: std::net::SocketAddr) -> String {
    common::request(addr, "GET", "/metrics", &[]).text()
}

#[test]
fn sigterm_under_wrk_load_exits_zero_within_the_grace_period() {
    let _serial = serial();
    let mut server = Tinyprom::start(&["--web.shutdown-timeout=2s"]);
    let parent = server.child.id();
    let child = wait_for_child(parent, None, Duration::from_secs(5)).expect("serving child");
    let url = format!("http://{}/synthetic", server.addr);
    let wrk = Command::new("wrk")
        .args(["-t2", "-c32", "-d3s", &url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wrk (run `make deps`)");
    std::thread::sleep(Duration::from_millis(1200));
    let (status, took) = server
        .signal_and_wait(libc::SIGTERM, Duration::from_secs(5))
        .expect("exits");
    assert_eq!(status.code(), Some(0), "{}", server.stderr_text());
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert!(server.stderr_text().contains("shut down cleanly"));
    assert!(
        !std::path::Path::new(&format!("/proc/{child}")).exists() || child_pid(parent).is_none(),
        "the serving process is gone too"
    );
    let out = wrk.wait_with_output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("requests in"), "wrk ran: {report}");
}

#[test]
fn no_supervisor_runs_in_process() {
    let _serial = serial();
    let mut server = Tinyprom::start(&["--no-supervisor"]);
    assert_eq!(child_pid(server.child.id()), None, "no serving child");
    assert_up(server.addr, Duration::from_secs(1), "in-process");
    let (status, _) = server
        .signal_and_wait(libc::SIGTERM, Duration::from_secs(5))
        .expect("exits");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn sigterm_sent_to_the_serving_process_itself_ends_tinyprom_cleanly() {
    let _serial = serial();
    let mut server = Tinyprom::start(&[]);
    let parent = server.child.id();
    let child = wait_for_child(parent, None, Duration::from_secs(5)).expect("serving child");
    // SAFETY: kill(2) on the serving child of the server this test started.
    unsafe { libc::kill(child as i32, libc::SIGTERM) };
    let status = common::wait_for_exit(&mut server.child, Duration::from_secs(5)).expect("exits");
    assert_eq!(status.code(), Some(0), "{}", server.stderr_text());
    assert!(
        std::net::TcpStream::connect(server.addr).is_err(),
        "port closed"
    );
}
