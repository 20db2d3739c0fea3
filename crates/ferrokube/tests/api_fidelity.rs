//! What clients see of the API compared with Kubernetes, through the official
//! Python client and kubectl: error bodies byte for byte, server-side apply
//! conflicts, Events in both their groups, Service type changes, what
//! deletes answer.

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
fn deletes_answer_a_status_or_the_object() {
    let c = common::Cluster::start();
    python_check(&c, "delete");
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

/// The `managedFields` entry (`manager/operation/subresource`) of `jsonpath`
/// output lines.
fn entries(c: &common::Cluster, args: &[&str]) -> Vec<String> {
    let mut all = args.to_vec();
    all.extend([
        "-o",
        r#"jsonpath={range .metadata.managedFields[*]}{.manager}/{.operation}/{.subresource}{"\n"}{end}"#,
    ]);
    c.kubectl_ok(&all).lines().map(str::to_string).collect()
}

/// Writes through `/status` have entries of their own, and writers without
/// `fieldManager` are named by their User-Agent: the controller manager's
/// status writes show as `kube-controller-manager`, as in Kubernetes.
#[test]
fn status_writes_and_controllers_in_managed_fields() {
    let c = common::Cluster::start();
    let crd = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n\
               metadata:\n  name: gadgets.example.com\nspec:\n  group: example.com\n  \
               scope: Namespaced\n  names:\n    plural: gadgets\n    singular: gadget\n    \
               kind: Gadget\n  versions:\n  - name: v1\n    served: true\n    storage: true\n    \
               subresources:\n      status: {}\n    schema:\n      openAPIV3Schema:\n        \
               type: object\n        x-kubernetes-preserve-unknown-fields: true\n";
    let file = c.data_dir().join("crd.yaml");
    std::fs::write(&file, crd).expect("write crd");
    c.kubectl_ok(&["create", "-f", file.to_str().unwrap()]);
    c.kubectl_ok(&[
        "wait",
        "--for=condition=Established",
        "crd/gadgets.example.com",
        "--timeout=60s",
    ]);
    let gadget =
        "apiVersion: example.com/v1\nkind: Gadget\nmetadata:\n  name: g\nspec:\n  size: 1\n";
    let file = c.data_dir().join("gadget.yaml");
    std::fs::write(&file, gadget).expect("write gadget");
    // The new kind may take a moment to be served to kubectl.
    let mut made = false;
    for _ in 0..30 {
        if c.kubectl(&["create", "-f", file.to_str().unwrap()])
            .status
            .success()
        {
            made = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    assert!(made, "the Gadget was never created");
    c.kubectl_ok(&[
        "patch",
        "gadget",
        "g",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"ready":true}}"#,
    ]);
    assert_eq!(
        entries(&c, &["get", "gadget", "g"]),
        ["kubectl-create/Update/", "kubectl-patch/Update/status"]
    );

    // The deployment controller's status writes.
    c.kubectl_ok(&["create", "deployment", "web", "--image=busybox"]);
    let mut seen = Vec::new();
    for _ in 0..60 {
        seen = entries(&c, &["get", "deployment", "web"]);
        if seen
            .iter()
            .any(|e| e == "kube-controller-manager/Update/status")
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    assert!(
        seen.iter()
            .any(|e| e == "kube-controller-manager/Update/status"),
        "{seen:?}"
    );
    assert!(
        seen.iter().any(|e| e == "kubectl-create/Update/"),
        "{seen:?}"
    );
    assert!(
        !seen
            .iter()
            .any(|e| e.starts_with('/') || e.starts_with("unknown")),
        "{seen:?}"
    );
}
