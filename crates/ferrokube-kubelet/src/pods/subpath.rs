//! Volume mounts with `subPath` or `subPathExpr`, bound safely as Kubernetes'
//! kubelet binds them: the expression is expanded from the container's
//! environment, the path must stay relative and free of `..`, symlinks are
//! resolved and must end inside the volume, and the result is opened one
//! component at a time without following links and bind-mounted from that
//! open file under DATA_DIR/agent/pods/<uid>/volume-subpaths/, so a container
//! that swaps a directory for a symlink in between cannot make the node mount
//! something outside the volume.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

/// Why a sub path cannot be mounted: the container's CreateContainerConfigError
/// message, in Kubernetes' words.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SubPathError {
    /// A `subPathExpr` uses variables the container's environment lacks or
    /// leaves empty (sorted, each once).
    #[error("missing value for {}", .0.join(", "))]
    MissingVariables(Vec<String>),
    /// The sub path is absolute.
    #[error("error SubPath `{0}` must not be an absolute path")]
    Absolute(String),
    /// The sub path climbs out of its volume with `..`.
    #[error("unable to provision SubPath `{0}`: must not contain '..'")]
    Climbs(String),
    /// Creating the missing sub path directory failed (the cause is logged).
    #[error(
        "failed to create subPath directory for volumeMount {mount:?} of container {container:?}"
    )]
    Create {
        /// The volumeMount's name.
        mount: String,
        /// The container's name.
        container: String,
    },
    /// Opening or binding the sub path failed (the cause is logged).
    #[error("failed to prepare subPath for volumeMount {mount:?} of container {container:?}")]
    Bind {
        /// The volumeMount's name.
        mount: String,
        /// The container's name.
        container: String,
    },
}

/// Expands `$(VAR)` in a `subPathExpr` from the container's environment; a
/// variable that is unset or empty is an error, as in Kubernetes.
pub(crate) fn expand_expr(expr: &str, env: &[(String, String)]) -> Result<String, SubPathError> {
    let vars: BTreeMap<String, String> = env.iter().cloned().collect();
    let mut missing: Vec<String> = Vec::new();
    let b = expr.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' && i + 1 < b.len() && b[i + 1] == b'$' {
            out.push('$');
            i += 2;
            continue;
        }
        if b[i] == b'$' && i + 1 < b.len() && b[i + 1] == b'(' {
            if let Some(end) = expr[i + 2..].find(')') {
                let name = &expr[i + 2..i + 2 + end];
                match vars.get(name).filter(|v| !v.is_empty()) {
                    Some(v) => out.push_str(v),
                    None => missing.push(name.to_string()),
                }
                i += 3 + end;
                continue;
            }
        }
        let ch = expr[i..].chars().next().unwrap_or('\u{fffd}');
        out.push(ch);
        i += ch.len_utf8();
    }
    if !missing.is_empty() {
        missing.sort();
        missing.dedup();
        return Err(SubPathError::MissingVariables(missing));
    }
    Ok(out)
}

/// The node's checks of a sub path before it touches the disk.
pub(crate) fn check(sub: &str) -> Result<(), SubPathError> {
    if Path::new(sub).is_absolute() {
        return Err(SubPathError::Absolute(sub.to_string()));
    }
    if sub.split('/').any(|p| p == "..") {
        return Err(SubPathError::Climbs(sub.to_string()));
    }
    Ok(())
}

