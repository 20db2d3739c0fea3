//! Unit tests of the HPA controller: Kubernetes' arithmetic, pod
//! grouping, normalization and whole syncs against fakes (cases after
//! `replica_calculator_test.go` and `horizontal_test.go`, in our words).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrokube_api::labels::Selector;
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler as Hpa,
};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use serde_json::{json, Value};

use super::calculator::{self, Readiness, Tolerances};
use super::clock::{shift, Clock, FakeClock};
use super::metrics::{
    self, lock, FakeMetrics, PodMetric, PodMetricsInfo, PodMetricsItem, PodMetricsSource,
};
use super::normalize::{self, Args, History, Recommendation, Rules, ScaleEvent};
use super::scale::Handle;
use super::sync::{Autoscaler, HpaConfig, Io, ScaleError, ScaleInfo};

fn t0() -> Timestamp {
    "2026-12-07T12:00:00Z".parse().unwrap()
}

/// A running pod `name` with one container `app` requesting `cpu`
/// (`None`: no request), started `age` seconds before t0 and Ready
/// (`ready`) since `ready_for` seconds before t0.
fn pod(name: &str, cpu: Option<&str>, age: i64, ready: bool, ready_for: i64) -> Pod {
    let mut resources = json!({});
    if let Some(c) = cpu {
        resources = json!({"requests": {"cpu": c}});
    }
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "ns", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "app", "image": "busybox", "resources": resources}]},
        "status": {
            "phase": "Running",
            "startTime": shift(t0(), -age).to_string(),
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" },
                            "lastTransitionTime": shift(t0(), -ready_for).to_string()}]
        }
    }))
    .unwrap()
}

/// A pod long past its CPU initialization period, ready.
fn settled(name: &str, cpu: &str) -> Pod {
    pod(name, Some(cpu), 3600, true, 3500)
}

fn with_phase(mut p: Pod, phase: &str) -> Pod {
    if let Some(s) = p.status.as_mut() {
        s.phase = Some(phase.into());
    }
    p
}

/// Metrics taken at t0 over 30 s, milli-CPU per pod.
fn usage(values: &[(&str, i64)]) -> PodMetricsInfo {
    values
        .iter()
        .map(|(n, v)| {
            (
                (*n).to_string(),
                PodMetric {
                    timestamp: t0(),
                    window: Duration::from_secs(30),
                    value: *v,
                },
            )
        })
        .collect()
}

fn readiness() -> Readiness {
    Readiness {
        cpu_initialization_period: Duration::from_secs(300),
        initial_readiness_delay: Duration::from_secs(30),
        now: t0(),
    }
}

fn cpu_replicas(
    current: i32,
    target: i32,
    pods: &[Pod],
    m: PodMetricsInfo,
) -> Result<calculator::Utilization, String> {
    let refs: Vec<&Pod> = pods.iter().collect();
    calculator::resource_replicas(
        current,
        target,
        "cpu",
        "",
        Tolerances::both(0.1),
        &refs,
        m,
        readiness(),
    )
}

fn three(request: &str) -> Vec<Pod> {
    vec![
        settled("a", request),
        settled("b", request),
        settled("c", request),
    ]
}

#[test]
fn three_pods_at_target_50_scale_up_only_past_the_tolerance() {
    // 54%: ratio 1.08, within 10%.
    let u = cpu_replicas(
        3,
        50,
        &three("100m"),
        usage(&[("a", 54), ("b", 54), ("c", 54)]),
    )
    .unwrap();
    assert_eq!((u.replicas, u.utilization, u.raw_average), (3, 54, 54));
    // 55%: ratio float64(55)/50 == 1.1 == 1.0+0.1 in float64: on the
    // bound, which Kubernetes 1.33's Tolerances.isWithin includes.
    let u = cpu_replicas(
        3,
        50,
        &three("100m"),
        usage(&[("a", 55), ("b", 55), ("c", 55)]),
    )
    .unwrap();
    assert_eq!((u.replicas, u.utilization), (3, 55));
    // 56%: ceil(1.12 * 3) = ceil(3.3600000000000003) = 4.
    let u = cpu_replicas(
        3,
        50,
        &three("100m"),
        usage(&[("a", 56), ("b", 56), ("c", 56)]),
    )
    .unwrap();
    assert_eq!((u.replicas, u.utilization), (4, 56));
    // Below: 45% is on the lower bound, 44% gives ceil(0.88 * 3) = 3.
    let u = cpu_replicas(
        3,
        50,
        &three("100m"),
        usage(&[("a", 45), ("b", 45), ("c", 45)]),
    )
    .unwrap();
    assert_eq!(u.replicas, 3);
    let u = cpu_replicas(
        3,
        50,
        &three("100m"),
        usage(&[("a", 44), ("b", 44), ("c", 44)]),
    )
    .unwrap();
    assert_eq!(u.replicas, 3);
    let u = cpu_replicas(
        3,
        50,
        &three("100m"),
        usage(&[("a", 30), ("b", 30), ("c", 30)]),
    )
    .unwrap();
    assert_eq!(u.replicas, 2);
}

