//! StatefulSets end to end on a whole one-node cluster with the real
//! kubectl: pods come up in order (each Running and Ready before the next
//! is made), each with its stable name, hostname and labels; `web-1.web`
//! resolves from another pod through the headless Service; a partitioned
//! update touches only the ordinals at or above the partition; `kubectl
//! rollout status|history|undo statefulset` work; `kubectl scale` (the
//! `/scale` subresource) removes the highest ordinal first; each pod has a
//! claim of its own, whose data outlives the pod.
//!
//! Readiness is in the test's hands: a pod is Ready once a file named after
//! its hostname exists in a hostPath directory the test owns.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Cluster, POLL};
use ferrokube_client::testing::wait::wait_until_blocking;
use serde_json::Value;

const NODE: &str = "fk-sts-e2e";

fn manifest(ready: &Path) -> String {
    format!(
        r#"apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  clusterIP: None
  selector: {{app: web}}
  ports: [{{name: http, port: 8080}}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: web}}
spec:
  replicas: 3
  serviceName: web
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: httpd
        image: busybox
        imagePullPolicy: Never
        command: ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"]
        ports: [{{name: http, containerPort: 8080}}]
        readinessProbe:
          exec: {{command: ["sh", "-c", "test -f /ready/$(hostname)"]}}
          periodSeconds: 1
          failureThreshold: 1
        volumeMounts: [{{name: ready, mountPath: /ready}}]
      volumes:
      - name: ready
        hostPath: {{path: {ready}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: client}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: busybox
    imagePullPolicy: Never
    command: ["sh", "-c", "exec sleep 100000"]
"#,
        ready = ready.display()
    )
}

fn json(c: &Cluster, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&c.kubectl_ok(&all)).expect("kubectl json")
}

/// The web pods: name -> the pod.
fn pods(c: &Cluster) -> std::collections::BTreeMap<String, Value> {
    pods_of(c, "app=web")
}

