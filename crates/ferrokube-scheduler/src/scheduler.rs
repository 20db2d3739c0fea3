//! The running scheduler: watches (nodes, pods, namespaces, priority
//! classes) feed the snapshot and the queue; one loop takes pods from the
//! queue, places each with the algorithm, assumes it on its node and hands
//! the binding to a pool of concurrent binders; failures go back to the
//! queue with their reasons on the pod (condition and event).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{
    Binding, Namespace, Node, ObjectReference, PersistentVolume, PersistentVolumeClaim, Pod,
};
use k8s_openapi::api::scheduling::v1::PriorityClass;
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher::{self, watcher, Event};
use kube::runtime::WatchStreamExt;
use parking_lot::{Mutex, RwLock};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::cache::Cache;
use crate::events::{self, PodEvent, Recorder};
use crate::framework::{Algorithm, FitError, Placement};
use crate::plugins::preemption;
use crate::plugins::volume_binding::{self, PodVolumes, PreFilterError, Reservation, VolumeState};
use crate::podinfo::PodInfo;
use crate::queue::{Popped, SchedulingQueue};
use crate::SchedulerConfig;
use ferrokube_client::slim::SlimPod;

/// Counters for figures and tests.
#[derive(Debug, Default)]
pub struct Stats {
    /// Pods bound by this scheduler.
    pub bound: AtomicU64,
    /// Attempts that found no node.
    pub unschedulable: AtomicU64,
    /// Binding requests that failed.
    pub bind_errors: AtomicU64,
    /// Time spent in the placement algorithm, in nanoseconds.
    pub algorithm_nanos: AtomicU64,
    /// Placement attempts (runs of the algorithm).
    pub algorithm_runs: AtomicU64,
    /// Set once the watches have listed nodes and pods and scheduling began.
    pub ready: AtomicBool,
}

#[derive(Debug, Default)]
struct Priorities {
    classes: HashMap<String, (i32, bool)>,
}

impl Priorities {
    fn of(&self, pod: &PodInfo) -> i32 {
        let spec = pod.pod.spec.as_ref();
        if let Some(p) = spec.and_then(|s| s.priority) {
            return p;
        }
        if let Some(name) = spec.and_then(|s| s.priority_class_name.as_deref()) {
            if let Some((v, _)) = self.classes.get(name) {
                return *v;
            }
        }
        self.classes
            .values()
            .filter(|(_, global)| *global)
            .map(|(v, _)| *v)
            .max()
            .unwrap_or(0)
    }
}

struct Shared {
    config: SchedulerConfig,
    cache: Mutex<Cache>,
    queue: SchedulingQueue,
    priorities: RwLock<Priorities>,
    volumes: RwLock<VolumeState>,
    stats: Arc<Stats>,
}

/// A scheduler that has not started yet.
pub struct Scheduler {
    client: kube::Client,
    shared: Arc<Shared>,
}

fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded") | Some("Failed")
    )
}

impl Shared {
    fn on_pod(&self, pod: Pod) {
        if is_terminal(&pod) {
            let key = format!(
                "{}/{}",
                pod.metadata.namespace.as_deref().unwrap_or("default"),
                pod.metadata.name.as_deref().unwrap_or_default()
            );
            self.on_pod_delete(&key);
            return;
        }
        let info = Arc::new(PodInfo::new(Arc::new(pod)));
        if !info.node_name.is_empty() {
            self.queue.delete(&info.key);
            self.cache.lock().add_pod(info);
        } else if info.scheduler_name == self.config.scheduler_name && !info.terminating {
            if self.cache.lock().is_assumed(&info.key) {
                return;
            }
            let prio = self.priorities.read().of(&info);
            self.queue.add_or_update(info, prio);
        } else {
            self.queue.delete(&info.key);
        }
    }

    fn on_pod_delete(&self, key: &str) {
        self.queue.delete(key);
        let had = {
            let mut c = self.cache.lock();
            let had = c.has_pod(key);
            c.remove_pod(key);
            had
        };
        if had {
            self.queue.move_all_unschedulable();
        }
    }

