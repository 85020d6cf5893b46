//! The [`Encoder`]: writes families and samples into a caller-owned buffer.
//!
//! Metric types know their values; the encoder knows the wire format. Keeping the two
//! apart lets one registry serve text 0.0.4, OpenMetrics and protobuf from the same
//! data, and lets the server reuse one buffer per worker so a scrape allocates nothing
//! once warm. Histograms and summaries hand over what they hold
//! ([`Encoder::histogram`], [`Encoder::summary`]); each format decides how it looks.
//!
//! Label sets arrive pre-rendered (`k="v",k2="v2"`, already escaped): a series renders
//! its labels once when it is created, so a scrape only copies bytes.

use std::borrow::Cow;
use std::time::SystemTime;

use super::BoundLabels;
use super::escaping::{
    Escaping, escape_label_set, has_quoted_label_name, is_legacy_metric_name,
    utf8_label_names_in_use, write_quoted,
};
use super::exemplars;
use super::filter::NameFilter;
use super::protobuf;
use super::room::{CHUNK, HELD, MAX_U64_DIGITS, Padded, Room};
use super::samples::HistogramView;
use super::values::{
    F64TextMemo, f64_text, write_f64, write_help_openmetrics, write_help_text, write_u64,
};
use crate::metrics::Exemplar;

/// The exposition format a scrape is rendered in.
///
/// ```
/// use tinyprom::exposition::{negotiate, Format};
/// let format = negotiate(Some("application/openmetrics-text; version=1.0.0"));
/// assert_eq!(format, Format::OpenMetrics);
/// assert_eq!(format.content_type(), "application/openmetrics-text; version=1.0.0; charset=utf-8");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Prometheus text format 0.0.4 (`text/plain; version=0.0.4`).
    Text,
    /// OpenMetrics 1.0.0 text (`application/openmetrics-text; version=1.0.0`).
    OpenMetrics,
    /// Delimited `io.prometheus.client.MetricFamily` protobuf messages: the only format
    /// that carries native histograms.
    Protobuf,
}

impl Format {
    /// The `Content-Type` header value a response in this format carries.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Protobuf => {
                "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
            }
        }
    }

    /// The short name used as a label value (`tinyprom_scrapes_total{format}`).
    pub fn name(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::OpenMetrics => "openmetrics",
            Format::Protobuf => "protobuf",
        }
    }
}

/// The type of a metric family, as written on its `# TYPE` line. Info is spelled
/// differently per format:
///
/// ```
/// use tinyprom::exposition::{Encoder, Format, MetricKind};
/// let mut buf = Vec::new();
/// Encoder::new(&mut buf, Format::Text).family("app_info", "App.", MetricKind::Info, None);
/// assert_eq!(buf, b"# HELP app_info App.\n# TYPE app_info gauge\n");
/// buf.clear();
/// Encoder::new(&mut buf, Format::OpenMetrics).family("app_info", "App.", MetricKind::Info, None);
/// assert_eq!(buf, b"# TYPE app info\n# HELP app App.\n");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// A monotonically increasing total.
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// Cumulative buckets plus `_sum` and `_count`.
    Histogram,
    /// `_sum`, `_count` and optional quantiles.
    Summary,
    /// Constant labels describing the target, value 1 (`info` in OpenMetrics, a gauge
    /// named `..._info` in text 0.0.4).
    Info,
}

impl MetricKind {
    fn type_word(self, format: Format) -> &'static str {
        match (self, format) {
            (MetricKind::Counter, _) => "counter",
            (MetricKind::Gauge, _) => "gauge",
            (MetricKind::Histogram, _) => "histogram",
            (MetricKind::Summary, _) => "summary",
            (MetricKind::Info, Format::OpenMetrics) => "info",
            (MetricKind::Info, _) => "gauge",
        }
    }

    /// Every name a family of this kind registered as `name` can put on the wire in
    /// either format, plus the names OpenMetrics parsers reserve for it (`_created`).
    /// The registry refuses a family whose names overlap another's, because strict
    /// parsers reject such a scrape as a whole ("clashing name").
    ///
    /// `name` is the registered name; an info family's must already end with `_info`
    /// (the registry appends it).
    pub(crate) fn reserved_names(self, name: &str) -> Vec<String> {
        let with = |base: &str, suffixes: &[&str]| -> Vec<String> {
            suffixes.iter().map(|s| format!("{base}{s}")).collect()
        };
        match self {
            MetricKind::Counter => {
                let base = name.strip_suffix("_total").unwrap_or(name);
                let mut names = with(base, &["", "_total", "_created"]);
                names.push(name.to_string());
                names
            }
            MetricKind::Gauge => vec![name.to_string()],
            MetricKind::Histogram => with(name, &["", "_bucket", "_sum", "_count", "_created"]),
            MetricKind::Summary => with(name, &["", "_sum", "_count", "_created"]),
            MetricKind::Info => {
                let base = name.strip_suffix("_info").unwrap_or(name);
                with(base, &["", "_info"])
            }
        }
    }
}

