//! Chooses and opens the datastore: the embedded store under the data dir by
//! default, a real etcd cluster with `--datastore-endpoint`.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use ferrokube_store::embedded::{EmbeddedOptions, EmbeddedStore};
use ferrokube_store::etcd::{EtcdOptions, EtcdStore};
use ferrokube_store::Store;

/// An open datastore and how to close it.
pub(crate) enum Datastore {
    Embedded(Arc<EmbeddedStore>),
    Etcd(Arc<EtcdStore>),
}

impl Datastore {
    pub(crate) async fn open(data_dir: &Path, endpoints: &[String]) -> anyhow::Result<Self> {
        if endpoints.is_empty() {
            let dir = data_dir.join("db");
            let store = EmbeddedStore::open(&dir, EmbeddedOptions::default())
                .await
                .with_context(|| format!("opening the embedded datastore in {}", dir.display()))?;
            tracing::info!(dir = %dir.display(), "datastore: embedded");
            Ok(Datastore::Embedded(store))
        } else {
            let store = EtcdStore::connect(endpoints, EtcdOptions::default())
                .await
                .with_context(|| format!("connecting to etcd at {}", endpoints.join(",")))?;
            tracing::info!(endpoints = %endpoints.join(","), "datastore: etcd");
            Ok(Datastore::Etcd(Arc::new(store)))
        }
    }

    pub(crate) fn store(&self) -> Arc<dyn Store> {
        match self {
            Datastore::Embedded(s) => s.clone(),
            Datastore::Etcd(s) => s.clone(),
        }
    }

    /// Flushes and releases the datastore.
    pub(crate) async fn close(self) {
        if let Datastore::Embedded(s) = self {
            s.close().await;
        }
    }
}
