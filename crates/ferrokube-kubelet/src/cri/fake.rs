//! An in-memory CRI runtime for unit tests: sandboxes, containers and images kept in
//! maps; containers run until the test makes them exit (`exit_container`) or until
//! they are stopped. Records the calls made so tests can assert on them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use parking_lot::Mutex;

use super::{api, CriResult, Runtime};

#[derive(Default)]
struct State {
    sandboxes: BTreeMap<String, (api::PodSandbox, api::PodSandboxConfig)>,
    containers: BTreeMap<String, api::ContainerStatus>,
    container_sandbox: BTreeMap<String, String>,
    images: BTreeSet<String>,
    calls: Vec<String>,
    /// Per container: cumulative CPU (ns) and working set (bytes).
    stats: BTreeMap<String, (u64, u64)>,
    /// ListContainerStats fails.
    stats_unavailable: bool,
}

/// The fake runtime. Every new sandbox gets IP 10.88.0.N.
#[derive(Default)]
pub struct FakeRuntime {
    state: Mutex<State>,
    next: AtomicU64,
}

fn now_ns() -> i64 {
    jiff::Timestamp::now().as_nanosecond() as i64
}

fn not_found(what: &str, id: &str) -> tonic::Status {
    tonic::Status::not_found(format!("{what} {id} not found"))
}

/// Image names as containerd normalises them (`busybox` → `docker.io/library/busybox:latest`).
pub fn normalize_image(name: &str) -> String {
    let (repo, tag) = match name.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r.to_string(), t.to_string()),
        _ => (name.to_string(), "latest".to_string()),
    };
    let first = repo.split('/').next().unwrap_or("");
    let repo = if !repo.contains('/') {
        format!("docker.io/library/{repo}")
    } else if first.contains('.') || first.contains(':') || first == "localhost" {
        repo
    } else {
        format!("docker.io/{repo}")
    };
    format!("{repo}:{tag}")
}

impl FakeRuntime {
    /// An empty runtime: no sandboxes, containers nor images.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes an image present, as if imported.
    pub fn add_image(&self, name: &str) {
        self.state.lock().images.insert(normalize_image(name));
    }

    /// Makes a running container exit with `code`.
    pub fn exit_container(&self, id: &str, code: i32) {
        let mut st = self.state.lock();
        if let Some(c) = st.containers.get_mut(id) {
            if c.state == api::ContainerState::ContainerRunning as i32 {
                c.state = api::ContainerState::ContainerExited as i32;
                c.exit_code = code;
                c.finished_at = now_ns();
                c.reason = if code == 0 {
                    "Completed".into()
                } else {
                    "Error".into()
                };
            }
        }
    }

    /// Sets what ListContainerStats reports for a container: its cumulative
    /// CPU time (ns) and working set (bytes); containers without figures
    /// are listed with none.
    pub fn set_container_stats(&self, id: &str, cpu_ns: u64, working_set: u64) {
        self.state
            .lock()
            .stats
            .insert(id.to_string(), (cpu_ns, working_set));
    }

    /// Makes ListContainerStats fail (as a runtime that does not answer).
    pub fn fail_container_stats(&self) {
        self.state.lock().stats_unavailable = true;
    }

    /// The calls made so far, as "Method arg".
    pub fn calls(&self) -> Vec<String> {
        self.state.lock().calls.clone()
    }

    /// All container statuses.
    pub fn containers(&self) -> Vec<api::ContainerStatus> {
        self.state.lock().containers.values().cloned().collect()
    }

    /// All sandboxes.
    pub fn sandboxes(&self) -> Vec<api::PodSandbox> {
        self.state
            .lock()
            .sandboxes
            .values()
            .map(|(s, _)| s.clone())
            .collect()
    }

    fn record(&self, call: String) {
        self.state.lock().calls.push(call);
    }
}

fn labels_match(
    have: &std::collections::HashMap<String, String>,
    want: &std::collections::HashMap<String, String>,
) -> bool {
    want.iter().all(|(k, v)| have.get(k) == Some(v))
}

#[async_trait]
impl Runtime for FakeRuntime {
    async fn version(&self) -> CriResult<api::VersionResponse> {
        Ok(api::VersionResponse {
            version: "0.1.0".into(),
            runtime_name: "fake".into(),
            runtime_version: "0.0.1".into(),
            runtime_api_version: "v1".into(),
        })
    }

    async fn status(&self) -> CriResult<api::StatusResponse> {
        let cond = |t: &str| api::RuntimeCondition {
            r#type: t.into(),
            status: true,
            reason: String::new(),
            message: String::new(),
        };
        Ok(api::StatusResponse {
            status: Some(api::RuntimeStatus {
                conditions: vec![cond("RuntimeReady"), cond("NetworkReady")],
            }),
            ..Default::default()
        })
    }

