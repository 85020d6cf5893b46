//! The private socket between the gate and tiny_http.
//!
//! tiny_http serves a `UnixListener` that only the gate connects to. It is bound in a
//! fresh directory only this user can enter (mode 0700, under `$TMPDIR` or `/tmp`),
//! so no other local user can reach tiny_http or forge the gate's peer header. Where no
//! directory is writable (a `FROM scratch` image running as `nobody` has none), it
//! falls back to a randomly named socket in the abstract namespace, reachable only
//! from the same network namespace: in a container, that is the container itself.
//!
//! The gate connects without blocking (`SOCK_NONBLOCK` before `connect`): a full
//! accept backlog is `EAGAIN`, and the request waits in the gate for the next try.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener};
use std::path::PathBuf;

/// The private listener's address, as the kernel reports it (path or abstract name).
pub struct Upstream {
    addr: libc::sockaddr_un,
    len: libc::socklen_t,
    /// The directory made for the socket, removed on drop; `None` for an abstract one.
    dir: Option<PathBuf>,
}

impl Upstream {
    /// Binds the private listener (see the module documentation).
    pub fn bind() -> io::Result<(UnixListener, Upstream)> {
        let name = format!("tinyprom-{}-{:016x}", std::process::id(), fastrand::u64(..));
        let bases = std::env::var_os("TMPDIR")
            .map(PathBuf::from)
            .into_iter()
            .chain([PathBuf::from("/tmp"), PathBuf::from("/dev/shm")]);
        for base in bases {
            let dir = base.join(&name);
            let made = {
                use std::os::unix::fs::DirBuilderExt;
                std::fs::DirBuilder::new().mode(0o700).create(&dir)
            };
            if made.is_err() {
                continue;
            }
            match UnixListener::bind(dir.join("gate.sock")) {
                Ok(listener) => return Upstream::of(listener, Some(dir)),
                Err(_) => {
                    let _ = std::fs::remove_dir(&dir);
                }
            }
        }
        let listener = UnixListener::bind_addr(&SocketAddr::from_abstract_name(name)?)?;
        Upstream::of(listener, None)
    }

    fn of(listener: UnixListener, dir: Option<PathBuf>) -> io::Result<(UnixListener, Upstream)> {
        // SAFETY: a zeroed sockaddr_un is valid; getsockname writes at most `len` bytes.
        let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
        let rc = unsafe {
            libc::getsockname(
                listener.as_raw_fd(),
                (&mut addr as *mut libc::sockaddr_un).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok((listener, Upstream { addr, len, dir }))
    }

    /// Whether the socket has a path (tiny_http's `Server` can then be dropped: its
    /// drop unwraps the path).
    pub fn has_path(&self) -> bool {
        self.dir.is_some()
    }

    /// A new non-blocking connection; `WouldBlock` when the backlog is full.
    pub fn connect(&self) -> io::Result<OwnedFd> {
        // SAFETY: socket(2) has no memory arguments; the result is owned at once.
        let fd: RawFd = unsafe {
            libc::socket(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor nothing else owns.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: addr/len are what getsockname returned for the listener.
        let rc = unsafe {
            libc::connect(
                fd,
                (&self.addr as *const libc::sockaddr_un).cast(),
                self.len,
            )
        };
        if rc != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINPROGRESS) {
                return Err(e);
            }
        }
        Ok(owned)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_file(dir.join("gate.sock"));
            let _ = std::fs::remove_dir(dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn connects_to_its_private_listener() {
        let (listener, upstream) = Upstream::bind().unwrap();
        let fd = upstream.connect().unwrap();
        let (mut accepted, _) = listener.accept().unwrap();
        let mut client = std::os::unix::net::UnixStream::from(fd);
        client.set_nonblocking(false).unwrap();
        client.write_all(b"hi").unwrap();
        let mut got = [0u8; 2];
        accepted.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hi");
        if let Some(dir) = upstream.dir.clone() {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
            drop(upstream);
            assert!(!dir.exists());
        }
    }
}
