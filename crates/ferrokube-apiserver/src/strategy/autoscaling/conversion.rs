//! HorizontalPodAutoscalers between `autoscaling/v2` (the storage version)
//! and `autoscaling/v1`, as Kubernetes converts them through its internal
//! type (`pkg/apis/autoscaling/v1/conversion.go`, `v2/conversion.go`):
//!
//! - v1's `targetCPUUtilizationPercentage` is the first Resource `cpu`
//!   metric with a Utilization target; v1's `currentCPUUtilizationPercentage`
//!   the last `cpu` current metric with a utilization;
//! - what v1 has no field for goes in annotations of the v1 object, as
//!   Kubernetes writes them: the other metrics and all current metrics in
//!   v1's (v2beta1-like) metric form under `autoscaling.alpha.kubernetes.io/metrics`
//!   and `.../current-metrics`, the conditions under `.../conditions`, and
//!   the behavior under `.../behavior` in Go's encoding of the *internal*
//!   type (field names `ScaleUp`, `StabilizationWindowSeconds`, ...);
//! - on the way in those annotations are read back (an annotation that
//!   does not decode is ignored, as Kubernetes ignores it), removed, and a
//!   v1 object without any metric gets the 80% CPU target; the v2 object is
//!   then defaulted as Kubernetes defaults what it decodes from storage.
//!
//! A v2 object never carries these annotations: they are dropped both ways.
//! Annotation values are written as Go's `encoding/json` writes the v1
//! types (struct field order, `omitempty` as tagged, zero quantities as
//! `"0"`) and read back as it reads them (member names in any case,
//! unknown members ignored).

use ferrokube_api::gojson::{self, Order};
use serde_json::{json, Map, Value};

use crate::crd::conversion::ConversionError;

/// `autoscaling.MetricSpecsAnnotation`.
pub(crate) const METRICS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/metrics";
/// `autoscaling.MetricStatusesAnnotation`.
pub(crate) const CURRENT_METRICS_ANNOTATION: &str =
    "autoscaling.alpha.kubernetes.io/current-metrics";
/// `autoscaling.HorizontalPodAutoscalerConditionsAnnotation`.
pub(crate) const CONDITIONS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/conditions";
/// `autoscaling.BehaviorSpecsAnnotation`.
pub(crate) const BEHAVIOR_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/behavior";

/// What `DropRoundTripHorizontalPodAutoscalerAnnotations` removes (the
/// two tolerance annotations are v2beta2's, dropped alike).
const ROUND_TRIP_ANNOTATIONS: &[&str] = &[
    METRICS_ANNOTATION,
    BEHAVIOR_ANNOTATION,
    CURRENT_METRICS_ANNOTATION,
    CONDITIONS_ANNOTATION,
    "autoscaling.alpha.kubernetes.io/scale-down-tolerance",
    "autoscaling.alpha.kubernetes.io/scale-up-tolerance",
];

const GROUP: &str = "autoscaling";

/// The [`crate::crd::conversion::BuiltinConversion`] of HorizontalPodAutoscalers:
/// `obj` in `autoscaling/<version>`.
pub(crate) fn convert(obj: Value, version: &str) -> Result<Value, ConversionError> {
    let from = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    match (from.as_str(), version) {
        ("autoscaling/v2", "v1") => Ok(v2_to_v1(&obj)),
        ("autoscaling/v1", "v2") => Ok(v1_to_v2(&obj)),
        (f, v) if f.strip_prefix("autoscaling/") == Some(v) => Ok(obj),
        ("autoscaling/v1" | "autoscaling/v2", _) => {
            Err(ConversionError::InvalidTarget(format!("{GROUP}/{version}")))
        }
        _ => Err(ConversionError::InvalidSource(from)),
    }
}

// ---------------------------------------------------------------------------
// Go's member order of the v1 types (k8s.io/api/autoscaling/v1) and of the
// internal behavior, for the annotations.

static LABEL_SELECTOR_REQUIREMENT: Order =
    Order(&[("key", None), ("operator", None), ("values", None)]);
