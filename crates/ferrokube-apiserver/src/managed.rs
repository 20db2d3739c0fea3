//! Field ownership (`metadata.managedFields`) and server-side apply.
//!
//! Every write records which fields its manager set: an `Update` entry for
//! create, update and patch (the fields the request changed), an `Apply`
//! entry for server-side apply (exactly the fields of the applied
//! configuration). Field sets use Kubernetes' `FieldsV1` form: `f:<name>`
//! for object fields, `k:{"<key>":<value>}` for elements of lists merged by
//! key, `v:<value>` for elements of sets, `.` for the element itself; a list
//! without a merge key is owned as a whole. Merge keys come from the
//! strategic merge patch's table.
//!
//! Apply refuses (409) to change a field another manager owns unless
//! `force` is set, which takes the field over; fields the applier owned
//! before and no longer applies are removed unless someone else owns them.

mod shape;
mod subresource;

use serde_json::{json, Map, Value};

use crate::strategy::ApplyShapes;
use shape::{At, Form};

pub(crate) use subresource::{apply_subresource, record_subresource_update};

/// A set of fields, as a tree of `FieldsV1` keys, kept in its JSON form:
/// every member is an object, a leaf an empty one. Built as JSON, it goes
/// into `managedFields` as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct FieldSet(Map<String, Value>);

/// Fields nobody manages: identity and server-owned metadata.
const IGNORED_TOP: &[&str] = &["apiVersion", "kind", "status"];
const IGNORED_META: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

impl FieldSet {
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The set as `FieldsV1` JSON.
    pub(crate) fn into_json(self) -> Value {
        Value::Object(self.0)
    }

    /// A set from `FieldsV1` JSON; anything but an object is a leaf.
    pub(crate) fn from_json(v: &Value) -> FieldSet {
        fn tree(v: &Value) -> Map<String, Value> {
            v.as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), Value::Object(tree(v))))
                        .collect()
                })
                .unwrap_or_default()
        }
        FieldSet(tree(v))
    }

    /// Adds `child` under `key`.
    fn put(&mut self, key: String, child: FieldSet) {
        self.0.insert(key, Value::Object(child.0));
    }

    /// Every leaf, as a path of keys.
    pub(crate) fn leaves(&self) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        fn walk(m: &Map<String, Value>, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
            for (k, v) in m {
                path.push(k.clone());
                match v.as_object() {
                    Some(child) if !child.is_empty() => walk(child, path, out),
                    _ => out.push(path.clone()),
                }
                path.pop();
            }
        }
        walk(&self.0, &mut Vec::new(), &mut out);
        out
    }

    pub(crate) fn contains(&self, path: &[String]) -> bool {
        fn within(m: &Map<String, Value>, path: &[String]) -> bool {
            match path.split_first() {
                None => true,
                Some((k, rest)) => m.get(k).is_some_and(|v| {
                    rest.is_empty() || v.as_object().is_some_and(|c| within(c, rest))
                }),
            }
        }
        within(&self.0, path)
    }

    pub(crate) fn insert(&mut self, path: &[String]) {
        fn add(m: &mut Map<String, Value>, path: &[String]) {
            if let Some((k, rest)) = path.split_first() {
                let child = m
                    .entry(k.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if !child.is_object() {
                    *child = Value::Object(Map::new());
                }
                if let Value::Object(c) = child {
                    add(c, rest);
                }
            }
        }
        add(&mut self.0, path)
    }

    /// Removes a leaf path, and parents left empty.
    pub(crate) fn remove(&mut self, path: &[String]) {
        fn drop_path(m: &mut Map<String, Value>, path: &[String]) {
            if let Some((k, rest)) = path.split_first() {
                if rest.is_empty() {
                    m.remove(k);
                } else if let Some(Value::Object(child)) = m.get_mut(k) {
                    drop_path(child, rest);
                    if child.is_empty() {
                        m.remove(k);
                    }
                }
            }
        }
        drop_path(&mut self.0, path)
    }
}

