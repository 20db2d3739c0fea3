//! The pod network keeper's routes and VXLAN overlay carry pod traffic between two
//! nodes, with no cluster: the test makes four network namespaces (two "nodes" joined
//! by a veth pair, and a "pod" behind each node on a veth of its own), gives the keeper
//! the two Nodes as the API would, and sends TCP from one pod to the other, which must
//! see the client pod's own address. Everything is removed by a Drop guard.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd as _;
use std::process::Command;
use std::time::Duration;

use ferrokube_kubelet::podnet::{self, Backend};
use k8s_openapi::api::core::v1::Node;

/// The namespaces of one test; removed on drop (their interfaces go with them).
struct Netns {
    names: Vec<String>,
}

impl Drop for Netns {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = Command::new("ip").args(["netns", "del", n]).output();
        }
    }
}

fn sh(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ip_out(ns: &str, args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(["-n", ns])
        .args(args)
        .output()
        .expect("ip");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Two nodes (underlay 10.250.0.1 and .2) and a pod behind each: 10.42.0.2 on node a
/// (its bridge-like gateway 10.42.0.1), 10.42.1.2 on node b.
fn topology(tag: &str) -> (Netns, [String; 4]) {
    let pid = std::process::id();
    let names = ["na", "nb", "pa", "pb"].map(|n| format!("fkpn-{tag}-{n}-{pid}"));
    let guard = Netns {
        names: names.to_vec(),
    };
    for n in &names {
        sh(&["ip", "netns", "add", n]);
        sh(&["ip", "-n", n, "link", "set", "lo", "up"]);
    }
    let [na, nb, pa, pb] = &names;
    sh(&[
        "ip", "-n", na, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", nb,
    ]);
    sh(&[
        "ip",
        "-n",
        na,
        "addr",
        "add",
        "10.250.0.1/24",
        "dev",
        "eth0",
    ]);
    sh(&[
        "ip",
        "-n",
        nb,
        "addr",
        "add",
        "10.250.0.2/24",
        "dev",
        "eth0",
    ]);
    for (node, pod, net) in [(na, pa, 0), (nb, pb, 1)] {
        sh(&["ip", "-n", node, "link", "set", "eth0", "up"]);
        sh(&[
            "ip", "-n", node, "link", "add", "pod0", "type", "veth", "peer", "name", "eth0",
            "netns", pod,
        ]);
        sh(&[
            "ip",
            "-n",
            node,
            "addr",
            "add",
            &format!("10.42.{net}.1/24"),
            "dev",
            "pod0",
        ]);
        sh(&["ip", "-n", node, "link", "set", "pod0", "up"]);
        sh(&[
            "ip",
            "-n",
            pod,
            "addr",
            "add",
            &format!("10.42.{net}.2/24"),
            "dev",
            "eth0",
        ]);
        sh(&["ip", "-n", pod, "link", "set", "eth0", "up"]);
        sh(&[
            "ip",
            "-n",
            pod,
            "route",
            "add",
            "default",
            "via",
            &format!("10.42.{net}.1"),
        ]);
        sh(&[
            "ip",
            "netns",
            "exec",
            node,
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
        ]);
    }
    (guard, names)
}

fn node(name: &str, cidr: &str, ip: &str, annotations: serde_json::Value) -> Node {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"podCIDR": cidr},
        "status": {"addresses": [{"type": "InternalIP", "address": ip}]}
    }))
    .expect("node")
}

/// Runs `f` on a thread in the network namespace `ns` (what it spawns runs there too).
#[expect(unsafe_code, reason = "setns(2): std cannot enter a network namespace")]
fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).expect("open netns");
        // SAFETY: setns on a descriptor we own; it changes only this thread's namespace.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .expect("thread in netns")
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

fn sync(ns: &str, backend: Backend, me: &str, nodes: &[Node], vtep: Option<podnet::vxlan::Vtep>) {
    let (me, nodes) = (me.to_string(), nodes.to_vec());
    in_netns(ns, move || {
        block_on(podnet::sync_nodes(
            backend,
            Some(&me),
            &nodes,
            vtep.as_ref(),
        ))
    })
    .expect("sync_nodes");
}

/// A TCP connection from pod `from` to 10.42.1.2:8080 in pod `to`: the address the
/// server saw the client at, or the client's error.
fn connect(from: &str, to: &str) -> Result<SocketAddr, String> {
    let listener = in_netns(to, || TcpListener::bind("10.42.1.2:8080").expect("bind"));
    listener.set_nonblocking(false).expect("blocking");
    let server = std::thread::spawn(move || -> Option<SocketAddr> {
        let (mut s, peer) = listener.accept().ok()?;
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).ok()?;
        s.write_all(b"pong!").ok()?;
        Some(peer)
    });
    let client = in_netns(from, || -> Result<(), String> {
        let addr: SocketAddr = "10.42.1.2:8080".parse().map_err(|e| format!("{e}"))?;
        let mut s =
            TcpStream::connect_timeout(&addr, Duration::from_secs(3)).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(3)))
            .map_err(|e| e.to_string())?;
        s.write_all(b"ping!").map_err(|e| e.to_string())?;
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).map_err(|e| e.to_string())?;
        Ok(())
    });
    match client {
        Ok(()) => server
            .join()
            .expect("server")
            .ok_or_else(|| "server saw nothing".into()),
        Err(e) => {
            // Unblock the server's accept with a connection from its own side.
            let _ = in_netns(to, || TcpStream::connect("10.42.1.2:8080"));
            let _ = server.join();
            Err(e)
        }
    }
}