/// Writes one scrape in one [`Format`] into a byte buffer the caller owns.
///
/// ```
/// use tinyprom::exposition::{Encoder, Format, MetricKind};
/// let mut buf = Vec::new();
/// let mut enc = Encoder::new(&mut buf, Format::Text);
/// enc.family("jobs_total", "Jobs run.", MetricKind::Counter, None);
/// enc.counter("jobs_total", "", 3);
/// enc.finish();
/// assert_eq!(buf, b"# HELP jobs_total Jobs run.\n# TYPE jobs_total counter\njobs_total 3\n");
/// ```
pub struct Encoder<'a> {
    out: &'a mut Vec<u8>,
    format: Format,
    /// Protobuf only: the family message being written.
    open_family: Option<OpenFamily>,
    /// How names outside the legacy set are written (see `escaping.rs`).
    escaping: Escaping,
    /// The families to write; `None`: all.
    filter: Option<&'a NameFilter>,
    /// Where the family the filter drops started: what it wrote is cut off there when
    /// the next family starts or the scrape ends.
    dropping: Option<usize>,
    /// The open family's name is not a legacy name: its samples are quoted or escaped
    /// (`odd_sample_start`), so legacy families never pay for it.
    odd_name: bool,
    /// Label sets may hold quoted names this scrape must escape (see
    /// `escaping::utf8_label_names_in_use`).
    escape_labels: bool,
    /// `odd_name || escape_labels`: the one test the usual path makes.
    unusual: bool,
    /// OpenMetrics only: whether `_created` samples are written.
    created: bool,
}

/// A protobuf family message not yet closed.
struct OpenFamily {
    /// Where its body starts (its length goes in the byte before).
    start: usize,
    /// Where its metadata ends: a family with nothing after it is left out, as Go's
    /// client does (Prometheus has no use for a family without metrics).
    metadata_end: usize,
    kind: MetricKind,
}

impl<'a> Encoder<'a> {
    /// Bytes written so far, what was in the buffer before included.
    pub(crate) fn len(&self) -> usize {
        self.out.len()
    }

    /// Drops what was written after the first `len` bytes (a histogram read in place
    /// writes again when the read turns out torn); no-op when nothing was.
    pub(crate) fn truncate(&mut self, len: usize) {
        self.out.truncate(len);
    }

    /// An encoder appending to `out` (it does not clear it).
    pub fn new(out: &'a mut Vec<u8>, format: Format) -> Self {
        Encoder {
            out,
            format,
            open_family: None,
            escaping: Escaping::default(),
            filter: None,
            dropping: None,
            odd_name: false,
            escape_labels: utf8_label_names_in_use(),
            unusual: utf8_label_names_in_use(),
            created: false,
        }
    }

    /// Writes names outside the legacy set by `escaping` (the default is
    /// [`Escaping::Underscores`]; legacy names are the same under every scheme).
    ///
    /// ```
    /// use tinyprom::exposition::{Encoder, Escaping, Format, MetricKind};
    /// let mut buf = Vec::new();
    /// let mut enc = Encoder::new(&mut buf, Format::Text).escaping(Escaping::AllowUtf8);
    /// enc.family("my.gauge", "G.", MetricKind::Gauge, None);
    /// enc.sample_f64("my.gauge", "", "", 1.5);
    /// assert_eq!(buf, b"# HELP \"my.gauge\" G.\n# TYPE \"my.gauge\" gauge\n{\"my.gauge\"} 1.5\n");
    /// ```
    pub fn escaping(mut self, escaping: Escaping) -> Self {
        self.escaping = escaping;
        self.escape_labels = utf8_label_names_in_use() && (escaping != Escaping::AllowUtf8);
        self.unusual = self.odd_name || self.escape_labels;
        self
    }

    /// Writes only the families `filter` names: the others' [`Encoder::family`] and
    /// samples leave nothing in the buffer.
    pub fn filter(mut self, filter: Option<&'a NameFilter>) -> Self {
        self.filter = filter;
        self
    }

    /// Whether a family registered as `name` with this `kind` is written at all (the
    /// filter's verdict); a caller may skip reading values nobody asked for.
    pub fn wants(&self, name: &str, kind: MetricKind) -> bool {
        self.filter.is_none_or(|f| f.wants(name, kind))
    }

    /// Ends the family being written: closes its protobuf message and drops it when
    /// the filter does not want it.
    fn end_family(&mut self) {
        self.close_family();
        if let Some(start) = self.dropping.take() {
            self.out.truncate(start);
        }
    }