/// The field set of an object (or an applied configuration); `shapes`:
/// the kind's custom schema, if it has one.
pub(crate) fn fields_of(obj: &Value, shapes: Option<&dyn ApplyShapes>) -> FieldSet {
    let root = At::root(obj, shapes);
    let mut set = FieldSet::default();
    if let Some(m) = obj.as_object() {
        for (k, v) in m {
            if IGNORED_TOP.contains(&k.as_str()) {
                continue;
            }
            if k == "metadata" {
                let mut meta = FieldSet::default();
                if let Some(mm) = v.as_object() {
                    let at = At::object_meta();
                    for (mk, mv) in mm {
                        if !IGNORED_META.contains(&mk.as_str()) {
                            meta.put(format!("f:{mk}"), value_fields(mv, &at.field(mk)));
                        }
                    }
                }
                if !meta.is_empty() {
                    set.put("f:metadata".into(), meta);
                }
                continue;
            }
            set.put(format!("f:{k}"), value_fields(v, &root.field(k)));
        }
    }
    set
}

/// The field set below a value: an object's fields, a keyed list's items
/// (`k:{...}` with `.` for the item itself), a set's members (`v:...`);
/// anything else (scalars, atomic lists and maps) is a leaf.
fn value_fields(v: &Value, at: &At) -> FieldSet {
    match (v, at.form(v)) {
        (Value::Object(m), Form::Granular) => object_fields(m, at),
        (Value::Array(items), form @ Form::Keyed(_)) => {
            let item_at = at.item();
            let mut s = FieldSet::default();
            for item in items {
                let Some(key) = shape::item_key(&form, item) else {
                    continue;
                };
                let mut elem = match item.as_object() {
                    Some(o) => object_fields(o, &item_at),
                    None => FieldSet::default(),
                };
                elem.put(".".into(), FieldSet::default());
                s.put(key, elem);
            }
            s
        }
        (Value::Array(items), form @ Form::Set) => FieldSet(
            items
                .iter()
                .filter_map(|i| shape::item_key(&form, i))
                .map(|k| (k, Value::Object(Map::new())))
                .collect(),
        ),
        _ => FieldSet::default(),
    }
}

fn object_fields(m: &Map<String, Value>, at: &At) -> FieldSet {
    FieldSet(
        m.iter()
            .map(|(k, v)| (format!("f:{k}"), value_fields(v, &at.field(k)).into_json()))
            .collect(),
    )
}

/// Server-side apply's merge of `config` into `current` for a kind with a
/// custom schema (lists by their list type and keys, atomic maps whole).
pub(crate) fn merge_applied(current: &Value, config: &Value, shapes: &dyn ApplyShapes) -> Value {
    shape::merge(current, config, &At::root(current, Some(shapes)))
}

/// The value a field path points at in an object, if any.
fn value_at<'a>(obj: &'a Value, path: &[String]) -> Option<&'a Value> {
    let Some((k, rest)) = path.split_first() else {
        return Some(obj);
    };
    if k == "." {
        return Some(obj);
    }
    let next = if let Some(f) = k.strip_prefix("f:") {
        obj.get(f)?
    } else if let Some(key) = k.strip_prefix("k:") {
        let want: Map<String, Value> = serde_json::from_str(key).ok()?;
        obj.as_array()?
            .iter()
            .find(|e| want.iter().all(|(kk, vv)| e.get(kk) == Some(vv)))?
    } else if let Some(v) = k.strip_prefix("v:") {
        let want: Value = serde_json::from_str(v).ok()?;
        obj.as_array()?.iter().find(|e| **e == want)?
    } else {
        return None;
    };
    value_at(next, rest)
}

/// Removes the field a path points at from an object.
fn remove_at(obj: &mut Value, path: &[String]) {
    let Some((k, rest)) = path.split_first() else {
        return;
    };
    if k == "." {
        return;
    }
    if let Some(f) = k.strip_prefix("f:") {
        let Some(m) = obj.as_object_mut() else { return };
        if rest.is_empty() || rest == ["."] {
            m.remove(f);
        } else if let Some(child) = m.get_mut(f) {
            remove_at(child, rest);
        }
    } else if let Some(key) = k.strip_prefix("k:") {
        let Ok(want) = serde_json::from_str::<Map<String, Value>>(key) else {
            return;
        };
        let Some(arr) = obj.as_array_mut() else {
            return;
        };
        let Some(i) = arr
            .iter()
            .position(|e| want.iter().all(|(kk, vv)| e.get(kk) == Some(vv)))
        else {
            return;
        };
        if rest.is_empty() || rest == ["."] {
            arr.remove(i);
        } else {
            remove_at(&mut arr[i], rest);
        }
    } else if let Some(v) = k.strip_prefix("v:") {
        let Ok(want) = serde_json::from_str::<Value>(v) else {
            return;
        };
        if let Some(arr) = obj.as_array_mut() {
            arr.retain(|e| *e != want);
        }
    }
}

