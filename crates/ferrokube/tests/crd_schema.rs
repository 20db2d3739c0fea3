//! Custom resources' schemas where clients use them, with the real kubectl:
//! a CRD using every schema feature at once (`tests/crd/everything.yaml`)
//! is applied server-side and becomes Established; `kubectl explain` reads
//! its fields from the OpenAPI documents (rebuilt when the CRD changes);
//! kubectl's validation refuses an unknown field; objects are defaulted at
//! each depth, pruned, and refused by a CEL rule's messageExpression; two
//! field managers applying the same object merge its list-map by key, and
//! a conflict on one key's field is reported as Kubernetes reports it and
//! taken with `--force-conflicts`.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use std::time::Duration;

use common::{Cluster, POLL};
use ferrokube_client::testing::wait::wait_until_blocking;
use serde_json::{json, Value};

const CRD_NAME: &str = "bundles.everything.example.com";

fn everything_yaml() -> String {
    let path = common::repo_root().join("crates/ferrokube/tests/crd/everything.yaml");
    std::fs::read_to_string(path).unwrap()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Writes `yaml` to `file` in the cluster's directory and runs kubectl
/// `verb -f file extra...`.
fn with_file(
    c: &Cluster,
    verb: &[&str],
    file: &str,
    yaml: &str,
    extra: &[&str],
) -> std::process::Output {
    let path = c.data_dir().join(file);
    std::fs::write(&path, yaml).unwrap();
    let path = path.to_string_lossy().into_owned();
    let mut args: Vec<&str> = verb.to_vec();
    args.extend_from_slice(&["-f", path.as_str()]);
    args.extend_from_slice(extra);
    c.kubectl(&args)
}

/// Applies the bundle CRD server-side and waits until kubectl can use it.
fn establish(c: &Cluster) {
    let out = with_file(
        c,
        &["apply", "--server-side"],
        "everything.yaml",
        &everything_yaml(),
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("customresourcedefinition.apiextensions.k8s.io/bundles.everything.example.com serverside-applied"),
        "{}",
        stdout(&out)
    );
    c.kubectl_ok(&[
        "wait",
        "--for=condition=Established",
        &format!("crd/{CRD_NAME}"),
        "--timeout=30s",
    ]);
    wait_until_blocking("bundles served", Duration::from_secs(20), POLL, || {
        c.kubectl(&["get", "bundles"]).status.success()
    });
}

fn bundle(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: everything.example.com/v1\nkind: Bundle\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n{spec}"
    )
}

fn get_json(c: &Cluster, what: &[&str]) -> Value {
    let mut args = vec!["get"];
    args.extend_from_slice(what);
    args.extend_from_slice(&["-o", "json", "--show-managed-fields"]);
    serde_json::from_str(&c.kubectl_ok(&args)).unwrap()
}

