//! `x-kubernetes-list-type: set` and `map` hold each element (or key) once
//! (`apiserver/schema/listtype`), and the list types by path for
//! server-side apply.

use std::collections::HashMap;

use ferrokube_api::status::FieldError;
use serde_json::{Map, Value as Json};

use crate::gofmt::sharp_v;
use crate::node::Node;

/// The duplicate elements and keys under `obj`, with paths under `path`.
pub(crate) fn validate(s: &Node, obj: &Json, path: &str, errs: &mut Vec<FieldError>) {
    match obj {
        Json::Object(fields) => {
            for (k, v) in fields {
                if let Some(p) = s.properties.get(k) {
                    validate(p, v, &join(path, k), errs);
                } else if let Some(a) = s.additional_schema() {
                    validate(a, v, &format!("{}[{k}]", path), errs);
                }
            }
        }
        Json::Array(items) => {
            match s.list_type.as_deref() {
                Some("set") => {
                    for i in non_unique(items) {
                        errs.push(duplicate(&format!("{}[{i}]", path), &items[i]));
                    }
                }
                Some("map") => list_map(s, items, path, errs),
                _ => {}
            }
            if let Some(item) = &s.items {
                for (i, v) in items.iter().enumerate() {
                    validate(item, v, &format!("{}[{i}]", path), errs);
                }
            }
        }
        _ => {}
    }
}

fn join(path: &str, k: &str) -> String {
    if path.is_empty() {
        k.to_string()
    } else {
        format!("{path}.{k}")
    }
}

fn duplicate(path: &str, v: &Json) -> FieldError {
    match v {
        Json::Object(_) | Json::Array(_) => FieldError::duplicate_shown(path, sharp_v(v)),
        other => FieldError::duplicate(path, other.clone()),
    }
}

/// The indices of the second appearance of each repeated element.
fn non_unique(items: &[Json]) -> Vec<usize> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    for (i, x) in items.iter().enumerate() {
        let key = canonical(x);
        let times = seen.entry(key).or_insert(0);
        *times += 1;
        if *times == 2 {
            out.push(i);
        }
    }
    out
}

/// A text equal for equal JSON values (object keys sorted).
fn canonical(v: &Json) -> String {
    match v {
        Json::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let inner: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Json::String(k.clone()), canonical(&m[k])))
                .collect();
            format!("{{{}}}", inner.join(","))
        }
        Json::Array(a) => format!(
            "[{}]",
            a.iter().map(canonical).collect::<Vec<_>>().join(",")
        ),
        Json::Number(n) => match n.as_i64() {
            Some(i) => format!("i{i}"),
            None => format!("f{n}"),
        },
        other => other.to_string(),
    }
}

fn list_map(s: &Node, items: &[Json], path: &str, errs: &mut Vec<FieldError>) {
    for (i, x) in items.iter().enumerate() {
        if !x.is_null() && !x.is_object() {
            errs.push(FieldError::invalid(
                format!("{}[{i}]", path),
                x.clone(),
                "must be an object for an array of list-type map",
            ));
            return;
        }
    }
    let keys: Vec<Json> = items
        .iter()
        .map(|x| {
            let mut key = Map::new();
            for k in &s.list_map_keys {
                if let Some(v) = x.get(k) {
                    key.insert(k.clone(), v.clone());
                }
            }
            Json::Object(key)
        })
        .collect();
    for i in non_unique(&keys) {
        errs.push(FieldError::duplicate_shown(
            format!("{}[{i}]", path),
            sharp_v(&keys[i]),
        ));
    }
}
