//! tinyprom through [`IndexedFamily`], the path its HTTP server takes: method, route
//! and status code are positions, so the series is found by arithmetic. `NATIVE`
//! adds native buckets (schema 3) beside the classic ones, as the server's own
//! histogram has them.

use tinyprom::exposition::Format;
use tinyprom::metrics::{Buckets, Histogram, IndexedFamily, NativeOptions, Registry};

use super::{
    BOUNDS, Call, FIRST_CODE, HELP, METHODS, NAME, ProtobufSubject, Subject, codes, routes,
};

pub struct TinypromWith<const NATIVE: bool> {
    registry: Registry,
    family: IndexedFamily<Histogram>,
    buf: Vec<u8>,
}

/// Classic buckets only.
pub type Tinyprom = TinypromWith<false>;
/// Classic and native buckets.
pub type TinypromNative = TinypromWith<true>;

impl<const NATIVE: bool> ProtobufSubject for TinypromWith<NATIVE> {
    fn render_protobuf(&mut self) -> usize {
        self.buf.clear();
        self.registry.encode(&mut self.buf, Format::Protobuf);
        self.buf.len()
    }
}

/// The ids of a sampled trace, as the server records them for a traced request.
pub const TRACE_LABELS: [(&str, &str); 2] = [
    ("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736"),
    ("span_id", "00f067aa0ba902b7"),
];

impl<const NATIVE: bool> TinypromWith<NATIVE> {
    /// [`Subject::observe_labeled`] with [`TRACE_LABELS`] as the exemplar: the server's
    /// path for a request in a sampled trace.
    #[inline]
    pub fn observe_labeled_with_exemplar(&self, call: &Call, v: f64) {
        let index = [
            call.method_index,
            call.route_index,
            usize::from(call.code - FIRST_CODE),
        ];
        if let Some(h) = self.family.get(&index) {
            let _ = h.observe_with_exemplar(v, &TRACE_LABELS);
        }
    }
}

impl<const NATIVE: bool> Subject for TinypromWith<NATIVE> {
    const NAME: &'static str = if NATIVE {
        "tinyprom (native)"
    } else {
        "tinyprom"
    };
    type Series = Histogram;

    fn new() -> Self {
        let buckets = if NATIVE {
            Buckets::with_native(&BOUNDS, NativeOptions::new())
        } else {
            Buckets::new(&BOUNDS)
        }
        .expect("valid bounds");
        let values = vec![
            METHODS.iter().map(|m| m.to_string()).collect(),
            routes().iter().map(|r| r.to_string()).collect(),
            codes().iter().map(|c| c.to_string()).collect(),
        ];
        let family = IndexedFamily::new(&["method", "url", "code"], values, move || {
            Histogram::with_buckets(buckets.clone())
        })
        .expect("valid family");
        let registry = Registry::new();
        registry
            .register(NAME, HELP, family.clone())
            .expect("registers");
        TinypromWith {
            registry,
            family,
            buf: Vec::new(),
        }
    }

    #[inline]
    fn observe_labeled(&self, call: &Call, v: f64) {
        let index = [
            call.method_index,
            call.route_index,
            usize::from(call.code - FIRST_CODE),
        ];
        if let Some(h) = self.family.get(&index) {
            h.observe(v);
        }
    }

    fn series(&self, call: &Call) -> Histogram {
        let index = [
            call.method_index,
            call.route_index,
            usize::from(call.code - FIRST_CODE),
        ];
        self.family.get(&index).expect("index in range").clone()
    }

    #[inline]
    fn observe(series: &Histogram, v: f64) {
        series.observe(v);
    }

    fn render(&mut self) -> usize {
        self.buf.clear();
        self.registry.encode(&mut self.buf, Format::Text);
        self.buf.len()
    }

    fn last_render(&self) -> String {
        String::from_utf8_lossy(&self.buf).into_owned()
    }
}