#[test]
fn the_tolerance_is_the_ratio_distance_of_kubernetes_1_33() {
    let t = Tolerances::both(0.1);
    assert!(t.is_within(55.0 / 50.0));
    assert!(!t.is_within(56.0 / 50.0));
    assert!(t.is_within(45.0 / 50.0));
    assert!(!t.is_within(44.0 / 50.0));
    let asymmetric = Tolerances { down: 0.0, up: 0.5 };
    assert!(asymmetric.is_within(1.4));
    assert!(!asymmetric.is_within(0.99));
}

#[test]
fn utilization_is_a_truncated_percentage_of_summed_requests() {
    // 100m of 300m each: 33%, not 33.3: ratio 0.66 at target 50 ...
    let u = cpu_replicas(
        3,
        50,
        &three("300m"),
        usage(&[("a", 100), ("b", 100), ("c", 100)]),
    )
    .unwrap();
    assert_eq!((u.utilization, u.replicas), (33, 2));
    // ... and the raw average is the truncated mean of the values.
    let u = cpu_replicas(
        3,
        50,
        &three("100m"),
        usage(&[("a", 100), ("b", 100), ("c", 101)]),
    )
    .unwrap();
    assert_eq!((u.utilization, u.raw_average, u.replicas), (100, 100, 6));
}

#[test]
fn unready_pods_count_as_idle_on_a_scale_up_and_can_hold_it_back() {
    // Two ready pods at 60% and a pod turned unready within its CPU
    // initialization period: 60% alone says scale up, but with the
    // unready pod at 0 the ratio is 0.8 and the direction flips: stay.
    let pods = vec![
        settled("a", "1000m"),
        settled("b", "1000m"),
        pod("c", Some("1000m"), 60, false, 10),
    ];
    let u = cpu_replicas(3, 50, &pods, usage(&[("a", 600), ("b", 600), ("c", 900)])).unwrap();
    assert_eq!((u.replicas, u.utilization), (3, 60));
    // At 100% the unready pod at 0 still leaves a scale-up: 2000/3000 is
    // 66%, ceil(1.32 * 3) = 4.
    let u = cpu_replicas(3, 50, &pods, usage(&[("a", 1000), ("b", 1000), ("c", 900)])).unwrap();
    assert_eq!((u.replicas, u.utilization), (4, 100));
    // On a scale-down unready pods are just left out.
    let u = cpu_replicas(3, 50, &pods, usage(&[("a", 100), ("b", 100), ("c", 900)])).unwrap();
    assert_eq!((u.replicas, u.utilization), (1, 10));
}

#[test]
fn missing_pods_count_as_full_on_a_scale_down_and_idle_on_a_scale_up() {
    let four = vec![
        settled("a", "1000m"),
        settled("b", "1000m"),
        settled("c", "1000m"),
        settled("d", "1000m"),
    ];
    // 10% each with d missing: d at 100% of its request, 1300/4000 =
    // 32%, ceil(0.64 * 4) = 3 (not ceil(0.2 * 3) = 1).
    let u = cpu_replicas(4, 50, &four, usage(&[("a", 100), ("b", 100), ("c", 100)])).unwrap();
    assert_eq!((u.replicas, u.utilization), (3, 10));
    // With a target above 100% the missing pod counts at the target.
    let u = cpu_replicas(4, 200, &four, usage(&[("a", 100), ("b", 100), ("c", 100)])).unwrap();
    assert_eq!(u.replicas, 2);
    // 100% each with d missing: d at 0, 3000/4000 = 75%, ceil(1.5 * 4) = 6.
    let u = cpu_replicas(
        4,
        50,
        &four,
        usage(&[("a", 1000), ("b", 1000), ("c", 1000)]),
    )
    .unwrap();
    assert_eq!((u.replicas, u.utilization), (6, 100));
    // Near the target, a missing pod can only keep the count.
    let u = cpu_replicas(4, 50, &four, usage(&[("a", 560), ("b", 560), ("c", 560)])).unwrap();
    assert_eq!(u.replicas, 4);
}

#[test]
fn pods_are_grouped_by_phase_readiness_and_cpu_initialization() {
    let m = usage(&[
        ("young-unsampled", 1),
        ("young-ready", 1),
        ("never-ready", 1),
        ("was-ready", 1),
        ("no-start", 1),
    ]);
    let mut no_start = settled("no-start", "1");
    if let Some(s) = no_start.status.as_mut() {
        s.start_time = None;
    }
    let mut deleted = settled("deleted", "1");
    deleted.metadata.deletion_timestamp =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(t0()));
    let pods = vec![
        // Started 60 s ago, ready 10 s ago: the sample (at t0, 30 s
        // window) does not cover a whole window since: unready.
        pod("young-unsampled", Some("1"), 60, true, 10),
        // Started 120 s ago, ready 90 s ago: counted.
        pod("young-ready", Some("1"), 120, true, 90),
        // Past the period, unready since 10 s after start (within the
        // 30 s readiness delay): never became ready, unready.
        pod("never-ready", Some("1"), 3600, false, 3590),
        // Past the period, unready since long after start: counted.
        pod("was-ready", Some("1"), 3600, false, 60),
        no_start,
        with_phase(settled("pending", "1"), "Pending"),
        with_phase(settled("failed", "1"), "Failed"),
        deleted,
        settled("unmeasured", "1"),
    ];
    let refs: Vec<&Pod> = pods.iter().collect();
    let g = calculator::group_pods(&refs, &m, "cpu", readiness());
    assert_eq!(g.ready, 2);
    let sorted = |s: &std::collections::HashSet<String>| {
        let mut v: Vec<String> = s.iter().cloned().collect();
        v.sort();
        v
    };
    assert_eq!(
        sorted(&g.unready),
        ["never-ready", "no-start", "pending", "young-unsampled"]
    );
    assert_eq!(sorted(&g.missing), ["unmeasured"]);
    assert_eq!(sorted(&g.ignored), ["deleted", "failed"]);
    // Other resources look at the phase only.
    let g = calculator::group_pods(&refs, &m, "memory", readiness());
    assert_eq!(g.ready, 5);
}

