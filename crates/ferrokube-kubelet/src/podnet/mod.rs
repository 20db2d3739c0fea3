//! The pod network between nodes (what flannel does for k3s): a keeper, an API client
//! watching the Nodes, that makes every other node's `spec.podCIDR` reachable from
//! this one's network namespace. With the `host-gw` backend (the default) that is a
//! route to each node's pod CIDR via its address, for nodes on one layer 2 network;
//! with `vxlan`, an overlay device (`flannel.1`, VNI 1, UDP 8472, as flannel's) and, per
//! node, a route, a neighbour entry and a forwarding entry to its VTEP. The node's own
//! backend, address and VTEP MAC are published as annotations on its Node under
//! flannel's names, which other nodes read.
//!
//! Only what the keeper made is touched: its routes carry their own protocol number
//! ([`ROUTE_PROTO`]); the neighbour and forwarding entries live on its own device. A
//! node that is gone loses its routes and entries on the next pass. Routes stay when
//! the agent stops (pods keep running and keep reaching each other); `ferrokube
//! killall` removes them.

pub(crate) mod routes;
pub mod vxlan;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Node;
use kube::api::Api;
use kube::runtime::{reflector, watcher, WatchStreamExt as _};
use tokio_util::sync::CancellationToken;

/// The routing protocol number of the keeper's routes (`ip route ... proto 151`): not
/// one of iproute2's named protocols, so nothing else on the machine uses it.
pub const ROUTE_PROTO: u8 = 151;

/// Annotation: the node's backend (`host-gw`, `vxlan`), flannel's name.
pub const ANNOTATION_BACKEND_TYPE: &str = "flannel.alpha.coreos.com/backend-type";
/// Annotation: the backend's data (`{"VNI":1,"VtepMAC":"…"}` with VXLAN).
pub const ANNOTATION_BACKEND_DATA: &str = "flannel.alpha.coreos.com/backend-data";
/// Annotation: the address other nodes send this node's pod traffic to.
pub const ANNOTATION_PUBLIC_IP: &str = "flannel.alpha.coreos.com/public-ip";
/// Annotation: the node's pod CIDR comes from `spec.podCIDR` (flannel's "kube subnet
/// manager"), always true here.
pub const ANNOTATION_KUBE_SUBNET_MANAGER: &str = "flannel.alpha.coreos.com/kube-subnet-manager";

/// How often the whole state is checked again even when no Node changed (a route
/// someone deleted comes back).
const RESYNC: Duration = Duration::from_secs(30);

/// The pod network backend between nodes (k3s' `--flannel-backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// Routes to each node's pod CIDR via its address (nodes share layer 2).
    #[default]
    HostGw,
    /// A VXLAN overlay (nodes need only reach each other over UDP 8472).
    Vxlan,
    /// Nothing: the user provides the network between nodes.
    None,
}

impl Backend {
    /// The flag's and the annotation's name of the backend.
    pub fn name(self) -> &'static str {
        match self {
            Backend::HostGw => "host-gw",
            Backend::Vxlan => "vxlan",
            Backend::None => "none",
        }
    }
}

/// A backend name that is none of `host-gw`, `vxlan`, `none`.
#[derive(Debug, thiserror::Error)]
#[error("unknown flannel backend {0:?}: use host-gw, vxlan or none")]
pub struct UnknownBackend(String);

impl std::str::FromStr for Backend {
    type Err = UnknownBackend;
    fn from_str(s: &str) -> Result<Backend, UnknownBackend> {
        match s {
            "host-gw" => Ok(Backend::HostGw),
            "vxlan" => Ok(Backend::Vxlan),
            "none" => Ok(Backend::None),
            other => Err(UnknownBackend(other.to_string())),
        }
    }
}

/// What the keeper runs with.
#[derive(Debug, Clone)]
pub struct PodNetConfig {
    /// The backend (`None` makes [`run`] return at once).
    pub backend: Backend,
    /// This node; `None` on a server without a node agent, which routes (host-gw
    /// only) to every node's pods so that the API server reaches them.
    pub node_name: Option<String>,
}

