//! One pod's worker: drives the runtime towards the pod's spec (sandbox, init
//! containers in order, containers, restarts with back-off, image pulls by policy),
//! writes the pod's status, and on deletion stops everything within the grace period
//! and removes the pod from the API.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use k8s_openapi::api::core::v1::{Container, HostIP, Pod, PodIP};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::backoff::{now_ns, Backoff};
use super::container::{container_config, violates_non_root, ContainerInputs};
use super::env::{container_env, EnvContext};
use super::hooks;
use super::hosts;
use super::plan::{self, is_exited, is_running, Action, ByName, ProbeKill, SandboxSeen, Seen};
use super::probes::{self, Kind};
use super::sandbox::{log_dir, sandbox_config};
use super::status::{self, Observed};
use super::termination;
use super::volumes;
use super::Ctx;
use crate::cri::{api, labels};

/// Per-pod state the worker keeps between syncs.
pub(crate) struct Worker {
    ctx: Arc<Ctx>,
    uid: String,
    restart_backoff: Backoff,
    pull_backoff: Backoff,
    /// Container name → (reason, message) while it cannot run.
    waiting: HashMap<String, (String, String)>,
    last_written: Option<Value>,
    start_time: Option<Time>,
    probe_table: Arc<probes::Table>,
    /// Volume name → (host path, read-only), and when they were last refreshed.
    volumes: Option<(volumes::PreparedVolumes, std::time::Instant)>,
    /// Probe tasks by container ID.
    probers: HashMap<String, Vec<tokio::task::JoinHandle<()>>>,
    /// The pod as the manager last sent it: a running postStart hook gives way when
    /// the pod is deleted.
    pod_rx: Option<watch::Receiver<Option<Arc<Pod>>>>,
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.ctx.recorder.forget(&self.uid);
        for (_, tasks) in self.probers.drain() {
            for t in tasks {
                t.abort();
            }
        }
    }
}

fn uid_filter(uid: &str) -> HashMap<String, String> {
    HashMap::from([(labels::POD_UID.to_string(), uid.to_string())])
}

fn pod_key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.name.as_deref().unwrap_or("")
    )
}

/// How often the contents of configMap and secret volumes are refreshed.
const VOLUME_REFRESH: Duration = Duration::from_secs(10);

/// The container of the pod's spec (init, regular or ephemeral) by name.
fn container_named(pod: &Pod, name: &str) -> Option<Container> {
    let spec = pod.spec.as_ref()?;
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .find(|c| c.name == name)
        .cloned()
        .or_else(|| {
            super::ephemeral::of(pod)
                .into_iter()
                .map(|(c, _)| c)
                .find(|c| c.name == name)
        })
}

/// What one pass has observed and set up while acting on its plan.
struct Pass {
    /// The pod's sandboxes, newest first.
    sandboxes: Vec<SandboxSeen>,
    /// The pod's containers as the pass last listed them.
    containers: ByName,
    /// The ready sandbox the containers run in, once the plan chose it.
    sandbox: Option<Running>,
}

impl Pass {
    fn running(&self) -> anyhow::Result<&Running> {
        self.sandbox
            .as_ref()
            .context("a container action before the plan chose a sandbox")
    }
}

/// The ready sandbox of a pass: its ID, the configuration it was created with
/// (containers are created against it) and its addresses.
struct Running {
    id: String,
    cfg: api::PodSandboxConfig,
    ips: Vec<String>,
}

/// How a container is started: which attempt, whether it is an init container,
/// and in which sandbox.
struct Start<'a> {
    attempt: u32,
    init: bool,
    sandbox: &'a Running,
}

impl<'a> Start<'a> {
    fn new(attempt: u32, init: bool, sandbox: &'a Running) -> Self {
        Start {
            attempt,
            init,
            sandbox,
        }
    }
}

/// What a pass does after an action.
enum Flow {
    /// Go on with the next action.
    Next,
    /// The pass is over: look again after this long (`None`: the pod is gone).
    Stop(Option<Duration>),
    /// The world changed under the plan (a new sandbox): decide again.
    Again,
}

/// The statuses of the pod's containers, and how its init containers stand.
struct ContainerStatuses {
    /// An init container failed and will not run again.
    init_failed: bool,
    /// Every init container succeeded.
    init_done: bool,
    init: Vec<k8s_openapi::api::core::v1::ContainerStatus>,
    containers: Vec<k8s_openapi::api::core::v1::ContainerStatus>,
    ephemeral: Vec<k8s_openapi::api::core::v1::ContainerStatus>,
}

/// Logs (at debug, target `ferrokube_kubelet::pods::steps`) how long a step took:
/// where a pod's start-up time goes.
fn step(what: &str, since: std::time::Instant) {
    tracing::debug!(target: "ferrokube_kubelet::pods::steps", step = what, ms = since.elapsed().as_secs_f64() * 1e3);
}

/// The grace period a deletion allows.
pub(crate) fn grace_period(pod: &Pod) -> i64 {
    pod.metadata
        .deletion_grace_period_seconds
        .or(pod
            .spec
            .as_ref()
            .and_then(|s| s.termination_grace_period_seconds))
        .unwrap_or(30)
        .max(0)
}

/// The pull policy, with Kubernetes' default (`Always` for `:latest` or no tag).
pub(crate) fn pull_policy(c: &Container) -> String {
    if let Some(p) = &c.image_pull_policy {
        return p.clone();
    }
    let image = c.image.as_deref().unwrap_or("");
    if image.contains('@') {
        return "IfNotPresent".into();
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, tag)) if tag != "latest" => "IfNotPresent".into(),
        _ => "Always".into(),
    }
}

impl Worker {
    pub(crate) fn new(ctx: Arc<Ctx>, uid: String) -> Self {
        let (i, m) = (ctx.config.backoff_initial, ctx.config.backoff_max);
        Worker {
            ctx,
            uid,
            restart_backoff: Backoff::new(i, m),
            pull_backoff: Backoff::new(i, m),
            waiting: HashMap::new(),
            last_written: None,
            start_time: None,
            probe_table: Arc::new(probes::Table::default()),
            volumes: None,
            probers: HashMap::new(),
            pod_rx: None,
        }
    }

