//! The resource registry: one table row per resource the server serves, with
//! what discovery reports (group, version, kind, plural, scope, verbs, short
//! names, categories, subresources) and where the objects are stored.
//!
//! Storage keys follow Kubernetes' own layout under `/registry/` (e.g.
//! `/registry/pods/<ns>/<name>`, `/registry/minions/<name>` for nodes,
//! `/registry/services/specs/<ns>/<name>`), so an etcd holding a ferrokube
//! cluster reads like one holding a Kubernetes cluster. Events are one
//! resource served in two groups, as in Kubernetes: the `events.k8s.io` row
//! shares the core row's storage (`/registry/events/`), and the API server
//! converts between the two forms. HorizontalPodAutoscalers are one
//! resource at two versions of a group the same way: the preferred
//! `autoscaling/v2` row comes first, the `autoscaling/v1` row shares its
//! storage.
//!
//! A new kind is a new row here (plus, where it needs them, its registry
//! strategy in the API server: defaulting, validation, ...); no new
//! handler.

/// The verbs of a resource that supports everything.
pub const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// What namespaces serve: everything but `deletecollection`, as in
/// Kubernetes.
pub const NAMESPACE_VERBS: &[&str] = &[
    "create", "delete", "get", "list", "patch", "update", "watch",
];

/// A subresource: its name, and the kind (group/version/kind) it speaks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subresource {
    /// The subresource's name (`status`, `scale`, `log`, ...).
    pub name: &'static str,
    /// The group of the kind it speaks (empty: core).
    pub group: &'static str,
    /// The version of the kind it speaks.
    pub version: &'static str,
    /// The kind it speaks (the object's own kind for `status`).
    pub kind: &'static str,
    /// The verbs it serves.
    pub verbs: &'static [&'static str],
}

/// One served resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceDef {
    /// The API group (empty: core).
    pub group: &'static str,
    /// The served version.
    pub version: &'static str,
    /// The kind, e.g. `Deployment`.
    pub kind: &'static str,
    /// The plural resource name in paths, e.g. `deployments`.
    pub plural: &'static str,
    /// The singular name, lower case.
    pub singular: &'static str,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// The verbs served, as discovery lists them.
    pub verbs: &'static [&'static str],
    /// kubectl's short names (`deploy`).
    pub short_names: &'static [&'static str],
    /// kubectl's categories (`all`).
    pub categories: &'static [&'static str],
    /// Its subresources.
    pub subresources: Vec<Subresource>,
    /// Key prefix in the store, ending in `/`.
    pub storage_prefix: &'static str,
}

impl ResourceDef {
    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `PodList`.
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// The store key of an object.
    pub fn key(&self, namespace: &str, name: &str) -> String {
        if self.namespaced {
            format!("{}{namespace}/{name}", self.storage_prefix)
        } else {
            format!("{}{name}", self.storage_prefix)
        }
    }

    /// The key prefix of a list: one namespace's objects, or all.
    pub fn list_prefix(&self, namespace: &str) -> String {
        if self.namespaced && !namespace.is_empty() {
            format!("{}{namespace}/", self.storage_prefix)
        } else {
            self.storage_prefix.to_string()
        }
    }

    /// The subresource named `name`, if served.
    pub fn subresource(&self, name: &str) -> Option<&Subresource> {
        self.subresources.iter().find(|s| s.name == name)
    }

    /// Whether `verb` is served.
    pub fn has_verb(&self, verb: &str) -> bool {
        self.verbs.contains(&verb)
    }
}

fn sub(
    name: &'static str,
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    verbs: &'static [&'static str],
) -> Subresource {
    Subresource {
        name,
        group,
        version,
        kind,
        verbs,
    }
}

/// The group of dynamic admission's configuration.
const ADMISSION: &str = "admissionregistration.k8s.io";

/// The category of the kinds that extend the API (`kubectl get api-extensions`).
const API_EXTENSIONS: &[&str] = &["api-extensions"];

const GET_PATCH_UPDATE: &[&str] = &["get", "patch", "update"];

fn status(group: &'static str, version: &'static str, kind: &'static str) -> Subresource {
    sub("status", group, version, kind, GET_PATCH_UPDATE)
}

/// The verbs of the `proxy` subresources (every HTTP method).
const PROXY_VERBS: &[&str] = &["create", "delete", "get", "patch", "update"];

fn proxy(kind: &'static str) -> Subresource {
    sub("proxy", "", "v1", kind, PROXY_VERBS)
}

fn scale() -> Subresource {
    sub("scale", "autoscaling", "v1", "Scale", GET_PATCH_UPDATE)
}

#[allow(clippy::too_many_arguments)]
fn row(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    categories: &'static [&'static str],
    storage_prefix: &'static str,
) -> ResourceDef {
    ResourceDef {
        group,
        version,
        kind,
        plural,
        singular: "",
        namespaced,
        verbs: ALL_VERBS,
        short_names,
        categories,
        subresources: Vec::new(),
        storage_prefix,
    }
}

impl ResourceDef {
    fn with_subs(mut self, subs: Vec<Subresource>) -> Self {
        self.subresources = subs;
        self
    }

    fn with_verbs(mut self, verbs: &'static [&'static str]) -> Self {
        self.verbs = verbs;
        self
    }

    fn finish(mut self) -> Self {
        self.singular = singular_of(self.kind);
        self
    }
}

