//! A node that needs nothing by hand, end to end with containerd and the real
//! kubectl: `ferrokube server` on a fresh data dir where no image was built runs
//! pods (its sandbox image is part of the binary), `ferrokube killall` leaves no
//! process, mount, network namespace, veth, bridge or nftables table of the node
//! behind and touches nobody else's, and attach and exec to a container that has
//! exited end at once with Kubernetes' error.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{kubectl_command, tail, Cluster, POLL};
use ferrokube_client::testing::wait::wait_until_blocking;

const NODE: &str = "fk-own-e2e";
const BRIDGE: &str = "ferrokube0";

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).output().expect("run a command")
}

fn ferrokube(args: &[&str], data_dir: &Path) -> Output {
    run(Command::new(env!("CARGO_BIN_EXE_ferrokube"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir))
}

/// A ready one-node cluster on a fresh data dir: nothing in agent/images.
fn fresh_node(extra: &[&str]) -> Cluster {
    let mut args = vec!["--node-name", NODE, "--cluster-cidr", "10.97.0.0/16"];
    args.extend_from_slice(&["--disable", "coredns", "--kubelet-port", "0"]);
    args.extend_from_slice(extra);
    // The proxy's table stays when the server stops, so that killall is
    // what removes it.
    let c = Cluster::start_node_keeping_proxy_rules(&args, |_| {});
    wait_until_blocking(
        "the node to register",
        Duration::from_secs(120),
        POLL,
        || c.kubectl(&["get", "node", NODE]).status.success(),
    );
    c.kubectl_ok(&[
        "wait",
        "--for=condition=Ready",
        &format!("node/{NODE}"),
        "--timeout=120s",
    ]);
    c
}

/// Imports the project's busybox image into the node with `ferrokube image import`.
fn import_busybox(c: &Cluster) {
    let images = tempfile::tempdir().expect("images dir");
    common::build_images(images.path());
    let tar = images.path().join("busybox.tar");
    let out = ferrokube(
        &["image", "import", tar.to_str().expect("path")],
        c.data_dir(),
    );
    assert!(
        out.status.success(),
        "image import: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn phase(c: &Cluster, pod: &str) -> String {
    c.kubectl_ok(&["get", "pod", pod, "-o", "jsonpath={.status.phase}"])
}

fn socket_of(data_dir: &Path) -> PathBuf {
    std::fs::canonicalize(data_dir)
        .expect("data dir")
        .join("agent/containerd/containerd.sock")
}

/// Pids whose command line names this data dir's containerd (itself, shims).
fn node_processes(data_dir: &Path) -> Vec<(u32, String)> {
    let marker = std::fs::canonicalize(data_dir)
        .expect("data dir")
        .join("agent/containerd")
        .to_string_lossy()
        .into_owned();
    let mut found = Vec::new();
    for p in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = p.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmd = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(&marker) && !cmd.contains("killall") {
            found.push((pid, cmd));
        }
    }
    found
}

/// Process ids under `root` (children, grandchildren, ...).
fn tree(root: u32) -> Vec<u32> {
    let mut all = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for p in std::fs::read_dir("/proc").expect("/proc").flatten() {
            let Ok(pid) = p.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let stat = std::fs::read_to_string(p.path().join("stat")).unwrap_or_default();
            let ppid = stat
                .rfind(')')
                .and_then(|i| stat[i + 1..].split_whitespace().nth(1))
                .and_then(|s| s.parse::<u32>().ok());
            if ppid == Some(parent) {
                all.push(pid);
                frontier.push(pid);
            }
        }
    }
    all
}

fn mounts_under(dir: &Path) -> Vec<String> {
    let dir = std::fs::canonicalize(dir).expect("data dir");
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| Path::new(m).starts_with(&dir))
        .map(str::to_string)
        .collect()
}

fn links() -> BTreeSet<String> {
    let out = run(Command::new("ip").args(["-o", "link", "show"]));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(|n| n.trim().split('@').next().unwrap_or("").to_string())
        .collect()
}

