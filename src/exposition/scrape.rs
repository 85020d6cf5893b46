//! One scrape, from what a request asks to what the response carries: the code the
//! built-in `/metrics` route runs, and the one an embedder's axum, hyper or other
//! handler calls, so the two cannot answer differently.
//!
//! From the method, `Accept`, `Accept-Encoding` and the query string it decides the
//! status, the format and escaping ([`negotiate_escaping`]), the families (`name[]`,
//! [`NameFilter`]), the coding ([`content_coding::choose`]) and so every header:
//! `Content-Type` naming the escaping, `Content-Encoding` when gzipped, and
//! `Vary: Accept, Accept-Encoding` on every answer, because the body depends on both
//! (a shared cache must not hand OpenMetrics or gzip to a scraper that asked for
//! neither). A `HEAD` gets the headers a `GET` would, and no body.

use std::sync::{Arc, Mutex};

use super::content_coding::{self, ContentCoding};
use super::gzip::Gzip;
use super::{Format, NameFilter, Negotiated, negotiate_escaping};
use crate::metrics::Registry;

/// The `Vary` value of every scrape response.
const VARY: &str = "Accept, Accept-Encoding";

/// What a scrape response depends on, as a web framework hands it over.
///
/// ```
/// use tinyprom::exposition::ScrapeRequest;
/// let request = ScrapeRequest::from_target("GET", "/metrics?name[]=up", Some("text/plain"), None);
/// assert_eq!(request.query, Some("name[]=up"));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScrapeRequest<'a> {
    /// The request method (`GET`, `HEAD`; anything else gets 405).
    pub method: &'a str,
    /// The `Accept` header, if any.
    pub accept: Option<&'a str>,
    /// The `Accept-Encoding` header, if any.
    pub accept_encoding: Option<&'a str>,
    /// The query string (after `?`, without a `#` fragment), if any.
    pub query: Option<&'a str>,
}

impl<'a> ScrapeRequest<'a> {
    /// A request for `target` (a request line's origin-form target such as
    /// `/metrics?name[]=up`; the query string is taken from it).
    pub fn from_target(
        method: &'a str,
        target: &'a str,
        accept: Option<&'a str>,
        accept_encoding: Option<&'a str>,
    ) -> ScrapeRequest<'a> {
        let target = target.split('#').next().unwrap_or("");
        ScrapeRequest {
            method,
            accept,
            accept_encoding,
            query: target.split_once('?').map(|(_, q)| q),
        }
    }
}

/// The buffers a scrape renders and compresses into; keep one per thread (or per
/// connection) and a warm scrape allocates nothing for its body.
///
/// ```
/// use std::cell::RefCell;
/// use std::sync::Arc;
/// use tinyprom::exposition::{ScrapeBuffers, ScrapeRequest, Scraper};
/// use tinyprom::metrics::Registry;
///
/// thread_local! {
///     static BUFFERS: RefCell<ScrapeBuffers> = RefCell::new(ScrapeBuffers::default());
/// }
/// let scraper = Scraper::new(Arc::new(Registry::new()));
/// let get = ScrapeRequest { method: "GET", ..ScrapeRequest::default() };
/// let body = BUFFERS.with_borrow_mut(|buffers| scraper.scrape(&get, buffers).body.to_vec());
/// assert!(body.is_empty()); // an empty registry renders nothing in text 0.0.4
/// ```
#[derive(Debug, Default)]
pub struct ScrapeBuffers {
    rendered: Vec<u8>,
    compressed: Vec<u8>,
}

/// A scrape response: status, headers and body, ready to send.
///
/// ```
/// use std::sync::Arc;
/// use tinyprom::exposition::{ScrapeBuffers, ScrapeRequest, Scraper};
/// use tinyprom::metrics::{Counter, Registry};
///
/// let registry = Arc::new(Registry::new());
/// registry.register("jobs_total", "Jobs run.", Counter::new()).unwrap();
/// let scraper = Scraper::new(registry);
/// let mut buffers = ScrapeBuffers::default();
/// let request = ScrapeRequest {
///     method: "GET",
///     accept: Some("application/openmetrics-text;version=1.0.0"),
///     ..ScrapeRequest::default()
/// };
/// let scrape = scraper.scrape(&request, &mut buffers);
/// assert_eq!(scrape.status, 200);
/// let headers: Vec<_> = scrape.headers().collect();
/// assert!(headers.contains(&("Vary", "Accept, Accept-Encoding")));
/// assert!(headers.contains(&(
///     "Content-Type",
///     "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores"
/// )));
/// assert!(scrape.body.ends_with(b"# EOF\n"));
/// assert_eq!(scrape.content_length, scrape.body.len());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scrape<'b> {
    /// 200, or 405 for a method other than `GET` and `HEAD`.
    pub status: u16,
    /// The negotiated format and escaping (also for a 405, whose body is plain text).
    pub negotiated: Negotiated,
    /// The content coding of the body.
    pub coding: ContentCoding,
    /// The body's length as a `GET` gets it: the `Content-Length` to send, for a
    /// `HEAD` too (whose `body` is empty).
    pub content_length: usize,
    /// The bytes to send: empty for `HEAD`.
    pub body: &'b [u8],
}

