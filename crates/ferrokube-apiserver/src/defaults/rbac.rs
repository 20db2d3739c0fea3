//! Defaults of `rbac.authorization.k8s.io/v1` bindings
//! (`pkg/apis/rbac/v1/defaults.go`): the role reference's API group and
//! each subject's.

use serde_json::{json, Value};

use super::{default_str, each, is_empty_str, with};

/// The RBAC API group.
const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// `SetDefaults_RoleBinding`, `SetDefaults_ClusterRoleBinding` and
/// `SetDefaults_Subject`: users and groups are RBAC's; a service account's
/// is the core group, "", which is not written.
pub(crate) fn binding(obj: &mut Value) {
    with(obj, "roleRef", |r| default_str(r, "apiGroup", RBAC_GROUP));
    each(obj, "subjects", |s| {
        if !is_empty_str(s.get("apiGroup")) {
            return;
        }
        if let Some("User" | "Group") = s.get("kind").and_then(Value::as_str) {
            s["apiGroup"] = json!(RBAC_GROUP);
        }
    });
}
