//! The watchdog: decides when the serving process is beyond repair and must be
//! replaced (crash-only: the supervisor restarts it in milliseconds).
//!
//! Checked every [`INTERVAL`], and at once after a panic on a thread tinyprom does not
//! own (that is how `tiny_http`'s accept thread dies at the file descriptor limit):
//!
//! * a **self-probe**: a fresh loopback connection sends a blank line, which
//!   `tiny_http` answers with a 400 by itself. An answer proves the accept loop and the
//!   connection threads work; [`PROBE_FAILURES`] failures in a row mean they do not.
//! * **wedged connections** (`guard`'s zombies) above [`MAX_ZOMBIES`]: each
//!   holds a thread and two descriptors that only a new process gets back.
//! * **workers stuck**: every worker busy on one request for longer than
//!   [`STUCK_AFTER`].
//! * **memory**: resident memory above [`MAX_RSS_BYTES`].
//!
//! The accept loop reporting an error is handled by the server directly.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How often the watchdog checks.
pub const INTERVAL: Duration = Duration::from_secs(1);
/// How long a self-probe may take.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Failed self-probes in a row that condemn the process.
pub const PROBE_FAILURES: u32 = 3;
/// Wedged connections tolerated.
pub const MAX_ZOMBIES: usize = 64;
/// How long every worker may be busy on one request at once.
pub const STUCK_AFTER: Duration = Duration::from_secs(30);
/// Resident memory tolerated.
pub const MAX_RSS_BYTES: u64 = 512 * 1024 * 1024;

/// Panics seen on threads tinyprom did not name (`tiny_http`'s).
static FOREIGN_PANICS: AtomicU64 = AtomicU64::new(0);

/// Installs a panic hook that counts panics on threads tinyprom does not own (all of
/// its own threads are named `tinyprom-*` or `main`) before the default report.
pub fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let current = std::thread::current();
        let ours = current
            .name()
            .is_some_and(|n| n.starts_with("tinyprom") || n == "main");
        if !ours {
            // Relaxed: a counter compared for change by the watchdog.
            FOREIGN_PANICS.fetch_add(1, Ordering::Relaxed);
        }
        previous(info);
    }));
}

/// What the watchdog reads about the server at each check.
pub struct Readings {
    /// Wedged connections.
    pub zombies: usize,
    /// How long each worker has been on its current request (`None` when idle).
    pub busy_for: Vec<Option<Duration>>,
}

/// The watchdog's memory between checks.
pub struct Watchdog {
    target: SocketAddr,
    failures: u32,
    panics_seen: u64,
    last_check: Option<Instant>,
}

impl Watchdog {
    /// A watchdog probing the server listening on `addr` (an unspecified address is
    /// reached through loopback).
    pub fn new(addr: SocketAddr) -> Watchdog {
        let target = crate::health::reachable(addr);
        Watchdog {
            target,
            failures: 0,
            // Relaxed: see FOREIGN_PANICS.
            panics_seen: FOREIGN_PANICS.load(Ordering::Relaxed),
            last_check: None,
        }
    }

    /// True when a check is due: the interval has passed or a foreign thread panicked.
    pub fn due(&self, now: Instant) -> bool {
        // Relaxed: see FOREIGN_PANICS.
        let panics = FOREIGN_PANICS.load(Ordering::Relaxed);
        panics != self.panics_seen || self.last_check.is_none_or(|t| now - t >= INTERVAL)
    }

    /// Runs the checks; `Some(cause)` when the process should be replaced.
    pub fn check(&mut self, readings: &Readings) -> Option<String> {
        self.last_check = Some(Instant::now());
        // Relaxed: see FOREIGN_PANICS.
        let panics = FOREIGN_PANICS.load(Ordering::Relaxed);
        let after_panic = panics != self.panics_seen;
        self.panics_seen = panics;
        match probe(self.target) {
            Ok(()) => self.failures = 0,
            Err(e) => {
                self.failures += 1;
                if self.failures >= PROBE_FAILURES || after_panic {
                    return Some(format!(
                        "self-probe failed {} time(s){}: {e}",
                        self.failures,
                        if after_panic {
                            " after a panic in a tiny_http thread"
                        } else {
                            ""
                        }
                    ));
                }
            }
        }
        if readings.zombies > MAX_ZOMBIES {
            return Some(format!(
                "{} connections are wedged inside tiny_http (limit {MAX_ZOMBIES})",
                readings.zombies
            ));
        }
        let stuck = readings
            .busy_for
            .iter()
            .all(|b| b.is_some_and(|d| d >= STUCK_AFTER));
        if stuck && !readings.busy_for.is_empty() {
            return Some(format!(
                "all {} workers stuck on a request for over {}s",
                readings.busy_for.len(),
                STUCK_AFTER.as_secs()
            ));
        }
        resident_bytes()
            .filter(|&rss| rss > MAX_RSS_BYTES)
            .map(|rss| {
                format!(
                    "resident memory {} MiB over the {} MiB limit",
                    rss >> 20,
                    MAX_RSS_BYTES >> 20
                )
            })
    }
}

/// Sends a blank line on a fresh connection and waits for `tiny_http`'s answer.
pub fn probe(target: SocketAddr) -> std::io::Result<()> {
    let mut stream = TcpStream::connect_timeout(&target, PROBE_TIMEOUT)?;
    stream.set_read_timeout(Some(PROBE_TIMEOUT))?;
    stream.set_write_timeout(Some(PROBE_TIMEOUT))?;
    stream.write_all(b"\r\n")?;
    let mut byte = [0u8; 1];
    match stream.read(&mut byte)? {
        0 => Err(std::io::Error::other("closed without an answer")),
        _ => Ok(()),
    }
}

/// Resident memory from `/proc/self/statm`, when readable.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf only reads a configuration value.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    (page > 0).then(|| pages * page as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn idle(n: usize) -> Readings {
        Readings {
            zombies: 0,
            busy_for: vec![None; n],
        }
    }

    #[test]
    fn a_dead_listener_fails_the_probe_and_condemns_after_repeats() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let mut dog = Watchdog::new(addr);
        assert!(dog.due(Instant::now()));
        assert_eq!(dog.check(&idle(2)), None, "one failure is tolerated");
        assert_eq!(dog.check(&idle(2)), None);
        let cause = dog.check(&idle(2)).expect("third failure condemns");
        assert!(cause.contains("self-probe failed 3"), "{cause}");
    }

    #[test]
    fn zombies_and_stuck_workers_condemn() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let answer = std::thread::spawn(move || {
            for _ in 0..3 {
                let (mut s, _) = listener.accept().unwrap();
                let mut line = [0u8; 2];
                s.read_exact(&mut line).unwrap();
                s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").unwrap();
            }
        });
        let mut dog = Watchdog::new(addr);
        let zombies = Readings {
            zombies: MAX_ZOMBIES + 1,
            busy_for: vec![None],
        };
        assert!(dog.check(&zombies).unwrap().contains("wedged"));
        let stuck = Readings {
            zombies: 0,
            busy_for: vec![Some(STUCK_AFTER); 2],
        };
        assert!(dog.check(&stuck).unwrap().contains("stuck"));
        let one_free = Readings {
            zombies: 0,
            busy_for: vec![Some(STUCK_AFTER), None],
        };
        assert_eq!(dog.check(&one_free), None);
        answer.join().unwrap();
        assert!(!dog.due(Instant::now()), "just checked");
    }
}
