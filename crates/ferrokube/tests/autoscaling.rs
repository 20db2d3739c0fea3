//! The HorizontalPodAutoscaler end to end on a one-node cluster whose
//! server collects resource metrics every 5 s and syncs HPAs every 5 s,
//! with a 30 s scale-down stabilization: `kubectl autoscale` makes an HPA
//! whose TARGETS shows a percentage; pods that burn CPU while a ConfigMap
//! (mounted, read by the pods) says `on` take a Deployment from 1 to 4
//! replicas, never above the maximum, and back to 1 once the load stops
//! and the window passes; a Deployment without CPU requests is not scaled
//! and says why (ScalingActive=False, "missing request for cpu").

mod common;

use std::time::{Duration, Instant};

use common::Cluster;

const NODE: &str = "fk-hpa-e2e";

/// `burn` (100m requested, 200m limit) spins while /load/state says `on`;
/// `idle` requests nothing.
const MANIFEST: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: load}
data: {state: "off"}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: burn}
spec:
  replicas: 1
  selector: {matchLabels: {app: burn}}
  template:
    metadata: {labels: {app: burn}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: burn
        image: busybox:1.35
        command:
        - sh
        - -c
        - |
          while :; do
            if [ "$(cat /load/state)" = on ]; then
              i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done
            else
              sleep 1
            fi
          done
        resources: {requests: {cpu: 100m}, limits: {cpu: 200m}}
        volumeMounts: [{name: load, mountPath: /load}]
      volumes:
      - name: load
        configMap: {name: load}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: idle}
