//! API errors as Kubernetes reports them: a `Status` object with a reason, an
//! HTTP code, a message phrased as Kubernetes phrases it, and details (the
//! object's name, group and kind, and per-field causes for 422 Invalid).

use serde_json::{json, Value};

/// One field's validation failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// The field's path, e.g. `spec.containers[0].image`.
    pub field: String,
    /// What is wrong with the field.
    pub kind: FieldErrorKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
/// The kinds of field error, each worded as Kubernetes words it.
pub enum FieldErrorKind {
    /// `Required value`: the field is missing; the detail says why it is needed.
    Required(String),
    /// `Invalid value`: the value is refused for `detail`.
    Invalid {
        /// The refused value.
        value: Value,
        /// Why it is refused.
        detail: String,
    },
    /// `Unsupported value`: the value is not one of `supported`.
    NotSupported {
        /// The refused value.
        value: Value,
        /// The values the field accepts, quoted.
        supported: Vec<String>,
    },
    /// `Duplicate value`: the value appears twice where it must be unique.
    Duplicate(Value),
    /// `Not found`: the value names something that does not exist.
    NotFound(Value),
    /// `Forbidden`: the field may not be set here; the detail says why.
    Forbidden(String),
    /// `Too long`: the value is longer than `max`.
    TooLong {
        /// The most the field may hold (bytes or items).
        max: usize,
    },
    /// `Duplicate value` of a value shown as Go's `%#v` prints it
    /// (`map[string]interface {}{"name":"a"}`).
    DuplicateShown(String),
    /// `Too many`: a list or object has more items than `max`.
    TooMany {
        /// How many it has; negative when not known (not shown).
        actual: i64,
        /// The most it may have; negative when not known.
        max: i64,
    },
    /// `Invalid value` for a value of the wrong type (reason
    /// `FieldValueTypeInvalid`).
    TypeInvalid {
        /// The refused value.
        value: Value,
        /// Why it is refused.
        detail: String,
    },
    /// An invalid value shown as Kubernetes (Go) prints it, for values
    /// JSON cannot spell that way (`[]networking.IngressRule(nil)`).
    InvalidShown {
        /// The value as Go prints it.
        shown: String,
        /// Why it is refused.
        detail: String,
    },
}

