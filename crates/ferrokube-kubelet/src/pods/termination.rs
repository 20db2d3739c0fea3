//! Termination messages, as Kubernetes' kubelet makes them: each container instance
//! gets an empty file of its own (mode 0666) under the pod's directory, mounted at
//! its `terminationMessagePath`; once the container has exited, what it wrote there
//! (at most the last 4096 bytes) becomes `state.terminated.message`, after the
//! runtime's own message if any. With `terminationMessagePolicy:
//! FallbackToLogsOnError`, a container that failed (exit code not 0) and wrote
//! nothing there gets the end of its log instead: its last 80 lines, at most their
//! last 2048 bytes.

use std::io::{Read as _, Seek as _, SeekFrom};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Container;

use crate::cri::api;
use crate::server::logs::parse_record;
use crate::KubeletConfig;

/// Where a container's message is written when the spec names no path (the API's
/// default).
pub(crate) const DEFAULT_PATH: &str = "/dev/termination-log";
/// The most of the message file that is read (its end).
pub(crate) const MAX_MESSAGE_BYTES: u64 = 4096;
/// The most log lines a message taken from the log holds, and the most bytes.
pub(crate) const MAX_LOG_LINES: usize = 80;
pub(crate) const MAX_LOG_BYTES: usize = 2048;

/// The path in the container, or `None` when the spec asks for none.
fn container_path(c: &Container) -> Option<&str> {
    match c.termination_message_path.as_deref() {
        None => Some(DEFAULT_PATH),
        Some("") => None,
        Some(p) => Some(p),
    }
}

/// Creates the message file of a new instance of container `c` of pod `uid`, and
/// the mount that puts it at the container's path; `None` when the spec asks for
/// no message or a volume is mounted there already.
pub(crate) fn message_mount(
    config: &KubeletConfig,
    uid: &str,
    c: &Container,
    mounts: &[api::Mount],
) -> std::io::Result<Option<api::Mount>> {
    let Some(path) = container_path(c) else {
        return Ok(None);
    };
    if mounts.iter().any(|m| m.container_path == path) {
        return Ok(None);
    }
    let dir = config
        .agent_dir()
        .join("pods")
        .join(uid)
        .join("containers")
        .join(&c.name);
    std::fs::create_dir_all(&dir)?;
    let file = dir.join(format!("{:08x}", rand_u32()));
    std::fs::File::create(&file)?;
    // Writable by whatever user the container runs as, whatever the umask.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666))?;
    Ok(Some(api::Mount {
        container_path: path.to_string(),
        host_path: file.display().to_string(),
        ..Default::default()
    }))
}

fn rand_u32() -> u32 {
    let mut b = [0u8; 4];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_err()
    {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        return t ^ std::process::id();
    }
    u32::from_ne_bytes(b)
}

/// The last `max` bytes of a file.
fn read_tail(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    if len > max {
        f.seek(SeekFrom::Start(len - max))?;
    }
    let mut out = Vec::new();
    f.take(max).read_to_end(&mut out)?;
    Ok(out)
}

/// The message of an exited container instance `c` of spec `spec`, the runtime's
/// message first; `None` when there is none.
pub(crate) fn message(spec: &Container, c: &api::ContainerStatus) -> Option<String> {
    let failed = c.exit_code != 0 && c.reason != "ContainerCannotRun";
    let fallback =
        spec.termination_message_policy.as_deref() == Some("FallbackToLogsOnError") && failed;
    let (mut written, mut from_logs) = (String::new(), fallback);
    if let Some(path) = container_path(spec) {
        if let Some(m) = c.mounts.iter().find(|m| m.container_path == path) {
            match read_tail(Path::new(&m.host_path), MAX_MESSAGE_BYTES) {
                Ok(data) => {
                    from_logs = fallback && data.is_empty();
                    written = String::from_utf8_lossy(&data).into_owned();
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    written = format!("Error on reading termination log {}: {e}", m.host_path);
                    from_logs = false;
                }
            }
        }
    }
    if from_logs && !c.log_path.is_empty() {
        written = log_tail(&PathBuf::from(&c.log_path));
    }
    match (c.message.is_empty(), written.is_empty()) {
        (_, true) => (!c.message.is_empty()).then(|| c.message.clone()),
        (true, false) => Some(written),
        (false, false) => Some(format!("{}: {written}", c.message)),
    }
}

