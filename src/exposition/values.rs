//! Number and string formatting shared by both exposition formats.
//!
//! One malformed line makes Prometheus drop a whole scrape, so every byte that reaches the
//! wire goes through one of these functions: floats come out as `+Inf`, `-Inf`, `NaN` or
//! the shortest digits that parse back to the same `f64`; label values and HELP texts are
//! escaped exactly as the formats require and no more.

use std::io::Write as _;

/// The two-digit strings "00" to "99", back to back.
const DIGIT_PAIRS: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Appends `v` in decimal, without allocating. Two digits per division: a scrape is
/// mostly integers (every bucket and count), so this is the renderer's inner loop.
///
/// ```
/// let mut out = b"n=".to_vec();
/// tinyprom::exposition::values::write_u64(&mut out, 42);
/// assert_eq!(out, b"n=42");
/// ```
pub fn write_u64(out: &mut Vec<u8>, mut v: u64) {
    if v < 10 {
        // Most bucket counts of a quiet series: one byte, no copy.
        out.push(b'0' + v as u8);
        return;
    }
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    while v >= 100 {
        let pair = (v % 100) as usize * 2;
        v /= 100;
        i -= 2;
        digits[i..i + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    }
    if v >= 10 {
        let pair = v as usize * 2;
        i -= 2;
        digits[i..i + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    } else {
        i -= 1;
        digits[i] = b'0' + v as u8;
    }
    out.extend_from_slice(&digits[i..]);
}

/// Appends `v` as the exposition formats spell it: `+Inf`, `-Inf`, `NaN`, plain decimal
/// for magnitudes in `[1e-5, 1e16)` and zero, scientific notation (`1e300`) otherwise.
/// Rust prints the shortest digits that round-trip in both notations.
///
/// ```
/// use tinyprom::exposition::values::write_f64;
/// let mut out = Vec::new();
/// for v in [0.1, 2.0, f64::INFINITY, f64::NAN, 1e300] {
///     write_f64(&mut out, v);
///     out.push(b' ');
/// }
/// assert_eq!(out, b"0.1 2 +Inf NaN 1e300 ");
/// ```
pub fn write_f64(out: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if v == f64::INFINITY {
        out.extend_from_slice(b"+Inf");
    } else if v == f64::NEG_INFINITY {
        out.extend_from_slice(b"-Inf");
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        // Integral values (counts, byte sizes) take the fast path; `as i64` is exact here.
        if v < 0.0 || (v == 0.0 && v.is_sign_negative()) {
            out.push(b'-');
        }
        write_u64(out, v.abs() as u64);
    } else if write_short_decimal(out, v) {
        // Done: at most 15 significant digits.
    } else if v == 0.0 || (1e-5..1e16).contains(&v.abs()) {
        // Writing into a Vec cannot fail.
        let _ = write!(out, "{v}");
    } else {
        let _ = write!(out, "{v:e}");
    }
}

/// Appends `v` (not integral, `1e-5 <= |v| < 1e15`) in plain decimal with the
/// fewest significant digits that parse back to `v`, exactly as Rust's `{}` prints it;
/// false (nothing written) in the rare case it cannot decide (a tie between two
/// nearest decimals).
///
/// Rust's formatting machinery costs several hundred instructions per float, and a
/// scrape formats one per histogram series (`_sum`). Here the float is
/// `mant · 2^-s` exactly, and `mant · 10^k` fits in 128 bits over this range, so the
/// nearest decimal of `n` significant digits, `m = round(v · 10^k)`, is integer
/// arithmetic. It parses back to `v` iff it lies within half a unit in the last place
/// of `v`: `|m · 2^s − mant · 10^k| < 10^k / 2` (a quarter below a power of two, where
/// the float below is closer). Trying `n` = 15, 16, 17 finds the shortest: a decimal of
/// at most 15 digits round-trips only if the nearest 15-digit one does (stripping its
/// trailing zeros gives it), two 16-digit decimals are further apart than the
/// round-trip interval, and of several 17-digit ones the nearest is the one Rust picks.
fn write_short_decimal(out: &mut Vec<u8>, v: f64) -> bool {
    /// `10^i` for `i` in `0..=22`.
    const POW10: [u128; 23] = {
        let mut table = [1u128; 23];
        let mut i = 1;
        while i < 23 {
            table[i] = table[i - 1] * 10;
            i += 1;
        }
        table
    };
    let a = v.abs();
    if !(1e-5..1e15).contains(&a) {
        return false;
    }
    let bits = a.to_bits();
    let e2 = ((bits >> 52) as i32) - 1023;
    let mant = u128::from((bits & ((1 << 52) - 1)) | (1 << 52));
    // a = mant / 2^s with 1 <= s <= 69 here (a is not integral and >= 1e-5).
    let s = (52 - e2) as u32;
    let power_of_two = mant == 1 << 52;
    // floor(log10 a), estimated from the binary exponent.
    let estimate = (f64::from(e2) * std::f64::consts::LOG10_2).floor() as i32;
    for n in 15..=17u32 {
        // Corrected per length: a value just below a power of ten rounds up to it at
        // one length and not at the next, so a correction must not carry over.
        let mut e10 = estimate;
        let (m, k) = loop {
            let k = n as i32 - 1 - e10;
            if !(0..=22).contains(&k) {
                return false;
            }
            let scaled = mant * POW10[k as usize];
            let (q, r) = (scaled >> s, scaled & ((1u128 << s) - 1));
            let half = 1u128 << (s - 1);
            if r == half {
                // Two nearest decimals: leave the choice to the general algorithm.
                return false;
            }
            let m = q + u128::from(r > half);
            if m >= POW10[n as usize] {
                e10 += 1;
            } else if m < POW10[n as usize - 1] {
                e10 -= 1;
            } else {
                break (m, k as u32);
            }
        };
        let (lhs, rhs) = (m << s, mant * POW10[k as usize]);
        let (diff, below) = if lhs >= rhs {
            (lhs - rhs, false)
        } else {
            (rhs - lhs, true)
        };
        let factor = if below && power_of_two { 4 } else { 2 };
        if diff * factor < POW10[k as usize] {
            write_decimal(out, v < 0.0, m as u64, k);
            return true;
        }
    }
    false
}

/// Appends `m · 10^-k` (`k > 0`) in plain decimal without trailing zeros.
fn write_decimal(out: &mut Vec<u8>, negative: bool, mut m: u64, mut k: u32) {
    while k > 0 && m.is_multiple_of(10) {
        m /= 10;
        k -= 1;
    }
    if negative {
        out.push(b'-');
    }
    let start = out.len();
    write_u64(out, m);
    let len = out.len() - start;
    let k = k as usize;
    if k >= len {
        // 0.000ddd: make room for "0." and the zeros before the digits.
        out.splice(start..start, std::iter::repeat_n(b'0', k - len + 2));
        out[start + 1] = b'.';
    } else if k > 0 {
        out.insert(out.len() - k, b'.');
    }
}

/// Formats `v` the way the text format 0.0.4 writes an `le` bound (`0.01`, `2`, `+Inf`).
///
/// ```
/// assert_eq!(tinyprom::exposition::values::le_text(2.0), "2");
/// ```
pub fn le_text(v: f64) -> String {
    let mut out = Vec::new();
    write_f64(&mut out, v);
    String::from_utf8(out).expect("write_f64 writes ASCII")
}

/// Formats `v` in OpenMetrics' canonical form for `le` and `quantile` values: Go's `%g`
/// (shortest digits; exponent form when the decimal exponent is below -4 or at least 6) with
/// `.0` appended when the result has neither `.` nor `e`: `0.01`, `2.0`, `1e+06`, `+Inf`.
///
/// ```
/// use tinyprom::exposition::values::le_openmetrics;
/// assert_eq!(le_openmetrics(2.0), "2.0");
/// assert_eq!(le_openmetrics(1e6), "1e+06");
/// assert_eq!(le_openmetrics(0.99), "0.99");
/// ```
pub fn le_openmetrics(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if v == 0.0 {
        return if v.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    // `{:e}` gives the shortest round-trip digits as `d.ddde±x`; Go's shortest `%g`
    // (strconv.FormatFloat(v, 'g', -1, 64)) uses the exponent form when the decimal
    // exponent is < -4 or >= 6, with at least two exponent digits.
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').expect("{:e} always has an exponent");
    let exp: i32 = exp.parse().expect("{:e} exponent is an integer");
    let out = if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        format!("{v}")
    };
    if out.contains('.') || out.contains('e') {
        out
    } else {
        out + ".0"
    }
}

/// Appends a label value with `\`, `"` and newline escaped (both formats).
///
/// ```
/// let mut out = Vec::new();
/// tinyprom::exposition::values::write_label_value(&mut out, "a\"b\nü");
/// assert_eq!(out, "a\\\"b\\nü".as_bytes());
/// ```
pub fn write_label_value(out: &mut Vec<u8>, value: &str) {
    for &b in value.as_bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            _ => out.push(b),
        }
    }
}

