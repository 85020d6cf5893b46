//! `make bench`: tinyprom's histogram against the peer crates, measured in one run on
//! one workload, printed as markdown tables of medians with the range over repetitions
//! and ratios against tinyprom.
//!
//! `cargo bench --bench compare` runs the full measurement (cargo passes `--bench`);
//! without that flag (as `cargo test --all-targets` runs it) it does a quick smoke run
//! that exercises every path and checks the renders, so the benchmark cannot rot.

mod alloc;
#[cfg(feature = "metrics-facade")]
mod facade;
mod subjects;
mod timing;

use std::hint::black_box;
use std::sync::Barrier;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use subjects::metrics_rs::{MetricsRs, MetricsRsNative};
use subjects::prom_client::{PromClient, PromClientNative};
use subjects::tikv::Tikv;
use subjects::tinyprom_family::TinypromFamily;
use subjects::tinyprom_indexed::{Tinyprom, TinypromNative};
use subjects::{BOUNDS, Call, ProtobufSubject, Subject, VALUES, traffic};
use timing::{Plan, Stats, load_average, per_iteration};

#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting;

/// The peers, in table order (tinyprom's own rows come first).
const PEERS: [&str; 3] = ["prometheus (tikv)", "prometheus-client", "metrics"];

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let plan = if full { Plan::FULL } else { Plan::SMOKE };
    if let Ok(key) = std::env::var(CHILD) {
        return run_child(&key, plan);
    }
    let render_sizes: &[usize] = if full { &[1, 1_000, 10_000] } else { &[1, 50] };
    let memory_series = if full { 10_000 } else { 200 };

    print_machine(plan);

    let mut summary = Summary::default();

    let processes = if full { PROCESSES } else { 2 };
    println!("\n### 1. Observe through the label path (single thread, ns/op)\n");
    println!(
        "Each library in {processes} fresh processes, one after the other: the median of their medians, the range over all their repetitions. Where a process's stack lies against its heap slows a loop this short by up to three quarters in some processes and not at all in most (most likely 4 KiB aliasing of its stores and loads: moving the stack by 16 bytes turns it on and off), the same in every repetition of one process, so a process is one draw of that layout.\n"
    );
    let rows = vec![
        ("tinyprom", in_processes("labeled/tinyprom", processes)),
        (
            "tinyprom Family",
            in_processes("labeled/tinyprom-family", processes),
        ),
        (PEERS[0], in_processes("labeled/tikv", processes)),
        (
            PEERS[1],
            in_processes("labeled/prometheus-client", processes),
        ),
        (PEERS[2], in_processes("labeled/metrics", processes)),
    ];
    print_table("ns/op", &rows);
    summary.labeled = Some((rows[0].1, best_peer(&rows)));

    println!("\n### 1b. The same with native buckets (schema 3; single thread, ns/op)\n");
    println!(
        "tinyprom and prometheus-client keep native buckets beside the classic ones; metrics-exporter-prometheus keeps them instead of the classic ones.\n"
    );
    let rows = vec![
        (
            "tinyprom",
            in_processes("labeled/tinyprom-native", processes),
        ),
        (
            PEERS[1],
            in_processes("labeled/prometheus-client-native", processes),
        ),
        (PEERS[2], in_processes("labeled/metrics-native", processes)),
    ];
    print_table("ns/op", &rows);
    summary.labeled_native = Some((rows[0].1, best_peer(&rows)));

    println!("\n### 1c. tinyprom with an exemplar on every observation (single thread, ns/op)\n");
    println!(
        "`observe_with_exemplar` with a trace id and span id (63 characters), as the server records a request in a sampled trace; the plain observe beside it for the ratio.\n"
    );
    let rows = vec![
        (
            "tinyprom observe",
            in_processes("labeled/tinyprom", processes),
        ),
        (
            "tinyprom observe_with_exemplar",
            in_processes("labeled/tinyprom-exemplar", processes),
        ),
        (
            "tinyprom (native) observe_with_exemplar",
            in_processes("labeled/tinyprom-native-exemplar", processes),
        ),
    ];
    print_table("ns/op", &rows);

    println!("\n### 2. Observe on a pre-resolved series (single thread, ns/op)\n");
    let bare = bare_atomics(plan);
    let rows = vec![
        ("tinyprom", resolved::<Tinyprom>(plan)),
        (PEERS[0], resolved::<Tikv>(plan)),
        (PEERS[1], resolved::<PromClient>(plan)),
        (PEERS[2], resolved::<MetricsRs>(plan)),
        ("bare atomics (1 CAS + stores)", bare),
    ];
    print_table("ns/op", &rows);
    summary.resolved = Some((rows[0].1, bare));

    println!("\n### 3. Two threads observing the same series\n");
    println!(
        "Both threads observe for the same stretch of time; the total adds up their observations, per thread is each thread's own time per observation, averaged.\n"
    );
    let rows = vec![
        ("tinyprom", two_threads::<Tinyprom>(plan)),
        (PEERS[0], two_threads::<Tikv>(plan)),
        (PEERS[1], two_threads::<PromClient>(plan)),
        (PEERS[2], two_threads::<MetricsRs>(plan)),
    ];
    println!(
        "| library | ns/op per thread | min–max | total Mops/s | min–max | tinyprom's total ÷ this | CPU overlap (2 = side by side) | repetitions kept |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (name, p) in &rows {
        println!(
            "| {name} | {:.2} | {:.2}–{:.2} | {:.1} | {:.1}–{:.1} | {:.2}x | {:.2} | {} of {} |",
            p.per_op.median,
            p.per_op.min,
            p.per_op.max,
            p.mops.median,
            p.mops.min,
            p.mops.max,
            rows[0].1.mops.median / p.mops.median,
            p.overlap.median,
            p.kept,
            p.tried
        );
    }
    summary.two_threads = Some(rows[0].1.mops);

    println!("\n### 4. Render a scrape of N histogram series (text format)\n");
    println!(
        "| library | series | ms/scrape | min–max | ns/series | bytes allocated per scrape after the first | scrape bytes | ÷ tinyprom |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for &n in render_sizes {
        let rows = vec![
            ("tinyprom", render::<Tinyprom>(plan, n)),
            (PEERS[0], render::<Tikv>(plan, n)),
            (PEERS[1], render::<PromClient>(plan, n)),
            (PEERS[2], render::<MetricsRs>(plan, n)),
        ];
        for (name, r) in &rows {
            println!(
                "| {name} | {n} | {:.4} | {:.4}–{:.4} | {:.0} | {} | {} | {:.2}x |",
                r.ns.median / 1e6,
                r.ns.min / 1e6,
                r.ns.max / 1e6,
                r.ns.median / n as f64,
                r.allocated_after_first,
                r.bytes,
                r.ns.median / rows[0].1.ns.median
            );
        }
        if n == render_sizes[render_sizes.len() - 1] {
            summary.render = Some((rows[0].1, rows[2].1, n));
        }
    }

    println!("\n### 4b. Render a scrape of N histogram series (protobuf format)\n");
    println!(
        "| library | buckets | series | ms/scrape | min–max | ns/series | bytes allocated per scrape after the first | scrape bytes | ÷ tinyprom |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for &n in render_sizes {
        let rows = [
            ("tinyprom", "classic", render_protobuf::<Tinyprom>(plan, n)),
            (
                "tinyprom",
                "classic + native",
                render_protobuf::<TinypromNative>(plan, n),
            ),
            (PEERS[1], "classic", render_protobuf::<PromClient>(plan, n)),
            (
                PEERS[1],
                "classic + native",
                render_protobuf::<PromClientNative>(plan, n),
            ),
            (
                PEERS[2],
                "native",
                render_protobuf::<MetricsRsNative>(plan, n),
            ),
        ];
        for (name, buckets, r) in &rows {
            let base = if buckets.contains("native") {
                &rows[1].2
            } else {
                &rows[0].2
            };
            println!(
                "| {name} | {buckets} | {n} | {:.4} | {:.4}–{:.4} | {:.0} | {} | {} | {:.2}x |",
                r.ns.median / 1e6,
                r.ns.min / 1e6,
                r.ns.max / 1e6,
                r.ns.median / n as f64,
                r.allocated_after_first,
                r.bytes,
                r.ns.median / base.ns.median,
            );
        }
        if n == render_sizes[render_sizes.len() - 1] {
            let peer = rows[3].2.ns.median.min(rows[4].2.ns.median);
            summary.protobuf = Some((rows[1].2, peer, n));
        }
    }

    println!("\n### 5. Memory per series ({memory_series} series, 4 bounds + +Inf)\n");
    println!("| library | bytes per series | what is counted |");
    println!("|---|---:|---|");
    let alone = bytes_per_bare_histogram(memory_series, false);
    println!("| tinyprom `Histogram` | {alone:.0} | the series' state (one allocation) |");
    let native = bytes_per_bare_histogram(memory_series, true);
    println!(
        "| tinyprom `Histogram`, classic + native | {native:.0} | the same, with 2 windows of 80 native buckets and their header |"
    );
    let rows = [
        (
            "tinyprom `IndexedFamily`",
            bytes_per_series::<Tinyprom>(memory_series),
            "state + lazily allocated rows of 500 code slots + label text",
        ),
        (
            "tinyprom `Family`",
            bytes_per_series::<TinypromFamily>(memory_series),
            "state + label values + label text",
        ),
        (
            PEERS[0],
            bytes_per_series::<Tikv>(memory_series),
            "everything the family holds",
        ),
        (
            PEERS[1],
            bytes_per_series::<PromClient>(memory_series),
            "everything the family holds",
        ),
        (
            PEERS[2],
            bytes_per_series::<MetricsRs>(memory_series),
            "everything the recorder holds",
        ),
    ];
    for (name, bytes, what) in rows {
        println!("| {name} | {bytes:.0} | {what} |");
    }
    summary.bytes_per_series = Some(alone);
    summary.striped_extra = Some(striped_extra_bytes());

    facade_section(plan, processes, render_sizes, &mut summary);

    if full {
        summary.print();
    } else {
        println!(
            "\nSmoke run (no `--bench`): every path ran and every render checked out; the figures above are not measurements. Run `make bench`."
        );
    }
}

