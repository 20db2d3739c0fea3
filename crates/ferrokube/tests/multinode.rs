//! A cluster of several machines, on this one (`ferrokube-lab`): a server in
//! the host's network namespace and three agents, each node in a namespace of
//! its own on a lab bridge, seen through the real kubectl: the nodes join
//! with their own addresses and become Ready, each runs pods, and the lab
//! leaves nothing behind; a Deployment spreads over the nodes by its
//! topology spread constraint, and pods on every node resolve Services
//! through the cluster DNS; the nodes have distinct pod CIDRs and pods
//! reach pods on other nodes with their own address; a Service's cluster IP
//! and node port answer from every node; ServiceLB serves a LoadBalancer on
//! every node, a Local one only where its pod runs, and only labelled nodes
//! once one is labelled.

mod common;

use std::path::Path;
use std::time::Duration;

use ferrokube_client::testing::wait::wait_until_blocking;
use ferrokube_lab::{busybox_pod_on, Lab};
use serde_json::json;

const POLL: Duration = Duration::from_millis(500);

/// The web server of these tests: busybox httpd on 8080 whose
/// `/cgi-bin/ip` answers the address the request came from.
const WEB_SCRIPT: &str = r#"mkdir -p /www/cgi-bin
printf '#!/bin/sh\necho Content-Type: text/plain\necho\necho "$REMOTE_ADDR"\n' > /www/cgi-bin/ip
chmod +x /www/cgi-bin/ip
exec httpd -f -p 8080 -h /www"#;

/// A Deployment `web` of `replicas` web servers spread over the nodes by
/// hostname (maxSkew 1, DoNotSchedule), ready once they answer.
fn web_deployment(replicas: usize) -> String {
    serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
          "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
            "terminationGracePeriodSeconds": 1,
            "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
              "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "web"}}}],
            "containers": [{"name": "web", "image": "busybox:1.35", "imagePullPolicy": "IfNotPresent",
              "command": ["sh", "-c", WEB_SCRIPT],
              "ports": [{"containerPort": 8080}],
              "readinessProbe": {"httpGet": {"path": "/cgi-bin/ip", "port": 8080},
                "periodSeconds": 1}}]}}}
    })
    .to_string()
}

/// The `web` Service: port 80 to the pods' 8080, a NodePort.
const WEB_SERVICE: &str = r#"{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
  "spec": {"type": "NodePort", "selector": {"app": "web"},
    "ports": [{"port": 80, "targetPort": 8080}]}}"#;

