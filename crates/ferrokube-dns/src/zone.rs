//! The cluster zone: every name the cluster answers for, built from
//! Services and EndpointSlices as Kubernetes' DNS specification lays them
//! out, and the lookup that turns a question into an answer.
//!
//! Names are kept lower-case, without the trailing dot. A name that exists
//! only as a parent of others (`default.svc.cluster.local`) answers with no
//! records and no error (NODATA), as a zone with empty non-terminals does;
//! a name that does not exist at all answers NXDOMAIN.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The data of one record.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Data {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Cname(String),
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: String,
    },
    Ptr(String),
    Txt(String),
}

impl Data {
    fn kind(&self) -> Kind {
        match self {
            Data::A(_) => Kind::A,
            Data::Aaaa(_) => Kind::Aaaa,
            Data::Cname(_) => Kind::Cname,
            Data::Srv { .. } => Kind::Srv,
            Data::Ptr(_) => Kind::Ptr,
            Data::Txt(_) => Kind::Txt,
        }
    }

    fn address(ip: IpAddr) -> Data {
        match ip {
            IpAddr::V4(v4) => Data::A(v4),
            IpAddr::V6(v6) => Data::Aaaa(v6),
        }
    }
}

/// The record types the zone holds (and ANY).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    A,
    Aaaa,
    Cname,
    Srv,
    Ptr,
    Txt,
    Any,
    /// Something the zone never holds (MX, NS, ...).
    Other,
}

/// What the zone says to a question.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Not in the cluster domain (nor a reverse name it knows): forward it.
    NotOurs,
    /// The name does not exist.
    NxDomain,
    /// The records (empty: the name exists, without records of that type).
    Records(Vec<(String, Data)>),
}

/// A Service as the zone needs it.
#[derive(Clone, Debug, Default)]
pub struct ServiceInfo {
    /// The Service's namespace: the `<ns>` of `<name>.<ns>.svc.<domain>`.
    pub namespace: String,
    /// The Service's name.
    pub name: String,
    /// Empty and not headless: no address records (e.g. not yet allocated).
    pub cluster_ips: Vec<IpAddr>,
    /// `clusterIP: None`: the name answers with the endpoints' addresses.
    pub headless: bool,
    /// For an ExternalName Service: the target of its CNAME (then nothing
    /// else is published for it).
    pub external_name: Option<String>,
    /// (name, protocol, port) of the Service's ports.
    pub ports: Vec<(String, String, u16)>,
    /// `publishNotReadyAddresses`: endpoints that are not ready get records too.
    pub publish_not_ready: bool,
}

/// One endpoint of a Service, from its EndpointSlices.
#[derive(Clone, Debug, Default)]
pub struct EndpointInfo {
    /// The endpoint's addresses (IPv4 and IPv6).
    pub addresses: Vec<IpAddr>,
    /// Its `hostname` (a StatefulSet pod's name): its own
    /// `<hostname>.<service>.<ns>.svc.<domain>` name; without one, the
    /// address with dashes is used.
    pub hostname: Option<String>,
    /// The `ready` condition (a nil one counts as ready).
    pub ready: bool,
    /// (name, protocol, port) of the slice's ports.
    pub ports: Vec<(String, String, u16)>,
}

/// The whole cluster zone.
#[derive(Clone, Debug)]
pub struct Zone {
    domain: String,
    records: HashMap<String, Vec<Data>>,
    /// Names that exist without records of their own (parents).
    parents: HashSet<String>,
}

impl Zone {
    /// An empty zone for `domain` (e.g. `cluster.local`).
    pub fn new(domain: &str) -> Zone {
        let domain = normalize(domain);
        let mut zone = Zone {
            domain: domain.clone(),
            records: HashMap::new(),
            parents: HashSet::new(),
        };
        // The schema version record of the DNS specification.
        zone.add(format!("dns-version.{domain}"), Data::Txt("1.1.0".into()));
        zone.parents.insert(format!("svc.{domain}"));
        zone.parents.insert(format!("pod.{domain}"));
        zone
    }

