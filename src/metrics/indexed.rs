//! [`IndexedFamily`]: a labeled family whose label values are all known up front.
//!
//! The request path of an HTTP server knows its label values as small integers already
//! (the method is one of ten, the route one of a few, the status code a number), so it
//! can find its series by arithmetic instead of by hashing or comparing strings. Series
//! are created lazily, the first time an index is used, so combinations that never occur
//! are neither stored nor rendered.
//!
//! Storage is two-level to keep idle memory small: the label space is split into rows
//! (every dimension but the last) and a row of slots for the last dimension is allocated
//! only when one of its series is first used. A series is created once and never moved
//! or freed while the family lives, so the hot path hands out plain references.
//!
//! Beside the rows, a bitmap marks the created series, so that a scrape visits them
//! without looking at every empty slot: the last dimension is often wide and sparse
//! (of 500 status codes, a route answers a handful), and a scrape of ten thousand
//! series otherwise spends as much on empty slots as on a series' bookkeeping. It
//! lives outside the rows (a bit per possible series, allocated up front) so that
//! the lookup path stays as it was.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use super::name::validate_label_names;
use super::{Metric, MetricError, TypedMetric};
use crate::exposition::values::render_label_pairs;
use crate::exposition::{Encoder, MetricKind};

/// A family indexed by the position of each label value in a fixed list of values.
///
/// ```
/// use tinyprom::metrics::{Counter, IndexedFamily, Registry};
/// let family: IndexedFamily<Counter> = IndexedFamily::new(
///     &["method", "code"],
///     vec![vec!["GET".into(), "POST".into()], vec!["200".into(), "500".into()]],
///     Counter::new,
/// ).unwrap();
/// family.get(&[1, 0]).unwrap().inc(); // POST, 200
/// let registry = Registry::new();
/// registry.register("requests_total", "Requests.", family).unwrap();
/// assert!(registry.render_text().ends_with("requests_total{method=\"POST\",code=\"200\"} 1\n"));
/// ```
pub struct IndexedFamily<M> {
    inner: Arc<Inner<M>>,
}

impl<M> Clone for IndexedFamily<M> {
    fn clone(&self) -> Self {
        IndexedFamily {
            inner: Arc::clone(&self.inner),
        }
    }
}

struct Inner<M> {
    label_names: Box<[Box<str>]>,
    values: Box<[Box<[Box<str>]>]>,
    /// The number of values of each label, beside them so that a lookup reads one
    /// array instead of following a pointer per label.
    sizes: Box<[usize]>,
    /// The first [`INLINE_SIZES`] of `sizes`, in the family itself: a lookup of a
    /// family with that few labels finds them without following the pointer (one
    /// dependent load less before the row is known).
    inline_sizes: [usize; INLINE_SIZES],
    rows: Box<[OnceLock<Row<M>>]>,
    row_len: usize,
    /// Row `r`'s slot `i` is bit `i % 64` of word `r * words_per_row + i / 64`, set
    /// when its series is created.
    created: Box<[AtomicU64]>,
    words_per_row: usize,
    make: Box<dyn Fn() -> M + Send + Sync>,
}

/// Families with at most this many labels keep their sizes inline.
const INLINE_SIZES: usize = 4;
const _: () = assert!(
    INLINE_SIZES == 4,
    "`Inner::position` has an arm per inline size"
);

/// The lazily created series of one row (the last dimension).
type Row<M> = Box<[OnceLock<Series<M>>]>;

struct Series<M> {
    labels: Box<str>,
    metric: M,
}

