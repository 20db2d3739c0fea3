//! What a request is asking for, read off its method, path and query the way
//! Kubernetes' request-info factory reads it: the verb (`get`, `list`,
//! `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`), the
//! API group and version, the namespace, the resource, the object's name and
//! the subresource. Authorization and the REST handlers work from this.

/// A parsed API request. Non-resource requests (`/healthz`, `/version`,
/// discovery such as `/apis/apps`) have `resource` empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RequestInfo {
    pub is_resource_request: bool,
    /// `api` (the core group) or `apis`.
    pub api_prefix: String,
    /// Empty for the core group.
    pub group: String,
    pub version: String,
    pub namespace: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
    pub verb: String,
    /// The path's segments after the prefix, group and version.
    pub parts: Vec<String>,
}

/// Reads `method`, `path` and the decoded `watch` query flag into a
/// [`RequestInfo`]. Never fails: what is not a resource path is a
/// non-resource request with the lower-cased method as its verb.
pub(crate) fn parse(method: &str, path: &str, watch_query: bool) -> RequestInfo {
    let method = method.to_ascii_uppercase();
    let non_resource = || RequestInfo {
        verb: method.to_ascii_lowercase(),
        ..Default::default()
    };
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    if segments.len() < 2 || segments.iter().any(|s| s.is_empty()) {
        return non_resource();
    }
    let mut info = RequestInfo {
        api_prefix: segments[0].to_string(),
        ..Default::default()
    };
    let rest: &[&str] = match segments[0] {
        "api" => {
            info.version = segments[1].to_string();
            &segments[2..]
        }
        "apis" => {
            if segments.len() < 3 {
                return non_resource();
            }
            info.group = segments[1].to_string();
            info.version = segments[2].to_string();
            &segments[3..]
        }
        _ => return non_resource(),
    };
    if rest.is_empty() {
        // Discovery of one group version, e.g. /api/v1 or /apis/apps/v1.
        return non_resource();
    }
    info.is_resource_request = true;
    let mut rest: Vec<String> = rest.iter().map(|s| s.to_string()).collect();

    info.verb = match method.as_str() {
        "POST" => "create",
        "GET" | "HEAD" => "get",
        "PUT" => "update",
        "PATCH" => "patch",
        "DELETE" => "delete",
        _ => "",
    }
    .to_string();

    // The deprecated `/watch/` path prefix.
    if rest[0] == "watch" {
        rest.remove(0);
        info.verb = "watch".to_string();
        if rest.is_empty() {
            return non_resource();
        }
    }

    // namespaces/{ns}/{resource}... , except the namespaces resource itself
    // (namespaces/{name}[/status|/finalize]).
    if rest[0] == "namespaces" && rest.len() > 1 {
        info.namespace = rest[1].clone();
        if rest.len() > 2 {
            rest.drain(..2);
        } else {
            // /namespaces/{name}: the namespace object itself.
            info.name = info.namespace.clone();
            info.namespace = String::new();
            info.resource = "namespaces".into();
            info.parts = vec!["namespaces".into(), info.name.clone()];
            finish_verb(&mut info, watch_query);
            return info;
        }
    }
    // /namespaces/{name}/status, /namespaces/{name}/finalize
    if rest.len() == 1 && info.resource.is_empty() && segments_is_namespace_sub(&info, &rest) {
        let name = std::mem::take(&mut info.namespace);
        info.resource = "namespaces".into();
        info.name = name.clone();
        info.subresource = rest[0].clone();
        info.parts = vec!["namespaces".into(), name, rest[0].clone()];
        finish_verb(&mut info, watch_query);
        return info;
    }

    info.parts = rest.clone();
    info.resource = rest[0].clone();
    if rest.len() >= 2 {
        info.name = rest[1].clone();
    }
    if rest.len() >= 3 {
        info.subresource = rest[2].clone();
    }
    finish_verb(&mut info, watch_query);
    info
}

/// `/api/v1/namespaces/{name}/status` looks like a namespaced request for
/// resource "status"; Kubernetes treats it as the namespace's subresource.
fn segments_is_namespace_sub(info: &RequestInfo, rest: &[String]) -> bool {
    !info.namespace.is_empty() && matches!(rest[0].as_str(), "status" | "finalize")
}

