//! The bootstrap policy: the ClusterRoles, ClusterRoleBindings, Roles and
//! RoleBindings every cluster starts with (Kubernetes'
//! `plugin/pkg/auth/authorizer/rbac/bootstrappolicy`), and their
//! reconciliation at every API server start (the `rbac/bootstrap-roles`
//! post-start hook): a missing object is created; an existing one labelled
//! `rbac.authorization.kubernetes.io/autoupdate: "true"` (or unlabelled)
//! gains the rules, aggregation selectors, subjects, labels and annotations
//! it lacks, and loses nothing; one annotated `autoupdate: "false"` is left
//! alone.
//!
//! Besides Kubernetes' objects, for what ferrokube runs that Kubernetes
//! ships elsewhere: `system:coredns` (k3s' role for the cluster DNS, bound
//! to `kube-system/coredns`), `system:controller:flowschema-status-controller`
//! (the FlowSchemas' `Dangling` condition, which Kubernetes' API server
//! keeps itself and ferrokube's controller manager keeps), and
//! `system:ferrokube:node-joiner` (what the join token may do: fetch a
//! node's credentials, and CertificateSigningRequests as
//! `system:node-bootstrapper`).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::options::WriteOptions;
use crate::rest::Rest;

const RBAC: &str = "rbac.authorization.k8s.io";
const RBAC_V1: &str = "rbac.authorization.k8s.io/v1";
/// The annotation that lets reconciliation update an object.
pub(crate) const AUTOUPDATE: &str = "rbac.authorization.kubernetes.io/autoupdate";
/// The label every bootstrap object carries.
pub(crate) const BOOTSTRAPPING: &str = "kubernetes.io/bootstrapping";
/// The path an agent holding the join token fetches its node's client
/// certificates from.
pub(crate) const NODE_CREDENTIALS_PATH: &str = "/ferrokube/v1/node-credentials";
/// The prefix of the controllers' roles (`system:controller:<sa name>`).
pub(crate) const CONTROLLER_ROLE_PREFIX: &str = "system:controller:";

const CORE: &str = "";
const APPS: &str = "apps";
const EXTENSIONS: &str = "extensions";
const BATCH: &str = "batch";
const POLICY: &str = "policy";
const STORAGE: &str = "storage.k8s.io";
const COORDINATION: &str = "coordination.k8s.io";
const CERTIFICATES: &str = "certificates.k8s.io";
const DISCOVERY: &str = "discovery.k8s.io";
const EVENTS: &str = "events.k8s.io";
const NETWORKING: &str = "networking.k8s.io";
const AUTOSCALING: &str = "autoscaling";
const AUTHENTICATION: &str = "authentication.k8s.io";
const AUTHORIZATION: &str = "authorization.k8s.io";
const FLOWCONTROL: &str = "flowcontrol.apiserver.k8s.io";
const METRICS: &str = "metrics.k8s.io";
const CUSTOM_METRICS: &str = "custom.metrics.k8s.io";
const EXTERNAL_METRICS: &str = "external.metrics.k8s.io";

/// A rule on resources: `verbs` and `resources` space-separated.
fn rule(verbs: &str, groups: &[&str], resources: &str) -> Value {
    json!({
        "verbs": words(verbs),
        "apiGroups": groups,
        "resources": words(resources),
    })
}

/// A rule on resources limited to `names`.
fn named(verbs: &str, groups: &[&str], resources: &str, names: &[&str]) -> Value {
    let mut r = rule(verbs, groups, resources);
    r["resourceNames"] = json!(names);
    r
}

/// A rule on non-resource URLs.
fn urls(verbs: &str, urls: &[&str]) -> Value {
    json!({"verbs": words(verbs), "nonResourceURLs": urls})
}

fn words(s: &str) -> Vec<&str> {
    s.split_whitespace().collect()
}

/// Creating and changing Events, in both groups that serve them.
fn events_rule() -> Value {
    rule("create update patch", &[CORE, EVENTS], "events")
}

const READ: &str = "get list watch";

/// k3s' user (and role) for its controllers on each node: the network
/// policy controller acts as it.
pub(crate) const K3S_CONTROLLER: &str = "system:k3s-controller";
const WRITE: &str = "create delete deletecollection patch update";

fn meta(name: &str, namespace: Option<&str>, extra_labels: &[(&str, &str)]) -> Value {
    let mut labels = BTreeMap::from([(BOOTSTRAPPING.to_string(), "rbac-defaults".to_string())]);
    for (k, v) in extra_labels {
        labels.insert(k.to_string(), v.to_string());
    }
    let mut m = json!({
        "name": name,
        "labels": labels,
        "annotations": {AUTOUPDATE: "true"},
    });
    if let Some(ns) = namespace {
        m["namespace"] = json!(ns);
    }
    m
}

fn cluster_role(name: &str, labels: &[(&str, &str)], rules: Vec<Value>) -> Value {
    json!({
        "apiVersion": RBAC_V1, "kind": "ClusterRole",
        "metadata": meta(name, None, labels),
        "rules": rules,
    })
}

/// A ClusterRole whose rules are those of the ClusterRoles labelled
/// `rbac.authorization.k8s.io/aggregate-to-<to>: "true"`.
fn aggregated_role(name: &str, to: &str, labels: &[(&str, &str)]) -> Value {
    let mut r = cluster_role(name, labels, Vec::new());
    r["aggregationRule"] = json!({"clusterRoleSelectors": [
        {"matchLabels": {format!("rbac.authorization.k8s.io/aggregate-to-{to}"): "true"}}
    ]});
    r
}

fn user(name: &str) -> Value {
    json!({"apiGroup": RBAC, "kind": "User", "name": name})
}

fn group(name: &str) -> Value {
    json!({"apiGroup": RBAC, "kind": "Group", "name": name})
}

fn service_account(namespace: &str, name: &str) -> Value {
    json!({"kind": "ServiceAccount", "name": name, "namespace": namespace})
}

fn cluster_binding(name: &str, role: &str, subjects: Vec<Value>) -> Value {
    json!({
        "apiVersion": RBAC_V1, "kind": "ClusterRoleBinding",
        "metadata": meta(name, None, &[]),
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": role},
        "subjects": subjects,
    })
}

