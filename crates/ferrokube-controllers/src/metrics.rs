//! Per-controller work counters: watch events handed to the controller,
//! reconciles run (and failed) with their total time, and the API requests
//! it made (writes: POST, PUT, PATCH, DELETE; reads: GET other than
//! watches). Counters live for the process, in one registry, and are read
//! as Prometheus text ([`render`], served by `ferrokube controller-manager`
//! at `/metrics`) or as numbers ([`snapshot`]).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use http::{Method, Request};
use kube::client::Body;

/// One controller's counters.
#[derive(Debug, Default)]
pub struct ControllerMetrics {
    events: AtomicU64,
    reconciles: AtomicU64,
    errors: AtomicU64,
    reconcile_nanos: AtomicU64,
    writes: AtomicU64,
    reads: AtomicU64,
}

impl ControllerMetrics {
    /// One watch event delivered to this controller.
    pub fn event(&self) {
        self.events.fetch_add(1, Ordering::Relaxed);
    }

    /// One reconcile (or pass) finished after `took`.
    pub fn reconciled(&self, took: Duration, ok: bool) {
        self.reconciles.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.reconcile_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    fn request(&self, method: &Method, watch: bool) {
        if *method == Method::GET {
            if !watch {
                self.reads.fetch_add(1, Ordering::Relaxed);
            }
        } else {
            self.writes.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The counters as they are now.
    pub fn counts(&self) -> Counts {
        Counts {
            events: self.events.load(Ordering::Relaxed),
            reconciles: self.reconciles.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            reconcile_seconds: self.reconcile_nanos.load(Ordering::Relaxed) as f64 / 1e9,
            writes: self.writes.load(Ordering::Relaxed),
            reads: self.reads.load(Ordering::Relaxed),
        }
    }
}

/// A reading of one controller's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Counts {
    /// Watch events handed to the controller.
    pub events: u64,
    /// Reconciles (or passes) run, failed ones included.
    pub reconciles: u64,
    /// Reconciles that failed (and were retried).
    pub errors: u64,
    /// Wall-clock time spent in reconciles, awaits included, in seconds.
    pub reconcile_seconds: f64,
    /// API requests that write (POST, PUT, PATCH, DELETE).
    pub writes: u64,
    /// API GET requests other than watches.
    pub reads: u64,
}

type Registry = Mutex<BTreeMap<&'static str, Arc<ControllerMetrics>>>;

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

/// The counters of the controller `name` (the same ones on every call).
pub fn controller(name: &'static str) -> Arc<ControllerMetrics> {
    let mut r = registry().lock().unwrap_or_else(|p| p.into_inner());
    r.entry(name).or_default().clone()
}

/// Every controller's counters, by name.
pub fn snapshot() -> BTreeMap<&'static str, Counts> {
    let r = registry().lock().unwrap_or_else(|p| p.into_inner());
    r.iter().map(|(name, m)| (*name, m.counts())).collect()
}

/// A client that counts the requests made through it as `name`'s.
pub fn counting_client(client: &kube::Client, name: &'static str) -> kube::Client {
    let metrics = controller(name);
    let inner = client.clone();
    let ns = client.default_namespace().to_string();
    let service = tower::service_fn(move |req: Request<Body>| {
        let watch = req
            .uri()
            .query()
            .is_some_and(|q| q.split('&').any(|kv| kv == "watch=true" || kv == "watch=1"));
        metrics.request(req.method(), watch);
        let inner = inner.clone();
        async move { inner.send(req).await }
    });
    kube::Client::new(service, ns)
}

/// One metric: name, type, help and how to read it from [`Counts`].
type Row = (
    &'static str,
    &'static str,
    &'static str,
    fn(&Counts) -> String,
);

/// The counters in Prometheus' text format.
pub fn render() -> String {
    let snap = snapshot();
    let mut out = String::new();
    let rows: [Row; 6] = [
        (
            "ferrokube_controller_events_total",
            "counter",
            "Watch events delivered to the controller.",
            |c| c.events.to_string(),
        ),
        (
            "ferrokube_controller_reconciles_total",
            "counter",
            "Reconciles (or passes) run.",
            |c| c.reconciles.to_string(),
        ),
        (
            "ferrokube_controller_reconcile_errors_total",
            "counter",
            "Reconciles that failed (and were retried).",
            |c| c.errors.to_string(),
        ),
        (
            "ferrokube_controller_reconcile_seconds_sum",
            "counter",
            "Time spent in reconciles (wall clock, awaits included).",
            |c| format!("{:.6}", c.reconcile_seconds),
        ),
        (
            "ferrokube_controller_api_writes_total",
            "counter",
            "API requests that write (POST, PUT, PATCH, DELETE).",
            |c| c.writes.to_string(),
        ),
        (
            "ferrokube_controller_api_reads_total",
            "counter",
            "API GET requests other than watches.",
            |c| c.reads.to_string(),
        ),
    ];
    for (metric, kind, help, value) in rows {
        let _ = writeln!(out, "# HELP {metric} {help}");
        let _ = writeln!(out, "# TYPE {metric} {kind}");
        for (name, c) in &snap {
            let _ = writeln!(out, "{metric}{{controller=\"{name}\"}} {}", value(c));
        }
    }
    out
}

/// Reads [`render`]'s text back (for whoever scrapes it): controller →
/// counts. Lines it does not know are skipped.
pub fn parse(text: &str) -> BTreeMap<String, Counts> {
    let mut out: BTreeMap<String, Counts> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((metric, rest)) = line.split_once("{controller=\"") else {
            continue;
        };
        let Some((name, value)) = rest.split_once("\"} ") else {
            continue;
        };
        let c = out.entry(name.to_string()).or_default();
        let int = || value.trim().parse::<u64>().unwrap_or(0);
        match metric {
            "ferrokube_controller_events_total" => c.events = int(),
            "ferrokube_controller_reconciles_total" => c.reconciles = int(),
            "ferrokube_controller_reconcile_errors_total" => c.errors = int(),
            "ferrokube_controller_reconcile_seconds_sum" => {
                c.reconcile_seconds = value.trim().parse().unwrap_or(0.0)
            }
            "ferrokube_controller_api_writes_total" => c.writes = int(),
            "ferrokube_controller_api_reads_total" => c.reads = int(),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_counters_read_back() {
        let m = controller("test-render");
        m.event();
        m.event();
        m.reconciled(Duration::from_millis(3), true);
        m.reconciled(Duration::from_millis(1), false);
        m.request(&Method::POST, false);
        m.request(&Method::GET, true);
        m.request(&Method::GET, false);
        let back = parse(&render());
        let c = back.get("test-render").copied().unwrap_or_default();
        assert_eq!(
            (c.events, c.reconciles, c.errors, c.writes, c.reads),
            (2, 2, 1, 1, 1)
        );
        assert!((c.reconcile_seconds - 0.004).abs() < 1e-6);
    }
}
