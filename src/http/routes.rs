//! Routing: from a raw request to a bounded set of label values.
//!
//! Everything a client sends is unbounded (paths, methods); everything that becomes a
//! label must not be. So routing turns the method into one of ten values and the path
//! into the index of a registered route or one fixed "unmatched" value, before anything
//! is recorded. The raw path never reaches a metric.

use std::sync::Arc;

/// The `url` label value of every request whose path matches no route.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// HTTP methods as label values; anything non-standard is `OTHER`.
pub const METHODS: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "OTHER",
];

/// Index into [`METHODS`] of a tiny_http method.
pub fn method_index(method: &tiny_http::Method) -> usize {
    use tiny_http::Method as M;
    match method {
        M::Get => 0,
        M::Head => 1,
        M::Post => 2,
        M::Put => 3,
        M::Delete => 4,
        M::Connect => 5,
        M::Options => 6,
        M::Trace => 7,
        M::Patch => 8,
        M::NonStandard(_) => 9,
    }
}

/// What a custom route answers.
///
/// Header names and values are checked when they are set ([`Reply::header`]): a CR,
/// LF or other control character is an error, so no handler can be made to inject a
/// header or split a response, whatever it copies from a request.
///
/// ```
/// use tinyprom::http::Reply;
/// let created = Reply::text(201, "created\n").header("Location", "/jobs/7").unwrap();
/// assert_eq!(created.status, 201);
/// assert_eq!(created.content_type(), "text/plain; charset=utf-8");
/// assert_eq!(created.headers(), [("Location".to_string(), "/jobs/7".to_string())]);
/// let json = Reply::bytes(200, "application/json", b"{}".to_vec()).unwrap();
/// assert_eq!(json.body, b"{}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The status code (200–599; anything else is sent as 500, since an interim 1xx is
    /// no answer). A 204 or 304 is sent without the body, as HTTP requires.
    pub status: u16,
    content_type: String,
    headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// A header name or value [`Reply`] refuses (the name of the header in question).
///
/// ```
/// use tinyprom::http::{InvalidHeader, Reply};
/// let refused = Reply::text(200, "ok\n").header("X-Note", "a\r\nSet-Cookie: b");
/// assert_eq!(refused, Err(InvalidHeader("X-Note".to_string())));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidHeader(pub String);

impl std::fmt::Display for InvalidHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "invalid response header {:?}: names are tokens, values printable ASCII without CR or LF",
            self.0
        )
    }
}

impl std::error::Error for InvalidHeader {}

/// Whether `name` is an HTTP token and `value` holds only visible ASCII, spaces and tabs.
fn header_ok(name: &str, value: &str) -> bool {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    !name.is_empty()
        && name.bytes().all(token)
        && value
            .bytes()
            .all(|b| b == b'\t' || (0x20..=0x7e).contains(&b))
}

impl Reply {
    /// A `text/plain` reply.
    pub fn text(status: u16, body: impl Into<String>) -> Reply {
        Reply {
            status,
            content_type: "text/plain; charset=utf-8".into(),
            headers: Vec::new(),
            body: body.into().into_bytes(),
        }
    }

    /// A reply with this body and `Content-Type`.
    ///
    /// ```
    /// use tinyprom::http::Reply;
    /// let ok = Reply::bytes(200, "application/json", b"{}".to_vec()).unwrap();
    /// assert_eq!(ok.content_type(), "application/json");
    /// assert!(Reply::bytes(200, "text/html\r\nSet-Cookie: x=1", vec![]).is_err());
    /// ```
    pub fn bytes(status: u16, content_type: &str, body: Vec<u8>) -> Result<Reply, InvalidHeader> {
        if !header_ok("Content-Type", content_type) {
            return Err(InvalidHeader("Content-Type".into()));
        }
        Ok(Reply {
            status,
            content_type: content_type.into(),
            headers: Vec::new(),
            body,
        })
    }

