//! A Service's allocated values through changes of its type, as Kubernetes'
//! service storage handles them (`pkg/registry/core/service/storage`):
//!
//! - a type that needs no cluster IP (`ExternalName`) drops the cluster IPs,
//!   IP families and family policy the Service had (when the update left
//!   them as they were), and the addresses are released; a type that needs
//!   no node ports (`ClusterIP`, `ExternalName`) drops the node ports and
//!   they are released (`dropTypeDependentFields`);
//! - a Service that gains a cluster IP (from `ExternalName`) gets one
//!   allocated (or the one asked for reserved), and one that gains node
//!   ports gets them;
//! - an update that leaves out values the server allocated keeps them
//!   (`patchAllocatedValues`): the cluster IP, and node ports by port name.

use std::collections::BTreeSet;

use ferrokube_api::registry::ResourceDef;
use ferrokube_api::status::{ApiError, FieldError};
use serde_json::{json, Map, Value};

use crate::allocator::AllocError;
use crate::options::WriteOptions;
use crate::rest::{ApiResult, Rest};

fn service_type(svc: &Value) -> &str {
    svc.pointer("/spec/type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
}

/// Every type but `ExternalName` has a cluster IP (`None` counts).
pub(crate) fn needs_cluster_ip(svc: &Value) -> bool {
    service_type(svc) != "ExternalName"
}

/// `NodePort` and `LoadBalancer` Services have node ports.
pub(crate) fn needs_node_ports(svc: &Value) -> bool {
    matches!(service_type(svc), "NodePort" | "LoadBalancer")
}

/// Reachable from outside the cluster: node ports, a load balancer, or
/// external IPs.
fn externally_accessible(svc: &Value) -> bool {
    needs_node_ports(svc)
        || (service_type(svc) == "ClusterIP"
            && svc
                .pointer("/spec/externalIPs")
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty()))
}

fn spec_field<'a>(svc: &'a Value, field: &str) -> Option<&'a Value> {
    svc.get("spec")
        .and_then(|s| s.get(field))
        .filter(|v| !v.is_null())
}

fn same(old: &Value, new: &Value, field: &str) -> bool {
    spec_field(old, field) == spec_field(new, field)
}

fn node_ports(svc: &Value) -> Vec<u64> {
    svc.pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(|ports| {
            ports
                .iter()
                .filter_map(|p| p.get("nodePort").and_then(Value::as_u64))
                .filter(|n| *n != 0)
                .collect()
        })
        .unwrap_or_default()
}

fn spec_mut(svc: &mut Value) -> Option<&mut Map<String, Value>> {
    svc.get_mut("spec").and_then(Value::as_object_mut)
}

/// Drops what the new type no longer uses, where the update left it as it
/// was (a value the user changed is left for validation to judge).
pub(crate) fn drop_type_dependent_fields(old: &Value, new: &mut Value) {
    if needs_cluster_ip(old) && !needs_cluster_ip(new) {
        let same_ips = same(old, new, "clusterIP") && same(old, new, "clusterIPs");
        let same_families = same(old, new, "ipFamilies");
        let same_policy = same(old, new, "ipFamilyPolicy");
        if let Some(spec) = spec_mut(new) {
            if same_ips {
                spec.remove("clusterIP");
                spec.remove("clusterIPs");
            }
            if same_families {
                spec.remove("ipFamilies");
            }
            if same_policy {
                spec.remove("ipFamilyPolicy");
            }
        }
    }
    if needs_node_ports(old) && !needs_node_ports(new) && node_ports(old) == node_ports(new) {
        if let Some(ports) = new.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
            for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                p.remove("nodePort");
            }
        }
    }
    let was_lb = service_type(old) == "LoadBalancer";
    if was_lb && service_type(new) != "LoadBalancer" {
        let hc_same = same(old, new, "healthCheckNodePort");
        let alloc_same = same(old, new, "allocateLoadBalancerNodePorts");
        let class_same = same(old, new, "loadBalancerClass");
        if let Some(spec) = spec_mut(new) {
            if hc_same {
                spec.remove("healthCheckNodePort");
            }
            if alloc_same {
                spec.remove("allocateLoadBalancerNodePorts");
            }
            if class_same {
                spec.remove("loadBalancerClass");
            }
        }
    }
    if externally_accessible(old)
        && !externally_accessible(new)
        && same(old, new, "externalTrafficPolicy")
    {
        if let Some(spec) = spec_mut(new) {
            spec.remove("externalTrafficPolicy");
        }
    }
    if service_type(new) != "LoadBalancer" {
        if let Some(status) = new.get_mut("status").and_then(Value::as_object_mut) {
            status.insert("loadBalancer".into(), json!({}));
        }
    }
}

