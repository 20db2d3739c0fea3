//! The pods bound to this node: a watch on pods with `spec.nodeName=<node>` feeds one
//! worker per pod (by UID); pods that disappear are cleaned up, and sandboxes in the
//! runtime whose pods no longer exist are removed once the first list is in.

pub(crate) mod backoff;
pub(crate) mod container;
pub(crate) mod deadline;
pub(crate) mod env;
pub(crate) mod ephemeral;
pub(crate) mod grpc_probe;
pub(crate) mod hooks;
pub(crate) mod hosts;
pub(crate) mod ownership;
mod plan;
pub(crate) mod probes;
pub(crate) mod sandbox;
pub(crate) mod status;
pub(crate) mod subpath;
pub(crate) mod sysctls;
pub(crate) mod termination;
pub(crate) mod volumes;
pub(crate) mod worker;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::cri::{api, labels, Runtime};
use crate::KubeletConfig;

/// What every worker shares.
pub(crate) struct Ctx {
    pub client: kube::Client,
    pub runtime: Arc<dyn Runtime>,
    pub config: Arc<KubeletConfig>,
    pub host_ip: IpAddr,
    /// Prefix of container IDs in statuses ("containerd").
    pub runtime_name: String,
    pub node_capacity: BTreeMap<String, crate::quantity::Quantity>,
    pub recorder: crate::events::Recorder,
    /// Service-account tokens of the pods' projected volumes.
    pub tokens: volumes::TokenCache,
}

struct Handle {
    tx: watch::Sender<Option<Arc<Pod>>>,
    task: JoinHandle<()>,
}

/// Runs the pod workers.
pub(crate) struct PodManager {
    ctx: Arc<Ctx>,
}

impl PodManager {
    pub(crate) fn new(
        client: kube::Client,
        config: Arc<KubeletConfig>,
        runtime: Arc<dyn Runtime>,
        host_ip: IpAddr,
        runtime_name: String,
    ) -> Self {
        let node_capacity = crate::node::capacity(&config.data_dir);
        let recorder = crate::events::Recorder::new(client.clone(), config.node_name.clone());
        PodManager {
            ctx: Arc::new(Ctx {
                recorder,
                client,
                runtime,
                config,
                host_ip,
                runtime_name,
                node_capacity,
                tokens: Default::default(),
            }),
        }
    }

    fn dispatch(
        &self,
        workers: &mut HashMap<String, Handle>,
        pod: Pod,
        cancel: &CancellationToken,
    ) {
        let Some(uid) = pod.metadata.uid.clone() else {
            return;
        };
        let pod = Arc::new(pod);
        if let Some(h) = workers.get(&uid) {
            if !h.task.is_finished() {
                h.tx.send_replace(Some(pod));
                return;
            }
        }
        let (tx, rx) = watch::channel(Some(pod));
        let w = worker::Worker::new(self.ctx.clone(), uid.clone());
        let task = tokio::spawn(w.run(rx, cancel.child_token()));
        workers.insert(uid, Handle { tx, task });
    }

    /// Lists the runtime once and wakes the workers of pods whose sandboxes or
    /// containers changed state since the last list.
    async fn relist(
        &self,
        workers: &HashMap<String, Handle>,
        seen: &mut HashMap<String, Vec<(String, i32)>>,
    ) {
        let (Ok(sandboxes), Ok(containers)) = (
            self.ctx.runtime.list_pod_sandbox(None).await,
            self.ctx.runtime.list_containers(None).await,
        ) else {
            return;
        };
        let mut now: HashMap<String, Vec<(String, i32)>> = HashMap::new();
        for s in &sandboxes {
            if let Some(uid) = s.labels.get(labels::POD_UID) {
                now.entry(uid.clone())
                    .or_default()
                    .push((s.id.clone(), s.state));
            }
        }
        for c in &containers {
            if let Some(uid) = c.labels.get(labels::POD_UID) {
                now.entry(uid.clone())
                    .or_default()
                    .push((c.id.clone(), 100 + c.state));
            }
        }
        for v in now.values_mut() {
            v.sort();
        }
        for (uid, h) in workers {
            if now.get(uid) != seen.get(uid) && !h.task.is_finished() {
                // Same pod, new runtime state: a change notification wakes the worker.
                h.tx.send_modify(|_| {});
            }
        }
        *seen = now;
    }

    /// Removes runtime sandboxes whose pod UID is not among `known`.
    async fn remove_orphans(&self, known: &HashSet<String>) {
        let Ok(sandboxes) = self.ctx.runtime.list_pod_sandbox(None).await else {
            return;
        };
        let orphans: HashSet<String> = sandboxes
            .iter()
            .filter_map(|s| s.labels.get(labels::POD_UID).cloned())
            .filter(|uid| !known.contains(uid))
            .collect();
        for uid in orphans {
            tracing::info!(%uid, "removing containers of a pod that no longer exists");
            let w = worker::Worker::new(self.ctx.clone(), uid.clone());
            if let Err(e) = w.kill_pod(None, 0).await {
                tracing::warn!(%uid, "removing orphaned pod: {}", e.message());
            }
        }
    }

    /// Watches this node's pods until `cancel`. Containers keep running when it returns.
    pub(crate) async fn run(self, cancel: CancellationToken) -> anyhow::Result<()> {
        let api: Api<Pod> = Api::all(self.ctx.client.clone());
        let selector = format!("spec.nodeName={}", self.ctx.config.node_name);
        let mut stream = watcher::watcher(api, watcher::Config::default().fields(&selector))
            .default_backoff()
            .boxed();
        let mut workers: HashMap<String, Handle> = HashMap::new();
        let mut listed: HashSet<String> = HashSet::new();
        let mut prune = tokio::time::interval(Duration::from_secs(5));
        let mut relist = tokio::time::interval(self.ctx.config.relist_interval);
        relist.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut seen: HashMap<String, Vec<(String, i32)>> = HashMap::new();
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = relist.tick() => self.relist(&workers, &mut seen).await,
                _ = prune.tick() => workers.retain(|_, h| !h.task.is_finished()),
                ev = stream.next() => match ev {
                    None => break,
                    Some(Err(e)) => tracing::warn!("watching pods: {e}"),
                    Some(Ok(Event::Init)) => listed.clear(),
                    Some(Ok(Event::InitApply(pod))) => {
                        listed.extend(pod.metadata.uid.clone());
                        self.dispatch(&mut workers, pod, &cancel);
                    }
                    Some(Ok(Event::InitDone)) => {
                        for (uid, h) in &workers {
                            if !listed.contains(uid) {
                                h.tx.send_replace(None);
                            }
                        }
                        let mut known = listed.clone();
                        known.extend(workers.keys().cloned());
                        self.remove_orphans(&known).await;
                    }
                    Some(Ok(Event::Apply(pod))) => self.dispatch(&mut workers, pod, &cancel),
                    Some(Ok(Event::Delete(pod))) => {
                        if let Some(h) = pod.metadata.uid.as_ref().and_then(|u| workers.get(u)) {
                            h.tx.send_replace(None);
                        }
                    }
                },
            }
        }
        // Workers see the same cancellation; give them a moment to finish a call.
        for (_, h) in workers {
            let _ = tokio::time::timeout(Duration::from_secs(5), h.task).await;
        }
        Ok(())
    }
}

/// The runtime's name for container IDs, from its version answer.
pub(crate) fn runtime_name(v: &api::VersionResponse) -> String {
    if v.runtime_name.is_empty() {
        "containerd".into()
    } else {
        v.runtime_name.clone()
    }
}