#[test]
fn a_container_without_a_request_is_an_error_worded_as_kubernetes() {
    let pods = vec![pod("web-0", None, 3600, true, 3500)];
    let err = cpu_replicas(1, 50, &pods, usage(&[("web-0", 10)])).unwrap_err();
    assert_eq!(err, "missing request for cpu in container app of Pod web-0");
    let err = cpu_replicas(1, 50, &[], usage(&[])).unwrap_err();
    assert_eq!(
        err,
        "no pods returned by selector while calculating replica count"
    );
    let err = cpu_replicas(1, 50, &three("1"), usage(&[])).unwrap_err();
    assert_eq!(
        err,
        "did not receive metrics for targeted pods (pods might be unready)"
    );
}

#[test]
fn average_value_targets_use_the_truncated_mean() {
    let pods = three("100m");
    let refs: Vec<&Pod> = pods.iter().collect();
    // 500m average for a 200m target: ceil(2.5 * 3) = 8.
    let (n, avg) = calculator::plain_replicas(
        3,
        200,
        "cpu",
        Tolerances::both(0.1),
        &refs,
        usage(&[("a", 400), ("b", 500), ("c", 601)]),
        readiness(),
    )
    .unwrap();
    assert_eq!((n, avg), (8, 500));
    // A missing pod counts at the target on a scale-down.
    let (n, _) = calculator::plain_replicas(
        3,
        200,
        "cpu",
        Tolerances::both(0.1),
        &refs,
        usage(&[("a", 50), ("b", 50)]),
        readiness(),
    )
    .unwrap();
    assert_eq!(n, 2);
}

// --- normalization ---

fn recs(h: &mut History, v: &[(i32, i64)]) {
    h.recommendations = v
        .iter()
        .map(|(r, ago)| Recommendation {
            replicas: *r,
            at: shift(t0(), -ago),
        })
        .collect();
}

#[test]
fn scale_down_is_stabilized_over_the_window() {
    let window = Duration::from_secs(300);
    let mut h = History::default();
    recs(&mut h, &[(5, 200), (4, 100)]);
    let (n, c) = normalize::normalize(&mut h, window, 5, 2, 1, 10, t0());
    assert_eq!(n, 5);
    assert_eq!(c[0].reason, "ScaleDownStabilized");
    assert_eq!(c[0].message, "recent recommendations were higher than current one, applying the highest recent recommendation");
    assert_eq!(c[1].status, "False");
    assert_eq!(c[1].reason, "DesiredWithinRange");
    // 150 s later the 5 is out of the window (recorded 350 s ago), the 4
    // (250 s ago) still in.
    let later = shift(t0(), 150);
    let (n, _) = normalize::normalize(&mut h, window, 5, 2, 1, 10, later);
    assert_eq!(n, 4);
    // The old sample's slot was reused for the new recommendation.
    assert_eq!(h.recommendations.len(), 3);
    let (n, c) = normalize::normalize(&mut h, window, 4, 2, 1, 10, shift(t0(), 500));
    assert_eq!(n, 2);
    assert_eq!(c[0].reason, "ReadyForNewScale");
}

#[test]
fn without_behavior_scale_up_is_limited_and_clamped() {
    assert_eq!(
        normalize::convert_with_rules(1, 10, 1, 10),
        (
            4,
            "ScaleUpLimit",
            "the desired replica count is increasing faster than the maximum scale rate"
        )
    );
    assert_eq!(normalize::convert_with_rules(3, 7, 1, 10).0, 6);
    assert_eq!(
        normalize::convert_with_rules(3, 10, 1, 5),
        (
            5,
            "TooManyReplicas",
            "the desired replica count is more than the maximum replica count"
        )
    );
    assert_eq!(
        normalize::convert_with_rules(3, 0, 2, 5),
        (
            2,
            "TooFewReplicas",
            "the desired replica count is less than the minimum replica count"
        )
    );
    assert_eq!(
        normalize::convert_with_rules(3, 4, 1, 5),
        (
            4,
            "DesiredWithinRange",
            "the desired count is within the acceptable range"
        )
    );
    let mut h = History::default();
    let (n, c) = normalize::normalize(&mut h, Duration::from_secs(300), 1, 10, 1, 10, t0());
    assert_eq!(n, 4);
    assert_eq!(
        (c[1].status, c[1].reason.as_str()),
        ("True", "ScaleUpLimit")
    );
}

