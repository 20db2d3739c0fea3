//! Patches over JSON objects: RFC 6902 JSON patch, RFC 7386 JSON merge
//! patch, and Kubernetes' strategic merge patch (lists of objects merged by
//! their merge key, `$patch`, `$setElementOrder`, `$deleteFromPrimitiveList`
//! and `$retainKeys` directives), which is what `kubectl apply`, `edit` and
//! `set image` send.
//!
//! The strategic patch knows the merge keys of the built-in types by field
//! name (containers by `name`, container ports by `containerPort`, service
//! ports by `port`, volumeMounts by `mountPath`, ...); lists it has no key for
//! are replaced, as for custom resources.

use serde_json::{Map, Value};

/// A patch that cannot be applied. Becomes a 422 (or 400 if unreadable).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PatchError(pub String);

fn err(msg: impl Into<String>) -> PatchError {
    PatchError(msg.into())
}

/// RFC 7386: objects merge recursively, `null` deletes, anything else
/// (arrays included) replaces.
pub fn merge_patch(target: &Value, patch: &Value) -> Value {
    match patch {
        Value::Object(p) => {
            let mut out = match target {
                Value::Object(t) => t.clone(),
                _ => Map::new(),
            };
            for (k, v) in p {
                if v.is_null() {
                    out.remove(k);
                } else {
                    let merged = merge_patch(out.get(k).unwrap_or(&Value::Null), v);
                    out.insert(k.clone(), merged);
                }
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

fn parse_pointer(path: &str) -> Result<Vec<String>, PatchError> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    if !path.starts_with('/') {
        return Err(err(format!("invalid JSON pointer {path:?}")));
    }
    Ok(path[1..].split('/').map(unescape).collect())
}

fn index(arr: &[Value], tok: &str, for_insert: bool) -> Result<usize, PatchError> {
    if for_insert && tok == "-" {
        return Ok(arr.len());
    }
    let i: usize = tok
        .parse()
        .map_err(|_| err(format!("invalid array index {tok:?}")))?;
    let limit = if for_insert {
        arr.len()
    } else {
        arr.len().saturating_sub(1)
    };
    if i > limit || (!for_insert && arr.is_empty()) {
        return Err(err(format!("array index {i} out of bounds")));
    }
    Ok(i)
}

fn get_mut<'a>(doc: &'a mut Value, path: &[String]) -> Result<&'a mut Value, PatchError> {
    let mut cur = doc;
    for tok in path {
        cur = match cur {
            Value::Object(m) => m
                .get_mut(tok)
                .ok_or_else(|| err(format!("path element {tok:?} not found")))?,
            Value::Array(a) => {
                let i = index(a, tok, false)?;
                &mut a[i]
            }
            _ => return Err(err(format!("cannot descend into a scalar at {tok:?}"))),
        };
    }
    Ok(cur)
}

fn remove_at(doc: &mut Value, path: &[String]) -> Result<Value, PatchError> {
    let (last, parent) = path
        .split_last()
        .ok_or_else(|| err("cannot remove the whole document"))?;
    match get_mut(doc, parent)? {
        Value::Object(m) => m
            .remove(last)
            .ok_or_else(|| err(format!("cannot remove missing field {last:?}"))),
        Value::Array(a) => {
            let i = index(a, last, false)?;
            Ok(a.remove(i))
        }
        _ => Err(err("cannot remove from a scalar")),
    }
}

fn add_at(doc: &mut Value, path: &[String], value: Value) -> Result<(), PatchError> {
    let Some((last, parent)) = path.split_last() else {
        *doc = value;
        return Ok(());
    };
    match get_mut(doc, parent)? {
        Value::Object(m) => {
            m.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(a) => {
            let i = index(a, last, true)?;
            a.insert(i, value);
            Ok(())
        }
        _ => Err(err("cannot add to a scalar")),
    }
}

/// RFC 6902. All or nothing: a failing operation (a `test` included)
/// leaves the target unchanged.
pub fn json_patch(target: &Value, patch: &Value) -> Result<Value, PatchError> {
    let ops = patch
        .as_array()
        .ok_or_else(|| err("a JSON patch must be an array of operations"))?;
    let mut doc = target.clone();
    for (i, op) in ops.iter().enumerate() {
        let name = op
            .get("op")
            .and_then(Value::as_str)
            .ok_or_else(|| err(format!("operation {i} has no \"op\"")))?;
        let path = parse_pointer(
            op.get("path")
                .and_then(Value::as_str)
                .ok_or_else(|| err(format!("operation {i} has no \"path\"")))?,
        )?;
        let value = || {
            op.get("value")
                .cloned()
                .ok_or_else(|| err(format!("operation {i} ({name}) has no \"value\"")))
        };
        let from = || -> Result<Vec<String>, PatchError> {
            parse_pointer(
                op.get("from")
                    .and_then(Value::as_str)
                    .ok_or_else(|| err(format!("operation {i} ({name}) has no \"from\"")))?,
            )
        };
        match name {
            "add" => add_at(&mut doc, &path, value()?)?,
            "remove" => {
                remove_at(&mut doc, &path)?;
            }
            "replace" => {
                let v = value()?;
                *get_mut(&mut doc, &path)? = v;
            }
            "move" => {
                let v = remove_at(&mut doc, &from()?)?;
                add_at(&mut doc, &path, v)?;
            }
            "copy" => {
                let v = get_mut(&mut doc, &from()?)?.clone();
                add_at(&mut doc, &path, v)?;
            }
            "test" => {
                if *get_mut(&mut doc, &path)? != value()? {
                    return Err(err(format!("test operation {i} failed")));
                }
            }
            other => return Err(err(format!("unknown JSON patch operation {other:?}"))),
        }
    }
    Ok(doc)
}

/// The merge key of a list field of a built-in type, if it has one.
fn merge_key(field: &str, sample: Option<&Value>) -> Option<&'static str> {
    let has = |k: &str| sample.and_then(|s| s.get(k)).is_some();
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "readinessGates"
        | "resourceClaims"
        | "secrets" => Some("name"),
        "ports" if has("containerPort") => Some("containerPort"),
        "ports" => Some("port"),
        "volumeMounts" => Some("mountPath"),
        "volumeDevices" => Some("devicePath"),
        "hostAliases" => Some("ip"),
        "conditions" => Some("type"),
        "ownerReferences" => Some("uid"),
        "topologySpreadConstraints" => Some("topologyKey"),
        "taints" => Some("key"),
        _ => None,
    }
}

