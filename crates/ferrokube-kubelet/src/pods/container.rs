//! A container's CRI configuration from its spec: image, command and args (with
//! `$(VAR)` expansion), env, working dir, TTY/stdin, log path, labels, and the Linux
//! resources (limits → quota and memory limit, requests → shares) and security
//! context (user, group, privileged, capabilities, read-only root, no_new_privs).

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{Container, Pod};

use super::sandbox::{container_namespace_options, pod_labels};
use crate::cri::{api, labels};
use crate::quantity;

/// CPU period the quota is counted in (100 ms, as Kubernetes).
const CPU_PERIOD: i64 = 100_000;

/// Paths hidden from unprivileged containers (the OCI runtime defaults Kubernetes passes).
const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Linux resources from the container's requests and limits.
pub(crate) fn resources(c: &Container) -> api::LinuxContainerResources {
    let res = c.resources.as_ref();
    let get = |m: Option<&BTreeMap<String, quantity::Quantity>>, k: &str| {
        m.and_then(|m| m.get(k)).and_then(quantity::milli_value)
    };
    let limits = res.and_then(|r| r.limits.as_ref());
    // Requests default to limits when only limits are given.
    let req_cpu = get(res.and_then(|r| r.requests.as_ref()), "cpu").or(get(limits, "cpu"));
    let mut out = api::LinuxContainerResources {
        // Kubernetes: shares = milliCPU * 1024 / 1000, at least 2.
        cpu_shares: req_cpu
            .map(|m| ((m * 1024) / 1000).max(2) as i64)
            .unwrap_or(2),
        ..Default::default()
    };
    if let Some(m) = get(limits, "cpu") {
        out.cpu_period = CPU_PERIOD;
        out.cpu_quota = ((m * CPU_PERIOD as i128) / 1000).max(1000) as i64;
    }
    if let Some(m) = get(limits, "memory") {
        out.memory_limit_in_bytes = ((m + 999) / 1000) as i64;
    }
    out
}

fn user_and_group(pod: &Pod, c: &Container) -> (Option<i64>, Option<i64>, bool) {
    let psc = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
    let csc = c.security_context.as_ref();
    let user = csc
        .and_then(|s| s.run_as_user)
        .or(psc.and_then(|s| s.run_as_user));
    let group = csc
        .and_then(|s| s.run_as_group)
        .or(psc.and_then(|s| s.run_as_group));
    let non_root = csc
        .and_then(|s| s.run_as_non_root)
        .or(psc.and_then(|s| s.run_as_non_root))
        .unwrap_or(false);
    (user, group, non_root)
}

/// Everything the config needs besides the spec.
pub(crate) struct ContainerInputs<'a> {
    pub pod: &'a Pod,
    pub container: &'a Container,
    pub attempt: u32,
    pub init: bool,
    pub env: Vec<(String, String)>,
    /// The image reference to run (as resolved by the image service).
    pub image: String,
    /// The container's volume mounts.
    pub mounts: Vec<api::Mount>,
}

