//! The W3C Trace Context `traceparent` header, read for exemplars: a request that
//! arrives inside a sampled trace gets its trace id and span id recorded beside its
//! latency (see `red.rs`), so a latency panel links to the trace.
//!
//! Only a valid, sampled header counts: version `00`, exactly
//! `00-<32 hex>-<16 hex>-<2 hex>` in lowercase, neither id all zeros, and bit 0 of the
//! flags (sampled) set. Anything else, an unsampled trace included, is as if there
//! were no header: the request is observed without an exemplar, and its answer does
//! not change. tinyprom starts no span of its own, so the span id is the caller's
//! (the header's parent id): the span of the request that called it.

/// The ids of a sampled trace context, as lowercase hex.
///
/// ```
/// use tinyprom::http::TraceIds;
/// let ids = TraceIds::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
/// assert_eq!(ids.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// assert_eq!(ids.span_id(), "00f067aa0ba902b7");
/// // Not sampled: no exemplar.
/// assert!(TraceIds::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00").is_none());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceIds {
    trace: [u8; 32],
    span: [u8; 16],
}

impl TraceIds {
    /// The ids of a valid, sampled `traceparent` header value; `None` for anything
    /// else (see the module documentation). Surrounding spaces and tabs are ignored.
    pub fn parse(header: &str) -> Option<TraceIds> {
        let v = header.trim_matches([' ', '\t']).as_bytes();
        if v.len() != 55 || v[2] != b'-' || v[35] != b'-' || v[52] != b'-' {
            return None;
        }
        let (version, trace, span, flags) = (&v[0..2], &v[3..35], &v[36..52], &v[53..55]);
        if version != b"00" || ![trace, span, flags].iter().all(|f| lower_hex(f)) {
            return None;
        }
        if trace.iter().all(|&b| b == b'0') || span.iter().all(|&b| b == b'0') {
            return None;
        }
        // Bit 0 of the flags is the low bit of the second hex digit.
        let low = hex_value(flags[1]);
        if low & 1 == 0 {
            return None;
        }
        let mut ids = TraceIds {
            trace: [0; 32],
            span: [0; 16],
        };
        ids.trace.copy_from_slice(trace);
        ids.span.copy_from_slice(span);
        Some(ids)
    }

    /// The trace id: 32 lowercase hex digits.
    pub fn trace_id(&self) -> &str {
        // Checked to be ASCII hex in `parse`; the fallback never runs.
        std::str::from_utf8(&self.trace).unwrap_or_default()
    }

    /// The caller's span id: 16 lowercase hex digits.
    pub fn span_id(&self) -> &str {
        // As for `trace_id`.
        std::str::from_utf8(&self.span).unwrap_or_default()
    }
}

fn lower_hex(field: &[u8]) -> bool {
    field
        .iter()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
}

fn hex_value(b: u8) -> u8 {
    if b.is_ascii_digit() {
        b - b'0'
    } else {
        b - b'a' + 10
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const SPAN: &str = "00f067aa0ba902b7";

    #[test]
    fn sampled_headers_give_their_ids() {
        for flags in ["01", "03", "ff", "0b"] {
            let ids = TraceIds::parse(&format!("00-{TRACE}-{SPAN}-{flags}")).unwrap();
            assert_eq!((ids.trace_id(), ids.span_id()), (TRACE, SPAN), "{flags}");
        }
        assert!(TraceIds::parse(&format!(" 00-{TRACE}-{SPAN}-01\t")).is_some());
    }

    #[test]
    fn anything_else_is_no_trace() {
        let zero_trace = "0".repeat(32);
        let zero_span = "0".repeat(16);
        let upper = TRACE.to_uppercase();
        let bad = [
            format!("00-{TRACE}-{SPAN}-00"),
            format!("00-{TRACE}-{SPAN}-02"),
            format!("00-{TRACE}-{SPAN}-fe"),
            format!("01-{TRACE}-{SPAN}-01"),
            format!("ff-{TRACE}-{SPAN}-01"),
            format!("00-{upper}-{SPAN}-01"),
            format!("00-{TRACE}-{}-01", SPAN.to_uppercase().replace('0', "A")),
            format!("00-{zero_trace}-{SPAN}-01"),
            format!("00-{TRACE}-{zero_span}-01"),
            format!("00-{TRACE}-{SPAN}-01-extra"),
            format!("00-{TRACE}-{SPAN}-0"),
            format!("00-{TRACE}0-{SPAN}-1"),
            format!("00_{TRACE}-{SPAN}-01"),
            format!("00-{TRACE}-{SPAN}-0g"),
            format!("00-{}-{SPAN}-01", &TRACE[..31]),
            String::new(),
            "00".into(),
            "é".repeat(28),
        ];
        for header in &bad {
            assert_eq!(TraceIds::parse(header), None, "{header:?}");
        }
    }
}
