//! Resource metrics built into `ferrokube server`, as metrics-server
//! collects them: every `--metric-resolution` each node's kubelet is
//! scraped (`/metrics/resource`, over HTTPS with the API server's kubelet
//! client certificate; `scrape`), its text read as metrics-server reads it
//! (`decode`), the points kept with metrics-server's storage rules
//! (`storage`, `point`) and published as a snapshot of every node's and
//! pod's usage, with a short history for the dashboard (`history`); the
//! quantities, windows and times written as metrics-server's objects write
//! them (`format`). Nothing is written to the datastore. The API server
//! serves the snapshot as `metrics.k8s.io/v1beta1`.

mod collector;
mod decode;
pub mod format;
mod history;
mod point;
mod scrape;
mod storage;

pub use collector::{
    kubelet_addr, node_target, Clock, Collector, NodeSource, NodeTarget, Options, RoundReport,
    Snapshot, StaticNodes, Stats, DEFAULT_KUBELET_PORT,
};
pub use decode::{decode, DecodeError, NodeBatch, PodKey, PodPoints};
pub use history::Sample;
pub use point::{Nanos, Point, TimeInfo, Usage};
pub use scrape::{ScrapeError, PATH};
pub use storage::PodUsage;