static LABEL_SELECTOR: Order = Order(&[
    ("matchLabels", None),
    ("matchExpressions", Some(&LABEL_SELECTOR_REQUIREMENT)),
]);
static REFERENCE: Order = Order(&[("kind", None), ("name", None), ("apiVersion", None)]);
static OBJECT_SOURCE: Order = Order(&[
    ("target", Some(&REFERENCE)),
    ("metricName", None),
    ("targetValue", None),
    ("selector", Some(&LABEL_SELECTOR)),
    ("averageValue", None),
]);
static PODS_SOURCE: Order = Order(&[
    ("metricName", None),
    ("targetAverageValue", None),
    ("selector", Some(&LABEL_SELECTOR)),
]);
static RESOURCE_SOURCE: Order = Order(&[
    ("name", None),
    ("targetAverageUtilization", None),
    ("targetAverageValue", None),
]);
static CONTAINER_RESOURCE_SOURCE: Order = Order(&[
    ("name", None),
    ("targetAverageUtilization", None),
    ("targetAverageValue", None),
    ("container", None),
]);
static EXTERNAL_SOURCE: Order = Order(&[
    ("metricName", None),
    ("metricSelector", Some(&LABEL_SELECTOR)),
    ("targetValue", None),
    ("targetAverageValue", None),
]);
static METRIC_SPEC: Order = Order(&[
    ("type", None),
    ("object", Some(&OBJECT_SOURCE)),
    ("pods", Some(&PODS_SOURCE)),
    ("resource", Some(&RESOURCE_SOURCE)),
    ("containerResource", Some(&CONTAINER_RESOURCE_SOURCE)),
    ("external", Some(&EXTERNAL_SOURCE)),
]);
static OBJECT_STATUS: Order = Order(&[
    ("target", Some(&REFERENCE)),
    ("metricName", None),
    ("currentValue", None),
    ("selector", Some(&LABEL_SELECTOR)),
    ("averageValue", None),
]);
static PODS_STATUS: Order = Order(&[
    ("metricName", None),
    ("currentAverageValue", None),
    ("selector", Some(&LABEL_SELECTOR)),
]);
static RESOURCE_STATUS: Order = Order(&[
    ("name", None),
    ("currentAverageUtilization", None),
    ("currentAverageValue", None),
]);
static CONTAINER_RESOURCE_STATUS: Order = Order(&[
    ("name", None),
    ("currentAverageUtilization", None),
    ("currentAverageValue", None),
    ("container", None),
]);
static EXTERNAL_STATUS: Order = Order(&[
    ("metricName", None),
    ("metricSelector", Some(&LABEL_SELECTOR)),
    ("currentValue", None),
    ("currentAverageValue", None),
]);
static METRIC_STATUS: Order = Order(&[
    ("type", None),
    ("object", Some(&OBJECT_STATUS)),
    ("pods", Some(&PODS_STATUS)),
    ("resource", Some(&RESOURCE_STATUS)),
    ("containerResource", Some(&CONTAINER_RESOURCE_STATUS)),
    ("external", Some(&EXTERNAL_STATUS)),
]);
static CONDITION: Order = Order(&[
    ("type", None),
    ("status", None),
    ("lastTransitionTime", None),
    ("reason", None),
    ("message", None),
]);
static POLICY: Order = Order(&[("Type", None), ("Value", None), ("PeriodSeconds", None)]);
static RULES: Order = Order(&[
    ("StabilizationWindowSeconds", None),
    ("SelectPolicy", None),
    ("Policies", Some(&POLICY)),
    ("Tolerance", None),
]);
static BEHAVIOR: Order = Order(&[("ScaleUp", Some(&RULES)), ("ScaleDown", Some(&RULES))]);

fn go_json(v: &Value, order: &'static Order) -> String {
    String::from_utf8_lossy(&gojson::to_vec_ordered(v, order)).into_owned()
}

// ---------------------------------------------------------------------------
// Small readers.

fn present<'a>(obj: &'a Value, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

/// Sets `m[key]` to `v` when `v` is present.
fn put(m: &mut Map<String, Value>, key: &str, v: Option<&Value>) {
    if let Some(v) = v.filter(|v| !v.is_null()) {
        m.insert(key.to_string(), v.clone());
    }
}

