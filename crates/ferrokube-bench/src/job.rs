//! The Job benchmark: hollow nodes (Node objects only) on an in-process
//! API server, the scheduler and the workload controllers in this process,
//! and a fake kubelet that ends every bound pod at once (phase Succeeded,
//! its container terminated with exit code 0). Figures: the time from the
//! Job's creation to its Complete condition, and the Job controller's API
//! writes per pod (all of them, and without its Events).

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher::{self, watcher, Event as WatchEvent};
use serde_json::json;
use tokio_util::sync::CancellationToken;

#[derive(clap::Args)]
pub(crate) struct Options {
    /// Hollow nodes.
    #[arg(long, default_value_t = 100)]
    nodes: usize,
    /// The Job's completions.
    #[arg(long, default_value_t = 1_000)]
    completions: i32,
    /// The Job's parallelism.
    #[arg(long, default_value_t = 100)]
    parallelism: i32,
    /// Concurrent status writes of the fake kubelet.
    #[arg(long, default_value_t = 64)]
    kubelet_writers: usize,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout_secs: u64,
}

/// The fake kubelet: every bound pod succeeds at once.
fn fake_kubelet(
    client: kube::Client,
    writers: usize,
    cancel: CancellationToken,
) -> Arc<AtomicUsize> {
    let ended = Arc::new(AtomicUsize::new(0));
    let count = ended.clone();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let watch_api = pods.clone();
    let stop = cancel.clone();
    tokio::spawn(async move {
        let seen: Mutex<HashSet<String>> = Mutex::new(HashSet::new());
        let mut stream = watcher(watch_api, watcher::Config::default()).boxed();
        loop {
            let ev = tokio::select! {
                _ = stop.cancelled() => return,
                ev = stream.next() => ev,
            };
            let Some(ev) = ev else { return };
            let p = match ev {
                Ok(WatchEvent::Apply(p)) | Ok(WatchEvent::InitApply(p)) => p,
                _ => continue,
            };
            let bound = p
                .spec
                .as_ref()
                .and_then(|s| s.node_name.as_deref())
                .is_some_and(|n| !n.is_empty());
            let phase = p
                .status
                .as_ref()
                .and_then(|s| s.phase.as_deref())
                .unwrap_or("");
            let uid = p.metadata.uid.clone().unwrap_or_default();
            if bound
                && phase != "Succeeded"
                && p.metadata.deletion_timestamp.is_none()
                && seen.lock().map(|mut s| s.insert(uid)).unwrap_or(false)
            {
                let _ = tx.send(p.metadata.name.clone().unwrap_or_default());
            }
        }
    });
    tokio::spawn(async move {
        futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
            .for_each_concurrent(writers, |name| {
                let pods = pods.clone();
                let count = count.clone();
                async move {
                    let now = k8s_openapi::jiff::Timestamp::now().to_string();
                    let status = json!({"status": {"phase": "Succeeded",
                        "containerStatuses": [{"name": "c", "image": "busybox", "imageID": "", "ready": false,
                            "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed",
                                "startedAt": now, "finishedAt": now}}}]}});
                    if pods
                        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                        .await
                        .is_ok()
                    {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
            .await;
    });
    ended
}

pub(crate) async fn run(o: Options) -> anyhow::Result<()> {
    let timeout = Duration::from_secs(o.timeout_secs);
    let crate::hollow::Hollow { api, admin, cancel } = crate::hollow::start(o.nodes).await?;
    let ended = fake_kubelet(api.client().await?, o.kubelet_writers, cancel.clone());
    tokio::spawn(ferrokube_controllers::workloads::run_as(
        api.in_process_client("system:kube-controller-manager"),
        ferrokube_controllers::clients::ControllerClients::per_service_account(
            &api.in_process_client("system:kube-controller-manager"),
            |sa| api.in_process_service_account("kube-system", sa),
        ),
        cancel.clone(),
    ));
    // Let the controllers' caches fill before the clock starts.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let jobs: Api<Job> = Api::namespaced(admin.clone(), "default");
    let job: Job = serde_json::from_value(json!({
        "metadata": {"name": "bench"},
        "spec": {
            "completions": o.completions,
            "parallelism": o.parallelism,
            "template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "c", "image": "busybox"}]}}
        }
    }))?;
    let before = ferrokube_controllers::metrics::snapshot();
    let start = Instant::now();
    jobs.create(&PostParams::default(), &job).await?;
    loop {
        let j = jobs.get("bench").await?;
        let done = j
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| {
                c.iter()
                    .any(|c| c.type_ == "Complete" && c.status == "True")
            });
        if done {
            break;
        }
        anyhow::ensure!(
            start.elapsed() < timeout,
            "not complete in {timeout:?}: {:?}",
            j.status
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = start.elapsed();
    let final_status = jobs.get("bench").await?.status.unwrap_or_default();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = ferrokube_controllers::metrics::snapshot();
    cancel.cancel();
    let get = |m: &std::collections::BTreeMap<&str, ferrokube_controllers::metrics::Counts>| {
        m.get("job").map_or((0, 0), |c| (c.writes, c.reconciles))
    };
    let (w0, r0) = get(&before);
    let (w1, r1) = get(&after);
    let writes = w1.saturating_sub(w0);
    let events = Api::<Event>::namespaced(admin.clone(), "default")
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|e| {
            e.source.as_ref().and_then(|s| s.component.as_deref()) == Some("job-controller")
        })
        .count() as u64;
    let pods = Api::<Pod>::namespaced(admin, "default")
        .list(&ListParams::default())
        .await?
        .items
        .len();
    let n = f64::from(o.completions);
    // Each pod counted once: never more successes counted than pods the fake
    // kubelet ended. (The pods left may be fewer: near the end the controller
    // deletes the active pods it no longer wants, and one that ends Succeeded
    // while it terminates is counted, as Kubernetes counts it, then removed.)
    let ended_n = ended.load(Ordering::Relaxed);
    anyhow::ensure!(
        final_status.succeeded == Some(o.completions)
            && o.completions as usize <= ended_n
            && pods <= ended_n,
        "counted {:?} succeeded, {ended_n} pods ended, {pods} pods left",
        final_status.succeeded,
    );
    println!(
        "Job of {} completions, parallelism {}, over {} hollow nodes (in-process API server, scheduler and controllers; fake kubelet ends pods at once)",
        o.completions, o.parallelism, o.nodes
    );
    println!("| time to Complete | pods left | pods ended by the fake kubelet | Job controller writes/pod | of which Events/pod | writes/pod without Events | reconciles |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {:.2} s | {} | {} | {:.2} | {:.2} | {:.2} | {} |",
        took.as_secs_f64(),
        pods,
        ended.load(Ordering::Relaxed),
        writes as f64 / n,
        events as f64 / n,
        writes.saturating_sub(events) as f64 / n,
        r1.saturating_sub(r0)
    );
    Ok(())
}
