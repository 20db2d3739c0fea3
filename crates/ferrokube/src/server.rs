//! `ferrokube server`: the control plane of a cluster in one process.

use std::time::Duration;

use anyhow::Context;
use ferrokube_store::Compactor;
use tokio_util::sync::CancellationToken;

use ferrokube_apiserver::ServerConfig;

use crate::cli::ServerArgs;
use crate::components::Components;
use crate::datastore::Datastore;

pub(crate) async fn run(args: ServerArgs) -> anyhow::Result<()> {
    // Signals are caught from the start, so one that arrives while the
    // server is still starting stops it cleanly once it is up.
    let shutdown = shutdown_signal()?;
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating the data dir {}", args.data_dir.display()))?;
    let datastore = Datastore::open(&args.data_dir, &args.datastore_endpoint).await?;
    let cancel = CancellationToken::new();
    let compactor = Compactor::spawn(
        datastore.store(),
        Duration::from_secs(args.compaction_interval_seconds.max(1)),
        cancel.child_token(),
    );
    let node_name =
        crate::identity::node_name(args.node_name.as_deref(), &args.node, &args.data_dir)?;
    let config = ServerConfig {
        data_dir: args.data_dir.clone(),
        bind_address: args.bind_address,
        port: args.https_listen_port,
        write_kubeconfig: args.write_kubeconfig.clone(),
        node_name: node_name.clone(),
        service_cidr: args.service_cidr.clone(),
        max_in_flight: args.max_requests_inflight,
        max_mutating_in_flight: args.max_mutating_requests_inflight,
        authorization_modes: args.authorization_mode.0.clone(),
        admission_control_config_file: args.admission_control_config_file.clone(),
        tls_san: args.tls_san.clone(),
        node_cert_lifetime: args.cluster_signing_duration,
        dashboard: args.dashboard_enabled(),
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
    let metrics = if args.metrics_enabled() {
        api.start_resource_metrics(args.metric_resolution, cancel.child_token())
            .await
            .map(drop)
    } else {
        Ok(())
    };
    if let Err(e) = metrics {
        cancel.cancel();
        api.join().await;
        compactor.join().await;
        datastore.close().await;
        return Err(e);
    }
    let components = match Components::start(&args, &node_name, &api).await {
        Ok(c) => c,
        Err(e) => {
            cancel.cancel();
            api.join().await;
            compactor.join().await;
            datastore.close().await;
            return Err(e);
        }
    };
    tracing::info!(address = %api.addr, kubeconfig = %api.kubeconfig.display(), "ferrokube server is up");

    shutdown.await;
    tracing::info!("shutting down");
    components.stop().await;
    cancel.cancel();
    api.join().await;
    compactor.join().await;
    datastore.close().await;
    Ok(())
}

/// Registers SIGINT and SIGTERM handlers now; the future resolves on either.
pub(crate) fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

/// The host's name, for the node name and the serving certificate.
pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}
