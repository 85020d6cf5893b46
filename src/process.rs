//! Process metrics read from `/proc`, named and typed as the Go and Python clients do.
//!
//! Read at scrape time, never cached, so they are always current and cost nothing
//! between scrapes. Where `/proc` is missing or unreadable (an empty `FROM scratch`
//! root, another OS), the families are simply left out: a scrape must not fail because
//! a best-effort collector cannot see the kernel.

use std::fs;

use crate::exposition::{Encoder, MetricKind};
use crate::metrics::Collector;

/// The [`Collector`] for `process_*` metrics of the current process.
///
/// ```
/// use tinyprom::metrics::Registry;
/// use tinyprom::process::ProcessCollector;
/// let registry = Registry::new();
/// registry.register_collector(ProcessCollector::new()).unwrap();
/// let text = registry.render_text();
/// # #[cfg(target_os = "linux")]
/// assert!(text.contains("# TYPE process_resident_memory_bytes gauge"));
/// ```
#[derive(Debug, Default)]
pub struct ProcessCollector {
    _private: (),
}

/// One reading of the process's statistics.
///
/// ```
/// let stats = tinyprom::process::read_stats();
/// # #[cfg(target_os = "linux")]
/// {
///     let stats = stats.expect("/proc is readable on Linux");
///     assert!(stats.threads >= 1);
///     assert!(stats.resident_memory_bytes > 0 && stats.cpu_seconds >= 0.0);
/// }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessStats {
    /// User plus system CPU time, seconds.
    pub cpu_seconds: f64,
    /// Resident set size, bytes.
    pub resident_memory_bytes: u64,
    /// Virtual memory size, bytes.
    pub virtual_memory_bytes: u64,
    /// Start time since the Unix epoch, seconds.
    pub start_time_seconds: f64,
    /// Number of OS threads.
    pub threads: u64,
    /// Open file descriptors, when `/proc/self/fd` is readable.
    pub open_fds: Option<u64>,
    /// The soft limit on open file descriptors.
    pub max_fds: Option<u64>,
}

impl ProcessCollector {
    /// A collector for the current process.
    pub fn new() -> Self {
        Self::default()
    }
}

const FAMILIES: [(&str, &str, MetricKind); 7] = [
    (
        "process_cpu_seconds_total",
        "Total user and system CPU time spent in seconds.",
        MetricKind::Counter,
    ),
    (
        "process_open_fds",
        "Number of open file descriptors.",
        MetricKind::Gauge,
    ),
    (
        "process_max_fds",
        "Maximum number of open file descriptors.",
        MetricKind::Gauge,
    ),
    (
        "process_virtual_memory_bytes",
        "Virtual memory size in bytes.",
        MetricKind::Gauge,
    ),
    (
        "process_resident_memory_bytes",
        "Resident memory size in bytes.",
        MetricKind::Gauge,
    ),
    (
        "process_start_time_seconds",
        "Start time of the process since unix epoch in seconds.",
        MetricKind::Gauge,
    ),
    (
        "process_threads",
        "Number of OS threads in the process.",
        MetricKind::Gauge,
    ),
];

impl Collector for ProcessCollector {
    fn families(&self) -> Vec<(String, MetricKind)> {
        FAMILIES
            .iter()
            .map(|(name, _, kind)| (name.to_string(), *kind))
            .collect()
    }

    fn encode(&self, enc: &mut Encoder<'_>) {
        let Some(stats) = read_stats() else {
            return;
        };
        let [cpu, open, max, virt, rss, start, threads] = FAMILIES;
        let unit = |name: &str| {
            if name.ends_with("_seconds") || name.ends_with("_seconds_total") {
                Some("seconds")
            } else if name.ends_with("_bytes") {
                Some("bytes")
            } else {
                None
            }
        };
        let gauge =
            |enc: &mut Encoder<'_>, (name, help, kind): (&str, &str, MetricKind), v: f64| {
                enc.family(name, help, kind, unit(name));
                enc.sample_f64(name, "", "", v);
            };
        enc.family(cpu.0, cpu.1, cpu.2, unit(cpu.0));
        enc.counter_f64(cpu.0, "", stats.cpu_seconds);
        if let Some(fds) = stats.open_fds {
            gauge(enc, open, fds as f64);
        }
        if let Some(fds) = stats.max_fds {
            gauge(enc, max, fds as f64);
        }
        gauge(enc, virt, stats.virtual_memory_bytes as f64);
        gauge(enc, rss, stats.resident_memory_bytes as f64);
        gauge(enc, start, stats.start_time_seconds);
        gauge(enc, threads, stats.threads as f64);
    }
}

/// Reads the current process's statistics; `None` when `/proc` cannot be read.
pub fn read_stats() -> Option<ProcessStats> {
    let stat = fs::read_to_string("/proc/self/stat").ok()?;
    let boot_time = fs::read_to_string("/proc/stat").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse::<u64>().ok())
    })?;
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    // SAFETY: as above.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if ticks <= 0 || page <= 0 {
        return None;
    }
    let parsed = parse_stat(&stat)?;
    let ticks = ticks as f64;
    Some(ProcessStats {
        cpu_seconds: (parsed.utime + parsed.stime) as f64 / ticks,
        resident_memory_bytes: parsed.rss_pages.saturating_mul(page as u64),
        virtual_memory_bytes: parsed.vsize,
        start_time_seconds: boot_time as f64 + parsed.start_ticks as f64 / ticks,
        threads: parsed.threads,
        open_fds: fs::read_dir("/proc/self/fd")
            .ok()
            .map(|dir| dir.count() as u64),
        max_fds: soft_fd_limit(),
    })
}

fn soft_fd_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass and nothing else.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    (rc == 0).then_some(limit.rlim_cur)
}

#[derive(Debug, PartialEq)]
struct Stat {
    utime: u64,
    stime: u64,
    threads: u64,
    start_ticks: u64,
    vsize: u64,
    rss_pages: u64,
}

/// Parses `/proc/self/stat`. The command name (field 2) may contain spaces and
/// parentheses, so fields are counted from the last `)`.
fn parse_stat(stat: &str) -> Option<Stat> {
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `fields[0]` is field 3 (state); field N is fields[N - 3].
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(Stat {
        utime: field(14)?,
        stime: field(15)?,
        threads: field(20)?,
        start_ticks: field(22)?,
        vsize: field(23)?,
        rss_pages: field(24)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_command_names() {
        let line = "1234 (we ird) (name)) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 7 0 12345 8388608 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                utime: 250,
                stime: 50,
                threads: 7,
                start_ticks: 12345,
                vsize: 8388608,
                rss_pages: 300,
            })
        );
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("1 (x) S 1 2"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_this_process() {
        let stats = read_stats().expect("/proc is readable in tests");
        assert!(stats.threads >= 1);
        assert!(stats.resident_memory_bytes > 0);
        assert!(stats.open_fds.unwrap() >= 3);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(
            stats.start_time_seconds <= now + 1.0
                && stats.start_time_seconds > now - 86_400.0 * 365.0
        );
    }
}
