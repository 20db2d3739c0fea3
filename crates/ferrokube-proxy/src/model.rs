//! What the proxy must program, from Services and EndpointSlices: one entry
//! per Service port that has a cluster IP, with the endpoints traffic may
//! go to.
//!
//! Endpoints are those whose `ready` condition is not false; when a Service
//! port has none, endpoints that are still `serving` while `terminating`
//! are used instead, so connections drain during a rollout as in
//! Kubernetes. Only IPv4 is programmed for now.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// The label that ties an EndpointSlice to its Service.
pub(crate) const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// A transport protocol, as nftables spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Proto {
    Tcp,
    Udp,
    Sctp,
}

impl Proto {
    pub(crate) fn parse(s: Option<&str>) -> Option<Proto> {
        match s.unwrap_or("TCP") {
            "TCP" => Some(Proto::Tcp),
            "UDP" => Some(Proto::Udp),
            "SCTP" => Some(Proto::Sctp),
            _ => None,
        }
    }

    pub(crate) fn nft(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
        }
    }
}

/// One endpoint of a Service port.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Endpoint {
    pub(crate) ip: Ipv4Addr,
    pub(crate) port: u16,
    /// On this proxy's node.
    pub(crate) local: bool,
}

/// One Service port to program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ServicePort {
    /// `namespace/name/protocol/port-name-or-number`: stable, unique.
    pub(crate) id: String,
    pub(crate) cluster_ips: Vec<Ipv4Addr>,
    pub(crate) protocol: Proto,
    pub(crate) port: u16,
    pub(crate) node_port: Option<u16>,
    /// A LoadBalancer's `status.loadBalancer.ingress` addresses (ServiceLB
    /// puts its nodes' there): traffic to them on `port` is the Service's,
    /// under its external traffic policy, as for its NodePort.
    pub(crate) load_balancer_ips: Vec<Ipv4Addr>,
    /// `sessionAffinity: ClientIP` timeout in seconds.
    pub(crate) affinity_timeout: Option<u32>,
    pub(crate) internal_local: bool,
    pub(crate) external_local: bool,
    pub(crate) endpoints: Vec<Endpoint>,
}

/// Every Service port to program, sorted by id.
pub(crate) fn plan(
    services: &[&Service],
    slices: &[&EndpointSlice],
    node: &str,
) -> Vec<ServicePort> {
    let mut by_service: HashMap<(String, String), Vec<&EndpointSlice>> = HashMap::new();
    for s in slices {
        if s.address_type != "IPv4" {
            continue;
        }
        let (Some(ns), Some(svc)) = (
            s.metadata.namespace.clone(),
            s.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(SERVICE_NAME_LABEL))
                .cloned(),
        ) else {
            continue;
        };
        by_service.entry((ns, svc)).or_default().push(s);
    }
    let mut out = Vec::new();
    for svc in services {
        let (Some(ns), Some(name)) = (svc.metadata.namespace.clone(), svc.metadata.name.clone())
        else {
            continue;
        };
        let Some(spec) = svc.spec.as_ref() else {
            continue;
        };
        if spec.type_.as_deref() == Some("ExternalName") {
            continue;
        }
        let mut ips: Vec<Ipv4Addr> = spec
            .cluster_ips
            .iter()
            .flatten()
            .filter_map(|s| s.parse().ok())
            .collect();
        if ips.is_empty() {
            ips.extend(
                spec.cluster_ip
                    .as_deref()
                    .and_then(|s| s.parse::<Ipv4Addr>().ok()),
            );
        }
        if ips.is_empty() {
            continue; // headless, or not allocated
        }
        let affinity_timeout = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
            spec.session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds)
                .and_then(|t| u32::try_from(t).ok())
                .filter(|t| *t > 0)
                .unwrap_or(10800)
        });
        let load_balancer_ips = load_balancer_ips(svc);
        let svc_slices = by_service
            .get(&(ns.clone(), name.clone()))
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        for p in spec.ports.iter().flatten() {
            let Some(protocol) = Proto::parse(p.protocol.as_deref()) else {
                continue;
            };
            let Ok(port) = u16::try_from(p.port) else {
                continue;
            };
            let port_name = p.name.clone().unwrap_or_default();
            let key = if port_name.is_empty() {
                port.to_string()
            } else {
                port_name.clone()
            };
            out.push(ServicePort {
                id: format!("{ns}/{name}/{}/{key}", protocol.nft()),
                cluster_ips: ips.clone(),
                protocol,
                port,
                node_port: p.node_port.and_then(|n| u16::try_from(n).ok()),
                load_balancer_ips: load_balancer_ips.clone(),
                affinity_timeout,
                internal_local: spec.internal_traffic_policy.as_deref() == Some("Local"),
                external_local: spec.external_traffic_policy.as_deref() == Some("Local"),
                endpoints: endpoints_for(svc_slices, &port_name, protocol, node),
            });
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

/// The IPv4 ingress addresses of a LoadBalancer Service (none for other
/// types: a status left over from an earlier type does not count).
fn load_balancer_ips(svc: &Service) -> Vec<Ipv4Addr> {
    if svc.spec.as_ref().and_then(|s| s.type_.as_deref()) != Some("LoadBalancer") {
        return Vec::new();
    }
    let mut ips: Vec<Ipv4Addr> = svc
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|i| i.ip.as_deref()?.parse().ok())
        .collect();
    ips.sort();
    ips.dedup();
    ips
}

/// The usable endpoints of the Service port named `port_name`.
fn endpoints_for(
    slices: &[&EndpointSlice],
    port_name: &str,
    protocol: Proto,
    node: &str,
) -> Vec<Endpoint> {
    let mut ready = Vec::new();
    let mut terminating = Vec::new();
    for s in slices {
        let Some(port) = s.ports.iter().flatten().find(|p| {
            p.name.as_deref().unwrap_or("") == port_name
                && Proto::parse(p.protocol.as_deref()) == Some(protocol)
        }) else {
            continue;
        };
        let Some(port) = port.port.and_then(|p| u16::try_from(p).ok()) else {
            continue;
        };
        for e in &s.endpoints {
            let c = e.conditions.clone().unwrap_or_default();
            let local = e.node_name.as_deref() == Some(node);
            let list = if c.ready.unwrap_or(true) {
                &mut ready
            } else if c.serving.unwrap_or(false) && c.terminating.unwrap_or(false) {
                &mut terminating
            } else {
                continue;
            };
            for a in &e.addresses {
                if let Ok(ip) = a.parse::<Ipv4Addr>() {
                    list.push(Endpoint { ip, port, local });
                }
            }
        }
    }
    let mut chosen = if ready.is_empty() { terminating } else { ready };
    chosen.sort();
    chosen.dedup();
    chosen
}
