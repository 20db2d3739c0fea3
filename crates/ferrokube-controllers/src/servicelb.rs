//! ServiceLB, as k3s' (`pkg/cloudprovider/servicelb.go`): LoadBalancer
//! Services get the addresses of the nodes that serve them as
//! `status.loadBalancer.ingress`, and every node's service proxy opens the
//! Service's ports on those addresses (it programs ingress IPs as
//! kube-proxy does). k3s runs a `svclb-*` DaemonSet whose pods hold the
//! ports as host ports; here the proxy holds them, and this controller
//! decides which nodes serve, as those pods would be placed:
//!
//! - nodes that are Ready, not being deleted, with no NoSchedule/NoExecute
//!   taint the svclb pods would not tolerate;
//! - when any node carries the label `svccontroller.k3s.cattle.io/enablelb`,
//!   only nodes where it is `true` (and, for a Service labelled
//!   `svccontroller.k3s.cattle.io/lbpool`, nodes of that pool);
//! - a node whose port is already held by an older LoadBalancer Service
//!   does not serve a younger one on that port (a host port conflict);
//! - with `externalTrafficPolicy: Local`, only nodes with a ready endpoint.
//!
//! The addresses are the serving nodes' ExternalIPs if any has one, else
//! their InternalIPs, in the Service's IP families' order, sorted. Services
//! with a `loadBalancerClass` belong to another implementation and are left
//! alone; a Service that stops being a LoadBalancer has its ingress cleared.
//! Off with `ferrokube server --disable servicelb`.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Patch, PatchParams};
use kube::runtime::reflector::Store;
use kube::{Api, Client};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::controller::{self, Action, Context, Reconciler};
use crate::util::{self, CACHE_SYNC_TIMEOUT};
use crate::watchqueue::{Informers, Key};

/// The controller's name (and, as k3s', its service account's,
/// `service-controller`).
pub const NAME: &str = "servicelb";
/// The service account it writes with (Kubernetes' service controller's).
pub const SERVICE_ACCOUNT: &str = "service-controller";
/// On a node: `true` takes part in ServiceLB; once any node has it, only
/// those with `true` do.
pub const ENABLE_LB_LABEL: &str = "svccontroller.k3s.cattle.io/enablelb";
/// On a node and a Service: the Service is served only by the nodes of its
/// pool (when node selection is on).
pub const LB_POOL_LABEL: &str = "svccontroller.k3s.cattle.io/lbpool";

const RESYNC: Duration = Duration::from_secs(60);

/// Taints the svclb pods tolerate: the DaemonSet controller's defaults and
/// k3s' own (control-plane nodes, critical add-ons).
const TOLERATED: &[&str] = &[
    "node.kubernetes.io/not-ready",
    "node.kubernetes.io/unreachable",
    "node.kubernetes.io/disk-pressure",
    "node.kubernetes.io/memory-pressure",
    "node.kubernetes.io/pid-pressure",
    "node.kubernetes.io/unschedulable",
    "node-role.kubernetes.io/master",
    "node-role.kubernetes.io/control-plane",
    "CriticalAddonsOnly",
];

/// Sets the controller up over the shared `informers` (spawn them after);
/// the future it returns runs it until `cancel`.
pub fn start(
    informers: &mut Informers,
    client: Client,
    cancel: CancellationToken,
) -> futures::future::BoxFuture<'static, ()> {
    Box::pin(controller::run(
        ServiceLb::new(informers, &client, cancel),
        1,
    ))
}

struct ServiceLb {
    ctx: Context,
    client: Client,
    services: Store<Service>,
    nodes: Store<Node>,
    slices: Store<EndpointSlice>,
}

impl ServiceLb {
    fn new(informers: &mut Informers, client: &Client, cancel: CancellationToken) -> Arc<Self> {
        let mut ctx = Context::new(NAME, cancel).sync_within(CACHE_SYNC_TIMEOUT);
        let services = informers.get::<Service>().pass_on_change(&mut ctx);
        let nodes = informers.get::<Node>().pass_on_change(&mut ctx);
        let slices = informers.get::<EndpointSlice>().pass_on_change(&mut ctx);
        Arc::new(ServiceLb {
            client: ctx.client(client),
            services,
            nodes,
            slices,
            ctx,
        })
    }
}