fn cstr(p: &Path) -> std::io::Result<CString> {
    CString::new(p.as_os_str().as_encoded_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
}

#[expect(
    unsafe_code,
    reason = "openat(2) relative to a directory fd, and taking ownership of the fd it returns"
)]
fn open_path(dirfd: libc::c_int, name: &CString, flags: libc::c_int) -> std::io::Result<OwnedFd> {
    // SAFETY: `name` is a valid NUL-terminated string; the fd returned is ours.
    let fd = unsafe { libc::openat(dirfd, name.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[expect(
    unsafe_code,
    reason = "fstat(2) on an O_PATH fd (std's metadata needs a path)"
)]
fn fstat(fd: &OwnedFd) -> std::io::Result<libc::stat> {
    // SAFETY: stat is plain old data: all zeroes is a valid value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat writes into the struct we own; the fd is open.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(st)
}

/// Opens `rel` below `base` one component at a time, refusing symlinks.
fn safe_open(base: &Path, rel: &Path) -> std::io::Result<OwnedFd> {
    let mut cur = open_path(
        libc::AT_FDCWD,
        &cstr(base)?,
        libc::O_PATH | libc::O_DIRECTORY,
    )?;
    for c in rel.components() {
        let name = match c {
            Component::Normal(n) => n,
            Component::CurDir => continue,
            _ => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("path component {c:?} not allowed"),
                ))
            }
        };
        let next = open_path(
            cur.as_raw_fd(),
            &cstr(Path::new(name))?,
            libc::O_PATH | libc::O_NOFOLLOW,
        )?;
        if fstat(&next)?.st_mode & libc::S_IFMT == libc::S_IFLNK {
            return Err(std::io::Error::other(format!(
                "{} is a symlink",
                base.join(rel).display()
            )));
        }
        cur = next;
    }
    Ok(cur)
}

/// Creates the missing directories of `rel` below `base` (each with `mode`),
/// never through a symlink.
#[expect(
    unsafe_code,
    reason = "mkdirat(2) and fchmod(2) relative to fds opened without following links"
)]
fn safe_mkdir(base: &Path, rel: &Path, mode: u32) -> std::io::Result<()> {
    let mut done = PathBuf::new();
    for c in rel.components() {
        let Component::Normal(name) = c else { continue };
        let parent = safe_open(base, &done)?;
        let n = cstr(Path::new(name))?;
        // SAFETY: valid fd and NUL-terminated name.
        let rc = unsafe { libc::mkdirat(parent.as_raw_fd(), n.as_ptr(), mode) };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EEXIST) {
                return Err(e);
            }
        } else {
            let fd = open_path(parent.as_raw_fd(), &n, libc::O_DIRECTORY | libc::O_NOFOLLOW)?;
            // mkdirat's mode went through the umask; set it as asked.
            // SAFETY: valid fd.
            unsafe { libc::fchmod(fd.as_raw_fd(), mode) };
        }
        done.push(name);
    }
    Ok(())
}

/// Whether `path` is a mount point (in this process's mount table).
pub(crate) fn is_mount_point(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let p = path.display().to_string();
    info.lines()
        .any(|l| l.split_whitespace().nth(4) == Some(p.as_str()))
}

/// Detaches the mount at `path`, if any.
#[expect(unsafe_code, reason = "umount2(2) with MNT_DETACH: std has no unmount")]
pub(crate) fn unmount(path: &Path) {
    if let Ok(c) = cstr(path) {
        // SAFETY: a valid NUL-terminated path.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
}

/// Mount points at or below `dir`, deepest first.
pub(crate) fn mounts_below(dir: &Path) -> Vec<PathBuf> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .map(PathBuf::from)
        .filter(|p| p.starts_with(dir))
        .collect();
    out.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    out.dedup();
    out
}

/// What the container mounts for one sub path of a volume.
pub(crate) struct Request<'a> {
    /// The volume's directory on the node.
    pub volume: &'a Path,
    /// The sub path (already expanded and checked).
    pub sub: &'a str,
    /// DATA_DIR/agent/pods/<uid>.
    pub pod_dir: &'a Path,
    pub volume_name: &'a str,
    pub container: &'a str,
    /// The mount's index in the container's volumeMounts.
    pub index: usize,
}

