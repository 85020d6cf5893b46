//! Process metrics read from `/proc`, named and typed as the Go and Python clients do.
//!
//! Read at scrape time, never cached, so they are always current and cost nothing
//! between scrapes. A scrape costs six cheap system calls and no allocation, each the
//! cheapest source of its figures: `getrusage` for the CPU time; one read of
//! `/proc/self/statm` (memory), which the kernel generates far faster than `stat`;
//! the thread count from the link count of `/proc/self/task` and the descriptor count
//! from the size of `/proc/self/fd` (Linux 6.2 and later), one `fstat` each with no
//! listing; `getrlimit`; and `getpid`, to notice a fork. The three `/proc` files are
//! kept open, because looking up a `/proc` path costs more than reading it. The boot
//! time (`/proc/stat`, large and slow to generate), the clock tick and page sizes and
//! the process's start time (from `/proc/self/stat`) are read once, when the collector
//! is made (the start time again in a child forked after that, at its first scrape).
//! Where `/proc` is missing or unreadable (an empty `FROM scratch` root, another OS),
//! the families are simply left out: a scrape must not fail because a best-effort
//! collector cannot see the kernel.

use std::fs::File;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::sync::Mutex;

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
#[derive(Debug)]
pub struct ProcessCollector {
    /// `None` when `/proc` or the system configuration could not be read at start.
    constants: Option<Constants>,
    /// What is read once per process, with that process's id: a child forked after
    /// the collector was made reads its own at its first scrape. The lock is taken
    /// once per scrape, so it is never contended.
    held: Mutex<Option<Held>>,
}

/// A process's `/proc/self/statm`, `/proc/self/task` and `/proc/self/fd`, kept open
/// (they count among its open descriptors), and its start time.
#[derive(Debug)]
struct Held {
    pid: u32,
    statm: File,
    task: File,
    /// `None` where the descriptors cannot be listed.
    fd_dir: Option<File>,
    start_time_seconds: f64,
}

/// What does not change while the process runs, read once.
#[derive(Debug, Clone, Copy)]
struct Constants {
    /// The boot time since the Unix epoch, seconds (`btime` of `/proc/stat`).
    boot_time: u64,
    /// Clock ticks per second, the unit of the CPU and start times in `/proc/self/stat`.
    ticks: f64,
    /// Bytes per page, the unit of the resident set size in `/proc/self/stat`.
    page: u64,
}

impl Constants {
    fn read() -> Option<Constants> {
        let mut stat = String::new();
        File::open("/proc/stat")
            .ok()?
            .read_to_string(&mut stat)
            .ok()?;
        let boot_time = stat
            .lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse::<u64>().ok())?;
        // SAFETY: sysconf only reads a configuration value.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        // SAFETY: as above.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        (ticks > 0 && page > 0).then_some(Constants {
            boot_time,
            ticks: ticks as f64,
            page: page as u64,
        })
    }
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
    /// A collector for the current process; reads the boot time, the system's clock
    /// tick and page sizes and the start time, and opens the `/proc` files it keeps,
    /// now: the process's descriptor count does not change at its first scrape.
    pub fn new() -> Self {
        let constants = Constants::read();
        let held = constants.and_then(|c| Held::open(std::process::id(), &c));
        ProcessCollector {
            constants,
            held: Mutex::new(held),
        }
    }

    /// Reads the current process's statistics; `None` when `/proc` cannot be read.
    pub fn read(&self) -> Option<ProcessStats> {
        let constants = self.constants?;
        // A poisoned lock only means a scrape panicked while holding it; what it
        // holds is still good.
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let pid = std::process::id();
        if held.as_ref().is_none_or(|h| h.pid != pid) {
            *held = Some(Held::open(pid, &constants)?);
        }
        let held = held.as_ref()?;
        let mut buf = [0u8; STATM_CAPACITY];
        let memory = parse_statm(read_whole_at(&held.statm, &mut buf)?)?;
        Some(ProcessStats {
            cpu_seconds: cpu_seconds()?,
            resident_memory_bytes: memory.resident_pages.saturating_mul(constants.page),
            virtual_memory_bytes: memory.size_pages.saturating_mul(constants.page),
            start_time_seconds: held.start_time_seconds,
            threads: held.threads()?,
            open_fds: held.open_fds(),
            max_fds: soft_fd_limit(),
        })
    }
}

impl Held {
    /// Opens the files of process `pid` (this one) and reads its start time.
    fn open(pid: u32, constants: &Constants) -> Option<Held> {
        let mut buf = [0u8; STAT_CAPACITY];
        let stat = File::open("/proc/self/stat").ok()?;
        let start_ticks = parse_start_ticks(read_whole_at(&stat, &mut buf)?)?;
        Some(Held {
            pid,
            statm: File::open("/proc/self/statm").ok()?,
            task: File::open("/proc/self/task").ok()?,
            fd_dir: File::open("/proc/self/fd").ok(),
            start_time_seconds: constants.boot_time as f64 + start_ticks as f64 / constants.ticks,
        })
    }

