//! API priority and fairness against a real `ferrokube server`: a
//! PriorityLevelConfiguration with a tiny share that rejects, and a
//! FlowSchema sending user `jane` (the admin impersonating her) to it. A
//! burst of jane's requests gets Kubernetes' 429s, every response naming
//! the schema's and level's UIDs in its headers, while the admin's
//! requests at the same time all succeed (exempt); once the FlowSchema is
//! deleted, jane's requests are `global-default`'s again.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::Cluster;

const LEVEL_AND_SCHEMA: &str = r#"
apiVersion: flowcontrol.apiserver.k8s.io/v1
kind: PriorityLevelConfiguration
metadata:
  name: jane-only
spec:
  type: Limited
  limited:
    nominalConcurrencyShares: 1
    lendablePercent: 0
    borrowingLimitPercent: 0
    limitResponse:
      type: Reject
---
apiVersion: flowcontrol.apiserver.k8s.io/v1
kind: FlowSchema
metadata:
  name: jane
spec:
  matchingPrecedence: 500
  priorityLevelConfiguration:
    name: jane-only
  distinguisherMethod:
    type: ByUser
  rules:
  - subjects:
    - kind: User
      user:
        name: jane
    resourceRules:
    - verbs: ["*"]
      apiGroups: ["*"]
      resources: ["*"]
      clusterScope: true
      namespaces: ["*"]
"#;

const LIST: &str = "/api/v1/namespaces/apf/configmaps";

/// What a user sees of one response.
#[derive(Debug)]
struct Seen {
    status: u16,
    flow_schema: String,
    priority_level: String,
    retry_after: String,
    content_type: String,
    body: String,
}

/// curl with an admin client certificate (group `system:masters`),
/// trusting the cluster CA.
struct Curl {
    base: String,
    args: Vec<String>,
    dir: PathBuf,
}

const WRITE_OUT: &str = "%{http_code}|%header{x-kubernetes-pf-flowschema-uid}|%header{x-kubernetes-pf-prioritylevel-uid}|%header{retry-after}|%header{content-type}|%{url_effective}\\n";

impl Curl {
    fn new(c: &Cluster) -> Curl {
        let dir = c.data_dir().join("curl");
        std::fs::create_dir_all(&dir).expect("a dir");
        let (cert, key) = ferrokube_apiserver::pki::issue_client_certificate(
            c.data_dir(),
            "apf-admin",
            &["system:masters"],
        )
        .expect("a client certificate");
        std::fs::write(dir.join("admin.crt"), cert).expect("write the cert");
        std::fs::write(dir.join("admin.key"), key).expect("write the key");
        let path = |f: &str| dir.join(f).display().to_string();
        let args = [
            "-s",
            "--http1.1",
            "--cacert",
            &c.data_dir().join("tls/ca.crt").display().to_string(),
            "--cert",
            &path("admin.crt"),
            "--key",
            &path("admin.key"),
            "-w",
            WRITE_OUT,
        ]
        .map(String::from)
        .to_vec();
        Curl {
            base: format!("https://127.0.0.1:{}", c.port),
            args,
            dir,
        }
    }

    /// `count` GETs of `path` at once (`count` > 1), as `as_user` or the
    /// admin; what each saw.
    fn get(&self, as_user: Option<&str>, path: &str, count: usize) -> Command {
        let tag = as_user.unwrap_or("admin");
        let mut cmd = Command::new("curl");
        cmd.args(&self.args);
        if let Some(user) = as_user {
            cmd.args(["-H", &format!("Impersonate-User: {user}")]);
        }
        cmd.args(["--parallel", "--parallel-max", &count.to_string()]);
        cmd.args([
            "-o",
            &self.dir.join(format!("{tag}-#1")).display().to_string(),
        ]);
        // The limit (above the object count) only tells the URLs apart.
        cmd.arg(format!(
            "{}{path}?limit=[{}-{}]",
            self.base,
            1000,
            999 + count
        ));
        cmd
    }

    fn seen(&self, out: std::process::Output, as_user: Option<&str>) -> Vec<Seen> {
        let tag = as_user.unwrap_or("admin");
        assert!(out.status.success(), "curl failed: {out:?}");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|line| {
                let f: Vec<&str> = line.split('|').collect();
                assert_eq!(f.len(), 6, "{line}");
                // Completion order: the URL's limit names its body's file.
                let limit = f[5].rsplit('=').next().unwrap_or_default();
                let body = std::fs::read_to_string(self.dir.join(format!("{tag}-{limit}")))
                    .unwrap_or_default();
                Seen {
                    status: f[0].parse().unwrap_or(0),
                    flow_schema: f[1].to_string(),
                    priority_level: f[2].to_string(),
                    retry_after: f[3].to_string(),
                    content_type: f[4].to_string(),
                    body,
                }
            })
            .collect()
    }

    /// One request's view.
    fn one(&self, as_user: Option<&str>, path: &str) -> Seen {
        let out = self.get(as_user, path, 1).output().expect("run curl");
        self.seen(out, as_user).pop().expect("a response")
    }
}

fn uid(c: &Cluster, kind: &str, name: &str) -> String {
    c.kubectl_ok(&["get", kind, name, "-o", "jsonpath={.metadata.uid}"])
}

