//! The `autoscaling` kinds' strategies: HorizontalPodAutoscalers' defaults
//! (Kubernetes' `pkg/registry/autoscaling/horizontalpodautoscaler`).

use std::sync::Arc;

use ferrokube_api::registry::ResourceDef;
use serde_json::{json, Value};

use super::{prepare_create, prepare_update, Strategy};
use crate::authn::UserInfo;

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

    fn prepare_for_create(&self, _def: &ResourceDef, obj: &mut Value, _user: Option<&UserInfo>) {
        prepare_create(obj, false, Some(json!({"desiredReplicas": 0})));
    }

    fn prepare_for_update(&self, def: &ResourceDef, old: &Value, new: &mut Value, sub: &str) {
        prepare_update(def, old, new, sub, false);
    }
}
