//! ImageLocality: nodes that already hold the pod's images score higher,
//! scaled by how widely each image is spread (to avoid piling pods onto the
//! few nodes that have it).

use crate::cache::NodeInfo;
use crate::plugins::MAX_NODE_SCORE;
use crate::podinfo::PodInfo;

const MB: i64 = 1024 * 1024;
const MIN_THRESHOLD: i64 = 23 * MB;
const MAX_CONTAINER_THRESHOLD: i64 = 1000 * MB;

/// `nodes_having(image)` counts the nodes that hold an image; `total` all nodes.
pub(crate) fn score(
    pod: &PodInfo,
    node: &NodeInfo,
    total: usize,
    nodes_having: impl Fn(&str) -> usize,
) -> i64 {
    if pod.images.is_empty() || total == 0 {
        return 0;
    }
    let mut sum: i64 = 0;
    for img in &pod.images {
        if let Some(size) = node.images.get(img) {
            let spread = nodes_having(img) as f64 / total as f64;
            sum += (*size as f64 * spread) as i64;
        }
    }
    let max = MAX_CONTAINER_THRESHOLD * pod.images.len() as i64;
    let sum = sum.clamp(MIN_THRESHOLD, max);
    MAX_NODE_SCORE * (sum - MIN_THRESHOLD) / (max - MIN_THRESHOLD)
}

#[cfg(test)]
#[allow(
    clippy::option_map_unit_fn,
    reason = "the tests set fields of their test objects through Option::map"
)]
mod tests {
    use super::*;
    use crate::testutil::{node, pod};
    use k8s_openapi::api::core::v1::ContainerImage;
    use std::sync::Arc;

    #[test]
    fn big_widespread_images_score() {
        let mut nd = node("n1", "1", "1Gi");
        nd.status.as_mut().map(|s| {
            s.images = Some(vec![ContainerImage {
                names: Some(vec!["docker.io/library/busybox:latest".into()]),
                size_bytes: Some(500 * MB),
            }])
        });
        let n = NodeInfo::from_node(Arc::new(nd));
        let p = PodInfo::new(Arc::new(pod("d", "a", "", "")));
        // on every node: 500 MiB counts fully
        let s = score(&p, &n, 2, |_| 2);
        assert_eq!(
            s,
            100 * (500 * MB - MIN_THRESHOLD) / (1000 * MB - MIN_THRESHOLD)
        );
        // on 1 of 20 nodes: 25 MiB, barely above the threshold
        assert!(score(&p, &n, 20, |_| 1) < 1);
        let empty = NodeInfo::from_node(Arc::new(node("n2", "1", "1Gi")));
        assert_eq!(score(&p, &empty, 2, |_| 1), 0);
    }
}
