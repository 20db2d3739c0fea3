//! The real kubectl (v1.32, `/usr/bin/kubectl`) against a tiny loopback HTTP
//! server that serves the generated documents plus minimal discovery:
//! `kubectl explain` prints the schemas' descriptions and `kubectl apply`
//! validates on the server (it sends `fieldValidation=Strict`) without
//! `--validate=false`.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use ferrokube_openapi::{CustomSchema, OpenApi, ResourceDesc};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// One request the server saw: method, path with query, Accept header, body.
type Seen = Arc<Mutex<Vec<(String, String, String, String)>>>;

struct Server {
    port: u16,
    seen: Seen,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn discovery(resources: &[ResourceDesc], path: &str) -> Option<Value> {
    if path == "/api" {
        return Some(
            json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}),
        );
    }
    if path == "/apis" {
        let mut groups: Vec<(&str, &str)> = resources
            .iter()
            .filter(|r| !r.group.is_empty())
            .map(|r| (r.group, r.version))
            .collect();
        groups.sort();
        groups.dedup();
        let groups: Vec<Value> = groups
            .iter()
            .map(|(g, v)| {
                let gv = json!({"groupVersion": format!("{g}/{v}"), "version": v});
                json!({"name": g, "versions": [gv], "preferredVersion": gv})
            })
            .collect();
        return Some(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}));
    }
    let gv = path
        .strip_prefix("/api/")
        .or_else(|| path.strip_prefix("/apis/"))?;
    let list: Vec<Value> = resources
        .iter()
        .filter(|r| if r.group.is_empty() { gv == r.version } else { gv == format!("{}/{}", r.group, r.version) })
        .map(|r| json!({"name": r.plural, "singularName": r.kind.to_lowercase(), "namespaced": r.namespaced, "kind": r.kind, "verbs": r.verbs}))
        .collect();
    if list.is_empty() {
        return None;
    }
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": list}),
    )
}

fn respond(stream: &mut TcpStream, code: u16, body: &[u8]) {
    let head = format!("HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
}

/// What the test server serves.
struct Served {
    api: OpenApi,
    resources: Vec<ResourceDesc>,
    /// One stored object: (path of the item, the object).
    existing: Option<(String, Value)>,
}

fn handle(mut stream: TcpStream, served: &Served, seen: &Seen) {
    let (api, resources) = (&served.api, &served.resources[..]);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (
        parts.next().unwrap_or("").to_string(),
        parts.next().unwrap_or("").to_string(),
    );
    let (mut accept, mut length) = (String::new(), 0usize);
    for _ in 0..100 {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        let (k, v) = h.split_once(':').unwrap_or((&h, ""));
        match k.to_ascii_lowercase().as_str() {
            "accept" => accept = v.trim().to_string(),
            "content-length" => length = v.trim().parse().unwrap_or(0),
            _ => {}
        }
    }
    let mut body = vec![0; length.min(1 << 20)];
    let _ = reader.read_exact(&mut body);
    let text = String::from_utf8_lossy(&body).into_owned();
    seen.lock()
        .unwrap()
        .push((method.clone(), target.clone(), accept.clone(), text));
    let path = target.split('?').next().unwrap_or("");
    if let Some((item, object)) = &served.existing {
        if path == item && (method == "GET" || method == "PATCH") {
            return respond(&mut stream, 200, object.to_string().as_bytes());
        }
    }
    let not_found = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"}).to_string();
    match (method.as_str(), path) {
        ("GET", "/version") => respond(
            &mut stream,
            200,
            br#"{"major":"1","minor":"33","gitVersion":"v1.33.0","platform":"linux/amd64"}"#,
        ),
        ("GET", "/openapi/v3") => respond(&mut stream, 200, &api.v3_root_document().json),
        ("GET", "/openapi/v2") if accept.contains("protobuf") => {
            respond(&mut stream, 200, api.v2_protobuf().0)
        }
        ("GET", "/openapi/v2") => respond(&mut stream, 200, &api.v2().json),
        ("GET", p) if p.starts_with("/openapi/v3/") => {
            match api.v3_group_version(&p["/openapi/v3/".len()..]) {
                Some((json, _)) => respond(&mut stream, 200, json),
                None => respond(&mut stream, 404, not_found.as_bytes()),
            }
        }
        // Creating echoes the object back, as a server that accepted it would.
        ("POST", _) => respond(&mut stream, 201, &body),
        ("GET", p) => match discovery(resources, p) {
            Some(v) => respond(&mut stream, 200, v.to_string().as_bytes()),
            None => respond(&mut stream, 404, not_found.as_bytes()),
        },
        _ => respond(&mut stream, 404, not_found.as_bytes()),
    }
}

fn serve(served: Served) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Seen = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let (seen2, stop2) = (seen.clone(), stop.clone());
    let thread = std::thread::spawn(move || {
        for stream in listener.incoming() {
            if stop2.load(Ordering::SeqCst) {
                break;
            }
            if let Ok(stream) = stream {
                handle(stream, &served, &seen2);
            }
        }
    });
    Server {
        port,
        seen,
        stop,
        thread: Some(thread),
    }
}

