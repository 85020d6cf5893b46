//! A [`metrics`] recorder backed by a tinyprom [`Registry`] (cargo feature
//! `metrics-facade`, off by default).
//!
//! Code instrumented with the `metrics` crate's macros (`counter!`, `gauge!`,
//! `histogram!`, `describe_*!`) is exported by tinyprom once a [`FacadeRecorder`] is
//! installed: each metric name becomes a family in the registry, each label set a
//! series of it, and the registry renders them with everything else it holds (text,
//! OpenMetrics, protobuf; served by [`crate::http::Server`]'s `/metrics`).
//!
//! * Counters are [`Counter`]s, gauges [`Gauge`]s, histograms [`Histogram`]s with the
//!   buckets the [`FacadeBuilder`] configures (per name if wanted) and, on request,
//!   native buckets as well.
//! * `describe_*` gives the family's HELP text and unit, whenever it comes.
//! * Label sets are bounded as [`Family`] bounds them ([`DEFAULT_MAX_SERIES`] per name
//!   unless configured), and so are names ([`MAX_FAMILIES`]). A label set past the
//!   bound, a name used with two kinds or two sets of label names, or a name the
//!   registry refuses gets a handle that does nothing; [`FacadeRecorder::refused`]
//!   counts them. Nothing the instrumented code passes makes the recorder panic.
//! * Names are made valid Prometheus names (`http.requests` becomes
//!   `http_requests`); a family's label names are sorted.
//!
//! Each macro call asks the recorder for its handle. Once a series exists that is a
//! lock-free probe of an index by the key's precomputed hash, and the observation is
//! the tinyprom metric's own (for a histogram, plain stores on the thread that owns
//! the series).
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use tinyprom::exposition::Format;
//! use tinyprom::facade::FacadeRecorder;
//! use tinyprom::metrics::{NativeOptions, Registry};
//!
//! let registry = Arc::new(Registry::new());
//! let recorder = FacadeRecorder::builder(Arc::clone(&registry))
//!     .buckets(&[0.01, 0.1, 1.0])
//!     .native_for("work_duration_seconds", NativeOptions::new())
//!     .build()
//!     .unwrap();
//! // A program calls `recorder.install()` once; a test can scope it instead.
//! metrics::with_local_recorder(&recorder, || {
//!     metrics::describe_counter!("work_total", "Work done.");
//!     metrics::counter!("work_total", "kind" => "demo").increment(2);
//!     metrics::histogram!("work_duration_seconds").record(0.05);
//!     metrics::gauge!("queue_depth").set(3.0);
//! });
//! let text = registry.render(Format::Text);
//! assert!(text.contains("# HELP work_total Work done.\n# TYPE work_total counter\n"));
//! assert!(text.contains("work_total{kind=\"demo\"} 2\n"));
//! assert!(text.contains("work_duration_seconds_bucket{le=\"0.1\"} 1\n"));
//! assert!(text.contains("queue_depth 3\n"));
//! assert_eq!(recorder.refused(), 0);
//! ```

mod family;
mod index;
mod name;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use ::metrics::{Key, KeyName, Metadata, SetRecorderError, SharedString, Unit};

use crate::metrics::{
    Buckets, Counter, DEFAULT_MAX_SERIES, Family, Gauge, Histogram, MetricError, NativeOptions,
    Registry,
};
use family::{
    CounterHandle, Description, FamilyCollector, GaugeHandle, HistogramHandle, Kinded,
    SharedDescription,
};
use index::Index;

/// Distinct metric names a recorder exports at most; further names are refused.
pub const MAX_FAMILIES: usize = 1_000;

/// The classic bucket bounds of a histogram nothing else was configured for: the
/// Prometheus clients' defaults, in seconds.
pub const DEFAULT_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A [`metrics::Recorder`] that keeps every metric in a tinyprom
/// [`Registry`]. Cheap to clone: clones share everything.
///
/// ```
/// use std::sync::Arc;
/// use tinyprom::facade::FacadeRecorder;
/// use tinyprom::metrics::Registry;
///
/// let registry = Arc::new(Registry::new());
/// let recorder = FacadeRecorder::new(Arc::clone(&registry));
/// metrics::with_local_recorder(&recorder, || {
///     metrics::counter!("jobs_total", "queue" => "mail").increment(1);
/// });
/// assert!(registry.render_text().contains("jobs_total{queue=\"mail\"} 1\n"));
/// ```
#[derive(Clone)]
pub struct FacadeRecorder {
    shared: Arc<Shared>,
}

