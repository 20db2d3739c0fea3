//! The real kubectl against a ferrokube server started by the test: what a
//! user types, and what they see.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{kubectl_command, kubectl_with, Cluster};

fn write_manifest(cluster: &Cluster, name: &str, yaml: &str) -> String {
    let path = cluster.data_dir().join(name);
    std::fs::write(&path, yaml).unwrap();
    path.to_string_lossy().into_owned()
}

/// Runs kubectl, expecting it to fail with `needle` in its error output.
fn expect_error(c: &Cluster, args: &[&str], needle: &str) {
    let out = c.kubectl(args);
    assert!(!out.status.success(), "kubectl {args:?} succeeded");
    assert!(
        stderr(&out).contains(needle),
        "kubectl {args:?}: {}",
        stderr(&out)
    );
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const APP: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  labels: {app: web, tier: front}
data:
  mode: fast
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: busybox:1.36
        ports: [{containerPort: 80}]
      - name: sidecar
        image: busybox:1.36
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, name: http}]
"#;

#[test]
fn version_discovery_and_builtin_namespaces() {
    let c = Cluster::start();
    let v = c.kubectl_ok(&["version", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&v).unwrap();
    assert_eq!(v["serverVersion"]["major"], "1");
    assert_eq!(v["serverVersion"]["minor"], "33");
    let res = c.kubectl_ok(&["api-resources"]);
    for (name, short) in [
        ("pods", "po"),
        ("services", "svc"),
        ("deployments", "deploy"),
        ("namespaces", "ns"),
        ("replicasets", "rs"),
    ] {
        let line = res
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} missing from api-resources:\n{res}"));
        assert!(line.split_whitespace().any(|w| w == short), "{line}");
    }
    let ns = c.kubectl_ok(&["get", "namespaces", "-o", "name"]);
    for n in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(ns.contains(&format!("namespace/{n}")), "{ns}");
    }
    // `get all` uses the `all` category.
    let all = c.kubectl_ok(&["get", "all", "-A"]);
    assert!(
        all.contains("No resources found") || all.is_empty() || all.contains("NAME"),
        "{all}"
    );
}

