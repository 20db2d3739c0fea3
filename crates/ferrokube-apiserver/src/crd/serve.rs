//! The rows a CRD adds to the runtime registry: one per served version,
//! under the CRD's accepted names, stored as Kubernetes stores custom
//! objects (`/registry/<group>/<plural>/<namespace>/<name>`), with
//! `/status` and `/scale` where the version has them.

use std::sync::Arc;

use ferrokube_api::registry::{intern, intern_list, ResourceDef, Subresource, ALL_VERBS};
use ferrokube_openapi::CustomSchema;
use serde_json::Value;

use super::conversion::Converter;
use super::resource::CustomResourceStrategy;
use super::spec::{self, Parts};
use crate::strategy::Strategy;

/// One served version: its row, strategy and `openAPIV3Schema`.
pub(crate) struct Served {
    /// The registry row.
    pub(crate) def: ResourceDef,
    /// The version's rules.
    pub(crate) strategy: Arc<dyn Strategy>,
    /// What the OpenAPI documents publish of the version (its schema for
    /// `kubectl explain` and client-side validation).
    pub(crate) schema: CustomSchema,
}

fn list(v: Option<&Value>) -> &'static [&'static str] {
    let items: Vec<&str> = v
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    intern_list(&items)
}

/// Kubernetes' order of versions (`CompareKubeAwareVersionStrings`): GA
/// before beta before alpha, higher numbers first, then versions that do
/// not look like Kubernetes', alphabetically.
fn version_rank(v: &str) -> (u8, std::cmp::Reverse<u64>, std::cmp::Reverse<u64>, String) {
    let kube = v.strip_prefix('v').and_then(|rest| {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let major: u64 = rest[..digits].parse().ok()?;
        let tail = &rest[digits..];
        if tail.is_empty() {
            return Some((0, major, 0));
        }
        for (level, word) in [(1, "beta"), (2, "alpha")] {
            if let Some(n) = tail.strip_prefix(word) {
                return n.parse().ok().map(|minor| (level, major, minor));
            }
        }
        None
    });
    match kube {
        Some((level, major, minor)) => (
            level,
            std::cmp::Reverse(major),
            std::cmp::Reverse(minor),
            String::new(),
        ),
        None => (3, std::cmp::Reverse(0), std::cmp::Reverse(0), v.to_string()),
    }
}

const GET_PATCH_UPDATE: &[&str] = &["get", "patch", "update"];

/// The store prefix of a CRD's objects.
pub(crate) fn storage_prefix(group: &str, plural: &str) -> String {
    format!("/registry/{group}/{plural}/")
}

