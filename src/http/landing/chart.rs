//! The latency distribution as an inline SVG bar chart: one bar per bucket of the
//! request histogram (not cumulative), drawn by the server so the page needs no script.
//!
//! Its size is fixed by the number of buckets: every figure written is a number, every
//! label comes from a fixed table.

use std::io::Write;

/// Chart geometry, in SVG user units (the page scales it to its width).
const WIDTH: u64 = 560;
const HEIGHT: u64 = 220;
const PLOT_TOP: u64 = 24;
const PLOT_BOTTOM: u64 = 180;
const BAR_GAP: u64 = 16;

/// Writes the chart of per-bucket `counts` (one per bucket, `+Inf` last) labelled by
/// `labels` (one per bucket) and identified by `les` (the bucket's `le`).
pub fn write(buf: &mut Vec<u8>, counts: &[u64], labels: &[&str], les: &[&str]) {
    let max = counts.iter().copied().max().unwrap_or(0).max(1);
    let bars = counts.len().max(1) as u64;
    let slot = (WIDTH - BAR_GAP) / bars;
    let plot = PLOT_BOTTOM - PLOT_TOP;
    let _ = write!(
        buf,
        "<svg id=\"latency-chart\" role=\"img\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" \
         xmlns=\"http://www.w3.org/2000/svg\" aria-label=\"Requests per latency bucket\">\
         <line x1=\"0\" y1=\"{PLOT_BOTTOM}\" x2=\"{WIDTH}\" y2=\"{PLOT_BOTTOM}\" class=\"axis\"/>"
    );
    for (i, ((&count, label), le)) in counts.iter().zip(labels).zip(les).enumerate() {
        // Integer arithmetic: a bar's height is its share of the tallest, in whole units.
        let height = (u128::from(count) * u128::from(plot) / u128::from(max)) as u64;
        let x = BAR_GAP + i as u64 * slot;
        let width = slot - BAR_GAP;
        let y = PLOT_BOTTOM - height;
        let middle = x + width / 2;
        let _ = write!(
            buf,
            "<g class=\"bar\" data-le=\"{le}\" data-count=\"{count}\">\
             <rect x=\"{x}\" y=\"{y}\" width=\"{width}\" height=\"{height}\"/>\
             <text x=\"{middle}\" y=\"{}\" class=\"value\">{count}</text>\
             <text x=\"{middle}\" y=\"{}\" class=\"label\">{label}</text></g>",
            y.saturating_sub(6).max(12),
            PLOT_BOTTOM + 20,
        );
    }
    buf.extend_from_slice(b"</svg>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_proportional_to_the_tallest() {
        let mut buf = Vec::new();
        write(&mut buf, &[10, 5, 0], &["a", "b", "c"], &["1", "2", "+Inf"]);
        let svg = String::from_utf8(buf).unwrap();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("data-le=\"1\" data-count=\"10\""));
        assert!(svg.contains(&format!("height=\"{}\"", PLOT_BOTTOM - PLOT_TOP)));
        assert!(svg.contains(&format!("height=\"{}\"", (PLOT_BOTTOM - PLOT_TOP) / 2)));
        assert!(svg.contains("data-le=\"+Inf\" data-count=\"0\""));
        assert!(svg.contains("height=\"0\""));
    }
}