fn print_machine(plan: Plan) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("## tinyprom benchmark\n");
    println!(
        "Machine: {cpu}, {cpus} CPUs available, load average {} at the start. Repetitions: {} of about {} ms each (median, min–max).",
        load_average(),
        plan.reps,
        plan.batch.as_millis()
    );
    println!("Versions: {}.", versions());
    println!(
        "Workload: histogram `{}` with labels method, url, code and buckets {BOUNDS:?}.",
        subjects::NAME
    );
}

/// The peers' versions, read from the lock file the benchmark was built with.
fn versions() -> String {
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock"))
        .unwrap_or_default();
    let mut out = Vec::new();
    for name in [
        "prometheus",
        "prometheus-client",
        "metrics",
        "metrics-exporter-prometheus",
    ] {
        let needle = format!("name = \"{name}\"\nversion = \"");
        let version = lock
            .split_once(&needle)
            .and_then(|(_, rest)| rest.split('"').next())
            .unwrap_or("?");
        out.push(format!("{name} {version}"));
    }
    out.join(", ")
}

/// The peer with the lowest median.
fn best_peer(rows: &[(&str, Stats)]) -> (&'static str, Stats) {
    PEERS
        .iter()
        .filter_map(|p| rows.iter().find(|(n, _)| n == p).map(|(_, s)| (*p, *s)))
        .min_by(|a, b| a.1.median.total_cmp(&b.1.median))
        .expect("peers measured")
}

