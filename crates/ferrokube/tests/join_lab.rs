//! Joining, on the lab (`ferrokube-lab`): from a node's own network
//! namespace the join token alone gets 403 for anything but joining (reads,
//! lists, creates), another machine claiming the node's name with its own
//! password is refused, and the node carries the addresses, labels and
//! taints its agent was started with.

mod common;

use std::time::Duration;

use ferrokube_lab::Lab;

/// kubectl in node `i`'s namespace with only the join token, trusting the
/// cluster CA.
fn kubectl_with_token(lab: &Lab, ca: &std::path::Path, args: &[&str]) -> std::process::Output {
    let server = format!("--server={}", lab.server_url());
    let ca = format!("--certificate-authority={}", ca.display());
    let token = format!("--token={}", lab.token());
    let empty = lab.dir().join("token-only.kubeconfig");
    std::fs::write(&empty, "apiVersion: v1\nkind: Config\n").expect("write a kubeconfig");
    let kubeconfig = format!("--kubeconfig={}", empty.display());
    let mut cmd = vec!["kubectl", kubeconfig.as_str(), "--request-timeout=20s"];
    cmd.extend([server.as_str(), ca.as_str(), token.as_str()]);
    cmd.extend_from_slice(args);
    lab.in_node(0, &cmd)
}

#[test]
fn on_the_lab_the_token_only_joins_and_a_node_name_cannot_be_taken() {
    let lab = common::lab::up(
        1,
        &[
            "--node-external-ip",
            "203.0.113.9",
            "--node-label",
            "tier=lab",
            "--node-taint",
            "lab=yes:PreferNoSchedule",
        ],
    );
    let node = lab.nodes()[0].name.clone();
    let got = lab.kubectl_ok(&[
        "get",
        "node",
        &node,
        "-o",
        r#"jsonpath={.metadata.labels.tier} {.spec.taints[0].key}={.spec.taints[0].value}:{.spec.taints[0].effect} {.status.addresses[?(@.type=="ExternalIP")].address}"#,
    ]);
    assert_eq!(got, "lab lab=yes:PreferNoSchedule 203.0.113.9");

    let ca = lab.dir().join("server/tls/ca.crt");
    assert!(ca.exists(), "{} missing", ca.display());
    for args in [
        &["get", "pods", "-A"][..],
        &["get", "node", &node],
        &[
            "get",
            "secret",
            "-n",
            "kube-system",
            &format!("{node}.node-password.ferrokube"),
        ],
        &["create", "configmap", "x", "--from-literal=a=b"],
        &["delete", "node", &node],
    ] {
        let out = kubectl_with_token(&lab, &ca, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} was allowed");
        assert!(
            err.contains(r#"is forbidden: User "system:bootstrap:join-token" cannot"#),
            "{args:?}: {err}"
        );
    }

    // Another machine (another data dir, so another password) in the
    // node's namespace claiming its name: refused before it starts.
    let other = lab.dir().join("impostor");
    let bin = env!("CARGO_BIN_EXE_ferrokube");
    let url = lab.server_url();
    let started = std::time::Instant::now();
    let out = lab.in_node(
        0,
        &[
            "timeout",
            "60",
            bin,
            "agent",
            "--server",
            &url,
            "--token",
            lab.token(),
            "--node-name",
            &node,
            "--data-dir",
            &other.to_string_lossy(),
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(err.contains("node password rejected"), "{err}");
    assert!(
        err.contains(&format!("{node}.node-password.ferrokube")),
        "{err}"
    );
    // The real node is untouched.
    let ready = lab.kubectl_ok(&[
        "get",
        "node",
        &node,
        "-o",
        r#"jsonpath={.status.conditions[?(@.type=="Ready")].status}"#,
    ]);
    assert_eq!(ready, "True");
}
