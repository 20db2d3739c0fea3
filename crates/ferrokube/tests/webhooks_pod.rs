//! Admission webhooks deployed as a user deploys them, on a one-node
//! cluster: a tiny webhook (`webhooks_pod/webhook_server.py`, Python's
//! standard library over TLS) runs as a pod behind a Service in its own
//! namespace; a MutatingWebhookConfiguration labels new pods and a
//! ValidatingWebhookConfiguration refuses ConfigMaps holding the key
//! `forbidden`, both reaching the pod through `clientConfig.service` with
//! the test's CA as `caBundle`, and both keeping the webhook's own
//! namespace out with a `namespaceSelector`. With the real kubectl: the
//! label is added, the refusal reads as Kubernetes writes it; once the
//! webhook's pod is gone (a Service without endpoints), `failurePolicy:
//! Fail` refuses writes with Kubernetes' message while the webhook's own
//! namespace still takes writes (so the webhook can be brought back), and
//! `Ignore` lets them through; a webhook whose certificate does not name its
//! Service, or is not signed by its `caBundle`, or that answers after its
//! timeout, fails with Go's words.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use common::{Cluster, POLL};
use ferrokube_client::testing::wait::wait_until_blocking;

const NODE: &str = "fk-webhooks-pod-e2e";
/// Where the webhook runs, and where the test's objects go.
const HOOK_NS: &str = "webhook-system";
const USER_NS: &str = "hooked";
const MUTATING: &str = "label.webhook.example.com";
const VALIDATING: &str = "deny.webhook.example.com";

/// The webhook's pod and its Service.
fn webhook_pod(files: &Path) -> String {
    let f = |n: &str| files.join(n).display().to_string();
    common::python_pod::python_pod(
        HOOK_NS,
        "webhook",
        "webhook",
        "crates/ferrokube/tests/webhooks_pod/webhook_server.py",
        &[&f("tls.crt"), &f("tls.key"), "8443"],
        8443,
    )
}

/// The namespaces, the webhook's Service and both configurations (failure
/// policy `Fail`, the default, left unsaid).
fn manifests(ca_pem: &str) -> String {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let hook = |name: &str, path: &str, resource: &str| {
        format!(
            r#"- name: {name}
  clientConfig:
    service: {{namespace: {HOOK_NS}, name: webhook, path: {path}}}
    caBundle: {ca}
  rules:
  - {{operations: [CREATE, UPDATE], apiGroups: [""], apiVersions: [v1], resources: [{resource}]}}
  namespaceSelector:
    matchExpressions:
    - {{key: kubernetes.io/metadata.name, operator: NotIn, values: [{HOOK_NS}, kube-system]}}
  sideEffects: None
  admissionReviewVersions: [v1]
"#
        )
    };
    format!(
        r#"apiVersion: v1
kind: Namespace
metadata:
  name: {HOOK_NS}
---
apiVersion: v1
kind: Namespace
metadata:
  name: {USER_NS}
---
apiVersion: v1
kind: Service
metadata:
  name: webhook
  namespace: {HOOK_NS}
spec:
  selector: {{app: webhook}}
  ports: [{{port: 443, targetPort: 8443}}]
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata:
  name: label-pods
webhooks:
{mutating}---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: deny-forbidden
webhooks:
{validating}"#,
        mutating = hook(MUTATING, "/mutate", "pods"),
        validating = hook(VALIDATING, "/validate", "configmaps"),
    )
}

