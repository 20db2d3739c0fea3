//! The kinds served beside the workloads, each with Kubernetes' own rules:
//! `networking.k8s.io` (NetworkPolicy, Ingress, IngressClass and the
//! DefaultIngressClass admission), `node.k8s.io` RuntimeClass (and its pod
//! admission), `flowcontrol.apiserver.k8s.io` (FlowSchema,
//! PriorityLevelConfiguration, the mandatory objects made at start),
//! `policy` PodDisruptionBudget, `certificates.k8s.io` CertificateSigningRequest (the requester recorded on
//! create, `/approval` and `/status`), PodTemplate, and `storage.k8s.io`
//! (StorageClass, CSIDriver, CSINode, VolumeAttachment, CSIStorageCapacity,
//! and the DefaultStorageClass admission of claims).
//!
//! The REST handlers call in at four points: [`prepare_create`] (defaults,
//! the requesting user, admission; before the typed check), [`prepare_update`]
//! (what a write to the object or one of its subresources may change),
//! [`validate`] and [`validate_update`].

mod batch;
mod certificates;
mod flowcontrol;
mod meta;
mod networking;
mod node;
mod policy;
pub(crate) mod scheduling;
mod storage;

use ferrokube_api::registry::ResourceDef;
use ferrokube_api::status::{ApiError, FieldError};
use serde_json::Value;

use crate::authn::UserInfo;
use crate::rest::Rest;

pub(crate) use flowcontrol::ensure_mandatory_objects;

/// Defaults, strategy preparation and admission of a new object of one of
/// these kinds (and of pods: the RuntimeClass admission). `user` is who
/// creates it, when known.
pub(crate) async fn prepare_create(
    rest: &Rest,
    def: &ResourceDef,
    ns: &str,
    obj: &mut Value,
    user: Option<&UserInfo>,
) -> Result<(), ApiError> {
    default_fields(def, obj);
    match (def.group, def.kind) {
        ("", "Pod") => node::admit_pod(rest, obj).await?,
        ("networking.k8s.io", "Ingress") => networking::admit_ingress(rest, ns, obj).await?,
        ("", "PersistentVolumeClaim") => storage::admit_claim(rest, obj).await?,
        ("certificates.k8s.io", "CertificateSigningRequest") => {
            certificates::prepare_create(obj, user)
        }
        _ => {}
    }
    Ok(())
}

/// Defaults of these kinds' fields (on create and update alike, as
/// Kubernetes defaults every object it decodes).
pub(crate) fn default_fields(def: &ResourceDef, obj: &mut Value) {
    match (def.group, def.kind) {
        ("networking.k8s.io", "NetworkPolicy") => networking::default_network_policy(obj),
        ("networking.k8s.io", "IngressClass") => networking::default_ingress_class(obj),
        ("flowcontrol.apiserver.k8s.io", "FlowSchema") => flowcontrol::default_flow_schema(obj),
        ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration") => {
            flowcontrol::default_priority_level(obj)
        }
        ("storage.k8s.io", "StorageClass") => storage::default_storage_class(obj),
        ("storage.k8s.io", "CSIDriver") => storage::default_csi_driver(obj),
        _ => {}
    }
}

/// What an update through `subresource` (`""`, `status`, `approval`) keeps
/// of `old`, beyond the generic split of spec and status.
pub(crate) fn prepare_update(def: &ResourceDef, old: &Value, new: &mut Value, subresource: &str) {
    if subresource.is_empty() {
        default_fields(def, new);
    }
    if let ("certificates.k8s.io", "CertificateSigningRequest") = (def.group, def.kind) {
        certificates::prepare_update(old, new, subresource)
    }
}

/// The errors in an object of one of these kinds (none for other kinds).
pub(crate) fn validate(def: &ResourceDef, obj: &Value) -> Vec<FieldError> {
    match (def.group, def.kind) {
        ("networking.k8s.io", "NetworkPolicy") => networking::validate_network_policy(obj),
        ("networking.k8s.io", "Ingress") => networking::validate_ingress(obj),
        ("networking.k8s.io", "IngressClass") => networking::validate_ingress_class(obj),
        ("node.k8s.io", "RuntimeClass") => node::validate_runtime_class(obj),
        ("flowcontrol.apiserver.k8s.io", "FlowSchema") => flowcontrol::validate_flow_schema(obj),
        ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration") => {
            flowcontrol::validate_priority_level(obj)
        }
        ("certificates.k8s.io", "CertificateSigningRequest") => {
            certificates::validate(obj, None, "")
        }
        ("", "PersistentVolume") => storage::validate_persistent_volume(obj),
        ("", "PersistentVolumeClaim") => storage::validate_claim(obj),
        ("storage.k8s.io", "StorageClass") => storage::validate_storage_class(obj),
        ("storage.k8s.io", "CSIDriver") => storage::validate_csi_driver(obj),
        ("storage.k8s.io", "CSINode") => storage::validate_csi_node(obj),
        ("storage.k8s.io", "VolumeAttachment") => storage::validate_volume_attachment(obj),
        ("storage.k8s.io", "CSIStorageCapacity") => storage::validate_csi_storage_capacity(obj),
        ("batch", "Job") => batch::validate_job(obj),
        ("batch", "CronJob") => batch::validate_cron_job(obj),
        ("policy", "PodDisruptionBudget") => policy::validate_pod_disruption_budget(obj),
        ("scheduling.k8s.io", "PriorityClass") => scheduling::validate_priority_class(obj),
        ("", "ResourceQuota") => crate::quota::validate(obj),
        ("", "PodTemplate") => {
            if obj.get("template").is_none() {
                vec![FieldError::required("template", "")]
            } else {
                Vec::new()
            }
        }
        _ => Vec::new(),
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

/// The errors of an update of `old` to `new` through `subresource`: the
/// object's own rules and what may not change. (A CSR's update rules
/// depend on the subresource and on the stored object.)
pub(crate) fn validate_update(
    def: &ResourceDef,
    old: &Value,
    new: &Value,
    subresource: &str,
) -> Vec<FieldError> {
    if let ("certificates.k8s.io", "CertificateSigningRequest") = (def.group, def.kind) {
        return certificates::validate(new, Some(old), subresource);
    }
    if let ("scheduling.k8s.io", "PriorityClass") = (def.group, def.kind) {
        return scheduling::validate_priority_class_update(old, new);
    }
    if let ("", "PersistentVolumeClaim") = (def.group, def.kind) {
        return if subresource.is_empty() {
            storage::validate_claim_update(old, new)
        } else {
            Vec::new()
        };
    }
    if def.group == "storage.k8s.io" {
        return match def.kind {
            "StorageClass" => storage::validate_storage_class_update(old, new),
            "CSIDriver" => storage::validate_csi_driver_update(old, new),
            "CSINode" => storage::validate_csi_node_update(old, new),
            "VolumeAttachment" if subresource.is_empty() => {
                storage::validate_volume_attachment_update(old, new)
            }
            "CSIStorageCapacity" => storage::validate_csi_storage_capacity_update(old, new),
            _ => validate(def, new),
        };
    }
    let mut errs = validate(def, new);
    match (def.group, def.kind) {
        ("networking.k8s.io", "IngressClass") => {
            errs.extend(meta::immutable(old, new, "spec.controller"))
        }
        ("node.k8s.io", "RuntimeClass") => errs.extend(meta::immutable(old, new, "handler")),
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => {
            errs.extend(role_ref_unchanged(old, new))
        }
        ("", "ResourceQuota") if subresource.is_empty() => {
            errs.extend(crate::quota::validate_update(old, new))
        }
        _ => {}
    }
    errs
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
