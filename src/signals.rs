//! SIGTERM and SIGINT as a flag the server polls.
//!
//! The handler only stores to an atomic (async-signal-safe); the server notices within
//! a few milliseconds and shuts down gracefully. A second signal while shutdown is in
//! progress exits at once, for the impatient operator.

use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_signal: libc::c_int) {
    // SeqCst: the flag is the only state shared with the interrupted program.
    if STOP.swap(true, Ordering::SeqCst) {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(1) };
    }
}

/// The flag the handlers set (false until a signal arrives).
pub fn stop_flag() -> &'static AtomicBool {
    &STOP
}

/// Installs the handlers and returns the flag they set.
pub fn install() -> std::io::Result<&'static AtomicBool> {
    handle_stop_signals(on_signal)?;
    Ok(&STOP)
}

/// Makes `handler` the handler of SIGTERM and SIGINT (restarting interrupted system
/// calls). `handler` must be async-signal-safe.
pub fn handle_stop_signals(handler: extern "C" fn(libc::c_int)) -> std::io::Result<()> {
    for signal in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value; the
        // handler is async-signal-safe, as this function's contract requires.
        let rc = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = handler as *const () as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}
