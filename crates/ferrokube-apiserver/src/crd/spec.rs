//! Reading a CustomResourceDefinition: its versions, stored versions, and
//! where each per-version part lives.
//!
//! Kubernetes validates the internal form of a CRD, in which a part that is
//! the same in every version (the schema, the subresources, the printer
//! columns) is held once at the top (`spec.validation`,
//! `spec.subresources`, `spec.additionalPrinterColumns`): its errors are
//! reported once, under that path. [`Parts`] says, per part, whether that
//! is so.

use serde_json::Value;

/// The `versions` of `obj` as JSON (empty if none).
pub(crate) fn versions(obj: &Value) -> &[Value] {
    obj.pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// Whether every version holds the same `key` (`schema`, `subresources`,
/// `additionalPrinterColumns`), Kubernetes' test for hoisting it to the
/// top of the internal form (absent and `null` are alike).
fn identical(obj: &Value, key: &str) -> bool {
    let vs = versions(obj);
    let Some(first) = vs.first() else {
        return false;
    };
    let norm = |v: &Value| v.get(key).filter(|x| !x.is_null()).cloned();
    let want = norm(first);
    vs.iter().all(|v| norm(v) == want)
}

/// Which per-version parts Kubernetes holds once at the top.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Parts {
    /// The schemas are identical (`spec.validation`).
    pub(crate) schema: bool,
    /// The subresources are identical (`spec.subresources`).
    pub(crate) subresources: bool,
    /// The printer columns are identical (`spec.additionalPrinterColumns`).
    pub(crate) columns: bool,
}

impl Parts {
    /// The parts of `obj`.
    pub(crate) fn of(obj: &Value) -> Parts {
        Parts {
            schema: identical(obj, "schema"),
            subresources: identical(obj, "subresources"),
            columns: identical(obj, "additionalPrinterColumns"),
        }
    }
}

/// The storage version's name.
pub(crate) fn storage_version(obj: &Value) -> Option<&str> {
    versions(obj)
        .iter()
        .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .and_then(|v| v.get("name"))
        .and_then(Value::as_str)
}

/// The version named `name`.
pub(crate) fn version<'a>(obj: &'a Value, name: &str) -> Option<&'a Value> {
    versions(obj)
        .iter()
        .find(|v| v.get("name").and_then(Value::as_str) == Some(name))
}

/// `status.storedVersions`.
pub(crate) fn stored_versions(obj: &Value) -> Vec<String> {
    obj.pointer("/status/storedVersions")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Adds the storage version to `status.storedVersions` if it is not there
/// (what the strategy does on create and on every update).
pub(crate) fn record_storage_version(obj: &mut Value) {
    let Some(storage) = storage_version(obj).map(str::to_string) else {
        return;
    };
    let mut stored = stored_versions(obj);
    if stored.contains(&storage) {
        return;
    }
    stored.push(storage);
    if !obj.get("status").is_some_and(Value::is_object) {
        obj["status"] = Value::Object(Default::default());
    }
    obj["status"]["storedVersions"] = stored.into_iter().map(Value::String).collect();
}

/// The CRD's group and `spec.names.plural`.
pub(crate) fn group_plural(obj: &Value) -> (&str, &str) {
    let s = |p: &str| obj.pointer(p).and_then(Value::as_str).unwrap_or_default();
    (s("/spec/group"), s("/spec/names/plural"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn identical_parts_are_held_once() {
        let s = json!({"openAPIV3Schema": {"type": "object"}});
        let crd = json!({"spec": {"versions": [
            {"name": "v1", "schema": s, "subresources": {"status": {}}},
            {"name": "v2", "schema": s},
        ]}});
        let p = Parts::of(&crd);
        assert!(p.schema);
        assert!(!p.subresources);
        assert!(p.columns);
    }

    #[test]
    fn the_storage_version_is_recorded_once() {
        let mut crd = json!({"spec": {"versions": [
            {"name": "v1", "storage": false}, {"name": "v2", "storage": true}]},
            "status": {"storedVersions": ["v1"]}});
        record_storage_version(&mut crd);
        record_storage_version(&mut crd);
        assert_eq!(stored_versions(&crd), vec!["v1", "v2"]);
    }
}