    /// Adds a header; refuses names that are not tokens and values with control
    /// characters (CR and LF among them). The server decides the framing: a
    /// `Content-Length` is not sent (the body's own length is), nor are `Connection`,
    /// `Transfer-Encoding`, `Trailer` and `Upgrade`.
    ///
    /// ```
    /// use tinyprom::http::Reply;
    /// let r = Reply::text(200, "ok").header("Cache-Control", "no-store").unwrap();
    /// assert_eq!(r.headers(), [("Cache-Control".to_string(), "no-store".to_string())]);
    /// assert!(Reply::text(200, "ok").header("X", "a\r\nSet-Cookie: b").is_err());
    /// assert!(Reply::text(200, "ok").header("Bad Name", "v").is_err());
    /// ```
    pub fn header(mut self, name: &str, value: &str) -> Result<Reply, InvalidHeader> {
        if !header_ok(name, value) {
            return Err(InvalidHeader(name.into()));
        }
        self.headers.push((name.into(), value.into()));
        Ok(self)
    }

    /// The `Content-Type` header.
    pub fn content_type(&self) -> &str {
        &self.content_type
    }

    /// The extra headers, in the order added.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }
}

/// The address of the client that sent `request`, as the gate saw it.
///
/// tiny_http serves the gate over a private socket, so `request.remote_addr()` is
/// `None`; the gate passes the client's address in a header of its own after removing
/// any copy the client sent, so the value cannot be forged. It passes it on requests for
/// routes added with [`ServerBuilder::route`](super::ServerBuilder::route) (and
/// `route_with_body`), the ones whose handlers see the request.
pub fn peer_addr(request: &tiny_http::Request) -> Option<std::net::SocketAddr> {
    super::protocol::decode::peer(request)
}

/// A handler for a custom route; called on a worker thread, so it must not block for
/// long (see the server documentation). It gets the request mutably so that a route
/// declared with a body limit can read the body (`request.as_reader()`).
pub type Handler = Arc<dyn Fn(&mut tiny_http::Request) -> Reply + Send + Sync>;

/// The request headers the built-in routes' answers read (the scrape's negotiation,
/// the landing page's format, the exemplar's trace): a request for a built-in route
/// reaches tiny_http with these alone, so tiny_http parses nothing else.
pub const BUILT_IN_READS: [&str; 3] = ["accept", "accept-encoding", "traceparent"];

/// What a route does.
#[derive(Clone)]
pub enum Endpoint {
    /// Liveness: `I am running!`.
    Up,
    /// Random delay (held by the gate) and status, for RED data.
    Synthetic,
    /// The metrics scrape.
    Metrics,
    /// The landing page: HTML for browsers, a plain-text index otherwise.
    Landing,
    /// A handler added by an embedding program.
    Custom(Handler),
}

/// One entry of the route table.
#[derive(Clone)]
struct Route {
    path: String,
    endpoint: Endpoint,
    /// The largest request body accepted, in bytes (0 for the built-in endpoints).
    body_limit: u64,
}

/// The routes a server answers, in the order their `url` label values are indexed.
#[derive(Clone)]
pub struct Router {
    routes: Vec<Route>,
}

impl Router {
    /// The built-in routes, with the metrics endpoint at `telemetry_path` and the
    /// landing page at `/` (unless the metrics are served there).
    pub fn new(telemetry_path: &str) -> Router {
        let mut router = Router {
            routes: [
                ("/up", Endpoint::Up),
                ("/synthetic", Endpoint::Synthetic),
                (telemetry_path, Endpoint::Metrics),
            ]
            .into_iter()
            .map(|(path, endpoint)| Route {
                path: path.into(),
                endpoint,
                body_limit: 0,
            })
            .collect(),
        };
        // After the metrics endpoint, so the built-in routes keep their indices.
        if telemetry_path != "/" {
            router.add("/", Endpoint::Landing, 0);
        }
        router
    }

    /// Adds (or replaces) a route whose requests may carry a body of up to
    /// `body_limit` bytes (larger ones are refused with 413 by the gate).
    pub fn add(&mut self, path: &str, endpoint: Endpoint, body_limit: u64) {
        let route = Route {
            path: path.into(),
            endpoint,
            body_limit,
        };
        match self.routes.iter_mut().find(|r| r.path == path) {
            Some(existing) => *existing = route,
            None => self.routes.push(route),
        }
    }

