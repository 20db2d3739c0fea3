//! Waiting for the cluster to get somewhere: the one polling helper of the
//! tests and benchmarks. Every wait is bounded in time; a wait that runs out
//! says what it was waiting for.

use std::future::Future;
use std::time::{Duration, Instant};

/// How often the waits below look again unless told otherwise.
pub const EVERY: Duration = Duration::from_millis(100);

/// Calls `check` every `every` until it gives `Some`, for at most `within`.
/// Gives the value and how long it took, or `None` when time ran out (the
/// last call starts before the deadline).
pub async fn poll<T, F, Fut>(
    within: Duration,
    every: Duration,
    mut check: F,
) -> Option<(T, Duration)>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return Some((v, start.elapsed()));
        }
        if start.elapsed() >= within {
            return None;
        }
        tokio::time::sleep(every).await;
    }
}

/// [`poll`] every [`EVERY`] for a test: the value `check` gives, or a panic
/// naming `what` once `within` has passed.
pub async fn wait_for<T, F, Fut>(what: &str, within: Duration, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    match poll(within, EVERY, check).await {
        Some((v, _)) => v,
        None => panic!("timed out after {within:?} waiting for {what}"),
    }
}

/// The blocking form of [`wait_for`], for tests that drive the cluster with
/// commands rather than a client: polls `holds` every `every` until it is
/// true; panics naming `what` once `within` has passed.
pub fn wait_until_blocking(
    what: &str,
    within: Duration,
    every: Duration,
    mut holds: impl FnMut() -> bool,
) {
    let start = Instant::now();
    while !holds() {
        assert!(
            start.elapsed() < within,
            "timed out after {within:?} waiting for {what}"
        );
        std::thread::sleep(every);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn poll_gives_the_first_value_and_gives_up_in_time() {
        let mut n = 0;
        let got = poll(Duration::from_secs(5), Duration::from_millis(1), || {
            n += 1;
            let v = (n == 3).then_some(n);
            async move { v }
        })
        .await;
        assert_eq!(got.map(|(v, _)| v), Some(3));

        let start = Instant::now();
        let none = poll(
            Duration::from_millis(50),
            Duration::from_millis(10),
            || async { None::<()> },
        )
        .await;
        assert!(none.is_none());
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test]
    #[should_panic(expected = "waiting for the moon")]
    async fn wait_for_names_what_never_came() {
        wait_for("the moon", Duration::from_millis(20), || async {
            None::<()>
        })
        .await;
    }

    #[test]
    #[should_panic(expected = "waiting for nothing")]
    fn blocking_wait_names_what_never_held() {
        wait_until_blocking(
            "nothing",
            Duration::from_millis(20),
            Duration::from_millis(5),
            || false,
        );
    }
}
