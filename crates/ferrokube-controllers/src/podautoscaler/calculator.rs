//! How many replicas a metric asks for: Kubernetes' `ReplicaCalculator`
//! and `metrics/utilization.go`, with its integer and float64 arithmetic
//! kept exactly (the utilization is a truncated integer percentage, the
//! ratio a float64 of it, replicas the ceiling of ratio times pods).
//!
//! Pods are grouped first: deleted and failed pods are ignored, pending
//! ones unready, pods without a metric missing, and for CPU a pod still in
//! its CPU initialization period (or never ready within the initial
//! readiness delay) is unready. Missing pods count as 100% of their
//! request (or the target, above 100%) on a scale-down and 0% on a
//! scale-up; unready pods count as 0% on a scale-up; a result that would
//! turn the direction around keeps the current count.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::clock::shift_by;
use super::metrics::{PodMetric, PodMetricsInfo};

/// How far the usage ratio may be from 1 before anything changes, below
/// and above (Kubernetes' `Tolerances`; both the
/// `--horizontal-pod-autoscaler-tolerance` unless an HPA's behavior sets
/// its own).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Tolerances {
    pub(crate) down: f64,
    pub(crate) up: f64,
}

impl Tolerances {
    /// The same tolerance both ways.
    pub(crate) fn both(t: f64) -> Self {
        Tolerances { down: t, up: t }
    }

    /// Whether `ratio` is close enough to 1 to change nothing (bounds
    /// included, as Kubernetes 1.33 compares).
    pub(crate) fn is_within(&self, ratio: f64) -> bool {
        (1.0 - self.down) <= ratio && ratio <= (1.0 + self.up)
    }
}

/// The readiness windows of the pod grouping.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Readiness {
    /// `--horizontal-pod-autoscaler-cpu-initialization-period`.
    pub(crate) cpu_initialization_period: Duration,
    /// `--horizontal-pod-autoscaler-initial-readiness-delay`.
    pub(crate) initial_readiness_delay: Duration,
    /// Now.
    pub(crate) now: Timestamp,
}

/// What a resource utilization target gives: the replicas, the current
/// utilization (percent of request) and the average raw value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Utilization {
    pub(crate) replicas: i32,
    pub(crate) utilization: i32,
    pub(crate) raw_average: i64,
}

/// Kubernetes' `GetResourceReplicas` after the metrics are read: the
/// replicas for `target_utilization` percent of `resource`'s request.
#[expect(
    clippy::too_many_arguments,
    reason = "Kubernetes' function, argument for argument"
)]
pub(crate) fn resource_replicas(
    current: i32,
    target_utilization: i32,
    resource: &str,
    container: &str,
    tolerances: Tolerances,
    pods: &[&Pod],
    mut metrics: PodMetricsInfo,
    r: Readiness,
) -> Result<Utilization, String> {
    if pods.is_empty() {
        return Err("no pods returned by selector while calculating replica count".into());
    }
    let groups = group_pods(pods, &metrics, resource, r);
    remove(&mut metrics, &groups.ignored);
    remove(&mut metrics, &groups.unready);
    if metrics.is_empty() {
        return Err("did not receive metrics for targeted pods (pods might be unready)".into());
    }
    let requests = pod_requests(pods, container, resource)?;
    let (ratio, utilization, raw_average) =
        utilization_ratio(&metrics, &requests, target_utilization)?;
    let done = |replicas| Utilization {
        replicas,
        utilization,
        raw_average,
    };
    let scale_up_with_unready = !groups.unready.is_empty() && ratio > 1.0;
    if !scale_up_with_unready && groups.missing.is_empty() {
        if tolerances.is_within(ratio) {
            return Ok(done(current));
        }
        return Ok(done(ceil_i32(ratio * groups.ready as f64)));
    }
    if !groups.missing.is_empty() {
        if ratio < 1.0 {
            let fallback = i64::from(target_utilization.max(100));
            for p in &groups.missing {
                let request = requests.get(p).copied().unwrap_or(0);
                metrics.insert(p.clone(), value(request * fallback / 100));
            }
        } else if ratio > 1.0 {
            for p in &groups.missing {
                metrics.insert(p.clone(), value(0));
            }
        }
    }
    if scale_up_with_unready {
        for p in &groups.unready {
            metrics.insert(p.clone(), value(0));
        }
    }
    let (new_ratio, _, _) = utilization_ratio(&metrics, &requests, target_utilization)?;
    Ok(done(settle(
        current,
        tolerances,
        ratio,
        new_ratio,
        metrics.len(),
    )))
}

