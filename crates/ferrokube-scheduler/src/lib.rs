//! ferrokube's scheduler: places pods that have no node on one, as
//! kube-scheduler's default profile does, through the API server only.
//!
//! - `cache`: the snapshot of nodes and the pods on them (assumed ones too);
//! - `queue`: active / backoff / unschedulable pods, priority then FIFO;
//! - `plugins`: the default profile's filters and scores, and preemption
//!   (resources and host ports);
//! - `framework`: one scheduling cycle (filter, sample, score, pick) and
//!   Kubernetes' failure summary;
//! - `scheduler`: the watches, the scheduling loop and the binders;
//! - `events`: Events and the PodScheduled condition.
//!
//! [`run`] is the entry point of `ferrokube server`: it schedules while this
//! process holds the `kube-system/kube-scheduler` Lease.
//! [`run_without_election`] is the same loop without the Lease.

mod cache;
mod events;
mod fasthash;
mod framework;
mod plugins;
mod podinfo;
mod queue;
mod resources;
mod scheduler;
mod selectors;
#[cfg(test)]
mod testutil;

use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use cache::Cache;
pub use framework::{Algorithm, FitError, Placement};
pub use podinfo::PodInfo;
pub use scheduler::{Scheduler, Stats};
pub use selectors::NodeSelectorTerms;

/// Settings of one scheduler.
#[derive(Clone, Debug)]
pub struct SchedulerConfig {
    /// Pods whose `spec.schedulerName` is this are ours.
    pub scheduler_name: String,
    /// This instance's identity for leader election and in events.
    pub identity: String,
    /// percentageOfNodesToScore; None = Kubernetes' adaptive rule.
    pub percentage_of_nodes_to_score: Option<u32>,
    /// Binding requests in flight at once.
    pub parallel_binds: usize,
    /// How long a Lease holds without renewal before another instance may
    /// take it (Kubernetes' default: 15 s).
    pub lease_duration: Duration,
    /// How long the leader keeps trying to renew before it stops
    /// scheduling (Kubernetes' default: 10 s).
    pub renew_deadline: Duration,
    /// How often an instance tries to take or renew the Lease (Kubernetes'
    /// default: 2 s).
    pub retry_period: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            scheduler_name: "default-scheduler".into(),
            identity: "ferrokube".into(),
            percentage_of_nodes_to_score: None,
            parallel_binds: 64,
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// Schedules while this process holds the `kube-system/kube-scheduler`
/// Lease, until `cancel`.
pub async fn run(client: kube::Client, config: SchedulerConfig, cancel: CancellationToken) {
    let mut election =
        ferrokube_client::LeaderElection::new("kube-system", "kube-scheduler", &config.identity);
    election.lease_duration = config.lease_duration;
    election.renew_deadline = config.renew_deadline;
    election.retry_period = config.retry_period;
    election
        .run(client.clone(), cancel, move |lead| {
            run_without_election(client.clone(), config.clone(), lead)
        })
        .await;
}

/// Schedules until `cancel`, without leader election.
pub async fn run_without_election(
    client: kube::Client,
    config: SchedulerConfig,
    cancel: CancellationToken,
) {
    Scheduler::new(client, config).run(cancel).await;
}
