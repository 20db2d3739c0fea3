//! The workload controllers' benchmark: an in-process API server on the
//! embedded store (`ferrokube_client::testing::TestApi`) with the
//! ReplicaSet/Deployment/Endpoints controllers running against it over
//! HTTPS, and a fake kubelet that marks every new pod Running and Ready
//! through the status subresource. Figures: the time for a Deployment of
//! N replicas to have all its pods created, and for a rolling update of
//! many small Deployments at once to complete.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{watcher, WatchStreamExt};
use serde_json::json;
use tokio_util::sync::CancellationToken;

#[derive(clap::Args)]
pub struct Options {
    /// Replicas of the one big Deployment.
    #[arg(long, default_value_t = 1_000)]
    replicas: i32,
    /// Deployments rolled at once.
    #[arg(long, default_value_t = 100)]
    deployments: usize,
    /// Replicas of each of them.
    #[arg(long, default_value_t = 10)]
    each: i32,
    /// Give up on any phase after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout_secs: u64,
}

fn deployment(name: &str, replicas: i32, image: &str) -> anyhow::Result<Deployment> {
    Ok(serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name, "bench": "yes"}},
                "spec": {"containers": [{"name": "c", "image": image}]}
            }
        }
    }))?)
}

/// Marks every pod that appears (and is not ready) Running and Ready.
fn fake_kubelet(
    client: kube::Client,
    ns: &str,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let api: Api<Pod> = Api::namespaced(client, ns);
    tokio::spawn(async move {
        let sem = Arc::new(tokio::sync::Semaphore::new(32));
        let stream = watcher(api.clone(), watcher::Config::default())
            .default_backoff()
            .applied_objects();
        let mut stream = std::pin::pin!(stream);
        loop {
            let p = tokio::select! {
                _ = cancel.cancelled() => return,
                p = stream.next() => p,
            };
            let Some(Ok(p)) = p else {
                if p.is_none() {
                    return;
                }
                continue;
            };
            let ready = p
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            if ready || p.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let Some(name) = p.metadata.name.clone() else {
                continue;
            };
            let Ok(permit) = sem.clone().acquire_owned().await else {
                return;
            };
            let api = api.clone();
            tokio::spawn(async move {
                let now = k8s_openapi::jiff::Timestamp::now().to_string();
                let st = json!({"status": {"phase": "Running", "podIP": "10.42.0.1",
                    "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now}]}});
                let _ = api
                    .patch_status(&name, &PatchParams::default(), &Patch::Merge(&st))
                    .await;
                drop(permit);
            });
        }
    })
}

fn done(d: &Deployment) -> bool {
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    d.status.as_ref().is_some_and(|s| {
        s.observed_generation >= d.metadata.generation
            && s.updated_replicas == Some(want)
            && s.replicas == Some(want)
            && s.available_replicas == Some(want)
    })
}

async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut f: F) -> anyhow::Result<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let start = Instant::now();
    loop {
        if f().await? {
            return Ok(start.elapsed());
        }
        if start.elapsed() > timeout {
            anyhow::bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn run(opts: Options) -> anyhow::Result<()> {
    let timeout = Duration::from_secs(opts.timeout_secs);
    let api = ferrokube_client::testing::TestApi::start().await?;
    let client = api.client().await?;
    let cancel = CancellationToken::new();
    let controllers = tokio::spawn(ferrokube_controllers::workloads::run(
        client.clone(),
        cancel.clone(),
    ));
    let nss: Api<Namespace> = Api::all(client.clone());
    for ns in ["big", "many"] {
        nss.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}}))?,
        )
        .await?;
    }
    println!("workload controllers, in-process API server on the embedded store (release build)");
    println!();

    // 1. One big Deployment: pods created.
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "big");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "big");
    deps.create(
        &PostParams::default(),
        &deployment("big", opts.replicas, "img:1")?,
    )
    .await?;
    let want = opts.replicas as usize;
    let lp = ListParams::default().labels("app=big");
    let created = wait_until("all pods created", timeout, || async {
        Ok(pods.list_metadata(&lp).await?.items.len() >= want)
    })
    .await?;
    println!(
        "Deployment of {} replicas: all pods created in {:.2} s ({:.0} pods/s)",
        opts.replicas,
        created.as_secs_f64(),
        want as f64 / created.as_secs_f64()
    );

    // 2. Many small Deployments rolled at once, a fake kubelet readying pods.
    let kubelet = fake_kubelet(client.clone(), "many", cancel.clone());
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "many");
    let names: Vec<String> = (0..opts.deployments).map(|i| format!("web-{i}")).collect();
    let start = Instant::now();
    for n in &names {
        deps.create(&PostParams::default(), &deployment(n, opts.each, "img:1")?)
            .await?;
    }
    let all_done = || async {
        let l = deps.list(&ListParams::default()).await?;
        Ok(l.items.len() == names.len() && l.items.iter().all(done))
    };
    wait_until("the first rollout", timeout, all_done).await?;
    let first = start.elapsed();
    println!(
        "{} Deployments x {} replicas created and available in {:.2} s",
        opts.deployments,
        opts.each,
        first.as_secs_f64()
    );
    let start = Instant::now();
    let patch =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "img:2"}]}}}});
    for n in &names {
        deps.patch(n, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
    }
    wait_until("the rolling update", timeout, all_done).await?;
    let rolled = start.elapsed();
    println!(
        "rolling update of {} Deployments x {} replicas (25%/25%): complete in {:.2} s ({:.0} pods replaced/s)",
        opts.deployments,
        opts.each,
        rolled.as_secs_f64(),
        (opts.deployments as f64 * f64::from(opts.each)) / rolled.as_secs_f64()
    );
    let rss = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:").map(|v| v.trim().to_string()))
        .unwrap_or_default();
    println!("process RSS (API server + store + controllers + fake kubelet): {rss}");

    cancel.cancel();
    let _ = kubelet.await;
    let _ = controllers.await;
    Ok(())
}