impl Scrape<'_> {
    /// The headers to send besides `Content-Length` (which is
    /// [`Scrape::content_length`]): `Content-Type`, `Vary`, `Content-Encoding` when
    /// the body is gzipped, `Allow` with a 405.
    pub fn headers(&self) -> impl Iterator<Item = (&'static str, &'static str)> + use<> {
        let allowed = self.status != 405;
        let content_type = if allowed {
            self.negotiated.content_type()
        } else {
            "text/plain; charset=utf-8"
        };
        [
            Some(("Content-Type", content_type)),
            Some(("Vary", VARY)),
            self.coding.header_value().map(|c| ("Content-Encoding", c)),
            (!allowed).then_some(("Allow", "GET, HEAD")),
        ]
        .into_iter()
        .flatten()
    }

    /// Whether the response is a rendered scrape (not a 405).
    pub fn is_scrape(&self) -> bool {
        self.status == 200
    }

    /// The format of a rendered scrape.
    pub fn format(&self) -> Format {
        self.negotiated.format
    }
}

/// Answers scrapes of one registry, as the built-in `/metrics` route does: use it to
/// serve metrics from any web framework.
///
/// ```
/// use std::sync::Arc;
/// use tinyprom::exposition::{ScrapeBuffers, ScrapeRequest, Scraper};
/// use tinyprom::metrics::{Gauge, Registry};
///
/// let registry = Arc::new(Registry::new());
/// registry.register("queue_length", "Jobs waiting.", Gauge::new()).unwrap();
/// registry.register("workers", "Workers.", Gauge::new()).unwrap();
/// let scraper = Scraper::new(Arc::clone(&registry));
/// let mut buffers = ScrapeBuffers::default();
///
/// // `GET /metrics?name[]=workers` with gzip, as a framework hands it over.
/// let request = ScrapeRequest::from_target("GET", "/metrics?name[]=workers", None, Some("gzip"));
/// let scrape = scraper.scrape(&request, &mut buffers);
/// assert!(scrape.headers().any(|h| h == ("Content-Encoding", "gzip")));
///
/// // HEAD: the same headers, no body.
/// let head = ScrapeRequest::from_target("HEAD", "/metrics", None, None);
/// let scrape = scraper.scrape(&head, &mut buffers);
/// assert!(scrape.body.is_empty() && scrape.content_length > 0);
///
/// // Anything else: 405 with `Allow`.
/// let post = ScrapeRequest::from_target("POST", "/metrics", None, None);
/// assert_eq!(scraper.scrape(&post, &mut buffers).status, 405);
/// ```
pub struct Scraper {
    registry: Arc<Registry>,
    gzip: GzipPool,
    /// Called before each rendering (see [`Scraper::on_scrape`]).
    on_scrape: Option<Box<dyn Fn(Format) + Send + Sync>>,
}

impl Scraper {
    /// A scraper of `registry`.
    pub fn new(registry: Arc<Registry>) -> Scraper {
        Scraper {
            registry,
            gzip: GzipPool::default(),
            on_scrape: None,
        }
    }

    /// Calls `hook` with the format of every scrape about to be rendered (not for a
    /// 405), before rendering, so a scrape counter it increments counts the scrape
    /// that shows it.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use tinyprom::exposition::{ScrapeBuffers, ScrapeRequest, Scraper};
    /// use tinyprom::metrics::{Counter, Registry};
    /// let registry = Arc::new(Registry::new());
    /// let scrapes = Counter::new();
    /// registry.register("scrapes_total", "Scrapes.", scrapes.clone()).unwrap();
    /// let scraper = Scraper::new(registry).on_scrape(move |_format| scrapes.inc());
    /// let get = ScrapeRequest { method: "GET", ..ScrapeRequest::default() };
    /// let mut buffers = ScrapeBuffers::default();
    /// let scrape = scraper.scrape(&get, &mut buffers);
    /// assert!(scrape.body.ends_with(b"scrapes_total 1\n"));
    /// ```
    pub fn on_scrape(mut self, hook: impl Fn(Format) + Send + Sync + 'static) -> Self {
        self.on_scrape = Some(Box::new(hook));
        self
    }

