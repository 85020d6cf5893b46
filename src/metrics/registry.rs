//! [`Registry`]: the set of metric families one endpoint renders.
//!
//! Registration is where names are checked, so rendering never has to: a family name
//! must be valid and must not collide with another family's name or sample names
//! (`foo` histogram vs. `foo_count` gauge). Families render in registration order, which
//! makes the output deterministic and lets golden tests pin it byte for byte.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use super::name::validate_metric_name;
use super::{Metric, MetricError};
use crate::exposition::{Encoder, Escaping, Format, MetricKind, NameFilter};

/// A source of whole families with their own HELP/TYPE lines, computed at scrape time
/// (the process collector reads `/proc` this way): use it when one reading yields
/// several families, or when the set of series is only known at scrape time.
///
/// ```
/// use tinyprom::exposition::{Encoder, Format, MetricKind, render_label_pairs};
/// use tinyprom::metrics::{Collector, Registry};
///
/// struct Disks;
///
/// impl Collector for Disks {
///     fn families(&self) -> Vec<(String, MetricKind)> {
///         vec![("disk_free_bytes".into(), MetricKind::Gauge)]
///     }
///     fn encode(&self, enc: &mut Encoder<'_>) {
///         enc.family("disk_free_bytes", "Free space.", MetricKind::Gauge, Some("bytes"));
///         for (disk, free) in [("sda", 1e9), ("sdb", 2e9)] {
///             let labels = render_label_pairs(&["disk"], &[disk]);
///             enc.sample_f64("disk_free_bytes", "", &labels, free);
///         }
///     }
/// }
///
/// let registry = Registry::new();
/// registry.register_collector(Disks).unwrap();
/// assert!(registry.render(Format::OpenMetrics).contains(
///     "# UNIT disk_free_bytes bytes\n# HELP disk_free_bytes Free space.\ndisk_free_bytes{disk=\"sda\"} 1000000000\n"
/// ));
/// ```
pub trait Collector: Send + Sync {
    /// The families this collector writes: name and kind, for collision checks.
    fn families(&self) -> Vec<(String, MetricKind)>;
    /// Writes the families (headers and samples) into `enc`.
    fn encode(&self, enc: &mut Encoder<'_>);
}

enum Source {
    Metric {
        name: Box<str>,
        help: Box<str>,
        unit: Option<Box<str>>,
        metric: Box<dyn Metric>,
    },
    Collector(Box<dyn Collector>),
}

/// A set of metric families that renders as one scrape.
///
/// ```
/// use tinyprom::metrics::{Gauge, Registry};
/// let registry = Registry::new();
/// let temperature = Gauge::new();
/// registry.register("room_temperature_celsius", "Room temperature.", temperature.clone()).unwrap();
/// temperature.set(21.5);
/// assert_eq!(
///     registry.render_text(),
///     "# HELP room_temperature_celsius Room temperature.\n# TYPE room_temperature_celsius gauge\nroom_temperature_celsius 21.5\n",
/// );
/// // A second family with the same name is refused.
/// assert!(registry.register("room_temperature_celsius", "Again.", Gauge::new()).is_err());
/// ```
#[derive(Default)]
pub struct Registry {
    sources: RwLock<Vec<Source>>,
    /// Every sample name in use, for collision checks.
    names: RwLock<Vec<String>>,
    /// Whether OpenMetrics scrapes carry `_created` samples.
    openmetrics_created: AtomicBool,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether OpenMetrics scrapes carry `_created` samples: the start timestamps of
    /// counters, histograms and summaries. Off by default, as in client_golang (they
    /// double the sample count of counters); protobuf scrapes always carry start
    /// timestamps, text 0.0.4 never.
    ///
    /// ```
    /// use tinyprom::exposition::Format;
    /// use tinyprom::metrics::{Counter, Registry};
    /// let registry = Registry::new();
    /// registry.register("jobs_total", "Jobs run.", Counter::new()).unwrap();
    /// assert!(!registry.render(Format::OpenMetrics).contains("jobs_created"));
    /// registry.set_openmetrics_created(true);
    /// assert!(registry.render(Format::OpenMetrics).contains("\njobs_created "));
    /// assert!(!registry.render(Format::Text).contains("jobs_created"));
    /// ```
    pub fn set_openmetrics_created(&self, on: bool) {
        // Relaxed: a setting read by each scrape on its own; nothing is published
        // with it.
        self.openmetrics_created.store(on, Ordering::Relaxed);
    }

