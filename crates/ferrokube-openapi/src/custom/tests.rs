use super::*;
use crate::{OpenApi, ResourceDesc};

/// A CRD version's schema exercising what the v2 conversion changes.
fn crontab() -> CustomSchema {
    CustomSchema {
        group: "stable.example.com".into(),
        version: "v1".into(),
        kind: "CronTab".into(),
        list_kind: "CronTabList".into(),
        plural: "crontabs".into(),
        schema: Some(json!({
            "type": "object",
            "description": "A periodic job.",
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["cronSpec", "note"],
                    "properties": {
                        "cronSpec": {"type": "string", "description": "When to run.", "pattern": "^\\S+$"},
                        "replicas": {"type": "integer", "default": 1, "minimum": 0},
                        "note": {"type": "string", "nullable": true},
                        "port": {"x-kubernetes-int-or-string": true},
                        "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true, "properties": {"a": {"type": "string"}}},
                        "choice": {"type": "string", "oneOf": [{"pattern": "a"}, {"pattern": "b"}]},
                        "template": {"type": "object", "x-kubernetes-embedded-resource": true, "properties": {"spec": {"type": "object"}}},
                        "default": {"type": "string", "description": "A field named default."},
                    },
                },
            },
        })),
        preserve_unknown_fields: false,
        selectable_fields: Vec::new(),
    }
}

const ALL: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

fn crontab_desc() -> ResourceDesc {
    ResourceDesc {
        group: "stable.example.com",
        version: "v1",
        kind: "CronTab",
        plural: "crontabs",
        namespaced: true,
        verbs: ALL,
        subresources: &["status"],
    }
}

fn configmap_desc() -> ResourceDesc {
    ResourceDesc {
        group: "",
        version: "v1",
        kind: "ConfigMap",
        plural: "configmaps",
        namespaced: true,
        verbs: ALL,
        subresources: &[],
    }
}

#[test]
fn names_reverse_the_group() {
    assert_eq!(
        definition_name("stable.example.com", "v1", "CronTab"),
        "com.example.stable.v1.CronTab"
    );
}

