//! What an object costs against a ResourceQuota: Kubernetes' quota
//! evaluators (`pkg/quota/v1/evaluator/core`, `apiserver/pkg/quota/v1`),
//! shared by the quota controller (which sums what is stored) and the API
//! server's ResourceQuota admission (which charges what is written).
//!
//! Usage is a [`ResourceList`]: resource names to [`Qty`] amounts. Pods
//! cost `pods`, `count/pods` and their compute requests and limits (a pod in
//! a terminal phase, or past its deletion grace period, only `count/pods`);
//! services cost `services`, node ports and load balancers; claims cost
//! `persistentvolumeclaims` and storage, also per storage class; anything
//! else costs one `count/<resource>.<group>` (and the legacy name of
//! configmaps, secrets, replicationcontrollers and resourcequotas). Scopes
//! (`Terminating`, `NotTerminating`, `BestEffort`, `NotBestEffort`,
//! `PriorityClass`, `CrossNamespacePodAffinity`) select pods only: a quota
//! with scopes matches no other kind.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::Value;

use crate::quantity::parse_milli;

/// An amount of a resource: milli-units, and whether it prints in binary
/// suffixes (`Ki`, `Mi`, ...) as a quantity given so does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Qty {
    /// The amount in milli-units.
    pub milli: i128,
    /// Whether it prints with binary suffixes.
    pub binary: bool,
}

impl Qty {
    /// A whole number of units (object counts).
    pub fn count(n: i64) -> Qty {
        Qty {
            milli: i128::from(n) * 1000,
            binary: false,
        }
    }

    /// The quantity of a JSON string (`"500m"`, `"1Gi"`) or number.
    pub fn parse(v: &Value) -> Option<Qty> {
        let s = match v {
            Value::String(s) => s.trim().to_string(),
            Value::Number(n) => n.to_string(),
            _ => return None,
        };
        let milli = parse_milli(&s)?;
        let binary = s.ends_with('i');
        Some(Qty { milli, binary })
    }

    /// `self + other`; a zero takes the other's format, as Kubernetes'
    /// `Quantity.Add`.
    pub fn plus(self, other: Qty) -> Qty {
        Qty {
            milli: self.milli + other.milli,
            binary: if self.milli == 0 {
                other.binary
            } else {
                self.binary
            },
        }
    }

    /// This amount less `other` (the binary flag of this one).
    pub fn minus(self, other: Qty) -> Qty {
        Qty {
            milli: self.milli - other.milli,
            binary: self.binary,
        }
    }
}

/// Kubernetes' canonical form: binary suffixes for a binary quantity that
/// is a whole number of at least 1024, else the largest decimal suffix
/// that keeps it whole (`m` for fractions).
impl fmt::Display for Qty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.milli;
        if m == 0 {
            return f.write_str("0");
        }
        if m % 1000 != 0 {
            return write!(f, "{m}m");
        }
        let mut v = m / 1000;
        if self.binary && v.abs() >= 1024 {
            let mut i = 0;
            while v % 1024 == 0 && i < 6 {
                v /= 1024;
                i += 1;
            }
            let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][i];
            return write!(f, "{v}{suffix}");
        }
        let mut i = 0;
        while v % 1000 == 0 && i < 6 {
            v /= 1000;
            i += 1;
        }
        let suffix = ["", "k", "M", "G", "T", "P", "E"][i];
        write!(f, "{v}{suffix}")
    }
}

/// Resource names to amounts, sorted by name.
pub type ResourceList = BTreeMap<String, Qty>;

/// A JSON resource map (`spec.hard`, `status.used`) as a list; entries that
/// are not quantities are left out.
pub fn resource_list(v: Option<&Value>) -> ResourceList {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), Qty::parse(v)?)))
                .collect()
        })
        .unwrap_or_default()
}

/// The list as JSON, each amount in its canonical form.
pub fn to_json(list: &ResourceList) -> Value {
    Value::Object(
        list.iter()
            .map(|(k, q)| (k.clone(), Value::String(q.to_string())))
            .collect(),
    )
}

/// `a + b`, per resource.
pub fn add(a: &ResourceList, b: &ResourceList) -> ResourceList {
    let mut out = a.clone();
    for (k, q) in b {
        let sum = out.get(k).copied().unwrap_or_default().plus(*q);
        out.insert(k.clone(), sum);
    }
    out
}

