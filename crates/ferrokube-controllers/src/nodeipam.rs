//! Node IPAM: gives every node without `spec.podCIDR` the lowest free /24
//! of the cluster CIDR (also as `spec.podCIDRs`). The ranges in use are
//! read back from the nodes themselves on every pass (a live list, not a
//! cache), so two nodes never get the same range, even across restarts.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::reflector::Store;
use kube::{Api, Client};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::controller::{self, Action, Context, Reconciler};
use crate::util::{self, CACHE_SYNC_TIMEOUT};
use crate::watchqueue::{Informers, Key};

const RESYNC: Duration = Duration::from_secs(60);
/// Each node's share of the cluster CIDR.
const NODE_PREFIX: u8 = 24;

/// An IPv4 network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cidr {
    pub(crate) addr: u32,
    pub(crate) prefix: u8,
}

/// Why a cluster CIDR cannot be read (the text it was given, quoted).
#[derive(Debug, thiserror::Error)]
pub(crate) enum CidrError {
    /// No `/` between an address and a prefix length.
    #[error("{0:?} is not a CIDR")]
    NotCidr(String),
    /// The part before the `/` is not an IPv4 address.
    #[error("{0:?}: not an IPv4 address")]
    NotIpv4(String),
    /// The prefix length is not a number from 0 to 32.
    #[error("{0:?}: bad prefix length")]
    BadPrefix(String),
}

impl std::str::FromStr for Cidr {
    type Err = CidrError;
    fn from_str(s: &str) -> Result<Cidr, CidrError> {
        let (ip, prefix) = s
            .split_once('/')
            .ok_or_else(|| CidrError::NotCidr(s.to_string()))?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| CidrError::NotIpv4(s.to_string()))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| CidrError::BadPrefix(s.to_string()))?;
        let mask = if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - prefix)
        };
        Ok(Cidr {
            addr: u32::from(ip) & mask,
            prefix,
        })
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.addr), self.prefix)
    }
}

/// The lowest /24 of `cluster` not in `used` (network addresses).
pub(crate) fn next_free(cluster: Cidr, used: &HashSet<u32>) -> Option<Cidr> {
    if cluster.prefix > NODE_PREFIX {
        return None;
    }
    let count = 1u64 << (NODE_PREFIX - cluster.prefix);
    (0..count)
        .map(|i| cluster.addr.wrapping_add((i as u32) << (32 - NODE_PREFIX)))
        .find(|a| !used.contains(a))
        .map(|addr| Cidr {
            addr,
            prefix: NODE_PREFIX,
        })
}

/// The controller's name (kube-controller-manager's `--controllers`).
pub const NAME: &str = "nodeipam";

/// Runs the allocator until `cancel`.
pub async fn run(client: Client, cluster_cidr: String, cancel: CancellationToken) {
    let Some(cluster) = usable_cluster(&cluster_cidr) else {
        return;
    };
    controller::run_standalone(client.clone(), 1, |informers| {
        NodeIpam::new(informers, &client, cluster, cancel)
    })
    .await;
}

/// Sets the allocator up over the shared `informers` (spawn them after);
/// the future it returns runs it until `cancel`.
pub fn start(
    informers: &mut Informers,
    client: Client,
    cluster_cidr: String,
    cancel: CancellationToken,
) -> futures::future::BoxFuture<'static, ()> {
    match usable_cluster(&cluster_cidr) {
        Some(cluster) => Box::pin(controller::run(
            NodeIpam::new(informers, &client, cluster, cancel),
            1,
        )),
        None => Box::pin(async {}),
    }
}

/// The cluster CIDR, if a /24 per node can be cut from it (else the
/// allocator is off, and says why).
fn usable_cluster(cluster_cidr: &str) -> Option<Cidr> {
    let cluster: Cidr = match cluster_cidr.parse() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "node IPAM disabled: bad cluster CIDR");
            return None;
        }
    };
    if cluster.prefix > NODE_PREFIX {
        tracing::error!(%cluster, "node IPAM disabled: the cluster CIDR is smaller than a /24");
        return None;
    }
    Some(cluster)
}

/// The allocator: a pass over the nodes on each change.
struct NodeIpam {
    ctx: Context,
    client: Client,
    /// The pod network the nodes' ranges are cut from.
    cluster: Cidr,
    nodes: Store<Node>,
}

