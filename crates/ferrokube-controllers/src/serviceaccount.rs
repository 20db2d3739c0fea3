//! Per-namespace defaults: the `default` ServiceAccount and the
//! `kube-root-ca.crt` ConfigMap holding the cluster CA (`ca.crt`), in every
//! namespace that is not terminating; recreated when deleted, the
//! ConfigMap put back when its CA differs.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use kube::api::{ObjectMeta, PostParams};
use kube::config::Kubeconfig;
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use kube::{Api, Client};
use tokio_util::sync::CancellationToken;

use crate::controller::{self, Action, Reconciler};
use crate::util::{self, CACHE_SYNC_TIMEOUT};
use crate::watchqueue::{Informers, Key};

/// The ServiceAccount every namespace gets.
pub const DEFAULT_SA: &str = "default";
/// The ConfigMap with the cluster CA every namespace gets.
pub const ROOT_CA_CONFIGMAP: &str = "kube-root-ca.crt";
/// Its key.
pub const ROOT_CA_KEY: &str = "ca.crt";

const RESYNC: Duration = Duration::from_secs(60);

/// The CA certificate (PEM) of the current cluster of a kubeconfig, from
/// `certificate-authority-data` or the `certificate-authority` file.
pub fn ca_pem_from_kubeconfig(path: &Path) -> anyhow::Result<String> {
    let kc = Kubeconfig::read_from(path)
        .with_context(|| format!("reading the kubeconfig {}", path.display()))?;
    let context = kc.current_context.clone().unwrap_or_default();
    let cluster_name = kc
        .contexts
        .iter()
        .find(|c| c.name == context)
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.clone());
    let cluster = kc
        .clusters
        .iter()
        .find(|c| Some(&c.name) == cluster_name.as_ref())
        .or_else(|| kc.clusters.first())
        .and_then(|c| c.cluster.as_ref())
        .context("the kubeconfig names no cluster")?;
    if let Some(data) = &cluster.certificate_authority_data {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .context("decoding certificate-authority-data")?;
        return String::from_utf8(bytes).context("certificate-authority-data is not PEM text");
    }
    if let Some(file) = &cluster.certificate_authority {
        return std::fs::read_to_string(file).with_context(|| format!("reading {file}"));
    }
    anyhow::bail!("the kubeconfig's cluster has no certificate authority")
}

/// The controller's name (kube-controller-manager's `--controllers`).
pub const NAME: &str = "serviceaccount";

/// Runs the controller until `cancel`. With an empty `ca_pem` only the
/// ServiceAccounts are kept.
pub async fn run(client: Client, ca_pem: String, cancel: CancellationToken) {
    controller::run_standalone(client.clone(), 1, |informers| {
        ServiceAccounts::new(informers, &client, &client, ca_pem, cancel)
    })
    .await;
}

/// Sets the controller up over the shared `informers` (spawn them after);
/// the future it returns runs it until `cancel`.
pub fn start(
    informers: &mut Informers,
    client: Client,
    ca_pem: String,
    cancel: CancellationToken,
) -> impl Future<Output = ()> + Send + 'static {
    start_with(informers, client.clone(), client, ca_pem, cancel)
}

/// As [`start`], creating ServiceAccounts with `accounts_client`
/// (Kubernetes' service-account-controller) and writing `kube-root-ca.crt`
/// with `ca_client` (root-ca-cert-publisher).
pub fn start_with(
    informers: &mut Informers,
    accounts_client: Client,
    ca_client: Client,
    ca_pem: String,
    cancel: CancellationToken,
) -> impl Future<Output = ()> + Send + 'static {
    let c = ServiceAccounts::new(informers, &accounts_client, &ca_client, ca_pem, cancel);
    controller::run(c, 1)
}

/// The controller: a pass over every namespace on each change.
struct ServiceAccounts {
    ctx: controller::Context,
    /// Creates the ServiceAccounts.
    client: Client,
    /// Writes `kube-root-ca.crt`.
    ca_client: Client,
    /// The CA published (empty: none).
    ca_pem: String,
    namespaces: Store<Namespace>,
    accounts: Store<ServiceAccount>,
    configmaps: Store<ConfigMap>,
}

