//! Pod and ownership helpers shared by the workload controllers: the label
//! selector type, pod readiness and availability, Kubernetes' order for
//! choosing which pods to delete first, controller references, and core/v1
//! Events as the Kubernetes controllers word them.

use std::cmp::Ordering;

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use kube::Resource;

/// The label selector type of the controllers: the one of the API
/// machinery (`Selector::from_label_selector` for a `metav1.LabelSelector`,
/// `Selector::from_map` for a Service's or ReplicationController's map).
pub(crate) use ferrokube_api::labels::Selector;

/// The controller reference among `meta`'s owner references.
pub(crate) fn controller_ref(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))
}

/// A controller reference to `owner` (blockOwnerDeletion set, as the
/// Kubernetes controllers do).
pub(crate) fn owner_ref_to<K: Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: owner.meta().name.clone().unwrap_or_default(),
        uid: owner.meta().uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Active: neither finished nor being deleted.
pub(crate) fn is_active(p: &Pod) -> bool {
    let phase = phase(p);
    phase != "Succeeded" && phase != "Failed" && p.metadata.deletion_timestamp.is_none()
}

pub(crate) fn phase(p: &Pod) -> &str {
    p.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// The time the pod last turned Ready, if it is Ready.
pub(crate) fn ready_since(p: &Pod) -> Option<Option<Timestamp>> {
    let c = p
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")?;
    (c.status == "True").then(|| c.last_transition_time.as_ref().map(|t| t.0))
}

pub(crate) fn is_ready(p: &Pod) -> bool {
    ready_since(p).is_some()
}

/// Ready for at least `min_ready_seconds` by `now`.
pub(crate) fn is_available(p: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    match ready_since(p) {
        None => false,
        Some(_) if min_ready_seconds <= 0 => true,
        Some(None) => false,
        Some(Some(t)) => t + jiff::SignedDuration::from_secs(i64::from(min_ready_seconds)) < now,
    }
}

/// When a ready pod becomes available, if it is not yet.
pub(crate) fn available_in(
    p: &Pod,
    min_ready_seconds: i32,
    now: Timestamp,
) -> Option<std::time::Duration> {
    if min_ready_seconds <= 0 {
        return None;
    }
    let Some(Some(t)) = ready_since(p) else {
        return None;
    };
    let at = t + jiff::SignedDuration::from_secs(i64::from(min_ready_seconds));
    let left = at.duration_since(now);
    (left >= jiff::SignedDuration::ZERO)
        .then(|| std::time::Duration::try_from(left).ok())
        .flatten()
        .map(|d| d + std::time::Duration::from_millis(100))
}

fn phase_ordinal(p: &Pod) -> u8 {
    match phase(p) {
        "Pending" => 0,
        "Unknown" => 1,
        "Running" => 2,
        _ => 0,
    }
}

fn max_restarts(p: &Pod) -> i32 {
    p.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(|cs| cs.iter().map(|c| c.restart_count).max().unwrap_or(0))
        .unwrap_or(0)
}

fn deletion_cost(p: &Pod) -> i32 {
    p.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("controller.kubernetes.io/pod-deletion-cost"))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The logarithmic bucket of how long ago `t` was (Kubernetes'
/// LogarithmicScaleDown: times in the same power-of-two bucket are equal).
fn log_bucket(t: Timestamp, now: Timestamp) -> i64 {
    let d = now.duration_since(t).as_nanos();
    if d > 0 {
        (d as f64).log2() as i64
    } else {
        -1
    }
}

/// How long ago `t` was, as a rank for [`deletion_order`]: a missing time
/// first (Kubernetes' afterOrZero), then newer before older by logarithmic
/// bucket, times in one bucket alike.
fn age_rank(t: Option<Timestamp>, now: Timestamp) -> Option<i64> {
    t.map(|t| log_bucket(t, now))
}

/// Kubernetes' deletion preference (`ActivePodsWithRanks`): `Less` means
/// "delete first". `rank` is how many related pods share the pod's node.
pub(crate) fn deletion_order(a: (&Pod, usize), b: (&Pod, usize), now: Timestamp) -> Ordering {
    let (pa, ra) = a;
    let (pb, rb) = b;
    let na = pa
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("");
    let nb = pb
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("");
    // 1. Unassigned before assigned.
    if na != nb && (na.is_empty() || nb.is_empty()) {
        return if na.is_empty() {
            Ordering::Less
        } else {
            Ordering::Greater
        };
    }
    // 2. Pending < Unknown < Running.
    let (oa, ob) = (phase_ordinal(pa), phase_ordinal(pb));
    if oa != ob {
        return oa.cmp(&ob);
    }
    // 3. Not ready before ready.
    let (rda, rdb) = (is_ready(pa), is_ready(pb));
    if rda != rdb {
        return if !rda {
            Ordering::Less
        } else {
            Ordering::Greater
        };
    }
    // 4. Lower deletion cost first.
    let (ca, cb) = (deletion_cost(pa), deletion_cost(pb));
    if ca != cb {
        return ca.cmp(&cb);
    }
    // 5. More pods doubled up on the node first.
    if ra != rb {
        return rb.cmp(&ra);
    }
    // 6. Ready more recently first.
    if rda && rdb {
        let o =
            age_rank(ready_since(pa).flatten(), now).cmp(&age_rank(ready_since(pb).flatten(), now));
        if o != Ordering::Equal {
            return o;
        }
    }
    // 7. More restarts first.
    let (xa, xb) = (max_restarts(pa), max_restarts(pb));
    if xa != xb {
        return xb.cmp(&xa);
    }
    // 8. Newer first.
    let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
    let o = age_rank(created(pa), now).cmp(&age_rank(created(pb), now));
    if o != Ordering::Equal {
        return o;
    }
    // 9. The uid, so that this is a total order (Rust's sort demands one).
    // Kubernetes compares uids as soon as two times differ within one
    // bucket, which skips the later steps for some pairs and not for
    // others: not transitive, and a sort of many pods panicked on it.
    pa.metadata
        .uid
        .as_deref()
        .unwrap_or("")
        .cmp(pb.metadata.uid.as_deref().unwrap_or(""))
}

/// Whether a pod belongs in a Service's endpoints at all: it has an IP, is
/// not being deleted (unless `include_terminating`), and will not stop for
/// good (by its restart policy). Kubernetes' ShouldPodBeInEndpoints.
pub(crate) fn should_be_in_endpoints(p: &Pod, include_terminating: bool) -> bool {
    let ip = p
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.as_deref())
        .unwrap_or("");
    if ip.is_empty() {
        return false;
    }
    if !include_terminating && p.metadata.deletion_timestamp.is_some() {
        return false;
    }
    let policy = p
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always");
    match policy {
        "Never" => !matches!(phase(p), "Failed" | "Succeeded"),
        "OnFailure" => phase(p) != "Succeeded",
        _ => true,
    }
}

/// The container port a Service port reaches on `p`: a named targetPort is
/// looked up among the pod's container ports (same protocol); a number is
/// used as is (zero or absent: the Service port). Kubernetes' FindPort.
pub(crate) fn find_port(p: &Pod, sp: &k8s_openapi::api::core::v1::ServicePort) -> Option<i32> {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    let protocol = sp.protocol.as_deref().unwrap_or("TCP");
    match &sp.target_port {
        Some(IntOrString::String(name)) => {
            if let Ok(n) = name.parse::<i32>() {
                return Some(n);
            }
            p.spec.as_ref()?.containers.iter().find_map(|c| {
                c.ports.iter().flatten().find_map(|cp| {
                    (cp.name.as_deref() == Some(name.as_str())
                        && cp.protocol.as_deref().unwrap_or("TCP") == protocol)
                        .then_some(cp.container_port)
                })
            })
        }
        Some(IntOrString::Int(n)) if *n != 0 => Some(*n),
        _ => Some(sp.port),
    }
}

/// The HTTP status code of an API error, if the server answered.
pub(crate) fn api_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

/// An error as Kubernetes' controllers put it in their Events: the
/// server's `Status` message when it answered (`pods "x" is forbidden:
/// ...`), else the error itself.
pub(crate) fn error_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) if !s.message.is_empty() => s.message.clone(),
        other => other.to_string(),
    }
}

