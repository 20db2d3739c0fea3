//! A pod's CRI sandbox configuration: metadata and labels, hostname, DNS (the
//! dnsPolicy rules of Kubernetes), host ports, and the Linux namespaces and security
//! context shared by its containers.

use std::collections::HashMap;
use std::path::Path;

use k8s_openapi::api::core::v1::Pod;

use crate::cri::{api, labels};
use crate::KubeletConfig;

/// DATA_DIR/agent/pods/<uid>: where container logs are written.
pub(crate) fn log_dir(config: &KubeletConfig, uid: &str) -> std::path::PathBuf {
    config.agent_dir().join("pods").join(uid).join("logs")
}

/// The labels that tie runtime objects to the pod.
pub(crate) fn pod_labels(pod: &Pod) -> HashMap<String, String> {
    let m = &pod.metadata;
    HashMap::from([
        (
            labels::POD_NAME.to_string(),
            m.name.clone().unwrap_or_default(),
        ),
        (
            labels::POD_NAMESPACE.to_string(),
            m.namespace.clone().unwrap_or_default(),
        ),
        (
            labels::POD_UID.to_string(),
            m.uid.clone().unwrap_or_default(),
        ),
    ])
}

/// The host's resolver settings (nameservers, search domains, options).
pub(crate) fn host_resolv_conf(path: &Path) -> (Vec<String>, Vec<String>, Vec<String>) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let (mut ns, mut search, mut opts) = (Vec::new(), Vec::new(), Vec::new());
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => ns.extend(words.next().map(str::to_string)),
            Some("search") | Some("domain") => search = words.map(str::to_string).collect(),
            Some("options") => opts.extend(words.map(str::to_string)),
            _ => {}
        }
    }
    (ns, search, opts)
}

/// DNS for the pod by its dnsPolicy and dnsConfig, as the kubelet computes it.
pub(crate) fn dns_config(pod: &Pod, config: &KubeletConfig) -> api::DnsConfig {
    let spec = pod.spec.as_ref();
    let host_network = spec.and_then(|s| s.host_network).unwrap_or(false);
    let policy = spec
        .and_then(|s| s.dns_policy.clone())
        .unwrap_or_else(|| "ClusterFirst".into());
    let ns = pod
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let domain = &config.cluster_domain;
    let (host_ns, host_search, host_opts) = host_resolv_conf(Path::new("/etc/resolv.conf"));
    let cluster = match policy.as_str() {
        "ClusterFirstWithHostNet" => true,
        "ClusterFirst" => !host_network,
        _ => false,
    };
    let mut dns = if cluster {
        let mut searches = vec![
            format!("{ns}.svc.{domain}"),
            format!("svc.{domain}"),
            domain.clone(),
        ];
        searches.extend(host_search);
        api::DnsConfig {
            servers: vec![config.cluster_dns.to_string()],
            searches,
            options: vec!["ndots:5".into()],
        }
    } else if policy == "None" {
        api::DnsConfig::default()
    } else {
        api::DnsConfig {
            servers: host_ns,
            searches: host_search,
            options: host_opts,
        }
    };
    if let Some(extra) = spec.and_then(|s| s.dns_config.as_ref()) {
        for s in extra.nameservers.iter().flatten() {
            if !dns.servers.contains(s) {
                dns.servers.push(s.clone());
            }
        }
        for s in extra.searches.iter().flatten() {
            if !dns.searches.contains(s) {
                dns.searches.push(s.clone());
            }
        }
        for o in extra.options.iter().flatten() {
            let rendered = match &o.value {
                Some(v) => format!("{}:{v}", o.name.as_deref().unwrap_or("")),
                None => o.name.clone().unwrap_or_default(),
            };
            let key = o.name.clone().unwrap_or_default();
            dns.options
                .retain(|x| x.split(':').next() != Some(key.as_str()));
            dns.options.push(rendered);
        }
    }
    // Kubernetes' limits: 3 nameservers, 32 search domains.
    dns.servers.truncate(3);
    dns.searches.truncate(32);
    dns
}

fn namespace_options(pod: &Pod) -> api::NamespaceOption {
    let spec = pod.spec.as_ref();
    let node_or = |on: Option<bool>, default: api::NamespaceMode| {
        if on.unwrap_or(false) {
            api::NamespaceMode::Node as i32
        } else {
            default as i32
        }
    };
    let pid_default = if spec
        .and_then(|s| s.share_process_namespace)
        .unwrap_or(false)
    {
        api::NamespaceMode::Pod
    } else {
        api::NamespaceMode::Container
    };
    api::NamespaceOption {
        network: node_or(spec.and_then(|s| s.host_network), api::NamespaceMode::Pod),
        pid: node_or(spec.and_then(|s| s.host_pid), pid_default),
        ipc: node_or(spec.and_then(|s| s.host_ipc), api::NamespaceMode::Pod),
        ..Default::default()
    }
}

/// The namespaces of the pod's containers (also used for each container).
pub(crate) fn container_namespace_options(pod: &Pod) -> api::NamespaceOption {
    namespace_options(pod)
}