struct Shared {
    registry: Arc<Registry>,
    config: Config,
    counters: Index<Arc<CounterHandle>>,
    gauges: Index<Arc<GaugeHandle>>,
    histograms: Index<Arc<HistogramHandle>>,
    /// Families and descriptions; taken on a series' first use and by `describe_*`,
    /// never by a lookup the index answers.
    state: Mutex<State>,
    refused: AtomicU64,
}

#[derive(Default)]
struct State {
    /// By exported name; `None` for a name the registry refused.
    families: HashMap<String, Option<Known>>,
    /// By exported name: one per family, and at most [`MAX_FAMILIES`] of names
    /// described but not (yet) used.
    descriptions: HashMap<String, SharedDescription>,
}

struct Known {
    /// Sorted, as exported.
    label_names: Vec<String>,
    family: Kinded,
}

struct Config {
    default: Arc<Buckets>,
    /// Histograms configured by name (the name as the code writes it, or as exported).
    by_name: HashMap<String, Arc<Buckets>>,
    max_series: usize,
}

/// Configures a [`FacadeRecorder`]: histogram buckets (for all histograms or per
/// name), native buckets on request, the bound on label sets per name.
///
/// ```
/// use std::sync::Arc;
/// use tinyprom::facade::FacadeRecorder;
/// use tinyprom::metrics::{NativeOptions, Registry};
///
/// let recorder = FacadeRecorder::builder(Arc::new(Registry::new()))
///     .buckets(&[0.1, 1.0])
///     .buckets_for("payload_bytes", &[1024.0, 65536.0])
///     .native(NativeOptions::new())
///     .max_series(100)
///     .build()
///     .unwrap();
/// assert!(FacadeRecorder::builder(Arc::new(Registry::new())).buckets(&[2.0, 1.0]).build().is_err());
/// # drop(recorder);
/// ```
pub struct FacadeBuilder {
    registry: Arc<Registry>,
    bounds: Vec<f64>,
    native: Option<NativeOptions>,
    bounds_for: Vec<(String, Vec<f64>)>,
    native_for: Vec<(String, NativeOptions)>,
    max_series: usize,
}

impl FacadeBuilder {
    /// The classic bucket bounds of every histogram not configured by name (default
    /// [`DEFAULT_BUCKETS`]).
    pub fn buckets(mut self, bounds: &[f64]) -> Self {
        self.bounds = bounds.to_vec();
        self
    }

    /// The classic bucket bounds of the histogram `name`.
    pub fn buckets_for(mut self, name: &str, bounds: &[f64]) -> Self {
        self.bounds_for.push((name.to_string(), bounds.to_vec()));
        self
    }

    /// Every histogram not configured by name also keeps native buckets (exposed in
    /// protobuf, for Prometheus' native histograms).
    pub fn native(mut self, options: NativeOptions) -> Self {
        self.native = Some(options);
        self
    }

    /// The histogram `name` also keeps native buckets.
    pub fn native_for(mut self, name: &str, options: NativeOptions) -> Self {
        self.native_for.push((name.to_string(), options));
        self
    }

    /// Label sets per metric name at most (default [`DEFAULT_MAX_SERIES`]).
    pub fn max_series(mut self, max_series: usize) -> Self {
        self.max_series = max_series;
        self
    }

    /// The recorder; fails when a bucket configuration is invalid.
    pub fn build(self) -> Result<FacadeRecorder, MetricError> {
        let make = |bounds: &[f64], native: Option<NativeOptions>| match native {
            Some(options) => Buckets::with_native(bounds, options),
            None => Buckets::new(bounds),
        };
        let default = make(&self.bounds, self.native)?;
        let mut by_name = HashMap::new();
        let names = (self.bounds_for.iter().map(|(name, _)| name))
            .chain(self.native_for.iter().map(|(name, _)| name));
        for name in names {
            if by_name.contains_key(name.as_str()) {
                continue;
            }
            // The last setting for a name wins, as with every builder call.
            let bounds = self
                .bounds_for
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map_or(&self.bounds, |(_, b)| b);
            let native = self
                .native_for
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map(|(_, o)| *o)
                .or(self.native);
            by_name.insert(name.clone(), make(bounds, native)?);
        }
        Ok(FacadeRecorder {
            shared: Arc::new(Shared {
                registry: self.registry,
                config: Config {
                    default,
                    by_name,
                    max_series: self.max_series,
                },
                counters: Index::default(),
                gauges: Index::default(),
                histograms: Index::default(),
                state: Mutex::new(State::default()),
                refused: AtomicU64::new(0),
            }),
        })
    }
}