/// One `managedFields` entry.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub manager: String,
    pub operation: String,
    pub api_version: String,
    pub time: String,
    pub fields: FieldSet,
    /// The subresource written through (`status`, `scale`, ...); empty
    /// for the object itself.
    pub subresource: String,
}

pub(crate) fn entries_of(obj: &Value) -> Vec<Entry> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|e| {
                    Some(Entry {
                        // Kubernetes leaves out an empty manager.
                        manager: e
                            .get("manager")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                        operation: e.get("operation")?.as_str()?.to_string(),
                        api_version: e
                            .get("apiVersion")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                        time: e
                            .get("time")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                        fields: FieldSet::from_json(e.get("fieldsV1").unwrap_or(&Value::Null)),
                        subresource: e
                            .get("subresource")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

fn set_entries(obj: &mut Value, entries: Vec<Entry>) {
    let list: Vec<Value> = entries
        .into_iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            let mut entry = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": e.fields.into_json(),
            });
            subresource::finish_entry(&mut entry, e.subresource);
            entry
        })
        .collect();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if list.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(list));
        }
    }
}

fn upsert(
    entries: &mut Vec<Entry>,
    manager: &str,
    operation: &str,
    api_version: &str,
    subresource: &str,
) -> usize {
    match entries.iter().position(|e| {
        e.manager == manager && e.operation == operation && e.subresource == subresource
    }) {
        Some(i) => {
            entries[i].time = crate::objectmeta::now_rfc3339();
            entries[i].api_version = api_version.to_string();
            i
        }
        None => {
            entries.push(Entry {
                manager: manager.to_string(),
                operation: operation.to_string(),
                api_version: api_version.to_string(),
                time: crate::objectmeta::now_rfc3339(),
                fields: FieldSet::default(),
                subresource: subresource.to_string(),
            });
            entries.len() - 1
        }
    }
}

/// Records an `Update` by `manager`: it now owns every field the write
/// changed (taken from whoever owned it), and managers of fields that are
/// gone lose them. `old` is `None` for a create.
pub(crate) fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    shapes: Option<&dyn ApplyShapes>,
) {
    let api_version = new
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let Some(old) = old else {
        // A create: the creator owns everything it set.
        let entry = Entry {
            manager: manager.to_string(),
            operation: "Update".into(),
            api_version,
            time: crate::objectmeta::now_rfc3339(),
            fields: fields_of(new, shapes),
            subresource: String::new(),
        };
        set_entries(new, vec![entry]);
        return;
    };
    let mut entries = entries_of(old);
    let new_fields = fields_of(new, shapes);
    // As structured-merge-diff compares them: changed leaves, and list
    // items that are new (an item both have is not itself changed).
    let changed = changed_fields(old, new, &fields_of(new, shapes));
    let i = upsert(&mut entries, manager, "Update", &api_version, "");
    for p in &changed {
        for (j, e) in entries.iter_mut().enumerate() {
            if j != i {
                e.fields.remove(p);
            }
        }
        entries[i].fields.insert(p);
    }
    // Fields no longer in the object are nobody's (the status, which a
    // write to the object itself keeps, aside).
    for e in entries.iter_mut() {
        for p in e.fields.leaves() {
            if !new_fields.contains(&p) && !subresource::in_status(&p) {
                e.fields.remove(&p);
            }
        }
    }
    set_entries(new, entries);
}

/// Whether two objects have the same owners of the same fields (times
/// aside).
pub(crate) fn same_owners(a: &Value, b: &Value) -> bool {
    let key = |v: &Value| {
        let mut e: Vec<(String, String, FieldSet)> = entries_of(v)
            .into_iter()
            .map(|e| (e.manager, e.operation, e.fields))
            .collect();
        e.sort_by(|x, y| (&x.0, &x.1).cmp(&(&y.0, &y.1)));
        e
    };
    key(a) == key(b)
}

/// A conflict of an apply with another manager's field.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Conflict {
    pub manager: String,
    /// `Apply` or `Update`: how the other manager wrote the field.
    pub operation: String,
    pub api_version: String,
    /// The field as Kubernetes prints it (`.spec.replicas`).
    pub path: String,
}

impl Conflict {
    /// The manager as Kubernetes names it in conflicts: `"kubectl-edit"
    /// using apps/v1` for an update, `"flux"` for an applier.
    pub(crate) fn manager_text(&self) -> String {
        if self.operation == "Update" {
            format!("{:?} using {}", self.manager, self.api_version)
        } else {
            format!("{:?}", self.manager)
        }
    }
}

