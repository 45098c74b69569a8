//! `/metrics` in the Prometheus text format: request counts and the SLI
//! latency histogram upstream's SLO tooling reads, plus process memory.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upstream's buckets for `apiserver_request_sli_duration_seconds`.
const BUCKETS: &[f64] = &[
    0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 20.0,
    30.0, 45.0, 60.0,
];

/// Upstream's buckets for `apiserver_request_duration_seconds`.
const DURATION_BUCKETS: &[f64] = &[
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0,
    10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
];

/// The labels of one API request.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RequestLabels {
    pub group: &'static str,
    pub version: &'static str,
    pub resource: &'static str,
    pub subresource: String,
    /// Upstream's verb: GET, LIST, WATCH, POST, PUT, PATCH, DELETE,
    /// DELETECOLLECTION.
    pub verb: &'static str,
    /// `resource`, `namespace` or `cluster`.
    pub scope: &'static str,
}

impl RequestLabels {
    fn render(&self) -> String {
        format!(
            "component=\"apiserver\",group=\"{}\",resource=\"{}\",scope=\"{}\",subresource=\"{}\",verb=\"{}\",version=\"{}\"",
            self.group, self.resource, self.scope, self.subresource, self.verb, self.version
        )
    }
}

#[derive(Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, buckets: &[f64], secs: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; buckets.len()];
        }
        for (i, le) in buckets.iter().enumerate() {
            if secs <= *le {
                self.counts[i] += 1;
            }
        }
        self.sum += secs;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str, buckets: &[f64]) {
        for (le, n) in buckets.iter().zip(&self.counts) {
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {n}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

#[derive(Default)]
struct Inner {
    totals: BTreeMap<(RequestLabels, u16), u64>,
    sli: BTreeMap<RequestLabels, Histogram>,
    duration: BTreeMap<RequestLabels, Histogram>,
}

/// The API server's request metrics.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    /// Records one finished request. Watches are counted but, as upstream,
    /// left out of the latency SLI.
    pub fn observe(&self, labels: &RequestLabels, code: u16, took: Duration) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        *inner.totals.entry((labels.clone(), code)).or_default() += 1;
        if labels.verb == "WATCH" {
            return;
        }
        let secs = took.as_secs_f64();
        let sli = inner.sli.entry(labels.clone()).or_default();
        sli.observe(BUCKETS, secs);
        let duration = inner.duration.entry(labels.clone()).or_default();
        duration.observe(DURATION_BUCKETS, secs);
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP apiserver_request_total Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, scope, component, and HTTP response code."
        );
        let _ = writeln!(out, "# TYPE apiserver_request_total counter");
        for ((labels, code), n) in &inner.totals {
            let _ = writeln!(
                out,
                "apiserver_request_total{{code=\"{code}\",{}}} {n}",
                labels.render()
            );
        }
        let _ = writeln!(
            out,
            "# HELP apiserver_request_sli_duration_seconds Response latency distribution (not counting webhook duration and priority & fairness queue wait times) in seconds for each verb, group, version, resource, subresource, scope and component."
        );
        let _ = writeln!(
            out,
            "# TYPE apiserver_request_sli_duration_seconds histogram"
        );
        for (labels, h) in &inner.sli {
            let l = labels.render();
            h.render(
                &mut out,
                "apiserver_request_sli_duration_seconds",
                &l,
                BUCKETS,
            );
        }
        let _ = writeln!(
            out,
            "# HELP apiserver_request_duration_seconds Response latency distribution in seconds for each verb, dry run value, group, version, resource, subresource, scope and component."
        );
        let _ = writeln!(out, "# TYPE apiserver_request_duration_seconds histogram");
        for (labels, h) in &inner.duration {
            let l = labels.render();
            h.render(
                &mut out,
                "apiserver_request_duration_seconds",
                &l,
                DURATION_BUCKETS,
            );
        }
        if let Some(rss) = resident_bytes() {
            let _ = writeln!(
                out,
                "# HELP process_resident_memory_bytes Resident memory size in bytes."
            );
            let _ = writeln!(out, "# TYPE process_resident_memory_bytes gauge");
            let _ = writeln!(out, "process_resident_memory_bytes {rss}");
        }
        out
    }
}

/// The process's resident set size, from `/proc/self/statm`.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_cumulative_buckets() {
        let m = Metrics::default();
        let labels = RequestLabels {
            group: "",
            version: "v1",
            resource: "configmaps",
            subresource: String::new(),
            verb: "GET",
            scope: "resource",
        };
        m.observe(&labels, 200, Duration::from_millis(70));
        m.observe(&labels, 404, Duration::from_millis(10));
        let text = m.render();
        assert!(text.contains("apiserver_request_total{code=\"404\",component=\"apiserver\",group=\"\",resource=\"configmaps\""));
        assert!(text.contains("le=\"0.05\"} 1"));
        assert!(text.contains("le=\"0.1\"} 2"));
        assert!(text.contains("apiserver_request_sli_duration_seconds_count{component=\"apiserver\",group=\"\",resource=\"configmaps\",scope=\"resource\",subresource=\"\",verb=\"GET\",version=\"v1\"} 2"));
        assert!(text.contains("apiserver_request_duration_seconds_bucket{component=\"apiserver\",group=\"\",resource=\"configmaps\",scope=\"resource\",subresource=\"\",verb=\"GET\",version=\"v1\",le=\"0.025\"} 1"));
    }
}
