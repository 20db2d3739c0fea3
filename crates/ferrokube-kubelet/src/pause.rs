//! The node's own sandbox image. The pause program (pause/pause.c, built static by
//! build.rs) is part of this crate; at start the agent wraps it in a one-layer OCI
//! image under a name no registry serves (`localhost/ferrokube/pause:VERSION`) and
//! imports it into the runtime's `k8s.io` namespace, so pods run on a machine where
//! nothing was built or pulled beforehand.

use std::path::Path;

use anyhow::Context as _;
use serde_json::json;

/// The pause program, a static executable.
pub(crate) const PROGRAM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/pause"));

/// The sandbox image's name: nobody else publishes under `localhost/ferrokube`.
pub(crate) const IMAGE: &str = concat!("localhost/ferrokube/pause:", env!("CARGO_PKG_VERSION"));

/// The uid and gid the sandbox runs as, as Kubernetes' pause image does.
const USER: &str = "65535:65535";

/// `sha256:HEX` of `data`.
fn digest(data: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    let mut s = String::with_capacity(71);
    s.push_str("sha256:");
    for b in d.as_ref() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// The OCI name of this machine's architecture.
fn oci_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// Appends one ustar entry (a regular file, or a directory when `data` is `None`).
fn tar_entry(out: &mut Vec<u8>, name: &str, mode: u32, data: Option<&[u8]>) {
    let mut h = [0u8; 512];
    let put = |h: &mut [u8; 512], at: usize, len: usize, v: &[u8]| {
        let n = v.len().min(len);
        h[at..at + n].copy_from_slice(&v[..n]);
    };
    let octal = |v: u64, width: usize| format!("{v:0w$o}\0", w = width - 1).into_bytes();
    put(&mut h, 0, 100, name.as_bytes());
    put(&mut h, 100, 8, &octal(mode as u64, 8));
    put(&mut h, 108, 8, &octal(0, 8));
    put(&mut h, 116, 8, &octal(0, 8));
    put(
        &mut h,
        124,
        12,
        &octal(data.map_or(0, |d| d.len() as u64), 12),
    );
    put(&mut h, 136, 12, &octal(0, 12));
    h[156] = if data.is_some() { b'0' } else { b'5' };
    put(&mut h, 257, 6, b"ustar\0");
    put(&mut h, 263, 2, b"00");
    put(&mut h, 265, 32, b"root");
    put(&mut h, 297, 32, b"root");
    // The checksum counts its own field as spaces.
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    put(&mut h, 148, 8, format!("{sum:06o}\0 ").as_bytes());
    out.extend_from_slice(&h);
    if let Some(d) = data {
        out.extend_from_slice(d);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
}

/// Ends a tar stream (two zero blocks).
fn tar_end(out: &mut Vec<u8>) {
    out.resize(out.len() + 1024, 0);
}

/// The image as an OCI image layout in a tar archive (what `ctr images import`
/// reads): one layer holding `/pause`, its config, its manifest, and an index
/// naming it `name`. The same program gives the same bytes (fixed times).
pub(crate) fn archive(name: &str, program: &[u8]) -> Vec<u8> {
    let mut layer = Vec::new();
    tar_entry(&mut layer, "pause", 0o755, Some(program));
    tar_end(&mut layer);
    let config = json!({
        "architecture": oci_arch(),
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {"Entrypoint": ["/pause"], "User": USER},
        "rootfs": {"type": "layers", "diff_ids": [digest(&layer)]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "ferrokube-kubelet build.rs"}],
    })
    .to_string()
    .into_bytes();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": digest(&config),
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": digest(&layer),
            "size": layer.len(),
        }],
    })
    .to_string()
    .into_bytes();
    let tag = name.rsplit_once(':').map_or("latest", |(_, t)| t);
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest(&manifest),
            "size": manifest.len(),
            "platform": {"architecture": oci_arch(), "os": "linux"},
            "annotations": {
                "io.containerd.image.name": name,
                "org.opencontainers.image.ref.name": tag,
            },
        }],
    })
    .to_string()
    .into_bytes();
    let blob = |d: &[u8]| format!("blobs/sha256/{}", &digest(d)["sha256:".len()..]);
    let mut out = Vec::with_capacity(layer.len() + 8192);
    tar_entry(&mut out, "blobs", 0o755, None);
    tar_entry(&mut out, "blobs/sha256", 0o755, None);
    for b in [&layer, &config, &manifest] {
        tar_entry(&mut out, &blob(b), 0o644, Some(b));
    }
    tar_entry(
        &mut out,
        "oci-layout",
        0o644,
        Some(br#"{"imageLayoutVersion":"1.0.0"}"#),
    );
    tar_entry(&mut out, "index.json", 0o644, Some(&index));
    tar_end(&mut out);
    out
}

