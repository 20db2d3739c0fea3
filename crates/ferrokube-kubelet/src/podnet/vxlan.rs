//! The VXLAN backend: this node's VTEP, a `vxlan` device named and numbered as
//! flannel's (`flannel.1`, VNI 1, UDP port 8472, no learning: every entry is set from
//! the Nodes), its address the network address of the node's pod CIDR (`/32`), its
//! MTU the underlay's less the 50 bytes of encapsulation. For each peer the keeper
//! sets a neighbour entry (the peer's VTEP address → its VTEP MAC) and a forwarding
//! entry (that MAC → the peer's address); the route lives in `routes`.

use std::net::{IpAddr, Ipv4Addr};

use anyhow::Context as _;

use super::{run_tool, Peer};

/// The device's name (flannel's, so that tools and docs that know flannel apply).
pub const DEVICE: &str = "flannel.1";
/// The VXLAN network identifier.
pub const VNI: u32 = 1;
/// The UDP port (flannel's and the Linux default for VXLAN, not IANA's 4789).
pub const PORT: u16 = 8472;
/// Bytes the encapsulation adds (outer IPv4 20, UDP 8, VXLAN 8, inner Ethernet 14).
pub const OVERHEAD: u32 = 50;

/// This node's VTEP once made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vtep {
    /// The device's name.
    pub name: String,
    /// Its MAC, published in the node's backend data.
    pub mac: String,
}

