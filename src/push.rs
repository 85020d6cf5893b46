//! Pushing a registry to a Prometheus Pushgateway, for batch jobs that end before any
//! scrape could reach them.
//!
//! ```
//! use std::time::Duration;
//! use tinyprom::exposition::Format;
//! use tinyprom::metrics::{Counter, Registry};
//! use tinyprom::push::{PushError, Pusher};
//!
//! let registry = Registry::new();
//! let rows = Counter::new();
//! registry.register("backup_rows_total", "Rows backed up.", rows.clone()).unwrap();
//! rows.inc_by(1200);
//!
//! // The group: job "backup", grouping label db="orders/eu" (it has a `/`, so its
//! // value travels in base64url form).
//! let pusher = Pusher::new("http://127.0.0.1:1", "backup")?
//!     .grouping("db", "orders/eu")?
//!     .format(Format::Protobuf)?
//!     .timeout(Duration::from_secs(5));
//! assert_eq!(
//!     pusher.url(),
//!     "http://127.0.0.1:1/metrics/job/backup/db@base64/b3JkZXJzL2V1",
//! );
//!
//! // Nothing listens on port 1: the push returns the error, it does not panic.
//! match pusher.push(&registry) {
//!     Err(PushError::Connect { .. }) => {}
//!     other => panic!("expected a connection error, got {other:?}"),
//! }
//! # Ok::<(), PushError>(())
//! ```
//!
//! With a gateway listening, a job's last lines are typically:
//!
//! ```no_run
//! # use tinyprom::metrics::Registry;
//! # use tinyprom::push::Pusher;
//! # let registry = Registry::new();
//! Pusher::new("http://pushgateway:9091", "backup")?
//!     .grouping("instance", "db-1")?
//!     .push(&registry)?; // PUT: the group's metrics become exactly these
//! # Ok::<(), tinyprom::push::PushError>(())
//! ```
//!
//! # What each call does at the gateway
//!
//! * [`Pusher::push`] (`PUT`) replaces every metric of the group with the registry's.
//! * [`Pusher::push_add`] (`POST`) replaces only the metrics of the group that have the
//!   same name as one in the registry, and keeps the others.
//! * [`Pusher::delete`] (`DELETE`) removes the group.
//!
//! The gateway adds `job` and the grouping labels to every pushed series; scrape it
//! with `honor_labels: true` so that Prometheus keeps them instead of the gateway's own
//! `job` and `instance`.
//!
//! # Scope
//!
//! The push is a blocking HTTP/1.1 exchange on a [`TcpStream`], one connection per
//! call: connecting takes at most the pusher's timeout, and sending the request and
//! reading the answer at most that again. Only
//! `http://` URLs are supported: TLS would need a runtime dependency this crate does
//! not take. To reach a gateway over `https`, push to a local TLS-terminating proxy.
//! The body is the text format 0.0.4 (the default) or protobuf; the gateway does not
//! take OpenMetrics.

use std::error::Error;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::exposition::Format;
use crate::metrics::{Registry, validate_label_name};

/// How long a push may take to connect, and then to send and read the answer, by
/// default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The most of a gateway's response that is read; only its status line and the first
/// line of its body are used.
const MAX_RESPONSE: usize = 64 * 1024;

/// The most characters of a gateway's error line kept in [`PushError::Status`].
const MAX_MESSAGE: usize = 512;

/// A Pushgateway group (the gateway's URL, a job and grouping labels) and how to push
/// to it.
///
/// ```
/// use tinyprom::push::Pusher;
///
/// // An empty value and a value with a `/` are encoded as the gateway expects.
/// let pusher = Pusher::new("http://localhost:9091/", "nightly report")?
///     .grouping("shard", "")?
///     .grouping("path", "/var/tmp")?;
/// assert_eq!(
///     pusher.url(),
///     "http://localhost:9091/metrics/job@base64/bmlnaHRseSByZXBvcnQ=/shard@base64/=/path@base64/L3Zhci90bXA=",
/// );
/// # Ok::<(), tinyprom::push::PushError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Pusher {
    /// `host:port` as written in the URL: the `Host` header and what is resolved.
    authority: String,
    host: String,
    port: u16,
    /// The URL's path without its trailing `/` (a gateway behind a path prefix).
    prefix: String,
    /// `/metrics/job/...`, the grouping key's part of the path.
    group: String,
    /// Grouping label names so far, to refuse a repeated one.
    labels: Vec<String>,
    format: Format,
    timeout: Duration,
}

