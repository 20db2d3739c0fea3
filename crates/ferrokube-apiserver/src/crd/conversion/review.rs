//! The `ConversionReview` a conversion webhook is sent and the checks of
//! its answer, as Kubernetes' `webhook_converter.go` makes them: the first
//! review version of `conversionReviewVersions` this server speaks (`v1`,
//! `v1beta1`), the answer's kind, uid and result (`v1` only checks kind and
//! uid, as Kubernetes), one converted object per object sent, each in the
//! desired group/version, of the same kind, name, namespace and uid, with
//! only its labels and annotations taken from the webhook's metadata.

use ferrokube_api::validation::{validate_annotations, validate_labels};
use serde_json::{json, Map, Value};

/// The group of ConversionReviews.
const GROUP: &str = "apiextensions.k8s.io";

/// The first of `versions` this server speaks, as Kubernetes picks it.
pub(crate) fn pick_version(versions: &[String]) -> Option<&'static str> {
    versions.iter().find_map(|v| match v.as_str() {
        "v1" => Some("v1"),
        "v1beta1" => Some("v1beta1"),
        _ => None,
    })
}

/// The review sent: `objects` to convert to `desired` (`group/version`),
/// under `uid`. As Kubernetes' client sends it, with an empty response.
pub(crate) fn request_body(version: &str, uid: &str, desired: &str, objects: &[&Value]) -> Value {
    json!({
        "kind": "ConversionReview",
        "apiVersion": format!("{GROUP}/{version}"),
        "request": {
            "uid": uid,
            "desiredAPIVersion": desired,
            "objects": objects,
        },
        "response": {"uid": "", "convertedObjects": null, "result": {"metadata": {}}},
    })
}

/// `group/version, Kind=kind` (Go's `GroupVersionKind.String()`) of an
/// object's `apiVersion` and `kind`.
pub(crate) fn gvk_of(obj: &Value) -> String {
    let s = |k: &str| obj.get(k).and_then(Value::as_str).unwrap_or_default();
    gvk(s("apiVersion"), s("kind"))
}

/// `group/version, Kind=kind` of `api_version` and `kind`.
pub(crate) fn gvk(api_version: &str, kind: &str) -> String {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    format!("{group}/{version}, Kind={kind}")
}

/// The converted objects of the answer `body` to the review of `version`
/// sent under `uid`; the error is what Kubernetes says after
/// `conversion webhook for <gvk> failed: `.
pub(crate) fn converted_objects(
    version: &str,
    uid: &str,
    body: &[u8],
) -> Result<Vec<Value>, String> {
    if body.is_empty() {
        return Err(
            "0-length response with status code: 200 and content type: application/json".into(),
        );
    }
    let review: Value = serde_json::from_slice(body)
        .map_err(|e| format!("couldn't get version/kind; json parse error: {e}"))?;
    if version == "v1" {
        let want = gvk(&format!("{GROUP}/v1"), "ConversionReview");
        let got = gvk_of(&review);
        if got != want {
            return Err(format!("expected webhook response of {want}, got {got}"));
        }
    }
    let Some(response) = review.get("response").filter(|r| r.is_object()) else {
        return Err("no response provided".into());
    };
    if version == "v1" {
        let got = response.get("uid").and_then(Value::as_str).unwrap_or("");
        if got != uid {
            return Err(format!("expected response.uid={uid:?}, got {got:?}"));
        }
    }
    let result = response.get("result").unwrap_or(&Value::Null);
    let status = result.get("status").and_then(Value::as_str).unwrap_or("");
    if status != "Success" {
        let message = result.get("message").and_then(Value::as_str).unwrap_or("");
        return Err(if message.is_empty() {
            format!("response.result.status was '{status}', not 'Success'")
        } else {
            message.to_string()
        });
    }
    Ok(response
        .get("convertedObjects")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default())
}

/// Go's `%T` of a JSON value as Go decodes it into `interface{}`.
fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