fn bridge_ports(bridge: &str) -> Vec<String> {
    let out = run(Command::new("ip").args(["-o", "link", "show", "master", bridge]));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(|n| n.trim().split('@').next().unwrap_or("").to_string())
        .collect()
}

fn nft_tables() -> String {
    String::from_utf8_lossy(&run(Command::new("nft").args(["list", "tables"])).stdout).into_owned()
}

/// The network namespace files (`/var/run/netns/...`) of the pods' sandboxes, from
/// the CNI results of the containers whose processes run under this node's shims.
fn pod_netns(shim_children: &[u32]) -> BTreeSet<PathBuf> {
    let ours: BTreeSet<(u64, u64)> = shim_children
        .iter()
        .filter_map(|p| std::fs::metadata(format!("/proc/{p}/ns/net")).ok())
        .map(|m| {
            use std::os::unix::fs::MetadataExt;
            (m.dev(), m.ino())
        })
        .collect();
    let mut found = BTreeSet::new();
    for e in std::fs::read_dir("/var/run/netns")
        .into_iter()
        .flatten()
        .flatten()
    {
        if let Ok(m) = std::fs::metadata(e.path()) {
            use std::os::unix::fs::MetadataExt;
            if ours.contains(&(m.dev(), m.ino())) {
                found.insert(e.path());
            }
        }
    }
    found
}

/// Someone else's network things, which killall must leave alone; removed on drop.
struct Decoys {
    netns: String,
    bridge: String,
    table: String,
}

impl Decoys {
    fn make() -> Decoys {
        let id = std::process::id();
        let d = Decoys {
            netns: format!("fkdecoy{id}"),
            bridge: format!("fkd{}", id % 100000),
            table: format!("fk-decoy-{id}"),
        };
        assert!(run(Command::new("ip").args(["netns", "add", &d.netns]))
            .status
            .success());
        assert!(
            run(Command::new("ip").args(["link", "add", &d.bridge, "type", "bridge"]))
                .status
                .success()
        );
        assert!(
            run(Command::new("nft").args(["add", "table", "ip", &d.table]))
                .status
                .success()
        );
        d
    }

    fn intact(&self) -> bool {
        Path::new("/var/run/netns").join(&self.netns).exists()
            && links().contains(&self.bridge)
            && nft_tables().contains(&format!("table ip {}\n", self.table))
    }
}

impl Drop for Decoys {
    fn drop(&mut self) {
        let _ = run(Command::new("ip").args(["netns", "del", &self.netns]));
        let _ = run(Command::new("ip").args(["link", "del", &self.bridge]));
        let _ = run(Command::new("nft").args(["delete", "table", "ip", &self.table]));
    }
}