/// The `fieldsV1` of `manager`'s entry (of operation `op`) in `obj`.
fn fields_of(obj: &Value, manager: &str, op: &str) -> Value {
    obj["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["manager"] == manager && e["operation"] == op)
        .map(|e| e["fieldsV1"].clone())
        .unwrap_or_else(|| panic!("no {op} entry of {manager}: {obj}"))
}

#[test]
fn a_crd_with_every_schema_feature_is_explained_validated_defaulted_and_applied() {
    let c = Cluster::start();
    establish(&c);

    explain_reads_the_schema(&c);
    documents_as_kubernetes_publishes_them(&c);
    objects_are_validated_defaulted_and_pruned(&c);
    cel_rules_refuse_with_their_messages(&c);
    client_side_apply_sends_a_merge_patch(&c);

    c.kubectl_ok(&["delete", "bundles", "--all", "-n", "default"]);
    c.kubectl_ok(&["delete", "crd", CRD_NAME, "--timeout=30s"]);
}

/// `kubectl explain` reads the CRD's schema from the OpenAPI documents.
fn explain_reads_the_schema(c: &Cluster) {
    let explained = c.kubectl_ok(&["explain", "bundles.spec.listeners"]);
    assert!(explained.contains("KIND:       Bundle"), "{explained}");
    assert!(
        explained.contains("FIELD: listeners <[]Object>"),
        "{explained}"
    );
    assert!(
        explained.contains("Where the bundle listens; merged by name and protocol."),
        "{explained}"
    );
    assert!(
        explained.contains("name\t<string> -required-"),
        "{explained}"
    );
    let port = c.kubectl_ok(&["explain", "bundles.spec.port"]);
    assert!(
        port.contains("The port to serve on, by number or by name."),
        "{port}"
    );
    let top = c.kubectl_ok(&["explain", "bdl"]);
    assert!(
        top.contains("A Bundle runs an image behind listeners"),
        "{top}"
    );
    assert!(top.contains("metadata\t<ObjectMeta>"), "{top}");
    // kubectl 1.27 reads the v2 document, as protobuf.
    let old = common::kubectl_command(
        std::path::Path::new("/usr/lib/google-cloud-sdk/bin/kubectl.1.27"),
        &c.kubeconfig(),
    )
    .args(["explain", "bundles.spec.listeners.tls"])
    .output()
    .unwrap();
    assert!(old.status.success(), "{}", stderr(&old));
    assert!(
        stdout(&old).contains("How the listener speaks TLS."),
        "{}",
        stdout(&old)
    );
}

/// The documents as Kubernetes publishes them.
fn documents_as_kubernetes_publishes_them(c: &Cluster) {
    // The documents as Kubernetes publishes them: v3 keeps defaults and
    // int-or-string's anyOf; v2 has neither, and the paths are the CRD's.
    let v3: Value = serde_json::from_str(&c.kubectl_ok(&[
        "get",
        "--raw",
        "/openapi/v3/apis/everything.example.com/v1",
    ]))
    .unwrap();
    let def = &v3["components"]["schemas"]["com.example.everything.v1.Bundle"];
    assert_eq!(
        def["x-kubernetes-group-version-kind"],
        json!([{"group": "everything.example.com", "version": "v1", "kind": "Bundle"}])
    );
    assert_eq!(
        def["properties"]["spec"]["properties"]["replicas"]["default"],
        1
    );
    assert_eq!(
        def["properties"]["spec"]["properties"]["port"]["anyOf"],
        json!([{"type": "integer"}, {"type": "string"}])
    );
    let list = &v3["components"]["schemas"]["com.example.everything.v1.BundleList"];
    assert_eq!(
        list["x-kubernetes-group-version-kind"][0]["kind"],
        "BundleList"
    );
    for path in [
        "/apis/everything.example.com/v1/bundles",
        "/apis/everything.example.com/v1/namespaces/{namespace}/bundles",
        "/apis/everything.example.com/v1/namespaces/{namespace}/bundles/{name}",
        "/apis/everything.example.com/v1/namespaces/{namespace}/bundles/{name}/status",
        "/apis/everything.example.com/v1/namespaces/{namespace}/bundles/{name}/scale",
    ] {
        assert!(v3["paths"].get(path).is_some(), "no {path} in v3");
    }
    let v2: Value = serde_json::from_str(&c.kubectl_ok(&["get", "--raw", "/openapi/v2"])).unwrap();
    let def2 = &v2["definitions"]["com.example.everything.v1.Bundle"];
    let spec2 = &def2["properties"]["spec"]["properties"];
    assert_eq!(spec2["replicas"]["type"], "integer");
    assert!(
        spec2["replicas"].get("default").is_none(),
        "{}",
        spec2["replicas"]
    );
    assert!(spec2["port"].get("anyOf").is_none(), "{}", spec2["port"]);
    assert!(
        spec2["config"].get("properties").is_none() && spec2["config"].get("type").is_none(),
        "preserved unknown fields are untyped in v2: {}",
        spec2["config"]
    );
}

/// kubectl's validation, then the schema's defaults and pruning.
fn objects_are_validated_defaulted_and_pruned(c: &Cluster) {
    // kubectl's validation refuses an unknown field.
    let unknown = with_file(
        c,
        &["create", "--validate=strict"],
        "unknown.yaml",
        &bundle("unknown", "  image: busybox\n  bogus: 1\n"),
        &[],
    );
    assert!(!unknown.status.success());
    assert!(
        stderr(&unknown).contains(r#"unknown field "spec.bogus""#),
        "{}",
        stderr(&unknown)
    );

    // Created without validation: defaulted at each depth and pruned.
    let created = with_file(
        c,
        &["create", "--validate=false"],
        "full.yaml",
        &bundle(
            "full",
            concat!(
                "  image: busybox\n",
                "  bogus: 1\n",
                "  listeners:\n",
                "  - {name: web, protocol: TCP, port: 80, extra: x}\n",
                "  - {name: dns, protocol: UDP, port: dns, tls: {mode: Passthrough}}\n",
                "  strategy: {rollingUpdate: {}}\n",
                "  schedule: {windows: [{start: '2026-01-01T00:00:00Z'}]}\n",
                "  template: {apiVersion: v1, kind: ConfigMap, metadata: {name: made}, data: {a: b}}\n",
                "  config: {anything: {goes: [1, 2]}}\n",
            ),
        ),
        &[],
    );
    assert!(created.status.success(), "{}", stderr(&created));
    let full = get_json(c, &["bundle", "full"]);
    let spec = &full["spec"];
    assert!(spec.get("bogus").is_none(), "pruned: {spec}");
    assert!(
        spec["listeners"][0].get("extra").is_none(),
        "pruned: {spec}"
    );
    assert_eq!(spec["replicas"], 1);
    assert_eq!(spec["minReplicas"], 0);
    assert_eq!(spec["class"], "standard");
    assert_eq!(spec["port"], "http");
    assert_eq!(
        spec["listeners"][0]["tls"],
        json!({"mode": "Terminate", "minVersion": "1.2"}),
        "an object defaulted to {{}}, then its own fields"
    );
    assert_eq!(
        spec["listeners"][1]["tls"],
        json!({"mode": "Passthrough", "minVersion": "1.2"})
    );
    assert_eq!(
        spec["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}})
    );
    assert_eq!(spec["schedule"]["windows"][0]["hours"], 1);
    assert_eq!(
        spec["template"],
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "made", "creationTimestamp": null}, "data": {"a": "b"}}),
        "an embedded resource's metadata as Kubernetes' ObjectMeta round trip leaves it"
    );
    assert_eq!(spec["config"], json!({"anything": {"goes": [1, 2]}}));
}

