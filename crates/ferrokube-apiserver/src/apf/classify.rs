//! Classification: which FlowSchema a request matches, as Kubernetes'
//! APF controller decides it. Schemas are tried by increasing
//! `matchingPrecedence`, then name; a schema matches when one of its
//! rules matches a subject (User, Group, ServiceAccount, `*`) and, for a
//! resource request, one of its resourceRules (verb, API group,
//! resource[/subresource], namespace or cluster scope), for any other
//! request one of its nonResourceRules (verb, URL or URL prefix). The
//! schema's distinguisher (ByUser, ByNamespace) names the flow.

use serde_json::Value;

use crate::authn::UserInfo;
use crate::request_info::RequestInfo;

/// What classification reads of a request.
pub(crate) struct Digest<'a> {
    /// The user (as impersonated, when the request impersonates).
    pub(crate) user: &'a UserInfo,
    /// The parsed request.
    pub(crate) info: &'a RequestInfo,
    /// The URL path (what nonResourceRules match).
    pub(crate) path: &'a str,
}

/// How a schema divides its requests into flows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Distinguisher {
    /// One flow for all.
    None,
    /// One flow per user name.
    ByUser,
    /// One flow per namespace (cluster-scoped requests share one).
    ByNamespace,
}

#[derive(Debug)]
enum Subject {
    User(String),
    Group(String),
    ServiceAccount { namespace: String, name: String },
    Unknown,
}

#[derive(Debug, Default)]
struct ResourceRule {
    verbs: Vec<String>,
    api_groups: Vec<String>,
    resources: Vec<String>,
    cluster_scope: bool,
    namespaces: Vec<String>,
}

#[derive(Debug, Default)]
struct NonResourceRule {
    verbs: Vec<String>,
    urls: Vec<String>,
}

#[derive(Debug, Default)]
struct Rule {
    subjects: Vec<Subject>,
    resource_rules: Vec<ResourceRule>,
    non_resource_rules: Vec<NonResourceRule>,
}

/// A FlowSchema, compiled for matching.
#[derive(Debug)]
pub(crate) struct Schema {
    /// `metadata.name`.
    pub(crate) name: String,
    /// `metadata.uid` (empty for a built-in stand-in).
    pub(crate) uid: String,
    /// `spec.matchingPrecedence`.
    pub(crate) precedence: i64,
    /// The PriorityLevelConfiguration it names.
    pub(crate) level: String,
    /// `spec.distinguisherMethod.type`.
    pub(crate) distinguisher: Distinguisher,
    rules: Vec<Rule>,
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn text<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn items<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    v.get(key).and_then(Value::as_array).into_iter().flatten()
}

fn subject(s: &Value) -> Subject {
    match text(s, "/kind") {
        "User" => s
            .pointer("/user/name")
            .and_then(Value::as_str)
            .map_or(Subject::Unknown, |n| Subject::User(n.to_string())),
        "Group" => s
            .pointer("/group/name")
            .and_then(Value::as_str)
            .map_or(Subject::Unknown, |n| Subject::Group(n.to_string())),
        "ServiceAccount" => match s.get("serviceAccount").filter(|v| v.is_object()) {
            Some(sa) => Subject::ServiceAccount {
                namespace: text(sa, "/namespace").to_string(),
                name: text(sa, "/name").to_string(),
            },
            None => Subject::Unknown,
        },
        _ => Subject::Unknown,
    }
}

fn rule(r: &Value) -> Rule {
    Rule {
        subjects: items(r, "subjects").map(subject).collect(),
        resource_rules: items(r, "resourceRules")
            .map(|rr| ResourceRule {
                verbs: strings(rr, "verbs"),
                api_groups: strings(rr, "apiGroups"),
                resources: strings(rr, "resources"),
                cluster_scope: rr
                    .get("clusterScope")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                namespaces: strings(rr, "namespaces"),
            })
            .collect(),
        non_resource_rules: items(r, "nonResourceRules")
            .map(|nr| NonResourceRule {
                verbs: strings(nr, "verbs"),
                urls: strings(nr, "nonResourceURLs"),
            })
            .collect(),
    }
}

impl Schema {
    /// The schema a FlowSchema object describes.
    pub(crate) fn from_object(obj: &Value) -> Schema {
        let spec = obj.get("spec").unwrap_or(&Value::Null);
        let distinguisher = match text(spec, "/distinguisherMethod/type") {
            "ByUser" => Distinguisher::ByUser,
            "ByNamespace" => Distinguisher::ByNamespace,
            _ => Distinguisher::None,
        };
        Schema {
            name: text(obj, "/metadata/name").to_string(),
            uid: text(obj, "/metadata/uid").to_string(),
            precedence: spec
                .get("matchingPrecedence")
                .and_then(Value::as_i64)
                .unwrap_or(1000),
            level: text(spec, "/priorityLevelConfiguration/name").to_string(),
            distinguisher,
            rules: items(spec, "rules").map(rule).collect(),
        }
    }

