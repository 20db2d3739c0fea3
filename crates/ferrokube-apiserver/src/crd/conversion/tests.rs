//! The converter: `None` rewrites the version and prunes by the target's
//! schema, versions outside the CRD are refused in Kubernetes' words, a
//! webhook that cannot be reached fails with Kubernetes' message, and the
//! checks of a webhook's converted objects.

use serde_json::json;

use super::*;

fn crd(conversion: Value) -> Value {
    let schema = |props: Value| json!({"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object", "properties": props}}}});
    json!({"spec": {"group": "example.com", "scope": "Namespaced",
        "names": {"plural": "widgets", "kind": "Widget"},
        "conversion": conversion,
        "versions": [
            {"name": "v1", "served": true, "storage": true, "schema": schema(json!({"hostPort": {"type": "string"}}))},
            {"name": "v2", "served": true, "storage": false,
             "schema": schema(json!({"host": {"type": "string"}, "port": {"type": "string"}}))}]}})
}

fn widget(version: &str, spec: Value) -> Value {
    json!({"apiVersion": format!("example.com/{version}"), "kind": "Widget",
        "metadata": {"name": "w", "namespace": "ns", "uid": "u1"}, "spec": spec})
}

#[tokio::test]
async fn none_changes_the_version_and_prunes_by_the_target_schema() {
    let env = crate::podsecurity::tests::env().await;
    let c = Converter::new(&crd(json!({"strategy": "None"})));
    assert_eq!(c.storage_version(), "v1");
    let objs = vec![
        widget("v1", json!({"hostPort": "h:1"})),
        widget("v2", json!({"host": "h", "port": "2"})),
    ];
    let out = c.convert(&env.rest, objs, "v2").await.unwrap();
    // The v1 object is now v2; what v2's schema does not know is gone.
    assert_eq!(out[0], widget("v2", json!({})));
    assert_eq!(out[1], widget("v2", json!({"host": "h", "port": "2"})));
    assert!(c.is_in(br#"{"apiVersion":"example.com/v2","kind":"Widget"}"#, "v2"));
    assert!(!c.is_in(br#"{"apiVersion":"example.com/v1","kind":"Widget"}"#, "v2"));
    assert!(!c.is_in(br#"{"apiVersion":"example.com/v22","kind":"Widget"}"#, "v2"));
    assert!(c.needs(&out[0], "v1") && !c.needs(&out[0], "v2"));
    assert!(c.needs(&json!({"apiVersion": "example.org/v2"}), "v2"));
    assert!(c.needs(&json!({}), "v2"));
}

#[tokio::test]
async fn versions_outside_the_crd_are_refused() {
    let env = crate::podsecurity::tests::env().await;
    let c = Converter::new(&crd(json!({"strategy": "None"})));
    let err = c
        .convert(&env.rest, vec![widget("v1", json!({}))], "v3")
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "request to convert CR to an invalid group/version: example.com/v3"
    );
    let err = c
        .convert(&env.rest, vec![widget("v9", json!({}))], "v2")
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "request to convert CR from an invalid group/version: example.com/v9"
    );
    let api: ApiError = err.into();
    assert_eq!((api.code, api.reason), (500, ""));
}

#[tokio::test]
async fn an_unreachable_webhook_fails_in_kubernetes_words() {
    let env = crate::podsecurity::tests::env().await;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let c = Converter::new(&crd(json!({"strategy": "Webhook", "webhook": {
        "conversionReviewVersions": ["v1"],
        "clientConfig": {"url": format!("https://127.0.0.1:{port}/convert")}}})));
    let err = c
        .convert(
            &env.rest,
            vec![widget("v1", json!({"hostPort": "h:1"}))],
            "v2",
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("conversion webhook for example.com/v1, Kind=Widget failed: Post \"https://127.0.0.1:{port}/convert?timeout=30s\": dial tcp 127.0.0.1:{port}: connect: connection refused")
    );
    // Objects already in the version need no webhook.
    let same = c
        .convert(&env.rest, vec![widget("v2", json!({"host": "h"}))], "v2")
        .await
        .unwrap();
    assert_eq!(same, vec![widget("v2", json!({"host": "h"}))]);
    let none = Converter::new(&crd(json!({"strategy": "Webhook", "webhook": {
        "conversionReviewVersions": ["v3"], "clientConfig": {"url": "https://127.0.0.1:1/"}}})));
    let err = none
        .convert(&env.rest, vec![widget("v1", json!({}))], "v2")
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "no supported conversion review versions");
}

#[test]
fn converted_objects_are_checked() {
    let original = widget("v1", json!({"hostPort": "h:1"}));
    let gvk = "example.com/v1, Kind=Widget";
    let good = widget("v2", json!({"host": "h", "port": "1"}));
    let ok = check_converted(&original, good.clone(), "example.com/v2", gvk, 0, true).unwrap();
    assert_eq!(ok, good);
    let wrong_version = widget("v1", json!({}));
    assert_eq!(
        check_converted(&original, wrong_version.clone(), "example.com/v2", gvk, 0, true)
            .unwrap_err()
            .to_string(),
        "conversion webhook for example.com/v1, Kind=Widget returned invalid object at index 0: invalid groupVersion (expected example.com/v2, received example.com/v1)"
    );
    assert_eq!(
        check_converted(&original, wrong_version, "example.com/v2", gvk, 1, false)
            .unwrap_err()
            .to_string(),
        "conversion webhook for example.com/v1, Kind=Widget returned invalid converted object at index 2: invalid groupVersion (expected example.com/v2, received example.com/v1)"
    );
    let mut renamed = good.clone();
    renamed["metadata"]["name"] = json!("other");
    assert_eq!(
        check_converted(&original, renamed, "example.com/v2", gvk, 0, true)
            .unwrap_err()
            .to_string(),
        "conversion webhook for example.com/v1, Kind=Widget returned invalid object: must have the same name: w != other"
    );
    let mut no_meta = good;
    no_meta.as_object_mut().unwrap().remove("metadata");
    assert_eq!(
        check_converted(&original, no_meta, "example.com/v2", gvk, 0, true)
            .unwrap_err()
            .to_string(),
        "conversion webhook for example.com/v1, Kind=Widget returned invalid object: must have the same name: w != "
    );
}