/// A Go `resource.Quantity` that is not a pointer: its value, or `"0"`.
fn quantity_or_zero(v: Option<&Value>) -> Value {
    v.filter(|v| !v.is_null())
        .cloned()
        .unwrap_or_else(|| json!("0"))
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// The annotations without the round-trip ones; `None` when none are left
/// (Go omits an empty map).
fn without_round_trip(annotations: Option<&Value>) -> Map<String, Value> {
    let mut out = annotations
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for k in ROUND_TRIP_ANNOTATIONS {
        out.remove(*k);
    }
    out
}

fn set_annotations(obj: &mut Value, annotations: Map<String, Value>) {
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    if annotations.is_empty() {
        meta.remove("annotations");
    } else {
        meta.insert("annotations".into(), Value::Object(annotations));
    }
}

fn is_cpu_resource(metric: &Value) -> bool {
    text(metric, "type") == "Resource"
        && metric
            .get("resource")
            .is_some_and(|r| r.is_object() && text(r, "name") == "cpu")
}

// ---------------------------------------------------------------------------
// v2 → v1.

/// `Convert_autoscaling_HorizontalPodAutoscaler_To_v1_HorizontalPodAutoscaler`
/// after v2 → internal.
pub(crate) fn v2_to_v1(v2: &Value) -> Value {
    let mut out = Map::new();
    for (k, v) in v2.as_object().into_iter().flatten() {
        if !matches!(k.as_str(), "spec" | "status" | "apiVersion") {
            out.insert(k.clone(), v.clone());
        }
    }
    out.insert("apiVersion".into(), json!("autoscaling/v1"));
    let spec = v2.get("spec").cloned().unwrap_or(Value::Null);
    let status = v2.get("status").cloned().unwrap_or(Value::Null);
    let list = |v: &Value, key: &str| {
        v.get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let metrics = list(&spec, "metrics");
    let current = list(&status, "currentMetrics");
    let conditions = list(&status, "conditions");
    out.insert("spec".into(), spec_to_v1(&spec, &metrics));
    out.insert("status".into(), status_to_v1(&status, &current));

    let mut out = Value::Object(out);
    let mut annotations =
        without_round_trip(v2.pointer("/metadata/annotations").filter(|a| !a.is_null()));
    let others: Vec<Value> = metrics
        .iter()
        .filter(|m| {
            !(is_cpu_resource(m)
                && m.pointer("/resource/target/averageUtilization")
                    .is_some_and(|u| !u.is_null()))
        })
        .map(metric_spec_to_v1)
        .collect();
    if !others.is_empty() {
        annotations.insert(
            METRICS_ANNOTATION.into(),
            json!(go_json(&Value::Array(others), &METRIC_SPEC)),
        );
    }
    if !current.is_empty() {
        let statuses: Vec<Value> = current.iter().map(metric_status_to_v1).collect();
        annotations.insert(
            CURRENT_METRICS_ANNOTATION.into(),
            json!(go_json(&Value::Array(statuses), &METRIC_STATUS)),
        );
    }
    if let Some(b) = present(&spec, "behavior") {
        annotations.insert(
            BEHAVIOR_ANNOTATION.into(),
            json!(go_json(&behavior_to_internal(b), &BEHAVIOR)),
        );
    }
    if !conditions.is_empty() {
        let conds: Vec<Value> = conditions.iter().map(condition).collect();
        annotations.insert(
            CONDITIONS_ANNOTATION.into(),
            json!(go_json(&Value::Array(conds), &CONDITION)),
        );
    }
    set_annotations(&mut out, annotations);
    out
}

/// `Convert_autoscaling_HorizontalPodAutoscalerSpec_To_v1_HorizontalPodAutoscalerSpec`:
/// the CPU target is the first `cpu` metric with a utilization.
fn spec_to_v1(spec: &Value, metrics: &[Value]) -> Value {
    let mut v1_spec = Map::new();
    let r = present(spec, "scaleTargetRef").unwrap_or(&Value::Null);
    v1_spec.insert("scaleTargetRef".into(), reference(r));
    put(&mut v1_spec, "minReplicas", spec.get("minReplicas"));
    v1_spec.insert(
        "maxReplicas".into(),
        spec.get("maxReplicas").cloned().unwrap_or(json!(0)),
    );
    let cpu_target = metrics.iter().find_map(|m| {
        if !is_cpu_resource(m) {
            return None;
        }
        m.pointer("/resource/target/averageUtilization")
            .filter(|u| !u.is_null())
            .cloned()
    });
    put(
        &mut v1_spec,
        "targetCPUUtilizationPercentage",
        cpu_target.as_ref(),
    );
    Value::Object(v1_spec)
}

/// `Convert_autoscaling_HorizontalPodAutoscalerStatus_To_v1_HorizontalPodAutoscalerStatus`:
/// the CPU utilization is the last `cpu` current metric's.
fn status_to_v1(status: &Value, current: &[Value]) -> Value {
    let mut v1_status = Map::new();
    put(
        &mut v1_status,
        "observedGeneration",
        status.get("observedGeneration"),
    );
    put(&mut v1_status, "lastScaleTime", status.get("lastScaleTime"));
    v1_status.insert(
        "currentReplicas".into(),
        status.get("currentReplicas").cloned().unwrap_or(json!(0)),
    );
    v1_status.insert(
        "desiredReplicas".into(),
        status.get("desiredReplicas").cloned().unwrap_or(json!(0)),
    );
    let mut current_cpu = None;
    for m in current {
        if is_cpu_resource(m) {
            if let Some(u) = m
                .pointer("/resource/current/averageUtilization")
                .filter(|u| !u.is_null())
            {
                current_cpu = Some(u.clone());
            }
        }
    }
    put(
        &mut v1_status,
        "currentCPUUtilizationPercentage",
        current_cpu.as_ref(),
    );
    Value::Object(v1_status)
}

/// A CrossVersionObjectReference (the same members in both versions).
fn reference(r: &Value) -> Value {
    let mut m = Map::new();
    m.insert("kind".into(), json!(text(r, "kind")));
    m.insert("name".into(), json!(text(r, "name")));
    if !text(r, "apiVersion").is_empty() {
        m.insert("apiVersion".into(), json!(text(r, "apiVersion")));
    }
    Value::Object(m)
}

fn metric_spec_to_v1(m: &Value) -> Value {
    let mut out = Map::new();
    out.insert("type".into(), json!(text(m, "type")));
    if let Some(o) = present(m, "object") {
        let target = o.get("target").cloned().unwrap_or(Value::Null);
        let mut s = Map::new();
        s.insert(
            "target".into(),
            reference(o.get("describedObject").unwrap_or(&Value::Null)),
        );
        s.insert(
            "metricName".into(),
            json!(o
                .pointer("/metric/name")
                .and_then(Value::as_str)
                .unwrap_or("")),
        );
        s.insert("targetValue".into(), quantity_or_zero(target.get("value")));
        put(&mut s, "selector", o.pointer("/metric/selector"));
        put(&mut s, "averageValue", target.get("averageValue"));
        out.insert("object".into(), Value::Object(s));
    }
    if let Some(p) = present(m, "pods") {
        let mut s = Map::new();
        s.insert(
            "metricName".into(),
            json!(p
                .pointer("/metric/name")
                .and_then(Value::as_str)
                .unwrap_or("")),
        );
        s.insert(
            "targetAverageValue".into(),
            quantity_or_zero(p.pointer("/target/averageValue")),
        );
        put(&mut s, "selector", p.pointer("/metric/selector"));
        out.insert("pods".into(), Value::Object(s));
    }
    for key in ["resource", "containerResource"] {
        if let Some(r) = present(m, key) {
            let mut s = Map::new();
            s.insert("name".into(), json!(text(r, "name")));
            put(
                &mut s,
                "targetAverageUtilization",
                r.pointer("/target/averageUtilization"),
            );
            put(
                &mut s,
                "targetAverageValue",
                r.pointer("/target/averageValue"),
            );
            if key == "containerResource" {
                s.insert("container".into(), json!(text(r, "container")));
            }
            out.insert(key.into(), Value::Object(s));
        }
    }
    if let Some(e) = present(m, "external") {
        let mut s = Map::new();
        s.insert(
            "metricName".into(),
            json!(e
                .pointer("/metric/name")
                .and_then(Value::as_str)
                .unwrap_or("")),
        );
        put(&mut s, "metricSelector", e.pointer("/metric/selector"));
        put(&mut s, "targetValue", e.pointer("/target/value"));
        put(
            &mut s,
            "targetAverageValue",
            e.pointer("/target/averageValue"),
        );
        out.insert("external".into(), Value::Object(s));
    }
    Value::Object(out)
}

fn metric_status_to_v1(m: &Value) -> Value {
    let mut out = Map::new();
    out.insert("type".into(), json!(text(m, "type")));
    if let Some(o) = present(m, "object") {
        let mut s = Map::new();
        s.insert(
            "target".into(),
            reference(o.get("describedObject").unwrap_or(&Value::Null)),
        );
        s.insert(
            "metricName".into(),
            json!(o
                .pointer("/metric/name")
                .and_then(Value::as_str)
                .unwrap_or("")),
        );
        s.insert(
            "currentValue".into(),
            quantity_or_zero(o.pointer("/current/value")),
        );
        put(&mut s, "selector", o.pointer("/metric/selector"));
        put(&mut s, "averageValue", o.pointer("/current/averageValue"));
        out.insert("object".into(), Value::Object(s));
    }
    if let Some(p) = present(m, "pods") {
        let mut s = Map::new();
        s.insert(
            "metricName".into(),
            json!(p
                .pointer("/metric/name")
                .and_then(Value::as_str)
                .unwrap_or("")),
        );
        s.insert(
            "currentAverageValue".into(),
            quantity_or_zero(p.pointer("/current/averageValue")),
        );
        put(&mut s, "selector", p.pointer("/metric/selector"));
        out.insert("pods".into(), Value::Object(s));
    }
    for key in ["resource", "containerResource"] {
        if let Some(r) = present(m, key) {
            let mut s = Map::new();
            s.insert("name".into(), json!(text(r, "name")));
            put(
                &mut s,
                "currentAverageUtilization",
                r.pointer("/current/averageUtilization"),
            );
            s.insert(
                "currentAverageValue".into(),
                quantity_or_zero(r.pointer("/current/averageValue")),
            );
            if key == "containerResource" {
                s.insert("container".into(), json!(text(r, "container")));
            }
            out.insert(key.into(), Value::Object(s));
        }
    }
    if let Some(e) = present(m, "external") {
        let mut s = Map::new();
        s.insert(
            "metricName".into(),
            json!(e
                .pointer("/metric/name")
                .and_then(Value::as_str)
                .unwrap_or("")),
        );
        put(&mut s, "metricSelector", e.pointer("/metric/selector"));
        s.insert(
            "currentValue".into(),
            quantity_or_zero(e.pointer("/current/value")),
        );
        put(
            &mut s,
            "currentAverageValue",
            e.pointer("/current/averageValue"),
        );
        out.insert("external".into(), Value::Object(s));
    }
    Value::Object(out)
}

/// A condition as Go writes v1's: `lastTransitionTime` is a struct, so it
/// is written even when unset (as `null`).
fn condition(c: &Value) -> Value {
    let mut s = Map::new();
    s.insert("type".into(), json!(text(c, "type")));
    s.insert("status".into(), json!(text(c, "status")));
    s.insert(
        "lastTransitionTime".into(),
        c.get("lastTransitionTime").cloned().unwrap_or(Value::Null),
    );
    for k in ["reason", "message"] {
        if !text(c, k).is_empty() {
            s.insert(k.into(), json!(text(c, k)));
        }
    }
    Value::Object(s)
}

/// The internal `HorizontalPodAutoscalerBehavior` of a v2 behavior, as Go
/// encodes it: untagged fields by their Go names, nil pointers and slices
/// as `null`.
fn behavior_to_internal(b: &Value) -> Value {
    let rules = |r: Option<&Value>| -> Value {
        let Some(r) = r.filter(|r| r.is_object()) else {
            return Value::Null;
        };
        let policies = match r.get("policies").and_then(Value::as_array) {
            Some(ps) => Value::Array(
                ps.iter()
                    .map(|p| {
                        json!({
                            "Type": text(p, "type"),
                            "Value": p.get("value").cloned().unwrap_or(json!(0)),
                            "PeriodSeconds": p.get("periodSeconds").cloned().unwrap_or(json!(0)),
                        })
                    })
                    .collect(),
            ),
            None => Value::Null,
        };
        json!({
            "StabilizationWindowSeconds": r.get("stabilizationWindowSeconds").cloned().unwrap_or(Value::Null),
            "SelectPolicy": r.get("selectPolicy").cloned().unwrap_or(Value::Null),
            "Policies": policies,
            "Tolerance": r.get("tolerance").cloned().unwrap_or(Value::Null),
        })
    };
    json!({
        "ScaleUp": rules(b.get("scaleUp")),
        "ScaleDown": rules(b.get("scaleDown")),
    })
}

// ---------------------------------------------------------------------------
// v1 → v2.

/// `Convert_v1_HorizontalPodAutoscaler_To_autoscaling_HorizontalPodAutoscaler`
/// then internal → v2, and v2's defaults (as Kubernetes applies them to
/// what it reads from storage).
pub(crate) fn v1_to_v2(v1: &Value) -> Value {
    let mut out = v1_to_internal(v1);
    crate::defaults::autoscaling::horizontal_pod_autoscaler(&mut out);
    out
}

/// `Convert_v1_HorizontalPodAutoscaler_To_autoscaling_HorizontalPodAutoscaler`
/// in v2's form, without defaults: what Kubernetes validates a v1 object as.
pub(crate) fn v1_to_internal(v1: &Value) -> Value {
    let mut out = Map::new();
    for (k, v) in v1.as_object().into_iter().flatten() {
        if !matches!(k.as_str(), "spec" | "status" | "apiVersion") {
            out.insert(k.clone(), v.clone());
        }
    }
    out.insert("apiVersion".into(), json!("autoscaling/v2"));
    let spec = v1.get("spec").cloned().unwrap_or(Value::Null);
    let status = v1.get("status").cloned().unwrap_or(Value::Null);
    let annotations = v1
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let annotation = |k: &str| annotations.get(k).and_then(Value::as_str);

    let mut v2_spec = Map::new();
    v2_spec.insert(
        "scaleTargetRef".into(),
        reference(spec.get("scaleTargetRef").unwrap_or(&Value::Null)),
    );
    put(&mut v2_spec, "minReplicas", spec.get("minReplicas"));
    v2_spec.insert(
        "maxReplicas".into(),
        spec.get("maxReplicas").cloned().unwrap_or(json!(0)),
    );
    let mut metrics: Vec<Value> = Vec::new();
    if let Some(others) =
        annotation(METRICS_ANNOTATION).and_then(|a| read_list(a, metric_spec_to_v2))
    {
        metrics = others;
    }
    if let Some(cpu) = present(&spec, "targetCPUUtilizationPercentage") {
        metrics.push(json!({
            "type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": cpu}},
        }));
    }
    if let Some(b) = annotation(BEHAVIOR_ANNOTATION).and_then(read_behavior) {
        v2_spec.insert("behavior".into(), b);
    }
    if metrics.is_empty() {
        metrics.push(json!({
            "type": "Resource",
            "resource": {"name": "cpu", "target": {
                "type": "Utilization",
                "averageUtilization": crate::defaults::autoscaling::DEFAULT_CPU_UTILIZATION,
            }},
        }));
    }
    v2_spec.insert("metrics".into(), Value::Array(metrics));
    out.insert("spec".into(), Value::Object(v2_spec));

    let mut v2_status = Map::new();
    put(
        &mut v2_status,
        "observedGeneration",
        status.get("observedGeneration"),
    );
    put(&mut v2_status, "lastScaleTime", status.get("lastScaleTime"));
    if let Some(n) = status
        .get("currentReplicas")
        .filter(|n| n.as_i64().is_some_and(|n| n != 0))
    {
        v2_status.insert("currentReplicas".into(), n.clone());
    }
    v2_status.insert(
        "desiredReplicas".into(),
        status.get("desiredReplicas").cloned().unwrap_or(json!(0)),
    );
    let mut current = None;
    if let Some(cpu) = present(&status, "currentCPUUtilizationPercentage") {
        current = Some(vec![json!({
            "type": "Resource",
            "resource": {"name": "cpu", "current": {"averageUtilization": cpu}},
        })]);
    }
    if let Some(read) =
        annotation(CURRENT_METRICS_ANNOTATION).and_then(|a| read_list(a, metric_status_to_v2))
    {
        current = Some(read);
    }
    if let Some(c) = current.filter(|c| !c.is_empty()) {
        v2_status.insert("currentMetrics".into(), Value::Array(c));
    }
    if let Some(conds) = annotation(CONDITIONS_ANNOTATION)
        .and_then(|a| read_list(a, condition_to_v2))
        .filter(|c| !c.is_empty())
    {
        v2_status.insert("conditions".into(), Value::Array(conds));
    }
    out.insert("status".into(), Value::Object(v2_status));

    let mut out = Value::Object(out);
    set_annotations(
        &mut out,
        without_round_trip(v1.pointer("/metadata/annotations")),
    );
    out
}