const TO_ADMIN: (&str, &str) = ("rbac.authorization.k8s.io/aggregate-to-admin", "true");
const TO_EDIT: (&str, &str) = ("rbac.authorization.k8s.io/aggregate-to-edit", "true");
const TO_VIEW: (&str, &str) = ("rbac.authorization.k8s.io/aggregate-to-view", "true");

/// The cluster-wide roles (not the controllers').
pub(crate) fn cluster_roles() -> Vec<Value> {
    let mut roles = vec![
        cluster_role(
            "cluster-admin",
            &[],
            vec![rule("*", &["*"], "*"), urls("*", &["*"])],
        ),
        aggregated_role("admin", "admin", &[]),
        aggregated_role("edit", "edit", &[TO_ADMIN]),
        aggregated_role("view", "view", &[TO_EDIT]),
        cluster_role(
            "system:aggregate-to-admin",
            &[TO_ADMIN],
            vec![
                rule("create", &[AUTHORIZATION], "localsubjectaccessreviews"),
                rule(
                    "create delete deletecollection get list patch update watch",
                    &[RBAC],
                    "rolebindings roles",
                ),
            ],
        ),
        cluster_role("system:aggregate-to-edit", &[TO_EDIT], aggregate_to_edit()),
        cluster_role("system:aggregate-to-view", &[TO_VIEW], aggregate_to_view()),
        cluster_role(
            "system:basic-user",
            &[],
            vec![
                rule(
                    "create",
                    &[AUTHORIZATION],
                    "selfsubjectaccessreviews selfsubjectrulesreviews",
                ),
                rule("create", &[AUTHENTICATION], "selfsubjectreviews"),
            ],
        ),
        cluster_role(
            "system:discovery",
            &[],
            vec![urls(
                "get",
                &[
                    "/api",
                    "/api/*",
                    "/apis",
                    "/apis/*",
                    "/healthz",
                    "/livez",
                    "/openapi",
                    "/openapi/*",
                    "/readyz",
                    "/version",
                    "/version/",
                ],
            )],
        ),
        cluster_role(
            "system:public-info-viewer",
            &[],
            vec![urls(
                "get",
                &["/healthz", "/livez", "/readyz", "/version", "/version/"],
            )],
        ),
        cluster_role(
            "system:monitoring",
            &[],
            vec![urls(
                "get",
                &[
                    "/healthz",
                    "/healthz/*",
                    "/livez",
                    "/livez/*",
                    "/metrics",
                    "/metrics/slis",
                    "/readyz",
                    "/readyz/*",
                ],
            )],
        ),
        cluster_role(
            "system:auth-delegator",
            &[],
            vec![
                rule("create", &[AUTHENTICATION], "tokenreviews"),
                rule("create", &[AUTHORIZATION], "subjectaccessreviews"),
            ],
        ),
        cluster_role(
            "system:service-account-issuer-discovery",
            &[],
            vec![urls(
                "get",
                &["/.well-known/openid-configuration", "/openid/v1/jwks"],
            )],
        ),
        cluster_role(
            "system:kube-controller-manager",
            &[],
            vec![
                events_rule(),
                rule("create", &[COORDINATION], "leases"),
                named(
                    "get update",
                    &[COORDINATION],
                    "leases",
                    &["kube-controller-manager"],
                ),
                rule("create", &[CORE], "secrets serviceaccounts"),
                rule("delete", &[CORE], "secrets"),
                rule(
                    "get",
                    &[CORE],
                    "configmaps namespaces secrets serviceaccounts",
                ),
                rule("update", &[CORE], "secrets serviceaccounts"),
                rule("create", &[AUTHENTICATION], "tokenreviews"),
                rule("create", &[AUTHORIZATION], "subjectaccessreviews"),
                rule("list watch", &["*"], "*"),
                rule("create", &[CORE], "serviceaccounts/token"),
            ],
        ),
        cluster_role("system:kube-scheduler", &[], kube_scheduler()),
        cluster_role(
            "system:volume-scheduler",
            &[],
            vec![
                rule("get list patch update watch", &[CORE], "persistentvolumes"),
                rule(READ, &[STORAGE], "storageclasses"),
                rule(
                    "get list patch update watch",
                    &[CORE],
                    "persistentvolumeclaims",
                ),
            ],
        ),
        cluster_role(
            "system:kube-dns",
            &[],
            vec![rule("list watch", &[CORE], "endpoints services")],
        ),
        cluster_role(
            "system:coredns",
            &[],
            vec![
                rule("list watch", &[CORE], "endpoints services pods namespaces"),
                rule("list watch", &[DISCOVERY], "endpointslices"),
            ],
        ),
        cluster_role("system:node", &[], node()),
        cluster_role(
            "system:node-proxier",
            &[],
            vec![
                rule("list watch", &[CORE], "endpoints services"),
                rule(READ, &[CORE], "nodes"),
                events_rule(),
                rule("list watch", &[DISCOVERY], "endpointslices"),
            ],
        ),
        // metrics-server's (k3s ships it with its metrics-server): reading
        // the resource metrics API the server serves itself, aggregated
        // into view, edit and admin.
        cluster_role(
            "system:aggregated-metrics-reader",
            &[TO_VIEW, TO_EDIT, TO_ADMIN],
            vec![rule("get list watch", &["metrics.k8s.io"], "pods nodes")],
        ),
        // k3s' own: its network policy controller (and tunnel) on every
        // node, as the user `system:k3s-controller`.
        cluster_role(
            K3S_CONTROLLER,
            &[],
            vec![
                rule("get", &[CORE], "nodes"),
                rule("list watch", &[CORE], "namespaces"),
                rule("list watch", &[NETWORKING], "networkpolicies"),
                rule("get list watch", &[CORE], "endpoints pods"),
            ],
        ),
        cluster_role(
            "system:node-bootstrapper",
            &[],
            vec![rule(
                "create get list watch",
                &[CERTIFICATES],
                "certificatesigningrequests",
            )],
        ),
        cluster_role(
            "system:ferrokube:node-joiner",
            &[],
            vec![urls("post", &[NODE_CREDENTIALS_PATH])],
        ),
        cluster_role(
            "system:kubelet-api-admin",
            &[],
            vec![
                rule(READ, &[CORE], "nodes"),
                rule("proxy", &[CORE], "nodes"),
                rule(
                    "*",
                    &[CORE],
                    "nodes/log nodes/metrics nodes/proxy nodes/stats",
                ),
            ],
        ),
        cluster_role(
            "system:persistent-volume-provisioner",
            &[],
            vec![
                rule("create delete get list watch", &[CORE], "persistentvolumes"),
                rule("get list update watch", &[CORE], "persistentvolumeclaims"),
                rule(READ, &[STORAGE], "storageclasses"),
                rule("watch", &[CORE], "events"),
                events_rule(),
            ],
        ),
        cluster_role(
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            &[],
            vec![rule(
                "create",
                &[CERTIFICATES],
                "certificatesigningrequests/nodeclient",
            )],
        ),
        cluster_role(
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
            &[],
            vec![rule(
                "create",
                &[CERTIFICATES],
                "certificatesigningrequests/selfnodeclient",
            )],
        ),
    ];
    for (role, signer) in [
        ("kube-apiserver-client-approver", "kube-apiserver-client"),
        (
            "kube-apiserver-client-kubelet-approver",
            "kube-apiserver-client-kubelet",
        ),
        ("kubelet-serving-approver", "kubelet-serving"),
        ("legacy-unknown-approver", "legacy-unknown"),
    ] {
        roles.push(cluster_role(
            &format!("system:certificates.k8s.io:{role}"),
            &[],
            vec![named(
                "approve",
                &[CERTIFICATES],
                "signers",
                &[&format!("kubernetes.io/{signer}")],
            )],
        ));
    }
    roles
}