fn rules(select: &str, window: i32, policies: &[(&str, i32, i32)]) -> Rules {
    Rules {
        stabilization_window_seconds: window,
        select_policy: select.into(),
        policies: policies
            .iter()
            .map(|(t, v, p)| ((*t).to_string(), *v, *p))
            .collect(),
    }
}

fn event(change: i32, ago: i64) -> ScaleEvent {
    ScaleEvent {
        change,
        at: shift(t0(), -ago),
        outdated: false,
    }
}

#[test]
fn scale_up_policies_count_from_each_periods_start() {
    // 4 added 30 s ago: inside the 60 s period, outside the 15 s one.
    let ups = [event(4, 30)];
    let max = rules("Max", 0, &[("Pods", 2, 15), ("Percent", 50, 60)]);
    // Pods/15s: 10 + 2 = 12; Percent/60s: ceil(6 * 1.5) = 9; Max: 12.
    assert_eq!(
        normalize::scale_up_limit_with_rules(10, &ups, &[], &max, t0()),
        12
    );
    let min = rules("Min", 0, &[("Pods", 2, 15), ("Percent", 50, 60)]);
    assert_eq!(
        normalize::scale_up_limit_with_rules(10, &ups, &[], &min, t0()),
        9
    );
    let off = rules("Disabled", 0, &[("Pods", 2, 15)]);
    assert_eq!(
        normalize::scale_up_limit_with_rules(10, &ups, &[], &off, t0()),
        10
    );
    // A removal within the period gives the room back: Percent/60s from
    // 10 - 4 + 3 = 9, ceil(13.5) = 14.
    assert_eq!(
        normalize::scale_up_limit_with_rules(10, &ups, &[event(3, 40)], &max, t0()),
        14
    );
}

#[test]
fn scale_down_policies_count_from_each_periods_start() {
    let downs = [event(2, 30)];
    // Pods/15s: 10 - 1 = 9; Percent/60s: int(12 * 0.9) = 10.
    let max = rules("Max", 0, &[("Pods", 1, 15), ("Percent", 10, 60)]);
    assert_eq!(
        normalize::scale_down_limit_with_rules(10, &[], &downs, &max, t0()),
        9
    );
    let min = rules("Min", 0, &[("Pods", 1, 15), ("Percent", 10, 60)]);
    assert_eq!(
        normalize::scale_down_limit_with_rules(10, &[], &downs, &min, t0()),
        10
    );
    let off = rules("Disabled", 0, &[("Pods", 1, 15)]);
    assert_eq!(
        normalize::scale_down_limit_with_rules(10, &[], &downs, &off, t0()),
        10
    );
}

#[test]
fn behaviors_stabilize_both_ways_and_limit_the_rate() {
    let up = rules("Max", 60, &[("Pods", 1, 60)]);
    let down = rules("Max", 300, &[("Percent", 100, 15)]);
    let args = |current, desired| Args {
        up: &up,
        down: &down,
        min: 1,
        max: 10,
        current,
        desired,
    };
    // Scale-up stabilization: the lowest recommendation of the last 60 s.
    let mut h = History::default();
    recs(&mut h, &[(3, 30), (5, 10)]);
    let (n, c) = normalize::normalize_with_behaviors(&mut h, &args(2, 6), t0());
    assert_eq!(n, 3);
    assert_eq!(c[0].reason, "ScaleUpStabilized");
    assert_eq!(c[0].message, "recent recommendations were lower than current one, applying the lowest recent recommendation");
    assert_eq!(c[1].reason, "DesiredWithinRange");
    // Rate: one pod per 60 s.
    let mut h = History {
        scale_up: vec![event(1, 20)],
        ..Default::default()
    };
    let (n, c) = normalize::normalize_with_behaviors(&mut h, &args(3, 6), t0());
    assert_eq!(n, 3);
    assert_eq!(
        (c[1].status, c[1].reason.as_str()),
        ("True", "ScaleUpLimit")
    );
    let mut h = History::default();
    let (n, _) = normalize::normalize_with_behaviors(&mut h, &args(3, 6), t0());
    assert_eq!(n, 4);
    // Max clamps before the rate when it is lower.
    let (n, c) = normalize::normalize_with_behaviors(
        &mut History::default(),
        &Args {
            max: 3,
            ..args(3, 6)
        },
        t0(),
    );
    assert_eq!(
        (n, c[1].reason.as_str(), c[1].status),
        (3, "TooManyReplicas", "True")
    );
    // Scale-down: the highest of the 300 s window, then min.
    let mut h = History::default();
    recs(&mut h, &[(8, 200), (2, 100)]);
    let (n, c) = normalize::normalize_with_behaviors(&mut h, &args(8, 1), t0());
    assert_eq!((n, c[0].reason.as_str()), (8, "ScaleDownStabilized"));
    let (n, c) = normalize::normalize_with_behaviors(
        &mut History::default(),
        &Args {
            min: 2,
            ..args(8, 1)
        },
        t0(),
    );
    assert_eq!(
        (n, c[1].reason.as_str(), c[1].status),
        (2, "TooFewReplicas", "True")
    );
}

