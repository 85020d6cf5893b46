//! [`MetricError`]: why registering or creating a metric failed.

use std::fmt;

/// Why a metric could not be registered or created. Every variant's message says
/// what to do about it.
///
/// ```
/// use tinyprom::metrics::{Counter, MetricError, Registry};
/// let registry = Registry::new();
/// registry.register("jobs_total", "Jobs.", Counter::new()).unwrap();
/// let err = registry.register("jobs_total", "Again.", Counter::new()).unwrap_err();
/// assert_eq!(err, MetricError::DuplicateMetric("jobs_total".into()));
/// assert!(err.to_string().contains("register each family once"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricError {
    /// The metric name does not match `[a-zA-Z_:][a-zA-Z0-9_:]*` or starts with `__`.
    InvalidMetricName(String),
    /// The label name does not match `[a-zA-Z_][a-zA-Z0-9_]*`, starts with `__`, or is
    /// reserved (`le`, `quantile`).
    InvalidLabelName(String),
    /// The same label name appears twice in one family.
    DuplicateLabelName(String),
    /// A family with this name (or a name its samples would collide with) is already
    /// registered.
    DuplicateMetric(String),
    /// Histogram bucket bounds must be finite, strictly increasing, and at least one.
    InvalidBuckets(String),
    /// Summary quantiles must be in `[0, 1]` and strictly increasing, and the window
    /// cut into 1 to 64 periods of at least a second.
    InvalidQuantiles(String),
    /// The family already holds its maximum number of series (the number).
    TooManySeries(usize),
    /// An exemplar's label names and values hold more than
    /// [`MAX_EXEMPLAR_CHARS`](super::MAX_EXEMPLAR_CHARS) characters together (the
    /// number they hold).
    ExemplarTooLong(usize),
    /// The number of label values given does not match the number of label names.
    LabelCount {
        /// Label names the family was created with.
        expected: usize,
        /// Label values passed in.
        got: usize,
    },
}

impl fmt::Display for MetricError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetricError::InvalidMetricName(n) => write!(
                f,
                "invalid metric name {n:?}: use [a-zA-Z_:][a-zA-Z0-9_:]* without a leading \"__\""
            ),
            MetricError::InvalidLabelName(n) => write!(
                f,
                "invalid label name {n:?}: use [a-zA-Z_][a-zA-Z0-9_]*, no leading \"__\", not \"le\" or \"quantile\""
            ),
            MetricError::DuplicateLabelName(n) => {
                write!(
                    f,
                    "label name {n:?} is given twice: label names must be unique"
                )
            }
            MetricError::DuplicateMetric(n) => write!(
                f,
                "metric {n:?} is already registered: register each family once and share its handle"
            ),
            MetricError::InvalidBuckets(why) => write!(f, "invalid histogram buckets: {why}"),
            MetricError::InvalidQuantiles(why) => write!(f, "invalid summary quantiles: {why}"),
            MetricError::TooManySeries(max) => write!(
                f,
                "the family already has {max} series: raise its limit or use fewer distinct label values"
            ),
            MetricError::ExemplarTooLong(chars) => write!(
                f,
                "the exemplar's labels hold {chars} characters: OpenMetrics allows {} for names and values together; keep fewer or shorter labels (the observation was recorded without it)",
                super::MAX_EXEMPLAR_CHARS
            ),
            MetricError::LabelCount { expected, got } => write!(
                f,
                "wrong number of label values: the family has {expected} labels, {got} values were given"
            ),
        }
    }
}

impl std::error::Error for MetricError {}
