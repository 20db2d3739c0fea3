//! `/metrics/resource`: the kubelet's resource metrics in Prometheus text
//! format, as Kubernetes 1.33's kubelet writes them and metrics-server reads
//! them: the families in name order, each with its HELP (stability prefix
//! included) and TYPE lines, series sorted by label values, values as Go
//! formats a float64, timestamps in milliseconds from the stats' own times.
//!
//! Families: `container_cpu_usage_seconds_total`,
//! `container_memory_working_set_bytes`, `container_start_time_seconds` (no
//! timestamp), `container_swap_usage_bytes`, `node_cpu_usage_seconds_total`,
//! `node_memory_working_set_bytes`, `node_swap_usage_bytes`,
//! `pod_cpu_usage_seconds_total`, `pod_memory_working_set_bytes`,
//! `pod_swap_usage_bytes` (the swap ones only where there is swap data) and
//! `resource_scrape_error` (1 when the runtime did not answer, and then
//! nothing else). The older `scrape_error` is deprecated since 1.29 and
//! hidden by Kubernetes from 1.30 on, so it is not written.

use std::fmt::Write as _;

use super::stats::{ContainerStats, NodeStats, PodStats, Summary, Time};

/// A float as Go's `strconv.FormatFloat(f, 'g', -1, 64)` writes it, which is
/// how Prometheus' Go client writes sample values: the shortest digits that
/// read back the same, in exponent form below 1e-4 and from 1e6 up
/// (`1.137475584e+09`).
pub(crate) fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // Rust's `{:e}` gives the same shortest digits: "-1.2345e6".
    let e = format!("{f:e}");
    let Some((mantissa, exp)) = e.split_once('e') else {
        return e;
    };
    let Ok(exp) = exp.parse::<i32>() else {
        return e;
    };
    let neg = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    // Go's shortest 'g': exponent form when the decimal exponent is below
    // -4 or at least 6.
    if !(-4..6).contains(&exp) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(
            out,
            "e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.unsigned_abs()
        );
        return out;
    }
    if exp < 0 {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            out.push_str(&digits);
            for _ in digits.len()..int_len {
                out.push('0');
            }
        } else {
            out.push_str(&digits[..int_len]);
            out.push('.');
            out.push_str(&digits[int_len..]);
        }
    }
    out
}

/// A label value escaped as the text format wants it.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// One family: its HELP and TYPE lines and its series, sorted.
struct Family {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    /// (label values in label-name order, value, timestamp)
    series: Vec<(Vec<String>, f64, Option<Time>)>,
    label_names: &'static [&'static str],
}

impl Family {
    fn new(
        name: &'static str,
        kind: &'static str,
        help: &'static str,
        label_names: &'static [&'static str],
    ) -> Family {
        Family {
            name,
            help,
            kind,
            series: Vec::new(),
            label_names,
        }
    }

    fn write(mut self, out: &mut String) {
        if self.series.is_empty() {
            return;
        }
        self.series.sort_by(|a, b| a.0.cmp(&b.0));
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} {}", self.name, self.kind);
        for (values, v, ts) in self.series {
            out.push_str(self.name);
            if !values.is_empty() {
                out.push('{');
                for (i, (n, val)) in self.label_names.iter().zip(&values).enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{n}=\"{}\"", label(val));
                }
                out.push('}');
            }
            let _ = write!(out, " {}", go_float(v));
            if let Some(t) = ts {
                let _ = write!(out, " {}", t.millis());
            }
            out.push('\n');
        }
    }
}

const CONTAINER: &[&str] = &["container", "namespace", "pod"];
const POD: &[&str] = &["namespace", "pod"];

/// The families `/metrics/resource` writes (before `resource_scrape_error`).
struct Families {
    c_cpu: Family,
    c_mem: Family,
    c_start: Family,
    c_swap: Family,
    n_cpu: Family,
    n_mem: Family,
    n_swap: Family,
    p_cpu: Family,
    p_mem: Family,
    p_swap: Family,
}

