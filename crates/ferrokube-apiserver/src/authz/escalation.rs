//! Escalation prevention in the RBAC registry, as Kubernetes'
//! `policybased` storages: a user may write a Role or ClusterRole only
//! with rules they already hold (or with the `escalate` verb on it), and a
//! RoleBinding or ClusterRoleBinding only to a role whose rules they hold
//! (or with the `bind` verb on that role). Members of `system:masters`,
//! and the server's own writes (no user), are not checked. A refusal is a
//! 403 naming what is missing: `user "jane" (groups=[...]) is attempting
//! to grant RBAC permissions not currently held:` and the rules.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use ferrokube_api::registry::ResourceDef;
use ferrokube_api::status::ApiError;
use serde_json::Value;

use super::modes::MASTERS_GROUP;
use super::rbac::{go_quoted_list, PolicyRule, Rbac, GROUP};
use super::{Attributes, Authorizer, Decision};
use crate::authn::UserInfo;

/// What the RBAC registry asks before writing a role or binding.
#[derive(Clone)]
pub(crate) struct Escalation {
    /// The server's authorizer (asked about `escalate` and `bind`).
    pub(crate) authorizer: Arc<dyn Authorizer>,
    /// Whose rules a user holds.
    pub(crate) rbac: Arc<Rbac>,
}

impl Escalation {
    /// Checks the write of `new` (over `old`, for an update) of an RBAC
    /// object by `user`, in namespace `ns`, at the URL naming `url_name`
    /// (empty for a create). Other resources pass.
    pub(crate) fn check(
        &self,
        def: &ResourceDef,
        ns: &str,
        url_name: &str,
        old: Option<&Value>,
        new: &Value,
        user: Option<&UserInfo>,
    ) -> Result<(), ApiError> {
        if def.group != GROUP {
            return Ok(());
        }
        let Some(user) = user else { return Ok(()) };
        if user.groups.iter().any(|g| g == MASTERS_GROUP) {
            return Ok(());
        }
        let name = new
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or(url_name);
        match def.plural {
            "roles" | "clusterroles" => {
                if self.allowed(user, "escalate", def.plural, ns, url_name) {
                    return Ok(());
                }
                if old.is_some_and(|old| only_gc_fields_change(old, new)) {
                    return Ok(());
                }
                let refuse = |why: String| ApiError::forbidden_on(GROUP, def.plural, name, &why);
                self.confirm_no_escalation(user, ns, &PolicyRule::list_from(new))
                    .map_err(refuse)?;
                let aggregates = |v: &Value| {
                    v.pointer("/aggregationRule/clusterRoleSelectors")
                        .and_then(Value::as_array)
                        .is_some_and(|s| !s.is_empty())
                };
                if def.plural == "clusterroles" && (aggregates(new) || old.is_some_and(aggregates))
                {
                    self.confirm_no_escalation(user, ns, &full_authority())
                        .map_err(|_| {
                            refuse(
                                "must have cluster-admin privileges to use the aggregationRule"
                                    .into(),
                            )
                        })?;
                }
                Ok(())
            }
            "rolebindings" | "clusterrolebindings" => {
                if old.is_some_and(|old| only_gc_fields_change(old, new)) {
                    return Ok(());
                }
                let binding_ns = if def.plural == "rolebindings" { ns } else { "" };
                let text = |p: &str| new.pointer(p).and_then(Value::as_str).unwrap_or_default();
                let (kind, group, role) = (
                    text("/roleRef/kind"),
                    text("/roleRef/apiGroup"),
                    text("/roleRef/name"),
                );
                let resource = match kind {
                    "ClusterRole" => Some("clusterroles"),
                    "Role" => Some("roles"),
                    _ => None,
                };
                if let Some(resource) = resource {
                    let a = Attributes {
                        user: user.clone(),
                        verb: "bind".into(),
                        resource_request: true,
                        namespace: binding_ns.into(),
                        api_group: group.into(),
                        resource: resource.into(),
                        name: role.into(),
                        ..Default::default()
                    };
                    if matches!(self.authorizer.authorize(&a), Decision::Allow(_)) {
                        return Ok(());
                    }
                }
                let rules = self.rbac.role_ref_rules(kind, role, binding_ns)?;
                self.confirm_no_escalation(user, ns, &rules)
                    .map_err(|why| ApiError::forbidden_on(GROUP, def.plural, name, &why))
            }
            _ => Ok(()),
        }
    }