/// Appends a HELP text for text format 0.0.4: `\` and newline escaped, nothing else.
///
/// ```
/// let mut out = Vec::new();
/// tinyprom::exposition::values::write_help_text(&mut out, "say \"hi\"\n");
/// assert_eq!(out, b"say \"hi\"\\n");
/// ```
pub fn write_help_text(out: &mut Vec<u8>, help: &str) {
    for &b in help.as_bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            _ => out.push(b),
        }
    }
}

/// Appends a HELP text for OpenMetrics: `\`, `"` and newline escaped.
///
/// ```
/// let mut out = Vec::new();
/// tinyprom::exposition::values::write_help_openmetrics(&mut out, "say \"hi\"\n");
/// assert_eq!(out, b"say \\\"hi\\\"\\n");
/// ```
pub fn write_help_openmetrics(out: &mut Vec<u8>, help: &str) {
    write_label_value(out, help);
}

/// Renders a label set `k1="v1",k2="v2"` (escaped, no braces) for caching in a series,
/// or for the `labels` argument of the [`super::Encoder`] sample methods.
///
/// ```
/// use tinyprom::exposition::values::render_label_pairs;
/// assert_eq!(render_label_pairs(&["a", "b"], &["1", "x\"y"]), "a=\"1\",b=\"x\\\"y\"");
/// ```
pub fn render_label_pairs(names: &[impl AsRef<str>], values: &[impl AsRef<str>]) -> String {
    let mut out = Vec::new();
    for (i, (name, value)) in names.iter().zip(values).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(name.as_ref().as_bytes());
        out.extend_from_slice(b"=\"");
        write_label_value(&mut out, value.as_ref());
        out.push(b'"');
    }
    String::from_utf8(out).expect("escaping keeps UTF-8 valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(v: f64) -> String {
        let mut out = Vec::new();
        write_f64(&mut out, v);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn floats_special_values() {
        assert_eq!(f(f64::INFINITY), "+Inf");
        assert_eq!(f(f64::NEG_INFINITY), "-Inf");
        assert_eq!(f(f64::NAN), "NaN");
        assert_eq!(f(0.0), "0");
        assert_eq!(f(-0.0), "-0");
    }

    #[test]
    fn floats_round_trip() {
        assert_eq!(f(0.01), "0.01");
        assert_eq!(f(0.1), "0.1");
        assert_eq!(f(0.5), "0.5");
        assert_eq!(f(2.0), "2");
        assert_eq!(f(1e6), "1000000");
        assert_eq!(f(-3.25), "-3.25");
        assert_eq!(f(1e300), "1e300");
        assert_eq!(f(1.5e-7), "1.5e-7");
        assert_eq!(f(0.1 + 0.2), "0.30000000000000004");
        for v in [
            0.1 + 0.2,
            1e-300,
            123456.789,
            f64::MAX,
            f64::MIN_POSITIVE,
            -2.5e20,
            1e15 + 0.5,
            9.999_999_999_999_998e15,
        ] {
            assert_eq!(f(v).parse::<f64>().unwrap(), v, "{v}");
        }
    }

    /// The short-decimal path prints exactly what Rust's shortest formatting prints.
    #[test]
    fn short_decimals_match_the_general_algorithm() {
        let mut rng = fastrand::Rng::with_seed(11);
        let mut short = 0;
        for i in 0..200_000 {
            let v = match i % 5 {
                // Short decimals at every magnitude.
                0 => rng.u64(1..1_000_000) as f64 / 10f64.powi(rng.i32(0..20)),
                // Sums of short values, as histogram sums are.
                1 => (0..8).map(|_| rng.u64(1..5000) as f64 / 1000.0).sum(),
                2 => -(rng.u64(1..1_000_000_000_000_000) as f64) / 10f64.powi(rng.i32(0..25)),
                // Arbitrary floats across the whole plain range: mostly 16-17 digits.
                3 => 10f64.powf(rng.f64() * 20.0 - 5.0),
                _ => f64::from_bits(rng.u64(..)),
            };
            if !v.is_finite() {
                continue;
            }
            let mut fast = Vec::new();
            if write_short_decimal(&mut fast, v) {
                short += 1;
                assert_eq!(String::from_utf8(fast).unwrap(), format!("{v}"), "{v:e}");
            }
            assert_eq!(f(v).parse::<f64>().unwrap(), v);
        }
        assert!(short > 120_000, "the fast path is taken: {short}");
        for v in [
            // Halfway between two 17-digit decimals.
            227650586116712.5 + 0.125,
            0.1,
            1e-5,
            0.30000000000000004,
            999999999999999.9,
        ] {
            assert_eq!(f(v), format!("{v}"));
        }
        // Just below or above a power of ten: 15 digits round to it, 16 may not.
        for e in -4..15 {
            let p = 10f64.powi(e).to_bits();
            for v in (p - 4..p + 4).map(f64::from_bits) {
                assert_eq!(f(v), format!("{v}"), "{v:e}");
            }
        }
    }

    #[test]
    fn integers() {
        let mut out = Vec::new();
        write_u64(&mut out, 0);
        out.push(b' ');
        write_u64(&mut out, u64::MAX);
        assert_eq!(out, b"0 18446744073709551615");
        for v in (0..100_000u64).chain([999_999, 1_000_000, 10_000_000_000, u64::MAX - 1]) {
            out.clear();
            write_u64(&mut out, v);
            assert_eq!(out, v.to_string().as_bytes());
        }
    }

    #[test]
    fn openmetrics_canonical_bounds() {
        assert_eq!(le_openmetrics(0.01), "0.01");
        assert_eq!(le_openmetrics(0.1), "0.1");
        assert_eq!(le_openmetrics(2.0), "2.0");
        assert_eq!(le_openmetrics(1e6), "1e+06");
        assert_eq!(le_openmetrics(100000.0), "100000.0");
        assert_eq!(le_openmetrics(0.0001), "0.0001");
        assert_eq!(le_openmetrics(0.00001), "1e-05");
        assert_eq!(le_openmetrics(1.5e-7), "1.5e-07");
        assert_eq!(le_openmetrics(f64::INFINITY), "+Inf");
        assert_eq!(le_openmetrics(0.0), "0.0");
        assert_eq!(le_openmetrics(2.5), "2.5");
        assert_eq!(le_openmetrics(1234567.0), "1.234567e+06");
        assert_eq!(le_text(2.0), "2");
        assert_eq!(le_text(f64::INFINITY), "+Inf");
    }

    #[test]
    fn escaping() {
        let mut out = Vec::new();
        write_label_value(&mut out, "a\\b\"c\nd\té");
        assert_eq!(String::from_utf8(out).unwrap(), "a\\\\b\\\"c\\nd\té");
        let mut out = Vec::new();
        write_help_text(&mut out, "a\\b\"c\nd");
        assert_eq!(String::from_utf8(out).unwrap(), "a\\\\b\"c\\nd");
        let mut out = Vec::new();
        write_help_openmetrics(&mut out, "a\\b\"c\nd");
        assert_eq!(String::from_utf8(out).unwrap(), "a\\\\b\\\"c\\nd");
        assert_eq!(
            render_label_pairs(&["a", "b"], &["x\"y", "z"]),
            "a=\"x\\\"y\",b=\"z\""
        );
    }
}
