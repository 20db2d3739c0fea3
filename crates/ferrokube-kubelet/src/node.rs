//! This machine as a Node: registration (capacity, allocatable, addresses, nodeInfo,
//! labels), the conditions (Ready from the runtime's health, memory/disk/PID pressure
//! from the machine's) reported through `nodes/status`, and the Lease in
//! kube-node-lease renewed every `lease_interval`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{Node, NodeCondition, NodeSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::cri::{api as cri_api, Runtime};
use crate::KubeletConfig;

/// The kubelet version this agent reports.
pub(crate) const KUBELET_VERSION: &str = "v1.33.0-ferrokube";
/// Pods per node, as Kubernetes' default.
pub(crate) const MAX_PODS: u32 = 110;
const LEASE_NAMESPACE: &str = "kube-node-lease";
const LEASE_DURATION_SECS: i32 = 40;
/// Status is written at least this often even when nothing changed (Kubernetes: 5 min).
const STATUS_REPORT_EVERY: Duration = Duration::from_secs(300);

/// What registration learnt from the Node.
pub(crate) struct Registered {
    pub pod_cidr: Option<String>,
}

/// The address of the interface the default route leaves by, else loopback.
pub(crate) fn detect_node_ip() -> IpAddr {
    // connect() on UDP sends nothing; it only picks the route and source address.
    let probe = || -> std::io::Result<IpAddr> {
        let s = UdpSocket::bind("0.0.0.0:0")?;
        s.connect("192.0.2.1:9")?;
        Ok(s.local_addr()?.ip())
    };
    probe().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn meminfo(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

#[expect(unsafe_code, reason = "statvfs(3): std has no filesystem statistics")]
fn fs_bytes(path: &Path) -> Option<(u64, u64)> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: statvfs is plain old data: all zeroes is a valid value.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: statvfs writes into the struct we own; the path is NUL-terminated.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let frsize = st.f_frsize as u64;
    Some((st.f_blocks as u64 * frsize, st.f_bavail as u64 * frsize))
}

fn kernel_release() -> String {
    read("/proc/sys/kernel/osrelease")
}

fn os_image() -> String {
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "Linux".into())
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

pub(crate) fn hostname() -> String {
    read("/proc/sys/kernel/hostname")
}

/// Capacity of this machine: cpu, memory, ephemeral-storage (of the data dir's
/// filesystem), pods.
#[expect(unsafe_code, reason = "sysconf(3) for the online CPUs")]
pub(crate) fn capacity(data_dir: &Path) -> BTreeMap<String, Quantity> {
    // SAFETY: sysconf has no preconditions.
    let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1);
    let mem_kib = meminfo("MemTotal").unwrap_or(0);
    let disk = fs_bytes(data_dir)
        .or_else(|| fs_bytes(Path::new("/")))
        .map(|d| d.0)
        .unwrap_or(0);
    BTreeMap::from([
        ("cpu".to_string(), Quantity(cpus.to_string())),
        ("memory".to_string(), Quantity(format!("{mem_kib}Ki"))),
        ("ephemeral-storage".to_string(), Quantity(disk.to_string())),
        ("pods".to_string(), Quantity(MAX_PODS.to_string())),
    ])
}