impl FieldError {
    /// A `Required value` error at `field`.
    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            kind: FieldErrorKind::Required(detail.into()),
        }
    }

    /// An `Invalid value` error at `field`.
    pub fn invalid(
        field: impl Into<String>,
        value: impl Into<Value>,
        detail: impl Into<String>,
    ) -> Self {
        FieldError {
            field: field.into(),
            kind: FieldErrorKind::Invalid {
                value: value.into(),
                detail: detail.into(),
            },
        }
    }

    /// An `Unsupported value` error at `field`, listing the values it accepts.
    pub fn not_supported(
        field: impl Into<String>,
        value: impl Into<Value>,
        supported: &[&str],
    ) -> Self {
        FieldError {
            field: field.into(),
            kind: FieldErrorKind::NotSupported {
                value: value.into(),
                supported: supported.iter().map(|s| s.to_string()).collect(),
            },
        }
    }

    /// A `Duplicate value` error at `field`.
    pub fn duplicate(field: impl Into<String>, value: impl Into<Value>) -> Self {
        FieldError {
            field: field.into(),
            kind: FieldErrorKind::Duplicate(value.into()),
        }
    }

    /// `Not found: <value>`: a reference to something that does not exist.
    pub fn not_found(field: impl Into<String>, value: impl Into<Value>) -> Self {
        FieldError {
            field: field.into(),
            kind: FieldErrorKind::NotFound(value.into()),
        }
    }

    /// `Too long: may not be more than <max> bytes`.
    pub fn too_long(field: impl Into<String>, max: usize) -> Self {
        FieldError {
            field: field.into(),
            kind: FieldErrorKind::TooLong { max },
        }
    }

    /// A `Duplicate value` error showing the value as `shown`, verbatim.
    pub fn duplicate_shown(field: impl Into<String>, shown: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            kind: FieldErrorKind::DuplicateShown(shown.into()),
        }
    }

    /// `Too many: <actual>: must have at most <max> items` (`field.TooMany`).
    pub fn too_many(field: impl Into<String>, actual: i64, max: i64) -> Self {
        FieldError {
            field: field.into(),
            kind: FieldErrorKind::TooMany { actual, max },
        }
    }

    /// `Invalid value` of reason `FieldValueTypeInvalid` (`field.TypeInvalid`):
    /// the value is not of the type the field has.
    pub fn type_invalid(
        field: impl Into<String>,
        value: impl Into<Value>,
        detail: impl Into<String>,
    ) -> Self {
        FieldError {
            field: field.into(),
            kind: FieldErrorKind::TypeInvalid {
                value: value.into(),
                detail: detail.into(),
            },
        }
    }

    /// An invalid value printed as `shown`, verbatim.
    pub fn invalid_shown(
        field: impl Into<String>,
        shown: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        FieldError {
            field: field.into(),
            kind: FieldErrorKind::InvalidShown {
                shown: shown.into(),
                detail: detail.into(),
            },
        }
    }

    /// A `Forbidden` error at `field`.
    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            kind: FieldErrorKind::Forbidden(detail.into()),
        }
    }

    /// The cause's reason, as in `metav1.CauseType`.
    pub fn reason(&self) -> &'static str {
        match self.kind {
            FieldErrorKind::Required(_) => "FieldValueRequired",
            FieldErrorKind::Invalid { .. } | FieldErrorKind::InvalidShown { .. } => {
                "FieldValueInvalid"
            }
            FieldErrorKind::NotSupported { .. } => "FieldValueNotSupported",
            FieldErrorKind::Duplicate(_) | FieldErrorKind::DuplicateShown(_) => {
                "FieldValueDuplicate"
            }
            FieldErrorKind::NotFound(_) => "FieldValueNotFound",
            FieldErrorKind::Forbidden(_) => "FieldValueForbidden",
            FieldErrorKind::TooLong { .. } => "FieldValueTooLong",
            FieldErrorKind::TooMany { .. } => "FieldValueTooMany",
            FieldErrorKind::TypeInvalid { .. } => "FieldValueTypeInvalid",
        }
    }

    /// The message without the field path.
    pub fn detail_message(&self) -> String {
        fn show(v: &Value) -> String {
            match v {
                Value::String(s) => format!("{s:?}"),
                other => other.to_string(),
            }
        }
        let with = |head: String, detail: &str| {
            if detail.is_empty() {
                head
            } else {
                format!("{head}: {detail}")
            }
        };
        match &self.kind {
            FieldErrorKind::Required(d) => with("Required value".into(), d),
            FieldErrorKind::Invalid { value, detail } => {
                with(format!("Invalid value: {}", show(value)), detail)
            }
            FieldErrorKind::InvalidShown { shown, detail } => {
                with(format!("Invalid value: {shown}"), detail)
            }
            FieldErrorKind::NotSupported { value, supported } => format!(
                "Unsupported value: {}: supported values: {}",
                show(value),
                supported
                    .iter()
                    .map(|s| format!("{s:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            FieldErrorKind::Duplicate(v) => format!("Duplicate value: {}", show(v)),
            FieldErrorKind::DuplicateShown(v) => format!("Duplicate value: {v}"),
            FieldErrorKind::NotFound(v) => format!("Not found: {}", show(v)),
            FieldErrorKind::Forbidden(d) => with("Forbidden".into(), d),
            FieldErrorKind::TooLong { max: 1 } => "Too long: may not be more than 1 byte".into(),
            FieldErrorKind::TooLong { max } => {
                format!("Too long: may not be more than {max} bytes")
            }
            FieldErrorKind::TooMany { actual, max } => {
                let head = if *actual >= 0 {
                    format!("Too many: {actual}")
                } else {
                    "Too many".to_string()
                };
                let detail = match max {
                    1 => "must have at most 1 item".to_string(),
                    m if *m >= 0 => format!("must have at most {m} items"),
                    _ => "has too many items".to_string(),
                };
                format!("{head}: {detail}")
            }
            FieldErrorKind::TypeInvalid { value, detail } => {
                with(format!("Invalid value: {}", show(value)), detail)
            }
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.detail_message())
    }
}

/// A Kubernetes API error, rendered as a `Status`.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    /// The HTTP status code (and the Status' `code`).
    pub code: u16,
    /// The Status' `reason` (`NotFound`, `Conflict`, ...).
    pub reason: &'static str,
    /// The Status' `message`, as clients show it.
    pub message: String,
    /// `details` of the Status, if any.
    pub details: Option<Value>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.reason, self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

/// A resource as errors name it: `pods`, `deployments.apps`.
pub fn group_resource(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

/// A kind as errors name it: `Pod`, `Deployment.apps` (Go's
/// `GroupKind.String()`).
pub fn group_kind(group: &str, kind: &str) -> String {
    if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    }
}

fn details(group: &str, kind: &str, name: &str) -> Value {
    let mut d = json!({ "name": name, "kind": kind });
    if !group.is_empty() {
        d["group"] = json!(group);
    }
    d
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    /// 404: `pods "web" not found`.
    pub fn not_found(group: &str, resource: &str, name: &str) -> Self {
        ApiError {
            details: Some(details(group, resource, name)),
            ..Self::new(
                404,
                "NotFound",
                format!("{} {name:?} not found", group_resource(group, resource)),
            )
        }
    }

    /// 404 for a path that names no resource: `the server could not find
    /// the requested resource`.
    pub fn no_such_path() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }

    /// 409: `pods "web" already exists`.
    pub fn already_exists(group: &str, resource: &str, name: &str) -> Self {
        ApiError {
            details: Some(details(group, resource, name)),
            ..Self::new(
                409,
                "AlreadyExists",
                format!(
                    "{} {name:?} already exists",
                    group_resource(group, resource)
                ),
            )
        }
    }

    /// 409: `Operation cannot be fulfilled on pods "web": <why>`.
    pub fn conflict(group: &str, resource: &str, name: &str, why: &str) -> Self {
        ApiError {
            details: Some(details(group, resource, name)),
            ..Self::new(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {} {name:?}: {why}",
                    group_resource(group, resource)
                ),
            )
        }
    }

    /// The optimistic-concurrency conflict.
    pub fn stale(group: &str, resource: &str, name: &str) -> Self {
        Self::conflict(
            group,
            resource,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 422: `Pod "web" is invalid: spec.containers[0].image: Required value`
    /// (`Deployment.apps "web" is invalid: ...` in a named group).
    pub fn invalid(group: &str, kind: &str, name: &str, errors: &[FieldError]) -> Self {
        let list = match errors {
            [one] => one.to_string(),
            many => format!(
                "[{}]",
                many.iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let mut d = details(group, kind, name);
        d["causes"] = Value::Array(
            errors
                .iter()
                .map(|e| json!({"reason": e.reason(), "message": e.detail_message(), "field": e.field}))
                .collect(),
        );
        ApiError {
            details: Some(d),
            ..Self::new(
                422,
                "Invalid",
                format!("{} {name:?} is invalid: {list}", group_kind(group, kind)),
            )
        }
    }

    /// A 400 BadRequest with `message`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// A 405 MethodNotAllowed with `message`.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message)
    }

    /// A 406 NotAcceptable with `message`.
    pub fn not_acceptable(message: impl Into<String>) -> Self {
        Self::new(406, "NotAcceptable", message)
    }

    /// 410 Expired: a resourceVersion older than the history kept.
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// A 413 RequestEntityTooLarge for a body over `limit` bytes.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: limit is {limit}"),
        )
    }

    /// 415, worded as Kubernetes words it; like Kubernetes, the message
    /// lists what is accepted and does not echo the `content_type` refused.
    pub fn unsupported_media_type(content_type: &str, accepted: &[&str]) -> Self {
        let _ = content_type;
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: {}",
                accepted.join(", ")
            ),
        )
    }

    /// A 429 TooManyRequests asking the client to retry after the given seconds.
    pub fn too_many_requests(retry_after_seconds: u32) -> Self {
        ApiError {
            details: Some(json!({"retryAfterSeconds": retry_after_seconds})),
            ..Self::new(
                429,
                "TooManyRequests",
                "Too many requests, please try again later.",
            )
        }
    }

    /// A 401 Unauthorized.
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    /// A 403 Forbidden with `message`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }

    /// 503 `ServiceUnavailable` with `message` (a proxy's backend is missing
    /// or unreachable).
    pub fn service_unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "ServiceUnavailable", message)
    }

    /// 500 `Internal error occurred: <err>`, the error also as the cause.
    pub fn internal(message: impl std::fmt::Display) -> Self {
        let message = message.to_string();
        ApiError {
            details: Some(json!({"causes": [{"message": message}]})),
            ..Self::new(
                500,
                "InternalError",
                format!("Internal error occurred: {message}"),
            )
        }
    }

    /// 403 on a resource: `pods "web" is forbidden: <why>` (`pods is
    /// forbidden: <why>` when no name is involved, as for a list).
    pub fn forbidden_on(group: &str, resource: &str, name: &str, why: &str) -> Self {
        let gr = group_resource(group, resource);
        let message = if name.is_empty() {
            format!("{gr} is forbidden: {why}")
        } else {
            format!("{gr} {name:?} is forbidden: {why}")
        };
        ApiError {
            details: Some(details(group, resource, name)),
            ..Self::new(403, "Forbidden", message)
        }
    }

    /// A 503 ServiceUnavailable with `message`.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "ServiceUnavailable", message)
    }

    /// 504 `Timeout: <message>`, as `NewTimeoutError` with no retry hint.
    pub fn timeout(message: impl std::fmt::Display) -> Self {
        Self::timeout_after(message, 0)
    }

    /// 504 `Timeout: <message>` telling the client to retry after
    /// `retry_after_seconds` (omitted when 0).
    pub fn timeout_after(message: impl std::fmt::Display, retry_after_seconds: u32) -> Self {
        ApiError {
            details: (retry_after_seconds > 0)
                .then(|| json!({"retryAfterSeconds": retry_after_seconds})),
            ..Self::new(504, "Timeout", format!("Timeout: {message}"))
        }
    }

    /// A read at a resourceVersion the server has not reached yet: 504 with
    /// the `ResourceVersionTooLarge` cause client-go's reflector looks for.
    pub fn too_large_resource_version(requested: i64, current: i64) -> Self {
        ApiError {
            details: Some(json!({
                "causes": [{
                    "reason": "ResourceVersionTooLarge",
                    "message": "Too large resource version",
                }],
                "retryAfterSeconds": 1,
            })),
            ..Self::new(
                504,
                "Timeout",
                format!(
                    "Timeout: Too large resource version: {requested}, current resource version: {current}"
                ),
            )
        }
    }

    /// 410 Gone (as opposed to [`ApiError::expired`]).
    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Gone", message)
    }

    /// 405 for a verb a resource does not serve:
    /// `create is not supported on resources of kind "nodes"`.
    pub fn method_not_supported(group: &str, resource: &str, action: &str) -> Self {
        let mut d = json!({ "kind": resource });
        if !group.is_empty() {
            d["group"] = json!(group);
        }
        ApiError {
            details: Some(d),
            ..Self::new(
                405,
                "MethodNotAllowed",
                format!(
                    "{action} is not supported on resources of kind {:?}",
                    group_resource(group, resource)
                ),
            )
        }
    }

    /// The `Status` object's JSON as Kubernetes writes it (members in
    /// `metav1.Status` order, Go's escaping; no trailing newline).
    pub fn status_json(&self) -> Vec<u8> {
        status_json(&self.to_status())
    }

    /// The `Status` object.
    pub fn to_status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if self.reason.is_empty() {
            // Go leaves an empty reason out (`omitempty`).
            if let Some(m) = s.as_object_mut() {
                m.remove("reason");
            }
        }
        if let Some(d) = &self.details {
            s["details"] = d.clone();
        }
        s
    }
}