impl Pusher {
    /// A pusher for `job`'s group at the gateway whose base URL is `url`
    /// (`http://host[:port][/path]`; the port defaults to 80, the gateway's own default
    /// is 9091). The body is the text format until [`Pusher::format`] says otherwise.
    ///
    /// Fails with [`PushError::InvalidUrl`] for anything but such a URL (`https://`
    /// included) and [`PushError::InvalidJob`] for an empty job.
    ///
    /// ```
    /// use tinyprom::push::{PushError, Pusher};
    /// assert!(Pusher::new("http://[::1]:9091", "job").is_ok());
    /// assert!(matches!(Pusher::new("https://gw:9091", "job"), Err(PushError::InvalidUrl(_))));
    /// assert!(matches!(Pusher::new("http://gw:9091", ""), Err(PushError::InvalidJob)));
    /// ```
    pub fn new(url: &str, job: &str) -> Result<Pusher, PushError> {
        let (authority, host, port, prefix) = parse_url(url)?;
        if job.is_empty() {
            return Err(PushError::InvalidJob);
        }
        let mut group = String::from("/metrics");
        push_segment(&mut group, "job", job);
        Ok(Pusher {
            authority,
            host,
            port,
            prefix,
            group,
            labels: Vec::new(),
            format: Format::Text,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// Adds the grouping label `name="value"` to the group. Any value is allowed: one
    /// that is empty, or has a character other than letters, digits and `-._~`, goes in
    /// the URL in base64url form (`name@base64/...`, `name@base64/=` when empty).
    ///
    /// Fails with [`PushError::InvalidLabel`] for a name that is not a valid label name,
    /// is `job`, or is already in the group.
    ///
    /// ```
    /// use tinyprom::push::{PushError, Pusher};
    /// let pusher = Pusher::new("http://127.0.0.1:9091", "etl")?.grouping("instance", "db-1")?;
    /// assert_eq!(pusher.url(), "http://127.0.0.1:9091/metrics/job/etl/instance/db-1");
    /// assert!(matches!(pusher.clone().grouping("job", "x"), Err(PushError::InvalidLabel { .. })));
    /// assert!(matches!(pusher.grouping("instance", "x"), Err(PushError::InvalidLabel { .. })));
    /// # Ok::<(), PushError>(())
    /// ```
    pub fn grouping(mut self, name: &str, value: &str) -> Result<Pusher, PushError> {
        let invalid = |reason: &'static str| PushError::InvalidLabel {
            name: name.to_string(),
            reason,
        };
        if name == "job" {
            return Err(invalid("`job` is the pusher's job, given to Pusher::new"));
        }
        if validate_label_name(name).is_err() {
            return Err(invalid(
                "a label name matches [a-zA-Z_][a-zA-Z0-9_]*, does not start with __ and is not le or quantile",
            ));
        }
        if self.labels.iter().any(|l| l == name) {
            return Err(invalid("this label is already in the grouping key"));
        }
        self.labels.push(name.to_string());
        push_segment(&mut self.group, name, value);
        Ok(self)
    }

    /// Sets the body's format: [`Format::Text`] (the default) or [`Format::Protobuf`]
    /// (which also carries native histograms). Fails with
    /// [`PushError::UnsupportedFormat`] for [`Format::OpenMetrics`], which the gateway
    /// does not accept.
    ///
    /// ```
    /// use tinyprom::exposition::Format;
    /// use tinyprom::push::{PushError, Pusher};
    /// let pusher = Pusher::new("http://127.0.0.1:9091", "etl")?;
    /// assert!(pusher.clone().format(Format::Protobuf).is_ok());
    /// assert!(matches!(pusher.format(Format::OpenMetrics), Err(PushError::UnsupportedFormat(_))));
    /// # Ok::<(), PushError>(())
    /// ```
    pub fn format(mut self, format: Format) -> Result<Pusher, PushError> {
        if format == Format::OpenMetrics {
            return Err(PushError::UnsupportedFormat(format));
        }
        self.format = format;
        Ok(self)
    }

    /// Sets the time a push may take to connect, and then to send its request and read
    /// the answer ([`DEFAULT_TIMEOUT`] until set). A zero duration is taken as one
    /// millisecond, since sockets take no zero timeout.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tinyprom::push::Pusher;
    /// let pusher = Pusher::new("http://127.0.0.1:9091", "etl")?.timeout(Duration::from_secs(2));
    /// # Ok::<(), tinyprom::push::PushError>(())
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Pusher {
        self.timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// The group's URL, which the push, push-add and delete requests go to.
    ///
    /// ```
    /// use tinyprom::push::Pusher;
    /// let pusher = Pusher::new("http://127.0.0.1:9091/gw", "etl")?;
    /// assert_eq!(pusher.url(), "http://127.0.0.1:9091/gw/metrics/job/etl");
    /// # Ok::<(), tinyprom::push::PushError>(())
    /// ```
    pub fn url(&self) -> String {
        format!("http://{}{}{}", self.authority, self.prefix, self.group)
    }

    /// Pushes `registry` with `PUT`: the group's metrics at the gateway become exactly
    /// the registry's (metrics of the group that the registry lacks are removed).
    pub fn push(&self, registry: &Registry) -> Result<(), PushError> {
        self.send("PUT", Some(&registry.render_bytes(self.format)))
    }

    /// Pushes `registry` with `POST`: the group's metrics with a name in the registry
    /// are replaced by the registry's, the group's other metrics stay.
    pub fn push_add(&self, registry: &Registry) -> Result<(), PushError> {
        self.send("POST", Some(&registry.render_bytes(self.format)))
    }

    /// Deletes the group from the gateway (every metric pushed under this job and
    /// these grouping labels).
    pub fn delete(&self) -> Result<(), PushError> {
        self.send("DELETE", None)
    }

    /// One request on a new connection, and its response's status: the connection
    /// within the timeout, then the request and its response within another.
    fn send(&self, method: &str, body: Option<&[u8]>) -> Result<(), PushError> {
        let mut stream = self.connect()?;
        let deadline = Instant::now() + self.timeout;
        let mut head = format!(
            "{method} {}{} HTTP/1.1\r\nHost: {}\r\nUser-Agent: tinyprom/{}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.prefix,
            self.group,
            self.authority,
            crate::VERSION,
            body.map_or(0, <[u8]>::len)
        );
        if body.is_some() {
            head.push_str("Content-Type: ");
            head.push_str(self.format.content_type());
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        write_all_by(&mut stream, head.as_bytes(), deadline)?;
        write_all_by(&mut stream, body.unwrap_or_default(), deadline)?;
        let response = read_response(&mut stream, deadline)?;
        check_response(&response)
    }

    /// Connects to the first of the host's addresses that accepts, all tries within the
    /// timeout. (Resolving a host name is the system resolver's, which std cannot
    /// bound; an IP address needs no resolving.)
    fn connect(&self) -> Result<TcpStream, PushError> {
        let connect_error = |source| PushError::Connect {
            address: self.authority.clone(),
            source,
        };
        let addresses = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(connect_error)?;
        let deadline = Instant::now() + self.timeout;
        let mut last = io::Error::new(io::ErrorKind::NotFound, "the host has no address");
        for address in addresses {
            let left = match time_left(deadline) {
                Ok(left) => left,
                Err(e) => return Err(connect_error(e)),
            };
            match TcpStream::connect_timeout(&address, left) {
                Ok(stream) => return Ok(stream),
                Err(e) => last = e,
            }
        }
        Err(connect_error(last))
    }
}

/// Why a push, push-add or delete failed, or a pusher could not be made.
///
/// ```
/// use tinyprom::push::{PushError, Pusher};
/// let err = Pusher::new("ftp://gw", "job").unwrap_err();
/// assert!(matches!(err, PushError::InvalidUrl(_)));
/// println!("{err}"); // says what a valid URL looks like
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum PushError {
    /// The gateway URL is not `http://host[:port][/path]` (the reason).
    InvalidUrl(String),
    /// The job is empty.
    InvalidJob,
    /// A grouping label is not valid.
    InvalidLabel {
        /// The label name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The gateway does not accept bodies in this format.
    UnsupportedFormat(Format),
    /// No connection to the gateway could be made.
    Connect {
        /// The gateway's `host:port`.
        address: String,
        /// The last connection error.
        source: io::Error,
    },
    /// Sending the request or reading the response failed (a timeout included).
    Io(io::Error),
    /// The gateway answered with a status other than 2xx.
    Status {
        /// The HTTP status code.
        code: u16,
        /// The first line of the gateway's response body, or its reason phrase when the
        /// body is empty.
        message: String,
    },
    /// The gateway's answer is not an HTTP response.
    InvalidResponse(String),
}

impl fmt::Display for PushError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushError::InvalidUrl(reason) => write!(
                f,
                "invalid Pushgateway URL ({reason}); expected http://host[:port][/path]"
            ),
            PushError::InvalidJob => write!(f, "the Pushgateway job must not be empty"),
            PushError::InvalidLabel { name, reason } => {
                write!(f, "invalid grouping label {name:?}: {reason}")
            }
            PushError::UnsupportedFormat(format) => write!(
                f,
                "the Pushgateway does not accept {} bodies; push text or protobuf",
                format.name()
            ),
            PushError::Connect { address, source } => {
                write!(
                    f,
                    "cannot connect to the Pushgateway at {address}: {source}; is it running there?"
                )
            }
            PushError::Io(e) => write!(f, "Pushgateway request failed: {e}"),
            PushError::Status { code, message } => {
                write!(f, "the Pushgateway answered {code}: {message}")
            }
            PushError::InvalidResponse(reason) => {
                write!(f, "the Pushgateway's answer is not valid HTTP: {reason}")
            }
        }
    }
}

impl Error for PushError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            PushError::Connect { source, .. } => Some(source),
            PushError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for PushError {
    fn from(e: io::Error) -> Self {
        PushError::Io(e)
    }
}

/// Splits `http://host[:port][/path]` into its authority, host (without an IPv6
/// literal's brackets), port and path prefix without a trailing `/`.
fn parse_url(url: &str) -> Result<(String, String, u16, String), PushError> {
    let invalid = |reason: &str| Err(PushError::InvalidUrl(reason.to_string()));
    let Some((scheme, rest)) = url.split_once("://") else {
        return invalid("no scheme");
    };
    if scheme.eq_ignore_ascii_case("https") {
        return invalid(
            "https is not supported: the push has no TLS; push over http:// or to a local TLS-terminating proxy",
        );
    }
    if !scheme.eq_ignore_ascii_case("http") {
        return invalid("the scheme must be http");
    }
    if rest.bytes().any(|b| b <= b' ' || b >= 0x7f) {
        return invalid("spaces, control or non-ASCII characters");
    }
    if rest.contains(['?', '#']) {
        return invalid("a query or fragment");
    }
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if authority.contains('@') {
        return invalid("credentials in the URL are not supported");
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let Some((host, after)) = v6.split_once(']') else {
            return invalid("an IPv6 address without its closing ]");
        };
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return invalid("text after the IPv6 address"),
            },
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return invalid("no host");
    }
    let port = match port {
        None => 80,
        Some(text) => match text.parse::<u16>() {
            Ok(port) if port > 0 && text.bytes().all(|b| b.is_ascii_digit()) => port,
            _ => return invalid("the port must be a number from 1 to 65535"),
        },
    };
    Ok((
        authority.to_string(),
        host.to_string(),
        port,
        path.trim_end_matches('/').to_string(),
    ))
}

/// Appends `/name/value` to a grouping path, or `/name@base64/...` when the value would
/// not survive as a plain path segment.
fn push_segment(path: &mut String, name: &str, value: &str) {
    path.push('/');
    path.push_str(name);
    // `.` and `..` are path steps to any router that cleans paths; an empty segment
    // would vanish.
    let plain = !value.is_empty()
        && value != "."
        && value != ".."
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    if plain {
        path.push('/');
        path.push_str(value);
    } else if value.is_empty() {
        // The gateway's spelling of an empty value: base64 of nothing is nothing, and
        // an empty segment would be lost, so a lone padding character stands for it.
        path.push_str("@base64/=");
    } else {
        path.push_str("@base64/");
        base64url(value.as_bytes(), path);
    }
}

/// Appends the base64url encoding (RFC 4648 section 5, with padding) of `bytes`.
fn base64url(bytes: &[u8], out: &mut String) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
}

