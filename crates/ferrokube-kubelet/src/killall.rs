//! `ferrokube killall`: what k3s' killall script does for k3s, for the node of one
//! data dir. It stops the ferrokube process running that node and the containerd it
//! supervises, kills the node's shims and every process under them (the pods'
//! sandboxes and containers), unmounts what is mounted under the data dir, removes
//! the pods' network namespaces, their veths, the pods' bridge and the node's
//! nftables tables, the CNI plugins' cache entries of its sandboxes, and the pod
//! network between nodes (the routes of the keeper's protocol, the VXLAN device).
//!
//! Only what is this node's is touched: processes are recognised by the data dir's
//! containerd config and socket on their command lines, sandboxes by the data dir's
//! containerd state, network namespaces by the sandbox processes holding them or by
//! the CNI results of those sandboxes; the bridge and tables by their names.

use std::collections::{BTreeSet, HashSet};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::containerd::ContainerdPaths;

/// Where libcni keeps the result of each ADD (read by containerd 1.6's CNI).
pub const CNI_CACHE_DIR: &str = "/var/lib/cni/results";

/// The nftables tables a node makes, as (family, name): the pods' masquerade
/// rule, the service proxy's, and the network policy controller's.
pub fn node_tables(bridge: &str) -> Vec<(&'static str, String)> {
    vec![
        ("ip", crate::cni::masquerade_table(bridge)),
        ("ip", ferrokube_nft::PROXY_TABLE.to_string()),
        ("inet", ferrokube_nft::NETPOL_TABLE.to_string()),
    ]
}

/// What was found and removed.
#[derive(Debug, Default)]
pub struct Report {
    /// The ferrokube and containerd processes stopped (pid, name).
    pub stopped: Vec<(i32, String)>,
    /// How many containerd shims were killed.
    pub shims: usize,
    /// Processes under the shims (sandboxes, containers, execs).
    pub processes: usize,
    /// Mount points under the data dir that were unmounted.
    pub unmounted: Vec<PathBuf>,
    /// The network namespaces removed.
    pub netns: Vec<PathBuf>,
    /// Network namespaces that could not be removed, with why.
    pub netns_left: Vec<(PathBuf, String)>,
    /// The network interfaces removed (the pods' veths, the bridge).
    pub links: Vec<String>,
    /// The nftables tables removed (family and name).
    pub tables: Vec<String>,
    /// What the pod network between nodes left that was removed (routes, device).
    pub pod_network: Vec<String>,
}

/// A process seen in /proc.
#[derive(Debug, Clone)]
struct Proc {
    pid: i32,
    ppid: i32,
    argv: Vec<String>,
}

fn processes() -> Vec<Proc> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            // `pid (comm) state ppid ...`; comm may hold spaces and parentheses.
            let after = &stat[stat.rfind(')')? + 1..];
            let ppid = after.split_whitespace().nth(1)?.parse().ok()?;
            let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            let argv = cmdline
                .split(|&b| b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            Some(Proc { pid, ppid, argv })
        })
        .collect()
}

/// Whether `argv` holds `flag` followed by `value` (or `flag=value`).
fn has_arg(argv: &[String], flag: &str, value: &Path) -> bool {
    let value = value.to_string_lossy();
    argv.windows(2)
        .any(|w| w[0] == flag && w[1] == value.as_ref())
        || argv
            .iter()
            .any(|a| a.strip_prefix(flag).and_then(|r| r.strip_prefix('=')) == Some(&value))
}

fn program(p: &Proc) -> &str {
    p.argv
        .first()
        .map(|a| a.rsplit('/').next().unwrap_or(a))
        .unwrap_or("")
}

/// The data dir's containerd processes.
fn is_our_containerd(p: &Proc, paths: &ContainerdPaths) -> bool {
    program(p) == "containerd" && has_arg(&p.argv, "-c", &paths.config)
        || program(p) == "containerd" && has_arg(&p.argv, "--config", &paths.config)
}

/// The data dir's shims (`containerd-shim-runc-v2 ... -address SOCKET`).
fn is_our_shim(p: &Proc, paths: &ContainerdPaths) -> bool {
    program(p).starts_with("containerd-shim") && has_arg(&p.argv, "-address", &paths.socket)
}

/// Every process under `roots` (not the roots themselves).
fn descendants(all: &[Proc], roots: &[i32]) -> Vec<i32> {
    let mut found: Vec<i32> = Vec::new();
    let mut frontier: Vec<i32> = roots.to_vec();
    while let Some(parent) = frontier.pop() {
        for p in all.iter().filter(|p| p.ppid == parent) {
            if !found.contains(&p.pid) && !roots.contains(&p.pid) {
                found.push(p.pid);
                frontier.push(p.pid);
            }
        }
    }
    found
}