#[test]
fn a_fresh_node_runs_pods_and_killall_leaves_nothing_of_it() {
    // Someone else's network things, made first: `ip netns add` binds
    // /run/netns onto itself when it is not yet a mount point, and a pod's
    // namespace mounted before that bind would be hidden under it.
    let decoys = Decoys::make();
    // The service proxy too: its table is one killall removes.
    let mut c = fresh_node(&[]);
    // The sandbox image is there without anything built or pulled.
    let socket = socket_of(c.data_dir());
    let images = run(Command::new("ctr")
        .arg("--address")
        .arg(&socket)
        .args(["-n", "k8s.io", "images", "ls", "-q"]));
    let images = String::from_utf8_lossy(&images.stdout).into_owned();
    let pause = format!("localhost/ferrokube/pause:{}", env!("CARGO_PKG_VERSION"));
    assert!(images.lines().any(|l| l == pause), "{images}");

    import_busybox(&c);
    for pod in ["one", "two"] {
        c.kubectl_ok(&[
            "run",
            pod,
            "--image=busybox:1.35",
            "--restart=Never",
            "--",
            "sleep",
            "3600",
        ]);
    }
    for pod in ["one", "two"] {
        wait_until_blocking("the pods to run", Duration::from_secs(120), POLL, || {
            phase(&c, pod) == "Running"
        });
    }
    // What the node made, seen from outside before killall.
    let processes = node_processes(c.data_dir());
    let shims: Vec<u32> = processes
        .iter()
        .filter(|(_, cmd)| cmd.contains("containerd-shim"))
        .map(|(p, _)| *p)
        .collect();
    assert_eq!(shims.len(), 2, "one shim per pod: {processes:?}");
    let under: Vec<u32> = shims.iter().flat_map(|&s| tree(s)).collect();
    assert!(under.len() >= 4, "sandboxes and containers: {under:?}");
    let netns = pod_netns(&under);
    assert_eq!(netns.len(), 2, "{netns:?}");
    let veths = bridge_ports(BRIDGE);
    assert_eq!(veths.len(), 2, "{veths:?}");
    assert!(!mounts_under(c.data_dir()).is_empty());
    let tables = nft_tables();
    assert!(
        tables.contains("table ip ferrokube-pods-ferrokube0"),
        "{tables}"
    );
    assert!(tables.contains("table ip ferrokube-proxy"), "{tables}");
    assert!(tables.contains("table inet ferrokube-netpol"), "{tables}");

    let out = ferrokube(&["killall"], c.data_dir());
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "killall: {said}");

    // The server was stopped, and with it everything of the node.
    wait_until_blocking("the server to exit", Duration::from_secs(5), POLL, || {
        c.exited().is_some()
    });
    assert_eq!(node_processes(c.data_dir()), [], "{said}");
    // Killed, at most waiting for init to reap them.
    let running = |p: &u32| {
        let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
        stat.rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    };
    let alive: Vec<u32> = under.iter().copied().filter(running).collect();
    assert_eq!(
        alive,
        Vec::<u32>::new(),
        "containers' processes left: {said}"
    );
    assert_eq!(mounts_under(c.data_dir()), Vec::<String>::new(), "{said}");
    for ns in &netns {
        assert!(!ns.exists(), "{} left: {said}", ns.display());
    }
    let now = links();
    for v in &veths {
        assert!(!now.contains(v), "veth {v} left: {said}");
    }
    assert!(!now.contains(BRIDGE), "the bridge left: {said}");
    let tables = nft_tables();
    // The node's own pod table (other tests' nodes have tables of their own bridges).
    let pods_table = format!("ferrokube-pods-{BRIDGE}");
    assert!(
        !tables
            .lines()
            .any(|l| l.split_whitespace().last() == Some(pods_table.as_str())),
        "{tables}"
    );
    assert!(!tables.contains("ferrokube-proxy"), "{tables}");
    assert!(!tables.contains("ferrokube-netpol"), "{tables}");
    // Nothing else was touched.
    assert!(decoys.intact(), "killall removed someone else's: {said}");
    assert!(said.contains("killed 2 shim(s)"), "{said}");

    // A second run finds nothing to do and says so without failing.
    let again = ferrokube(&["killall"], c.data_dir());
    assert!(again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("killed 0 shim(s)"),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
}

/// kubectl for this cluster without `--request-timeout`, its output captured.
fn kubectl(c: &Cluster, args: &[&str]) -> Command {
    let mut cmd = kubectl_command(Path::new("kubectl"), &c.kubeconfig());
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd
}

/// Runs `cmd` (its stdin a pipe held open, as a user's terminal is) for at
/// most `within`; its output, or `None` if it had to be killed.
fn bounded(mut cmd: Command, within: Duration) -> Option<Output> {
    let mut child = cmd.stdin(Stdio::piped()).spawn().expect("spawn");
    let stdin = child.stdin.take();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = rx.recv_timeout(within);
    drop(stdin);
    match out {
        Ok(out) => out.ok(),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            None
        }
    }
}