impl ServiceAccounts {
    fn new(
        informers: &mut Informers,
        accounts_client: &Client,
        ca_client: &Client,
        ca_pem: String,
        cancel: CancellationToken,
    ) -> Arc<Self> {
        let mut ctx = controller::Context::new(NAME, cancel).sync_within(CACHE_SYNC_TIMEOUT);
        // Its own namespace informer: shared with the namespace controller,
        // namespace deletion stalled in the leader-elected test (cause not yet
        // found); namespaces are few, so the second cache costs little.
        let api = Api::<Namespace>::all(informers.client().clone());
        let namespaces = informers
            .scoped(NAME, api, watcher::Config::default())
            .pass_on_change(&mut ctx);
        let by_name = |n: &str| watcher::Config::default().fields(&format!("metadata.name={n}"));
        let api = Api::<ServiceAccount>::all(informers.client().clone());
        let accounts = informers
            .scoped(DEFAULT_SA, api, by_name(DEFAULT_SA))
            .pass_on_change(&mut ctx);
        let api = Api::<ConfigMap>::all(informers.client().clone());
        let configmaps = informers
            .scoped(ROOT_CA_CONFIGMAP, api, by_name(ROOT_CA_CONFIGMAP))
            .pass_on_change(&mut ctx);
        Arc::new(ServiceAccounts {
            client: ctx.client(accounts_client),
            ca_client: ctx.client(ca_client),
            ca_pem,
            namespaces,
            accounts,
            configmaps,
            ctx,
        })
    }
}

impl Reconciler for ServiceAccounts {
    fn context(&self) -> &controller::Context {
        &self.ctx
    }

    async fn reconcile(&self, _: &Key) -> anyhow::Result<Action> {
        let have_sa: HashSet<String> = self
            .accounts
            .state()
            .iter()
            .filter_map(|sa| sa.metadata.namespace.clone())
            .collect();
        let cms: HashMap<String, Arc<ConfigMap>> = self
            .configmaps
            .state()
            .into_iter()
            .filter_map(|cm| cm.metadata.namespace.clone().map(|ns| (ns, cm)))
            .collect();
        let mut again = None;
        for ns in self.namespaces.state() {
            let Some(name) = ns.metadata.name.as_deref() else {
                continue;
            };
            let active = ns.metadata.deletion_timestamp.is_none()
                && ns.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Terminating");
            if !active {
                continue;
            }
            if !have_sa.contains(name) {
                if let Err(e) = ensure_sa(&self.client, name).await {
                    tracing::warn!(namespace = name, error = %e, "creating the default ServiceAccount");
                    again = Some(Duration::from_secs(1));
                }
            }
            if !self.ca_pem.is_empty() {
                if let Err(e) = ensure_ca(&self.ca_client, name, &self.ca_pem, cms.get(name)).await
                {
                    tracing::warn!(namespace = name, error = %e, "publishing kube-root-ca.crt");
                    again = Some(Duration::from_secs(1));
                }
            }
        }
        Ok(Action::from(again).sooner(Action::requeue(RESYNC)))
    }

    fn error_policy(&self, _: &Key, error: &anyhow::Error, _: u32) -> Action {
        util::pass_failed(NAME, error)
    }
}

async fn ensure_sa(client: &Client, ns: &str) -> Result<(), kube::Error> {
    let sa = ServiceAccount {
        metadata: ObjectMeta {
            name: Some(DEFAULT_SA.into()),
            namespace: Some(ns.into()),
            ..ObjectMeta::default()
        },
        ..ServiceAccount::default()
    };
    match Api::<ServiceAccount>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &sa)
        .await
    {
        Ok(_) => Ok(()),
        // Exists already, or the namespace went (or began terminating).
        Err(kube::Error::Api(s)) if matches!(s.code, 409 | 403 | 404) => Ok(()),
        Err(e) => Err(e),
    }
}

async fn ensure_ca(
    client: &Client,
    ns: &str,
    ca_pem: &str,
    current: Option<&Arc<ConfigMap>>,
) -> Result<(), kube::Error> {
    let api = Api::<ConfigMap>::namespaced(client.clone(), ns);
    let data = BTreeMap::from([(ROOT_CA_KEY.to_string(), ca_pem.to_string())]);
    let annotations = BTreeMap::from([(
        "kubernetes.io/description".to_string(),
        "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.".to_string(),
    )]);
    let result = match current {
        Some(cm) if cm.data.as_ref() == Some(&data) => return Ok(()),
        Some(cm) => {
            let mut cm = (**cm).clone();
            cm.data = Some(data);
            cm.binary_data = None;
            api.replace(ROOT_CA_CONFIGMAP, &PostParams::default(), &cm)
                .await
        }
        None => {
            let cm = ConfigMap {
                metadata: ObjectMeta {
                    name: Some(ROOT_CA_CONFIGMAP.into()),
                    namespace: Some(ns.into()),
                    annotations: Some(annotations),
                    ..ObjectMeta::default()
                },
                data: Some(data),
                ..ConfigMap::default()
            };
            api.create(&PostParams::default(), &cm).await
        }
    };
    match result {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if matches!(s.code, 409 | 403 | 404) => Ok(()),
        Err(e) => Err(e),
    }
}
