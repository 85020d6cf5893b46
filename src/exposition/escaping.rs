//! Metric and label names outside the legacy character set, on the wire.
//!
//! Prometheus 3 accepts any non-empty UTF-8 string as a metric or label name, and says
//! per scrape how it wants such names written: the `escaping` parameter of its
//! `Accept` media range. `allow-utf-8` lets a text format quote them
//! (`{"my.metric","my.label"="v"} 1`) and protobuf carry them as they are; the other
//! three schemes turn them into legacy names (`[a-zA-Z_:][a-zA-Z0-9_:]*`, label names
//! without `:`), so a scraper that knows nothing of UTF-8 still reads the scrape. A
//! scraper that names no scheme gets `underscores`, as the Prometheus documentation
//! prescribes. Legacy names are written as they are under every scheme.
//!
//! A name is escaped as a whole family name; the encoder then appends the sample
//! suffixes (`_total`, `_bucket`, ...) to the escaped name, as Prometheus' own
//! libraries do.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};

/// How names outside the legacy character set are written in a scrape (the
/// `escaping` parameter of the negotiated media type).
///
/// ```
/// use tinyprom::exposition::Escaping;
/// assert_eq!(Escaping::parse("dots"), Some(Escaping::Dots));
/// assert_eq!(Escaping::Values.escape_metric_name("my.metric"), "U__my_2e_metric");
/// assert_eq!(Escaping::Underscores.escape_metric_name("my.metric"), "my_metric");
/// assert_eq!(Escaping::Dots.escape_metric_name("my.metric_x"), "my_dot_metric__x");
/// // Legacy names are never changed.
/// assert_eq!(Escaping::Dots.escape_metric_name("http_requests_total"), "http_requests_total");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Escaping {
    /// `allow-utf-8`: names as they are, quoted in the text formats where needed.
    AllowUtf8,
    /// `underscores`: every character outside the legacy set becomes `_` (the default
    /// when the scraper names no scheme).
    #[default]
    Underscores,
    /// `dots`: `.` becomes `_dot_`, `_` becomes `__`, anything else illegal `_`.
    Dots,
    /// `values`: `U__`, then `_` doubled and anything illegal as `_<hex code point>_`.
    Values,
}

impl Escaping {
    /// Every scheme.
    pub const ALL: [Escaping; 4] = [
        Escaping::AllowUtf8,
        Escaping::Underscores,
        Escaping::Dots,
        Escaping::Values,
    ];

    /// The scheme's name as the `escaping` parameter spells it.
    pub fn name(self) -> &'static str {
        match self {
            Escaping::AllowUtf8 => "allow-utf-8",
            Escaping::Underscores => "underscores",
            Escaping::Dots => "dots",
            Escaping::Values => "values",
        }
    }

    /// The scheme an `escaping` parameter value names (exactly, as Prometheus'
    /// libraries compare it); `None` for anything else.
    pub fn parse(value: &str) -> Option<Escaping> {
        Escaping::ALL.into_iter().find(|e| e.name() == value)
    }

    /// `name` as a metric name under this scheme: unchanged when it is a legacy name
    /// or the scheme is `allow-utf-8`.
    pub fn escape_metric_name(self, name: &str) -> Cow<'_, str> {
        self.escape(name, is_legacy_metric_name(name), true)
    }

    /// `name` as a label name under this scheme: unchanged when it is a legacy label
    /// name or the scheme is `allow-utf-8`. Unlike metric names, `:` is escaped too.
    pub fn escape_label_name(self, name: &str) -> Cow<'_, str> {
        self.escape(name, is_legacy_label_name(name), false)
    }

    fn escape(self, name: &str, legacy: bool, colon: bool) -> Cow<'_, str> {
        if legacy || self == Escaping::AllowUtf8 || name.is_empty() {
            return Cow::Borrowed(name);
        }
        let valid = |i: usize, c: char| {
            c.is_ascii_alphabetic()
                || c == '_'
                || (colon && c == ':')
                || (i > 0 && c.is_ascii_digit())
        };
        let mut out = String::with_capacity(name.len() + 8);
        if self == Escaping::Values {
            out.push_str("U__");
        }
        for (i, c) in name.chars().enumerate() {
            match self {
                Escaping::AllowUtf8 => out.push(c),
                Escaping::Underscores => out.push(if valid(i, c) { c } else { '_' }),
                Escaping::Dots => match c {
                    '_' => out.push_str("__"),
                    '.' => out.push_str("_dot_"),
                    c if valid(i, c) => out.push(c),
                    _ => out.push('_'),
                },
                Escaping::Values => match c {
                    '_' => out.push_str("__"),
                    c if valid(i, c) => out.push(c),
                    c => {
                        use std::fmt::Write;
                        let _ = write!(out, "_{:x}_", u32::from(c));
                    }
                },
            }
        }
        Cow::Owned(out)
    }
}

