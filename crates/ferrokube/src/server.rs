//! `ferrokube server`: the control plane of a cluster in one process.

use std::time::Duration;

use anyhow::Context;
use ferrokube_store::Compactor;
use tokio_util::sync::CancellationToken;

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

    shutdown_signal().await;
    tracing::info!("shutting down");
    cancel.cancel();
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