/// The lower-cased kind, leaked once per row at start-up (rows live for the
/// whole process).
fn singular_of(kind: &str) -> &'static str {
    Box::leak(kind.to_ascii_lowercase().into_boxed_str())
}

const ALL: &[&str] = &["all"];
const NONE: &[&str] = &[];

/// Every resource the server serves, in discovery order.
#[expect(
    clippy::too_many_lines,
    reason = "a table: one row per built-in resource"
)]
pub fn builtin() -> Vec<ResourceDef> {
    let core = |kind, plural, ns, short, cats, prefix| {
        row("", "v1", kind, plural, ns, short, cats, prefix)
    };
    vec![
        core(
            "Namespace",
            "namespaces",
            false,
            &["ns"],
            NONE,
            "/registry/namespaces/",
        )
        .with_verbs(NAMESPACE_VERBS)
        .with_subs(vec![
            status("", "v1", "Namespace"),
            sub("finalize", "", "v1", "Namespace", &["update"]),
        ]),
        core("Pod", "pods", true, &["po"], ALL, "/registry/pods/").with_subs(vec![
            status("", "v1", "Pod"),
            sub("binding", "", "v1", "Binding", &["create"]),
            sub("eviction", "policy", "v1", "Eviction", &["create"]),
            sub("log", "", "v1", "Pod", &["get"]),
            sub("exec", "", "v1", "PodExecOptions", &["create", "get"]),
            sub("attach", "", "v1", "PodAttachOptions", &["create", "get"]),
            sub(
                "portforward",
                "",
                "v1",
                "PodPortForwardOptions",
                &["create", "get"],
            ),
            sub("ephemeralcontainers", "", "v1", "Pod", GET_PATCH_UPDATE),
            proxy("PodProxyOptions"),
        ]),
        core(
            "Binding",
            "bindings",
            true,
            NONE,
            NONE,
            "/registry/bindings/",
        )
        .with_verbs(&["create"]),
        core(
            "Service",
            "services",
            true,
            &["svc"],
            ALL,
            "/registry/services/specs/",
        )
        .with_subs(vec![
            status("", "v1", "Service"),
            proxy("ServiceProxyOptions"),
        ]),
        core(
            "Endpoints",
            "endpoints",
            true,
            &["ep"],
            NONE,
            "/registry/services/endpoints/",
        ),
        core(
            "ConfigMap",
            "configmaps",
            true,
            &["cm"],
            NONE,
            "/registry/configmaps/",
        ),
        core("Secret", "secrets", true, NONE, NONE, "/registry/secrets/"),
        core(
            "ServiceAccount",
            "serviceaccounts",
            true,
            &["sa"],
            NONE,
            "/registry/serviceaccounts/",
        )
        .with_subs(vec![sub(
            "token",
            "authentication.k8s.io",
            "v1",
            "TokenRequest",
            &["create"],
        )]),
        core("Node", "nodes", false, &["no"], NONE, "/registry/minions/")
            .with_subs(vec![status("", "v1", "Node"), proxy("NodeProxyOptions")]),
        core("Event", "events", true, &["ev"], NONE, "/registry/events/"),
        core(
            "ReplicationController",
            "replicationcontrollers",
            true,
            &["rc"],
            ALL,
            "/registry/controllers/",
        )
        .with_subs(vec![status("", "v1", "ReplicationController"), scale()]),
        core(
            "LimitRange",
            "limitranges",
            true,
            &["limits"],
            NONE,
            "/registry/limitranges/",
        ),
        core(
            "ResourceQuota",
            "resourcequotas",
            true,
            &["quota"],
            NONE,
            "/registry/resourcequotas/",
        )
        .with_subs(vec![status("", "v1", "ResourceQuota")]),
        core(
            "PersistentVolume",
            "persistentvolumes",
            false,
            &["pv"],
            NONE,
            "/registry/persistentvolumes/",
        )
        .with_subs(vec![status("", "v1", "PersistentVolume")]),
        core(
            "PersistentVolumeClaim",
            "persistentvolumeclaims",
            true,
            &["pvc"],
            NONE,
            "/registry/persistentvolumeclaims/",
        )
        .with_subs(vec![status("", "v1", "PersistentVolumeClaim")]),
        row(
            "apps",
            "v1",
            "Deployment",
            "deployments",
            true,
            &["deploy"],
            ALL,
            "/registry/deployments/",
        )
        .with_subs(vec![status("apps", "v1", "Deployment"), scale()]),
        row(
            "apps",
            "v1",
            "ReplicaSet",
            "replicasets",
            true,
            &["rs"],
            ALL,
            "/registry/replicasets/",
        )
        .with_subs(vec![status("apps", "v1", "ReplicaSet"), scale()]),
        row(
            "apps",
            "v1",
            "StatefulSet",
            "statefulsets",
            true,
            &["sts"],
            ALL,
            "/registry/statefulsets/",
        )
        .with_subs(vec![status("apps", "v1", "StatefulSet"), scale()]),
        row(
            "apps",
            "v1",
            "DaemonSet",
            "daemonsets",
            true,
            &["ds"],
            ALL,
            "/registry/daemonsets/",
        )
        .with_subs(vec![status("apps", "v1", "DaemonSet")]),
        row(
            "apps",
            "v1",
            "ControllerRevision",
            "controllerrevisions",
            true,
            NONE,
            NONE,
            "/registry/controllerrevisions/",
        ),
        row(
            "batch",
            "v1",
            "Job",
            "jobs",
            true,
            NONE,
            ALL,
            "/registry/jobs/",
        )
        .with_subs(vec![status("batch", "v1", "Job")]),
        row(
            "batch",
            "v1",
            "CronJob",
            "cronjobs",
            true,
            &["cj"],
            ALL,
            "/registry/cronjobs/",
        )
        .with_subs(vec![status("batch", "v1", "CronJob")]),
        row(
            "autoscaling",
            "v2",
            "HorizontalPodAutoscaler",
            "horizontalpodautoscalers",
            true,
            &["hpa"],
            ALL,
            "/registry/horizontalpodautoscalers/",
        )
        .with_subs(vec![status("autoscaling", "v2", "HorizontalPodAutoscaler")]),
        // The same objects at `autoscaling/v1`, stored once (as v2): the API
        // server converts between the two at the edges.
        row(
            "autoscaling",
            "v1",
            "HorizontalPodAutoscaler",
            "horizontalpodautoscalers",
            true,
            &["hpa"],
            ALL,
            "/registry/horizontalpodautoscalers/",
        )
        .with_subs(vec![status("autoscaling", "v1", "HorizontalPodAutoscaler")]),
        row(
            "coordination.k8s.io",
            "v1",
            "Lease",
            "leases",
            true,
            NONE,
            NONE,
            "/registry/leases/",
        ),
        row(
            "discovery.k8s.io",
            "v1",
            "EndpointSlice",
            "endpointslices",
            true,
            NONE,
            NONE,
            "/registry/endpointslices/",
        ),
        row(
            "events.k8s.io",
            "v1",
            "Event",
            "events",
            true,
            &["ev"],
            NONE,
            "/registry/events/",
        ),
        row(
            "rbac.authorization.k8s.io",
            "v1",
            "Role",
            "roles",
            true,
            NONE,
            NONE,
            "/registry/roles/",
        ),
        row(
            "rbac.authorization.k8s.io",
            "v1",
            "RoleBinding",
            "rolebindings",
            true,
            NONE,
            NONE,
            "/registry/rolebindings/",
        ),
        row(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRole",
            "clusterroles",
            false,
            NONE,
            NONE,
            "/registry/clusterroles/",
        ),
        row(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRoleBinding",
            "clusterrolebindings",
            false,
            NONE,
            NONE,
            "/registry/clusterrolebindings/",
        ),
        row(
            "policy",
            "v1",
            "PodDisruptionBudget",
            "poddisruptionbudgets",
            true,
            &["pdb"],
            NONE,
            "/registry/poddisruptionbudgets/",
        )
        .with_subs(vec![status("policy", "v1", "PodDisruptionBudget")]),
        // Who the caller is (`kubectl auth whoami`): answered, never stored.
        row(
            "authentication.k8s.io",
            "v1",
            "SelfSubjectReview",
            "selfsubjectreviews",
            false,
            NONE,
            NONE,
            "/registry/selfsubjectreviews/",
        )
        .with_verbs(&["create"]),
        // Whether a token is valid, and whose it is: answered, never stored.
        row(
            "authentication.k8s.io",
            "v1",
            "TokenReview",
            "tokenreviews",
            false,
            NONE,
            NONE,
            "/registry/tokenreviews/",
        )
        .with_verbs(&["create"]),
        // Whether a user may do something, and what: answered by the
        // authorizer, never stored.
        row(
            "authorization.k8s.io",
            "v1",
            "LocalSubjectAccessReview",
            "localsubjectaccessreviews",
            true,
            NONE,
            NONE,
            "/registry/localsubjectaccessreviews/",
        )
        .with_verbs(&["create"]),
        row(
            "authorization.k8s.io",
            "v1",
            "SelfSubjectAccessReview",
            "selfsubjectaccessreviews",
            false,
            NONE,
            NONE,
            "/registry/selfsubjectaccessreviews/",
        )
        .with_verbs(&["create"]),
        row(
            "authorization.k8s.io",
            "v1",
            "SelfSubjectRulesReview",
            "selfsubjectrulesreviews",
            false,
            NONE,
            NONE,
            "/registry/selfsubjectrulesreviews/",
        )
        .with_verbs(&["create"]),
        row(
            "authorization.k8s.io",
            "v1",
            "SubjectAccessReview",
            "subjectaccessreviews",
            false,
            NONE,
            NONE,
            "/registry/subjectaccessreviews/",
        )
        .with_verbs(&["create"]),
        row(
            "scheduling.k8s.io",
            "v1",
            "PriorityClass",
            "priorityclasses",
            false,
            &["pc"],
            NONE,
            "/registry/priorityclasses/",
        ),
        core(
            "PodTemplate",
            "podtemplates",
            true,
            NONE,
            NONE,
            "/registry/podtemplates/",
        ),
        row(
            "networking.k8s.io",
            "v1",
            "NetworkPolicy",
            "networkpolicies",
            true,
            &["netpol"],
            NONE,
            "/registry/networkpolicies/",
        ),
        row(
            "networking.k8s.io",
            "v1",
            "Ingress",
            "ingresses",
            true,
            &["ing"],
            NONE,
            "/registry/ingress/",
        )
        .with_subs(vec![status("networking.k8s.io", "v1", "Ingress")]),
        row(
            "networking.k8s.io",
            "v1",
            "IngressClass",
            "ingressclasses",
            false,
            NONE,
            NONE,
            "/registry/ingressclasses/",
        ),
        row(
            "node.k8s.io",
            "v1",
            "RuntimeClass",
            "runtimeclasses",
            false,
            NONE,
            NONE,
            "/registry/runtimeclasses/",
        ),
        row(
            "flowcontrol.apiserver.k8s.io",
            "v1",
            "FlowSchema",
            "flowschemas",
            false,
            NONE,
            NONE,
            "/registry/flowschemas/",
        )
        .with_subs(vec![status(
            "flowcontrol.apiserver.k8s.io",
            "v1",
            "FlowSchema",
        )]),
        row(
            "flowcontrol.apiserver.k8s.io",
            "v1",
            "PriorityLevelConfiguration",
            "prioritylevelconfigurations",
            false,
            NONE,
            NONE,
            "/registry/prioritylevelconfigurations/",
        )
        .with_subs(vec![status(
            "flowcontrol.apiserver.k8s.io",
            "v1",
            "PriorityLevelConfiguration",
        )]),
        row(
            "storage.k8s.io",
            "v1",
            "StorageClass",
            "storageclasses",
            false,
            &["sc"],
            NONE,
            "/registry/storageclasses/",
        ),
        row(
            "storage.k8s.io",
            "v1",
            "CSIDriver",
            "csidrivers",
            false,
            NONE,
            NONE,
            "/registry/csidrivers/",
        ),
        row(
            "storage.k8s.io",
            "v1",
            "CSINode",
            "csinodes",
            false,
            NONE,
            NONE,
            "/registry/csinodes/",
        ),
        row(
            "storage.k8s.io",
            "v1",
            "VolumeAttachment",
            "volumeattachments",
            false,
            NONE,
            NONE,
            "/registry/volumeattachments/",
        )
        .with_subs(vec![status("storage.k8s.io", "v1", "VolumeAttachment")]),
        row(
            "storage.k8s.io",
            "v1",
            "CSIStorageCapacity",
            "csistoragecapacities",
            true,
            NONE,
            NONE,
            "/registry/csistoragecapacities/",
        ),
        row(
            "certificates.k8s.io",
            "v1",
            "CertificateSigningRequest",
            "certificatesigningrequests",
            false,
            &["csr"],
            NONE,
            "/registry/certificatesigningrequests/",
        )
        .with_subs(vec![
            sub(
                "approval",
                "certificates.k8s.io",
                "v1",
                "CertificateSigningRequest",
                GET_PATCH_UPDATE,
            ),
            status("certificates.k8s.io", "v1", "CertificateSigningRequest"),
        ]),
        row(
            ADMISSION,
            "v1",
            "MutatingWebhookConfiguration",
            "mutatingwebhookconfigurations",
            false,
            NONE,
            API_EXTENSIONS,
            "/registry/mutatingwebhookconfigurations/",
        ),
        row(
            ADMISSION,
            "v1",
            "ValidatingWebhookConfiguration",
            "validatingwebhookconfigurations",
            false,
            NONE,
            API_EXTENSIONS,
            "/registry/validatingwebhookconfigurations/",
        ),
        row(
            ADMISSION,
            "v1",
            "ValidatingAdmissionPolicy",
            "validatingadmissionpolicies",
            false,
            NONE,
            API_EXTENSIONS,
            "/registry/validatingadmissionpolicies/",
        )
        .with_subs(vec![status(ADMISSION, "v1", "ValidatingAdmissionPolicy")]),
        row(
            ADMISSION,
            "v1",
            "ValidatingAdmissionPolicyBinding",
            "validatingadmissionpolicybindings",
            false,
            NONE,
            API_EXTENSIONS,
            "/registry/validatingadmissionpolicybindings/",
        ),
        row(
            "apiregistration.k8s.io",
            "v1",
            "APIService",
            "apiservices",
            false,
            NONE,
            &["api-extensions"],
            "/registry/apiregistration.k8s.io/apiservices/",
        )
        .with_subs(vec![status("apiregistration.k8s.io", "v1", "APIService")]),
        row(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            false,
            &["crd", "crds"],
            &["api-extensions"],
            "/registry/apiextensions.k8s.io/customresourcedefinitions/",
        )
        .with_subs(vec![status(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
        )]),
    ]
    .into_iter()
    .map(ResourceDef::finish)
    .collect()
}