/// One line per item of `kind` (with `-l selector` when not empty): the
/// fields of the JSONPath `fields` (inside `{range .items[*]}`), split.
fn rows(lab: &Lab, kind: &str, selector: &str, fields: &str) -> Vec<Vec<String>> {
    let path = format!("jsonpath={{range .items[*]}}{fields}{{\"\\n\"}}{{end}}");
    let mut args = vec!["get", kind, "-o", &path];
    if !selector.is_empty() {
        args.extend(["-l", selector]);
    }
    lab.kubectl_ok(&args)
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

/// The pods of `web` as (name, IP, node).
fn web_pods(lab: &Lab) -> Vec<(String, String, String)> {
    rows(
        lab,
        "pods",
        "app=web",
        "{.metadata.name} {.status.podIP} {.spec.nodeName}",
    )
    .into_iter()
    .filter_map(|r| Some((r.first()?.clone(), r.get(1)?.clone(), r.get(2)?.clone())))
    .collect()
}

/// Starts `web` (6 pods, 2 per node) and one client pod per node
/// (`client-<i>`), and waits for all of them to be ready.
fn start_web_and_clients(lab: &Lab) {
    lab.apply("web", &web_deployment(6));
    for (i, n) in lab.nodes().iter().enumerate() {
        let name = format!("client-{i}");
        lab.apply(
            &name,
            &busybox_pod_on(&name, &n.name, json!({}), "sleep 3600"),
        );
    }
    lab.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=180s"]);
    for i in 0..lab.nodes().len() {
        let pod = format!("pod/client-{i}");
        lab.kubectl_ok(&["wait", "--for=condition=Ready", &pod, "--timeout=120s"]);
    }
}

fn pod_ip(lab: &Lab, pod: &str) -> String {
    lab.kubectl_ok(&["get", "pod", pod, "-o", "jsonpath={.status.podIP}"])
}

/// `GET /cgi-bin/ip` of a web server at `host:port`, from inside `pod`
/// (busybox nc: the image's wget, statically linked, cannot resolve even
/// an address literal); the command's output, the answer's body last.
fn get_ip_from_pod(lab: &Lab, pod: &str, host: &str, port: u16) -> std::process::Output {
    let script = format!("printf 'GET /cgi-bin/ip HTTP/1.0\\r\\n\\r\\n' | nc -w 5 {host} {port}");
    lab.kubectl(&["exec", pod, "--", "sh", "-c", &script])
}

/// The address a web server saw a request come from: the last line of its
/// answer (busybox httpd may write an IPv4 peer in its IPv6-mapped form).
fn seen_from(answer: &[u8]) -> String {
    String::from_utf8_lossy(answer)
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_start_matches("::ffff:")
        .to_string()
}

/// `curl` of a URL from a node's namespace (`Some(i)`) or the host.
fn curl(lab: &Lab, node: Option<usize>, url: &str) -> std::process::Output {
    let cmd = ["curl", "-sS", "-m", "5", url];
    match node {
        Some(i) => lab.in_node(i, &cmd),
        None => std::process::Command::new("curl")
            .args(&cmd[1..])
            .output()
            .expect("run curl"),
    }
}

#[test]
fn three_nodes_join_become_ready_run_a_pod_each_and_leave_nothing_behind() {
    let lab = common::lab::up(3, &[]);
    let names: Vec<String> = lab.nodes().iter().map(|n| n.name.clone()).collect();
    assert_eq!(names, ["node-0", "node-1", "node-2"]);

    // Every node is Ready, with its lab address as its InternalIP.
    let out = lab.kubectl_ok(&[
        "get",
        "nodes",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name} {.status.addresses[?(@.type==\"InternalIP\")].address} {.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}",
    ]);
    let expected: String = lab
        .nodes()
        .iter()
        .map(|n| format!("{} {} True\n", n.name, n.ip))
        .collect();
    assert_eq!(out, expected);

    // One pod on each node: it runs there, and the node's agent serves its
    // exec over the lab network.
    for (i, n) in names.iter().enumerate() {
        lab.apply(
            &format!("p{i}"),
            &busybox_pod_on(&format!("p{i}"), n, json!({}), "sleep 3600"),
        );
    }
    for (i, n) in names.iter().enumerate() {
        let pod = format!("p{i}");
        lab.kubectl_ok(&[
            "wait",
            "--for=condition=Ready",
            &format!("pod/{pod}"),
            "--timeout=120s",
        ]);
        let node = lab.kubectl_ok(&["get", "pod", &pod, "-o", "jsonpath={.spec.nodeName}"]);
        assert_eq!(&node, n);
        let out = lab.kubectl_ok(&["exec", &pod, "--", "echo", "hello from", n]);
        assert_eq!(out, format!("hello from {n}\n"));
    }
    // The nodes are separate machines: each has its own address, and reaches
    // the others and the server over the lab.
    let out = lab.in_node(0, &["ip", "-4", "-o", "addr", "show", "dev", "eth0"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("{}/24", lab.nodes()[0].ip)),
        "{out:?}"
    );
    let server = lab.server_ip().to_string();
    let node2 = lab.nodes()[2].ip.to_string();
    for target in [&server, &node2] {
        let out = lab.in_node(0, &["/bin/busybox", "ping", "-c1", "-W2", target]);
        assert!(
            out.status.success(),
            "node-0 cannot reach {target}: {out:?}"
        );
    }

    // A cut link takes the node off the lab, a restored one brings it back.
    lab.cut_link(2);
    assert!(!lab
        .in_node(0, &["/bin/busybox", "ping", "-c1", "-W1", &node2])
        .status
        .success());
    lab.restore_link(2);
    wait_until_blocking(
        "node-2 to be reachable again",
        Duration::from_secs(10),
        POLL,
        || {
            lab.in_node(0, &["/bin/busybox", "ping", "-c1", "-W1", &node2])
                .status
                .success()
        },
    );

    // Dropping the lab removes what it made.
    let netns: Vec<String> = lab.nodes().iter().map(|n| n.netns.clone()).collect();
    let lab_dir = lab.dir().to_path_buf();
    let host_link = format!("/sys/class/net/fklab{}", lab.server_ip().octets()[2]);
    assert!(Path::new(&host_link).exists());
    drop(lab);
    for ns in &netns {
        assert!(
            !Path::new("/run/netns").join(ns).exists(),
            "{ns} left behind"
        );
    }
    assert!(!lab_dir.exists(), "{} left behind", lab_dir.display());
    assert!(!Path::new(&host_link).exists(), "{host_link} left behind");
    let procs = std::process::Command::new("ps")
        .args(["-eo", "args"])
        .output()
        .expect("ps");
    let procs = String::from_utf8_lossy(&procs.stdout);
    let dir = lab_dir.to_string_lossy();
    assert!(
        !procs.lines().any(|l| l.contains(dir.as_ref())),
        "processes of the lab left behind:\n{procs}"
    );
}

#[test]
fn a_deployment_spreads_two_pods_on_each_node_and_pods_on_every_node_resolve_cluster_dns() {
    let lab = common::lab::up(3, &[]);
    start_web_and_clients(&lab);
    lab.apply("svc", WEB_SERVICE);

    // maxSkew 1 over three nodes for six pods: two on each.
    let pods = web_pods(&lab);
    assert_eq!(pods.len(), 6, "{pods:?}");
    for n in lab.nodes() {
        let here = pods.iter().filter(|p| p.2 == n.name).count();
        assert_eq!(here, 2, "{} runs {here} of web's pods: {pods:?}", n.name);
    }

    // Pods on every node resolve Services through the cluster DNS.
    let cluster_ip = lab.kubectl_ok(&["get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}"]);
    for i in 0..lab.nodes().len() {
        let client = format!("client-{i}");
        let conf = lab.kubectl_ok(&["exec", &client, "--", "cat", "/etc/resolv.conf"]);
        assert!(conf.contains("nameserver 10.43.0.10"), "{conf}");
        let web = "web.default.svc.cluster.local";
        let out = lab.kubectl_ok(&["exec", &client, "--", "nslookup", web]);
        assert!(
            out.contains(&format!("Address: {cluster_ip}")),
            "{client}: {out}"
        );
        let out = lab.kubectl_ok(&[
            "exec",
            &client,
            "--",
            "nslookup",
            "kubernetes.default.svc.cluster.local",
        ]);
        assert!(out.contains("Address: 10.43.0.1"), "{client}: {out}");
    }
}

#[test]
fn nodes_have_distinct_pod_cidrs_and_pods_reach_pods_on_other_nodes_with_their_own_address() {
    let lab = common::lab::up(3, &[]);
    start_web_and_clients(&lab);

    // Each node has its own pod CIDR, and its pods' addresses are in it.
    let cidrs = rows(&lab, "nodes", "", "{.metadata.name} {.spec.podCIDR}");
    assert_eq!(cidrs.len(), 3, "{cidrs:?}");
    let mut distinct: Vec<&String> = cidrs.iter().filter_map(|c| c.get(1)).collect();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "pod CIDRs not distinct: {cidrs:?}");
    let pods = web_pods(&lab);
    for (pod, ip, node) in &pods {
        let row = cidrs.iter().find(|c| c.first() == Some(node));
        let cidr = row.and_then(|r| r.get(1)).expect("the pod's node's CIDR");
        // The nodes' /24s of the cluster CIDR: the first three octets match.
        let net = cidr.trim_end_matches(".0/24");
        assert!(
            ip.starts_with(&format!("{net}.")),
            "{pod} on {node} has {ip}, not in {cidr}"
        );
    }

    // Every client reaches each web pod on the other nodes by its pod IP,
    // and the server sees the client's own address (no masquerade inside
    // the cluster CIDR).
    for (i, n) in lab.nodes().iter().enumerate() {
        let client = format!("client-{i}");
        let client_ip = pod_ip(&lab, &client);
        for (pod, ip, node) in pods.iter().filter(|p| p.2 != n.name) {
            let out = get_ip_from_pod(&lab, &client, ip, 8080);
            assert!(
                out.status.success() && !out.stdout.is_empty(),
                "{client} on {} cannot reach {pod} on {node} at {ip}: {}",
                n.name,
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(
                seen_from(&out.stdout),
                client_ip,
                "what {pod} saw of {client}"
            );
        }
    }
}

#[test]
fn a_services_cluster_ip_and_node_port_answer_from_every_node() {
    let lab = common::lab::up(3, &[]);
    start_web_and_clients(&lab);
    lab.apply("svc", WEB_SERVICE);
    let cluster_ip = lab.kubectl_ok(&["get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}"]);
    let port_path = "jsonpath={.spec.ports[0].nodePort}";
    let node_port = lab.kubectl_ok(&["get", "svc", "web", "-o", port_path]);
    wait_until_blocking("web's six endpoints", Duration::from_secs(60), POLL, || {
        let path = "{.endpoints[*].addresses[0]}";
        let found = rows(
            &lab,
            "endpointslices",
            "kubernetes.io/service-name=web",
            path,
        );
        found.iter().map(Vec::len).sum::<usize>() == 6
    });

    // From every node's own namespace, and from a pod on every node, the
    // cluster IP answers each of several requests (spread over the pods on
    // all nodes); the pod's request arrives from the pod's own address.
    let url = format!("http://{cluster_ip}/cgi-bin/ip");
    for (i, n) in lab.nodes().iter().enumerate() {
        let client = format!("client-{i}");
        let client_ip = pod_ip(&lab, &client);
        for _ in 0..6 {
            let out = curl(&lab, Some(i), &url);
            assert!(out.status.success(), "{url} from {}: {out:?}", n.name);
            let out = get_ip_from_pod(&lab, &client, &cluster_ip, 80);
            assert!(
                out.status.success() && !out.stdout.is_empty(),
                "{url} from {client}: {out:?}"
            );
            assert_eq!(seen_from(&out.stdout), client_ip);
        }
    }

    // The node port answers on every node's address from the host (outside
    // the nodes), whichever node the chosen pod runs on.
    for n in lab.nodes() {
        let url = format!("http://{}:{node_port}/cgi-bin/ip", n.ip);
        for _ in 0..6 {
            let out = curl(&lab, None, &url);
            assert!(out.status.success(), "{url} from the host: {out:?}");
        }
    }
}

/// A web server pod (`app=one`) on `node`, ready once it answers.
fn web_pod_on(name: &str, node: &str) -> String {
    serde_json::json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "one"}},
        "spec": {"nodeSelector": {"kubernetes.io/hostname": node},
          "terminationGracePeriodSeconds": 1,
          "containers": [{"name": "web", "image": "busybox:1.35", "imagePullPolicy": "IfNotPresent",
            "command": ["sh", "-c", WEB_SCRIPT],
            "readinessProbe": {"httpGet": {"path": "/cgi-bin/ip", "port": 8080}, "periodSeconds": 1}}]}
    })
    .to_string()
}