/// Keeps the values the server allocated that an update leaves out: the
/// cluster IP(s), and each port's node port by the port's name (unless
/// another port took it).
pub(crate) fn patch_allocated_values(old: &Value, new: &mut Value) {
    if needs_cluster_ip(old) && needs_cluster_ip(new) {
        let ip = spec_field(old, "clusterIP").cloned();
        let ips = spec_field(old, "clusterIPs").cloned();
        if let Some(spec) = spec_mut(new) {
            let empty = |v: Option<&Value>| v.is_none_or(|v| v.is_null() || v.as_str() == Some(""));
            if empty(spec.get("clusterIP")) {
                if let Some(ip) = ip {
                    spec.insert("clusterIP".into(), ip);
                }
            }
            let no_ips = spec
                .get("clusterIPs")
                .is_none_or(|v| v.as_array().is_none_or(Vec::is_empty));
            if no_ips {
                if let Some(ips) = ips {
                    spec.insert("clusterIPs".into(), ips);
                }
            }
        }
    }
    if needs_node_ports(old) && needs_node_ports(new) {
        let old_ports: BTreeSet<u64> = node_ports(old).into_iter().collect();
        let used: BTreeSet<u64> = node_ports(new)
            .into_iter()
            .filter(|n| old_ports.contains(n))
            .collect();
        let by_name: Vec<(String, u64)> = old
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .map(|ports| {
                ports
                    .iter()
                    .filter_map(|p| {
                        let name = p.get("name").and_then(Value::as_str).unwrap_or("");
                        Some((name.to_string(), p.get("nodePort")?.as_u64()?))
                    })
                    .collect()
            })
            .unwrap_or_default();
        if let Some(ports) = new.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
            for p in ports.iter_mut() {
                if p.get("nodePort").and_then(Value::as_u64).unwrap_or(0) != 0 {
                    continue;
                }
                let name = p.get("name").and_then(Value::as_str).unwrap_or("");
                if let Some((_, n)) = by_name.iter().find(|(k, _)| k == name) {
                    if !used.contains(n) {
                        p["nodePort"] = json!(n);
                    }
                }
            }
        }
    }
}

/// The checks of a Service's type Kubernetes' validation makes on what the
/// type does not allow.
pub(crate) fn validate_type_fields(svc: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    match service_type(svc) {
        "ExternalName" => {
            let has_ip = spec_field(svc, "clusterIP").is_some_and(|v| v.as_str() != Some(""))
                || spec_field(svc, "clusterIPs")
                    .and_then(Value::as_array)
                    .is_some_and(|a| !a.is_empty());
            if has_ip {
                errors.push(FieldError::forbidden(
                    "spec.clusterIPs",
                    "may not be set for ExternalName services",
                ));
            }
            if spec_field(svc, "ipFamilies")
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty())
            {
                errors.push(FieldError::forbidden(
                    "spec.ipFamilies",
                    "may not be set for ExternalName services",
                ));
            }
            if spec_field(svc, "ipFamilyPolicy").is_some() {
                errors.push(FieldError::forbidden(
                    "spec.ipFamilyPolicy",
                    "may not be set for ExternalName services",
                ));
            }
            let name = spec_field(svc, "externalName")
                .and_then(Value::as_str)
                .unwrap_or("");
            if name.trim_end_matches('.').is_empty() {
                errors.push(FieldError::required("spec.externalName", ""));
            }
        }
        "ClusterIP" => {
            let ports = svc.pointer("/spec/ports").and_then(Value::as_array);
            for (i, p) in ports.into_iter().flatten().enumerate() {
                if p.get("nodePort").and_then(Value::as_u64).unwrap_or(0) != 0 {
                    errors.push(FieldError::forbidden(
                        format!("spec.ports[{i}].nodePort"),
                        "may not be used when `type` is 'ClusterIP'",
                    ));
                }
            }
        }
        _ => {}
    }
    errors
}

