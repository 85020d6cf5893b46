//! `make bench`, gzip part: what compressing a scrape costs and saves, next to the
//! cost of rendering it uncompressed (identity), for tinyprom's own registry and for 10,000 histogram
//! series; with flate2 (miniz_oxide) at its default level 6 for context.
//!
//! `cargo bench --bench gzip` runs the full measurement; without `--bench` (as
//! `cargo test --all-targets` runs it) it does a quick smoke run that checks every
//! compressed scrape decodes back to its render, so the benchmark cannot rot.

#[path = "compare/alloc.rs"]
mod alloc;
#[path = "compare/timing.rs"]
mod timing;

use std::hint::black_box;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use flate2::{Compress, Compression, Crc, FlushCompress};
use tinyprom::exposition::Format;
use tinyprom::exposition::gzip::Gzip;
use tinyprom::http::{Options, Server};
use tinyprom::metrics::{Buckets, Family, Histogram, Registry};

use timing::{Plan, Stats, load_average, per_iteration};

#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting;

/// Bytes of gzip header and trailer, added to flate2's raw deflate output.
const GZIP_FRAMING: usize = 18;

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let plan = if full { Plan::FULL } else { Plan::SMOKE };
    let many = if full { 10_000 } else { 200 };

    println!("## gzip per scrape\n");
    println!(
        "Load average at the start: {}. Repetitions: {} of about {} ms each (median, min–max). flate2 {} (miniz_oxide), level 6, with a reused compressor.",
        load_average(),
        plan.reps,
        plan.batch.as_millis(),
        flate2_version()
    );

    let mark = alloc::mark();
    let gzip = Gzip::new();
    let ours_state = mark.retained_since();
    let mark = alloc::mark();
    let flate = Compress::new(Compression::default(), false);
    let flate_state = mark.retained_since();
    println!(
        "\nCompressor state: tinyprom {} KiB, flate2 {} KiB.\n",
        ours_state / 1024,
        flate_state / 1024
    );
    let mut scratch = Scratch {
        gzip,
        flate,
        rendered: Vec::new(),
        compressed: Vec::new(),
    };

    let (server_registry, running) = default_registry();
    let big = histograms(many);
    let cases: [(&str, &Registry, Format); 3] = [
        ("tinyprom's own", &server_registry, Format::OpenMetrics),
        ("tinyprom's own", &server_registry, Format::Text),
        ("10,000 series", &big, Format::Text),
    ];

    println!(
        "| registry | format | identity bytes | render µs | range | gzip bytes | ratio | gzip µs | range | flate2 bytes | ratio | flate2 µs | range | bytes gzip allocates per warm scrape |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (name, registry, format) in cases {
        let name = if std::ptr::eq(registry, &big) && !full {
            "200 series (smoke)"
        } else {
            name
        };
        let r = measure(plan, registry, format, &mut scratch);
        let us = |s: Stats| {
            format!(
                "{:.1} | {:.1}–{:.1}",
                s.median / 1e3,
                s.min / 1e3,
                s.max / 1e3
            )
        };
        println!(
            "| {name} | {} | {} | {} | {} | {:.3} | {} | {} | {:.3} | {} | {} |",
            if format == Format::Text {
                "text"
            } else {
                "OpenMetrics"
            },
            r.identity,
            us(r.render),
            r.gzip,
            r.gzip as f64 / r.identity as f64,
            us(r.ours),
            r.flate2,
            r.flate2 as f64 / r.identity as f64,
            us(r.flate),
            r.allocated,
        );
    }
    if let Err(e) = running.stop() {
        eprintln!("stopping the server: {e}");
    }
}

/// What every measurement reuses, as a worker does.
struct Scratch {
    gzip: Gzip,
    flate: Compress,
    rendered: Vec<u8>,
    compressed: Vec<u8>,
}

struct Measured {
    identity: usize,
    gzip: usize,
    flate2: usize,
    render: Stats,
    ours: Stats,
    flate: Stats,
    allocated: u64,
}

