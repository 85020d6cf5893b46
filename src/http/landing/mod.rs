//! The landing page at `/`: what a person who opens the server in a browser sees.
//!
//! Exporters answer `/` with a page that links to their metrics; this one also shows the
//! process's own RED at a glance, read from the same request histogram a scrape renders
//! (see [`RouteTotals`]), so the page never disagrees with `/metrics`: requests, 5xx and
//! error ratio per route since the serving process started, the availability SLI
//! against the 98% objective, p50 and p99 read from the native buckets (about 9% wide;
//! see [`native`]; from the classic buckets as PromQL's `histogram_quantile` would,
//! see [`quantile`], only for series without native buckets), and the requests per
//! classic bucket (the thresholds the alerting rules use) as an inline SVG bar chart
//! (see [`chart`]). No script, no external asset: one response.
//!
//! A client that does not ask for HTML (`curl`, a probe) gets a short plain-text index
//! instead. Both are written into the worker's reusable buffer and bounded in size:
//! at most [`MAX_ROUTES_SHOWN`] routes, each label cut to [`MAX_ROUTE_CHARS`]
//! characters, every other figure a number; see [`PAGE_MAX_BYTES`].
//!
//! Every figure a test (or a person's script) may want to compare carries a `data-*`
//! attribute with the exact value next to its rounded rendering.

mod chart;
mod native;
mod quantile;

pub use native::NativeTotals;

use std::io::Write;

use super::red::{DURATION_BUCKETS, RouteTotals};

/// Routes listed at most; the totals row and the chart still count all of them.
pub const MAX_ROUTES_SHOWN: usize = 32;

/// Characters of a route label shown at most; longer ones are cut and marked `…`.
pub const MAX_ROUTE_CHARS: usize = 64;

/// The page is at most this many bytes, plus six per byte of the telemetry path (its
/// link is written whole, HTML-escaped). Checked by a test with the most and longest
/// routes and the largest counts possible.
pub const PAGE_MAX_BYTES: usize = 48 * 1024;

/// The availability objective the SLI is shown against (as in the alerting rules).
pub const AVAILABILITY_OBJECTIVE: f64 = 0.98;

/// The latency buckets as people read them, one per bucket of [`DURATION_BUCKETS`]
/// and `+Inf`.
const BUCKET_LABELS: [&str; DURATION_BUCKETS.len() + 1] =
    ["≤ 10 ms", "10–100 ms", "0.1–0.5 s", "0.5–2 s", "> 2 s"];
/// The same buckets by their `le` label value.
const BUCKET_LES: [&str; DURATION_BUCKETS.len() + 1] = ["0.01", "0.1", "0.5", "2", "+Inf"];

/// The content type of the HTML page.
pub const HTML: &str = "text/html; charset=utf-8";
/// The content type of the plain-text index.
pub const TEXT: &str = "text/plain; charset=utf-8";

const STYLE: &str = "body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:60em;\
padding:0 1em;color:#1d2330}h1{margin-bottom:.2em}nav a{margin-right:1.2em}\
table{border-collapse:collapse;width:100%}th,td{padding:.3em .6em;text-align:right;\
border-bottom:1px solid #dde}th:first-child,td:first-child{text-align:left}\
tfoot td{font-weight:600}.ok{color:#17803d}.bad{color:#b42318}.muted{color:#667}\
#latency-chart{width:100%;max-width:560px}#latency-chart rect{fill:#3e63dd}\
#latency-chart text{font-size:12px;text-anchor:middle;fill:#1d2330}\
#latency-chart .axis{stroke:#99a}code{background:#f2f3f7;padding:0 .25em}";

/// Renders the page for a client sending `accept` into `buf` (cleared first), linking
/// to the metrics at `telemetry_path`, and returns its content type: HTML for
/// browsers, the plain-text index otherwise.
pub fn render(
    accept: Option<&str>,
    telemetry_path: &str,
    totals: &[RouteTotals<'_>],
    buf: &mut Vec<u8>,
) -> &'static str {
    buf.clear();
    if wants_html(accept) {
        // Once per worker buffer: later pages fit without growing it.
        buf.reserve(PAGE_MAX_BYTES + 6 * telemetry_path.len());
        write_html(buf, telemetry_path, totals);
        HTML
    } else {
        write_text(buf, telemetry_path);
        TEXT
    }
}

