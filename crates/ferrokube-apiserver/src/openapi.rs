//! OpenAPI v3 documents from the registry: the root listing one document per
//! group version, and each group version's paths and operations with their
//! `x-kubernetes-group-version-kind` and `x-kubernetes-action`, and the
//! query parameters writes take (`dryRun`, `fieldManager`,
//! `fieldValidation`). kubectl reads the PATCH operations' parameters to
//! learn that the server validates fields itself, so `kubectl apply` and
//! `create` work with validation on. Each document carries the schemas of its
//! kinds (from the `k8s-openapi` types, named as Kubernetes names them, with
//! `x-kubernetes-group-version-kind`), which `kubectl explain` reads.
//!
//! Documents are built once per process and served from memory.

use ferrokube_api::registry::{Registry, ResourceDef};
use serde_json::{json, Map, Value};

fn gv_path(r: &ResourceDef) -> String {
    if r.group.is_empty() {
        format!("api/{}", r.version)
    } else {
        format!("apis/{}/{}", r.group, r.version)
    }
}

/// A stable short hash of a document, for the `?hash=` URLs.
fn hash(v: &Value) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    v.to_string().hash(&mut h);
    format!("{:016X}", h.finish())
}

/// `/openapi/v3`.
pub fn root(registry: &Registry) -> Value {
    let mut paths = Map::new();
    for (group, versions) in registry.groups() {
        for v in versions {
            let p = if group.is_empty() {
                format!("api/{v}")
            } else {
                format!("apis/{group}/{v}")
            };
            let doc = group_version(registry, &p).unwrap_or(Value::Null);
            paths.insert(
                p.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={}", hash(&doc))}),
            );
        }
    }
    json!({"paths": paths})
}

fn param(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "query", "description": description, "schema": {"type": "string", "uniqueItems": true}})
}

fn write_params() -> Vec<Value> {
    vec![
        param("dryRun", "When present, indicates that modifications should not be persisted."),
        param("fieldManager", "fieldManager is a name associated with the actor or entity that is making these changes."),
        param("fieldValidation", "fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields: Ignore, Warn or Strict."),
    ]
}

fn op(r: &ResourceDef, action: &str, params: Vec<Value>) -> Value {
    json!({
        "operationId": format!("{action}{}", r.kind),
        "parameters": params,
        "responses": {"200": {"description": "OK"}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": r.group, "version": r.version, "kind": r.kind},
    })
}

/// `/openapi/v3/api/v1`, `/openapi/v3/apis/<group>/<version>`, built once.
pub fn group_version(registry: &Registry, path: &str) -> Option<Value> {
    static DOCS: std::sync::OnceLock<
        std::sync::Mutex<std::collections::HashMap<String, Option<Value>>>,
    > = std::sync::OnceLock::new();
    let docs = DOCS.get_or_init(Default::default);
    if let Ok(cache) = docs.lock() {
        if let Some(doc) = cache.get(path) {
            return doc.clone();
        }
    }
    let doc = build_group_version(registry, path);
    if let Ok(mut cache) = docs.lock() {
        cache.insert(path.to_string(), doc.clone());
    }
    doc
}

/// The schemas of a group version's kinds and everything they refer to.
fn schemas(group: &str, version: &str) -> Map<String, Value> {
    let mut generator = schemars::generate::SchemaSettings::openapi3().into_generator();
    let kinds = crate::typed::schemas_for(&mut generator, group, version);
    let mut defs = generator.take_definitions(true);
    annotate_patch_strategies(&mut defs);
    for (kind, name) in kinds {
        if let Some(Value::Object(schema)) = defs.get_mut(&name) {
            schema.insert(
                "x-kubernetes-group-version-kind".into(),
                json!([{"group": group, "version": version, "kind": kind}]),
            );
        }
    }
    defs
}

/// Marks list fields with the patch strategy and merge key the strategic
/// merge patch uses for them (from the patch table), as Kubernetes' own
/// schemas carry them, so clients compute patches from the server's schema.
fn annotate_patch_strategies(defs: &mut Map<String, Value>) {
    use ferrokube_api::patch::schema::{Strategy, FIELDS};
    for (name, schema) in defs.iter_mut() {
        let ty = name.rsplit('.').next().unwrap_or(name);
        let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) else {
            continue;
        };
        for (t, field, meta) in FIELDS {
            if *t != ty {
                continue;
            }
            let Some(Value::Object(prop)) = props.get_mut(*field) else {
                continue;
            };
            let strategy = match (meta.strategy, meta.retain_keys) {
                (Strategy::Merge, true) => Some("merge,retainKeys"),
                (Strategy::Merge, false) => Some("merge"),
                (Strategy::Replace, true) => Some("retainKeys"),
                (Strategy::Replace, false) => None,
            };
            if let Some(st) = strategy {
                prop.insert("x-kubernetes-patch-strategy".into(), json!(st));
            }
            if let Some(key) = meta.merge_key {
                prop.insert("x-kubernetes-patch-merge-key".into(), json!(key));
            }
        }
    }
}

