//! Kubernetes' strategic merge patch
//! (`application/strategic-merge-patch+json`), what `kubectl apply`,
//! `patch`, `edit`, `set image`, `scale` and `rollout restart` send.
//!
//! Like a JSON merge patch (objects merge, `null` deletes) except that lists
//! the [`schema`](super::schema) tags `merge` are merged: lists of objects
//! element by element on their merge key, lists of scalars as sets. The
//! directives:
//! - `$patch: replace` in an object replaces it; as a list element, the list
//!   becomes the patch's other elements.
//! - `$patch: delete` in an object empties it; in a list element, removes the
//!   elements with that merge key.
//! - `$retainKeys: [..]` drops the object's fields not named.
//! - `$deleteFromPrimitiveList/<field>: [..]` removes scalars from a list.
//! - `$setElementOrder/<field>: [..]` orders the merged list.
//!
//! Order of merged lists follows Kubernetes: `$setElementOrder` first, then
//! the order of the patch list, then that of the live list.

use serde_json::{Map, Value};

use super::schema::{root_type_for, Builtin, FieldMeta, SchemaLookup, Strategy};
use super::PatchError;

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_FROM: &str = "$deleteFromPrimitiveList/";
const SET_ORDER: &str = "$setElementOrder/";

/// Applies a strategic merge patch to a built-in object, with the schema
/// found from `original`'s `apiVersion` and `kind` (or the patch's, if the
/// original has none). Kinds the table does not know are patched with every
/// list replaced, as Kubernetes does for custom resources.
pub fn strategic_merge_patch(original: &Value, patch: &Value) -> Result<Value, PatchError> {
    let pick = |field: &str| {
        original
            .get(field)
            .and_then(Value::as_str)
            .or_else(|| patch.get(field).and_then(Value::as_str))
            .unwrap_or_default()
    };
    let root = root_type_for(pick("apiVersion"), pick("kind"));
    apply(original, patch, &Builtin, root)
}

/// Applies `patch` to `original`, looking fields up in `schema` starting at
/// type `root` (`None`: no type, every list is replaced).
pub fn apply(
    original: &Value,
    patch: &Value,
    schema: &dyn SchemaLookup,
    root: Option<&str>,
) -> Result<Value, PatchError> {
    let Value::Object(p) = patch else {
        return Err(PatchError::bad_request(
            "a strategic merge patch must be a JSON object",
        ));
    };
    let base = original.as_object().cloned().unwrap_or_default();
    let ctx = Ctx { schema };
    ctx.merge_map(base, p, root, "").map(Value::Object)
}

struct Ctx<'a> {
    schema: &'a dyn SchemaLookup,
}

fn invalid(path: &str, msg: impl std::fmt::Display) -> PatchError {
    if path.is_empty() {
        PatchError::invalid(msg.to_string())
    } else {
        PatchError::invalid(format!("{path}: {msg}"))
    }
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

/// What sort of JSON value; lists must hold one sort only.
fn sort_of(v: &Value) -> &'static str {
    match v {
        Value::Object(_) => "object",
        Value::Array(_) => "list",
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "boolean",
        Value::Null => "null",
    }
}

/// The one sort of all elements of the given lists, `None` if all are empty.
fn element_sort(path: &str, lists: &[&[Value]]) -> Result<Option<&'static str>, PatchError> {
    let mut found: Option<&'static str> = None;
    for v in lists.iter().flat_map(|l| l.iter()) {
        let s = sort_of(v);
        if s == "list" {
            return Err(invalid(path, "lists of lists cannot be merged"));
        }
        match found {
            None => found = Some(s),
            Some(f) if f != s => {
                return Err(invalid(
                    path,
                    format!("list elements are of different types ({f} and {s})"),
                ))
            }
            _ => {}
        }
    }
    Ok(found)
}

fn directive_of(v: &Value) -> Option<&Value> {
    v.as_object().and_then(|m| m.get(DIRECTIVE))
}

/// The identity of a list element: its merge key's value for objects, the
/// element itself for scalars.
fn identity<'v>(v: &'v Value, key: Option<&str>) -> Option<&'v Value> {
    match key {
        Some(k) => v.get(k),
        None => Some(v),
    }
}

fn position(list: &[Value], item: &Value, key: Option<&str>) -> Option<usize> {
    let id = identity(item, key)?;
    list.iter().position(|e| identity(e, key) == Some(id))
}