    /// The threads of this process: the link count of `/proc/self/task` is two (itself
    /// and `.`) plus one per thread, so no listing is needed.
    fn threads(&self) -> Option<u64> {
        let links = self.task.metadata().ok()?.nlink();
        links.checked_sub(2).filter(|&n| n > 0)
    }

    /// The open descriptors. Linux 6.2 and later report their number as the size of
    /// `/proc/self/fd`; older kernels report 0 there (never a real count: this process
    /// holds at least the directory's descriptor) and the directory is listed instead.
    fn open_fds(&self) -> Option<u64> {
        match self.fd_dir.as_ref()?.metadata() {
            Ok(meta) if meta.size() > 0 => Some(meta.size()),
            _ => list_open_fds(),
        }
    }
}

/// User plus system CPU time of the whole process (every thread, ended ones too),
/// seconds, to the microsecond.
fn cpu_seconds() -> Option<f64> {
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct we pass and nothing else.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (rc == 0).then(|| seconds(usage.ru_utime) + seconds(usage.ru_stime))
}

impl Default for ProcessCollector {
    fn default() -> Self {
        Self::new()
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
        let Some(stats) = self.read() else {
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

/// Reads the current process's statistics; `None` when `/proc` cannot be read. Reads
/// the boot time too: a collector, which reads it once, is cheaper for repeated use.
pub fn read_stats() -> Option<ProcessStats> {
    ProcessCollector::new().read()
}

/// Room for `/proc/self/stat`: 52 fields of at most 20 digits and a command name of
/// at most 64 bytes (escaped), with room to spare.
const STAT_CAPACITY: usize = 2048;

/// Reads a small `/proc` file whole into `buf` from its start: `/proc` files are
/// generated anew by a read at offset 0. `None` when it cannot be read or does not fit.
fn read_whole_at<'a>(file: &File, buf: &'a mut [u8]) -> Option<&'a [u8]> {
    let mut len = 0;
    loop {
        let room = buf.len() - len;
        match file.read_at(&mut buf[len..], len as u64) {
            Ok(0) => return Some(&buf[..len]),
            // A `/proc` file fills the buffer it is given as far as it can, so a read
            // shorter than the room left has reached the end: no second call to see 0.
            Ok(n) if n < room => return Some(&buf[..len + n]),
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
        if len == buf.len() {
            return None;
        }
    }
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

/// Room for about 300 directory entries of `/proc/self/fd` per `getdents64` call,
/// aligned for the kernel's `struct linux_dirent64`.
#[repr(C, align(8))]
struct DirBuf([u8; 8192]);

/// Counts the entries of `/proc/self/fd` (the descriptor that lists them included, as
/// every client library's listing counts) with `getdents64` into a buffer on the
/// stack: no allocation per entry, as a `read_dir` would make.
fn list_open_fds() -> Option<u64> {
    let dir = File::open("/proc/self/fd").ok()?;
    let mut buf = DirBuf([0; 8192]);
    let mut count = 0u64;
    loop {
        // SAFETY: the kernel writes at most `buf.0.len()` bytes into `buf`, which we own,
        // from a descriptor we own and keep open for the call.
        let n = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                dir.as_raw_fd(),
                buf.0.as_mut_ptr(),
                buf.0.len(),
            )
        };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return None;
        }
        if n == 0 {
            return Some(count);
        }
        count += count_entries(buf.0.get(..n as usize)?)?;
    }
}

/// Counts the `linux_dirent64` records in `records`, except `.` and `..`: each is
/// `d_ino` (8 bytes), `d_off` (8), `d_reclen` (2), `d_type` (1), then the
/// NUL-terminated name, `d_reclen` bytes in all. `None` on a malformed record.
fn count_entries(records: &[u8]) -> Option<u64> {
    const NAME: usize = 19;
    let mut count = 0;
    let mut at = 0;
    while at < records.len() {
        let record = records.get(at..)?;
        let reclen = usize::from(u16::from_ne_bytes([*record.get(16)?, *record.get(17)?]));
        let name = record.get(NAME..reclen)?;
        let name = &name[..name.iter().position(|&b| b == 0)?];
        if name != b"." && name != b".." {
            count += 1;
        }
        at += reclen;
    }
    Some(count)
}

/// Room for `/proc/self/statm`: seven numbers of at most 20 digits.
const STATM_CAPACITY: usize = 256;

/// The memory figures of `/proc/self/statm`, in pages.
#[derive(Debug, PartialEq)]
struct Statm {
    size_pages: u64,
    resident_pages: u64,
}

/// Parses `/proc/self/statm`: size, resident, then five more, in pages.
fn parse_statm(statm: &[u8]) -> Option<Statm> {
    let mut fields = statm
        .split(|b| b.is_ascii_whitespace())
        .filter(|f| !f.is_empty())
        .map(|f| std::str::from_utf8(f).ok()?.parse::<u64>().ok());
    Some(Statm {
        size_pages: fields.next()??,
        resident_pages: fields.next()??,
    })
}

