//! Timing: calibrated batches, repeated, summarised as median and range.

use std::time::{Duration, Instant};

/// How long the benchmark runs: the full run or a smoke run that only checks the code.
#[derive(Clone, Copy)]
pub struct Plan {
    /// Repetitions per measurement (the first, a warm-up, is not counted).
    pub reps: usize,
    /// Target duration of one repetition.
    pub batch: Duration,
}

impl Plan {
    pub const FULL: Plan = Plan {
        reps: 15,
        batch: Duration::from_millis(20),
    };
    pub const SMOKE: Plan = Plan {
        reps: 2,
        batch: Duration::from_micros(200),
    };
}

/// Median, minimum and maximum of repeated measurements.
#[derive(Clone, Copy, Debug)]
pub struct Stats {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Stats {
    pub fn of(mut samples: Vec<f64>) -> Stats {
        samples.sort_by(f64::total_cmp);
        let n = samples.len();
        let median = if n % 2 == 1 {
            samples[n / 2]
        } else {
            (samples[n / 2 - 1] + samples[n / 2]) / 2.0
        };
        Stats {
            median,
            min: samples[0],
            max: samples[n - 1],
        }
    }
}

/// Finds how many iterations of `run` fill about `plan.batch`, then times `plan.reps`
/// batches and returns nanoseconds per iteration. `run(n)` performs `n` iterations.
pub fn per_iteration(plan: Plan, mut run: impl FnMut(u64)) -> Stats {
    let mut n = 1u64;
    loop {
        let start = Instant::now();
        run(n);
        let took = start.elapsed();
        if took >= plan.batch / 4 || n >= 1 << 32 {
            let scale = plan.batch.as_secs_f64() / took.as_secs_f64().max(1e-9);
            n = ((n as f64 * scale) as u64).max(1);
            break;
        }
        n *= 4;
    }
    let mut samples = Vec::with_capacity(plan.reps);
    for rep in 0..=plan.reps {
        let start = Instant::now();
        run(n);
        let ns = start.elapsed().as_nanos() as f64 / n as f64;
        if rep > 0 {
            samples.push(ns);
        }
    }
    Stats::of(samples)
}

/// The 1, 5 and 15 minute load averages: other work on the machine shows up here.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}