// ---------------------------------------------------------------------------
// What the strategy does to a v1 object, in v1's terms (a trip through v2
// and back would fill what Go's v1 types cannot leave unset, such as a
// current metric's `currentAverageValue`).

/// The annotations that hold status.
const STATUS_ANNOTATIONS: &[&str] = &[CURRENT_METRICS_ANNOTATION, CONDITIONS_ANNOTATION];

/// `to`'s status becomes `from`'s: its `status` and the annotations that
/// carry the rest of it (`None`: the empty status of a new object).
pub(crate) fn v1_take_status(to: &mut Value, from: Option<&Value>) {
    let status = match from {
        Some(f) => f.get("status").cloned(),
        None => Some(json!({"currentReplicas": 0, "desiredReplicas": 0})),
    };
    if let Some(m) = to.as_object_mut() {
        match status {
            Some(s) => m.insert("status".into(), s),
            None => m.remove("status"),
        };
    }
    let mut annotations = to
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for k in STATUS_ANNOTATIONS {
        match from.and_then(|f| f.pointer("/metadata/annotations")?.get(*k)) {
            Some(v) => annotations.insert((*k).to_string(), v.clone()),
            None => annotations.remove(*k),
        };
    }
    set_annotations(to, annotations);
}

/// Whether a v1 object's behavior annotation sets a tolerance.
pub(crate) fn v1_uses_tolerance(v1: &Value) -> bool {
    v1.pointer("/metadata/annotations")
        .and_then(|a| a.get(BEHAVIOR_ANNOTATION))
        .and_then(Value::as_str)
        .and_then(read_behavior)
        .is_some_and(|b| {
            ["scaleUp", "scaleDown"]
                .iter()
                .any(|k| b.get(*k).and_then(|r| r.get("tolerance")).is_some())
        })
}

