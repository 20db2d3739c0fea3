//! The configuration the filter works from, digested from the watch
//! cache's FlowSchemas and PriorityLevelConfigurations as Kubernetes' APF
//! controller digests them: schemas sorted for matching (those naming a
//! missing level left out), the mandatory objects' built-in versions
//! standing in for missing ones, and each level's concurrency limit, its
//! share of the server's (`ceil(total * shares / sum of all levels'
//! shares)`). A level keeps its queue set (and what waits in it) across
//! changes. Rebuilt when either cache changed, on the next request.

use std::collections::BTreeMap;
use std::sync::Arc;

use ferrokube_api::registry::Registry;
use http::HeaderValue;
use parking_lot::{Mutex, RwLock};
use serde_json::Value;

use super::classify::{self, Schema};
use super::queueset::{Limit, QueueSet, Settings};
use crate::watchcache::{ResourceCache, WatchCache};

const GROUP: &str = "flowcontrol.apiserver.k8s.io";

/// A priority level as the filter uses it.
pub(crate) struct Level {
    /// The response header value naming its UID.
    pub(crate) uid_header: HeaderValue,
    /// Its queue set.
    pub(crate) queues: Arc<QueueSet>,
}

/// A FlowSchema with what the filter needs beside it.
pub(crate) struct FlowSchema {
    /// The compiled schema.
    pub(crate) schema: Schema,
    /// Its name, shared with the seats of its requests.
    pub(crate) name: Arc<str>,
    /// The response header value naming it.
    pub(crate) uid_header: HeaderValue,
}

/// One digested configuration.
#[derive(Default)]
pub(crate) struct Config {
    stamp: [u64; 2],
    /// The schemas, in matching order (the catch-all last of all).
    pub(crate) schemas: Vec<FlowSchema>,
    /// The levels by name.
    pub(crate) levels: BTreeMap<String, Level>,
}

/// Follows the configuration objects in the watch cache.
pub(crate) struct Source {
    caches: Option<[Arc<ResourceCache>; 2]>,
    server_limit: usize,
    current: RwLock<Arc<Config>>,
    rebuilding: Mutex<()>,
}

impl Source {
    /// Reads the objects from `cache`; levels share `server_limit` seats.
    pub(crate) fn new(registry: &Registry, cache: &WatchCache, server_limit: usize) -> Source {
        let resource = |plural: &str| {
            let def = registry.get(GROUP, "v1", plural)?;
            cache.resource(def.storage_prefix)
        };
        let caches = resource("flowschemas")
            .zip(resource("prioritylevelconfigurations"))
            .map(|(fs, pl)| [fs, pl]);
        let source = Source {
            caches,
            server_limit: server_limit.max(1),
            current: RwLock::new(Arc::new(Config::default())),
            rebuilding: Mutex::new(()),
        };
        source.rebuild(source.stamp());
        source
    }

    fn stamp(&self) -> [u64; 2] {
        self.caches
            .as_ref()
            .map_or([0, 0], |[fs, pl]| [fs.generation(), pl.generation()])
    }

    /// The configuration, digested again first if the objects changed.
    pub(crate) fn config(&self) -> Arc<Config> {
        let stamp = self.stamp();
        {
            let current = self.current.read();
            if current.stamp == stamp && !current.schemas.is_empty() {
                return current.clone();
            }
        }
        self.rebuild(stamp)
    }

    fn rebuild(&self, stamp: [u64; 2]) -> Arc<Config> {
        let _one_at_a_time = self.rebuilding.lock();
        {
            let current = self.current.read();
            if current.stamp == stamp && !current.schemas.is_empty() {
                return current.clone();
            }
        }
        let objects = |c: &ResourceCache| -> Vec<Value> {
            c.list(c.prefix())
                .iter()
                .filter_map(|o| serde_json::from_slice(&o.json).ok())
                .collect()
        };
        let (fs, pl) = match &self.caches {
            Some([fs, pl]) => (objects(fs), objects(pl)),
            None => (Vec::new(), Vec::new()),
        };
        let previous = self.current.read().clone();
        let mut config = digest(&fs, &pl, &previous, self.server_limit);
        config.stamp = stamp;
        let config = Arc::new(config);
        *self.current.write() = config.clone();
        config
    }
}

