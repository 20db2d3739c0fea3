//! The EndpointSlice controller (Kubernetes' `pkg/controller/endpointslice`):
//! for every Service with a selector, discovery.k8s.io/v1 EndpointSlices
//! labelled `kubernetes.io/service-name` and managed-by this controller,
//! owned by the Service, one set per address type and port list, at most
//! 100 endpoints each, with ready/serving/terminating conditions. Existing
//! slices are kept and edited in place where possible, so a pod change
//! rewrites one slice, not all of them.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ObjectReference, Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use tokio_util::sync::CancellationToken;

use crate::controller::{Action, Context, Reconciler};
use crate::endpoints::{service_selector, ServiceIndex};
use crate::podutil::{self, api_code};
use crate::watchqueue::{Change, Informers, Key};

pub(crate) const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
pub(crate) const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
pub(crate) const MANAGED_BY: &str = "endpointslice-controller.k8s.io";
/// Endpoints per slice (the controller's default --max-endpoints-per-slice).
pub(crate) const MAX_ENDPOINTS: usize = 100;

/// What this controller wrote and its cache may not show yet, per Service:
/// slices by name with the generation written (`None`: deleted). A Service
/// is not reconciled again until its cache caught up (Kubernetes'
/// endpointSliceTracker), so a stale cache never makes duplicate slices.
type Written = std::collections::HashMap<Key, (std::time::Instant, BTreeMap<String, Option<i64>>)>;

#[derive(Default)]
struct Tracker {
    written: std::sync::Mutex<Written>,
}

impl Tracker {
    fn lock(&self) -> std::sync::MutexGuard<'_, Written> {
        self.written.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wrote(&self, key: &Key, s: &EndpointSlice) {
        if let Some(n) = &s.metadata.name {
            let mut m = self.lock();
            let e = m
                .entry(key.clone())
                .or_insert_with(|| (std::time::Instant::now(), BTreeMap::new()));
            e.0 = std::time::Instant::now();
            e.1.insert(n.clone(), Some(s.metadata.generation.unwrap_or(0)));
        }
    }

    fn deleted(&self, key: &Key, name: &str) {
        let mut m = self.lock();
        let e = m
            .entry(key.clone())
            .or_insert_with(|| (std::time::Instant::now(), BTreeMap::new()));
        e.0 = std::time::Instant::now();
        e.1.insert(name.to_string(), None);
    }

    /// Whether the cache shows everything written for `key` (or the writes
    /// are older than a minute: then the cache is trusted again).
    fn caught_up(&self, key: &Key, cache: &Store<EndpointSlice>) -> bool {
        let mut m = self.lock();
        let Some((at, w)) = m.get_mut(key) else {
            return true;
        };
        w.retain(|name, gen| {
            let cached = cache.get(&ObjectRef::new(name).within(&key.0));
            match (gen, cached) {
                (None, None) => false,
                (None, Some(_)) => true,
                (Some(_), None) => true,
                (Some(g), Some(c)) => c.metadata.generation.unwrap_or(0) < *g,
            }
        });
        if w.is_empty() || at.elapsed() > std::time::Duration::from_secs(60) {
            m.remove(key);
            return true;
        }
        false
    }
}

/// The controller's name (kube-controller-manager's `--controllers`).
pub(crate) const NAME: &str = "endpointslice";

/// The EndpointSlice controller.
pub(crate) struct EndpointSliceController {
    tracker: Tracker,
    client: kube::Client,
    services: Store<Service>,
    pods: Store<Pod>,
    slices: Store<EndpointSlice>,
    index: ServiceIndex,
    ctx: Context,
}

fn managed_service(s: &EndpointSlice) -> Option<Key> {
    let labels = s.metadata.labels.as_ref()?;
    if labels.get(MANAGED_BY_LABEL).map(String::as_str) != Some(MANAGED_BY) {
        return None;
    }
    Some((
        s.metadata.namespace.clone().unwrap_or_default(),
        labels.get(SERVICE_NAME_LABEL)?.clone(),
    ))
}

/// One slice's identity for grouping: address type and sorted ports.
type GroupKey = (String, Vec<(String, i32, String)>);

fn group_key(address_type: &str, ports: &[EndpointPort]) -> GroupKey {
    let mut k: Vec<(String, i32, String)> = ports
        .iter()
        .map(|p| {
            (
                p.name.clone().unwrap_or_default(),
                p.port.unwrap_or(0),
                p.protocol.clone().unwrap_or_default(),
            )
        })
        .collect();
    k.sort();
    (address_type.to_string(), k)
}

