//! The `proxy` subresources of pods, services and nodes: a request to
//! `.../pods/NAME[:PORT]/proxy/PATH`, `.../services/[SCHEME:]NAME[:PORT]/proxy/PATH`
//! or `/api/v1/nodes/NAME[:PORT]/proxy/PATH` is sent on to the pod, to one
//! of the service's endpoints, or to the node's kubelet, and the answer comes
//! back as it is (status, headers, streamed body; upgrades joined byte for
//! byte). This is what `kubectl proxy` and the dashboard's links reach
//! services through.
//!
//! Where a request goes, as Kubernetes' registries decide it:
//! - a pod: its IP, at the port asked for, else the first port any container
//!   declares, else none (80 for HTTP);
//! - a service: the port asked for (a number names the service port whose
//!   name the endpoints carry; a name is the endpoints' port name; none is
//!   the unnamed port), then a ready address of its Endpoints with that port,
//!   picked at random; no such port or no address is `503
//!   ServiceUnavailable`;
//! - a node: its kubelet (HTTPS with the API server's kubelet client
//!   certificate) when no port or the kubelet's port is asked for, else HTTP
//!   to that port of the node's address.
//!
//! The request's own credentials (`Authorization`, impersonation headers)
//! and hop-by-hop headers are not passed on. A backend that cannot be reached
//! is `503` with `error trying to reach service: ...`, Kubernetes' words.

use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use ferrokube_api::status::ApiError;
use http::{header, HeaderMap, Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use serde_json::Value;

use crate::request_info::RequestInfo;
use crate::rest::Rest;
use crate::server::RequestBody;
use crate::streaming::{kubelet_addr, KubeletClient};

type Body = BoxBody<Bytes, std::io::Error>;

/// `[scheme:]name[:port]`, as Kubernetes' `SplitSchemeNamePort` reads it;
/// `None` when it is none of those shapes.
fn split_id(id: &str) -> Option<(&str, &str, &str)> {
    let parts: Vec<&str> = id.split(':').collect();
    let (scheme, name, port) = match parts.as_slice() {
        [name] => ("", *name, ""),
        [name, port] => ("", *name, *port),
        [scheme, name, port] if matches!(*scheme, "http" | "https") => (*scheme, *name, *port),
        _ => return None,
    };
    (!name.is_empty()).then_some((scheme, name, port))
}

/// Where a proxied request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// Plain HTTP or HTTPS (any serving certificate) to an address.
    Direct { https: bool, addr: SocketAddr },
    /// The kubelet's HTTPS port, with the API server's client certificate.
    Kubelet(SocketAddr),
}

fn port_number(port: &str, what: &str) -> Result<u16, ApiError> {
    port.parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| ApiError::bad_request(format!("invalid {what} port {port:?}")))
}

/// A pod's address for `port` (see the module doc).
fn pod_target(pod: &Value, scheme: &str, port: &str) -> Result<Target, ApiError> {
    let ip: IpAddr = pod
        .pointer("/status/podIP")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .filter(|ip: &IpAddr| !ip.is_unspecified() && !ip.is_loopback() && !ip.is_multicast())
        .ok_or_else(|| ApiError::bad_request("address not allowed"))?;
    let declared = || {
        pod.pointer("/spec/containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| c.pointer("/ports/0/containerPort").and_then(Value::as_u64))
            .find_map(|p| u16::try_from(p).ok())
    };
    let https = scheme == "https";
    let port = if port.is_empty() {
        declared().unwrap_or(if https { 443 } else { 80 })
    } else {
        port_number(port, "pod")?
    };
    Ok(Target::Direct {
        https,
        addr: SocketAddr::new(ip, port),
    })
}

/// The endpoint port name a service proxy asks for: a number is the
/// service port's, whose name the endpoints carry; a name is taken as it is
/// (empty matches the unnamed port), as Kubernetes' service registry does.
pub(crate) fn endpoint_port_name(svc: &Value, name: &str, port: &str) -> Result<String, ApiError> {
    let Ok(n) = port.parse::<u64>() else {
        return Ok(port.to_string());
    };
    svc.pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|p| p.get("port").and_then(Value::as_u64) == Some(n))
        .map(|p| {
            p.get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        })
        .ok_or_else(|| {
            ApiError::service_unavailable(format!("no service port {n} found for service {name:?}"))
        })
}