/// The time left until `deadline`, or a timeout error when none is. Each socket call
/// waits at most this long, so a peer that trickles bytes cannot stretch the exchange.
fn time_left(deadline: Instant) -> io::Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the Pushgateway exchange took longer than the pusher's timeout",
        ));
    }
    Ok(left)
}

/// Writes all of `bytes` by `deadline`.
fn write_all_by(stream: &mut TcpStream, mut bytes: &[u8], deadline: Instant) -> io::Result<()> {
    while !bytes.is_empty() {
        stream.set_write_timeout(Some(time_left(deadline)?))?;
        match stream.write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads the response until the server closes the connection, its `Content-Length` is
/// complete, or [`MAX_RESPONSE`] bytes have come (the status and the body's first line
/// are all that is used), by `deadline`.
fn read_response(stream: &mut TcpStream, deadline: Instant) -> Result<Vec<u8>, PushError> {
    let mut response = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        stream.set_read_timeout(Some(time_left(deadline)?))?;
        let n = match stream.read(&mut chunk) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            read => read?,
        };
        if n == 0 {
            break;
        }
        response.extend_from_slice(&chunk[..n]);
        if response.len() >= MAX_RESPONSE || complete(&response) {
            break;
        }
    }
    response.truncate(MAX_RESPONSE);
    Ok(response)
}

