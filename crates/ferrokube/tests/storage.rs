//! Volumes that persist, end to end on a whole one-node cluster with the
//! real kubectl: the default StorageClass `local-path` (WaitForFirstConsumer)
//! gives a claim a volume on the node of the pod that first uses it; what
//! a pod writes there is read by the next pod of the claim; deleting the
//! claim deletes the volume and its directory (Delete) or leaves it
//! Released (Retain); a static volume binds to the claim that fits it; and
//! `kubectl get sc,pv,pvc` print as against Kubernetes.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{Cluster, POLL};
use ferrokube_client::testing::wait::wait_until_blocking;

const NODE: &str = "fk-storage-e2e";

fn apply(c: &Cluster, name: &str, yaml: &str) {
    let path = c.data_dir().join(name);
    std::fs::write(&path, yaml).expect("manifest");
    c.kubectl_ok(&["apply", "-f", &path.to_string_lossy()]);
}

fn json(c: &Cluster, args: &[&str]) -> serde_json::Value {
    let mut a = args.to_vec();
    a.extend_from_slice(&["-o", "json"]);
    serde_json::from_str(&c.kubectl_ok(&a)).expect("json")
}

fn jsonpath(c: &Cluster, what: &[&str], path: &str) -> String {
    let mut a = what.to_vec();
    let arg = format!("jsonpath={path}");
    a.extend_from_slice(&["-o", &arg]);
    let out = c.kubectl(&a);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The header words and the row of `name` of `kubectl get` output.
fn row(out: &str, name: &str) -> Vec<String> {
    out.lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .find(|w| w.first().map(String::as_str) == Some(name))
        .unwrap_or_else(|| panic!("no row {name} in:\n{out}"))
}

fn pod(name: &str, claim: &str, script: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    imagePullPolicy: Never
    command: ["sh", "-c", "{script}"]
    volumeMounts:
    - {{name: data, mountPath: /data}}
  volumes:
  - name: data
    persistentVolumeClaim: {{claimName: {claim}}}
"#
    )
}

