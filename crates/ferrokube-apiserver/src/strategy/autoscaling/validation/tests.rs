use serde_json::json;

use super::*;

fn hpa(spec: Value) -> Value {
    let mut base = json!({
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "minReplicas": 1, "maxReplicas": 4,
        "metrics": [{"type": "Resource", "resource": {"name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": 50}}}],
    });
    for (k, v) in spec.as_object().unwrap() {
        base[k.as_str()] = v.clone();
    }
    json!({"metadata": {"name": "web"}, "spec": base})
}

fn messages(errs: &[FieldError]) -> Vec<String> {
    errs.iter().map(ToString::to_string).collect()
}

fn create(spec: Value) -> Vec<String> {
    messages(&validate_create(&hpa(spec)))
}

#[test]
fn a_valid_object_has_no_errors() {
    assert!(create(json!({})).is_empty());
    let behavior = json!({"behavior": {
        "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
            "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15}]},
        "scaleDown": {"selectPolicy": "Disabled",
            "policies": [{"type": "Percent", "value": 100, "periodSeconds": 1800}]}}});
    assert!(create(behavior).is_empty());
}

#[test]
fn replica_bounds() {
    assert_eq!(
        create(json!({"minReplicas": 0})),
        [
            "spec.minReplicas: Invalid value: 0: must be greater than or equal to 1",
            "spec.metrics: Forbidden: must specify at least one Object or External metric to support scaling to zero replicas"
        ]
    );
    assert_eq!(
        create(json!({"minReplicas": 5, "maxReplicas": 0})),
        [
            "spec.maxReplicas: Invalid value: 0: must be greater than 0",
            "spec.maxReplicas: Invalid value: 0: must be greater than or equal to `minReplicas`"
        ]
    );
    // An object that already scales to zero may stay so, with an Object or
    // External metric.
    let old = hpa(json!({"minReplicas": 0}));
    assert_eq!(
        messages(&validate_update(&old, &hpa(json!({"minReplicas": 0})))),
        ["spec.metrics: Forbidden: must specify at least one Object or External metric to support scaling to zero replicas"]
    );
}

#[test]
fn the_scale_target_needs_a_kind_and_a_name() {
    assert_eq!(
        create(json!({"scaleTargetRef": {"kind": "", "name": "a/b"}})),
        [
            "spec.scaleTargetRef.kind: Required value",
            "spec.scaleTargetRef.name: Invalid value: \"a/b\": may not contain '/'"
        ]
    );
}

#[test]
fn metric_sources_and_targets() {
    assert_eq!(
        create(json!({"metrics": [{"type": "Resource"}]})),
        ["spec.metrics[0].resource: Required value: must populate information for the given metric source"]
    );
    assert_eq!(
        create(json!({"metrics": [{"type": "Resource", "resource": {"name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": 0}}}]})),
        ["spec.metrics[0].resource.target.averageUtilization: Invalid value: 0: must be greater than 0"]
    );
    assert_eq!(
        create(json!({"metrics": [{"type": "Resource", "resource": {"name": "",
            "target": {"type": "Percent"}}}]})),
        [
            "spec.metrics[0].resource.name: Required value: must specify a resource name",
            "spec.metrics[0].resource.target.type: Invalid value: \"Percent\": must be either Utilization, Value, or AverageValue",
            "spec.metrics[0].resource.target.averageUtilization: Required value: must set either a target raw value or a target utilization"
        ]
    );
    assert_eq!(
        create(json!({"metrics": [{"type": "Bogus"}]})),
        [
            "spec.metrics[0].type: Unsupported value: \"Bogus\": supported values: \"ContainerResource\", \"External\", \"Object\", \"Pods\", \"Resource\"",
            "spec.metrics[0].type: Unsupported value: \"Bogus\": supported values: \"ContainerResource\", \"External\", \"Object\", \"Pods\", \"Resource\""
        ]
    );
    assert_eq!(
        create(json!({"metrics": [{"type": "Pods",
            "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "-1"}},
            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]})),
        [
            "spec.metrics[0].pods.target.averageValue: Invalid value: resource.Quantity{i:resource.int64Amount{value:-1, scale:0}, d:resource.infDecAmount{Dec:(*inf.Dec)(nil)}, s:\"-1\", Format:\"DecimalSI\"}: must be positive",
            "spec.metrics[0].resource: Forbidden: must populate the given metric source only"
        ]
    );
    assert_eq!(
        create(json!({"metrics": [{"type": "ContainerResource", "containerResource": {
            "name": "pods", "container": "App", "target": {"type": "Utilization", "averageUtilization": 60}}}]})),
        [
            "spec.metrics[0].containerResource.name: Invalid value: \"pods\": must be a standard resource for containers",
            "spec.metrics[0].containerResource.container: Invalid value: \"App\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
        ]
    );
    assert_eq!(
        create(json!({"metrics": [{"type": "External", "external": {"metric": {"name": "q"},
            "target": {"type": "Value", "value": "10", "averageValue": "1"}}}]})),
        ["spec.metrics[0].external.target.value: Forbidden: may not set both a target value for metric and a per-pod target"]
    );
}

