//! The schema set: every kind's schema from `k8s-openapi` (via schemars),
//! named as Kubernetes names them, with `x-kubernetes-group-version-kind` on
//! top-level kinds, list kinds, the meta/v1 request and response types, and
//! optional list patch metadata supplied by the caller. Held in OpenAPI v3
//! shape (`#/components/schemas/` references, `allOf` around references that
//! carry a description) and converted to Swagger 2.0 shape on demand.

use crate::{custom, kinds, CustomSchema, ResourceDesc};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

const V3_PREFIX: &str = "#/components/schemas/";
const V2_PREFIX: &str = "#/definitions/";
const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1";

/// How a list field merges under strategic merge patch and server-side apply,
/// as Kubernetes' own schemas declare it on the field.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListPatch {
    /// `x-kubernetes-patch-strategy`, e.g. `merge` or `merge,retainKeys`.
    pub strategy: Option<&'static str>,
    /// `x-kubernetes-patch-merge-key`, e.g. `name`.
    pub merge_key: Option<&'static str>,
    /// `x-kubernetes-list-type`: `atomic`, `set` or `map`.
    pub list_type: Option<&'static str>,
    /// `x-kubernetes-list-map-keys` for `map` lists.
    pub list_map_keys: &'static [&'static str],
}

/// Looks up the patch metadata of field `field` of the schema named
/// `schema` (e.g. `io.k8s.api.core.v1.PodSpec`, `containers`).
pub type PatchMetaFn<'a> = &'a dyn Fn(&str, &str) -> Option<ListPatch>;

pub(crate) struct Schemas {
    defs: Map<String, Value>,
    names: BTreeMap<(String, String, String), String>,
    /// Custom kinds' list definitions (whose names need not be `<kind>List`).
    list_names: BTreeMap<String, String>,
    /// Custom kinds' Swagger 2.0 definitions, which differ from v3's by more
    /// than shape (Kubernetes' v2 conversion of their schemas).
    custom_v2: BTreeMap<String, Value>,
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "version": version, "kind": kind})
}

fn add_gvk(defs: &mut Map<String, Value>, name: &str, g: Value) {
    let Some(Value::Object(schema)) = defs.get_mut(name) else {
        return;
    };
    let list = schema
        .entry("x-kubernetes-group-version-kind")
        .or_insert_with(|| json!([]));
    if let Value::Array(items) = list {
        if !items.contains(&g) {
            items.push(g);
        }
    }
}

/// Definition name of the list kind of `name` (`...Deployment` → `...DeploymentList`).
pub(crate) fn list_name(name: &str) -> String {
    format!("{name}List")
}

/// Definition names the operations of subresources refer to.
pub(crate) fn subresource_kind(
    sub: &str,
) -> Option<(&'static str, &'static str, &'static str, &'static str)> {
    match sub {
        "scale" => Some((
            "io.k8s.api.autoscaling.v1.Scale",
            "autoscaling",
            "v1",
            "Scale",
        )),
        "eviction" => Some(("io.k8s.api.policy.v1.Eviction", "policy", "v1", "Eviction")),
        "binding" => Some(("io.k8s.api.core.v1.Binding", "", "v1", "Binding")),
        "token" => Some((
            "io.k8s.api.authentication.v1.TokenRequest",
            "authentication.k8s.io",
            "v1",
            "TokenRequest",
        )),
        _ => None,
    }
}

impl Schemas {
    pub(crate) fn generate(
        resources: &[ResourceDesc],
        patch_meta: Option<PatchMetaFn>,
        custom: &[CustomSchema],
    ) -> Self {
        let mut generator = schemars::generate::SchemaSettings::openapi3().into_generator();
        kinds::register_common(&mut generator);
        if !custom.is_empty() {
            // What custom kinds' definitions refer to.
            kinds::register_object_meta(&mut generator);
        }
        let mut tagged = Vec::new();
        let mut names = BTreeMap::new();
        let mut lists = Vec::new();
        for r in resources {
            if let Some(name) = kinds::register(&mut generator, r.group, r.version, r.kind) {
                tagged.push((name.clone(), gvk(r.group, r.version, r.kind)));
                names.insert(
                    (
                        r.group.to_string(),
                        r.version.to_string(),
                        r.kind.to_string(),
                    ),
                    name.clone(),
                );
                lists.push((name, r.group, r.version, r.kind));
            }
            for sub in r.subresources {
                if let Some((_, g, v, k)) = subresource_kind(sub) {
                    if let Some(name) = kinds::register(&mut generator, g, v, k) {
                        tagged.push((name, gvk(g, v, k)));
                    }
                }
            }
        }
        let mut defs = generator.take_definitions(true);
        for (name, g) in tagged {
            add_gvk(&mut defs, &name, g);
        }
        for (name, group, version, kind) in lists {
            let list = list_name(&name);
            if defs.contains_key(&list) {
                continue;
            }
            defs.insert(
                list.clone(),
                json!({
                    "description": format!("A list of {kind} objects."),
                    "type": "object",
                    "required": ["items"],
                    "properties": {
                        "apiVersion": {"type": "string", "description": "The versioned schema of this representation of an object."},
                        "kind": {"type": "string", "description": "The REST resource this object represents."},
                        "items": {"type": "array", "description": format!("The {kind} objects."), "items": {"$ref": format!("{V3_PREFIX}{name}")}},
                        "metadata": {"$ref": format!("{V3_PREFIX}{META}.ListMeta"), "description": "Standard list metadata."},
                    },
                    "x-kubernetes-group-version-kind": [gvk(group, version, &format!("{kind}List"))],
                }),
            );
        }
        defs.insert(
            format!("{META}.Patch"),
            json!({"description": "The body of a PATCH request: a JSON patch, merge patch, strategic merge patch or apply configuration, as named by the request's content type.", "type": "object"}),
        );
        defs.insert(
            format!("{META}.WatchEvent"),
            json!({
                "description": "One event of a watch stream.",
                "type": "object",
                "required": ["type", "object"],
                "properties": {
                    "type": {"type": "string", "description": "ADDED, MODIFIED, DELETED, BOOKMARK or ERROR."},
                    "object": {"type": "object", "description": "The object the event is about; a Status for ERROR."},
                },
            }),
        );
        if let Some(lookup) = patch_meta {
            annotate(&mut defs, lookup);
        }
        let mut list_names = BTreeMap::new();
        let mut custom_v2 = BTreeMap::new();
        for c in custom {
            let published = custom::publish(c);
            names.insert(
                (c.group.clone(), c.version.clone(), c.kind.clone()),
                published.name.clone(),
            );
            list_names.insert(published.name.clone(), published.list_name.clone());
            custom_v2.insert(published.name.clone(), published.v2);
            defs.insert(published.name, published.v3);
            defs.insert(published.list_name, published.list);
        }
        for schema in defs.values_mut() {
            wrap_described_refs(schema);
        }
        Self {
            defs,
            names,
            list_names,
            custom_v2,
        }
    }