fn aggregate_to_edit() -> Vec<Value> {
    vec![
        rule(
            READ,
            &[CORE],
            "pods/attach pods/exec pods/portforward pods/proxy secrets services/proxy",
        ),
        rule("impersonate", &[CORE], "serviceaccounts"),
        rule(
            WRITE,
            &[CORE],
            "pods pods/attach pods/exec pods/portforward pods/proxy",
        ),
        rule("create", &[CORE], "pods/eviction"),
        rule(
            WRITE,
            &[CORE],
            "configmaps events persistentvolumeclaims replicationcontrollers \
             replicationcontrollers/scale secrets serviceaccounts services services/proxy",
        ),
        rule("create", &[CORE], "serviceaccounts/token"),
        rule(
            WRITE,
            &[APPS],
            "daemonsets deployments deployments/rollback deployments/scale replicasets \
             replicasets/scale statefulsets statefulsets/scale",
        ),
        rule(WRITE, &[AUTOSCALING], "horizontalpodautoscalers"),
        rule(WRITE, &[BATCH], "cronjobs jobs"),
        rule(
            WRITE,
            &[EXTENSIONS],
            "daemonsets deployments deployments/rollback deployments/scale ingresses \
             networkpolicies replicasets replicasets/scale replicationcontrollers/scale",
        ),
        rule(WRITE, &[POLICY], "poddisruptionbudgets"),
        rule(WRITE, &[NETWORKING], "ingresses networkpolicies"),
        rule(
            "create delete deletecollection get list patch update watch",
            &[COORDINATION],
            "leases",
        ),
    ]
}

fn aggregate_to_view() -> Vec<Value> {
    vec![
        rule(
            READ,
            &[CORE],
            "configmaps endpoints persistentvolumeclaims persistentvolumeclaims/status pods \
             replicationcontrollers replicationcontrollers/scale serviceaccounts services \
             services/status",
        ),
        rule(
            READ,
            &[CORE],
            "bindings events limitranges namespaces/status pods/log pods/status \
             replicationcontrollers/status resourcequotas resourcequotas/status",
        ),
        rule(READ, &[CORE], "namespaces"),
        rule(READ, &[DISCOVERY], "endpointslices"),
        rule(
            READ,
            &[APPS],
            "controllerrevisions daemonsets daemonsets/status deployments deployments/scale \
             deployments/status replicasets replicasets/scale replicasets/status statefulsets \
             statefulsets/scale statefulsets/status",
        ),
        rule(
            READ,
            &[AUTOSCALING],
            "horizontalpodautoscalers horizontalpodautoscalers/status",
        ),
        rule(READ, &[BATCH], "cronjobs cronjobs/status jobs jobs/status"),
        rule(
            READ,
            &[EXTENSIONS],
            "daemonsets daemonsets/status deployments deployments/scale deployments/status \
             ingresses ingresses/status networkpolicies replicasets replicasets/scale \
             replicasets/status replicationcontrollers/scale",
        ),
        rule(
            READ,
            &[POLICY],
            "poddisruptionbudgets poddisruptionbudgets/status",
        ),
        rule(
            READ,
            &[NETWORKING],
            "ingresses ingresses/status networkpolicies",
        ),
    ]
}

fn kube_scheduler() -> Vec<Value> {
    vec![
        events_rule(),
        rule("create", &[COORDINATION], "leases"),
        named("get update", &[COORDINATION], "leases", &["kube-scheduler"]),
        rule(READ, &[CORE], "nodes"),
        rule("delete get list watch", &[CORE], "pods"),
        rule("create", &[CORE], "bindings pods/binding"),
        rule("patch update", &[CORE], "pods/status"),
        rule(READ, &[CORE], "replicationcontrollers services"),
        rule(READ, &[APPS, EXTENSIONS], "replicasets"),
        rule(READ, &[APPS], "statefulsets"),
        rule(READ, &[POLICY], "poddisruptionbudgets"),
        rule(READ, &[CORE], "persistentvolumeclaims persistentvolumes"),
        rule("create", &[AUTHENTICATION], "tokenreviews"),
        rule("create", &[AUTHORIZATION], "subjectaccessreviews"),
        rule(READ, &[STORAGE], "csinodes"),
        rule(READ, &[CORE], "namespaces"),
        rule(READ, &[STORAGE], "csidrivers"),
        rule(READ, &[STORAGE], "csistoragecapacities"),
        // ferrokube: preemption reads the priority classes.
        rule(READ, &["scheduling.k8s.io"], "priorityclasses"),
    ]
}

