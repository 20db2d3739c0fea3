//! The aggregation layer end to end on a one-node cluster: an extension API
//! server (a small Python HTTPS server, `aggregator/extension_server.py`,
//! run as a pod: busybox chroots into the host's root, read-only, for its
//! Python) behind a Service and an APIService. The real kubectl finds its
//! resources through discovery and lists them through the aggregator, which
//! tells the server who asks in request headers on a request-header client
//! certificate; the APIService turns Available; local APIServices exist for
//! every built-in group version; a missing Service is reported as Kubernetes
//! reports it; and deleting the APIService stops serving the group.
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

const NODE: &str = "fk-aggregator-e2e";

/// The extension server's namespace, pod, Service and APIService.
fn manifests(files: &Path, data_dir: &Path, ca_pem: &str) -> String {
    let f = |n: &str| files.join(n).display().to_string();
    let request_header_ca = data_dir
        .join("tls/request-header-ca.crt")
        .display()
        .to_string();
    let pod = common::python_pod::python_pod(
        "wardle",
        "api",
        "wardle",
        "crates/ferrokube/tests/aggregator/extension_server.py",
        &[&f("tls.crt"), &f("tls.key"), &request_header_ca, "8443"],
        8443,
    );
    let ca_bundle = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    format!(
        r#"apiVersion: v1
kind: Namespace
metadata:
  name: wardle
---
{pod}---
apiVersion: v1
kind: Service
metadata:
  name: api
  namespace: wardle
spec:
  selector: {{app: wardle}}
  ports: [{{port: 443, targetPort: 8443}}]
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata:
  name: v1.wardle.example.com
spec:
  group: wardle.example.com
  version: v1
  groupPriorityMinimum: 1000
  versionPriority: 15
  service: {{namespace: wardle, name: api, port: 443}}
  caBundle: {ca_bundle}
"#
    )
}

