//! Leader election through a `coordination.k8s.io/v1` Lease, as client-go's
//! `leaderelection` package does it.
//!
//! A candidate takes the Lease when nobody holds it or when the holder has
//! not renewed it for `lease_duration` *as observed locally* (the time the
//! candidate last saw the Lease change, not the holder's clock), renews it
//! every `retry_period` while it leads, and gives up leading when it could
//! not renew for `renew_deadline`. Every write is guarded by the Lease's
//! resourceVersion, so two candidates never both win. On shutdown the leader
//! releases the Lease so a standby takes over at once.

use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use kube::Client;
use tokio_util::sync::CancellationToken;

/// One candidate for one Lease.
#[derive(Clone, Debug)]
pub struct LeaderElection {
    /// The Lease's namespace.
    pub namespace: String,
    /// The Lease's name.
    pub name: String,
    /// This candidate's identity (unique among candidates).
    pub identity: String,
    /// How long a held Lease stays valid without renewal.
    pub lease_duration: Duration,
    /// How long the leader keeps trying to renew before it gives up leading.
    pub renew_deadline: Duration,
    /// How often candidates try to acquire or renew.
    pub retry_period: Duration,
}

impl LeaderElection {
    /// Kubernetes' defaults: 15 s lease, 10 s renew deadline, 2 s retry.
    pub fn new(namespace: &str, name: &str, identity: &str) -> Self {
        LeaderElection {
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }

    /// Runs `work` whenever this candidate leads, until `shutdown`.
    ///
    /// `work` gets a token that is cancelled when leadership is lost (or at
    /// shutdown); it should return soon after. When leadership is lost the
    /// candidate goes back to waiting for the Lease.
    pub async fn run<F, Fut>(&self, client: Client, shutdown: CancellationToken, mut work: F)
    where
        F: FnMut(CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let api: Api<Lease> = Api::namespaced(client, &self.namespace);
        let mut observed = Observed::default();
        loop {
            // Wait to acquire.
            loop {
                match self.try_acquire_or_renew(&api, &mut observed).await {
                    Ok(true) => break,
                    Ok(false) => {}
                    Err(e) => {
                        tracing::debug!(lease = %self.name, error = %e, "leader election: acquire failed")
                    }
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(self.retry_period) => {}
                }
            }
            tracing::info!(lease = %self.name, identity = %self.identity, "became leader");
            let lead = shutdown.child_token();
            let task = tokio::spawn(work(lead.clone()));
            let mut last_renew = Instant::now();
            let stopped = loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break true,
                    _ = tokio::time::sleep(self.retry_period) => {}
                }
                match self.try_acquire_or_renew(&api, &mut observed).await {
                    Ok(true) => last_renew = Instant::now(),
                    Ok(false) => break false,
                    Err(e) => {
                        tracing::warn!(lease = %self.name, error = %e, "leader election: renew failed");
                        if last_renew.elapsed() >= self.renew_deadline {
                            break false;
                        }
                    }
                }
            };
            lead.cancel();
            let _ = task.await;
            if stopped {
                self.release(&api).await;
                return;
            }
            tracing::warn!(lease = %self.name, identity = %self.identity, "lost leadership");
        }
    }

    /// One attempt: true when this candidate holds the Lease afterwards.
    async fn try_acquire_or_renew(
        &self,
        api: &Api<Lease>,
        observed: &mut Observed,
    ) -> kube::Result<bool> {
        let now = MicroTime(jiff::Timestamp::now());
        let secs = self.lease_duration.as_secs().clamp(1, i32::MAX as u64) as i32;
        let current = match api.get_opt(&self.name).await? {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        namespace: Some(self.namespace.clone()),
                        ..Default::default()
                    },
                    spec: Some(LeaseSpec {
                        holder_identity: Some(self.identity.clone()),
                        lease_duration_seconds: Some(secs),
                        acquire_time: Some(now.clone()),
                        renew_time: Some(now),
                        lease_transitions: Some(0),
                        ..Default::default()
                    }),
                };
                return match api.create(&PostParams::default(), &lease).await {
                    Ok(_) => Ok(true),
                    Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                    Err(e) => Err(e),
                };
            }
            Some(l) => l,
        };
        let spec = current.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        // Track when the Lease last changed, by our own clock.
        let rv = current.metadata.resource_version.clone();
        if observed.resource_version != rv {
            observed.resource_version = rv;
            observed.at = Instant::now();
        }
        let held_by_other = !holder.is_empty() && holder != self.identity;
        let duration = Duration::from_secs(spec.lease_duration_seconds.unwrap_or(15).max(1) as u64);
        if held_by_other && observed.at.elapsed() < duration {
            return Ok(false);
        }
        let mut lease = current;
        let mut new_spec = spec.clone();
        if holder != self.identity {
            new_spec.acquire_time = Some(now.clone());
            new_spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        new_spec.holder_identity = Some(self.identity.clone());
        new_spec.lease_duration_seconds = Some(secs);
        new_spec.renew_time = Some(now);
        lease.spec = Some(new_spec);
        match api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(l) => {
                observed.resource_version = l.metadata.resource_version;
                observed.at = Instant::now();
                Ok(true)
            }
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Gives the Lease up so a standby need not wait for it to expire.
    async fn release(&self, api: &Api<Lease>) {
        let Ok(Some(mut lease)) = api.get_opt(&self.name).await else {
            return;
        };
        let Some(spec) = lease.spec.as_mut() else {
            return;
        };
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(jiff::Timestamp::now()));
        if let Err(e) = api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            tracing::debug!(lease = %self.name, error = %e, "leader election: release failed");
        }
    }
}

/// What this candidate last saw of the Lease.
struct Observed {
    resource_version: Option<String>,
    at: Instant,
}

impl Default for Observed {
    fn default() -> Self {
        Observed {
            resource_version: None,
            at: Instant::now(),
        }
    }
}