/// What a node may do; the Node authorizer narrows it to the node's own
/// objects and those its pods use.
fn node() -> Vec<Value> {
    vec![
        rule("create", &[AUTHENTICATION], "tokenreviews"),
        rule(
            "create",
            &[AUTHORIZATION],
            "localsubjectaccessreviews subjectaccessreviews",
        ),
        rule(READ, &[CORE], "services"),
        rule("create get list watch", &[CORE], "nodes"),
        rule("patch update", &[CORE], "nodes/status"),
        rule("patch update", &[CORE], "nodes"),
        rule("create patch update", &[CORE], "events"),
        rule(READ, &[CORE], "pods"),
        rule("create delete", &[CORE], "pods"),
        rule("patch update", &[CORE], "pods/status"),
        rule("create", &[CORE], "pods/eviction"),
        rule(READ, &[CORE], "configmaps secrets"),
        rule("get", &[CORE], "persistentvolumeclaims persistentvolumes"),
        rule("get", &[CORE], "endpoints"),
        rule(
            "create get list watch",
            &[CERTIFICATES],
            "certificatesigningrequests",
        ),
        rule("create delete get patch update", &[COORDINATION], "leases"),
        rule("get", &[STORAGE], "volumeattachments"),
        rule("create", &[CORE], "serviceaccounts/token"),
        rule("get patch update", &[CORE], "persistentvolumeclaims/status"),
        rule(READ, &[STORAGE], "csidrivers"),
        rule("create delete get patch update", &[STORAGE], "csinodes"),
        rule(READ, &["node.k8s.io"], "runtimeclasses"),
        // ferrokube: the node agent removes the directories of its node's
        // deleted local-path volumes, then the volume and its finalizer
        // (k3s has the provisioner's helper pods do it).
        rule("list delete patch", &[CORE], "persistentvolumes"),
    ]
}