impl Families {
    fn new() -> Families {
        Families {
            c_cpu: Family::new(
                "container_cpu_usage_seconds_total",
                "counter",
                "[STABLE] Cumulative cpu time consumed by the container in core-seconds",
                CONTAINER,
            ),
            c_mem: Family::new(
                "container_memory_working_set_bytes",
                "gauge",
                "[STABLE] Current working set of the container in bytes",
                CONTAINER,
            ),
            c_start: Family::new(
                "container_start_time_seconds",
                "gauge",
                "[STABLE] Start time of the container since unix epoch in seconds",
                CONTAINER,
            ),
            c_swap: Family::new(
                "container_swap_usage_bytes",
                "gauge",
                "[ALPHA] Current amount of the container swap usage in bytes. Reported only on non-windows systems",
                CONTAINER,
            ),
            n_cpu: Family::new(
                "node_cpu_usage_seconds_total",
                "counter",
                "[STABLE] Cumulative cpu time consumed by the node in core-seconds",
                &[],
            ),
            n_mem: Family::new(
                "node_memory_working_set_bytes",
                "gauge",
                "[STABLE] Current working set of the node in bytes",
                &[],
            ),
            n_swap: Family::new(
                "node_swap_usage_bytes",
                "gauge",
                "[ALPHA] Current swap usage of the node in bytes. Reported only on non-windows systems",
                &[],
            ),
            p_cpu: Family::new(
                "pod_cpu_usage_seconds_total",
                "counter",
                "[STABLE] Cumulative cpu time consumed by the pod in core-seconds",
                POD,
            ),
            p_mem: Family::new(
                "pod_memory_working_set_bytes",
                "gauge",
                "[STABLE] Current working set of the pod in bytes",
                POD,
            ),
            p_swap: Family::new(
                "pod_swap_usage_bytes",
                "gauge",
                "[ALPHA] Current amount of the pod swap usage in bytes. Reported only on non-windows systems",
                POD,
            ),
        }
    }

    fn node(&mut self, node: &NodeStats) {
        if let Some(cpu) = &node.cpu {
            if let Some(n) = cpu.usage_core_nano_seconds {
                self.n_cpu
                    .series
                    .push((vec![], n as f64 / 1e9, Some(cpu.time)));
            }
        }
        if let Some(m) = &node.memory {
            if let Some(ws) = m.working_set_bytes {
                self.n_mem.series.push((vec![], ws as f64, Some(m.time)));
            }
            // Kubernetes stamps the node's swap with its memory time.
            if let Some(u) = node.swap.as_ref().and_then(|w| w.swap_usage_bytes) {
                self.n_swap.series.push((vec![], u as f64, Some(m.time)));
            }
        }
    }

    fn container(&mut self, labels: Vec<String>, c: &ContainerStats) {
        if c.start_time.0 > 0 {
            self.c_start
                .series
                .push((labels.clone(), c.start_time.0 as f64 / 1e9, None));
        }
        if let Some((cpu, n)) = c.cpu.and_then(|u| Some((u, u.usage_core_nano_seconds?))) {
            self.c_cpu
                .series
                .push((labels.clone(), n as f64 / 1e9, Some(cpu.time)));
        }
        if let Some((m, ws)) = c.memory.and_then(|m| Some((m, m.working_set_bytes?))) {
            self.c_mem
                .series
                .push((labels.clone(), ws as f64, Some(m.time)));
        }
        if let Some((w, u)) = c.swap.and_then(|w| Some((w, w.swap_usage_bytes?))) {
            self.c_swap.series.push((labels, u as f64, Some(w.time)));
        }
    }

