//! Where the HPA controller gets its numbers, as Kubernetes'
//! `podautoscaler/metrics` client: the resource metrics API
//! (`metrics.k8s.io/v1beta1` PodMetrics, listed by the target's selector)
//! read into per-pod sums (or one container's value) in milli-units, and
//! the answers of the custom and external metrics APIs, which ferrokube
//! does not serve. [`PodMetricsSource`] is what the controller reads
//! through: [`ApiMetrics`] over the API, [`FakeMetrics`] for tests.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

/// One pod's metric: its value (milli-units), when it was taken and over
/// what window (Kubernetes' `PodMetric`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PodMetric {
    pub(crate) timestamp: Timestamp,
    pub(crate) window: Duration,
    pub(crate) value: i64,
}

/// Pod name to its metric.
pub(crate) type PodMetricsInfo = HashMap<String, PodMetric>;

/// One PodMetrics object of `metrics.k8s.io/v1beta1`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PodMetricsItem {
    pub(crate) name: String,
    pub(crate) namespace: String,
    pub(crate) timestamp: Timestamp,
    pub(crate) window: Duration,
    /// Each container's usage: resource name to milli-units.
    pub(crate) containers: Vec<(String, BTreeMap<String, i64>)>,
}

/// What lists pod metrics: the resource metrics API or a fake.
pub(crate) trait PodMetricsSource: Send + Sync + 'static {
    /// The PodMetrics of namespace `ns` whose pods match `selector` (a
    /// label selector's string form); the error as the controller reports
    /// it (`unable to fetch metrics from resource metrics API: ...`).
    fn list(
        &self,
        ns: &str,
        selector: &str,
    ) -> impl Future<Output = Result<Vec<PodMetricsItem>, String>> + Send;
}

/// Kubernetes' `GetResourceMetric`: the PodMetrics listed read into each
/// pod's usage of `resource` (the sum over its containers, or `container`'s
/// alone), with the first item's timestamp.
pub(crate) fn resource_metric(
    items: &[PodMetricsItem],
    resource: &str,
    container: &str,
) -> Result<(PodMetricsInfo, Timestamp), String> {
    let Some(first) = items.first() else {
        return Err("no metrics returned from resource metrics API".into());
    };
    let info = if container.is_empty() {
        pod_sums(items, resource)
    } else {
        container_values(items, resource, container)
            .map_err(|e| format!("failed to get container metrics: {e}"))?
    };
    Ok((info, first.timestamp))
}

/// Each pod's sum over its containers; a pod with no containers, or one
/// lacking the resource, is left out.
fn pod_sums(items: &[PodMetricsItem], resource: &str) -> PodMetricsInfo {
    let mut out = PodMetricsInfo::with_capacity(items.len());
    for m in items {
        let mut sum = 0i64;
        let mut missing = m.containers.is_empty();
        for (_, usage) in &m.containers {
            match usage.get(resource) {
                Some(v) => sum = sum.saturating_add(*v),
                None => {
                    missing = true;
                    break;
                }
            }
        }
        if !missing {
            out.insert(
                m.name.clone(),
                PodMetric {
                    timestamp: m.timestamp,
                    window: m.window,
                    value: sum,
                },
            );
        }
    }
    out
}

/// Each pod's value of `container`; a pod without the container is an
/// error, one whose container lacks the resource is left out.
fn container_values(
    items: &[PodMetricsItem],
    resource: &str,
    container: &str,
) -> Result<PodMetricsInfo, String> {
    let mut out = PodMetricsInfo::with_capacity(items.len());
    for m in items {
        let Some((_, usage)) = m.containers.iter().find(|(n, _)| n == container) else {
            return Err(format!(
                "container {container} not present in metrics for pod {}/{}",
                m.namespace, m.name
            ));
        };
        if let Some(v) = usage.get(resource) {
            out.insert(
                m.name.clone(),
                PodMetric {
                    timestamp: m.timestamp,
                    window: m.window,
                    value: *v,
                },
            );
        }
    }
    Ok(out)
}