/// The controllers' roles: `system:controller:<service account>`, each
/// bound to `kube-system/<service account>`, for the controllers ferrokube
/// runs (their service-account names are Kubernetes').
#[expect(
    clippy::too_many_lines,
    reason = "a table: Kubernetes' controller roles, rule by rule"
)]
pub(crate) fn controller_roles() -> Vec<Value> {
    let c = |sa: &str, rules: Vec<Value>| {
        cluster_role(&format!("{CONTROLLER_ROLE_PREFIX}{sa}"), &[], rules)
    };
    vec![
        c(
            "clusterrole-aggregation-controller",
            vec![rule(
                "escalate get list watch update patch",
                &[RBAC],
                "clusterroles",
            )],
        ),
        c(
            "cronjob-controller",
            vec![
                rule("get list watch update", &[BATCH], "cronjobs"),
                rule(
                    "get list watch create update delete patch",
                    &[BATCH],
                    "jobs",
                ),
                rule("update", &[BATCH], "cronjobs/status"),
                rule("update", &[BATCH], "cronjobs/finalizers"),
                rule("list watch delete", &[CORE], "pods"),
                events_rule(),
            ],
        ),
        c(
            "daemon-set-controller",
            vec![
                rule(READ, &[EXTENSIONS, APPS], "daemonsets"),
                rule("update", &[EXTENSIONS, APPS], "daemonsets/status"),
                rule("update", &[EXTENSIONS, APPS], "daemonsets/finalizers"),
                // ferrokube: status written by patch.
                rule("patch", &[APPS], "daemonsets/status"),
                rule("list watch", &[CORE], "nodes"),
                rule("list watch create delete patch", &[CORE], "pods"),
                rule("create", &[CORE], "pods/binding"),
                rule(
                    "get list watch create delete update patch",
                    &[APPS],
                    "controllerrevisions",
                ),
                events_rule(),
            ],
        ),
        c(
            "deployment-controller",
            vec![
                rule("get list watch update", &[EXTENSIONS, APPS], "deployments"),
                rule("update", &[EXTENSIONS, APPS], "deployments/status"),
                rule("update", &[EXTENSIONS, APPS], "deployments/finalizers"),
                // ferrokube: status written by patch.
                rule("patch", &[APPS], "deployments/status"),
                rule(
                    "get list watch create update patch delete",
                    &[APPS, EXTENSIONS],
                    "replicasets",
                ),
                rule("get list watch update", &[CORE], "pods"),
                events_rule(),
            ],
        ),
        c(
            "disruption-controller",
            vec![
                rule(READ, &[EXTENSIONS, APPS], "deployments"),
                rule(READ, &[APPS, EXTENSIONS], "replicasets"),
                rule(READ, &[CORE], "replicationcontrollers"),
                rule(READ, &[POLICY], "poddisruptionbudgets"),
                rule(READ, &[APPS], "statefulsets"),
                rule("update", &[POLICY], "poddisruptionbudgets/status"),
                rule("patch update", &[CORE], "pods/status"),
                rule("get", &["*"], "*/scale"),
                events_rule(),
            ],
        ),
        c(
            "endpoint-controller",
            vec![
                rule(READ, &[CORE], "services pods"),
                rule("get list watch create update delete", &[CORE], "endpoints"),
                rule("create", &[CORE], "endpoints/restricted"),
                events_rule(),
            ],
        ),
        c(
            "endpointslice-controller",
            vec![
                rule(READ, &[CORE], "services pods nodes"),
                rule("update", &[CORE], "services/finalizers"),
                rule(
                    "get list watch create update delete",
                    &[DISCOVERY],
                    "endpointslices",
                ),
                events_rule(),
            ],
        ),
        c(
            "generic-garbage-collector",
            vec![
                rule("get list watch patch update delete", &["*"], "*"),
                events_rule(),
            ],
        ),
        c(
            "horizontal-pod-autoscaler",
            vec![
                rule(READ, &[AUTOSCALING], "horizontalpodautoscalers"),
                rule("update", &[AUTOSCALING], "horizontalpodautoscalers/status"),
                rule("get update", &["*"], "*/scale"),
                rule("list", &[CORE], "pods"),
                // resource, custom and external metrics
                rule("list", &[METRICS], "pods"),
                rule("get list", &[CUSTOM_METRICS], "*"),
                rule("get list", &[EXTERNAL_METRICS], "*"),
                events_rule(),
            ],
        ),
        c(
            "job-controller",
            vec![
                rule("get list watch update patch", &[BATCH], "jobs"),
                rule("update", &[BATCH], "jobs/status"),
                rule("update", &[BATCH], "jobs/finalizers"),
                rule("list watch create delete patch", &[CORE], "pods"),
                events_rule(),
            ],
        ),
        c(
            "namespace-controller",
            vec![
                rule("get list watch delete", &[CORE], "namespaces"),
                rule("update", &[CORE], "namespaces/finalize namespaces/status"),
                rule("get list watch delete deletecollection", &["*"], "*"),
            ],
        ),
        c(
            "node-controller",
            vec![
                rule("get list watch update delete patch", &[CORE], "nodes"),
                rule("patch update", &[CORE], "nodes/status"),
                rule("patch update", &[CORE], "pods/status"),
                rule("list watch get delete", &[CORE], "pods"),
                events_rule(),
            ],
        ),
        c(
            "persistent-volume-binder",
            vec![
                rule(
                    "get list watch update create delete",
                    &[CORE],
                    "persistentvolumes",
                ),
                rule("update", &[CORE], "persistentvolumes/status"),
                rule("get list watch update", &[CORE], "persistentvolumeclaims"),
                rule("update", &[CORE], "persistentvolumeclaims/status"),
                rule("list watch get create delete", &[CORE], "pods"),
                rule(READ, &[STORAGE], "storageclasses"),
                rule("list watch", &[CORE], "nodes"),
                events_rule(),
                rule("watch", &[CORE], "events"),
                rule("get", &[CORE], "services"),
            ],
        ),
        c(
            "pod-garbage-collector",
            vec![
                rule("list watch delete", &[CORE], "pods"),
                rule(READ, &[CORE], "nodes"),
                rule("patch", &[CORE], "pods/status"),
            ],
        ),
        c(
            "replicaset-controller",
            vec![
                rule("get list watch update", &[APPS, EXTENSIONS], "replicasets"),
                rule("update", &[APPS, EXTENSIONS], "replicasets/status"),
                rule("update", &[APPS, EXTENSIONS], "replicasets/finalizers"),
                // ferrokube: status written by patch.
                rule("patch", &[APPS], "replicasets/status"),
                rule("list watch patch create delete", &[CORE], "pods"),
                events_rule(),
            ],
        ),
        c(
            "replication-controller",
            vec![
                rule("get list watch update", &[CORE], "replicationcontrollers"),
                rule("update", &[CORE], "replicationcontrollers/status"),
                rule("update", &[CORE], "replicationcontrollers/finalizers"),
                // ferrokube: status written by patch.
                rule("patch", &[CORE], "replicationcontrollers/status"),
                rule("list watch patch create delete", &[CORE], "pods"),
                events_rule(),
            ],
        ),
        c(
            "resourcequota-controller",
            vec![
                rule("list watch", &["*"], "*"),
                rule("update", &[CORE], "resourcequotas/status"),
                events_rule(),
            ],
        ),
        c(
            "service-account-controller",
            vec![rule("create", &[CORE], "serviceaccounts"), events_rule()],
        ),
        c(
            "service-controller",
            vec![
                rule("get list watch", &[CORE], "services"),
                rule("patch update", &[CORE], "services/status"),
                rule("list watch", &[CORE], "nodes"),
                events_rule(),
            ],
        ),
        c(
            "statefulset-controller",
            vec![
                rule("list watch", &[CORE], "pods"),
                rule(READ, &[APPS], "statefulsets"),
                rule("update", &[APPS], "statefulsets/status"),
                rule("update", &[APPS], "statefulsets/finalizers"),
                // ferrokube: status written by patch; claims' owner
                // references (persistentVolumeClaimRetentionPolicy) too.
                rule("patch", &[APPS], "statefulsets/status"),
                rule("patch", &[CORE], "persistentvolumeclaims"),
                rule("get create delete update patch", &[CORE], "pods"),
                rule(
                    "get create delete update patch list watch",
                    &[APPS],
                    "controllerrevisions",
                ),
                rule("get create list watch", &[CORE], "persistentvolumeclaims"),
                rule("update delete", &[CORE], "persistentvolumeclaims"),
                rule("update", &[CORE], "pods/finalizers"),
                events_rule(),
            ],
        ),
        c(
            "certificate-controller",
            vec![
                rule(
                    "get list watch delete",
                    &[CERTIFICATES],
                    "certificatesigningrequests",
                ),
                rule(
                    "update",
                    &[CERTIFICATES],
                    "certificatesigningrequests/status certificatesigningrequests/approval",
                ),
                named(
                    "approve",
                    &[CERTIFICATES],
                    "signers",
                    &["kubernetes.io/kube-apiserver-client-kubelet"],
                ),
                named(
                    "sign",
                    &[CERTIFICATES],
                    "signers",
                    &[
                        "kubernetes.io/legacy-unknown",
                        "kubernetes.io/kube-apiserver-client",
                        "kubernetes.io/kube-apiserver-client-kubelet",
                        "kubernetes.io/kubelet-serving",
                    ],
                ),
                rule("create", &[AUTHORIZATION], "subjectaccessreviews"),
                events_rule(),
            ],
        ),
        c(
            "pvc-protection-controller",
            vec![
                rule("get list watch update", &[CORE], "persistentvolumeclaims"),
                rule("list watch get", &[CORE], "pods"),
                // ferrokube: the finalizer is removed by patch.
                rule("patch", &[CORE], "persistentvolumeclaims"),
                events_rule(),
            ],
        ),
        c(
            "pv-protection-controller",
            vec![
                rule("get list watch update", &[CORE], "persistentvolumes"),
                // ferrokube: the finalizer is removed by patch.
                rule("patch", &[CORE], "persistentvolumes"),
                events_rule(),
            ],
        ),
        c(
            "ttl-after-finished-controller",
            vec![
                rule("get list watch delete", &[BATCH], "jobs"),
                events_rule(),
            ],
        ),
        c(
            "root-ca-cert-publisher",
            vec![rule("create update", &[CORE], "configmaps"), events_rule()],
        ),
        c(
            "flowschema-status-controller",
            vec![
                rule(
                    READ,
                    &[FLOWCONTROL],
                    "flowschemas prioritylevelconfigurations",
                ),
                rule("get patch update", &[FLOWCONTROL], "flowschemas/status"),
            ],
        ),
    ]
}

