//! The `discovery.k8s.io` kinds' strategies: EndpointSlices (Kubernetes'
//! `pkg/registry/discovery/endpointslice`).

use std::sync::Arc;

use ferrokube_api::registry::ResourceDef;
use serde_json::Value;

use super::{prepare_create, set_generation, spec_changed, split_status, Strategy};
use crate::authn::UserInfo;

/// The strategy of the `discovery.k8s.io` kind `kind`, if it has one of
/// its own.
pub(super) fn strategy(kind: &str) -> Option<Arc<dyn Strategy>> {
    match kind {
        "EndpointSlice" => Some(Arc::new(EndpointSlice)),
        _ => None,
    }
}

/// EndpointSlices: their ports' defaults, a generation that their labels
/// move too.
#[derive(Debug)]
struct EndpointSlice;

impl Strategy for EndpointSlice {
    typed_fields!();

    fn default(&self, _def: &ResourceDef, obj: &mut Value) {
        crate::defaults::discovery::endpoint_slice(obj);
    }

    fn has_generation(&self, _def: &ResourceDef) -> bool {
        true
    }

    fn prepare_for_create(&self, _def: &ResourceDef, obj: &mut Value, _user: Option<&UserInfo>) {
        prepare_create(obj, true, None);
    }

    fn prepare_for_update(&self, def: &ResourceDef, old: &Value, new: &mut Value, sub: &str) {
        split_status(def, old, new, sub);
        let changed = sub.is_empty()
            && (spec_changed(old, new)
                || old.pointer("/metadata/labels") != new.pointer("/metadata/labels"));
        set_generation(true, old, new, changed);
    }
}