impl FacadeRecorder {
    /// A recorder into `registry` with the defaults: [`DEFAULT_BUCKETS`], no native
    /// buckets, [`DEFAULT_MAX_SERIES`] label sets per name.
    pub fn new(registry: Arc<Registry>) -> FacadeRecorder {
        FacadeRecorder::builder(registry)
            .build()
            .expect("the default buckets are valid")
    }

    /// A builder for a recorder into `registry`.
    pub fn builder(registry: Arc<Registry>) -> FacadeBuilder {
        FacadeBuilder {
            registry,
            bounds: DEFAULT_BUCKETS.to_vec(),
            native: None,
            bounds_for: Vec::new(),
            native_for: Vec::new(),
            max_series: DEFAULT_MAX_SERIES,
        }
    }

    /// Installs this recorder as the `metrics` crate's global recorder (once per
    /// process; the error hands the recorder back if one is installed already).
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// use tinyprom::facade::FacadeRecorder;
    /// use tinyprom::metrics::Registry;
    ///
    /// let registry = Arc::new(Registry::new());
    /// FacadeRecorder::new(Arc::clone(&registry)).install().unwrap();
    /// metrics::counter!("started_total").increment(1);
    /// ```
    pub fn install(self) -> Result<(), SetRecorderError<FacadeRecorder>> {
        ::metrics::set_global_recorder(self)
    }

