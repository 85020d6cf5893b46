//! What every serving process sets up once, binary or embedder alike: the open-files
//! limit raised to its hard limit (so the connection bound, not `EMFILE`, limits
//! clients) and a panic hook that counts panics for `tinyprom_panics_total`.
//!
//! [`super::Server`]'s builder calls [`prepare`] when it binds, so an embedder's
//! `Server::spawn` behaves as the binary does.

use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};

static PANICS: AtomicU64 = AtomicU64::new(0);
static PREPARE: Once = Once::new();

/// Raises the fd limit and installs the panic hook, once per process.
pub fn prepare() {
    PREPARE.call_once(|| {
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