/// Lists of scalars that merge as sets rather than being replaced.
fn merges_primitives(field: &str) -> bool {
    matches!(field, "finalizers")
}

/// Kubernetes' strategic merge patch for built-in types.
pub fn strategic_merge_patch(target: &Value, patch: &Value) -> Result<Value, PatchError> {
    match (target, patch) {
        (_, Value::Object(p)) => merge_object(target.as_object(), p).map(Value::Object),
        (_, other) => Ok(other.clone()),
    }
}

fn merge_object(
    target: Option<&Map<String, Value>>,
    patch: &Map<String, Value>,
) -> Result<Map<String, Value>, PatchError> {
    if patch.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut p = patch.clone();
        p.remove("$patch");
        return Ok(strip_directives(p));
    }
    let mut out = target.cloned().unwrap_or_default();
    if let Some(Value::Array(keep)) = patch.get("$retainKeys") {
        let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
        out.retain(|k, _| keep.contains(&k.as_str()));
    }
    for (k, v) in patch {
        if k.starts_with('$') {
            continue;
        }
        if v.is_null() {
            out.remove(k);
            continue;
        }
        let merged = match (out.get(k), v) {
            (Some(Value::Array(cur)), Value::Array(pl)) => merge_list(k, cur, pl)?,
            (None, Value::Array(pl)) => merge_list(k, &[], pl)?,
            (cur, Value::Object(po)) => {
                Value::Object(merge_object(cur.and_then(Value::as_object), po)?)
            }
            (_, other) => other.clone(),
        };
        out.insert(k.clone(), merged);
    }
    // `$deleteFromPrimitiveList/<field>` and `$setElementOrder/<field>`.
    for (k, v) in patch {
        if let (Some(field), Value::Array(del)) = (k.strip_prefix("$deleteFromPrimitiveList/"), v) {
            if let Some(Value::Array(list)) = out.get_mut(field) {
                list.retain(|x| !del.contains(x));
            }
        }
        if let (Some(field), Value::Array(order)) = (k.strip_prefix("$setElementOrder/"), v) {
            if let Some(Value::Array(list)) = out.get_mut(field) {
                reorder(field, list, order);
            }
        }
    }
    Ok(out)
}

