//! One pod's worker: drives the runtime towards the pod's spec (sandbox, init
//! containers in order, containers, restarts with back-off, image pulls by policy),
//! writes the pod's status, and on deletion stops everything within the grace period
//! and removes the pod from the API.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

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
use super::probes::{self, Kind};
use super::sandbox::{log_dir, sandbox_config};
use super::status::{self, Observed};
use super::termination;
use super::volumes;
use super::Ctx;
use crate::cri::{api, labels};

/// Per-pod state the worker keeps between syncs.
pub struct Worker {
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

fn attempt_of(c: &api::ContainerStatus) -> u32 {
    c.metadata.as_ref().map(|m| m.attempt).unwrap_or(0)
}

fn is_exited(c: &api::ContainerStatus) -> bool {
    c.state == api::ContainerState::ContainerExited as i32
        || c.state == api::ContainerState::ContainerUnknown as i32
}

fn is_running(c: &api::ContainerStatus) -> bool {
    c.state == api::ContainerState::ContainerRunning as i32
}

/// Logs (at debug, target `ferrokube_kubelet::pods::steps`) how long a step took:
/// where a pod's start-up time goes.
fn step(what: &str, since: std::time::Instant) {
    tracing::debug!(target: "ferrokube_kubelet::pods::steps", step = what, ms = since.elapsed().as_secs_f64() * 1e3);
}

/// The grace period a deletion allows.
pub fn grace_period(pod: &Pod) -> i64 {
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
pub fn pull_policy(c: &Container) -> String {
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
    pub fn new(ctx: Arc<Ctx>, uid: String) -> Self {
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
    pub async fn run(
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
                    if pod.metadata.deletion_timestamp.is_some() {
                        match self.terminate(&pod).await {
                            Ok(()) => return,
                            Err(e) => {
                                tracing::warn!(pod = %pod_key(&pod), "terminating: {e}");
                                Duration::from_secs(2)
                            }
                        }
                    } else {
                        match self.sync(&pod).await {
                            Ok(w) => w,
                            Err(e) => {
                                tracing::warn!(pod = %pod_key(&pod), "sync: {e}");
                                Duration::from_secs(2)
                            }
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
    async fn containers(
        &self,
    ) -> Result<BTreeMap<String, Vec<api::ContainerStatus>>, tonic::Status> {
        let filter = api::ContainerFilter {
            label_selector: uid_filter(&self.uid),
            ..Default::default()
        };
        let list = self.ctx.runtime.list_containers(Some(filter)).await?;
        let mut by_name: BTreeMap<String, Vec<api::ContainerStatus>> = BTreeMap::new();
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
            v.sort_by_key(|c| std::cmp::Reverse((attempt_of(c), c.created_at)));
        }
        Ok(by_name)
    }

    /// One pass towards the spec; returns when to look again.
    async fn sync(&mut self, pod: &Pod) -> anyhow::Result<Duration> {
        let t_sync = std::time::Instant::now();
        let r = self.sync_once(pod).await;
        step("sync", t_sync);
        r
    }

    async fn sync_once(&mut self, pod: &Pod) -> anyhow::Result<Duration> {
        let poll = self.ctx.config.pod_poll_interval;
        let Some(spec) = pod.spec.as_ref() else {
            return Ok(poll);
        };
        let phase_now = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .unwrap_or("");
        if phase_now == "Succeeded" || phase_now == "Failed" {
            // Finished pods keep no sandbox (its IP is released); nothing restarts.
            for sb in self.sandboxes().await? {
                if sb.state == api::PodSandboxState::SandboxReady as i32 {
                    self.ctx.runtime.stop_pod_sandbox(&sb.id).await?;
                }
            }
            return Ok(Duration::from_secs(3600));
        }
        if let Some(msg) = super::sysctls::admit(pod, &self.ctx.config.allowed_unsafe_sysctls) {
            if self.sandboxes().await?.is_empty() {
                return self
                    .reject(pod, super::sysctls::FORBIDDEN_REASON, &msg)
                    .await;
            }
        }
        if self.start_time.is_none() {
            self.start_time = pod
                .status
                .as_ref()
                .and_then(|s| s.start_time.clone())
                .or_else(|| Some(Time(jiff::Timestamp::now())));
        }
        // activeDeadlineSeconds, counted from the pod's start on this node.
        let deadline_left = super::deadline::left(spec, self.start_time.as_ref());
        if deadline_left == Some(Duration::ZERO) {
            return self.deadline_exceeded(pod).await;
        }
        let restart_policy = spec
            .restart_policy
            .clone()
            .unwrap_or_else(|| "Always".into());
        let mut wake = poll;

        // The sandbox.
        let sandboxes = self.sandboxes().await?;
        let ready = sandboxes
            .iter()
            .find(|s| s.state == api::PodSandboxState::SandboxReady as i32);
        let mut by_name = self.containers().await?;
        let (sandbox_id, sandbox_cfg) = match ready {
            Some(sb) => {
                let attempt = sb.metadata.as_ref().map(|m| m.attempt).unwrap_or(0);
                (
                    sb.id.clone(),
                    sandbox_config(pod, attempt, &self.ctx.config),
                )
            }
            None => {
                let ran_before = !by_name.is_empty();
                if ran_before && restart_policy == "Never" {
                    // The sandbox died after the containers ran: they are not rerun.
                    self.write_status(pod, &by_name, None, None).await?;
                    return Ok(poll);
                }
                for sb in &sandboxes {
                    self.stop_sandbox(sb, 0).await;
                }
                let attempt = sandboxes
                    .iter()
                    .filter_map(|s| s.metadata.as_ref().map(|m| m.attempt + 1))
                    .max()
                    .unwrap_or(0);
                let cfg = sandbox_config(pod, attempt, &self.ctx.config);
                std::fs::create_dir_all(log_dir(&self.ctx.config, &self.uid))?;
                let t = std::time::Instant::now();
                let run = self.ctx.runtime.run_pod_sandbox(cfg.clone()).await;
                step("RunPodSandbox", t);
                match run {
                    Ok(id) => {
                        tracing::info!(pod = %pod_key(pod), sandbox = %id, "sandbox started");
                        by_name = self.containers().await?;
                        (id, cfg)
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
                        self.write_status(pod, &by_name, None, None).await?;
                        return Ok(Duration::from_secs(5));
                    }
                }
            }
        };
        let sandbox_ips = match self.ctx.runtime.pod_sandbox_status(&sandbox_id).await {
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
        };

        // Volumes (configMap/secret contents refreshed every 10 s).
        let stale = self
            .volumes
            .as_ref()
            .is_none_or(|(_, at)| at.elapsed() >= Duration::from_secs(10));
        if stale {
            let host_ip = self.ctx.host_ip.to_string();
            match volumes::prepare(
                &self.ctx.client,
                &self.ctx.tokens,
                &self.ctx.config,
                pod,
                &host_ip,
                &self.ctx.node_capacity,
            )
            .await
            {
                Ok(v) => self.volumes = Some((v, std::time::Instant::now())),
                Err(msg) => {
                    tracing::warn!(pod = %pod_key(pod), "volumes: {msg}");
                    self.event(
                        pod,
                        None,
                        true,
                        "FailedMount",
                        if msg.starts_with("Unable to attach or mount volumes")
                            || msg.starts_with("MountVolume.")
                        {
                            msg.clone()
                        } else {
                            format!("MountVolume.SetUp failed: {msg}")
                        },
                    )
                    .await;
                    if self.volumes.is_none() {
                        self.write_status(pod, &by_name, Some(&sandbox_ips), Some(true))
                            .await?;
                        return Ok(Duration::from_secs(2));
                    }
                }
            }
        }

        // Ephemeral containers, even before the init containers are done.
        self.start_ephemeral(pod, &by_name, &sandbox_id, &sandbox_cfg, &sandbox_ips)
            .await;

        // Init containers, in order.
        let mut init_done = true;
        for ic in spec.init_containers.iter().flatten() {
            let latest = by_name.get(&ic.name).and_then(|v| v.first()).cloned();
            match latest {
                None => {
                    init_done = false;
                    self.start(pod, ic, 0, true, &sandbox_id, &sandbox_cfg, &sandbox_ips)
                        .await;
                    break;
                }
                Some(c) if is_exited(&c) && c.exit_code == 0 => continue,
                Some(c) if is_exited(&c) => {
                    init_done = false;
                    if restart_policy != "Never" {
                        if let Some(w) = self
                            .restart(pod, ic, &c, true, &sandbox_id, &sandbox_cfg, &sandbox_ips)
                            .await
                        {
                            wake = wake.min(w);
                        }
                    }
                    break;
                }
                Some(_) => {
                    init_done = false;
                    break;
                }
            }
        }

        if init_done {
            for c in &spec.containers {
                let latest = by_name.get(&c.name).and_then(|v| v.first()).cloned();
                match latest {
                    None => {
                        self.start(pod, c, 0, false, &sandbox_id, &sandbox_cfg, &sandbox_ips)
                            .await;
                    }
                    Some(cur) if is_exited(&cur) => {
                        let again = match restart_policy.as_str() {
                            "Always" => true,
                            "OnFailure" => cur.exit_code != 0,
                            _ => false,
                        };
                        if again {
                            if let Some(w) = self
                                .restart(
                                    pod,
                                    c,
                                    &cur,
                                    false,
                                    &sandbox_id,
                                    &sandbox_cfg,
                                    &sandbox_ips,
                                )
                                .await
                            {
                                wake = wake.min(w);
                            }
                        } else {
                            self.waiting.remove(&c.name);
                        }
                    }
                    Some(_) => {
                        self.waiting.remove(&c.name);
                    }
                }
            }
        }
        let mut by_name = self.containers().await?;
        if self.manage_probes(pod, &by_name, &sandbox_ips).await {
            by_name = self.containers().await?;
        }
        let phase = self
            .write_status(pod, &by_name, Some(&sandbox_ips), Some(true))
            .await?;
        if phase == "Succeeded" || phase == "Failed" {
            // Kubernetes stops a finished pod's sandbox.
            self.ctx.runtime.stop_pod_sandbox(&sandbox_id).await?;
        }
        Ok(deadline_left.map_or(wake, |left| wake.min(left)))
    }

    /// The pod ran past its activeDeadlineSeconds: as Kubernetes' kubelet, a
    /// DeadlineExceeded event, its containers stopped (with the pod's grace period)
    /// and the pod Failed with reason DeadlineExceeded.
    async fn deadline_exceeded(&mut self, pod: &Pod) -> anyhow::Result<Duration> {
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
        Ok(Duration::from_secs(3600))
    }

    /// Refuses a pod this node cannot run, as Kubernetes' kubelet rejects one at
    /// admission: a Warning event, and the pod Failed with the reason and
    /// `Pod was rejected: <message>`.
    async fn reject(&mut self, pod: &Pod, reason: &str, message: &str) -> anyhow::Result<Duration> {
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
        Ok(Duration::from_secs(3600))
    }

    /// Restarts an exited container unless it is backing off; returns when the
    /// back-off ends.
    #[allow(clippy::too_many_arguments)]
    async fn restart(
        &mut self,
        pod: &Pod,
        c: &Container,
        exited: &api::ContainerStatus,
        init: bool,
        sandbox_id: &str,
        sandbox_cfg: &api::PodSandboxConfig,
        ips: &[String],
    ) -> Option<Duration> {
        let key = c.name.clone();
        let now = now_ns();
        if let Some((until, backoff)) =
            self.restart_backoff
                .in_backoff_since(&key, exited.finished_at, now)
        {
            let msg = format!(
                "back-off {}s restarting failed container={} pod={}_{}({})",
                backoff.as_secs(),
                c.name,
                pod.metadata.name.as_deref().unwrap_or(""),
                pod.metadata.namespace.as_deref().unwrap_or(""),
                self.uid
            );
            self.set_waiting(pod, c, "CrashLoopBackOff".into(), msg)
                .await;
            return Some(Duration::from_nanos(until.saturating_sub(now).max(0) as u64));
        }
        self.restart_backoff.next(&key, exited.finished_at);
        // Keep only the container that just exited (for lastState); drop older ones.
        let filter = api::ContainerFilter {
            label_selector: {
                let mut l = uid_filter(&self.uid);
                l.insert(labels::CONTAINER_NAME.into(), c.name.clone());
                l
            },
            ..Default::default()
        };
        if let Ok(list) = self.ctx.runtime.list_containers(Some(filter)).await {
            for old in list.iter().filter(|o| {
                o.id != exited.id && o.state == api::ContainerState::ContainerExited as i32
            }) {
                let _ = self.ctx.runtime.remove_container(&old.id).await;
            }
        }
        self.start(
            pod,
            c,
            attempt_of(exited) + 1,
            init,
            sandbox_id,
            sandbox_cfg,
            ips,
        )
        .await;
        None
    }

    /// Pulls (by policy), creates and starts one container; failures become the
    /// container's waiting reason.
    #[allow(clippy::too_many_arguments)]
    async fn start(
        &mut self,
        pod: &Pod,
        c: &Container,
        attempt: u32,
        init: bool,
        sandbox_id: &str,
        sandbox_cfg: &api::PodSandboxConfig,
        ips: &[String],
    ) {
        self.start_as(pod, c, attempt, init, sandbox_id, sandbox_cfg, ips, None)
            .await
    }

    /// Starts the pod's ephemeral containers that have not run yet (once each:
    /// they are never restarted).
    async fn start_ephemeral(
        &mut self,
        pod: &Pod,
        by_name: &BTreeMap<String, Vec<api::ContainerStatus>>,
        sandbox_id: &str,
        sandbox_cfg: &api::PodSandboxConfig,
        ips: &[String],
    ) {
        for (c, target) in super::ephemeral::of(pod) {
            if by_name.contains_key(&c.name) {
                continue;
            }
            let target_id = match &target {
                None => None,
                Some(t) => match by_name
                    .get(t)
                    .and_then(|v| v.first())
                    .filter(|l| is_running(l))
                {
                    Some(l) => Some(l.id.clone()),
                    None => {
                        let msg = format!("target container {t:?} is not running");
                        self.set_waiting(pod, &c, "CreateContainerConfigError".into(), msg)
                            .await;
                        continue;
                    }
                },
            };
            self.start_as(
                pod,
                &c,
                0,
                false,
                sandbox_id,
                sandbox_cfg,
                ips,
                target_id.as_deref(),
            )
            .await;
        }
    }

    /// [`Self::start`], in the process namespace of container `pid_target` when given.
    #[allow(clippy::too_many_arguments)]
    async fn start_as(
        &mut self,
        pod: &Pod,
        c: &Container,
        attempt: u32,
        init: bool,
        sandbox_id: &str,
        sandbox_cfg: &api::PodSandboxConfig,
        ips: &[String],
        pid_target: Option<&str>,
    ) {
        let t = std::time::Instant::now();
        let ensured = self.ensure_image(c, sandbox_cfg).await;
        step("image", t);
        let image = match ensured {
            Ok((i, pulled)) => {
                let msg = match pulled {
                    Some(took) => format!("Successfully pulled image \"{i}\" in {took:?}"),
                    None => format!("Container image \"{i}\" already present on machine"),
                };
                self.event(pod, Some(&c.name), false, "Pulled", msg).await;
                i
            }
            Err((reason, msg)) => {
                self.set_waiting(pod, c, reason, msg).await;
                return;
            }
        };
        if let Some(msg) = violates_non_root(pod, c) {
            self.set_waiting(pod, c, "CreateContainerConfigError".into(), msg)
                .await;
            return;
        }
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
        let env = match container_env(&env_ctx, c).await {
            Ok(e) => e,
            Err(e) => {
                self.set_waiting(pod, c, "CreateContainerConfigError".into(), e.0)
                    .await;
                return;
            }
        };
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
        let mut mounts = match volumes::mounts(c, &vols, &mount_ctx) {
            Ok(m) => m,
            Err(msg) => {
                self.set_waiting(pod, c, "CreateContainerConfigError".into(), msg)
                    .await;
                return;
            }
        };
        match termination::message_mount(&self.ctx.config, &self.uid, c, &mounts) {
            Ok(m) => mounts.extend(m),
            Err(e) => tracing::warn!(container = %c.name, error = %e, "termination message file"),
        }
        match hosts::hosts_mount(&self.ctx.config, pod, &self.uid, ips, &mounts) {
            Ok(m) => mounts.extend(m),
            Err(e) => tracing::warn!(container = %c.name, error = %e, "the pod's /etc/hosts"),
        }
        let _ = std::fs::create_dir_all(log_dir(&self.ctx.config, &self.uid).join(&c.name));
        let mut cfg = container_config(&ContainerInputs {
            pod,
            container: c,
            attempt,
            init,
            env,
            image,
            mounts,
        });
        if let Some(target) = pid_target {
            super::ephemeral::share_pid_with(&mut cfg, target);
        }
        let t = std::time::Instant::now();
        let created = self
            .ctx
            .runtime
            .create_container(sandbox_id, cfg, sandbox_cfg.clone())
            .await;
        step("CreateContainer", t);
        let id = match created {
            Ok(id) => id,
            Err(e) => {
                let msg = e.message().to_string();
                self.set_waiting(pod, c, "CreateContainerError".into(), msg)
                    .await;
                return;
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
            return;
        }
        self.event(
            pod,
            Some(&c.name),
            false,
            "Started",
            format!("Started container {}", c.name),
        )
        .await;
        tracing::info!(pod = %pod_key(pod), container = %c.name, attempt, "container started");
        self.waiting.remove(&c.name);
        if let Some(hook) = c.lifecycle.as_ref().and_then(|l| l.post_start.as_ref()) {
            self.post_start(pod, c, &id, hook, ips).await;
        }
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
            Some(Err(msg)) => msg,
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
                    Ok(Err(msg)) => {
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
        by_name: &BTreeMap<String, Vec<api::ContainerStatus>>,
        ips: Option<&[String]>,
        sandbox_ready: Option<bool>,
    ) -> anyhow::Result<String> {
        let Some(spec) = pod.spec.as_ref() else {
            return Ok(String::new());
        };
        let runtime = &self.ctx.runtime_name;
        let restart_policy = spec
            .restart_policy
            .clone()
            .unwrap_or_else(|| "Always".into());
        let table = self.probe_table.clone();
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
        let mut init_failed = false;
        let mut init_done = true;
        let mut init_statuses = Vec::new();
        for ic in spec.init_containers.iter().flatten() {
            let obs = observe(ic);
            let s = status::container_status(ic, &obs, runtime, "PodInitializing");
            match obs.latest.as_ref() {
                Some(l) if is_exited(l) && l.exit_code == 0 => {}
                Some(l) if is_exited(l) && restart_policy == "Never" => {
                    init_failed = true;
                    init_done = false
                }
                _ => init_done = false,
            }
            init_statuses.push(s);
        }
        let pending = if init_done {
            "ContainerCreating"
        } else {
            "PodInitializing"
        };
        let statuses: Vec<_> = spec
            .containers
            .iter()
            .map(|c| status::container_status(c, &observe(c), runtime, pending))
            .collect();
        let phase = status::phase(&restart_policy, init_failed, init_done, &statuses);
        let conds = status::conditions(
            pod,
            sandbox_ready.unwrap_or(false),
            &init_statuses,
            &statuses,
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
            "containerStatuses": statuses,
            "qosClass": qos_class(spec),
        });
        if !init_statuses.is_empty() {
            st["initContainerStatuses"] = json!(init_statuses);
        }
        let ephemeral: Vec<_> = super::ephemeral::of(pod)
            .iter()
            .map(|(c, _)| {
                let mut s = status::container_status(c, &observe(c), runtime, "ContainerCreating");
                // Never ready, and no started flag (as Kubernetes reports them).
                s.ready = false;
                s.started = None;
                s
            })
            .collect();
        if !ephemeral.is_empty() {
            st["ephemeralContainerStatuses"] = json!(ephemeral);
        }
        if let Some(first) = ips.first() {
            st["podIP"] = json!(first);
            st["podIPs"] = json!(ips
                .iter()
                .map(|ip| PodIP { ip: ip.clone() })
                .collect::<Vec<_>>());
        }
        if self.last_written.as_ref() != Some(&st) {
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
        }
        Ok(phase.to_string())
    }

    /// Keeps one probe task per probe of each running container, and kills containers
    /// whose liveness or startup probe failed (the restart policy then applies).
    /// Returns true if it killed one.
    async fn manage_probes(
        &mut self,
        pod: &Pod,
        by_name: &BTreeMap<String, Vec<api::ContainerStatus>>,
        ips: &[String],
    ) -> bool {
        let Some(spec) = pod.spec.as_ref() else {
            return false;
        };
        let mut live: HashMap<String, &Container> = HashMap::new();
        for c in &spec.containers {
            if let Some(latest) = by_name.get(&c.name).and_then(|v| v.first()) {
                if is_running(latest) {
                    live.insert(latest.id.clone(), c);
                }
            }
        }
        let gone: Vec<String> = self
            .probers
            .keys()
            .filter(|id| !live.contains_key(*id))
            .cloned()
            .collect();
        for id in gone {
            for t in self.probers.remove(&id).unwrap_or_default() {
                t.abort();
            }
            self.probe_table.forget(&id);
        }
        // A pod on the host's network is probed at the node's address.
        let pod_ip = if spec.host_network == Some(true) {
            self.ctx.host_ip.to_string()
        } else {
            ips.first().cloned().unwrap_or_default()
        };
        let mut killed = false;
        for (id, c) in live {
            if !self.probers.contains_key(&id) {
                let mut tasks = Vec::new();
                let has_startup = c.startup_probe.is_some();
                for (kind, probe) in [
                    (Kind::Startup, &c.startup_probe),
                    (Kind::Liveness, &c.liveness_probe),
                    (Kind::Readiness, &c.readiness_probe),
                ] {
                    if let Some(p) = probe {
                        tasks.push(probes::spawn(
                            kind,
                            p.clone(),
                            has_startup,
                            self.ctx.runtime.clone(),
                            self.probe_table.clone(),
                            id.clone(),
                            pod_ip.clone(),
                            c.clone(),
                        ));
                    }
                }
                self.probers.insert(id.clone(), tasks);
            }
            let failed = [Kind::Startup, Kind::Liveness].into_iter().find_map(|k| {
                self.probe_table
                    .get(&id, k)
                    .filter(|s| s.ok == Some(false))
                    .map(|s| (k, s))
            });
            if let Some((kind, standing)) = failed {
                let grace = pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.termination_grace_period_seconds)
                    .unwrap_or(30);
                tracing::info!(
                    pod = %pod_key(pod), container = %c.name, ?kind, message = %standing.message,
                    "container failed its probe, will be restarted"
                );
                let probe_name = if kind == Kind::Startup {
                    "Startup"
                } else {
                    "Liveness"
                };
                self.event(
                    pod,
                    Some(&c.name),
                    true,
                    "Unhealthy",
                    format!("{probe_name} probe failed: {}", standing.message),
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
                for t in self.probers.remove(&id).unwrap_or_default() {
                    t.abort();
                }
                self.probe_table.forget(&id);
                self.kill_container(pod, c, &id, grace).await;
                killed = true;
            }
        }
        killed
    }

    async fn stop_sandbox(&self, sb: &api::PodSandbox, grace: i64) {
        self.stop_containers(None, Some(&sb.id), grace).await;
        if let Err(e) = self.ctx.runtime.stop_pod_sandbox(&sb.id).await {
            tracing::warn!(sandbox = %sb.id, "stopping sandbox: {}", e.message());
        }
        if let Err(e) = self.ctx.runtime.remove_pod_sandbox(&sb.id).await {
            tracing::warn!(sandbox = %sb.id, "removing sandbox: {}", e.message());
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
    pub async fn kill_pod(&self, pod: Option<&Pod>, grace: i64) -> Result<(), tonic::Status> {
        self.stop_containers(pod, None, grace).await;
        for sb in self.sandboxes().await? {
            self.stop_sandbox(&sb, 0).await;
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
pub fn qos_class(spec: &k8s_openapi::api::core::v1::PodSpec) -> &'static str {
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
