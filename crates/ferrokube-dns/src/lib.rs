//! ferrokube's cluster DNS.
//!
//! An authoritative server for the cluster domain (`cluster.local` by
//! default) following Kubernetes' DNS specification: A/AAAA for ClusterIP
//! Services, the ready endpoints of headless Services, SRV for named ports,
//! CNAME for ExternalName Services, `a-b-c-d.<ns>.pod.<domain>` names and
//! PTR for the addresses it knows; NXDOMAIN for names of the domain that do
//! not exist. Everything else goes to the host's resolvers. Messages are
//! read and written with the hickory-dns protocol crate.
//!
//! The zone is rebuilt from Service and EndpointSlice informers whenever
//! they change (debounced), and swapped in whole, so a query never sees a
//! half-built zone.

mod build;
mod publish;
mod server;
mod zone;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::{reflector, watcher, WatchStreamExt};
use kube::Api;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use publish::publish;
pub use server::{query_packet, serve, Resolver};
pub use zone::{EndpointInfo, ServiceInfo, Zone};

/// How the DNS server is set up.
#[derive(Clone, Debug)]
pub struct DnsConfig {
    /// Where to listen (UDP and TCP), e.g. the node's address, port 53.
    pub listen: SocketAddr,
    /// The cluster domain.
    pub domain: String,
    /// Resolvers for names outside the domain; `None`: the host's
    /// (`/etc/resolv.conf`).
    pub upstreams: Option<Vec<SocketAddr>>,
}

/// A DNS server that is up.
pub struct RunningDns {
    /// Where it listens (the port is known even when 0 was asked).
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl RunningDns {
    /// Waits until the server has stopped (after its token is cancelled).
    pub async fn join(self) {
        let _ = self.task.await;
    }
}

/// Starts serving: listens now, then keeps the zone current from the
/// cluster until `cancel`.
pub async fn start(
    client: kube::Client,
    config: DnsConfig,
    cancel: CancellationToken,
) -> anyhow::Result<RunningDns> {
    let upstreams = match config.upstreams.clone() {
        Some(u) => u,
        None => host_resolvers(std::path::Path::new("/etc/resolv.conf"), config.listen),
    };
    let resolver = Arc::new(Resolver::new(Zone::new(&config.domain), upstreams));
    let addr = serve(resolver.clone(), config.listen, cancel.clone()).await?;
    tracing::info!(%addr, domain = %config.domain, "cluster DNS listening");

    let (services, services_writer) = reflector::store::<Service>();
    let (slices, slices_writer) = reflector::store::<EndpointSlice>();
    let changed = Arc::new(Notify::new());
    let svc_stream = reflector(
        services_writer,
        watcher(
            Api::<Service>::all(client.clone()),
            watcher::Config::default(),
        ),
    )
    .default_backoff()
    .touched_objects();
    let slice_stream = reflector(
        slices_writer,
        watcher(
            Api::<EndpointSlice>::all(client),
            watcher::Config::default(),
        ),
    )
    .default_backoff()
    .touched_objects();
    let task = {
        let resolver = resolver.clone();
        tokio::spawn(async move {
            let feed = {
                let changed = changed.clone();
                async move {
                    let mut svc_stream = std::pin::pin!(svc_stream);
                    let mut slice_stream = std::pin::pin!(slice_stream);
                    loop {
                        tokio::select! {
                            Some(_) = svc_stream.next() => changed.notify_one(),
                            Some(_) = slice_stream.next() => changed.notify_one(),
                            else => return,
                        }
                    }
                }
            };
            let rebuild = async {
                loop {
                    changed.notified().await;
                    // Let a burst of changes settle into one rebuild.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    let zone = build::zone(&config.domain, &services.state(), &slices.state());
                    resolver.set_zone(zone);
                }
            };
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = feed => {}
                _ = rebuild => {}
            }
        })
    };
    Ok(RunningDns { addr, task })
}

/// The host's resolvers from a resolv.conf, port 53, leaving out our own
/// listening address (forwarding to ourselves would loop).
fn host_resolvers(path: &std::path::Path, own: SocketAddr) -> Vec<SocketAddr> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some("nameserver"))
                .then(|| words.next())
                .flatten()
        })
        .filter_map(|s| s.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .filter(|a| *a != own)
        .collect()
}