fn claim(name: &str, size: &str, class: Option<&str>) -> String {
    let class = class
        .map(|c| format!("  storageClassName: \"{c}\"\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {{name: {name}}}\nspec:\n  accessModes: [ReadWriteOnce]\n{class}  resources: {{requests: {{storage: {size}}}}}\n"
    )
}

fn phase(c: &Cluster, kind: &str, name: &str) -> String {
    jsonpath(c, &["get", kind, name], "{.status.phase}")
}

fn events_of(c: &Cluster, name: &str) -> String {
    c.kubectl_ok(&[
        "get",
        "events",
        "--field-selector",
        &format!("involvedObject.name={name}"),
        "-o",
        "custom-columns=REASON:.reason,MESSAGE:.message",
    ])
}

#[test]
#[expect(
    clippy::too_many_lines,
    reason = "one scenario: volumes followed through the pods that use them on one node"
)]
fn claims_of_the_default_class_persist_across_pods_and_go_with_their_claim() {
    let c = Cluster::start_ready_node(NODE, common::NODE_ALONE);
    let minute = Duration::from_secs(60);

    // The default class, as k3s ships it.
    let sc = c.kubectl_ok(&["get", "sc"]);
    assert_eq!(
        row(&sc, "NAME"),
        [
            "NAME",
            "PROVISIONER",
            "RECLAIMPOLICY",
            "VOLUMEBINDINGMODE",
            "ALLOWVOLUMEEXPANSION",
            "AGE"
        ]
    );
    assert_eq!(
        row(&sc, "local-path")[..6],
        [
            "local-path",
            "(default)",
            "ferrokube.io/local-path",
            "Delete",
            "WaitForFirstConsumer",
            "false"
        ]
    );

    // A claim naming no class gets the default one and waits for a pod.
    apply(&c, "data.yaml", &claim("data", "64Mi", None));
    assert_eq!(
        jsonpath(&c, &["get", "pvc", "data"], "{.spec.storageClassName}"),
        "local-path"
    );
    wait_until_blocking("WaitForFirstConsumer", minute, POLL, || {
        events_of(&c, "data").contains("waiting for first consumer to be created before binding")
    });
    assert_eq!(phase(&c, "pvc", "data"), "Pending");

    // The first consumer: the claim is bound to a volume on its node.
    apply(
        &c,
        "writer.yaml",
        &pod("writer", "data", "echo kept > /data/file; exec sleep 3600"),
    );
    c.kubectl_ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/writer",
        "--timeout=90s",
    ]);
    assert_eq!(phase(&c, "pvc", "data"), "Bound");
    let claim_json = json(&c, &["get", "pvc", "data"]);
    let annotations = &claim_json["metadata"]["annotations"];
    assert_eq!(annotations["volume.kubernetes.io/selected-node"], NODE);
    assert_eq!(annotations["pv.kubernetes.io/bind-completed"], "yes");
    assert_eq!(
        annotations["volume.kubernetes.io/storage-provisioner"],
        "ferrokube.io/local-path"
    );
    let pv = claim_json["spec"]["volumeName"]
        .as_str()
        .expect("volumeName")
        .to_string();
    let pv_json = json(&c, &["get", "pv", &pv]);
    let dir = PathBuf::from(
        pv_json["spec"]["hostPath"]["path"]
            .as_str()
            .expect("hostPath"),
    );
    assert!(
        dir.starts_with(c.data_dir().join("storage")),
        "{}",
        dir.display()
    );
    assert_eq!(
        pv_json["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]
            ["values"][0],
        NODE
    );
    wait_until_blocking("the pod's file on the node", minute, POLL, || {
        dir.join("file").exists()
    });
    assert_eq!(std::fs::read_to_string(dir.join("file")).unwrap(), "kept\n");
    let events = events_of(&c, "data");
    assert!(events.contains("ProvisioningSucceeded"), "{events}");

    // kubectl get pv,pvc as against Kubernetes.
    let pvs = c.kubectl_ok(&["get", "pv"]);
    assert_eq!(
        row(&pvs, "NAME"),
        [
            "NAME",
            "CAPACITY",
            "ACCESS",
            "MODES",
            "RECLAIM",
            "POLICY",
            "STATUS",
            "CLAIM",
            "STORAGECLASS",
            "VOLUMEATTRIBUTESCLASS",
            "REASON",
            "AGE"
        ]
    );
    assert_eq!(
        row(&pvs, &pv)[..8],
        [
            pv.as_str(),
            "64Mi",
            "RWO",
            "Delete",
            "Bound",
            "default/data",
            "local-path",
            "<unset>"
        ]
    );
    let pvcs = c.kubectl_ok(&["get", "pvc"]);
    assert_eq!(
        row(&pvcs, "data")[..7],
        [
            "data",
            "Bound",
            pv.as_str(),
            "64Mi",
            "RWO",
            "local-path",
            "<unset>"
        ]
    );

    // The next pod of the claim reads what the first wrote.
    c.kubectl_ok(&["delete", "pod", "writer", "--wait=true"]);
    apply(
        &c,
        "reader.yaml",
        &pod("reader", "data", "cat /data/file; exec sleep 3600"),
    );
    c.kubectl_ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/reader",
        "--timeout=90s",
    ]);
    wait_until_blocking("the reader's log", minute, POLL, || {
        c.kubectl_ok(&["logs", "reader"]).contains("kept")
    });

    // Deleting the claim (once its pod is gone) deletes the volume and its
    // directory.
    c.kubectl_ok(&["delete", "pod", "reader", "--wait=true"]);
    c.kubectl_ok(&["delete", "pvc", "data", "--wait=true"]);
    wait_until_blocking("the volume deleted", minute, POLL, || {
        !c.kubectl(&["get", "pv", &pv]).status.success()
    });
    assert!(!dir.exists(), "{} is still there", dir.display());

    // A class that retains: the volume outlives its claim, Released.
    apply(
        &c,
        "keep.yaml",
        "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: keep}\nprovisioner: ferrokube.io/local-path\nreclaimPolicy: Retain\nvolumeBindingMode: WaitForFirstConsumer\n",
    );
    apply(&c, "kept.yaml", &claim("kept", "16Mi", Some("keep")));
    apply(
        &c,
        "keeper.yaml",
        &pod("keeper", "kept", "echo x > /data/x; exec sleep 3600"),
    );
    c.kubectl_ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/keeper",
        "--timeout=90s",
    ]);
    let kept_pv = jsonpath(&c, &["get", "pvc", "kept"], "{.spec.volumeName}");
    let kept_dir = PathBuf::from(jsonpath(
        &c,
        &["get", "pv", &kept_pv],
        "{.spec.hostPath.path}",
    ));
    c.kubectl_ok(&["delete", "pod", "keeper", "--wait=true"]);
    c.kubectl_ok(&["delete", "pvc", "kept", "--wait=true"]);
    wait_until_blocking("the kept volume Released", minute, POLL, || {
        phase(&c, "pv", &kept_pv) == "Released"
    });
    assert!(kept_dir.join("x").exists());
    let pvs = c.kubectl_ok(&["get", "pv", &kept_pv]);
    assert_eq!(
        row(&pvs, &kept_pv)[3..6],
        ["Retain", "Released", "default/kept"]
    );
    c.kubectl_ok(&["delete", "pv", &kept_pv]);
    c.kubectl_ok(&["delete", "sc", "keep"]);
    let _ = std::fs::remove_dir_all(&kept_dir);

    // A static volume binds to the claim that fits it.
    let static_dir = c.data_dir().join("static-pv");
    std::fs::create_dir_all(&static_dir).unwrap();
    std::fs::write(static_dir.join("hello"), "from the admin\n").unwrap();
    apply(
        &c,
        "static.yaml",
        &format!(
            "apiVersion: v1\nkind: PersistentVolume\nmetadata: {{name: manual, labels: {{kind: manual}}}}\nspec:\n  capacity: {{storage: 1Gi}}\n  accessModes: [ReadWriteOnce, ReadOnlyMany]\n  persistentVolumeReclaimPolicy: Retain\n  hostPath: {{path: {}}}\n",
            static_dir.display()
        ),
    );
    wait_until_blocking("manual Available", minute, POLL, || {
        phase(&c, "pv", "manual") == "Available"
    });
    apply(
        &c,
        "want.yaml",
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: want}\nspec:\n  accessModes: [ReadOnlyMany]\n  storageClassName: \"\"\n  selector: {matchLabels: {kind: manual}}\n  resources: {requests: {storage: 100Mi}}\n",
    );
    wait_until_blocking("want Bound", minute, POLL, || {
        phase(&c, "pvc", "want") == "Bound"
    });
    let pvcs = c.kubectl_ok(&["get", "pvc", "want"]);
    assert_eq!(
        row(&pvcs, "want")[..5],
        ["want", "Bound", "manual", "1Gi", "RWO,ROX"]
    );
    apply(
        &c,
        "looker.yaml",
        &pod("looker", "want", "cat /data/hello; exec sleep 3600"),
    );
    c.kubectl_ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/looker",
        "--timeout=90s",
    ]);
    wait_until_blocking("the static volume read", minute, POLL, || {
        c.kubectl_ok(&["logs", "looker"]).contains("from the admin")
    });
    c.kubectl_ok(&["delete", "pod", "looker", "--wait=true"]);

    // A pod whose claim does not exist is unschedulable, as Kubernetes says.
    apply(&c, "orphan.yaml", &pod("orphan", "nothing", "sleep 1"));
    wait_until_blocking("FailedScheduling", minute, POLL, || {
        events_of(&c, "orphan").contains("persistentvolumeclaim \"nothing\" not found")
    });
    c.kubectl_ok(&["delete", "pod", "orphan", "--wait=true"]);
}

