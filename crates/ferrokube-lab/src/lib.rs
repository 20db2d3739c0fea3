//! The multi-node test lab: a ferrokube cluster of several nodes on one
//! machine, as kind and k3d make one, each node in a network namespace of its
//! own. [`Lab::up`] builds the network (a bridge in its own namespace, one
//! namespace per node joined to it by a veth pair, the host joined through
//! one veth; a /24 no other lab and nothing on the machine uses), starts
//! `ferrokube server --disable-agent` in the host's namespace on the host's
//! lab address, then one `ferrokube agent` per node inside the node's
//! namespace (`nsenter --net`, so the mounts stay the host's), each with its
//! own data dir (and so its own containerd root, state, socket and runc
//! root), and waits for every node to be Ready. Dropping the [`Lab`] removes
//! all of it: processes by pid, the nodes' containers and pod namespaces
//! (`ferrokube killall` in each node), namespaces, veths, the bridge, the
//! host's nftables table and the lab's directory. Used by `ferrokube`'s
//! end-to-end tests and, through the `ferrokube-lab` binary, by
//! `scripts/lab.sh`.

mod net;
mod record;

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

use crate::net::Net;
use crate::record::{NodeRecord, Record};

/// What lab to build.
#[derive(Debug, Clone)]
pub struct LabOptions {
    /// How many nodes (each an agent in its own namespace).
    pub nodes: usize,
    /// More flags for `ferrokube server`.
    pub server_args: Vec<String>,
    /// More flags for every `ferrokube agent`.
    pub agent_args: Vec<String>,
    /// The `ferrokube` binary (a test of the `ferrokube` crate passes
    /// `env!("CARGO_BIN_EXE_ferrokube")`). Default: `$FERROKUBE_BIN`, else
    /// the workspace's `target/debug/ferrokube`.
    pub ferrokube: PathBuf,
    /// Give every node the project's busybox image (built by
    /// `scripts/build-images.sh`), imported by the agent at start.
    pub busybox: bool,
    /// More image archives every node imports at start.
    pub images: Vec<PathBuf>,
    /// How long the server, then each node, may take to become ready.
    pub ready_timeout: Duration,
    /// `RUST_LOG` of the server and agents.
    pub rust_log: String,
}

impl Default for LabOptions {
    fn default() -> Self {
        LabOptions {
            nodes: 3,
            server_args: Vec::new(),
            agent_args: Vec::new(),
            ferrokube: std::env::var_os("FERROKUBE_BIN")
                .map(PathBuf::from)
                .unwrap_or_else(|| workspace_root().join("target/debug/ferrokube")),
            busybox: true,
            images: Vec::new(),
            ready_timeout: Duration::from_secs(180),
            rust_log: std::env::var("FK_LAB_RUST_LOG").unwrap_or_else(|_| "info".into()),
        }
    }
}

/// The workspace's root (this crate lives in `crates/ferrokube-lab`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A node of the lab.
#[derive(Debug, Clone)]
pub struct LabNode {
    /// The Node's name.
    pub name: String,
    /// Its address on the lab network (its InternalIP).
    pub ip: Ipv4Addr,
    /// Its network namespace (under `/run/netns`).
    pub netns: String,
}

/// A running lab. Dropping it removes everything it made.
pub struct Lab {
    opts: LabOptions,
    record: Record,
    nodes: Vec<LabNode>,
    server: Option<Child>,
    agents: Vec<Option<Child>>,
    port: u16,
    token: String,
    /// Whether Drop leaves the lab running (`ferrokube-lab up --detach`).
    detached: bool,
}