/// The end of a CRI log file: its last lines (both streams), at most
/// `MAX_LOG_LINES` of them and their last `MAX_LOG_BYTES` bytes.
fn log_tail(path: &Path) -> String {
    // Enough of the file for 80 lines' worth of the bytes kept, and then some.
    let data = match read_tail(path, 64 * 1024) {
        Ok(d) => d,
        Err(e) => return format!("Error on reading termination message from logs: {e}"),
    };
    let mut lines: Vec<Vec<u8>> = Vec::new();
    let mut open = false;
    for raw in data.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        // A record cut at the window's start does not parse and is skipped.
        let Some(r) = parse_record(raw) else { continue };
        if open {
            if let Some(last) = lines.last_mut() {
                last.extend_from_slice(r.content);
            }
        } else {
            lines.push(r.content.to_vec());
        }
        open = r.partial;
        if !r.partial {
            if let Some(last) = lines.last_mut() {
                last.push(b'\n');
            }
        }
    }
    let start = lines.len().saturating_sub(MAX_LOG_LINES);
    let text: Vec<u8> = lines[start..].concat();
    let from = text.len().saturating_sub(MAX_LOG_BYTES);
    String::from_utf8_lossy(&text[from..]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(path: Option<&str>, policy: Option<&str>) -> Container {
        Container {
            name: "app".into(),
            termination_message_path: path.map(str::to_string),
            termination_message_policy: policy.map(str::to_string),
            ..Default::default()
        }
    }

    fn exited(code: i32, file: &Path, log: &Path) -> api::ContainerStatus {
        api::ContainerStatus {
            exit_code: code,
            mounts: vec![api::Mount {
                container_path: DEFAULT_PATH.into(),
                host_path: file.display().to_string(),
                ..Default::default()
            }],
            log_path: log.display().to_string(),
            ..Default::default()
        }
    }

    fn log_of(lines: &[&str]) -> String {
        lines
            .iter()
            .map(|l| format!("2026-01-01T00:00:00.000000000Z stdout {l}\n"))
            .collect()
    }

    #[test]
    fn the_file_is_made_for_each_instance_and_mounted_at_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let config = KubeletConfig::new("n", dir.path());
        let m = message_mount(&config, "u1", &spec(None, None), &[])
            .unwrap()
            .unwrap();
        assert_eq!(m.container_path, DEFAULT_PATH);
        let meta = std::fs::metadata(&m.host_path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o666);
        assert!(
            Path::new(&m.host_path).starts_with(dir.path().join("agent/pods/u1/containers/app"))
        );
        let other = message_mount(&config, "u1", &spec(None, None), &[])
            .unwrap()
            .unwrap();
        assert_ne!(other.host_path, m.host_path);
        assert!(message_mount(&config, "u1", &spec(Some(""), None), &[])
            .unwrap()
            .is_none());
        assert!(message_mount(&config, "u1", &spec(None, None), &[m])
            .unwrap()
            .is_none());
    }

    #[test]
    fn the_message_is_what_the_container_wrote_at_most_its_last_4096_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let (file, log) = (dir.path().join("msg"), dir.path().join("log"));
        std::fs::write(&log, log_of(&["from the log"])).unwrap();
        std::fs::write(&file, "all done").unwrap();
        let s = spec(None, Some("FallbackToLogsOnError"));
        assert_eq!(
            message(&s, &exited(1, &file, &log)).as_deref(),
            Some("all done")
        );
        let long = format!("{}{}", "x".repeat(100), "y".repeat(4096));
        std::fs::write(&file, &long).unwrap();
        assert_eq!(
            message(&s, &exited(0, &file, &log)).unwrap(),
            "y".repeat(4096)
        );
        // The runtime's message first.
        std::fs::write(&file, "bye").unwrap();
        let mut c = exited(0, &file, &log);
        c.message = "OOM".into();
        assert_eq!(message(&s, &c).as_deref(), Some("OOM: bye"));
    }

    #[test]
    fn the_log_stands_in_only_for_a_failure_that_wrote_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (file, log) = (dir.path().join("msg"), dir.path().join("log"));
        std::fs::write(&file, "").unwrap();
        let many: Vec<String> = (0..100).map(|i| format!("line {i}")).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        std::fs::write(&log, log_of(&refs)).unwrap();
        let fallback = spec(None, Some("FallbackToLogsOnError"));
        let m = message(&fallback, &exited(2, &file, &log)).unwrap();
        assert!(
            m.starts_with("line 20\n") && m.ends_with("line 99\n"),
            "{m}"
        );
        assert_eq!(m.lines().count(), 80);
        // Success, or the default policy: no message.
        assert_eq!(message(&fallback, &exited(0, &file, &log)), None);
        assert_eq!(
            message(&spec(None, Some("File")), &exited(2, &file, &log)),
            None
        );
        // At most 2048 bytes, the end kept; partial records join.
        let long = "z".repeat(3000);
        let partial = format!(
            "2026-01-01T00:00:00Z stdout P ab\n2026-01-01T00:00:00Z stderr F cd\n{}",
            log_of(&[&format!("F {long}")])
        );
        std::fs::write(&log, partial).unwrap();
        let m = message(&fallback, &exited(2, &file, &log)).unwrap();
        assert_eq!(m.len(), MAX_LOG_BYTES);
        assert!(m.ends_with("zz\n"));
        std::fs::write(
            &log,
            "2026-01-01T00:00:00Z stdout P ab\n2026-01-01T00:00:00Z stderr F cd\n",
        )
        .unwrap();
        assert_eq!(
            message(&fallback, &exited(2, &file, &log)).as_deref(),
            Some("abcd\n")
        );
    }
}
