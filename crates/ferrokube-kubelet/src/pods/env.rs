//! A container's environment as the kubelet builds it: envFrom (ConfigMaps, Secrets,
//! with prefixes), then env (values with `$(VAR)` expansion, fieldRef,
//! resourceFieldRef, configMapKeyRef, secretKeyRef), after the service-link variables
//! (every Service of the pod's namespace unless `enableServiceLinks: false`, and the
//! `kubernetes` Service always); and the same `$(VAR)` expansion for command and args.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret, Service};
use kube::api::Api;

use crate::quantity;

/// Why the environment could not be built (the container waits with
/// CreateContainerConfigError and this message).
#[derive(Debug)]
pub(crate) struct ConfigError(pub String);

/// Expands `$(NAME)` from `vars` (unknown names stay as written); `$$` is a literal `$`.
pub(crate) fn expand(input: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(input.len());
    let b = input.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' && i + 1 < b.len() {
            if b[i + 1] == b'$' {
                out.push('$');
                i += 2;
                continue;
            }
            if b[i + 1] == b'(' {
                if let Some(end) = input[i + 2..].find(')') {
                    let name = &input[i + 2..i + 2 + end];
                    if let Some(v) = vars.get(name) {
                        out.push_str(v);
                    } else {
                        out.push_str(&input[i..i + 3 + end]);
                    }
                    i += 3 + end;
                    continue;
                }
            }
        }
        let ch = input[i..].chars().next().unwrap_or('\u{fffd}');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// Pod fields a fieldRef may name.
pub(crate) fn field_value(pod: &Pod, path: &str, host_ip: &str) -> Result<String, ConfigError> {
    let m = &pod.metadata;
    let status = pod.status.as_ref();
    let keyed = |prefix: &str, map: &Option<BTreeMap<String, String>>| -> Option<String> {
        let key = path.strip_prefix(prefix)?.strip_suffix("']")?;
        Some(
            map.as_ref()
                .and_then(|m| m.get(key))
                .cloned()
                .unwrap_or_default(),
        )
    };
    if let Some(v) = keyed("metadata.labels['", &m.labels) {
        return Ok(v);
    }
    if let Some(v) = keyed("metadata.annotations['", &m.annotations) {
        return Ok(v);
    }
    let ips = || -> Vec<String> {
        status
            .and_then(|s| s.pod_ips.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|p| p.ip)
            .collect()
    };
    Ok(match path {
        "metadata.name" => m.name.clone().unwrap_or_default(),
        "metadata.namespace" => m.namespace.clone().unwrap_or_default(),
        "metadata.uid" => m.uid.clone().unwrap_or_default(),
        "spec.nodeName" => pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default(),
        "spec.serviceAccountName" => pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.hostIP" | "status.hostIPs" => host_ip.to_string(),
        "status.podIP" => status.and_then(|s| s.pod_ip.clone()).unwrap_or_default(),
        "status.podIPs" => ips().join(","),
        other => return Err(ConfigError(format!("unsupported fieldRef path {other:?}"))),
    })
}

/// A container's resource (`limits.cpu`, `requests.memory`, ...) divided by
/// `divisor` and rounded up, as a resourceFieldRef reads it.
pub(crate) fn resource_value(
    container: &Container,
    resource: &str,
    divisor: Option<&quantity::Quantity>,
    node_capacity: &BTreeMap<String, quantity::Quantity>,
) -> Result<String, ConfigError> {
    let (kind, name) = resource
        .split_once('.')
        .ok_or_else(|| ConfigError(format!("unsupported resourceFieldRef {resource:?}")))?;
    let res = container.resources.as_ref();
    let from = match kind {
        "limits" => res.and_then(|r| r.limits.as_ref()),
        "requests" => res.and_then(|r| r.requests.as_ref()),
        _ => {
            return Err(ConfigError(format!(
                "unsupported resourceFieldRef {resource:?}"
            )))
        }
    };
    // Unset limits read as the node's allocatable, as in Kubernetes.
    let q = from
        .and_then(|m| m.get(name))
        .or_else(|| {
            if kind == "limits" {
                node_capacity.get(name)
            } else {
                None
            }
        })
        .cloned()
        .unwrap_or_else(|| quantity::Quantity("0".into()));
    let default_div = quantity::Quantity("1".into());
    let div = divisor.unwrap_or(&default_div);
    let v =
        quantity::milli_value(&q).ok_or_else(|| ConfigError(format!("bad quantity {:?}", q.0)))?;
    let d = quantity::milli_value(div)
        .filter(|d| *d > 0)
        .ok_or_else(|| ConfigError(format!("bad divisor {:?}", div.0)))?;
    Ok(((v + d - 1) / d).to_string())
}

