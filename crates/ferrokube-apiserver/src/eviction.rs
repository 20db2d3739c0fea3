//! `pods/eviction`: a pod deleted only if the PodDisruptionBudget covering it
//! allows, as Kubernetes' Eviction REST storage
//! (`pkg/registry/core/pod/storage/eviction.go`) decides.
//!
//! - Pods already finished (`Succeeded`, `Failed`), not yet running
//!   (`Pending`) or already being deleted are deleted at once: evicting them
//!   disrupts nothing. Unless the client gave a resourceVersion
//!   precondition, the deletion is made conditional on the pod as read (a
//!   pending pod that turned Running meanwhile is looked at again).
//! - Otherwise the budgets of the pod's namespace whose selector matches
//!   the pod are found. More than one: a 500 `Status` with Kubernetes'
//!   message. One: a pod that is not Ready is deleted without spending the
//!   budget if the budget's `unhealthyPodEvictionPolicy` is `AlwaysAllow`,
//!   or (`IfHealthyBudget`, the default) the application is healthy enough
//!   (`currentHealthy >= desiredHealthy > 0`), again conditional on the pod
//!   as read. Any other eviction takes one of the budget's
//!   `disruptionsAllowed` and records the pod in `disruptedPods` with a
//!   conflict-checked status update (retried after a fresh read on
//!   conflict) before the pod is deleted; a budget with none left gets 429
//!   `TooManyRequests` with the budget's numbers as a `DisruptionBudget`
//!   cause, which is what `kubectl drain` waits and retries on.
//! - Before deletion the pod gets the `DisruptionTarget` condition (reason
//!   `EvictionByEvictionAPI`); a dry run changes nothing at all.
//!
//! The body is a `policy/v1` or `policy/v1beta1` Eviction (JSON, or
//! protobuf already turned into JSON by the server); its `deleteOptions`
//! (grace period, preconditions, propagation, dryRun) apply to the deletion.

use std::collections::BTreeMap;
use std::time::Duration;

use ferrokube_api::labels::Selector;
use ferrokube_api::registry::ResourceDef;
use ferrokube_api::status::ApiError;
use serde_json::{json, Map, Value};

use crate::objectmeta::{self, meta_str};
use crate::options::{DeleteOptions, Query, WriteOptions};
use crate::rest::{ApiResult, Rest};

/// The most pods a budget's `disruptedPods` may list before evictions it
/// covers are refused (evictions approved that its controller has not
/// seen yet).
pub(crate) const MAX_DISRUPTED_PODS: usize = 2000;

/// What a refused eviction says.
pub(crate) const VIOLATION_MESSAGE: &str =
    "Cannot evict pod as it would violate the pod's disruption budget.";

/// The answer when a pod is matched by several budgets.
pub(crate) const MULTIPLE_BUDGETS_MESSAGE: &str =
    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.";

/// Conflicts retried (Kubernetes: 20 steps, 500 ms apart).
const ATTEMPTS: usize = 20;
const RETRY_DELAY: Duration = Duration::from_millis(500);

/// The field manager of the writes made on the client's behalf (the pod's
/// condition, the budget's status), as Kubernetes' loopback client.
const MANAGER: &str = "kube-apiserver";

