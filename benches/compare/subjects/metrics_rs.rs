//! The `metrics` facade with `metrics-exporter-prometheus`'s recorder: the labeled path
//! builds a `Key` the way the `histogram!` macro does and asks the recorder for the
//! handle (skipping only the macro's lookup of the installed recorder). `NATIVE` makes
//! the histogram native (growth factor 2^(1/8), as schema 3; at most 160 buckets); this
//! exporter then keeps the native buckets instead of the classic ones, and only its
//! protobuf render shows them.

use metrics::{Key, Label, Level, Metadata, Recorder};
use metrics_exporter_prometheus::{
    Matcher, NativeHistogramConfig, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

use super::{BOUNDS, Call, HELP, NAME, ProtobufSubject, Subject};

static METADATA: Metadata<'static> = Metadata::new(module_path!(), Level::INFO, None);

pub struct MetricsRsWith<const NATIVE: bool> {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    last: String,
    protobuf: Vec<u8>,
}

/// Classic buckets.
pub type MetricsRs = MetricsRsWith<false>;
/// Native buckets.
pub type MetricsRsNative = MetricsRsWith<true>;

impl<const NATIVE: bool> ProtobufSubject for MetricsRsWith<NATIVE> {
    fn render_protobuf(&mut self) -> usize {
        self.protobuf = self.handle.render_protobuf();
        self.protobuf.len()
    }
}

fn key(call: &Call) -> Key {
    Key::from_parts(
        NAME,
        vec![
            Label::new("method", call.method),
            Label::new("url", call.route),
            Label::new("code", call.code_str),
        ],
    )
}

impl<const NATIVE: bool> Subject for MetricsRsWith<NATIVE> {
    const NAME: &'static str = if NATIVE {
        "metrics (native)"
    } else {
        "metrics"
    };
    type Series = metrics::Histogram;

    fn new() -> Self {
        let mut builder = PrometheusBuilder::new()
            .set_buckets(&BOUNDS)
            .expect("valid bounds");
        if NATIVE {
            let config = NativeHistogramConfig::new(2f64.powf(0.125), 160, 2f64.powi(-128))
                .expect("valid native config");
            builder = builder.set_native_histogram_for_metric(Matcher::Full(NAME.into()), config);
        }
        let recorder = builder.build_recorder();
        recorder.describe_histogram(NAME.into(), None, HELP.into());
        let handle = recorder.handle();
        MetricsRsWith {
            recorder,
            handle,
            last: String::new(),
            protobuf: Vec::new(),
        }
    }

    #[inline]
    fn observe_labeled(&self, call: &Call, v: f64) {
        self.recorder
            .register_histogram(&key(call), &METADATA)
            .record(v);
    }

    fn series(&self, call: &Call) -> metrics::Histogram {
        self.recorder.register_histogram(&key(call), &METADATA)
    }

    #[inline]
    fn observe(series: &metrics::Histogram, v: f64) {
        series.record(v);
    }

    fn render(&mut self) -> usize {
        self.last = self.handle.render();
        self.last.len()
    }

    fn last_render(&self) -> String {
        self.last.clone()
    }
}
