//! Process metrics read from `/proc`, named and typed as the Go and Python clients do.
//!
//! Read at scrape time, never cached, so they are always current and cost nothing
//! between scrapes. A scrape costs a few system calls and no allocation: one read of
//! `/proc/self/stat` through a descriptor the collector keeps open (opening a `/proc`
//! path costs more than reading it), the descriptor count from the size the kernel
//! reports for `/proc/self/fd`, and `getrlimit`. The boot time (`/proc/stat`, which is
//! large and slow to generate) and the clock tick and page sizes are read once, when
//! the collector is made. Where `/proc` is missing or unreadable (an empty `FROM
//! scratch` root, another OS), the families are simply left out: a scrape must not
//! fail because a best-effort collector cannot see the kernel.

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
    /// `/proc/self/stat` of the process that opened it, with that process's id: a
    /// child forked after the collector was made opens its own. Opened at the first
    /// scrape; the lock is taken once per scrape, so it is never contended.
    stat: Mutex<Option<(u32, File)>>,
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
    /// A collector for the current process; reads the boot time and the system's
    /// clock tick and page sizes now.
    pub fn new() -> Self {
        ProcessCollector {
            constants: Constants::read(),
            stat: Mutex::new(None),
        }
    }

    /// Reads the current process's statistics; `None` when `/proc` cannot be read.
    pub fn read(&self) -> Option<ProcessStats> {
        let constants = self.constants?;
        let mut buf = [0u8; STAT_CAPACITY];
        let stat = parse_stat(self.read_stat(&mut buf)?)?;
        Some(ProcessStats {
            cpu_seconds: (stat.utime + stat.stime) as f64 / constants.ticks,
            resident_memory_bytes: stat.rss_pages.saturating_mul(constants.page),
            virtual_memory_bytes: stat.vsize,
            start_time_seconds: constants.boot_time as f64
                + stat.start_ticks as f64 / constants.ticks,
            threads: stat.threads,
            open_fds: count_open_fds(),
            max_fds: soft_fd_limit(),
        })
    }
}

impl ProcessCollector {
    /// Reads `/proc/self/stat` whole into `buf` through the kept descriptor, opening it
    /// first in a process that has none yet.
    fn read_stat<'a>(&self, buf: &'a mut [u8]) -> Option<&'a [u8]> {
        // A poisoned lock only means a scrape panicked while holding it; the descriptor
        // inside is still good.
        let mut held = self.stat.lock().unwrap_or_else(|e| e.into_inner());
        let pid = std::process::id();
        if held.as_ref().is_none_or(|(opener, _)| *opener != pid) {
            *held = Some((pid, File::open("/proc/self/stat").ok()?));
        }
        let (_, file) = held.as_ref()?;
        read_whole_at(file, buf)
    }
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
        match file.read_at(&mut buf[len..], len as u64) {
            Ok(0) => return Some(&buf[..len]),
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

/// The open descriptors. Linux 6.2 and later report their number as the size of
/// `/proc/self/fd`, one `statx` with no listing; older kernels report 0 there (a
/// process always has the descriptor the collector keeps open, so 0 is never a real
/// count) and the directory is listed instead.
fn count_open_fds() -> Option<u64> {
    match std::fs::metadata("/proc/self/fd") {
        Ok(meta) if meta.size() > 0 => Some(meta.size()),
        _ => list_open_fds(),
    }
}

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
/// parentheses (and any other byte), so fields are counted from the last `)`.
fn parse_stat(stat: &[u8]) -> Option<Stat> {
    let after = &stat[stat.iter().rposition(|&b| b == b')')? + 1..];
    // Fields 14, 15, 20, 22, 23 and 24, counted from field 3 (the state) on.
    const WANTED: [usize; 6] = [14, 15, 20, 22, 23, 24];
    let mut values = [0u64; 6];
    let mut found = 0;
    let fields = after
        .split(|b| b.is_ascii_whitespace())
        .filter(|f| !f.is_empty());
    for (n, field) in (3..).zip(fields) {
        if n == WANTED[found] {
            values[found] = std::str::from_utf8(field).ok()?.parse().ok()?;
            found += 1;
            if found == WANTED.len() {
                let [utime, stime, threads, start_ticks, vsize, rss_pages] = values;
                return Some(Stat {
                    utime,
                    stime,
                    threads,
                    start_ticks,
                    vsize,
                    rss_pages,
                });
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_command_names() {
        let line = "1234 (we ird) (name)) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 7 0 12345 8388608 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0";
        assert_eq!(
            parse_stat(line.as_bytes()),
            Some(Stat {
                utime: 250,
                stime: 50,
                threads: 7,
                start_ticks: 12345,
                vsize: 8388608,
                rss_pages: 300,
            })
        );
        assert_eq!(parse_stat(b"garbage"), None);
        assert_eq!(parse_stat(b"1 (x) S 1 2"), None);
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
        for count in [count_open_fds, list_open_fds] {
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
        assert!(collector.stat.lock().unwrap().is_some());
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
