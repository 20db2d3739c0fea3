//! One sync of one HorizontalPodAutoscaler: Kubernetes'
//! `reconcileAutoscaler` and what it calls (`computeReplicasForMetrics`,
//! each metric type's status, the selector checks, status and conditions),
//! over an [`Io`]: what it reads and writes (the target's scale, pod
//! metrics, pods, Events, the HPA's status) comes through that trait, so
//! the whole sync runs in unit tests against fakes.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrokube_api::labels::Selector;
use ferrokube_api::quota::Qty;
use k8s_openapi::api::autoscaling::v2::{
    ContainerResourceMetricStatus, CrossVersionObjectReference, HorizontalPodAutoscaler as Hpa,
    HorizontalPodAutoscalerCondition, HorizontalPodAutoscalerStatus as Status, MetricSpec,
    MetricStatus, MetricTarget, MetricValueStatus, ResourceMetricStatus,
};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};

use super::calculator::{self, Readiness, Tolerances};
use super::clock::Clock;
use super::metrics::{self, lock, PodMetricsItem};
use super::normalize::{self, Condition, History};

/// The controller's settings (Kubernetes' flags of the same names).
#[derive(Clone, Debug, PartialEq)]
pub struct HpaConfig {
    /// `--horizontal-pod-autoscaler-sync-period`: how often each HPA syncs.
    pub sync_period: Duration,
    /// `--horizontal-pod-autoscaler-tolerance`.
    pub tolerance: f64,
    /// `--horizontal-pod-autoscaler-downscale-stabilization`.
    pub downscale_stabilization: Duration,
    /// `--horizontal-pod-autoscaler-cpu-initialization-period`.
    pub cpu_initialization_period: Duration,
    /// `--horizontal-pod-autoscaler-initial-readiness-delay`.
    pub initial_readiness_delay: Duration,
}

impl Default for HpaConfig {
    fn default() -> Self {
        HpaConfig {
            sync_period: Duration::from_secs(15),
            tolerance: 0.1,
            downscale_stabilization: Duration::from_secs(300),
            cpu_initialization_period: Duration::from_secs(300),
            initial_readiness_delay: Duration::from_secs(30),
        }
    }
}

/// The target's scale as read.
#[derive(Clone, Debug)]
pub(crate) struct ScaleInfo {
    /// `spec.replicas`.
    pub(crate) replicas: i32,
    /// `status.selector`.
    pub(crate) selector: String,
    /// What the writer needs to write it back (the Scale and its path).
    pub(crate) handle: super::scale::Handle,
}

/// Why the scale could not be read, as `reconcileAutoscaler` tells the
/// steps apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ScaleError {
    /// `scaleTargetRef.apiVersion` does not parse.
    ApiVersion(String),
    /// No resource of that group serves the kind.
    Mapping(String),
    /// The `/scale` read failed.
    Get(String),
}

/// What a sync reads and writes.
pub(crate) trait Io: Send + Sync {
    /// The `/scale` of `target` in `ns`.
    fn get_scale(
        &self,
        ns: &str,
        target: &CrossVersionObjectReference,
    ) -> impl Future<Output = Result<ScaleInfo, ScaleError>> + Send;
    /// Writes `replicas` into the scale read.
    fn update_scale(
        &self,
        scale: &ScaleInfo,
        replicas: i32,
    ) -> impl Future<Output = Result<(), String>> + Send;
    /// The PodMetrics of `ns` matching `selector`.
    fn pod_metrics(
        &self,
        ns: &str,
        selector: &str,
    ) -> impl Future<Output = Result<Vec<PodMetricsItem>, String>> + Send;
    /// The pods of `ns` matching `selector` (from the cache).
    fn pods(&self, ns: &str, selector: &Selector) -> Vec<Arc<Pod>>;
    /// Records an Event about `hpa`.
    fn event(&self, hpa: &Hpa, type_: &str, reason: &str, message: String);
    /// Writes `hpa`'s status (`/status`, the object as given).
    fn update_status(&self, hpa: &Hpa) -> impl Future<Output = Result<(), String>> + Send;
}

