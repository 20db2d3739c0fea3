//! Each built-in kind's strategy as the generic path sees it: which kinds
//! keep a generation, what a write through the object or its `/status`
//! keeps, `/scale`, graceful deletion, what a delete answers and field
//! selectors.

use ferrokube_api::fields::FieldSelector;
use ferrokube_api::registry::{Registry, ResourceDef};
use serde_json::{json, Value};

use super::builtin;

fn def(group: &str, kind: &str) -> ResourceDef {
    Registry::default()
        .by_kind(group, kind)
        .unwrap_or_else(|| panic!("{group}/{kind} is served"))
        .clone()
}

/// `new` after the strategy's update preparation over `old`.
fn updated(d: &ResourceDef, old: &Value, mut new: Value, sub: &str) -> Value {
    builtin(d).prepare_for_update(d, old, &mut new, sub);
    new
}

#[test]
fn every_served_kind_has_a_strategy_that_knows_its_fields() {
    for d in Registry::default().all() {
        let s = builtin(d);
        let obj = json!({"apiVersion": d.api_version(), "kind": d.kind, "metadata": {"name": "x"}, "bogus": 1});
        let checked = s
            .check_fields(d, obj)
            .unwrap_or_else(|e| panic!("{}: {e}", d.kind));
        assert_eq!(checked.unknown, ["bogus"], "{}/{}", d.group, d.kind);
        assert!(checked.value.get("bogus").is_none());
    }
}

#[test]
fn generations_by_kind() {
    let keeps = [
        ("", "Pod"),
        ("", "ReplicationController"),
        ("", "PodTemplate"),
        ("apps", "Deployment"),
        ("apps", "StatefulSet"),
        ("batch", "CronJob"),
        ("policy", "PodDisruptionBudget"),
        ("discovery.k8s.io", "EndpointSlice"),
        ("networking.k8s.io", "Ingress"),
        ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
    ];
    let none = [
        ("", "Service"),
        ("", "ConfigMap"),
        ("", "Namespace"),
        ("coordination.k8s.io", "Lease"),
        ("rbac.authorization.k8s.io", "Role"),
        ("storage.k8s.io", "StorageClass"),
        ("certificates.k8s.io", "CertificateSigningRequest"),
    ];
    for (g, k) in keeps {
        let d = def(g, k);
        assert!(builtin(&d).has_generation(&d), "{g}/{k}");
        let mut obj = json!({"metadata": {"name": "x"}, "spec": {}});
        builtin(&d).prepare_for_create(&d, &mut obj, None);
        assert_eq!(obj["metadata"]["generation"], 1, "{g}/{k}");
        // A spec change through the object moves it; a status write not.
        let old = json!({"metadata": {"name": "x", "generation": 4}, "spec": {"a": 1}});
        let new = json!({"metadata": {"name": "x"}, "spec": {"a": 2}});
        assert_eq!(
            updated(&d, &old, new.clone(), "")["metadata"]["generation"],
            5,
            "{g}/{k}"
        );
        if d.subresource("status").is_some() {
            let s = updated(&d, &old, new, "status");
            assert_eq!(s["metadata"]["generation"], 4, "{g}/{k}");
            assert_eq!(s["spec"], json!({"a": 1}), "{g}/{k}: spec kept by /status");
        }
    }
    for (g, k) in none {
        let d = def(g, k);
        assert!(!builtin(&d).has_generation(&d), "{g}/{k}");
        let mut obj = json!({"metadata": {"name": "x", "generation": 7}, "spec": {}});
        builtin(&d).prepare_for_create(&d, &mut obj, None);
        let old = json!({"metadata": {"name": "x"}, "spec": {"a": 1}});
        let new = json!({"metadata": {"name": "x", "generation": 3}, "spec": {"a": 2}});
        let u = updated(&d, &old, new, "");
        assert!(u["metadata"].get("generation").is_none(), "{g}/{k}: {u}");
    }
}

#[test]
fn the_object_keeps_its_status_and_status_keeps_the_object() {
    for (g, k) in [
        ("", "Service"),
        ("", "Node"),
        ("", "PersistentVolumeClaim"),
        ("", "ResourceQuota"),
        ("apps", "DaemonSet"),
        ("batch", "Job"),
        ("autoscaling", "HorizontalPodAutoscaler"),
        ("storage.k8s.io", "VolumeAttachment"),
    ] {
        let d = def(g, k);
        let old = json!({"metadata": {"name": "x", "labels": {"a": "1"}}, "spec": {"s": 1}, "status": {"t": 1}});
        let new = json!({"metadata": {"name": "x", "labels": {"a": "2"}}, "spec": {"s": 2}, "status": {"t": 2}});
        let main = updated(&d, &old, new.clone(), "");
        assert_eq!(main["status"], json!({"t": 1}), "{g}/{k}");
        assert_eq!(main["spec"], json!({"s": 2}), "{g}/{k}");
        let status = updated(&d, &old, new, "status");
        assert_eq!(status["status"], json!({"t": 2}), "{g}/{k}");
        assert_eq!(status["spec"], json!({"s": 1}), "{g}/{k}");
        assert_eq!(status["metadata"]["labels"]["a"], "1", "{g}/{k}");
    }
    // A kind without /status writes its status through the object.
    let cm = def("", "ConfigMap");
    let old = json!({"metadata": {"name": "x"}, "status": {"t": 1}});
    let new = json!({"metadata": {"name": "x"}, "status": {"t": 2}});
    assert_eq!(updated(&cm, &old, new, "")["status"], json!({"t": 2}));
}