/// Context the environment is built in.
pub(crate) struct EnvContext<'a> {
    pub client: &'a kube::Client,
    pub pod: &'a Pod,
    pub host_ip: &'a str,
    pub node_capacity: &'a BTreeMap<String, quantity::Quantity>,
}

async fn config_map(ctx: &EnvContext<'_>, name: &str) -> Result<Option<ConfigMap>, ConfigError> {
    let ns = ctx.pod.metadata.namespace.as_deref().unwrap_or("default");
    Api::<ConfigMap>::namespaced(ctx.client.clone(), ns)
        .get_opt(name)
        .await
        .map_err(|e| ConfigError(format!("getting configmap {name:?}: {e}")))
}

async fn secret(ctx: &EnvContext<'_>, name: &str) -> Result<Option<Secret>, ConfigError> {
    let ns = ctx.pod.metadata.namespace.as_deref().unwrap_or("default");
    Api::<Secret>::namespaced(ctx.client.clone(), ns)
        .get_opt(name)
        .await
        .map_err(|e| ConfigError(format!("getting secret {name:?}: {e}")))
}

fn secret_data(s: &Secret) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = s
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.0).into_owned()))
        .collect();
    for (k, v) in s.string_data.iter().flatten() {
        out.insert(k.clone(), v.clone());
    }
    out
}

/// `my-svc` as `MY_SVC`, the prefix of a Service's variables.
fn env_name(s: &str) -> String {
    s.replace('-', "_").to_ascii_uppercase()
}

/// The variables Kubernetes gives a container for one Service with a cluster
/// IP: `{NAME}_SERVICE_HOST`, `{NAME}_SERVICE_PORT` (the first port),
/// `{NAME}_SERVICE_PORT_{PORT_NAME}` for named ports, and Docker's link
/// variables (`{NAME}_PORT`, `{NAME}_PORT_{port}_{PROTO}[_PROTO|_PORT|_ADDR]`).
pub(crate) fn service_env(svc: &Service) -> Vec<(String, String)> {
    let Some(spec) = &svc.spec else {
        return Vec::new();
    };
    let ip = spec.cluster_ip.clone().unwrap_or_default();
    let ports = spec.ports.as_deref().unwrap_or_default();
    let (Some(first), false) = (ports.first(), ip.is_empty() || ip == "None") else {
        return Vec::new();
    };
    let prefix = env_name(svc.metadata.name.as_deref().unwrap_or_default());
    let mut out = vec![
        (format!("{prefix}_SERVICE_HOST"), ip.clone()),
        (format!("{prefix}_SERVICE_PORT"), first.port.to_string()),
    ];
    for p in ports {
        if let Some(n) = p.name.as_deref().filter(|n| !n.is_empty()) {
            out.push((
                format!("{prefix}_SERVICE_PORT_{}", env_name(n)),
                p.port.to_string(),
            ));
        }
    }
    let host = |port: i32| match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(_)) => format!("[{ip}]:{port}"),
        _ => format!("{ip}:{port}"),
    };
    for (i, p) in ports.iter().enumerate() {
        let proto = p.protocol.clone().unwrap_or_else(|| "TCP".into());
        let url = format!("{}://{}", proto.to_ascii_lowercase(), host(p.port));
        if i == 0 {
            out.push((format!("{prefix}_PORT"), url.clone()));
        }
        let pp = format!("{prefix}_PORT_{}_{}", p.port, proto.to_ascii_uppercase());
        out.push((format!("{pp}_PROTO"), proto.to_ascii_lowercase()));
        out.push((format!("{pp}_PORT"), p.port.to_string()));
        out.push((format!("{pp}_ADDR"), ip.clone()));
        out.push((pp, url));
    }
    out
}

