//! The `storage.k8s.io` kinds' strategies (Kubernetes'
//! `pkg/registry/storage/*`; the rules are [`crate::kinds`]' `storage`):
//! StorageClass, CSIDriver, CSINode, VolumeAttachment and
//! CSIStorageCapacity, each with its defaults, rules and what its update
//! may not change. (The DefaultStorageClass admission of claims is
//! [`crate::kinds`]'.)

use std::sync::Arc;

use ferrokube_api::registry::ResourceDef;
use ferrokube_api::status::FieldError;
use serde_json::{json, Value};

use super::{metadata_and, prepare_create, Strategy};
use crate::authn::UserInfo;
use crate::kinds::storage as rules;

/// The strategy of the `storage.k8s.io` kind `kind`, if it has one of its
/// own.
pub(super) fn strategy(kind: &str) -> Option<Arc<dyn Strategy>> {
    let (defaults, validate, update): (fn(&mut Value), Rules, UpdateRules) = match kind {
        "StorageClass" => (
            rules::default_storage_class,
            rules::validate_storage_class,
            rules::validate_storage_class_update,
        ),
        "CSIDriver" => (
            rules::default_csi_driver,
            rules::validate_csi_driver,
            rules::validate_csi_driver_update,
        ),
        "CSINode" => (
            |_| {},
            rules::validate_csi_node,
            rules::validate_csi_node_update,
        ),
        "VolumeAttachment" => (
            |_| {},
            rules::validate_volume_attachment,
            rules::validate_volume_attachment_update,
        ),
        "CSIStorageCapacity" => (
            |_| {},
            rules::validate_csi_storage_capacity,
            rules::validate_csi_storage_capacity_update,
        ),
        _ => return None,
    };
    Some(Arc::new(StorageKind {
        defaults,
        validate,
        update,
        attachment: kind == "VolumeAttachment",
        returns_deleted: kind != "CSIStorageCapacity",
    }))
}

/// The rules of an object.
type Rules = fn(&Value) -> Vec<FieldError>;

/// The rules of an update (old, new), the object's own included.
type UpdateRules = fn(&Value, &Value) -> Vec<FieldError>;

/// One `storage.k8s.io` kind.
#[derive(Debug)]
struct StorageKind {
    defaults: fn(&mut Value),
    validate: Rules,
    update: UpdateRules,
    /// A VolumeAttachment: `attached: false` to start, and its `/status`
    /// writes checked as new objects.
    attachment: bool,
    /// A delete answers with the deleted object (every kind here but
    /// CSIStorageCapacity, as in Kubernetes).
    returns_deleted: bool,
}

impl Strategy for StorageKind {
    typed_fields!();

    fn returns_deleted_object(&self, _def: &ResourceDef) -> bool {
        self.returns_deleted
    }

    fn default(&self, _def: &ResourceDef, obj: &mut Value) {
        (self.defaults)(obj);
    }

    fn prepare_for_create(&self, _def: &ResourceDef, obj: &mut Value, _user: Option<&UserInfo>) {
        let status = self.attachment.then(|| json!({"attached": false}));
        prepare_create(obj, false, status);
    }

    fn validate_create(&self, def: &ResourceDef, obj: &Value) -> Vec<FieldError> {
        metadata_and(def, obj, self.validate)
    }

    fn validate_update(
        &self,
        def: &ResourceDef,
        old: &Value,
        new: &Value,
        sub: &str,
    ) -> Vec<FieldError> {
        if self.attachment && !sub.is_empty() {
            return metadata_and(def, new, self.validate);
        }
        metadata_and(def, new, |new| (self.update)(old, new))
    }
}
