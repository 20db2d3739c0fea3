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

#[test]
fn events_are_one_resource_in_two_groups() {
    let c = common::Cluster::start();
    python_check(&c, "events");
    // kubectl reads an Event created through events.k8s.io in both groups.
    let ev = "apiVersion: events.k8s.io/v1\nkind: Event\nmetadata:\n  name: from-events\n\
              regarding:\n  kind: Pod\n  name: web\n  namespace: default\n\
              eventTime: \"2024-05-01T10:00:00.000000Z\"\nreason: Pulled\nnote: pulled the image\n\
              type: Normal\naction: Pull\nreportingController: kubelet\nreportingInstance: node-1\n";
    let file = c.data_dir().join("event.yaml");
    std::fs::write(&file, ev).expect("write event");
    c.kubectl_ok(&["create", "-f", file.to_str().unwrap()]);
    let core = c.kubectl_ok(&[
        "get",
        "events.v1.",
        "from-events",
        "-o",
        "jsonpath={.message}/{.involvedObject.name}/{.reportingComponent}",
    ]);
    assert_eq!(core, "pulled the image/web/kubelet");
    let table = c.kubectl_ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=web",
    ]);
    assert!(
        table.contains("Pulled") && table.contains("pod/web") && table.contains("pulled the image"),
        "{table}"
    );
    let view = c.kubectl_ok(&[
        "get",
        "events.v1.events.k8s.io",
        "from-events",
        "-o",
        "jsonpath={.note}/{.regarding.name}/{.reportingController}",
    ]);
    assert_eq!(view, "pulled the image/web/kubelet");
    c.kubectl_ok(&["delete", "events.v1.events.k8s.io", "from-events"]);
    let left = c.kubectl(&["get", "events.v1.", "from-events"]);
    assert!(
        !left.status.success(),
        "the Event is gone from the core group too"
    );
}

#[test]
fn service_type_changes_release_and_allocate() {
    let c = common::Cluster::start();
    python_check(&c, "services");
    // kubectl patch to ExternalName and back.
    c.kubectl_ok(&["create", "service", "clusterip", "flip", "--tcp=80:80"]);
    let ip = c.kubectl_ok(&["get", "svc", "flip", "-o", "jsonpath={.spec.clusterIP}"]);
    assert!(!ip.is_empty(), "a cluster IP at create");
    c.kubectl_ok(&[
        "patch",
        "svc",
        "flip",
        "-p",
        r#"{"spec":{"type":"ExternalName","externalName":"db.example.com"}}"#,
    ]);
    let ext = c.kubectl_ok(&[
        "get",
        "svc",
        "flip",
        "-o",
        "jsonpath={.spec.type}/{.spec.clusterIP}/{.spec.externalName}",
    ]);
    assert_eq!(ext, "ExternalName//db.example.com");
    c.kubectl_ok(&[
        "patch",
        "svc",
        "flip",
        "-p",
        r#"{"spec":{"type":"NodePort","externalName":null}}"#,
    ]);
    let back = c.kubectl_ok(&[
        "get",
        "svc",
        "flip",
        "-o",
        "jsonpath={.spec.clusterIP}/{.spec.ports[0].nodePort}",
    ]);
    let (new_ip, port) = back.split_once('/').expect("ip/port");
    assert!(new_ip.parse::<std::net::Ipv4Addr>().is_ok(), "{back}");
    assert!(
        port.parse::<u32>()
            .is_ok_and(|p| (30000..=32767).contains(&p)),
        "{back}"
    );
    c.kubectl_ok(&["delete", "svc", "flip"]);
}
