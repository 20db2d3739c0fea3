//! `/stats/summary`: the kubelet's Summary API (`stats/v1alpha1`), JSON as
//! Kubernetes' kubelet serves it, and the collection behind it that
//! `/metrics/resource` renders too.
//!
//! Sources, as Kubernetes' kubelet with its CRI stats provider:
//! - containers: CRI's ListContainers (running ones only), ListPodSandbox
//!   (a terminated sandbox only when its pod has no ready one) and
//!   ListContainerStats; a container's `startTime` is its creation time;
//! - pods: `podRef` and `startTime` from the sandbox; CPU and memory are the
//!   sums of the pod's containers. Kubernetes reads the pod cgroup when it
//!   finds one and sums the containers otherwise; this agent makes no pod
//!   cgroup (its sandboxes have no cgroup parent), so the sum is what the
//!   kubelet would report here too;
//! - the node: /proc (CPU, memory, page faults, interfaces, processes),
//!   statvfs of the agent's directory (its `fs`) and CRI's ImageFsInfo (its
//!   `runtime.imageFs`);
//! - `usageNanoCores`: the runtime's figure, else the rate since the previous
//!   sample of the same container (at least a second apart);
//! - logs, emptyDir volumes and `ephemeral-storage`: walked on disk (`du -x`)
//!   under the agent's pod directories, only for `/stats/summary`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use serde::Serialize;

use super::host;
use crate::cri::{api, labels, Runtime};

/// Entries walked at most per directory measured (logs, a volume).
const DU_LIMIT: usize = 100_000;

/// A time as `metav1.Time` marshals it: RFC 3339 in whole seconds, UTC
/// (`null` when unset). Kept in nanoseconds for the metrics' milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Time(pub i64);

impl Time {
    pub(crate) fn now() -> Time {
        Time(jiff::Timestamp::now().as_nanosecond() as i64)
    }

    /// Milliseconds since the epoch (Prometheus timestamps).
    pub(crate) fn millis(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }
}

impl Serialize for Time {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0 == 0 {
            return s.serialize_none();
        }
        match jiff::Timestamp::from_second(self.0.div_euclid(1_000_000_000)) {
            Ok(t) => s.serialize_str(&t.to_string()),
            Err(_) => s.serialize_none(),
        }
    }
}

/// The summary.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Summary {
    pub node: NodeStats,
    pub pods: Vec<PodStats>,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct NodeStats {
    pub node_name: String,
    pub start_time: Time,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<CpuStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fs: Option<FsStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<RuntimeStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rlimit: Option<RlimitStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swap: Option<SwapStats>,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RuntimeStats {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_fs: Option<FsStats>,
}

#[derive(Debug, Default, Serialize)]
pub(crate) struct RlimitStats {
    pub time: Time,
    #[serde(rename = "maxpid", skip_serializing_if = "Option::is_none")]
    pub max_pid: Option<i64>,
    #[serde(rename = "curproc", skip_serializing_if = "Option::is_none")]
    pub processes: Option<i64>,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PodStats {
    pub pod_ref: PodReference,
    pub start_time: Time,
    pub containers: Vec<ContainerStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<CpuStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryStats>,
    #[serde(rename = "volume", skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<VolumeStats>,
    #[serde(rename = "ephemeral-storage", skip_serializing_if = "Option::is_none")]
    pub ephemeral_storage: Option<FsStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swap: Option<SwapStats>,
}

#[derive(Debug, Default, Clone, Serialize)]
pub(crate) struct PodReference {
    pub name: String,
    pub namespace: String,
    pub uid: String,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ContainerStats {
    pub name: String,
    pub start_time: Time,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<CpuStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rootfs: Option<FsStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logs: Option<FsStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swap: Option<SwapStats>,
}

#[derive(Debug, Default, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CpuStats {
    pub time: Time,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_nano_cores: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_core_nano_seconds: Option<u64>,
}

#[derive(Debug, Default, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MemoryStats {
    pub time: Time,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_set_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_faults: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub major_page_faults: Option<u64>,
}

#[derive(Debug, Default, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SwapStats {
    pub time: Time,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swap_available_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swap_usage_bytes: Option<u64>,
}

