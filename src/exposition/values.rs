//! Number and string formatting shared by both exposition formats.
//!
//! One malformed line makes Prometheus drop a whole scrape, so every byte that reaches the
//! wire goes through one of these functions: floats come out as `+Inf`, `-Inf`, `NaN` or
//! the shortest digits that parse back to the same `f64`; label values and HELP texts are
//! escaped exactly as the formats require and no more.

use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering, fence};

use super::escaping::{is_legacy_label_name, note_utf8_label_name, write_quoted};
use super::room::{Padded, Room, digit_count, digit_pair, put_digits};

/// Appends `v` in decimal, without allocating: a scrape is mostly integers (every
/// bucket and count), so this is the renderer's inner loop (the histogram writer uses
/// the same digits through its `Room`).
pub fn write_u64(out: &mut Vec<u8>, v: u64) {
    let mut room = Room::new(out, super::room::MAX_U64_DIGITS);
    // SAFETY: a u64 has at most MAX_U64_DIGITS digits, the budget.
    unsafe { room.u64(v) };
}

/// Appends `v` as the exposition formats spell it: `+Inf`, `-Inf`, `NaN`, plain decimal
/// for magnitudes in `[1e-5, 1e16)` and zero, scientific notation (`1e300`) otherwise.
/// Rust prints the shortest digits that round-trip in both notations.
pub fn write_f64(out: &mut Vec<u8>, v: f64) {
    out.extend_from_slice(f64_text(v).as_bytes());
}

/// `v` as [`write_f64`] writes it, in a [`Padded`] (every such spelling is at most 24
/// bytes: a sign and 17 digits with `0.0000` before them, or `-d.ddddddddddddddde-308`).
pub(crate) fn f64_text(v: f64) -> Padded {
    let mut text = Padded::new();
    let a = v.abs();
    let buf = text.array_mut();
    buf[0] = b'-';
    let sign = usize::from(v.is_sign_negative());
    // `a < 1e15` is false for NaN and infinities too; below it, `as i64` is exact
    // for integral values (and a plain conversion, no saturation).
    let int = if a < 1e15 { a as i64 } else { -1 };
    if int >= 0 && int as f64 == a {
        let int = int as u64;
        // Integral values (counts, byte sizes) take the fast path; `as u64` is exact
        // here. Zero keeps its sign (`-0`), as Rust prints it.
        let end = sign + digit_count(int);
        put_digits(&mut buf[sign..end], int);
        text.set_len(end);
    } else if let Some((m, k)) = shortest_decimal(a) {
        let len = write_decimal(buf, sign, m, k);
        text.set_len(len);
    } else if v.is_nan() {
        return fixed(b"NaN");
    } else if v == f64::INFINITY {
        return fixed(b"+Inf");
    } else if v == f64::NEG_INFINITY {
        return fixed(b"-Inf");
    } else {
        let mut rest = &mut buf[..];
        // The buffer holds every spelling (see above), so writing cannot fail.
        let _ = if v == 0.0 || (1e-5..1e16).contains(&a) {
            write!(rest, "{v}")
        } else {
            write!(rest, "{v:e}")
        };
        let len = Padded::CAPACITY - rest.len();
        text.set_len(len);
    }
    text
}

/// Cells a [`F64TextMemo`] keeps: the value's bits, then its text in three words,
/// zero-padded, the last word's top two bytes a sequence number instead (so texts of
/// up to 22 bytes are remembered).
pub(crate) const MEMO_CELLS: usize = 4;

/// The longest text a [`F64TextMemo`] remembers: three words but the sequence number.
const MEMO_TEXT: usize = 22;

/// The sequence number's place in the memo's last word.
const MEMO_SEQ_SHIFT: u32 = 48;

