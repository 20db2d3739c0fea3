//! The `AdmissionReview` a webhook is sent (`admission.k8s.io/v1`, or
//! `v1beta1` when that is the first version the webhook lists) and the
//! checks of its answer (Kubernetes' `request/admissionreview.go`).

use serde_json::{json, Map, Value};

use super::Request;

/// The `AdmissionReview` versions this server speaks, as webhooks list them.
pub(super) fn pick_version(listed: &[String]) -> Option<&'static str> {
    listed.iter().find_map(|v| match v.as_str() {
        "v1" => Some("v1"),
        "v1beta1" => Some("v1beta1"),
        _ => None,
    })
}

/// The `request` of an AdmissionReview (also CEL's `request` variable).
pub(crate) fn request_json(req: &Request<'_>, uid: &str, obj: Option<&Value>) -> Value {
    let (group, version, kind) = req.kind();
    let def = req.def;
    let mut r = Map::new();
    r.insert("uid".into(), json!(uid));
    let gvk = json!({"group": group, "version": version, "kind": kind});
    let gvr = json!({"group": def.group, "version": def.version, "resource": def.plural});
    r.insert("kind".into(), gvk.clone());
    r.insert("resource".into(), gvr.clone());
    if !req.subresource.is_empty() {
        r.insert("subResource".into(), json!(req.subresource));
    }
    r.insert("requestKind".into(), gvk);
    r.insert("requestResource".into(), gvr);
    if !req.subresource.is_empty() {
        r.insert("requestSubResource".into(), json!(req.subresource));
    }
    if !req.name.is_empty() {
        r.insert("name".into(), json!(req.name));
    }
    if !req.namespace.is_empty() {
        r.insert("namespace".into(), json!(req.namespace));
    }
    r.insert("operation".into(), json!(req.operation.as_str()));
    r.insert("userInfo".into(), user_info(req));
    r.insert("object".into(), obj.cloned().unwrap_or(Value::Null));
    r.insert("oldObject".into(), req.old.cloned().unwrap_or(Value::Null));
    r.insert("dryRun".into(), json!(req.dry_run));
    r.insert("options".into(), req.options.clone());
    Value::Object(r)
}

/// `authenticationv1.UserInfo` with its empty members left out.
fn user_info(req: &Request<'_>) -> Value {
    let mut u = Map::new();
    if let Some(user) = req.user {
        if !user.name.is_empty() {
            u.insert("username".into(), json!(user.name));
        }
        if !user.uid.is_empty() {
            u.insert("uid".into(), json!(user.uid));
        }
        if !user.groups.is_empty() {
            u.insert("groups".into(), json!(user.groups));
        }
        if !user.extra.is_empty() {
            u.insert("extra".into(), json!(user.extra));
        }
    }
    Value::Object(u)
}

/// The whole review for `version`.
pub(super) fn review_body(version: &str, request: Value) -> Vec<u8> {
    let review = json!({
        "kind": "AdmissionReview",
        "apiVersion": format!("admission.k8s.io/{version}"),
        "request": request,
    });
    serde_json::to_vec(&review).unwrap_or_default()
}

/// What a webhook answered, checked.
#[derive(Debug, Default)]
pub(super) struct Answer {
    pub(super) allowed: bool,
    /// The `Status` of a refusal, if the webhook gave one.
    pub(super) status: Option<Value>,
    /// The JSON patch (already base64-decoded and parsed).
    pub(super) patch: Option<Value>,
    pub(super) warnings: Vec<String>,
    pub(super) audit_annotations: Vec<(String, String)>,
}