/// The Node object this agent creates: the well-known labels and the
/// configured ones (a well-known label wins), and the configured taints.
pub(crate) fn node_object(config: &KubeletConfig) -> Node {
    let mut labels = config.node_labels.clone();
    labels.extend(default_labels(config));
    Node {
        metadata: ObjectMeta {
            name: Some(config.node_name.clone()),
            labels: Some(labels),
            annotations: Some(BTreeMap::from([(
                "node.alpha.kubernetes.io/ttl".to_string(),
                "0".to_string(),
            )])),
            ..Default::default()
        },
        spec: (!config.register_with_taints.is_empty()).then(|| NodeSpec {
            taints: Some(config.register_with_taints.clone()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The labels the agent keeps on its Node: host name, OS, architecture.
fn default_labels(config: &KubeletConfig) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "kubernetes.io/hostname".to_string(),
            config.node_name.clone(),
        ),
        ("kubernetes.io/os".to_string(), "linux".to_string()),
        ("kubernetes.io/arch".to_string(), arch().to_string()),
        ("beta.kubernetes.io/os".to_string(), "linux".to_string()),
        ("beta.kubernetes.io/arch".to_string(), arch().to_string()),
    ])
}

/// The Node's addresses: its InternalIPs, ExternalIPs and host name.
fn addresses(config: &KubeletConfig, node_ip: IpAddr) -> Vec<serde_json::Value> {
    let mut out = vec![json!({"type": "InternalIP", "address": node_ip.to_string()})];
    for ip in config
        .secondary_node_ips
        .iter()
        .filter(|ip| **ip != node_ip)
    {
        out.push(json!({"type": "InternalIP", "address": ip.to_string()}));
    }
    for ip in &config.node_external_ips {
        out.push(json!({"type": "ExternalIP", "address": ip.to_string()}));
    }
    out.push(json!({"type": "Hostname", "address": hostname()}));
    out
}

fn condition(
    type_: &str,
    is_true: bool,
    reason: &str,
    message: &str,
    previous: Option<&NodeCondition>,
    now: &Time,
) -> NodeCondition {
    let status = if is_true { "True" } else { "False" };
    let transition = match previous {
        Some(p) if p.status == status => p.last_transition_time.clone().unwrap_or(now.clone()),
        _ => now.clone(),
    };
    NodeCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_heartbeat_time: Some(now.clone()),
        last_transition_time: Some(transition),
    }
}

/// Why the runtime's status is not known (the Ready condition says so).
#[derive(Debug, Clone, thiserror::Error)]
enum RuntimeDown {
    /// The agent is still starting the runtime (the Node's first status).
    #[error("starting")]
    Starting,
    /// The runtime answered the status call without a status.
    #[error("no status")]
    NoStatus,
    /// The runtime's status call failed, with the runtime's message.
    #[error("{0}")]
    Call(String),
}