    /// Adds a Service and its endpoints (ignored when not ready, unless the
    /// Service publishes not-ready addresses).
    pub fn add_service(&mut self, svc: &ServiceInfo, endpoints: &[EndpointInfo]) {
        let base = format!("{}.{}.svc.{}", svc.name, svc.namespace, self.domain);
        let base = normalize(&base);
        self.parents.insert(base.clone());
        if let Some(target) = &svc.external_name {
            self.add(base, Data::Cname(normalize(target)));
            return;
        }
        if !svc.headless {
            for ip in &svc.cluster_ips {
                self.add(base.clone(), Data::address(*ip));
                self.add(reverse_name(*ip), Data::Ptr(base.clone()));
            }
            if svc.cluster_ips.is_empty() {
                return;
            }
            for (port_name, proto, port) in &svc.ports {
                if port_name.is_empty() {
                    continue;
                }
                let name = format!("_{}._{}.{base}", port_name, proto.to_ascii_lowercase());
                self.add(
                    normalize(&name),
                    Data::Srv {
                        priority: 0,
                        weight: 100,
                        port: *port,
                        target: base.clone(),
                    },
                );
            }
            return;
        }
        // Headless: the endpoints' addresses, by the Service's name and by
        // each endpoint's own name.
        let live: Vec<&EndpointInfo> = endpoints
            .iter()
            .filter(|e| e.ready || svc.publish_not_ready)
            .collect();
        let mut srv: Vec<(String, String, u16, String)> = Vec::new();
        for ep in &live {
            for ip in &ep.addresses {
                let host = ep
                    .hostname
                    .clone()
                    .filter(|h| !h.is_empty())
                    .unwrap_or_else(|| dashed(*ip));
                let host_name = normalize(&format!("{host}.{base}"));
                self.add(base.clone(), Data::address(*ip));
                self.add(host_name.clone(), Data::address(*ip));
                self.add(reverse_name(*ip), Data::Ptr(host_name.clone()));
                for (port_name, proto, port) in &ep.ports {
                    if !port_name.is_empty() {
                        srv.push((port_name.clone(), proto.clone(), *port, host_name.clone()));
                    }
                }
            }
        }
        // Weights share 100 among the targets of one port, as the
        // specification's examples do.
        let mut per_port: HashMap<(String, String), Vec<(u16, String)>> = HashMap::new();
        for (port_name, proto, port, target) in srv {
            per_port
                .entry((port_name, proto.to_ascii_lowercase()))
                .or_default()
                .push((port, target));
        }
        for ((port_name, proto), targets) in per_port {
            let weight = (100 / targets.len().max(1)).max(1) as u16;
            let name = normalize(&format!("_{port_name}._{proto}.{base}"));
            for (port, target) in targets {
                self.add(
                    name.clone(),
                    Data::Srv {
                        priority: 0,
                        weight,
                        port,
                        target,
                    },
                );
            }
        }
    }

    fn add(&mut self, name: String, data: Data) {
        // Every parent up to the zone exists as a name.
        let mut parent = name.as_str();
        while let Some((_, rest)) = parent.split_once('.') {
            if rest.len() < self.domain.len() {
                break;
            }
            self.parents.insert(rest.to_string());
            if rest == self.domain {
                break;
            }
            parent = rest;
        }
        let list = self.records.entry(name).or_default();
        if !list.contains(&data) {
            list.push(data);
        }
    }