    /// Whether the authorizer allows `user` the special `verb` on an RBAC
    /// `resource` (Kubernetes' `RoleEscalationAuthorized`).
    fn allowed(&self, user: &UserInfo, verb: &str, resource: &str, ns: &str, name: &str) -> bool {
        let a = Attributes {
            user: user.clone(),
            verb: verb.into(),
            resource_request: true,
            namespace: ns.into(),
            api_group: GROUP.into(),
            api_version: "*".into(),
            resource: resource.into(),
            name: name.into(),
            ..Default::default()
        };
        matches!(self.authorizer.authorize(&a), Decision::Allow(_))
    }

    /// Kubernetes' `ConfirmNoEscalation`: whether `user`'s rules in `ns`
    /// cover `rules`; the refusal's reason when not.
    fn confirm_no_escalation(
        &self,
        user: &UserInfo,
        ns: &str,
        rules: &[PolicyRule],
    ) -> Result<(), String> {
        let (owner, errors) = self.rbac.rules_of(user, ns);
        let missing = uncovered(&owner, rules);
        if missing.is_empty() {
            return Ok(());
        }
        let described: BTreeSet<String> = compact(missing)
            .iter()
            .map(PolicyRule::compact_string)
            .collect();
        let mut msg = format!(
            "user {:?} (groups={}) is attempting to grant RBAC permissions not currently held:\n{}",
            user.name,
            go_quoted_list(&user.groups),
            described.into_iter().collect::<Vec<_>>().join("\n")
        );
        if !errors.is_empty() {
            msg.push_str(&format!("; resolution errors: [{}]", errors.join(" ")));
        }
        Err(msg)
    }
}

/// `*` on everything, resources and paths: what an aggregation rule needs.
fn full_authority() -> Vec<PolicyRule> {
    vec![
        PolicyRule {
            verbs: vec!["*".into()],
            api_groups: vec!["*".into()],
            resources: vec!["*".into()],
            ..Default::default()
        },
        PolicyRule {
            verbs: vec!["*".into()],
            non_resource_urls: vec!["*".into()],
            ..Default::default()
        },
    ]
}

/// Whether `new` differs from `old` only in what the garbage collector
/// changes (owner references, finalizers) or the server keeps.
fn only_gc_fields_change(old: &Value, new: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            for f in [
                "ownerReferences",
                "finalizers",
                "selfLink",
                "resourceVersion",
                "managedFields",
                "generation",
            ] {
                meta.remove(f);
            }
        }
        v
    };
    strip(old) == strip(new)
}

/// Each rule split into single-verb, single-resource, single-name pieces
/// (Kubernetes' `BreakdownRule`).
fn breakdown(rule: &PolicyRule) -> Vec<PolicyRule> {
    let one = |s: &String| vec![s.clone()];
    let mut out = Vec::new();
    for g in &rule.api_groups {
        for r in &rule.resources {
            for v in &rule.verbs {
                if rule.resource_names.is_empty() {
                    out.push(PolicyRule {
                        api_groups: one(g),
                        resources: one(r),
                        verbs: one(v),
                        ..Default::default()
                    });
                } else {
                    for n in &rule.resource_names {
                        out.push(PolicyRule {
                            api_groups: one(g),
                            resources: one(r),
                            verbs: one(v),
                            resource_names: one(n),
                            ..Default::default()
                        });
                    }
                }
            }
        }
    }
    for u in &rule.non_resource_urls {
        for v in &rule.verbs {
            out.push(PolicyRule {
                non_resource_urls: one(u),
                verbs: one(v),
                ..Default::default()
            });
        }
    }
    out
}

fn has(set: &[String], s: &str) -> bool {
    set.iter().any(|x| x == s)
}

fn has_all(set: &[String], wanted: &[String]) -> bool {
    wanted.iter().all(|w| has(set, w))
}

fn resources_cover(owner: &[String], wanted: &[String]) -> bool {
    if has(owner, "*") || has_all(owner, wanted) {
        return true;
    }
    wanted.iter().all(|w| {
        has(owner, w)
            || w.split_once('/')
                .is_some_and(|(_, sub)| has(owner, &format!("*/{sub}")))
    })
}

fn urls_cover(owner: &[String], wanted: &[String]) -> bool {
    wanted.iter().all(|w| {
        owner
            .iter()
            .any(|o| o == w || (o.ends_with('*') && w.starts_with(o.trim_end_matches('*'))))
    })
}

