//! The HorizontalPodAutoscaler API as a user sees it, at `autoscaling/v2`
//! and `autoscaling/v1` (one object, two versions): `kubectl autoscale`
//! (a protobuf body), JSON bodies (`kubectl create|replace --raw`), YAML
//! apply (client-side and server-side), strategic merge patches, status
//! written at v2 and read at v1 with Kubernetes' annotations, watches at
//! v1, the `kubectl get hpa` columns, discovery, and invalid objects
//! refused with Kubernetes' 422 messages and nothing stored. API level
//! only: no node, and no controller manager, so that no HPA controller
//! writes the status this test writes and reads.

mod common;

use common::Cluster;
use serde_json::{json, Value};

const NS: &str = "hpa";
const V1: &str = "horizontalpodautoscalers.v1.autoscaling";
const V2: &str = "horizontalpodautoscalers.v2.autoscaling";

fn write(c: &Cluster, name: &str, text: &str) -> String {
    let p = c.data_dir().join(name);
    std::fs::write(&p, text).expect("write a manifest");
    p.display().to_string()
}

fn get(c: &Cluster, resource: &str, name: &str) -> Value {
    let out = c.kubectl_ok(&["-n", NS, "get", resource, name, "-o", "json"]);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{resource}/{name}: {e}: {out}"))
}

fn annotation<'a>(o: &'a Value, key: &str) -> Option<&'a str> {
    o.pointer("/metadata/annotations")?.get(key)?.as_str()
}

