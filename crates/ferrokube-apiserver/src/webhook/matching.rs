//! Whether a webhook (or a ValidatingAdmissionPolicy, see
//! [`crate::policy`]) is asked about a request: its rules (Kubernetes'
//! `predicates/rules`), its match policy, and its namespace and object
//! selectors (`predicates/namespace`, `predicates/object`).

use std::collections::BTreeMap;

use ferrokube_api::labels::Selector;
use serde_json::Value;

use super::config::Rule;
use super::{Operation, Request};
use crate::rest::Rest;

/// What a rule is matched against.
pub(crate) struct Target<'a> {
    pub(crate) operation: Operation,
    pub(crate) group: &'a str,
    pub(crate) version: &'a str,
    pub(crate) resource: &'a str,
    pub(crate) subresource: &'a str,
    /// Whether the resource is namespaced (namespaces themselves count as
    /// cluster-scoped).
    pub(crate) namespaced: bool,
}

impl<'a> Target<'a> {
    pub(crate) fn of(req: &'a Request<'_>) -> Target<'a> {
        Target {
            operation: req.operation,
            group: req.def.group,
            version: req.def.version,
            resource: req.def.plural,
            subresource: req.subresource,
            namespaced: req.def.namespaced,
        }
    }
}

fn listed(list: &[String], value: &str) -> bool {
    list.iter().any(|v| v == "*" || v == value)
}

/// `res`, `res/sub`, `*`, `*/*`, `res/*`, `*/sub` against the request's
/// resource and subresource.
fn resource_listed(list: &[String], resource: &str, subresource: &str) -> bool {
    list.iter().any(|r| {
        let (res, sub) = r.split_once('/').unwrap_or((r, ""));
        (res == "*" || res == resource) && (sub == "*" || sub == subresource)
    })
}

fn scope_matches(scope: &str, namespaced: bool) -> bool {
    match scope {
        "Cluster" => !namespaced,
        "Namespaced" => namespaced,
        _ => true,
    }
}

/// Whether `rule` matches `t` exactly (its version included).
pub(crate) fn rule_matches(rule: &Rule, t: &Target<'_>) -> bool {
    listed(&rule.operations, t.operation.as_str())
        && listed(&rule.groups, t.group)
        && listed(&rule.versions, t.version)
        && resource_listed(&rule.resources, t.resource, t.subresource)
        && scope_matches(&rule.scope, t.namespaced)
}

/// Whether any of `rules` matches `t`; with `exact` false (`matchPolicy:
/// Equivalent`) a rule naming the same group and resource in another
/// version matches too: this server serves each resource in one version,
/// which is the one sent.
pub(crate) fn rules_match(rules: &[Rule], exact: bool, t: &Target<'_>) -> bool {
    if rules.iter().any(|r| rule_matches(r, t)) {
        return true;
    }
    !exact
        && rules.iter().any(|r| {
            listed(&r.operations, t.operation.as_str())
                && listed(&r.groups, t.group)
                && !r.versions.is_empty()
                && resource_listed(&r.resources, t.resource, t.subresource)
                && scope_matches(&r.scope, t.namespaced)
        })
}

