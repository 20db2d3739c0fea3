//! The agent against the in-memory runtime and a real in-process API server: what it
//! asks the runtime to do and what it writes to the API, without containers.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ferrokube_client::testing::{wait, TestApi};
use ferrokube_kubelet::cri::fake::FakeRuntime;
use ferrokube_kubelet::cri::{api, labels, Runtime};
use ferrokube_kubelet::KubeletConfig;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, PostParams};
use tokio_util::sync::CancellationToken;

const NODE: &str = "fake-node";

struct Agent {
    _api: TestApi,
    client: kube::Client,
    rt: Arc<FakeRuntime>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

async fn start(prepare: impl FnOnce(&FakeRuntime)) -> Agent {
    start_with(prepare, |_| {}).await
}

/// Like `start`, with `configure` run on the agent's configuration last.
async fn start_with(
    prepare: impl FnOnce(&FakeRuntime),
    configure: impl FnOnce(&mut KubeletConfig),
) -> Agent {
    let api = TestApi::start().await.expect("api");
    let client = api.client().await.expect("client");
    let dir = tempfile::tempdir().unwrap();
    let rt = Arc::new(FakeRuntime::new());
    rt.add_image("busybox:1.35");
    prepare(&rt);
    let mut config = KubeletConfig::new(NODE, dir.path());
    config.node_ip = Some("192.0.2.10".parse().unwrap());
    config.kubelet_port = 0; // any free port: tests run side by side
    config.masquerade = false; // no pod network with the in-memory runtime
    config.pod_cidr = Some("10.199.250.0/24".into()); // no node IPAM controller here
    config.backoff_initial = Duration::from_millis(300);
    config.backoff_max = Duration::from_secs(2);
    config.pod_poll_interval = Duration::from_secs(10);
    config.relist_interval = Duration::from_millis(50);
    configure(&mut config);
    let cancel = CancellationToken::new();
    let runtime: Arc<dyn Runtime> = rt.clone();
    let task = tokio::spawn(ferrokube_kubelet::run_with_runtime(
        client.clone(),
        config,
        runtime,
        dir.path().join("net.d"),
        cancel.clone(),
    ));
    Agent {
        _api: api,
        client,
        rt,
        cancel,
        task,
        _dir: dir,
    }
}

impl Agent {
    async fn stop(self) {
        self.cancel.cancel();
        let r = tokio::time::timeout(Duration::from_secs(10), self.task).await;
        assert!(matches!(r, Ok(Ok(Ok(())))), "agent ended badly: {r:?}");
    }

    async fn wait<T, F, Fut>(&self, secs: u64, what: &str, check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        wait::wait_for(what, Duration::from_secs(secs), check).await
    }

    async fn pod_status(&self, name: &str) -> Option<k8s_openapi::api::core::v1::PodStatus> {
        Api::<Pod>::namespaced(self.client.clone(), "default")
            .get(name)
            .await
            .ok()?
            .status
    }

    fn running_container(&self, name: &str) -> Option<api::ContainerStatus> {
        self.rt.containers().into_iter().find(|c| {
            c.metadata.as_ref().is_some_and(|m| m.name == name)
                && c.state == api::ContainerState::ContainerRunning as i32
        })
    }
}

async fn event_reasons(client: &kube::Client, pod: &str) -> Vec<String> {
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), "default");
    let list = events.list(&Default::default()).await.expect("list events");
    list.items
        .into_iter()
        .filter(|e| e.involved_object.name.as_deref() == Some(pod))
        .filter_map(|e| e.reason)
        .collect()
}

fn pod(name: &str, spec: serde_json::Value) -> Pod {
    let mut spec = spec;
    spec["nodeName"] = NODE.into();
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "namespace": "default"}, "spec": spec
    }))
    .unwrap()
}

fn simple(name: &str, restart: &str) -> Pod {
    pod(
        name,
        serde_json::json!({
            "restartPolicy": restart,
            "terminationGracePeriodSeconds": 7,
            "containers": [{"name": "c", "image": "busybox:1.35", "imagePullPolicy": "IfNotPresent",
                            "args": ["echo", "$(WHO)"], "env": [{"name": "WHO", "value": "me"}]}]
        }),
    )
}

