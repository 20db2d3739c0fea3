use super::*;

fn meta() -> Value {
    json!({"name": "web", "namespace": "default", "uid": "u1", "resourceVersion": "7",
        "creationTimestamp": "2026-12-07T21:00:00Z"})
}

fn cpu(target: i64) -> Value {
    json!({"type": "Resource", "resource": {"name": "cpu",
        "target": {"type": "Utilization", "averageUtilization": target}}})
}

/// What `kubectl autoscale deployment web --cpu-percent=50 --min=1 --max=4`
/// stores.
fn autoscaled() -> Value {
    json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": meta(),
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 1, "maxReplicas": 4, "metrics": [cpu(50)]},
        "status": {"desiredReplicas": 0}})
}

fn annotation<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.pointer("/metadata/annotations")?.get(key)?.as_str()
}

#[test]
fn a_cpu_target_is_v1s_own_field() {
    let v1 = v2_to_v1(&autoscaled());
    assert_eq!(
        v1,
        json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": meta(),
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 1, "maxReplicas": 4, "targetCPUUtilizationPercentage": 50},
            "status": {"currentReplicas": 0, "desiredReplicas": 0}})
    );
    assert_eq!(v1_to_v2(&v1), autoscaled());
}

#[test]
fn a_v1_object_without_a_target_aims_at_80_percent() {
    let v1 = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 3,
            "minReplicas": 1},
        "status": {"currentReplicas": 0, "desiredReplicas": 0}});
    let v2 = v1_to_v2(&v1);
    assert_eq!(v2["spec"]["metrics"], json!([cpu(80)]));
    assert_eq!(v2["status"], json!({"desiredReplicas": 0}));
    assert_eq!(v2["apiVersion"], "autoscaling/v2");
}

/// A v2 object with what v1 has no field for.
fn rich() -> Value {
    json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
    "metadata": {"name": "web", "annotations": {"team": "a"}},
    "spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "minReplicas": 2, "maxReplicas": 10,
        "metrics": [
            {"type": "Resource", "resource": {"name": "memory",
                "target": {"type": "AverageValue", "averageValue": "100Mi"}}},
            {"type": "Pods", "pods": {"metric": {"name": "qps", "selector": {"matchLabels": {"a": "b"}}},
                "target": {"type": "AverageValue", "averageValue": "1k"}}},
            {"type": "Object", "object": {"metric": {"name": "rps"},
                "describedObject": {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "main"},
                "target": {"type": "Value", "value": "10"}}},
            {"type": "External", "external": {"metric": {"name": "queue"},
                "target": {"type": "AverageValue", "averageValue": "30"}}},
            {"type": "ContainerResource", "containerResource": {"name": "cpu", "container": "app",
                "target": {"type": "Utilization", "averageUtilization": 60}}},
            cpu(50),
        ],
        "behavior": {
            "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15},
                    {"type": "Percent", "value": 100, "periodSeconds": 15}]},
            "scaleDown": {"stabilizationWindowSeconds": 30, "selectPolicy": "Max",
                "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]},
        },
    },
    "status": {
        "currentReplicas": 3, "desiredReplicas": 4, "observedGeneration": 1,
        "lastScaleTime": "2026-12-07T21:01:00Z",
        "currentMetrics": [
            {"type": "Resource", "resource": {"name": "memory", "current": {"averageValue": "52Mi"}}},
            {"type": "Resource", "resource": {"name": "cpu",
                "current": {"averageUtilization": 45, "averageValue": "45m"}}},
        ],
        "conditions": [{"type": "AbleToScale", "status": "True",
            "lastTransitionTime": "2026-12-07T21:00:00Z", "reason": "ReadyForNewScale",
            "message": "recommended size matches current size"}],
    }})
}