fn print_table(unit: &str, rows: &[(&str, Stats)]) {
    println!("| library | {unit} | min–max | ÷ tinyprom |");
    println!("|---|---:|---:|---:|");
    for (name, s) in rows {
        println!(
            "| {name} | {:.2} | {:.2}–{:.2} | {:.2}x |",
            s.median,
            s.min,
            s.max,
            s.median / rows[0].1.median
        );
    }
}

/// A value index that walks all eight values in a different order from the calls.
#[inline]
fn value(i: u64) -> f64 {
    VALUES[((i + (i >> 3)) & 7) as usize]
}

/// The environment variable that makes this program a child measuring one thing.
const CHILD: &str = "TINYPROM_BENCH_CHILD";
/// Processes per labeled measurement in the full run.
const PROCESSES: usize = 5;

/// A child's measurement, `key` as [`in_processes`] names it: printed as
/// `median min max` on one line.
fn run_child(key: &str, plan: Plan) {
    let stats = match key {
        "labeled/tinyprom" => labeled::<Tinyprom>(plan),
        "labeled/tinyprom-family" => labeled::<TinypromFamily>(plan),
        "labeled/tikv" => labeled::<Tikv>(plan),
        "labeled/prometheus-client" => labeled::<PromClient>(plan),
        "labeled/metrics" => labeled::<MetricsRs>(plan),
        "labeled/tinyprom-native" => labeled::<TinypromNative>(plan),
        "labeled/prometheus-client-native" => labeled::<PromClientNative>(plan),
        "labeled/metrics-native" => labeled::<MetricsRsNative>(plan),
        "labeled/tinyprom-exemplar" => labeled_with_exemplar::<false>(plan),
        "labeled/tinyprom-native-exemplar" => labeled_with_exemplar::<true>(plan),
        #[cfg(feature = "metrics-facade")]
        key if key.starts_with("facade/") => facade::child(key, plan),
        _ => panic!("unknown measurement {key}"),
    };
    println!("{} {} {}", stats.median, stats.min, stats.max);
}