/// The served versions of `crd` (under its accepted names), or none if its
/// names are not accepted yet.
pub(crate) fn served(crd: &Value) -> Vec<Served> {
    let Some(names) = crd.pointer("/status/acceptedNames") else {
        return Vec::new();
    };
    let s = |k: &str| names.get(k).and_then(Value::as_str).unwrap_or_default();
    let (plural, kind) = (s("plural"), s("kind"));
    let group = crd
        .pointer("/spec/group")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if plural.is_empty() || kind.is_empty() || group.is_empty() {
        return Vec::new();
    }
    let namespaced = crd.pointer("/spec/scope").and_then(Value::as_str) == Some("Namespaced");
    let (group, plural, kind) = (intern(group), intern(plural), intern(kind));
    let singular = intern(s("singular"));
    let short_names = list(names.get("shortNames"));
    let categories = list(names.get("categories"));
    let prefix = intern(&storage_prefix(group, plural));
    let parts = Parts::of(crd);
    let preserve_unknown = crd
        .pointer("/spec/preserveUnknownFields")
        .and_then(Value::as_bool)
        == Some(true);
    let converter = Arc::new(Converter::new(crd));
    let first = spec::versions(crd).first();
    let mut versions: Vec<&Value> = spec::versions(crd).iter().collect();
    versions
        .sort_by_key(|v| version_rank(v.get("name").and_then(Value::as_str).unwrap_or_default()));
    versions
        .into_iter()
        .filter(|v| v.get("served").and_then(Value::as_bool) == Some(true))
        .filter_map(|v| {
            let name = v.get("name").and_then(Value::as_str)?;
            let version = intern(name);
            let pick = |hoisted: bool| if hoisted { first } else { Some(v) };
            let subs = pick(parts.subresources).and_then(|x| x.get("subresources"));
            let has = |k: &str| subs.and_then(|s| s.get(k)).is_some_and(|x| !x.is_null());
            let mut subresources = Vec::new();
            if has("status") {
                subresources.push(Subresource {
                    name: "status",
                    group,
                    version,
                    kind,
                    verbs: GET_PATCH_UPDATE,
                });
            }
            if has("scale") {
                subresources.push(Subresource {
                    name: "scale",
                    group: "autoscaling",
                    version: "v1",
                    kind: "Scale",
                    verbs: GET_PATCH_UPDATE,
                });
            }
            let def = ResourceDef {
                group,
                version,
                kind,
                plural,
                singular,
                namespaced,
                verbs: ALL_VERBS,
                short_names,
                categories,
                subresources,
                storage_prefix: prefix,
            };
            Some(Served {
                def,
                strategy: Arc::new(CustomResourceStrategy::new(crd, name, converter.clone())),
                schema: CustomSchema {
                    group: group.to_string(),
                    version: version.to_string(),
                    kind: kind.to_string(),
                    list_kind: Some(s("listKind"))
                        .filter(|l| !l.is_empty())
                        .map_or_else(|| format!("{kind}List"), str::to_string),
                    plural: plural.to_string(),
                    schema: pick(parts.schema)
                        .and_then(|x| x.pointer("/schema/openAPIV3Schema"))
                        .cloned(),
                    preserve_unknown_fields: preserve_unknown,
                    selectable_fields: v
                        .get("selectableFields")
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(|f| f.get("jsonPath").and_then(Value::as_str))
                                .map(str::to_string)
                                .collect()
                        })
                        .unwrap_or_default(),
                },
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_served_version_is_a_row_under_the_accepted_names() {
        let crd = json!({"spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget"},
            "versions": [
                {"name": "v1", "served": true, "storage": true,
                 "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}}},
                {"name": "v2", "served": true, "storage": false},
                {"name": "v0", "served": false, "storage": false}]},
            "status": {"acceptedNames": {"plural": "widgets", "singular": "widget", "kind": "Widget",
                "listKind": "WidgetList", "shortNames": ["wd"], "categories": ["all"]}}});
        let rows = served(&crd);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].def.version, "v2", "the preferred version first");
        let v1 = &rows[1].def;
        assert_eq!(
            (v1.group, v1.version, v1.plural, v1.kind),
            ("example.com", "v1", "widgets", "Widget")
        );
        assert_eq!(v1.key("ns", "a"), "/registry/example.com/widgets/ns/a");
        assert_eq!(v1.short_names, &["wd"]);
        assert_eq!(v1.categories, &["all"]);
        assert!(v1.subresource("status").is_some() && v1.subresource("scale").is_some());
        assert!(rows[0].def.subresource("status").is_none());
        let scale = rows[1].strategy.scale_paths(v1).unwrap();
        assert_eq!(scale.spec_replicas, "/spec/replicas");
        assert!(served(&json!({"spec": crd["spec"].clone()})).is_empty());
    }

    #[test]
    fn versions_sort_as_kubernetes_sorts_them() {
        let mut v = vec!["v1beta1", "foo", "v1", "v2alpha1", "v2", "v1beta2", "v10"];
        v.sort_by_key(|x| version_rank(x));
        assert_eq!(
            v,
            ["v10", "v2", "v1", "v1beta2", "v1beta1", "v2alpha1", "foo"]
        );
    }
}
