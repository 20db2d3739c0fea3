//! ResourceQuota admission (Kubernetes' `ResourceQuota` plugin, the last of
//! the admission order): a namespaced write that changes what quota
//! tracks is charged to every quota of its namespace that covers it, or
//! refused with Kubernetes' messages:
//!
//! - `exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2`
//! - `status unknown for quota: q, resources: pods` (the controller has not
//!   counted yet)
//! - `failed quota: q: must specify limits.cpu for: a; requests.cpu for: a`
//!
//! all as 403 Forbidden. The charge is written into the quota's
//! `status.used` with a resourceVersion precondition before the object is
//! stored, re-read and retried on conflict, so concurrent writes can never
//! take more than the quota holds (the quota controller later recounts
//! what is stored). As in Kubernetes, the writes of a namespace waiting
//! meanwhile are charged together: one request leads, checking each write
//! against the quotas the writes before it left, and writes each quota
//! once per batch. A quota only matches through its `status.hard`, as in
//! Kubernetes: one the controller has not seen yet limits nothing.
//!
//! The namespace's quotas are found in the watch cache; Kubernetes also
//! reads them from an informer.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use ferrokube_api::quota::Qty;
use ferrokube_api::quota::{self as q, ResourceList};
use ferrokube_api::registry::ResourceDef;
use ferrokube_api::status::{ApiError, FieldError};

use crate::options::WriteOptions;
use crate::rest::{ApiResult, Rest};

/// How often a charge is tried again after its quota changed under it.
const ATTEMPTS: usize = 32;

/// The field manager of the quota status writes.
const MANAGER: &str = "kube-apiserver";

/// One write as quota sees it.
pub(crate) struct Request<'a> {
    pub group: &'a str,
    pub resource: &'a str,
    /// The object as it would be stored.
    pub obj: &'a Value,
    /// On update, the object as stored now.
    pub old: Option<&'a Value>,
    /// Unix seconds (a deleted pod's grace).
    pub now: i64,
}

/// A quota's new `status.used`, by index in the quotas checked.
pub(crate) type Charges = Vec<(usize, ResourceList)>;