impl Lab {
    /// Builds the network, starts the server and the agents, and waits for
    /// every node to be Ready (each within `opts.ready_timeout`).
    pub fn up(opts: LabOptions) -> anyhow::Result<Lab> {
        if opts.nodes == 0 || opts.nodes > net::MAX_NODES {
            bail!(
                "a lab has 1 to {} nodes, not {}",
                net::MAX_NODES,
                opts.nodes
            );
        }
        if !opts.ferrokube.is_file() {
            bail!(
                "no ferrokube binary at {} (cargo build -p ferrokube, or set FERROKUBE_BIN)",
                opts.ferrokube.display()
            );
        }
        let net = Net::claim()?;
        let dir = std::env::temp_dir().join(format!("ferrokube-lab-{}", net.bridge_ns()));
        let record = Record {
            net,
            server_data_dir: dir.join("server"),
            dir,
            ferrokube: opts.ferrokube.clone(),
            server_pid: None,
            nodes: Vec::new(),
        };
        record.save();
        let mut lab = Lab {
            opts,
            record,
            nodes: Vec::new(),
            server: None,
            agents: Vec::new(),
            port: 0,
            token: String::new(),
            detached: false,
        };
        // From here on, a failure drops `lab`, which removes what was made.
        lab.build()?;
        Ok(lab)
    }

    fn build(&mut self) -> anyhow::Result<()> {
        let net = self.record.net;
        if self.record.dir.exists() {
            std::fs::remove_dir_all(&self.record.dir)
                .with_context(|| format!("removing a stale {}", self.record.dir.display()))?;
        }
        std::fs::create_dir_all(&self.record.dir)?;
        net.create_bridge()?;
        for i in 0..self.opts.nodes {
            let node = LabNode {
                name: format!("node-{i}"),
                ip: net.node_ip(i),
                netns: net.node_ns(i),
            };
            self.record.nodes.push(NodeRecord {
                name: node.name.clone(),
                netns: node.netns.clone(),
                data_dir: self.record.dir.join(&node.name),
                agent_pid: None,
            });
            self.nodes.push(node);
            self.agents.push(None);
            self.record.save();
            net.create_node(i)?;
        }
        self.start_server()?;
        self.give_images()?;
        for i in 0..self.nodes.len() {
            self.spawn_agent(i)?;
        }
        let deadline = Instant::now() + self.opts.ready_timeout;
        for i in 0..self.nodes.len() {
            self.wait_node_ready(i, deadline)?;
        }
        Ok(())
    }

    /// Starts the server on the host's lab address, after the network (its
    /// serving certificate names the host's addresses at start).
    fn start_server(&mut self) -> anyhow::Result<()> {
        let host = self.record.net.host_ip();
        self.port = TcpListener::bind((host, 0))
            .and_then(|l| l.local_addr())
            .context("finding a free port on the lab address")?
            .port();
        let data = self.record.server_data_dir.clone();
        std::fs::create_dir_all(&data)?;
        let log = std::fs::File::create(self.record.dir.join("server.log"))?;
        let child = Command::new(&self.opts.ferrokube)
            .arg("server")
            .arg("--data-dir")
            .arg(&data)
            .args(["--bind-address", &host.to_string()])
            .args(["--https-listen-port", &self.port.to_string()])
            .arg("--disable-agent")
            .args(&self.opts.server_args)
            .env("RUST_LOG", &self.opts.rust_log)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting ferrokube server")?;
        self.record.server_pid = Some(child.id());
        self.record.save();
        self.server = Some(child);
        self.wait_server_ready()?;
        self.token = std::fs::read_to_string(data.join("token"))
            .context("reading the server's join token")?
            .trim()
            .to_string();
        Ok(())
    }