/// The registry: the rows and lookups over them.
#[derive(Clone, Debug)]
pub struct Registry {
    resources: Vec<ResourceDef>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            resources: builtin(),
        }
    }
}

impl Registry {
    /// Every resource, in discovery order.
    pub fn all(&self) -> &[ResourceDef] {
        &self.resources
    }

    /// By group, version and plural (the REST path).
    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceDef> {
        self.resources
            .iter()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
    }

    /// By group and kind.
    pub fn by_kind(&self, group: &str, kind: &str) -> Option<&ResourceDef> {
        self.resources
            .iter()
            .find(|r| r.group == group && r.kind == kind)
    }

    /// The groups served, in discovery order, each with its versions (the
    /// preferred first). The core group is `""`.
    pub fn groups(&self) -> Vec<(&'static str, Vec<&'static str>)> {
        let mut out: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
        for r in &self.resources {
            match out.iter_mut().find(|(g, _)| *g == r.group) {
                Some((_, versions)) => {
                    if !versions.contains(&r.version) {
                        versions.push(r.version)
                    }
                }
                None => out.push((r.group, vec![r.version])),
            }
        }
        out
    }

    /// By short name (`po`, `deploy`), as `kubectl` expands them.
    pub fn by_short_name(&self, short: &str) -> Option<&ResourceDef> {
        self.resources
            .iter()
            .find(|r| r.short_names.contains(&short))
    }

