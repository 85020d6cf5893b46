//! The `metrics` facade with `metrics-exporter-prometheus`'s recorder: the labeled path
//! builds a `Key` the way the `histogram!` macro does and asks the recorder for the
//! handle (skipping only the macro's lookup of the installed recorder).

use metrics::{Key, Label, Level, Metadata, Recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

use super::{BOUNDS, Call, HELP, NAME, Subject};

static METADATA: Metadata<'static> = Metadata::new(module_path!(), Level::INFO, None);

pub struct MetricsRs {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    last: String,
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

impl Subject for MetricsRs {
    const NAME: &'static str = "metrics";
    type Series = metrics::Histogram;

    fn new() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&BOUNDS)
            .expect("valid bounds")
            .build_recorder();
        recorder.describe_histogram(NAME.into(), None, HELP.into());
        let handle = recorder.handle();
        MetricsRs {
            recorder,
            handle,
            last: String::new(),
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