/// Whether `mac` is six hex pairs separated by colons.
pub(crate) fn valid_mac(mac: &str) -> bool {
    let parts: Vec<&str> = mac.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// The interface holding `ip` and its MTU, from `ip -j addr show` output.
pub(crate) fn underlay(addrs_json: &str, ip: Ipv4Addr) -> Option<(String, u32)> {
    let items: Vec<serde_json::Value> = serde_json::from_str(addrs_json).ok()?;
    let ip = ip.to_string();
    items.iter().find_map(|link| {
        let has = link
            .get("addr_info")?
            .as_array()?
            .iter()
            .any(|a| a.get("local").and_then(|l| l.as_str()) == Some(ip.as_str()));
        has.then(|| {
            Some((
                link.get("ifname")?.as_str()?.to_string(),
                u32::try_from(link.get("mtu")?.as_u64()?).ok()?,
            ))
        })?
    })
}

fn addrs_json() -> Option<String> {
    let out = std::process::Command::new("ip")
        .args(["-j", "addr", "show"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The pods' MTU over the overlay: the MTU of the interface holding `node_ip` less
/// the encapsulation; `None` when that interface is not found.
pub fn pod_mtu(node_ip: IpAddr) -> Option<u32> {
    let IpAddr::V4(ip) = node_ip else {
        return None;
    };
    underlay(&addrs_json()?, ip).map(|(_, mtu)| mtu.saturating_sub(OVERHEAD))
}

/// Whether `ip -j -d link show` output describes our device for `local`.
pub(crate) fn device_matches(link_json: &str, local: Ipv4Addr) -> bool {
    let Ok(items) = serde_json::from_str::<Vec<serde_json::Value>>(link_json) else {
        return false;
    };
    let Some(info) = items.first().and_then(|l| l.get("linkinfo")) else {
        return false;
    };
    let data = &info["info_data"];
    info["info_kind"] == "vxlan"
        && data["id"] == VNI
        && data["port"] == PORT
        && data["local"] == local.to_string()
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// Makes (or keeps, when it already fits) the VTEP for this node at `local`, addressed
/// with `pod_net` (its pod CIDR's network address).
pub(crate) async fn ensure_device(local: Ipv4Addr, pod_net: Ipv4Addr) -> anyhow::Result<Vtep> {
    let shown = run_tool("ip", &strings(&["-j", "-d", "link", "show", DEVICE]))
        .await
        .unwrap_or_default();
    if !shown.is_empty() && !device_matches(&shown, local) {
        tracing::info!(
            device = DEVICE,
            "pod network: replacing a VXLAN device of other settings"
        );
        run_tool("ip", &strings(&["link", "del", DEVICE])).await?;
    }
    if shown.is_empty() || !device_matches(&shown, local) {
        let (dev, mtu) = underlay(&addrs_json().unwrap_or_default(), local)
            .with_context(|| format!("no interface holds the node's address {local}"))?;
        let (vni, port, mtu) = (
            VNI.to_string(),
            PORT.to_string(),
            mtu.saturating_sub(OVERHEAD),
        );
        let local = local.to_string();
        run_tool(
            "ip",
            &strings(&[
                "link",
                "add",
                DEVICE,
                "type",
                "vxlan",
                "id",
                &vni,
                "local",
                &local,
                "dev",
                &dev,
                "dstport",
                &port,
                "nolearning",
            ]),
        )
        .await?;
        run_tool(
            "ip",
            &strings(&["link", "set", DEVICE, "mtu", &mtu.to_string()]),
        )
        .await?;
        tracing::info!(device = DEVICE, %local, underlay = %dev, mtu, "pod network: made the VXLAN device");
    }
    run_tool(
        "ip",
        &strings(&["addr", "replace", &format!("{pod_net}/32"), "dev", DEVICE]),
    )
    .await?;
    run_tool("ip", &strings(&["link", "set", DEVICE, "up"])).await?;
    let shown = run_tool("ip", &strings(&["-j", "link", "show", DEVICE])).await?;
    let mac = serde_json::from_str::<Vec<serde_json::Value>>(&shown)
        .ok()
        .and_then(|l| Some(l.first()?.get("address")?.as_str()?.to_string()))
        .filter(|m| valid_mac(m))
        .with_context(|| format!("reading the MAC of {DEVICE}"))?;
    Ok(Vtep {
        name: DEVICE.to_string(),
        mac,
    })
}

/// A neighbour (VTEP address → MAC) or forwarding (MAC → peer address) entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub key: String,
    pub value: String,
}

/// The permanent neighbour entries in `ip -j neigh show dev D` output.
pub(crate) fn parse_neigh(json: &str) -> Vec<Entry> {
    parse_entries(json, "dst", "lladdr")
}

/// The forwarding entries with a remote address in `bridge -j fdb show dev D` output.
pub(crate) fn parse_fdb(json: &str) -> Vec<Entry> {
    parse_entries(json, "mac", "dst")
}

/// The items of `ip -j`/`bridge -j` output that have both fields, as entries
/// (lowercased, so MAC addresses compare whatever case a tool prints).
fn parse_entries(json: &str, key: &str, value: &str) -> Vec<Entry> {
    let Ok(items) = serde_json::from_str::<Vec<serde_json::Value>>(json) else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|n| {
            Some(Entry {
                key: n.get(key)?.as_str()?.to_ascii_lowercase(),
                value: n.get(value)?.as_str()?.to_ascii_lowercase(),
            })
        })
        .collect()
}

/// The neighbour and forwarding entries the peers need.
pub(crate) fn desired(peers: &[Peer]) -> (Vec<Entry>, Vec<Entry>) {
    peers
        .iter()
        .filter_map(|p| {
            let mac = p.vtep_mac.clone()?;
            Some((
                Entry {
                    key: p.pod_net.to_string(),
                    value: mac.clone(),
                },
                Entry {
                    key: mac,
                    value: p.ip.to_string(),
                },
            ))
        })
        .unzip()
}

/// The commands that turn the device's entries into the wanted ones.
pub(crate) fn plan(
    dev: &str,
    neigh: (&[Entry], &[Entry]),
    fdb: (&[Entry], &[Entry]),
) -> Vec<(&'static str, Vec<String>)> {
    let mut cmds = Vec::new();
    let (have, want) = neigh;
    for w in want.iter().filter(|w| !have.contains(w)) {
        cmds.push((
            "ip",
            strings(&[
                "neigh",
                "replace",
                &w.key,
                "lladdr",
                &w.value,
                "dev",
                dev,
                "nud",
                "permanent",
            ]),
        ));
    }
    for h in have.iter().filter(|h| !want.iter().any(|w| w.key == h.key)) {
        cmds.push(("ip", strings(&["neigh", "del", &h.key, "dev", dev])));
    }
    let (have, want) = fdb;
    for w in want.iter().filter(|w| !have.contains(w)) {
        cmds.push((
            "bridge",
            strings(&[
                "fdb",
                "replace",
                &w.key,
                "dev",
                dev,
                "dst",
                &w.value,
                "self",
                "permanent",
            ]),
        ));
    }
    for h in have.iter().filter(|h| !want.contains(h)) {
        cmds.push((
            "bridge",
            strings(&["fdb", "del", &h.key, "dev", dev, "dst", &h.value, "self"]),
        ));
    }
    cmds
}

/// Brings the device's neighbour and forwarding entries in line with `peers`.
pub(crate) async fn sync_entries(vtep: &Vtep, peers: &[Peer]) -> anyhow::Result<()> {
    let dev = vtep.name.as_str();
    let neigh = parse_neigh(
        &run_tool(
            "ip",
            &strings(&["-j", "neigh", "show", "dev", dev, "nud", "permanent"]),
        )
        .await?,
    );
    let fdb = parse_fdb(&run_tool("bridge", &strings(&["-j", "fdb", "show", "dev", dev])).await?);
    let (want_neigh, want_fdb) = desired(peers);
    let plan = plan(dev, (&neigh, &want_neigh), (&fdb, &want_fdb));
    if !plan.is_empty() {
        tracing::info!(
            changes = plan.len(),
            peers = peers.len(),
            "pod network: updating VXLAN entries"
        );
        let failed = super::apply(&plan).await;
        if failed > 0 {
            anyhow::bail!("{failed} of {} VXLAN entry changes failed", plan.len());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_are_checked() {
        assert!(valid_mac("2e:f7:d3:70:96:48"));
        assert!(!valid_mac("2e:f7:d3:70:96"));
        assert!(!valid_mac("2e:f7:d3:70:96:4g"));
        assert!(!valid_mac("2e:f7:d3:70:96:48 dev lo"));
    }

    #[test]
    fn the_underlay_is_the_interface_with_the_node_address() {
        let json = r#"[{"ifname":"lo","mtu":65536,"addr_info":[{"family":"inet","local":"127.0.0.1"}]},
                       {"ifname":"eth0","mtu":1500,"addr_info":[{"family":"inet","local":"10.0.0.2"}]}]"#;
        assert_eq!(
            underlay(json, Ipv4Addr::new(10, 0, 0, 2)),
            Some(("eth0".into(), 1500))
        );
        assert_eq!(underlay(json, Ipv4Addr::new(10, 0, 0, 3)), None);
    }

    #[test]
    fn an_existing_device_is_kept_only_with_our_settings() {
        let ours = r#"[{"ifname":"flannel.1","linkinfo":{"info_kind":"vxlan","info_data":{"id":1,"local":"10.0.0.2","port":8472}}}]"#;
        assert!(device_matches(ours, Ipv4Addr::new(10, 0, 0, 2)));
        assert!(!device_matches(ours, Ipv4Addr::new(10, 0, 0, 3)));
        let other = ours.replace("8472", "4789");
        assert!(!device_matches(&other, Ipv4Addr::new(10, 0, 0, 2)));
    }

    #[test]
    fn entries_follow_the_peers() {
        let peers = [Peer {
            name: "b".into(),
            pod_net: Ipv4Addr::new(10, 42, 1, 0),
            pod_prefix: 24,
            ip: Ipv4Addr::new(10, 0, 0, 2),
            vtep_mac: Some("aa:bb:cc:dd:ee:01".into()),
        }];
        let (want_n, want_f) = desired(&peers);
        // A node that left (10.42.9.0) and a peer whose MAC changed.
        let have_n = parse_neigh(
            r#"[{"dst":"10.42.9.0","lladdr":"aa:bb:cc:dd:ee:09","state":["PERMANENT"]}]"#,
        );
        let have_f = parse_fdb(
            r#"[{"mac":"aa:bb:cc:dd:ee:09","dst":"10.0.0.9","flags":["self"],"state":"permanent"},
                {"mac":"33:33:00:00:00:01","flags":["self"],"state":"permanent"}]"#,
        );
        let cmds: Vec<String> = plan(DEVICE, (&have_n, &want_n), (&have_f, &want_f))
            .iter()
            .map(|(t, a)| format!("{t} {}", a.join(" ")))
            .collect();
        assert_eq!(
            cmds,
            [
                "ip neigh replace 10.42.1.0 lladdr aa:bb:cc:dd:ee:01 dev flannel.1 nud permanent",
                "ip neigh del 10.42.9.0 dev flannel.1",
                "bridge fdb replace aa:bb:cc:dd:ee:01 dev flannel.1 dst 10.0.0.2 self permanent",
                "bridge fdb del aa:bb:cc:dd:ee:09 dev flannel.1 dst 10.0.0.9 self",
            ]
        );
        assert!(plan(DEVICE, (&want_n, &want_n), (&want_f, &want_f)).is_empty());
    }
}