/// An address or port reserved for a Service being written.
pub(crate) enum Reserved {
    Ip(String),
    Port(u32),
}

pub(crate) fn alloc_error(
    def: &ResourceDef,
    name: &str,
    field: &str,
    value: Value,
    e: AllocError,
) -> ApiError {
    let detail = match e {
        AllocError::InUse => "provided value is already allocated".to_string(),
        AllocError::OutOfRange => "provided value is not in the valid range".to_string(),
        AllocError::Full => "range is full".to_string(),
        AllocError::Store(m) => return ApiError::internal(m),
    };
    ApiError::invalid(
        def.group,
        def.kind,
        name,
        &[FieldError::invalid(field, value, detail)],
    )
}

/// The addresses and ports a stored Service holds.
pub(crate) fn service_reservations(svc: &Value) -> Vec<Reserved> {
    let mut out = Vec::new();
    if let Some(ip) = svc.pointer("/spec/clusterIP").and_then(Value::as_str) {
        if ip.parse::<std::net::Ipv4Addr>().is_ok() {
            out.push(Reserved::Ip(ip.to_string()));
        }
    }
    if let Some(ports) = svc.pointer("/spec/ports").and_then(Value::as_array) {
        for p in ports {
            if let Some(n) = p.get("nodePort").and_then(Value::as_u64) {
                out.push(Reserved::Port(n as u32));
            }
        }
    }
    out
}

/// What an update reserved, and what it gives up once written.
#[derive(Default)]
pub(crate) struct Reallocation {
    pub(crate) reserved: Vec<Reserved>,
    pub(crate) released: Vec<Reserved>,
}

impl Rest {
    /// Prepares `new` (an update of `old`) for its type: drops and keeps
    /// allocated values as Kubernetes does, checks the type's rules,
    /// reserves what it gains. The caller releases `released` once the
    /// update is stored, or `reserved` if it is not.
    pub(crate) async fn reallocate_service(
        &self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        old: &Value,
        new: &mut Value,
        dry_run: bool,
    ) -> Result<Reallocation, ApiError> {
        drop_type_dependent_fields(old, new);
        patch_allocated_values(old, new);
        let errors = validate_type_fields(new);
        if !errors.is_empty() {
            return Err(ApiError::invalid(def.group, def.kind, name, &errors));
        }
        if needs_cluster_ip(old) && needs_cluster_ip(new) {
            let old_ip = spec_field(old, "clusterIP").cloned().unwrap_or(Value::Null);
            let new_ip = spec_field(new, "clusterIP").cloned().unwrap_or(Value::Null);
            if old_ip != new_ip {
                return Err(ApiError::invalid(
                    def.group,
                    def.kind,
                    name,
                    &[FieldError::invalid(
                        "spec.clusterIPs[0]",
                        new_ip,
                        "may not change once set",
                    )],
                ));
            }
        }
        let mut out = Reallocation::default();
        if dry_run {
            return Ok(out);
        }
        let old_ports: BTreeSet<u64> = node_ports(old).into_iter().collect();
        // Gained a cluster IP: allocated (or the one asked for reserved),
        // with the node ports the type needs, as at create.
        if !needs_cluster_ip(old) && needs_cluster_ip(new) {
            out.reserved = self.allocate_service(def, ns, name, new).await?;
        } else if needs_node_ports(new) {
            match self
                .allocate_node_ports(def, ns, name, new, &old_ports)
                .await
            {
                Ok(r) => out.reserved = r,
                Err(e) => return Err(e),
            }
        }
        if needs_cluster_ip(old) && !needs_cluster_ip(new) {
            if let Some(ip) = spec_field(old, "clusterIP").and_then(Value::as_str) {
                if ip.parse::<std::net::Ipv4Addr>().is_ok() {
                    out.released.push(Reserved::Ip(ip.to_string()));
                }
            }
        }
        let kept: BTreeSet<u64> = node_ports(new).into_iter().collect();
        for n in old_ports.difference(&kept) {
            out.released.push(Reserved::Port(*n as u32));
        }
        Ok(out)
    }

