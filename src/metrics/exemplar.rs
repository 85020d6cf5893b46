//! Exemplars: one observation's own labels (a trace id, typically) kept beside the
//! counts it went into, so that a latency panel can link a slow bucket to the request
//! that landed there.
//!
//! A series keeps them in an [`ExemplarStore`], allocated when the series first gets
//! one, so a series that never does costs at most a word (a histogram shares it with
//! its creation time), and the plain observe path never looks at it. Histograms keep one exemplar per classic bucket (the
//! latest wins) and, with native buckets, a small set of the latest ones with their
//! timestamps (see [`ExemplarStore::offer`] for which one a new exemplar replaces when
//! the set is full); counters keep one.
//!
//! Writers take the store's lock with `try_lock` and give up the exemplar (never the
//! observation) when someone holds it: observing never waits. A scrape takes the lock
//! and holds it while it renders the series, so it reads each exemplar whole. An
//! exemplar is stored after its observation is counted, and a scrape takes the lock
//! before it reads the counts, so every exemplar a scrape shows was counted in the
//! same scrape.

use std::sync::{Mutex, MutexGuard, TryLockError};
use std::time::{Duration, SystemTime};

use super::MetricError;
use super::name::validate_label_names;
use crate::exposition::values::write_label_value;

/// The most characters an exemplar's label names and values may hold together (the
/// OpenMetrics limit, counted in UTF-8 characters, not bytes).
pub const MAX_EXEMPLAR_CHARS: usize = 128;

/// After this long, a native exemplar is replaced before any newer one (client_golang's
/// default `NativeHistogramExemplarTTL`).
const NATIVE_EXEMPLAR_TTL: Duration = Duration::from_secs(5 * 60);

/// Checks an exemplar's labels: valid, distinct label names, and at most
/// [`MAX_EXEMPLAR_CHARS`] characters of names and values together.
///
/// ```
/// use tinyprom::metrics::{check_exemplar_labels, MetricError};
/// assert!(check_exemplar_labels(&[("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736")]).is_ok());
/// let long = "x".repeat(127);
/// assert_eq!(
///     check_exemplar_labels(&[("id", &long)]),
///     Err(MetricError::ExemplarTooLong(129))
/// );
/// ```
pub fn check_exemplar_labels(labels: &[(&str, &str)]) -> Result<(), MetricError> {
    let mut chars = 0;
    // The names of up to 8 labels are checked from the stack: no allocation on the
    // exemplar path for any sensible label set.
    let mut names = [""; 8];
    for (i, (name, value)) in labels.iter().enumerate() {
        chars += char_count(name) + char_count(value);
        if let Some(slot) = names.get_mut(i) {
            *slot = name;
        }
    }
    if chars > MAX_EXEMPLAR_CHARS {
        return Err(MetricError::ExemplarTooLong(chars));
    }
    if labels.len() <= names.len() {
        validate_label_names(&names[..labels.len()])
    } else {
        let names: Vec<&str> = labels.iter().map(|(n, _)| *n).collect();
        validate_label_names(&names)
    }
}

/// Characters of `s`; its length when ASCII (a trace id), which is quicker to tell.
fn char_count(s: &str) -> usize {
    if s.is_ascii() {
        s.len()
    } else {
        s.chars().count()
    }
}

/// One stored exemplar: its labels as the text formats write them, its value and when
/// it was observed.
///
/// ```
/// use tinyprom::metrics::Counter;
/// let requests = Counter::new();
/// requests.inc_with_exemplar(&[("trace_id", "abc")]).unwrap();
/// let exemplar = requests.exemplar().unwrap();
/// assert_eq!(exemplar.labels(), "trace_id=\"abc\"");
/// assert_eq!(exemplar.value(), 1.0);
/// ```
#[derive(Debug, PartialEq)]
pub struct Exemplar {
    /// `k="v",k2="v2"`, escaped: UTF-8 (rendered from `&str`s with ASCII escapes),
    /// kept as bytes so that storing one does not check it again.
    labels: Vec<u8>,
    value: f64,
    time: SystemTime,
}

impl Clone for Exemplar {
    fn clone(&self) -> Self {
        Exemplar {
            labels: self.labels.clone(),
            value: self.value,
            time: self.time,
        }
    }

