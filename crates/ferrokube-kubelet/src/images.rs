//! Loading image archives (OCI layouts and `docker save` archives) into the runtime's
//! `k8s.io` namespace, where the CRI plugin sees them: `ferrokube image import`, and the
//! archives dropped in DATA_DIR/agent/images/ that the agent imports when it starts,
//! and the node's own sandbox image (`pause`). Uses containerd's own `ctr` tool.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::containerd::ContainerdPaths;
use crate::cri::remote::socket_path;

/// The CRI endpoint of the containerd the agent supervises for `data_dir`.
pub fn endpoint_for_data_dir(data_dir: &Path) -> String {
    ContainerdPaths::new(data_dir).endpoint()
}

/// Directory whose archives the agent imports at start.
pub fn auto_import_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("agent").join("images")
}

/// Imports `files` into the containerd at `endpoint` (a `unix://` URL or a socket
/// path), printing progress; returns the image names imported.
pub async fn import_images(endpoint: &str, files: &[PathBuf]) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    for file in files {
        println!("importing {}", file.display());
        for name in import_quietly(endpoint, file).await? {
            println!("  imported {name}");
            names.push(name);
        }
    }
    Ok(names)
}

/// Imports one archive into the containerd at `endpoint`; returns the image
/// names it held.
pub async fn import_quietly(endpoint: &str, file: &Path) -> anyhow::Result<Vec<String>> {
    let socket = socket_path(endpoint);
    if !socket.exists() {
        anyhow::bail!(
            "no container runtime socket at {} (is the agent or containerd running?)",
            socket.display()
        );
    }
    if !file.is_file() {
        anyhow::bail!("{}: not a file", file.display());
    }
    let out = tokio::process::Command::new("ctr")
        .arg("--address")
        .arg(&socket)
        .args(["--namespace", "k8s.io", "images", "import"])
        .arg(file)
        .output()
        .await
        .context("running ctr (it ships with the Debian package `containerd`)")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        anyhow::bail!(
            "importing {}: ctr {}: {}{}",
            file.display(),
            out.status,
            stdout.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(parse_ctr_import(&stdout))
}

/// Image names from `ctr images import` output ("unpacking NAME (sha256:...)...done").
fn parse_ctr_import(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| l.trim().strip_prefix("unpacking "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// Imports every `*.tar` in DATA_DIR/agent/images/ (none is fine).
pub async fn import_dir(endpoint: &str, dir: &Path) -> anyhow::Result<Vec<String>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "tar"))
        .collect();
    files.sort();
    let mut names = Vec::new();
    for file in &files {
        names.extend(import_quietly(endpoint, file).await?);
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_ctr_output() {
        let out = "unpacking docker.io/library/busybox:latest (sha256:ab12)...done\n\
                   unpacking docker.io/library/busybox:1.35 (sha256:ab12)...done\n";
        assert_eq!(
            parse_ctr_import(out),
            vec![
                "docker.io/library/busybox:latest",
                "docker.io/library/busybox:1.35"
            ]
        );
    }
}