/// The bindings of the cluster-wide roles.
pub(crate) fn cluster_role_bindings() -> Vec<Value> {
    let mut bindings = vec![
        cluster_binding(
            "cluster-admin",
            "cluster-admin",
            vec![group("system:masters")],
        ),
        cluster_binding(
            "system:basic-user",
            "system:basic-user",
            vec![group("system:authenticated")],
        ),
        cluster_binding(
            "system:discovery",
            "system:discovery",
            vec![group("system:authenticated")],
        ),
        cluster_binding(
            "system:public-info-viewer",
            "system:public-info-viewer",
            vec![
                group("system:authenticated"),
                group("system:unauthenticated"),
            ],
        ),
        cluster_binding(
            "system:monitoring",
            "system:monitoring",
            vec![group("system:monitoring")],
        ),
        cluster_binding(
            "system:kube-controller-manager",
            "system:kube-controller-manager",
            vec![user("system:kube-controller-manager")],
        ),
        cluster_binding(
            "system:kube-dns",
            "system:kube-dns",
            vec![service_account("kube-system", "kube-dns")],
        ),
        cluster_binding(
            "system:coredns",
            "system:coredns",
            vec![service_account("kube-system", "coredns")],
        ),
        cluster_binding(
            "system:kube-scheduler",
            "system:kube-scheduler",
            vec![user("system:kube-scheduler")],
        ),
        cluster_binding(
            "system:volume-scheduler",
            "system:volume-scheduler",
            vec![user("system:kube-scheduler")],
        ),
        // No subjects: the Node authorizer grants nodes this role's rules.
        cluster_binding("system:node", "system:node", Vec::new()),
        cluster_binding(
            "system:node-proxier",
            "system:node-proxier",
            vec![user("system:kube-proxy")],
        ),
        cluster_binding(K3S_CONTROLLER, K3S_CONTROLLER, vec![user(K3S_CONTROLLER)]),
        cluster_binding(
            "system:service-account-issuer-discovery",
            "system:service-account-issuer-discovery",
            vec![group("system:serviceaccounts")],
        ),
        cluster_binding(
            "system:node-bootstrapper",
            "system:node-bootstrapper",
            vec![group("system:bootstrappers")],
        ),
        cluster_binding(
            "system:ferrokube:node-joiner",
            "system:ferrokube:node-joiner",
            vec![group("system:bootstrappers")],
        ),
    ];
    for role in controller_roles() {
        let name = role["metadata"]["name"].as_str().unwrap_or_default();
        let sa = name.trim_start_matches(CONTROLLER_ROLE_PREFIX);
        bindings.push(cluster_binding(
            name,
            name,
            vec![service_account("kube-system", sa)],
        ));
    }
    bindings
}

fn role(namespace: &str, name: &str, rules: Vec<Value>) -> Value {
    json!({
        "apiVersion": RBAC_V1, "kind": "Role",
        "metadata": meta(name, Some(namespace), &[]),
        "rules": rules,
    })
}

fn role_binding(namespace: &str, name: &str, role: &str, subjects: Vec<Value>) -> Value {
    json!({
        "apiVersion": RBAC_V1, "kind": "RoleBinding",
        "metadata": meta(name, Some(namespace), &[]),
        "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": role},
        "subjects": subjects,
    })
}

fn leader_locking() -> Vec<Value> {
    vec![
        rule("create get list update watch", &[COORDINATION], "leases"),
        rule(
            "create get list update watch",
            &[COORDINATION],
            "leasecandidates",
        ),
    ]
}

/// The namespaced roles (kube-system, kube-public).
pub(crate) fn roles() -> Vec<Value> {
    vec![
        role(
            "kube-public",
            "system:controller:bootstrap-signer",
            vec![
                rule(READ, &[CORE], "configmaps"),
                named("update", &[CORE], "configmaps", &["cluster-info"]),
                events_rule(),
            ],
        ),
        role(
            "kube-system",
            "extension-apiserver-authentication-reader",
            vec![named(
                READ,
                &[CORE],
                "configmaps",
                &["extension-apiserver-authentication"],
            )],
        ),
        role(
            "kube-system",
            "system::leader-locking-kube-controller-manager",
            leader_locking(),
        ),
        role(
            "kube-system",
            "system::leader-locking-kube-scheduler",
            leader_locking(),
        ),
        role(
            "kube-system",
            "system:controller:bootstrap-signer",
            vec![rule(READ, &[CORE], "secrets")],
        ),
        role(
            "kube-system",
            "system:controller:token-cleaner",
            vec![
                rule("delete get list watch", &[CORE], "secrets"),
                events_rule(),
            ],
        ),
    ]
}

/// The namespaced roles' bindings.
pub(crate) fn role_bindings() -> Vec<Value> {
    vec![
        role_binding(
            "kube-public",
            "system:controller:bootstrap-signer",
            "system:controller:bootstrap-signer",
            vec![service_account("kube-system", "bootstrap-signer")],
        ),
        role_binding(
            "kube-system",
            "system::extension-apiserver-authentication-reader",
            "extension-apiserver-authentication-reader",
            vec![
                user("system:kube-controller-manager"),
                user("system:kube-scheduler"),
            ],
        ),
        role_binding(
            "kube-system",
            "system::leader-locking-kube-controller-manager",
            "system::leader-locking-kube-controller-manager",
            vec![
                user("system:kube-controller-manager"),
                service_account("kube-system", "kube-controller-manager"),
                service_account("kube-system", "leader-election-controller"),
            ],
        ),
        role_binding(
            "kube-system",
            "system::leader-locking-kube-scheduler",
            "system::leader-locking-kube-scheduler",
            vec![
                user("system:kube-scheduler"),
                service_account("kube-system", "kube-scheduler"),
            ],
        ),
        role_binding(
            "kube-system",
            "system:controller:bootstrap-signer",
            "system:controller:bootstrap-signer",
            vec![service_account("kube-system", "bootstrap-signer")],
        ),
        role_binding(
            "kube-system",
            "system:controller:token-cleaner",
            "system:controller:token-cleaner",
            vec![service_account("kube-system", "token-cleaner")],
        ),
    ]
}

// --- Reconciliation -------------------------------------------------------

