//! The `rbac.authorization.k8s.io` kinds' strategies (Kubernetes'
//! `pkg/registry/rbac/*`): a binding's subjects get their API group, and
//! its `roleRef` never changes. (Escalation prevention is admission's:
//! [`crate::authz::escalation`].)

use std::sync::Arc;

use ferrokube_api::registry::ResourceDef;
use ferrokube_api::status::FieldError;
use serde_json::Value;

use super::{validate_metadata, Generic, Strategy};

/// The strategy of the RBAC kind `kind`, if it has one of its own.
pub(super) fn strategy(kind: &str) -> Option<Arc<dyn Strategy>> {
    Some(match kind {
        "RoleBinding" | "ClusterRoleBinding" => Arc::new(Binding),
        "Role" | "ClusterRole" => Arc::new(Generic),
        _ => return None,
    })
}

/// RoleBindings and ClusterRoleBindings.
#[derive(Debug)]
struct Binding;

impl Strategy for Binding {
    typed_fields!();

    fn default(&self, _def: &ResourceDef, obj: &mut Value) {
        crate::defaults::rbac::binding(obj);
    }

    fn validate_update(
        &self,
        def: &ResourceDef,
        old: &Value,
        new: &Value,
        _sub: &str,
    ) -> Vec<FieldError> {
        let mut errs = validate_metadata(def, new);
        errs.extend(role_ref_unchanged(old, new));
        errs
    }
}

/// A binding's `roleRef` may not change (`ValidateRoleBindingUpdate`):
/// Kubernetes shows the new reference as Go prints its struct.
fn role_ref_unchanged(old: &Value, new: &Value) -> Option<FieldError> {
    let (was, now) = (old.get("roleRef"), new.get("roleRef"));
    if was == now {
        return None;
    }
    let field = |f: &str| {
        now.and_then(|r| r.get(f))
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    let shown = format!(
        "rbac.RoleRef{{APIGroup:{:?}, Kind:{:?}, Name:{:?}}}",
        field("apiGroup"),
        field("kind"),
        field("name")
    );
    Some(FieldError::invalid_shown(
        "roleRef",
        shown,
        "cannot change roleRef",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_bindings_role_ref_cannot_change() {
        let rb = |name: &str| {
            json!({"metadata": {"name": "b", "namespace": "a"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
                   "subjects": [{"kind": "User", "name": "jane", "apiGroup": "rbac.authorization.k8s.io"}]})
        };
        assert_eq!(role_ref_unchanged(&rb("edit"), &rb("edit")), None);
        let err = role_ref_unchanged(&rb("edit"), &rb("cluster-admin")).expect("refused");
        assert_eq!(
            format!("{}: {}", err.field, err.detail_message()),
            r#"roleRef: Invalid value: rbac.RoleRef{APIGroup:"rbac.authorization.k8s.io", Kind:"ClusterRole", Name:"cluster-admin"}: cannot change roleRef"#
        );
    }
}
