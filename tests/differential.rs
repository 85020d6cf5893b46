//! The differential framing test: scripts/differential.py sends its corpus of
//! malformed and smuggling streams to the real binary and checks that the gate refuses
//! whatever both llhttp (`httptools`) and `h11` refuse. `make deps` installs both.

mod abuse_support;
mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use abuse_support::{assert_no_restarts, assert_up};
use common::Tinyprom;

#[test]
fn the_gate_refuses_whatever_llhttp_and_h11_both_refuse() {
    let server = Tinyprom::start(&[]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/differential.py");
    let mut child = Command::new("python3")
        .args([script, &server.addr.to_string(), "--limit", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the differential test ran over 90 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().expect("output");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    println!("{stdout}");
    assert!(
        status.success(),
        "{stdout}\n{stderr}\n(h11 and httptools missing? make deps installs them)"
    );
    assert!(stdout.contains("refused by both"), "{stdout}");
    assert_up(server.addr, Duration::from_secs(2), "after the corpus");
    assert_no_restarts(server.addr, "after the corpus");
}