fn quota_name(quota: &Value) -> &str {
    quota
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Kubernetes' `CheckRequest`: which of `quotas` the request is charged
/// to and their usage after it, or the refusal's message.
fn check(quotas: &[Value], req: &Request) -> Result<Charges, String> {
    let (group, resource) = (req.group, req.resource);
    let mut interesting = Vec::new();
    for (i, quota) in quotas.iter().enumerate() {
        if !q::matches(quota, group, resource, req.obj) {
            continue;
        }
        let name = quota_name(quota);
        let hard = q::resource_list(quota.pointer("/status/hard"));
        let used = q::resource_list(quota.pointer("/status/used"));
        let names: Vec<&str> = hard.keys().map(String::as_str).collect();
        let restricted = q::matching_resources(group, resource, &names);
        if (group, resource) == ("", "pods") {
            q::pod_constraints(&restricted, req.obj)
                .map_err(|e| format!("failed quota: {name}: {e}"))?;
        }
        if restricted.iter().any(|r| !used.contains_key(r)) {
            return Err(format!(
                "status unknown for quota: {name}, resources: {}",
                restricted.iter().cloned().collect::<Vec<_>>().join(",")
            ));
        }
        interesting.push(i);
    }
    if interesting.is_empty() {
        return Ok(Vec::new());
    }
    let input = q::usage(group, resource, req.obj, req.now);
    let negative: Vec<&str> = input
        .iter()
        .filter(|(_, v)| v.milli < 0)
        .map(|(k, _)| k.as_str())
        .collect();
    if !negative.is_empty() {
        return Err(format!(
            "quota usage is negative for resource(s): {}",
            negative.join(",")
        ));
    }
    let mut charges = Vec::new();
    for i in interesting {
        let quota = &quotas[i];
        let mut delta = input.clone();
        if let Some(old) = req.old {
            if q::matches(quota, group, resource, old) {
                let prev = q::usage(group, resource, old, req.now);
                delta = q::subtract_non_negative(&input, &prev);
            }
        }
        delta.retain(|_, v| v.milli != 0);
        if delta.is_empty() {
            continue;
        }
        let hard = q::resource_list(quota.pointer("/status/hard"));
        let used = q::resource_list(quota.pointer("/status/used"));
        let hard_names: BTreeSet<String> = hard.keys().cloned().collect();
        let requested = q::mask(&delta, &hard_names);
        let new_used = q::add(&used, &requested);
        let exceeded: BTreeSet<String> = requested
            .keys()
            .filter(|k| {
                let after = new_used.get(*k).map_or(0, |v| v.milli);
                hard.get(*k).is_some_and(|h| after > h.milli)
            })
            .cloned()
            .collect();
        if !exceeded.is_empty() {
            return Err(format!(
                "exceeded quota: {}, requested: {}, used: {}, limited: {}",
                quota_name(quota),
                q::pretty(&q::mask(&requested, &exceeded)),
                q::pretty(&q::mask(&used, &exceeded)),
                q::pretty(&q::mask(&hard, &exceeded)),
            ));
        }
        charges.push((i, new_used));
    }
    Ok(charges)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The quotas of `namespace` in the watch cache.
fn cached_quotas(rest: &Rest, quota_def: &ResourceDef, namespace: &str) -> Vec<Value> {
    let Some(cache) = rest.cache.resource(quota_def.storage_prefix) else {
        return Vec::new();
    };
    cache
        .list(&format!("{}{namespace}/", quota_def.storage_prefix))
        .iter()
        .filter_map(|o| serde_json::from_slice(&o.json).ok())
        .collect()
}

/// The future of [`admit`], boxed: charging a quota is itself an update
/// that passes through admission.
pub(crate) type Admission<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = ApiResult<()>> + Send + 'a>>;

/// Admits a write of `obj` (named `name`, in `namespace`; `old` on update)
/// against the namespace's quotas, charging them unless `dry_run`.
pub(crate) fn admit<'a>(
    rest: &'a Rest,
    def: &'a ResourceDef,
    namespace: &'a str,
    name: &'a str,
    old: Option<&'a Value>,
    obj: &'a Value,
    dry_run: bool,
) -> Admission<'a> {
    Box::pin(admit_write(rest, def, namespace, name, old, obj, dry_run))
}

async fn admit_write(
    rest: &Rest,
    def: &ResourceDef,
    namespace: &str,
    name: &str,
    old: Option<&Value>,
    obj: &Value,
    dry_run: bool,
) -> ApiResult<()> {
    let operation = if old.is_some() { "UPDATE" } else { "CREATE" };
    if !def.namespaced || namespace.is_empty() || !q::handles(def.group, def.plural, operation, "")
    {
        return Ok(());
    }
    let Some(quota_def) = rest.kinds.get("", "v1", "resourcequotas") else {
        return Ok(());
    };
    let quotas = cached_quotas(rest, &quota_def, namespace);
    // No quota of the namespace covers it: nothing to charge or refuse.
    if quotas
        .iter()
        .all(|quota| !q::matches(quota, def.group, def.plural, obj))
    {
        return Ok(());
    }
    let key = (rest as *const Rest as usize, namespace.to_string());
    loop {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let lead = {
            let mut batches = BATCHES.lock();
            let batch = batches.entry(key.clone()).or_default();
            batch.pending.push(Work {
                group: def.group,
                resource: def.plural,
                name: name.to_string(),
                obj: obj.clone(),
                old: old.cloned(),
                dry_run,
                reply: tx,
            });
            !std::mem::replace(&mut batch.leading, true)
        };
        if lead {
            // This request charges the namespace's waiting writes, batch
            // by batch, until none is left (Kubernetes' quota evaluator
            // does the same with worker goroutines).
            let guard = Leading(key.clone());
            loop {
                let works = {
                    let mut batches = BATCHES.lock();
                    match batches.get_mut(&key) {
                        Some(b) if !b.pending.is_empty() => std::mem::take(&mut b.pending),
                        _ => break,
                    }
                };
                charge_batch(rest, &quota_def, namespace, works).await;
            }
            drop(guard);
        }
        match rx.await {
            Ok(result) => return result,
            // The request leading the batch went away before answering
            // (its client left): queue again.
            Err(_) => continue,
        }
    }
}

