//! Service cluster IPs and node ports, handed out from their ranges and never
//! twice: each address or port in use is a key in the store
//! (`/registry/ranges/serviceips/<ip>`, `/registry/ranges/servicenodeports/<port>`)
//! created if absent, so two API servers (or one restarted) cannot hand out
//! the same one, and the reservation lasts as long as the Service.

use std::net::Ipv4Addr;
use std::sync::Arc;

use bytes::Bytes;
use ferrokube_store::{Store, StoreError};

const IP_PREFIX: &str = "/registry/ranges/serviceips/";
const PORT_PREFIX: &str = "/registry/ranges/servicenodeports/";

/// The node port range.
pub(crate) const NODE_PORTS: std::ops::RangeInclusive<u32> = 30000..=32767;

/// Why a service network (`--service-cidr`) is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    /// The text has no `/<prefix length>`.
    #[error("service CIDR {0:?} has no prefix length")]
    NoPrefixLength(String),
    /// The address part is not an IPv4 address.
    #[error("service CIDR {cidr:?}: {ip:?} is not an IPv4 address")]
    NotIpv4 {
        /// The whole CIDR as given.
        cidr: String,
        /// Its address part.
        ip: String,
    },
    /// The prefix length is not a number from 8 to 30.
    #[error("service CIDR {0:?}: prefix length must be 8 to 30")]
    PrefixLength(String),
}

/// An IPv4 service network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceCidr {
    base: u32,
    size: u32,
}

impl ServiceCidr {
    /// Parses `10.43.0.0/16`.
    pub fn parse(s: &str) -> Result<ServiceCidr, CidrError> {
        let (ip, bits) = s
            .split_once('/')
            .ok_or_else(|| CidrError::NoPrefixLength(s.to_string()))?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| CidrError::NotIpv4 {
            cidr: s.to_string(),
            ip: ip.to_string(),
        })?;
        let bits: u32 = bits
            .parse()
            .ok()
            .filter(|b| (8..=30).contains(b))
            .ok_or_else(|| CidrError::PrefixLength(s.to_string()))?;
        let size = 1u32 << (32 - bits);
        let base = u32::from(ip) & !(size - 1);
        Ok(ServiceCidr { base, size })
    }

    /// The first usable address (the `kubernetes` Service's).
    pub(crate) fn first(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.base + 1)
    }

    pub(crate) fn contains(&self, ip: Ipv4Addr) -> bool {
        let v = u32::from(ip);
        v > self.base && v < self.base + self.size - 1
    }
}

/// Hands out cluster IPs and node ports.
pub struct Allocator {
    store: Arc<dyn Store>,
    pub(crate) cidr: ServiceCidr,
}

/// Why an allocation failed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AllocError {
    InUse,
    OutOfRange,
    Full,
    Store(String),
}

impl Allocator {
    /// Hands out addresses of `cidr` and the node port range, reserving each
    /// in `store`.
    pub fn new(store: Arc<dyn Store>, cidr: ServiceCidr) -> Self {
        Allocator { store, cidr }
    }

    async fn reserve(&self, key: String, owner: &str) -> Result<bool, AllocError> {
        match self
            .store
            .create(&key, Bytes::from(owner.to_string()), None)
            .await
        {
            Ok(_) => Ok(true),
            Err(StoreError::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(AllocError::Store(e.to_string())),
        }
    }

    /// Reserves `ip` for `owner` (`namespace/name`).
    pub(crate) async fn reserve_ip(&self, ip: Ipv4Addr, owner: &str) -> Result<(), AllocError> {
        if !self.cidr.contains(ip) {
            return Err(AllocError::OutOfRange);
        }
        match self.reserve(format!("{IP_PREFIX}{ip}"), owner).await? {
            true => Ok(()),
            false => Err(AllocError::InUse),
        }
    }

    /// Any free address (the first one is kept for the `kubernetes` Service).
    pub(crate) async fn allocate_ip(&self, owner: &str) -> Result<Ipv4Addr, AllocError> {
        let usable = self.cidr.size - 3;
        let start = rand::random_range(0..usable);
        for i in 0..usable {
            let offset = 2 + (start + i) % usable;
            let ip = Ipv4Addr::from(self.cidr.base + offset);
            if self.reserve(format!("{IP_PREFIX}{ip}"), owner).await? {
                return Ok(ip);
            }
        }
        Err(AllocError::Full)
    }

    pub(crate) async fn release_ip(&self, ip: &str) {
        if let Err(e) = self.store.delete(&format!("{IP_PREFIX}{ip}"), None).await {
            if !matches!(e, StoreError::NotFound { .. }) {
                tracing::warn!(ip, error = %e, "could not release a service IP");
            }
        }
    }

    pub(crate) async fn reserve_port(&self, port: u32, owner: &str) -> Result<(), AllocError> {
        if !NODE_PORTS.contains(&port) {
            return Err(AllocError::OutOfRange);
        }
        match self.reserve(format!("{PORT_PREFIX}{port}"), owner).await? {
            true => Ok(()),
            false => Err(AllocError::InUse),
        }
    }

    pub(crate) async fn allocate_port(&self, owner: &str) -> Result<u32, AllocError> {
        let n = NODE_PORTS.end() - NODE_PORTS.start() + 1;
        let start = rand::random_range(0..n);
        for i in 0..n {
            let port = NODE_PORTS.start() + (start + i) % n;
            if self.reserve(format!("{PORT_PREFIX}{port}"), owner).await? {
                return Ok(port);
            }
        }
        Err(AllocError::Full)
    }

    pub(crate) async fn release_port(&self, port: u32) {
        if let Err(e) = self
            .store
            .delete(&format!("{PORT_PREFIX}{port}"), None)
            .await
        {
            if !matches!(e, StoreError::NotFound { .. }) {
                tracing::warn!(port, error = %e, "could not release a node port");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs() {
        let c = ServiceCidr::parse("10.43.0.0/16").unwrap();
        assert_eq!(c.first(), Ipv4Addr::new(10, 43, 0, 1));
        assert!(c.contains(Ipv4Addr::new(10, 43, 200, 7)));
        assert!(!c.contains(Ipv4Addr::new(10, 44, 0, 1)));
        assert!(!c.contains(Ipv4Addr::new(10, 43, 0, 0)), "network address");
        assert!(
            !c.contains(Ipv4Addr::new(10, 43, 255, 255)),
            "broadcast address"
        );
        assert!(ServiceCidr::parse("10.43.0.0").is_err());
        assert!(ServiceCidr::parse("bogus/16").is_err());
        assert!(ServiceCidr::parse("10.0.0.0/4").is_err());
        assert_eq!(
            ServiceCidr::parse("10.43.7.9/16").unwrap(),
            c,
            "host bits are masked"
        );
    }
}