fn write_text(buf: &mut Vec<u8>, telemetry_path: &str) {
    let _ = write!(
        buf,
        "tinyprom {}\n\n  {:<12} metrics (Prometheus text or OpenMetrics)\n  {:<12} liveness\n  \
             {:<12} a random delay and status, for RED data\n\n\
             Open this address in a browser for the RED overview.\n",
        crate::VERSION,
        telemetry_path,
        "/up",
        "/synthetic",
    );
}

fn write_html(buf: &mut Vec<u8>, telemetry_path: &str, totals: &[RouteTotals<'_>]) {
    let all = sum(totals);
    let version = crate::VERSION;
    let _ = write!(
        buf,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
             <title>tinyprom {version}</title><link rel=\"icon\" href=\"data:,\">\
             <style>{STYLE}</style></head><body>\
             <h1>tinyprom <span id=\"version\" data-value=\"{version}\">{version}</span></h1>\
             <p class=\"muted\">A web application that monitors itself the Prometheus way. \
             Every figure below is read from this serving process's own request histogram \
             <code>http_request_duration_seconds</code>, since it started.</p><nav>"
    );
    buf.extend_from_slice(b"<a id=\"link-metrics\" href=\"");
    escape(buf, telemetry_path);
    buf.extend_from_slice(b"\">");
    escape_cut(buf, telemetry_path);
    buf.extend_from_slice(
            b" (metrics)</a><a id=\"link-up\" href=\"/up\">/up (liveness)</a>\
              <a id=\"link-synthetic\" href=\"/synthetic\">/synthetic (synthetic RED traffic)</a></nav>",
        );
    write_sli(buf, &all);
    write_table(buf, totals, &all);
    let mut per_bucket = [0u64; DURATION_BUCKETS.len() + 1];
    let mut below = 0;
    for (n, cumulative) in per_bucket.iter_mut().zip(all.cumulative) {
        *n = cumulative.wrapping_sub(below);
        below = cumulative;
    }
    buf.extend_from_slice(b"<h2>Requests per latency bucket, all routes</h2>");
    chart::write(buf, &per_bucket, &BUCKET_LABELS, &BUCKET_LES);
    buf.extend_from_slice(
        b"<p class=\"muted\">p50 and p99 come from the histogram's native buckets, each \
              about 9% wide, so they are within a few percent of the latencies clients see. \
              The chart counts requests in the classic buckets (10 ms, 100 ms, 0.5 s, 2 s), \
              the thresholds the alerting rules and dashboards use.</p></body></html>",
    );
}

/// Whether the `Accept` header lists HTML with a non-zero quality.
fn wants_html(accept: Option<&str>) -> bool {
    accept.is_some_and(|accept| {
        accept.split(',').any(|range| {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or("");
            let html = media.eq_ignore_ascii_case("text/html")
                || media.eq_ignore_ascii_case("application/xhtml+xml");
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f64>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            html && !refused
        })
    })
}

/// Every route added up.
fn sum<'a>(totals: &[RouteTotals<'a>]) -> RouteTotals<'a> {
    let mut all = RouteTotals {
        route: "all routes",
        cumulative: [0; DURATION_BUCKETS.len() + 1],
        errors: 0,
        native: NativeTotals::default(),
    };
    for t in totals {
        all.native.add_totals(&t.native);
        // Wrapping, as the counters themselves do.
        for (a, n) in all.cumulative.iter_mut().zip(t.cumulative) {
            *a = a.wrapping_add(n);
        }
        all.errors = all.errors.wrapping_add(t.errors);
    }
    all
}