struct Kubectl {
    dir: tempfile::TempDir,
}

impl Kubectl {
    fn new(port: u16) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: t\n  cluster:\n    server: http://127.0.0.1:{port}\ncontexts:\n- name: t\n  context:\n    cluster: t\n    user: u\n    namespace: default\nusers:\n- name: u\n  user: {{}}\ncurrent-context: t\n"
        );
        std::fs::write(dir.path().join("config"), config).unwrap();
        Self { dir }
    }

    /// Runs kubectl with `args`; returns (success, stdout, stderr).
    fn run(&self, args: &[&str]) -> (bool, String, String) {
        self.run_binary("/usr/bin/kubectl", args)
    }

    fn run_binary(&self, binary: &str, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(binary)
            .args(args)
            .arg(format!(
                "--kubeconfig={}",
                self.dir.path().join("config").display()
            ))
            .arg(format!(
                "--cache-dir={}",
                self.dir.path().join("cache").display()
            ))
            .arg("--request-timeout=20s")
            .env("HOME", self.dir.path())
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into(),
            String::from_utf8_lossy(&out.stderr).into(),
        )
    }
}

fn setup() -> (Server, Kubectl) {
    let resources = common::resources();
    let server = serve(Served {
        api: OpenApi::build(&resources),
        resources,
        existing: None,
    });
    let kubectl = Kubectl::new(server.port);
    (server, kubectl)
}

#[test]
fn explain_deployment_spec_replicas_prints_the_field_description() {
    let (server, kubectl) = setup();
    let (ok, out, err) = kubectl.run(&["explain", "deployment.spec.replicas"]);
    assert!(ok, "stdout: {out}\nstderr: {err}");
    assert!(out.contains("GROUP:      apps"), "{out}");
    assert!(out.contains("KIND:       Deployment"), "{out}");
    assert!(out.contains("FIELD: replicas <integer>"), "{out}");
    assert!(out.contains("Number of desired pods"), "{out}");
    let seen = server.seen.lock().unwrap().clone();
    eprintln!("{out}\nkubectl fetched: {seen:#?}");
    assert!(
        seen.iter()
            .any(|(_, p, _, _)| p.starts_with("/openapi/v3/apis/apps/v1?hash=")),
        "{seen:?}"
    );
    assert!(
        !seen.iter().any(|(_, p, _, _)| p.starts_with("/openapi/v2")),
        "{seen:?}"
    );
}

#[test]
fn explain_pod_containers_lists_container_fields() {
    let (_server, kubectl) = setup();
    let (ok, out, err) = kubectl.run(&["explain", "pods.spec.containers"]);
    assert!(ok, "stdout: {out}\nstderr: {err}");
    assert!(out.contains("KIND:       Pod"), "{out}");
    assert!(out.contains("FIELD: containers <[]Container>"), "{out}");
    assert!(
        out.contains("image\t<string>")
            || out.contains("image  <string>")
            || out.contains("image <string>"),
        "{out}"
    );
    assert!(
        out.contains("name\t<string> -required-") || out.contains("-required-"),
        "{out}"
    );
}

#[test]
fn apply_with_default_validation_asks_the_server_to_validate_strictly() {
    let (server, kubectl) = setup();
    let manifest = kubectl.dir.path().join("d.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 2\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: c\n        image: busybox\n",
    )
    .unwrap();
    let (ok, out, err) = kubectl.run(&["apply", "-f", manifest.to_str().unwrap()]);
    assert!(ok, "stdout: {out}\nstderr: {err}");
    assert!(out.contains("deployment.apps/web created"), "{out}");
    let seen = server.seen.lock().unwrap().clone();
    eprintln!("kubectl fetched: {seen:#?}");
    let post = seen
        .iter()
        .find(|(m, _, _, _)| m == "POST")
        .expect("a create request");
    assert!(
        post.1
            .starts_with("/apis/apps/v1/namespaces/default/deployments?"),
        "{post:?}"
    );
    assert!(post.1.contains("fieldValidation=Strict"), "{post:?}");
    assert!(
        !seen.iter().any(|(_, p, _, _)| p.starts_with("/openapi/v2")),
        "{seen:?}"
    );
}

