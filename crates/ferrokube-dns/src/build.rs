//! From Kubernetes objects to the zone: Services and their EndpointSlices
//! (by the `kubernetes.io/service-name` label) to `ServiceInfo` and
//! `EndpointInfo`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::zone::{EndpointInfo, ServiceInfo, Zone};

/// The label that ties an EndpointSlice to its Service.
pub(crate) const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// The zone for `domain` holding these Services and slices.
pub(crate) fn zone(domain: &str, services: &[Arc<Service>], slices: &[Arc<EndpointSlice>]) -> Zone {
    let mut by_service: HashMap<(String, String), Vec<EndpointInfo>> = HashMap::new();
    for slice in slices {
        let Some(ns) = slice.metadata.namespace.clone() else {
            continue;
        };
        let Some(svc) = slice
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(SERVICE_NAME_LABEL))
            .cloned()
        else {
            continue;
        };
        by_service
            .entry((ns, svc))
            .or_default()
            .extend(endpoints(slice));
    }
    let mut zone = Zone::new(domain);
    for svc in services {
        let Some(info) = service_info(svc) else {
            continue;
        };
        let eps = by_service
            .get(&(info.namespace.clone(), info.name.clone()))
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        zone.add_service(&info, eps);
    }
    zone
}

/// What the zone needs of a Service (None without a name or namespace).
pub(crate) fn service_info(svc: &Service) -> Option<ServiceInfo> {
    let namespace = svc.metadata.namespace.clone()?;
    let name = svc.metadata.name.clone()?;
    let spec = svc.spec.clone().unwrap_or_default();
    let headless = spec.cluster_ip.as_deref() == Some("None");
    let mut cluster_ips: Vec<IpAddr> = spec
        .cluster_ips
        .unwrap_or_default()
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
    if cluster_ips.is_empty() {
        cluster_ips.extend(
            spec.cluster_ip
                .as_deref()
                .and_then(|s| s.parse::<IpAddr>().ok()),
        );
    }
    let external_name = (spec.type_.as_deref() == Some("ExternalName"))
        .then_some(spec.external_name)
        .flatten();
    let ports = spec
        .ports
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| {
            let port = u16::try_from(p.port).ok()?;
            Some((
                p.name.unwrap_or_default(),
                p.protocol.unwrap_or_else(|| "TCP".into()),
                port,
            ))
        })
        .collect();
    Some(ServiceInfo {
        namespace,
        name,
        cluster_ips,
        headless,
        external_name,
        ports,
        publish_not_ready: spec.publish_not_ready_addresses.unwrap_or(false),
    })
}

/// The endpoints of one slice (a nil `ready` counts as ready, as the API
/// documents).
fn endpoints(slice: &EndpointSlice) -> Vec<EndpointInfo> {
    let ports: Vec<(String, String, u16)> = slice
        .ports
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| {
            let port = u16::try_from(p.port?).ok()?;
            Some((
                p.name.unwrap_or_default(),
                p.protocol.unwrap_or_else(|| "TCP".into()),
                port,
            ))
        })
        .collect();
    slice
        .endpoints
        .iter()
        .map(|e| EndpointInfo {
            addresses: e.addresses.iter().filter_map(|a| a.parse().ok()).collect(),
            hostname: e.hostname.clone(),
            ready: e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true),
            ports: ports.clone(),
        })
        .collect()
}