/// The pods matching `selector`: name -> the pod.
fn pods_of(c: &Cluster, selector: &str) -> std::collections::BTreeMap<String, Value> {
    json(c, &["get", "pods", "-l", selector])["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p["metadata"]["name"].as_str()?.to_string(), p.clone())))
        .collect()
}

fn is_ready(p: &Value) -> bool {
    p["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

fn revision(p: &Value) -> String {
    p["metadata"]["labels"]["controller-revision-hash"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn sts_status(c: &Cluster) -> Value {
    json(c, &["get", "statefulset", "web"])["status"].clone()
}

fn make_ready(dir: &Path, pod: &str) {
    std::fs::write(dir.join(pod), "").expect("ready file");
}

#[test]
#[expect(
    clippy::too_many_lines,
    reason = "one scenario: a StatefulSet's life in order (create, resolve, update, scale), each step on the pods of the one before"
)]
fn statefulset_orders_names_resolves_updates_and_scales() {
    let ready = tempfile::tempdir().expect("ready dir");
    let c = Cluster::start_ready_node(NODE, &["--cluster-cidr", "10.98.0.0/16"]);
    let f = c.data_dir().join("sts.yaml");
    std::fs::write(&f, manifest(ready.path())).expect("manifest");
    c.kubectl_ok(&["apply", "-f", f.to_str().expect("path")]);

    // In order: each pod Running and Ready before the next exists.
    for (i, name) in ["web-0", "web-1", "web-2"].iter().enumerate() {
        wait_until_blocking(
            &format!("{name} running"),
            Duration::from_secs(120),
            POLL,
            || {
                pods(&c)
                    .get(*name)
                    .is_some_and(|p| p["status"]["phase"] == "Running")
            },
        );
        // Held not ready, it holds the next one back.
        std::thread::sleep(Duration::from_secs(2));
        let now = pods(&c);
        assert_eq!(
            now.len(),
            i + 1,
            "pods while {name} is not ready: {:?}",
            now.keys()
        );
        make_ready(ready.path(), name);
    }
    c.kubectl_ok(&["rollout", "status", "statefulset/web", "--timeout=120s"]);
    let all = pods(&c);
    // Each pod was made only after the one before turned Ready.
    let ready_at = |p: &Value| {
        p["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "Ready")
            .and_then(|c| c["lastTransitionTime"].as_str())
            .unwrap_or("")
            .to_string()
    };
    for (before, after) in [("web-0", "web-1"), ("web-1", "web-2")] {
        let created = all[after]["metadata"]["creationTimestamp"]
            .as_str()
            .unwrap_or("");
        assert!(
            created >= ready_at(&all[before]).as_str(),
            "{after} created at {created}, before {before} was ready"
        );
    }
    let st = sts_status(&c);
    let first_rev = st["updateRevision"].as_str().unwrap_or("").to_string();
    assert_eq!(st["readyReplicas"], 3, "{st}");
    assert_eq!(st["currentReplicas"], 3, "{st}");
    assert_eq!(st["availableReplicas"], 3, "{st}");
    assert_eq!(st["currentRevision"], first_rev.as_str(), "{st}");
    let w1 = &all["web-1"];
    assert_eq!(w1["spec"]["hostname"], "web-1");
    assert_eq!(w1["spec"]["subdomain"], "web");
    assert_eq!(
        w1["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"],
        "web-1"
    );
    assert_eq!(
        w1["metadata"]["labels"]["apps.kubernetes.io/pod-index"],
        "1"
    );
    assert_eq!(revision(w1), first_rev);
    let events = c.kubectl_ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.kind=StatefulSet",
        "-o",
        "jsonpath={range .items[*]}{.reason}: {.message}{\"\\n\"}{end}",
    ]);
    assert!(
        events.contains("SuccessfulCreate: create Pod web-2 in StatefulSet web successful"),
        "{events}"
    );

    // web-1.web resolves from another pod (the headless Service's records
    // from the pods' hostname and subdomain) and reaches web-1.
    c.kubectl_ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/client",
        "--timeout=120s",
    ]);
    let ip1 = w1["status"]["podIP"].as_str().unwrap_or("").to_string();
    let mut last = String::new();
    let resolved = (0..30).any(|_| {
        let out = c.kubectl(&[
            "exec", "client", "--", "sh", "-c",
            "nslookup web-1.web.default.svc.cluster.local; timeout 5 wget -q -O - http://web-1.web:8080/",
        ]);
        last = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let ok = last.contains(&ip1) && last.lines().any(|l| l.trim() == "web-1");
        if !ok {
            std::thread::sleep(Duration::from_secs(1));
        }
        ok
    });
    assert!(resolved, "web-1.web from the client pod ({ip1}): {last}");

    // A partitioned update: only web-2 (ordinal >= 2) takes the new template.
    let uids: Vec<String> = ["web-0", "web-1"]
        .iter()
        .map(|n| {
            all[*n]["metadata"]["uid"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    c.kubectl_ok(&[
        "patch", "statefulset", "web", "-p",
        r#"{"spec":{"updateStrategy":{"rollingUpdate":{"partition":2}},"template":{"metadata":{"annotations":{"version":"2"}}}}}"#,
    ]);
    let out = c.kubectl_ok(&["rollout", "status", "statefulset/web", "--timeout=120s"]);
    assert!(
        out.contains("partitioned roll out complete: 1 new pods have been updated"),
        "{out}"
    );
    let st = sts_status(&c);
    let second_rev = st["updateRevision"].as_str().unwrap_or("").to_string();
    assert_ne!(second_rev, first_rev);
    assert_eq!(st["currentRevision"], first_rev.as_str(), "{st}");
    assert_eq!(st["updatedReplicas"], 1, "{st}");
    let now = pods(&c);
    assert_eq!(revision(&now["web-2"]), second_rev);
    assert_eq!(now["web-2"]["metadata"]["annotations"]["version"], "2");
    for (n, uid) in ["web-0", "web-1"].iter().zip(&uids) {
        assert_eq!(revision(&now[*n]), first_rev, "{n} was updated");
        assert_eq!(
            now[*n]["metadata"]["uid"].as_str(),
            Some(uid.as_str()),
            "{n} was replaced"
        );
    }

    // History and undo through kubectl.
    let history = c.kubectl_ok(&["rollout", "history", "statefulset/web"]);
    let revs: Vec<&str> = history
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.parse::<u32>().is_ok())
        .collect();
    assert_eq!(revs, ["1", "2"], "{history}");
    let one = c.kubectl_ok(&["rollout", "history", "statefulset/web", "--revision=2"]);
    assert!(
        one.contains("version:\t2") || one.contains("version: 2"),
        "{one}"
    );
    let out = c.kubectl_ok(&["rollout", "undo", "statefulset/web"]);
    assert!(out.contains("rolled back"), "{out}");
    wait_until_blocking(
        "web-2 back at the first revision",
        Duration::from_secs(120),
        POLL,
        || {
            pods(&c).get("web-2").is_some_and(|p| {
                revision(p) == first_rev
                    && is_ready(p)
                    && p["metadata"]["deletionTimestamp"].is_null()
            })
        },
    );
    let st = sts_status(&c);
    assert_eq!(st["updateRevision"], first_rev.as_str(), "{st}");
    let history = c.kubectl_ok(&["rollout", "history", "statefulset/web"]);
    assert!(history.lines().any(|l| l.starts_with("3 ")), "{history}");

    // kubectl scale (the /scale subresource): the highest ordinal goes
    // first, web-1 only once web-2 is gone.
    c.kubectl_ok(&["scale", "statefulset/web", "--replicas=1"]);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let now = pods(&c);
        let leaving = |n: &str| {
            now.get(n)
                .is_none_or(|p| !p["metadata"]["deletionTimestamp"].is_null())
        };
        if leaving("web-1") {
            assert!(
                !now.contains_key("web-2"),
                "web-1 went while web-2 was there: {:?}",
                now.keys()
            );
        }
        if now.keys().map(String::as_str).eq(["web-0"]) {
            break;
        }
        assert!(Instant::now() < deadline, "scale down: {:?}", now.keys());
        std::thread::sleep(Duration::from_millis(200));
    }
    let scale: Value = serde_json::from_str(&c.kubectl_ok(&[
        "get",
        "--raw",
        "/apis/apps/v1/namespaces/default/statefulsets/web/scale",
    ]))
    .expect("scale");
    assert_eq!(scale["spec"]["replicas"], 1, "{scale}");
    wait_until_blocking("status 1 replica", Duration::from_secs(30), POLL, || {
        sts_status(&c)["replicas"] == 1
    });

    c.kubectl_ok(&["delete", "statefulset", "web"]);
    c.kubectl_ok(&["delete", "pod", "client", "--grace-period=1"]);
    wait_until_blocking("the web pods to go", Duration::from_secs(60), POLL, || {
        pods(&c).is_empty()
    });
}

/// A StatefulSet with a claim template on the default StorageClass
/// (`local-path`): each pod its own bound claim; a file written in
/// `data-1`'s volume is still there after `kubectl delete pod data-1`; with
/// `whenScaled: Delete` a claim scaled away goes with its pod, with
/// `whenDeleted: Delete` the claims go with the set.
#[test]
#[expect(
    clippy::too_many_lines,
    reason = "one scenario: the claims' retention policies followed through scale-down and deletion of one set"
)]
fn statefulset_claims_outlive_their_pods() {
    let c = Cluster::start_ready_node(NODE, &["--cluster-cidr", "10.98.0.0/16"]);
    let manifest = r#"apiVersion: v1
kind: Service
metadata: {name: data}
spec:
  clusterIP: None
  selector: {app: data}
  ports: [{name: none, port: 80}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: data}
spec:
  replicas: 3
  serviceName: data
  selector: {matchLabels: {app: data}}
  persistentVolumeClaimRetentionPolicy: {whenDeleted: Delete, whenScaled: Retain}
  template:
    metadata: {labels: {app: data}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: busybox
        imagePullPolicy: Never
        command: ["sh", "-c", "exec sleep 100000"]
        volumeMounts: [{name: vol, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: vol}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 64Mi}}
"#;
    let f = c.data_dir().join("data.yaml");
    std::fs::write(&f, manifest).expect("manifest");
    c.kubectl_ok(&["apply", "-f", f.to_str().expect("path")]);
    c.kubectl_ok(&["rollout", "status", "statefulset/data", "--timeout=180s"]);

    // In order: each pod made after the one before turned Ready.
    let all = pods_of(&c, "app=data");
    for (before, after) in [("data-0", "data-1"), ("data-1", "data-2")] {
        let ready_at = all[before]["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "Ready")
            .and_then(|c| c["lastTransitionTime"].as_str())
            .unwrap_or("")
            .to_string();
        let created = all[after]["metadata"]["creationTimestamp"]
            .as_str()
            .unwrap_or("");
        assert!(
            created >= ready_at.as_str(),
            "{after} made before {before} was ready"
        );
    }

    // One bound claim per pod, owned by the set (whenDeleted: Delete).
    let uid = json(&c, &["get", "statefulset", "data"])["metadata"]["uid"]
        .as_str()
        .unwrap_or("")
        .to_string();
    for i in 0..3 {
        let claim = json(&c, &["get", "pvc", &format!("vol-data-{i}")]);
        assert_eq!(claim["status"]["phase"], "Bound", "{claim}");
        assert_eq!(claim["metadata"]["labels"]["app"], "data");
        let owner = &claim["metadata"]["ownerReferences"][0];
        assert_eq!(owner["uid"], uid.as_str(), "{claim}");
        assert_eq!(owner["kind"], "StatefulSet");
        let pod = json(&c, &["get", "pod", &format!("data-{i}")]);
        let vol = pod["spec"]["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|v| v["name"] == "vol")
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            vol["persistentVolumeClaim"]["claimName"],
            format!("vol-data-{i}")
        );
    }

    c.kubectl_ok(&["exec", "data-1", "--", "sh", "-c", "echo kept > /data/file"]);
    let old = json(&c, &["get", "pod", "data-1"])["metadata"]["uid"].clone();
    c.kubectl_ok(&["delete", "pod", "data-1"]);
    wait_until_blocking(
        "data-1 back and ready",
        Duration::from_secs(120),
        POLL,
        || {
            let p = pods_of(&c, "app=data");
            p.get("data-1")
                .is_some_and(|p| p["metadata"]["uid"] != old && is_ready(p))
        },
    );
    let read = c.kubectl_ok(&["exec", "data-1", "--", "cat", "/data/file"]);
    assert_eq!(read.trim(), "kept");
    // data-0 has a volume of its own.
    let other = c.kubectl(&["exec", "data-0", "--", "cat", "/data/file"]);
    assert!(!other.status.success(), "data-0 sees data-1's file");

    // whenScaled: Delete — scaled away, data-2's claim goes with its pod;
    // the others stay.
    c.kubectl_ok(&[
        "patch",
        "statefulset",
        "data",
        "-p",
        r#"{"spec":{"persistentVolumeClaimRetentionPolicy":{"whenScaled":"Delete"}}}"#,
    ]);
    c.kubectl_ok(&["scale", "statefulset/data", "--replicas=2"]);
    wait_until_blocking("vol-data-2 to go", Duration::from_secs(120), POLL, || {
        !c.kubectl_ok(&["get", "pvc", "-o", "name"])
            .contains("vol-data-2")
    });
    let left = c.kubectl_ok(&["get", "pvc", "-o", "name"]);
    assert!(
        left.contains("vol-data-0") && left.contains("vol-data-1"),
        "{left}"
    );

    // whenDeleted: Delete — the claims go with the set.
    c.kubectl_ok(&["delete", "statefulset", "data"]);
    wait_until_blocking("the claims to go", Duration::from_secs(120), POLL, || {
        c.kubectl_ok(&["get", "pvc", "-o", "name"])
            .trim()
            .is_empty()
    });
    wait_until_blocking("the pods to go", Duration::from_secs(60), POLL, || {
        pods_of(&c, "app=data").is_empty()
    });
}
