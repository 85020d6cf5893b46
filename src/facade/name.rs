//! Names as the `metrics` crate allows them, made valid Prometheus names.
//!
//! Code instrumented through the facade often uses dots or dashes (`http.requests`);
//! those become underscores, and a leading digit gets an underscore before it, so the
//! series is exported instead of refused. Whatever is still invalid after that (a
//! reserved `__` prefix) is refused by the registry or the family.

/// `name` with every character outside `[a-zA-Z0-9_:]` replaced by `_`, and `_`
/// before a leading digit.
pub fn metric(name: &str) -> String {
    sanitize(name, true)
}

/// The same for a label name, where `:` is not allowed either.
pub fn label(name: &str) -> String {
    sanitize(name, false)
}

fn sanitize(name: &str, colon: bool) -> String {
    let mut out = String::with_capacity(name.len() + 1);
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        out.push('_');
    }
    out.extend(name.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':') {
            c
        } else {
            '_'
        }
    }));
    if out.is_empty() {
        out.push('_');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_characters_become_underscores() {
        assert_eq!(metric("http.requests-total"), "http_requests_total");
        assert_eq!(metric("a:b"), "a:b");
        assert_eq!(label("a:b"), "a_b");
        assert_eq!(metric("9lives"), "_9lives");
        assert_eq!(metric("é"), "_");
        assert_eq!(label(""), "_");
        assert_eq!(metric("work_total"), "work_total");
    }
}
