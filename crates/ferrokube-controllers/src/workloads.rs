//! Starts the workload controllers (ReplicaSet, ReplicationController,
//! Deployment, Endpoints, EndpointSlice) over shared informers: one watch
//! per kind, pods watched once for all of them.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Endpoints, Pod, ReplicationController, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use tokio_util::sync::CancellationToken;

use crate::deployment::DeploymentController;
use crate::endpoints::EndpointsController;
use crate::endpointslice::EndpointSliceController;
use crate::replicaset::ReplicaController;
use crate::watchqueue::Informer;

/// Concurrent reconciles per controller (Kubernetes' default is 5).
const WORKERS: usize = 5;

/// Runs the workload controllers until `cancel`.
pub async fn run(client: kube::Client, cancel: CancellationToken) {
    let mut pods = Informer::<Pod>::new(client.clone());
    let mut replicasets = Informer::<ReplicaSet>::new(client.clone());
    let mut rcs = Informer::<ReplicationController>::new(client.clone());
    let mut deployments = Informer::<Deployment>::new(client.clone());
    let mut services = Informer::<Service>::new(client.clone());
    let mut endpoints = Informer::<Endpoints>::new(client.clone());
    let mut slices = Informer::<EndpointSlice>::new(client.clone());

    let rs_ctl =
        ReplicaController::new(client.clone(), &mut replicasets, &mut pods, cancel.clone());
    let rc_ctl = ReplicaController::new(client.clone(), &mut rcs, &mut pods, cancel.clone());
    let d_ctl = DeploymentController::new(
        client.clone(),
        &mut deployments,
        &mut replicasets,
        &mut pods,
        cancel.clone(),
    );

    let ep_ctl = EndpointsController::new(
        client.clone(),
        &mut services,
        &mut pods,
        &mut endpoints,
        cancel.clone(),
    );
    let slice_ctl = EndpointSliceController::new(
        client.clone(),
        &mut services,
        &mut pods,
        &mut slices,
        cancel.clone(),
    );
    let mut tasks = vec![
        pods.spawn(cancel.clone()),
        replicasets.spawn(cancel.clone()),
        rcs.spawn(cancel.clone()),
        deployments.spawn(cancel.clone()),
        services.spawn(cancel.clone()),
        endpoints.spawn(cancel.clone()),
        slices.spawn(cancel.clone()),
    ];
    tasks.push(tokio::spawn(rs_ctl.run(WORKERS)));
    tasks.push(tokio::spawn(rc_ctl.run(WORKERS)));
    tasks.push(tokio::spawn(d_ctl.run(WORKERS)));
    tasks.push(tokio::spawn(ep_ctl.run(WORKERS)));
    tasks.push(tokio::spawn(slice_ctl.run(WORKERS)));
    cancel.cancelled().await;
    for t in tasks {
        let _ = t.await;
    }
}