/// `kubectl get apiservice NAME` as `status/reason/message` of its
/// Available condition.
fn availability(c: &Cluster, name: &str) -> String {
    let out = c.kubectl(&[
        "get",
        "apiservice",
        name,
        "-o",
        r#"jsonpath={.status.conditions[?(@.type=="Available")].status}/{.status.conditions[?(@.type=="Available")].reason}/{.status.conditions[?(@.type=="Available")].message}"#,
    ]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn an_extension_server_behind_an_apiservice_answers_kubectl_through_the_aggregator() {
    let c = Cluster::start_ready_node(NODE, common::NODE_ALONE);
    let files = tempfile::Builder::new()
        .prefix("ferrokube-wardle")
        .tempdir()
        .unwrap();
    let ca =
        common::python_pod::serving_certificate(files.path(), "wardle-test-ca", "api.wardle.svc");

    // Local APIServices for the built-in group versions, and what extension
    // servers read to trust our requests.
    wait_until_blocking(
        "v1.apps to be Available",
        Duration::from_secs(30),
        POLL,
        || availability(&c, "v1.apps") == "True/Local/Local APIServices are always available",
    );
    // The core group's is named `v1.`, as in Kubernetes.
    assert_eq!(
        availability(&c, "v1."),
        "True/Local/Local APIServices are always available"
    );
    let names = c.kubectl_ok(&[
        "get",
        "configmap",
        "-n",
        "kube-system",
        "extension-apiserver-authentication",
        "-o",
        "jsonpath={.data.requestheader-allowed-names} {.data.requestheader-username-headers}",
    ]);
    assert_eq!(names, r#"["front-proxy-client"] ["X-Remote-User"]"#);

    let manifest = files.path().join("wardle.yaml");
    std::fs::write(&manifest, manifests(files.path(), c.data_dir(), &ca)).unwrap();
    c.kubectl_ok(&["apply", "-f", manifest.to_str().unwrap()]);
    wait_until_blocking(
        "the APIService to be Available",
        Duration::from_secs(120),
        POLL,
        || availability(&c, "v1.wardle.example.com") == "True/Passed/all checks passed",
    );

    // kubectl's table says where each APIService is served.
    let table = c.kubectl_ok(&["get", "apiservices", "v1.apps", "v1.wardle.example.com"]);
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["NAME", "SERVICE", "AVAILABLE", "AGE"], "{table}");
    assert_eq!(rows[1][..3], ["v1.apps", "Local", "True"], "{table}");
    assert_eq!(
        rows[2][..3],
        ["v1.wardle.example.com", "wardle/api", "True"],
        "{table}"
    );
    // An APIService not named `<version>.<group>` is refused with
    // Kubernetes' message.
    let bad = files.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
            "metadata": {"name": "wardle"},
            "spec": {"group": "wardle.example.com", "version": "v2",
                     "groupPriorityMinimum": 1000, "versionPriority": 15}}"#,
    )
    .unwrap();
    let refused = c.kubectl(&["create", "-f", bad.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains(
            r#"The APIService "wardle" is invalid: metadata.name: Invalid value: "wardle": must be `spec.version+"."+spec.group`: "v2.wardle.example.com""#
        ),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // Discovery lists the group; kubectl lists its resources through the
    // aggregator, and the server was told who asked.
    let resources = c.kubectl_ok(&["api-resources", "--api-group=wardle.example.com"]);
    assert!(resources.contains("flunders"), "{resources}");
    assert!(resources.contains("fl "), "short name: {resources}");
    let asked = c.kubectl_ok(&[
        "get",
        "flunders",
        "-n",
        "default",
        "-o",
        "jsonpath={.items[0].metadata.name} {.items[0].spec.requestedBy} {.items[0].spec.groups}",
    ]);
    assert_eq!(
        asked,
        r#"hello system:admin ["system:masters","system:authenticated"]"#
    );
    // Authorization happens here first: jane may not list flunders.
    let refused = c.kubectl(&["--as", "jane", "get", "flunders", "-n", "default"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains(
            r#"flunders.wardle.example.com is forbidden: User "jane" cannot list resource "flunders" in API group "wardle.example.com" in the namespace "default""#
        ),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // An APIService whose Service does not exist says so.
    cleanup_and_missing_service(&c);
}

/// An APIService naming a missing Service, then the group's removal.
fn cleanup_and_missing_service(c: &Cluster) {
    let missing = r#"{"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
        "metadata": {"name": "v1.nothing.example.com"},
        "spec": {"group": "nothing.example.com", "version": "v1", "groupPriorityMinimum": 1000,
                 "versionPriority": 15, "insecureSkipTLSVerify": true,
                 "service": {"namespace": "wardle", "name": "missing", "port": 443}}}"#;
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), missing).unwrap();
    c.kubectl_ok(&["create", "-f", file.path().to_str().unwrap()]);
    wait_until_blocking(
        "the missing Service to be reported",
        Duration::from_secs(30),
        POLL,
        || {
            availability(c, "v1.nothing.example.com")
                == r#"False/ServiceNotFound/service/missing in "wardle" is not present"#
        },
    );
    // Deleting the APIService stops serving its group: discovery no longer
    // lists it, and its paths are this server's again (404).
    c.kubectl_ok(&["delete", "apiservice", "v1.wardle.example.com"]);
    wait_until_blocking(
        "the group to leave discovery",
        Duration::from_secs(30),
        POLL,
        || {
            !c.kubectl_ok(&["get", "--raw", "/apis"])
                .contains("wardle.example.com")
        },
    );
    let gone = c.kubectl(&[
        "get",
        "--raw",
        "/apis/wardle.example.com/v1/namespaces/default/flunders",
    ]);
    assert!(
        String::from_utf8_lossy(&gone.stderr)
            .contains("the server could not find the requested resource"),
        "{}",
        String::from_utf8_lossy(&gone.stderr)
    );
}
