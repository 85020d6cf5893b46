//! What every serving process sets up once, binary or embedder alike: the open-files
//! limit raised to its hard limit (so the connection bound, not `EMFILE`, limits
//! clients), a panic hook that counts panics for `tinyprom_panics_total`, and (with
//! glibc) at most [`MALLOC_ARENAS`] malloc arenas: glibc gives threads arenas of their
//! own, up to eight per core, and tiny_http's connection threads would each touch one,
//! which costs resident memory and buys nothing for allocations this small.
//!
//! [`super::Server`]'s builder calls [`prepare`] when it binds, so an embedder's
//! `Server::spawn` behaves as the binary does.

use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};

static PANICS: AtomicU64 = AtomicU64::new(0);

/// The most malloc arenas (glibc only).
pub const MALLOC_ARENAS: i32 = 2;
static PREPARE: Once = Once::new();

/// Raises the fd limit and installs the panic hook, once per process.
pub fn prepare() {
    PREPARE.call_once(|| {
        #[cfg(target_env = "gnu")]
        // SAFETY: mallopt only sets an allocator parameter; M_ARENA_MAX takes any count.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, MALLOC_ARENAS);
        }
        if let Err(e) = super::listen::raise_fd_limit() {
            eprintln!("tinyprom: cannot read the open-files limit: {e}");
        }
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // Relaxed: a counter read by scrapes; no other memory depends on it.
            PANICS.fetch_add(1, Ordering::Relaxed);
            previous(info);
        }));
    });
}

/// Panics in this process so far (a handler's panic costs its request a 500, not
/// the server; a rising count is still a bug to look at).
pub fn panics() -> u64 {
    // Relaxed: see `prepare`.
    PANICS.load(Ordering::Relaxed)
}
