//! What a running server answers, through its whole request path, where
//! Kubernetes' answers are easy to get wrong: the body of a DELETE (a
//! success `Status` naming the object, or the object for the kinds that
//! return it and for deletes that wait), and the `managedFields` entries of
//! writes through `/status` and of writes named by their User-Agent.

use bytes::Bytes;
use http::{header, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};

use crate::authn::UserInfo;

/// A server on a store of its own in `dir`, and a client acting as
/// `system:admin`; the server stops when the token is cancelled.
pub(crate) async fn server(
    dir: &std::path::Path,
) -> (crate::Local, tokio_util::sync::CancellationToken) {
    let store = ferrokube_store::embedded::EmbeddedStore::open(
        &dir.join("db"),
        ferrokube_store::embedded::EmbeddedOptions::default(),
    )
    .await
    .expect("store");
    let cancel = tokio_util::sync::CancellationToken::new();
    let server = crate::start(
        crate::ServerConfig {
            authorization_modes: vec![crate::authz::Mode::AlwaysAllow],
            ..crate::ServerConfig::for_tests(dir.to_path_buf())
        },
        store,
        cancel.clone(),
    )
    .await
    .expect("server");
    let local = server.local(UserInfo {
        name: "system:admin".into(),
        groups: vec!["system:masters".into(), "system:authenticated".into()],
        ..Default::default()
    });
    (local, cancel)
}

/// One request; the answer's status and body (JSON).
async fn call(
    local: &crate::Local,
    method: Method,
    uri: &str,
    content_type: &str,
    user_agent: &str,
    body: Value,
) -> (StatusCode, Value) {
    let body = if body.is_null() {
        Vec::new()
    } else {
        serde_json::to_vec(&body).expect("body")
    };
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::ACCEPT, "application/json");
    if !user_agent.is_empty() {
        req = req.header(header::USER_AGENT, user_agent);
    }
    let resp = local
        .call(req.body(Full::new(Bytes::from(body))).expect("request"))
        .await;
    status_and_body(resp).await
}

/// An answer's status and body: JSON, or the text as a JSON string.
pub(crate) async fn status_and_body(
    resp: http::Response<crate::server::Body>,
) -> (StatusCode, Value) {
    let status = resp.status();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, v)
}

const JSON: &str = "application/json";
const AGENT: &str = "answers-test/v0";

async fn create(local: &crate::Local, uri: &str, obj: Value) -> Value {
    let (status, v) = call(local, Method::POST, uri, JSON, AGENT, obj).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    v
}

async fn delete(local: &crate::Local, uri: &str) -> Value {
    let (status, v) = call(local, Method::DELETE, uri, JSON, AGENT, Value::Null).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v
}