fn write_sli(buf: &mut Vec<u8>, all: &RouteTotals<'_>) {
    let total = all.count();
    let good = total - all.errors.min(total);
    buf.extend_from_slice(b"<h2>Availability</h2>");
    if total == 0 {
        let _ = write!(
            buf,
            "<p id=\"sli\" data-good=\"0\" data-total=\"0\">No requests yet: the \
             availability SLI (non-5xx / all) is undefined.</p>"
        );
        return;
    }
    let sli = good as f64 / total as f64;
    let (class, verdict) = if sli >= AVAILABILITY_OBJECTIVE {
        ("ok", "meets")
    } else {
        ("bad", "is below")
    };
    let _ = write!(
        buf,
        "<p id=\"sli\" data-value=\"{sli}\" data-good=\"{good}\" data-total=\"{total}\" \
         data-objective=\"{AVAILABILITY_OBJECTIVE}\">Availability SLI (non-5xx / all): \
         <strong class=\"{class}\">{:.2}%</strong> of {total} requests, which {verdict} \
         the {}% objective.</p>",
        sli * 100.0,
        AVAILABILITY_OBJECTIVE * 100.0,
    );
}

fn write_table(buf: &mut Vec<u8>, totals: &[RouteTotals<'_>], all: &RouteTotals<'_>) {
    buf.extend_from_slice(
        b"<h2>Requests per route since start</h2><table id=\"routes\"><thead><tr>\
          <th>route</th><th>requests</th><th>5xx</th><th>error ratio</th><th>p50</th>\
          <th>p99</th></tr></thead><tbody>",
    );
    for t in totals.iter().take(MAX_ROUTES_SHOWN) {
        write_row(buf, "tr", t);
    }
    if totals.len() > MAX_ROUTES_SHOWN {
        let _ = write!(
            buf,
            "<tr><td colspan=\"6\" class=\"muted\">{} more routes, counted in the total</td></tr>",
            totals.len() - MAX_ROUTES_SHOWN
        );
    }
    buf.extend_from_slice(b"</tbody><tfoot>");
    write_row(buf, "tr id=\"total\"", all);
    buf.extend_from_slice(b"</tfoot></table>");
}

/// One row: exact figures in `data-*`, rounded ones in the cells.
fn write_row(buf: &mut Vec<u8>, tag: &str, t: &RouteTotals<'_>) {
    let count = t.count();
    let _ = write!(buf, "<{tag} class=\"route\" data-route=\"");
    escape_cut(buf, t.route);
    let _ = write!(
        buf,
        "\" data-count=\"{count}\" data-errors=\"{}\" data-buckets=\"",
        t.errors
    );
    for (i, c) in t.cumulative.iter().enumerate() {
        let _ = write!(buf, "{}{c}", if i == 0 { "" } else { "," });
    }
    buf.extend_from_slice(b"\"><td>");
    escape_cut(buf, t.route);
    let _ = write!(buf, "</td><td>{count}</td><td>{}</td>", t.errors);
    if count == 0 {
        buf.extend_from_slice(b"<td>-</td><td>-</td><td>-</td></tr>");
        return;
    }
    let ratio = t.errors as f64 / count as f64;
    let _ = write!(
        buf,
        "<td data-field=\"error-ratio\" data-value=\"{ratio}\">{:.2}%</td>",
        ratio * 100.0
    );
    // The native buckets when they hold the requests (they always do in tinyprom's
    // server); the classic ones otherwise.
    let native = t.native.count() > 0;
    let source = if native { "native" } else { "classic" };
    for (name, q) in [("p50", 0.5), ("p99", 0.99)] {
        let estimate = if native {
            t.native.quantile(q)
        } else {
            quantile::estimate(q, &DURATION_BUCKETS, &t.cumulative)
        };
        match estimate {
            Some(v) => {
                let _ = write!(
                    buf,
                    "<td data-field=\"{name}\" data-value=\"{v}\" data-source=\"{source}\">"
                );
                write_seconds(buf, v);
                buf.extend_from_slice(b"</td>");
            }
            None => buf.extend_from_slice(b"<td>-</td>"),
        }
    }
    buf.extend_from_slice(b"</tr>");
}

fn write_seconds(buf: &mut Vec<u8>, seconds: f64) {
    // Microseconds below a millisecond: /up answers in tens of them.
    let _ = if seconds < 0.001 {
        write!(buf, "{:.0} µs", seconds * 1e6)
    } else if seconds < 1.0 {
        write!(buf, "{:.1} ms", seconds * 1000.0)
    } else {
        write!(buf, "{seconds:.2} s")
    };
}

/// Writes `text` HTML-escaped (safe in text and in double-quoted attributes).
fn escape(buf: &mut Vec<u8>, text: &str) {
    for c in text.chars() {
        match c {
            '&' => buf.extend_from_slice(b"&amp;"),
            '<' => buf.extend_from_slice(b"&lt;"),
            '>' => buf.extend_from_slice(b"&gt;"),
            '"' => buf.extend_from_slice(b"&quot;"),
            '\'' => buf.extend_from_slice(b"&#39;"),
            c => {
                let mut utf8 = [0; 4];
                buf.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
            }
        }
    }
}

/// [`escape`] of at most [`MAX_ROUTE_CHARS`] characters of `text`, `…` if cut.
fn escape_cut(buf: &mut Vec<u8>, text: &str) {
    match text.char_indices().nth(MAX_ROUTE_CHARS) {
        Some((end, _)) => {
            escape(buf, &text[..end]);
            buf.extend_from_slice("…".as_bytes());
        }
        None => escape(buf, text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals<'a>(route: &'a str, cumulative: [u64; 5], errors: u64) -> RouteTotals<'a> {
        RouteTotals {
            route,
            cumulative,
            errors,
            native: NativeTotals::default(),
        }
    }

    fn html(telemetry_path: &str, t: &[RouteTotals<'_>]) -> String {
        let mut buf = Vec::new();
        assert_eq!(render(Some("text/html"), telemetry_path, t, &mut buf), HTML);
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn browsers_get_html_and_everyone_else_the_text_index() {
        let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        assert!(wants_html(Some(browser)));
        assert!(wants_html(Some("application/xhtml+xml")));
        for other in [None, Some("*/*"), Some("text/plain"), Some("text/html;q=0")] {
            assert!(!wants_html(other), "{other:?}");
        }
        let mut buf = Vec::new();
        assert_eq!(render(Some("*/*"), "/prom", &[], &mut buf), TEXT);
        let text = String::from_utf8(buf).unwrap();
        assert!(text.starts_with(&format!("tinyprom {}\n", crate::VERSION)));
        assert!(text.contains("/prom") && text.contains("/up") && text.contains("/synthetic"));
    }

    #[test]
    fn figures_are_the_totals_exactly_and_rounded() {
        let t = [
            totals("/up", [10, 10, 10, 10, 10], 0),
            totals("/synthetic", [16, 94, 100, 100, 100], 20),
            totals("unmatched", [0, 0, 0, 0, 0], 0),
        ];
        let html = html("/metrics", &t);
        assert!(html.contains("data-route=\"/synthetic\" data-count=\"100\" data-errors=\"20\" data-buckets=\"16,94,100,100,100\""));
        assert!(html.contains("data-field=\"error-ratio\" data-value=\"0.2\">20.00%"));
        let p99 = 0.1 + 0.4 * 5.0 / 6.0;
        assert!(html.contains(&format!(
            "data-field=\"p99\" data-value=\"{p99}\" data-source=\"classic\">433.3 ms"
        )));
        // 110 requests, 20 errors: 90 / 110 = 81.82%, below 98%.
        assert!(html.contains("data-good=\"90\" data-total=\"110\""));
        assert!(html.contains("81.82%</strong> of 110 requests, which is below the 98% objective"));
        // The chart: per-bucket (not cumulative) counts of all routes.
        assert!(html.contains("data-le=\"0.01\" data-count=\"26\""));
        assert!(html.contains("data-le=\"0.1\" data-count=\"78\""));
        assert!(html.contains("data-le=\"+Inf\" data-count=\"0\""));
        assert!(html.contains(
            "<tr id=\"total\" class=\"route\" data-route=\"all routes\" data-count=\"110\""
        ));
        assert!(
            !html.contains("<script") && !html.contains("src=") && !html.contains("href=\"http")
        );
    }

    /// With native buckets the quantiles come from them: /synthetic-like delays of 1
    /// to 50 ms, which the classic buckets put "between 10 and 100 ms", and /up-like
    /// latencies of tens of microseconds, which they put "under 10 ms".
    #[test]
    fn quantiles_come_from_the_native_buckets_when_there_are_some() {
        use crate::metrics::{Histogram, NativeOptions};
        let observed = |values: &mut dyn Iterator<Item = f64>| {
            let h = Histogram::with_native(&DURATION_BUCKETS, NativeOptions::new()).unwrap();
            values.for_each(|v| h.observe(v));
            let snapshot = h.snapshot();
            let mut native = NativeTotals::default();
            native.add(snapshot.native.as_ref().unwrap());
            (snapshot.cumulative.try_into().unwrap(), native)
        };
        let (cumulative, native) = observed(&mut (1..=50).map(|ms| f64::from(ms) * 1e-3));
        let synthetic = RouteTotals {
            native,
            ..totals("/synthetic", cumulative, 0)
        };
        let (cumulative, native) = observed(&mut (1..=100).map(|i| 2e-5 + f64::from(i) * 1e-7));
        let up = RouteTotals {
            native,
            ..totals("/up", cumulative, 0)
        };
        let html = html("/metrics", &[synthetic, up]);
        let value = |route: &str, field: &str| -> f64 {
            let row = &html[html.find(&format!("data-route=\"{route}\"")).unwrap()..];
            let at = row
                .find(&format!("data-field=\"{field}\" data-value=\""))
                .unwrap();
            let rest = &row[at + field.len() + 26..];
            assert!(rest[rest.find('"').unwrap()..].starts_with("\" data-source=\"native\""));
            rest[..rest.find('"').unwrap()].parse().unwrap()
        };
        let p50 = value("/synthetic", "p50");
        assert!((p50 / 0.025 - 1.0).abs() < 0.09, "p50 {p50}");
        let p99 = value("/synthetic", "p99");
        assert!((p99 / 0.0495 - 1.0).abs() < 0.09, "p99 {p99}");
        // /up's quantiles are in microseconds, shown as such.
        let up_row = &html[html.find("data-route=\"/up\"").unwrap()..];
        let up_row = &up_row[..up_row.find("</tr>").unwrap()];
        assert_eq!(up_row.matches(" µs</td>").count(), 2, "{up_row}");
        let up_p99 = value("/up", "p99");
        assert!(up_p99 > 2e-5 && up_p99 < 4e-5, "/up p99 {up_p99}");
        // The total row merges the routes' native buckets.
        let all_p99 = value("all routes", "p99");
        assert!((all_p99 / 0.049 - 1.0).abs() < 0.09, "all p99 {all_p99}");
    }

    #[test]
    fn labels_are_escaped_and_cut() {
        let long = "/<".repeat(100);
        let html = html("/m\"<x>&", &[totals(&long, [1, 1, 1, 1, 1], 0)]);
        assert!(html.contains("href=\"/m&quot;&lt;x&gt;&amp;\""));
        assert!(!html.contains("/<"));
        let cut = format!("{}…", "/&lt;".repeat(MAX_ROUTE_CHARS / 2));
        assert!(
            html.contains(&format!("data-route=\"{cut}\"")),
            "cut at {MAX_ROUTE_CHARS} characters"
        );
    }

    #[test]
    fn the_page_stays_within_its_bound() {
        // The worst case: more routes than shown, every label as long as shown and made
        // of the character that escapes longest, every count as large as possible.
        let label: String = "\"".repeat(MAX_ROUTE_CHARS + 10);
        let max = u64::MAX / 64;
        let many: Vec<RouteTotals<'_>> = (0..MAX_ROUTES_SHOWN + 5)
            .map(|_| totals(&label, [1, 2, 3, 4, max], max / 3))
            .collect();
        let path = format!("/{}", "\"".repeat(200));
        let mut buf = Vec::new();
        render(Some("text/html"), &path, &many, &mut buf);
        let bound = PAGE_MAX_BYTES + 6 * path.len();
        assert!(buf.len() <= bound, "{} > {bound}", buf.len());
        // Reusing the buffer: a render clears what was there.
        let before = buf.capacity();
        render(Some("text/html"), &path, &many[..1], &mut buf);
        assert!(buf.len() < PAGE_MAX_BYTES && buf.capacity() == before);
    }
}
