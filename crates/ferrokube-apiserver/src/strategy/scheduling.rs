//! The `scheduling.k8s.io` kinds' strategies: PriorityClasses (Kubernetes'
//! `pkg/registry/scheduling/priorityclass`). (Only one global default is
//! admission's: [`crate::admission`].)

use std::sync::Arc;

use ferrokube_api::registry::ResourceDef;
use ferrokube_api::status::FieldError;
use serde_json::Value;

use super::{metadata_and, Strategy};
use crate::kinds::scheduling::{validate_priority_class, validate_priority_class_update};

/// The strategy of the `scheduling.k8s.io` kind `kind`, if it has one of
/// its own.
pub(super) fn strategy(kind: &str) -> Option<Arc<dyn Strategy>> {
    match kind {
        "PriorityClass" => Some(Arc::new(PriorityClass)),
        _ => None,
    }
}

/// PriorityClasses: `preemptionPolicy` defaulted; value and policy fixed.
#[derive(Debug)]
struct PriorityClass;

impl Strategy for PriorityClass {
    typed_fields!();

    fn default(&self, _def: &ResourceDef, obj: &mut Value) {
        crate::defaults::scheduling::priority_class(obj);
    }

    fn validate_create(&self, def: &ResourceDef, obj: &Value) -> Vec<FieldError> {
        metadata_and(def, obj, validate_priority_class)
    }

    fn validate_update(
        &self,
        def: &ResourceDef,
        old: &Value,
        new: &Value,
        _sub: &str,
    ) -> Vec<FieldError> {
        metadata_and(def, new, |new| validate_priority_class_update(old, new))
    }
}
