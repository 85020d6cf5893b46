//! gzip on the real binary's `/metrics`, over real HTTP on loopback: what Prometheus and
//! VictoriaMetrics send (`Accept-Encoding: gzip`) and what `curl --compressed` sends get
//! a gzip body (with `Content-Encoding: gzip` and `Vary: Accept, Accept-Encoding`) that decodes
//! to a scrape Python's `prometheus_client` parses, with the same families and series
//! as an uncompressed scrape, in both formats; a request that does not ask (no header,
//! `identity`, `gzip;q=0`) never gets a compressed body.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::process::Command;

use common::{Family, Response, Tinyprom, gunzip_cli, gunzip_python, python_parse, request};

const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// Every family (name, type) and every series (sample name, labels) of a scrape: what
/// must not depend on the content coding. Values do (counters move between scrapes).
type Structure = BTreeSet<(String, String, BTreeMap<String, String>)>;

fn structure(families: &[Family]) -> Structure {
    let mut all = Structure::new();
    for f in families {
        all.insert((f.name.clone(), f.kind.clone(), BTreeMap::new()));
        for s in &f.samples {
            all.insert((f.name.clone(), s.name.clone(), s.labels.clone()));
        }
    }
    all
}

fn scrape(server: &Tinyprom, accept: Option<&str>, accept_encoding: Option<&str>) -> Response {
    let mut headers = Vec::new();
    if let Some(a) = accept {
        headers.push(("Accept", a));
    }
    if let Some(e) = accept_encoding {
        headers.push(("Accept-Encoding", e));
    }
    let r = request(server.addr, "GET", "/metrics", &headers);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Vary"), Some("Accept, Accept-Encoding"));
    r
}

/// The sample `tinyprom_scrape_bytes_total{encoding}` of a parsed scrape.
fn scrape_bytes(families: &[Family], encoding: &str) -> f64 {
    families
        .iter()
        .flat_map(|f| &f.samples)
        .find(|s| s.name == "tinyprom_scrape_bytes_total" && s.labels["encoding"] == encoding)
        .map_or(0.0, |s| s.value)
}

#[test]
fn gzip_scrapes_decode_to_the_same_series_in_both_formats() {
    let server = Tinyprom::start(&[]);
    for path in ["/up", "/synthetic", "/nope"] {
        server.get(path);
    }
    let mut gzip_bytes = 0usize;
    let mut identity_bytes = 0usize;
    for (accept, format) in [(None, "text"), (Some(PROMETHEUS_ACCEPT), "openmetrics")] {
        // Both codings once first, so every series a scrape creates (its own histogram
        // series, the counters by format and by coding) exists in the compared pair.
        identity_bytes += scrape(&server, accept, None).body.len();
        gzip_bytes += scrape(&server, accept, Some("gzip")).body.len();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let plain = scrape(&server, accept, None);
            assert_eq!(plain.header("Content-Encoding"), None);
            identity_bytes += plain.body.len();
            let compressed = scrape(&server, accept, Some("gzip"));
            assert_eq!(compressed.header("Content-Encoding"), Some("gzip"));
            assert_eq!(
                compressed.header("Content-Type"),
                plain.header("Content-Type")
            );
            gzip_bytes += compressed.body.len();
            assert_eq!(&compressed.body[..2], &[0x1F, 0x8B], "gzip magic");
            let decoded = gunzip_python(&compressed.body);
            assert_eq!(gunzip_cli(&compressed.body), decoded);
            assert!(
                compressed.body.len() * 2 < decoded.len(),
                "{format}: {} compressed bytes for {}",
                compressed.body.len(),
                decoded.len()
            );
            let (a, b) = (
                structure(&python_parse(&plain.body, format)),
                structure(&python_parse(&decoded, format)),
            );
            // A guard counter may gain a series between two scrapes; try again, boundedly.
            if a == b || attempts == 3 {
                assert_eq!(a, b, "{format}: identity and gzip scrapes differ");
                break;
            }
        }
    }
    // Every body byte served was counted by its coding (the last scrape's own bytes
    // are counted after it renders).
    let last = scrape(&server, None, None);
    let families = python_parse(&last.body, "text");
    assert_eq!(scrape_bytes(&families, "gzip"), gzip_bytes as f64);
    assert_eq!(scrape_bytes(&families, "identity"), identity_bytes as f64);
}