    fn pod(&mut self, p: &PodStats) {
        let (ns, name) = (&p.pod_ref.namespace, &p.pod_ref.name);
        for c in &p.containers {
            self.container(vec![c.name.clone(), ns.clone(), name.clone()], c);
        }
        let labels = vec![ns.clone(), name.clone()];
        if let Some((cpu, n)) = p.cpu.and_then(|u| Some((u, u.usage_core_nano_seconds?))) {
            self.p_cpu
                .series
                .push((labels.clone(), n as f64 / 1e9, Some(cpu.time)));
        }
        if let Some((m, ws)) = p.memory.and_then(|m| Some((m, m.working_set_bytes?))) {
            self.p_mem
                .series
                .push((labels.clone(), ws as f64, Some(m.time)));
        }
        if let Some((w, u)) = p.swap.and_then(|w| Some((w, w.swap_usage_bytes?))) {
            self.p_swap.series.push((labels, u as f64, Some(w.time)));
        }
    }

    fn write(self, out: &mut String) {
        for f in [
            self.c_cpu,
            self.c_mem,
            self.c_start,
            self.c_swap,
            self.n_cpu,
            self.n_mem,
            self.n_swap,
            self.p_cpu,
            self.p_mem,
            self.p_swap,
        ] {
            f.write(out);
        }
    }
}

fn scrape_error(out: &mut String, v: u8) {
    let _ = writeln!(out, "# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container metrics, 0 otherwise\n# TYPE resource_scrape_error gauge\nresource_scrape_error {v}");
}