#[tokio::test]
async fn registers_the_node_and_its_lease() {
    let a = start(|_| {}).await;
    let nodes: Api<Node> = Api::all(a.client.clone());
    let node = a
        .wait(10, "node Ready", async || {
            let n = nodes.get_opt(NODE).await.ok()??;
            let ready = n
                .status
                .as_ref()?
                .conditions
                .as_ref()?
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            ready.then_some(n)
        })
        .await;
    let st = node.status.unwrap();
    for r in ["cpu", "memory", "ephemeral-storage", "pods"] {
        assert!(
            st.capacity.as_ref().unwrap().contains_key(r),
            "capacity {r}"
        );
        assert!(
            st.allocatable.as_ref().unwrap().contains_key(r),
            "allocatable {r}"
        );
    }
    let addrs = st.addresses.unwrap();
    assert!(addrs
        .iter()
        .any(|x| x.type_ == "InternalIP" && x.address == "192.0.2.10"));
    assert!(addrs.iter().any(|x| x.type_ == "Hostname"));
    let info = st.node_info.unwrap();
    assert_eq!(info.container_runtime_version, "fake://0.0.1");
    assert_eq!(info.operating_system, "linux");
    let labels = node.metadata.labels.unwrap();
    assert_eq!(labels["kubernetes.io/hostname"], NODE);
    assert_eq!(labels["kubernetes.io/os"], "linux");
    let leases: Api<Lease> = Api::namespaced(a.client.clone(), "kube-node-lease");
    let lease = a
        .wait(10, "lease", async || leases.get_opt(NODE).await.ok()?)
        .await;
    let spec = lease.spec.unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some(NODE));
    assert!(spec.renew_time.is_some());
    a.stop().await;
}

#[tokio::test]
async fn pod_runs_and_reports_its_status() {
    let a = start(|_| {}).await;
    let pods: Api<Pod> = Api::namespaced(a.client.clone(), "default");
    pods.create(&PostParams::default(), &simple("p1", "Always"))
        .await
        .unwrap();
    let st = a
        .wait(10, "Running", async || {
            let st = a.pod_status("p1").await?;
            (st.phase.as_deref() == Some("Running")).then_some(st)
        })
        .await;
    assert!(st.pod_ip.as_deref().unwrap_or("").starts_with("10.88.0."));
    assert_eq!(st.host_ip.as_deref(), Some("192.0.2.10"));
    assert!(st.start_time.is_some());
    let cs = &st.container_statuses.unwrap()[0];
    assert!(cs.ready);
    assert!(cs.container_id.as_deref().unwrap().starts_with("fake://"));
    let calls = a.rt.calls();
    let sb = calls
        .iter()
        .position(|c| c.starts_with("RunPodSandbox p1"))
        .expect("sandbox");
    let cc = calls
        .iter()
        .position(|c| c.starts_with("CreateContainer c"))
        .expect("container");
    assert!(sb < cc, "{calls:?}");
    // IfNotPresent with the image present: no pull.
    assert!(
        !calls.iter().any(|c| c.starts_with("PullImage")),
        "{calls:?}"
    );
    let c = a.running_container("c").unwrap();
    assert_eq!(c.labels[labels::POD_NAME], "p1");
    let reasons = event_reasons(&a.client, "p1").await;
    for r in ["Pulled", "Created", "Started"] {
        assert!(
            reasons.iter().any(|x| x == r),
            "no {r} event in {reasons:?}"
        );
    }
    a.stop().await;
}

#[tokio::test]
async fn exits_restart_with_back_off() {
    let a = start(|_| {}).await;
    let pods: Api<Pod> = Api::namespaced(a.client.clone(), "default");
    pods.create(&PostParams::default(), &simple("crash", "Always"))
        .await
        .unwrap();
    for round in 0..3 {
        let c = a
            .wait(10, "container running", async || a.running_container("c"))
            .await;
        assert_eq!(c.metadata.as_ref().unwrap().attempt, round);
        a.rt.exit_container(&c.id, 2);
    }
    // After the second failure the agent waits: CrashLoopBackOff.
    let cs = a
        .wait(10, "CrashLoopBackOff", async || {
            let st = a.pod_status("crash").await?;
            let cs = st.container_statuses?.into_iter().next()?;
            let w = cs.state.as_ref()?.waiting.as_ref()?;
            (w.reason.as_deref() == Some("CrashLoopBackOff") && cs.restart_count == 2).then_some(cs)
        })
        .await;
    assert_eq!(cs.restart_count, 2);
    assert_eq!(cs.last_state.unwrap().terminated.unwrap().exit_code, 2);
    // ...and restarts once the back-off ends.
    let c = a
        .wait(10, "restarted", async || a.running_container("c"))
        .await;
    assert_eq!(c.metadata.unwrap().attempt, 3);
    a.stop().await;
}

