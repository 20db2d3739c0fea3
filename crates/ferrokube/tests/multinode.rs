//! A cluster of several machines, on this one (`ferrokube-lab`): a server in
//! the host's network namespace and three agents, each node in a namespace of
//! its own on a lab bridge, seen through the real kubectl: the nodes join
//! with their own addresses and become Ready, each runs pods, and the lab
//! leaves nothing behind.

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
