//! End-to-end: pods bound to the node run in a real containerd with runc, CNI and the
//! busybox image; their status, restarts and deletion are what a user would see.

mod common;

use std::time::{Duration, Instant};

use common::{with_env, NODE};
use ferrokube_client::testing::wait;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, DeleteParams, PostParams};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn pod(name: &str, spec: serde_json::Value) -> Pod {
    let mut spec = spec;
    spec["nodeName"] = NODE.into();
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    }))
    .expect("pod JSON")
}

async fn http_get(ip: &str, port: u16, path: &str) -> Option<String> {
    let fut = async {
        let mut s = tokio::net::TcpStream::connect((ip, port)).await.ok()?;
        let req = format!("GET {path} HTTP/1.0\r\nHost: {ip}\r\n\r\n");
        s.write_all(req.as_bytes()).await.ok()?;
        let mut body = String::new();
        s.read_to_string(&mut body).await.ok()?;
        Some(body)
    };
    tokio::time::timeout(Duration::from_secs(3), fut)
        .await
        .ok()
        .flatten()
}

fn container_state(p: &Pod) -> Option<k8s_openapi::api::core::v1::ContainerStatus> {
    p.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .first()
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_runs_is_reachable_on_its_ip_and_is_deleted_gracefully() {
    with_env(11, async |env| {
        let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), "default");
        let cm: ConfigMap = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web-config"}, "data": {"greeting": "hello-from-configmap"}
        }))
        .unwrap();
        cms.create(&PostParams::default(), &cm).await.expect("create configmap");

        let pods: Api<Pod> = Api::namespaced(env.client.clone(), "default");
        let script = "mkdir -p /www && echo hello-from-pod > /www/index.html \
             && cp /etc/resolv.conf /www/resolv && echo \"$MY_NAME $GREETING\" > /www/env \
             && exec httpd -f -p 8080 -h /www";
        let p = pod(
            "web",
            serde_json::json!({
                "terminationGracePeriodSeconds": 2,
                "containers": [{
                    "name": "web",
                    "image": "busybox:1.35",
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["sh", "-c", script],
                    "env": [
                        {"name": "MY_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                        {"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "web-config", "key": "greeting"}}}
                    ]
                }]
            }),
        );
        let t0 = Instant::now();
        let created = pods.create(&PostParams::default(), &p).await.expect("create pod");
        let uid = created.metadata.uid.clone().unwrap();
        let ip = env
            .wait_pod("default", "web", 60, "Running with a pod IP", |p| {
                let st = p.status.as_ref()?;
                (st.phase.as_deref() == Some("Running")).then_some(())?;
                st.pod_ip.clone()
            })
            .await;
        eprintln!("e2e: pod Running after {:?} at {ip}", t0.elapsed());
        let subnet_prefix = env.subnet.trim_end_matches("0/24");
        assert!(ip.starts_with(subnet_prefix), "pod IP {ip} is not in {}", env.subnet);

        // Status a user sees.
        let p = pods.get("web").await.unwrap();
        let st = p.status.clone().unwrap();
        assert!(st.host_ip.is_some());
        let cs = container_state(&p).unwrap();
        assert!(cs.container_id.as_deref().unwrap_or("").starts_with("containerd://"), "{cs:?}");
        assert!(!cs.image_id.is_empty());
        assert_eq!(cs.restart_count, 0);
        for cond in ["PodScheduled", "Initialized", "ContainersReady", "Ready"] {
            assert!(
                st.conditions.iter().flatten().any(|c| c.type_ == cond && c.status == "True"),
                "condition {cond} not True: {:?}",
                st.conditions
            );
        }

        // Reachable from the node: the pod's httpd answers on its IP.
        let deadline = Instant::now() + Duration::from_secs(20);
        let body = loop {
            if let Some(b) = http_get(&ip, 8080, "/").await {
                if b.contains("hello-from-pod") {
                    break b;
                }
            }
            assert!(Instant::now() < deadline, "httpd on {ip}:8080 did not answer");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert!(body.starts_with("HTTP/1.") && body.contains(" 200 OK"), "{body}");
        let resolv = http_get(&ip, 8080, "/resolv").await.unwrap_or_default();
        assert!(resolv.contains("nameserver 10.43.0.10"), "{resolv}");
        assert!(resolv.contains("search default.svc.cluster.local svc.cluster.local cluster.local"), "{resolv}");
        assert!(resolv.contains("ndots:5"), "{resolv}");
        let envs = http_get(&ip, 8080, "/env").await.unwrap_or_default();
        assert!(envs.contains("web hello-from-configmap"), "{envs}");

        // Graceful delete: containers stop, the sandbox goes, the pod leaves the API.
        let t1 = Instant::now();
        pods.delete("web", &DeleteParams::default()).await.expect("delete");
        env.wait_gone("default", "web", 30).await;
        eprintln!("e2e: pod removed {:?} after delete", t1.elapsed());
        assert_eq!(env.sandboxes_of(&uid).await, 0, "sandbox left behind");
        assert!(http_get(&ip, 8080, "/").await.is_none(), "pod IP still answers");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_container_goes_to_crash_loop_back_off() {
    with_env(12, async |env| {
        let pods: Api<Pod> = Api::namespaced(env.client.clone(), "default");
        let p = pod(
            "crasher",
            serde_json::json!({
                "terminationGracePeriodSeconds": 1,
                "containers": [{
                    "name": "crash", "image": "busybox:1.35", "imagePullPolicy": "IfNotPresent",
                    "command": ["sh", "-c", "echo failing; exit 3"]
                }]
            }),
        );
        let uid = pods
            .create(&PostParams::default(), &p)
            .await
            .expect("create")
            .metadata
            .uid
            .unwrap();
        let t0 = Instant::now();
        let cs = env
            .wait_pod(
                "default",
                "crasher",
                60,
                "CrashLoopBackOff with 2 restarts",
                |p| {
                    let cs = container_state(p)?;
                    let waiting = cs.state.as_ref()?.waiting.as_ref()?;
                    (waiting.reason.as_deref() == Some("CrashLoopBackOff") && cs.restart_count >= 2)
                        .then_some(cs)
                },
            )
            .await;
        eprintln!(
            "e2e: CrashLoopBackOff with restartCount {} after {:?}",
            cs.restart_count,
            t0.elapsed()
        );
        let last = cs
            .last_state
            .and_then(|l| l.terminated)
            .expect("lastState.terminated");
        assert_eq!(last.exit_code, 3);
        assert_eq!(last.reason.as_deref(), Some("Error"));
        let p = pods.get("crasher").await.unwrap();
        assert_eq!(
            p.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Running")
        );
        let ready = p
            .status
            .unwrap()
            .conditions
            .unwrap()
            .into_iter()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert_eq!(ready.status, "False");
        pods.delete("crasher", &DeleteParams::default())
            .await
            .expect("delete");
        env.wait_gone("default", "crasher", 30).await;
        assert_eq!(env.sandboxes_of(&uid).await, 0, "sandbox left behind");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_containers_run_in_order_and_pods_complete() {
    with_env(13, async |env| {
        let pods: Api<Pod> = Api::namespaced(env.client.clone(), "default");
        // Init containers share nothing on disk without volumes, so order is checked by
        // the main container seeing both init containers terminated before it started.
        let p = pod(
            "job",
            serde_json::json!({
                "restartPolicy": "Never",
                "initContainers": [
                    {"name": "first", "image": "busybox:1.35", "imagePullPolicy": "IfNotPresent", "command": ["sh", "-c", "sleep 1"]},
                    {"name": "second", "image": "busybox:1.35", "imagePullPolicy": "IfNotPresent", "command": ["true"]}
                ],
                "containers": [{"name": "main", "image": "busybox:1.35", "imagePullPolicy": "IfNotPresent", "command": ["sh", "-c", "exit 0"]}]
            }),
        );
        pods.create(&PostParams::default(), &p).await.expect("create");
        let st = env
            .wait_pod("default", "job", 60, "Succeeded", |p| {
                let st = p.status.clone()?;
                (st.phase.as_deref() == Some("Succeeded")).then_some(st)
            })
            .await;
        let inits = st.init_container_statuses.clone().unwrap();
        let fin = |i: usize| inits[i].state.clone().unwrap().terminated.unwrap();
        let (first, second) = (fin(0), fin(1));
        assert_eq!(first.reason.as_deref(), Some("Completed"));
        assert!(first.finished_at.unwrap().0 <= second.started_at.unwrap().0, "init containers overlapped");
        let main = st.container_statuses.unwrap()[0].state.clone().unwrap().terminated.unwrap();
        assert!(second.finished_at.unwrap().0 <= main.started_at.unwrap().0, "main started before init finished");
        assert_eq!(main.exit_code, 0);

        // A missing image with pull policy Never waits with ErrImageNeverPull.
        let p = pod(
            "noimage",
            serde_json::json!({
                "containers": [{"name": "c", "image": "example.invalid/nothing:1", "imagePullPolicy": "Never"}]
            }),
        );
        pods.create(&PostParams::default(), &p).await.expect("create");
        let msg = env
            .wait_pod("default", "noimage", 60, "ErrImageNeverPull", |p| {
                let w = container_state(p)?.state?.waiting?;
                (w.reason.as_deref() == Some("ErrImageNeverPull")).then_some(w.message)
            })
            .await;
        assert!(msg.unwrap_or_default().contains("pull policy of Never"));
        let phase = pods.get("noimage").await.unwrap().status.and_then(|s| s.phase);
        assert_eq!(phase.as_deref(), Some("Pending"));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_gate_readiness_and_restart_unhealthy_containers() {
    with_env(14, async |env| {
        let pods: Api<Pod> = Api::namespaced(env.client.clone(), "default");
        // Ready once /ready is served (after 2 s); alive while /tmp/alive exists (4 s).
        let script = "touch /tmp/alive; mkdir -p /www; (sleep 2; echo ok > /www/ready) & \
                      (sleep 4; rm -f /tmp/alive) & exec httpd -f -p 8080 -h /www";
        let p = pod(
            "probed",
            serde_json::json!({
                "terminationGracePeriodSeconds": 1,
                "containers": [{
                    "name": "web", "image": "busybox:1.35", "imagePullPolicy": "IfNotPresent",
                    "command": ["sh", "-c", script],
                    "ports": [{"name": "http", "containerPort": 8080}],
                    "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 1},
                    "livenessProbe": {"exec": {"command": ["cat", "/tmp/alive"]}, "periodSeconds": 1, "failureThreshold": 2},
                    "startupProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}
                }]
            }),
        );
        let t0 = Instant::now();
        pods.create(&PostParams::default(), &p).await.expect("create");
        // Running but not Ready before /ready exists.
        let early = env
            .wait_pod("default", "probed", 30, "Running", |p| {
                let cs = container_state(p)?;
                cs.state.as_ref()?.running.as_ref()?;
                Some(cs)
            })
            .await;
        assert!(!early.ready || t0.elapsed() > Duration::from_secs(2), "ready before its readiness probe passed");
        env.wait_pod("default", "probed", 30, "Ready", |p| {
            let conds = p.status.as_ref()?.conditions.as_ref()?;
            conds.iter().any(|c| c.type_ == "Ready" && c.status == "True").then_some(())
        })
        .await;
        eprintln!("e2e: probed pod Ready after {:?}", t0.elapsed());
        // The liveness probe fails once /tmp/alive is gone: killed and restarted.
        let cs = env
            .wait_pod("default", "probed", 40, "restart after liveness failure", |p| {
                let cs = container_state(p)?;
                (cs.restart_count >= 1).then_some(cs)
            })
            .await;
        eprintln!("e2e: liveness restart after {:?}", t0.elapsed());
        let last = cs.last_state.and_then(|l| l.terminated).expect("lastState.terminated");
        assert_ne!(last.exit_code, 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_restart_adopts_running_pods_and_removes_orphans() {
    with_env(15, async |env| {
        let pods: Api<Pod> = Api::namespaced(env.client.clone(), "default");
        let spec = |name: &str| {
            pod(
                name,
                serde_json::json!({
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{
                        "name": "web", "image": "busybox:1.35", "imagePullPolicy": "IfNotPresent",
                        "command": ["sh", "-c", "mkdir -p /www && echo up > /www/index.html && exec httpd -f -p 8080 -h /www"]
                    }]
                }),
            )
        };
        pods.create(&PostParams::default(), &spec("keep")).await.expect("create keep");
        let gone_uid = pods.create(&PostParams::default(), &spec("gone")).await.expect("create gone").metadata.uid.unwrap();
        let running = |p: &Pod| {
            let st = p.status.as_ref()?;
            (st.phase.as_deref() == Some("Running")).then_some(())?;
            Some((st.pod_ip.clone()?, container_state(p)?.container_id?))
        };
        let (ip, id) = env.wait_pod("default", "keep", 60, "Running", running).await;
        env.wait_pod("default", "gone", 60, "Running", running).await;

        env.stop_agent().await;
        // While the agent is down, one pod is removed from the API outright.
        pods.delete("gone", &DeleteParams { grace_period_seconds: Some(0), ..Default::default() })
            .await
            .expect("force delete");
        // The other pod's container outlives the agent and its containerd.
        assert!(http_get(&ip, 8080, "/").await.is_some_and(|b| b.contains("up")), "pod died with the agent");
        let t0 = Instant::now();
        env.start_agent().await;
        eprintln!("e2e: agent back after {:?}", t0.elapsed());

        // The surviving pod is adopted: same container, no restart.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if env.sandboxes_of(&gone_uid).await == 0 {
                break;
            }
            assert!(Instant::now() < deadline, "the deleted pod's sandbox was not removed");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let p = pods.get("keep").await.expect("get keep");
        let cs = container_state(&p).expect("status");
        assert_eq!(cs.container_id.as_deref(), Some(id.as_str()), "container was replaced");
        assert_eq!(cs.restart_count, 0);
        assert!(cs.state.and_then(|s| s.running).is_some());
        assert!(http_get(&ip, 8080, "/").await.is_some_and(|b| b.contains("up")));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volumes_are_shared_and_configmap_updates_reach_containers() {
    with_env(17, async |env| {
        let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), "default");
        let cm: ConfigMap = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "vol-config"}, "data": {"greeting": "v1"}
        }))
        .unwrap();
        cms.create(&PostParams::default(), &cm).await.expect("configmap");
        let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(env.client.clone(), "default");
        let s: k8s_openapi::api::core::v1::Secret = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "vol-secret"}, "stringData": {"password": "s3cret"}
        }))
        .unwrap();
        secrets.create(&PostParams::default(), &s).await.expect("secret");

        let writer = "cat /sec/password > /shared/password; cat /info/labels > /shared/labels; \
                      while true; do cp /cfg/greeting /shared/greeting; sleep 1; done";
        let p: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "vols", "namespace": "default", "labels": {"app": "vol"}},
            "spec": {
                "nodeName": NODE,
                "terminationGracePeriodSeconds": 1,
                "volumes": [
                    {"name": "shared", "emptyDir": {"medium": "Memory"}},
                    {"name": "cfg", "configMap": {"name": "vol-config"}},
                    {"name": "sec", "secret": {"secretName": "vol-secret"}},
                    {"name": "info", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}}
                ],
                "containers": [
                    {"name": "writer", "image": "busybox:1.35", "imagePullPolicy": "IfNotPresent",
                     "command": ["sh", "-c", writer],
                     "volumeMounts": [
                        {"name": "shared", "mountPath": "/shared"},
                        {"name": "cfg", "mountPath": "/cfg"},
                        {"name": "sec", "mountPath": "/sec"},
                        {"name": "info", "mountPath": "/info"}
                     ]},
                    {"name": "web", "image": "busybox:1.35", "imagePullPolicy": "IfNotPresent",
                     "command": ["httpd", "-f", "-p", "8080", "-h", "/shared"],
                     "volumeMounts": [{"name": "shared", "mountPath": "/shared", "readOnly": true}]}
                ]
            }
        }))
        .unwrap();
        let pods: Api<Pod> = Api::namespaced(env.client.clone(), "default");
        pods.create(&PostParams::default(), &p).await.expect("create");
        let ip = env
            .wait_pod("default", "vols", 60, "Running", |p| {
                let st = p.status.as_ref()?;
                (st.phase.as_deref() == Some("Running")).then_some(())?;
                st.pod_ip.clone()
            })
            .await;
        let get = async |path: &str, want: &str, secs: u64| {
            let deadline = Instant::now() + Duration::from_secs(secs);
            loop {
                let body = http_get(&ip, 8080, path).await.unwrap_or_default();
                if body.contains(" 200 OK") && body.contains(want) {
                    return;
                }
                assert!(Instant::now() < deadline, "{path}: {want:?} not served within {secs} s; last: {body}");
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        };
        get("/greeting", "v1", 20).await;
        get("/password", "s3cret", 5).await;
        get("/labels", "app=\"vol\"", 5).await;

        // An update of the ConfigMap reaches the mounted file.
        let t0 = Instant::now();
        cms.patch(
            "vol-config",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(serde_json::json!({"data": {"greeting": "v2"}})),
        )
        .await
        .expect("update configmap");
        get("/greeting", "v2", 40).await;
        eprintln!("e2e: configMap update visible in the pod after {:?}", t0.elapsed());

        let uid = pods.get("vols").await.unwrap().metadata.uid.unwrap();
        pods.delete("vols", &DeleteParams::default()).await.expect("delete");
        env.wait_gone("default", "vols", 30).await;
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mounts.contains(&uid), "a volume of the deleted pod is still mounted");
    })
    .await;
}