/// Whether `rules` allow everything `want` allows (each of its verbs on
/// each of its group/resource/name, or each of its URLs).
fn covers(rules: &[Value], want: &Value) -> bool {
    let list = |v: &Value, k: &str| -> Vec<String> {
        v.get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let has = |l: &[String], x: &str| l.iter().any(|s| s == "*" || s == x);
    let verbs = list(want, "verbs");
    let urls = list(want, "nonResourceURLs");
    if !urls.is_empty() {
        return urls.iter().all(|u| {
            verbs.iter().all(|verb| {
                rules.iter().any(|r| {
                    has(&list(r, "verbs"), verb)
                        && list(r, "nonResourceURLs").iter().any(|p| {
                            p == u
                                || p.strip_suffix('*')
                                    .is_some_and(|prefix| u.starts_with(prefix))
                        })
                })
            })
        });
    }
    let (groups, resources, names) = (
        list(want, "apiGroups"),
        list(want, "resources"),
        list(want, "resourceNames"),
    );
    let names: Vec<Option<&String>> = if names.is_empty() {
        vec![None]
    } else {
        names.iter().map(Some).collect()
    };
    verbs.iter().all(|verb| {
        groups.iter().all(|g| {
            resources.iter().all(|res| {
                names.iter().all(|name| {
                    rules.iter().any(|r| {
                        let rn = list(r, "resourceNames");
                        has(&list(r, "verbs"), verb)
                            && has(&list(r, "apiGroups"), g)
                            && resource_covered(&list(r, "resources"), res)
                            && (rn.is_empty() || name.is_some_and(|n| rn.contains(n)))
                    })
                })
            })
        })
    })
}

/// Whether a rule's `resources` cover `res` (`*`, `*/sub`, `res/*`).
fn resource_covered(have: &[String], res: &str) -> bool {
    have.iter().any(|h| {
        h == "*"
            || h == res
            || match (h.split_once('/'), res.split_once('/')) {
                (Some(("*", hs)), Some((_, rs))) => hs == rs,
                (Some((hr, "*")), Some((rr, _))) => hr == rr,
                _ => false,
            }
    })
}

/// `existing` with what `want` has and it lacks added, or `None` when it
/// lacks nothing (or asks to be left alone).
pub(crate) fn reconciled(existing: &Value, want: &Value) -> Option<Value> {
    let meta = &existing["metadata"];
    if meta["annotations"][AUTOUPDATE].as_str() == Some("false") {
        return None;
    }
    let mut out = existing.clone();
    let mut changed = false;
    for field in ["labels", "annotations"] {
        let Some(wanted) = want["metadata"][field].as_object() else {
            continue;
        };
        for (k, v) in wanted {
            if out["metadata"][field].get(k).is_none() {
                if !out["metadata"][field].is_object() {
                    out["metadata"][field] = json!({});
                }
                out["metadata"][field][k] = v.clone();
                changed = true;
            }
        }
    }
    if let Some(wanted_rules) = want.get("rules").and_then(Value::as_array) {
        let mut rules = out
            .get("rules")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        // An aggregated role's rules are the aggregation controller's.
        let aggregated = want.get("aggregationRule").is_some_and(|a| !a.is_null());
        if !aggregated {
            for r in wanted_rules {
                if !covers(&rules, r) {
                    rules.push(r.clone());
                    changed = true;
                }
            }
            out["rules"] = json!(rules);
        }
    }
    if let Some(selectors) = want["aggregationRule"]["clusterRoleSelectors"].as_array() {
        let mut have = out["aggregationRule"]["clusterRoleSelectors"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for s in selectors {
            if !have.contains(s) {
                have.push(s.clone());
                changed = true;
            }
        }
        out["aggregationRule"] = json!({"clusterRoleSelectors": have});
    }
    if let Some(subjects) = want.get("subjects").and_then(Value::as_array) {
        let mut have = out
            .get("subjects")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for s in subjects {
            let same = |h: &Value| {
                ["kind", "name", "namespace"]
                    .iter()
                    .all(|k| h.get(*k).and_then(Value::as_str) == s.get(*k).and_then(Value::as_str))
            };
            if !have.iter().any(same) {
                have.push(s.clone());
                changed = true;
            }
        }
        if !have.is_empty() {
            out["subjects"] = json!(have);
        }
    }
    changed.then_some(out)
}

/// Creates what is missing of the bootstrap policy and adds what existing
/// objects lack (Kubernetes' `rbac/bootstrap-roles` post-start hook).
pub(crate) async fn reconcile(rest: &Rest) -> anyhow::Result<()> {
    let opts = WriteOptions {
        manager: "kube-apiserver".into(),
        ..Default::default()
    };
    let sets = [
        ("clusterroles", cluster_roles()),
        ("clusterroles", controller_roles()),
        ("clusterrolebindings", cluster_role_bindings()),
        ("roles", roles()),
        ("rolebindings", role_bindings()),
    ];
    let (mut created, mut updated) = (0, 0);
    for (plural, objects) in sets {
        let Some(def) = rest.kinds.get(RBAC, "v1", plural) else {
            continue;
        };
        for want in objects {
            let name = want["metadata"]["name"].as_str().unwrap_or_default();
            let ns = want["metadata"]["namespace"].as_str().unwrap_or_default();
            let existing = match rest.get(&def, ns, name).await {
                Ok(o) => o,
                Err(e) if e.code == 404 => match rest.create(&def, ns, want.clone(), &opts).await {
                    Ok(_) => {
                        created += 1;
                        continue;
                    }
                    Err(e) if e.code == 409 => continue,
                    Err(e) => anyhow::bail!("creating the {} {name}: {e}", def.kind),
                },
                Err(e) => anyhow::bail!("reading the {} {name}: {e}", def.kind),
            };
            // A binding's role cannot change: Kubernetes deletes and
            // creates it again.
            if want.get("roleRef").is_some()
                && existing["roleRef"] != want["roleRef"]
                && existing["metadata"]["annotations"][AUTOUPDATE].as_str() != Some("false")
            {
                rest.delete(&def, ns, name, &Default::default())
                    .await
                    .map_err(|e| anyhow::anyhow!("replacing the {} {name}: {e}", def.kind))?;
                rest.create(&def, ns, want.clone(), &opts)
                    .await
                    .map_err(|e| anyhow::anyhow!("replacing the {} {name}: {e}", def.kind))?;
                updated += 1;
                continue;
            }
            if let Some(obj) = reconciled(&existing, &want) {
                match rest.update(&def, ns, name, obj, "", &opts).await {
                    Ok(_) => updated += 1,
                    Err(e) if e.code == 409 => {
                        tracing::warn!(
                            kind = def.kind,
                            name,
                            "changed while reconciling; left for the next start"
                        )
                    }
                    Err(e) => anyhow::bail!("updating the {} {name}: {e}", def.kind),
                }
            }
        }
    }
    if created + updated > 0 {
        tracing::info!(created, updated, "reconciled the bootstrap RBAC policy");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<Value> {
        let mut v = cluster_roles();
        v.extend(controller_roles());
        v.extend(cluster_role_bindings());
        v.extend(roles());
        v.extend(role_bindings());
        v
    }

    #[test]
    fn every_object_is_labelled_and_named_once_and_every_binding_has_its_role() {
        let objects = all();
        let mut seen = std::collections::HashSet::new();
        for o in &objects {
            let key = (
                o["kind"].as_str().unwrap().to_string(),
                o["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                o["metadata"]["name"].as_str().unwrap().to_string(),
            );
            assert!(seen.insert(key.clone()), "{key:?} twice");
            assert_eq!(o["metadata"]["labels"][BOOTSTRAPPING], "rbac-defaults");
            assert_eq!(o["metadata"]["annotations"][AUTOUPDATE], "true");
        }
        for b in objects.iter().filter(|o| o.get("roleRef").is_some()) {
            let kind = b["roleRef"]["kind"].as_str().unwrap();
            let ns = b["metadata"]["namespace"].as_str().unwrap_or("");
            let name = b["roleRef"]["name"].as_str().unwrap();
            assert!(
                seen.contains(&(kind.to_string(), ns.to_string(), name.to_string())),
                "{} binds a missing {kind} {name}",
                b["metadata"]["name"]
            );
        }
    }

    #[test]
    fn each_controller_role_is_bound_to_its_service_account() {
        let bindings = cluster_role_bindings();
        let b = bindings
            .iter()
            .find(|b| b["metadata"]["name"] == "system:controller:replicaset-controller")
            .unwrap();
        assert_eq!(
            b["subjects"],
            json!([{"kind": "ServiceAccount", "name": "replicaset-controller", "namespace": "kube-system"}])
        );
        let node = bindings
            .iter()
            .find(|b| b["metadata"]["name"] == "system:node")
            .unwrap();
        assert_eq!(
            node["subjects"],
            json!([]),
            "nodes get it from the Node authorizer"
        );
    }

    #[test]
    fn coverage_follows_wildcards_subresources_and_names() {
        let rules = vec![
            rule("get list", &[CORE], "pods */scale"),
            rule("*", &[APPS], "deployments/*"),
            named("update", &[CORE], "configmaps", &["a"]),
            urls("get", &["/apis/*"]),
        ];
        assert!(covers(&rules, &rule("get", &[CORE], "pods")));
        assert!(!covers(&rules, &rule("get watch", &[CORE], "pods")));
        assert!(covers(
            &rules,
            &rule("list", &[CORE], "replicationcontrollers/scale")
        ));
        assert!(covers(
            &rules,
            &rule("delete", &[APPS], "deployments/scale")
        ));
        assert!(!covers(&rules, &rule("delete", &[APPS], "deployments")));
        assert!(covers(
            &rules,
            &named("update", &[CORE], "configmaps", &["a"])
        ));
        assert!(!covers(&rules, &rule("update", &[CORE], "configmaps")));
        assert!(covers(&rules, &urls("get", &["/apis/apps"])));
        assert!(!covers(&rules, &urls("get", &["/api"])));
    }

    #[test]
    fn reconciling_adds_what_is_missing_and_removes_nothing() {
        let want = cluster_role(
            "r",
            &[],
            vec![rule("get", &[CORE], "pods"), rule("list", &[CORE], "pods")],
        );
        // Someone removed a rule and added one of their own, and a label.
        let mut existing = want.clone();
        existing["rules"] = json!([
            rule("get", &[CORE], "pods"),
            rule("delete", &[CORE], "secrets")
        ]);
        existing["metadata"]["labels"]["mine"] = json!("x");
        existing["metadata"]["labels"][BOOTSTRAPPING] = json!("changed");
        let out = reconciled(&existing, &want).expect("a change");
        assert_eq!(
            out["rules"],
            json!([
                rule("get", &[CORE], "pods"),
                rule("delete", &[CORE], "secrets"),
                rule("list", &[CORE], "pods")
            ])
        );
        assert_eq!(out["metadata"]["labels"]["mine"], "x");
        assert_eq!(
            out["metadata"]["labels"][BOOTSTRAPPING], "changed",
            "existing values win"
        );
        assert_eq!(reconciled(&out, &want), None, "nothing more to add");

        // autoupdate "false": left alone.
        existing["metadata"]["annotations"][AUTOUPDATE] = json!("false");
        assert_eq!(reconciled(&existing, &want), None);

        // Subjects: added when missing, extra ones kept.
        let want = cluster_binding("b", "r", vec![group("g"), user("u")]);
        let mut existing = want.clone();
        existing["subjects"] = json!([user("someone"), group("g")]);
        let out = reconciled(&existing, &want).expect("a change");
        assert_eq!(
            out["subjects"],
            json!([user("someone"), group("g"), user("u")])
        );
    }

    #[test]
    fn aggregated_roles_keep_their_rules_and_gain_selectors() {
        let want = aggregated_role("view", "view", &[TO_EDIT]);
        let mut existing = want.clone();
        existing["rules"] = json!([rule("get", &[CORE], "pods")]);
        existing["aggregationRule"] =
            json!({"clusterRoleSelectors": [{"matchLabels": {"mine": "true"}}]});
        let out = reconciled(&existing, &want).expect("a change");
        assert_eq!(out["rules"], json!([rule("get", &[CORE], "pods")]));
        assert_eq!(
            out["aggregationRule"]["clusterRoleSelectors"],
            json!([{"matchLabels": {"mine": "true"}}, {"matchLabels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}}])
        );
    }
}