/// A write waiting to be charged.
struct Work {
    group: &'static str,
    resource: &'static str,
    name: String,
    obj: Value,
    old: Option<Value>,
    dry_run: bool,
    reply: tokio::sync::oneshot::Sender<ApiResult<()>>,
}

/// The writes of one namespace waiting, and whether a request is charging
/// them.
#[derive(Default)]
struct Batch {
    pending: Vec<Work>,
    leading: bool,
}

/// Batches by server (its `Rest`'s address) and namespace.
static BATCHES: std::sync::LazyLock<parking_lot::Mutex<HashMap<(usize, String), Batch>>> =
    std::sync::LazyLock::new(Default::default);

/// Held by the request charging a namespace's batches: when it is done (or
/// dropped), the namespace has no leader, and writes still waiting are
/// answered with a closed channel so that their requests queue again.
struct Leading((usize, String));

impl Drop for Leading {
    fn drop(&mut self) {
        let mut batches = BATCHES.lock();
        if let Some(b) = batches.remove(&self.0) {
            drop(b.pending);
        }
    }
}

/// Charges a batch of writes: each is checked against the quotas as the
/// writes before it left them, then every quota that changed is written
/// once with its resourceVersion as precondition. Quotas that changed
/// meanwhile are read again and the writes charged to them checked again
/// (the others keep their charge), as Kubernetes' `checkQuotas` does.
async fn charge_batch(rest: &Rest, quota_def: &ResourceDef, namespace: &str, works: Vec<Work>) {
    let mut results: Vec<Option<ApiResult<()>>> = works.iter().map(|_| None).collect();
    let mut quotas = cached_quotas(rest, quota_def, namespace);
    let now = now();
    let mut settled = false;
    for _ in 0..ATTEMPTS {
        let mut copy = quotas.clone();
        let mut changed = BTreeSet::new();
        for (w, result) in works.iter().zip(results.iter_mut()) {
            if result.is_some() {
                continue;
            }
            let req = Request {
                group: w.group,
                resource: w.resource,
                obj: &w.obj,
                old: w.old.as_ref(),
                now,
            };
            match check(&copy, &req) {
                Err(why) => {
                    *result = Some(Err(ApiError::forbidden_on(
                        w.group, w.resource, &w.name, &why,
                    )))
                }
                Ok(charges) if !w.dry_run => {
                    for (i, used) in charges {
                        copy[i]["status"]["used"] = q::to_json(&used);
                        changed.insert(i);
                    }
                }
                Ok(_) => {}
            }
        }
        let mut failed = Vec::new();
        for i in changed {
            let qname = quota_name(&copy[i]).to_string();
            let opts = WriteOptions {
                manager: MANAGER.into(),
                ..Default::default()
            };
            let written = rest
                .update(
                    quota_def,
                    namespace,
                    &qname,
                    copy[i].clone(),
                    "status",
                    &opts,
                )
                .await;
            match written {
                Ok(_) => {}
                Err(e) if e.code == 409 => failed.push(qname),
                // A quota deleted meanwhile limits nothing.
                Err(e) if e.code == 404 => {}
                Err(e) => {
                    for r in results.iter_mut().filter(|r| r.is_none()) {
                        *r = Some(Err(e.clone()));
                    }
                }
            }
        }
        if failed.is_empty() {
            settled = true;
            break;
        }
        quotas.clear();
        for qname in failed {
            match rest.get(quota_def, namespace, &qname).await {
                Ok(v) => quotas.push(v),
                Err(e) if e.code == 404 => {}
                Err(e) => {
                    for r in results.iter_mut().filter(|r| r.is_none()) {
                        *r = Some(Err(e.clone()));
                    }
                }
            }
        }
        if quotas.is_empty() || results.iter().all(Option::is_some) {
            settled = true;
            break;
        }
    }
    for (w, result) in works.into_iter().zip(results) {
        let result = match result {
            Some(r) => r,
            None if settled => Ok(()),
            // Still undecided after every attempt: the quotas kept changing.
            None => Err(ApiError::internal("resource quota evaluation timed out")),
        };
        let _ = w.reply.send(result);
    }
}

