//! Leader election against a real (in-process) API server: one leader at a
//! time, and a standby takes over when the leader stops.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ferrokube_client::testing::TestApi;
use ferrokube_client::LeaderElection;
use tokio_util::sync::CancellationToken;

fn election(identity: &str) -> LeaderElection {
    let mut e = LeaderElection::new("kube-system", "test-lock", identity);
    e.lease_duration = Duration::from_secs(3);
    e.renew_deadline = Duration::from_secs(2);
    e.retry_period = Duration::from_millis(200);
    e
}

#[tokio::test]
async fn one_leader_then_failover() {
    let api = TestApi::start().await.expect("api server");
    let leading = Arc::new(AtomicUsize::new(0));
    let max_leading = Arc::new(AtomicUsize::new(0));
    let led: Arc<parking_lot_free::Names> = Default::default();
    let mut stops = Vec::new();
    let mut tasks = Vec::new();
    for id in ["a", "b"] {
        let client = api.client().await.expect("client");
        let stop = CancellationToken::new();
        let (leading, max_leading, led) = (leading.clone(), max_leading.clone(), led.clone());
        let stop2 = stop.clone();
        tasks.push(tokio::spawn(async move {
            election(id)
                .run(client, stop2, move |lead| {
                    let (leading, max_leading, led) =
                        (leading.clone(), max_leading.clone(), led.clone());
                    async move {
                        let n = leading.fetch_add(1, Ordering::SeqCst) + 1;
                        max_leading.fetch_max(n, Ordering::SeqCst);
                        led.push(id);
                        lead.cancelled().await;
                        leading.fetch_sub(1, Ordering::SeqCst);
                    }
                })
                .await
        }));
        stops.push(stop);
    }
    // Someone leads within a few retries.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while led.len() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "nobody became leader"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        led.len(),
        1,
        "leadership changed hands while the leader was healthy"
    );
    let first = led.get(0);
    // Stop the leader; the other takes over.
    let idx = if first == "a" { 0 } else { 1 };
    stops[idx].cancel();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while led.len() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the standby did not take over"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_ne!(led.get(1), first);
    assert_eq!(max_leading.load(Ordering::SeqCst), 1, "two leaders at once");
    for s in &stops {
        s.cancel();
    }
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(10), t)
            .await
            .expect("candidate stops")
            .expect("candidate task");
    }
}

mod parking_lot_free {
    use std::sync::Mutex;

    /// The identities that became leader, in order.
    #[derive(Default)]
    pub(crate) struct Names(Mutex<Vec<&'static str>>);

    impl Names {
        pub(crate) fn push(&self, n: &'static str) {
            self.0.lock().expect("lock").push(n);
        }
        pub(crate) fn len(&self) -> usize {
            self.0.lock().expect("lock").len()
        }
        pub(crate) fn get(&self, i: usize) -> &'static str {
            self.0.lock().expect("lock")[i]
        }
    }
}
