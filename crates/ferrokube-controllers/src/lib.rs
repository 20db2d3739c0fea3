//! ferrokube's controller manager.
//!
//! Each controller is a module holding one level-triggered, idempotent
//! reconcile over informer caches, so a restart or a missed event never
//! confuses it: it always works from what is, not from what happened. The
//! caches are kube-runtime reflectors, one per kind shared by every
//! controller ([`watchqueue::Informers`]); every controller has the shape
//! of kube-rs' `Controller` ([`controller::Reconciler`]: a reconcile from a
//! key to an [`controller::Action`] saying when to look again, and an error
//! policy) and runs under this crate's one runner ([`controller::run`]:
//! work queue, back-off and metrics in one place). The whole set runs
//! under one Lease (`kube-system/kube-controller-manager`) so several
//! controller managers can run and only one acts.

mod apfstatus;
pub mod clients;
pub mod clusterroleaggregation;
pub mod controller;
mod cronjob;
pub mod csrsigning;
mod daemonset;
mod deployment;
mod disruption;
mod endpoints;
mod endpointslice;
mod expectations;
pub mod history;
mod job;
pub mod metrics;
pub mod persistentvolume;
pub mod podautoscaler;
mod podclaim;
mod podutil;
mod replicaset;
pub mod resourcequota;
mod statefulset;
mod ttlafterfinished;
pub mod watchqueue;
pub mod workloads;

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Settings shared by the controllers (flags of `ferrokube server`).
#[derive(Clone, Debug)]
pub struct ControllerConfig {
    /// This controller manager's identity for leader election.
    pub identity: String,
    /// The pod network, from which each node gets a /24 `spec.podCIDR`.
    pub cluster_cidr: String,
    /// How long a node's Lease may go unrenewed before it turns Unknown.
    pub node_monitor_grace_period: Duration,
    /// Terminated pods kept before the pod GC deletes the oldest.
    pub terminated_pod_gc_threshold: usize,
    /// The cluster CA (PEM) published as `kube-root-ca.crt` in every
    /// namespace (empty: not published).
    pub ca_pem: String,
    /// How long a node must be gone before the pod GC deletes its pods.
    pub pod_gc_quarantine: Duration,
    /// How often the pod GC looks.
    pub pod_gc_period: Duration,
    /// The CA that signs approved CertificateSigningRequests of the
    /// built-in signers (`None`: no signer runs, as Kubernetes without
    /// `--cluster-signing-cert-file`).
    pub signing_ca: Option<csrsigning::SigningCa>,
    /// The longest certificate the signer issues
    /// (`--cluster-signing-duration`).
    pub cluster_signing_duration: Duration,
    /// Where the built-in local-path provisioner puts volumes on every
    /// node (`None`: it is off, `--disable local-storage`).
    pub local_storage_path: Option<std::path::PathBuf>,
    /// The identity each controller acts under (default: all under the
    /// client given to [`run`]).
    pub clients: clients::ControllerClients,
    /// Runs ServiceLB ([`servicelb`]): `ferrokube server` turns it on
    /// unless `--disable servicelb`; off by default, as in
    /// kube-controller-manager, which has no load balancer of its own.
    pub servicelb: bool,
    /// The HorizontalPodAutoscaler controller's settings (Kubernetes'
    /// `--horizontal-pod-autoscaler-*` flags).
    pub hpa: podautoscaler::HpaConfig,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            identity: "ferrokube".into(),
            cluster_cidr: "10.42.0.0/16".into(),
            node_monitor_grace_period: Duration::from_secs(40),
            terminated_pod_gc_threshold: 12500,
            ca_pem: String::new(),
            pod_gc_quarantine: Duration::from_secs(40),
            pod_gc_period: Duration::from_secs(20),
            signing_ca: None,
            cluster_signing_duration: csrsigning::DEFAULT_SIGNING_DURATION,
            local_storage_path: None,
            clients: Default::default(),
            servicelb: false,
            hpa: podautoscaler::HpaConfig::default(),
        }
    }
}

/// Runs every controller while this process holds the controller-manager
/// Lease, until `cancel`.
pub async fn run(client: kube::Client, config: ControllerConfig, cancel: CancellationToken) {
    let election = ferrokube_client::LeaderElection::new(
        "kube-system",
        "kube-controller-manager",
        &config.identity,
    );
    election
        .run(client.clone(), cancel, move |lead| {
            run_all(client.clone(), config.clone(), lead)
        })
        .await;
}

/// Runs every controller until `cancel` (no leader election).
pub async fn run_all(client: kube::Client, config: ControllerConfig, cancel: CancellationToken) {
    // One informer per kind for every controller: pods, nodes and
    // namespaces are each watched and cached once.
    let mut informers = watchqueue::Informers::new(client.clone());
    let client_for = |sa: &str| config.clients.client(&client, sa);
    let mut tasks = workloads::start_with(&mut informers, &client_for, &cancel);
    tasks.extend(util::start_cluster_controllers(
        &mut informers,
        &client,
        &config,
        &cancel,
    ));
    let aggregation = clusterroleaggregation::ClusterRoleAggregationController::new(
        client_for("clusterrole-aggregation-controller"),
        &mut informers,
        cancel.clone(),
    );
    tasks.push(tokio::spawn(controller::run(aggregation, 1)));
    tasks.push(tokio::spawn(apfstatus::run(
        client_for("flowschema-status-controller"),
        cancel.clone(),
    )));
    let quota = resourcequota::QuotaController::new(
        client_for("resourcequota-controller"),
        &mut informers,
        cancel.clone(),
    );
    tasks.push(tokio::spawn(controller::run(quota, resourcequota::WORKERS)));
    tasks.push(podautoscaler::start(
        &mut informers,
        client_for(podautoscaler::SERVICE_ACCOUNT),
        config.hpa.clone(),
        cancel.clone(),
    ));
    if let Some(ca) = config.signing_ca.clone() {
        tasks.push(tokio::spawn(csrsigning::run(
            client_for("certificate-controller"),
            ca,
            config.cluster_signing_duration,
            cancel.clone(),
        )));
    }
    if config.servicelb {
        tasks.push(tokio::spawn(servicelb::start(
            &mut informers,
            client_for(servicelb::SERVICE_ACCOUNT),
            cancel.clone(),
        )));
    }
    tasks.extend(informers.spawn(&cancel));
    cancel.cancelled().await;
    for t in tasks {
        let _ = t.await;
    }
}

// The cluster controllers: garbage collection, namespaces, per-namespace
// defaults, node lifecycle and IPAM, pod GC, storage in-use protection.
pub mod gc;
pub mod namespace;
pub mod nodeipam;
pub mod nodelifecycle;
pub mod podgc;
pub mod serviceaccount;
pub mod servicelb;
mod util;
pub mod volumeprotection;