/// Runs measurement `key` (see [`run_child`]) in `n` fresh processes of this program,
/// one at a time: the median of their medians, and the lowest and highest repetition
/// of any of them.
fn in_processes(key: &str, n: usize) -> Stats {
    let exe = std::env::current_exe().expect("own path");
    let mut runs: Vec<Stats> = (0..n)
        .map(|_| {
            let out = std::process::Command::new(&exe)
                .args(std::env::args_os().skip(1))
                .env(CHILD, key)
                .output()
                .expect("child runs");
            assert!(out.status.success(), "{key}: {:?}", out.status);
            let text = String::from_utf8_lossy(&out.stdout);
            let figures: Vec<f64> = text
                .split_whitespace()
                .map(|f| f.parse().expect("a figure"))
                .collect();
            let [median, min, max] = figures[..] else {
                panic!("{key}: {text:?}");
            };
            Stats { median, min, max }
        })
        .collect();
    runs.sort_by(|a, b| a.median.total_cmp(&b.median));
    let median = if n % 2 == 1 {
        runs[n / 2].median
    } else {
        (runs[n / 2 - 1].median + runs[n / 2].median) / 2.0
    };
    Stats {
        median,
        min: runs.iter().map(|r| r.min).fold(f64::INFINITY, f64::min),
        max: runs.iter().map(|r| r.max).fold(f64::NEG_INFINITY, f64::max),
    }
}

/// [`labeled`] for tinyprom, with an exemplar on every observation.
fn labeled_with_exemplar<const NATIVE: bool>(plan: Plan) -> Stats {
    let subject = subjects::tinyprom_indexed::TinypromWith::<NATIVE>::new();
    let calls = traffic();
    for call in &calls {
        subject.observe_labeled_with_exemplar(call, 0.1);
    }
    per_iteration(plan, |n| {
        for i in 0..n {
            subject.observe_labeled_with_exemplar(
                black_box(&calls[(i & 7) as usize]),
                black_box(value(i)),
            );
        }
    })
}

fn labeled<S: Subject>(plan: Plan) -> Stats {
    let subject = S::new();
    let calls = traffic();
    for call in &calls {
        subject.observe_labeled(call, 0.1);
    }
    per_iteration(plan, |n| {
        for i in 0..n {
            subject.observe_labeled(black_box(&calls[(i & 7) as usize]), black_box(value(i)));
        }
    })
}

fn resolved<S: Subject>(plan: Plan) -> Stats {
    let subject = S::new();
    let series = subject.series(&traffic()[0]);
    per_iteration(plan, |n| {
        for i in 0..n {
            S::observe(black_box(&series), black_box(value(i)));
        }
    })
}

