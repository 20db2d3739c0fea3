//! The containerd the agent supervises when no `--container-runtime-endpoint` is given,
//! as k3s does: a config written under DATA_DIR/agent/containerd/ (own root, state and
//! socket; the CRI plugin with our CNI dirs, sandbox image and the cgroupfs driver),
//! the process started as a child, restarted with back-off if it dies, stopped on
//! shutdown. Containers keep running across a containerd restart (their shims stay).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::cri::remote::RemoteRuntime;
use crate::cri::Runtime;

/// Where the supervised containerd keeps its files.
#[derive(Debug, Clone)]
pub struct ContainerdPaths {
    /// DATA_DIR/agent/containerd: everything below is under it.
    pub dir: PathBuf,
    /// The `config.toml` the agent writes and containerd reads (`--config`).
    pub config: PathBuf,
    /// containerd's persistent root (images, snapshots, container metadata).
    pub root: PathBuf,
    /// containerd's state directory (sockets, shims' bundles; gone after a reboot).
    pub state: PathBuf,
    /// runc's root (its containers' state), under `state`: every node's own,
    /// so several nodes on one machine never share runc's default
    /// `/run/containerd/runc`.
    pub runc_root: PathBuf,
    /// The gRPC socket the CRI client connects to.
    pub socket: PathBuf,
    /// containerd's own log (its standard output and error).
    pub log: PathBuf,
    /// The CNI configuration directory the CRI plugin reads.
    pub cni_conf_dir: PathBuf,
    /// Per-registry host configuration (`hosts.toml`), for mirrors.
    pub certs_dir: PathBuf,
}

impl ContainerdPaths {
    /// The paths of the containerd of the node whose data dir is `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        let dir = data_dir.join("agent").join("containerd");
        ContainerdPaths {
            config: dir.join("config.toml"),
            root: dir.join("root"),
            state: dir.join("state"),
            runc_root: dir.join("state").join("runc"),
            socket: dir.join("containerd.sock"),
            log: dir.join("containerd.log"),
            cni_conf_dir: data_dir.join("agent").join("etc").join("cni").join("net.d"),
            certs_dir: data_dir
                .join("agent")
                .join("etc")
                .join("containerd")
                .join("certs.d"),
            dir,
        }
    }

    /// The CRI endpoint of this containerd.
    pub fn endpoint(&self) -> String {
        format!("unix://{}", self.socket.display())
    }
}

/// Directory holding the CNI plugin binaries (Debian's containernetworking-plugins).
pub const CNI_BIN_DIR: &str = "/usr/lib/cni";

fn toml_str(p: &Path) -> String {
    // TOML basic strings: escape backslashes and quotes.
    p.display()
        .to_string()
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
}

/// Whether this process may lower OOM scores (CAP_SYS_RESOURCE). Without it (some
/// sandboxed machines drop it even for root), runc cannot give sandboxes their
/// negative score, so containerd is told to clamp scores to its own.
pub fn has_cap_sys_resource() -> bool {
    const CAP_SYS_RESOURCE: u32 = 24;
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let hex = s
                .lines()
                .find_map(|l| l.strip_prefix("CapEff:"))?
                .trim()
                .to_string();
            u64::from_str_radix(&hex, 16).ok()
        })
        .is_some_and(|caps| caps & (1 << CAP_SYS_RESOURCE) != 0)
}