#[test]
fn what_v1_has_no_field_for_is_in_annotations_as_kubernetes_writes_them() {
    let v1 = v2_to_v1(&rich());
    assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 50);
    assert_eq!(
        v1["status"],
        json!({"currentReplicas": 3, "desiredReplicas": 4, "observedGeneration": 1,
            "lastScaleTime": "2026-12-07T21:01:00Z", "currentCPUUtilizationPercentage": 45})
    );
    assert_eq!(annotation(&v1, "team"), Some("a"));
    assert_eq!(
        annotation(&v1, METRICS_ANNOTATION),
        Some(concat!(
            r#"[{"type":"Resource","resource":{"name":"memory","targetAverageValue":"100Mi"}},"#,
            r#"{"type":"Pods","pods":{"metricName":"qps","targetAverageValue":"1k","selector":{"matchLabels":{"a":"b"}}}},"#,
            r#"{"type":"Object","object":{"target":{"kind":"Ingress","name":"main","apiVersion":"networking.k8s.io/v1"},"metricName":"rps","targetValue":"10"}},"#,
            r#"{"type":"External","external":{"metricName":"queue","targetAverageValue":"30"}},"#,
            r#"{"type":"ContainerResource","containerResource":{"name":"cpu","targetAverageUtilization":60,"container":"app"}}]"#
        ))
    );
    assert_eq!(
        annotation(&v1, CURRENT_METRICS_ANNOTATION),
        Some(concat!(
            r#"[{"type":"Resource","resource":{"name":"memory","currentAverageValue":"52Mi"}},"#,
            r#"{"type":"Resource","resource":{"name":"cpu","currentAverageUtilization":45,"currentAverageValue":"45m"}}]"#
        ))
    );
    assert_eq!(
        annotation(&v1, BEHAVIOR_ANNOTATION),
        Some(concat!(
            r#"{"ScaleUp":{"StabilizationWindowSeconds":0,"SelectPolicy":"Max","Policies":[{"Type":"Pods","Value":4,"PeriodSeconds":15},{"Type":"Percent","Value":100,"PeriodSeconds":15}],"Tolerance":null},"#,
            r#""ScaleDown":{"StabilizationWindowSeconds":30,"SelectPolicy":"Max","Policies":[{"Type":"Percent","Value":100,"PeriodSeconds":15}],"Tolerance":null}}"#
        ))
    );
    assert_eq!(
        annotation(&v1, CONDITIONS_ANNOTATION),
        Some(
            r#"[{"type":"AbleToScale","status":"True","lastTransitionTime":"2026-12-07T21:00:00Z","reason":"ReadyForNewScale","message":"recommended size matches current size"}]"#
        )
    );
}

#[test]
fn v2_to_v1_and_back_loses_nothing_but_the_cpu_targets_place() {
    let back = v1_to_v2(&v2_to_v1(&rich()));
    let mut want = rich();
    // The CPU target comes back after the metrics of the annotation, as
    // Kubernetes puts it; an Object target keeps its Value type.
    assert_eq!(back["metadata"], want["metadata"]);
    assert_eq!(back["status"], want["status"]);
    assert_eq!(back["spec"]["behavior"], want["spec"]["behavior"]);
    let metrics = want["spec"]["metrics"].as_array_mut().unwrap();
    let last = metrics.pop().unwrap();
    metrics.push(last);
    assert_eq!(back["spec"], want["spec"]);
    // Twice is the same as once.
    assert_eq!(v2_to_v1(&back), v2_to_v1(&rich()));
}

#[test]
fn annotations_are_read_back_and_dropped() {
    let v1 = v2_to_v1(&rich());
    let v2 = v1_to_v2(&v1);
    assert_eq!(v2["metadata"]["annotations"], json!({"team": "a"}));
    // A v2 object never keeps them, whichever way it goes.
    let mut sent = autoscaled();
    sent["metadata"]["annotations"] = json!({METRICS_ANNOTATION: "[]", "x": "y"});
    assert_eq!(
        v2_to_v1(&sent)["metadata"]["annotations"],
        json!({"x": "y"})
    );
}