/// A new core/v1 Event about `obj` (count 1, first and last seen `now`), as
/// Kubernetes' controllers' recorders write them.
pub(crate) fn new_event<K: Resource<DynamicType = ()>>(
    component: &str,
    obj: &K,
    type_: &str,
    reason: &str,
    message: String,
    now: Timestamp,
) -> Event {
    let meta = obj.meta();
    let ns = meta.namespace.clone().unwrap_or_else(|| "default".into());
    let name = meta.name.clone().unwrap_or_default();
    Event {
        metadata: ObjectMeta {
            name: Some(format!("{name}.{:x}", now.as_nanosecond())),
            namespace: Some(ns.clone()),
            ..Default::default()
        },
        involved_object: ObjectReference {
            api_version: Some(K::api_version(&()).into_owned()),
            kind: Some(K::kind(&()).into_owned()),
            name: Some(name),
            namespace: meta.namespace.clone(),
            uid: meta.uid.clone(),
            resource_version: meta.resource_version.clone(),
            ..Default::default()
        },
        reason: Some(reason.into()),
        message: Some(message),
        type_: Some(type_.into()),
        source: Some(EventSource {
            component: Some(component.into()),
            host: None,
        }),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        event_time: None::<MicroTime>,
        count: Some(1),
        reporting_component: Some(component.into()),
        reporting_instance: Some(component.into()),
        ..Default::default()
    }
}

