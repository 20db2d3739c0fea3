//! The review APIs: questions put to the server's authenticators and
//! authorizer, answered in the response and never stored.
//!
//! - `authorization.k8s.io/v1` SubjectAccessReview (may this user do
//!   that?), LocalSubjectAccessReview (the same, in the URL's namespace),
//!   SelfSubjectAccessReview (may I? `kubectl auth can-i`) ask
//!   [`Authorizer::authorize`]; SelfSubjectRulesReview (what may I do in a
//!   namespace? `kubectl auth can-i --list`) asks [`Authorizer::rules_for`].
//! - `authentication.k8s.io/v1` TokenReview: whose is this bearer token, for
//!   these audiences?
//!
//! Requests are validated as Kubernetes validates them, with its messages
//! (the kind of an internal object is empty, so an invalid review reads
//! `.authorization.k8s.io "" is invalid: ...`, and kubectl prints `The
//! request is invalid: ...`).

use ferrokube_api::status::{ApiError, FieldError};
use serde_json::{json, Map, Value};

use crate::authn::{TokenAuthenticator, UserInfo};
use crate::authz::{Attributes, Authorizer, Decision};

const AUTHZ_GROUP: &str = "authorization.k8s.io";

/// One of the review resources.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Review {
    SubjectAccess,
    LocalSubjectAccess,
    SelfSubjectAccess,
    SelfSubjectRules,
    Token,
}

impl Review {
    /// The review served as `plural` in `group`, if it is one.
    pub(crate) fn of(group: &str, plural: &str) -> Option<Review> {
        Some(match (group, plural) {
            (AUTHZ_GROUP, "subjectaccessreviews") => Review::SubjectAccess,
            (AUTHZ_GROUP, "localsubjectaccessreviews") => Review::LocalSubjectAccess,
            (AUTHZ_GROUP, "selfsubjectaccessreviews") => Review::SelfSubjectAccess,
            (AUTHZ_GROUP, "selfsubjectrulesreviews") => Review::SelfSubjectRules,
            ("authentication.k8s.io", "tokenreviews") => Review::Token,
            _ => return None,
        })
    }

    fn kind(self) -> &'static str {
        match self {
            Review::SubjectAccess => "SubjectAccessReview",
            Review::LocalSubjectAccess => "LocalSubjectAccessReview",
            Review::SelfSubjectAccess => "SelfSubjectAccessReview",
            Review::SelfSubjectRules => "SelfSubjectRulesReview",
            Review::Token => "TokenReview",
        }
    }

    fn api_version(self) -> &'static str {
        match self {
            Review::Token => "authentication.k8s.io/v1",
            _ => "authorization.k8s.io/v1",
        }
    }
}

/// What the reviews ask.
pub(crate) struct Reviewers<'a> {
    pub authorizer: &'a dyn Authorizer,
    pub tokens: &'a TokenAuthenticator,
}

/// Answers the review `body` (JSON) posted by `user` in `namespace` (the
/// URL's; empty for the cluster-scoped ones): the review with its status.
pub(crate) fn create(
    review: Review,
    with: &Reviewers<'_>,
    user: &UserInfo,
    namespace: &str,
    body: &[u8],
) -> Result<Value, ApiError> {
    let mut obj: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!(
                "the body of the request could not be decoded as JSON: {e}"
            ))
        })?
    };
    if !obj.is_object() {
        return Err(ApiError::bad_request(format!(
            "the body of the request is not a {} object",
            review.kind()
        )));
    }
    // As the generic create handler: the object takes the URL's namespace
    // when it names none, and may not name another.
    if review == Review::LocalSubjectAccess {
        let theirs = str_at(&obj, "/metadata/namespace");
        if theirs.is_empty() {
            if !obj["metadata"].is_object() {
                obj["metadata"] = json!({});
            }
            obj["metadata"]["namespace"] = json!(namespace);
        } else if theirs != namespace {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
    }
    let status = match review {
        Review::SubjectAccess | Review::LocalSubjectAccess | Review::SelfSubjectAccess => {
            access_review(review, with.authorizer, user, namespace, &obj)?
        }
        Review::SelfSubjectRules => rules_review(with.authorizer, user, &obj)?,
        Review::Token => token_review(with.tokens, namespace, &obj)?,
    };
    let mut out = Map::new();
    out.insert("kind".into(), json!(review.kind()));
    out.insert("apiVersion".into(), json!(review.api_version()));
    let mut meta = obj
        .get("metadata")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    meta.entry("creationTimestamp").or_insert(Value::Null);
    out.insert("metadata".into(), Value::Object(meta));
    out.insert(
        "spec".into(),
        if review == Review::SelfSubjectRules {
            // Kubernetes answers with a new object: the spec is not echoed.
            json!({})
        } else {
            obj.get("spec").cloned().unwrap_or_else(|| json!({}))
        },
    );
    out.insert("status".into(), status);
    Ok(Value::Object(out))
}

