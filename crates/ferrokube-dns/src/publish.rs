//! The `kube-dns` Service that puts the DNS server behind the cluster DNS
//! address: a Service in kube-system with that cluster IP and no selector,
//! and an EndpointSlice (plus legacy Endpoints) pointing at the address the
//! server listens on, so pods reach it through the proxy like any Service.

use std::net::SocketAddr;

use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

const MANAGER: &str = "ferrokube-dns";

/// Creates or updates `kube-system/kube-dns` with cluster IP `cluster_dns`
/// and its endpoints at `listen`.
pub async fn publish(
    client: kube::Client,
    cluster_dns: std::net::IpAddr,
    listen: SocketAddr,
) -> anyhow::Result<()> {
    let params = PatchParams::apply(MANAGER).force();
    let port = listen.port();
    let labels = json!({"k8s-app": "kube-dns", "kubernetes.io/name": "ferrokube-dns"});
    let svc = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": labels},
        "spec": {
            "clusterIP": cluster_dns.to_string(),
            "ports": [
                {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": port},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": port}
            ]
        }
    });
    Api::<Service>::namespaced(client.clone(), "kube-system")
        .patch("kube-dns", &params, &Patch::Apply(&svc))
        .await?;
    let ip = listen.ip().to_string();
    let slice = json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {
            "name": "kube-dns-server", "namespace": "kube-system",
            "labels": {
                "kubernetes.io/service-name": "kube-dns",
                "endpointslice.kubernetes.io/managed-by": MANAGER
            }
        },
        "addressType": if listen.is_ipv4() { "IPv4" } else { "IPv6" },
        "endpoints": [{"addresses": [ip], "conditions": {"ready": true}}],
        "ports": [
            {"name": "dns", "port": port, "protocol": "UDP"},
            {"name": "dns-tcp", "port": port, "protocol": "TCP"}
        ]
    });
    Api::<EndpointSlice>::namespaced(client.clone(), "kube-system")
        .patch("kube-dns-server", &params, &Patch::Apply(&slice))
        .await?;
    let endpoints = json!({
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": labels},
        "subsets": [{
            "addresses": [{"ip": ip}],
            "ports": [
                {"name": "dns", "port": port, "protocol": "UDP"},
                {"name": "dns-tcp", "port": port, "protocol": "TCP"}
            ]
        }]
    });
    Api::<Endpoints>::namespaced(client, "kube-system")
        .patch("kube-dns", &params, &Patch::Apply(&endpoints))
        .await?;
    Ok(())
}
