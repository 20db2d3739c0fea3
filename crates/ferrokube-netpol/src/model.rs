//! What the NetworkPolicies of the cluster mean for the pods of one node,
//! as Kubernetes defines it (`networking.k8s.io/v1`):
//!
//! - a pod is isolated for ingress (egress) when some policy of its
//!   namespace selects it (`spec.podSelector`) and has that policy type;
//!   `policyTypes` left empty means Ingress, plus Egress when the policy
//!   has egress rules;
//! - an isolated pod takes (sends) only what some rule of some policy that
//!   selects it allows: a rule allows its peers (all when `from`/`to` is
//!   empty) on its ports (all when `ports` is empty);
//! - a peer is a `podSelector` (pods of the policy's namespace), a
//!   `namespaceSelector` (every pod of those namespaces), both (those pods
//!   of those namespaces), or an `ipBlock` (a CIDR less its `except`s);
//! - a port is a protocol (TCP by default), a number (with `endPort`, a
//!   range) or a name, which is the named container port of the pod the
//!   traffic goes to (the selected pod for ingress, the peer for egress).
//!
//! Pods on the host network and pods without an IP are neither selected nor
//! peers (Kubernetes leaves them undefined; kube-router skips them too).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use ferrokube_api::labels::Selector;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// A pod as policies see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodInfo {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its IPv4 address.
    pub ip: Ipv4Addr,
    /// The node it runs on.
    pub node: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its containers' named ports: (name, protocol, number).
    pub named_ports: Vec<(String, Protocol, u16)>,
}

/// A transport protocol a policy port names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// TCP (the default).
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl Protocol {
    /// From the API's name; `None` (unset) is TCP, as Kubernetes defaults it.
    pub fn parse(s: Option<&str>) -> Option<Protocol> {
        match s.unwrap_or("TCP") {
            "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            "SCTP" => Some(Protocol::Sctp),
            _ => None,
        }
    }

    /// nft's name for it.
    pub fn nft(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

impl PodInfo {
    /// The pod as policies see it, or `None` for a pod no policy applies
    /// to: on the host network, without an IPv4 address or a node, or done
    /// (Succeeded, Failed).
    pub fn from_pod(pod: &Pod) -> Option<PodInfo> {
        let spec = pod.spec.as_ref()?;
        let status = pod.status.as_ref()?;
        if spec.host_network == Some(true) {
            return None;
        }
        if matches!(status.phase.as_deref(), Some("Succeeded" | "Failed")) {
            return None;
        }
        let ip: Ipv4Addr = status.pod_ip.as_deref()?.parse().ok()?;
        let mut named_ports = Vec::new();
        for c in &spec.containers {
            for p in c.ports.iter().flatten() {
                let (Some(name), Ok(number)) = (&p.name, u16::try_from(p.container_port)) else {
                    continue;
                };
                if let Some(proto) = Protocol::parse(p.protocol.as_deref()) {
                    named_ports.push((name.clone(), proto, number));
                }
            }
        }
        Some(PodInfo {
            namespace: pod.metadata.namespace.clone()?,
            name: pod.metadata.name.clone()?,
            ip,
            node: spec.node_name.clone()?,
            labels: pod.metadata.labels.clone().unwrap_or_default(),
            named_ports,
        })
    }

    /// The number of its container port `name` for `proto`.
    fn named_port(&self, name: &str, proto: Protocol) -> Option<u16> {
        self.named_ports
            .iter()
            .find(|(n, p, _)| n == name && *p == proto)
            .map(|(_, _, num)| *num)
    }
}

/// The labels of every namespace, by name.
pub type NamespaceLabels = BTreeMap<String, BTreeMap<String, String>>;

/// The namespaces' labels from the API objects.
pub fn namespace_labels<'a>(
    namespaces: impl IntoIterator<Item = &'a Namespace>,
) -> NamespaceLabels {
    namespaces
        .into_iter()
        .filter_map(|n| {
            Some((
                n.metadata.name.clone()?,
                n.metadata.labels.clone().unwrap_or_default(),
            ))
        })
        .collect()
}

/// Which pods a peer is.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Peer {
    /// Pods by selectors: in the namespaces the namespace selector matches,
    /// or (without one) in `namespace`, the policy's own.
    Pods {
        namespace: String,
        namespaces: Option<Selector>,
        pods: Selector,
    },
    /// Addresses: a CIDR less its exceptions, as nft writes them.
    Block { cidr: String, except: Vec<String> },
    /// A peer that is not valid (validation refuses it): nothing.
    Nothing,
}