/// The controller's memory and logic, without the API: per HPA, its
/// recommendations and scale events, and the selectors of all HPAs (for
/// the check that no pod is under two).
pub(crate) struct Autoscaler {
    config: HpaConfig,
    clock: Arc<dyn Clock>,
    histories: Mutex<HashMap<(String, String), History>>,
    /// Each HPA's selector (`None`: not yet known, matches nothing).
    selectors: Mutex<HashMap<(String, String), Option<Selector>>>,
}

/// A metric's proposal.
struct Proposal {
    replicas: i32,
    name: String,
    status: MetricStatus,
}

/// A metric's failure: the condition to set if all fail, and the error.
struct Failure {
    condition: Condition,
    error: String,
}

const ABLE: &str = "AbleToScale";
const ACTIVE: &str = "ScalingActive";

impl Autoscaler {
    /// An autoscaler with `config` reading time from `clock`.
    pub(crate) fn new(config: HpaConfig, clock: Arc<dyn Clock>) -> Self {
        Autoscaler {
            config,
            clock,
            histories: Mutex::new(HashMap::new()),
            selectors: Mutex::new(HashMap::new()),
        }
    }

    /// The settings.
    pub(crate) fn config(&self) -> &HpaConfig {
        &self.config
    }

    /// An HPA was seen (`enqueueHPA`): it takes part in the selector
    /// check, with no selector until its first sync.
    pub(crate) fn seen(&self, ns: &str, name: &str) {
        lock(&self.selectors)
            .entry((ns.to_string(), name.to_string()))
            .or_insert(None);
    }

    /// An HPA is gone: its selector and history are dropped.
    pub(crate) fn forget(&self, ns: &str, name: &str) {
        let key = (ns.to_string(), name.to_string());
        lock(&self.selectors).remove(&key);
        lock(&self.histories).remove(&key);
    }

    /// A copy of an HPA's history (tests).
    #[cfg(test)]
    pub(crate) fn history(&self, ns: &str, name: &str) -> History {
        lock(&self.histories)
            .get(&(ns.to_string(), name.to_string()))
            .cloned()
            .unwrap_or_default()
    }

    fn with_history<T>(&self, key: &(String, String), f: impl FnOnce(&mut History) -> T) -> T {
        let mut h = lock(&self.histories);
        f(h.entry(key.clone()).or_default())
    }

