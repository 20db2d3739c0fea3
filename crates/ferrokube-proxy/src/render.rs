//! From the plan to nftables: the rules of one table, and the script that
//! takes the kernel from what was programmed last to what is wanted.
//!
//! The table has a fixed part (hooks, maps, masquerading, the reject path)
//! and a part per Service port: a `svc-` chain that spreads new connections
//! evenly at random (a cascade of `numgen` rules) over its endpoints, an
//! `ext-` chain for its NodePort, and, for `sessionAffinity: ClientIP`, a
//! `sep-` chain and an affinity set per endpoint. Verdict maps keyed by
//! address, protocol and port send packets to those chains, so a lookup
//! costs the same with ten Services or ten thousand.
//!
//! Marked packets (0x4000) are masqueraded on the way out: traffic to a
//! cluster IP from outside the pod network, NodePort traffic (unless the
//! policy is Local), and traffic from a Service's own endpoints to it
//! (hairpin: a pod reaching itself through its Service; without ClientIP
//! affinity, where endpoint chains exist, this masquerades an endpoint's
//! traffic to its own Service whichever endpoint it lands on).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::model::{Endpoint, ServicePort};

/// The maps of the fixed part; the proxy fills their elements.
pub(crate) const SERVICE_IPS: &str = "service-ips";
pub(crate) const SERVICE_NODEPORTS: &str = "service-nodeports";
pub(crate) const NO_ENDPOINT_SERVICES: &str = "no-endpoint-services";
pub(crate) const NO_ENDPOINT_NODEPORTS: &str = "no-endpoint-nodeports";

/// The desired content of the table beyond its fixed part.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Ruleset {
    /// Chain name to its rules.
    pub(crate) chains: BTreeMap<String, Vec<String>>,
    /// Affinity set name to its timeout in seconds.
    pub(crate) sets: BTreeMap<String, u32>,
    /// Map name to its elements (key to verdict).
    pub(crate) maps: BTreeMap<&'static str, BTreeMap<String, String>>,
}