    /// `labels` with every quoted name escaped when this scrape escapes them; as it is
    /// otherwise (nearly always: one flag test).
    fn labels<'l>(&self, labels: &'l str) -> Cow<'l, str> {
        if self.escape_labels && has_quoted_label_name(labels) {
            Cow::Owned(escape_label_set(labels, self.escaping))
        } else {
            Cow::Borrowed(labels)
        }
    }

    /// Whether OpenMetrics output carries `_created` samples (the series' start
    /// timestamps) for counters, histograms and summaries; off by default, as in
    /// client_golang. Protobuf always carries start timestamps; text 0.0.4 never.
    ///
    /// ```
    /// use tinyprom::exposition::{Encoder, Format, MetricKind};
    /// use std::time::{Duration, UNIX_EPOCH};
    /// let mut buf = Vec::new();
    /// let mut enc = Encoder::new(&mut buf, Format::OpenMetrics).openmetrics_created(true);
    /// enc.family("jobs_total", "Jobs run.", MetricKind::Counter, None);
    /// enc.counter_with("jobs_total", "", 3, None, Some(UNIX_EPOCH + Duration::from_millis(1500)));
    /// assert!(buf.ends_with(b"jobs_total 3\njobs_created 1.500\n"));
    /// ```
    pub fn openmetrics_created(mut self, on: bool) -> Self {
        self.created = on;
        self
    }

    /// Whether this encoder writes `_created` samples now.
    fn writes_created(&self) -> bool {
        self.created && self.format == Format::OpenMetrics
    }

    /// The format being written.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Writes the metadata lines of a family: `# HELP` and `# TYPE` in text 0.0.4;
    /// `# TYPE`, `# UNIT` (when known) and `# HELP` in OpenMetrics, the order its
    /// specification recommends.
    ///
    /// `name` is the registered name; in OpenMetrics a counter family drops its `_total`
    /// suffix and an info family its `_info` suffix here (samples carry them). `unit` is
    /// written only in OpenMetrics, only when the family name ends with `_<unit>` and
    /// never for info families, as the specification requires. A counter registered as
    /// `x_seconds_total` is the family `x_seconds`, so it does get `# UNIT x_seconds
    /// seconds` (the specification's own example does this).
    ///
    /// In protobuf, the family message carries the registered name, the type (an info
    /// family is a gauge), the HELP text unescaped and the unit under the same rule.
    pub fn family(&mut self, name: &str, help: &str, kind: MetricKind, unit: Option<&str>) {
        self.end_family();
        if !self.wants(name, kind) {
            self.dropping = Some(self.out.len());
        }
        self.odd_name = !is_legacy_metric_name(name);
        self.unusual = self.odd_name || self.escape_labels;
        let family = self.family_name(name, kind);
        match self.format {
            Format::Protobuf => {
                let wire_name = match self.escaping {
                    Escaping::AllowUtf8 => Cow::Borrowed(family),
                    scheme => scheme.escape_metric_name(family),
                };
                let out = &mut *self.out;
                let start = protobuf::open_delimited(out);
                protobuf::bytes(out, protobuf::family::NAME, wire_name.as_bytes());
                protobuf::bytes(out, protobuf::family::HELP, help.as_bytes());
                protobuf::uint(out, protobuf::family::TYPE, protobuf::type_number(kind));
                if let Some(unit) = unit_for(family, kind, unit) {
                    protobuf::bytes(out, protobuf::family::UNIT, unit.as_bytes());
                }
                self.open_family = Some(OpenFamily {
                    start,
                    metadata_end: out.len(),
                    kind,
                });
            }
            Format::Text => {
                self.metadata(b"# HELP ", family);
                write_help_text(self.out, help);
                self.out.push(b'\n');
                self.metadata(b"# TYPE ", family);
                self.out
                    .extend_from_slice(kind.type_word(self.format).as_bytes());
                self.out.push(b'\n');
            }
            Format::OpenMetrics => {
                self.metadata(b"# TYPE ", family);
                self.out
                    .extend_from_slice(kind.type_word(self.format).as_bytes());
                self.out.push(b'\n');
                if let Some(unit) = unit_for(family, kind, unit) {
                    self.metadata(b"# UNIT ", family);
                    self.out.extend_from_slice(unit.as_bytes());
                    self.out.push(b'\n');
                }
                self.metadata(b"# HELP ", family);
                write_help_openmetrics(self.out, help);
                self.out.push(b'\n');
            }
        }
    }

    /// Protobuf: ends the open family message, or drops it when it has no metric.
    fn close_family(&mut self) {
        if let Some(open) = self.open_family.take() {
            if self.out.len() == open.metadata_end {
                self.out.truncate(open.start - 1);
            } else {
                protobuf::close(self.out, open.start);
            }
        }
    }

    /// Protobuf: the kind of the open family, if a family is open.
    fn protobuf_kind(&self) -> Option<MetricKind> {
        self.open_family.as_ref().map(|f| f.kind)
    }

    /// Starts a metadata line: `# KEYWORD family `, the name quoted or escaped when
    /// it is not a legacy name.
    fn metadata(&mut self, keyword: &[u8], family: &str) {
        self.out.extend_from_slice(keyword);
        if !self.odd_name {
            self.out.extend_from_slice(family.as_bytes());
        } else if self.escaping == Escaping::AllowUtf8 {
            write_quoted(self.out, family);
        } else {
            let escaped = self.escaping.escape_metric_name(family);
            self.out.extend_from_slice(escaped.as_bytes());
        }
        self.out.push(b' ');
    }

    /// Starts a sample whose name or label names are outside the legacy set (or may
    /// be): kept off the usual path, which it would slow down.
    #[cold]
    #[inline(never)]
    fn unusual_sample_start(
        &mut self,
        name: &str,
        suffix: &str,
        labels: &str,
        extra: Option<(&str, &str)>,
    ) {
        let labels = &*self.labels(labels);
        if self.odd_name {
            return self.odd_sample_start(name, suffix, labels, extra);
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(suffix.as_bytes());
        let (open, close) = if labels.is_empty() && extra.is_none() {
            ("", "")
        } else {
            ("{", "}")
        };
        self.out.extend_from_slice(open.as_bytes());
        self.out.extend_from_slice(labels.as_bytes());
        if let Some((n, v)) = extra {
            if !labels.is_empty() {
                self.out.push(b',');
            }
            self.out.extend_from_slice(n.as_bytes());
            self.out.extend_from_slice(b"=\"");
            self.out.extend_from_slice(v.as_bytes());
            self.out.push(b'"');
        }
        self.out.extend_from_slice(close.as_bytes());
        self.out.push(b' ');
    }

    /// Starts a sample of a family whose name is not a legacy name:
    /// `{"name+suffix",labels,extra="v"} ` under `allow-utf-8`, the escaped name (plus
    /// the suffix) before the braces otherwise. `labels` are already escaped.
    fn odd_sample_start(
        &mut self,
        name: &str,
        suffix: &str,
        labels: &str,
        extra: Option<(&str, &str)>,
    ) {
        let quoted = self.escaping == Escaping::AllowUtf8;
        if quoted {
            self.out.push(b'{');
            write_quoted(self.out, &format!("{name}{suffix}"));
        } else {
            let escaped = self.escaping.escape_metric_name(name);
            self.out.extend_from_slice(escaped.as_bytes());
            self.out.extend_from_slice(suffix.as_bytes());
        }
        let mut open = quoted;
        let mut separate = |out: &mut Vec<u8>| {
            out.push(if open { b',' } else { b'{' });
            open = true;
        };
        if !labels.is_empty() {
            separate(self.out);
            self.out.extend_from_slice(labels.as_bytes());
        }
        if let Some((n, v)) = extra {
            separate(self.out);
            self.out.extend_from_slice(n.as_bytes());
            self.out.extend_from_slice(b"=\"");
            self.out.extend_from_slice(v.as_bytes());
            self.out.push(b'"');
        }
        if open {
            self.out.push(b'}');
        }
        self.out.push(b' ');
    }

    fn family_name<'n>(&self, name: &'n str, kind: MetricKind) -> &'n str {
        match (self.format, kind) {
            (Format::OpenMetrics, MetricKind::Counter) => {
                name.strip_suffix("_total").unwrap_or(name)
            }
            (Format::OpenMetrics, MetricKind::Info) => name.strip_suffix("_info").unwrap_or(name),
            _ => name,
        }
    }

    fn start_sample(&mut self, name: &str, suffix: &str, labels: &str) {
        if self.unusual {
            return self.unusual_sample_start(name, suffix, labels, None);
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(suffix.as_bytes());
        if !labels.is_empty() {
            self.out.push(b'{');
            self.out.extend_from_slice(labels.as_bytes());
            self.out.push(b'}');
        }
        self.out.push(b' ');
    }

    /// Writes a counter sample. In text 0.0.4 the sample is named exactly `name`; in
    /// OpenMetrics it is the family name plus `_total`.
    pub fn counter(&mut self, name: &str, labels: &str, value: u64) {
        if self.format == Format::Protobuf {
            return self.protobuf_scalar(labels, value as f64);
        }
        self.counter_start(name, labels);
        write_u64(self.out, value);
        self.out.push(b'\n');
    }

    /// [`Encoder::counter`] with the counter's exemplar (OpenMetrics and protobuf; text
    /// 0.0.4 has none) and its start timestamp (protobuf always; OpenMetrics as
    /// `_created` when [`Encoder::openmetrics_created`] asks for it).
    pub fn counter_with(
        &mut self,
        name: &str,
        labels: &str,
        value: u64,
        exemplar: Option<&Exemplar>,
        created: Option<SystemTime>,
    ) {
        match self.format {
            Format::Protobuf => {
                if self.protobuf_kind() != Some(MetricKind::Counter) {
                    return self.protobuf_scalar(labels, value as f64);
                }
                let labels = &*self.labels(labels);
                protobuf::counter_metric(self.out, labels, value as f64, exemplar, created);
            }
            Format::Text => self.counter(name, labels, value),
            Format::OpenMetrics => {
                self.counter_start(name, labels);
                write_u64(self.out, value);
                if let Some(e) = exemplar {
                    exemplars::write_exemplar(self.out, e);
                }
                self.out.push(b'\n');
                if let (true, Some(time)) = (self.writes_created(), created) {
                    let family = name.strip_suffix("_total").unwrap_or(name);
                    self.created_sample(family, labels, time);
                }
            }
        }
    }

    /// Like [`Encoder::counter`] for a floating-point total (CPU seconds, say).
    pub fn counter_f64(&mut self, name: &str, labels: &str, value: f64) {
        if self.format == Format::Protobuf {
            return self.protobuf_scalar(labels, value);
        }
        self.counter_start(name, labels);
        write_f64(self.out, value);
        self.out.push(b'\n');
    }

    fn counter_start(&mut self, name: &str, labels: &str) {
        if self.format == Format::OpenMetrics {
            let family = name.strip_suffix("_total").unwrap_or(name);
            self.start_sample(family, "_total", labels)
        } else {
            self.start_sample(name, "", labels)
        }
    }

    /// Protobuf: one metric of the open counter or gauge family; nothing outside one.
    fn protobuf_scalar(&mut self, labels: &str, value: f64) {
        if self.escape_labels {
            return self.protobuf_scalar_escaped(labels, value);
        }
        match self.protobuf_kind() {
            Some(MetricKind::Counter) => protobuf::scalar_metric(self.out, labels, true, value),
            Some(MetricKind::Gauge | MetricKind::Info) => {
                protobuf::scalar_metric(self.out, labels, false, value)
            }
            _ => {}
        }
    }

    /// [`Encoder::protobuf_scalar`] of a label set that may hold names to escape.
    #[cold]
    #[inline(never)]
    fn protobuf_scalar_escaped(&mut self, labels: &str, value: f64) {
        let labels = self.labels(labels);
        self.escape_labels = false;
        self.protobuf_scalar(&labels, value);
        self.escape_labels = true;
    }

    /// Writes `name+suffix{labels} value` for an integer value.
    ///
    /// In protobuf, a sample with an empty suffix is one metric of the open counter,
    /// gauge or info family; others have no place there and are left out.
    pub fn sample_u64(&mut self, name: &str, suffix: &str, labels: &str, value: u64) {
        if self.format == Format::Protobuf {
            if suffix.is_empty() {
                self.protobuf_scalar(labels, value as f64);
            }
            return;
        }
        self.start_sample(name, suffix, labels);
        write_u64(self.out, value);
        self.out.push(b'\n');
    }

    /// Writes `name+suffix{labels} value` for a float value (protobuf: as
    /// [`Encoder::sample_u64`]).
    pub fn sample_f64(&mut self, name: &str, suffix: &str, labels: &str, value: f64) {
        if self.format == Format::Protobuf {
            if suffix.is_empty() {
                self.protobuf_scalar(labels, value);
            }
            return;
        }
        self.start_sample(name, suffix, labels);
        write_f64(self.out, value);
        self.out.push(b'\n');
    }

    /// Writes `name+suffix{labels,extra_name="extra_value"} value`: a histogram bucket
    /// (`le`) or a summary quantile (`quantile`) of a text format; `extra_value` is
    /// pre-formatted for the encoder's format. Protobuf has no such samples (use
    /// [`Encoder::histogram`] and [`Encoder::summary`]), so it writes nothing.
    pub fn sample_with_extra_label(
        &mut self,
        name: &str,
        suffix: &str,
        labels: &str,
        extra_name: &str,
        extra_value: &str,
        value: Value,
    ) {
        if self.format == Format::Protobuf {
            return;
        }
        if self.unusual {
            self.unusual_sample_start(name, suffix, labels, Some((extra_name, extra_value)));
            match value {
                Value::Int(v) => write_u64(self.out, v),
                Value::Float(v) => write_f64(self.out, v),
            }
            self.out.push(b'\n');
            return;
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(suffix.as_bytes());
        self.out.push(b'{');
        if !labels.is_empty() {
            self.out.extend_from_slice(labels.as_bytes());
            self.out.push(b',');
        }
        self.out.extend_from_slice(extra_name.as_bytes());
        self.out.extend_from_slice(b"=\"");
        self.out.extend_from_slice(extra_value.as_bytes());
        self.out.extend_from_slice(b"\"} ");
        match value {
            Value::Int(v) => write_u64(self.out, v),
            Value::Float(v) => write_f64(self.out, v),
        }
        self.out.push(b'\n');
    }

    /// Writes one histogram series: in the text formats `_bucket` lines (cumulative,
    /// `+Inf` last), `_sum` and `_count`; in protobuf one `Histogram` message with the
    /// native buckets when `h` has them.
    ///
    /// OpenMetrics treats `_sum` as counter-like: it must not be NaN or negative (strict
    /// parsers reject the whole scrape), which a NaN or negative observation makes it,
    /// and `_count` may only appear with it. Such a series is exposed by its buckets
    /// alone (`+Inf` still carries the count). Text 0.0.4 and protobuf have no such rule.
    pub fn histogram(&mut self, name: &str, labels: &str, h: &impl HistogramView) {
        self.histogram_memo(name, labels, h, None);
    }

    /// [`Encoder::histogram`], taking the `_sum`'s text from `sum_memo` when it holds
    /// it (see [`F64TextMemo`]).
    pub(crate) fn histogram_memo(
        &mut self,
        name: &str,
        labels: &str,
        h: &impl HistogramView,
        sum_memo: Option<&F64TextMemo<'_>>,
    ) {
        if self.unusual {
            return self.unusual_histogram(name, labels, h);
        }
        let le = match self.format {
            Format::Protobuf => {
                if self.protobuf_kind() == Some(MetricKind::Histogram) {
                    protobuf::histogram_metric(self.out, labels, h);
                }
                return;
            }
            Format::Text => h.bounds().text_closed(),
            Format::OpenMetrics => h.bounds().openmetrics_closed(),
        };
        let totals = self.format == Format::Text || h.sum() >= 0.0;
        if self.format == Format::OpenMetrics && h.exemplars().is_some() {
            exemplars::histogram_lines(self.out, name, labels, h, totals);
        } else {
            histogram_lines(self.out, name, labels, le, h, totals, sum_memo);
        }
        if let (true, Some(time)) = (self.writes_created(), h.created()) {
            exemplars::created_line(self.out, name, labels, time);
        }
    }

    /// An OpenMetrics `_created` sample of the family `family`; through the escaping
    /// path when the scrape's names or labels need it.
    fn created_sample(&mut self, family: &str, labels: &str, time: SystemTime) {
        if self.unusual {
            let seconds = time
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            self.sample_f64(family, "_created", labels, seconds);
        } else {
            exemplars::created_line(self.out, family, labels, time);
        }
    }

    /// A histogram series whose name or label names are outside the legacy set (or
    /// may be): kept off the usual path, which it would slow down.
    #[cold]
    #[inline(never)]
    fn unusual_histogram(&mut self, name: &str, labels: &str, h: &impl HistogramView) {
        let labels = &*self.labels(labels);
        let totals = self.format == Format::Text || h.sum() >= 0.0;
        match self.format {
            Format::Protobuf => {
                if self.protobuf_kind() == Some(MetricKind::Histogram) {
                    protobuf::histogram_metric(self.out, labels, h);
                }
            }
            // One sample at a time: `histogram_lines` keeps its one caller, the usual
            // path, into which it is inlined.
            _ => {
                self.histogram_by_samples(name, labels, h, totals);
                if let (true, Some(time)) = (self.writes_created(), h.created()) {
                    self.created_sample(name, labels, time);
                }
            }
        }
    }

    /// The text lines of a histogram series, one sample at a time, for
    /// [`Encoder::unusual_histogram`].
    fn histogram_by_samples(
        &mut self,
        name: &str,
        labels: &str,
        h: &impl HistogramView,
        totals: bool,
    ) {
        let bounds = h.bounds();
        let classic = match self.format {
            Format::OpenMetrics => h.exemplars().map(|e| e.classic()).unwrap_or_default(),
            _ => Default::default(),
        };
        let mut count = 0u64;
        for (i, n) in (0..bounds.values().len()).zip(h.counts()) {
            count = count.wrapping_add(n);
            let le = match self.format {
                Format::OpenMetrics => bounds.openmetrics(i),
                _ => bounds.text(i),
            };
            self.sample_with_extra_label(name, "_bucket", labels, "le", le, Value::Int(count));
            // The bucket's exemplar goes before the line's end.
            if let Some(Some(exemplar)) = classic.get(i)
                && self.out.last() == Some(&b'\n')
            {
                self.out.pop();
                exemplars::write_exemplar(self.out, exemplar);
                self.out.push(b'\n');
            }
        }
        if totals {
            self.sample_f64(name, "_sum", labels, h.sum());
            self.sample_u64(name, "_count", labels, count);
        }
    }

    /// Starts one summary series; write its quantiles, then
    /// [`SummaryEncoder::finish`] it with the totals.
    pub fn summary<'e>(&'e mut self, name: &'e str, labels: &'e str) -> SummaryEncoder<'e, 'a> {
        let open = match (self.format, self.protobuf_kind()) {
            (Format::Protobuf, Some(MetricKind::Summary)) => {
                let labels = &*self.labels(labels);
                let metric = protobuf::open_metric(self.out, labels);
                Some((metric, protobuf::open_summary(self.out)))
            }
            _ => None,
        };
        SummaryEncoder {
            enc: self,
            name,
            labels,
            open,
        }
    }

    /// Ends the scrape: OpenMetrics requires a final `# EOF` line, protobuf closes the
    /// last family; text needs nothing.
    pub fn finish(&mut self) {
        self.end_family();
        if self.format == Format::OpenMetrics {
            self.out.extend_from_slice(b"# EOF\n");
        }
    }
}

