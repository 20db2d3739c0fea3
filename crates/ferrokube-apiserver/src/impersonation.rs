//! Impersonation: a request may act as another user with the headers
//! `Impersonate-User`, `Impersonate-Group` (repeated), `Impersonate-Uid` and
//! `Impersonate-Extra-<key>` (kubectl's `--as`, `--as-group`, `--as-uid`).
//!
//! As Kubernetes' impersonation filter, which runs right after
//! authentication: each thing asked for is authorized for the real user with
//! the verb `impersonate` (on `users`, `groups` and `serviceaccounts` in the
//! core group, a service account in its namespace; on `uids` and
//! `userextras/<key>` in `authentication.k8s.io`), and the first refusal is a
//! 403 worded as any other. The request then goes on as the impersonated
//! user: a service account's groups when no group is asked for, and
//! `system:authenticated` added unless the groups asked for name it or
//! `system:unauthenticated`. Groups, extras or a uid without a user are an
//! error (a 500, in Kubernetes' words). The headers are removed.

use std::collections::BTreeMap;

use ferrokube_api::status::ApiError;
use http::HeaderMap;

use crate::authn::UserInfo;
use crate::authz::{forbidden, Attributes, Authorizer, Decision};

const USER: &str = "impersonate-user";
const GROUP: &str = "impersonate-group";
const UID: &str = "impersonate-uid";
const EXTRA_PREFIX: &str = "impersonate-extra-";

const AUTHENTICATED: &str = "system:authenticated";
const UNAUTHENTICATED: &str = "system:unauthenticated";
const ANONYMOUS: &str = "system:anonymous";

/// Why a request may not act as whom it asks.
#[derive(Debug, PartialEq)]
pub(crate) enum Refusal {
    /// Not allowed to impersonate: a 403 `Status`.
    Forbidden(ApiError),
    /// A malformed request (groups without a user): Kubernetes answers 500
    /// with this plain-text message.
    Internal(String),
}

/// One thing asked for, as Kubernetes lists them (an ObjectReference).
#[derive(Debug)]
struct Asked {
    kind: &'static str,
    namespace: String,
    name: String,
    api_version: &'static str,
    field_path: String,
}

impl Asked {
    fn new(kind: &'static str, name: &str) -> Asked {
        Asked {
            kind,
            namespace: String::new(),
            name: name.to_string(),
            api_version: "",
            field_path: String::new(),
        }
    }

    /// Go's `%v` of the ObjectReference (Kind, Namespace, Name, UID,
    /// APIVersion, ResourceVersion, FieldPath).
    fn go_string(&self) -> String {
        format!(
            "{{{} {} {}  {}  {}}}",
            self.kind, self.namespace, self.name, self.api_version, self.field_path
        )
    }
}

/// A DNS-1123 label (a namespace's name).
fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A DNS-1123 subdomain (a service account's name).
fn is_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_label)
}

/// `system:serviceaccount:NS:NAME` split, if the user is a service account.
fn service_account(user: &str) -> Option<(&str, &str)> {
    let rest = user.strip_prefix("system:serviceaccount:")?;
    let (ns, name) = rest.split_once(':')?;
    (!name.contains(':') && is_label(ns) && is_subdomain(name)).then_some((ns, name))
}

/// `%`-decoding of an extra's key, as `url.PathUnescape` (the key as given
/// when it does not decode).
fn unescape(key: &str) -> String {
    let bytes = key.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match hex {
                Some(b) => out.push(b),
                None => return key.to_string(),
            }
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| key.to_string())
}

/// What the headers ask to impersonate, in Kubernetes' order.
fn asked(headers: &HeaderMap) -> Result<Vec<Asked>, Refusal> {
    let value = |v: &http::HeaderValue| String::from_utf8_lossy(v.as_bytes()).into_owned();
    let mut out = Vec::new();
    let user = headers.get(USER).map(value).unwrap_or_default();
    if !user.is_empty() {
        out.push(match service_account(&user) {
            Some((ns, name)) => Asked {
                namespace: ns.to_string(),
                ..Asked::new("ServiceAccount", name)
            },
            None => Asked::new("User", &user),
        });
    }
    let mut others = false;
    for g in headers.get_all(GROUP) {
        others = true;
        out.push(Asked::new("Group", &value(g)));
    }
    for (name, v) in headers {
        if let Some(key) = name.as_str().strip_prefix(EXTRA_PREFIX) {
            others = true;
            out.push(Asked {
                api_version: "authentication.k8s.io/v1",
                field_path: unescape(key),
                ..Asked::new("UserExtra", &value(v))
            });
        }
    }
    let uid = headers.get(UID).map(value).unwrap_or_default();
    if !uid.is_empty() {
        others = true;
        out.push(Asked {
            api_version: "authentication.k8s.io/v1",
            ..Asked::new("UID", &uid)
        });
    }
    if others && user.is_empty() {
        let list: Vec<String> = out.iter().map(Asked::go_string).collect();
        return Err(Refusal::Internal(format!(
            "requested [{}] without impersonating a user",
            list.join(" ")
        )));
    }
    Ok(out)
}