impl Ctx<'_> {
    fn meta(&self, ty: Option<&str>, field: &str) -> Option<FieldMeta> {
        ty.and_then(|t| self.schema.field(t, field))
    }

    /// Merges the object `patch` into `out`, in steps: a `$patch`
    /// directive, `$retainKeys`, the `$setElementOrder/` lists, the fields,
    /// then the `$deleteFromPrimitiveList/` deletions.
    fn merge_map(
        &self,
        mut out: Map<String, Value>,
        patch: &Map<String, Value>,
        ty: Option<&str>,
        path: &str,
    ) -> Result<Map<String, Value>, PatchError> {
        if let Some(d) = patch.get(DIRECTIVE) {
            return self.object_directive(d, patch, ty, path);
        }
        if let Some(keep) = patch.get(RETAIN_KEYS) {
            retain_keys(&mut out, patch, keep, path)?;
        }
        let done = self.apply_set_element_orders(&mut out, patch, ty, path)?;
        let deletions = self.merge_fields(&mut out, patch, &done, ty, path)?;
        apply_deletions(&mut out, deletions, path)?;
        Ok(out)
    }

    /// An object's `$patch`: `replace` (the patch without the directive
    /// replaces the object) or `delete`.
    fn object_directive(
        &self,
        d: &Value,
        patch: &Map<String, Value>,
        ty: Option<&str>,
        path: &str,
    ) -> Result<Map<String, Value>, PatchError> {
        match d.as_str() {
            Some("replace") => {
                let mut rest = patch.clone();
                rest.remove(DIRECTIVE);
                self.merge_map(Map::new(), &rest, ty, path)
            }
            Some("delete") => Ok(Map::new()),
            _ => Err(invalid(
                path,
                format!(
                    "unknown patch directive {d} in an object (expected \"replace\" or \"delete\")"
                ),
            )),
        }
    }

    /// Each `$setElementOrder/<field>` with its list: the field merged and
    /// put in that order. Returns the fields done.
    fn apply_set_element_orders<'p>(
        &self,
        out: &mut Map<String, Value>,
        patch: &'p Map<String, Value>,
        ty: Option<&str>,
        path: &str,
    ) -> Result<Vec<&'p str>, PatchError> {
        let mut done: Vec<&str> = Vec::new();
        for (k, order) in patch {
            let Some(field) = k.strip_prefix(SET_ORDER) else {
                continue;
            };
            let fpath = join(path, field);
            if field.is_empty() {
                return Err(invalid(path, format!("{k:?} names no field")));
            }
            let order = order
                .as_array()
                .ok_or_else(|| invalid(&fpath, format!("{k} must be a list")))?;
            let meta = self.meta(ty, field);
            let current = match out.get(field) {
                None | Some(Value::Null) => None,
                Some(Value::Array(l)) => Some(l.clone()),
                Some(_) => {
                    return Err(invalid(
                        &fpath,
                        format!("{k} given for a field that is not a list"),
                    ))
                }
            };
            let plist = match patch.get(field) {
                None => None,
                Some(Value::Array(l)) => Some(l.as_slice()),
                Some(Value::Null) => {
                    // Deleted by the patch: the order means nothing.
                    continue;
                }
                Some(_) => {
                    return Err(invalid(
                        &fpath,
                        format!("{k} given for a field that is not a list"),
                    ))
                }
            };
            let key = meta.and_then(|m| m.merge_key);
            if let Some(pl) = plist {
                check_order(pl, order, key, &fpath)?;
            }
            let merged = match (&current, plist) {
                (Some(c), None) => c.clone(),
                (c, Some(pl)) => self.merge_list(c.as_deref().unwrap_or(&[]), pl, meta, &fpath)?,
                (None, None) => continue,
            };
            done.push(field);
            let merging = meta.is_some_and(|m| m.strategy == Strategy::Merge);
            let result = if merging {
                let live = current.unwrap_or_default();
                let elems = element_sort(&fpath, &[&live, plist.unwrap_or(&[])])?;
                let key = if elems == Some("object") { key } else { None };
                if key.is_some() {
                    require_keys(&merged, key, &fpath)?;
                    require_keys(order, key, &fpath)?;
                }
                let (in_order, server_only): (Vec<Value>, Vec<Value>) = merged
                    .into_iter()
                    .partition(|e| position(order, e, key).is_some());
                interleave(
                    sort_by(in_order, order, key),
                    sort_by(server_only, &live, key),
                    &live,
                    key,
                )
            } else {
                merged
            };
            out.insert(field.to_string(), Value::Array(result));
        }
        Ok(done)
    }

    /// The patch's plain fields merged into `out` (null deletes); returns
    /// the `$deleteFromPrimitiveList/` entries for last.
    fn merge_fields<'p>(
        &self,
        out: &mut Map<String, Value>,
        patch: &'p Map<String, Value>,
        done: &[&str],
        ty: Option<&str>,
        path: &str,
    ) -> Result<Vec<(&'p str, &'p Value)>, PatchError> {
        let mut deletions: Vec<(&str, &Value)> = Vec::new();
        for (k, v) in patch {
            if k == RETAIN_KEYS || k.starts_with(SET_ORDER) || done.contains(&k.as_str()) {
                continue;
            }
            if let Some(field) = k.strip_prefix(DELETE_FROM) {
                if field.is_empty() {
                    return Err(invalid(path, format!("{k:?} names no field")));
                }
                deletions.push((field, v));
                continue;
            }
            if k.starts_with('$') {
                return Err(invalid(path, format!("unknown patch directive {k:?}")));
            }
            let fpath = join(path, k);
            if v.is_null() {
                out.remove(k);
                continue;
            }
            let meta = self.meta(ty, k);
            let child_ty = meta.and_then(|m| m.ty);
            let merged = match (out.remove(k), v) {
                (Some(Value::Object(cur)), Value::Object(p)) => {
                    Value::Object(self.merge_map(cur, p, child_ty, &fpath)?)
                }
                (Some(Value::Array(cur)), Value::Array(p)) => {
                    Value::Array(self.merge_list(&cur, p, meta, &fpath)?)
                }
                (_, Value::Object(p)) => {
                    Value::Object(self.merge_map(Map::new(), p, child_ty, &fpath)?)
                }
                (_, Value::Array(p)) => Value::Array(self.merge_list(&[], p, meta, &fpath)?),
                (_, scalar) => scalar.clone(),
            };
            out.insert(k.clone(), merged);
        }
        Ok(deletions)
    }
}