#[test]
fn defaults_fill_a_partial_behavior() {
    let b: k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscalerBehavior =
        serde_json::from_value(
            json!({"scaleDown": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]}}),
        )
        .unwrap();
    let (up, down) = normalize::rules_of(&b, Duration::from_secs(30));
    assert_eq!(
        up,
        rules("Max", 0, &[("Pods", 4, 15), ("Percent", 100, 15)])
    );
    assert_eq!(down, rules("Max", 30, &[("Pods", 1, 60)]));
}

#[test]
fn scale_events_reuse_outdated_slots() {
    let up = rules("Max", 0, &[("Pods", 4, 60)]);
    let down = rules("Max", 0, &[("Percent", 100, 15)]);
    let mut h = History {
        scale_up: vec![event(2, 120), event(1, 30)],
        ..Default::default()
    };
    normalize::store_scale_event(&mut h, &up, &down, 3, 5, t0());
    assert_eq!(h.scale_up.len(), 2);
    assert_eq!(
        h.scale_up[0],
        ScaleEvent {
            change: 2,
            at: t0(),
            outdated: false
        }
    );
    normalize::store_scale_event(&mut h, &up, &down, 5, 1, t0());
    assert_eq!(
        h.scale_down,
        vec![ScaleEvent {
            change: 4,
            at: t0(),
            outdated: false
        }]
    );
}

// --- whole syncs ---

#[derive(Default)]
struct FakeIo {
    /// spec.replicas, selector; `None`: the scale cannot be read.
    scale: Mutex<Option<(i32, String)>>,
    metrics: FakeMetrics,
    pods: Mutex<Vec<Arc<Pod>>>,
    events: Mutex<Vec<(String, String, String)>>,
    statuses: Mutex<Vec<Hpa>>,
    fail_update: Mutex<Option<String>>,
}

impl Io for FakeIo {
    async fn get_scale(
        &self,
        _ns: &str,
        target: &CrossVersionObjectReference,
    ) -> Result<ScaleInfo, ScaleError> {
        match lock(&self.scale).clone() {
            Some((replicas, selector)) => Ok(ScaleInfo {
                replicas,
                selector,
                handle: Handle::fake(&target.name),
            }),
            None => Err(ScaleError::Get(format!(
                "deployments.apps {:?} not found",
                target.name
            ))),
        }
    }
    async fn update_scale(&self, _scale: &ScaleInfo, replicas: i32) -> Result<(), String> {
        if let Some(e) = lock(&self.fail_update).clone() {
            return Err(e);
        }
        if let Some(s) = lock(&self.scale).as_mut() {
            s.0 = replicas;
        }
        Ok(())
    }
    async fn pod_metrics(&self, ns: &str, selector: &str) -> Result<Vec<PodMetricsItem>, String> {
        self.metrics.list(ns, selector).await
    }
    fn pods(&self, ns: &str, selector: &Selector) -> Vec<Arc<Pod>> {
        lock(&self.pods)
            .iter()
            .filter(|p| {
                p.metadata.namespace.as_deref() == Some(ns)
                    && selector.matches(p.metadata.labels.as_ref())
            })
            .cloned()
            .collect()
    }
    fn event(&self, _hpa: &Hpa, type_: &str, reason: &str, message: String) {
        lock(&self.events).push((type_.into(), reason.into(), message));
    }
    async fn update_status(&self, hpa: &Hpa) -> Result<(), String> {
        lock(&self.statuses).push(hpa.clone());
        Ok(())
    }
}

impl FakeIo {
    fn with(replicas: i32, pods: Vec<Pod>) -> Self {
        let io = FakeIo::default();
        *lock(&io.scale) = Some((replicas, "app=web".into()));
        *lock(&io.pods) = pods.into_iter().map(Arc::new).collect();
        io
    }
    /// Every pod at `milli` CPU, measured at `at`.
    fn load(&self, milli: i64, at: Timestamp) {
        let items = lock(&self.pods)
            .iter()
            .map(|p| PodMetricsItem {
                name: p.metadata.name.clone().unwrap_or_default(),
                namespace: "ns".into(),
                timestamp: at,
                window: Duration::from_secs(15),
                containers: vec![("app".into(), BTreeMap::from([("cpu".to_string(), milli)]))],
            })
            .collect();
        self.metrics.set("ns", items);
    }
    fn replicas(&self) -> i32 {
        lock(&self.scale).as_ref().map_or(-1, |s| s.0)
    }
    fn last_status(&self) -> Value {
        let s = lock(&self.statuses);
        serde_json::to_value(s.last().and_then(|h| h.status.clone())).unwrap()
    }
    fn reasons(&self) -> Vec<String> {
        lock(&self.events).iter().map(|e| e.1.clone()).collect()
    }
    fn event(&self, reason: &str) -> Option<String> {
        lock(&self.events)
            .iter()
            .rev()
            .find(|e| e.1 == reason)
            .map(|e| e.2.clone())
    }
}

fn hpa(spec: Value) -> Hpa {
    let mut s = json!({
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "minReplicas": 1, "maxReplicas": 4,
        "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]
    });
    if let (Some(base), Some(extra)) = (s.as_object_mut(), spec.as_object()) {
        for (k, v) in extra {
            base.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "ns", "generation": 2, "uid": "u1"},
        "spec": s
    }))
    .unwrap()
}

fn autoscaler(clock: &Arc<FakeClock>, window: u64) -> Autoscaler {
    let config = HpaConfig {
        downscale_stabilization: Duration::from_secs(window),
        ..HpaConfig::default()
    };
    Autoscaler::new(config, clock.clone())
}