    async fn run_pod_sandbox(&self, config: api::PodSandboxConfig) -> CriResult<String> {
        let n = self.next.fetch_add(1, Ordering::SeqCst) + 1;
        let id = format!("sandbox{n}");
        self.record(format!(
            "RunPodSandbox {}",
            config
                .metadata
                .as_ref()
                .map(|m| m.name.as_str())
                .unwrap_or("")
        ));
        let sandbox = api::PodSandbox {
            id: id.clone(),
            metadata: config.metadata.clone(),
            state: api::PodSandboxState::SandboxReady as i32,
            created_at: now_ns(),
            labels: config.labels.clone(),
            annotations: config.annotations.clone(),
            runtime_handler: String::new(),
        };
        self.state
            .lock()
            .sandboxes
            .insert(id.clone(), (sandbox, config));
        Ok(id)
    }

    async fn stop_pod_sandbox(&self, id: &str) -> CriResult<()> {
        self.record(format!("StopPodSandbox {id}"));
        let ids: Vec<String> = {
            let st = self.state.lock();
            st.container_sandbox
                .iter()
                .filter(|(_, s)| *s == id)
                .map(|(c, _)| c.clone())
                .collect()
        };
        for c in ids {
            self.exit_container(&c, 137);
        }
        let mut st = self.state.lock();
        match st.sandboxes.get_mut(id) {
            Some((s, _)) => {
                s.state = api::PodSandboxState::SandboxNotready as i32;
                Ok(())
            }
            None => Ok(()),
        }
    }

    async fn remove_pod_sandbox(&self, id: &str) -> CriResult<()> {
        self.record(format!("RemovePodSandbox {id}"));
        let mut st = self.state.lock();
        st.sandboxes.remove(id);
        let ids: Vec<String> = st
            .container_sandbox
            .iter()
            .filter(|(_, s)| *s == id)
            .map(|(c, _)| c.clone())
            .collect();
        for c in ids {
            st.containers.remove(&c);
            st.container_sandbox.remove(&c);
        }
        Ok(())
    }

    async fn pod_sandbox_status(&self, id: &str) -> CriResult<api::PodSandboxStatus> {
        let st = self.state.lock();
        let (s, _) = st
            .sandboxes
            .get(id)
            .ok_or_else(|| not_found("sandbox", id))?;
        let n: u64 = id.trim_start_matches("sandbox").parse().unwrap_or(0);
        Ok(api::PodSandboxStatus {
            id: s.id.clone(),
            metadata: s.metadata.clone(),
            state: s.state,
            created_at: s.created_at,
            network: Some(api::PodSandboxNetworkStatus {
                ip: format!("10.88.0.{}", n % 250 + 2),
                additional_ips: vec![],
            }),
            labels: s.labels.clone(),
            annotations: s.annotations.clone(),
            ..Default::default()
        })
    }

    async fn list_pod_sandbox(
        &self,
        filter: Option<api::PodSandboxFilter>,
    ) -> CriResult<Vec<api::PodSandbox>> {
        let st = self.state.lock();
        Ok(st
            .sandboxes
            .values()
            .map(|(s, _)| s)
            .filter(|s| match &filter {
                None => true,
                Some(f) => {
                    (f.id.is_empty() || f.id == s.id)
                        && f.state.as_ref().is_none_or(|w| w.state == s.state)
                        && labels_match(&s.labels, &f.label_selector)
                }
            })
            .cloned()
            .collect())
    }

    async fn create_container(
        &self,
        sandbox_id: &str,
        config: api::ContainerConfig,
        _sandbox_config: api::PodSandboxConfig,
    ) -> CriResult<String> {
        let image = config
            .image
            .as_ref()
            .map(|i| normalize_image(&i.image))
            .unwrap_or_default();
        let mut st = self.state.lock();
        if !st.sandboxes.contains_key(sandbox_id) {
            return Err(not_found("sandbox", sandbox_id));
        }
        if !st.images.contains(&image) {
            return Err(tonic::Status::not_found(format!("image {image} not found")));
        }
        let n = self.next.fetch_add(1, Ordering::SeqCst) + 1;
        let id = format!("container{n}");
        st.calls.push(format!(
            "CreateContainer {}",
            config
                .metadata
                .as_ref()
                .map(|m| m.name.as_str())
                .unwrap_or("")
        ));
        st.containers.insert(
            id.clone(),
            api::ContainerStatus {
                id: id.clone(),
                metadata: config.metadata.clone(),
                state: api::ContainerState::ContainerCreated as i32,
                created_at: now_ns(),
                image: config.image.clone(),
                image_ref: format!("sha256:{image}"),
                labels: config.labels.clone(),
                annotations: config.annotations.clone(),
                ..Default::default()
            },
        );
        st.container_sandbox.insert(id.clone(), sandbox_id.into());
        Ok(id)
    }

    async fn start_container(&self, id: &str) -> CriResult<()> {
        let mut st = self.state.lock();
        st.calls.push(format!("StartContainer {id}"));
        let c = st
            .containers
            .get_mut(id)
            .ok_or_else(|| not_found("container", id))?;
        c.state = api::ContainerState::ContainerRunning as i32;
        c.started_at = now_ns();
        Ok(())
    }