#[derive(Debug, Default, Serialize)]
pub(crate) struct NetworkStats {
    pub time: Time,
    /// The default interface (`eth0`), inline as in Kubernetes.
    #[serde(flatten)]
    pub default: InterfaceStats,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<InterfaceStats>,
}

#[derive(Debug, Default, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct InterfaceStats {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rx_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rx_errors: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tx_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tx_errors: Option<u64>,
}

#[derive(Debug, Default, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FsStats {
    pub time: Time,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inodes_free: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inodes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inodes_used: Option<u64>,
}

impl FsStats {
    /// The filesystem's size with `used` bytes and inodes of one user of it.
    fn on(fs: Option<host::Fs>, time: Time, used: Option<(u64, u64)>) -> FsStats {
        FsStats {
            time,
            available_bytes: fs.map(|f| f.available),
            capacity_bytes: fs.map(|f| f.capacity),
            used_bytes: used.map(|u| u.0),
            inodes_free: fs.map(|f| f.inodes_free),
            inodes: fs.map(|f| f.inodes),
            inodes_used: used.map(|u| u.1),
        }
    }
}

#[derive(Debug, Default, Serialize)]
pub(crate) struct VolumeStats {
    #[serde(flatten)]
    pub fs: FsStats,
    pub name: String,
}

/// One CPU sample and the rate computed from the one before.
#[derive(Clone, Copy)]
struct CpuSample {
    usage: u64,
    at: i64,
    nano_cores: Option<u64>,
}

/// Collects the summary; remembers the last CPU sample of each container
/// (and of the node) for `usageNanoCores`.
pub(crate) struct Collector {
    node_name: String,
    /// The agent's directory: its filesystem is the node's `fs`; pods' logs
    /// and volumes are under `pods/<uid>/`.
    agent_dir: PathBuf,
    cpu: Mutex<HashMap<String, CpuSample>>,
}

/// The cache key of the node's own CPU sample (no container ID is empty).
const NODE_KEY: &str = "";

impl Collector {
    pub(crate) fn new(node_name: String, agent_dir: PathBuf) -> Collector {
        Collector {
            node_name,
            agent_dir,
            cpu: Mutex::new(HashMap::new()),
        }
    }

    /// The CPU rate (nanocores) of `key` from its previous sample, which is
    /// replaced when this one is at least a second newer (a restarted
    /// counter starts over).
    fn nano_cores(&self, key: &str, usage: u64, at: i64) -> Option<u64> {
        let mut cache = self.cpu.lock();
        let Some(prev) = cache.get(key).copied() else {
            cache.insert(
                key.to_string(),
                CpuSample {
                    usage,
                    at,
                    nano_cores: None,
                },
            );
            return None;
        };
        if at - prev.at < 1_000_000_000 && usage >= prev.usage {
            return prev.nano_cores;
        }
        let nano_cores = (usage >= prev.usage && at > prev.at)
            .then(|| ((usage - prev.usage) as f64 / (at - prev.at) as f64 * 1e9) as u64);
        cache.insert(
            key.to_string(),
            CpuSample {
                usage,
                at,
                nano_cores,
            },
        );
        nano_cores
    }

    /// Forgets the samples of containers no longer listed.
    fn forget_others(&self, live: &[&str]) {
        let mut cache = self.cpu.lock();
        cache.retain(|k, _| k == NODE_KEY || live.contains(&k.as_str()));
    }

