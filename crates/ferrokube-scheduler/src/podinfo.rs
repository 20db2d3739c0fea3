//! What the scheduler reads from a pod, computed once per pod version:
//! resource requests (with init containers and overhead as Kubernetes counts
//! them), host ports, node selection, tolerations, inter-pod terms and
//! topology spread constraints.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Container, Pod, PodAffinityTerm, PodSpec, Toleration};

use crate::resources::{Resources, CPU, MEMORY};
use crate::selectors::{Labels, NodeSelectorTerms, NodeTerm, Selector};

/// CPU counted for scoring when a container sets no CPU request (100m).
pub(crate) const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// Memory counted for scoring when a container sets no memory request (200 MiB).
pub(crate) const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// Which namespaces an inter-pod term looks at.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct AffinityTerm {
    pub namespaces: BTreeSet<String>,
    /// `namespaceSelector`, when given (an empty one selects every namespace).
    pub namespace_selector: Option<Selector>,
    pub selector: Selector,
    pub topology_key: String,
    pub weight: i32,
}

impl AffinityTerm {
    fn new(t: &PodAffinityTerm, pod_ns: &str, pod_labels: &Labels, weight: i32) -> AffinityTerm {
        let mut selector = Selector::from_label_selector(t.label_selector.as_ref())
            .unwrap_or_else(|_| Selector::nothing());
        selector.add_label_keys(
            t.match_label_keys.as_deref().unwrap_or(&[]),
            pod_labels,
            false,
        );
        selector.add_label_keys(
            t.mismatch_label_keys.as_deref().unwrap_or(&[]),
            pod_labels,
            true,
        );
        let mut namespaces: BTreeSet<String> = t.namespaces.iter().flatten().cloned().collect();
        let namespace_selector = t.namespace_selector.as_ref().map(|s| {
            Selector::from_label_selector(Some(s)).unwrap_or_else(|_| Selector::nothing())
        });
        if namespaces.is_empty() && namespace_selector.is_none() {
            namespaces.insert(pod_ns.to_string());
        }
        AffinityTerm {
            namespaces,
            namespace_selector,
            selector,
            topology_key: t.topology_key.clone(),
            weight,
        }
    }