    /// Node ports for each port of `svc` that has none, and a reservation
    /// for each one asked for that `held` (the Service's own) lacks.
    async fn allocate_node_ports(
        &self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        svc: &mut Value,
        held: &BTreeSet<u64>,
    ) -> Result<Vec<Reserved>, ApiError> {
        let owner = format!("{ns}/{name}");
        let mut reserved = Vec::new();
        let count = svc
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        for i in 0..count {
            let asked = svc
                .pointer(&format!("/spec/ports/{i}/nodePort"))
                .and_then(Value::as_u64)
                .unwrap_or(0);
            let result = if asked == 0 {
                self.allocator.allocate_port(&owner).await
            } else if held.contains(&asked) {
                continue;
            } else {
                self.allocator
                    .reserve_port(asked as u32, &owner)
                    .await
                    .map(|()| asked as u32)
            };
            match result {
                Ok(port) => {
                    reserved.push(Reserved::Port(port));
                    if let Some(p) = svc.pointer_mut(&format!("/spec/ports/{i}")) {
                        p["nodePort"] = json!(port);
                    }
                }
                Err(e) => {
                    self.release(reserved).await;
                    let value = if asked == 0 {
                        Value::Null
                    } else {
                        json!(asked)
                    };
                    return Err(alloc_error(
                        def,
                        name,
                        &format!("spec.ports[{i}].nodePort"),
                        value,
                        e,
                    ));
                }
            }
        }
        if let Some(spec) = spec_mut(svc) {
            spec.entry("externalTrafficPolicy")
                .or_insert(json!("Cluster"));
        }
        Ok(reserved)
    }
}

impl Rest {
    pub(crate) async fn release(&self, reserved: Vec<Reserved>) {
        for r in reserved {
            match r {
                Reserved::Ip(ip) => self.allocator.release_ip(&ip).await,
                Reserved::Port(p) => self.allocator.release_port(p).await,
            }
        }
    }

    /// Gives Service `svc` its cluster IP (a new one, the one it asks for,
    /// or none for a headless Service), recording it in `reserved`.
    async fn allocate_cluster_ip(
        &self,
        def: &ResourceDef,
        name: &str,
        owner: &str,
        svc: &mut Value,
        reserved: &mut Vec<Reserved>,
    ) -> ApiResult<()> {
        let asked = svc
            .pointer("/spec/clusterIP")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let ip = match asked.as_str() {
            "None" => None,
            "" => Some(
                self.allocator
                    .allocate_ip(owner)
                    .await
                    .map_err(|e| alloc_error(def, name, "spec.clusterIPs", json!([""]), e))?
                    .to_string(),
            ),
            ip => {
                let parsed: std::net::Ipv4Addr = ip.parse().map_err(|_| {
                    ApiError::invalid(
                        def.group,
                        def.kind,
                        name,
                        &[FieldError::invalid(
                            "spec.clusterIPs[0]",
                            ip,
                            "must be a valid IP address",
                        )],
                    )
                })?;
                self.allocator
                    .reserve_ip(parsed, owner)
                    .await
                    .map_err(|e| alloc_error(def, name, "spec.clusterIPs", json!([ip]), e))?;
                Some(ip.to_string())
            }
        };
        if let Some(ip) = &ip {
            reserved.push(Reserved::Ip(ip.clone()));
        }
        if let Some(spec) = svc.get_mut("spec").and_then(Value::as_object_mut) {
            let ip = ip.unwrap_or_else(|| "None".into());
            spec.insert("clusterIP".into(), json!(ip));
            spec.insert("clusterIPs".into(), json!([ip]));
            spec.entry("ipFamilies").or_insert(json!(["IPv4"]));
            spec.entry("ipFamilyPolicy").or_insert(json!("SingleStack"));
            spec.entry("internalTrafficPolicy")
                .or_insert(json!("Cluster"));
        }
        Ok(())
    }

