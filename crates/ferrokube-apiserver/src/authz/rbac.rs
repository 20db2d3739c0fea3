//! The RBAC authorizer (`--authorization-mode RBAC`), with Kubernetes'
//! semantics: a user may do what a rule of a role bound to them allows.
//! ClusterRoleBindings grant their ClusterRole's rules everywhere;
//! RoleBindings grant a Role's (or a ClusterRole's) rules in their
//! namespace. A binding's subjects are users, groups and service accounts
//! (`system:serviceaccount:<namespace>:<name>`; a RoleBinding's service
//! account without a namespace is of the binding's namespace).
//!
//! Roles and bindings are read from the watch cache, never from the store
//! per request: an [`Index`] of the bindings by subject (user name, group),
//! each with its role's rules already resolved, is rebuilt whenever one of
//! the four caches has moved (checked with four atomic loads per request),
//! reusing the objects already parsed. A request is then decided by
//! looking up the user's name and groups and matching the rules found.
//!
//! [`Rbac`] is also the rule resolver of escalation prevention
//! ([`super::escalation`]) and of SelfSubjectRulesReview
//! ([`Authorizer::rules_for`]).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use ferrokube_api::status::ApiError;
use parking_lot::{Mutex, RwLock};
use serde_json::Value;

use super::{Attributes, Authorizer, Decision, NonResourceRule, ResourceRule, RulesInfo};
use crate::authn::UserInfo;
use crate::watchcache::{ResourceCache, WatchCache};
use ferrokube_store::Revision;

/// The API group of the RBAC resources.
pub(crate) const GROUP: &str = "rbac.authorization.k8s.io";

const PREFIXES: [&str; 4] = [
    "/registry/clusterroles/",
    "/registry/clusterrolebindings/",
    "/registry/roles/",
    "/registry/rolebindings/",
];

/// One rule of a role (`rbac/v1` PolicyRule).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct PolicyRule {
    pub(crate) verbs: Vec<String>,
    pub(crate) api_groups: Vec<String>,
    pub(crate) resources: Vec<String>,
    pub(crate) resource_names: Vec<String>,
    pub(crate) non_resource_urls: Vec<String>,
}

fn strings(v: &Value, field: &str) -> Vec<String> {
    v.get(field)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Go's `%q` of a list of strings: `["a" "b"]`.
pub(crate) fn go_quoted_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", quoted.join(" "))
}

impl PolicyRule {
    /// A rule as the API writes it.
    pub(crate) fn from_json(v: &Value) -> PolicyRule {
        PolicyRule {
            verbs: strings(v, "verbs"),
            api_groups: strings(v, "apiGroups"),
            resources: strings(v, "resources"),
            resource_names: strings(v, "resourceNames"),
            non_resource_urls: strings(v, "nonResourceURLs"),
        }
    }

    /// The rules of a role object (`rules`).
    pub(crate) fn list_from(role: &Value) -> Vec<PolicyRule> {
        role.get("rules")
            .and_then(Value::as_array)
            .map(|rules| rules.iter().map(PolicyRule::from_json).collect())
            .unwrap_or_default()
    }

    /// Whether this rule allows the request `a` (Kubernetes' `RuleAllows`).
    pub(crate) fn allows(&self, a: &Attributes) -> bool {
        if !verb_matches(self, &a.verb) {
            return false;
        }
        if a.resource_request {
            api_group_matches(self, &a.api_group)
                && resource_matches(self, &a.resource, &a.subresource)
                && resource_name_matches(self, &a.name)
        } else {
            non_resource_url_matches(self, &a.path)
        }
    }

    /// Kubernetes' compact form for escalation messages:
    /// `{APIGroups:[""], Resources:["pods"], Verbs:["get"]}`.
    pub(crate) fn compact_string(&self) -> String {
        let mut parts = Vec::new();
        for (label, items) in [
            ("APIGroups", &self.api_groups),
            ("Resources", &self.resources),
            ("NonResourceURLs", &self.non_resource_urls),
            ("ResourceNames", &self.resource_names),
            ("Verbs", &self.verbs),
        ] {
            if !items.is_empty() {
                parts.push(format!("{label}:{}", go_quoted_list(items)));
            }
        }
        format!("{{{}}}", parts.join(", "))
    }
}

