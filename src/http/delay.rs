//! The delay queue behind `/synthetic`: answers requests when their delay is over.
//!
//! `/synthetic` waits 1–50 ms before it answers. Sleeping on a worker would let 64
//! slow requests hold every worker and starve `/up` and `/metrics`; instead a worker
//! parks the request here and goes back to `recv()`, and one timer thread answers each
//! parked request when it falls due. Parking is bounded: when the queue holds
//! `capacity` requests, the caller is told to answer at once (503) instead.

use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

/// Work that must run at a given instant.
pub trait Due: Send + 'static {
    /// Runs the work (on the timer thread).
    fn run(self);
}

struct Entry<T> {
    due: Instant,
    seq: u64,
    job: T,
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}
impl<T> Eq for Entry<T> {}
impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Entry<T> {
    // Reversed: BinaryHeap is a max-heap and we want the earliest due first.
    fn cmp(&self, other: &Self) -> CmpOrdering {
        (other.due, other.seq).cmp(&(self.due, self.seq))
    }
}

struct State<T> {
    heap: BinaryHeap<Entry<T>>,
    seq: u64,
    closed: bool,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    wake: Condvar,
    capacity: usize,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // The heap stays valid if a job panicked while the lock was not held (jobs run
        // unlocked), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A bounded queue of delayed jobs with one thread running them when due.
pub struct DelayQueue<T: Due> {
    shared: Arc<Shared<T>>,
    /// Taken by the first `close`; only `close` locks it, never `schedule`.
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl<T: Due> DelayQueue<T> {
    /// Starts the timer thread. At most `capacity` jobs wait at once.
    pub fn start(capacity: usize) -> std::io::Result<DelayQueue<T>> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                heap: BinaryHeap::new(),
                seq: 0,
                closed: false,
            }),
            wake: Condvar::new(),
            capacity,
        });
        let worker = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("tinyprom-delay".into())
            .spawn(move || run(&worker))?;
        Ok(DelayQueue {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Parks `job` until `due`; gives it back when the queue is full or closed.
    pub fn schedule(&self, due: Instant, job: T) -> Result<(), T> {
        let mut state = self.shared.lock();
        if state.closed || state.heap.len() >= self.shared.capacity {
            return Err(job);
        }
        state.seq += 1;
        let seq = state.seq;
        let earliest = state.heap.peek().is_none_or(|e| due < e.due);
        state.heap.push(Entry { due, seq, job });
        drop(state);
        if earliest {
            self.shared.wake.notify_one();
        }
        Ok(())
    }

    /// Jobs waiting right now.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.shared.lock().heap.len()
    }

    /// True when no job waits.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Refuses new jobs, runs every parked job when it falls due, then stops the
    /// thread. Returns once the last job has run. Later calls return at once.
    pub fn close(&self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(thread) = thread {
            // A panicking job already reported itself; nothing more to do here.
            let _ = thread.join();
        }
    }
}

impl<T: Due> Drop for DelayQueue<T> {
    fn drop(&mut self) {
        self.close();
    }
}

fn run<T: Due>(shared: &Shared<T>) {
    let mut state = shared.lock();
    loop {
        let now = Instant::now();
        match state.heap.peek() {
            Some(entry) if entry.due <= now => {
                let entry = state.heap.pop().expect("peeked");
                drop(state);
                entry.job.run();
                state = shared.lock();
            }
            Some(entry) => {
                let wait = entry.due - now;
                state = shared
                    .wake
                    .wait_timeout(state, wait)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            None if state.closed => return,
            None => {
                state = shared.wake.wait(state).unwrap_or_else(|p| p.into_inner());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    struct Send_(mpsc::Sender<(u32, Instant)>, u32);
    impl Due for Send_ {
        fn run(self) {
            let _ = self.0.send((self.1, Instant::now()));
        }
    }

    #[test]
    fn runs_in_due_order_not_before_due() {
        let (tx, rx) = mpsc::channel();
        let q = DelayQueue::start(10).unwrap();
        let t0 = Instant::now();
        for (id, ms) in [(1, 30), (2, 10), (3, 20)] {
            q.schedule(t0 + Duration::from_millis(ms), Send_(tx.clone(), id))
                .ok()
                .unwrap();
        }
        q.close();
        let got: Vec<(u32, Instant)> = rx.try_iter().collect();
        assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), [2, 3, 1]);
        for (id, at) in got {
            let ms = [0, 30, 10, 20][id as usize];
            assert!(at >= t0 + Duration::from_millis(ms));
        }
    }

    #[test]
    fn bounded_and_closed() {
        let (tx, _rx) = mpsc::channel();
        let q = DelayQueue::start(2).unwrap();
        let later = Instant::now() + Duration::from_millis(20);
        assert!(q.schedule(later, Send_(tx.clone(), 1)).is_ok());
        assert!(q.schedule(later, Send_(tx.clone(), 2)).is_ok());
        assert!(q.schedule(later, Send_(tx.clone(), 3)).is_err());
        assert_eq!(q.len(), 2);
        q.close();
        assert!(q.is_empty());
        assert!(q.schedule(later, Send_(tx, 4)).is_err());
    }
}
