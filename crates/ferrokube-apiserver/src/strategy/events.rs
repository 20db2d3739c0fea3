//! The `events.k8s.io` Event: a view of the core Events (one stored
//! resource, as in Kubernetes; the conversion is [`crate::events`]'), whose
//! Tables have the core Event's columns, as Kubernetes prints both.

use std::sync::Arc;

use ferrokube_api::printers::{self, Column};
use ferrokube_api::registry::ResourceDef;
use serde_json::Value;

use super::Strategy;

/// The strategy of the `events.k8s.io` kind `kind`, if it has one of its
/// own.
pub(super) fn strategy(kind: &str) -> Option<Arc<dyn Strategy>> {
    match kind {
        "Event" => Some(Arc::new(Event)),
        _ => None,
    }
}

/// `events.k8s.io/v1` Events.
#[derive(Debug)]
struct Event;

impl Strategy for Event {
    typed_fields!();

    fn table_columns(&self, _def: &ResourceDef) -> Vec<Column> {
        printers::columns("", "Event")
    }

    fn table_cells(&self, _def: &ResourceDef, obj: &Value, now: i64) -> Vec<Value> {
        printers::cells("", "Event", obj, now)
    }
}
