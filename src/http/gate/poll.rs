//! A thin, safe wrapper over Linux `epoll`: the one readiness API the gate needs.
//!
//! Client sockets are level-triggered: one that still has bytes (or room) keeps being
//! reported, so the loop never has to drain a client to stay correct, and interest is
//! changed only when a connection's wants change. Private connections to tiny_http are
//! edge-triggered ([`EDGE`]) and registered once for their whole life: the gate reads
//! them until a short read or `EAGAIN` (later bytes raise a new edge), and a pooled
//! connection needs no system call to be reused.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

/// Readable (or a pending accept, or end of stream).
pub const READ: u32 = libc::EPOLLIN as u32;
/// Writable.
pub const WRITE: u32 = libc::EPOLLOUT as u32;
/// Edge-triggered: reported once per change, so the reader must drain to `EAGAIN`.
pub const EDGE: u32 = libc::EPOLLET as u32;

/// One readiness report: the token given at registration and what is ready.
#[derive(Clone, Copy)]
pub struct Event {
    /// The token of the descriptor.
    pub token: u64,
    /// `READ`, `WRITE`, or an error/hang-up (reported as readable so the read sees it).
    pub ready: u32,
}

/// An epoll instance; closed on drop.
pub struct Poller {
    fd: RawFd,
    buf: Vec<libc::epoll_event>,
    /// `epoll_pwait2` is available (until a call says otherwise).
    precise: bool,
}

impl Poller {
    /// A new epoll instance reporting at most `batch` events per wait.
    pub fn new(batch: usize) -> io::Result<Poller> {
        // SAFETY: epoll_create1 has no memory arguments.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Poller {
            fd,
            buf: vec![libc::epoll_event { events: 0, u64: 0 }; batch.max(1)],
            precise: true,
        })
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, token: u64, interest: u32) -> io::Result<()> {
        let mut event = libc::epoll_event {
            events: interest,
            u64: token,
        };
        // SAFETY: `event` is a live epoll_event for the duration of the call.
        if unsafe { libc::epoll_ctl(self.fd, op, fd, &mut event) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Starts watching `fd` for `interest` under `token`.
    pub fn add(&self, fd: RawFd, token: u64, interest: u32) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, token, interest)
    }

    /// Changes what `fd` is watched for.
    pub fn modify(&self, fd: RawFd, token: u64, interest: u32) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, token, interest)
    }

    /// Stops watching `fd` (closing it does too; this is for descriptors kept open).
    pub fn remove(&self, fd: RawFd) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_DEL, fd, 0, 0)
    }

    /// Waits up to `timeout` and appends what is ready to `out` (cleared first).
    ///
    /// The timeout is kept to the nanosecond (`epoll_pwait2`, Linux 5.11 and later):
    /// `epoll_wait` takes whole milliseconds, and truncating a held request's sub-
    /// millisecond wait to 0 turned the loop into a spin that burned a CPU under
    /// `/synthetic` load. Where the kernel lacks `epoll_pwait2`, `epoll_wait` is used
    /// with the timeout rounded up (a wake-up at most a millisecond late, never a spin).
    pub fn wait(&mut self, timeout: Duration, out: &mut Vec<Event>) -> io::Result<()> {
        out.clear();
        let len = self.buf.len() as libc::c_int;
        let mut n = -1;
        if self.precise {
            let ts = libc::timespec {
                tv_sec: timeout.as_secs().min(i32::MAX as u64) as libc::time_t,
                tv_nsec: timeout.subsec_nanos() as libc::c_long,
            };
            // SAFETY: the buffer holds `len` initialised epoll_events the kernel may
            // overwrite; `ts` lives across the call; a null sigmask leaves it unchanged.
            n = unsafe {
                libc::epoll_pwait2(self.fd, self.buf.as_mut_ptr(), len, &ts, std::ptr::null())
            };
            if n < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS) {
                self.precise = false;
            }
        }
        if !self.precise {
            let ms = timeout.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as libc::c_int;
            // SAFETY: the buffer holds `len` initialised epoll_events the kernel may overwrite.
            n = unsafe { libc::epoll_wait(self.fd, self.buf.as_mut_ptr(), len, ms) };
        }
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(())
            } else {
                Err(e)
            };
        }
        let hangup = (libc::EPOLLERR | libc::EPOLLHUP) as u32;
        out.extend(self.buf[..n as usize].iter().map(|e| {
            let ready = e.events;
            Event {
                token: e.u64,
                ready: if ready & hangup != 0 {
                    ready | READ
                } else {
                    ready
                },
            }
        }));
        Ok(())
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        // SAFETY: closing the epoll descriptor this value owns.
        unsafe { libc::close(self.fd) };
    }
}

/// Sends without raising SIGPIPE (an embedder may not ignore it); the count written.
pub fn send(fd: RawFd, bytes: &[u8]) -> io::Result<usize> {
    // SAFETY: the pointer and length describe the live slice `bytes`.
    let n = unsafe { libc::send(fd, bytes.as_ptr().cast(), bytes.len(), libc::MSG_NOSIGNAL) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// Sends `pieces` in order with one system call (`sendmsg`, no SIGPIPE); the count
/// written, which may end inside any piece.
pub fn send_pieces(fd: RawFd, pieces: &[&[u8]]) -> io::Result<usize> {
    const MAX: usize = 16;
    let mut iov = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; MAX];
    let count = pieces.len().min(MAX);
    for (v, piece) in iov.iter_mut().zip(&pieces[..count]) {
        v.iov_base = piece.as_ptr() as *mut libc::c_void;
        v.iov_len = piece.len();
    }
    // SAFETY: zeroed msghdr is valid (no name, no control data).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.as_mut_ptr();
    msg.msg_iovlen = count as _;
    // SAFETY: `msg` points at `count` iovecs describing live slices, which sendmsg
    // only reads.
    let n = unsafe { libc::sendmsg(fd, &msg, libc::MSG_NOSIGNAL) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn reports_readiness_by_token() {
        let (mut a, b) = UnixStream::pair().unwrap();
        let mut poller = Poller::new(8).unwrap();
        poller.add(b.as_raw_fd(), 7, READ).unwrap();
        let mut events = Vec::new();
        poller.wait(Duration::from_millis(1), &mut events).unwrap();
        assert!(events.is_empty());
        a.write_all(b"x").unwrap();
        poller.wait(Duration::from_secs(1), &mut events).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].token, 7);
        assert!(events[0].ready & READ != 0);
        poller.modify(b.as_raw_fd(), 7, WRITE).unwrap();
        poller.wait(Duration::from_secs(1), &mut events).unwrap();
        assert!(events[0].ready & WRITE != 0);
        poller.remove(b.as_raw_fd()).unwrap();
        assert_eq!(send(b.as_raw_fd(), b"y").unwrap(), 1);
        assert_eq!(send_pieces(b.as_raw_fd(), &[b"ab", b"", b"c"]).unwrap(), 3);
        let mut got = [0u8; 4];
        std::io::Read::read_exact(&mut a, &mut got).unwrap();
        assert_eq!(&got, b"yabc");
    }
}
