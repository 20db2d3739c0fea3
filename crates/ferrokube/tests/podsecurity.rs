//! Pod Security Admission as a user meets it with the real kubectl: a
//! `restricted` namespace refuses a privileged pod with the violations
//! listed, a Deployment there is created with kubectl printing the
//! warning, a `baseline` warn label warns without refusing, labels are
//! validated, and the `--admission-control-config-file` default and
//! exemption apply.

mod common;

use common::{Cluster, POLL};
use ferrokube_client::testing::wait::wait_until_blocking;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const ADMISSION_CONFIG: &str = r#"apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: PodSecurity
  configuration:
    apiVersion: pod-security.admission.config.k8s.io/v1
    kind: PodSecurityConfiguration
    defaults:
      enforce: "baseline"
      enforce-version: "latest"
    exemptions:
      usernames: []
      runtimeClasses: []
      namespaces: [trusted]
"#;

fn privileged_pod(name: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  containers:
  - name: c
    image: busybox
    securityContext:
      privileged: true
"#
    )
}

#[test]
#[expect(
    clippy::too_many_lines,
    reason = "one scenario: namespace labels changed step by step, each checked with what kubectl shows"
)]
fn pod_security_refuses_warns_and_follows_the_configuration() {
    let config_dir = tempfile::tempdir().expect("temp dir");
    let config = config_dir.path().join("admission.yaml");
    std::fs::write(&config, ADMISSION_CONFIG).expect("write the admission configuration");
    let c = Cluster::start_with(&[
        "--admission-control-config-file",
        config.to_str().expect("utf-8 path"),
    ]);
    let pod_file = c.data_dir().join("priv.yaml");
    std::fs::write(&pod_file, privileged_pod("priv")).expect("write the pod");
    let pod_path = pod_file.to_str().expect("utf-8 path");

    // A restricted namespace refuses the privileged pod, listing every
    // violation.
    c.kubectl_ok(&["create", "namespace", "r"]);
    c.kubectl_ok(&[
        "label",
        "namespace",
        "r",
        "pod-security.kubernetes.io/enforce=restricted",
    ]);
    let out = c.kubectl(&["create", "-n", "r", "-f", pod_path]);
    assert!(!out.status.success(), "the privileged pod was created");
    assert_eq!(
        stderr(&out),
        format!(
            "Error from server (Forbidden): error when creating \"{pod_path}\": pods \"priv\" is forbidden: violates PodSecurity \"restricted:latest\": privileged (container \"c\" must not set securityContext.privileged=true), allowPrivilegeEscalation != false (container \"c\" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container \"c\" must set securityContext.capabilities.drop=[\"ALL\"]), runAsNonRoot != true (pod or container \"c\" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container \"c\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")\n"
        )
    );

    // A Deployment there is created, with the warning printed.
    let out = c.kubectl(&["create", "deployment", "web", "-n", "r", "--image=busybox"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "deployment.apps/web created\n");
    assert_eq!(
        stderr(&out),
        "Warning: would violate PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false (container \"busybox\" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container \"busybox\" must set securityContext.capabilities.drop=[\"ALL\"]), runAsNonRoot != true (pod or container \"busybox\" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container \"busybox\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")\n"
    );

    // Its ReplicaSet's pods are refused, as the controller's event says.
    let mut events = String::new();
    wait_until_blocking(
        "the ReplicaSet's FailedCreate event",
        std::time::Duration::from_secs(30),
        POLL,
        || {
            events = stdout(&c.kubectl(&[
                "get",
                "events",
                "-n",
                "r",
                "--field-selector",
                "reason=FailedCreate",
                "-o",
                "jsonpath={.items[*].message}",
            ]));
            !events.is_empty()
        },
    );
    assert!(
        events.starts_with("Error creating: pods \"web-")
            && events.contains("\" is forbidden: violates PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false (container \"busybox\" must set securityContext.allowPrivilegeEscalation=false)"),
        "{events}"
    );

    // A baseline warn label warns without refusing (enforce relaxed below
    // the cluster's default by its own label).
    c.kubectl_ok(&["create", "namespace", "w"]);
    c.kubectl_ok(&[
        "label",
        "namespace",
        "w",
        "pod-security.kubernetes.io/enforce=privileged",
        "pod-security.kubernetes.io/warn=baseline",
    ]);
    let out = c.kubectl(&["create", "-n", "w", "-f", pod_path]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "pod/priv created\n");
    assert_eq!(
        stderr(&out),
        "Warning: would violate PodSecurity \"baseline:latest\": privileged (container \"c\" must not set securityContext.privileged=true)\n"
    );

    // An invalid level is refused; enforcing over a violating pod warns.
    let out = c.kubectl(&[
        "label",
        "namespace",
        "w",
        "--overwrite",
        "pod-security.kubernetes.io/enforce=strict",
    ]);
    assert!(!out.status.success());
    assert_eq!(
        stderr(&out),
        "The Namespace \"w\" is invalid: metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: \"strict\": must be one of privileged, baseline, restricted\n"
    );
    let out = c.kubectl(&[
        "label",
        "namespace",
        "w",
        "--overwrite",
        "pod-security.kubernetes.io/enforce=baseline",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        "Warning: existing pods in namespace \"w\" violate the new PodSecurity enforce level \"baseline:latest\"\nWarning: priv: privileged\n"
    );

    // The configuration's default enforces baseline on unlabelled
    // namespaces; its exempt namespace is not checked.
    c.kubectl_ok(&["create", "namespace", "plain"]);
    let out = c.kubectl(&["create", "-n", "plain", "-f", pod_path]);
    assert!(!out.status.success());
    assert_eq!(
        stderr(&out),
        format!(
            "Error from server (Forbidden): error when creating \"{pod_path}\": pods \"priv\" is forbidden: violates PodSecurity \"baseline:latest\": privileged (container \"c\" must not set securityContext.privileged=true)\n"
        )
    );
    c.kubectl_ok(&["create", "namespace", "trusted"]);
    let out = c.kubectl(&["create", "-n", "trusted", "-f", pod_path]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
}

#[test]
fn a_bad_admission_configuration_stops_the_server() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("admission.yaml");
    std::fs::write(
        &config,
        ADMISSION_CONFIG.replace("enforce: \"baseline\"", "enforce: \"strict\""),
    )
    .expect("write");
    let data = dir.path().join("data");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferrokube"))
        .args(["server", "--disable-agent", "--disable", "coredns"])
        .args(["--bind-address", "127.0.0.1", "--https-listen-port", "0"])
        .arg("--data-dir")
        .arg(&data)
        .arg("--admission-control-config-file")
        .arg(&config)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run ferrokube");
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("defaults.enforce: Invalid value: \"strict\": must be one of privileged, baseline, restricted"),
        "{err}"
    );
}