    /// Whether `pod` (with its namespace's labels) is one this term selects.
    pub(crate) fn matches(&self, pod: &PodInfo, namespaces: &HashMap<String, Labels>) -> bool {
        let ns_ok = self.namespaces.contains(&pod.namespace)
            || self.namespace_selector.as_ref().is_some_and(|s| {
                s.is_empty() || namespaces.get(&pod.namespace).is_some_and(|l| s.matches(l))
            });
        ns_ok && self.selector.matches(&pod.labels)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SpreadConstraint {
    pub max_skew: i32,
    pub topology_key: String,
    pub hard: bool,
    pub selector: Selector,
    pub min_domains: i32,
    /// nodeAffinityPolicy Honor (default): only nodes the pod may go to count.
    pub honor_node_affinity: bool,
    /// nodeTaintsPolicy Honor: only nodes whose taints the pod tolerates count.
    pub honor_taints: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct HostPort {
    pub protocol: String,
    pub ip: String,
    pub port: i32,
}

impl HostPort {
    /// Two ports conflict when protocol and port agree and either IP is a
    /// wildcard or both are the same.
    pub fn conflicts(&self, o: &HostPort) -> bool {
        self.port == o.port
            && self.protocol == o.protocol
            && (self.ip == o.ip || self.ip == "0.0.0.0" || o.ip == "0.0.0.0")
    }
}

/// A pod as the scheduler reads it: what its filters and scores need,
/// taken from the spec once when the pod is seen.
#[derive(Debug)]
pub struct PodInfo {
    pub(crate) pod: Arc<Pod>,
    pub(crate) key: String,
    pub(crate) namespace: String,
    /// The pod's name (`metadata.name`).
    pub name: String,
    pub(crate) uid: String,
    pub(crate) labels: Labels,
    pub(crate) priority: i32,
    pub(crate) scheduler_name: String,
    pub(crate) node_name: String,
    pub(crate) requests: Resources,
    pub(crate) non_zero_cpu: i64,
    pub(crate) non_zero_memory: i64,
    pub(crate) host_ports: Vec<HostPort>,
    pub(crate) node_selector: Labels,
    pub(crate) required_node_affinity: Option<NodeSelectorTerms>,
    /// The only nodes the required node affinity can admit, when every
    /// term names them with `matchFields metadata.name In` (NodeAffinity's
    /// PreFilter result; a DaemonSet pod names exactly one).
    pub(crate) node_names: Option<BTreeSet<String>>,
    pub(crate) preferred_node_affinity: Vec<(i32, NodeTerm)>,
    pub(crate) tolerations: Vec<Toleration>,
    pub(crate) required_affinity: Vec<AffinityTerm>,
    pub(crate) required_anti_affinity: Vec<AffinityTerm>,
    pub(crate) preferred_affinity: Vec<AffinityTerm>,
    pub(crate) preferred_anti_affinity: Vec<AffinityTerm>,
    pub(crate) spread: Vec<SpreadConstraint>,
    pub(crate) images: Vec<String>,
    pub(crate) terminating: bool,
}

fn container_requests(c: &Container) -> Resources {
    Resources::from_list(c.resources.as_ref().and_then(|r| r.requests.as_ref()))
}

fn non_zero(c: &Container) -> (i64, i64) {
    let req = c.resources.as_ref().and_then(|r| r.requests.as_ref());
    let r = Resources::from_list(req);
    let has = |k: &str| req.is_some_and(|m| m.contains_key(k));
    (
        if has(CPU) {
            r.milli_cpu
        } else {
            DEFAULT_MILLI_CPU_REQUEST
        },
        if has(MEMORY) {
            r.memory
        } else {
            DEFAULT_MEMORY_REQUEST
        },
    )
}

/// The pod's effective requests as Kubernetes' resource helpers compute them:
/// the larger of (all app containers + all sidecars) and, for each regular
/// init container, its own request plus the sidecars started before it;
/// then the pod overhead. Also the same with 100m / 200 MiB for unset CPU /
/// memory requests (used for scoring).
pub(crate) fn pod_requests(pod: &Pod) -> (Resources, i64, i64) {
    let Some(spec) = pod.spec.as_ref() else {
        return (Resources::default(), 0, 0);
    };
    let mut sum = Resources::default();
    let (mut nz_cpu, mut nz_mem) = (0i64, 0i64);
    for c in &spec.containers {
        sum.add(&container_requests(c));
        let (a, b) = non_zero(c);
        nz_cpu += a;
        nz_mem += b;
    }
    let mut sidecars = Resources::default();
    let (mut sc_cpu, mut sc_mem) = (0i64, 0i64);
    let mut init_max = Resources::default();
    let (mut init_cpu, mut init_mem) = (0i64, 0i64);
    for c in spec.init_containers.iter().flatten() {
        let r = container_requests(c);
        let (a, b) = non_zero(c);
        if c.restart_policy.as_deref() == Some("Always") {
            sidecars.add(&r);
            sc_cpu += a;
            sc_mem += b;
            let mut with = sidecars.clone();
            with.max_with(&Resources::default());
            init_max.max_with(&with);
            init_cpu = init_cpu.max(sc_cpu);
            init_mem = init_mem.max(sc_mem);
        } else {
            let mut with = r.clone();
            with.add(&sidecars);
            init_max.max_with(&with);
            init_cpu = init_cpu.max(a + sc_cpu);
            init_mem = init_mem.max(b + sc_mem);
        }
    }
    sum.add(&sidecars);
    nz_cpu += sc_cpu;
    nz_mem += sc_mem;
    sum.max_with(&init_max);
    nz_cpu = nz_cpu.max(init_cpu);
    nz_mem = nz_mem.max(init_mem);
    if let Some(o) = spec.overhead.as_ref() {
        let o = Resources::from_list(Some(o));
        sum.add(&o);
        nz_cpu += o.milli_cpu;
        nz_mem += o.memory;
    }
    sum.pods = 0;
    (sum, nz_cpu, nz_mem)
}

/// An image reference as nodes report it: a tag added when there is none.
/// An image reference in full: registry `docker.io` (and `library/` for a
/// one-part name) when none is given, tag `latest` when there is no tag or
/// digest, as Kubernetes' image locality compares them.
pub(crate) fn normalize_image(name: &str) -> String {
    let first = name.split('/').next().unwrap_or(name);
    let has_domain =
        name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let mut full = if has_domain {
        name.to_string()
    } else if name.contains('/') {
        format!("docker.io/{name}")
    } else {
        format!("docker.io/library/{name}")
    };
    let last = full.rsplit('/').next().unwrap_or("");
    if !full.contains('@') && !last.contains(':') {
        full.push_str(":latest");
    }
    full
}

/// The host ports the pod's containers and init containers ask for
/// (Kubernetes' defaults: TCP, every address).
fn host_ports(spec: &PodSpec) -> Vec<HostPort> {
    let mut host_ports = Vec::new();
    for c in spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
    {
        for p in c.ports.iter().flatten() {
            if let Some(hp) = p.host_port.filter(|p| *p > 0) {
                let ip = p.host_ip.clone().filter(|s| !s.is_empty());
                host_ports.push(HostPort {
                    protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                    ip: ip.unwrap_or_else(|| "0.0.0.0".into()),
                    port: hp,
                });
            }
        }
    }
    host_ports
}

/// The pod's topology spread constraints, their selectors extended with
/// `matchLabelKeys` from the pod's `labels`.
fn spread_constraints(spec: &PodSpec, labels: &Labels) -> Vec<SpreadConstraint> {
    spec.topology_spread_constraints
        .iter()
        .flatten()
        .map(|c| {
            let mut selector = Selector::from_label_selector(c.label_selector.as_ref())
                .unwrap_or_else(|_| Selector::nothing());
            selector.add_label_keys(c.match_label_keys.as_deref().unwrap_or(&[]), labels, false);
            SpreadConstraint {
                max_skew: c.max_skew.max(1),
                topology_key: c.topology_key.clone(),
                hard: c.when_unsatisfiable != "ScheduleAnyway",
                selector,
                min_domains: c.min_domains.unwrap_or(1).max(1),
                honor_node_affinity: c.node_affinity_policy.as_deref() != Some("Ignore"),
                honor_taints: c.node_taints_policy.as_deref() == Some("Honor"),
            }
        })
        .collect()
}

/// The images of the pod's containers, normalized (ImageLocality).
fn images(spec: &PodSpec) -> Vec<String> {
    spec.containers
        .iter()
        .filter_map(|c| c.image.as_deref())
        .map(normalize_image)
        .collect()
}

impl PodInfo {
    /// Reads what the scheduler needs of `pod`.
    pub fn new(pod: Arc<Pod>) -> PodInfo {
        let meta = &pod.metadata;
        let namespace = meta.namespace.clone().unwrap_or_else(|| "default".into());
        let name = meta.name.clone().unwrap_or_default();
        let labels = meta.labels.clone().unwrap_or_default();
        let spec = pod.spec.clone().unwrap_or_default();
        let (requests, non_zero_cpu, non_zero_memory) = pod_requests(&pod);
        let host_ports = host_ports(&spec);
        let affinity = spec.affinity.clone().unwrap_or_default();
        let na = affinity.node_affinity.unwrap_or_default();
        let required_node_affinity = na
            .required_during_scheduling_ignored_during_execution
            .as_ref()
            .map(NodeSelectorTerms::from_selector);
        let node_names = na
            .required_during_scheduling_ignored_during_execution
            .as_ref()
            .and_then(crate::plugins::node_affinity::prefilter_node_names);
        let preferred_node_affinity = na
            .preferred_during_scheduling_ignored_during_execution
            .iter()
            .flatten()
            .map(|p| (p.weight, NodeTerm::from_term(&p.preference)))
            .collect();
        let pa = affinity.pod_affinity.unwrap_or_default();
        let paa = affinity.pod_anti_affinity.unwrap_or_default();
        let req = |v: &Option<Vec<PodAffinityTerm>>| -> Vec<AffinityTerm> {
            v.iter()
                .flatten()
                .map(|t| AffinityTerm::new(t, &namespace, &labels, 1))
                .collect()
        };
        let required_affinity = req(&pa.required_during_scheduling_ignored_during_execution);
        let required_anti_affinity = req(&paa.required_during_scheduling_ignored_during_execution);
        let pref = |v: &Option<Vec<k8s_openapi::api::core::v1::WeightedPodAffinityTerm>>| {
            v.iter()
                .flatten()
                .map(|w| AffinityTerm::new(&w.pod_affinity_term, &namespace, &labels, w.weight))
                .collect::<Vec<_>>()
        };
        let preferred_affinity = pref(&pa.preferred_during_scheduling_ignored_during_execution);
        let preferred_anti_affinity =
            pref(&paa.preferred_during_scheduling_ignored_during_execution);
        let spread = spread_constraints(&spec, &labels);
        let images = images(&spec);
        PodInfo {
            key: format!("{namespace}/{name}"),
            uid: meta.uid.clone().unwrap_or_default(),
            priority: spec.priority.unwrap_or(0),
            scheduler_name: spec
                .scheduler_name
                .clone()
                .unwrap_or_else(|| "default-scheduler".into()),
            node_name: spec.node_name.clone().unwrap_or_default(),
            node_selector: spec.node_selector.clone().unwrap_or_default(),
            tolerations: spec.tolerations.clone().unwrap_or_default(),
            terminating: meta.deletion_timestamp.is_some(),
            namespace,
            name,
            labels,
            requests,
            non_zero_cpu,
            non_zero_memory,
            host_ports,
            required_node_affinity,
            node_names,
            preferred_node_affinity,
            required_affinity,
            required_anti_affinity,
            preferred_affinity,
            preferred_anti_affinity,
            spread,
            images,
            pod,
        }
    }

    pub(crate) fn has_required_anti_affinity(&self) -> bool {
        !self.required_anti_affinity.is_empty()
    }

    pub(crate) fn has_affinity_terms(&self) -> bool {
        !(self.required_affinity.is_empty()
            && self.required_anti_affinity.is_empty()
            && self.preferred_affinity.is_empty()
            && self.preferred_anti_affinity.is_empty())
    }
}

#[cfg(test)]
#[allow(
    clippy::option_map_unit_fn,
    reason = "the tests set fields of their test objects through Option::map"
)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodSpec, ResourceRequirements};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    fn c(cpu: Option<&str>, mem: Option<&str>, sidecar: bool) -> Container {
        let mut req = std::collections::BTreeMap::new();
        if let Some(v) = cpu {
            req.insert("cpu".to_string(), Quantity(v.into()));
        }
        if let Some(v) = mem {
            req.insert("memory".to_string(), Quantity(v.into()));
        }
        Container {
            name: "c".into(),
            resources: Some(ResourceRequirements {
                requests: Some(req),
                ..Default::default()
            }),
            restart_policy: sidecar.then(|| "Always".to_string()),
            ..Default::default()
        }
    }

