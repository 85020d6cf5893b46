//! The public listening socket's options, chosen so the kernel absorbs what it can of
//! an attack before the gate sees it.
//!
//! * A backlog of [`BACKLOG`]: a burst of connections, or a restart of the serving
//!   process, waits in the kernel instead of being refused.
//! * `TCP_DEFER_ACCEPT` for the read timeout: a connection is handed to `accept()` only
//!   once it has sent data. A client that connects and says nothing never costs a file
//!   descriptor; the kernel drops it after the timeout.
//! * `TCP_NODELAY`: accepted sockets inherit it. The gate writes each response in one
//!   `send`, but a pipelined batch of responses must not wait for a delayed ACK.
//!
//! All of it is best effort: where an option is missing the server still runs.

use std::io;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::time::Duration;

/// The listen backlog asked for (the kernel caps it at `net.core.somaxconn`).
pub const BACKLOG: libc::c_int = 4096;

/// The gate's write deadline for a read timeout: short, since a healthy client drains a
/// few kilobytes of response in milliseconds.
pub fn write_timeout(read_timeout: Duration) -> Duration {
    read_timeout.min(Duration::from_secs(2))
}

/// Applies the options above to a bound listener.
pub fn tune(listener: &TcpListener, read_timeout: Duration) -> io::Result<()> {
    let fd = listener.as_raw_fd();
    // SAFETY: listen(2) on a socket we own; calling it again only changes the backlog.
    if unsafe { libc::listen(fd, BACKLOG) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let defer = read_timeout.as_secs().clamp(1, 3600) as libc::c_int;
    // Best effort: not every platform has TCP_DEFER_ACCEPT.
    let _ = set_option(fd, libc::IPPROTO_TCP, libc::TCP_DEFER_ACCEPT, &defer);
    let on: libc::c_int = 1;
    let _ = set_option(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, &on);
    Ok(())
}

fn set_option<T>(
    fd: libc::c_int,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    // SAFETY: value points to a live T and the length passed is its size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The most client connections `fd_limit` open files can hold: one descriptor per
/// client, three per request inside tiny_http (the gate's end, tiny_http's end and its
/// duplicate), and a few of the process's own.
pub fn connections_within(fd_limit: u64, lanes: usize) -> usize {
    fd_limit.saturating_sub(64 + 3 * lanes as u64).max(16) as usize
}

/// The soft limit on open files, if it can be read.
pub fn fd_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct we pass.
    (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0).then_some(limit.rlim_cur)
}

/// Raises the soft limit on open files to the hard limit, so the gate's connection
/// bound rather than `EMFILE` is what limits connections. Returns the soft limit now
/// in force.
pub fn raise_fd_limit() -> io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return Err(io::Error::last_os_error());
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit.rlim_cur = limit.rlim_max;
            }
        }
    }
    Ok(limit.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tuning_a_loopback_listener_works_and_keeps_it_listening() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        tune(&listener, Duration::from_secs(10)).unwrap();
        let addr = listener.local_addr().unwrap();
        let _client = std::net::TcpStream::connect(addr).unwrap();
        assert_eq!(
            write_timeout(Duration::from_secs(10)),
            Duration::from_secs(2)
        );
        assert_eq!(
            write_timeout(Duration::from_millis(300)),
            Duration::from_millis(300)
        );
    }

    #[test]
    fn connection_bound_fits_the_fd_limit() {
        assert_eq!(connections_within(1024, 128), 576);
        assert_eq!(connections_within(10, 128), 16);
        assert!(fd_limit().is_some_and(|n| n > 0));
    }
}