impl NodeIpam {
    fn new(
        informers: &mut Informers,
        client: &Client,
        cluster: Cidr,
        cancel: CancellationToken,
    ) -> Arc<Self> {
        let mut ctx = Context::new(NAME, cancel).sync_within(CACHE_SYNC_TIMEOUT);
        let nodes = informers.get::<Node>().pass_on_change(&mut ctx);
        Arc::new(NodeIpam {
            client: ctx.client(client),
            cluster,
            nodes,
            ctx,
        })
    }
}

impl Reconciler for NodeIpam {
    fn context(&self) -> &Context {
        &self.ctx
    }

    async fn reconcile(&self, _: &Key) -> anyhow::Result<Action> {
        // The live list only when the cache shows a node without a range.
        let wanting = self.nodes.state().iter().any(|n| {
            n.spec
                .as_ref()
                .and_then(|s| s.pod_cidr.as_deref())
                .is_none_or(str::is_empty)
        });
        let again = match wanting {
            true => allocate(&self.client, self.cluster).await?,
            false => None,
        };
        Ok(Action::from(again).sooner(Action::requeue(RESYNC)))
    }

    fn error_policy(&self, _: &Key, error: &anyhow::Error, _: u32) -> Action {
        util::pass_failed(NAME, error)
    }
}

/// One pass: a range for every node that has none.
async fn allocate(client: &Client, cluster: Cidr) -> anyhow::Result<Option<Duration>> {
    let api: Api<Node> = Api::all(client.clone());
    let mut nodes = api.list(&ListParams::default()).await?.items;
    let mut used = HashSet::new();
    for node in &nodes {
        let spec = node.spec.as_ref();
        let cidrs = spec
            .and_then(|s| s.pod_cidrs.clone())
            .unwrap_or_default()
            .into_iter()
            .chain(spec.and_then(|s| s.pod_cidr.clone()));
        for c in cidrs {
            if let Ok(c) = c.parse::<Cidr>() {
                used.insert(c.addr);
            }
        }
    }
    nodes.sort_by(|a, b| {
        (
            &a.metadata.creation_timestamp.as_ref().map(|t| t.0),
            &a.metadata.name,
        )
            .cmp(&(
                &b.metadata.creation_timestamp.as_ref().map(|t| t.0),
                &b.metadata.name,
            ))
    });
    let mut again = None;
    for node in nodes {
        let has = node
            .spec
            .as_ref()
            .and_then(|s| s.pod_cidr.as_deref())
            .is_some_and(|c| !c.is_empty());
        if has || node.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let Some(name) = node.metadata.name.as_deref() else {
            continue;
        };
        let Some(cidr) = next_free(cluster, &used) else {
            tracing::warn!(node = name, %cluster, "no pod CIDR left for the node");
            return Ok(Some(Duration::from_secs(10)));
        };
        let patch = json!({
            "metadata": {"resourceVersion": node.metadata.resource_version},
            "spec": {"podCIDR": cidr.to_string(), "podCIDRs": [cidr.to_string()]},
        });
        match api
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {
                tracing::info!(node = name, %cidr, "assigned the node's pod CIDR");
                used.insert(cidr.addr);
            }
            Err(e) if util::not_found(&e) => {}
            Err(e) => {
                tracing::debug!(node = name, error = %e, "assigning a pod CIDR");
                again = Some(Duration::from_millis(200));
            }
        }
    }
    Ok(again)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_the_lowest_free_slash_24() {
        let cluster: Cidr = "10.42.0.0/16".parse().unwrap();
        let mut used = HashSet::new();
        let a = next_free(cluster, &used).unwrap();
        assert_eq!(a.to_string(), "10.42.0.0/24");
        used.insert(a.addr);
        used.insert("10.42.2.0/24".parse::<Cidr>().unwrap().addr);
        assert_eq!(
            next_free(cluster, &used).unwrap().to_string(),
            "10.42.1.0/24"
        );
        let tiny: Cidr = "10.0.0.0/23".parse().unwrap();
        let full: HashSet<u32> = [tiny.addr, tiny.addr + 256].into();
        assert_eq!(next_free(tiny, &full), None);
        assert!("10.0.0.0".parse::<Cidr>().is_err());
    }
}
