//! The resources the tests describe: the kinds ferrokube serves.

use ferrokube_openapi::ResourceDesc;

const ALL: &[&str] = &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

const fn res(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    subresources: &'static [&'static str],
) -> ResourceDesc {
    ResourceDesc { group, version, kind, plural, namespaced, verbs: ALL, subresources }
}

pub fn resources() -> Vec<ResourceDesc> {
    vec![
        res("", "v1", "Namespace", "namespaces", false, &["status"]),
        res("", "v1", "Pod", "pods", true, &["status", "binding", "eviction", "log", "exec"]),
        res("", "v1", "Service", "services", true, &["status"]),
        res("", "v1", "Endpoints", "endpoints", true, &[]),
        res("", "v1", "ConfigMap", "configmaps", true, &[]),
        res("", "v1", "Secret", "secrets", true, &[]),
        res("", "v1", "ServiceAccount", "serviceaccounts", true, &[]),
        res("", "v1", "Node", "nodes", false, &["status"]),
        res("", "v1", "Event", "events", true, &[]),
        res("", "v1", "ReplicationController", "replicationcontrollers", true, &["status", "scale"]),
        res("", "v1", "LimitRange", "limitranges", true, &[]),
        res("", "v1", "ResourceQuota", "resourcequotas", true, &["status"]),
        res("", "v1", "PersistentVolume", "persistentvolumes", false, &["status"]),
        res("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", true, &["status"]),
        ResourceDesc {
            group: "",
            version: "v1",
            kind: "Binding",
            plural: "bindings",
            namespaced: true,
            verbs: &["create"],
            subresources: &[],
        },
        res("apps", "v1", "Deployment", "deployments", true, &["status", "scale"]),
        res("apps", "v1", "ReplicaSet", "replicasets", true, &["status", "scale"]),
        res("apps", "v1", "StatefulSet", "statefulsets", true, &["status", "scale"]),
        res("apps", "v1", "DaemonSet", "daemonsets", true, &["status"]),
        res("apps", "v1", "ControllerRevision", "controllerrevisions", true, &[]),
        res("batch", "v1", "Job", "jobs", true, &["status"]),
        res("batch", "v1", "CronJob", "cronjobs", true, &["status"]),
        res("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", true, &["status"]),
        res("coordination.k8s.io", "v1", "Lease", "leases", true, &[]),
        res("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", true, &[]),
        res("events.k8s.io", "v1", "Event", "events", true, &[]),
        res("rbac.authorization.k8s.io", "v1", "Role", "roles", true, &[]),
        res("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", true, &[]),
        res("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", false, &[]),
        res("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", false, &[]),
        res("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", true, &["status"]),
        res("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", false, &[]),
    ]
}