#[test]
fn apply_get_and_apply_again_unchanged() {
    let c = Cluster::start();
    let f = write_manifest(&c, "app.yaml", APP);
    let out = c.kubectl_ok(&["apply", "-f", &f]);
    assert!(out.contains("configmap/settings created"), "{out}");
    assert!(out.contains("deployment.apps/web created"), "{out}");
    assert!(out.contains("service/web created"), "{out}");
    let again = c.kubectl_ok(&["apply", "-f", &f]);
    assert_eq!(again.matches("unchanged").count(), 3, "{again}");

    let table = c.kubectl_ok(&["get", "deployments"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]);
    assert!(table.contains("web") && table.contains("0/2"), "{table}");
    let svc = c.kubectl_ok(&["get", "svc", "web"]);
    assert!(
        svc.starts_with("NAME") && svc.contains("ClusterIP") && svc.contains("80/TCP"),
        "{svc}"
    );

    let json: serde_json::Value =
        serde_json::from_str(&c.kubectl_ok(&["get", "deploy", "web", "-o", "json"])).unwrap();
    assert_eq!(
        json["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%",
        "defaulted"
    );
    assert_eq!(json["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(json["metadata"]["generation"], 1);
    assert!(json["metadata"]["uid"].as_str().unwrap().len() == 36);
    let yaml = c.kubectl_ok(&["get", "cm", "settings", "-o", "yaml"]);
    assert!(
        yaml.contains("mode: fast") && yaml.contains("resourceVersion:"),
        "{yaml}"
    );
    assert_eq!(
        c.kubectl_ok(&["get", "cm", "settings", "-o", "jsonpath={.data.mode}"]),
        "fast"
    );
    assert_eq!(
        c.kubectl_ok(&["get", "cm", "-l", "app=web", "-o", "name"])
            .trim(),
        "configmap/settings"
    );
    assert_eq!(
        c.kubectl_ok(&["get", "cm", "-l", "tier in (back)", "-o", "name"])
            .trim(),
        ""
    );
    let cc = c.kubectl_ok(&[
        "get",
        "deploy",
        "-o",
        "custom-columns=NAME:.metadata.name,REPLICAS:.spec.replicas",
    ]);
    assert!(
        cc.lines()
            .nth(1)
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>()
            == ["web", "2"],
        "{cc}"
    );
    let sel = c.kubectl_ok(&[
        "get",
        "cm",
        "--field-selector",
        "metadata.name=settings",
        "-o",
        "name",
    ]);
    assert_eq!(sel.trim(), "configmap/settings");
    let all_ns = c.kubectl_ok(&["get", "cm", "-A"]);
    assert!(
        all_ns.lines().next().unwrap().starts_with("NAMESPACE"),
        "{all_ns}"
    );
    let described = c.kubectl_ok(&["describe", "deployment", "web"]);
    assert!(
        described.contains("Name:") && described.contains("web"),
        "{described}"
    );
}

#[test]
fn label_annotate_patch_set_image_and_delete() {
    let c = Cluster::start();
    let f = write_manifest(&c, "app.yaml", APP);
    c.kubectl_ok(&["apply", "-f", &f]);
    c.kubectl_ok(&["label", "cm", "settings", "owner=team-a"]);
    c.kubectl_ok(&["annotate", "cm", "settings", "note=hello"]);
    c.kubectl_ok(&[
        "patch",
        "cm",
        "settings",
        "--type=merge",
        "-p",
        r#"{"data":{"b":"2"}}"#,
    ]);
    c.kubectl_ok(&[
        "patch",
        "cm",
        "settings",
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/data/c","value":"3"}]"#,
    ]);
    c.kubectl_ok(&["patch", "cm", "settings", "-p", r#"{"data":{"d":"4"}}"#]);
    let cm: serde_json::Value =
        serde_json::from_str(&c.kubectl_ok(&["get", "cm", "settings", "-o", "json"])).unwrap();
    assert_eq!(cm["metadata"]["labels"]["owner"], "team-a");
    assert_eq!(cm["metadata"]["annotations"]["note"], "hello");
    assert_eq!(
        cm["data"],
        serde_json::json!({"mode": "fast", "b": "2", "c": "3", "d": "4"})
    );
    c.kubectl_ok(&["label", "cm", "settings", "owner-"]);
    assert_eq!(
        c.kubectl_ok(&[
            "get",
            "cm",
            "settings",
            "-o",
            "jsonpath={.metadata.labels.owner}"
        ]),
        ""
    );

    // set image: a strategic merge patch of one container, by name.
    c.kubectl_ok(&["set", "image", "deployment/web", "web=busybox:1.37"]);
    let d: serde_json::Value =
        serde_json::from_str(&c.kubectl_ok(&["get", "deploy", "web", "-o", "json"])).unwrap();
    let cs = d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(cs.len(), 2);
    assert_eq!(cs[0]["image"], "busybox:1.37");
    assert_eq!(cs[1]["image"], "busybox:1.36");
    assert_eq!(
        d["metadata"]["generation"], 2,
        "spec change bumps generation"
    );
    // A metadata-only change does not.
    c.kubectl_ok(&["label", "deploy", "web", "x=y"]);
    assert_eq!(
        c.kubectl_ok(&[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.metadata.generation}"
        ]),
        "2"
    );

    let out = c.kubectl_ok(&["delete", "cm", "settings"]);
    assert!(out.contains(r#"configmap "settings" deleted"#), "{out}");
    let gone = c.kubectl(&["get", "cm", "settings"]);
    assert!(!gone.status.success());
    assert!(
        stderr(&gone).contains(r#"configmaps "settings" not found"#),
        "{}",
        stderr(&gone)
    );
}

#[test]
fn stale_replace_conflicts_and_dry_run_changes_nothing() {
    let c = Cluster::start();
    let f = write_manifest(&c, "app.yaml", APP);
    c.kubectl_ok(&["apply", "-f", &f]);
    let stale = c.kubectl_ok(&["get", "cm", "settings", "-o", "json"]);
    c.kubectl_ok(&[
        "patch",
        "cm",
        "settings",
        "--type=merge",
        "-p",
        r#"{"data":{"mode":"slow"}}"#,
    ]);
    let mut obj: serde_json::Value = serde_json::from_str(&stale).unwrap();
    obj["data"]["mode"] = "stale".into();
    let path = write_manifest(&c, "stale.json", &obj.to_string());
    let out = c.kubectl(&["replace", "-f", &path]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("the object has been modified"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        c.kubectl_ok(&["get", "cm", "settings", "-o", "jsonpath={.data.mode}"]),
        "slow"
    );

    let extra = write_manifest(
        &c,
        "extra.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: dry}\ndata: {a: b}\n",
    );
    let out = c.kubectl_ok(&["apply", "-f", &extra, "--dry-run=server"]);
    assert!(
        out.contains("configmap/dry created (server dry run)"),
        "{out}"
    );
    assert!(
        !c.kubectl(&["get", "cm", "dry"]).status.success(),
        "dry run persisted"
    );
}

#[test]
fn bad_input_gets_kubernetes_errors() {
    let c = Cluster::start();
    let bad_name = write_manifest(
        &c,
        "bad.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: Bad_Name}\n",
    );
    let out = c.kubectl(&["apply", "-f", &bad_name]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(
            r#"ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name""#
        ),
        "{err}"
    );
    let no_ns = write_manifest(
        &c,
        "nons.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: missing}\n",
    );
    expect_error(
        &c,
        &["create", "-f", &no_ns],
        r#"namespaces "missing" not found"#,
    );
    let pod = write_manifest(
        &c,
        "pod.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n",
    );
    expect_error(
        &c,
        &["create", "-f", &pod],
        "spec.containers[0].image: Required value",
    );
    // Malformed JSON straight to the API.
    let junk = write_manifest(&c, "junk.json", "{not json");
    let out = c.kubectl(&[
        "create",
        "--raw",
        "/api/v1/namespaces/default/configmaps",
        "-f",
        &junk,
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("could not be decoded"),
        "{}",
        stderr(&out)
    );
    // Nothing was written by any of them (the root CA ConfigMap the
    // controllers put in every namespace, and the API server's
    // kube-system/extension-apiserver-authentication, aside).
    let cms = c.kubectl_ok(&["get", "cm", "-A", "-o", "name"]);
    assert!(
        cms.lines().all(|l| l == "configmap/kube-root-ca.crt"
            || l == "configmap/extension-apiserver-authentication"),
        "{cms}"
    );
    // A resourceVersion from the future times out with the cause client-go's
    // reflector looks for.
    let out = c.kubectl(&["get", "--raw", "/api/v1/namespaces/default/configmaps?resourceVersion=999999&resourceVersionMatch=NotOlderThan"]);
    assert!(
        stderr(&out).contains("Too large resource version"),
        "{}",
        stderr(&out)
    );
    // Pods' old field name still selects.
    let out = c.kubectl_ok(&[
        "get",
        "pods",
        "-A",
        "--field-selector",
        "spec.host=nowhere",
        "-o",
        "name",
    ]);
    assert_eq!(out.trim(), "");
    // Unknown paths are 404s.
    expect_error(
        &c,
        &["get", "--raw", "/apis/nope.example.com/v1/things"],
        "the server could not find the requested resource",
    );
}

#[test]
fn requests_without_credentials_are_refused() {
    let c = Cluster::start();
    // The same cluster, no user.
    let kc = std::fs::read_to_string(c.kubeconfig()).unwrap();
    let no_user: String = kc
        .lines()
        .filter(|l| !l.contains("client-certificate-data") && !l.contains("client-key-data"))
        .collect::<Vec<_>>()
        .join("\n");
    let path = c.data_dir().join("nouser.yaml");
    std::fs::write(&path, no_user).unwrap();
    let out = kubectl_with(&path, &["--token", "not-a-token", "get", "namespaces"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("Unauthorized") || err.contains("provide credentials"),
        "{err}"
    );
    // /version and /healthz stay open.
    let v = kubectl_with(
        &path,
        &["--token", "not-a-token", "get", "--raw", "/healthz"],
    );
    assert_eq!(String::from_utf8_lossy(&v.stdout), "ok");
    // The admin bearer token works.
    let token = std::fs::read_to_string(c.data_dir().join("tls/admin.token")).unwrap();
    let out = kubectl_with(
        &path,
        &[
            "--token",
            token.trim(),
            "get",
            "ns",
            "default",
            "-o",
            "name",
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "namespace/default",
        "{}",
        stderr(&out)
    );
}

#[test]
fn chunked_lists_and_watch() {
    let c = Cluster::start();
    let mut docs = String::new();
    for i in 0..7 {
        docs.push_str(&format!("---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cm-{i}, labels: {{set: many}}}}\ndata: {{i: \"{i}\"}}\n"));
    }
    let f = write_manifest(&c, "many.yaml", &docs);
    c.kubectl_ok(&["apply", "-f", &f]);
    let chunked = c.kubectl_ok(&[
        "get",
        "cm",
        "-l",
        "set=many",
        "--chunk-size=2",
        "-o",
        "name",
    ]);
    let names: Vec<&str> = chunked.lines().collect();
    assert_eq!(names.len(), 7, "{chunked}");
    let raw = c.kubectl_ok(&[
        "get",
        "--raw",
        "/api/v1/namespaces/default/configmaps?limit=3&labelSelector=set%3Dmany",
    ]);
    let page: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 3);
    // Kubernetes leaves the count out when a selector filters the list.
    assert_eq!(
        page["metadata"]["remainingItemCount"],
        serde_json::Value::Null
    );
    assert!(page["metadata"]["continue"].as_str().is_some());

    // A watch sees a new object arrive.
    let mut w = kubectl_command(Path::new("kubectl"), &c.kubeconfig())
        .args(["get", "configmaps", "--watch", "--output-watch-events"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = w.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The header, then the initial state as ADDED events.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    while seen.len() < 8 && Instant::now() < deadline {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            seen.push(l);
        }
    }
    assert_eq!(seen.len(), 8, "header and initial events: {seen:?}");
    assert!(
        seen[0]
            .split_whitespace()
            .eq(["EVENT", "NAME", "DATA", "AGE"]),
        "{seen:?}"
    );
    assert!(seen[1..].iter().all(|l| l.starts_with("ADDED")), "{seen:?}");
    let late = write_manifest(
        &c,
        "late.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: late}\n",
    );
    c.kubectl_ok(&["apply", "-f", &late]);
    let mut got = None;
    while Instant::now() < deadline + Duration::from_secs(10) {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            if l.contains("late") {
                got = Some(l);
                break;
            }
        }
    }
    let _ = w.kill();
    let _ = w.wait();
    let line = got.expect("the watch never saw configmap late");
    // The age counts from a creationTimestamp kept to the second, so an
    // object made late in a second is already "1s" old a moment later.
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert!(
        fields[..] == ["ADDED", "late", "0", "0s"] || fields[..] == ["ADDED", "late", "0", "1s"],
        "{line}"
    );
}

#[test]
fn namespace_deletion_and_restart() {
    let mut c = Cluster::start();
    // A finalizer on its ConfigMap holds the namespace in Terminating.
    let f = write_manifest(&c, "ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: team-a}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: team-a, finalizers: [example.com/hold]}\n");
    c.kubectl_ok(&["apply", "-f", &f]);
    c.kubectl_ok(&["delete", "namespace", "team-a", "--wait=false"]);
    let phase = c.kubectl_ok(&["get", "ns", "team-a", "-o", "jsonpath={.status.phase}"]);
    assert_eq!(phase, "Terminating");
    let more = write_manifest(
        &c,
        "more.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: later, namespace: team-a}\n",
    );
    expect_error(
        &c,
        &["create", "-f", &more],
        "because it is being terminated",
    );

    // A restart keeps the data and the credentials.
    let kc_before = std::fs::read_to_string(c.kubeconfig()).unwrap();
    c.restart();
    assert_eq!(
        c.kubectl_ok(&["get", "cm", "x", "-n", "team-a", "-o", "name"])
            .trim(),
        "configmap/x"
    );
    let ca = |kc: &str| {
        kc.lines()
            .find(|l| l.contains("certificate-authority-data"))
            .map(str::to_string)
    };
    assert_eq!(
        ca(&kc_before),
        ca(&std::fs::read_to_string(c.kubeconfig()).unwrap()),
        "the CA changed"
    );
    // The namespace says what holds it; once the finalizer goes, so does
    // the namespace (the namespace controller finishes the deletion).
    let conditions = c.kubectl_ok(&[
        "get",
        "ns",
        "team-a",
        "-o",
        "jsonpath={.status.conditions[*].reason}",
    ]);
    assert!(conditions.contains("SomeFinalizersRemain"), "{conditions}");
    c.kubectl_ok(&[
        "patch",
        "cm",
        "x",
        "-n",
        "team-a",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    c.kubectl_ok(&["wait", "--for=delete", "namespace/team-a", "--timeout=30s"]);
}

#[test]
fn a_namespace_made_by_kubectl_create_takes_its_objects_with_it() {
    let c = Cluster::start();
    // kubectl sends this body as protobuf, with an empty spec.
    c.kubectl_ok(&["create", "namespace", "team"]);
    assert_eq!(
        c.kubectl_ok(&["get", "ns", "team", "-o", "jsonpath={.spec.finalizers}"]),
        r#"["kubernetes"]"#
    );
    c.kubectl_ok(&[
        "create",
        "configmap",
        "left",
        "-n",
        "team",
        "--from-literal=a=b",
    ]);
    c.kubectl_ok(&[
        "create",
        "secret",
        "generic",
        "key",
        "-n",
        "team",
        "--from-literal=a=b",
    ]);
    c.kubectl_ok(&["delete", "namespace", "team", "--timeout=60s"]);
    // A namespace made again with the same name finds nothing of the old one.
    c.kubectl_ok(&["create", "namespace", "team"]);
    assert_eq!(
        c.kubectl_ok(&[
            "get",
            "configmaps,secrets",
            "-n",
            "team",
            "-o",
            "name",
            "--field-selector=metadata.name!=kube-root-ca.crt"
        ])
        .trim(),
        ""
    );
}

#[test]
fn services_get_unique_cluster_ips_and_node_ports() {
    let mut c = Cluster::start();
    let k8s = c.kubectl_ok(&[
        "get",
        "svc",
        "kubernetes",
        "-n",
        "default",
        "-o",
        "jsonpath={.spec.clusterIP}",
    ]);
    assert_eq!(k8s, "10.43.0.1");
    let mut docs = String::new();
    for i in 0..5 {
        docs.push_str(&format!("---\napiVersion: v1\nkind: Service\nmetadata: {{name: s{i}}}\nspec:\n  type: NodePort\n  selector: {{app: s{i}}}\n  ports: [{{port: 80}}]\n"));
    }
    let f = write_manifest(&c, "svcs.yaml", &docs);
    c.kubectl_ok(&["apply", "-f", &f]);
    let ips = c.kubectl_ok(&[
        "get",
        "svc",
        "-o",
        "jsonpath={range .items[*]}{.spec.clusterIP} {.spec.ports[0].nodePort}{\"\\n\"}{end}",
    ]);
    let mut seen_ips = std::collections::HashSet::new();
    let mut seen_ports = std::collections::HashSet::new();
    for line in ips.lines() {
        let mut parts = line.split_whitespace();
        let ip = parts.next().unwrap().to_string();
        assert!(ip.starts_with("10.43."), "{ip}");
        assert!(seen_ips.insert(ip.clone()), "{ip} handed out twice");
        if let Some(port) = parts.next() {
            let port: u32 = port.parse().unwrap();
            assert!((30000..=32767).contains(&port), "{port}");
            assert!(seen_ports.insert(port), "{port} handed out twice");
        }
    }
    assert_eq!(seen_ips.len(), 6);
    assert_eq!(seen_ports.len(), 5);
    let table = c.kubectl_ok(&["get", "svc", "s0"]);
    assert!(
        table.contains("NodePort") && table.contains("80:"),
        "{table}"
    );

    // Asking for a taken address is refused and changes nothing.
    let taken = c.kubectl_ok(&["get", "svc", "s0", "-o", "jsonpath={.spec.clusterIP}"]);
    let dup = write_manifest(&c, "dup.yaml", &format!("apiVersion: v1\nkind: Service\nmetadata: {{name: dup}}\nspec:\n  clusterIP: {taken}\n  ports: [{{port: 80}}]\n"));
    expect_error(&c, &["create", "-f", &dup], "already allocated");
    // The address cannot change.
    expect_error(
        &c,
        &[
            "patch",
            "svc",
            "s1",
            "--type=merge",
            "-p",
            r#"{"spec":{"clusterIP":"10.43.99.99"}}"#,
        ],
        "may not change once set",
    );

    // A restart keeps the reservations; a delete frees them for reuse.
    c.restart();
    let again = write_manifest(&c, "again.yaml", &format!("apiVersion: v1\nkind: Service\nmetadata: {{name: again}}\nspec:\n  clusterIP: {taken}\n  ports: [{{port: 80}}]\n"));
    assert!(
        !c.kubectl(&["create", "-f", &again]).status.success(),
        "a reserved address was handed out after restart"
    );
    c.kubectl_ok(&["delete", "svc", "s0"]);
    c.kubectl_ok(&["create", "-f", &again]);
    assert_eq!(
        c.kubectl_ok(&["get", "svc", "again", "-o", "jsonpath={.spec.clusterIP}"]),
        taken
    );
}

#[test]
fn scale_through_the_scale_subresource() {
    let c = Cluster::start();
    let f = write_manifest(&c, "app.yaml", APP);
    c.kubectl_ok(&["apply", "-f", &f]);
    let out = c.kubectl_ok(&["scale", "deployment", "web", "--replicas=4"]);
    assert!(out.contains("deployment.apps/web scaled"), "{out}");
    assert_eq!(
        c.kubectl_ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]),
        "4"
    );
    let scale: serde_json::Value = serde_json::from_str(&c.kubectl_ok(&[
        "get",
        "--raw",
        "/apis/apps/v1/namespaces/default/deployments/web/scale",
    ]))
    .unwrap();
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["spec"]["replicas"], 4);
    assert_eq!(scale["status"]["selector"], "app=web");
    let out = c.kubectl(&["scale", "deployment", "web", "--replicas=-1"]);
    assert!(!out.status.success());
}

#[test]
fn explain_and_server_side_field_validation() {
    let c = Cluster::start();
    let out = c.kubectl_ok(&["explain", "deployment.spec.replicas"]);
    assert!(
        out.contains("KIND:       Deployment") || out.contains("KIND:     Deployment"),
        "{out}"
    );
    assert!(out.contains("replicas <integer>"), "{out}");
    assert!(out.contains("Number of desired pods"), "{out}");
    let out = c.kubectl_ok(&["explain", "pods.spec.containers.image"]);
    assert!(out.contains("image <string>"), "{out}");

    let typo =
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: typo}\ndata: {a: b}\ndta: {c: d}\n";
    let f = write_manifest(&c, "typo.yaml", typo);
    let out = c.kubectl(&["apply", "-f", &f]);
    assert!(
        !out.status.success(),
        "an unknown field passed strict validation"
    );
    assert!(
        stderr(&out).contains(r#"unknown field "dta""#),
        "{}",
        stderr(&out)
    );
    assert!(
        !c.kubectl(&["get", "cm", "typo"]).status.success(),
        "a refused object was stored"
    );
    // Without validation the unknown field is dropped, as Kubernetes drops it.
    c.kubectl_ok(&["apply", "-f", &f, "--validate=false"]);
    let stored: serde_json::Value =
        serde_json::from_str(&c.kubectl_ok(&["get", "cm", "typo", "-o", "json"])).unwrap();
    assert!(stored.get("dta").is_none(), "{stored}");
    assert_eq!(stored["data"]["a"], "b");

    let wrong_type = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: w}\nspec:\n  replicas: many\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec: {containers: [{name: c, image: busybox}]}\n";
    let f = write_manifest(&c, "wrong.yaml", wrong_type);
    let out = c.kubectl(&["apply", "-f", &f, "--validate=false"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("BadRequest") || stderr(&out).contains("cannot be handled"),
        "{}",
        stderr(&out)
    );
}

/// kubectl 1.32 and later send these as Kubernetes protobuf.
#[test]
fn imperative_creates() {
    let c = Cluster::start();
    c.kubectl_ok(&["create", "namespace", "team-b"]);
    c.kubectl_ok(&[
        "create",
        "configmap",
        "app",
        "-n",
        "team-b",
        "--from-literal=a=1",
        "--from-literal=b=2",
    ]);
    c.kubectl_ok(&[
        "create",
        "secret",
        "generic",
        "pw",
        "-n",
        "team-b",
        "--from-literal=password=hunter2",
    ]);
    c.kubectl_ok(&[
        "create",
        "deployment",
        "web",
        "-n",
        "team-b",
        "--image=busybox:1.36",
        "--replicas=3",
    ]);
    c.kubectl_ok(&[
        "create",
        "deployment",
        "none",
        "-n",
        "team-b",
        "--image=busybox:1.36",
        "--replicas=0",
    ]);
    c.kubectl_ok(&[
        "create",
        "service",
        "clusterip",
        "web",
        "-n",
        "team-b",
        "--tcp=80:8080",
    ]);

    let cm: serde_json::Value =
        serde_json::from_str(&c.kubectl_ok(&["get", "cm", "app", "-n", "team-b", "-o", "json"]))
            .unwrap();
    assert_eq!(cm["data"], serde_json::json!({"a": "1", "b": "2"}));
    assert_eq!(
        c.kubectl_ok(&[
            "get",
            "secret",
            "pw",
            "-n",
            "team-b",
            "-o",
            "jsonpath={.data.password}"
        ]),
        "aHVudGVyMg=="
    );
    let d: serde_json::Value = serde_json::from_str(
        &c.kubectl_ok(&["get", "deploy", "web", "-n", "team-b", "-o", "json"]),
    )
    .unwrap();
    assert_eq!(d["spec"]["replicas"], 3);
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "busybox:1.36"
    );
    assert_eq!(d["spec"]["strategy"]["type"], "RollingUpdate");
    assert!(d["spec"]["template"]["metadata"]
        .get("creationTimestamp")
        .is_none());
    assert_eq!(
        c.kubectl_ok(&[
            "get",
            "deploy",
            "none",
            "-n",
            "team-b",
            "-o",
            "jsonpath={.spec.replicas}"
        ]),
        "0",
        "an explicit zero is kept"
    );
    let svc: serde_json::Value =
        serde_json::from_str(&c.kubectl_ok(&["get", "svc", "web", "-n", "team-b", "-o", "json"]))
            .unwrap();
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], 8080);
    assert_eq!(svc["spec"]["sessionAffinity"], "None");
    assert!(svc["spec"]["ports"][0].get("nodePort").is_none(), "{svc}");
    assert!(svc["spec"]["clusterIP"]
        .as_str()
        .unwrap()
        .starts_with("10.43."));
}

#[test]
fn pod_binding_and_oversized_bodies() {
    let c = Cluster::start();
    let pod = write_manifest(&c, "pod.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: busybox}]\n");
    c.kubectl_ok(&["apply", "-f", &pod]);
    let binding = write_manifest(
        &c,
        "binding.json",
        r#"{"apiVersion":"v1","kind":"Binding","metadata":{"name":"p"},"target":{"apiVersion":"v1","kind":"Node","name":"node-a"}}"#,
    );
    c.kubectl_ok(&[
        "create",
        "--raw",
        "/api/v1/namespaces/default/pods/p/binding",
        "-f",
        &binding,
    ]);
    let p: serde_json::Value =
        serde_json::from_str(&c.kubectl_ok(&["get", "pod", "p", "-o", "json"])).unwrap();
    assert_eq!(p["spec"]["nodeName"], "node-a");
    assert!(p["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["type"] == "PodScheduled" && c["status"] == "True"));
    let again = c.kubectl(&[
        "create",
        "--raw",
        "/api/v1/namespaces/default/pods/p/binding",
        "-f",
        &binding,
    ]);
    assert!(
        stderr(&again).contains("already assigned to node"),
        "{}",
        stderr(&again)
    );
    let wide = c.kubectl_ok(&["get", "pod", "p", "-o", "wide"]);
    assert!(wide.contains("node-a"), "{wide}");

    // A body over 3 MiB is refused before it is read whole.
    let big = format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"big"}},"data":{{"x":"{}"}}}}"#,
        "y".repeat(4 << 20)
    );
    let f = write_manifest(&c, "big.json", &big);
    let out = c.kubectl(&[
        "create",
        "--raw",
        "/api/v1/namespaces/default/configmaps",
        "-f",
        &f,
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Request entity too large")
            || stderr(&out).contains("413")
            || stderr(&out).contains("RequestEntityTooLarge"),
        "{}",
        stderr(&out)
    );
    assert!(!c.kubectl(&["get", "cm", "big"]).status.success());
}

#[test]
fn edit_diff_expose_and_evict() {
    let c = Cluster::start();
    let f = write_manifest(&c, "app.yaml", APP);
    c.kubectl_ok(&["apply", "-f", &f]);
    // kubectl edit with a scripted editor.
    let out = kubectl_command(Path::new("kubectl"), &c.kubeconfig())
        .args(["edit", "deployment", "web"])
        .env("EDITOR", "sed -i s/replicas:\\ 2/replicas:\\ 4/")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        c.kubectl_ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]),
        "4"
    );
    // kubectl diff shows what apply would change, and changes nothing.
    let changed = write_manifest(&c, "changed.yaml", &APP.replace("mode: fast", "mode: slow"));
    let out = c.kubectl(&["diff", "-f", &changed]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let diff = String::from_utf8_lossy(&out.stdout);
    assert!(
        diff.contains("-  mode: fast") && diff.contains("+  mode: slow"),
        "{diff}"
    );
    assert!(!diff.contains("annotations: {}"), "{diff}");
    assert_eq!(
        c.kubectl_ok(&["get", "cm", "settings", "-o", "jsonpath={.data.mode}"]),
        "fast"
    );
    // expose makes a Service from the deployment's selector.
    c.kubectl_ok(&["expose", "deployment", "web", "--port=8080", "--name=web-x"]);
    let sel = c.kubectl_ok(&["get", "svc", "web-x", "-o", "jsonpath={.spec.selector.app}"]);
    assert_eq!(sel, "web");
    // Eviction of a pod no node holds deletes it.
    let pod = write_manifest(&c, "pod.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: evictme}\nspec:\n  containers: [{name: c, image: busybox}]\n");
    c.kubectl_ok(&["apply", "-f", &pod]);
    let ev = write_manifest(
        &c,
        "eviction.json",
        r#"{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"evictme","namespace":"default"}}"#,
    );
    c.kubectl_ok(&[
        "create",
        "--raw",
        "/api/v1/namespaces/default/pods/evictme/eviction",
        "-f",
        &ev,
    ]);
    assert!(!c.kubectl(&["get", "pod", "evictme"]).status.success());
}

#[test]
fn streaming_lists_and_older_kubectl_minors() {
    let c = Cluster::start();
    let f = write_manifest(&c, "app.yaml", APP);
    c.kubectl_ok(&["apply", "-f", &f]);
    // A list as a watch stream: the state as ADDED events, then a bookmark
    // that marks the end of the initial events.
    let out = c.kubectl_ok(&[
        "get",
        "--raw",
        "/api/v1/namespaces/default/configmaps?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=1&labelSelector=app%3Dweb",
    ]);
    let events: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events[0]["type"], "ADDED");
    assert_eq!(events[0]["object"]["metadata"]["name"], "settings");
    let bookmark = &events[1];
    assert_eq!(bookmark["type"], "BOOKMARK");
    assert_eq!(
        bookmark["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    let bad = c.kubectl(&[
        "get",
        "--raw",
        "/api/v1/namespaces/default/configmaps?watch=1&sendInitialEvents=true",
    ]);
    assert!(stderr(&bad).contains("NotOlderThan"), "{}", stderr(&bad));

    // The kubectl minors installed beside the default one work too.
    let dir = Path::new("/usr/lib/google-cloud-sdk/bin");
    let mut tried = 0;
    for minor in 27..=33 {
        let bin = dir.join(format!("kubectl.1.{minor}"));
        if !bin.exists() {
            continue;
        }
        tried += 1;
        let out = kubectl_command(&bin, &c.kubeconfig())
            .args(["get", "deployments", "-o", "name"])
            .output()
            .unwrap();
        assert!(out.status.success(), "kubectl 1.{minor}: {}", stderr(&out));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "deployment.apps/web",
            "kubectl 1.{minor}"
        );
        // Apply with validation on: v3 for newer minors, v2 (protobuf) for 1.27/1.28.
        let out = kubectl_command(&bin, &c.kubeconfig())
            .args(["apply", "-f", &f])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "kubectl 1.{minor} apply: {}",
            stderr(&out)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("deployment.apps/web unchanged"),
            "kubectl 1.{minor}"
        );
    }
    assert!(
        tried > 0,
        "no versioned kubectl found under {}",
        dir.display()
    );
}