/// The text lines of one histogram series: `_bucket` lines with the `le` values `le`
/// (closed, see `BoundLabels`), then `_sum` and `_count` if `totals` (the sum's text
/// from `sum_memo` if given).
///
/// Everything goes through one [`Room`]: the longest the lines can be is reserved
/// once, then each piece is written without a capacity check. The bucket lines share
/// `name_bucket{labels,le="`, written once and then copied within the buffer, and the
/// `_sum` and `_count` lines copy the name and labels from it too, so the only bytes
/// read from outside the buffer are the name and labels, once.
fn histogram_lines(
    out: &mut Vec<u8>,
    name: &str,
    labels: &str,
    le: &[Padded],
    h: &impl HistogramView,
    totals: bool,
    sum_memo: Option<&F64TextMemo<'_>>,
) {
    const BUCKET: &[u8] = b"_bucket{";
    const LE: &[u8] = b"le=\"";
    let (name, labels) = (name.as_bytes(), labels.as_bytes());
    // Upper bounds: a bucket line is the prefix (with the comma after the labels),
    // a closed `le` value, a count and a newline; `_count{labels} ` and its value
    // bound both totals lines (a sum is at most a `Padded`).
    let prefix_max = name.len() + BUCKET.len() + labels.len() + 1 + LE.len();
    let line_max = prefix_max + Padded::CAPACITY + MAX_U64_DIGITS + 1;
    let total_max = name.len()
        + b"_count{".len()
        + labels.len()
        + b"} ".len()
        + Padded::CAPACITY.max(MAX_U64_DIGITS)
        + 1;
    let budget = le.len() * line_max + 2 * total_max;
    let mut room = Room::new(out, budget);
    let start = room.len();
    let sum = h.sum();
    // SAFETY: every write below counts at most what the budget above allows for it:
    // one prefix, `le` value, count and newline per bucket line (at most `le.len()`
    // of them, `zip` stops there), and the two totals lines. The copies within the
    // buffer (`repeat`, `hold`) read the name at `start`, written first, and the
    // labels after `name_bucket{`, both before the room's current end, as is the
    // prefix `hold` reads.
    unsafe {
        room.slice(name);
        room.bytes(BUCKET);
        if !labels.is_empty() {
            room.slice(labels);
            room.byte(b',');
        }
        room.bytes(LE);
        let prefix = room.len() - start;
        let mut count = 0u64;
        let mut lines = h.counts().zip(le);
        // The first line's prefix is written; the others copy it, from registers
        // (`Held`) when it is short enough, as it nearly always is.
        if let Some((n, le)) = lines.next() {
            count = n;
            room.padded(le);
            room.u64_line(count);
        }
        if (CHUNK..=HELD).contains(&prefix) {
            let held = room.hold(start, prefix);
            for (n, le) in lines {
                room.held(&held);
                count = count.wrapping_add(n);
                room.padded(le);
                room.u64_line(count);
            }
        } else {
            for (n, le) in lines {
                room.repeat(start, prefix);
                count = count.wrapping_add(n);
                room.padded(le);
                room.u64_line(count);
            }
        }
        if totals {
            let labels_at = start + name.len() + BUCKET.len();
            let totals_start = |room: &mut Room<'_>, suffix: &[u8]| {
                room.repeat(start, name.len());
                room.bytes(suffix);
                if labels.is_empty() {
                    room.byte(b' ');
                } else {
                    room.byte(b'{');
                    room.repeat(labels_at, labels.len());
                    room.bytes(b"} ");
                }
            };
            totals_start(&mut room, b"_sum");
            let text = match sum_memo {
                Some(memo) => memo.text(sum),
                None => f64_text(sum),
            };
            room.padded(&text);
            room.byte(b'\n');
            totals_start(&mut room, b"_count");
            room.u64(count);
            room.byte(b'\n');
        }
    }
}

