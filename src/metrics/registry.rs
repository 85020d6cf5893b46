//! [`Registry`]: the set of metric families one endpoint renders.
//!
//! Registration is where names are checked, so rendering never has to: a family name
//! must be valid and must not collide with another family's name or sample names
//! (`foo` histogram vs. `foo_count` gauge). Families render in registration order, which
//! makes the output deterministic and lets golden tests pin it byte for byte.

use std::sync::RwLock;

use super::name::validate_metric_name;
use super::{Metric, MetricError};
use crate::exposition::{Encoder, Format, MetricKind};

/// A source of whole families with their own HELP/TYPE lines, computed at scrape time
/// (the process collector reads `/proc` this way).
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
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
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
        self.claim(&[(name.to_string(), metric.kind())])?;
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
        let families = collector.families();
        for (name, _) in &families {
            validate_metric_name(name)?;
        }
        self.claim(&families)?;
        self.write_sources()
            .push(Source::Collector(Box::new(collector)));
        Ok(())
    }

    /// Reserves the sample names of `families`, or fails without reserving any.
    fn claim(&self, families: &[(String, MetricKind)]) -> Result<(), MetricError> {
        let mut names = self.names.write().unwrap_or_else(|p| p.into_inner());
        let mut wanted = Vec::new();
        for (name, kind) in families {
            // The family name itself plus every sample name it produces; a counter
            // `x_total` also claims `x`, its OpenMetrics family name.
            wanted.push(name.clone());
            if let Some(base) = name.strip_suffix("_total") {
                wanted.push(base.to_string());
            }
            for suffix in kind.sample_suffixes() {
                wanted.push(format!("{name}{suffix}"));
            }
        }
        wanted.sort();
        wanted.dedup();
        if let Some(taken) = wanted.iter().find(|w| names.contains(w)) {
            let family = families
                .iter()
                .find(|(n, _)| taken.starts_with(n.as_str()) || n.starts_with(taken.as_str()))
                .map_or(taken.clone(), |(n, _)| n.clone());
            return Err(MetricError::DuplicateMetric(family));
        }
        names.extend(wanted);
        Ok(())
    }

    fn write_sources(&self) -> std::sync::RwLockWriteGuard<'_, Vec<Source>> {
        self.sources.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends one complete scrape in `format` to `buf` (which it does not clear), so a
    /// server can reuse one buffer for every scrape.
    pub fn encode(&self, buf: &mut Vec<u8>, format: Format) {
        let mut enc = Encoder::new(buf, format);
        let sources = self.sources.read().unwrap_or_else(|p| p.into_inner());
        for source in sources.iter() {
            match source {
                Source::Metric {
                    name,
                    help,
                    unit,
                    metric,
                } => {
                    enc.family(name, help, metric.kind(), unit.as_deref());
                    metric.encode(name, "", &mut enc);
                }
                Source::Collector(collector) => collector.encode(&mut enc),
            }
        }
        enc.finish();
    }

    /// Renders a scrape in text format 0.0.4 into a new string (convenient in tests and
    /// examples; servers should prefer [`Registry::encode`] with a reused buffer).
    pub fn render_text(&self) -> String {
        let mut buf = Vec::new();
        self.encode(&mut buf, Format::Text);
        String::from_utf8(buf).expect("the encoder writes UTF-8")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Counter, Gauge, Histogram};

    #[test]
    fn invalid_names_are_refused() {
        let r = Registry::new();
        assert!(matches!(
            r.register("9bad", "x", Counter::new()),
            Err(MetricError::InvalidMetricName(_))
        ));
        assert!(r.register("__reserved", "x", Counter::new()).is_err());
        assert!(r.register("ok_total", "x", Counter::new()).is_ok());
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
}
