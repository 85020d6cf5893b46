//! The `prometheus` crate (tikv's rust-prometheus): `HistogramVec` keyed by label
//! value strings, rendered by gathering into families then `TextEncoder`.

use prometheus::{Encoder, HistogramOpts, HistogramVec, Registry, TextEncoder};

use super::{BOUNDS, Call, HELP, NAME, Subject};

pub struct Tikv {
    registry: Registry,
    vec: HistogramVec,
    buf: Vec<u8>,
}

impl Subject for Tikv {
    const NAME: &'static str = "prometheus (tikv)";
    type Series = prometheus::Histogram;

    fn new() -> Self {
        let opts = HistogramOpts::new(NAME, HELP).buckets(BOUNDS.to_vec());
        let vec = HistogramVec::new(opts, &["method", "url", "code"]).expect("valid family");
        let registry = Registry::new();
        registry.register(Box::new(vec.clone())).expect("registers");
        Tikv {
            registry,
            vec,
            buf: Vec::new(),
        }
    }

    #[inline]
    fn observe_labeled(&self, call: &Call, v: f64) {
        self.vec
            .with_label_values(&[call.method, call.route, call.code_str])
            .observe(v);
    }

    fn series(&self, call: &Call) -> prometheus::Histogram {
        self.vec
            .with_label_values(&[call.method, call.route, call.code_str])
    }

    #[inline]
    fn observe(series: &prometheus::Histogram, v: f64) {
        series.observe(v);
    }

    fn render(&mut self) -> usize {
        self.buf.clear();
        let families = self.registry.gather();
        TextEncoder::new()
            .encode(&families, &mut self.buf)
            .expect("encodes");
        self.buf.len()
    }

    fn last_render(&self) -> String {
        String::from_utf8_lossy(&self.buf).into_owned()
    }
}
