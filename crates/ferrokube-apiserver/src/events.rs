//! One Event resource in two groups, as Kubernetes serves it: Events are
//! stored once, as core `v1` Events (`/registry/events/`), and
//! `events.k8s.io/v1` is a view of them, converted at the edges with
//! Kubernetes' conversion (`pkg/apis/events/v1/conversion.go`):
//!
//! | core `v1`            | `events.k8s.io/v1`         |
//! |----------------------|----------------------------|
//! | `involvedObject`     | `regarding`                |
//! | `message`            | `note`                     |
//! | `source`             | `deprecatedSource`         |
//! | `firstTimestamp`     | `deprecatedFirstTimestamp` |
//! | `lastTimestamp`      | `deprecatedLastTimestamp`  |
//! | `count`              | `deprecatedCount`          |
//! | `reportingComponent` | `reportingController`      |
//!
//! and `metadata`, `reason`, `type`, `eventTime`, `series`, `action`,
//! `related`, `reportingInstance` as they are.

use bytes::Bytes;
use ferrokube_api::registry::ResourceDef;
use ferrokube_api::status::{ApiError, FieldError};
use serde_json::{Map, Value};

/// Core `v1` member, `events.k8s.io/v1` member.
const RENAMED: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
    ("reportingComponent", "reportingController"),
];

pub(crate) const EVENTS_API_VERSION: &str = "events.k8s.io/v1";

/// Whether `def` is the `events.k8s.io` view of Events.
pub(crate) fn is_events_view(def: &ResourceDef) -> bool {
    def.group == "events.k8s.io" && def.plural == "events"
}

fn renamed(
    obj: &Map<String, Value>,
    api_version: &str,
    name_of: impl Fn(&str) -> Option<&'static str>,
) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("kind".into(), Value::String("Event".into()));
    out.insert("apiVersion".into(), Value::String(api_version.into()));
    for (k, v) in obj {
        if k == "kind" || k == "apiVersion" {
            continue;
        }
        let name = name_of(k).map(str::to_string).unwrap_or_else(|| k.clone());
        out.insert(name, v.clone());
    }
    out
}

/// A core `v1` Event as an `events.k8s.io/v1` Event. Anything but an
/// Event object (a `Status`) is returned as it is.
pub(crate) fn to_events_v1(core: &Value) -> Value {
    let Some(obj) = core.as_object().filter(|o| is_event(o)) else {
        return core.clone();
    };
    let mut out = renamed(obj, EVENTS_API_VERSION, |k| {
        RENAMED.iter().find(|(c, _)| *c == k).map(|(_, e)| *e)
    });
    // Members Go writes even when empty.
    out.entry("eventTime").or_insert(Value::Null);
    out.entry("regarding")
        .or_insert_with(|| Value::Object(Map::new()));
    Value::Object(out)
}

/// An `events.k8s.io/v1` Event as a core `v1` Event.
pub(crate) fn to_core(events_v1: &Value) -> Value {
    let Some(obj) = events_v1.as_object() else {
        return events_v1.clone();
    };
    let mut out = renamed(obj, "v1", |k| {
        RENAMED.iter().find(|(_, e)| *e == k).map(|(c, _)| *c)
    });
    out.entry("involvedObject")
        .or_insert_with(|| Value::Object(Map::new()));
    // A null eventTime is Go's zero time: no time at all.
    if out.get("eventTime").is_some_and(Value::is_null) {
        out.remove("eventTime");
    }
    Value::Object(out)
}

fn is_event(o: &Map<String, Value>) -> bool {
    o.get("kind").and_then(Value::as_str) == Some("Event")
}

/// A stored (core) Event's JSON as an `events.k8s.io/v1` Event's.
pub(crate) fn bytes_to_events_v1(json: &[u8]) -> Result<Bytes, ApiError> {
    let core: Value = serde_json::from_slice(json).map_err(ApiError::internal)?;
    serde_json::to_vec(&to_events_v1(&core))
        .map(Bytes::from)
        .map_err(ApiError::internal)
}

