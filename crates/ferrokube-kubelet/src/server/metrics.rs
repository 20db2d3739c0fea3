//! `/metrics/resource`: the kubelet's resource metrics in Prometheus text
//! format, as metrics-server scrapes them: per container (from CRI's
//! container stats) `container_cpu_usage_seconds_total` and
//! `container_memory_working_set_bytes`, for the node (from /proc)
//! `node_cpu_usage_seconds_total` and `node_memory_working_set_bytes`, and
//! `scrape_error` (1 when the runtime did not answer).

use std::fmt::Write as _;

use crate::cri::{api, labels, Runtime};

/// The node's CPU time in use (all CPUs, seconds) from /proc/stat's `cpu`
/// line: everything but idle and iowait.
pub(crate) fn node_cpu_seconds(stat: &str) -> Option<f64> {
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
    let hz = clk_tck();
    Some(busy as f64 / hz)
}

#[expect(
    unsafe_code,
    reason = "sysconf(3) for the clock tick of /proc's CPU times"
)]
fn clk_tck() -> f64 {
    // SAFETY: sysconf only reads a constant of the system.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// The node's memory in use (bytes) from /proc/meminfo: total less available.
pub(crate) fn node_memory_bytes(meminfo: &str) -> Option<u64> {
    let field = |name: &str| -> Option<u64> {
        let l = meminfo.lines().find(|l| l.starts_with(name))?;
        l.split_whitespace()
            .nth(1)?
            .parse::<u64>()
            .ok()
            .map(|kb| kb * 1024)
    };
    Some(field("MemTotal:")?.saturating_sub(field("MemAvailable:")?))
}

fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The metrics text.
pub(crate) async fn render(runtime: &dyn Runtime) -> String {
    let now_ms = jiff::Timestamp::now().as_millisecond();
    let mut out = String::new();
    let stats = runtime.list_container_stats().await;
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    if let Some(cpu) = node_cpu_seconds(&stat) {
        let _ = writeln!(out, "# HELP node_cpu_usage_seconds_total Cumulative cpu time consumed by the node in core-seconds\n# TYPE node_cpu_usage_seconds_total counter\nnode_cpu_usage_seconds_total {cpu} {now_ms}");
    }
    if let Some(mem) = node_memory_bytes(&meminfo) {
        let _ = writeln!(out, "# HELP node_memory_working_set_bytes Current working set of the node in bytes\n# TYPE node_memory_working_set_bytes gauge\nnode_memory_working_set_bytes {mem} {now_ms}");
    }
    let stats = match stats {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(error = %e, "container stats");
            let _ = writeln!(out, "# HELP scrape_error 1 if there was an error while getting container metrics, 0 otherwise\n# TYPE scrape_error gauge\nscrape_error 1");
            return out;
        }
    };
    let rows = |f: &dyn Fn(&api::ContainerStats) -> Option<(f64, i64)>| -> String {
        let mut s = String::new();
        for c in &stats {
            let Some(a) = &c.attributes else { continue };
            let Some((v, ts)) = f(c) else { continue };
            let get = |k: &str| label(a.labels.get(k).map(String::as_str).unwrap_or(""));
            let _ = writeln!(
                s,
                "{{container=\"{}\",namespace=\"{}\",pod=\"{}\"}} {v} {}",
                get(labels::CONTAINER_NAME),
                get(labels::POD_NAMESPACE),
                get(labels::POD_NAME),
                ts / 1_000_000
            );
        }
        s
    };
    let cpu = rows(&|c| {
        let u = c.cpu.as_ref()?;
        Some((
            u.usage_core_nano_seconds.as_ref()?.value as f64 / 1e9,
            u.timestamp,
        ))
    });
    let mem = rows(&|c| {
        let m = c.memory.as_ref()?;
        Some((m.working_set_bytes.as_ref()?.value as f64, m.timestamp))
    });
    let _ = writeln!(out, "# HELP container_cpu_usage_seconds_total Cumulative cpu time consumed by the container in core-seconds\n# TYPE container_cpu_usage_seconds_total counter");
    for l in cpu.lines() {
        let _ = writeln!(out, "container_cpu_usage_seconds_total{l}");
    }
    let _ = writeln!(out, "# HELP container_memory_working_set_bytes Current working set of the container in bytes\n# TYPE container_memory_working_set_bytes gauge");
    for l in mem.lines() {
        let _ = writeln!(out, "container_memory_working_set_bytes{l}");
    }
    let _ = writeln!(out, "# HELP scrape_error 1 if there was an error while getting container metrics, 0 otherwise\n# TYPE scrape_error gauge\nscrape_error 0");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_figures_come_from_proc() {
        let stat = "cpu  100 0 50 1000 30 5 5 0 0 0\ncpu0 1 2 3 4\n";
        let hz = clk_tck();
        assert_eq!(node_cpu_seconds(stat), Some(160.0 / hz));
        let meminfo = "MemTotal:       1000 kB\nMemFree:  10 kB\nMemAvailable:    400 kB\n";
        assert_eq!(node_memory_bytes(meminfo), Some(600 * 1024));
        assert_eq!(node_memory_bytes(""), None);
    }

    #[tokio::test]
    async fn a_runtime_without_stats_is_a_scrape_error() {
        let rt = crate::cri::fake::FakeRuntime::new();
        let text = render(&rt).await;
        assert!(text.contains("\nscrape_error 1\n"), "{text}");
    }
}