/// The first event with `reason` about pod `name`, waiting (bounded) for it.
async fn event_message(env: &common::Env, name: &str, reason: &str, secs: u64) -> String {
    let events: Api<k8s_openapi::api::core::v1::Event> =
        Api::namespaced(env.client.clone(), "default");
    let seen = std::sync::Mutex::new(Vec::new());
    let found = wait::poll(
        Duration::from_secs(secs),
        Duration::from_millis(300),
        || async {
            let list = events.list(&Default::default()).await.expect("list events");
            *seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) =
                list.items.iter().filter_map(|e| e.reason.clone()).collect();
            list.items.iter().find_map(|e| {
                (e.reason.as_deref() == Some(reason)
                    && e.involved_object.name.as_deref() == Some(name))
                .then(|| e.message.clone().unwrap_or_default())
            })
        },
    )
    .await;
    match found {
        Some((m, _)) => m,
        None => panic!(
            "no {reason} event for {name} within {secs} s; saw {:?}",
            seen.into_inner()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_hooks_run_around_the_container_and_failures_are_reported() {
    with_env(18, async |env| {
        let host = tempfile::Builder::new().prefix("fk-hooks").tempdir_in("/tmp").expect("temp dir");
        let order = host.path().join("order");
        let pods: Api<Pod> = Api::namespaced(env.client.clone(), "default");
        // Writes "term" when SIGTERM arrives; the hooks write around it.
        let main = "trap 'echo term >> /host/order; exit 0' TERM; while true; do sleep 0.2; done";
        let p = pod(
            "hooked",
            serde_json::json!({
                "terminationGracePeriodSeconds": 10,
                "volumes": [{"name": "host", "hostPath": {"path": host.path().to_str().unwrap()}}],
                "containers": [
                    {"name": "main", "image": "busybox:1.35", "imagePullPolicy": "IfNotPresent",
                     "command": ["sh", "-c", main],
                     "volumeMounts": [{"name": "host", "mountPath": "/host"}],
                     "lifecycle": {
                        "postStart": {"exec": {"command": ["sh", "-c", "sleep 2; echo poststart >> /host/order"]}},
                        "preStop": {"exec": {"command": ["sh", "-c", "echo prestop >> /host/order"]}}
                     }},
                    {"name": "side", "image": "busybox:1.35", "imagePullPolicy": "IfNotPresent",
                     "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.2; done"],
                     "lifecycle": {"preStop": {"httpGet": {"path": "/stop", "port": 9}}}}
                ]
            }),
        );
        pods.create(&PostParams::default(), &p).await.expect("create hooked");
        // Not Running until the postStart hook (2 s) is done.
        let (seen_at, started_at) = env
            .wait_pod("default", "hooked", 60, "Running", |p| {
                let st = p.status.as_ref()?;
                (st.phase.as_deref() == Some("Running")).then_some(())?;
                let cs = st.container_statuses.as_ref()?.iter().find(|c| c.name == "main")?;
                let started = cs.state.as_ref()?.running.as_ref()?.started_at.clone()?;
                Some((jiff::Timestamp::now(), started.0))
            })
            .await;
        let lag = seen_at.duration_since(started_at);
        assert!(lag >= jiff::SignedDuration::from_millis(1900), "Running {lag:?} after the container started, before its postStart hook ended");
        assert_eq!(std::fs::read_to_string(&order).unwrap_or_default(), "poststart\n");

        // Deletion: preStop, then SIGTERM; a failing preStop is reported.
        let t0 = Instant::now();
        pods.delete("hooked", &DeleteParams::default()).await.expect("delete hooked");
        env.wait_gone("default", "hooked", 30).await;
        eprintln!("e2e: hooked pod gone after {:?}", t0.elapsed());
        assert!(t0.elapsed() < Duration::from_secs(9), "took the whole grace period: {:?}", t0.elapsed());
        assert_eq!(std::fs::read_to_string(&order).unwrap_or_default(), "poststart\nprestop\nterm\n");
        let msg = event_message(env, "hooked", "FailedPreStopHook", 10).await;
        assert!(
            msg.starts_with("HTTP lifecycle hook (/stop) for Container \"side\" in Pod \"hooked_default(")
                && msg.contains("failed - error: Get \"http://")
                && msg.contains(":9/stop\": dial tcp"),
            "{msg}"
        );

        // A failing postStart kills the container, which is restarted.
        let p = pod(
            "badhook",
            serde_json::json!({
                "terminationGracePeriodSeconds": 1,
                "containers": [{"name": "c", "image": "busybox:1.35", "imagePullPolicy": "IfNotPresent",
                    "command": ["sleep", "3600"],
                    "lifecycle": {"postStart": {"exec": {"command": ["sh", "-c", "echo oops; exit 7"]}}}}]
            }),
        );
        let uid = pods.create(&PostParams::default(), &p).await.expect("create badhook").metadata.uid.unwrap();
        let msg = event_message(env, "badhook", "FailedPostStartHook", 60).await;
        assert_eq!(
            msg,
            format!("Exec lifecycle hook ([sh -c echo oops; exit 7]) for Container \"c\" in Pod \"badhook_default({uid})\" failed - error: command 'sh -c echo oops; exit 7' exited with 7: , message: \"oops\\n\"")
        );
        let killing = event_message(env, "badhook", "Killing", 10).await;
        assert_eq!(killing, "FailedPostStartHook");
        let cs = env
            .wait_pod("default", "badhook", 60, "restarted after the failed hook", |p| {
                let cs = container_state(p)?;
                (cs.restart_count >= 1).then_some(cs)
            })
            .await;
        let last = cs.last_state.and_then(|l| l.terminated).expect("lastState.terminated");
        assert_ne!(last.exit_code, 0);
        assert!(!cs.ready);
        let running = cs.state.and_then(|s| s.running);
        assert!(running.is_none(), "a container whose postStart hook fails is never Running");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_port_reaches_the_pod_on_the_node_address() {
    with_env(19, async |env| {
        let pods: Api<Pod> = Api::namespaced(env.client.clone(), "default");
        let p = pod(
            "hostport",
            serde_json::json!({
                "terminationGracePeriodSeconds": 1,
                "containers": [{"name": "web", "image": "busybox:1.35", "imagePullPolicy": "IfNotPresent",
                    "command": ["sh", "-c", "mkdir -p /www && echo via-host-port > /www/index.html && exec httpd -f -p 8080 -h /www"],
                    "ports": [{"containerPort": 8080, "hostPort": 38419}]}]
            }),
        );
        pods.create(&PostParams::default(), &p).await.expect("create");
        let host_ip = env
            .wait_pod("default", "hostport", 60, "Running", |p| {
                let st = p.status.as_ref()?;
                (st.phase.as_deref() == Some("Running")).then_some(())?;
                st.host_ip.clone()
            })
            .await;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(b) = http_get(&host_ip, 38419, "/").await {
                if b.contains("via-host-port") {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "nothing answers on {host_ip}:38419");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        pods.delete("hostport", &DeleteParams::default()).await.expect("delete");
        env.wait_gone("default", "hostport", 30).await;
        // The mapping leaves with the pod.
        assert!(http_get(&host_ip, 38419, "/").await.is_none(), "the host port still answers");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[expect(
    clippy::too_many_lines,
    reason = "one end-to-end scenario: a projected volume of every source kind, checked file by file from inside the pod"
)]
async fn projected_volume_joins_root_ca_secret_and_downward_api() {
    with_env(20, async |env| {
        // What the serviceaccount controller publishes in every namespace.
        let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), "default");
        let ca: ConfigMap = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "kube-root-ca.crt"},
            "data": {"ca.crt": "-----BEGIN CERTIFICATE-----\ntest-ca\n-----END CERTIFICATE-----\n"}
        }))
        .unwrap();
        cms.create(&PostParams::default(), &ca).await.expect("kube-root-ca.crt");
        let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(env.client.clone(), "default");
        let s: k8s_openapi::api::core::v1::Secret = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "proj-secret"}, "data": {"user": "YWRtaW4="}
        }))
        .unwrap();
        secrets.create(&PostParams::default(), &s).await.expect("secret");

        let host = tempfile::Builder::new().prefix("fk-proj").tempdir_in("/tmp").expect("temp dir");
        let script = "cat /proj/ca.crt /proj/namespace /proj/creds/user > /host/out; \
                      stat -c %a /proj/creds/user >> /host/out; \
                      ls /proj > /host/names";
        let p = pod(
            "projected",
            serde_json::json!({
                "restartPolicy": "Never",
                "volumes": [
                    {"name": "host", "hostPath": {"path": host.path().to_str().unwrap()}},
                    {"name": "proj", "projected": {"defaultMode": 420, "sources": [
                        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                        {"secret": {"name": "proj-secret", "items": [{"key": "user", "path": "creds/user", "mode": 256}]}},
                        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
                        {"configMap": {"name": "absent", "optional": true}}
                    ]}}
                ],
                "containers": [{"name": "c", "image": "busybox:1.35", "imagePullPolicy": "IfNotPresent",
                    "command": ["sh", "-c", script],
                    "volumeMounts": [{"name": "host", "mountPath": "/host"}, {"name": "proj", "mountPath": "/proj"}]}]
            }),
        );
        let pods: Api<Pod> = Api::namespaced(env.client.clone(), "default");
        pods.create(&PostParams::default(), &p).await.expect("create");
        env.wait_pod("default", "projected", 60, "Succeeded", |p| {
            (p.status.as_ref()?.phase.as_deref() == Some("Succeeded")).then_some(())
        })
        .await;
        let out = std::fs::read_to_string(host.path().join("out")).unwrap_or_default();
        assert_eq!(
            out,
            "-----BEGIN CERTIFICATE-----\ntest-ca\n-----END CERTIFICATE-----\ndefaultadmin400\n"
        );
        let names = std::fs::read_to_string(host.path().join("names")).unwrap_or_default();
        assert_eq!(names.split_whitespace().collect::<Vec<_>>(), ["ca.crt", "creds", "namespace"]);

        // A required source that does not exist keeps the pod from starting, with an event.
        let p = pod(
            "projected-missing",
            serde_json::json!({
                "volumes": [{"name": "proj", "projected": {"sources": [{"secret": {"name": "nope"}}]}}],
                "containers": [{"name": "c", "image": "busybox:1.35", "imagePullPolicy": "IfNotPresent",
                    "command": ["sleep", "3600"], "volumeMounts": [{"name": "proj", "mountPath": "/proj"}]}]
            }),
        );
        pods.create(&PostParams::default(), &p).await.expect("create");
        let msg = event_message(env, "projected-missing", "FailedMount", 60).await;
        assert!(msg.contains("secret \"nope\" not found"), "{msg}");
        let phase = pods.get("projected-missing").await.unwrap().status.and_then(|s| s.phase);
        assert_eq!(phase.as_deref(), Some("Pending"));

        // A service-account token: asked for by the kubelet, bound to the pod.
        let sas: Api<k8s_openapi::api::core::v1::ServiceAccount> = Api::namespaced(env.client.clone(), "default");
        let sa = serde_json::from_value(serde_json::json!({"metadata": {"name": "robot"}})).unwrap();
        sas.create(&PostParams::default(), &sa).await.expect("service account");
        let token_pod = |name: &str, sa: &str| {
            pod(
                name,
                serde_json::json!({
                    "restartPolicy": "Never",
                    "serviceAccountName": sa,
                    "automountServiceAccountToken": false,
                    "volumes": [
                        {"name": "host", "hostPath": {"path": host.path().to_str().unwrap()}},
                        {"name": "tok", "projected": {"sources": [
                            {"serviceAccountToken": {"path": "t/token", "expirationSeconds": 7200, "audience": "vault"}}
                        ]}}
                    ],
                    "containers": [{"name": "c", "image": "busybox:1.35", "imagePullPolicy": "IfNotPresent",
                        "command": ["sh", "-c", "cat /tok/t/token > /host/token; stat -c %a /tok/t/token > /host/mode"],
                        "volumeMounts": [{"name": "host", "mountPath": "/host"}, {"name": "tok", "mountPath": "/tok"}]}]
                }),
            )
        };
        let created = pods.create(&PostParams::default(), &token_pod("token", "robot")).await.expect("create");
        env.wait_pod("default", "token", 60, "Succeeded", |p| {
            (p.status.as_ref()?.phase.as_deref() == Some("Succeeded")).then_some(())
        })
        .await;
        let token = std::fs::read_to_string(host.path().join("token")).unwrap_or_default();
        let payload = token.split('.').nth(1).expect("a JWT");
        use base64::Engine;
        let claims: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).expect("base64url"),
        )
        .expect("claims");
        assert_eq!(claims["sub"], "system:serviceaccount:default:robot");
        assert_eq!(claims["aud"], serde_json::json!(["vault"]));
        assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 7200);
        assert_eq!(claims["kubernetes.io"]["pod"]["name"], "token");
        assert_eq!(claims["kubernetes.io"]["pod"]["uid"].as_str(), created.metadata.uid.as_deref());
        let mode = std::fs::read_to_string(host.path().join("mode")).unwrap_or_default();
        assert_eq!(mode.trim(), "644", "the volume's default mode");

        // No token for a service account that does not exist: FailedMount, and
        // the container does not start.
        pods.create(&PostParams::default(), &token_pod("token-missing", "ghost")).await.expect("create");
        let msg = event_message(env, "token-missing", "FailedMount", 60).await;
        assert!(msg.contains("failed to fetch token for service account default/ghost"), "{msg}");
        assert!(msg.contains("not found"), "{msg}");
        let status = pods.get("token-missing").await.unwrap().status.unwrap_or_default();
        assert_eq!(status.phase.as_deref(), Some("Pending"));
        assert!(
            status.container_statuses.iter().flatten().all(|c| c.state.as_ref().and_then(|s| s.running.as_ref()).is_none()),
            "the container started without its token"
        );
    })
    .await;
}