#[test]
fn v3_keeps_the_schema_and_adds_type_and_object_meta() {
    let p = publish(&crontab());
    assert_eq!(p.name, "com.example.stable.v1.CronTab");
    assert_eq!(p.list_name, "com.example.stable.v1.CronTabList");
    let props = &p.v3["properties"];
    assert_eq!(
        props["metadata"]["$ref"],
        "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    );
    assert_eq!(props["kind"]["type"], "string");
    assert_eq!(
        p.v3["x-kubernetes-group-version-kind"],
        json!([{"group": "stable.example.com", "version": "v1", "kind": "CronTab"}])
    );
    let spec = &props["spec"]["properties"];
    assert_eq!(spec["note"]["nullable"], true);
    assert_eq!(spec["replicas"]["default"], 1);
    assert_eq!(
        spec["port"]["anyOf"],
        json!([{"type": "integer"}, {"type": "string"}])
    );
    assert_eq!(spec["extra"]["properties"]["a"]["type"], "string");
    let template = &spec["template"];
    assert_eq!(template["required"], json!(["kind", "apiVersion"]));
    assert!(template["properties"]["metadata"]["$ref"].is_string());
    assert_eq!(
        p.list["x-kubernetes-group-version-kind"][0]["kind"],
        "CronTabList"
    );
    assert_eq!(p.list["description"], "CronTabList is a list of CronTab");
}

#[test]
fn v2_is_kubernetes_structural_conversion() {
    let p = publish(&crontab());
    let spec = &p.v2["properties"]["spec"];
    // A nullable field loses its type and leaves `required`.
    assert_eq!(spec["required"], json!(["cronSpec"]));
    assert_eq!(spec["properties"]["note"], json!({}));
    // Defaults are pruned (a field named `default` is not).
    assert_eq!(
        spec["properties"]["replicas"],
        json!({"type": "integer", "minimum": 0})
    );
    assert_eq!(spec["properties"]["default"]["type"], "string");
    // Junctors go; preserving unknown fields drops properties and the type.
    assert_eq!(
        spec["properties"]["port"],
        json!({"x-kubernetes-int-or-string": true})
    );
    assert_eq!(spec["properties"]["choice"], json!({"type": "string"}));
    assert_eq!(
        spec["properties"]["extra"],
        json!({"x-kubernetes-preserve-unknown-fields": true})
    );
    assert_eq!(p.v2["properties"]["kind"]["type"], "string");
}

#[test]
fn preserving_unknown_fields_at_the_top_publishes_an_untyped_v2_object() {
    let mut c = crontab();
    c.preserve_unknown_fields = true;
    let p = publish(&c);
    assert_eq!(
        p.v2,
        json!({"type": "object", "x-kubernetes-group-version-kind": [{"group": "stable.example.com", "version": "v1", "kind": "CronTab"}]})
    );
    assert!(p.v3["properties"]["spec"].is_object());
}

#[test]
fn documents_publish_the_custom_kind_and_its_paths() {
    let resources = [configmap_desc(), crontab_desc()];
    let api = OpenApi::build_with_custom(&resources, None, &[crontab()]);
    let (json, _) = api.v3_group_version("apis/stable.example.com/v1").unwrap();
    let doc: Value = serde_json::from_slice(json).unwrap();
    let schemas = &doc["components"]["schemas"];
    assert!(schemas["com.example.stable.v1.CronTab"].is_object());
    assert!(schemas["com.example.stable.v1.CronTabList"].is_object());
    assert!(schemas["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"].is_object());
    let patch = &doc["paths"]["/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}"]
        ["patch"];
    assert_eq!(patch["x-kubernetes-group-version-kind"]["kind"], "CronTab");
    let types: Vec<&String> = patch["requestBody"]["content"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(
        types,
        [
            "application/apply-patch+yaml",
            "application/json-patch+json",
            "application/merge-patch+json"
        ],
        "no strategic merge patch for a custom resource"
    );
    let list = &doc["paths"]["/apis/stable.example.com/v1/namespaces/{namespace}/crontabs"]["get"];
    assert_eq!(
        list["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/com.example.stable.v1.CronTabList"
    );
    assert_eq!(list["tags"], json!(["stableExampleCom_v1"]));
    assert_eq!(list["description"], "list objects of kind CronTab");
    assert_eq!(
        patch["description"],
        "partially update the specified CronTab"
    );
    let item = &doc["paths"]["/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}"];
    assert_eq!(item["delete"]["description"], "delete a CronTab");
    let status =
        &doc["paths"]["/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}/status"];
    assert_eq!(
        status["get"]["description"],
        "read status of the specified CronTab"
    );
    let coll = &doc["paths"]["/apis/stable.example.com/v1/namespaces/{namespace}/crontabs"];
    assert_eq!(coll["post"]["description"], "create a CronTab");
    assert_eq!(
        coll["delete"]["description"],
        "delete collection of CronTab"
    );
    assert_eq!(
        list["operationId"],
        "listStableExampleComV1NamespacedCronTab"
    );
    // As Kubernetes' CRD builder: no `/watch/` paths (built-ins keep theirs).
    let paths = doc["paths"].as_object().unwrap();
    assert!(
        !paths.keys().any(|p| p.contains("/watch/")),
        "{:?}",
        paths.keys()
    );
    assert!(schemas["com.example.stable.v1.CronTabList"]
        .get("type")
        .is_none());
    let (core, _) = api.v3_group_version("api/v1").unwrap();
    let core: Value = serde_json::from_slice(core).unwrap();
    assert!(core["paths"]["/api/v1/watch/namespaces/{namespace}/configmaps"].is_object());
    let v2: Value = serde_json::from_slice(&api.v2().json).unwrap();
    let def = &v2["definitions"]["com.example.stable.v1.CronTab"];
    assert_eq!(
        def["properties"]["metadata"]["$ref"],
        "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    );
    assert_eq!(def["properties"]["spec"]["required"], json!(["cronSpec"]));
}

#[test]
fn without_custom_schemas_the_documents_are_unchanged() {
    let resources = [configmap_desc()];
    let plain = OpenApi::build(&resources);
    let with = OpenApi::build_with_custom(&resources, None, &[]);
    assert_eq!(plain.v2().json, with.v2().json);
    assert_eq!(plain.v3_root_document().json, with.v3_root_document().json);
}

#[test]
fn selectable_fields_are_published_in_both_documents() {
    let mut c = crontab();
    c.selectable_fields = vec![".spec.cronSpec".into(), ".spec.replicas".into()];
    let p = publish(&c);
    let want = json!([{"fieldPath": "spec.cronSpec"}, {"fieldPath": "spec.replicas"}]);
    assert_eq!(p.v3["x-kubernetes-selectable-fields"], want);
    assert_eq!(p.v2["x-kubernetes-selectable-fields"], want);
    assert!(publish(&crontab())
        .v3
        .get("x-kubernetes-selectable-fields")
        .is_none());
}