/// The unit a family declares: only when its name ends with `_<unit>`, and never for
/// info families, as OpenMetrics requires.
fn unit_for<'u>(family: &str, kind: MetricKind, unit: Option<&'u str>) -> Option<&'u str> {
    unit.filter(|u| {
        kind != MetricKind::Info
            && family
                .strip_suffix(u)
                .is_some_and(|rest| rest.ends_with('_'))
    })
}

/// Writes one summary series, started by [`Encoder::summary`].
///
/// ```
/// use tinyprom::exposition::{Encoder, Format, MetricKind};
///
/// let mut buf = Vec::new();
/// let mut enc = Encoder::new(&mut buf, Format::Text);
/// enc.family("rpc_seconds", "RPC latency.", MetricKind::Summary, None);
/// // A summary without quantiles: only its totals.
/// enc.summary("rpc_seconds", "method=\"get\"").finish(1.5, 3);
/// enc.finish();
/// let text = String::from_utf8(buf).unwrap();
/// assert!(text.ends_with("rpc_seconds_sum{method=\"get\"} 1.5\nrpc_seconds_count{method=\"get\"} 3\n"));
/// ```
pub struct SummaryEncoder<'e, 'a> {
    enc: &'e mut Encoder<'a>,
    name: &'e str,
    labels: &'e str,
    /// Protobuf: the open metric and summary messages.
    open: Option<(usize, usize)>,
}