    fn on_node(&self, node: Node) {
        let name = node.metadata.name.clone().unwrap_or_default();
        let changed = {
            let mut c = self.cache.lock();
            let old = c.node(&name).and_then(|n| n.node.clone());
            let relevant = match &old {
                None => true,
                Some(o) => {
                    o.metadata.labels != node.metadata.labels
                        || o.spec != node.spec
                        || o.status.as_ref().map(|s| &s.allocatable)
                            != node.status.as_ref().map(|s| &s.allocatable)
                }
            };
            c.set_node(Arc::new(node));
            relevant
        };
        if changed {
            self.queue.move_all_unschedulable();
        }
    }
}

/// Reads one watch until cancelled, calling `apply`, `delete` and, after
/// each complete (re)list, `relisted` with the keys it showed.
async fn follow<K, S>(
    stream: S,
    cancel: &CancellationToken,
    synced: &CancellationToken,
    mut apply: impl FnMut(K),
    mut delete: impl FnMut(K),
    mut relisted: impl FnMut(HashSet<String>),
    key_of: impl Fn(&K) -> String,
) where
    S: Stream<Item = Result<Event<K>, watcher::Error>> + Unpin,
{
    let mut stream = stream;
    let mut seen: HashSet<String> = HashSet::new();
    loop {
        let ev = tokio::select! {
            _ = cancel.cancelled() => return,
            ev = stream.next() => ev,
        };
        match ev {
            None => return,
            Some(Err(e)) => tracing::debug!(error = %e, "watch error (retrying)"),
            Some(Ok(Event::Init)) => seen.clear(),
            Some(Ok(Event::InitApply(o))) => {
                seen.insert(key_of(&o));
                apply(o);
            }
            Some(Ok(Event::InitDone)) => {
                relisted(std::mem::take(&mut seen));
                synced.cancel();
            }
            Some(Ok(Event::Apply(o))) => apply(o),
            Some(Ok(Event::Delete(o))) => delete(o),
        }
    }
}

/// Spawns [`follow`] over a watch of `api` (with the watcher's back-off).
#[expect(
    clippy::too_many_arguments,
    reason = "the handlers of one watch: each is a different closure, and a struct of them would only rename the parameters"
)]
fn spawn_follow<K>(
    api: Api<K>,
    config: watcher::Config,
    cancel: &CancellationToken,
    synced: &CancellationToken,
    apply: impl FnMut(K) + Send + 'static,
    delete: impl FnMut(K) + Send + 'static,
    relisted: impl FnMut(HashSet<String>) + Send + 'static,
    key_of: impl Fn(&K) -> String + Send + 'static,
) -> tokio::task::JoinHandle<()>
where
    K: kube::Resource
        + Clone
        + k8s_openapi::serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + 'static,
{
    let (cancel, synced) = (cancel.clone(), synced.clone());
    tokio::spawn(async move {
        let stream = watcher(api, config).default_backoff().boxed();
        follow(stream, &cancel, &synced, apply, delete, relisted, key_of).await;
    })
}

fn pod_key(p: &Pod) -> String {
    format!(
        "{}/{}",
        p.metadata.namespace.as_deref().unwrap_or("default"),
        p.metadata.name.as_deref().unwrap_or_default()
    )
}

fn name_of(m: &ObjectMeta) -> String {
    m.name.clone().unwrap_or_default()
}

impl Scheduler {
    /// A scheduler with `config` that talks to the API server through
    /// `client`; nothing runs until [`Scheduler::run`].
    pub fn new(client: kube::Client, config: SchedulerConfig) -> Scheduler {
        let mut cache = Cache::new();
        cache.namespaces = HashMap::new();
        Scheduler {
            client,
            shared: Arc::new(Shared {
                config,
                cache: Mutex::new(cache),
                queue: SchedulingQueue::new(),
                priorities: RwLock::new(Priorities::default()),
                volumes: RwLock::new(VolumeState::default()),
                stats: Arc::new(Stats::default()),
            }),
        }
    }

    /// Its counters, shared: they keep counting while it runs.
    pub fn stats(&self) -> Arc<Stats> {
        self.shared.stats.clone()
    }