fn finish_verb(info: &mut RequestInfo, watch_query: bool) {
    if info.name.is_empty() {
        match info.verb.as_str() {
            "get" => info.verb = if watch_query { "watch" } else { "list" }.into(),
            "delete" => info.verb = "deletecollection".into(),
            _ => {}
        }
    } else if info.verb == "get" && watch_query {
        info.verb = "watch".into();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(method: &str, path: &str) -> RequestInfo {
        parse(method, path, false)
    }

    #[test]
    fn core_namespaced_paths() {
        let i = p("GET", "/api/v1/namespaces/default/pods");
        assert!(i.is_resource_request);
        assert_eq!((i.group.as_str(), i.version.as_str()), ("", "v1"));
        assert_eq!(i.namespace, "default");
        assert_eq!(i.resource, "pods");
        assert_eq!(i.verb, "list");
        assert_eq!(i.name, "");

        let i = p("GET", "/api/v1/namespaces/default/pods/web-1");
        assert_eq!((i.verb.as_str(), i.name.as_str()), ("get", "web-1"));

        let i = p("PUT", "/api/v1/namespaces/default/pods/web-1/status");
        assert_eq!(i.verb, "update");
        assert_eq!(i.subresource, "status");

        let i = p("POST", "/api/v1/namespaces/default/pods/web-1/binding");
        assert_eq!(
            (i.verb.as_str(), i.subresource.as_str()),
            ("create", "binding")
        );

        let i = p("DELETE", "/api/v1/namespaces/ns1/configmaps");
        assert_eq!(i.verb, "deletecollection");
        let i = p("DELETE", "/api/v1/namespaces/ns1/configmaps/c");
        assert_eq!(i.verb, "delete");
        let i = p("PATCH", "/api/v1/namespaces/ns1/configmaps/c");
        assert_eq!(i.verb, "patch");
        let i = p("POST", "/api/v1/namespaces/ns1/configmaps");
        assert_eq!((i.verb.as_str(), i.name.as_str()), ("create", ""));
    }

    #[test]
    fn group_and_cluster_scoped_paths() {
        let i = p("GET", "/apis/apps/v1/namespaces/x/deployments/d/scale");
        assert_eq!(i.api_prefix, "apis");
        assert_eq!((i.group.as_str(), i.version.as_str()), ("apps", "v1"));
        assert_eq!(
            (
                i.namespace.as_str(),
                i.resource.as_str(),
                i.name.as_str(),
                i.subresource.as_str()
            ),
            ("x", "deployments", "d", "scale")
        );
        let i = p("GET", "/apis/apps/v1/deployments");
        assert_eq!((i.namespace.as_str(), i.verb.as_str()), ("", "list"));
        let i = p("GET", "/api/v1/nodes/n1");
        assert_eq!((i.resource.as_str(), i.name.as_str()), ("nodes", "n1"));
        let i = p(
            "GET",
            "/apis/rbac.authorization.k8s.io/v1/clusterroles/admin",
        );
        assert_eq!(i.group, "rbac.authorization.k8s.io");
        assert_eq!(i.name, "admin");
    }

    #[test]
    fn namespaces_resource_itself() {
        let i = p("GET", "/api/v1/namespaces");
        assert_eq!(
            (i.resource.as_str(), i.verb.as_str()),
            ("namespaces", "list")
        );
        let i = p("GET", "/api/v1/namespaces/kube-system");
        assert_eq!(
            (
                i.resource.as_str(),
                i.name.as_str(),
                i.namespace.as_str(),
                i.verb.as_str()
            ),
            ("namespaces", "kube-system", "", "get")
        );
        let i = p("DELETE", "/api/v1/namespaces/team-a");
        assert_eq!(
            (i.resource.as_str(), i.verb.as_str()),
            ("namespaces", "delete")
        );
        let i = p("PUT", "/api/v1/namespaces/team-a/finalize");
        assert_eq!(
            (i.resource.as_str(), i.name.as_str(), i.subresource.as_str()),
            ("namespaces", "team-a", "finalize")
        );
        let i = p("PUT", "/api/v1/namespaces/team-a/status");
        assert_eq!(i.subresource, "status");
        assert_eq!(i.namespace, "");
    }

    #[test]
    fn watches() {
        let i = parse("GET", "/api/v1/namespaces/default/pods", true);
        assert_eq!(i.verb, "watch");
        let i = parse("GET", "/api/v1/namespaces/default/pods/p", true);
        assert_eq!(i.verb, "watch");
        let i = p("GET", "/api/v1/watch/namespaces/default/pods");
        assert_eq!((i.verb.as_str(), i.resource.as_str()), ("watch", "pods"));
        let i = p("GET", "/apis/apps/v1/watch/deployments");
        assert_eq!(
            (i.verb.as_str(), i.resource.as_str()),
            ("watch", "deployments")
        );
    }

    #[test]
    fn non_resource_paths() {
        for path in [
            "/",
            "/healthz",
            "/version",
            "/api",
            "/apis",
            "/apis/apps",
            "/api/v1",
            "/apis/apps/v1",
            "/openapi/v3",
            "//api//v1",
        ] {
            let i = p("GET", path);
            assert!(!i.is_resource_request, "{path}");
            assert_eq!(i.verb, "get", "{path}");
        }
    }
}
