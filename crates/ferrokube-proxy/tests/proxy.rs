//! The proxy programming real nftables, in a network namespace the test
//! makes: pods reach Services by cluster IP and NodePort, spread over the
//! ready endpoints; changes land; Services without endpoints refuse at
//! once; ClientIP affinity and hairpin work; a restart keeps traffic going.

use std::collections::BTreeSet;
use std::time::Duration;

use ferrokube_client::testing::TestApi;
use ferrokube_proxy::testing::Lab;
use ferrokube_proxy::{Nft, ProxyConfig, SyncReport};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;

struct Proxy {
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    syncs: UnboundedReceiver<SyncReport>,
}

fn start_proxy(client: kube::Client, lab: &Lab, table: &str, cleanup: bool) -> Proxy {
    let cancel = CancellationToken::new();
    let (tx, syncs) = tokio::sync::mpsc::unbounded_channel();
    let config = ProxyConfig {
        node_name: "node-a".into(),
        cluster_cidr: "10.42.0.0/16".into(),
        table: table.into(),
        nft: Nft { command: lab.nft() },
        cleanup_on_exit: cleanup,
        set_sysctls: false,
    };
    let task = tokio::spawn(ferrokube_proxy::run(
        client,
        config,
        cancel.clone(),
        Some(tx),
    ));
    Proxy {
        cancel,
        task,
        syncs,
    }
}

impl Proxy {
    async fn stop(self) {
        self.cancel.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("proxy stops")
            .expect("proxy task")
            .expect("proxy ran cleanly");
    }

    /// Waits for the next sync that changed the rules.
    async fn synced(&mut self) -> SyncReport {
        tokio::time::timeout(Duration::from_secs(15), self.syncs.recv())
            .await
            .expect("a sync in time")
            .expect("proxy running")
    }
}

async fn service(api: &Api<Service>, body: serde_json::Value) -> Service {
    let svc: Service = serde_json::from_value(body).expect("service json");
    api.create(&PostParams::default(), &svc)
        .await
        .expect("create service")
}

fn cluster_ip(s: &Service) -> String {
    s.spec
        .as_ref()
        .and_then(|s| s.cluster_ip.clone())
        .expect("cluster ip")
}

fn node_port(s: &Service) -> i32 {
    s.spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .and_then(|p| p.first())
        .and_then(|p| p.node_port)
        .expect("node port")
}

fn slice(name: &str, service: &str, ips: &[&str]) -> EndpointSlice {
    let endpoints: Vec<_> = ips
        .iter()
        .map(|ip| json!({"addresses": [ip], "conditions": {"ready": true}, "nodeName": "node-a"}))
        .collect();
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]
    }))
    .expect("slice json")
}

/// Who answers `n` requests to `url` from pod `from`.
fn answers(lab: &Lab, from: usize, url: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            lab.get(from, url)
                .unwrap_or_else(|code| format!("curl exit {code}"))
        })
        .collect()
}