/// A v1 object's behavior annotation written again without tolerances.
pub(crate) fn v1_drop_tolerance(v1: &mut Value) {
    if !v1_uses_tolerance(v1) {
        return;
    }
    let Some(mut b) = v1
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(BEHAVIOR_ANNOTATION))
        .and_then(Value::as_str)
        .and_then(read_behavior)
    else {
        return;
    };
    for k in ["scaleUp", "scaleDown"] {
        if let Some(r) = b.get_mut(k).and_then(Value::as_object_mut) {
            r.remove("tolerance");
        }
    }
    if let Some(a) = v1
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        a.insert(
            BEHAVIOR_ANNOTATION.into(),
            json!(go_json(&behavior_to_internal(&b), &BEHAVIOR)),
        );
    }
}

/// Why an annotation does not decode as Go would decode it into its type.
struct Undecodable;

type Read<T> = Result<T, Undecodable>;

/// A list annotation decoded item by item; `None` when it does not decode
/// (Kubernetes then ignores it).
fn read_list(text: &str, item: fn(&Value) -> Read<Value>) -> Option<Vec<Value>> {
    let v: Value = serde_json::from_str(text).ok()?;
    match v {
        Value::Null => Some(Vec::new()),
        Value::Array(items) => items.iter().map(item).collect::<Read<Vec<_>>>().ok(),
        _ => None,
    }
}