    /// Registers a metric (or family) under `name` with a HELP text.
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) -> Result<(), MetricError> {
        self.register_boxed(name, help, None, Box::new(metric))
    }

    /// Like [`Registry::register`], with a unit (`seconds`, `bytes`) that OpenMetrics
    /// output declares on a `# UNIT` line when `name` ends with `_<unit>`.
    pub fn register_with_unit(
        &self,
        name: &str,
        help: &str,
        unit: &str,
        metric: impl Metric,
    ) -> Result<(), MetricError> {
        self.register_boxed(name, help, Some(unit), Box::new(metric))
    }

    fn register_boxed(
        &self,
        name: &str,
        help: &str,
        unit: Option<&str>,
        metric: Box<dyn Metric>,
    ) -> Result<(), MetricError> {
        validate_metric_name(name)?;
        let name = registered_name(name, metric.kind());
        self.claim(&[(name.clone(), metric.kind())])?;
        self.write_sources().push(Source::Metric {
            name: name.into(),
            help: help.into(),
            unit: unit.map(Into::into),
            metric,
        });
        Ok(())
    }

    /// Registers a [`Collector`] that writes whole families at scrape time.
    pub fn register_collector(
        &self,
        collector: impl Collector + 'static,
    ) -> Result<(), MetricError> {
        let mut families = collector.families();
        for (name, kind) in &mut families {
            validate_metric_name(name)?;
            *name = registered_name(name, *kind);
        }
        self.claim(&families)?;
        self.write_sources()
            .push(Source::Collector(Box::new(collector)));
        Ok(())
    }

    /// Reserves every name `families` can put on the wire (see
    /// `MetricKind::reserved_names`), escaped forms included, or fails without
    /// reserving any.
    fn claim(&self, families: &[(String, MetricKind)]) -> Result<(), MetricError> {
        let mut names = self.names.write().unwrap_or_else(|p| p.into_inner());
        let mut wanted: Vec<(String, &str)> = Vec::new();
        for (name, kind) in families {
            // A name outside the legacy set also claims what it becomes under the
            // escaping schemes that can merge two names (`values` cannot): "a.b" and
            // "a_b" would be one family to a scraper that asks for `underscores`, as
            // Prometheus 2 does by not asking, and it would refuse the whole scrape.
            let mut forms = vec![name.clone()];
            for scheme in [Escaping::Underscores, Escaping::Dots] {
                let escaped = scheme.escape_metric_name(name).into_owned();
                if !forms.contains(&escaped) {
                    forms.push(escaped);
                }
            }
            for reserved in forms.iter().flat_map(|form| kind.reserved_names(form)) {
                if let Some((_, other)) = wanted.iter().find(|(w, _)| *w == reserved) {
                    if *other != name.as_str() {
                        return Err(MetricError::DuplicateMetric(name.clone()));
                    }
                    continue;
                }
                wanted.push((reserved, name));
            }
        }
        if let Some((_, family)) = wanted.iter().find(|(w, _)| names.contains(w)) {
            return Err(MetricError::DuplicateMetric(family.to_string()));
        }
        names.extend(wanted.into_iter().map(|(w, _)| w));
        Ok(())
    }

    fn write_sources(&self) -> std::sync::RwLockWriteGuard<'_, Vec<Source>> {
        self.sources.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends one complete scrape in `format` to `buf` (which it does not clear), so a
    /// server can reuse one buffer for every scrape.
    pub fn encode(&self, buf: &mut Vec<u8>, format: Format) {
        self.encode_scrape(buf, format, Escaping::default(), None);
    }