/// The `kubectl get hpa` row of `name`, split on runs of two spaces or
/// more (TARGETS holds single spaces).
fn row(out: &str, name: &str) -> Vec<String> {
    out.lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no row {name} in:\n{out}"))
        .split("  ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Runs kubectl expecting it to fail; its stderr.
fn refused(c: &Cluster, args: &[&str]) -> String {
    let out = c.kubectl(args);
    assert!(
        !out.status.success(),
        "kubectl {args:?} should have failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const RICH: &str = r#"
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: rich
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  maxReplicas: 5
  metrics:
  - type: Resource
    resource: {name: memory, target: {type: AverageValue, averageValue: 100Mi}}
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 70}}
  behavior:
    scaleDown:
      stabilizationWindowSeconds: 30
"#;

#[test]
fn kubectl_autoscale_and_both_versions() {
    let c = Cluster::start_with(&["--disable-controller-manager"]);
    c.kubectl_ok(&["create", "namespace", NS]);
    discovery_and_autoscale(&c);
    v2_only_fields_in_v1_annotations(&c);
    status_at_v2_read_at_v1(&c);
    v1_writes(&c);
    v1_watches_and_lists(&c);
    canonical_targets(&c);
}

/// Discovery, and `kubectl autoscale` read at both versions.
fn discovery_and_autoscale(c: &Cluster) {
    // Discovery: both versions, v2 preferred, as Kubernetes 1.33 lists them.
    let versions = c.kubectl_ok(&["api-versions"]);
    for v in ["autoscaling/v1", "autoscaling/v2"] {
        assert!(versions.lines().any(|l| l == v), "{v} in:\n{versions}");
    }
    let resources = c.kubectl_ok(&["api-resources", "--api-group=autoscaling"]);
    let hpa = row(&resources, "horizontalpodautoscalers");
    assert_eq!(
        hpa,
        [
            "horizontalpodautoscalers",
            "hpa",
            "autoscaling/v2",
            "true",
            "HorizontalPodAutoscaler"
        ]
    );

    // kubectl 1.32's autoscale posts an autoscaling/v2 object as protobuf.
    c.kubectl_ok(&["-n", NS, "create", "deployment", "web", "--image=busybox"]);
    let out = c.kubectl_ok(&[
        "-n",
        NS,
        "autoscale",
        "deployment",
        "web",
        "--cpu-percent=50",
        "--min=1",
        "--max=4",
    ]);
    assert_eq!(
        out.trim(),
        "horizontalpodautoscaler.autoscaling/web autoscaled"
    );
    let table = c.kubectl_ok(&["-n", NS, "get", "hpa"]);
    assert_eq!(
        table
            .lines()
            .next()
            .map(|h| h.split_whitespace().collect::<Vec<_>>()),
        Some(vec![
            "NAME",
            "REFERENCE",
            "TARGETS",
            "MINPODS",
            "MAXPODS",
            "REPLICAS",
            "AGE"
        ])
    );
    let web = row(&table, "web");
    assert_eq!(
        web[..6],
        ["web", "Deployment/web", "cpu: <unknown>/50%", "1", "4", "0"]
    );

    // The same object at v1: the CPU target is v1's own field, nothing
    // else needs an annotation.
    let v1 = get(c, V1, "web");
    assert_eq!(v1["apiVersion"], "autoscaling/v1");
    assert_eq!(
        v1["spec"],
        json!({"maxReplicas": 4, "minReplicas": 1, "targetCPUUtilizationPercentage": 50,
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}})
    );
    assert_eq!(
        v1["status"],
        json!({"currentReplicas": 0, "desiredReplicas": 0})
    );
    assert!(v1["metadata"].get("annotations").is_none(), "{v1}");
    let v2 = get(c, V2, "web");
    assert_eq!(v2["status"], json!({"desiredReplicas": 0}));
    assert_eq!(
        v1["metadata"]["resourceVersion"],
        v2["metadata"]["resourceVersion"]
    );
}

/// YAML applied at v2, read at v1.
fn v2_only_fields_in_v1_annotations(c: &Cluster) {
    // YAML applied at v2, read at v1: v2-only fields in annotations, as
    // Kubernetes writes them.
    let rich = write(c, "rich.yaml", RICH);
    c.kubectl_ok(&["-n", NS, "apply", "-f", &rich]);
    let v1 = get(c, V1, "rich");
    assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 70);
    assert_eq!(
        annotation(&v1, "autoscaling.alpha.kubernetes.io/metrics"),
        Some(r#"[{"type":"Resource","resource":{"name":"memory","targetAverageValue":"100Mi"}}]"#)
    );
    assert_eq!(
        annotation(&v1, "autoscaling.alpha.kubernetes.io/behavior"),
        Some(concat!(
            r#"{"ScaleUp":{"StabilizationWindowSeconds":0,"SelectPolicy":"Max","Policies":[{"Type":"Pods","Value":4,"PeriodSeconds":15},{"Type":"Percent","Value":100,"PeriodSeconds":15}],"Tolerance":null},"#,
            r#""ScaleDown":{"StabilizationWindowSeconds":30,"SelectPolicy":"Max","Policies":[{"Type":"Percent","Value":100,"PeriodSeconds":15}],"Tolerance":null}}"#
        ))
    );
    // A v2 read shows none of them.
    let v2 = get(c, V2, "rich");
    assert_eq!(
        v2["metadata"]["annotations"]
            .as_object()
            .map(|a| a.keys().cloned().collect::<Vec<_>>()),
        Some(vec![
            "kubectl.kubernetes.io/last-applied-configuration".to_string()
        ])
    );
}

/// Status written at v2, read at v1; a strategic merge patch at v1.
fn status_at_v2_read_at_v1(c: &Cluster) {
    // Status written at v2 (a JSON body), read at v1.
    let mut status = get(c, V2, "rich");
    status["status"] = json!({
        "currentReplicas": 2, "desiredReplicas": 3,
        "currentMetrics": [
            {"type": "Resource", "resource": {"name": "memory", "current": {"averageValue": "52Mi"}}},
            {"type": "Resource", "resource": {"name": "cpu",
                "current": {"averageUtilization": 45, "averageValue": "45m"}}},
        ],
        "conditions": [{"type": "AbleToScale", "status": "True",
            "lastTransitionTime": "2026-12-07T21:00:00Z", "reason": "ReadyForNewScale",
            "message": "recommended size matches current size"}],
    });
    let status_file = write(c, "status.json", &status.to_string());
    c.kubectl_ok(&[
        "replace",
        "--raw",
        &format!("/apis/autoscaling/v2/namespaces/{NS}/horizontalpodautoscalers/rich/status"),
        "-f",
        &status_file,
    ]);
    let v1 = get(c, V1, "rich");
    assert_eq!(
        v1["status"],
        json!({"currentReplicas": 2, "desiredReplicas": 3, "currentCPUUtilizationPercentage": 45})
    );
    assert_eq!(
        annotation(&v1, "autoscaling.alpha.kubernetes.io/current-metrics"),
        Some(concat!(
            r#"[{"type":"Resource","resource":{"name":"memory","currentAverageValue":"52Mi"}},"#,
            r#"{"type":"Resource","resource":{"name":"cpu","currentAverageUtilization":45,"currentAverageValue":"45m"}}]"#
        ))
    );
    assert_eq!(
        annotation(&v1, "autoscaling.alpha.kubernetes.io/conditions"),
        Some(
            r#"[{"type":"AbleToScale","status":"True","lastTransitionTime":"2026-12-07T21:00:00Z","reason":"ReadyForNewScale","message":"recommended size matches current size"}]"#
        )
    );
    let table = c.kubectl_ok(&["-n", NS, "get", "hpa", "rich"]);
    assert_eq!(
        row(&table, "rich")[..6],
        [
            "rich",
            "Deployment/web",
            "memory: 52Mi/100Mi, cpu: 45%/70%",
            "1",
            "5",
            "2"
        ]
    );
    // The v1 Table prints the same.
    let table = c.kubectl_ok(&["-n", NS, "get", V1, "rich"]);
    assert_eq!(row(&table, "rich")[2], "memory: 52Mi/100Mi, cpu: 45%/70%");

    // A strategic merge patch at v1 changes the spec and keeps the rest.
    c.kubectl_ok(&[
        "-n",
        NS,
        "patch",
        V1,
        "rich",
        "-p",
        r#"{"spec":{"maxReplicas":7}}"#,
    ]);
    let v2 = get(c, V2, "rich");
    assert_eq!(v2["spec"]["maxReplicas"], 7);
    assert_eq!(v2["spec"]["metrics"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        v2["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"],
        30
    );
    assert_eq!(v2["status"]["conditions"][0]["reason"], "ReadyForNewScale");
}

/// Objects written at v1: JSON, server-side apply.
fn v1_writes(c: &Cluster) {
    // A v1 object written as JSON with a metrics annotation: stored with
    // the metric, the annotation gone from v2.
    let one = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "one", "annotations": {
            "autoscaling.alpha.kubernetes.io/metrics":
                r#"[{"type":"Pods","pods":{"metricName":"qps","targetAverageValue":"1k"}}]"#}},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "maxReplicas": 3, "targetCPUUtilizationPercentage": 60}});
    let one_file = write(c, "one.json", &one.to_string());
    c.kubectl_ok(&[
        "create",
        "--raw",
        &format!("/apis/autoscaling/v1/namespaces/{NS}/horizontalpodautoscalers"),
        "-f",
        &one_file,
    ]);
    let v2 = get(c, V2, "one");
    assert_eq!(
        v2["spec"]["metrics"],
        json!([
            {"type": "Pods", "pods": {"metric": {"name": "qps"},
                "target": {"type": "AverageValue", "averageValue": "1k"}}},
            {"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 60}}},
        ])
    );
    assert_eq!(v2["spec"]["minReplicas"], 1, "v1's default");
    assert!(v2["metadata"].get("annotations").is_none(), "{v2}");
    let table = c.kubectl_ok(&["-n", NS, "get", "hpa", "one"]);
    assert_eq!(row(&table, "one")[2], "<unknown>/1k, cpu: <unknown>/60%");

    // Server-side apply at v1, twice.
    let ssa = "apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata: {name: applied}\nspec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}\n  maxReplicas: 3\n";
    let f = write(c, "applied.yaml", ssa);
    c.kubectl_ok(&["-n", NS, "apply", "--server-side", "-f", &f]);
    let f = write(
        c,
        "applied.yaml",
        &ssa.replace("maxReplicas: 3", "maxReplicas: 6"),
    );
    c.kubectl_ok(&["-n", NS, "apply", "--server-side", "-f", &f]);
    let v2 = get(c, V2, "applied");
    assert_eq!(v2["spec"]["maxReplicas"], 6);
    assert_eq!(
        v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"], 80,
        "a v1 object without a target aims at 80% CPU"
    );
}

/// Quantities are kept in Kubernetes' canonical form; TARGETS shows two
/// metrics and counts the rest.
fn canonical_targets(c: &Cluster) {
    let yaml = r#"
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: many}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  maxReplicas: 3
  metrics:
  - type: Pods
    pods: {metric: {name: qps}, target: {type: AverageValue, averageValue: "0.5"}}
  - type: Resource
    resource: {name: memory, target: {type: AverageValue, averageValue: 1.5Gi}}
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}
"#;
    let f = write(c, "many.yaml", yaml);
    c.kubectl_ok(&["-n", NS, "apply", "-f", &f]);
    let v2 = get(c, V2, "many");
    assert_eq!(
        v2["spec"]["metrics"][1]["resource"]["target"]["averageValue"],
        "1536Mi"
    );
    let table = c.kubectl_ok(&["-n", NS, "get", "hpa", "many"]);
    assert_eq!(
        row(&table, "many")[2],
        "<unknown>/500m, memory: <unknown>/1536Mi + 1 more..."
    );
}

/// Watches and lists at v1.
fn v1_watches_and_lists(c: &Cluster) {
    // A watch at v1 sees the change in v1's form.
    let rv = get(c, V1, "applied")["metadata"]["resourceVersion"]
        .as_str()
        .map(str::to_string)
        .expect("resourceVersion");
    c.kubectl_ok(&[
        "-n",
        NS,
        "patch",
        V2,
        "applied",
        "-p",
        r#"{"spec":{"maxReplicas":8}}"#,
    ]);
    let events = c.kubectl_ok(&[
        "get",
        "--raw",
        &format!(
            "/apis/autoscaling/v1/namespaces/{NS}/horizontalpodautoscalers?watch=1&resourceVersion={rv}&timeoutSeconds=2"
        ),
    ]);
    let events: Vec<Value> = events
        .lines()
        .map(|l| serde_json::from_str(l).expect("watch event"))
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "MODIFIED");
    assert_eq!(events[0]["object"]["apiVersion"], "autoscaling/v1");
    assert_eq!(events[0]["object"]["spec"]["maxReplicas"], 8);
    // And a list at v1 holds v1 objects.
    let list: Value = serde_json::from_str(&c.kubectl_ok(&[
        "get",
        "--raw",
        &format!("/apis/autoscaling/v1/namespaces/{NS}/horizontalpodautoscalers"),
    ]))
    .expect("list");
    assert_eq!(list["apiVersion"], "autoscaling/v1");
    assert!(list["items"]
        .as_array()
        .is_some_and(|i| i.len() == 4 && i.iter().all(|o| o["apiVersion"] == "autoscaling/v1")));
}

#[test]
fn invalid_objects_are_refused_and_nothing_changes() {
    let c = Cluster::start_with(&["--disable-controller-manager"]);
    c.kubectl_ok(&["create", "namespace", NS]);
    invalid_v2_yaml_is_refused(&c);
    invalid_v1_json_is_refused(&c);
    invalid_updates_change_nothing(&c);
}

/// At v2, applied from YAML.
fn invalid_v2_yaml_is_refused(c: &Cluster) {
    let bad = r#"
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: bad}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 0
  maxReplicas: 3
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 0}}
  behavior:
    scaleUp:
      policies: [{type: Pods, value: 1, periodSeconds: 1801}]