/// Member `key` of a JSON object, matched as Go's `encoding/json` matches
/// struct fields: exactly, else case-insensitively.
fn member<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    let m = v.as_object()?;
    m.get(key)
        .or_else(|| {
            m.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v)
        })
        .filter(|v| !v.is_null())
}

fn object(v: &Value) -> Read<&Value> {
    match v {
        Value::Object(_) | Value::Null => Ok(v),
        _ => Err(Undecodable),
    }
}

fn string_member(v: &Value, key: &str) -> Read<String> {
    match member(v, key) {
        None => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(Undecodable),
    }
}

fn int_member(v: &Value, key: &str) -> Read<Option<Value>> {
    match member(v, key) {
        None => Ok(None),
        Some(n) if n.as_i64().is_some_and(|n| i32::try_from(n).is_ok()) => Ok(Some(n.clone())),
        Some(_) => Err(Undecodable),
    }
}

/// A quantity member (a string Kubernetes can parse, or a number).
fn quantity_member(v: &Value, key: &str) -> Read<Option<Value>> {
    match member(v, key) {
        None => Ok(None),
        Some(Value::String(s)) if ferrokube_api::quantity::parse_milli(s).is_some() => {
            Ok(Some(json!(s)))
        }
        Some(n @ Value::Number(_)) => Ok(Some(json!(n.to_string()))),
        Some(_) => Err(Undecodable),
    }
}