/// The start time in clock ticks after boot, field 22 of `/proc/self/stat`. The
/// command name (field 2) may contain spaces and parentheses (and any other byte), so
/// fields are counted from the last `)`.
fn parse_start_ticks(stat: &[u8]) -> Option<u64> {
    let after = &stat[stat.iter().rposition(|&b| b == b')')? + 1..];
    // `nth(0)` is field 3, the state.
    let field = after
        .split(|b| b.is_ascii_whitespace())
        .filter(|f| !f.is_empty())
        .nth(22 - 3)?;
    std::str::from_utf8(field).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_command_names() {
        let line = "1234 (we ird) (name)) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 7 0 12345 8388608 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0";
        assert_eq!(parse_start_ticks(line.as_bytes()), Some(12345));
        assert_eq!(parse_start_ticks(b"garbage"), None);
        assert_eq!(parse_start_ticks(b"1 (x) S 1 2"), None);
    }

    /// A `linux_dirent64` record as the kernel lays it out, padded to 8 bytes.
    fn record(name: &str) -> Vec<u8> {
        let reclen = (19 + name.len() + 1).div_ceil(8) * 8;
        let mut r = vec![0u8; reclen];
        r[16..18].copy_from_slice(&(reclen as u16).to_ne_bytes());
        r[19..19 + name.len()].copy_from_slice(name.as_bytes());
        r
    }

    #[test]
    fn parses_statm() {
        assert_eq!(
            parse_statm(b"2245 806 602 117 0 362 0\n"),
            Some(Statm {
                size_pages: 2245,
                resident_pages: 806,
            })
        );
        assert_eq!(parse_statm(b"2245"), None);
        assert_eq!(parse_statm(b"x 1"), None);
    }

    #[test]
    fn counts_directory_records_but_not_the_dots() {
        let records: Vec<u8> = [".", "..", "0", "1", "2", "1023"]
            .iter()
            .flat_map(|n| record(n))
            .collect();
        assert_eq!(count_entries(&records), Some(4));
        assert_eq!(count_entries(&[]), Some(0));
        // A record length of zero or one past the end is malformed, never a loop.
        let mut bad = record("7");
        bad[16..18].copy_from_slice(&0u16.to_ne_bytes());
        assert_eq!(count_entries(&bad), None);
        let mut long = record("7");
        long[16..18].copy_from_slice(&64u16.to_ne_bytes());
        assert_eq!(count_entries(&long), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn counts_descriptors_this_process_opens() {
        // Other tests run beside this one and open and close descriptors too, hence
        // the tolerance; 600 extra take more than one getdents64 call (about 340 fit one).
        let collector = ProcessCollector::new();
        let held = || collector.read().unwrap().open_fds;
        for count in [&held as &dyn Fn() -> Option<u64>, &list_open_fds] {
            let before = count().unwrap();
            let files: Vec<File> = (0..600).map(|_| File::open("/dev/null").unwrap()).collect();
            let during = count().unwrap();
            drop(files);
            assert!(
                (before + 580..=before + 620).contains(&during),
                "{before} then {during}"
            );
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_collector_reads_again_through_the_descriptor_it_keeps() {
        let collector = ProcessCollector::new();
        let first = collector.read().unwrap();
        let mut spin = 0u64;
        for i in 0..2_000_000u64 {
            spin = std::hint::black_box(spin.wrapping_add(i));
        }
        let second = collector.read().unwrap();
        assert!(second.cpu_seconds >= first.cpu_seconds);
        assert_eq!(second.start_time_seconds, first.start_time_seconds);
        assert!(collector.held.lock().unwrap().is_some());
        assert!(second.threads >= 1 && second.open_fds.unwrap() >= 3);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn agrees_with_proc_self_stat() {
        // The fields of /proc/self/stat the figures used to be read from. Other tests
        // run beside this one, hence the tolerances.
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        let after = &stat[stat.rfind(')').unwrap() + 1..];
        let field = |n: usize| -> u64 {
            after
                .split_whitespace()
                .nth(n - 3)
                .unwrap()
                .parse()
                .unwrap()
        };
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
        let stats = ProcessCollector::new().read().unwrap();
        let cpu = (field(14) + field(15)) as f64 / ticks;
        assert!(
            (stats.cpu_seconds - cpu).abs() < 0.5,
            "{} vs {cpu}",
            stats.cpu_seconds
        );
        assert!(
            stats.threads.abs_diff(field(20)) <= 32,
            "{} vs {}",
            stats.threads,
            field(20)
        );
        let vsize = field(23);
        assert!(stats.virtual_memory_bytes.abs_diff(vsize) < vsize / 2);
        let rss = field(24) * page;
        assert!(stats.resident_memory_bytes.abs_diff(rss) < rss / 2);
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
