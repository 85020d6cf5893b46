//! [`Family`]: a metric with labels whose values are only known at run time.
//!
//! Series are kept in a vector sorted by label values, so a lookup is a binary search
//! with no hashing and no allocation, and a scrape renders series in a deterministic
//! order. Each series renders its label pairs once, when it is created. A family is
//! bounded: past `max_series` distinct label sets, lookups fail instead of growing
//! memory without limit (an exporter must not let its input decide its size).
//!
//! For labels whose values are all known up front (HTTP method, route, status code),
//! [`crate::metrics::IndexedFamily`] is faster still: an index, no comparison.

use std::cmp::Ordering;
use std::sync::{Arc, RwLock};

use super::name::validate_label_names;
use super::{Metric, MetricError, TypedMetric};
use crate::exposition::values::render_label_pairs;
use crate::exposition::{Encoder, MetricKind};

/// The default bound on distinct label sets per family.
///
/// ```
/// use tinyprom::metrics::{Counter, Family, DEFAULT_MAX_SERIES};
/// let f: Family<Counter> = Family::new(&["user"]).unwrap().with_max_series(2);
/// assert!(DEFAULT_MAX_SERIES > 2);
/// f.with_label_values(&["a"]).unwrap();
/// f.with_label_values(&["b"]).unwrap();
/// assert!(f.with_label_values(&["c"]).is_err(), "full: no unbounded growth");
/// ```
pub const DEFAULT_MAX_SERIES: usize = 10_000;

/// A family of metrics of one type, one series per distinct set of label values.
///
/// ```
/// use tinyprom::metrics::{Counter, Family, Registry};
/// let registry = Registry::new();
/// let jobs: Family<Counter> = Family::new(&["queue"]).unwrap();
/// registry.register("jobs_total", "Jobs run.", jobs.clone()).unwrap();
/// jobs.with_label_values(&["mail"]).unwrap().inc();
/// assert!(registry.render_text().contains("jobs_total{queue=\"mail\"} 1\n"));
/// ```
pub struct Family<M> {
    inner: Arc<Inner<M>>,
}

impl<M> Clone for Family<M> {
    fn clone(&self) -> Self {
        Family {
            inner: Arc::clone(&self.inner),
        }
    }
}

type Constructor<M> = Box<dyn Fn() -> M + Send + Sync>;

struct Inner<M> {
    label_names: Box<[Box<str>]>,
    series: RwLock<Vec<Series<M>>>,
    make: Constructor<M>,
    max_series: usize,
}

struct Series<M> {
    values: Box<[Box<str>]>,
    labels: Box<str>,
    metric: M,
}

impl<M: Default + Clone + Send + Sync + 'static> Family<M> {
    /// A family with the given label names whose series start as `M::default()`.
    pub fn new(label_names: &[&str]) -> Result<Self, MetricError> {
        Family::with_constructor(label_names, M::default)
    }
}