/// A field path as Kubernetes prints it in conflicts: `.spec.replicas`,
/// `.spec.containers[name="nginx"].image`, `.metadata.finalizers[="x"]`.
fn dotted(path: &[String]) -> String {
    fn value_text(v: &Value) -> String {
        match v {
            Value::String(s) => format!("{s:?}"),
            other => other.to_string(),
        }
    }
    path.iter()
        .filter(|k| *k != ".")
        .map(|k| {
            if let Some(f) = k.strip_prefix("f:") {
                format!(".{f}")
            } else if let Some(kv) = k.strip_prefix("k:") {
                match serde_json::from_str::<Map<String, Value>>(kv) {
                    Ok(keys) => format!(
                        "[{}]",
                        keys.iter()
                            .map(|(name, v)| format!("{name}={}", value_text(v)))
                            .collect::<Vec<_>>()
                            .join(",")
                    ),
                    Err(_) => format!("[{kv}]"),
                }
            } else if let Some(v) = k.strip_prefix("v:") {
                match serde_json::from_str::<Value>(v) {
                    Ok(v) => format!("[={}]", value_text(&v)),
                    Err(_) => format!("[={v}]"),
                }
            } else {
                k.clone()
            }
        })
        .collect()
}

/// Whether `path` (a leaf path, possibly ending in `.`) is a member of
/// `set` itself, not merely a prefix of one of its members.
fn has_member(set: &FieldSet, path: &[String]) -> bool {
    let mut node = &set.0;
    for k in path {
        match node.get(k).and_then(Value::as_object) {
            Some(child) => node = child,
            None => return false,
        }
    }
    !path.is_empty() && node.is_empty()
}

/// The fields of `present` (those of `result`) that an apply adds or
/// changes in `current` to make `result`, as structured-merge-diff compares
/// them: a leaf whose value differs, or is new; a list element that is new
/// (an element present in both is not itself changed, only its fields may
/// be).
pub(super) fn changed_fields(
    current: &Value,
    result: &Value,
    present: &FieldSet,
) -> Vec<Vec<String>> {
    present
        .leaves()
        .into_iter()
        .filter(|p| match p.split_last() {
            Some((last, item)) if last == "." => value_at(current, item).is_none(),
            _ => value_at(current, p) != value_at(result, p),
        })
        .collect()
}

/// What an applier (`mine` tells its entry) applied before and applies no
/// more (`applied` is what it applies now) is removed from `result`, unless
/// a manager (the applier included, through what it applies now) still
/// owns it or something below it.
pub(super) fn drop_unapplied(
    result: &mut Value,
    entries: &[Entry],
    applied: &FieldSet,
    mine: &dyn Fn(&Entry) -> bool,
) {
    let previous = entries
        .iter()
        .find(|e| mine(e))
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    for p in previous.leaves() {
        if has_member(applied, &p) {
            continue;
        }
        let node = match p.split_last() {
            Some((last, item)) if last == "." => item,
            _ => &p[..],
        };
        let owned =
            applied.contains(node) || entries.iter().any(|e| !mine(e) && e.fields.contains(node));
        if !owned {
            remove_at(result, &p);
        }
    }
}

/// An apply changing `changed` conflicts with every other manager owning
/// one of those fields: the conflicts, or with `force` the fields taken
/// from their managers (the applier's alone now).
pub(super) fn take_over(
    entries: &mut [Entry],
    changed: &[Vec<String>],
    mine: &dyn Fn(&Entry) -> bool,
    force: bool,
) -> Result<(), Vec<Conflict>> {
    let mut conflicts = Vec::new();
    for e in entries.iter().filter(|e| !mine(e)) {
        for p in changed.iter().filter(|p| has_member(&e.fields, p)) {
            conflicts.push(Conflict {
                manager: e.manager.clone(),
                operation: e.operation.clone(),
                api_version: e.api_version.clone(),
                path: dotted(p),
            });
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflicts);
    }
    for e in entries.iter_mut().filter(|e| !mine(e)) {
        for p in changed {
            if has_member(&e.fields, p) {
                e.fields.remove(p);
            }
        }
    }
    Ok(())
}

fn is_applier(e: &Entry, manager: &str) -> bool {
    e.manager == manager && e.operation == "Apply" && e.subresource.is_empty()
}