/// Another node as the keeper sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Peer {
    pub name: String,
    /// Its pod CIDR's network address and prefix length.
    pub pod_net: Ipv4Addr,
    pub pod_prefix: u8,
    /// Where its pod traffic goes: the public-ip annotation, else its InternalIP.
    pub ip: Ipv4Addr,
    /// Its VTEP's MAC, when it published one.
    pub vtep_mac: Option<String>,
}

impl Peer {
    /// `a.b.c.d/n`.
    pub(crate) fn cidr(&self) -> String {
        format!("{}/{}", self.pod_net, self.pod_prefix)
    }
}

/// Reads an IPv4 CIDR into its network address and prefix length.
pub(crate) fn parse_cidr(s: &str) -> Option<(Ipv4Addr, u8)> {
    let (ip, prefix) = s.split_once('/')?;
    let ip: Ipv4Addr = ip.parse().ok()?;
    let prefix: u8 = prefix.parse().ok().filter(|p| *p <= 32)?;
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    Some((Ipv4Addr::from(u32::from(ip) & mask), prefix))
}

fn annotation<'a>(node: &'a Node, key: &str) -> Option<&'a str> {
    node.metadata
        .annotations
        .as_ref()?
        .get(key)
        .map(String::as_str)
}

/// The node's InternalIP (IPv4).
pub(crate) fn internal_ip(node: &Node) -> Option<Ipv4Addr> {
    node.status
        .as_ref()?
        .addresses
        .as_ref()?
        .iter()
        .filter(|a| a.type_ == "InternalIP")
        .find_map(|a| a.address.parse().ok())
}

/// The VTEP MAC in the node's backend data, if its backend is VXLAN.
fn vtep_mac(node: &Node) -> Option<String> {
    if annotation(node, ANNOTATION_BACKEND_TYPE) != Some("vxlan") {
        return None;
    }
    let data: serde_json::Value =
        serde_json::from_str(annotation(node, ANNOTATION_BACKEND_DATA)?).ok()?;
    let mac = data.get("VtepMAC")?.as_str()?;
    vxlan::valid_mac(mac).then(|| mac.to_ascii_lowercase())
}

/// The node as a peer: it needs a pod CIDR and an address (nodes that lack one are
/// skipped until they have it).
pub(crate) fn peer(node: &Node) -> Option<Peer> {
    let name = node.metadata.name.clone()?;
    let cidr = node.spec.as_ref()?.pod_cidr.as_deref()?;
    let (pod_net, pod_prefix) = parse_cidr(cidr)?;
    let ip = annotation(node, ANNOTATION_PUBLIC_IP)
        .and_then(|ip| ip.parse().ok())
        .or_else(|| internal_ip(node))?;
    Some(Peer {
        name,
        pod_net,
        pod_prefix,
        ip,
        vtep_mac: vtep_mac(node),
    })
}

/// Every node but `me` that can be reached, by name; a node whose pod CIDR is `me`'s
/// is left out (a route to it would shadow the node's own bridge).
pub(crate) fn peers(nodes: &[Node], me: Option<&str>) -> Vec<Peer> {
    let own_cidr = me.and_then(|me| {
        nodes
            .iter()
            .find(|n| n.metadata.name.as_deref() == Some(me))
            .and_then(peer)
            .map(|p| p.cidr())
    });
    let mut peers: BTreeMap<String, Peer> = BTreeMap::new();
    for p in nodes.iter().filter_map(peer) {
        if Some(p.name.as_str()) == me || Some(p.cidr()) == own_cidr {
            continue;
        }
        peers.insert(p.name.clone(), p);
    }
    peers.into_values().collect()
}