/// Kubernetes' `calcPlainMetricReplicas`: the replicas for an average
/// value target (`AverageValue` of a resource, or a Pods metric), with the
/// average usage.
pub(crate) fn plain_replicas(
    current: i32,
    target_usage: i64,
    resource: &str,
    tolerances: Tolerances,
    pods: &[&Pod],
    mut metrics: PodMetricsInfo,
    r: Readiness,
) -> Result<(i32, i64), String> {
    if pods.is_empty() {
        return Err("no pods returned by selector while calculating replica count".into());
    }
    let groups = group_pods(pods, &metrics, resource, r);
    remove(&mut metrics, &groups.ignored);
    remove(&mut metrics, &groups.unready);
    if metrics.is_empty() {
        return Err("did not receive metrics for targeted pods (pods might be unready)".into());
    }
    let (ratio, usage) = usage_ratio(&metrics, target_usage);
    let scale_up_with_unready = !groups.unready.is_empty() && ratio > 1.0;
    if !scale_up_with_unready && groups.missing.is_empty() {
        if tolerances.is_within(ratio) {
            return Ok((current, usage));
        }
        return Ok((ceil_i32(ratio * groups.ready as f64), usage));
    }
    if !groups.missing.is_empty() {
        if ratio < 1.0 {
            for p in &groups.missing {
                metrics.insert(p.clone(), value(target_usage));
            }
        } else if ratio > 1.0 {
            for p in &groups.missing {
                metrics.insert(p.clone(), value(0));
            }
        }
    }
    if scale_up_with_unready {
        for p in &groups.unready {
            metrics.insert(p.clone(), value(0));
        }
    }
    let (new_ratio, _) = usage_ratio(&metrics, target_usage);
    Ok((
        settle(current, tolerances, ratio, new_ratio, metrics.len()),
        usage,
    ))
}

/// The second pass's answer: the current count if the new ratio is within
/// tolerance or turns the direction around, else the ceiling of the new
/// ratio times the pods counted (unless that too turns it around).
fn settle(current: i32, t: Tolerances, ratio: f64, new_ratio: f64, counted: usize) -> i32 {
    if t.is_within(new_ratio)
        || (ratio < 1.0 && new_ratio > 1.0)
        || (ratio > 1.0 && new_ratio < 1.0)
    {
        return current;
    }
    let replicas = ceil_i32(new_ratio * counted as f64);
    if (new_ratio < 1.0 && replicas > current) || (new_ratio > 1.0 && replicas < current) {
        return current;
    }
    replicas
}

/// Go's `int32(math.Ceil(x))` for the values that occur (saturating).
fn ceil_i32(x: f64) -> i32 {
    x.ceil() as i32
}

fn value(v: i64) -> PodMetric {
    PodMetric {
        timestamp: Timestamp::UNIX_EPOCH,
        window: Duration::ZERO,
        value: v,
    }
}

fn remove(metrics: &mut PodMetricsInfo, pods: &HashSet<String>) {
    for p in pods {
        metrics.remove(p);
    }
}

/// The pods sorted as Kubernetes' `groupPods` sorts them.
#[derive(Debug, Default)]
pub(crate) struct Groups {
    pub(crate) ready: usize,
    pub(crate) unready: HashSet<String>,
    pub(crate) missing: HashSet<String>,
    pub(crate) ignored: HashSet<String>,
}

pub(crate) fn group_pods(
    pods: &[&Pod],
    metrics: &PodMetricsInfo,
    resource: &str,
    r: Readiness,
) -> Groups {
    let mut g = Groups::default();
    for pod in pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let status = pod.status.as_ref();
        let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or_default();
        if pod.metadata.deletion_timestamp.is_some() || phase == "Failed" {
            g.ignored.insert(name);
            continue;
        }
        if phase == "Pending" {
            g.unready.insert(name);
            continue;
        }
        let Some(metric) = metrics.get(&name) else {
            g.missing.insert(name);
            continue;
        };
        if resource == "cpu" && cpu_unready(pod, metric, r) {
            g.unready.insert(name);
            continue;
        }
        g.ready += 1;
    }
    g
}

