//! The errors dynamic admission gives clients, in Kubernetes' words
//! (`util/webhook/error.go`, `webhook/errors/statuserror.go`).

use std::collections::HashSet;
use std::sync::OnceLock;

use ferrokube_api::status::ApiError;
use parking_lot::Mutex;
use serde_json::Value;

/// Why a call to a webhook failed (not a refusal: the webhook was not
/// heard, or answered nonsense).
#[derive(Debug, thiserror::Error)]
pub(super) enum CallError {
    /// No connection, no answer in time, or an error status.
    #[error("failed to call webhook: {0}")]
    Call(String),
    /// An answer that is not a valid AdmissionReview response.
    #[error("received invalid webhook response: {0}")]
    Invalid(String),
    /// No `admissionReviewVersions` this server speaks.
    #[error("webhook does not accept known AdmissionReview versions")]
    NoVersion,
}

/// `failed calling webhook "<name>": <why>`, as a 500 (failurePolicy Fail).
pub(super) fn call_failed(webhook: &str, why: &CallError) -> ApiError {
    ApiError::internal(format!("failed calling webhook {webhook:?}: {why}"))
}

/// A dry run sent to a webhook that may have side effects.
pub(super) fn dry_run_unsupported(webhook: &str) -> ApiError {
    ApiError::bad_request(format!(
        "admission webhook {webhook:?} does not support dry run"
    ))
}

/// A match condition that could not be evaluated (failurePolicy Fail).
pub(super) fn condition_failed(
    group: &str,
    resource: &str,
    name: &str,
    webhook: &str,
    why: &str,
) -> ApiError {
    ApiError::forbidden_on(
        group,
        resource,
        name,
        &format!("failed calling webhook {webhook:?}: {why}"),
    )
}

/// A webhook's refusal: its status, the message prefixed with who denied
/// it (`ToStatusErr`); a status without a code is a 500, as Kubernetes
/// answers a failure without one.
pub(super) fn denied(webhook: &str, status: Option<&Value>) -> ApiError {
    let empty = Value::Null;
    let s = status.unwrap_or(&empty);
    let text = |k: &str| s.get(k).and_then(Value::as_str).unwrap_or("");
    let by = format!("admission webhook {webhook:?} denied the request");
    let message = match (text("message"), text("reason")) {
        (m, _) if !m.is_empty() => format!("{by}: {m}"),
        (_, r) if !r.is_empty() => format!("{by}: {r}"),
        _ => format!("{by} without explanation"),
    };
    let code = s
        .get("code")
        .and_then(Value::as_u64)
        .and_then(|c| u16::try_from(c).ok())
        .filter(|c| *c != 0)
        .unwrap_or(500);
    ApiError {
        code,
        reason: static_reason(text("reason")),
        message,
        details: s.get("details").filter(|d| d.is_object()).cloned(),
    }
}

/// Kubernetes' `StatusReason`s, and any other a webhook says, kept once
/// (a bounded set: past it, a reason is dropped).
fn static_reason(reason: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "",
        "Unauthorized",
        "Forbidden",
        "NotFound",
        "AlreadyExists",
        "Conflict",
        "Gone",
        "Invalid",
        "ServerTimeout",
        "StoreReadError",
        "Timeout",
        "TooManyRequests",
        "BadRequest",
        "MethodNotAllowed",
        "NotAcceptable",
        "RequestEntityTooLarge",
        "UnsupportedMediaType",
        "InternalError",
        "Expired",
        "ServiceUnavailable",
    ];
    if let Some(k) = KNOWN.iter().find(|k| **k == reason) {
        return k;
    }
    static OTHERS: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut others = OTHERS.get_or_init(Default::default).lock();
    if let Some(r) = others.get(reason) {
        return r;
    }
    if others.len() >= 256 {
        return "";
    }
    let leaked: &'static str = Box::leak(reason.to_string().into_boxed_str());
    others.insert(leaked);
    leaked
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn refusals_name_the_webhook_and_keep_its_status() {
        let e = denied(
            "deny.example.com",
            Some(&json!({"code": 403, "reason": "Forbidden", "message": "no secrets here"})),
        );
        assert_eq!(e.code, 403);
        assert_eq!(e.reason, "Forbidden");
        assert_eq!(
            e.message,
            r#"admission webhook "deny.example.com" denied the request: no secrets here"#
        );
        let e = denied("deny.example.com", None);
        assert_eq!(e.code, 500);
        assert_eq!(
            e.message,
            r#"admission webhook "deny.example.com" denied the request without explanation"#
        );
        let e = denied(
            "d.e.f",
            Some(&json!({"code": 422, "reason": "MyOwnReason"})),
        );
        assert_eq!(e.reason, "MyOwnReason");
        assert_eq!(
            e.message,
            r#"admission webhook "d.e.f" denied the request: MyOwnReason"#
        );
    }

    #[test]
    fn failed_calls_are_internal_errors() {
        let e = call_failed(
            "v.example.com",
            &CallError::Call(
                "Post \"https://v.default.svc:443/?timeout=10s\": context deadline exceeded".into(),
            ),
        );
        assert_eq!(e.code, 500);
        assert_eq!(
            e.message,
            "Internal error occurred: failed calling webhook \"v.example.com\": failed to call webhook: Post \"https://v.default.svc:443/?timeout=10s\": context deadline exceeded"
        );
        assert_eq!(
            dry_run_unsupported("v.example.com").message,
            "admission webhook \"v.example.com\" does not support dry run"
        );
    }
}
