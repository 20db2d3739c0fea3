//! `ferrokube-bench podnet`: pod-to-pod throughput and connection rate across
//! two lab nodes against the same within one node, for each pod network
//! backend (host-gw, vxlan). A lab (`ferrokube-lab`) of two nodes runs three
//! sleeping busybox pods: the server on node-1, one client beside it, one on
//! node-0. The traffic itself is this program's: a thread enters each pod's
//! network namespace (found among the CNI's `/run/netns/cni-*` by the pod's
//! IP) and sends over plain TCP sockets, so the figures are the network's,
//! not a tool's inside the pod.

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd as _;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use ferrokube_lab::{Lab, LabOptions};

/// Options of `ferrokube-bench podnet`.
#[derive(clap::Args)]
pub(crate) struct Options {
    /// Seconds of each throughput and connection-rate run.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// The ferrokube binary the lab runs (default: next to this one).
    #[arg(long)]
    ferrokube: Option<std::path::PathBuf>,
}

/// Runs `f` on a thread inside the network namespace at `path`.
#[expect(unsafe_code, reason = "setns(2): std cannot enter a network namespace")]
fn in_netns<T: Send + 'static>(
    path: &str,
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    let (path, name) = (path.to_string(), path.to_string());
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).with_context(|| format!("opening {path}"))?;
        // SAFETY: setns on a descriptor we own; it moves only this thread.
        if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            bail!("setns {path}: {}", std::io::Error::last_os_error());
        }
        f()
    })
    .join()
    .map_err(|_| anyhow::anyhow!("a thread in {name} panicked"))?
}

/// The CNI network namespace holding `ip`.
fn netns_of(ip: Ipv4Addr) -> anyhow::Result<String> {
    for e in std::fs::read_dir("/run/netns")?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with("cni-") {
            continue;
        }
        let out = std::process::Command::new("ip")
            .args(["-n", &name, "-4", "-o", "addr", "show"])
            .output()?;
        if String::from_utf8_lossy(&out.stdout).contains(&format!(" {ip}/")) {
            return Ok(format!("/run/netns/{name}"));
        }
    }
    bail!("no network namespace holds {ip}")
}

fn pod_on(name: &str, node: &str) -> String {
    serde_json::json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"nodeSelector": {"kubernetes.io/hostname": node},
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "c", "image": "busybox:1.35", "imagePullPolicy": "IfNotPresent",
                "command": ["sleep", "3600"]}]}
    })
    .to_string()
}

/// Bulk TCP for `secs` from the client namespace to `server`: Gbit/s.
fn throughput(client: &str, server_ns: &str, server: SocketAddr, secs: u64) -> anyhow::Result<f64> {
    let listener = in_netns(server_ns, move || Ok(TcpListener::bind(server)?))?;
    let sink = std::thread::spawn(move || -> std::io::Result<u64> {
        let (mut s, _) = listener.accept()?;
        let mut buf = vec![0u8; 256 * 1024];
        let mut total = 0u64;
        loop {
            match s.read(&mut buf)? {
                0 => return Ok(total),
                n => total += n as u64,
            }
        }
    });
    let elapsed = in_netns(client, move || {
        let mut s = connect_retry(server)?;
        let buf = vec![0u8; 256 * 1024];
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(secs) {
            s.write_all(&buf)?;
        }
        s.shutdown(std::net::Shutdown::Write)?;
        Ok(start)
    })?;
    let bytes = sink
        .join()
        .map_err(|_| anyhow::anyhow!("sink panicked"))??;
    Ok(bytes as f64 * 8.0 / elapsed.elapsed().as_secs_f64() / 1e9)
}