spec:
  replicas: 1
  selector: {matchLabels: {app: idle}}
  template:
    metadata: {labels: {app: idle}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - {name: idle, image: "busybox:1.35", command: ["sleep", "3600"]}
"#;

/// kubectl's stdout, or "" if it failed.
fn out(c: &Cluster, args: &[&str]) -> String {
    let o = c.kubectl(args);
    if o.status.success() {
        String::from_utf8_lossy(&o.stdout).into_owned()
    } else {
        String::new()
    }
}

/// Whether a TARGETS cell reads `cpu: N%/50%`.
fn shows_percentage(row: &str) -> bool {
    row.split("cpu: ").nth(1).is_some_and(|rest| {
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        !digits.is_empty() && rest[digits.len()..].starts_with("%/50%")
    })
}

fn replicas(c: &Cluster, deployment: &str) -> Option<i32> {
    out(
        c,
        &[
            "get",
            "deployment",
            deployment,
            "-o",
            "jsonpath={.spec.replicas}",
        ],
    )
    .trim()
    .parse()
    .ok()
}

/// Waits (bounded by `within`) until `burn` has `want` replicas, checking
/// every second that it never goes above 4; the most seen.
fn wait_replicas(c: &Cluster, want: i32, within: Duration, what: &str) -> i32 {
    let deadline = Instant::now() + within;
    let mut most = 0;
    loop {
        let n = replicas(c, "burn").unwrap_or(0);
        most = most.max(n);
        assert!(n <= 4, "burn went above its maximum: {n} replicas");
        if n == want {
            return most;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: burn still at {n} replicas\n{}\n{}\n--- server log ---\n{}",
            out(c, &["get", "hpa", "burn", "-o", "yaml"]),
            out(
                c,
                &[
                    "get",
                    "events",
                    "--field-selector",
                    "involvedObject.kind=HorizontalPodAutoscaler"
                ]
            ),
            common::tail(&c.log(), 30)
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[test]
#[expect(
    clippy::too_many_lines,
    reason = "one scenario on one cluster, step by step"
)]
fn cpu_load_scales_a_deployment_up_to_its_maximum_and_back() {
    let mut args = common::NODE_ALONE.to_vec();
    args.extend([
        "--metric-resolution",
        "5s",
        "--horizontal-pod-autoscaler-sync-period",
        "5s",
        "--horizontal-pod-autoscaler-downscale-stabilization",
        "30s",
    ]);
    let c = Cluster::start_ready_node(NODE, &args);
    let manifest = c.data_dir().join("hpa.yaml");
    std::fs::write(&manifest, MANIFEST).expect("write the manifest");
    c.kubectl_ok(&["apply", "-f", &manifest.to_string_lossy()]);
    c.kubectl_ok(&[
        "autoscale",
        "deployment",
        "idle",
        "--cpu-percent=50",
        "--min=1",
        "--max=3",
    ]);
    c.kubectl_ok(&[
        "wait",
        "--for=condition=Available",
        "deployment/burn",
        "deployment/idle",
        "--timeout=120s",
    ]);
    // The pod's first metrics (two scrapes), before the HPA exists.
    ferrokube_client::testing::wait::wait_until_blocking(
        "metrics of burn's pod",
        Duration::from_secs(60),
        Duration::from_secs(1),
        || {
            c.kubectl(&["top", "pod", "-l", "app=burn"])
                .status
                .success()
        },
    );

    // kubectl autoscale: TARGETS shows a percentage within 15 s.
    c.kubectl_ok(&[
        "autoscale",
        "deployment",
        "burn",
        "--cpu-percent=50",
        "--min=1",
        "--max=4",
    ]);
    let made = Instant::now();
    let mut row = String::new();
    while made.elapsed() < Duration::from_secs(15) {
        row = out(&c, &["get", "hpa", "burn", "--no-headers"]);
        if shows_percentage(&row) {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        shows_percentage(&row),
        "TARGETS without a percentage 15 s after kubectl autoscale: {row:?}"
    );
    assert!(row.contains("Deployment/burn"), "{row}");

    // Load on: 200m used of 100m requested is 200% of a 50% target; the
    // first step may take it to 4 (max(2 x 1, 4)) and the maximum holds it.
    c.kubectl_ok(&[
        "patch",
        "configmap",
        "load",
        "-p",
        r#"{"data":{"state":"on"}}"#,
    ]);
    let most = wait_replicas(&c, 4, Duration::from_secs(120), "scale-up");
    assert_eq!(most, 4);
    let events = out(
        &c,
        &[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=burn,reason=SuccessfulRescale",
            "-o",
            "jsonpath={.items[*].message}",
        ],
    );
    assert!(
        events.contains("reason: cpu resource utilization (percentage of request) above target"),
        "{events}"
    );
    c.kubectl_ok(&[
        "wait",
        "--for=condition=Available",
        "deployment/burn",
        "--timeout=120s",
    ]);
    // Held at the maximum for a few syncs while the load lasts.
    for _ in 0..10 {
        assert_eq!(replicas(&c, "burn"), Some(4));
        std::thread::sleep(Duration::from_secs(1));
    }

    // Load off: after the ConfigMap reaches the pods, the metrics follow
    // and the 30 s window passes, back to 1.
    c.kubectl_ok(&[
        "patch",
        "configmap",
        "load",
        "-p",
        r#"{"data":{"state":"off"}}"#,
    ]);
    let off = Instant::now();
    wait_replicas(&c, 1, Duration::from_secs(150), "scale-down");
    assert!(
        off.elapsed() >= Duration::from_secs(30),
        "scaled down {:?} after the load stopped, inside the 30 s window",
        off.elapsed()
    );
    let events = out(
        &c,
        &[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=burn,reason=SuccessfulRescale",
            "-o",
            "jsonpath={.items[*].message}",
        ],
    );
    assert!(
        events.contains("New size: 1; reason: All metrics below target"),
        "{events}"
    );

    // No CPU request: not scaled, and the condition says why.
    let active = |c: &Cluster| {
        out(
            c,
            &[
                "get",
                "hpa",
                "idle",
                "-o",
                r#"jsonpath={.status.conditions[?(@.type=="ScalingActive")].status} {.status.conditions[?(@.type=="ScalingActive")].reason} {.status.conditions[?(@.type=="ScalingActive")].message}"#,
            ],
        )
    };
    ferrokube_client::testing::wait::wait_until_blocking(
        "ScalingActive=False on idle",
        Duration::from_secs(60),
        Duration::from_secs(1),
        || active(&c).starts_with("False "),
    );
    let cond = active(&c);
    assert!(cond.starts_with("False FailedGetResourceMetric "), "{cond}");
    assert!(cond.contains("missing request for cpu"), "{cond}");
    assert_eq!(replicas(&c, "idle"), Some(1));
    let row = out(&c, &["get", "hpa", "idle", "--no-headers"]);
    assert!(row.contains("cpu: <unknown>/50%"), "{row}");
}