/// The metrics text for a collection (`Err`: the runtime did not answer).
pub(crate) fn render<E>(summary: &Result<Summary, E>) -> String {
    let mut out = String::new();
    let Ok(s) = summary else {
        scrape_error(&mut out, 1);
        return out;
    };
    let mut f = Families::new();
    f.node(&s.node);
    for p in &s.pods {
        f.pod(p);
    }
    f.write(&mut out);
    scrape_error(&mut out, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cri::fake::FakeRuntime;
    use crate::server::stats::{testing, Collector};

    #[test]
    fn floats_are_written_as_go_writes_them() {
        for (f, want) in [
            (0.0, "0"),
            (1.0, "1"),
            (184.554461619, "184.554461619"),
            (6197.005020909, "6197.005020909"),
            (123456.0, "123456"),
            (1234567.0, "1.234567e+06"),
            (1.137475584e9, "1.137475584e+09"),
            (1.7506078418297591e9, "1.7506078418297591e+09"),
            (2.5088e7, "2.5088e+07"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5, "-2.5"),
            (1e21, "1e+21"),
        ] {
            assert_eq!(go_float(f), want, "{f}");
        }
    }

    /// The lines of the kubelet's families, in the kubelet's order, each
    /// series as metrics-server's parser expects it.
    #[tokio::test]
    async fn the_text_is_the_kubelets() {
        let rt = FakeRuntime::new();
        testing::run_pod(
            &rt,
            "default",
            "web",
            "uid-1",
            &[
                ("side", 500_000_000, 1_000_000),
                ("app", 1_250_000_000, 3_000_000),
            ],
        )
        .await;
        testing::run_pod(
            &rt,
            "apps",
            "db",
            "uid-2",
            &[("pg", 7_000_000_000, 2_500_000)],
        )
        .await;
        let dir = tempfile::tempdir().expect("tempdir");
        let c = Collector::new("n".into(), dir.path().to_path_buf());
        let text = render(&c.collect(&rt, false).await);
        let heads: Vec<&str> = text.lines().filter(|l| l.starts_with("# ")).collect();
        assert_eq!(
            heads,
            [
                "# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds",
                "# TYPE container_cpu_usage_seconds_total counter",
                "# HELP container_memory_working_set_bytes [STABLE] Current working set of the container in bytes",
                "# TYPE container_memory_working_set_bytes gauge",
                "# HELP container_start_time_seconds [STABLE] Start time of the container since unix epoch in seconds",
                "# TYPE container_start_time_seconds gauge",
                "# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node in core-seconds",
                "# TYPE node_cpu_usage_seconds_total counter",
                "# HELP node_memory_working_set_bytes [STABLE] Current working set of the node in bytes",
                "# TYPE node_memory_working_set_bytes gauge",
                "# HELP pod_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the pod in core-seconds",
                "# TYPE pod_cpu_usage_seconds_total counter",
                "# HELP pod_memory_working_set_bytes [STABLE] Current working set of the pod in bytes",
                "# TYPE pod_memory_working_set_bytes gauge",
                "# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container metrics, 0 otherwise",
                "# TYPE resource_scrape_error gauge",
            ]
        );
        // Series without their timestamps (the runtime's sample times).
        let series: Vec<String> = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with("node_"))
            .map(|l| {
                let parts: Vec<&str> = l.split(' ').collect();
                if l.starts_with("container_start_time_seconds") || l.starts_with("resource_") {
                    assert_eq!(parts.len(), 2, "no timestamp: {l}");
                    return format!("{} <t>", parts[0]);
                }
                assert_eq!(parts.len(), 3, "{l}");
                assert!(
                    parts[2].parse::<i64>().is_ok_and(|t| t > 1_700_000_000_000),
                    "{l}"
                );
                format!("{} {}", parts[0], parts[1])
            })
            .collect();
        assert_eq!(
            series,
            [
                "container_cpu_usage_seconds_total{container=\"app\",namespace=\"default\",pod=\"web\"} 1.25",
                "container_cpu_usage_seconds_total{container=\"pg\",namespace=\"apps\",pod=\"db\"} 7",
                "container_cpu_usage_seconds_total{container=\"side\",namespace=\"default\",pod=\"web\"} 0.5",
                "container_memory_working_set_bytes{container=\"app\",namespace=\"default\",pod=\"web\"} 3e+06",
                "container_memory_working_set_bytes{container=\"pg\",namespace=\"apps\",pod=\"db\"} 2.5e+06",
                "container_memory_working_set_bytes{container=\"side\",namespace=\"default\",pod=\"web\"} 1e+06",
                "container_start_time_seconds{container=\"app\",namespace=\"default\",pod=\"web\"} <t>",
                "container_start_time_seconds{container=\"pg\",namespace=\"apps\",pod=\"db\"} <t>",
                "container_start_time_seconds{container=\"side\",namespace=\"default\",pod=\"web\"} <t>",
                "pod_cpu_usage_seconds_total{namespace=\"apps\",pod=\"db\"} 7",
                "pod_cpu_usage_seconds_total{namespace=\"default\",pod=\"web\"} 1.75",
                "pod_memory_working_set_bytes{namespace=\"apps\",pod=\"db\"} 2.5e+06",
                "pod_memory_working_set_bytes{namespace=\"default\",pod=\"web\"} 4e+06",
                "resource_scrape_error <t>",
            ]
        );
        assert!(text.ends_with("\nresource_scrape_error 0\n"), "{text}");
        let node: Vec<&str> = text.lines().filter(|l| l.starts_with("node_")).collect();
        assert_eq!(node.len(), 2, "{text}");
        assert!(
            !text.contains("\nscrape_error"),
            "hidden since 1.30: {text}"
        );
        // Start times are seconds since the epoch, now-ish.
        let start: f64 = text
            .lines()
            .find(|l| l.starts_with("container_start_time_seconds"))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .expect("start time");
        let now = jiff::Timestamp::now().as_second() as f64;
        assert!((now - start).abs() < 60.0, "{start}");
    }

    #[tokio::test]
    async fn a_runtime_without_stats_is_a_scrape_error() {
        let rt = FakeRuntime::new();
        rt.fail_container_stats();
        let c = Collector::new("n".into(), std::env::temp_dir());
        let text = render(&c.collect(&rt, false).await);
        assert_eq!(
            text,
            "# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container metrics, 0 otherwise\n# TYPE resource_scrape_error gauge\nresource_scrape_error 1\n"
        );
    }
}