/// A second Service for the webhook's pod (its certificate does not name
/// it) and a configuration whose webhooks each fail to be heard: one
/// reaches the pod through that Service, one trusts another CA, one calls
/// the slow path with a timeout of 1 s. Each is asked only about ConfigMaps
/// labelled `tls-check: <its first label>`.
fn failing_calls(ca_pem: &str, other_ca_pem: &str) -> String {
    let b64 = |pem: &str| base64::engine::general_purpose::STANDARD.encode(pem);
    let hook = |name: &str, service: &str, path: &str, ca: String| {
        format!(
            r#"- name: {name}.webhook.example.com
  timeoutSeconds: 1
  clientConfig:
    service: {{namespace: {HOOK_NS}, name: {service}, path: {path}}}
    caBundle: {ca}
  rules:
  - {{operations: [CREATE], apiGroups: [""], apiVersions: [v1], resources: [configmaps]}}
  objectSelector: {{matchLabels: {{tls-check: {name}}}}}
  sideEffects: None
  admissionReviewVersions: [v1]
"#
        )
    };
    format!(
        r#"apiVersion: v1
kind: Service
metadata:
  name: webhook-alias
  namespace: {HOOK_NS}
spec:
  selector: {{app: webhook}}
  ports: [{{port: 443, targetPort: 8443}}]
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: failing-calls
webhooks:
{alias}{untrusted}{slow}"#,
        alias = hook("alias", "webhook-alias", "/validate", b64(ca_pem)),
        untrusted = hook("untrusted", "webhook", "/validate", b64(other_ca_pem)),
        slow = hook("slow", "webhook", "/slow", b64(ca_pem)),
    )
}

/// A manifest file `name` under `dir` holding a pod of `namespace` that
/// sleeps.
fn sleeper(dir: &Path, name: &str, namespace: &str) -> String {
    let p = dir.join(format!("{namespace}-{name}.yaml"));
    std::fs::write(
        &p,
        format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: {namespace}
  labels: {{role: sleeper}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {{name: c, image: "busybox:1.35", command: [sleep, "3600"]}}
"#
        ),
    )
    .unwrap();
    p.display().to_string()
}

/// A manifest file under `dir` holding ConfigMap `namespace/name` with
/// `key`.
fn configmap(dir: &Path, name: &str, namespace: &str, key: &str) -> String {
    let p = dir.join(format!("{namespace}-{name}.yaml"));
    std::fs::write(
        &p,
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {namespace}\ndata:\n  {key}: x\n"
        ),
    )
    .unwrap();
    p.display().to_string()
}

/// A manifest file under `dir` holding ConfigMap `USER_NS/<check>`
/// labelled `tls-check: <check>`.
fn tls_check_configmap(dir: &Path, check: &str) -> String {
    let p = dir.join(format!("tls-check-{check}.yaml"));
    std::fs::write(
        &p,
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {check}\n  namespace: {USER_NS}\n  labels: {{tls-check: {check}}}\n"
        ),
    )
    .unwrap();
    p.display().to_string()
}

/// Webhooks whose certificate check fails, or that answer too late, refuse
/// with Go's words for it.
fn calls_fail(c: &Cluster, dir: &Path, ca_pem: &str) {
    let other = dir.join("other-ca");
    std::fs::create_dir(&other).unwrap();
    let other_ca = common::python_pod::serving_certificate(&other, "another-ca", "elsewhere");
    let file = dir.join("failing-calls.yaml");
    std::fs::write(&file, failing_calls(ca_pem, &other_ca)).unwrap();
    let file = file.display().to_string();
    c.kubectl_ok(&["apply", "-f", &file]);
    wait_until_blocking(
        "the alias Service to have an endpoint",
        Duration::from_secs(30),
        POLL,
        || {
            !c.kubectl_ok(&[
                "get",
                "endpoints",
                "webhook-alias",
                "-n",
                HOOK_NS,
                "-o",
                "jsonpath={.subsets[*].addresses[*].ip}",
            ])
            .is_empty()
        },
    );
    let failed = |check: &str, service: &str, path: &str, why: &str| {
        format!(
            r#"Internal error occurred: failed calling webhook "{check}.webhook.example.com": failed to call webhook: Post "https://{service}.{HOOK_NS}.svc:443{path}?timeout=1s": {why}"#
        )
    };
    let tls_failed = |check: &str, service: &str, why: &str| {
        failed(
            check,
            service,
            "/validate",
            &format!("tls: failed to verify certificate: x509: {why}"),
        )
    };
    let err = refused(c, &tls_check_configmap(dir, "alias"));
    let want = tls_failed(
        "alias",
        "webhook-alias",
        &format!("certificate is valid for webhook.{HOOK_NS}.svc, not webhook-alias.{HOOK_NS}.svc"),
    );
    assert!(err.contains(&want), "{err}");
    let err = refused(c, &tls_check_configmap(dir, "untrusted"));
    let want = tls_failed(
        "untrusted",
        "webhook",
        "certificate signed by unknown authority",
    );
    assert!(err.contains(&want), "{err}");
    let err = refused(c, &tls_check_configmap(dir, "slow"));
    let want = failed("slow", "webhook", "/slow", "context deadline exceeded");
    assert!(err.contains(&want), "{err}");
    c.kubectl_ok(&["delete", "-f", &file]);
}

