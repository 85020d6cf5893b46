//! Scheduling for the threads behind the gate: tiny_http's and the workers.
//!
//! Every request passes through the one gate thread twice, in and out, and each pass
//! wakes another thread: the request wakes a tiny_http connection thread, the
//! response wakes the client. Under the normal policy a woken thread that has slept a
//! while may preempt the thread that woke it, so the gate was preempted about once
//! per request under `wrk -c64` (nonvoluntary context switches in
//! `/proc/PID/task/TID/status`), and while it waits for a CPU every client waits.
//!
//! Threads behind the gate therefore run `SCHED_BATCH`: the same share of CPU time as
//! before (their nice value is unchanged), but a woken batch thread does not preempt
//! the running one; it runs on a free CPU or at the next scheduler tick. The gate
//! finishes its batch of events (every ready response written, every ready request
//! passed on) before tiny_http's threads take the CPU from it (the measurement is in
//! docs/performance.md, "Threads behind the gate run `SCHED_BATCH`").
//!
//! A custom route's handler runs on a worker, so a thread it starts is batch too.
//!
//! Best effort: an unprivileged thread may always switch to `SCHED_BATCH`; where the
//! call is refused (a seccomp profile), the server runs as before.

/// Marks the calling thread `SCHED_BATCH`; threads it starts inherit the policy.
pub(crate) fn behind_the_gate() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: pid 0 is the calling thread; `param` is a live sched_param.
    let _ = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
}

/// Runs `start` on a short-lived `SCHED_BATCH` thread, so that every thread `start`
/// starts (tiny_http's accept thread, and the connection threads it starts in turn)
/// inherits the policy while the calling thread keeps its own.
pub(crate) fn start_behind_the_gate<T: Send>(start: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                behind_the_gate();
                start()
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_started_behind_the_gate_are_batch_and_the_caller_is_not() {
        // SAFETY: sched_getscheduler(0) only reads the calling thread's policy.
        let policy = || unsafe { libc::sched_getscheduler(0) };
        let before = policy();
        let (inside, child) = start_behind_the_gate(|| {
            let inside = policy();
            (inside, std::thread::spawn(policy).join().unwrap())
        });
        assert_eq!(inside, libc::SCHED_BATCH);
        assert_eq!(
            child,
            libc::SCHED_BATCH,
            "a thread it starts inherits the policy"
        );
        assert_eq!(policy(), before, "the calling thread keeps its policy");
    }
}