#[test]
fn attach_and_exec_to_an_exited_container_end_at_once_with_kubernetes_error() {
    let c = fresh_node(&["--disable-kube-proxy"]);
    import_busybox(&c);
    // The pod runs on (its other container does); this one has exited.
    let pod = r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "two"},
      "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1, "containers": [
        {"name": "sleeper", "image": "busybox:1.35", "command": ["sleep", "3600"]},
        {"name": "quitter", "image": "busybox:1.35", "command": ["sh", "-c", "exit 1"],
         "stdin": true, "tty": true}]}}"#;
    let file = c.data_dir().join("two.json");
    std::fs::write(&file, pod).expect("write the pod");
    c.kubectl_ok(&["create", "-f", file.to_str().expect("path")]);
    wait_until_blocking(
        "the container to exit",
        Duration::from_secs(120),
        POLL,
        || {
            c.kubectl_ok(&[
            "get",
            "pod",
            "two",
            "-o",
            "jsonpath={.status.containerStatuses[?(@.name==\"quitter\")].state.terminated.exitCode}",
        ]) == "1"
        },
    );
    assert_eq!(phase(&c, "two"), "Running");
    let cases: [(&[&str], &str); 2] = [
        (
            &["attach", "two", "-c", "quitter", "-i"],
            "unable to upgrade connection: container quitter not found in pod two_default",
        ),
        (
            &["exec", "two", "-c", "quitter", "--", "true"],
            r#"unable to upgrade connection: container not found ("quitter")"#,
        ),
    ];
    for (args, said) in cases {
        // kubectl's WebSockets, and SPDY.
        for websockets in ["true", "false"] {
            let mut cmd = kubectl(&c, args);
            cmd.env("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", websockets);
            let started = Instant::now();
            let out = bounded(cmd, Duration::from_secs(30)).unwrap_or_else(|| {
                panic!(
                    "kubectl {args:?} (websockets {websockets}) still running after 30 s\n{}",
                    tail(&c.log(), 30)
                )
            });
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{args:?}: {err}");
            assert!(err.contains(said), "{args:?}: {err}");
            assert!(started.elapsed() < Duration::from_secs(10), "{args:?}");
        }
    }

    // The issue's command, in a terminal (script(1) gives kubectl one): a
    // command that exits at once ends kubectl run -it --rm at once, with the
    // container's exit code, and the pod is removed.
    for (i, websockets) in ["true", "false"].iter().enumerate() {
        let name = format!("quick{i}");
        let line = format!(
            "kubectl --kubeconfig {} run -it --rm {name} --image=busybox:1.35 \
             --restart=Never -- sh -c 'exit 1'",
            c.kubeconfig().display()
        );
        let mut cmd = Command::new("script");
        cmd.args(["-qec", &line, "/dev/null"])
            .env_remove("KUBECONFIG")
            .env("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", websockets)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let out = bounded(cmd, Duration::from_secs(90)).unwrap_or_else(|| {
            panic!(
                "kubectl run -it --rm (websockets {websockets}) hung\n{}",
                tail(&c.log(), 30)
            )
        });
        let said = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(out.status.code(), Some(1), "{said}");
        assert!(said.contains(&format!("pod \"{name}\" deleted")), "{said}");
        wait_until_blocking("the pod to be gone", Duration::from_secs(60), POLL, || {
            !c.kubectl(&["get", "pod", &name]).status.success()
        });
    }
}

