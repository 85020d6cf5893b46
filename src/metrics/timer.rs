//! [`Timer`]: records the time from its creation to its drop into a histogram or a
//! summary, so a caller times a scope without writing the arithmetic.

use std::time::Instant;

/// A metric that takes observed values (what a [`Timer`] records into).
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use tinyprom::metrics::{Observe, Timer};
///
/// // A metric of your own that a Timer can record into.
/// #[derive(Clone, Default)]
/// struct Durations(Arc<Mutex<Vec<f64>>>);
///
/// impl Observe for Durations {
///     fn observe(&self, v: f64) {
///         self.0.lock().unwrap().push(v);
///     }
/// }
///
/// let durations = Durations::default();
/// let seconds = Timer::start(durations.clone()).observe();
/// assert_eq!(*durations.0.lock().unwrap(), [seconds]);
/// ```
pub trait Observe: Clone {
    /// Records one value.
    fn observe(&self, v: f64);
}

/// Records the seconds from its creation to its drop (or to [`Timer::observe`]) into
/// a [`Histogram`](super::Histogram) or a [`Summary`](super::Summary).
///
/// ```
/// let h = tinyprom::metrics::Histogram::new(&[1.0]).unwrap();
/// {
///     let _t = h.start_timer();
/// }
/// let secs = h.start_timer().observe();
/// assert!(secs >= 0.0);
/// assert_eq!(h.snapshot().count, 2);
/// ```
#[derive(Debug)]
pub struct Timer<M: Observe> {
    metric: M,
    start: Instant,
    done: bool,
}

impl<M: Observe> Timer<M> {
    /// Starts timing into `metric`.
    pub fn start(metric: M) -> Self {
        Timer {
            metric,
            start: Instant::now(),
            done: false,
        }
    }

    /// Records now and returns the elapsed seconds (instead of waiting for the drop).
    pub fn observe(mut self) -> f64 {
        self.record()
    }

    fn record(&mut self) -> f64 {
        self.done = true;
        let secs = self.start.elapsed().as_secs_f64();
        self.metric.observe(secs);
        secs
    }
}

impl<M: Observe> Drop for Timer<M> {
    fn drop(&mut self) {
        if !self.done {
            self.record();
        }
    }
}
