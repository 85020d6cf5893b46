//! The protobuf exposition format: a stream of `io.prometheus.client.MetricFamily`
//! messages, each preceded by its length as a varint, written by hand.
//!
//! Prometheus reads native histograms only from this format. A protobuf library would
//! be a run-time dependency and would build message structs per scrape; the handful of
//! messages the format has are simple enough to write straight into the caller's
//! buffer, like the text formats, so a warm scrape allocates nothing.
//!
//! A message's length precedes it, but is only known once it is written. Each message
//! gets one placeholder byte, which holds the length when it is below 128 (almost every
//! label pair, sample and span); a longer message's body is moved right by the few
//! bytes its varint needs. Nesting is shallow (family, metric, histogram, bucket), so
//! the moves cost little.
//!
//! Field numbers follow `metrics.proto` of prometheus/client_model (also in
//! `tests/support/metrics.proto`, which the tests decode with `protoc`). Wire types: 0
//! varint, 1 64-bit, 2 length-delimited.

use std::time::{SystemTime, UNIX_EPOCH};

use super::MetricKind;
use super::samples::{BucketRun, HistogramView};
use crate::metrics::Exemplar;

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;

/// MetricFamily fields.
pub(super) mod family {
    pub const NAME: u32 = 1;
    pub const HELP: u32 = 2;
    pub const TYPE: u32 = 3;
    pub const METRIC: u32 = 4;
    pub const UNIT: u32 = 5;
}

/// Metric fields.
mod metric {
    pub const LABEL: u32 = 1;
    pub const GAUGE: u32 = 2;
    pub const COUNTER: u32 = 3;
    pub const SUMMARY: u32 = 4;
    pub const HISTOGRAM: u32 = 7;
}

/// Histogram fields.
mod histogram {
    pub const SAMPLE_COUNT: u32 = 1;
    pub const SAMPLE_SUM: u32 = 2;
    pub const BUCKET: u32 = 3;
    pub const SCHEMA: u32 = 5;
    pub const ZERO_THRESHOLD: u32 = 6;
    pub const ZERO_COUNT: u32 = 7;
    pub const NEGATIVE_SPAN: u32 = 9;
    pub const NEGATIVE_DELTA: u32 = 10;
    pub const POSITIVE_SPAN: u32 = 12;
    pub const POSITIVE_DELTA: u32 = 13;
    pub const CREATED: u32 = 15;
    pub const EXEMPLARS: u32 = 16;
}

/// Counter fields.
mod counter {
    pub const VALUE: u32 = 1;
    pub const EXEMPLAR: u32 = 2;
    pub const CREATED: u32 = 3;
}

/// The Summary's start timestamp field.
const SUMMARY_CREATED: u32 = 4;

/// Bucket fields.
mod bucket {
    pub const CUMULATIVE_COUNT: u32 = 1;
    pub const UPPER_BOUND: u32 = 2;
    pub const EXEMPLAR: u32 = 3;
}

/// The `type` enum value of a family.
pub(super) fn type_number(kind: MetricKind) -> u64 {
    match kind {
        MetricKind::Counter => 0,
        MetricKind::Gauge | MetricKind::Info => 1,
        MetricKind::Summary => 2,
        MetricKind::Histogram => 4,
    }
}

/// Appends `v` as a base-128 varint.
#[inline]
fn varint(out: &mut Vec<u8>, v: u64) {
    if v < 0x80 {
        out.push(v as u8);
        return;
    }
    let mut digits = [0u8; 10];
    let n = varint_into(&mut digits, v);
    out.extend_from_slice(&digits[..n]);
}

/// Writes `v` as a base-128 varint into `digits`; returns its length.
fn varint_into(digits: &mut [u8; 10], mut v: u64) -> usize {
    let mut n = 0;
    while v >= 0x80 {
        digits[n] = v as u8 | 0x80;
        v >>= 7;
        n += 1;
    }
    digits[n] = v as u8;
    n + 1
}

#[inline]
fn tag(out: &mut Vec<u8>, field: u32, wire: u8) {
    varint(out, u64::from(field) << 3 | u64::from(wire));
}

/// A `uint64`/enum field.
pub(super) fn uint(out: &mut Vec<u8>, field: u32, v: u64) {
    tag(out, field, VARINT);
    varint(out, v);
}

