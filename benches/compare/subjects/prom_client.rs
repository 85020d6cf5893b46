//! The `prometheus-client` crate: a `Family` keyed by a derived label-set struct,
//! rendered by its text encoder into a reused `String`, or by its Prometheus protobuf
//! encoder. `NATIVE` adds native buckets (schema 3, at most 160 buckets, as tinyprom's
//! native rows) beside the classic ones.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::prometheus_protobuf::encode_to_vec;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, NativeHistogramConfig};
use prometheus_client::registry::Registry;

use super::{BOUNDS, Call, HELP, NAME, ProtobufSubject, Subject};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Labels {
    method: &'static str,
    url: &'static str,
    code: u16,
}

fn make_histogram() -> Histogram {
    Histogram::new(BOUNDS)
}

fn make_native_histogram() -> Histogram {
    Histogram::new_classic_and_native(
        BOUNDS,
        NativeHistogramConfig::with_schema(3).max_buckets(160),
    )
}

type Histograms = Family<Labels, Histogram, fn() -> Histogram>;

pub struct PromClientWith<const NATIVE: bool> {
    registry: Registry,
    family: Histograms,
    buf: String,
    protobuf: Vec<u8>,
}

/// Classic buckets only.
pub type PromClient = PromClientWith<false>;
/// Classic and native buckets.
pub type PromClientNative = PromClientWith<true>;

impl<const NATIVE: bool> ProtobufSubject for PromClientWith<NATIVE> {
    fn render_protobuf(&mut self) -> usize {
        self.protobuf = encode_to_vec(&self.registry).expect("encodes");
        self.protobuf.len()
    }
}

impl<const NATIVE: bool> Subject for PromClientWith<NATIVE> {
    const NAME: &'static str = if NATIVE {
        "prometheus-client (native)"
    } else {
        "prometheus-client"
    };
    type Series = Histogram;

    fn new() -> Self {
        let constructor: fn() -> Histogram = if NATIVE {
            make_native_histogram
        } else {
            make_histogram
        };
        let family: Histograms = Family::new_with_constructor(constructor);
        let mut registry = Registry::default();
        registry.register(NAME, HELP, family.clone());
        PromClientWith {
            registry,
            family,
            buf: String::new(),
            protobuf: Vec::new(),
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
