//! A pod's `securityContext.fsGroup` applied to its volumes as Kubernetes'
//! `SetVolumeOwnership` applies it: every file and directory gets the group,
//! group read (and write, unless the volume is read-only) added to its mode,
//! and directories get group execute and the setgid bit, so files created
//! later inherit the group. Symlinks get the group but keep their target's
//! mode. `fsGroupChangePolicy: OnRootMismatch` skips the walk when the
//! volume's root already has the group, the bits and setgid.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

const RW_MASK: u32 = 0o660;
const RO_MASK: u32 = 0o440;
const EXEC_MASK: u32 = 0o110;
const SETGID: u32 = 0o2000;

/// The pod's fsGroup and change policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FsGroup {
    pub gid: u32,
    pub on_root_mismatch: bool,
}

impl FsGroup {
    /// From the pod's security context; None without an fsGroup.
    pub(crate) fn of(pod: &k8s_openapi::api::core::v1::Pod) -> Option<FsGroup> {
        let sc = pod.spec.as_ref()?.security_context.as_ref()?;
        let gid = u32::try_from(sc.fs_group?).ok()?;
        Some(FsGroup {
            gid,
            on_root_mismatch: sc.fs_group_change_policy.as_deref() == Some("OnRootMismatch"),
        })
    }
}

/// Whether the root of a volume still needs the walk (OnRootMismatch).
fn root_needs_change(root: &Path, gid: u32, readonly: bool) -> bool {
    let Ok(m) = std::fs::metadata(root) else {
        return true;
    };
    if m.gid() != gid {
        return true;
    }
    let mut want = if readonly { RO_MASK } else { RW_MASK };
    if m.is_dir() {
        want |= EXEC_MASK;
    }
    let mode = m.permissions().mode();
    mode & want != want || mode & SETGID == 0
}

fn change_one(path: &Path, gid: u32, readonly: bool) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(path)?;
    std::os::unix::fs::lchown(path, None, Some(gid))?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let mut mask = if readonly { RO_MASK } else { RW_MASK };
    if meta.is_dir() {
        mask |= SETGID | EXEC_MASK;
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode | mask != mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode | mask))?;
    }
    Ok(())
}

fn walk(path: &Path, gid: u32, readonly: bool) -> std::io::Result<()> {
    change_one(path, gid, readonly)?;
    let meta = std::fs::symlink_metadata(path)?;
    if meta.is_dir() {
        for e in std::fs::read_dir(path)? {
            walk(&e?.path(), gid, readonly)?;
        }
    }
    Ok(())
}

/// Applies `fs` to the volume at `root`.
pub(crate) fn apply(root: &Path, fs: FsGroup, readonly: bool) -> std::io::Result<()> {
    if fs.on_root_mismatch && !root_needs_change(root, fs.gid, readonly) {
        return Ok(());
    }
    walk(root, fs.gid, readonly)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn group_bits_and_setgid_as_kubernetes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("vol");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(root.join("sub/f"), b"x").unwrap();
        std::fs::set_permissions(root.join("sub/f"), std::fs::Permissions::from_mode(0o400))
            .unwrap();
        std::os::unix::fs::symlink("sub/f", root.join("link")).unwrap();
        // Our own group: works without privileges.
        let gid = std::fs::metadata(&root).unwrap().gid();
        let fs = FsGroup {
            gid,
            on_root_mismatch: false,
        };
        apply(&root, fs, true).unwrap();
        assert_eq!(mode(&root), 0o2755);
        assert_eq!(mode(&root.join("sub/f")), 0o440);
        apply(&root, fs, false).unwrap();
        assert_eq!(mode(&root.join("sub/f")), 0o660);
        assert_eq!(mode(&root.join("sub")), 0o2775);
        // OnRootMismatch: the root is right, so a file changed since stays.
        std::fs::set_permissions(root.join("sub/f"), std::fs::Permissions::from_mode(0o600))
            .unwrap();
        let lazy = FsGroup {
            gid,
            on_root_mismatch: true,
        };
        apply(&root, lazy, false).unwrap();
        assert_eq!(mode(&root.join("sub/f")), 0o600);
        apply(&root, fs, false).unwrap();
        assert_eq!(mode(&root.join("sub/f")), 0o660);
    }
}
