//! tinyprom through [`Family`], keyed by label value strings (a binary search over
//! the series), for programs whose label values are not known up front.

use tinyprom::exposition::Format;
use tinyprom::metrics::{Buckets, Family, Histogram, Registry};

use super::{BOUNDS, Call, HELP, NAME, Subject};

pub struct TinypromFamily {
    registry: Registry,
    family: Family<Histogram>,
    buf: Vec<u8>,
}

impl Subject for TinypromFamily {
    const NAME: &'static str = "tinyprom Family";
    type Series = Histogram;

    fn new() -> Self {
        let buckets = Buckets::new(&BOUNDS).expect("valid bounds");
        let family = Family::with_constructor(&["method", "url", "code"], move || {
            Histogram::with_buckets(buckets.clone())
        })
        .expect("valid family");
        let registry = Registry::new();
        registry
            .register(NAME, HELP, family.clone())
            .expect("registers");
        TinypromFamily {
            registry,
            family,
            buf: Vec::new(),
        }
    }

    #[inline]
    fn observe_labeled(&self, call: &Call, v: f64) {
        if let Ok(h) = self
            .family
            .with_label_values(&[call.method, call.route, call.code_str])
        {
            h.observe(v);
        }
    }

    fn series(&self, call: &Call) -> Histogram {
        self.family
            .with_label_values(&[call.method, call.route, call.code_str])
            .expect("room for the series")
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
