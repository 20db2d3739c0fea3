//! Registry mirrors in k3s' `registries.yaml` format, turned into containerd's
//! per-registry `hosts.toml` files (the CRI plugin's `config_path`), so that an image
//! named `busybox` can be pulled from a mirror such as a registry on loopback.
//!
//! ```yaml
//! mirrors:
//!   docker.io:
//!     endpoint: ["http://127.0.0.1:5000"]
//! configs:
//!   "127.0.0.1:5000":
//!     tls: {insecure_skip_verify: true}
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context as _;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Registries {
    #[serde(default)]
    pub mirrors: BTreeMap<String, Mirror>,
    #[serde(default)]
    pub configs: BTreeMap<String, RegistryConfig>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Mirror {
    #[serde(default)]
    pub endpoint: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RegistryConfig {
    #[serde(default)]
    pub tls: Option<Tls>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Tls {
    #[serde(default)]
    pub insecure_skip_verify: bool,
    #[serde(default)]
    pub ca_file: Option<String>,
}

pub(crate) fn parse(text: &str) -> anyhow::Result<Registries> {
    serde_saphyr::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))
}

/// The registry's own address, as containerd names it (`docker.io` is served by
/// `registry-1.docker.io`).
fn upstream(registry: &str) -> String {
    match registry {
        "docker.io" => "https://registry-1.docker.io".into(),
        other => format!("https://{other}"),
    }
}

fn host_of(endpoint: &str) -> &str {
    let rest = endpoint.split_once("://").map(|x| x.1).unwrap_or(endpoint);
    rest.split('/').next().unwrap_or(rest)
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The `hosts.toml` for one mirrored registry.
pub(crate) fn hosts_toml(
    registry: &str,
    mirror: &Mirror,
    configs: &BTreeMap<String, RegistryConfig>,
) -> String {
    let mut out = String::from("# Written by ferrokube from registries.yaml.\n");
    if registry != "*" {
        out.push_str(&format!("server = {}\n", quote(&upstream(registry))));
    }
    for ep in &mirror.endpoint {
        let ep = if ep.contains("://") {
            ep.clone()
        } else {
            format!("https://{ep}")
        };
        out.push_str(&format!(
            "\n[host.{}]\n  capabilities = [\"pull\", \"resolve\"]\n",
            quote(&ep)
        ));
        if let Some(tls) = configs.get(host_of(&ep)).and_then(|c| c.tls.as_ref()) {
            if tls.insecure_skip_verify {
                out.push_str("  skip_verify = true\n");
            }
            if let Some(ca) = &tls.ca_file {
                out.push_str(&format!("  ca = {}\n", quote(ca)));
            }
        }
    }
    out
}

/// Rewrites `certs_dir` from the registries file at `path` (no file: no mirrors).
pub(crate) fn write_hosts(path: &Path, certs_dir: &Path) -> anyhow::Result<()> {
    if certs_dir.exists() {
        std::fs::remove_dir_all(certs_dir)
            .with_context(|| format!("clearing {}", certs_dir.display()))?;
    }
    std::fs::create_dir_all(certs_dir)?;
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    let regs = parse(&text).with_context(|| format!("parsing {}", path.display()))?;
    for (registry, mirror) in &regs.mirrors {
        // containerd's name for the default host directory is `_default`.
        let dir_name = if registry == "*" {
            "_default"
        } else {
            registry.as_str()
        };
        if dir_name.contains('/') || dir_name.contains("..") || dir_name.is_empty() {
            anyhow::bail!("{}: bad registry name {registry:?}", path.display());
        }
        let dir = certs_dir.join(dir_name);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(
            dir.join("hosts.toml"),
            hosts_toml(registry, mirror, &regs.configs),
        )?;
        tracing::info!(%registry, endpoints = ?mirror.endpoint, "registry mirror");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrors_become_hosts_files() {
        let regs = parse(
            "mirrors:\n  docker.io:\n    endpoint:\n      - \"http://127.0.0.1:5000\"\n\
             configs:\n  \"127.0.0.1:5000\":\n    tls:\n      insecure_skip_verify: true\n",
        )
        .unwrap();
        let t = hosts_toml("docker.io", &regs.mirrors["docker.io"], &regs.configs);
        assert!(
            t.contains("server = \"https://registry-1.docker.io\""),
            "{t}"
        );
        assert!(t.contains("[host.\"http://127.0.0.1:5000\"]"), "{t}");
        assert!(t.contains("skip_verify = true"), "{t}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("registries.yaml");
        std::fs::write(
            &file,
            "mirrors:\n  docker.io:\n    endpoint: [\"http://127.0.0.1:5000\"]\n",
        )
        .unwrap();
        write_hosts(&file, &dir.path().join("certs.d")).unwrap();
        assert!(dir.path().join("certs.d/docker.io/hosts.toml").is_file());
        assert!(parse("mirrors: [").is_err());
    }
}