/// The ready addresses of `endpoints` serving the port named `port_name`.
pub(crate) fn endpoint_addrs(endpoints: &Value, port_name: &str) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for subset in endpoints
        .get("subsets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(port) = subset
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|p| p.get("name").and_then(Value::as_str).unwrap_or("") == port_name)
            .and_then(|p| p.get("port").and_then(Value::as_u64))
            .and_then(|p| u16::try_from(p).ok())
        else {
            continue;
        };
        for a in subset
            .get("addresses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(ip) = a
                .get("ip")
                .and_then(Value::as_str)
                .and_then(|s| s.parse::<IpAddr>().ok())
            {
                out.push(SocketAddr::new(ip, port));
            }
        }
    }
    out
}

/// A node's address for `port`: its kubelet unless another port is asked.
fn node_target(node: &Value, scheme: &str, port: &str) -> Result<Target, ApiError> {
    let kubelet = kubelet_addr(node)
        .ok_or_else(|| ApiError::internal("the node reports no address for its kubelet"))?;
    if port.is_empty() || port_number(port, "node")? == kubelet.port() {
        return Ok(Target::Kubelet(kubelet));
    }
    Ok(Target::Direct {
        https: scheme == "https",
        addr: SocketAddr::new(kubelet.ip(), port_number(port, "node")?),
    })
}

/// The path after `/proxy` in the request's own (still escaped) path, or
/// `None` for a path that ends at `/proxy`.
fn rest_of_path<'a>(path: &'a str, info: &RequestInfo) -> Option<&'a str> {
    let marker = format!("/{}/{}/proxy", info.resource, info.name);
    let at = path.find(&marker)? + marker.len();
    let rest = &path[at..];
    (!rest.is_empty()).then_some(rest)
}

/// Headers that belong to one connection, or to the caller's credentials.
fn passed_on(name: &header::HeaderName, upgrade: bool) -> bool {
    let hop = [
        header::CONNECTION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::PROXY_AUTHORIZATION,
        header::PROXY_AUTHENTICATE,
        header::HOST,
        header::AUTHORIZATION,
    ];
    if hop.contains(name) || name.as_str() == "keep-alive" {
        return false;
    }
    if name == header::UPGRADE {
        return upgrade;
    }
    !name.as_str().starts_with("impersonate-")
}

pub(crate) fn copy_headers(from: &HeaderMap, to: &mut HeaderMap, upgrade: bool) {
    for (k, v) in from {
        if passed_on(k, upgrade) {
            to.append(k.clone(), v.clone());
        }
    }
}

/// One of the ready endpoints of Service `svc` on the port the request's
/// `(scheme, name, port)` names, picked at random; 503 when there is none.
async fn service_target(
    rest: &Rest,
    svc: &Value,
    info: &RequestInfo,
    (scheme, name, port): (&str, &str, &str),
) -> Result<Target, ApiError> {
    let ns = info.namespace.as_str();
    let port_name = endpoint_port_name(svc, name, port)?;
    let eps_def = rest
        .kinds
        .get("", "v1", "endpoints")
        .ok_or_else(ApiError::no_such_path)?;
    let eps = rest.get(&eps_def, ns, name).await?;
    let no_subsets = eps
        .get("subsets")
        .and_then(Value::as_array)
        .is_none_or(|s| s.is_empty());
    if no_subsets {
        return Err(ApiError::service_unavailable(format!(
            "no endpoints available for service {name:?}"
        )));
    }
    let addrs = endpoint_addrs(&eps, &port_name);
    if addrs.is_empty() {
        return Err(ApiError::service_unavailable(format!(
            "no endpoints available for service {:?}",
            info.name
        )));
    }
    let addr = addrs[rand::random::<u32>() as usize % addrs.len()];
    Ok(Target::Direct {
        https: scheme == "https",
        addr,
    })
}

/// As Kubernetes does, a proxy path without anything after `/proxy` is sent
/// on to the same path with `/` added, so that relative links in the page
/// resolve under the proxy.
fn with_slash_added(req: &Request<RequestBody>) -> Result<Response<Body>, ApiError> {
    let mut to = format!("{}/", req.uri().path());
    if let Some(q) = req.uri().query() {
        to = format!("{to}?{q}");
    }
    Response::builder()
        .status(StatusCode::MOVED_PERMANENTLY)
        .header(header::LOCATION, to)
        .body(Full::new(Bytes::new()).map_err(|n| match n {}).boxed())
        .map_err(ApiError::internal)
}