/// The service-link variables of the pod's container: those of every
/// Service in the pod's namespace (unless `enableServiceLinks: false`) and,
/// always, those of the API server's `kubernetes` Service in `default`, as
/// Kubernetes' kubelet gives them. A Service that cannot be listed gives none.
async fn service_links(ctx: &EnvContext<'_>) -> Vec<(String, String)> {
    let ns = ctx.pod.metadata.namespace.as_deref().unwrap_or("default");
    let links = ctx
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.enable_service_links)
        .unwrap_or(true);
    let mut by_name: BTreeMap<String, Service> = BTreeMap::new();
    if links {
        if let Ok(list) = Api::<Service>::namespaced(ctx.client.clone(), ns)
            .list(&Default::default())
            .await
        {
            for svc in list.items {
                by_name.insert(svc.metadata.name.clone().unwrap_or_default(), svc);
            }
        }
    }
    if !by_name.contains_key("kubernetes") {
        if let Ok(Some(svc)) = Api::<Service>::namespaced(ctx.client.clone(), "default")
            .get_opt("kubernetes")
            .await
        {
            by_name.insert("kubernetes".into(), svc);
        }
    }
    by_name.values().flat_map(service_env).collect()
}

/// Variables in the order they were first set; a later setting replaces the
/// value and keeps the place.
#[derive(Default)]
struct Env {
    order: Vec<String>,
    vars: BTreeMap<String, String>,
}

impl Env {
    fn set(&mut self, k: String, v: String) {
        if !self.vars.contains_key(&k) {
            self.order.push(k.clone());
        }
        self.vars.insert(k, v);
    }
}

/// The container's environment, in order.
pub(crate) async fn container_env(
    ctx: &EnvContext<'_>,
    container: &Container,
) -> Result<Vec<(String, String)>, ConfigError> {
    let mut env = Env::default();
    for (k, v) in service_links(ctx).await {
        env.set(k, v);
    }
    env_from(ctx, container, &mut env).await?;
    for e in container.env.iter().flatten() {
        if let Some(value) = env_value(ctx, container, e, &env.vars).await? {
            env.set(e.name.clone(), value);
        }
    }
    let Env { order, vars } = env;
    Ok(order
        .into_iter()
        .map(|k| {
            let v = vars.get(&k).cloned().unwrap_or_default();
            (k, v)
        })
        .collect())
}

/// The variables of the container's `envFrom` sources (configMaps and secrets).
async fn env_from(
    ctx: &EnvContext<'_>,
    container: &Container,
    env: &mut Env,
) -> Result<(), ConfigError> {
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        if let Some(r) = &from.config_map_ref {
            match config_map(ctx, &r.name).await? {
                Some(cm) => {
                    for (k, v) in cm.data.iter().flatten() {
                        env.set(format!("{prefix}{k}"), v.clone());
                    }
                }
                None if r.optional.unwrap_or(false) => {}
                None => return Err(ConfigError(format!("configmap \"{}\" not found", r.name))),
            }
        }
        if let Some(r) = &from.secret_ref {
            match secret(ctx, &r.name).await? {
                Some(s) => {
                    for (k, v) in secret_data(&s) {
                        env.set(format!("{prefix}{k}"), v);
                    }
                }
                None if r.optional.unwrap_or(false) => {}
                None => return Err(ConfigError(format!("secret \"{}\" not found", r.name))),
            }
        }
    }
    Ok(())
}