/// Whether `name` matches the legacy metric name pattern `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn is_legacy_metric_name(name: &str) -> bool {
    legacy(name, true)
}

/// Whether `name` matches the legacy label name pattern `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_legacy_label_name(name: &str) -> bool {
    legacy(name, false)
}

/// The classes of a legacy name's bytes, one table load per byte: bit 0, may start a
/// label name; bit 1, may follow in one; bits 2 and 3, the same for a metric name
/// (which also takes `:`).
const LEGACY: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        let letter = c.is_ascii_alphabetic() || c == b'_';
        let digit = c.is_ascii_digit();
        let colon = c == b':';
        table[b] = (letter as u8)
            | (((letter || digit) as u8) << 1)
            | (((letter || colon) as u8) << 2)
            | (((letter || digit || colon) as u8) << 3);
        b += 1;
    }
    table
};

fn legacy(name: &str, colon: bool) -> bool {
    let (first, rest) = if colon { (4, 8) } else { (1, 2) };
    match name.as_bytes().split_first() {
        None => false,
        Some((b, tail)) => {
            LEGACY[usize::from(*b)] & first != 0
                && tail.iter().all(|&b| LEGACY[usize::from(b)] & rest != 0)
        }
    }
}

/// Set once a label name outside the legacy set has been accepted anywhere in the
/// process. Until then no rendered label set holds a quoted name, so a scrape under an
/// escaping scheme skips looking for one (the common case costs one load per scrape).
/// Relaxed: a label name is accepted before its series exists, and the series reaches a
/// scrape only through the registry's lock, which orders the two.
static UTF8_LABEL_NAMES: AtomicBool = AtomicBool::new(false);

/// Records that a non-legacy label name is in use (see `UTF8_LABEL_NAMES`).
pub(crate) fn note_utf8_label_name() {
    UTF8_LABEL_NAMES.store(true, Ordering::Relaxed);
}

/// Whether any non-legacy label name was ever accepted in this process.
pub(crate) fn utf8_label_names_in_use() -> bool {
    UTF8_LABEL_NAMES.load(Ordering::Relaxed)
}

/// Writes `name` in double quotes, escaping `\`, `"` and newline (the quoted form of
/// a name in the text formats).
pub(crate) fn write_quoted(out: &mut Vec<u8>, name: &str) {
    out.push(b'"');
    for &b in name.as_bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            b => out.push(b),
        }
    }
    out.push(b'"');
}

/// Whether a pre-rendered label set (`k="v",...`, see `render_label_pairs`) holds a
/// quoted (non-legacy) label name. A value's own quotes are always escaped, so an
/// unescaped `"` at the start or right after a separating comma can only open a name.
pub(crate) fn has_quoted_label_name(labels: &str) -> bool {
    let b = labels.as_bytes();
    b.first() == Some(&b'"') || b.windows(2).any(|w| w == b",\"")
}

/// Rewrites a pre-rendered label set whose names may be quoted so that every
/// non-legacy name is escaped by `escaping` (unquoted). Values are copied as they are.
pub(crate) fn escape_label_set(labels: &str, escaping: Escaping) -> String {
    let mut out = String::with_capacity(labels.len() + 8);
    let mut rest = labels;
    while !rest.is_empty() {
        // The name: quoted (unescape it) or bare up to `=`.
        let (name, after): (Cow<'_, str>, &str) = if let Some(quoted) = rest.strip_prefix('"') {
            let Some((name, len)) = unquote(quoted) else {
                out.push_str(rest);
                return out;
            };
            (Cow::Owned(name), &quoted[len..])
        } else {
            let eq = rest.find('=').unwrap_or(rest.len());
            (Cow::Borrowed(&rest[..eq]), &rest[eq..])
        };
        out.push_str(&escaping.escape_label_name(&name));
        // `="value"`, the value's escapes kept, up to its unescaped closing quote.
        let Some(value) = after.strip_prefix("=\"") else {
            out.push_str(after);
            return out;
        };
        let end = closing_quote(value).unwrap_or(value.len());
        out.push_str("=\"");
        out.push_str(&value[..end]);
        out.push('"');
        rest = value.get(end + 1..).unwrap_or_default();
        if let Some(next) = rest.strip_prefix(',') {
            out.push(',');
            rest = next;
        }
    }
    out
}

/// When `labels` starts with a quoted name: the name unescaped and what follows its
/// closing quote.
pub(crate) fn split_quoted_name(labels: &[u8]) -> Option<(Cow<'_, [u8]>, &[u8])> {
    let quoted = std::str::from_utf8(labels.strip_prefix(b"\"")?).ok()?;
    let (name, len) = unquote(quoted)?;
    Some((Cow::Owned(name.into_bytes()), &quoted.as_bytes()[len..]))
}

