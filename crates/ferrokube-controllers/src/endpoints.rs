//! The Endpoints controller (Kubernetes' `pkg/controller/endpoint`): for
//! every Service with a selector, one Endpoints object of the same name
//! listing the matching pods' IPs — ready ones as addresses, others as
//! notReadyAddresses (all as ready with publishNotReadyAddresses) — with
//! each Service port resolved on each pod (named target ports looked up in
//! the pod's containers). Services without a selector are left alone: their
//! Endpoints belong to the user.
//!
//! [`ServiceIndex`] also serves the EndpointSlice controller: it maps a pod
//! change to the Services that selected it before or select it now.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use tokio_util::sync::CancellationToken;

use crate::controller::{Action, Context, Reconciler};
use crate::podutil::{self, api_code, Selector};
use crate::watchqueue::{key_of, Change, Informers, Key};

/// The label selecting a Service's pods, if it has one.
pub(crate) fn service_selector(s: &Service) -> Option<Selector> {
    let sel = s.spec.as_ref()?.selector.as_ref()?;
    (!sel.is_empty()).then(|| Selector::from_map(sel))
}

/// Which Services each pod was last seen to match, so that a pod whose
/// labels changed also wakes the Services it left.
#[derive(Default)]
pub(crate) struct ServiceIndex {
    by_pod: Mutex<HashMap<Key, HashSet<String>>>,
}

impl ServiceIndex {
    /// The Services to look at after `p` changed (or went, when `gone`).
    pub(crate) fn services_for(&self, services: &Store<Service>, p: &Pod, gone: bool) -> Vec<Key> {
        let key = key_of(p);
        let now: HashSet<String> = if gone {
            HashSet::new()
        } else {
            services
                .state()
                .iter()
                .filter(|s| s.metadata.namespace.as_deref() == Some(key.0.as_str()))
                .filter(|s| {
                    service_selector(s).is_some_and(|sel| sel.matches(p.metadata.labels.as_ref()))
                })
                .filter_map(|s| s.metadata.name.clone())
                .collect()
        };
        let mut m = self.by_pod.lock().unwrap_or_else(|e| e.into_inner());
        let before = if gone {
            m.remove(&key).unwrap_or_default()
        } else {
            m.insert(key.clone(), now.clone()).unwrap_or_default()
        };
        before
            .union(&now)
            .map(|s| (key.0.clone(), s.clone()))
            .collect()
    }
}

/// The controller's name (kube-controller-manager's `--controllers`).
pub(crate) const NAME: &str = "endpoints";

/// The Endpoints controller.
pub(crate) struct EndpointsController {
    client: kube::Client,
    services: Store<Service>,
    pods: Store<Pod>,
    endpoints: Store<Endpoints>,
    index: ServiceIndex,
    ctx: Context,
}

