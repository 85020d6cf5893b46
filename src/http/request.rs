//! The request path inside tiny_http: a worker takes a vetted request, routes it,
//! answers, and records the RED metrics.
//!
//! Requests come only from the gate, already framed and checked, so nothing here
//! deals with hostile framing or bodies.
//! `/synthetic`'s delay was spent in the gate before the request got here (so a slow
//! endpoint never holds a worker); every request is timed from the moment the gate
//! had its head, which the gate passes along. Responses go into a private socket the
//! gate always reads, so a worker never waits on a client. `/metrics` renders into a
//! buffer each worker keeps, so a warm scrape allocates nothing for the body.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tiny_http::{Header, Request, Response, StatusCode};

use super::landing;
use super::own_metrics::OwnMetrics;
use super::protocol::decode;
use super::red::RedMetrics;
use super::routes::{Endpoint, Reply, Router, method_index};
use super::traceparent::TraceIds;
use crate::exposition::{ScrapeBuffers, ScrapeRequest, Scraper};

/// The status codes `/synthetic` draws from, uniformly.
pub const SYNTHETIC_CODES: [u16; 8] = [200, 200, 200, 200, 200, 400, 401, 500];

/// What the workers share. The shutdown flags are ordered as `super::server`
/// explains once.
pub struct Shared {
    /// The routes.
    pub router: Arc<Router>,
    /// `/metrics`: the registry, negotiation, the name filter and gzip, the same
    /// code an embedder's own framework calls.
    pub scraper: Scraper,
    /// The RED metrics.
    pub red: Arc<RedMetrics>,
    /// tinyprom's own metrics.
    pub own: OwnMetrics,
    /// Workers handling a request now.
    pub busy: AtomicUsize,
    /// Set once no new request can reach tiny_http.
    pub stopping: AtomicBool,
    /// Set when the workers are to exit.
    pub finished: AtomicBool,
    /// The turn to take requests from tiny_http's queue: see [`work`].
    pub turn: Mutex<()>,
}

/// A worker: takes requests until shutdown is finished. Returns tiny_http's error if
/// its accept loop died while the server was meant to be running.
///
/// One worker at a time has the turn: it alone waits on tiny_http's queue, and it
/// answers the requests of lane-sharing routes itself, one after the other. Those are
/// quick (`/synthetic`'s delay was spent in the gate), and they are the requests that
/// share a private connection, whose responses tiny_http writes in order: answered by
/// one thread, none waits for another's. Before it answers a request of a route that
/// travels alone (the scrape, an embedder's route), the worker hands the turn on, so a
/// slow handler holds only its own thread. tiny_http wakes a sleeping worker for
/// every request it queues; with one waiter, a request that arrives while the taker
/// is busy wakes nobody, and it takes the next request without sleeping.
pub fn work(http: &tiny_http::Server, shared: &Shared) -> Option<std::io::Error> {
    let mut buf = Buffers {
        rendered: Vec::with_capacity(16 * 1024),
        scrape: ScrapeBuffers::default(),
    };
    // SeqCst here and below: see the shutdown ordering in `super::server`.
    while !shared.finished.load(Ordering::SeqCst) {
        let turn = take_turn(shared);
        if let Some(e) = take_requests(http, shared, &mut buf, turn) {
            return Some(e);
        }
    }
    None
}

fn take_turn(shared: &Shared) -> MutexGuard<'_, ()> {
    // Handlers run under `catch_unwind`, so a poisoned turn carries no broken state.
    shared.turn.lock().unwrap_or_else(|p| p.into_inner())
}

/// Takes requests while this worker has the turn: until shutdown is finished, or
/// until it hands the turn on to answer a route that travels alone.
fn take_requests(
    http: &tiny_http::Server,
    shared: &Shared,
    buf: &mut Buffers,
    turn: MutexGuard<'_, ()>,
) -> Option<std::io::Error> {
    let mut turn = Some(turn);
    while !shared.finished.load(Ordering::SeqCst) {
        match http.recv_timeout(Duration::from_millis(10)) {
            Ok(Some(request)) => {
                let received = decode::received_at(&request);
                shared.busy.fetch_add(1, Ordering::SeqCst);
                let route = shared.router.find(request.url());
                let alone = !decode::is_probe(&request) && !shared.router.shares_lane(route);
                if alone {
                    turn.take();
                }
                // A panic here (a tiny_http assertion, a bug of ours) costs one
                // request (tiny_http answers a dropped request with 500), not the worker.
                let _ = catch_unwind(AssertUnwindSafe(|| {
                    handle(request, route, received, shared, buf)
                }));
                shared.busy.fetch_sub(1, Ordering::SeqCst);
                if alone {
                    return None;
                }
            }
            Ok(None) => {}
            // The accept loop ending is how shutdown closes the private listener.
            Err(_) if shared.stopping.load(Ordering::SeqCst) => {}
            Err(e) => return Some(e),
        }
    }
    None
}

/// The buffers a worker keeps across requests, so a warm scrape allocates nothing.
struct Buffers {
    /// A rendered page.
    rendered: Vec<u8>,
    /// A rendered scrape, and its gzip-compressed copy.
    scrape: ScrapeBuffers,
}

