//! The hollow cluster the controller benchmarks (Job, DaemonSet) share: an
//! in-process API server with hollow nodes (Node objects only) and the
//! scheduler running over them, synced before it is handed out.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use ferrokube_client::testing::TestApi;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, PostParams};
use tokio_util::sync::CancellationToken;

/// A running hollow cluster; `cancel` stops what it started.
pub(crate) struct Hollow {
    pub api: TestApi,
    pub admin: kube::Client,
    pub cancel: CancellationToken,
}

/// Starts the API server, creates `nodes` hollow nodes and runs the
/// scheduler until its caches are synced.
pub(crate) async fn start(nodes: usize) -> anyhow::Result<Hollow> {
    let api = TestApi::start().await?;
    let admin = api.client().await?;
    let node_api: Api<Node> = Api::all(admin.clone());
    futures::stream::iter(0..nodes)
        .map(|i| {
            let node_api = node_api.clone();
            async move {
                node_api
                    .create(
                        &PostParams::default(),
                        &crate::scheduler::hollow_node(i, 10),
                    )
                    .await
                    .map(|_| ())
            }
        })
        .buffer_unordered(64)
        .try_collect::<Vec<()>>()
        .await
        .context("creating nodes")?;
    let cancel = CancellationToken::new();
    let sched = ferrokube_scheduler::Scheduler::new(
        api.in_process_client("system:kube-scheduler"),
        ferrokube_scheduler::SchedulerConfig {
            identity: "bench".into(),
            ..Default::default()
        },
    );
    let stats = sched.stats();
    tokio::spawn(sched.run(cancel.clone()));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !stats.ready.load(Ordering::Relaxed) {
        anyhow::ensure!(Instant::now() < deadline, "the scheduler did not sync");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(Hollow { api, admin, cancel })
}