    /// Watches and schedules until `cancel`.
    pub async fn run(self, cancel: CancellationToken) {
        let cancel = cancel.child_token();
        let client = self.client.clone();
        let sh = self.shared.clone();
        let synced = Synced::default();
        let tasks = vec![
            follow_nodes(&client, &sh, &cancel, &synced.nodes),
            follow_pods(&client, &sh, &cancel, &synced.pods),
            follow_namespaces(&client, &sh, &cancel),
            follow_priority_classes(&client, &sh, &cancel),
            follow_claims(&client, &sh, &cancel, &synced.volumes),
            follow_volumes(&client, &sh, &cancel),
            follow_storage_classes(&client, &sh, &cancel),
            spawn_flush(&sh, &cancel),
        ];
        // Schedule only from a complete picture.
        tokio::select! {
            _ = cancel.cancelled() => {}
            _ = synced.all() => {
                let recorder = Recorder::start(
                    client.clone(),
                    sh.config.scheduler_name.clone(),
                    sh.config.identity.clone(),
                    cancel.clone(),
                );
                sh.stats.ready.store(true, Ordering::Relaxed);
                schedule_loop(client.clone(), sh.clone(), recorder, cancel.clone()).await;
            }
        }
        cancel.cancel();
        sh.queue.close();
        for t in tasks {
            let _ = t.await;
        }
    }
}

/// Cancelled once the first list of each watch the scheduler needs before
/// it places anything has been seen.
#[derive(Default)]
struct Synced {
    nodes: CancellationToken,
    pods: CancellationToken,
    /// The claims (VolumeBinding).
    volumes: CancellationToken,
}

impl Synced {
    async fn all(&self) {
        self.nodes.cancelled().await;
        self.pods.cancelled().await;
        self.volumes.cancelled().await;
    }
}

/// Nodes into the snapshot.
fn follow_nodes(
    client: &kube::Client,
    sh: &Arc<Shared>,
    cancel: &CancellationToken,
    synced: &CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let (a, d, r) = (sh.clone(), sh.clone(), sh.clone());
    spawn_follow(
        Api::<Node>::all(client.clone()),
        watcher::Config::default(),
        cancel,
        synced,
        move |n: Node| a.on_node(n),
        move |n: Node| d.cache.lock().remove_node(&name_of(&n.metadata)),
        move |seen| {
            let mut c = r.cache.lock();
            let gone: Vec<String> = c
                .node_names()
                .iter()
                .filter(|n| !seen.contains(*n))
                .cloned()
                .collect();
            for n in gone {
                c.remove_node(&n);
            }
        },
        |n| name_of(&n.metadata),
    )
}

/// Pods (not finished ones) into the snapshot or the queue, read without
/// managedFields, which the scheduler never uses.
fn follow_pods(
    client: &kube::Client,
    sh: &Arc<Shared>,
    cancel: &CancellationToken,
    synced: &CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let (a, d, r) = (sh.clone(), sh.clone(), sh.clone());
    spawn_follow(
        Api::<SlimPod>::all(client.clone()),
        watcher::Config::default().fields("status.phase!=Succeeded,status.phase!=Failed"),
        cancel,
        synced,
        move |p: SlimPod| a.on_pod(p.0),
        move |p: SlimPod| d.on_pod_delete(&pod_key(&p.0)),
        move |seen| {
            for k in r.queue.keys() {
                if !seen.contains(&k) {
                    r.queue.delete(&k);
                }
            }
            let gone: Vec<String> = {
                let c = r.cache.lock();
                c.pod_keys()
                    .into_iter()
                    .filter(|k| !seen.contains(k) && !c.is_assumed(k))
                    .collect()
            };
            for k in gone {
                r.on_pod_delete(&k);
            }
        },
        |p| pod_key(&p.0),
    )
}