/// A request body (JSON) in `events.k8s.io/v1` form as a core Event's.
pub(crate) fn body_to_core(body: &[u8]) -> Result<Bytes, ApiError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body of the request could not be decoded as JSON: {e}"
        ))
    })?;
    if let Some(av) = v.get("apiVersion").and_then(Value::as_str) {
        if av != EVENTS_API_VERSION {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({av}) does not match the expected API version ({EVENTS_API_VERSION})"
            )));
        }
    }
    serde_json::to_vec(&to_core(&v))
        .map(Bytes::from)
        .map_err(ApiError::internal)
}

/// Kubernetes' validation of an Event created through `events.k8s.io/v1`
/// (`ValidateEventCreate`: the legacy rules of a new-style Event, then the
/// strict ones), on the Event in its core form. Field paths are the ones
/// Kubernetes names.
pub(crate) fn validate_create(core: &Value) -> Vec<FieldError> {
    let text = |field: &str| core.get(field).and_then(Value::as_str).unwrap_or("");
    let set = |v: Option<&Value>| v.is_some_and(|v| !v.is_null() && v.as_str() != Some(""));
    let mut errors = Vec::new();
    let namespace = core
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    let regarding_ns = core
        .pointer("/involvedObject/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    let has_time = set(core.get("eventTime"));
    if !has_time {
        // An old-style Event: namespaces agree.
        let agree = if regarding_ns.is_empty() {
            namespace.is_empty() || namespace == "default"
        } else {
            namespace == regarding_ns
        };
        if !agree {
            errors.push(FieldError::invalid(
                "involvedObject.namespace",
                regarding_ns,
                "does not match event.namespace",
            ));
        }
    } else {
        if regarding_ns.is_empty() && namespace != "default" && namespace != "kube-system" {
            errors.push(FieldError::invalid(
                "involvedObject.namespace",
                regarding_ns,
                "does not match event.namespace",
            ));
        }
        let controller = text("reportingComponent");
        if controller.is_empty() {
            errors.push(FieldError::required("reportingController", ""));
        }
        for msg in ferrokube_api::validation::is_qualified_name(controller) {
            errors.push(FieldError::invalid("reportingController", controller, msg));
        }
        let limited = |errors: &mut Vec<FieldError>, field: &str, limit: usize, required: bool| {
            let v = text(field);
            if required && v.is_empty() {
                errors.push(FieldError::required(field, ""));
            }
            if v.chars().count() > limit {
                errors.push(FieldError::invalid(
                    field,
                    "",
                    format!("can have at most {limit} characters"),
                ));
            }
        };
        limited(&mut errors, "reportingInstance", 128, true);
        limited(&mut errors, "action", 128, true);
        limited(&mut errors, "reason", 128, true);
        limited(&mut errors, "message", 1024, false);
    }
    if let Some(series) = core.get("series").filter(|s| s.is_object()) {
        if series.get("count").and_then(Value::as_i64).unwrap_or(0) < 2 {
            errors.push(FieldError::invalid(
                "series.count",
                "",
                "should be at least 2",
            ));
        }
        if !set(series.get("lastObservedTime")) {
            errors.push(FieldError::required("series.lastObservedTime", ""));
        }
    }
    if !has_time {
        errors.push(FieldError::required("eventTime", ""));
    }
    let ty = text("type");
    if ty != "Normal" && ty != "Warning" {
        errors.push(FieldError::invalid(
            "type",
            "",
            format!("has invalid value: {ty}"),
        ));
    }
    for (field, unset) in [
        ("firstTimestamp", !set(core.get("firstTimestamp"))),
        ("lastTimestamp", !set(core.get("lastTimestamp"))),
        (
            "count",
            core.get("count").and_then(Value::as_i64).unwrap_or(0) == 0,
        ),
        (
            "source",
            !set(core.pointer("/source/component")) && !set(core.pointer("/source/host")),
        ),
    ] {
        if !unset {
            errors.push(FieldError::invalid(field, "", "needs to be unset"));
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The conformance test's Event (test/e2e/instrumentation/events.go).
    fn conformance_event() -> Value {
        json!({
            "kind": "Event", "apiVersion": "events.k8s.io/v1",
            "metadata": {"name": "event-test", "namespace": "ns", "labels": {"testevent-constant": "true"}},
            "regarding": {"namespace": "ns"},
            "eventTime": "2017-09-19T13:49:16.000000Z",
            "note": "This is event-test",
            "action": "Do", "reason": "Test", "type": "Normal",
            "reportingController": "test-controller", "reportingInstance": "test-node",
            "series": {"count": 2, "lastObservedTime": "2017-09-19T13:49:11.000000Z"},
        })
    }

    #[test]
    fn converts_both_ways_as_kubernetes() {
        let core = to_core(&conformance_event());
        assert_eq!(
            core,
            json!({
                "kind": "Event", "apiVersion": "v1",
                "metadata": {"name": "event-test", "namespace": "ns", "labels": {"testevent-constant": "true"}},
                "involvedObject": {"namespace": "ns"},
                "eventTime": "2017-09-19T13:49:16.000000Z",
                "message": "This is event-test",
                "action": "Do", "reason": "Test", "type": "Normal",
                "reportingComponent": "test-controller", "reportingInstance": "test-node",
                "series": {"count": 2, "lastObservedTime": "2017-09-19T13:49:11.000000Z"},
            })
        );
        assert_eq!(to_events_v1(&core), conformance_event());
    }

    #[test]
    fn a_core_event_reads_as_the_deprecated_fields() {
        let core = json!({
            "kind": "Event", "apiVersion": "v1",
            "metadata": {"name": "p.1", "namespace": "ns"},
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": "ns", "uid": "u"},
            "reason": "Scheduled", "message": "Successfully assigned ns/p to n",
            "source": {"component": "default-scheduler"},
            "firstTimestamp": "2024-01-01T00:00:00Z", "lastTimestamp": "2024-01-01T00:00:01Z",
            "count": 3, "type": "Normal",
        });
        let ev = to_events_v1(&core);
        assert_eq!(ev["apiVersion"], "events.k8s.io/v1");
        assert_eq!(ev["regarding"]["name"], "p");
        assert_eq!(ev["note"], "Successfully assigned ns/p to n");
        assert_eq!(
            ev["deprecatedSource"],
            json!({"component": "default-scheduler"})
        );
        assert_eq!(ev["deprecatedFirstTimestamp"], "2024-01-01T00:00:00Z");
        assert_eq!(ev["deprecatedLastTimestamp"], "2024-01-01T00:00:01Z");
        assert_eq!(ev["deprecatedCount"], 3);
        assert_eq!(ev["eventTime"], Value::Null, "written even when unset");
        for core_only in ["involvedObject", "message", "source", "count"] {
            assert!(ev.get(core_only).is_none(), "{core_only}");
        }
        assert_eq!(to_core(&ev), core);
        // A Status passes through.
        let st = json!({"kind": "Status", "apiVersion": "v1", "status": "Success"});
        assert_eq!(to_events_v1(&st), st);
    }

    #[test]
    fn creates_are_validated_as_kubernetes_validates_events_v1() {
        assert_eq!(validate_create(&to_core(&conformance_event())), vec![]);
        let mut bare = conformance_event();
        for f in [
            "eventTime",
            "reportingController",
            "action",
            "reportingInstance",
        ] {
            bare.as_object_mut().unwrap().remove(f);
        }
        bare["type"] = json!("Odd");
        bare["deprecatedCount"] = json!(4);
        bare["series"] = json!({"count": 1});
        let errors: Vec<String> = validate_create(&to_core(&bare))
            .iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(
            errors,
            [
                "series.count: Invalid value: \"\": should be at least 2",
                "series.lastObservedTime: Required value",
                "eventTime: Required value",
                "type: Invalid value: \"\": has invalid value: Odd",
                "count: Invalid value: \"\": needs to be unset",
            ]
        );
        let mut long = conformance_event();
        long["reason"] = json!("r".repeat(129));
        long["reportingController"] = json!("");
        let errors: Vec<String> = validate_create(&to_core(&long))
            .iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(errors[0], "reportingController: Required value");
        assert!(
            errors.contains(
                &"reason: Invalid value: \"\": can have at most 128 characters".to_string()
            ),
            "{errors:?}"
        );
    }

    #[test]
    fn bodies_of_another_version_are_refused() {
        let e = body_to_core(br#"{"apiVersion":"v1","kind":"Event"}"#).unwrap_err();
        assert_eq!(e.code, 400);
        let ok = body_to_core(&serde_json::to_vec(&conformance_event()).unwrap()).unwrap();
        let v: Value = serde_json::from_slice(&ok).unwrap();
        assert_eq!(v["apiVersion"], "v1");
    }
}
