//! The object metadata the server owns, as Kubernetes sets it: `uid`,
//! `creationTimestamp`, names from `generateName`, and the fields a client
//! may not change on update (uid, creationTimestamp, deletionTimestamp, ...).
//! `generation` is the kind's strategy's (see [`crate::defaults::strategy`]). The JSON kept in the store
//! carries no `resourceVersion`: it is the key's revision, set when read.

use serde_json::{Map, Value};

/// Kubernetes' alphabet for generated name suffixes (no vowels, no
/// look-alike characters).
const SUFFIX_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// The longest a generated base may be, so base + suffix fits 63 characters.
const MAX_GENERATED_BASE: usize = 58;

/// Now, as Kubernetes writes timestamps: RFC 3339 in UTC, whole seconds.
pub(crate) fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// `generateName` + 5 random characters, the base cut to fit.
pub(crate) fn generate_name(base: &str) -> String {
    let cut = if base.len() > MAX_GENERATED_BASE {
        let mut end = MAX_GENERATED_BASE;
        while !base.is_char_boundary(end) {
            end -= 1;
        }
        &base[..end]
    } else {
        base
    };
    let mut name = String::with_capacity(cut.len() + 5);
    name.push_str(cut);
    for _ in 0..5 {
        let i = rand::random_range(0..SUFFIX_ALPHABET.len());
        name.push(SUFFIX_ALPHABET[i] as char);
    }
    name
}

/// The object's `metadata` map, created if missing. `None` if the object is
/// not a JSON object or its metadata is not one.
pub(crate) fn metadata_mut(obj: &mut Value) -> Option<&mut Map<String, Value>> {
    let map = obj.as_object_mut()?;
    map.entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
}

/// A string field of the metadata.
pub(crate) fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

/// The labels of a `metadata` object (non-string values ignored).
pub(crate) fn labels_of(meta: Option<&Value>) -> std::collections::BTreeMap<String, String> {
    meta.and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// Sets what the server owns on a new object: uid and creationTimestamp,
/// and clears what a client may not set (resourceVersion,
/// deletionTimestamp, deletionGracePeriodSeconds). The name must already be
/// settled (see [`generate_name`]).
pub(crate) fn fill_on_create(obj: &mut Value) {
    let Some(meta) = metadata_mut(obj) else {
        return;
    };
    meta.insert(
        "uid".into(),
        Value::String(uuid::Uuid::new_v4().to_string()),
    );
    meta.insert("creationTimestamp".into(), Value::String(now_rfc3339()));
    meta.remove("resourceVersion");
    meta.remove("deletionTimestamp");
    meta.remove("deletionGracePeriodSeconds");
    meta.remove("selfLink");
}

/// Carries the server-owned metadata of `old` onto an update `new`.
pub(crate) fn carry_on_update(old: &Value, new: &mut Value) {
    let old_meta = old.get("metadata").and_then(Value::as_object);
    let Some(meta) = metadata_mut(new) else {
        return;
    };
    let Some(old_meta) = old_meta else {
        return;
    };
    for field in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "name",
        "namespace",
    ] {
        match old_meta.get(field) {
            Some(v) => {
                meta.insert(field.into(), v.clone());
            }
            None => {
                meta.remove(field);
            }
        }
    }
    meta.remove("resourceVersion");
    meta.remove("selfLink");
}

/// Sets `metadata.resourceVersion`.
pub(crate) fn set_resource_version(obj: &mut Value, revision: i64) {
    if let Some(meta) = metadata_mut(obj) {
        meta.insert(
            "resourceVersion".into(),
            Value::String(revision.to_string()),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn generated_names() {
        let n = generate_name("web-");
        assert_eq!(n.len(), 9);
        assert!(n.starts_with("web-"));
        assert!(n[4..].bytes().all(|c| SUFFIX_ALPHABET.contains(&c)));
        let long = "x".repeat(100);
        assert_eq!(generate_name(&long).len(), 63);
        assert_ne!(
            generate_name("a-"),
            generate_name("a-"),
            "random suffixes differ (1 in 14M)"
        );
    }

    #[test]
    fn create_fills_server_fields() {
        let mut obj = json!({"metadata": {"name": "a", "resourceVersion": "5", "uid": "mine",
            "deletionTimestamp": "2020-01-01T00:00:00Z"}, "spec": {}});
        fill_on_create(&mut obj);
        let m = &obj["metadata"];
        assert_ne!(m["uid"], "mine");
        assert_eq!(m["uid"].as_str().unwrap().len(), 36);
        assert!(m.get("generation").is_none(), "the kind's strategy sets it");
        assert!(m.get("resourceVersion").is_none());
        assert!(m.get("deletionTimestamp").is_none());
        let ts = m["creationTimestamp"].as_str().unwrap();
        assert!(ts.ends_with('Z') && ts.len() == 20, "{ts}");
    }

    #[test]
    fn update_keeps_server_fields() {
        let old = json!({"metadata": {"name": "a", "uid": "u1", "creationTimestamp": "t0", "generation": 4}});
        let mut new = json!({"metadata": {"name": "a", "uid": "forged", "resourceVersion": "9"}});
        carry_on_update(&old, &mut new);
        assert_eq!(new["metadata"]["uid"], "u1");
        assert_eq!(new["metadata"]["creationTimestamp"], "t0");
        assert!(new["metadata"].get("resourceVersion").is_none());
    }
}