impl<M: Send + Sync + 'static> IndexedFamily<M> {
    /// A family with one list of possible values per label name. Every list must be
    /// non-empty; there must be at least one label.
    pub fn new(
        label_names: &[&str],
        values: Vec<Vec<String>>,
        make: impl Fn() -> M + Send + Sync + 'static,
    ) -> Result<Self, MetricError> {
        validate_label_names(label_names)?;
        if values.len() != label_names.len() || label_names.is_empty() {
            return Err(MetricError::LabelCount {
                expected: label_names.len(),
                got: values.len(),
            });
        }
        // Exactly the last label's values: looking a slot up is the range check of
        // the last position (see `Inner::position`), so an empty list has no slot.
        let row_len = values.last().map_or(0, Vec::len);
        let rows: usize = values[..values.len() - 1]
            .iter()
            .map(|v| v.len().max(1))
            .product();
        Ok(IndexedFamily {
            inner: Arc::new(Inner {
                label_names: label_names.iter().map(|n| Box::from(*n)).collect(),
                sizes: values.iter().map(Vec::len).collect(),
                inline_sizes: std::array::from_fn(|i| values.get(i).map_or(0, Vec::len)),
                values: values
                    .into_iter()
                    .map(|v| v.into_iter().map(String::into_boxed_str).collect())
                    .collect(),
                rows: (0..rows).map(|_| OnceLock::new()).collect(),
                row_len,
                created: (0..rows * row_len.div_ceil(64))
                    .map(|_| AtomicU64::new(0))
                    .collect(),
                words_per_row: row_len.div_ceil(64),
                make: Box::new(make),
            }),
        })
    }

    /// The series at `index` (one position per label), created on first use; `None`
    /// when a position is out of range.
    #[inline]
    pub fn get(&self, index: &[usize]) -> Option<&M> {
        self.inner.get(index)
    }

    /// Calls `f` with the index (one position per label) and the metric of every
    /// series created so far, without creating any. Series created meanwhile by other
    /// threads may or may not be visited.
    pub fn visit(&self, mut f: impl FnMut(&[usize], &M)) {
        let inner = &*self.inner;
        let dims = inner.values.len();
        let mut index = vec![0; dims];
        for (row, slots) in inner.rows.iter().enumerate() {
            let Some(slots) = slots.get() else { continue };
            // The row number is the mixed-radix number of every position but the last.
            let mut rest = row;
            for dim in (0..dims - 1).rev() {
                let n = inner.values[dim].len().max(1);
                index[dim] = rest % n;
                rest /= n;
            }
            inner.for_each_in_row(row, slots, |slot, series| {
                index[dims - 1] = slot;
                f(&index, &series.metric);
            });
        }
    }

    /// The number of series created so far.
    pub fn len(&self) -> usize {
        let mut n = 0;
        self.inner.for_each_series(|_| n += 1);
        n
    }

    /// True when no series has been used yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<M: Send + Sync + 'static> Inner<M> {
    /// The row number and last position of `index`, if every position but the last
    /// is in range. The last is checked where it is used: a row has one slot per
    /// value of the last label, so looking the slot up checks it (a second check
    /// here would cost two instructions per lookup).
    ///
    /// Families of up to [`INLINE_SIZES`] labels have an arm each: where `get` is
    /// inlined the index's length is known, so one arm is left, unrolled, its range
    /// checks combined into one branch (measured: ten instructions fewer per lookup
    /// of three labels than the general loop).
    #[inline(always)]
    fn position(&self, index: &[usize]) -> Option<(usize, usize)> {
        let dims = self.sizes.len();
        let [s0, s1, s2, _] = self.inline_sizes;
        let (within, row, last) = match *index {
            [a] if dims == 1 => (true, 0, a),
            [a, b] if dims == 2 => (a < s0, a, b),
            [a, b, c] if dims == 3 => ((a < s0) & (b < s1), a * s1 + b, c),
            [a, b, c, d] if dims == 4 => ((a < s0) & (b < s1) & (c < s2), (a * s1 + b) * s2 + c, d),
            _ => return self.position_of_many(index),
        };
        within.then_some((row, last))
    }

    /// [`Inner::position`] for any number of labels.
    fn position_of_many(&self, index: &[usize]) -> Option<(usize, usize)> {
        let (&last, rest) = index.split_last()?;
        let (&last_size, rest_sizes) = self.sizes.split_last()?;
        if rest.len() != rest_sizes.len() || last >= last_size {
            return None;
        }
        let mut row = 0;
        for (&i, &n) in rest.iter().zip(rest_sizes) {
            if i >= n {
                return None;
            }
            row = row * n + i;
        }
        Some((row, last))
    }

    #[inline]
    fn get(&self, index: &[usize]) -> Option<&M> {
        // A series that exists is two loads of initialised cells; creating the row or
        // the series is out of line, so the hot path builds no closure for it
        // (measured: four instructions per observation).
        let (row, last) = self.position(index)?;
        let Some(slots) = self.rows.get(row)?.get() else {
            return self.get_or_create(index);
        };
        match slots.get(last)?.get() {
            Some(series) => Some(&series.metric),
            None => self.get_or_create(index),
        }
    }

    /// [`Inner::get`] when the row or the series may not exist yet.
    #[cold]
    #[inline(never)]
    fn get_or_create(&self, index: &[usize]) -> Option<&M> {
        let (row, last) = self.position(index)?;
        let slots = self
            .rows
            .get(row)?
            .get_or_init(|| (0..self.row_len).map(|_| OnceLock::new()).collect());
        let series = slots.get(last)?.get_or_init(|| self.create(index));
        Some(&series.metric)
    }

    /// Makes the series at `index` (in range) and marks it created.
    #[cold]
    fn create(&self, index: &[usize]) -> Series<M> {
        // The row number again, rather than passed in by `get`: keeping it live across
        // the lookup costs the hot path six instructions per observation (measured),
        // this costs nothing but once per series.
        let (&slot, rest) = index.split_last().expect("at least one label");
        let row = rest
            .iter()
            .zip(&self.sizes)
            .fold(0, |row, (&i, &n)| row * n + i);
        // Release: a scrape that sees the bit (Acquire) and then finds the slot
        // initialised sees the series; one that looks before the slot is initialised
        // (this runs just before) skips it, as a series created during a scrape may be.
        self.created[row * self.words_per_row + slot / 64]
            .fetch_or(1 << (slot % 64), Ordering::Release);
        let values: Vec<&str> = index
            .iter()
            .zip(self.values.iter())
            .map(|(&i, vals)| &*vals[i])
            .collect();
        Series {
            labels: render_label_pairs(&self.label_names, &values).into(),
            metric: (self.make)(),
        }
    }

    /// Calls `f` with `(slot, series)` of every series created in row `row`
    /// (`slots`), in slot order.
    #[inline]
    fn for_each_in_row<'s>(
        &self,
        row: usize,
        slots: &'s Row<M>,
        mut f: impl FnMut(usize, &'s Series<M>),
    ) {
        let words = &self.created[row * self.words_per_row..][..self.words_per_row];
        for (word, bits) in words.iter().enumerate() {
            // Acquire: pairs with the Release in `create`.
            let mut bits = bits.load(Ordering::Acquire);
            while bits != 0 {
                let slot = word * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                if let Some(series) = slots[slot].get() {
                    f(slot, series);
                }
            }
        }
    }

    /// Calls `f` with every series created so far, in index order.
    #[inline]
    fn for_each_series<'s>(&'s self, mut f: impl FnMut(&'s Series<M>)) {
        for (row, slots) in self.rows.iter().enumerate() {
            if let Some(slots) = slots.get() {
                self.for_each_in_row(row, slots, |_, series| f(series));
            }
        }
    }
}