/// The atomic operations a consistent observation needs and nothing else: take a
/// lock word with one compare-exchange, add to a sum and a bucket with plain loads and
/// stores, release with a store; one cache line, no lookup. The floor for a
/// pre-resolved observe.
fn bare_atomics(plan: Plan) -> Stats {
    #[repr(align(128))]
    struct Line([AtomicU64; 7]);
    let line = Line(Default::default());
    let bucket_of: Vec<usize> = VALUES
        .iter()
        .map(|v| BOUNDS.iter().position(|b| v <= b).unwrap_or(BOUNDS.len()))
        .collect();
    per_iteration(plan, |n| {
        let cells = black_box(&line.0);
        for i in 0..n {
            let k = ((i + (i >> 3)) & 7) as usize;
            let v = black_box(VALUES[k]);
            while cells[0]
                .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                std::hint::spin_loop();
            }
            let sum = &cells[1];
            sum.store(
                (f64::from_bits(sum.load(Ordering::Relaxed)) + v).to_bits(),
                Ordering::Relaxed,
            );
            let bucket = &cells[2 + bucket_of[k]];
            bucket.store(bucket.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
            cells[0].store(0, Ordering::Release);
        }
    })
}

/// What the two-thread benchmark measured.
#[derive(Clone, Copy)]
struct Pair {
    /// Wall-clock ns per observation on each thread.
    per_op: Stats,
    /// Millions of observations a second, both threads together.
    mops: Stats,
    /// CPU time of both threads over wall time: 2.0 when they really ran side by side.
    overlap: Stats,
    /// Repetitions kept (those that ran side by side).
    kept: usize,
    /// Repetitions run.
    tried: usize,
}

/// Two threads observe one series for the same stretch of time, and their
/// observations are added up. (Giving each a fixed number of observations instead
/// would measure the slower thread: when one thread is faster, as the owner of a
/// tinyprom series is, it finishes early and the rest of the run is one thread.) On a
/// shared machine the two threads sometimes get one CPU between them, which measures
/// time slicing instead of contention (and flatters every library that collapses
/// under contention), so each thread's CPU time is measured too and only repetitions
/// where both ran side by side (CPU time / wall time ≥ 1.8) are kept, retrying up to
/// three times as many; if too few qualify, all are kept and the overlap column says so.
fn two_threads<S: Subject>(plan: Plan) -> Pair {
    /// Observations between two looks at the stop flag.
    const CHUNK: u64 = 256;
    let subject = S::new();
    let series = subject.series(&traffic()[0]);
    let mut all = Vec::new();
    let mut good = Vec::new();
    for rep in 0..=3 * plan.reps {
        if good.len() >= plan.reps {
            break;
        }
        let barrier = Barrier::new(3);
        let stop = std::sync::atomic::AtomicBool::new(false);
        // Each thread reports when it started and finished (wall clock), how many
        // observations it made and the CPU time it used; the pair's wall time runs
        // from the first start to the last finish.
        let spans: Vec<(Instant, Instant, u64, u64)> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..2u64)
                .map(|t| {
                    let series = series.clone();
                    let (barrier, stop) = (&barrier, &stop);
                    scope.spawn(move || {
                        barrier.wait();
                        let (start, cpu) = (Instant::now(), thread_cpu_ns());
                        let mut n = 0;
                        while !stop.load(Ordering::Relaxed) {
                            for i in n..n + CHUNK {
                                S::observe(black_box(&series), black_box(value(i + t)));
                            }
                            n += CHUNK;
                        }
                        (start, Instant::now(), n, thread_cpu_ns() - cpu)
                    })
                })
                .collect();
            barrier.wait();
            std::thread::sleep(plan.batch);
            stop.store(true, Ordering::Relaxed);
            workers.into_iter().filter_map(|w| w.join().ok()).collect()
        });
        let (Some(first), Some(last)) = (
            spans.iter().map(|s| s.0).min(),
            spans.iter().map(|s| s.1).max(),
        ) else {
            continue;
        };
        let total: u64 = spans.iter().map(|s| s.2).sum();
        let cpu_ns: u64 = spans.iter().map(|s| s.3).sum();
        let ns = (last - first).as_nanos() as f64;
        // Per thread: its own time per observation, averaged over the two.
        let per_op = spans
            .iter()
            .map(|s| (s.1 - s.0).as_nanos() as f64 / s.2.max(1) as f64)
            .sum::<f64>()
            / spans.len() as f64;
        let sample = (per_op, total as f64 / ns * 1e3, cpu_ns as f64 / ns);
        if rep > 0 {
            all.push(sample);
            if sample.2 >= 1.8 {
                good.push(sample);
            }
        }
    }
    let tried = all.len();
    let kept = if good.len() >= 3 { good } else { all };
    Pair {
        per_op: Stats::of(kept.iter().map(|s| s.0).collect()),
        mops: Stats::of(kept.iter().map(|s| s.1).collect()),
        overlap: Stats::of(kept.iter().map(|s| s.2).collect()),
        kept: kept.len(),
        tried,
    }
}