    /// The node's figures from /proc and statvfs (`full`: with network,
    /// filesystem and process counts).
    fn node(&self, full: bool) -> NodeStats {
        let now = Time::now();
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mut node = NodeStats {
            node_name: self.node_name.clone(),
            start_time: host::boot_time(&stat)
                .map(|s| Time(s.saturating_mul(1_000_000_000)))
                .unwrap_or_default(),
            ..Default::default()
        };
        node.cpu = host::cpu_nanoseconds(&stat).map(|usage| CpuStats {
            time: now,
            usage_nano_cores: self.nano_cores(NODE_KEY, usage, now.0),
            usage_core_nano_seconds: Some(usage),
        });
        if let Some(m) = host::memory(&meminfo) {
            let (faults, major) = if full {
                host::page_faults(&std::fs::read_to_string("/proc/vmstat").unwrap_or_default())
            } else {
                (None, None)
            };
            node.memory = Some(MemoryStats {
                time: now,
                available_bytes: Some(m.capacity.saturating_sub(m.working_set)),
                usage_bytes: Some(m.usage),
                working_set_bytes: Some(m.working_set),
                rss_bytes: Some(m.rss),
                page_faults: faults,
                major_page_faults: major,
            });
            node.swap = m.swap.map(|used| SwapStats {
                time: now,
                swap_available_bytes: None,
                swap_usage_bytes: Some(used),
            });
        }
        if full {
            let all =
                host::interfaces(&std::fs::read_to_string("/proc/net/dev").unwrap_or_default());
            let iface = |i: &host::Interface| InterfaceStats {
                name: i.name.clone(),
                rx_bytes: Some(i.rx_bytes),
                rx_errors: Some(i.rx_errors),
                tx_bytes: Some(i.tx_bytes),
                tx_errors: Some(i.tx_errors),
            };
            if !all.is_empty() {
                node.network = Some(NetworkStats {
                    time: now,
                    default: all
                        .iter()
                        .find(|i| i.name == "eth0")
                        .map(iface)
                        .unwrap_or_default(),
                    interfaces: all.iter().map(iface).collect(),
                });
            }
            node.fs = host::fs(&self.agent_dir).map(|f| {
                FsStats::on(
                    Some(f),
                    now,
                    Some((f.used, f.inodes.saturating_sub(f.inodes_free))),
                )
            });
            let (max_pid, processes) = host::processes();
            node.rlimit = Some(RlimitStats {
                time: now,
                max_pid,
                processes,
            });
        }
        node
    }

    /// The summary. `full`: everything `/stats/summary` carries; otherwise
    /// the CPU and memory `/metrics/resource` renders. An error when the
    /// runtime does not answer.
    pub(crate) async fn collect(
        &self,
        runtime: &dyn Runtime,
        full: bool,
    ) -> Result<Summary, tonic::Status> {
        let sandboxes = runtime.list_pod_sandbox(None).await?;
        let containers = runtime.list_containers(None).await?;
        let stats = runtime.list_container_stats().await?;
        let mut node = self.node(full);
        if full {
            node.runtime = image_fs(runtime).await;
        }

        let sandboxes = current_sandboxes(sandboxes);
        let running: HashMap<&str, &api::Container> = containers
            .iter()
            .filter(|c| c.state == api::ContainerState::ContainerRunning as i32)
            .map(|c| (c.id.as_str(), c))
            .collect();
        self.forget_others(&running.keys().copied().collect::<Vec<_>>());

        let now = Time::now();
        let mut fs_cache = host::FsCache::default();
        let root_fs = full.then(|| fs_cache.get(&self.agent_dir)).flatten();
        let mut pods: HashMap<&str, PodStats> = HashMap::new();
        for s in &stats {
            let Some(attrs) = &s.attributes else { continue };
            let Some(c) = running.get(attrs.id.as_str()) else {
                continue;
            };
            let Some(sandbox) = sandboxes.get(c.pod_sandbox_id.as_str()) else {
                continue;
            };
            let meta = sandbox.metadata.clone().unwrap_or_default();
            let pod = pods.entry(sandbox.id.as_str()).or_insert_with(|| PodStats {
                pod_ref: PodReference {
                    name: meta.name.clone(),
                    namespace: meta.namespace.clone(),
                    uid: meta.uid.clone(),
                },
                start_time: Time(sandbox.created_at),
                ..Default::default()
            });
            let cs = self.container(s, c, &meta.uid, full, &mut fs_cache, root_fs, now);
            add_to_pod(pod, &cs);
            pod.containers.push(cs);
        }
        let mut pods: Vec<PodStats> = pods.into_values().collect();
        for p in &mut pods {
            p.containers.sort_by(|a, b| a.name.cmp(&b.name));
            if full {
                self.storage(p, root_fs, &mut fs_cache, now);
            }
        }
        pods.sort_by(|a, b| {
            (&a.pod_ref.namespace, &a.pod_ref.name).cmp(&(&b.pod_ref.namespace, &b.pod_ref.name))
        });
        Ok(Summary { node, pods })
    }

