//! The keeper's routes, in the main table with protocol [`ROUTE_PROTO`]: read with
//! `ip -j route show proto N`, compared with the wanted ones, and changed with
//! `ip route replace` / `ip route del`; routes of any other protocol are never touched.

use std::net::Ipv4Addr;

use super::{Peer, ROUTE_PROTO};

/// A route to a node's pods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Route {
    /// The pod CIDR, `a.b.c.d/n`.
    pub dst: String,
    /// The next hop.
    pub via: Ipv4Addr,
    /// The device, for routes through the overlay (`onlink`: the next hop is the peer's
    /// VTEP address, not on any local subnet).
    pub dev: Option<String>,
}

/// host-gw: each peer's pod CIDR via its address.
pub(crate) fn host_gw(peers: &[Peer]) -> Vec<Route> {
    peers
        .iter()
        .map(|p| Route {
            dst: p.cidr(),
            via: p.ip,
            dev: None,
        })
        .collect()
}

/// VXLAN: each peer's pod CIDR via its VTEP address (its pod CIDR's network address,
/// as flannel does) on `dev`.
pub(crate) fn vxlan(peers: &[Peer], dev: &str) -> Vec<Route> {
    peers
        .iter()
        .map(|p| Route {
            dst: p.cidr(),
            via: p.pod_net,
            dev: Some(dev.to_string()),
        })
        .collect()
}

/// The destinations of routes in `ip -j route show` output that are not the keeper's
/// (another protocol): the keeper never replaces them (`ip route replace` would, the
/// node's own bridge route among them).
pub(crate) fn foreign_dsts(json: &str) -> Vec<String> {
    let Ok(serde_json::Value::Array(items)) = serde_json::from_str(json) else {
        return Vec::new();
    };
    let ours = ROUTE_PROTO.to_string();
    items
        .iter()
        .filter(|r| r.get("protocol").and_then(|p| p.as_str()) != Some(ours.as_str()))
        .filter_map(|r| r.get("dst")?.as_str().map(str::to_string))
        .collect()
}

/// The routes in `ip -j route show` output (those without a gateway are skipped).
pub(crate) fn parse_routes(json: &str) -> Vec<Route> {
    let Ok(serde_json::Value::Array(items)) = serde_json::from_str(json) else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|r| {
            let dst = r.get("dst")?.as_str()?;
            // `ip` prints a /32 without its length.
            let dst = if dst.contains('/') {
                dst.to_string()
            } else {
                format!("{dst}/32")
            };
            Some(Route {
                dst,
                via: r.get("gateway")?.as_str()?.parse().ok()?,
                dev: r.get("dev").and_then(|d| d.as_str()).map(str::to_string),
            })
        })
        .collect()
}

/// Whether the route `have` is `want` (a host-gw route may leave by any device).
fn same(have: &Route, want: &Route) -> bool {
    have.dst == want.dst && have.via == want.via && (want.dev.is_none() || have.dev == want.dev)
}

/// The `ip` commands that turn the keeper's routes `current` into `desired`.
pub(crate) fn plan(current: &[Route], desired: &[Route]) -> Vec<(&'static str, Vec<String>)> {
    let proto = ROUTE_PROTO.to_string();
    let mut cmds = Vec::new();
    for want in desired {
        if current.iter().any(|have| same(have, want)) {
            continue;
        }
        let mut args: Vec<String> = ["route", "replace", &want.dst, "via", &want.via.to_string()]
            .map(String::from)
            .to_vec();
        if let Some(dev) = &want.dev {
            args.extend(["dev".into(), dev.clone(), "onlink".into()]);
        }
        args.extend(["proto".into(), proto.clone()]);
        cmds.push(("ip", args));
    }
    for have in current {
        if !desired.iter().any(|want| want.dst == have.dst) {
            cmds.push((
                "ip",
                ["route", "del", &have.dst, "proto", &proto]
                    .map(String::from)
                    .to_vec(),
            ));
        }
    }
    cmds
}

/// The wanted routes but those whose destination another route of the machine's
/// already has (a pod CIDR that is local, or routed by someone else).
pub(crate) fn without_foreign(desired: &[Route], foreign: &[String]) -> Vec<Route> {
    desired
        .iter()
        .filter(|r| {
            let taken = foreign.contains(&r.dst);
            if taken {
                tracing::debug!(dst = %r.dst, "pod network: another route has this destination; left alone");
            }
            !taken
        })
        .cloned()
        .collect()
}

