//! A node's identity on its machine, kept in its data dir as k3s keeps it
//! under `/etc/rancher/node`: the node password it sends when it asks for
//! its credentials (made once: 32 random hex digits, file
//! `DATA_DIR/agent/node-password`, 0600), and the id `--with-node-id`
//! appends to its name (made once: 8 random hex digits,
//! `DATA_DIR/agent/node-id`).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::cli::{NodeFlags, Taint};

fn agent_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("agent")
}

/// The content of `path`, or `make()` written to it (mode 0600) first.
fn kept(path: &Path, make: impl FnOnce() -> String) -> anyhow::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(s) if !s.trim().is_empty() => return Ok(s.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let value = make();
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("{value}\n"))
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(value)
}

fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

/// The node's password, made at the first start.
pub(crate) fn node_password(data_dir: &Path) -> anyhow::Result<String> {
    kept(&agent_dir(data_dir).join("node-password"), || {
        random_hex(16)
    })
}

/// The node's name: `--node-name` or the host name, with `-<id>` appended
/// under `--with-node-id`.
pub(crate) fn node_name(
    given: Option<&str>,
    flags: &NodeFlags,
    data_dir: &Path,
) -> anyhow::Result<String> {
    let name = given.map_or_else(crate::server::hostname, str::to_string);
    if !flags.with_node_id {
        return Ok(name);
    }
    let id = kept(&agent_dir(data_dir).join("node-id"), || random_hex(4))?;
    Ok(format!("{name}-{id}"))
}

/// The node's registration flags in the node agent's configuration.
pub(crate) fn apply(flags: &NodeFlags, kubelet: &mut ferrokube_kubelet::KubeletConfig) {
    kubelet.node_ip = flags.node_ip.first().copied();
    kubelet.secondary_node_ips = flags.node_ip.iter().skip(1).copied().collect();
    kubelet.node_external_ips = flags.node_external_ip.clone();
    kubelet.node_labels = flags.node_label.iter().cloned().collect();
    kubelet.register_with_taints = flags
        .node_taint
        .iter()
        .map(
            |Taint { key, value, effect }| k8s_openapi::api::core::v1::Taint {
                key: key.clone(),
                value: (!value.is_empty()).then(|| value.clone()),
                effect: effect.clone(),
                time_added: None,
            },
        )
        .collect();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_and_the_id_are_made_once_and_kept() {
        let dir = tempfile::tempdir().expect("dir");
        let p = node_password(dir.path()).expect("password");
        assert_eq!(p.len(), 32);
        assert_eq!(node_password(dir.path()).expect("again"), p);
        let mode = std::fs::metadata(dir.path().join("agent/node-password"))
            .expect("file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let flags = NodeFlags {
            with_node_id: true,
            ..Default::default()
        };
        let a = node_name(Some("host"), &flags, dir.path()).expect("name");
        assert!(
            a.starts_with("host-") && a.len() == "host-".len() + 8,
            "{a}"
        );
        assert_eq!(
            node_name(Some("host"), &flags, dir.path()).expect("again"),
            a
        );
        assert_eq!(
            node_name(Some("host"), &NodeFlags::default(), dir.path()).expect("plain"),
            "host"
        );
    }
}