/// A `sint32`/`sint64` field (zigzag).
fn sint(out: &mut Vec<u8>, field: u32, v: i64) {
    tag(out, field, VARINT);
    varint(out, zigzag(v));
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// A `double` field.
fn double(out: &mut Vec<u8>, field: u32, v: f64) {
    tag(out, field, FIXED64);
    out.extend_from_slice(&v.to_le_bytes());
}

/// A `string`/`bytes` field.
pub(super) fn bytes(out: &mut Vec<u8>, field: u32, b: &[u8]) {
    tag(out, field, LEN);
    varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Starts a length-delimited field; returns where its body starts, for [`close`].
pub(super) fn open(out: &mut Vec<u8>, field: u32) -> usize {
    tag(out, field, LEN);
    open_delimited(out)
}

/// Starts a top-level message of the delimited stream (its length and no tag).
pub(super) fn open_delimited(out: &mut Vec<u8>) -> usize {
    out.push(0);
    out.len()
}

/// Ends the message whose body starts at `start`: writes its length into the
/// placeholder byte before it, moving the body when the length needs more bytes.
#[inline]
pub(super) fn close(out: &mut Vec<u8>, start: usize) {
    let len = out.len() - start;
    match out.get_mut(start.wrapping_sub(1)) {
        Some(placeholder) if len < 0x80 => *placeholder = len as u8,
        _ => close_long(out, start),
    }
}

/// [`close`] for a body of 128 bytes or more.
#[inline(never)]
fn close_long(out: &mut Vec<u8>, start: usize) {
    let len = out.len() - start;
    let mut digits = [0u8; 10];
    let n = varint_into(&mut digits, len as u64);
    let end = out.len();
    out.resize(end + n - 1, 0);
    out.copy_within(start..end, start + n - 1);
    out[start - 1..start - 1 + n].copy_from_slice(&digits[..n]);
}

/// Writes the label pairs of a pre-rendered, escaped label set (`k="v",k2="v2"`) as
/// `LabelPair` messages, unescaping the values. Stops at the first malformed byte
/// (a custom metric's labels are not checked; ours are well formed by construction).
pub(super) fn labels(out: &mut Vec<u8>, rendered: &str) {
    let mut rest = rendered.as_bytes();
    while !rest.is_empty() {
        // A quoted name is one outside the legacy set (see `render_label_pairs`).
        let (name, after) = match super::escaping::split_quoted_name(rest) {
            Some(quoted) => quoted,
            None => {
                let Some(eq) = rest.iter().position(|&b| b == b'=') else {
                    return;
                };
                let (name, after) = rest.split_at(eq);
                (std::borrow::Cow::Borrowed(name), after)
            }
        };
        let name = &*name;
        let Some(value) = after.strip_prefix(b"=\"") else {
            return;
        };
        if let Some(after) = short_pair(out, name, value) {
            rest = after.strip_prefix(b",").unwrap_or(after);
            continue;
        }
        let pair = open(out, metric::LABEL);
        bytes(out, 1, name);
        let field = open(out, 2);
        let mut i = 0;
        let mut closed = false;
        while i < value.len() {
            // Copy the run up to the next quote or escape at once.
            let run = value[i..]
                .iter()
                .position(|&b| b == b'"' || b == b'\\')
                .unwrap_or(value.len() - i);
            out.extend_from_slice(&value[i..i + run]);
            i += run;
            match value.get(i) {
                Some(b'"') => {
                    closed = true;
                    break;
                }
                Some(_) => {
                    match value.get(i + 1) {
                        Some(b'n') => out.push(b'\n'),
                        Some(&c) => out.push(c),
                        None => {}
                    }
                    i += 2;
                }
                None => {}
            }
        }
        close(out, field);
        close(out, pair);
        if !closed {
            return;
        }
        rest = value.get(i + 1..).unwrap_or_default();
        rest = rest.strip_prefix(b",").unwrap_or(rest);
    }
}

/// The usual label pair, written at once: a value without escapes, name and value
/// short enough that every length is one byte, so they are known before writing.
/// Returns what follows the value's closing quote, or `None` (nothing written) for
/// the general path.
#[inline]
fn short_pair<'a>(out: &mut Vec<u8>, name: &[u8], value: &'a [u8]) -> Option<&'a [u8]> {
    let end = value.iter().position(|&b| b == b'"' || b == b'\\')?;
    if value[end] != b'"' || name.len() + end > 120 {
        return None;
    }
    // LabelPair { name = 1, value = 2 } as field 1 of the Metric.
    let body = 4 + name.len() + end;
    out.reserve(body + 2);
    out.extend_from_slice(&[tag_byte(metric::LABEL, LEN), body as u8, tag_byte(1, LEN)]);
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.extend_from_slice(&[tag_byte(2, LEN), end as u8]);
    out.extend_from_slice(&value[..end]);
    Some(&value[end + 1..])
}