    /// Like [`Registry::encode`], with names outside the legacy set written by
    /// `escaping`, and only the families `filter` names when there is one (what
    /// [`crate::exposition::Scraper`] renders for a scrape).
    ///
    /// ```
    /// use tinyprom::exposition::{Escaping, Format, NameFilter};
    /// use tinyprom::metrics::{Gauge, Registry};
    /// let registry = Registry::new();
    /// registry.register("a", "A.", Gauge::new()).unwrap();
    /// registry.register("b.c", "B.", Gauge::new()).unwrap();
    /// let mut buf = Vec::new();
    /// let only_b = NameFilter::new(["b.c"]);
    /// registry.encode_scrape(&mut buf, Format::Text, Escaping::Dots, Some(&only_b));
    /// assert_eq!(buf, b"# HELP b_dot_c B.\n# TYPE b_dot_c gauge\nb_dot_c 0\n");
    /// ```
    pub fn encode_scrape(
        &self,
        buf: &mut Vec<u8>,
        format: Format,
        escaping: Escaping,
        filter: Option<&NameFilter>,
    ) {
        // Relaxed: see `set_openmetrics_created`.
        let created = self.openmetrics_created.load(Ordering::Relaxed);
        let mut enc = Encoder::new(buf, format)
            .escaping(escaping)
            .filter(filter)
            .openmetrics_created(created);
        let sources = self.sources.read().unwrap_or_else(|p| p.into_inner());
        for source in sources.iter() {
            match source {
                Source::Metric {
                    name,
                    help,
                    unit,
                    metric,
                } => {
                    if !enc.wants(name, metric.kind()) {
                        continue;
                    }
                    enc.family(name, help, metric.kind(), unit.as_deref());
                    metric.encode(name, "", &mut enc);
                }
                Source::Collector(collector) => collector.encode(&mut enc),
            }
        }
        enc.finish();
    }

    /// Renders a scrape in `format` into a new string (convenient in tests, examples
    /// and programs that ship the text elsewhere; a server should prefer
    /// [`Registry::encode`] with a reused buffer).
    ///
    /// ```
    /// use tinyprom::exposition::Format;
    /// use tinyprom::metrics::{Counter, Registry};
    /// let registry = Registry::new();
    /// registry.register("jobs_total", "Jobs run.", Counter::new()).unwrap();
    /// assert_eq!(
    ///     registry.render(Format::OpenMetrics),
    ///     "# TYPE jobs counter\n# HELP jobs Jobs run.\njobs_total 0\n# EOF\n",
    /// );
    /// ```
    ///
    /// Protobuf is binary: use [`Registry::render_bytes`] for it (here its non-UTF-8
    /// bytes would be replaced).
    pub fn render(&self, format: Format) -> String {
        String::from_utf8(self.render_bytes(format))
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }

    /// Renders a scrape in `format` into a new byte vector (any format, protobuf
    /// included).
    ///
    /// ```
    /// use tinyprom::exposition::Format;
    /// use tinyprom::metrics::{Counter, Registry};
    /// let registry = Registry::new();
    /// registry.register("jobs_total", "Jobs run.", Counter::new()).unwrap();
    /// let body = registry.render_bytes(Format::Protobuf);
    /// // One MetricFamily: its length, then the name (field 1, 10 bytes), help, type...
    /// assert_eq!(usize::from(body[0]), body.len() - 1);
    /// assert_eq!(&body[1..3], [0x0a, 10]);
    /// assert_eq!(&body[3..13], b"jobs_total");
    /// ```
    pub fn render_bytes(&self, format: Format) -> Vec<u8> {
        let mut buf = Vec::new();
        self.encode(&mut buf, format);
        buf
    }

    /// Renders a scrape in text format 0.0.4: `render(Format::Text)`.
    pub fn render_text(&self) -> String {
        self.render(Format::Text)
    }
}

/// The name a family is stored and rendered under: an info family always ends with
/// `_info` (its text 0.0.4 gauge and OpenMetrics sample name), whether or not it was
/// registered with it, so both formats expose the same series.
fn registered_name(name: &str, kind: MetricKind) -> String {
    if kind == MetricKind::Info && !name.ends_with("_info") {
        format!("{name}_info")
    } else {
        name.to_string()
    }
}

