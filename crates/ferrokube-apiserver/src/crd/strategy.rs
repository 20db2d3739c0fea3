//! The strategy of the CustomResourceDefinition kind (Kubernetes'
//! `registry/customresourcedefinition/strategy.go`): defaults, the typed
//! check, status cleared on create and kept on update (a `/status` write
//! keeps the spec), the generation bumped by spec changes, the storage
//! version recorded in `status.storedVersions`, and validation.

use ferrokube_api::registry::ResourceDef;
use ferrokube_api::status::FieldError;
use serde_json::{json, Value};

use super::{defaults, spec, validation};
use crate::authn::UserInfo;
use crate::strategy::{Checked, Strategy};

/// The CRD kind's rules.
#[derive(Debug, Default)]
pub(crate) struct CrdStrategy;

/// `typed` with the numbers of `input` where both hold a number: the types
/// read schema bounds as floats (`maximum: 10` would come back `10.0`),
/// Kubernetes keeps them as written.
fn keep_numbers(typed: &mut Value, input: &Value) {
    match (typed, input) {
        (t @ Value::Number(_), Value::Number(i)) => *t = Value::Number(i.clone()),
        (Value::Object(t), Value::Object(i)) => {
            for (k, v) in t.iter_mut() {
                if let Some(iv) = i.get(k) {
                    keep_numbers(v, iv);
                }
            }
        }
        (Value::Array(t), Value::Array(i)) => {
            for (v, iv) in t.iter_mut().zip(i) {
                keep_numbers(v, iv);
            }
        }
        _ => {}
    }
}

impl Strategy for CrdStrategy {
    fn default(&self, _def: &ResourceDef, obj: &mut Value) {
        defaults::default_crd(obj);
    }

    fn check_fields(&self, def: &ResourceDef, obj: Value) -> Result<Checked, String> {
        let c = crate::typed::check(def.group, def.version, def.kind, &obj)
            .map_err(|e| e.to_string())?;
        let mut value = c.value;
        keep_numbers(&mut value, &obj);
        Ok(Checked {
            value,
            unknown: c.unknown,
        })
    }

    fn prepare_for_create(&self, _def: &ResourceDef, obj: &mut Value, _user: Option<&UserInfo>) {
        obj["status"] = json!({});
        obj["metadata"]["generation"] = json!(1);
        spec::record_storage_version(obj);
    }

    fn prepare_for_update(&self, _def: &ResourceDef, old: &Value, new: &mut Value, sub: &str) {
        if sub == "status" {
            new["spec"] = old.get("spec").cloned().unwrap_or(Value::Null);
            return;
        }
        new["status"] = old.get("status").cloned().unwrap_or_else(|| json!({}));
        let generation = old
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let bumped = if old.get("spec") != new.get("spec") {
            generation + 1
        } else {
            generation
        };
        new["metadata"]["generation"] = json!(bumped);
        spec::record_storage_version(new);
    }

    fn validate_create(&self, def: &ResourceDef, obj: &Value) -> Vec<FieldError> {
        validation::validate_create(def, obj)
    }

    fn validate_update(
        &self,
        def: &ResourceDef,
        old: &Value,
        new: &Value,
        sub: &str,
    ) -> Vec<FieldError> {
        if sub == "status" {
            validation::validate_status_update(def, new)
        } else {
            validation::validate_update(def, old, new)
        }
    }

    fn has_generation(&self, _def: &ResourceDef) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def() -> ResourceDef {
        ferrokube_api::registry::Registry::default()
            .get("apiextensions.k8s.io", "v1", "customresourcedefinitions")
            .cloned()
            .unwrap()
    }

    #[test]
    fn numbers_stay_as_written_and_unknown_fields_are_found() {
        let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"}, "bogus": 1,
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget"},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                        "n": {"type": "integer", "maximum": 10}}}}}]}});
        let c = CrdStrategy.check_fields(&def(), crd).unwrap();
        assert_eq!(c.unknown, vec!["bogus".to_string()]);
        let max = &c.value["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["n"]
            ["maximum"];
        assert_eq!(max.to_string(), "10");
    }

    #[test]
    fn status_is_kept_on_update_and_the_spec_on_a_status_write() {
        let old = json!({"metadata": {"generation": 1}, "spec": {"versions": [{"name": "v1", "storage": true}]},
            "status": {"storedVersions": ["v1"], "conditions": [{"type": "Established"}]}});
        let mut new = json!({"metadata": {}, "spec": {"versions": [{"name": "v1", "storage": false},
            {"name": "v2", "storage": true}]}, "status": {}});
        CrdStrategy.prepare_for_update(&def(), &old, &mut new, "");
        assert_eq!(new["metadata"]["generation"], 2);
        assert_eq!(new["status"]["storedVersions"], json!(["v1", "v2"]));
        assert_eq!(new["status"]["conditions"][0]["type"], "Established");
        let mut st =
            json!({"metadata": {"generation": 1}, "spec": {"changed": true}, "status": {"x": 1}});
        CrdStrategy.prepare_for_update(&def(), &old, &mut st, "status");
        assert_eq!(st["spec"], old["spec"]);
        assert_eq!(st["status"]["x"], 1);
    }
}