/// Builds the ruleset for `ports`; `cluster_cidr` is the pod network.
pub(crate) fn render(ports: &[ServicePort], cluster_cidr: &str) -> Ruleset {
    let mut r = Ruleset::default();
    for m in [
        SERVICE_IPS,
        SERVICE_NODEPORTS,
        NO_ENDPOINT_SERVICES,
        NO_ENDPOINT_NODEPORTS,
    ] {
        r.maps.insert(m, BTreeMap::new());
    }
    for p in ports {
        let proto = p.protocol.nft();
        let svc_chain = format!("svc-{}", p.id);
        let internal: Vec<&Endpoint> = p
            .endpoints
            .iter()
            .filter(|e| !p.internal_local || e.local)
            .collect();
        if p.endpoints.is_empty() {
            for ip in &p.cluster_ips {
                r.maps.entry(NO_ENDPOINT_SERVICES).or_default().insert(
                    format!("{ip} . {proto} . {}", p.port),
                    "goto reject-chain".into(),
                );
            }
            if let Some(np) = p.node_port {
                r.maps
                    .entry(NO_ENDPOINT_NODEPORTS)
                    .or_default()
                    .insert(format!("{proto} . {np}"), "goto reject-chain".into());
            }
            for ip in &p.load_balancer_ips {
                r.maps.entry(NO_ENDPOINT_SERVICES).or_default().insert(
                    format!("{ip} . {proto} . {}", p.port),
                    "goto reject-chain".into(),
                );
            }
            continue;
        }
        // With ClientIP affinity each endpoint needs a chain of its own
        // (it records the client in the endpoint's set); otherwise the
        // Service chain translates directly, which keeps the table to one
        // chain per Service port (nft reads every chain name on each
        // update, so chains cost time on every change).
        if let Some(timeout) = p.affinity_timeout {
            for e in &p.endpoints {
                let set = affinity_set(p, e);
                let rules = vec![
                    format!("ip saddr {} jump mark-for-masquerade", e.ip),
                    format!("update @{set} {{ ip saddr }}"),
                    dnat(p, e),
                ];
                r.sets.insert(set, timeout);
                r.chains.insert(sep_chain(p, e), rules);
            }
        }
        // The cluster IP chain.
        let mut rules = Vec::new();
        for ip in &p.cluster_ips {
            rules.push(format!(
                "ip daddr {ip} ip saddr != {cluster_cidr} jump mark-for-masquerade"
            ));
        }
        if p.affinity_timeout.is_none() {
            // Hairpin: an endpoint reaching its own Service is masqueraded,
            // or the reply would never come back through the translation.
            for e in &internal {
                rules.push(format!("ip saddr {} jump mark-for-masquerade", e.ip));
            }
        }
        spread(&mut rules, p, &internal);
        r.chains.insert(svc_chain.clone(), rules);
        for ip in &p.cluster_ips {
            r.maps.entry(SERVICE_IPS).or_default().insert(
                format!("{ip} . {proto} . {}", p.port),
                format!("goto {svc_chain}"),
            );
        }
        // The external chain: the NodePort's and the load balancer
        // addresses'.
        if p.node_port.is_some() || !p.load_balancer_ips.is_empty() {
            let ext = format!("ext-{}", p.id);
            let mut rules = Vec::new();
            if p.external_local {
                // Pods and the node itself still reach every endpoint; from
                // outside, only this node's, with the client's address kept.
                rules.push(format!("ip saddr {cluster_cidr} goto {svc_chain}"));
                rules.push("fib saddr type local jump mark-for-masquerade".into());
                rules.push(format!("fib saddr type local goto {svc_chain}"));
                let local: Vec<&Endpoint> = p.endpoints.iter().filter(|e| e.local).collect();
                spread(&mut rules, p, &local);
            } else {
                rules.push("jump mark-for-masquerade".into());
                rules.push(format!("goto {svc_chain}"));
            }
            r.chains.insert(ext.clone(), rules);
            if let Some(np) = p.node_port {
                r.maps
                    .entry(SERVICE_NODEPORTS)
                    .or_default()
                    .insert(format!("{proto} . {np}"), format!("goto {ext}"));
            }
            for ip in &p.load_balancer_ips {
                r.maps.entry(SERVICE_IPS).or_default().insert(
                    format!("{ip} . {proto} . {}", p.port),
                    format!("goto {ext}"),
                );
            }
        }
    }
    r
}

/// Rules that send a connection to one of `eps` (affinity first); drop
/// when there are none (a Local policy with no endpoint on this node).
fn spread(rules: &mut Vec<String>, p: &ServicePort, eps: &[&Endpoint]) {
    if eps.is_empty() {
        rules.push("drop".into());
        return;
    }
    let target = |e: &Endpoint| match p.affinity_timeout {
        Some(_) => format!("goto {}", sep_chain(p, e)),
        None => dnat(p, e),
    };
    if p.affinity_timeout.is_some() {
        for e in eps {
            rules.push(format!(
                "ip saddr @{} goto {}",
                affinity_set(p, e),
                sep_chain(p, e)
            ));
        }
    }
    // Even spreading without a set per Service: rule k of n takes the
    // connection with probability 1/(n-k), so each endpoint gets 1/n.
    // (Anonymous verdict maps would cost the kernel a set per Service,
    // and sets are found by a linear search: 10,000 Services would take
    // minutes to load.)
    let n = eps.len();
    for (k, e) in eps.iter().enumerate() {
        if k + 1 == n {
            rules.push(target(e));
        } else {
            rules.push(format!("numgen random mod {} == 0 {}", n - k, target(e)));
        }
    }
}

fn dnat(p: &ServicePort, e: &Endpoint) -> String {
    format!(
        "meta l4proto {} dnat to {}:{}",
        p.protocol.nft(),
        e.ip,
        e.port
    )
}

