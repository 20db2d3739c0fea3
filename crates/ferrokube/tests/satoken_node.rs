//! Service-account tokens in a pod on a one-node cluster (`ferrokube server`
//! with its node agent and containerd): the ServiceAccount admission adds the
//! `kube-api-access-*` volume, the kubelet fills it with a token bound to
//! the pod, the cluster CA and the namespace, and the token the container
//! reads authenticates against the API server until the pod is gone.

mod common;

use std::time::Duration;

use base64::Engine;
use common::{Cluster, POLL};
use ferrokube_client::testing::wait::wait_until_blocking;

const NODE: &str = "fk-satoken-e2e";
const DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

#[test]
#[expect(
    clippy::too_many_lines,
    reason = "one scenario on a node: a pod reads its projected token, which is then used against the API"
)]
fn a_pod_reads_a_token_that_authenticates_as_its_service_account() {
    let c = Cluster::start_ready_node(NODE, common::NODE_ALONE);
    wait_until_blocking(
        "the default service account",
        Duration::from_secs(60),
        POLL,
        || {
            c.kubectl(&["get", "serviceaccount", "default"])
                .status
                .success()
        },
    );

    let manifest = c.data_dir().join("reader.yaml");
    std::fs::write(
        &manifest,
        r#"apiVersion: v1
kind: Pod
metadata: {name: reader}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    imagePullPolicy: Never
    command: ["sleep", "3600"]
"#,
    )
    .unwrap();
    c.kubectl_ok(&["apply", "-f", &manifest.to_string_lossy()]);
    c.kubectl_ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/reader",
        "--timeout=120s",
    ]);

    let read =
        |file: &str| c.kubectl_ok(&["exec", "reader", "--", "cat", &format!("{DIR}/{file}")]);
    let token = read("token");
    assert_eq!(read("namespace"), "default");
    let ca = std::fs::read_to_string(c.data_dir().join("tls/ca.crt")).unwrap();
    assert_eq!(read("ca.crt"), ca, "ca.crt is the cluster CA");
    let listing = c.kubectl_ok(&["exec", "reader", "--", "ls", "-lL", DIR]);
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("-rw-r--r--") && l.ends_with(" token")),
        "the token file has the volume's mode 0644: {listing}"
    );

    // The token: bound to this pod, for the API, about an hour.
    let payload = token.split('.').nth(1).expect("a JWT");
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64url"),
    )
    .expect("JSON claims");
    assert_eq!(claims["sub"], "system:serviceaccount:default:default");
    assert_eq!(
        claims["aud"],
        serde_json::json!(["https://kubernetes.default.svc.cluster.local"])
    );
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3607
    );
    let uid = c.kubectl_ok(&["get", "pod", "reader", "-o", "jsonpath={.metadata.uid}"]);
    assert_eq!(claims["kubernetes.io"]["pod"]["name"], "reader");
    assert_eq!(claims["kubernetes.io"]["pod"]["uid"], uid.as_str());
    assert_eq!(claims["kubernetes.io"]["node"]["name"], NODE);

    // Authorization is on: the pod's service account may read pods once
    // bound to `view`.
    c.kubectl_ok(&[
        "create",
        "rolebinding",
        "default-view",
        "--clusterrole=view",
        "--serviceaccount=default:default",
    ]);
    let out = c.kubectl_as(&token, &["get", "pods"]);
    assert!(
        out.status.success(),
        "the pod's token authenticates: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("reader"));
    let out = c.kubectl_as(
        &token,
        &[
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "system:serviceaccount:default:default",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Gone with the pod.
    c.kubectl_ok(&["delete", "pod", "reader", "--wait", "--timeout=60s"]);
    let out = c.kubectl_as(&token, &["get", "pods"]);
    assert!(!out.status.success(), "the token outlived its pod");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Unauthorized"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