    /// The definition name of the list kind of the kind named `name`.
    pub(crate) fn list_of(&self, name: &str) -> String {
        self.list_names
            .get(name)
            .cloned()
            .unwrap_or_else(|| list_name(name))
    }

    /// Whether the kind is a custom resource's (published from its CRD).
    pub(crate) fn is_custom(&self, group: &str, version: &str, kind: &str) -> bool {
        self.name_of(group, version, kind)
            .is_some_and(|name| self.custom_v2.contains_key(name))
    }

    /// The definition name of a kind, if it has a schema here.
    pub(crate) fn name_of(&self, group: &str, version: &str, kind: &str) -> Option<&str> {
        self.names
            .get(&(group.to_string(), version.to_string(), kind.to_string()))
            .map(String::as_str)
    }

    /// The definitions `root` refers to, transitively, in v3 shape.
    pub(crate) fn closure_v3(&self, root: &Value) -> Map<String, Value> {
        let mut seen = BTreeSet::new();
        let mut queue = VecDeque::new();
        collect_refs(root, &mut queue);
        while let Some(name) = queue.pop_front() {
            if !seen.insert(name.clone()) {
                continue;
            }
            if let Some(schema) = self.defs.get(&name) {
                collect_refs(schema, &mut queue);
            }
        }
        seen.into_iter()
            .filter_map(|n| self.defs.get(&n).map(|s| (n, s.clone())))
            .collect()
    }

    /// Every definition, in Swagger 2.0 shape.
    pub(crate) fn all_v2(&self) -> Map<String, Value> {
        self.defs
            .iter()
            .map(|(n, s)| {
                let mut s = self.custom_v2.get(n).unwrap_or(s).clone();
                to_v2(&mut s);
                (n.clone(), s)
            })
            .collect()
    }
}

fn annotate(defs: &mut Map<String, Value>, lookup: PatchMetaFn) {
    for (name, schema) in defs.iter_mut() {
        let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) else {
            continue;
        };
        for (field, prop) in props.iter_mut() {
            let Some(meta) = lookup(name, field) else {
                continue;
            };
            let Value::Object(prop) = prop else { continue };
            if let Some(s) = meta.strategy {
                prop.insert("x-kubernetes-patch-strategy".into(), json!(s));
            }
            if let Some(k) = meta.merge_key {
                prop.insert("x-kubernetes-patch-merge-key".into(), json!(k));
            }
            if let Some(t) = meta.list_type {
                prop.insert("x-kubernetes-list-type".into(), json!(t));
            }
            if !meta.list_map_keys.is_empty() {
                prop.insert(
                    "x-kubernetes-list-map-keys".into(),
                    json!(meta.list_map_keys),
                );
            }
        }
    }
}

/// OpenAPI 3.0 ignores siblings of `$ref`; Kubernetes writes a described
/// reference as `{"allOf": [{"$ref": ...}], "description": ...}`.
fn wrap_described_refs(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if map.len() > 1 {
                if let Some(r) = map.remove("$ref") {
                    map.insert("allOf".into(), json!([{"$ref": r}]));
                }
            }
            for child in map.values_mut() {
                wrap_described_refs(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(wrap_described_refs),
        _ => {}
    }
}

/// v3 → v2: single-reference `allOf` back to a `$ref` with siblings, and
/// references into `#/definitions/`.
pub(crate) fn to_v2(v: &mut Value) {
    match v {
        Value::Object(map) => {
            let single = match map.get("allOf") {
                Some(Value::Array(a)) if a.len() == 1 => a[0].get("$ref").cloned(),
                _ => None,
            };
            if let Some(r) = single {
                map.remove("allOf");
                map.insert("$ref".into(), r);
            }
            map.remove("nullable");
            if let Some(Value::String(r)) = map.get_mut("$ref") {
                if let Some(rest) = r.strip_prefix(V3_PREFIX) {
                    *r = format!("{V2_PREFIX}{rest}");
                }
            }
            for child in map.values_mut() {
                to_v2(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(to_v2),
        _ => {}
    }
}

fn collect_refs(v: &Value, out: &mut VecDeque<String>) {
    match v {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                if let Some(name) = r.strip_prefix(V3_PREFIX) {
                    out.push_back(name.to_string());
                }
            }
            map.values().for_each(|c| collect_refs(c, out));
        }
        Value::Array(items) => items.iter().for_each(|c| collect_refs(c, out)),
        _ => {}
    }
}