#[test]
fn behavior_rules_and_policies() {
    let errs = create(json!({"behavior": {
        "scaleUp": {"stabilizationWindowSeconds": 3601, "selectPolicy": "Sometimes", "policies": []},
        "scaleDown": {"stabilizationWindowSeconds": -1, "policies": [
            {"type": "Nodes", "value": 0, "periodSeconds": 1801}]}}}));
    assert_eq!(
        errs,
        [
            "spec.behavior.scaleUp.stabilizationWindowSeconds: Invalid value: 3601: must be less than or equal to 3600",
            "spec.behavior.scaleUp.selectPolicy: Unsupported value: \"Sometimes\": supported values: \"Disabled\", \"Max\", \"Min\"",
            "spec.behavior.scaleUp.policies: Required value: must specify at least one Policy",
            "spec.behavior.scaleDown.stabilizationWindowSeconds: Invalid value: -1: must be greater than or equal to zero",
            "spec.behavior.scaleDown.policies[0].type: Unsupported value: \"Nodes\": supported values: \"Percent\", \"Pods\"",
            "spec.behavior.scaleDown.policies[0].value: Invalid value: 0: must be greater than zero",
            "spec.behavior.scaleDown.policies[0].periodSeconds: Invalid value: 1801: must be less than or equal to 1800"
        ]
    );
}

#[test]
fn status_replicas_are_not_negative() {
    let mut h = hpa(json!({}));
    h["status"] = json!({"currentReplicas": -1, "desiredReplicas": 2});
    assert_eq!(
        messages(&validate_status_update(&h)),
        ["status.currentReplicas: Invalid value: -1: must be greater than or equal to 0"]
    );
}

#[test]
fn quantities_are_shown_as_go_prints_them() {
    assert_eq!(
        go_quantity("0"),
        "resource.Quantity{i:resource.int64Amount{value:0, scale:0}, d:resource.infDecAmount{Dec:(*inf.Dec)(nil)}, s:\"\", Format:\"DecimalSI\"}"
    );
    assert_eq!(
        go_quantity("-100m"),
        "resource.Quantity{i:resource.int64Amount{value:-100, scale:-3}, d:resource.infDecAmount{Dec:(*inf.Dec)(nil)}, s:\"-100m\", Format:\"DecimalSI\"}"
    );
    assert_eq!(
        go_quantity("-1Gi"),
        "resource.Quantity{i:resource.int64Amount{value:-1073741824, scale:0}, d:resource.infDecAmount{Dec:(*inf.Dec)(nil)}, s:\"-1Gi\", Format:\"BinarySI\"}"
    );
    assert_eq!(sign("0.0"), 0);
    assert_eq!(sign("-0.5"), -1);
    assert_eq!(sign("1n"), 1);
}
