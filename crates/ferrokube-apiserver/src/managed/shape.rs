//! How server-side apply sees one value of an object: whether a list is
//! atomic, a set or a map keyed by some of its items' fields, and whether
//! an object merges field by field or is replaced whole.
//!
//! Built-in kinds answer from the strategic merge patch's table (a merge
//! key makes a keyed list, a merge strategy without one a set); custom
//! resources from their CRD schema (`x-kubernetes-list-type`,
//! `x-kubernetes-list-map-keys`, `x-kubernetes-map-type`), as
//! structured-merge-diff reads a CRD's schema. What neither knows (fields
//! under `x-kubernetes-preserve-unknown-fields`) is deduced as
//! structured-merge-diff deduces it: lists atomic, objects granular.
//! `metadata` is always ObjectMeta's, an embedded resource's too.

use ferrokube_api::patch::schema::{root_type_for, Builtin, FieldMeta, SchemaLookup, Strategy};
use ferrokube_schema::{ListType, MapType};
use serde_json::Value;

use crate::strategy::ApplyShapes;

/// How a value merges and how its fields are owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Form {
    /// An object merged field by field, or a scalar.
    Granular,
    /// Replaced and owned as a whole.
    Atomic,
    /// A list of scalars merged as a set (`v:<value>` members).
    Set,
    /// A list of objects merged by the values of these fields
    /// (`k:{...}` members).
    Keyed(Vec<String>),
}

/// Where a value sits in its kind.
#[derive(Clone)]
pub(crate) enum At<'a> {
    /// In a built-in type (`ty`: its table name, `None` when the table has
    /// nothing below), reached through the field row `meta`.
    Builtin {
        ty: Option<&'static str>,
        meta: Option<FieldMeta>,
    },
    /// In a custom resource's schema, at `path` (`*` for list items).
    Schema {
        shapes: &'a dyn ApplyShapes,
        path: Vec<String>,
    },
}

impl<'a> At<'a> {
    /// The root of `obj`: the custom schema's when there is one, else the
    /// built-in table's type of its kind.
    pub(crate) fn root(obj: &Value, shapes: Option<&'a dyn ApplyShapes>) -> At<'a> {
        match shapes {
            Some(shapes) => At::Schema {
                shapes,
                path: Vec::new(),
            },
            None => {
                let s = |k: &str| obj.get(k).and_then(Value::as_str);
                At::Builtin {
                    ty: s("apiVersion")
                        .zip(s("kind"))
                        .and_then(|(av, k)| root_type_for(av, k)),
                    meta: None,
                }
            }
        }
    }

    /// An object's metadata.
    pub(crate) fn object_meta() -> At<'static> {
        At::Builtin {
            ty: Some("ObjectMeta"),
            meta: None,
        }
    }

    /// The value of field `name` of the object here.
    pub(crate) fn field(&self, name: &str) -> At<'a> {
        match self {
            At::Builtin { ty, .. } => {
                let meta = ty.and_then(|t| Builtin.field(t, name));
                At::Builtin {
                    ty: meta.and_then(|m| m.ty),
                    meta,
                }
            }
            // The object's metadata, and an embedded resource's.
            At::Schema { shapes, path }
                if name == "metadata"
                    && (path.is_empty() || {
                        let at: Vec<&str> = path.iter().map(String::as_str).collect();
                        shapes.embedded(&at)
                    }) =>
            {
                At::object_meta()
            }
            At::Schema { shapes, path } => {
                let mut path = path.clone();
                path.push(name.to_string());
                At::Schema {
                    shapes: *shapes,
                    path,
                }
            }
        }
    }

    /// An item of the list here.
    pub(crate) fn item(&self) -> At<'a> {
        match self {
            At::Builtin { ty, .. } => At::Builtin {
                ty: *ty,
                meta: None,
            },
            At::Schema { shapes, path } => {
                let mut path = path.clone();
                path.push("*".into());
                At::Schema {
                    shapes: *shapes,
                    path,
                }
            }
        }
    }

    /// How `v`, the value here, merges.
    pub(crate) fn form(&self, v: &Value) -> Form {
        match (self, v) {
            (At::Builtin { meta, .. }, Value::Array(_)) => match meta {
                Some(m) if m.strategy == Strategy::Merge => match m.merge_key {
                    Some(key) => Form::Keyed(vec![key.to_string()]),
                    None => Form::Set,
                },
                _ => Form::Atomic,
            },
            (At::Schema { shapes, path }, Value::Array(_)) => {
                let path: Vec<&str> = path.iter().map(String::as_str).collect();
                match shapes.list_type(&path) {
                    Some(ListType::Set) => Form::Set,
                    Some(ListType::Map(keys)) if !keys.is_empty() => Form::Keyed(keys),
                    _ => Form::Atomic,
                }
            }
            (At::Schema { shapes, path }, Value::Object(_)) => {
                let path: Vec<&str> = path.iter().map(String::as_str).collect();
                match shapes.map_type(&path) {
                    Some(MapType::Atomic) => Form::Atomic,
                    _ => Form::Granular,
                }
            }
            _ => Form::Granular,
        }
    }
}

/// The identity of `item` in a list of form `form`: the `k:`/`v:` key of
/// its field path (without the prefix), or `None` when it has none (an
/// item missing a key field).
pub(crate) fn item_key(form: &Form, item: &Value) -> Option<String> {
    match form {
        Form::Keyed(keys) => {
            let mut id = serde_json::Map::new();
            for k in keys {
                id.insert(k.clone(), item.get(k)?.clone());
            }
            Some(format!("k:{}", Value::Object(id)))
        }
        Form::Set => Some(format!("v:{item}")),
        _ => None,
    }
}

/// Server-side apply's merge of an applied configuration (`rhs`) into the
/// live object (`lhs`), as structured-merge-diff merges them: objects
/// field by field, keyed lists and sets item by item (the live items in
/// their order, then the new ones in the configuration's order), and
/// atomic lists and maps, scalars, and anything of another type replaced
/// by the configuration's value.
pub(crate) fn merge(lhs: &Value, rhs: &Value, at: &At) -> Value {
    match (lhs, rhs) {
        (Value::Object(l), Value::Object(r)) if at.form(rhs) == Form::Granular => {
            let mut out = l.clone();
            for (k, rv) in r {
                let merged = match l.get(k) {
                    Some(lv) => merge(lv, rv, &at.field(k)),
                    None => rv.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (Value::Array(l), Value::Array(r)) => {
            let form = at.form(rhs);
            if !matches!(form, Form::Set | Form::Keyed(_)) {
                return rhs.clone();
            }
            let item_at = at.item();
            let r_keys: Vec<Option<String>> = r.iter().map(|i| item_key(&form, i)).collect();
            let mut seen = Vec::new();
            let mut out = Vec::with_capacity(l.len().max(r.len()));
            for li in l {
                let key = item_key(&form, li);
                let matching = key
                    .as_ref()
                    .and_then(|k| r_keys.iter().position(|rk| rk.as_ref() == Some(k)));
                match matching {
                    Some(i) => out.push(merge(li, &r[i], &item_at)),
                    None => out.push(li.clone()),
                }
                seen.push(key);
            }
            for (ri, key) in r.iter().zip(&r_keys) {
                if key.is_none() || !seen.contains(key) {
                    out.push(ri.clone());
                }
            }
            Value::Array(out)
        }
        _ => rhs.clone(),
    }
}