    /// Runs until the pod is gone (deleted by us, or vanished from the API) or `cancel`.
    pub(crate) async fn run(
        mut self,
        mut rx: watch::Receiver<Option<Arc<Pod>>>,
        cancel: CancellationToken,
    ) {
        let mut last_pod: Option<Arc<Pod>> = None;
        self.pod_rx = Some(rx.clone());
        loop {
            let current = rx.borrow_and_update().clone();
            let wake = match current {
                None => {
                    // Gone from the API: stop whatever is left.
                    let grace = last_pod.as_deref().map(grace_period).unwrap_or(30);
                    if let Err(e) = self.kill_pod(last_pod.as_deref(), grace).await {
                        tracing::warn!(uid = %self.uid, "cleaning up a removed pod: {e}");
                    }
                    return;
                }
                Some(pod) => {
                    last_pod = Some(pod.clone());
                    match self.sync(&pod).await {
                        Ok(Some(w)) => w,
                        Ok(None) => return,
                        Err(e) => {
                            let doing = if pod.metadata.deletion_timestamp.is_some() {
                                "terminating"
                            } else {
                                "sync"
                            };
                            tracing::warn!(pod = %pod_key(&pod), "{doing}: {e}");
                            Duration::from_secs(2)
                        }
                    }
                }
            };
            let table = self.probe_table.clone();
            tokio::select! {
                _ = cancel.cancelled() => return,
                changed = rx.changed() => if changed.is_err() { return },
                _ = table.changed.notified() => {}
                _ = tokio::time::sleep(wake) => {}
            }
        }
    }

    async fn event(
        &self,
        pod: &Pod,
        container: Option<&str>,
        warning: bool,
        reason: &str,
        message: String,
    ) {
        let t = std::time::Instant::now();
        self.ctx
            .recorder
            .pod_event(pod, container, warning, reason, message)
            .await;
        step("event", t);
    }

    async fn sandboxes(&self) -> Result<Vec<api::PodSandbox>, tonic::Status> {
        let filter = api::PodSandboxFilter {
            label_selector: uid_filter(&self.uid),
            ..Default::default()
        };
        let mut v = self.ctx.runtime.list_pod_sandbox(Some(filter)).await?;
        v.sort_by_key(|s| std::cmp::Reverse(s.created_at));
        Ok(v)
    }

    /// Container statuses of this pod by name, newest attempt first.
    async fn containers(&self) -> Result<ByName, tonic::Status> {
        let filter = api::ContainerFilter {
            label_selector: uid_filter(&self.uid),
            ..Default::default()
        };
        let list = self.ctx.runtime.list_containers(Some(filter)).await?;
        let mut by_name = ByName::new();
        for c in list {
            match self.ctx.runtime.container_status(&c.id).await {
                Ok(st) => {
                    let name = st
                        .metadata
                        .as_ref()
                        .map(|m| m.name.clone())
                        .unwrap_or_default();
                    by_name.entry(name).or_default().push(st);
                }
                Err(e) if crate::cri::is_not_found(&e) => {}
                Err(e) => return Err(e),
            }
        }
        for v in by_name.values_mut() {
            v.sort_by_key(|c| std::cmp::Reverse((plan::attempt_of(c), c.created_at)));
        }
        Ok(by_name)
    }

    /// One pass towards the spec; returns when to look again, or `None` once the
    /// pod was deleted and is gone.
    async fn sync(&mut self, pod: &Pod) -> anyhow::Result<Option<Duration>> {
        let t_sync = std::time::Instant::now();
        let r = self.sync_once(pod).await;
        step("sync", t_sync);
        r
    }

