//! The `policy` kinds' strategies: PodDisruptionBudgets (Kubernetes'
//! `pkg/registry/policy/poddisruptionbudget`).

use std::sync::Arc;

use ferrokube_api::registry::ResourceDef;
use ferrokube_api::status::FieldError;
use serde_json::{json, Value};

use super::{metadata_and, prepare_create, Strategy};
use crate::authn::UserInfo;
use crate::kinds::policy::validate_pod_disruption_budget;

/// The strategy of the `policy` kind `kind`, if it has one of its own.
pub(super) fn strategy(kind: &str) -> Option<Arc<dyn Strategy>> {
    match kind {
        "PodDisruptionBudget" => Some(Arc::new(PodDisruptionBudget)),
        _ => None,
    }
}

/// PodDisruptionBudgets: a generation, the disruption controller's counts
/// at 0 to start.
#[derive(Debug)]
struct PodDisruptionBudget;

impl Strategy for PodDisruptionBudget {
    typed_fields!();

    fn has_generation(&self, _def: &ResourceDef) -> bool {
        true
    }

    fn prepare_for_create(&self, _def: &ResourceDef, obj: &mut Value, _user: Option<&UserInfo>) {
        let status = json!({
            "disruptionsAllowed": 0,
            "currentHealthy": 0,
            "desiredHealthy": 0,
            "expectedPods": 0,
        });
        prepare_create(obj, true, Some(status));
    }

    fn validate_create(&self, def: &ResourceDef, obj: &Value) -> Vec<FieldError> {
        metadata_and(def, obj, validate_pod_disruption_budget)
    }

    fn validate_update(
        &self,
        def: &ResourceDef,
        _old: &Value,
        new: &Value,
        _sub: &str,
    ) -> Vec<FieldError> {
        metadata_and(def, new, validate_pod_disruption_budget)
    }
}
