//! Starts the workload controllers (ReplicaSet, ReplicationController,
//! Deployment, DaemonSet, StatefulSet, Endpoints, EndpointSlice, Job,
//! TTL-after-finished, CronJob, disruption budgets) over shared informers: one
//! watch
//! per kind, pods watched once for all of them.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::ReplicationController;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::controller;
use crate::cronjob::CronJobController;
use crate::daemonset::DaemonSetController;
use crate::deployment::DeploymentController;
use crate::disruption::{DisruptionController, StaleConditions};
use crate::endpoints::EndpointsController;
use crate::endpointslice::EndpointSliceController;
use crate::job::JobController;
use crate::replicaset::ReplicaController;
use crate::statefulset::StatefulSetController;
use crate::ttlafterfinished::TtlAfterFinishedController;
use crate::watchqueue::Informers;

/// Concurrent reconciles per controller (Kubernetes' default is 5).
const WORKERS: usize = 5;

/// Runs the workload controllers until `cancel`.
pub async fn run(client: kube::Client, cancel: CancellationToken) {
    let mut informers = Informers::new(client.clone());
    let mut tasks = start(&mut informers, &client, &cancel);
    tasks.extend(informers.spawn(&cancel));
    cancel.cancelled().await;
    for t in tasks {
        let _ = t.await;
    }
}

/// Runs the workload controllers until `cancel`, the informers with
/// `client` (the controller manager's) and each controller with its own
/// client from `clients`.
pub async fn run_as(
    client: kube::Client,
    clients: crate::clients::ControllerClients,
    cancel: CancellationToken,
) {
    let mut informers = Informers::new(client.clone());
    let client_for = |sa: &str| clients.client(&client, sa);
    let mut tasks = start_with(&mut informers, &client_for, &cancel);
    tasks.extend(informers.spawn(&cancel));
    cancel.cancelled().await;
    for t in tasks {
        let _ = t.await;
    }
}

/// Sets the workload controllers up over `informers` and starts them (they
/// wait for the informers, which the caller spawns after).
pub fn start(
    informers: &mut Informers,
    client: &kube::Client,
    cancel: &CancellationToken,
) -> Vec<JoinHandle<()>> {
    start_with(informers, &|_| client.clone(), cancel)
}

/// As [`start`], each controller writing with the client `client_for`
/// gives for its service account's name (see [`crate::clients`]).
pub fn start_with(
    informers: &mut Informers,
    client_for: &dyn Fn(&str) -> kube::Client,
    cancel: &CancellationToken,
) -> Vec<JoinHandle<()>> {
    let (c, k) = (client_for, cancel.clone());
    let rs = ReplicaController::<ReplicaSet>::new(c("replicaset-controller"), informers, k.clone());
    let rc = ReplicaController::<ReplicationController>::new(
        c("replication-controller"),
        informers,
        k.clone(),
    );
    let d = DeploymentController::new(c("deployment-controller"), informers, k.clone());
    let sts = StatefulSetController::new(c("statefulset-controller"), informers, k.clone());
    let ds = DaemonSetController::new(c("daemon-set-controller"), informers, k.clone());
    let ep = EndpointsController::new(c("endpoint-controller"), informers, k.clone());
    let slices = EndpointSliceController::new(c("endpointslice-controller"), informers, k.clone());
    let jobs = JobController::new(c("job-controller"), informers, k.clone());
    let ttl =
        TtlAfterFinishedController::new(c("ttl-after-finished-controller"), informers, k.clone());
    let cron = CronJobController::new(c("cronjob-controller"), informers, k.clone());
    let pdb = DisruptionController::new(c("disruption-controller"), informers, k);
    vec![
        tokio::spawn(controller::run(Arc::new(StaleConditions(pdb.clone())), 1)),
        tokio::spawn(controller::run(pdb, WORKERS)),
        tokio::spawn(controller::run(rs, WORKERS)),
        tokio::spawn(controller::run(rc, WORKERS)),
        tokio::spawn(controller::run(d, WORKERS)),
        tokio::spawn(controller::run(sts, WORKERS)),
        tokio::spawn(controller::run(ds, WORKERS)),
        tokio::spawn(controller::run(ep, WORKERS)),
        tokio::spawn(controller::run(slices, WORKERS)),
        tokio::spawn(jobs.run(WORKERS)),
        tokio::spawn(controller::run(ttl, WORKERS)),
        tokio::spawn(controller::run(cron, WORKERS)),
    ]
}
