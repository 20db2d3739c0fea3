//! How ferrokube's components reach the API server.
//!
//! Every component (scheduler, controllers, node agent, proxy, DNS) is an
//! API client like any other: it talks to the API server over HTTPS with a
//! kubeconfig, never to the store. This crate holds what they share: a
//! client built from a kubeconfig file, Lease-based leader election,
//! decoding without managedFields, a client for an API server in the same
//! process (no TCP or TLS), and (feature `testing`) an in-process API
//! server for their tests.

pub mod join;
mod leader;
pub mod slim;
#[cfg(feature = "testing")]
pub mod testing;
pub mod volumes;

use std::path::Path;

use anyhow::Context;
use kube::config::{KubeConfigOptions, Kubeconfig};

pub use join::client_from_join_token;
pub use leader::LeaderElection;

/// A client of the API server in this process (feature `in-process`), as
/// the identity `local` was made for: for the components `ferrokube
/// server` runs beside its API server, which then pay no TCP, TLS or HTTP
/// framing to reach it. The component is the same API client it would be
/// over HTTPS; only the transport differs.
#[cfg(feature = "in-process")]
pub fn local_client(local: ferrokube_apiserver::Local) -> kube::Client {
    let service = tower::service_fn(move |req| {
        let local = local.clone();
        async move { Ok::<_, std::convert::Infallible>(local.call(req).await) }
    });
    kube::Client::new(service, "default")
}

/// A client for the cluster that the kubeconfig at `path` names.
pub async fn client_from_kubeconfig(path: &Path) -> anyhow::Result<kube::Client> {
    let kc = Kubeconfig::read_from(path)
        .with_context(|| format!("reading the kubeconfig {}", path.display()))?;
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .with_context(|| format!("loading the kubeconfig {}", path.display()))?;
    kube::Client::try_from(config).context("building the API client")
}