fn condition(status: &Value, type_: &str) -> (String, String, String) {
    let c = status["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
        .cloned()
        .unwrap_or_default();
    let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
    (s("status"), s("reason"), s("message"))
}

/// The HPA as the informer would hold it after the last status write.
fn stored(io: &FakeIo, base: &Hpa) -> Hpa {
    lock(&io.statuses)
        .last()
        .cloned()
        .unwrap_or_else(|| base.clone())
}

#[tokio::test]
async fn a_sync_scales_up_and_reports_as_kubernetes() {
    let clock = Arc::new(FakeClock::at(t0()));
    let a = autoscaler(&clock, 300);
    let io = FakeIo::with(3, three("100m"));
    io.load(56, t0());
    let h = hpa(json!({}));
    a.reconcile(&io, &h).await.unwrap();
    assert_eq!(io.replicas(), 4);
    assert_eq!(
        io.event("SuccessfulRescale").as_deref(),
        Some("New size: 4; reason: cpu resource utilization (percentage of request) above target")
    );
    let st = io.last_status();
    assert_eq!(st["currentReplicas"], 3);
    assert_eq!(st["desiredReplicas"], 4);
    assert_eq!(st["observedGeneration"], 2);
    assert_eq!(st["lastScaleTime"], json!(t0().to_string()));
    assert_eq!(
        st["currentMetrics"],
        json!([{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 56, "averageValue": "56m"}}}])
    );
    assert_eq!(
        condition(&st, "AbleToScale"),
        (
            "True".into(),
            "SucceededRescale".into(),
            "the HPA controller was able to update the target scale to 4".into()
        )
    );
    assert_eq!(condition(&st, "ScalingActive"), ("True".into(), "ValidMetricFound".into(), "the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)".into()));
    assert_eq!(
        condition(&st, "ScalingLimited"),
        (
            "False".into(),
            "DesiredWithinRange".into(),
            "the desired count is within the acceptable range".into()
        )
    );
    let kinds: Vec<&str> = st["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["AbleToScale", "ScalingActive", "ScalingLimited"]);

    // The next sync at the same load and 4 replicas: 56% still but the
    // pods are the same three (the new one not yet there): the max clamps.
    clock.advance(15);
    let h2 = stored(&io, &h);
    lock(&io.pods).push(Arc::new(settled("d", "100m")));
    io.load(50, clock.now());
    let writes = lock(&io.statuses).len();
    a.reconcile(&io, &h2).await.unwrap();
    assert_eq!(io.replicas(), 4);
    let st = io.last_status();
    assert_eq!(condition(&st, "AbleToScale").1, "ReadyForNewScale");
    assert_eq!(st["lastScaleTime"], json!(t0().to_string()));
    assert_eq!(lock(&io.statuses).len(), writes + 1);
    // Nothing changed: no write.
    let h3 = stored(&io, &h);
    a.reconcile(&io, &h3).await.unwrap();
    assert_eq!(lock(&io.statuses).len(), writes + 1);
}

#[tokio::test]
async fn scale_down_waits_for_the_stabilization_window() {
    let clock = Arc::new(FakeClock::at(t0()));
    let a = autoscaler(&clock, 30);
    let io = FakeIo::with(
        4,
        vec![
            settled("a", "100m"),
            settled("b", "100m"),
            settled("c", "100m"),
            settled("d", "100m"),
        ],
    );
    let mut h = hpa(json!({}));
    io.load(100, t0());
    a.reconcile(&io, &h).await.unwrap();
    assert_eq!(io.replicas(), 4, "at max already: {:?}", io.reasons());
    // Load gone: recommendation 1, but 4 was recommended 15 s ago.
    for _ in 0..2 {
        clock.advance(15);
        h = stored(&io, &h);
        io.load(0, clock.now());
        a.reconcile(&io, &h).await.unwrap();
        assert_eq!(io.replicas(), 4);
        assert_eq!(
            condition(&io.last_status(), "AbleToScale").1,
            "ScaleDownStabilized"
        );
    }
    // 45 s after the last high recommendation: down to 1.
    clock.advance(15);
    h = stored(&io, &h);
    io.load(0, clock.now());
    a.reconcile(&io, &h).await.unwrap();
    assert_eq!(io.replicas(), 1);
    assert_eq!(
        io.event("SuccessfulRescale").as_deref(),
        Some("New size: 1; reason: All metrics below target")
    );
}

