//! The collector: every resolution it scrapes each node's kubelet at once
//! (bounded concurrency, each scrape bounded in time), merges the answers
//! into one batch, stores it with metrics-server's rules, and publishes a
//! snapshot of every node's and pod's usage (what the metrics API serves,
//! and what its watches are pushed) and a short history. Nothing is
//! written anywhere but memory.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use parking_lot::Mutex;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::decode::{decode, NodeBatch, PodKey};
use crate::history::{History, Sample};
use crate::point::{Nanos, TimeInfo, Usage};
use crate::scrape::Scraper;
use crate::storage::{NodeStorage, PodStorage, PodUsage};

/// A kubelet to scrape: its node's name and address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeTarget {
    /// The Node's name.
    pub name: String,
    /// The kubelet's HTTPS address.
    pub addr: SocketAddr,
}

/// The kubelet port when a Node does not report one.
pub const DEFAULT_KUBELET_PORT: u16 = 10250;

/// Where a Node's kubelet listens, as the API server reaches it (for
/// metrics, and for logs, exec and proxy): the first of its InternalIP,
/// ExternalIP and Hostname addresses that is an IP, at
/// `status.daemonEndpoints.kubeletEndpoint.Port` (10250 when unset).
pub fn kubelet_addr(node: &Value) -> Option<SocketAddr> {
    let addresses = node.pointer("/status/addresses")?.as_array()?;
    let ip = ["InternalIP", "ExternalIP", "Hostname"]
        .iter()
        .find_map(|t| {
            addresses
                .iter()
                .filter(|a| a.get("type").and_then(Value::as_str) == Some(*t))
                .find_map(|a| a.get("address")?.as_str()?.parse::<IpAddr>().ok())
        })?;
    let port = node
        .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p != 0)
        .unwrap_or(DEFAULT_KUBELET_PORT);
    Some(SocketAddr::new(ip, port))
}

/// A Node's name and [`kubelet_addr`].
pub fn node_target(node: &Value) -> Option<NodeTarget> {
    Some(NodeTarget {
        name: node.pointer("/metadata/name")?.as_str()?.to_string(),
        addr: kubelet_addr(node)?,
    })
}

/// The nodes to scrape, asked again every round.
pub trait NodeSource: Send + Sync {
    /// The kubelets to scrape now.
    fn targets(&self) -> Vec<NodeTarget>;
}

/// A fixed list of kubelets.
#[derive(Clone, Debug, Default)]
pub struct StaticNodes(pub Vec<NodeTarget>);

impl NodeSource for StaticNodes {
    fn targets(&self) -> Vec<NodeTarget> {
        self.0.clone()
    }
}

/// How the collector runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// `--metric-resolution`: how often it scrapes (15 s by default).
    pub resolution: Duration,
    /// How long one scrape may take (metrics-server's: 90% of the
    /// resolution).
    pub timeout: Duration,
    /// How many kubelets are scraped at once.
    pub concurrency: usize,
    /// How much history is kept (15 minutes).
    pub history: Duration,
}

impl Options {
    /// The options for a resolution, the rest as metrics-server's.
    pub fn with_resolution(resolution: Duration) -> Options {
        let resolution = resolution.max(Duration::from_millis(100));
        Options {
            resolution,
            timeout: resolution.mul_f64(0.9),
            concurrency: 64,
            history: Duration::from_secs(15 * 60),
        }
    }
}

impl Default for Options {
    fn default() -> Options {
        Options::with_resolution(Duration::from_secs(15))
    }
}

/// Every node's and pod's usage after one round: what the metrics API
/// serves. A node or pod that cannot report yet is absent.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Counts rounds (0 before the first).
    pub generation: u64,
    /// Nodes' usage, by name.
    pub nodes: HashMap<String, (Usage, TimeInfo)>,
    /// Pods' usage.
    pub pods: HashMap<PodKey, PodUsage>,
}

/// What one round did.
#[derive(Clone, Debug, Default)]
pub struct RoundReport {
    /// Kubelets asked.
    pub nodes: usize,
    /// Kubelets that did not answer well.
    pub failed: usize,
    /// Container points received.
    pub containers: usize,
    /// How long the round took.
    pub elapsed: Duration,
}