/// A network namespace outside the pod CIDR, joined to the node by a veth pair, with no
/// route back to the pods: a pod reaches it only when its traffic leaves with the node's
/// address. Removed (with its veth pair and server) on drop.
struct Outside {
    netns: String,
    server: std::process::Child,
}

impl Outside {
    /// `10.198.N.1/30` on the node, `10.198.N.2/30` inside, where a small HTTP server on
    /// port 8080 answers with the address it saw the request come from.
    fn start(n: u8) -> Outside {
        let netns = format!("fkext{n}");
        let (host_if, peer_if) = (format!("fkexth{n}"), format!("fkextp{n}"));
        let run = |args: &[&str]| {
            let out = std::process::Command::new(args[0])
                .args(&args[1..])
                .output()
                .expect("run");
            assert!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &netns])
            .output();
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &host_if])
            .output();
        run(&["ip", "netns", "add", &netns]);
        run(&[
            "ip", "link", "add", &host_if, "type", "veth", "peer", "name", &peer_if,
        ]);
        run(&["ip", "link", "set", &peer_if, "netns", &netns]);
        run(&[
            "ip",
            "addr",
            "add",
            &format!("10.198.{n}.1/30"),
            "dev",
            &host_if,
        ]);
        run(&["ip", "link", "set", &host_if, "up"]);
        run(&[
            "ip",
            "netns",
            "exec",
            &netns,
            "ip",
            "addr",
            "add",
            &format!("10.198.{n}.2/30"),
            "dev",
            &peer_if,
        ]);
        run(&[
            "ip", "netns", "exec", &netns, "ip", "link", "set", &peer_if, "up",
        ]);
        run(&[
            "ip", "netns", "exec", &netns, "ip", "link", "set", "lo", "up",
        ]);
        let server = format!(
            "import http.server as h\n\
             class H(h.BaseHTTPRequestHandler):\n    \
                 def do_GET(s):\n        \
                     b = s.client_address[0].encode()\n        \
                     s.send_response(200); s.send_header('Content-Length', str(len(b))); s.end_headers(); s.wfile.write(b)\n\
             h.HTTPServer(('10.198.{n}.2', 8080), H).serve_forever()\n"
        );
        let server = std::process::Command::new("ip")
            .args(["netns", "exec", &netns, "python3", "-c", &server])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("starting the outside server");
        Outside { netns, server }
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        // Deleting the namespace deletes its end of the veth pair, and with it ours.
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.netns])
            .output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_reach_addresses_outside_the_pod_cidr_with_the_nodes_address() {
    with_env(21, async |env| {
        let outside = Outside::start(21);
        let host = tempfile::Builder::new().prefix("fk-egress").tempdir_in("/tmp").expect("temp dir");
        let pods: Api<Pod> = Api::namespaced(env.client.clone(), "default");
        let fetch = "for i in 1 2 3 4 5 6 7 8 9 10; do \
             timeout 3 wget -q -O /host/seen http://10.198.21.2:8080/ 2>>/host/err && exit 0; sleep 1; done; exit 1";
        let p = pod(
            "egress",
            serde_json::json!({
                "restartPolicy": "Never",
                "volumes": [{"name": "host", "hostPath": {"path": host.path().to_str().unwrap()}}],
                "containers": [{
                    "name": "fetch", "image": "busybox:1.35", "imagePullPolicy": "IfNotPresent",
                    "command": ["sh", "-c", fetch],
                    "volumeMounts": [{"name": "host", "mountPath": "/host"}]
                }]
            }),
        );
        pods.create(&PostParams::default(), &p).await.expect("create egress");
        let phase = env
            .wait_pod("default", "egress", 90, "Succeeded or Failed", |p| {
                let phase = p.status.as_ref()?.phase.clone()?;
                matches!(phase.as_str(), "Succeeded" | "Failed").then_some(phase)
            })
            .await;
        let seen = std::fs::read_to_string(host.path().join("seen")).unwrap_or_default();
        let err = std::fs::read_to_string(host.path().join("err")).unwrap_or_default();
        drop(outside);
        assert_eq!(phase, "Succeeded", "the pod could not reach 10.198.21.2: {err}");
        // The outside host saw the node's address on that link, not the pod's.
        assert_eq!(seen, "10.198.21.1");
        let table = std::process::Command::new("nft")
            .args(["list", "table", "ip", &ferrokube_kubelet::cni::masquerade_table(&env.bridge)])
            .output()
            .expect("nft");
        assert!(
            String::from_utf8_lossy(&table.stdout).contains(&format!("ip saddr {}", env.subnet)),
            "masquerade table: {}",
            String::from_utf8_lossy(&table.stdout)
        );
    })
    .await;
}
