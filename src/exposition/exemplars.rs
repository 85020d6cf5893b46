//! OpenMetrics exemplars and start timestamps: ` # {labels} value timestamp` after a
//! sample, and the `_created` samples.
//!
//! A histogram series with exemplars is written here line by line instead of by the
//! reserved-room writer of the encoder (`histogram_lines`), which stays as fast as it
//! was for the series without them: a series gets exemplars from traced requests
//! only, and an exemplar's labels and timestamp cost more to write than the bytes the
//! room writer saves.

use std::time::{SystemTime, UNIX_EPOCH};

use super::samples::HistogramView;
use super::values::{write_f64, write_u64};
use crate::metrics::Exemplar;

/// Appends a time as seconds since the Unix epoch with millisecond precision
/// (`1765000000.123`), as OpenMetrics timestamps and `_created` values are written.
/// Times before the epoch are written as 0.
pub(crate) fn write_unix_seconds(out: &mut Vec<u8>, time: SystemTime) {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    write_u64(out, since.as_secs());
    let millis = since.subsec_millis();
    out.push(b'.');
    out.push(b'0' + (millis / 100) as u8);
    out.push(b'0' + (millis / 10 % 10) as u8);
    out.push(b'0' + (millis % 10) as u8);
}

/// Appends ` # {labels} value timestamp` to a sample line (before its newline).
pub(crate) fn write_exemplar(out: &mut Vec<u8>, exemplar: &Exemplar) {
    out.extend_from_slice(b" # {");
    out.extend_from_slice(exemplar.labels().as_bytes());
    out.extend_from_slice(b"} ");
    write_f64(out, exemplar.value());
    out.push(b' ');
    write_unix_seconds(out, exemplar.time());
}

/// Writes `name_created{labels} seconds`.
pub(crate) fn created_line(out: &mut Vec<u8>, name: &str, labels: &str, time: SystemTime) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"_created");
    if !labels.is_empty() {
        out.push(b'{');
        out.extend_from_slice(labels.as_bytes());
        out.push(b'}');
    }
    out.push(b' ');
    write_unix_seconds(out, time);
    out.push(b'\n');
}

/// The OpenMetrics lines of a histogram series with exemplars: each `_bucket` line
/// carries its bucket's exemplar, if any; then `_sum` and `_count` if `totals`.
pub(crate) fn histogram_lines(
    out: &mut Vec<u8>,
    name: &str,
    labels: &str,
    h: &impl HistogramView,
    totals: bool,
) {
    let classic = h.exemplars().map(|e| e.classic()).unwrap_or_default();
    let mut count = 0u64;
    for (i, n) in h.counts().enumerate() {
        count = count.wrapping_add(n);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"_bucket{");
        if !labels.is_empty() {
            out.extend_from_slice(labels.as_bytes());
            out.push(b',');
        }
        out.extend_from_slice(b"le=\"");
        out.extend_from_slice(h.bounds().openmetrics(i).as_bytes());
        out.extend_from_slice(b"\"} ");
        write_u64(out, count);
        if let Some(Some(exemplar)) = classic.get(i) {
            write_exemplar(out, exemplar);
        }
        out.push(b'\n');
    }
    if totals {
        for (suffix, value) in [("_sum", None), ("_count", Some(count))] {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(suffix.as_bytes());
            if !labels.is_empty() {
                out.push(b'{');
                out.extend_from_slice(labels.as_bytes());
                out.push(b'}');
            }
            out.push(b' ');
            match value {
                Some(n) => write_u64(out, n),
                None => write_f64(out, h.sum()),
            }
            out.push(b'\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn unix_seconds_keep_milliseconds() {
        let mut out = Vec::new();
        write_unix_seconds(
            &mut out,
            UNIX_EPOCH + Duration::from_millis(1_765_000_000_007),
        );
        assert_eq!(out, b"1765000000.007");
        out.clear();
        write_unix_seconds(&mut out, UNIX_EPOCH - Duration::from_secs(5));
        assert_eq!(out, b"0.000");
    }
}
