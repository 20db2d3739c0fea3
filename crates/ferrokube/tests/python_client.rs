//! The official Kubernetes Python client (`pip install kubernetes`), unchanged,
//! against a ferrokube server: create, list with a selector, watch, patch,
//! delete, conflicts.

mod common;

use std::process::Command;

#[test]
fn official_python_client() {
    let c = common::Cluster::start();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/client_check.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(c.kubeconfig())
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python client failed:\n{stdout}\n{}\n--- server log ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        common::tail(&c.log(), 30)
    );
    assert!(stdout.contains("python client: ok"), "{stdout}");
}