/// Server-side apply of `config` by `manager` to `current` (after the merge
/// of the two, `merged`), as Kubernetes' structured-merge-diff does it:
///
/// - the applier's fields become exactly the applied configuration's;
/// - what it applied before and applies no more is removed from the
///   object, unless another manager owns it;
/// - a field another manager owns conflicts only where the apply changes
///   its value (or adds it); a field applied with the value it already has
///   is shared by both managers;
/// - with `force`, conflicting fields are taken from their managers.
///
/// Returns the object to store, or the conflicts.
pub(crate) fn apply(
    current: &Value,
    merged: Value,
    config: &Value,
    manager: &str,
    force: bool,
    shapes: Option<&dyn ApplyShapes>,
) -> Result<Value, Vec<Conflict>> {
    let api_version = config
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mine = |e: &Entry| is_applier(e, manager);
    let mut entries = entries_of(current);
    let applied = fields_of(config, shapes);
    let mut result = merged;
    drop_unapplied(&mut result, &entries, &applied, &mine);
    let present = fields_of(&result, shapes);
    let changed = changed_fields(current, &result, &present);
    take_over(&mut entries, &changed, &mine, force)?;
    let i = upsert(&mut entries, manager, "Apply", &api_version, "");
    entries[i].fields = applied;
    // Fields no longer in the object are nobody's.
    for e in entries.iter_mut() {
        for p in e.fields.leaves() {
            if !present.contains(&p) && !subresource::in_status(&p) {
                e.fields.remove(&p);
            }
        }
    }
    set_entries(&mut result, entries);
    Ok(result)
}