fn meta_str<'a>(obj: &'a Value, key: &str) -> &'a str {
    obj.get("metadata")
        .and_then(|m| m.get(key))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// `validateConvertedObject`: the converted object keeps the kind, name,
/// namespace and uid of the original.
pub(crate) fn same_identity(original: &Value, converted: &Value) -> Result<(), String> {
    let kind = |o: &Value| {
        o.get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let (a, b) = (kind(original), kind(converted));
    if a != b {
        return Err(format!("must have the same kind: {a} != {b}"));
    }
    for (key, what) in [("name", "name"), ("namespace", "namespace"), ("uid", "UID")] {
        let (a, b) = (meta_str(original, key), meta_str(converted, key));
        if a != b {
            return Err(format!("must have the same {what}: {a} != {b}"));
        }
    }
    Ok(())
}

/// `restoreObjectMeta`: `converted` gets the metadata of `original`, but
/// for the labels and annotations the webhook answered (checked as
/// Kubernetes checks them when they changed).
pub(crate) fn restore_metadata(original: &Value, converted: &mut Value) -> Result<(), String> {
    let answered = match converted.get("metadata") {
        None => return Err("missing metadata in converted object".into()),
        Some(Value::Object(m)) => m.clone(),
        Some(other) => {
            return Err(format!(
                "invalid metadata of type {} in converted object",
                go_type(other)
            ))
        }
    };
    let mut meta = match original.get("metadata") {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    for field in ["labels", "annotations"] {
        let theirs = match answered.get(field) {
            None | Some(Value::Null) => {
                meta.remove(field);
                continue;
            }
            Some(Value::Object(m)) => m,
            Some(other) => {
                return Err(format!(
                    "invalid metadata.{field} of type {} in converted object",
                    go_type(other)
                ))
            }
        };
        let ours = meta.get(field).and_then(Value::as_object);
        let mut changed = ours.map_or(0, Map::len) != theirs.len();
        for (k, v) in theirs {
            if !v.is_string() {
                return Err(format!(
                    "metadata.{field}[{k}] must be a string, but is {} in converted object",
                    go_type(v)
                ));
            }
            changed |= ours.and_then(|o| o.get(k)) != Some(v);
        }
        if changed {
            let value = Value::Object(theirs.clone());
            let errs = if field == "labels" {
                validate_labels(Some(&value), "metadata.labels")
            } else {
                validate_annotations(Some(&value), "metadata.annotation")
            };
            if !errs.is_empty() {
                return Err(aggregate(&errs));
            }
        }
        meta.insert(field.into(), Value::Object(theirs.clone()));
    }
    converted["metadata"] = Value::Object(meta);
    Ok(())
}

/// Go's `ErrorList.ToAggregate().Error()`: one error alone, several in
/// brackets.
fn aggregate(errs: &[ferrokube_api::status::FieldError]) -> String {
    let texts: Vec<String> = errs.iter().map(ToString::to_string).collect();
    match texts.as_slice() {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_spoken_review_version_is_picked() {
        let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(pick_version(&v(&["v2", "v1beta1", "v1"])), Some("v1beta1"));
        assert_eq!(pick_version(&v(&["v1", "v1beta1"])), Some("v1"));
        assert_eq!(pick_version(&v(&["v3"])), None);
    }

    #[test]
    fn the_request_carries_uid_desired_version_and_objects() {
        let obj = json!({"apiVersion": "example.com/v1", "kind": "Widget"});
        let body = request_body("v1", "u-1", "example.com/v2", &[&obj]);
        assert_eq!(body["apiVersion"], "apiextensions.k8s.io/v1");
        assert_eq!(body["kind"], "ConversionReview");
        assert_eq!(body["request"]["uid"], "u-1");
        assert_eq!(body["request"]["desiredAPIVersion"], "example.com/v2");
        assert_eq!(body["request"]["objects"], json!([obj]));
        let beta = request_body("v1beta1", "u", "example.com/v2", &[]);
        assert_eq!(beta["apiVersion"], "apiextensions.k8s.io/v1beta1");
    }

    fn answer(uid: &str, status: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
            "response": {"uid": uid, "result": {"status": status}, "convertedObjects": [{"a": 1}]}}))
        .unwrap()
    }

    #[test]
    fn answers_are_checked_as_kubernetes_checks_them() {
        assert_eq!(
            converted_objects("v1", "u", &answer("u", "Success")).unwrap(),
            vec![json!({"a": 1})]
        );
        assert_eq!(
            converted_objects("v1", "u", &answer("x", "Success")).unwrap_err(),
            r#"expected response.uid="u", got "x""#
        );
        // v1beta1 answers are not checked for their uid.
        assert!(converted_objects("v1beta1", "u", &answer("x", "Success")).is_ok());
        assert_eq!(
            converted_objects("v1", "u", &answer("u", "Failure")).unwrap_err(),
            "response.result.status was 'Failure', not 'Success'"
        );
        let refused = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
            "response": {"uid": "u", "result": {"status": "Failure", "message": "cannot convert"}}});
        assert_eq!(
            converted_objects("v1", "u", &serde_json::to_vec(&refused).unwrap()).unwrap_err(),
            "cannot convert"
        );
        let wrong = json!({"apiVersion": "v1", "kind": "Status"});
        assert_eq!(
            converted_objects("v1", "u", &serde_json::to_vec(&wrong).unwrap()).unwrap_err(),
            "expected webhook response of apiextensions.k8s.io/v1, Kind=ConversionReview, got /v1, Kind=Status"
        );
        let none = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview"});
        assert_eq!(
            converted_objects("v1", "u", &serde_json::to_vec(&none).unwrap()).unwrap_err(),
            "no response provided"
        );
        assert_eq!(
            converted_objects("v1", "u", b"").unwrap_err(),
            "0-length response with status code: 200 and content type: application/json"
        );
    }

    #[test]
    fn identity_may_not_change() {
        let a = json!({"kind": "W", "metadata": {"name": "a", "namespace": "n", "uid": "1"}});
        assert!(same_identity(&a, &a).is_ok());
        let mut b = a.clone();
        b["metadata"]["name"] = json!("b");
        assert_eq!(
            same_identity(&a, &b).unwrap_err(),
            "must have the same name: a != b"
        );
        let mut c = a.clone();
        c["metadata"]["uid"] = json!("2");
        assert_eq!(
            same_identity(&a, &c).unwrap_err(),
            "must have the same UID: 1 != 2"
        );
        let mut d = a.clone();
        d["kind"] = json!("X");
        assert_eq!(
            same_identity(&a, &d).unwrap_err(),
            "must have the same kind: W != X"
        );
    }

    #[test]
    fn only_labels_and_annotations_come_from_the_webhook() {
        let original = json!({"metadata": {"name": "a", "resourceVersion": "7",
            "labels": {"x": "1"}, "annotations": {"keep": "me"}}});
        let mut converted = json!({"spec": {}, "metadata": {"name": "a", "resourceVersion": "99",
            "generation": 5, "labels": {"x": "2", "y": "3"}}});
        restore_metadata(&original, &mut converted).unwrap();
        assert_eq!(
            converted["metadata"],
            json!({"name": "a", "resourceVersion": "7", "labels": {"x": "2", "y": "3"}})
        );
        let mut bad = json!({"metadata": {"labels": {"x": 1}}});
        assert_eq!(
            restore_metadata(&original, &mut bad).unwrap_err(),
            "metadata.labels[x] must be a string, but is int64 in converted object"
        );
        let mut invalid = json!({"metadata": {"labels": {"x": "-bad-"}}});
        assert!(restore_metadata(&original, &mut invalid)
            .unwrap_err()
            .starts_with("metadata.labels: Invalid value: \"-bad-\""));
        assert_eq!(
            restore_metadata(&original, &mut json!({})).unwrap_err(),
            "missing metadata in converted object"
        );
        assert_eq!(
            restore_metadata(&original, &mut json!({"metadata": "x"})).unwrap_err(),
            "invalid metadata of type string in converted object"
        );
    }
}
