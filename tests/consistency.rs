//! Scrapes rendered while other threads observe are never torn.
//!
//! Several threads observe into a labeled histogram family while this thread renders
//! the registry thousands of times and parses every render with an independent parser
//! (`prometheus-parse`). Every series of every render must have cumulative,
//! non-decreasing buckets, `le="+Inf"` equal to `_count`, and a `_sum` that belongs to
//! exactly the observations counted; after the observers stop, the counts are exact.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use prometheus_parse::{Scrape, Value};
use tinyprom::metrics::{Buckets, Family, Histogram, NativeOptions, Registry};

/// Every observed value is a multiple of 1/1024 and the number of observations is small
/// enough that all sums are exact in f64: a sum either matches the counted
/// observations exactly or the render is torn.
const VALUES: [f64; 5] = [0.0048828125, 0.05078125, 0.30078125, 1.0, 5.0];

#[test]
fn renders_under_concurrent_observation_are_consistent() {
    let registry = Registry::new();
    let buckets = Buckets::new(&[0.01, 0.1, 0.5, 2.0]).unwrap();
    let family = Family::with_constructor(&["worker"], move || {
        Histogram::with_buckets(buckets.clone())
    })
    .unwrap();
    registry
        .register("work_duration_seconds", "Work.", family.clone())
        .unwrap();
    let threads = 3;
    let per_thread = 2_000_000usize;
    let running = Arc::new(AtomicUsize::new(threads));
    // Series checked while observers ran, published to the observers: on a loaded
    // machine the renderer may get little CPU, so observers go on past `per_thread`
    // (for at most 20 s) until enough renders overlapped them to mean something.
    let overlapped = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut renders = 0;
    let mut during = 0u64;
    let mut buf = Vec::new();
    let mut observed = [0usize; 3];
    std::thread::scope(|s| {
        let mut handles = Vec::new();
        for t in 0..threads {
            // Two threads share series "a", one has its own: contention on one series
            // and independent series both happen.
            let h = family
                .with_label_values(&[if t == 2 { "b" } else { "a" }])
                .unwrap();
            let running = Arc::clone(&running);
            let overlapped = Arc::clone(&overlapped);
            handles.push(s.spawn(move || {
                let mut i = 0;
                while i < per_thread
                    || (overlapped.load(Ordering::Relaxed) < 100 && Instant::now() < deadline)
                {
                    for _ in 0..1024 {
                        h.observe(VALUES[(i + t) % VALUES.len()]);
                        i += 1;
                    }
                }
                running.fetch_sub(1, Ordering::SeqCst);
                i
            }));
        }
        // Render until every observer is done, and at least 2,000 times; bounded by
        // 200,000 renders so the loop always ends.
        while (running.load(Ordering::SeqCst) > 0 || renders < 2_000) && renders < 200_000 {
            let observing = running.load(Ordering::SeqCst) > 0;
            buf.clear();
            registry.encode(&mut buf, tinyprom::exposition::Format::Text);
            let checked = check_render(&buf);
            if observing {
                during += checked;
                overlapped.store(during, Ordering::Relaxed);
            }
            renders += 1;
        }
        for (t, handle) in handles.into_iter().enumerate() {
            observed[t] = handle.join().unwrap();
        }
    });
    assert!(renders >= 2_000);
    assert!(
        during >= 100,
        "only {during} series were rendered while observers ran"
    );
    buf.clear();
    registry.encode(&mut buf, tinyprom::exposition::Format::Text);
    check_render(&buf);
    let scrape = parse(&buf);
    let counts: HashMap<String, f64> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "work_duration_seconds_count")
        .map(|s| (s.labels.get("worker").unwrap().to_string(), value(&s.value)))
        .collect();
    assert_eq!(counts["a"], (observed[0] + observed[1]) as f64);
    assert_eq!(counts["b"], observed[2] as f64);
    eprintln!("{renders} renders, {during} series checked while observers ran");
}

fn parse(buf: &[u8]) -> Scrape {
    let text = std::str::from_utf8(buf).expect("UTF-8");
    Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("parses")
}

fn value(v: &Value) -> f64 {
    match v {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
        other => panic!("unexpected {other:?}"),
    }
}