/// The storage.k8s.io kinds through kubectl, as the conformance tests walk
/// them (create, get, patch, update, /status, list and delete by label),
/// with Kubernetes' columns, defaults and refusals; and a server started
/// with `--disable local-storage` has no local-path class.
#[test]
#[expect(
    clippy::too_many_lines,
    reason = "one scenario: the storage kinds' columns, defaults and refusals checked in turn on one server"
)]
fn storage_kinds_through_kubectl() {
    let c = Cluster::start();
    assert!(c
        .kubectl_ok(&["get", "sc"])
        .contains("local-path (default)"));

    // StorageClass: generateName, strategic patch, update, the fields
    // fixed at creation, deletecollection by label.
    let made = c.kubectl_ok(&[
        "create",
        "-o",
        "name",
        "-f",
        &{
            let p = c.data_dir().join("sc.yaml");
            std::fs::write(&p, "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {generateName: e2e-}\nprovisioner: e2e-fake-provisioner\n").unwrap();
            p.to_string_lossy().into_owned()
        },
    ]);
    let sc = made
        .trim()
        .trim_start_matches("storageclass.storage.k8s.io/")
        .to_string();
    assert!(sc.starts_with("e2e-"), "{made}");
    c.kubectl_ok(&[
        "patch",
        "sc",
        &sc,
        "-p",
        &format!("{{\"metadata\":{{\"labels\":{{\"{sc}\":\"patched\"}}}}}}"),
    ]);
    assert_eq!(
        jsonpath(
            &c,
            &["get", "sc", &sc],
            &format!("{{.metadata.labels.{sc}}}")
        ),
        "patched"
    );
    let row_sc = row(&c.kubectl_ok(&["get", "sc", &sc]), &sc);
    assert_eq!(
        row_sc[1..5],
        ["e2e-fake-provisioner", "Delete", "Immediate", "false"]
    );
    let out = c.kubectl(&[
        "patch",
        "sc",
        &sc,
        "-p",
        "{\"parameters\":{\"type\":\"ssd\"},\"provisioner\":\"other\"}",
    ]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        err.contains("parameters: Forbidden: updates to parameters are forbidden.")
            && err.contains("provisioner: Forbidden: updates to provisioner are forbidden."),
        "{err}"
    );
    c.kubectl_ok(&["label", "sc", &sc, "lifecycle=updated"]);
    c.kubectl_ok(&["delete", "sc", "-l", "lifecycle=updated"]);
    assert!(!c.kubectl(&["get", "sc", &sc]).status.success());

    // CSIDriver defaults and columns; CSINode; CSIStorageCapacity.
    apply(
        &c,
        "csi.yaml",
        "apiVersion: storage.k8s.io/v1\nkind: CSIDriver\nmetadata: {name: x.csi.example.com}\nspec:\n  tokenRequests: [{audience: vault}]\n---\napiVersion: storage.k8s.io/v1\nkind: CSINode\nmetadata: {name: node-1}\nspec:\n  drivers: [{name: x.csi.example.com, nodeID: node-1}]\n---\napiVersion: storage.k8s.io/v1\nkind: CSIStorageCapacity\nmetadata: {name: cap-1}\nstorageClassName: local-path\ncapacity: 10Gi\n",
    );
    let drivers = c.kubectl_ok(&["get", "csidriver"]);
    assert_eq!(
        row(&drivers, "NAME"),
        [
            "NAME",
            "ATTACHREQUIRED",
            "PODINFOONMOUNT",
            "STORAGECAPACITY",
            "TOKENREQUESTS",
            "REQUIRESREPUBLISH",
            "MODES",
            "AGE"
        ]
    );
    assert_eq!(
        row(&drivers, "x.csi.example.com")[1..7],
        ["true", "false", "false", "vault", "false", "Persistent"]
    );
    assert_eq!(row(&c.kubectl_ok(&["get", "csinode"]), "node-1")[1], "1");
    assert_eq!(
        row(&c.kubectl_ok(&["get", "csistoragecapacity"]), "cap-1")[1..3],
        ["local-path", "10Gi"]
    );
    let out = c.kubectl(&[
        "patch",
        "csidriver",
        "x.csi.example.com",
        "-p",
        "{\"spec\":{\"attachRequired\":false}}",
    ]);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("spec.attachedRequired: Invalid value: false: field is immutable"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // VolumeAttachment: its status through /status, its spec fixed.
    apply(
        &c,
        "va.yaml",
        "apiVersion: storage.k8s.io/v1\nkind: VolumeAttachment\nmetadata: {name: va-1, labels: {e2e: va}}\nspec:\n  attacher: x.csi.example.com\n  nodeName: node-1\n  source: {persistentVolumeName: pv-1}\n",
    );
    assert_eq!(
        row(&c.kubectl_ok(&["get", "volumeattachment"]), "va-1")[1..5],
        ["x.csi.example.com", "pv-1", "node-1", "false"]
    );
    c.kubectl_ok(&[
        "patch",
        "volumeattachment",
        "va-1",
        "--subresource=status",
        "--type=merge",
        "-p",
        "{\"status\":{\"attached\":true}}",
    ]);
    assert_eq!(
        row(&c.kubectl_ok(&["get", "volumeattachment"]), "va-1")[4],
        "true"
    );
    let out = c.kubectl(&[
        "patch",
        "volumeattachment",
        "va-1",
        "--type=merge",
        "-p",
        "{\"spec\":{\"nodeName\":\"node-2\"}}",
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("field is immutable"));
    c.kubectl_ok(&["delete", "volumeattachment", "-l", "e2e=va"]);

    // PV and PVC status through /status, as their lifecycle tests do.
    apply(
        &c,
        "pv.yaml",
        "apiVersion: v1\nkind: PersistentVolume\nmetadata: {name: pv-status, labels: {e2e: pv}}\nspec:\n  capacity: {storage: 1Gi}\n  accessModes: [ReadWriteOnce]\n  storageClassName: none\n  hostPath: {path: /tmp/pv-status}\n",
    );
    wait_until_blocking("pv-status Available", Duration::from_secs(30), POLL, || {
        phase(&c, "pv", "pv-status") == "Available"
    });
    c.kubectl_ok(&[
        "patch",
        "pv",
        "pv-status",
        "--subresource=status",
        "--type=merge",
        "-p",
        "{\"status\":{\"message\":\"fake\"}}",
    ]);
    assert_eq!(
        jsonpath(&c, &["get", "pv", "pv-status"], "{.status.message}"),
        "fake"
    );
    c.kubectl_ok(&["delete", "pv", "-l", "e2e=pv"]);

    // Without the built-in storage, no default class.
    drop(c);
    let off = Cluster::start_with(&["--disable", "local-storage"]);
    assert!(!off.kubectl_ok(&["get", "sc"]).contains("local-path"));
}