#[test]
fn explain_deployment_spec_shows_referenced_types_and_required_fields() {
    let (_server, kubectl) = setup();
    let (ok, out, err) = kubectl.run(&["explain", "deployment.spec"]);
    assert!(ok, "stdout: {out}\nstderr: {err}");
    assert!(out.contains("FIELD: spec <DeploymentSpec>"), "{out}");
    assert!(
        out.contains("template\t<PodTemplateSpec> -required-"),
        "{out}"
    );
    assert!(
        out.contains("selector\t<LabelSelector> -required-"),
        "{out}"
    );
    assert!(out.contains("replicas\t<integer>"), "{out}");
    let (ok, out, err) = kubectl.run(&["explain", "clusterrolebindings.roleRef"]);
    assert!(ok, "stdout: {out}\nstderr: {err}");
    assert!(
        out.contains("GROUP:      rbac.authorization.k8s.io"),
        "{out}"
    );
    assert!(out.contains("apiGroup\t<string> -required-"), "{out}");
}

/// The test server's resources plus a custom resource, `crontabs` of
/// `stable.example.com/v1`, published from its CRD schema.
fn setup_custom() -> (Server, Kubectl) {
    let mut resources = common::resources();
    resources.push(ResourceDesc {
        group: "stable.example.com",
        version: "v1",
        kind: "CronTab",
        plural: "crontabs",
        namespaced: true,
        verbs: &[
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ],
        subresources: &["status"],
    });
    let crontab = CustomSchema {
        group: "stable.example.com".into(),
        version: "v1".into(),
        kind: "CronTab".into(),
        list_kind: "CronTabList".into(),
        plural: "crontabs".into(),
        schema: Some(json!({
            "type": "object",
            "description": "CronTab runs a command on a schedule.",
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["cronSpec"],
                    "properties": {
                        "cronSpec": {"type": "string", "description": "The schedule, in cron format."},
                        "replicas": {"type": "integer", "description": "How many run at once.", "nullable": true},
                    },
                },
            },
        })),
        preserve_unknown_fields: false,
        selectable_fields: Vec::new(),
    };
    let server = serve(Served {
        api: OpenApi::build_with_custom(&resources, None, &[crontab]),
        resources,
        existing: None,
    });
    let kubectl = Kubectl::new(server.port);
    (server, kubectl)
}

#[test]
fn explain_custom_resource_prints_its_crd_schema() {
    let (_server, kubectl) = setup_custom();
    let (ok, out, err) = kubectl.run(&["explain", "crontabs"]);
    assert!(ok, "stdout: {out}\nstderr: {err}");
    assert!(out.contains("GROUP:      stable.example.com"), "{out}");
    assert!(out.contains("KIND:       CronTab"), "{out}");
    assert!(
        out.contains("CronTab runs a command on a schedule."),
        "{out}"
    );
    assert!(out.contains("metadata\t<ObjectMeta>"), "{out}");
    let (ok, out, err) = kubectl.run(&["explain", "crontabs.spec"]);
    assert!(ok, "stdout: {out}\nstderr: {err}");
    assert!(out.contains("cronSpec\t<string> -required-"), "{out}");
    let (ok, out, err) = kubectl.run(&["explain", "crontabs.spec.cronSpec"]);
    assert!(ok, "stdout: {out}\nstderr: {err}");
    assert!(out.contains("FIELD: cronSpec <string>"), "{out}");
    assert!(out.contains("The schedule, in cron format."), "{out}");
    let (ok, out, err) = kubectl.run(&["explain", "crontabs.metadata.name"]);
    assert!(ok, "stdout: {out}\nstderr: {err}");
    assert!(out.contains("FIELD: name <string>"), "{out}");
}

