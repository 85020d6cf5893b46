//! Property tests: no label value, Accept header or observed value can corrupt the
//! exposition, panic the negotiation or break a histogram's invariants.

use proptest::prelude::*;
use tinyprom::exposition::{Format, negotiate};
use tinyprom::metrics::{Counter, Family, Histogram, NativeOptions, Registry};

/// Undoes the text format's label-value escaping (`\\`, `\"`, `\n`); returns the value
/// and the rest of the line after its closing quote.
fn unescape(quoted: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = quoted.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &quoted[i + 1..])),
            '\\' => match chars.next()?.1 {
                '\\' => out.push('\\'),
                '"' => out.push('"'),
                'n' => out.push('\n'),
                _ => return None,
            },
            c => out.push(c),
        }
    }
    None
}

/// The label values of every sample line of family `name` in an exposition.
fn label_values(exposition: &str, name: &str) -> Vec<String> {
    let prefix = format!("{name}{{v=\"");
    exposition
        .lines()
        .filter_map(|l| l.strip_prefix(prefix.as_str()))
        .filter_map(|rest| {
            let (value, tail) = unescape(rest)?;
            tail.starts_with("} ").then_some(value)
        })
        .collect()
}

fn label_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[\"\\\\\n\r\t {}=,#a-z\u{0}\u{7f}\u{e9}\u{1f600}]{0,24}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn label_values_round_trip_through_render_and_parse(values in prop::collection::vec(label_value(), 1..6)) {
        let registry = Registry::new();
        let family: Family<Counter> = Family::new(&["v"]).unwrap();
        registry.register("prop_events_total", "Events.", family.clone()).unwrap();
        let mut distinct: Vec<String> = values.clone();
        distinct.sort();
        distinct.dedup();
        for v in &values {
            family.with_label_values(&[v.as_str()]).unwrap().inc();
        }
        for format in [Format::Text, Format::OpenMetrics] {
            let mut buf = Vec::new();
            registry.encode(&mut buf, format);
            let text = String::from_utf8(buf).expect("UTF-8 exposition");
            let mut got = label_values(&text, "prop_events_total");
            got.sort();
            prop_assert_eq!(&got, &distinct, "{:?}:\n{}", format, text);
            // Every line is one line: no raw newline escaped a label value.
            for line in text.lines() {
                prop_assert!(line.starts_with('#') || line.starts_with("prop_events_total"), "{}", line);
            }
        }
    }

    #[test]
    fn any_accept_header_negotiates_without_panicking(header in any::<String>()) {
        // Never fails; anything it does not understand is text.
        let _ = negotiate(Some(&header));
    }

    #[test]
    fn any_accept_like_header_negotiates_without_panicking(
        header in "[a-z/*;=,. 0-9q-]{0,64}(application/openmetrics-text[;a-z=0-9. ]{0,30})?"
    ) {
        let _ = negotiate(Some(&header));
    }

    #[test]
    fn any_observed_values_keep_the_histogram_invariants(
        values in prop::collection::vec(prop_oneof![
            any::<f64>(),
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            -1e300f64..1e300,
            -3.0f64..3.0,
        ], 0..64)
    ) {
        let bounds = [-1.0, 0.0, 0.01, 0.5, 2.0, 1e100];
        let h = Histogram::new(&bounds).unwrap();
        for v in &values {
            h.observe(*v);
        }
        let s = h.snapshot();
        prop_assert_eq!(s.count, values.len() as u64);
        prop_assert_eq!(s.cumulative.len(), bounds.len() + 1);
        prop_assert_eq!(*s.cumulative.last().unwrap(), s.count);
        prop_assert!(s.cumulative.windows(2).all(|w| w[0] <= w[1]), "{:?}", s);
        for (i, bound) in bounds.iter().enumerate() {
            let expected = values.iter().filter(|v| **v <= *bound).count() as u64;
            prop_assert_eq!(s.cumulative[i], expected, "bucket le={}", bound);
        }
        if values.iter().any(|v| v.is_nan()) {
            prop_assert!(s.sum.is_nan());
        }
        let registry = Registry::new();
        registry.register("prop_seconds", "Values.", h.clone()).unwrap();
        let text = registry.render_text();
        prop_assert!(text.contains(&format!("prop_seconds_count {}", values.len())), "{}", text);
    }

    #[test]
    fn any_observed_values_keep_the_native_invariants(
        values in prop::collection::vec(prop_oneof![
            any::<f64>(),
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(0.0),
            -1e300f64..1e300,
            0.001f64..0.05,
        ], 0..96),
        schema in -4i32..=8,
        max_buckets in prop_oneof![Just(4usize), Just(20), Just(160)],
    ) {
        let options = NativeOptions::new().schema(schema).max_buckets(max_buckets);
        let h = Histogram::with_native(&[0.01, 1.0], options).unwrap();
        for v in &values {
            h.observe(*v);
        }
        let s = h.snapshot();
        let native = s.native.clone().unwrap();
        let nans = values.iter().filter(|v| v.is_nan()).count() as u64;
        prop_assert_eq!(s.count, values.len() as u64);
        prop_assert_eq!(native.total(), s.count - nans, "{:?}", s);
        prop_assert!(native.schema <= schema && native.schema >= -4);
        let threshold = native.zero_threshold;
        let negative = values.iter().filter(|v| **v < -threshold).count() as u64;
        let zero = values.iter().filter(|v| v.abs() <= threshold).count() as u64;
        prop_assert_eq!(native.zero_count, zero);
        prop_assert_eq!(native.negative.iter().map(|b| b.1).sum::<u64>(), negative);
        for buckets in [&native.positive, &native.negative] {
            prop_assert!(buckets.windows(2).all(|w| w[0].0 < w[1].0));
            if let (Some(first), Some(last)) = (buckets.first(), buckets.last()) {
                prop_assert!(last.0 - first.0 < max_buckets as i32, "{:?}", buckets);
            }
        }
        let registry = Registry::new();
        registry.register("prop_seconds", "Values.", h.clone()).unwrap();
        prop_assert!(!registry.render_bytes(Format::Protobuf).is_empty());
    }
}