#[tokio::test]
async fn never_restart_pods_complete_and_release_the_sandbox() {
    let a = start(|_| {}).await;
    let pods: Api<Pod> = Api::namespaced(a.client.clone(), "default");
    pods.create(&PostParams::default(), &simple("once", "Never"))
        .await
        .unwrap();
    let c = a
        .wait(10, "running", async || a.running_container("c"))
        .await;
    a.rt.exit_container(&c.id, 0);
    a.wait(10, "Succeeded", async || {
        let st = a.pod_status("once").await?;
        (st.phase.as_deref() == Some("Succeeded")).then_some(())
    })
    .await;
    a.wait(10, "sandbox stopped", async || {
        a.rt.calls()
            .iter()
            .any(|c| c.starts_with("StopPodSandbox"))
            .then_some(())
    })
    .await;
    assert!(a.running_container("c").is_none());
    a.stop().await;
}

#[tokio::test]
async fn image_policies() {
    let a = start(|_| {}).await;
    let pods: Api<Pod> = Api::namespaced(a.client.clone(), "default");
    let never = pod(
        "never",
        serde_json::json!({"containers": [{"name": "c", "image": "missing:1", "imagePullPolicy": "Never"}]}),
    );
    let always = pod(
        "always",
        serde_json::json!({"containers": [{"name": "c", "image": "busybox:1.35", "imagePullPolicy": "Always"}]}),
    );
    let absent = pod(
        "absent",
        serde_json::json!({"containers": [{"name": "c", "image": "nothere:2", "imagePullPolicy": "IfNotPresent"}]}),
    );
    for p in [never, always, absent] {
        pods.create(&PostParams::default(), &p).await.unwrap();
    }
    let reason = |name: &'static str| {
        let a = &a;
        async move {
            let st = a.pod_status(name).await?;
            st.container_statuses?
                .into_iter()
                .next()?
                .state?
                .waiting?
                .reason
        }
    };
    a.wait(10, "ErrImageNeverPull", async || {
        (reason("never").await.as_deref() == Some("ErrImageNeverPull")).then_some(())
    })
    .await;
    a.wait(10, "Always pulls", async || {
        let st = a.pod_status("always").await?;
        (st.phase.as_deref() == Some("Running")).then_some(())
    })
    .await;
    assert!(a.rt.calls().iter().any(|c| c == "PullImage busybox:1.35"));
    let reasons = event_reasons(&a.client, "never").await;
    assert!(
        reasons.iter().any(|x| x == "ErrImageNeverPull"),
        "{reasons:?}"
    );
    // A failed pull is ErrImagePull, then ImagePullBackOff while backing off.
    a.wait(10, "ImagePullBackOff", async || {
        (reason("absent").await.as_deref() == Some("ImagePullBackOff")).then_some(())
    })
    .await;
    a.stop().await;
}

#[tokio::test]
async fn deletion_stops_with_the_grace_period_and_removes_the_pod() {
    let a = start(|_| {}).await;
    let pods: Api<Pod> = Api::namespaced(a.client.clone(), "default");
    pods.create(&PostParams::default(), &simple("del", "Always"))
        .await
        .unwrap();
    let c = a
        .wait(10, "running", async || a.running_container("c"))
        .await;
    pods.delete("del", &DeleteParams::default()).await.unwrap();
    a.wait(10, "pod gone", async || {
        pods.get_opt("del").await.ok()?.is_none().then_some(())
    })
    .await;
    let calls = a.rt.calls();
    assert!(
        calls.contains(&format!("StopContainer {} 7", c.id)),
        "{calls:?}"
    );
    assert!(
        calls.iter().any(|c| c.starts_with("RemovePodSandbox")),
        "{calls:?}"
    );
    assert!(a.rt.sandboxes().is_empty());
    a.stop().await;
}