fn strip_directives(mut m: Map<String, Value>) -> Map<String, Value> {
    m.retain(|k, _| !k.starts_with('$'));
    m
}

fn merge_list(field: &str, current: &[Value], patch: &[Value]) -> Result<Value, PatchError> {
    // `[{"$patch": "replace"}, ...]` replaces the list with the rest.
    if patch
        .iter()
        .any(|e| e.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        return Ok(Value::Array(
            patch
                .iter()
                .filter(|e| e.get("$patch").is_none())
                .cloned()
                .collect(),
        ));
    }
    if merges_primitives(field) {
        let mut out: Vec<Value> = current.to_vec();
        for v in patch {
            if !out.contains(v) {
                out.push(v.clone());
            }
        }
        return Ok(Value::Array(out));
    }
    let sample = patch.iter().chain(current.iter()).find(|e| e.is_object());
    let Some(key) = merge_key(field, sample) else {
        return Ok(Value::Array(
            patch
                .iter()
                .map(|e| match e {
                    Value::Object(m) => Value::Object(strip_directives(m.clone())),
                    other => other.clone(),
                })
                .collect(),
        ));
    };
    let mut out: Vec<Value> = current.to_vec();
    for pe in patch {
        let Value::Object(pm) = pe else {
            return Err(err(format!(
                "{field}: list elements must be objects with the merge key {key:?}"
            )));
        };
        let id = pm
            .get(key)
            .ok_or_else(|| err(format!("{field}: an element lacks its merge key {key:?}")))?;
        let pos = out.iter().position(|e| e.get(key) == Some(id));
        match (pm.get("$patch").and_then(Value::as_str), pos) {
            (Some("delete"), Some(i)) => {
                out.remove(i);
            }
            (Some("delete"), None) => {}
            (_, Some(i)) => {
                let merged = merge_object(out[i].as_object(), pm)?;
                out[i] = Value::Object(merged);
            }
            (_, None) => out.push(Value::Object(strip_directives(merge_object(None, pm)?))),
        }
    }
    Ok(Value::Array(out))
}

