//! Dropping the fields a schema does not specify
//! (`apiserver/schema/pruning`), naming each as strict field validation
//! names it (`spec.foo`, `spec.list[0].bar`).

use serde_json::Value as Json;

use crate::node::Node;

const META_FIELDS: [&str; 3] = ["apiVersion", "kind", "metadata"];

/// The fields of `ObjectMeta`.
const OBJECT_META: [&str; 15] = [
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

/// The pruning walk; `path` is the value's path so far, `pruned` collects.
pub(crate) struct Pruner {
    pub(crate) pruned: Vec<String>,
}

fn key_path(path: &str, k: &str) -> String {
    if path.is_empty() {
        k.to_string()
    } else {
        format!("{path}.{k}")
    }
}

impl Pruner {
    /// Prunes `x` against `s` (`None`: nothing is known, everything goes);
    /// `embedded` tells whether `x`'s type and object meta are kept as they
    /// are (the resource root and embedded resources).
    pub(crate) fn prune(&mut self, x: &mut Json, s: Option<&Node>, embedded: bool, path: &str) {
        if let Some(s) = s {
            if s.preserves_unknown() {
                self.skip(x, s, embedded || s.embedded, path);
                return;
            }
        }
        match x {
            Json::Object(fields) => {
                let Some(s) = s else {
                    for k in fields.keys() {
                        self.pruned.push(key_path(path, k));
                    }
                    fields.clear();
                    return;
                };
                if s.embedded && !path.is_empty() {
                    self.coerce_meta(fields, path);
                }
                let embedded = embedded || s.embedded;
                let mut drop = Vec::new();
                for (k, v) in fields.iter_mut() {
                    if embedded && META_FIELDS.contains(&k.as_str()) {
                        continue;
                    }
                    if let Some(p) = s.properties.get(k) {
                        self.prune(v, Some(p), false, &key_path(path, k));
                    } else if s.additional.is_some() {
                        self.prune(v, s.additional_schema(), false, &key_path(path, k));
                    } else {
                        drop.push(k.clone());
                    }
                }
                for k in drop {
                    if !META_FIELDS.contains(&k.as_str()) || !path.is_empty() {
                        self.pruned.push(key_path(path, &k));
                    }
                    fields.remove(&k);
                }
            }
            Json::Array(items) => {
                let item = s.and_then(|s| s.items.as_deref());
                for (i, v) in items.iter_mut().enumerate() {
                    self.prune(v, item, false, &format!("{path}[{i}]"));
                }
            }
            _ => {}
        }
    }

    /// An embedded resource's `metadata` as Kubernetes writes it back after
    /// reading it as an `ObjectMeta` (`objectmeta.Coerce`): unknown fields
    /// dropped, `creationTimestamp` present (null when unset).
    fn coerce_meta(&mut self, fields: &mut serde_json::Map<String, Json>, path: &str) {
        let Some(Json::Object(meta)) = fields.get_mut("metadata") else {
            return;
        };
        let unknown: Vec<String> = meta
            .keys()
            .filter(|k| !OBJECT_META.contains(&k.as_str()))
            .cloned()
            .collect();
        for k in unknown {
            self.pruned.push(format!("{path}.metadata.{k}"));
            meta.remove(&k);
        }
        meta.entry("creationTimestamp").or_insert(Json::Null);
    }

    /// Under `x-kubernetes-preserve-unknown-fields`: unknown fields stay,
    /// known ones are pruned by their schemas.
    fn skip(&mut self, x: &mut Json, s: &Node, embedded: bool, path: &str) {
        match x {
            Json::Object(fields) => {
                if s.embedded && !path.is_empty() {
                    self.coerce_meta(fields, path);
                }
                for (k, v) in fields.iter_mut() {
                    if embedded && META_FIELDS.contains(&k.as_str()) {
                        continue;
                    }
                    if let Some(p) = s.properties.get(k) {
                        self.prune(v, Some(p), false, &key_path(path, k));
                    } else if s.additional.is_some() {
                        self.prune(v, s.additional_schema(), false, &key_path(path, k));
                    }
                }
            }
            Json::Array(items) => {
                if let Some(item) = s.items.as_deref() {
                    for (i, v) in items.iter_mut().enumerate() {
                        self.skip(v, item, item.embedded, &format!("{path}[{i}]"));
                    }
                }
            }
            _ => {}
        }
    }
}