fn handle(
    mut request: Request,
    route: usize,
    received: Instant,
    shared: &Shared,
    buf: &mut Buffers,
) {
    if decode::is_probe(&request) {
        // The gate's probe of a new lane: not a client's request, so counted nowhere.
        let _ = request.respond(Response::empty(200));
        return;
    }
    shared.red.start();
    // Read before the request is answered (answering consumes it).
    let trace = header(&request, "traceparent").and_then(TraceIds::parse);
    let method = method_index(request.method());
    let get_or_head = method <= 1;
    let code = match shared.router.endpoint(route) {
        None => respond_text(request, 404, "404 page not found\n"),
        Some(Endpoint::Custom(handler)) => {
            let reply = catch_unwind(AssertUnwindSafe(|| handler(&mut request)))
                .unwrap_or_else(|_| Reply::text(500, "500 handler panicked\n"));
            respond_reply(request, &reply)
        }
        Some(Endpoint::Metrics) => {
            let scrape = ScrapeRequest::from_target(
                request.method().as_str(),
                request.url(),
                header(&request, "Accept"),
                header(&request, "Accept-Encoding"),
            );
            let scrape = shared.scraper.scrape(&scrape, &mut buf.scrape);
            if scrape.is_scrape() {
                shared
                    .own
                    .scrape_bytes(scrape.coding.header_value().is_some(), scrape.body.len());
            }
            let headers: Vec<(&str, &str)> = scrape.headers().collect();
            let (content_type, extra) = headers.split_first().expect("a Content-Type");
            respond_sized(
                request,
                scrape.status,
                content_type.1,
                scrape.body,
                scrape.content_length,
                extra,
            )
        }
        Some(_) if !get_or_head => respond(
            request,
            405,
            "text/plain; charset=utf-8",
            b"405 method not allowed\n",
            &[("Allow", "GET, HEAD")],
        ),
        Some(Endpoint::Up) => respond_text(request, 200, "I am running!"),
        Some(Endpoint::Landing) => {
            let totals = shared.red.route_totals();
            let accept = header(&request, "Accept");
            let rendered = &mut buf.rendered;
            let content_type =
                landing::render(accept, shared.router.telemetry_path(), &totals, rendered);
            // HTML or text by `Accept`: a shared cache must not hand one to the other.
            respond(request, 200, content_type, rendered, &[("Vary", "Accept")])
        }
        Some(Endpoint::Synthetic) => {
            let code = SYNTHETIC_CODES[fastrand::usize(..SYNTHETIC_CODES.len())];
            respond_text(request, code, &code.to_string())
        }
    };
    shared
        .red
        .finish(method, route, code, received.elapsed(), trace.as_ref());
}

fn header<'r>(request: &'r Request, name: &'static str) -> Option<&'r str> {
    request
        .headers()
        .iter()
        .find(|h| h.field.equiv(name))
        .map(|h| h.value.as_str())
}

fn respond_text(request: Request, code: u16, body: &str) -> u16 {
    // RFC 9110 section 15.5.2: a 401 carries a challenge.
    let extra: &[(&str, &str)] = if code == 401 {
        &[("WWW-Authenticate", "Basic realm=\"synthetic\"")]
    } else {
        &[]
    };
    respond(
        request,
        code,
        "text/plain; charset=utf-8",
        body.as_bytes(),
        extra,
    )
}

fn respond_reply(request: Request, reply: &Reply) -> u16 {
    // A 1xx is an interim response, never the answer (tiny_http would send it without
    // a body and the client would wait for one that never comes).
    let status = if (200..=599).contains(&reply.status) {
        reply.status
    } else {
        500
    };
    // RFC 9110 sections 15.3.5 and 15.4.5: no content follows a 204 or a 304.
    let body: &[u8] = if status == 204 || status == 304 {
        b""
    } else {
        &reply.body
    };
    // tiny_http would take a handler's `Content-Length` as the body's length: one that
    // disagrees with the body desynchronises the private connection, so the length
    // sent is always the body's.
    let extra: Vec<(&str, &str)> = reply
        .headers()
        .iter()
        .filter(|(n, _)| !n.eq_ignore_ascii_case("content-length"))
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    respond(request, status, reply.content_type(), body, &extra)
}

/// Writes a response and returns its status code. Every header here is either ours or
/// checked by [`Reply`]. A client that went away is not an error worth more than that.
fn respond(
    request: Request,
    code: u16,
    content_type: &str,
    body: &[u8],
    extra: &[(&str, &str)],
) -> u16 {
    respond_sized(request, code, content_type, body, body.len(), extra)
}

/// [`respond`] with the `Content-Length` given: a `HEAD` scrape's body is empty but
/// its length is the one a `GET` gets (tiny_http sends no body for `HEAD`).
fn respond_sized(
    request: Request,
    code: u16,
    content_type: &str,
    body: &[u8],
    content_length: usize,
    extra: &[(&str, &str)],
) -> u16 {
    let mut headers = Vec::with_capacity(1 + extra.len());
    for (name, value) in [("Content-Type", content_type)].iter().chain(extra) {
        if let Ok(h) = Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            headers.push(h);
        }
    }
    // The gate reads responses framed by `Content-Length` only: with the length known
    // and no threshold, tiny_http never chunks an HTTP/1.1 answer.
    let response = Response::new(StatusCode(code), headers, body, Some(content_length), None)
        .with_chunked_threshold(usize::MAX);
    let _ = request.respond(response);
    code
}