/// A port of a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Port {
    /// Every port of the protocol.
    Any(Protocol),
    /// A number or range.
    Range(Protocol, u16, u16),
    /// A named container port.
    Named(Protocol, String),
    /// A port that is not valid: nothing.
    Nothing,
}

/// One ingress or egress rule: its peers (`None`: everyone) and ports
/// (`None`: all).
#[derive(Clone, Debug)]
struct Rule {
    peers: Option<Vec<Peer>>,
    ports: Option<Vec<Port>>,
}

/// A policy, parsed.
#[derive(Clone, Debug)]
struct Policy {
    key: String,
    namespace: String,
    selects: Selector,
    /// The ingress rules, when the policy isolates for ingress.
    ingress: Option<Vec<Rule>>,
    /// The egress rules, when the policy isolates for egress.
    egress: Option<Vec<Rule>>,
}

fn parse_policy(np: &NetworkPolicy) -> Option<Policy> {
    let namespace = np.metadata.namespace.clone()?;
    let name = np.metadata.name.clone()?;
    let spec = np.spec.as_ref()?;
    // Absent is empty (every pod of the namespace: Kubernetes' field is not
    // a pointer); an invalid selector (validation refuses them) selects nothing.
    let selects = match &spec.pod_selector {
        None => Selector::everything(),
        Some(s) => Selector::from_label_selector(Some(s)).unwrap_or_else(|_| Selector::nothing()),
    };
    let types: Vec<&str> = match spec.policy_types.as_deref() {
        Some(t) if !t.is_empty() => t.iter().map(String::as_str).collect(),
        _ if spec.egress.as_ref().is_some_and(|e| !e.is_empty()) => vec!["Ingress", "Egress"],
        _ => vec!["Ingress"],
    };
    let rules = |peers: &mut dyn Iterator<
        Item = (
            Option<&Vec<NetworkPolicyPeer>>,
            Option<&Vec<NetworkPolicyPort>>,
        ),
    >| {
        peers
            .map(|(from, ports)| Rule {
                peers: from
                    .filter(|f| !f.is_empty())
                    .map(|f| f.iter().map(|p| parse_peer(p, &namespace)).collect()),
                ports: ports
                    .filter(|p| !p.is_empty())
                    .map(|p| p.iter().map(parse_port).collect()),
            })
            .collect::<Vec<_>>()
    };
    let ingress = types.contains(&"Ingress").then(|| {
        rules(
            &mut spec
                .ingress
                .iter()
                .flatten()
                .map(|r| (r.from.as_ref(), r.ports.as_ref())),
        )
    });
    let egress = types.contains(&"Egress").then(|| {
        rules(
            &mut spec
                .egress
                .iter()
                .flatten()
                .map(|r| (r.to.as_ref(), r.ports.as_ref())),
        )
    });
    Some(Policy {
        key: format!("{namespace}/{name}"),
        namespace,
        selects,
        ingress,
        egress,
    })
}

fn parse_peer(p: &NetworkPolicyPeer, namespace: &str) -> Peer {
    if let Some(block) = &p.ip_block {
        return parse_block(block).unwrap_or(Peer::Nothing);
    }
    if p.pod_selector.is_none() && p.namespace_selector.is_none() {
        return Peer::Nothing;
    }
    let selector = |s| Selector::from_label_selector(s).ok();
    let namespaces = match &p.namespace_selector {
        None => None,
        Some(s) => match selector(Some(s)) {
            Some(s) => Some(s),
            None => return Peer::Nothing,
        },
    };
    // No pod selector: every pod (of the namespaces).
    let pods = match &p.pod_selector {
        None => Selector::everything(),
        Some(s) => match selector(Some(s)) {
            Some(s) => s,
            None => return Peer::Nothing,
        },
    };
    Peer::Pods {
        namespace: namespace.to_string(),
        namespaces,
        pods,
    }
}

