//! The pod network: the CNI configuration (one conflist: bridge with host-local IPAM
//! over the node's pod CIDR, then portmap for hostPort; loopback is set up by the
//! runtime) written where the runtime's CRI plugin reads it, and the node's one
//! masquerade rule for pods' traffic leaving the cluster's pod network (traffic to
//! pods on other nodes keeps the pod's own address, as flannel's rules do).
//!
//! The bridge plugin can masquerade by itself (`ipMasq`), but it does so with a chain of
//! iptables rules per pod, each added under the xtables lock while sandboxes start: with
//! 100 pods starting at once that lock serialises them. One nftables rule per node, set
//! when the pod CIDR is known, does the same for every pod.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::json;

/// Name of the conflist file (the CRI plugin takes the first file in the directory).
pub const CONFLIST_NAME: &str = "10-ferrokube.conflist";

/// The node's pod network as CNI sees it.
#[derive(Debug, Clone, Copy)]
pub struct Network<'a> {
    /// The pods' bridge.
    pub bridge: &'a str,
    /// The node's pod CIDR (`spec.podCIDR`).
    pub pod_cidr: &'a str,
    /// The MTU of the bridge and pods' interfaces, when smaller than the default
    /// (an overlay's encapsulation takes its share).
    pub mtu: Option<u32>,
}

/// The conflist for `net`; host-local keeps its allocations under `ipam_dir`.
pub fn render_conflist(net: &Network<'_>, ipam_dir: &Path) -> serde_json::Value {
    let Network {
        bridge,
        pod_cidr,
        mtu,
    } = *net;
    let mut conf = json!({
        "cniVersion": "1.0.0",
        "name": "ferrokube",
        "plugins": [
            {
                "type": "bridge",
                "bridge": bridge,
                "isGateway": true,
                "ipMasq": false,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "dataDir": ipam_dir.display().to_string(),
                    "ranges": [[{ "subnet": pod_cidr }]],
                    "routes": [{ "dst": "0.0.0.0/0" }]
                }
            },
            {
                "type": "portmap",
                "capabilities": { "portMappings": true },
                "snat": true
            }
        ]
    });
    if let Some(mtu) = mtu {
        conf["plugins"][0]["mtu"] = json!(mtu);
    }
    conf
}

/// Writes the conflist of `net` into `conf_dir` if its content changed; returns its
/// path.
pub fn write_conflist(
    conf_dir: &Path,
    net: &Network<'_>,
    ipam_dir: &Path,
) -> anyhow::Result<PathBuf> {
    let (bridge, pod_cidr) = (net.bridge, net.pod_cidr);
    std::fs::create_dir_all(conf_dir)?;
    std::fs::create_dir_all(ipam_dir)?;
    let path = conf_dir.join(CONFLIST_NAME);
    let body = serde_json::to_string_pretty(&render_conflist(net, ipam_dir))?;
    if std::fs::read_to_string(&path).ok().as_deref() != Some(body.as_str()) {
        let tmp = conf_dir.join(format!(".{CONFLIST_NAME}.tmp"));
        std::fs::write(&tmp, &body)?;
        std::fs::rename(&tmp, &path)?;
        tracing::info!(path = %path.display(), %pod_cidr, %bridge, "wrote CNI config");
    }
    Ok(path)
}

/// The nftables table (family `ip`) that holds the masquerade rule of pods on `bridge`.
pub fn masquerade_table(bridge: &str) -> String {
    format!("ferrokube-pods-{bridge}")
}

/// The nftables script that (re)creates the masquerade table for `pod_cidr` in one
/// transaction: traffic from a pod to anywhere but the cluster's pod network
/// `cluster_cidr` (which holds `pod_cidr`) and multicast leaves with the node's
/// address; traffic to pods, on this node or another, keeps the pod's own address
/// (flannel's masquerade rules do the same with the cluster CIDR).
pub fn masquerade_script(bridge: &str, pod_cidr: &str, cluster_cidr: &str) -> String {
    let table = masquerade_table(bridge);
    format!(
        "add table ip {table}\n\
         delete table ip {table}\n\
         table ip {table} {{\n\
         \tchain postrouting {{\n\
         \t\ttype nat hook postrouting priority srcnat; policy accept;\n\
         \t\tip saddr {pod_cidr} ip daddr != {{ {cluster_cidr}, 224.0.0.0/4 }} masquerade\n\
         \t}}\n\
         }}\n"
    )
}

/// Sets the node's masquerade rule for pods on `bridge` in `pod_cidr`, exempting
/// traffic to `cluster_cidr`.
pub async fn set_masquerade(
    bridge: &str,
    pod_cidr: &str,
    cluster_cidr: &str,
) -> anyhow::Result<()> {
    ferrokube_nft::Nft::default()
        .apply(&masquerade_script(bridge, pod_cidr, cluster_cidr))
        .await
        .with_context(|| format!("setting the masquerade rule of pods on {bridge}"))
}

/// Removes what the pod network left on the node for `bridge`: the bridge and the
/// masquerade table (errors ignored: either may be gone already). For tests and tools
/// that clean up after a node; a running node keeps both.
pub fn remove_pod_network(bridge: &str) {
    let _ = std::process::Command::new("ip")
        .args(["link", "del", bridge])
        .output();
    let _ = std::process::Command::new("nft")
        .args(["delete", "table", "ip", &masquerade_table(bridge)])
        .output();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflist_uses_the_pod_cidr_and_bridge() {
        let net = Network {
            bridge: "ferrokube0",
            pod_cidr: "10.42.3.0/24",
            mtu: None,
        };
        let v = render_conflist(&net, Path::new("/d/ipam"));
        assert_eq!(v["plugins"][0]["bridge"], "ferrokube0");
        assert_eq!(
            v["plugins"][0]["ipam"]["ranges"][0][0]["subnet"],
            "10.42.3.0/24"
        );
        assert_eq!(v["plugins"][1]["type"], "portmap");
        assert_eq!(v["plugins"][0]["ipMasq"], false);
        assert!(v["plugins"][0].get("mtu").is_none());
    }

    #[test]
    fn conflist_carries_an_overlay_mtu() {
        let net = Network {
            bridge: "ferrokube0",
            pod_cidr: "10.42.3.0/24",
            mtu: Some(1450),
        };
        let v = render_conflist(&net, Path::new("/d/ipam"));
        assert_eq!(v["plugins"][0]["mtu"], 1450);
    }

    #[test]
    fn masquerade_script_exempts_the_cluster_cidr() {
        let s = masquerade_script("b0", "10.42.3.0/24", "10.42.0.0/16");
        assert!(
            s.starts_with("add table ip ferrokube-pods-b0\ndelete table ip ferrokube-pods-b0\n")
        );
        assert!(s.contains(
            "ip saddr 10.42.3.0/24 ip daddr != { 10.42.0.0/16, 224.0.0.0/4 } masquerade"
        ));
    }

    #[test]
    fn write_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let net = Network {
            bridge: "b0",
            pod_cidr: "10.42.0.0/24",
            mtu: None,
        };
        let p = write_conflist(dir.path(), &net, &dir.path().join("ipam")).unwrap();
        let first = std::fs::metadata(&p).unwrap().modified().unwrap();
        write_conflist(dir.path(), &net, &dir.path().join("ipam")).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().modified().unwrap(), first);
    }
}