#[test]
fn metrics_count_requests() {
    let c = Cluster::start();
    c.kubectl_ok(&["get", "configmaps"]);
    let _ = c.kubectl(&["get", "configmap", "missing"]);
    let text = c.kubectl_ok(&["get", "--raw", "/metrics"]);
    assert!(
        text.contains(r#"apiserver_request_total{verb="list",resource="configmaps",code="200"}"#),
        "{text}"
    );
    assert!(
        text.contains(r#"apiserver_request_total{verb="get",resource="configmaps",code="404"} 1"#),
        "{text}"
    );
    assert!(text.contains("ferrokube_watch_cache_revision"), "{text}");
}

#[test]
fn unknown_fields_warn_when_asked_to() {
    let c = Cluster::start();
    let f = write_manifest(
        &c,
        "typo.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: w}\ndta: {c: d}\n",
    );
    let out = c.kubectl(&["apply", "-f", &f, "--validate=warn"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(r#"Warning: unknown field "dta""#),
        "{}",
        stderr(&out)
    );
    let stored: serde_json::Value =
        serde_json::from_str(&c.kubectl_ok(&["get", "cm", "w", "-o", "json"])).unwrap();
    assert!(stored.get("dta").is_none());
}

#[test]
fn immutable_fields_stay() {
    let c = Cluster::start();
    let f = write_manifest(&c, "app.yaml", APP);
    c.kubectl_ok(&["apply", "-f", &f]);
    expect_error(
        &c,
        &[
            "patch",
            "deploy",
            "web",
            "--type=merge",
            "-p",
            r#"{"spec":{"selector":{"matchLabels":{"app":"other"}}}}"#,
        ],
        "field is immutable",
    );
    let frozen = write_manifest(&c, "frozen.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: frozen}\nimmutable: true\ndata: {a: b}\n");
    c.kubectl_ok(&["apply", "-f", &frozen]);
    expect_error(
        &c,
        &[
            "patch",
            "cm",
            "frozen",
            "--type=merge",
            "-p",
            r#"{"data":{"a":"c"}}"#,
        ],
        "field is immutable",
    );
    assert_eq!(
        c.kubectl_ok(&["get", "cm", "frozen", "-o", "jsonpath={.data.a}"]),
        "b"
    );
}

#[test]
fn apply_removes_what_the_manifest_no_longer_has() {
    let c = Cluster::start();
    let f = write_manifest(&c, "app.yaml", APP);
    c.kubectl_ok(&["apply", "-f", &f]);
    // The same deployment without its sidecar, with an env var on web.
    let slim = APP
        .replace("      - name: sidecar\n        image: busybox:1.36\n", "")
        .replace(
            "        ports: [{containerPort: 80}]\n",
            "        ports: [{containerPort: 80}]\n        env: [{name: MODE, value: slim}]\n",
        );
    let f2 = write_manifest(&c, "slim.yaml", &slim);
    let out = c.kubectl_ok(&["apply", "-f", &f2]);
    assert!(out.contains("deployment.apps/web configured"), "{out}");
    let d: serde_json::Value =
        serde_json::from_str(&c.kubectl_ok(&["get", "deploy", "web", "-o", "json"])).unwrap();
    let cs = d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(cs.len(), 1, "{cs:?}");
    assert_eq!(cs[0]["name"], "web");
    assert_eq!(cs[0]["env"][0]["value"], "slim");
    assert_eq!(cs[0]["ports"][0]["containerPort"], 80);
}

#[test]
fn server_side_apply_owns_fields_and_reports_conflicts() {
    let c = Cluster::start();
    let f = write_manifest(&c, "app.yaml", APP);
    let out = c.kubectl_ok(&["apply", "--server-side", "-f", &f]);
    assert!(
        out.contains("deployment.apps/web serverside-applied"),
        "{out}"
    );
    let d: serde_json::Value = serde_json::from_str(&c.kubectl_ok(&[
        "get",
        "deploy",
        "web",
        "-o",
        "json",
        "--show-managed-fields",
    ]))
    .unwrap();
    let managed = d["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields");
    let apply = managed
        .iter()
        .find(|m| m["operation"] == "Apply")
        .expect("an Apply entry");
    assert_eq!(apply["manager"], "kubectl");
    assert!(
        apply["fieldsV1"]["f:spec"]["f:replicas"].is_object(),
        "{apply}"
    );
    // Someone else changes replicas; a later apply of another value conflicts.
    c.kubectl_ok(&["scale", "deployment", "web", "--replicas=5"]);
    let three = write_manifest(&c, "three.yaml", &APP.replace("replicas: 2", "replicas: 3"));
    let out = c.kubectl(&["apply", "--server-side", "-f", &three]);
    assert!(!out.status.success(), "the conflicting apply succeeded");
    let err = stderr(&out);
    assert!(
        err.contains("Apply failed with 1 conflict") && err.contains(".spec.replicas"),
        "{err}"
    );
    assert_eq!(
        c.kubectl_ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]),
        "5"
    );
    // Forced, the apply takes the field over.
    c.kubectl_ok(&["apply", "--server-side", "--force-conflicts", "-f", &three]);
    assert_eq!(
        c.kubectl_ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]),
        "3"
    );
    // Applying the same again changes nothing.
    let rv = c.kubectl_ok(&[
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={.metadata.resourceVersion}",
    ]);
    c.kubectl_ok(&["apply", "--server-side", "-f", &three]);
    assert_eq!(
        c.kubectl_ok(&[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.metadata.resourceVersion}"
        ]),
        rv
    );
    // A field dropped from the applied configuration goes.
    let no_sidecar = write_manifest(
        &c,
        "nosidecar.yaml",
        &APP.replace("replicas: 2", "replicas: 3")
            .replace("      - name: sidecar\n        image: busybox:1.36\n", ""),
    );
    c.kubectl_ok(&["apply", "--server-side", "-f", &no_sidecar]);
    let names = c.kubectl_ok(&[
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={.spec.template.spec.containers[*].name}",
    ]);
    assert_eq!(names, "web");
}