    /// One running container's figures (`full`: with its writable layer and
    /// logs; `pod_uid` finds the logs).
    #[expect(clippy::too_many_arguments, reason = "one collection's shared state")]
    fn container(
        &self,
        s: &api::ContainerStats,
        c: &api::Container,
        pod_uid: &str,
        full: bool,
        fs_cache: &mut host::FsCache,
        root_fs: Option<host::Fs>,
        now: Time,
    ) -> ContainerStats {
        let id = c.id.as_str();
        let attrs = s.attributes.clone().unwrap_or_default();
        let name = attrs
            .metadata
            .as_ref()
            .map(|m| m.name.clone())
            .or_else(|| attrs.labels.get(labels::CONTAINER_NAME).cloned())
            .unwrap_or_default();
        let mut cs = ContainerStats {
            start_time: Time(c.created_at),
            cpu: s.cpu.as_ref().map(|u| {
                let usage = u.usage_core_nano_seconds.as_ref().map(|v| v.value);
                CpuStats {
                    time: Time(u.timestamp),
                    usage_nano_cores: u
                        .usage_nano_cores
                        .as_ref()
                        .map(|v| v.value)
                        .or_else(|| usage.and_then(|n| self.nano_cores(id, n, u.timestamp))),
                    usage_core_nano_seconds: usage,
                }
            }),
            memory: s.memory.as_ref().map(|m| MemoryStats {
                time: Time(m.timestamp),
                available_bytes: m.available_bytes.as_ref().map(|v| v.value),
                usage_bytes: m.usage_bytes.as_ref().map(|v| v.value),
                working_set_bytes: m.working_set_bytes.as_ref().map(|v| v.value),
                rss_bytes: m.rss_bytes.as_ref().map(|v| v.value),
                page_faults: m.page_faults.as_ref().map(|v| v.value),
                major_page_faults: m.major_page_faults.as_ref().map(|v| v.value),
            }),
            swap: s.swap.as_ref().map(|w| SwapStats {
                time: Time(w.timestamp),
                swap_available_bytes: w.swap_available_bytes.as_ref().map(|v| v.value),
                swap_usage_bytes: w.swap_usage_bytes.as_ref().map(|v| v.value),
            }),
            name,
            ..Default::default()
        };
        if full {
            cs.rootfs = s.writable_layer.as_ref().map(|w| {
                let fs = w
                    .fs_id
                    .as_ref()
                    .filter(|id| !id.mountpoint.is_empty())
                    .and_then(|id| fs_cache.get(Path::new(&id.mountpoint)));
                FsStats {
                    used_bytes: w.used_bytes.as_ref().map(|v| v.value),
                    inodes_used: w.inodes_used.as_ref().map(|v| v.value),
                    ..FsStats::on(fs, Time(w.timestamp), None)
                }
            });
            let dir = self
                .agent_dir
                .join("pods")
                .join(pod_uid)
                .join("logs")
                .join(&cs.name);
            cs.logs = Some(FsStats::on(root_fs, now, host::disk_usage(&dir, DU_LIMIT)));
        }
        cs
    }