/// Brings the keeper's routes in line with `desired`.
pub(crate) async fn sync(desired: &[Route]) -> anyhow::Result<()> {
    let all = super::run_tool("ip", &["-j", "route", "show"].map(String::from)).await?;
    let shown = super::run_tool(
        "ip",
        &["-j", "route", "show", "proto", &ROUTE_PROTO.to_string()].map(String::from),
    )
    .await?;
    let desired = without_foreign(desired, &foreign_dsts(&all));
    let plan = plan(&parse_routes(&shown), &desired);
    if !plan.is_empty() {
        tracing::info!(
            changes = plan.len(),
            routes = desired.len(),
            "pod network: updating routes to other nodes' pods"
        );
        let failed = super::apply(&plan).await;
        if failed > 0 {
            anyhow::bail!("{failed} of {} route changes failed", plan.len());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(name: &str, net: [u8; 4], ip: [u8; 4]) -> Peer {
        Peer {
            name: name.into(),
            pod_net: net.into(),
            pod_prefix: 24,
            ip: ip.into(),
            vtep_mac: None,
        }
    }

    fn strings(cmds: &[(&str, Vec<String>)]) -> Vec<String> {
        cmds.iter()
            .map(|(t, a)| format!("{t} {}", a.join(" ")))
            .collect()
    }

    #[test]
    fn host_gw_adds_missing_fixes_wrong_and_removes_gone_routes() {
        let peers = [
            peer("b", [10, 42, 1, 0], [10, 0, 0, 2]),
            peer("c", [10, 42, 2, 0], [10, 0, 0, 3]),
            peer("d", [10, 42, 3, 0], [10, 0, 0, 4]),
        ];
        let current = parse_routes(
            r#"[{"dst":"10.42.1.0/24","gateway":"10.0.0.2","dev":"eth0","flags":[]},
                {"dst":"10.42.2.0/24","gateway":"10.0.0.9","dev":"eth0","flags":[]},
                {"dst":"10.42.7.0/24","gateway":"10.0.0.8","dev":"eth0","flags":[]}]"#,
        );
        assert_eq!(
            strings(&plan(&current, &host_gw(&peers))),
            [
                "ip route replace 10.42.2.0/24 via 10.0.0.3 proto 151",
                "ip route replace 10.42.3.0/24 via 10.0.0.4 proto 151",
                "ip route del 10.42.7.0/24 proto 151",
            ]
        );
        // In line: nothing to do.
        let now = parse_routes(
            r#"[{"dst":"10.42.1.0/24","gateway":"10.0.0.2","dev":"eth0"},
                {"dst":"10.42.2.0/24","gateway":"10.0.0.3","dev":"eth0"},
                {"dst":"10.42.3.0/24","gateway":"10.0.0.4","dev":"eth0"}]"#,
        );
        assert!(plan(&now, &host_gw(&peers)).is_empty());
    }

    #[test]
    fn vxlan_routes_go_onlink_through_the_device() {
        let peers = [peer("b", [10, 42, 1, 0], [10, 0, 0, 2])];
        let desired = vxlan(&peers, "flannel.1");
        // A host-gw route of the same pod CIDR is replaced.
        let current = parse_routes(r#"[{"dst":"10.42.1.0/24","gateway":"10.0.0.2","dev":"eth0"}]"#);
        assert_eq!(
            strings(&plan(&current, &desired)),
            ["ip route replace 10.42.1.0/24 via 10.42.1.0 dev flannel.1 onlink proto 151"]
        );
        let current = parse_routes(
            r#"[{"dst":"10.42.1.0/24","gateway":"10.42.1.0","dev":"flannel.1","flags":["onlink"]}]"#,
        );
        assert!(plan(&current, &desired).is_empty());
    }

    #[test]
    fn routes_of_others_are_never_replaced() {
        let peers = [
            peer("b", [10, 42, 1, 0], [10, 0, 0, 2]),
            peer("c", [10, 42, 2, 0], [10, 0, 0, 3]),
        ];
        let all = r#"[{"dst":"10.42.1.0/24","dev":"ferrokube1","protocol":"kernel","scope":"link"},
                      {"dst":"10.42.2.0/24","gateway":"10.0.0.3","dev":"eth0","protocol":"151"}]"#;
        let foreign = foreign_dsts(all);
        assert_eq!(foreign, ["10.42.1.0/24"]);
        let desired = without_foreign(&host_gw(&peers), &foreign);
        assert_eq!(desired.len(), 1);
        assert_eq!(desired[0].dst, "10.42.2.0/24");
        // Our own route to a destination someone else now routes is removed.
        let ours = parse_routes(r#"[{"dst":"10.42.1.0/24","gateway":"10.0.0.2","dev":"eth0"}]"#);
        let cmds: Vec<String> = plan(&ours, &desired)
            .iter()
            .map(|(t, a)| format!("{t} {}", a.join(" ")))
            .collect();
        assert!(
            cmds.contains(&"ip route del 10.42.1.0/24 proto 151".to_string()),
            "{cmds:?}"
        );
    }

    #[test]
    fn bad_ip_output_is_no_routes() {
        assert!(parse_routes("not json").is_empty());
        assert!(parse_routes(r#"[{"dst":"default","dev":"eth0"}]"#).is_empty());
        assert_eq!(
            parse_routes(r#"[{"dst":"10.1.2.3","gateway":"10.0.0.1"}]"#)[0].dst,
            "10.1.2.3/32"
        );
    }
}