    /// The registry the metrics are kept in.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.shared.registry
    }

    /// How many times a handle that does nothing was given out: a label set past the
    /// bound, a name used with two kinds or two sets of label names, or a name the
    /// registry refused.
    pub fn refused(&self) -> u64 {
        // Relaxed: a statistic, read alone.
        self.shared.refused.load(Ordering::Relaxed)
    }

    fn describe(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        let name = name::metric(key.as_str());
        let unit = unit.and_then(|u| match u {
            // A count has no unit word in Prometheus names.
            Unit::Count => None,
            u => Some(u.as_str()),
        });
        let mut state = self.shared.lock();
        // Bounded like the families: a description of a name never used is kept
        // only while there is room.
        if state.descriptions.len() >= MAX_FAMILIES && !state.descriptions.contains_key(&name) {
            return;
        }
        let shared = state.descriptions.entry(name).or_default();
        *shared.write().unwrap_or_else(|p| p.into_inner()) = Description {
            help: description.into_owned(),
            unit,
        };
    }

    /// The series of `key` of kind `K`, created on first use; `None` when refused.
    fn series<K: Kind>(&self, key: &Key) -> Option<Arc<K>> {
        if let Some(handle) = K::index(&self.shared).get(key) {
            return Some(Arc::clone(handle));
        }
        let found = self.create::<K>(key);
        if found.is_none() {
            // Relaxed: a statistic.
            self.shared.refused.fetch_add(1, Ordering::Relaxed);
        }
        found
    }

    #[cold]
    fn create<K: Kind>(&self, key: &Key) -> Option<Arc<K>> {
        let shared = &*self.shared;
        let mut state = shared.lock();
        // Another thread may have created it since the lookup.
        if let Some(handle) = K::index(shared).get(key) {
            return Some(Arc::clone(handle));
        }
        let name = name::metric(key.name());
        let mut labels: Vec<(String, &str)> = key
            .labels()
            .map(|l| (name::label(l.key()), l.value()))
            .collect();
        labels.sort();
        if !state.families.contains_key(&name) {
            if state.families.len() >= MAX_FAMILIES {
                return None;
            }
            let known = self.new_family::<K>(&mut state, key.name(), &name, &labels);
            state.families.insert(name.clone(), known);
        }
        let known = state.families.get(&name)?.as_ref()?;
        if !known.label_names.iter().eq(labels.iter().map(|(n, _)| n)) {
            return None;
        }
        let values: Vec<&str> = labels.iter().map(|(_, v)| *v).collect();
        let handle = Arc::new(K::series(&known.family, &values)?);
        K::index(shared).insert(key, Arc::clone(&handle));
        Some(handle)
    }

    /// Creates and registers the family `name` of kind `K`; `None` if refused.
    fn new_family<K: Kind>(
        &self,
        state: &mut State,
        written: &str,
        name: &str,
        labels: &[(String, &str)],
    ) -> Option<Known> {
        let config = &self.shared.config;
        let label_names: Vec<String> = labels.iter().map(|(n, _)| n.clone()).collect();
        let names: Vec<&str> = label_names.iter().map(String::as_str).collect();
        let family = K::family(config, written, name, &names).ok()?;
        let description = Arc::clone(state.descriptions.entry(name.to_string()).or_default());
        let collector = FamilyCollector {
            name: name.to_string(),
            description,
            family: family.clone(),
        };
        self.shared.registry.register_collector(collector).ok()?;
        Some(Known {
            label_names,
            family,
        })
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Every change to the state is one insert, complete or not made: a poisoned
        // lock still guards a consistent state.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What differs between counters, gauges and histograms on the way from a key to a
/// handle.
trait Kind: Sized {
    fn index(shared: &Shared) -> &Index<Arc<Self>>;
    /// A new, empty family of this kind.
    fn family(
        config: &Config,
        written: &str,
        name: &str,
        label_names: &[&str],
    ) -> Result<Kinded, MetricError>;
    /// The handle of the series with `values` in `family`; `None` if `family` is of
    /// another kind or full.
    fn series(family: &Kinded, values: &[&str]) -> Option<Self>;
}

impl Kind for CounterHandle {
    fn index(shared: &Shared) -> &Index<Arc<Self>> {
        &shared.counters
    }

    fn family(config: &Config, _: &str, _: &str, names: &[&str]) -> Result<Kinded, MetricError> {
        let family = Family::<Counter>::new(names)?.with_max_series(config.max_series);
        Ok(Kinded::Counter(family))
    }

    fn series(family: &Kinded, values: &[&str]) -> Option<Self> {
        match family {
            Kinded::Counter(f) => f.with_label_values(values).ok().map(CounterHandle),
            _ => None,
        }
    }
}

impl Kind for GaugeHandle {
    fn index(shared: &Shared) -> &Index<Arc<Self>> {
        &shared.gauges
    }

    fn family(config: &Config, _: &str, _: &str, names: &[&str]) -> Result<Kinded, MetricError> {
        let family = Family::<Gauge>::new(names)?.with_max_series(config.max_series);
        Ok(Kinded::Gauge(family))
    }

    fn series(family: &Kinded, values: &[&str]) -> Option<Self> {
        match family {
            Kinded::Gauge(f) => f.with_label_values(values).ok().map(GaugeHandle),
            _ => None,
        }
    }
}

impl Kind for HistogramHandle {
    fn index(shared: &Shared) -> &Index<Arc<Self>> {
        &shared.histograms
    }

    fn family(
        config: &Config,
        written: &str,
        name: &str,
        names: &[&str],
    ) -> Result<Kinded, MetricError> {
        let buckets = config
            .by_name
            .get(written)
            .or_else(|| config.by_name.get(name))
            .unwrap_or(&config.default)
            .clone();
        let family =
            Family::with_constructor(names, move || Histogram::with_buckets(Arc::clone(&buckets)))?
                .with_max_series(config.max_series);
        Ok(Kinded::Histogram(family))
    }

    fn series(family: &Kinded, values: &[&str]) -> Option<Self> {
        match family {
            Kinded::Histogram(f) => f.with_label_values(values).ok().map(HistogramHandle),
            _ => None,
        }
    }
}

impl ::metrics::Recorder for FacadeRecorder {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(key, unit, description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(key, unit, description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(key, unit, description);
    }

    #[inline]
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> ::metrics::Counter {
        match self.series::<CounterHandle>(key) {
            Some(handle) => ::metrics::Counter::from_arc(handle),
            None => ::metrics::Counter::noop(),
        }
    }

    #[inline]
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> ::metrics::Gauge {
        match self.series::<GaugeHandle>(key) {
            Some(handle) => ::metrics::Gauge::from_arc(handle),
            None => ::metrics::Gauge::noop(),
        }
    }

    #[inline]
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> ::metrics::Histogram {
        match self.series::<HistogramHandle>(key) {
            Some(handle) => ::metrics::Histogram::from_arc(handle),
            None => ::metrics::Histogram::noop(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::Format;

    fn recorder(builder: impl FnOnce(FacadeBuilder) -> FacadeBuilder) -> FacadeRecorder {
        builder(FacadeRecorder::builder(Arc::new(Registry::new())))
            .build()
            .unwrap()
    }

    #[test]
    fn a_description_after_first_use_still_gives_help_and_unit() {
        let r = recorder(|b| b.buckets(&[1.0]));
        ::metrics::with_local_recorder(&r, || {
            ::metrics::histogram!("io_bytes", "dir" => "in").record(3.0);
            ::metrics::describe_histogram!("io_bytes", ::metrics::Unit::Bytes, "I/O sizes.");
            ::metrics::describe_counter!("never_used_total", "Not registered.");
        });
        let om = r.registry().render(Format::OpenMetrics);
        assert!(
            om.starts_with(
                "# TYPE io_bytes histogram\n# UNIT io_bytes bytes\n# HELP io_bytes I/O sizes.\n\
                 io_bytes_bucket{dir=\"in\",le=\"1.0\"} 0\n"
            ),
            "{om}"
        );
        assert!(
            !om.contains("never_used"),
            "a description alone exports nothing"
        );
    }

    #[test]
    fn descriptions_of_unused_names_are_bounded() {
        let r = recorder(|b| b);
        ::metrics::with_local_recorder(&r, || {
            for i in 0..MAX_FAMILIES + 10 {
                ::metrics::describe_gauge!(format!("g{i}"), "A gauge.");
            }
        });
        assert_eq!(r.shared.lock().descriptions.len(), MAX_FAMILIES);
        assert!(r.registry().render_text().is_empty());
    }

    #[test]
    fn labels_are_sorted_and_their_order_in_the_call_does_not_matter() {
        let r = recorder(|b| b);
        ::metrics::with_local_recorder(&r, || {
            ::metrics::counter!("hits_total", "b" => "2", "a" => "1").increment(1);
            ::metrics::counter!("hits_total", "a" => "1", "b" => "2").increment(1);
            let dynamic = String::from("1");
            ::metrics::counter!("hits_total", "a" => dynamic, "b" => "2").increment(1);
        });
        assert!(
            r.registry()
                .render_text()
                .contains("hits_total{a=\"1\",b=\"2\"} 3\n")
        );
    }

    #[test]
    fn bounds_conflicts_and_bad_names_give_handles_that_do_nothing() {
        let r = recorder(|b| b.max_series(2));
        ::metrics::with_local_recorder(&r, || {
            for user in ["a", "b", "c", "d"] {
                ::metrics::counter!("logins_total", "user" => user).increment(1);
            }
            // The same name with other label names, or as another kind.
            ::metrics::counter!("logins_total", "team" => "x").increment(1);
            ::metrics::gauge!("logins_total", "user" => "a").set(5.0);
            // Reserved even after sanitising.
            ::metrics::counter!("__secret").increment(1);
            ::metrics::counter!("ok_total", "le" => "1").increment(1);
        });
        let text = r.registry().render_text();
        assert!(text.contains("logins_total{user=\"a\"} 1\nlogins_total{user=\"b\"} 1\n"));
        assert!(
            !text.contains("user=\"c\"") && !text.contains("team") && !text.contains("__secret")
        );
        assert_eq!(r.refused(), 6, "{text}");
    }

    #[test]
    fn names_are_sanitised_and_histograms_take_their_configured_buckets() {
        let r = recorder(|b| {
            b.buckets(&[1.0])
                .buckets_for("db.query", &[0.5, 5.0])
                .native_for("rpc_seconds", NativeOptions::new())
        });
        ::metrics::with_local_recorder(&r, || {
            ::metrics::histogram!("db.query", "table-name" => "users").record(0.3);
            ::metrics::histogram!("rpc_seconds").record(0.3);
            ::metrics::histogram!("other_seconds").record(0.3);
            ::metrics::gauge!("temp").increment(2.5);
            ::metrics::gauge!("temp").decrement(1.0);
            ::metrics::counter!("total_total").absolute(7);
            ::metrics::counter!("total_total").absolute(3);
        });
        let text = r.registry().render_text();
        assert!(text.contains("db_query_bucket{table_name=\"users\",le=\"0.5\"} 1\n"));
        assert!(text.contains("other_seconds_bucket{le=\"1\"} 1\n"));
        assert!(text.contains("temp 1.5\n") && text.contains("total_total 7\n"));
        // Native buckets only where asked for.
        assert!(
            r.shared.config.by_name["rpc_seconds"]
                .native_options()
                .is_some()
        );
        assert!(
            r.shared.config.by_name["db.query"]
                .native_options()
                .is_none()
        );
        assert!(r.shared.config.default.native_options().is_none());
    }

    #[test]
    fn threads_share_series_and_the_totals_are_exact() {
        let r = recorder(|b| b.buckets(&[0.5]));
        std::thread::scope(|s| {
            for t in 0..4 {
                let r = r.clone();
                s.spawn(move || {
                    ::metrics::with_local_recorder(&r, || {
                        for i in 0..1_000 {
                            let kind = if i % 2 == 0 { "even" } else { "odd" };
                            ::metrics::counter!("ops_total", "kind" => kind).increment(1);
                            ::metrics::histogram!("op_seconds").record(f64::from(t) * 0.25);
                        }
                    })
                });
            }
        });
        let text = r.registry().render_text();
        assert!(text.contains("ops_total{kind=\"even\"} 2000\nops_total{kind=\"odd\"} 2000\n"));
        assert!(text.contains("op_seconds_bucket{le=\"0.5\"} 3000\n"));
        assert!(text.contains("op_seconds_count 4000\n"));
    }
}