/// `kubectl create -f file`: its stderr, after checking it failed.
fn refused(c: &Cluster, file: &str) -> String {
    let out = c.kubectl(&["create", "-f", file]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "created, yet refused expected: {err}"
    );
    err
}

/// The webhook's label on pod `namespace/name` ("" if none).
fn webhook_label(c: &Cluster, namespace: &str, name: &str) -> String {
    c.kubectl_ok(&[
        "get",
        "pod",
        name,
        "-n",
        namespace,
        "-o",
        "jsonpath={.metadata.labels.webhook}",
    ])
}

/// The webhook's account of the review of pod `namespace/name`.
fn webhook_seen(c: &Cluster, namespace: &str, name: &str) -> String {
    c.kubectl_ok(&[
        "get",
        "pod",
        name,
        "-n",
        namespace,
        "-o",
        r"jsonpath={.metadata.annotations.webhook\.example\.com/request}",
    ])
}

/// A Deployment's pod is labelled, reviewed as made by the ReplicaSet
/// controller; the Deployment is deleted again.
fn deployment_pods_are_labelled(c: &Cluster, dir: &Path) {
    let file = dir.join("deployment.yaml");
    std::fs::write(
        &file,
        format!(
            r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: sleepers
  namespace: {USER_NS}
spec:
  selector: {{matchLabels: {{app: sleepers}}}}
  template:
    metadata:
      labels: {{app: sleepers}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - {{name: c, image: "busybox:1.35", command: [sleep, "3600"]}}
"#
        ),
    )
    .unwrap();
    c.kubectl_ok(&["create", "-f", file.to_str().unwrap()]);
    let mut pod = String::new();
    wait_until_blocking(
        "the Deployment's pod",
        Duration::from_secs(30),
        POLL,
        || {
            pod = c.kubectl_ok(&[
                "get",
                "pods",
                "-n",
                USER_NS,
                "-l",
                "app=sleepers",
                "-o",
                "jsonpath={.items[*].metadata.name}",
            ]);
            !pod.is_empty()
        },
    );
    assert_eq!(webhook_label(c, USER_NS, &pod), "mutated");
    assert_eq!(
        webhook_seen(c, USER_NS, &pod),
        format!(
            "CREATE /v1/Pod pods {USER_NS} system:serviceaccount:kube-system:replicaset-controller dryRun=false"
        )
    );
    c.kubectl_ok(&["delete", "deployment", "sleepers", "-n", USER_NS]);
}

/// The ready addresses of the webhook's Service, space-separated.
fn endpoint_addresses(c: &Cluster) -> String {
    c.kubectl_ok(&[
        "get",
        "endpoints",
        "webhook",
        "-n",
        HOOK_NS,
        "-o",
        "jsonpath={.subsets[*].addresses[*].ip}",
    ])
}

/// Starts the webhook's pod and waits until its Service has it.
fn start_webhook(c: &Cluster, pod_file: &str) {
    c.kubectl_ok(&["create", "-f", pod_file]);
    c.kubectl_ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/webhook",
        "-n",
        HOOK_NS,
        "--timeout=120s",
    ]);
    wait_until_blocking(
        "the webhook's Service to have an endpoint",
        Duration::from_secs(30),
        POLL,
        || !endpoint_addresses(c).is_empty(),
    );
}