#[test]
fn initial_statuses() {
    for (g, k, status) in [
        ("", "Namespace", json!({"phase": "Active"})),
        ("", "Service", json!({"loadBalancer": {}})),
        ("apps", "ReplicaSet", json!({"replicas": 0})),
        (
            "apps",
            "StatefulSet",
            json!({"replicas": 0, "availableReplicas": 0}),
        ),
        ("networking.k8s.io", "Ingress", json!({"loadBalancer": {}})),
        (
            "storage.k8s.io",
            "VolumeAttachment",
            json!({"attached": false}),
        ),
        (
            "certificates.k8s.io",
            "CertificateSigningRequest",
            json!({}),
        ),
    ] {
        let d = def(g, k);
        let mut obj = json!({"metadata": {"name": "x"}, "spec": {}, "status": {"given": true}});
        builtin(&d).prepare_for_create(&d, &mut obj, None);
        assert_eq!(obj["status"], status, "{g}/{k}");
    }
    // A Node keeps the status it is created with; a ConfigMap has none.
    for (g, k) in [("", "Node"), ("", "ConfigMap")] {
        let d = def(g, k);
        let mut obj = json!({"metadata": {"name": "x"}, "status": {"given": true}});
        builtin(&d).prepare_for_create(&d, &mut obj, None);
        assert_eq!(obj["status"], json!({"given": true}), "{g}/{k}");
    }
}

#[test]
fn scale_is_served_by_the_workloads_with_replicas() {
    for (g, k, scales) in [
        ("apps", "Deployment", true),
        ("apps", "ReplicaSet", true),
        ("apps", "StatefulSet", true),
        ("", "ReplicationController", true),
        ("apps", "DaemonSet", false),
        ("batch", "Job", false),
    ] {
        let d = def(g, k);
        let paths = builtin(&d).scale_paths(&d);
        assert_eq!(paths.is_some(), scales, "{g}/{k}");
        assert_eq!(paths.is_some(), d.subresource("scale").is_some(), "{g}/{k}");
    }
    let rc = def("", "ReplicationController");
    let paths = builtin(&rc).scale_paths(&rc).expect("scales");
    let obj = json!({"metadata": {"name": "r"}, "spec": {"replicas": 3, "selector": {"app": "web", "tier": "fe"}}, "status": {"replicas": 2}});
    let scale = crate::rest::Rest::scale_of(&paths, &obj);
    assert_eq!(scale["spec"]["replicas"], 3);
    assert_eq!(
        scale["status"],
        json!({"replicas": 2, "selector": "app=web,tier=fe"})
    );
}

#[test]
fn only_bound_pods_delete_gracefully() {
    let pods = def("", "Pod");
    let s = builtin(&pods);
    let unbound = json!({"spec": {"terminationGracePeriodSeconds": 10}});
    assert_eq!(s.deletion_grace_period(&pods, &unbound, None), None);
    let bound = json!({"spec": {"nodeName": "n1", "terminationGracePeriodSeconds": 10}});
    assert_eq!(s.deletion_grace_period(&pods, &bound, None), Some(10));
    assert_eq!(s.deletion_grace_period(&pods, &bound, Some(0)), Some(0));
    let default = json!({"spec": {"nodeName": "n1"}});
    assert_eq!(s.deletion_grace_period(&pods, &default, None), Some(30));
    let cm = def("", "ConfigMap");
    assert_eq!(
        builtin(&cm).deletion_grace_period(&cm, &bound, Some(5)),
        None
    );
}

/// The stores Kubernetes builds with `ReturnDeletedObject: true`
/// (`pkg/registry/*/*/storage/storage.go`); every other served kind
/// answers a delete with a success `Status`.
#[test]
fn deletes_return_the_object_for_kubernetes_kinds_only() {
    let returns = [
        ("", "Pod"),
        ("", "Service"),
        ("", "Namespace"),
        ("", "ServiceAccount"),
        ("", "PersistentVolume"),
        ("", "PersistentVolumeClaim"),
        ("storage.k8s.io", "StorageClass"),
        ("storage.k8s.io", "CSIDriver"),
        ("storage.k8s.io", "CSINode"),
        ("storage.k8s.io", "VolumeAttachment"),
    ];
    for d in Registry::default().all() {
        let want = returns.contains(&(d.group, d.kind));
        assert_eq!(
            builtin(d).returns_deleted_object(d),
            want,
            "{}/{}",
            d.group,
            d.kind
        );
    }
}

#[test]
fn field_selectors_by_kind() {
    let pods = Registry::default()
        .get("", "v1", "pods")
        .expect("pods")
        .clone();
    let s = builtin(&pods);
    let sel = FieldSelector::parse("spec.host=n1").expect("parses");
    let converted = s.convert_field_selector(&pods, &sel).expect("selectable");
    assert_eq!(converted.equals("spec.nodeName"), Some("n1"));
    let obj = json!({"metadata": {"name": "p", "namespace": "d"}, "spec": {"nodeName": "n1"}});
    assert!(converted.matches(&s.selectable_fields(&pods, &obj)));
    let cms = Registry::default()
        .get("", "v1", "configmaps")
        .expect("cms")
        .clone();
    let err = builtin(&cms)
        .convert_field_selector(&cms, &FieldSelector::parse("data.x=1").expect("parses"))
        .expect_err("not selectable");
    assert_eq!(
        err.to_string(),
        "\"data.x\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
    );
}

#[test]
fn events_k8s_io_prints_the_core_columns() {
    let v1 = Registry::default()
        .get("events.k8s.io", "v1", "events")
        .expect("events")
        .clone();
    let core = Registry::default()
        .get("", "v1", "events")
        .expect("events")
        .clone();
    let names = |d: &ResourceDef| -> Vec<String> {
        builtin(d)
            .table_columns(d)
            .into_iter()
            .map(|c| c.name.to_string())
            .collect()
    };
    assert_eq!(names(&v1), names(&core));
}