/// The containerd 1.6 configuration (version 2 schema) for these paths.
pub fn render_config(paths: &ContainerdPaths, sandbox_image: &str) -> String {
    format!(
        r#"# Written by ferrokube's node agent; rewritten at every start.
version = 2
root = "{root}"
state = "{state}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "{socket}"

[plugins."io.containerd.internal.v1.opt"]
  path = "{opt}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{sandbox_image}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  disable_apparmor = true
  restrict_oom_score_adj = {restrict_oom}

[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
  SystemdCgroup = false
  Root = "{runc_root}"

[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "{cni_bin}"
  conf_dir = "{cni_conf}"

[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = "{certs}"
"#,
        root = toml_str(&paths.root),
        state = toml_str(&paths.state),
        socket = toml_str(&paths.socket),
        opt = toml_str(&paths.dir.join("opt")),
        sandbox_image = sandbox_image.replace('"', ""),
        runc_root = toml_str(&paths.runc_root),
        cni_bin = CNI_BIN_DIR,
        cni_conf = toml_str(&paths.cni_conf_dir),
        certs = toml_str(&paths.certs_dir),
        restrict_oom = !has_cap_sys_resource(),
    )
}

/// A running, supervised containerd. `stop` ends it; dropping the handle does not.
pub struct Containerd {
    paths: ContainerdPaths,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Containerd {
    /// Writes the config, starts containerd and waits (up to 60 s) until its CRI
    /// answers; then supervises it until `stop` (or `cancel`).
    pub async fn start(
        data_dir: &Path,
        sandbox_image: &str,
        cancel: &CancellationToken,
    ) -> anyhow::Result<Containerd> {
        let paths = ContainerdPaths::new(data_dir);
        for d in [
            &paths.dir,
            &paths.root,
            &paths.state,
            &paths.cni_conf_dir,
            &paths.certs_dir,
        ] {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        std::fs::write(&paths.config, render_config(&paths, sandbox_image))
            .with_context(|| format!("writing {}", paths.config.display()))?;
        let child = spawn(&paths)?;
        let runtime = RemoteRuntime::connect(&paths.endpoint())?;
        let mut child = Some(child);
        wait_ready(&runtime, &paths, &mut child).await?;
        let stop = cancel.child_token();
        let task = tokio::spawn(supervise(paths.clone(), child, stop.clone()));
        Ok(Containerd { paths, stop, task })
    }

    /// The CRI endpoint (`unix://` and the socket) of this containerd.
    pub fn endpoint(&self) -> String {
        self.paths.endpoint()
    }

    /// Stops containerd: SIGTERM, SIGKILL after 10 s.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

#[expect(
    unsafe_code,
    reason = "pre_exec runs code in the forked child before exec: it sets PR_SET_PDEATHSIG"
)]
fn spawn(paths: &ContainerdPaths) -> anyhow::Result<Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&paths.log)
        .with_context(|| format!("opening {}", paths.log.display()))?;
    let log2 = log.try_clone()?;
    let mut cmd = Command::new("containerd");
    cmd.arg("-c")
        .arg(&paths.config)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log2))
        .kill_on_drop(false);
    // SAFETY: prctl is async-signal-safe; it only asks the kernel to end the child
    // if the thread that started it dies, so no containerd outlives a crashed agent.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    let child = cmd.spawn().context(
        "starting containerd (Debian package `containerd`; scripts/install-deps.sh installs it)",
    )?;
    tracing::info!(pid = child.id(), config = %paths.config.display(), "containerd started");
    Ok(child)
}

async fn wait_ready(
    runtime: &RemoteRuntime,
    paths: &ContainerdPaths,
    child: &mut Option<Child>,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(c) = child.as_mut() {
            if let Ok(Some(status)) = c.try_wait() {
                anyhow::bail!(
                    "containerd exited ({status}) before it was ready; see {}",
                    paths.log.display()
                );
            }
        }
        if paths.socket.exists() {
            if let Ok(v) = runtime.version().await {
                tracing::info!(runtime = %v.runtime_name, version = %v.runtime_version, "containerd ready");
                return Ok(());
            }
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!(
                "containerd did not answer on {} within 60 s",
                paths.socket.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[expect(
    unsafe_code,
    reason = "SIGTERM to the supervised containerd by its PID (tokio's Child only sends SIGKILL)"
)]
async fn terminate(child: &mut Child) {
    if let Some(pid) = child.id() {
        // SAFETY: kill(2) on the PID of our own child, which we have not reaped.
        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    }
    match tokio::time::timeout(Duration::from_secs(10), child.wait()).await {
        Ok(_) => {}
        Err(_) => {
            let _ = child.kill().await;
        }
    }
}

async fn supervise(paths: ContainerdPaths, mut child: Option<Child>, stop: CancellationToken) {
    let runtime = match RemoteRuntime::connect(&paths.endpoint()) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("containerd client: {e:#}");
            return;
        }
    };
    let mut backoff = Duration::from_secs(1);
    loop {
        let Some(c) = child.as_mut() else { return };
        tokio::select! {
            _ = stop.cancelled() => {
                terminate(c).await;
                tracing::info!("containerd stopped");
                return;
            }
            status = c.wait() => {
                tracing::warn!(?status, "containerd exited; restarting in {backoff:?}");
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
        match spawn(&paths) {
            Ok(c) => {
                child = Some(c);
                if let Err(e) = wait_ready(&runtime, &paths, &mut child).await {
                    tracing::error!("containerd restart: {e:#}");
                } else {
                    backoff = Duration::from_secs(1);
                }
            }
            Err(e) => {
                tracing::error!("containerd restart: {e:#}");
                // Loop again only if we have a child; otherwise keep trying with back-off.
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    if let Ok(c) = spawn(&paths) {
                        child = Some(c);
                        break;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_node_has_its_own_runc_root_under_its_state() {
        let paths = ContainerdPaths::new(Path::new("/d/node-1"));
        let config = render_config(&paths, "pause");
        assert!(
            config.contains("  Root = \"/d/node-1/agent/containerd/state/runc\"\n"),
            "{config}"
        );
        assert!(config.contains("state = \"/d/node-1/agent/containerd/state\"\n"));
    }
}
