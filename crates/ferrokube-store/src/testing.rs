//! Real etcd for tests and benchmarks: one member or a three-member cluster
//! on free loopback ports, in a temporary directory. Dropping it kills the
//! members (by pid) and removes their data.
//!
//! The binary is `FERROKUBE_ETCD_BIN` or `etcd` on the PATH (Debian's
//! `etcd-server`, 3.4). Members keep etcd's normal durability.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a member may take to answer after it starts.
const START_TIMEOUT: Duration = Duration::from_secs(30);

fn etcd_bin() -> PathBuf {
    std::env::var_os("FERROKUBE_ETCD_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("etcd"))
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// One etcd member's settings.
#[derive(Clone)]
struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    data_dir: PathBuf,
}

impl Member {
    fn client_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }
    fn peer_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.peer_port)
    }

    fn spawn(&self, initial_cluster: &str, state: &str) -> std::io::Result<Child> {
        std::fs::create_dir_all(&self.data_dir)?;
        let log = std::fs::File::create(self.data_dir.with_extension("log"))?;
        Command::new(etcd_bin())
            .arg("--name")
            .arg(&self.name)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--listen-client-urls")
            .arg(self.client_url())
            .arg("--advertise-client-urls")
            .arg(self.client_url())
            .arg("--listen-peer-urls")
            .arg(self.peer_url())
            .arg("--initial-advertise-peer-urls")
            .arg(self.peer_url())
            .arg("--initial-cluster")
            .arg(initial_cluster)
            .arg("--initial-cluster-state")
            .arg(state)
            .arg("--initial-cluster-token")
            .arg("ferrokube-test")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!(
                        "cannot start {}: {e} (install it with `apt-get install etcd-server`)",
                        etcd_bin().display()
                    ),
                )
            })
    }
}