fn measure(plan: Plan, registry: &Registry, format: Format, s: &mut Scratch) -> Measured {
    let render = |s: &mut Scratch| {
        s.rendered.clear();
        registry.encode(&mut s.rendered, format);
    };
    let ours = |s: &mut Scratch| {
        s.compressed.clear();
        s.gzip.compress(&s.rendered, &mut s.compressed);
    };
    // The same work as a gzip member: raw deflate plus the CRC-32 of the input.
    let flate = |s: &mut Scratch| {
        s.compressed.clear();
        s.compressed.reserve(s.rendered.len() + 64);
        s.flate.reset();
        let mut crc = Crc::new();
        crc.update(&s.rendered);
        black_box(crc.sum());
        let status = s
            .flate
            .compress_vec(&s.rendered, &mut s.compressed, FlushCompress::Finish);
        assert!(matches!(status, Ok(flate2::Status::StreamEnd)));
    };

    render(s);
    ours(s);
    let mark = alloc::mark();
    ours(s);
    let allocated = mark.allocated_since();
    let identity = s.rendered.len();
    let gzip = s.compressed.len();
    let mut decoded = Vec::new();
    flate2::read::GzDecoder::new(s.compressed.as_slice())
        .read_to_end(&mut decoded)
        .expect("our gzip decodes");
    assert!(
        decoded == s.rendered,
        "a compressed scrape decodes to its render"
    );
    flate(s);
    let flate2 = s.compressed.len() + GZIP_FRAMING;

    let time = |s: &mut Scratch, f: &dyn Fn(&mut Scratch)| {
        per_iteration(plan, |n| {
            for _ in 0..n {
                f(s);
            }
            black_box(s.compressed.len() + s.rendered.len());
        })
    };
    Measured {
        identity,
        gzip,
        flate2,
        render: time(s, &render),
        ours: time(s, &ours),
        flate: time(s, &flate),
        allocated,
    }
}

/// tinyprom's own registry as its server fills it: a server on a loopback port, sent a
/// little of every kind of traffic over real HTTP (so the request histogram has the
/// series a running instance has), then stopped from serving requests by the caller.
fn default_registry() -> (Arc<Registry>, tinyprom::http::RunningServer) {
    let registry = Arc::new(Registry::new());
    let options = Options {
        listen_address: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..Options::default()
    };
    let running = Server::builder(options)
        .registry(Arc::clone(&registry))
        .bind()
        .expect("bind a loopback port")
        .spawn()
        .expect("start the server");
    let addr = running.local_addr();
    let mut requests = vec![
        ("GET", "/up"),
        ("GET", "/nope"),
        ("POST", "/up"),
        ("HEAD", "/metrics"),
    ];
    requests.extend(std::iter::repeat_n(("GET", "/synthetic"), 40));
    requests.push(("GET", "/metrics"));
    for (method, path) in requests {
        get(addr, method, path);
    }
    (registry, running)
}

/// One request on a fresh connection, its answer read to the end (bounded by timeouts).
fn get(addr: SocketAddr, method: &str, path: &str) {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(5)) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let request = format!("{method} {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_ok() {
        let _ = stream.read_to_end(&mut Vec::new());
    }
}

/// `series` histograms `http_request_duration_seconds{method,url,code}`, each observed
/// once with a different value, as the render benchmark of `compare` builds them.
fn histograms(series: usize) -> Registry {
    const CODES: [&str; 10] = [
        "200", "201", "204", "301", "304", "400", "401", "404", "500", "503",
    ];
    const METHODS: [&str; 4] = ["GET", "POST", "PUT", "DELETE"];
    let buckets = Buckets::new(&[0.01, 0.1, 0.5, 2.0]).expect("valid bounds");
    let family: Family<Histogram> =
        Family::with_constructor(&["method", "url", "code"], move || {
            Histogram::with_buckets(buckets.clone())
        })
        .expect("valid family")
        .with_max_series(series);
    for i in 0..series {
        let url = format!("/api/v1/items/{}", i / 40);
        let labels = [METHODS[i / 10 % 4], url.as_str(), CODES[i % 10]];
        family
            .with_label_values(&labels)
            .expect("within the series bound")
            .observe(0.001 + i as f64 * 0.000_37);
    }
    let registry = Registry::new();
    registry
        .register("http_request_duration_seconds", "Request duration.", family)
        .expect("registers");
    registry
}

/// flate2's version from the lock file cargo built this with.
fn flate2_version() -> String {
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock"))
        .unwrap_or_default();
    lock.split_once("name = \"flate2\"\nversion = \"")
        .and_then(|(_, rest)| rest.split('"').next())
        .unwrap_or("?")
        .to_string()
}