/// Serves one eviction of pod `ns/name`; `body` is the Eviction as JSON.
/// Returns the `Status` to answer with (its `code` is the HTTP status).
pub(crate) async fn evict(
    rest: &Rest,
    pods: &ResourceDef,
    ns: &str,
    name: &str,
    body: &[u8],
    query: &Query,
) -> ApiResult<Value> {
    let eviction = parse(body, name)?;
    let opts = delete_options(&eviction, query)?;
    // A client that gave its own resourceVersion precondition wants exactly
    // that version: conflicts are its answer, not retried.
    let retry_conflicts = opts.precondition_resource_version.is_none();

    // 1. Pods whose eviction disrupts nothing are deleted at once.
    let mut attempt = 0;
    let (pod, pod_rv) = loop {
        let (pod, kv) = rest.get_kv(pods, ns, name).await?;
        if !can_ignore_budget(&pod) {
            break (pod, kv.mod_revision.to_string());
        }
        let mut o = opts.clone();
        if should_enforce_resource_version(&pod) && o.precondition_resource_version.is_none() {
            o.precondition_resource_version = Some(kv.mod_revision.to_string());
        }
        match mark_and_delete(rest, pods, ns, name, &o).await {
            Ok(()) => return Ok(success()),
            Err(e) if is_conflict(&e) && retry_conflicts && attempt + 1 < ATTEMPTS => {
                attempt += 1;
                tokio::time::sleep(RETRY_DELAY).await;
            }
            Err(e) => return Err(e),
        }
    };

    // 2. The budget, if any, must allow it.
    let budgets = matching_budgets(rest, ns, &pod).await?;
    if budgets.len() > 1 {
        return Ok(json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": MULTIPLE_BUDGETS_MESSAGE,
            "code": 500,
        }));
    }
    let mut guard_pod_version = false;
    let mut budget_name = String::new();
    if let Some(budget) = budgets.into_iter().next() {
        budget_name = meta_str(&budget, "name").unwrap_or_default().to_string();
        if !is_ready(&pod) && unhealthy_may_go(&budget) {
            // The pod does not count as healthy: deleting it spends
            // nothing, as long as it does not turn Ready meanwhile.
            guard_pod_version = true;
        } else {
            spend_budget(rest, ns, name, budget, opts.dry_run).await?;
        }
    }

    // 3. The deletion.
    let mut o = opts.clone();
    if guard_pod_version {
        o.precondition_resource_version = Some(pod_rv);
    }
    match mark_and_delete(rest, pods, ns, name, &o).await {
        Ok(()) => Ok(success()),
        Err(e) if is_conflict(&e) && guard_pod_version && retry_conflicts => {
            Err(budget_busy(&budget_name))
        }
        Err(e) => Err(e),
    }
}

/// The Eviction in `body`, checked against the pod named in the URL.
fn parse(body: &[u8], name: &str) -> ApiResult<Value> {
    let eviction: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body of the request could not be decoded as JSON: {e}"
        ))
    })?;
    if !eviction.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request is not an object",
        ));
    }
    match eviction.get("kind").and_then(Value::as_str) {
        None | Some("") | Some("Eviction") => {}
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "not a Eviction object: {other}"
            )))
        }
    }
    match eviction.get("apiVersion").and_then(Value::as_str) {
        None | Some("") | Some("policy/v1") | Some("policy/v1beta1") => {}
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Eviction in version {other:?} cannot be handled: policy/v1 and policy/v1beta1 are accepted"
            )))
        }
    }
    if meta_str(&eviction, "name").unwrap_or_default() != name {
        return Err(ApiError::bad_request(
            "name in URL does not match name in Eviction object",
        ));
    }
    Ok(eviction)
}

/// The Eviction's `deleteOptions`, with the request's `dryRun` carried into
/// them (Kubernetes' propagateDryRun: the two must agree if both are given).
fn delete_options(eviction: &Value, query: &Query) -> ApiResult<DeleteOptions> {
    query.dry_run()?;
    let from_query: Vec<Value> = query.all("dryRun").iter().map(|s| json!(s)).collect();
    let mut body = match eviction.get("deleteOptions") {
        Some(Value::Object(m)) => Value::Object(m.clone()),
        _ => Value::Object(Map::new()),
    };
    let in_body: Vec<Value> = body
        .get("dryRun")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if in_body.is_empty() {
        body["dryRun"] = Value::Array(from_query);
    } else if !from_query.is_empty() && from_query != in_body {
        return Err(ApiError::internal(format!(
            "Non-matching dry-run options in request and content: {} and {}",
            go_list(&from_query),
            go_list(&in_body)
        )));
    }
    let bytes = serde_json::to_vec(&body).map_err(ApiError::internal)?;
    Rest::delete_options(DeleteOptions::default(), &bytes)
}

/// A list of strings as Go's `%v` prints it: `[All]`.
fn go_list(v: &[Value]) -> String {
    let items: Vec<&str> = v.iter().filter_map(Value::as_str).collect();
    format!("[{}]", items.join(" "))
}

fn success() -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "code": 201,
    })
}

fn is_conflict(e: &ApiError) -> bool {
    e.code == 409 && e.reason == "Conflict"
}

fn phase(pod: &Value) -> &str {
    pod.pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn deleting(pod: &Value) -> bool {
    pod.pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
}

/// Finished, not yet running or already going: no budget is consulted.
pub(crate) fn can_ignore_budget(pod: &Value) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed" | "Pending") || deleting(pod)
}

