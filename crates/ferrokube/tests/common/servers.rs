//! Two `ferrokube server` processes on one etcd: a highly available control
//! plane on this machine, as k3s runs one with an external datastore.
//!
//! The second server shares the first's cluster secrets: the files
//! [`SHARED_FILES`] under the data dir (the cluster CA, the request-header
//! CA, the service-account signing key and the join token) are copied into
//! its data dir before it starts, which is what an operator does by hand
//! for a second server on the same datastore (k3s keeps the same files in
//! its datastore, encrypted with the token). Everything else (serving
//! certificate, admin credentials, kubeconfig) each server makes itself,
//! signed by the shared CA, so either one's kubeconfig works with both.

use std::path::Path;

use ferrokube_store::testing::EtcdCluster;

use super::{free_port, Cluster};

/// What a second server copies from the first's data dir.
pub(crate) const SHARED_FILES: &[&str] = &[
    "tls/ca.crt",
    "tls/ca.key",
    "tls/request-header-ca.crt",
    "tls/request-header-ca.key",
    "tls/service-account.key",
    "token",
];

/// Two servers on one etcd. Dropped in order: the servers, then etcd.
pub(crate) struct TwoServers {
    /// The first started (it made the cluster's secrets), then the second.
    pub servers: Vec<Cluster>,
    pub etcd: EtcdCluster,
}

impl TwoServers {
    /// Starts etcd, a first server with `first` flags, then a second one
    /// with its secrets and `second` flags (both get `--datastore-endpoint`
    /// and `--disable-agent --disable coredns`, as [`Cluster::start_with`]);
    /// returns once both are ready.
    pub(crate) fn start(first: &[&str], second: &[&str]) -> TwoServers {
        let etcd = EtcdCluster::start().expect("start etcd");
        let endpoint = etcd.endpoint();
        let with_etcd = |extra: &[&str]| -> Vec<String> {
            let mut args = vec!["--datastore-endpoint".to_string(), endpoint.clone()];
            args.extend(extra.iter().map(|s| s.to_string()));
            args
        };
        let a = Cluster::start_with(
            &with_etcd(first)
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        );
        let b = Cluster::start_sharing(&a, &with_etcd(second));
        TwoServers {
            servers: vec![a, b],
            etcd,
        }
    }

    /// The servers' URLs, comma-separated, as an agent's `--server` takes them.
    pub(crate) fn urls(&self) -> String {
        self.servers
            .iter()
            .map(|s| format!("https://127.0.0.1:{}", s.port))
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl Cluster {
    /// Starts a server (without a node) whose data dir first receives the
    /// cluster secrets of `first` ([`SHARED_FILES`]), with `extra` flags;
    /// `extra` should name the same datastore as `first`.
    pub(crate) fn start_sharing(first: &Cluster, extra: &[String]) -> Cluster {
        let data_dir = tempfile::Builder::new()
            .prefix("ferrokube-e2e")
            .tempdir()
            .expect("temp dir");
        copy_shared(first.data_dir(), data_dir.path());
        let mut cluster = Cluster {
            child: None,
            data_dir,
            port: free_port(),
            extra_args: extra.to_vec(),
            node: false,
            keep_proxy_rules: false,
            netns_before: std::collections::BTreeSet::new(),
        };
        cluster.spawn();
        cluster
    }
}

/// Copies [`SHARED_FILES`] from one data dir to another (keys stay 0600).
pub(crate) fn copy_shared(from: &Path, to: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(to.join("tls")).expect("tls dir");
    std::fs::set_permissions(to.join("tls"), std::fs::Permissions::from_mode(0o700))
        .expect("tls dir mode");
    for f in SHARED_FILES {
        std::fs::copy(from.join(f), to.join(f))
            .unwrap_or_else(|e| panic!("copying {f} to the second server: {e}"));
    }
}
