//! Crash-only supervision: a parent process that owns the listening socket and keeps a
//! serving child process alive.
//!
//! What it protects against: no client input (the gate vets all of it, and no client
//! can hold a thread); but the serving process can still die or break by other
//! causes: an allocation failure aborts it, the kernel's OOM killer or an operator's
//! `kill -9` ends it, a bug in tiny_http ends its accept loop (the server then returns
//! an error and the process exits 1). The answer to "the serving process is gone" is
//! to start a fresh one at once on the same socket, in the nginx/gunicorn master-worker
//! style, instead of leaving the port dark until an orchestrator notices:
//!
//! * The parent binds the listening socket before it forks, so the socket outlives every
//!   child: while a new child starts, connections wait in the kernel's accept queue and
//!   none is refused.
//! * The parent forks without exec (it works in an empty `FROM scratch` root), while it
//!   is still single-threaded, so the child is a clean copy that builds its server from
//!   scratch. The restart count reaches the child through the copied memory.
//! * The parent only waits: it logs each death with its cause (exit status or signal),
//!   forks again at once (with a short back-off only when the child keeps dying within
//!   a second of starting), forwards SIGTERM/SIGINT to the child, and exits with the
//!   child's status once a requested shutdown is over. A child that exits cleanly on
//!   its own (someone signalled it directly) has closed the socket, so the parent
//!   exits too.
//!
//! The child runs in its own process group (a terminal's Ctrl-C reaches only the
//! parent, which forwards it once) and is killed by the kernel if the parent dies.

use std::io;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

/// The pid of the running child, 0 while there is none; read by the signal handler.
static CHILD: AtomicI32 = AtomicI32::new(0);
/// The first stop signal the parent received, 0 if none.
static STOP_SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(signal: libc::c_int) {
    // SeqCst: the handler and the main loop must agree on one order of these two
    // variables (a child forked after the flag was set must still be told).
    let _ = STOP_SIGNAL.compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst);
    let pid = CHILD.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill(2) is async-signal-safe; pid is our own child.
        unsafe { libc::kill(pid, signal) };
    }
}

/// A child running faster into its death than this is "crash-looping".
const FAST_DEATH: Duration = Duration::from_secs(1);
/// Fast deaths in a row tolerated without a pause (one bad request kills one child;
/// the next must start at once).
const FREE_FAST_DEATHS: u32 = 3;
/// The longest pause between restarts of a crash-looping child.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// How a child ended, in words for the log.
pub(crate) fn describe(status: libc::c_int) -> String {
    if libc::WIFEXITED(status) {
        format!("exited with status {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        let signal = libc::WTERMSIG(status);
        format!("killed by {}", signal_name(signal))
    } else {
        format!("ended with wait status {status}")
    }
}

/// The conventional name of a signal number (`SIGABRT`), or `signal N`.
pub(crate) fn signal_name(signal: libc::c_int) -> String {
    let name = match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGTERM => "SIGTERM",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        _ => return format!("signal {signal}"),
    };
    name.to_string()
}

/// The pause before the next restart after `fast_deaths` quick deaths in a row.
pub(crate) fn backoff(fast_deaths: u32) -> Duration {
    if fast_deaths <= FREE_FAST_DEATHS {
        return Duration::ZERO;
    }
    let doublings = (fast_deaths - FREE_FAST_DEATHS - 1).min(10);
    (Duration::from_millis(10) * (1u32 << doublings)).min(MAX_BACKOFF)
}

fn set_stop_signals(mask_how: libc::c_int) -> io::Result<()> {
    // SAFETY: a zeroed sigset_t is initialised by sigemptyset before use; the calls
    // only touch the set we pass and this thread's mask.
    let rc = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(mask_how, &set, std::ptr::null_mut())
    };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(())
}

fn install_forwarding() -> io::Result<()> {
    // `forward` only touches atomics and calls kill(2).
    crate::signals::handle_stop_signals(forward)?;
    crate::signals::ignore_hangup()
}