fn str_at<'v>(v: &'v Value, pointer: &str) -> &'v str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn strings_at(v: &Value, pointer: &str) -> Vec<String> {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `metadata` holds nothing but `allowed` (and fields Go would
/// drop: nulls, empty values, managedFields).
fn metadata_is_empty(obj: &Value, allowed: &[&str]) -> bool {
    let Some(meta) = obj.get("metadata").and_then(Value::as_object) else {
        return true;
    };
    meta.iter().all(|(k, v)| {
        allowed.contains(&k.as_str())
            || k == "managedFields"
            || match v {
                Value::Null => true,
                Value::String(s) => s.is_empty(),
                Value::Array(a) => a.is_empty(),
                Value::Object(o) => o.is_empty(),
                Value::Number(n) => n.as_i64() == Some(0),
                Value::Bool(b) => !b,
            }
    })
}

/// Go's `%#v` of a NonResourceAttributes, as a validation error shows it.
fn show_non_resource(v: &Value) -> String {
    format!(
        "authorization.NonResourceAttributes{{Path:{:?}, Verb:{:?}}}",
        str_at(v, "/path"),
        str_at(v, "/verb")
    )
}

/// The checks of `ValidateSubjectAccessReviewSpec` and friends.
fn validate_access_review(review: Review, obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = obj.get("spec").cloned().unwrap_or(Value::Null);
    let resource = spec.get("resourceAttributes").filter(|v| !v.is_null());
    let non_resource = spec.get("nonResourceAttributes").filter(|v| !v.is_null());
    match (resource, non_resource) {
        (Some(_), Some(n)) => errs.push(FieldError::invalid_shown(
            "spec.nonResourceAttributes",
            show_non_resource(n),
            "cannot be specified in combination with resourceAttributes",
        )),
        (None, None) => errs.push(FieldError::invalid(
            "spec.resourceAttributes",
            "null",
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        )),
        _ => {}
    }
    if review != Review::SelfSubjectAccess {
        let user = str_at(&spec, "/user");
        if user.is_empty() && strings_at(&spec, "/groups").is_empty() {
            errs.push(FieldError::invalid(
                "spec.user",
                user,
                "at least one of user or group must be specified",
            ));
        }
    }
    let shown_meta = || {
        obj.get("metadata")
            .map(|m| m.to_string())
            .unwrap_or_default()
    };
    match review {
        Review::LocalSubjectAccess => {
            if !metadata_is_empty(obj, &["namespace", "creationTimestamp"]) {
                errs.push(FieldError::invalid_shown(
                    "metadata",
                    shown_meta(),
                    "must be empty except for namespace",
                ));
            }
            let namespace = str_at(obj, "/metadata/namespace");
            if let Some(r) = resource {
                let theirs = str_at(r, "/namespace");
                if theirs != namespace {
                    errs.push(FieldError::invalid(
                        "spec.resourceAttributes.namespace",
                        theirs,
                        "must match metadata.namespace",
                    ));
                }
            }
            if let Some(n) = non_resource {
                errs.push(FieldError::invalid_shown(
                    "spec.nonResourceAttributes",
                    show_non_resource(n),
                    "disallowed on this kind of request",
                ));
            }
        }
        _ => {
            if !metadata_is_empty(obj, &["creationTimestamp"]) {
                errs.push(FieldError::invalid_shown(
                    "metadata",
                    shown_meta(),
                    "must be empty",
                ));
            }
        }
    }
    errs
}