/// Deletes the webhook's pod and waits until its Service has no endpoint.
fn stop_webhook(c: &Cluster) {
    c.kubectl_ok(&["delete", "pod", "webhook", "-n", HOOK_NS, "--timeout=60s"]);
    wait_until_blocking(
        "the webhook's Service to lose its endpoint",
        Duration::from_secs(30),
        POLL,
        || endpoint_addresses(c).is_empty(),
    );
}

#[test]
fn webhooks_served_by_a_pod_behind_a_service() {
    let c = Cluster::start_ready_node(NODE, common::NODE_ALONE);
    let files = tempfile::Builder::new()
        .prefix("ferrokube-webhook-pod")
        .tempdir()
        .unwrap();
    let dir = files.path();
    let ca = common::python_pod::serving_certificate(
        dir,
        "webhook-test-ca",
        &format!("webhook.{HOOK_NS}.svc"),
    );
    let setup = dir.join("setup.yaml");
    std::fs::write(&setup, manifests(&ca)).unwrap();
    let pod_file = dir.join("webhook.yaml");
    std::fs::write(&pod_file, webhook_pod(dir)).unwrap();
    let pod_file = pod_file.display().to_string();
    let setup = setup.display().to_string();
    c.kubectl_ok(&["apply", "-f", &setup]);
    // The webhook's own pod is out of its webhooks' reach: it starts
    // while they cannot be called yet.
    start_webhook(&c, &pod_file);
    reviews(&c, dir);
    calls_fail(&c, dir, &ca);

    // The webhook's pod gone, its Service has no endpoints: `Fail`
    // refuses, `Ignore` lets through.
    stop_webhook(&c);
    unreachable(&c, dir);

    // The webhook back in its namespace, it is called again.
    start_webhook(&c, &pod_file);
    c.kubectl_ok(&["create", "-f", &sleeper(dir, "third", USER_NS)]);
    assert_eq!(webhook_label(&c, USER_NS, "third"), "mutated");
    let err = refused(&c, &configmap(dir, "bad2", USER_NS, "forbidden"));
    assert!(err.contains("denied the request"), "{err}");

    // Clean up: configurations first, so nothing is reviewed on the way.
    c.kubectl_ok(&[
        "delete",
        "mutatingwebhookconfiguration/label-pods",
        "validatingwebhookconfiguration/deny-forbidden",
    ]);
    c.kubectl_ok(&["delete", "namespace", USER_NS, HOOK_NS, "--timeout=120s"]);
    let left = c.kubectl_ok(&[
        "get",
        "mutatingwebhookconfigurations,validatingwebhookconfigurations",
        "-o",
        "name",
    ]);
    assert_eq!(left, "", "configurations left: {left}");
}

