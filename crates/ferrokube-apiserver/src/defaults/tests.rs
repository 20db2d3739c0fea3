//! Each kind's defaults and preparation, as a Kubernetes server of the
//! same version shows them.

use ferrokube_api::registry::{Registry, ResourceDef};
use serde_json::{json, Value};

use super::pod::{self, qos_class};
use crate::objectmeta;

/// The defaults of `def`'s kind, through its strategy.
fn apply(def: &ResourceDef, obj: &mut Value) {
    crate::strategy::builtin(def).default(def, obj);
}

fn def(group: &str, kind: &str) -> ResourceDef {
    Registry::default()
        .by_kind(group, kind)
        .unwrap_or_else(|| panic!("{group}/{kind} is served"))
        .clone()
}

/// What a create does to `obj` before admission and storage.
fn created(group: &str, kind: &str, mut obj: Value) -> Value {
    let def = def(group, kind);
    objectmeta::fill_on_create(&mut obj);
    apply(&def, &mut obj);
    crate::strategy::builtin(&def).prepare_for_create(&def, &mut obj, None);
    obj
}

/// What an update of `old` to `new` (through `subresource`) does to `new`.
fn updated(group: &str, kind: &str, old: &Value, mut new: Value, subresource: &str) -> Value {
    let def = def(group, kind);
    apply(&def, &mut new);
    crate::strategy::builtin(&def).prepare_for_update(&def, old, &mut new, subresource);
    new
}

fn meta(name: &str) -> Value {
    json!({"name": name, "namespace": "default"})
}

fn container() -> Value {
    json!({"name": "c", "image": "busybox:1.36"})
}