/// A memo of one value's [`f64_text`], for a value written again and again while it
/// rarely changes: a histogram's `_sum`, which an idle series keeps from one scrape
/// to the next (and most series of a large family are idle), while formatting it is
/// the largest single cost of rendering the series. Looking it up is a comparison
/// and five loads.
///
/// Scrapes of one series may run at once, so the memo is a small seqlock: a writer
/// takes it by making the sequence number (in the last word) odd with a
/// compare-exchange, a scrape that loses the race formats without writing, and a
/// reader uses what it read only if the last word was even and unchanged around its
/// reads. The text is a function of the bits beside it, so a memo that is stale is
/// only a miss. The sequence number has 16 bits: a reader could be fooled only by
/// 32,768 writes (one per scrape that saw the sum changed) between two of its loads.
pub(crate) struct F64TextMemo<'a> {
    cells: &'a [AtomicU64; MEMO_CELLS],
}

impl<'a> F64TextMemo<'a> {
    /// The memo kept in `cells` (all zero: empty).
    pub(crate) fn new(cells: &'a [AtomicU64; MEMO_CELLS]) -> F64TextMemo<'a> {
        F64TextMemo { cells }
    }

    /// `f64_text(v)`, from the memo when it holds `v`, else formatted and memoised.
    #[inline]
    pub(crate) fn text(&self, v: f64) -> Padded {
        let bits = v.to_bits();
        let [key, t0, t1, last] = self.cells;
        // Acquire, then the fence before the second load: the seqlock's reader side,
        // pairing with the writer's Release store and fence.
        let seen = last.load(Ordering::Acquire);
        let words = [
            t0.load(Ordering::Relaxed),
            t1.load(Ordering::Relaxed),
            seen & ((1 << MEMO_SEQ_SHIFT) - 1),
        ];
        let held = key.load(Ordering::Relaxed);
        fence(Ordering::Acquire);
        let stable = seen & (1 << MEMO_SEQ_SHIFT) == 0 && last.load(Ordering::Relaxed) == seen;
        // An empty memo has no text (every spelling has at least one byte).
        if stable && held == bits && words[0] != 0 {
            let mut text = Padded::new();
            let array = text.array_mut();
            for (chunk, word) in array.chunks_exact_mut(8).zip(words) {
                chunk.copy_from_slice(&word.to_le_bytes());
            }
            // The text is ASCII, so not zero, and zero-padded: each word holds as
            // many text bytes as its highest non-zero byte says.
            let len = words
                .iter()
                .map(|w| (71 - w.leading_zeros() as usize) / 8)
                .sum();
            text.set_len(len);
            return text;
        }
        let text = f64_text(v);
        let len = text.as_bytes().len();
        if stable && len <= MEMO_TEXT {
            self.write(seen, bits, &text.as_bytes()[..len]);
        }
        text
    }

    /// Replaces the memo, last seen with `seen` as its last word, by `bits` and
    /// `text`, unless another writer came first.
    fn write(&self, seen: u64, bits: u64, text: &[u8]) {
        let [key, t0, t1, last] = self.cells;
        let seq = seen >> MEMO_SEQ_SHIFT;
        let odd = (seq + 1) << MEMO_SEQ_SHIFT;
        // Relaxed on success, then the Release fence: the seqlock's writer side (no
        // data store below may be seen before the odd number). Failing, another
        // scrape is writing or wrote: leave it the memo.
        if last
            .compare_exchange(seen, odd, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        fence(Ordering::Release);
        let mut bytes = [0u8; 24];
        bytes[..text.len()].copy_from_slice(text);
        let word = |i: usize| u64::from_le_bytes(bytes[i * 8..][..8].try_into().expect("8"));
        key.store(bits, Ordering::Relaxed);
        t0.store(word(0), Ordering::Relaxed);
        t1.store(word(1), Ordering::Relaxed);
        // Even again, two past `seen` (16 bits, wrapping), with the text's last bytes.
        let even = ((seq + 2) & 0xffff) << MEMO_SEQ_SHIFT;
        last.store(even | word(2), Ordering::Release);
    }
}

/// A constant spelling.
fn fixed(bytes: &[u8]) -> Padded {
    Padded::from_slice(bytes).expect("short")
}

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

/// For `a` (positive, not integral, `1e-5 <= a < 1e15`), the decimal `m · 10^-k`
/// (`k > 0`, `m` without trailing zeros) with the fewest significant digits that
/// parses back to `a`, the one Rust's `{}` prints; `None` in the rare case it cannot
/// decide (a tie between two nearest decimals).
///
/// Rust's formatting machinery costs several hundred instructions per float, and a
/// scrape formats one per histogram series (`_sum`). Here the float is
/// `mant · 2^-s` exactly, and `mant · 10^k` fits in 128 bits over this range, so the
/// nearest decimal of `n` significant digits is integer arithmetic. It parses back to
/// `a` iff it lies within half a unit in the last place of `a` (a quarter below a
/// power of two, where the float below is closer). Trying `n` = 15, 16, 17 finds the
/// shortest: a decimal of at most 15 digits round-trips only if the nearest 15-digit
/// one does (stripping its trailing zeros gives it), two 16-digit decimals are further
/// apart than the round-trip interval, and of several 17-digit ones the nearest is the
/// one Rust picks.
///
/// One multiplication serves all three lengths: `a · 10^k0 = q + f / 2^64` exactly
/// (for `a >= 2^-12`), with `k0` chosen so that `q` has 17 or 18 digits. The nearest
/// decimal of `n` digits is `q` with its last `j` digits rounded away, decided by
/// those digits (`low`) and `f`; its distance from `a` in the same units is
/// `low + f / 2^64` (or what rounding up adds), compared with the half unit in the
/// last place in the same fixed point ([`Scale`]). So each length costs a few
/// 64-bit operations.
fn shortest_decimal(a: f64) -> Option<(u64, u32)> {
    let bits = a.to_bits();
    let e2 = ((bits >> 52) as i32) - 1023;
    if !(a < 1e15 && e2 >= MIN_E2) {
        // Below 2^-12 the fraction below needs more than 64 bits (rare for a sum).
        return None;
    }
    // a = mant / 2^s with s = 52 - e2, 3 <= s <= 64 here (2^-12 <= a < 2^50).
    let mant = (bits & ((1 << 52) - 1)) | (1 << 52);
    let scale = &SCALES[(e2 - MIN_E2) as usize];
    // a · 10^k0 in 64.64 fixed point: exact, and below 2^122 (at most 18 digits).
    let x = u128::from(mant) * scale.factor;
    let parts = Parts {
        q: (x >> 64) as u64,
        f: x as u64,
        half_ulp: scale.half_ulp,
        half_ulp_below: if mant == 1 << 52 {
            scale.quarter_ulp
        } else {
            scale.half_ulp
        },
    };
    let k0 = scale.k0;
    let (m, j, first) = if parts.q >= 100_000_000_000_000_000 {
        match parts.nearest::<3>()? {
            Some(m) => (m, 3, true),
            None => match parts.nearest::<2>()? {
                Some(m) => (m, 2, false),
                None => (parts.nearest::<1>()??, 1, false),
            },
        }
    } else {
        match parts.nearest::<2>()? {
            Some(m) => (m, 2, true),
            None => match parts.nearest::<1>()? {
                Some(m) => (m, 1, false),
                None => (parts.nearest::<0>()??, 0, false),
            },
        }
    };
    // (The 17-digit candidate always round-trips: the interval is wider than a unit
    // in its last digit. Were it not to, the general algorithm would take over.)
    let (mut m, mut k) = (m, k0 - j);
    if k == 0 {
        // An integer round-trips only for integral `a`: unreachable, but never wrong.
        return None;
    }
    // Trailing zeros, largest steps first (fewer than `k` of them: `a` is not
    // integral). Only the first length tried can have any: were the nearest 16-digit
    // decimal to end in 0, it would be a 15-digit one within the interval, and so
    // would the nearest 15-digit one (the interval is symmetric but below a power of
    // two, which is why that case strips too).
    if first || mant == 1 << 52 {
        for (step, unit) in [
            (8, 100_000_000),
            (8, 100_000_000),
            (4, 10_000),
            (2, 100),
            (1, 10),
        ] {
            if k > step && m % unit == 0 {
                m /= unit;
                k -= step;
            }
        }
    }
    Some((m, k))
}

/// The smallest binary exponent [`shortest_decimal`] takes (`s <= 64` below).
const MIN_E2: i32 = -12;

/// What [`shortest_decimal`] needs for a float `mant · 2^e2` (`2^52 <= mant < 2^53`,
/// `s = 52 - e2`), which depends on `e2` alone: computed at compile time for
/// `MIN_E2 <= e2 <= 49` (up to 2^50, past 1e15), so that a float costs one product.
#[derive(Clone, Copy)]
struct Scale {
    /// `k0`: `floor(e2 · log10 2)` is `floor(log10 a)` or one less, so
    /// `a · 10^k0` has 17 or 18 digits before the point with `k0 = 16 - floor(...)`
    /// (78913 / 2^18 is log10 2 closely enough for |e2| < 1650).
    k0: u32,
    /// `10^k0 · 2^(64 - s)`: times `mant`, `a · 10^k0` in 64.64 fixed point.
    factor: u128,
    /// Half a unit in the last place of `a`, in the same units: `10^k0 / 2` in units
    /// of `2^-s`; a distance `d` (an integer in those units) is within it iff
    /// `d <= (10^k0 - 1) / 2`, which is what this holds.
    half_ulp: Split,
    /// The same for a quarter (below a power of two).
    quarter_ulp: Split,
}

/// [`Scale`] for every `e2` from `MIN_E2` to 49.
const SCALES: [Scale; 62] = {
    let empty = Split { whole: 0, frac: 0 };
    let mut table = [Scale {
        k0: 0,
        factor: 0,
        half_ulp: empty,
        quarter_ulp: empty,
    }; 62];
    let mut i = 0;
    while i < table.len() {
        let e2 = MIN_E2 + i as i32;
        let s = (52 - e2) as u32;
        let k0 = (16 - ((e2 * 78913) >> 18)) as u32;
        let ten = POW10[k0 as usize];
        table[i] = Scale {
            k0,
            factor: ten << (64 - s),
            half_ulp: Split::new(((ten - 1) >> 1) << (64 - s)),
            quarter_ulp: Split::new(((ten - 1) >> 2) << (64 - s)),
        };
        i += 1;
    }
    table
};

/// A 64.64 fixed-point quantity: `whole + frac / 2^64`.
#[derive(Clone, Copy)]
struct Split {
    whole: u64,
    frac: u64,
}

impl Split {
    #[inline(always)]
    const fn new(v: u128) -> Split {
        Split {
            whole: (v >> 64) as u64,
            frac: v as u64,
        }
    }

    /// `self <= limit`.
    #[inline(always)]
    fn at_most(self, limit: Split) -> bool {
        self.whole < limit.whole || (self.whole == limit.whole && self.frac <= limit.frac)
    }
}

/// `a · 10^k0 = q + f / 2^64`, and half a unit in the last place of `a` in the same
/// units (above `a`, and below it).
struct Parts {
    q: u64,
    f: u64,
    half_ulp: Split,
    half_ulp_below: Split,
}

impl Parts {
    /// The nearest decimal to `a` with the last `J` digits of `q` rounded away, as the
    /// digits kept: `Some(Some(m))` when it parses back to `a`, `Some(None)` when it
    /// does not, `None` on a tie between two nearest (give up).
    #[inline(always)]
    fn nearest<const J: u32>(&self) -> Option<Option<u64>> {
        let unit = 10u64.pow(J);
        let (high, low) = (self.q / unit, self.q % unit);
        // Round up iff what is rounded away, `low + f / 2^64`, is more than half a
        // unit; exactly half is a tie.
        let (up, tie) = if J == 0 {
            (self.f > 1 << 63, self.f == 1 << 63)
        } else {
            let h = unit / 2;
            (
                low > h || (low == h && self.f != 0),
                low == h && self.f == 0,
            )
        };
        if tie {
            return None;
        }
        let (distance, limit) = if up {
            // unit - (low + f / 2^64), borrowing one from the whole part when f > 0.
            let distance = Split {
                whole: unit - low - u64::from(self.f != 0),
                frac: self.f.wrapping_neg(),
            };
            (distance, self.half_ulp)
        } else {
            let distance = Split {
                whole: low,
                frac: self.f,
            };
            (distance, self.half_ulp_below)
        };
        Some(distance.at_most(limit).then_some(high + u64::from(up)))
    }
}

/// Writes `-` when `sign` is 1, then `m · 10^-k` (`k > 0`, `m < 10^18` without
/// trailing zeros) in plain decimal (`0.0042`, `12.5`) at the start of `out`; returns
/// the length (at most 24: see [`f64_text`]).
///
/// The digits of `m` are made eight at a time ([`eight_digits`]) into 24 places,
/// zeros in front; the integer part (at most 15 digits, or the `0` before the
/// point) and the fraction (its leading zeros included) are then fixed-size copies
/// from them, with no loop over digits.
#[inline]
fn write_decimal(out: &mut [u8; Padded::CAPACITY], sign: usize, m: u64, k: u32) -> usize {
    let mut digits = [b'0'; 48];
    // The first block has at most two digits (m < 10^18).
    digits[6..8].copy_from_slice(&digit_pair(m / 10u64.pow(16)));
    digits[8..16].copy_from_slice(&eight_digits((m / 10u64.pow(8) % 10u64.pow(8)) as u32));
    digits[16..24].copy_from_slice(&eight_digits((m % 10u64.pow(8)) as u32));
    let k = k as usize;
    let int_len = digit_count(m).saturating_sub(k).max(1);
    let int_start = 24 - k - int_len;
    let mut text = [0u8; 48];
    text[0] = b'-';
    text[sign..sign + 16].copy_from_slice(&digits[int_start..int_start + 16]);
    let point = sign + int_len;
    text[point] = b'.';
    text[point + 1..point + 25].copy_from_slice(&digits[24 - k..48 - k]);
    out.copy_from_slice(&text[..Padded::CAPACITY]);
    point + 1 + k
}

/// `n < 10^8` as eight ASCII digits, by arithmetic on lanes of one 64-bit word: the
/// two halves of four digits in 32-bit lanes, split into pairs in 16-bit lanes, split
/// into digits in bytes. Each division is a multiplication and a shift (exact for
/// the lane's range) that leaves the other lanes alone.
#[inline(always)]
fn eight_digits(n: u32) -> [u8; 8] {
    // The first four digits in the low lane: little-endian memory order is digit order.
    let x = u64::from(n / 10_000) | (u64::from(n % 10_000) << 32);
    // v / 100 = (v · 5243) >> 19 for v < 10^4; v · 5243 < 2^26 stays in its lane.
    let hundreds = ((x * 5243) >> 19) & 0x0000_007f_0000_007f;
    let pairs = hundreds | ((x - hundreds * 100) << 16);
    // w / 10 = (w · 103) >> 10 for w < 100; w · 103 < 2^14 stays in its lane.
    let tens = ((pairs * 103) >> 10) & 0x000f_000f_000f_000f;
    let digits = tens | ((pairs - tens * 10) << 8);
    (digits | 0x3030_3030_3030_3030).to_le_bytes()
}

/// Formats `v` the way the text format 0.0.4 writes an `le` bound (`0.01`, `2`, `+Inf`).
pub fn le_text(v: f64) -> String {
    let mut out = Vec::new();
    write_f64(&mut out, v);
    String::from_utf8(out).expect("write_f64 writes ASCII")
}

/// Formats `v` in OpenMetrics' canonical form for `le` and `quantile` values: Go's `%g`
/// (shortest digits; exponent form when the decimal exponent is below -4 or at least 6) with
/// `.0` appended when the result has neither `.` nor `e`: `0.01`, `2.0`, `1e+06`, `+Inf`.
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

/// Appends a label value with `\`, `"` and newline escaped (both formats). The runs
/// between those bytes are copied whole: a trace id (an exemplar's label, written on
/// each traced request) is one copy.
pub fn write_label_value(out: &mut Vec<u8>, value: &str) {
    /// The bytes to escape, as a table: one load per byte instead of three compares.
    const ESCAPED: [bool; 256] = {
        let mut table = [false; 256];
        table[b'\\' as usize] = true;
        table[b'"' as usize] = true;
        table[b'\n' as usize] = true;
        table
    };
    let mut rest = value.as_bytes();
    while let Some(at) = rest.iter().position(|&b| ESCAPED[usize::from(b)]) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(match rest[at] {
            b'\\' => b"\\\\",
            b'"' => b"\\\"",
            _ => b"\\n",
        });
        rest = &rest[at + 1..];
    }
    out.extend_from_slice(rest);
}

/// Appends a HELP text for text format 0.0.4: `\` and newline escaped, nothing else.
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
pub fn write_help_openmetrics(out: &mut Vec<u8>, help: &str) {
    write_label_value(out, help);
}

/// Renders a label set `k1="v1",k2="v2"` (escaped, no braces) for caching in a series,
/// or for the `labels` argument of the [`super::Encoder`] sample methods. A name
/// outside the legacy set is quoted (`"service.name"="api"`); the encoder escapes it
/// when the scrape's escaping scheme asks for it.
///
/// ```
/// use tinyprom::exposition::render_label_pairs;
/// assert_eq!(render_label_pairs(&["a", "b"], &["1", "x\"y"]), "a=\"1\",b=\"x\\\"y\"");
/// ```
pub fn render_label_pairs(names: &[impl AsRef<str>], values: &[impl AsRef<str>]) -> String {
    let mut out = Vec::new();
    for (i, (name, value)) in names.iter().zip(values).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let name = name.as_ref();
        if is_legacy_label_name(name) {
            out.extend_from_slice(name.as_bytes());
        } else {
            // Quoted; a scrape under an escaping scheme rewrites it (`escaping.rs`).
            note_utf8_label_name();
            write_quoted(&mut out, name);
        }
        out.extend_from_slice(b"=\"");
        write_label_value(&mut out, value.as_ref());
        out.push(b'"');
    }
    String::from_utf8(out).expect("escaping keeps UTF-8 valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_u64_appends_decimal_digits() {
        let mut out = b"n=".to_vec();
        write_u64(&mut out, 42);
        assert_eq!(out, b"n=42");
    }