fn build_group_version(registry: &Registry, path: &str) -> Option<Value> {
    let defs: Vec<&ResourceDef> = registry
        .all()
        .iter()
        .filter(|r| gv_path(r) == path)
        .collect();
    let (group, version) = match defs.first() {
        Some(d) => (d.group, d.version),
        None => return None,
    };
    let mut paths = Map::new();
    for r in defs {
        let base = format!("/{}", gv_path(r));
        let (collection, item) = if r.namespaced {
            (
                format!("{base}/namespaces/{{namespace}}/{}", r.plural),
                format!("{base}/namespaces/{{namespace}}/{}/{{name}}", r.plural),
            )
        } else {
            (
                format!("{base}/{}", r.plural),
                format!("{base}/{}/{{name}}", r.plural),
            )
        };
        let mut coll = Map::new();
        if r.has_verb("list") {
            coll.insert("get".into(), op(r, "list", vec![]));
        }
        if r.has_verb("create") {
            coll.insert("post".into(), op(r, "post", write_params()));
        }
        if r.has_verb("deletecollection") {
            coll.insert(
                "delete".into(),
                op(r, "deletecollection", vec![param("dryRun", "")]),
            );
        }
        paths.insert(collection, Value::Object(coll));
        let mut one = Map::new();
        if r.has_verb("get") {
            one.insert("get".into(), op(r, "get", vec![]));
        }
        if r.has_verb("update") {
            one.insert("put".into(), op(r, "put", write_params()));
        }
        if r.has_verb("patch") {
            let mut p = write_params();
            p.push(param(
                "force",
                "Force is going to \"force\" Apply requests.",
            ));
            let mut patch = op(r, "patch", p);
            let body = json!({"schema": {"type": "object"}});
            patch["requestBody"] = json!({"content": {
                "application/apply-patch+yaml": body,
                "application/json-patch+json": body,
                "application/merge-patch+json": body,
                "application/strategic-merge-patch+json": body,
            }});
            one.insert("patch".into(), patch);
        }
        if r.has_verb("delete") {
            one.insert(
                "delete".into(),
                op(
                    r,
                    "delete",
                    vec![
                        param("dryRun", ""),
                        param("gracePeriodSeconds", ""),
                        param("propagationPolicy", ""),
                    ],
                ),
            );
        }
        if !one.is_empty() {
            paths.insert(item, Value::Object(one));
        }
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": format!("v{}.{}.0", crate::server::KUBE_VERSION.0, crate::server::KUBE_VERSION.1)},
        "paths": paths,
        "components": {"schemas": schemas(group, version)},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_operations_declare_field_validation() {
        let r = Registry::default();
        let root = root(&r);
        assert!(root["paths"]["apis/apps/v1"]["serverRelativeURL"]
            .as_str()
            .unwrap()
            .starts_with("/openapi/v3/apis/apps/v1?hash="));
        let doc = group_version(&r, "apis/apps/v1").unwrap();
        let patch =
            &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"]["kind"],
            "Deployment"
        );
        assert!(patch["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "fieldValidation"));
        assert!(group_version(&r, "apis/nope/v1").is_none());
        let core = group_version(&r, "api/v1").unwrap();
        assert!(core["paths"]["/api/v1/nodes/{name}"].is_object());
        let pod = &core["components"]["schemas"]["io.k8s.api.core.v1.Pod"];
        assert_eq!(pod["x-kubernetes-group-version-kind"][0]["kind"], "Pod");
        assert!(
            core["components"]["schemas"]["io.k8s.api.core.v1.Container"]["properties"]["image"]
                .is_object()
        );
        let d = &doc["components"]["schemas"]["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]
            ["replicas"];
        assert!(
            d["description"].as_str().unwrap().contains("desired pods"),
            "{d}"
        );
    }
}