/// Whether `response` holds its whole head and the `Content-Length` bytes it announces.
fn complete(response: &[u8]) -> bool {
    let Some(end) = find(response, b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&response[..end]);
    head.lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse::<usize>().ok())
        .is_some_and(|length| response.len() - (end + 4) >= length)
}

/// `Ok` for a 2xx status, else the status and the first line of the body.
fn check_response(response: &[u8]) -> Result<(), PushError> {
    let head_end = find(response, b"\r\n\r\n");
    let head = String::from_utf8_lossy(&response[..head_end.unwrap_or(response.len())]);
    let status_line = head.lines().next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
        return Err(bad_response(status_line));
    };
    let code = match code.parse::<u16>() {
        Ok(code) if version.starts_with("HTTP/1.") && (100..=999).contains(&code) => code,
        _ => return Err(bad_response(status_line)),
    };
    if (200..300).contains(&code) {
        return Ok(());
    }
    let reason = parts.next().unwrap_or("").trim();
    let body = head_end.map_or(&[][..], |end| &response[end + 4..]);
    let chunked = head.lines().any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("transfer-encoding")
                && value.to_ascii_lowercase().contains("chunked")
        })
    });
    // A chunked body starts with its first chunk's size line; the text follows it.
    let body = match (chunked, find(body, b"\r\n")) {
        (true, Some(size_end)) => &body[size_end + 2..],
        _ => body,
    };
    let text = String::from_utf8_lossy(body);
    let first = text.lines().map(str::trim).find(|l| !l.is_empty());
    let message: String = first.unwrap_or(reason).chars().take(MAX_MESSAGE).collect();
    Err(PushError::Status { code, message })
}