/// The labels of a JSON object (`metadata.labels`).
pub(crate) fn labels_of(obj: Option<&Value>) -> BTreeMap<String, String> {
    obj.and_then(|o| o.pointer("/metadata/labels"))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// The labels the namespace selector is matched against: the namespace
/// object's own for namespaces, none to match for other cluster-scoped
/// resources (`None`: the selector does not apply), else the request's
/// namespace's from the watch cache.
pub(crate) fn namespace_labels(
    rest: &Rest,
    req: &Request<'_>,
    obj: Option<&Value>,
) -> Option<BTreeMap<String, String>> {
    if req.def.group.is_empty() && req.def.plural == "namespaces" {
        return Some(labels_of(obj.or(req.old)));
    }
    if !req.def.namespaced || req.namespace.is_empty() {
        return None;
    }
    let def = rest.kinds.get("", "v1", "namespaces")?;
    let cache = rest.cache.resource(def.storage_prefix)?;
    let ns = cache.get(&format!("{}{}", def.storage_prefix, req.namespace));
    Some(ns.map(|o| o.labels.clone()).unwrap_or_default())
}

/// Whether `selector` (none: everything) matches.
pub(crate) fn selected(selector: Option<&Selector>, labels: &BTreeMap<String, String>) -> bool {
    selector.is_none_or(|s| s.matches(labels))
}

/// `objectSelector`: the new or the old object's labels match.
pub(crate) fn object_selected(
    selector: Option<&Selector>,
    obj: Option<&Value>,
    old: Option<&Value>,
) -> bool {
    let Some(s) = selector.filter(|s| !s.is_empty()) else {
        return true;
    };
    [obj, old]
        .into_iter()
        .flatten()
        .any(|o| s.matches(labels_of(Some(o))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(v: Value) -> Rule {
        Rule::from_value(&v)
    }

    fn pods(op: Operation, sub: &str) -> Target<'static> {
        Target {
            operation: op,
            group: "",
            version: "v1",
            resource: "pods",
            subresource: if sub.is_empty() { "" } else { "exec" },
            namespaced: true,
        }
    }

    #[test]
    fn rules_match_operations_groups_versions_and_resources() {
        let r = rule(json!({"operations": ["CREATE"], "apiGroups": [""],
            "apiVersions": ["v1"], "resources": ["pods"]}));
        assert!(rule_matches(&r, &pods(Operation::Create, "")));
        assert!(!rule_matches(&r, &pods(Operation::Update, "")));
        assert!(!rule_matches(&r, &pods(Operation::Create, "exec")));
        let r = rule(json!({"operations": ["*"], "apiGroups": ["*"],
            "apiVersions": ["*"], "resources": ["*"]}));
        assert!(rule_matches(&r, &pods(Operation::Delete, "")));
        assert!(
            !rule_matches(&r, &pods(Operation::Connect, "exec")),
            "* is every resource but no subresource"
        );
        // A `*` subresource also matches the resource itself, as upstream.
        for (res, main_too) in [
            ("*/*", true),
            ("pods/*", true),
            ("*/exec", false),
            ("pods/exec", false),
        ] {
            let r = rule(json!({"operations": ["CONNECT"], "apiGroups": [""],
                "apiVersions": ["v1"], "resources": [res]}));
            assert!(rule_matches(&r, &pods(Operation::Connect, "exec")), "{res}");
            assert_eq!(
                rule_matches(&r, &pods(Operation::Connect, "")),
                main_too,
                "{res}"
            );
        }
        let apps = rule(json!({"operations": ["CREATE"], "apiGroups": ["apps"],
            "apiVersions": ["v1"], "resources": ["pods"]}));
        assert!(!rule_matches(&apps, &pods(Operation::Create, "")));
    }

    #[test]
    fn scope_and_match_policy() {
        let cluster = rule(json!({"operations": ["CREATE"], "apiGroups": [""],
            "apiVersions": ["v1"], "resources": ["pods"], "scope": "Cluster"}));
        assert!(!rule_matches(&cluster, &pods(Operation::Create, "")));
        let namespaced = rule(json!({"operations": ["CREATE"], "apiGroups": [""],
            "apiVersions": ["v1"], "resources": ["pods"], "scope": "Namespaced"}));
        assert!(rule_matches(&namespaced, &pods(Operation::Create, "")));
        let other_version = rule(json!({"operations": ["CREATE"], "apiGroups": [""],
            "apiVersions": ["v1beta1"], "resources": ["pods"]}));
        let t = pods(Operation::Create, "");
        assert!(!rules_match(std::slice::from_ref(&other_version), true, &t));
        assert!(rules_match(&[other_version], false, &t));
    }

    #[test]
    fn object_selector_takes_old_or_new_labels() {
        let s = Selector::from_value(&json!({"matchLabels": {"team": "a"}}))
            .unwrap()
            .unwrap();
        let a = json!({"metadata": {"labels": {"team": "a"}}});
        let b = json!({"metadata": {"labels": {"team": "b"}}});
        assert!(object_selected(Some(&s), Some(&a), None));
        assert!(object_selected(Some(&s), Some(&b), Some(&a)));
        assert!(!object_selected(Some(&s), Some(&b), None));
        assert!(object_selected(None, Some(&b), None));
        let empty = Selector::from_value(&json!({})).unwrap();
        assert!(object_selected(empty.as_ref(), Some(&b), None));
    }
}
