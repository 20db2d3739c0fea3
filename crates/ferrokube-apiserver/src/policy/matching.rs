//! Whether a policy's `matchConstraints` or a binding's `matchResources`
//! take a request (Kubernetes' `policy/matching`): the namespace and object
//! selectors, then `excludeResourceRules`, then `resourceRules` (none: any
//! resource), each rule limited to its `resourceNames`; `matchPolicy:
//! Equivalent` also takes a rule naming another version of the resource.
//! Rules and selectors are the webhooks' ([`crate::webhook::matching`]).

use std::collections::BTreeMap;

use serde_json::Value;

use super::config::{MatchResources, NamedRule};
use crate::webhook::matching::{object_selected, rules_match, selected, Target};

/// What a request offers to be matched.
pub(crate) struct Subject<'a> {
    pub(crate) target: Target<'a>,
    /// The request's name (empty for a create with `generateName`).
    pub(crate) name: &'a str,
    /// The labels the namespace selector sees (none: cluster-scoped, the
    /// selector does not apply).
    pub(crate) namespace_labels: Option<&'a BTreeMap<String, String>>,
    pub(crate) object: Option<&'a Value>,
    pub(crate) old: Option<&'a Value>,
}

fn rules_take(rules: &[NamedRule], exact: bool, s: &Subject<'_>) -> bool {
    rules.iter().any(|r| {
        rules_match(std::slice::from_ref(&r.rule), exact, &s.target)
            && (r.names.is_empty() || r.names.iter().any(|n| n == s.name))
    })
}

/// Whether `m` takes the request.
pub(crate) fn matches(m: &MatchResources, s: &Subject<'_>) -> bool {
    if let Some(labels) = s.namespace_labels {
        if !selected(m.namespace_selector.as_ref(), labels) {
            return false;
        }
    }
    if !object_selected(m.object_selector.as_ref(), s.object, s.old) {
        return false;
    }
    if rules_take(&m.excludes, m.exact, s) {
        return false;
    }
    m.rules.is_empty() || rules_take(&m.rules, m.exact, s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::Operation;
    use serde_json::json;

    fn deployments(op: Operation, version: &'static str) -> Target<'static> {
        Target {
            operation: op,
            group: "apps",
            version,
            resource: "deployments",
            subresource: "",
            namespaced: true,
        }
    }

    fn subject<'a>(
        target: Target<'a>,
        name: &'a str,
        ns: Option<&'a BTreeMap<String, String>>,
        obj: &'a Value,
    ) -> Subject<'a> {
        Subject {
            target,
            name,
            namespace_labels: ns,
            object: Some(obj),
            old: None,
        }
    }

    #[test]
    fn rules_names_and_exclusions() {
        let m = MatchResources::from_value(&json!({
            "resourceRules": [{"operations": ["CREATE", "UPDATE"], "apiGroups": ["apps"],
                "apiVersions": ["v1"], "resources": ["deployments"]}],
            "excludeResourceRules": [{"operations": ["*"], "apiGroups": ["apps"],
                "apiVersions": ["v1"], "resources": ["deployments"],
                "resourceNames": ["exempt"]}],
        }));
        let obj = json!({"metadata": {"name": "web"}});
        assert!(matches(
            &m,
            &subject(deployments(Operation::Create, "v1"), "web", None, &obj)
        ));
        assert!(!matches(
            &m,
            &subject(deployments(Operation::Delete, "v1"), "web", None, &obj)
        ));
        assert!(!matches(
            &m,
            &subject(deployments(Operation::Create, "v1"), "exempt", None, &obj)
        ));
        let named = MatchResources::from_value(&json!({
            "resourceRules": [{"operations": ["*"], "apiGroups": ["apps"],
                "apiVersions": ["v1"], "resources": ["deployments"], "resourceNames": ["a"]}],
        }));
        assert!(matches(
            &named,
            &subject(deployments(Operation::Update, "v1"), "a", None, &obj)
        ));
        assert!(!matches(
            &named,
            &subject(deployments(Operation::Update, "v1"), "b", None, &obj)
        ));
        // No rules: any resource (a binding narrowing only by namespace).
        let any = MatchResources::from_value(&json!({}));
        assert!(matches(
            &any,
            &subject(deployments(Operation::Delete, "v1"), "x", None, &obj)
        ));
    }

    #[test]
    fn match_policy_and_selectors() {
        let rule = json!([{"operations": ["CREATE"], "apiGroups": ["apps"],
            "apiVersions": ["v1beta1"], "resources": ["deployments"]}]);
        let exact = MatchResources::from_value(
            &json!({"resourceRules": rule.clone(), "matchPolicy": "Exact"}),
        );
        let equivalent = MatchResources::from_value(
            &json!({"resourceRules": rule, "matchPolicy": "Equivalent"}),
        );
        let obj = json!({"metadata": {"name": "web", "labels": {"tier": "web"}}});
        let s = subject(deployments(Operation::Create, "v1"), "web", None, &obj);
        assert!(!matches(&exact, &s));
        assert!(matches(&equivalent, &s));

        let m = MatchResources::from_value(&json!({
            "namespaceSelector": {"matchLabels": {"env": "prod"}},
            "objectSelector": {"matchLabels": {"tier": "web"}},
        }));
        let prod: BTreeMap<String, String> = [("env".into(), "prod".into())].into();
        let dev: BTreeMap<String, String> = [("env".into(), "dev".into())].into();
        let t = || deployments(Operation::Create, "v1");
        assert!(matches(&m, &subject(t(), "web", Some(&prod), &obj)));
        assert!(!matches(&m, &subject(t(), "web", Some(&dev), &obj)));
        let other = json!({"metadata": {"name": "db", "labels": {"tier": "db"}}});
        assert!(!matches(&m, &subject(t(), "db", Some(&prod), &other)));
        // Cluster-scoped: the namespace selector does not apply.
        assert!(matches(&m, &subject(t(), "web", None, &obj)));
    }
}