/// `*` or the verb itself.
pub(crate) fn verb_matches(rule: &PolicyRule, verb: &str) -> bool {
    rule.verbs.iter().any(|v| v == "*" || v == verb)
}

/// `*` or the group itself (`""` the core group).
pub(crate) fn api_group_matches(rule: &PolicyRule, group: &str) -> bool {
    rule.api_groups.iter().any(|g| g == "*" || g == group)
}

/// `*`, the resource (`pods`, or `pods/log` for a subresource), or
/// `*/<subresource>`.
pub(crate) fn resource_matches(rule: &PolicyRule, resource: &str, subresource: &str) -> bool {
    rule.resources.iter().any(|r| {
        if r == "*" {
            return true;
        }
        if subresource.is_empty() {
            return r == resource;
        }
        match r.split_once('/') {
            Some((res, sub)) => sub == subresource && (res == "*" || res == resource),
            None => false,
        }
    })
}

/// No names in the rule, or the request's name among them.
pub(crate) fn resource_name_matches(rule: &PolicyRule, name: &str) -> bool {
    rule.resource_names.is_empty() || rule.resource_names.iter().any(|n| n == name)
}

/// `*`, the path itself, or a prefix of it ending in `*`.
pub(crate) fn non_resource_url_matches(rule: &PolicyRule, path: &str) -> bool {
    rule.non_resource_urls.iter().any(|u| {
        u == "*" || u == path || (u.ends_with('*') && path.starts_with(u.trim_end_matches('*')))
    })
}

/// A binding's subject.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Subject {
    kind: String,
    name: String,
    namespace: String,
}

impl Subject {
    /// Whether the subject is `user`, for a binding in `namespace` (empty
    /// for a ClusterRoleBinding).
    fn applies_to(&self, user: &UserInfo, namespace: &str) -> bool {
        match self.kind.as_str() {
            "User" => user.name == self.name,
            "Group" => user.groups.contains(&self.name),
            "ServiceAccount" => self
                .service_account_user(namespace)
                .is_some_and(|u| u == user.name),
            _ => false,
        }
    }

    /// The user name of a ServiceAccount subject, its namespace defaulting
    /// to the binding's.
    fn service_account_user(&self, binding_namespace: &str) -> Option<String> {
        let ns = if self.namespace.is_empty() {
            binding_namespace
        } else {
            &self.namespace
        };
        (!ns.is_empty()).then(|| format!("system:serviceaccount:{ns}:{}", self.name))
    }

    /// As Kubernetes describes it: `User "jane"`, `ServiceAccount "sa/ns"`.
    fn describe(&self, binding_namespace: &str) -> String {
        if self.kind == "ServiceAccount" {
            let ns = if self.namespace.is_empty() {
                binding_namespace
            } else {
                &self.namespace
            };
            format!("{} {:?}", self.kind, format!("{}/{ns}", self.name))
        } else {
            format!("{} {:?}", self.kind, self.name)
        }
    }
}

/// A binding as parsed from its object.
#[derive(Debug)]
struct ParsedBinding {
    name: String,
    namespace: String,
    role_kind: String,
    role_name: String,
    subjects: Vec<Subject>,
}

impl ParsedBinding {
    fn from_json(v: &Value) -> ParsedBinding {
        let text = |v: &Value, p: &str| {
            v.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let subjects = v
            .get("subjects")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|s| Subject {
                        kind: text(s, "/kind"),
                        name: text(s, "/name"),
                        namespace: text(s, "/namespace"),
                    })
                    .collect()
            })
            .unwrap_or_default();
        ParsedBinding {
            name: text(v, "/metadata/name"),
            namespace: text(v, "/metadata/namespace"),
            role_kind: text(v, "/roleRef/kind"),
            role_name: text(v, "/roleRef/name"),
            subjects,
        }
    }
}

/// What the rules of a role reference are, or why they cannot be had
/// (Kubernetes' `GetRoleReferenceRules`).
type RoleRules = Result<Arc<[PolicyRule]>, ApiError>;

/// A binding with its role's rules resolved.
#[derive(Debug)]
struct Binding {
    parsed: Arc<ParsedBinding>,
    rules: RoleRules,
}

impl Binding {
    fn describe(&self, subject: &Subject) -> String {
        let p = &self.parsed;
        if p.namespace.is_empty() {
            format!(
                "ClusterRoleBinding {:?} of {} {:?} to {}",
                p.name,
                p.role_kind,
                p.role_name,
                subject.describe("")
            )
        } else {
            format!(
                "RoleBinding {:?} of {} {:?} to {}",
                format!("{}/{}", p.name, p.namespace),
                p.role_kind,
                p.role_name,
                subject.describe(&p.namespace)
            )
        }
    }
}

