//! The dashboard's browser code: the files under `ui/` (plain ES modules,
//! HTML and CSS, no build step), embedded in the binary. The API server
//! serves them under `/dashboard/`; everything the pages show or change
//! goes through the Kubernetes API (see ARCHITECTURE.md, "Dashboard").
//!
//! Each file comes with a gzip copy made at build time and an ETag. For
//! work on the pages, `FERROKUBE_DASHBOARD_DIR` names a directory to serve
//! them from instead ([`asset_from_dir`]), read anew on every request.

use std::path::Path;

mod content_type;
pub use content_type::content_type;

/// One embedded file.
#[derive(Clone, Copy, Debug)]
pub struct Asset {
    /// The path under `ui/`, with `/` separators (`index.html`, `js/app.js`).
    pub path: &'static str,
    /// The `Content-Type` it is served with.
    pub content_type: &'static str,
    /// The file's bytes.
    pub body: &'static [u8],
    /// The same bytes, gzip-compressed.
    pub gzip: &'static [u8],
    /// A strong ETag of the bytes, quotes included.
    pub etag: &'static str,
}

static ASSETS: &[Asset] = include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// The embedded file at `path` (relative to `ui/`, no leading slash).
pub fn asset(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

/// Every embedded file.
pub fn assets() -> &'static [Asset] {
    ASSETS
}

/// A file read from `dir` (the `FERROKUBE_DASHBOARD_DIR` of development):
/// its bytes and content type, if `path` names a file inside `dir`.
pub fn asset_from_dir(dir: &Path, path: &str) -> Option<(Vec<u8>, &'static str)> {
    if path.split('/').any(|seg| seg == ".." || seg.is_empty()) {
        return None;
    }
    let bytes = std::fs::read(dir.join(path)).ok()?;
    Some((bytes, content_type(path)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_is_embedded_with_a_gzip_copy_that_inflates_to_it() {
        let index = asset("index.html").expect("ui/index.html is embedded");
        assert_eq!(index.content_type, "text/html; charset=utf-8");
        assert!(index.gzip.starts_with(&[0x1f, 0x8b]), "a gzip member");
        assert!(index.etag.starts_with('"') && index.etag.ends_with('"'));
        assert!(asset("nothing-here.js").is_none());
    }

    #[test]
    fn a_development_directory_serves_no_path_outside_it() {
        let dir = std::env::temp_dir();
        assert!(asset_from_dir(&dir, "../etc/passwd").is_none());
        assert!(asset_from_dir(&dir, "a//b").is_none());
    }
}
