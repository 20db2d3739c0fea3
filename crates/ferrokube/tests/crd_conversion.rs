//! A CustomResourceDefinition's versions with the real kubectl, as
//! Kubernetes' conformance tests of conversion use them:
//!
//! - `None`: an object written through v1 reads through v2 as v2; the
//!   storage version moves and `status.storedVersions` records it; a CRD
//!   being deleted takes no new objects, in Kubernetes' words;
//! - `Webhook`: a conversion webhook (HTTPS on loopback, its certificate
//!   from a CA the test makes and gives in `caBundle`) turning v1's
//!   `spec.hostPort: "host:port"` into v2's `spec.host` and `spec.port`, as
//!   Kubernetes' e2e webhook does: reads through both versions, a list
//!   mixing objects stored in both (one review for the list), a watch
//!   through v2, a patch through v2 of an object stored as v1; the webhook
//!   down, reads needing it fail with Kubernetes' message and nothing is
//!   lost.
#![allow(
    clippy::unwrap_used,
    reason = "the webhook server and its certificates are test fixtures: a failure is the test's"
)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use common::{Cluster, POLL};
use ferrokube_client::testing::https::{Certificates, JsonServer};
use ferrokube_client::testing::wait::wait_until_blocking;
use serde_json::{json, Value};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn write(c: &Cluster, file: &str, v: &Value) -> String {
    let path = c.data_dir().join(file);
    std::fs::write(&path, serde_json::to_vec_pretty(v).unwrap()).unwrap();
    path.to_string_lossy().into_owned()
}

fn get_json(c: &Cluster, args: &[&str]) -> Value {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    serde_json::from_str(&c.kubectl_ok(&all)).unwrap()
}

fn widget(version: &str, name: &str, spec: Value) -> Value {
    json!({"apiVersion": format!("example.com/{version}"), "kind": "Widget",
        "metadata": {"name": name, "namespace": "default"}, "spec": spec})
}

/// The widgets CRD with `conversion`, v1 and v2 with the schemas of
/// Kubernetes' conversion test, `storage` the storage version.
fn crd(conversion: Value, storage: &str) -> Value {
    let schema = |props: Value| {
        json!({"openAPIV3Schema": {"type": "object", "properties": {
            "spec": {"type": "object", "properties": props}}}})
    };
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "conversion": conversion,
            "versions": [
                {"name": "v1", "served": true, "storage": storage == "v1",
                 "schema": schema(json!({"hostPort": {"type": "string"}}))},
                {"name": "v2", "served": true, "storage": storage == "v2",
                 "schema": schema(json!({"host": {"type": "string"}, "port": {"type": "string"}}))}]}})
}

/// Applies the CRD and waits until kubectl can use both versions.
fn establish(c: &Cluster, crd: &Value) {
    let path = write(c, "crd.json", crd);
    c.kubectl_ok(&["apply", "-f", &path]);
    c.kubectl_ok(&[
        "wait",
        "--for=condition=Established",
        "crd/widgets.example.com",
        "--timeout=30s",
    ]);
    wait_until_blocking(
        "both versions served",
        Duration::from_secs(20),
        POLL,
        || {
            ["widgets.v1.example.com", "widgets.v2.example.com"]
                .iter()
                .all(|r| c.kubectl(&["get", r]).status.success())
        },
    );
}

fn stored_versions(c: &Cluster) -> String {
    c.kubectl_ok(&[
        "get",
        "crd",
        "widgets.example.com",
        "-o",
        "jsonpath={.status.storedVersions}",
    ])
}