impl Reconciler for ServiceLb {
    fn context(&self) -> &Context {
        &self.ctx
    }

    async fn reconcile(&self, _: &Key) -> anyhow::Result<Action> {
        let services = self.services.state();
        let nodes = self.nodes.state();
        let slices = self.slices.state();
        let wanted = plan(&services, &nodes, &slices);
        let mut again = None;
        for svc in &services {
            let Some(ips) = wanted.get(&service_key(svc)) else {
                continue;
            };
            if &current_ips(svc) == ips {
                continue;
            }
            if let Err(e) = self.write_status(svc, ips).await {
                tracing::debug!(error = %e, "writing a LoadBalancer status");
                again = Some(Duration::from_millis(500));
            }
        }
        Ok(Action::from(again).sooner(Action::requeue(RESYNC)))
    }

    fn error_policy(&self, _: &Key, error: &anyhow::Error, _: u32) -> Action {
        util::pass_failed(NAME, error)
    }
}

impl ServiceLb {
    /// Writes `ips` as the Service's ingress, and an Event as k3s does.
    async fn write_status(&self, svc: &Service, ips: &[String]) -> kube::Result<()> {
        let (Some(ns), Some(name)) = (&svc.metadata.namespace, &svc.metadata.name) else {
            return Ok(());
        };
        let ingress: Vec<_> = ips.iter().map(|ip| json!({"ip": ip})).collect();
        let patch = if ingress.is_empty() {
            json!({"status": {"loadBalancer": {"ingress": null}}})
        } else {
            json!({"status": {"loadBalancer": {"ingress": ingress}}})
        };
        let api: Api<Service> = Api::namespaced(self.client.clone(), ns);
        match api
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {}
            Err(e) if util::not_found(&e) => return Ok(()),
            Err(e) => return Err(e),
        }
        if !is_load_balancer(svc) {
            return Ok(());
        }
        let (type_, reason, message) = if ips.is_empty() {
            let m = "There are no available nodes for LoadBalancer".to_string();
            ("Warning", "UnAvailableLoadBalancer", m)
        } else {
            // Go's `%v` of the lists, as k3s writes it.
            let before = current_ips(svc).join(" ");
            let m = format!(
                "Updated LoadBalancer with new IPs: [{before}] -> [{}]",
                ips.join(" ")
            );
            ("Normal", "UpdatedLoadBalancer", m)
        };
        crate::podutil::record_event(&self.client, NAME, svc, type_, reason, message);
        Ok(())
    }
}

/// `namespace/name`.
fn service_key(svc: &Service) -> String {
    format!(
        "{}/{}",
        svc.metadata.namespace.as_deref().unwrap_or_default(),
        svc.metadata.name.as_deref().unwrap_or_default()
    )
}

/// A LoadBalancer Service this implementation serves (no other class).
fn is_load_balancer(svc: &Service) -> bool {
    svc.spec.as_ref().is_some_and(|s| {
        s.type_.as_deref() == Some("LoadBalancer") && s.load_balancer_class.is_none()
    })
}

/// The ingress IPs the Service has now.
fn current_ips(svc: &Service) -> Vec<String> {
    svc.status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .map(|i| i.iter().filter_map(|i| i.ip.clone()).collect())
        .unwrap_or_default()
}