    async fn stop_container(&self, id: &str, timeout_secs: i64) -> CriResult<()> {
        self.record(format!("StopContainer {id} {timeout_secs}"));
        self.exit_container(id, 137);
        Ok(())
    }

    async fn remove_container(&self, id: &str) -> CriResult<()> {
        let mut st = self.state.lock();
        st.calls.push(format!("RemoveContainer {id}"));
        st.containers.remove(id);
        st.container_sandbox.remove(id);
        Ok(())
    }

    async fn list_containers(
        &self,
        filter: Option<api::ContainerFilter>,
    ) -> CriResult<Vec<api::Container>> {
        let st = self.state.lock();
        Ok(st
            .containers
            .values()
            .filter(|c| match &filter {
                None => true,
                Some(f) => {
                    (f.id.is_empty() || f.id == c.id)
                        && (f.pod_sandbox_id.is_empty()
                            || st.container_sandbox.get(&c.id) == Some(&f.pod_sandbox_id))
                        && f.state.as_ref().is_none_or(|w| w.state == c.state)
                        && labels_match(&c.labels, &f.label_selector)
                }
            })
            .map(|c| api::Container {
                id: c.id.clone(),
                pod_sandbox_id: st.container_sandbox.get(&c.id).cloned().unwrap_or_default(),
                metadata: c.metadata.clone(),
                image: c.image.clone(),
                image_ref: c.image_ref.clone(),
                state: c.state,
                created_at: c.created_at,
                labels: c.labels.clone(),
                annotations: c.annotations.clone(),
                ..Default::default()
            })
            .collect())
    }

    async fn container_status(&self, id: &str) -> CriResult<api::ContainerStatus> {
        self.state
            .lock()
            .containers
            .get(id)
            .cloned()
            .ok_or_else(|| not_found("container", id))
    }

    async fn exec_sync(
        &self,
        id: &str,
        cmd: Vec<String>,
        _timeout_secs: i64,
    ) -> CriResult<api::ExecSyncResponse> {
        self.record(format!("ExecSync {id} {}", cmd.join(" ")));
        // `false` fails, anything else succeeds.
        let code = if cmd.first().map(String::as_str) == Some("false") {
            1
        } else {
            0
        };
        Ok(api::ExecSyncResponse {
            stdout: vec![],
            stderr: vec![],
            exit_code: code,
        })
    }

    async fn list_container_stats(&self) -> CriResult<Vec<api::ContainerStats>> {
        let st = self.state.lock();
        if st.stats_unavailable {
            return Err(tonic::Status::unavailable(
                "container stats are unavailable",
            ));
        }
        let now = now_ns();
        Ok(st
            .containers
            .values()
            .map(|c| {
                let figures = st.stats.get(&c.id);
                api::ContainerStats {
                    attributes: Some(api::ContainerAttributes {
                        id: c.id.clone(),
                        metadata: c.metadata.clone(),
                        labels: c.labels.clone(),
                        annotations: c.annotations.clone(),
                    }),
                    cpu: figures.map(|(cpu, _)| api::CpuUsage {
                        timestamp: now,
                        usage_core_nano_seconds: Some(api::UInt64Value { value: *cpu }),
                        usage_nano_cores: None,
                    }),
                    memory: figures.map(|(_, ws)| api::MemoryUsage {
                        timestamp: now,
                        working_set_bytes: Some(api::UInt64Value { value: *ws }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }
            })
            .collect())
    }

    async fn image_fs_info(&self) -> CriResult<Vec<api::FilesystemUsage>> {
        // Images on the root filesystem, a MiB each.
        Ok(vec![api::FilesystemUsage {
            timestamp: now_ns(),
            fs_id: Some(api::FilesystemIdentifier {
                mountpoint: "/".into(),
            }),
            used_bytes: Some(api::UInt64Value {
                value: self.state.lock().images.len() as u64 * (1 << 20),
            }),
            inodes_used: None,
        }])
    }

    async fn image_status(&self, image: &str) -> CriResult<Option<api::Image>> {
        let name = normalize_image(image);
        let st = self.state.lock();
        Ok(st.images.get(&name).map(|n| api::Image {
            id: format!("sha256:{n}"),
            repo_tags: vec![n.clone()],
            ..Default::default()
        }))
    }

    async fn pull_image(
        &self,
        image: &str,
        _sandbox_config: Option<api::PodSandboxConfig>,
    ) -> CriResult<String> {
        self.record(format!("PullImage {image}"));
        let name = normalize_image(image);
        if self.state.lock().images.contains(&name) {
            Ok(format!("sha256:{name}"))
        } else {
            Err(tonic::Status::unknown(format!(
                "failed to pull and unpack image \"{name}\": not found"
            )))
        }
    }

    async fn list_images(&self) -> CriResult<Vec<api::Image>> {
        let st = self.state.lock();
        Ok(st
            .images
            .iter()
            .map(|n| api::Image {
                id: format!("sha256:{n}"),
                repo_tags: vec![n.clone()],
                ..Default::default()
            })
            .collect())
    }
}