#[test]
fn host_gw_routes_carry_pod_traffic_and_follow_the_nodes() {
    let (_guard, [na, nb, pa, pb]) = topology("hg");
    let nodes = [
        node("a", "10.42.0.0/24", "10.250.0.1", serde_json::json!({})),
        node("b", "10.42.1.0/24", "10.250.0.2", serde_json::json!({})),
    ];
    // Without routes the pods cannot reach each other.
    assert!(
        connect(&pa, &pb).is_err(),
        "reached the other pod with no route"
    );
    // A route of someone else's that the keeper must leave alone.
    sh(&[
        "ip",
        "-n",
        &na,
        "route",
        "add",
        "10.99.0.0/24",
        "via",
        "10.250.0.2",
    ]);
    sync(&na, Backend::HostGw, "a", &nodes, None);
    sync(&nb, Backend::HostGw, "b", &nodes, None);
    assert_eq!(
        ip_out(&na, &["route", "show", "proto", "151"]).trim(),
        "10.42.1.0/24 via 10.250.0.2 dev eth0"
    );
    let seen = connect(&pa, &pb).expect("pod to pod over host-gw routes");
    assert_eq!(
        seen.ip().to_string(),
        "10.42.0.2",
        "the server saw the client pod's own address"
    );
    // Twice is the same.
    sync(&na, Backend::HostGw, "a", &nodes, None);
    assert_eq!(
        ip_out(&na, &["route", "show", "proto", "151"])
            .lines()
            .count(),
        1
    );
    // Node b is gone: its route goes, the other route stays.
    sync(&na, Backend::HostGw, "a", &nodes[..1], None);
    assert_eq!(ip_out(&na, &["route", "show", "proto", "151"]).trim(), "");
    assert!(ip_out(&na, &["route", "show"]).contains("10.99.0.0/24 via 10.250.0.2"));
    assert!(connect(&pa, &pb).is_err(), "reached a node that is gone");
}

#[test]
fn vxlan_overlay_carries_pod_traffic() {
    let (_guard, [na, nb, pa, pb]) = topology("vx");
    let bare = [
        node("a", "10.42.0.0/24", "10.250.0.1", serde_json::json!({})),
        node("b", "10.42.1.0/24", "10.250.0.2", serde_json::json!({})),
    ];
    let va = in_netns(&na, {
        let n = bare[0].clone();
        move || block_on(podnet::ensure_vtep(&n))
    })
    .expect("vtep a");
    let vb = in_netns(&nb, {
        let n = bare[1].clone();
        move || block_on(podnet::ensure_vtep(&n))
    })
    .expect("vtep b");
    // The device fits the underlay: 1500 - 50.
    assert!(ip_out(&na, &["link", "show", "flannel.1"]).contains("mtu 1450"));
    let ann = |mac: &str, ip: &str| {
        serde_json::json!({
            "flannel.alpha.coreos.com/backend-type": "vxlan",
            "flannel.alpha.coreos.com/backend-data": format!(r#"{{"VNI":1,"VtepMAC":"{mac}"}}"#),
            "flannel.alpha.coreos.com/public-ip": ip,
        })
    };
    let nodes = [
        node(
            "a",
            "10.42.0.0/24",
            "10.250.0.1",
            ann(&va.mac, "10.250.0.1"),
        ),
        node(
            "b",
            "10.42.1.0/24",
            "10.250.0.2",
            ann(&vb.mac, "10.250.0.2"),
        ),
    ];
    sync(&na, Backend::Vxlan, "a", &nodes, Some(va.clone()));
    sync(&nb, Backend::Vxlan, "b", &nodes, Some(vb.clone()));
    assert_eq!(
        ip_out(&na, &["route", "show", "proto", "151"]).trim(),
        "10.42.1.0/24 via 10.42.1.0 dev flannel.1 onlink"
    );
    let fdb = String::from_utf8_lossy(
        &Command::new("ip")
            .args([
                "netns",
                "exec",
                &na,
                "bridge",
                "fdb",
                "show",
                "dev",
                "flannel.1",
            ])
            .output()
            .expect("bridge")
            .stdout,
    )
    .into_owned();
    assert!(fdb.contains(&format!("{} dst 10.250.0.2", vb.mac)), "{fdb}");
    let before = tx_packets(&na);
    let seen = connect(&pa, &pb).expect("pod to pod over VXLAN");
    assert_eq!(seen.ip().to_string(), "10.42.0.2");
    assert!(
        tx_packets(&na) > before,
        "the traffic went through flannel.1"
    );
    // Node b is gone: route, neighbour and forwarding entries go.
    sync(&na, Backend::Vxlan, "a", &nodes[..1], Some(va));
    assert_eq!(ip_out(&na, &["route", "show", "proto", "151"]).trim(), "");
    assert_eq!(
        ip_out(
            &na,
            &["neigh", "show", "dev", "flannel.1", "nud", "permanent"]
        )
        .trim(),
        ""
    );
}

fn tx_packets(ns: &str) -> u64 {
    let j: serde_json::Value =
        serde_json::from_str(&ip_out(ns, &["-j", "-s", "link", "show", "flannel.1"]))
            .expect("json");
    j[0]["stats64"]["tx"]["packets"]
        .as_u64()
        .expect("tx packets")
}
