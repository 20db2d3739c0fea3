//! Defaults and initial state of new objects as a user sees them with
//! `kubectl get -o json`, the same whichever client and body encoding made
//! them: the official Python client (JSON bodies) and kubectl's generators
//! (protobuf bodies). API level only: no node, no pod runs.

mod common;

use std::process::Command;

use common::POLL;
use ferrokube_client::testing::wait::wait_until_blocking;
use serde_json::{json, Value};

const NS: &str = "defaults";

fn get(c: &common::Cluster, kind: &str, name: &str) -> Value {
    let out = c.kubectl_ok(&["-n", NS, "get", kind, name, "-o", "json"]);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{kind}/{name}: {e}: {out}"))
}

fn assert_no_generation(o: &Value, what: &str) {
    assert!(
        o["metadata"].get("generation").is_none(),
        "{what} has no generation in Kubernetes: {}",
        o["metadata"]
    );
}

fn check_container(c: &Value, what: &str) {
    assert_eq!(c["imagePullPolicy"], "IfNotPresent", "{what}: {c}");
    assert_eq!(
        c["terminationMessagePath"], "/dev/termination-log",
        "{what}"
    );
    assert_eq!(c["terminationMessagePolicy"], "File", "{what}");
    assert!(c["resources"].is_object(), "{what}");
    for p in c["ports"].as_array().into_iter().flatten() {
        assert_eq!(p["protocol"], "TCP", "{what}: {p}");
    }
}

fn check_pod_spec(spec: &Value, what: &str, restart: &str) {
    assert_eq!(spec["restartPolicy"], restart, "{what}");
    assert_eq!(spec["dnsPolicy"], "ClusterFirst", "{what}");
    assert_eq!(spec["schedulerName"], "default-scheduler", "{what}");
    assert_eq!(spec["securityContext"], json!({}), "{what}");
    assert_eq!(spec["terminationGracePeriodSeconds"], 30, "{what}");
    for c in spec["containers"].as_array().expect("containers") {
        check_container(c, what);
    }
}

fn check_template(o: &Value, what: &str, restart: &str) {
    let spec = &o["spec"]["template"]["spec"];
    check_pod_spec(spec, what, restart);
    assert!(
        spec.get("enableServiceLinks").is_none() && spec.get("priority").is_none(),
        "{what}: pod-only defaults stay out of templates: {spec}"
    );
}

fn check_pod(o: &Value, what: &str, qos: &str) {
    let spec = &o["spec"];
    check_pod_spec(
        spec,
        what,
        if what.starts_with("py") {
            "Always"
        } else {
            "Never"
        },
    );
    assert_eq!(spec["enableServiceLinks"], true, "{what}");
    assert_eq!(spec["priority"], 0, "{what}");
    assert_eq!(spec["preemptionPolicy"], "PreemptLowerPriority", "{what}");
    assert_eq!(spec["serviceAccountName"], "default", "{what}");
    assert_eq!(
        spec["tolerations"].as_array().map(Vec::len),
        Some(2),
        "{what}"
    );
    assert_eq!(o["status"]["phase"], "Pending", "{what}");
    assert_eq!(o["status"]["qosClass"], qos, "{what}");
}

fn check_deployment(o: &Value, what: &str) {
    assert_eq!(o["metadata"]["generation"], 1, "{what}");
    let spec = &o["spec"];
    assert_eq!(spec["replicas"], 1, "{what}");
    assert_eq!(
        spec["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}),
        "{what}"
    );
    assert_eq!(spec["revisionHistoryLimit"], 10, "{what}");
    assert_eq!(spec["progressDeadlineSeconds"], 600, "{what}");
    check_template(o, what, "Always");
}

fn check_job(o: &Value, what: &str, name: &str) {
    assert_eq!(o["metadata"]["generation"], 1, "{what}");
    let uid = o["metadata"]["uid"].as_str().expect("uid");
    let spec = &o["spec"];
    for (k, v) in [
        ("completions", json!(1)),
        ("parallelism", json!(1)),
        ("backoffLimit", json!(6)),
        ("completionMode", json!("NonIndexed")),
        ("suspend", json!(false)),
        ("manualSelector", json!(false)),
        ("podReplacementPolicy", json!("TerminatingOrFailed")),
    ] {
        assert_eq!(spec[k], v, "{what}: {k}");
    }
    let labels = &spec["template"]["metadata"]["labels"];
    assert_eq!(labels["batch.kubernetes.io/controller-uid"], uid, "{what}");
    assert_eq!(labels["controller-uid"], uid, "{what}");
    assert_eq!(labels["batch.kubernetes.io/job-name"], name, "{what}");
    assert_eq!(labels["job-name"], name, "{what}");
    assert_eq!(
        spec["selector"],
        json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}),
        "{what}"
    );
    assert_eq!(o["metadata"]["labels"]["job-name"], name, "{what}");
    check_template(o, what, "Never");
}

