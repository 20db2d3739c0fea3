//! The `autoscaling` kinds' strategies: HorizontalPodAutoscalers' defaults
//! (Kubernetes' `pkg/registry/autoscaling/horizontalpodautoscaler`).

use std::sync::Arc;

use ferrokube_api::registry::ResourceDef;
use serde_json::{json, Value};

use super::Strategy;

/// The strategy of the `autoscaling` kind `kind`, if it has one of its own.
pub(super) fn strategy(kind: &str) -> Option<Arc<dyn Strategy>> {
    match kind {
        "HorizontalPodAutoscaler" => Some(Arc::new(HorizontalPodAutoscaler)),
        _ => None,
    }
}

/// HorizontalPodAutoscalers: their behavior's defaults, `desiredReplicas`
/// 0 to start.
#[derive(Debug)]
struct HorizontalPodAutoscaler;

impl Strategy for HorizontalPodAutoscaler {
    typed_fields!();

    fn default(&self, _def: &ResourceDef, obj: &mut Value) {
        crate::defaults::autoscaling::horizontal_pod_autoscaler(obj);
    }

    fn initial_status(&self, _def: &ResourceDef) -> Option<Value> {
        Some(json!({"desiredReplicas": 0}))
    }
}
