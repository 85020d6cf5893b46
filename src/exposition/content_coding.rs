//! Choosing the content coding of a scrape from an HTTP `Accept-Encoding` header
//! (RFC 9110 section 12.5.3).
//!
//! Prometheus and VictoriaMetrics send `Accept-Encoding: gzip` on every scrape; curl
//! with `--compressed` lists several codings. The rules, as the RFC gives them: codings
//! are compared case-insensitively, `x-gzip` is `gzip`, each may carry a q-value and
//! `q=0` means "not acceptable"; `*` stands for every coding not listed by name; the
//! identity coding is acceptable unless refused by `identity;q=0` (or `*;q=0` without
//! an `identity` entry). We answer gzip when it is acceptable and the client does not
//! rank identity above it, and identity otherwise.
//!
//! A scrape never fails because of this header: no header, an empty one, garbage, bad
//! q-values and refusing everything all get identity, which every client can read
//! (a 406 or 415 would only lose the scrape).

/// How the body of a response is encoded.
///
/// ```
/// use tinyprom::exposition::content_coding::{choose, ContentCoding};
/// let coding = choose(Some("deflate;q=0.5, gzip"));
/// assert_eq!(coding, ContentCoding::Gzip);
/// assert_eq!(coding.header_value(), Some("gzip"));
/// // Identity: the body as rendered, and no Content-Encoding header.
/// assert_eq!(choose(None).header_value(), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentCoding {
    /// As rendered, no `Content-Encoding` header.
    Identity,
    /// gzip (RFC 1952), `Content-Encoding: gzip`.
    Gzip,
}

impl ContentCoding {
    /// The `Content-Encoding` value to send, `None` for identity.
    pub fn header_value(self) -> Option<&'static str> {
        match self {
            ContentCoding::Identity => None,
            ContentCoding::Gzip => Some("gzip"),
        }
    }
}

/// Picks the coding for a response to a request carrying `accept_encoding` (the raw
/// header value, or `None` when absent). Never fails: the fallback is identity.
///
/// ```
/// use tinyprom::exposition::content_coding::{choose, ContentCoding};
/// assert_eq!(choose(Some("gzip")), ContentCoding::Gzip);
/// assert_eq!(choose(Some("deflate, gzip, br, zstd")), ContentCoding::Gzip);
/// assert_eq!(choose(Some("gzip;q=0")), ContentCoding::Identity);
/// assert_eq!(choose(None), ContentCoding::Identity);
/// ```
pub fn choose(accept_encoding: Option<&str>) -> ContentCoding {
    let Some(header) = accept_encoding else {
        return ContentCoding::Identity;
    };
    // The q-value of each coding we care about, when the header names it.
    let mut gzip: Option<f32> = None;
    let mut identity: Option<f32> = None;
    let mut any: Option<f32> = None;
    for element in header.split(',') {
        let Some((coding, q)) = parse_element(element) else {
            continue;
        };
        let slot = if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            &mut gzip
        } else if coding.eq_ignore_ascii_case("identity") {
            &mut identity
        } else if coding == "*" {
            &mut any
        } else {
            continue;
        };
        // Listed twice: the more favourable entry counts.
        *slot = Some(slot.map_or(q, |old: f32| old.max(q)));
    }
    let gzip_q = gzip.or(any).unwrap_or(0.0);
    // Unlisted identity competes with nothing; listed (by name or by `*`), it wins
    // only when ranked strictly higher than gzip.
    let identity_q = identity.or(any).unwrap_or(0.0);
    if gzip_q > 0.0 && gzip_q >= identity_q {
        ContentCoding::Gzip
    } else {
        ContentCoding::Identity
    }
}

/// Parses one `coding *( OWS ";" OWS parameter )` element; `None` when empty or
/// malformed. Parameters other than `q` are ignored, as the RFC defines none.
fn parse_element(element: &str) -> Option<(&str, f32)> {
    let mut parts = element.split(';');
    let coding = parts.next()?.trim();
    if coding.is_empty() {
        return None;
    }
    let mut q = 1.0f32;
    for param in parts {
        let (key, value) = param.split_once('=')?;
        if key.trim().eq_ignore_ascii_case("q") {
            q = parse_qvalue(value.trim())?;
        }
    }
    Some((coding, q))
}

