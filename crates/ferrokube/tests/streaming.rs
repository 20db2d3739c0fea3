//! Logs, exec, attach and port-forward end to end on a one-node cluster
//! (`ferrokube server` with its node agent and containerd), driven by the
//! real kubectl: what kubectl prints and its exit codes, through the API
//! server's `pods/log`, `pods/exec`, `pods/attach` and `pods/portforward`,
//! the node's HTTPS server and containerd's streaming server.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{kubectl_command, tail, Cluster, POLL};
use ferrokube_client::testing::wait::wait_until_blocking;

const NODE: &str = "fk-stream-e2e";

/// kubectl for this cluster without `--request-timeout` (streams last).
fn kubectl(c: &Cluster, args: &[&str]) -> Command {
    let mut cmd = kubectl_command(Path::new("kubectl"), &c.kubeconfig());
    cmd.args(args);
    cmd
}

/// Waits (bounded) for a child to exit, reading its stdout and stderr
/// meanwhile (a full pipe would hold it up); kills it (by pid) on timeout.
fn wait_child(mut child: Child, within: Duration) -> (Option<i32>, String, String) {
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut s);
            }
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|o| Box::new(o) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|e| Box::new(e) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + within;
    let status = loop {
        if let Ok(Some(s)) = child.try_wait() {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = out.join().unwrap_or_default();
    let err = err.join().unwrap_or_default();
    (status.and_then(|s| s.code()), out, err)
}

/// Lines a child prints on stdout, read on a thread.
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().expect("piped stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// Waits (bounded) for a line matching `f`.
fn expect_line(rx: &mpsc::Receiver<String>, within: Duration, f: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) if f(&l) => return l,
            Ok(l) => seen.push(l),
            Err(_) => panic!("no expected line within {within:?}; saw {seen:?}"),
        }
    }
}

fn pod_json(c: &Cluster, name: &str) -> serde_json::Value {
    serde_json::from_str(&c.kubectl_ok(&["get", "pod", name, "-o", "json"])).expect("pod json")
}

fn running(c: &Cluster, name: &str) -> bool {
    pod_json(c, name)["status"]["containerStatuses"][0]["state"]["running"].is_object()
}

