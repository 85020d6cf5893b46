//! Section 6 (feature `metrics-facade`): the same `metrics` macro calls recorded by
//! metrics-exporter-prometheus and by tinyprom's facade recorder, for a labeled
//! observe and for a scrape's render.
//!
//! Both recorders get exactly the same code: the macro call runs inside
//! `metrics::with_local_recorder`, so only the recorder differs. Two forms of the
//! labeled observe are measured: label values written as literals (the macro then
//! builds its key once, in a static, as in `counter!("work_total", "kind" => "demo")`)
//! and label values known only at run time (the macro builds the key on every call:
//! a vector of labels and its hash).

use std::hint::black_box;

use metrics::Recorder;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};
use tinyprom::exposition::Format;
use tinyprom::facade::FacadeRecorder;
use tinyprom::metrics::Registry;

use crate::subjects::{BOUNDS, Call, traffic};
use crate::timing::{Plan, Stats, per_iteration};
use crate::value;

/// The recorders, in table order.
pub const RECORDERS: [&str; 2] = ["tinyprom facade", "metrics-exporter-prometheus"];

fn exporter() -> PrometheusRecorder {
    PrometheusBuilder::new()
        .set_buckets(&BOUNDS)
        .expect("valid bounds")
        .build_recorder()
}

fn tinyprom() -> FacadeRecorder {
    FacadeRecorder::builder(std::sync::Arc::new(Registry::new()))
        .buckets(&BOUNDS)
        .build()
        .expect("valid bounds")
}

/// One labeled observation of `v` through the macro, for the `i`-th of the eight
/// label sets of `traffic()`, each written as literals.
#[inline(always)]
fn observe_literal(i: u64, v: f64) {
    match i & 7 {
        0 => metrics::histogram!("http_request_duration_seconds", "method" => "GET", "url" => "/route/0", "code" => "200").record(v),
        1 => metrics::histogram!("http_request_duration_seconds", "method" => "GET", "url" => "/route/1", "code" => "200").record(v),
        2 => metrics::histogram!("http_request_duration_seconds", "method" => "POST", "url" => "/route/2", "code" => "201").record(v),
        3 => metrics::histogram!("http_request_duration_seconds", "method" => "GET", "url" => "/route/0", "code" => "304").record(v),
        4 => metrics::histogram!("http_request_duration_seconds", "method" => "GET", "url" => "/route/3", "code" => "404").record(v),
        5 => metrics::histogram!("http_request_duration_seconds", "method" => "HEAD", "url" => "/route/0", "code" => "200").record(v),
        6 => metrics::histogram!("http_request_duration_seconds", "method" => "GET", "url" => "/route/4", "code" => "500").record(v),
        _ => metrics::histogram!("http_request_duration_seconds", "method" => "DELETE", "url" => "/route/2", "code" => "204").record(v),
    }
}

/// The same with the label values taken from a `Call` at run time.
#[inline(always)]
fn observe_runtime(call: &Call, v: f64) {
    metrics::histogram!("http_request_duration_seconds", "method" => call.method, "url" => call.route, "code" => call.code_str).record(v);
}

fn labeled(recorder: &dyn Recorder, plan: Plan, literal: bool) -> Stats {
    let calls = traffic();
    metrics::with_local_recorder(recorder, || {
        // The series are created by the form measured, as a call site creates its own.
        for (i, call) in calls.iter().enumerate() {
            if literal {
                observe_literal(i as u64, 0.1);
            } else {
                observe_runtime(call, 0.1);
            }
        }
        per_iteration(plan, |n| {
            if literal {
                for i in 0..n {
                    observe_literal(black_box(i), black_box(value(i)));
                }
            } else {
                for i in 0..n {
                    observe_runtime(black_box(&calls[(i & 7) as usize]), black_box(value(i)));
                }
            }
        })
    })
}

/// A child's measurement: `facade/observe-{literal,runtime}/{tinyprom,exporter}`.
pub fn child(key: &str, plan: Plan) -> Stats {
    let literal = key.contains("/observe-literal/");
    if key.ends_with("/tinyprom") {
        labeled(&tinyprom(), plan, literal)
    } else {
        labeled(&exporter(), plan, literal)
    }
}

/// One render of `series` series recorded through the macro, per recorder: the time
/// per scrape and the scrape's size.
pub fn render(plan: Plan, series: usize) -> [(Stats, usize); 2] {
    let facade = tinyprom();
    let exporter = exporter();
    let handle = exporter.handle();
    for recorder in [&facade as &dyn Recorder, &exporter] {
        metrics::with_local_recorder(recorder, || {
            for i in 0..series {
                observe_runtime(&Call::nth(i), value(i as u64) * (1.0 + i as f64 / 7.0));
            }
        });
    }
    // Into a reused buffer, as tinyprom's server renders.
    let mut buf = Vec::new();
    let registry = facade.registry();
    registry.encode(&mut buf, Format::Text);
    let tinyprom_bytes = buf.len();
    crate::check_render(RECORDERS[0], &String::from_utf8_lossy(&buf), series);
    let exporter_text = handle.render();
    crate::check_render(RECORDERS[1], &exporter_text, series);
    let tinyprom_stats = per_iteration(plan, |n| {
        for _ in 0..n {
            buf.clear();
            registry.encode(&mut buf, Format::Text);
            black_box(buf.len());
        }
    });
    let exporter_stats = per_iteration(plan, |n| {
        for _ in 0..n {
            black_box(handle.render());
        }
    });
    [
        (tinyprom_stats, tinyprom_bytes),
        (exporter_stats, exporter_text.len()),
    ]
}