fn sep_chain(p: &ServicePort, e: &Endpoint) -> String {
    format!("sep-{}/{}/{}", p.id, e.ip, e.port)
}

fn affinity_set(p: &ServicePort, e: &Endpoint) -> String {
    format!("affinity-{}/{}/{}", p.id, e.ip, e.port)
}

/// The fixed part of the table.
fn fixed(table: &str) -> String {
    format!(
        r#"table ip {table} {{
  map {SERVICE_IPS} {{ type ipv4_addr . inet_proto . inet_service : verdict; }}
  map {SERVICE_NODEPORTS} {{ type inet_proto . inet_service : verdict; }}
  map {NO_ENDPOINT_SERVICES} {{ type ipv4_addr . inet_proto . inet_service : verdict; }}
  map {NO_ENDPOINT_NODEPORTS} {{ type inet_proto . inet_service : verdict; }}
  chain mark-for-masquerade {{
    meta mark set meta mark | 0x4000
  }}
  chain masquerading {{
    meta mark & 0x4000 == 0 return
    meta mark set meta mark ^ 0x4000
    masquerade fully-random
  }}
  chain services {{
    ip daddr . meta l4proto . th dport vmap @{SERVICE_IPS}
    fib daddr type local meta l4proto . th dport vmap @{SERVICE_NODEPORTS}
  }}
  chain endpoints-check {{
    ip daddr . meta l4proto . th dport vmap @{NO_ENDPOINT_SERVICES}
    fib daddr type local meta l4proto . th dport vmap @{NO_ENDPOINT_NODEPORTS}
  }}
  chain reject-chain {{
    reject
  }}
  chain nat-prerouting {{
    type nat hook prerouting priority -100; policy accept;
    jump services
  }}
  chain nat-output {{
    type nat hook output priority -100; policy accept;
    jump services
  }}
  chain nat-postrouting {{
    type nat hook postrouting priority 100; policy accept;
    jump masquerading
  }}
  chain filter-input {{
    type filter hook input priority -110; policy accept;
    ct state new jump endpoints-check
  }}
  chain filter-forward {{
    type filter hook forward priority -110; policy accept;
    ct state new jump endpoints-check
  }}
  chain filter-output {{
    type filter hook output priority -110; policy accept;
    ct state new jump endpoints-check
  }}
}}
"#
    )
}

/// A script that replaces the whole table in one transaction: the old
/// rules stay in force until the new ones are, so a restart leaves no gap.
/// `parts` are the rulesets of independent pieces (one per Service).
pub(crate) fn full_script<'a>(table: &str, parts: impl IntoIterator<Item = &'a Ruleset>) -> String {
    let mut s = format!("add table ip {table}\ndelete table ip {table}\n");
    s.push_str(&fixed(table));
    let empty = Ruleset::default();
    for r in parts {
        s.push_str(&changes(table, &empty, r));
    }
    s
}

/// The changes from `old` to `new` (empty when there are none), in an
/// order the kernel accepts in one transaction: new sets and chains first,
/// then rules, then map elements, then what is gone.
pub(crate) fn diff_script(table: &str, old: &Ruleset, new: &Ruleset) -> String {
    changes(table, old, new)
}