    /// What `kubectl get NAME` means by NAME: a plural, singular, kind or
    /// short name, matched case-insensitively, optionally qualified by group
    /// (`deployments.apps`, `deploy.apps`). The core group wins a name two
    /// groups share (`events`).
    pub fn resolve(&self, name: &str) -> Option<&ResourceDef> {
        let name = name.to_ascii_lowercase();
        let named = |r: &ResourceDef, n: &str| {
            r.plural == n
                || r.singular == n
                || r.short_names.contains(&n)
                || r.kind.eq_ignore_ascii_case(n)
        };
        if let Some(r) = self.resources.iter().find(|r| named(r, &name)) {
            return Some(r);
        }
        let (n, group) = name.split_once('.')?;
        self.resources
            .iter()
            .find(|r| r.group == group && named(r, n))
    }

    /// The resources in a category (`all`), in table order.
    pub fn in_category(&self, category: &str) -> Vec<&ResourceDef> {
        self.resources
            .iter()
            .filter(|r| r.categories.contains(&category))
            .collect()
    }

    /// The resources of one group version.
    pub fn group_version(&self, group: &str, version: &str) -> Vec<&ResourceDef> {
        self.resources
            .iter()
            .filter(|r| r.group == group && r.version == version)
            .collect()
    }

    /// This registry with `defs` added after the rows it has, each
    /// replacing a row of the same group, version and plural (kinds
    /// served from a CustomResourceDefinition).
    pub fn with(&self, defs: Vec<ResourceDef>) -> Registry {
        let mut out = self.clone();
        for def in defs {
            out.resources.retain(|r| {
                !(r.group == def.group && r.version == def.version && r.plural == def.plural)
            });
            out.resources.push(def);
        }
        out
    }