/// A `Status` object's JSON as Kubernetes writes it: members in the order
/// of `metav1.Status` (`kind, apiVersion, metadata, status, message, reason,
/// details, code`), details and causes in theirs, and Go's escaping.
pub fn status_json(status: &Value) -> Vec<u8> {
    crate::gojson::to_vec_ordered(status, &crate::gojson::STATUS)
}

/// Whether a value is a `Status` object.
pub fn is_status(v: &Value) -> bool {
    v.get("kind").and_then(Value::as_str) == Some("Status")
        && v.get("apiVersion").and_then(Value::as_str) == Some("v1")
}

/// A success `Status` (what some deletes return).
pub fn success_status(group: &str, kind: &str, name: &str, uid: &str) -> Value {
    let mut d = details(group, kind, name);
    d["uid"] = json!(uid);
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": d,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_like_kubernetes() {
        assert_eq!(
            ApiError::not_found("", "pods", "web").message,
            r#"pods "web" not found"#
        );
        assert_eq!(
            ApiError::already_exists("apps", "deployments", "d").message,
            r#"deployments.apps "d" already exists"#
        );
        assert_eq!(
            ApiError::stale("", "configmaps", "c").message,
            r#"Operation cannot be fulfilled on configmaps "c": the object has been modified; please apply your changes to the latest version and try again"#
        );
        let one = ApiError::invalid(
            "",
            "Pod",
            "p",
            &[FieldError::required("spec.containers[0].image", "")],
        );
        assert_eq!(one.code, 422);
        assert_eq!(
            one.message,
            r#"Pod "p" is invalid: spec.containers[0].image: Required value"#
        );
        let two = ApiError::invalid(
            "",
            "Service",
            "s",
            &[
                FieldError::not_supported("spec.type", "Weird", &["ClusterIP", "NodePort"]),
                FieldError::invalid("metadata.name", "A_B", "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'"),
            ],
        );
        assert!(two.message.starts_with(r#"Service "s" is invalid: [spec.type: Unsupported value: "Weird": supported values: "ClusterIP", "NodePort", metadata.name: Invalid value: "A_B": a lowercase"#), "{}", two.message);
        let st = two.to_status();
        assert_eq!(
            st["details"]["causes"][0]["reason"],
            "FieldValueNotSupported"
        );
        assert_eq!(st["details"]["causes"][1]["field"], "metadata.name");
    }

    /// Bodies as a Kubernetes API server sent them (quoted in the Python
    /// client's issues and Kubernetes' release notes; their
    /// `Content-Length` counts the trailing newline the server adds).
    #[test]
    fn status_bytes_are_kubernetes_bytes() {
        let not_found = ApiError::not_found("", "pods", "abc");
        assert_eq!(
            String::from_utf8(not_found.status_json()).unwrap(),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods \"abc\" not found","reason":"NotFound","details":{"name":"abc","kind":"pods"},"code":404}"#
        );
        let forbidden = ApiError::forbidden_on(
            "",
            "pods",
            "pod-labeler-659c8c99d5-t96pw",
            r#"User "system:serviceaccount:default:pod-labeler" cannot patch resource "pods" in API group "" in the namespace "default""#,
        );
        let body = forbidden.status_json();
        assert_eq!(
            String::from_utf8(body.clone()).unwrap(),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods \"pod-labeler-659c8c99d5-t96pw\" is forbidden: User \"system:serviceaccount:default:pod-labeler\" cannot patch resource \"pods\" in API group \"\" in the namespace \"default\"","reason":"Forbidden","details":{"name":"pod-labeler-659c8c99d5-t96pw","kind":"pods"},"code":403}"#
        );
        assert_eq!(body.len() + 1, 358, "the Content-Length Kubernetes sent");
        // Details and causes in their Go order; Go's escaping.
        let invalid = ApiError::invalid(
            "apps",
            "Deployment",
            "d",
            &[FieldError::invalid("spec.x", "a<b>&c", "bad")],
        );
        assert_eq!(
            String::from_utf8(invalid.status_json()).unwrap(),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Deployment.apps \"d\" is invalid: spec.x: Invalid value: \"a\u003cb\u003e\u0026c\": bad","reason":"Invalid","details":{"name":"d","group":"apps","kind":"Deployment","causes":[{"reason":"FieldValueInvalid","message":"Invalid value: \"a\u003cb\u003e\u0026c\": bad","field":"spec.x"}]},"code":422}"#
        );
        let future = ApiError::too_large_resource_version(5, 4);
        assert!(String::from_utf8(future.status_json())
            .unwrap()
            .ends_with(r#""details":{"causes":[{"reason":"ResourceVersionTooLarge","message":"Too large resource version"}],"retryAfterSeconds":1},"code":504}"#));
        let gone = success_status("apps", "deployments", "d", "u-1");
        assert_eq!(
            String::from_utf8(status_json(&gone)).unwrap(),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","details":{"name":"d","group":"apps","kind":"deployments","uid":"u-1"}}"#
        );
        assert!(is_status(&gone));
    }

    #[test]
    fn status_shape() {
        let s = ApiError::not_found("apps", "deployments", "x").to_status();
        assert_eq!(s["kind"], "Status");
        assert_eq!(s["apiVersion"], "v1");
        assert_eq!(s["status"], "Failure");
        assert_eq!(s["reason"], "NotFound");
        assert_eq!(s["code"], 404);
        assert_eq!(
            s["details"],
            json!({"name": "x", "group": "apps", "kind": "deployments"})
        );
        let u = ApiError::unauthorized().to_status();
        assert!(u.get("details").is_none());
        assert_eq!(u["message"], "Unauthorized");
    }

    #[test]
    fn every_reason_has_its_code() {
        for (e, code, reason) in [
            (ApiError::bad_request("x"), 400, "BadRequest"),
            (ApiError::unauthorized(), 401, "Unauthorized"),
            (ApiError::forbidden("x"), 403, "Forbidden"),
            (ApiError::not_found("", "pods", "p"), 404, "NotFound"),
            (ApiError::no_such_path(), 404, "NotFound"),
            (ApiError::method_not_allowed("x"), 405, "MethodNotAllowed"),
            (ApiError::not_acceptable("x"), 406, "NotAcceptable"),
            (
                ApiError::already_exists("", "pods", "p"),
                409,
                "AlreadyExists",
            ),
            (ApiError::stale("", "pods", "p"), 409, "Conflict"),
            (ApiError::gone("x"), 410, "Gone"),
            (ApiError::expired("x"), 410, "Expired"),
            (ApiError::too_large(3145728), 413, "RequestEntityTooLarge"),
            (
                ApiError::unsupported_media_type("a/b", &["application/json"]),
                415,
                "UnsupportedMediaType",
            ),
            (
                ApiError::invalid("", "Pod", "p", &[FieldError::required("spec", "")]),
                422,
                "Invalid",
            ),
            (ApiError::too_many_requests(1), 429, "TooManyRequests"),
            (ApiError::internal("boom"), 500, "InternalError"),
            (ApiError::unavailable("x"), 503, "ServiceUnavailable"),
            (ApiError::timeout("x"), 504, "Timeout"),
        ] {
            assert_eq!((e.code, e.reason), (code, reason), "{e}");
            let st = e.to_status();
            assert_eq!(st["code"], code);
            assert_eq!(st["reason"], reason);
            assert_eq!(st["status"], "Failure");
            assert_eq!(st["metadata"], json!({}));
        }
    }

    #[test]
    fn edge_errors_are_worded_like_kubernetes() {
        assert_eq!(
            ApiError::unsupported_media_type("text/plain", &["application/json-patch+json", "application/merge-patch+json"]).message,
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json"
        );
        let nodes = ApiError::method_not_supported("", "nodes", "create");
        assert_eq!(
            nodes.message,
            r#"create is not supported on resources of kind "nodes""#
        );
        assert_eq!(nodes.details, Some(json!({"kind": "nodes"})));
        assert_eq!(
            ApiError::method_not_supported("apps", "deployments", "deletecollection").message,
            r#"deletecollection is not supported on resources of kind "deployments.apps""#
        );
        let internal = ApiError::internal("disk on fire").to_status();
        assert_eq!(internal["message"], "Internal error occurred: disk on fire");
        assert_eq!(internal["details"]["causes"][0]["message"], "disk on fire");
        let busy = ApiError::too_many_requests(1).to_status();
        assert_eq!(busy["details"], json!({"retryAfterSeconds": 1}));
        assert_eq!(ApiError::timeout("x").message, "Timeout: x");
        assert!(ApiError::timeout("x").details.is_none());
        assert_eq!(
            ApiError::timeout_after("x", 3).details,
            Some(json!({"retryAfterSeconds": 3}))
        );
        let future = ApiError::too_large_resource_version(50, 7).to_status();
        assert_eq!(
            future["message"],
            "Timeout: Too large resource version: 50, current resource version: 7"
        );
        assert_eq!(
            future["details"]["causes"][0]["reason"],
            "ResourceVersionTooLarge"
        );
        assert_eq!(future["details"]["retryAfterSeconds"], 1);
        assert_eq!(
            ApiError::forbidden_on("", "secrets", "", r#"User "bob" cannot list resource "secrets" in API group "" in the namespace "default""#).message,
            r#"secrets is forbidden: User "bob" cannot list resource "secrets" in API group "" in the namespace "default""#
        );
        let f = ApiError::forbidden_on("apps", "deployments", "web", "no");
        assert_eq!(f.message, r#"deployments.apps "web" is forbidden: no"#);
        assert_eq!(
            f.details,
            Some(json!({"name": "web", "group": "apps", "kind": "deployments"}))
        );
    }

    #[test]
    fn field_error_bodies() {
        let cases = [
            (
                FieldError::required("metadata.name", "name or generateName is required"),
                "FieldValueRequired",
                "metadata.name: Required value: name or generateName is required",
            ),
            (
                FieldError::invalid("spec.replicas", -1, "must be greater than or equal to 0"),
                "FieldValueInvalid",
                "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
            ),
            (
                FieldError::duplicate("spec.containers[1].name", "app"),
                "FieldValueDuplicate",
                r#"spec.containers[1].name: Duplicate value: "app""#,
            ),
            (
                FieldError::forbidden("spec.nodeName", ""),
                "FieldValueForbidden",
                "spec.nodeName: Forbidden",
            ),
            (
                FieldError::not_supported(
                    "spec.restartPolicy",
                    "Sometimes",
                    &["Always", "OnFailure", "Never"],
                ),
                "FieldValueNotSupported",
                r#"spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never""#,
            ),
            (
                FieldError::duplicate_shown(
                    "spec.ports[1]",
                    r#"map[string]interface {}{"port":80}"#,
                ),
                "FieldValueDuplicate",
                r#"spec.ports[1]: Duplicate value: map[string]interface {}{"port":80}"#,
            ),
            (
                FieldError::too_many("spec.ports", 3, 2),
                "FieldValueTooMany",
                "spec.ports: Too many: 3: must have at most 2 items",
            ),
            (
                FieldError::too_many("spec.ports", -1, 1),
                "FieldValueTooMany",
                "spec.ports: Too many: must have at most 1 item",
            ),
            (
                FieldError::type_invalid(
                    "spec.replicas",
                    "string",
                    r#"spec.replicas in body must be of type integer: "string""#,
                ),
                "FieldValueTypeInvalid",
                r#"spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string""#,
            ),
        ];
        for (e, reason, text) in cases {
            assert_eq!(e.reason(), reason);
            assert_eq!(e.to_string(), text);
        }
        let st = ApiError::invalid(
            "apps",
            "Deployment",
            "d",
            &[FieldError::required("spec.selector", "")],
        )
        .to_status();
        assert_eq!(
            st["details"],
            json!({
                "name": "d", "group": "apps", "kind": "Deployment",
                "causes": [{"reason": "FieldValueRequired", "message": "Required value", "field": "spec.selector"}]
            })
        );
    }
}