#[test]
fn annotations_are_read_as_go_reads_them() {
    let mut v1 = v2_to_v1(&autoscaled());
    // Member names in any case; a bad annotation is ignored.
    v1["metadata"]["annotations"] = json!({
        BEHAVIOR_ANNOTATION: r#"{"scaleDown":{"stabilizationwindowseconds":60}}"#,
        METRICS_ANNOTATION: r#"[{"type":"Pods","pods":{"metricName":7}}]"#,
        CONDITIONS_ANNOTATION: "not json",
        CURRENT_METRICS_ANNOTATION: r#"[{"type":"Resource","resource":{"name":"cpu","currentAverageValue":"12m"}}]"#,
    });
    let v2 = v1_to_internal(&v1);
    assert_eq!(
        v2["spec"]["behavior"],
        json!({"scaleDown": {"stabilizationWindowSeconds": 60}})
    );
    assert_eq!(v2["spec"]["metrics"], json!([cpu(50)]));
    assert_eq!(
        v2["status"]["currentMetrics"],
        json!([{"type": "Resource", "resource": {"name": "cpu", "current": {"averageValue": "12m"}}}])
    );
    assert!(v2["status"].get("conditions").is_none());
    assert!(v2["metadata"].get("annotations").is_none());
    // An empty behavior is no behavior.
    v1["metadata"]["annotations"] = json!({BEHAVIOR_ANNOTATION: "{}"});
    assert!(v1_to_internal(&v1)["spec"].get("behavior").is_none());
    // Defaults fill the rest of a behavior read from v1, as on a read from
    // storage.
    v1["metadata"]["annotations"] =
        json!({BEHAVIOR_ANNOTATION: r#"{"ScaleDown":{"StabilizationWindowSeconds":60}}"#});
    let b = &v1_to_v2(&v1)["spec"]["behavior"];
    assert_eq!(b["scaleDown"]["stabilizationWindowSeconds"], 60);
    assert_eq!(b["scaleUp"]["selectPolicy"], "Max");
}

#[test]
fn the_cpu_target_is_the_first_utilization_of_cpu() {
    let mut v2 = autoscaled();
    v2["spec"]["metrics"] = json!([
        {"type": "Resource", "resource": {"name": "cpu",
            "target": {"type": "AverageValue", "averageValue": "300m"}}},
        cpu(70),
    ]);
    let v1 = v2_to_v1(&v2);
    assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 70);
    assert_eq!(
        annotation(&v1, METRICS_ANNOTATION),
        Some(r#"[{"type":"Resource","resource":{"name":"cpu","targetAverageValue":"300m"}}]"#)
    );
}

#[test]
fn the_converter_goes_between_the_two_versions_only() {
    assert_eq!(
        convert(autoscaled(), "v1").unwrap()["apiVersion"],
        "autoscaling/v1"
    );
    assert_eq!(convert(autoscaled(), "v2").unwrap(), autoscaled());
    assert!(convert(autoscaled(), "v3").is_err());
    assert!(convert(json!({"apiVersion": "apps/v1"}), "v1").is_err());
}

#[test]
fn a_v1_status_is_kept_or_reset_in_v1s_terms() {
    let old = v2_to_v1(&rich());
    let mut new = v2_to_v1(&autoscaled());
    v1_take_status(&mut new, Some(&old));
    assert_eq!(new["status"], old["status"]);
    assert_eq!(
        annotation(&new, CONDITIONS_ANNOTATION),
        annotation(&old, CONDITIONS_ANNOTATION)
    );
    assert!(annotation(&new, METRICS_ANNOTATION).is_none());
    v1_take_status(&mut new, None);
    assert_eq!(
        new["status"],
        json!({"currentReplicas": 0, "desiredReplicas": 0})
    );
    assert!(annotation(&new, CONDITIONS_ANNOTATION).is_none());
    let mut tolerant = old.clone();
    tolerant["metadata"]["annotations"][BEHAVIOR_ANNOTATION] =
        json!(r#"{"ScaleUp":{"Tolerance":"50m","Policies":[]}}"#);
    assert!(v1_uses_tolerance(&tolerant));
    v1_drop_tolerance(&mut tolerant);
    assert!(!v1_uses_tolerance(&tolerant));
}
