//! The kubelet's admission of a pod's sysctls, as Kubernetes' sysctl allowlist
//! admits them: the safe set every node allows plus the node's allowed unsafe
//! sysctls (names, or prefixes ending in `*`); a namespaced sysctl is refused
//! when the pod shares that namespace with the host. A refused pod fails with
//! reason `SysctlForbidden`.

use k8s_openapi::api::core::v1::Pod;

/// The reason of a pod refused for its sysctls.
pub(crate) const FORBIDDEN_REASON: &str = "SysctlForbidden";

/// Sysctls every node allows (Kubernetes' safe set).
const SAFE: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
];

use ferrokube_api::sysctl::{namespace as namespace_of, normalize};

/// Why one sysctl is not allowed on this node, in Kubernetes' words.
fn refusal(
    name: &str,
    unsafe_allowed: &[String],
    host_net: bool,
    host_ipc: bool,
) -> Option<String> {
    let name = normalize(name);
    let allowed = SAFE.contains(&name.as_str())
        || unsafe_allowed.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => name.starts_with(&normalize(prefix)),
            None => normalize(p) == name,
        });
    if !allowed {
        return Some(format!("{name:?} not allowlisted"));
    }
    match namespace_of(&name) {
        Some(ns @ "ipc") if host_ipc => {
            Some(format!("{name:?} not allowed with host {ns} enabled"))
        }
        Some(ns @ "net") if host_net => {
            Some(format!("{name:?} not allowed with host {ns} enabled"))
        }
        _ => None,
    }
}

/// The message a refused pod gets (`forbidden sysctl: ...`), or None if every
/// sysctl it asks for is allowed.
pub(crate) fn admit(pod: &Pod, unsafe_allowed: &[String]) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    let sysctls = spec.security_context.as_ref()?.sysctls.as_ref()?;
    let host_net = spec.host_network.unwrap_or(false);
    let host_ipc = spec.host_ipc.unwrap_or(false);
    sysctls.iter().find_map(|s| {
        refusal(&s.name, unsafe_allowed, host_net, host_ipc)
            .map(|why| format!("forbidden sysctl: {why}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(sysctls: &[&str], host_net: bool) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [], "hostNetwork": host_net, "securityContext": {"sysctls":
                sysctls.iter().map(|n| serde_json::json!({"name": n, "value": "1"})).collect::<Vec<_>>()}}
        }))
        .unwrap()
    }

    #[test]
    fn safe_sysctls_pass_and_unsafe_ones_need_the_node() {
        assert_eq!(
            admit(
                &pod(
                    &["kernel.shm_rmid_forced", "net/ipv4/tcp_syncookies"],
                    false
                ),
                &[]
            ),
            None
        );
        assert_eq!(
            admit(&pod(&["net.core.somaxconn"], false), &[]).as_deref(),
            Some("forbidden sysctl: \"net.core.somaxconn\" not allowlisted")
        );
        assert_eq!(
            admit(&pod(&["net.core.somaxconn"], false), &["net.core.*".into()]),
            None
        );
        assert_eq!(
            admit(&pod(&["kernel.msgmax"], false), &["kernel.msgmax".into()]),
            None
        );
        assert_eq!(
            admit(&pod(&["net.ipv4.tcp_syncookies"], true), &[]).as_deref(),
            Some("forbidden sysctl: \"net.ipv4.tcp_syncookies\" not allowed with host net enabled")
        );
    }
}