fn bad_response(status_line: &str) -> PushError {
    let line: String = status_line.chars().take(MAX_MESSAGE).collect();
    PushError::InvalidResponse(format!("status line {line:?}"))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(value: &str) -> String {
        let mut out = String::new();
        base64url(value.as_bytes(), &mut out);
        out
    }

    #[test]
    fn base64url_matches_rfc_4648_vectors_in_the_url_alphabet() {
        // RFC 4648 section 10's test vectors.
        for (plain, b64) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(encoded(plain), b64);
        }
        // 0xfb 0xff: `+/` in the standard alphabet, `-_` in the URL one.
        let mut out = String::new();
        base64url(&[0xfb, 0xff], &mut out);
        assert_eq!(out, "-_8=");
    }

    #[test]
    fn segments_are_plain_only_when_they_survive_a_path() {
        let segment = |value: &str| {
            let mut path = String::new();
            push_segment(&mut path, "l", value);
            path
        };
        assert_eq!(segment("a-b.c_d~9"), "/l/a-b.c_d~9");
        assert_eq!(segment(""), "/l@base64/=");
        assert_eq!(segment("a/b"), "/l@base64/YS9i");
        assert_eq!(segment(".."), "/l@base64/Li4=");
        assert_eq!(segment("a b"), "/l@base64/YSBi");
        assert_eq!(segment("ü"), "/l@base64/w7w=");
    }

    #[test]
    fn urls_are_parsed_or_refused_with_a_reason() {
        let ok = |url: &str| {
            let (authority, host, port, prefix) = parse_url(url).unwrap();
            (authority, host, port, prefix)
        };
        assert_eq!(
            ok("http://gw:9091"),
            ("gw:9091".into(), "gw".into(), 9091, "".into())
        );
        assert_eq!(
            ok("HTTP://gw/a/b/"),
            ("gw".into(), "gw".into(), 80, "/a/b".into())
        );
        assert_eq!(
            ok("http://[::1]:9091/"),
            ("[::1]:9091".into(), "::1".into(), 9091, "".into())
        );
        for bad in [
            "gw:9091",
            "https://gw",
            "ftp://gw",
            "http://",
            "http://:9091",
            "http://gw:0",
            "http://gw:65536",
            "http://gw:+80",
            "http://gw:x",
            "http://u:p@gw",
            "http://gw/?a=b",
            "http://gw/a b",
            "http://[::1",
            "http://[::1]x",
        ] {
            assert!(
                matches!(parse_url(bad), Err(PushError::InvalidUrl(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn responses_give_the_status_and_the_body_s_first_line() {
        assert!(check_response(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").is_ok());
        assert!(check_response(b"HTTP/1.1 202 Accepted\r\n\r\n").is_ok());
        let err = check_response(
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 30\r\n\r\n\npushed metrics are invalid\nmore",
        );
        assert!(
            matches!(err, Err(PushError::Status { code: 400, ref message }) if message == "pushed metrics are invalid"),
            "{err:?}"
        );
        let err = check_response(
            b"HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nboom\n\r\n0\r\n\r\n",
        );
        assert!(
            matches!(err, Err(PushError::Status { code: 500, ref message }) if message == "boom"),
            "{err:?}"
        );
        let err = check_response(b"HTTP/1.1 404 Not Found\r\n\r\n");
        assert!(
            matches!(err, Err(PushError::Status { code: 404, ref message }) if message == "Not Found"),
            "{err:?}"
        );
        for bad in [&b""[..], b"SSH-2.0-OpenSSH\r\n", b"HTTP/1.1 abc\r\n\r\n"] {
            assert!(
                matches!(check_response(bad), Err(PushError::InvalidResponse(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_response_is_complete_when_its_content_length_has_come() {
        assert!(!complete(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"));
        assert!(!complete(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\na"));
        assert!(complete(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nab"));
        assert!(!complete(b"HTTP/1.1 200 OK\r\n\r\nab"));
    }
}