/// Whether a pod's CPU sample is not to be trusted: no Ready condition or
/// start time; within the CPU initialization period, unready or not a
/// whole metric window since its last readiness change; after it, unready
/// and never ready since the initial readiness delay.
fn cpu_unready(pod: &Pod, metric: &PodMetric, r: Readiness) -> bool {
    let status = pod.status.as_ref();
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"));
    let start = status.and_then(|s| s.start_time.as_ref()).map(|t| t.0);
    let (Some(cond), Some(start)) = (ready, start) else {
        return true;
    };
    let transition = cond
        .last_transition_time
        .as_ref()
        .map_or(Timestamp::UNIX_EPOCH, |t| t.0);
    let is_false = cond.status == "False";
    if shift_by(start, signed(r.cpu_initialization_period)) > r.now {
        is_false || metric.timestamp < shift_by(transition, signed(metric.window))
    } else {
        is_false && shift_by(start, signed(r.initial_readiness_delay)) > transition
    }
}

fn signed(d: Duration) -> SignedDuration {
    SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX)
}

/// Each pod's request of `resource` (milli-units): the sum over its
/// containers and restartable init containers, or `container`'s alone; a
/// container without the request is an error, worded as Kubernetes'.
pub(crate) fn pod_requests(
    pods: &[&Pod],
    container: &str,
    resource: &str,
) -> Result<HashMap<String, i64>, String> {
    let mut out = HashMap::with_capacity(pods.len());
    for pod in pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let mut sum = 0i64;
        let spec = pod.spec.as_ref();
        let regular = spec.map(|s| s.containers.iter()).into_iter().flatten();
        let sidecars = spec
            .and_then(|s| s.init_containers.as_ref())
            .into_iter()
            .flatten()
            .filter(|c| c.restart_policy.as_deref() == Some("Always"));
        for c in regular.chain(sidecars) {
            if !container.is_empty() && container != c.name {
                continue;
            }
            let request = c
                .resources
                .as_ref()
                .and_then(|r| r.requests.as_ref())
                .and_then(|r| r.get(resource));
            match request.and_then(|q| ferrokube_api::quantity::parse_milli(&q.0)) {
                Some(m) => sum = sum.saturating_add(i64::try_from(m).unwrap_or(i64::MAX)),
                None => {
                    return Err(format!(
                        "missing request for {resource} in container {} of Pod {name}",
                        c.name
                    ))
                }
            }
        }
        out.insert(name, sum);
    }
    Ok(out)
}

/// Kubernetes' `GetResourceUtilizationRatio`: the truncated integer
/// percentage of the summed usage over the summed requests (pods with a
/// request only), its ratio to the target, and the average raw value.
pub(crate) fn utilization_ratio(
    metrics: &PodMetricsInfo,
    requests: &HashMap<String, i64>,
    target: i32,
) -> Result<(f64, i32, i64), String> {
    let mut metrics_total = 0i64;
    let mut requests_total = 0i64;
    let mut entries = 0i64;
    for (pod, m) in metrics {
        let Some(request) = requests.get(pod) else {
            continue;
        };
        metrics_total = metrics_total.wrapping_add(m.value);
        requests_total = requests_total.wrapping_add(*request);
        entries += 1;
    }
    if requests_total == 0 {
        return Err("no metrics returned matched known pods".into());
    }
    let utilization = (metrics_total.wrapping_mul(100) / requests_total) as i32;
    Ok((
        f64::from(utilization) / f64::from(target),
        utilization,
        metrics_total / entries.max(1),
    ))
}

/// Kubernetes' `GetMetricUsageRatio`: the truncated average over the
/// target, and the average.
pub(crate) fn usage_ratio(metrics: &PodMetricsInfo, target: i64) -> (f64, i64) {
    let total: i64 = metrics.values().fold(0i64, |a, m| a.wrapping_add(m.value));
    let average = total / (metrics.len().max(1) as i64);
    (average as f64 / target as f64, average)
}
