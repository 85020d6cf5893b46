//! [`BoundLabels`]: the `le` and `quantile` label values of a histogram's bounds or a
//! summary's quantiles, spelled once per text format when the metric is built.
//!
//! A histogram family renders the same handful of bounds for every series in every
//! scrape; formatting them each time would be most of a scrape's float formatting.
//! Metric types own the numbers and keep this cache beside them, but only this module
//! knows how each format spells them.

use super::room::Padded;
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
    /// Each label value followed by [`CLOSE`], the bytes after it on a sample line, so
    /// that a bucket line copies both at once, and padded so that it copies them with
    /// no code depending on their length.
    text: Box<[Padded]>,
    openmetrics: Box<[Padded]>,
}

/// What follows an `le` or `quantile` value that ends a sample's label set.
const CLOSE: &str = "\"} ";

impl BoundLabels {
    /// Formats every value for both text formats.
    pub fn new(values: &[f64]) -> BoundLabels {
        // At most 24 bytes formatted (see `values::f64_text`; OpenMetrics' exponent
        // form is no longer), plus three.
        let closed = |s: String| Padded::from_slice((s + CLOSE).as_bytes()).expect("short");
        BoundLabels {
            values: values.into(),
            text: values.iter().map(|&v| closed(le_text(v))).collect(),
            openmetrics: values.iter().map(|&v| closed(le_openmetrics(v))).collect(),
        }
    }

    /// Every value as text 0.0.4 writes it, each followed by `"} `.
    pub(super) fn text_closed(&self) -> &[Padded] {
        &self.text
    }

    /// Every value in OpenMetrics' canonical form, each followed by `"} `.
    pub(super) fn openmetrics_closed(&self) -> &[Padded] {
        &self.openmetrics
    }

    /// The values, in the order given.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// Value `i` as text 0.0.4 writes it (`2`).
    pub fn text(&self, i: usize) -> &str {
        open(&self.text[i])
    }

    /// Value `i` in OpenMetrics' canonical form (`2.0`).
    pub fn openmetrics(&self, i: usize) -> &str {
        open(&self.openmetrics[i])
    }
}

/// A label value without its [`CLOSE`].
fn open(closed: &Padded) -> &str {
    let bytes = closed.as_bytes();
    std::str::from_utf8(&bytes[..bytes.len() - CLOSE.len()]).expect("formatted as ASCII")
}
