//! Defaults of `scheduling.k8s.io/v1` PriorityClass.

use serde_json::{json, Value};

use super::default_nil;

/// The preemption policy of pods and classes that name none.
pub(super) const DEFAULT_PREEMPTION_POLICY: &str = "PreemptLowerPriority";

/// `SetDefaults_PriorityClass`.
pub(crate) fn priority_class(obj: &mut Value) {
    default_nil(obj, "preemptionPolicy", json!(DEFAULT_PREEMPTION_POLICY));
}
