//! The private socket between the gate and tiny_http.
//!
//! tiny_http serves a `UnixListener` that only the gate connects to. It is bound in a
//! fresh directory only this user can enter (mode 0700, under `$TMPDIR` or `/tmp`),
//! so no other local user can reach tiny_http or forge the gate's peer header. Where no
//! directory is writable (a `FROM scratch` image running as `nobody` has none), it
//! falls back to a randomly named socket in the abstract namespace, reachable only
//! from the same network namespace: in a container, that is the container itself.
//!
//! A process that is killed (SIGKILL, the OOM killer) cannot remove its directory, and
//! the supervisor starts a new serving process in its place. So binding first sweeps
//! the stale directories of earlier tinyprom processes of this user: a directory
//! named like ours, whose process is gone, and whose socket refuses connections (no
//! listener behind it, which also holds for a process of another PID namespace that
//! shares the directory). At most [`SWEEP_ENTRIES`] entries are looked at.
//!
//! The gate connects without blocking (`SOCK_NONBLOCK` before `connect`): a full
//! accept backlog is `EAGAIN`, and the request waits in the gate for the next try.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener};
use std::path::{Path, PathBuf};

/// Directory entries a sweep looks at, at most, per base directory.
pub const SWEEP_ENTRIES: usize = 10_000;

/// The prefix of the directories (and abstract names) of the private socket.
const PREFIX: &str = "tinyprom-";

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
        let name = format!("{PREFIX}{}-{:016x}", std::process::id(), fastrand::u64(..));
        let bases = std::env::var_os("TMPDIR")
            .map(PathBuf::from)
            .into_iter()
            .chain([PathBuf::from("/tmp"), PathBuf::from("/dev/shm")]);
        for base in bases {
            sweep_stale(&base);
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
        connect_nonblocking(&self.addr, self.len)
    }
}

/// A non-blocking connection to the Unix socket at `addr` (`len` bytes of it): the
/// connect itself never waits (`WouldBlock` when the backlog is full).
fn connect_nonblocking(addr: &libc::sockaddr_un, len: libc::socklen_t) -> io::Result<OwnedFd> {
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
    // SAFETY: `addr` is a valid sockaddr_un of at least `len` bytes.
    let rc = unsafe { libc::connect(fd, (addr as *const libc::sockaddr_un).cast(), len) };
    if rc != 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(e);
        }
    }
    Ok(owned)
}

/// Removes the stale socket directories of dead tinyprom processes in `base` (see the
/// module documentation); returns how many it removed. Errors only skip an entry.
pub fn sweep_stale(base: &Path) -> usize {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(base) else {
        return 0;
    };
    // SAFETY: getuid(2) has no arguments and cannot fail.
    let uid = unsafe { libc::getuid() };
    let mut removed = 0;
    for entry in entries.take(SWEEP_ENTRIES).flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(stale_candidate) else {
            continue;
        };
        let dir = entry.path();
        // Not followed if a link: only a real directory of ours.
        let Ok(meta) = std::fs::symlink_metadata(&dir) else {
            continue;
        };
        if !meta.is_dir() || meta.uid() != uid || process_exists(pid) {
            continue;
        }
        let socket = dir.join("gate.sock");
        // Without blocking: a live listener with a full backlog must not stall the start.
        let refused = path_addr(&socket).is_some_and(|(addr, len)| {
            connect_nonblocking(&addr, len)
                .is_err_and(|e| e.kind() == io::ErrorKind::ConnectionRefused)
        });
        if refused && std::fs::remove_file(&socket).is_ok() && std::fs::remove_dir(&dir).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// The address of the Unix socket at `path`, if the path fits one.
fn path_addr(path: &Path) -> Option<(libc::sockaddr_un, libc::socklen_t)> {
    use std::os::unix::ffi::OsStrExt;
    // SAFETY: a zeroed sockaddr_un is valid.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    let bytes = path.as_os_str().as_bytes();
    if bytes.len() >= addr.sun_path.len() || bytes.contains(&0) {
        return None;
    }
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (to, &from) in addr.sun_path.iter_mut().zip(bytes) {
        *to = from as libc::c_char;
    }
    let len = std::mem::offset_of!(libc::sockaddr_un, sun_path) + bytes.len() + 1;
    Some((addr, len as libc::socklen_t))
}

/// The process ID in a name of the private socket's directory
/// (`tinyprom-<pid>-<16 hex digits>`), if `name` is one.
fn stale_candidate(name: &str) -> Option<i32> {
    let (pid, tag) = name.strip_prefix(PREFIX)?.split_once('-')?;
    let well_formed = !pid.is_empty()
        && pid.bytes().all(|b| b.is_ascii_digit())
        && tag.len() == 16
        && tag.bytes().all(|b| b.is_ascii_hexdigit());
    well_formed.then(|| pid.parse().ok()).flatten()
}

/// Whether process `pid` exists in this PID namespace (signal 0 checks without
/// sending anything; `EPERM` means it exists under another user).
fn process_exists(pid: i32) -> bool {
    if pid <= 0 {
        return true;
    }
    // SAFETY: kill(2) with signal 0 sends nothing; it has no memory arguments.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
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

    /// A PID no process has: a child's, once it has been reaped.
    fn dead_pid() -> i32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        child.wait().unwrap();
        pid
    }

    fn private_dir(base: &Path, name: &str) -> PathBuf {
        use std::os::unix::fs::DirBuilderExt;
        let dir = base.join(name);
        std::fs::DirBuilder::new().mode(0o700).create(&dir).unwrap();
        dir
    }

    #[test]
    fn sweeps_only_the_directories_of_dead_processes_without_a_listener() {
        let base = std::env::temp_dir().join(format!("sweep-test-{:016x}", fastrand::u64(..)));
        std::fs::create_dir(&base).unwrap();
        let dead = dead_pid();
        // A killed process's directory: its socket file stays, nobody listens.
        let stale = private_dir(&base, &format!("tinyprom-{dead}-{:016x}", 1));
        drop(UnixListener::bind(stale.join("gate.sock")).unwrap());
        // A dead PID but a live listener (another PID namespace sharing the base).
        let listening = private_dir(&base, &format!("tinyprom-{dead}-{:016x}", 2));
        let live = UnixListener::bind(listening.join("gate.sock")).unwrap();
        // A live process (this one), its listener gone: still kept.
        let mine = private_dir(
            &base,
            &format!("tinyprom-{}-{:016x}", std::process::id(), 3),
        );
        drop(UnixListener::bind(mine.join("gate.sock")).unwrap());
        // Names that are not ours, and a directory that has no socket yet.
        let other = private_dir(&base, &format!("tinyprom-{dead}-short"));
        drop(UnixListener::bind(other.join("gate.sock")).unwrap());
        let empty = private_dir(&base, &format!("tinyprom-{dead}-{:016x}", 4));

        assert_eq!(sweep_stale(&base), 1);
        assert!(!stale.exists());
        for kept in [&listening, &mine, &other, &empty] {
            assert!(kept.exists(), "{kept:?} removed");
        }
        drop(live);
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn names_of_stale_candidates() {
        assert_eq!(stale_candidate("tinyprom-42-0123456789abcdef"), Some(42));
        for name in [
            "tinyprom-42-0123456789abcde",
            "tinyprom--0123456789abcdef",
            "tinyprom-4x-0123456789abcdef",
            "tinyprom-42-0123456789abcdeg",
            "other-42-0123456789abcdef",
            "tinyprom-99999999999999999999-0123456789abcdef",
        ] {
            assert_eq!(stale_candidate(name), None, "{name}");
        }
    }
}