/// `kubectl delete --cascade=orphan|foreground|background` on an owner
/// with a dependent: the garbage collector carries out each policy.
#[test]
fn delete_cascade_policies() {
    let c = Cluster::start();
    let make = |tag: &str| {
        let f = write_manifest(
            &c,
            &format!("owner-{tag}.yaml"),
            &format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: owner-{tag}}}\n"),
        );
        c.kubectl_ok(&["apply", "-f", &f]);
        let uid = c.kubectl_ok(&[
            "get",
            "cm",
            &format!("owner-{tag}"),
            "-o",
            "jsonpath={.metadata.uid}",
        ]);
        let f = write_manifest(
            &c,
            &format!("child-{tag}.yaml"),
            &format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: child-{tag}\n  ownerReferences:\n  - {{apiVersion: v1, kind: ConfigMap, name: owner-{tag}, uid: {uid}, blockOwnerDeletion: true}}\n"),
        );
        c.kubectl_ok(&["apply", "-f", &f]);
    };

    // Orphan: the dependent stays, without its reference.
    make("o");
    c.kubectl_ok(&[
        "delete",
        "cm",
        "owner-o",
        "--cascade=orphan",
        "--timeout=30s",
    ]);
    let refs = c.kubectl_ok(&[
        "get",
        "cm",
        "child-o",
        "-o",
        "jsonpath={.metadata.ownerReferences}",
    ]);
    assert_eq!(refs.trim(), "", "the orphan keeps no reference");

    // Foreground: kubectl returns once the owner is gone, and the owner
    // goes only after its blocking dependent.
    make("f");
    c.kubectl_ok(&[
        "delete",
        "cm",
        "owner-f",
        "--cascade=foreground",
        "--timeout=30s",
    ]);
    let left = c.kubectl(&["get", "cm", "child-f", "owner-f", "-o", "name"]);
    assert!(
        String::from_utf8_lossy(&left.stdout).trim().is_empty(),
        "both gone: {}",
        String::from_utf8_lossy(&left.stdout)
    );

    // Background (the default): the owner goes at once, the dependent soon.
    make("b");
    c.kubectl_ok(&["delete", "cm", "owner-b", "--cascade=background"]);
    c.kubectl_ok(&["wait", "--for=delete", "cm/child-b", "--timeout=30s"]);
    assert_eq!(
        c.kubectl_ok(&["get", "cm", "child-o", "-o", "name"]).trim(),
        "configmap/child-o",
        "the orphan is still there"
    );
}

