//! `flowcontrol.apiserver.k8s.io/v1`: FlowSchema and
//! PriorityLevelConfiguration with Kubernetes' defaults and validation, and
//! the mandatory `exempt` and `catch-all` objects of each kind as
//! Kubernetes' APF bootstrap has them (made at start by
//! [`crate::apf`], which classifies and queues requests by these objects).

use ferrokube_api::status::FieldError;
use ferrokube_api::validation::{is_dns1123_label, is_dns1123_subdomain};
use serde_json::{json, Value};

use super::meta::{array, text};

pub(crate) fn default_flow_schema(obj: &mut Value) {
    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        let unset = spec
            .get("matchingPrecedence")
            .and_then(Value::as_i64)
            .is_none_or(|p| p == 0);
        if unset {
            spec.insert("matchingPrecedence".into(), json!(1000));
        }
    }
}

pub(crate) fn default_priority_level(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    if let Some(e) = spec.get_mut("exempt").and_then(Value::as_object_mut) {
        e.entry("nominalConcurrencyShares").or_insert(json!(0));
        e.entry("lendablePercent").or_insert(json!(0));
    }
    if let Some(l) = spec.get_mut("limited").and_then(Value::as_object_mut) {
        l.entry("nominalConcurrencyShares").or_insert(json!(30));
        l.entry("lendablePercent").or_insert(json!(0));
        if let Some(q) = l
            .get_mut("limitResponse")
            .and_then(|r| r.get_mut("queuing"))
            .and_then(Value::as_object_mut)
        {
            for (k, d) in [("handSize", 8), ("queues", 64), ("queueLengthLimit", 50)] {
                let unset = q.get(k).and_then(Value::as_i64).is_none_or(|v| v == 0);
                if unset {
                    q.insert(k.into(), json!(d));
                }
            }
        }
    }
}

const SUPPORTED_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "proxy",
    "update",
    "watch",
];

fn strings(v: &[Value]) -> Vec<&str> {
    v.iter().map(|s| s.as_str().unwrap_or("")).collect()
}

