//! A cluster of several machines, on this one (`ferrokube-lab`): a server in
//! the host's network namespace and three agents, each node in a namespace of
//! its own on a lab bridge, seen through the real kubectl: the nodes join
//! with their own addresses and become Ready, each runs pods, and the lab
//! leaves nothing behind; a Deployment spreads over the nodes by its
//! topology spread constraint, and pods on every node resolve Services
//! through the cluster DNS.

use std::path::Path;
use std::time::Duration;

use ferrokube_client::testing::wait::wait_until_blocking;
use ferrokube_lab::{Lab, LabOptions};

const POLL: Duration = Duration::from_millis(500);

fn lab(nodes: usize) -> Lab {
    let opts = LabOptions {
        nodes,
        ferrokube: env!("CARGO_BIN_EXE_ferrokube").into(),
        ..Default::default()
    };
    match Lab::up(opts) {
        Ok(lab) => lab,
        Err(e) => panic!("bringing the lab up: {e:#}"),
    }
}

/// A busybox pod that sleeps, placed on `node` by its hostname label.
fn pod_on(name: &str, node: &str) -> String {
    format!(
        r#"{{"apiVersion": "v1", "kind": "Pod", "metadata": {{"name": "{name}"}},
  "spec": {{"nodeSelector": {{"kubernetes.io/hostname": "{node}"}},
    "terminationGracePeriodSeconds": 1,
    "containers": [{{"name": "c", "image": "busybox:1.35", "imagePullPolicy": "IfNotPresent",
      "command": ["sleep", "3600"]}}]}}}}"#
    )
}

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
fn start_web_and_clients(lab: &Lab, dir: &Path) {
    apply(lab, dir, "web", &web_deployment(6));
    for (i, n) in lab.nodes().iter().enumerate() {
        let name = format!("client-{i}");
        apply(lab, dir, &name, &pod_on(&name, &n.name));
    }
    lab.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=180s"]);
    for i in 0..lab.nodes().len() {
        let pod = format!("pod/client-{i}");
        lab.kubectl_ok(&["wait", "--for=condition=Ready", &pod, "--timeout=120s"]);
    }
}

fn apply(lab: &Lab, dir: &Path, name: &str, manifest: &str) {
    let file = dir.join(format!("{name}.json"));
    std::fs::write(&file, manifest).expect("write manifest");
    lab.kubectl_ok(&["apply", "-f", &file.to_string_lossy()]);
}

#[test]
fn three_nodes_join_become_ready_run_a_pod_each_and_leave_nothing_behind() {
    let lab = lab(3);
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
    let dir = tempfile::tempdir().expect("dir");
    for (i, n) in names.iter().enumerate() {
        apply(
            &lab,
            dir.path(),
            &format!("p{i}"),
            &pod_on(&format!("p{i}"), n),
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
    let lab = lab(3);
    let dir = tempfile::tempdir().expect("dir");
    start_web_and_clients(&lab, dir.path());
    apply(&lab, dir.path(), "svc", WEB_SERVICE);

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