#[tokio::test]
async fn a_target_without_cpu_requests_is_not_scaled() {
    let clock = Arc::new(FakeClock::at(t0()));
    let a = autoscaler(&clock, 300);
    let io = FakeIo::with(1, vec![pod("web-0", None, 3600, true, 3500)]);
    io.load(10, t0());
    let err = a.reconcile(&io, &hpa(json!({}))).await.unwrap_err();
    assert!(err.starts_with("failed to compute desired number of replicas based on listed metrics for Deployment/ns/web: invalid metrics (1 invalid out of 1)"), "{err}");
    let st = io.last_status();
    assert_eq!(
        condition(&st, "ScalingActive"),
        ("False".into(), "FailedGetResourceMetric".into(),
         "the HPA was unable to compute the replica count: failed to get cpu utilization: missing request for cpu in container app of Pod web-0".into())
    );
    assert_eq!(condition(&st, "AbleToScale").1, "SucceededGetScale");
    assert_eq!(st["currentMetrics"], json!([{"type": ""}]));
    assert_eq!(st["currentReplicas"], 1);
    assert_eq!(st["desiredReplicas"], 0);
    assert_eq!(
        io.event("FailedGetResourceMetric").as_deref(),
        Some(
            "failed to get cpu utilization: missing request for cpu in container app of Pod web-0"
        )
    );
    assert_eq!(
        io.event("FailedComputeMetricsReplicas").as_deref(),
        Some("invalid metrics (1 invalid out of 1), first error is: failed to get cpu resource metric value: failed to get cpu utilization: missing request for cpu in container app of Pod web-0")
    );
    assert_eq!(io.replicas(), 1);
}

#[tokio::test]
async fn no_metrics_api_answer_is_reported() {
    let clock = Arc::new(FakeClock::at(t0()));
    let a = autoscaler(&clock, 300);
    let io = FakeIo::with(2, three("100m"));
    io.metrics.fail(Some(
        "the server could not find the requested resource (get pods.metrics.k8s.io)",
    ));
    a.reconcile(&io, &hpa(json!({}))).await.unwrap_err();
    assert_eq!(
        condition(&io.last_status(), "ScalingActive").2,
        "the HPA was unable to compute the replica count: failed to get cpu utilization: unable to get metrics for resource cpu: unable to fetch metrics from resource metrics API: the server could not find the requested resource (get pods.metrics.k8s.io)"
    );
}

#[tokio::test]
async fn custom_and_external_metrics_are_reported_missing() {
    let clock = Arc::new(FakeClock::at(t0()));
    let a = autoscaler(&clock, 300);
    let io = FakeIo::with(2, three("100m"));
    let pods = json!({"metrics": [{"type": "Pods", "pods": {"metric": {"name": "rps"}, "target": {"type": "AverageValue", "averageValue": "10"}}}]});
    a.reconcile(&io, &hpa(pods)).await.unwrap_err();
    assert_eq!(
        condition(&io.last_status(), "ScalingActive"),
        ("False".into(), "FailedGetPodsMetric".into(),
         "the HPA was unable to compute the replica count: unable to get metric rps: unable to fetch metrics from custom metrics API: no custom metrics API (custom.metrics.k8s.io) registered".into())
    );
    let object = json!({"metrics": [{"type": "Object", "object": {"metric": {"name": "hits"},
        "describedObject": {"apiVersion": "v1", "kind": "Service", "name": "front"},
        "target": {"type": "Value", "value": "100"}}}]});
    a.reconcile(&io, &hpa(object)).await.unwrap_err();
    assert_eq!(
        condition(&io.last_status(), "ScalingActive").2,
        "the HPA was unable to compute the replica count: unable to get metric hits: Service on ns front/unable to fetch metrics from custom metrics API: no custom metrics API (custom.metrics.k8s.io) registered"
    );
    let external = json!({"metrics": [{"type": "External", "external": {"metric": {"name": "queue_depth"},
        "target": {"type": "AverageValue", "averageValue": "5"}}}]});
    a.reconcile(&io, &hpa(external)).await.unwrap_err();
    let (s, reason, _) = condition(&io.last_status(), "ScalingActive");
    assert_eq!(
        (s.as_str(), reason.as_str()),
        ("False", "FailedGetExternalMetric")
    );
    assert_eq!(
        io.event("FailedGetExternalMetric").as_deref(),
        Some("unable to get external metric ns/queue_depth/nil: unable to fetch metrics from external metrics API: the server could not find the requested resource (get queue_depth.external.metrics.k8s.io)")
    );
    // A working CPU metric beside a failing one still scales up.
    io.load(100, t0());
    let both = json!({"metrics": [
        {"type": "Pods", "pods": {"metric": {"name": "rps"}, "target": {"type": "AverageValue", "averageValue": "10"}}},
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]});
    let err = a.reconcile(&io, &hpa(both)).await.unwrap_err();
    assert!(
        err.starts_with("invalid metrics (1 invalid out of 2)"),
        "{err}"
    );
    assert_eq!(io.replicas(), 4);
    assert_eq!(
        condition(&io.last_status(), "ScalingActive").1,
        "ValidMetricFound"
    );
}

#[tokio::test]
async fn replicas_outside_min_and_max_and_zero_replicas() {
    let clock = Arc::new(FakeClock::at(t0()));
    let a = autoscaler(&clock, 300);
    let io = FakeIo::with(6, three("100m"));
    a.reconcile(&io, &hpa(json!({}))).await.unwrap();
    assert_eq!(io.replicas(), 4);
    assert_eq!(
        io.event("SuccessfulRescale").as_deref(),
        Some("New size: 4; reason: Current number of replicas above Spec.MaxReplicas")
    );
    assert_eq!(io.last_status()["currentMetrics"], Value::Null);
    let io = FakeIo::with(1, three("100m"));
    a.reconcile(&io, &hpa(json!({"minReplicas": 2})))
        .await
        .unwrap();
    assert_eq!(
        io.event("SuccessfulRescale").as_deref(),
        Some("New size: 2; reason: Current number of replicas below Spec.MinReplicas")
    );
    let io = FakeIo::with(0, three("100m"));
    a.reconcile(&io, &hpa(json!({}))).await.unwrap();
    assert_eq!(io.replicas(), 0);
    assert_eq!(
        condition(&io.last_status(), "ScalingActive"),
        (
            "False".into(),
            "ScalingDisabled".into(),
            "scaling is disabled since the replica count of the target is zero".into()
        )
    );
    assert_eq!(io.last_status()["desiredReplicas"], 0);
}

