//! Scheduling for the threads behind the gate: tiny_http's and the workers.
//!
//! Every request passes through the one gate thread twice, in and out, and each pass
//! wakes another thread: the request wakes a tiny_http connection thread, the
//! response wakes the client. Under the normal policy a woken thread that has slept a
//! while may preempt the thread that woke it, so the gate was preempted about once
//! per request under `wrk -c64` (nonvoluntary context switches in
//! `/proc/PID/task/TID/status`), and while it waits for a CPU every client waits.
//!
//! Threads behind the gate therefore run `SCHED_BATCH`: a woken batch thread does not
//! preempt the running one; it runs on a free CPU or at the next scheduler tick. The
//! gate finishes its batch of events (every ready response written, every ready
//! request relayed) before tiny_http's threads take the CPU from it. Measured: gate
//! preemptions per request went from about 0.9 to 0.2.
//!
//! They also run [`NICER`] nice levels above the thread that started them, so that
//! when the gate and the threads behind it both want a CPU the gate, through which
//! every client's bytes pass, gets the larger share. Measured with `wrk -t2 -c64` on
//! `/up` on 2 CPUs, interleaved 2 s rounds, 8 of each, two runs: +5 against +0 gave
//! 41,968 against 39,202 and 37,218 against 35,133 req/s, p99 2.58 against 2.92 and
//! 2.92 against 3.05 ms (+10 was no better than +0). The cost: an embedder's custom
//! handlers, which run on the workers, get less CPU than other nice-0 work on the
//! host when the machine is saturated.
//!
//! A custom route's handler runs on a worker, so a thread it starts is batch (and
//! nicer) too.
//!
//! Best effort: an unprivileged thread may always switch to `SCHED_BATCH` and raise
//! its own nice value; where a call is refused (a seccomp profile), the server runs
//! as before.

/// How many nice levels the threads behind the gate run above the gate.
pub(crate) const NICER: i32 = 5;

/// Marks the calling thread `SCHED_BATCH` and [`NICER`] levels nicer; threads it
/// starts inherit both. A thread that is batch already (it was started behind the
/// gate) is left as it is, so the nice value is raised once, not once per call.
pub(crate) fn behind_the_gate() {
    // SAFETY: sched_getscheduler(0) only reads the calling thread's policy.
    if unsafe { libc::sched_getscheduler(0) } == libc::SCHED_BATCH {
        return;
    }
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: pid 0 is the calling thread; `param` is a live sched_param.
    let _ = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
    if let Some(nice) = nice() {
        // SAFETY: on Linux, PRIO_PROCESS with who 0 is the calling thread only.
        let _ = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, (nice + NICER).min(19)) };
    }
}

/// The calling thread's nice value, `None` if it cannot be read.
pub(crate) fn nice() -> Option<i32> {
    // getpriority returns -1 both for nice -1 and on failure; only errno tells.
    // SAFETY: __errno_location points at the calling thread's errno.
    unsafe { *libc::__errno_location() = 0 };
    // SAFETY: PRIO_PROCESS with who 0 reads the calling thread's nice value.
    let nice = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
    // SAFETY: as above.
    (nice != -1 || unsafe { *libc::__errno_location() } == 0).then_some(nice)
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
    fn threads_started_behind_the_gate_are_batch_and_nicer_and_the_caller_is_not() {
        fn state() -> (i32, i32) {
            // SAFETY: sched_getscheduler(0) only reads the calling thread's policy.
            let policy = unsafe { libc::sched_getscheduler(0) };
            (policy, nice().expect("nice readable"))
        }
        let before = state();
        let (inside, child, again) = start_behind_the_gate(|| {
            let inside = state();
            let child = std::thread::spawn(state).join().unwrap();
            behind_the_gate();
            (inside, child, state())
        });
        let nicer = (before.1 + NICER).min(19);
        assert_eq!(inside, (libc::SCHED_BATCH, nicer));
        assert_eq!(
            child,
            (libc::SCHED_BATCH, nicer),
            "a thread it starts inherits the policy and the nice value"
        );
        assert_eq!(again, inside, "a second call changes nothing");
        assert_eq!(
            state(),
            before,
            "the calling thread keeps its policy and nice value"
        );
    }
}