"#;
    let f = write(c, "bad.yaml", bad);
    let err = refused(c, &["-n", NS, "apply", "-f", &f]);
    assert!(
        err.contains(concat!(
            "The HorizontalPodAutoscaler \"bad\" is invalid: \n",
            "* spec.minReplicas: Invalid value: 0: must be greater than or equal to 1\n",
            "* spec.metrics[0].resource.target.averageUtilization: Invalid value: 0: must be greater than 0\n",
            "* spec.metrics: Forbidden: must specify at least one Object or External metric to support scaling to zero replicas\n",
            "* spec.behavior.scaleUp.policies[0].periodSeconds: Invalid value: 1801: must be less than or equal to 1800\n"
        )),
        "{err}"
    );
    let err = refused(c, &["-n", NS, "get", "hpa", "bad"]);
    assert!(err.contains("not found"), "{err}");
}

/// At v1, with a JSON body: the same rules, v2's paths, a 422.
fn invalid_v1_json_is_refused(c: &Cluster) {
    // At v1, with a JSON body: the same rules, v2's paths, a 422.
    let v1 = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "bad1"},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": ""},
            "minReplicas": 3, "maxReplicas": 2}});
    let f = write(c, "bad1.json", &v1.to_string());
    let err = refused(
        c,
        &[
            "-v=6",
            "create",
            "--raw",
            &format!("/apis/autoscaling/v1/namespaces/{NS}/horizontalpodautoscalers"),
            "-f",
            &f,
        ],
    );
    assert!(
        err.contains(concat!(
            "The HorizontalPodAutoscaler \"bad1\" is invalid: \n",
            "* spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`\n",
            "* spec.scaleTargetRef.name: Required value\n"
        )) && err.contains("422 Unprocessable Entity"),
        "{err}"
    );
    let err = refused(c, &["-n", NS, "get", "hpa", "bad1"]);
    assert!(err.contains("not found"), "{err}");
}