/// CEL rules' messages, messageExpression's among them.
fn cel_rules_refuse_with_their_messages(c: &Cluster) {
    // A CEL rule's messageExpression is the message.
    let bad = with_file(
        c,
        &["create"],
        "bad.yaml",
        &bundle("bad", "  image: busybox\n  replicas: 1\n  minReplicas: 3\n"),
        &[],
    );
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains(
            r#"The Bundle "bad" is invalid: spec: Invalid value: "object": replicas (1) must be at least minReplicas (3)"#
        ),
        "{}",
        stderr(&bad)
    );
    let long = with_file(
        c,
        &["create"],
        "long.yaml",
        &bundle(
            "long",
            "  image: busybox\n  listeners:\n  - {name: a-very-long-listener, protocol: TCP}\n",
        ),
        &[],
    );
    assert!(
        stderr(&long).contains(
            r#"spec.listeners[0]: Invalid value: "object": listener name a-very-long-listener is longer than 15 characters"#
        ),
        "{}",
        stderr(&long)
    );
    let immutable = c.kubectl(&[
        "patch",
        "bundle",
        "full",
        "--type=merge",
        "-p",
        r#"{"spec": {"class": "large"}}"#,
    ]);
    assert!(
        stderr(&immutable).contains(r#"spec.class: Invalid value: "string": class is immutable"#),
        "{}",
        stderr(&immutable)
    );
}