/// A CIDR as nft takes it: the network address (host bits cleared) and
/// its prefix length, with its family.
fn network(cidr: &str) -> Option<(IpAddr, u8)> {
    let (addr, len) = cidr.split_once('/')?;
    let addr: IpAddr = addr.parse().ok()?;
    let len: u8 = len.parse().ok()?;
    let net = match addr {
        IpAddr::V4(a) if len <= 32 => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
        }
        IpAddr::V6(a) if len <= 128 => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            IpAddr::V6((u128::from(a) & mask).into())
        }
        _ => return None,
    };
    Some((net, len))
}

fn contains(outer: (IpAddr, u8), inner: (IpAddr, u8)) -> bool {
    outer.1 <= inner.1
        && network(&format!("{}/{}", inner.0, outer.1)).is_some_and(|n| n.0 == outer.0)
}

fn parse_block(b: &IPBlock) -> Option<Peer> {
    let net = network(&b.cidr)?;
    let mut excepts: Vec<(IpAddr, u8)> = Vec::new();
    for e in b.except.iter().flatten() {
        let e = network(e)?;
        if e.0.is_ipv4() == net.0.is_ipv4() {
            excepts.push(e);
        }
    }
    // nft refuses overlapping elements: keep only the widest exceptions.
    let kept: BTreeSet<(IpAddr, u8)> = excepts
        .iter()
        .filter(|e| {
            !excepts
                .iter()
                .any(|o| o != *e && contains(*o, **e) && (o.1 < e.1 || o.0 != e.0))
        })
        .copied()
        .collect();
    Some(Peer::Block {
        cidr: format!("{}/{}", net.0, net.1),
        except: kept.iter().map(|(a, l)| format!("{a}/{l}")).collect(),
    })
}

fn parse_port(p: &NetworkPolicyPort) -> Port {
    let Some(proto) = Protocol::parse(p.protocol.as_deref()) else {
        return Port::Nothing;
    };
    match &p.port {
        None => Port::Any(proto),
        Some(IntOrString::String(name)) => Port::Named(proto, name.clone()),
        Some(IntOrString::Int(n)) => {
            let (Ok(from), Ok(to)) = (u16::try_from(*n), u16::try_from(p.end_port.unwrap_or(*n)))
            else {
                return Port::Nothing;
            };
            if to < from {
                return Port::Nothing;
            }
            Port::Range(proto, from, to)
        }
    }
}

/// The direction of a pod chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    Ingress,
    Egress,
}

impl Direction {
    /// The field of the peer's address: the source of ingress traffic, the
    /// destination of egress traffic.
    fn peer_field(self) -> &'static str {
        match self {
            Direction::Ingress => "saddr",
            Direction::Egress => "daddr",
        }
    }
}

/// The nftables ruleset of one node: named sets of pod IPs (one per peer
/// selector), one chain per isolated pod and direction, and the base chains
/// that send traffic of isolated pods there.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ruleset {
    /// Named sets: name and members.
    pub sets: Vec<(String, BTreeSet<Ipv4Addr>)>,
    /// Pod chains: name and rules (the last drops).
    pub chains: Vec<(String, Vec<String>)>,
    /// Isolated local pods for ingress: IP and chain.
    pub ingress: BTreeMap<Ipv4Addr, String>,
    /// Isolated local pods for egress: IP and chain.
    pub egress: BTreeMap<Ipv4Addr, String>,
}

/// Builds the ruleset.
struct Builder<'a> {
    pods: &'a [PodInfo],
    namespaces: &'a NamespaceLabels,
    /// Peer sets already made: their key and name.
    set_names: BTreeMap<String, String>,
    out: Ruleset,
}

/// Plans the rules of node `node` for `policies` over the cluster's `pods`
/// (of every node: they are the peers) and `namespaces`.
pub fn plan(
    node: &str,
    pods: &[PodInfo],
    namespaces: &NamespaceLabels,
    policies: &[NetworkPolicy],
) -> Ruleset {
    let mut policies: Vec<Policy> = policies.iter().filter_map(parse_policy).collect();
    policies.sort_by(|a, b| a.key.cmp(&b.key));
    let mut local: Vec<&PodInfo> = pods.iter().filter(|p| p.node == node).collect();
    local.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    let mut b = Builder {
        pods,
        namespaces,
        set_names: BTreeMap::new(),
        out: Ruleset::default(),
    };
    for (i, pod) in local.iter().enumerate() {
        for dir in [Direction::Ingress, Direction::Egress] {
            b.pod_chain(i, pod, dir, &policies);
        }
    }
    b.out
}