/// `$retainKeys`: the patch may only set the fields it names, and the
/// object keeps only those.
fn retain_keys(
    out: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    keep: &Value,
    path: &str,
) -> Result<(), PatchError> {
    let keep = keep
        .as_array()
        .filter(|l| l.iter().all(Value::is_string))
        .ok_or_else(|| invalid(path, "$retainKeys must be a list of field names"))?;
    let named = |k: &str| keep.iter().any(|x| x.as_str() == Some(k));
    for (k, v) in patch {
        if v.is_null() || k.starts_with('$') {
            continue;
        }
        if !named(k) {
            return Err(invalid(
                path,
                format!("field {k:?} is in the patch but not in its $retainKeys list"),
            ));
        }
    }
    out.retain(|k, _| named(k));
    Ok(())
}

/// `$deleteFromPrimitiveList/<field>`: the listed values leave the field's
/// list.
fn apply_deletions(
    out: &mut Map<String, Value>,
    deletions: Vec<(&str, &Value)>,
    path: &str,
) -> Result<(), PatchError> {
    for (field, del) in deletions {
        let fpath = join(path, field);
        let del = del
            .as_array()
            .ok_or_else(|| invalid(&fpath, format!("{DELETE_FROM}{field} must be a list")))?;
        match out.get_mut(field) {
            Some(Value::Array(list)) => list.retain(|x| !del.contains(x)),
            None | Some(Value::Null) => {}
            Some(_) => {
                return Err(invalid(
                    &fpath,
                    format!("{DELETE_FROM}{field} given for a field that is not a list"),
                ))
            }
        }
    }
    Ok(())
}

