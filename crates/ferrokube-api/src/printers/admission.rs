//! Table columns and cells of `admissionregistration.k8s.io`: the webhook
//! configurations (how many webhooks each holds), ValidatingAdmissionPolicies
//! (how many validations, the kind of their parameters) and their bindings
//! (the policy, the parameter they name), as upstream's printers lay them out.

use serde_json::{json, Value};

use super::{age, array, c, name, selector_text, text};
use super::{Column, AGE, NAME};

const GROUP: &str = "admissionregistration.k8s.io";

/// The columns of `kind`, or `None` if it is not one of these kinds.
pub(super) fn columns(group: &str, kind: &str) -> Option<Vec<Column>> {
    if group != GROUP {
        return None;
    }
    Some(match kind {
        "MutatingWebhookConfiguration" | "ValidatingWebhookConfiguration" => {
            vec![NAME, c("Webhooks", "integer", 0), AGE]
        }
        "ValidatingAdmissionPolicy" => vec![
            NAME,
            c("Validations", "integer", 0),
            c("ParamKind", "string", 0),
            AGE,
        ],
        "ValidatingAdmissionPolicyBinding" => vec![
            NAME,
            c("PolicyName", "string", 0),
            c("ParamRef", "string", 0),
            AGE,
        ],
        _ => return None,
    })
}

/// The cells of one object of `kind`, or `None` if it is not one of these
/// kinds.
pub(super) fn cells(group: &str, kind: &str, obj: &Value, now: i64) -> Option<Vec<Value>> {
    if group != GROUP {
        return None;
    }
    Some(match kind {
        "MutatingWebhookConfiguration" | "ValidatingWebhookConfiguration" => vec![
            name(obj),
            json!(array(obj, "/webhooks").len()),
            json!(age(obj, now)),
        ],
        "ValidatingAdmissionPolicy" => {
            let param_kind = match obj.pointer("/spec/paramKind").filter(|p| p.is_object()) {
                Some(p) => format!("{}/{}", text(p, "/apiVersion"), text(p, "/kind")),
                None => "<unset>".to_string(),
            };
            vec![
                name(obj),
                json!(array(obj, "/spec/validations").len()),
                json!(param_kind),
                json!(age(obj, now)),
            ]
        }
        "ValidatingAdmissionPolicyBinding" => vec![
            name(obj),
            json!(text(obj, "/spec/policyName")),
            json!(param_ref_text(obj.pointer("/spec/paramRef"))),
            json!(age(obj, now)),
        ],
        _ => return None,
    })
}

/// A binding's ParamRef column: `namespace/name`, `*/name` when the
/// namespace is left to the request's, the selector, or `<unset>`.
fn param_ref_text(param_ref: Option<&Value>) -> String {
    let Some(r) = param_ref.filter(|r| r.is_object()) else {
        return "<unset>".to_string();
    };
    let (ns, name) = (text(r, "/namespace"), text(r, "/name"));
    if !name.is_empty() {
        return if ns.is_empty() {
            format!("*/{name}")
        } else {
            format!("{ns}/{name}")
        };
    }
    match r.get("selector").filter(|s| s.is_object()) {
        Some(s) => selector_text(Some(s)),
        None => "<unset>".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(kind: &str) -> Vec<&'static str> {
        columns(GROUP, kind)
            .unwrap()
            .iter()
            .map(|c| c.name)
            .collect()
    }

    #[test]
    fn columns_are_upstreams() {
        assert_eq!(
            headers("ValidatingWebhookConfiguration"),
            ["Name", "Webhooks", "Age"]
        );
        assert_eq!(
            headers("MutatingWebhookConfiguration"),
            ["Name", "Webhooks", "Age"]
        );
        assert_eq!(
            headers("ValidatingAdmissionPolicy"),
            ["Name", "Validations", "ParamKind", "Age"]
        );
        assert_eq!(
            headers("ValidatingAdmissionPolicyBinding"),
            ["Name", "PolicyName", "ParamRef", "Age"]
        );
    }

    #[test]
    fn rows_count_webhooks_and_name_params() {
        let cfg = json!({"metadata": {"name": "w"}, "webhooks": [{}, {}]});
        let row = cells(GROUP, "ValidatingWebhookConfiguration", &cfg, 0).unwrap();
        assert_eq!(row[1], json!(2));
        let policy = json!({"metadata": {"name": "p"}, "spec": {"validations": [{}],
            "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"}}});
        let row = cells(GROUP, "ValidatingAdmissionPolicy", &policy, 0).unwrap();
        assert_eq!(row[1..3], [json!(1), json!("v1/ConfigMap")]);
        let policy = json!({"metadata": {"name": "p"}, "spec": {}});
        let row = cells(GROUP, "ValidatingAdmissionPolicy", &policy, 0).unwrap();
        assert_eq!(row[1..3], [json!(0), json!("<unset>")]);
        for (param_ref, shown) in [
            (
                json!({"name": "limits", "namespace": "default"}),
                "default/limits",
            ),
            (json!({"name": "limits"}), "*/limits"),
            (json!({"selector": {"matchLabels": {"a": "b"}}}), "a=b"),
            (json!(null), "<unset>"),
        ] {
            let b = json!({"metadata": {"name": "b"}, "spec": {"policyName": "p", "paramRef": param_ref}});
            let row = cells(GROUP, "ValidatingAdmissionPolicyBinding", &b, 0).unwrap();
            assert_eq!(row[1..3], [json!("p"), json!(shown)]);
        }
    }
}
