//! Which identity each controller acts under. As kube-controller-manager
//! with `--use-service-account-credentials`, the shared informers and the
//! leader election use the controller manager's own client
//! (`system:kube-controller-manager`, which may list and watch everything),
//! while each controller writes with a client of its own service account
//! `kube-system/<name>`, bound to `system:controller:<name>` by the
//! bootstrap policy.

use std::sync::Arc;

use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, PostParams};

/// The service accounts of the controllers ferrokube runs (Kubernetes'
/// names).
pub const SERVICE_ACCOUNTS: &[&str] = &[
    "certificate-controller",
    "clusterrole-aggregation-controller",
    "cronjob-controller",
    "daemon-set-controller",
    "deployment-controller",
    "disruption-controller",
    "endpoint-controller",
    "endpointslice-controller",
    "flowschema-status-controller",
    "generic-garbage-collector",
    "horizontal-pod-autoscaler",
    "job-controller",
    "namespace-controller",
    "node-controller",
    "persistent-volume-binder",
    "pod-garbage-collector",
    "pv-protection-controller",
    "pvc-protection-controller",
    "replicaset-controller",
    "replication-controller",
    "resourcequota-controller",
    "root-ca-cert-publisher",
    "service-account-controller",
    "service-controller",
    "statefulset-controller",
    "ttl-after-finished-controller",
];

/// The namespace of the controllers' service accounts.
pub const NAMESPACE: &str = "kube-system";

/// A client per controller service account.
pub type ClientFor = Arc<dyn Fn(&str) -> kube::Client + Send + Sync>;

/// How the controllers reach the API server: all with the controller
/// manager's client (the default), or each with its service account's.
#[derive(Clone, Default)]
pub struct ControllerClients {
    per_controller: Option<ClientFor>,
}

impl std::fmt::Debug for ControllerClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControllerClients")
            .field("per_controller", &self.per_controller.is_some())
            .finish()
    }
}

impl ControllerClients {
    /// Each controller with the client `f` gives for its service account's
    /// name.
    pub fn per_controller(f: impl Fn(&str) -> kube::Client + Send + Sync + 'static) -> Self {
        ControllerClients {
            per_controller: Some(Arc::new(f)),
        }
    }

    /// Each controller with a client `make` gives for its service
    /// account's name, made once for every name of [`SERVICE_ACCOUNTS`]
    /// (a name not there gets `root`).
    pub fn per_service_account(root: &kube::Client, make: impl Fn(&str) -> kube::Client) -> Self {
        let made: std::collections::HashMap<String, kube::Client> = SERVICE_ACCOUNTS
            .iter()
            .map(|sa| (sa.to_string(), make(sa)))
            .collect();
        let root = root.clone();
        ControllerClients::per_controller(move |sa| {
            made.get(sa).cloned().unwrap_or_else(|| {
                tracing::warn!(
                    service_account = sa,
                    "a controller without a client of its own"
                );
                root.clone()
            })
        })
    }

    /// The client of the controller whose service account is `sa`
    /// (`root`, the controller manager's, unless set per controller).
    pub fn client(&self, root: &kube::Client, sa: &str) -> kube::Client {
        match &self.per_controller {
            Some(f) => f(sa),
            None => root.clone(),
        }
    }
}

/// The user name of the service account `kube-system/<sa>`.
pub fn user_name(sa: &str) -> String {
    format!("system:serviceaccount:{NAMESPACE}:{sa}")
}

/// The groups a service account of `kube-system` is in (besides
/// `system:authenticated`).
pub fn groups() -> [String; 2] {
    [
        "system:serviceaccounts".to_string(),
        format!("system:serviceaccounts:{NAMESPACE}"),
    ]
}

/// Creates the controllers' service accounts that do not exist yet.
pub async fn ensure_service_accounts(client: &kube::Client) -> anyhow::Result<()> {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), NAMESPACE);
    for sa in SERVICE_ACCOUNTS {
        if api.get_opt(sa).await?.is_some() {
            continue;
        }
        let obj: ServiceAccount =
            serde_json::from_value(serde_json::json!({"metadata": {"name": sa}}))?;
        match api.create(&PostParams::default(), &obj).await {
            Ok(_) => tracing::info!(
                service_account = sa,
                "created a controller's service account"
            ),
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(anyhow::anyhow!("creating the service account {sa}: {e}")),
        }
    }
    Ok(())
}
