//! The store conformance suite against the embedded backend.

use std::sync::Arc;

use async_trait::async_trait;
use ferrokube_store::conformance::Harness;
use ferrokube_store::embedded::{EmbeddedOptions, EmbeddedStore};
use ferrokube_store::Store;

struct EmbeddedHarness {
    dir: tempfile::TempDir,
    open: Option<Arc<EmbeddedStore>>,
}

impl EmbeddedHarness {
    fn new() -> Self {
        EmbeddedHarness {
            dir: tempfile::tempdir().expect("temp dir"),
            open: None,
        }
    }
}

#[async_trait]
impl Harness for EmbeddedHarness {
    async fn open(&mut self) -> Arc<dyn Store> {
        let store = EmbeddedStore::open(self.dir.path(), EmbeddedOptions::default())
            .await
            .expect("open embedded store");
        self.open = Some(store.clone());
        store
    }

    async fn restart(&mut self, store: Arc<dyn Store>) -> Arc<dyn Store> {
        drop(store);
        if let Some(s) = self.open.take() {
            s.close().await;
        }
        self.open().await
    }
}

ferrokube_store::conformance_tests!(EmbeddedHarness::new());
