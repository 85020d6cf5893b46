//! Validation of metric and label names.
//!
//! Prometheus rejects a whole scrape when one line is malformed, so a bad name must be
//! refused when it is registered, not discovered when it is rendered. The rules are
//! Prometheus 3's data model: a name is any non-empty UTF-8 string. Names in the legacy
//! character set (metric names `[a-zA-Z_:][a-zA-Z0-9_:]*`, label names
//! `[a-zA-Z_][a-zA-Z0-9_]*`) are written as they are in every scrape; others are
//! quoted or escaped per scrape, as the scraper asks (see
//! [`crate::exposition::Escaping`]). On top of that, names starting with `__` are
//! reserved for Prometheus itself, `le` / `quantile` are reserved because histograms and
//! summaries add them, and control characters are refused (no scraper could be given
//! them back unchanged, and they are never meant).

use super::MetricError;
use crate::exposition::Escaping;
use crate::exposition::escaping::{is_legacy_label_name, note_utf8_label_name};

/// Whether `name` is non-empty, holds no control character and does not start with
/// the reserved `__`.
fn acceptable(name: &str) -> bool {
    !name.is_empty() && !name.starts_with("__") && !name.chars().any(char::is_control)
}

/// Checks a metric name: any non-empty UTF-8 without control characters, not starting
/// with the reserved `__`.
///
/// ```
/// use tinyprom::metrics::validate_metric_name;
/// assert!(validate_metric_name("http_requests_total").is_ok());
/// assert!(validate_metric_name("http.server.duration").is_ok()); // UTF-8, as Prometheus 3
/// assert!(validate_metric_name("__reserved").is_err());
/// assert!(validate_metric_name("").is_err());
/// ```
pub fn validate_metric_name(name: &str) -> Result<(), MetricError> {
    if acceptable(name) {
        Ok(())
    } else {
        Err(MetricError::InvalidMetricName(name.to_string()))
    }
}

/// Checks a label name: any non-empty UTF-8 without control characters, not starting
/// with the reserved `__`, and none of the names histograms and summaries reserve
/// (`le`, `quantile`).
///
/// ```
/// use tinyprom::metrics::validate_label_name;
/// assert!(validate_label_name("method").is_ok());
/// assert!(validate_label_name("service.name").is_ok()); // UTF-8, as Prometheus 3
/// assert!(validate_label_name("le").is_err());
/// ```
pub fn validate_label_name(name: &str) -> Result<(), MetricError> {
    check_label_name(name).map(|_| ())
}

/// [`validate_label_name`], telling whether the name is a legacy one.
fn check_label_name(name: &str) -> Result<bool, MetricError> {
    let reserved = name == "le" || name == "quantile";
    // A legacy name (the usual case, and an exemplar's on every traced request) is
    // acceptable but for the `__` prefix: no character-by-character UTF-8 scan.
    let legacy = is_legacy_label_name(name);
    if !reserved && ((legacy && !name.starts_with("__")) || (!legacy && acceptable(name))) {
        if !legacy {
            note_utf8_label_name();
        }
        Ok(legacy)
    } else {
        Err(MetricError::InvalidLabelName(name.to_string()))
    }
}

/// Validates a list of label names: each valid, none repeated, also not once escaped
/// (`a.b` and `a_b` are one label to a scraper that asks for `underscores`).
///
/// ```
/// use tinyprom::metrics::validate_label_names;
/// assert!(validate_label_names(&["method", "code"]).is_ok());
/// assert!(validate_label_names(&["code", "code"]).is_err());
/// ```
pub fn validate_label_names(names: &[&str]) -> Result<(), MetricError> {
    // Whether each name seen so far is legacy, for the first few (no allocation).
    let mut seen_legacy = [false; 16];
    for (i, name) in names.iter().enumerate() {
        let legacy = check_label_name(name)?;
        if let Some(slot) = seen_legacy.get_mut(i) {
            *slot = legacy;
        }
        // Legacy names escape to themselves, so two of them collide only when equal:
        // the escapes (which build strings) are compared only when one is not legacy.
        let same = |(j, other): (usize, &&str)| {
            let other_legacy = seen_legacy
                .get(j)
                .copied()
                .unwrap_or_else(|| is_legacy_label_name(other));
            other == name
                || (!(legacy && other_legacy)
                    && [Escaping::Underscores, Escaping::Dots]
                        .into_iter()
                        .any(|e| e.escape_label_name(other) == e.escape_label_name(name)))
        };
        if names[..i].iter().enumerate().any(same) {
            return Err(MetricError::DuplicateLabelName(name.to_string()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names() {
        for good in [
            "a",
            "_a",
            ":a",
            "http_requests_total",
            "a:b_c9",
            "A",
            "9a",
            "a-b",
            "a b",
            "é",
            "a.b",
            "a{",
            "a\"b",
        ] {
            assert_eq!(validate_metric_name(good), Ok(()), "{good}");
        }
        for bad in ["", "__a", "a\nb", "a\u{0}", "\u{7f}"] {
            assert!(validate_metric_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn label_names() {
        for good in ["a", "_a", "method", "code2", "A_b", "9a", "a:b", "a-b", "ü"] {
            assert_eq!(validate_label_name(good), Ok(()), "{good}");
        }
        for bad in ["", "__name__", "__x", "le", "quantile", "a\tb"] {
            assert!(validate_label_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn duplicate_labels() {
        assert_eq!(
            validate_label_names(&["a", "b", "a"]),
            Err(MetricError::DuplicateLabelName("a".into()))
        );
        assert_eq!(validate_label_names(&["a", "b"]), Ok(()));
        assert_eq!(
            validate_label_names(&["a_b", "a.b"]),
            Err(MetricError::DuplicateLabelName("a.b".into()))
        );
        assert!(validate_label_names(&["a:b", "a-b"]).is_err());
        assert_eq!(validate_label_names(&["a.b", "a_dot_c"]), Ok(()));
    }
}