    /// Gives each port of a NodePort or LoadBalancer Service `svc` its node
    /// port (a new one or the one it asks for), recording them in
    /// `reserved`.
    async fn allocate_new_node_ports(
        &self,
        def: &ResourceDef,
        name: &str,
        owner: &str,
        svc: &mut Value,
        reserved: &mut Vec<Reserved>,
    ) -> ApiResult<()> {
        let ports = svc.pointer_mut("/spec/ports").and_then(Value::as_array_mut);
        for (i, p) in ports.into_iter().flatten().enumerate() {
            let port = match p.get("nodePort").and_then(Value::as_u64) {
                Some(n) => {
                    self.allocator
                        .reserve_port(n as u32, owner)
                        .await
                        .map_err(|e| {
                            alloc_error(
                                def,
                                name,
                                &format!("spec.ports[{i}].nodePort"),
                                json!(n),
                                e,
                            )
                        })?;
                    n as u32
                }
                None => self.allocator.allocate_port(owner).await.map_err(|e| {
                    alloc_error(
                        def,
                        name,
                        &format!("spec.ports[{i}].nodePort"),
                        Value::Null,
                        e,
                    )
                })?,
            };
            reserved.push(Reserved::Port(port));
            p["nodePort"] = json!(port);
        }
        if let Some(spec) = svc.get_mut("spec").and_then(Value::as_object_mut) {
            spec.entry("externalTrafficPolicy")
                .or_insert(json!("Cluster"));
        }
        Ok(())
    }

    /// Gives a new Service its cluster IP and node ports (or reserves the
    /// ones it asks for).
    pub(crate) async fn allocate_service(
        &self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        svc: &mut Value,
    ) -> ApiResult<Vec<Reserved>> {
        let errors = validate_type_fields(svc);
        if !errors.is_empty() {
            return Err(ApiError::invalid(def.group, def.kind, name, &errors));
        }
        let owner = format!("{ns}/{name}");
        let mut reserved = Vec::new();
        let ty = svc
            .pointer("/spec/type")
            .and_then(Value::as_str)
            .unwrap_or("ClusterIP")
            .to_string();
        let result = async {
            if ty != "ExternalName" {
                self.allocate_cluster_ip(def, name, &owner, svc, &mut reserved)
                    .await?;
            }
            if ty == "NodePort" || ty == "LoadBalancer" {
                self.allocate_new_node_ports(def, name, &owner, svc, &mut reserved)
                    .await?;
            }
            Ok::<(), ApiError>(())
        }
        .await;
        match result {
            Ok(()) => Ok(reserved),
            Err(e) => {
                self.release(reserved).await;
                Err(e)
            }
        }
    }

