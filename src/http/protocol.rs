//! The private protocol between the gate and tiny_http's workers: what the gate adds
//! to a request it passes on (the [`encode`] half, which only the gate uses) and what
//! a worker reads back from it (the [`decode`] half, which only the workers use).
//!
//! Three header names carry it. The gate drops any copy a client sends of any of them
//! (see `gate::head`), so a worker can trust what it reads:
//! * the client's address ([`PEER_HEADER`]), since tiny_http sees only the private
//!   socket; only on requests for an embedder's route, the only handlers that read
//!   it;
//! * the moment the gate had the head ([`RECEIVED_HEADER`], on the monotonic clock),
//!   so a request held by the gate is timed from its receipt;
//! * the probe mark ([`PROBE_HEADER`]) of the first request on every new lane, which a
//!   worker answers with an empty 200 and counts nowhere: its answer tells the gate
//!   that tiny_http's thread for the lane is running.

/// The header with the client's address.
pub const PEER_HEADER: &str = "tinyprom-peer";
/// The header with the receipt time, in microseconds of [`monotonic_micros`].
pub const RECEIVED_HEADER: &str = "tinyprom-received";
/// The header that marks the gate's probe of a new lane.
pub const PROBE_HEADER: &str = "tinyprom-probe";

/// The monotonic clock (`CLOCK_MONOTONIC`, as `Instant` reads it on Linux) in
/// microseconds, comparable across threads of the process.
pub fn monotonic_micros() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}

/// The gate's half: writing the protocol into a request for tiny_http.
pub mod encode {
    use std::io::Write;
    use std::net::SocketAddr;

    use super::{PEER_HEADER, PROBE_HEADER, RECEIVED_HEADER};

    /// The first request on every new lane (see the module documentation).
    pub const PROBE: &[u8] =
        b"OPTIONS * HTTP/1.0\r\nConnection: keep-alive\r\ntinyprom-probe: 1\r\n\r\n";

    /// Whether a client's header `name` is one of the protocol's (and must be
    /// dropped).
    pub fn reserved(name: &str) -> bool {
        [PEER_HEADER, RECEIVED_HEADER, PROBE_HEADER]
            .iter()
            .any(|h| name.eq_ignore_ascii_case(h))
    }

    /// Appends the peer header for a client at `peer`.
    pub fn peer(out: &mut Vec<u8>, peer: SocketAddr) {
        // Writing into a Vec cannot fail.
        let _ = write!(out, "{PEER_HEADER}: {peer}\r\n");
    }

    /// Appends the receipt-time header (`received` from [`super::monotonic_micros`]).
    pub fn received(out: &mut Vec<u8>, received: u64) {
        let _ = write!(out, "{RECEIVED_HEADER}: {received}\r\n");
    }
}

/// The workers' half: reading the protocol from a request tiny_http parsed.
pub mod decode {
    use std::time::{Duration, Instant};

    use super::{PEER_HEADER, PROBE_HEADER, RECEIVED_HEADER, monotonic_micros};

    fn header<'r>(request: &'r tiny_http::Request, name: &'static str) -> Option<&'r str> {
        request
            .headers()
            .iter()
            .find(|h| h.field.equiv(name))
            .map(|h| h.value.as_str())
    }

    /// Whether `request` is the gate's probe of a new lane (the URL is compared
    /// first: one comparison on every request, the header scan only for `*`).
    pub fn is_probe(request: &tiny_http::Request) -> bool {
        request.url() == "*" && header(request, PROBE_HEADER).is_some()
    }

    /// When the gate had the request's head; now if unknown.
    pub fn received_at(request: &tiny_http::Request) -> Instant {
        let now = Instant::now();
        header(request, RECEIVED_HEADER)
            .and_then(|v| v.parse::<u64>().ok())
            .and_then(|at| {
                now.checked_sub(Duration::from_micros(monotonic_micros().saturating_sub(at)))
            })
            .unwrap_or(now)
    }

    /// The client's address as the gate saw it.
    pub fn peer(request: &tiny_http::Request) -> Option<std::net::SocketAddr> {
        header(request, PEER_HEADER).and_then(|v| v.parse().ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_writes_what_a_worker_reads() {
        let mut head = b"GET /up HTTP/1.0\r\n".to_vec();
        encode::peer(&mut head, "192.0.2.1:4242".parse().unwrap());
        encode::received(&mut head, monotonic_micros());
        head.extend_from_slice(b"\r\n");
        let text = String::from_utf8(head).unwrap();
        assert!(text.contains("tinyprom-peer: 192.0.2.1:4242\r\n"));
        assert!(text.contains("tinyprom-received: "));
        assert!(encode::reserved("Tinyprom-Probe") && !encode::reserved("Host"));
        assert!(
            std::str::from_utf8(encode::PROBE)
                .unwrap()
                .contains(PROBE_HEADER)
        );
    }
}