fn changes(table: &str, old: &Ruleset, new: &Ruleset) -> String {
    let mut s = String::new();
    for (set, timeout) in &new.sets {
        if old.sets.get(set) != Some(timeout) {
            if old.sets.contains_key(set) {
                // A changed timeout: the set is recreated below, after the
                // chains that use it are rewritten.
                continue;
            }
            let _ = writeln!(
                s,
                "add set ip {table} {set} {{ type ipv4_addr; flags dynamic,timeout; timeout {timeout}s; }}"
            );
        }
    }
    for name in new.chains.keys() {
        if !old.chains.contains_key(name) {
            let _ = writeln!(s, "add chain ip {table} {name}");
        }
    }
    // Sets whose timeout changed: chains using them are flushed first.
    let changed_sets: BTreeSet<&String> = new
        .sets
        .iter()
        .filter(|(k, v)| old.sets.get(*k).is_some_and(|o| o != *v))
        .map(|(k, _)| k)
        .collect();
    for (name, rules) in &new.chains {
        let uses_changed = rules.iter().any(|r| {
            changed_sets
                .iter()
                .any(|set| r.contains(&format!("@{set} ")))
        });
        if old.chains.get(name) == Some(rules) && !uses_changed {
            continue;
        }
        if old.chains.contains_key(name) {
            let _ = writeln!(s, "flush chain ip {table} {name}");
        }
        if uses_changed {
            continue; // rules added after the set is recreated
        }
        for rule in rules {
            let _ = writeln!(s, "add rule ip {table} {name} {rule}");
        }
    }
    for set in &changed_sets {
        let timeout = new.sets[*set];
        let _ = writeln!(s, "delete set ip {table} {set}");
        let _ = writeln!(
            s,
            "add set ip {table} {set} {{ type ipv4_addr; flags dynamic,timeout; timeout {timeout}s; }}"
        );
    }
    for (name, rules) in &new.chains {
        if rules.iter().any(|r| {
            changed_sets
                .iter()
                .any(|set| r.contains(&format!("@{set} ")))
        }) {
            for rule in rules {
                let _ = writeln!(s, "add rule ip {table} {name} {rule}");
            }
        }
    }
    let empty = BTreeMap::new();
    for (map, elements) in &new.maps {
        let before = old.maps.get(map).unwrap_or(&empty);
        for (key, verdict) in before {
            if elements.get(key) != Some(verdict) {
                let _ = writeln!(s, "delete element ip {table} {map} {{ {key} }}");
            }
        }
        for (key, verdict) in elements {
            if before.get(key) != Some(verdict) {
                let _ = writeln!(s, "add element ip {table} {map} {{ {key} : {verdict} }}");
            }
        }
    }
    for name in old.chains.keys() {
        if !new.chains.contains_key(name) {
            let _ = writeln!(s, "flush chain ip {table} {name}");
        }
    }
    for name in old.chains.keys() {
        if !new.chains.contains_key(name) {
            let _ = writeln!(s, "delete chain ip {table} {name}");
        }
    }
    for set in old.sets.keys() {
        if !new.sets.contains_key(set) {
            let _ = writeln!(s, "delete set ip {table} {set}");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Proto;

    fn port(eps: &[(&str, bool)]) -> ServicePort {
        ServicePort {
            id: "default/web/tcp/http".into(),
            cluster_ips: vec!["10.43.0.20".parse().expect("ip")],
            protocol: Proto::Tcp,
            port: 80,
            node_port: Some(30080),
            load_balancer_ips: Vec::new(),
            affinity_timeout: None,
            internal_local: false,
            external_local: false,
            endpoints: eps
                .iter()
                .map(|(ip, local)| Endpoint {
                    ip: ip.parse().expect("ip"),
                    port: 8080,
                    local: *local,
                })
                .collect(),
        }
    }

    #[test]
    fn endpoints_are_spread_evenly() {
        let r = render(
            &[port(&[("10.42.0.5", true), ("10.42.0.6", false)])],
            "10.42.0.0/16",
        );
        let svc = &r.chains["svc-default/web/tcp/http"];
        assert_eq!(
            svc[1..],
            [
                "ip saddr 10.42.0.5 jump mark-for-masquerade".to_string(),
                "ip saddr 10.42.0.6 jump mark-for-masquerade".to_string(),
                "numgen random mod 2 == 0 meta l4proto tcp dnat to 10.42.0.5:8080".to_string(),
                "meta l4proto tcp dnat to 10.42.0.6:8080".to_string()
            ]
        );
        assert_eq!(r.chains.len(), 2, "one chain per Service port and NodePort");
        assert_eq!(
            r.maps[SERVICE_IPS]["10.43.0.20 . tcp . 80"],
            "goto svc-default/web/tcp/http"
        );
        assert_eq!(
            r.maps[SERVICE_NODEPORTS]["tcp . 30080"],
            "goto ext-default/web/tcp/http"
        );
        assert!(r.maps[NO_ENDPOINT_SERVICES].is_empty());
    }

    #[test]
    fn no_endpoints_reject() {
        let r = render(&[port(&[])], "10.42.0.0/16");
        assert!(r.chains.is_empty());
        assert_eq!(
            r.maps[NO_ENDPOINT_SERVICES]["10.43.0.20 . tcp . 80"],
            "goto reject-chain"
        );
        assert_eq!(
            r.maps[NO_ENDPOINT_NODEPORTS]["tcp . 30080"],
            "goto reject-chain"
        );
    }

    #[test]
    fn load_balancer_addresses_take_the_external_path() {
        let mut p = port(&[("10.42.0.5", true), ("10.42.0.6", false)]);
        p.load_balancer_ips = vec!["10.250.1.10".parse().expect("ip")];
        p.node_port = None;
        p.external_local = true;
        let r = render(std::slice::from_ref(&p), "10.42.0.0/16");
        assert_eq!(
            r.maps[SERVICE_IPS]["10.250.1.10 . tcp . 80"],
            "goto ext-default/web/tcp/http"
        );
        assert!(r.maps[SERVICE_NODEPORTS].is_empty());
        // Local: from outside, only this node's endpoint.
        assert_eq!(
            r.chains["ext-default/web/tcp/http"]
                .last()
                .map(String::as_str),
            Some("meta l4proto tcp dnat to 10.42.0.5:8080")
        );
        p.endpoints.clear();
        let r = render(&[p], "10.42.0.0/16");
        assert_eq!(
            r.maps[NO_ENDPOINT_SERVICES]["10.250.1.10 . tcp . 80"],
            "goto reject-chain"
        );
    }

    #[test]
    fn local_policy_without_local_endpoints_drops() {
        let mut p = port(&[("10.42.0.6", false)]);
        p.internal_local = true;
        let r = render(&[p], "10.42.0.0/16");
        assert_eq!(
            r.chains["svc-default/web/tcp/http"]
                .last()
                .map(String::as_str),
            Some("drop")
        );
    }

    #[test]
    fn diff_touches_only_what_changed() {
        let a = render(
            &[port(&[("10.42.0.5", true), ("10.42.0.6", true)])],
            "10.42.0.0/16",
        );
        let b = render(&[port(&[("10.42.0.5", true)])], "10.42.0.0/16");
        let d = diff_script("t", &a, &b);
        assert!(
            d.starts_with("flush chain ip t svc-default/web/tcp/http\n"),
            "{d}"
        );
        assert!(!d.contains("ext-"), "the NodePort chain is untouched: {d}");
        assert!(!d.contains("element"), "map entries are unchanged: {d}");
        // Affinity: endpoint chains and sets come and go with endpoints.
        let (mut pa, mut pb) = (
            port(&[("10.42.0.5", true), ("10.42.0.6", true)]),
            port(&[("10.42.0.5", true)]),
        );
        pa.affinity_timeout = Some(60);
        pb.affinity_timeout = Some(60);
        let (c, e) = (render(&[pa], "10.42.0.0/16"), render(&[pb], "10.42.0.0/16"));
        let d = diff_script("t", &c, &e);
        assert!(d.contains("delete chain ip t sep-default/web/tcp/http/10.42.0.6/8080\n"));
        assert!(d.contains("delete set ip t affinity-default/web/tcp/http/10.42.0.6/8080\n"));
        assert!(
            !d.contains("chain ip t sep-default/web/tcp/http/10.42.0.5/8080")
                && !d.contains("set ip t affinity-default/web/tcp/http/10.42.0.5/8080"),
            "the kept endpoint is untouched: {d}"
        );
        assert_eq!(diff_script("t", &b, &b), "");
    }
}