    #[test]
    fn write_f64_is_shortest_round_trip_with_special_values() {
        let mut out = Vec::new();
        for v in [0.1, 2.0, f64::INFINITY, f64::NAN, 1e300] {
            write_f64(&mut out, v);
            out.push(b' ');
        }
        assert_eq!(out, b"0.1 2 +Inf NaN 1e300 ");
    }

    #[test]
    fn le_text_drops_an_integers_fraction() {
        assert_eq!(le_text(2.0), "2");
    }

    #[test]
    fn le_openmetrics_is_canonical() {
        assert_eq!(le_openmetrics(2.0), "2.0");
        assert_eq!(le_openmetrics(1e6), "1e+06");
        assert_eq!(le_openmetrics(0.99), "0.99");
    }

    #[test]
    fn write_label_value_escapes_quote_and_newline() {
        let mut out = Vec::new();
        write_label_value(&mut out, "a\"b\nü");
        assert_eq!(out, "a\\\"b\\nü".as_bytes());
    }

    #[test]
    fn write_help_text_escapes_only_newline_and_backslash() {
        let mut out = Vec::new();
        write_help_text(&mut out, "say \"hi\"\n");
        assert_eq!(out, b"say \"hi\"\\n");
    }

    #[test]
    fn write_help_openmetrics_escapes_quotes_too() {
        let mut out = Vec::new();
        write_help_openmetrics(&mut out, "say \"hi\"\n");
        assert_eq!(out, b"say \\\"hi\\\"\\n");
    }