    fn pod(containers: Vec<Container>, init: Vec<Container>) -> Pod {
        Pod {
            spec: Some(PodSpec {
                containers,
                init_containers: Some(init),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn init_containers_count_as_the_max_of_sum_and_each_init() {
        let p = pod(
            vec![
                c(Some("100m"), Some("100Mi"), false),
                c(Some("200m"), None, false),
            ],
            vec![c(Some("500m"), Some("50Mi"), false)],
        );
        let (r, nz_cpu, nz_mem) = pod_requests(&p);
        assert_eq!(r.milli_cpu, 500);
        assert_eq!(r.memory, 100 << 20);
        assert_eq!(nz_cpu, 500);
        assert_eq!(nz_mem, (100 << 20) + DEFAULT_MEMORY_REQUEST);
    }

    #[test]
    fn sidecars_add_to_the_app_containers() {
        let p = pod(
            vec![c(Some("100m"), None, false)],
            vec![c(Some("300m"), None, false), c(Some("50m"), None, true)],
        );
        let (r, _, _) = pod_requests(&p);
        assert_eq!(r.milli_cpu, 300, "max(100+50, 300)");
        let p = pod(
            vec![c(Some("100m"), None, false)],
            vec![c(Some("50m"), None, true), c(Some("300m"), None, false)],
        );
        let (r, _, _) = pod_requests(&p);
        assert_eq!(r.milli_cpu, 350, "the init runs beside the earlier sidecar");
    }

    #[test]
    fn images_get_a_tag() {
        assert_eq!(normalize_image("nginx"), "docker.io/library/nginx:latest");
        assert_eq!(
            normalize_image("nginx:1.25"),
            "docker.io/library/nginx:1.25"
        );
        assert_eq!(normalize_image("me/app"), "docker.io/me/app:latest");
        assert_eq!(normalize_image("reg:5000/app"), "reg:5000/app:latest");
        assert_eq!(
            normalize_image("docker.io/library/nginx:1"),
            "docker.io/library/nginx:1"
        );
    }
}
