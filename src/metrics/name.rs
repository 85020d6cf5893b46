//! Validation of metric and label names.
//!
//! Prometheus rejects a whole scrape when one line is malformed, so a bad name must be
//! refused when it is registered, not discovered when it is rendered. The rules are the
//! data model's: metric names match `[a-zA-Z_:][a-zA-Z0-9_:]*`, label names match
//! `[a-zA-Z_][a-zA-Z0-9_]*`, names starting with `__` are reserved for Prometheus itself,
//! and `le` / `quantile` are reserved because histograms and summaries add them.

use super::MetricError;

/// Checks a metric name against `[a-zA-Z_:][a-zA-Z0-9_:]*` and the reserved `__` prefix.
///
/// ```
/// use tinyprom::metrics::validate_metric_name;
/// assert!(validate_metric_name("http_requests_total").is_ok());
/// assert!(validate_metric_name("http-requests").is_err());
/// ```
pub fn validate_metric_name(name: &str) -> Result<(), MetricError> {
    let bytes = name.as_bytes();
    let ok = match bytes.split_first() {
        None => false,
        Some((first, rest)) => {
            (first.is_ascii_alphabetic() || *first == b'_' || *first == b':')
                && rest
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b':')
        }
    };
    if ok && !name.starts_with("__") {
        Ok(())
    } else {
        Err(MetricError::InvalidMetricName(name.to_string()))
    }
}

/// Checks a label name against `[a-zA-Z_][a-zA-Z0-9_]*`, the `__` prefix and the names
/// histograms and summaries reserve (`le`, `quantile`).
///
/// ```
/// use tinyprom::metrics::validate_label_name;
/// assert!(validate_label_name("method").is_ok());
/// assert!(validate_label_name("le").is_err());
/// ```
pub fn validate_label_name(name: &str) -> Result<(), MetricError> {
    let bytes = name.as_bytes();
    let ok = match bytes.split_first() {
        None => false,
        Some((first, rest)) => {
            (first.is_ascii_alphabetic() || *first == b'_')
                && rest.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')
        }
    };
    if ok && !name.starts_with("__") && name != "le" && name != "quantile" {
        Ok(())
    } else {
        Err(MetricError::InvalidLabelName(name.to_string()))
    }
}

/// Validates a list of label names: each valid, none repeated.
///
/// ```
/// use tinyprom::metrics::validate_label_names;
/// assert!(validate_label_names(&["method", "code"]).is_ok());
/// assert!(validate_label_names(&["code", "code"]).is_err());
/// ```
pub fn validate_label_names(names: &[&str]) -> Result<(), MetricError> {
    for (i, name) in names.iter().enumerate() {
        validate_label_name(name)?;
        if names[..i].contains(name) {
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
        for good in ["a", "_a", ":a", "http_requests_total", "a:b_c9", "A"] {
            assert_eq!(validate_metric_name(good), Ok(()), "{good}");
        }
        for bad in ["", "9a", "a-b", "a b", "__a", "é", "a.b", "a{"] {
            assert!(validate_metric_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn label_names() {
        for good in ["a", "_a", "method", "code2", "A_b"] {
            assert_eq!(validate_label_name(good), Ok(()), "{good}");
        }
        for bad in [
            "", "9a", "a:b", "__name__", "__x", "le", "quantile", "a-b", "ü",
        ] {
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
    }
}