/// The one-byte tag of a field below 16.
const fn tag_byte(field: u32, wire: u8) -> u8 {
    (field << 3) as u8 | wire
}

/// Starts a `Metric` with its labels; close it with [`close`].
pub(super) fn open_metric(out: &mut Vec<u8>, labels_rendered: &str) -> usize {
    let start = open(out, family::METRIC);
    labels(out, labels_rendered);
    start
}

/// A whole `Metric` holding a counter (`counter`) or gauge value.
pub(super) fn scalar_metric(out: &mut Vec<u8>, labels_rendered: &str, counter: bool, v: f64) {
    let start = open_metric(out, labels_rendered);
    let inner = open(
        out,
        if counter {
            metric::COUNTER
        } else {
            metric::GAUGE
        },
    );
    double(out, 1, v);
    close(out, inner);
    close(out, start);
}

/// A whole `Metric` holding a counter with its exemplar, if any, and its start
/// timestamp.
pub(super) fn counter_metric(
    out: &mut Vec<u8>,
    labels_rendered: &str,
    v: f64,
    exemplar_of: Option<&Exemplar>,
    created: Option<SystemTime>,
) {
    let start = open_metric(out, labels_rendered);
    let inner = open(out, metric::COUNTER);
    double(out, counter::VALUE, v);
    if let Some(e) = exemplar_of {
        exemplar(out, counter::EXEMPLAR, e);
    }
    if let Some(time) = created {
        timestamp(out, counter::CREATED, time);
    }
    close(out, inner);
    close(out, start);
}

/// A `google.protobuf.Timestamp { seconds = 1, nanos = 2 }` field (times before the
/// epoch as the epoch).
fn timestamp(out: &mut Vec<u8>, field: u32, time: SystemTime) {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let start = open(out, field);
    uint(out, 1, since.as_secs());
    if since.subsec_nanos() != 0 {
        uint(out, 2, u64::from(since.subsec_nanos()));
    }
    close(out, start);
}

/// An `Exemplar { label = 1, value = 2, timestamp = 3 }` field.
fn exemplar(out: &mut Vec<u8>, field: u32, e: &Exemplar) {
    let start = open(out, field);
    // `LabelPair`s as field 1, as in a `Metric`.
    labels(out, e.labels());
    double(out, 2, e.value());
    timestamp(out, 3, e.time());
    close(out, start);
}

/// The start timestamp of an open summary.
pub(super) fn summary_created(out: &mut Vec<u8>, created: SystemTime) {
    timestamp(out, SUMMARY_CREATED, created);
}

/// Starts the `Summary` of a metric whose labels are written.
pub(super) fn open_summary(out: &mut Vec<u8>) -> usize {
    open(out, metric::SUMMARY)
}

/// One `Quantile` of an open summary.
pub(super) fn quantile(out: &mut Vec<u8>, q: f64, v: f64) {
    let start = open(out, 3);
    double(out, 1, q);
    double(out, 2, v);
    close(out, start);
}

/// Count and sum of an open summary.
pub(super) fn summary_totals(out: &mut Vec<u8>, sum: f64, count: u64) {
    uint(out, 1, count);
    double(out, 2, sum);
}