#[test]
#[expect(
    clippy::too_many_lines,
    reason = "one scenario: the streaming pods share one node started once, the slowest part of the test"
)]
fn logs_exec_attach_and_port_forward_through_the_node() {
    let c = Cluster::start_ready_node(NODE, common::NODE_ALONE);
    let node: serde_json::Value =
        serde_json::from_str(&c.kubectl_ok(&["get", "node", NODE, "-o", "json"])).expect("node");
    let port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        .as_u64()
        .expect("the node reports its kubelet port");
    assert!(port != 0 && port != 10250, "a free port was taken: {port}");

    // The kubelet port: /healthz for anyone, the rest needs a client
    // certificate from the cluster CA.
    let curl = |path: &str| -> String {
        let out = Command::new("curl")
            .args(["-sk", "-m", "10", "-o", "/dev/null", "-w", "%{http_code}"])
            .arg(format!("https://127.0.0.1:{port}{path}"))
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(curl("/healthz"), "200");
    assert_eq!(curl("/containerLogs/default/x/y"), "401");

    let manifest = r#"apiVersion: v1
kind: Pod
metadata: {name: talker}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    imagePullPolicy: Never
    command: ["sh", "-c", "for i in 1 2 3; do echo line $i; done; sleep 1; echo oops >&2; exec sleep 3600"]
---
apiVersion: v1
kind: Pod
metadata: {name: slow}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    imagePullPolicy: Never
    command: ["sh", "-c", "echo first; sleep 8; echo second; sleep 1"]
---
apiVersion: v1
kind: Pod
metadata: {name: restarter}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    imagePullPolicy: Never
    command: ["sh", "-c", "n=$(cat /data/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /data/n; echo instance $n; if [ $n -ge 2 ]; then exec sleep 3600; fi; exit 1"]
    volumeMounts: [{name: data, mountPath: /data}]
  volumes: [{name: data, emptyDir: {}}]
---
apiVersion: v1
kind: Pod
metadata: {name: reader}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    imagePullPolicy: Never
    stdin: true
    command: ["sh", "-c", "while read l; do echo got:$l; done"]
---
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: httpd
    image: busybox
    imagePullPolicy: Never
    ports: [{containerPort: 80}]
    command: ["sh", "-c", "mkdir -p /www && echo hello from httpd > /www/index.html && exec httpd -f -p 80 -h /www"]
---
apiVersion: v1
kind: Pod
metadata: {name: nowhere}
spec:
  nodeSelector: {no-such-label: "x"}
  containers:
  - name: main
    image: busybox
"#;
    let mut apply = kubectl(&c, &["apply", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl apply");
    apply
        .stdin
        .take()
        .expect("stdin")
        .write_all(manifest.as_bytes())
        .expect("write manifest");
    let (code, _, err) = wait_child(apply, Duration::from_secs(30));
    assert_eq!(code, Some(0), "apply: {err}");
    c.kubectl_ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/talker",
        "pod/reader",
        "pod/web",
        "--timeout=120s",
    ]);

    // Logs: all of them, stdout and stderr, --tail, --timestamps, --limit-bytes, -c.
    // (stdout and stderr are separate pipes: the runtime orders their lines as it
    // reads them, so the stderr line comes a second later.)
    wait_until_blocking("talker's lines", Duration::from_secs(30), POLL, || {
        c.kubectl_ok(&["logs", "talker"]).contains("oops")
    });
    assert_eq!(
        c.kubectl_ok(&["logs", "talker"]),
        "line 1\nline 2\nline 3\noops\n"
    );
    assert_eq!(c.kubectl_ok(&["logs", "talker", "--tail=1"]), "oops\n");
    // The node's port itself: the API server's kubelet-client certificate
    // reads logs; a certificate from another CA is refused.
    let tls = c.data_dir().join("tls");
    let foreign = tempfile::tempdir().expect("dir");
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args([
            "-nodes",
            "-subj",
            "/CN=kube-apiserver-kubelet-client",
            "-days",
            "1",
        ])
        .arg("-keyout")
        .arg(foreign.path().join("k.pem"))
        .arg("-out")
        .arg(foreign.path().join("c.pem"))
        .output()
        .expect("openssl");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let with_cert = |cert: &Path, key: &Path| -> (String, String) {
        let out = Command::new("curl")
            .args(["-sk", "-m", "10", "-w", "\n%{http_code}"])
            .arg("--cert")
            .arg(cert)
            .arg("--key")
            .arg(key)
            .arg(format!(
                "https://127.0.0.1:{port}/containerLogs/default/talker/main?tailLines=1"
            ))
            .output()
            .expect("curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", ""));
        (code.to_string(), body.to_string())
    };
    assert_eq!(
        with_cert(
            &tls.join("kubelet-client.crt"),
            &tls.join("kubelet-client.key")
        ),
        ("200".to_string(), "oops\n".to_string())
    );
    assert_eq!(
        with_cert(&foreign.path().join("c.pem"), &foreign.path().join("k.pem")).0,
        "401"
    );
    let node_get = |path: &str| -> String {
        let out = Command::new("curl")
            .args(["-sk", "-m", "10", "--cert"])
            .arg(tls.join("kubelet-client.crt"))
            .arg("--key")
            .arg(tls.join("kubelet-client.key"))
            .arg(format!("https://127.0.0.1:{port}{path}"))
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let metrics = node_get("/metrics/resource");
    // What metrics-server reads, as a kubelet writes it: value and a
    // millisecond timestamp, none on the start time.
    for want in [
        "container_memory_working_set_bytes{container=\"main\",namespace=\"default\",pod=\"talker\"} ",
        "container_cpu_usage_seconds_total{container=\"main\",namespace=\"default\",pod=\"talker\"} ",
        "container_start_time_seconds{container=\"main\",namespace=\"default\",pod=\"talker\"} ",
        "pod_cpu_usage_seconds_total{namespace=\"default\",pod=\"talker\"} ",
        "pod_memory_working_set_bytes{namespace=\"default\",pod=\"talker\"} ",
        "node_cpu_usage_seconds_total ",
        "node_memory_working_set_bytes ",
        "# TYPE container_start_time_seconds gauge\n",
        "\nresource_scrape_error 0\n",
    ] {
        assert!(metrics.contains(want), "{want} not in {metrics}");
    }
    for line in metrics.lines().filter(|l| l.contains("pod=\"talker\"")) {
        let fields: Vec<&str> = line.rsplitn(3, ' ').collect();
        let stamped = !line.starts_with("container_start_time_seconds");
        assert_eq!(fields.len(), if stamped { 3 } else { 2 }, "{line}");
        let value: f64 = fields[if stamped { 1 } else { 0 }]
            .parse()
            .unwrap_or_else(|_| panic!("value of {line}"));
        assert!(value > 0.0, "{line}");
    }
    let summary: serde_json::Value =
        serde_json::from_str(&node_get("/stats/summary")).expect("summary JSON");
    assert_eq!(summary["node"]["nodeName"], NODE, "{summary}");
    for k in ["cpu", "memory", "fs", "network"] {
        assert!(summary["node"].get(k).is_some(), "node {k}: {summary}");
    }
    // containerd counts its snapshots' usage every 10 s or so: a number,
    // maybe 0 this early.
    assert!(
        summary["node"]["runtime"]["imageFs"]["usedBytes"].is_u64(),
        "containerd's image filesystem: {}",
        summary["node"]["runtime"]
    );
    let talker = summary["pods"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["podRef"]["name"] == "talker"))
        .unwrap_or_else(|| panic!("talker not in {summary}"));
    assert_eq!(talker["podRef"]["namespace"], "default");
    assert!(
        talker["memory"]["workingSetBytes"].as_u64() > Some(0),
        "{talker}"
    );
    let main = &talker["containers"][0];
    assert_eq!(main["name"], "main", "{talker}");
    assert!(
        main["cpu"]["usageCoreNanoSeconds"].as_u64() > Some(0),
        "{talker}"
    );
    assert!(main["logs"]["usedBytes"].as_u64() > Some(0), "{talker}");
    assert!(
        talker["ephemeral-storage"]["usedBytes"].as_u64() > Some(0),
        "{talker}"
    );
    assert_eq!(
        c.kubectl_ok(&["logs", "talker", "-c", "main", "--tail=2"]),
        "line 3\noops\n"
    );
    assert_eq!(c.kubectl_ok(&["logs", "talker", "--limit-bytes=4"]), "line");
    assert_eq!(
        c.kubectl_ok(&["logs", "talker", "--since=1h"])
            .lines()
            .count(),
        4
    );
    let stamped = c.kubectl_ok(&["logs", "talker", "--timestamps", "--tail=1"]);
    let (ts, rest) = stamped.trim_end().split_once(' ').expect("a timestamp");
    assert_eq!(rest, "oops");
    assert!(
        ts.len() == "2024-01-02T03:04:05.123456789Z".len() && ts.ends_with('Z'),
        "{ts}"
    );
    let bad = c.kubectl(&["logs", "talker", "-c", "foo"]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("container foo is not valid for pod talker"),
        "{err}"
    );
    let nowhere = c.kubectl(&["logs", "nowhere"]);
    assert!(!nowhere.status.success());
    let err = String::from_utf8_lossy(&nowhere.stderr);
    assert!(
        err.contains("pod nowhere does not have a host assigned"),
        "{err}"
    );

    // logs -f sees a line printed after it started and ends with the container.
    wait_until_blocking("slow's first line", Duration::from_secs(60), POLL, || {
        c.kubectl(&["logs", "slow"]).stdout.starts_with(b"first")
    });
    let follow = kubectl(&c, &["logs", "-f", "slow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl logs -f");
    let started = Instant::now();
    let (code, out, err) = wait_child(follow, Duration::from_secs(40));
    assert_eq!(
        code,
        Some(0),
        "logs -f did not end by itself: {out:?} {err}"
    );
    assert_eq!(out, "first\nsecond\n");
    assert!(
        started.elapsed() > Duration::from_secs(1),
        "it waited for the second line"
    );

    // exec, attach and port-forward the way kubectl 1.32 does them by
    // default (WebSockets: v5.channel.k8s.io, SPDY tunnelled for
    // port-forward, translated to SPDY by the API server), then with
    // kubectl's WebSockets turned off (SPDY/3.1 end to end).
    exec_attach_and_port_forward(&c, Transport::WebSocket);
    exec_attach_and_port_forward(&c, Transport::Spdy);

    // The official Python client's exec (it offers v5 and v4 and writes
    // text to stdin as WebSocket text messages), and logs over a WebSocket.
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/stream_check.py");
    let py = Command::new("timeout")
        .args(["120", "python3", script])
        .arg(c.kubeconfig())
        .args(["default", "talker", "line 1\\nline 2\\nline 3\\noops\\n"])
        .output()
        .expect("python3 stream_check.py");
    let stdout = String::from_utf8_lossy(&py.stdout);
    assert!(
        py.status.success() && stdout.contains("python exec and logs: ok"),
        "python exec failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&py.stderr)
    );

    proxies(&c);

    // --previous after a restart.
    wait_until_blocking(
        "restarter's second instance",
        Duration::from_secs(90),
        POLL,
        || {
            let p = pod_json(&c, "restarter");
            p["status"]["containerStatuses"][0]["restartCount"].as_i64() >= Some(1)
                && running(&c, "restarter")
        },
    );
    wait_until_blocking(
        "the second instance's line",
        Duration::from_secs(20),
        POLL,
        || c.kubectl_ok(&["logs", "restarter"]) == "instance 2\n",
    );
    assert_eq!(
        c.kubectl_ok(&["logs", "restarter", "--previous"]),
        "instance 1\n"
    );
    let none = c.kubectl(&["logs", "talker", "--previous"]);
    assert!(!none.status.success());
    let err = String::from_utf8_lossy(&none.stderr);
    assert!(
        err.contains("previous terminated container \"main\" in pod \"talker\" not found"),
        "{err}"
    );
}

/// The proxy subresources of pods, services and nodes, through `kubectl get
/// --raw` and through `kubectl proxy`, with the errors Kubernetes gives.
fn proxies(c: &Cluster) {
    c.kubectl_ok(&[
        "expose",
        "pod",
        "web",
        "--name=websvc",
        "--port=8080",
        "--target-port=80",
    ]);
    c.kubectl_ok(&["create", "service", "clusterip", "empty", "--tcp=80"]);
    wait_until_blocking("websvc's endpoints", Duration::from_secs(30), POLL, || {
        !c.kubectl_ok(&[
            "get",
            "endpoints",
            "websvc",
            "-o",
            "jsonpath={.subsets[0].addresses[0].ip}",
        ])
        .is_empty()
    });
    let page = "hello from httpd\n";
    for path in [
        "/api/v1/namespaces/default/pods/web/proxy/index.html",
        "/api/v1/namespaces/default/pods/web:80/proxy/",
        "/api/v1/namespaces/default/pods/http:web:80/proxy/",
        "/api/v1/namespaces/default/services/websvc/proxy/",
        "/api/v1/namespaces/default/services/websvc:8080/proxy/index.html",
        "/api/v1/namespaces/default/services/http:websvc:8080/proxy/",
    ] {
        assert_eq!(c.kubectl_ok(&["get", "--raw", path]), page, "{path}");
    }
    // A node's proxy reaches its kubelet with the API server's certificate.
    assert_eq!(
        c.kubectl_ok(&[
            "get",
            "--raw",
            &format!("/api/v1/nodes/{NODE}/proxy/healthz")
        ]),
        "ok"
    );
    assert_eq!(
        c.kubectl_ok(&[
            "get",
            "--raw",
            &format!("/api/v1/nodes/{NODE}/proxy/containerLogs/default/talker/main?tailLines=1"),
        ]),
        "oops\n"
    );
    let err = |path: &str| {
        let out = c.kubectl(&["get", "--raw", path]);
        assert!(!out.status.success(), "{path} succeeded");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = err("/api/v1/namespaces/default/services/empty:80/proxy/");
    assert!(
        e.contains("(ServiceUnavailable)")
            && e.contains(r#"no endpoints available for service "empty""#),
        "{e}"
    );
    let e = err("/api/v1/namespaces/default/services/websvc:9999/proxy/");
    assert!(
        e.contains(r#"no service port 9999 found for service "websvc""#),
        "{e}"
    );
    let e = err("/api/v1/namespaces/default/services/nothere/proxy/");
    assert!(e.contains(r#"services "nothere" not found"#), "{e}");
    let e = err("/api/v1/namespaces/default/pods/web:81/proxy/");
    assert!(e.contains("error trying to reach service"), "{e}");

    // kubectl proxy: a local port that reaches the service through the API.
    let port = common::free_port();
    let mut proxy = kubectl(c, &["proxy", &format!("--port={port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubectl proxy");
    let url =
        format!("http://127.0.0.1:{port}/api/v1/namespaces/default/services/websvc:8080/proxy/");
    let mut got = String::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        let out = Command::new("curl")
            .args(["-s", "-m", "5", &url])
            .output()
            .expect("curl");
        got = String::from_utf8_lossy(&out.stdout).into_owned();
        if got == page {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = proxy.kill();
    let _ = proxy.wait();
    assert_eq!(got, page, "through kubectl proxy");
    c.kubectl_ok(&["delete", "service", "websvc", "empty"]);
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Transport {
    WebSocket,
    Spdy,
}

/// kubectl for a streaming command over `t`, logging its requests (`-v=6`:
/// method, URL and status of each).
fn streaming_kubectl(c: &Cluster, t: Transport, args: &[&str]) -> Command {
    let mut cmd = kubectl(c, &["-v=6"]);
    cmd.args(args);
    if t == Transport::Spdy {
        cmd.env("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "false")
            .env("KUBECTL_PORT_FORWARD_WEBSOCKETS", "false");
    }
    cmd
}

/// Asserts from kubectl's request log that the `sub` upgrade went over `t`
/// and nothing fell back: a WebSocket is a GET answered 101 (a refused one
/// would be a GET answered 400 followed by SPDY's POST), SPDY a POST.
fn assert_upgraded_over(log: &str, sub: &str, t: Transport) {
    // kubectl 1.32 at -v=6: `"Response" verb="GET" url="https://.../exec?..."
    // status="101 Switching Protocols" milliseconds=9`.
    let needle = format!("/{sub}");
    let upgrades: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("\"Response\"") && l.contains(&needle))
        .collect();
    let method = match t {
        Transport::WebSocket => "verb=\"GET\"",
        Transport::Spdy => "verb=\"POST\"",
    };
    assert!(
        !upgrades.is_empty()
            && upgrades
                .iter()
                .all(|l| l.contains(method) && l.contains("status=\"101 Switching Protocols\"")),
        "{sub} over {t:?}: expected only {method} requests answered 101, got {upgrades:#?}\n{log}"
    );
    if t == Transport::WebSocket && sub != "portforward" {
        assert!(
            log.contains("The subprotocol is v5.channel.k8s.io"),
            "{log}"
        );
    }
}

#[expect(
    clippy::too_many_lines,
    reason = "one sequence of exec, attach and port-forward checks run once per transport"
)]
fn exec_attach_and_port_forward(c: &Cluster, t: Transport) {
    // exec: output and the remote exit code.
    let run = streaming_kubectl(
        c,
        t,
        &["exec", "talker", "--", "sh", "-c", "echo hi; exit 3"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("kubectl exec");
    let (code, out, err) = wait_child(run, Duration::from_secs(60));
    assert_eq!(out, "hi\n", "{t:?}: {err}");
    assert_eq!(code, Some(3), "{t:?}: {err}\n{}", tail(&c.log(), 30));
    assert_upgraded_over(&err, "exec", t);

    // stdin to the end: cat ends when kubectl's stdin does (v5's CLOSE).
    let mut cat = streaming_kubectl(c, t, &["exec", "-i", "talker", "--", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl exec -i");
    {
        let mut stdin = cat.stdin.take().expect("stdin");
        stdin.write_all(b"hello\n").expect("write stdin");
    } // closed: cat ends
    let (code, out, err) = wait_child(cat, Duration::from_secs(60));
    assert_eq!(code, Some(0), "{t:?}: {err}");
    assert_eq!(out, "hello\n", "{t:?}: {err}");
    assert_upgraded_over(&err, "exec", t);

    // More than any flow-control window, both ways.
    let mut wc = streaming_kubectl(c, t, &["exec", "-i", "talker", "--", "wc", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl exec -i wc");
    {
        let mut stdin = wc.stdin.take().expect("stdin");
        stdin
            .write_all(&vec![b'y'; 1_000_000])
            .expect("write stdin");
    }
    let (code, out, err) = wait_child(wc, Duration::from_secs(60));
    assert_eq!((code, out.trim()), (Some(0), "1000000"), "{t:?}: {err}");
    let big = streaming_kubectl(
        c,
        t,
        &[
            "exec",
            "talker",
            "--",
            "sh",
            "-c",
            "head -c 3000000 /dev/zero | tr '\\0' x; echo; echo done >&2",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("kubectl exec big");
    if t == Transport::WebSocket {
        // A reader that falls behind (a pager): the output is all in flight
        // when the command ends, and kubectl, still sending heartbeat pings,
        // must get to read it all before the connection goes.
        std::thread::sleep(Duration::from_secs(12));
    }
    let (code, out, err) = wait_child(big, Duration::from_secs(90));
    assert_eq!(code, Some(0), "{t:?}: {err}\n{}", tail(&c.log(), 40));
    assert_eq!(out.len(), 3_000_001, "{t:?}");
    assert!(out.trim_end().bytes().all(|b| b == b'x'), "{t:?}");
    assert!(err.lines().any(|l| l == "done"), "{t:?}: stderr {err}");

    let no_tty = streaming_kubectl(c, t, &["exec", "talker", "--", "sh", "-c", "tty || true"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl exec tty");
    let (_, out, err) = wait_child(no_tty, Duration::from_secs(60));
    assert_eq!(out.trim(), "not a tty", "{t:?}: {err}");

    // A terminal for kubectl's stdin (script(1)), so -t asks for one.
    let cmdline = format!(
        "kubectl -v=6 --kubeconfig {} exec -it talker -- sh -c 'tty; exit 5'",
        c.kubeconfig().display()
    );
    let mut script = Command::new("script");
    script
        .args(["-qec", &cmdline, "/dev/null"])
        .env_remove("KUBECONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if t == Transport::Spdy {
        script.env("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "false");
    }
    let tty = script.spawn().expect("script");
    let (code, out, err) = wait_child(tty, Duration::from_secs(60));
    assert!(out.contains("/dev/pts/"), "{t:?}: {out:?} {err}");
    assert_eq!(code, Some(5), "{t:?}: {out:?} {err}");
    // (script puts kubectl's stderr on the terminal too.)
    assert_upgraded_over(&out, "exec", t);

    // attach to a container reading its stdin.
    let mut attach = streaming_kubectl(c, t, &["attach", "-i", "reader"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl attach");
    let lines = lines_of(&mut attach);
    let mut stdin = attach.stdin.take().expect("stdin");
    // The attach may still be setting up: say it until it is heard.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut heard = false;
    while !heard && Instant::now() < deadline {
        let _ = stdin.write_all(b"hello\n");
        let _ = stdin.flush();
        heard = matches!(lines.recv_timeout(Duration::from_secs(2)), Ok(l) if l == "got:hello");
    }
    drop(stdin);
    let _ = attach.kill();
    let _ = attach.wait();
    let mut err = String::new();
    if let Some(mut e) = attach.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    assert!(heard, "{t:?}: attach did not carry stdin and stdout: {err}");
    assert_upgraded_over(&err, "attach", t);

    // port-forward to httpd, and an HTTP GET through it.
    let mut pf = streaming_kubectl(c, t, &["port-forward", "pod/web", ":80"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl port-forward");
    let lines = lines_of(&mut pf);
    let fwd = expect_line(&lines, Duration::from_secs(30), |l| {
        l.starts_with("Forwarding from 127.0.0.1:")
    });
    let local: u16 = fwd
        .trim_start_matches("Forwarding from 127.0.0.1:")
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a local port");
    let mut page = String::new();
    for _ in 0..2 {
        // Twice: each connection is its own stream.
        let mut s = std::net::TcpStream::connect(("127.0.0.1", local)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(15)))
            .expect("timeout");
        s.write_all(b"GET /index.html HTTP/1.0\r\nHost: web\r\n\r\n")
            .expect("request");
        page.clear();
        let _ = s.read_to_string(&mut page);
        assert!(
            page.starts_with("HTTP/1.") && page.contains(" 200 "),
            "{t:?}: {page}"
        );
        assert!(page.ends_with("hello from httpd\n"), "{t:?}: {page}");
    }
    let _ = pf.kill();
    let _ = pf.wait();
    let mut err = String::new();
    if let Some(mut e) = pf.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    assert_upgraded_over(&err, "portforward", t);
}

/// Without a reachable kubelet (a Node whose port nobody listens on), the
/// streaming subresources answer with Kubernetes errors, and bad requests
/// are refused before any node is asked; the server keeps serving.
#[test]
fn streaming_errors_are_statuses() {
    let c = Cluster::start();
    let closed = common::free_port();
    let node = r#"{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "gone"}}"#;
    let mut apply = kubectl(&c, &["apply", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl apply");
    apply
        .stdin
        .take()
        .expect("stdin")
        .write_all(node.as_bytes())
        .expect("write");
    let (code, _, err) = wait_child(apply, Duration::from_secs(30));
    assert_eq!(code, Some(0), "{err}");
    let status = format!(
        r#"{{"status": {{"addresses": [{{"type": "InternalIP", "address": "127.0.0.1"}}], "daemonEndpoints": {{"kubeletEndpoint": {{"Port": {closed}}}}}}}}}"#
    );
    c.kubectl_ok(&[
        "patch",
        "node",
        "gone",
        "--subresource=status",
        "--type=merge",
        "-p",
        &status,
    ]);
    c.kubectl_ok(&[
        "run",
        "p",
        "--image=busybox",
        "--overrides",
        r#"{"spec": {"nodeName": "gone"}}"#,
    ]);
    // kubectl port-forward looks at the phase first.
    c.kubectl_ok(&[
        "patch",
        "pod",
        "p",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status": {"phase": "Running"}}"#,
    ]);

    let err_of = |args: &[&str]| -> String {
        let out = c.kubectl(args);
        assert!(!out.status.success(), "{args:?} succeeded");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = err_of(&["logs", "p"]);
    assert!(
        e.contains("Error from server") && e.contains("dialing the kubelet"),
        "{e}"
    );
    let e = err_of(&["exec", "p", "--", "true"]);
    assert!(e.contains("dialing the kubelet"), "{e}");
    // (kubectl asks for a WebSocket first: the Status comes back before any
    // upgrade either way.)
    let e = err_of(&["exec", "p", "-c", "nope", "--", "true"]);
    assert!(e.contains("container nope is not valid for pod p"), "{e}");
    let e = err_of(&["port-forward", "pod/p", ":80"]);
    assert!(e.contains("dialing the kubelet"), "{e}");
    let e = err_of(&["logs", "p", "-c", "nope"]);
    assert!(e.contains("container nope is not valid for pod p"), "{e}");
    let e = err_of(&[
        "get",
        "--raw",
        "/api/v1/namespaces/default/pods/p/log?tailLines=-1",
    ]);
    assert!(e.contains("tailLines"), "{e}");
    let e = err_of(&[
        "get",
        "--raw",
        "/api/v1/namespaces/default/pods/p/exec?command=ls&stdout=true",
    ]);
    assert!(e.contains("Upgrade request required"), "{e}");
    let e = err_of(&[
        "get",
        "--raw",
        "/api/v1/namespaces/default/pods/p/exec?command=ls",
    ]);
    assert!(
        e.contains("you must specify at least 1 of stdin, stdout, stderr"),
        "{e}"
    );
    let e = err_of(&["logs", "missing"]);
    assert!(e.contains(r#"pods "missing" not found"#), "{e}");
    assert_eq!(c.kubectl_ok(&["get", "--raw", "/readyz"]), "ok");
}
