//! Ephemeral containers (`kubectl debug`): added to a running pod through the
//! `pods/ephemeralcontainers` subresource, started once in the pod's sandbox
//! (even before its init containers finish), never restarted, and reported in
//! `status.ephemeralContainerStatuses` (never ready). One with a
//! `targetContainerName` joins that container's process namespace, so it sees
//! and can signal its processes.

use k8s_openapi::api::core::v1::{Container, EphemeralContainer, Pod};

use crate::cri::api;

/// The pod's ephemeral containers as containers, with their targets.
pub(crate) fn of(pod: &Pod) -> Vec<(Container, Option<String>)> {
    pod.spec
        .as_ref()
        .and_then(|s| s.ephemeral_containers.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|ec| {
            let target = ec.target_container_name.clone().filter(|t| !t.is_empty());
            as_container(ec).map(|c| (c, target))
        })
        .collect()
}

/// The fields an ephemeral container shares with a container.
fn as_container(ec: &EphemeralContainer) -> Option<Container> {
    let mut v = serde_json::to_value(ec).ok()?;
    if let Some(m) = v.as_object_mut() {
        m.remove("targetContainerName");
    }
    serde_json::from_value(v).ok()
}

/// Makes the container join the process namespace of container `target_id`.
pub(crate) fn share_pid_with(cfg: &mut api::ContainerConfig, target_id: &str) {
    let linux = cfg.linux.get_or_insert_with(Default::default);
    let sc = linux.security_context.get_or_insert_with(Default::default);
    let ns = sc.namespace_options.get_or_insert_with(Default::default);
    ns.pid = api::NamespaceMode::Target as i32;
    ns.target_id = target_id.to_string();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ephemeral_containers_run_as_containers_with_their_target() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "app", "image": "i"}], "ephemeralContainers": [
                {"name": "dbg", "image": "busybox:1.35", "stdin": true, "tty": true, "targetContainerName": "app"},
                {"name": "plain", "image": "busybox:1.35"}
            ]}
        }))
        .unwrap();
        let list = of(&pod);
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].0.name, "dbg");
        assert_eq!(list[0].0.stdin, Some(true));
        assert_eq!(list[0].1.as_deref(), Some("app"));
        assert_eq!(list[1].1, None);
        let mut cfg = api::ContainerConfig::default();
        share_pid_with(&mut cfg, "abc");
        let ns = cfg
            .linux
            .unwrap()
            .security_context
            .unwrap()
            .namespace_options
            .unwrap();
        assert_eq!(ns.pid, api::NamespaceMode::Target as i32);
        assert_eq!(ns.target_id, "abc");
    }
}