    /// This registry without any version of `group`/`plural`.
    pub fn without(&self, group: &str, plural: &str) -> Registry {
        let mut out = self.clone();
        out.resources
            .retain(|r| !(r.group == group && r.plural == plural));
        out
    }
}

/// The one `&'static` copy of `s`: the registry's rows hold static names,
/// and a kind added while serving gets its names from here. Each distinct
/// string is kept once for the life of the process, so memory grows with
/// the names ever served, not with how often kinds come and go.
pub fn intern(s: &str) -> &'static str {
    static NAMES: std::sync::OnceLock<std::sync::Mutex<std::collections::HashSet<&'static str>>> =
        std::sync::OnceLock::new();
    let names = NAMES.get_or_init(Default::default);
    let mut names = match names.lock() {
        Ok(guard) => guard,
        // A panic elsewhere while holding it cannot leave the set invalid.
        Err(poisoned) => poisoned.into_inner(),
    };
    if let Some(known) = names.get(s) {
        return known;
    }
    let kept: &'static str = Box::leak(s.to_owned().into_boxed_str());
    names.insert(kept);
    kept
}

/// The one `&'static` copy of a list of names (see [`intern`]).
pub fn intern_list(items: &[&str]) -> &'static [&'static str] {
    static LISTS: std::sync::OnceLock<
        std::sync::Mutex<std::collections::HashMap<Vec<&'static str>, &'static [&'static str]>>,
    > = std::sync::OnceLock::new();
    let key: Vec<&'static str> = items.iter().map(|s| intern(s)).collect();
    let lists = LISTS.get_or_init(Default::default);
    let mut lists = match lists.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    };
    if let Some(known) = lists.get(&key) {
        return known;
    }
    let kept: &'static [&'static str] = Box::leak(key.clone().into_boxed_slice());
    lists.insert(key, kept);
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interned_names_are_kept_once() {
        let a = intern(&String::from("widgets"));
        let b = intern("widgets");
        assert!(std::ptr::eq(a, b));
        let l = intern_list(&["status", "scale"]);
        let status = String::from("status");
        assert!(std::ptr::eq(l, intern_list(&[status.as_str(), "scale"])));
        assert_eq!(l, &["status", "scale"]);
    }

    #[test]
    fn rows_added_and_removed_while_serving() {
        let r = Registry::default();
        let mut widget = r.get("", "v1", "configmaps").unwrap().clone();
        widget.group = intern("example.com");
        widget.kind = intern("Widget");
        widget.plural = intern("widgets");
        widget.storage_prefix = intern("/registry/example.com/widgets/");
        let mut v2 = widget.clone();
        v2.version = "v2";
        let more = r.with(vec![widget.clone(), v2]);
        assert_eq!(more.all().len(), r.all().len() + 2);
        assert_eq!(
            more.get("example.com", "v2", "widgets").unwrap().kind,
            "Widget"
        );
        // The same row again replaces it.
        assert_eq!(more.with(vec![widget]).all().len(), more.all().len());
        let less = more.without("example.com", "widgets");
        assert_eq!(less.all(), r.all());
    }

    #[test]
    fn lookups_and_keys() {
        let r = Registry::default();
        let pods = r.get("", "v1", "pods").unwrap();
        assert_eq!(pods.kind, "Pod");
        assert_eq!(pods.singular, "pod");
        assert_eq!(pods.key("default", "web"), "/registry/pods/default/web");
        assert_eq!(pods.list_prefix("default"), "/registry/pods/default/");
        assert_eq!(pods.list_prefix(""), "/registry/pods/");
        assert_eq!(pods.list_kind(), "PodList");
        let nodes = r.get("", "v1", "nodes").unwrap();
        assert_eq!(nodes.key("", "n1"), "/registry/minions/n1");
        let d = r.by_kind("apps", "Deployment").unwrap();
        assert_eq!(d.api_version(), "apps/v1");
        assert_eq!(d.subresource("scale").unwrap().kind, "Scale");
        assert!(r.get("apps", "v1", "pods").is_none());
    }

    #[test]
    fn storage_prefixes_do_not_nest() {
        // The watch cache routes keys by prefix: no prefix may contain another.
        let r = Registry::default();
        for a in r.all() {
            assert!(a.storage_prefix.starts_with("/registry/") && a.storage_prefix.ends_with('/'));
            for b in r.all() {
                // Events are one resource in two groups: one storage.
                let views_of_one = a.kind == b.kind && a.storage_prefix == b.storage_prefix;
                if (a.plural != b.plural || a.group != b.group) && !views_of_one {
                    assert!(
                        !a.storage_prefix.starts_with(b.storage_prefix),
                        "{} is under {}",
                        a.storage_prefix,
                        b.storage_prefix
                    );
                }
            }
        }
    }

    #[test]
    fn discovery_facts_users_rely_on() {
        let r = Registry::default();
        let short = |g: &str, p: &str| {
            r.all()
                .iter()
                .find(|x| x.group == g && x.plural == p)
                .unwrap()
                .short_names
        };
        assert_eq!(short("", "pods"), &["po"]);
        assert_eq!(short("", "services"), &["svc"]);
        assert_eq!(short("apps", "deployments"), &["deploy"]);
        assert_eq!(short("", "namespaces"), &["ns"]);
        let all: Vec<_> = r
            .all()
            .iter()
            .filter(|x| x.categories.contains(&"all"))
            .map(|x| x.plural)
            .collect();
        for p in [
            "pods",
            "services",
            "deployments",
            "replicasets",
            "statefulsets",
            "daemonsets",
            "jobs",
            "cronjobs",
            "replicationcontrollers",
            "horizontalpodautoscalers",
        ] {
            assert!(all.contains(&p), "{p} in category all");
        }
        let groups: Vec<_> = r.groups().into_iter().map(|(g, _)| g).collect();
        assert_eq!(groups[0], "");
        assert!(groups.contains(&"apps") && groups.contains(&"rbac.authorization.k8s.io"));
    }

    /// `kubectl api-resources` of a Kubernetes 1.33 cluster, for the
    /// resources served here: NAME, SHORTNAMES, APIVERSION, NAMESPACED, KIND.
    const API_RESOURCES: &[(&str, &str, &str, bool, &str)] = &[
        ("bindings", "", "v1", true, "Binding"),
        ("configmaps", "cm", "v1", true, "ConfigMap"),
        ("endpoints", "ep", "v1", true, "Endpoints"),
        ("events", "ev", "v1", true, "Event"),
        ("limitranges", "limits", "v1", true, "LimitRange"),
        ("namespaces", "ns", "v1", false, "Namespace"),
        ("nodes", "no", "v1", false, "Node"),
        (
            "persistentvolumeclaims",
            "pvc",
            "v1",
            true,
            "PersistentVolumeClaim",
        ),
        ("persistentvolumes", "pv", "v1", false, "PersistentVolume"),
        ("pods", "po", "v1", true, "Pod"),
        (
            "replicationcontrollers",
            "rc",
            "v1",
            true,
            "ReplicationController",
        ),
        ("resourcequotas", "quota", "v1", true, "ResourceQuota"),
        ("secrets", "", "v1", true, "Secret"),
        ("serviceaccounts", "sa", "v1", true, "ServiceAccount"),
        ("services", "svc", "v1", true, "Service"),
        (
            "controllerrevisions",
            "",
            "apps/v1",
            true,
            "ControllerRevision",
        ),
        ("daemonsets", "ds", "apps/v1", true, "DaemonSet"),
        ("deployments", "deploy", "apps/v1", true, "Deployment"),
        ("replicasets", "rs", "apps/v1", true, "ReplicaSet"),
        ("statefulsets", "sts", "apps/v1", true, "StatefulSet"),
        (
            "horizontalpodautoscalers",
            "hpa",
            "autoscaling/v2",
            true,
            "HorizontalPodAutoscaler",
        ),
        ("cronjobs", "cj", "batch/v1", true, "CronJob"),
        ("jobs", "", "batch/v1", true, "Job"),
        ("leases", "", "coordination.k8s.io/v1", true, "Lease"),
        (
            "endpointslices",
            "",
            "discovery.k8s.io/v1",
            true,
            "EndpointSlice",
        ),
        ("events", "ev", "events.k8s.io/v1", true, "Event"),
        (
            "selfsubjectreviews",
            "",
            "authentication.k8s.io/v1",
            false,
            "SelfSubjectReview",
        ),
        (
            "tokenreviews",
            "",
            "authentication.k8s.io/v1",
            false,
            "TokenReview",
        ),
        (
            "localsubjectaccessreviews",
            "",
            "authorization.k8s.io/v1",
            true,
            "LocalSubjectAccessReview",
        ),
        (
            "selfsubjectaccessreviews",
            "",
            "authorization.k8s.io/v1",
            false,
            "SelfSubjectAccessReview",
        ),
        (
            "selfsubjectrulesreviews",
            "",
            "authorization.k8s.io/v1",
            false,
            "SelfSubjectRulesReview",
        ),
        (
            "subjectaccessreviews",
            "",
            "authorization.k8s.io/v1",
            false,
            "SubjectAccessReview",
        ),
        (
            "poddisruptionbudgets",
            "pdb",
            "policy/v1",
            true,
            "PodDisruptionBudget",
        ),
        (
            "clusterrolebindings",
            "",
            "rbac.authorization.k8s.io/v1",
            false,
            "ClusterRoleBinding",
        ),
        (
            "clusterroles",
            "",
            "rbac.authorization.k8s.io/v1",
            false,
            "ClusterRole",
        ),
        (
            "rolebindings",
            "",
            "rbac.authorization.k8s.io/v1",
            true,
            "RoleBinding",
        ),
        ("roles", "", "rbac.authorization.k8s.io/v1", true, "Role"),
        (
            "priorityclasses",
            "pc",
            "scheduling.k8s.io/v1",
            false,
            "PriorityClass",
        ),
        ("podtemplates", "", "v1", true, "PodTemplate"),
        (
            "networkpolicies",
            "netpol",
            "networking.k8s.io/v1",
            true,
            "NetworkPolicy",
        ),
        ("ingresses", "ing", "networking.k8s.io/v1", true, "Ingress"),
        (
            "ingressclasses",
            "",
            "networking.k8s.io/v1",
            false,
            "IngressClass",
        ),
        (
            "runtimeclasses",
            "",
            "node.k8s.io/v1",
            false,
            "RuntimeClass",
        ),
        (
            "flowschemas",
            "",
            "flowcontrol.apiserver.k8s.io/v1",
            false,
            "FlowSchema",
        ),
        (
            "prioritylevelconfigurations",
            "",
            "flowcontrol.apiserver.k8s.io/v1",
            false,
            "PriorityLevelConfiguration",
        ),
        (
            "storageclasses",
            "sc",
            "storage.k8s.io/v1",
            false,
            "StorageClass",
        ),
        ("csidrivers", "", "storage.k8s.io/v1", false, "CSIDriver"),
        ("csinodes", "", "storage.k8s.io/v1", false, "CSINode"),
        (
            "volumeattachments",
            "",
            "storage.k8s.io/v1",
            false,
            "VolumeAttachment",
        ),
        (
            "csistoragecapacities",
            "",
            "storage.k8s.io/v1",
            true,
            "CSIStorageCapacity",
        ),
        (
            "certificatesigningrequests",
            "csr",
            "certificates.k8s.io/v1",
            false,
            "CertificateSigningRequest",
        ),
        (
            "mutatingwebhookconfigurations",
            "",
            "admissionregistration.k8s.io/v1",
            false,
            "MutatingWebhookConfiguration",
        ),
        (
            "validatingwebhookconfigurations",
            "",
            "admissionregistration.k8s.io/v1",
            false,
            "ValidatingWebhookConfiguration",
        ),
        (
            "validatingadmissionpolicies",
            "",
            "admissionregistration.k8s.io/v1",
            false,
            "ValidatingAdmissionPolicy",
        ),
        (
            "validatingadmissionpolicybindings",
            "",
            "admissionregistration.k8s.io/v1",
            false,
            "ValidatingAdmissionPolicyBinding",
        ),
        (
            "apiservices",
            "",
            "apiregistration.k8s.io/v1",
            false,
            "APIService",
        ),
        (
            "customresourcedefinitions",
            "crd,crds",
            "apiextensions.k8s.io/v1",
            false,
            "CustomResourceDefinition",
        ),
    ];

    #[test]
    fn table_reads_like_kubectl_api_resources() {
        let r = Registry::default();
        // kubectl lists each resource at its group's preferred version.
        let groups = r.groups();
        let preferred = r
            .all()
            .iter()
            .filter(|d| {
                groups
                    .iter()
                    .any(|(g, vs)| *g == d.group && vs.first() == Some(&d.version))
            })
            .count();
        assert_eq!(preferred, API_RESOURCES.len());
        let autoscaling = groups.iter().find(|(g, _)| *g == "autoscaling").unwrap();
        assert_eq!(autoscaling.1, ["v2", "v1"]);
        for &(plural, short, api_version, namespaced, kind) in API_RESOURCES {
            let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
            let def = r
                .get(group, version, plural)
                .unwrap_or_else(|| panic!("{plural} in {api_version}"));
            let want_short: Vec<&str> = short.split(',').filter(|s| !s.is_empty()).collect();
            assert_eq!(def.short_names, want_short.as_slice(), "{plural}");
            assert_eq!(def.api_version(), api_version);
            assert_eq!(def.namespaced, namespaced, "{plural}");
            assert_eq!(def.kind, kind);
            assert_eq!(def.singular, kind.to_ascii_lowercase());
        }
    }

    #[test]
    fn category_all_is_kubernetes_own() {
        let r = Registry::default();
        let mut all: Vec<&str> = r.in_category("all").iter().map(|d| d.plural).collect();
        all.sort();
        all.dedup();
        assert_eq!(
            all,
            [
                "cronjobs",
                "daemonsets",
                "deployments",
                "horizontalpodautoscalers",
                "jobs",
                "pods",
                "replicasets",
                "replicationcontrollers",
                "services",
                "statefulsets",
            ]
        );
        assert!(r.in_category("nothing").is_empty());
    }

    #[test]
    fn verbs_and_subresources() {
        let r = Registry::default();
        let get = |g: &str, v: &str, p: &str| r.get(g, v, p).unwrap();
        assert_eq!(get("", "v1", "bindings").verbs, &["create"]);
        let ns = get("", "v1", "namespaces");
        assert!(!ns.has_verb("deletecollection") && ns.has_verb("delete"));
        assert!(get("", "v1", "configmaps").has_verb("deletecollection"));
        let pods = get("", "v1", "pods");
        let subs: Vec<&str> = pods.subresources.iter().map(|s| s.name).collect();
        for s in [
            "status",
            "binding",
            "eviction",
            "log",
            "exec",
            "attach",
            "portforward",
            "ephemeralcontainers",
            "proxy",
        ] {
            assert!(subs.contains(&s), "pods/{s}");
        }
        assert_eq!(pods.subresource("eviction").unwrap().kind, "Eviction");
        assert_eq!(pods.subresource("eviction").unwrap().group, "policy");
        assert_eq!(pods.subresource("binding").unwrap().verbs, &["create"]);
        for (g, p) in [
            ("apps", "deployments"),
            ("apps", "replicasets"),
            ("apps", "statefulsets"),
            ("", "replicationcontrollers"),
        ] {
            let scale = get(g, "v1", p).subresource("scale").unwrap();
            assert_eq!(
                (scale.group, scale.version, scale.kind),
                ("autoscaling", "v1", "Scale"),
                "{p}/scale"
            );
        }
        assert!(get("apps", "v1", "daemonsets")
            .subresource("scale")
            .is_none());
        assert!(get("", "v1", "configmaps").subresources.is_empty());
    }

    #[test]
    fn names_resolve_as_kubectl_expands_them() {
        let r = Registry::default();
        let resolved = |n: &str| r.resolve(n).map(|d| (d.group, d.plural));
        assert_eq!(resolved("po"), Some(("", "pods")));
        assert_eq!(resolved("pod"), Some(("", "pods")));
        assert_eq!(resolved("Pods"), Some(("", "pods")));
        assert_eq!(resolved("deploy"), Some(("apps", "deployments")));
        assert_eq!(resolved("deployments.apps"), Some(("apps", "deployments")));
        assert_eq!(
            resolved("hpa"),
            Some(("autoscaling", "horizontalpodautoscalers"))
        );
        assert_eq!(resolved("ev"), Some(("", "events")));
        assert_eq!(
            resolved("events.events.k8s.io"),
            Some(("events.k8s.io", "events"))
        );
        assert_eq!(resolved("quota"), Some(("", "resourcequotas")));
        assert_eq!(
            resolved("PriorityClass"),
            Some(("scheduling.k8s.io", "priorityclasses"))
        );
        assert_eq!(resolved("widgets"), None);
        assert_eq!(resolved("deployments.batch"), None);
        assert_eq!(r.by_short_name("sts").unwrap().kind, "StatefulSet");
        assert!(r.by_short_name("statefulsets").is_none());
    }

    #[test]
    fn storage_keys_follow_kubernetes_layout() {
        let r = Registry::default();
        for (g, v, p, ns, key) in [
            (
                "",
                "v1",
                "services",
                "default",
                "/registry/services/specs/default/x",
            ),
            (
                "",
                "v1",
                "endpoints",
                "default",
                "/registry/services/endpoints/default/x",
            ),
            (
                "",
                "v1",
                "replicationcontrollers",
                "d",
                "/registry/controllers/d/x",
            ),
            ("", "v1", "namespaces", "", "/registry/namespaces/x"),
            (
                "apps",
                "v1",
                "deployments",
                "d",
                "/registry/deployments/d/x",
            ),
            (
                "autoscaling",
                "v2",
                "horizontalpodautoscalers",
                "d",
                "/registry/horizontalpodautoscalers/d/x",
            ),
            (
                "rbac.authorization.k8s.io",
                "v1",
                "clusterroles",
                "",
                "/registry/clusterroles/x",
            ),
            ("", "v1", "events", "d", "/registry/events/d/x"),
        ] {
            assert_eq!(r.get(g, v, p).unwrap().key(ns, "x"), key);
        }
    }
}
