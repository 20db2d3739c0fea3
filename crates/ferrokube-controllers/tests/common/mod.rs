//! Helpers for the workload controllers' end-to-end tests: an in-process API
//! server, the controllers running against it, and a fake kubelet that marks
//! pods Running and Ready through the status subresource.
#![allow(dead_code, reason = "each test binary uses a part of these helpers")]

use std::future::Future;
use std::time::Duration;

use ferrokube_client::testing::TestApi;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// How long any wait in these tests may take.
pub(crate) const WAIT: Duration = Duration::from_secs(20);

/// The workload controllers under their identities in `ferrokube server`:
/// informers as `system:kube-controller-manager`, each controller as its
/// service account in kube-system, with only their roles' rights.
fn run_controllers(
    api: &TestApi,
    cancel: CancellationToken,
) -> impl Future<Output = ()> + Send + 'static {
    use ferrokube_controllers::clients::{ControllerClients, NAMESPACE};
    let root = api.in_process_client("system:kube-controller-manager");
    let clients = ControllerClients::per_service_account(&root, |sa| {
        api.in_process_service_account(NAMESPACE, sa)
    });
    ferrokube_controllers::workloads::run_as(root, clients, cancel)
}

pub(crate) struct Env {
    pub api: TestApi,
    pub client: kube::Client,
    pub ns: String,
    cancel: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Env {
    /// A server, a namespace `ns`, and the workload controllers running.
    pub(crate) async fn start(ns: &str) -> Env {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let api = TestApi::start().await.expect("test API server");
        let client = api.client().await.expect("client");
        let nss: Api<Namespace> = Api::all(client.clone());
        nss.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}})).expect("namespace"),
        )
        .await
        .expect("creating the namespace");
        let cancel = CancellationToken::new();
        let task = tokio::spawn(run_controllers(&api, cancel.clone()));
        Env {
            api,
            client,
            ns: ns.to_string(),
            cancel,
            task: Some(task),
        }
    }

    pub(crate) fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// Stops the controllers (and waits for them).
    pub(crate) async fn stop_controllers(&mut self) {
        self.cancel.cancel();
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(WAIT, t).await;
        }
    }

    /// Starts the controllers again (after `stop_controllers`).
    pub(crate) fn restart_controllers(&mut self) {
        self.cancel = CancellationToken::new();
        self.task = Some(tokio::spawn(run_controllers(
            &self.api,
            self.cancel.clone(),
        )));
    }

    pub(crate) async fn pods(&self, selector: &str) -> Vec<Pod> {
        self.api::<Pod>()
            .list(&ListParams::default().labels(selector))
            .await
            .expect("listing pods")
            .items
    }

    /// Live (not terminating) pods matching `selector`.
    pub(crate) async fn live_pods(&self, selector: &str) -> Vec<Pod> {
        self.pods(selector)
            .await
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect()
    }

    /// The fake kubelet: marks `pod` Running and Ready (or not) with an IP.
    /// A pod deleted meanwhile is skipped (false).
    pub(crate) async fn set_ready(&self, pod: &Pod, ready: bool) -> bool {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let ip = pod_ip(&name);
        let now = jiff::Timestamp::now().to_string();
        let status = json!({"status": {
            "phase": "Running",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "conditions": [
                {"type": "Ready", "status": if ready {"True"} else {"False"}, "lastTransitionTime": now},
            ],
        }});
        match self
            .api::<Pod>()
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
            .await
        {
            Ok(_) => true,
            Err(kube::Error::Api(s)) if s.code == 404 => false,
            Err(e) => panic!("patching pod status: {e}"),
        }
    }

    /// Marks every live pod matching `selector` ready; returns how many.
    pub(crate) async fn ready_all(&self, selector: &str) -> usize {
        let pods = self.live_pods(selector).await;
        let mut n = 0;
        for p in &pods {
            if !is_ready(p) && self.set_ready(p, true).await {
                n += 1;
            }
        }
        n
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// A stable IP for a pod name (10.42.x.y).
pub(crate) fn pod_ip(name: &str) -> String {
    let h = name.bytes().fold(2166136261u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(16777619)
    });
    format!("10.42.{}.{}", (h >> 8) % 250 + 1, h % 250 + 1)
}

pub(crate) fn is_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

pub(crate) fn obj<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).expect("test object")
}