    /// Reuses this exemplar's label buffer (what the derived one would not).
    fn clone_from(&mut self, source: &Self) {
        self.labels.clone_from(&source.labels);
        self.value = source.value;
        self.time = source.time;
    }
}

impl Exemplar {
    /// The label pairs, rendered and escaped as in a label set (`k="v",k2="v2"`).
    pub fn labels(&self) -> &str {
        // Rendered from `&str`s with ASCII escapes: the fallback never runs.
        std::str::from_utf8(&self.labels).unwrap_or_default()
    }

    /// The observed value (for a counter, the increment).
    pub fn value(&self) -> f64 {
        self.value
    }

    /// When it was observed.
    pub fn time(&self) -> SystemTime {
        self.time
    }

    /// Overwrites this exemplar, reusing its label buffer: a warm slot allocates
    /// nothing.
    fn set(&mut self, labels: &[(&str, &str)], value: f64, time: SystemTime) {
        self.labels.clear();
        render(&mut self.labels, labels);
        self.value = value;
        self.time = time;
    }

    fn new(labels: &[(&str, &str)], value: f64, time: SystemTime) -> Exemplar {
        let mut e = Exemplar {
            labels: Vec::new(),
            value,
            time,
        };
        e.set(labels, value, time);
        e
    }
}

/// Appends `k="v",k2="v2"`, escaped.
fn render(out: &mut Vec<u8>, labels: &[(&str, &str)]) {
    for (i, (name, value)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"=\"");
        write_label_value(out, value);
        out.push(b'"');
    }
}

/// The exemplars of one series.
#[derive(Debug)]
pub(crate) struct ExemplarStore {
    held: Mutex<ExemplarsHeld>,
}

/// What a series's exemplar store holds, as a scrape reads it (locked).
#[derive(Debug)]
pub struct ExemplarsHeld {
    /// One per classic bucket (`+Inf` last), or the one of a counter.
    classic: Box<[Option<Exemplar>]>,
    /// The native set, in the order stored.
    native: Vec<Exemplar>,
    /// The most the native set holds (0: none).
    native_max: usize,
}

impl ExemplarsHeld {
    /// One per classic bucket, `+Inf` last (a counter's alone).
    pub fn classic(&self) -> &[Option<Exemplar>] {
        &self.classic
    }

    /// The native set (each has a timestamp).
    pub fn native(&self) -> &[Exemplar] {
        &self.native
    }
}

impl ExemplarStore {
    /// A store for `classic` buckets (1 for a counter) and up to `native_max` native
    /// exemplars.
    pub(crate) fn new(classic: usize, native_max: usize) -> ExemplarStore {
        ExemplarStore {
            held: Mutex::new(ExemplarsHeld {
                classic: (0..classic).map(|_| None).collect(),
                native: Vec::new(),
                native_max,
            }),
        }
    }

    /// Stores an exemplar of `value` (checked labels) for classic bucket `bucket`, and
    /// in the native set. Gives it up when another thread holds the store (a scrape,
    /// or another exemplar being stored): never waits.
    ///
    /// The native set, when full, replaces its oldest exemplar if that is older than
    /// [`NATIVE_EXEMPLAR_TTL`], else the one nearest in value to the new one: recent
    /// exemplars spread over the values seen, as client_golang keeps them.
    pub(crate) fn offer(&self, bucket: usize, labels: &[(&str, &str)], value: f64) {
        let mut held = match self.held.try_lock() {
            Ok(held) => held,
            // A holder that panicked left whole exemplars (each is replaced whole).
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return,
        };
        let time = SystemTime::now();
        let held = &mut *held;
        let Some(slot) = held.classic.get_mut(bucket) else {
            return;
        };
        let classic = match slot {
            Some(e) => {
                e.set(labels, value, time);
                e
            }
            None => slot.insert(Exemplar::new(labels, value, time)),
        };
        if held.native_max == 0 {
            return;
        }
        // The native copy takes the rendered labels from the classic one: a copy of
        // bytes instead of escaping them again, into a buffer already large enough
        // once the set is warm.
        if held.native.len() < held.native_max {
            held.native.push(classic.clone());
            return;
        }
        let native = &mut held.native;
        let oldest = (0..native.len()).min_by_key(|&i| native[i].time);
        let expired = oldest.filter(|&i| {
            time.duration_since(native[i].time)
                .is_ok_and(|age| age > NATIVE_EXEMPLAR_TTL)
        });
        let victim = expired.or_else(|| {
            (0..native.len()).min_by(|&a, &b| {
                let (da, db) = (
                    (native[a].value - value).abs(),
                    (native[b].value - value).abs(),
                );
                da.total_cmp(&db)
            })
        });
        if let Some(i) = victim {
            native[i].clone_from(classic);
        }
    }