    /// Observes the pod's sandboxes and containers, decides what to do
    /// ([`plan::decide`]) and does it; after a new sandbox, observes and decides
    /// again.
    async fn sync_once(&mut self, pod: &Pod) -> anyhow::Result<Option<Duration>> {
        let mut pass = Pass {
            sandboxes: Vec::new(),
            containers: ByName::new(),
            sandbox: None,
        };
        // A pod being deleted is terminated whatever the runtime holds.
        if pod.metadata.deletion_timestamp.is_none() {
            pass.sandboxes = self
                .sandboxes()
                .await?
                .iter()
                .map(SandboxSeen::of)
                .collect();
            pass.containers = self.containers().await?;
        }
        if self.start_time.is_none() && pod.spec.is_some() {
            self.start_time = pod
                .status
                .as_ref()
                .and_then(|s| s.start_time.clone())
                .or_else(|| Some(Time(jiff::Timestamp::now())));
        }
        'decide: loop {
            for action in self.decide(pod, &pass) {
                match self.perform(pod, &mut pass, action).await? {
                    Flow::Next => {}
                    Flow::Stop(wake) => return Ok(wake),
                    Flow::Again => continue 'decide,
                }
            }
            // Plans end with a wait, the termination or a new sandbox.
            return Ok(Some(self.ctx.config.pod_poll_interval));
        }
    }

    /// The actions of this pass, from what it has observed.
    fn decide(&self, pod: &Pod, pass: &Pass) -> Vec<Action> {
        let refusal = super::sysctls::admit(pod, &self.ctx.config.allowed_unsafe_sysctls);
        let deadline_left = pod
            .spec
            .as_ref()
            .and_then(|spec| super::deadline::left(spec, self.start_time.as_ref()));
        let volumes_stale = self
            .volumes
            .as_ref()
            .is_none_or(|(_, at)| at.elapsed() >= VOLUME_REFRESH);
        plan::decide(
            pod,
            &Seen {
                uid: &self.uid,
                sandboxes: &pass.sandboxes,
                containers: &pass.containers,
                sysctl_refusal: refusal.as_deref(),
                deadline_left,
                volumes_stale,
                restart_backoff: &self.restart_backoff,
                now_ns: now_ns(),
                poll: self.ctx.config.pod_poll_interval,
            },
        )
    }

    /// Does one action of the plan.
    async fn perform(
        &mut self,
        pod: &Pod,
        pass: &mut Pass,
        action: Action,
    ) -> anyhow::Result<Flow> {
        match action {
            Action::Terminate => {
                self.terminate(pod).await?;
                return Ok(Flow::Stop(None));
            }
            Action::StopSandbox { id } => self.ctx.runtime.stop_pod_sandbox(&id).await?,
            Action::Reject { reason, message } => self.reject(pod, reason, &message).await?,
            Action::DeadlineExceeded => self.deadline_exceeded(pod).await?,
            Action::WriteStatus => {
                self.write_status(pod, &pass.containers, None, None).await?;
            }
            Action::RemoveSandbox { id } => self.stop_sandbox(&id, 0).await,
            Action::CreateSandbox { attempt } => {
                return self.create_sandbox(pod, attempt, pass).await
            }
            Action::UseSandbox { id, attempt } => {
                let ips = self.sandbox_ips(&id).await;
                let cfg = sandbox_config(pod, attempt, &self.ctx.config);
                pass.sandbox = Some(Running { id, cfg, ips });
            }
            Action::PrepareVolumes => {
                if let Some(wake) = self.prepare_volumes(pod, pass).await? {
                    return Ok(Flow::Stop(Some(wake)));
                }
            }
            Action::StartEphemeral { name, target_id } => {
                let sb = pass.running()?;
                if let Some((c, _)) = super::ephemeral::of(pod)
                    .into_iter()
                    .find(|(c, _)| c.name == name)
                {
                    self.start_as(pod, &c, Start::new(0, false, sb), target_id.as_deref())
                        .await;
                }
            }
            Action::StartContainer { name, init } => {
                let sb = pass.running()?;
                if let Some(c) = container_named(pod, &name) {
                    self.start_as(pod, &c, Start::new(0, init, sb), None).await;
                }
            }
            Action::RestartContainer {
                name,
                init,
                exited_id,
                finished_at,
                attempt,
            } => {
                let sb = pass.running()?;
                if let Some(c) = container_named(pod, &name) {
                    self.restart_backoff.next(&name, finished_at);
                    self.remove_older_instances(&name, &exited_id).await;
                    self.start_as(pod, &c, Start::new(attempt, init, sb), None)
                        .await;
                }
            }
            Action::Waiting {
                name,
                reason,
                message,
            } => {
                if let Some(c) = container_named(pod, &name) {
                    self.set_waiting(pod, &c, reason, message).await;
                }
            }
            Action::ClearWaiting { name } => {
                self.waiting.remove(&name);
            }
            Action::SyncStatus => self.sync_status(pod, pass).await?,
            Action::Wait(wake) => return Ok(Flow::Stop(Some(wake))),
        }
        Ok(Flow::Next)
    }

    /// Creates the pod's sandbox: on success the pass goes on with it (and the
    /// containers as they now are), on failure an event, the status, and a retry
    /// in 5 s.
    async fn create_sandbox(
        &mut self,
        pod: &Pod,
        attempt: u32,
        pass: &mut Pass,
    ) -> anyhow::Result<Flow> {
        let cfg = sandbox_config(pod, attempt, &self.ctx.config);
        std::fs::create_dir_all(log_dir(&self.ctx.config, &self.uid))?;
        let t = std::time::Instant::now();
        let run = self.ctx.runtime.run_pod_sandbox(cfg).await;
        step("RunPodSandbox", t);
        match run {
            Ok(id) => {
                tracing::info!(pod = %pod_key(pod), sandbox = %id, "sandbox started");
                pass.containers = self.containers().await?;
                pass.sandboxes = vec![SandboxSeen {
                    id,
                    ready: true,
                    attempt,
                }];
                Ok(Flow::Again)
            }
            Err(e) => {
                tracing::warn!(pod = %pod_key(pod), "creating the sandbox: {}", e.message());
                self.event(
                    pod,
                    None,
                    true,
                    "FailedCreatePodSandBox",
                    format!("Failed to create pod sandbox: {}", e.message()),
                )
                .await;
                self.write_status(pod, &pass.containers, None, None).await?;
                Ok(Flow::Stop(Some(Duration::from_secs(5))))
            }
        }
    }

    /// The sandbox's addresses (none when its status cannot be read).
    async fn sandbox_ips(&self, id: &str) -> Vec<String> {
        match self.ctx.runtime.pod_sandbox_status(id).await {
            Ok(st) => st
                .network
                .map(|n| {
                    let mut v = vec![n.ip];
                    v.extend(n.additional_ips.into_iter().map(|i| i.ip));
                    v.retain(|ip| !ip.is_empty());
                    v
                })
                .unwrap_or_default(),
            Err(_) => Vec::new(),
        }
    }

    /// Prepares (or refreshes) the pod's volumes; a failure is a FailedMount event,
    /// and if they were never prepared, the status and a retry in 2 s (returned).
    async fn prepare_volumes(
        &mut self,
        pod: &Pod,
        pass: &Pass,
    ) -> anyhow::Result<Option<Duration>> {
        let host_ip = self.ctx.host_ip.to_string();
        let prepared = volumes::prepare(
            &self.ctx.client,
            &self.ctx.tokens,
            &self.ctx.config,
            pod,
            &host_ip,
            &self.ctx.node_capacity,
        )
        .await;
        let e = match prepared {
            Ok(v) => {
                self.volumes = Some((v, std::time::Instant::now()));
                return Ok(None);
            }
            Err(e) => e,
        };
        tracing::warn!(pod = %pod_key(pod), "volumes: {e}");
        self.event(pod, None, true, "FailedMount", e.event_message())
            .await;
        if self.volumes.is_some() {
            return Ok(None);
        }
        let ips = pass.running()?.ips.clone();
        self.write_status(pod, &pass.containers, Some(&ips), Some(true))
            .await?;
        Ok(Some(Duration::from_secs(2)))
    }

    /// After the containers were started: observe them again, run their probes
    /// (killing those that failed), write the status, and stop the sandbox of a
    /// pod that has finished, as Kubernetes does.
    async fn sync_status(&mut self, pod: &Pod, pass: &Pass) -> anyhow::Result<()> {
        let sb = pass.running()?;
        let mut by_name = self.containers().await?;
        if self.manage_probes(pod, &by_name, &sb.ips).await {
            by_name = self.containers().await?;
        }
        let phase = self
            .write_status(pod, &by_name, Some(&sb.ips), Some(true))
            .await?;
        if phase == "Succeeded" || phase == "Failed" {
            self.ctx.runtime.stop_pod_sandbox(&sb.id).await?;
        }
        Ok(())
    }
    /// The pod ran past its activeDeadlineSeconds: as Kubernetes' kubelet, a
    /// DeadlineExceeded event, its containers stopped (with the pod's grace period)
    /// and the pod Failed with reason DeadlineExceeded.
    async fn deadline_exceeded(&mut self, pod: &Pod) -> anyhow::Result<()> {
        tracing::info!(pod = %pod_key(pod), "active deadline exceeded");
        self.event(
            pod,
            None,
            false,
            super::deadline::REASON,
            super::deadline::MESSAGE.into(),
        )
        .await;
        let grace = pod
            .spec
            .as_ref()
            .and_then(|s| s.termination_grace_period_seconds)
            .unwrap_or(30);
        self.kill_pod(Some(pod), grace).await?;
        let by_name = self.containers().await?;
        self.write_status(pod, &by_name, None, Some(false)).await?;
        let pods: Api<Pod> = Api::namespaced(
            self.ctx.client.clone(),
            pod.metadata.namespace.as_deref().unwrap_or("default"),
        );
        let st = json!({"status": {
            "phase": "Failed",
            "reason": super::deadline::REASON,
            "message": super::deadline::MESSAGE,
        }});
        match pods
            .patch_status(
                pod.metadata.name.as_deref().unwrap_or(""),
                &PatchParams::default(),
                &Patch::Merge(st),
            )
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    /// Refuses a pod this node cannot run, as Kubernetes' kubelet rejects one at
    /// admission: a Warning event, and the pod Failed with the reason and
    /// `Pod was rejected: <message>`.
    async fn reject(&mut self, pod: &Pod, reason: &str, message: &str) -> anyhow::Result<()> {
        tracing::info!(pod = %pod_key(pod), reason, message, "pod rejected");
        self.event(pod, None, true, reason, message.to_string())
            .await;
        let qos = pod.spec.as_ref().map(qos_class).unwrap_or("BestEffort");
        let st = json!({
            "phase": "Failed",
            "reason": reason,
            "message": format!("Pod was rejected: {message}"),
            "qosClass": qos,
        });
        let pods: Api<Pod> = Api::namespaced(
            self.ctx.client.clone(),
            pod.metadata.namespace.as_deref().unwrap_or("default"),
        );
        match pods
            .patch_status(
                pod.metadata.name.as_deref().unwrap_or(""),
                &PatchParams::default(),
                &Patch::Merge(json!({"status": st})),
            )
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    /// Removes the exited instances of container `name` other than `keep` (the one
    /// that just exited stays, for lastState).
    async fn remove_older_instances(&self, name: &str, keep: &str) {
        let filter = api::ContainerFilter {
            label_selector: {
                let mut l = uid_filter(&self.uid);
                l.insert(labels::CONTAINER_NAME.into(), name.to_string());
                l
            },
            ..Default::default()
        };
        if let Ok(list) = self.ctx.runtime.list_containers(Some(filter)).await {
            for old in list
                .iter()
                .filter(|o| o.id != keep && o.state == api::ContainerState::ContainerExited as i32)
            {
                let _ = self.ctx.runtime.remove_container(&old.id).await;
            }
        }
    }

    /// Pulls (by policy), creates and starts one container, in the process
    /// namespace of container `pid_target` when given; failures become the
    /// container's waiting reason.
    async fn start_as(
        &mut self,
        pod: &Pod,
        c: &Container,
        start: Start<'_>,
        pid_target: Option<&str>,
    ) {
        let Some(image) = self.image_for(pod, c, &start.sandbox.cfg).await else {
            return;
        };
        let Some(mut cfg) = self.container_config_for(pod, c, &start, image).await else {
            return;
        };
        if let Some(target) = pid_target {
            super::ephemeral::share_pid_with(&mut cfg, target);
        }
        let Some(id) = self.create_and_start(pod, c, start.sandbox, cfg).await else {
            return;
        };
        tracing::info!(pod = %pod_key(pod), container = %c.name, attempt = start.attempt, "container started");
        self.waiting.remove(&c.name);
        if let Some(hook) = c.lifecycle.as_ref().and_then(|l| l.post_start.as_ref()) {
            self.post_start(pod, c, &id, hook, &start.sandbox.ips).await;
        }
    }

    /// The image to run (pulled if the policy says so), with the Pulled event; on
    /// failure the container waits and there is none.
    async fn image_for(
        &mut self,
        pod: &Pod,
        c: &Container,
        sandbox_cfg: &api::PodSandboxConfig,
    ) -> Option<String> {
        let t = std::time::Instant::now();
        let ensured = self.ensure_image(c, sandbox_cfg).await;
        step("image", t);
        match ensured {
            Ok((i, pulled)) => {
                let msg = match pulled {
                    Some(took) => format!("Successfully pulled image \"{i}\" in {took:?}"),
                    None => format!("Container image \"{i}\" already present on machine"),
                };
                self.event(pod, Some(&c.name), false, "Pulled", msg).await;
                Some(i)
            }
            Err((reason, msg)) => {
                self.set_waiting(pod, c, reason, msg).await;
                None
            }
        }
    }

    /// The container's CRI configuration: its environment, mounts (volumes, the
    /// termination message file, /etc/hosts) and log directory; on a configuration
    /// error the container waits with CreateContainerConfigError and there is none.
    async fn container_config_for(
        &mut self,
        pod: &Pod,
        c: &Container,
        start: &Start<'_>,
        image: String,
    ) -> Option<api::ContainerConfig> {
        let config_error = |msg| ("CreateContainerConfigError".to_string(), msg);
        let built = match violates_non_root(pod, c) {
            Some(msg) => Err(config_error(msg)),
            None => self
                .env_and_mounts(pod, c, &start.sandbox.ips)
                .await
                .map_err(config_error),
        };
        let (env, mounts) = match built {
            Ok(b) => b,
            Err((reason, msg)) => {
                self.set_waiting(pod, c, reason, msg).await;
                return None;
            }
        };
        let _ = std::fs::create_dir_all(log_dir(&self.ctx.config, &self.uid).join(&c.name));
        Some(container_config(&ContainerInputs {
            pod,
            container: c,
            attempt: start.attempt,
            init: start.init,
            env,
            image,
            mounts,
        }))
    }

    /// The container's environment and mounts; Err is the waiting message.
    async fn env_and_mounts(
        &self,
        pod: &Pod,
        c: &Container,
        ips: &[String],
    ) -> Result<(Vec<(String, String)>, Vec<api::Mount>), String> {
        // fieldRefs to status.podIP need the sandbox's address.
        let mut pod_with_ip = pod.clone();
        if let Some(first) = ips.first() {
            let st = pod_with_ip.status.get_or_insert_with(Default::default);
            st.pod_ip = Some(first.clone());
            st.pod_ips = Some(ips.iter().map(|ip| PodIP { ip: ip.clone() }).collect());
        }
        let host_ip = self.ctx.host_ip.to_string();
        let env_ctx = EnvContext {
            client: &self.ctx.client,
            pod: &pod_with_ip,
            host_ip: &host_ip,
            node_capacity: &self.ctx.node_capacity,
        };
        let env = container_env(&env_ctx, c).await.map_err(|e| e.0)?;
        let vols = self
            .volumes
            .as_ref()
            .map(|(v, _)| v.clone())
            .unwrap_or_default();
        let pod_dir = self.ctx.config.agent_dir().join("pods").join(&self.uid);
        let mount_ctx = volumes::MountContext {
            pod_dir: &pod_dir,
            env: &env,
        };
        let mut mounts = volumes::mounts(c, &vols, &mount_ctx).map_err(|e| e.to_string())?;
        match termination::message_mount(&self.ctx.config, &self.uid, c, &mounts) {
            Ok(m) => mounts.extend(m),
            Err(e) => tracing::warn!(container = %c.name, error = %e, "termination message file"),
        }
        match hosts::hosts_mount(&self.ctx.config, pod, &self.uid, ips, &mounts) {
            Ok(m) => mounts.extend(m),
            Err(e) => tracing::warn!(container = %c.name, error = %e, "the pod's /etc/hosts"),
        }
        Ok((env, mounts))
    }

    /// Creates and starts the container (Created and Started events); on failure
    /// the container waits (CreateContainerError, RunContainerError) and there is
    /// no ID.
    async fn create_and_start(
        &mut self,
        pod: &Pod,
        c: &Container,
        sandbox: &Running,
        cfg: api::ContainerConfig,
    ) -> Option<String> {
        let t = std::time::Instant::now();
        let created = self
            .ctx
            .runtime
            .create_container(&sandbox.id, cfg, sandbox.cfg.clone())
            .await;
        step("CreateContainer", t);
        let id = match created {
            Ok(id) => id,
            Err(e) => {
                let msg = e.message().to_string();
                self.set_waiting(pod, c, "CreateContainerError".into(), msg)
                    .await;
                return None;
            }
        };
        self.event(
            pod,
            Some(&c.name),
            false,
            "Created",
            format!("Created container: {}", c.name),
        )
        .await;
        let t = std::time::Instant::now();
        let started = self.ctx.runtime.start_container(&id).await;
        step("StartContainer", t);
        if let Err(e) = started {
            let msg = e.message().to_string();
            self.set_waiting(pod, c, "RunContainerError".into(), msg)
                .await;
            let _ = self.ctx.runtime.remove_container(&id).await;
            return None;
        }
        self.event(
            pod,
            Some(&c.name),
            false,
            "Started",
            format!("Started container {}", c.name),
        )
        .await;
        Some(id)
    }
    /// Runs a postStart hook right after its container started; the sync (and so the
    /// status that says Running) waits for it. A failure kills the container (the
    /// restart policy then applies); the pod's deletion cuts the hook short.
    async fn post_start(
        &mut self,
        pod: &Pod,
        c: &Container,
        id: &str,
        hook: &k8s_openapi::api::core::v1::LifecycleHandler,
        ips: &[String],
    ) {
        let run = hooks::run(
            hook,
            self.ctx.runtime.as_ref(),
            id,
            ips.first().map(String::as_str),
            pod,
            c,
        );
        let outcome = match self.pod_rx.clone() {
            Some(mut rx) => tokio::select! {
                r = run => Some(r),
                _ = rx.wait_for(|p| p.as_ref().is_none_or(|p| p.metadata.deletion_timestamp.is_some())) => None,
            },
            None => Some(run.await),
        };
        let msg = match outcome {
            Some(Ok(())) => return,
            None => {
                tracing::info!(pod = %pod_key(pod), container = %c.name, "postStart hook cut short by the pod's deletion");
                return;
            }
            Some(Err(e)) => e.to_string(),
        };
        tracing::info!(pod = %pod_key(pod), container = %c.name, "postStart hook failed: {msg}");
        self.event(pod, Some(&c.name), true, "FailedPostStartHook", msg.clone())
            .await;
        self.event(
            pod,
            Some(&c.name),
            false,
            "Killing",
            "FailedPostStartHook".into(),
        )
        .await;
        self.kill_container(pod, c, id, grace_period(pod)).await;
        // Until it is restarted the container waits with the hook's error, as in
        // Kubernetes (only if the restart policy will restart it).
        let policy = pod
            .spec
            .as_ref()
            .and_then(|s| s.restart_policy.as_deref())
            .unwrap_or("Always");
        if policy != "Never" {
            self.waiting
                .insert(c.name.clone(), ("PostStartHookError".into(), msg));
        }
    }

    /// Stops one container as Kubernetes' killContainer does: its preStop hook first
    /// (bounded by the grace period, FailedPreStopHook on failure), then SIGTERM with
    /// what is left of the grace period, SIGKILL after.
    async fn kill_container(&self, pod: &Pod, c: &Container, id: &str, grace: i64) {
        let grace = match c.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref()) {
            Some(hook) if grace > 0 => {
                let t0 = std::time::Instant::now();
                let ip = pod.status.as_ref().and_then(|s| s.pod_ip.clone());
                let run = hooks::run(hook, self.ctx.runtime.as_ref(), id, ip.as_deref(), pod, c);
                match tokio::time::timeout(Duration::from_secs(grace as u64), run).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        let msg = e.to_string();
                        tracing::info!(pod = %pod_key(pod), container = %c.name, "preStop hook failed: {msg}");
                        self.event(pod, Some(&c.name), true, "FailedPreStopHook", msg)
                            .await;
                    }
                    Err(_) => {
                        tracing::info!(pod = %pod_key(pod), container = %c.name, grace, "preStop hook did not complete within the grace period");
                    }
                }
                hooks::grace_after_pre_stop(grace, t0.elapsed())
            }
            _ => grace,
        };
        if let Err(e) = self.ctx.runtime.stop_container(id, grace).await {
            tracing::warn!(pod = %pod_key(pod), container = %c.name, "stopping: {}", e.message());
        }
    }

    /// Marks the container waiting for `reason`, with an event when the reason is new.
    async fn set_waiting(&mut self, pod: &Pod, c: &Container, reason: String, msg: String) {
        let same = self.waiting.get(&c.name).is_some_and(|(r, _)| *r == reason);
        self.waiting
            .insert(c.name.clone(), (reason.clone(), msg.clone()));
        if same {
            return;
        }
        let image = c.image.clone().unwrap_or_default();
        let (warning, ev_reason, ev_msg) = match reason.as_str() {
            "ErrImagePull" => (
                true,
                "Failed",
                format!("Failed to pull image \"{image}\": {msg}"),
            ),
            "ImagePullBackOff" => (
                false,
                "BackOff",
                format!("Back-off pulling image \"{image}\""),
            ),
            "ErrImageNeverPull" => (true, "ErrImageNeverPull", msg),
            "CrashLoopBackOff" => (
                true,
                "BackOff",
                format!(
                    "Back-off restarting failed container {} in pod {}_{}({})",
                    c.name,
                    pod.metadata.name.as_deref().unwrap_or(""),
                    pod.metadata.namespace.as_deref().unwrap_or(""),
                    self.uid
                ),
            ),
            _ => (true, "Failed", format!("Error: {msg}")),
        };
        self.event(pod, Some(&c.name), warning, ev_reason, ev_msg)
            .await;
    }

    /// The image to run, pulled if the policy says so; Err is (reason, message).
    async fn ensure_image(
        &mut self,
        c: &Container,
        sandbox_cfg: &api::PodSandboxConfig,
    ) -> Result<(String, Option<Duration>), (String, String)> {
        let image = c.image.clone().unwrap_or_default();
        if image.is_empty() {
            return Err(("InvalidImageName".into(), "container has no image".into()));
        }
        let policy = pull_policy(c);
        let present = match self.ctx.runtime.image_status(&image).await {
            Ok(i) => i.is_some(),
            Err(e) => return Err(("ErrImageInspect".into(), e.message().to_string())),
        };
        match policy.as_str() {
            "Never" if present => return Ok((image, None)),
            "Never" => {
                return Err((
                    "ErrImageNeverPull".into(),
                    format!("Container image \"{image}\" is not present with pull policy of Never"),
                ))
            }
            "IfNotPresent" if present => return Ok((image, None)),
            _ => {}
        }
        let now = now_ns();
        if self
            .pull_backoff
            .in_backoff_since_update(&image, now)
            .is_some()
        {
            return Err((
                "ImagePullBackOff".into(),
                format!("Back-off pulling image \"{image}\""),
            ));
        }
        let t0 = std::time::Instant::now();
        match self
            .ctx
            .runtime
            .pull_image(&image, Some(sandbox_cfg.clone()))
            .await
        {
            Ok(_) => Ok((image, Some(t0.elapsed()))),
            Err(e) => {
                tracing::warn!(%image, "pulling: {}", e.message());
                self.pull_backoff.next(&image, now);
                Err(("ErrImagePull".into(), e.message().to_string()))
            }
        }
    }

    /// Computes and (if changed) writes the pod's status; returns the phase.
    async fn write_status(
        &mut self,
        pod: &Pod,
        by_name: &ByName,
        ips: Option<&[String]>,
        sandbox_ready: Option<bool>,
    ) -> anyhow::Result<String> {
        let Some((st, phase)) = self.pod_status(pod, by_name, ips, sandbox_ready) else {
            return Ok(String::new());
        };
        if self.last_written.as_ref() != Some(&st) {
            self.patch_status(pod, st).await?;
        }
        Ok(phase.to_string())
    }

    /// The containers' statuses as Kubernetes reports them (init, regular,
    /// ephemeral), from the runtime's view, the probes and the waiting reasons.
    fn container_statuses(
        &self,
        spec: &k8s_openapi::api::core::v1::PodSpec,
        pod: &Pod,
        by_name: &ByName,
    ) -> ContainerStatuses {
        let runtime = &self.ctx.runtime_name;
        let table = &self.probe_table;
        let observe = |c: &Container| -> Observed {
            let list = by_name.get(&c.name);
            let latest = list.and_then(|v| v.first()).cloned();
            let id = latest.as_ref().map(|l| l.id.clone()).unwrap_or_default();
            let passed = |kind: Kind, probe: &Option<k8s_openapi::api::core::v1::Probe>| {
                probe.is_none() || table.get(&id, kind).and_then(|s| s.ok) == Some(true)
            };
            let running = latest.as_ref().is_some_and(is_running);
            let started = running && passed(Kind::Startup, &c.startup_probe);
            Observed {
                started,
                ready: started && passed(Kind::Readiness, &c.readiness_probe),
                previous: list.and_then(|v| v.get(1)).cloned(),
                latest,
                waiting: self.waiting.get(&c.name).cloned(),
            }
        };
        let restart_policy = plan::restart_policy(spec);
        let mut out = ContainerStatuses {
            init_failed: false,
            init_done: true,
            init: Vec::new(),
            containers: Vec::new(),
            ephemeral: Vec::new(),
        };
        for ic in spec.init_containers.iter().flatten() {
            let obs = observe(ic);
            let s = status::container_status(ic, &obs, runtime, "PodInitializing");
            match obs.latest.as_ref() {
                Some(l) if is_exited(l) && l.exit_code == 0 => {}
                Some(l) if is_exited(l) && restart_policy == "Never" => {
                    out.init_failed = true;
                    out.init_done = false
                }
                _ => out.init_done = false,
            }
            out.init.push(s);
        }
        let pending = if out.init_done {
            "ContainerCreating"
        } else {
            "PodInitializing"
        };
        out.containers = spec
            .containers
            .iter()
            .map(|c| status::container_status(c, &observe(c), runtime, pending))
            .collect();
        out.ephemeral = super::ephemeral::of(pod)
            .iter()
            .map(|(c, _)| {
                let mut s = status::container_status(c, &observe(c), runtime, "ContainerCreating");
                // Never ready, and no started flag (as Kubernetes reports them).
                s.ready = false;
                s.started = None;
                s
            })
            .collect();
        out
    }

    /// The pod's status and phase (none without a spec).
    fn pod_status(
        &self,
        pod: &Pod,
        by_name: &ByName,
        ips: Option<&[String]>,
        sandbox_ready: Option<bool>,
    ) -> Option<(Value, &'static str)> {
        let spec = pod.spec.as_ref()?;
        let cs = self.container_statuses(spec, pod, by_name);
        let phase = status::phase(
            plan::restart_policy(spec),
            cs.init_failed,
            cs.init_done,
            &cs.containers,
        );
        let conds = status::conditions(
            pod,
            sandbox_ready.unwrap_or(false),
            &cs.init,
            &cs.containers,
            phase,
        );
        let host_ip = self.ctx.host_ip.to_string();
        let host_network = spec.host_network.unwrap_or(false);
        let ips: Vec<String> = if host_network {
            vec![host_ip.clone()]
        } else {
            ips.map(|i| i.to_vec()).unwrap_or_else(|| {
                pod.status
                    .as_ref()
                    .and_then(|s| s.pod_ips.clone())
                    .unwrap_or_default()
                    .into_iter()
                    .map(|p| p.ip)
                    .collect()
            })
        };
        let mut st = json!({
            "phase": phase,
            "conditions": conds,
            "hostIP": host_ip,
            "hostIPs": [HostIP { ip: host_ip.clone() }],
            "startTime": self.start_time,
            "containerStatuses": cs.containers,
            "qosClass": qos_class(spec),
        });
        if !cs.init.is_empty() {
            st["initContainerStatuses"] = json!(cs.init);
        }
        if !cs.ephemeral.is_empty() {
            st["ephemeralContainerStatuses"] = json!(cs.ephemeral);
        }
        if let Some(first) = ips.first() {
            st["podIP"] = json!(first);
            st["podIPs"] = json!(ips
                .iter()
                .map(|ip| PodIP { ip: ip.clone() })
                .collect::<Vec<_>>());
        }
        Some((st, phase))
    }

    /// Writes the pod's status (remembered once written; a pod gone from the API
    /// is not an error).
    async fn patch_status(&mut self, pod: &Pod, st: Value) -> anyhow::Result<()> {
        let pods: Api<Pod> = Api::namespaced(
            self.ctx.client.clone(),
            pod.metadata.namespace.as_deref().unwrap_or("default"),
        );
        let name = pod.metadata.name.as_deref().unwrap_or("");
        let t = std::time::Instant::now();
        // A strategic patch merges conditions by type, so the ones
        // others set (DisruptionTarget from an eviction, readiness
        // gates) stay, as Kubernetes' kubelet keeps them; the address
        // lists are this node's alone and replaced whole.
        let mut body = st.clone();
        for f in ["podIPs", "hostIPs"] {
            if let Some(list) = body.get_mut(f).and_then(Value::as_array_mut) {
                list.insert(0, json!({"$patch": "replace"}));
            }
        }
        let patched = pods
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Strategic(json!({"status": body})),
            )
            .await;
        step("status", t);
        match patched {
            Ok(_) => self.last_written = Some(st),
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    /// Keeps one probe task per probe of each running container, and kills containers
    /// whose liveness or startup probe failed (the restart policy then applies).
    /// Returns true if it killed one.
    async fn manage_probes(&mut self, pod: &Pod, by_name: &ByName, ips: &[String]) -> bool {
        let Some(spec) = pod.spec.as_ref() else {
            return false;
        };
        self.keep_probers(spec, by_name, ips);
        let table = self.probe_table.clone();
        let kills = plan::probe_kills(spec, by_name, |id, kind| table.get(id, kind));
        let killed = !kills.is_empty();
        for kill in kills {
            if let Some(c) = spec.containers.iter().find(|c| c.name == kill.name) {
                self.kill_for_probe(pod, c, kill).await;
            }
        }
        killed
    }

    /// One probe task per probe of each running container; those of containers no
    /// longer running end.
    fn keep_probers(
        &mut self,
        spec: &k8s_openapi::api::core::v1::PodSpec,
        by_name: &ByName,
        ips: &[String],
    ) {
        let live = plan::running(spec, by_name);
        let gone: Vec<String> = self
            .probers
            .keys()
            .filter(|id| !live.iter().any(|(l, _)| l == *id))
            .cloned()
            .collect();
        for id in gone {
            self.stop_probers(&id);
        }
        // A pod on the host's network is probed at the node's address.
        let pod_ip = if spec.host_network == Some(true) {
            self.ctx.host_ip.to_string()
        } else {
            ips.first().cloned().unwrap_or_default()
        };
        for (id, c) in live {
            if self.probers.contains_key(&id) {
                continue;
            }
            let has_startup = c.startup_probe.is_some();
            let tasks = [
                (Kind::Startup, &c.startup_probe),
                (Kind::Liveness, &c.liveness_probe),
                (Kind::Readiness, &c.readiness_probe),
            ]
            .into_iter()
            .filter_map(|(kind, probe)| {
                let p = probe.as_ref()?;
                Some(probes::spawn(
                    kind,
                    p.clone(),
                    has_startup,
                    self.ctx.runtime.clone(),
                    self.probe_table.clone(),
                    id.clone(),
                    pod_ip.clone(),
                    c.clone(),
                ))
            })
            .collect();
            self.probers.insert(id, tasks);
        }
    }

    /// Ends the probe tasks of container instance `id` and forgets their results.
    fn stop_probers(&mut self, id: &str) {
        for t in self.probers.remove(id).unwrap_or_default() {
            t.abort();
        }
        self.probe_table.forget(id);
    }

    /// Kills a container whose startup or liveness probe failed, with Kubernetes'
    /// Unhealthy and Killing events.
    async fn kill_for_probe(&mut self, pod: &Pod, c: &Container, kill: ProbeKill) {
        let grace = pod
            .spec
            .as_ref()
            .and_then(|s| s.termination_grace_period_seconds)
            .unwrap_or(30);
        tracing::info!(
            pod = %pod_key(pod), container = %c.name, kind = ?kill.kind, message = %kill.message,
            "container failed its probe, will be restarted"
        );
        let probe_name = if kill.kind == Kind::Startup {
            "Startup"
        } else {
            "Liveness"
        };
        self.event(
            pod,
            Some(&c.name),
            true,
            "Unhealthy",
            format!("{probe_name} probe failed: {}", kill.message),
        )
        .await;
        self.event(
            pod,
            Some(&c.name),
            false,
            "Killing",
            format!(
                "Container {} failed {} probe, will be restarted",
                c.name,
                probe_name.to_lowercase()
            ),
        )
        .await;
        self.stop_probers(&kill.id);
        self.kill_container(pod, c, &kill.id, grace).await;
    }
    /// Stops the sandbox's containers with `grace` seconds, then stops and removes it.
    async fn stop_sandbox(&self, id: &str, grace: i64) {
        self.stop_containers(None, Some(id), grace).await;
        if let Err(e) = self.ctx.runtime.stop_pod_sandbox(id).await {
            tracing::warn!(sandbox = %id, "stopping sandbox: {}", e.message());
        }
        if let Err(e) = self.ctx.runtime.remove_pod_sandbox(id).await {
            tracing::warn!(sandbox = %id, "removing sandbox: {}", e.message());
        }
    }

    /// Stops the pod's running containers at once, each with `grace` seconds (and its
    /// preStop hook first when the pod's spec is known).
    async fn stop_containers(&self, pod: Option<&Pod>, sandbox: Option<&str>, grace: i64) {
        let filter = api::ContainerFilter {
            label_selector: uid_filter(&self.uid),
            pod_sandbox_id: sandbox.unwrap_or("").into(),
            ..Default::default()
        };
        let Ok(list) = self.ctx.runtime.list_containers(Some(filter)).await else {
            return;
        };
        let spec_of = |c: &api::Container| {
            let pod = pod?;
            let name = c.labels.get(labels::CONTAINER_NAME)?;
            let spec = pod.spec.as_ref()?;
            let found = spec
                .containers
                .iter()
                .chain(spec.init_containers.iter().flatten())
                .find(|s| &s.name == name)?;
            Some((pod, found))
        };
        let stops = list
            .iter()
            .filter(|c| c.state == api::ContainerState::ContainerRunning as i32)
            .map(|c| async move {
                match spec_of(c) {
                    Some((pod, spec)) => self.kill_container(pod, spec, &c.id, grace).await,
                    None => {
                        if let Err(e) = self.ctx.runtime.stop_container(&c.id, grace).await {
                            tracing::warn!(uid = %self.uid, "stopping a container: {}", e.message());
                        }
                    }
                }
            });
        futures::future::join_all(stops).await;
    }

    /// Stops and removes everything the runtime has for this pod (running preStop
    /// hooks when its spec is known).
    pub(crate) async fn kill_pod(
        &self,
        pod: Option<&Pod>,
        grace: i64,
    ) -> Result<(), tonic::Status> {
        self.stop_containers(pod, None, grace).await;
        for sb in self.sandboxes().await? {
            self.stop_sandbox(&sb.id, 0).await;
        }
        let clean = volumes::cleanup(&self.ctx.config, &self.uid);
        self.ctx.tokens.forget_pod(&self.uid);
        if clean {
            let _ =
                std::fs::remove_dir_all(self.ctx.config.agent_dir().join("pods").join(&self.uid));
        }
        Ok(())
    }

    /// Graceful deletion: stop within the grace period, clean up, then remove the pod
    /// from the API (grace period 0, only this incarnation by UID).
    async fn terminate(&mut self, pod: &Pod) -> anyhow::Result<()> {
        let grace = grace_period(pod);
        tracing::info!(pod = %pod_key(pod), grace, "killing the pod");
        let running: Vec<String> = self
            .containers()
            .await
            .map(|m| {
                m.into_iter()
                    .filter(|(_, v)| v.first().is_some_and(is_running))
                    .map(|(n, _)| n)
                    .collect()
            })
            .unwrap_or_default();
        for name in running {
            self.event(
                pod,
                Some(&name),
                false,
                "Killing",
                format!("Stopping container {name}"),
            )
            .await;
        }
        self.kill_pod(Some(pod), grace).await?;
        let pods: Api<Pod> = Api::namespaced(
            self.ctx.client.clone(),
            pod.metadata.namespace.as_deref().unwrap_or("default"),
        );
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(self.uid.clone()),
                resource_version: None,
            }),
            ..Default::default()
        };
        match pods
            .delete(pod.metadata.name.as_deref().unwrap_or(""), &dp)
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// The pod's QoS class from its containers' requests and limits.
pub(crate) fn qos_class(spec: &k8s_openapi::api::core::v1::PodSpec) -> &'static str {
    let all: Vec<&Container> = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in &all {
        let r = c.resources.as_ref();
        let req = r.and_then(|r| r.requests.clone()).unwrap_or_default();
        let lim = r.and_then(|r| r.limits.clone()).unwrap_or_default();
        if !req.is_empty() || !lim.is_empty() {
            any = true;
        }
        for res in ["cpu", "memory"] {
            match (lim.get(res), req.get(res)) {
                (Some(l), Some(q)) if l.0 == q.0 => {}
                (Some(_), None) => {}
                _ => guaranteed = false,
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}
