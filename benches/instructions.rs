//! `make bench-instructions`: instructions per labeled observe, counted by valgrind's
//! callgrind, for tinyprom and prometheus-client with and without native buckets, on
//! the workload of `make bench` (section 1 and 1b: the same family, label sets and
//! values), and for tinyprom with an exemplar on every observation (section 1c).
//!
//! Timings on a shared two-CPU machine move by a third from one run to the next;
//! an instruction count does not move with load, so it shows what a change to the
//! hot path did where the timings cannot. It is a proxy, not a substitute: a
//! dependent load or a mispredicted branch costs more than its one instruction, so
//! speed claims stay with `make bench`.
//!
//! How: the program runs itself under `valgrind --tool=callgrind` twice per subject,
//! observing N and 2N times, and divides the difference of the two totals by N, so
//! the set-up (registry, family, first series) cancels out. `cargo bench --bench
//! instructions` (what `make bench-instructions` runs) does the counting and needs
//! valgrind; without `--bench` (as `cargo test --all-targets` runs it) it runs the
//! workload once, natively, so the program cannot rot.

#[path = "compare/subjects/mod.rs"]
#[allow(dead_code)]
mod subjects;

use std::hint::black_box;
use std::process::{Command, ExitCode};

use subjects::prom_client::{PromClient, PromClientNative};
use subjects::tinyprom_indexed::{Tinyprom, TinypromNative, TinypromWith};
use subjects::{Subject, VALUES, traffic};

/// Observations of the shorter counted run (the longer one does twice as many).
const N: u64 = 200_000;

/// The subjects, by the name given on the command line of a counted run.
const SUBJECTS: [&str; 6] = [
    "tinyprom",
    "tinyprom-native",
    "prometheus-client",
    "prometheus-client-native",
    "tinyprom-exemplar",
    "tinyprom-native-exemplar",
];

/// `n` labeled observations, as `make bench` section 1 makes them.
fn observe<S: Subject>(n: u64) {
    let subject = S::new();
    let calls = traffic();
    for call in &calls {
        subject.observe_labeled(call, 0.1);
    }
    for i in 0..n {
        let v = VALUES[((i + (i >> 3)) & 7) as usize];
        subject.observe_labeled(black_box(&calls[(i & 7) as usize]), black_box(v));
    }
}

/// [`observe`] for tinyprom with an exemplar (a trace id and span id) on every
/// observation, as the server records a request in a sampled trace.
fn observe_with_exemplar<const NATIVE: bool>(n: u64) {
    let subject = TinypromWith::<NATIVE>::new();
    let calls = traffic();
    for call in &calls {
        subject.observe_labeled_with_exemplar(call, 0.1);
    }
    for i in 0..n {
        let v = VALUES[((i + (i >> 3)) & 7) as usize];
        subject.observe_labeled_with_exemplar(black_box(&calls[(i & 7) as usize]), black_box(v));
    }
}

fn run(name: &str, n: u64) -> bool {
    match name {
        "tinyprom-exemplar" => observe_with_exemplar::<false>(n),
        "tinyprom-native-exemplar" => observe_with_exemplar::<true>(n),
        "tinyprom" => observe::<Tinyprom>(n),
        "tinyprom-native" => observe::<TinypromNative>(n),
        "prometheus-client" => observe::<PromClient>(n),
        "prometheus-client-native" => observe::<PromClientNative>(n),
        _ => return false,
    }
    true
}

/// The instructions callgrind counted for this program running `name` `n` times.
fn counted(name: &str, n: u64) -> Result<u64, String> {
    let me = std::env::current_exe().map_err(|e| format!("own path: {e}"))?;
    let out_file = std::env::temp_dir().join(format!("tinyprom-callgrind-{}", std::process::id()));
    let out = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out_file.display()))
        .arg(me)
        .args(["--count", name, &n.to_string()])
        .output()
        .map_err(|e| format!("valgrind: {e} (Debian package valgrind)"))?;
    let _ = std::fs::remove_file(&out_file);
    let log = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!("valgrind failed: {log}"));
    }
    // "==PID== I   refs:      123,456,789"
    log.lines()
        .find_map(|line| {
            line.split_once("refs:")
                .map(|(_, n)| n.trim().replace(',', ""))
        })
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("no instruction count in valgrind's output: {log}"))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, name, n] = args.as_slice()
        && flag == "--count"
    {
        let ran = n.parse().is_ok_and(|n| run(name, n));
        return if ran {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(2)
        };
    }
    if !args.iter().any(|a| a == "--bench") {
        for name in SUBJECTS {
            run(name, 1_000);
        }
        println!("instructions: smoke run done (cargo bench --bench instructions counts)");
        return ExitCode::SUCCESS;
    }
    println!("## Instructions per labeled observe (callgrind)\n");
    println!(
        "Workload of `make bench` section 1: one histogram family, labels method, url and code, 8 label sets and 8 values in turn. Per observation: (instructions of a run of {} observations − of one of {}) / {N}, the benchmark's loop included.\n",
        2 * N,
        N
    );
    println!("| library | buckets | instructions per observe | ÷ tinyprom's |");
    println!("|---|---|---:|---:|");
    let mut per = Vec::new();
    for name in SUBJECTS {
        let one = counted(name, N).and_then(|a| counted(name, 2 * N).map(|b| (a, b)));
        match one {
            Ok((a, b)) => per.push((name, b.saturating_sub(a) as f64 / N as f64)),
            Err(e) => {
                eprintln!("bench-instructions: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    for (name, n) in &per {
        let (rest, exemplar) = match name.strip_suffix("-exemplar") {
            Some(rest) => (rest, true),
            None => (*name, false),
        };
        let (library, buckets) = match rest.strip_suffix("-native") {
            Some(library) => (library, "classic + native"),
            None => (rest, "classic"),
        };
        let library = if exemplar {
            format!("{library}, observe_with_exemplar")
        } else {
            library.to_string()
        };
        let base = per
            .iter()
            .find(|(other, _)| {
                *other
                    == if buckets == "classic" {
                        "tinyprom"
                    } else {
                        "tinyprom-native"
                    }
            })
            .map_or(f64::NAN, |(_, n)| *n);
        println!("| {library} | {buckets} | {n:.1} | {:.2}x |", n / base);
    }
    ExitCode::SUCCESS
}
