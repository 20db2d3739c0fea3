//! Prometheus metrics of the API server, served at `/metrics` in the text
//! exposition format: requests by verb, resource and code, and their total
//! latency; the watch cache's revision.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use parking_lot::Mutex;

#[derive(Default)]
struct Counter {
    count: u64,
    seconds: f64,
}

/// The counters.
#[derive(Default)]
pub(crate) struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), Counter>>,
}

impl Metrics {
    /// Counts one request.
    pub(crate) fn observe(&self, verb: &str, resource: &str, code: u16, took: Duration) {
        let mut m = self.requests.lock();
        let c = m
            .entry((verb.to_string(), resource.to_string(), code))
            .or_default();
        c.count += 1;
        c.seconds += took.as_secs_f64();
    }

    /// The text exposition.
    pub(crate) fn render(&self, cache_revision: i64) -> String {
        let mut out = String::new();
        let m = self.requests.lock();
        let _ = writeln!(
            out,
            "# HELP apiserver_request_total Requests served, by verb, resource and HTTP code."
        );
        let _ = writeln!(out, "# TYPE apiserver_request_total counter");
        for ((verb, resource, code), c) in m.iter() {
            let _ = writeln!(
                out,
                "apiserver_request_total{{verb=\"{verb}\",resource=\"{resource}\",code=\"{code}\"}} {}",
                c.count
            );
        }
        let _ = writeln!(out, "# HELP apiserver_request_duration_seconds_sum Time spent serving requests (watches: until they end).");
        let _ = writeln!(out, "# TYPE apiserver_request_duration_seconds_sum counter");
        for ((verb, resource, code), c) in m.iter() {
            let _ = writeln!(
                out,
                "apiserver_request_duration_seconds_sum{{verb=\"{verb}\",resource=\"{resource}\",code=\"{code}\"}} {:.6}",
                c.seconds
            );
        }
        let _ = writeln!(out, "# HELP ferrokube_watch_cache_revision The store revision the watch cache is current through.");
        let _ = writeln!(out, "# TYPE ferrokube_watch_cache_revision gauge");
        let _ = writeln!(out, "ferrokube_watch_cache_revision {cache_revision}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition() {
        let m = Metrics::default();
        m.observe("get", "pods", 200, Duration::from_millis(2));
        m.observe("get", "pods", 200, Duration::from_millis(3));
        m.observe("create", "configmaps", 409, Duration::from_millis(1));
        let text = m.render(42);
        assert!(
            text.contains("apiserver_request_total{verb=\"get\",resource=\"pods\",code=\"200\"} 2"),
            "{text}"
        );
        assert!(text.contains(
            "apiserver_request_total{verb=\"create\",resource=\"configmaps\",code=\"409\"} 1"
        ));
        assert!(text.contains("ferrokube_watch_cache_revision 42"));
    }
}
