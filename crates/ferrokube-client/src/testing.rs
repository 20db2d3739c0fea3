//! An API server in this process, on the embedded store in a temporary
//! directory, for components' tests: real HTTPS, real authentication, the
//! same code as `ferrokube server`, and nothing to clean up but the value.

pub mod https;
pub mod wait;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use ferrokube_apiserver::ServerConfig;
use ferrokube_store::embedded::{EmbeddedOptions, EmbeddedStore};
use tokio_util::sync::CancellationToken;

/// A running in-process API server. Dropping it stops the server.
pub struct TestApi {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// An admin kubeconfig for it.
    pub kubeconfig: PathBuf,
    /// Its data directory, removed when dropped.
    pub dir: tempfile::TempDir,
    cancel: CancellationToken,
    store: Arc<EmbeddedStore>,
    server: ferrokube_apiserver::RunningServer,
}

impl TestApi {
    /// Starts a server on a free loopback port, authorizing as `ferrokube
    /// server` does by default (`Node,RBAC`).
    pub async fn start() -> anyhow::Result<TestApi> {
        Self::start_configured(|_| {}).await
    }

    /// Starts a server on a free loopback port that authorizes with
    /// `modes` (after `system:masters`, as `--authorization-mode`).
    pub async fn start_with_authorization(
        modes: &[ferrokube_apiserver::authz::Mode],
    ) -> anyhow::Result<TestApi> {
        Self::start_configured(|c| c.authorization_modes = modes.to_vec()).await
    }

    /// Starts a server on a free loopback port with the defaults of
    /// [`TestApi::start`] changed by `configure` (e.g. a short
    /// `node_cert_lifetime`, to test renewal).
    pub async fn start_configured(
        configure: impl FnOnce(&mut ServerConfig),
    ) -> anyhow::Result<TestApi> {
        let dir = tempfile::tempdir()?;
        let store = EmbeddedStore::open(&dir.path().join("db"), EmbeddedOptions::default())
            .await
            .map_err(|e| anyhow::anyhow!("opening the store: {e}"))?;
        let cancel = CancellationToken::new();
        let mut config = ServerConfig::for_tests(dir.path().to_path_buf());
        configure(&mut config);
        let api = ferrokube_apiserver::start(config, store.clone(), cancel.child_token()).await?;
        Ok(TestApi {
            addr: api.addr,
            kubeconfig: api.kubeconfig.clone(),
            dir,
            cancel,
            store,
            server: api,
        })
    }

    /// A new admin client.
    pub async fn client(&self) -> anyhow::Result<kube::Client> {
        crate::client_from_kubeconfig(&self.kubeconfig).await
    }

    /// A client that reaches the server inside this process as the user
    /// `name` (group `system:authenticated`), with no TCP or TLS: how
    /// `ferrokube server` connects the components it runs beside its API
    /// server.
    pub fn in_process_client(&self, name: &str) -> kube::Client {
        self.in_process_client_in(name, &[])
    }

    /// As [`TestApi::in_process_client`], the user also in `groups`.
    pub fn in_process_client_in(&self, name: &str, groups: &[&str]) -> kube::Client {
        let user =
            ferrokube_apiserver::authn::UserInfo::authenticated(name, groups.iter().copied());
        crate::local_client(self.server.local(user))
    }

    /// A client inside this process as the service account `ns/name`
    /// (its groups `system:serviceaccounts` and
    /// `system:serviceaccounts:<ns>`), as `ferrokube server` runs each
    /// controller.
    pub fn in_process_service_account(&self, ns: &str, name: &str) -> kube::Client {
        self.in_process_client_in(
            &format!("system:serviceaccount:{ns}:{name}"),
            &[
                "system:serviceaccounts",
                &format!("system:serviceaccounts:{ns}"),
            ],
        )
    }

    /// The kinds the server serves, for tests that add or remove one while
    /// it runs (as a CustomResourceDefinition does).
    pub fn kinds(&self) -> &ferrokube_apiserver::served::Kinds {
        self.server.kinds()
    }

    /// The store under the server (for tests that check what was written).
    pub fn store(&self) -> Arc<EmbeddedStore> {
        self.store.clone()
    }
}

impl Drop for TestApi {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}
