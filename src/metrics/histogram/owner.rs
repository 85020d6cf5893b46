//! The owner of a series' base shard: the one thread that writes it without an atomic
//! read-modify-write instruction.
//!
//! On the machines measured, one `lock`-prefixed instruction (a compare-exchange to
//! take a lock word) costs 5 to 12 ns, more than everything else an observation does,
//! and it is the floor of any design that takes a lock or adds atomically. Most series
//! are observed by one thread at a time, though, and a single writer needs no
//! read-modify-write at all: it can publish with a sequence number (a *seqlock*), which
//! takes plain stores. So the first thread to observe a series becomes the owner of
//! its base shard and writes it under a sequence number; every other thread observes
//! into the stripes (`stripes.rs`), under their lock words, as contended series always
//! did. A scrape reads the base by the sequence number: it copies the shard and tries
//! again if the owner wrote meanwhile.
//!
//! The owner word of a series holds the owner's token (0 until the first observation,
//! [`NEVER`] for a series no thread may own) in its low bits and, in its high bits, the
//! number of readers asking the owner to pause: a reader that keeps losing the race
//! against a busy owner raises it, which makes the owner's fast-path check fail, so the
//! owner observes into the stripes until the reader is done. A reader therefore waits
//! for at most one write in progress, never for the owner to stop observing.
//!
//! A thread's token is leased: when the thread exits, its token goes back to a pool
//! and the next thread to need one takes it, and with it the ownership of every series
//! the exited thread owned (a pool that replaces its threads, or a benchmark that
//! starts new ones, keeps its fast path). The lease orders the two threads' writes:
//! the exiting thread returns the token under the pool's mutex after its last
//! observation, and the next one takes it under the same mutex before its first. No
//! two live threads ever hold the same token.

use std::cell::Cell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bits of the owner word that hold the token.
const TOKEN_BITS: u32 = 48;
const TOKEN_MASK: u64 = (1 << TOKEN_BITS) - 1;
/// One reader asking the owner to pause.
const PAUSE: u64 = 1 << TOKEN_BITS;
/// The owner word of a series that no thread may own (one that resets: a reset must
/// zero every shard, and only the owner may write the base).
pub(super) const NEVER: u64 = TOKEN_MASK;
/// The token of a thread that cannot have one (tokens exhausted, or asked for while
/// the thread's locals are being destroyed). It equals no owner word, [`NEVER`]
/// included, so such a thread owns nothing and claims nothing: an owner word with
/// this bit set would need a pause count of 2^15 on a series without an owner, and
/// readers pause only owners. (It used to be `NEVER` itself, which made such a thread
/// the owner of every series that resets.)
pub(super) const NO_TOKEN: u64 = 1 << 63;
/// The token of a thread that has not asked for one yet: like [`NO_TOKEN`], it equals
/// no owner word, so the observe path reads the token with no check for a first use
/// and a thread's first observation takes the shared path, which leases it.
const UNSET: u64 = 1 << 62;
/// No owner yet.
pub(super) const NONE: u64 = 0;

/// Where tokens come from: new ones, and those of exited threads.
struct Pool {
    /// Tokens handed out so far.
    issued: AtomicU64,
    /// Tokens of exited threads, free to lease again.
    returned: Mutex<Vec<u64>>,
}

impl Pool {
    const fn new() -> Pool {
        Pool {
            issued: AtomicU64::new(0),
            returned: Mutex::new(Vec::new()),
        }
    }

    /// A token no live thread holds: the last one returned, else a new one.
    fn lease(&self) -> u64 {
        let returned = self.returned.lock().ok().and_then(|mut free| free.pop());
        // Relaxed: only uniqueness matters, which the read-modify-write gives. After
        // 2^48 - 2 tokens the rest are NO_TOKEN: those threads never own a series.
        returned.unwrap_or_else(|| {
            let t = self.issued.fetch_add(1, Ordering::Relaxed) + 1;
            if t < NEVER { t } else { NO_TOKEN }
        })
    }

    /// Takes back the token of a thread that is exiting.
    fn give_back(&self, token: u64) {
        if token != 0 && token != NO_TOKEN && token != UNSET {
            // A poisoned pool (a panic while it was held, which nothing here can
            // cause) only loses the token.
            if let Ok(mut free) = self.returned.lock() {
                free.push(token);
            }
        }
    }
}

static POOL: Pool = Pool::new();

/// Returns the thread's token to the pool when the thread exits. Kept apart from the
/// token itself: a thread local with a destructor is checked for its registration on
/// every access (measured: five instructions of every observation), one without is a
/// plain load, so the token sits in a destructor-free cell and only the first lease
/// touches this one.
struct Lease;

impl Drop for Lease {
    fn drop(&mut self) {
        // From here on the thread owns nothing: a later observation (another thread
        // local's destructor) takes the shared path.
        POOL.give_back(TOKEN.with(|t| t.replace(NO_TOKEN)));
    }
}

thread_local! {
    /// This thread's token; [`UNSET`] until first asked for, [`NO_TOKEN`] once
    /// returned.
    static TOKEN: Cell<u64> = const { Cell::new(UNSET) };
    /// Registered by the first lease, so the token goes back when the thread exits.
    static LEASE: Lease = const { Lease };
}