/// Waits until every endpoint answers a request.
fn wait_healthy(endpoints: &[String], children: &mut [Option<Child>]) -> std::io::Result<()> {
    let deadline = Instant::now() + START_TIMEOUT;
    for ep in endpoints {
        loop {
            for c in children.iter_mut().flatten() {
                if let Ok(Some(status)) = c.try_wait() {
                    return Err(std::io::Error::other(format!(
                        "etcd exited at start ({status})"
                    )));
                }
            }
            let ok = Command::new("etcdctl")
                .env("ETCDCTL_API", "3")
                .arg("--endpoints")
                .arg(ep)
                .arg("--command-timeout=2s")
                .arg("endpoint")
                .arg("health")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                break;
            }
            if Instant::now() > deadline {
                return Err(std::io::Error::other(format!(
                    "etcd at {ep} not healthy within {START_TIMEOUT:?}"
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(())
}

fn kill(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// A cluster of etcd members on loopback.
pub struct EtcdCluster {
    members: Vec<Member>,
    children: Vec<Option<Child>>,
    initial_cluster: String,
    _dir: Option<tempfile::TempDir>,
}

/// A single etcd member on loopback.
pub type EtcdProcess = EtcdCluster;

impl EtcdCluster {
    /// One member in a new temporary directory.
    pub fn start() -> std::io::Result<EtcdCluster> {
        Self::start_members(1, None)
    }

    /// One member with its data under `dir` (removed with the cluster).
    pub fn start_in(dir: &Path) -> std::io::Result<EtcdCluster> {
        Self::start_members(1, Some(dir))
    }

    /// `n` members in a new temporary directory.
    pub fn start_cluster(n: usize) -> std::io::Result<EtcdCluster> {
        Self::start_members(n, None)
    }

    fn start_members(n: usize, parent: Option<&Path>) -> std::io::Result<EtcdCluster> {
        let dir = match parent {
            Some(p) => tempfile::Builder::new().prefix("etcd").tempdir_in(p)?,
            None => tempfile::Builder::new()
                .prefix("ferrokube-etcd")
                .tempdir()?,
        };
        // Ports can be taken between choosing and binding: retry a few times.
        let mut last_err = None;
        for _attempt in 0..3 {
            let mut members = Vec::new();
            for i in 0..n {
                members.push(Member {
                    name: format!("m{i}"),
                    client_port: free_port()?,
                    peer_port: free_port()?,
                    data_dir: dir.path().join(format!("m{i}-{}", rand::random::<u32>())),
                });
            }
            let initial_cluster = members
                .iter()
                .map(|m| format!("{}={}", m.name, m.peer_url()))
                .collect::<Vec<_>>()
                .join(",");
            let mut children = Vec::new();
            let mut spawn_err = None;
            for m in &members {
                match m.spawn(&initial_cluster, "new") {
                    Ok(c) => children.push(Some(c)),
                    Err(e) => {
                        spawn_err = Some(e);
                        break;
                    }
                }
            }
            let endpoints: Vec<String> = members.iter().map(|m| m.client_url()).collect();
            let result = match spawn_err {
                Some(e) => Err(e),
                None => wait_healthy(&endpoints, &mut children),
            };
            match result {
                Ok(()) => {
                    return Ok(EtcdCluster {
                        members,
                        children,
                        initial_cluster,
                        _dir: Some(dir),
                    })
                }
                Err(e) => {
                    for c in &mut children {
                        kill(c);
                    }
                    if e.kind() == std::io::ErrorKind::NotFound {
                        return Err(e);
                    }
                    last_err = Some(e);
                }
            }
        }
        Err(last_err.unwrap_or_else(|| std::io::Error::other("etcd did not start")))
    }

    /// The first member's client URL.
    pub fn endpoint(&self) -> String {
        self.members[0].client_url()
    }

    /// Every member's client URL.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|m| m.client_url()).collect()
    }

    /// Kills member `i` (SIGKILL).
    pub fn stop_member(&mut self, i: usize) {
        if let Some(c) = self.children.get_mut(i) {
            kill(c);
        }
    }

    /// Starts member `i` again on its data and waits until it answers.
    pub fn start_member(&mut self, i: usize) -> std::io::Result<()> {
        let Some(member) = self.members.get(i).cloned() else {
            return Err(std::io::Error::other(format!("no member {i}")));
        };
        if self.children[i].is_some() {
            return Ok(());
        }
        self.children[i] = Some(member.spawn(&self.initial_cluster, "existing")?);
        wait_healthy(&[member.client_url()], &mut self.children)
    }

    /// Stops every member and starts them again on their data.
    pub fn restart(&mut self) -> std::io::Result<()> {
        for c in &mut self.children {
            kill(c);
        }
        for i in 0..self.members.len() {
            let m = self.members[i].clone();
            self.children[i] = Some(m.spawn(&self.initial_cluster, "existing")?);
        }
        let endpoints = self.endpoints();
        wait_healthy(&endpoints, &mut self.children)
    }

    /// The member that leads the cluster now, as the members running say
    /// (`etcdctl endpoint status`); `None` if none answers or they name
    /// no running member.
    pub fn leader(&self) -> Option<usize> {
        let mut ids = Vec::new();
        let mut leader = None;
        for (i, m) in self.members.iter().enumerate() {
            if self.children[i].is_none() {
                ids.push(None);
                continue;
            }
            let out = Command::new("etcdctl")
                .env("ETCDCTL_API", "3")
                .arg("--endpoints")
                .arg(m.client_url())
                .args(["--command-timeout=2s", "endpoint", "status", "-w", "fields"])
                .stderr(Stdio::null())
                .output()
                .ok()?;
            let text = String::from_utf8_lossy(&out.stdout);
            let field = |name: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(&format!("\"{name}\" : ")))
                    .map(|v| v.trim().to_string())
            };
            ids.push(field("MemberID"));
            leader = leader.or(field("Leader"));
        }
        let leader = leader?;
        ids.iter()
            .position(|id| id.as_deref() == Some(leader.as_str()))
    }

    /// The etcd version, as `etcd --version` prints it.
    pub fn version(&self) -> String {
        Command::new(etcd_bin())
            .arg("--version")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.lines().next().map(|l| l.trim().to_string()))
            .unwrap_or_else(|| "etcd (unknown version)".into())
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for c in &mut self.children {
            kill(c);
        }
    }
}
