//! The `name[]` filter of a scrape: `/metrics?name[]=a&name[]=b` renders only the
//! families named, as client_golang (1.24) and Python's client do.
//!
//! A family matches by the name it was registered under (what text 0.0.4 and protobuf
//! call it, `http_requests_total`) or by its OpenMetrics family name (a counter without
//! `_total`, an info without `_info`); a histogram or summary by its family name, never
//! by a sample name such as `_bucket`. A name that matches nothing renders nothing (an
//! empty scrape, still a 200); no `name[]` parameter renders everything.
//!
//! The query string is the client's, so the filter is bounded: at most
//! [`NameFilter::MAX_NAMES`] names are kept, and nothing is allocated without one.

use super::MetricKind;

/// The set of family names a scrape is limited to.
///
/// ```
/// use tinyprom::exposition::NameFilter;
/// let filter = NameFilter::from_query("name[]=jobs_total&x=1&name%5B%5D=up").unwrap();
/// assert_eq!(filter.names(), ["jobs_total", "up"]);
/// assert!(NameFilter::from_query("x=1").is_none()); // no filter: everything
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameFilter {
    names: Vec<String>,
}

impl NameFilter {
    /// The most names one filter keeps; further `name[]` parameters are ignored.
    pub const MAX_NAMES: usize = 256;

    /// The filter a query string (what follows `?`, without the `#` fragment) asks for,
    /// or `None` when it has no `name[]` parameter. Keys and values are
    /// percent-decoded and `+` is a space, as in a form; undecodable bytes are kept as
    /// they are.
    pub fn from_query(query: &str) -> Option<NameFilter> {
        let mut names = Vec::new();
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            if !key.contains('[') && !key.contains('%') {
                continue;
            }
            if decode(key) != "name[]" {
                continue;
            }
            if names.len() < Self::MAX_NAMES {
                names.push(decode(value));
            }
        }
        (!names.is_empty()).then_some(NameFilter { names })
    }

    /// A filter for exactly these names.
    pub fn new<S: Into<String>>(names: impl IntoIterator<Item = S>) -> NameFilter {
        NameFilter {
            names: names
                .into_iter()
                .take(Self::MAX_NAMES)
                .map(Into::into)
                .collect(),
        }
    }

    /// The names asked for, in the order given.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Whether the family registered as `name` with this `kind` is asked for.
    pub fn wants(&self, name: &str, kind: MetricKind) -> bool {
        let short = match kind {
            MetricKind::Counter => name.strip_suffix("_total"),
            MetricKind::Info => name.strip_suffix("_info"),
            _ => None,
        };
        self.names
            .iter()
            .any(|n| n == name || short.is_some_and(|s| n == s))
    }
}

/// Percent-decodes `s` (and `+` as space); a `%` not followed by two hex digits stays.
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |j: usize| b.get(j).and_then(|c| (*c as char).to_digit(16));
        match b[i] {
            b'%' => match (hex(i + 1), hex(i + 2)) {
                (Some(hi), Some(lo)) => {
                    out.push((hi * 16 + lo) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_name_parameters_only() {
        let f = NameFilter::from_query("name[]=a&name[]=b&names[]=c&name=d&name[]").unwrap();
        assert_eq!(f.names(), ["a", "b", ""]);
        let f = NameFilter::from_query("name%5b%5d=my.metric&name%5B%5D=a%2Bb+c").unwrap();
        assert_eq!(f.names(), ["my.metric", "a+b c"]);
        for none in ["", "&&", "debug=1", "name=a", "name[=a", "%zz=1"] {
            assert_eq!(NameFilter::from_query(none), None, "{none:?}");
        }
        assert_eq!(decode("%e2%82%ac%"), "€%");
        assert_eq!(decode("%ff"), "\u{fffd}");
    }

    #[test]
    fn bounded() {
        let query = "name[]=x&".repeat(1000);
        let f = NameFilter::from_query(&query).unwrap();
        assert_eq!(f.names().len(), NameFilter::MAX_NAMES);
    }

    #[test]
    fn matches_family_names() {
        let f = NameFilter::new(["jobs", "lat_seconds", "build_info", "lat_seconds_bucket"]);
        assert!(f.wants("jobs_total", MetricKind::Counter));
        assert!(!f.wants("jobs_total", MetricKind::Gauge));
        assert!(f.wants("lat_seconds", MetricKind::Histogram));
        assert!(f.wants("build_info", MetricKind::Info));
        assert!(!f.wants("other", MetricKind::Gauge));
        let f = NameFilter::new(["jobs_total"]);
        assert!(f.wants("jobs_total", MetricKind::Counter));
        assert!(!f.wants("jobs", MetricKind::Gauge));
    }
}