/// CPU time the calling thread has used, in ns.
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, which `ts` is.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[derive(Clone, Copy)]
struct RenderResult {
    ns: Stats,
    allocated_after_first: u64,
    bytes: usize,
}

fn render<S: Subject>(plan: Plan, series: usize) -> RenderResult {
    let mut subject = S::new();
    for i in 0..series {
        subject.observe_labeled(&Call::nth(i), value(i as u64) * (1.0 + i as f64 / 7.0));
    }
    subject.render();
    let mark = alloc::mark();
    let bytes = subject.render();
    let allocated_after_first = mark.allocated_since();
    check_render(S::NAME, &subject.last_render(), series);
    let ns = per_iteration(plan, |n| {
        for _ in 0..n {
            black_box(subject.render());
        }
    });
    RenderResult {
        ns,
        allocated_after_first,
        bytes,
    }
}

/// Every library must have rendered `series` histograms with five buckets each, and
/// each series' `+Inf` bucket must equal its `_count` (the rendering is what we time,
/// so it has to be the same rendering everywhere).
fn check_render(name: &str, text: &str, series: usize) {
    let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    let counts = samples.iter().filter(|l| l.contains("_count")).count();
    let buckets = samples.iter().filter(|l| l.contains("_bucket")).count();
    let inf: Vec<&str> = samples
        .iter()
        .filter(|l| l.contains("le=\"+Inf\""))
        .filter_map(|l| l.rsplit(' ').next())
        .collect();
    assert_eq!(counts, series, "{name}: {counts} _count lines");
    assert_eq!(buckets, 5 * series, "{name}: {buckets} _bucket lines");
    assert_eq!(inf.len(), series, "{name}: +Inf buckets");
    assert!(
        inf.iter().all(|v| *v == "1"),
        "{name}: +Inf buckets {inf:?}"
    );
}

/// Heap bytes a library keeps per series: create `n` series (one observation each)
/// and divide what stays allocated by `n`.
fn bytes_per_series<S: Subject>(n: usize) -> f64 {
    let subject = S::new();
    subject.observe_labeled(&Call::nth(0), 0.1);
    let mark = alloc::mark();
    for i in 1..=n {
        subject.observe_labeled(&Call::nth(i), 0.1);
    }
    let retained = mark.retained_since();
    black_box(&subject);
    retained as f64 / n as f64
}

/// Renders `series` series in protobuf, each observed once (as `render` does).
fn render_protobuf<S: ProtobufSubject>(plan: Plan, series: usize) -> RenderResult {
    let mut subject = S::new();
    for i in 0..series {
        subject.observe_labeled(&Call::nth(i), value(i as u64) * (1.0 + i as f64 / 7.0));
    }
    subject.render_protobuf();
    let mark = alloc::mark();
    let bytes = subject.render_protobuf();
    let allocated_after_first = mark.allocated_since();
    assert!(
        bytes > 40 * series,
        "{}: a protobuf render of {series} series",
        S::NAME
    );
    let ns = per_iteration(plan, |n| {
        for _ in 0..n {
            black_box(subject.render_protobuf());
        }
    });
    RenderResult {
        ns,
        allocated_after_first,
        bytes,
    }
}

