//! CustomResourceDefinitions as a user meets them with the real kubectl: a
//! CRD with a structural schema becomes Established, its objects are
//! defaulted, pruned and validated (schema and CEL rules) with Kubernetes'
//! messages, shown with the printer columns, scaled through `/scale`,
//! written through `/status`, watched, and deleted with their CRD; a name
//! another CRD holds is refused in `NamesAccepted`.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use common::{Cluster, POLL};
use ferrokube_client::testing::wait::wait_until_blocking;

const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names:
    plural: widgets
    singular: widget
    kind: Widget
    shortNames: [wd]
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale:
        specReplicasPath: .spec.replicas
        statusReplicasPath: .status.replicas
    additionalPrinterColumns:
    - name: Color
      type: string
      jsonPath: .spec.color
    - name: Size
      type: integer
      jsonPath: .spec.size
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            x-kubernetes-validations:
            - rule: "self.size <= 10 || self.replicas == 0"
              message: big widgets cannot be replicated
            properties:
              size: {type: integer, minimum: 1, default: 1}
              color: {type: string, enum: [red, blue]}
              replicas: {type: integer, default: 0}
          status:
            type: object
            properties:
              replicas: {type: integer}
"#;

/// Another CRD of the group that asks for the kind `Widget`.
const CONFLICT: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.example.com
spec:
  group: example.com
  scope: Cluster
  names: {plural: gadgets, singular: gadget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
"#;

fn widget(name: &str, spec: &str) -> String {
    format!("apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: {name}\n  namespace: default\nspec: {spec}\n")
}

fn apply(c: &Cluster, file: &str, yaml: &str, extra: &[&str]) -> std::process::Output {
    let path = c.data_dir().join(file);
    std::fs::write(&path, yaml).unwrap();
    let path = path.to_string_lossy().into_owned();
    let mut args = vec!["apply", "-f", path.as_str()];
    args.extend_from_slice(extra);
    c.kubectl(&args)
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn jsonpath(c: &Cluster, what: &[&str], path: &str) -> String {
    let arg = format!("jsonpath={path}");
    let mut args = vec!["get"];
    args.extend_from_slice(what);
    args.extend_from_slice(&["-o", arg.as_str()]);
    c.kubectl_ok(&args)
}

fn establish(c: &Cluster) {
    let out = apply(c, "crd.yaml", CRD, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    c.kubectl_ok(&[
        "wait",
        "--for=condition=Established",
        "crd/widgets.example.com",
        "--timeout=30s",
    ]);
    // Discovery (kubectl's cache) may lag the condition by a moment.
    wait_until_blocking("widgets served", Duration::from_secs(20), POLL, || {
        c.kubectl(&["get", "widgets"]).status.success()
    });
}

#[test]
fn a_crd_serves_its_kind_with_schema_columns_scale_and_status() {
    let c = Cluster::start();
    establish(&c);
    let out = apply(&c, "w.yaml", &widget("w", "{color: red}"), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = c.kubectl_ok(&["get", "wd"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "COLOR", "SIZE"]);
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(row, ["w", "red", "1"], "the default size is 1:\n{table}");

    let bad = apply(&c, "bad.yaml", &widget("bad", "{color: green}"), &[]);
    assert!(!bad.status.success());
    // As Kubernetes: the rules are not run on an object the schema refused.
    assert!(
        stderr(&bad).contains(concat!(
            "The Widget \"bad\" is invalid: \n",
            "* spec.color: Unsupported value: \"green\": supported values: \"red\", \"blue\"\n",
            "* <nil>: Invalid value: \"null\": some validation rules were not checked because the object was invalid; correct the existing errors to complete validation",
        )),
        "{}",
        stderr(&bad)
    );
    let big = apply(
        &c,
        "big.yaml",
        &widget("big", "{size: 20, replicas: 2}"),
        &[],
    );
    assert!(
        stderr(&big).contains(r#"The Widget "big" is invalid: spec: Invalid value: "object": big widgets cannot be replicated"#),
        "{}",
        stderr(&big)
    );

    let strict = apply(
        &c,
        "u.yaml",
        &widget("u", "{bogus: 1}"),
        &["--validate=strict"],
    );
    assert!(!strict.status.success());
    assert!(
        stderr(&strict).contains(r#"unknown field "spec.bogus""#),
        "{}",
        stderr(&strict)
    );
    let lax = apply(
        &c,
        "u.yaml",
        &widget("u", "{bogus: 1}"),
        &["--validate=false"],
    );
    assert!(lax.status.success(), "{}", stderr(&lax));
    assert_eq!(
        jsonpath(&c, &["widget", "u"], "{.spec}"),
        r#"{"replicas":0,"size":1}"#
    );

    c.kubectl_ok(&["scale", "widget", "w", "--replicas=3"]);
    assert_eq!(jsonpath(&c, &["widget", "w"], "{.spec.replicas}"), "3");
    c.kubectl_ok(&[
        "patch",
        "widget",
        "w",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"spec": {"size": 5}, "status": {"replicas": 2}}"#,
    ]);
    assert_eq!(
        jsonpath(
            &c,
            &["widget", "w"],
            "{.spec.size} {.status.replicas} {.metadata.generation}"
        ),
        "1 2 2",
        "a status write changes only the status (the scale moved the generation)"
    );
    c.kubectl_ok(&["delete", "widgets", "--all", "-n", "default"]);
    c.kubectl_ok(&["delete", "crd", "widgets.example.com", "--timeout=30s"]);
}

#[test]
fn custom_objects_are_watched_and_deleted_with_their_crd() {
    let c = Cluster::start();
    establish(&c);
    let mut watch = common::kubectl_command(std::path::Path::new("kubectl"), &c.kubeconfig())
        .args([
            "get",
            "--raw",
            "/apis/example.com/v1/namespaces/default/widgets?watch=1",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    let seen = std::thread::spawn(move || {
        let mut types = Vec::new();
        for line in lines.map_while(Result::ok) {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            types.push(v["type"].as_str().unwrap_or_default().to_string());
            if types.last().map(String::as_str) == Some("DELETED") {
                break;
            }
        }
        types
    });
    std::thread::sleep(Duration::from_millis(500));
    let out = apply(&c, "w.yaml", &widget("w", "{color: blue}"), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    c.kubectl_ok(&["label", "widget", "w", "x=y"]);

    let out = apply(&c, "conflict.yaml", CONFLICT, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    wait_until_blocking(
        "the conflict reported",
        Duration::from_secs(20),
        POLL,
        || {
            jsonpath(
                &c,
                &["crd", "gadgets.example.com"],
                r#"{.status.conditions[?(@.type=="NamesAccepted")].reason}"#,
            ) == "ListKindConflict"
        },
    );
    assert_eq!(
        jsonpath(
            &c,
            &["crd", "gadgets.example.com"],
            r#"{.status.conditions[?(@.type=="NamesAccepted")].message}"#
        ),
        r#""WidgetList" is already in use"#
    );
    c.kubectl_ok(&["delete", "crd", "gadgets.example.com", "--timeout=30s"]);

    c.kubectl_ok(&["delete", "crd", "widgets.example.com", "--timeout=30s"]);
    let types = seen.join().unwrap();
    let _ = watch.kill();
    let _ = watch.wait();
    assert_eq!(types, ["ADDED", "MODIFIED", "DELETED"]);
    // kubectl's discovery cache may still know the kind: the list is then
    // refused by the server, as Kubernetes refuses it.
    let gone = c.kubectl(&["get", "widgets"]);
    assert!(!gone.status.success());
    assert!(
        stderr(&gone).contains(r#"the server doesn't have a resource type "widgets""#)
            || stderr(&gone).contains("the server could not find the requested resource"),
        "{}",
        stderr(&gone)
    );
    let raw = c.kubectl(&["get", "--raw", "/apis/example.com/v1/widgets"]);
    assert!(stderr(&raw).contains("NotFound"), "{}", stderr(&raw));
    assert!(
        stderr(&c.kubectl(&["get", "crd", "widgets.example.com"])).contains("NotFound"),
        "the CRD is gone once its objects are"
    );
}
