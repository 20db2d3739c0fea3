//! Kubernetes' CEL IP and CIDR libraries: `isIP`, `ip()` with `family`,
//! `isUnspecified`, `isLoopback`, `isLinkLocalMulticast`,
//! `isLinkLocalUnicast`, `isGlobalUnicast`; `isCIDR`, `cidr()` with
//! `containsIP`, `containsCIDR`, `ip`, `prefixLength`, `masked`. Addresses
//! with zones and IPv4-mapped IPv6 addresses are refused, as Kubernetes
//! refuses them.

use std::net::IpAddr;
use std::sync::Arc;

use ::cel::extractors::This;
use ::cel::objects::Opaque;
use ::cel::{Context, ExecutionError, Value};

/// An IP address value.
#[derive(Debug, PartialEq, Eq)]
struct Ip(IpAddr);

/// A CIDR value: an address (not necessarily masked) and a prefix length.
#[derive(Debug, PartialEq, Eq)]
struct Cidr(IpAddr, u8);

impl Opaque for Ip {
    fn runtime_type_name(&self) -> &str {
        "net.IP"
    }

    fn json(&self) -> Option<serde_json::Value> {
        Some(serde_json::Value::String(self.0.to_string()))
    }
}

impl Opaque for Cidr {
    fn runtime_type_name(&self) -> &str {
        "net.CIDR"
    }

    fn json(&self) -> Option<serde_json::Value> {
        Some(serde_json::Value::String(format!("{}/{}", self.0, self.1)))
    }
}

fn parse_ip(s: &str) -> Option<IpAddr> {
    let ip: IpAddr = s.parse().ok()?;
    match ip {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => None,
        _ => Some(ip),
    }
}

fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, bits) = s.split_once('/')?;
    let ip = parse_ip(addr)?;
    let bits: u8 = bits.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some((ip, bits))
}

fn bits_of(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    let width = if ip.is_ipv4() { 32 } else { 128 };
    let keep = u32::from(prefix);
    let bits = bits_of(ip);
    let masked = if keep == 0 {
        0
    } else {
        bits & (u128::MAX << (width - keep)) & (u128::MAX >> (128 - width))
    };
    match ip {
        IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::from(masked as u32)),
        IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::from(masked)),
    }
}

fn contains(net: (IpAddr, u8), ip: IpAddr) -> bool {
    net.0.is_ipv4() == ip.is_ipv4() && mask(net.0, net.1) == mask(ip, net.1)
}

fn err(function: &str, message: &str) -> ExecutionError {
    ExecutionError::function_error(function, message)
}

fn ip_of(function: &str, v: &Arc<dyn Opaque>) -> Result<IpAddr, ExecutionError> {
    v.downcast_ref::<Ip>()
        .map(|i| i.0)
        .ok_or_else(|| err(function, "expected an IP"))
}

fn cidr_of(function: &str, v: &Arc<dyn Opaque>) -> Result<(IpAddr, u8), ExecutionError> {
    v.downcast_ref::<Cidr>()
        .map(|c| (c.0, c.1))
        .ok_or_else(|| err(function, "expected a CIDR"))
}

fn is_ip(s: Arc<String>) -> bool {
    parse_ip(&s).is_some()
}

fn is_cidr(s: Arc<String>) -> bool {
    parse_cidr(&s).is_some()
}

fn ip(s: Arc<String>) -> Result<Arc<dyn Opaque>, ExecutionError> {
    let ip = parse_ip(&s).ok_or_else(|| {
        err(
            "ip",
            &format!("IP Address {s:?} parse error during conversion from string"),
        )
    })?;
    Ok(Arc::new(Ip(ip)))
}

fn cidr(s: Arc<String>) -> Result<Arc<dyn Opaque>, ExecutionError> {
    let (ip, bits) = parse_cidr(&s).ok_or_else(|| {
        err(
            "cidr",
            &format!("network address {s:?} parse error during conversion from string"),
        )
    })?;
    Ok(Arc::new(Cidr(ip, bits)))
}

fn family(This(v): This<Arc<dyn Opaque>>) -> Result<i64, ExecutionError> {
    Ok(if ip_of("family", &v)?.is_ipv4() { 4 } else { 6 })
}

fn is_unspecified(This(v): This<Arc<dyn Opaque>>) -> Result<bool, ExecutionError> {
    Ok(ip_of("isUnspecified", &v)?.is_unspecified())
}

fn is_loopback(This(v): This<Arc<dyn Opaque>>) -> Result<bool, ExecutionError> {
    Ok(ip_of("isLoopback", &v)?.is_loopback())
}

