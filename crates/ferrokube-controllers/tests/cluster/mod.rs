//! Shared by the cluster controllers' tests: a test API server, a
//! controller running on it until the guard drops, and bounded waits.
#![allow(dead_code, reason = "each test binary uses a part of these helpers")]

use std::future::Future;

use ferrokube_client::testing::TestApi;
use tokio_util::sync::CancellationToken;

/// Cancels what it guards when dropped.
pub(crate) struct Running(pub CancellationToken);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// A test API server and an admin client.
pub(crate) async fn api() -> (TestApi, kube::Client) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let api = TestApi::start().await.expect("test api server");
    let client = api.client().await.expect("client");
    (api, client)
}

/// Spawns `f(cancel)` and returns its guard.
pub(crate) fn spawn<F, Fut>(f: F) -> Running
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let cancel = CancellationToken::new();
    tokio::spawn(f(cancel.clone()));
    Running(cancel)
}
