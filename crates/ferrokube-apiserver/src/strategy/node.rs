//! The `node.k8s.io` kinds' strategies: RuntimeClasses, whose handler
//! never changes (Kubernetes' `pkg/registry/node/runtimeclass`). (The
//! RuntimeClass admission of pods is [`crate::kinds`]'.)

use std::sync::Arc;

use ferrokube_api::registry::ResourceDef;
use ferrokube_api::status::FieldError;
use serde_json::Value;

use super::{metadata_and, Strategy};
use crate::kinds::meta::immutable;
use crate::kinds::node::validate_runtime_class;

/// The strategy of the `node.k8s.io` kind `kind`, if it has one of its own.
pub(super) fn strategy(kind: &str) -> Option<Arc<dyn Strategy>> {
    match kind {
        "RuntimeClass" => Some(Arc::new(RuntimeClass)),
        _ => None,
    }
}

/// RuntimeClasses.
#[derive(Debug)]
struct RuntimeClass;

impl Strategy for RuntimeClass {
    typed_fields!();

    fn validate_create(&self, def: &ResourceDef, obj: &Value) -> Vec<FieldError> {
        metadata_and(def, obj, validate_runtime_class)
    }

    fn validate_update(
        &self,
        def: &ResourceDef,
        old: &Value,
        new: &Value,
        _sub: &str,
    ) -> Vec<FieldError> {
        let mut errs = metadata_and(def, new, validate_runtime_class);
        errs.extend(immutable(old, new, "handler"));
        errs
    }
}
