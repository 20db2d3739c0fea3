//! What the node's stats read from the host rather than from the runtime:
//! CPU and memory from /proc, network interfaces from /proc/net/dev,
//! filesystems with statvfs(3), and directory usage walked as `du` counts it
//! (what cAdvisor gives Kubernetes' kubelet for the same figures).

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

/// The node's CPU time in use (all CPUs, nanoseconds) from /proc/stat's
/// `cpu` line: everything but idle and iowait.
pub(crate) fn cpu_nanoseconds(stat: &str) -> Option<u64> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let busy: u64 = v
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4 && *i < 8)
        .map(|(_, x)| x)
        .sum();
    Some(busy.saturating_mul(1_000_000_000) / clk_tck())
}

/// The boot time (seconds since the epoch), /proc/stat's `btime`.
pub(crate) fn boot_time(stat: &str) -> Option<i64> {
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

#[expect(
    unsafe_code,
    reason = "sysconf(3) for the clock tick of /proc's CPU times"
)]
fn clk_tck() -> u64 {
    // SAFETY: sysconf only reads a constant of the system.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// The node's memory as cAdvisor reports the root cgroup's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Memory {
    /// MemTotal.
    pub capacity: u64,
    /// In use, page cache included: MemTotal less MemFree.
    pub usage: u64,
    /// Usage less the inactive file cache (Kubernetes' working set).
    pub working_set: u64,
    /// Anonymous memory (AnonPages).
    pub rss: u64,
    /// Swap in use (SwapTotal less SwapFree), `None` without swap.
    pub swap: Option<u64>,
}

/// The node's memory from /proc/meminfo.
pub(crate) fn memory(meminfo: &str) -> Option<Memory> {
    let field = |name: &str| -> Option<u64> {
        let l = meminfo.lines().find(|l| l.starts_with(name))?;
        l.split_whitespace()
            .nth(1)?
            .parse::<u64>()
            .ok()
            .map(|kb| kb * 1024)
    };
    let capacity = field("MemTotal:")?;
    let usage = capacity.saturating_sub(field("MemFree:")?);
    let inactive_file = field("Inactive(file):").unwrap_or(0);
    let swap_total = field("SwapTotal:").unwrap_or(0);
    Some(Memory {
        capacity,
        usage,
        working_set: usage.saturating_sub(inactive_file),
        rss: field("AnonPages:").unwrap_or(0),
        swap: (swap_total > 0).then(|| swap_total.saturating_sub(field("SwapFree:").unwrap_or(0))),
    })
}

/// Minor and major page faults since boot, from /proc/vmstat.
pub(crate) fn page_faults(vmstat: &str) -> (Option<u64>, Option<u64>) {
    let field = |name: &str| -> Option<u64> {
        vmstat
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))?
            .trim()
            .parse()
            .ok()
    };
    (field("pgfault"), field("pgmajfault"))
}

/// One network interface's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Interface {
    pub name: String,
    pub rx_bytes: u64,
    pub rx_errors: u64,
    pub tx_bytes: u64,
    pub tx_errors: u64,
}

/// The interfaces of /proc/net/dev that cAdvisor counts for the node
/// (loopback, veths and docker bridges left out).
pub(crate) fn interfaces(net_dev: &str) -> Vec<Interface> {
    net_dev
        .lines()
        .skip(2)
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let name = name.trim();
            if name == "lo" || name.starts_with("veth") || name.starts_with("docker") {
                return None;
            }
            let v: Vec<u64> = rest
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            // rx: bytes packets errs drop fifo frame compressed multicast; tx: bytes packets errs ...
            Some(Interface {
                name: name.to_string(),
                rx_bytes: *v.first()?,
                rx_errors: *v.get(2)?,
                tx_bytes: *v.get(8)?,
                tx_errors: *v.get(10)?,
            })
        })
        .collect()
}

/// A filesystem's size and use, as statvfs(3) gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fs {
    pub capacity: u64,
    pub available: u64,
    /// Blocks in use (total less free) in bytes.
    pub used: u64,
    pub inodes: u64,
    pub inodes_free: u64,
}

/// The filesystem holding `path`.
#[expect(unsafe_code, reason = "statvfs(3): std has no filesystem statistics")]
pub(crate) fn fs(path: &Path) -> Option<Fs> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: statvfs is plain old data: all zeroes is a valid value.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: statvfs writes into the struct we own; the path is NUL-terminated.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let frsize = st.f_frsize as u64;
    Some(Fs {
        capacity: st.f_blocks as u64 * frsize,
        available: st.f_bavail as u64 * frsize,
        used: (st.f_blocks as u64).saturating_sub(st.f_bfree as u64) * frsize,
        inodes: st.f_files as u64,
        inodes_free: st.f_ffree as u64,
    })
}