/// A pod spec with a volume of each source users write and probes of each
/// kind. Every field Kubernetes defaults is written out, so what `kubectl get`
/// shows must be exactly what was sent.
fn volumes_pod_spec() -> serde_json::Value {
    serde_json::json!({
        "restartPolicy": "Never",
        "volumes": [
            {"name": "scratch", "emptyDir": {}},
            {"name": "memory", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
            {"name": "settings", "configMap": {"name": "app-config", "defaultMode": 420,
                "items": [{"key": "a", "path": "a.conf"}]}},
            {"name": "creds", "secret": {"secretName": "db", "defaultMode": 256, "optional": true}},
            {"name": "info", "downwardAPI": {"defaultMode": 420, "items": [
                {"path": "labels", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.labels"}}]}},
            {"name": "all", "projected": {"defaultMode": 420, "sources": [
                {"configMap": {"name": "app-config"}},
                {"secret": {"name": "db", "items": [{"key": "user", "path": "user"}]}},
                {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}},
                {"downwardAPI": {"items": [
                    {"path": "name", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}]}}]}}
        ],
        "containers": [{
            "name": "app",
            "image": "busybox:1.36",
            "command": ["sleep", "3600"],
            "env": [{"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "app-config", "key": "mode"}}}],
            "envFrom": [{"secretRef": {"name": "db"}}],
            "livenessProbe": {"exec": {"command": ["cat", "/tmp/healthy"]}, "initialDelaySeconds": 2,
                "timeoutSeconds": 1, "periodSeconds": 5, "successThreshold": 1, "failureThreshold": 3},
            "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"},
                "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3},
            "lifecycle": {"preStop": {"exec": {"command": ["sleep", "1"]}}},
            "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"},
                             {"name": "settings", "mountPath": "/etc/app"}]
        }]
    })
}

/// `kubectl create job --from=cronjob/...` sends the Job, with the whole pod
/// template, as protobuf (as client-go and every controller do): the volume
/// sources, probes and key selectors must arrive as sent.
#[test]
fn a_pod_template_sent_as_protobuf_keeps_its_volume_sources_and_probes() {
    let c = Cluster::start();
    let spec = volumes_pod_spec();
    let cronjob = serde_json::json!({
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "nightly"},
        "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {"spec": spec}}}}
    });
    let path = write_manifest(&c, "nightly.json", &cronjob.to_string());
    c.kubectl_ok(&["create", "-f", &path]);
    // -v=8 shows the body's media type.
    let out = c.kubectl(&["create", "job", "manual", "--from=cronjob/nightly", "-v=8"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Content-Type: application/vnd.kubernetes.protobuf"),
        "kubectl sent no protobuf body: {}",
        stderr(&out)
    );
    let job: serde_json::Value =
        serde_json::from_str(&c.kubectl_ok(&["get", "job", "manual", "-o", "json"])).unwrap();
    let got = &job["spec"]["template"]["spec"];
    assert_eq!(got["volumes"], spec["volumes"]);
    let (want, have) = (&spec["containers"][0], &got["containers"][0]);
    for field in [
        "livenessProbe",
        "readinessProbe",
        "lifecycle",
        "env",
        "envFrom",
        "volumeMounts",
    ] {
        assert_eq!(have[field], want[field], "{field}");
    }
    c.kubectl_ok(&["delete", "job/manual", "cronjob/nightly"]);
}

/// Whether every value `want` has (nulls aside) is in `have`: the object a
/// client sent, inside the object the server stored and defaulted.
fn sent_fields_kept(want: &serde_json::Value, have: &serde_json::Value, path: &str) -> Vec<String> {
    use serde_json::Value;
    match (want, have) {
        (Value::Null, _) => Vec::new(),
        (Value::Object(w), Value::Object(h)) => w
            .iter()
            .flat_map(|(k, v)| match h.get(k) {
                Some(hv) => sent_fields_kept(v, hv, &format!("{path}.{k}")),
                None if v.is_null() => Vec::new(),
                None => vec![format!("{path}.{k}: sent {v}, missing")],
            })
            .collect(),
        (Value::Array(w), Value::Array(h)) if w.len() == h.len() => w
            .iter()
            .zip(h)
            .enumerate()
            .flat_map(|(i, (a, b))| sent_fields_kept(a, b, &format!("{path}[{i}]")))
            .collect(),
        _ if want == have => Vec::new(),
        _ => vec![format!("{path}: sent {want}, stored {have}")],
    }
}

/// kubectl's generators send their objects as protobuf: what each would send
/// (its `--dry-run=client` JSON, Go's JSON of the same object) is all in what
/// the server stored.
#[test]
#[expect(
    clippy::too_many_lines,
    reason = "a table of objects sent as protobuf and compared field by field"
)]
fn objects_kubectl_sends_as_protobuf_lose_nothing() {
    let c = Cluster::start();
    let creates: &[&[&str]] = &[
        &[
            "deployment",
            "web",
            "--image=nginx:1.27",
            "--replicas=2",
            "--port=80",
        ],
        &["job", "once", "--image=busybox:1.36", "--", "echo", "hi"],
        &[
            "cronjob",
            "tick",
            "--image=busybox:1.36",
            "--schedule=*/5 * * * *",
            "--",
            "date",
        ],
        &[
            "configmap",
            "cfg",
            "--from-literal=a=b",
            "--from-literal=empty=",
        ],
        &["secret", "generic", "sec", "--from-literal=user=admin"],
        &[
            "secret",
            "docker-registry",
            "reg",
            "--docker-server=r.local",
            "--docker-username=u",
            "--docker-password=p",
        ],
        &["service", "clusterip", "svc", "--tcp=80:8080"],
        &["service", "nodeport", "np", "--tcp=81:8081"],
        &["serviceaccount", "robot"],
        &[
            "role",
            "reader",
            "--verb=get,list",
            "--resource=pods,configmaps",
        ],
        &[
            "rolebinding",
            "reader",
            "--role=reader",
            "--user=alice",
            "--serviceaccount=default:robot",
        ],
        &["clusterrole", "nodes", "--verb=get", "--resource=nodes"],
        &[
            "clusterrolebinding",
            "nodes",
            "--clusterrole=nodes",
            "--group=devs",
        ],
        &["quota", "pods", "--hard=pods=10,requests.cpu=2"],
        &[
            "poddisruptionbudget",
            "web",
            "--selector=app=web",
            "--min-available=1",
        ],
        &[
            "priorityclass",
            "high",
            "--value=1000",
            "--description=important",
        ],
        &["namespace", "team"],
        // An IngressRule's http is one of Go's inline structs.
        &[
            "ingress",
            "site",
            "--class=default",
            "--rule=foo.com/bar*=svc:8080,tls=cert",
            "--annotation=a=b",
        ],
    ];
    let mut failures = Vec::new();
    // The command's own flags go before a container command's `--`.
    let with = |args: &[&'static str], flags: &[&'static str]| {
        let at = args.iter().position(|a| *a == "--").unwrap_or(args.len());
        let mut all = vec!["create"];
        all.extend_from_slice(&args[..at]);
        all.extend_from_slice(flags);
        all.extend_from_slice(&args[at..]);
        all
    };
    for args in creates {
        let client = with(args, &["--dry-run=client", "-o", "json"]);
        let want: serde_json::Value = serde_json::from_str(&c.kubectl_ok(&client)).unwrap();
        let out = c.kubectl(&with(args, &["-o", "json", "-v=8"]));
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("Content-Type: application/vnd.kubernetes.protobuf"),
            "{args:?}: kubectl sent no protobuf body"
        );
        let have: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let missing = sent_fields_kept(&want, &have, "");
        if !missing.is_empty() {
            failures.push(format!("{args:?}: {}", missing.join("; ")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