#[test]
fn field_managers_merge_a_list_map_by_key_and_conflict_on_a_shared_field() {
    let c = Cluster::start();
    establish(&c);
    let apply = |file: &str, manager: &str, spec: &str, extra: &[&str]| {
        let flag = format!("--field-manager={manager}");
        let mut more = vec![flag.as_str()];
        more.extend_from_slice(extra);
        with_file(
            &c,
            &["apply", "--server-side"],
            file,
            &bundle("shared", spec),
            &more,
        )
    };

    let a = apply(
        "a.yaml",
        "a",
        "  image: busybox\n  tags: [blue]\n  listeners:\n  - {name: web, protocol: TCP, port: 80}\n",
        &[],
    );
    assert!(a.status.success(), "{}", stderr(&a));
    let b = apply(
        "b.yaml",
        "b",
        "  tags: [green]\n  listeners:\n  - {name: dns, protocol: UDP, port: 53}\n",
        &[],
    );
    assert!(b.status.success(), "{}", stderr(&b));
    let obj = get_json(&c, &["bundle", "shared"]);
    let names: Vec<&str> = obj["spec"]["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web", "dns"], "both listeners kept: {obj}");
    assert_eq!(
        obj["spec"]["tags"],
        json!(["blue", "green"]),
        "a set merges"
    );
    let web = r#"k:{"name":"web","protocol":"TCP"}"#;
    let dns = r#"k:{"name":"dns","protocol":"UDP"}"#;
    let fa = fields_of(&obj, "a", "Apply");
    let fb = fields_of(&obj, "b", "Apply");
    assert!(
        fa["f:spec"]["f:listeners"][web]["f:port"].is_object(),
        "{fa}"
    );
    assert!(fa["f:spec"]["f:listeners"].get(dns).is_none(), "{fa}");
    assert!(fb["f:spec"]["f:listeners"][dns]["."].is_object(), "{fb}");
    assert!(fb["f:spec"]["f:listeners"].get(web).is_none(), "{fb}");
    assert!(fa["f:spec"]["f:tags"][r#"v:"blue""#].is_object(), "{fa}");
    assert!(fb["f:spec"]["f:tags"][r#"v:"green""#].is_object(), "{fb}");

    // b changes the port a set on a's listener: a conflict.
    let b_web = "  listeners:\n  - {name: dns, protocol: UDP, port: 53}\n  - {name: web, protocol: TCP, port: 8080}\n";
    let conflict = apply("b2.yaml", "b", b_web, &[]);
    assert!(!conflict.status.success());
    assert!(
        stderr(&conflict).contains(
            r#"Apply failed with 1 conflict: conflict with "a": .spec.listeners[name="web",protocol="TCP"].port"#
        ),
        "{}",
        stderr(&conflict)
    );
    let forced = apply("b2.yaml", "b", b_web, &["--force-conflicts"]);
    assert!(forced.status.success(), "{}", stderr(&forced));
    let obj = get_json(&c, &["bundle", "shared"]);
    let web_port = obj["spec"]["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "web")
        .map(|l| l["port"].clone());
    assert_eq!(web_port, Some(json!(8080)));
    let fa = fields_of(&obj, "a", "Apply");
    let fb = fields_of(&obj, "b", "Apply");
    assert!(
        fa["f:spec"]["f:listeners"][web].get("f:port").is_none(),
        "{fa}"
    );
    assert!(
        fa["f:spec"]["f:listeners"][web]["."].is_object(),
        "a keeps the listener: {fa}"
    );
    assert!(
        fb["f:spec"]["f:listeners"][web]["f:port"].is_object(),
        "{fb}"
    );

    c.kubectl_ok(&["delete", "bundle", "shared", "-n", "default"]);
    c.kubectl_ok(&["delete", "crd", CRD_NAME, "--timeout=30s"]);
}

#[test]
fn explain_follows_a_changed_crd() {
    let c = Cluster::start();
    establish(&c);
    let before = c.kubectl_ok(&["explain", "bundles.spec.image"]);
    assert!(
        before.contains("The container image the bundle runs."),
        "{before}"
    );
    let changed = everything_yaml().replace(
        "The container image the bundle runs.",
        "The image, from any registry the node can reach.",
    );
    let out = with_file(
        &c,
        &["apply", "--server-side"],
        "changed.yaml",
        &changed,
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    wait_until_blocking(
        "explain shows the new description",
        Duration::from_secs(20),
        POLL,
        || {
            stdout(&c.kubectl(&["explain", "bundles.spec.image"]))
                .contains("The image, from any registry the node can reach.")
        },
    );
    c.kubectl_ok(&["delete", "crd", CRD_NAME, "--timeout=30s"]);
    wait_until_blocking(
        "the kind leaves the documents",
        Duration::from_secs(20),
        POLL,
        || {
            c.kubectl(&["get", "--raw", "/openapi/v3/apis/everything.example.com/v1"])
                .status
                .code()
                != Some(0)
        },
    );
}

/// As with Kubernetes, a custom resource's PATCH takes no strategic merge
/// patch: kubectl's client-side apply sees that in the documents and sends
/// a JSON merge patch (which replaces the list), and a strategic patch is
/// refused with 415.
fn client_side_apply_sends_a_merge_patch(c: &Cluster) {
    let two = bundle(
        "cs",
        "  image: busybox\n  listeners:\n  - {name: a, protocol: TCP}\n  - {name: b, protocol: TCP}\n",
    );
    let out = with_file(c, &["apply"], "cs.yaml", &two, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let one = bundle(
        "cs",
        "  image: busybox\n  listeners:\n  - {name: a, protocol: TCP}\n",
    );
    let out = with_file(c, &["apply", "-v=5"], "cs.yaml", &one, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("OpenAPI V3 path does not support strategic merge patch"),
        "{}",
        stderr(&out)
    );
    let names = c.kubectl_ok(&[
        "get",
        "bundle",
        "cs",
        "-o",
        "jsonpath={.spec.listeners[*].name}",
    ]);
    assert_eq!(names, "a");
    let strategic = c.kubectl(&[
        "patch",
        "bundle",
        "cs",
        "--type=strategic",
        "-p",
        r#"{"spec": {"image": "nginx"}}"#,
    ]);
    assert!(!strategic.status.success());
    assert!(
        stderr(&strategic).contains(concat!(
            "the body of the request was in an unknown format - accepted media types include: ",
            "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
        )),
        "{}",
        stderr(&strategic)
    );
}
