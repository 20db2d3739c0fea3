//! The `networking.k8s.io` kinds' strategies (Kubernetes'
//! `pkg/registry/networking/*`): NetworkPolicies, Ingresses and
//! IngressClasses keep a generation; an Ingress starts with an empty load
//! balancer status; an IngressClass's controller never changes. (The
//! DefaultIngressClass admission is [`crate::kinds`]'.)

use std::sync::Arc;

use ferrokube_api::registry::ResourceDef;
use ferrokube_api::status::FieldError;
use serde_json::{json, Value};

use super::{metadata_and, prepare_create, Strategy};
use crate::authn::UserInfo;
use crate::kinds::meta::immutable;
use crate::kinds::networking as rules;

/// The strategy of the `networking.k8s.io` kind `kind`, if it has one of
/// its own.
pub(super) fn strategy(kind: &str) -> Option<Arc<dyn Strategy>> {
    Some(match kind {
        "NetworkPolicy" => Arc::new(Networking {
            defaults: rules::default_network_policy,
            status: None,
            validate: rules::validate_network_policy,
            fixed: None,
        }),
        "Ingress" => Arc::new(Networking {
            defaults: |_| {},
            status: Some(|| json!({"loadBalancer": {}})),
            validate: rules::validate_ingress,
            fixed: None,
        }),
        "IngressClass" => Arc::new(Networking {
            defaults: rules::default_ingress_class,
            status: None,
            validate: rules::validate_ingress_class,
            fixed: Some("spec.controller"),
        }),
        _ => return None,
    })
}

/// One `networking.k8s.io` kind: its defaults, initial status, rules, and
/// the field that may not change.
#[derive(Debug)]
struct Networking {
    defaults: fn(&mut Value),
    status: Option<fn() -> Value>,
    validate: fn(&Value) -> Vec<FieldError>,
    fixed: Option<&'static str>,
}

impl Strategy for Networking {
    typed_fields!();

    fn default(&self, _def: &ResourceDef, obj: &mut Value) {
        (self.defaults)(obj);
    }

    fn has_generation(&self, _def: &ResourceDef) -> bool {
        true
    }

    fn prepare_for_create(&self, _def: &ResourceDef, obj: &mut Value, _user: Option<&UserInfo>) {
        prepare_create(obj, true, self.status.map(|s| s()));
    }

    fn validate_create(&self, def: &ResourceDef, obj: &Value) -> Vec<FieldError> {
        metadata_and(def, obj, self.validate)
    }

    fn validate_update(
        &self,
        def: &ResourceDef,
        old: &Value,
        new: &Value,
        _sub: &str,
    ) -> Vec<FieldError> {
        let mut errs = metadata_and(def, new, self.validate);
        if let Some(field) = self.fixed {
            errs.extend(immutable(old, new, field));
        }
        errs
    }
}