fn go_strings(v: &[&str]) -> String {
    format!(
        "[]string{{{}}}",
        v.iter()
            .map(|s| format!("{s:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn verbs(rule: &Value, at: &str, errs: &mut Vec<FieldError>) {
    let v = strings(array(rule, "/verbs"));
    if v.is_empty() {
        errs.push(FieldError::required(
            format!("{at}.verbs"),
            "verbs must contain at least one value",
        ));
    } else if v.contains(&"*") {
        if v.len() > 1 {
            errs.push(FieldError::invalid_shown(
                format!("{at}.verbs"),
                go_strings(&v),
                "if '*' is present, must not specify other verbs",
            ));
        }
    } else if !v.iter().all(|x| SUPPORTED_VERBS.contains(x)) {
        errs.push(FieldError::not_supported(
            format!("{at}.verbs"),
            go_strings(&v),
            SUPPORTED_VERBS,
        ));
    }
}

pub(crate) fn validate_flow_schema(obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = text(obj, "/metadata/name");
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let precedence = spec
        .get("matchingPrecedence")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if precedence <= 0 {
        errs.push(FieldError::invalid(
            "spec.matchingPrecedence",
            precedence,
            "must be a positive value",
        ));
    }
    if precedence > 10000 {
        errs.push(FieldError::invalid(
            "spec.matchingPrecedence",
            precedence,
            "must not be greater than 10000",
        ));
    }
    if precedence == 1 && name != "exempt" {
        errs.push(FieldError::invalid(
            "spec.matchingPrecedence",
            precedence,
            "only the schema named 'exempt' may have matchingPrecedence 1",
        ));
    }
    if let Some(m) = spec.get("distinguisherMethod").filter(|m| !m.is_null()) {
        let t = text(m, "/type");
        if !matches!(t, "ByNamespace" | "ByUser") {
            errs.push(FieldError::not_supported(
                "spec.distinguisherMethod.type",
                t,
                &["ByNamespace", "ByUser"],
            ));
        }
    }
    let pl = text(spec, "/priorityLevelConfiguration/name");
    if pl.is_empty() {
        errs.push(FieldError::required(
            "spec.priorityLevelConfiguration.name",
            "must reference a priority level",
        ));
    } else {
        for msg in is_dns1123_subdomain(pl) {
            errs.push(FieldError::invalid(
                "spec.priorityLevelConfiguration.name",
                pl,
                msg,
            ));
        }
    }
    for (i, rule) in array(spec, "/rules").iter().enumerate() {
        let at = format!("spec.rules[{i}]");
        let subjects = array(rule, "/subjects");
        if subjects.is_empty() {
            errs.push(FieldError::required(
                format!("{at}.subjects"),
                "subjects must contain at least one value",
            ));
        }
        for (j, s) in subjects.iter().enumerate() {
            subject(s, &format!("{at}.subjects[{j}]"), &mut errs);
        }
        let resource_rules = array(rule, "/resourceRules");
        let non_resource_rules = array(rule, "/nonResourceRules");
        if resource_rules.is_empty() && non_resource_rules.is_empty() {
            errs.push(FieldError::required(
                at.clone(),
                "at least one of resourceRules and nonResourceRules has to be non-empty",
            ));
        }
        for (j, r) in resource_rules.iter().enumerate() {
            resource_rule(r, &format!("{at}.resourceRules[{j}]"), &mut errs);
        }
        for (j, r) in non_resource_rules.iter().enumerate() {
            non_resource_rule(r, &format!("{at}.nonResourceRules[{j}]"), &mut errs);
        }
    }
    conditions(obj, &mut errs);
    errs
}

/// One of a FlowSchema rule's `nonResourceRules`, at `here`.
fn non_resource_rule(r: &Value, here: &str, errs: &mut Vec<FieldError>) {
    verbs(r, here, errs);
    let urls = strings(array(r, "/nonResourceURLs"));
    if urls.is_empty() {
        errs.push(FieldError::required(
            format!("{here}.nonResourceURLs"),
            "nonResourceURLs must contain at least one value",
        ));
    } else if urls.contains(&"*") {
        if urls.len() > 1 {
            errs.push(FieldError::invalid_shown(
                format!("{here}.nonResourceURLs"),
                go_strings(&urls),
                "if '*' is present, must not specify other non-resource URLs",
            ));
        }
    } else {
        for (k, u) in urls.iter().enumerate() {
            if let Some(why) = non_resource_url_error(u) {
                errs.push(FieldError::invalid(
                    format!("{here}.nonResourceURLs[{k}]"),
                    *u,
                    why,
                ));
            }
        }
    }
}

fn subject(s: &Value, at: &str, errs: &mut Vec<FieldError>) {
    let kind = text(s, "/kind");
    let present = |k: &str| s.get(k).is_some_and(|v| !v.is_null());
    let others: &[(&str, &str)] = match kind {
        "ServiceAccount" => {
            match s.get("serviceAccount").filter(|v| !v.is_null()) {
                None => errs.push(FieldError::required(
                    format!("{at}.serviceAccount"),
                    "serviceAccount is required when subject kind is 'ServiceAccount'",
                )),
                Some(sa) => {
                    let name = text(sa, "/name");
                    if name.is_empty() {
                        errs.push(FieldError::required(
                            format!("{at}.serviceAccount.name"),
                            "",
                        ));
                    } else if name != "*" {
                        for msg in is_dns1123_subdomain(name) {
                            errs.push(FieldError::invalid(
                                format!("{at}.serviceAccount.name"),
                                name,
                                msg,
                            ));
                        }
                    }
                    let ns = text(sa, "/namespace");
                    if ns.is_empty() {
                        errs.push(FieldError::required(
                            format!("{at}.serviceAccount.namespace"),
                            "must specify namespace for service account",
                        ));
                    } else {
                        for msg in is_dns1123_label(ns) {
                            errs.push(FieldError::invalid(
                                format!("{at}.serviceAccount.namespace"),
                                ns,
                                msg,
                            ));
                        }
                    }
                }
            }
            &[("user", "User"), ("group", "Group")]
        }
        "User" | "Group" => {
            let field = if kind == "User" { "user" } else { "group" };
            match s.get(field).filter(|v| !v.is_null()) {
                None => errs.push(FieldError::required(
                    format!("{at}.{field}"),
                    format!("{field} is required when subject kind is '{kind}'"),
                )),
                Some(v) if text(v, "/name").is_empty() => {
                    errs.push(FieldError::required(format!("{at}.{field}.name"), ""))
                }
                Some(_) => {}
            }
            if kind == "User" {
                &[("serviceAccount", "ServiceAccount"), ("group", "Group")]
            } else {
                &[("serviceAccount", "ServiceAccount"), ("user", "User")]
            }
        }
        other => {
            errs.push(FieldError::not_supported(
                format!("{at}.kind"),
                other,
                &["Group", "ServiceAccount", "User"],
            ));
            &[]
        }
    };
    for (field, needs) in others {
        if present(field) {
            errs.push(FieldError::forbidden(
                format!("{at}.{field}"),
                format!("{field} is forbidden when subject kind is not '{needs}'"),
            ));
        }
    }
}

fn resource_rule(r: &Value, at: &str, errs: &mut Vec<FieldError>) {
    verbs(r, at, errs);
    for (field, what) in [
        (
            "apiGroups",
            "resource rules must supply at least one api group",
        ),
        (
            "resources",
            "resource rules must supply at least one resource",
        ),
    ] {
        let v = strings(array(r, &format!("/{field}")));
        if v.is_empty() {
            errs.push(FieldError::required(format!("{at}.{field}"), what));
        } else if v.len() > 1 && v.contains(&"*") {
            let noun = if field == "apiGroups" {
                "api groups"
            } else {
                "resources"
            };
            errs.push(FieldError::invalid_shown(
                format!("{at}.{field}"),
                go_strings(&v),
                format!("if '*' is present, must not specify other {noun}"),
            ));
        }
    }
    let namespaces = strings(array(r, "/namespaces"));
    let cluster_scope = r.get("clusterScope").and_then(Value::as_bool) == Some(true);
    if namespaces.is_empty() && !cluster_scope {
        errs.push(FieldError::required(
            format!("{at}.namespaces"),
            "resource rules that are not cluster scoped must supply at least one namespace",
        ));
    } else if namespaces.contains(&"*") {
        if namespaces.len() > 1 {
            errs.push(FieldError::invalid_shown(
                format!("{at}.namespaces"),
                go_strings(&namespaces),
                "if '*' is present, must not specify other namespaces",
            ));
        }
    } else {
        for (i, ns) in namespaces.iter().enumerate() {
            for msg in is_dns1123_label(ns) {
                errs.push(FieldError::invalid(
                    format!("{at}.namespaces[{i}]"),
                    *ns,
                    format!("each member of this list must be '*' or a DNS-1123 label; {msg}"),
                ));
            }
        }
    }
}

fn non_resource_url_error(path: &str) -> Option<&'static str> {
    if path.is_empty() {
        return Some("must not be empty");
    }
    if path == "/" {
        return None;
    }
    if !path.starts_with('/') {
        return Some("must start with slash");
    }
    if path.contains(' ') {
        return Some("must not contain white-space");
    }
    if path.contains("//") {
        return Some("must not contain double slash");
    }
    let stars = path.matches('*').count();
    if stars > 1 || (stars == 1 && !path.ends_with("/*")) {
        return Some("wildcard can only do suffix matching");
    }
    None
}

fn conditions(obj: &Value, errs: &mut Vec<FieldError>) {
    let mut seen = Vec::new();
    for (i, c) in array(obj, "/status/conditions").iter().enumerate() {
        let t = text(c, "/type");
        if seen.contains(&t) {
            errs.push(FieldError::duplicate(
                format!("status.conditions[{i}].type"),
                t,
            ));
        }
        seen.push(t);
        if t.is_empty() {
            errs.push(FieldError::required(
                format!("status.conditions[{i}].type"),
                "must not be empty",
            ));
        }
    }
}

pub(crate) fn validate_priority_level(obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = text(obj, "/metadata/name");
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let ty = text(spec, "/type");
    if (name == "exempt") != (ty == "Exempt") {
        errs.push(FieldError::invalid(
            "spec.type",
            ty,
            "type must be 'Exempt' if and only if name is 'exempt'",
        ));
    }
    let has = |k: &str| spec.get(k).is_some_and(|v| !v.is_null());
    match ty {
        "Exempt" => {
            if has("limited") {
                errs.push(FieldError::forbidden(
                    "spec.limited",
                    "must be nil if the type is not Limited",
                ));
            }
            if let Some(e) = spec.get("exempt").filter(|v| !v.is_null()) {
                shares_and_percents(e, "spec.exempt", &mut errs);
            }
        }
        "Limited" => {
            if has("exempt") {
                errs.push(FieldError::forbidden(
                    "spec.exempt",
                    "must be nil if the type is Limited",
                ));
            }
            match spec.get("limited").filter(|v| !v.is_null()) {
                None => errs.push(FieldError::required(
                    "spec.limited",
                    "must not be empty when type is Limited",
                )),
                Some(l) => {
                    shares_and_percents(l, "spec.limited", &mut errs);
                    limit_response(
                        l.get("limitResponse").unwrap_or(&Value::Null),
                        "spec.limited.limitResponse",
                        &mut errs,
                    );
                }
            }
        }
        other => errs.push(FieldError::not_supported(
            "spec.type",
            other,
            &["Exempt", "Limited"],
        )),
    }
    conditions(obj, &mut errs);
    errs
}

fn shares_and_percents(v: &Value, at: &str, errs: &mut Vec<FieldError>) {
    if let Some(n) = v.get("nominalConcurrencyShares").and_then(Value::as_i64) {
        if n < 0 {
            errs.push(FieldError::invalid(
                format!("{at}.nominalConcurrencyShares"),
                n,
                "must be a non-negative integer",
            ));
        }
    }
    if let Some(p) = v.get("lendablePercent").and_then(Value::as_i64) {
        if !(0..=100).contains(&p) {
            errs.push(FieldError::invalid(
                format!("{at}.lendablePercent"),
                p,
                "must be between 0 and 100, inclusive",
            ));
        }
    }
    if let Some(p) = v.get("borrowingLimitPercent").and_then(Value::as_i64) {
        if p < 0 {
            errs.push(FieldError::invalid(
                format!("{at}.borrowingLimitPercent"),
                p,
                "if specified, must be a non-negative integer",
            ));
        }
    }
}

fn limit_response(lr: &Value, at: &str, errs: &mut Vec<FieldError>) {
    let queuing = lr.get("queuing").filter(|q| !q.is_null());
    match text(lr, "/type") {
        "Reject" => {
            if queuing.is_some() {
                errs.push(FieldError::forbidden(
                    format!("{at}.queuing"),
                    "must be nil if limited.limitResponse.type is not Limited",
                ));
            }
        }
        "Queue" => match queuing {
            None => errs.push(FieldError::required(
                format!("{at}.queuing"),
                "must not be empty if limited.limitResponse.type is Limited",
            )),
            Some(q) => {
                let n = |k: &str| q.get(k).and_then(Value::as_i64).unwrap_or(0);
                let (limit, queues, hand) = (n("queueLengthLimit"), n("queues"), n("handSize"));
                if limit <= 0 {
                    errs.push(FieldError::invalid(
                        format!("{at}.queuing.queueLengthLimit"),
                        limit,
                        "must be positive",
                    ));
                }
                if queues <= 0 {
                    errs.push(FieldError::invalid(
                        format!("{at}.queuing.queues"),
                        queues,
                        "must be positive",
                    ));
                } else if queues > 10_000_000 {
                    errs.push(FieldError::invalid(
                        format!("{at}.queuing.queues"),
                        queues,
                        "must not be greater than 10000000",
                    ));
                }
                if hand <= 0 {
                    errs.push(FieldError::invalid(
                        format!("{at}.queuing.handSize"),
                        hand,
                        "must be positive",
                    ));
                } else if hand > queues {
                    errs.push(FieldError::invalid(
                        format!("{at}.queuing.handSize"),
                        hand,
                        format!("should not be greater than queues ({queues})"),
                    ));
                }
            }
        },
        other => errs.push(FieldError::not_supported(
            format!("{at}.type"),
            other,
            &["Queue", "Reject"],
        )),
    }
}

/// Every verb, group, resource and namespace; every non-resource URL.
fn match_everything(subjects: Value) -> Value {
    json!([{
        "subjects": subjects,
        "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"],
            "clusterScope": true, "namespaces": ["*"]}],
        "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
    }])
}