impl Builder<'_> {
    /// The chain of `pod` for `dir` when some policy isolates it so.
    fn pod_chain(&mut self, i: usize, pod: &PodInfo, dir: Direction, policies: &[Policy]) {
        let map = match dir {
            Direction::Ingress => &self.out.ingress,
            Direction::Egress => &self.out.egress,
        };
        // Two pods with one address (a stale pod): the first keeps it.
        if map.contains_key(&pod.ip) {
            return;
        }
        let mut rules = Vec::new();
        let mut isolated = false;
        for p in policies {
            if p.namespace != pod.namespace || !p.selects.matches(&pod.labels) {
                continue;
            }
            let Some(prules) = (match dir {
                Direction::Ingress => &p.ingress,
                Direction::Egress => &p.egress,
            }) else {
                continue;
            };
            isolated = true;
            for r in prules {
                rules.extend(self.rule(pod, dir, r, &p.key));
            }
        }
        if !isolated {
            return;
        }
        let what = match dir {
            Direction::Ingress => "in",
            Direction::Egress => "out",
        };
        let chain = format!("pod-{what}-{i}");
        rules.push(format!(
            "drop comment {}",
            comment(&format!(
                "{}/{} isolated for {dir:?}",
                pod.namespace, pod.name
            ))
        ));
        let map = match dir {
            Direction::Ingress => &mut self.out.ingress,
            Direction::Egress => &mut self.out.egress,
        };
        map.insert(pod.ip, chain.clone());
        self.out.chains.push((chain, rules));
    }

    /// The nft rules (each ends in `return`: allowed) of one policy rule.
    fn rule(&mut self, pod: &PodInfo, dir: Direction, r: &Rule, key: &str) -> Vec<String> {
        let all_peers = [None];
        let peers: Vec<Option<&Peer>> = match &r.peers {
            None => all_peers.to_vec(),
            Some(ps) => ps.iter().map(Some).collect(),
        };
        let all_ports = [None];
        let ports: Vec<Option<&Port>> = match &r.ports {
            None => all_ports.to_vec(),
            Some(ps) => ps.iter().map(Some).collect(),
        };
        let tail = format!("return comment {}", comment(key));
        let mut out = Vec::new();
        for peer in &peers {
            for port in &ports {
                if let Some(m) = self.matcher(pod, dir, *peer, *port) {
                    out.push(if m.is_empty() {
                        tail.clone()
                    } else {
                        format!("{m} {tail}")
                    });
                }
            }
        }
        out
    }

    /// The match of one peer and port, or `None` when it matches nothing.
    fn matcher(
        &mut self,
        pod: &PodInfo,
        dir: Direction,
        peer: Option<&Peer>,
        port: Option<&Port>,
    ) -> Option<String> {
        let field = dir.peer_field();
        // A named port of egress traffic is the peer's: (address, port)
        // pairs of the peers that have it.
        if let (Direction::Egress, Some(Port::Named(proto, name))) = (dir, port) {
            let peers: Vec<&PodInfo> = match peer {
                None => self.pods.iter().collect(),
                Some(Peer::Pods { .. }) => self.members(peer?),
                Some(_) => Vec::new(),
            };
            let pairs: BTreeSet<String> = peers
                .iter()
                .filter_map(|p| {
                    p.named_port(name, *proto)
                        .map(|n| format!("{} . {n}", p.ip))
                })
                .collect();
            if pairs.is_empty() {
                return None;
            }
            let pairs: Vec<String> = pairs.into_iter().collect();
            return Some(format!(
                "meta l4proto {} ip daddr . th dport {{ {} }}",
                proto.nft(),
                pairs.join(", ")
            ));
        }
        let mut m = Vec::new();
        match peer {
            None => {}
            Some(Peer::Nothing) => return None,
            Some(p @ Peer::Pods { .. }) => m.push(format!("ip {field} @{}", self.set(p))),
            Some(Peer::Block { cidr, except }) => {
                let fam = if cidr.contains(':') { "ip6" } else { "ip" };
                m.push(format!("{fam} {field} {cidr}"));
                if !except.is_empty() {
                    m.push(format!("{fam} {field} != {{ {} }}", except.join(", ")));
                }
            }
        }
        match port {
            None => {}
            Some(Port::Nothing) => return None,
            Some(Port::Any(proto)) => m.push(format!("meta l4proto {}", proto.nft())),
            Some(Port::Range(proto, from, to)) => {
                let range = if from == to {
                    from.to_string()
                } else {
                    format!("{from}-{to}")
                };
                m.push(format!("meta l4proto {} th dport {range}", proto.nft()));
            }
            // Ingress: the selected pod's own container port.
            Some(Port::Named(proto, name)) => {
                let n = pod.named_port(name, *proto)?;
                m.push(format!("meta l4proto {} th dport {n}", proto.nft()));
            }
        }
        Some(m.join(" "))
    }

    /// The pods a selector peer is.
    fn members(&self, peer: &Peer) -> Vec<&PodInfo> {
        let Peer::Pods {
            namespace,
            namespaces,
            pods,
        } = peer
        else {
            return Vec::new();
        };
        self.pods
            .iter()
            .filter(|p| match namespaces {
                None => &p.namespace == namespace,
                Some(sel) => self
                    .namespaces
                    .get(&p.namespace)
                    .is_some_and(|labels| sel.matches(labels)),
            })
            .filter(|p| pods.matches(&p.labels))
            .collect()
    }

    /// The name of the set of a selector peer's pod IPs (made once per
    /// distinct peer).
    fn set(&mut self, peer: &Peer) -> String {
        let key = match peer {
            // Without a namespace selector the policy's namespace matters.
            Peer::Pods {
                namespace,
                namespaces: None,
                pods,
            } => format!("{namespace}|{pods:?}"),
            Peer::Pods {
                namespaces: Some(ns),
                pods,
                ..
            } => format!("*|{ns:?}|{pods:?}"),
            _ => String::new(),
        };
        if let Some(name) = self.set_names.get(&key) {
            return name.clone();
        }
        let name = format!("peers-{}", self.set_names.len());
        let members = self.members(peer).iter().map(|p| p.ip).collect();
        self.set_names.insert(key, name.clone());
        self.out.sets.push((name.clone(), members));
        name
    }
}