/// Node conditions from the runtime's status and the machine's free memory and disk.
fn conditions(
    runtime_status: Result<&cri_api::RuntimeStatus, RuntimeDown>,
    data_dir: &Path,
    previous: &[NodeCondition],
) -> Vec<NodeCondition> {
    let now = Time(jiff::Timestamp::now());
    let prev = |t: &str| previous.iter().find(|c| c.type_ == t);
    let mem_avail = meminfo("MemAvailable").unwrap_or(u64::MAX);
    let mem_pressure = mem_avail < 100 * 1024; // < 100Mi, Kubernetes' default eviction threshold
    let disk_pressure = fs_bytes(data_dir)
        .map(|(total, avail)| total > 0 && avail * 10 < total)
        .unwrap_or(false);
    let (ready, ready_msg) = match runtime_status {
        Err(e) => (false, format!("container runtime is down: {e}")),
        Ok(st) => {
            let bad: Vec<String> = st
                .conditions
                .iter()
                .filter(|c| !c.status)
                .map(|c| format!("{} is false: {} {}", c.r#type, c.reason, c.message))
                .collect();
            if bad.is_empty() {
                (true, "kubelet is posting ready status".to_string())
            } else {
                (
                    false,
                    format!("container runtime not ready: {}", bad.join("; ")),
                )
            }
        }
    };
    let (mem_reason, mem_msg) = if mem_pressure {
        (
            "KubeletHasInsufficientMemory",
            "kubelet has insufficient memory available",
        )
    } else {
        (
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
        )
    };
    let (disk_reason, disk_msg) = if disk_pressure {
        ("KubeletHasDiskPressure", "kubelet has disk pressure")
    } else {
        ("KubeletHasNoDiskPressure", "kubelet has no disk pressure")
    };
    vec![
        condition(
            "MemoryPressure",
            mem_pressure,
            mem_reason,
            mem_msg,
            prev("MemoryPressure"),
            &now,
        ),
        condition(
            "DiskPressure",
            disk_pressure,
            disk_reason,
            disk_msg,
            prev("DiskPressure"),
            &now,
        ),
        condition(
            "PIDPressure",
            false,
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
            prev("PIDPressure"),
            &now,
        ),
        condition(
            "Ready",
            ready,
            if ready {
                "KubeletReady"
            } else {
                "KubeletNotReady"
            },
            &ready_msg,
            prev("Ready"),
            &now,
        ),
    ]
}

fn status_patch(
    config: &KubeletConfig,
    node_ip: IpAddr,
    version: &cri_api::VersionResponse,
    conds: &[NodeCondition],
) -> serde_json::Value {
    let cap = capacity(&config.data_dir);
    json!({
        "status": {
            "capacity": cap,
            "allocatable": cap,
            "conditions": conds,
            "addresses": addresses(config, node_ip),
            "daemonEndpoints": {"kubeletEndpoint": {"Port": config.kubelet_port}},
            "nodeInfo": {
                "machineID": read("/etc/machine-id"),
                "systemUUID": read("/sys/class/dmi/id/product_uuid"),
                "bootID": read("/proc/sys/kernel/random/boot_id"),
                "kernelVersion": kernel_release(),
                "osImage": os_image(),
                "containerRuntimeVersion": format!("{}://{}", version.runtime_name, version.runtime_version),
                "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": KUBELET_VERSION,
                "operatingSystem": "linux",
                "architecture": arch(),
            }
        }
    })
}

async fn runtime_status(runtime: &dyn Runtime) -> Result<cri_api::RuntimeStatus, RuntimeDown> {
    match runtime.status().await {
        Ok(r) => r.status.ok_or(RuntimeDown::NoStatus),
        Err(e) => Err(RuntimeDown::Call(e.message().to_string())),
    }
}

/// Creates the Node if missing (keeping an existing one's spec), then writes its status.
pub(crate) async fn register(
    client: &kube::Client,
    config: &KubeletConfig,
    node_ip: IpAddr,
    version: &cri_api::VersionResponse,
) -> anyhow::Result<Registered> {
    let nodes: Api<Node> = Api::all(client.clone());
    let node = match nodes.get_opt(&config.node_name).await? {
        Some(n) => {
            // Make sure our labels are on it.
            let want = default_labels(config);
            let patch = json!({"metadata": {"labels": want}});
            nodes
                .patch(
                    &config.node_name,
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await?;
            n
        }
        None => {
            tracing::info!(node = %config.node_name, "registering node");
            match nodes
                .create(&PostParams::default(), &node_object(config))
                .await
            {
                Ok(n) => n,
                Err(kube::Error::Api(e)) if e.code == 409 => nodes.get(&config.node_name).await?,
                Err(e) => return Err(e.into()),
            }
        }
    };
    let conds = conditions(Err(RuntimeDown::Starting), &config.data_dir, &[]);
    let patch = status_patch(config, node_ip, version, &conds);
    nodes
        .patch_status(
            &config.node_name,
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
    Ok(Registered {
        pod_cidr: node.spec.as_ref().and_then(|s| s.pod_cidr.clone()),
    })
}

/// Waits for the node IPAM controller to give the Node a `spec.podCIDR` and returns
/// it: a node never takes a range of its own, which another node might also take.
/// Polls the Node (100 ms at first, then up to every 2 s), says every 10 s that it is
/// still waiting, and gives up after `config.pod_cidr_timeout`.
pub(crate) async fn wait_pod_cidr(
    client: &kube::Client,
    config: &KubeletConfig,
    cancel: &CancellationToken,
) -> anyhow::Result<String> {
    let nodes: Api<Node> = Api::all(client.clone());
    let started = Instant::now();
    let mut delay = Duration::from_millis(100);
    let mut said = started;
    tracing::info!(node = %config.node_name, "waiting for the node IPAM controller to assign spec.podCIDR");
    loop {
        match nodes.get_opt(&config.node_name).await {
            Ok(Some(n)) => {
                if let Some(cidr) = n.spec.and_then(|s| s.pod_cidr).filter(|c| !c.is_empty()) {
                    tracing::info!(node = %config.node_name, pod_cidr = %cidr, waited = ?started.elapsed(), "node has its pod CIDR");
                    return Ok(cidr);
                }
            }
            Ok(None) => anyhow::bail!(
                "node {} was deleted while waiting for its pod CIDR",
                config.node_name
            ),
            Err(e) => tracing::warn!(error = %e, "reading the node for its pod CIDR"),
        }
        if started.elapsed() >= config.pod_cidr_timeout {
            anyhow::bail!(
                "node {} got no spec.podCIDR within {:?}: is the controller manager (node IPAM, --cluster-cidr) running?",
                config.node_name,
                config.pod_cidr_timeout
            );
        }
        if said.elapsed() >= Duration::from_secs(10) {
            said = Instant::now();
            tracing::warn!(node = %config.node_name, waited = ?started.elapsed(), "still no spec.podCIDR: pods wait until the node IPAM controller (in the controller manager) assigns one");
        }
        tokio::select! {
            _ = cancel.cancelled() => anyhow::bail!("cancelled while waiting for the pod CIDR"),
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}

async fn renew_lease(
    client: &kube::Client,
    config: &KubeletConfig,
    node_uid: &str,
) -> anyhow::Result<()> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), LEASE_NAMESPACE);
    let now = MicroTime(jiff::Timestamp::now());
    match leases.get_opt(&config.node_name).await? {
        Some(_) => {
            let patch = json!({"spec": {"holderIdentity": config.node_name, "leaseDurationSeconds": LEASE_DURATION_SECS, "renewTime": now}});
            leases
                .patch(
                    &config.node_name,
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await?;
        }
        None => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(config.node_name.clone()),
                    namespace: Some(LEASE_NAMESPACE.into()),
                    owner_references: (!node_uid.is_empty()).then(|| {
                        vec![OwnerReference {
                            api_version: "v1".into(),
                            kind: "Node".into(),
                            name: config.node_name.clone(),
                            uid: node_uid.into(),
                            ..Default::default()
                        }]
                    }),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(config.node_name.clone()),
                    lease_duration_seconds: Some(LEASE_DURATION_SECS),
                    renew_time: Some(now),
                    ..Default::default()
                }),
            };
            leases.create(&PostParams::default(), &lease).await?;
        }
    }
    Ok(())
}