/// Whether `headers` ask for impersonation at all (cheap: most do not).
fn asks(headers: &HeaderMap) -> bool {
    headers.contains_key(USER)
        || headers.contains_key(GROUP)
        || headers.contains_key(UID)
        || headers.keys().any(|k| k.as_str().starts_with(EXTRA_PREFIX))
}

/// The user the request acts as: `requester` itself, or whom the
/// impersonation headers name when `authorizer` lets `requester`
/// impersonate them. The headers are removed.
pub(crate) fn act_as(
    authorizer: &dyn Authorizer,
    requester: UserInfo,
    headers: &mut HeaderMap,
) -> Result<UserInfo, Refusal> {
    if !asks(headers) {
        return Ok(requester);
    }
    let asked = asked(headers)?;
    let groups_given = headers.contains_key(GROUP);
    let mut name = String::new();
    let mut uid = String::new();
    let mut groups: Vec<String> = Vec::new();
    let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for a in &asked {
        let (group, version) = a.api_version.split_once('/').unwrap_or(("", ""));
        let mut attrs = Attributes {
            user: requester.clone(),
            verb: "impersonate".into(),
            resource_request: true,
            namespace: a.namespace.clone(),
            api_group: group.into(),
            api_version: version.into(),
            name: a.name.clone(),
            ..Default::default()
        };
        match a.kind {
            "ServiceAccount" => {
                attrs.resource = "serviceaccounts".into();
                name = format!("system:serviceaccount:{}:{}", a.namespace, a.name);
                if !groups_given {
                    groups = vec![
                        "system:serviceaccounts".into(),
                        format!("system:serviceaccounts:{}", a.namespace),
                    ];
                }
            }
            "User" => {
                attrs.resource = "users".into();
                name = a.name.clone();
            }
            "Group" => {
                attrs.resource = "groups".into();
                groups.push(a.name.clone());
            }
            "UserExtra" => {
                attrs.resource = "userextras".into();
                attrs.subresource = a.field_path.clone();
                extra
                    .entry(a.field_path.clone())
                    .or_default()
                    .push(a.name.clone());
            }
            _ => {
                attrs.resource = "uids".into();
                uid = a.name.clone();
            }
        }
        match authorizer.authorize(&attrs) {
            Decision::Allow(_) => {}
            Decision::NoOpinion(reason) => {
                return Err(Refusal::Forbidden(forbidden(&attrs, &reason)));
            }
        }
    }
    if name != ANONYMOUS {
        if !groups
            .iter()
            .any(|g| g == AUTHENTICATED || g == UNAUTHENTICATED)
        {
            groups.push(AUTHENTICATED.into());
        }
    } else if !groups.iter().any(|g| g == UNAUTHENTICATED) {
        groups.push(UNAUTHENTICATED.into());
    }
    tracing::debug!(requester = %requester.name, as_user = %name, "impersonating");
    headers.remove(USER);
    headers.remove(GROUP);
    headers.remove(UID);
    let extras: Vec<http::HeaderName> = headers
        .keys()
        .filter(|k| k.as_str().starts_with(EXTRA_PREFIX))
        .cloned()
        .collect();
    for k in extras {
        headers.remove(k);
    }
    Ok(UserInfo {
        name,
        uid,
        groups,
        extra,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::{AlwaysAllow, RulesInfo};
    use std::sync::Mutex;

    /// Allows only what `allowed` names as `resource/name`; records asks.
    struct Only {
        allowed: Vec<&'static str>,
        asked: Mutex<Vec<Attributes>>,
    }

    impl Authorizer for Only {
        fn authorize(&self, a: &Attributes) -> Decision {
            self.asked.lock().unwrap().push(a.clone());
            let key = format!("{}/{}", a.resource, a.name);
            if self.allowed.contains(&key.as_str()) {
                Decision::Allow(String::new())
            } else {
                Decision::NoOpinion(String::new())
            }
        }
        fn rules_for(&self, _: &UserInfo, _: &str) -> RulesInfo {
            RulesInfo::default()
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    fn admin() -> UserInfo {
        UserInfo::authenticated("admin", ["system:masters"])
    }

    #[test]
    fn without_headers_the_requester_stays() {
        let mut h = headers(&[("accept", "application/json")]);
        assert_eq!(act_as(&AlwaysAllow, admin(), &mut h), Ok(admin()));
    }

    #[test]
    fn a_user_with_groups_uid_and_extras() {
        let mut h = headers(&[
            ("Impersonate-User", "jane"),
            ("Impersonate-Group", "devs"),
            ("Impersonate-Group", "ops"),
            ("Impersonate-Uid", "u-1"),
            ("Impersonate-Extra-Scopes", "view"),
            ("Impersonate-Extra-Example.com%2fteam", "blue"),
        ]);
        let z = Only {
            allowed: vec![
                "users/jane",
                "groups/devs",
                "groups/ops",
                "uids/u-1",
                "userextras/view",
                "userextras/blue",
            ],
            asked: Mutex::default(),
        };
        let user = act_as(&z, admin(), &mut h).unwrap();
        assert_eq!(user.name, "jane");
        assert_eq!(user.uid, "u-1");
        assert_eq!(user.groups, vec!["devs", "ops", "system:authenticated"]);
        assert_eq!(user.extra["scopes"], vec!["view"]);
        assert_eq!(user.extra["example.com/team"], vec!["blue"]);
        assert!(h.is_empty(), "the headers are removed: {h:?}");
        let asked = z.asked.lock().unwrap();
        let extra = asked.iter().find(|a| a.resource == "userextras").unwrap();
        assert_eq!(
            (extra.api_group.as_str(), extra.subresource.as_str()),
            ("authentication.k8s.io", "scopes")
        );
        assert!(asked.iter().all(|a| a.verb == "impersonate"));
        assert!(asked.iter().all(|a| a.user.name == "admin"));
    }

    #[test]
    fn a_service_account_gets_its_groups() {
        let mut h = headers(&[("Impersonate-User", "system:serviceaccount:team:robot")]);
        let z = Only {
            allowed: vec!["serviceaccounts/robot"],
            asked: Mutex::default(),
        };
        let user = act_as(&z, admin(), &mut h).unwrap();
        assert_eq!(user.name, "system:serviceaccount:team:robot");
        assert_eq!(
            user.groups,
            vec![
                "system:serviceaccounts",
                "system:serviceaccounts:team",
                "system:authenticated"
            ]
        );
        assert_eq!(z.asked.lock().unwrap()[0].namespace, "team");
        // Not a valid service-account name: an ordinary user.
        let mut h = headers(&[("Impersonate-User", "system:serviceaccount:Team:robot")]);
        let z = Only {
            allowed: vec!["users/system:serviceaccount:Team:robot"],
            asked: Mutex::default(),
        };
        assert!(act_as(&z, admin(), &mut h).is_ok());
    }

    #[test]
    fn refusals_read_as_kubernetes_writes_them() {
        let jane = UserInfo::authenticated("jane", Vec::<String>::new());
        let z = Only {
            allowed: vec!["users/bob"],
            asked: Mutex::default(),
        };
        let mut h = headers(&[
            ("Impersonate-User", "bob"),
            ("Impersonate-Group", "system:masters"),
        ]);
        match act_as(&z, jane.clone(), &mut h) {
            Err(Refusal::Forbidden(e)) => {
                assert_eq!(e.code, 403);
                assert_eq!(
                    e.message,
                    r#"groups "system:masters" is forbidden: User "jane" cannot impersonate resource "groups" in API group "" at the cluster scope"#
                );
            }
            other => panic!("{other:?}"),
        }
        let mut h = headers(&[("Impersonate-User", "system:serviceaccount:kube-system:x")]);
        match act_as(&z, jane.clone(), &mut h) {
            Err(Refusal::Forbidden(e)) => assert_eq!(
                e.message,
                r#"serviceaccounts "x" is forbidden: User "jane" cannot impersonate resource "serviceaccounts" in API group "" in the namespace "kube-system""#
            ),
            other => panic!("{other:?}"),
        }
        let mut h = headers(&[("Impersonate-Group", "system:masters")]);
        assert_eq!(
            act_as(&AlwaysAllow, jane.clone(), &mut h),
            Err(Refusal::Internal(
                "requested [{Group  system:masters    }] without impersonating a user".into()
            ))
        );
        let mut h = headers(&[("Impersonate-Uid", "u"), ("Impersonate-Extra-A", "b")]);
        assert_eq!(
            act_as(&AlwaysAllow, jane, &mut h),
            Err(Refusal::Internal(
                "requested [{UserExtra  b  authentication.k8s.io/v1  a} {UID  u  authentication.k8s.io/v1  }] without impersonating a user".into()
            ))
        );
    }

    #[test]
    fn groups_given_are_the_groups() {
        let mut h = headers(&[
            ("Impersonate-User", "system:serviceaccount:team:robot"),
            ("Impersonate-Group", "system:unauthenticated"),
        ]);
        let user = act_as(&AlwaysAllow, admin(), &mut h).unwrap();
        assert_eq!(user.groups, vec!["system:unauthenticated"]);
        let mut h = headers(&[("Impersonate-User", "system:anonymous")]);
        let user = act_as(&AlwaysAllow, admin(), &mut h).unwrap();
        assert_eq!(user.groups, vec!["system:unauthenticated"]);
        assert_eq!(unescape("a%2Fb"), "a/b");
        assert_eq!(unescape("a%zz"), "a%zz");
    }
}