/// A quoted nft comment (at most 128 bytes, no quotes).
fn comment(s: &str) -> String {
    let mut c: String = s.chars().filter(|c| *c != '"').collect();
    while c.len() > 120 {
        c.pop();
    }
    format!("\"{c}\"")
}

/// The nft script that replaces table `table` (family `inet`) with
/// `rules` in one transaction. Traffic of allowed connections in both
/// directions (established, related) passes first; then traffic from an
/// isolated pod (forwarded, or to the node itself) goes through its egress
/// chain and traffic to an isolated pod through its ingress chain, each
/// returning when a rule allows it and dropping otherwise. Traffic the node
/// itself sends to its pods (the kubelet's probes) leaves through the output
/// hook, which the table does not filter.
pub fn script(table: &str, rules: &Ruleset) -> String {
    let mut s =
        format!("add table inet {table}\ndelete table inet {table}\ntable inet {table} {{\n");
    for (name, members) in &rules.sets {
        s.push_str(&format!("\tset {name} {{\n\t\ttype ipv4_addr\n"));
        if !members.is_empty() {
            let m: Vec<String> = members.iter().map(Ipv4Addr::to_string).collect();
            s.push_str(&format!("\t\telements = {{ {} }}\n", m.join(", ")));
        }
        s.push_str("\t}\n");
    }
    for (name, body) in &rules.chains {
        s.push_str(&format!("\tchain {name} {{\n"));
        for r in body {
            s.push_str(&format!("\t\t{r}\n"));
        }
        s.push_str("\t}\n");
    }
    let vmap = |field: &str, m: &BTreeMap<Ipv4Addr, String>| {
        if m.is_empty() {
            return String::new();
        }
        let e: Vec<String> = m.iter().map(|(ip, c)| format!("{ip} : jump {c}")).collect();
        format!("\t\tip {field} vmap {{ {} }}\n", e.join(", "))
    };
    let egress = vmap("saddr", &rules.egress);
    let ingress = vmap("daddr", &rules.ingress);
    for (hook, body) in [
        ("forward", format!("{egress}{ingress}")),
        ("input", egress.clone()),
    ] {
        s.push_str(&format!(
            "\tchain {hook} {{\n\t\ttype filter hook {hook} priority filter; policy accept;\n\
             \t\tct state established,related accept\n{body}\t}}\n"
        ));
    }
    s.push_str("}\n");
    s
}

#[cfg(test)]
mod tests;
