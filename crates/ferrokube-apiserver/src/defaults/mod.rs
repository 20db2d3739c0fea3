//! Defaulting of the built-in kinds, as Kubernetes does it: its
//! `SetDefaults_*` functions (`pkg/apis/*/v*/defaults.go`, run on every
//! object it decodes, so on create and update alike), one module per API
//! group. Each kind's registry strategy (`crate::strategy`) calls its
//! kind's from `Strategy::default`, which `Rest::create_encoded` and
//! `Rest::write_update` call on every write, whatever the body's encoding
//! (JSON, YAML, protobuf) and whichever verb (create, update, patch,
//! server-side apply), so no path can skip them.

pub(crate) mod apps;
pub(crate) mod autoscaling;
pub(crate) mod batch;
pub(crate) mod core;
pub(crate) mod discovery;
pub(crate) mod pod;
pub(crate) mod rbac;
pub(crate) mod scheduling;

use serde_json::{json, Map, Value};

/// Whether a value counts as unset for a pointer field: absent or null.
fn is_nil(v: Option<&Value>) -> bool {
    matches!(v, None | Some(Value::Null))
}

/// Whether a value counts as unset for a string field: absent, null or "".
pub(crate) fn is_empty_str(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        _ => false,
    }
}

/// Whether a value counts as unset for an integer field: absent, null or 0.
fn is_zero(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
        _ => false,
    }
}

/// Whether a list or map field is empty (absent, null, [] or {}).
fn is_empty_collection(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(m)) => m.is_empty(),
        _ => false,
    }
}

/// Sets `v[key]` to `default` when it is absent or null (a pointer field).
fn default_nil(v: &mut Value, key: &str, default: Value) {
    if let Some(m) = v.as_object_mut() {
        if is_nil(m.get(key)) {
            m.insert(key.to_string(), default);
        }
    }
}

/// Sets `v[key]` to `default` when it is absent, null or "" (a string).
fn default_str(v: &mut Value, key: &str, default: &str) {
    if let Some(m) = v.as_object_mut() {
        if is_empty_str(m.get(key)) {
            m.insert(key.to_string(), json!(default));
        }
    }
}

/// Sets `v[key]` to `default` when it is absent, null or 0 (an integer).
fn default_int(v: &mut Value, key: &str, default: i64) {
    if let Some(m) = v.as_object_mut() {
        if is_zero(m.get(key)) {
            m.insert(key.to_string(), json!(default));
        }
    }
}

/// `v[key]` as an object, made an empty one when absent or null (a Go
/// struct field, or a pointer the defaults fill in). `None` when `v` is not
/// an object or `v[key]` is something else.
pub(crate) fn object_at<'a>(v: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    let m = v.as_object_mut()?;
    let slot = m
        .entry(key.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    slot.is_object().then_some(slot)
}

/// Runs `f` on every element of the list `v[key]`, if there is one.
fn each(v: &mut Value, key: &str, mut f: impl FnMut(&mut Value)) {
    if let Some(list) = v.get_mut(key).and_then(Value::as_array_mut) {
        list.iter_mut().for_each(&mut f);
    }
}

/// Runs `f` on `v[key]` when it is an object.
fn with(v: &mut Value, key: &str, f: impl FnOnce(&mut Value)) {
    if let Some(inner) = v.get_mut(key).filter(|i| i.is_object()) {
        f(inner)
    }
}

#[cfg(test)]
mod tests;
