//! Embedded resources (`x-kubernetes-embedded-resource`) carry a valid
//! `apiVersion`, `kind` and `metadata` (`apiserver/schema/objectmeta`).

use ferrokube_api::status::FieldError;
use ferrokube_api::validation::{is_dns1035_label, validate_object_meta, NameRule};
use serde_json::{Map, Value as Json};

use crate::node::Node;

fn child(path: &str, k: &str) -> String {
    if path.is_empty() {
        k.to_string()
    } else {
        format!("{path}.{k}")
    }
}

/// The embedded resources' errors under `obj` at `path` (the object's root
/// itself is the API server's to check).
pub(crate) fn validate(s: &Node, obj: &Json, path: &str, errs: &mut Vec<FieldError>) {
    match obj {
        Json::Object(fields) => {
            if s.embedded {
                resource(fields, path, errs);
            }
            for (k, v) in fields {
                if let Some(p) = s.properties.get(k) {
                    validate(p, v, &child(path, k), errs);
                } else if let Some(a) = s.additional_schema() {
                    validate(a, v, &format!("{path}[{k}]"), errs);
                }
            }
        }
        Json::Array(items) => {
            if let Some(item) = &s.items {
                for (i, v) in items.iter().enumerate() {
                    validate(item, v, &format!("{path}[{i}]"), errs);
                }
            }
        }
        _ => {}
    }
}

fn resource(x: &Map<String, Json>, path: &str, errs: &mut Vec<FieldError>) {
    for key in ["apiVersion", "kind"] {
        match x.get(key) {
            None => errs.push(FieldError::required(child(path, key), "")),
            Some(Json::String(s)) if s.is_empty() => {
                errs.push(FieldError::required(child(path, key), ""));
            }
            Some(Json::String(s)) => string_field(key, s, path, errs),
            Some(other) => errs.push(FieldError::invalid(
                child(path, key),
                other.clone(),
                "must be a string",
            )),
        }
    }
    match x.get("metadata") {
        None => {}
        Some(Json::Object(meta)) => {
            let mut meta = meta.clone();
            if meta
                .get("name")
                .and_then(Json::as_str)
                .unwrap_or_default()
                .is_empty()
            {
                meta.insert("name".into(), "fakename".into());
            }
            let meta = Json::Object(meta);
            let namespaced = meta
                .get("namespace")
                .and_then(Json::as_str)
                .is_some_and(|n| !n.is_empty());
            for mut e in validate_object_meta(&meta, NameRule::PathSegment, namespaced) {
                e.field = child(path, &e.field);
                errs.push(e);
            }
        }
        Some(other) => errs.push(FieldError::invalid(
            child(path, "metadata"),
            other.clone(),
            "must be an object",
        )),
    }
}

fn string_field(key: &str, s: &str, path: &str, errs: &mut Vec<FieldError>) {
    if key == "apiVersion" {
        if s != "/" && s.matches('/').count() > 1 {
            errs.push(FieldError::invalid(
                child(path, key),
                s,
                format!("unexpected GroupVersion string: {s}"),
            ));
        }
        return;
    }
    let problems = is_dns1035_label(&s.to_lowercase());
    if !problems.is_empty() {
        errs.push(FieldError::invalid(
            child(path, key),
            s,
            format!(
                "may have mixed case, but should otherwise match: {}",
                problems.join(",")
            ),
        ));
    }
}