#[tokio::test]
async fn services_reach_their_endpoints() {
    let api = TestApi::start().await.expect("api");
    let client = api.client().await.expect("client");
    let mut lab = Lab::new("a", 251, 3);
    lab.serve(0, "pod-a");
    lab.serve(1, "pod-b");
    let (a_ip, b_ip) = (lab.pods[0].1.clone(), lab.pods[1].1.clone());

    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    let web = service(
        &services,
        json!({
            "metadata": {"name": "web"},
            "spec": {"type": "NodePort", "selector": {"app": "web"},
                     "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}
        }),
    )
    .await;
    slices
        .create(
            &PostParams::default(),
            &slice("web-1", "web", &[&a_ip, &b_ip]),
        )
        .await
        .expect("slice");
    let empty = service(
        &services,
        json!({
            "metadata": {"name": "empty"},
            "spec": {"selector": {"app": "none"}, "ports": [{"name": "http", "port": 80}]}
        }),
    )
    .await;

    let mut proxy = start_proxy(client.clone(), &lab, "fktest-a", true);
    assert!(
        proxy.synced().await.full,
        "the first sync writes the whole table"
    );
    let url = format!("http://{}/", cluster_ip(&web));

    // Both endpoints answer through the cluster IP.
    let seen: BTreeSet<String> = answers(&lab, 2, &url, 40).into_iter().collect();
    assert_eq!(
        seen,
        BTreeSet::from(["pod-a".to_string(), "pod-b".to_string()]),
        "40 requests to {url}"
    );
    // And through the NodePort on the node's address.
    let np_url = format!("http://{}:{}/", lab.gateway, node_port(&web));
    let seen: BTreeSet<String> = answers(&lab, 2, &np_url, 20).into_iter().collect();
    assert!(
        seen.iter().all(|s| s == "pod-a" || s == "pod-b") && !seen.is_empty(),
        "NodePort answers: {seen:?}"
    );
    // Hairpin: pod-a reaches the Service, and sometimes itself.
    let seen: BTreeSet<String> = answers(&lab, 0, &url, 20).into_iter().collect();
    assert!(seen.contains("pod-a"), "hairpin answers: {seen:?}");

    // A Service without endpoints refuses at once.
    let started = std::time::Instant::now();
    let r = lab.get(2, &format!("http://{}/", cluster_ip(&empty)));
    assert_eq!(r, Err(7), "connection refused");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );

    // Endpoint b goes: only a answers, after an incremental sync.
    slices
        .replace("web-1", &PostParams::default(), &{
            let mut s = slice("web-1", "web", &[&a_ip]);
            s.metadata.resource_version = slices
                .get("web-1")
                .await
                .expect("get slice")
                .metadata
                .resource_version;
            s
        })
        .await
        .expect("update slice");
    let report = proxy.synced().await;
    assert!(!report.full, "changes are incremental");
    let seen: BTreeSet<String> = answers(&lab, 2, &url, 10).into_iter().collect();
    assert_eq!(seen, BTreeSet::from(["pod-a".to_string()]));

    // The Service goes: its address stops answering.
    services
        .delete("web", &DeleteParams::default())
        .await
        .expect("delete service");
    proxy.synced().await;
    assert!(
        lab.get(2, &url).is_err(),
        "a deleted Service stops answering"
    );

    proxy.stop().await;
    let listed = std::process::Command::new("ip")
        .args([
            "netns", "exec", &lab.node, "nft", "list", "table", "ip", "fktest-a",
        ])
        .output()
        .expect("nft list");
    assert!(!listed.status.success(), "cleanup removed the table");
}

#[tokio::test]
async fn affinity_and_restart_without_a_gap() {
    let api = TestApi::start().await.expect("api");
    let client = api.client().await.expect("client");
    let mut lab = Lab::new("b", 252, 3);
    lab.serve(0, "pod-a");
    lab.serve(1, "pod-b");
    let (a_ip, b_ip) = (lab.pods[0].1.clone(), lab.pods[1].1.clone());
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    let sticky = service(
        &services,
        json!({
            "metadata": {"name": "sticky"},
            "spec": {"selector": {"app": "web"}, "sessionAffinity": "ClientIP",
                     "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}
        }),
    )
    .await;
    slices
        .create(
            &PostParams::default(),
            &slice("sticky-1", "sticky", &[&a_ip, &b_ip]),
        )
        .await
        .expect("slice");
    let mut proxy = start_proxy(client.clone(), &lab, "fktest-b", false);
    proxy.synced().await;
    let url = format!("http://{}/", cluster_ip(&sticky));
    let seen: BTreeSet<String> = answers(&lab, 2, &url, 15).into_iter().collect();
    assert_eq!(
        seen.len(),
        1,
        "ClientIP affinity keeps one client on one endpoint: {seen:?}"
    );

    // Restart: the old rules stay until the new proxy swaps in its table.
    proxy.stop().await;
    assert_eq!(answers(&lab, 2, &url, 3).len(), 3);
    assert!(
        answers(&lab, 2, &url, 3)
            .iter()
            .all(|s| s.starts_with("pod-")),
        "rules survive the proxy stopping"
    );
    let mut proxy = start_proxy(client.clone(), &lab, "fktest-b", true);
    let during = {
        let lab_pod = lab.pods[2].0.clone();
        let url = url.clone();
        tokio::task::spawn_blocking(move || {
            (0..30)
                .map(|_| {
                    std::process::Command::new("ip")
                        .args([
                            "netns",
                            "exec",
                            &lab_pod,
                            "curl",
                            "-s",
                            "--max-time",
                            "3",
                            &url,
                        ])
                        .output()
                        .map(|o| o.status.success())
                        .unwrap_or(false)
                })
                .filter(|ok| !ok)
                .count()
        })
    };
    assert!(proxy.synced().await.full);
    let failures = during.await.expect("requests during restart");
    assert_eq!(failures, 0, "requests failed while the proxy restarted");
    proxy.stop().await;
}