    /// Answers a question for `name` (any case, with or without the final
    /// dot) of type `kind`.
    pub(crate) fn lookup(&self, name: &str, kind: Kind) -> Answer {
        let name = normalize(name);
        let reverse = name.ends_with(".in-addr.arpa") || name.ends_with(".ip6.arpa");
        let ours = name == self.domain || name.ends_with(&format!(".{}", self.domain));
        if !ours && !reverse {
            return Answer::NotOurs;
        }
        if let Some(list) = self.records.get(&name) {
            let mut out = Vec::new();
            for d in list {
                let k = d.kind();
                if k == kind || kind == Kind::Any || k == Kind::Cname {
                    out.push((name.clone(), d.clone()));
                }
            }
            return Answer::Records(out);
        }
        if reverse {
            // Reverse names of addresses the cluster does not own belong to
            // the host's resolvers.
            return Answer::NotOurs;
        }
        if let Some(ip) = self.pod_address(&name) {
            let data = Data::address(ip);
            return if data.kind() == kind || kind == Kind::Any {
                Answer::Records(vec![(name, data)])
            } else {
                Answer::Records(vec![])
            };
        }
        if name == self.domain || self.parents.contains(&name) {
            return Answer::Records(vec![]);
        }
        Answer::NxDomain
    }

    /// `1-2-3-4.<namespace>.pod.<domain>` names the pod address 1.2.3.4
    /// (IPv6 with dashes for colons), whatever pods exist.
    fn pod_address(&self, name: &str) -> Option<IpAddr> {
        let rest = name.strip_suffix(&format!(".pod.{}", self.domain))?;
        let (host, namespace) = rest.split_once('.')?;
        if namespace.is_empty() || namespace.contains('.') {
            return None;
        }
        let v4 = host.replace('-', ".");
        if let Ok(ip) = v4.parse::<Ipv4Addr>() {
            return Some(IpAddr::V4(ip));
        }
        host.replace('-', ":")
            .parse::<Ipv6Addr>()
            .ok()
            .map(IpAddr::V6)
    }

    /// The SOA's owner for negative answers: the zone.
    pub(crate) fn apex(&self) -> &str {
        &self.domain
    }
}

/// Lower case, no trailing dot.
pub(crate) fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// An address with dashes (`10-42-0-5`), as endpoint names without a
/// hostname are spelled.
fn dashed(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string().replace('.', "-"),
        IpAddr::V6(v6) => v6.to_string().replace(':', "-"),
    }
}

