//! tinyprom's own metrics, apart from the RED histogram (`red`) and the gate's
//! connection metrics: scrapes by format, build info, restarts, panics, process.

use crate::exposition::Format;
use crate::metrics::{CallbackCounter, Counter, IndexedFamily, Info, MetricError, Registry};
use crate::process::ProcessCollector;

/// The metrics the request path updates (cheap to clone: counter handles).
#[derive(Clone)]
pub struct OwnMetrics {
    scrapes: IndexedFamily<Counter>,
    /// Indexed by `encoding`: identity, gzip.
    scrape_bytes: IndexedFamily<Counter>,
}

impl OwnMetrics {
    /// Registers them; `restarts` is the supervisor's count so far.
    pub fn register(
        registry: &Registry,
        restarts: u64,
        process_metrics: bool,
    ) -> Result<OwnMetrics, MetricError> {
        let scrapes: IndexedFamily<Counter> = IndexedFamily::new(
            &["format"],
            vec![
                [Format::Text, Format::OpenMetrics, Format::Protobuf]
                    .map(|f| f.name().to_string())
                    .into(),
            ],
            Counter::new,
        )?;
        registry.register(
            "tinyprom_scrapes_total",
            "Scrapes of the metrics endpoint, by the exposition format served.",
            scrapes.clone(),
        )?;
        let scrape_bytes: IndexedFamily<Counter> = IndexedFamily::new(
            &["encoding"],
            vec![vec!["identity".into(), "gzip".into()]],
            Counter::new,
        )?;
        registry.register(
            "tinyprom_scrape_bytes_total",
            "Body bytes of the metrics endpoint's responses, by the content coding sent.",
            scrape_bytes.clone(),
        )?;
        // An info family: `tinyprom_build_info{version=...} 1`, a gauge in text 0.0.4,
        // the info family `tinyprom_build` in OpenMetrics.
        registry.register(
            "tinyprom_build_info",
            "A metric with a constant 1 value labeled by the version of tinyprom.",
            Info::new(&[("version", crate::VERSION)])?,
        )?;
        if process_metrics {
            registry.register_collector(ProcessCollector::new())?;
        }
        let restarted = Counter::new();
        restarted.inc_by(restarts);
        registry.register(
            "tinyprom_restarts_total",
            "Restarts of the serving process by tinyprom's supervisor (counters of the other metrics start again from zero at each).",
            restarted,
        )?;
        registry.register(
            "tinyprom_panics_total",
            "Panics in this serving process (a panicking handler costs its request a 500).",
            CallbackCounter::new(|| super::bootstrap::panics() as f64),
        )?;
        Ok(OwnMetrics {
            scrapes,
            scrape_bytes,
        })
    }

    /// Counts a scrape served in `format`.
    pub fn scraped(&self, format: Format) {
        // The label values are listed in the enum's order.
        if let Some(c) = self.scrapes.get(&[format as usize]) {
            c.inc();
        }
    }

    /// Counts the body bytes of a scrape response, gzip-compressed or not.
    pub fn scrape_bytes(&self, gzip: bool, bytes: usize) {
        if let Some(c) = self.scrape_bytes.get(&[gzip as usize]) {
            c.inc_by(bytes as u64);
        }
    }
}