fn group(name: &str) -> Value {
    json!({"kind": "Group", "group": {"name": name}})
}

/// The mandatory objects, as Kubernetes' bootstrap configuration has them.
pub(crate) fn mandatory_objects() -> Vec<(&'static str, Value)> {
    let meta = |name: &str| json!({"name": name, "annotations": {"apf.kubernetes.io/autoupdate-spec": "true"}});
    let api_version = "flowcontrol.apiserver.k8s.io/v1";
    vec![
        (
            "prioritylevelconfigurations",
            json!({"apiVersion": api_version, "kind": "PriorityLevelConfiguration",
                "metadata": meta("exempt"),
                "spec": {"type": "Exempt", "exempt": {"nominalConcurrencyShares": 0, "lendablePercent": 0}}}),
        ),
        (
            "prioritylevelconfigurations",
            json!({"apiVersion": api_version, "kind": "PriorityLevelConfiguration",
                "metadata": meta("catch-all"),
                "spec": {"type": "Limited", "limited": {"nominalConcurrencyShares": 5,
                    "lendablePercent": 0, "limitResponse": {"type": "Reject"}}}}),
        ),
        (
            "flowschemas",
            json!({"apiVersion": api_version, "kind": "FlowSchema",
                "metadata": meta("exempt"),
                "spec": {"matchingPrecedence": 1, "priorityLevelConfiguration": {"name": "exempt"},
                    "rules": match_everything(json!([group("system:masters")]))}}),
        ),
        (
            "flowschemas",
            json!({"apiVersion": api_version, "kind": "FlowSchema",
                "metadata": meta("catch-all"),
                "spec": {"matchingPrecedence": 10000, "priorityLevelConfiguration": {"name": "catch-all"},
                    "distinguisherMethod": {"type": "ByUser"},
                    "rules": match_everything(json!([group("system:unauthenticated"), group("system:authenticated")]))}}),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(errs: Vec<FieldError>) -> Vec<String> {
        errs.iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn the_mandatory_objects_are_valid() {
        for (_, mut obj) in mandatory_objects() {
            if obj["kind"] == "FlowSchema" {
                default_flow_schema(&mut obj);
                assert!(validate_flow_schema(&obj).is_empty(), "{obj}");
            } else {
                default_priority_level(&mut obj);
                assert!(validate_priority_level(&obj).is_empty(), "{obj}");
            }
        }
    }

    #[test]
    fn defaults_and_errors() {
        let mut pl = json!({"metadata": {"name": "batch"}, "spec": {"type": "Limited",
            "limited": {"limitResponse": {"type": "Queue", "queuing": {}}}}});
        default_priority_level(&mut pl);
        assert_eq!(pl["spec"]["limited"]["nominalConcurrencyShares"], 30);
        assert_eq!(
            pl["spec"]["limited"]["limitResponse"]["queuing"],
            json!({"handSize": 8, "queues": 64, "queueLengthLimit": 50})
        );
        assert!(validate_priority_level(&pl).is_empty());
        let bad = json!({"metadata": {"name": "exempt"}, "spec": {"type": "Limited", "limited": {
            "limitResponse": {"type": "Queue", "queuing": {"queues": 4, "handSize": 8, "queueLengthLimit": 5}}}}});
        assert_eq!(
            messages(validate_priority_level(&bad)),
            [
                "spec.type: Invalid value: \"Limited\": type must be 'Exempt' if and only if name is 'exempt'",
                "spec.limited.limitResponse.queuing.handSize: Invalid value: 8: should not be greater than queues (4)",
            ]
        );
        let mut fs = json!({"metadata": {"name": "mine"}, "spec": {"priorityLevelConfiguration": {},
            "rules": [{"subjects": [{"kind": "User"}], "resourceRules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]}]}});
        default_flow_schema(&mut fs);
        assert_eq!(fs["spec"]["matchingPrecedence"], 1000);
        assert_eq!(
            messages(validate_flow_schema(&fs)),
            [
                "spec.priorityLevelConfiguration.name: Required value: must reference a priority level",
                "spec.rules[0].subjects[0].user: Required value: user is required when subject kind is 'User'",
                "spec.rules[0].resourceRules[0].namespaces: Required value: resource rules that are not cluster scoped must supply at least one namespace",
            ]
        );
    }
}