/// Connects to `server`, retrying for up to 30 s (a new node's routes may
/// still be on their way).
fn connect_retry(server: SocketAddr) -> anyhow::Result<TcpStream> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match TcpStream::connect_timeout(&server, Duration::from_secs(2)) {
            Ok(s) => return Ok(s),
            Err(e) if Instant::now() > deadline => bail!("connecting to {server}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// Sequential connections (connect, one byte each way, close) for `secs`:
/// connections per second.
fn conn_rate(client: &str, server_ns: &str, server: SocketAddr, secs: u64) -> anyhow::Result<f64> {
    let listener = in_netns(server_ns, move || Ok(TcpListener::bind(server)?))?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopped = stop.clone();
    let echo = std::thread::spawn(move || {
        for s in listener.incoming() {
            if stopped.load(std::sync::atomic::Ordering::Relaxed) {
                return;
            }
            if let Ok(mut s) = s {
                let mut b = [0u8; 1];
                if s.read_exact(&mut b).is_ok() {
                    let _ = s.write_all(&b);
                }
            }
        }
    });
    let (n, elapsed) = in_netns(client, move || {
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < Duration::from_secs(secs) {
            let mut s = TcpStream::connect_timeout(&server, Duration::from_secs(5))?;
            s.set_nodelay(true)?;
            s.write_all(b"x")?;
            let mut b = [0u8; 1];
            s.read_exact(&mut b)?;
            n += 1;
        }
        Ok((n, start.elapsed()))
    })?;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    // Wake the accept loop so that it sees the stop.
    let _ = in_netns(client, move || {
        Ok(TcpStream::connect_timeout(&server, Duration::from_secs(2))?)
    });
    let _ = echo.join();
    Ok(n as f64 / elapsed.as_secs_f64())
}

/// Runs the benchmark for both backends and prints the table.
pub(crate) fn run(o: Options) -> anyhow::Result<()> {
    let ferrokube = o.ferrokube.clone().unwrap_or_else(|| {
        std::env::current_exe()
            .map(|e| e.with_file_name("ferrokube"))
            .unwrap_or_default()
    });
    println!("Pod-to-pod across nodes against within one node, on a two-node lab (ferrokube-bench podnet; {} s per figure)", o.seconds);
    println!("| backend | path | throughput (Gbit/s) | connections/s |");
    println!("|---|---|---|---|");
    for backend in ["host-gw", "vxlan"] {
        let opts = LabOptions {
            nodes: 2,
            agent_args: vec!["--flannel-backend".into(), backend.into()],
            ferrokube: ferrokube.clone(),
            ..Default::default()
        };
        let lab = Lab::up(opts).context("bringing the lab up")?;
        let dir = tempfile::tempdir()?;
        for (name, node) in [("server", "node-1"), ("near", "node-1"), ("far", "node-0")] {
            let file = dir.path().join(format!("{name}.json"));
            std::fs::write(&file, pod_on(name, node))?;
            lab.kubectl_ok(&["apply", "-f", &file.to_string_lossy()]);
        }
        for name in ["server", "near", "far"] {
            lab.kubectl_ok(&[
                "wait",
                "--for=condition=Ready",
                &format!("pod/{name}"),
                "--timeout=120s",
            ]);
        }
        let ip = |name: &str| -> anyhow::Result<Ipv4Addr> {
            Ok(lab
                .kubectl_ok(&["get", "pod", name, "-o", "jsonpath={.status.podIP}"])
                .trim()
                .parse()?)
        };
        let server_ip = ip("server")?;
        let server_ns = netns_of(server_ip)?;
        let mut port = 5201;
        for (path, client) in [("within node-1", "near"), ("node-0 to node-1", "far")] {
            let client_ns = netns_of(ip(client)?)?;
            let gbps = throughput(
                &client_ns,
                &server_ns,
                SocketAddr::new(server_ip.into(), port),
                o.seconds,
            )?;
            let cps = conn_rate(
                &client_ns,
                &server_ns,
                SocketAddr::new(server_ip.into(), port + 1),
                o.seconds,
            )?;
            port += 2;
            println!("| {backend} | {path} | {gbps:.2} | {cps:.0} |");
        }
        drop(lab);
    }
    Ok(())
}