impl<M: TypedMetric> Metric for IndexedFamily<M> {
    fn kind(&self) -> MetricKind {
        M::KIND
    }

    fn encode(&self, name: &str, _labels: &str, enc: &mut Encoder<'_>) {
        // Four series behind the visit: each series' label text and state are asked
        // for (`prefetch`) when it is visited and written four series later, so its
        // cache misses overlap the writing of the series before it (measured: at
        // 10,000 series a fifth off a render whose series are spread over the heap,
        // a little when they are not).
        const AHEAD: usize = 4;
        let mut ring: [Option<&Series<M>>; AHEAD] = [None; AHEAD];
        let mut i = 0;
        self.inner.for_each_series(|next| {
            crate::metrics::prefetch::read_span(next.labels.as_ptr(), next.labels.len());
            next.metric.prefetch();
            if let Some(series) = ring[i % AHEAD].replace(next) {
                series.metric.encode(name, &series.labels, enc);
            }
            i += 1;
        });
        for k in 0..AHEAD {
            if let Some(series) = ring[(i + k) % AHEAD] {
                series.metric.encode(name, &series.labels, enc);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Counter;

    fn family() -> IndexedFamily<Counter> {
        IndexedFamily::new(
            &["a", "b", "c"],
            vec![
                vec!["a0".into(), "a1".into()],
                vec!["b0".into(), "b1".into(), "b2".into()],
                vec!["c0".into(), "c1".into()],
            ],
            Counter::new,
        )
        .unwrap()
    }

    #[test]
    fn visit_sees_the_created_series_by_index_and_creates_none() {
        let f = family();
        f.get(&[1, 2, 1]).unwrap().inc();
        f.get(&[0, 1, 0]).unwrap().inc_by(2);
        f.get(&[1, 0, 1]).unwrap().inc_by(3);
        let mut seen = Vec::new();
        f.visit(|index, c| seen.push((index.to_vec(), c.get())));
        assert_eq!(
            seen,
            [(vec![0, 1, 0], 2), (vec![1, 0, 1], 3), (vec![1, 2, 1], 1)]
        );
        assert_eq!(f.len(), 3);
    }

    #[test]
    fn lazily_created_in_index_order() {
        let f = family();
        assert!(f.is_empty());
        f.get(&[1, 2, 1]).unwrap().inc();
        f.get(&[0, 1, 0]).unwrap().inc_by(2);
        f.get(&[1, 2, 1]).unwrap().inc();
        assert_eq!(f.len(), 2);
        let mut buf = Vec::new();
        f.encode(
            "x_total",
            "",
            &mut Encoder::new(&mut buf, crate::exposition::Format::Text),
        );
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "x_total{a=\"a0\",b=\"b1\",c=\"c0\"} 2\nx_total{a=\"a1\",b=\"b2\",c=\"c1\"} 2\n"
        );
    }

    /// The bitmap of created series spans several words of a wide last dimension.
    #[test]
    fn wide_rows_visit_every_created_series_in_order() {
        let codes: Vec<String> = (0..130).map(|c| c.to_string()).collect();
        let f: IndexedFamily<Counter> = IndexedFamily::new(
            &["a", "c"],
            vec![vec!["x".into(), "y".into()], codes],
            Counter::new,
        )
        .unwrap();
        let made = [[1, 129], [0, 64], [1, 0], [0, 63], [0, 0], [1, 65]];
        for index in made {
            f.get(&index).unwrap().inc();
        }
        let mut seen = Vec::new();
        f.visit(|index, _| seen.push(index.to_vec()));
        let mut expected: Vec<Vec<usize>> = made.iter().map(|i| i.to_vec()).collect();
        expected.sort();
        assert_eq!(seen, expected);
        assert_eq!(f.len(), made.len());
    }

    /// Encoding runs a few series behind the visit (see `encode`); every series still
    /// comes out once, in index order, however many there are.
    #[test]
    fn encode_keeps_index_order_across_the_lookahead() {
        for n in 0..12 {
            let codes: Vec<String> = (0..70).map(|c| c.to_string()).collect();
            let f: IndexedFamily<Counter> = IndexedFamily::new(
                &["a", "c"],
                vec![vec!["x".into(), "y".into()], codes],
                Counter::new,
            )
            .unwrap();
            let made: Vec<[usize; 2]> = (0..n).map(|i| [(i * 7) % 2, (i * 37) % 70]).collect();
            for index in &made {
                f.get(index).unwrap().inc();
            }
            let mut expected = made.clone();
            expected.sort();
            expected.dedup();
            let want: String = expected
                .iter()
                .map(|[a, c]| format!("t{{a=\"{}\",c=\"{c}\"}} 1\n", ["x", "y"][*a]))
                .collect();
            let mut buf = Vec::new();
            f.encode(
                "t",
                "",
                &mut Encoder::new(&mut buf, crate::exposition::Format::Text),
            );
            assert_eq!(String::from_utf8(buf).unwrap(), want, "{n} series");
        }
    }

    #[test]
    fn out_of_range_is_none() {
        let f = family();
        assert!(f.get(&[2, 0, 0]).is_none());
        assert!(f.get(&[0, 3, 0]).is_none());
        assert!(f.get(&[0, 0, 2]).is_none());
        assert!(f.get(&[0, 0]).is_none());
        assert!(f.get(&[]).is_none());
        assert!(f.get(&[0, 0, 0, 0]).is_none());
        assert!(f.is_empty());
    }

    #[test]
    fn a_label_without_values_has_no_series() {
        for empty in 0..3 {
            let values = (0..3)
                .map(|d| {
                    if d == empty {
                        vec![]
                    } else {
                        vec!["a".to_string()]
                    }
                })
                .collect();
            let f: IndexedFamily<Counter> =
                IndexedFamily::new(&["x", "y", "z"], values, Counter::new).unwrap();
            assert!(f.get(&[0, 0, 0]).is_none(), "label {empty} empty");
            assert!(f.is_empty());
        }
    }

    #[test]
    fn families_with_more_labels_than_kept_inline_find_their_series() {
        let dims = INLINE_SIZES + 2;
        let names: Vec<String> = (0..dims).map(|d| format!("l{d}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        // Sizes 2, 3, 4, ...: a wrong stride in the row number would collide.
        let values = (0..dims)
            .map(|d| (0..d + 2).map(|v| v.to_string()).collect())
            .collect();
        let f: IndexedFamily<Counter> = IndexedFamily::new(&names, values, Counter::new).unwrap();
        let last: Vec<usize> = (0..dims).map(|d| d + 1).collect();
        f.get(&last).unwrap().inc_by(7);
        f.get(&vec![0; dims]).unwrap().inc();
        assert_eq!(f.get(&last).unwrap().get(), 7);
        assert_eq!(f.get(&vec![0; dims]).unwrap().get(), 1);
        let mut too_far = last.clone();
        too_far[INLINE_SIZES] += 1;
        assert!(f.get(&too_far).is_none());
        assert!(f.get(&last[..dims - 1]).is_none());
        assert!(f.get(&last[..INLINE_SIZES]).is_none());
        assert_eq!(f.len(), 2);
    }
}