fn selector_member(v: &Value, key: &str) -> Read<Option<Value>> {
    match member(v, key) {
        None => Ok(None),
        Some(s @ Value::Object(_)) => Ok(Some(s.clone())),
        Some(_) => Err(Undecodable),
    }
}

fn reference_member(v: &Value, key: &str) -> Read<Value> {
    let r = member(v, key).unwrap_or(&Value::Null);
    let r = object(r)?;
    let mut m = Map::new();
    m.insert("kind".into(), json!(string_member(r, "kind")?));
    m.insert("name".into(), json!(string_member(r, "name")?));
    let api_version = string_member(r, "apiVersion")?;
    if !api_version.is_empty() {
        m.insert("apiVersion".into(), json!(api_version));
    }
    Ok(Value::Object(m))
}

fn metric_identifier(name: String, selector: Option<Value>) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!(name));
    if let Some(s) = selector {
        m.insert("selector".into(), s);
    }
    Value::Object(m)
}

fn opt_insert(m: &mut Map<String, Value>, key: &str, v: Option<Value>) {
    if let Some(v) = v {
        m.insert(key.into(), v);
    }
}

/// A v1 `MetricSpec` (from the annotation) as a v2 one.
fn metric_spec_to_v2(m: &Value) -> Read<Value> {
    object(m)?;
    let mut out = Map::new();
    out.insert("type".into(), json!(string_member(m, "type")?));
    if let Some(o) = member(m, "object") {
        object(o)?;
        let value = quantity_member(o, "targetValue")?.unwrap_or(json!("0"));
        let average = quantity_member(o, "averageValue")?;
        let mut target = Map::new();
        let ty = if average.is_none() {
            "Value"
        } else {
            "AverageValue"
        };
        target.insert("type".into(), json!(ty));
        target.insert("value".into(), value);
        opt_insert(&mut target, "averageValue", average);
        out.insert(
            "object".into(),
            json!({
                "describedObject": reference_member(o, "target")?,
                "metric": metric_identifier(string_member(o, "metricName")?, selector_member(o, "selector")?),
                "target": Value::Object(target),
            }),
        );
    }
    if let Some(p) = member(m, "pods") {
        object(p)?;
        out.insert(
            "pods".into(),
            json!({
                "metric": metric_identifier(string_member(p, "metricName")?, selector_member(p, "selector")?),
                "target": {
                    "type": "AverageValue",
                    "averageValue": quantity_member(p, "targetAverageValue")?.unwrap_or(json!("0")),
                },
            }),
        );
    }
    for key in ["resource", "containerResource"] {
        if let Some(r) = member(m, key) {
            object(r)?;
            let utilization = int_member(r, "targetAverageUtilization")?;
            let average = quantity_member(r, "targetAverageValue")?;
            let mut target = Map::new();
            let ty = if utilization.is_none() {
                "AverageValue"
            } else {
                "Utilization"
            };
            target.insert("type".into(), json!(ty));
            opt_insert(&mut target, "averageValue", average);
            opt_insert(&mut target, "averageUtilization", utilization);
            let mut s = Map::new();
            s.insert("name".into(), json!(string_member(r, "name")?));
            if key == "containerResource" {
                s.insert("container".into(), json!(string_member(r, "container")?));
            }
            s.insert("target".into(), Value::Object(target));
            out.insert(key.into(), Value::Object(s));
        }
    }
    if let Some(e) = member(m, "external") {
        object(e)?;
        let value = quantity_member(e, "targetValue")?;
        let average = quantity_member(e, "targetAverageValue")?;
        let mut target = Map::new();
        let ty = if value.is_none() {
            "AverageValue"
        } else {
            "Value"
        };
        target.insert("type".into(), json!(ty));
        opt_insert(&mut target, "value", value);
        opt_insert(&mut target, "averageValue", average);
        out.insert(
            "external".into(),
            json!({
                "metric": metric_identifier(string_member(e, "metricName")?, selector_member(e, "metricSelector")?),
                "target": Value::Object(target),
            }),
        );
    }
    Ok(Value::Object(out))
}

