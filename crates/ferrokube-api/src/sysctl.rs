//! Sysctl names as Kubernetes reads them: the dotted and the slashed form,
//! and the kernel namespace (`net`, `ipc`) a namespaced one belongs to. The
//! API server's validation and the node agent's admission share them.

/// The kernel namespace a sysctl belongs to, when it is namespaced:
/// `"net"` or `"ipc"`.
pub fn namespace(name: &str) -> Option<&'static str> {
    let name = normalize(name);
    if name == "kernel.sem"
        || name.starts_with("kernel.shm")
        || name.starts_with("kernel.msg")
        || name.starts_with("fs.mqueue.")
    {
        Some("ipc")
    } else if name.starts_with("net.") {
        Some("net")
    } else {
        None
    }
}

/// A sysctl written with `/` separators (`net/ipv4/ip_forward`) in its dotted
/// form; dots inside a segment of such a name become slashes, as the kernel
/// reads them.
pub fn normalize(name: &str) -> String {
    let first = name.find(['.', '/']);
    match first.map(|i| name.as_bytes()[i]) {
        Some(b'/') => name
            .chars()
            .map(|c| match c {
                '/' => '.',
                '.' => '/',
                other => other,
            })
            .collect(),
        _ => name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_namespaces() {
        assert_eq!(
            normalize("net/ipv4/conf/eth0.1/rp_filter"),
            "net.ipv4.conf.eth0/1.rp_filter"
        );
        assert_eq!(normalize("net.ipv4.ip_forward"), "net.ipv4.ip_forward");
        assert_eq!(namespace("net/ipv4/ip_forward"), Some("net"));
        assert_eq!(namespace("kernel.shmmax"), Some("ipc"));
        assert_eq!(namespace("fs.mqueue.msg_max"), Some("ipc"));
        assert_eq!(namespace("kernel.sem"), Some("ipc"));
        assert_eq!(namespace("vm.swappiness"), None);
    }
}