/// The ingress IPs every Service should have, by `namespace/name`: those
/// this controller serves, and those that stopped being LoadBalancers but
/// still show addresses (to be cleared). Others are absent.
pub(crate) fn plan(
    services: &[Arc<Service>],
    nodes: &[Arc<Node>],
    slices: &[Arc<EndpointSlice>],
) -> HashMap<String, Vec<String>> {
    let mut out = HashMap::new();
    let selection = nodes
        .iter()
        .any(|n| labels(&n.metadata).contains_key(ENABLE_LB_LABEL));
    let usable: Vec<&Node> = nodes
        .iter()
        .map(AsRef::as_ref)
        .filter(|n| usable(n))
        .collect();
    let mut lbs: Vec<&Service> = services
        .iter()
        .map(AsRef::as_ref)
        .filter(|s| is_load_balancer(s) && s.metadata.deletion_timestamp.is_none())
        .collect();
    // Older Services hold their ports first, as their svclb pods would.
    // Creation times have whole seconds: of two made in the same second, the
    // one already serving keeps its ports (its svclb pods would be running),
    // so a newcomer never takes them over.
    lbs.sort_by_key(|s| {
        (
            s.metadata.creation_timestamp.as_ref().map(|t| t.0),
            current_ips(s).is_empty(),
            service_key(s),
        )
    });
    // (node, protocol, port) held.
    let mut held: HashSet<(String, String, i32)> = HashSet::new();
    for svc in lbs {
        let ports = ports(svc);
        let mut serving = Vec::new();
        for node in &usable {
            let name = node.metadata.name.clone().unwrap_or_default();
            let eligible = !selection || in_selection(node, svc);
            let free = ports
                .iter()
                .all(|(proto, port)| !held.contains(&(name.clone(), proto.clone(), *port)));
            if eligible && free {
                for (proto, port) in &ports {
                    held.insert((name.clone(), proto.clone(), *port));
                }
                serving.push(*node);
            }
        }
        if local_traffic(svc) {
            let ready = ready_endpoint_nodes(svc, slices);
            serving.retain(|n| n.metadata.name.as_ref().is_some_and(|m| ready.contains(m)));
        }
        out.insert(service_key(svc), addresses(svc, &serving));
    }
    for svc in services {
        let other_class = svc
            .spec
            .as_ref()
            .is_some_and(|s| s.load_balancer_class.is_some());
        if !is_load_balancer(svc) && !other_class && !current_ips(svc).is_empty() {
            out.insert(service_key(svc), Vec::new());
        }
    }
    out
}