fn alive(pid: i32) -> bool {
    // A zombie has exited: only its parent's wait is missing.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

#[expect(unsafe_code, reason = "kill(2): libc has no safe wrapper")]
fn signal(pid: i32, sig: i32) {
    // SAFETY: kill(2) with a pid read from /proc; at worst it fails with ESRCH.
    unsafe { libc::kill(pid, sig) };
}

/// Waits until none of `pids` is alive; false after `within`.
fn wait_gone(pids: &[i32], within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if pids.iter().all(|&p| !alive(p)) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// SIGTERM, then SIGKILL for what is still alive after `grace`.
fn terminate(pids: &[i32], grace: Duration) {
    for &p in pids {
        signal(p, libc::SIGTERM);
    }
    if !wait_gone(pids, grace) {
        for &p in pids {
            signal(p, libc::SIGKILL);
        }
        wait_gone(pids, Duration::from_secs(5));
    }
}

/// The network namespace a path (a process's `ns/net` or a bind mount of one) is.
fn netns_id(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// The ids of the sandboxes the data dir's containerd knows.
fn sandbox_ids(paths: &ContainerdPaths, shims: &[Proc]) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    let dir = paths
        .root
        .join("io.containerd.grpc.v1.cri")
        .join("sandboxes");
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            ids.insert(e.file_name().to_string_lossy().into_owned());
        }
    }
    for s in shims {
        if let Some(w) = s.argv.windows(2).find(|w| w[0] == "-id") {
            ids.insert(w[1].clone());
        }
    }
    ids.retain(|id| !id.is_empty() && !id.contains('/') && !id.starts_with('.'));
    ids
}

/// The CNI cache entries of `ids` in `cache_dir` (`NETWORK-ID-IFNAME` files), with
/// the network namespaces and host-side interfaces their results name.
fn cni_results(
    cache_dir: &Path,
    ids: &BTreeSet<String>,
    bridge: &str,
) -> (Vec<PathBuf>, BTreeSet<PathBuf>, BTreeSet<String>) {
    let (mut files, mut netns, mut links) = (Vec::new(), BTreeSet::new(), BTreeSet::new());
    let Ok(entries) = std::fs::read_dir(cache_dir) else {
        return (files, netns, links);
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !ids.iter().any(|id| name.contains(&format!("-{id}-"))) {
            continue;
        }
        if let Ok(text) = std::fs::read(e.path()) {
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&text) {
                let ifaces = v
                    .pointer("/result/interfaces")
                    .and_then(|i| i.as_array())
                    .cloned()
                    .unwrap_or_default();
                for i in ifaces {
                    let ifname = i.get("name").and_then(|n| n.as_str()).unwrap_or("");
                    match i.get("sandbox").and_then(|s| s.as_str()) {
                        Some(ns) if !ns.is_empty() => {
                            netns.insert(PathBuf::from(ns));
                        }
                        _ if !ifname.is_empty() && ifname != bridge => {
                            links.insert(ifname.to_string());
                        }
                        _ => {}
                    }
                }
            }
        }
        files.push(e.path());
    }
    (files, netns, links)
}

/// Mount points at or under `dir`, deepest first (from /proc/self/mountinfo,
/// whose paths escape spaces and the like as octal).
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut found: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_mountinfo(p)))
        .filter(|p| p.starts_with(dir))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found.dedup();
    found
}

fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = u32::from(b[i + 1] - b'0') * 64
                + u32::from(b[i + 2] - b'0') * 8
                + u32::from(b[i + 3] - b'0');
            out.push(u8::try_from(v).unwrap_or(b'?'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[expect(unsafe_code, reason = "umount2(2) with MNT_DETACH: std has no unmount")]
fn unmount(path: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: umount2 with a NUL-terminated path; MNT_DETACH unmounts lazily.
    unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) == 0 }
}

