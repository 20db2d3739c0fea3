//! Shared pieces of the end-to-end tests: an in-process API server, a
//! scheduler on it, hand-made Node objects (no kubelet) and pods, and
//! bounded waits for what a user would see.

#![allow(
    dead_code,
    reason = "each test binary uses the part of these helpers it needs"
)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ferrokube_client::testing::TestApi;
use ferrokube_scheduler::SchedulerConfig;
use k8s_openapi::api::core::v1::{
    Container, Event, Node, NodeCondition, NodeSpec, NodeStatus, Pod, PodSpec,
    ResourceRequirements, Taint,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ListParams, PostParams};
use tokio_util::sync::CancellationToken;

pub(crate) struct Env {
    pub api: TestApi,
    pub client: kube::Client,
    pub cancel: CancellationToken,
    pub task: Option<tokio::task::JoinHandle<()>>,
}

impl Env {
    /// A server and one scheduler without leader election.
    pub(crate) async fn start() -> Env {
        let api = TestApi::start().await.expect("api server");
        let client = api.client().await.expect("client");
        let cancel = CancellationToken::new();
        let config = SchedulerConfig {
            identity: "test".into(),
            ..Default::default()
        };
        let task = tokio::spawn(ferrokube_scheduler::run_without_election(
            client.clone(),
            config,
            cancel.clone(),
        ));
        Env {
            api,
            client,
            cancel,
            task: Some(task),
        }
    }

    pub(crate) async fn stop(mut self) {
        self.cancel.cancel();
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
    }

    pub(crate) fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), "default")
    }

    pub(crate) async fn add_node(&self, n: Node) {
        let api: Api<Node> = Api::all(self.client.clone());
        api.create(&PostParams::default(), &n)
            .await
            .expect("create node");
    }

    /// A PriorityClass `name` of `value` (not the global default), with its
    /// preemption policy if one is given.
    pub(crate) async fn add_priority_class(
        &self,
        name: &str,
        value: i32,
        preemption: Option<&str>,
    ) {
        let api: Api<k8s_openapi::api::scheduling::v1::PriorityClass> =
            Api::all(self.client.clone());
        let pc = k8s_openapi::api::scheduling::v1::PriorityClass {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            value,
            preemption_policy: preemption.map(str::to_string),
            ..Default::default()
        };
        api.create(&PostParams::default(), &pc)
            .await
            .expect("create priority class");
    }

    pub(crate) async fn add_pod(&self, p: Pod) {
        self.pods()
            .create(&PostParams::default(), &p)
            .await
            .expect("create pod");
    }

    /// The node the pod gets bound to, waiting at most 20 s.
    pub(crate) async fn bound_node(&self, name: &str) -> Option<String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(p) = self.pods().get(name).await {
                if let Some(n) = p.spec.and_then(|s| s.node_name).filter(|n| !n.is_empty()) {
                    return Some(n);
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    /// The pod's PodScheduled condition once it is False (at most 20 s):
    /// (reason, message).
    pub(crate) async fn unschedulable_condition(&self, name: &str) -> Option<(String, String)> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(p) = self.pods().get(name).await {
                let c = p
                    .status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .into_iter()
                    .find(|c| c.type_ == "PodScheduled" && c.status == "False");
                if let Some(c) = c {
                    return Some((c.reason.unwrap_or_default(), c.message.unwrap_or_default()));
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    /// Messages of the pod's events with this reason (waits at most 20 s for one).
    pub(crate) async fn event_messages(&self, pod: &str, reason: &str) -> Vec<String> {
        let api: Api<Event> = Api::namespaced(self.client.clone(), "default");
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(list) = api.list(&ListParams::default()).await {
                let msgs: Vec<String> = list
                    .items
                    .into_iter()
                    .filter(|e| e.involved_object.name.as_deref() == Some(pod))
                    .filter(|e| e.reason.as_deref() == Some(reason))
                    .filter_map(|e| e.message)
                    .collect();
                if !msgs.is_empty() {
                    return msgs;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        vec![]
    }

    /// Ok(node) once bound, Err(message) once PodScheduled=False (20 s at most).
    pub(crate) async fn unschedulable_condition_or_node(
        &self,
        name: &str,
    ) -> Result<String, String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(p) = self.pods().get(name).await {
                if let Some(n) = p
                    .spec
                    .as_ref()
                    .and_then(|s| s.node_name.clone())
                    .filter(|n| !n.is_empty())
                {
                    return Ok(n);
                }
                let c = p
                    .status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .into_iter()
                    .find(|c| c.type_ == "PodScheduled" && c.status == "False");
                if let Some(c) = c {
                    return Err(c.message.unwrap_or_default());
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err("neither bound nor unschedulable".into())
    }

    /// Asserts the pod stays unbound for `d`.
    pub(crate) async fn stays_pending(&self, name: &str, d: Duration) -> bool {
        tokio::time::sleep(d).await;
        self.pods()
            .get(name)
            .await
            .ok()
            .and_then(|p| p.spec)
            .and_then(|s| s.node_name)
            .is_none_or(|n| n.is_empty())
    }
}

/// A Ready node with the given allocatable cpu and memory and 110 pods.
pub(crate) fn node(name: &str, cpu: &str, mem: &str) -> Node {
    let mut alloc = BTreeMap::new();
    alloc.insert("cpu".to_string(), Quantity(cpu.into()));
    alloc.insert("memory".to_string(), Quantity(mem.into()));
    alloc.insert("pods".to_string(), Quantity("110".into()));
    Node {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(
                [
                    ("kubernetes.io/hostname".to_string(), name.to_string()),
                    ("kubernetes.io/os".to_string(), "linux".to_string()),
                ]
                .into(),
            ),
            ..Default::default()
        },
        spec: Some(NodeSpec::default()),
        status: Some(NodeStatus {
            allocatable: Some(alloc.clone()),
            capacity: Some(alloc),
            conditions: Some(vec![NodeCondition {
                type_: "Ready".into(),
                status: "True".into(),
                reason: Some("KubeletReady".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
    }
}

pub(crate) fn labeled(mut n: Node, labels: &[(&str, &str)]) -> Node {
    let l = n.metadata.labels.get_or_insert_with(BTreeMap::new);
    for (k, v) in labels {
        l.insert(k.to_string(), v.to_string());
    }
    n
}

pub(crate) fn tainted(mut n: Node, key: &str, value: &str, effect: &str) -> Node {
    n.spec
        .get_or_insert_with(Default::default)
        .taints
        .get_or_insert_with(Vec::new)
        .push(Taint {
            key: key.into(),
            value: Some(value.into()),
            effect: effect.into(),
            time_added: None,
        });
    n
}

/// A pod with one container requesting cpu and memory ("" = none).
pub(crate) fn pod(name: &str, cpu: &str, mem: &str) -> Pod {
    let mut req = BTreeMap::new();
    if !cpu.is_empty() {
        req.insert("cpu".to_string(), Quantity(cpu.into()));
    }
    if !mem.is_empty() {
        req.insert("memory".to_string(), Quantity(mem.into()));
    }
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "app".into(),
                image: Some("registry.example/app:1".into()),
                resources: Some(ResourceRequirements {
                    requests: Some(req),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: None,
    }
}

pub(crate) fn with_labels(mut p: Pod, labels: &[(&str, &str)]) -> Pod {
    let l = p.metadata.labels.get_or_insert_with(BTreeMap::new);
    for (k, v) in labels {
        l.insert(k.to_string(), v.to_string());
    }
    p
}

pub(crate) fn spec(p: &mut Pod) -> &mut PodSpec {
    p.spec.get_or_insert_with(Default::default)
}