impl SummaryEncoder<'_, '_> {
    /// Writes quantile `quantiles.values()[i]` with its estimate `v`.
    pub fn quantile(&mut self, quantiles: &BoundLabels, i: usize, v: f64) {
        let enc = &mut *self.enc;
        let q = match enc.format {
            Format::Protobuf => {
                if self.open.is_some() {
                    protobuf::quantile(enc.out, quantiles.values()[i], v);
                }
                return;
            }
            Format::Text => quantiles.text(i),
            Format::OpenMetrics => quantiles.openmetrics(i),
        };
        enc.sample_with_extra_label(self.name, "", self.labels, "quantile", q, Value::Float(v));
    }

    /// Writes `_sum` and `_count` (or closes the protobuf message with them).
    pub fn finish(self, sum: f64, count: u64) {
        self.finish_with(sum, count, None);
    }

    /// [`SummaryEncoder::finish`] with the series' start timestamp: protobuf's
    /// `created_timestamp`, and OpenMetrics' `_created` when asked for.
    pub fn finish_with(self, sum: f64, count: u64, created: Option<SystemTime>) {
        let enc = self.enc;
        if let Some((metric, summary)) = self.open {
            protobuf::summary_totals(enc.out, sum, count);
            if let Some(time) = created {
                protobuf::summary_created(enc.out, time);
            }
            protobuf::close(enc.out, summary);
            protobuf::close(enc.out, metric);
        } else if enc.format != Format::Protobuf {
            enc.sample_f64(self.name, "_sum", self.labels, sum);
            enc.sample_u64(self.name, "_count", self.labels, count);
            if let (true, Some(time)) = (enc.writes_created(), created) {
                enc.created_sample(self.name, self.labels, time);
            }
        }
    }
}