    /// Whether a request for the route with index `route` may share a lane to tiny_http with other
    /// requests (see the gate's lanes): the built-in routes and unmatched targets
    /// (answered at once, never waiting for anything), but not the metrics scrape,
    /// whose time grows with the registry, nor an embedder's route.
    pub fn shares_lane(&self, route: usize) -> bool {
        !matches!(
            self.endpoint(route),
            Some(Endpoint::Metrics | Endpoint::Custom(_))
        )
    }

    /// Whether the route with index `route` is an embedder's (added with
    /// [`ServerBuilder::route`](super::ServerBuilder::route)): its handler sees the
    /// request, so the gate passes on every header and the client's address
    /// ([`peer_addr`]). A request for a built-in route carries only the headers its
    /// answer reads ([`BUILT_IN_READS`]).
    pub fn is_embedders(&self, route: usize) -> bool {
        matches!(self.endpoint(route), Some(Endpoint::Custom(_)))
    }

    /// How long the gate holds a request for the route with index `route` before
    /// passing it on: a random 1–50 ms for `/synthetic`, nothing for every other route.
    pub fn hold(&self, route: usize) -> Option<std::time::Duration> {
        match self.endpoint(route) {
            Some(Endpoint::Synthetic) => {
                Some(std::time::Duration::from_millis(fastrand::u64(1..=50)))
            }
            _ => None,
        }
    }

    /// The body limit of the route with index `route` (0 for the unmatched index).
    pub fn body_limit(&self, route: usize) -> u64 {
        self.routes.get(route).map_or(0, |r| r.body_limit)
    }

    /// The `url` label values: every route path, then [`UNMATCHED_ROUTE`].
    pub fn label_values(&self) -> Vec<String> {
        self.routes
            .iter()
            .map(|r| r.path.clone())
            .chain([UNMATCHED_ROUTE.to_string()])
            .collect()
    }

    /// The route index for a request target (query string and fragment ignored), or
    /// the unmatched index (one past the routes).
    pub fn find(&self, target: &str) -> usize {
        let path = target.split(['?', '#']).next().unwrap_or("");
        self.routes
            .iter()
            .position(|r| r.path == path)
            .unwrap_or(self.routes.len())
    }

    /// The path of the metrics endpoint (what the landing page links to), or the
    /// default `/metrics` if a custom route has replaced it.
    pub fn telemetry_path(&self) -> &str {
        self.routes
            .iter()
            .find(|r| matches!(r.endpoint, Endpoint::Metrics))
            .map_or("/metrics", |r| &r.path)
    }

    /// The index used for unmatched paths.
    pub fn unmatched(&self) -> usize {
        self.routes.len()
    }

    /// The endpoint of a matched route index.
    pub fn endpoint(&self, index: usize) -> Option<&Endpoint> {
        self.routes.get(index).map(|r| &r.endpoint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_bounded_indices() {
        let r = Router::new("/metrics");
        assert_eq!(r.find("/up"), 0);
        assert_eq!(r.find("/up?x=1"), 0);
        assert_eq!(r.find("/synthetic#frag"), 1);
        assert_eq!(r.find("/metrics"), 2);
        assert_eq!(r.find("/"), 3);
        assert_eq!(r.find("/?from=browser"), 3);
        for raw in ["", "/up/", "/UP", "//up", "http://x/up", "/random/123", "*"] {
            assert_eq!(r.find(raw), r.unmatched(), "{raw}");
        }
        assert_eq!(
            r.label_values(),
            ["/up", "/synthetic", "/metrics", "/", UNMATCHED_ROUTE]
        );
        let at_root = Router::new("/");
        assert!(matches!(
            at_root.endpoint(at_root.find("/")),
            Some(Endpoint::Metrics)
        ));
        assert_eq!(
            at_root.label_values(),
            ["/up", "/synthetic", "/", UNMATCHED_ROUTE]
        );
    }

    #[test]
    fn methods_are_normalised() {
        use tiny_http::Method;
        assert_eq!(METHODS[method_index(&Method::Get)], "GET");
        assert_eq!(METHODS[method_index(&Method::Patch)], "PATCH");
        let odd: Method = "BREW".parse().unwrap();
        assert_eq!(METHODS[method_index(&odd)], "OTHER");
    }
}