/// Renews the Lease and keeps the Node's status current until `cancel`.
pub(crate) async fn run(
    client: kube::Client,
    config: Arc<KubeletConfig>,
    runtime: Arc<dyn Runtime>,
    node_ip: IpAddr,
    version: cri_api::VersionResponse,
    cancel: CancellationToken,
) {
    let nodes: Api<Node> = Api::all(client.clone());
    let mut lease_tick = tokio::time::interval(config.lease_interval);
    let mut status_tick = tokio::time::interval(config.node_status_interval);
    let mut last_report: Option<(Instant, Vec<(String, String)>)> = None;
    let mut previous: Vec<NodeCondition> = Vec::new();
    let mut node_uid = String::new();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = lease_tick.tick() => {
                if node_uid.is_empty() {
                    if let Ok(Some(n)) = nodes.get_opt(&config.node_name).await {
                        node_uid = n.metadata.uid.unwrap_or_default();
                    }
                }
                if let Err(e) = renew_lease(&client, &config, &node_uid).await {
                    tracing::warn!("renewing the node lease: {e:#}");
                }
            }
            _ = status_tick.tick() => {
                let st = runtime_status(runtime.as_ref()).await;
                let conds = conditions(st.as_ref().map_err(Clone::clone), &config.data_dir, &previous);
                let summary: Vec<(String, String)> = conds.iter().map(|c| (c.type_.clone(), c.status.clone())).collect();
                let due = match &last_report {
                    None => true,
                    Some((at, s)) => *s != summary || at.elapsed() >= STATUS_REPORT_EVERY,
                };
                if due {
                    let patch = status_patch(&config, node_ip, &version, &conds);
                    match nodes.patch_status(&config.node_name, &PatchParams::default(), &Patch::Merge(&patch)).await {
                        Ok(_) => {
                            last_report = Some((Instant::now(), summary));
                            previous = conds;
                        }
                        Err(e) => tracing::warn!("updating node status: {e:#}"),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_follow_runtime_health() {
        let ok = cri_api::RuntimeStatus {
            conditions: vec![cri_api::RuntimeCondition {
                r#type: "RuntimeReady".into(),
                status: true,
                ..Default::default()
            }],
        };
        let c = conditions(Ok(&ok), Path::new("/"), &[]);
        let ready = c.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(ready.status, "True");
        assert_eq!(
            c.iter().find(|c| c.type_ == "PIDPressure").unwrap().status,
            "False"
        );
        let down = conditions(
            Err(RuntimeDown::Call("dial failed".into())),
            Path::new("/"),
            &c,
        );
        let ready2 = down.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(ready2.status, "False");
        assert_eq!(ready2.reason.as_deref(), Some("KubeletNotReady"));
    }

    #[test]
    fn capacity_has_the_four_resources() {
        let cap = capacity(Path::new("/"));
        for k in ["cpu", "memory", "ephemeral-storage", "pods"] {
            assert!(cap.contains_key(k), "{k}");
        }
        assert_eq!(cap["pods"].0, "110");
    }
}