/// A sample value: integers print without going through float formatting.
///
/// ```
/// use tinyprom::exposition::{Encoder, Format, Value};
/// let mut buf = Vec::new();
/// let mut enc = Encoder::new(&mut buf, Format::OpenMetrics);
/// enc.sample_with_extra_label("rt", "", "", "quantile", "0.5", Value::Float(0.25));
/// enc.sample_with_extra_label("h", "_bucket", "", "le", "+Inf", Value::Int(3));
/// assert_eq!(buf, b"rt{quantile=\"0.5\"} 0.25\nh_bucket{le=\"+Inf\"} 3\n");
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// An exact count.
    Int(u64),
    /// Anything else.
    Float(f64),
}

#[cfg(test)]
mod tests {

    /// A histogram whose name needs quoting goes the escaping path, which must carry the
    /// buckets' exemplars as the usual path does.
    #[test]
    fn an_escaped_histogram_keeps_its_exemplars() {
        use crate::metrics::{Histogram, Metric};
        let h = Histogram::new(&[0.1, 1.0]).unwrap();
        h.observe_with_exemplar(0.5, &[("trace_id", "abc")])
            .unwrap();
        for escaping in [Escaping::AllowUtf8, Escaping::Underscores] {
            let mut buf = Vec::new();
            let mut enc = Encoder::new(&mut buf, Format::OpenMetrics).escaping(escaping);
            enc.family("req.seconds", "R.", MetricKind::Histogram, None);
            h.encode("req.seconds", "", &mut enc);
            enc.finish();
            let text = String::from_utf8(buf).unwrap();
            let line = text
                .lines()
                .find(|l| l.contains("le=\"1.0\""))
                .unwrap_or_else(|| panic!("no 1.0 bucket in {text}"));
            assert!(
                line.ends_with(" # {trace_id=\"abc\"} 0.5")
                    || line.contains(" # {trace_id=\"abc\"} 0.5 "),
                "{line}"
            );
        }
    }
    use super::*;

