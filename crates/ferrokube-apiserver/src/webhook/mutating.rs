//! Mutating admission: the matching mutating webhooks one after another
//! (Kubernetes' `mutating/dispatcher.go`), their JSON patches applied and
//! the object defaulted again; webhooks with `reinvocationPolicy: IfNeeded`
//! run once more when a webhook after them changed the object.

use ferrokube_api::patch::json_patch;
use ferrokube_api::status::ApiError;
use serde_json::Value;

use super::config::Hook;
use super::errors::{call_failed, denied};
use super::invoke::{call, should_call, Failure};
use super::Request;
use crate::rest::{ApiResult, Rest};

/// Mutating admission of `req`; `obj` is the object to be written (none
/// for deletes and connections, whose webhooks may not patch).
pub(crate) async fn mutate(
    rest: &Rest,
    req: &Request<'_>,
    mut obj: Option<&mut Value>,
) -> ApiResult<()> {
    if req.exempt() {
        return Ok(());
    }
    let hooks = rest.webhooks.configs.hooks(rest, true);
    if hooks.is_empty() {
        return Ok(());
    }
    // IfNeeded webhooks that ran, and whether the object changed since.
    let mut ran: Vec<(usize, bool)> = Vec::new();
    for (i, h) in hooks.iter().enumerate() {
        if !should_call(rest, h, req, obj.as_deref())? {
            continue;
        }
        let changed = run_one(rest, h, req, obj.as_deref_mut()).await?;
        if changed {
            for r in &mut ran {
                r.1 = true;
            }
        }
        if h.reinvoke {
            ran.push((i, false));
        }
    }
    for (i, changed_since) in ran {
        let h = &hooks[i];
        if changed_since && should_call(rest, h, req, obj.as_deref())? {
            run_one(rest, h, req, obj.as_deref_mut()).await?;
        }
    }
    Ok(())
}

/// Calls one webhook and applies its patch; whether the object changed.
async fn run_one(
    rest: &Rest,
    h: &Hook,
    req: &Request<'_>,
    obj: Option<&mut Value>,
) -> ApiResult<bool> {
    let answer = match call(rest, h, req, obj.as_deref(), true).await {
        Ok(a) => a,
        Err(Failure::Refused(e)) => return Err(e),
        Err(Failure::Call(e)) if h.ignore_failures => {
            tracing::warn!(webhook = %h.name, error = %e, "Failed calling webhook, failing open");
            return Ok(false);
        }
        Err(Failure::Call(e)) => {
            tracing::warn!(webhook = %h.name, error = %e, "Failed calling webhook, failing closed");
            return Err(call_failed(&h.name, &e));
        }
    };
    if !answer.allowed {
        return Err(denied(&h.name, answer.status.as_ref()));
    }
    let Some(patch) = answer.patch else {
        return Ok(false);
    };
    let Some(obj) = obj else {
        return Err(ApiError::internal(format!(
            "admission webhook {:?} attempted to modify the object, which is not supported for this operation",
            h.name
        )));
    };
    let mut patched = json_patch(obj, &patch).map_err(|e| ApiError::internal(e.0))?;
    rest.strategy(req.def).default(req.def, &mut patched);
    let changed = patched != *obj;
    if changed {
        tracing::debug!(webhook = %h.name, patch = %patch, "mutating webhook patched the object");
    }
    *obj = patched;
    Ok(changed)
}
