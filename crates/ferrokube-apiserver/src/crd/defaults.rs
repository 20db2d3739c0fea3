//! A CustomResourceDefinition's defaults (Kubernetes'
//! `apiextensions/v1` `SetDefaults_*`): the singular name and list kind
//! from the kind, conversion `None`, a conversion webhook Service's port
//! 443, and the stored versions from the storage version.

use serde_json::{json, Value};

use super::spec;

/// Fills in the defaults of `crd`.
pub(crate) fn default_crd(crd: &mut Value) {
    let Some(body) = crd.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    if let Some(names) = body.get_mut("names").and_then(Value::as_object_mut) {
        let kind = names
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let empty = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().is_empty();
        if empty(names.get("singular")) {
            names.insert("singular".into(), json!(kind.to_lowercase()));
        }
        if empty(names.get("listKind")) && !kind.is_empty() {
            names.insert("listKind".into(), json!(format!("{kind}List")));
        }
    }
    match body.get_mut("conversion") {
        Some(c) if c.is_object() => {
            if let Some(port) = c.pointer_mut("/webhook/clientConfig/service") {
                if port.get("port").is_none_or(Value::is_null) {
                    port["port"] = json!(443);
                }
            }
        }
        _ => {
            body.insert("conversion".into(), json!({"strategy": "None"}));
        }
    }
    if spec::stored_versions(crd).is_empty() {
        spec::record_storage_version(crd);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_conversion_and_stored_versions_are_defaulted() {
        let mut crd = json!({"spec": {"group": "example.com",
            "names": {"plural": "widgets", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true}]}});
        default_crd(&mut crd);
        assert_eq!(crd["spec"]["names"]["singular"], "widget");
        assert_eq!(crd["spec"]["names"]["listKind"], "WidgetList");
        assert_eq!(crd["spec"]["conversion"], json!({"strategy": "None"}));
        assert_eq!(crd["status"]["storedVersions"], json!(["v1"]));
    }

    #[test]
    fn a_webhook_service_gets_port_443_and_given_names_stay() {
        let mut crd = json!({"spec": {"names": {"kind": "Widget", "singular": "w", "listKind": "Ws"},
            "conversion": {"strategy": "Webhook", "webhook": {"clientConfig": {"service": {"name": "s", "namespace": "n"}}}},
            "versions": []}});
        default_crd(&mut crd);
        assert_eq!(crd["spec"]["names"]["singular"], "w");
        assert_eq!(crd["spec"]["names"]["listKind"], "Ws");
        assert_eq!(
            crd["spec"]["conversion"]["webhook"]["clientConfig"]["service"]["port"],
            443
        );
    }
}
