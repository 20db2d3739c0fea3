//! The `admissionregistration.k8s.io` kinds' strategies (Kubernetes'
//! `pkg/registry/admissionregistration/*`): each keeps a generation; a
//! ValidatingAdmissionPolicy starts with an empty status (its type
//! checking is written by [`crate::policy::typecheck`]).

use std::sync::Arc;

use ferrokube_api::registry::ResourceDef;
use ferrokube_api::status::FieldError;
use serde_json::{json, Value};

use super::{metadata_and, Strategy};
use crate::kinds::admissionregistration as rules;

/// The strategy of the admission-registration kind `kind`.
pub(super) fn strategy(kind: &str) -> Option<Arc<dyn Strategy>> {
    Some(match kind {
        "MutatingWebhookConfiguration" => Arc::new(Registration {
            defaults: |o| rules::default_webhooks(o, true),
            validate: |o| rules::validate_configuration(o, true),
            status: false,
        }),
        "ValidatingWebhookConfiguration" => Arc::new(Registration {
            defaults: |o| rules::default_webhooks(o, false),
            validate: |o| rules::validate_configuration(o, false),
            status: false,
        }),
        "ValidatingAdmissionPolicy" => Arc::new(Registration {
            defaults: rules::default_policy,
            validate: rules::validate_policy,
            status: true,
        }),
        "ValidatingAdmissionPolicyBinding" => Arc::new(Registration {
            defaults: rules::default_binding,
            validate: rules::validate_binding,
            status: false,
        }),
        _ => return None,
    })
}

/// One admission-registration kind: its defaults and rules, and whether it
/// has a status.
#[derive(Debug)]
struct Registration {
    defaults: fn(&mut Value),
    validate: fn(&Value) -> Vec<FieldError>,
    status: bool,
}

impl Strategy for Registration {
    typed_fields!();

    fn default(&self, _def: &ResourceDef, obj: &mut Value) {
        (self.defaults)(obj);
    }

    fn has_generation(&self, _def: &ResourceDef) -> bool {
        true
    }

    fn initial_status(&self, _def: &ResourceDef) -> Option<Value> {
        self.status.then(|| json!({}))
    }

    fn validate_create(&self, def: &ResourceDef, obj: &Value) -> Vec<FieldError> {
        metadata_and(def, obj, self.validate)
    }

    fn validate_update(
        &self,
        def: &ResourceDef,
        _old: &Value,
        new: &Value,
        _sub: &str,
    ) -> Vec<FieldError> {
        metadata_and(def, new, self.validate)
    }
}