/// `explain --output=plaintext-openapiv2` reads the Swagger 2.0 document
/// (as protobuf).
#[test]
fn explain_from_v2_shows_custom_resources_as_kubernetes_converts_them() {
    let (server, kubectl) = setup_custom();
    let (ok, out, err) = kubectl.run(&["explain", "crontabs.spec", "--output=plaintext-openapiv2"]);
    assert!(ok, "stdout: {out}\nstderr: {err}");
    assert!(out.contains("KIND:     CronTab"), "{out}");
    assert!(out.contains("cronSpec\t<string> -required-"), "{out}");
    // The nullable field is untyped in v2, as Kubernetes publishes it.
    assert!(out.contains("replicas\t<>"), "{out}");
    let seen = server.seen.lock().unwrap().clone();
    assert!(
        seen.iter().any(|(_, p, _, _)| p.starts_with("/openapi/v2")),
        "{seen:?}"
    );
}

#[test]
fn creating_a_custom_resource_asks_the_server_to_validate_strictly() {
    let (server, kubectl) = setup_custom();
    let manifest = kubectl.dir.path().join("ct.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: stable.example.com/v1\nkind: CronTab\nmetadata:\n  name: nightly\nspec:\n  cronSpec: '* * * * */5'\n",
    )
    .unwrap();
    let (ok, out, err) = kubectl.run(&["create", "-f", manifest.to_str().unwrap()]);
    assert!(ok, "stdout: {out}\nstderr: {err}");
    assert!(
        out.contains("crontab.stable.example.com/nightly created"),
        "{out}"
    );
    let seen = server.seen.lock().unwrap().clone();
    let post = seen
        .iter()
        .find(|(m, _, _, _)| m == "POST")
        .expect("a create request");
    assert!(
        post.1
            .starts_with("/apis/stable.example.com/v1/namespaces/default/crontabs?"),
        "{post:?}"
    );
    assert!(post.1.contains("fieldValidation=Strict"), "{post:?}");
}

/// kubectl 1.29 to 1.33 (from the Cloud SDK) read the same documents.
#[test]
fn other_kubectl_minors_explain_from_the_v3_documents() {
    let (_server, kubectl) = setup();
    for minor in 29..=33 {
        let binary = format!("/usr/lib/google-cloud-sdk/bin/kubectl.1.{minor}");
        let (ok, out, err) =
            kubectl.run_binary(&binary, &["explain", "statefulsets.spec.serviceName"]);
        assert!(ok, "1.{minor}: stdout: {out}\nstderr: {err}");
        assert!(
            out.contains("FIELD: serviceName <string>"),
            "1.{minor}: {out}"
        );
    }
}

const APPLIED: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: default\nspec:\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: a\n        image: busybox\n      - name: b\n        image: busybox\n";

/// Applies a manifest dropping container `b` over a stored Deployment last
/// applied with containers `a` and `b`; returns the PATCH body kubectl sent.
fn apply_patch_body(api: OpenApi) -> String {
    let resources = common::resources();
    let mut stored: Value = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "resourceVersion": "5", "uid": "u1"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
            {"name": "a", "image": "busybox", "imagePullPolicy": "Always"},
            {"name": "b", "image": "busybox", "imagePullPolicy": "Always"}]}}}
    });
    let last: Value = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
            {"name": "a", "image": "busybox"}, {"name": "b", "image": "busybox"}]}}}
    });
    stored["metadata"]["annotations"] =
        json!({"kubectl.kubernetes.io/last-applied-configuration": last.to_string()});
    let item = "/apis/apps/v1/namespaces/default/deployments/web".to_string();
    let server = serve(Served {
        api,
        resources,
        existing: Some((item.clone(), stored)),
    });
    let kubectl = Kubectl::new(server.port);
    let manifest = kubectl.dir.path().join("d.yaml");
    std::fs::write(
        &manifest,
        APPLIED.replace("      - name: b\n        image: busybox\n", ""),
    )
    .unwrap();
    let (ok, out, err) = kubectl.run(&["apply", "-f", manifest.to_str().unwrap()]);
    assert!(ok, "stdout: {out}\nstderr: {err}");
    assert!(out.contains("deployment.apps/web configured"), "{out}");
    let seen = server.seen.lock().unwrap().clone();
    let patch = seen
        .iter()
        .find(|(m, p, _, _)| m == "PATCH" && p.starts_with(&item))
        .expect("a patch request");
    assert!(patch.1.contains("fieldValidation=Strict"), "{patch:?}");
    patch.3.clone()
}

