//! Dynamic admission end to end, with the real kubectl: a webhook server
//! (HTTPS on loopback, its certificate from a CA the test makes and gives
//! in `caBundle`) that labels new pods and refuses ConfigMaps holding a
//! `forbidden` key; kubectl shows Kubernetes' words for a refusal, for a
//! webhook that cannot be reached under `failurePolicy: Fail`, and lets
//! requests through under `Ignore`.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use std::path::Path;

use base64::Engine as _;
use common::Cluster;
use ferrokube_client::testing::https::{Certificates, JsonServer};
use serde_json::{json, Value};

/// The test's webhook server and its CA.
struct Webhook {
    server: JsonServer,
    ca_pem: String,
}

fn start_webhook() -> Webhook {
    let certs = Certificates::loopback().unwrap();
    let server = JsonServer::start(&certs, 0, |path, review| answer(path, &review)).unwrap();
    Webhook {
        server,
        ca_pem: certs.ca,
    }
}

/// What the test's webhook answers to a review.
fn answer(path: &str, review: &Value) -> Value {
    let req = &review["request"];
    let mut resp = json!({"uid": req["uid"], "allowed": true});
    match path {
        "/mutate" => {
            let op = if req["object"]["metadata"]["labels"].is_object() {
                json!([{"op": "add", "path": "/metadata/labels/webhook", "value": "mutated"}])
            } else {
                json!([{"op": "add", "path": "/metadata/labels", "value": {"webhook": "mutated"}}])
            };
            resp["patchType"] = json!("JSONPatch");
            resp["patch"] =
                json!(base64::engine::general_purpose::STANDARD
                    .encode(serde_json::to_vec(&op).unwrap()));
        }
        "/validate" => {
            if req["object"]["data"].get("forbidden").is_some() {
                resp["allowed"] = json!(false);
                resp["status"] = json!({"code": 403, "reason": "Forbidden",
                    "message": "the key \"forbidden\" is not allowed"});
            } else {
                resp["warnings"] = json!(["checked by the test webhook"]);
            }
        }
        _ => {}
    }
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": resp})
}

fn write(dir: &Path, name: &str, v: &Value) -> String {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_vec_pretty(v).unwrap()).unwrap();
    p.to_string_lossy().into_owned()
}

fn configurations(hook: &Webhook) -> (Value, Value) {
    let ca = base64::engine::general_purpose::STANDARD.encode(&hook.ca_pem);
    let url = |p: &str| hook.server.url(p);
    let mutating = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "label-pods"},
        "webhooks": [{
            "name": "label.example.com",
            "clientConfig": {"url": url("/mutate"), "caBundle": ca},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""],
                "apiVersions": ["v1"], "resources": ["pods"]}],
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
        }],
    });
    let validating = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "deny-forbidden"},
        "webhooks": [{
            "name": "deny.example.com",
            "clientConfig": {"url": url("/validate"), "caBundle": ca},
            "rules": [{"operations": ["CREATE", "UPDATE"], "apiGroups": [""],
                "apiVersions": ["v1"], "resources": ["configmaps"]}],
            "namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name",
                "operator": "NotIn", "values": ["kube-system"]}]},
            "sideEffects": "None",
            "admissionReviewVersions": ["v1", "v1beta1"],
        }],
    });
    (mutating, validating)
}

fn configmap(name: &str, key: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default"}, "data": {key: "x"}})
}