/// With the webhook up: pods are labelled, ConfigMaps with the key refused
/// (on create and update), and the webhook's namespace left alone.
fn reviews(c: &Cluster, dir: &Path) {
    // The mutating webhook labels a new pod; the review told it what was
    // done, where, and by whom.
    let first = sleeper(dir, "first", USER_NS);
    c.kubectl_ok(&["create", "-f", &first]);
    assert_eq!(webhook_label(c, USER_NS, "first"), "mutated");
    assert_eq!(
        webhook_seen(c, USER_NS, "first"),
        format!("CREATE /v1/Pod pods {USER_NS} system:admin dryRun=false")
    );
    // A server-side dry run is reviewed (the webhook has no side effects)
    // and shows the mutation.
    let dry = c.kubectl_ok(&[
        "create",
        "--dry-run=server",
        "-f",
        &sleeper(dir, "dry", USER_NS),
        "-o",
        r#"jsonpath={.metadata.labels.webhook} {.metadata.annotations.webhook\.example\.com/request}"#,
    ]);
    assert_eq!(
        dry,
        format!("mutated CREATE /v1/Pod pods {USER_NS} system:admin dryRun=true")
    );
    // Pods a controller makes are reviewed as the controller's.
    deployment_pods_are_labelled(c, dir);
    // The validating webhook refuses a ConfigMap with the key, in
    // Kubernetes' words, and lets another through.
    let bad = configmap(dir, "bad", USER_NS, "forbidden");
    let err = refused(c, &bad);
    assert!(
        err.contains(&format!(
            r#"Error from server (Forbidden): error when creating "{bad}": admission webhook "{VALIDATING}" denied the request: the key "forbidden" is not allowed"#
        )),
        "{err}"
    );
    c.kubectl_ok(&["create", "-f", &configmap(dir, "good", USER_NS, "fine")]);
    // Updates are reviewed too.
    let out = c.kubectl(&[
        "patch",
        "configmap",
        "good",
        "-n",
        USER_NS,
        "--type=merge",
        "-p",
        r#"{"data":{"forbidden":"now"}}"#,
    ]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!(
            r#"admission webhook "{VALIDATING}" denied the request: the key "forbidden" is not allowed"#
        )),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The webhook's own namespace is left alone.
    c.kubectl_ok(&["create", "-f", &configmap(dir, "own", HOOK_NS, "forbidden")]);
    c.kubectl_ok(&["create", "-f", &sleeper(dir, "own", HOOK_NS)]);
    assert_eq!(webhook_label(c, HOOK_NS, "own"), "");
}

/// With the webhook's Service without endpoints: under `failurePolicy:
/// Fail` writes are refused with Kubernetes' message, but for the webhook's
/// own namespace; under `Ignore` they go through, unreviewed.
fn unreachable(c: &Cluster, dir: &Path) {
    let failed = |name: &str, path: &str| {
        format!(
            r#"Internal error occurred: failed calling webhook "{name}": failed to call webhook: Post "https://webhook.{HOOK_NS}.svc:443{path}?timeout=10s": no endpoints available for service "webhook""#
        )
    };
    let other = configmap(dir, "other", USER_NS, "fine");
    let err = refused(c, &other);
    assert!(
        err.contains(&format!(
            r#"Error from server (InternalError): error when creating "{other}": {}"#,
            failed(VALIDATING, "/validate")
        )),
        "{err}"
    );
    let second = sleeper(dir, "second", USER_NS);
    let err = refused(c, &second);
    assert!(
        err.contains(&format!(
            r#"Error from server (InternalError): error when creating "{second}": {}"#,
            failed(MUTATING, "/mutate")
        )),
        "{err}"
    );
    // ... while the webhook's namespace still takes writes.
    c.kubectl_ok(&[
        "create",
        "-f",
        &configmap(dir, "own2", HOOK_NS, "forbidden"),
    ]);

    // Under `Ignore` the same writes go through, unreviewed.
    for (kind, name) in [
        ("mutatingwebhookconfiguration", "label-pods"),
        ("validatingwebhookconfiguration", "deny-forbidden"),
    ] {
        c.kubectl_ok(&[
            "patch",
            kind,
            name,
            "--type=json",
            "-p",
            r#"[{"op":"replace","path":"/webhooks/0/failurePolicy","value":"Ignore"}]"#,
        ]);
    }
    c.kubectl_ok(&["create", "-f", &other]);
    c.kubectl_ok(&["create", "-f", &configmap(dir, "bad", USER_NS, "forbidden")]);
    c.kubectl_ok(&["create", "-f", &second]);
    assert_eq!(webhook_label(c, USER_NS, "second"), "");
}