/// A v1 `MetricStatus` (from the annotation) as a v2 one.
fn metric_status_to_v2(m: &Value) -> Read<Value> {
    object(m)?;
    let mut out = Map::new();
    out.insert("type".into(), json!(string_member(m, "type")?));
    if let Some(o) = member(m, "object") {
        object(o)?;
        let mut current = Map::new();
        current.insert(
            "value".into(),
            quantity_member(o, "currentValue")?.unwrap_or(json!("0")),
        );
        opt_insert(
            &mut current,
            "averageValue",
            quantity_member(o, "averageValue")?,
        );
        out.insert(
            "object".into(),
            json!({
                "describedObject": reference_member(o, "target")?,
                "metric": metric_identifier(string_member(o, "metricName")?, selector_member(o, "selector")?),
                "current": Value::Object(current),
            }),
        );
    }
    if let Some(p) = member(m, "pods") {
        object(p)?;
        out.insert(
            "pods".into(),
            json!({
                "metric": metric_identifier(string_member(p, "metricName")?, selector_member(p, "selector")?),
                "current": {
                    "averageValue": quantity_member(p, "currentAverageValue")?.unwrap_or(json!("0")),
                },
            }),
        );
    }
    for key in ["resource", "containerResource"] {
        if let Some(r) = member(m, key) {
            object(r)?;
            let mut current = Map::new();
            current.insert(
                "averageValue".into(),
                quantity_member(r, "currentAverageValue")?.unwrap_or(json!("0")),
            );
            opt_insert(
                &mut current,
                "averageUtilization",
                int_member(r, "currentAverageUtilization")?,
            );
            let mut s = Map::new();
            s.insert("name".into(), json!(string_member(r, "name")?));
            if key == "containerResource" {
                s.insert("container".into(), json!(string_member(r, "container")?));
            }
            s.insert("current".into(), Value::Object(current));
            out.insert(key.into(), Value::Object(s));
        }
    }
    if let Some(e) = member(m, "external") {
        object(e)?;
        let mut current = Map::new();
        current.insert(
            "value".into(),
            quantity_member(e, "currentValue")?.unwrap_or(json!("0")),
        );
        opt_insert(
            &mut current,
            "averageValue",
            quantity_member(e, "currentAverageValue")?,
        );
        out.insert(
            "external".into(),
            json!({
                "metric": metric_identifier(string_member(e, "metricName")?, selector_member(e, "metricSelector")?),
                "current": Value::Object(current),
            }),
        );
    }
    Ok(Value::Object(out))
}

/// A v1 condition (from the annotation) as a v2 one.
fn condition_to_v2(c: &Value) -> Read<Value> {
    object(c)?;
    let mut out = Map::new();
    out.insert("type".into(), json!(string_member(c, "type")?));
    out.insert("status".into(), json!(string_member(c, "status")?));
    match member(c, "lastTransitionTime") {
        None => {}
        Some(Value::String(t)) => {
            out.insert("lastTransitionTime".into(), json!(t));
        }
        Some(_) => return Err(Undecodable),
    }
    for k in ["reason", "message"] {
        let s = string_member(c, k)?;
        if !s.is_empty() {
            out.insert(k.into(), json!(s));
        }
    }
    Ok(Value::Object(out))
}

/// The behavior annotation (the internal type as Go encodes it) as a v2
/// behavior; `None` when it does not decode or holds no rules (Kubernetes
/// keeps no empty behavior).
fn read_behavior(text: &str) -> Option<Value> {
    let v: Value = serde_json::from_str(text).ok()?;
    object(&v).ok()?;
    let rules = |key: &str| -> Read<Option<Value>> {
        let Some(r) = member(&v, key) else {
            return Ok(None);
        };
        object(r)?;
        let mut out = Map::new();
        opt_insert(
            &mut out,
            "stabilizationWindowSeconds",
            int_member(r, "StabilizationWindowSeconds")?,
        );
        match member(r, "SelectPolicy") {
            None => {}
            Some(Value::String(s)) => {
                out.insert("selectPolicy".into(), json!(s));
            }
            Some(_) => return Err(Undecodable),
        }
        match member(r, "Policies") {
            None => {}
            Some(Value::Array(ps)) => {
                let policies = ps
                    .iter()
                    .map(|p| {
                        object(p)?;
                        Ok(json!({
                            "type": string_member(p, "Type")?,
                            "value": int_member(p, "Value")?.unwrap_or(json!(0)),
                            "periodSeconds": int_member(p, "PeriodSeconds")?.unwrap_or(json!(0)),
                        }))
                    })
                    .collect::<Read<Vec<_>>>()?;
                out.insert("policies".into(), Value::Array(policies));
            }
            Some(_) => return Err(Undecodable),
        }
        opt_insert(&mut out, "tolerance", quantity_member(r, "Tolerance")?);
        Ok(Some(Value::Object(out)))
    };
    let up = rules("ScaleUp").ok()?;
    let down = rules("ScaleDown").ok()?;
    if up.is_none() && down.is_none() {
        return None;
    }
    let mut b = Map::new();
    opt_insert(&mut b, "scaleUp", up);
    opt_insert(&mut b, "scaleDown", down);
    Some(Value::Object(b))
}

#[cfg(test)]
mod tests;
