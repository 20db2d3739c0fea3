//! The lab's network: a bridge in a network namespace of its own, one
//! namespace per node joined to it by a veth pair, and the host joined to it
//! through one veth. Each lab takes a /24 of `10.250.0.0/16` that no other lab
//! holds (the bridge namespace's name, made atomically by `ip netns add`, is
//! the claim) and that nothing on the machine uses (its addresses and routes
//! are read first). Forwarding between the lab and the host's other
//! interfaces is dropped by an nftables table of the lab's own, so nothing
//! from the lab leaves the machine.

use std::net::Ipv4Addr;
use std::process::{Command, Output, Stdio};

use anyhow::{bail, Context as _};

/// The /16 the labs' /24s are taken from.
const LAB_PREFIX: [u8; 2] = [10, 250];
/// The host's address in a lab: `.1`; nodes have `.10`, `.11`, ...
const HOST_OCTET: u8 = 1;
const FIRST_NODE_OCTET: u8 = 10;
/// The most nodes one /24 holds from `.10` on.
pub(crate) const MAX_NODES: usize = 240;

/// Runs a command; its output, or an error with its stderr.
pub(crate) fn run(program: &str, args: &[&str]) -> anyhow::Result<Output> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {program}"))?;
    if !out.status.success() {
        bail!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out)
}

/// Runs `nft -f -` with `script` on its input.
fn nft(script: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("running nft (Debian package nftables)")?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(script.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("nft: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// One lab's network, by its number (the third octet of its /24).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Net {
    pub(crate) n: u8,
}

impl Net {
    /// The bridge's namespace (also the lab's claim on its /24).
    pub(crate) fn bridge_ns(&self) -> String {
        format!("fklab{}", self.n)
    }

    /// The host's end of its veth to the bridge.
    pub(crate) fn host_veth(&self) -> String {
        format!("fklab{}", self.n)
    }

    /// The host's nftables table (family inet) that keeps lab traffic in.
    pub(crate) fn table(&self) -> String {
        format!("ferrokube-lab-{}", self.n)
    }

    /// Node `i`'s namespace.
    pub(crate) fn node_ns(&self, i: usize) -> String {
        format!("fklab{}-node-{i}", self.n)
    }

    /// Node `i`'s veth end on the bridge.
    pub(crate) fn node_port(i: usize) -> String {
        format!("node{i}")
    }

    pub(crate) fn host_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(LAB_PREFIX[0], LAB_PREFIX[1], self.n, HOST_OCTET)
    }

    pub(crate) fn node_ip(&self, i: usize) -> Ipv4Addr {
        // `i < MAX_NODES` (checked by `Lab::up`): the octet fits.
        let octet = u8::try_from(usize::from(FIRST_NODE_OCTET) + i).unwrap_or(u8::MAX);
        Ipv4Addr::new(LAB_PREFIX[0], LAB_PREFIX[1], self.n, octet)
    }

    /// Claims a free /24: one whose bridge namespace does not exist yet
    /// (made here, atomically) and which overlaps nothing the machine uses.
    pub(crate) fn claim() -> anyhow::Result<Net> {
        let used = used_networks()?;
        // Start somewhere different per process so parallel labs rarely race.
        let start = (std::process::id() % 250) as u8;
        for k in 0..=255u8 {
            let n = start.wrapping_add(k);
            let net = Net { n };
            let subnet = (
                u32::from(Ipv4Addr::new(LAB_PREFIX[0], LAB_PREFIX[1], n, 0)),
                24,
            );
            if used.iter().any(|u| overlaps(*u, subnet)) {
                continue;
            }
            // `ip netns add` fails if the name exists: another lab holds it.
            if run("ip", &["netns", "add", &net.bridge_ns()]).is_ok() {
                return Ok(net);
            }
        }
        bail!(
            "no free /24 left in 10.250.0.0/16 for a lab (scripts/lab.sh down removes stale labs)"
        )
    }

    /// Makes the bridge and the host's veth to it (the bridge namespace is
    /// already claimed).
    pub(crate) fn create_bridge(&self) -> anyhow::Result<()> {
        let br = self.bridge_ns();
        let host = self.host_veth();
        run("ip", &["-n", &br, "link", "set", "lo", "up"])?;
        run("ip", &["-n", &br, "link", "add", "br0", "type", "bridge"])?;
        run("ip", &["-n", &br, "link", "set", "br0", "up"])?;
        run(
            "ip",
            &[
                "link", "add", &host, "type", "veth", "peer", "name", "host", "netns", &br,
            ],
        )?;
        run(
            "ip",
            &["-n", &br, "link", "set", "host", "master", "br0", "up"],
        )?;
        let cidr = format!("{}/24", self.host_ip());
        run("ip", &["addr", "add", &cidr, "dev", &host])?;
        run("ip", &["link", "set", &host, "up"])?;
        nft(&self.keep_in_script())
    }

    /// The host's table: nothing is forwarded from the lab to the host's
    /// other interfaces nor from them into the lab.
    fn keep_in_script(&self) -> String {
        let (t, v) = (self.table(), self.host_veth());
        format!(
            "table inet {t} {{\n\
             \tchain forward {{\n\
             \t\ttype filter hook forward priority filter - 1; policy accept;\n\
             \t\tiifname \"{v}\" drop\n\
             \t\toifname \"{v}\" drop\n\
             \t}}\n\
             }}\n"
        )
    }

    /// Makes node `i`'s namespace, its veth pair to the bridge (`eth0` in the
    /// node), its address, its default route via the host and IP forwarding.
    pub(crate) fn create_node(&self, i: usize) -> anyhow::Result<()> {
        let (br, ns, port) = (self.bridge_ns(), self.node_ns(i), Net::node_port(i));
        run("ip", &["netns", "add", &ns])?;
        run(
            "ip",
            &[
                "-n", &br, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
                &ns,
            ],
        )?;
        run(
            "ip",
            &["-n", &br, "link", "set", &port, "master", "br0", "up"],
        )?;
        let cidr = format!("{}/24", self.node_ip(i));
        run("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
        run("ip", &["-n", &ns, "addr", "add", &cidr, "dev", "eth0"])?;
        run("ip", &["-n", &ns, "link", "set", "eth0", "up"])?;
        let gw = self.host_ip().to_string();
        run("ip", &["-n", &ns, "route", "add", "default", "via", &gw])?;
        let net = format!("--net=/run/netns/{ns}");
        run(
            "nsenter",
            &[&net, "--", "sysctl", "-qw", "net.ipv4.ip_forward=1"],
        )?;
        Ok(())
    }

    /// Takes node `i`'s port on the bridge down (or up again).
    pub(crate) fn set_link(&self, i: usize, up: bool) -> anyhow::Result<()> {
        let port = Net::node_port(i);
        let state = if up { "up" } else { "down" };
        run(
            "ip",
            &["-n", &self.bridge_ns(), "link", "set", &port, state],
        )?;
        Ok(())
    }

    /// Removes the nodes' namespaces (`nodes` of them), the host's veth, the
    /// bridge's namespace and the host's table; what is already gone is
    /// skipped. Errors are collected, not fatal.
    pub(crate) fn remove(&self, nodes: usize, errors: &mut Vec<String>) {
        for i in 0..nodes {
            remove_netns(&self.node_ns(i), errors);
        }
        let host = self.host_veth();
        if std::path::Path::new("/sys/class/net").join(&host).exists() {
            if let Err(e) = run("ip", &["link", "del", &host]) {
                errors.push(format!("{e:#}"));
            }
        }
        remove_netns(&self.bridge_ns(), errors);
        let table = self.table();
        let listed = run("nft", &["list", "table", "inet", &table]).is_ok();
        if listed {
            if let Err(e) = run("nft", &["delete", "table", "inet", &table]) {
                errors.push(format!("{e:#}"));
            }
        }
    }
}

fn remove_netns(name: &str, errors: &mut Vec<String>) {
    if std::path::Path::new("/run/netns").join(name).exists() {
        if let Err(e) = run("ip", &["netns", "del", name]) {
            errors.push(format!("{e:#}"));
        }
    }
}

/// The IPv4 networks the machine's addresses and routes (all tables) use.
fn used_networks() -> anyhow::Result<Vec<(u32, u8)>> {
    let mut used = Vec::new();
    let addrs = run("ip", &["-4", "-o", "addr", "show"])?;
    for line in String::from_utf8_lossy(&addrs.stdout).lines() {
        let mut words = line.split_whitespace();
        while let Some(w) = words.next() {
            if w == "inet" {
                used.extend(words.next().and_then(parse_cidr));
            }
        }
    }
    let routes = run("ip", &["-4", "route", "show", "table", "all"])?;
    for line in String::from_utf8_lossy(&routes.stdout).lines() {
        // `[type] DEST ...`: the first word that parses as a network.
        let dest = line
            .split_whitespace()
            .take(2)
            .find_map(|w| (w != "default").then(|| parse_cidr(w)).flatten());
        used.extend(dest);
    }
    Ok(used)
}

/// `a.b.c.d/len` (or a bare address, a /32) as (network, length).
pub(crate) fn parse_cidr(s: &str) -> Option<(u32, u8)> {
    let (ip, len) = match s.split_once('/') {
        Some((ip, len)) => (ip, len.parse::<u8>().ok()?),
        None => (s, 32),
    };
    if len > 32 {
        return None;
    }
    let ip = u32::from(ip.parse::<Ipv4Addr>().ok()?);
    Some((ip & mask(len), len))
}

fn mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    }
}

