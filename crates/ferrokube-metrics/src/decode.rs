//! The kubelet's `/metrics/resource` (Prometheus text format) read as
//! metrics-server reads it (`pkg/scraper/client/resource/decode.go`): the
//! node's and each container's CPU counter, working set and swap, and the
//! containers' start times; every other series is passed over. A series
//! without a timestamp is taken at the scrape's time. A node point missing
//! its timestamp, CPU or memory is dropped; a pod with a container whose
//! CPU or memory is 0 is dropped whole.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use crate::point::{Nanos, Point};

/// A pod: namespace and name.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PodKey {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub name: String,
}

/// A pod's containers' points, by container name.
pub type PodPoints = BTreeMap<String, Point>;

/// What one node's scrape gave.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeBatch {
    /// The node's own point, when complete.
    pub node: Option<Point>,
    /// Its pods' complete container points.
    pub pods: BTreeMap<PodKey, PodPoints>,
}

/// Something in the text that is not Prometheus' format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// The line (1-based).
    pub line: usize,
    /// What is wrong.
    pub what: &'static str,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "failed parsing metrics: line {}: {}",
            self.line, self.what
        )
    }
}

impl std::error::Error for DecodeError {}

/// One series line: name, labels, value, timestamp (milliseconds).
struct Series<'a> {
    name: &'a str,
    labels: Labels<'a>,
    value: f64,
    timestamp_ms: Option<i64>,
}

/// A series' labels: name and (unescaped) value, borrowed from the text
/// unless it had escapes.
type Labels<'a> = Vec<(&'a str, Cow<'a, str>)>;

/// A quoted label value (after its opening quote): the value and where
/// its closing quote is.
fn label_value(rest: &str) -> Result<(Cow<'_, str>, usize), &'static str> {
    let bytes = rest.as_bytes();
    match bytes.iter().position(|b| *b == b'"' || *b == b'\\') {
        Some(end) if bytes[end] == b'"' => return Ok((Cow::Borrowed(&rest[..end]), end)),
        None => return Err("an unterminated label value"),
        Some(_) => {}
    }
    let mut value = String::new();
    let mut chars = rest.char_indices();
    loop {
        match chars.next() {
            None => return Err("an unterminated label value"),
            Some((i, '"')) => return Ok((Cow::Owned(value), i)),
            Some((_, '\\')) => match chars.next() {
                Some((_, 'n')) => value.push('\n'),
                Some((_, c)) => value.push(c),
                None => return Err("an unterminated label value"),
            },
            Some((_, c)) => value.push(c),
        }
    }
}

fn parse_labels(s: &str) -> Result<(Labels<'_>, &str), &'static str> {
    // `s` starts after `{`.
    let mut labels = Vec::new();
    let mut rest = s.trim_start();
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        let eq = rest.find('=').ok_or("a label without '='")?;
        let name = rest[..eq].trim();
        if name.is_empty() {
            return Err("a label without a name");
        }
        rest = rest[eq + 1..].trim_start();
        rest = rest
            .strip_prefix('"')
            .ok_or("a label value without quotes")?;
        let (value, end) = label_value(rest)?;
        labels.push((name, value));
        rest = rest[end + 1..].trim_start();
        if let Some(after) = rest.strip_prefix(',') {
            rest = after.trim_start();
        } else if !rest.starts_with('}') {
            return Err("labels not separated by ','");
        }
    }
}

fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

fn parse_series(line: &str) -> Result<Series<'_>, &'static str> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_ascii_whitespace())
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty() {
        return Err("a series without a name");
    }
    let (labels, rest) = match line[name_end..].trim_start().strip_prefix('{') {
        Some(after) => parse_labels(after)?,
        None => (Vec::new(), &line[name_end..]),
    };
    let mut fields = rest.split_ascii_whitespace();
    let value = fields
        .next()
        .and_then(parse_value)
        .ok_or("a series without a number")?;
    let timestamp_ms = match fields.next() {
        None => None,
        Some(t) => Some(
            t.parse::<i64>()
                .map_err(|_| "a timestamp that is not an integer")?,
        ),
    };
    if fields.next().is_some() {
        return Err("more than a value and a timestamp");
    }
    Ok(Series {
        name,
        labels,
        value,
        timestamp_ms,
    })
}