fn bytes_per_bare_histogram(n: usize, native: bool) -> f64 {
    let buckets = if native {
        tinyprom::metrics::Buckets::with_native(&BOUNDS, tinyprom::metrics::NativeOptions::new())
    } else {
        tinyprom::metrics::Buckets::new(&BOUNDS)
    }
    .expect("valid bounds");
    let mut kept = Vec::with_capacity(n);
    let mark = alloc::mark();
    for _ in 0..n {
        let h = tinyprom::metrics::Histogram::with_buckets(buckets.clone());
        h.observe(0.1);
        kept.push(h);
    }
    mark.retained_since() as f64 / n as f64
}

/// Extra heap bytes a series takes once contended (its stripes): two threads observe
/// until one of them has allocated them, and each reports what it allocated and kept.
fn striped_extra_bytes() -> i64 {
    let h = tinyprom::metrics::Histogram::new(&BOUNDS).expect("valid bounds");
    let deadline = Instant::now() + std::time::Duration::from_secs(2);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let h = h.clone();
                s.spawn(move || {
                    let mark = alloc::mark();
                    // Bounded by time; a few thousand rounds are normally enough.
                    while mark.retained_since() == 0 && Instant::now() < deadline {
                        for _ in 0..1_000 {
                            h.observe(0.1);
                        }
                    }
                    mark.retained_since()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap_or(0)).sum()
    })
}

/// Section 6: the `metrics` macros through metrics-exporter-prometheus and through
/// tinyprom's facade recorder (feature `metrics-facade`; `make bench` enables it).
#[cfg(feature = "metrics-facade")]
fn facade_section(plan: Plan, processes: usize, render_sizes: &[usize], summary: &mut Summary) {
    println!(
        "\n### 6. The `metrics` macros: tinyprom's facade recorder against metrics-exporter-prometheus\n"
    );
    println!(
        "The same `histogram!` calls, inside `metrics::with_local_recorder` with one recorder or the other. Labeled observe, single thread, ns/op, each in {processes} fresh processes as in section 1: label values as literals (the macro keeps the key in a static) and label values from variables (the macro builds the key, a vector of labels and its hash, on every call).\n"
    );
    println!("| labels | recorder | ns/op | min–max | ÷ tinyprom |");
    println!("|---|---|---:|---:|---:|");
    let mut observe = Vec::new();
    for form in ["literal", "runtime"] {
        let rows: Vec<Stats> = ["tinyprom", "exporter"]
            .iter()
            .map(|who| in_processes(&format!("facade/observe-{form}/{who}"), processes))
            .collect();
        for (name, s) in facade::RECORDERS.iter().zip(&rows) {
            println!(
                "| {form} | {name} | {:.2} | {:.2}–{:.2} | {:.2}x |",
                s.median,
                s.min,
                s.max,
                s.median / rows[0].median
            );
        }
        observe.push((form, rows[0], rows[1]));
    }
    println!("\nRender of N histogram series recorded through the macro (text format):\n");
    println!("| recorder | series | ms/scrape | min–max | ns/series | scrape bytes | ÷ tinyprom |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for &n in render_sizes {
        let rows = facade::render(plan, n);
        for (name, (s, bytes)) in facade::RECORDERS.iter().zip(&rows) {
            println!(
                "| {name} | {n} | {:.4} | {:.4}–{:.4} | {:.0} | {bytes} | {:.2}x |",
                s.median / 1e6,
                s.min / 1e6,
                s.max / 1e6,
                s.median / n as f64,
                s.median / rows[0].0.median
            );
        }
        if n == render_sizes[render_sizes.len() - 1] {
            summary.facade_render = Some((rows[0].0, rows[1].0, n));
        }
    }
    summary.facade_observe = observe;
}

#[cfg(not(feature = "metrics-facade"))]
fn facade_section(_: Plan, _: usize, _: &[usize], _: &mut Summary) {
    println!(
        "\n### 6. The `metrics` macros\n\nNot measured: built without the `metrics-facade` feature (`make bench` enables it)."
    );
}

