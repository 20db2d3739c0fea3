//! Embeds every file under `ui/`: writes `assets.rs` into OUT_DIR with each
//! file's bytes, a gzip copy (made here, once, at the best compression) and
//! an ETag (a hash of the bytes), so the server never compresses an asset at
//! run time.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let root =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it")).join("ui");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it"));
    println!("cargo:rerun-if-changed=ui");
    let mut files = Vec::new();
    walk(&root, &mut files);
    files.sort();
    let mut table = String::from("&[\n");
    for (i, file) in files.iter().enumerate() {
        println!("cargo:rerun-if-changed={}", file.display());
        let rel = file
            .strip_prefix(&root)
            .expect("under ui/")
            .to_string_lossy()
            .replace('\\', "/");
        let bytes = std::fs::read(file).expect("readable asset");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&bytes).expect("gzip in memory");
        let gz = gz.finish().expect("gzip in memory");
        let gz_path = out.join(format!("asset{i}.gz"));
        std::fs::write(&gz_path, &gz).expect("OUT_DIR writable");
        let etag = fnv1a(&bytes);
        writeln!(
            table,
            "    Asset {{ path: {rel:?}, content_type: {ct:?}, body: include_bytes!({src:?}), gzip: include_bytes!({gz:?}), etag: \"\\\"{etag:016x}\\\"\" }},",
            ct = content_type(&rel),
            src = file.display().to_string(),
            gz = gz_path.display().to_string(),
        )
        .expect("string");
    }
    table.push(']');
    std::fs::write(out.join("assets.rs"), table).expect("OUT_DIR writable");
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, files);
        } else {
            files.push(path);
        }
    }
}

include!("src/content_type.rs");

/// 64-bit FNV-1a: stable across builds and platforms, enough for an ETag.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