/// Namespaces' labels (for namespaceSelector); a change may make an
/// unschedulable pod fit.
fn follow_namespaces(
    client: &kube::Client,
    sh: &Arc<Shared>,
    cancel: &CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let (a, d) = (sh.clone(), sh.clone());
    spawn_follow(
        Api::<Namespace>::all(client.clone()),
        watcher::Config::default(),
        cancel,
        &CancellationToken::new(),
        move |n: Namespace| {
            let labels = n.metadata.labels.clone().unwrap_or_default();
            let old = a
                .cache
                .lock()
                .namespaces
                .insert(name_of(&n.metadata), labels.clone());
            if old.is_some_and(|o| o != labels) {
                a.queue.move_all_unschedulable();
            }
        },
        move |n: Namespace| {
            d.cache.lock().namespaces.remove(&name_of(&n.metadata));
        },
        |_| {},
        |n| name_of(&n.metadata),
    )
}

/// Priority classes' values (a pod's priority when it has none).
fn follow_priority_classes(
    client: &kube::Client,
    sh: &Arc<Shared>,
    cancel: &CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let (a, d) = (sh.clone(), sh.clone());
    spawn_follow(
        Api::<PriorityClass>::all(client.clone()),
        watcher::Config::default(),
        cancel,
        &CancellationToken::new(),
        move |pc: PriorityClass| {
            a.priorities.write().classes.insert(
                name_of(&pc.metadata),
                (pc.value, pc.global_default.unwrap_or(false)),
            );
        },
        move |pc: PriorityClass| {
            d.priorities.write().classes.remove(&name_of(&pc.metadata));
        },
        |_| {},
        |pc| name_of(&pc.metadata),
    )
}

/// Claims (VolumeBinding); a change may make an unschedulable pod fit.
fn follow_claims(
    client: &kube::Client,
    sh: &Arc<Shared>,
    cancel: &CancellationToken,
    synced: &CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let claim_key = |c: &PersistentVolumeClaim| {
        (
            c.metadata.namespace.clone().unwrap_or_default(),
            name_of(&c.metadata),
        )
    };
    let (a, d) = (sh.clone(), sh.clone());
    spawn_follow(
        Api::<PersistentVolumeClaim>::all(client.clone()),
        watcher::Config::default(),
        cancel,
        synced,
        move |c: PersistentVolumeClaim| {
            a.volumes.write().claims.insert(claim_key(&c), Arc::new(c));
            a.queue.move_all_unschedulable();
        },
        move |c: PersistentVolumeClaim| {
            d.volumes.write().claims.remove(&claim_key(&c));
        },
        |_| {},
        move |c| format!("{:?}", claim_key(c)),
    )
}

/// Volumes (VolumeBinding); a change may make an unschedulable pod fit.
fn follow_volumes(
    client: &kube::Client,
    sh: &Arc<Shared>,
    cancel: &CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let (a, d) = (sh.clone(), sh.clone());
    spawn_follow(
        Api::<PersistentVolume>::all(client.clone()),
        watcher::Config::default(),
        cancel,
        &CancellationToken::new(),
        move |v: PersistentVolume| {
            a.volumes
                .write()
                .volumes
                .insert(name_of(&v.metadata), Arc::new(v));
            a.queue.move_all_unschedulable();
        },
        move |v: PersistentVolume| {
            d.volumes.write().volumes.remove(&name_of(&v.metadata));
        },
        |_| {},
        |v| name_of(&v.metadata),
    )
}

/// Storage classes (VolumeBinding); a change may make an unschedulable pod
/// fit.
fn follow_storage_classes(
    client: &kube::Client,
    sh: &Arc<Shared>,
    cancel: &CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let (a, d) = (sh.clone(), sh.clone());
    spawn_follow(
        Api::<StorageClass>::all(client.clone()),
        watcher::Config::default(),
        cancel,
        &CancellationToken::new(),
        move |c: StorageClass| {
            a.volumes
                .write()
                .classes
                .insert(name_of(&c.metadata), Arc::new(c));
            a.queue.move_all_unschedulable();
        },
        move |c: StorageClass| {
            d.volumes.write().classes.remove(&name_of(&c.metadata));
        },
        |_| {},
        |c| name_of(&c.metadata),
    )
}