    fn render(format: Format, f: impl FnOnce(&mut Encoder<'_>)) -> String {
        let mut buf = Vec::new();
        let mut enc = Encoder::new(&mut buf, format);
        f(&mut enc);
        enc.finish();
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn counter_names_per_format() {
        let text = render(Format::Text, |e| {
            e.family("a_total", "A.", MetricKind::Counter, None);
            e.counter("a_total", "x=\"1\"", 5);
        });
        assert_eq!(
            text,
            "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\"} 5\n"
        );
        let om = render(Format::OpenMetrics, |e| {
            e.family("a_total", "A.", MetricKind::Counter, None);
            e.counter("a_total", "x=\"1\"", 5);
        });
        assert_eq!(
            om,
            "# TYPE a counter\n# HELP a A.\na_total{x=\"1\"} 5\n# EOF\n"
        );
    }

    #[test]
    fn unit_only_when_name_ends_with_it() {
        let om = render(Format::OpenMetrics, |e| {
            e.family("d_seconds", "D.", MetricKind::Gauge, Some("seconds"));
            e.family("dseconds", "D.", MetricKind::Gauge, Some("seconds"));
        });
        assert!(om.contains("# UNIT d_seconds seconds\n"));
        assert!(!om.contains("# UNIT dseconds"));
        let text = render(Format::Text, |e| {
            e.family("d_seconds", "D.", MetricKind::Gauge, Some("seconds"))
        });
        assert!(!text.contains("UNIT"));
    }

    /// A histogram series as a test hands it to the encoder.
    struct View {
        bounds: BoundLabels,
        counts: Vec<u64>,
        sum: f64,
    }

    impl HistogramView for View {
        fn bounds(&self) -> &BoundLabels {
            &self.bounds
        }
        fn counts(&self) -> impl Iterator<Item = u64> {
            self.counts.iter().copied()
        }
        fn sum(&self) -> f64 {
            self.sum
        }
        fn native(&self) -> Option<super::super::NativeBuckets<'_>> {
            None
        }
    }

    /// Bucket lines whose shared prefix is held in registers (32 to 96 bytes) or
    /// copied within the buffer (shorter or longer) read the same, at every length
    /// around the edges, with and without labels.
    #[test]
    fn histogram_lines_at_every_prefix_length() {
        let view = View {
            bounds: BoundLabels::new(&[0.5, 2.0, f64::INFINITY]),
            counts: vec![3, 0, 1234],
            sum: 0.1 + 0.2,
        };
        for name in ["h", "http_request_duration_seconds"] {
            for label_len in (0..140).filter(|n| *n == 0 || *n >= 4) {
                let labels = if label_len == 0 {
                    String::new()
                } else {
                    format!("a=\"{}\"", "x".repeat(label_len - 4))
                };
                let (open, close) = if labels.is_empty() {
                    ("", "")
                } else {
                    ("{", "}")
                };
                let sep = if labels.is_empty() { "" } else { "," };
                let mut want = String::new();
                for (le, cumulative) in [("0.5", 3), ("2", 3), ("+Inf", 1237)] {
                    want += &format!("{name}_bucket{{{labels}{sep}le=\"{le}\"}} {cumulative}\n");
                }
                want += &format!("{name}_sum{open}{labels}{close} 0.30000000000000004\n");
                want += &format!("{name}_count{open}{labels}{close} 1237\n");
                let text = render(Format::Text, |e| e.histogram(name, &labels, &view));
                assert_eq!(text, want, "{name} {labels}");
            }
        }
    }

    #[test]
    fn extra_label_without_other_labels() {
        let text = render(Format::Text, |e| {
            e.sample_with_extra_label("h", "_bucket", "", "le", "+Inf", Value::Int(2))
        });
        assert_eq!(text, "h_bucket{le=\"+Inf\"} 2\n");
    }
}