/// The targets, checked against this run's figures.
#[derive(Default)]
struct Summary {
    /// Per label form: tinyprom's facade and metrics-exporter-prometheus.
    #[cfg_attr(not(feature = "metrics-facade"), allow(dead_code))]
    facade_observe: Vec<(&'static str, Stats, Stats)>,
    #[cfg_attr(not(feature = "metrics-facade"), allow(dead_code))]
    facade_render: Option<(Stats, Stats, usize)>,
    labeled: Option<(Stats, (&'static str, Stats))>,
    labeled_native: Option<(Stats, (&'static str, Stats))>,
    protobuf: Option<(RenderResult, f64, usize)>,
    resolved: Option<(Stats, Stats)>,
    two_threads: Option<Stats>,
    render: Option<(RenderResult, RenderResult, usize)>,
    bytes_per_series: Option<f64>,
    striped_extra: Option<i64>,
}

impl Summary {
    fn print(&self) {
        println!("\n### Targets\n");
        println!("| target | this run | met |");
        println!("|---|---|---|");
        let yes = |ok: bool| if ok { "yes" } else { "**no**" };
        if let Some((t, (peer, p))) = self.labeled {
            let ratio = p.median / t.median;
            println!(
                "| labeled observe ≤ 10 ns and ≥ 2.5x faster than the fastest peer | {:.2} ns, {ratio:.1}x faster than {peer} | {} |",
                t.median,
                yes(t.median <= 10.0 && ratio >= 2.5)
            );
        }
        if let Some((t, (peer, p))) = self.labeled_native {
            let ratio = p.median / t.median;
            println!(
                "| labeled observe with native buckets ≤ 10 ns and ≥ 2.5x faster than the fastest peer with native buckets | {:.2} ns, {ratio:.1}x faster than {peer} | {} |",
                t.median,
                yes(t.median <= 10.0 && ratio >= 2.5)
            );
        }
        if let Some((r, peer, n)) = self.protobuf {
            let ratio = peer / r.ns.median;
            println!(
                "| protobuf render with native buckets ≥ 4x faster than the fastest peer, 0 bytes allocated per warm scrape ({n} series) | {:.0} ns/series, {ratio:.1}x, {} bytes | {} |",
                r.ns.median / n as f64,
                r.allocated_after_first,
                yes(ratio >= 4.0 && r.allocated_after_first == 0)
            );
        }
        if let Some((t, bare)) = self.resolved {
            let ratio = t.median / bare.median;
            println!(
                "| pre-resolved observe within 1.5x of its bare atomics | {:.2} ns vs {:.2} ns = {ratio:.2}x | {} |",
                t.median,
                bare.median,
                yes(ratio <= 1.5)
            );
        }
        if let Some(m) = self.two_threads {
            println!(
                "| two threads on one series ≥ 200 Mops/s in total | {:.1} Mops/s | {} |",
                m.median,
                yes(m.median >= 200.0)
            );
        }
        if let Some((t, client, n)) = self.render {
            let per = t.ns.median / n as f64;
            let ratio = client.ns.median / t.ns.median;
            println!(
                "| render ≤ 250 ns per series, ≥ 4x faster than prometheus-client ({n} series) | {per:.0} ns/series, {ratio:.1}x | {} |",
                yes(per <= 250.0 && ratio >= 4.0)
            );
            println!(
                "| no allocation per scrape after warm-up | {} bytes | {} |",
                t.allocated_after_first,
                yes(t.allocated_after_first == 0)
            );
        }
        for (form, t, exporter) in &self.facade_observe {
            let ratio = exporter.median / t.median;
            println!(
                "| `metrics` macros, labeled observe ({form} labels) ≥ 3x faster than metrics-exporter-prometheus | {:.2} ns vs {:.2} ns, {ratio:.1}x | {} |",
                t.median,
                exporter.median,
                yes(ratio >= 3.0)
            );
        }
        if let Some((t, exporter, n)) = self.facade_render {
            let ratio = exporter.median / t.median;
            println!(
                "| `metrics` macros, render ≥ 5x faster than metrics-exporter-prometheus ({n} series) | {:.0} vs {:.0} ns/series, {ratio:.1}x | {} |",
                t.median / n as f64,
                exporter.median / n as f64,
                yes(ratio >= 5.0)
            );
        }
        if let Some(b) = self.bytes_per_series {
            let extra = self.striped_extra.unwrap_or(0);
            println!(
                "| ≤ 128 bytes per series (5 buckets) | {b:.0} bytes; a contended series adds its stripes ({extra} bytes here) | {} |",
                yes(b <= 128.0)
            );
        }
    }
}
