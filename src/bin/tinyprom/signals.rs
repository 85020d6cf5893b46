//! SIGTERM and SIGINT as a flag the server polls; SIGHUP logged and ignored.
//!
//! The stop handler only stores to an atomic (async-signal-safe); the server notices
//! within a tick and shuts down gracefully. A second signal while shutdown is in
//! progress exits at once, for the impatient operator.
//!
//! SIGHUP (a closed terminal, or an operator used to daemons that reload on it) would
//! kill the process by default; there is no configuration file to reload, so its
//! handler writes one line to stderr and the server carries on.

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

extern "C" fn on_hangup(_signal: libc::c_int) {
    const LINE: &[u8] =
        b"tinyprom: SIGHUP received and ignored (there is no configuration to reload)\n";
    // SAFETY: write(2) is async-signal-safe; the buffer is a static.
    unsafe { libc::write(libc::STDERR_FILENO, LINE.as_ptr().cast(), LINE.len()) };
}

/// Installs the handlers and returns the flag they set.
pub fn install() -> std::io::Result<&'static AtomicBool> {
    handle_stop_signals(on_signal)?;
    ignore_hangup()?;
    Ok(&STOP)
}

/// Makes SIGHUP log one line and change nothing.
pub fn ignore_hangup() -> std::io::Result<()> {
    set_handler(libc::SIGHUP, on_hangup)
}

fn set_handler(signal: libc::c_int, handler: extern "C" fn(libc::c_int)) -> std::io::Result<()> {
    // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value; every
    // handler of this module is async-signal-safe.
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
    Ok(())
}

/// Makes `handler` the handler of SIGTERM and SIGINT (restarting interrupted system
/// calls). `handler` must be async-signal-safe.
pub(crate) fn handle_stop_signals(handler: extern "C" fn(libc::c_int)) -> std::io::Result<()> {
    for signal in [libc::SIGTERM, libc::SIGINT] {
        set_handler(signal, handler)?;
    }
    Ok(())
}
