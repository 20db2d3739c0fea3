//! The pod network's CNI configuration: one conflist (bridge with host-local IPAM over
//! the node's pod CIDR, then portmap for hostPort; loopback is set up by the runtime)
//! written where the runtime's CRI plugin reads it.

use std::path::{Path, PathBuf};

use serde_json::json;

/// Name of the conflist file (the CRI plugin takes the first file in the directory).
pub const CONFLIST_NAME: &str = "10-ferrokube.conflist";

/// Pod CIDR used until the node has a `spec.podCIDR`.
pub const FALLBACK_POD_CIDR: &str = "10.42.0.0/24";

/// The conflist for a bridge `bridge` over `pod_cidr`; host-local keeps its
/// allocations under `ipam_dir`.
pub fn render_conflist(bridge: &str, pod_cidr: &str, ipam_dir: &Path) -> serde_json::Value {
    json!({
        "cniVersion": "1.0.0",
        "name": "ferrokube",
        "plugins": [
            {
                "type": "bridge",
                "bridge": bridge,
                "isGateway": true,
                "ipMasq": true,
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
    })
}

/// Writes the conflist into `conf_dir` if its content changed; returns its path.
pub fn write_conflist(
    conf_dir: &Path,
    bridge: &str,
    pod_cidr: &str,
    ipam_dir: &Path,
) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(conf_dir)?;
    std::fs::create_dir_all(ipam_dir)?;
    let path = conf_dir.join(CONFLIST_NAME);
    let body = serde_json::to_string_pretty(&render_conflist(bridge, pod_cidr, ipam_dir))?;
    if std::fs::read_to_string(&path).ok().as_deref() != Some(body.as_str()) {
        let tmp = conf_dir.join(format!(".{CONFLIST_NAME}.tmp"));
        std::fs::write(&tmp, &body)?;
        std::fs::rename(&tmp, &path)?;
        tracing::info!(path = %path.display(), %pod_cidr, %bridge, "wrote CNI config");
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflist_uses_the_pod_cidr_and_bridge() {
        let v = render_conflist("ferrokube0", "10.42.3.0/24", Path::new("/d/ipam"));
        assert_eq!(v["plugins"][0]["bridge"], "ferrokube0");
        assert_eq!(
            v["plugins"][0]["ipam"]["ranges"][0][0]["subnet"],
            "10.42.3.0/24"
        );
        assert_eq!(v["plugins"][1]["type"], "portmap");
    }

    #[test]
    fn write_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let p = write_conflist(dir.path(), "b0", "10.42.0.0/24", &dir.path().join("ipam")).unwrap();
        let first = std::fs::metadata(&p).unwrap().modified().unwrap();
        write_conflist(dir.path(), "b0", "10.42.0.0/24", &dir.path().join("ipam")).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().modified().unwrap(), first);
    }
}
