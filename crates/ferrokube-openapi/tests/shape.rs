//! The generated documents have the shape clients rely on.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use ferrokube_openapi::{ListPatch, OpenApi};
use serde_json::Value;

fn doc(api: &OpenApi, path: &str) -> Value {
    let (json, _) = api.v3_group_version(path).unwrap();
    serde_json::from_slice(json).unwrap()
}

#[test]
fn root_lists_every_group_version_with_its_hash() {
    let api = OpenApi::build(&common::resources());
    let root = api.v3_root();
    for gv in [
        "api/v1",
        "apis/apps/v1",
        "apis/batch/v1",
        "apis/autoscaling/v2",
        "apis/rbac.authorization.k8s.io/v1",
        "apis/policy/v1",
    ] {
        let url = root["paths"][gv]["serverRelativeURL"].as_str().unwrap();
        let (_, hash) = api.v3_group_version(gv).unwrap();
        assert_eq!(url, format!("/openapi/v3/{gv}?hash={hash}"));
    }
    assert!(api.v3_group_version("apis/nope/v1").is_none());
    assert!(api.v3_group_version("/apis/apps/v1").is_some());
}

#[test]
fn kinds_carry_group_version_kind_and_descriptions() {
    let api = OpenApi::build(&common::resources());
    let apps = doc(&api, "apis/apps/v1");
    let schemas = &apps["components"]["schemas"];
    let d = &schemas["io.k8s.api.apps.v1.Deployment"];
    assert_eq!(
        d["x-kubernetes-group-version-kind"][0],
        serde_json::json!({"group": "apps", "version": "v1", "kind": "Deployment"})
    );
    assert_eq!(
        d["properties"]["spec"]["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"
    );
    let replicas = &schemas["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["replicas"];
    assert_eq!(replicas["type"], "integer");
    assert!(
        replicas["description"]
            .as_str()
            .unwrap()
            .contains("desired pods"),
        "{replicas}"
    );
    let required = schemas["io.k8s.api.apps.v1.DeploymentSpec"]["required"]
        .as_array()
        .unwrap();
    assert!(required.contains(&"selector".into()) && required.contains(&"template".into()));
    assert!(
        schemas["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"]["labels"]
            .is_object()
    );
    assert_eq!(
        schemas["io.k8s.api.apps.v1.DeploymentList"]["x-kubernetes-group-version-kind"][0]["kind"],
        "DeploymentList"
    );
    // The scale subresource's kind is in the apps document, tagged as autoscaling/v1.
    assert_eq!(
        schemas["io.k8s.api.autoscaling.v1.Scale"]["x-kubernetes-group-version-kind"][0]["group"],
        "autoscaling"
    );
    // Kinds of other groups are not.
    assert!(schemas.get("io.k8s.api.batch.v1.Job").is_none());
    let core = doc(&api, "api/v1");
    let container = &core["components"]["schemas"]["io.k8s.api.core.v1.Container"];
    assert!(container["properties"]["image"]["description"]
        .as_str()
        .unwrap()
        .contains("image"));
    // Every reference resolves inside its own document.
    for (path, d) in [("apis/apps/v1", &apps), ("api/v1", &core)] {
        let text = d.to_string();
        for piece in text.split("#/components/schemas/").skip(1) {
            let name = piece.split('"').next().unwrap();
            assert!(
                d["components"]["schemas"].get(name).is_some(),
                "{path}: dangling {name}"
            );
        }
    }
}

#[test]
fn namespaced_and_cluster_paths_have_operations_with_write_parameters() {
    let api = OpenApi::build(&common::resources());
    let apps = doc(&api, "apis/apps/v1");
    let item = &apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"];
    for (method, action) in [
        ("get", "get"),
        ("put", "put"),
        ("patch", "patch"),
        ("delete", "delete"),
    ] {
        assert_eq!(item[method]["x-kubernetes-action"], action);
        assert_eq!(
            item[method]["x-kubernetes-group-version-kind"]["kind"],
            "Deployment"
        );
    }
    assert_eq!(
        item["patch"]["operationId"],
        "patchAppsV1NamespacedDeployment"
    );
    let names: Vec<&str> = item["patch"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for p in ["fieldValidation", "dryRun", "fieldManager", "force"] {
        assert!(names.contains(&p), "{names:?}");
    }
    assert!(
        item["patch"]["requestBody"]["content"]["application/strategic-merge-patch+json"]
            .is_object()
    );
    let coll = &apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments"];
    assert_eq!(coll["get"]["x-kubernetes-action"], "list");
    assert_eq!(coll["post"]["x-kubernetes-action"], "post");
    assert_eq!(coll["delete"]["x-kubernetes-action"], "deletecollection");
    assert!(apps["paths"]["/apis/apps/v1/deployments"]["get"].is_object());
    assert_eq!(
        apps["paths"]["/apis/apps/v1/watch/namespaces/{namespace}/deployments/{name}"]["get"]
            ["x-kubernetes-action"],
        "watch"
    );
    let scale = &apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"];
    assert_eq!(
        scale["patch"]["x-kubernetes-group-version-kind"]["kind"],
        "Scale"
    );
    let rbac = doc(&api, "apis/rbac.authorization.k8s.io/v1");
    let cr = &rbac["paths"]["/apis/rbac.authorization.k8s.io/v1/clusterroles/{name}"];
    assert_eq!(
        cr["get"]["operationId"],
        "readRbacAuthorizationV1ClusterRole"
    );
    assert!(rbac["paths"]
        .get("/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/clusterroles")
        .is_none());
    let core = doc(&api, "api/v1");
    assert_eq!(
        core["paths"]["/api/v1/namespaces/{namespace}/pods/{name}/eviction"]["post"]
            ["x-kubernetes-group-version-kind"]["group"],
        "policy"
    );
    assert!(core["paths"]["/api/v1/nodes/{name}/status"]["patch"].is_object());
}

#[test]
fn patch_metadata_is_written_where_the_caller_reports_it() {
    let lookup = |schema: &str, field: &str| {
        (schema == "io.k8s.api.core.v1.PodSpec" && field == "containers").then_some(ListPatch {
            strategy: Some("merge"),
            merge_key: Some("name"),
            list_type: Some("map"),
            list_map_keys: &["name"],
        })
    };
    let api = OpenApi::build_with_patch_meta(&common::resources(), Some(&lookup));
    let apps = doc(&api, "apis/apps/v1");
    let c =
        &apps["components"]["schemas"]["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
    assert_eq!(c["x-kubernetes-patch-merge-key"], "name");
    assert_eq!(c["x-kubernetes-patch-strategy"], "merge");
    assert_eq!(c["x-kubernetes-list-type"], "map");
    assert_eq!(c["x-kubernetes-list-map-keys"][0], "name");
    let plain = doc(&OpenApi::build(&common::resources()), "apis/apps/v1");
    assert!(
        plain["components"]["schemas"]["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
            .get("x-kubernetes-patch-merge-key")
            .is_none()
    );
}

#[test]
fn v2_has_definitions_and_paths_with_v2_references() {
    let api = OpenApi::build(&common::resources());
    let v2: Value = serde_json::from_slice(&api.v2().json).unwrap();
    assert_eq!(v2["swagger"], "2.0");
    let d = &v2["definitions"]["io.k8s.api.apps.v1.Deployment"];
    assert_eq!(
        d["x-kubernetes-group-version-kind"][0]["kind"],
        "Deployment"
    );
    assert_eq!(
        d["properties"]["spec"]["$ref"],
        "#/definitions/io.k8s.api.apps.v1.DeploymentSpec"
    );
    assert!(!v2.to_string().contains("#/components/"));
    let patch = &v2["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"];
    assert!(patch["consumes"]
        .as_array()
        .unwrap()
        .contains(&"application/strategic-merge-patch+json".into()));
    assert_eq!(patch["parameters"][0]["in"], "body");
    assert!(patch["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "fieldValidation" && p["type"] == "string"));
    assert_eq!(api.v2().hash.len(), 32);
}