/// Serves `info`'s proxy request (pods, services or nodes).
pub(crate) async fn serve(
    rest: &Rest,
    kubelet: &KubeletClient,
    info: &RequestInfo,
    mut req: Request<RequestBody>,
) -> Result<Response<Body>, ApiError> {
    let what = match info.resource.as_str() {
        "pods" => "pod",
        "services" => "service",
        _ => "node",
    };
    let (scheme, name, port) = split_id(&info.name)
        .ok_or_else(|| ApiError::bad_request(format!("invalid {what} request {:?}", info.name)))?;
    let def = rest
        .kinds
        .get("", "v1", &info.resource)
        .ok_or_else(ApiError::no_such_path)?;
    let ns = info.namespace.as_str();
    let target = match what {
        "pod" => pod_target(&rest.get(&def, ns, name).await?, scheme, port)?,
        "node" => node_target(&rest.get(&def, "", name).await?, scheme, port)?,
        _ => {
            let svc = rest.get(&def, ns, name).await?;
            service_target(rest, &svc, info, (scheme, name, port)).await?
        }
    };
    let path = req.uri().path().to_string();
    let Some(rest_path) = rest_of_path(&path, info) else {
        return with_slash_added(&req);
    };
    let uri = match req.uri().query() {
        Some(q) => format!("{rest_path}?{q}"),
        None => rest_path.to_string(),
    };
    let upgrade = req.headers().contains_key(header::UPGRADE);
    let host = match target {
        Target::Direct { addr, .. } | Target::Kubelet(addr) => addr,
    };
    let mut out = Request::builder()
        .method(req.method())
        .uri(uri)
        .header(header::HOST, host.to_string());
    if let Some(h) = out.headers_mut() {
        copy_headers(req.headers(), h, upgrade);
        if upgrade {
            h.insert(
                header::CONNECTION,
                header::HeaderValue::from_static("Upgrade"),
            );
        }
    }
    let client_side = upgrade.then(|| hyper::upgrade::on(&mut req));
    let body = std::mem::take(req.body_mut());
    let out = out
        .body(body)
        .map_err(|e| ApiError::bad_request(format!("bad request headers: {e}")))?;
    let reach = |e: &dyn std::fmt::Display| {
        ApiError::service_unavailable(format!("error trying to reach service: {e}"))
    };
    let mut sender = match target {
        Target::Kubelet(addr) => kubelet.connect(addr).await.map_err(|e| reach(&e.message))?,
        Target::Direct { https, addr } => crate::streaming::dial(addr, https)
            .await
            .map_err(|e| reach(&e))?,
    };
    let mut resp = sender.send_request(out).await.map_err(|e| reach(&e))?;
    let mut answer = Response::builder().status(resp.status());
    if let Some(h) = answer.headers_mut() {
        let switching = resp.status() == StatusCode::SWITCHING_PROTOCOLS;
        copy_headers(resp.headers(), h, switching);
        if switching {
            h.insert(
                header::CONNECTION,
                header::HeaderValue::from_static("Upgrade"),
            );
        }
    }
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        let node_side = hyper::upgrade::on(&mut resp);
        if let Some(client_side) = client_side {
            crate::streaming::join_upgraded(client_side, node_side);
        }
        return answer
            .body(Full::new(Bytes::new()).map_err(|n| match n {}).boxed())
            .map_err(ApiError::internal);
    }
    answer
        .body(resp.into_body().map_err(std::io::Error::other).boxed())
        .map_err(ApiError::internal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_are_split_as_kubernetes_does() {
        assert_eq!(split_id("web"), Some(("", "web", "")));
        assert_eq!(split_id("web:80"), Some(("", "web", "80")));
        assert_eq!(split_id("https:web:443"), Some(("https", "web", "443")));
        assert_eq!(split_id("ftp:web:21"), None);
        assert_eq!(split_id("a:b:c:d"), None);
        assert_eq!(split_id(":80"), None);
    }

    #[test]
    fn a_pod_is_reached_at_the_port_asked_or_its_first_declared() {
        let pod = json!({
            "spec": {"containers": [{"name": "a"}, {"name": "b", "ports": [{"containerPort": 8080}]}]},
            "status": {"podIP": "10.42.0.7"}});
        let at = |port: &str| match pod_target(&pod, "", port).unwrap() {
            Target::Direct { addr, https } => {
                assert!(!https);
                addr.to_string()
            }
            t => panic!("{t:?}"),
        };
        assert_eq!(at(""), "10.42.0.7:8080");
        assert_eq!(at("9000"), "10.42.0.7:9000");
        assert_eq!(pod_target(&pod, "", "http").unwrap_err().code, 400);
        let pending = json!({"spec": {"containers": [{"name": "a"}]}, "status": {}});
        let e = pod_target(&pending, "", "").unwrap_err();
        assert_eq!((e.code, e.message.as_str()), (400, "address not allowed"));
    }

    #[test]
    fn a_service_port_is_found_by_number_then_its_endpoints_by_name() {
        let svc = json!({"spec": {"ports": [
            {"name": "http", "port": 80, "targetPort": 8080},
            {"name": "admin", "port": 9000}]}});
        assert_eq!(endpoint_port_name(&svc, "web", "").unwrap(), "");
        assert_eq!(endpoint_port_name(&svc, "web", "9000").unwrap(), "admin");
        assert_eq!(endpoint_port_name(&svc, "web", "admin").unwrap(), "admin");
        let e = endpoint_port_name(&svc, "web", "81").unwrap_err();
        assert_eq!(e.code, 503);
        assert_eq!(e.message, r#"no service port 81 found for service "web""#);
        let eps = json!({"subsets": [
            {"addresses": [{"ip": "10.42.0.7"}, {"ip": "10.42.0.8"}],
             "notReadyAddresses": [{"ip": "10.42.0.9"}],
             "ports": [{"name": "http", "port": 8080}, {"name": "admin", "port": 9000}]}]});
        let got: Vec<String> = endpoint_addrs(&eps, "http")
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(got, ["10.42.0.7:8080", "10.42.0.8:8080"]);
        assert!(endpoint_addrs(&eps, "other").is_empty());
        assert!(endpoint_addrs(&Value::Null, "http").is_empty());
    }

    #[test]
    fn a_node_is_reached_at_its_kubelet_unless_another_port_is_asked() {
        let node = json!({"status": {
            "addresses": [{"type": "InternalIP", "address": "10.0.0.5"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 12345}}}});
        let kubelet = Target::Kubelet("10.0.0.5:12345".parse().unwrap());
        assert_eq!(node_target(&node, "", "").unwrap(), kubelet);
        assert_eq!(node_target(&node, "", "12345").unwrap(), kubelet);
        assert_eq!(
            node_target(&node, "", "9100").unwrap(),
            Target::Direct {
                https: false,
                addr: "10.0.0.5:9100".parse().unwrap()
            }
        );
    }

    #[test]
    fn the_path_after_proxy_is_passed_on_as_sent() {
        let info = RequestInfo {
            resource: "services".into(),
            name: "web:80".into(),
            ..Default::default()
        };
        let p = "/api/v1/namespaces/default/services/web:80/proxy/a%20b/c/";
        assert_eq!(rest_of_path(p, &info), Some("/a%20b/c/"));
        assert_eq!(
            rest_of_path("/api/v1/namespaces/default/services/web:80/proxy", &info),
            None
        );
    }

    #[test]
    fn credentials_and_hop_headers_stay_here() {
        let mut from = HeaderMap::new();
        for (k, v) in [
            ("authorization", "Bearer secret"),
            ("impersonate-user", "jane"),
            ("connection", "keep-alive"),
            ("accept", "text/html"),
            ("upgrade", "websocket"),
        ] {
            from.insert(
                header::HeaderName::from_static(k),
                header::HeaderValue::from_static(v),
            );
        }
        let mut to = HeaderMap::new();
        copy_headers(&from, &mut to, false);
        let names: Vec<&str> = to.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["accept"]);
        let mut to = HeaderMap::new();
        copy_headers(&from, &mut to, true);
        assert!(to.contains_key(header::UPGRADE));
    }
}