/// The calling thread's token: non-zero, held by no other live thread, never
/// [`NO_TOKEN`] for a thread that cannot have one.
#[inline(always)]
pub(super) fn token() -> u64 {
    match TOKEN.with(Cell::get) {
        UNSET => lease(),
        t => t,
    }
}

/// The calling thread's token as it stands: [`UNSET`] before the first [`token`],
/// which owns nothing. One load, with no call: what the observe path checks
/// ownership with.
#[inline(always)]
pub(super) fn current() -> u64 {
    TOKEN.with(Cell::get)
}

#[cold]
fn lease() -> u64 {
    // Registering the destructor fails while the thread's locals are being destroyed:
    // then the thread cannot give a token back and gets none.
    if LEASE.try_with(|_| ()).is_err() {
        TOKEN.with(|t| t.set(NO_TOKEN));
        return NO_TOKEN;
    }
    let t = POOL.lease();
    TOKEN.with(|c| c.set(t));
    t
}

/// True when the calling thread, with token `me`, owns the series whose owner word is
/// `owner` and no reader asks it to pause. One load and one comparison.
#[inline(always)]
pub(super) fn owns(owner: &AtomicU64, me: u64) -> bool {
    // Relaxed: the owner word only ever changes from NONE to a token (by the owner
    // itself) and in its pause count; a stale read makes the owner take the shared
    // path once, which is always correct.
    owner.load(Ordering::Relaxed) == me
}

/// Makes the calling thread (`me`) the owner of a series nobody owns yet; false when
/// another thread does (or a reader is pausing a previous claim: no owner yet means no
/// pause, so that cannot happen), or the series may have no owner.
#[cold]
pub(super) fn claim(owner: &AtomicU64, me: u64) -> bool {
    me != NO_TOKEN
        && owner.load(Ordering::Relaxed) == NONE
        // Relaxed: the base's cells are published by its sequence number, not by this.
        && owner
            .compare_exchange(NONE, me, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
}

/// Asks the owner of a series to observe elsewhere until dropped (a reader that lost
/// the race against it more than a few times).
pub(super) struct Pause<'a>(&'a AtomicU64);

impl<'a> Pause<'a> {
    /// Raises the pause count of `owner`.
    pub(super) fn new(owner: &'a AtomicU64) -> Pause<'a> {
        // Relaxed: the pause is for progress only (the sequence number alone decides
        // whether a copy is whole); cache coherence makes the raised count visible to
        // the owner's next checks.
        owner.fetch_add(PAUSE, Ordering::Relaxed);
        Pause(owner)
    }
}

impl Drop for Pause<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(PAUSE, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_per_thread_and_stable() {
        let mine = token();
        assert_eq!(token(), mine);
        let other = std::thread::spawn(token).join().unwrap();
        assert_ne!(other, mine);
        assert!(mine != 0 && mine != NEVER && mine != NO_TOKEN && other != 0);
    }

    #[test]
    fn returned_tokens_are_leased_again_before_new_ones() {
        let pool = Pool::new();
        let (a, b) = (pool.lease(), pool.lease());
        assert_ne!(a, b);
        pool.give_back(a);
        assert_eq!(
            pool.lease(),
            a,
            "an exited thread's token goes to the next thread"
        );
        assert_eq!(pool.lease(), 3);
        pool.give_back(NO_TOKEN);
        pool.give_back(0);
        assert_eq!(pool.lease(), 4, "NO_TOKEN and 0 are not tokens to lease");
        let exhausted = Pool::new();
        exhausted.issued.store(NEVER - 2, Ordering::Relaxed);
        assert_eq!(exhausted.lease(), NEVER - 1, "the last token");
        assert_eq!(exhausted.lease(), NO_TOKEN, "then none");
    }

    #[test]
    fn one_claim_wins_and_a_pause_hides_the_owner() {
        let owner = AtomicU64::new(NONE);
        let me = token();
        assert!(!owns(&owner, me));
        assert!(claim(&owner, me));
        assert!(owns(&owner, me));
        let other = std::thread::spawn(move || {
            let owner = AtomicU64::new(me);
            claim(&owner, token())
        });
        assert!(!other.join().unwrap(), "a second thread cannot claim");
        {
            let _pause = Pause::new(&owner);
            assert!(!owns(&owner, me), "a paused owner takes the shared path");
        }
        assert!(owns(&owner, me));
        assert!(!claim(&AtomicU64::new(NEVER), me));
    }

    #[test]
    fn a_thread_without_a_token_owns_and_claims_nothing() {
        for word in [NONE, NEVER, 1, NEVER - 1, NEVER | PAUSE, 1 | PAUSE] {
            assert!(
                !owns(&AtomicU64::new(word), NO_TOKEN),
                "owner word {word:#x}"
            );
            assert!(!owns(&AtomicU64::new(word), UNSET), "owner word {word:#x}");
        }
        let fresh = std::thread::spawn(|| {
            let before = current();
            (before, token(), current())
        });
        let (before, leased, after) = fresh.join().unwrap();
        assert_eq!(before, UNSET, "a new thread has no token until it asks");
        assert!(leased != UNSET && leased != NO_TOKEN && leased == after);
        assert!(!claim(&AtomicU64::new(NONE), NO_TOKEN));
        assert!(!claim(&AtomicU64::new(NEVER), NO_TOKEN));
    }
}
