//! [`Info`]: constant facts about the target (version, commit, build flags) as labels.
//!
//! Why a type of its own rather than a gauge set to 1: OpenMetrics has an `info` family
//! type, which tells the ingestor that the labels are the payload and the value means
//! nothing. The two formats spell it differently, and the encoder handles that:
//!
//! * OpenMetrics: `# TYPE foo info` and the sample `foo_info{...} 1`;
//! * text 0.0.4 (which has no info type): `# TYPE foo_info gauge` and the same sample.
//!
//! Either way the series Prometheus stores is `foo_info`, so queries and joins do not
//! depend on the format a scrape happened to negotiate. An info family is registered as
//! `foo` or `foo_info` alike: the registry stores it as `foo_info` and reserves both
//! names. It never has a unit (OpenMetrics forbids one).

use super::name::validate_label_names;
use super::{Metric, MetricError};
use crate::exposition::values::render_label_pairs;
use crate::exposition::{Encoder, MetricKind};

/// A constant set of labels exposed with the value 1.
///
/// ```
/// use tinyprom::exposition::Format;
/// use tinyprom::metrics::{Info, Registry};
/// let registry = Registry::new();
/// let build = Info::new(&[("version", "1.2.3"), ("commit", "abc123")]).unwrap();
/// registry.register("myapp_build", "Build information.", build).unwrap();
/// assert!(registry.render(Format::Text).ends_with(
///     "# TYPE myapp_build_info gauge\nmyapp_build_info{version=\"1.2.3\",commit=\"abc123\"} 1\n"
/// ));
/// assert!(registry.render(Format::OpenMetrics).ends_with(
///     "# TYPE myapp_build info\n# HELP myapp_build Build information.\nmyapp_build_info{version=\"1.2.3\",commit=\"abc123\"} 1\n# EOF\n"
/// ));
/// ```
#[derive(Clone, Debug)]
pub struct Info {
    /// The label pairs, rendered and escaped once.
    labels: Box<str>,
}

impl Info {
    /// An info metric with these `(name, value)` label pairs, in this order. Label
    /// names must be valid and distinct; values may be any UTF-8 (they are escaped).
    pub fn new(labels: &[(&str, &str)]) -> Result<Info, MetricError> {
        let names: Vec<&str> = labels.iter().map(|(n, _)| *n).collect();
        validate_label_names(&names)?;
        let values: Vec<&str> = labels.iter().map(|(_, v)| *v).collect();
        Ok(Info {
            labels: render_label_pairs(&names, &values).into(),
        })
    }
}

impl Metric for Info {
    fn kind(&self) -> MetricKind {
        MetricKind::Info
    }

    fn encode(&self, name: &str, labels: &str, enc: &mut Encoder<'_>) {
        if labels.is_empty() {
            enc.sample_u64(name, "", &self.labels, 1);
        } else if self.labels.is_empty() {
            enc.sample_u64(name, "", labels, 1);
        } else {
            enc.sample_u64(name, "", &format!("{labels},{}", self.labels), 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::Format;

    fn encode(info: &Info, labels: &str, format: Format) -> String {
        let mut buf = Vec::new();
        info.encode("x_info", labels, &mut Encoder::new(&mut buf, format));
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn labels_are_validated_and_escaped() {
        assert!(Info::new(&[("__x", "a")]).is_err());
        assert!(Info::new(&[("le", "a")]).is_err());
        assert_eq!(
            Info::new(&[("a", "1"), ("a", "2")]).unwrap_err(),
            MetricError::DuplicateLabelName("a".into())
        );
        let info = Info::new(&[("v", "a\"b\\c\nd ü")]).unwrap();
        assert_eq!(
            encode(&info, "", Format::Text),
            "x_info{v=\"a\\\"b\\\\c\\nd ü\"} 1\n"
        );
    }

    #[test]
    fn outer_labels_come_first() {
        let info = Info::new(&[("v", "1")]).unwrap();
        assert_eq!(
            encode(&info, "job=\"a\"", Format::OpenMetrics),
            "x_info{job=\"a\",v=\"1\"} 1\n"
        );
        let empty = Info::new(&[]).unwrap();
        assert_eq!(encode(&empty, "", Format::OpenMetrics), "x_info 1\n");
        assert_eq!(
            encode(&empty, "job=\"a\"", Format::Text),
            "x_info{job=\"a\"} 1\n"
        );
    }
}
