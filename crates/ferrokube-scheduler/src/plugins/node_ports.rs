//! NodePorts: a pod's host ports must be free on the node.

use crate::cache::NodeInfo;
use crate::podinfo::PodInfo;

pub(crate) const REASON: &str = "node(s) didn't have free ports for the requested pod ports";

pub(crate) fn filter(pod: &PodInfo, node: &NodeInfo) -> Option<&'static str> {
    let clash = pod
        .host_ports
        .iter()
        .any(|p| node.used_ports.iter().any(|u| u.conflicts(p)));
    clash.then_some(REASON)
}

#[cfg(test)]
#[allow(
    clippy::option_map_unit_fn,
    reason = "the tests set fields of their test objects through Option::map"
)]
mod tests {
    use super::*;
    use crate::testutil::{node, pod};
    use k8s_openapi::api::core::v1::{ContainerPort, Pod};
    use std::sync::Arc;

    fn with_port(mut p: Pod, port: i32, ip: Option<&str>, proto: &str) -> Pod {
        p.spec.as_mut().map(|s| {
            s.containers[0].ports = Some(vec![ContainerPort {
                container_port: 80,
                host_port: Some(port),
                host_ip: ip.map(Into::into),
                protocol: Some(proto.into()),
                ..Default::default()
            }])
        });
        p
    }

    #[test]
    fn host_ports_clash_by_protocol_port_and_ip() {
        let mut n = NodeInfo::from_node(Arc::new(node("n1", "1", "1Gi")));
        n.add_pod(Arc::new(PodInfo::new(Arc::new(with_port(
            pod("d", "a", "", ""),
            8080,
            None,
            "TCP",
        )))));
        let same = PodInfo::new(Arc::new(with_port(
            pod("d", "b", "", ""),
            8080,
            Some("10.0.0.1"),
            "TCP",
        )));
        assert_eq!(
            filter(&same, &n),
            Some(REASON),
            "wildcard IP holds every address"
        );
        let udp = PodInfo::new(Arc::new(with_port(
            pod("d", "c", "", ""),
            8080,
            None,
            "UDP",
        )));
        assert_eq!(filter(&udp, &n), None);
        let other = PodInfo::new(Arc::new(with_port(
            pod("d", "e", "", ""),
            9090,
            None,
            "TCP",
        )));
        assert_eq!(filter(&other, &n), None);
    }
}