#[test]
fn webhooks_mutate_refuse_and_follow_their_failure_policy() {
    let c = Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    let mut hook = start_webhook();
    let (mutating, validating) = configurations(&hook);
    let m = write(dir.path(), "m.json", &mutating);
    let v = write(dir.path(), "v.json", &validating);
    c.kubectl_ok(&["apply", "-f", &m, "-f", &v]);

    // Served with Kubernetes' defaults and printer columns.
    let got: Value = serde_json::from_str(&c.kubectl_ok(&[
        "get",
        "validatingwebhookconfiguration",
        "deny-forbidden",
        "-o",
        "json",
    ]))
    .unwrap();
    let w = &got["webhooks"][0];
    assert_eq!(w["failurePolicy"], "Fail");
    assert_eq!(w["matchPolicy"], "Equivalent");
    assert_eq!(w["timeoutSeconds"], 10);
    assert_eq!(w["objectSelector"], json!({}));
    assert_eq!(w["rules"][0]["scope"], "*");
    let table = c.kubectl_ok(&["get", "mutatingwebhookconfigurations"]);
    assert!(table.starts_with("NAME"), "{table}");
    assert!(table.contains("WEBHOOKS"), "{table}");
    assert!(
        table.lines().nth(1).unwrap().split_whitespace().nth(1) == Some("1"),
        "{table}"
    );

    // The mutating webhook labels a new pod.
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
    let p = write(dir.path(), "pod.json", &pod);
    c.kubectl_ok(&["create", "-f", &p]);
    let label = c.kubectl_ok(&[
        "get",
        "pod",
        "web",
        "-o",
        "jsonpath={.metadata.labels.webhook}",
    ]);
    assert_eq!(label, "mutated");

    // The validating webhook refuses with its own status and message.
    let bad = write(dir.path(), "bad.json", &configmap("bad", "forbidden"));
    let out = c.kubectl(&["create", "-f", &bad]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "Error from server (Forbidden): error when creating \"{bad}\": admission webhook \"deny.example.com\" denied the request: the key \"forbidden\" is not allowed"
        )),
        "{err}"
    );
    // An allowed one passes, with the webhook's warning shown.
    let good = write(dir.path(), "good.json", &configmap("good", "fine"));
    let out = c.kubectl(&["create", "-f", &good]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Warning: checked by the test webhook"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A server-side dry run reaches webhooks without side effects.
    let out = c.kubectl(&["create", "--dry-run=server", "-f", &bad]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("denied the request"));

    // The webhook gone: Fail refuses with Kubernetes' words...
    let port = hook.server.port();
    drop(std::mem::replace(&mut hook, start_webhook()));
    let other = write(dir.path(), "other.json", &configmap("other", "fine"));
    let out = c.kubectl(&["create", "-f", &other]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "Error from server (InternalError): error when creating \"{other}\": Internal error occurred: failed calling webhook \"deny.example.com\": failed to call webhook: Post \"https://127.0.0.1:{port}/validate?timeout=10s\": dial tcp 127.0.0.1:{port}: connect: connection refused"
        )),
        "{err}"
    );
    // ... and Ignore lets the request through.
    c.kubectl_ok(&[
        "patch",
        "validatingwebhookconfiguration",
        "deny-forbidden",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/webhooks/0/failurePolicy","value":"Ignore"}]"#,
    ]);
    c.kubectl_ok(&["create", "-f", &other]);

    c.kubectl_ok(&["delete", "-f", &m, "-f", &v]);
    c.kubectl_ok(&["delete", "pod", "web", "--wait=false"]);
    c.kubectl_ok(&["delete", "configmap", "good", "other"]);
    drop(hook);
}

#[test]
fn configurations_are_validated_with_kubernetes_messages() {
    let c = Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    let bad = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "bad"},
        "webhooks": [{
            "name": "short",
            "clientConfig": {"url": "http://example.com/x"},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""],
                "apiVersions": ["v1"], "resources": ["pods"]}],
            "timeoutSeconds": 31,
        }],
    });
    let f = write(dir.path(), "bad.json", &bad);
    let out = c.kubectl(&["create", "-f", &f]);
    let err = String::from_utf8_lossy(&out.stderr);
    for want in [
        "webhooks[0].name: Invalid value: \"short\": should be a domain with at least three segments separated by dots",
        "webhooks[0].sideEffects: Required value: must specify one of None, NoneOnDryRun",
        "webhooks[0].timeoutSeconds: Invalid value: 31: the timeout value must be between 1 and 30 seconds",
        "webhooks[0].admissionReviewVersions: Required value: must specify one of v1, v1beta1",
        "webhooks[0].clientConfig.url: Invalid value: \"http\": 'https' is the only allowed URL scheme; desired format: https://host[/path]",
    ] {
        assert!(err.contains(want), "missing {want:?} in {err}");
    }
}
