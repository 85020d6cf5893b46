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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The status code (100–599; anything else is sent as 500).
    pub status: u16,
    /// The `Content-Type` header.
    pub content_type: String,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    /// A `text/plain` reply.
    pub fn text(status: u16, body: impl Into<String>) -> Reply {
        Reply {
            status,
            content_type: "text/plain; charset=utf-8".into(),
            body: body.into().into_bytes(),
        }
    }
}

/// A handler for a custom route; called on a worker thread, so it must not block for
/// long (see the server documentation).
pub type Handler = Arc<dyn Fn(&tiny_http::Request) -> Reply + Send + Sync>;

/// What a route does.
#[derive(Clone)]
pub enum Endpoint {
    /// Liveness: `I am running!`.
    Up,
    /// Random delay and status, for RED data.
    Synthetic,
    /// The metrics scrape.
    Metrics,
    /// The landing page at `/`: HTML for browsers, a plain-text index otherwise.
    Landing,
    /// A handler added by an embedding program.
    Custom(Handler),
}

/// The routes a server answers, in the order their `url` label values are indexed.
#[derive(Clone)]
pub struct Router {
    routes: Vec<(String, Endpoint)>,
}

impl Router {
    /// The built-in routes, with the metrics endpoint at `telemetry_path` and the
    /// landing page at `/` (unless the metrics are served there).
    pub fn new(telemetry_path: &str) -> Router {
        let mut router = Router {
            routes: vec![
                ("/up".into(), Endpoint::Up),
                ("/synthetic".into(), Endpoint::Synthetic),
                (telemetry_path.into(), Endpoint::Metrics),
            ],
        };
        if telemetry_path != "/" {
            router.add("/", Endpoint::Landing);
        }
        router
    }

    /// Adds (or replaces) a route.
    pub fn add(&mut self, path: &str, endpoint: Endpoint) {
        match self.routes.iter_mut().find(|(p, _)| p == path) {
            Some(route) => route.1 = endpoint,
            None => self.routes.push((path.into(), endpoint)),
        }
    }

    /// The `url` label values: every route path, then [`UNMATCHED_ROUTE`].
    pub fn label_values(&self) -> Vec<String> {
        self.routes
            .iter()
            .map(|(p, _)| p.clone())
            .chain([UNMATCHED_ROUTE.to_string()])
            .collect()
    }

    /// The route index for a request target (query string and fragment ignored), or
    /// the unmatched index ([`Router::unmatched`]).
    pub fn find(&self, target: &str) -> usize {
        let path = target.split(['?', '#']).next().unwrap_or("");
        self.routes
            .iter()
            .position(|(p, _)| p == path)
            .unwrap_or(self.routes.len())
    }

    /// The path of the metrics endpoint (what the landing page links to), or the
    /// default `/metrics` if a custom route has replaced it.
    pub fn telemetry_path(&self) -> &str {
        self.routes
            .iter()
            .find(|(_, e)| matches!(e, Endpoint::Metrics))
            .map_or("/metrics", |(p, _)| p)
    }

    /// The index used for unmatched paths.
    pub fn unmatched(&self) -> usize {
        self.routes.len()
    }

    /// The endpoint of a matched route index.
    pub fn endpoint(&self, index: usize) -> Option<&Endpoint> {
        self.routes.get(index).map(|(_, e)| e)
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