/// The quota resource names Kubernetes knows (`standardQuotaResources`).
const STANDARD_QUOTA: [&str; 19] = [
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.storage",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
    "services",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "persistentvolumeclaims",
    "configmaps",
    "services.nodeports",
    "services.loadbalancers",
];

/// Counts, which must be whole.
const INTEGER_RESOURCES: [&str; 9] = [
    "pods",
    "services",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "services.nodeports",
    "services.loadbalancers",
];

const SCOPES: [&str; 6] = [
    "Terminating",
    "NotTerminating",
    "BestEffort",
    "NotBestEffort",
    "PriorityClass",
    "CrossNamespacePodAffinity",
];

fn standard_quota_name(name: &str) -> bool {
    STANDARD_QUOTA.contains(&name)
        || name.starts_with("hugepages-")
        || name.starts_with("requests.hugepages-")
}

/// Whether `scope` may limit `resource` (Kubernetes'
/// `IsResourceQuotaScopeValidForResource`).
fn scope_allows(scope: &str, resource: &str) -> bool {
    match scope {
        "BestEffort" => resource == "pods",
        "Terminating"
        | "NotTerminating"
        | "NotBestEffort"
        | "PriorityClass"
        | "CrossNamespacePodAffinity" => matches!(
            resource,
            "pods"
                | "cpu"
                | "memory"
                | "requests.cpu"
                | "requests.memory"
                | "limits.cpu"
                | "limits.memory"
        ),
        _ => false,
    }
}

/// The errors of one resource map (`spec.hard`, `status.used`, ...) at `path`.
fn validate_resources(map: Option<&Value>, path: &str, errors: &mut Vec<FieldError>) {
    let Some(map) = map.and_then(Value::as_object) else {
        return;
    };
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    for k in keys {
        let at = format!("{path}[{k}]");
        if !k.contains('/') {
            if !standard_quota_name(k) && k != "storage" {
                errors.push(FieldError::invalid(
                    &at,
                    k.as_str(),
                    "must be a standard resource type or fully qualified",
                ));
            }
            if !standard_quota_name(k) {
                errors.push(FieldError::invalid(
                    &at,
                    k.as_str(),
                    "must be a standard resource for quota",
                ));
            }
        }
        let Some(qty) = Qty::parse(&map[k]) else {
            continue;
        };
        if qty.milli < 0 {
            errors.push(FieldError::invalid(
                &at,
                qty.to_string(),
                "must be greater than or equal to 0",
            ));
        }
        let integer = INTEGER_RESOURCES.contains(&k.as_str())
            || (k.contains('/') && !k.starts_with("requests.") && !k.contains("kubernetes.io/"));
        if integer && qty.milli % 1000 != 0 {
            errors.push(FieldError::invalid(
                &at,
                qty.to_string(),
                "must be an integer",
            ));
        }
    }
}