/// Orders a list's elements as `$setElementOrder` says; elements it does not
/// name keep their relative order after the named ones.
fn reorder(field: &str, list: &mut Vec<Value>, order: &[Value]) {
    let sample = list.iter().find(|e| e.is_object());
    let key = merge_key(field, sample);
    let id_of = |e: &Value| -> Value {
        match key {
            Some(k) => e.get(k).cloned().unwrap_or(Value::Null),
            None => e.clone(),
        }
    };
    let wanted: Vec<Value> = order
        .iter()
        .map(|o| match key {
            Some(k) => o.get(k).cloned().unwrap_or(Value::Null),
            None => o.clone(),
        })
        .collect();
    let mut named: Vec<Value> = Vec::new();
    for w in &wanted {
        if let Some(i) = list.iter().position(|e| id_of(e) == *w) {
            named.push(list.remove(i));
        }
    }
    named.append(list);
    *list = named;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_rfc7386() {
        let t = json!({"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]});
        let p = json!({"a": "z", "c": {"f": null}, "l": [3]});
        assert_eq!(
            merge_patch(&t, &p),
            json!({"a": "z", "c": {"d": "e"}, "l": [3]})
        );
        assert_eq!(
            merge_patch(
                &json!({"metadata": {"labels": {"a": "1", "b": "2"}}}),
                &json!({"metadata": {"labels": {"b": null, "c": "3"}}})
            ),
            json!({"metadata": {"labels": {"a": "1", "c": "3"}}})
        );
    }

    #[test]
    fn json_patch_rfc6902() {
        let t = json!({"spec": {"replicas": 1, "list": ["a", "b"]}, "x~y": {"a/b": 1}});
        let p = json!([
            {"op": "replace", "path": "/spec/replicas", "value": 3},
            {"op": "add", "path": "/spec/list/-", "value": "c"},
            {"op": "add", "path": "/spec/list/0", "value": "z"},
            {"op": "remove", "path": "/x~0y/a~1b"},
            {"op": "copy", "from": "/spec/replicas", "path": "/spec/copied"},
            {"op": "move", "from": "/spec/copied", "path": "/moved"},
            {"op": "test", "path": "/spec/replicas", "value": 3}
        ]);
        assert_eq!(
            json_patch(&t, &p).unwrap(),
            json!({"spec": {"replicas": 3, "list": ["z", "a", "b", "c"]}, "x~y": {}, "moved": 3})
        );
        assert!(json_patch(
            &t,
            &json!([{"op": "test", "path": "/spec/replicas", "value": 9}])
        )
        .is_err());
        assert!(json_patch(&t, &json!([{"op": "remove", "path": "/nope"}])).is_err());
        assert!(json_patch(
            &t,
            &json!([{"op": "add", "path": "/spec/list/9", "value": 1}])
        )
        .is_err());
        assert!(json_patch(&t, &json!({"op": "add"})).is_err());
        assert!(json_patch(&t, &json!([{"op": "frobnicate", "path": "/a"}])).is_err());
    }

    #[test]
    fn strategic_set_image_merges_containers_by_name() {
        let d = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "web", "image": "nginx:1", "ports": [{"containerPort": 80}]},
            {"name": "side", "image": "busybox"}
        ]}}}});
        let p = json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:2"}]}}}});
        let out = strategic_merge_patch(&d, &p).unwrap();
        let cs = &out["spec"]["template"]["spec"]["containers"];
        assert_eq!(cs.as_array().unwrap().len(), 2);
        assert_eq!(cs[0]["image"], "nginx:2");
        assert_eq!(cs[0]["ports"][0]["containerPort"], 80);
        assert_eq!(cs[1]["image"], "busybox");
    }

    #[test]
    fn strategic_directives() {
        let d = json!({"metadata": {"finalizers": ["a"]}, "spec": {"containers": [
            {"name": "a", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]},
            {"name": "b"}
        ], "tolerations": [{"key": "k"}]}});
        let p = json!({
            "metadata": {"finalizers": ["b"]},
            "spec": {
                "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
                "containers": [{"name": "a", "env": [{"name": "X", "$patch": "delete"}, {"name": "Z", "value": "3"}]}],
                "tolerations": [{"key": "other"}]
            }
        });
        let out = strategic_merge_patch(&d, &p).unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["a", "b"]));
        assert_eq!(out["spec"]["containers"][0]["name"], "b");
        assert_eq!(
            out["spec"]["containers"][1]["env"],
            json!([{"name": "Y", "value": "2"}, {"name": "Z", "value": "3"}])
        );
        assert_eq!(
            out["spec"]["tolerations"],
            json!([{"key": "other"}]),
            "lists without a key are replaced"
        );
        assert!(out["spec"].get("$setElementOrder/containers").is_none());
        let rep = strategic_merge_patch(
            &d,
            &json!({"spec": {"containers": [{"$patch": "replace"}, {"name": "only"}]}}),
        )
        .unwrap();
        assert_eq!(rep["spec"]["containers"], json!([{"name": "only"}]));
        let del = strategic_merge_patch(
            &d,
            &json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
        )
        .unwrap();
        assert_eq!(del["metadata"]["finalizers"], json!([]));
        let nulled = strategic_merge_patch(&d, &json!({"spec": {"tolerations": null}})).unwrap();
        assert!(nulled["spec"].get("tolerations").is_none());
        assert!(strategic_merge_patch(&d, &json!({"spec": {"containers": ["x"]}})).is_err());
    }

    #[test]
    fn service_ports_merge_by_port() {
        let s = json!({"spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}]}});
        let out = strategic_merge_patch(
            &s,
            &json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}]}}),
        )
        .unwrap();
        assert_eq!(
            out["spec"]["ports"][0],
            json!({"port": 80, "name": "http", "targetPort": 8080})
        );
        assert_eq!(out["spec"]["ports"].as_array().unwrap().len(), 2);
    }
}