/// Whether the deletion of an ignorable pod must be of the version read
/// (a pending pod may turn Running and healthy in between).
fn should_enforce_resource_version(pod: &Value) -> bool {
    !(matches!(phase(pod), "Succeeded" | "Failed") || deleting(pod))
}

/// The pod's `Ready` condition is `True`.
pub(crate) fn is_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some("Ready")
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        })
}

fn int(v: &Value, ptr: &str) -> i64 {
    v.pointer(ptr).and_then(Value::as_i64).unwrap_or(0)
}

/// Whether a pod that is not Ready may go without spending `budget`.
pub(crate) fn unhealthy_may_go(budget: &Value) -> bool {
    if budget
        .pointer("/spec/unhealthyPodEvictionPolicy")
        .and_then(Value::as_str)
        == Some("AlwaysAllow")
    {
        return true;
    }
    // IfHealthyBudget (also when unset): only while the application has
    // what it needs.
    let desired = int(budget, "/status/desiredHealthy");
    int(budget, "/status/currentHealthy") >= desired && desired > 0
}

fn budgets_def(rest: &Rest) -> ApiResult<ResourceDef> {
    rest.kinds
        .get("policy", "v1", "poddisruptionbudgets")
        .ok_or_else(|| ApiError::internal("poddisruptionbudgets are not served"))
}

/// Whether `budget`'s selector selects `labels`; a budget with no or an
/// empty selector selects nothing.
pub(crate) fn selects(budget: &Value, labels: &BTreeMap<String, String>) -> bool {
    let Some(sel) = budget.pointer("/spec/selector") else {
        return false;
    };
    match Selector::from_value(sel) {
        Ok(Some(s)) => !s.is_empty() && s.matches(labels),
        _ => false,
    }
}