fn label<'a>(labels: &[(&str, Cow<'a, str>)], name: &str) -> Cow<'a, str> {
    labels
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.clone())
        .unwrap_or(Cow::Borrowed(""))
}

/// Go's `uint64(float64)` for the values the kubelet sends (negative and
/// non-finite values become 0 here).
fn to_u64(v: f64) -> u64 {
    if v.is_finite() && v > 0.0 {
        v as u64
    } else {
        0
    }
}

/// A pod's containers while reading.
type Containers<'a> = Vec<(Cow<'a, str>, Point)>;

/// Reads one node's `/metrics/resource`; `now` is the scrape's time,
/// given to series without a timestamp.
pub fn decode(text: &str, now: Nanos) -> Result<NodeBatch, DecodeError> {
    let mut node = Point::default();
    // Keys borrowed from the text while reading; each pod's containers'
    // points in the order met (pods have few).
    let mut pods: HashMap<(Cow<str>, Cow<str>), Containers> = HashMap::new();
    let default_ms = now.div_euclid(1_000_000);
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let s = parse_series(line).map_err(|what| DecodeError { line: i + 1, what })?;
        let ts = s
            .timestamp_ms
            .unwrap_or(default_ms)
            .saturating_mul(1_000_000);
        match s.name {
            "node_cpu_usage_seconds_total" => {
                node.cpu = to_u64(s.value * 1e9);
                node.timestamp = ts;
            }
            "node_memory_working_set_bytes" => {
                node.memory = to_u64(s.value);
                node.timestamp = ts;
            }
            "node_swap_usage_bytes" => {
                node.swap = to_u64(s.value);
                node.timestamp = ts;
            }
            "container_cpu_usage_seconds_total"
            | "container_memory_working_set_bytes"
            | "container_swap_usage_bytes"
            | "container_start_time_seconds" => {
                let key = (label(&s.labels, "namespace"), label(&s.labels, "pod"));
                let container = label(&s.labels, "container");
                let containers = pods.entry(key).or_default();
                let at = match containers.iter().position(|(c, _)| *c == container) {
                    Some(at) => at,
                    None => {
                        containers.push((container, Point::default()));
                        containers.len() - 1
                    }
                };
                let p = &mut containers[at].1;
                match s.name {
                    "container_cpu_usage_seconds_total" => {
                        p.cpu = to_u64(s.value * 1e9);
                        p.timestamp = ts;
                    }
                    "container_memory_working_set_bytes" => {
                        p.memory = to_u64(s.value);
                        p.timestamp = ts;
                    }
                    "container_swap_usage_bytes" => {
                        p.swap = to_u64(s.value);
                        p.timestamp = ts;
                    }
                    _ => {
                        p.start_time = if s.value.is_finite() {
                            (s.value * 1e9) as i64
                        } else {
                            0
                        }
                    }
                }
            }
            _ => {}
        }
    }
    let node = (node.timestamp != 0 && node.cpu != 0 && node.memory != 0).then_some(node);
    let pods = pods
        .into_iter()
        .filter_map(|((namespace, name), containers)| {
            let points: PodPoints = containers
                .into_iter()
                .filter(|(_, p)| *p != Point::default())
                .map(|(c, p)| (c.into_owned(), p))
                .collect();
            let complete =
                !points.is_empty() && points.values().all(|p| p.cpu != 0 && p.memory != 0);
            complete.then(|| {
                let key = PodKey {
                    namespace: namespace.into_owned(),
                    name: name.into_owned(),
                };
                (key, points)
            })
        })
        .collect();
    Ok(NodeBatch { node, pods })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kubelet's own text (Kubernetes 1.33, trimmed).
    const KUBELET: &str = r#"# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds
# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total{container="coredns",namespace="kube-system",pod="coredns-55cb58b774-vvbbs"} 21.372096 1733526000123
container_cpu_usage_seconds_total{container="web",namespace="default",pod="two"} 1.5 1733526000200
container_cpu_usage_seconds_total{container="side",namespace="default",pod="two"} 0 1733526000200
# HELP container_memory_working_set_bytes [STABLE] Current working set of the container in bytes
# TYPE container_memory_working_set_bytes gauge
container_memory_working_set_bytes{container="coredns",namespace="kube-system",pod="coredns-55cb58b774-vvbbs"} 1.5478784e+07 1733526000150
container_memory_working_set_bytes{container="web",namespace="default",pod="two"} 4096 1733526000200
container_memory_working_set_bytes{container="side",namespace="default",pod="two"} 4096 1733526000200
# HELP container_start_time_seconds [STABLE] Start time of the container since unix epoch in seconds
# TYPE container_start_time_seconds gauge
container_start_time_seconds{container="coredns",namespace="kube-system",pod="coredns-55cb58b774-vvbbs"} 1.7335e+09 1733500000000
# HELP container_swap_usage_bytes [ALPHA] Current amount of the container swap usage in bytes. Reported only on non-windows systems
# TYPE container_swap_usage_bytes gauge
container_swap_usage_bytes{container="coredns",namespace="kube-system",pod="coredns-55cb58b774-vvbbs"} 0 1733526000150
# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node in core-seconds
# TYPE node_cpu_usage_seconds_total counter
node_cpu_usage_seconds_total 1234.5 1733526000300
# HELP node_memory_working_set_bytes [STABLE] Current working set of the node in bytes
# TYPE node_memory_working_set_bytes gauge
node_memory_working_set_bytes 1.073741824e+09 1733526000300
# HELP pod_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the pod in core-seconds
# TYPE pod_cpu_usage_seconds_total counter
pod_cpu_usage_seconds_total{namespace="default",pod="two"} 1.5 1733526000200
# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container metrics, 0 otherwise
# TYPE resource_scrape_error gauge
resource_scrape_error 0
"#;

    const MS: i64 = 1_000_000;

    #[test]
    fn the_kubelets_text_gives_node_and_container_points() {
        let b = decode(KUBELET, 0).unwrap();
        let node = b.node.unwrap();
        assert_eq!(node.cpu, 1_234_500_000_000);
        assert_eq!(node.memory, 1 << 30);
        assert_eq!(node.timestamp, 1_733_526_000_300 * MS);
        let coredns = &b.pods[&PodKey {
            namespace: "kube-system".into(),
            name: "coredns-55cb58b774-vvbbs".into(),
        }]["coredns"];
        assert_eq!(coredns.cpu, 21_372_096_000);
        assert_eq!(coredns.memory, 15_478_784);
        // The last series with a timestamp sets the point's (swap, here).
        assert_eq!(coredns.timestamp, 1_733_526_000_150 * MS);
        assert_eq!(coredns.start_time, 1_733_500_000 * 1_000_000_000);
        // A container with CPU 0 drops its whole pod.
        assert_eq!(b.pods.len(), 1);
    }

    #[test]
    fn series_without_timestamps_take_the_scrapes_time() {
        let text = "node_cpu_usage_seconds_total 2\nnode_memory_working_set_bytes 10\n\
                    container_cpu_usage_seconds_total{namespace=\"a\",pod=\"p\",container=\"c\"} 1\n\
                    container_memory_working_set_bytes{pod=\"p\",container=\"c\",namespace=\"a\"} 5\n";
        let b = decode(text, 7_123_456_789).unwrap();
        assert_eq!(b.node.unwrap().timestamp, 7_123 * MS);
        let p = b.pods[&PodKey {
            namespace: "a".into(),
            name: "p".into(),
        }]["c"];
        assert_eq!(
            (p.cpu, p.memory, p.timestamp),
            (1_000_000_000, 5, 7_123 * MS)
        );
    }

    #[test]
    fn an_incomplete_node_is_dropped_and_labels_may_hold_anything() {
        let text = "node_cpu_usage_seconds_total 2 1000\n\
                    container_cpu_usage_seconds_total{container=\"a \\\"b\\\", }c\",namespace=\"n\",pod=\"p\"} 1 1000\n\
                    container_memory_working_set_bytes{container=\"a \\\"b\\\", }c\",namespace=\"n\",pod=\"p\"} 1 1000\n";
        let b = decode(text, 0).unwrap();
        assert_eq!(b.node, None);
        let pod = &b.pods[&PodKey {
            namespace: "n".into(),
            name: "p".into(),
        }];
        assert!(pod.contains_key("a \"b\", }c"), "{pod:?}");
    }

    #[test]
    fn text_that_is_not_prometheus_is_an_error() {
        let e = decode("node_cpu_usage_seconds_total{oops 1\n", 0).unwrap_err();
        assert_eq!(e.line, 1);
        assert!(decode("<html>\n", 0).is_err());
        assert!(decode("a 1 2 3\n", 0).is_err());
    }
}
