//! The components `ferrokube server` runs beside the API server: each an
//! API client of it over loopback HTTPS with the admin kubeconfig, as in
//! k3s, and each stopped before the API server on shutdown.

use std::path::Path;

use anyhow::Context;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::cli::ServerArgs;

/// The running components.
pub struct Components {
    cancel: CancellationToken,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
}

impl Components {
    /// Starts what `args` enables, talking to the API server through the
    /// kubeconfig at `kubeconfig`.
    pub async fn start(
        args: &ServerArgs,
        node_name: &str,
        kubeconfig: &Path,
    ) -> anyhow::Result<Components> {
        let client = ferrokube_client::client_from_kubeconfig(kubeconfig)
            .await
            .context("building the components' API client")?;
        let cancel = CancellationToken::new();
        let mut tasks = Vec::new();
        if !args.disable_controller_manager {
            let config = ferrokube_controllers::ControllerConfig {
                identity: format!("{node_name}_{}", std::process::id()),
                cluster_cidr: args.cluster_cidr.clone(),
                ca_pem: ferrokube_controllers::serviceaccount::ca_pem_from_kubeconfig(kubeconfig)
                    .context("reading the cluster CA for kube-root-ca.crt")?,
                ..Default::default()
            };
            let (client, cancel) = (client.clone(), cancel.child_token());
            tasks.push((
                "controller-manager",
                tokio::spawn(ferrokube_controllers::run(client, config, cancel)),
            ));
        }
        Ok(Components { cancel, tasks })
    }

    /// Stops every component and waits for it.
    pub async fn stop(self) {
        self.cancel.cancel();
        for (name, task) in self.tasks {
            if let Err(e) = task.await {
                tracing::warn!(component = name, error = %e, "component task failed");
            }
        }
    }
}