/// Prepares the sub path: creates it as a directory when missing, then binds
/// it at a path of its own and returns that path. Errors are worded as
/// Kubernetes words them to the user (details go to the log).
pub(crate) fn prepare(r: &Request<'_>, mount_name: &str) -> Result<PathBuf, SubPathError> {
    let rel = Path::new(r.sub);
    let wanted = r.volume.join(rel);
    if std::fs::symlink_metadata(&wanted).is_err() && std::fs::metadata(&wanted).is_err() {
        let mode = std::fs::metadata(r.volume)
            .map(|m| m.permissions().mode() & 0o7777)
            .unwrap_or(0o755);
        if let Err(e) = safe_mkdir(r.volume, rel, mode) {
            tracing::warn!(
                container = r.container,
                volume = r.volume_name,
                "creating subPath {}: {e}",
                r.sub
            );
            return Err(SubPathError::Create {
                mount: mount_name.to_string(),
                container: r.container.to_string(),
            });
        }
    }
    bind(r).map_err(|e| {
        tracing::warn!(
            container = r.container,
            volume = r.volume_name,
            "subPath {}: {e}",
            r.sub
        );
        SubPathError::Bind {
            mount: mount_name.to_string(),
            container: r.container.to_string(),
        }
    })
}

#[expect(
    unsafe_code,
    reason = "a bind mount (mount(2) with MS_BIND) of the opened fd: std has no mount"
)]
fn bind(r: &Request<'_>) -> std::io::Result<PathBuf> {
    let base = std::fs::canonicalize(r.volume)?;
    let resolved = std::fs::canonicalize(r.volume.join(r.sub))?;
    let inner = resolved.strip_prefix(&base).map_err(|_| {
        std::io::Error::other(format!(
            "subpath {:?} not within volume path {:?}",
            resolved, base
        ))
    })?;
    let fd = safe_open(&base, inner)?;
    let is_dir = fstat(&fd)?.st_mode & libc::S_IFMT == libc::S_IFDIR;
    let target = r
        .pod_dir
        .join("volume-subpaths")
        .join(r.volume_name)
        .join(r.container)
        .join(r.index.to_string());
    if is_mount_point(&target) {
        unmount(&target);
    }
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)?;
    }
    if is_dir {
        if !target.is_dir() {
            let _ = std::fs::remove_file(&target);
            std::fs::create_dir(&target)?;
        }
    } else if !target.is_file() {
        let _ = std::fs::remove_dir(&target);
        std::fs::write(&target, b"")?;
    }
    let src = cstr(Path::new(&format!("/proc/self/fd/{}", fd.as_raw_fd())))?;
    let dst = cstr(&target)?;
    // SAFETY: valid NUL-terminated strings; a bind mount ignores fstype and data.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            dst.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_expand_from_the_environment() {
        let env = vec![
            ("POD".to_string(), "web-0".to_string()),
            ("EMPTY".to_string(), String::new()),
        ];
        assert_eq!(expand_expr("logs/$(POD)", &env).unwrap(), "logs/web-0");
        assert_eq!(expand_expr("$$(POD)", &env).unwrap(), "$(POD)");
        assert_eq!(
            expand_expr("$(NOPE)/$(EMPTY)", &env)
                .unwrap_err()
                .to_string(),
            "missing value for EMPTY, NOPE"
        );
    }

    #[test]
    fn checks_refuse_escapes() {
        assert!(check("a/b").is_ok());
        assert_eq!(
            check("/etc").unwrap_err().to_string(),
            "error SubPath `/etc` must not be an absolute path"
        );
        assert!(check("a/../../b").is_err());
        assert!(check("a..b").is_ok());
    }

    #[test]
    fn safe_open_refuses_symlinks_and_mkdir_stays_inside() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        std::fs::create_dir_all(base.join("real/inner")).unwrap();
        std::os::unix::fs::symlink("/etc", base.join("escape")).unwrap();
        assert!(safe_open(base, Path::new("real/inner")).is_ok());
        assert!(safe_open(base, Path::new("escape")).is_err());
        assert!(safe_mkdir(base, Path::new("escape/fk-subpath-test"), 0o755).is_err());
        assert!(!Path::new("/etc/fk-subpath-test").exists());
        safe_mkdir(base, Path::new("new/deeper"), 0o750).unwrap();
        let mode = std::fs::metadata(base.join("new/deeper"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o750);
    }
}