fn check_cron_job(o: &Value, what: &str) {
    assert_eq!(o["metadata"]["generation"], 1, "{what}");
    let spec = &o["spec"];
    assert_eq!(spec["concurrencyPolicy"], "Allow", "{what}");
    assert_eq!(spec["suspend"], false, "{what}");
    assert_eq!(spec["successfulJobsHistoryLimit"], 3, "{what}");
    assert_eq!(spec["failedJobsHistoryLimit"], 1, "{what}");
    check_pod_spec(
        &spec["jobTemplate"]["spec"]["template"]["spec"],
        what,
        "OnFailure",
    );
}

fn check_secret(o: &Value, what: &str) {
    assert_eq!(o["type"], "Opaque", "{what}");
    assert_eq!(o["data"], json!({"password": "czNjcmV0"}), "{what}");
    assert!(o.get("stringData").is_none(), "{what}");
    assert_no_generation(o, what);
}

fn check_service(o: &Value, what: &str) {
    let spec = &o["spec"];
    assert_eq!(spec["type"], "ClusterIP", "{what}");
    assert_eq!(spec["sessionAffinity"], "None", "{what}");
    assert_eq!(spec["internalTrafficPolicy"], "Cluster", "{what}");
    assert_eq!(spec["ipFamilyPolicy"], "SingleStack", "{what}");
    assert_eq!(spec["ports"][0]["protocol"], "TCP", "{what}");
    assert!(spec["ports"][0]["targetPort"].is_number(), "{what}");
    assert_eq!(o["status"], json!({"loadBalancer": {}}), "{what}");
    assert_no_generation(o, what);
}

fn check_role_binding(o: &Value, what: &str) {
    assert_eq!(
        o["roleRef"]["apiGroup"], "rbac.authorization.k8s.io",
        "{what}"
    );
    let subjects = o["subjects"].as_array().expect("subjects");
    for s in subjects {
        let want = if s["kind"] == "ServiceAccount" {
            json!(null)
        } else {
            json!("rbac.authorization.k8s.io")
        };
        // A ServiceAccount subject's group is the core group: empty, so
        // not written.
        let got = s.get("apiGroup").cloned().unwrap_or(Value::Null);
        let got = if got == json!("") { Value::Null } else { got };
        assert_eq!(got, want, "{what}: {s}");
    }
    assert_no_generation(o, what);
}