#[test]
fn apply_computes_a_strategic_merge_patch_from_the_served_merge_keys() {
    let lookup = |schema: &str, field: &str| {
        (schema == "io.k8s.api.core.v1.PodSpec" && field == "containers").then_some(
            ferrokube_openapi::ListPatch {
                strategy: Some("merge"),
                merge_key: Some("name"),
                list_type: Some("map"),
                list_map_keys: &["name"],
            },
        )
    };
    let resources = common::resources();
    let body = apply_patch_body(OpenApi::build_with_patch_meta(&resources, Some(&lookup)));
    let patch: Value = serde_json::from_str(&body).unwrap();
    let spec = &patch["spec"]["template"]["spec"];
    // Merging by name: the dropped container is deleted by key, the order kept.
    assert_eq!(
        spec["$setElementOrder/containers"],
        json!([{"name": "a"}]),
        "{body}"
    );
    assert_eq!(
        spec["containers"],
        json!([{"$patch": "delete", "name": "b"}]),
        "{body}"
    );

    // Without merge keys the schema says the list is atomic: kubectl sends it whole.
    let body = apply_patch_body(OpenApi::build(&resources));
    let patch: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        patch["spec"]["template"]["spec"]["containers"],
        json!([{"name": "a", "image": "busybox"}]),
        "{body}"
    );
}

/// kubectl 1.27 and 1.28 read `/openapi/v2` as protobuf for explain and for
/// apply's validation.
#[test]
fn older_kubectl_explains_and_applies_from_the_v2_protobuf_document() {
    for minor in [27, 28] {
        let (server, kubectl) = setup();
        let binary = format!("/usr/lib/google-cloud-sdk/bin/kubectl.1.{minor}");
        let (ok, out, err) = kubectl.run_binary(&binary, &["explain", "deployment.spec.replicas"]);
        assert!(ok, "1.{minor}: stdout: {out}\nstderr: {err}");
        assert!(out.contains("Number of desired pods"), "1.{minor}: {out}");
        let (ok, out, err) = kubectl.run_binary(&binary, &["explain", "pods.spec.containers"]);
        assert!(ok, "1.{minor}: stdout: {out}\nstderr: {err}");
        assert!(out.contains("image\t<string>"), "1.{minor}: {out}");
        let manifest = kubectl.dir.path().join("d.yaml");
        std::fs::write(&manifest, APPLIED).unwrap();
        let (ok, out, err) =
            kubectl.run_binary(&binary, &["apply", "-f", manifest.to_str().unwrap()]);
        assert!(ok, "1.{minor}: stdout: {out}\nstderr: {err}");
        assert!(
            out.contains("deployment.apps/web created"),
            "1.{minor}: {out}"
        );
        let seen = server.seen.lock().unwrap().clone();
        assert!(
            seen.iter()
                .any(|(_, p, a, _)| p.starts_with("/openapi/v2") && a.contains("protobuf")),
            "{seen:?}"
        );
        let post = seen
            .iter()
            .find(|(m, _, _, _)| m == "POST")
            .expect("a create request");
        assert!(
            post.1.contains("fieldValidation=Strict"),
            "1.{minor}: {post:?}"
        );
    }
}

#[test]
fn explain_recursive_other_groups_and_the_v2_output() {
    let (_server, kubectl) = setup();
    let (ok, out, err) = kubectl.run(&["explain", "deployments", "--recursive"]);
    assert!(ok, "stdout: {out}\nstderr: {err}");
    assert!(out.contains("revisionHistoryLimit\t<integer>"), "{out}");
    assert!(
        out.contains("containers\t<[]Container> -required-"),
        "{out}"
    );
    let (ok, out, err) = kubectl.run(&["explain", "horizontalpodautoscalers.spec.metrics"]);
    assert!(ok, "stdout: {out}\nstderr: {err}");
    assert!(
        out.contains("GROUP:      autoscaling") && out.contains("VERSION:    v2"),
        "{out}"
    );
    assert!(out.contains("type\t<string> -required-"), "{out}");
    let (ok, out, err) = kubectl.run(&["explain", "events", "--api-version=events.k8s.io/v1"]);
    assert!(ok, "stdout: {out}\nstderr: {err}");
    assert!(out.contains("GROUP:      events.k8s.io"), "{out}");
    assert!(
        out.contains("eventTime is the time when this Event was first observed"),
        "{out}"
    );
    // kubectl 1.32's v2 renderer reads the protobuf document.
    let (ok, out, err) = kubectl.run(&[
        "explain",
        "statefulsets.spec.serviceName",
        "--output=plaintext-openapiv2",
    ]);
    assert!(ok, "stdout: {out}\nstderr: {err}");
    assert!(
        out.contains("FIELD:    serviceName <string>")
            || out.contains("FIELD: serviceName <string>"),
        "{out}"
    );
}