/// The user a SubjectAccessReview's spec asks about.
fn user_of_spec(spec: &Value) -> UserInfo {
    let extra = spec
        .get("extra")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let values = v
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|x| x.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default();
                    (k.clone(), values)
                })
                .collect()
        })
        .unwrap_or_default();
    UserInfo {
        name: str_at(spec, "/user").to_string(),
        uid: str_at(spec, "/uid").to_string(),
        groups: strings_at(spec, "/groups"),
        extra,
    }
}

/// The attributes a review's spec describes, for `user`.
pub(crate) fn attributes_of_spec(spec: &Value, user: UserInfo) -> Attributes {
    match spec.get("resourceAttributes").filter(|v| !v.is_null()) {
        Some(r) => {
            let version = str_at(r, "/version");
            Attributes {
                user,
                verb: str_at(r, "/verb").to_string(),
                resource_request: true,
                namespace: str_at(r, "/namespace").to_string(),
                api_group: str_at(r, "/group").to_string(),
                api_version: if version.is_empty() {
                    "*".to_string()
                } else {
                    version.to_string()
                },
                resource: str_at(r, "/resource").to_string(),
                subresource: str_at(r, "/subresource").to_string(),
                name: str_at(r, "/name").to_string(),
                path: String::new(),
            }
        }
        None => {
            let n = spec
                .get("nonResourceAttributes")
                .cloned()
                .unwrap_or(Value::Null);
            Attributes {
                user,
                verb: str_at(&n, "/verb").to_string(),
                resource_request: false,
                path: str_at(&n, "/path").to_string(),
                ..Default::default()
            }
        }
    }
}

fn access_review(
    review: Review,
    authorizer: &dyn Authorizer,
    requester: &UserInfo,
    namespace: &str,
    obj: &Value,
) -> Result<Value, ApiError> {
    let errs = validate_access_review(review, obj);
    if !errs.is_empty() {
        return Err(ApiError::invalid(AUTHZ_GROUP, "", "", &errs));
    }
    if review == Review::LocalSubjectAccess && namespace.is_empty() {
        return Err(ApiError::bad_request(
            "namespace is required on this type: ",
        ));
    }
    let spec = &obj["spec"];
    let user = if review == Review::SelfSubjectAccess {
        requester.clone()
    } else {
        user_of_spec(spec)
    };
    let decision = authorizer.authorize(&attributes_of_spec(spec, user));
    let (allowed, reason) = match decision {
        Decision::Allow(r) => (true, r),
        Decision::NoOpinion(r) => (false, r),
    };
    let mut status = json!({ "allowed": allowed });
    if !reason.is_empty() {
        status["reason"] = json!(reason);
    }
    Ok(status)
}

