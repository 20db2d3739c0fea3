//! What a lab made, written to `/run/ferrokube-lab/<bridge netns>.json` as it
//! makes it, so that whoever removes the lab (its `Drop`, or
//! `ferrokube-lab down` after the process that made it is gone) knows every
//! process, directory and network object to remove, and removes only those.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::net::{run, Net};

/// Where the records of the labs on this machine are kept.
pub(crate) const RECORD_DIR: &str = "/run/ferrokube-lab";

/// One node of a lab, as recorded.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct NodeRecord {
    pub(crate) name: String,
    pub(crate) netns: String,
    pub(crate) data_dir: PathBuf,
    pub(crate) agent_pid: Option<u32>,
}

/// A lab, as recorded.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Record {
    pub(crate) net: Net,
    /// The lab's directory (server and node data dirs, logs).
    pub(crate) dir: PathBuf,
    /// The `ferrokube` binary (for `ferrokube killall`).
    pub(crate) ferrokube: PathBuf,
    pub(crate) server_pid: Option<u32>,
    pub(crate) server_data_dir: PathBuf,
    pub(crate) nodes: Vec<NodeRecord>,
}

impl Record {
    pub(crate) fn path(net: Net) -> PathBuf {
        Path::new(RECORD_DIR).join(format!("{}.json", net.bridge_ns()))
    }

    /// Writes the record (best effort: a lab whose record cannot be written
    /// still removes itself on Drop).
    pub(crate) fn save(&self) {
        let _ = std::fs::create_dir_all(RECORD_DIR);
        if let Ok(json) = serde_json::to_vec_pretty(self) {
            let path = Record::path(self.net);
            let tmp = path.with_extension("tmp");
            if std::fs::write(&tmp, json).is_ok() {
                let _ = std::fs::rename(&tmp, &path);
            }
        }
    }

    /// Every lab recorded on this machine.
    pub(crate) fn all() -> Vec<Record> {
        let Ok(dir) = std::fs::read_dir(RECORD_DIR) else {
            return Vec::new();
        };
        dir.flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .filter_map(|e| serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok())
            .collect()
    }

    /// Removes everything the lab made: the agents (SIGTERM, then SIGKILL),
    /// then each node's containers, shims, pod namespaces and tables
    /// (`ferrokube killall` inside the node's namespace), the server, the
    /// network, the directory and the record. What cannot be removed is
    /// returned, one line each.
    pub(crate) fn remove(&self) -> Vec<String> {
        let mut errors = Vec::new();
        for node in &self.nodes {
            if let Some(pid) = node.agent_pid {
                stop_pid(pid, &node.data_dir.to_string_lossy());
            }
        }
        for node in &self.nodes {
            self.killall(node, &mut errors);
        }
        if let Some(pid) = self.server_pid {
            stop_pid(pid, &self.server_data_dir.to_string_lossy());
        }
        self.net.remove(self.nodes.len(), &mut errors);
        if self.dir.exists() {
            if let Err(e) = std::fs::remove_dir_all(&self.dir) {
                errors.push(format!("removing {}: {e}", self.dir.display()));
            }
        }
        if errors.is_empty() {
            let _ = std::fs::remove_file(Record::path(self.net));
        }
        errors
    }

    /// `ferrokube killall --data-dir` of a node, inside its namespace (the
    /// bridge and tables it removes are that namespace's).
    fn killall(&self, node: &NodeRecord, errors: &mut Vec<String>) {
        let ns = Path::new("/run/netns").join(&node.netns);
        if !ns.exists() || !node.data_dir.exists() {
            return;
        }
        let net = format!("--net={}", ns.display());
        let data = node.data_dir.to_string_lossy();
        let bin = self.ferrokube.to_string_lossy();
        if let Err(e) = run(
            "nsenter",
            &[&net, "--", &bin, "killall", "--data-dir", &data],
        ) {
            errors.push(format!("{e:#}"));
        }
    }
}

/// Whether `pid` is a live (not zombie) process whose command line holds
/// `marker` (so a reused pid is never signalled).
pub(crate) fn alive_with(pid: u32, marker: &str) -> bool {
    let proc_dir = Path::new("/proc").join(pid.to_string());
    let cmdline = std::fs::read(proc_dir.join("cmdline")).unwrap_or_default();
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    let stat = std::fs::read_to_string(proc_dir.join("stat")).unwrap_or_default();
    let state = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().next().map(str::to_string));
    cmdline.contains(marker) && state.is_some_and(|s| s != "Z" && s != "X")
}

/// Sends `signal` (a `kill -s` name) to `pid`.
pub(crate) fn signal(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args(["-s", signal, &pid.to_string()])
        .output();
}

/// Stops `pid` if it still runs `marker`: SIGTERM, then SIGKILL after 10 s.
pub(crate) fn stop_pid(pid: u32, marker: &str) {
    if !alive_with(pid, marker) {
        return;
    }
    signal(pid, "TERM");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if !alive_with(pid, marker) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    signal(pid, "KILL");
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive_with(pid, marker) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
}