/// The error of any custom metrics read (Pods and Object metrics): no
/// custom metrics API is served, as Kubernetes' client reports when
/// discovery has no `custom.metrics.k8s.io`.
pub(crate) fn custom_metrics_error() -> String {
    "unable to fetch metrics from custom metrics API: no custom metrics API \
     (custom.metrics.k8s.io) registered"
        .into()
}

/// The error of an external metric read: the API server does not serve
/// `external.metrics.k8s.io`, so the request gets a 404.
pub(crate) fn external_metrics_error(metric: &str) -> String {
    format!(
        "unable to fetch metrics from external metrics API: the server could not find \
         the requested resource (get {}.external.metrics.k8s.io)",
        metric.to_lowercase()
    )
}

/// A PodMetricsList as JSON read into items; entries that do not parse
/// are left out.
pub(crate) fn parse_list(list: &Value) -> Vec<PodMetricsItem> {
    let Some(items) = list.get("items").and_then(Value::as_array) else {
        return Vec::new();
    };
    items.iter().filter_map(parse_item).collect()
}

fn parse_item(v: &Value) -> Option<PodMetricsItem> {
    let meta = v.get("metadata")?;
    let name = meta.get("name")?.as_str()?.to_string();
    let namespace = meta
        .get("namespace")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let timestamp: Timestamp = v.get("timestamp")?.as_str()?.parse().ok()?;
    let window = v
        .get("window")
        .and_then(Value::as_str)
        .and_then(parse_go_duration)
        .unwrap_or(Duration::ZERO);
    let mut containers = Vec::new();
    for c in v
        .get("containers")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let cname = c.get("name").and_then(Value::as_str).unwrap_or_default();
        let mut usage = BTreeMap::new();
        if let Some(u) = c.get("usage").and_then(Value::as_object) {
            for (k, q) in u {
                if let Some(m) = ferrokube_api::quantity::json_milli(q) {
                    usage.insert(k.clone(), i64::try_from(m).unwrap_or(i64::MAX));
                }
            }
        }
        containers.push((cname.to_string(), usage));
    }
    Some(PodMetricsItem {
        name,
        namespace,
        timestamp,
        window,
        containers,
    })
}

/// A duration in Go's `time.Duration.String()` form (`15s`, `1m0s`,
/// `15.002s`, `500ms`, `1h2m3.5s`), as `metav1.Duration` writes it.
pub(crate) fn parse_go_duration(s: &str) -> Option<Duration> {
    let mut rest = s.trim();
    if rest == "0" {
        return Some(Duration::ZERO);
    }
    if rest.is_empty() || rest.starts_with('-') {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let n_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let n: f64 = rest[..n_end].parse().ok()?;
        rest = &rest[n_end..];
        let u_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..u_end] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += n * unit;
        rest = &rest[u_end..];
    }
    Duration::try_from_secs_f64(total).ok()
}

/// Pod metrics read from the API server's `metrics.k8s.io/v1beta1`.
#[derive(Clone)]
pub(crate) struct ApiMetrics {
    client: kube::Client,
}

impl ApiMetrics {
    /// Reads with `client` (the controller's: it may list
    /// `pods.metrics.k8s.io`).
    pub(crate) fn new(client: kube::Client) -> Self {
        ApiMetrics { client }
    }
}

impl PodMetricsSource for ApiMetrics {
    async fn list(&self, ns: &str, selector: &str) -> Result<Vec<PodMetricsItem>, String> {
        let fail = |e: String| format!("unable to fetch metrics from resource metrics API: {e}");
        let path = format!("/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods");
        let mut lp = kube::api::ListParams::default();
        if !selector.is_empty() {
            lp = lp.labels(selector);
        }
        let req = kube::core::Request::new(path)
            .list(&lp)
            .map_err(|e| fail(e.to_string()))?;
        match self.client.request::<Value>(req).await {
            Ok(list) => Ok(parse_list(&list)),
            Err(kube::Error::Api(s)) if s.code == 404 => Err(fail(
                "the server could not find the requested resource (get pods.metrics.k8s.io)".into(),
            )),
            Err(e) => Err(fail(crate::podutil::error_message(&e))),
        }
    }
}