#[test]
fn termination_messages_come_from_the_file_or_the_log_as_in_kubernetes() {
    let c = fresh_node(&["--disable-kube-proxy"]);
    import_busybox(&c);
    let pod = r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "ends"},
      "spec": {"restartPolicy": "Never", "containers": [
        {"name": "file", "image": "busybox:1.35", "securityContext": {"runAsUser": 1000},
         "command": ["sh", "-c", "printf 'all done' > /dev/termination-log"]},
        {"name": "custom", "image": "busybox:1.35", "terminationMessagePath": "/tmp/why",
         "command": ["sh", "-c", "printf custom > /tmp/why; exit 3"]},
        {"name": "logs", "image": "busybox:1.35", "terminationMessagePolicy": "FallbackToLogsOnError",
         "command": ["sh", "-c", "echo first; echo last; exit 2"]},
        {"name": "quiet", "image": "busybox:1.35", "terminationMessagePolicy": "FallbackToLogsOnError",
         "command": ["sh", "-c", "echo fine"]}]}}"#;
    let file = c.data_dir().join("ends.json");
    std::fs::write(&file, pod).expect("write the pod");
    c.kubectl_ok(&["create", "-f", file.to_str().expect("path")]);
    wait_until_blocking("the pod to end", Duration::from_secs(120), POLL, || {
        phase(&c, "ends") == "Failed"
    });
    let message = |name: &str| {
        c.kubectl_ok(&[
            "get",
            "pod",
            "ends",
            "-o",
            &format!(
                "jsonpath={{.status.containerStatuses[?(@.name==\"{name}\")].state.terminated.message}}"
            ),
        ])
    };
    assert_eq!(message("file"), "all done");
    assert_eq!(message("custom"), "custom");
    assert_eq!(message("logs"), "first\nlast\n");
    assert_eq!(message("quiet"), "");
}

#[test]
fn etc_hosts_is_kubernetes_managed_with_the_pod_address_and_aliases() {
    let c = fresh_node(&["--disable-kube-proxy"]);
    import_busybox(&c);
    let pod = r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "hosted"},
      "spec": {"hostname": "db", "subdomain": "dbs",
        "hostAliases": [{"ip": "10.1.2.3", "hostnames": ["foo.local", "bar.local"]}],
        "containers": [{"name": "app", "image": "busybox:1.35", "command": ["sleep", "3600"]}]}}"#;
    let file = c.data_dir().join("hosted.json");
    std::fs::write(&file, pod).expect("write the pod");
    c.kubectl_ok(&["create", "-f", file.to_str().expect("path")]);
    c.kubectl_ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/hosted",
        "--timeout=120s",
    ]);
    let ip = c.kubectl_ok(&["get", "pod", "hosted", "-o", "jsonpath={.status.podIP}"]);
    let hosts = c.kubectl_ok(&["exec", "hosted", "--", "cat", "/etc/hosts"]);
    assert_eq!(
        hosts,
        format!(
            "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n\
             ::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n\
             fe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n\
             {ip}\tdb.dbs.default.svc.cluster.local\tdb\n\n# Entries added by HostAliases.\n\
             10.1.2.3\tfoo.local\n10.1.2.3\tbar.local\n"
        )
    );
    c.kubectl_ok(&["delete", "pod", "hosted", "--grace-period=1"]);
}

#[test]
fn a_pod_past_its_active_deadline_fails_with_deadline_exceeded() {
    let c = fresh_node(&["--disable-kube-proxy"]);
    import_busybox(&c);
    let pod = r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "late"},
      "spec": {"activeDeadlineSeconds": 3, "terminationGracePeriodSeconds": 1,
        "containers": [{"name": "app", "image": "busybox:1.35", "command": ["sleep", "3600"]}]}}"#;
    let file = c.data_dir().join("late.json");
    std::fs::write(&file, pod).expect("write the pod");
    c.kubectl_ok(&["create", "-f", file.to_str().expect("path")]);
    wait_until_blocking("the pod to fail", Duration::from_secs(60), POLL, || {
        phase(&c, "late") == "Failed"
    });
    let got = c.kubectl_ok(&[
        "get",
        "pod",
        "late",
        "-o",
        "jsonpath={.status.reason}|{.status.message}|{.status.containerStatuses[0].state.running}",
    ]);
    // The container no longer runs.
    assert_eq!(
        got,
        "DeadlineExceeded|Pod was active on the node longer than the specified deadline|"
    );
    let processes = node_processes(c.data_dir());
    assert!(
        !processes
            .iter()
            .any(|(_, cmd)| cmd.contains("containerd-shim")),
        "{processes:?}"
    );
    let events = c.kubectl_ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=late,reason=DeadlineExceeded",
        "-o",
        "name",
    ]);
    assert!(!events.trim().is_empty(), "no DeadlineExceeded event");
}
