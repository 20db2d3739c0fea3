//! Chromium's processes, read from `/proc`: which are under the browser
//! process, and how much memory they hold.

use std::collections::{BTreeMap, BTreeSet};

/// The memory of a process tree, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TreeMemory {
    /// How many processes the tree has.
    pub processes: usize,
    /// The sum of their resident set sizes (shared pages counted in each).
    pub rss: u64,
    /// The sum of their proportional set sizes (shared pages divided among
    /// the processes sharing them): the tree's share of the machine's memory.
    pub pss: u64,
    /// The resident set of the renderer processes (`--type=renderer`).
    pub renderer_rss: u64,
}

/// The parent pid of `stat` (the text of `/proc/<pid>/stat`).
pub fn parent_of(stat: &str) -> Option<u32> {
    // `pid (comm) state ppid ...`; comm may hold spaces and parentheses.
    let rest = stat.rsplit_once(')')?.1;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// A `kB` field (`VmRSS:`, `Pss:`) of a `/proc` status-like text, in bytes.
pub fn kb_field(text: &str, field: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

/// Every process's parent, as `/proc` has them now.
fn parents() -> BTreeMap<u32, u32> {
    let mut map = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return map;
    };
    for e in dir.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Some(pp) = std::fs::read_to_string(e.path().join("stat"))
            .ok()
            .and_then(|s| parent_of(&s))
        {
            map.insert(pid, pp);
        }
    }
    map
}

/// The processes under `pid` (children, theirs, ...), not `pid` itself.
pub fn descendants(pid: u32) -> BTreeSet<u32> {
    under(&parents(), pid)
}

fn under(parents: &BTreeMap<u32, u32>, pid: u32) -> BTreeSet<u32> {
    let mut found = BTreeSet::new();
    // Bounded: each pass adds at least one process or stops.
    for _ in 0..parents.len() {
        let before = found.len();
        for (p, pp) in parents {
            if (*pp == pid || found.contains(pp)) && *p != pid {
                found.insert(*p);
            }
        }
        if found.len() == before {
            break;
        }
    }
    found
}

/// The memory of `pid` and every process under it.
pub fn tree_memory(pid: u32) -> TreeMemory {
    let mut pids = descendants(pid);
    pids.insert(pid);
    let mut m = TreeMemory::default();
    for p in pids {
        let base = format!("/proc/{p}");
        let Ok(status) = std::fs::read_to_string(format!("{base}/status")) else {
            continue;
        };
        let rss = kb_field(&status, "VmRSS:").unwrap_or(0);
        m.processes += 1;
        m.rss += rss;
        m.pss += std::fs::read_to_string(format!("{base}/smaps_rollup"))
            .ok()
            .and_then(|s| kb_field(&s, "Pss:"))
            .unwrap_or(rss);
        let cmdline = std::fs::read(format!("{base}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains("--type=renderer") {
            m.renderer_rss += rss;
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_parent() {
        assert_eq!(parent_of("42 (chromium) S 7 42 42 0 -1"), Some(7));
        assert_eq!(parent_of("42 (a (b) c) R 9 1 1"), Some(9));
        assert_eq!(parent_of("garbage"), None);
    }

    #[test]
    fn kb_fields() {
        let status = "Name:\tchromium\nVmRSS:\t  2048 kB\nVmSwap:\t0 kB\n";
        assert_eq!(kb_field(status, "VmRSS:"), Some(2048 * 1024));
        assert_eq!(kb_field(status, "Pss:"), None);
        assert_eq!(kb_field("Rss: 10 kB\nPss: 7 kB\n", "Pss:"), Some(7 * 1024));
    }

    #[test]
    fn descendants_of_a_tree() {
        let p: BTreeMap<u32, u32> = [(1, 0), (10, 1), (11, 10), (12, 11), (13, 10), (20, 1)].into();
        assert_eq!(under(&p, 10), [11, 12, 13].into());
        assert_eq!(under(&p, 12), BTreeSet::new());
    }

    #[test]
    fn this_process_has_memory() {
        let m = tree_memory(std::process::id());
        assert!(m.processes >= 1 && m.rss > 0 && m.pss > 0, "{m:?}");
    }
}
