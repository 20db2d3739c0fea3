//! `kubectl debug` end to end on a one-node cluster: the real kubectl adds an
//! ephemeral container through `pods/ephemeralcontainers`, the node starts it
//! in the pod sharing its target's processes, kubectl waits for it in
//! `ephemeralContainerStatuses` and attaches with a terminal; and the API
//! refuses what Kubernetes refuses, with its message.

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Cluster, POLL};
use ferrokube_client::testing::wait::wait_until_blocking;

const NODE: &str = "fk-debug-e2e";

/// Runs `cmdline` under script(1), so kubectl's stdin is a terminal; returns
/// what the terminal showed (kubectl's stdout and stderr), bounded in time.
fn on_a_terminal(cmdline: &str, within: Duration) -> String {
    let mut child = Command::new("script")
        .args(["-qec", cmdline, "/dev/null"])
        .env_remove("KUBECONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script");
    let mut out = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    let deadline = Instant::now() + within;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(child.stdin.take());
    reader.join().unwrap_or_default()
}

#[test]
fn kubectl_debug_attaches_an_ephemeral_container_beside_its_target() {
    let c = Cluster::start_ready_node(NODE, common::NODE_ALONE);
    c.kubectl_ok(&[
        "run",
        "target",
        "--image=busybox:1.35",
        "--restart=Never",
        "--",
        "sleep",
        "3601",
    ]);
    c.kubectl_ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/target",
        "--timeout=90s",
    ]);

    // The debugger sees the target's `sleep 3601` (one process namespace).
    let cmdline = format!(
        "kubectl --kubeconfig {} debug -it target --image=busybox:1.35 --target=target \
         --container=dbg -- sh -c 'sleep 2; ps -o args; echo debug-done'",
        c.kubeconfig().display()
    );
    let shown = on_a_terminal(&cmdline, Duration::from_secs(120));
    assert!(shown.contains("debug-done"), "{shown}");
    assert!(
        shown.contains("sleep 3601"),
        "target's process not visible: {shown}"
    );
    assert!(shown.contains("Targeting container \"target\""), "{shown}");

    // Its status, as kubectl shows it.
    wait_until_blocking(
        "dbg to have terminated",
        Duration::from_secs(60),
        POLL,
        || {
            let out = c.kubectl(&[
                "get",
                "pod",
                "target",
                "-o",
                "jsonpath={.status.ephemeralContainerStatuses[0].name} {.status.ephemeralContainerStatuses[0].state.terminated.reason}",
            ]);
            String::from_utf8_lossy(&out.stdout).trim() == "dbg Completed"
        },
    );
    let spec = c.kubectl_ok(&[
        "get",
        "pod",
        "target",
        "-o",
        "jsonpath={.spec.ephemeralContainers[0].targetContainerName} {.spec.ephemeralContainers[0].tty} {.spec.ephemeralContainers[0].stdin}",
    ]);
    assert_eq!(spec.trim(), "target true true");
    // The target kept running.
    let phase = c.kubectl_ok(&["get", "pod", "target", "-o", "jsonpath={.status.phase}"]);
    assert_eq!(phase.trim(), "Running");

    // A target that does not exist is refused by the API, as Kubernetes words it.
    let out = c.kubectl(&[
        "debug",
        "target",
        "--image=busybox:1.35",
        "--target=nope",
        "--container=dbg2",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("spec.ephemeralContainers[1].targetContainerName: Not found: \"nope\""),
        "{err}"
    );
}
