//! Authorization: whether an authenticated user may do what a request asks.
//!
//! Each request is read into [`Attributes`] (user, verb, namespace, API
//! group, resource, subresource, name, or a non-resource path) and put to
//! the server's [`Authorizer`], a [`Chain`] of the modes it runs with, in
//! Kubernetes' order: the first authorizer that allows or denies decides;
//! when none does, the request is refused with [`forbidden`], Kubernetes'
//! 403 `Status` and message.
//!
//! The same authorizers answer the review APIs (SubjectAccessReview and
//! friends ask [`Authorizer::authorize`]; SelfSubjectRulesReview asks
//! [`Authorizer::rules_for`]).

pub(crate) mod bootstrap;

use std::sync::Arc;

use ferrokube_api::status::ApiError;

pub(crate) mod escalation;
pub(crate) mod modes;
pub(crate) mod node;
pub(crate) mod rbac;

pub(crate) use modes::exact_name;
pub use modes::{Mode, ModeError};

use crate::authn::UserInfo;
use crate::request_info::RequestInfo;

/// What a request asks to do, as authorization sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Attributes {
    pub(crate) user: UserInfo,
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`,
    /// `deletecollection`, or a special verb (`impersonate`, `bind`,
    /// `escalate`, `use`, `approve`, ...); for a non-resource request, the
    /// lower-cased HTTP method (`get`, `post`, ...).
    pub(crate) verb: String,
    pub(crate) resource_request: bool,
    /// Empty for cluster-scoped resources and non-resource requests.
    pub(crate) namespace: String,
    /// Empty for the core group.
    pub(crate) api_group: String,
    pub(crate) api_version: String,
    pub(crate) resource: String,
    pub(crate) subresource: String,
    /// The object's name, when the request names one.
    pub(crate) name: String,
    /// The URL path of a non-resource request (`/healthz`, `/apis`).
    pub(crate) path: String,
}

impl Attributes {
    /// The attributes of a request `info` on `path` by `user`.
    pub(crate) fn of_request(user: &UserInfo, info: &RequestInfo, path: &str) -> Attributes {
        Attributes {
            user: user.clone(),
            verb: info.verb.clone(),
            resource_request: info.is_resource_request,
            namespace: info.namespace.clone(),
            api_group: info.group.clone(),
            api_version: info.version.clone(),
            resource: info.resource.clone(),
            subresource: info.subresource.clone(),
            name: info.name.clone(),
            path: if info.is_resource_request {
                String::new()
            } else {
                path.to_string()
            },
        }
    }
}

/// An authorizer's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Allowed; the reason says why (may be empty).
    Allow(String),
    /// This authorizer does not allow it; the next one is asked. The reason
    /// (may be empty) is kept for the refusal's message.
    NoOpinion(String),
}

/// A rule on resources, as SelfSubjectRulesReview reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ResourceRule {
    pub(crate) verbs: Vec<String>,
    pub(crate) api_groups: Vec<String>,
    pub(crate) resources: Vec<String>,
    pub(crate) resource_names: Vec<String>,
}

/// A rule on non-resource URLs, as SelfSubjectRulesReview reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct NonResourceRule {
    pub(crate) verbs: Vec<String>,
    pub(crate) non_resource_urls: Vec<String>,
}

/// What a user may do in a namespace (SelfSubjectRulesReview's status).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RulesInfo {
    pub(crate) resource_rules: Vec<ResourceRule>,
    pub(crate) non_resource_rules: Vec<NonResourceRule>,
    /// True when an authorizer cannot list its rules (so the lists may
    /// allow less than the user may really do).
    pub(crate) incomplete: bool,
    pub(crate) evaluation_error: String,
}

/// One authorization mode (RBAC, Node, AlwaysAllow, ...).
pub(crate) trait Authorizer: Send + Sync {
    /// Whether `a` may be done.
    fn authorize(&self, a: &Attributes) -> Decision;

    /// The rules `user` holds in `namespace` (empty: cluster-wide only).
    fn rules_for(&self, user: &UserInfo, namespace: &str) -> RulesInfo;
}

/// Allows everything (`--authorization-mode AlwaysAllow`).
pub(crate) struct AlwaysAllow;

impl Authorizer for AlwaysAllow {
    fn authorize(&self, _: &Attributes) -> Decision {
        Decision::Allow(String::new())
    }

    fn rules_for(&self, _: &UserInfo, _: &str) -> RulesInfo {
        RulesInfo {
            resource_rules: vec![ResourceRule {
                verbs: vec!["*".into()],
                api_groups: vec!["*".into()],
                resources: vec!["*".into()],
                resource_names: vec![],
            }],
            non_resource_rules: vec![NonResourceRule {
                verbs: vec!["*".into()],
                non_resource_urls: vec!["*".into()],
            }],
            incomplete: false,
            evaluation_error: String::new(),
        }
    }
}

/// Authorizers asked in turn; the first that allows decides.
pub(crate) struct Chain(pub Vec<Arc<dyn Authorizer>>);

impl Authorizer for Chain {
    fn authorize(&self, a: &Attributes) -> Decision {
        let mut reasons = Vec::new();
        for z in &self.0 {
            match z.authorize(a) {
                Decision::NoOpinion(r) => {
                    if !r.is_empty() {
                        reasons.push(r)
                    }
                }
                allowed @ Decision::Allow(_) => return allowed,
            }
        }
        Decision::NoOpinion(reasons.join("\n"))
    }

    fn rules_for(&self, user: &UserInfo, namespace: &str) -> RulesInfo {
        let mut all = RulesInfo::default();
        let mut errors = Vec::new();
        for z in &self.0 {
            let r = z.rules_for(user, namespace);
            all.resource_rules.extend(r.resource_rules);
            all.non_resource_rules.extend(r.non_resource_rules);
            all.incomplete |= r.incomplete;
            if !r.evaluation_error.is_empty() {
                errors.push(r.evaluation_error);
            }
        }
        all.evaluation_error = errors.join(", ");
        all
    }
}

/// Kubernetes' refusal of `a` (403 `Forbidden`), with the authorizers'
/// `reason` appended when there is one: `pods is forbidden: User "jane"
/// cannot list resource "pods" in API group "" in the namespace "b"`.
pub(crate) fn forbidden(a: &Attributes, reason: &str) -> ApiError {
    let who = &a.user.name;
    let what = if !a.resource_request {
        format!("User {who:?} cannot {} path {:?}", a.verb, a.path)
    } else {
        let resource = if a.subresource.is_empty() {
            a.resource.clone()
        } else {
            format!("{}/{}", a.resource, a.subresource)
        };
        let place = if a.namespace.is_empty() {
            "at the cluster scope".to_string()
        } else {
            format!("in the namespace {:?}", a.namespace)
        };
        format!(
            "User {who:?} cannot {} resource {resource:?} in API group {:?} {place}",
            a.verb, a.api_group
        )
    };
    let why = if reason.is_empty() {
        what
    } else {
        format!("{what}: {reason}")
    };
    if a.resource_request {
        ApiError::forbidden_on(&a.api_group, &a.resource, &a.name, &why)
    } else {
        ApiError::forbidden(format!("forbidden: {why}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jane() -> UserInfo {
        UserInfo::authenticated("jane", Vec::<String>::new())
    }

    #[test]
    fn refusals_read_as_kubernetes_writes_them() {
        let info = crate::request_info::parse("GET", "/api/v1/namespaces/b/pods", false);
        let a = Attributes::of_request(&jane(), &info, "/api/v1/namespaces/b/pods");
        assert_eq!(
            forbidden(&a, "").message,
            r#"pods is forbidden: User "jane" cannot list resource "pods" in API group "" in the namespace "b""#
        );
        let info = crate::request_info::parse("GET", "/apis/apps/v1/deployments/x/scale", false);
        let mut a = Attributes::of_request(&jane(), &info, "");
        a.name = "d".into();
        a.subresource = "scale".into();
        assert_eq!(
            forbidden(&a, "").message,
            r#"deployments.apps "d" is forbidden: User "jane" cannot get resource "deployments/scale" in API group "apps" at the cluster scope"#
        );
        let info = crate::request_info::parse("GET", "/healthz/etcd", false);
        let a = Attributes::of_request(&jane(), &info, "/healthz/etcd");
        assert_eq!(
            forbidden(&a, "").message,
            r#"forbidden: User "jane" cannot get path "/healthz/etcd""#
        );
    }

    #[test]
    fn the_first_decided_answer_wins() {
        struct Says(Decision);
        impl Authorizer for Says {
            fn authorize(&self, _: &Attributes) -> Decision {
                self.0.clone()
            }
            fn rules_for(&self, _: &UserInfo, _: &str) -> RulesInfo {
                RulesInfo::default()
            }
        }
        let chain = Chain(vec![
            Arc::new(Says(Decision::NoOpinion("not a node".into()))),
            Arc::new(Says(Decision::Allow("yes".into()))),
            Arc::new(AlwaysAllow),
        ]);
        assert_eq!(
            chain.authorize(&Attributes::default()),
            Decision::Allow("yes".into())
        );
        let chain = Chain(vec![Arc::new(Says(Decision::NoOpinion("a".into())))]);
        assert_eq!(
            chain.authorize(&Attributes::default()),
            Decision::NoOpinion("a".into())
        );
    }
}