const CMS: &str = "/api/v1/namespaces/default/configmaps";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_answer_as_kubernetes_stores_do() {
    let dir = tempfile::tempdir().expect("dir");
    let (local, cancel) = server(dir.path()).await;

    // A ConfigMap removed: a success Status naming it, by its resource.
    let cm = create(&local, CMS, json!({"metadata": {"name": "gone"}})).await;
    let uid = cm["metadata"]["uid"].clone();
    let answer = delete(&local, &format!("{CMS}/gone?dryRun=All")).await;
    assert_eq!(
        answer["status"], "Success",
        "a dry run answers alike: {answer}"
    );
    let answer = delete(&local, &format!("{CMS}/gone")).await;
    assert_eq!(
        answer,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "details": {"name": "gone", "kind": "configmaps", "uid": uid}})
    );

    // A ConfigMap waiting on a finalizer: the object, being deleted.
    create(
        &local,
        CMS,
        json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}}),
    )
    .await;
    let answer = delete(&local, &format!("{CMS}/held")).await;
    assert_eq!(answer["kind"], "ConfigMap", "{answer}");
    assert!(
        answer["metadata"]["deletionTimestamp"].is_string(),
        "{answer}"
    );
    let (status, _) = call(
        &local,
        Method::PATCH,
        &format!("{CMS}/held"),
        "application/merge-patch+json",
        AGENT,
        json!({"metadata": {"finalizers": null}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // A ServiceAccount (a store with ReturnDeletedObject): the object.
    let sas = "/api/v1/namespaces/default/serviceaccounts";
    create(&local, sas, json!({"metadata": {"name": "robot"}})).await;
    let answer = delete(&local, &format!("{sas}/robot")).await;
    assert_eq!(answer["kind"], "ServiceAccount", "{answer}");
    let (status, v) = call(
        &local,
        Method::POST,
        sas,
        JSON,
        AGENT,
        json!({"metadata": {"name": "default"}}),
    )
    .await;
    assert!(matches!(status.as_u16(), 201 | 409), "{v}");

    // A Pod (a store with ReturnDeletedObject): the object itself.
    let pods = "/api/v1/namespaces/default/pods";
    create(
        &local,
        pods,
        json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
    )
    .await;
    let answer = delete(&local, &format!("{pods}/p")).await;
    assert_eq!(answer["kind"], "Pod", "{answer}");
    assert_eq!(answer["metadata"]["name"], "p");

    // A custom resource: a Status with its group.
    custom_resource_delete(&local).await;
    cancel.cancel();
}

/// A custom resource's delete answers a success Status with the group.
async fn custom_resource_delete(local: &crate::Local) {
    create(
        local,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        json!({"metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object",
                        "x-kubernetes-preserve-unknown-fields": true}}}]}}),
    )
    .await;
    let widgets = "/apis/example.com/v1/namespaces/default/widgets";
    let mut made = Value::Null;
    for _ in 0..100 {
        let (status, v) = call(
            local,
            Method::POST,
            widgets,
            JSON,
            AGENT,
            json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}),
        )
        .await;
        if status == StatusCode::CREATED {
            made = v;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(made.is_object(), "the custom resource was never served");
    let answer = delete(local, &format!("{widgets}/w")).await;
    assert_eq!(
        answer["details"],
        json!({"name": "w", "group": "example.com", "kind": "widgets",
            "uid": made["metadata"]["uid"]})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_writes_and_user_agents_name_their_managers() {
    let dir = tempfile::tempdir().expect("dir");
    let (local, cancel) = server(dir.path()).await;
    let deployments = "/apis/apps/v1/namespaces/default/deployments";
    create(
        &local,
        &format!("{deployments}?fieldManager=kubectl-create"),
        json!({"metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": {"app": "d"}},
            "template": {"metadata": {"labels": {"app": "d"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}),
    )
    .await;
    // kubectl patch --subresource=status.
    let (status, v) = call(
        &local,
        Method::PATCH,
        &format!("{deployments}/d/status?fieldManager=kubectl-patch"),
        "application/merge-patch+json",
        "kubectl/v1.33.0 (linux/amd64) kubernetes/abc",
        json!({"status": {"observedGeneration": 7}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let entries = v["metadata"]["managedFields"].as_array().expect("entries");
    let patch = entries
        .iter()
        .find(|e| e["manager"] == "kubectl-patch")
        .unwrap_or_else(|| panic!("no kubectl-patch entry: {entries:?}"));
    assert_eq!(patch["operation"], "Update");
    assert_eq!(patch["subresource"], "status");
    assert_eq!(patch["apiVersion"], "apps/v1");
    assert!(patch["fieldsV1"]["f:status"]["f:observedGeneration"].is_object());

    // A controller's status write, named by the User-Agent's first part.
    let (status, v) = call(
        &local,
        Method::PATCH,
        &format!("{deployments}/d/status"),
        "application/merge-patch+json",
        "kube-controller-manager/v1.33.0 (linux/amd64) kubernetes/ferrokube/system:serviceaccount:kube-system:deployment-controller",
        json!({"status": {"replicas": 1}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let entries = v["metadata"]["managedFields"].as_array().expect("entries");
    assert!(
        entries
            .iter()
            .any(|e| e["manager"] == "kube-controller-manager"
                && e["subresource"] == "status"
                && e["fieldsV1"]["f:status"]["f:replicas"].is_object()),
        "{entries:?}"
    );
    // kubectl scale: the replicas in an entry marked `scale`.
    let (status, v) = call(
        &local,
        Method::PATCH,
        &format!("{deployments}/d/scale"),
        "application/merge-patch+json",
        "kubectl/v1.33.0 (linux/amd64) kubernetes/abc",
        json!({"spec": {"replicas": 3}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (_, v) = call(
        &local,
        Method::GET,
        &format!("{deployments}/d"),
        JSON,
        AGENT,
        Value::Null,
    )
    .await;
    let entries = v["metadata"]["managedFields"].as_array().expect("entries");
    let scale = entries
        .iter()
        .find(|e| e["subresource"] == "scale")
        .unwrap_or_else(|| panic!("no scale entry: {entries:?}"));
    assert_eq!(scale["manager"], "kubectl");
    assert_eq!(scale["apiVersion"], "apps/v1");
    assert_eq!(
        scale["fieldsV1"],
        json!({"f:spec": {"f:replicas": {}}}),
        "{entries:?}"
    );

    // Without a User-Agent, no manager at all.
    let (status, v) = call(
        &local,
        Method::PATCH,
        &format!("{deployments}/d"),
        "application/merge-patch+json",
        "",
        json!({"metadata": {"labels": {"x": "y"}}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let entries = v["metadata"]["managedFields"].as_array().expect("entries");
    assert!(
        entries.iter().any(|e| e.get("manager").is_none()
            && e["fieldsV1"]["f:metadata"]["f:labels"]["f:x"].is_object()),
        "{entries:?}"
    );
    cancel.cancel();
}