impl Reconciler for EndpointSliceController {
    fn context(&self) -> &Context {
        &self.ctx
    }
    fn enqueue_all(&self) {
        self.ctx.add_all(&self.services);
    }
    async fn reconcile(&self, key: &Key) -> anyhow::Result<Action> {
        self.sync_service(key).await?;
        Ok(Action::await_change())
    }
}

/// The labels every slice of `svc` (`ns`/`name`) carries, and the slice
/// new ones start from.
fn slice_template(
    svc: &Service,
    ns: &str,
    name: &str,
) -> (BTreeMap<String, String>, EndpointSlice) {
    let mut labels = svc.metadata.labels.clone().unwrap_or_default();
    labels.insert(SERVICE_NAME_LABEL.into(), name.to_string());
    labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
    if svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None") {
        labels.insert("service.kubernetes.io/headless".into(), String::new());
    }
    let template = EndpointSlice {
        metadata: ObjectMeta {
            generate_name: Some(format!("{name}-")),
            namespace: Some(ns.to_string()),
            labels: Some(labels.clone()),
            owner_references: Some(vec![podutil::owner_ref_to(svc)]),
            ..Default::default()
        },
        address_type: String::new(),
        endpoints: Vec::new(),
        ports: None,
    };
    (labels, template)
}

impl EndpointSliceController {
    pub(crate) fn new(
        client: kube::Client,
        informers: &mut Informers,
        cancel: CancellationToken,
    ) -> Arc<Self> {
        let mut ctx = Context::new(NAME, cancel);
        let services: Store<Service> = ctx.watch(informers);
        let pods: Store<Pod> = ctx.watch(informers);
        let slices: Store<EndpointSlice> = ctx.watch(informers);
        let this = Arc::new(EndpointSliceController {
            tracker: Tracker::default(),
            client: ctx.client(&client),
            services,
            pods,
            slices,
            index: ServiceIndex::default(),
            ctx,
        });
        informers.get::<Service>().queue_keys(&this);
        let me = this.clone();
        informers
            .get::<Pod>()
            .on_change(&this.ctx, move |c| match c {
                Change::Applied(p) => {
                    for k in me.index.services_for(&me.services, p, false) {
                        me.ctx.add(k);
                    }
                }
                Change::Deleted(p) => {
                    for k in me.index.services_for(&me.services, p, true) {
                        me.ctx.add(k);
                    }
                }
                Change::Relisted => me.enqueue_all(),
            });
        let me = this.clone();
        informers
            .get::<EndpointSlice>()
            .on_change(&this.ctx, move |c| {
                if let Change::Applied(s) | Change::Deleted(s) = c {
                    if let Some(k) = managed_service(s) {
                        me.ctx.add(k);
                    }
                }
            });
        this
    }