impl<M: Clone + Send + Sync + 'static> Family<M> {
    /// A family whose series are made by `make` (for histograms, a closure that shares
    /// the bucket bounds: `move || Histogram::with_buckets(buckets.clone())`).
    pub fn with_constructor(
        label_names: &[&str],
        make: impl Fn() -> M + Send + Sync + 'static,
    ) -> Result<Self, MetricError> {
        validate_label_names(label_names)?;
        Ok(Family {
            inner: Arc::new(Inner {
                label_names: label_names.iter().map(|n| Box::from(*n)).collect(),
                series: RwLock::new(Vec::new()),
                make: Box::new(make),
                max_series: DEFAULT_MAX_SERIES,
            }),
        })
    }

    /// Sets the bound on distinct label sets (default [`DEFAULT_MAX_SERIES`]). Only
    /// takes effect before the family is shared.
    pub fn with_max_series(mut self, max_series: usize) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.max_series = max_series;
        }
        self
    }

    /// The label names, in order.
    pub fn label_names(&self) -> impl Iterator<Item = &str> {
        self.inner.label_names.iter().map(|n| &**n)
    }

    /// The series for these label values (in label-name order), created on first use.
    /// Returns a handle to keep and reuse: repeated lookups cost a binary search.
    ///
    /// Fails when the number of values is wrong or the family is full.
    pub fn with_label_values(&self, values: &[&str]) -> Result<M, MetricError> {
        let expected = self.inner.label_names.len();
        if values.len() != expected {
            return Err(MetricError::LabelCount {
                expected,
                got: values.len(),
            });
        }
        {
            let series = self.read();
            if let Ok(i) = series.binary_search_by(|s| compare(&s.values, values)) {
                return Ok(series[i].metric.clone());
            }
        }
        let mut series = self.write();
        match series.binary_search_by(|s| compare(&s.values, values)) {
            Ok(i) => Ok(series[i].metric.clone()),
            Err(_) if series.len() >= self.inner.max_series => {
                Err(MetricError::TooManySeries(self.inner.max_series))
            }
            Err(i) => {
                let metric = (self.inner.make)();
                series.insert(
                    i,
                    Series {
                        values: values.iter().map(|v| Box::from(*v)).collect(),
                        labels: render_label_pairs(&self.inner.label_names, values).into(),
                        metric: metric.clone(),
                    },
                );
                Ok(metric)
            }
        }
    }

    /// Removes the series with these label values; returns whether it existed.
    pub fn remove(&self, values: &[&str]) -> bool {
        let mut series = self.write();
        match series.binary_search_by(|s| compare(&s.values, values)) {
            Ok(i) => {
                series.remove(i);
                true
            }
            Err(_) => false,
        }
    }

    /// The number of series.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// True when no series has been created.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Vec<Series<M>>> {
        // See `read` on poisoning.
        self.inner
            .series
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<Series<M>>> {
        // Poisoning cannot leave the vector half-updated (insert/remove do not panic
        // midway), so a poisoned lock is still usable.
        self.inner
            .series
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn compare(have: &[Box<str>], want: &[&str]) -> Ordering {
    have.iter().map(|v| &**v).cmp(want.iter().copied())
}

impl<M: TypedMetric + Clone> Metric for Family<M> {
    fn kind(&self) -> MetricKind {
        M::KIND
    }

    fn encode(&self, name: &str, _labels: &str, enc: &mut Encoder<'_>) {
        for series in self.read().iter() {
            series.metric.encode(name, &series.labels, enc);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Counter, Histogram, Registry};

    #[test]
    fn sorted_and_deduplicated() {
        let f: Family<Counter> = Family::new(&["a", "b"]).unwrap();
        f.with_label_values(&["z", "1"]).unwrap().inc();
        f.with_label_values(&["a", "2"]).unwrap().inc();
        f.with_label_values(&["z", "1"]).unwrap().inc();
        assert_eq!(f.len(), 2);
        let r = Registry::new();
        r.register("c_total", "C.", f.clone()).unwrap();
        assert_eq!(
            r.render_text(),
            "# HELP c_total C.\n# TYPE c_total counter\nc_total{a=\"a\",b=\"2\"} 1\nc_total{a=\"z\",b=\"1\"} 2\n"
        );
        assert!(f.remove(&["a", "2"]));
        assert!(!f.remove(&["a", "2"]));
    }

    #[test]
    fn label_count_and_bounds() {
        let f: Family<Counter> = Family::new(&["a"]).unwrap().with_max_series(2);
        assert_eq!(
            f.with_label_values(&["x", "y"]).unwrap_err(),
            MetricError::LabelCount {
                expected: 1,
                got: 2
            }
        );
        f.with_label_values(&["1"]).unwrap();
        f.with_label_values(&["2"]).unwrap();
        assert_eq!(
            f.with_label_values(&["3"]).unwrap_err(),
            MetricError::TooManySeries(2)
        );
        assert!(f.with_label_values(&["1"]).is_ok());
        assert!(Family::<Counter>::new(&["le"]).is_err());
    }

    #[test]
    fn histogram_family_escapes_labels() {
        let buckets = crate::metrics::Buckets::new(&[1.0]).unwrap();
        let f =
            Family::with_constructor(&["path"], move || Histogram::with_buckets(buckets.clone()))
                .unwrap();
        f.with_label_values(&["a\"b\\c\nd"]).unwrap().observe(0.5);
        let r = Registry::new();
        r.register("h_seconds", "H.", f).unwrap();
        assert!(
            r.render_text()
                .contains("h_seconds_bucket{path=\"a\\\"b\\\\c\\nd\",le=\"1\"} 1\n")
        );
    }
}