    /// Makes sure the `kubernetes` Service exists in `default`, on the
    /// service network's first address.
    pub(crate) async fn ensure_kubernetes_service(&self, port: u16) -> anyhow::Result<()> {
        let def = self
            .kinds
            .get("", "v1", "services")
            .ok_or_else(|| anyhow::anyhow!("no services resource"))?;
        match self.get(&def, "default", "kubernetes").await {
            Ok(_) => return Ok(()),
            Err(e) if e.code == 404 => {}
            Err(e) => anyhow::bail!("reading the kubernetes service: {e}"),
        }
        let svc = json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {
                "type": "ClusterIP",
                "clusterIP": self.allocator.cidr.first().to_string(),
                "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}],
            },
        });
        match self
            .create(&def, "default", svc, &WriteOptions::default())
            .await
        {
            Ok(_) => tracing::info!("created the kubernetes service"),
            Err(e) if e.code == 409 => {}
            Err(e) => anyhow::bail!("creating the kubernetes service: {e}"),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(ty: &str, ip: Option<&str>, node_port: Option<u64>) -> Value {
        let mut port = json!({"name": "http", "port": 80, "protocol": "TCP", "targetPort": 80});
        if let Some(n) = node_port {
            port["nodePort"] = json!(n);
        }
        let mut spec = json!({"type": ty, "ports": [port], "sessionAffinity": "None"});
        if let Some(ip) = ip {
            spec["clusterIP"] = json!(ip);
            spec["clusterIPs"] = json!([ip]);
            spec["ipFamilies"] = json!(["IPv4"]);
            spec["ipFamilyPolicy"] = json!("SingleStack");
        }
        if ty == "NodePort" {
            spec["externalTrafficPolicy"] = json!("Cluster");
        }
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": spec})
    }

    #[test]
    fn to_external_name_drops_ips_and_node_ports() {
        let old = svc("NodePort", Some("10.43.0.9"), Some(30080));
        // The conformance test's update: type and externalName changed,
        // the rest as read.
        let mut new = old.clone();
        new["spec"]["type"] = json!("ExternalName");
        new["spec"]["externalName"] = json!("foo.example.com");
        drop_type_dependent_fields(&old, &mut new);
        for gone in [
            "clusterIP",
            "clusterIPs",
            "ipFamilies",
            "ipFamilyPolicy",
            "externalTrafficPolicy",
        ] {
            assert!(new["spec"].get(gone).is_none(), "{gone}: {new}");
        }
        assert!(new["spec"]["ports"][0].get("nodePort").is_none());
        assert!(validate_type_fields(&new).is_empty());
    }

    #[test]
    fn values_the_user_changed_are_left_for_validation() {
        let old = svc("ClusterIP", Some("10.43.0.9"), None);
        let mut new = old.clone();
        new["spec"]["type"] = json!("ExternalName");
        new["spec"]["externalName"] = json!("foo.example.com");
        new["spec"]["clusterIP"] = json!("10.43.0.10");
        new["spec"]["clusterIPs"] = json!(["10.43.0.10"]);
        drop_type_dependent_fields(&old, &mut new);
        let errors = validate_type_fields(&new);
        assert_eq!(
            errors.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
            ["spec.clusterIPs: Forbidden: may not be set for ExternalName services"]
        );
    }

    #[test]
    fn node_ports_go_when_the_type_needs_none() {
        let old = svc("NodePort", Some("10.43.0.9"), Some(30080));
        let mut new = old.clone();
        new["spec"]["type"] = json!("ClusterIP");
        drop_type_dependent_fields(&old, &mut new);
        assert!(new["spec"]["ports"][0].get("nodePort").is_none());
        assert_eq!(
            new["spec"]["clusterIP"], "10.43.0.9",
            "the cluster IP stays"
        );
        assert!(new["spec"].get("externalTrafficPolicy").is_none());
        assert!(validate_type_fields(&new).is_empty());
        // A node port the update names on a ClusterIP Service is refused.
        let mut kept = old.clone();
        kept["spec"]["type"] = json!("ClusterIP");
        kept["spec"]["ports"][0]["nodePort"] = json!(30081);
        drop_type_dependent_fields(&old, &mut kept);
        assert_eq!(
            validate_type_fields(&kept)[0].to_string(),
            "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"
        );
    }

    #[test]
    fn an_update_that_leaves_out_allocated_values_keeps_them() {
        let old = svc("NodePort", Some("10.43.0.9"), Some(30080));
        let mut new = svc("NodePort", None, None);
        patch_allocated_values(&old, &mut new);
        assert_eq!(new["spec"]["clusterIP"], "10.43.0.9");
        assert_eq!(new["spec"]["clusterIPs"], json!(["10.43.0.9"]));
        assert_eq!(new["spec"]["ports"][0]["nodePort"], 30080);
        // From ExternalName nothing is patched in: it is allocated.
        let old = json!({"spec": {"type": "ExternalName", "externalName": "x.example.com"}});
        let mut new = svc("ClusterIP", None, None);
        patch_allocated_values(&old, &mut new);
        assert!(new["spec"].get("clusterIP").is_none());
    }
}