    async fn sync_service(&self, key: &Key) -> anyhow::Result<()> {
        let (ns, name) = key;
        if !self.tracker.caught_up(key, &self.slices) {
            anyhow::bail!("the slice cache is behind this controller's writes");
        }
        let api: Api<EndpointSlice> = Api::namespaced(self.client.clone(), ns);
        let existing: Vec<Arc<EndpointSlice>> = self
            .slices
            .state()
            .into_iter()
            .filter(|s| managed_service(s).as_ref() == Some(key))
            .filter(|s| s.metadata.deletion_timestamp.is_none())
            .collect();
        let svc = self.services.get(&ObjectRef::new(name).within(ns));
        let selector = svc.as_ref().and_then(|s| service_selector(s));
        let (Some(svc), Some(selector)) = (svc, selector) else {
            // No Service, or no selector any more: our slices go.
            for s in existing {
                self.delete(key, &api, &s).await?;
            }
            return Ok(());
        };
        let svc_uid = svc.metadata.uid.clone().unwrap_or_default();
        // Slices owned by an older Service of the same name go too.
        let (existing, stale): (Vec<_>, Vec<_>) = existing
            .into_iter()
            .partition(|s| podutil::controller_ref(&s.metadata).is_some_and(|r| r.uid == svc_uid));
        for s in stale {
            self.delete(key, &api, &s).await?;
        }

        let pods: Vec<Arc<Pod>> = self
            .pods
            .state()
            .into_iter()
            .filter(|p| p.metadata.namespace.as_deref() == Some(ns.as_str()))
            .filter(|p| selector.matches(p.metadata.labels.as_ref()))
            .collect();
        let desired = desired_endpoints(&svc, &pods);

        let (labels, template) = slice_template(&svc, ns, name);

        // Existing slices by group; a slice of no wanted group goes (but one
        // empty placeholder is kept when nothing is wanted at all).
        let mut by_group: BTreeMap<GroupKey, Vec<EndpointSlice>> = BTreeMap::new();
        for s in &existing {
            let k = group_key(&s.address_type, s.ports.as_deref().unwrap_or(&[]));
            by_group.entry(k).or_default().push((**s).clone());
        }
        let mut wanted = desired;
        if wanted.is_empty() {
            // Kubernetes keeps one empty placeholder slice.
            wanted.insert(("IPv4".into(), Vec::new()), (Vec::new(), Vec::new()));
        }
        for (k, slices) in &by_group {
            if !wanted.contains_key(k) {
                for s in slices {
                    self.delete(key, &api, s).await?;
                }
            }
        }
        for (k, (ports, endpoints)) in wanted {
            let mut current = by_group.remove(&k).unwrap_or_default();
            let plan = pack(&mut current, endpoints);
            for (i, changed) in plan.into_iter().enumerate() {
                let s = &mut current[i];
                let meta_changed = s.metadata.labels.as_ref() != Some(&labels);
                if !changed && !meta_changed {
                    continue;
                }
                if s.endpoints.is_empty() && s.metadata.name.is_some() && i > 0 {
                    self.delete(key, &api, s).await?;
                    continue;
                }
                s.metadata.labels = Some(labels.clone());
                s.address_type = k.0.clone();
                s.ports = Some(ports.clone());
                match &s.metadata.name {
                    Some(n) => {
                        let written = api.replace(n, &PostParams::default(), s).await?;
                        self.tracker.wrote(key, &written);
                    }
                    None => {
                        let mut new = template.clone();
                        new.address_type = k.0.clone();
                        new.ports = Some(ports.clone());
                        new.endpoints = std::mem::take(&mut s.endpoints);
                        match api.create(&PostParams::default(), &new).await {
                            Ok(written) => self.tracker.wrote(key, &written),
                            Err(e) if api_code(&e) == Some(403) => return Ok(()),
                            Err(e) => return Err(e.into()),
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

impl EndpointSliceController {
    async fn delete(
        &self,
        key: &Key,
        api: &Api<EndpointSlice>,
        s: &EndpointSlice,
    ) -> anyhow::Result<()> {
        let Some(n) = s.metadata.name.as_deref() else {
            return Ok(());
        };
        match api.delete(n, &Default::default()).await {
            Ok(_) => {}
            Err(e) if api_code(&e) == Some(404) => {}
            Err(e) => return Err(e.into()),
        }
        self.tracker.deleted(key, n);
        Ok(())
    }
}

/// Fits `want` into `slices` (adding unnamed new ones as needed), keeping
/// each endpoint in the slice it is already in; returns, per slice, whether
/// it changed. Endpoints are keyed by their target pod (or address).
fn pack(slices: &mut Vec<EndpointSlice>, want: Vec<Endpoint>) -> Vec<bool> {
    let id = |e: &Endpoint| {
        e.target_ref
            .as_ref()
            .and_then(|r| r.uid.clone())
            .unwrap_or_else(|| e.addresses.join(","))
    };
    let mut wanted: BTreeMap<String, Endpoint> = want.into_iter().map(|e| (id(&e), e)).collect();
    let mut changed = vec![false; slices.len()];
    // Keep (and refresh) endpoints where they are; drop the unwanted.
    for (i, s) in slices.iter_mut().enumerate() {
        let before = s.endpoints.clone();
        let mut seen = HashSet::new();
        s.endpoints = before
            .iter()
            .filter_map(|e| {
                let k = id(e);
                if !seen.insert(k.clone()) {
                    return None;
                }
                wanted.remove(&k)
            })
            .collect();
        s.endpoints.truncate(MAX_ENDPOINTS);
        if s.endpoints != before {
            changed[i] = true;
        }
    }
    // Then the new ones: fullest slice with room first, then new slices.
    let mut rest: Vec<Endpoint> = wanted.into_values().collect();
    let mut order: Vec<usize> = (0..slices.len()).collect();
    order.sort_by_key(|i| std::cmp::Reverse(slices[*i].endpoints.len()));
    for i in order {
        while slices[i].endpoints.len() < MAX_ENDPOINTS {
            let Some(e) = rest.pop() else { break };
            slices[i].endpoints.push(e);
            changed[i] = true;
        }
    }
    while !rest.is_empty() {
        let take = rest.len().min(MAX_ENDPOINTS);
        let chunk: Vec<Endpoint> = rest.drain(..take).collect();
        slices.push(EndpointSlice {
            metadata: Default::default(),
            address_type: String::new(),
            endpoints: chunk,
            ports: None,
        });
        changed.push(true);
    }
    if slices.is_empty() {
        // The placeholder.
        slices.push(EndpointSlice {
            metadata: Default::default(),
            address_type: String::new(),
            endpoints: Vec::new(),
            ports: None,
        });
        changed.push(true);
    }
    changed
}

/// Endpoints wanted for `svc`, grouped by address type and port list.
fn desired_endpoints(
    svc: &Service,
    pods: &[Arc<Pod>],
) -> BTreeMap<GroupKey, (Vec<EndpointPort>, Vec<Endpoint>)> {
    let publish = svc
        .spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false);
    let svc_ports = svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.clone())
        .unwrap_or_default();
    let mut out: BTreeMap<GroupKey, (Vec<EndpointPort>, Vec<Endpoint>)> = BTreeMap::new();
    for p in pods {
        if !podutil::should_be_in_endpoints(p, true) {
            continue;
        }
        let Some(ip) = p.status.as_ref().and_then(|s| s.pod_ip.clone()) else {
            continue;
        };
        let address_type = if ip.contains(':') { "IPv6" } else { "IPv4" };
        let ports: Vec<EndpointPort> = svc_ports
            .iter()
            .filter_map(|sp| {
                let port = podutil::find_port(p, sp)?;
                Some(EndpointPort {
                    name: Some(sp.name.clone().unwrap_or_default()),
                    port: Some(port),
                    protocol: Some(sp.protocol.clone().unwrap_or_else(|| "TCP".into())),
                    app_protocol: sp.app_protocol.clone(),
                })
            })
            .collect();
        let serving = podutil::is_ready(p);
        let terminating = p.metadata.deletion_timestamp.is_some();
        let ready = publish || (serving && !terminating);
        let spec = p.spec.as_ref();
        let hostname = spec
            .and_then(|s| s.hostname.clone())
            .filter(|h| !h.is_empty())
            .filter(|_| spec.and_then(|s| s.subdomain.as_deref()) == svc.metadata.name.as_deref());
        let ep = Endpoint {
            addresses: vec![ip],
            conditions: Some(EndpointConditions {
                ready: Some(ready),
                serving: Some(serving),
                terminating: Some(terminating),
            }),
            hostname,
            node_name: spec.and_then(|s| s.node_name.clone()),
            target_ref: Some(ObjectReference {
                kind: Some("Pod".into()),
                namespace: p.metadata.namespace.clone(),
                name: p.metadata.name.clone(),
                uid: p.metadata.uid.clone(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let k = group_key(address_type, &ports);
        let e = out.entry(k).or_insert_with(|| (ports, Vec::new()));
        e.1.push(ep);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(uid: &str) -> Endpoint {
        Endpoint {
            addresses: vec![format!("10.0.0.{uid}")],
            target_ref: Some(ObjectReference {
                uid: Some(uid.into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn packing_caps_slices_and_keeps_endpoints_in_place() {
        let mut slices = Vec::new();
        let want: Vec<Endpoint> = (0..250).map(|i| ep(&i.to_string())).collect();
        let changed = pack(&mut slices, want.clone());
        assert_eq!(changed, vec![true, true, true]);
        let sizes: Vec<usize> = slices.iter().map(|s| s.endpoints.len()).collect();
        assert_eq!(sizes, vec![100, 100, 50]);
        // One endpoint goes: only its slice changes.
        let gone = slices[1].endpoints[0].clone();
        let fewer: Vec<Endpoint> = want.into_iter().filter(|e| *e != gone).collect();
        let changed = pack(&mut slices, fewer);
        assert_eq!(changed.iter().filter(|c| **c).count(), 1);
        assert!(changed[1]);
    }
}