/// `a - b` for the resources of `a`, never below zero.
pub fn subtract_non_negative(a: &ResourceList, b: &ResourceList) -> ResourceList {
    a.iter()
        .map(|(k, q)| {
            let mut d = q.minus(b.get(k).copied().unwrap_or_default());
            if d.milli < 0 {
                d.milli = 0;
            }
            (k.clone(), d)
        })
        .collect()
}

/// The entries of `list` named in `names`.
pub fn mask(list: &ResourceList, names: &BTreeSet<String>) -> ResourceList {
    list.iter()
        .filter(|(k, _)| names.contains(*k))
        .map(|(k, q)| (k.clone(), *q))
        .collect()
}

/// Whether both lists hold the same resources in the same amounts.
pub fn equals(a: &ResourceList, b: &ResourceList) -> bool {
    a.len() == b.len()
        && a.iter()
            .all(|(k, q)| b.get(k).is_some_and(|o| o.milli == q.milli))
}

/// `name=amount` pairs by name, comma-separated (Kubernetes' `prettyPrint`
/// for quota messages).
pub fn pretty(list: &ResourceList) -> String {
    list.iter()
        .map(|(k, q)| format!("{k}={q}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The object-count resource name of a group's resource:
/// `count/pods`, `count/deployments.apps`.
pub fn object_count_name(group: &str, resource: &str) -> String {
    if group.is_empty() {
        format!("count/{resource}")
    } else {
        format!("count/{resource}.{group}")
    }
}

/// The group and resource an object-count name counts.
pub fn parse_object_count_name(name: &str) -> Option<(String, String)> {
    let rest = name.strip_prefix("count/")?;
    Some(match rest.split_once('.') {
        Some((resource, group)) => (group.to_string(), resource.to_string()),
        None => (String::new(), rest.to_string()),
    })
}

/// The pre-`count/` names of core object counts.
pub fn legacy_count_name(group: &str, resource: &str) -> Option<&'static str> {
    if !group.is_empty() {
        return None;
    }
    Some(match resource {
        "configmaps" => "configmaps",
        "secrets" => "secrets",
        "replicationcontrollers" => "replicationcontrollers",
        "resourcequotas" => "resourcequotas",
        "persistentvolumeclaims" => "persistentvolumeclaims",
        "services" => "services",
        "pods" => "pods",
        _ => return None,
    })
}

/// Resources quota never tracks (events come and go too fast).
pub fn ignored(group: &str, resource: &str) -> bool {
    resource == "events" && (group.is_empty() || group == "events.k8s.io")
}

const POD_RESOURCES: [&str; 11] = [
    "count/pods",
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
];

const SERVICE_RESOURCES: [&str; 4] = [
    "count/services",
    "services",
    "services.nodeports",
    "services.loadbalancers",
];

/// Where per-class claim quota names end.
pub const STORAGE_CLASS_SUFFIX: &str = ".storageclass.storage.k8s.io/";

/// Whether a resource name is native to Kubernetes (no domain, or one of
/// `kubernetes.io`).
fn is_native(name: &str) -> bool {
    match name.split_once('/') {
        None => true,
        Some((domain, _)) => domain == "kubernetes.io" || domain.ends_with(".kubernetes.io"),
    }
}

/// Of the names in `hard`, those an object of `group`/`resource` is
/// charged for (Kubernetes' `MatchingResources`).
pub fn matching_resources(group: &str, resource: &str, hard: &[&str]) -> BTreeSet<String> {
    let own = |n: &str| -> bool {
        match (group, resource) {
            ("", "pods") => {
                POD_RESOURCES.contains(&n)
                    || n.starts_with("hugepages-")
                    || n.starts_with("requests.hugepages-")
                    || (n.starts_with("requests.") && !is_native(n))
            }
            ("", "services") => SERVICE_RESOURCES.contains(&n),
            ("", "persistentvolumeclaims") => {
                matches!(
                    n,
                    "count/persistentvolumeclaims" | "persistentvolumeclaims" | "requests.storage"
                ) || n.ends_with(".storageclass.storage.k8s.io/requests.storage")
                    || n.ends_with(".storageclass.storage.k8s.io/persistentvolumeclaims")
            }
            _ => {
                n == object_count_name(group, resource)
                    || legacy_count_name(group, resource) == Some(n)
            }
        }
    };
    hard.iter()
        .filter(|n| own(n))
        .map(|n| n.to_string())
        .collect()
}

/// Whether a write of `group`/`resource` (operation `CREATE` or `UPDATE`,
/// on `subresource`) can change quota usage (Kubernetes' `Handles`).
pub fn handles(group: &str, resource: &str, operation: &str, subresource: &str) -> bool {
    if ignored(group, resource) {
        return false;
    }
    match (group, resource) {
        ("", "pods") => {
            operation == "CREATE" && subresource.is_empty()
                || operation == "UPDATE" && subresource == "resize"
        }
        ("", "services") | ("", "persistentvolumeclaims") => subresource.is_empty(),
        _ => operation == "CREATE" && subresource.is_empty(),
    }
}

/// One requirement of a quota's scopes: `spec.scopes` entries are
/// `Exists` requirements, `spec.scopeSelector.matchExpressions` the rest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScopeRequirement {
    /// The scope (`Terminating`, `BestEffort`, `PriorityClass`, ...).
    pub scope_name: String,
    /// The operator: `Exists`, `DoesNotExist`, `In` or `NotIn`.
    pub operator: String,
    /// The values of `In` and `NotIn`.
    pub values: Vec<String>,
}

/// The scope requirements of a ResourceQuota object.
pub fn scope_requirements(quota: &Value) -> Vec<ScopeRequirement> {
    let mut out: Vec<ScopeRequirement> = quota
        .pointer("/spec/scopes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|s| ScopeRequirement {
            scope_name: s.to_string(),
            operator: "Exists".into(),
            values: Vec::new(),
        })
        .collect();
    for e in quota
        .pointer("/spec/scopeSelector/matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        out.push(ScopeRequirement {
            scope_name: s("scopeName"),
            operator: s("operator"),
            values: e
                .get("values")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
        });
    }
    out
}