impl Ctx<'_> {
    /// Merges a patch list into the live list as the field's strategy says.
    fn merge_list(
        &self,
        live: &[Value],
        patch: &[Value],
        meta: Option<FieldMeta>,
        path: &str,
    ) -> Result<Vec<Value>, PatchError> {
        let Some(meta) = meta.filter(|m| m.strategy == Strategy::Merge) else {
            // Untagged (atomic) lists and lists of unknown types: replaced.
            return Ok(patch.to_vec());
        };
        if live.is_empty() && patch.is_empty() {
            return Ok(Vec::new());
        }
        match element_sort(path, &[live, patch])? {
            Some("object") => self.merge_object_list(live, patch, meta, path),
            _ => {
                // A set of scalars: live elements, then new ones, no duplicates.
                let mut merged: Vec<Value> = Vec::new();
                for v in live.iter().chain(patch) {
                    if !merged.contains(v) {
                        merged.push(v.clone());
                    }
                }
                let (in_patch, server_only): (Vec<Value>, Vec<Value>) =
                    merged.into_iter().partition(|e| patch.contains(e));
                Ok(interleave(
                    sort_by(in_patch, patch, None),
                    sort_by(server_only, live, None),
                    live,
                    None,
                ))
            }
        }
    }

    fn merge_object_list(
        &self,
        live: &[Value],
        patch: &[Value],
        meta: FieldMeta,
        path: &str,
    ) -> Result<Vec<Value>, PatchError> {
        let key = meta
            .merge_key
            .ok_or_else(|| invalid(path, "a list of objects tagged merge has no merge key"))?;
        let mut base: Vec<Value> = live.to_vec();
        let mut plain: Vec<&Map<String, Value>> = Vec::new();
        let mut replace = false;
        for p in patch {
            let Value::Object(pm) = p else {
                return Err(invalid(path, "list elements must be objects"));
            };
            match pm.get(DIRECTIVE) {
                None => plain.push(pm),
                Some(d) => {
                    match d.as_str() {
                        Some("delete") => {
                            let id = pm.get(key).ok_or_else(|| {
                            invalid(path, format!("an element with $patch: delete lacks the merge key {key:?}"))
                        })?;
                            base.retain(|e| e.get(key) != Some(id));
                        }
                        Some("replace") => replace = true,
                        Some("merge") => {
                            return Err(invalid(path, "$patch: merge is not supported in lists"))
                        }
                        _ => {
                            return Err(invalid(
                                path,
                                format!("unknown patch directive {d} in a list element"),
                            ))
                        }
                    }
                }
            }
        }
        let ty = meta.ty;
        if replace {
            return plain
                .into_iter()
                .map(|pm| self.merge_map(Map::new(), pm, ty, path).map(Value::Object))
                .collect();
        }
        for e in &base {
            if !e.is_object() {
                return Err(invalid(path, "list elements must be objects"));
            }
        }
        let order_base = base.clone();
        for pm in &plain {
            let id = pm.get(key).ok_or_else(|| {
                invalid(
                    path,
                    format!(
                        "an element lacks the merge key {key:?}: {}",
                        Value::Object((*pm).clone())
                    ),
                )
            })?;
            match base.iter().position(|e| e.get(key) == Some(id)) {
                Some(i) => {
                    let cur = match std::mem::take(&mut base[i]) {
                        Value::Object(m) => m,
                        _ => Map::new(),
                    };
                    base[i] = Value::Object(self.merge_map(cur, pm, ty, path)?);
                }
                None => base.push(Value::Object(self.merge_map(Map::new(), pm, ty, path)?)),
            }
        }
        let plain_values: Vec<Value> = plain.iter().map(|m| Value::Object((*m).clone())).collect();
        let (in_patch, server_only): (Vec<Value>, Vec<Value>) = base
            .into_iter()
            .partition(|e| position(&plain_values, e, Some(key)).is_some());
        Ok(interleave(
            sort_by(in_patch, &plain_values, Some(key)),
            sort_by(server_only, &order_base, Some(key)),
            &order_base,
            Some(key),
        ))
    }
}

fn require_keys(list: &[Value], key: Option<&str>, path: &str) -> Result<(), PatchError> {
    if let Some(k) = key {
        for e in list {
            if e.get(k).is_none() {
                return Err(invalid(
                    path,
                    format!("an element lacks the merge key {k:?}: {e}"),
                ));
            }
        }
    }
    Ok(())
}

/// Checks that the patch list's elements (deletions aside) appear in the
/// `$setElementOrder` list, in the same relative order.
fn check_order(
    plist: &[Value],
    order: &[Value],
    key: Option<&str>,
    path: &str,
) -> Result<(), PatchError> {
    if plist.is_empty() || order.is_empty() {
        return Ok(());
    }
    let items: Vec<&Value> = plist.iter().filter(|e| directive_of(e).is_none()).collect();
    let (mut i, mut j) = (0, 0);
    while i < items.len() && j < order.len() {
        let (a, b) = (identity(items[i], key), identity(&order[j], key));
        if a.is_none() || b.is_none() {
            return Err(invalid(
                path,
                "an element of $setElementOrder or of its list lacks the merge key",
            ));
        }
        if a == b {
            i += 1;
        }
        j += 1;
    }
    if i < items.len() {
        return Err(invalid(
            path,
            "the order of the patch list does not match its $setElementOrder list",
        ));
    }
    Ok(())
}

/// Stable sort of `items` by their position in `order`; items not in it
/// keep their relative order at the end.
fn sort_by(mut items: Vec<Value>, order: &[Value], key: Option<&str>) -> Vec<Value> {
    items.sort_by_key(|e| position(order, e, key).unwrap_or(usize::MAX));
    items
}

/// Merges the live-only elements into the patch elements: a live element
/// goes first only when both are in the live list and it came first there;
/// otherwise the patch element does (so new elements precede the live ones
/// that follow them), as Kubernetes orders them.
fn interleave(
    patch_items: Vec<Value>,
    server_only: Vec<Value>,
    live: &[Value],
    key: Option<&str>,
) -> Vec<Value> {
    let mut out = Vec::with_capacity(patch_items.len() + server_only.len());
    let mut left = server_only.into_iter().peekable();
    let mut right = patch_items.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => matches!(
                (position(live, l, key), position(live, r, key)),
                (Some(li), Some(ri)) if li < ri
            ),
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    out
}

#[cfg(test)]
#[path = "strategic_tests.rs"]
mod tests;