/// The backoff and unschedulable timers: the queue is flushed every 500 ms.
fn spawn_flush(sh: &Arc<Shared>, cancel: &CancellationToken) -> tokio::task::JoinHandle<()> {
    let (sh, cancel) = (sh.clone(), cancel.clone());
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(500)) => sh.queue.flush(),
            }
        }
    })
}

async fn schedule_loop(
    client: kube::Client,
    sh: Arc<Shared>,
    recorder: Recorder,
    cancel: CancellationToken,
) {
    let binds = Arc::new(Semaphore::new(sh.config.parallel_binds.max(1)));
    let status_writes = Arc::new(Semaphore::new(16));
    let mut algo = Algorithm::new();
    algo.percentage_of_nodes_to_score = sh.config.percentage_of_nodes_to_score;
    loop {
        let popped = tokio::select! {
            _ = cancel.cancelled() => return,
            p = sh.queue.pop() => p,
        };
        let Some(p) = popped else { return };
        let attempt = place(&sh, &mut algo, &p.info);
        match attempt.result {
            Ok(pl) => {
                let permit = tokio::select! {
                    _ = cancel.cancelled() => {
                        sh.cache.lock().forget(&p.info.key, &p.info.uid);
                        return;
                    }
                    permit = binds.clone().acquire_owned() => permit,
                };
                let Ok(permit) = permit else { return };
                let claims = matches!(&attempt.volumes, Ok(Some(v)) if !v.delayed.is_empty());
                let (client, sh, recorder) = (client.clone(), sh.clone(), recorder.clone());
                tokio::spawn(async move {
                    let _permit = permit;
                    if claims
                        && !prebind_volumes(
                            &client,
                            &sh,
                            &recorder,
                            &p,
                            &pl.node,
                            &attempt.reservations,
                        )
                        .await
                    {
                        return;
                    }
                    bind(client, sh, recorder, p, pl.node).await;
                });
            }
            Err(fit) => unschedulable(&client, &sh, &recorder, &status_writes, &p, &fit),
        }
    }
}

/// One placement attempt, and what VolumeBinding said of the pod's claims.
struct Attempt {
    result: Result<Placement, FitError>,
    volumes: Result<Option<PodVolumes>, PreFilterError>,
    /// What to reserve for the pod's waiting claims on the chosen node.
    reservations: Vec<Reservation>,
}

/// VolumeBinding's PreFilter, from the claims as they are now, then the
/// algorithm; a pod that gets a node is assumed on it at once.
fn place(sh: &Shared, algo: &mut Algorithm, info: &Arc<PodInfo>) -> Attempt {
    let volumes = sh.volumes.read().pre_filter(&info.pod);
    let mut reservations = Vec::new();
    let mut c = sh.cache.lock();
    let t = Instant::now();
    let result = match &volumes {
        Err(why) => Err(FitError {
            num_nodes: c.node_count(),
            reasons: Default::default(),
            pre_filter: Some(why.clone()),
        }),
        Ok(v) => algo.schedule_with_volumes(&c, info, v.as_ref()),
    };
    if let (Ok(pl), Ok(Some(v))) = (&result, &volumes) {
        if let Some(node) = c.node(&pl.node) {
            reservations = v.reserve(&node.labels).unwrap_or_default();
        }
    }
    sh.stats
        .algorithm_nanos
        .fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
    sh.stats.algorithm_runs.fetch_add(1, Ordering::Relaxed);
    if let Ok(pl) = &result {
        c.assume(info.clone(), &pl.node);
    }
    Attempt {
        result,
        volumes,
        reservations,
    }
}

/// VolumeBinding's PreBind for a pod placed on `node`; on failure the pod
/// is forgotten, goes back to the queue and is told why. Whether binding
/// may go on.
async fn prebind_volumes(
    client: &kube::Client,
    sh: &Shared,
    recorder: &Recorder,
    p: &Popped,
    node: &str,
    reservations: &[Reservation],
) -> bool {
    let Err(why) = bind_volumes(client, &p.info.pod, node, reservations).await else {
        return true;
    };
    sh.stats.bind_errors.fetch_add(1, Ordering::Relaxed);
    sh.cache.lock().forget(&p.info.key, &p.info.uid);
    sh.queue.failed(&p.info.key, p.cycle, false);
    recorder.record(PodEvent {
        pod: p.info.pod.clone(),
        warning: true,
        reason: "FailedScheduling",
        action: "Scheduling",
        message: format!("running PreBind plugin \"VolumeBinding\": binding volumes: {why}"),
    });
    false
}