/// Whether two networks share an address.
pub(crate) fn overlaps(a: (u32, u8), b: (u32, u8)) -> bool {
    let len = a.1.min(b.1);
    a.0 & mask(len) == b.0 & mask(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_parse_and_overlap() {
        let lab = parse_cidr("10.250.7.0/24").unwrap();
        assert!(overlaps(lab, parse_cidr("10.250.7.9").unwrap()));
        assert!(overlaps(lab, parse_cidr("10.0.0.0/8").unwrap()));
        assert!(overlaps(lab, parse_cidr("0.0.0.0/0").unwrap()));
        assert!(!overlaps(lab, parse_cidr("10.250.8.0/24").unwrap()));
        assert!(!overlaps(lab, parse_cidr("192.0.2.0/24").unwrap()));
        assert_eq!(
            parse_cidr("10.250.7.77/24"),
            Some((u32::from(Ipv4Addr::new(10, 250, 7, 0)), 24))
        );
        assert_eq!(parse_cidr("default"), None);
        assert_eq!(parse_cidr("10.0.0.0/33"), None);
    }

    #[test]
    fn names_and_addresses_of_a_lab() {
        let net = Net { n: 7 };
        assert_eq!(net.bridge_ns(), "fklab7");
        assert_eq!(net.node_ns(2), "fklab7-node-2");
        assert_eq!(net.host_ip(), Ipv4Addr::new(10, 250, 7, 1));
        assert_eq!(net.node_ip(2), Ipv4Addr::new(10, 250, 7, 12));
        // Interface names fit Linux's 15 bytes.
        assert!(Net { n: 255 }.host_veth().len() <= 15);
        assert!(Net::node_port(MAX_NODES - 1).len() <= 15);
        let script = net.keep_in_script();
        assert!(script.contains("table inet ferrokube-lab-7"));
        assert!(script.contains("iifname \"fklab7\" drop"));
    }
}