/// The CRI config for one container attempt.
pub(crate) fn container_config(i: &ContainerInputs<'_>) -> api::ContainerConfig {
    let c = i.container;
    let vars: BTreeMap<String, String> = i.env.iter().cloned().collect();
    let expand_all = |v: &Option<Vec<String>>| -> Vec<String> {
        v.iter()
            .flatten()
            .map(|s| super::env::expand(s, &vars))
            .collect()
    };
    let mut labels: HashMap<String, String> = pod_labels(i.pod);
    labels.insert(labels::CONTAINER_NAME.into(), c.name.clone());
    let mut annotations = HashMap::from([
        (labels::RESTART_COUNT.to_string(), i.attempt.to_string()),
        (
            labels::CONTAINER_KIND.to_string(),
            if i.init { "init" } else { "regular" }.to_string(),
        ),
    ]);
    if let Some(g) = i
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.termination_grace_period_seconds)
    {
        annotations.insert(
            "io.kubernetes.pod.terminationGracePeriod".into(),
            g.to_string(),
        );
    }
    let sc = c.security_context.clone().unwrap_or_default();
    let privileged = sc.privileged.unwrap_or(false);
    let (user, group, _) = user_and_group(i.pod, c);
    let caps = sc.capabilities.clone().unwrap_or_default();
    let psc = i
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.security_context.clone())
        .unwrap_or_default();
    api::ContainerConfig {
        metadata: Some(api::ContainerMetadata {
            name: c.name.clone(),
            attempt: i.attempt,
        }),
        image: Some(api::ImageSpec {
            image: i.image.clone(),
            user_specified_image: c.image.clone().unwrap_or_default(),
            ..Default::default()
        }),
        command: expand_all(&c.command),
        args: expand_all(&c.args),
        working_dir: c.working_dir.clone().unwrap_or_default(),
        mounts: i.mounts.clone(),
        envs: i
            .env
            .iter()
            .map(|(k, v)| api::KeyValue {
                key: k.clone(),
                value: v.clone(),
            })
            .collect(),
        labels,
        annotations,
        log_path: format!("{}/{}.log", c.name, i.attempt),
        stdin: c.stdin.unwrap_or(false),
        stdin_once: c.stdin_once.unwrap_or(false),
        tty: c.tty.unwrap_or(false),
        linux: Some(api::LinuxContainerConfig {
            resources: Some(resources(c)),
            security_context: Some(api::LinuxContainerSecurityContext {
                capabilities: Some(api::Capability {
                    add_capabilities: caps.add.unwrap_or_default(),
                    drop_capabilities: caps.drop.unwrap_or_default(),
                    ..Default::default()
                }),
                privileged,
                namespace_options: Some(container_namespace_options(i.pod)),
                run_as_user: user.map(|v| api::Int64Value { value: v }),
                run_as_group: group.map(|v| api::Int64Value { value: v }),
                // runAsNonRoot without a user: let the runtime refuse a root image user.
                run_as_username: String::new(),
                readonly_rootfs: sc.read_only_root_filesystem.unwrap_or(false),
                supplemental_groups: super::sandbox::supplemental_groups(&psc),
                no_new_privs: !privileged && sc.allow_privilege_escalation == Some(false),
                masked_paths: if privileged {
                    vec![]
                } else {
                    MASKED_PATHS.iter().map(|s| s.to_string()).collect()
                },
                readonly_paths: if privileged {
                    vec![]
                } else {
                    READONLY_PATHS.iter().map(|s| s.to_string()).collect()
                },
                ..Default::default()
            }),
        }),
        ..Default::default()
    }
}

/// runAsNonRoot with runAsUser 0 is refused before creating (Kubernetes'
/// CreateContainerConfigError).
pub(crate) fn violates_non_root(pod: &Pod, c: &Container) -> Option<String> {
    let (user, _, non_root) = user_and_group(pod, c);
    (non_root && user == Some(0))
        .then(|| "container's runAsUser breaks non-root policy".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_become_quota_and_memory() {
        let c: Container = serde_json::from_value(serde_json::json!({
            "name": "c",
            "resources": {"limits": {"cpu": "500m", "memory": "64Mi"}, "requests": {"cpu": "250m"}}
        }))
        .unwrap();
        let r = resources(&c);
        assert_eq!(r.cpu_period, 100_000);
        assert_eq!(r.cpu_quota, 50_000);
        assert_eq!(r.cpu_shares, 256);
        assert_eq!(r.memory_limit_in_bytes, 64 << 20);
    }

    #[test]
    fn config_expands_args_and_labels_the_container() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u"},
            "spec": {"containers": [{"name": "c", "image": "busybox", "args": ["echo", "$(GREETING)"]}]}
        }))
        .unwrap();
        let c = pod.spec.as_ref().unwrap().containers[0].clone();
        let cfg = container_config(&ContainerInputs {
            pod: &pod,
            container: &c,
            attempt: 2,
            init: false,
            env: vec![("GREETING".into(), "hi".into())],
            image: "busybox".into(),
            mounts: vec![],
        });
        assert_eq!(cfg.args, vec!["echo", "hi"]);
        assert_eq!(cfg.labels[labels::CONTAINER_NAME], "c");
        assert_eq!(cfg.labels[labels::POD_UID], "u");
        assert_eq!(cfg.metadata.unwrap().attempt, 2);
        assert_eq!(cfg.log_path, "c/2.log");
    }
}