    /// Whether the request matches one of the schema's rules.
    pub(crate) fn matches(&self, d: &Digest<'_>) -> bool {
        self.rules.iter().any(|r| rule_matches(r, d))
    }

    /// The flow distinguisher of the request in this schema.
    pub(crate) fn distinguish<'a>(&self, d: &Digest<'a>) -> &'a str {
        match self.distinguisher {
            Distinguisher::None => "",
            Distinguisher::ByUser => &d.user.name,
            Distinguisher::ByNamespace => &d.info.namespace,
        }
    }
}

/// Kubernetes' order of schemas: increasing matchingPrecedence, then name.
pub(crate) fn sort(schemas: &mut [Schema]) {
    schemas.sort_by(|a, b| {
        a.precedence
            .cmp(&b.precedence)
            .then_with(|| a.name.cmp(&b.name))
    });
}

fn rule_matches(r: &Rule, d: &Digest<'_>) -> bool {
    if !r.subjects.iter().any(|s| subject_matches(s, d.user)) {
        return false;
    }
    if d.info.is_resource_request {
        r.resource_rules
            .iter()
            .any(|rr| resource_matches(rr, d.info))
    } else {
        r.non_resource_rules
            .iter()
            .any(|nr| contains(&nr.verbs, &d.info.verb, "*") && url_matches(&nr.urls, d.path))
    }
}

fn subject_matches(s: &Subject, user: &UserInfo) -> bool {
    match s {
        Subject::User(name) => name == "*" || *name == user.name,
        Subject::Group(group) => group == "*" || user.groups.iter().any(|g| g == group),
        Subject::ServiceAccount { namespace, name } => {
            let Some(rest) = user.name.strip_prefix("system:serviceaccount:") else {
                return false;
            };
            let Some(after_ns) = rest.strip_prefix(namespace.as_str()) else {
                return false;
            };
            let Some(sa) = after_ns.strip_prefix(':') else {
                return false;
            };
            name == "*" || sa == name
        }
        Subject::Unknown => false,
    }
}

fn resource_matches(rr: &ResourceRule, info: &RequestInfo) -> bool {
    if !contains(&rr.verbs, &info.verb, "*") {
        return false;
    }
    let matched_resource = (rr.resources.len() == 1 && rr.resources[0] == "*")
        || rr
            .resources
            .iter()
            .any(|y| is_resource(y, &info.resource, &info.subresource));
    if !matched_resource || !contains(&rr.api_groups, &info.group, "*") {
        return false;
    }
    if info.namespace.is_empty() {
        rr.cluster_scope
    } else {
        contains(&rr.namespaces, &info.namespace, "*")
    }
}

/// Whether `y` is `resource`, or `resource/subresource` when there is one
/// (compared in place, without joining them).
fn is_resource(y: &str, resource: &str, subresource: &str) -> bool {
    if subresource.is_empty() {
        return y == resource;
    }
    y.strip_prefix(resource)
        .and_then(|rest| rest.strip_prefix('/'))
        .is_some_and(|sub| sub == subresource)
}

/// Kubernetes' `containsString`: a list that is just the wildcard holds
/// everything; otherwise `x` must be a member.
fn contains(list: &[String], x: &str, wildcard: &str) -> bool {
    (list.len() == 1 && list[0] == wildcard) || list.iter().any(|y| y == x)
}

