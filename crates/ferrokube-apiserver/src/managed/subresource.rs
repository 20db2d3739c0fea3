//! Field ownership of writes through a subresource (`/status`, `/scale`,
//! a CSR's `/approval`, a namespace's `/finalize`, ...). Kubernetes keeps
//! them in entries of their own, marked `subresource: <name>`: an update
//! of `/status` by `kubelet` is the entry `kubelet`/`Update`/`status`,
//! apart from what `kubelet` wrote to the object itself. A status write
//! owns the status fields it changed; an apply through `/status` owns
//! exactly the status of its configuration.

use serde_json::{json, Value};

use super::{
    changed_fields, drop_unapplied, entries_of, fields_of, set_entries, take_over, upsert,
    value_fields, ApplyShapes, At, Conflict, Entry, FieldSet,
};

/// The status writes: what they may change is the status.
fn writes_status(subresource: &str) -> bool {
    matches!(subresource, "status" | "approval")
}

/// Whether a field path is in the status (`f:status` and below).
pub(super) fn in_status(path: &[String]) -> bool {
    path.first().is_some_and(|k| k == "f:status")
}

/// Finishes an entry's JSON: no `manager` when it is empty (Kubernetes
/// leaves it out), and the subresource last, when there is one.
pub(super) fn finish_entry(entry: &mut Value, subresource: String) {
    if let Some(m) = entry.as_object_mut() {
        if m.get("manager").and_then(Value::as_str) == Some("") {
            m.remove("manager");
        }
        if !subresource.is_empty() {
            m.insert("subresource".into(), json!(subresource));
        }
    }
}

/// The field set of an object's status, under `f:status` (empty without
/// one); `shapes`: the kind's custom schema, if it has one.
fn status_fields(obj: &Value, shapes: Option<&dyn ApplyShapes>) -> FieldSet {
    let mut set = FieldSet::default();
    let Some(status) = obj.get("status") else {
        return set;
    };
    let inner = value_fields(status, &At::root(obj, shapes).field("status"));
    if !inner.is_empty() {
        set.put("f:status".into(), inner);
    }
    set
}

/// The fields a write through `subresource` may own in `obj`: the status
/// for a status write, else the object's fields and its status.
fn scope_fields(obj: &Value, subresource: &str, shapes: Option<&dyn ApplyShapes>) -> FieldSet {
    if writes_status(subresource) {
        return status_fields(obj, shapes);
    }
    let mut set = fields_of(obj, shapes);
    for path in status_fields(obj, shapes).leaves() {
        set.insert(&path);
    }
    set
}

/// Whether a field path is one a write through `subresource` may own.
fn in_scope(path: &[String], subresource: &str) -> bool {
    !writes_status(subresource) || in_status(path)
}

/// Drops the fields of the scope of `subresource` that are no longer in
/// the object (`present`) from every entry.
fn forget_gone(entries: &mut [Entry], present: &FieldSet, subresource: &str) {
    for e in entries.iter_mut() {
        for p in e.fields.leaves() {
            if in_scope(&p, subresource) && !present.contains(&p) {
                e.fields.remove(&p);
            }
        }
    }
}

/// Records an `Update` through `subresource` (not empty) by `manager`: its
/// entry (marked with the subresource) takes over every field the write
/// changed, from whoever owned it.
pub(crate) fn record_subresource_update(
    old: &Value,
    new: &mut Value,
    manager: &str,
    subresource: &str,
    shapes: Option<&dyn ApplyShapes>,
) {
    let api_version = new
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut entries = entries_of(old);
    let present = scope_fields(new, subresource, shapes);
    let changed = changed_fields(old, new, &present);
    let i = upsert(&mut entries, manager, "Update", &api_version, subresource);
    for p in &changed {
        for (j, e) in entries.iter_mut().enumerate() {
            if j != i {
                e.fields.remove(p);
            }
        }
        entries[i].fields.insert(p);
    }
    forget_gone(&mut entries, &present, subresource);
    set_entries(new, entries);
}

