//! `ferrokube server`: the control plane of a cluster in one process.

use std::time::Duration;

use anyhow::Context;
use ferrokube_store::Compactor;
use tokio_util::sync::CancellationToken;

use ferrokube_apiserver::ServerConfig;

use crate::cli::ServerArgs;
use crate::datastore::Datastore;

pub async fn run(args: ServerArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating the data dir {}", args.data_dir.display()))?;
    let datastore = Datastore::open(&args.data_dir, &args.datastore_endpoint).await?;
    let cancel = CancellationToken::new();
    let compactor = Compactor::spawn(
        datastore.store(),
        Duration::from_secs(args.compaction_interval_seconds.max(1)),
        cancel.child_token(),
    );
    let node_name = args.node_name.clone().unwrap_or_else(hostname);
    let config = ServerConfig {
        data_dir: args.data_dir.clone(),
        bind_address: args.bind_address,
        port: args.https_listen_port,
        write_kubeconfig: args.write_kubeconfig.clone(),
        node_name,
        service_cidr: args.service_cidr.clone(),
        max_in_flight: args.max_requests_inflight,
    };
    let api =
        match ferrokube_apiserver::start(config, datastore.store(), cancel.child_token()).await {
            Ok(api) => api,
            Err(e) => {
                cancel.cancel();
                compactor.join().await;
                datastore.close().await;
                return Err(e.context("starting the API server"));
            }
        };
    tracing::info!(address = %api.addr, kubeconfig = %api.kubeconfig.display(), "ferrokube server is up");

    shutdown_signal().await;
    tracing::info!("shutting down");
    cancel.cancel();
    api.join().await;
    compactor.join().await;
    datastore.close().await;
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

/// The host's name, for the node name and the serving certificate.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}