fn labels(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> std::collections::BTreeMap<String, String> {
    meta.labels.clone().unwrap_or_default()
}

/// Whether a node can run the svclb pods: Ready, staying, no taint they
/// would not tolerate.
fn usable(node: &Node) -> bool {
    if node.metadata.deletion_timestamp.is_some() {
        return false;
    }
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    let taints = node.spec.as_ref().and_then(|s| s.taints.as_ref());
    let blocked = taints.is_some_and(|ts| {
        ts.iter().any(|t| {
            (t.effect == "NoSchedule" || t.effect == "NoExecute")
                && !TOLERATED.contains(&t.key.as_str())
        })
    });
    ready && !blocked
}

/// With node selection on: the node says `enablelb=true` and is in the
/// Service's pool, if it names one.
fn in_selection(node: &Node, svc: &Service) -> bool {
    let node_labels = labels(&node.metadata);
    if node_labels.get(ENABLE_LB_LABEL).map(String::as_str) != Some("true") {
        return false;
    }
    match labels(&svc.metadata)
        .get(LB_POOL_LABEL)
        .filter(|p| !p.is_empty())
    {
        Some(pool) => node_labels.get(LB_POOL_LABEL) == Some(pool),
        None => true,
    }
}

/// The Service's (protocol, port) pairs.
fn ports(svc: &Service) -> Vec<(String, i32)> {
    svc.spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .map(|ps| {
            ps.iter()
                .map(|p| (p.protocol.clone().unwrap_or_else(|| "TCP".into()), p.port))
                .collect()
        })
        .unwrap_or_default()
}

fn local_traffic(svc: &Service) -> bool {
    svc.spec
        .as_ref()
        .is_some_and(|s| s.external_traffic_policy.as_deref() == Some("Local"))
}

/// The nodes with a ready pod endpoint of the Service.
fn ready_endpoint_nodes(svc: &Service, slices: &[Arc<EndpointSlice>]) -> HashSet<String> {
    let ns = svc.metadata.namespace.as_deref();
    let name = svc.metadata.name.as_deref();
    slices
        .iter()
        .filter(|s| s.metadata.namespace.as_deref() == ns)
        .filter(|s| {
            labels(&s.metadata)
                .get("kubernetes.io/service-name")
                .map(String::as_str)
                == name
        })
        .flat_map(|s| s.endpoints.iter())
        .filter(|e| {
            let pod = e.target_ref.as_ref().and_then(|r| r.kind.as_deref()) == Some("Pod");
            let ready = e.conditions.as_ref().and_then(|c| c.ready) == Some(true);
            pod && ready
        })
        .filter_map(|e| e.node_name.clone())
        .collect()
}

/// The serving nodes' ExternalIPs if any has one, else their InternalIPs,
/// by the Service's IP families (IPv4 first when it names none), sorted.
fn addresses(svc: &Service, serving: &[&Node]) -> Vec<String> {
    let of_type = |ty: &str| -> BTreeSet<String> {
        serving
            .iter()
            .filter_map(|n| n.status.as_ref()?.addresses.as_ref())
            .flatten()
            .filter(|a| a.type_ == ty)
            .map(|a| a.address.clone())
            .collect()
    };
    let external = of_type("ExternalIP");
    let ips = if external.is_empty() {
        of_type("InternalIP")
    } else {
        external
    };
    let families: Vec<String> = svc
        .spec
        .as_ref()
        .and_then(|s| s.ip_families.clone())
        .filter(|f| !f.is_empty())
        .unwrap_or_else(|| vec!["IPv4".into()]);
    let mut out = Vec::new();
    for family in families {
        let v6 = family == "IPv6";
        out.extend(
            ips.iter()
                .filter(|ip| {
                    ip.parse::<std::net::IpAddr>()
                        .is_ok_and(|a| a.is_ipv6() == v6)
                })
                .cloned(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, ip: &str, labels: serde_json::Value) -> Arc<Node> {
        node_with(name, ip, labels, json!([]), "True")
    }

    fn node_with(
        name: &str,
        ip: &str,
        labels: serde_json::Value,
        taints: serde_json::Value,
        ready: &str,
    ) -> Arc<Node> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "labels": labels},
                "spec": {"taints": taints},
                "status": {"addresses": [{"type": "InternalIP", "address": ip},
                                         {"type": "Hostname", "address": name}],
                           "conditions": [{"type": "Ready", "status": ready}]}
            }))
            .unwrap(),
        )
    }

    fn svc(name: &str, created: &str, spec: serde_json::Value) -> Arc<Service> {
        let mut spec = spec;
        if spec.get("type").is_none() {
            spec["type"] = json!("LoadBalancer");
        }
        if spec.get("ports").is_none() {
            spec["ports"] = json!([{"port": 80, "protocol": "TCP"}]);
        }
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "default", "creationTimestamp": created},
                "spec": spec
            }))
            .unwrap(),
        )
    }

    const T0: &str = "2026-01-01T00:00:00Z";
    const T1: &str = "2026-01-01T00:00:01Z";

    fn three() -> Vec<Arc<Node>> {
        vec![
            node("n2", "10.0.0.12", json!({})),
            node("n0", "10.0.0.10", json!({})),
            node("n1", "10.0.0.11", json!({})),
        ]
    }

    #[test]
    fn every_ready_node_serves_by_its_internal_ip_sorted() {
        let plan = plan(&[svc("web", T0, json!({}))], &three(), &[]);
        assert_eq!(plan["default/web"], ["10.0.0.10", "10.0.0.11", "10.0.0.12"]);
    }

    #[test]
    fn external_ips_win_when_any_node_has_one() {
        let mut nodes = three();
        let mut n: Node = (*nodes[0]).clone();
        if let Some(st) = n.status.as_mut() {
            st.addresses.get_or_insert_with(Vec::new).push(
                serde_json::from_value(json!({"type": "ExternalIP", "address": "203.0.113.7"}))
                    .unwrap(),
            );
        }
        nodes[0] = Arc::new(n);
        let plan = plan(&[svc("web", T0, json!({}))], &nodes, &[]);
        assert_eq!(plan["default/web"], ["203.0.113.7"]);
    }

    #[test]
    fn not_ready_and_tainted_nodes_do_not_serve_but_control_planes_do() {
        let nodes = vec![
            node_with("n0", "10.0.0.10", json!({}), json!([]), "Unknown"),
            node_with(
                "n1",
                "10.0.0.11",
                json!({}),
                json!([{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]),
                "True",
            ),
            node_with(
                "n2",
                "10.0.0.12",
                json!({}),
                json!([{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]),
                "True",
            ),
        ];
        let plan = plan(&[svc("web", T0, json!({}))], &nodes, &[]);
        assert_eq!(plan["default/web"], ["10.0.0.12"]);
    }

    #[test]
    fn the_enablelb_label_selects_nodes_and_lbpool_splits_them() {
        let nodes = vec![
            node(
                "n0",
                "10.0.0.10",
                json!({ENABLE_LB_LABEL: "true", LB_POOL_LABEL: "a"}),
            ),
            node("n1", "10.0.0.11", json!({ENABLE_LB_LABEL: "false"})),
            node(
                "n2",
                "10.0.0.12",
                json!({ENABLE_LB_LABEL: "true", LB_POOL_LABEL: "b"}),
            ),
            node("n3", "10.0.0.13", json!({})),
        ];
        let mut pooled = (*svc("pooled", T1, json!({"ports": [{"port": 81}]}))).clone();
        pooled.metadata.labels = Some([(LB_POOL_LABEL.to_string(), "b".to_string())].into());
        let plan = plan(&[svc("web", T0, json!({})), Arc::new(pooled)], &nodes, &[]);
        assert_eq!(plan["default/web"], ["10.0.0.10", "10.0.0.12"]);
        assert_eq!(plan["default/pooled"], ["10.0.0.12"]);
    }

    #[test]
    fn an_older_service_keeps_its_port_on_every_node() {
        let services = [
            svc("young", T1, json!({})),
            svc("old", T0, json!({})),
            svc("other-port", T1, json!({"ports": [{"port": 8080}]})),
            svc(
                "udp",
                T1,
                json!({"ports": [{"port": 80, "protocol": "UDP"}]}),
            ),
        ];
        let plan = plan(&services, &three(), &[]);
        assert_eq!(plan["default/old"].len(), 3);
        assert_eq!(plan["default/young"], Vec::<String>::new());
        assert_eq!(plan["default/other-port"].len(), 3);
        assert_eq!(plan["default/udp"].len(), 3);
    }

    #[test]
    fn of_two_made_in_one_second_the_one_already_serving_keeps_its_port() {
        let mut serving = (*svc("web", T0, json!({}))).clone();
        serving.status = Some(
            serde_json::from_value(json!({"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}}))
                .unwrap(),
        );
        // "late" sorts first by name; being younger only within the second,
        // it must not take the port "web" serves.
        let services = [svc("late", T0, json!({})), Arc::new(serving)];
        let plan = plan(&services, &three(), &[]);
        assert_eq!(plan["default/web"].len(), 3);
        assert_eq!(plan["default/late"], Vec::<String>::new());
    }

    #[test]
    fn local_policy_lists_only_nodes_with_a_ready_endpoint() {
        let slice: EndpointSlice = serde_json::from_value(json!({
            "metadata": {"name": "web-x", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "endpoints": [
                {"addresses": ["10.42.1.5"], "nodeName": "n1", "conditions": {"ready": true},
                 "targetRef": {"kind": "Pod", "name": "a"}},
                {"addresses": ["10.42.2.5"], "nodeName": "n2", "conditions": {"ready": false},
                 "targetRef": {"kind": "Pod", "name": "b"}}
            ]
        }))
        .unwrap();
        let services = [svc("web", T0, json!({"externalTrafficPolicy": "Local"}))];
        let plan = plan(&services, &three(), &[Arc::new(slice)]);
        assert_eq!(plan["default/web"], ["10.0.0.11"]);
    }

    #[test]
    fn other_classes_are_left_alone_and_former_load_balancers_are_cleared() {
        let mut former = (*svc("former", T0, json!({"type": "ClusterIP"}))).clone();
        former.status = Some(
            serde_json::from_value(json!({"loadBalancer": {"ingress": [{"ip": "10.0.0.10"}]}}))
                .unwrap(),
        );
        let services = [
            svc("classy", T0, json!({"loadBalancerClass": "example.com/lb"})),
            Arc::new(former),
            svc("plain", T0, json!({"type": "ClusterIP"})),
        ];
        let plan = plan(&services, &three(), &[]);
        assert!(!plan.contains_key("default/classy"));
        assert!(!plan.contains_key("default/plain"));
        assert_eq!(plan["default/former"], Vec::<String>::new());
    }
}