fn ip(args: &[&str]) -> Option<String> {
    let out = std::process::Command::new("ip").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn link_exists(name: &str) -> bool {
    ip(&["link", "show", "dev", name]).is_some()
}

/// Interfaces enslaved to `bridge` (`ip -o link show master BRIDGE`).
fn bridge_ports(bridge: &str) -> Vec<String> {
    ip(&["-o", "link", "show", "master", bridge])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(|n| n.trim().split('@').next().unwrap_or("").to_string())
        .filter(|n| !n.is_empty())
        .collect()
}

/// Cleans up the node of `data_dir`, whose pods are on `bridge`.
pub fn killall(data_dir: &Path, bridge: &str) -> anyhow::Result<Report> {
    killall_with(data_dir, bridge, Path::new(CNI_CACHE_DIR))
}

fn killall_with(data_dir: &Path, bridge: &str, cni_cache: &Path) -> anyhow::Result<Report> {
    let data_dir = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    let paths = ContainerdPaths::new(&data_dir);
    let mut report = Report::default();
    stop_node(&paths, &mut report);
    let (netns, cached_links, cache_files) = kill_shims(&paths, bridge, cni_cache, &mut report);
    // Mounts under the data dir (rootfs overlays, shm, volumes), deepest first.
    for m in mounts_under(&data_dir) {
        if unmount(&m) {
            report.unmounted.push(m);
        }
    }
    remove_netns(netns, &mut report);
    remove_links(bridge, cached_links, &mut report);
    report.pod_network = crate::podnet::remove_all();
    for (family, t) in node_tables(bridge) {
        let out = std::process::Command::new("nft")
            .args(["delete", "table", family, &t])
            .output();
        if out.is_ok_and(|o| o.status.success()) {
            report.tables.push(format!("{family} {t}"));
        }
    }
    for f in cache_files {
        let _ = std::fs::remove_file(f);
    }
    Ok(report)
}

/// Stops the node: the ferrokube process supervising this data dir's containerd,
/// then that containerd if it is still there.
fn stop_node(paths: &ContainerdPaths, report: &mut Report) {
    let all = processes();
    let containerds: Vec<&Proc> = all.iter().filter(|p| is_our_containerd(p, paths)).collect();
    let mut node: Vec<i32> = Vec::new();
    for c in &containerds {
        if let Some(parent) = all.iter().find(|p| p.pid == c.ppid) {
            let exe = std::fs::read_link(format!("/proc/{}/exe", parent.pid)).ok();
            let is_ferrokube = exe
                .as_deref()
                .and_then(Path::file_name)
                .is_some_and(|n| n.to_string_lossy().starts_with("ferrokube"));
            if is_ferrokube
                && parent.pid != std::process::id() as i32
                && !node.contains(&parent.pid)
            {
                node.push(parent.pid);
                report.stopped.push((parent.pid, "ferrokube".into()));
            }
        }
    }
    // Stopping the node stops its containerd; what remains is ended after.
    terminate(&node, Duration::from_secs(30));
    let containerd_pids: Vec<i32> = containerds
        .iter()
        .map(|p| p.pid)
        .filter(|&p| alive(p))
        .collect();
    for &p in &containerd_pids {
        report.stopped.push((p, "containerd".into()));
    }
    terminate(&containerd_pids, Duration::from_secs(10));
}

/// Kills the shims and what runs under them; returns what they leave behind:
/// the pods' network namespaces, the host ends of their veths from the CNI
/// cache, and the cache's files.
fn kill_shims(
    paths: &ContainerdPaths,
    bridge: &str,
    cni_cache: &Path,
    report: &mut Report,
) -> (BTreeSet<PathBuf>, BTreeSet<String>, Vec<PathBuf>) {
    // First the namespaces they hold.
    let all = processes();
    let shims: Vec<Proc> = all
        .iter()
        .filter(|p| is_our_shim(p, paths))
        .cloned()
        .collect();
    let shim_pids: Vec<i32> = shims.iter().map(|p| p.pid).collect();
    let under = descendants(&all, &shim_pids);
    let host_netns = netns_id(Path::new("/proc/1/ns/net"));
    let held: HashSet<(u64, u64)> = under
        .iter()
        .filter_map(|pid| netns_id(Path::new(&format!("/proc/{pid}/ns/net"))))
        .filter(|id| Some(*id) != host_netns)
        .collect();
    let ids = sandbox_ids(paths, &shims);
    let (cache_files, mut netns, cached_links) = cni_results(cni_cache, &ids, bridge);
    for dir in ["/run/netns", "/var/run/netns"] {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                if netns_id(&e.path()).is_some_and(|id| held.contains(&id)) {
                    netns.insert(e.path());
                }
            }
        }
    }
    for &p in &under {
        signal(p, libc::SIGKILL);
    }
    for &p in &shim_pids {
        signal(p, libc::SIGKILL);
    }
    wait_gone(&under, Duration::from_secs(10));
    wait_gone(&shim_pids, Duration::from_secs(10));
    report.shims = shim_pids.len();
    report.processes = under.len();
    (netns, cached_links, cache_files)
}