#[test]
fn concurrent_gzip_scrapes_all_decode() {
    // Workers share their compressors: scrapes compressed at the same moment must each
    // get a whole stream of their own.
    let server = Tinyprom::start(&[]);
    let addr = server.addr;
    let threads: Vec<_> = (0..6)
        .map(|_| {
            std::thread::spawn(move || {
                let mut decoded = String::new();
                for _ in 0..25 {
                    let r = request(addr, "GET", "/metrics", &[("Accept-Encoding", "gzip")]);
                    assert_eq!(r.header("Content-Encoding"), Some("gzip"));
                    decoded.clear();
                    flate2::read::GzDecoder::new(r.body.as_slice())
                        .read_to_string(&mut decoded)
                        .expect("a whole gzip stream");
                }
                decoded
            })
        })
        .collect();
    for t in threads {
        let last = t.join().unwrap();
        assert!(
            python_parse(last.as_bytes(), "text")
                .iter()
                .any(|f| f.name == "tinyprom_scrapes")
        );
    }
}

#[test]
fn curl_compressed_gets_gzip_and_plain_curl_does_not() {
    let server = Tinyprom::start(&[]);
    let url = format!("http://{}/metrics", server.addr);
    let headers_file = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("compressed-scrapes-{}.headers", std::process::id()));
    for (compressed, expected) in [(true, Some("gzip")), (false, None)] {
        let mut curl = Command::new("curl");
        curl.args(["-sS", "--max-time", "10", "--noproxy", "*", "-D"])
            .arg(&headers_file);
        if compressed {
            curl.arg("--compressed");
        }
        let out = curl.arg(&url).output().expect("curl (run `make deps`)");
        assert!(
            out.status.success(),
            "curl: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let headers = std::fs::read_to_string(&headers_file).unwrap();
        let coding = headers.lines().find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-encoding")
                .then(|| value.trim().to_string())
        });
        assert_eq!(coding.as_deref(), expected, "{headers}");
        // curl decoded the body itself; it must be a scrape.
        let families = python_parse(&out.stdout, "text");
        assert!(
            families
                .iter()
                .any(|f| f.name == "http_request_duration_seconds")
        );
    }
    let _ = std::fs::remove_file(&headers_file);
}

#[test]
fn never_compressed_when_not_asked() {
    let server = Tinyprom::start(&[]);
    for accept_encoding in [
        None,
        Some("identity"),
        Some("gzip;q=0"),
        Some(""),
        Some("br, zstd"),
        Some("gzip;q=x;;"),
    ] {
        let r = scrape(&server, None, accept_encoding);
        assert_eq!(r.header("Content-Encoding"), None, "{accept_encoding:?}");
        let families = python_parse(&r.body, "text");
        assert!(
            families.iter().any(|f| f.name == "tinyprom_scrapes"),
            "{accept_encoding:?}"
        );
    }
}

#[test]
fn head_announces_the_compressed_length() {
    let server = Tinyprom::start(&[]);
    let head = request(
        server.addr,
        "HEAD",
        "/metrics",
        &[("Accept-Encoding", "gzip")],
    );
    assert_eq!(head.status, 200);
    assert_eq!(head.header("Content-Encoding"), Some("gzip"));
    let length: usize = head
        .header("Content-Length")
        .and_then(|l| l.parse().ok())
        .unwrap();
    let get = scrape(&server, None, Some("gzip"));
    // The second scrape renders a few more bytes of counters; the length is the
    // compressed one, far below the identity size.
    let identity = gunzip_python(&get.body).len();
    assert!(
        length * 2 < identity,
        "HEAD says {length}, identity is {identity}"
    );
}
