//! Whether a webhook is called for a request, and the call itself
//! (Kubernetes' `generic/webhook.go` `ShouldCallHook` and the dispatchers'
//! `callHook`).

use ferrokube_api::status::ApiError;
use serde_json::Value;

use super::cel::{evaluate, Verdict};
use super::config::Hook;
use super::errors::{condition_failed, dry_run_unsupported, CallError};
use super::matching::{namespace_labels, object_selected, rules_match, selected, Target};
use super::review::{pick_version, request_json, review_body, verify, Answer};
use super::Request;
use crate::rest::Rest;

/// Whether `hook` is asked about `req` (with `obj`, the new object):
/// rules, namespace and object selectors, then match conditions, whose
/// evaluation error refuses the request unless the hook ignores failures.
pub(super) fn should_call(
    rest: &Rest,
    hook: &Hook,
    req: &Request<'_>,
    obj: Option<&Value>,
) -> Result<bool, ApiError> {
    if !rules_match(&hook.rules, hook.exact, &Target::of(req)) {
        return Ok(false);
    }
    if let Some(labels) = namespace_labels(rest, req, obj) {
        if !selected(hook.namespace_selector.as_ref(), &labels) {
            return Ok(false);
        }
    }
    if !object_selected(hook.object_selector.as_ref(), obj, req.old) {
        return Ok(false);
    }
    if hook.conditions.is_empty() {
        return Ok(true);
    }
    let request = request_json(req, "", obj);
    let null = Value::Null;
    let vars = [
        ("object", obj.unwrap_or(&null)),
        ("oldObject", req.old.unwrap_or(&null)),
        ("request", &request),
    ];
    match evaluate(&hook.conditions, &vars) {
        Verdict::Match => Ok(true),
        Verdict::NoMatch => Ok(false),
        Verdict::Error(_) if hook.ignore_failures => Ok(false),
        Verdict::Error(e) => Err(condition_failed(
            req.def.group,
            req.def.plural,
            req.name,
            &hook.name,
            &e,
        )),
    }
}

/// Why a call gave no answer to act on.
pub(super) enum Failure {
    /// The webhook was not heard (failurePolicy decides).
    Call(CallError),
    /// The request is refused whatever the failure policy (a dry run to a
    /// webhook with side effects).
    Refused(ApiError),
}

/// Sends `req` to `hook` and checks the answer; warnings and audit
/// annotations are taken care of here.
pub(super) async fn call(
    rest: &Rest,
    hook: &Hook,
    req: &Request<'_>,
    obj: Option<&Value>,
    mutating: bool,
) -> Result<Answer, Failure> {
    if req.dry_run && !matches!(hook.side_effects.as_str(), "None" | "NoneOnDryRun") {
        return Err(Failure::Refused(dry_run_unsupported(&hook.name)));
    }
    let version = pick_version(&hook.review_versions).ok_or(Failure::Call(CallError::NoVersion))?;
    let uid = uuid::Uuid::new_v4().to_string();
    let body = review_body(version, request_json(req, &uid, obj));
    let to = super::client::target(&hook.endpoint, hook.timeout);
    let answer = rest
        .webhooks
        .client
        .post(
            &to,
            to.dial.address(rest),
            &hook.ca_bundle,
            body,
            hook.timeout,
        )
        .await
        .map_err(|e| Failure::Call(CallError::Call(e)))?;
    let answer = verify(version, &uid, mutating, &answer)
        .map_err(|e| Failure::Call(CallError::Invalid(e)))?;
    for (k, v) in &answer.audit_annotations {
        super::audit_annotation(&format!("{}/{k}", hook.name), v);
    }
    for w in &answer.warnings {
        req.warn(w.clone());
    }
    Ok(answer)
}