/// Writes the sandbox image's archive under `agent_dir` and imports it into the
/// runtime at `endpoint`; returns the image's name.
pub(crate) async fn import(endpoint: &str, agent_dir: &Path) -> anyhow::Result<&'static str> {
    std::fs::create_dir_all(agent_dir)
        .with_context(|| format!("creating {}", agent_dir.display()))?;
    let file = agent_dir.join("pause-image.tar");
    let tmp = agent_dir.join(".pause-image.tar.tmp");
    std::fs::write(&tmp, archive(IMAGE, PROGRAM))
        .and_then(|()| std::fs::rename(&tmp, &file))
        .with_context(|| format!("writing {}", file.display()))?;
    let names = crate::images::import_quietly(endpoint, &file)
        .await
        .context("importing the sandbox image")?;
    if !names.iter().any(|n| n == IMAGE) {
        anyhow::bail!("importing the sandbox image gave {names:?}, not {IMAGE}");
    }
    Ok(IMAGE)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Entries of a tar stream: (name, type flag, content).
    fn entries(tar: &[u8]) -> Vec<(String, u8, Vec<u8>)> {
        let mut out = Vec::new();
        let mut at = 0;
        while at + 512 <= tar.len() && tar[at] != 0 {
            let h = &tar[at..at + 512];
            let name = String::from_utf8_lossy(&h[..100])
                .trim_end_matches('\0')
                .to_string();
            let size = usize::from_str_radix(
                std::str::from_utf8(&h[124..135])
                    .unwrap()
                    .trim_matches('\0'),
                8,
            )
            .unwrap();
            let stored: u32 =
                u32::from_str_radix(std::str::from_utf8(&h[148..154]).unwrap().trim(), 8).unwrap();
            let sum: u32 = h
                .iter()
                .enumerate()
                .map(|(i, &b)| {
                    if (148..156).contains(&i) {
                        32
                    } else {
                        b as u32
                    }
                })
                .sum();
            assert_eq!(stored, sum, "checksum of {name}");
            out.push((name, h[156], tar[at + 512..at + 512 + size].to_vec()));
            at += 512 + size.div_ceil(512) * 512;
        }
        out
    }

    #[test]
    fn the_program_is_a_static_executable() {
        assert_eq!(&PROGRAM[..4], b"\x7fELF");
        assert_eq!(PROGRAM[4], 2, "a 64-bit ELF");
        // No program header asks for an interpreter (PT_INTERP): nothing to load
        // from the image's (empty) filesystem.
        let u16_at = |at: usize| u16::from_le_bytes([PROGRAM[at], PROGRAM[at + 1]]) as usize;
        let phoff = u64::from_le_bytes(PROGRAM[0x20..0x28].try_into().unwrap()) as usize;
        let (size, count) = (u16_at(0x36), u16_at(0x38));
        assert!(count > 0);
        for i in 0..count {
            let at = phoff + i * size;
            let kind = u32::from_le_bytes(PROGRAM[at..at + 4].try_into().unwrap());
            assert_ne!(kind, 3, "program header {i} is PT_INTERP");
        }
    }

    #[test]
    fn the_archive_is_an_oci_layout_whose_digests_hold() {
        let tar = archive("localhost/ferrokube/pause:9.9.9", b"program");
        let files = entries(&tar);
        let get = |n: &str| {
            files
                .iter()
                .find(|(name, _, _)| name == n)
                .map(|(_, _, d)| d.clone())
                .unwrap_or_else(|| panic!("{n} missing"))
        };
        let index: serde_json::Value = serde_json::from_slice(&get("index.json")).unwrap();
        let m = &index["manifests"][0];
        assert_eq!(
            m["annotations"]["io.containerd.image.name"],
            "localhost/ferrokube/pause:9.9.9"
        );
        assert_eq!(
            m["annotations"]["org.opencontainers.image.ref.name"],
            "9.9.9"
        );
        let blob = |d: &serde_json::Value| {
            let d = d.as_str().unwrap();
            let data = get(&format!("blobs/sha256/{}", &d[7..]));
            assert_eq!(digest(&data), d);
            data
        };
        let manifest: serde_json::Value = serde_json::from_slice(&blob(&m["digest"])).unwrap();
        let config: serde_json::Value =
            serde_json::from_slice(&blob(&manifest["config"]["digest"])).unwrap();
        let layer = blob(&manifest["layers"][0]["digest"]);
        assert_eq!(config["rootfs"]["diff_ids"][0], digest(&layer));
        assert_eq!(config["config"]["Entrypoint"][0], "/pause");
        let in_layer = entries(&layer);
        assert_eq!(in_layer.len(), 1);
        assert_eq!(in_layer[0].0, "pause");
        assert_eq!(in_layer[0].2, b"program");
        // Same input, same bytes: the image's digest is stable.
        assert_eq!(archive("localhost/ferrokube/pause:9.9.9", b"program"), tar);
    }
}