/// Checks a webhook's answer to a review of `version` with `uid`: the
/// messages are Kubernetes' `VerifyAdmissionResponse`'s.
pub(super) fn verify(
    version: &str,
    uid: &str,
    mutating: bool,
    body: &[u8],
) -> Result<Answer, String> {
    let review: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let api_version = review
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let kind = review.get("kind").and_then(Value::as_str).unwrap_or("");
    let want = format!("admission.k8s.io/{version}");
    if api_version != want || kind != "AdmissionReview" {
        return Err(format!(
            "expected webhook response of {want}, Kind=AdmissionReview, got {api_version}, Kind={kind}"
        ));
    }
    let Some(resp) = review.get("response").filter(|r| r.is_object()) else {
        return Err("webhook response was absent".to_string());
    };
    let got_uid = resp.get("uid").and_then(Value::as_str).unwrap_or("");
    if version == "v1" && got_uid != uid {
        return Err(format!("expected response.uid={uid:?}, got {got_uid:?}"));
    }
    let patch = patch_of(version, mutating, resp)?;
    Ok(Answer {
        allowed: resp
            .get("allowed")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        status: resp.get("status").filter(|s| s.is_object()).cloned(),
        patch,
        warnings: resp
            .get("warnings")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        audit_annotations: resp
            .get("auditAnnotations")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
            .collect(),
    })
}

fn patch_of(version: &str, mutating: bool, resp: &Value) -> Result<Option<Value>, String> {
    use base64::Engine as _;
    let patch = resp
        .get("patch")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty());
    let patch_type = resp.get("patchType").and_then(Value::as_str);
    if version == "v1" {
        match (patch, patch_type) {
            (Some(_), _) | (_, Some(_)) if !mutating => {
                return Err(
                    "validating webhook may not return response.patch or response.patchType"
                        .to_string(),
                )
            }
            (Some(_), None) => {
                return Err("webhook returned response.patch but not response.patchType".to_string())
            }
            (None, Some(_)) => {
                return Err("webhook returned response.patchType but not response.patch".to_string())
            }
            (Some(_), Some(t)) if t != "JSONPatch" => {
                return Err(format!(
                    "webhook returned invalid response.patchType of {t:?}"
                ))
            }
            _ => {}
        }
    }
    let Some(patch) = patch.filter(|_| mutating) else {
        return Ok(None);
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(patch)
        .map_err(|e| e.to_string())?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_version_spoken_is_used() {
        let v = |l: &[&str]| pick_version(&l.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(v(&["v2", "v1beta1", "v1"]), Some("v1beta1"));
        assert_eq!(v(&["v1", "v1beta1"]), Some("v1"));
        assert_eq!(v(&["v2"]), None);
    }

    #[test]
    fn answers_are_checked_with_kubernetes_messages() {
        let ok = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"u1","allowed":true,"warnings":["careful"]}}"#;
        let a = verify("v1", "u1", false, ok).unwrap();
        assert!(a.allowed);
        assert_eq!(a.warnings, ["careful"]);
        assert_eq!(
            verify("v1", "u2", false, ok).unwrap_err(),
            r#"expected response.uid="u2", got "u1""#
        );
        assert_eq!(
            verify("v1beta1", "u1", false, ok).unwrap_err(),
            "expected webhook response of admission.k8s.io/v1beta1, Kind=AdmissionReview, got admission.k8s.io/v1, Kind=AdmissionReview"
        );
        let none = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#;
        assert_eq!(
            verify("v1", "u1", false, none).unwrap_err(),
            "webhook response was absent"
        );
        // [{"op":"add","path":"/metadata/labels/x","value":"y"}]
        let patched = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"u1","allowed":true,"patchType":"JSONPatch","patch":"W3sib3AiOiJhZGQiLCJwYXRoIjoiL21ldGFkYXRhL2xhYmVscy94IiwidmFsdWUiOiJ5In1d"}}"#;
        let a = verify("v1", "u1", true, patched).unwrap();
        assert_eq!(a.patch.unwrap()[0]["path"], "/metadata/labels/x");
        assert_eq!(
            verify("v1", "u1", false, patched).unwrap_err(),
            "validating webhook may not return response.patch or response.patchType"
        );
    }
}