/// Waits (at most `limit`) until jane's requests are classified by the
/// schema with `schema_uid`; how long it took.
fn wait_classified(curl: &Curl, schema_uid: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let seen = curl.one(Some("jane"), LIST);
        if seen.flow_schema == schema_uid {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "jane's requests not classified by {schema_uid} within {limit:?}: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One burst: 30 requests of jane and 30 of the admin, all at once.
fn burst(curl: &Curl) -> (Vec<Seen>, Vec<Seen>) {
    let jane = curl.get(Some("jane"), LIST, 30).output_async();
    let admin = curl.get(None, LIST, 30).output_async();
    (
        curl.seen(jane.join().expect("jane's curl"), Some("jane")),
        curl.seen(admin.join().expect("the admin's curl"), None),
    )
}

trait OutputAsync {
    fn output_async(self) -> std::thread::JoinHandle<std::process::Output>;
}

impl OutputAsync for Command {
    fn output_async(mut self) -> std::thread::JoinHandle<std::process::Output> {
        std::thread::spawn(move || self.output().expect("run curl"))
    }
}

/// A namespace of 300 ConfigMaps jane may list (enough objects that each
/// list takes a while, so requests overlap), and the level and schema.
fn setup(c: &Cluster) {
    c.kubectl_ok(&["create", "namespace", "apf"]);
    let configmaps: Vec<String> = (0..300)
        .map(|i| {
            format!(
                r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"cm-{i}","namespace":"apf"}},"data":{{"k":"{}"}}}}"#,
                "v".repeat(200)
            )
        })
        .collect();
    let list = format!(
        r#"{{"apiVersion":"v1","kind":"List","items":[{}]}}"#,
        configmaps.join(",")
    );
    let file = c.data_dir().join("configmaps.json");
    std::fs::write(&file, list).expect("write the list");
    c.kubectl_ok(&["create", "-f", file.to_str().expect("a path")]);
    c.kubectl_ok(&[
        "create",
        "clusterrolebinding",
        "jane-view",
        "--clusterrole=view",
        "--user=jane",
    ]);
    let manifest = c.data_dir().join("apf.yaml");
    std::fs::write(&manifest, LEVEL_AND_SCHEMA).expect("write the manifest");
    c.kubectl_ok(&["apply", "-f", manifest.to_str().expect("a path")]);
}

#[test]
fn a_rejecting_level_refuses_janes_burst_while_the_admin_is_served() {
    // Two seats in all: every Limited level gets one (shares rounded up).
    let c = Cluster::start_with(&[
        "--max-requests-inflight",
        "1",
        "--max-mutating-requests-inflight",
        "1",
    ]);
    setup(&c);
    let (schema, level) = (
        uid(&c, "flowschema", "jane"),
        uid(&c, "prioritylevelconfiguration", "jane-only"),
    );
    let (default_schema, default_level) = (
        uid(&c, "flowschema", "global-default"),
        uid(&c, "prioritylevelconfiguration", "global-default"),
    );

    let curl = Curl::new(&c);
    // The new schema classifies jane's requests within a second.
    let took = wait_classified(&curl, &schema, Duration::from_secs(10));
    assert!(took < Duration::from_secs(1), "took {took:?}");

    // The level's share of the 2 seats is ceil(2 * 1 / 246) = 1: bursts of
    // jane's requests overflow it (a few bursts at most, as the requests
    // must overlap).
    let mut refused = Vec::new();
    for _ in 0..20 {
        let (jane, admin) = burst(&curl);
        for seen in &admin {
            assert_eq!(seen.status, 200, "the admin was refused: {seen:?}");
        }
        for seen in jane {
            assert!(
                seen.status == 200 || seen.status == 429,
                "jane got {seen:?}"
            );
            assert_eq!(
                (&seen.flow_schema, &seen.priority_level),
                (&schema, &level),
                "{seen:?}"
            );
            if seen.status == 429 {
                refused.push(seen);
            }
        }
        if !refused.is_empty() {
            break;
        }
    }
    let seen = refused.first().expect("some of jane's requests refused");
    assert_eq!(seen.body, "Too many requests, please try again later.\n");
    assert_eq!(seen.content_type, "text/plain; charset=utf-8");
    assert!(
        seen.retry_after
            .parse::<u32>()
            .is_ok_and(|s| (1..=32).contains(&s)),
        "{seen:?}"
    );
    // The refusals are counted as Kubernetes counts them.
    let metrics = c.kubectl_ok(&["get", "--raw", "/metrics"]);
    assert!(
        metrics.lines().any(|l| l.starts_with(
            r#"apiserver_flowcontrol_rejected_requests_total{flow_schema="jane",priority_level="jane-only",reason="concurrency-limit"}"#
        )),
        "{metrics}"
    );
    let levels = c.kubectl_ok(&[
        "get",
        "--raw",
        "/debug/api_priority_and_fairness/dump_priority_levels",
    ]);
    assert!(levels.starts_with("PriorityLevelName, "), "{levels}");
    assert!(
        levels.lines().any(|l| l.starts_with("jane-only, ")),
        "{levels}"
    );

    // Without its schema, jane is global-default's again.
    c.kubectl_ok(&["delete", "flowschema", "jane"]);
    wait_classified(&curl, &default_schema, Duration::from_secs(10));
    let seen = curl.one(Some("jane"), LIST);
    assert_eq!(seen.status, 200, "{seen:?}");
    assert_eq!(seen.priority_level, default_level);
}
