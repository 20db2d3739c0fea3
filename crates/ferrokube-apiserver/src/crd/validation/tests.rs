use serde_json::json;

use super::*;

fn def() -> ResourceDef {
    ferrokube_api::registry::Registry::default()
        .get("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        .cloned()
        .unwrap()
}

fn good() -> Value {
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "conversion": {"strategy": "None"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object"}}}]},
        "status": {"storedVersions": ["v1"]}})
}

fn messages(errs: &[FieldError]) -> Vec<String> {
    errs.iter().map(ToString::to_string).collect()
}

#[test]
fn a_good_crd_passes() {
    assert_eq!(
        messages(&validate_create(&def(), &good())),
        Vec::<String>::new()
    );
}

#[test]
fn the_name_group_and_scope_are_checked() {
    let mut c = good();
    c["metadata"]["name"] = json!("widgets.example.org");
    c["spec"]["scope"] = json!("Global");
    assert_eq!(
        messages(&validate_create(&def(), &c)),
        vec![
            r#"metadata.name: Invalid value: "widgets.example.org": must be spec.names.plural+"."+spec.group"#,
            r#"spec.scope: Unsupported value: "Global": supported values: "Cluster", "Namespaced""#,
        ]
    );
    let mut c = good();
    c["metadata"]["name"] = json!("widgets.example");
    c["spec"]["group"] = json!("example");
    assert_eq!(
        messages(&validate_create(&def(), &c)),
        vec![r#"spec.group: Invalid value: "example": should be a domain with at least one dot"#]
    );
}

#[test]
fn versions_need_one_storage_version_and_schemas() {
    let mut c = good();
    c["spec"]["versions"] = json!([
        {"name": "v1", "served": true, "storage": false},
        {"name": "V2", "served": true, "storage": false}]);
    let m = messages(&validate_create(&def(), &c));
    assert_eq!(
        m[0],
        "spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required"
    );
    assert_eq!(
        m[1],
        "spec.versions[1].schema.openAPIV3Schema: Required value: schemas are required"
    );
    assert!(m[2].starts_with(r#"spec.versions[1].name: Invalid value: "V2": a DNS-1035 label must consist of lower case"#), "{}", m[2]);
    assert!(
        m[3].starts_with(
            "spec.versions: Invalid value: []apiextensions.CustomResourceDefinitionVersion{"
        ),
        "{}",
        m[3]
    );
    assert!(m[3].ends_with(": must have exactly one version marked as storage version"));
    assert_eq!(m.len(), 4, "{m:?}");
}

#[test]
fn names_columns_and_scale_are_checked() {
    let mut c = good();
    c["spec"]["names"]["listKind"] = json!("Widget");
    c["spec"]["names"]["shortNames"] = json!(["W"]);
    c["spec"]["versions"][0]["additionalPrinterColumns"] =
        json!([{"name": "Size", "type": "long", "jsonPath": "spec.size"}]);
    c["spec"]["versions"][0]["subresources"] =
        json!({"scale": {"specReplicasPath": ".status.replicas", "statusReplicasPath": ""}});
    assert_eq!(
        messages(&validate_create(&def(), &c)),
        vec![
            r#"spec.names.shortNames[0]: Invalid value: "W": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"#,
            r#"spec.names.listKind: Invalid value: "Widget": kind and listKind may not be the same"#,
            r#"spec.subresources.scale.specReplicasPath: Invalid value: ".status.replicas": should be a json path under .spec"#,
            "spec.subresources.scale.statusReplicasPath: Required value",
            r#"spec.additionalPrinterColumns[0].type: Invalid value: "long": must be one of boolean,date,integer,number,string"#,
            r#"spec.additionalPrinterColumns[0].JSONPath: Invalid value: "spec.size": must be a simple json path starting with ."#,
        ]
    );
}

#[test]
fn webhook_conversion_needs_a_client_config_and_review_versions() {
    let mut c = good();
    c["spec"]["conversion"] = json!({"strategy": "Webhook", "webhook": {"conversionReviewVersions": ["v1"],
        "clientConfig": {"service": {"name": "s", "namespace": "n", "port": 443}}}});
    assert_eq!(messages(&validate_create(&def(), &c)), Vec::<String>::new());
    c["spec"]["conversion"] = json!({"strategy": "Webhook"});
    assert_eq!(
        messages(&validate_create(&def(), &c)),
        vec![
            "spec.conversion.webhookClientConfig: Required value: required when strategy is set to Webhook",
            "spec.conversion.conversionReviewVersions: Required value",
        ]
    );
    c["spec"]["conversion"] = json!({"strategy": "Webhook", "webhook": {"conversionReviewVersions": ["v2", "v2"],
        "clientConfig": {"url": "http://x/convert"}}});
    assert_eq!(
        messages(&validate_create(&def(), &c)),
        vec![
            r#"spec.conversion.webhookClientConfig.url: Invalid value: "http": 'https' is the only allowed URL scheme; desired format: https://host[/path]"#,
            r#"spec.conversion.conversionReviewVersions[1]: Invalid value: "v2": duplicate version"#,
            r#"spec.conversion.conversionReviewVersions: Invalid value: []string{"v2", "v2"}: must include at least one of v1, v1beta1"#,
        ]
    );
    c["spec"]["conversion"] = json!({"strategy": "None", "webhook": {"conversionReviewVersions": ["v1"],
        "clientConfig": {"url": "https://x"}}});
    assert_eq!(
        messages(&validate_create(&def(), &c)),
        vec![
            "spec.conversion.webhookClientConfig: Forbidden: should not be set when strategy is not set to Webhook",
            "spec.conversion.conversionReviewVersions: Forbidden: should not be set when strategy is not set to Webhook",
        ]
    );
}

#[test]
fn at_most_eight_selectable_fields() {
    let mut c = good();
    let props: serde_json::Map<String, Value> = (0..9)
        .map(|i| (format!("f{i}"), json!({"type": "string"})))
        .collect();
    c["spec"]["versions"][0]["schema"]["openAPIV3Schema"] =
        json!({"type": "object", "properties": {"spec": {"type": "object", "properties": props}}});
    c["spec"]["versions"][0]["selectableFields"] = (0..9)
        .map(|i| json!({"jsonPath": format!(".spec.f{i}")}))
        .collect();
    assert_eq!(
        messages(&validate_create(&def(), &c)),
        vec!["spec.versions[0].selectableFields: Too many: 9: must have at most 8 items"]
    );
}

#[test]
fn protected_groups_need_approval() {
    let mut c = good();
    c["metadata"]["name"] = json!("widgets.x.k8s.io");
    c["spec"]["group"] = json!("x.k8s.io");
    assert_eq!(
        messages(&validate_create(&def(), &c)),
        vec![
            r#"metadata.annotations[api-approved.kubernetes.io]: Required value: protected groups must have approval annotation "api-approved.kubernetes.io", see https://github.com/kubernetes/enhancements/pull/1111"#
        ]
    );
    c["metadata"]["annotations"] = json!({"api-approved.kubernetes.io": "unapproved, testing"});
    assert!(validate_create(&def(), &c).is_empty());
}

#[test]
fn updates_keep_group_plural_and_stored_versions() {
    let old = good();
    let mut new = good();
    new["spec"]["group"] = json!("example.org");
    new["spec"]["versions"][0]["name"] = json!("v2");
    let m = messages(&validate_update(&def(), &old, &new));
    assert!(
        m.contains(&r#"spec.group: Invalid value: "example.org": field is immutable"#.to_string()),
        "{m:?}"
    );
    assert!(m.iter().any(|e| e.starts_with(r#"status.storedVersions[0]: Invalid value: "v1": missing from spec.versions; v1 was previously a storage version"#)), "{m:?}");
    assert!(m.iter().any(|e| e == r#"status.storedVersions: Invalid value: []string{"v1"}: must have the storage version v2"#), "{m:?}");
}