/// A pod that fits nowhere: back to the queue, an event and the
/// PodScheduled condition saying why, and preemption when it may help.
fn unschedulable(
    client: &kube::Client,
    sh: &Arc<Shared>,
    recorder: &Recorder,
    status_writes: &Arc<Semaphore>,
    p: &Popped,
    fit: &FitError,
) {
    let key = &p.info.key;
    sh.stats.unschedulable.fetch_add(1, Ordering::Relaxed);
    sh.queue.failed(key, p.cycle, true);
    let message = fit.to_string();
    tracing::debug!(pod = %key, %message, "unschedulable");
    recorder.record(PodEvent {
        pod: p.info.pod.clone(),
        warning: true,
        reason: "FailedScheduling",
        action: "Scheduling",
        message: message.clone(),
    });
    // Preemption cannot help a pod its claims keep off every node.
    let candidate = if fit.pre_filter.is_some() {
        None
    } else {
        preemption_candidate(sh, &p.info)
    };
    let (client, sem) = (client.clone(), status_writes.clone());
    let pod = p.info.pod.clone();
    let recorder = recorder.clone();
    tokio::spawn(async move {
        let Ok(_permit) = sem.acquire_owned().await else {
            return;
        };
        if let Err(e) = events::set_unschedulable(client.clone(), &pod, &message).await {
            tracing::debug!(error = %e, "setting PodScheduled=False failed");
        }
        if let Some(c) = candidate {
            preempt(client, recorder, &pod, c).await;
        }
    });
}

/// How long the binder waits for the claims it reserved to be bound.
const VOLUME_BIND_TIMEOUT: Duration = Duration::from_secs(120);

