//! A small network inside this machine for the proxy's tests and
//! benchmarks: a "node" network namespace with a bridge, and "pod"
//! namespaces on it, each with an address from a test pod network.
//! Everything it creates (namespaces, processes) is removed on drop.
//!
//! Setup failures panic: this is test scaffolding, and a half-built lab
//! must stop the test loudly.

use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// The lab: a node namespace with a bridge, and pod namespaces on it.
pub struct Lab {
    /// The node's network namespace (where the proxy's nft runs).
    pub node: String,
    /// Each pod's network namespace and IPv4 address, in creation order.
    pub pods: Vec<(String, String)>,
    /// The bridge's address in the node namespace: the pods' default route.
    pub gateway: String,
    children: Vec<Child>,
}

fn run(args: &[&str]) -> Output {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("running {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

impl Lab {
    /// A node namespace and `pods` pod namespaces on subnet 10.42.<net>.0/24.
    pub fn new(tag: &str, net: u8, pods: usize) -> Lab {
        let base = format!("fkp{}{tag}", std::process::id());
        let node = format!("{base}-node");
        let gateway = format!("10.42.{net}.1");
        let mut lab = Lab {
            node: node.clone(),
            pods: Vec::new(),
            gateway: gateway.clone(),
            children: Vec::new(),
        };
        run(&["ip", "netns", "add", &node]);
        let n = node.as_str();
        run(&["ip", "-n", n, "link", "set", "lo", "up"]);
        run(&["ip", "-n", n, "link", "add", "br0", "type", "bridge"]);
        run(&[
            "ip",
            "-n",
            n,
            "addr",
            "add",
            &format!("{gateway}/24"),
            "dev",
            "br0",
        ]);
        run(&["ip", "-n", n, "link", "set", "br0", "up"]);
        // A default route, so traffic to a cluster IP without endpoints is
        // forwarded (and rejected by the proxy) as on a real node.
        run(&[
            "ip", "-n", n, "link", "add", "up0", "type", "veth", "peer", "name", "up1",
        ]);
        run(&["ip", "-n", n, "link", "set", "up0", "up"]);
        run(&["ip", "-n", n, "link", "set", "up1", "up"]);
        run(&["ip", "-n", n, "route", "add", "default", "dev", "up0"]);
        run(&[
            "ip",
            "netns",
            "exec",
            n,
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
        ]);
        run(&[
            "ip",
            "netns",
            "exec",
            n,
            "sysctl",
            "-qw",
            "net.bridge.bridge-nf-call-iptables=1",
        ]);
        for i in 0..pods {
            let pod = format!("{base}-p{i}");
            let ip = format!("10.42.{net}.{}", 10 + i);
            run(&["ip", "netns", "add", &pod]);
            lab.pods.push((pod.clone(), ip.clone()));
            let veth = format!("veth{i}");
            run(&[
                "ip", "-n", n, "link", "add", &veth, "type", "veth", "peer", "name", "eth0",
                "netns", &pod,
            ]);
            run(&["ip", "-n", n, "link", "set", &veth, "master", "br0"]);
            // As the CNI bridge plugin's hairpinMode does: a pod's traffic
            // to its own Service may come back out of the port it entered.
            run(&[
                "ip",
                "-n",
                n,
                "link",
                "set",
                &veth,
                "type",
                "bridge_slave",
                "hairpin",
                "on",
            ]);
            run(&["ip", "-n", n, "link", "set", &veth, "up"]);
            run(&["ip", "-n", &pod, "link", "set", "lo", "up"]);
            run(&[
                "ip",
                "-n",
                &pod,
                "addr",
                "add",
                &format!("{ip}/24"),
                "dev",
                "eth0",
            ]);
            run(&["ip", "-n", &pod, "link", "set", "eth0", "up"]);
            run(&["ip", "-n", &pod, "route", "add", "default", "via", &gateway]);
        }
        lab
    }

    /// The nft command for the node namespace.
    pub fn nft(&self) -> Vec<String> {
        ["ip", "netns", "exec", &self.node, "nft"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    /// Starts `args` inside pod `i`; it is killed when the lab goes.
    pub fn spawn_in(&mut self, i: usize, args: &[&str]) -> &mut Child {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.pods[i].0])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {args:?} in pod {i}: {e}"));
        self.children.push(child);
        let last = self.children.len() - 1;
        &mut self.children[last]
    }

    /// An HTTP server in pod `i` on port 8080 answering `text`.
    pub fn serve(&mut self, i: usize, text: &str) {
        let script = format!(
            "import http.server\n\
             class H(http.server.BaseHTTPRequestHandler):\n\
             \x20   def do_GET(self):\n\
             \x20       b = b'{text}'\n\
             \x20       self.send_response(200); self.send_header('Content-Length', str(len(b))); self.end_headers(); self.wfile.write(b)\n\
             \x20   def log_message(self, *a): pass\n\
             http.server.ThreadingHTTPServer(('0.0.0.0', 8080), H).serve_forever()\n"
        );
        let child = Command::new("ip")
            .args(["netns", "exec", &self.pods[i].0, "python3", "-c", &script])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the pod's server");
        self.children.push(child);
        // Wait until it answers on its own address.
        for _ in 0..100 {
            if self
                .get(i, &format!("http://{}:8080/", self.pods[i].1))
                .is_ok()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the server in pod {i} did not come up");
    }

    /// GET `url` from pod `i`: the body, or curl's exit code.
    pub fn get(&self, i: usize, url: &str) -> Result<String, i32> {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.pods[i].0,
                "curl",
                "-s",
                "--max-time",
                "3",
                url,
            ])
            .output()
            .expect("run curl");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(out.status.code().unwrap_or(-1))
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for (pod, _) in &self.pods {
            let _ = Command::new("ip").args(["netns", "del", pod]).status();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.node])
            .status();
    }
}