/// Whether `obj` of `group`/`resource` is in the scope `req`: only pods
/// have scopes (Kubernetes' `MatchesNoScopeFunc` for everything else).
pub fn matches_scope(group: &str, resource: &str, req: &ScopeRequirement, obj: &Value) -> bool {
    if (group, resource) != ("", "pods") {
        return false;
    }
    match req.scope_name.as_str() {
        "Terminating" => is_terminating(obj),
        "NotTerminating" => !is_terminating(obj),
        "BestEffort" => is_best_effort(obj),
        "NotBestEffort" => !is_best_effort(obj),
        "PriorityClass" => {
            let class = obj
                .pointer("/spec/priorityClassName")
                .and_then(Value::as_str)
                .unwrap_or("");
            match req.operator.as_str() {
                "Exists" => !class.is_empty(),
                "DoesNotExist" => class.is_empty(),
                "In" => !class.is_empty() && req.values.iter().any(|v| v == class),
                "NotIn" => class.is_empty() || !req.values.iter().any(|v| v == class),
                _ => false,
            }
        }
        "CrossNamespacePodAffinity" => uses_cross_namespace_affinity(obj),
        _ => false,
    }
}

/// Whether `quota` (its `status.hard` names and scopes) covers `obj`.
pub fn matches(quota: &Value, group: &str, resource: &str, obj: &Value) -> bool {
    let hard = resource_list(quota.pointer("/status/hard"));
    let names: Vec<&str> = hard.keys().map(String::as_str).collect();
    !matching_resources(group, resource, &names).is_empty()
        && scope_requirements(quota)
            .iter()
            .all(|r| matches_scope(group, resource, r, obj))
}

fn is_terminating(pod: &Value) -> bool {
    pod.pointer("/spec/activeDeadlineSeconds")
        .and_then(Value::as_i64)
        .is_some_and(|s| s >= 0)
}

