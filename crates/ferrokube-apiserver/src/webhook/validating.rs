//! Validating admission: every matching validating webhook at once
//! (Kubernetes' `validating/dispatcher.go`); the first refusal in the
//! configurations' order is the answer.

use serde_json::Value;

use super::errors::{call_failed, denied};
use super::invoke::{call, should_call, Failure};
use super::Request;
use crate::rest::{ApiResult, Rest};

/// Validating admission of `req` with `obj`, the object to be written
/// (none for deletes and connections).
pub(crate) async fn validate(rest: &Rest, req: &Request<'_>, obj: Option<&Value>) -> ApiResult<()> {
    if req.exempt() {
        return Ok(());
    }
    let hooks = rest.webhooks.configs.hooks(rest, false);
    let mut chosen = Vec::new();
    for h in hooks.iter() {
        if should_call(rest, h, req, obj)? {
            chosen.push(h);
        }
    }
    if chosen.is_empty() {
        return Ok(());
    }
    let results =
        futures::future::join_all(chosen.iter().map(|h| call(rest, h, req, obj, false))).await;
    for (h, result) in chosen.iter().zip(results) {
        match result {
            Ok(a) if a.allowed => {}
            Ok(a) => return Err(denied(&h.name, a.status.as_ref())),
            Err(Failure::Refused(e)) => return Err(e),
            Err(Failure::Call(e)) if h.ignore_failures => {
                tracing::warn!(webhook = %h.name, error = %e, "Failed calling webhook, failing open");
            }
            Err(Failure::Call(e)) => {
                tracing::warn!(webhook = %h.name, error = %e, "Failed calling webhook, failing closed");
                return Err(call_failed(&h.name, &e));
            }
        }
    }
    Ok(())
}