#[tokio::test]
async fn sandboxes_of_pods_that_no_longer_exist_are_removed() {
    let a = start(|rt| {
        let cfg = api::PodSandboxConfig {
            metadata: Some(api::PodSandboxMetadata {
                name: "ghost".into(),
                uid: "gone-uid".into(),
                namespace: "default".into(),
                attempt: 0,
            }),
            labels: HashMap::from([(labels::POD_UID.to_string(), "gone-uid".to_string())]),
            ..Default::default()
        };
        futures::executor::block_on(rt.run_pod_sandbox(cfg)).unwrap();
    })
    .await;
    a.wait(10, "orphan removed", async || {
        a.rt.sandboxes().is_empty().then_some(())
    })
    .await;
    a.stop().await;
}

#[tokio::test]
async fn readiness_gates_ready_and_liveness_restarts() {
    let a = start(|_| {}).await;
    let pods: Api<Pod> = Api::namespaced(a.client.clone(), "default");
    let p = pod(
        "probed",
        serde_json::json!({
            "terminationGracePeriodSeconds": 3,
            "containers": [
                {"name": "unready", "image": "busybox:1.35", "imagePullPolicy": "IfNotPresent",
                 "readinessProbe": {"exec": {"command": ["false"]}, "periodSeconds": 1, "failureThreshold": 1}},
                {"name": "ready", "image": "busybox:1.35", "imagePullPolicy": "IfNotPresent",
                 "readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 1}},
                {"name": "dying", "image": "busybox:1.35", "imagePullPolicy": "IfNotPresent",
                 "livenessProbe": {"exec": {"command": ["false"]}, "periodSeconds": 1, "failureThreshold": 2}}
            ]
        }),
    );
    pods.create(&PostParams::default(), &p).await.unwrap();
    let st = a
        .wait(10, "ready container ready", async || {
            let st = a.pod_status("probed").await?;
            let cs = st.container_statuses.clone()?;
            cs.iter()
                .any(|c| c.name == "ready" && c.ready)
                .then_some(st)
        })
        .await;
    let cs = st.container_statuses.unwrap();
    let unready = cs.iter().find(|c| c.name == "unready").unwrap();
    assert!(!unready.ready);
    assert_eq!(unready.started, Some(true));
    let ready = st
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.status, "False");
    assert!(ready.message.unwrap_or_default().contains("unready"));
    // Two failed liveness probes one second apart: killed with the grace period, restarted.
    let c = a
        .wait(15, "liveness restart", async || {
            let c = a.running_container("dying")?;
            (c.metadata.as_ref()?.attempt == 1).then_some(c)
        })
        .await;
    assert!(a
        .rt
        .calls()
        .iter()
        .any(|x| x.starts_with("StopContainer") && x.ends_with(" 3")));
    assert!(c.metadata.is_some());
    a.stop().await;
}

#[tokio::test]
async fn waits_for_its_assigned_pod_cidr_before_configuring_cni() {
    // No pod CIDR of its own: the node waits for the node IPAM controller's.
    let a = start_with(|_| {}, |c| c.pod_cidr = None).await;
    let nodes: Api<Node> = Api::all(a.client.clone());
    a.wait(10, "the node to register", async || {
        nodes.get_opt(NODE).await.ok()?
    })
    .await;
    let conflist = a._dir.path().join("net.d/10-ferrokube.conflist");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!conflist.exists(), "wrote a CNI config before any pod CIDR");
    assert!(!a.task.is_finished(), "the agent gave up at once");
    // What the node IPAM controller does.
    let patch =
        serde_json::json!({"spec": {"podCIDR": "10.42.7.0/24", "podCIDRs": ["10.42.7.0/24"]}});
    nodes
        .patch(
            NODE,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .unwrap();
    let text = a
        .wait(10, "the CNI config", async || {
            std::fs::read_to_string(&conflist).ok()
        })
        .await;
    assert!(text.contains(r#""subnet": "10.42.7.0/24""#), "{text}");
    a.stop().await;
}