fn labels_of(obj: &Value) -> BTreeMap<String, String> {
    obj.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// The budgets of the pod's namespace that select it (a consistent read).
async fn matching_budgets(rest: &Rest, ns: &str, pod: &Value) -> ApiResult<Vec<Value>> {
    let def = budgets_def(rest)?;
    let opts = Query::parse(None).list_options()?;
    let filter = rest.filter(&def, &opts, "")?;
    let listed = rest.list(&def, ns, &opts, &filter).await?;
    let labels = labels_of(pod);
    let mut out = Vec::new();
    for item in listed.items {
        let budget: Value = serde_json::from_slice(&item).map_err(ApiError::internal)?;
        if selects(&budget, &labels) {
            out.push(budget);
        }
    }
    Ok(out)
}

/// Takes one disruption from `budget` for pod `pod_name`, reading the
/// budget again after a conflicting write.
async fn spend_budget(
    rest: &Rest,
    ns: &str,
    pod_name: &str,
    budget: Value,
    dry_run: bool,
) -> ApiResult<()> {
    let def = budgets_def(rest)?;
    let name = meta_str(&budget, "name").unwrap_or_default().to_string();
    let mut budget = budget;
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(RETRY_DELAY).await;
            budget = rest.get(&def, ns, &name).await?;
        }
        let Some(updated) = take_one(&budget, pod_name, dry_run, &objectmeta::now_rfc3339())?
        else {
            return Ok(());
        };
        let opts = WriteOptions {
            manager: MANAGER.into(),
            ..WriteOptions::default()
        };
        match rest.update(&def, ns, &name, updated, "status", &opts).await {
            Ok(_) => return Ok(()),
            Err(e) if is_conflict(&e) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(ApiError::timeout_after(
        format!("couldn't update PodDisruptionBudget {name:?} due to conflicts"),
        10,
    ))
}

/// Kubernetes' checkAndDecrement: refuses the eviction if `budget` allows
/// none, else returns the budget with one disruption less and `pod_name`
/// in `disruptedPods` at `now` (`None` for a dry run, which writes nothing).
pub(crate) fn take_one(
    budget: &Value,
    pod_name: &str,
    dry_run: bool,
    now: &str,
) -> ApiResult<Option<Value>> {
    let name = meta_str(budget, "name").unwrap_or_default();
    let generation = int(budget, "/metadata/generation");
    let observed = int(budget, "/status/observedGeneration");
    if observed < generation {
        return Err(budget_busy(name));
    }
    let allowed = int(budget, "/status/disruptionsAllowed");
    if allowed < 0 {
        return Err(ApiError::forbidden_on(
            "policy",
            "poddisruptionbudget",
            name,
            "pdb disruptions allowed is negative",
        ));
    }
    let disrupted = budget
        .pointer("/status/disruptedPods")
        .and_then(Value::as_object)
        .map_or(0, Map::len);
    if disrupted > MAX_DISRUPTED_PODS {
        return Err(ApiError::forbidden_on(
            "policy",
            "poddisruptionbudget",
            name,
            "DisruptedPods map too big - too many evictions not confirmed by PDB controller",
        ));
    }
    if allowed == 0 {
        return Err(budget_violated(
            name,
            int(budget, "/status/desiredHealthy"),
            int(budget, "/status/currentHealthy"),
        ));
    }
    if dry_run {
        return Ok(None);
    }
    let mut b = budget.clone();
    let allowed = allowed - 1;
    let status = b
        .as_object_mut()
        .map(|o| o.entry("status").or_insert_with(|| json!({})))
        .ok_or_else(|| ApiError::internal("the budget is not an object"))?;
    if !status.is_object() {
        *status = json!({});
    }
    status["disruptionsAllowed"] = json!(allowed);
    if allowed == 0 {
        let observed_gen = status.get("observedGeneration").cloned();
        set_condition(
            status,
            json!({
                "type": "DisruptionAllowed",
                "status": "False",
                "reason": "InsufficientPods",
                "message": "",
                "observedGeneration": observed_gen,
            }),
            now,
        );
    }
    let pods = status
        .as_object_mut()
        .map(|s| s.entry("disruptedPods").or_insert_with(|| json!({})))
        .ok_or_else(|| ApiError::internal("the budget's status is not an object"))?;
    if !pods.is_object() {
        *pods = json!({});
    }
    pods[pod_name] = json!(now);
    Ok(Some(b))
}

/// Sets `cond` in `status.conditions` as apimachinery's
/// `meta.SetStatusCondition`: the transition time moves only when the
/// status does; reason, message and observedGeneration are always taken.
pub(crate) fn set_condition(status: &mut Value, mut cond: Value, now: &str) {
    if cond.get("observedGeneration").is_some_and(Value::is_null) {
        if let Some(o) = cond.as_object_mut() {
            o.remove("observedGeneration");
        }
    }
    let Some(s) = status.as_object_mut() else {
        return;
    };
    let list = s.entry("conditions").or_insert_with(|| json!([]));
    if !list.is_array() {
        *list = json!([]);
    }
    let Some(list) = list.as_array_mut() else {
        return;
    };
    let ty = cond.get("type").cloned();
    match list.iter_mut().find(|c| c.get("type") == ty.as_ref()) {
        Some(old) => {
            if old.get("status") != cond.get("status") {
                old["status"] = cond["status"].clone();
                old["lastTransitionTime"] = json!(now);
            }
            old["reason"] = cond["reason"].clone();
            old["message"] = cond["message"].clone();
            match cond.get("observedGeneration") {
                Some(g) => old["observedGeneration"] = g.clone(),
                None => {
                    if let Some(o) = old.as_object_mut() {
                        o.remove("observedGeneration");
                    }
                }
            }
        }
        None => {
            cond["lastTransitionTime"] = json!(now);
            list.push(cond);
        }
    }
}

/// 429 for a budget with no disruption left.
pub(crate) fn budget_violated(name: &str, desired: i64, current: i64) -> ApiError {
    ApiError {
        code: 429,
        reason: "TooManyRequests",
        message: VIOLATION_MESSAGE.into(),
        details: Some(json!({"causes": [{
            "reason": "DisruptionBudget",
            "message": format!(
                "The disruption budget {name} needs {desired} healthy pods and has {current} currently"
            ),
        }]})),
    }
}

/// 429 for a budget its controller has not caught up with (or a pod that
/// changed while its eviction was decided): retry in 10 s.
pub(crate) fn budget_busy(name: &str) -> ApiError {
    ApiError {
        code: 429,
        reason: "TooManyRequests",
        message: VIOLATION_MESSAGE.into(),
        details: Some(json!({
            "causes": [{
                "reason": "DisruptionBudget",
                "message": format!(
                    "The disruption budget {name} is still being processed by the server."
                ),
            }],
            "retryAfterSeconds": 10,
        })),
    }
}

/// Records the `DisruptionTarget` condition on the pod (unless a dry run),
/// honouring the deletion's preconditions, then deletes it.
async fn mark_and_delete(
    rest: &Rest,
    pods: &ResourceDef,
    ns: &str,
    name: &str,
    opts: &DeleteOptions,
) -> ApiResult<()> {
    let mut opts = opts.clone();
    if !opts.dry_run {
        let mut marked = false;
        for _ in 0..ATTEMPTS {
            let (mut pod, kv) = rest.get_kv(pods, ns, name).await?;
            let rv = kv.mod_revision.to_string();
            check_preconditions(&pod, &rv, name, &opts)?;
            if !mark_disruption_target(&mut pod, &objectmeta::now_rfc3339()) {
                marked = true;
                break;
            }
            let write = WriteOptions {
                manager: MANAGER.into(),
                ..WriteOptions::default()
            };
            match rest.update(pods, ns, name, pod, "status", &write).await {
                Ok(updated) => {
                    // The deletion is of the version just written, if the
                    // caller wanted a particular version.
                    if opts.precondition_resource_version.is_some() {
                        opts.precondition_resource_version =
                            meta_str(&updated, "resourceVersion").map(str::to_string);
                    }
                    marked = true;
                    break;
                }
                Err(e) if is_conflict(&e) => continue,
                Err(e) => return Err(e),
            }
        }
        if !marked {
            return Err(ApiError::stale("", "pods", name));
        }
    }
    rest.delete(pods, ns, name, &opts).await.map(|_| ())
}

/// The deletion's preconditions against the pod as stored.
fn check_preconditions(pod: &Value, rv: &str, name: &str, opts: &DeleteOptions) -> ApiResult<()> {
    let uid = meta_str(pod, "uid").unwrap_or_default();
    if let Some(want) = opts.precondition_uid.as_deref().filter(|u| !u.is_empty()) {
        if want != uid {
            return Err(ApiError::conflict("", "Pod", name, &format!(
                "the UID in the precondition ({want}) does not match the UID in record ({uid}). The object might have been deleted and then recreated"
            )));
        }
    }
    if let Some(want) = opts
        .precondition_resource_version
        .as_deref()
        .filter(|r| !r.is_empty())
    {
        if want != rv {
            return Err(ApiError::conflict("", "Pod", name, &format!(
                "the ResourceVersion in the precondition ({want}) does not match the ResourceVersion in record ({rv}). The object might have been modified"
            )));
        }
    }
    Ok(())
}

/// Sets `DisruptionTarget=True` (reason `EvictionByEvictionAPI`) in the
/// pod's status as Kubernetes' `UpdatePodCondition`; false if it was
/// already so.
pub(crate) fn mark_disruption_target(pod: &mut Value, now: &str) -> bool {
    let Some(obj) = pod.as_object_mut() else {
        return false;
    };
    let status = obj.entry("status").or_insert_with(|| json!({}));
    if !status.is_object() {
        *status = json!({});
    }
    let list = status
        .as_object_mut()
        .map(|s| s.entry("conditions").or_insert_with(|| json!([])));
    let Some(list) = list else {
        return false;
    };
    if !list.is_array() {
        *list = json!([]);
    }
    let Some(list) = list.as_array_mut() else {
        return false;
    };
    let want = json!({
        "type": "DisruptionTarget",
        "status": "True",
        "lastProbeTime": null,
        "lastTransitionTime": now,
        "reason": "EvictionByEvictionAPI",
        "message": "Eviction API: evicting",
    });
    match list
        .iter_mut()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("DisruptionTarget"))
    {
        None => {
            list.push(want);
            true
        }
        Some(old) => {
            let same = old.get("status") == want.get("status")
                && old.get("reason") == want.get("reason")
                && old.get("message") == want.get("message");
            if same {
                return false;
            }
            if old.get("status") == want.get("status") {
                // The transition time stays with an unchanged status.
                let kept = old.get("lastTransitionTime").cloned();
                *old = want;
                if let Some(t) = kept {
                    old["lastTransitionTime"] = t;
                }
            } else {
                *old = want;
            }
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(allowed: i64, current: i64, desired: i64) -> Value {
        json!({
            "metadata": {"name": "pdb", "namespace": "ns", "generation": 1},
            "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}},
            "status": {
                "observedGeneration": 1,
                "disruptionsAllowed": allowed,
                "currentHealthy": current,
                "desiredHealthy": desired,
                "expectedPods": 3,
            },
        })
    }

    #[test]
    fn spending_the_last_disruption_records_the_pod_and_the_condition() {
        let b = take_one(&budget(1, 3, 2), "web-1", false, "2026-01-01T00:00:00Z")
            .expect("allowed")
            .expect("a write");
        assert_eq!(b["status"]["disruptionsAllowed"], 0);
        assert_eq!(
            b["status"]["disruptedPods"],
            json!({"web-1": "2026-01-01T00:00:00Z"})
        );
        let c = &b["status"]["conditions"][0];
        assert_eq!(c["type"], "DisruptionAllowed");
        assert_eq!(c["status"], "False");
        assert_eq!(c["reason"], "InsufficientPods");
        assert_eq!(c["observedGeneration"], 1);
        // With more left, no condition is touched.
        let b = take_one(&budget(2, 4, 2), "web-1", false, "t")
            .expect("allowed")
            .expect("a write");
        assert_eq!(b["status"]["disruptionsAllowed"], 1);
        assert!(b["status"].get("conditions").is_none());
        // A dry run writes nothing.
        assert!(take_one(&budget(1, 3, 2), "web-1", true, "t")
            .expect("allowed")
            .is_none());
    }

    #[test]
    fn a_spent_budget_refuses_with_kubernetes_status() {
        let e = take_one(&budget(0, 2, 2), "web-1", false, "t").expect_err("refused");
        let st = String::from_utf8(e.status_json()).expect("utf-8");
        assert_eq!(
            st,
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Cannot evict pod as it would violate the pod's disruption budget.","reason":"TooManyRequests","details":{"causes":[{"reason":"DisruptionBudget","message":"The disruption budget pdb needs 2 healthy pods and has 2 currently"}]},"code":429}"#
        );
        // Not yet observed by the controller: retry later.
        let mut b = budget(1, 3, 2);
        b["metadata"]["generation"] = json!(2);
        let e = take_one(&b, "web-1", false, "t").expect_err("refused");
        assert_eq!(e.code, 429);
        assert_eq!(e.details.as_ref().unwrap()["retryAfterSeconds"], 10);
        assert_eq!(
            e.details.as_ref().unwrap()["causes"][0]["message"],
            "The disruption budget pdb is still being processed by the server."
        );
        let e = take_one(&budget(-1, 3, 2), "web-1", false, "t").expect_err("refused");
        assert_eq!(e.code, 403);
        assert_eq!(
            e.message,
            "poddisruptionbudget.policy \"pdb\" is forbidden: pdb disruptions allowed is negative"
        );
    }

    #[test]
    fn which_pods_skip_the_budget() {
        let pod = |phase: &str, deleting: bool| {
            let mut p = json!({"metadata": {"name": "p"}, "status": {"phase": phase}});
            if deleting {
                p["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
            }
            p
        };
        for ph in ["Succeeded", "Failed", "Pending"] {
            assert!(can_ignore_budget(&pod(ph, false)), "{ph}");
        }
        assert!(!can_ignore_budget(&pod("Running", false)));
        assert!(can_ignore_budget(&pod("Running", true)));
        assert!(should_enforce_resource_version(&pod("Pending", false)));
        assert!(!should_enforce_resource_version(&pod("Failed", false)));
        assert!(!should_enforce_resource_version(&pod("Running", true)));
    }

    #[test]
    fn unhealthy_pods_and_the_eviction_policy() {
        // IfHealthyBudget: only while the application is healthy enough.
        assert!(unhealthy_may_go(&budget(0, 2, 2)));
        assert!(!unhealthy_may_go(&budget(0, 1, 2)));
        assert!(!unhealthy_may_go(&budget(0, 0, 0)));
        let mut b = budget(0, 1, 2);
        b["spec"]["unhealthyPodEvictionPolicy"] = json!("AlwaysAllow");
        assert!(unhealthy_may_go(&b));
        b["spec"]["unhealthyPodEvictionPolicy"] = json!("IfHealthyBudget");
        assert!(!unhealthy_may_go(&b));
    }

    #[test]
    fn selectors_that_select_nothing() {
        let labels: BTreeMap<String, String> = [("app".to_string(), "web".to_string())].into();
        assert!(selects(&budget(0, 0, 0), &labels));
        let mut b = budget(0, 0, 0);
        b["spec"]["selector"] = json!({});
        assert!(!selects(&b, &labels));
        b["spec"].as_object_mut().unwrap().remove("selector");
        assert!(!selects(&b, &labels));
        b["spec"]["selector"] =
            json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["db"]}]});
        assert!(!selects(&b, &labels));
    }

    #[test]
    fn the_disruption_target_condition() {
        let mut pod = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        assert!(mark_disruption_target(&mut pod, "t1"));
        let c = &pod["status"]["conditions"][1];
        assert_eq!(c["type"], "DisruptionTarget");
        assert_eq!(c["status"], "True");
        assert_eq!(c["reason"], "EvictionByEvictionAPI");
        assert_eq!(c["message"], "Eviction API: evicting");
        assert_eq!(c["lastTransitionTime"], "t1");
        assert!(!mark_disruption_target(&mut pod, "t2"));
        // A stale False condition turns True again, with a new time.
        pod["status"]["conditions"][1]["status"] = json!("False");
        assert!(mark_disruption_target(&mut pod, "t3"));
        assert_eq!(pod["status"]["conditions"][1]["lastTransitionTime"], "t3");
    }

    /// An Eviction as client-go sends it in protobuf, in either version.
    fn protobuf_eviction(version: &str, name: &str) -> Vec<u8> {
        use k8s_pb::apimachinery::pkg::apis::meta::v1::{DeleteOptions, ObjectMeta, Preconditions};
        use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
        use prost::Message;
        let meta = Some(ObjectMeta {
            name: Some(name.into()),
            namespace: Some("ns".into()),
            ..Default::default()
        });
        let opts = Some(DeleteOptions {
            grace_period_seconds: Some(7),
            preconditions: Some(Preconditions {
                uid: Some("u1".into()),
                resource_version: None,
            }),
            ..Default::default()
        });
        let raw = if version == "v1" {
            k8s_pb::api::policy::v1::Eviction {
                metadata: meta,
                delete_options: opts,
            }
            .encode_to_vec()
        } else {
            k8s_pb::api::policy::v1beta1::Eviction {
                metadata: meta,
                delete_options: opts,
            }
            .encode_to_vec()
        };
        let env = Unknown {
            type_meta: Some(TypeMeta {
                api_version: Some(format!("policy/{version}")),
                kind: Some("Eviction".into()),
            }),
            raw: Some(raw),
            content_encoding: None,
            content_type: None,
        };
        let mut body = b"k8s\0".to_vec();
        body.extend(env.encode_to_vec());
        body
    }

    #[test]
    fn protobuf_evictions_of_both_versions() {
        for version in ["v1", "v1beta1"] {
            let json = crate::protobuf::decode(&protobuf_eviction(version, "p")).expect("decoded");
            let bytes = serde_json::to_vec(&json).expect("json");
            let ev = parse(&bytes, "p").expect(version);
            let o = delete_options(&ev, &Query::parse(None)).expect("options");
            assert_eq!(o.grace_period_seconds, Some(7), "{version}: {json}");
            assert_eq!(o.precondition_uid.as_deref(), Some("u1"), "{version}");
            assert!(!o.dry_run);
            assert!(parse(&bytes, "q").is_err());
        }
    }

    #[test]
    fn eviction_bodies_and_dry_run() {
        let body = br#"{"apiVersion":"policy/v1beta1","kind":"Eviction","metadata":{"name":"p"},"deleteOptions":{"gracePeriodSeconds":5}}"#;
        let ev = parse(body, "p").expect("v1beta1 accepted");
        let o = delete_options(&ev, &Query::parse(Some("dryRun=All"))).expect("options");
        assert!(o.dry_run);
        assert_eq!(o.grace_period_seconds, Some(5));
        let e = parse(body, "q").expect_err("name mismatch");
        assert_eq!(
            e.message,
            "name in URL does not match name in Eviction object"
        );
        let ev = parse(
            br#"{"kind":"Eviction","metadata":{"name":"p"},"deleteOptions":{"dryRun":["All"],"preconditions":{"uid":"u1"}}}"#,
            "p",
        )
        .expect("parsed");
        let o = delete_options(&ev, &Query::parse(None)).expect("options");
        assert!(o.dry_run);
        assert_eq!(o.precondition_uid.as_deref(), Some("u1"));
        assert!(parse(br#"{"kind":"Pod","metadata":{"name":"p"}}"#, "p").is_err());
    }
}
