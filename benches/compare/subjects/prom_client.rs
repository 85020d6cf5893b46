//! The `prometheus-client` crate: a `Family` keyed by a derived label-set struct,
//! rendered by its text encoder into a reused `String`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::{BOUNDS, Call, HELP, NAME, Subject};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Labels {
    method: &'static str,
    url: &'static str,
    code: u16,
}

fn make_histogram() -> Histogram {
    Histogram::new(BOUNDS)
}

type Histograms = Family<Labels, Histogram, fn() -> Histogram>;

pub struct PromClient {
    registry: Registry,
    family: Histograms,
    buf: String,
}

impl Subject for PromClient {
    const NAME: &'static str = "prometheus-client";
    type Series = Histogram;

    fn new() -> Self {
        let family: Histograms = Family::new_with_constructor(make_histogram);
        let mut registry = Registry::default();
        registry.register(NAME, HELP, family.clone());
        PromClient {
            registry,
            family,
            buf: String::new(),
        }
    }

    #[inline]
    fn observe_labeled(&self, call: &Call, v: f64) {
        self.family
            .get_or_create(&Labels {
                method: call.method,
                url: call.route,
                code: call.code,
            })
            .observe(v);
    }

    fn series(&self, call: &Call) -> Histogram {
        self.family
            .get_or_create(&Labels {
                method: call.method,
                url: call.route,
                code: call.code,
            })
            .clone()
    }

    #[inline]
    fn observe(series: &Histogram, v: f64) {
        series.observe(v);
    }

    fn render(&mut self) -> usize {
        self.buf.clear();
        encode(&mut self.buf, &self.registry).expect("encodes");
        self.buf.len()
    }

    fn last_render(&self) -> String {
        self.buf.clone()
    }
}