#[tokio::test]
async fn scale_read_and_write_failures() {
    let clock = Arc::new(FakeClock::at(t0()));
    let a = autoscaler(&clock, 300);
    let io = FakeIo::default();
    let err = a.reconcile(&io, &hpa(json!({}))).await.unwrap_err();
    assert_eq!(err, "failed to query scale subresource for Deployment/ns/web: deployments.apps \"web\" not found");
    assert_eq!(
        condition(&io.last_status(), "AbleToScale"),
        ("False".into(), "FailedGetScale".into(), "the HPA controller was unable to get the target's current scale: deployments.apps \"web\" not found".into())
    );
    assert_eq!(io.reasons(), ["FailedGetScale"]);

    let io = FakeIo::with(2, three("100m"));
    io.load(100, t0());
    *lock(&io.fail_update) = Some("conflict".into());
    let err = a.reconcile(&io, &hpa(json!({}))).await.unwrap_err();
    assert_eq!(err, "failed to rescale Deployment/ns/web: conflict");
    assert_eq!(io.event("FailedRescale").as_deref(), Some("New size: 4; reason: cpu resource utilization (percentage of request) above target; error: conflict"));
    assert_eq!(
        condition(&io.last_status(), "AbleToScale").1,
        "FailedUpdateScale"
    );
    // An empty selector.
    let io = FakeIo::with(2, three("100m"));
    *lock(&io.scale) = Some((2, String::new()));
    a.reconcile(&io, &hpa(json!({}))).await.unwrap_err();
    assert_eq!(
        condition(&io.last_status(), "ScalingActive"),
        (
            "False".into(),
            "InvalidSelector".into(),
            "the HPA target's scale is missing a selector".into()
        )
    );
    assert_eq!(
        io.event("SelectorRequired").as_deref(),
        Some("selector is required")
    );
}

#[tokio::test]
async fn two_hpas_over_the_same_pods_are_refused() {
    let clock = Arc::new(FakeClock::at(t0()));
    let a = autoscaler(&clock, 300);
    let io = FakeIo::with(3, three("100m"));
    io.load(50, t0());
    a.seen("ns", "web");
    a.seen("ns", "other");
    let mut other = hpa(json!({}));
    other.metadata.name = Some("other".into());
    a.reconcile(&io, &other).await.unwrap();
    let err = a.reconcile(&io, &hpa(json!({}))).await.unwrap_err();
    assert!(
        err.contains("pods by selector app=web are controlled by multiple HPAs: [ns/other ns/web]"),
        "{err}"
    );
    assert_eq!(
        condition(&io.last_status(), "ScalingActive").1,
        "AmbiguousSelector"
    );
    a.forget("ns", "other");
    a.reconcile(&io, &hpa(json!({}))).await.unwrap();
}

#[tokio::test]
async fn behavior_policies_pace_a_scale_up() {
    let clock = Arc::new(FakeClock::at(t0()));
    let a = autoscaler(&clock, 300);
    let io = FakeIo::with(1, vec![settled("a", "100m")]);
    io.load(1000, t0());
    let spec = json!({"maxReplicas": 10, "behavior": {"scaleUp": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]}}});
    let mut h = hpa(spec);
    a.reconcile(&io, &h).await.unwrap();
    assert_eq!(io.replicas(), 2);
    assert_eq!(
        condition(&io.last_status(), "ScalingLimited").1,
        "ScaleUpLimit"
    );
    // Within the minute: no more.
    clock.advance(30);
    h = stored(&io, &h);
    io.load(1000, clock.now());
    a.reconcile(&io, &h).await.unwrap();
    assert_eq!(io.replicas(), 2);
    // After it: one more.
    clock.advance(31);
    h = stored(&io, &h);
    io.load(1000, clock.now());
    a.reconcile(&io, &h).await.unwrap();
    assert_eq!(io.replicas(), 3);
    // The first event, older than the longest period, gave its slot.
    assert_eq!(
        a.history("ns", "web").scale_up,
        [ScaleEvent {
            change: 1,
            at: clock.now(),
            outdated: false
        }]
    );
}

#[test]
fn api_metrics_lists_are_parsed_into_what_the_sync_reads() {
    let items = metrics::parse_list(
        &json!({"items": [{"metadata": {"name": "a", "namespace": "ns"},
        "timestamp": "2026-12-07T12:00:00Z", "window": "5s",
        "containers": [{"name": "app", "usage": {"cpu": "120m", "memory": "1Mi"}}]}]}),
    );
    let (m, at) = metrics::resource_metric(&items, "cpu", "").unwrap();
    assert_eq!(at, t0());
    assert_eq!(m["a"].value, 120);
}
