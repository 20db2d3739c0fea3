use serde_json::json;

use super::*;

fn crd() -> Value {
    json!({"spec": {"group": "example.com", "scope": "Namespaced",
        "names": {"plural": "widgets", "kind": "Widget"},
        "versions": [{"name": "v1", "served": true, "storage": true,
            "schema": {"openAPIV3Schema": {"type": "object"}},
            "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}},
            "selectableFields": [{"jsonPath": ".spec.color"}],
            "additionalPrinterColumns": [
                {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                {"name": "Color", "type": "string", "jsonPath": ".spec.color", "priority": 1},
                {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]}]},
        "status": {"acceptedNames": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"}}})
}

fn strategy(crd: &Value, version: &str) -> CustomResourceStrategy {
    CustomResourceStrategy::new(crd, version, Arc::new(Converter::new(crd)))
}

fn def() -> ResourceDef {
    crate::crd::serve::served(&crd()).remove(0).def
}

#[test]
fn the_table_has_the_printer_columns() {
    let s = strategy(&crd(), "v1");
    let names: Vec<&str> = s.table_columns(&def()).iter().map(|c| c.name).collect();
    assert_eq!(names, ["Name", "Size", "Color", "Age"]);
    let obj = json!({"metadata": {"name": "w", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"size": 3, "color": "red"}});
    let now = "2026-01-01T00:02:00Z"
        .parse::<jiff::Timestamp>()
        .unwrap()
        .as_second();
    assert_eq!(
        s.table_cells(&def(), &obj, now),
        vec![json!("w"), json!(3), json!("red"), json!("2m")]
    );
    let bare = strategy(&json!({"spec": {"versions": [{"name": "v1"}]}}), "v1");
    let names: Vec<&str> = bare.table_columns(&def()).iter().map(|c| c.name).collect();
    assert_eq!(names, ["Name", "Age"]);
}

#[test]
fn status_is_split_and_the_generation_follows_the_content() {
    let s = strategy(&crd(), "v1");
    let mut new =
        json!({"metadata": {"name": "w"}, "spec": {"size": 1}, "status": {"replicas": 9}});
    s.prepare_for_create(&def(), &mut new, None);
    assert!(new.get("status").is_none());
    assert_eq!(new["metadata"]["generation"], 1);
    let old = json!({"metadata": {"name": "w", "generation": 1}, "spec": {"size": 1}, "status": {"replicas": 1}});
    let mut upd = json!({"metadata": {"name": "w", "labels": {"a": "b"}}, "spec": {"size": 1}, "status": {"replicas": 5}});
    s.prepare_for_update(&def(), &old, &mut upd, "");
    assert_eq!(upd["status"]["replicas"], 1);
    assert_eq!(upd["metadata"]["generation"], 1);
    let mut upd = json!({"metadata": {"name": "w"}, "spec": {"size": 2}});
    s.prepare_for_update(&def(), &old, &mut upd, "");
    assert_eq!(upd["metadata"]["generation"], 2);
    let mut st = json!({"metadata": {"name": "w", "labels": {"x": "y"}}, "spec": {"size": 7}, "status": {"replicas": 3}});
    s.prepare_for_update(&def(), &old, &mut st, "status");
    assert_eq!(st["spec"]["size"], 1);
    assert_eq!(st["status"]["replicas"], 3);
    assert!(st["metadata"].get("labels").is_none());
}

#[test]
fn selectable_fields_and_replicas() {
    let s = strategy(&crd(), "v1");
    let obj = json!({"metadata": {"name": "w", "namespace": "n"}, "spec": {"color": "red", "replicas": -1}});
    let f = s.selectable_fields(&def(), &obj);
    assert_eq!(f.get("spec.color").map(String::as_str), Some("red"));
    assert_eq!(f.get("metadata.namespace").map(String::as_str), Some("n"));
    let errs: Vec<String> = s
        .validate_create(&def(), &obj)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        errs,
        vec!["spec.replicas: Invalid value: -1: should be a non-negative integer"]
    );
}
