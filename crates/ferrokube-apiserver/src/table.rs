//! `meta.k8s.io/v1` Tables: what `kubectl get` prints, computed by the
//! server from the columns, cells and row order of the kind's strategy
//! (for the built-in kinds those of `ferrokube_api::printers`, the same
//! columns as upstream's printers), with the object or its metadata per row.

use ferrokube_api::printers::Column;
use ferrokube_api::registry::ResourceDef;
use serde_json::{json, Value};

use crate::strategy::Strategy;

/// What each row carries of its object (`?includeObject=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IncludeObject {
    None,
    Metadata,
    Object,
}

impl IncludeObject {
    pub(crate) fn parse(v: Option<&str>) -> Result<Self, UnsupportedIncludeObject> {
        match v {
            None | Some("") | Some("Metadata") => Ok(IncludeObject::Metadata),
            Some("None") => Ok(IncludeObject::None),
            Some("Object") => Ok(IncludeObject::Object),
            Some(other) => Err(UnsupportedIncludeObject(other.to_string())),
        }
    }
}

/// An `includeObject` value other than `None`, `Metadata` or `Object` (a
/// 400 with Kubernetes' message).
#[derive(Debug, thiserror::Error)]
#[error(
    "includeObject: Unsupported value: {0:?}: supported values: \"Metadata\", \"None\", \"Object\""
)]
pub(crate) struct UnsupportedIncludeObject(String);

/// Whether an `Accept` header asks for a Table.
pub(crate) fn wants_table(accept: &str) -> bool {
    accept.split(',').any(|part| {
        let p: Vec<&str> = part.split(';').map(str::trim).collect();
        p.contains(&"as=Table") && p.contains(&"g=meta.k8s.io")
    })
}

/// A Table of `objects` of `def`'s kind, whose strategy is `strategy`;
/// without `with_columns`, its `columnDefinitions` are null (a watch's
/// Tables after its first, as Kubernetes' watch encoder sends them).
pub(crate) fn table(
    strategy: &dyn Strategy,
    def: &ResourceDef,
    objects: &[Value],
    resource_version: &str,
    include: IncludeObject,
    continue_token: Option<&str>,
    with_columns: bool,
) -> Value {
    let now = jiff::Timestamp::now().as_second();
    let columns = if with_columns {
        strategy
            .table_columns(def)
            .iter()
            .map(Column::to_json)
            .collect()
    } else {
        Value::Null
    };
    let mut ordered: Vec<&Value> = objects.iter().collect();
    strategy.sort_table_rows(def, &mut ordered);
    let rows: Vec<Value> = ordered
        .into_iter()
        .map(|o| {
            let mut r = json!({"cells": strategy.table_cells(def, o, now)});
            match include {
                IncludeObject::None => {}
                IncludeObject::Object => r["object"] = o.clone(),
                IncludeObject::Metadata => {
                    r["object"] = json!({
                        "kind": "PartialObjectMetadata",
                        "apiVersion": "meta.k8s.io/v1",
                        "metadata": o.get("metadata").cloned().unwrap_or(Value::Null),
                    })
                }
            }
            r
        })
        .collect();
    let mut metadata = json!({"resourceVersion": resource_version});
    if let Some(c) = continue_token {
        metadata["continue"] = json!(c);
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": columns,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrokube_api::printers::human_duration;
    use ferrokube_api::registry::Registry;

    fn by_kind(group: &str, kind: &str) -> ResourceDef {
        Registry::default()
            .by_kind(group, kind)
            .expect("served")
            .clone()
    }

    #[test]
    fn ages_like_kubectl() {
        for (secs, want) in [
            (5, "5s"),
            (119, "119s"),
            (125, "2m5s"),
            (600, "10m"),
            (3 * 3600 + 120, "3h2m"),
            (10 * 3600, "10h"),
            (3 * 86400 + 3600, "3d1h"),
            (30 * 86400, "30d"),
            (800 * 86400, "2y70d"),
        ] {
            assert_eq!(human_duration(secs), want, "{secs}");
        }
    }

    #[test]
    fn flow_schemas_are_listed_in_matching_order() {
        let fs = |name: &str, p: i64| json!({"metadata": {"name": name}, "spec": {"matchingPrecedence": p}});
        let def = by_kind("flowcontrol.apiserver.k8s.io", "FlowSchema");
        let t = table(
            crate::strategy::builtin(&def).as_ref(),
            &def,
            &[
                fs("catch-all", 10000),
                fs("b", 500),
                fs("exempt", 1),
                fs("a", 500),
            ],
            "1",
            IncludeObject::None,
            None,
            true,
        );
        let names: Vec<&str> = t["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["cells"][0].as_str().unwrap())
            .collect();
        assert_eq!(names, ["exempt", "a", "b", "catch-all"]);
    }

    #[test]
    fn pod_table() {
        let pod = json!({"metadata": {"name": "web", "creationTimestamp": "2020-01-01T00:00:00Z"},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}], "nodeName": "n1"},
            "status": {"phase": "Running", "podIP": "10.42.0.5", "containerStatuses": [
                {"ready": true, "restartCount": 2}, {"ready": false, "restartCount": 1}]}});
        let def = by_kind("", "Pod");
        let strategy = crate::strategy::builtin(&def);
        let t = table(
            strategy.as_ref(),
            &def,
            &[pod],
            "9",
            IncludeObject::Metadata,
            None,
            true,
        );
        assert_eq!(t["kind"], "Table");
        assert_eq!(t["columnDefinitions"][1]["name"], "Ready");
        let cells = &t["rows"][0]["cells"];
        assert_eq!(cells[0], "web");
        assert_eq!(cells[1], "1/2");
        assert_eq!(cells[2], "Running");
        assert_eq!(cells[3], "3", "restarts, as Kubernetes' printer gives them");
        assert_eq!(cells[5], "10.42.0.5");
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert!(wants_table(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
        ));
        assert!(!wants_table("application/json"));
    }
}
