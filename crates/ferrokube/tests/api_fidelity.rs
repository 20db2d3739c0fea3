//! What clients see of the API compared with Kubernetes, through the official
//! Python client and kubectl: error bodies byte for byte, server-side apply
//! conflicts, Events in both their groups, Service type changes.

mod common;

use std::process::Command;

/// Runs one check of `tests/python/fidelity_check.py` against `c`.
fn python_check(c: &common::Cluster, check: &str) {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/fidelity_check.py"
    );
    let out = Command::new("python3")
        .arg(script)
        .arg(c.kubeconfig())
        .arg(check)
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python check {check} failed:\n{stdout}\n{}\n--- server log ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        common::tail(&c.log(), 30)
    );
    assert!(stdout.contains(&format!("{check}: ok")), "{stdout}");
}

#[test]
fn error_bodies_are_kubernetes_bytes() {
    let c = common::Cluster::start();
    python_check(&c, "status");
}

#[test]
fn python_apply_after_create_shares_fields() {
    let c = common::Cluster::start();
    python_check(&c, "apply");
}
