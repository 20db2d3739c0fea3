//! Jobs and CronJobs end to end on a whole one-node cluster with the real
//! kubectl. The controller manager runs as its own process (`ferrokube
//! controller-manager` beside a server started with
//! `--disable-controller-manager`) so that a test can kill it and start it
//! again mid-Job.

mod common;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Cluster, POLL};
use ferrokube_client::testing::wait::wait_until_blocking;
use serde_json::Value;

/// A one-node cluster whose controller manager is a child process.
struct Batch {
    c: Cluster,
    cm: Option<Child>,
}

impl Batch {
    fn start(node: &str, cidr: &str) -> Batch {
        let images = tempfile::tempdir().expect("images dir");
        common::build_images(images.path());
        let c = Cluster::start_node(
            &[
                "--node-name",
                node,
                "--cluster-cidr",
                cidr,
                "--disable",
                "coredns",
                "--disable-kube-proxy",
                "--kubelet-port",
                "0",
                "--disable-controller-manager",
            ],
            |data| {
                let dir = data.join("agent/images");
                std::fs::create_dir_all(&dir).expect("images dir");
                std::fs::copy(images.path().join("busybox.tar"), dir.join("busybox.tar"))
                    .expect("copy image");
            },
        );
        let mut b = Batch { c, cm: None };
        b.start_cm(cidr);
        wait_until_blocking(
            "the node to register",
            Duration::from_secs(120),
            POLL,
            || b.c.kubectl(&["get", "node", node]).status.success(),
        );
        b.c.kubectl_ok(&[
            "wait",
            "--for=condition=Ready",
            &format!("node/{node}"),
            "--timeout=120s",
        ]);
        wait_until_blocking(
            "the default service account",
            Duration::from_secs(60),
            POLL,
            || {
                b.c.kubectl(&["get", "serviceaccount", "default"])
                    .status
                    .success()
            },
        );
        b
    }

