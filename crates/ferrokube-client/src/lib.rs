//! How ferrokube's components reach the API server.
//!
//! Every component (scheduler, controllers, node agent, proxy, DNS) is an
//! API client like any other: it talks to the API server over HTTPS with a
//! kubeconfig, never to the store. This crate holds what they share: a
//! client built from a kubeconfig file, Lease-based leader election,
//! decoding without managedFields, a client for an API server in the same
//! process (no TCP or TLS), and (feature `testing`) an in-process API
//! server for their tests.

pub mod balancer;
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

/// [`local_client`] sending the User-Agent `agent` (see [`user_agent`]).
#[cfg(feature = "in-process")]
pub fn local_client_as(local: ferrokube_apiserver::Local, agent: &str) -> kube::Client {
    let agent = http::HeaderValue::from_str(agent).ok();
    let service = tower::service_fn(move |mut req: http::Request<kube::client::Body>| {
        let local = local.clone();
        if let Some(agent) = &agent {
            req.headers_mut()
                .entry(http::header::USER_AGENT)
                .or_insert_with(|| agent.clone());
        }
        async move { Ok::<_, std::convert::Infallible>(local.call(req).await) }
    });
    kube::Client::new(service, "default")
}

/// The Kubernetes version the components' User-Agents name (the API
/// server's).
const KUBERNETES_VERSION: &str = "v1.33.0";

/// The User-Agent of a Kubernetes component's client, made as client-go
/// makes it (`rest.DefaultKubernetesUserAgent`, then `/<who>` as
/// `rest.AddUserAgent` adds a controller's name):
/// `<component>/<version> (<os>/<arch>) kubernetes/<commit>[/<who>]`. The
/// API server names a write without `fieldManager` by what precedes the
/// first `/`, so the component's writes show in `managedFields` as
/// Kubernetes' do (`kube-controller-manager`, `kube-scheduler`,
/// `kubelet`, ...).
pub fn user_agent(component: &str, who: Option<&str>) -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let base = format!(
        "{component}/{KUBERNETES_VERSION} ({}/{arch}) kubernetes/ferrokube",
        std::env::consts::OS
    );
    match who {
        Some(who) => format!("{base}/{who}"),
        None => base,
    }
}

/// Makes the clients of `config` send the User-Agent `agent`.
pub fn set_user_agent(config: &mut kube::Config, agent: &str) -> anyhow::Result<()> {
    let value = http::HeaderValue::from_str(agent).context("the User-Agent")?;
    config
        .headers
        .retain(|(name, _)| name != http::header::USER_AGENT);
    config.headers.push((http::header::USER_AGENT, value));
    Ok(())
}

/// A client for the cluster that the kubeconfig at `path` names.
pub async fn client_from_kubeconfig(path: &Path) -> anyhow::Result<kube::Client> {
    let config = config_from_kubeconfig(path).await?;
    kube::Client::try_from(config).context("building the API client")
}

/// [`client_from_kubeconfig`] sending the User-Agent `agent` (see
/// [`user_agent`]).
pub async fn client_from_kubeconfig_as(path: &Path, agent: &str) -> anyhow::Result<kube::Client> {
    let mut config = config_from_kubeconfig(path).await?;
    set_user_agent(&mut config, agent)?;
    kube::Client::try_from(config).context("building the API client")
}

async fn config_from_kubeconfig(path: &Path) -> anyhow::Result<kube::Config> {
    let kc = Kubeconfig::read_from(path)
        .with_context(|| format!("reading the kubeconfig {}", path.display()))?;
    kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .with_context(|| format!("loading the kubeconfig {}", path.display()))
}
