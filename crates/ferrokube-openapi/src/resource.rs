//! [`ResourceDesc`]: what the generator needs to know about one served resource.

/// One served resource, as the generator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceDesc {
    /// API group; empty for the core group.
    pub group: &'static str,
    /// API version, e.g. `v1`.
    pub version: &'static str,
    /// Kind, e.g. `Deployment`.
    pub kind: &'static str,
    /// Plural resource name, e.g. `deployments`.
    pub plural: &'static str,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// Verbs served: `get`, `list`, `watch`, `create`, `update`, `patch`,
    /// `delete`, `deletecollection`.
    pub verbs: &'static [&'static str],
    /// Subresources served: `status`, `scale`, `binding`, `eviction`, `log`,
    /// `exec`, `attach`, `portforward`, `proxy`, ...
    pub subresources: &'static [&'static str],
}

impl ResourceDesc {
    pub(crate) fn has_verb(&self, verb: &str) -> bool {
        self.verbs.contains(&verb)
    }
}

/// `api/v1` or `apis/<group>/<version>`.
pub(crate) fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}
