//! The kubelet-managed `/etc/hosts` of a pod, as Kubernetes writes it: localhost
//! and the IPv6 names, the pod's own address with its hostname (and its FQDN when
//! the pod has a subdomain), then the pod's `hostAliases`. A hostNetwork pod gets
//! the node's own hosts file under a header of its own, then its aliases. One file
//! per pod (DATA_DIR/agent/pods/UID/etc-hosts), mounted at /etc/hosts in each
//! container that mounts nothing there itself.

use k8s_openapi::api::core::v1::Pod;

use crate::cri::api;
use crate::KubeletConfig;

const HEADER: &str = "# Kubernetes-managed hosts file.\n";
const HEADER_HOST_NETWORK: &str = "# Kubernetes-managed hosts file (host network).\n";

/// The pod's hostname and, with a subdomain, its domain
/// (`SUBDOMAIN.NAMESPACE.svc.CLUSTER_DOMAIN`).
pub(crate) fn host_and_domain(pod: &Pod, cluster_domain: &str) -> (String, Option<String>) {
    let spec = pod.spec.as_ref();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let host = spec
        .and_then(|s| s.hostname.clone())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| {
            let cut: String = name.chars().take(63).collect();
            cut.trim_end_matches(['-', '.']).to_string()
        });
    let domain = spec
        .and_then(|s| s.subdomain.clone())
        .filter(|d| !d.is_empty())
        .map(|sub| {
            let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
            format!("{sub}.{ns}.svc.{cluster_domain}")
        });
    (host, domain)
}

fn aliases(pod: &Pod) -> String {
    let list = pod.spec.as_ref().and_then(|s| s.host_aliases.as_ref());
    let Some(list) = list.filter(|l| !l.is_empty()) else {
        return String::new();
    };
    let mut out = String::from("\n# Entries added by HostAliases.\n");
    for a in list {
        for h in a.hostnames.iter().flatten() {
            out.push_str(&format!("{}\t{h}\n", a.ip));
        }
    }
    out
}

/// The file's content for a pod with addresses `ips` (not on the host network).
pub(crate) fn managed(pod: &Pod, ips: &[String], cluster_domain: &str) -> String {
    let (host, domain) = host_and_domain(pod, cluster_domain);
    let mut out = String::from(HEADER);
    out.push_str("127.0.0.1\tlocalhost\n");
    out.push_str("::1\tlocalhost ip6-localhost ip6-loopback\n");
    out.push_str("fe00::0\tip6-localnet\n");
    out.push_str("fe00::0\tip6-mcastprefix\n");
    out.push_str("fe00::1\tip6-allnodes\n");
    out.push_str("fe00::2\tip6-allrouters\n");
    for ip in ips {
        match &domain {
            Some(d) => out.push_str(&format!("{ip}\t{host}.{d}\t{host}\n")),
            None => out.push_str(&format!("{ip}\t{host}\n")),
        }
    }
    out.push_str(&aliases(pod));
    out
}

/// Writes the pod's hosts file and returns the mount of it for a container whose
/// own mounts are `mounts`; `None` when the pod has no address yet or the
/// container mounts something at /etc/hosts.
pub(crate) fn hosts_mount(
    config: &KubeletConfig,
    pod: &Pod,
    uid: &str,
    ips: &[String],
    mounts: &[api::Mount],
) -> std::io::Result<Option<api::Mount>> {
    if ips.is_empty() || mounts.iter().any(|m| m.container_path == "/etc/hosts") {
        return Ok(None);
    }
    let host_network = pod
        .spec
        .as_ref()
        .and_then(|s| s.host_network)
        .unwrap_or(false);
    let content = if host_network {
        let node = std::fs::read_to_string("/etc/hosts")?;
        format!("{HEADER_HOST_NETWORK}{node}{}", aliases(pod))
    } else {
        managed(pod, ips, &config.cluster_domain)
    };
    let dir = config.agent_dir().join("pods").join(uid);
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("etc-hosts");
    if std::fs::read_to_string(&file).ok().as_deref() != Some(content.as_str()) {
        std::fs::write(&file, content)?;
    }
    Ok(Some(api::Mount {
        container_path: "/etc/hosts".into(),
        host_path: file.display().to_string(),
        ..Default::default()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(json: serde_json::Value) -> Pod {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn the_file_is_kubernetes_own() {
        let p = pod(serde_json::json!({
            "metadata": {"name": "web", "namespace": "team"},
            "spec": {"containers": [], "hostAliases": [
                {"ip": "10.1.2.3", "hostnames": ["foo.local", "bar.local"]}]}
        }));
        assert_eq!(
            managed(&p, &["10.42.0.7".into()], "cluster.local"),
            "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n\
             ::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n\
             fe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n\
             10.42.0.7\tweb\n\n# Entries added by HostAliases.\n\
             10.1.2.3\tfoo.local\n10.1.2.3\tbar.local\n"
        );
        let sub = pod(serde_json::json!({
            "metadata": {"name": "db-0", "namespace": "team"},
            "spec": {"containers": [], "hostname": "db", "subdomain": "dbs"}
        }));
        assert!(managed(&sub, &["10.42.0.8".into()], "cluster.local")
            .ends_with("fe00::2\tip6-allrouters\n10.42.0.8\tdb.dbs.team.svc.cluster.local\tdb\n"));
    }

    #[test]
    fn no_mount_over_the_containers_own() {
        let dir = tempfile::tempdir().unwrap();
        let config = KubeletConfig::new("n", dir.path());
        let p = pod(serde_json::json!({"metadata": {"name": "web"}, "spec": {"containers": []}}));
        let m = hosts_mount(&config, &p, "u", &["10.0.0.1".into()], &[])
            .unwrap()
            .unwrap();
        assert!(std::fs::read_to_string(&m.host_path)
            .unwrap()
            .contains("10.0.0.1\tweb\n"));
        assert!(hosts_mount(&config, &p, "u", &["10.0.0.1".into()], &[m])
            .unwrap()
            .is_none());
        assert!(hosts_mount(&config, &p, "u", &[], &[]).unwrap().is_none());
    }
}