/// `statvfs` once per path in one collection.
#[derive(Default)]
pub(crate) struct FsCache(HashMap<std::path::PathBuf, Option<Fs>>);

impl FsCache {
    pub(crate) fn get(&mut self, path: &Path) -> Option<Fs> {
        *self.0.entry(path.to_path_buf()).or_insert_with(|| fs(path))
    }
}

/// Bytes on disk and inodes under `dir`, on its filesystem only (`du -x`),
/// at most `limit` entries walked. `None` if `dir` cannot be read.
pub(crate) fn disk_usage(dir: &Path, limit: usize) -> Option<(u64, u64)> {
    let top = std::fs::symlink_metadata(dir).ok()?;
    let dev = top.dev();
    let (mut bytes, mut inodes) = (top.blocks() * 512, 1u64);
    let mut stack = vec![dir.to_path_buf()];
    let mut seen = 0usize;
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            seen += 1;
            if seen > limit {
                return Some((bytes, inodes));
            }
            let Ok(m) = e.metadata() else { continue };
            if m.dev() != dev {
                continue;
            }
            bytes += m.blocks() * 512;
            inodes += 1;
            if m.is_dir() {
                stack.push(e.path());
            }
        }
    }
    Some((bytes, inodes))
}

/// The system's process limit and count (the summary's `rlimit`).
#[expect(unsafe_code, reason = "sysinfo(2) for the number of processes")]
pub(crate) fn processes() -> (Option<i64>, Option<i64>) {
    let max = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|s| s.trim().parse().ok());
    // SAFETY: sysinfo is plain old data: all zeroes is a valid value.
    let mut si: libc::sysinfo = unsafe { std::mem::zeroed() };
    // SAFETY: sysinfo writes into the struct we own.
    let cur = (unsafe { libc::sysinfo(&mut si) } == 0).then_some(i64::from(si.procs));
    (max, cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_memory_and_faults_come_from_proc() {
        let stat = "cpu  100 0 50 1000 30 5 5 0 0 0\ncpu0 1 2 3 4\nbtime 1765000000\n";
        assert_eq!(cpu_nanoseconds(stat), Some(160 * 1_000_000_000 / clk_tck()));
        assert_eq!(boot_time(stat), Some(1_765_000_000));
        let meminfo = "MemTotal:       1000 kB\nMemFree:  100 kB\nMemAvailable:    400 kB\nAnonPages: 300 kB\nInactive(file): 200 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n";
        assert_eq!(
            memory(meminfo),
            Some(Memory {
                capacity: 1000 * 1024,
                usage: 900 * 1024,
                working_set: 700 * 1024,
                rss: 300 * 1024,
                swap: None,
            })
        );
        assert_eq!(memory(""), None);
        assert_eq!(
            page_faults("pgfault 12\npgmajfault 3\npgfaultx 9\n"),
            (Some(12), Some(3))
        );
    }

    #[test]
    fn interfaces_leave_out_loopback_and_veths() {
        let dev = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo: 10 1 0 0 0 0 0 0 10 1 0 0 0 0 0 0\n  eth0: 1000 10 2 0 0 0 0 0 500 5 1 0 0 0 0 0\nveth12: 1 1 0 0 0 0 0 0 1 1 0 0 0 0 0 0\n";
        assert_eq!(
            interfaces(dev),
            vec![Interface {
                name: "eth0".into(),
                rx_bytes: 1000,
                rx_errors: 2,
                tx_bytes: 500,
                tx_errors: 1,
            }]
        );
    }

    #[test]
    fn disk_usage_counts_files_and_directories() {
        let d = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(d.path().join("sub")).expect("mkdir");
        std::fs::write(d.path().join("sub").join("f"), vec![7u8; 10_000]).expect("write");
        let (bytes, inodes) = disk_usage(d.path(), 100).expect("du");
        assert_eq!(inodes, 3);
        assert!(bytes >= 10_000, "{bytes}");
        assert!(disk_usage(&d.path().join("missing"), 100).is_none());
        assert!(fs(d.path()).is_some_and(|f| f.capacity >= f.available));
    }
}