/// Records a core/v1 Event about `obj` (best effort, in the background: an
/// Event that cannot be written is only logged).
pub(crate) fn record_event<K: Resource<DynamicType = ()>>(
    client: &kube::Client,
    component: &str,
    obj: &K,
    type_: &str,
    reason: &str,
    message: String,
) {
    let event = new_event(component, obj, type_, reason, message, Timestamp::now());
    let ns = event.metadata.namespace.clone().unwrap_or_default();
    let api: Api<Event> = Api::namespaced(client.clone(), &ns);
    tokio::spawn(async move {
        if let Err(e) = api.create(&PostParams::default(), &event).await {
            tracing::debug!(error = %e, "writing an event");
        }
    });
}

#[cfg(test)]
mod error_message_tests {
    use super::*;

    #[test]
    fn events_carry_the_servers_message() {
        let status: kube::core::Status = serde_json::from_value(serde_json::json!({
            "status": "Failure", "code": 403, "reason": "Forbidden",
            "message": "pods \"p\" is forbidden: violates PodSecurity \"baseline:latest\": privileged"
        }))
        .unwrap();
        assert_eq!(
            error_message(&kube::Error::Api(Box::new(status))),
            "pods \"p\" is forbidden: violates PodSecurity \"baseline:latest\": privileged"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodSpec, PodStatus};

    fn pod(node: &str, phase: &str, ready: bool) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(format!("{node}-{phase}-{ready}")),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: (!node.is_empty()).then(|| node.to_string()),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn deletion_prefers_unassigned_then_pending_then_not_ready() {
        let now = Timestamp::now();
        let mut pods = [
            pod("n1", "Running", true),
            pod("n1", "Running", false),
            pod("n1", "Pending", false),
            pod("", "Running", true),
            pod("n1", "Unknown", false),
        ];
        pods.sort_by(|a, b| deletion_order((a, 0), (b, 0), now));
        let names: Vec<_> = pods
            .iter()
            .map(|p| p.metadata.name.clone().unwrap_or_default())
            .collect();
        assert_eq!(
            names,
            [
                "-Running-true",
                "n1-Pending-false",
                "n1-Unknown-false",
                "n1-Running-false",
                "n1-Running-true"
            ]
        );
    }

    #[test]
    fn deletion_order_is_a_total_order_over_pods_of_like_ages() {
        use k8s_openapi::api::core::v1::ContainerStatus;
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
        let now = Timestamp::now();
        // Creation times a few seconds apart (many share a logarithmic
        // bucket), some equal, restarts that differ: the mix on which the
        // old comparison was not transitive.
        let pods: Vec<Pod> = (0..40i64)
            .map(|i| {
                let mut p = pod("n1", "Running", false);
                p.metadata.uid = Some(format!("uid-{:02}", (i * 17) % 40));
                p.metadata.creation_timestamp = Some(Time(
                    now - jiff::SignedDuration::from_secs(60 + (i % 13) * 3),
                ));
                if let Some(status) = p.status.as_mut() {
                    status.container_statuses = Some(vec![ContainerStatus {
                        restart_count: (i % 3) as i32,
                        ..Default::default()
                    }]);
                }
                p
            })
            .collect();
        let cmp = |a: &Pod, b: &Pod| deletion_order((a, 0), (b, 0), now);
        for a in &pods {
            for b in &pods {
                assert_eq!(cmp(a, b), cmp(b, a).reverse(), "antisymmetric");
                for c in &pods {
                    if cmp(a, b) != Ordering::Greater && cmp(b, c) != Ordering::Greater {
                        assert_ne!(cmp(a, c), Ordering::Greater, "transitive");
                    }
                }
            }
        }
        let mut sorted = pods.clone();
        sorted.sort_by(cmp);
        assert!(sorted
            .windows(2)
            .all(|w| cmp(&w[0], &w[1]) != Ordering::Greater));
    }
}