    /// A pod's emptyDir volumes and its ephemeral storage: its containers'
    /// writable layers and logs and its disk-backed emptyDirs.
    fn storage(
        &self,
        pod: &mut PodStats,
        root_fs: Option<host::Fs>,
        fs_cache: &mut host::FsCache,
        now: Time,
    ) {
        let dir = self
            .agent_dir
            .join("pods")
            .join(&pod.pod_ref.uid)
            .join("volumes")
            .join("kubernetes.io~empty-dir");
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .map(|d| {
                d.flatten()
                    .filter_map(|e| e.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        let (mut used, mut inodes) = (0u64, 0u64);
        for c in &pod.containers {
            for f in [&c.rootfs, &c.logs].into_iter().flatten() {
                used += f.used_bytes.unwrap_or(0);
                inodes += f.inodes_used.unwrap_or(0);
            }
        }
        for name in names {
            let path = dir.join(&name);
            let fs = fs_cache.get(&path);
            let usage = host::disk_usage(&path, DU_LIMIT);
            // A memory-backed emptyDir is its own tmpfs: memory, not disk.
            let on_disk = fs.is_some() && fs == root_fs;
            if on_disk {
                if let Some((b, i)) = usage {
                    used += b;
                    inodes += i;
                }
            }
            pod.volumes.push(VolumeStats {
                fs: FsStats::on(fs, now, usage),
                name,
            });
        }
        pod.ephemeral_storage = Some(FsStats::on(root_fs, now, Some((used, inodes))));
    }
}

/// The runtime's first image filesystem (Kubernetes reports only the
/// first), sized with statvfs; `None` if the runtime does not say.
async fn image_fs(runtime: &dyn Runtime) -> Option<RuntimeStats> {
    let all = runtime
        .image_fs_info()
        .await
        .map_err(|e| tracing::debug!(error = %e, "image filesystem"))
        .ok()?;
    let fs = all.into_iter().next()?;
    let size = fs
        .fs_id
        .as_ref()
        .filter(|id| !id.mountpoint.is_empty())
        .and_then(|id| host::fs(Path::new(&id.mountpoint)));
    Some(RuntimeStats {
        image_fs: Some(FsStats {
            used_bytes: fs.used_bytes.as_ref().map(|v| v.value),
            inodes_used: fs.inodes_used.as_ref().map(|v| v.value),
            ..FsStats::on(size, Time(fs.timestamp), None)
        }),
    })
}

/// The sandboxes whose stats count, by ID: for each pod (name and namespace)
/// its ready sandboxes, or its newest one if none is ready (Kubernetes'
/// `removeTerminatedPods`).
fn current_sandboxes(mut all: Vec<api::PodSandbox>) -> HashMap<String, api::PodSandbox> {
    all.sort_by_key(|s| s.created_at);
    let mut by_pod: HashMap<(String, String), Vec<api::PodSandbox>> = HashMap::new();
    for s in all {
        let m = s.metadata.clone().unwrap_or_default();
        by_pod.entry((m.namespace, m.name)).or_default().push(s);
    }
    let mut out = HashMap::new();
    for (_, mut list) in by_pod {
        let ready: Vec<api::PodSandbox> = list
            .iter()
            .filter(|s| s.state == api::PodSandboxState::SandboxReady as i32)
            .cloned()
            .collect();
        let keep = if ready.is_empty() || list.len() == 1 {
            list.pop().into_iter().collect()
        } else {
            ready
        };
        for s in keep {
            out.insert(s.id.clone(), s);
        }
    }
    out
}

/// Adds a container's CPU and memory to its pod's sums; the pod's times are
/// its latest container's.
fn add_to_pod(pod: &mut PodStats, c: &ContainerStats) {
    let sum = |a: Option<u64>, b: Option<u64>| Some(a.unwrap_or(0) + b.unwrap_or(0));
    if let Some(cpu) = &c.cpu {
        let p = pod.cpu.get_or_insert_with(CpuStats::default);
        p.time = p.time.max(cpu.time);
        p.usage_nano_cores = sum(p.usage_nano_cores, cpu.usage_nano_cores);
        p.usage_core_nano_seconds = sum(p.usage_core_nano_seconds, cpu.usage_core_nano_seconds);
    }
    if let Some(m) = &c.memory {
        let p = pod.memory.get_or_insert_with(MemoryStats::default);
        p.time = p.time.max(m.time);
        p.available_bytes = sum(p.available_bytes, m.available_bytes);
        p.usage_bytes = sum(p.usage_bytes, m.usage_bytes);
        p.working_set_bytes = sum(p.working_set_bytes, m.working_set_bytes);
        p.rss_bytes = sum(p.rss_bytes, m.rss_bytes);
        p.page_faults = sum(p.page_faults, m.page_faults);
        p.major_page_faults = sum(p.major_page_faults, m.major_page_faults);
    }
    if let Some(w) = &c.swap {
        let p = pod.swap.get_or_insert_with(SwapStats::default);
        p.time = p.time.max(w.time);
        p.swap_available_bytes = sum(p.swap_available_bytes, w.swap_available_bytes);
        p.swap_usage_bytes = sum(p.swap_usage_bytes, w.swap_usage_bytes);
    }
}

/// A fake runtime with running pods, for this module's and `metrics`' tests.
#[cfg(test)]
pub(crate) mod testing {
    use crate::cri::fake::FakeRuntime;
    use crate::cri::{api, labels, Runtime as _};

    /// Runs pod `ns/name` (UID `uid`) with `containers` (name, cumulative
    /// CPU ns, working set bytes); returns the container IDs.
    pub(crate) async fn run_pod(
        rt: &FakeRuntime,
        ns: &str,
        name: &str,
        uid: &str,
        containers: &[(&str, u64, u64)],
    ) -> Vec<String> {
        rt.add_image("busybox");
        let pod_labels = std::collections::HashMap::from([
            (labels::POD_NAME.to_string(), name.to_string()),
            (labels::POD_NAMESPACE.to_string(), ns.to_string()),
            (labels::POD_UID.to_string(), uid.to_string()),
        ]);
        let config = api::PodSandboxConfig {
            metadata: Some(api::PodSandboxMetadata {
                name: name.into(),
                uid: uid.into(),
                namespace: ns.into(),
                attempt: 0,
            }),
            labels: pod_labels.clone(),
            ..Default::default()
        };
        let sandbox = rt.run_pod_sandbox(config.clone()).await.expect("sandbox");
        let mut ids = Vec::new();
        for (c, cpu, ws) in containers {
            let mut l = pod_labels.clone();
            l.insert(labels::CONTAINER_NAME.into(), c.to_string());
            let id = rt
                .create_container(
                    &sandbox,
                    api::ContainerConfig {
                        metadata: Some(api::ContainerMetadata {
                            name: c.to_string(),
                            attempt: 0,
                        }),
                        image: Some(api::ImageSpec {
                            image: "busybox".into(),
                            ..Default::default()
                        }),
                        labels: l,
                        ..Default::default()
                    },
                    config.clone(),
                )
                .await
                .expect("container");
            rt.start_container(&id).await.expect("start");
            rt.set_container_stats(&id, *cpu, *ws);
            ids.push(id);
        }
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cri::fake::FakeRuntime;

    /// The node's figures a full summary carries.
    fn assert_node_figures(node: &serde_json::Value) {
        assert_eq!(node["nodeName"], "node-a");
        assert_eq!(
            node["runtime"]["imageFs"]["usedBytes"],
            1u64 << 20,
            "{node}"
        );
        assert!(
            node["runtime"]["imageFs"]["capacityBytes"].as_u64() > Some(0),
            "{node}"
        );
        for k in ["time", "usageCoreNanoSeconds"] {
            assert!(node["cpu"].get(k).is_some(), "{k}: {node}");
        }
        for k in [
            "workingSetBytes",
            "usageBytes",
            "availableBytes",
            "rssBytes",
        ] {
            assert!(node["memory"][k].as_u64().is_some(), "{k}: {node}");
        }
        for k in [
            "capacityBytes",
            "availableBytes",
            "usedBytes",
            "inodes",
            "inodesFree",
        ] {
            assert!(node["fs"][k].as_u64().is_some(), "{k}: {node}");
        }
    }

    #[tokio::test]
    async fn pods_sum_their_running_containers() {
        let rt = FakeRuntime::new();
        let dir = tempfile::tempdir().expect("tempdir");
        let ids = testing::run_pod(
            &rt,
            "default",
            "web",
            "uid-1",
            &[
                ("app", 2_000_000_000, 3_000_000),
                ("side", 500_000_000, 1_000_000),
            ],
        )
        .await;
        testing::run_pod(&rt, "default", "done", "uid-2", &[("job", 7, 7)]).await;
        let done = rt
            .containers()
            .into_iter()
            .find(|c| c.labels.get(labels::POD_NAME).map(String::as_str) == Some("done"))
            .expect("done's container");
        rt.stop_container(&done.id, 0).await.expect("stop");
        // Logs and an emptyDir on disk.
        let pod_dir = dir.path().join("pods").join("uid-1");
        std::fs::create_dir_all(pod_dir.join("logs").join("app")).expect("mkdir");
        std::fs::write(
            pod_dir.join("logs").join("app").join("0.log"),
            vec![b'x'; 5000],
        )
        .expect("log");
        let cache = pod_dir
            .join("volumes")
            .join("kubernetes.io~empty-dir")
            .join("cache");
        std::fs::create_dir_all(&cache).expect("mkdir");
        std::fs::write(cache.join("f"), vec![0u8; 9000]).expect("file");

        let c = Collector::new("node-a".into(), dir.path().to_path_buf());
        let s = c.collect(&rt, true).await.expect("summary");
        let json = serde_json::to_value(&s).expect("json");
        assert_node_figures(&json["node"]);
        let pods = json["pods"].as_array().expect("pods");
        assert_eq!(
            pods.len(),
            1,
            "the stopped pod has no running container: {json}"
        );
        let p = &pods[0];
        assert_eq!(
            p["podRef"],
            serde_json::json!({"name": "web", "namespace": "default", "uid": "uid-1"})
        );
        let time = p["startTime"].as_str().expect("startTime");
        assert!(time.ends_with('Z') && time.len() == 20, "{time}");
        assert_eq!(p["cpu"]["usageCoreNanoSeconds"], 2_500_000_000u64);
        assert_eq!(p["memory"]["workingSetBytes"], 4_000_000u64);
        let names: Vec<&str> = p["containers"]
            .as_array()
            .expect("containers")
            .iter()
            .filter_map(|c| c["name"].as_str())
            .collect();
        assert_eq!(names, ["app", "side"]);
        let app = &p["containers"][0];
        assert_eq!(app["cpu"]["usageCoreNanoSeconds"], 2_000_000_000u64);
        assert_eq!(app["memory"]["workingSetBytes"], 3_000_000u64);
        assert!(
            app["logs"]["usedBytes"].as_u64().is_some_and(|b| b >= 5000),
            "{app}"
        );
        assert_eq!(p["volume"][0]["name"], "cache");
        assert!(
            p["volume"][0]["usedBytes"]
                .as_u64()
                .is_some_and(|b| b >= 9000),
            "{p}"
        );
        let eph = p["ephemeral-storage"]["usedBytes"]
            .as_u64()
            .expect("ephemeral");
        assert!(eph >= 14_000, "{p}");

        // A container's first collection had no earlier sample.
        assert!(s.pods[0].containers[0]
            .cpu
            .is_some_and(|c| c.usage_nano_cores.is_none()));
        assert!(!ids.is_empty());

        // Without the disk figures.
        let s = c.collect(&rt, false).await.expect("summary");
        let json = serde_json::to_value(&s).expect("json");
        assert!(json["node"].get("fs").is_none(), "{json}");
        assert!(
            json["pods"][0]["containers"][0].get("logs").is_none(),
            "{json}"
        );
        assert!(json["pods"][0].get("ephemeral-storage").is_none(), "{json}");
    }

    #[test]
    fn the_cpu_rate_comes_from_samples_a_second_apart() {
        let c = Collector::new("n".into(), std::env::temp_dir());
        // A second sample a second later gives the CPU rate.
        assert_eq!(
            c.nano_cores("other", 2_000_000_000, 0),
            None,
            "a first sample has no rate"
        );
        assert_eq!(
            c.nano_cores("other", 2_500_000_000, 1_000_000_000),
            Some(500_000_000)
        );
        // Within a second: the last rate, the sample kept.
        assert_eq!(
            c.nano_cores("other", 2_600_000_000, 1_500_000_000),
            Some(500_000_000)
        );
        assert_eq!(
            c.nano_cores("other", 3_500_000_000, 3_000_000_000),
            Some(500_000_000)
        );
    }

    #[test]
    fn a_ready_sandbox_hides_the_terminated_ones_of_its_pod() {
        let sb = |id: &str, created: i64, ready: bool| api::PodSandbox {
            id: id.into(),
            metadata: Some(api::PodSandboxMetadata {
                name: "p".into(),
                namespace: "ns".into(),
                uid: "u".into(),
                attempt: 0,
            }),
            state: if ready {
                api::PodSandboxState::SandboxReady as i32
            } else {
                api::PodSandboxState::SandboxNotready as i32
            },
            created_at: created,
            ..Default::default()
        };
        let keep = current_sandboxes(vec![sb("a", 1, false), sb("b", 2, true), sb("c", 3, false)]);
        assert_eq!(keep.keys().collect::<Vec<_>>(), ["b"]);
        let keep = current_sandboxes(vec![sb("a", 1, false), sb("c", 3, false)]);
        assert_eq!(keep.keys().collect::<Vec<_>>(), ["c"]);
    }

    #[test]
    fn times_marshal_as_metav1_time() {
        assert_eq!(
            serde_json::to_string(&Time(1_765_141_811_999_999_999)).expect("json"),
            "\"2025-12-07T21:10:11Z\""
        );
        assert_eq!(serde_json::to_string(&Time(0)).expect("json"), "null");
    }
}