/// Why VolumeBinding's PreBind failed (the message goes into the pod's
/// FailedScheduling event).
#[derive(Debug, thiserror::Error)]
enum VolumeBindError {
    /// Reading or writing a claim or volume failed.
    #[error("{0}")]
    Api(#[from] kube::Error),
    /// The static volume chosen for a claim got another claim meanwhile.
    #[error("volume {0:?} was taken meanwhile")]
    Taken(String),
    /// The claims were not all bound within [`VOLUME_BIND_TIMEOUT`].
    #[error("timed out waiting for the condition")]
    Timeout,
}

/// VolumeBinding's PreBind: reserves the pod's waiting claims on `node`
/// (a static volume's claimRef, or the claim's selected node for its
/// provisioner), then waits until every claim of the pod is bound.
async fn bind_volumes(
    client: &kube::Client,
    pod: &Pod,
    node: &str,
    reservations: &[Reservation],
) -> Result<(), VolumeBindError> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns);
    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    for r in reservations {
        match r {
            Reservation::Provision { claim: (_, name) } => {
                let patch = serde_json::json!({"metadata": {"annotations": {
                    "volume.kubernetes.io/selected-node": node}}});
                claims
                    .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await?;
            }
            Reservation::Volume {
                claim: (_, name),
                volume,
            } => {
                let claim = claims.get(name).await?;
                let mut pv = volumes.get(volume).await?;
                if pv
                    .spec
                    .as_ref()
                    .and_then(|s| s.claim_ref.as_ref())
                    .is_some()
                {
                    return Err(VolumeBindError::Taken(volume.clone()));
                }
                pv.metadata
                    .annotations
                    .get_or_insert_with(Default::default)
                    .insert("pv.kubernetes.io/bound-by-controller".into(), "yes".into());
                if let Some(spec) = pv.spec.as_mut() {
                    spec.claim_ref = Some(ObjectReference {
                        api_version: Some("v1".into()),
                        kind: Some("PersistentVolumeClaim".into()),
                        namespace: claim.metadata.namespace.clone(),
                        name: claim.metadata.name.clone(),
                        uid: claim.metadata.uid.clone(),
                        resource_version: claim.metadata.resource_version.clone(),
                        ..Default::default()
                    });
                }
                volumes.replace(volume, &PostParams::default(), &pv).await?;
            }
        }
    }
    let names = volume_binding::claim_names(pod);
    let deadline = Instant::now() + VOLUME_BIND_TIMEOUT;
    loop {
        let mut all_bound = true;
        for name in &names {
            let c = claims.get(name).await?;
            let phase = c.status.as_ref().and_then(|s| s.phase.as_deref());
            if phase != Some("Bound") {
                all_bound = false;
                break;
            }
        }
        if all_bound {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(VolumeBindError::Timeout);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A node and victims for a pod that fits nowhere, unless it may not
/// preempt or already waits for earlier victims to go.
fn preemption_candidate(sh: &Shared, info: &PodInfo) -> Option<preemption::Candidate> {
    if !preemption::eligible(info) {
        return None;
    }
    let priority = sh.priorities.read().of(info);
    let cache = sh.cache.lock();
    let nominated = info
        .pod
        .status
        .as_ref()
        .and_then(|s| s.nominated_node_name.as_deref())
        .filter(|n| !n.is_empty());
    if let Some(node) = nominated.and_then(|n| cache.node(n)) {
        if node
            .pods
            .iter()
            .any(|p| p.terminating && p.priority < priority)
        {
            return None;
        }
    }
    preemption::find_candidate(&cache, info, priority)
}

/// Nominates the node on the preemptor and deletes the victims (with their
/// own grace periods), each told why by a `Preempted` event.
async fn preempt(client: kube::Client, recorder: Recorder, pod: &Pod, c: preemption::Candidate) {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let patch = serde_json::json!({"status": {"nominatedNodeName": c.node}});
    if let Err(e) = pods
        .patch_status(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
    {
        tracing::debug!(error = %e, "setting nominatedNodeName failed");
    }
    for v in c.victims {
        let api: Api<Pod> = Api::namespaced(client.clone(), &v.namespace);
        recorder.record(PodEvent {
            pod: v.pod.clone(),
            warning: false,
            reason: "Preempted",
            action: "Preempting",
            message: format!("Preempted by pod {uid} on node {}", c.node),
        });
        if let Err(e) = api.delete(&v.name, &DeleteParams::default()).await {
            tracing::debug!(victim = %v.key, error = %e, "deleting a victim failed");
        }
    }
}

async fn bind(client: kube::Client, sh: Arc<Shared>, recorder: Recorder, p: Popped, node: String) {
    let info = &p.info;
    let api: Api<Pod> = Api::namespaced(client, &info.namespace);
    let binding = Binding {
        metadata: ObjectMeta {
            name: Some(info.name.clone()),
            namespace: Some(info.namespace.clone()),
            uid: Some(info.uid.clone()).filter(|u| !u.is_empty()),
            ..Default::default()
        },
        target: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Node".into()),
            name: Some(node.clone()),
            ..Default::default()
        },
    };
    let res: kube::Result<serde_json::Value> = api
        .create_subresource("binding", &info.name, &PostParams::default(), &binding)
        .await;
    match res {
        Ok(_) => {
            sh.stats.bound.fetch_add(1, Ordering::Relaxed);
            sh.queue.done(&info.key);
            recorder.record(PodEvent {
                pod: info.pod.clone(),
                warning: false,
                reason: "Scheduled",
                action: "Binding",
                message: format!("Successfully assigned {} to {}", info.key, node),
            });
        }
        Err(e) => {
            sh.stats.bind_errors.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(pod = %info.key, error = %e, "binding failed");
            sh.cache.lock().forget(&info.key, &info.uid);
            sh.queue.failed(&info.key, p.cycle, false);
            recorder.record(PodEvent {
                pod: info.pod.clone(),
                warning: true,
                reason: "FailedScheduling",
                action: "Scheduling",
                message: format!("Binding rejected: {e}"),
            });
        }
    }
}
