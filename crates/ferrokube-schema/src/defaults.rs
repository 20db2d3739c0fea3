//! Structural defaulting (`apiserver/schema/defaulting`): a missing field, or
//! a null one that may not be null, takes its schema's `default`, at every
//! depth; then nulls that may not be null and have no default go.

use serde_json::Value as Json;

use crate::node::Node;

fn non_nullable_null(x: &Json, s: Option<&Node>) -> bool {
    x.is_null() && s.is_some_and(|s| !s.nullable)
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
                    if non_nullable_null(v, Some(a)) {
                        if let Some(d) = &a.default {
                            *v = d.clone();
                            continue;
                        }
                    }
                    apply(v, a);
                }
            }
        }
        Json::Array(items) => {
            let Some(item) = s.items.as_deref() else {
                return;
            };
            for v in items.iter_mut() {
                if non_nullable_null(v, Some(item)) {
                    if let Some(d) = &item.default {
                        *v = d.clone();
                        continue;
                    }
                }
                apply(v, item);
            }
        }
        _ => {}
    }
}

/// Drops fields that are null though their schema is not nullable and has
/// no default (`PruneNonNullableNullsWithoutDefaults`).
pub(crate) fn prune_nulls(x: &mut Json, s: &Node) {
    match x {
        Json::Object(fields) => {
            fields.retain(|k, v| {
                !(v.is_null()
                    && s.properties
                        .get(k)
                        .is_some_and(|p| !p.nullable && p.default.is_none()))
            });
            for (k, v) in fields.iter_mut() {
                if let Some(p) = s.properties.get(k) {
                    prune_nulls(v, p);
                } else if let Some(a) = s.additional_schema() {
                    prune_nulls(v, a);
                }
            }
        }
        Json::Array(items) => {
            if let Some(item) = s.items.as_deref() {
                for v in items.iter_mut() {
                    prune_nulls(v, item);
                }
            }
        }
        _ => {}
    }
}