/// What the collector holds.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Nodes that report usage.
    pub nodes: usize,
    /// Pods that report usage.
    pub pods: usize,
    /// Points held by the storage (node and container, last and previous).
    pub points: usize,
    /// History samples held.
    pub history_samples: usize,
    /// Objects with history.
    pub history_objects: usize,
    /// An estimate of the bytes all of it takes.
    pub approx_bytes: usize,
}

/// A clock: nanoseconds since the Unix epoch.
pub type Clock = Arc<dyn Fn() -> Nanos + Send + Sync>;

fn system_clock() -> Clock {
    Arc::new(|| i64::try_from(jiff::Timestamp::now().as_nanosecond()).unwrap_or(i64::MAX))
}

struct State {
    nodes: NodeStorage,
    pods: PodStorage,
    history: History,
    generation: u64,
}

/// The collector. See the module documentation.
pub struct Collector {
    source: Arc<dyn NodeSource>,
    scraper: Scraper,
    options: Options,
    state: Mutex<State>,
    snapshot: tokio::sync::watch::Sender<Arc<Snapshot>>,
    clock: Clock,
}

impl std::fmt::Debug for Collector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collector")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Collector {
    /// A collector of the kubelets `source` names, presenting the client
    /// certificate `cert_pem` with its key.
    pub fn new(
        source: Arc<dyn NodeSource>,
        cert_pem: &str,
        key_pem: &str,
        options: Options,
    ) -> anyhow::Result<Collector> {
        Self::with_clock(source, cert_pem, key_pem, options, system_clock())
    }

    /// The same with another clock (tests).
    pub fn with_clock(
        source: Arc<dyn NodeSource>,
        cert_pem: &str,
        key_pem: &str,
        options: Options,
        clock: Clock,
    ) -> anyhow::Result<Collector> {
        let resolution = i64::try_from(options.resolution.as_nanos()).unwrap_or(i64::MAX);
        let keep = i64::try_from(options.history.as_nanos()).unwrap_or(i64::MAX);
        let per_object = (options.history.as_millis() / options.resolution.as_millis().max(1))
            .clamp(1, 10_000) as usize
            + 1;
        Ok(Collector {
            source,
            scraper: Scraper::new(cert_pem, key_pem)?,
            state: Mutex::new(State {
                nodes: NodeStorage::default(),
                pods: PodStorage::new(resolution),
                history: History::new(keep, per_object),
                generation: 0,
            }),
            snapshot: tokio::sync::watch::channel(Arc::new(Snapshot::default())).0,
            options,
            clock,
        })
    }

    /// How it runs.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Scrapes every kubelet once and stores what they said.
    pub async fn scrape_round(&self) -> RoundReport {
        let started = Instant::now();
        let targets = self.source.targets();
        self.scraper
            .retain(&targets.iter().map(|t| t.addr).collect::<Vec<_>>());
        let timeout = self.options.timeout;
        let clock = self.clock.clone();
        let results: Vec<(String, Option<NodeBatch>)> =
            futures::stream::iter(targets.iter().cloned().map(|t| {
                let clock = clock.clone();
                async move {
                    let batch = match self.scraper.fetch(t.addr, timeout).await {
                        Ok(body) => match std::str::from_utf8(&body)
                            .map_err(|e| e.to_string())
                            .and_then(|text| decode(text, clock()).map_err(|e| e.to_string()))
                        {
                            Ok(b) => Some(b),
                            Err(e) => {
                                tracing::info!(node = %t.name, error = %e, "failed to decode the node's resource metrics");
                                None
                            }
                        },
                        Err(e) => {
                            tracing::info!(node = %t.name, error = %e, "failed to scrape node");
                            None
                        }
                    };
                    (t.name, batch)
                }
            }))
            .buffer_unordered(self.options.concurrency.max(1))
            .collect()
            .await;
        let failed = results.iter().filter(|(_, b)| b.is_none()).count();
        let batches: Vec<(String, NodeBatch)> = results
            .into_iter()
            .filter_map(|(n, b)| Some((n, b?)))
            .collect();
        let containers = batches
            .iter()
            .map(|(_, b)| b.pods.values().map(BTreeMap::len).sum::<usize>())
            .sum();
        self.ingest(batches);
        RoundReport {
            nodes: targets.len(),
            failed,
            containers,
            elapsed: started.elapsed(),
        }
    }

    /// Stores one round's results (each node's decoded scrape), as a
    /// round of scrapes would: what is not in them is forgotten. Then
    /// publishes the new snapshot.
    pub fn ingest(&self, batches: Vec<(String, NodeBatch)>) {
        let now = (self.clock)();
        let mut nodes = Vec::with_capacity(batches.len());
        let mut pods = HashMap::new();
        for (name, b) in batches {
            if let Some(p) = b.node {
                nodes.push((name, p));
            }
            for (key, containers) in b.pods {
                // A pod reported by two kubelets: the first kept, as
                // metrics-server keeps the first of duplicates.
                pods.entry(key).or_insert(containers);
            }
        }
        let mut state = self.state.lock();
        state.nodes.store(nodes);
        state.pods.store(pods);
        state.generation += 1;
        let snapshot = Snapshot {
            generation: state.generation,
            nodes: state
                .nodes
                .names()
                .filter_map(|n| Some((n.clone(), state.nodes.usage(n)?)))
                .collect(),
            pods: state
                .pods
                .pods()
                .filter_map(|k| Some((k.clone(), state.pods.usage(k)?)))
                .collect(),
        };
        for (name, (u, t)) in &snapshot.nodes {
            state.history.node(
                name,
                Sample {
                    timestamp: t.timestamp,
                    cpu: u.cpu,
                    memory: u.memory,
                },
            );
        }
        for (key, p) in &snapshot.pods {
            let (cpu, memory) = p.containers.iter().fold((0u64, 0u64), |(c, m), (_, u)| {
                (c.saturating_add(u.cpu), m.saturating_add(u.memory))
            });
            state.history.pod(
                key,
                Sample {
                    timestamp: p.time.timestamp,
                    cpu,
                    memory,
                },
            );
        }
        // Samples age by the kubelets' clocks (their timestamps), so a
        // server whose clock is off keeps them all the same; the server's
        // clock only when no sample came.
        let newest = snapshot
            .nodes
            .values()
            .map(|(_, t)| t.timestamp)
            .chain(snapshot.pods.values().map(|p| p.time.timestamp))
            .max()
            .unwrap_or(now);
        state.history.expire(newest);
        drop(state);
        self.snapshot.send_replace(Arc::new(snapshot));
    }

    /// Scrapes now and then every resolution until `cancel`.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(self.options.resolution);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            let report = tokio::select! {
                _ = cancel.cancelled() => return,
                r = self.scrape_round() => r,
            };
            tracing::debug!(nodes = report.nodes, failed = report.failed, containers = report.containers, elapsed = ?report.elapsed, "scraped resource metrics");
        }
    }

    /// The usage of every node and pod after the last round.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.borrow().clone()
    }

    /// Follows the snapshots: a new one after every round.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<Arc<Snapshot>> {
        self.snapshot.subscribe()
    }

    /// A node's history (oldest first).
    pub fn node_history(&self, name: &str) -> Vec<Sample> {
        self.state.lock().history.of_node(name)
    }

    /// A pod's history (its containers' sums, oldest first).
    pub fn pod_history(&self, namespace: &str, name: &str) -> Vec<Sample> {
        let key = PodKey {
            namespace: namespace.to_string(),
            name: name.to_string(),
        };
        self.state.lock().history.of_pod(&key)
    }

    /// What it holds.
    pub fn stats(&self) -> Stats {
        let snapshot = self.snapshot();
        let state = self.state.lock();
        let points = state.nodes.points() + state.pods.points();
        let history_samples = state.history.samples();
        let history_objects = state.history.objects();
        // A point with its map entry and name; a sample; an object's
        // entry and key.
        let approx_bytes = points * (size_of::<crate::Point>() + 96)
            + history_samples * size_of::<Sample>()
            + history_objects * 160
            + snapshot.pods.len() * 200
            + snapshot.nodes.len() * 120;
        Stats {
            nodes: snapshot.nodes.len(),
            pods: snapshot.pods.len(),
            points,
            history_samples,
            history_objects,
            approx_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicI64, Ordering};

    const S: Nanos = 1_000_000_000;

    fn identity() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["kube-apiserver-kubelet-client".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn kubelet_text(at_ms: i64, node_cpu: f64, pod_cpu: f64, start_s: f64) -> String {
        format!(
            "node_cpu_usage_seconds_total {node_cpu} {at_ms}\n\
             node_memory_working_set_bytes 1073741824 {at_ms}\n\
             container_cpu_usage_seconds_total{{container=\"c\",namespace=\"ns\",pod=\"p\"}} {pod_cpu} {at_ms}\n\
             container_memory_working_set_bytes{{container=\"c\",namespace=\"ns\",pod=\"p\"}} 50331648 {at_ms}\n\
             container_start_time_seconds{{container=\"c\",namespace=\"ns\",pod=\"p\"}} {start_s} {at_ms}\n"
        )
    }

    #[test]
    fn rounds_publish_snapshots_and_keep_history() {
        let now = Arc::new(AtomicI64::new(1_000 * S));
        let clock: Clock = {
            let now = now.clone();
            Arc::new(move || now.load(Ordering::SeqCst))
        };
        let (cert, key) = identity();
        let c = Collector::with_clock(
            Arc::new(StaticNodes::default()),
            &cert,
            &key,
            Options::with_resolution(Duration::from_secs(5)),
            clock,
        )
        .unwrap();
        let mut watch = c.subscribe();
        let round = |at: Nanos, node_cpu: f64, pod_cpu: f64| {
            now.store(at, Ordering::SeqCst);
            let text = kubelet_text(at / 1_000_000, node_cpu, pod_cpu, 900.0);
            c.ingest(vec![("n1".to_string(), decode(&text, at).unwrap())]);
        };
        round(1_000 * S, 100.0, 10.0);
        let first = c.snapshot();
        assert_eq!(first.generation, 1);
        assert!(
            first.nodes.is_empty() && first.pods.is_empty(),
            "one point: nothing yet"
        );
        assert!(watch.has_changed().unwrap());
        watch.borrow_and_update();
        round(1_005 * S, 105.0, 11.25);
        let s = c.snapshot();
        assert_eq!(s.nodes["n1"].0.cpu, 1_000_000_000);
        let pod = &s.pods[&PodKey {
            namespace: "ns".into(),
            name: "p".into(),
        }];
        assert_eq!(pod.containers[0].1.cpu, 250_000_000);
        assert_eq!(pod.containers[0].1.memory, 48 << 20);
        assert_eq!(
            pod.time,
            TimeInfo {
                timestamp: 1_005 * S,
                window: 5 * S
            }
        );
        assert!(watch.has_changed().unwrap());
        assert_eq!(c.node_history("n1").len(), 1);
        assert_eq!(c.pod_history("ns", "p")[0].cpu, 250_000_000);
        let stats = c.stats();
        assert_eq!((stats.nodes, stats.pods, stats.points), (1, 1, 4));
        // A round where the kubelet did not answer: it is forgotten, its
        // history stays until it ages out.
        now.store(1_010 * S, Ordering::SeqCst);
        c.ingest(Vec::new());
        assert!(c.snapshot().nodes.is_empty());
        assert_eq!(c.node_history("n1").len(), 1);
        now.store(2_000 * S, Ordering::SeqCst);
        c.ingest(Vec::new());
        assert!(c.node_history("n1").is_empty());
    }

    #[tokio::test]
    async fn an_unreachable_kubelet_fails_its_scrape_within_the_timeout() {
        let (cert, key) = identity();
        // A port nobody listens on.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let c = Collector::new(
            Arc::new(StaticNodes(vec![NodeTarget {
                name: "gone".into(),
                addr,
            }])),
            &cert,
            &key,
            Options::with_resolution(Duration::from_secs(1)),
        )
        .unwrap();
        let r = c.scrape_round().await;
        assert_eq!((r.nodes, r.failed), (1, 1));
        assert!(r.elapsed < Duration::from_secs(2));
    }

    #[test]
    fn a_nodes_kubelet_is_at_its_internal_ip_and_reported_port() {
        let node = serde_json::json!({"metadata": {"name": "n"}, "status": {
            "addresses": [{"type": "Hostname", "address": "n"}, {"type": "InternalIP", "address": "10.0.0.5"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 12345}}}});
        assert_eq!(
            node_target(&node).unwrap().addr,
            "10.0.0.5:12345".parse().unwrap()
        );
        let bare = serde_json::json!({"metadata": {"name": "n"}, "status": {
            "addresses": [{"type": "InternalIP", "address": "10.0.0.6"}]}});
        assert_eq!(
            node_target(&bare).unwrap().addr.port(),
            DEFAULT_KUBELET_PORT
        );
        assert_eq!(
            node_target(&serde_json::json!({"metadata": {"name": "n"}})),
            None
        );
    }
}