/// The bindings of one scope (the cluster, or one namespace), in name
/// order, and where each subject appears.
#[derive(Debug, Default)]
struct Bindings {
    list: Vec<Binding>,
    by_user: HashMap<String, Vec<u32>>,
    by_group: HashMap<String, Vec<u32>>,
}

impl Bindings {
    fn add(&mut self, b: Binding) {
        let at = self.list.len() as u32;
        let ns = b.parsed.namespace.clone();
        for s in &b.parsed.subjects {
            let (map, key) = match s.kind.as_str() {
                "User" => (&mut self.by_user, s.name.clone()),
                "Group" => (&mut self.by_group, s.name.clone()),
                "ServiceAccount" => match s.service_account_user(&ns) {
                    Some(u) => (&mut self.by_user, u),
                    None => continue,
                },
                _ => continue,
            };
            let at_key = map.entry(key).or_default();
            if at_key.last() != Some(&at) {
                at_key.push(at);
            }
        }
        self.list.push(b);
    }

    /// The bindings naming `user` (by name or group), in order.
    fn of(&self, user: &UserInfo) -> Vec<u32> {
        let mut found: Vec<u32> = Vec::new();
        if let Some(v) = self.by_user.get(&user.name) {
            found.extend_from_slice(v);
        }
        for g in &user.groups {
            if let Some(v) = self.by_group.get(g) {
                found.extend_from_slice(v);
            }
        }
        if found.len() > 1 {
            found.sort_unstable();
            found.dedup();
        }
        found
    }
}

/// The roles and bindings, indexed for authorization.
#[derive(Debug, Default)]
pub(crate) struct Index {
    /// The caches' generations this was built from.
    stamp: [u64; 4],
    cluster: Bindings,
    namespaces: HashMap<String, Bindings>,
    cluster_roles: HashMap<String, Arc<[PolicyRule]>>,
    /// By `namespace/name`.
    roles: HashMap<String, Arc<[PolicyRule]>>,
}

impl Index {
    /// Kubernetes' `GetRoleReferenceRules` for a binding in `namespace`.
    fn role_ref_rules(&self, kind: &str, name: &str, namespace: &str) -> RoleRules {
        match kind {
            "ClusterRole" => self
                .cluster_roles
                .get(name)
                .cloned()
                .ok_or_else(|| ApiError::not_found(GROUP, "clusterrole", name)),
            "Role" => self
                .roles
                .get(&format!("{namespace}/{name}"))
                .cloned()
                .ok_or_else(|| ApiError::not_found(GROUP, "role", name)),
            other => Err(ApiError::internal(format!(
                "unsupported role reference kind: {other:?}"
            ))),
        }
    }