/// The message of a 409 for apply conflicts, as Kubernetes words it (one
/// conflict on one line; several grouped by manager, managers sorted).
pub(crate) fn conflict_message(conflicts: &[Conflict]) -> String {
    if let [one] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            one.manager_text(),
            one.path
        );
    }
    let mut managers: Vec<String> = conflicts.iter().map(Conflict::manager_text).collect();
    managers.sort();
    managers.dedup();
    let mut lines = Vec::new();
    for m in &managers {
        lines.push(format!("conflicts with {m}:"));
        for c in conflicts.iter().filter(|c| &c.manager_text() == m) {
            lines.push(format!("- {}", c.path));
        }
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

/// The `details.causes` of an apply conflict's `Status`.
pub(crate) fn conflict_causes(conflicts: &[Conflict]) -> Value {
    Value::Array(
        conflicts
            .iter()
            .map(|c| {
                json!({
                    "reason": "FieldManagerConflict",
                    "message": format!("conflict with {}", c.manager_text()),
                    "field": c.path,
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deploy(replicas: i64, image: &str) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "labels": {"app": "x"}},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "web", "image": image}]}}}})
    }

    #[test]
    fn field_sets_use_kubernetes_keys() {
        let f = fields_of(&deploy(2, "a"), None);
        let j = f.clone().into_json();
        assert!(j["f:metadata"]["f:labels"]["f:app"].is_object());
        assert!(j["f:metadata"].get("f:name").is_none());
        assert!(j["f:spec"]["f:replicas"].is_object());
        let c = &j["f:spec"]["f:template"]["f:spec"]["f:containers"][r#"k:{"name":"web"}"#];
        assert!(c["."].is_object() && c["f:image"].is_object(), "{j}");
    }

    #[test]
    fn updates_take_over_what_they_change() {
        let mut v1 = deploy(2, "a");
        record_update(None, &mut v1, "kubectl-create", None);
        let mut v2 = v1.clone();
        v2["spec"]["replicas"] = json!(5);
        record_update(Some(&v1), &mut v2, "kubectl-scale", None);
        let e = entries_of(&v2);
        let scale = e.iter().find(|e| e.manager == "kubectl-scale").unwrap();
        assert_eq!(
            scale.fields.leaves(),
            vec![vec!["f:spec".to_string(), "f:replicas".to_string()]]
        );
        let create = e.iter().find(|e| e.manager == "kubectl-create").unwrap();
        assert!(!create
            .fields
            .contains(&["f:spec".into(), "f:replicas".into()]));
    }

    #[test]
    fn apply_conflicts_force_and_removal() {
        // kubectl scale set replicas; an apply that changes them conflicts.
        let mut cur = deploy(2, "a");
        record_update(None, &mut cur, "kubectl-client-side-apply", None);
        let mut scaled = cur.clone();
        scaled["spec"]["replicas"] = json!(5);
        record_update(Some(&cur), &mut scaled, "kubectl-scale", None);
        let config = deploy(3, "a");
        let err = apply(&scaled, config.clone(), &config, "mine", false, None).unwrap_err();
        assert!(err
            .iter()
            .any(|c| c.manager == "kubectl-scale" && c.path == ".spec.replicas"));
        assert!(conflict_message(&err).starts_with("Apply failed with"));
        // Forced: mine owns replicas now.
        let forced = apply(&scaled, config.clone(), &config, "mine", true, None).unwrap();
        let e = entries_of(&forced);
        assert!(e
            .iter()
            .find(|e| e.manager == "mine")
            .unwrap()
            .fields
            .contains(&["f:spec".into(), "f:replicas".into()]));
        assert!(
            e.iter().all(|e| e.manager != "kubectl-scale"),
            "the taken field left scale with nothing"
        );
        // Applying without the label removes it (only mine owned it now? no:
        // the first manager still owns it, so it stays).
        let mut smaller = config.clone();
        smaller["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("labels");
        let after = apply(&forced, forced.clone(), &smaller, "mine", false, None).unwrap();
        assert_eq!(after["metadata"]["labels"]["app"], "x");
    }

    /// The Python client's `create_from_yaml(..., apply=True)` after a
    /// create of the same Deployment: the server had defaulted fields the
    /// configuration leaves out, and no applied value differs, so nothing
    /// conflicts and both managers own the applied fields.
    #[test]
    fn applying_what_is_there_shares_ownership() {
        let config = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "labels": {"app": "nginx"}},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "nginx"}},
                "template": {"metadata": {"labels": {"app": "nginx"}},
                    "spec": {"containers": [{"name": "nginx", "image": "nginx:1.14.2", "ports": [{"containerPort": 80}]}]}}}});
        let mut created = config.clone();
        created["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] =
            json!("IfNotPresent");
        created["spec"]["template"]["spec"]["containers"][0]["ports"][0]["protocol"] = json!("TCP");
        created["spec"]["template"]["spec"]["containers"][0]["terminationMessagePath"] =
            json!("/dev/termination-log");
        created["spec"]["revisionHistoryLimit"] = json!(10);
        record_update(None, &mut created, "OpenAPI-Generator", None);
        let merged = created.clone();
        let applied = apply(&created, merged, &config, "python-client", false, None)
            .expect("no value differs, so nothing conflicts");
        let e = entries_of(&applied);
        let replicas = ["f:spec".to_string(), "f:replicas".to_string()];
        let nginx = [
            "f:spec",
            "f:template",
            "f:spec",
            "f:containers",
            r#"k:{"name":"nginx"}"#,
            ".",
        ]
        .map(String::from);
        for m in ["OpenAPI-Generator", "python-client"] {
            let entry = e.iter().find(|e| e.manager == m).unwrap();
            assert!(entry.fields.contains(&replicas), "{m} owns replicas");
            assert!(entry.fields.contains(&nginx), "{m} owns the container");
        }
        let applier = e.iter().find(|e| e.manager == "python-client").unwrap();
        assert_eq!(applier.operation, "Apply");
        assert!(!applier
            .fields
            .contains(&["f:spec".into(), "f:revisionHistoryLimit".into()]));
        assert_eq!(applied["spec"], created["spec"], "the object is unchanged");
    }

    #[test]
    fn conflicts_name_the_manager_and_field_as_kubernetes() {
        let mut cur = deploy(2, "a");
        record_update(None, &mut cur, "kubectl-client-side-apply", None);
        // Only what differs conflicts: the image is applied unchanged.
        let config = deploy(3, "a");
        let err = apply(&cur, config.clone(), &config, "mine", false, None).unwrap_err();
        assert_eq!(
            conflict_message(&err),
            r#"Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1: .spec.replicas"#
        );
        assert_eq!(
            conflict_causes(&err),
            json!([{"reason": "FieldManagerConflict",
                "message": r#"conflict with "kubectl-client-side-apply" using apps/v1"#,
                "field": ".spec.replicas"}])
        );
        // Two fields: grouped under the manager, one per line.
        let config = deploy(3, "b");
        let err = apply(&cur, config.clone(), &config, "mine", false, None).unwrap_err();
        assert_eq!(
            conflict_message(&err),
            "Apply failed with 2 conflicts: conflicts with \"kubectl-client-side-apply\" using apps/v1:\n\
             - .spec.replicas\n\
             - .spec.template.spec.containers[name=\"web\"].image"
        );
        // Another applier is named without operation and version.
        let theirs = apply(
            &json!({}),
            deploy(2, "a"),
            &deploy(2, "a"),
            "flux",
            false,
            None,
        )
        .unwrap();
        let config = deploy(4, "a");
        let err = apply(&theirs, config.clone(), &config, "mine", false, None).unwrap_err();
        assert_eq!(
            conflict_message(&err),
            r#"Apply failed with 1 conflict: conflict with "flux": .spec.replicas"#
        );
        // A manager re-applying its own fields never conflicts with itself.
        let again = apply(
            &theirs,
            deploy(7, "z"),
            &deploy(7, "z"),
            "flux",
            false,
            None,
        )
        .unwrap();
        assert_eq!(again["spec"]["replicas"], 7);
    }

    #[test]
    fn new_list_elements_and_sets_print_as_kubernetes_paths() {
        assert_eq!(
            dotted(&[
                "f:spec".into(),
                "f:ports".into(),
                r#"k:{"port":80,"protocol":"TCP"}"#.into(),
                ".".into()
            ]),
            r#".spec.ports[port=80,protocol="TCP"]"#
        );
        assert_eq!(
            dotted(&[
                "f:metadata".into(),
                "f:finalizers".into(),
                r#"v:"x""#.into()
            ]),
            r#".metadata.finalizers[="x"]"#
        );
    }

    #[test]
    fn apply_removes_fields_only_it_owned() {
        let config = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}});
        let first = apply(&json!({}), config.clone(), &config, "me", false, None).unwrap();
        let second_cfg = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}});
        let second = apply(&first, first.clone(), &second_cfg, "me", false, None).unwrap();
        assert_eq!(second["data"], json!({"a": "1"}));
    }

    /// A custom resource whose schema has a list-map keyed by `name`, a set,
    /// an atomic list and an atomic map.
    fn widget_schema() -> crate::crd::schema::Schema {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "ports": {"type": "array", "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name", "protocol"],
                "items": {"type": "object", "required": ["name", "protocol"], "properties": {
                    "name": {"type": "string"}, "protocol": {"type": "string"}, "port": {"type": "integer"}}}},
            "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
            "args": {"type": "array", "items": {"type": "string"}},
            "selector": {"type": "object", "x-kubernetes-map-type": "atomic",
                "additionalProperties": {"type": "string"}},
            "template": {"type": "object", "x-kubernetes-embedded-resource": true,
                "x-kubernetes-preserve-unknown-fields": true}}}}});
        crate::crd::schema::Schema::parse(&schema, "").unwrap()
    }

    fn widget(spec: Value) -> Value {
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": spec})
    }

    /// Applies `spec` as `manager` through the schema-aware merge.
    fn apply_widget(
        current: &Value,
        spec: Value,
        manager: &str,
        force: bool,
        schema: &crate::crd::schema::Schema,
    ) -> Result<Value, Vec<Conflict>> {
        let config = widget(spec);
        let merged = merge_applied(current, &config, schema);
        apply(current, merged, &config, manager, force, Some(schema))
    }

    /// `a` applies a port, a tag, args and a selector; `b` another port and
    /// tag. Returns the object after each.
    fn two_appliers(schema: &crate::crd::schema::Schema) -> (Value, Value) {
        let a = apply_widget(
            &json!({}),
            json!({"ports": [{"name": "http", "protocol": "TCP", "port": 80}],
                "tags": ["x"], "args": ["a"], "selector": {"app": "one"}}),
            "a",
            false,
            schema,
        )
        .unwrap();
        let b = apply_widget(
            &a,
            json!({"ports": [{"name": "dns", "protocol": "UDP", "port": 53}], "tags": ["y"]}),
            "b",
            false,
            schema,
        )
        .unwrap();
        (a, b)
    }

    #[test]
    fn custom_resources_merge_and_own_by_their_schema() {
        let schema = widget_schema();
        let (a, b) = two_appliers(&schema);
        let fields = entries_of(&a)[0].fields.clone().into_json();
        let spec = &fields["f:spec"];
        let http = &spec["f:ports"][r#"k:{"name":"http","protocol":"TCP"}"#];
        assert!(
            http["."].is_object() && http["f:port"].is_object(),
            "{fields}"
        );
        assert!(spec["f:tags"][r#"v:"x""#].is_object(), "{fields}");
        assert_eq!(spec["f:args"], json!({}), "an atomic list is a leaf");
        assert_eq!(spec["f:selector"], json!({}), "an atomic map is a leaf");

        // b added its own port and tag.
        assert_eq!(
            b["spec"]["ports"],
            json!([{"name": "http", "protocol": "TCP", "port": 80},
                {"name": "dns", "protocol": "UDP", "port": 53}]),
            "both items kept, the live one first"
        );
        assert_eq!(b["spec"]["tags"], json!(["x", "y"]));
        let owners = entries_of(&b);
        let owned = |m: &str, key: &str| {
            owners.iter().find(|e| e.manager == m).is_some_and(|e| {
                e.fields
                    .contains(&["f:spec".into(), "f:ports".into(), key.into(), ".".into()])
            })
        };
        let (http, dns) = (
            r#"k:{"name":"http","protocol":"TCP"}"#,
            r#"k:{"name":"dns","protocol":"UDP"}"#,
        );
        assert!(owned("a", http) && !owned("a", dns));
        assert!(owned("b", dns) && !owned("b", http));

        // b changing a's port conflicts, as Kubernetes words it.
        let err = apply_widget(
            &b,
            json!({"ports": [{"name": "http", "protocol": "TCP", "port": 8080}]}),
            "b",
            false,
            &schema,
        )
        .unwrap_err();
        assert_eq!(
            conflict_message(&err),
            r#"Apply failed with 1 conflict: conflict with "a": .spec.ports[name="http",protocol="TCP"].port"#
        );
        // Forced, b takes the port; b's dns port, no longer applied, goes.
        let forced = apply_widget(
            &b,
            json!({"ports": [{"name": "http", "protocol": "TCP", "port": 8080}]}),
            "b",
            true,
            &schema,
        )
        .unwrap();
        assert_eq!(
            forced["spec"]["ports"],
            json!([{"name": "http", "protocol": "TCP", "port": 8080}])
        );
        let a_entry = entries_of(&forced)
            .into_iter()
            .find(|e| e.manager == "a")
            .unwrap();
        assert!(!a_entry.fields.contains(&[
            "f:spec".into(),
            "f:ports".into(),
            http.into(),
            "f:port".into()
        ]));
        assert!(a_entry.fields.contains(&[
            "f:spec".into(),
            "f:ports".into(),
            http.into(),
            ".".into()
        ]));
    }

    #[test]
    fn atomic_lists_and_maps_of_custom_resources_are_replaced_whole() {
        let schema = widget_schema();
        let (_, forced) = two_appliers(&schema);
        let err = apply_widget(
            &forced,
            json!({"args": ["b"], "selector": {"app": "two"}}),
            "b",
            false,
            &schema,
        )
        .unwrap_err();
        let paths: Vec<&str> = err.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, [".spec.args", ".spec.selector"]);
        let replaced = apply_widget(
            &forced,
            json!({"args": ["b"], "selector": {"tier": "two"}}),
            "b",
            true,
            &schema,
        )
        .unwrap();
        assert_eq!(replaced["spec"]["args"], json!(["b"]));
        assert_eq!(replaced["spec"]["selector"], json!({"tier": "two"}));
    }

    #[test]
    fn an_embedded_resources_metadata_is_owned_as_object_meta() {
        let schema = widget_schema();
        let obj = widget(json!({"template": {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "t", "finalizers": ["a"]}}}));
        let fields = fields_of(&obj, Some(&schema)).into_json();
        let meta = &fields["f:spec"]["f:template"]["f:metadata"];
        assert!(meta["f:finalizers"][r#"v:"a""#].is_object(), "{fields}");
    }

    #[test]
    fn updates_of_custom_resources_own_items_by_key() {
        let schema = widget_schema();
        let mut created =
            widget(json!({"ports": [{"name": "http", "protocol": "TCP", "port": 80}]}));
        record_update(None, &mut created, "kubectl-create", Some(&schema));
        let mut edited = created.clone();
        edited["spec"]["ports"][0]["port"] = json!(81);
        record_update(Some(&created), &mut edited, "kubectl-edit", Some(&schema));
        let e = entries_of(&edited);
        let edit = e.iter().find(|e| e.manager == "kubectl-edit").unwrap();
        assert_eq!(
            edit.fields.leaves(),
            vec![vec![
                "f:spec".to_string(),
                "f:ports".to_string(),
                r#"k:{"name":"http","protocol":"TCP"}"#.to_string(),
                "f:port".to_string()
            ]]
        );
    }
}