/// Server-side apply through `subresource` (not empty) of `config` by
/// `manager` to `current` (`merged`: the two merged, what the subresource
/// may not change kept), as [`super::apply`] does for the object itself:
/// the applier's entry (marked with the subresource) owns exactly what the
/// configuration sets in the subresource's scope; what it applied before
/// and no more goes unless someone else owns it; changing another
/// manager's field conflicts unless `force`.
pub(crate) fn apply_subresource(
    current: &Value,
    merged: Value,
    config: &Value,
    manager: &str,
    force: bool,
    subresource: &str,
    shapes: Option<&dyn ApplyShapes>,
) -> Result<Value, Vec<Conflict>> {
    let api_version = config
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mine =
        |e: &Entry| e.manager == manager && e.operation == "Apply" && e.subresource == subresource;
    let mut entries = entries_of(current);
    let applied = scope_fields(config, subresource, shapes);
    let mut result = merged;
    drop_unapplied(&mut result, &entries, &applied, &mine);
    let present = scope_fields(&result, subresource, shapes);
    let changed = changed_fields(current, &result, &present);
    take_over(&mut entries, &changed, &mine, force)?;
    let i = upsert(&mut entries, manager, "Apply", &api_version, subresource);
    entries[i].fields = applied;
    forget_gone(&mut entries, &present, subresource);
    set_entries(&mut result, entries);
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deploy() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "labels": {"app": "x"}},
            "spec": {"replicas": 2},
            "status": {"replicas": 2, "conditions": [{"type": "Available", "status": "True"}]}})
    }

    fn entry<'a>(entries: &'a [Entry], manager: &str, sub: &str) -> &'a Entry {
        entries
            .iter()
            .find(|e| e.manager == manager && e.subresource == sub)
            .unwrap_or_else(|| panic!("no entry {manager}/{sub}: {entries:?}"))
    }

    #[test]
    fn a_status_write_has_an_entry_of_its_own() {
        let mut v1 = deploy();
        super::super::record_update(None, &mut v1, "kubectl-create", None);
        let mut v2 = v1.clone();
        v2["status"]["replicas"] = json!(3);
        record_subresource_update(&v1, &mut v2, "kube-controller-manager", "status", None);
        let entries = entries_of(&v2);
        let status = entry(&entries, "kube-controller-manager", "status");
        assert_eq!(status.operation, "Update");
        assert_eq!(
            status.fields.leaves(),
            vec![vec!["f:status".to_string(), "f:replicas".to_string()]]
        );
        // The creator keeps its own, and the entry reads as Kubernetes'.
        let create = entry(&entries, "kubectl-create", "");
        assert!(create
            .fields
            .contains(&["f:spec".into(), "f:replicas".into()]));
        let json = &v2["metadata"]["managedFields"];
        assert_eq!(json[1]["subresource"], "status", "{json}");
        assert!(json[0].get("subresource").is_none(), "{json}");

        // A write to the object itself leaves the status entry alone.
        let mut v3 = v2.clone();
        v3["spec"]["replicas"] = json!(4);
        super::super::record_update(Some(&v2), &mut v3, "kubectl-edit", None);
        let entries = entries_of(&v3);
        assert_eq!(
            entry(&entries, "kube-controller-manager", "status").fields,
            status.fields
        );
        // The same manager writing the object itself has another entry.
        let mut v4 = v3.clone();
        v4["metadata"]["labels"]["b"] = json!("c");
        super::super::record_update(Some(&v3), &mut v4, "kube-controller-manager", None);
        let entries = entries_of(&v4);
        assert_eq!(entries.len(), 4, "{entries:?}");
    }

    #[test]
    fn a_status_apply_owns_the_applied_status() {
        let mut v1 = deploy();
        super::super::record_update(None, &mut v1, "kubectl-create", None);
        let mut v2 = v1.clone();
        v2["status"]["replicas"] = json!(3);
        record_subresource_update(&v1, &mut v2, "kube-controller-manager", "status", None);
        let config = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d"}, "status": {"replicas": 5}});
        let mut merged = v2.clone();
        merged["status"]["replicas"] = json!(5);
        let err = apply_subresource(&v2, merged.clone(), &config, "tool", false, "status", None)
            .unwrap_err();
        assert_eq!(err[0].path, ".status.replicas");
        assert_eq!(err[0].manager, "kube-controller-manager");
        let done = apply_subresource(&v2, merged, &config, "tool", true, "status", None).unwrap();
        let entries = entries_of(&done);
        let tool = entry(&entries, "tool", "status");
        assert_eq!(tool.operation, "Apply");
        assert_eq!(
            tool.fields.leaves(),
            vec![vec!["f:status".to_string(), "f:replicas".to_string()]]
        );
        // The controller's entry, left with nothing, is gone.
        assert!(
            entries
                .iter()
                .all(|e| e.manager != "kube-controller-manager"),
            "{entries:?}"
        );
    }

    #[test]
    fn an_empty_manager_is_left_out() {
        let mut v1 = deploy();
        super::super::record_update(None, &mut v1, "", None);
        let e = &v1["metadata"]["managedFields"][0];
        assert!(e.get("manager").is_none(), "{e}");
        assert_eq!(entries_of(&v1).len(), 1);
    }
}