/// The reverse-lookup name of an address.
fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut s = String::new();
            for b in v6.octets().iter().rev() {
                s.push_str(&format!("{:x}.{:x}.", b & 0xf, b >> 4));
            }
            s.push_str("ip6.arpa");
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(name: &str, ip: Option<&str>) -> ServiceInfo {
        ServiceInfo {
            namespace: "default".into(),
            name: name.into(),
            cluster_ips: ip.iter().filter_map(|s| s.parse().ok()).collect(),
            headless: ip.is_none(),
            ports: vec![("http".into(), "TCP".into(), 80)],
            ..Default::default()
        }
    }

    fn ep(ip: &str, ready: bool, hostname: Option<&str>) -> EndpointInfo {
        EndpointInfo {
            addresses: vec![ip.parse().expect("ip")],
            hostname: hostname.map(str::to_string),
            ready,
            ports: vec![("http".into(), "TCP".into(), 8080)],
        }
    }

    #[test]
    fn cluster_ip_service_has_a_srv_and_ptr() {
        let mut z = Zone::new("cluster.local");
        z.add_service(&svc("web", Some("10.43.0.20")), &[]);
        assert_eq!(
            z.lookup("WEB.default.svc.cluster.local.", Kind::A),
            Answer::Records(vec![(
                "web.default.svc.cluster.local".into(),
                Data::A("10.43.0.20".parse().expect("ip"))
            )])
        );
        assert_eq!(
            z.lookup("_http._tcp.web.default.svc.cluster.local", Kind::Srv),
            Answer::Records(vec![(
                "_http._tcp.web.default.svc.cluster.local".into(),
                Data::Srv {
                    priority: 0,
                    weight: 100,
                    port: 80,
                    target: "web.default.svc.cluster.local".into()
                }
            )])
        );
        assert_eq!(
            z.lookup("20.0.43.10.in-addr.arpa", Kind::Ptr),
            Answer::Records(vec![(
                "20.0.43.10.in-addr.arpa".into(),
                Data::Ptr("web.default.svc.cluster.local".into())
            )])
        );
        // The name exists, without AAAA records.
        assert_eq!(
            z.lookup("web.default.svc.cluster.local", Kind::Aaaa),
            Answer::Records(vec![])
        );
    }

    #[test]
    fn missing_names_are_nxdomain_parents_are_nodata() {
        let mut z = Zone::new("cluster.local");
        z.add_service(&svc("web", Some("10.43.0.20")), &[]);
        assert_eq!(
            z.lookup("nope.default.svc.cluster.local", Kind::A),
            Answer::NxDomain
        );
        // What a search list tries first for a full name with ndots:5.
        assert_eq!(
            z.lookup(
                "web.default.svc.cluster.local.default.svc.cluster.local",
                Kind::A
            ),
            Answer::NxDomain
        );
        assert_eq!(
            z.lookup("default.svc.cluster.local", Kind::A),
            Answer::Records(vec![])
        );
        assert_eq!(z.lookup("example.com", Kind::A), Answer::NotOurs);
        assert_eq!(z.lookup("9.9.9.9.in-addr.arpa", Kind::Ptr), Answer::NotOurs);
    }

    #[test]
    fn headless_service_lists_ready_endpoints() {
        let mut z = Zone::new("cluster.local");
        let eps = [
            ep("10.42.0.5", true, None),
            ep("10.42.0.6", true, Some("db-0")),
            ep("10.42.0.7", false, None),
        ];
        z.add_service(&svc("db", None), &eps);
        let Answer::Records(rs) = z.lookup("db.default.svc.cluster.local", Kind::A) else {
            panic!("expected records");
        };
        let ips: Vec<_> = rs.iter().map(|(_, d)| d.clone()).collect();
        assert_eq!(
            ips,
            vec![
                Data::A("10.42.0.5".parse().expect("ip")),
                Data::A("10.42.0.6".parse().expect("ip"))
            ]
        );
        assert!(matches!(
            z.lookup("db-0.db.default.svc.cluster.local", Kind::A),
            Answer::Records(r) if r.len() == 1
        ));
        assert!(matches!(
            z.lookup("10-42-0-5.db.default.svc.cluster.local", Kind::A),
            Answer::Records(r) if r.len() == 1
        ));
        let Answer::Records(srv) = z.lookup("_http._tcp.db.default.svc.cluster.local", Kind::Srv)
        else {
            panic!("expected SRV");
        };
        assert_eq!(srv.len(), 2);
        assert!(srv.iter().all(|(_, d)| matches!(
            d,
            Data::Srv {
                port: 8080,
                weight: 50,
                ..
            }
        )));
        // The not-ready endpoint is published when the Service asks.
        let mut z = Zone::new("cluster.local");
        let mut s = svc("db", None);
        s.publish_not_ready = true;
        z.add_service(&s, &eps);
        assert!(matches!(
            z.lookup("db.default.svc.cluster.local", Kind::A),
            Answer::Records(r) if r.len() == 3
        ));
    }

    #[test]
    fn external_name_is_a_cname_and_pods_resolve_by_address() {
        let mut z = Zone::new("cluster.local");
        let mut s = svc("ext", None);
        s.external_name = Some("example.org".into());
        z.add_service(&s, &[]);
        assert_eq!(
            z.lookup("ext.default.svc.cluster.local", Kind::A),
            Answer::Records(vec![(
                "ext.default.svc.cluster.local".into(),
                Data::Cname("example.org".into())
            )])
        );
        assert_eq!(
            z.lookup("10-42-0-9.default.pod.cluster.local", Kind::A),
            Answer::Records(vec![(
                "10-42-0-9.default.pod.cluster.local".into(),
                Data::A("10.42.0.9".parse().expect("ip"))
            )])
        );
        assert_eq!(
            z.lookup("not-an-ip.default.pod.cluster.local", Kind::A),
            Answer::NxDomain
        );
    }
}