    fn f(v: f64) -> String {
        let mut out = Vec::new();
        write_f64(&mut out, v);
        String::from_utf8(out).unwrap()
    }

    /// The memo gives `f64_text`'s bytes, formatted or remembered, as values change
    /// and repeat; spellings of every length up to the longest (24 bytes) included.
    #[test]
    fn memo_gives_the_text_of_every_value() {
        let cells: [AtomicU64; MEMO_CELLS] = Default::default();
        let memo = F64TextMemo::new(&cells);
        let values = [
            0.0,
            -0.0,
            1.0,
            0.0042,
            0.03 / 7.0,
            -0.03 / 7.0,
            12345678.25,
            -1.2345678901234567e-300,
            f64::MAX,
            f64::MIN_POSITIVE,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e21,
            123456789012345.6,
        ];
        let mut lengths = std::collections::BTreeSet::new();
        for round in 0..3 {
            for &v in &values {
                let want = f64_text(v);
                for _ in 0..=round {
                    assert_eq!(memo.text(v).as_bytes(), want.as_bytes(), "{v:?}");
                }
                lengths.insert(want.as_bytes().len());
            }
        }
        assert!(lengths.contains(&24), "a 24-byte spelling: {lengths:?}");
        // A memo made empty, or torn to a key without its text, is formatted again.
        for cell in &cells {
            cell.store(0, Ordering::Relaxed);
        }
        assert_eq!(memo.text(0.0).as_bytes(), b"0");
        cells[1].store(0, Ordering::Relaxed);
        assert_eq!(memo.text(0.0).as_bytes(), b"0");
    }

