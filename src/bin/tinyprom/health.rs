//! `tinyprom --health-check`: the container HEALTHCHECK without curl.
//!
//! A `FROM scratch` image has no shell and no HTTP client, so the binary checks itself:
//! it sends `GET /up` to the configured address (an unspecified address such as
//! `0.0.0.0` is reached through loopback) and reports success only for a 200.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

/// The address to connect to for a server listening on `addr`: an unspecified address
/// (`0.0.0.0`, `::`) is reached through loopback of the same family.
pub fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port())
        }
        _ => addr,
    }
}

/// Checks `GET /up` on `addr` within `timeout`; `Err` says what went wrong.
pub fn check(addr: SocketAddr, timeout: Duration) -> Result<(), String> {
    let target = reachable(addr);
    let fail = |what: &str, e: std::io::Error| format!("{what} {target}: {e}");
    let mut stream =
        TcpStream::connect_timeout(&target, timeout).map_err(|e| fail("cannot connect to", e))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| fail("socket option on", e))?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(|e| fail("socket option on", e))?;
    let request = format!("GET /up HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| fail("cannot send to", e))?;
    let mut head = [0u8; 64];
    let mut len = 0;
    while len < 12 {
        match stream.read(&mut head[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) => return Err(fail("no answer from", e)),
        }
    }
    let status = std::str::from_utf8(&head[..len]).unwrap_or("");
    if status.starts_with("HTTP/1.1 200") || status.starts_with("HTTP/1.0 200") {
        Ok(())
    } else {
        Err(format!(
            "{target}/up answered {:?}",
            status.lines().next().unwrap_or("")
        ))
    }
}