/// Checks every histogram series in one render; returns how many were checked.
fn check_render(buf: &[u8]) -> u64 {
    let scrape = parse(buf);
    let mut sums = HashMap::new();
    let mut counts = HashMap::new();
    let mut buckets = HashMap::new();
    for s in &scrape.samples {
        let key = s.labels.get("worker").unwrap().to_string();
        match (&*s.metric, &s.value) {
            ("work_duration_seconds_sum", v) => {
                sums.insert(key, value(v));
            }
            ("work_duration_seconds_count", v) => {
                counts.insert(key, value(v));
            }
            (_, Value::Histogram(b)) => {
                buckets.insert(key, b.clone());
            }
            other => panic!("unexpected sample {other:?}"),
        }
    }
    for (key, b) in &buckets {
        let count = counts[key];
        let les: Vec<f64> = b.iter().map(|c| c.less_than).collect();
        assert_eq!(les, [0.01, 0.1, 0.5, 2.0, f64::INFINITY], "bucket order");
        assert!(
            b.windows(2).all(|w| w[0].count <= w[1].count),
            "cumulative: {b:?}"
        );
        assert_eq!(b.last().unwrap().count, count, "+Inf == _count");
        // Each value lands in its own bucket, so the per-bucket counts say exactly how
        // many of each value were observed; the sum must match them exactly.
        let mut below = 0.0;
        let mut expected = 0.0;
        for (bucket, v) in b.iter().zip(VALUES) {
            expected += (bucket.count - below) * v;
            below = bucket.count;
        }
        assert_eq!(
            sums[key], expected,
            "_sum belongs to the counted observations: {b:?}"
        );
    }
    buckets.len() as u64
}

/// The same with native buckets: in every snapshot (the procedure a scrape uses), the
/// native buckets hold exactly the observations the classic buckets hold, value by
/// value, and their total plus the zero bucket is `_count`; protobuf renders taken
/// meanwhile are well framed.
#[test]
fn native_buckets_agree_with_classic_buckets_under_concurrent_observation() {
    let registry = Registry::new();
    let buckets = Buckets::with_native(&[0.01, 0.1, 0.5, 2.0], NativeOptions::new()).unwrap();
    let family = Family::with_constructor(&["worker"], move || {
        Histogram::with_buckets(buckets.clone())
    })
    .unwrap();
    registry
        .register("work_duration_seconds", "Work.", family.clone())
        .unwrap();
    let series: Vec<Histogram> = ["a", "b"]
        .iter()
        .map(|w| family.with_label_values(&[w]).unwrap())
        .collect();
    let threads = 3;
    let per_thread = 1_000_000usize;
    let running = Arc::new(AtomicUsize::new(threads));
    let mut checks = 0u64;
    let mut buf = Vec::new();
    std::thread::scope(|s| {
        for t in 0..threads {
            let h = series[usize::from(t == 2)].clone();
            let running = Arc::clone(&running);
            s.spawn(move || {
                for i in 0..per_thread {
                    h.observe(VALUES[(i + t) % VALUES.len()]);
                }
                running.fetch_sub(1, Ordering::SeqCst);
            });
        }
        let mut rounds = 0;
        while (running.load(Ordering::SeqCst) > 0 || rounds < 500) && rounds < 100_000 {
            for h in &series {
                check_native(&h.snapshot());
                checks += 1;
            }
            if rounds % 16 == 0 {
                buf.clear();
                registry.encode(&mut buf, tinyprom::exposition::Format::Protobuf);
                assert_framed(&buf);
            }
            rounds += 1;
        }
    });
    assert!(checks >= 1_000);
    let a = series[0].snapshot();
    let b = series[1].snapshot();
    assert_eq!(
        (a.count, b.count),
        ((2 * per_thread) as u64, per_thread as u64)
    );
    check_native(&a);
    check_native(&b);
}

/// One snapshot of a series observing only `VALUES`.
fn check_native(snap: &tinyprom::metrics::HistogramSnapshot) {
    let native = snap.native.as_ref().expect("native buckets");
    assert_eq!(native.total(), snap.count, "{snap:?}");
    assert_eq!(native.zero_count, 0);
    // Each value's native bucket holds what its classic bucket holds, but for the rare
    // observation the overflow shard took while every stripe was held and that fell
    // outside its fixed window: it counts in the window's edge bucket (the one
    // approximation `metrics/histogram/overflow.rs` documents). A wrong bucket index
    // would misplace whole classes of values, far beyond this allowance.
    let allowance = snap.count / 10_000;
    let mut below = 0;
    let mut misplaced = 0;
    for (v, &cumulative) in VALUES.iter().zip(&snap.cumulative) {
        let classic = cumulative - below;
        below = cumulative;
        let index = (f64::from(1 << native.schema) * v.log2()).ceil() as i32;
        let in_native = native
            .positive
            .iter()
            .find(|b| b.0 == index)
            .map_or(0, |b| b.1);
        misplaced += classic.abs_diff(in_native);
    }
    assert!(
        misplaced <= allowance,
        "{misplaced} observations outside their native bucket: {snap:?}"
    );
}

/// Every varint-delimited message of a protobuf render fits the render exactly.
fn assert_framed(mut body: &[u8]) {
    while !body.is_empty() {
        let mut len = 0usize;
        let mut shift = 0;
        loop {
            let byte = body[0];
            body = &body[1..];
            len |= usize::from(byte & 0x7f) << shift;
            shift += 7;
            if byte < 0x80 {
                break;
            }
        }
        assert!(len <= body.len(), "truncated message");
        body = &body[len..];
    }
}