impl Reconciler for EndpointsController {
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

impl EndpointsController {
    pub(crate) fn new(
        client: kube::Client,
        informers: &mut Informers,
        cancel: CancellationToken,
    ) -> Arc<Self> {
        let mut ctx = Context::new(NAME, cancel);
        let services: Store<Service> = ctx.watch(informers);
        let pods: Store<Pod> = ctx.watch(informers);
        let endpoints: Store<Endpoints> = ctx.watch(informers);
        let this = Arc::new(EndpointsController {
            client: ctx.client(&client),
            services,
            pods,
            endpoints,
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
        informers.get::<Endpoints>().on_change(&this.ctx, move |c| {
            // Someone else changed (or removed) Endpoints we manage.
            if let Change::Deleted(e) | Change::Applied(e) = c {
                let k = key_of(e);
                if me
                    .services
                    .get(&ObjectRef::new(&k.1).within(&k.0))
                    .is_some()
                {
                    me.ctx.add(k);
                }
            }
        });
        this
    }

    async fn sync_service(&self, key: &Key) -> anyhow::Result<()> {
        let (ns, name) = key;
        let api: Api<Endpoints> = Api::namespaced(self.client.clone(), ns);
        let Some(svc) = self.services.get(&ObjectRef::new(name).within(ns)) else {
            // The Service is gone: so are its Endpoints.
            if self
                .endpoints
                .get(&ObjectRef::new(name).within(ns))
                .is_some()
            {
                match api.delete(name, &Default::default()).await {
                    Ok(_) => {}
                    Err(e) if api_code(&e) == Some(404) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            return Ok(());
        };
        let Some(selector) = service_selector(&svc) else {
            return Ok(());
        };
        let pods: Vec<Arc<Pod>> = self
            .pods
            .state()
            .into_iter()
            .filter(|p| p.metadata.namespace.as_deref() == Some(ns.as_str()))
            .filter(|p| selector.matches(p.metadata.labels.as_ref()))
            .collect();
        let subsets = desired_subsets(&svc, &pods);
        let mut labels = svc.metadata.labels.clone().unwrap_or_default();
        let headless = svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None");
        if headless {
            labels.insert("service.kubernetes.io/headless".into(), String::new());
        }
        let current = self.endpoints.get(&ObjectRef::new(name).within(ns));
        if let Some(cur) = &current {
            let cur_subsets = cur.subsets.clone().unwrap_or_default();
            if cur_subsets == subsets && cur.metadata.labels.clone().unwrap_or_default() == labels {
                return Ok(());
            }
        }
        let mut ep = match &current {
            Some(cur) => (**cur).clone(),
            None => Endpoints {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    namespace: Some(ns.clone()),
                    ..Default::default()
                },
                subsets: None,
            },
        };
        ep.metadata.labels = Some(labels);
        ep.metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(
                "endpoints.kubernetes.io/last-change-trigger-time".into(),
                jiff::Timestamp::now()
                    .strftime("%Y-%m-%dT%H:%M:%SZ")
                    .to_string(),
            );
        ep.subsets = (!subsets.is_empty()).then_some(subsets);
        let res = match current {
            Some(_) => api.replace(name, &PostParams::default(), &ep).await,
            None => api.create(&PostParams::default(), &ep).await,
        };
        match res {
            Ok(_) => Ok(()),
            // A namespace being deleted refuses new objects; nothing to do.
            Err(e) if api_code(&e) == Some(403) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// The subsets for `svc` over its pods, packed as Kubernetes packs them:
/// addresses grouped by identical port lists, sorted.
pub(crate) fn desired_subsets(svc: &Service, pods: &[Arc<Pod>]) -> Vec<EndpointSubset> {
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
    // Port list -> (ready, not ready) addresses by IP.
    type Group = (
        BTreeMap<String, EndpointAddress>,
        BTreeMap<String, EndpointAddress>,
    );
    type PortsKey = Vec<(String, i32, String)>;
    type AddrsKey = (Vec<String>, Vec<String>);
    let mut groups: BTreeMap<PortsKey, (Vec<EndpointPort>, Group)> = BTreeMap::new();
    for p in pods {
        if !podutil::should_be_in_endpoints(p, publish) {
            continue;
        }
        let Some(ip) = p.status.as_ref().and_then(|s| s.pod_ip.clone()) else {
            continue;
        };
        let addr = EndpointAddress {
            ip: ip.clone(),
            hostname: pod_hostname(p, svc),
            node_name: p.spec.as_ref().and_then(|s| s.node_name.clone()),
            target_ref: Some(ObjectReference {
                kind: Some("Pod".into()),
                namespace: p.metadata.namespace.clone(),
                name: p.metadata.name.clone(),
                uid: p.metadata.uid.clone(),
                ..Default::default()
            }),
        };
        let ready = publish || podutil::is_ready(p);
        let terminal = matches!(podutil::phase(p), "Failed" | "Succeeded");
        let mut add = |ports: Vec<EndpointPort>| {
            let mut k: Vec<(String, i32, String)> = ports
                .iter()
                .map(|p| {
                    (
                        p.name.clone().unwrap_or_default(),
                        p.port,
                        p.protocol.clone().unwrap_or_default(),
                    )
                })
                .collect();
            k.sort();
            let entry = groups
                .entry(k)
                .or_insert_with(|| (ports, Default::default()));
            if ready {
                entry.1 .0.insert(ip.clone(), addr.clone());
            } else if !terminal {
                entry.1 .1.insert(ip.clone(), addr.clone());
            }
        };
        if svc_ports.is_empty() {
            // A headless Service without ports: addresses only.
            add(Vec::new());
            continue;
        }
        for sp in &svc_ports {
            let Some(port) = podutil::find_port(p, sp) else {
                continue;
            };
            add(vec![EndpointPort {
                name: sp.name.clone().filter(|n| !n.is_empty()),
                port,
                protocol: Some(sp.protocol.clone().unwrap_or_else(|| "TCP".into())),
                app_protocol: sp.app_protocol.clone(),
            }]);
        }
    }
    // Merge port groups whose addresses are the same (RepackSubsets).
    let mut by_addrs: BTreeMap<AddrsKey, (Vec<EndpointPort>, Group)> = BTreeMap::new();
    for (_, (ports, (ready, not_ready))) in groups {
        let k = (
            ready.keys().cloned().collect::<Vec<_>>(),
            not_ready.keys().cloned().collect::<Vec<_>>(),
        );
        let e = by_addrs
            .entry(k)
            .or_insert_with(|| (Vec::new(), (ready, not_ready)));
        e.0.extend(ports);
    }
    by_addrs
        .into_values()
        .filter(|(_, (r, n))| !r.is_empty() || !n.is_empty())
        .map(|(mut ports, (ready, not_ready))| {
            ports.sort_by(|a, b| (&a.name, a.port).cmp(&(&b.name, b.port)));
            EndpointSubset {
                addresses: (!ready.is_empty()).then(|| ready.into_values().collect()),
                not_ready_addresses: (!not_ready.is_empty())
                    .then(|| not_ready.into_values().collect()),
                ports: (!ports.is_empty()).then_some(ports),
            }
        })
        .collect()
}

/// A pod's hostname in a Service's DNS (hostname set and subdomain equal
/// to the Service's name).
fn pod_hostname(p: &Pod, svc: &Service) -> Option<String> {
    let spec = p.spec.as_ref()?;
    let host = spec.hostname.clone().filter(|h| !h.is_empty())?;
    (spec.subdomain.as_deref() == svc.metadata.name.as_deref()).then_some(host)
}
