//! The `autoscaling` kinds' strategies (Kubernetes'
//! `pkg/registry/autoscaling/horizontalpodautoscaler`): HorizontalPodAutoscalers
//! at `autoscaling/v2` and `autoscaling/v1`, one resource stored once as v2.
//!
//! Kubernetes runs its strategy on the internal type, whatever version the
//! request spoke; here the strategy gets the object in the request's
//! version, so a v1 object is read in v2's form (`conversion`) for
//! validation and the Table, and its status (its `status` and the
//! annotations that carry the rest) is kept or reset in v1's own terms.
//! Defaults are each version's own.

use std::sync::{Arc, OnceLock};

use ferrokube_api::printers::Column;
use ferrokube_api::registry::ResourceDef;
use ferrokube_api::status::FieldError;
use serde_json::{json, Value};

use super::Strategy;
use crate::authn::UserInfo;
use crate::crd::conversion::Converter;

pub(crate) mod conversion;
mod printer;
mod validation;

/// The strategy of the `autoscaling` kind `kind`, if it has one of its own.
pub(super) fn strategy(kind: &str) -> Option<Arc<dyn Strategy>> {
    match kind {
        "HorizontalPodAutoscaler" => Some(Arc::new(HorizontalPodAutoscaler {
            converter: converter().clone(),
        })),
        _ => None,
    }
}

/// The one converter of HorizontalPodAutoscalers, shared by both versions.
fn converter() -> &'static Arc<Converter> {
    static CONVERTER: OnceLock<Arc<Converter>> = OnceLock::new();
    CONVERTER.get_or_init(|| {
        Arc::new(Converter::builtin(
            "autoscaling",
            &["v2", "v1"],
            "v2",
            conversion::convert,
        ))
    })
}

/// HorizontalPodAutoscalers at either version.
#[derive(Debug)]
struct HorizontalPodAutoscaler {
    converter: Arc<Converter>,
}

/// `obj` (of `def`'s version) in v2's form, as Kubernetes' internal
/// object is: a v1 object converted without v2's defaults.
fn as_v2(def: &ResourceDef, obj: &Value) -> Value {
    if def.version == "v1" {
        conversion::v1_to_internal(obj)
    } else {
        obj.clone()
    }
}

/// `dropDisabledFields`: without the HPAConfigurableTolerance gate (off in
/// Kubernetes 1.33), a behavior's `tolerance` is dropped unless the old
/// object uses one already.
fn drop_disabled_fields(new: &mut Value, old: Option<&Value>) {
    let uses_tolerance = |o: &Value| {
        ["scaleUp", "scaleDown"].iter().any(|k| {
            o.pointer(&format!("/spec/behavior/{k}/tolerance"))
                .is_some_and(|t| !t.is_null())
        })
    };
    if old.is_some_and(uses_tolerance) {
        return;
    }
    for k in ["scaleUp", "scaleDown"] {
        if let Some(rules) = new
            .pointer_mut(&format!("/spec/behavior/{k}"))
            .and_then(Value::as_object_mut)
        {
            rules.remove("tolerance");
        }
    }
}

impl Strategy for HorizontalPodAutoscaler {
    typed_fields!();

    fn default(&self, def: &ResourceDef, obj: &mut Value) {
        if def.version == "v1" {
            crate::defaults::autoscaling::horizontal_pod_autoscaler_v1(obj);
        } else {
            crate::defaults::autoscaling::horizontal_pod_autoscaler(obj);
        }
    }

    fn prepare_for_create(&self, def: &ResourceDef, obj: &mut Value, _user: Option<&UserInfo>) {
        // A new object's status is the empty one.
        if def.version == "v1" {
            conversion::v1_take_status(obj, None);
            conversion::v1_drop_tolerance(obj);
        } else {
            super::prepare_create(obj, false, Some(json!({"desiredReplicas": 0})));
            drop_disabled_fields(obj, None);
        }
    }

    fn prepare_for_update(
        &self,
        def: &ResourceDef,
        old: &Value,
        new: &mut Value,
        subresource: &str,
    ) {
        if def.version != "v1" {
            super::prepare_update(def, old, new, subresource, false);
            if subresource.is_empty() {
                drop_disabled_fields(new, Some(old));
            }
            return;
        }
        // A v1 object's status is partly in its annotations.
        match subresource {
            "status" => {
                let sent = std::mem::replace(new, old.clone());
                conversion::v1_take_status(new, Some(&sent));
            }
            "" => {
                conversion::v1_take_status(new, Some(old));
                if !conversion::v1_uses_tolerance(old) {
                    conversion::v1_drop_tolerance(new);
                }
            }
            _ => {}
        }
        super::set_generation(false, old, new, false);
    }

    fn validate_create(&self, def: &ResourceDef, obj: &Value) -> Vec<FieldError> {
        let mut errs = super::validate_metadata(def, obj);
        errs.extend(validation::validate_create(&as_v2(def, obj)));
        errs
    }

    fn validate_update(
        &self,
        def: &ResourceDef,
        old: &Value,
        new: &Value,
        subresource: &str,
    ) -> Vec<FieldError> {
        let mut errs = super::validate_metadata(def, new);
        let (old, new) = (as_v2(def, old), as_v2(def, new));
        if subresource == "status" {
            errs.extend(validation::validate_status_update(&new));
        } else {
            errs.extend(validation::validate_update(&old, &new));
        }
        errs
    }

    fn table_columns(&self, _def: &ResourceDef) -> Vec<Column> {
        printer::columns()
    }

    fn table_cells(&self, def: &ResourceDef, obj: &Value, now: i64) -> Vec<Value> {
        printer::cells(&as_v2(def, obj), now)
    }

    fn converter(&self) -> Option<&Arc<Converter>> {
        Some(&self.converter)
    }
}
