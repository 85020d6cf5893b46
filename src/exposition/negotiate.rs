//! Choosing the exposition format from an HTTP `Accept` header.
//!
//! Prometheus 2.x and 3.x ask for OpenMetrics 1.0.0 first, then text 0.0.4 with a lower
//! q-value; with native histograms on they rank delimited protobuf first. A scrape must
//! never fail because of this header, so anything we cannot understand (missing, empty,
//! unknown types, bad q-values, versions or encodings we do not speak) falls back to
//! text 0.0.4 instead of a 406. Parameters we do not know (3.x's `escaping`) are
//! ignored: our names are valid in every escaping scheme.

use super::Format;

/// Picks the [`Format`] for a response to a request carrying `accept` (the raw header
/// value, or `None` when absent). Never fails: the fallback is [`Format::Text`].
///
/// ```
/// use tinyprom::exposition::{negotiate, Format};
/// let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
/// assert_eq!(negotiate(Some(prometheus)), Format::OpenMetrics);
/// assert_eq!(negotiate(Some("text/plain")), Format::Text);
/// assert_eq!(negotiate(None), Format::Text);
/// ```
pub fn negotiate(accept: Option<&str>) -> Format {
    let Some(accept) = accept else {
        return Format::Text;
    };
    // Best (q, position) seen for each format; a higher q wins, then the earlier range.
    let mut best: Option<(f32, Format)> = None;
    for range in accept.split(',') {
        let Some((format, q)) = parse_range(range) else {
            continue;
        };
        if q <= 0.0 {
            continue;
        }
        match best {
            Some((best_q, _)) if best_q >= q => {}
            _ => best = Some((q, format)),
        }
    }
    best.map_or(Format::Text, |(_, f)| f)
}

/// Parses one media range; `None` when it names nothing we serve or is malformed.
fn parse_range(range: &str) -> Option<(Format, f32)> {
    let mut parts = range.split(';');
    let media = parts.next()?.trim();
    let mut version: Option<&str> = None;
    let mut proto: Option<&str> = None;
    let mut encoding: Option<&str> = None;
    let mut q = 1.0f32;
    for param in parts {
        let (key, value) = param.split_once('=')?;
        let key = key.trim();
        let value = value.trim().trim_matches('"');
        if key.eq_ignore_ascii_case("q") {
            q = value
                .parse::<f32>()
                .ok()
                .filter(|q| (0.0..=1.0).contains(q))?;
        } else if key.eq_ignore_ascii_case("version") {
            version = Some(value);
        } else if key.eq_ignore_ascii_case("proto") {
            proto = Some(value);
        } else if key.eq_ignore_ascii_case("encoding") {
            encoding = Some(value);
        }
    }
    let format = if media.eq_ignore_ascii_case("application/openmetrics-text") {
        match version {
            None | Some("1.0.0") => Format::OpenMetrics,
            Some(_) => return None,
        }
    } else if media.eq_ignore_ascii_case("text/plain") {
        match version {
            None | Some("0.0.4") => Format::Text,
            Some(_) => return None,
        }
    } else if media.eq_ignore_ascii_case("application/vnd.google.protobuf") {
        match (proto, encoding) {
            (Some("io.prometheus.client.MetricFamily"), Some("delimited")) => Format::Protobuf,
            _ => return None,
        }
    } else if media == "*/*" || media.eq_ignore_ascii_case("text/*") {
        Format::Text
    } else {
        return None;
    };
    Some((format, q))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Prometheus 2.42, by default.
    const PROMETHEUS_2: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    /// Prometheus 2.42 with `--enable-feature=native-histograms`.
    const PROMETHEUS_2_NATIVE: &str = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    /// Prometheus 3.x, by default.
    const PROMETHEUS_3: &str = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
    /// Prometheus 3.x scraping native histograms (protobuf first).
    const PROMETHEUS_3_NATIVE: &str = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.6,application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1";

    #[test]
    fn prometheus_headers() {
        assert_eq!(negotiate(Some(PROMETHEUS_2)), Format::OpenMetrics);
        assert_eq!(negotiate(Some(PROMETHEUS_3)), Format::OpenMetrics);
        assert_eq!(negotiate(Some(PROMETHEUS_2_NATIVE)), Format::Protobuf);
        assert_eq!(negotiate(Some(PROMETHEUS_3_NATIVE)), Format::Protobuf);
    }

    #[test]
    fn protobuf_only_delimited_metric_families() {
        for accept in [
            "application/vnd.google.protobuf",
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily",
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=text",
            "application/vnd.google.protobuf;proto=other.Message;encoding=delimited",
        ] {
            assert_eq!(negotiate(Some(accept)), Format::Text, "{accept:?}");
        }
        assert_eq!(
            negotiate(Some(
                "Application/Vnd.Google.Protobuf; proto=\"io.prometheus.client.MetricFamily\"; encoding=delimited"
            )),
            Format::Protobuf
        );
        assert_eq!(
            negotiate(Some(
                "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.1,text/plain"
            )),
            Format::Text
        );
    }

    #[test]
    fn q_values_are_honoured() {
        assert_eq!(
            negotiate(Some(
                "application/openmetrics-text;version=1.0.0;q=0.2,text/plain;q=0.9"
            )),
            Format::Text
        );
        assert_eq!(
            negotiate(Some(
                "text/plain;q=0.1, application/openmetrics-text; q=0.5"
            )),
            Format::OpenMetrics
        );
        assert_eq!(
            negotiate(Some("application/openmetrics-text;q=0")),
            Format::Text
        );
    }

    #[test]
    fn fallbacks() {
        for accept in [
            "",
            "garbage",
            ";;;,,,",
            "application/json",
            "application/openmetrics-text;version=2.0.0",
            "application/openmetrics-text;q=abc",
            "application/openmetrics-text;q=7",
            "text/plain;version=9",
            "\u{0}\u{ffff}",
        ] {
            assert_eq!(negotiate(Some(accept)), Format::Text, "{accept:?}");
        }
        assert_eq!(negotiate(None), Format::Text);
    }
}
