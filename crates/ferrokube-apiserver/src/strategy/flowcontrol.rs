//! The `flowcontrol.apiserver.k8s.io` kinds' strategies (Kubernetes'
//! `pkg/registry/flowcontrol/*`): FlowSchemas and
//! PriorityLevelConfigurations keep a generation and start with an empty
//! status; FlowSchemas print in the order they match requests.

use std::sync::Arc;

use ferrokube_api::registry::ResourceDef;
use ferrokube_api::status::FieldError;
use serde_json::{json, Value};

use super::{metadata_and, Strategy};
use crate::kinds::flowcontrol as rules;

/// The strategy of the flow-control kind `kind`, if it has one of its own.
pub(super) fn strategy(kind: &str) -> Option<Arc<dyn Strategy>> {
    Some(match kind {
        "FlowSchema" => Arc::new(FlowControl {
            defaults: rules::default_flow_schema,
            validate: rules::validate_flow_schema,
            by_precedence: true,
        }),
        "PriorityLevelConfiguration" => Arc::new(FlowControl {
            defaults: rules::default_priority_level,
            validate: rules::validate_priority_level,
            by_precedence: false,
        }),
        _ => return None,
    })
}

/// One flow-control kind: its defaults and rules, and whether its Table
/// is sorted by matching precedence (FlowSchemas).
#[derive(Debug)]
struct FlowControl {
    defaults: fn(&mut Value),
    validate: fn(&Value) -> Vec<FieldError>,
    by_precedence: bool,
}

impl Strategy for FlowControl {
    typed_fields!();

    fn default(&self, _def: &ResourceDef, obj: &mut Value) {
        (self.defaults)(obj);
    }

    fn has_generation(&self, _def: &ResourceDef) -> bool {
        true
    }

    fn initial_status(&self, _def: &ResourceDef) -> Option<Value> {
        Some(json!({}))
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

    fn sort_table_rows(&self, _def: &ResourceDef, objects: &mut Vec<&Value>) {
        if !self.by_precedence {
            return;
        }
        // Kubernetes lists FlowSchemas in the order they match requests.
        let key = |o: &Value| {
            let precedence = o
                .pointer("/spec/matchingPrecedence")
                .and_then(Value::as_i64);
            let name = o.pointer("/metadata/name").and_then(Value::as_str);
            (precedence.unwrap_or(0), name.unwrap_or("").to_string())
        };
        objects.sort_by_key(|o| key(o));
    }
}