/// A whole `Metric` holding histogram `h`: the classic buckets (cumulative, `+Inf`
/// left out: it is `sample_count`, unless it has an exemplar to carry, as
/// client_golang does) with their exemplars, and, when it keeps them, the native
/// buckets and their exemplars; the start timestamp when known.
pub(super) fn histogram_metric(out: &mut Vec<u8>, labels_rendered: &str, h: &impl HistogramView) {
    let start = open_metric(out, labels_rendered);
    let body = open(out, metric::HISTOGRAM);
    let bounds = h.bounds().values();
    let exemplars = h.exemplars();
    let classic = exemplars.map(|e| e.classic()).unwrap_or_default();
    let mut count = 0u64;
    for (i, (n, &bound)) in h.counts().zip(bounds).enumerate() {
        count = count.wrapping_add(n);
        match classic.get(i) {
            Some(Some(e)) => bucket_with_exemplar(out, count, bound, e),
            _ if bound.is_finite() => bucket(out, count, bound),
            _ => {}
        }
    }
    if let Some(created) = h.created() {
        timestamp(out, histogram::CREATED, created);
    }
    uint(out, histogram::SAMPLE_COUNT, count);
    double(out, histogram::SAMPLE_SUM, h.sum());
    if let Some(native) = h.native() {
        sint(out, histogram::SCHEMA, i64::from(native.schema));
        double(out, histogram::ZERO_THRESHOLD, native.zero_threshold);
        uint(out, histogram::ZERO_COUNT, native.zero_count);
        let negative = spans(
            out,
            histogram::NEGATIVE_SPAN,
            histogram::NEGATIVE_DELTA,
            &native.negative,
        );
        let positive = spans(
            out,
            histogram::POSITIVE_SPAN,
            histogram::POSITIVE_DELTA,
            &native.positive,
        );
        if !negative && !positive {
            // The no-op span: marks a histogram without buckets yet as native.
            let span = open(out, histogram::POSITIVE_SPAN);
            close(out, span);
        }
        for e in exemplars.map(|e| e.native()).unwrap_or_default() {
            exemplar(out, histogram::EXEMPLARS, e);
        }
    }
    close(out, body);
    close(out, start);
}

/// One classic `Bucket { cumulative_count = 1, upper_bound = 2 }`, written at once:
/// its length (at most 20 bytes) is known before it is written.
#[inline]
fn bucket(out: &mut Vec<u8>, cumulative: u64, bound: f64) {
    let mut message = [0u8; 22];
    let mut digits = [0u8; 10];
    let n = varint_into(&mut digits, cumulative);
    message[0] = tag_byte(histogram::BUCKET, LEN);
    message[1] = (n + 10) as u8;
    message[2] = tag_byte(1, VARINT);
    message[3..3 + n].copy_from_slice(&digits[..n]);
    message[3 + n] = tag_byte(2, FIXED64);
    message[4 + n..12 + n].copy_from_slice(&bound.to_le_bytes());
    out.extend_from_slice(&message[..12 + n]);
}

/// A classic `Bucket` with its exemplar.
fn bucket_with_exemplar(out: &mut Vec<u8>, cumulative: u64, bound: f64, e: &Exemplar) {
    let start = open(out, histogram::BUCKET);
    uint(out, bucket::CUMULATIVE_COUNT, cumulative);
    double(out, bucket::UPPER_BOUND, bound);
    exemplar(out, bucket::EXEMPLAR, e);
    close(out, start);
}

/// Buckets with at most this many empty ones between them share a span (as in
/// client_golang): two zero deltas cost less than a new span.
const MAX_GAP_IN_SPAN: i32 = 2;