    /// Locks the store for a scrape (waiting for a writer, which holds it for a few
    /// hundred nanoseconds at most).
    pub(crate) fn read(&self) -> MutexGuard<'_, ExemplarsHeld> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_counts_characters_not_bytes() {
        // 64 two-byte characters: 128 bytes but 64 characters, plus the name.
        let wide = "é".repeat(64);
        assert!(check_exemplar_labels(&[("a", &wide)]).is_ok());
        let exact = "x".repeat(MAX_EXEMPLAR_CHARS - 8);
        assert!(check_exemplar_labels(&[("trace_id", &exact)]).is_ok());
        let over = "x".repeat(MAX_EXEMPLAR_CHARS - 7);
        assert_eq!(
            check_exemplar_labels(&[("trace_id", &over)]),
            Err(MetricError::ExemplarTooLong(129))
        );
        assert!(check_exemplar_labels(&[]).is_ok());
        assert!(matches!(
            check_exemplar_labels(&[("", "1")]),
            Err(MetricError::InvalidLabelName(_))
        ));
        assert!(matches!(
            check_exemplar_labels(&[("a", "1"), ("a", "2")]),
            Err(MetricError::DuplicateLabelName(_))
        ));
        let many: Vec<(String, &str)> = (0..12).map(|i| (format!("l{i}"), "v")).collect();
        let many: Vec<(&str, &str)> = many.iter().map(|(n, v)| (n.as_str(), *v)).collect();
        assert!(check_exemplar_labels(&many).is_ok());
    }

    #[test]
    fn classic_slots_keep_the_latest_and_escape_values() {
        let store = ExemplarStore::new(3, 0);
        store.offer(1, &[("id", "a")], 0.5);
        store.offer(1, &[("id", "b\"\n")], 0.6);
        store.offer(7, &[("id", "out of range")], 9.0);
        let held = store.read();
        assert_eq!(held.classic()[0], None);
        let e = held.classic()[1].as_ref().unwrap();
        assert_eq!((e.labels(), e.value()), ("id=\"b\\\"\\n\"", 0.6));
        assert!(held.native().is_empty());
    }

    #[test]
    fn a_held_store_drops_the_exemplar_without_waiting() {
        let store = ExemplarStore::new(1, 2);
        let held = store.read();
        std::thread::scope(|s| {
            s.spawn(|| store.offer(0, &[("id", "x")], 1.0))
                .join()
                .unwrap();
        });
        assert!(held.classic()[0].is_none() && held.native().is_empty());
    }

    #[test]
    fn the_native_set_is_bounded_and_replaces_the_nearest_value() {
        let store = ExemplarStore::new(1, 3);
        for (i, v) in [0.001, 0.1, 10.0, 0.11, 9.0].iter().enumerate() {
            store.offer(0, &[("i", &i.to_string())], *v);
        }
        let held = store.read();
        let mut values: Vec<f64> = held.native().iter().map(Exemplar::value).collect();
        values.sort_by(f64::total_cmp);
        assert_eq!(values, [0.001, 0.11, 9.0], "the spread of values is kept");
    }

    #[test]
    fn an_expired_native_exemplar_goes_first() {
        let store = ExemplarStore::new(1, 2);
        store.offer(0, &[("i", "old")], 1.0);
        store.offer(0, &[("i", "new")], 5.0);
        {
            let mut held = store.read();
            held.native[0].time = SystemTime::now() - NATIVE_EXEMPLAR_TTL * 2;
        }
        store.offer(0, &[("i", "newest")], 5.1);
        let held = store.read();
        let labels: Vec<&str> = held.native().iter().map(Exemplar::labels).collect();
        assert_eq!(labels, ["i=\"newest\"", "i=\"new\""]);
    }
}