/// A LoadBalancer Service in front of `app=one`.
fn load_balancer(name: &str, policy: &str, port: u16) -> String {
    serde_json::json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
        "spec": {"type": "LoadBalancer", "externalTrafficPolicy": policy,
          "selector": {"app": "one"}, "ports": [{"port": port, "targetPort": 8080}]}
    })
    .to_string()
}

fn ingress(lab: &Lab, svc: &str) -> String {
    let path = "jsonpath={.status.loadBalancer.ingress[*].ip}";
    lab.kubectl_ok(&["get", "svc", svc, "-o", path])
}

#[test]
fn servicelb_serves_a_load_balancer_on_every_node_and_a_local_one_where_its_pod_runs() {
    let lab = common::lab::up(3, &[]);
    let ips: Vec<String> = lab.nodes().iter().map(|n| n.ip.to_string()).collect();
    lab.apply("one", &web_pod_on("one", "node-1"));
    lab.apply("lb", &load_balancer("lb", "Cluster", 18091));
    lab.apply("lb-local", &load_balancer("lb-local", "Local", 18090));
    lab.kubectl_ok(&["wait", "--for=condition=Ready", "pod/one", "--timeout=120s"]);

    // Every node serves the Cluster one; only node-1, where the pod runs,
    // the Local one.
    wait_until_blocking(
        "the load balancers' addresses",
        Duration::from_secs(60),
        POLL,
        || ingress(&lab, "lb") == ips.join(" ") && ingress(&lab, "lb-local") == ips[1],
    );
    let out = lab.kubectl_ok(&["get", "svc", "lb", "--no-headers"]);
    assert!(out.contains(&ips.join(",")), "EXTERNAL-IP: {out}");

    // From the host, each node's address answers on the Cluster one's port.
    for ip in &ips {
        let out = curl(&lab, None, &format!("http://{ip}:18091/cgi-bin/ip"));
        assert!(out.status.success(), "{ip}:18091: {out:?}");
    }
    // The Local one answers on node-1 and keeps the client's address.
    let out = curl(&lab, None, &format!("http://{}:18090/cgi-bin/ip", ips[1]));
    assert!(out.status.success(), "{out:?}");
    assert_eq!(seen_from(&out.stdout), lab.server_ip().to_string());

    // Once a node is labelled enablelb, only labelled nodes serve: node-2
    // alone, which has no endpoint for the Local one.
    let label = "svccontroller.k3s.cattle.io/enablelb=true";
    lab.kubectl_ok(&["label", "node", "node-2", label]);
    wait_until_blocking(
        "node-2 alone to serve",
        Duration::from_secs(30),
        POLL,
        || ingress(&lab, "lb") == ips[2] && ingress(&lab, "lb-local").is_empty(),
    );
    let out = lab.kubectl_ok(&["get", "svc", "lb-local", "--no-headers"]);
    assert!(out.contains("<pending>"), "{out}");
    let out = curl(&lab, None, &format!("http://{}:18091/cgi-bin/ip", ips[2]));
    assert!(out.status.success(), "{out:?}");
    wait_until_blocking(
        "node-0 to stop serving",
        Duration::from_secs(30),
        POLL,
        || {
            !curl(&lab, None, &format!("http://{}:18091/cgi-bin/ip", ips[0]))
                .status
                .success()
        },
    );
}