/// Writes the spans and the packed deltas of `run`; false when it has no buckets.
fn spans(out: &mut Vec<u8>, span_field: u32, delta_field: u32, run: &BucketRun<'_>) -> bool {
    let run = run.trimmed();
    let write_span = |out: &mut Vec<u8>, offset: i32, length: u32| {
        let span = open(out, span_field);
        sint(out, 1, i64::from(offset));
        uint(out, 2, u64::from(length));
        close(out, span);
    };
    // (offset of the current span, its length, index of the last bucket in it)
    let mut current: Option<(i32, u32, i32)> = None;
    for (index, _) in run.occupied() {
        current = Some(match current {
            None => (index, 1, index),
            Some((offset, length, last)) => {
                let gap = index - last - 1;
                if gap <= MAX_GAP_IN_SPAN {
                    (offset, length + gap as u32 + 1, index)
                } else {
                    write_span(out, offset, length);
                    (gap, 1, index)
                }
            }
        });
    }
    let Some((offset, length, _)) = current else {
        return false;
    };
    write_span(out, offset, length);
    let deltas = open(out, delta_field);
    let mut previous = 0i64;
    let mut last: Option<i32> = None;
    for (index, n) in run.occupied() {
        if let Some(last) = last {
            let gap = index - last - 1;
            if gap <= MAX_GAP_IN_SPAN {
                for _ in 0..gap {
                    varint(out, zigzag(-previous));
                    previous = 0;
                }
            }
        }
        let n = n as i64;
        varint(out, zigzag(n.wrapping_sub(previous)));
        previous = n;
        last = Some(index);
    }
    close(out, deltas);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    #[test]
    fn varints_and_zigzag() {
        let mut out = Vec::new();
        varint(&mut out, 300);
        assert_eq!(out, [0xac, 0x02]);
        assert_eq!(zigzag(0), 0);
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
        assert_eq!(zigzag(-2), 3);
        assert_eq!(zigzag(i64::MIN), u64::MAX);
    }

    #[test]
    fn long_messages_get_their_length_moved_in() {
        for len in [0usize, 1, 127, 128, 300, 20_000] {
            let mut out = vec![9u8];
            let start = open(&mut out, 1);
            out.extend(std::iter::repeat_n(7u8, len));
            close(&mut out, start);
            let mut expected = vec![9u8, 0x0a];
            varint(&mut expected, len as u64);
            expected.extend(std::iter::repeat_n(7u8, len));
            assert_eq!(out, expected, "{len}");
        }
    }

    #[test]
    fn labels_are_unescaped() {
        let mut out = Vec::new();
        labels(&mut out, "a=\"x\\\"y\\\\z\\n\",bb=\"\"");
        let mut expected = Vec::new();
        for (name, value) in [("a", "x\"y\\z\n"), ("bb", "")] {
            let pair = open(&mut expected, 1);
            bytes(&mut expected, 1, name.as_bytes());
            bytes(&mut expected, 2, value.as_bytes());
            close(&mut expected, pair);
        }
        assert_eq!(out, expected);
        for malformed in ["a", "a=", "a=\"unterminated", "=\"", ",,,"] {
            labels(&mut Vec::new(), malformed);
        }
    }

    /// The example of the native histograms specification: buckets −2→3, −1→5, 2→1,
    /// 4→3, 5→2 (a gap of two is folded into the first span here).
    #[test]
    fn spans_and_deltas() {
        let counts: Vec<AtomicU64> = [3, 5, 0, 0, 1, 0, 3, 2]
            .into_iter()
            .map(AtomicU64::new)
            .collect();
        let run = BucketRun {
            first_index: -2,
            counts: &counts,
        };
        let mut out = Vec::new();
        assert!(spans(&mut out, 12, 13, &run));
        let mut expected = Vec::new();
        let span = open(&mut expected, 12);
        sint(&mut expected, 1, -2);
        uint(&mut expected, 2, 8);
        close(&mut expected, span);
        let deltas = open(&mut expected, 13);
        for d in [3i64, 2, -5, 0, 1, -1, 3, -1] {
            varint(&mut expected, zigzag(d));
        }
        close(&mut expected, deltas);
        assert_eq!(out, expected);

        let sparse: Vec<AtomicU64> = [1, 0, 0, 0, 4].into_iter().map(AtomicU64::new).collect();
        let mut out = Vec::new();
        spans(
            &mut out,
            12,
            13,
            &BucketRun {
                first_index: 10,
                counts: &sparse,
            },
        );
        let mut expected = Vec::new();
        for (offset, length) in [(10, 1), (3, 1)] {
            let span = open(&mut expected, 12);
            sint(&mut expected, 1, offset);
            uint(&mut expected, 2, length);
            close(&mut expected, span);
        }
        let deltas = open(&mut expected, 13);
        varint(&mut expected, zigzag(1));
        varint(&mut expected, zigzag(3));
        close(&mut expected, deltas);
        assert_eq!(out, expected);
        assert!(!spans(&mut Vec::new(), 12, 13, &BucketRun::EMPTY));
    }
}