/// The pods' network namespaces: unmounted and removed, which ends them (no
/// process holds them now) and with them the pods' ends of the veths.
fn remove_netns(netns: BTreeSet<PathBuf>, report: &mut Report) {
    let mut seen = HashSet::new();
    for ns in netns {
        let canonical = std::fs::canonicalize(&ns).unwrap_or(ns.clone());
        if !seen.insert(canonical.clone()) || !canonical.exists() {
            continue;
        }
        // A path may carry the namespace more than once (a bind of /run/netns
        // onto itself copies the mounts under it): unmount every copy seen.
        for _ in 0..8 {
            if !unmount(&canonical) {
                break;
            }
        }
        match std::fs::remove_file(&canonical) {
            Ok(()) => report.netns.push(canonical),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => report.netns_left.push((
                canonical,
                "still mounted where this path cannot reach it (/run/netns was \
                 bind-mounted onto itself after the pod started); unmount \
                 /run/netns, then this path, and remove it"
                    .into(),
            )),
            Err(e) => report.netns_left.push((canonical, e.to_string())),
        }
    }
}

/// The host ends of the veths that remain, then the bridge.
fn remove_links(bridge: &str, cached_links: BTreeSet<String>, report: &mut Report) {
    let mut links: BTreeSet<String> = cached_links;
    links.extend(bridge_ports(bridge));
    for l in links {
        if link_exists(&l) && ip(&["link", "del", "dev", &l]).is_some() {
            report.links.push(l);
        }
    }
    if link_exists(bridge) && ip(&["link", "del", "dev", bridge]).is_some() {
        report.links.push(bridge.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn processes_are_ours_by_their_config_and_socket() {
        let paths = ContainerdPaths::new(Path::new("/d"));
        let proc_of = |a: &[&str]| Proc {
            pid: 10,
            ppid: 1,
            argv: argv(a),
        };
        assert!(is_our_containerd(
            &proc_of(&["containerd", "-c", "/d/agent/containerd/config.toml"]),
            &paths
        ));
        assert!(!is_our_containerd(
            &proc_of(&["containerd", "-c", "/other/agent/containerd/config.toml"]),
            &paths
        ));
        assert!(!is_our_containerd(
            &proc_of(&["/usr/bin/containerd"]),
            &paths
        ));
        let shim = |addr: &str| {
            proc_of(&[
                "/usr/bin/containerd-shim-runc-v2",
                "-namespace",
                "k8s.io",
                "-id",
                "abc",
                "-address",
                addr,
            ])
        };
        assert!(is_our_shim(
            &shim("/d/agent/containerd/containerd.sock"),
            &paths
        ));
        assert!(!is_our_shim(
            &shim("/run/containerd/containerd.sock"),
            &paths
        ));
    }

    #[test]
    fn descendants_follow_parents() {
        let p = |pid, ppid| Proc {
            pid,
            ppid,
            argv: Vec::new(),
        };
        let all = [p(1, 0), p(10, 1), p(11, 10), p(12, 11), p(20, 1)];
        let mut d = descendants(&all, &[10]);
        d.sort();
        assert_eq!(d, [11, 12]);
    }

    #[test]
    fn mountinfo_paths_are_unescaped() {
        assert_eq!(unescape_mountinfo("/a\\040b/c"), "/a b/c");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
    }

    #[test]
    fn cni_results_of_our_sandboxes_name_their_netns_and_veths() {
        let dir = tempfile::tempdir().unwrap();
        let result = serde_json::json!({"result": {"interfaces": [
            {"name": "b0"}, {"name": "veth1234"},
            {"name": "eth0", "sandbox": "/var/run/netns/cni-1"}]}});
        std::fs::write(dir.path().join("net-aaa-eth0"), result.to_string()).unwrap();
        std::fs::write(dir.path().join("net-bbb-eth0"), result.to_string()).unwrap();
        let ids = BTreeSet::from(["aaa".to_string()]);
        let (files, netns, links) = cni_results(dir.path(), &ids, "b0");
        assert_eq!(files, [dir.path().join("net-aaa-eth0")]);
        assert_eq!(
            netns.into_iter().collect::<Vec<_>>(),
            [PathBuf::from("/var/run/netns/cni-1")]
        );
        assert_eq!(links.into_iter().collect::<Vec<_>>(), ["veth1234"]);
    }
}
