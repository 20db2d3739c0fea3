//! The official Kubernetes Python client (`pip install kubernetes`), unchanged,
//! against a ferrokube server: create, list with a selector, watch, patch,
//! delete, conflicts; and custom objects through its `CustomObjectsApi`
//! (which speaks JSON): CRUD, patches, `/status`, `/scale`, schema errors
//! and watches.

mod common;

use std::process::Command;

/// Runs `tests/python/<script>` against a new server; it must succeed and
/// print `done`.
fn run_python(script: &str, done: &str) {
    let c = common::Cluster::start();
    let script = format!("{}/tests/python/{script}", env!("CARGO_MANIFEST_DIR"));
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
    assert!(stdout.contains(done), "{stdout}");
}

#[test]
fn official_python_client() {
    run_python("client_check.py", "python client: ok");
}

#[test]
fn official_python_client_with_custom_objects() {
    run_python("custom_objects_check.py", "python custom objects: ok");
}
