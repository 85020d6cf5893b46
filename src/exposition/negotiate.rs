//! Choosing the exposition format from an HTTP `Accept` header.
//!
//! Prometheus 2.x and 3.x ask for OpenMetrics 1.0.0 first, then text 0.0.4 with a lower
//! q-value; with native histograms on they rank delimited protobuf first. A scrape must
//! never fail because of this header, so anything we cannot understand (missing, empty,
//! unknown types, bad q-values, versions or encodings we do not speak) falls back to
//! text 0.0.4 instead of a 406. Parameters we do not know are ignored.
//!
//! Prometheus 3 adds `escaping=` to a media range: how names outside the legacy
//! character set are to be written ([`Escaping`]). The chosen range's scheme applies;
//! a range without one (or with one we do not know) gets `underscores`, the
//! documented default. OpenMetrics `version=0.0.1` (which Prometheus lists as its
//! second choice) is served as 1.0.0, the text it describes; `text/plain;version=1.0.0`
//! (Prometheus 3's text with UTF-8 names) as text 0.0.4, whose syntax it extends by
//! quoted names only.

use super::{Escaping, Format};

/// The outcome of negotiation: the format and the escaping scheme of names.
///
/// ```
/// use tinyprom::exposition::{negotiate_escaping, Escaping, Format, Negotiated};
/// let prometheus_3 = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
/// assert_eq!(
///     negotiate_escaping(Some(prometheus_3)),
///     Negotiated { format: Format::OpenMetrics, escaping: Escaping::AllowUtf8 }
/// );
/// assert_eq!(negotiate_escaping(None).escaping, Escaping::Underscores);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// The exposition format.
    pub format: Format,
    /// How names outside the legacy set are written.
    pub escaping: Escaping,
}

impl Negotiated {
    /// The `Content-Type` of a response in this format, naming the escaping applied
    /// (`...; escaping=underscores`), as Prometheus' Go library answers.
    pub fn content_type(self) -> &'static str {
        macro_rules! per_scheme {
            ($base:literal) => {
                match self.escaping {
                    Escaping::AllowUtf8 => concat!($base, "; escaping=allow-utf-8"),
                    Escaping::Underscores => concat!($base, "; escaping=underscores"),
                    Escaping::Dots => concat!($base, "; escaping=dots"),
                    Escaping::Values => concat!($base, "; escaping=values"),
                }
            };
        }
        match self.format {
            Format::Text => per_scheme!("text/plain; version=0.0.4; charset=utf-8"),
            Format::OpenMetrics => {
                per_scheme!("application/openmetrics-text; version=1.0.0; charset=utf-8")
            }
            Format::Protobuf => per_scheme!(
                "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
            ),
        }
    }
}

/// Picks the [`Format`] and [`Escaping`] for a response to a request carrying `accept`
/// (the raw header value, or `None` when absent). Never fails: the fallback is text
/// 0.0.4 with `underscores`.
pub fn negotiate_escaping(accept: Option<&str>) -> Negotiated {
    let fallback = Negotiated {
        format: Format::Text,
        escaping: Escaping::default(),
    };
    let Some(accept) = accept else {
        return fallback;
    };
    // The best range seen; a higher q wins, then the earlier range.
    let mut best: Option<(f32, Negotiated)> = None;
    for range in accept.split(',') {
        let Some((negotiated, q)) = parse_range(range) else {
            continue;
        };
        if q <= 0.0 {
            continue;
        }
        match best {
            Some((best_q, _)) if best_q >= q => {}
            _ => best = Some((q, negotiated)),
        }
    }
    best.map_or(fallback, |(_, n)| n)
}

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
    negotiate_escaping(accept).format
}

/// Parses one media range; `None` when it names nothing we serve or is malformed.
fn parse_range(range: &str) -> Option<(Negotiated, f32)> {
    let mut parts = range.split(';');
    let media = parts.next()?.trim();
    let mut version: Option<&str> = None;
    let mut proto: Option<&str> = None;
    let mut encoding: Option<&str> = None;
    let mut escaping = Escaping::default();
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
        } else if key.eq_ignore_ascii_case("escaping") {
            escaping = Escaping::parse(value).unwrap_or_default();
        }
    }
    let format = if media.eq_ignore_ascii_case("application/openmetrics-text") {
        match version {
            None | Some("1.0.0" | "0.0.1") => Format::OpenMetrics,
            Some(_) => return None,
        }
    } else if media.eq_ignore_ascii_case("text/plain") {
        match version {
            None | Some("0.0.4" | "1.0.0") => Format::Text,
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
    Some((Negotiated { format, escaping }, q))
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
    fn openmetrics_0_0_1_and_text_1_0_0() {
        assert_eq!(
            negotiate(Some("application/openmetrics-text;version=0.0.1")),
            Format::OpenMetrics
        );
        assert_eq!(negotiate(Some("text/plain;version=1.0.0")), Format::Text);
    }

    #[test]
    fn escaping_of_the_chosen_range() {
        let n = |a: &str| negotiate_escaping(Some(a));
        assert_eq!(n(PROMETHEUS_3).escaping, Escaping::AllowUtf8);
        assert_eq!(n(PROMETHEUS_3_NATIVE).escaping, Escaping::Underscores);
        assert_eq!(n(PROMETHEUS_2).escaping, Escaping::Underscores);
        for scheme in Escaping::ALL {
            let accept = format!("text/plain;version=0.0.4;escaping={}", scheme.name());
            assert_eq!(
                n(&accept),
                Negotiated {
                    format: Format::Text,
                    escaping: scheme
                }
            );
            let accept = format!(
                "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;escaping={}",
                scheme.name()
            );
            assert_eq!(
                n(&accept),
                Negotiated {
                    format: Format::Protobuf,
                    escaping: scheme
                }
            );
        }
        // Unknown schemes fall back to the default, never fail the scrape.
        assert_eq!(
            n("application/openmetrics-text;escaping=bogus").escaping,
            Escaping::Underscores
        );
        assert_eq!(
            n("text/plain;escaping=dots;q=0.1,application/openmetrics-text").escaping,
            Escaping::Underscores
        );
    }

    #[test]
    fn content_types_name_the_escaping() {
        let n = Negotiated {
            format: Format::OpenMetrics,
            escaping: Escaping::AllowUtf8,
        };
        assert_eq!(
            n.content_type(),
            "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=allow-utf-8"
        );
        for format in [Format::Text, Format::OpenMetrics, Format::Protobuf] {
            for escaping in Escaping::ALL {
                let ct = Negotiated { format, escaping }.content_type();
                assert_eq!(
                    ct,
                    format!("{}; escaping={}", format.content_type(), escaping.name())
                );
            }
        }
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