fn rules_review(
    authorizer: &dyn Authorizer,
    user: &UserInfo,
    obj: &Value,
) -> Result<Value, ApiError> {
    let namespace = str_at(obj, "/spec/namespace");
    if namespace.is_empty() {
        return Err(ApiError::bad_request("no namespace on request"));
    }
    let rules = authorizer.rules_for(user, namespace);
    let nonempty = |key: &str, v: &[String], out: &mut Map<String, Value>| {
        if !v.is_empty() {
            out.insert(key.into(), json!(v));
        }
    };
    let resource_rules: Vec<Value> = rules
        .resource_rules
        .iter()
        .map(|r| {
            let mut m = Map::new();
            m.insert("verbs".into(), json!(r.verbs));
            nonempty("apiGroups", &r.api_groups, &mut m);
            nonempty("resources", &r.resources, &mut m);
            nonempty("resourceNames", &r.resource_names, &mut m);
            Value::Object(m)
        })
        .collect();
    let non_resource_rules: Vec<Value> = rules
        .non_resource_rules
        .iter()
        .map(|r| {
            let mut m = Map::new();
            m.insert("verbs".into(), json!(r.verbs));
            nonempty("nonResourceURLs", &r.non_resource_urls, &mut m);
            Value::Object(m)
        })
        .collect();
    let mut status = json!({
        "resourceRules": resource_rules,
        "nonResourceRules": non_resource_rules,
        "incomplete": rules.incomplete,
    });
    if !rules.evaluation_error.is_empty() {
        status["evaluationError"] = json!(rules.evaluation_error);
    }
    Ok(status)
}

/// A user as `authentication.k8s.io/v1` UserInfo (empty fields left out).
pub(crate) fn user_info(user: &UserInfo) -> Value {
    let mut m = Map::new();
    if !user.name.is_empty() {
        m.insert("username".into(), json!(user.name));
    }
    if !user.uid.is_empty() {
        m.insert("uid".into(), json!(user.uid));
    }
    if !user.groups.is_empty() {
        m.insert("groups".into(), json!(user.groups));
    }
    if !user.extra.is_empty() {
        m.insert("extra".into(), json!(user.extra));
    }
    Value::Object(m)
}