/// The process-wide default registry, created empty on first use.
///
/// Convenient when several parts of a program register metrics without passing a
/// registry around; hand it to [`crate::http::ServerBuilder::registry`] (it is an
/// `Arc`, so `.clone()` it) to serve it. Libraries should rather take a `&Registry`
/// from their caller, so that two of them cannot clash on a name by accident.
///
/// ```
/// use tinyprom::metrics::{default_registry, Counter};
/// let logins = Counter::new();
/// default_registry()
///     .register("doc_example_logins_total", "Logins.", logins.clone())
///     .unwrap();
/// logins.inc();
/// assert!(default_registry().render_text().contains("doc_example_logins_total 1\n"));
/// ```
pub fn default_registry() -> &'static Arc<Registry> {
    static DEFAULT: OnceLock<Arc<Registry>> = OnceLock::new();
    DEFAULT.get_or_init(|| Arc::new(Registry::new()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Counter, Gauge, Histogram, Info, Summary};

    #[test]
    fn invalid_names_are_refused() {
        let r = Registry::new();
        assert!(matches!(
            r.register("", "x", Counter::new()),
            Err(MetricError::InvalidMetricName(_))
        ));
        assert!(r.register("__reserved", "x", Counter::new()).is_err());
        assert!(r.register("bad\nname", "x", Counter::new()).is_err());
        // UTF-8 names are names, as in Prometheus 3.
        assert!(r.register("9.utf8_total", "x", Counter::new()).is_ok());
        assert!(r.register("ok_total", "x", Counter::new()).is_ok());
    }

    #[test]
    fn names_that_escape_alike_are_refused() {
        let r = Registry::new();
        r.register("a.b", "x", Gauge::new()).unwrap();
        assert!(r.register("a_b", "x", Gauge::new()).is_err());
        assert!(r.register("a-b", "x", Gauge::new()).is_err());
        r.register("c_d", "x", Gauge::new()).unwrap();
        assert!(r.register("c.d", "x", Gauge::new()).is_err());
        r.register("lat.seconds", "x", Histogram::new(&[1.0]).unwrap())
            .unwrap();
        assert!(r.register("lat_seconds_count", "x", Gauge::new()).is_err());
        // Distinct under every scheme: fine.
        r.register("e.f", "x", Gauge::new()).unwrap();
        r.register("e_dot_g", "x", Gauge::new()).unwrap();
    }

    #[test]
    fn colliding_sample_names_are_refused() {
        let r = Registry::new();
        r.register("req_seconds", "x", Histogram::new(&[1.0]).unwrap())
            .unwrap();
        assert!(r.register("req_seconds_count", "x", Gauge::new()).is_err());
        assert!(r.register("req_seconds", "x", Gauge::new()).is_err());
        r.register("jobs_total", "x", Counter::new()).unwrap();
        assert!(r.register("jobs", "x", Gauge::new()).is_err());
        assert!(r.register("other", "x", Gauge::new()).is_ok());
    }

    /// Names strict OpenMetrics parsers reserve are refused too: `_created` of counters,
    /// histograms and summaries, and both the family and the sample name of an info.
    #[test]
    fn openmetrics_reserved_names_are_refused() {
        let r = Registry::new();
        r.register("jobs_total", "x", Counter::new()).unwrap();
        assert_eq!(
            r.register("jobs_created", "x", Gauge::new()),
            Err(MetricError::DuplicateMetric("jobs_created".into()))
        );
        r.register("lat_seconds", "x", Histogram::new(&[1.0]).unwrap())
            .unwrap();
        assert!(
            r.register("lat_seconds_created", "x", Gauge::new())
                .is_err()
        );
        r.register("build", "x", Info::new(&[("v", "1")]).unwrap())
            .unwrap();
        assert!(r.register("build", "x", Gauge::new()).is_err());
        assert!(r.register("build_info", "x", Gauge::new()).is_err());
        assert!(
            r.register("build_info", "x", Info::new(&[]).unwrap())
                .is_err(),
            "`build` and `build_info` are the same info family"
        );
        r.register("size_bytes", "x", Summary::new()).unwrap();
        assert!(r.register("size_bytes_sum", "x", Gauge::new()).is_err());
        // A failed registration reserves nothing.
        assert!(r.register("jobs_created2", "x", Gauge::new()).is_ok());
    }

    #[test]
    fn info_renders_under_one_series_name_in_both_formats() {
        let r = Registry::new();
        r.register("app", "App.", Info::new(&[("v", "1")]).unwrap())
            .unwrap();
        assert_eq!(
            r.render(Format::Text),
            "# HELP app_info App.\n# TYPE app_info gauge\napp_info{v=\"1\"} 1\n"
        );
        assert_eq!(
            r.render(Format::OpenMetrics),
            "# TYPE app info\n# HELP app App.\napp_info{v=\"1\"} 1\n# EOF\n"
        );
    }
}