fn is_link_local_multicast(This(v): This<Arc<dyn Opaque>>) -> Result<bool, ExecutionError> {
    Ok(match ip_of("isLinkLocalMulticast", &v)? {
        IpAddr::V4(a) => a.octets()[..3] == [224, 0, 0],
        IpAddr::V6(a) => a.segments()[0] & 0xff0f == 0xff02,
    })
}

fn is_link_local_unicast(This(v): This<Arc<dyn Opaque>>) -> Result<bool, ExecutionError> {
    Ok(match ip_of("isLinkLocalUnicast", &v)? {
        IpAddr::V4(a) => a.octets()[..2] == [169, 254],
        IpAddr::V6(a) => a.segments()[0] & 0xffc0 == 0xfe80,
    })
}

fn is_global_unicast(This(v): This<Arc<dyn Opaque>>) -> Result<bool, ExecutionError> {
    let ip = ip_of("isGlobalUnicast", &v)?;
    let special = ip.is_unspecified() || ip.is_loopback() || ip.is_multicast();
    let link_local = match ip {
        IpAddr::V4(a) => a.octets()[..2] == [169, 254] || a.is_broadcast(),
        IpAddr::V6(a) => a.segments()[0] & 0xffc0 == 0xfe80,
    };
    Ok(!special && !link_local)
}

fn target_ip(function: &str, v: &Value) -> Result<IpAddr, ExecutionError> {
    match v {
        Value::String(s) => parse_ip(s).ok_or_else(|| err(function, "invalid IP")),
        Value::Opaque(o) => ip_of(function, o),
        _ => Err(err(function, "expected an IP or a string")),
    }
}

fn contains_ip(This(v): This<Arc<dyn Opaque>>, other: Value) -> Result<bool, ExecutionError> {
    Ok(contains(
        cidr_of("containsIP", &v)?,
        target_ip("containsIP", &other)?,
    ))
}

fn contains_cidr(This(v): This<Arc<dyn Opaque>>, other: Value) -> Result<bool, ExecutionError> {
    let net = cidr_of("containsCIDR", &v)?;
    let inner = match &other {
        Value::String(s) => parse_cidr(s).ok_or_else(|| err("containsCIDR", "invalid CIDR"))?,
        Value::Opaque(o) => cidr_of("containsCIDR", o)?,
        _ => return Err(err("containsCIDR", "expected a CIDR or a string")),
    };
    Ok(inner.1 >= net.1 && contains(net, inner.0))
}

/// `ip(string)` and `cidr.ip()`: one name for both, told apart by what
/// it is applied to (the receiver, or the only argument).
fn ip_either(This(v): This<Value>) -> Result<Arc<dyn Opaque>, ExecutionError> {
    match v {
        Value::String(s) => ip(s),
        Value::Opaque(o) => Ok(Arc::new(Ip(cidr_of("ip", &o)?.0))),
        _ => Err(err("ip", "expected a string or a CIDR")),
    }
}

fn prefix_length(This(v): This<Arc<dyn Opaque>>) -> Result<i64, ExecutionError> {
    Ok(i64::from(cidr_of("prefixLength", &v)?.1))
}

fn masked(This(v): This<Arc<dyn Opaque>>) -> Result<Arc<dyn Opaque>, ExecutionError> {
    let (ip, bits) = cidr_of("masked", &v)?;
    Ok(Arc::new(Cidr(mask(ip, bits), bits)))
}

/// Adds the libraries' functions to `ctx`.
pub(crate) fn add_to(ctx: &mut Context<'_, '_>) -> Result<(), ::cel::DeclarationError> {
    ctx.add_function("isIP", is_ip)?;
    ctx.add_function("isCIDR", is_cidr)?;
    ctx.add_function("ip", ip_either)?;
    ctx.add_function("cidr", cidr)?;
    ctx.add_function("family", family)?;
    ctx.add_function("isUnspecified", is_unspecified)?;
    ctx.add_function("isLoopback", is_loopback)?;
    ctx.add_function("isLinkLocalMulticast", is_link_local_multicast)?;
    ctx.add_function("isLinkLocalUnicast", is_link_local_unicast)?;
    ctx.add_function("isGlobalUnicast", is_global_unicast)?;
    ctx.add_function("containsIP", contains_ip)?;
    ctx.add_function("containsCIDR", contains_cidr)?;
    ctx.add_function("prefixLength", prefix_length)?;
    ctx.add_function("masked", masked)?;
    Ok(())
}