#[test]
fn none_conversion_serves_every_version_and_records_the_stored_ones() {
    let c = Cluster::start();
    // The same schema in both versions: None changes only apiVersion.
    let mut def = crd(json!({"strategy": "None"}), "v1");
    let shared = json!({"openAPIV3Schema": {"type": "object", "properties": {
        "spec": {"type": "object", "properties": {"color": {"type": "string"}}}}}});
    def["spec"]["versions"][0]["schema"] = shared.clone();
    def["spec"]["versions"][1]["schema"] = shared;
    establish(&c, &def);
    assert_eq!(stored_versions(&c), r#"["v1"]"#);
    let w = write(&c, "w1.json", &widget("v1", "w1", json!({"color": "red"})));
    c.kubectl_ok(&["create", "-f", &w]);

    let v2 = get_json(&c, &["widgets.v2.example.com", "w1"]);
    assert_eq!(v2["apiVersion"], "example.com/v2");
    assert_eq!(v2["spec"], json!({"color": "red"}));
    let v1 = get_json(&c, &["widgets.v1.example.com", "w1"]);
    assert_eq!(v1["apiVersion"], "example.com/v1");
    let list: Value = serde_json::from_str(&c.kubectl_ok(&[
        "get",
        "--raw",
        "/apis/example.com/v2/namespaces/default/widgets",
    ]))
    .unwrap();
    assert_eq!(list["apiVersion"], "example.com/v2");
    assert_eq!(list["items"][0]["apiVersion"], "example.com/v2");
    let table = c.kubectl_ok(&["get", "widgets.v2.example.com"]);
    assert!(table.lines().nth(1).unwrap().starts_with("w1 "), "{table}");

    // The storage version moves to v2: both are recorded.
    def["spec"]["versions"][0]["storage"] = json!(false);
    def["spec"]["versions"][1]["storage"] = json!(true);
    let path = write(&c, "crd.json", &def);
    c.kubectl_ok(&["apply", "-f", &path]);
    assert_eq!(stored_versions(&c), r#"["v1","v2"]"#);
    // A write through v1 answers in v1, whatever it is stored as.
    let w = write(&c, "w2.json", &widget("v1", "w2", json!({"color": "blue"})));
    let created: Value =
        serde_json::from_str(&c.kubectl_ok(&["create", "-f", &w, "-o", "json"])).unwrap();
    assert_eq!(created["apiVersion"], "example.com/v1");
    let patched: Value = serde_json::from_str(&c.kubectl_ok(&[
        "patch",
        "widgets.v2.example.com",
        "w1",
        "--type=merge",
        "-p",
        r#"{"spec":{"color":"green"}}"#,
        "-o",
        "json",
    ]))
    .unwrap();
    assert_eq!(patched["apiVersion"], "example.com/v2");
    assert_eq!(patched["spec"]["color"], "green");
    assert_eq!(
        c.kubectl_ok(&[
            "get",
            "widgets.v1.example.com",
            "-o",
            "jsonpath={.items[*].apiVersion} {.items[*].spec.color}",
        ]),
        "example.com/v1 example.com/v1 green blue"
    );

    // A CRD being deleted (held by an object's finalizer) takes no new
    // objects, in Kubernetes' words.
    c.kubectl_ok(&[
        "patch",
        "widgets.v1.example.com",
        "w2",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":["example.com/hold"]}}"#,
    ]);
    c.kubectl_ok(&["delete", "crd", "widgets.example.com", "--wait=false"]);
    let w3 = write(&c, "w3.json", &widget("v1", "w3", json!({})));
    let mut refused = String::new();
    wait_until_blocking("creates refused", Duration::from_secs(20), POLL, || {
        let out = c.kubectl(&["create", "-f", &w3]);
        refused = stderr(&out);
        !out.status.success() && refused.contains("terminating")
    });
    assert!(
        refused.contains(&format!("Error from server (MethodNotAllowed): error when creating \"{w3}\": create not allowed while custom resource definition is terminating")),
        "{refused}"
    );
    c.kubectl_ok(&[
        "patch",
        "widgets.v1.example.com",
        "w2",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    wait_until_blocking("the CRD gone", Duration::from_secs(30), POLL, || {
        !c.kubectl(&["get", "crd", "widgets.example.com"])
            .status
            .success()
    });
}

/// What the test's conversion webhook has been asked: the number of
/// objects of each review.
type Seen = Arc<Mutex<Vec<usize>>>;

/// One object in `desired`: v1's `hostPort` split into v2's `host` and
/// `port`, or joined back.
fn convert(mut obj: Value, desired: &str) -> Value {
    let from = obj["apiVersion"].as_str().unwrap_or_default().to_string();
    let spec = obj["spec"].as_object().cloned().unwrap_or_default();
    let mut out = serde_json::Map::new();
    match (from.as_str(), desired) {
        ("example.com/v1", "example.com/v2") => {
            if let Some((host, port)) = spec
                .get("hostPort")
                .and_then(Value::as_str)
                .and_then(|hp| hp.split_once(':'))
            {
                out.insert("host".into(), json!(host));
                out.insert("port".into(), json!(port));
            }
        }
        ("example.com/v2", "example.com/v1") => {
            if let (Some(h), Some(p)) = (spec.get("host"), spec.get("port")) {
                let hp = format!("{}:{}", h.as_str().unwrap_or(""), p.as_str().unwrap_or(""));
                out.insert("hostPort".into(), json!(hp));
            }
        }
        _ => out = spec,
    }
    obj["spec"] = Value::Object(out);
    obj["apiVersion"] = json!(desired);
    obj
}

fn review_answer(review: &Value) -> Value {
    let req = &review["request"];
    let desired = req["desiredAPIVersion"].as_str().unwrap_or_default();
    let converted: Vec<Value> = req["objects"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|o| convert(o, desired))
        .collect();
    json!({"apiVersion": review["apiVersion"], "kind": "ConversionReview",
        "response": {"uid": req["uid"], "convertedObjects": converted,
            "result": {"status": "Success"}}})
}

/// Starts the webhook on `port` (0: any) with `certs`; it records the
/// number of objects of each review in `seen`.
fn start_converter(certs: &Certificates, port: u16, seen: Seen) -> JsonServer {
    JsonServer::start(certs, port, move |_, review| {
        let count = review["request"]["objects"].as_array().map_or(0, Vec::len);
        seen.lock().unwrap().push(count);
        review_answer(&review)
    })
    .unwrap()
}

fn webhook_conversion(certs: &Certificates, port: u16) -> Value {
    json!({"strategy": "Webhook", "webhook": {
    "conversionReviewVersions": ["v1", "v1beta1"],
    "clientConfig": {
        "url": format!("https://127.0.0.1:{port}/crdconvert"),
        "caBundle": base64::engine::general_purpose::STANDARD.encode(&certs.ca),
    }}})
}

fn host_port(name: &str) -> Value {
    widget("v1", name, json!({"hostPort": "localhost:8080"}))
}

/// Kubernetes' `verifyV2Object`.
fn assert_v2(obj: &Value, host: &str, port: &str) {
    assert_eq!(obj["apiVersion"], "example.com/v2", "{obj}");
    assert_eq!(obj["spec"], json!({"host": host, "port": port}), "{obj}");
}

/// Kubernetes' `verifyV1Object`.
fn assert_v1(obj: &Value, host_port: &str) {
    assert_eq!(obj["apiVersion"], "example.com/v1", "{obj}");
    assert_eq!(obj["spec"], json!({"hostPort": host_port}), "{obj}");
}

/// Starts a watch through v2; its events come back on the channel.
fn watch_v2(c: &Cluster) -> (std::process::Child, std::sync::mpsc::Receiver<Value>) {
    let mut watch = common::kubectl_command(std::path::Path::new("kubectl"), &c.kubeconfig())
        .args([
            "get",
            "--raw",
            "/apis/example.com/v2/namespaces/default/widgets?watch=1",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            if tx.send(serde_json::from_str(&line).unwrap()).is_err() {
                return;
            }
        }
    });
    (watch, rx)
}

#[test]
#[allow(
    clippy::too_many_lines,
    reason = "one scenario: the conversion conformance tests and the webhook going away, in order"
)]
fn webhook_conversion_serves_both_versions_as_kubernetes_does() {
    let c = Cluster::start();
    let certs = Certificates::loopback().unwrap();
    let seen: Seen = Arc::default();
    let hook = start_converter(&certs, 0, seen.clone());
    let port = hook.port();
    establish(&c, &crd(webhook_conversion(&certs, port), "v1"));

    // "should be able to convert from CR v1 to CR v2".
    for name in ["cr-instance-1", "cr-instance-3"] {
        let path = write(&c, &format!("{name}.json"), &host_port(name));
        c.kubectl_ok(&["create", "-f", &path]);
    }
    let v2 = get_json(&c, &["widgets.v2.example.com", "cr-instance-1"]);
    assert_v2(&v2, "localhost", "8080");
    assert_v1(
        &get_json(&c, &["widgets.v1.example.com", "cr-instance-1"]),
        "localhost:8080",
    );
    let table = c.kubectl_ok(&["get", "widgets.v2.example.com", "cr-instance-1"]);
    assert!(table.contains("cr-instance-1"), "{table}");

    // "should be able to convert a non homogeneous list of CRs": the
    // storage version moves to v2, another object is written through v1.
    let moved = crd(webhook_conversion(&certs, port), "v2");
    let path = write(&c, "crd.json", &moved);
    c.kubectl_ok(&["apply", "-f", &path]);
    assert_eq!(stored_versions(&c), r#"["v1","v2"]"#);
    wait_until_blocking(
        "the storage version moved",
        Duration::from_secs(20),
        POLL,
        || {
            let path = write(&c, "probe.json", &host_port("probe"));
            let created = c.kubectl(&["create", "-f", &path]).status.success();
            let before = seen.lock().unwrap().len();
            let read = c
                .kubectl(&["get", "widgets.v2.example.com", "probe"])
                .status
                .success();
            let stored_v2 = read && seen.lock().unwrap().len() == before;
            c.kubectl(&["delete", "widgets.v1.example.com", "probe"]);
            created && stored_v2
        },
    );
    let path = write(&c, "cr-instance-2.json", &host_port("cr-instance-2"));
    c.kubectl_ok(&["create", "-f", &path]);

    let before = seen.lock().unwrap().len();
    let list = get_json(&c, &["widgets.v2.example.com"]);
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{list}");
    for item in items {
        assert_v2(item, "localhost", "8080");
    }
    // The two objects stored as v1 went in one review.
    assert_eq!(seen.lock().unwrap()[before..], [2]);
    let list = get_json(&c, &["widgets.v1.example.com"]);
    for item in list["items"].as_array().unwrap() {
        assert_v1(item, "localhost:8080");
    }

    // A watch through v2 sees a patch through v2 of an object stored as v1.
    let (mut watch, events) = watch_v2(&c);
    for _ in 0..3 {
        let ev = events.recv_timeout(Duration::from_secs(20)).unwrap();
        assert_eq!(ev["type"], "ADDED");
        assert_v2(&ev["object"], "localhost", "8080");
    }
    let patched: Value = serde_json::from_str(&c.kubectl_ok(&[
        "patch",
        "widgets.v2.example.com",
        "cr-instance-1",
        "--type=merge",
        "-p",
        r#"{"spec":{"port":"9090"}}"#,
        "-o",
        "json",
    ]))
    .unwrap();
    assert_v2(&patched, "localhost", "9090");
    let ev = events.recv_timeout(Duration::from_secs(20)).unwrap();
    assert_eq!(ev["type"], "MODIFIED");
    assert_eq!(ev["object"]["metadata"]["name"], "cr-instance-1");
    assert_v2(&ev["object"], "localhost", "9090");
    let _ = watch.kill();
    let _ = watch.wait();
    assert_v1(
        &get_json(&c, &["widgets.v1.example.com", "cr-instance-1"]),
        "localhost:9090",
    );

    // The webhook gone: what needs it fails in Kubernetes' words...
    drop(hook);
    let out = c.kubectl(&["get", "widgets.v1.example.com", "cr-instance-1"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!("Error from server: conversion webhook for example.com/v2, Kind=Widget failed: Post \"https://127.0.0.1:{port}/crdconvert?timeout=30s\": dial tcp 127.0.0.1:{port}: connect: connection refused")),
        "{}",
        stderr(&out)
    );
    let out = c.kubectl(&["get", "widgets.v2.example.com"]);
    assert!(
        stderr(&out).contains("conversion webhook for example.com/v1, Kind=Widget failed"),
        "{}",
        stderr(&out)
    );
    let path = write(&c, "cr-instance-4.json", &host_port("cr-instance-4"));
    let out = c.kubectl(&["create", "-f", &path]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("conversion webhook for example.com/v1, Kind=Widget failed"),
        "{}",
        stderr(&out)
    );
    // ...what is stored in the version asked is read as ever...
    assert_v2(
        &get_json(&c, &["widgets.v2.example.com", "cr-instance-1"]),
        "localhost",
        "9090",
    );
    // ...and nothing is lost: back on its port, every object reads again.
    let hook = start_converter(&certs, port, seen.clone());
    let list = get_json(&c, &["widgets.v1.example.com"]);
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["cr-instance-1", "cr-instance-2", "cr-instance-3"]);
    assert_v1(&list["items"][0], "localhost:9090");
    assert_v1(&list["items"][2], "localhost:8080");
    c.kubectl_ok(&["delete", "crd", "widgets.example.com", "--timeout=60s"]);
    drop(hook);
}