/// This network namespace's IPv4 addresses: a peer at one of them shares the
/// machine's routing table (nodes in one namespace, as in tests) and needs no route.
async fn local_addresses() -> Vec<Ipv4Addr> {
    let Ok(json) = run_tool("ip", &["-j", "-4", "addr", "show"].map(String::from)).await else {
        return Vec::new();
    };
    let Ok(links) = serde_json::from_str::<Vec<serde_json::Value>>(&json) else {
        return Vec::new();
    };
    links
        .iter()
        .filter_map(|l| l.get("addr_info")?.as_array())
        .flatten()
        .filter_map(|a| a.get("local")?.as_str()?.parse().ok())
        .collect()
}

/// Runs `ip` (or `bridge`) with `args`; the error says which command failed and why.
pub(crate) async fn run_tool(tool: &str, args: &[String]) -> anyhow::Result<String> {
    let out = tokio::process::Command::new(tool)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| anyhow::anyhow!("running {tool}: {e}"))?;
    if !out.status.success() {
        anyhow::bail!(
            "{tool} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs each command (tool, args) of a plan, logging those that fail; returns how
/// many failed.
pub(crate) async fn apply(plan: &[(&'static str, Vec<String>)]) -> usize {
    let mut failed = 0;
    for (tool, args) in plan {
        match run_tool(tool, args).await {
            Ok(_) => {
                tracing::debug!(command = %format!("{tool} {}", args.join(" ")), "pod network")
            }
            Err(e) => {
                failed += 1;
                tracing::warn!(error = %e, "pod network: a command failed (retried on the next pass)");
            }
        }
    }
    failed
}

/// Keeps the pod network between nodes until `cancel`: watches the Nodes and, on each
/// change and every 30 s, brings the routes (and the VXLAN entries) in line with them.
pub async fn run(client: kube::Client, config: PodNetConfig, cancel: CancellationToken) {
    if config.backend == Backend::None {
        tracing::info!("pod network between nodes left to the user (--flannel-backend=none)");
        return;
    }
    if config.node_name.is_none() && config.backend == Backend::Vxlan {
        tracing::info!(
            "no node agent here: the VXLAN overlay needs one, so this host keeps no routes to pods"
        );
        return;
    }
    let api: Api<Node> = Api::all(client.clone());
    let (store, writer) = reflector::store();
    let mut events = std::pin::pin!(
        reflector(writer, watcher(api, watcher::Config::default())).default_backoff()
    );
    let mut keeper = Keeper::new(client, config);
    let mut tick = tokio::time::interval(RESYNC);
    let mut ready = false;
    tracing::info!(
        backend = keeper.config.backend.name(),
        "keeping the pod network between nodes"
    );
    let mut last = Vec::new();
    loop {
        let resync = tokio::select! {
            _ = cancel.cancelled() => return,
            ev = events.next() => match ev {
                Some(Ok(watcher::Event::Init | watcher::Event::InitApply(_))) => continue,
                Some(Ok(_)) => { ready = true; false }
                Some(Err(e)) => { tracing::debug!(error = %e, "watching nodes"); continue; }
                None => return,
            },
            _ = tick.tick() => true,
        };
        if !ready {
            continue;
        }
        let nodes: Vec<Node> = store.state().iter().map(|n| (**n).clone()).collect();
        // Nodes change every few seconds (their status); a pass runs only when what
        // the network depends on changed, or on the periodic resync.
        let now = network_view(&nodes);
        if !resync && now == last {
            continue;
        }
        keeper.sync(&nodes).await;
        last = now;
    }
}

/// A node's name, pod CIDR, InternalIP and flannel annotations.
type NodeView = (String, Option<String>, Option<Ipv4Addr>, Vec<String>);

/// What of `nodes` the pod network depends on: names, pod CIDRs, addresses and the
/// backend annotations, in a stable order.
fn network_view(nodes: &[Node]) -> Vec<NodeView> {
    let mut view: Vec<_> = nodes
        .iter()
        .map(|n| {
            let flannel: Vec<String> = [
                ANNOTATION_BACKEND_TYPE,
                ANNOTATION_BACKEND_DATA,
                ANNOTATION_PUBLIC_IP,
                ANNOTATION_KUBE_SUBNET_MANAGER,
            ]
            .iter()
            .map(|k| annotation(n, k).unwrap_or_default().to_string())
            .collect();
            (
                n.metadata.name.clone().unwrap_or_default(),
                n.spec.as_ref().and_then(|s| s.pod_cidr.clone()),
                internal_ip(n),
                flannel,
            )
        })
        .collect();
    view.sort();
    view
}

/// The keeper's state between passes.
struct Keeper {
    client: kube::Client,
    config: PodNetConfig,
    /// This node's VXLAN device once made.
    vtep: Option<vxlan::Vtep>,
}

impl Keeper {
    fn new(client: kube::Client, config: PodNetConfig) -> Keeper {
        Keeper {
            client,
            config,
            vtep: None,
        }
    }

    /// One pass over `nodes`.
    async fn sync(&mut self, nodes: &[Node]) {
        let me = self.config.node_name.clone();
        let own = me.as_deref().and_then(|me| {
            nodes
                .iter()
                .find(|n| n.metadata.name.as_deref() == Some(me))
        });
        if let Some(own) = own {
            self.publish(own).await;
        }
        if self.config.backend == Backend::Vxlan && self.vtep.is_none() {
            return; // routes wait for the device
        }
        if let Err(e) = sync_nodes(
            self.config.backend,
            me.as_deref(),
            nodes,
            self.vtep.as_ref(),
        )
        .await
        {
            tracing::warn!(error = format!("{e:#}"), "pod network");
        }
    }

    /// Makes (or checks) this node's VXLAN device and publishes the node's backend
    /// annotations when they differ from what the Node carries.
    async fn publish(&mut self, own: &Node) {
        let (Some(name), Some(ip)) = (own.metadata.name.as_deref(), internal_ip(own)) else {
            return; // no address yet
        };
        if own
            .spec
            .as_ref()
            .and_then(|s| s.pod_cidr.as_ref())
            .is_none()
        {
            return;
        }
        if self.config.backend == Backend::Vxlan {
            match ensure_vtep(own).await {
                Ok(v) => self.vtep = Some(v),
                Err(e) => {
                    tracing::warn!(
                        error = format!("{e:#}"),
                        "pod network: making the VXLAN device"
                    );
                    return;
                }
            }
        }
        let want = annotations(self.config.backend, ip, self.vtep.as_ref());
        let have = own.metadata.annotations.clone().unwrap_or_default();
        if want.iter().all(|(k, v)| have.get(k) == Some(v)) {
            return;
        }
        let patch = serde_json::json!({"metadata": {"annotations": want}});
        let nodes: Api<Node> = Api::all(self.client.clone());
        if let Err(e) = nodes
            .patch(
                name,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(&patch),
            )
            .await
        {
            tracing::warn!(error = %e, "pod network: publishing the node's backend annotations");
        }
    }
}

/// Makes (or keeps, when it fits) the VXLAN device of the node `own`: at its
/// InternalIP, addressed with its pod CIDR's network address.
pub async fn ensure_vtep(own: &Node) -> anyhow::Result<vxlan::Vtep> {
    let ip = internal_ip(own).ok_or_else(|| anyhow::anyhow!("the node has no IPv4 InternalIP"))?;
    let (net, _) = own
        .spec
        .as_ref()
        .and_then(|s| s.pod_cidr.as_deref())
        .and_then(parse_cidr)
        .ok_or_else(|| anyhow::anyhow!("the node has no IPv4 spec.podCIDR"))?;
    vxlan::ensure_device(ip, net).await
}

/// Brings this machine's routes (and, with VXLAN, the entries of `vtep`) in line with
/// `nodes`, as seen from the node `me` (`None`: a host with no node, host-gw only).
pub async fn sync_nodes(
    backend: Backend,
    me: Option<&str>,
    nodes: &[Node],
    vtep: Option<&vxlan::Vtep>,
) -> anyhow::Result<()> {
    let local = local_addresses().await;
    let peers: Vec<Peer> = peers(nodes, me)
        .into_iter()
        .filter(|p| !local.contains(&p.ip))
        .collect();
    let desired = match (backend, vtep) {
        (Backend::HostGw, _) => routes::host_gw(&peers),
        (Backend::Vxlan, Some(vtep)) => {
            let peers: Vec<Peer> = peers.into_iter().filter(|p| p.vtep_mac.is_some()).collect();
            vxlan::sync_entries(vtep, &peers).await?;
            routes::vxlan(&peers, &vtep.name)
        }
        (Backend::Vxlan, None) => anyhow::bail!("VXLAN routes need this node's device"),
        (Backend::None, _) => return Ok(()),
    };
    routes::sync(&desired).await
}

/// The annotations a node publishes for `backend`.
pub(crate) fn annotations(
    backend: Backend,
    ip: Ipv4Addr,
    vtep: Option<&vxlan::Vtep>,
) -> BTreeMap<String, String> {
    let data = match vtep {
        Some(v) => serde_json::json!({"VNI": vxlan::VNI, "VtepMAC": v.mac}).to_string(),
        None => "null".to_string(),
    };
    [
        (ANNOTATION_BACKEND_TYPE, backend.name().to_string()),
        (ANNOTATION_BACKEND_DATA, data),
        (ANNOTATION_PUBLIC_IP, ip.to_string()),
        (ANNOTATION_KUBE_SUBNET_MANAGER, "true".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Removes what the keeper made on this machine: its routes and the VXLAN device (with
/// its entries). Returns the names of what was removed. For `ferrokube killall`.
pub fn remove_all() -> Vec<String> {
    let mut removed = Vec::new();
    let ip = |args: &[&str]| std::process::Command::new("ip").args(args).output().ok();
    let proto = ROUTE_PROTO.to_string();
    if let Some(out) = ip(&["-j", "route", "show", "proto", &proto]) {
        let n = routes::parse_routes(&String::from_utf8_lossy(&out.stdout)).len();
        if n > 0 {
            let _ = ip(&["route", "flush", "proto", &proto]);
            removed.push(format!("{n} pod network route(s) (proto {proto})"));
        }
    }
    if ip(&["link", "show", vxlan::DEVICE]).is_some_and(|o| o.status.success()) {
        let _ = ip(&["link", "del", vxlan::DEVICE]);
        removed.push(vxlan::DEVICE.to_string());
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, cidr: Option<&str>, ip: &str, ann: &[(&str, &str)]) -> Node {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "annotations": ann.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>()},
            "spec": {"podCIDR": cidr},
            "status": {"addresses": [{"type": "Hostname", "address": name}, {"type": "InternalIP", "address": ip}]}
        }))
        .unwrap()
    }

    #[test]
    fn backends_parse_by_k3s_names() {
        assert_eq!("host-gw".parse::<Backend>().unwrap(), Backend::HostGw);
        assert_eq!("vxlan".parse::<Backend>().unwrap(), Backend::Vxlan);
        assert_eq!("none".parse::<Backend>().unwrap(), Backend::None);
        let e = "wireguard".parse::<Backend>().unwrap_err().to_string();
        assert!(e.contains("wireguard") && e.contains("host-gw"), "{e}");
    }

    #[test]
    fn peers_are_other_nodes_with_a_cidr_and_an_address() {
        let nodes = vec![
            node("a", Some("10.42.0.0/24"), "10.0.0.1", &[]),
            node("b", Some("10.42.1.0/24"), "10.0.0.2", &[]),
            node("c", None, "10.0.0.3", &[]),
            node(
                "d",
                Some("10.42.2.0/24"),
                "10.0.0.4",
                &[(ANNOTATION_PUBLIC_IP, "192.0.2.4")],
            ),
            node("e", Some("10.42.0.0/24"), "10.0.0.5", &[]),
        ];
        let p = peers(&nodes, Some("a"));
        let names: Vec<&str> = p.iter().map(|p| p.name.as_str()).collect();
        // c has no pod CIDR yet; e claims a's own range and would shadow its bridge.
        assert_eq!(names, ["b", "d"]);
        assert_eq!(p[0].ip, Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(p[0].cidr(), "10.42.1.0/24");
        // The public-ip annotation wins over the InternalIP.
        assert_eq!(p[1].ip, Ipv4Addr::new(192, 0, 2, 4));
        // No node of its own (a server without an agent): every node.
        assert_eq!(peers(&nodes, None).len(), 4);
    }

    #[test]
    fn vtep_mac_is_read_only_from_vxlan_nodes() {
        let data = r#"{"VNI":1,"VtepMAC":"2E:F7:D3:70:96:48"}"#;
        let v = node(
            "v",
            Some("10.42.1.0/24"),
            "10.0.0.2",
            &[
                (ANNOTATION_BACKEND_TYPE, "vxlan"),
                (ANNOTATION_BACKEND_DATA, data),
            ],
        );
        assert_eq!(
            peer(&v).unwrap().vtep_mac.as_deref(),
            Some("2e:f7:d3:70:96:48")
        );
        let h = node(
            "h",
            Some("10.42.1.0/24"),
            "10.0.0.2",
            &[
                (ANNOTATION_BACKEND_TYPE, "host-gw"),
                (ANNOTATION_BACKEND_DATA, data),
            ],
        );
        assert_eq!(peer(&h).unwrap().vtep_mac, None);
        let bad = node(
            "b",
            Some("10.42.1.0/24"),
            "10.0.0.2",
            &[
                (ANNOTATION_BACKEND_TYPE, "vxlan"),
                (ANNOTATION_BACKEND_DATA, r#"{"VtepMAC":"x; rm"}"#),
            ],
        );
        assert_eq!(peer(&bad).unwrap().vtep_mac, None);
    }

    #[test]
    fn annotations_use_flannels_names() {
        let a = annotations(Backend::HostGw, Ipv4Addr::new(10, 0, 0, 1), None);
        assert_eq!(a[ANNOTATION_BACKEND_TYPE], "host-gw");
        assert_eq!(a[ANNOTATION_PUBLIC_IP], "10.0.0.1");
        assert_eq!(a[ANNOTATION_KUBE_SUBNET_MANAGER], "true");
        let vtep = vxlan::Vtep {
            name: vxlan::DEVICE.into(),
            mac: "aa:bb:cc:dd:ee:ff".into(),
        };
        let a = annotations(Backend::Vxlan, Ipv4Addr::new(10, 0, 0, 1), Some(&vtep));
        assert_eq!(
            a[ANNOTATION_BACKEND_DATA],
            r#"{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:ff"}"#
        );
    }

    #[test]
    fn a_status_change_is_no_network_change() {
        let a = node("a", Some("10.42.0.0/24"), "10.0.0.1", &[]);
        let mut b = a.clone();
        b.status.as_mut().unwrap().conditions = Some(Vec::new());
        assert_eq!(network_view(std::slice::from_ref(&a)), network_view(&[b]));
        let moved = node("a", Some("10.42.0.0/24"), "10.0.0.9", &[]);
        assert_ne!(network_view(&[a]), network_view(&[moved]));
    }

    #[test]
    fn cidrs_are_normalised() {
        assert_eq!(
            parse_cidr("10.42.1.7/24"),
            Some((Ipv4Addr::new(10, 42, 1, 0), 24))
        );
        assert_eq!(parse_cidr("10.42.1.0/33"), None);
        assert_eq!(parse_cidr("fd00::/64"), None);
    }
}
