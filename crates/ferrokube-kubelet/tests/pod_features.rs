//! End-to-end: the node's remaining Kubernetes behaviours on a real containerd,
//! read from inside the containers (CRI exec) and from the pod's status and
//! events as a user sees them: resourceFieldRef in env and downwardAPI and
//! projected volumes, subPath and subPathExpr (and the refusal of a symlink
//! leaving the volume), tmpfs for secret/downwardAPI/projected and memory
//! emptyDirs, fsGroup, sysctls (safe ones set, unsafe ones refused with
//! SysctlForbidden), gRPC probes, ephemeral containers sharing their target's
//! processes, and the API's refusals of bad sub paths, sysctl names and
//! ephemeral container changes.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{with_env, Env, NODE};
use ferrokube_kubelet::cri::{labels, remote::RemoteRuntime, Runtime};
use k8s_openapi::api::core::v1::{Event, Node, Pod, Secret};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

fn pod(name: &str, spec: serde_json::Value) -> Pod {
    let mut spec = spec;
    spec["nodeName"] = NODE.into();
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    }))
    .expect("pod JSON")
}

/// Runs `sh -c script` in the pod's running container `container`; stdout, trimmed.
async fn sh(env: &Env, uid: &str, container: &str, script: &str) -> String {
    let rt = RemoteRuntime::connect(&env.endpoint()).expect("runtime client");
    let filter = ferrokube_kubelet::cri::api::ContainerFilter {
        label_selector: HashMap::from([
            (labels::POD_UID.to_string(), uid.to_string()),
            (labels::CONTAINER_NAME.to_string(), container.to_string()),
        ]),
        ..Default::default()
    };
    let list = rt.list_containers(Some(filter)).await.expect("list");
    let c = list
        .iter()
        .find(|c| c.state == ferrokube_kubelet::cri::api::ContainerState::ContainerRunning as i32)
        .unwrap_or_else(|| panic!("no running container {container}"));
    let r = rt
        .exec_sync(&c.id, vec!["sh".into(), "-c".into(), script.into()], 10)
        .await
        .expect("exec");
    assert_eq!(
        r.exit_code,
        0,
        "{script}: {}{}",
        String::from_utf8_lossy(&r.stdout),
        String::from_utf8_lossy(&r.stderr)
    );
    String::from_utf8_lossy(&r.stdout).trim().to_string()
}

