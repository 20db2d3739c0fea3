//! Latency samples and the figures printed from them.

use std::future::Future;
use std::time::{Duration, Instant};

/// Latency samples of one measurement.
#[derive(Default)]
pub(crate) struct Samples(Vec<Duration>);

impl Samples {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Samples(Vec::with_capacity(n))
    }

    pub(crate) fn push(&mut self, d: Duration) {
        self.0.push(d);
    }

    pub(crate) fn extend(&mut self, other: Samples) {
        self.0.extend(other.0);
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// The q-quantile (0.0..=1.0), nearest rank.
    pub(crate) fn quantile(&mut self, q: f64) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        self.0.sort_unstable();
        let rank = ((q * self.0.len() as f64).ceil() as usize).clamp(1, self.0.len());
        self.0[rank - 1]
    }
}

/// Milliseconds with two decimals.
pub(crate) fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

/// Runs `op(worker, i)` from `workers` concurrent tasks, each as fast as it
/// can, for `seconds`; returns operations per second and the p50 and p99
/// latency.
pub(crate) async fn timed_load<F, Fut>(
    workers: usize,
    seconds: f64,
    op: F,
) -> anyhow::Result<(f64, Duration, Duration)>
where
    F: Fn(usize, u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let mut samples = Samples::with_capacity(1024);
            let mut i = 0u64;
            while Instant::now() < deadline {
                let t = Instant::now();
                op(w, i).await?;
                samples.push(t.elapsed());
                i += 1;
            }
            anyhow::Ok(samples)
        }));
    }
    let mut all = Samples::default();
    for t in tasks {
        all.extend(t.await??);
    }
    let rate = all.len() as f64 / start.elapsed().as_secs_f64();
    Ok((rate, all.quantile(0.5), all.quantile(0.99)))
}