/// The name in `quoted` (what follows an opening quote), unescaped, and the length
/// consumed including its closing quote.
fn unquote(quoted: &str) -> Option<(String, usize)> {
    let end = closing_quote(quoted)?;
    let mut name = String::with_capacity(end);
    let mut chars = quoted[..end].chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => name.push('\n'),
                Some(c) => name.push(c),
                None => {}
            }
        } else {
            name.push(c);
        }
    }
    Some((name, end + 1))
}

/// The index of the first unescaped `"` in `s`.
fn closing_quote(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_names_are_the_data_models_patterns() {
        for name in ["a", "_", "A_9", "http_requests_total", "Z"] {
            assert!(
                is_legacy_label_name(name) && is_legacy_metric_name(name),
                "{name}"
            );
        }
        for name in [":a", "a:b", "a:"] {
            assert!(
                is_legacy_metric_name(name) && !is_legacy_label_name(name),
                "{name}"
            );
        }
        for name in ["", "9a", "a-b", "a.b", "a b", "é", "a\u{0}", "a\u{7f}"] {
            assert!(
                !is_legacy_label_name(name) && !is_legacy_metric_name(name),
                "{name:?}"
            );
        }
    }

    /// The examples of the Prometheus documentation on escaping schemes, and Go's
    /// lowercase hex for `values`.
    #[test]
    fn schemes_as_documented() {
        assert_eq!(
            Escaping::Underscores.escape_metric_name("metric.name/with/slashes"),
            "metric_name_with_slashes"
        );
        assert_eq!(
            Escaping::Dots.escape_metric_name("metric.name.with.dots"),
            "metric_dot_name_dot_with_dot_dots"
        );
        assert_eq!(
            Escaping::Values.escape_metric_name("metric.name"),
            "U__metric_2e_name"
        );
        assert_eq!(
            Escaping::Values.escape_metric_name("a_b.é"),
            "U__a__b_2e__e9_"
        );
        assert_eq!(Escaping::Underscores.escape_metric_name("1a"), "_a");
        assert_eq!(Escaping::Underscores.escape_metric_name("ü"), "_");
        assert_eq!(
            Escaping::AllowUtf8.escape_metric_name("my.metric"),
            "my.metric"
        );
    }

    #[test]
    fn legacy_names_never_change() {
        for scheme in Escaping::ALL {
            for name in ["a", "a_b", "a:b", "_x9", "http_requests_total"] {
                assert!(matches!(scheme.escape_metric_name(name), Cow::Borrowed(n) if n == name));
            }
            assert_eq!(scheme.escape_label_name("code"), "code");
        }
        // `:` is legacy in a metric name, not in a label name.
        assert_eq!(Escaping::Underscores.escape_label_name("a:b"), "a_b");
        assert_eq!(Escaping::Underscores.escape_metric_name("a:b"), "a:b");
    }

    #[test]
    fn escaped_names_are_legacy() {
        for scheme in [Escaping::Underscores, Escaping::Dots, Escaping::Values] {
            for name in ["my.metric", "9x", "a b", "ü.ö", "a\"b\\c\nd", "_.", "a:b.c"] {
                let escaped = scheme.escape_metric_name(name);
                assert!(
                    is_legacy_metric_name(&escaped),
                    "{scheme:?} {name:?} -> {escaped:?}"
                );
                let escaped = scheme.escape_label_name(name);
                assert!(
                    is_legacy_label_name(&escaped),
                    "{scheme:?} {name:?} -> {escaped:?}"
                );
            }
        }
    }

    #[test]
    fn parse_only_the_four_names() {
        for scheme in Escaping::ALL {
            assert_eq!(Escaping::parse(scheme.name()), Some(scheme));
        }
        for bad in ["", "utf-8", "Dots", "allow-utf8", "underscore"] {
            assert_eq!(Escaping::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn quoting() {
        let mut out = Vec::new();
        write_quoted(&mut out, "a\"b\\c\nd.é");
        assert_eq!(out, "\"a\\\"b\\\\c\\nd.é\"".as_bytes());
    }

    #[test]
    fn label_sets_with_quoted_names() {
        assert!(!has_quoted_label_name("a=\"1\",b=\"x,\\\"y\""));
        assert!(has_quoted_label_name("\"a.b\"=\"1\""));
        assert!(has_quoted_label_name("a=\"1\",\"b.c\"=\"2\""));
        let set = "a=\"1\",\"b.c\"=\"x\\\"\",\"q\\\"x\"=\"\"";
        assert_eq!(
            escape_label_set(set, Escaping::Underscores),
            "a=\"1\",b_c=\"x\\\"\",q_x=\"\""
        );
        assert_eq!(
            escape_label_set(set, Escaping::Values),
            "a=\"1\",U__b_2e_c=\"x\\\"\",U__q_22_x=\"\""
        );
        assert_eq!(escape_label_set("", Escaping::Dots), "");
    }
}