    /// Kubernetes' `reconcileAutoscaler`: one sync of `shared`.
    #[expect(
        clippy::too_many_lines,
        reason = "Kubernetes' reconcileAutoscaler step for step, to be read beside it"
    )]
    pub(crate) async fn reconcile<I: Io>(&self, io: &I, shared: &Hpa) -> Result<(), String> {
        let mut hpa = shared.clone();
        let original = hpa.status.clone().unwrap_or_default();
        let mut st = original.clone();
        let ns = hpa.metadata.namespace.clone().unwrap_or_default();
        let name = hpa.metadata.name.clone().unwrap_or_default();
        let key = (ns.clone(), name);
        let spec = hpa.spec.clone().unwrap_or_default();
        let target = &spec.scale_target_ref;
        let reference = format!("{}/{}/{}", target.kind, ns, target.name);

        let scale = match io.get_scale(&ns, target).await {
            Ok(s) => s,
            Err(e) => {
                let (msg, err) = match e {
                    ScaleError::ApiVersion(m) => (
                        m.clone(),
                        format!("invalid API version in scale target reference: {m}"),
                    ),
                    ScaleError::Mapping(m) => (
                        m.clone(),
                        format!("unable to determine resource for scale target reference: {m}"),
                    ),
                    ScaleError::Get(m) => (
                        m.clone(),
                        format!("failed to query scale subresource for {reference}: {m}"),
                    ),
                };
                io.event(&hpa, "Warning", "FailedGetScale", msg.clone());
                self.set(
                    &mut st,
                    &Condition::new(
                        ABLE,
                        "False",
                        "FailedGetScale",
                        format!("the HPA controller was unable to get the target's current scale: {msg}"),
                    ),
                );
                self.write_if_needed(io, &original, &mut hpa, st).await?;
                return Err(err);
            }
        };
        self.set(
            &mut st,
            &Condition::new(
                ABLE,
                "True",
                "SucceededGetScale",
                "the HPA controller was able to get the target's current scale",
            ),
        );
        let current = scale.replicas;
        let now = self.clock.now();
        self.with_history(&key, |h| h.record_initial(current, now));

        let min = spec.min_replicas.unwrap_or(1);
        let max = spec.max_replicas;
        let mut statuses: Option<Vec<MetricStatus>> = None;
        let mut desired = 0;
        let mut reason = String::new();
        let mut rescale = true;
        let mut ret_err = None;
        if current == 0 && min != 0 {
            desired = 0;
            rescale = false;
            self.set(
                &mut st,
                &Condition::new(
                    ACTIVE,
                    "False",
                    "ScalingDisabled",
                    "scaling is disabled since the replica count of the target is zero",
                ),
            );
        } else if current > max {
            reason = "Current number of replicas above Spec.MaxReplicas".into();
            desired = max;
        } else if current < min {
            reason = "Current number of replicas below Spec.MinReplicas".into();
            desired = min;
        } else {
            let specs = spec.metrics.clone().unwrap_or_default();
            let out = self
                .replicas_for_metrics(io, &hpa, &mut st, &scale, &specs)
                .await;
            statuses = out.statuses;
            if let Some(e) = &out.error {
                if out.replicas == -1 {
                    self.set_current(&mut st, current, statuses, &hpa);
                    self.write_if_needed(io, &original, &mut hpa, st).await?;
                    io.event(&hpa, "Warning", "FailedComputeMetricsReplicas", e.clone());
                    return Err(format!(
                        "failed to compute desired number of replicas based on listed metrics for {reference}: {e}"
                    ));
                }
                ret_err = Some(e.clone());
            }
            let mut metric = String::new();
            if out.replicas > desired {
                desired = out.replicas;
                metric = out.metric;
            }
            if desired > current {
                reason = format!("{metric} above target");
            }
            if desired < current {
                reason = "All metrics below target".into();
            }
            let now = self.clock.now();
            let (normalized, conditions) = match &spec.behavior {
                None => self.with_history(&key, |h| {
                    normalize::normalize(
                        h,
                        self.config.downscale_stabilization,
                        current,
                        desired,
                        min,
                        max,
                        now,
                    )
                }),
                Some(b) => {
                    let (up, down) = normalize::rules_of(b, self.config.downscale_stabilization);
                    let args = normalize::Args {
                        up: &up,
                        down: &down,
                        min,
                        max,
                        current,
                        desired,
                    };
                    self.with_history(&key, |h| normalize::normalize_with_behaviors(h, &args, now))
                }
            };
            for c in &conditions {
                self.set(&mut st, c);
            }
            desired = normalized;
            rescale = desired != current;
        }

        if rescale {
            if let Err(e) = io.update_scale(&scale, desired).await {
                io.event(
                    &hpa,
                    "Warning",
                    "FailedRescale",
                    format!("New size: {desired}; reason: {reason}; error: {e}"),
                );
                self.set(
                    &mut st,
                    &Condition::new(
                        ABLE,
                        "False",
                        "FailedUpdateScale",
                        format!("the HPA controller was unable to update the target scale: {e}"),
                    ),
                );
                self.set_current(&mut st, current, statuses, &hpa);
                self.write_if_needed(io, &original, &mut hpa, st).await?;
                return Err(format!("failed to rescale {reference}: {e}"));
            }
            self.set(
                &mut st,
                &Condition::new(
                    ABLE,
                    "True",
                    "SucceededRescale",
                    format!("the HPA controller was able to update the target scale to {desired}"),
                ),
            );
            io.event(
                &hpa,
                "Normal",
                "SuccessfulRescale",
                format!("New size: {desired}; reason: {reason}"),
            );
            if let Some(b) = &spec.behavior {
                let (up, down) = normalize::rules_of(b, self.config.downscale_stabilization);
                let now = self.clock.now();
                self.with_history(&key, |h| {
                    normalize::store_scale_event(h, &up, &down, current, desired, now)
                });
            }
            tracing::info!(
                hpa = %format!("{}/{}", key.0, key.1),
                current,
                desired,
                reason = %reason,
                "rescaled"
            );
        } else {
            desired = current;
        }
        self.set_status(&mut st, current, desired, statuses, rescale, &hpa);
        self.write_if_needed(io, &original, &mut hpa, st).await?;
        match ret_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// `setCondition`: the transition time moves only when the status
    /// does; a new type goes last.
    fn set(&self, st: &mut Status, c: &Condition) {
        let list = st.conditions.get_or_insert_with(Vec::new);
        let i = match list.iter().position(|x| x.type_ == c.type_) {
            Some(i) => i,
            None => {
                list.push(HorizontalPodAutoscalerCondition {
                    type_: c.type_.to_string(),
                    ..Default::default()
                });
                list.len() - 1
            }
        };
        let cond = &mut list[i];
        if cond.status != c.status {
            cond.last_transition_time = Some(Time(self.clock.now()));
        }
        cond.status = c.status.to_string();
        cond.reason = Some(c.reason.clone());
        cond.message = Some(c.message.clone());
    }

    /// `setCurrentReplicasAndMetricsInStatus`.
    fn set_current(
        &self,
        st: &mut Status,
        current: i32,
        statuses: Option<Vec<MetricStatus>>,
        hpa: &Hpa,
    ) {
        let desired = st.desired_replicas;
        self.set_status(st, current, desired, statuses, false, hpa);
    }

    /// `setStatus`: the status made anew from the counts and metrics,
    /// keeping the last scale time (now, on a rescale) and the conditions.
    fn set_status(
        &self,
        st: &mut Status,
        current: i32,
        desired: i32,
        statuses: Option<Vec<MetricStatus>>,
        rescale: bool,
        hpa: &Hpa,
    ) {
        *st = Status {
            current_replicas: Some(current),
            desired_replicas: desired,
            last_scale_time: if rescale {
                Some(Time(self.clock.now()))
            } else {
                st.last_scale_time.clone()
            },
            current_metrics: statuses,
            conditions: st.conditions.take(),
            observed_generation: hpa.metadata.generation,
        };
    }

    /// `updateStatusIfNeeded`: writes only a changed status.
    async fn write_if_needed<I: Io>(
        &self,
        io: &I,
        original: &Status,
        hpa: &mut Hpa,
        st: Status,
    ) -> Result<(), String> {
        if *original == st {
            return Ok(());
        }
        hpa.status = Some(st);
        if let Err(e) = io.update_status(hpa).await {
            io.event(hpa, "Warning", "FailedUpdateStatus", e.clone());
            return Err(format!(
                "failed to update status for {}: {e}",
                hpa.metadata.name.as_deref().unwrap_or_default()
            ));
        }
        Ok(())
    }

    /// `validateAndParseSelector`: the scale's selector, present, valid
    /// and not shared with another HPA's pods.
    fn selector<I: Io>(
        &self,
        io: &I,
        hpa: &Hpa,
        st: &mut Status,
        raw: &str,
    ) -> Result<Selector, String> {
        if raw.is_empty() {
            let msg = "selector is required".to_string();
            io.event(hpa, "Warning", "SelectorRequired", msg.clone());
            self.set(
                st,
                &Condition::new(
                    ACTIVE,
                    "False",
                    "InvalidSelector",
                    "the HPA target's scale is missing a selector",
                ),
            );
            return Err(msg);
        }
        let selector = match Selector::parse(raw) {
            Ok(s) => s,
            Err(e) => {
                let msg = format!(
                    "couldn't convert selector into a corresponding internal selector object: {e}"
                );
                io.event(hpa, "Warning", "InvalidSelector", msg.clone());
                self.set(
                    st,
                    &Condition::new(ACTIVE, "False", "InvalidSelector", msg.clone()),
                );
                return Err(msg);
            }
        };
        let ns = hpa.metadata.namespace.clone().unwrap_or_default();
        let name = hpa.metadata.name.clone().unwrap_or_default();
        let pods = io.pods(&ns, &selector);
        let owners: BTreeSet<String> = {
            let mut all = lock(&self.selectors);
            if let Some(slot) = all.get_mut(&(ns.clone(), name)) {
                *slot = Some(selector.clone());
            }
            let mut owners = BTreeSet::new();
            for ((hns, hname), sel) in all.iter() {
                let Some(sel) = sel else { continue };
                if *hns != ns {
                    continue;
                }
                if pods.iter().any(|p| sel.matches(p.metadata.labels.as_ref())) {
                    owners.insert(format!("{hns}/{hname}"));
                }
            }
            owners
        };
        if owners.len() > 1 {
            let list: Vec<String> = owners.into_iter().collect();
            let msg = format!(
                "pods by selector {raw} are controlled by multiple HPAs: [{}]",
                list.join(" ")
            );
            io.event(hpa, "Warning", "AmbiguousSelector", msg.clone());
            self.set(
                st,
                &Condition::new(ACTIVE, "False", "AmbiguousSelector", msg.clone()),
            );
            return Err(msg);
        }
        Ok(selector)
    }

    /// `computeReplicasForMetrics`: the largest proposal of the metrics
    /// that work. `replicas` is -1 when nothing can be done (all metrics
    /// failed, or some failed and the rest would scale down).
    async fn replicas_for_metrics<I: Io>(
        &self,
        io: &I,
        hpa: &Hpa,
        st: &mut Status,
        scale: &ScaleInfo,
        specs: &[MetricSpec],
    ) -> MetricsOutcome {
        let selector = match self.selector(io, hpa, st, &scale.selector) {
            Ok(s) => s,
            Err(e) => {
                return MetricsOutcome {
                    replicas: -1,
                    metric: String::new(),
                    statuses: None,
                    error: Some(e),
                }
            }
        };
        let mut statuses = vec![MetricStatus::default(); specs.len()];
        let mut replicas = 0;
        let mut metric = String::new();
        let mut invalid = 0usize;
        let mut first: Option<Failure> = None;
        for (i, spec) in specs.iter().enumerate() {
            match self
                .replicas_for_metric(io, hpa, spec, scale, &scale.selector, &selector)
                .await
            {
                Ok(p) => {
                    statuses[i] = p.status;
                    if replicas == 0 || p.replicas > replicas {
                        replicas = p.replicas;
                        metric = p.name;
                    }
                }
                Err(f) => {
                    if invalid == 0 {
                        first = Some(f);
                    }
                    invalid += 1;
                }
            }
        }
        let error = first.as_ref().map(|f| {
            format!(
                "invalid metrics ({invalid} invalid out of {}), first error is: {}",
                specs.len(),
                f.error
            )
        });
        if invalid >= specs.len() || (invalid > 0 && replicas < scale.replicas) {
            if let Some(f) = &first {
                self.set(st, &f.condition);
            }
            return MetricsOutcome {
                replicas: -1,
                metric: String::new(),
                statuses: Some(statuses),
                error: error.or_else(|| Some("no metrics".into())),
            };
        }
        self.set(
            st,
            &Condition::new(
                ACTIVE,
                "True",
                "ValidMetricFound",
                format!("the HPA was able to successfully calculate a replica count from {metric}"),
            ),
        );
        MetricsOutcome {
            replicas,
            metric,
            statuses: Some(statuses),
            error,
        }
    }

    /// `getUnableComputeReplicaCountCondition`: records the Event and
    /// makes the ScalingActive=False condition.
    /// A metric's [`Failure`]: the condition shows (and an event says)
    /// `shown`, the status error is `error`.
    fn failure<I: Io>(
        &self,
        io: &I,
        hpa: &Hpa,
        reason: &str,
        shown: &str,
        error: String,
    ) -> Failure {
        Failure {
            condition: self.unable(io, hpa, reason, shown),
            error,
        }
    }

    fn unable<I: Io>(&self, io: &I, hpa: &Hpa, reason: &str, err: &str) -> Condition {
        io.event(hpa, "Warning", reason, err.to_string());
        Condition::new(
            ACTIVE,
            "False",
            reason.to_string(),
            format!("the HPA was unable to compute the replica count: {err}"),
        )
    }

    /// `computeReplicasForMetric`: one metric's proposal.
    async fn replicas_for_metric<I: Io>(
        &self,
        io: &I,
        hpa: &Hpa,
        spec: &MetricSpec,
        scale: &ScaleInfo,
        raw_selector: &str,
        selector: &Selector,
    ) -> Result<Proposal, Failure> {
        let ns = hpa.metadata.namespace.clone().unwrap_or_default();
        match spec.type_.as_str() {
            "Object" => self.object_metric(io, hpa, spec, &ns),
            "Pods" => self.pods_metric(io, hpa, spec),
            "Resource" | "ContainerResource" => {
                let container_source = spec.type_ == "ContainerResource";
                let (resource, container, target, reason) = if container_source {
                    match &spec.container_resource {
                        Some(s) => (
                            s.name.clone(),
                            s.container.clone(),
                            s.target.clone(),
                            "FailedGetContainerResourceMetric",
                        ),
                        None => (
                            String::new(),
                            String::new(),
                            MetricTarget::default(),
                            "FailedGetContainerResourceMetric",
                        ),
                    }
                } else {
                    match &spec.resource {
                        Some(s) => (
                            s.name.clone(),
                            String::new(),
                            s.target.clone(),
                            "FailedGetResourceMetric",
                        ),
                        None => (
                            String::new(),
                            String::new(),
                            MetricTarget::default(),
                            "FailedGetResourceMetric",
                        ),
                    }
                };
                match self
                    .resource_generic(
                        io,
                        scale.replicas,
                        &target,
                        &resource,
                        &ns,
                        &container,
                        raw_selector,
                        selector,
                        container_source,
                        hpa,
                    )
                    .await
                {
                    Ok((replicas, value, name)) => {
                        let status = if container_source {
                            MetricStatus {
                                type_: "ContainerResource".into(),
                                container_resource: Some(ContainerResourceMetricStatus {
                                    name: resource,
                                    container,
                                    current: value,
                                }),
                                ..Default::default()
                            }
                        } else {
                            MetricStatus {
                                type_: "Resource".into(),
                                resource: Some(ResourceMetricStatus {
                                    name: resource,
                                    current: value,
                                }),
                                ..Default::default()
                            }
                        };
                        Ok(Proposal {
                            replicas,
                            name,
                            status,
                        })
                    }
                    Err(e) => {
                        let error = if container_source {
                            format!("failed to get {container} container metric value: {e}")
                        } else {
                            format!("failed to get {resource} resource metric value: {e}")
                        };
                        Err(self.failure(io, hpa, reason, &e, error))
                    }
                }
            }
            "External" => self.external_metric(io, hpa, spec, &ns),
            other => {
                let e = format!("unknown metric source type {other:?}");
                Err(self.failure(io, hpa, "InvalidMetricSourceType", &e, e.clone()))
            }
        }
    }

    /// `computeStatusForObjectMetric`: fails, as no custom metrics API is served.
    fn object_metric<I: Io>(
        &self,
        io: &I,
        hpa: &Hpa,
        spec: &MetricSpec,
        ns: &str,
    ) -> Result<Proposal, Failure> {
        let Some(src) = &spec.object else {
            let e = "invalid object metric source: neither a value target nor an average value target was set".to_string();
            return Err(self.failure(
                io,
                hpa,
                "FailedGetObjectMetric",
                &e,
                format!("failed to get object metric value: {e}"),
            ));
        };
        if let Err(e) = Selector::from_label_selector(src.metric.selector.as_ref()) {
            let e = e.to_string();
            return Err(self.failure(
                io,
                hpa,
                "FailedGetObjectMetric",
                &e,
                format!("failed to get object metric value: {e}"),
            ));
        }
        let inner = format!(
            "unable to get metric {}: {} on {} {}/{}",
            src.metric.name,
            src.described_object.kind,
            ns,
            src.described_object.name,
            metrics::custom_metrics_error()
        );
        let t = &src.target;
        let (cond_err, err) = if t.type_ == "Value" && t.value.is_some() {
            (inner.clone(), inner)
        } else if t.type_ == "AverageValue" && t.average_value.is_some() {
            (
                inner.clone(),
                format!("failed to get {} object metric: {inner}", src.metric.name),
            )
        } else {
            let e = "invalid object metric source: neither a value target nor an average value target was set".to_string();
            (e.clone(), e)
        };
        Err(self.failure(
            io,
            hpa,
            "FailedGetObjectMetric",
            &cond_err,
            format!("failed to get object metric value: {err}"),
        ))
    }

    /// `computeStatusForPodsMetric`: fails, as no custom metrics API is served.
    fn pods_metric<I: Io>(
        &self,
        io: &I,
        hpa: &Hpa,
        spec: &MetricSpec,
    ) -> Result<Proposal, Failure> {
        let Some(src) = &spec.pods else {
            let e = "invalid pods metric source".to_string();
            return Err(self.failure(
                io,
                hpa,
                "FailedGetPodsMetric",
                &e,
                format!("failed to get pods metric value: {e}"),
            ));
        };
        if let Err(e) = Selector::from_label_selector(src.metric.selector.as_ref()) {
            let e = e.to_string();
            return Err(self.failure(
                io,
                hpa,
                "FailedGetPodsMetric",
                &e,
                format!("failed to get pods metric value: {e}"),
            ));
        }
        let e = format!(
            "unable to get metric {}: {}",
            src.metric.name,
            metrics::custom_metrics_error()
        );
        Err(self.failure(
            io,
            hpa,
            "FailedGetPodsMetric",
            &e,
            format!("failed to get pods metric value: {e}"),
        ))
    }

    /// `computeStatusForExternalMetric`: fails, as no external metrics API is served.
    fn external_metric<I: Io>(
        &self,
        io: &I,
        hpa: &Hpa,
        spec: &MetricSpec,
        ns: &str,
    ) -> Result<Proposal, Failure> {
        let Some(src) = &spec.external else {
            let e = "invalid external metric source: neither a value target nor an average value target was set".to_string();
            return Err(self.failure(io, hpa, "FailedGetExternalMetric", &e, e.clone()));
        };
        let name = &src.metric.name;
        let inner = format!(
            "unable to get external metric {ns}/{name}/{}: {}",
            go_label_selector(src.metric.selector.as_ref()),
            metrics::external_metrics_error(name)
        );
        let err = if src.target.average_value.is_some() {
            format!("failed to get {name} external metric: {inner}")
        } else if src.target.value.is_some() {
            format!("failed to get external metric {name}: {inner}")
        } else {
            let e = "invalid external metric source: neither a value target nor an average value target was set".to_string();
            return Err(self.failure(
                io,
                hpa,
                "FailedGetExternalMetric",
                &e,
                format!("failed to get {name} external metric value: {e}"),
            ));
        };
        Err(self.failure(
            io,
            hpa,
            "FailedGetExternalMetric",
            &inner,
            format!("failed to get {name} external metric value: {err}"),
        ))
    }
    /// `computeStatusForResourceMetricGeneric`: a resource's proposal for
    /// a Utilization or AverageValue target.
    #[expect(
        clippy::too_many_arguments,
        reason = "Kubernetes' function, argument for argument"
    )]
    async fn resource_generic<I: Io>(
        &self,
        io: &I,
        current: i32,
        target: &MetricTarget,
        resource: &str,
        ns: &str,
        container: &str,
        raw_selector: &str,
        selector: &Selector,
        container_source: bool,
        hpa: &Hpa,
    ) -> Result<(i32, MetricValueStatus, String), String> {
        let tolerances = self.tolerances(hpa);
        let readiness = Readiness {
            cpu_initialization_period: self.config.cpu_initialization_period,
            initial_readiness_delay: self.config.initial_readiness_delay,
            now: self.clock.now(),
        };
        if let Some(q) = &target.average_value {
            let target_usage = milli(q);
            let metrics = self
                .resource_metric(io, ns, raw_selector, resource, container)
                .await
                .map_err(|e| format!("failed to get {resource} usage: {e}"))?;
            let pods = io.pods(ns, selector);
            let refs: Vec<&Pod> = pods.iter().map(Arc::as_ref).collect();
            let (replicas, usage) = calculator::plain_replicas(
                current,
                target_usage,
                resource,
                tolerances,
                &refs,
                metrics,
                readiness,
            )
            .map_err(|e| format!("failed to get {resource} usage: {e}"))?;
            return Ok((
                replicas,
                MetricValueStatus {
                    average_value: Some(quantity(usage)),
                    ..Default::default()
                },
                format!("{resource} resource"),
            ));
        }
        let Some(target_utilization) = target.average_utilization else {
            return Err("invalid resource metric source: neither an average utilization target nor an average value (usage) target was set".into());
        };
        let metrics = self
            .resource_metric(io, ns, raw_selector, resource, container)
            .await
            .map_err(|e| format!("failed to get {resource} utilization: {e}"))?;
        let pods = io.pods(ns, selector);
        let refs: Vec<&Pod> = pods.iter().map(Arc::as_ref).collect();
        let u = calculator::resource_replicas(
            current,
            target_utilization,
            resource,
            container,
            tolerances,
            &refs,
            metrics,
            readiness,
        )
        .map_err(|e| format!("failed to get {resource} utilization: {e}"))?;
        let name = if container_source {
            format!("{resource} container resource utilization (percentage of request)")
        } else {
            format!("{resource} resource utilization (percentage of request)")
        };
        Ok((
            u.replicas,
            MetricValueStatus {
                average_utilization: Some(u.utilization),
                average_value: Some(quantity(u.raw_average)),
                value: None,
            },
            name,
        ))
    }

    /// `GetResourceMetric` with its error wording.
    async fn resource_metric<I: Io>(
        &self,
        io: &I,
        ns: &str,
        selector: &str,
        resource: &str,
        container: &str,
    ) -> Result<metrics::PodMetricsInfo, String> {
        let wrap = |e: String| format!("unable to get metrics for resource {resource}: {e}");
        let items = io.pod_metrics(ns, selector).await.map_err(wrap)?;
        metrics::resource_metric(&items, resource, container)
            .map(|(m, _)| m)
            .map_err(wrap)
    }

    /// `tolerancesForHpa`: the flag's tolerance, or the behavior's own per
    /// direction.
    fn tolerances(&self, hpa: &Hpa) -> Tolerances {
        let mut t = Tolerances::both(self.config.tolerance);
        let behavior = hpa.spec.as_ref().and_then(|s| s.behavior.as_ref());
        if let Some(b) = behavior {
            if let Some(q) = b.scale_down.as_ref().and_then(|r| r.tolerance.as_ref()) {
                t.down = approximate(q);
            }
            if let Some(q) = b.scale_up.as_ref().and_then(|r| r.tolerance.as_ref()) {
                t.up = approximate(q);
            }
        }
        t
    }
}