    /// The registry it renders.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Answers one scrape, rendering (and compressing) into `buffers`.
    pub fn scrape<'b>(
        &self,
        request: &ScrapeRequest<'_>,
        buffers: &'b mut ScrapeBuffers,
    ) -> Scrape<'b> {
        let negotiated = negotiate_escaping(request.accept);
        let head = request.method == "HEAD";
        if !head && request.method != "GET" {
            const REFUSAL: &[u8] = b"405 method not allowed\n";
            return Scrape {
                status: 405,
                negotiated,
                coding: ContentCoding::Identity,
                content_length: REFUSAL.len(),
                body: REFUSAL,
            };
        }
        if let Some(hook) = &self.on_scrape {
            hook(negotiated.format);
        }
        let filter = request.query.and_then(NameFilter::from_query);
        buffers.rendered.clear();
        self.registry.encode_scrape(
            &mut buffers.rendered,
            negotiated.format,
            negotiated.escaping,
            filter.as_ref(),
        );
        let coding = content_coding::choose(request.accept_encoding);
        let body: &'b [u8] = match coding {
            ContentCoding::Identity => &buffers.rendered,
            ContentCoding::Gzip => {
                self.gzip
                    .compress(&buffers.rendered, &mut buffers.compressed);
                &buffers.compressed
            }
        };
        Scrape {
            status: 200,
            negotiated,
            coding,
            content_length: body.len(),
            body: if head { &[] } else { body },
        }
    }
}

/// The gzip compressors a scraper's callers share: a compressed scrape takes one (or
/// makes one when none is free) and puts it back, so there are as many as scrapes were
/// ever compressed at the same time (one, with one scraper; never more than the
/// threads answering), not one per thread whether or not it ever compresses. Each
/// holds 128 KiB of match tables; the lock is held to take or return one, never while
/// compressing.
#[derive(Default)]
struct GzipPool(Mutex<Vec<Gzip>>);