/// An invalid update and an invalid status update change nothing.
fn invalid_updates_change_nothing(c: &Cluster) {
    // An invalid update and an invalid status update change nothing.
    c.kubectl_ok(&["-n", NS, "create", "deployment", "web", "--image=busybox"]);
    c.kubectl_ok(&["-n", NS, "autoscale", "deployment", "web", "--max=3"]);
    let before = get(c, V2, "web");
    let err = refused(
        c,
        &[
            "-n",
            NS,
            "patch",
            V1,
            "web",
            "-p",
            r#"{"spec":{"maxReplicas":0}}"#,
        ],
    );
    assert!(
        err.contains(concat!(
            "The HorizontalPodAutoscaler \"web\" is invalid: \n",
            "* spec.maxReplicas: Invalid value: 0: must be greater than 0\n",
            "* spec.maxReplicas: Invalid value: 0: must be greater than or equal to `minReplicas`\n"
        )),
        "{err}"
    );
    let err = refused(
        c,
        &[
            "-n",
            NS,
            "patch",
            V2,
            "web",
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"currentReplicas":-1}}"#,
        ],
    );
    assert!(
        err.contains(
            "status.currentReplicas: Invalid value: -1: must be greater than or equal to 0"
        ),
        "{err}"
    );
    assert_eq!(get(c, V2, "web"), before);
}