#[test]
fn pod_defaults_and_initial_status() {
    let pod = created(
        "",
        "Pod",
        json!({"metadata": meta("p"), "spec": {"containers": [{
            "name": "c", "image": "busybox",
            "ports": [{"containerPort": 80}],
            "resources": {"limits": {"cpu": "500m", "memory": "64Mi"}},
            "livenessProbe": {"httpGet": {"port": 80}},
            "readinessProbe": {"tcpSocket": {"port": 80}, "periodSeconds": 5},
            "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        }], "volumes": [
            {"name": "a"},
            {"name": "s", "secret": {"secretName": "x"}},
            {"name": "h", "hostPath": {"path": "/tmp"}},
        ]}}),
    );
    let spec = &pod["spec"];
    assert_eq!(spec["restartPolicy"], "Always");
    assert_eq!(spec["dnsPolicy"], "ClusterFirst");
    assert_eq!(spec["schedulerName"], "default-scheduler");
    assert_eq!(spec["terminationGracePeriodSeconds"], 30);
    assert_eq!(spec["securityContext"], json!({}));
    assert_eq!(spec["enableServiceLinks"], true);
    let c = &spec["containers"][0];
    assert_eq!(c["imagePullPolicy"], "Always");
    assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
    assert_eq!(c["terminationMessagePolicy"], "File");
    assert_eq!(c["ports"][0]["protocol"], "TCP");
    assert_eq!(
        c["resources"]["requests"],
        json!({"cpu": "500m", "memory": "64Mi"}),
        "requests default to limits"
    );
    assert_eq!(
        c["livenessProbe"],
        json!({"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
            "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
    );
    assert_eq!(c["readinessProbe"]["periodSeconds"], 5);
    assert_eq!(c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"], "v1");
    assert_eq!(spec["volumes"][0], json!({"name": "a", "emptyDir": {}}));
    assert_eq!(spec["volumes"][1]["secret"]["defaultMode"], 420);
    assert_eq!(spec["volumes"][2]["hostPath"]["type"], "");
    assert_eq!(
        pod["status"],
        json!({"phase": "Pending", "qosClass": "Guaranteed"})
    );
    assert_eq!(pod["metadata"]["generation"], 1);
}

#[test]
fn image_pull_policy_follows_the_tag() {
    for (image, policy) in [
        ("busybox", "Always"),
        ("busybox:latest", "Always"),
        ("busybox:1.36", "IfNotPresent"),
        ("localhost:5000/busybox", "Always"),
        ("localhost:5000/busybox:1", "IfNotPresent"),
        ("busybox@sha256:abcd", "IfNotPresent"),
        ("busybox:latest@sha256:abcd", "Always"),
    ] {
        let pod = created(
            "",
            "Pod",
            json!({"metadata": meta("p"), "spec": {"containers": [{"name": "c", "image": image}]}}),
        );
        assert_eq!(
            pod["spec"]["containers"][0]["imagePullPolicy"], policy,
            "{image}"
        );
    }
}

#[test]
fn qos_classes() {
    let qos = |resources: Value| {
        let mut pod =
            json!({"spec": {"containers": [{"name": "c", "image": "x", "resources": resources}]}});
        pod::pod(&mut pod);
        qos_class(&pod["spec"]).to_string()
    };
    assert_eq!(qos(json!({})), "BestEffort");
    assert_eq!(qos(json!({"requests": {"cpu": "100m"}})), "Burstable");
    assert_eq!(qos(json!({"limits": {"cpu": "1"}})), "Burstable");
    assert_eq!(
        qos(json!({"limits": {"cpu": "1", "memory": "1Gi"}})),
        "Guaranteed"
    );
    assert_eq!(
        qos(json!({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1000m"}})),
        "Guaranteed"
    );
    assert_eq!(
        qos(json!({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}})),
        "Burstable"
    );
    assert_eq!(
        qos(json!({"requests": {"ephemeral-storage": "1Gi"}})),
        "BestEffort"
    );
}

#[test]
fn scheduling_gates_hold_the_pod_unscheduled() {
    let pod = created(
        "",
        "Pod",
        json!({"metadata": meta("p"), "spec": {"containers": [container()], "schedulingGates": [{"name": "g"}]}}),
    );
    assert_eq!(pod["status"]["conditions"][0]["reason"], "SchedulingGated");
}

#[test]
fn pod_status_updates_keep_the_qos_class() {
    let old = created(
        "",
        "Pod",
        json!({"metadata": meta("p"), "spec": {"containers": [container()]}}),
    );
    let mut new = old.clone();
    new["status"] = json!({"phase": "Running"});
    new["spec"]["nodeName"] = json!("forged");
    let new = updated("", "Pod", &old, new, "status");
    assert_eq!(new["status"]["qosClass"], "BestEffort");
    assert_eq!(new["status"]["phase"], "Running");
    assert!(new["spec"].get("nodeName").is_none(), "spec is the old one");
    assert_eq!(new["metadata"]["generation"], 1);
}

#[test]
fn service_defaults_and_status() {
    let svc = created(
        "",
        "Service",
        json!({"metadata": meta("s"), "spec": {"ports": [{"port": 80}, {"port": 53, "protocol": "UDP", "targetPort": "dns"}]}}),
    );
    let spec = &svc["spec"];
    assert_eq!(spec["type"], "ClusterIP");
    assert_eq!(spec["sessionAffinity"], "None");
    assert_eq!(spec["internalTrafficPolicy"], "Cluster");
    assert!(spec.get("externalTrafficPolicy").is_none());
    assert_eq!(
        spec["ports"][0],
        json!({"port": 80, "protocol": "TCP", "targetPort": 80})
    );
    assert_eq!(spec["ports"][1]["targetPort"], "dns");
    assert_eq!(svc["status"], json!({"loadBalancer": {}}));
    assert!(
        svc["metadata"].get("generation").is_none(),
        "services keep no generation"
    );
    let lb = created(
        "",
        "Service",
        json!({"metadata": meta("s"), "spec": {"type": "LoadBalancer", "sessionAffinity": "ClientIP", "ports": [{"port": 80}]}}),
    );
    assert_eq!(lb["spec"]["externalTrafficPolicy"], "Cluster");
    assert_eq!(lb["spec"]["allocateLoadBalancerNodePorts"], true);
    assert_eq!(
        lb["spec"]["sessionAffinityConfig"],
        json!({"clientIP": {"timeoutSeconds": 10800}})
    );
}

#[test]
fn secret_string_data_goes_into_data() {
    let secret = created(
        "",
        "Secret",
        json!({"metadata": meta("s"), "data": {"a": "b2xk", "keep": "eA=="}, "stringData": {"a": "new", "pw": "s3cret"}}),
    );
    assert_eq!(secret["type"], "Opaque");
    assert!(secret.get("stringData").is_none());
    assert_eq!(
        secret["data"],
        json!({"a": "bmV3", "keep": "eA==", "pw": "czNjcmV0"})
    );
    assert!(secret["metadata"].get("generation").is_none());
    // On update too.
    let new = updated(
        "",
        "Secret",
        &secret,
        json!({"metadata": meta("s"), "type": "Opaque", "stringData": {"x": "y"}}),
        "",
    );
    assert_eq!(new["data"], json!({"x": "eQ=="}));
}

#[test]
fn kinds_without_generation_get_none() {
    for (group, kind) in [
        ("", "ConfigMap"),
        ("", "Secret"),
        ("", "ServiceAccount"),
        ("", "Endpoints"),
        ("", "Event"),
        ("rbac.authorization.k8s.io", "Role"),
        ("coordination.k8s.io", "Lease"),
    ] {
        let obj = created(group, kind, json!({"metadata": meta("x")}));
        assert!(obj["metadata"].get("generation").is_none(), "{kind}: {obj}");
    }
}

#[test]
fn namespaces_get_finalizer_label_and_phase() {
    for (spec, want) in [
        (None, json!(["kubernetes"])),
        (Some(json!({})), json!(["kubernetes"])),
        (
            Some(json!({"finalizers": ["example.com/x"]})),
            json!(["example.com/x", "kubernetes"]),
        ),
    ] {
        let mut body = json!({"metadata": {"name": "team"}});
        if let Some(spec) = spec {
            body["spec"] = spec;
        }
        let ns = created("", "Namespace", body);
        assert_eq!(ns["spec"]["finalizers"], want);
        assert_eq!(ns["status"], json!({"phase": "Active"}));
        assert_eq!(
            ns["metadata"]["labels"],
            json!({"kubernetes.io/metadata.name": "team"})
        );
        assert!(ns["metadata"].get("generation").is_none());
    }
    // Finalizers change only through /finalize.
    let old = created("", "Namespace", json!({"metadata": {"name": "team"}}));
    let mut new = old.clone();
    new["spec"]["finalizers"] = json!([]);
    let put = updated("", "Namespace", &old, new.clone(), "");
    assert_eq!(put["spec"]["finalizers"], json!(["kubernetes"]));
    let finalized = updated("", "Namespace", &old, new, "finalize");
    assert_eq!(finalized["spec"]["finalizers"], json!([]));
}

#[test]
fn claims_and_volumes() {
    let pvc = created(
        "",
        "PersistentVolumeClaim",
        json!({"metadata": meta("c"), "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}, "status": {"phase": "Bound"}}),
    );
    assert_eq!(pvc["spec"]["volumeMode"], "Filesystem");
    assert_eq!(pvc["status"], json!({"phase": "Pending"}));
    let pv = created(
        "",
        "PersistentVolume",
        json!({"metadata": {"name": "v"}, "spec": {"capacity": {"storage": "1Gi"}, "hostPath": {"path": "/d"}}}),
    );
    assert_eq!(pv["spec"]["volumeMode"], "Filesystem");
    assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Retain");
    assert_eq!(pv["spec"]["hostPath"]["type"], "");
    assert_eq!(pv["status"]["phase"], "Pending");
    assert!(pv["status"]["lastPhaseTransitionTime"].is_string());
}

#[test]
fn workload_defaults() {
    let template =
        json!({"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [container()]}});
    let selector = json!({"matchLabels": {"app": "a"}});
    let d = created(
        "apps",
        "Deployment",
        json!({"metadata": meta("d"), "spec": {"selector": selector, "template": template}}),
    );
    assert_eq!(d["spec"]["replicas"], 1);
    assert_eq!(
        d["spec"]["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
    );
    assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(d["spec"]["progressDeadlineSeconds"], 600);
    assert_eq!(d["spec"]["template"]["spec"]["restartPolicy"], "Always");
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"],
        "IfNotPresent"
    );
    assert!(
        d["spec"]["template"]["spec"]
            .get("enableServiceLinks")
            .is_none(),
        "pod-only defaults stay out of templates"
    );
    assert_eq!(d["status"], json!({}));
    assert_eq!(d["metadata"]["generation"], 1);

    let sts = created(
        "apps",
        "StatefulSet",
        json!({"metadata": meta("s"), "spec": {"selector": selector, "template": template, "serviceName": "s",
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"]}}]}}),
    );
    assert_eq!(sts["spec"]["replicas"], 1);
    assert_eq!(sts["spec"]["podManagementPolicy"], "OrderedReady");
    assert_eq!(
        sts["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
    );
    assert_eq!(sts["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(
        sts["spec"]["persistentVolumeClaimRetentionPolicy"],
        json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
    );
    assert_eq!(
        sts["spec"]["volumeClaimTemplates"][0]["spec"]["volumeMode"],
        "Filesystem"
    );
    assert_eq!(
        sts["spec"]["volumeClaimTemplates"][0]["status"],
        json!({"phase": "Pending"})
    );
    assert_eq!(
        sts["status"],
        json!({"replicas": 0, "availableReplicas": 0})
    );

    let ds = created(
        "apps",
        "DaemonSet",
        json!({"metadata": meta("ds"), "spec": {"selector": selector, "template": template}}),
    );
    assert_eq!(
        ds["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
    );
    assert_eq!(ds["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(ds["status"]["desiredNumberScheduled"], 0);

    let rs = created(
        "apps",
        "ReplicaSet",
        json!({"metadata": meta("rs"), "spec": {"selector": selector, "template": template}}),
    );
    assert_eq!(rs["spec"]["replicas"], 1);
    assert_eq!(rs["status"], json!({"replicas": 0}));

    let rc = created(
        "",
        "ReplicationController",
        json!({"metadata": meta("rc"), "spec": {"template": template}}),
    );
    assert_eq!(rc["spec"]["selector"], json!({"app": "a"}));
    assert_eq!(rc["metadata"]["labels"], json!({"app": "a"}));
    assert_eq!(rc["spec"]["replicas"], 1);
}

#[test]
fn jobs_get_defaults_labels_and_selector() {
    let job = created(
        "batch",
        "Job",
        json!({"metadata": meta("pi"), "spec": {"template": {"spec": {"containers": [container()], "restartPolicy": "Never"}}}}),
    );
    let uid = job["metadata"]["uid"].as_str().unwrap().to_string();
    let spec = &job["spec"];
    assert_eq!(spec["completions"], 1);
    assert_eq!(spec["parallelism"], 1);
    assert_eq!(spec["backoffLimit"], 6);
    assert_eq!(spec["completionMode"], "NonIndexed");
    assert_eq!(spec["suspend"], false);
    assert_eq!(spec["manualSelector"], false);
    assert_eq!(spec["podReplacementPolicy"], "TerminatingOrFailed");
    let labels = json!({
        "batch.kubernetes.io/controller-uid": uid,
        "batch.kubernetes.io/job-name": "pi",
        "controller-uid": uid,
        "job-name": "pi",
    });
    assert_eq!(spec["template"]["metadata"]["labels"], labels);
    assert_eq!(
        spec["selector"],
        json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}})
    );
    assert_eq!(job["metadata"]["labels"], labels);
    assert_eq!(job["status"], json!({}));
    assert_eq!(job["metadata"]["generation"], 1);

    let manual = created(
        "batch",
        "Job",
        json!({"metadata": meta("m"), "spec": {"manualSelector": true, "selector": {"matchLabels": {"a": "b"}},
            "parallelism": 2, "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [container()], "restartPolicy": "Never"}}}}),
    );
    assert_eq!(
        manual["spec"]["template"]["metadata"]["labels"],
        json!({"a": "b"})
    );
    assert!(manual["spec"].get("completions").is_none());

    let cron = created(
        "batch",
        "CronJob",
        json!({"metadata": meta("c"), "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": {"containers": [container()], "restartPolicy": "OnFailure"}}}}}}),
    );
    assert_eq!(cron["spec"]["concurrencyPolicy"], "Allow");
    assert_eq!(cron["spec"]["suspend"], false);
    assert_eq!(cron["spec"]["successfulJobsHistoryLimit"], 3);
    assert_eq!(cron["spec"]["failedJobsHistoryLimit"], 1);
    assert_eq!(
        cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["dnsPolicy"],
        "ClusterFirst"
    );
    assert!(cron["spec"]["jobTemplate"]["spec"]
        .get("backoffLimit")
        .is_none());
}

#[test]
fn hpa_defaults() {
    let hpa = created(
        "autoscaling",
        "HorizontalPodAutoscaler",
        json!({"metadata": meta("h"), "spec": {"maxReplicas": 5, "scaleTargetRef": {"kind": "Deployment", "name": "d", "apiVersion": "apps/v1"},
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}}}),
    );
    assert_eq!(hpa["spec"]["minReplicas"], 1);
    assert_eq!(
        hpa["spec"]["metrics"],
        json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}])
    );
    assert_eq!(
        hpa["spec"]["behavior"]["scaleDown"],
        json!({"stabilizationWindowSeconds": 60, "selectPolicy": "Max",
            "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]})
    );
    assert_eq!(
        hpa["spec"]["behavior"]["scaleUp"]["policies"][0]["type"],
        "Pods"
    );
    assert_eq!(hpa["status"], json!({"desiredReplicas": 0}));
}

#[test]
fn binding_subjects_get_their_api_group() {
    let rb = created(
        "rbac.authorization.k8s.io",
        "RoleBinding",
        json!({"metadata": meta("rb"), "roleRef": {"kind": "Role", "name": "r"}, "subjects": [
            {"kind": "User", "name": "u"}, {"kind": "Group", "name": "g"},
            {"kind": "ServiceAccount", "name": "sa", "namespace": "default"}]}),
    );
    assert_eq!(rb["roleRef"]["apiGroup"], "rbac.authorization.k8s.io");
    assert_eq!(rb["subjects"][0]["apiGroup"], "rbac.authorization.k8s.io");
    assert_eq!(rb["subjects"][1]["apiGroup"], "rbac.authorization.k8s.io");
    assert!(rb["subjects"][2].get("apiGroup").is_none());
}

#[test]
fn limit_range_defaults() {
    let lr = created(
        "",
        "LimitRange",
        json!({"metadata": meta("l"), "spec": {"limits": [
            {"type": "Container", "max": {"cpu": "2"}, "default": {"memory": "256Mi"}, "min": {"cpu": "100m", "memory": "1Mi"}},
            {"type": "Pod", "max": {"cpu": "4"}}]}}),
    );
    let c = &lr["spec"]["limits"][0];
    assert_eq!(c["default"], json!({"cpu": "2", "memory": "256Mi"}));
    assert_eq!(c["defaultRequest"], json!({"cpu": "2", "memory": "256Mi"}));
    assert!(lr["spec"]["limits"][1].get("default").is_none());
}

#[test]
fn smaller_kinds() {
    let slice = created(
        "discovery.k8s.io",
        "EndpointSlice",
        json!({"metadata": meta("e"), "addressType": "IPv4", "endpoints": [], "ports": [{"port": 80}]}),
    );
    assert_eq!(
        slice["ports"][0],
        json!({"port": 80, "name": "", "protocol": "TCP"})
    );
    assert_eq!(slice["metadata"]["generation"], 1);
    let pc = created(
        "scheduling.k8s.io",
        "PriorityClass",
        json!({"metadata": {"name": "high"}, "value": 1000}),
    );
    assert_eq!(pc["preemptionPolicy"], "PreemptLowerPriority");
    let ep = created(
        "",
        "Endpoints",
        json!({"metadata": meta("e"), "subsets": [{"ports": [{"port": 80}]}]}),
    );
    assert_eq!(ep["subsets"][0]["ports"][0]["protocol"], "TCP");
    let pdb = created(
        "policy",
        "PodDisruptionBudget",
        json!({"metadata": meta("p"), "spec": {"minAvailable": 1}}),
    );
    assert_eq!(pdb["metadata"]["generation"], 1);
    assert_eq!(pdb["status"]["expectedPods"], 0);
}

#[test]
fn generation_moves_only_with_the_spec_and_status_only_through_status() {
    let template =
        json!({"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [container()]}});
    let old = created(
        "apps",
        "Deployment",
        json!({"metadata": meta("d"), "spec": {"selector": {"matchLabels": {"app": "a"}}, "template": template}}),
    );
    let mut old = old;
    old["status"] = json!({"replicas": 3});
    // A label change: same generation.
    let mut new = old.clone();
    new["metadata"]["labels"] = json!({"x": "y"});
    new["status"] = json!({"replicas": 9});
    let put = updated("apps", "Deployment", &old, new, "");
    assert_eq!(put["metadata"]["generation"], 1);
    assert_eq!(put["status"], json!({"replicas": 3}), "status kept");
    // A spec change (or an annotation, for a Deployment): bumped.
    let mut new = old.clone();
    new["spec"]["replicas"] = json!(4);
    assert_eq!(
        updated("apps", "Deployment", &old, new, "")["metadata"]["generation"],
        2
    );
    let mut new = old.clone();
    new["metadata"]["annotations"] = json!({"a": "b"});
    assert_eq!(
        updated("apps", "Deployment", &old, new, "")["metadata"]["generation"],
        2
    );
    // A request cannot set the generation.
    let mut new = old.clone();
    new["metadata"]["generation"] = json!(42);
    assert_eq!(
        updated("apps", "Deployment", &old, new, "")["metadata"]["generation"],
        1
    );
    // Through /status only the status changes.
    let mut new = old.clone();
    new["spec"]["replicas"] = json!(7);
    new["status"] = json!({"replicas": 7});
    let st = updated("apps", "Deployment", &old, new, "status");
    assert_eq!(st["spec"]["replicas"], 1);
    assert_eq!(st["status"], json!({"replicas": 7}));
    assert_eq!(st["metadata"]["generation"], 1);
    // A ConfigMap never gets one.
    let cm = created(
        "",
        "ConfigMap",
        json!({"metadata": meta("c"), "data": {"a": "b"}}),
    );
    let mut new = cm.clone();
    new["data"] = json!({"a": "c"});
    let cm2 = updated("", "ConfigMap", &cm, new, "");
    assert!(cm2["metadata"].get("generation").is_none());
}

#[test]
fn defaults_are_idempotent() {
    // Applying the defaults to a defaulted object changes nothing, so an
    // update that sends back what it read is not a change.
    let template =
        json!({"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [container()]}});
    for (group, kind, body) in [
        (
            "",
            "Pod",
            json!({"metadata": meta("p"), "spec": {"containers": [container()]}}),
        ),
        (
            "",
            "Service",
            json!({"metadata": meta("s"), "spec": {"ports": [{"port": 80}]}}),
        ),
        (
            "apps",
            "Deployment",
            json!({"metadata": meta("d"), "spec": {"selector": {}, "template": template}}),
        ),
        (
            "batch",
            "Job",
            json!({"metadata": meta("j"), "spec": {"template": template}}),
        ),
        (
            "",
            "Secret",
            json!({"metadata": meta("s"), "stringData": {"a": "b"}}),
        ),
    ] {
        let once = created(group, kind, body);
        let mut twice = once.clone();
        apply(&def(group, kind), &mut twice);
        assert_eq!(once, twice, "{kind}");
    }
}

#[test]
fn a_deployment_status_write_may_change_annotations_not_labels() {
    let template =
        json!({"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [container()]}});
    let old = created(
        "apps",
        "Deployment",
        json!({"metadata": meta("d"), "spec": {"selector": {"matchLabels": {"app": "a"}}, "template": template}}),
    );
    let mut new = old.clone();
    new["metadata"]["annotations"] = json!({"deployment.kubernetes.io/revision": "1"});
    new["metadata"]["labels"] = json!({"x": "y"});
    let st = updated("apps", "Deployment", &old, new, "status");
    assert_eq!(
        st["metadata"]["annotations"],
        json!({"deployment.kubernetes.io/revision": "1"})
    );
    assert!(st["metadata"].get("labels").is_none());
    assert_eq!(st["metadata"]["generation"], 1);
}

#[test]
fn the_newer_kinds_keep_generations_and_templates_are_defaulted() {
    let pt = created(
        "",
        "PodTemplate",
        json!({"metadata": meta("t"), "template": {"spec": {"containers": [container()]}}}),
    );
    assert_eq!(pt["template"]["spec"]["restartPolicy"], "Always");
    assert_eq!(pt["metadata"]["generation"], 1);
    let ing = created(
        "networking.k8s.io",
        "Ingress",
        json!({"metadata": meta("i"), "spec": {"defaultBackend": {"service": {"name": "s", "port": {"number": 80}}}}}),
    );
    assert_eq!(ing["metadata"]["generation"], 1);
    assert_eq!(ing["status"], json!({"loadBalancer": {}}));
    let np = created(
        "networking.k8s.io",
        "NetworkPolicy",
        json!({"metadata": meta("n"), "spec": {"podSelector": {}}}),
    );
    assert_eq!(np["metadata"]["generation"], 1);
}