    fn start_cm(&mut self, cidr: &str) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.c.data_dir().join("controller-manager.log"))
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_ferrokube"))
            .arg("controller-manager")
            .arg("--kubeconfig")
            .arg(self.c.data_dir().join("controller-manager.kubeconfig"))
            .args(["--cluster-cidr", cidr, "--metrics-bind-address", "0"])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start the controller manager");
        self.cm = Some(child);
    }

    /// SIGKILL, as a crash.
    fn kill_cm(&mut self) {
        if let Some(mut c) = self.cm.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        serde_json::from_str(&self.c.kubectl_ok(&all)).expect("kubectl json")
    }

    fn apply(&self, name: &str, yaml: &str) {
        let f = self.c.data_dir().join(name);
        std::fs::write(&f, yaml).expect("manifest");
        self.c
            .kubectl_ok(&["apply", "-f", f.to_str().expect("path")]);
    }

    fn pods_of(&self, job: &str) -> Vec<Value> {
        self.json(&[
            "get",
            "pods",
            "-l",
            &format!("batch.kubernetes.io/job-name={job}"),
        ])["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    fn condition(&self, job: &str, type_: &str) -> Option<Value> {
        let j = self.json(&["get", "job", job]);
        j["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == type_ && c["status"] == "True")
            .cloned()
    }

    fn events(&self, name: &str) -> Vec<(String, String)> {
        self.json(&["get", "events"])["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["involvedObject"]["name"] == name)
            .map(|e| {
                (
                    e["reason"].as_str().unwrap_or("").to_string(),
                    e["message"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        self.kill_cm();
    }
}

fn job(name: &str, spec: &str, command: &str) -> String {
    format!(
        r#"apiVersion: batch/v1
kind: Job
metadata: {{name: {name}}}
spec:
{spec}
  template:
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: busybox
        imagePullPolicy: Never
        command: ["sh", "-c", "{command}"]
---
"#
    )
}

const CRON_TEMPLATE: &str = r#"apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          terminationGracePeriodSeconds: 1
          containers:
          - name: main
            image: busybox
            imagePullPolicy: Never
            command: ["sh", "-c", "echo from-cron"]
"#;

#[test]
#[expect(
    clippy::too_many_lines,
    reason = "one scenario: the Jobs share one node started once, the slowest part of the test"
)]
fn jobs_complete_fail_suspend_and_expire() {
    let b = Batch::start("fk-batch-jobs", "10.93.0.0/16");
    let mut all = String::new();
    all += &job(
        "idx",
        "  completions: 5\n  parallelism: 2\n  completionMode: Indexed",
        "echo index=$JOB_COMPLETION_INDEX",
    );
    all += &job("fail", "  backoffLimit: 1", "exit 1");
    all += &job(
        "pfp",
        "  backoffLimit: 6\n  podFailurePolicy:\n    rules:\n    - action: FailJob\n      onExitCodes: {containerName: main, operator: In, values: [42]}",
        "exit 42",
    );
    all += &job("sus", "  suspend: true", "true");
    all += &job("ttl", "  ttlSecondsAfterFinished: 5", "true");
    all += CRON_TEMPLATE;
    b.apply("jobs.yaml", &all);
    b.c.kubectl_ok(&["create", "job", "manual", "--from=cronjob/nightly"]);

    // Indexed: every index exactly once, each pod saw its own index.
    b.c.kubectl_ok(&[
        "wait",
        "--for=condition=complete",
        "job/idx",
        "--timeout=120s",
    ]);
    let pods = b.pods_of("idx");
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for p in &pods {
        assert_eq!(p["status"]["phase"], "Succeeded", "{p}");
        let ix = p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
            .as_str()
            .expect("index annotation")
            .to_string();
        assert_eq!(
            p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"],
            ix.as_str()
        );
        assert_eq!(p["spec"]["hostname"], format!("idx-{ix}"));
        let name = p["metadata"]["name"].as_str().unwrap_or("");
        let log = b.c.kubectl_ok(&["logs", name]);
        assert_eq!(log.trim(), format!("index={ix}"));
        assert!(p["metadata"]["finalizers"].is_null(), "{}", p["metadata"]);
        *seen.entry(ix).or_default() += 1;
    }
    assert_eq!(
        seen.keys().map(String::as_str).collect::<Vec<_>>(),
        ["0", "1", "2", "3", "4"]
    );
    assert!(seen.values().all(|n| *n == 1), "{seen:?}");
    let j = b.json(&["get", "job", "idx"]);
    assert_eq!(j["status"]["succeeded"], 5);
    assert_eq!(j["status"]["completedIndexes"], "0-4");
    let out = b.c.kubectl_ok(&["get", "job", "idx"]);
    assert!(out.contains("Complete") && out.contains("5/5"), "{out}");

    // A FailJob rule on exit code 42 fails the Job at its first pod.
    b.c.kubectl_ok(&["wait", "--for=condition=failed", "job/pfp", "--timeout=90s"]);
    let c = b.condition("pfp", "Failed").expect("Failed");
    assert_eq!(c["reason"], "PodFailurePolicy");
    let msg = c["message"].as_str().unwrap_or("");
    assert!(
        msg.starts_with("Container main for pod default/pfp-")
            && msg.ends_with("failed with exit code 42 matching FailJob rule at index 0"),
        "{msg}"
    );
    assert_eq!(b.pods_of("pfp").len(), 1);

    // backoffLimit 1: two failed pods, ten seconds apart at least, then Failed.
    b.c.kubectl_ok(&[
        "wait",
        "--for=condition=failed",
        "job/fail",
        "--timeout=120s",
    ]);
    let c = b.condition("fail", "Failed").expect("Failed");
    assert_eq!(c["reason"], "BackoffLimitExceeded");
    assert_eq!(c["message"], "Job has reached the specified backoff limit");
    assert_eq!(b.json(&["get", "job", "fail"])["status"]["failed"], 2);
    assert_eq!(b.pods_of("fail").len(), 2);
    assert!(b
        .events("fail")
        .iter()
        .any(|(r, _)| r == "BackoffLimitExceeded"));

    // Suspended: no pods at all.
    let c = b.condition("sus", "Suspended").expect("Suspended");
    assert_eq!(c["reason"], "JobSuspended");
    assert!(b.pods_of("sus").is_empty());

    // The manual run of the CronJob's template.
    b.c.kubectl_ok(&[
        "wait",
        "--for=condition=complete",
        "job/manual",
        "--timeout=90s",
    ]);
    let m = b.json(&["get", "job", "manual"]);
    assert_eq!(
        m["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"],
        "manual"
    );
    assert_eq!(m["metadata"]["ownerReferences"][0]["kind"], "CronJob");
    let p = &b.pods_of("manual")[0];
    assert_eq!(
        b.c.kubectl_ok(&["logs", p["metadata"]["name"].as_str().unwrap_or("")])
            .trim(),
        "from-cron"
    );

    // Finished with ttlSecondsAfterFinished 5: deleted, pods and all.
    let start = Instant::now();
    wait_until_blocking(
        "job/ttl to be deleted",
        Duration::from_secs(90),
        POLL,
        || !b.c.kubectl(&["get", "job", "ttl"]).status.success(),
    );
    wait_until_blocking("job/ttl's pod to go", Duration::from_secs(60), POLL, || {
        b.pods_of("ttl").is_empty()
    });
    eprintln!(
        "ttl job gone {:?} after the others finished",
        start.elapsed()
    );
}

const TICK: &str = r#"apiVersion: batch/v1
kind: CronJob
metadata: {name: tick}
spec:
  schedule: "*/1 * * * *"
  concurrencyPolicy: Forbid
  jobTemplate:
    metadata: {labels: {cron: tick}}
    spec:
      template:
        spec:
          restartPolicy: Never
          terminationGracePeriodSeconds: 1
          containers:
          - name: main
            image: busybox
            imagePullPolicy: Never
            command: ["sh", "-c", "sleep 150"]
"#;

fn tick_jobs(b: &Batch) -> Vec<String> {
    b.json(&["get", "jobs", "-l", "cron=tick"])["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|j| j["metadata"]["name"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn cronjob_runs_each_minute_forbids_overlap_and_a_cm_restart_loses_nothing() {
    let mut b = Batch::start("fk-batch-cron", "10.92.0.0/16");
    b.apply("tick.yaml", TICK);
    let created = Instant::now();
    b.apply(
        "many.yaml",
        &job("many", "  completions: 50\n  parallelism: 10", "true"),
    );

    // Kill the controller manager in the middle of the 50 pods.
    wait_until_blocking(
        "ten pods of job/many to succeed",
        Duration::from_secs(120),
        POLL,
        || {
            b.pods_of("many")
                .iter()
                .filter(|p| p["status"]["phase"] == "Succeeded")
                .count()
                >= 10
        },
    );
    b.kill_cm();
    assert!(
        b.condition("many", "Complete").is_none(),
        "job/many finished before the kill"
    );
    // Pods go on finishing while no controller counts them.
    std::thread::sleep(Duration::from_secs(3));
    b.start_cm("10.92.0.0/16");
    b.c.kubectl_ok(&[
        "wait",
        "--for=condition=complete",
        "job/many",
        "--timeout=180s",
    ]);
    let j = b.json(&["get", "job", "many"]);
    assert_eq!(j["status"]["succeeded"], 50, "{}", j["status"]);
    assert!(j["status"]["failed"].is_null(), "{}", j["status"]);
    let pods = b.pods_of("many");
    assert_eq!(pods.len(), 50, "pods made");
    assert!(pods
        .iter()
        .all(|p| p["status"]["phase"] == "Succeeded" && p["metadata"]["finalizers"].is_null()));
    let u = &j["status"]["uncountedTerminatedPods"];
    assert!(u["succeeded"].is_null() && u["failed"].is_null(), "{u}");

    // The CronJob made its first Job within 75 s.
    let mut first = Vec::new();
    wait_until_blocking(
        "the first tick job",
        Duration::from_secs(75).saturating_sub(created.elapsed()),
        POLL,
        || {
            first = tick_jobs(&b);
            !first.is_empty()
        },
    );
    assert_eq!(first.len(), 1);
    let name = first[0].clone();
    let minutes: i64 = name
        .strip_prefix("tick-")
        .and_then(|m| m.parse().ok())
        .expect("tick-<minutes>");
    let j = b.json(&["get", "job", &name]);
    assert!(
        j["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"].is_string()
    );
    let cj = b.json(&["get", "cronjob", "tick"]);
    assert_eq!(cj["status"]["active"][0]["name"], name.as_str());
    assert!(cj["status"]["lastScheduleTime"].is_string());
    // The next minute comes while the first still runs: Forbid skips it.
    let next_at = (minutes + 1) * 60 + 5;
    loop {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs() as i64;
        if now >= next_at {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    wait_until_blocking("JobAlreadyActive", Duration::from_secs(30), POLL, || {
        b.events("tick").iter().any(|(r, m)| {
            r == "JobAlreadyActive"
                && m == "Not starting job because prior execution is running and concurrency policy is Forbid"
        })
    });
    assert_eq!(tick_jobs(&b), [name]);
}