#[test]
#[expect(
    clippy::too_many_lines,
    reason = "one pass over many kinds, each checked for the defaults Kubernetes gives it, on one server"
)]
fn objects_get_kubernetes_defaults_whatever_the_client() {
    let c = common::Cluster::start();

    // kubectl's generators send protobuf; say so, so the test proves what
    // it claims.
    let out = c.kubectl(&["create", "namespace", NS, "-v=8"]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("application/vnd.kubernetes.protobuf"),
        "kubectl did not send protobuf:\n{}",
        common::tail(&log, 40)
    );
    let ns: Value =
        serde_json::from_str(&c.kubectl_ok(&["get", "namespace", NS, "-o", "json"])).unwrap();
    assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
    assert_eq!(ns["status"], json!({"phase": "Active"}));
    assert_eq!(ns["metadata"]["labels"]["kubernetes.io/metadata.name"], NS);
    assert_no_generation(&ns, "namespace");

    // The system priority classes exist, as in every Kubernetes cluster.
    let pcs = c.kubectl_ok(&["get", "priorityclasses", "-o", "name"]);
    for name in ["system-cluster-critical", "system-node-critical"] {
        assert!(pcs.contains(name), "{pcs}");
    }

    // The same kinds through kubectl (protobuf)...
    for args in [
        &[
            "run",
            "kc-pod",
            "--image=busybox:1.36",
            "--restart=Never",
            "--port=8080",
        ][..],
        &[
            "create",
            "deployment",
            "kc-deployment",
            "--image=busybox:1.36",
            "--port=8080",
        ],
        &["create", "job", "kc-job", "--image=busybox:1.36"],
        &[
            "create",
            "cronjob",
            "kc-cronjob",
            "--image=busybox:1.36",
            "--schedule=*/5 * * * *",
        ],
        &[
            "create",
            "secret",
            "generic",
            "kc-secret",
            "--from-literal=password=s3cret",
        ],
        &[
            "create",
            "service",
            "clusterip",
            "kc-service",
            "--tcp=80:8080",
        ],
        &["create", "configmap", "kc-configmap", "--from-literal=a=b"],
        &[
            "create",
            "rolebinding",
            "kc-rolebinding",
            "--role=r",
            "--user=u",
            "--serviceaccount=defaults:sa",
        ],
        &[
            "create",
            "poddisruptionbudget",
            "kc-pdb",
            "--selector=app=x",
            "--min-available=1",
        ],
    ] {
        let mut full = vec!["-n", NS];
        full.extend_from_slice(args);
        c.kubectl_ok(&full);
    }
    // ...and through the Python client (JSON).
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/defaults_create.py"
    );
    let out = Command::new("python3")
        .arg(script)
        .arg(c.kubeconfig())
        .arg(NS)
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("created: ok"),
        "python client failed:\n{stdout}\n{}\n--- server log ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        common::tail(&c.log(), 30)
    );

    // Pods.
    let kc_pod = get(&c, "pod", "kc-pod");
    check_pod(&kc_pod, "kc-pod", "BestEffort");
    let py_pod = get(&c, "pod", "py-pod");
    check_pod(&py_pod, "py-pod", "Guaranteed");
    let pc = &py_pod["spec"]["containers"][0];
    assert_eq!(
        pc["resources"]["requests"],
        json!({"cpu": "100m", "memory": "32Mi"}),
        "requests default to limits"
    );
    assert_eq!(
        pc["livenessProbe"],
        json!({"httpGet": {"port": 8080, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
            "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
    );
    assert_eq!(pc["readinessProbe"]["failureThreshold"], 3);
    for pod in [&kc_pod, &py_pod] {
        assert_eq!(pod["metadata"]["generation"], 1);
    }

    // Workloads.
    check_deployment(&get(&c, "deployment", "kc-deployment"), "kc-deployment");
    check_deployment(&get(&c, "deployment", "py-deployment"), "py-deployment");
    check_job(&get(&c, "job", "kc-job"), "kc-job", "kc-job");
    check_job(&get(&c, "job", "py-job"), "py-job", "py-job");
    check_cron_job(&get(&c, "cronjob", "kc-cronjob"), "kc-cronjob");
    check_cron_job(&get(&c, "cronjob", "py-cronjob"), "py-cronjob");
    let sts = get(&c, "statefulset", "py-statefulset");
    assert_eq!(sts["spec"]["podManagementPolicy"], "OrderedReady");
    assert_eq!(
        sts["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
    );
    assert_eq!(sts["spec"]["replicas"], 1);
    assert_eq!(sts["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(
        sts["spec"]["persistentVolumeClaimRetentionPolicy"],
        json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
    );
    assert_eq!(sts["metadata"]["generation"], 1);
    check_template(&sts, "py-statefulset", "Always");
    let ds = get(&c, "daemonset", "py-daemonset");
    assert_eq!(
        ds["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}})
    );
    assert_eq!(ds["spec"]["revisionHistoryLimit"], 10);
    check_template(&ds, "py-daemonset", "Always");

    // Secrets, Services, ConfigMaps, RoleBindings.
    check_secret(&get(&c, "secret", "kc-secret"), "kc-secret");
    check_secret(&get(&c, "secret", "py-secret"), "py-secret");
    check_service(&get(&c, "service", "kc-service"), "kc-service");
    check_service(&get(&c, "service", "py-service"), "py-service");
    for name in ["kc-configmap", "py-configmap"] {
        assert_no_generation(&get(&c, "configmap", name), name);
    }
    check_role_binding(&get(&c, "rolebinding", "kc-rolebinding"), "kc-rolebinding");
    check_role_binding(&get(&c, "rolebinding", "py-rolebinding"), "py-rolebinding");

    // Claims, limits, autoscalers, disruption budgets.
    let pvc = get(&c, "pvc", "py-pvc");
    assert_eq!(pvc["spec"]["volumeMode"], "Filesystem");
    assert_eq!(pvc["status"]["phase"], "Pending");
    assert_eq!(
        pvc["metadata"]["finalizers"],
        json!(["kubernetes.io/pvc-protection"])
    );
    let pv_name = format!("py-pv-{NS}");
    let get_pv = || -> Value {
        serde_json::from_str(&c.kubectl_ok(&["get", "pv", &pv_name, "-o", "json"])).unwrap()
    };
    let pv = get_pv();
    assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Retain");
    assert_eq!(pv["spec"]["volumeMode"], "Filesystem");
    assert_eq!(pv["spec"]["hostPath"]["type"], "");
    // Created Pending; the PV controller then finds no claim for it.
    wait_until_blocking(
        "the volume to be Available",
        std::time::Duration::from_secs(30),
        POLL,
        || get_pv()["status"]["phase"] == "Available",
    );
    assert_eq!(
        pv["metadata"]["finalizers"],
        json!(["kubernetes.io/pv-protection"])
    );
    // Unused, they go when deleted (kubectl waits for the finalizers); a
    // claim a pod uses stays until the pod is gone.
    c.kubectl_ok(&["-n", NS, "delete", "pvc", "py-pvc", "--timeout=60s"]);
    c.kubectl_ok(&["delete", "pv", &pv_name, "--timeout=60s"]);
    c.kubectl_ok(&["-n", NS, "delete", "pvc", "py-used", "--wait=false"]);
    std::thread::sleep(std::time::Duration::from_secs(2));
    let used = get(&c, "pvc", "py-used");
    assert!(
        used["metadata"]["deletionTimestamp"].is_string(),
        "the claim a pod uses waits: {}",
        used["metadata"]
    );
    c.kubectl_ok(&[
        "-n",
        NS,
        "delete",
        "pod",
        "py-user",
        "--grace-period=0",
        "--force",
    ]);
    c.kubectl_ok(&[
        "-n",
        NS,
        "wait",
        "--for=delete",
        "pvc/py-used",
        "--timeout=60s",
    ]);
    let lr = get(&c, "limitrange", "py-limitrange");
    assert_eq!(
        lr["spec"]["limits"][0]["defaultRequest"],
        json!({"memory": "64Mi"})
    );
    let hpa = get(&c, "hpa", "py-hpa");
    assert_eq!(hpa["spec"]["minReplicas"], 1);
    assert_eq!(
        hpa["spec"]["metrics"],
        json!([{"type": "Resource", "resource": {"name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": 80}}}])
    );
    let pdb = get(&c, "pdb", "kc-pdb");
    assert_eq!(pdb["metadata"]["generation"], 1);

    // An update that changes only labels keeps a Deployment's generation; a
    // template change moves it.
    c.kubectl_ok(&["-n", NS, "label", "deployment", "kc-deployment", "x=y"]);
    assert_eq!(
        get(&c, "deployment", "kc-deployment")["metadata"]["generation"],
        1
    );
    c.kubectl_ok(&[
        "-n",
        NS,
        "set",
        "image",
        "deployment/kc-deployment",
        "busybox=busybox:1.37",
    ]);
    assert_eq!(
        get(&c, "deployment", "kc-deployment")["metadata"]["generation"],
        2
    );
    // A Service changed keeps having no generation.
    c.kubectl_ok(&["-n", NS, "label", "service", "kc-service", "x=y"]);
    assert_no_generation(&get(&c, "service", "kc-service"), "kc-service");

    c.kubectl_ok(&["delete", "namespace", NS, "--wait=false"]);
}