struct MetricsOutcome {
    replicas: i32,
    metric: String,
    statuses: Option<Vec<MetricStatus>>,
    error: Option<String>,
}

/// A quantity's milli-value (`MilliValue`).
fn milli(q: &Quantity) -> i64 {
    ferrokube_api::quantity::parse_milli(&q.0).map_or(0, |m| i64::try_from(m).unwrap_or(i64::MAX))
}

/// A quantity as a float (`AsApproximateFloat64`).
fn approximate(q: &Quantity) -> f64 {
    ferrokube_api::quantity::parse_milli(&q.0).map_or(0.0, |m| m as f64 / 1000.0)
}

/// `resource.NewMilliQuantity(v, DecimalSI)`.
fn quantity(milli: i64) -> Quantity {
    Quantity(
        Qty {
            milli: i128::from(milli),
            binary: false,
        }
        .to_string(),
    )
}

/// A label selector as Go's `%+v` prints a `*metav1.LabelSelector`.
fn go_label_selector(s: Option<&LabelSelector>) -> String {
    let Some(s) = s else {
        return "nil".into();
    };
    let mut labels = String::from("map[string]string{");
    for (k, v) in s.match_labels.iter().flatten() {
        labels.push_str(&format!("{k}: {v},"));
    }
    labels.push('}');
    let mut exprs = String::from("[]LabelSelectorRequirement{");
    for e in s.match_expressions.iter().flatten() {
        exprs.push_str(&format!(
            "LabelSelectorRequirement{{Key:{},Operator:{},Values:[{}],}},",
            e.key,
            e.operator,
            e.values.clone().unwrap_or_default().join(" ")
        ));
    }
    exprs.push('}');
    format!("&LabelSelector{{MatchLabels:{labels},MatchExpressions:{exprs},}}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_selectors_print_as_go_prints_them() {
        assert_eq!(go_label_selector(None), "nil");
        let s: LabelSelector = serde_json::from_value(serde_json::json!({
            "matchLabels": {"b": "2", "a": "1"},
            "matchExpressions": [{"key": "k", "operator": "In", "values": ["x", "y"]}]
        }))
        .unwrap();
        assert_eq!(
            go_label_selector(Some(&s)),
            "&LabelSelector{MatchLabels:map[string]string{a: 1,b: 2,},MatchExpressions:[]LabelSelectorRequirement{LabelSelectorRequirement{Key:k,Operator:In,Values:[x y],},},}"
        );
    }

    #[test]
    fn milli_quantities_print_as_decimal_si() {
        assert_eq!(quantity(120).0, "120m");
        assert_eq!(quantity(2000).0, "2");
        assert_eq!(quantity(52_428_800_000).0, "52428800");
        assert_eq!(quantity(0).0, "0");
    }
}