    /// Calls `visit` with each rule that applies to `user` in `namespace`
    /// (ClusterRoleBindings first, then the namespace's RoleBindings), with
    /// the binding and subject it comes from, or with a failure to resolve
    /// a binding's role; stops when `visit` returns false.
    fn visit<'s>(
        &'s self,
        user: &UserInfo,
        namespace: &str,
        mut visit: impl FnMut(Result<(&'s Binding, &'s PolicyRule), &'s ApiError>) -> bool,
    ) {
        let scopes = std::iter::once(&self.cluster).chain(if namespace.is_empty() {
            None
        } else {
            self.namespaces.get(namespace)
        });
        for scope in scopes {
            for at in scope.of(user) {
                let b = &scope.list[at as usize];
                match &b.rules {
                    Err(e) => {
                        if !visit(Err(e)) {
                            return;
                        }
                    }
                    Ok(rules) => {
                        for r in rules.iter() {
                            if !visit(Ok((b, r))) {
                                return;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Kubernetes' aggregate of errors: one message as it is, several in
/// brackets, duplicates once.
pub(crate) fn aggregate(messages: &[&str]) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for m in messages {
        if !seen.contains(m) {
            seen.push(m);
        }
    }
    match (messages.len(), seen.len()) {
        (0, _) => String::new(),
        (1, _) | (_, 1) => seen[0].to_string(),
        _ => format!("[{}]", seen.join(", ")),
    }
}

/// What a role object parses into, kept between rebuilds.
enum Parsed {
    Rules(Arc<[PolicyRule]>),
    Binding(Arc<ParsedBinding>),
}

/// The RBAC authorizer and rule resolver over the watch cache.
pub(crate) struct Rbac {
    caches: [Arc<ResourceCache>; 4],
    current: RwLock<Arc<Index>>,
    /// Held while rebuilding; the objects parsed so far, by key, with the
    /// revision they were parsed at.
    parsed: Mutex<HashMap<String, (Revision, Parsed)>>,
}

impl Rbac {
    /// The authorizer over `cache`, which must hold the four RBAC
    /// resources.
    pub(crate) fn new(cache: &WatchCache) -> anyhow::Result<Rbac> {
        let get = |p: &str| {
            cache
                .resource(p)
                .ok_or_else(|| anyhow::anyhow!("the watch cache holds no {p}"))
        };
        Ok(Rbac {
            caches: [
                get(PREFIXES[0])?,
                get(PREFIXES[1])?,
                get(PREFIXES[2])?,
                get(PREFIXES[3])?,
            ],
            current: RwLock::new(Arc::new(Index {
                stamp: [u64::MAX; 4],
                ..Default::default()
            })),
            parsed: Mutex::new(HashMap::new()),
        })
    }

    fn stamp(&self) -> [u64; 4] {
        [
            self.caches[0].generation(),
            self.caches[1].generation(),
            self.caches[2].generation(),
            self.caches[3].generation(),
        ]
    }

    /// The index, rebuilt first if the roles or bindings changed.
    pub(crate) fn index(&self) -> Arc<Index> {
        let stamp = self.stamp();
        {
            let current = self.current.read();
            if current.stamp == stamp {
                return current.clone();
            }
        }
        let mut parsed = self.parsed.lock();
        // Another request may have rebuilt it meanwhile.
        let stamp = self.stamp();
        {
            let current = self.current.read();
            if current.stamp == stamp {
                return current.clone();
            }
        }
        let built = Arc::new(self.build(stamp, &mut parsed));
        *self.current.write() = built.clone();
        built
    }

    fn build(&self, stamp: [u64; 4], parsed: &mut HashMap<String, (Revision, Parsed)>) -> Index {
        let mut seen: HashMap<String, (Revision, Parsed)> = HashMap::with_capacity(parsed.len());
        let mut index = Index {
            stamp,
            ..Default::default()
        };
        let mut cluster_bindings = Vec::new();
        let mut role_bindings = Vec::new();
        for (which, cache) in self.caches.iter().enumerate() {
            for obj in cache.list(cache.prefix()) {
                let reuse = parsed
                    .remove(&obj.key)
                    .filter(|(rev, _)| *rev == obj.revision);
                let p = match reuse {
                    Some((_, p)) => p,
                    None => {
                        let Ok(v) = serde_json::from_slice::<Value>(&obj.json) else {
                            continue;
                        };
                        if which % 2 == 0 {
                            Parsed::Rules(PolicyRule::list_from(&v).into())
                        } else {
                            Parsed::Binding(Arc::new(ParsedBinding::from_json(&v)))
                        }
                    }
                };
                match (&p, which) {
                    (Parsed::Rules(r), 0) => {
                        index.cluster_roles.insert(obj.name.clone(), r.clone());
                    }
                    (Parsed::Rules(r), 2) => {
                        index
                            .roles
                            .insert(format!("{}/{}", obj.namespace, obj.name), r.clone());
                    }
                    (Parsed::Binding(b), 1) => cluster_bindings.push(b.clone()),
                    (Parsed::Binding(b), 3) => role_bindings.push(b.clone()),
                    _ => {}
                }
                seen.insert(obj.key.clone(), (obj.revision, p));
            }
        }
        *parsed = seen;
        for b in cluster_bindings {
            let rules = index.role_ref_rules(&b.role_kind, &b.role_name, "");
            index.cluster.add(Binding { parsed: b, rules });
        }
        for b in role_bindings {
            let rules = index.role_ref_rules(&b.role_kind, &b.role_name, &b.namespace);
            index
                .namespaces
                .entry(b.namespace.clone())
                .or_default()
                .add(Binding { parsed: b, rules });
        }
        index
    }

    /// The rules of the ClusterRole `name`, if it exists.
    pub(crate) fn cluster_role_rules(&self, name: &str) -> Option<Arc<[PolicyRule]>> {
        self.index().cluster_roles.get(name).cloned()
    }

    /// The rules a binding in `namespace` (empty: a ClusterRoleBinding)
    /// referring to the role `kind`/`name` grants; a missing role is
    /// Kubernetes' NotFound.
    pub(crate) fn role_ref_rules(&self, kind: &str, name: &str, namespace: &str) -> RoleRules {
        self.index().role_ref_rules(kind, name, namespace)
    }

    /// Every rule `user` holds in `namespace` (cluster-wide ones included),
    /// and the failures to resolve some (Kubernetes' `RulesFor`).
    pub(crate) fn rules_of(
        &self,
        user: &UserInfo,
        namespace: &str,
    ) -> (Vec<PolicyRule>, Vec<String>) {
        let index = self.index();
        let mut rules = Vec::new();
        let mut errors = Vec::new();
        index.visit(user, namespace, |r| {
            match r {
                Ok((_, rule)) => rules.push(rule.clone()),
                Err(e) => errors.push(e.message.clone()),
            }
            true
        });
        (rules, errors)
    }
}

impl Authorizer for Rbac {
    fn authorize(&self, a: &Attributes) -> Decision {
        let index = self.index();
        let mut allowed_by: Option<&Binding> = None;
        let mut errors: Vec<&str> = Vec::new();
        index.visit(&a.user, &a.namespace, |r| match r {
            Ok((b, rule)) => {
                if rule.allows(a) {
                    allowed_by = Some(b);
                    return false;
                }
                true
            }
            Err(e) => {
                errors.push(&e.message);
                true
            }
        });
        if let Some(b) = allowed_by {
            let ns = &b.parsed.namespace;
            let subject = b.parsed.subjects.iter().find(|s| s.applies_to(&a.user, ns));
            let mut reason = String::from("RBAC: allowed by ");
            match subject {
                Some(s) => reason.push_str(&b.describe(s)),
                None => {
                    let _ = write!(reason, "{:?}", b.parsed.name);
                }
            }
            return Decision::Allow(reason);
        }
        if errors.is_empty() {
            Decision::NoOpinion(String::new())
        } else {
            Decision::NoOpinion(format!("RBAC: {}", aggregate(&errors)))
        }
    }

    fn rules_for(&self, user: &UserInfo, namespace: &str) -> RulesInfo {
        let (rules, errors) = self.rules_of(user, namespace);
        let mut info = RulesInfo::default();
        for r in rules {
            if !r.resources.is_empty() {
                info.resource_rules.push(ResourceRule {
                    verbs: r.verbs.clone(),
                    api_groups: r.api_groups.clone(),
                    resources: r.resources.clone(),
                    resource_names: r.resource_names.clone(),
                });
            }
            if !r.non_resource_urls.is_empty() {
                info.non_resource_rules.push(NonResourceRule {
                    verbs: r.verbs,
                    non_resource_urls: r.non_resource_urls,
                });
            }
        }
        let errors: Vec<&str> = errors.iter().map(String::as_str).collect();
        info.evaluation_error = aggregate(&errors);
        info
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(verbs: &[&str], groups: &[&str], resources: &[&str], names: &[&str]) -> PolicyRule {
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect();
        PolicyRule {
            verbs: v(verbs),
            api_groups: v(groups),
            resources: v(resources),
            resource_names: v(names),
            non_resource_urls: vec![],
        }
    }

    fn request(verb: &str, group: &str, resource: &str, sub: &str, name: &str) -> Attributes {
        Attributes {
            verb: verb.into(),
            resource_request: true,
            api_group: group.into(),
            resource: resource.into(),
            subresource: sub.into(),
            name: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn resource_rules_match_as_kubernetes_matches_them() {
        let pods = rule(&["get", "list"], &[""], &["pods"], &[]);
        assert!(pods.allows(&request("get", "", "pods", "", "x")));
        assert!(!pods.allows(&request("delete", "", "pods", "", "x")));
        assert!(!pods.allows(&request("get", "apps", "pods", "", "x")));
        // A subresource is not its resource.
        assert!(!pods.allows(&request("get", "", "pods", "log", "x")));
        let logs = rule(&["get"], &[""], &["pods/log"], &[]);
        assert!(logs.allows(&request("get", "", "pods", "log", "x")));
        assert!(!logs.allows(&request("get", "", "pods", "", "x")));
        let any_scale = rule(&["*"], &["*"], &["*/scale"], &[]);
        assert!(any_scale.allows(&request("update", "apps", "deployments", "scale", "d")));
        assert!(!any_scale.allows(&request("update", "apps", "deployments", "", "d")));
        assert!(!any_scale.allows(&request("update", "apps", "deployments", "status", "d")));
        let all = rule(&["*"], &["*"], &["*"], &[]);
        assert!(all.allows(&request("escalate", GROUP, "clusterroles", "", "")));
        assert!(all.allows(&request("get", "", "pods", "exec", "p")));
        let named = rule(&["get"], &[""], &["configmaps"], &["a", "b"]);
        assert!(named.allows(&request("get", "", "configmaps", "", "b")));
        assert!(!named.allows(&request("get", "", "configmaps", "", "c")));
        // A list names nothing, so a rule with names does not allow it.
        assert!(!named.allows(&request("get", "", "configmaps", "", "")));
        // Resource rules say nothing of paths.
        let path = Attributes {
            verb: "get".into(),
            path: "/healthz".into(),
            ..Default::default()
        };
        assert!(!all.allows(&path));
    }

    #[test]
    fn non_resource_urls_match_exactly_or_by_a_trailing_star() {
        let r = PolicyRule {
            verbs: vec!["get".into()],
            non_resource_urls: vec!["/healthz".into(), "/apis/*".into(), "/x**".into()],
            ..Default::default()
        };
        let at = |p: &str, verb: &str| Attributes {
            verb: verb.into(),
            path: p.into(),
            ..Default::default()
        };
        assert!(r.allows(&at("/healthz", "get")));
        assert!(!r.allows(&at("/healthz/etcd", "get")));
        assert!(!r.allows(&at("/healthz", "post")));
        assert!(r.allows(&at("/apis/apps", "get")));
        assert!(r.allows(&at("/apis/", "get")));
        assert!(!r.allows(&at("/apis", "get")));
        assert!(r.allows(&at("/xyz", "get")));
        // Non-resource rules say nothing of resources.
        assert!(!r.allows(&request("get", "", "healthz", "", "")));
    }

    #[test]
    fn compact_strings_and_aggregates_read_as_kubernetes_writes_them() {
        let r = rule(&["get", "list"], &[""], &["pods"], &["a"]);
        assert_eq!(
            r.compact_string(),
            r#"{APIGroups:[""], Resources:["pods"], ResourceNames:["a"], Verbs:["get" "list"]}"#
        );
        let u = PolicyRule {
            verbs: vec!["*".into()],
            non_resource_urls: vec!["*".into()],
            ..Default::default()
        };
        assert_eq!(
            u.compact_string(),
            r#"{NonResourceURLs:["*"], Verbs:["*"]}"#
        );
        assert_eq!(aggregate(&["a"]), "a");
        assert_eq!(aggregate(&["a", "a"]), "a");
        assert_eq!(aggregate(&["a", "b", "a"]), "[a, b]");
    }

    #[test]
    fn subjects_apply_to_users_groups_and_service_accounts() {
        let jane = UserInfo::authenticated("jane", ["devs"]);
        let sa = UserInfo::authenticated("system:serviceaccount:a:builder", ["x"]);
        let s = |kind: &str, name: &str, ns: &str| Subject {
            kind: kind.into(),
            name: name.into(),
            namespace: ns.into(),
        };
        assert!(s("User", "jane", "").applies_to(&jane, ""));
        assert!(!s("User", "devs", "").applies_to(&jane, ""));
        assert!(s("Group", "devs", "").applies_to(&jane, ""));
        assert!(s("Group", "system:authenticated", "").applies_to(&jane, "a"));
        assert!(s("ServiceAccount", "builder", "a").applies_to(&sa, ""));
        // A RoleBinding's service account defaults to its namespace; a
        // ClusterRoleBinding's must name one.
        assert!(s("ServiceAccount", "builder", "").applies_to(&sa, "a"));
        assert!(!s("ServiceAccount", "builder", "").applies_to(&sa, "b"));
        assert!(!s("ServiceAccount", "builder", "").applies_to(&sa, ""));
        assert_eq!(
            s("ServiceAccount", "builder", "").describe("a"),
            r#"ServiceAccount "builder/a""#
        );
    }
}