/// Kubernetes' `ruleCovers`: whether `owner` covers the single-piece `sub`.
fn rule_covers(owner: &PolicyRule, sub: &PolicyRule) -> bool {
    let verbs = has(&owner.verbs, "*") || has_all(&owner.verbs, &sub.verbs);
    let groups = has(&owner.api_groups, "*") || has_all(&owner.api_groups, &sub.api_groups);
    let names = if sub.resource_names.is_empty() {
        owner.resource_names.is_empty()
    } else {
        owner.resource_names.is_empty() || has_all(&owner.resource_names, &sub.resource_names)
    };
    verbs
        && groups
        && resources_cover(&owner.resources, &sub.resources)
        && urls_cover(&owner.non_resource_urls, &sub.non_resource_urls)
        && names
}

/// The pieces of `wanted` that no rule of `owner` covers (Kubernetes'
/// `Covers`).
pub(crate) fn uncovered(owner: &[PolicyRule], wanted: &[PolicyRule]) -> Vec<PolicyRule> {
    wanted
        .iter()
        .flat_map(breakdown)
        .filter(|sub| !owner.iter().any(|o| rule_covers(o, sub)))
        .collect()
}

/// Pieces on one group and resource with nothing else merged into one
/// rule with all their verbs (Kubernetes' `CompactRules`).
fn compact(rules: Vec<PolicyRule>) -> Vec<PolicyRule> {
    let mut out = Vec::new();
    let mut simple: HashMap<(String, String), PolicyRule> = HashMap::new();
    let mut order = Vec::new();
    for r in rules {
        let is_simple = r.resource_names.is_empty()
            && r.non_resource_urls.is_empty()
            && r.api_groups.len() == 1
            && r.resources.len() == 1;
        if !is_simple {
            out.push(r);
            continue;
        }
        let key = (r.api_groups[0].clone(), r.resources[0].clone());
        match simple.get_mut(&key) {
            Some(existing) => existing.verbs.extend(r.verbs),
            None => {
                order.push(key.clone());
                simple.insert(key, r);
            }
        }
    }
    out.extend(order.into_iter().filter_map(|k| simple.remove(&k)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(verbs: &[&str], groups: &[&str], resources: &[&str]) -> PolicyRule {
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect();
        PolicyRule {
            verbs: v(verbs),
            api_groups: v(groups),
            resources: v(resources),
            ..Default::default()
        }
    }

    #[test]
    fn coverage_is_checked_piece_by_piece() {
        let owner = vec![
            rule(&["get", "list"], &[""], &["pods", "services"]),
            rule(&["*"], &["apps"], &["*/scale"]),
        ];
        assert!(uncovered(&owner, &[rule(&["get"], &[""], &["pods"])]).is_empty());
        assert!(uncovered(
            &owner,
            &[rule(&["update"], &["apps"], &["deployments/scale"])]
        )
        .is_empty());
        let missing = uncovered(
            &owner,
            &[rule(&["get", "delete"], &[""], &["pods", "secrets"])],
        );
        let text: Vec<String> = compact(missing)
            .iter()
            .map(PolicyRule::compact_string)
            .collect();
        assert_eq!(
            text,
            vec![
                r#"{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}"#,
                r#"{APIGroups:[""], Resources:["secrets"], Verbs:["get" "delete"]}"#,
            ]
        );
        // A rule with names is covered only by one without names or with
        // all of them; one without names only by one without names.
        let mut named = rule(&["get"], &[""], &["configmaps"]);
        named.resource_names = vec!["a".into()];
        assert!(uncovered(&[named.clone()], &[rule(&["get"], &[""], &["configmaps"])]).len() == 1);
        assert!(uncovered(&[rule(&["get"], &[""], &["configmaps"])], &[named]).is_empty());
        assert_eq!(uncovered(&[], &full_authority()).len(), 2);
    }

    #[test]
    fn gc_only_updates_are_recognised() {
        let old =
            serde_json::json!({"metadata": {"name": "r", "resourceVersion": "1"}, "rules": []});
        let mut new = old.clone();
        new["metadata"]["finalizers"] = serde_json::json!(["x"]);
        assert!(only_gc_fields_change(&old, &new));
        new["rules"] = serde_json::json!([{"verbs": ["*"]}]);
        assert!(!only_gc_fields_change(&old, &new));
    }
}