/// RFC 9110's `qvalue`: `0` or `1`, optionally with up to three decimals, at most 1.
fn parse_qvalue(value: &str) -> Option<f32> {
    let (whole, decimals) = value.split_once('.').unwrap_or((value, ""));
    let well_formed = matches!(whole, "0" | "1")
        && decimals.len() <= 3
        && decimals.bytes().all(|b| b.is_ascii_digit());
    let q: f32 = value.parse().ok().filter(|_| well_formed)?;
    (q <= 1.0).then_some(q)
}

#[cfg(test)]
mod tests {
    use super::ContentCoding::{Gzip, Identity};
    use super::*;

    /// What Prometheus 2.42 (and 3.x) sends on every scrape.
    const PROMETHEUS: &str = "gzip";
    /// What VictoriaMetrics' scraper (`vm_promscrape`) sends, as captured from the
    /// Debian package's binary.
    const VICTORIA_METRICS: &str = "gzip";
    /// What `curl --compressed` sends (curl 7.88 built with zlib, brotli and zstd).
    const CURL_COMPRESSED: &str = "deflate, gzip, br, zstd";

    #[test]
    fn scrapers_and_curl_get_gzip() {
        assert_eq!(choose(Some(PROMETHEUS)), Gzip);
        assert_eq!(choose(Some(VICTORIA_METRICS)), Gzip);
        assert_eq!(choose(Some(CURL_COMPRESSED)), Gzip);
        // Other common browsers' and libraries' values.
        assert_eq!(choose(Some("gzip, deflate, br")), Gzip);
        assert_eq!(choose(Some("gzip, deflate, br, zstd")), Gzip);
    }

    #[test]
    fn never_compressed_unless_asked() {
        for header in [
            "",
            "identity",
            "deflate, br, zstd",
            "gzip;q=0",
            "gzip;q=0.000",
            "GZIP ; Q=0",
            "*;q=0",
            "x-gzip;q=0",
        ] {
            assert_eq!(choose(Some(header)), Identity, "{header:?}");
        }
        assert_eq!(choose(None), Identity);
    }

    #[test]
    fn names_are_case_insensitive_and_whitespace_tolerant() {
        for header in [
            "GZIP",
            "Gzip",
            "x-gzip",
            "X-GZIP",
            "  gzip  ",
            "br ,\tgzip ; q=0.5 , zstd",
            "gzip;Q=1",
            "gzip; q = 0.8",
        ] {
            assert_eq!(choose(Some(header)), Gzip, "{header:?}");
        }
    }

    #[test]
    fn q_values_rank_gzip_against_identity() {
        assert_eq!(choose(Some("gzip;q=0.5, identity;q=1")), Identity);
        assert_eq!(choose(Some("identity;q=0.5, gzip;q=0.5")), Gzip);
        assert_eq!(choose(Some("gzip;q=0.001")), Gzip);
        assert_eq!(choose(Some("gzip;q=0.5")), Gzip);
        assert_eq!(choose(Some("gzip, identity;q=0")), Gzip);
        // `*` covers gzip when gzip is not listed, and never overrides a listed gzip.
        assert_eq!(choose(Some("*")), Gzip);
        assert_eq!(choose(Some("br, *;q=0.1")), Gzip);
        assert_eq!(choose(Some("gzip;q=0, *")), Identity);
        assert_eq!(choose(Some("identity, *;q=0.5")), Identity);
        // Listed twice: the better entry counts.
        assert_eq!(choose(Some("gzip;q=0, gzip")), Gzip);
    }

    #[test]
    fn refusing_everything_still_gets_a_body() {
        assert_eq!(choose(Some("identity;q=0")), Identity);
        assert_eq!(choose(Some("gzip;q=0, identity;q=0")), Identity);
        assert_eq!(choose(Some("*;q=0")), Identity);
    }

    #[test]
    fn garbage_is_identity() {
        for header in [
            ";;;,,,",
            "gzip;q=abc",
            "gzip;q=2",
            "gzip;q=1.5",
            "gzip;q=-1",
            "gzip;q=0.1234",
            "gzip;q=",
            "gzip;q",
            "gzip;q=NaN",
            "gzip;q=inf",
            "gzipx",
            "g zip",
            "\u{0}\u{ffff}",
        ] {
            assert_eq!(choose(Some(header)), Identity, "{header:?}");
        }
        // One malformed element does not spoil the others.
        assert_eq!(choose(Some("br;q=oops, gzip")), Gzip);
    }
}