    fn wait_server_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + self.opts.ready_timeout;
        loop {
            if let Some(status) = self
                .server
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!(
                    "ferrokube server exited ({status}):\n{}",
                    tail(&self.server_log(), 30)
                );
            }
            if self.kubeconfig().exists()
                && self.kubectl(&["get", "--raw", "/readyz"]).status.success()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "the server was not ready in time:\n{}",
                    tail(&self.server_log(), 30)
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Puts the images every node imports at start into its data dir.
    fn give_images(&self) -> anyhow::Result<()> {
        let mut archives = self.opts.images.clone();
        if self.opts.busybox {
            let out_dir = self.record.dir.join("images");
            let script = workspace_root().join("scripts/build-images.sh");
            let out = Command::new("bash")
                .arg(&script)
                .arg(&out_dir)
                .stdin(Stdio::null())
                .output()
                .with_context(|| format!("running {}", script.display()))?;
            if !out.status.success() {
                bail!(
                    "{}: {}",
                    script.display(),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            archives.push(out_dir.join("busybox.tar"));
        }
        for node in &self.record.nodes {
            let dir = node.data_dir.join("agent/images");
            std::fs::create_dir_all(&dir)?;
            for a in &archives {
                let name = a
                    .file_name()
                    .context("an image archive without a file name")?;
                std::fs::copy(a, dir.join(name))
                    .with_context(|| format!("copying {}", a.display()))?;
            }
        }
        Ok(())
    }

    /// Starts node `i`'s agent inside its namespace.
    fn spawn_agent(&mut self, i: usize) -> anyhow::Result<()> {
        let node = &self.record.nodes[i];
        std::fs::create_dir_all(&node.data_dir)?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.record.dir.join(format!("{}.log", node.name)))?;
        let child = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", node.netns))
            .arg("--")
            .arg(&self.opts.ferrokube)
            .arg("agent")
            .args(["--server", &self.server_url()])
            .args(["--token", &self.token])
            .args(["--node-name", &node.name])
            .arg("--data-dir")
            .arg(&node.data_dir)
            .args(&self.opts.agent_args)
            .env("RUST_LOG", &self.opts.rust_log)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting ferrokube agent with nsenter")?;
        // nsenter --net execs the agent: this pid is the agent's.
        self.record.nodes[i].agent_pid = Some(child.id());
        self.record.save();
        self.agents[i] = Some(child);
        Ok(())
    }

    fn wait_node_ready(&mut self, i: usize, deadline: Instant) -> anyhow::Result<()> {
        let name = self.nodes[i].name.clone();
        let ready = "{.status.conditions[?(@.type==\"Ready\")].status}";
        loop {
            if let Some(status) = self.agents[i]
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!(
                    "{name}'s agent exited ({status}):\n{}",
                    tail(&self.agent_log(i), 30)
                );
            }
            let out = self.kubectl(&["get", "node", &name, "-o", &format!("jsonpath={ready}")]);
            if out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "True" {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{name} was not Ready in time:\n{}\n--- server ---\n{}",
                    tail(&self.agent_log(i), 30),
                    tail(&self.server_log(), 20)
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// The admin kubeconfig (the server's).
    pub fn kubeconfig(&self) -> PathBuf {
        self.record.server_data_dir.join("kubeconfig.yaml")
    }

    /// The server's URL on the lab network.
    pub fn server_url(&self) -> String {
        format!("https://{}:{}", self.server_ip(), self.port)
    }

    /// The join token (the server's DATA_DIR/token).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The lab's directory: `server/` (the server's data dir), one data dir
    /// per node, and the logs.
    pub fn dir(&self) -> &Path {
        &self.record.dir
    }

    /// Node `i`'s data dir.
    pub fn node_data_dir(&self, i: usize) -> &Path {
        &self.record.nodes[i].data_dir
    }

    /// The server's log so far.
    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.record.dir.join("server.log")).unwrap_or_default()
    }

    /// Node `i`'s agent's log so far.
    pub fn agent_log(&self, i: usize) -> String {
        let name = &self.record.nodes[i].name;
        std::fs::read_to_string(self.record.dir.join(format!("{name}.log"))).unwrap_or_default()
    }

    /// Runs the real kubectl against the lab (never the user's own config).
    pub fn kubectl(&self, args: &[&str]) -> Output {
        let run = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(self.kubeconfig())
            .arg("--request-timeout=20s")
            .args(args)
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .output();
        run.unwrap_or_else(|e| failed_output(&format!("running kubectl: {e}")))
    }

    /// Runs kubectl and returns its stdout; panics (a failed test) with its
    /// stderr and the server's log if it fails.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}\n--- server log ---\n{}",
            String::from_utf8_lossy(&out.stderr),
            tail(&self.server_log(), 30)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Writes `manifest` (JSON or YAML) into the lab's directory as `name`
    /// and `kubectl apply`s it (a failure fails the test, as `kubectl_ok`).
    pub fn apply(&self, name: &str, manifest: &str) -> String {
        let file = self.record.dir.join(format!("{name}.manifest"));
        if let Err(e) = std::fs::write(&file, manifest) {
            panic!("writing {}: {e}", file.display());
        }
        self.kubectl_ok(&["apply", "-f", &file.to_string_lossy()])
    }

    /// The lab's nodes.
    pub fn nodes(&self) -> &[LabNode] {
        &self.nodes
    }

    /// The host's address on the lab (the server's).
    pub fn server_ip(&self) -> Ipv4Addr {
        self.record.net.host_ip()
    }

    /// Runs a command in node `i`'s network namespace (`nsenter --net`).
    pub fn in_node(&self, i: usize, cmd: &[&str]) -> Output {
        let run = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.nodes[i].netns))
            .arg("--")
            .args(cmd)
            .stdin(Stdio::null())
            .output();
        run.unwrap_or_else(|e| failed_output(&format!("running nsenter: {e}")))
    }

    /// Kills node `i`'s agent at once (SIGKILL), as a crash would; its
    /// containerd follows it, its pods' containers keep running.
    pub fn kill_agent(&mut self, i: usize) {
        if let Some(mut child) = self.agents[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.record.nodes[i].agent_pid = None;
        self.record.save();
    }

    /// Starts node `i`'s agent again (after [`Lab::kill_agent`]) on its data
    /// dir; does not wait for the node to be Ready.
    pub fn start_agent(&mut self, i: usize) {
        if self.agents[i].is_some() {
            return;
        }
        if let Err(e) = self.spawn_agent(i) {
            panic!("starting {}'s agent again: {e:#}", self.nodes[i].name);
        }
    }

    /// Cuts node `i` off the lab network (its port on the bridge down).
    pub fn cut_link(&self, i: usize) {
        if let Err(e) = self.record.net.set_link(i, false) {
            panic!("cutting {}'s link: {e:#}", self.nodes[i].name);
        }
    }

    /// Joins node `i` to the lab network again.
    pub fn restore_link(&self, i: usize) {
        if let Err(e) = self.record.net.set_link(i, true) {
            panic!("restoring {}'s link: {e:#}", self.nodes[i].name);
        }
    }

    /// Leaves the lab running when dropped (`ferrokube-lab up --detach`);
    /// [`remove_all`] removes it later.
    pub fn detach(mut self) {
        self.detached = true;
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if self.detached {
            return;
        }
        let errors = self.record.remove();
        // Reap our children (the record stopped them by pid).
        for child in self
            .agents
            .iter_mut()
            .chain(std::iter::once(&mut self.server))
        {
            if let Some(mut c) = child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        for e in errors {
            eprintln!("ferrokube-lab: while removing the lab: {e}");
        }
    }
}

/// Removes every lab recorded on this machine (those left by a process that
/// could not remove its own, or detached ones); what could not be removed,
/// one line each.
pub fn remove_all() -> Vec<String> {
    Record::all().iter().flat_map(|r| r.remove()).collect()
}

/// An Output for a command that could not even start.
fn failed_output(message: &str) -> Output {
    use std::os::unix::process::ExitStatusExt as _;
    Output {
        status: std::process::ExitStatus::from_raw(127 << 8),
        stdout: Vec::new(),
        stderr: message.as_bytes().to_vec(),
    }
}

/// The last `n` lines of a text.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A busybox pod pinned to `node` by its hostname label, labelled `labels`,
/// running `sh -c script`, as the lab's tests make them (every node has the
/// image; a second's grace so deletions are quick).
pub fn busybox_pod_on(name: &str, node: &str, labels: serde_json::Value, script: &str) -> String {
    serde_json::json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
        "spec": {"nodeSelector": {"kubernetes.io/hostname": node},
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "c", "image": "busybox:1.35", "imagePullPolicy": "IfNotPresent",
                "command": ["sh", "-c", script]}]}
    })
    .to_string()
}