fn containers<'a>(pod: &'a Value, list: &str) -> impl Iterator<Item = &'a Value> {
    pod.pointer(&format!("/spec/{list}"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// The pod's QoS class is BestEffort: no container asks for or is limited
/// in cpu or memory.
pub fn is_best_effort(pod: &Value) -> bool {
    !containers(pod, "containers")
        .chain(containers(pod, "initContainers"))
        .any(|c| {
            ["requests", "limits"].iter().any(|k| {
                let l = resource_list(c.pointer(&format!("/resources/{k}")));
                ["cpu", "memory"]
                    .iter()
                    .any(|r| l.get(*r).is_some_and(|q| q.milli != 0))
            })
        })
}

fn uses_cross_namespace_affinity(pod: &Value) -> bool {
    let cross = |t: &Value| {
        t.get("namespaces")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
            || t.get("namespaceSelector").is_some_and(|s| !s.is_null())
    };
    ["podAffinity", "podAntiAffinity"].iter().any(|kind| {
        let Some(a) = pod.pointer(&format!("/spec/affinity/{kind}")) else {
            return false;
        };
        let required = a
            .get("requiredDuringSchedulingIgnoredDuringExecution")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(cross);
        let preferred = a
            .get("preferredDuringSchedulingIgnoredDuringExecution")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|w| w.get("podAffinityTerm"))
            .any(cross);
        required || preferred
    })
}

/// Whether a pod still counts against compute quota: not in a terminal
/// phase, and not past its deletion grace period (`now` in Unix seconds).
pub fn pod_counts(pod: &Value, now: i64) -> bool {
    let phase = pod.pointer("/status/phase").and_then(Value::as_str);
    if matches!(phase, Some("Failed" | "Succeeded")) {
        return false;
    }
    let deleted = pod
        .pointer("/metadata/deletionTimestamp")
        .and_then(Value::as_str)
        .and_then(parse_time);
    let grace = pod
        .pointer("/metadata/deletionGracePeriodSeconds")
        .and_then(Value::as_i64);
    if let (Some(at), Some(grace)) = (deleted, grace) {
        if now > at + grace {
            return false;
        }
    }
    true
}

/// An RFC 3339 time as Unix seconds.
fn parse_time(s: &str) -> Option<i64> {
    s.parse::<jiff::Timestamp>().ok().map(|t| t.as_second())
}

/// Element-wise maximum, the larger amount keeping its own format.
fn max_into(acc: &mut ResourceList, other: &ResourceList) {
    for (k, q) in other {
        match acc.get(k) {
            Some(have) if have.milli >= q.milli => {}
            _ => {
                acc.insert(k.clone(), *q);
            }
        }
    }
}

/// What the pod asks for (`what`: `requests` or `limits`): its containers
/// summed, with its restartable (sidecar) init containers, at least each
/// other init container plus the sidecars started before it, plus its
/// overhead (Kubernetes' `PodRequests` / `PodLimits`).
pub fn pod_resources(pod: &Value, what: &str) -> ResourceList {
    let mut total = container_resources(pod, what);
    let overhead = resource_list(pod.pointer("/spec/overhead"));
    if what == "requests" {
        total = add(&total, &overhead);
    } else {
        for (k, q) in &overhead {
            if let Some(have) = total.get(k).copied() {
                total.insert(k.clone(), have.plus(*q));
            }
        }
    }
    total
}

/// [`pod_resources`] without the pod's overhead (what LimitRanger
/// compares).
pub fn container_resources(pod: &Value, what: &str) -> ResourceList {
    let of = |c: &Value| resource_list(c.pointer(&format!("/resources/{what}")));
    let mut sum = ResourceList::new();
    for c in containers(pod, "containers") {
        sum = add(&sum, &of(c));
    }
    let mut sidecars = ResourceList::new();
    let mut init_max = ResourceList::new();
    for c in containers(pod, "initContainers") {
        let restartable = c.get("restartPolicy").and_then(Value::as_str) == Some("Always");
        if restartable {
            sidecars = add(&sidecars, &of(c));
            max_into(&mut init_max, &sidecars);
        } else {
            max_into(&mut init_max, &add(&of(c), &sidecars));
        }
    }
    let mut total = add(&sum, &sidecars);
    max_into(&mut total, &init_max);
    total
}

/// The compute usage of given requests and limits (Kubernetes'
/// `podComputeUsageHelper`): one pod, `cpu`/`memory`/`ephemeral-storage`
/// under their bare and `requests.` names, limits under `limits.`,
/// hugepages and extended resources under `requests.`.
pub fn compute_usage(requests: &ResourceList, limits: &ResourceList) -> ResourceList {
    let mut out = ResourceList::new();
    out.insert("pods".into(), Qty::count(1));
    for r in ["cpu", "memory", "ephemeral-storage"] {
        if let Some(q) = requests.get(r) {
            out.insert(r.into(), *q);
            out.insert(format!("requests.{r}"), *q);
        }
        if let Some(q) = limits.get(r) {
            out.insert(format!("limits.{r}"), *q);
        }
    }
    for (r, q) in requests {
        if r.starts_with("hugepages-") {
            out.insert(r.clone(), *q);
            out.insert(format!("requests.{r}"), *q);
        } else if !is_native(r) && !r.starts_with("requests.") {
            out.insert(format!("requests.{r}"), *q);
        }
    }
    out
}

/// What a pod costs (`now` in Unix seconds, for deletion grace).
pub fn pod_usage(pod: &Value, now: i64) -> ResourceList {
    let mut out = ResourceList::new();
    out.insert("count/pods".into(), Qty::count(1));
    if !pod_counts(pod, now) {
        return out;
    }
    let requests = pod_resources(pod, "requests");
    let limits = pod_resources(pod, "limits");
    add(&out, &compute_usage(&requests, &limits))
}

/// What a service costs: itself, its node ports (a NodePort or
/// LoadBalancer service's ports; a LoadBalancer without node-port
/// allocation only the ports that name one) and a load balancer.
pub fn service_usage(svc: &Value) -> ResourceList {
    let ports: Vec<&Value> = svc
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    let mut out = ResourceList::new();
    out.insert("count/services".into(), Qty::count(1));
    out.insert("services".into(), Qty::count(1));
    let mut node_ports = 0;
    let mut lbs = 0;
    match svc.pointer("/spec/type").and_then(Value::as_str) {
        Some("NodePort") => node_ports = ports.len(),
        Some("LoadBalancer") => {
            lbs = 1;
            node_ports = if svc.pointer("/spec/allocateLoadBalancerNodePorts")
                == Some(&Value::Bool(false))
            {
                ports
                    .iter()
                    .filter(|p| p.get("nodePort").and_then(Value::as_i64).unwrap_or(0) != 0)
                    .count()
            } else {
                ports.len()
            };
        }
        _ => {}
    }
    out.insert("services.nodeports".into(), Qty::count(node_ports as i64));
    out.insert("services.loadbalancers".into(), Qty::count(lbs));
    out
}

/// The storage class a claim asks for (the beta annotation first, as
/// Kubernetes reads it).
pub fn claim_storage_class(pvc: &Value) -> String {
    pvc.pointer("/metadata/annotations/volume.beta.kubernetes.io~1storage-class")
        .and_then(Value::as_str)
        .or_else(|| {
            pvc.pointer("/spec/storageClassName")
                .and_then(Value::as_str)
        })
        .unwrap_or("")
        .to_string()
}

/// What a claim costs: itself and its storage request (or what was
/// allocated, if more), also under its class's names.
pub fn claim_usage(pvc: &Value) -> ResourceList {
    let mut out = ResourceList::new();
    out.insert("count/persistentvolumeclaims".into(), Qty::count(1));
    out.insert("persistentvolumeclaims".into(), Qty::count(1));
    let class = claim_storage_class(pvc);
    if !class.is_empty() {
        out.insert(
            format!("{class}{STORAGE_CLASS_SUFFIX}persistentvolumeclaims"),
            Qty::count(1),
        );
    }
    let requested = pvc
        .pointer("/spec/resources/requests/storage")
        .and_then(Qty::parse);
    let allocated = pvc
        .pointer("/status/allocatedResources/storage")
        .and_then(Qty::parse);
    let storage = match (requested, allocated) {
        (Some(r), Some(a)) if a.milli > r.milli => Some(a),
        (Some(r), _) => Some(r),
        (None, a) => a,
    };
    if let Some(q) = storage {
        out.insert("requests.storage".into(), q);
        if !class.is_empty() {
            out.insert(format!("{class}{STORAGE_CLASS_SUFFIX}requests.storage"), q);
        }
    }
    out
}

/// What `obj` of `group`/`resource` costs.
pub fn usage(group: &str, resource: &str, obj: &Value, now: i64) -> ResourceList {
    match (group, resource) {
        ("", "pods") => pod_usage(obj, now),
        ("", "services") => service_usage(obj),
        ("", "persistentvolumeclaims") => claim_usage(obj),
        _ => {
            let mut out = ResourceList::new();
            out.insert(object_count_name(group, resource), Qty::count(1));
            if let Some(legacy) = legacy_count_name(group, resource) {
                out.insert(legacy.into(), Qty::count(1));
            }
            out
        }
    }
}

/// The cpu and memory resources a quota on which obliges every container
/// to state them (a backward-compatibility rule of Kubernetes).
const MUST_SPECIFY: [&str; 6] = [
    "cpu",
    "memory",
    "requests.cpu",
    "requests.memory",
    "limits.cpu",
    "limits.memory",
];

/// A pod that leaves unset requests or limits a quota tracks: which, for
/// which containers (`limits.cpu for: a,b; requests.memory for: a`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("must specify {0}")]
pub struct MissingConstraints(String);

/// Kubernetes' pod `Constraints`: with `required` (the quota's matching
/// resources), every container and init container must set the cpu and
/// memory requests and limits quota tracks. The error is
/// `must specify limits.cpu for: a,b; requests.memory for: a`.
pub fn pod_constraints(required: &BTreeSet<String>, pod: &Value) -> Result<(), MissingConstraints> {
    let required: BTreeSet<&str> = required
        .iter()
        .map(String::as_str)
        .filter(|r| MUST_SPECIFY.contains(r))
        .collect();
    if required.is_empty() {
        return Ok(());
    }
    let mut missing: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for c in containers(pod, "containers").chain(containers(pod, "initContainers")) {
        let usage = compute_usage(
            &resource_list(c.pointer("/resources/requests")),
            &resource_list(c.pointer("/resources/limits")),
        );
        let name = c.get("name").and_then(Value::as_str).unwrap_or("");
        for r in &required {
            if !usage.contains_key(*r) {
                missing.entry(r).or_default().insert(name.to_string());
            }
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let parts: Vec<String> = missing
        .iter()
        .map(|(r, names)| {
            format!(
                "{r} for: {}",
                names.iter().cloned().collect::<Vec<_>>().join(",")
            )
        })
        .collect();
    Err(MissingConstraints(parts.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn q(s: &str) -> Qty {
        Qty::parse(&json!(s)).unwrap()
    }

    #[test]
    fn quantities_print_in_kubernetes_canonical_form() {
        for (given, shown) in [
            ("1", "1"),
            ("0.5", "500m"),
            ("1500m", "1500m"),
            ("2000m", "2"),
            ("64Mi", "64Mi"),
            ("1Gi", "1Gi"),
            ("1536Mi", "1536Mi"),
            ("1000", "1k"),
            ("2G", "2G"),
            ("0", "0"),
            ("512", "512"),
        ] {
            assert_eq!(q(given).to_string(), shown, "{given}");
        }
        assert_eq!(q("1Gi").plus(q("512Mi")).to_string(), "1536Mi");
        assert_eq!(q("100m").plus(q("900m")).to_string(), "1");
        assert_eq!(Qty::default().plus(q("64Mi")).to_string(), "64Mi");
    }

    #[test]
    fn a_pod_costs_its_requests_and_limits_and_one_pod() {
        let pod = json!({"spec": {"containers": [
            {"name": "a", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "200m"}}},
            {"name": "b", "resources": {"requests": {"cpu": "400m", "nvidia.com/gpu": "1"}}},
        ], "initContainers": [
            {"name": "i", "resources": {"requests": {"cpu": "1", "memory": "1Mi"}}},
        ]}});
        let u = pod_usage(&pod, 0);
        let shown: BTreeMap<&str, String> =
            u.iter().map(|(k, v)| (k.as_str(), v.to_string())).collect();
        assert_eq!(shown["pods"], "1");
        assert_eq!(shown["count/pods"], "1");
        assert_eq!(
            shown["requests.cpu"], "1",
            "the init container is the larger"
        );
        assert_eq!(shown["cpu"], "1");
        assert_eq!(shown["requests.memory"], "64Mi");
        assert_eq!(shown["limits.cpu"], "200m");
        assert_eq!(shown["requests.nvidia.com/gpu"], "1");
        assert!(!shown.contains_key("limits.memory"));
    }

    #[test]
    fn terminal_and_long_deleted_pods_cost_only_their_count() {
        let done =
            json!({"status": {"phase": "Succeeded"}, "spec": {"containers": [{"name": "a"}]}});
        assert_eq!(
            pod_usage(&done, 0).keys().collect::<Vec<_>>(),
            ["count/pods"]
        );
        let deleting = json!({"metadata": {"deletionTimestamp": "2020-01-01T00:00:00Z", "deletionGracePeriodSeconds": 30},
            "spec": {"containers": [{"name": "a"}]}});
        let at = 1_577_836_800;
        assert!(pod_usage(&deleting, at + 10).contains_key("pods"));
        assert!(!pod_usage(&deleting, at + 31).contains_key("pods"));
    }

    #[test]
    fn services_and_claims() {
        let svc = json!({"spec": {"type": "LoadBalancer", "ports": [{"port": 80}, {"port": 443}]}});
        let u = service_usage(&svc);
        assert_eq!(u["services.nodeports"], Qty::count(2));
        assert_eq!(u["services.loadbalancers"], Qty::count(1));
        let pvc = json!({"spec": {"storageClassName": "gold", "resources": {"requests": {"storage": "1Gi"}}}});
        let u = claim_usage(&pvc);
        assert_eq!(u["requests.storage"].to_string(), "1Gi");
        assert_eq!(
            u["gold.storageclass.storage.k8s.io/requests.storage"].to_string(),
            "1Gi"
        );
        assert_eq!(
            u["gold.storageclass.storage.k8s.io/persistentvolumeclaims"],
            Qty::count(1)
        );
    }

    #[test]
    fn scopes_select_pods() {
        let be = json!({"spec": {"containers": [{"name": "a"}]}});
        let burst = json!({"spec": {"activeDeadlineSeconds": 5, "priorityClassName": "high",
            "containers": [{"name": "a", "resources": {"requests": {"cpu": "1"}}}]}});
        let quota = |spec: Value| json!({"spec": spec, "status": {"hard": {"pods": "5"}}});
        let best = quota(json!({"scopes": ["BestEffort"]}));
        assert!(matches(&best, "", "pods", &be));
        assert!(!matches(&best, "", "pods", &burst));
        let term = quota(json!({"scopes": ["Terminating", "NotBestEffort"]}));
        assert!(matches(&term, "", "pods", &burst));
        assert!(!matches(&term, "", "pods", &be));
        let pc = quota(json!({"scopeSelector": {"matchExpressions": [
            {"scopeName": "PriorityClass", "operator": "In", "values": ["high"]}]}}));
        assert!(matches(&pc, "", "pods", &burst));
        assert!(!matches(&pc, "", "pods", &be));
        let cm =
            json!({"status": {"hard": {"configmaps": "5"}}, "spec": {"scopes": ["BestEffort"]}});
        assert!(
            !matches(&cm, "", "configmaps", &json!({})),
            "scopes match pods only"
        );
        let no_status = json!({"spec": {"hard": {"pods": "5"}}});
        assert!(!matches(&no_status, "", "pods", &be), "status.hard decides");
    }

    #[test]
    fn object_counts_by_name() {
        let hard = [
            "count/deployments.apps",
            "configmaps",
            "count/configmaps",
            "pods",
        ];
        assert_eq!(
            matching_resources("apps", "deployments", &hard),
            BTreeSet::from(["count/deployments.apps".to_string()])
        );
        assert_eq!(matching_resources("", "configmaps", &hard).len(), 2);
        assert_eq!(
            parse_object_count_name("count/deployments.apps"),
            Some(("apps".into(), "deployments".into()))
        );
        assert_eq!(
            parse_object_count_name("count/secrets"),
            Some(("".into(), "secrets".into()))
        );
    }

    #[test]
    fn cpu_and_memory_quota_demand_every_container_say_them() {
        let pod = json!({"spec": {"containers": [
            {"name": "x", "resources": {"requests": {"cpu": "1"}}},
            {"name": "y"},
        ]}});
        let required = BTreeSet::from([
            "limits.cpu".to_string(),
            "requests.cpu".to_string(),
            "pods".to_string(),
        ]);
        assert_eq!(
            pod_constraints(&required, &pod).map_err(|e| e.to_string()),
            Err("must specify limits.cpu for: x,y; requests.cpu for: y".to_string())
        );
        assert_eq!(
            pod_constraints(&BTreeSet::from(["pods".to_string()]), &pod),
            Ok(())
        );
    }
}
