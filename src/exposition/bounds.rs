//! [`BoundLabels`]: the `le` and `quantile` label values of a histogram's bounds or a
//! summary's quantiles, spelled once per text format when the metric is built.
//!
//! A histogram family renders the same handful of bounds for every series in every
//! scrape; formatting them each time would be most of a scrape's float formatting.
//! Metric types own the numbers and keep this cache beside them, but only this module
//! knows how each format spells them.

use super::values::{le_openmetrics, le_text};

/// Upper bounds (or quantiles) with their label values in text 0.0.4 and OpenMetrics.
///
/// ```
/// use tinyprom::exposition::BoundLabels;
/// let le = BoundLabels::new(&[0.5, 2.0, f64::INFINITY]);
/// assert_eq!(le.values(), &[0.5, 2.0, f64::INFINITY]);
/// assert_eq!((le.text(1), le.openmetrics(1)), ("2", "2.0"));
/// assert_eq!(le.text(2), "+Inf");
/// ```
#[derive(Debug)]
pub struct BoundLabels {
    values: Box<[f64]>,
    text: Box<[Box<str>]>,
    openmetrics: Box<[Box<str>]>,
}

impl BoundLabels {
    /// Formats every value for both text formats.
    pub fn new(values: &[f64]) -> BoundLabels {
        BoundLabels {
            values: values.into(),
            text: values.iter().map(|&v| le_text(v).into()).collect(),
            openmetrics: values.iter().map(|&v| le_openmetrics(v).into()).collect(),
        }
    }

    /// The values, in the order given.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// Value `i` as text 0.0.4 writes it (`2`).
    pub fn text(&self, i: usize) -> &str {
        &self.text[i]
    }

    /// Value `i` in OpenMetrics' canonical form (`2.0`).
    pub fn openmetrics(&self, i: usize) -> &str {
        &self.openmetrics[i]
    }
}