/// Runs `serve` in a forked child and restarts it whenever it dies, until SIGTERM or
/// SIGINT; returns the exit status for the parent (the last child's).
///
/// `serve` gets the number of restarts so far and returns the child's exit status. It
/// runs with fresh SIGTERM/SIGINT handlers ([`crate::signals::install`]). Must be
/// called while the process is single-threaded.
pub fn supervise(serve: impl Fn(u64) -> u8) -> io::Result<u8> {
    install_forwarding()?;
    let parent = std::process::id() as libc::pid_t;
    let mut restarts: u64 = 0;
    let mut fast_deaths: u32 = 0;
    loop {
        // Blocked across fork: a signal arriving now is delivered once CHILD is set.
        set_stop_signals(libc::SIG_BLOCK)?;
        if STOP_SIGNAL.load(Ordering::SeqCst) != 0 {
            set_stop_signals(libc::SIG_UNBLOCK)?;
            return Ok(0);
        }
        // SAFETY: the process is single-threaded here (documented precondition), so
        // the child may run arbitrary code.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            let e = io::Error::last_os_error();
            set_stop_signals(libc::SIG_UNBLOCK)?;
            return Err(e);
        }
        if pid == 0 {
            std::process::exit(i32::from(child(parent, restarts, &serve)));
        }
        CHILD.store(pid, Ordering::SeqCst);
        set_stop_signals(libc::SIG_UNBLOCK)?;
        let started = Instant::now();
        let status = wait_for(pid)?;
        CHILD.store(0, Ordering::SeqCst);
        if STOP_SIGNAL.load(Ordering::SeqCst) != 0 {
            if libc::WIFEXITED(status) {
                return Ok(libc::WEXITSTATUS(status) as u8);
            }
            eprintln!(
                "tinyprom: serving process {pid} {} during shutdown",
                describe(status)
            );
            return Ok(1);
        }
        if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
            // A clean exit means the child itself was asked to stop (and has closed
            // the listening socket): there is nothing left to serve on.
            eprintln!("tinyprom: serving process {pid} stopped cleanly; exiting");
            return Ok(0);
        }
        let lived = started.elapsed();
        fast_deaths = if lived < FAST_DEATH {
            fast_deaths + 1
        } else {
            0
        };
        restarts += 1;
        let pause = backoff(fast_deaths);
        eprintln!(
            "tinyprom: serving process {pid} {} after {:.3}s; restarting (restart {restarts}{})",
            describe(status),
            lived.as_secs_f64(),
            if pause.is_zero() {
                String::new()
            } else {
                format!(", crash loop: waiting {}ms", pause.as_millis())
            }
        );
        std::thread::sleep(pause);
    }
}

/// The child's side of the fork: own process group, death with the parent, its own
/// signal handlers, then `serve`.
fn child(parent: libc::pid_t, restarts: u64, serve: &impl Fn(u64) -> u8) -> u8 {
    // SAFETY: plain system calls on this process; arguments are constants.
    unsafe {
        libc::setpgid(0, 0);
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if libc::getppid() != parent {
            // The parent died before prctl took effect.
            return 1;
        }
    }
    CHILD.store(0, Ordering::SeqCst);
    if let Err(e) = crate::signals::install() {
        eprintln!("tinyprom: cannot install signal handlers: {e}");
        return 1;
    }
    if let Err(e) = set_stop_signals(libc::SIG_UNBLOCK) {
        eprintln!("tinyprom: cannot unblock signals: {e}");
        return 1;
    }
    serve(restarts)
}

/// Waits for `pid` to end, retrying on EINTR; returns its wait status.
fn wait_for(pid: libc::pid_t) -> io::Result<libc::c_int> {
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: waitpid writes the status into our local.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc == pid {
            return Ok(status);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_free_at_first_then_doubles_up_to_a_second() {
        assert_eq!(backoff(0), Duration::ZERO);
        assert_eq!(backoff(FREE_FAST_DEATHS), Duration::ZERO);
        assert_eq!(backoff(FREE_FAST_DEATHS + 1), Duration::from_millis(10));
        assert_eq!(backoff(FREE_FAST_DEATHS + 2), Duration::from_millis(20));
        assert_eq!(backoff(100), MAX_BACKOFF);
    }

    #[test]
    fn causes_are_named() {
        assert_eq!(signal_name(libc::SIGABRT), "SIGABRT");
        assert_eq!(signal_name(64), "signal 64");
        // Wait statuses as the kernel encodes them: exit code in the second byte,
        // terminating signal in the low seven bits.
        assert_eq!(describe(3 << 8), "exited with status 3");
        assert_eq!(describe(libc::SIGKILL), "killed by SIGKILL");
    }
}