fn token_review(
    tokens: &TokenAuthenticator,
    namespace: &str,
    obj: &Value,
) -> Result<Value, ApiError> {
    if !namespace.is_empty() {
        return Err(ApiError::bad_request(format!(
            "namespace is not allowed on this type: {namespace}"
        )));
    }
    let token = str_at(obj, "/spec/token");
    if token.is_empty() {
        return Err(ApiError::bad_request(
            "token is required for TokenReview in authentication",
        ));
    }
    let audiences = strings_at(obj, "/spec/audiences");
    Ok(match tokens.review(token, &audiences) {
        Ok((user, audiences)) => {
            let mut status = json!({"authenticated": true, "user": user_info(&user)});
            if !audiences.is_empty() {
                status["audiences"] = json!(audiences);
            }
            status
        }
        Err(error) => json!({"user": {}, "error": error.to_string()}),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::{AlwaysAllow, NonResourceRule, ResourceRule, RulesInfo};

    /// Allows jane to list pods in `a`; knows nothing else.
    struct JaneInA;

    impl Authorizer for JaneInA {
        fn authorize(&self, a: &Attributes) -> Decision {
            if a.user.name == "jane" && a.verb == "list" && a.namespace == "a" {
                Decision::Allow("jane may".into())
            } else {
                Decision::NoOpinion(String::new())
            }
        }

        fn rules_for(&self, user: &UserInfo, namespace: &str) -> RulesInfo {
            let mut r = RulesInfo::default();
            if user.name == "jane" && namespace == "a" {
                r.resource_rules.push(ResourceRule {
                    verbs: vec!["list".into()],
                    api_groups: vec!["".into()],
                    resources: vec!["pods".into()],
                    resource_names: vec![],
                });
            }
            r.non_resource_rules.push(NonResourceRule {
                verbs: vec!["get".into()],
                non_resource_urls: vec!["/healthz".into()],
            });
            r
        }
    }

    fn ask(review: Review, user: &UserInfo, ns: &str, body: Value) -> Result<Value, ApiError> {
        let tokens = TokenAuthenticator::default();
        let with = Reviewers {
            authorizer: &JaneInA,
            tokens: &tokens,
        };
        create(review, &with, user, ns, body.to_string().as_bytes())
    }

    fn jane() -> UserInfo {
        UserInfo::authenticated("jane", Vec::<String>::new())
    }

    #[test]
    fn self_subject_access_reviews_ask_about_the_caller() {
        let body = |ns: &str| {
            json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                   "metadata": {"creationTimestamp": null},
                   "spec": {"resourceAttributes": {"namespace": ns, "verb": "list", "resource": "pods"}}})
        };
        let out = ask(Review::SelfSubjectAccess, &jane(), "", body("a")).unwrap();
        assert_eq!(out["kind"], "SelfSubjectAccessReview");
        assert_eq!(
            out["status"],
            json!({"allowed": true, "reason": "jane may"})
        );
        assert_eq!(out["spec"]["resourceAttributes"]["namespace"], "a");
        let out = ask(Review::SelfSubjectAccess, &jane(), "", body("b")).unwrap();
        assert_eq!(out["status"], json!({"allowed": false}));
    }

    #[test]
    fn subject_access_reviews_ask_about_the_named_user() {
        let admin = UserInfo::authenticated("admin", ["system:masters"]);
        let body = json!({"spec": {"user": "jane", "groups": ["g"], "extra": {"k": ["v"]},
            "resourceAttributes": {"namespace": "a", "verb": "list", "resource": "pods"}}});
        let out = ask(Review::SubjectAccess, &admin, "", body).unwrap();
        assert_eq!(out["status"]["allowed"], true);
        assert_eq!(out["spec"]["extra"], json!({"k": ["v"]}));
        let spec = json!({"user": "jane", "extra": {"k": ["v"]},
            "resourceAttributes": {"verb": "get", "resource": "pods"}});
        let a = attributes_of_spec(&spec, user_of_spec(&spec));
        assert_eq!(a.api_version, "*", "an empty version matches all");
        assert_eq!(a.user.extra["k"], vec!["v".to_string()]);
        let spec = json!({"nonResourceAttributes": {"path": "/healthz", "verb": "get"}});
        let a = attributes_of_spec(&spec, jane());
        assert!(!a.resource_request);
        assert_eq!((a.path.as_str(), a.verb.as_str()), ("/healthz", "get"));
    }

    #[test]
    fn invalid_reviews_read_as_kubernetes_writes_them() {
        let err = ask(Review::SubjectAccess, &jane(), "", json!({"spec": {}})).unwrap_err();
        assert_eq!(err.code, 422);
        assert_eq!(
            err.message,
            r#".authorization.k8s.io "" is invalid: [spec.resourceAttributes: Invalid value: "null": exactly one of nonResourceAttributes or resourceAttributes must be specified, spec.user: Invalid value: "": at least one of user or group must be specified]"#
        );
        let err = ask(
            Review::SelfSubjectAccess,
            &jane(),
            "",
            json!({"spec": {"resourceAttributes": {"verb": "get"},
                            "nonResourceAttributes": {"path": "/x", "verb": "get"}}}),
        )
        .unwrap_err();
        assert_eq!(
            err.message,
            r#".authorization.k8s.io "" is invalid: spec.nonResourceAttributes: Invalid value: authorization.NonResourceAttributes{Path:"/x", Verb:"get"}: cannot be specified in combination with resourceAttributes"#
        );
        let err = ask(
            Review::SelfSubjectAccess,
            &jane(),
            "",
            json!({"metadata": {"name": "x"}, "spec": {"resourceAttributes": {"verb": "get"}}}),
        )
        .unwrap_err();
        assert!(err.message.ends_with(": must be empty"), "{}", err.message);
    }

    #[test]
    fn local_reviews_stay_in_their_namespace() {
        let body = |ns: &str| {
            json!({"spec": {"user": "jane",
                "resourceAttributes": {"namespace": ns, "verb": "list", "resource": "pods"}}})
        };
        let out = ask(Review::LocalSubjectAccess, &jane(), "a", body("a")).unwrap();
        assert_eq!(out["metadata"]["namespace"], "a");
        assert_eq!(out["status"]["allowed"], true);
        let err = ask(Review::LocalSubjectAccess, &jane(), "a", body("b")).unwrap_err();
        assert_eq!(
            err.message,
            r#".authorization.k8s.io "" is invalid: spec.resourceAttributes.namespace: Invalid value: "b": must match metadata.namespace"#
        );
        let mut other = body("a");
        other["metadata"] = json!({"namespace": "c"});
        let err = ask(Review::LocalSubjectAccess, &jane(), "a", other).unwrap_err();
        assert_eq!(err.code, 400);
        let err = ask(
            Review::LocalSubjectAccess,
            &jane(),
            "a",
            json!({"spec": {"user": "jane", "nonResourceAttributes": {"path": "/x", "verb": "get"}}}),
        )
        .unwrap_err();
        assert!(
            err.message
                .ends_with("spec.nonResourceAttributes: Invalid value: authorization.NonResourceAttributes{Path:\"/x\", Verb:\"get\"}: disallowed on this kind of request"),
            "{}",
            err.message
        );
    }

    #[test]
    fn rules_reviews_list_the_callers_rules() {
        let out = ask(
            Review::SelfSubjectRules,
            &jane(),
            "",
            json!({"spec": {"namespace": "a"}}),
        )
        .unwrap();
        assert_eq!(out["kind"], "SelfSubjectRulesReview");
        assert_eq!(out["spec"], json!({}));
        assert_eq!(
            out["status"],
            json!({
                "resourceRules": [{"verbs": ["list"], "apiGroups": [""], "resources": ["pods"]}],
                "nonResourceRules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}],
                "incomplete": false,
            })
        );
        let err = ask(Review::SelfSubjectRules, &jane(), "", json!({"spec": {}})).unwrap_err();
        assert_eq!(
            (err.code, err.message.as_str()),
            (400, "no namespace on request")
        );
        // Whatever the authorizer: AlwaysAllow's single wildcard rule.
        let tokens = TokenAuthenticator::default();
        let with = Reviewers {
            authorizer: &AlwaysAllow,
            tokens: &tokens,
        };
        let out = create(
            Review::SelfSubjectRules,
            &with,
            &jane(),
            "",
            br#"{"spec":{"namespace":"x"}}"#,
        )
        .unwrap();
        assert_eq!(
            out["status"]["resourceRules"],
            json!([{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}])
        );
    }

    #[test]
    fn token_reviews_say_whose_a_token_is() {
        let mut tokens = TokenAuthenticator::default();
        tokens.add(
            "s3cret",
            UserInfo::authenticated("system:admin", ["system:masters"]),
        );
        let with = Reviewers {
            authorizer: &AlwaysAllow,
            tokens: &tokens,
        };
        let review = |body: Value| {
            create(
                Review::Token,
                &with,
                &jane(),
                "",
                body.to_string().as_bytes(),
            )
        };
        let out = review(json!({"spec": {"token": "s3cret"}})).unwrap();
        assert_eq!(
            out["status"],
            json!({"authenticated": true,
                   "user": {"username": "system:admin", "groups": ["system:masters", "system:authenticated"]},
                   "audiences": [crate::satoken::ISSUER]})
        );
        let out = review(json!({"spec": {"token": "wrong"}})).unwrap();
        assert_eq!(
            out["status"],
            json!({"user": {}, "error": "invalid bearer token"})
        );
        // A token the server knows is not valid for another audience.
        let out = review(json!({"spec": {"token": "s3cret", "audiences": ["vault"]}})).unwrap();
        assert_eq!(out["status"]["authenticated"], Value::Null);
        let err = review(json!({"spec": {}})).unwrap_err();
        assert_eq!(
            err.message,
            "token is required for TokenReview in authentication"
        );
        let err = create(
            Review::Token,
            &with,
            &jane(),
            "ns",
            br#"{"spec":{"token":"x"}}"#,
        )
        .unwrap_err();
        assert_eq!(err.message, "namespace is not allowed on this type: ns");
    }
}