/// The value of one `env` entry (`$(VAR)` expanded against `vars`, or from its
/// source); `None` when an optional source lacks it (the variable is not set).
async fn env_value(
    ctx: &EnvContext<'_>,
    container: &Container,
    e: &k8s_openapi::api::core::v1::EnvVar,
    vars: &BTreeMap<String, String>,
) -> Result<Option<String>, ConfigError> {
    let ns = ctx.pod.metadata.namespace.as_deref().unwrap_or("");
    let Some(src) = &e.value_from else {
        return Ok(Some(
            e.value
                .as_deref()
                .map(|v| expand(v, vars))
                .unwrap_or_default(),
        ));
    };
    if let Some(v) = &e.value {
        return Ok(Some(expand(v, vars)));
    }
    if let Some(f) = &src.field_ref {
        return field_value(ctx.pod, &f.field_path, ctx.host_ip).map(Some);
    }
    if let Some(r) = &src.resource_field_ref {
        let target = match r.container_name.as_deref() {
            Some(n) if !n.is_empty() && n != container.name => ctx
                .pod
                .spec
                .as_ref()
                .and_then(|s| s.containers.iter().find(|c| c.name == n))
                .ok_or_else(|| ConfigError(format!("container {n:?} not found")))?,
            _ => container,
        };
        return resource_value(target, &r.resource, r.divisor.as_ref(), ctx.node_capacity)
            .map(Some);
    }
    if let Some(r) = &src.config_map_key_ref {
        let optional = r.optional.unwrap_or(false);
        return match config_map(ctx, &r.name).await? {
            Some(cm) => match cm.data.as_ref().and_then(|d| d.get(&r.key)) {
                Some(v) => Ok(Some(v.clone())),
                None if optional => Ok(None),
                None => Err(ConfigError(format!(
                    "couldn't find key {} in ConfigMap {ns}/{}",
                    r.key, r.name
                ))),
            },
            None if optional => Ok(None),
            None => Err(ConfigError(format!("configmap \"{}\" not found", r.name))),
        };
    }
    if let Some(r) = &src.secret_key_ref {
        let optional = r.optional.unwrap_or(false);
        return match secret(ctx, &r.name).await? {
            Some(s) => match secret_data(&s).remove(&r.key) {
                Some(v) => Ok(Some(v)),
                None if optional => Ok(None),
                None => Err(ConfigError(format!(
                    "couldn't find key {} in Secret {ns}/{}",
                    r.key, r.name
                ))),
            },
            None if optional => Ok(None),
            None => Err(ConfigError(format!("secret \"{}\" not found", r.name))),
        };
    }
    Ok(Some(String::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_links_are_kubernetes_names() {
        let svc: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "my-db"},
            "spec": {"clusterIP": "10.43.0.9", "ports": [
                {"name": "sql", "port": 5432, "protocol": "TCP"},
                {"port": 53, "protocol": "UDP"}]}
        }))
        .unwrap();
        let got: BTreeMap<String, String> = service_env(&svc).into_iter().collect();
        let want: BTreeMap<String, String> = [
            ("MY_DB_SERVICE_HOST", "10.43.0.9"),
            ("MY_DB_SERVICE_PORT", "5432"),
            ("MY_DB_SERVICE_PORT_SQL", "5432"),
            ("MY_DB_PORT", "tcp://10.43.0.9:5432"),
            ("MY_DB_PORT_5432_TCP", "tcp://10.43.0.9:5432"),
            ("MY_DB_PORT_5432_TCP_PROTO", "tcp"),
            ("MY_DB_PORT_5432_TCP_PORT", "5432"),
            ("MY_DB_PORT_5432_TCP_ADDR", "10.43.0.9"),
            ("MY_DB_PORT_53_UDP", "udp://10.43.0.9:53"),
            ("MY_DB_PORT_53_UDP_PROTO", "udp"),
            ("MY_DB_PORT_53_UDP_PORT", "53"),
            ("MY_DB_PORT_53_UDP_ADDR", "10.43.0.9"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(got, want);
        let headless: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "h"},
            "spec": {"clusterIP": "None", "ports": [{"port": 80}]}
        }))
        .unwrap();
        assert!(service_env(&headless).is_empty());
    }

    #[test]
    fn expansion_follows_kubernetes_rules() {
        let vars = BTreeMap::from([("A".to_string(), "x".to_string())]);
        assert_eq!(expand("$(A)-$(B)-$$(A)-$", &vars), "x-$(B)-$(A)-$");
        assert_eq!(expand("héllo $(A", &vars), "héllo $(A");
    }

    #[test]
    fn field_refs() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns", "labels": {"app": "web"}},
            "spec": {"containers": [], "nodeName": "n1"},
            "status": {"podIP": "10.42.0.5"}
        }))
        .unwrap();
        assert_eq!(
            field_value(&pod, "metadata.labels['app']", "h").unwrap(),
            "web"
        );
        assert_eq!(field_value(&pod, "spec.nodeName", "h").unwrap(), "n1");
        assert_eq!(field_value(&pod, "status.podIP", "h").unwrap(), "10.42.0.5");
        assert_eq!(
            field_value(&pod, "status.hostIP", "1.2.3.4").unwrap(),
            "1.2.3.4"
        );
        assert!(field_value(&pod, "spec.bogus", "h").is_err());
    }

    #[test]
    fn resource_field_rounds_up_by_divisor() {
        let c: Container = serde_json::from_value(serde_json::json!({
            "name": "c", "resources": {"limits": {"cpu": "250m", "memory": "64Mi"}}
        }))
        .unwrap();
        let cap = BTreeMap::new();
        assert_eq!(resource_value(&c, "limits.cpu", None, &cap).unwrap(), "1");
        let m = quantity::Quantity("1m".into());
        assert_eq!(
            resource_value(&c, "limits.cpu", Some(&m), &cap).unwrap(),
            "250"
        );
        let mi = quantity::Quantity("1Mi".into());
        assert_eq!(
            resource_value(&c, "limits.memory", Some(&mi), &cap).unwrap(),
            "64"
        );
    }
}