    /// Scrapes of one series may use its memo at once: every text read is still the
    /// value's own, whichever writer wins.
    #[test]
    fn memo_shared_by_threads_gives_each_value_its_text() {
        let cells: [AtomicU64; MEMO_CELLS] = Default::default();
        let values = [0.1, 0.03 / 7.0, 12345.678, -2.5e-7, 1e300, 7.0];
        let want: Vec<Padded> = values.iter().map(|&v| f64_text(v)).collect();
        std::thread::scope(|scope| {
            for t in 0..4 {
                let (cells, values, want) = (&cells, &values, &want);
                scope.spawn(move || {
                    let memo = F64TextMemo::new(cells);
                    for i in 0..20_000 {
                        let k = (i * (t + 1) + t) % values.len();
                        assert_eq!(memo.text(values[k]).as_bytes(), want[k].as_bytes());
                    }
                });
            }
        });
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
            if v.fract() != 0.0
                && let Some((m, k)) = shortest_decimal(v.abs())
            {
                short += 1;
                let mut fast = [0u8; 32];
                let len = write_decimal(&mut fast, usize::from(v < 0.0), m, k);
                let fast = std::str::from_utf8(&fast[..len]).unwrap();
                assert_eq!(fast, format!("{v}"), "{v:e}");
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
        // Powers of two (an asymmetric interval) and their neighbours.
        for e in -16..50 {
            let p = 2f64.powi(e).to_bits();
            for v in (p - 2..p + 2).map(f64::from_bits) {
                assert_eq!(f(v), format!("{v}"), "{v:e}");
            }
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
    fn eight_digits_at_once() {
        let mut rng = fastrand::Rng::with_seed(5);
        let edges = [0, 1, 9, 10, 99, 100, 9999, 10_000, 99_999_999];
        for n in edges
            .into_iter()
            .chain((0..200_000).map(|_| rng.u32(..100_000_000)))
        {
            assert_eq!(eight_digits(n), *format!("{n:08}").as_bytes(), "{n}");
        }
    }

    #[test]
    fn decimal_exponent_estimate() {
        for e2 in -1100..1100 {
            let exact = (f64::from(e2) * std::f64::consts::LOG10_2).floor() as i32;
            assert_eq!((e2 * 78913) >> 18, exact, "{e2}");
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