fn header(uid: &str) -> HeaderValue {
    HeaderValue::from_str(uid).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn int(v: &Value, pointer: &str, default: u64) -> u64 {
    v.pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or(default)
}

/// A PriorityLevelConfiguration's shares and limit.
fn level_spec(obj: &Value) -> (u64, Limit) {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    if spec.get("type").and_then(Value::as_str) == Some("Exempt") {
        return (
            int(spec, "/exempt/nominalConcurrencyShares", 0),
            Limit::Exempt,
        );
    }
    let limited = spec.get("limited").unwrap_or(&Value::Null);
    let shares = int(limited, "/nominalConcurrencyShares", 30);
    let response = limited.get("limitResponse").unwrap_or(&Value::Null);
    let limit = match response.get("type").and_then(Value::as_str) {
        Some("Queue") => Limit::Queue {
            queues: int(response, "/queuing/queues", 64) as usize,
            hand_size: int(response, "/queuing/handSize", 8) as usize,
            queue_length_limit: int(response, "/queuing/queueLengthLimit", 50) as usize,
        },
        _ => Limit::Reject,
    };
    (shares, limit)
}

fn name(obj: &Value) -> &str {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Digests the objects into a configuration, keeping `previous`'s queue
/// sets of levels that remain.
pub(super) fn digest(fs: &[Value], pl: &[Value], previous: &Config, server_limit: usize) -> Config {
    let mandatory = crate::kinds::mandatory_objects();
    let builtin = |plural: &str, wanted: &str| {
        mandatory
            .iter()
            .find(|(p, o)| *p == plural && name(o) == wanted)
            .map(|(_, o)| o.clone())
    };
    let mut pl: Vec<Value> = pl.to_vec();
    let mut fs: Vec<Value> = fs.to_vec();
    for wanted in ["exempt", "catch-all"] {
        if !pl.iter().any(|o| name(o) == wanted) {
            pl.extend(builtin("prioritylevelconfigurations", wanted));
        }
        if !fs.iter().any(|o| name(o) == wanted) {
            fs.extend(builtin("flowschemas", wanted));
        }
    }
    let specs: Vec<(&Value, u64, Limit)> = pl
        .iter()
        .map(|o| {
            let (shares, limit) = level_spec(o);
            (o, shares, limit)
        })
        .collect();
    let share_sum: u64 = specs.iter().map(|(_, s, _)| s).sum();
    let mut levels = BTreeMap::new();
    for (obj, shares, limit) in specs {
        let concurrency = if share_sum == 0 {
            0
        } else {
            (server_limit as u64 * shares).div_ceil(share_sum) as usize
        };
        let settings = Settings { limit, concurrency };
        let queues = match previous.levels.get(name(obj)) {
            Some(old) => {
                if old.queues.settings() != settings {
                    old.queues.reconfigure(settings);
                }
                old.queues.clone()
            }
            None => QueueSet::new(settings),
        };
        let uid = obj
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or("");
        levels.insert(
            name(obj).to_string(),
            Level {
                uid_header: header(uid),
                queues,
            },
        );
    }
    let mut schemas: Vec<Schema> = fs
        .iter()
        .map(Schema::from_object)
        .filter(|s| levels.contains_key(&s.level))
        .collect();
    classify::sort(&mut schemas);
    let schemas = schemas
        .into_iter()
        .map(|schema| FlowSchema {
            name: Arc::from(schema.name.as_str()),
            uid_header: header(&schema.uid),
            schema,
        })
        .collect();
    Config {
        stamp: [0, 0],
        schemas,
        levels,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn levels_share_the_server_limit_and_mandatory_objects_stand_in() {
        let pl = [
            json!({"metadata": {"name": "mine", "uid": "u-mine"}, "spec": {"type": "Limited",
            "limited": {"nominalConcurrencyShares": 15, "limitResponse": {"type": "Queue",
                "queuing": {"queues": 16, "handSize": 4, "queueLengthLimit": 10}}}}}),
        ];
        let fs = [
            json!({"metadata": {"name": "mine", "uid": "f-mine"}, "spec": {"matchingPrecedence": 500,
            "priorityLevelConfiguration": {"name": "mine"}, "rules": []}}),
            json!({"metadata": {"name": "dangling"}, "spec": {"matchingPrecedence": 400,
            "priorityLevelConfiguration": {"name": "nowhere"}, "rules": []}}),
        ];
        let config = digest(&fs, &pl, &Config::default(), 600);
        // exempt (0 shares), catch-all (5) and mine (15): 600 * 15 / 20.
        let settings = config.levels["mine"].queues.settings();
        assert_eq!(settings.concurrency, 450);
        assert_eq!(
            settings.limit,
            Limit::Queue {
                queues: 16,
                hand_size: 4,
                queue_length_limit: 10
            }
        );
        assert_eq!(
            config.levels["catch-all"].queues.settings(),
            Settings {
                limit: Limit::Reject,
                concurrency: 150
            }
        );
        assert_eq!(
            config.levels["exempt"].queues.settings().limit,
            Limit::Exempt
        );
        let names: Vec<_> = config.schemas.iter().map(|s| &*s.name).collect();
        assert_eq!(names, ["exempt", "mine", "catch-all"]);
        assert_eq!(config.levels["mine"].uid_header, "u-mine");
        // A change keeps the level's queue set.
        let again = digest(&fs, &pl, &config, 300);
        assert!(Arc::ptr_eq(
            &config.levels["mine"].queues,
            &again.levels["mine"].queues
        ));
        assert_eq!(again.levels["mine"].queues.settings().concurrency, 225);
    }
}