impl GzipPool {
    /// Compresses `input` into `out` (cleared first) with a compressor of the pool.
    fn compress(&self, input: &[u8], out: &mut Vec<u8>) {
        // A panic elsewhere cannot leave the list half-changed: take the guard anyway.
        let taken = self.0.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut gzip = taken.unwrap_or_default();
        out.clear();
        gzip.compress(input, out);
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(gzip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::Escaping;
    use crate::metrics::{Counter, Family, Gauge, Histogram};

    fn registry() -> Arc<Registry> {
        let r = Arc::new(Registry::new());
        r.register("jobs_total", "Jobs.", Counter::new()).unwrap();
        r.register(
            "lat_seconds",
            "Latency.",
            Histogram::new(&[0.1, 1.0]).unwrap(),
        )
        .unwrap();
        r.register("up", "Up.", Gauge::new()).unwrap();
        r
    }

    fn text(scraper: &Scraper, accept: Option<&str>, target: &str) -> (u16, String) {
        let mut buffers = ScrapeBuffers::default();
        let request = ScrapeRequest::from_target("GET", target, accept, None);
        let s = scraper.scrape(&request, &mut buffers);
        (s.status, String::from_utf8_lossy(s.body).into_owned())
    }

    #[test]
    fn vary_and_content_type_on_every_answer() {
        let scraper = Scraper::new(registry());
        let mut buffers = ScrapeBuffers::default();
        for method in ["GET", "HEAD", "POST", "DELETE"] {
            for encoding in [None, Some("gzip")] {
                let request = ScrapeRequest::from_target(method, "/metrics", None, encoding);
                let s = scraper.scrape(&request, &mut buffers);
                let headers: Vec<_> = s.headers().collect();
                assert!(
                    headers.contains(&("Vary", "Accept, Accept-Encoding")),
                    "{method}"
                );
                assert_eq!(headers.iter().filter(|h| h.0 == "Content-Type").count(), 1);
                assert_eq!(
                    s.status,
                    if method.len() <= 4 && method != "POST" {
                        200
                    } else {
                        405
                    }
                );
            }
        }
    }

    #[test]
    fn head_is_get_without_a_body() {
        let scraper = Scraper::new(registry());
        let mut buffers = ScrapeBuffers::default();
        for encoding in [None, Some("gzip")] {
            let get = scraper.scrape(
                &ScrapeRequest::from_target("GET", "/m", None, encoding),
                &mut buffers,
            );
            let (get_len, get_headers) = (get.content_length, get.headers().collect::<Vec<_>>());
            assert_eq!(get_len, get.body.len());
            let head = scraper.scrape(
                &ScrapeRequest::from_target("HEAD", "/m", None, encoding),
                &mut buffers,
            );
            assert!(head.body.is_empty());
            assert_eq!(head.content_length, get_len);
            assert_eq!(head.headers().collect::<Vec<_>>(), get_headers);
        }
    }

    #[test]
    fn refused_methods_get_405_with_allow() {
        let scraper = Scraper::new(registry());
        let mut buffers = ScrapeBuffers::default();
        let s = scraper.scrape(
            &ScrapeRequest::from_target("PUT", "/m", None, Some("gzip")),
            &mut buffers,
        );
        assert_eq!(s.status, 405);
        assert!(!s.is_scrape());
        assert_eq!(s.body, b"405 method not allowed\n");
        assert!(s.headers().any(|h| h == ("Allow", "GET, HEAD")));
        assert!(!s.headers().any(|h| h.0 == "Content-Encoding"));
    }

    #[test]
    fn name_filter_in_every_format() {
        let scraper = Scraper::new(registry());
        let (_, all) = text(&scraper, None, "/metrics");
        assert!(all.contains("jobs_total 0") && all.contains("up 0"));
        let (status, some) = text(&scraper, None, "/metrics?name[]=lat_seconds&name[]=up");
        assert_eq!(status, 200);
        assert!(some.contains("lat_seconds_bucket{le=\"0.1\"} 0\n"));
        assert!(some.contains("\nup 0\n") && !some.contains("jobs"));
        let (_, om) = text(
            &scraper,
            Some("application/openmetrics-text"),
            "/m?name[]=jobs",
        );
        assert_eq!(
            om,
            "# TYPE jobs counter\n# HELP jobs Jobs.\njobs_total 0\n# EOF\n"
        );
        let (status, none) = text(&scraper, None, "/metrics?name[]=nope");
        assert_eq!((status, none.as_str()), (200, ""));
        let (_, none) = text(
            &scraper,
            Some("application/openmetrics-text"),
            "/m?name[]=nope",
        );
        assert_eq!(none, "# EOF\n");
        let (_, bucket) = text(&scraper, None, "/metrics?name[]=lat_seconds_bucket");
        assert_eq!(bucket, "", "a histogram is asked for by its family name");
        let mut buffers = ScrapeBuffers::default();
        let proto = ScrapeRequest::from_target(
            "GET",
            "/metrics?name[]=up",
            Some(
                "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited",
            ),
            None,
        );
        let body = scraper.scrape(&proto, &mut buffers).body.to_vec();
        let reg = Registry::new();
        reg.register("up", "Up.", Gauge::new()).unwrap();
        assert_eq!(body, reg.render_bytes(Format::Protobuf));
    }

    #[test]
    fn utf8_names_per_escaping() {
        let r = Arc::new(Registry::new());
        let family: Family<Counter> = Family::new(&["service.name"]).unwrap();
        r.register("my.requests_total", "Requests.", family.clone())
            .unwrap();
        r.register("plain", "Plain.", Gauge::new()).unwrap();
        family.with_label_values(&["api"]).unwrap().inc();
        let scraper = Scraper::new(r);
        let accept = |format: &str, e: Escaping| format!("{format};escaping={}", e.name());
        let (_, utf8) = text(
            &scraper,
            Some(&accept("text/plain;version=0.0.4", Escaping::AllowUtf8)),
            "/",
        );
        assert_eq!(
            utf8,
            "# HELP \"my.requests_total\" Requests.\n# TYPE \"my.requests_total\" counter\n\
             {\"my.requests_total\",\"service.name\"=\"api\"} 1\n\
             # HELP plain Plain.\n# TYPE plain gauge\nplain 0\n"
        );
        let (_, om) = text(
            &scraper,
            Some(&accept("application/openmetrics-text", Escaping::AllowUtf8)),
            "/",
        );
        assert!(om.starts_with("# TYPE \"my.requests\" counter\n# HELP \"my.requests\" Requests.\n{\"my.requests_total\",\"service.name\"=\"api\"} 1\n"), "{om}");
        let (_, under) = text(&scraper, None, "/");
        assert!(
            under.contains(
                "# TYPE my_requests_total counter\nmy_requests_total{service_name=\"api\"} 1\n"
            ),
            "{under}"
        );
        let (_, dots) = text(&scraper, Some(&accept("text/plain", Escaping::Dots)), "/");
        assert!(
            dots.contains("\nmy_dot_requests__total{service_dot_name=\"api\"} 1\n"),
            "{dots}"
        );
        let (_, values) = text(&scraper, Some(&accept("text/plain", Escaping::Values)), "/");
        assert!(
            values.contains("\nU__my_2e_requests__total{U__service_2e_name=\"api\"} 1\n"),
            "{values}"
        );
        // Legacy names are the same under every scheme.
        for e in Escaping::ALL {
            let (_, t) = text(&scraper, Some(&accept("text/plain", e)), "/");
            assert!(
                t.ends_with("# HELP plain Plain.\n# TYPE plain gauge\nplain 0\n"),
                "{e:?}"
            );
        }
        // A filter names the family as registered.
        let (_, one) = text(&scraper, None, "/?name[]=my.requests_total");
        assert!(
            one.starts_with("# HELP my_requests_total") && !one.contains("plain"),
            "{one}"
        );
    }
}
