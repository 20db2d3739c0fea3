//! The store conformance suite against the etcd backend, each test on a real
//! etcd member of its own (so each has its own revision sequence).

use std::sync::Arc;

use async_trait::async_trait;
use ferrokube_store::conformance::Harness;
use ferrokube_store::etcd::{EtcdOptions, EtcdStore};
use ferrokube_store::testing::EtcdProcess;
use ferrokube_store::Store;

struct EtcdHarness {
    etcd: EtcdProcess,
}

impl EtcdHarness {
    fn start() -> Self {
        EtcdHarness {
            etcd: EtcdProcess::start().expect("start etcd"),
        }
    }
}

#[async_trait]
impl Harness for EtcdHarness {
    async fn open(&mut self) -> Arc<dyn Store> {
        let store = EtcdStore::connect(&[self.etcd.endpoint()], EtcdOptions::default())
            .await
            .expect("connect to etcd");
        Arc::new(store)
    }

    /// Restarts the etcd member itself on its data, then reconnects.
    async fn restart(&mut self, store: Arc<dyn Store>) -> Arc<dyn Store> {
        drop(store);
        self.etcd.restart().expect("restart etcd");
        self.open().await
    }
}

ferrokube_store::conformance_tests!(EtcdHarness::start());