/// The pod's supplemental groups, with its fsGroup last (as Kubernetes adds it).
pub(crate) fn supplemental_groups(
    psc: &k8s_openapi::api::core::v1::PodSecurityContext,
) -> Vec<i64> {
    let mut groups = psc.supplemental_groups.clone().unwrap_or_default();
    groups.extend(psc.fs_group);
    groups
}

/// The sandbox config for attempt `attempt` of the pod.
pub(crate) fn sandbox_config(
    pod: &Pod,
    attempt: u32,
    config: &KubeletConfig,
) -> api::PodSandboxConfig {
    let m = &pod.metadata;
    let spec = pod.spec.clone().unwrap_or_default();
    let uid = m.uid.clone().unwrap_or_default();
    let name = m.name.clone().unwrap_or_default();
    let hostname = spec
        .hostname
        .clone()
        .unwrap_or_else(|| name.chars().take(63).collect());
    let mut labels = pod_labels(pod);
    for (k, v) in m.labels.iter().flatten() {
        labels.entry(k.clone()).or_insert_with(|| v.clone());
    }
    let port_mappings = spec
        .containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .filter(|p| p.host_port.unwrap_or(0) > 0)
        .map(|p| api::PortMapping {
            protocol: match p.protocol.as_deref() {
                Some("UDP") => api::Protocol::Udp as i32,
                Some("SCTP") => api::Protocol::Sctp as i32,
                _ => api::Protocol::Tcp as i32,
            },
            container_port: p.container_port,
            host_port: p.host_port.unwrap_or(0),
            host_ip: p.host_ip.clone().unwrap_or_default(),
        })
        .collect();
    let psc = spec.security_context.clone().unwrap_or_default();
    let privileged = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .any(|c| {
            c.security_context
                .as_ref()
                .and_then(|s| s.privileged)
                .unwrap_or(false)
        });
    let sysctls = psc
        .sysctls
        .iter()
        .flatten()
        .map(|s| (s.name.clone(), s.value.clone()))
        .collect();
    api::PodSandboxConfig {
        metadata: Some(api::PodSandboxMetadata {
            name,
            uid: uid.clone(),
            namespace: m.namespace.clone().unwrap_or_default(),
            attempt,
        }),
        hostname: if spec.host_network.unwrap_or(false) {
            String::new()
        } else {
            hostname
        },
        log_directory: log_dir(config, &uid).display().to_string(),
        dns_config: Some(dns_config(pod, config)),
        port_mappings,
        labels,
        annotations: m
            .annotations
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        linux: Some(api::LinuxPodSandboxConfig {
            cgroup_parent: String::new(),
            security_context: Some(api::LinuxSandboxSecurityContext {
                namespace_options: Some(namespace_options(pod)),
                run_as_user: psc.run_as_user.map(|v| api::Int64Value { value: v }),
                run_as_group: psc.run_as_group.map(|v| api::Int64Value { value: v }),
                supplemental_groups: supplemental_groups(&psc),
                privileged,
                ..Default::default()
            }),
            sysctls,
            ..Default::default()
        }),
        windows: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodDNSConfig, PodDNSConfigOption, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod(policy: Option<&str>, dns: Option<PodDNSConfig>) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                namespace: Some("team".into()),
                uid: Some("u1".into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                dns_policy: policy.map(str::to_string),
                dns_config: dns,
                ..Default::default()
            }),
            status: None,
        }
    }

    #[test]
    fn cluster_first_uses_cluster_dns_and_search_path() {
        let cfg = KubeletConfig::new("n", "/tmp/x");
        let d = dns_config(&pod(None, None), &cfg);
        assert_eq!(d.servers, vec!["10.43.0.10"]);
        assert_eq!(
            &d.searches[..3],
            [
                "team.svc.cluster.local",
                "svc.cluster.local",
                "cluster.local"
            ]
        );
        assert_eq!(d.options, vec!["ndots:5"]);
    }

    #[test]
    fn none_takes_only_dns_config() {
        let cfg = KubeletConfig::new("n", "/tmp/x");
        let d = dns_config(
            &pod(
                Some("None"),
                Some(PodDNSConfig {
                    nameservers: Some(vec!["1.2.3.4".into()]),
                    searches: Some(vec!["example.test".into()]),
                    options: Some(vec![PodDNSConfigOption {
                        name: Some("ndots".into()),
                        value: Some("2".into()),
                    }]),
                }),
            ),
            &cfg,
        );
        assert_eq!(d.servers, vec!["1.2.3.4"]);
        assert_eq!(d.searches, vec!["example.test"]);
        assert_eq!(d.options, vec!["ndots:2"]);
    }

    #[test]
    fn dns_config_options_override_by_name() {
        let cfg = KubeletConfig::new("n", "/tmp/x");
        let d = dns_config(
            &pod(
                None,
                Some(PodDNSConfig {
                    options: Some(vec![PodDNSConfigOption {
                        name: Some("ndots".into()),
                        value: Some("1".into()),
                    }]),
                    ..Default::default()
                }),
            ),
            &cfg,
        );
        assert_eq!(d.options, vec!["ndots:1"]);
    }
}
