//! API priority and fairness against a real `ferrokube server`: a
//! PriorityLevelConfiguration with a tiny share that rejects, and a
//! FlowSchema sending user `jane` (the admin impersonating her) to it. A
//! burst of jane's requests gets Kubernetes' 429s, every response naming
//! the schema's and level's UIDs in its headers, while the admin's
//! requests at the same time all succeed (exempt); once the FlowSchema is
//! deleted, jane's requests are `global-default`'s again.

mod common;

use std::time::{Duration, Instant};

use common::Cluster;
use http_body_util::BodyExt;

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
    retry_after: Option<String>,
    content_type: String,
    body: String,
}

async fn get(client: &kube::Client, as_user: Option<&str>, path: &str) -> Seen {
    let mut request = hyper::Request::get(path);
    if let Some(user) = as_user {
        request = request.header("Impersonate-User", user);
    }
    let request = request
        .body(kube::client::Body::from(Vec::new()))
        .expect("a request");
    let response = client.send(request).await.expect("an answer");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let seen = Seen {
        status: response.status().as_u16(),
        flow_schema: header("X-Kubernetes-PF-FlowSchema-UID").unwrap_or_default(),
        priority_level: header("X-Kubernetes-PF-PriorityLevel-UID").unwrap_or_default(),
        retry_after: header("Retry-After"),
        content_type: header("Content-Type").unwrap_or_default(),
        body: String::new(),
    };
    let body = response
        .into_body()
        .collect()
        .await
        .expect("the body")
        .to_bytes();
    Seen {
        body: String::from_utf8_lossy(&body).into_owned(),
        ..seen
    }
}

fn uid(c: &Cluster, kind: &str, name: &str) -> String {
    c.kubectl_ok(&["get", kind, name, "-o", "jsonpath={.metadata.uid}"])
}

/// Waits (at most `limit`) until jane's requests are classified by the
/// schema with `schema_uid`; how long it took.
async fn wait_classified(client: &kube::Client, schema_uid: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let seen = get(client, Some("jane"), LIST).await;
        if seen.flow_schema == schema_uid {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "jane's requests not classified by {schema_uid} within {limit:?}: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One burst: `n` requests of jane and `n` of the admin at once.
async fn burst(client: &kube::Client, n: usize) -> (Vec<Seen>, Vec<Seen>) {
    let mut jane = tokio::task::JoinSet::new();
    let mut admin = tokio::task::JoinSet::new();
    for _ in 0..n {
        let c = client.clone();
        jane.spawn(async move { get(&c, Some("jane"), LIST).await });
        let c = client.clone();
        admin.spawn(async move { get(&c, None, LIST).await });
    }
    (
        jane.join_all().await.into_iter().collect(),
        admin.join_all().await.into_iter().collect(),
    )
}

#[test]
fn a_rejecting_level_refuses_janes_burst_while_the_admin_is_served() {
    let c = Cluster::start();
    c.kubectl_ok(&["create", "namespace", "apf"]);
    // Enough objects that each list takes a while, so requests overlap.
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
    let (schema, level) = (
        uid(&c, "flowschema", "jane"),
        uid(&c, "prioritylevelconfiguration", "jane-only"),
    );
    let (default_schema, default_level) = (
        uid(&c, "flowschema", "global-default"),
        uid(&c, "prioritylevelconfiguration", "global-default"),
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a runtime");
    let client = rt
        .block_on(ferrokube_client::client_from_kubeconfig(&c.kubeconfig()))
        .expect("a client");
    // The new schema classifies jane's requests within a second.
    let took = rt.block_on(wait_classified(&client, &schema, Duration::from_secs(10)));
    assert!(took < Duration::from_secs(1), "took {took:?}");

    // The level's share of 600 seats is ceil(600 * 1 / 246) = 3: bursts
    // of jane's requests overflow it (a few bursts at most, as the
    // requests must overlap).
    let mut refused = Vec::new();
    for _ in 0..20 {
        let (jane, admin) = rt.block_on(burst(&client, 60));
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
            .as_deref()
            .and_then(|s| s.parse::<u32>().ok())
            .is_some_and(|s| (1..=32).contains(&s)),
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
    rt.block_on(wait_classified(
        &client,
        &default_schema,
        Duration::from_secs(10),
    ));
    let seen = rt.block_on(get(&client, Some("jane"), LIST));
    assert_eq!(seen.status, 200, "{seen:?}");
    assert_eq!(seen.priority_level, default_level);
}
