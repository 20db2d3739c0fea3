//! Structural defaulting (`apiserver/schema/defaulting`): nulls that may not
//! be null and have no default go first; then a missing field, or a null
//! one that may not be null, takes its schema's `default`, at every depth.

use serde_json::Value as Json;

use crate::node::Node;

fn non_nullable_null(x: &Json, s: Option<&Node>) -> bool {
    x.is_null() && s.is_some_and(|s| !s.nullable)
}

/// The schema of a field: its property's, else `additionalProperties`'.
fn field_schema<'a>(s: Option<&'a Node>, k: &str) -> Option<&'a Node> {
    let s = s?;
    s.properties.get(k).or_else(|| s.additional_schema())
}

/// Applies the defaults of `s` to `x`.
pub(crate) fn apply(x: &mut Json, s: &Node) {
    match x {
        Json::Object(fields) => {
            for (k, p) in &s.properties {
                let Some(d) = &p.default else { continue };
                let missing = fields.get(k).is_none_or(|v| non_nullable_null(v, Some(p)));
                if missing {
                    fields.insert(k.clone(), d.clone());
                }
            }
            for (k, v) in fields.iter_mut() {
                if let Some(p) = s.properties.get(k) {
                    apply(v, p);
                } else if let Some(a) = s.additional_schema() {
                    replace_null(v, a);
                    apply(v, a);
                }
            }
        }
        Json::Array(items) => {
            let Some(item) = s.items.as_deref() else {
                return;
            };
            for v in items.iter_mut() {
                replace_null(v, item);
                apply(v, item);
            }
        }
        _ => {}
    }
}

fn replace_null(v: &mut Json, s: &Node) {
    if non_nullable_null(v, Some(s)) {
        if let Some(d) = &s.default {
            *v = d.clone();
        }
    }
}

/// Drops fields that are null though their schema is not nullable and has
/// no default (`PruneNonNullableNullsWithoutDefaults`).
pub(crate) fn prune_nulls(x: &mut Json, s: Option<&Node>) {
    match x {
        Json::Object(fields) => {
            fields.retain(|k, v| {
                let schema = field_schema(s, k);
                !(v.is_null() && schema.is_some_and(|p| !p.nullable && p.default.is_none()))
            });
            for (k, v) in fields.iter_mut() {
                prune_nulls(v, field_schema(s, k));
            }
        }
        Json::Array(items) => {
            let item = s.and_then(|s| s.items.as_deref());
            for v in items.iter_mut() {
                prune_nulls(v, item);
            }
        }
        _ => {}
    }
}