async fn running(env: &Env, name: &str) -> String {
    env.wait_pod("default", name, 60, "Running", |p| {
        let st = p.status.as_ref()?;
        (st.phase.as_deref() == Some("Running")
            && st
                .container_statuses
                .iter()
                .flatten()
                .all(|c| c.state.as_ref().is_some_and(|s| s.running.is_some())))
        .then(|| p.metadata.uid.clone())
        .flatten()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[expect(
    clippy::too_many_lines,
    reason = "one end-to-end scenario: a pod with resource fields, subPaths and memory volumes, checked from inside its containers"
)]
async fn resource_fields_sub_paths_and_memory_volumes() {
    with_env(61, async |env| {
        let secrets: Api<Secret> = Api::namespaced(env.client.clone(), "default");
        let s: Secret = serde_json::from_value(json!({
            "metadata": {"name": "creds"}, "stringData": {"password": "s3cret"}
        }))
        .unwrap();
        secrets.create(&PostParams::default(), &s).await.expect("secret");
        let pods: Api<Pod> = Api::namespaced(env.client.clone(), "default");
        let p = pod(
            "features",
            json!({
                "terminationGracePeriodSeconds": 1,
                "containers": [{
                    "name": "app", "image": "busybox:1.35", "imagePullPolicy": "IfNotPresent",
                    "command": ["sleep", "3600"],
                    "resources": {"limits": {"cpu": "500m", "memory": "64Mi"},
                                  "requests": {"cpu": "250m", "memory": "32Mi"}},
                    "env": [
                        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                        {"name": "CPU_M", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1m"}}}
                    ],
                    "volumeMounts": [
                        {"name": "info", "mountPath": "/info"},
                        {"name": "proj", "mountPath": "/proj"},
                        {"name": "secret", "mountPath": "/secret"},
                        {"name": "mem", "mountPath": "/mem"},
                        {"name": "work", "mountPath": "/work"},
                        {"name": "work", "mountPath": "/logs", "subPathExpr": "logs/$(POD_NAME)"},
                        {"name": "work", "mountPath": "/conf", "subPath": "conf/app"},
                        {"name": "secret", "mountPath": "/password", "subPath": "password"}
                    ]
                }, {
                    "name": "other", "image": "busybox:1.35", "imagePullPolicy": "IfNotPresent",
                    "command": ["sleep", "3600"]
                }],
                "volumes": [
                    {"name": "info", "downwardAPI": {"items": [
                        {"path": "cpu_limit", "resourceFieldRef": {"containerName": "app", "resource": "limits.cpu", "divisor": "1m"}},
                        {"path": "mem_request", "resourceFieldRef": {"containerName": "app", "resource": "requests.memory", "divisor": "1Mi"}}
                    ]}},
                    {"name": "proj", "projected": {"sources": [{"downwardAPI": {"items": [
                        {"path": "mem_limit", "resourceFieldRef": {"containerName": "app", "resource": "limits.memory", "divisor": "1Mi"}},
                        {"path": "other_mem_limit", "resourceFieldRef": {"containerName": "other", "resource": "limits.memory"}}
                    ]}}]}},
                    {"name": "secret", "secret": {"secretName": "creds"}},
                    {"name": "mem", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
                    {"name": "work", "emptyDir": {}}
                ]
            }),
        );
        pods.create(&PostParams::default(), &p).await.expect("create");
        let uid = running(env, "features").await;

        // resourceFieldRef: env, downwardAPI and projected volumes; an unset limit
        // reads as the node's allocatable.
        assert_eq!(sh(env, &uid, "app", "echo $CPU_M").await, "500");
        assert_eq!(sh(env, &uid, "app", "cat /info/cpu_limit").await, "500");
        assert_eq!(sh(env, &uid, "app", "cat /info/mem_request").await, "32");
        assert_eq!(sh(env, &uid, "app", "cat /proj/mem_limit").await, "64");
        let node = Api::<Node>::all(env.client.clone()).get(NODE).await.unwrap();
        let alloc = node.status.unwrap().allocatable.unwrap()["memory"].0.clone();
        let kib: u64 = alloc.trim_end_matches("Ki").parse().expect("memory in Ki");
        assert_eq!(
            sh(env, &uid, "app", "cat /proj/other_mem_limit").await,
            (kib * 1024).to_string()
        );

        // Secrets, downwardAPI and projected volumes and memory emptyDirs are tmpfs
        // (the emptyDir with its sizeLimit, below the pod's 64Mi); the disk emptyDir is not.
        let mounts = sh(env, &uid, "app", "cat /proc/mounts").await;
        let fs_of = |path: &str| {
            mounts
                .lines()
                .find(|l| l.split_whitespace().nth(1) == Some(path))
                .map(|l| l.to_string())
                .unwrap_or_default()
        };
        // `other` has no memory limit, so the pod has none: the node's allocatable.
        for p in ["/info", "/proj", "/secret"] {
            assert!(fs_of(p).starts_with("tmpfs "), "{p}: {}", fs_of(p));
            assert!(fs_of(p).contains(&format!("size={kib}k")), "{p}: {}", fs_of(p));
        }
        assert!(fs_of("/mem").contains("size=16384k"), "{}", fs_of("/mem"));
        assert!(!fs_of("/work").starts_with("tmpfs "), "{}", fs_of("/work"));
        assert_eq!(sh(env, &uid, "app", "stat -c %a /mem").await, "1777");
        assert_eq!(sh(env, &uid, "app", "cat /secret/password").await, "s3cret");

        // subPathExpr from the container's env; subPath created inside the volume;
        // a file of a secret volume by subPath.
        sh(env, &uid, "app", "echo from-logs > /logs/x && echo from-conf > /conf/y").await;
        assert_eq!(sh(env, &uid, "app", "cat /work/logs/features/x").await, "from-logs");
        assert_eq!(sh(env, &uid, "app", "cat /work/conf/app/y").await, "from-conf");
        assert_eq!(sh(env, &uid, "app", "cat /password").await, "s3cret");

        // A sub path that is a symlink out of the volume is refused, and nothing
        // outside is touched.
        let p = pod(
            "escaper",
            json!({
                "terminationGracePeriodSeconds": 1,
                "initContainers": [{
                    "name": "plant", "image": "busybox:1.35", "imagePullPolicy": "IfNotPresent",
                    "command": ["sh", "-c", "ln -s /etc /work/escape && ln -s ../inside /work/fine && mkdir /work/inside && echo ok > /work/inside/f"],
                    "volumeMounts": [{"name": "work", "mountPath": "/work"}]
                }],
                "containers": [{
                    "name": "main", "image": "busybox:1.35", "imagePullPolicy": "IfNotPresent",
                    "command": ["sleep", "3600"],
                    "volumeMounts": [
                        {"name": "work", "mountPath": "/fine", "subPath": "fine"},
                        {"name": "work", "mountPath": "/host-etc", "subPath": "escape"}
                    ]
                }],
                "volumes": [{"name": "work", "emptyDir": {}}]
            }),
        );
        pods.create(&PostParams::default(), &p).await.expect("create escaper");
        let waiting = env
            .wait_pod("default", "escaper", 60, "CreateContainerConfigError", |p| {
                let cs = p.status.as_ref()?.container_statuses.as_ref()?.first()?.clone();
                let w = cs.state?.waiting?;
                (w.reason.as_deref() == Some("CreateContainerConfigError")).then_some(w)
            })
            .await;
        assert_eq!(
            waiting.message.as_deref(),
            Some("failed to prepare subPath for volumeMount \"work\" of container \"main\"")
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fs_group_and_sysctls() {
    with_env(62, async |env| {
        let secrets: Api<Secret> = Api::namespaced(env.client.clone(), "default");
        let s: Secret = serde_json::from_value(json!({
            "metadata": {"name": "key"}, "stringData": {"key": "k"}
        }))
        .unwrap();
        secrets.create(&PostParams::default(), &s).await.expect("secret");
        let pods: Api<Pod> = Api::namespaced(env.client.clone(), "default");
        let p = pod(
            "grouped",
            json!({
                "terminationGracePeriodSeconds": 1,
                "securityContext": {"runAsUser": 1000, "fsGroup": 1234, "supplementalGroups": [5555],
                    "fsGroupChangePolicy": "OnRootMismatch",
                    "sysctls": [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "80"}]},
                "containers": [{
                    "name": "app", "image": "busybox:1.35", "imagePullPolicy": "IfNotPresent",
                    "command": ["sleep", "3600"],
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}, {"name": "s", "mountPath": "/s"}]
                }],
                "volumes": [{"name": "data", "emptyDir": {}},
                            {"name": "s", "secret": {"secretName": "key", "defaultMode": 256}}]
            }),
        );
        pods.create(&PostParams::default(), &p).await.expect("create");
        let uid = running(env, "grouped").await;
        let groups = sh(env, &uid, "app", "id -G").await;
        let groups: Vec<&str> = groups.split_whitespace().collect();
        assert!(groups.contains(&"1234") && groups.contains(&"5555"), "{groups:?}");
        assert_eq!(sh(env, &uid, "app", "stat -c '%g %a' /data").await, "1234 2777");
        assert_eq!(sh(env, &uid, "app", "touch /data/f && stat -c %g /data/f").await, "1234");
        // The secret's 0400 gets group read: user 1000 reads it through the group.
        assert_eq!(sh(env, &uid, "app", "stat -L -c '%g %a' /s/key").await, "1234 440");
        assert_eq!(sh(env, &uid, "app", "cat /s/key").await, "k");
        assert_eq!(
            sh(env, &uid, "app", "cat /proc/sys/net/ipv4/ip_unprivileged_port_start").await,
            "80"
        );

        // An unsafe sysctl the node does not allow: the pod is rejected.
        let p = pod(
            "unsafe-sysctl",
            json!({"securityContext": {"sysctls": [{"name": "net.core.somaxconn", "value": "1024"}]},
                   "containers": [{"name": "c", "image": "busybox:1.35", "command": ["sleep", "3600"]}]}),
        );
        pods.create(&PostParams::default(), &p).await.expect("create");
        let st = env
            .wait_pod("default", "unsafe-sysctl", 30, "Failed", |p| {
                let st = p.status.clone()?;
                (st.phase.as_deref() == Some("Failed")).then_some(st)
            })
            .await;
        assert_eq!(st.reason.as_deref(), Some("SysctlForbidden"));
        assert_eq!(
            st.message.as_deref(),
            Some("Pod was rejected: forbidden sysctl: \"net.core.somaxconn\" not allowlisted")
        );
        let events: Api<Event> = Api::namespaced(env.client.clone(), "default");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let list = events.list(&Default::default()).await.expect("events");
            if list.items.iter().any(|e| {
                e.reason.as_deref() == Some("SysctlForbidden")
                    && e.involved_object.name.as_deref() == Some("unsafe-sysctl")
            }) {
                break;
            }
            assert!(Instant::now() < deadline, "no SysctlForbidden event");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
}

/// A grpc.health.v1 server on the node: service "" is SERVING, any other NOT_SERVING.
async fn health_server() -> u16 {
    use http_body_util::{BodyExt, StreamBody};
    use hyper::body::Frame;
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0")
        .await
        .expect("bind");
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    |req: hyper::Request<hyper::body::Incoming>| async move {
                        let body = req
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        // 5-byte gRPC prefix, then field 1 (service) if any.
                        let service = body
                            .get(7..)
                            .map(|s| String::from_utf8_lossy(s).into_owned())
                            .unwrap_or_default();
                        let status: u8 = if service.is_empty() { 1 } else { 2 };
                        let msg = vec![0u8, 0, 0, 0, 2, 0x08, status];
                        let mut trailers = http::HeaderMap::new();
                        trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
                        let frames: Vec<Result<Frame<bytes::Bytes>, std::convert::Infallible>> = vec![
                            Ok(Frame::data(bytes::Bytes::from(msg))),
                            Ok(Frame::trailers(trailers)),
                        ];
                        let resp = hyper::Response::builder()
                            .header("content-type", "application/grpc")
                            .body(StreamBody::new(futures::stream::iter(frames)))
                            .expect("response");
                        Ok::<_, std::convert::Infallible>(resp)
                    },
                );
                let _ =
                    hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_probes_check_grpc_health() {
    with_env(63, async |env| {
        let port = health_server().await;
        let pods: Api<Pod> = Api::namespaced(env.client.clone(), "default");
        // hostNetwork: the probe reaches the test's server on the node's address.
        let p = pod(
            "grpc",
            json!({
                "terminationGracePeriodSeconds": 1,
                "hostNetwork": true,
                "containers": [{
                    "name": "ok", "image": "busybox:1.35", "imagePullPolicy": "IfNotPresent",
                    "command": ["sleep", "3600"],
                    "readinessProbe": {"grpc": {"port": port}, "periodSeconds": 1}
                }, {
                    "name": "down", "image": "busybox:1.35", "imagePullPolicy": "IfNotPresent",
                    "command": ["sleep", "3600"],
                    "livenessProbe": {"grpc": {"port": port, "service": "down"}, "periodSeconds": 1, "failureThreshold": 1}
                }]
            }),
        );
        pods.create(&PostParams::default(), &p).await.expect("create");
        env.wait_pod("default", "grpc", 60, "ok ready, down restarted", |p| {
            let cs = p.status.as_ref()?.container_statuses.as_ref()?;
            let ok = cs.iter().find(|c| c.name == "ok")?;
            let down = cs.iter().find(|c| c.name == "down")?;
            (ok.ready && down.restart_count >= 1).then_some(())
        })
        .await;
        let events: Api<Event> = Api::namespaced(env.client.clone(), "default");
        let list = events.list(&Default::default()).await.expect("events");
        let msgs: Vec<String> = list
            .items
            .iter()
            .filter(|e| e.reason.as_deref() == Some("Unhealthy"))
            .filter_map(|e| e.message.clone())
            .collect();
        assert!(
            msgs.iter().any(|m| m == "Liveness probe failed: service unhealthy (responded with \"NOT_SERVING\")"),
            "{msgs:?}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ephemeral_containers_join_their_target_and_the_api_guards_them() {
    with_env(64, async |env| {
        let pods: Api<Pod> = Api::namespaced(env.client.clone(), "default");
        let p = pod(
            "target",
            json!({
                "terminationGracePeriodSeconds": 1,
                "containers": [{"name": "app", "image": "busybox:1.35", "imagePullPolicy": "IfNotPresent",
                                "command": ["sleep", "3601"]}]
            }),
        );
        pods.create(&PostParams::default(), &p).await.expect("create");
        let uid = running(env, "target").await;
        let add = |list: serde_json::Value| Patch::Strategic(json!({"spec": {"ephemeralContainers": list}}));
        pods.patch_subresource(
            "ephemeralcontainers",
            "target",
            &PatchParams::default(),
            &add(json!([{"name": "dbg", "image": "busybox:1.35", "command": ["sleep", "3602"],
                         "targetContainerName": "app"}])),
        )
        .await
        .expect("add an ephemeral container");
        let st = env
            .wait_pod("default", "target", 60, "the ephemeral container running", |p| {
                let s = p.status.as_ref()?.ephemeral_container_statuses.as_ref()?.first()?.clone();
                s.state.as_ref()?.running.as_ref()?;
                Some(s)
            })
            .await;
        assert_eq!(st.name, "dbg");
        assert!(!st.ready);
        // It sees the target's processes.
        let ps = sh(env, &uid, "dbg", "ps -o args").await;
        assert!(ps.contains("sleep 3601"), "{ps}");

        // Kubernetes' refusals.
        let refused = |r: Result<Pod, kube::Error>| match r {
            Err(kube::Error::Api(e)) => (e.code, e.message),
            other => panic!("expected a refusal, got {other:?}"),
        };
        let (code, msg) = refused(
            pods.patch_subresource(
                "ephemeralcontainers",
                "target",
                &PatchParams::default(),
                &add(json!([{"name": "dbg2", "image": "busybox:1.35", "ports": [{"containerPort": 80}]}])),
            )
            .await,
        );
        assert_eq!(code, 422);
        assert!(
            msg.contains("].ports: Forbidden: cannot be set for an Ephemeral Container"),
            "{msg}"
        );
        let (code, msg) = refused(
            pods.patch_subresource(
                "ephemeralcontainers",
                "target",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"ephemeralContainers": []}})),
            )
            .await,
        );
        assert_eq!(code, 422);
        assert!(msg.contains("existing ephemeral containers \"dbg\" may not be removed"), "{msg}");
        let with_ephemeral = pod(
            "born-with-debugger",
            json!({"containers": [{"name": "c", "image": "busybox:1.35"}],
                   "ephemeralContainers": [{"name": "d", "image": "busybox:1.35"}]}),
        );
        let (_, msg) = refused(pods.create(&PostParams::default(), &with_ephemeral).await);
        assert!(msg.contains("spec.ephemeralContainers: Forbidden: cannot be set on create"), "{msg}");
        let (_, msg) = refused(
            pods.create(
                &PostParams::default(),
                &pod(
                    "bad-paths",
                    json!({"securityContext": {"sysctls": [{"name": "foo..bar", "value": "1"}]},
                           "containers": [{"name": "c", "image": "busybox:1.35",
                        "volumeMounts": [{"name": "v", "mountPath": "/v", "subPath": "/etc"},
                                         {"name": "v", "mountPath": "/w", "subPathExpr": "a/../.."}]}],
                           "volumes": [{"name": "v", "emptyDir": {}}]}),
                ),
            )
            .await,
        );
        for want in [
            "spec.containers[0].volumeMounts.subPath: Invalid value: \"/etc\": must be a relative path",
            "spec.containers[0].volumeMounts.subPathExpr: Invalid value: \"a/../..\": must not contain '..'",
            "spec.securityContext.sysctls[0].name: Invalid value: \"foo..bar\": must have at most 253 characters",
        ] {
            assert!(msg.contains(want), "{want} not in {msg}");
        }
    })
    .await;
}