fn scopes_of(quota: &Value) -> Vec<String> {
    quota
        .pointer("/spec/scopes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

/// Scopes as Go prints them in a field error.
fn shown_scopes(scopes: &[String]) -> String {
    if scopes.is_empty() {
        return "[]core.ResourceQuotaScope(nil)".into();
    }
    format!(
        "[]core.ResourceQuotaScope{{{}}}",
        scopes
            .iter()
            .map(|s| format!("{s:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// A quota's scopes may not change (as sets).
pub(crate) fn validate_update(old: &Value, new: &Value) -> Vec<FieldError> {
    let (a, b) = (scopes_of(old), scopes_of(new));
    let set = |v: &[String]| v.iter().cloned().collect::<BTreeSet<_>>();
    if set(&a) == set(&b) {
        return Vec::new();
    }
    vec![FieldError::invalid_shown(
        "spec.scopes",
        shown_scopes(&b),
        "field is immutable",
    )]
}

/// Kubernetes' ResourceQuota validation: the hard limits' (and status')
/// names and amounts, and scopes that are known, apply to every limited
/// resource and do not contradict each other.
pub(crate) fn validate(quota: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    validate_resources(quota.pointer("/spec/hard"), "spec.hard", &mut errors);
    let scopes = scopes_of(quota);
    if !scopes.is_empty() {
        let shown = shown_scopes(&scopes);
        let hard: Vec<String> = quota
            .pointer("/spec/hard")
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        let mut details = Vec::new();
        for scope in &scopes {
            if !SCOPES.contains(&scope.as_str()) {
                details.push("unsupported scope");
            }
            if hard
                .iter()
                .any(|k| standard_quota_name(k) && !scope_allows(scope, k))
            {
                details.push("unsupported scope applied to resource");
            }
        }
        for (a, b) in [
            ("BestEffort", "NotBestEffort"),
            ("Terminating", "NotTerminating"),
        ] {
            if scopes.iter().any(|s| s == a) && scopes.iter().any(|s| s == b) {
                details.push("conflicting scopes");
            }
        }
        let mut seen = BTreeSet::new();
        for d in details {
            if seen.insert(d) {
                errors.push(FieldError::invalid_shown("spec.scopes", &shown, d));
            }
        }
    }
    validate_resources(quota.pointer("/status/hard"), "status.hard", &mut errors);
    validate_resources(quota.pointer("/status/used"), "status.used", &mut errors);
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn quota(name: &str, hard: Value, used: Value) -> Value {
        json!({"metadata": {"name": name}, "spec": {"hard": hard.clone()},
            "status": {"hard": hard, "used": used}})
    }

    fn pod(resources: Value) -> Value {
        json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "resources": resources}]}})
    }

    fn create<'a>(obj: &'a Value) -> Request<'a> {
        Request {
            group: "",
            resource: "pods",
            obj,
            old: None,
            now: 0,
        }
    }

    #[test]
    fn the_pod_over_the_count_is_refused_with_kubernetes_message() {
        let quotas = [quota("q", json!({"pods": "2"}), json!({"pods": "2"}))];
        let p = pod(json!({}));
        assert_eq!(
            check(&quotas, &create(&p)),
            Err("exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2".into())
        );
        let quotas = [quota("q", json!({"pods": "2"}), json!({"pods": "1"}))];
        let charges = check(&quotas, &create(&p)).unwrap();
        assert_eq!(charges.len(), 1);
        assert_eq!(q::to_json(&charges[0].1), json!({"pods": "2"}));
    }

    #[test]
    fn only_the_exceeded_resources_are_named() {
        let quotas = [quota(
            "compute",
            json!({"pods": "10", "requests.cpu": "1", "requests.memory": "1Gi"}),
            json!({"pods": "1", "requests.cpu": "800m", "requests.memory": "0"}),
        )];
        let p = pod(json!({"requests": {"cpu": "500m", "memory": "64Mi"}}));
        assert_eq!(
            check(&quotas, &create(&p)),
            Err("exceeded quota: compute, requested: requests.cpu=500m, used: requests.cpu=800m, limited: requests.cpu=1".into())
        );
    }

    #[test]
    fn uncounted_quotas_and_missing_requests_are_refused() {
        let quotas = [quota("q", json!({"pods": "2"}), json!({}))];
        let p = pod(json!({}));
        assert_eq!(
            check(&quotas, &create(&p)),
            Err("status unknown for quota: q, resources: pods".into())
        );
        let quotas = [quota(
            "q",
            json!({"limits.cpu": "2", "requests.memory": "1Gi"}),
            json!({"limits.cpu": "0", "requests.memory": "0"}),
        )];
        assert_eq!(
            check(&quotas, &create(&p)),
            Err("failed quota: q: must specify limits.cpu for: c; requests.memory for: c".into())
        );
    }

    #[test]
    fn updates_pay_only_the_difference() {
        let quotas = [quota(
            "q",
            json!({"requests.storage": "3Gi"}),
            json!({"requests.storage": "2Gi"}),
        )];
        let old = json!({"metadata": {"resourceVersion": "5"}, "spec": {"resources": {"requests": {"storage": "2Gi"}}}});
        let grown = json!({"spec": {"resources": {"requests": {"storage": "3Gi"}}}});
        let req = |obj| Request {
            group: "",
            resource: "persistentvolumeclaims",
            obj,
            old: Some(&old),
            now: 0,
        };
        let charges = check(&quotas, &req(&grown)).unwrap();
        assert_eq!(
            q::to_json(&charges[0].1),
            json!({"requests.storage": "3Gi"})
        );
        let too_big = json!({"spec": {"resources": {"requests": {"storage": "4Gi"}}}});
        assert_eq!(
            check(&quotas, &req(&too_big)),
            Err("exceeded quota: q, requested: requests.storage=2Gi, used: requests.storage=2Gi, limited: requests.storage=3Gi".into())
        );
        assert!(check(&quotas, &req(&old)).unwrap().is_empty());
    }

    #[test]
    fn scoped_and_unrelated_quotas_do_not_charge() {
        let quotas = [
            json!({"metadata": {"name": "be"}, "spec": {"scopes": ["BestEffort"]},
                "status": {"hard": {"pods": "0"}, "used": {"pods": "0"}}}),
            quota("cm", json!({"configmaps": "1"}), json!({"configmaps": "0"})),
        ];
        let p = pod(json!({"requests": {"cpu": "1"}}));
        assert!(check(&quotas, &create(&p)).unwrap().is_empty());
        let be = pod(json!({}));
        assert!(check(&quotas, &create(&be))
            .unwrap_err()
            .starts_with("exceeded quota: be"));
    }

    #[test]
    fn invalid_quotas_get_kubernetes_messages() {
        let msgs = |q: Value| {
            validate(&q)
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
        };
        assert!(msgs(json!({"spec": {"hard": {"pods": "2", "count/deployments.apps": "1", "requests.cpu": "500m"}}})).is_empty());
        assert_eq!(
            msgs(json!({"spec": {"hard": {"pods": "-1", "services": "1500m", "foo": "1"}}})),
            [
                "spec.hard[foo]: Invalid value: \"foo\": must be a standard resource type or fully qualified",
                "spec.hard[foo]: Invalid value: \"foo\": must be a standard resource for quota",
                "spec.hard[pods]: Invalid value: \"-1\": must be greater than or equal to 0",
                "spec.hard[services]: Invalid value: \"1500m\": must be an integer",
            ]
        );
        assert_eq!(
            msgs(json!({"spec": {"hard": {"requests.storage": "1Gi"}, "scopes": ["BestEffort", "NotBestEffort"]}})),
            [
                "spec.scopes: Invalid value: []core.ResourceQuotaScope{\"BestEffort\", \"NotBestEffort\"}: unsupported scope applied to resource",
                "spec.scopes: Invalid value: []core.ResourceQuotaScope{\"BestEffort\", \"NotBestEffort\"}: conflicting scopes",
            ]
        );
        assert_eq!(
            msgs(json!({"spec": {"hard": {"pods": "1"}, "scopes": ["Sometimes"]}})),
            [
                "spec.scopes: Invalid value: []core.ResourceQuotaScope{\"Sometimes\"}: unsupported scope",
                "spec.scopes: Invalid value: []core.ResourceQuotaScope{\"Sometimes\"}: unsupported scope applied to resource",
            ]
        );
    }

    #[test]
    fn scopes_do_not_change() {
        let q = |scopes: Value| json!({"spec": {"hard": {"pods": "1"}, "scopes": scopes}});
        assert!(validate_update(&q(json!(["BestEffort"])), &q(json!(["BestEffort"]))).is_empty());
        assert_eq!(
            validate_update(&q(json!(["BestEffort"])), &q(json!([])))[0].to_string(),
            "spec.scopes: Invalid value: []core.ResourceQuotaScope(nil): field is immutable"
        );
    }
}