/// A nonResourceURLs entry matches `*`, the path itself, or a prefix:
/// `/apis/*` every path under `/apis/`, `/healthz` every path under
/// `/healthz/`.
fn url_matches(urls: &[String], path: &str) -> bool {
    urls.iter().any(|rule| {
        if rule == "*" || rule == path {
            return true;
        }
        let trimmed = rule.strip_suffix('*').unwrap_or(rule);
        if rule.ends_with("/*") {
            path.starts_with(trimmed)
        } else {
            path.starts_with(&format!("{trimmed}/"))
        }
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn user(name: &str, groups: &[&str]) -> UserInfo {
        UserInfo {
            name: name.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..Default::default()
        }
    }

    fn fs(name: &str, precedence: i64, rules: Value) -> Schema {
        Schema::from_object(
            &json!({"metadata": {"name": name, "uid": format!("uid-{name}")},
            "spec": {"matchingPrecedence": precedence, "priorityLevelConfiguration": {"name": "pl"},
                "distinguisherMethod": {"type": "ByNamespace"}, "rules": rules}}),
        )
    }

    fn first<'a>(schemas: &'a [Schema], d: &Digest<'_>) -> Option<&'a str> {
        schemas
            .iter()
            .find(|s| s.matches(d))
            .map(|s| s.name.as_str())
    }

    #[test]
    fn precedence_then_name_decides() {
        let everyone = json!([{"subjects": [{"kind": "Group", "group": {"name": "*"}}],
            "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"], "clusterScope": true, "namespaces": ["*"]}]}]);
        let mut schemas = vec![
            fs("zeta", 500, everyone.clone()),
            fs("beta", 600, everyone.clone()),
            fs("alpha", 500, everyone),
        ];
        sort(&mut schemas);
        let names: Vec<_> = schemas.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["alpha", "zeta", "beta"]);
        let u = user("jane", &["system:authenticated"]);
        let info = crate::request_info::parse("GET", "/api/v1/namespaces/a/pods", false);
        let d = Digest {
            user: &u,
            info: &info,
            path: "/api/v1/namespaces/a/pods",
        };
        assert_eq!(first(&schemas, &d), Some("alpha"));
        assert_eq!(schemas[0].distinguish(&d), "a");
    }

    #[test]
    fn subjects_and_resource_rules() {
        let schemas = [
            fs(
                "jane-pods",
                100,
                json!([{"subjects": [{"kind": "User", "user": {"name": "jane"}}],
                "resourceRules": [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods", "pods/log"], "namespaces": ["team"]}]}]),
            ),
            fs(
                "kube-system-sa",
                200,
                json!([{"subjects": [{"kind": "ServiceAccount", "serviceAccount": {"namespace": "kube-system", "name": "*"}}],
                "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"], "clusterScope": true, "namespaces": ["*"]}]}]),
            ),
            fs(
                "nodes",
                300,
                json!([{"subjects": [{"kind": "Group", "group": {"name": "system:nodes"}}],
                "resourceRules": [{"verbs": ["*"], "apiGroups": [""], "resources": ["nodes"], "clusterScope": true}]}]),
            ),
        ];
        let case = |u: &UserInfo, method: &str, path: &str| {
            let info = crate::request_info::parse(method, path, false);
            first(
                &schemas,
                &Digest {
                    user: u,
                    info: &info,
                    path,
                },
            )
            .map(str::to_string)
        };
        let jane = user("jane", &[]);
        assert_eq!(
            case(&jane, "GET", "/api/v1/namespaces/team/pods").as_deref(),
            Some("jane-pods")
        );
        assert_eq!(
            case(&jane, "GET", "/api/v1/namespaces/team/pods/p/log").as_deref(),
            Some("jane-pods")
        );
        // Another verb, namespace or the cluster scope: not this rule.
        assert_eq!(
            case(&jane, "DELETE", "/api/v1/namespaces/team/pods/p"),
            None
        );
        assert_eq!(case(&jane, "GET", "/api/v1/namespaces/other/pods"), None);
        assert_eq!(case(&jane, "GET", "/api/v1/pods"), None);
        let sa = user("system:serviceaccount:kube-system:coredns", &[]);
        assert_eq!(
            case(&sa, "POST", "/apis/apps/v1/namespaces/x/deployments").as_deref(),
            Some("kube-system-sa")
        );
        // A namespace that merely starts the same is another namespace.
        let near = user("system:serviceaccount:kube-systemx:coredns", &[]);
        assert_eq!(case(&near, "GET", "/api/v1/pods"), None);
        let node = user("system:node:n1", &["system:nodes"]);
        assert_eq!(
            case(&node, "PATCH", "/api/v1/nodes/n1").as_deref(),
            Some("nodes")
        );
        // A rule without clusterScope does not match cluster-scoped requests.
        assert_eq!(case(&node, "GET", "/api/v1/namespaces/a/nodes"), None);
    }

    #[test]
    fn non_resource_urls() {
        let urls = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(url_matches(&urls(&["*"]), "/anything"));
        assert!(url_matches(&urls(&["/healthz"]), "/healthz"));
        assert!(url_matches(&urls(&["/healthz"]), "/healthz/etcd"));
        assert!(!url_matches(&urls(&["/healthz"]), "/healthzx"));
        assert!(url_matches(&urls(&["/apis/*"]), "/apis/apps"));
        assert!(!url_matches(&urls(&["/apis/*"]), "/apis"));
        let probes = fs(
            "probes",
            2,
            json!([{"subjects": [{"kind": "Group", "group": {"name": "system:authenticated"}}],
            "nonResourceRules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz", "/readyz", "/livez"]}]}]),
        );
        let u = user("jane", &["system:authenticated"]);
        for (method, path, want) in [
            ("GET", "/readyz", true),
            ("POST", "/readyz", false),
            ("GET", "/version", false),
            // A resource request never matches nonResourceRules.
            ("GET", "/api/v1/namespaces/a/pods", false),
        ] {
            let info = crate::request_info::parse(method, path, false);
            let d = Digest {
                user: &u,
                info: &info,
                path,
            };
            assert_eq!(probes.matches(&d), want, "{method} {path}");
        }
    }
}