/// Pod metrics held in memory, per namespace (tests).
#[cfg(test)]
#[derive(Debug, Default)]
pub(crate) struct FakeMetrics {
    items: Mutex<HashMap<String, Vec<PodMetricsItem>>>,
    error: Mutex<Option<String>>,
}

#[cfg(test)]
impl FakeMetrics {
    /// Replaces the metrics of namespace `ns`.
    pub(crate) fn set(&self, ns: &str, items: Vec<PodMetricsItem>) {
        lock(&self.items).insert(ns.to_string(), items);
    }

    /// Makes every list fail with `error` (`None`: succeed again).
    pub(crate) fn fail(&self, error: Option<&str>) {
        *lock(&self.error) = error.map(str::to_string);
    }
}

#[cfg(test)]
impl PodMetricsSource for FakeMetrics {
    async fn list(&self, ns: &str, selector: &str) -> Result<Vec<PodMetricsItem>, String> {
        if let Some(e) = lock(&self.error).clone() {
            return Err(format!(
                "unable to fetch metrics from resource metrics API: {e}"
            ));
        }
        // The fake holds only the target's pods: the selector is the
        // caller's business.
        let _ = selector;
        Ok(lock(&self.items).get(ns).cloned().unwrap_or_default())
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("15s"), Some(Duration::from_secs(15)));
        assert_eq!(parse_go_duration("1m0s"), Some(Duration::from_secs(60)));
        assert_eq!(
            parse_go_duration("15.5s"),
            Some(Duration::from_millis(15_500))
        );
        assert_eq!(parse_go_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_go_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_go_duration("10x"), None);
        assert_eq!(parse_go_duration(""), None);
    }

    #[test]
    fn a_list_is_read_into_pod_sums_and_container_values() {
        let list = json!({"items": [
            {"metadata": {"name": "a", "namespace": "ns"}, "timestamp": "2026-12-07T20:00:00Z",
             "window": "15s", "containers": [
                {"name": "app", "usage": {"cpu": "250m", "memory": "10Mi"}},
                {"name": "side", "usage": {"cpu": "50m", "memory": "1Mi"}}]},
            {"metadata": {"name": "b", "namespace": "ns"}, "timestamp": "2026-12-07T20:00:01Z",
             "window": "15s", "containers": [
                {"name": "app", "usage": {"memory": "10Mi"}}]},
            {"metadata": {"name": "c", "namespace": "ns"}, "timestamp": "2026-12-07T20:00:01Z",
             "window": "15s", "containers": []}
        ]});
        let items = parse_list(&list);
        assert_eq!(items.len(), 3);
        let (cpu, at) = resource_metric(&items, "cpu", "").unwrap();
        assert_eq!(at, t("2026-12-07T20:00:00Z"));
        // b lacks cpu in a container, c has no containers: both missing.
        assert_eq!(cpu.len(), 1);
        assert_eq!(cpu["a"].value, 300);
        assert_eq!(cpu["a"].window, Duration::from_secs(15));
        let (mem, _) = resource_metric(&items, "memory", "").unwrap();
        assert_eq!(mem["a"].value, 11 * 1024 * 1024 * 1000);
        let err = resource_metric(&items, "cpu", "side").unwrap_err();
        assert_eq!(
            err,
            "failed to get container metrics: container side not present in metrics for pod ns/b"
        );
        let (app, _) = resource_metric(&items[..2], "cpu", "app").unwrap();
        assert_eq!(app.len(), 1);
        assert_eq!(app["a"].value, 250);
        assert_eq!(
            resource_metric(&[], "cpu", "").unwrap_err(),
            "no metrics returned from resource metrics API"
        );
    }
}
